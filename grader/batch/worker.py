"""The grading process of one submission (``python -m grader.batch``), and ``run_job``, which
starts it and turns whatever happens to it into plain data.

Every submission is graded in a process of its own, so a crash on one submission is that
student's row and never the batch's end. What crosses the process boundary is plain data: the
job as JSON going in, ``results.to_dict`` coming back. The process grades a private copy of the
submission, taken from one descriptor opened without following any link (``stage``), never the
file in the submissions folder itself.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .. import files
from ..errors import GradingError, InputError, quoted
from ..fstree import remove_tree
from ..results import to_dict
from ..sandbox import cores
from ..submission import MAX_SUBMISSION_BYTES
from .discover import Job, refusal

__all__ = ["Settings", "run_job", "child_main", "stage", "cores", "stop_children"]


@dataclass(frozen=True)
class Settings:
    """What every job of a batch shares; plain data, so it travels to a Dask worker."""

    profile: str
    rubric: str  # path of the rubric file
    rubric_digest: str
    out: str  # the batch output folder (absolute)
    folder: str  # the submissions folder (absolute)
    data: str | None = None
    timeout: float | None = None  # None: the profile's
    cell_timeout: float | None = None
    threads: int | None = None  # per kernel; None: this machine's cores / its worker slots
    limit: float = 0.0  # seconds a job may take in all before it is killed (0: no limit)


# --------------------------------------------------------------------------- the child


def _die_with_parent(parent: int) -> None:
    """Linux: SIGTERM when the process that started us dies, even by SIGKILL."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _on_sigterm(signum, frame):
    # Unwinding (not exiting on the spot) lets nbclient shut the kernel down and
    # subprocess.run kill the evaluator, so nothing of a killed batch keeps running.
    raise SystemExit(128 + signum)


def stage(folder: str, shown: str, staging: Path) -> str:
    """Copy the submission ``shown`` (relative to ``folder``) to the same relative path under
    ``staging``; the SHA-256 of exactly the bytes copied. ``InputError`` when it is a link, is
    reached through one, or is not a regular file."""
    dest = staging / PurePosixPath(shown)
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = files.open_beneath(folder, shown)
    except files.Refused as exc:
        raise InputError(f"{shown} was not graded: {refusal(exc.what)}.", path=shown) from None
    try:
        return files.copy_at_most(fd, dest, MAX_SUBMISSION_BYTES)
    except files.TooLarge as exc:
        raise InputError(f"{shown} is {exc.size >> 20} MB; a submission may have at most "
                         f"{MAX_SUBMISSION_BYTES >> 20} MB (clear the outputs).",
                         path=shown) from None
    finally:
        os.close(fd)


def _grade(job: Job, settings: Settings, out: Path, threads: int | None) -> dict:
    """Stage the submission, grade the copy; the outcome as plain data."""
    from ..pipeline import grade_submission

    staging, cwd = out.parent / f".{job.folder}.submission", os.getcwd()
    shutil.rmtree(staging, ignore_errors=True)  # left by a grading that was killed
    staging.mkdir(mode=0o700)
    try:
        content = stage(settings.folder, job.shown, staging)
        os.chdir(staging)  # reports name the file as the TA knows it: "bob/ex8.ipynb"
        result = grade_submission(job.shown, profile=settings.profile, rubric=settings.rubric,
                                  out=out, data=settings.data, timeout=settings.timeout,
                                  cell_timeout=settings.cell_timeout, threads=threads)
        return {"result": to_dict(result), "content": content}
    except GradingError as err:
        return {"error": str(err), "kind": err.reason}
    except Exception as exc:  # a grader bug on this submission: its row says so, others go on
        traceback.print_exc()
        return {"error": f"The grader crashed on this submission ({type(exc).__name__}: "
                         f"{quoted(exc)}).", "kind": type(exc).__name__}
    finally:
        os.chdir(cwd)
        shutil.rmtree(staging, ignore_errors=True)


def child_main() -> int:
    """``python -m grader.batch``: grade the job on stdin, print the outcome as JSON on stdout."""
    payload_fd = os.dup(1)
    os.dup2(2, 1)  # whatever else prints goes to stderr, so stdout carries only the payload
    spec = json.loads(sys.stdin.read())
    signal.signal(signal.SIGTERM, _on_sigterm)
    _die_with_parent(spec["parent"])
    job, settings = Job(**spec["job"]), Settings(**spec["settings"])
    out = Path(settings.out) / job.folder
    # A grading left running by a killed batch (a Dask task carries on without its client)
    # finishes before this one starts on the same folder; the lock goes when its holder does.
    lock = open(out.parent / f".{job.folder}.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    if out.exists():  # nothing of an earlier run may show in this one's report (its kernel's
        remove_tree(out)  # tree too, however deep)
    outcome = _grade(job, settings, out, spec["threads"])
    with os.fdopen(payload_fd, "wb") as fh:
        fh.write(json.dumps(outcome).encode())
    return 0


# --------------------------------------------------------------------------- the parent


def _local_threads() -> int | None:
    """On a Dask worker: this machine's cores shared among the worker's task slots."""
    try:
        from distributed import get_worker

        slots = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        return None
    return max(1, cores() // max(1, slots))


_LIVE: set[subprocess.Popen] = set()  # children of this process, ended if the batch stops
_LIVE_LOCK = threading.Lock()


def stop_children() -> None:
    """End every grading process this process started (the batch stops early)."""
    with _LIVE_LOCK:
        for proc in _LIVE:
            proc.terminate()


def run_job(job: Job, settings: Settings) -> dict:
    """Grade one submission in a child process; the outcome as plain data, never an exception.

    ``{"result": <results.to_dict>, "content": <sha256 of the bytes graded>}`` when the
    pipeline produced a result, else ``{"error": <one sentence>, "kind": <short name>}``;
    ``seconds`` and ``worker`` in both.
    """
    started = time.monotonic()
    spec = {"job": asdict(job), "settings": asdict(settings), "parent": os.getpid(),
            "threads": settings.threads or _local_threads()}
    # -P and the output folder as its cwd: nothing in the submissions folder (a planted
    # numpy.py, say) is ever importable by this process, which runs as root
    proc = subprocess.Popen([sys.executable, "-P", "-m", "grader.batch"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=settings.out)
    with _LIVE_LOCK:
        _LIVE.add(proc)
    try:
        stdout, stderr = proc.communicate(json.dumps(spec).encode(),
                                          timeout=settings.limit or None)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        outcome: dict[str, Any] = {
            "error": f"The grading process did not finish within {settings.limit:.0f} s and "
                     "was killed.", "kind": "GraderTimeout"}
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    else:
        try:
            outcome = json.loads(stdout)
        except ValueError:
            outcome = {"error": _death_sentence(proc.returncode, stderr), "kind": "GraderDied"}
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(proc)
    log = Path(settings.out) / job.folder / "grader.log"
    if stderr.strip() and log.parent.is_dir():
        log.write_bytes(stderr[-(1 << 20):])
    outcome["seconds"] = round(time.monotonic() - started, 1)
    outcome["worker"] = f"{socket.gethostname()}:{os.getpid()}"  # which machine and process
    return outcome


def _death_sentence(code: int, stderr: bytes) -> str:
    if code < 0:
        try:
            how = f"by {signal.Signals(-code).name}"
        except ValueError:
            how = f"by signal {-code}"
    else:
        how = f"with exit code {code}"
    last = next((line for line in reversed(stderr.decode(errors="replace").splitlines())
                 if line.strip()), "")
    return f"The grading process died {how}" + (f" ({last.strip()[:200]})." if last else ".")
