"""What every check gets (a task's context) and gives back (an outcome), and how checks register."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

__all__ = ["Outcome", "TaskContext", "CheckEntry", "option", "fmt_int"]


@dataclass(frozen=True)
class Outcome:
    passed: bool
    message: str
    hint: str | None = None
    pending: bool = False  # a manual item: 0 points until a TA marks it


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
            reasons.append(f"{self.task.builder}() is not defined.")
        elif b.get("status") == "error":
            reasons.append(f"{self.task.builder}() raised {b.get('error')}.")
        elif b.get("status") == "not_a_model":
            reasons.append(f"{self.task.builder}() returned {b.get('type')}, not a Keras model.")
        if self.harvest.get("model", {}).get("status") in (None, "missing"):
            reasons.append(f"{self.task.model} is not set.")
        return Outcome(False, f"{self.label}: there is no model to check. " + " ".join(reasons))

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


def fmt_int(n) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)
