"""The project's one exception root and its subclasses.

Every error carries its context (file, cell, task) and is picklable, so it crosses the process
boundary of a batch worker intact.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

__all__ = [
    "output_folder",
    "OUTPUT_MARK",
    "GradingError",
    "InputError",
    "RubricError",
    "DataSourceError",
    "ExecutionError",
    "InfrastructureError",
    "quoted",
]


def quoted(text, limit: int = 200) -> str:
    """Text we did not write (an exception's message) as a clause inside a sentence of ours:
    one line, no full stop of its own (a full stop inside becomes a semicolon), at most
    ``limit`` characters, cut at a word with "...". So "line 1: {quoted(exc)}." ends where the
    sentence ends, never with ".." or in the middle of a word."""
    text = " ".join(str(text).split())
    text = re.sub(r"(?<=[a-z0-9)'\"])[.!?](\s+)(?=[A-Za-z])", r";\1", text).rstrip(" .;:,!?")
    if len(text) > limit:
        text = text[:limit - 3].rsplit(" ", 1)[0].rstrip(" .;:,!?") + "..."
    return text


class GradingError(Exception):
    """Root of the grader's errors. ``str(err)`` is one sentence meant for a person."""

    #: process exit code when this error ends a single-submission run
    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, cell: int | None = None,
                 task: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.cell = cell
        self.task = task

    def __reduce__(self):
        # Exceptions with keyword-only arguments do not pickle by default.
        return (_rebuild, (type(self), self.message, self.path, self.cell, self.task))

    @property
    def reason(self) -> str:
        """A short machine-friendly reason, used to group failures in a class summary."""
        return type(self).__name__


def _rebuild(cls, message, path, cell, task):
    return cls(message, path=path, cell=cell, task=task)


class InputError(GradingError):
    """The submission cannot be graded as given (missing, not a notebook, does not compile...)."""


class RubricError(GradingError):
    """The rubric file is invalid; names the file, the task and the key."""


class DataSourceError(GradingError):
    """No IMDB source is reachable, or the configured one is not usable."""


class ExecutionError(GradingError):
    """The kernel could not be started or the run could not be completed by the harness."""


class InfrastructureError(GradingError):
    """Something on the grading machine failed (not the submission's fault)."""


#: an empty file in every output folder the grader made: it may replace what is in there
OUTPUT_MARK = ".ex8-grader"


def output_folder(out: Path, writes: Iterable[str] = (), earlier: Iterable[str] = ()) -> Path:
    """``out`` created (with its parents), marked as the grader's and made absolute (the kernel
    and the evaluator are handed paths in it and run in folders of their own).

    The grader deletes or replaces the entries ``writes`` names there (``work/``, the reports),
    so in a folder without the mark one of them is refused, unless all of ``earlier`` are there
    (an earlier version's output): ``--out .`` must not delete someone's ``work/``. Other files
    are left alone. ``InputError`` also if the folder cannot be made."""
    earlier = tuple(earlier)  # none named: no folder passes for an earlier version's output
    try:
        if out.is_dir() and not (out / OUTPUT_MARK).exists() and \
                not (earlier and all((out / name).exists() for name in earlier)):
            clash = [n for n in writes if (out / n).exists() or (out / n).is_symlink()]
            if clash:
                raise InputError(f"The output folder {out} already holds {clash[0]}, which the "
                                 "grader did not write and would replace; choose a new or empty "
                                 "folder with --out.", path=str(out))
        out.mkdir(parents=True, exist_ok=True)
        (out / OUTPUT_MARK).touch()
    except OSError as exc:
        raise InputError(f"The output folder {out} cannot be created "
                         f"({exc.strerror or exc}); choose another with --out.",
                         path=str(out)) from exc
    return out.resolve()
