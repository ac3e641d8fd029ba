"""The limits of one confined process tree, its thread budget, and the machine's cores."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Limits", "LIMITS", "thread_env", "cores", "size_text"]

_GiB = 1 << 30
_MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Resource limits of one confined process tree."""

    memory: int = 4 * _GiB  # cgroup; RLIMIT_AS is not used: TensorFlow reserves far more
    processes: int = 512  # cgroup pids.max and RLIMIT_NPROC (TensorFlow starts many threads)
    file_size: int = 256 * _MiB  # RLIMIT_FSIZE: a .keras file is at most 64 MB
    open_files: int = 2048
    disk: int = _GiB  # the work folder, watched while the kernel runs
    tmpfs: int = 512 * _MiB  # /tmp (with HOME) and /dev/shm inside bubblewrap
    #: its claim on the CPU when others want it too (cgroup v2 ``cpu.weight``; v1 ``cpu.shares``
    #: is 1024 times this over 100): the evaluator's early measuring yields to the kernel
    cpu_weight: int = 100


#: the defaults; tests replace them with smaller ones
LIMITS = Limits()


def thread_env(threads: int) -> dict[str, str]:
    """The thread budget of one process tree, for every library that sizes its own pools.

    TensorFlow's inter-op pool gets the budget too, as TensorFlow's own default does: with one
    inter-op thread an LSTM epoch is much slower (``benchmarks/thread_settings.py``, figures in
    BENCHMARKS.md).
    """
    n = str(max(1, threads))
    return {"OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n,
            "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": n}


def cores() -> int:
    """The cores this process may run on: its CPU affinity (what Slurm or taskset grants),
    not the machine's count (``os.cpu_count``), which may be more."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def size_text(n: int) -> str:
    return f"{n / _GiB:g} GiB" if n >= _GiB else f"{n / _MiB:g} MiB"
