"""One grading's sandbox, owned by one context manager: every confinement and confined process
made through it is undone when it exits, whichever step raised (nbclient's way: whatever sets
something up also tears it down)."""

from __future__ import annotations

from pathlib import Path

from . import confinement as _confinement
from . import process as _process

__all__ = ["Session"]


class Session:
    """``with Session() as box``: ``box.plan(...)`` and ``box.start(...)`` as
    ``confinement.plan`` and ``process.start_confined``; on exit, every process still running
    is killed and every confinement closed (cgroups removed, sockets folders deleted)."""

    def __init__(self):
        self.confinements: list[_confinement.Confinement] = []
        self.processes: list[_process.ConfinedProcess] = []

    def plan(self, workdir: Path, **kwargs) -> _confinement.Confinement:
        conf = _confinement.plan(workdir, **kwargs)
        self.confinements.append(conf)
        return conf

    def start(self, argv: list[str], **kwargs) -> _process.ConfinedProcess:
        proc = _process.start_confined(argv, **kwargs)
        self.processes.append(proc)
        self.confinements.append(proc.conf)
        return proc

    def close(self) -> None:
        for proc in self.processes:
            proc.cancel()
        for conf in self.confinements:
            conf.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
