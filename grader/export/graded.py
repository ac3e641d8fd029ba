"""A graded batch as its output folder stores it: ``gradebook.csv`` (one row per student),
``manifest.json`` (the profile, each student's folder) and each student's ``result.json``.

The batch runner writes these files; this reader needs nothing else of it. Each file is read
with a size bound and checked, and a file that does not hold what it should is one sentence
naming it.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..results import SubmissionResult, from_dict

__all__ = ["GradedStudent", "GradedBatch", "read_graded_batch", "GRADEBOOK", "MANIFEST"]

GRADEBOOK = "gradebook.csv"
MANIFEST = "manifest.json"
RESULT = "result.json"
_LIMIT = 64 << 20  # no stored file of a batch comes near this; a larger one is not ours
_REQUIRED = ("student", "total", "status")


@dataclass(frozen=True)
class GradedStudent:
    student: str  # the id read from the download name (Canvas user id, Moodle participant)
    name: str
    total: float | None  # None: nothing was graded (not_graded, error)
    status: str  # graded, timeout, kernel_died, not_graded, error
    reason: str
    result: SubmissionResult | None = None  # None: no readable result.json
    pending: float = 0.0  # points of written answers still to be marked (not in the total)


@dataclass(frozen=True)
class GradedBatch:
    folder: Path
    profile: str
    students: tuple[GradedStudent, ...]


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > _LIMIT:
            raise InputError(f"The file {path} is larger than any file a graded batch holds.",
                             path=str(path))
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8"
        raise InputError(f"The file {path} cannot be read ({why}).", path=str(path)) from exc


def _rows(path: Path) -> list[tuple[dict[str, str], float | None, float | None]]:
    """The gradebook's rows, each with its total and its points to be marked as numbers (None:
    the cell is empty or the column missing)."""
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    missing = [c for c in _REQUIRED if c not in (reader.fieldnames or ())]
    if missing:
        raise InputError(f"The gradebook {path} has no {missing[0]!r} column; it is not one a "
                         "batch of this grader wrote.", path=str(path))
    rows = []
    for number, row in enumerate(reader, start=2):
        numbers: list[float | None] = []
        for column, what in (("total", "total"), ("to_be_marked", "points to be marked")):
            value = row.get(column) or ""
            try:
                numbers.append(float(value) if value.strip() else None)
            except ValueError:
                raise InputError(f"The gradebook {path}, line {number}: the {what} {value!r} "
                                 "is not a number.", path=str(path)) from None
        rows.append((row, numbers[0], numbers[1]))
    return rows


def _folders(path: Path) -> tuple[str, dict[str, str]]:
    """The profile and each student's folder, from the manifest."""
    try:
        manifest = json.loads(_read_text(path))
        profile = manifest["profile"]
        folders = {e["student"]: e["folder"] for e in manifest["students"]}
        if not isinstance(profile, str) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in folders.items()):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise InputError(f"The manifest {path} is not one a batch of this grader wrote.",
                         path=str(path)) from None
    return profile, folders


def _result(folder: Path) -> SubmissionResult | None:
    """The student's stored result; None when it is missing or unreadable (the gradebook's row
    still holds the total)."""
    path = folder / RESULT
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > _LIMIT:
            return None
        return from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_graded_batch(folder: str | Path) -> GradedBatch:
    """The students of a graded batch's output folder, in the gradebook's order."""
    folder = Path(folder)
    if not (folder / GRADEBOOK).is_file():
        sibling = folder.parent / f"{folder.name}_graded"
        hint = f" (is it {sibling}?)" if (sibling / GRADEBOOK).is_file() else ""
        raise InputError(f"The folder {folder} holds no graded batch (no {GRADEBOOK}){hint}; "
                         "give the output folder of `grade FOLDER`.", path=str(folder))
    profile, folders = _folders(folder / MANIFEST) if (folder / MANIFEST).is_file() else ("", {})
    students = []
    for row, total, pending in _rows(folder / GRADEBOOK):
        own = folders.get(row["student"])
        result = _result(folder / own) if own and "/" not in own and own not in (".", "..") \
            else None
        students.append(GradedStudent(student=row["student"], name=row.get("name") or "",
                                      total=total, status=row["status"],
                                      reason=row.get("reason") or "", result=result,
                                      pending=pending or 0.0))
    return GradedBatch(folder=folder, profile=profile, students=tuple(students))
