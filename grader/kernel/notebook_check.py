"""``check("task1")`` in a student's notebook: what ``grade`` would say about a task's builder.

The structure checks only (builder, layers, parameter count, output shape, compile settings),
run in the student's own kernel in seconds, with the grader's own code: the harvest calls the
builder (``grader.kernel.harvest``), the evaluator describes its model (``grader.evaluator``)
and the rubric's checks judge it (``grader.checks``). Unlike the harvest, this module is
imported by the notebook (``from grader import check``), not pasted. Advisory: a grade comes
from ``grade`` alone, which hides the rubric from the kernel it grades, so there ``check()``
only says it is not available.

Nothing here raises into the student's cell, and the notebook's random state is left as it was
(a builder draws its initial weights from it), so a run with ``check()`` calls trains the same
models as one without.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..results import CheckResult

__all__ = ["check", "NotebookCheck"]

#: the profile whose rubric items are shown (``grade``'s default); the structure checks are the
#: same in every profile
PROFILE = "quick"
UNAVAILABLE = ("check() is advisory and not available here: this kernel cannot read the "
               "grader's rubric (`grade` hides it from the notebooks it grades and checks the "
               "builders itself).")


@dataclass(frozen=True, repr=False)
class NotebookCheck:
    """What ``check()`` found: the tasks it checked, each check's result
    (``grader.results.CheckResult``: status, points, message, hint) and the points in all."""

    tasks: tuple[str, ...] = ()
    checks: tuple = ()
    points: float = 0.0
    max_points: float = 0.0
    available: bool = True  # False: the rubric could not be read, nothing was checked

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.status == "passed" for c in self.checks)

    def __repr__(self) -> str:  # the cell's value, shown under what check() printed
        if not self.available:
            return "NotebookCheck(not available here)"
        return (f"NotebookCheck({', '.join(self.tasks) or 'no task'}: {self.points:g} of "
                f"{self.max_points:g} points, advisory)")


def check(task=None, *, namespace=None) -> NotebookCheck:
    """Run the structure checks ``grade`` makes on a task's builder and print what it would say.

    ``task``: a task id (``"task1"``) or a builder's name (``"build_lstm_model"``); None checks
    every task whose builder is defined. The builders are looked up in ``namespace``, by default
    the notebook's (IPython's user namespace, else the caller's globals).
    """
    try:
        found = namespace if namespace is not None else _caller_namespace()
        return _check(task, found)
    except Exception as exc:  # noqa: BLE001 - advice must never break the student's cell
        print(f"check() itself failed ({type(exc).__name__}: {exc}); this is a bug in the "
              "grader, not in your notebook, and `grade` still grades it.")
        return NotebookCheck(available=False)


def _caller_namespace() -> dict:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and isinstance(getattr(shell, "user_ns", None), dict):
        return shell.user_ns
    return sys._getframe(2).f_globals  # _caller_namespace <- check <- the caller


def _load_rubric():
    from ..errors import RubricError

    try:
        from ..rubric import load_rubric

        return load_rubric()
    except (ImportError, OSError, RubricError):  # the rubrics package hidden, or unreadable
        return None


def _check(task, namespace) -> NotebookCheck:
    rubric = _load_rubric()
    if rubric is None:
        print(UNAVAILABLE)
        return NotebookCheck(available=False)
    tasks = _chosen(rubric, task, namespace)
    if tasks is None:
        return NotebookCheck()
    from ..checks import STRUCTURE, run_check

    profile = rubric.profiles.get(PROFILE) or next(iter(rubric.profiles.values()))
    length = namespace.get("MAX_REVIEW_LENGTH")
    if isinstance(length, int) and not isinstance(length, bool):
        # the builder is judged against the notebook's own length: `grade` sets its profile's
        profile = replace(profile, parameters=MappingProxyType(
            {**profile.parameters, "MAX_REVIEW_LENGTH": length}))
    results: list[CheckResult] = []
    lines: list[str] = []
    for spec in tasks:
        with _random_state_kept():
            ctx = _context(rubric, profile, spec, namespace)
        checks = tuple(run_check(ctx, c) for c in spec.checks
                       if c.check in STRUCTURE and c.applies_to(profile.name))
        results.extend(checks)
        lines += _lines(spec, checks)
    print("\n".join(lines))
    return NotebookCheck(tuple(t.id for t in tasks), tuple(results), *_tally(results))


def _tally(checks) -> tuple[float, float]:
    """Points earned and points at stake."""
    return sum(c.score for c in checks), sum(c.max_score for c in checks)


def _points(checks) -> str:
    score, most = _tally(checks)
    return f"{score:g} of {most:g} point{'s' * (most != 1)}"


def _chosen(rubric, task, namespace):
    """The tasks to check (None: nothing to do, and a sentence was printed saying why)."""
    if task is None:
        chosen = [t for t in rubric.tasks if callable(namespace.get(t.builder))]
        if not chosen:
            print("check(): no builder of the exercise is defined yet ("
                  + ", ".join(f"{t.builder}()" for t in rubric.tasks) + ").")
            return None
        return chosen
    name = getattr(task, "__name__", task) if callable(task) else task
    for t in rubric.tasks:
        if name in (t.id, t.builder):
            return [t]
    ids = [t.id for t in rubric.tasks]
    example = rubric.tasks[min(1, len(ids) - 1)]
    print(f"check(): there is no task {name!r}; the tasks are {', '.join(ids[:-1])} and "
          f"{ids[-1]} (or their builders' names: {example.builder!r} for {example.id!r}).")
    return None


def _context(rubric, profile, task, namespace):
    """The task's context as ``grade`` builds it from the harvest and the evaluation, for the
    notebook as it stands now: the builder called as the harvest calls it, its model described
    as the evaluator describes the model it loads (``describe_model`` of the model and its config
    as ``config.json`` holds it)."""
    import keras

    from ..checks import TaskContext
    from ..evaluator.archive import inspect_config, model_failure
    from ..evaluator.describe import describe_model, model_input_shape
    from .harvest import _call_builder, _describe_error, _namespace_listing

    entry, model = _call_builder(namespace.get(task.builder), keras.Model)
    evaluation = {}
    if model is not None:
        try:  # what saving the model writes as config.json (keras.saving's serialisation)
            config = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
        except Exception as exc:  # noqa: BLE001 - the harvest could not save it either
            entry = {"status": "error", "error": "saving it failed: " + _describe_error(exc)}
        else:
            try:
                inspect_config(config)
                evaluation["fresh"] = describe_model(model, config,
                                                     model_input_shape(rubric, profile, task))
            except Exception as exc:  # noqa: BLE001 - refused or broken: the evaluator's words
                evaluation["fresh"] = {"error": model_failure(f"{task.id}.fresh.keras", exc)}
    trained = namespace.get(task.model)
    status = {"status": "missing"} if trained is None else {"status": "ok"} \
        if isinstance(trained, keras.Model) else {"status": "not_a_model",
                                                  "type": type(trained).__name__}
    return TaskContext(task=task, profile=profile, rubric=rubric,
                       harvest={"builder": entry, "model": status},
                       namespace=_namespace_listing(namespace, keras.Model),
                       evaluation=evaluation)


def _lines(task, checks) -> list[str]:
    """The task's results as ``grade`` words them; checks failing with the same sentence (no
    model to check) are shown once."""
    from ..checks import CHECK_TITLES, STRUCTURE

    lines = [f"{task.title}: {task.builder}() checked as `grade` checks it (advisory: your grade "
             "comes from `grade`)"]
    groups: list[list] = []
    for c in checks:
        if groups and (c.status, c.message, c.hint) == \
                (groups[-1][0].status, groups[-1][0].message, groups[-1][0].hint):
            groups[-1].append(c)
        else:
            groups.append([c])
    for group in groups:
        first = group[0]
        titles = ", ".join(CHECK_TITLES.get(c.kind, c.check) for c in group)
        lines.append(f"  [{first.status}] {titles}, {_points(group)}: {first.message}")
        if first.hint and first.status == "failed":
            lines.append(f"      Hint: {first.hint}")
    total = f"  {_points(checks)}."
    others = [CHECK_TITLES.get(s.check, s.id) for s in task.checks if s.check not in STRUCTURE]
    if others:
        total += " Checked by `grade` only: " + ", ".join(others) + "."
    return lines + [total]


@contextlib.contextmanager
def _random_state_kept():
    """Python's, NumPy's and Keras' global random state, and Keras' layer-name counters, as they
    were: a builder draws its weights' seeds from them, and ``keras.utils.set_random_seed``
    would change the run. Keras' own state is read through its private modules; where they
    moved, that part is left out."""
    import random

    import numpy as np

    saved_python, saved_numpy = random.getstate(), np.random.get_state()
    saved_keras = _keras_state()
    try:
        yield
    finally:
        random.setstate(saved_python)
        np.random.set_state(saved_numpy)
        _restore_keras(saved_keras)


def _keras_state():
    try:
        from keras import ops
        from keras.src.backend.common import global_state
        from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
    except ImportError:
        return None
    generator = global_state.get_global_attribute(GLOBAL_SEED_GENERATOR)
    names = global_state.get_global_attribute("object_name_uids")
    return (global_state, GLOBAL_SEED_GENERATOR, generator,
            # a copy of the seed (numpy's __array__ on a Keras variable is deprecated)
            None if generator is None else ops.convert_to_numpy(generator.state.value).copy(),
            None if names is None else dict(names))


def _restore_keras(saved) -> None:
    if saved is None:
        return
    global_state, key, generator, seed, names = saved
    global_state.set_global_attribute(key, generator)  # None again if a build made one
    if generator is not None:
        generator.state.assign(seed)
    counters = global_state.get_global_attribute("object_name_uids")
    if counters is not None:
        counters.clear()
        counters.update(names or {})
