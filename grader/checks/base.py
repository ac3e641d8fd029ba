"""What every check gets (a task's context) and gives back (an outcome), and how checks register."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

__all__ = ["Outcome", "TaskContext", "CheckEntry", "option", "fmt_int", "spec_summary",
           "sentence"]


@dataclass(frozen=True)
class Outcome:
    passed: bool
    message: str
    hint: str | None = None
    pending: bool = False  # a manual item: 0 points until a TA marks it
    answer: str | None = None  # a manual item's answer text, for the TA and the reports


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
    #: where the notebook defines the task's names (``{name: cell}``, cells numbered as in
    #: the feedback) and the errors its cells raised (``results.CellError``): a builder that
    #: is not defined because its cell failed is said so
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
                reasons.append(info["error"])
        if self.not_run:
            reasons.append(self.not_run)
        b = self.harvest.get("builder", {})
        if b.get("status") == "missing":
            failed = self.failed_before(self.task.builder)
            reasons.append(f"{self.task.builder}() is not defined" +
                           (f": {failed}." if failed else "."))
        elif b.get("status") == "error":
            reasons.append(f"{self.task.builder}() raised {b.get('error')}.")
        elif b.get("status") == "not_a_model":
            reasons.append(f"{self.task.builder}() returned {b.get('type')}, not a Keras model.")
        if self.harvest.get("model", {}).get("status") in (None, "missing"):
            reasons.append(f"{self.task.model} is not set.")
        return Outcome(False, f"{self.label}: there is no model to check. " + " ".join(reasons))

    def failed_before(self, name: str) -> str | None:
        """Why ``name`` may not be defined: the cell that defines it raised (before its
        ``def`` ran), or a ``.py`` module's import failed. None if no such error is known."""
        cell = self.defined_in.get(name)
        error = next((e for e in self.errors if cell is not None and e.cell == cell), None)
        if error is None:
            return None
        if error.module:
            where = f"importing {error.module}" + (f" (line {error.source_line})"
                                                   if error.source_line else "")
        else:
            where = f"cell {error.cell}" + (f", line {error.source_line}"
                                            if error.source_line else "")
        what = f"{error.ename}: {error.evalue}" if error.evalue else error.ename
        what = what if len(what) <= 160 else what[:157] + "..."
        return f"{where} raised {what}, so {name} was never defined"

    def measured(self) -> tuple[Mapping[str, Any] | None, Outcome | None]:
        """The trained model's measurement, if it is the task's model: the architecture of
        the model the builder returns, and (where the rubric lists them) the task's classes
        of layers. Else the failure that says why its measurement does not count."""
        model, builder = self.task.model, f"{self.task.builder}()"
        trained = self.evaluation.get("trained")
        if not trained:
            status = self.harvest.get("model", {}).get("status")
            why = {"not_a_model": f"{model} is not a Keras model"}.get(
                status, self.not_run or f"{model} is not set")
            return None, Outcome(False, f"{self.label}: nothing to measure: {why}.",
                                 hint=f"Train the model and keep it as {model}.")
        if "error" in trained:
            return None, Outcome(False, f"{self.label}: the trained model could not be "
                                        f"measured: {trained['error']}")
        same = self.evaluation.get("same_architecture")
        fresh = self.evaluation.get("fresh") or {}
        if same is None:
            why = fresh.get("error") or f"{builder} returned no model"
            return None, Outcome(False, f"{self.label}: {model} is not counted: the grader "
                                        f"compares it with the model {builder} returns, and "
                                        f"{why.rstrip('.')}.",
                                 hint=f"Build {model} with {builder}.")
        if same is False:
            return None, Outcome(False, f"{self.label}: {model} is not the model {builder} "
                                        f"returns: {self._difference(trained, fresh)}.",
                                 hint=f"Train the model {builder} returns: {model} = "
                                      f"{builder}, then {model}.fit(...).")
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
            return None, Outcome(False, f"{self.label}: {model} is not this task's model: it "
                                        f"lacks the {names} layer{'s' * (len(lacking) > 1)} "
                                        "the exercise asks for, so its measurement does not "
                                        "count.", hint=spec_summary(spec))
        return trained, None

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


def fmt_int(n) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)
