"""Batch grading: a folder of submissions becomes jobs, graded in parallel (local worker pool or
a Dask cluster), resumable, with ``gradebook.csv``, one feedback page per student and a summary.

Every submission is graded in a process of its own (``python -m grader.batch``), so a crash on
one submission is that student's row and never the batch's end. What crosses a process boundary
is plain data: the job as JSON going in, ``results.to_dict`` coming back.
"""

from __future__ import annotations

import csv
import ctypes
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, TextIO

from .errors import GradingError, InputError, RubricError, output_folder
from .report import atomic_write_text, write_reports
from .report.summary import write_index
from .results import SubmissionResult, from_dict, to_dict

__all__ = ["Job", "Settings", "Row", "Skipped", "BatchSummary", "find_submissions",
           "grade_folder", "rescore_folder", "run_job", "default_workers", "default_out",
           "GRADEBOOK", "INDEX", "MARKER"]

GRADEBOOK = "gradebook.csv"
INDEX = "index.html"
MARKER = "batch.json"  # in each student's folder: what was graded, with which rubric, the row
MANIFEST = "manifest.json"  # in the output folder: the last run's students and skipped files
SUFFIXES = (".ipynb", ".py")

#: Moodle: "<Full Name>_<participant id>_assignsubmission_file_<original name>", as a file or
#: (with "download submissions in folders") as a folder without the original name
_MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_[a-z]+(?:_(?P<rest>.+))?$")
#: Canvas: "<sortable name>[_late]_<user id>_<submission id>_<original name>"
_CANVAS = re.compile(r"^(?P<name>[^_]+?)(?:_late)?_(?P<id>\d+)_\d+_(?P<rest>.+)$", re.I)
#: a plain download: "<student>_ex8", also "<student>-exercise8", "<student> ex_8-1" (Canvas
#: numbers resubmissions "-1", "-2")
_OWNED = re.compile(r"^(?P<id>.*?\S)[ _-]+ex(?:ercise)?[ _-]?0?8(?:-\d+)?$", re.I)
_EX8 = re.compile(r"ex(?:ercise)?[ _-]?0?8", re.I)


# --------------------------------------------------------------------------- the folder


@dataclass(frozen=True)
class Skipped:
    path: str  # relative to the submissions folder
    reason: str


@dataclass(frozen=True)
class Job:
    """One student's submission. ``problem`` set: it cannot be graded, this is the reason."""

    student: str
    name: str
    source: str  # absolute path of the submission file ("" when there is none)
    shown: str  # the path as the TA knows it, relative to the submissions folder
    folder: str  # the student's output folder, relative to the batch output folder
    content: str = ""  # sha256 of the submission file
    problem: str | None = None


def _safe_folder(student: str) -> str:
    """A folder name for a student id that came from a file name the TA did not choose."""
    return re.sub(r"[^\w.-]+", "_", student).strip("._") or "_"


def _identify_file(name: str) -> tuple[str, str] | None:
    """(student id, name) from a loose file's name, or None when it does not say whose it is."""
    m = _MOODLE.match(name)
    if m and m["rest"]:
        return m["id"], m["name"]
    m = _CANVAS.match(name)
    if m:
        return m["id"], m["name"]
    m = _OWNED.match(Path(name).stem)
    if m:
        return m["id"], ""
    return None


def _pick(files: list[Path]) -> tuple[Path | None, str | None]:
    """The submission among a student folder's files: the one notebook, else the one module."""
    for suffix in SUFFIXES:
        found = [f for f in files if f.suffix == suffix]
        if len(found) > 1:  # several: only a name that says "ex8" decides, nothing else
            found = [f for f in found if _EX8.search(f.stem)] or found
        if len(found) == 1:
            return found[0], None
        if found:
            return None, (f"the folder holds {len(found)} {suffix} files "
                          f"({', '.join(sorted(f.name for f in found))}); keep one.")
    return None, None


def find_submissions(folder: Path, *,
                     exclude: Iterable[Path] = ()) -> tuple[list[Job], list[Skipped]]:
    """The jobs in ``folder`` (loose files or one sub-folder per student) and what was skipped.

    A file whose name does not say whose it is is skipped, not guessed at. Two entries that
    claim the same student become one row that says so.
    """
    folder = folder.resolve()
    exclude = {Path(p).resolve() for p in exclude}
    claims: dict[str, list[tuple[str, Path | None, str | None, str]]] = {}
    skipped = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.resolve() in exclude:
            continue
        shown = entry.name
        if entry.is_dir():
            m = _MOODLE.match(entry.name)
            student, name = (m["id"], m["name"]) if m and not m["rest"] else (entry.name, "")
            files = [f for f in entry.iterdir() if f.is_file() and not f.name.startswith(".")]
            path, problem = _pick(files)
            if path is None and problem is None:
                skipped.append(Skipped(shown + "/", "a folder without a notebook or .py file"))
                continue
            claims.setdefault(student, []).append(
                (name, path, problem, f"{shown}/{path.name}" if path else shown + "/"))
        elif entry.suffix not in SUFFIXES:
            skipped.append(Skipped(shown, "not a notebook or a .py file"))
        elif (who := _identify_file(entry.name)) is None:
            skipped.append(Skipped(shown, "the name does not say whose it is (expected "
                                          "<student>_ex8.ipynb, a Moodle or Canvas download "
                                          "name, or one folder per student)"))
        else:
            claims.setdefault(who[0], []).append((who[1], entry, None, shown))

    jobs, folders = [], {}
    for student, found in sorted(claims.items()):
        name = next((n for n, *_ in found if n), "")
        if len(found) > 1:
            shown = ", ".join(s for *_, s in found)
            path, problem = None, (f"{len(found)} submissions claim student {student} "
                                   f"({shown}); keep one.")
        else:
            _, path, problem, shown = found[0]
        out = _safe_folder(student)
        if out in folders:  # two ids that only differ in characters a folder name cannot keep
            out = f"{out}-{hashlib.sha256(student.encode()).hexdigest()[:8]}"
        folders[out] = student
        jobs.append(Job(student=student, name=name, source=str(path) if path else "",
                        shown=shown, folder=out, content=_sha256(path) if path else "",
                        problem=problem))
    return jobs, skipped


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- one job


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


def _child_main() -> int:
    """``python -m grader.batch``: grade the job on stdin, print the outcome as JSON on stdout."""
    payload_fd = os.dup(1)
    os.dup2(2, 1)  # whatever else prints goes to stderr, so stdout carries only the payload
    spec = json.loads(sys.stdin.read())
    signal.signal(signal.SIGTERM, _on_sigterm)
    _die_with_parent(spec["parent"])
    job, settings = Job(**spec["job"]), Settings(**spec["settings"])
    from .pipeline import grade_submission

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


def _cores() -> int:
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
    return max(1, _cores() // max(1, slots))


_LIVE: set[subprocess.Popen] = set()  # children of this process, ended if the batch stops
_LIVE_LOCK = threading.Lock()


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


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Row:
    """One line of the gradebook."""

    student: str
    name: str
    points: dict[str, float]  # per task id; empty when nothing was graded
    total: float | None
    status: str
    reason: str
    feedback: str  # relative to the batch output folder
    seconds: float = 0.0

    def cells(self, task_ids: list[str]) -> list[str]:
        pts = [f"{self.points[t]:g}" if t in self.points else "" for t in task_ids]
        total = "" if self.total is None else f"{self.total:g}"
        return [self.student, self.name, *pts, total, self.status, self.reason, self.feedback]


def _status(result: SubmissionResult) -> tuple[str, str]:
    if result.status != "graded":
        # a bad file is the submission's own; anything else is the grader's or the machine's
        kind = "not_graded" if result.reason_kind == "InputError" else "error"
        return kind, result.reason or ""
    if result.kernel:
        if result.kernel_event == "timeout":
            return "timeout", result.kernel
        if result.kernel_event == "no_start":  # the machine's fault, not the submission's
            return "error", result.kernel
        return "kernel_died", result.kernel  # died, out of memory, over the disk quota
    return "graded", " ".join(result.flags)


def _row(job: Job, result: SubmissionResult, seconds: float) -> Row:
    status, reason = _status(result)
    points = {t.id: t.score for t in result.tasks}
    return Row(job.student, job.name, points, result.score if points else None, status, reason,
               f"{job.folder}/feedback.html", seconds)


def _not_graded(job: Job, settings: Settings, reason: str, kind: str) -> SubmissionResult:
    """When no result came back, a report that says why, so every row's feedback link works."""
    result = SubmissionResult(submission=job.shown, profile=settings.profile,
                              status="not_graded", reason=reason, reason_kind=kind,
                              rubric_digest=settings.rubric_digest)
    write_reports(result, Path(settings.out) / job.folder)
    return result


def _record(job: Job, settings: Settings, outcome: dict, run_digest: str,
            timeout: float) -> Row:
    """The row of a finished job; its marker says it is done (unless it is an ``error``)."""
    if "result" in outcome:
        result = from_dict(outcome["result"])
    else:
        result = _not_graded(job, settings, outcome["error"], outcome["kind"])
    row = _row(job, result, outcome.get("seconds", 0.0))
    _write_marker(Path(settings.out), job, settings, row, run_digest, timeout,
                  outcome.get("worker", ""))
    return row


# --------------------------------------------------------------------------- stored state


def _run_digest(rubric, profile: str) -> str:
    """What decides what a notebook runs and what is measured; re-scoring cannot change it."""
    prof = rubric.profile(profile)
    what = {"data": dict(rubric.data), "parameters": dict(prof.parameters),
            "evaluation": dict(prof.evaluation),
            "tasks": [[t.id, t.kind, t.builder, t.model, t.history] for t in rubric.tasks]}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_marker(out: Path, job: Job, settings: Settings, row: Row, run_digest: str,
                  timeout: float, worker: str = "") -> None:
    marker = {"student": job.student, "source": job.shown, "content": job.content,
              "rubric": settings.rubric_digest, "profile": settings.profile,
              "run": run_digest, "timeout": timeout, "worker": worker, "row": asdict(row)}
    atomic_write_text(out / job.folder / MARKER, json.dumps(marker, indent=1))


def _reusable(marker: dict | None, job: Job, settings: Settings, timeout: float) -> Row | None:
    """The stored row when the same file was graded with the same rubric and profile."""
    if not marker or (marker.get("content"), marker.get("rubric"), marker.get("profile")) != \
            (job.content, settings.rubric_digest, settings.profile):
        return None
    row = Row(**marker["row"])
    if row.status == "error":
        return None
    if row.status == "timeout" and timeout > marker.get("timeout", 0):
        return None  # a longer limit was asked for: this one deserves another try
    return row


def _write_gradebook(out: Path, rows: dict[str, Row], task_ids: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "name", *task_ids, "total", "status", "reason", "feedback"])
    for student in sorted(rows):
        writer.writerow(rows[student].cells(task_ids))
    atomic_write_text(out / GRADEBOOK, buf.getvalue())


# --------------------------------------------------------------------------- progress


class _Progress:
    """Done / running / failed, elapsed and an estimate: a rich bar on a terminal, else lines."""

    def __init__(self, stream: TextIO | None, total: int):
        self.stream, self.total, self.done, self.failed, self.running = stream, total, 0, 0, 0
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.bar = None
        self.slots = 0  # on Dask: the cluster's task slots (what runs is not reported)
        if stream is not None and stream.isatty() and total:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self.bar = Progress(TextColumn("{task.fields[counts]}"), BarColumn(),
                                MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("left"),
                                TimeRemainingColumn(),
                                console=Console(file=stream, highlight=False))
            self.task = self.bar.add_task("grading", total=total, counts=self._counts())
            self.bar.start()

    def _counts(self) -> str:
        running = min(self.slots, self.total - self.done) if self.slots else self.running
        return f"done {self.done}, running {running}, failed {self.failed}"

    def say(self, text: str) -> None:
        if self.bar is not None:
            from rich.markup import escape

            self.bar.console.print(escape(text))
        elif self.stream is not None:
            print(text, file=self.stream, flush=True)

    def started_one(self) -> None:
        with self.lock:
            self.running += 1
            if self.bar is not None:
                self.bar.update(self.task, counts=self._counts())

    def finished(self, row: Row) -> None:
        with self.lock:
            self.done += 1
            self.failed += row.status != "graded"
            self.running = max(0, self.running - 1)
            score = "" if row.total is None else f" {row.total:g} points,"
            who = row.student + (f" ({row.name})" if row.name else "")
            line = f"{who}: {row.status},{score} {row.seconds:.0f} s" + \
                (f": {row.reason}" if row.reason and row.status != "graded" else "")
            if self.bar is not None:
                self.bar.update(self.task, advance=1, counts=self._counts())
                self.say(line)
                return
            elapsed = time.monotonic() - self.started
            left = elapsed / self.done * (self.total - self.done)
            self.say(f"[{self.done}/{self.total}] {line} | {self._counts()} | elapsed "
                     f"{_clock(elapsed)}, about {_clock(left)} left")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


# --------------------------------------------------------------------------- runners


def default_workers(threads: int | None = None) -> int:
    """As many workers as the cores allow at ``threads`` each, and memory at ~3 GB each."""
    cores = _cores()
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 0
    by_memory = max(1, memory // (3 << 30)) if memory else cores
    return max(1, min(cores // max(1, threads or 1), by_memory))


def _run_local(jobs: list[Job], settings: Settings, workers: int,
               progress: _Progress) -> Iterator[tuple[Job, dict]]:
    def work(job):
        progress.started_one()
        return run_job(job, settings)

    pool = ThreadPoolExecutor(workers, thread_name_prefix="ex8-grade")
    futures = {pool.submit(work, job): job for job in jobs}
    try:
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        for future in futures:
            future.cancel()
        with _LIVE_LOCK:  # stopped early (Ctrl-C, an error here): the children unwind too
            for proc in _LIVE:
                proc.terminate()
        pool.shutdown(wait=True)


def _run_dask(jobs: list[Job], settings: Settings, address: str,
              progress: _Progress) -> Iterator[tuple[Job, dict]]:
    from distributed import Client
    from distributed import as_completed as dask_completed

    with Client(address, set_as_default=False) as client:
        slots = sum(client.nthreads().values())
        futures = {client.submit(run_job, job, settings, pure=False,
                                 key=f"grade-{job.folder}-{uuid.uuid4().hex[:8]}"): job
                   for job in jobs}
        progress.slots = slots
        try:
            # this client is not the default one (the caller may have its own): as_completed
            # is told whose loop to use, or it looks for a default client and finds none
            for future, value in dask_completed(futures, loop=client.loop, with_results=True,
                                                raise_errors=False):
                if isinstance(value, BaseException):  # the worker itself died (KilledWorker)
                    value = {"error": f"The Dask worker grading it failed "
                                      f"({type(value).__name__}: {value}).",
                             "kind": type(value).__name__}
                yield futures[future], value
        finally:
            client.cancel(list(futures))


# --------------------------------------------------------------------------- the batch


@dataclass(frozen=True)
class BatchSummary:
    out: Path
    rows: tuple[Row, ...]
    skipped: tuple[Skipped, ...]
    graded: int  # graded by this run
    reused: int  # kept from an earlier run (same file, rubric and profile)
    task_ids: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return sum(r.status == "error" for r in self.rows)


def default_out(folder: Path) -> Path:
    """``<folder>_graded`` beside the folder (``grade .`` too: its name is the folder's own)."""
    folder = folder.resolve()
    return folder.parent / f"{folder.name}_graded"


def _check_folders(folder: Path, out: Path) -> None:
    if not folder.is_dir():
        raise InputError(f"The folder {folder} does not exist.", path=str(folder))
    f, o = folder.resolve(), out.resolve()
    if o == f or f.is_relative_to(o):
        raise InputError(f"The output folder {out} must not be the submissions folder "
                         f"{folder} or hold it.", path=str(out))


def _nothing_to_grade(folder: Path, skipped: list[Skipped]) -> str:
    if not skipped:
        return f"The folder {folder} holds no submission to grade: it is empty."
    first = skipped[0]
    more = f" (and {len(skipped) - 1} more skipped)" if len(skipped) > 1 else ""
    return f"The folder {folder} holds no submission to grade: {first.path}: " \
           f"{first.reason}{more}."


def grade_folder(folder: str | Path, *, out: str | Path | None = None, profile: str = "quick",
                 rubric: str | Path | None = None, data: str | None = None,
                 timeout: float | None = None, cell_timeout: float | None = None,
                 workers: int | None = None, threads: int | None = None,
                 scheduler: str | None = None, force: bool = False,
                 progress: TextIO | None = None) -> BatchSummary:
    """Grade every submission in ``folder``; rows of ``gradebook.csv`` appear as they finish.

    A submission graded before with the same content, rubric and profile is kept (unless
    ``force``). ``scheduler`` is a Dask scheduler address; else ``workers`` local processes
    with ``threads`` each. Raises ``GradingError`` only when the batch cannot start.
    """
    from .data import ensure_cache
    from .rubric import load_rubric

    folder = Path(folder)
    out = Path(out) if out else default_out(folder)
    _check_folders(folder, out)
    rub = load_rubric(rubric)
    prof = rub.profile(profile)
    jobs, skipped = find_submissions(folder, exclude=[out])
    if not jobs:
        raise InputError(_nothing_to_grade(folder, skipped), path=str(folder))
    src, _ = ensure_cache(data)  # a missing data source stops the batch before any kernel
    out = output_folder(out, writes=(GRADEBOOK, MANIFEST, INDEX), earlier=(GRADEBOOK, MANIFEST))
    if not scheduler:
        workers = workers or default_workers(threads)
        threads = threads or max(1, _cores() // workers)
    effective_timeout = timeout or prof.timeout
    settings = Settings(profile=profile, rubric=str(rub.path.resolve()),
                        rubric_digest=rub.digest, out=str(out), folder=str(folder.resolve()),
                        data=str(src.path) if src.path else None, timeout=timeout,
                        cell_timeout=cell_timeout, threads=threads,
                        limit=effective_timeout * 1.5 + 900)
    run_digest = _run_digest(rub, profile)
    task_ids = [t.id for t in rub.tasks]

    _write_manifest(out, folder, profile, jobs, skipped)
    rows: dict[str, Row] = {}
    pending = []
    for job in jobs:
        if job.problem:
            result = _not_graded(job, settings, job.problem, "InputError")
            rows[job.student] = _row(job, result, 0.0)
            _write_marker(out, job, settings, rows[job.student], run_digest, effective_timeout)
            continue
        stored = None if force else _reusable(_read_json(out / job.folder / MARKER), job,
                                              settings, effective_timeout)
        if stored is not None:
            rows[job.student] = stored
        else:
            pending.append(job)
    _write_gradebook(out, rows, task_ids)
    reused = len(rows) - sum(1 for j in jobs if j.problem)

    bar = _Progress(progress, len(pending))
    for s in skipped:
        bar.say(f"skipped {s.path}: {s.reason}")
    if reused:
        bar.say(f"{reused} submission(s) unchanged since the last run: kept (--force grades "
                f"them again)")
    by_student = {j.student: j for j in jobs}
    try:
        if pending:
            runner = _run_dask(pending, settings, scheduler, bar) if scheduler else \
                _run_local(pending, settings, workers, bar)
            for job, outcome in runner:
                row = _record(job, settings, outcome, run_digest, effective_timeout)
                rows[job.student] = row
                _write_gradebook(out, rows, task_ids)
                bar.finished(row)
    finally:
        bar.close()
    ordered = tuple(rows[s] for s in sorted(rows))
    write_index(out / INDEX, ordered, rub, profile, skipped,
                names={s: by_student[s].shown for s in rows})
    return BatchSummary(out=out, rows=ordered, skipped=tuple(skipped), graded=len(pending),
                        reused=reused, task_ids=tuple(task_ids))


def _write_manifest(out: Path, folder: Path, profile: str, jobs: list[Job],
                    skipped: list[Skipped]) -> None:
    manifest = {"folder": str(folder.resolve()), "profile": profile,
                "students": [{"student": j.student, "folder": j.folder, "shown": j.shown}
                             for j in jobs],
                "skipped": [asdict(s) for s in skipped]}
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1))


def rescore_folder(folder: str | Path, *, rubric: str | Path | None = None,
                   out: str | Path | None = None, progress: TextIO | None = None) -> BatchSummary:
    """Apply ``rubric`` to every stored run of a graded batch; no notebook runs again.

    ``folder`` is the graded batch's output folder, or the submissions folder (its outputs at
    ``out`` or the default place).
    """
    from .pipeline import rescore
    from .rubric import load_rubric

    folder = Path(folder)
    if not (folder / GRADEBOOK).is_file():
        folder = Path(out) if out else default_out(folder)
    manifest = _read_json(folder / MANIFEST)
    if manifest is None or not (folder / GRADEBOOK).is_file():
        raise InputError(f"The folder {folder} holds no graded batch (no {GRADEBOOK}); grade "
                         "it first.", path=str(folder))
    rub = load_rubric(rubric)
    profile = manifest["profile"]
    run_digest = _run_digest(rub, profile)
    task_ids = [t.id for t in rub.tasks]
    # students that never finished are left to the next `grade` run
    markers = {e["student"]: (e, m) for e in manifest["students"]
               if (m := _read_json(folder / e["folder"] / MARKER)) is not None}
    if any(m.get("run") != run_digest for _, m in markers.values()):
        raise RubricError(f"The rubric {rub.path} changes what the {profile} profile runs or "
                          "measures (its parameters, evaluation or tasks); grade again with "
                          "--force instead of re-scoring.", path=str(rub.path))
    rows: dict[str, Row] = {}
    bar = _Progress(progress, 0)
    changed = 0
    for student, (entry, marker) in markers.items():
        student_out = folder / entry["folder"]
        row = Row(**marker["row"])
        if row.status in ("graded", "timeout", "kernel_died") and \
                (student_out / "result.json").is_file():
            job = Job(student=student, name=row.name, source="", shown=entry["shown"],
                      folder=entry["folder"], content=marker["content"])
            new = _row(job, rescore(student_out, rub), row.seconds)
            changed += new != row
            row = new
        marker.update(rubric=rub.digest, row=asdict(row))
        atomic_write_text(student_out / MARKER, json.dumps(marker, indent=1))
        rows[student] = row
        _write_gradebook(folder, rows, task_ids)
    bar.say(f"re-scored {len(rows)} submission(s) with {rub.path}: {changed} row(s) changed")
    ordered = tuple(rows[s] for s in sorted(rows))
    skipped = [Skipped(**s) for s in manifest.get("skipped", [])]
    shown = {e["student"]: e["shown"] for e in manifest["students"]}
    write_index(folder / INDEX, ordered, rub, profile, skipped, names=shown)
    return BatchSummary(out=folder, rows=ordered, skipped=tuple(skipped), graded=0,
                        reused=len(ordered), task_ids=tuple(task_ids), extra={"changed": changed})


if __name__ == "__main__":
    sys.exit(_child_main())
