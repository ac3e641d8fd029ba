"""A graded batch's totals written into the LMS's own gradebook file, ready to import back.

Canvas: the course's gradebook export (Grades > Export), one column per assignment, titled
``<title> (<assignment id>)``, under a ``Points Possible`` row; rows are matched by the Canvas
user id (``ID``, what Canvas download names carry), else ``SIS User ID`` or ``SIS Login ID``,
as Canvas' own import does. It has no comment column: only the total is filled.

Moodle: the assignment's grading worksheet (Submissions > Download grading worksheet), one row
per participant, ``Identifier`` reading ``Participant <id>`` (the id Moodle download names
carry), the ``Grade`` and ``Feedback comments`` columns filled. Moodle stores imported comments
as HTML, so the comment is escaped HTML with ``<br>`` between lines.

Only the cells filled change (``sheet``); every cell written is neutralised against
spreadsheet formulas. Students found on one side only are listed, never guessed at.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .graded import GradedBatch, GradedStudent, read_graded_batch
from .sheet import Row, Sheet, write_bytes_atomically

__all__ = ["LMS", "export_gradebook", "ExportSummary", "feedback_comment"]

LMS = ("canvas", "moodle")
#: an assignment column that names the exercise: "ex8", "Ex 08", "Exercise 8" (not "Exercise 80")
_EX8 = re.compile(r"\bex(?:ercise)?[ _-]?0?8(?!\d)", re.I)
_CANVAS_ID = re.compile(r"^(?P<title>.*\S)\s*\((?P<id>\d+)\)$")
#: Canvas' student columns and its computed ones (its importer skips the same)
_CANVAS_INFO = {"Student", "LastName", "FirstName", "ID", "SIS User ID", "SIS Login ID",
                "Integration ID", "Root Account", "Section"}
_CANVAS_COMPUTED = re.compile(r"Current Score|Current Points|Current Grade|Final Score|"
                              r"Final Points|Final Grade|Override Score|Override Grade|"
                              r"Override Status")
_CANVAS_POSTING = re.compile(r"^\s*(Muted|Manual Posting.*)?\s*$", re.I)
_MOODLE_ID = re.compile(r"(\d+)\s*$")


@dataclass(frozen=True)
class _Target:
    """Where the grades go in one LMS file."""

    column: int
    title: str
    comment: int | None  # the feedback column, when the LMS has one
    maximum: float | None  # points possible / maximum grade, when the file says
    #: each student row, its ids (best first; "" where the file has none) and the name shown
    rows: tuple[tuple[Row, tuple[str, ...], str], ...]
    locked: dict[int, str] = field(default_factory=dict)  # row number -> why it is left alone


@dataclass(frozen=True)
class ExportSummary:
    lms: str
    out: Path
    column: str  # the column filled
    filled: tuple[str, ...]  # student ids whose total was written
    only_batch: tuple[tuple[str, str], ...]  # (id, name): graded, no row in the LMS file
    only_lms: tuple[tuple[str, str], ...]  # (id, name): a row in the file, nothing graded
    no_total: tuple[tuple[str, str], ...]  # (id, why): matched, but nothing to fill in
    kept: tuple[tuple[str, str], ...]  # (id, why): matched, the LMS's cell left alone
    over_maximum: tuple[tuple[str, float], ...]  # (id, total) above the file's maximum
    maximum: float | None = None
    comments: bool = False  # whether a feedback comment was written
    #: (id, points): filled with a total that leaves out written answers still to be marked
    to_be_marked: tuple[tuple[str, float], ...] = ()

    @property
    def unmatched(self) -> bool:
        return bool(self.only_batch or self.only_lms)


def _number(text: str) -> float | None:
    try:
        return float(text.strip().replace(",", ".")) if text.strip() else None
    except ValueError:
        return None


def _points(value: float) -> str:
    """A total as the LMS reads it: no exponent, at most two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------- Canvas


def _canvas_column(names: list[str], first: int, column: str | None, sheet: Sheet) -> int:
    """The assignment column: the one named by ``column``, else the only one naming ex8."""
    candidates = [i for i, n in enumerate(names) if i >= first and n not in _CANVAS_INFO
                  and not _CANVAS_COMPUTED.search(n)]
    matches = ((i, _CANVAS_ID.match(names[i])) for i in candidates)
    titles = {i: m["title"] for i, m in matches if m}  # the assignment columns'
    assignments = list(titles)
    listed = ", ".join(repr(names[i]) for i in assignments) or "none"
    if column is not None:
        wanted = column.strip().casefold()
        for i in candidates:
            m = _CANVAS_ID.match(names[i])
            if wanted in (names[i].casefold(), m and m["title"].casefold(), m and m["id"]):
                return i
        raise InputError(f"The Canvas file {sheet.name} has no assignment column {column!r}; "
                         f"its assignment columns are {listed}.", path=sheet.name)
    named = [i for i, title in titles.items() if _EX8.search(title)]
    if len(named) == 1:
        return named[0]
    how = f"{len(named)} assignment columns name" if named else "no assignment column names"
    raise InputError(f"In the Canvas file {sheet.name}, {how} Exercise 8; choose one with "
                     f"--column (its assignment columns are {listed}).", path=sheet.name)


def _canvas(sheet: Sheet, column: str | None) -> _Target:
    header = sheet.rows[0] if sheet.rows else None
    names = [c.value.strip() for c in header.cells] if header else []
    split_name = names[:2] == ["LastName", "FirstName"]
    id_col = 2 if split_name else 1
    if len(names) <= 3 or not (split_name or "Student" in names[0]) or \
            "ID" not in names[id_col]:
        raise InputError(f"The file {sheet.name} is not a Canvas gradebook export: its first "
                         "row should begin with Student, ID (Grades > Export in the course).",
                         path=sheet.name)
    sis = [names.index(n) for n in ("SIS User ID", "SIS Login ID") if n in names]
    first = names.index("Section") + 1 if "Section" in names else id_col + 1
    col = _canvas_column(names, first, column, sheet)
    maximum, locked, rows = None, {}, []
    for row in sheet.rows[1:]:
        if "Points Possible" in row[0]:
            if re.search(r"read\s+only", row[col]):
                raise InputError(f"In the Canvas file {sheet.name}, the column {names[col]!r} "
                                 "is read only.", path=sheet.name)
            maximum = _number(row[col])
        elif not row.blank and not all(_CANVAS_POSTING.match(c.value) for c in row.cells):
            ids = tuple(row[c].strip() for c in (id_col, *sis))
            name = f"{row[1]} {row[0]}".strip() if split_name else row[0]
            rows.append((row, ids, name))
            cell = row[col].strip()
            if cell.upper() == "EX":
                locked[row.number] = "excused (EX) in Canvas"
            elif cell.upper() == "N/A":
                locked[row.number] = "the assignment is not assigned to them in Canvas (N/A)"
    return _Target(col, names[col], None, maximum, tuple(rows), locked)


# --------------------------------------------------------------------------- Moodle


def _moodle(sheet: Sheet, column: str | None) -> _Target:
    names = [c.value.strip() for c in sheet.rows[0].cells] if sheet.rows else []
    grade = column or "Grade"
    if "Identifier" not in names or grade not in names:
        missing = "Identifier" if "Identifier" not in names else grade
        raise InputError(f"The file {sheet.name} is not a Moodle grading worksheet: it has no "
                         f"{missing!r} column (Submissions > Download grading worksheet, "
                         "with English column names; --column names the grade column).",
                         path=sheet.name)
    def index(header: str) -> int | None:
        return names.index(header) if header in names else None

    # the two columns it must have, as checked above; the others may be missing
    id_col, col = names.index("Identifier"), names.index(grade)
    comment = index("Feedback comments")
    name_col, max_col, can_change = index("Full name"), index("Maximum Grade"), \
        index("Grade can be changed")
    maximum, locked, rows = None, {}, []
    for row in sheet.rows[1:]:
        if row.blank:
            continue
        m = _MOODLE_ID.search(row[id_col])
        rows.append((row, (m[1],) if m else (), row[id_col if name_col is None else name_col]))
        if max_col is not None:
            maximum = _number(row[max_col]) or maximum
        if can_change is not None and row[can_change].strip().lower() == "no":
            locked[row.number] = "Moodle says the grade cannot be changed"
    return _Target(col, names[col], comment, maximum, tuple(rows), locked)


# --------------------------------------------------------------------------- both


def feedback_comment(student: GradedStudent, profile: str) -> str:
    """What a student reads beside the grade: the total, each task's points and which checks
    lost points, what is still to be marked; escaped HTML (Moodle stores comments as HTML)."""
    how = f" ({profile} profile)" if profile else ""
    tasks = student.result.tasks if student.result else ()
    marked = sum(t.marked for t in tasks)
    if any(t.marked_max for t in tasks):  # the automatic points apart from the TA's marks
        lines = [f"Exercise 8{how}: {_points(student.total or 0)} points "
                 f"({_points((student.total or 0) - marked)} from the automatic checks, "
                 f"{_points(marked)} marked by a TA)."]
    else:
        lines = [f"Exercise 8, automatic grading{how}: {_points(student.total or 0)} points."]
    if student.status != "graded" and student.reason:  # timeout, kernel_died: how it ended
        lines.append(student.reason)
    for task in tasks:
        lost = [c.name.split(": ", 1)[-1] for c in task.checks if c.lost > 0]
        lines.append(f"{task.title}: {_points(task.score)} of {_points(task.max_score)}"
                     + (f"; lost: {', '.join(lost)}" if lost else ""))
        for c in task.checks:
            if c.status == "marked":
                comment = " ".join((c.comment or "").split())
                lines.append(f"{c.name}: {_points(c.score)} of {_points(c.max_score)}, marked "
                             "by a TA" + (f": {comment}" if comment else "."))
    pending = sum(t.pending for t in tasks)
    if pending:
        lines.append(f"Written answers still to be marked: {_points(pending)} points.")
    return "<br>".join(html.escape(line) for line in lines)


def _match(batch: GradedBatch, target: _Target):
    """Each graded student's row: by the best id first (Canvas' ID before its SIS ids)."""
    by_rank: list[dict[str, Row]] = []
    for row, ids, _name in target.rows:
        for rank, key in enumerate(ids):
            while len(by_rank) <= rank:
                by_rank.append({})
            if key:
                by_rank[rank].setdefault(key, row)
    found: dict[str, Row] = {}
    for s in batch.students:
        mine = next((ranked[s.student] for ranked in by_rank if s.student in ranked), None)
        if mine is not None:
            found[s.student] = mine
    return found


def export_gradebook(folder: str | Path, lms: str, template: str | Path, *,
                     out: str | Path | None = None, column: str | None = None,
                     encoding: str | None = None) -> ExportSummary:
    """Fill ``template`` (the LMS's own export) with the graded batch in ``folder``; write it to
    ``out`` (default: ``<folder>_<lms>.csv`` beside the folder). Raises ``InputError`` when a
    file is not what it should be."""
    if lms not in LMS:
        raise InputError(f"There is no LMS called {lms!r} (choose {' or '.join(LMS)}).")
    folder, template = Path(folder), Path(template)
    batch = read_graded_batch(folder)
    sheet = Sheet.read(template, encoding)
    target = (_canvas if lms == "canvas" else _moodle)(sheet, column)
    out = Path(out) if out else folder.resolve().parent / f"{folder.resolve().name}_{lms}.csv"
    if out.resolve() == template.resolve():
        raise InputError(f"The output {out} is the LMS file itself; write the filled copy "
                         "elsewhere (--out), so the original stays as the LMS exported it.",
                         path=str(out))

    found = _match(batch, target)
    claimed: dict[int, list[str]] = {}
    for student, row in found.items():
        claimed.setdefault(row.number, []).append(student)
    filled, no_total, kept, over = [], [], [], []
    for s in batch.students:
        row = found.get(s.student)
        if row is None:
            continue
        if len(claimed[row.number]) > 1:
            kept.append((s.student, f"the row of line {row.number} matches "
                                    f"{', '.join(claimed[row.number])}; filled with neither"))
        elif row.number in target.locked:
            kept.append((s.student, target.locked[row.number]))
        elif s.total is None:
            no_total.append((s.student, f"{s.status}: {s.reason}" if s.reason else s.status))
        else:
            sheet.set(row, target.column, _points(s.total))
            if target.comment is not None:
                sheet.set(row, target.comment, feedback_comment(s, batch.profile))
            filled.append(s.student)
            if target.maximum is not None and s.total > target.maximum:
                over.append((s.student, s.total))
    matched_rows = {row.number for row in found.values()}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomically(out, sheet.render())
    except OSError as exc:
        raise InputError(f"The file {out} cannot be written ({exc.strerror or exc}).",
                         path=str(out)) from exc
    return ExportSummary(
        lms=lms, out=out, column=target.title, filled=tuple(filled),
        only_batch=tuple((s.student, s.name) for s in batch.students if s.student not in found),
        only_lms=tuple((next(filter(None, ids), f"line {row.number}"), name)
                       for row, ids, name in target.rows if row.number not in matched_rows),
        no_total=tuple(no_total), kept=tuple(kept), over_maximum=tuple(over),
        maximum=target.maximum, comments=target.comment is not None,
        to_be_marked=tuple((s.student, s.pending) for s in batch.students
                           if s.student in filled and s.pending))
