"""Result dataclasses for checks, tasks and submissions, and their Gradescope JSON form.

Renderers (HTML, JSON, CSV, terminal) read these and never change them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .cellref import place

__all__ = ["CheckResult", "TaskResult", "CellError", "MigrationHint", "SubmissionResult",
           "to_gradescope", "from_dict", "EXIT_FULL_MARKS", "EXIT_POINTS_LOST",
           "EXIT_NOT_GRADED"]

EXIT_FULL_MARKS, EXIT_POINTS_LOST, EXIT_NOT_GRADED = 0, 1, 2

#: a written answer (a ``manual`` item) is ``pending`` until a TA marks it, then ``marked`` (the
#: TA's points and comment); every other check is ``passed`` or ``failed`` by the grader, or
#: ``skipped`` (not in this profile)
Status = Literal["passed", "failed", "pending", "marked", "skipped"]


@dataclass(frozen=True)
class CheckResult:
    task: str
    check: str  # the check's id in the rubric
    kind: str  # the registry name (layers, accuracy, ...)
    name: str  # what a student reads: "Task 1: layers"
    score: float
    max_score: float
    status: Status
    message: str
    hint: str | None = None
    visibility: str = "visible"
    answer: str | None = None  # a written answer's text, as handed in (None: not a manual item)
    comment: str | None = None  # the TA's comment on a marked answer
    #: what failed this check, a key the check shares with the other checks of its task that
    #: the same cause fails (``grader.checks.base.CAUSES``); the report says a cause once
    #: (``grader.causes``). None: a finding of this check alone
    cause: str | None = None
    #: the first thing to do about it, in the student's words (a sentence)
    todo: str | None = None

    @property
    def lost(self) -> float:
        return self.max_score - self.score if self.status == "failed" else 0.0


@dataclass(frozen=True)
class CellError:
    cell: int | None  # the cell's number in the student's notebook (``cell_numbers``); None:
    # one of the grader's own cells (it can only time out there)
    task: str | None
    ename: str
    evalue: str
    traceback: str  # the tail, ANSI colours removed
    source_line: int | None = None  # 1-based line of the cell where the error was raised
    # a .py submission: its file name; ``source_line`` is then a line of that file (None: the
    # error was raised in the grader's code around it), and ``cell`` a cell of the notebook the
    # grader wrapped it in, which the feedback does not show
    module: str | None = None
    # how Jupyter shows the cell (``submission.cell_places``): its number among the code cells,
    # its first line, and the heading above it when another code cell starts with that line.
    # None in results of earlier versions, which named cells by ``cell`` alone
    code_cell: int | None = None
    first_line: str | None = None
    heading: str | None = None


@dataclass(frozen=True)
class MigrationHint:
    """A Keras 2 (or Python 2) spelling in the submission, and its Keras 3 form.

    Advice, worth no points; ``error`` is set when the line raised one of the recorded errors.
    """

    rule: str  # grader.migration.RULES: predict_classes, history_keys, print_statement, ...
    cell: int | None  # numbered like CellError.cell; None: a line of a .py module
    line: int | None  # 1-based line in the cell (or module); None when no traceback told
    task: str | None
    code: str  # the line as written
    message: str  # what changed, and what it breaks
    fix: str  # the Keras 3 spelling
    error: str | None = None  # "KeyError: 'acc'": the error this line raised
    error_cells: tuple[int, ...] = ()  # the cells whose run reported that error
    # the cell as Jupyter shows it, as in ``CellError``
    code_cell: int | None = None
    first_line: str | None = None
    heading: str | None = None


class _Totals:
    """The automatic points apart from the written answers: those a TA marked, and those
    still to be marked (``pending``: neither passed nor failed, in no total)."""

    def points(self, *statuses: str, of: str = "score") -> float:
        raise NotImplementedError

    @property
    def automatic(self) -> float:
        return self.points("passed", "failed")

    @property
    def automatic_max(self) -> float:
        return self.points("passed", "failed", of="max_score")

    @property
    def pending(self) -> float:
        """Points of the written answers still to be marked by a TA."""
        return self.points("pending", of="max_score")

    @property
    def marked(self) -> float:
        """Points a TA gave the written answers marked so far."""
        return self.points("marked")

    @property
    def marked_max(self) -> float:
        return self.points("marked", of="max_score")


@dataclass(frozen=True)
class TaskResult(_Totals):
    id: str
    title: str
    checks: tuple[CheckResult, ...]
    errors: tuple[CellError, ...] = ()

    @property
    def score(self) -> float:
        """The automatic checks' points and the TA's marks (what is to be marked counts 0)."""
        return sum(c.score for c in self.checks)

    @property
    def max_score(self) -> float:
        """Points decided in this profile: the automatic checks and the marked answers. What
        is still to be marked is ``pending``, apart (neither passed nor failed)."""
        return sum(c.max_score for c in self.checks if c.status not in ("skipped", "pending"))

    @property
    def auto_lost(self) -> float:
        return sum(c.lost for c in self.checks)

    def points(self, *statuses: str, of: str = "score") -> float:
        """The checks' ``of`` (``score`` or ``max_score``) summed over those of ``statuses``."""
        return sum(getattr(c, of) for c in self.checks if c.status in statuses)


@dataclass(frozen=True)
class SubmissionResult(_Totals):
    submission: str
    profile: str
    status: Literal["graded", "not_graded"]
    tasks: tuple[TaskResult, ...] = ()
    reason: str | None = None  # why it could not be graded, one sentence
    reason_kind: str | None = None  # the error class, to group failures
    errors: tuple[CellError, ...] = ()
    kernel: str | None = None  # "the kernel died in cell 14", "stopped after 600 s", ...
    kernel_event: str | None = None  # timeout, died, memory, disk, no_start (execute.py)
    flags: tuple[str, ...] = ()  # things a TA should look at (printed vs measured accuracy)
    confinement: tuple[str, ...] = ()  # the confinement layers that were on
    execution_time: float = 0.0
    rubric_digest: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    hints: tuple[MigrationHint, ...] = ()  # Keras 3 migration advice (grader.migration)

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tasks)

    @property
    def max_score(self) -> float:
        return sum(t.max_score for t in self.tasks)

    def points(self, *statuses: str, of: str = "score") -> float:
        return sum(t.points(*statuses, of=of) for t in self.tasks)

    @property
    def exit_code(self) -> int:
        if self.status != "graded":
            return EXIT_NOT_GRADED
        return EXIT_POINTS_LOST if any(t.auto_lost for t in self.tasks) else EXIT_FULL_MARKS


#: how Gradescope renders an output: "text" keeps the hints' indentation and shows code such as
#: ``x < 0.5`` as written (its default for the top-level output, "simple_format", reads HTML)
GRADESCOPE_FORMAT = "text"


def _gs_status(c: CheckResult) -> str:
    """Gradescope knows two: "passed" and "failed". A marked answer passes with full marks,
    as Gradescope's own default styles a test scored below its maximum as failing."""
    if c.status == "marked":
        return "passed" if c.score >= c.max_score else "failed"
    return "passed" if c.status == "passed" else "failed"


def _gs_output(c: CheckResult) -> str:
    output = c.message + (f"\nHint: {c.hint}" if c.hint and c.status == "failed" else "")
    return output + (f"\nComment: {c.comment}" if c.comment else "")


def to_gradescope(result: SubmissionResult) -> dict:
    """Gradescope's results.json: score, execution_time, tests[] with extra_data task/check.

    A written answer still to be marked is not a test: Gradescope styles every test as passed
    or failed, and this one is neither. It is listed, with its text, in the top-level
    ``output`` and in ``extra_data.to_be_marked``; ``score`` leaves it out. A check whose
    cause another check of its task says (``grader.causes``) points there instead.
    """
    from .causes import explained_by  # it reads these dataclasses

    tests, waiting = [], []
    for task in result.tasks:
        explained = explained_by(task)
        for c in task.checks:
            if c.status == "skipped":
                continue
            if c.status == "pending":
                waiting.append(c)
                continue
            output = _gs_output(c)
            if c.check in explained:  # its cause is said once, by the first check it fails
                cause = explained[c.check]
                output = f"Not checked: see “{cause.first.name}”. {cause.todo}"
            tests.append({"name": c.name, "score": c.score, "max_score": c.max_score,
                          "status": _gs_status(c), "output": output,
                          "output_format": GRADESCOPE_FORMAT, "visibility": c.visibility,
                          "extra_data": {"task": c.task, "check": c.check}})
    out: dict[str, Any] = {"score": result.score, "execution_time": round(result.execution_time),
                           "tests": tests}
    if result.status != "graded":
        out["output"] = f"Could not grade: {result.reason}"
    elif result.kernel:
        out["output"] = result.kernel
    if waiting:
        out["output"] = "\n\n".join(filter(None, [out.get("output"), _waiting_text(waiting)]))
        out["extra_data"] = {"to_be_marked": [
            {"task": c.task, "check": c.check, "name": c.name, "max_score": c.max_score,
             "answer": c.answer or ""} for c in waiting]}
    if result.hints:  # Gradescope shows students this, not feedback.html
        out["output"] = "\n\n".join(filter(None, [out.get("output"), _hints_text(result.hints)]))
    if "output" in out:
        out["output_format"] = GRADESCOPE_FORMAT
    return out


def _waiting_text(waiting: list[CheckResult]) -> str:
    points = sum(c.max_score for c in waiting)
    lines = [f"Written answers to be marked by a TA ({points:g} points, not in this score "
             "yet):"]
    for c in waiting:
        lines.append(f"- {c.name} ({c.max_score:g} points): "
                     + ("your answer:" if c.answer else "no answer was found."))
        lines.extend(f"  {line}" for line in (c.answer or "").splitlines())
    return "\n".join(lines)


def _hints_text(hints) -> str:
    lines = [f"Keras 3 migration hints (advice, no points): {len(hints)}"]
    for h in hints:
        where = (place(h) if h.cell is not None else "module") + \
            (f", line {h.line}" if h.line else "")
        lines.append(f"- {where}: {h.code}" + (f"  [raised {h.error}]" if h.error else ""))
        lines.append(f"  {h.message}")
        lines.append("  Keras 3: " + h.fix.replace("\n", "\n           "))
    return "\n".join(lines)


def to_dict(result: SubmissionResult) -> dict:
    return asdict(result)


def from_dict(data: dict) -> SubmissionResult:
    """Rebuild a result stored with ``to_dict`` (batch resume, re-scoring)."""
    tasks = tuple(TaskResult(id=t["id"], title=t["title"],
                             checks=tuple(CheckResult(**c) for c in t["checks"]),
                             errors=tuple(CellError(**e) for e in t["errors"]))
                  for t in data.get("tasks", ()))
    kwargs = {k: v for k, v in data.items() if k not in ("tasks", "errors", "hints")}
    for key in ("flags", "confinement"):
        kwargs[key] = tuple(kwargs.get(key, ()))
    hints = tuple(MigrationHint(**{**h, "error_cells": tuple(h.get("error_cells", ()))})
                  for h in data.get("hints", ()))
    return SubmissionResult(tasks=tasks, errors=tuple(CellError(**e) for e in data["errors"]),
                            hints=hints, **kwargs)
