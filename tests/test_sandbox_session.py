"""One context manager owns a grading's sandbox: whichever step raises, nothing is left.

Each step of ``grade_submission`` is made to raise (a grader bug, not the submission's doing)
after the sandbox has made what it makes at that point: the kernel's cgroups and sockets folder,
the evaluator's process and cgroups. Afterwards no cgroup, folder or process of the run exists.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from grader import pipeline, sandbox
from grader.sandbox import decide
from grader.sandbox.probe import Machine

from .conftest import REFERENCE_NB


class Boom(RuntimeError):
    pass


def _raise_after(step):
    def wrapped(run):
        step(run)
        raise Boom(step.__name__)
    return wrapped


def _start_then_raise(run):
    run.evaluator = pipeline.start_evaluator(run)  # a real, confined process
    time.sleep(1)
    raise Boom("execute")


@pytest.mark.kernel
@pytest.mark.parametrize("step, replacement", [
    ("validate", _raise_after(pipeline.validate)),
    ("prepare", _raise_after(pipeline.prepare)),  # the kernel's confinement is planned
    ("execute", _start_then_raise),  # the evaluator runs, the kernel never starts
])
def test_nothing_is_left_whichever_step_raises(tmp_path, monkeypatch, step, replacement):
    made: list[sandbox.Confinement] = []
    plan = sandbox.confinement.plan

    def spy(*args, **kwargs):
        made.append(plan(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(sandbox.confinement, "plan", spy)
    monkeypatch.setattr(pipeline, step, replacement)
    with pytest.raises(Boom):
        pipeline.grade_submission(REFERENCE_NB, profile="structure", out=tmp_path / "out")
    assert len(made) == {"validate": 0, "prepare": 1, "execute": 2}[step]
    for conf in made:
        assert conf.cgroups is None or not [f for f in conf.cgroups.folders if f.exists()]
        assert conf.ipc_dir is None or not conf.ipc_dir.exists()
        if conf.uid is not None:
            assert not [p for p in Path("/proc").iterdir() if p.name.isdigit()
                        and _owner(p) == conf.uid]


def _owner(proc: Path) -> int | None:
    try:
        return proc.stat().st_uid
    except OSError:
        return None


# --------------------------------------------------------------------------- the decision


def _machine(**kw) -> Machine:
    base = dict(mode="bwrap", root=True, setpriv=True, prlimit=True, cgroup=True,
                interpreter_reachable=False)
    return Machine(**{**base, **kw})


def test_every_layer_on_a_root_machine_with_bubblewrap():
    d = decide(_machine())
    assert (d.mode, d.separate_user, d.cgroups, d.rlimits, d.off) == \
        ("bwrap", True, True, True, ())


@pytest.mark.parametrize("kw, user, off", [
    ({"root": False, "cgroup": False}, False,
     ("separate user (needs root and setpriv)",
      "memory and process limits (no writable cgroup; needs root)")),
    ({"mode": "unshare"}, False,
     ("separate user (the Python environment is not readable by other users and bubblewrap, "
      "which could show it, is missing)", "filesystem view (bubblewrap is missing)")),
    ({"mode": "unshare", "interpreter_reachable": True}, True,
     ("filesystem view (bubblewrap is missing)",)),
    ({"mode": "none", "prlimit": False}, False,
     ("separate user (needs root and setpriv)", "rlimits (prlimit is missing)",
      "no network (no namespaces here)", "filesystem view (no bubblewrap)")),
])
def test_each_missing_piece_turns_its_layer_off_with_a_reason(kw, user, off):
    d = decide(_machine(**kw))
    assert d.separate_user is user and d.off == off
