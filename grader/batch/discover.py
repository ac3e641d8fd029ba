"""Finding the submissions in a folder: names become jobs, or skipped entries with the reason.

Whose a name is (``identify_file``, ``identify_folder``, ``name_problem``) is decided by pure
functions of the name. ``find_submissions`` walks the folder through descriptors: a link (to a
file or to a folder), a FIFO, a device or a socket is skipped, never opened, and each submission
is hashed from the descriptor it was opened as (``grader.files``).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Iterable

from .. import files
from ..submission import MAX_SUBMISSION_BYTES

__all__ = ["Job", "Skipped", "SUFFIXES", "find_submissions", "identify_file", "identify_folder",
           "name_problem", "printable", "safe_folder", "pick", "refusal"]

SUFFIXES = (".ipynb", ".py")

#: Moodle: "<Full Name>_<participant id>_assignsubmission_<plugin>_<original name>", and with
#: "download submissions in folders" a folder "<Full Name>_<id>_assignsubmission_file" (a "_"
#: at its end in Moodle 3.x). Moodle writes a "_" in the full name as a space.
_MOODLE = re.compile(r"(?P<name>[^_]+)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z]+)"
                     r"(?:_(?P<rest>.*))?")
#: Canvas: "<sortable name>[_late]_<user id>_<submission id>_<original name>"; the sortable
#: name keeps only word characters ("Doe, Jane" is "doejane")
_CANVAS = re.compile(r"(?P<name>\w+?)(?:_late)?_(?P<id>\d+)_(?P<submission>\d+)_(?P<rest>.+)",
                     re.I)
#: a plain download: "<student>_ex8", also "<student>-exercise8", "<student> ex_8-1" (Canvas
#: numbers resubmissions "-1", "-2")
_OWNED = re.compile(r"(?P<id>.*?\S)[ _-]+ex(?:ercise)?[ _-]?0?8(?:-\d+)?", re.I)
_EX8 = re.compile(r"ex(?:ercise)?[ _-]?0?8", re.I)
#: C0, DEL, C1, and the bidirectional overrides that make a name read as another on screen
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that are not UTF-8 (surrogateescape)
UNCLAIMED = ("the name does not say whose it is (expected <student>_ex8.ipynb, a Moodle or "
             "Canvas download name, or one folder per student)")


@dataclass(frozen=True)
class Skipped:
    path: str  # relative to the submissions folder, control characters escaped
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


# --------------------------------------------------------------------------- names (pure)


def name_problem(name: str) -> str | None:
    """Why a file or folder name is not taken at face value, or None."""
    if _UNDECODABLE.search(name):
        return "the name is not valid UTF-8 text; rename it"
    if _CONTROL.search(name):
        return "the name holds a control character; rename it"
    return None


def printable(name: str) -> str:
    """``name`` with control characters and undecodable bytes escaped (``\\n``, ``\\x1b``), as
    it is shown in the manifest, the class summary and on the terminal."""
    name = _UNDECODABLE.sub(lambda m: f"\\x{ord(m[0]) - 0xdc00:02x}", name)
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), name)


def identify_file(name: str) -> tuple[str, str] | str:
    """(student id, full name) from a loose file's name, or why it is skipped.

    Moodle's and Canvas' names cannot be read as each other's: a name that fits both is
    skipped, not guessed at. A plain ``<student>_ex8`` name counts only when neither fits.
    """
    if problem := name_problem(name):
        return problem
    moodle = _MOODLE.fullmatch(name)
    moodle = moodle if moodle and moodle["rest"] else None  # without a file name: a folder's
    canvas = _CANVAS.fullmatch(name)
    if moodle and canvas:
        return (f"the name fits both a Moodle download (student {moodle['id']}) and a Canvas "
                f"one (student {canvas['id']}); rename it <student>_ex8{PurePath(name).suffix}")
    found = moodle or canvas
    if found:
        return found["id"], found["name"]
    owned = _OWNED.fullmatch(PurePath(name).stem)
    return (owned["id"], "") if owned else UNCLAIMED


def identify_folder(name: str) -> tuple[str, str] | str:
    """(student id, full name) from a student folder's name, or why it is skipped."""
    if problem := name_problem(name):
        return problem
    moodle = _MOODLE.fullmatch(name)
    if moodle and not moodle["rest"]:
        return moodle["id"], moodle["name"]
    return name, ""


def pick(names: Iterable[str]) -> tuple[str | None, str | None]:
    """The submission among a student folder's files: the one notebook, else the one module;
    (None, why) when it cannot be told, (None, None) when there is none."""
    names = list(names)
    for suffix in SUFFIXES:
        found = [n for n in names if PurePath(n).suffix == suffix]
        if len(found) > 1:  # several: only a name that says "ex8" decides, nothing else
            found = [n for n in found if _EX8.search(PurePath(n).stem)] or found
        if len(found) == 1:
            return found[0], None
        if found:
            return None, (f"the folder holds {len(found)} {suffix} files "
                          f"({', '.join(sorted(found))}); keep one.")
    return None, None


def safe_folder(student: str) -> str:
    """A folder name for a student id that came from a file name the TA did not choose; it
    never begins with "-" (nor "." or "_"), so it never reads as an option or a formula."""
    return re.sub(r"^[._-]+|[._]+$", "", re.sub(r"[^\w.-]+", "_", student)) or "_"


def refusal(what: str) -> str:
    """The reason an entry that ``grader.files`` refused (``Refused.what``) is skipped."""
    if what == "a link":
        return "a link; links are never followed (copy the file itself into the folder)"
    if what == "missing":
        return "it disappeared while the submissions were read"
    return f"{what}, not a regular file; it was not opened" if what.startswith("a ") else what


# --------------------------------------------------------------------------- the folder


@dataclass(frozen=True)
class _Claim:
    name: str  # the student's full name, when the name says it
    shown: str
    source: str = ""
    content: str = ""
    problem: str | None = None


class _Walk:
    """One pass over the submissions folder, through descriptors."""

    def __init__(self, folder: Path, exclude: set[tuple[int, int]]):
        self.folder, self.exclude = folder, exclude
        self.claims: dict[str, list[_Claim]] = {}
        self.skipped: list[Skipped] = []

    def skip(self, shown: str, reason: str) -> None:
        self.skipped.append(Skipped(shown, reason))

    def entry(self, top: int, name: str) -> None:
        shown = printable(name)
        try:
            st = os.stat(name, dir_fd=top, follow_symlinks=False)
        except OSError as exc:  # gone since it was listed, or unreadable
            self.skip(shown, f"unreadable ({exc.strerror})")
            return
        if (st.st_dev, st.st_ino) in self.exclude:
            return
        what = files.what_it_is(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            self.student_folder(top, name)
        elif problem := name_problem(name):
            self.skip(shown, problem)
        elif what:
            self.skip(shown, refusal(what))
        elif PurePath(name).suffix not in SUFFIXES:
            self.skip(shown, "not a notebook or a .py file")
        elif isinstance(who := identify_file(name), str):
            self.skip(shown, who)
        else:
            self.claim(who, top, name, shown, str(self.folder / name))

    def claim(self, who: tuple[str, str], dir_fd: int, name: str, shown: str,
              source: str) -> None:
        """The file as one of the student's claims, hashed from the descriptor it opened as."""
        try:
            fd = files.open_regular(name, dir_fd=dir_fd, follow=False)
        except files.Refused as exc:  # it changed since it was listed
            self.skip(shown, refusal(exc.what))
            return
        try:
            found = _Claim(who[1], shown, source, files.hash_at_most(fd, MAX_SUBMISSION_BYTES))
        except files.TooLarge as exc:
            found = _Claim(who[1], shown, problem=(
                f"{shown} is {exc.size >> 20} MB; a submission may have at most "
                f"{MAX_SUBMISSION_BYTES >> 20} MB (clear the outputs)."))
        finally:
            os.close(fd)
        self.claims.setdefault(who[0], []).append(found)

    def student_folder(self, top: int, name: str) -> None:
        shown = printable(name) + "/"
        who = identify_folder(name)
        if isinstance(who, str):
            self.skip(shown, who)
            return
        try:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=top)
        except OSError as exc:
            self.skip(shown, f"unreadable ({exc.strerror})")
            return
        try:
            self._student_files(fd, name, shown, who)
        finally:
            os.close(fd)

    def _student_files(self, fd: int, name: str, shown: str, who: tuple[str, str]) -> None:
        candidates, before = [], len(self.skipped)
        for child in sorted(os.listdir(fd)):
            if child.startswith(".") or PurePath(child).suffix not in SUFFIXES:
                continue  # only what could be the submission is looked at
            try:
                st = os.stat(child, dir_fd=fd, follow_symlinks=False)
            except OSError:  # gone since it was listed
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            what = files.what_it_is(st.st_mode)
            if problem := name_problem(child) or (what and refusal(what)):
                self.skip(shown + printable(child), problem)
            else:
                candidates.append(child)
        chosen, problem = pick(candidates)
        if chosen:
            self.claim(who, fd, chosen, shown + chosen, str(self.folder / name / chosen))
        elif problem:
            self.claims.setdefault(who[0], []).append(_Claim(who[1], shown, problem=problem))
        elif len(self.skipped) == before:  # else those entries say why
            self.skip(shown, "a folder without a notebook or .py file")


def _jobs(claims: dict[str, list[_Claim]]) -> list[Job]:
    """One job per student; two claims on one student become that student's problem."""
    jobs, folders = [], {}
    for student, found in sorted(claims.items()):
        name = next((c.name for c in found if c.name), "")
        claim = found[0]
        if len(found) > 1:
            shown = ", ".join(c.shown for c in found)
            claim = _Claim(name, shown, problem=f"{len(found)} submissions claim student "
                                                f"{student} ({shown}); keep one.")
        out = safe_folder(student)
        if out in folders:  # two ids that only differ in characters a folder name cannot keep
            out = f"{out}-{hashlib.sha256(student.encode()).hexdigest()[:8]}"
        folders[out] = student
        jobs.append(Job(student=student, name=name, source=claim.source, shown=claim.shown,
                        folder=out, content=claim.content, problem=claim.problem))
    return jobs


def find_submissions(folder: Path, *,
                     exclude: Iterable[Path] = ()) -> tuple[list[Job], list[Skipped]]:
    """The jobs in ``folder`` (loose files or one sub-folder per student) and what was skipped.

    A file whose name does not say whose it is is skipped, not guessed at; so is anything that
    is not a regular file or a folder, or is reached through a link. Two entries that claim the
    same student become one row that says so. ``exclude``: folders not to look into (the
    batch's own output folder, when it is inside).
    """
    folder = Path(folder).resolve()
    excluded = set()
    for path in exclude:
        try:
            st = os.stat(path)
        except OSError:
            continue
        excluded.add((st.st_dev, st.st_ino))
    walk = _Walk(folder, excluded)
    top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in sorted(os.listdir(top)):
            if not name.startswith("."):
                walk.entry(top, name)
    finally:
        os.close(top)
    return _jobs(walk.claims), walk.skipped
