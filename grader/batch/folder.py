"""``grade_folder`` and ``rescore_folder``: a folder of submissions graded (resumably) into an
output folder with ``gradebook.csv``, one folder per student and ``index.html``; and a graded
batch re-scored with an edited rubric without running anything again."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TextIO

from ..errors import InputError, RubricError, output_folder
from ..marking.marks import MARKS, apply_marks, by_student, manual_items, read_marks
from ..report import write_reports
from ..report.summary import write_index
from ..results import from_dict
from . import stored
from .discover import Job, Skipped, find_submissions
from .progress import Progress
from .runners import default_workers, run_dask, run_local
from .stored import GRADEBOOK, INDEX, MANIFEST, MARKER, Row
from .worker import Settings, cores

__all__ = ["BatchSummary", "grade_folder", "rescore_folder", "default_out", "SCORED"]


#: the statuses of a row that has points (README's table): the notebook ran, to its end or not
SCORED = ("graded", "timeout", "kernel_died")


@dataclass(frozen=True)
class BatchSummary:
    out: Path
    rows: tuple[Row, ...]
    skipped: tuple[Skipped, ...]
    graded: int  # scored by this run (graded, timeout or kernel_died)
    reused: int  # kept from an earlier run (same file, rubric and profile)
    task_ids: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)
    not_graded: int = 0  # found by this run, but not gradable as handed in
    failed: int = 0  # the grader or the machine failed on it in this run (``error``)

    @property
    def errors(self) -> int:
        return sum(r.status == "error" for r in self.rows)

    def counts(self) -> str:
        """The run in one line, each submission counted once, by its row's status."""
        parts = [f"graded {self.graded}"]
        if self.not_graded:
            parts.append(f"not graded {self.not_graded} (the files as handed in)")
        if self.failed:
            parts.append(f"failed {self.failed} (graded again on the next run)")
        files = len(self.skipped)
        parts += [f"kept {self.reused} unchanged", f"skipped {files} file{'s' * (files != 1)}"]
        return ", ".join(parts)


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


@dataclass
class _Book:
    """The rows of one run as they come in; ``gradebook.csv`` is rewritten after each."""

    out: Path
    task_ids: list[str]
    rows: dict[str, Row] = field(default_factory=dict)
    #: the TA's marks (``marks.csv``), by student and (task, check): merged into each result
    marks: dict[str, dict] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        self.rows[row.student] = row
        stored.write_gradebook(self.out, self.rows, self.task_ids)
        return row

    def sorted(self) -> tuple[Row, ...]:
        return tuple(self.rows[s] for s in sorted(self.rows))


@dataclass(kw_only=True)
class _GradingBook(_Book):
    """The book of a grading run (a re-scoring's grades nothing): each row's marker says what
    it was graded under."""

    settings: Settings
    digest: str  # stored.run_digest of the rubric and profile
    timeout: float  # the run's effective time limit

    def not_graded(self, job: Job, problem: str) -> Row:
        """A job that cannot be graded as handed in (``problem``: why): its row and marker,
        every run anew."""
        result = stored.failed_result(job, self.settings, problem, "InputError")
        row = stored.row_of(job, result, 0.0)
        stored.write_marker(self.out, job, self.settings, row, self.digest, self.timeout)
        self.rows[job.student] = row
        return row

    def record(self, job: Job, outcome: dict) -> Row:
        """The row of a finished job; its marker says it is done (unless it is an ``error``).
        The marker keeps the hash of the bytes that were graded."""
        job = replace(job, content=outcome.get("content") or job.content)
        if "result" in outcome:
            result = from_dict(outcome["result"])
            if self.marks.get(job.student):  # graded again: the TA's marks stay merged in
                result, _ = apply_marks(result, self.marks[job.student])
                write_reports(result, self.out / job.folder)
        else:
            result = stored.failed_result(job, self.settings, outcome["error"], outcome["kind"])
        row = stored.row_of(job, result, outcome.get("seconds", 0.0))
        stored.write_marker(self.out, job, self.settings, row, self.digest, self.timeout,
                            outcome.get("worker", ""))
        return self.add(row)


def _settings(folder: Path, out: Path, rub, profile: str, src, timeout, cell_timeout,
              threads: int | None) -> Settings:
    effective = timeout or rub.profile(profile).timeout
    return Settings(profile=profile, rubric=str(rub.path.resolve()), rubric_digest=rub.digest,
                    out=str(out), folder=str(folder.resolve()),
                    data=str(src.path) if src.path else None, timeout=timeout,
                    cell_timeout=cell_timeout, threads=threads, limit=effective * 1.5 + 900)


def _pending(book: _GradingBook, jobs: list[Job], force: bool) -> list[Job]:
    """The jobs to grade; rows of the others (kept, or not gradable) go into the book."""
    pending = []
    for job in jobs:
        if job.problem:
            book.not_graded(job, job.problem)
            continue
        kept = None if force else stored.reusable(
            stored.read_marker(book.out / job.folder / MARKER), job, book.settings, book.timeout)
        if kept is not None:
            book.rows[job.student] = kept
        else:
            pending.append(job)
    stored.write_gradebook(book.out, book.rows, book.task_ids)
    return pending


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
    from ..data import ensure_cache
    from ..rubric import load_rubric

    folder = Path(folder)
    out = Path(out) if out else default_out(folder)
    _check_folders(folder, out)
    rub = load_rubric(rubric)
    rub.profile(profile)
    jobs, skipped = find_submissions(folder, exclude=[out])
    if not jobs:
        raise InputError(_nothing_to_grade(folder, skipped), path=str(folder))
    src, _ = ensure_cache(data)  # a missing data source stops the batch before any kernel
    # a TA's marks of an earlier run; a bad marks file stops the batch before anything
    marks = by_student(read_marks(out / MARKS, manual_items(rub, profile),
                                  [j.student for j in jobs]))
    out = output_folder(out, writes=(GRADEBOOK, MANIFEST, INDEX), earlier=(GRADEBOOK, MANIFEST))
    if scheduler:  # the Dask cluster's workers, and their threads, are its own
        runs = partial(run_dask, address=scheduler)
    else:
        workers = workers or default_workers(threads)
        threads = threads or max(1, cores() // workers)
        runs = partial(run_local, workers=workers)
    settings = _settings(folder, out, rub, profile, src, timeout, cell_timeout, threads)
    book = _GradingBook(out, [t.id for t in rub.tasks], marks=marks, settings=settings,
                        digest=stored.run_digest(rub, profile),
                        timeout=timeout or rub.profile(profile).timeout)
    stored.write_manifest(out, folder, profile, jobs, skipped)
    pending = _pending(book, jobs, force)
    reused = len(book.rows) - sum(1 for j in jobs if j.problem)
    bar = Progress(progress, len(pending))
    for s in skipped:
        bar.say(f"skipped {s.path}: {s.reason}")
    if reused:
        bar.say(f"{reused} submission(s) unchanged since the last run: kept (--force grades "
                f"them again)")
    try:
        if pending:
            for job, outcome in runs(pending, settings, progress=bar):
                bar.finished(book.record(job, outcome))
    finally:
        bar.close()
    write_index(out / INDEX, book.sorted(), rub, profile, skipped,
                names={j.student: j.shown for j in jobs})
    ran = [book.rows[j.student].status for j in pending if j.student in book.rows]
    problems = sum(1 for j in jobs if j.problem)
    return BatchSummary(out=out, rows=book.sorted(), skipped=tuple(skipped),
                        graded=sum(s in SCORED for s in ran), reused=reused,
                        task_ids=tuple(book.task_ids),
                        not_graded=problems + ran.count("not_graded"), failed=ran.count("error"))


def rescore_folder(folder: str | Path, *, rubric: str | Path | None = None,
                   out: str | Path | None = None, progress: TextIO | None = None) -> BatchSummary:
    """Apply ``rubric`` and the TA's marks (``marks.csv``) to every stored run of a graded
    batch; no notebook runs again. A bad marks file is refused before anything is written.

    ``folder`` is the graded batch's output folder, or the submissions folder (its outputs at
    ``out`` or the default place).
    """
    from ..rubric import load_rubric

    folder = Path(folder)
    if not (folder / GRADEBOOK).is_file():
        folder = Path(out) if out else default_out(folder)
    manifest = stored.read_manifest(folder / MANIFEST)
    if manifest is None or not (folder / GRADEBOOK).is_file():
        raise InputError(f"The folder {folder} holds no graded batch (no {GRADEBOOK}); grade "
                         "it first.", path=str(folder))
    rub = load_rubric(rubric)
    digest = stored.run_digest(rub, manifest.profile)
    # students that never finished are left to the next `grade` run
    markers = {e["student"]: (e, m) for e in manifest.students
               if (m := stored.read_marker(folder / e["folder"] / MARKER)) is not None}
    if any(m.run != digest for _, m in markers.values()):
        raise RubricError(f"The rubric {rub.path} changes what the {manifest.profile} profile "
                          "runs or measures (its parameters, evaluation or tasks); grade again "
                          "with --force instead of re-scoring.", path=str(rub.path))
    marks = by_student(read_marks(folder / MARKS, manual_items(rub, manifest.profile),
                                  [e["student"] for e in manifest.students]))
    book = _Book(folder, [t.id for t in rub.tasks], marks=marks)
    changed = sum(_rescore_one(book, rub, entry, marker) for entry, marker in markers.values())
    say = Progress(progress, 0).say
    say(f"re-scored {len(book.rows)} submission(s) with {rub.path}: {changed} row(s) changed")
    given = sum(1 for ms in marks.values() for m in ms.values() if m.points is not None)
    waiting = sum(1 for r in book.rows.values() if r.pending)
    if given or waiting:
        say(f"written answers: {given} mark(s) in {folder / MARKS}; {waiting} student(s) with "
            f"answers still to be marked (grade mark {folder})")
    shown = {e["student"]: e["shown"] for e in manifest.students}
    write_index(folder / INDEX, book.sorted(), rub, manifest.profile, manifest.skipped,
                names=shown)
    return BatchSummary(out=folder, rows=book.sorted(), skipped=manifest.skipped, graded=0,
                        reused=len(book.rows), task_ids=tuple(book.task_ids),
                        extra={"changed": changed})


def _rescore_one(book: _Book, rub, entry: dict[str, str], marker: stored.Marker) -> bool:
    """Re-score one student's stored run into the book; whether the row changed."""
    from ..pipeline import rescore

    student_out = book.out / entry["folder"]
    row = marker.row
    if row.status in SCORED and \
            (student_out / "result.json").is_file():
        job = Job(student=entry["student"], name=row.name, source="", shown=entry["shown"],
                  folder=entry["folder"], content=marker.content)
        row = stored.row_of(job, rescore(student_out, rub, book.marks.get(entry["student"], {})),
                            row.seconds)
    stored.save_marker(student_out / MARKER, replace(marker, rubric=rub.digest, row=row))
    book.add(row)
    return row != marker.row
