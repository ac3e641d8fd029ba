"""A confined helper process (the evaluator): started ahead, fed lines, supervised, collected."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from . import confinement as _confinement
from . import limits as _limits
from .confinement import _remove_quietly

__all__ = ["ConfinedProcess", "start_confined"]

class ConfinedProcess:
    """A confined helper started ahead of time: ``send`` gives it a line of work, ``finish``
    its last line and waits, ``cancel`` ends it. Its stdout and stderr go to a temporary file,
    so a helper that talks while it waits can never block on a full pipe; ``output`` reads
    what it has said so far (a supervisor follows its progress there)."""

    def __init__(self, proc, conf, outputs: tuple[str, ...], out: Path, timeout: float, log):
        self.proc, self.conf, self.outputs, self.out, self.timeout, self.log = \
            proc, conf, outputs, out, timeout, log

    def send(self, line: str) -> bool:
        """One line on its stdin; False if it has gone (``finish`` then says why)."""
        try:
            self.proc.stdin.write(line.rstrip("\n") + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def close_input(self, line: str | None = None) -> None:
        """Its last line (if any), then the end of its input."""
        if line is not None:
            self.send(line)
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def poll(self) -> int | None:
        return self.proc.poll()

    def output(self, limit: int = 1 << 20) -> str:
        """What it has written so far (the last ``limit`` bytes)."""
        size = os.fstat(self.log.fileno()).st_size
        return os.pread(self.log.fileno(), limit, max(0, size - limit)).decode("utf-8",
                                                                              "replace")

    def out_of_memory(self) -> bool:
        """Whether its memory limit killed it (read before ``collect``)."""
        return self.conf.out_of_memory()

    def finish(self, line: str = "go") -> subprocess.CompletedProcess:
        """Send ``line`` (``go``), wait, and move its outputs into place."""
        try:
            self.proc.communicate(line.rstrip("\n") + "\n", timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.cancel()
            raise
        except BrokenPipeError:
            self.proc.wait(timeout=self.timeout)
        return self.collect()

    def collect(self) -> subprocess.CompletedProcess:
        """After it has ended: undo its confinement, move its outputs into place, and return
        its exit code and what it said."""
        self.proc.wait()
        self.conf.close()
        for name in self.outputs:
            path = self.conf.workdir / name
            if path.is_file() and not path.is_symlink():
                os.replace(path, self.out / name)
        _remove_quietly(self.conf.workdir)
        talk = self.output()
        self.log.close()
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, "", talk)

    def cancel(self) -> None:
        """Not needed after all (or too slow): kill it without waiting for it to get ready."""
        if self.proc.returncode is None:
            self.proc.kill()
            self.proc.communicate()
        self.conf.close()
        self.log.close()
        _remove_quietly(self.conf.workdir)


def start_confined(argv: list[str], *, workdir: Path, data_env: dict[str, str],
                   readable: list[Path], outputs: tuple[str, ...], out: Path,
                   threads: int | None, timeout: float, cpu_weight: int = 100) -> ConfinedProcess:
    """Start a trusted helper (the evaluator) confined: it reads ``readable`` and the data, and
    writes only ``workdir``; the files named in ``outputs`` are moved into ``out`` after.

    The evaluator is our code, but it unpacks files the student's kernel wrote: a loader bug
    must not reach the network, the other submissions or the grader's files. ``cpu_weight``
    below 100 makes it yield the CPU to the kernel while both run (with a cgroup).
    """
    _remove_quietly(workdir)
    conf = _confinement.plan(workdir, data_env=data_env, threads=threads, readable=readable,
                show=("grader", "reference", "rubrics"), hide=(), sockets=False,
                timeout=timeout, limits=replace(_limits.LIMITS, cpu_weight=cpu_weight))
    log = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen([*conf.command_prefix, *argv], env=conf.env, cwd=str(workdir),
                                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    except BaseException:
        conf.close()
        log.close()
        raise
    return ConfinedProcess(proc, conf, outputs, out, timeout, log)
