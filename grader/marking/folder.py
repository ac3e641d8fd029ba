"""What a TA marks in a graded output folder: its written answers, each student's text, the
reference answer, and where the marks file is.

A folder is a graded batch (``gradebook.csv``, ``manifest.json``, one folder per student) or a
single grading (``result.json``). Every student's answers are read from their ``result.json``,
the grader's own file, each time a page asks (a ``grade rescore`` meanwhile shows at once).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..results import SubmissionResult, from_dict
from .marks import MARKS, manual_items

__all__ = ["Question", "Student", "MarkingFolder", "open_folder", "reference_answers"]

GRADEBOOK, MANIFEST, RESULT = "gradebook.csv", "manifest.json", "result.json"
_RESULT_BYTES = 64 << 20


@dataclass(frozen=True)
class Question:
    task: str
    check: str
    title: str  # "Task 1: LSTM with Dropout layers"
    prompt: str  # the rubric's
    question: str  # the exercise's question (the reference notebook's cell), or ""
    reference: str  # the reference answer, or ""
    points: float

    @property
    def key(self) -> tuple[str, str]:
        return (self.task, self.check)

    @property
    def slug(self) -> str:
        return f"{self.task}/{self.check}"


@dataclass(frozen=True)
class Student:
    student: str  # the key of the marks file
    name: str
    folder: Path  # where its result.json is


@dataclass(frozen=True)
class MarkingFolder:
    path: Path
    profile: str
    questions: tuple[Question, ...]
    students: tuple[Student, ...]
    batch: bool

    @property
    def marks_file(self) -> Path:
        return self.path / MARKS

    @property
    def items(self) -> dict[tuple[str, str], float]:
        return {q.key: q.points for q in self.questions}

    def question(self, task: str, check: str) -> Question | None:
        return next((q for q in self.questions if q.key == (task, check)), None)

    def answers(self, question: Question) -> dict[str, str | None]:
        """Each student's answer to ``question``; None where there is none to mark (the
        submission could not be graded, or its result holds no such item)."""
        return {s.student: self.answer(s, question) for s in self.students}

    def answer(self, student: Student, question: Question) -> str | None:
        return _answer(_result(student.folder), question)


def _result(folder: Path) -> SubmissionResult | None:
    path = folder / RESULT
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > _RESULT_BYTES:
            return None
        return from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _answer(result: SubmissionResult | None, question: Question) -> str | None:
    if result is None or result.status != "graded":
        return None
    for task in result.tasks:
        for c in task.checks:
            if (c.task, c.check) == question.key and c.kind == "manual":
                return c.answer or ""
    return None


def reference_answers() -> dict[str, tuple[str, str]]:
    """``{task: (question, answer)}`` from the reference's answer cells (``ex8_source.py``:
    markdown cells tagged ``answer``, the solution between BEGIN and END SOLUTION)."""
    try:
        from reference.build import BEGIN, END, SOURCE, parse

        cells = parse(SOURCE.read_text(encoding="utf-8"))
    except (ImportError, OSError, ValueError):
        return {}
    found = {}
    for cell in cells:
        if cell.kind != "markdown" or "answer" not in cell.tags or not cell.task:
            continue
        question: list[str] = []
        answer: list[str] = []
        inside = False
        for line in cell.lines:
            if line.strip() in (BEGIN, END):
                inside = line.strip() == BEGIN
                continue
            (answer if inside else question).append(line)
        found[cell.task] = (_unwrap(question).replace("**", ""), _unwrap(answer))
    return found


def _unwrap(lines: list[str]) -> str:
    """Markdown source as read: the lines of a paragraph joined, paragraphs apart."""
    paragraphs = "\n".join(lines).strip().split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def _batch_students(path: Path) -> tuple[str, list[Student]]:
    from ..batch.stored import read_manifest

    manifest = read_manifest(path / MANIFEST)
    if manifest is None:
        raise InputError(f"The folder {path} holds a gradebook but no manifest.json this "
                         "grader wrote; grade the folder again.", path=str(path))
    names = _names(path / GRADEBOOK)
    return manifest.profile, [Student(e["student"], names.get(e["student"], ""),
                                      path / e["folder"]) for e in manifest.students]


def _names(gradebook: Path) -> dict[str, str]:
    """Each student's name, as the gradebook shows it (the marks page shows it beside the id)."""
    import csv

    try:
        with open(gradebook, newline="", encoding="utf-8") as fh:
            return {r.get("student", ""): r.get("name", "") or "" for r in csv.DictReader(fh)}
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}


def open_folder(path: str | Path, rubric=None) -> MarkingFolder:
    """The graded output folder ``path`` (a batch's or a single grading's; or the submissions
    folder whose batch output is at the default place). ``InputError`` when it is neither."""
    from ..batch import default_out
    from ..rubric import load_rubric

    path = Path(path)
    if not (path / GRADEBOOK).is_file() and not (path / RESULT).is_file() and \
            (default_out(path) / GRADEBOOK).is_file():
        path = default_out(path)
    rub = rubric if rubric is not None and not isinstance(rubric, (str, Path)) \
        else load_rubric(rubric)
    if (path / GRADEBOOK).is_file():
        profile, students = _batch_students(path)
        batch = True
    elif (path / RESULT).is_file():
        result = _result(path)
        if result is None:
            raise InputError(f"The file {path / RESULT} cannot be read as a grading's result; "
                             "grade the submission again.", path=str(path))
        profile, batch = result.profile, False
        students = [Student(Path(result.submission).name, "", path)]
    else:
        raise InputError(f"The folder {path} holds no graded batch ({GRADEBOOK}) and no "
                         f"grading ({RESULT}); give the output folder of `grade`.",
                         path=str(path))
    refs = reference_answers()
    questions = []
    for task in rub.tasks:
        for c in task.checks:
            if (task.id, c.id) in manual_items(rub, profile):
                question, reference = refs.get(task.id, ("", ""))
                questions.append(Question(task.id, c.id, task.title,
                                          str(c.options.get("prompt", "")), question,
                                          reference, float(c.points)))
    if not questions:
        raise InputError(f"The rubric {rub.path} has no written answers to mark in the "
                         f"{profile} profile.", path=str(rub.path))
    _answers_stored(path, students)
    return MarkingFolder(path.resolve(), profile, tuple(questions), tuple(students), batch)


def _answers_stored(path: Path, students: list[Student]) -> None:
    """Results written before the grader kept the answers' text hold it only shortened in a
    message: the TA would mark the wrong text. ``grade rescore`` writes them anew."""
    for s in students:
        result = _result(s.folder)
        if result is None or result.status != "graded":
            continue
        if any(c.kind == "manual" and c.answer is None for t in result.tasks for c in t.checks):
            raise InputError(f"The results in {path} were written by an earlier version of the "
                             f"grader, without the answers' text; run `grade rescore {path}` "
                             "first.", path=str(path))
        return
