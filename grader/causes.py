"""A task's failed checks grouped by cause, so that each cause is said once.

One cause often fails several checks: a builder that still raises the template's
``NotImplementedError`` leaves nothing for the layers, the parameter count, the output shape and
the compile settings to look at. The checks name such a cause with a stable key
(``CheckResult.cause``, one of ``grader.checks.base.CAUSES``); here the failed checks of a task
that share a key become one ``Cause``: what to do first, what it is worth, the checks it fails.
The feedback page, the terminal summary and results.json render these and change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from .results import CheckResult, TaskResult

__all__ = ["Cause", "causes", "explained_by", "check_title"]


def check_title(check: CheckResult) -> str:
    """A check's name without its task: "layers" for "Task 1: layers"."""
    return check.name.split(": ", 1)[-1]


@dataclass(frozen=True)
class Cause:
    key: str | None  # None: the finding of one check alone
    todo: str  # what to do, in the student's words: a sentence
    checks: tuple[CheckResult, ...]  # the failed checks it explains, in the rubric's order

    @property
    def first(self) -> CheckResult:
        """The check that says the cause; the others say "not checked: see above"."""
        return self.checks[0]

    @property
    def lost(self) -> float:
        """The points it costs: what fixing it can earn."""
        return sum(c.lost for c in self.checks)

    @property
    def titles(self) -> list[str]:
        return [check_title(c) for c in self.checks]


def _todo(check: CheckResult) -> str:
    if check.todo:
        return check.todo
    # a result stored before checks said what to do: the finding, without its task's label
    text = check.message.split(": ", 1)[-1]
    return text[:1].upper() + text[1:]


def causes(task: TaskResult) -> list[Cause]:
    """The causes of a task's failed checks: those that cost points first, each group in the
    order of its first check in the rubric (the builder before its model's structure, that
    before the training), so the first is the first thing to do. Checks with the same cause key
    form one cause; a check without one is a cause of its own."""
    groups: dict[object, list[CheckResult]] = {}
    for check in task.checks:
        if check.status != "failed":
            continue
        groups.setdefault(check.cause if check.cause else ("alone", check.check), []).append(check)
    found = [Cause(key=checks[0].cause, todo=_todo(checks[0]), checks=tuple(checks))
             for checks in groups.values()]
    return sorted(found, key=lambda cause: cause.lost == 0)  # stable: the rubric's order


def explained_by(task: TaskResult) -> dict[str, Cause]:
    """The checks that are not checked because of a cause another check of the task says:
    ``{check id: cause}``."""
    return {c.check: cause for cause in causes(task) for c in cause.checks[1:]}
