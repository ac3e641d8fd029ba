"""Finding the submissions in a folder: names become jobs, or skipped entries with the reason."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

__all__ = ["Job", "Skipped", "SUFFIXES", "find_submissions"]

SUFFIXES = (".ipynb", ".py")

#: Moodle: "<Full Name>_<participant id>_assignsubmission_file_<original name>", as a file or
#: (with "download submissions in folders") as a folder without the original name
_MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_[a-z]+(?:_(?P<rest>.+))?$")
#: Canvas: "<sortable name>[_late]_<user id>_<submission id>_<original name>"
_CANVAS = re.compile(r"^(?P<name>[^_]+?)(?:_late)?_(?P<id>\d+)_\d+_(?P<rest>.+)$", re.I)
#: a plain download: "<student>_ex8", also "<student>-exercise8", "<student> ex_8-1" (Canvas
#: numbers resubmissions "-1", "-2")
_OWNED = re.compile(r"^(?P<id>.*?\S)[ _-]+ex(?:ercise)?[ _-]?0?8(?:-\d+)?$", re.I)
_EX8 = re.compile(r"ex(?:ercise)?[ _-]?0?8", re.I)


@dataclass(frozen=True)
class Skipped:
    path: str  # relative to the submissions folder
    reason: str


@dataclass(frozen=True)
class Job:
    """One student's submission. ``problem`` set: it cannot be graded, this is the reason."""

    student: str
    name: str
    source: str  # absolute path of the submission file ("" when there is none)
    shown: str  # the path as the TA knows it, relative to the submissions folder
    folder: str  # the student's output folder, relative to the batch output folder
    content: str = ""  # sha256 of the submission file
    problem: str | None = None


def _safe_folder(student: str) -> str:
    """A folder name for a student id that came from a file name the TA did not choose."""
    return re.sub(r"[^\w.-]+", "_", student).strip("._") or "_"


def _identify_file(name: str) -> tuple[str, str] | None:
    """(student id, name) from a loose file's name, or None when it does not say whose it is."""
    m = _MOODLE.match(name)
    if m and m["rest"]:
        return m["id"], m["name"]
    m = _CANVAS.match(name)
    if m:
        return m["id"], m["name"]
    m = _OWNED.match(Path(name).stem)
    if m:
        return m["id"], ""
    return None


def _pick(files: list[Path]) -> tuple[Path | None, str | None]:
    """The submission among a student folder's files: the one notebook, else the one module."""
    for suffix in SUFFIXES:
        found = [f for f in files if f.suffix == suffix]
        if len(found) > 1:  # several: only a name that says "ex8" decides, nothing else
            found = [f for f in found if _EX8.search(f.stem)] or found
        if len(found) == 1:
            return found[0], None
        if found:
            return None, (f"the folder holds {len(found)} {suffix} files "
                          f"({', '.join(sorted(f.name for f in found))}); keep one.")
    return None, None


def find_submissions(folder: Path, *,
                     exclude: Iterable[Path] = ()) -> tuple[list[Job], list[Skipped]]:
    """The jobs in ``folder`` (loose files or one sub-folder per student) and what was skipped.

    A file whose name does not say whose it is is skipped, not guessed at. Two entries that
    claim the same student become one row that says so.
    """
    folder = folder.resolve()
    exclude = {Path(p).resolve() for p in exclude}
    claims: dict[str, list[tuple[str, Path | None, str | None, str]]] = {}
    skipped = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.resolve() in exclude:
            continue
        shown = entry.name
        if entry.is_dir():
            m = _MOODLE.match(entry.name)
            student, name = (m["id"], m["name"]) if m and not m["rest"] else (entry.name, "")
            files = [f for f in entry.iterdir() if f.is_file() and not f.name.startswith(".")]
            path, problem = _pick(files)
            if path is None and problem is None:
                skipped.append(Skipped(shown + "/", "a folder without a notebook or .py file"))
                continue
            claims.setdefault(student, []).append(
                (name, path, problem, f"{shown}/{path.name}" if path else shown + "/"))
        elif entry.suffix not in SUFFIXES:
            skipped.append(Skipped(shown, "not a notebook or a .py file"))
        elif (who := _identify_file(entry.name)) is None:
            skipped.append(Skipped(shown, "the name does not say whose it is (expected "
                                          "<student>_ex8.ipynb, a Moodle or Canvas download "
                                          "name, or one folder per student)"))
        else:
            claims.setdefault(who[0], []).append((who[1], entry, None, shown))

    jobs, folders = [], {}
    for student, found in sorted(claims.items()):
        name = next((n for n, *_ in found if n), "")
        if len(found) > 1:
            shown = ", ".join(s for *_, s in found)
            path, problem = None, (f"{len(found)} submissions claim student {student} "
                                   f"({shown}); keep one.")
        else:
            _, path, problem, shown = found[0]
        out = _safe_folder(student)
        if out in folders:  # two ids that only differ in characters a folder name cannot keep
            out = f"{out}-{hashlib.sha256(student.encode()).hexdigest()[:8]}"
        folders[out] = student
        jobs.append(Job(student=student, name=name, source=str(path) if path else "",
                        shown=shown, folder=out, content=_sha256(path) if path else "",
                        problem=problem))
    return jobs, skipped


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
