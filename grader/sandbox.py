"""How the student's kernel (and the evaluator) are confined.

``plan`` decides, for one run folder, the command prefix, the environment and the list of
layers that are on. The report lists the layers, so a run on a laptop without root still
grades and says what it could not do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .quiet import QUIET_ENV

__all__ = ["Confinement", "plan", "thread_env"]

#: variables a kernel keeps from the grader's environment; everything else is dropped
_KEEP = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")


def thread_env(threads: int) -> dict[str, str]:
    n = str(max(1, threads))
    return {"OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n,
            "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": "1"}


@dataclass
class Confinement:
    command_prefix: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)


def plan(workdir: Path, *, data_env: dict[str, str], threads: int | None = None) -> Confinement:
    """Environment and limits for a kernel whose working folder is ``workdir``."""
    home = workdir / "home"
    tmp = workdir / "tmp"
    for folder in (home, tmp):
        folder.mkdir(parents=True, exist_ok=True)
    threads = threads or os.cpu_count() or 1
    env = {k: os.environ[k] for k in _KEEP if k in os.environ}
    env.update(QUIET_ENV)
    env.update(thread_env(threads))
    env.update(data_env)
    env.update({"HOME": str(home), "TMPDIR": str(tmp), "IPYTHONDIR": str(home / ".ipython"),
                "MPLCONFIGDIR": str(home / ".matplotlib"), "PYTHONNOUSERSITE": "1",
                "PYTHONDONTWRITEBYTECODE": "1", "KERAS_HOME": str(home / ".keras")})
    layers = ["scrubbed environment", f"own HOME and temp folder", f"thread budget {threads}",
              "output capped per cell"]
    return Confinement(env=env, layers=layers)
