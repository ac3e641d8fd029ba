"""Load and validate the YAML rubric: JSON Schema, schema version, check names and options.

Every problem is found at load time and named by file, task and key, so a broken rubric stops
a run before any kernel starts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import jsonschema
import yaml

from .errors import RubricError

__all__ = ["Rubric", "TaskSpec", "CheckSpec", "Profile", "load_rubric", "default_rubric_path",
           "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
#: test reviews the grader measures on and no notebook can read, unless the rubric says otherwise
HELD_OUT = {"reviews": 10000, "seed": 20260}
_COMMON_KEYS = {"id", "check", "points", "profiles", "visibility", "hint"}


def default_rubric_path() -> Path:
    return Path(str(resources.files("rubrics") / "ex8.yaml"))


@dataclass(frozen=True)
class CheckSpec:
    id: str
    check: str
    points: float
    options: Mapping[str, Any]
    profiles: tuple[str, ...] | None = None
    visibility: str = "visible"
    hint: str | None = None

    def applies_to(self, profile: str) -> bool:
        if self.profiles is not None and profile not in self.profiles:
            return False
        threshold = self.options.get("threshold")
        return not isinstance(threshold, Mapping) or profile in threshold


@dataclass(frozen=True)
class TaskSpec:
    id: str
    title: str
    kind: str
    builder: str
    model: str
    history: str
    checks: tuple[CheckSpec, ...]

    def check(self, check_id: str) -> CheckSpec:
        return next(c for c in self.checks if c.id == check_id)


@dataclass(frozen=True)
class Profile:
    name: str
    parameters: Mapping[str, Any]
    timeout: float
    cell_timeout: float
    evaluation: Mapping[str, int]
    description: str = ""


@dataclass(frozen=True)
class Rubric:
    path: Path
    schema_version: int
    exercise: str
    data: Mapping[str, Any]
    profiles: Mapping[str, Profile]
    tasks: tuple[TaskSpec, ...]
    digest: str = field(repr=False, default="")

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise RubricError(f"The rubric {self.path} has no profile {name!r} (it has "
                              f"{', '.join(self.profiles)}).", path=str(self.path)) from None

    def task(self, task_id: str) -> TaskSpec:
        return next(t for t in self.tasks if t.id == task_id)

    def review_length(self, profile: Profile) -> int:
        """The length reviews are padded to in ``profile``: its ``MAX_REVIEW_LENGTH`` (what the
        notebook's models are built for), else the exercise's (``data.max_review_length``)."""
        return int(profile.parameters.get("MAX_REVIEW_LENGTH")
                   or self.data["max_review_length"])

    @property
    def held_out(self) -> Mapping[str, int]:
        """``reviews`` and ``seed`` of the test reviews held out of every notebook's data."""
        return self.data.get("held_out") or HELD_OUT


def _where(err: jsonschema.ValidationError, raw: dict) -> str:
    path = list(err.absolute_path)
    if len(path) >= 2 and path[0] == "tasks" and isinstance(path[1], int):
        task_id = raw["tasks"][path[1]].get("id", f"#{path[1] + 1}") \
            if isinstance(raw["tasks"][path[1]], dict) else f"#{path[1] + 1}"
        rest = ".".join(str(p) for p in path[2:])
        return f"task {task_id!r}" + (f", key {rest!r}" if rest else "")
    return f"key {'.'.join(str(p) for p in path)!r}" if path else "the top level"


def load_rubric(path: str | Path | None = None) -> Rubric:
    """Read, validate and freeze a rubric; raise ``RubricError`` naming file, task and key."""
    path = Path(path) if path else default_rubric_path()
    text, raw = _read_valid(path)
    profiles = _profiles(raw, path)
    tasks, seen_tasks = [], set()
    for t in raw["tasks"]:
        if t["id"] in seen_tasks:
            raise RubricError(f"The rubric {path} has task {t['id']!r} twice.", path=str(path))
        seen_tasks.add(t["id"])
        checks, seen_checks = [], set()
        for c in t["checks"]:
            if c["id"] in seen_checks:
                raise RubricError(f"The rubric {path}, task {t['id']!r}, check {c['id']!r} "
                                  "appears twice.", path=str(path), task=t["id"])
            seen_checks.add(c["id"])
            checks.append(_check_spec(c, t["id"], path, profiles))
        tasks.append(TaskSpec(id=t["id"], title=t["title"], kind=t["kind"], builder=t["builder"],
                              model=t["model"], history=t["history"], checks=tuple(checks)))
    return Rubric(path=path.resolve(), schema_version=raw["schema_version"],
                  exercise=raw["exercise"], data=MappingProxyType(dict(raw["data"])),
                  profiles=MappingProxyType(profiles), tasks=tuple(tasks),
                  digest=hashlib.sha256(text.encode()).hexdigest())


def _read_valid(path: Path) -> tuple[str, dict]:
    """The rubric's text and its YAML, of this grader's schema version and valid under
    ``rubric.schema.json``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RubricError(f"The rubric {path} cannot be read ({exc.strerror or exc}).",
                          path=str(path)) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise RubricError(f"The rubric {path} is not valid YAML{where}.", path=str(path)) from exc
    if not isinstance(raw, dict):
        raise RubricError(f"The rubric {path} is not a YAML mapping.", path=str(path))

    version = raw.get("schema_version")
    if not isinstance(version, int):
        raise RubricError(f"The rubric {path} has no integer schema_version.", path=str(path))
    if version < SCHEMA_VERSION:
        raise RubricError(f"The rubric {path} has schema_version {version}, older than this "
                          f"grader's {SCHEMA_VERSION}; update the rubric.", path=str(path))
    if version > SCHEMA_VERSION:
        raise RubricError(f"The rubric {path} has schema_version {version}, newer than this "
                          f"grader's {SCHEMA_VERSION}; update the grader.", path=str(path))

    schema = json.loads((Path(__file__).with_name("rubric.schema.json")).read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(raw),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        err = errors[0]
        raise RubricError(f"The rubric {path} is invalid at {_where(err, raw)}: {err.message}.",
                          path=str(path))
    return text, raw


def _profiles(raw: dict, path: Path) -> dict[str, Profile]:
    held = (raw["data"].get("held_out") or HELD_OUT)["reviews"]
    for name, p in raw["profiles"].items():
        if p["evaluation"]["test_samples"] > held:
            raise RubricError(f"The rubric {path} is invalid at key 'profiles.{name}.evaluation."
                              f"test_samples': {p['evaluation']['test_samples']} is more than "
                              f"the {held} held-out reviews (data.held_out.reviews).",
                              path=str(path))
    return {name: Profile(name=name, parameters=MappingProxyType(dict(p["parameters"])),
                          timeout=float(p["timeout"]), cell_timeout=float(p["cell_timeout"]),
                          evaluation=MappingProxyType(dict(p["evaluation"])),
                          description=p.get("description", ""))
            for name, p in raw["profiles"].items()}


def _check_spec(c: dict, task: str, path: Path, profiles: dict[str, Profile]) -> CheckSpec:
    """One check of ``task``, its options validated by the check's own rules."""
    from .checks import REGISTRY

    where = f"The rubric {path}, task {task!r}, check {c['id']!r}"
    entry = REGISTRY.get(c["check"])
    if entry is None:
        raise RubricError(f"{where}: unknown check {c['check']!r} (known: "
                          f"{', '.join(sorted(REGISTRY))}).", path=str(path), task=task)
    options = {k: v for k, v in c.items() if k not in _COMMON_KEYS}
    problem = entry.validate(options, profiles=set(profiles))
    if not problem and not entry.scored and c["points"]:
        problem = (f"check {c['check']!r} reads only what the notebook reported, which "
                   "earns no points: give it 'points: 0'")
    if problem:
        raise RubricError(f"{where}: {problem}.", path=str(path), task=task)
    for name in c.get("profiles", []):
        if name not in profiles:
            raise RubricError(f"{where}: key 'profiles' names unknown profile {name!r}.",
                              path=str(path), task=task)
    return CheckSpec(id=c["id"], check=c["check"], points=float(c["points"]),
                     options=MappingProxyType(options),
                     profiles=tuple(c["profiles"]) if "profiles" in c else None,
                     visibility=c.get("visibility", "visible"), hint=c.get("hint"))
