"""What a batch keeps between runs: each student's row and marker (``batch.json``), the
manifest of the last run, and ``gradebook.csv``.

Markers and the manifest are read back by validating readers with a size bound: a file that is
not what this module wrote is treated as absent (that student is graded again), never trusted
field by field.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import files
from ..report import atomic_write_text, write_reports
from ..results import SubmissionResult
from .discover import Job, Skipped
from .worker import Settings

__all__ = ["GRADEBOOK", "INDEX", "MARKER", "MANIFEST", "STATUSES", "Row", "Marker", "Manifest",
           "row_of", "failed_result", "run_digest", "write_marker", "save_marker", "read_marker",
           "reusable", "write_manifest", "read_manifest", "write_gradebook", "spreadsheet_text",
           "HEAD_COLUMNS", "TAIL_COLUMNS"]

GRADEBOOK = "gradebook.csv"
INDEX = "index.html"
MARKER = "batch.json"  # in each student's folder: what was graded, with which rubric, the row
MANIFEST = "manifest.json"  # in the output folder: the last run's students and skipped files
STATUSES = ("graded", "timeout", "kernel_died", "not_graded", "error")
_MARKER_BYTES = 1 << 20
_MANIFEST_BYTES = 64 << 20
#: what a spreadsheet reads as the start of a formula (OWASP, "CSV Injection")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    """A text cell that a spreadsheet shows as text, never runs as a formula: one beginning
    with ``= + - @``, a tab or a carriage return gets a single quote in front, as OWASP
    advises."""
    return "'" + text if text.startswith(_FORMULA_START) else text


#: the gradebook's columns around the tasks' (one per task id, its points: the automatic
#: checks' and the TA's marks)
HEAD_COLUMNS = ("student", "name")
TAIL_COLUMNS = ("automatic", "marked", "to_be_marked", "total", "status", "reason", "feedback")


@dataclass(frozen=True)
class Row:
    """One line of the gradebook."""

    student: str
    name: str
    points: dict[str, float]  # per task id; empty when nothing was graded
    total: float | None  # the automatic points and the TA's marks so far
    status: str
    reason: str
    feedback: str  # relative to the batch output folder
    seconds: float = 0.0
    automatic: float | None = None  # the automatic checks' points
    marked: float | None = None  # the points a TA gave the written answers marked so far
    #: the points of the written answers still to be marked (None: not known, a row kept from
    #: before marks were recorded; ``grade rescore`` fills it in)
    pending: float | None = None

    def cells(self, task_ids: list[str]) -> list[str]:
        """The gradebook's cells: numbers as the grader wrote them, text made safe to open in
        a spreadsheet (``spreadsheet_text``)."""
        pts = [f"{self.points[t]:g}" if t in self.points else "" for t in task_ids]
        numbers = ["" if v is None else f"{v:g}"
                   for v in (self.automatic, self.marked, self.pending, self.total)]
        text = [spreadsheet_text(t) for t in (self.student, self.name, self.status,
                                               self.reason, self.feedback)]
        return [*text[:2], *pts, *numbers, *text[2:]]

    @classmethod
    def from_dict(cls, data) -> Row | None:
        """The row as ``asdict`` stored it, or None when it is not one. A row stored before
        marks were recorded has no automatic, marked, pending: its total was all automatic."""
        text = ("student", "name", "status", "reason", "feedback")
        base = {*text, "points", "total", "seconds"}
        marks = ("automatic", "marked", "pending")
        if not isinstance(data, dict) or set(data) not in (base, base | set(marks)) or \
                not all(isinstance(data[k], str) for k in text) or \
                data["status"] not in STATUSES or not isinstance(data["points"], dict) or \
                not all(isinstance(k, str) and _number(v) for k, v in data["points"].items()) or \
                not all(data.get(k) is None or _number(data[k]) for k in ("total", *marks)) or \
                not _number(data["seconds"]):
            return None
        if set(data) == base and data["total"] is not None:
            data = {**data, "automatic": data["total"], "marked": 0.0}
        return cls(**data)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


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
    if not points:
        return Row(job.student, job.name, points, None, status, reason,
                   f"{job.folder}/feedback.html", seconds)
    return Row(job.student, job.name, points, result.score, status, reason,
               f"{job.folder}/feedback.html", seconds, automatic=result.automatic,
               marked=result.marked, pending=result.pending)


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


def _read_object(path: Path, limit: int) -> dict | None:
    """The JSON object in the grader's own file ``path``, or None (absent, a link, too large,
    not JSON, not an object)."""
    try:
        fd = files.open_regular(path, follow=False)
    except files.Refused:
        return None
    try:
        data = json.loads(files.read_at_most(fd, limit))
    except (files.TooLarge, OSError, ValueError, RecursionError):
        return None
    finally:
        os.close(fd)
    return data if isinstance(data, dict) else None


# --------------------------------------------------------------------------- markers


@dataclass(frozen=True)
class Marker:
    """``batch.json``: what was graded (the file's SHA-256), with which rubric, profile, run
    digest and time limit, by which worker, and the row it gave."""

    student: str
    source: str
    content: str
    rubric: str
    profile: str
    run: str
    timeout: float
    worker: str
    row: Row


def write_marker(out: Path, job: Job, settings: Settings, row: Row, digest: str,
                 timeout: float, worker: str = "") -> None:
    save_marker(out / job.folder / MARKER, Marker(
        job.student, job.shown, job.content, settings.rubric_digest, settings.profile, digest,
        timeout, worker, row))


def save_marker(path: Path, marker: Marker) -> None:
    atomic_write_text(path, json.dumps(asdict(marker), indent=1))


def read_marker(path: Path) -> Marker | None:
    """The marker at ``path``, or None when there is none that this module could have
    written (that student is then graded again)."""
    data = _read_object(path, _MARKER_BYTES)
    fields = ("student", "source", "content", "rubric", "profile", "run", "worker")
    if data is None or not all(isinstance(data.get(k), str) for k in fields) or \
            not _number(data.get("timeout")):
        return None
    row = Row.from_dict(data.get("row"))
    return None if row is None else Marker(**{k: data[k] for k in fields},
                                           timeout=data["timeout"], row=row)


def reusable(marker: Marker | None, job: Job, settings: Settings,
             timeout: float) -> Row | None:
    """The stored row when the same file was graded with the same rubric and profile."""
    if marker is None or (marker.content, marker.rubric, marker.profile) != \
            (job.content, settings.rubric_digest, settings.profile):
        return None
    if marker.row.status == "error":
        return None
    if marker.row.status == "timeout" and timeout > marker.timeout:
        return None  # a longer limit was asked for: this one deserves another try
    return marker.row


# --------------------------------------------------------------------------- the batch


@dataclass(frozen=True)
class Manifest:
    """``manifest.json``: the last run's submissions folder, profile, students (each with its
    output folder and the path it was handed in as) and skipped entries."""

    folder: str
    profile: str
    students: tuple[dict[str, str], ...]  # {"student", "folder", "shown"}
    skipped: tuple[Skipped, ...]


def write_manifest(out: Path, folder: Path, profile: str, jobs: list[Job],
                   skipped: list[Skipped]) -> None:
    manifest = {"folder": str(folder.resolve()), "profile": profile,
                "students": [{"student": j.student, "folder": j.folder, "shown": j.shown}
                             for j in jobs],
                "skipped": [asdict(s) for s in skipped]}
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1))


def _strings(item, keys: tuple[str, ...]) -> bool:
    return isinstance(item, dict) and set(item) == set(keys) and \
        all(isinstance(item[k], str) for k in keys)


def read_manifest(path: Path) -> Manifest | None:
    """The manifest at ``path``, or None when there is none that this module could have
    written. A student's folder must be one plain name inside the output folder."""
    data = _read_object(path, _MANIFEST_BYTES)
    if data is None or not isinstance(data.get("folder"), str) or \
            not isinstance(data.get("profile"), str):
        return None
    students, skipped = data.get("students"), data.get("skipped", [])
    if not isinstance(students, list) or not isinstance(skipped, list) or \
            not all(_strings(s, ("student", "folder", "shown")) and
                    re.fullmatch(r"[\w.-]+", s["folder"]) and s["folder"] not in (".", "..")
                    for s in students) or \
            not all(_strings(s, ("path", "reason")) for s in skipped):
        return None
    return Manifest(data["folder"], data["profile"], tuple(students),
                    tuple(Skipped(**s) for s in skipped))


def write_gradebook(out: Path, rows: dict[str, Row], task_ids: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*HEAD_COLUMNS, *task_ids, *TAIL_COLUMNS])
    for student in sorted(rows):
        writer.writerow(rows[student].cells(task_ids))
    atomic_write_text(out / GRADEBOOK, buf.getvalue())
