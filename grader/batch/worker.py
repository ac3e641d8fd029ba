"""The grading process of one submission (``python -m grader.batch``), and ``run_job``, which
starts it and turns whatever happens to it into plain data.

Every submission is graded in a process of its own, so a crash on one submission is that
student's row and never the batch's end. What crosses the process boundary is plain data: the
job as JSON going in, ``results.to_dict`` coming back.
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
from pathlib import Path

from ..errors import GradingError
from ..results import to_dict
from .discover import Job

__all__ = ["Settings", "run_job", "child_main", "cores", "stop_children"]


@dataclass(frozen=True)
class Settings:
    """What every job of a batch shares; plain data, so it travels to a Dask worker."""

    profile: str
    rubric: str  # path of the rubric file
    rubric_digest: str
    out: str  # the batch output folder (absolute)
    folder: str  # the submissions folder (absolute); jobs run there, so reports say "x_ex8.ipynb"
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


def child_main() -> int:
    """``python -m grader.batch``: grade the job on stdin, print the outcome as JSON on stdout."""
    payload_fd = os.dup(1)
    os.dup2(2, 1)  # whatever else prints goes to stderr, so stdout carries only the payload
    spec = json.loads(sys.stdin.read())
    signal.signal(signal.SIGTERM, _on_sigterm)
    _die_with_parent(spec["parent"])
    job, settings = Job(**spec["job"]), Settings(**spec["settings"])
    from ..pipeline import grade_submission

    out = Path(settings.out) / job.folder
    # A grading left running by a killed batch (a Dask task carries on without its client)
    # finishes before this one starts on the same folder; the lock goes when its holder does.
    lock = open(out.parent / f".{job.folder}.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    if out.exists():  # nothing of an earlier run may show in this one's report
        shutil.rmtree(out)
    try:
        result = grade_submission(job.shown, profile=settings.profile, rubric=settings.rubric,
                                  out=out, data=settings.data, timeout=settings.timeout,
                                  cell_timeout=settings.cell_timeout, threads=spec["threads"])
        outcome = {"result": to_dict(result)}
    except GradingError as err:
        outcome = {"error": str(err), "kind": err.reason}
    except Exception as exc:  # a grader bug on this submission: its row says so, others go on
        traceback.print_exc()
        outcome = {"error": f"The grader crashed on this submission ({type(exc).__name__}: "
                            f"{exc}).", "kind": type(exc).__name__}
    with os.fdopen(payload_fd, "wb") as fh:
        fh.write(json.dumps(outcome).encode())
    return 0


# --------------------------------------------------------------------------- the parent


def cores() -> int:
    """The cores this process may use (a Slurm job's, not the whole node's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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

    ``{"result": <results.to_dict>}`` when the pipeline produced a result, else
    ``{"error": <one sentence>, "kind": <short name>}``; ``seconds`` in both.
    """
    started = time.monotonic()
    spec = {"job": asdict(job), "settings": asdict(settings), "parent": os.getpid(),
            "threads": settings.threads or _local_threads()}
    proc = subprocess.Popen([sys.executable, "-m", "grader.batch"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=settings.folder)
    with _LIVE_LOCK:
        _LIVE.add(proc)
    try:
        stdout, stderr = proc.communicate(json.dumps(spec).encode(),
                                          timeout=settings.limit or None)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        outcome = {"error": f"The grading process did not finish within {settings.limit:.0f} s "
                            "and was killed.", "kind": "GraderTimeout"}
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
