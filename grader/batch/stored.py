"""What a batch keeps between runs: each student's row and marker (``batch.json``), the
manifest of the last run, and ``gradebook.csv``."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..report import atomic_write_text, write_reports
from ..results import SubmissionResult
from .discover import Job, Skipped
from .worker import Settings

__all__ = ["GRADEBOOK", "INDEX", "MARKER", "MANIFEST", "Row", "row_of", "failed_result",
           "run_digest", "read_json", "write_marker", "reusable", "write_manifest",
           "write_gradebook", "spreadsheet_text"]

GRADEBOOK = "gradebook.csv"
INDEX = "index.html"
MARKER = "batch.json"  # in each student's folder: what was graded, with which rubric, the row
MANIFEST = "manifest.json"  # in the output folder: the last run's students and skipped files
#: what a spreadsheet reads as the start of a formula (OWASP, "CSV Injection")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    """A text cell that a spreadsheet shows as text, never runs as a formula: one beginning
    with ``= + - @``, a tab or a carriage return gets a single quote in front, as OWASP
    advises."""
    return "'" + text if text.startswith(_FORMULA_START) else text


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
        """The gradebook's cells: numbers as the grader wrote them, text made safe to open in
        a spreadsheet (``spreadsheet_text``)."""
        pts = [f"{self.points[t]:g}" if t in self.points else "" for t in task_ids]
        total = "" if self.total is None else f"{self.total:g}"
        text = [spreadsheet_text(t) for t in (self.student, self.name, self.status,
                                               self.reason, self.feedback)]
        return [*text[:2], *pts, total, *text[2:]]


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


def row_of(job: Job, result: SubmissionResult, seconds: float) -> Row:
    status, reason = _status(result)
    points = {t.id: t.score for t in result.tasks}
    return Row(job.student, job.name, points, result.score if points else None, status, reason,
               f"{job.folder}/feedback.html", seconds)


def failed_result(job: Job, settings: Settings, reason: str, kind: str) -> SubmissionResult:
    """When no result came back, a report that says why, so every row's feedback link works."""
    result = SubmissionResult(submission=job.shown, profile=settings.profile,
                              status="not_graded", reason=reason, reason_kind=kind,
                              rubric_digest=settings.rubric_digest)
    write_reports(result, Path(settings.out) / job.folder)
    return result


def run_digest(rubric, profile: str) -> str:
    """What decides what a notebook runs and what is measured; re-scoring cannot change it."""
    prof = rubric.profile(profile)
    what = {"data": dict(rubric.data), "parameters": dict(prof.parameters),
            "evaluation": dict(prof.evaluation),
            "tasks": [[t.id, t.kind, t.builder, t.model, t.history] for t in rubric.tasks]}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_marker(out: Path, job: Job, settings: Settings, row: Row, digest: str,
                 timeout: float, worker: str = "") -> None:
    marker = {"student": job.student, "source": job.shown, "content": job.content,
              "rubric": settings.rubric_digest, "profile": settings.profile,
              "run": digest, "timeout": timeout, "worker": worker, "row": asdict(row)}
    atomic_write_text(out / job.folder / MARKER, json.dumps(marker, indent=1))


def reusable(marker: dict | None, job: Job, settings: Settings, timeout: float) -> Row | None:
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


def write_manifest(out: Path, folder: Path, profile: str, jobs: list[Job],
                   skipped: list[Skipped]) -> None:
    manifest = {"folder": str(folder.resolve()), "profile": profile,
                "students": [{"student": j.student, "folder": j.folder, "shown": j.shown}
                             for j in jobs],
                "skipped": [asdict(s) for s in skipped]}
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1))


def write_gradebook(out: Path, rows: dict[str, Row], task_ids: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "name", *task_ids, "total", "status", "reason", "feedback"])
    for student in sorted(rows):
        writer.writerow(rows[student].cells(task_ids))
    atomic_write_text(out / GRADEBOOK, buf.getvalue())
