"""What every check gets (a task's context) and gives back (an outcome), and how checks register."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

from ..cellref import place
from ..errors import quoted

__all__ = ["Outcome", "TaskContext", "CheckEntry", "option", "fmt_int", "spec_summary",
           "sentence", "CAUSES", "brief"]


#: what a failed check can name as its cause (``Outcome.cause``): a cause fails several checks
#: of a task at once, and the report says it once, with the checks it fails listed under it
#: (``grader.causes``). The keys are stable: stored results and tools read them.
CAUSES = MappingProxyType({
    "notebook_stopped": "the notebook stopped before the grader's last cell (the kernel died, "
                        "the run timed out, the harvest was refused)",
    "builder_failed_cell": "the cell that defines the builder raised before its def ran",
    "builder_missing": "the builder is not defined",
    "builder_placeholder": "the builder still raises the template's NotImplementedError",
    "builder_raised": "calling the builder raised an error",
    "builder_not_a_model": "the builder returns something that is not a Keras model",
    "builder_not_compiled": "the builder's model is not compiled",
    "builder_review_length": "the builder's model is built for another review length than the "
                             "profile's MAX_REVIEW_LENGTH (a number written by hand)",
    "builder_unreadable": "the grader could not read or describe the builder's model",
    "no_trained_model": "the task's model was not trained (its model and History are not set)",
    "trained_not_a_model": "the task's model variable holds something that is not a Keras model",
    "trained_unmeasured": "the trained model could not be measured",
    "not_the_builders_model": "the trained model is not the model the builder returns",
    "not_this_tasks_model": "the trained model lacks the layers the task asks for",
    "no_history": "the model is trained but the History fit() returns was not kept",
    "not_a_history": "the History variable holds something else",
})


@dataclass(frozen=True)
class Outcome:
    passed: bool
    message: str
    hint: str | None = None
    pending: bool = False  # a manual item: 0 points until a TA marks it
    answer: str | None = None  # a manual item's answer text, for the TA and the reports
    #: a failure's cause, a key of ``CAUSES`` (None: this check's own finding)
    cause: str | None = None
    #: the first thing to do about the failure, in the student's words (a sentence)
    todo: str | None = None

    def __post_init__(self):
        if self.cause is not None and self.cause not in CAUSES:
            raise ValueError(f"unknown cause {self.cause!r}")


@dataclass
class TaskContext:
    """Everything known about one task of one submission, all of it plain data."""

    task: Any  # rubric.TaskSpec
    profile: Any  # rubric.Profile
    rubric: Any  # rubric.Rubric
    harvest: Mapping[str, Any] = field(default_factory=dict)  # kernel's report on the task
    namespace: Mapping[str, Any] = field(default_factory=dict)  # kernel's other findings
    evaluation: Mapping[str, Any] = field(default_factory=dict)  # trusted measurements
    artifacts: Path | None = None
    answers: tuple[str, ...] = ()  # markdown answers found for the task
    not_run: str | None = None  # why no kernel output exists (kernel died before the harvest)
    #: where the notebook defines the task's names (``{name: cell}``, every cell counted, as
    #: ``CellError.cell``) and the errors its cells raised (``results.CellError``): a builder
    #: that is not defined because its cell failed is said so
    defined_in: Mapping[str, int] = field(default_factory=dict)
    errors: tuple = ()

    @property
    def label(self) -> str:
        return self.task.title.split(":")[0]

    def model_info(self) -> tuple[str, dict] | None:
        """The model whose structure is checked: the builder's, else the trained one."""
        for role in ("fresh", "trained"):
            info = self.evaluation.get(role)
            if info and "error" not in info and "layers" in info:
                return role, info
        return None

    def model_missing(self) -> Outcome:
        """The failure every structural check reports when there is no model to look at."""
        reasons = []
        for role in ("fresh", "trained"):
            info = self.evaluation.get(role)
            if info and "error" in info:
                reasons.append(sentence(info["error"]))
        if self.not_run:
            reasons.append(sentence(self.not_run))
        b = self.harvest.get("builder", {})
        if b.get("status") == "missing":
            failed = self.failed_before(self.task.builder)
            reasons.append(f"{self.task.builder}() is not defined" +
                           (f": {failed}." if failed else "."))
        elif b.get("status") == "error":
            reasons.append(sentence(f"{self.task.builder}() raised {b.get('error')}"))
        elif b.get("status") == "not_a_model":
            reasons.append(f"{self.task.builder}() returned {b.get('type')}, not a Keras model.")
        if self.harvest.get("model", {}).get("status") in (None, "missing"):
            reasons.append(f"{self.task.model} is not set.")
        cause, todo = self.builder_cause() or (
            "builder_unreadable", f"Make {self.task.builder}() return a compiled Keras model.")
        return Outcome(False, f"{self.label}: there is no model to check. " + " ".join(reasons),
                       cause=cause, todo=todo)

    def _failed_error(self, name: str):
        """The error of the cell that defines ``name``, if that cell raised (``CellError``)."""
        cell = self.defined_in.get(name)
        return next((e for e in self.errors if cell is not None and e.cell == cell), None)

    @staticmethod
    def where(error) -> str:
        """Where an error was raised, as the student finds it: ``code cell 11 (“...”), line
        1``, or ``importing my_ex8.py (line 3)``."""
        if error.module:
            return f"importing {error.module}" + (f" (line {error.source_line})"
                                                  if error.source_line else "")
        return place(error) + (f", line {error.source_line}" if error.source_line else "")

    def failed_before(self, name: str) -> str | None:
        """Why ``name`` may not be defined: the cell that defines it raised (before its
        ``def`` ran), or a ``.py`` module's import failed. None if no such error is known."""
        error = self._failed_error(name)
        if error is None:
            return None
        what = f"{error.ename}: {error.evalue}" if error.evalue else error.ename
        what = what if len(what) <= 160 else what[:157] + "..."
        return f"{self.where(error)} raised {what.rstrip('.')}, so {name} was never defined"

    def stopped_todo(self) -> str:
        """What to do when the notebook stopped before the grader's last cell."""
        why = self.not_run or "the notebook did not reach its last cell"
        return sentence(f"Make the notebook run to its end: {why[:1].lower()}{why[1:]}")

    def builder_cause(self) -> tuple[str, str] | None:
        """Why the builder gives no model to check: a key of ``CAUSES`` and the first thing to
        do, or None when it gave one."""
        name = f"{self.task.builder}()"
        b = self.harvest.get("builder", {})
        status = b.get("status")
        if status == "error":
            error = str(b.get("error"))
            if error.startswith("saving it failed"):
                return "builder_raised", f"Fix {name}: the grader could not save the model it " \
                                         "returns."
            ename = error.split(":")[0]
            if ename == "NotImplementedError":
                return "builder_placeholder", f"Write {name}: it still raises NotImplementedError."
            return "builder_raised", f"Fix {name}: calling it raises {ename}."
        if status == "not_a_model":
            return "builder_not_a_model", f"Make {name} return the model: it returns " \
                                          f"{b.get('type')}."
        if self.not_run:
            return "notebook_stopped", self.stopped_todo()
        if status == "missing":
            error = self._failed_error(self.task.builder)
            if error is not None and error.module:
                return "builder_failed_cell", f"Fix {error.module}: {self.where(error)} raised " \
                                              f"{error.ename}, so {name} was never defined."
            if error is not None:
                return "builder_failed_cell", f"Fix {self.where(error)}: it raised " \
                                              f"{error.ename} before {name} was defined."
            builders = {t.builder for t in self.rubric.tasks}
            others = [f"{f}()" for f in self.namespace.get("functions", [])
                      if f.startswith("build") and f not in builders]
            if others:
                return "builder_missing", f"Define {name}: the grader calls the builder by this " \
                                          f"name, and the notebook defines {', '.join(others[:3])}."
            return "builder_missing", f"Write {name}: it is not defined."
        fresh = self.evaluation.get("fresh") or {}
        if "error" in fresh:
            return "builder_unreadable", f"Fix {name}: the grader could not check the model it " \
                                         f"returns ({brief(fresh['error'])})."
        return None

    def unmeasured_todo(self, error) -> str:
        """What to do when the trained model could not be measured."""
        return f"Make {self.task.model} a model the grader can measure: {brief(error)}."

    def _task_error(self):
        """The first error of this task's cells, but for the builder's own cell."""
        own = self.defined_in.get(self.task.builder)
        return next((e for e in self.errors if e.task == self.task.id and e.cell != own), None)

    def training_cause(self) -> tuple[str, str]:
        """Why the task has no trained model: a key of ``CAUSES`` and what to do."""
        if self.not_run:
            return "notebook_stopped", self.stopped_todo()
        what = f"Train {self.task.model} and keep its History as {self.task.history}"
        error = self._task_error()
        if error is None:
            return "no_trained_model", f"{what}: neither is set."
        raised = "still raises NotImplementedError" if error.ename == "NotImplementedError" \
            else f"raised {error.ename}"
        if error.module:  # a line of the module, or the grader's cell that trains its model
            where = f"{error.module}, line {error.source_line}" if error.source_line else \
                "training it in the grader's notebook"
        else:
            where = self.where(error)
        return "no_trained_model", f"{what}: {where} {raised}."

    def measured(self) -> Mapping[str, Any] | Outcome:
        """The trained model's measurement, if it is the task's model: the architecture of
        the model the builder returns, and (where the rubric lists them) the task's classes
        of layers. Else the failure (an ``Outcome``) that says why its measurement does not
        count."""
        model, builder = self.task.model, f"{self.task.builder}()"
        trained = self.evaluation.get("trained")
        if not trained:
            status = self.harvest.get("model", {}).get("status")
            why = {"not_a_model": f"{model} is not a Keras model"}.get(
                status, self.not_run or f"{model} is not set")
            cause, todo = ("trained_not_a_model", f"Keep the trained Keras model as {model}: it "
                           f"is a {self.harvest.get('model', {}).get('type')}.") \
                if status == "not_a_model" else self.training_cause()
            return Outcome(False, f"{self.label}: nothing to measure: {why}.",
                           hint=f"Train the model and keep it as {model}.", cause=cause,
                           todo=todo)
        if "error" in trained:
            return Outcome(False, sentence(f"{self.label}: the trained model could not be "
                                           f"measured: {trained['error']}"),
                           cause="trained_unmeasured",
                           todo=self.unmeasured_todo(trained["error"]))
        same = self.evaluation.get("same_architecture")
        fresh = self.evaluation.get("fresh") or {}
        if same is None:
            why = fresh.get("error") or f"{builder} returned no model"
            cause, todo = self.builder_cause() or (
                "builder_unreadable", f"Make {builder} return a compiled Keras model.")
            return Outcome(False, f"{self.label}: {model} is not counted: the grader "
                                  f"compares it with the model {builder} returns, and "
                                  f"{why.rstrip('.')}.",
                           hint=f"Build {model} with {builder}.", cause=cause, todo=todo)
        if same is False:
            return Outcome(False, f"{self.label}: {model} is not the model {builder} "
                                  f"returns: {self._difference(trained, fresh)}.",
                           hint=f"Train the model {builder} returns: {model} = "
                                f"{builder}, then {model}.fit(...).",
                           cause="not_the_builders_model",
                           todo=f"Train the model {builder} returns: {model} is another "
                                "model.")
        spec = next((c.options.get("expect") for c in self.task.checks if c.check == "layers"),
                    None) or []
        present = {layer["class"] for layer in trained.get("layers", [])}
        lacking = []
        for item in spec:
            classes = [item["class"]] if isinstance(item["class"], str) else item["class"]
            if not item.get("optional") and not set(classes) & present:
                lacking.append(" or ".join(classes))
        if lacking:
            lacking = list(dict.fromkeys(lacking))
            names = " and ".join([", ".join(lacking[:-1]), lacking[-1]] if len(lacking) > 1
                                 else lacking)
            layers = f"the {names} layer{'s' * (len(lacking) > 1)}"
            return Outcome(False, f"{self.label}: {model} is not this task's model: it "
                                  f"lacks {layers} the exercise asks for, so its "
                                  "measurement does not count.", hint=spec_summary(spec),
                           cause="not_this_tasks_model",
                           todo=f"Train this task's model as {model}: it lacks {layers}.")
        return trained

    def _difference(self, trained: Mapping, fresh: Mapping) -> str:
        from .structure import describe_found

        def listing(info):
            return ", ".join(describe_found(layer) for layer in info.get("layers", []))

        a, b = listing(trained), listing(fresh)
        if a != b or trained.get("params") != fresh.get("params"):
            return (f"it has {len(trained.get('layers', []))} layers ({a}; "
                    f"{fmt_int(trained.get('params'))} parameters), the builder's model "
                    f"{len(fresh.get('layers', []))} ({b}; {fmt_int(fresh.get('params'))} "
                    f"parameters)")
        where = self.evaluation.get("architecture_difference") or "a setting"
        return f"their layers' configurations differ ({where})"

    def parameter(self, name: str):
        return self.profile.parameters.get(name)


Validator = Callable[[Any], "str | None"]


def option(kind: str) -> Validator:
    """A validator for a rubric option: returns a problem in words, or None."""
    def check(value):
        if kind == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
            return "must be an integer"
        if kind == "str" and not isinstance(value, str):
            return "must be a string"
        if kind == "str_list" and not (isinstance(value, list)
                                       and all(isinstance(v, str) for v in value)):
            return "must be a list of strings"
        if kind == "shape" and not (isinstance(value, list) and all(
                v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in value)):
            return "must be a list of integers or nulls"
        return None
    return check


@dataclass(frozen=True)
class CheckEntry:
    name: str
    func: Callable[[TaskContext, Any], Outcome]
    options: Mapping[str, Validator] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    #: validates the options as a whole (after each one passed), given the profile names
    extra: Callable[[Mapping[str, Any], set], "str | None"] | None = None
    #: False: it reads only what the kernel reported (a History, a file the notebook wrote),
    #: which never earns a point: the rubric must give it 0 points
    scored: bool = True

    def validate(self, options: Mapping[str, Any], *, profiles: set) -> str | None:
        for key in options:
            if key not in self.options:
                allowed = ", ".join(sorted(self.options)) or "none"
                return f"unknown key {key!r} for check {self.name!r} (allowed: {allowed})"
        for key in sorted(self.required - set(options)):
            return f"check {self.name!r} needs the key {key!r}"
        for key, value in options.items():
            problem = self.options[key](value)
            if problem:
                return f"key {key!r} {problem}"
        return self.extra(options, profiles) if self.extra else None


def sentence(text: str) -> str:
    """``text`` as a sentence: a capital first letter, unless it begins with code (``epochs=``,
    ``X_val``: kept as written), and a full stop."""
    first = text.split(" ", 1)[0]
    code = any(ch in first for ch in "=()_.[") or first != first.lower()
    text = text if code or not text else text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def spec_summary(spec) -> str:
    """The rubric's layers as a sentence: the exercise asks for A -> B -> C."""
    from .structure import describe_expected

    return "The exercise asks for " + " -> ".join(
        describe_expected(i) for i in spec if not i.get("optional")) + "."


def brief(text) -> str:
    """An error's text inside a sentence of ours (``errors.quoted``), short enough for a
    summary's line."""
    return quoted(text, 120)


def fmt_int(n) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)
