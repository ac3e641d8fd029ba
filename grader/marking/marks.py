"""The marks file (``marks.csv`` in a graded output folder): the TA's points and comments on the
written answers, read by one validating reader and merged into a result.

The file is the TA's: ``grade mark`` writes it as marks are typed, and a TA may edit it by hand
(one row per student and written answer; a row with no points is a comment not yet marked).
A file with a bad value is refused whole, with one sentence naming the file, the line and the
value; nothing is merged from it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Mapping

from .. import files
from ..errors import InputError
from ..results import SubmissionResult, TaskResult

__all__ = ["MARKS", "COLUMNS", "Mark", "Key", "MarksError", "manual_items", "read_marks",
           "write_marks", "answer_digest", "apply_marks", "by_student", "single_marks",
           "points_text", "parse_points"]

MARKS = "marks.csv"
COLUMNS = ("student", "task", "check", "points", "comment", "marked_by", "marked_at",
           "answer_digest")
_REQUIRED = ("student", "task", "check", "points")
_LIMIT = 16 << 20  # 300 students' marks take some 100 kB
COMMENT_CHARS = 10_000
#: what a spreadsheet reads as the start of a formula (OWASP, "CSV Injection"); such a cell is
#: written with a leading quote and read back without it
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Key = tuple[str, str, str]  # (student, task, check)


class MarksError(InputError):
    """The marks file cannot be used: one sentence naming the file, the line and the value."""


@dataclass(frozen=True)
class Mark:
    student: str
    task: str
    check: str
    points: float | None  # None: not marked yet (a comment typed first)
    comment: str = ""
    marked_by: str = ""
    marked_at: str = ""  # ISO 8601, UTC
    answer_digest: str = ""  # of the answer that was marked; "": whatever the answer is now

    @property
    def key(self) -> Key:
        return (self.student, self.task, self.check)

    def applies_to(self, answer: str) -> bool:
        """Marked, and for this answer (not one the student has changed since)."""
        return self.points is not None and \
            (not self.answer_digest or self.answer_digest == answer_digest(answer))


def answer_digest(answer: str) -> str:
    """A short fingerprint of an answer's text: a mark is for the answer it was given to."""
    return hashlib.sha256(answer.encode("utf-8")).hexdigest()[:16]


def points_text(points: float | None) -> str:
    return "" if points is None else f"{points:g}"


def manual_items(rubric, profile: str) -> dict[tuple[str, str], float]:
    """The written answers of ``profile``: ``{(task, check): points}``, in the rubric's order."""
    return {(t.id, c.id): float(c.points) for t in rubric.tasks for c in t.checks
            if c.check == "manual" and c.applies_to(profile)}


def parse_points(text: str, worth: float) -> float | None:
    """Points as typed (``1.5``, ``1,5``); None for nothing. ``ValueError`` with the reason
    (the words after "the points '...' ") when it is not a number from 0 to ``worth``."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise ValueError("are not a number") from None
    if not math.isfinite(value) or not 0 <= value <= worth:
        raise ValueError(f"are not between 0 and {worth:g}")
    return value


def _cell(text: str) -> str:
    """A text cell a spreadsheet shows as text (a formula-like one gets a leading quote)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _uncell(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(_FORMULA_START) else text


def _decode(path: Path) -> str:
    try:
        fd = files.open_regular(path, follow=False)
    except files.Refused as exc:
        raise MarksError(f"The marks file {path} is {exc.what}, not a regular file.",
                         path=str(path)) from None
    try:
        raw = files.read_at_most(fd, _LIMIT)
    except files.TooLarge:
        raise MarksError(f"The marks file {path} is larger than {_LIMIT >> 20} MB, far more "
                         "than any class's marks.", path=str(path)) from None
    finally:
        os.close(fd)
    try:
        return raw.decode("utf-8-sig")  # a spreadsheet may put a byte order mark first
    except UnicodeDecodeError:
        raise MarksError(f"The marks file {path} is not UTF-8 text; save it as CSV (UTF-8).",
                         path=str(path)) from None


def read_marks(path: Path, items: Mapping[tuple[str, str], float],
               students: Iterable[str] | None = None) -> dict[Key, Mark]:
    """The marks in ``path`` (none when there is no such file), each checked: a written answer
    of ``items``, a student of ``students`` (when given), points from 0 to what the answer is
    worth, once per student and answer. ``MarksError`` names the first bad line."""
    if not path.exists() and not path.is_symlink():
        return {}
    text = _decode(path)
    first = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first and "," not in first else ","  # a spreadsheet's locale
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        raise MarksError(f"The marks file {path}, line 1: {exc}.", path=str(path)) from None
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise MarksError(f"The marks file {path} has no {missing[0]!r} column; its first line "
                         f"must name the columns {', '.join(COLUMNS)}.", path=str(path))
    known = None if students is None else set(students)
    marks: dict[Key, Mark] = {}
    lines: dict[Key, int] = {}
    line = 1
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise MarksError(f"The marks file {path}, line {start}: {exc}.",
                             path=str(path)) from None
        line = start
        if not any(cell.strip() for cell in record):
            continue
        row = dict(zip(header, (_uncell(c) for c in record)))
        mark = _mark(path, line, row, items, known)
        if mark.key in lines:
            raise MarksError(f"The marks file {path}, line {line}: {mark.student}'s "
                             f"{mark.task}/{mark.check} is marked on line {lines[mark.key]} "
                             "already.", path=str(path))
        lines[mark.key] = line
        marks[mark.key] = mark
    return marks


def _mark(path: Path, line: int, row: dict[str, str], items, known) -> Mark:
    def bad(what: str) -> MarksError:
        return MarksError(f"The marks file {path}, line {line}: {what}.", path=str(path))

    student = row.get("student", "").strip()
    task, check = row.get("task", "").strip(), row.get("check", "").strip()
    if not student:
        raise bad("the student is empty")
    if known is not None and student not in known:
        raise bad(f"there is no student {student!r} in this folder")
    if (task, check) not in items:
        listed = ", ".join(f"{t}/{c}" for t, c in items) or "none"
        raise bad(f"{task + '/' + check!r} is not a written answer of the rubric "
                  f"(these are: {listed})")
    worth = items[(task, check)]
    try:
        points = parse_points(row.get("points", ""), worth)
    except ValueError as exc:
        raise bad(f"the points {row.get('points', '')!r} {exc}"
                  + (f" ({task}/{check} is worth {worth:g})" if "between" in str(exc) else "")
                  ) from None
    comment = row.get("comment", "")
    if len(comment) > COMMENT_CHARS:
        raise bad(f"the comment is longer than {COMMENT_CHARS:,} characters")
    return Mark(student, task, check, points, comment, row.get("marked_by", "").strip(),
                row.get("marked_at", "").strip(), row.get("answer_digest", "").strip())


def write_marks(path: Path, marks: Iterable[Mark]) -> None:
    """The whole file, sorted by student, task and check, written atomically."""
    from ..report import atomic_write_text

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for m in sorted(marks, key=lambda m: m.key):
        writer.writerow([_cell(m.student), m.task, m.check, points_text(m.points),
                         _cell(m.comment), _cell(m.marked_by), m.marked_at, m.answer_digest])
    atomic_write_text(path, buf.getvalue())


def apply_marks(result: SubmissionResult, marks: Mapping[tuple[str, str], Mark]
                ) -> tuple[SubmissionResult, list[Mark]]:
    """``result`` (fresh from the checks) with each written answer a TA marked: ``marked``,
    the TA's points and comment. ``marks`` is one student's, by ``(task, check)``. Also
    returns the marks left out because the answer changed since it was marked."""
    if result.status != "graded":
        return result, []
    stale: list[Mark] = []
    tasks: list[TaskResult] = []
    for task in result.tasks:
        checks = []
        for c in task.checks:
            mark = marks.get((c.task, c.check)) if c.status == "pending" else None
            if mark is not None and mark.points is not None:  # marked (not a comment only)
                if mark.applies_to(c.answer or ""):
                    label = c.name.split(": ", 1)[0]
                    c = replace(c, status="marked", score=mark.points,
                                message=f"{label}: marked by a TA, {mark.points:g} of "
                                        f"{c.max_score:g} points.", comment=mark.comment or None)
                else:  # the answer changed since
                    stale.append(mark)
                    c = replace(c, message=f"{c.message} It was marked ({mark.points:g} points) "
                                           "before the answer changed, so it is to be marked "
                                           "again.")
            checks.append(c)
        tasks.append(replace(task, checks=tuple(checks)))
    return replace(result, tasks=tuple(tasks)), stale


def single_marks(folder: Path, rubric, profile: str, student: str
                 ) -> dict[tuple[str, str], Mark]:
    """The marks of one grading's output folder (its ``marks.csv`` holds one student's)."""
    return by_student(read_marks(folder / MARKS, manual_items(rubric, profile), [student])
                      ).get(student, {})


def by_student(marks: Mapping[Key, Mark]) -> dict[str, dict[tuple[str, str], Mark]]:
    """``{student: {(task, check): mark}}``."""
    out: dict[str, dict[tuple[str, str], Mark]] = {}
    for (student, task, check), mark in marks.items():
        out.setdefault(student, {})[(task, check)] = mark
    return out
