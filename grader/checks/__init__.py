"""The registry of checks the rubric can name: ``name -> CheckEntry``, built here in code, and
``run_check``: one rubric item applied to a task's context, as ``grade`` and the notebook's
``check()`` both apply it."""

from __future__ import annotations

import sys
import traceback
from types import MappingProxyType

from ..results import CheckResult, Status

from ..errors import quoted
from .base import CheckEntry, Outcome, TaskContext, option
from .history import check_history, check_learns, validate_epochs, validate_ratio
from .manual import check_manual
from .metrics import check_accuracy, validate_threshold
from .movies import check_movie_prediction, check_movies
from .structure import (check_builder, check_compile, check_layers, check_output_shape,
                        check_param_count, validate_layer_spec)

__all__ = ["REGISTRY", "CheckEntry", "Outcome", "TaskContext", "CHECK_TITLES", "STRUCTURE",
           "check_name", "run_check"]

REGISTRY = MappingProxyType({entry.name: entry for entry in (
    CheckEntry("builder", check_builder),
    CheckEntry("layers", check_layers, {"expect": validate_layer_spec}, frozenset({"expect"})),
    CheckEntry("param_count", check_param_count, {"expect": option("int")},
               frozenset({"expect"})),
    CheckEntry("output_shape", check_output_shape, {"expect": option("shape")},
               frozenset({"expect"})),
    CheckEntry("compile", check_compile, {"loss": option("str"), "metrics": option("str_list")}),
    # what the kernel alone reports: shown, never scored
    CheckEntry("history", check_history, {"epochs": validate_epochs, "keys": option("str_list")},
               scored=False),
    CheckEntry("accuracy", check_accuracy, {"threshold": lambda v: None},
               frozenset({"threshold"}), extra=validate_threshold),
    CheckEntry("learns", check_learns, {"at_most": validate_ratio}),
    CheckEntry("movies", check_movies, scored=False),
    CheckEntry("movie_prediction", check_movie_prediction),
    CheckEntry("manual", check_manual, {"prompt": option("str")}),
)})

#: what a student reads after the task's label: "Task 1: parameter count"
CHECK_TITLES = MappingProxyType({
    "builder": "builder function", "layers": "layers", "param_count": "parameter count",
    "output_shape": "output shape", "compile": "compile settings",
    "history": "training history", "accuracy": "test accuracy",
    "learns": "learns (loss on the grader's movies)", "movies": "generate_movies",
    "movie_prediction": "predicts next frames", "manual": "written answer",
})
#: the checks that read only the model a task's builder returns (no data, no training): what
#: ``check()`` can run inside a notebook
STRUCTURE = frozenset({"builder", "layers", "param_count", "output_shape", "compile"})


def check_name(ctx: TaskContext, spec) -> str:
    return f"{ctx.label}: {CHECK_TITLES.get(spec.check, spec.id)}"


def run_check(ctx: TaskContext, spec) -> CheckResult:
    """The rubric item ``spec`` against the task's context: its points, status and sentences.
    A check that fails on odd input is a failed item that says so, never an exception."""
    name = check_name(ctx, spec)
    try:
        outcome = REGISTRY[spec.check].func(ctx, spec)
    except Exception as exc:  # a grader bug on odd input must not sink the other checks
        traceback.print_exc(file=sys.stderr)
        return CheckResult(ctx.task.id, spec.id, spec.check, name, 0.0, spec.points, "failed",
                           f"{ctx.label}: the grader could not run this check "
                           f"({type(exc).__name__}: {quoted(exc)}); tell your TA.",
                           visibility=spec.visibility,
                           todo="Tell your TA: the grader could not run the "
                                f"{CHECK_TITLES.get(spec.check, spec.id)} check.")
    status: Status = "pending" if outcome.pending else "passed" if outcome.passed else "failed"
    failed = status == "failed"
    return CheckResult(ctx.task.id, spec.id, spec.check, name,
                       spec.points if outcome.passed else 0.0, spec.points, status,
                       outcome.message, outcome.hint or spec.hint, spec.visibility,
                       answer=outcome.answer, cause=outcome.cause if failed else None,
                       todo=outcome.todo if failed else None)
