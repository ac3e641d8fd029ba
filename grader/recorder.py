"""What the run of each cell leaves in the grader's report: where the run is (for the kernel's
sentence), the errors cells raised with tracebacks that name cells as Jupyter shows them, and a
cell stopped at its time limit as one error that says so.

nbclient calls a ``CellRecorder``'s three hooks (``on_cell_execute``, ``on_cell_error``,
``on_cell_executed``) from ``grader.execute.run_notebook``; nothing here talks to the kernel.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace

import nbformat

from .cellref import cell_ref
from .results import CellError
from .submission import INJECTED_TAG, cell_numbers, cell_places

__all__ = ["ExecutionReport", "CellRecorder"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: the most of an error reply's traceback the grader reads (the innermost frames are last)
MAX_TRACEBACK_CHARS = 1 << 20
_IPYTHON_CELL = re.compile(r"\bCell In\[(\d{1,9})\]")
#: a frame in a cell, as IPython starts it
_CELL_FRAME = re.compile(r"^Cell In\[\d+\], line (\d{1,9})\b", re.M)
#: a frame in a .py submission (the wrapper imports it from the work folder as submission.py)
_MODULE_FRAME = re.compile(r"^(\s*)File [^\n]*?\bsubmission\.py:(\d{1,9})\b", re.M)


@dataclass
class ExecutionReport:
    notebook: nbformat.NotebookNode
    errors: list[CellError] = field(default_factory=list)
    kernel: str | None = None  # why the run ended early, one sentence
    #: the same as a word for programs: timeout, died, memory, disk, no_start (None: ran through)
    event: str | None = None
    timed_out_cells: list[int] = field(default_factory=list)  # places in ``notebook``, 1-based
    seconds: float = 0.0
    #: where the last cell that started is, for the kernel's sentence: "in code cell 5
    #: (“import os”)" (``grader.cellref``) or "in the grader's closing cell"
    last_cell: str = "before the first cell"


def _traceback_text(lines) -> str:
    """The text of an error reply's traceback. The reply is the kernel's word: anything but a
    list of strings reads as no traceback, and only the last megabyte is kept."""
    if not isinstance(lines, list):
        return ""
    text = "\n".join(line for line in lines if isinstance(line, str))
    return _ANSI.sub("", text[-MAX_TRACEBACK_CHARS:])


def _text(value, default: str, limit: int) -> str:
    """An error reply's ``ename`` or ``evalue``: a string, cut to ``limit``; else ``default``."""
    return _ANSI.sub("", value)[:limit] if isinstance(value, str) else default


def _traceback_tail(text: str, frame: re.Pattern, keep: int = 12) -> str:
    """The last ``keep`` lines, and before them the innermost frame in the submission (from the
    last line ``frame`` matches to the blank line that ends it) when they do not reach it: deep
    in Keras' own frames, the student's line is the one that matters."""
    lines = text.splitlines()
    tail = lines[-keep:]
    starts = [i for i, line in enumerate(lines) if frame.match(line)]
    if starts and starts[-1] < len(lines) - keep:
        start = end = starts[-1]
        while end + 1 < len(lines) - keep and lines[end + 1].strip() and end - start < 8:
            end += 1
        tail = lines[start:end + 1] + ["..."] + tail
    return "\n".join(tail)[-4000:]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _module_line(traceback: str) -> int | None:
    """The line of a .py submission where an error was raised: its innermost frame there."""
    frames = _MODULE_FRAME.findall(traceback)
    return int(frames[-1][1]) if frames else None


def _error_line(traceback: str) -> int | None:
    """The line of the cell where an error was raised: its innermost frame in a cell."""
    lines = _CELL_FRAME.findall(traceback)
    return int(lines[-1]) if lines else None


class CellRecorder:
    """nbclient's cell hooks for one run, writing into ``report``; ``owners[i]`` is the task
    cell ``i`` belongs to."""

    def __init__(self, nb: nbformat.NotebookNode, owners: list[str | None],
                 cell_timeout: float):
        self.report = ExecutionReport(notebook=nb)
        self.nb, self.owners, self.cell_timeout = nb, owners, cell_timeout
        self.numbers = cell_numbers(nb)  # the student's numbering: the injected cell is not one
        self.places = cell_places(nb)  # and as Jupyter shows them: code cells, first lines
        # a .py submission runs in a notebook of the grader's: errors name the module's lines
        self.module = nb.metadata.get("ex8", {}).get("module")

    def where(self, cell_index: int) -> str:
        """Where a cell is, for the kernel's sentence ("in code cell 5 (“import os”)")."""
        label = self.nb.cells[cell_index].metadata.get("ex8", {}).get("label")
        if self.module and label:
            return f"in {label}"
        p = self.places[cell_index]
        if p is not None:
            return f"in {cell_ref(p.code_cell, p.first_line, p.heading)}"
        tags = self.nb.cells[cell_index].metadata.get("tags", [])
        return "in the grader's " + ("parameters" if INJECTED_TAG in tags else "closing") + " cell"

    def _student_cells(self, text: str, cell_index: int, count) -> str:
        """IPython names a cell by its execution count ("Cell In[13]"); the page, by its number
        among the code cells handed in and its first line ("Code cell 12 (“...”)"), which is
        what the traceback now says too. In a module's traceback, the module's frames are named
        by its file name instead of the work folder's copy (the wrapper's cells have no number
        worth showing)."""
        if self.module:
            return _MODULE_FRAME.sub(lambda m: f"{m[1]}File {self.module}:{m[2]}", text)
        counts = {c.get("execution_count"): p for c, p in zip(self.nb.cells, self.places)
                  if c.get("execution_count") and p is not None}
        here = self.places[cell_index]
        if count and here is not None:
            counts[count] = here
        return _IPYTHON_CELL.sub(lambda m: _capital(cell_ref(
            counts[int(m[1])].code_cell, counts[int(m[1])].first_line,
            counts[int(m[1])].heading)) if int(m[1]) in counts else m[0], text)

    def _error(self, cell_index: int, ename: str, evalue: str, traceback: str,
               source_line: int | None) -> CellError:
        """A ``CellError`` of the cell at ``cell_index``, named as Jupyter shows it."""
        p = self.places[cell_index]
        owner = self.owners[cell_index] if cell_index < len(self.owners) else None
        return CellError(cell=self.numbers[cell_index], task=owner, ename=ename, evalue=evalue,
                         traceback=traceback, source_line=source_line, module=self.module,
                         code_cell=p.code_cell if p else None,
                         first_line=p.first_line if p else None,
                         heading=p.heading if p else None)

    def on_cell_execute(self, cell, cell_index):
        self.report.last_cell = self.where(cell_index)
        cell.metadata.setdefault("ex8", {})["started"] = time.monotonic()

    def on_cell_error(self, cell, cell_index, execute_reply):
        content = execute_reply["content"]
        # the line is looked for in the whole traceback: the tail kept may not reach it
        full = _traceback_text(content.get("traceback", []))
        line = (_module_line if self.module else _error_line)(full)
        tb = self._student_cells(
            _traceback_tail(full, _MODULE_FRAME if self.module else _CELL_FRAME),
            cell_index, count if isinstance(count := content.get("execution_count"), int) else None)
        errors = self.report.errors
        if cell_index + 1 in self.report.timed_out_cells:
            # nbclient calls this after on_cell_executed: the interrupt's KeyboardInterrupt
            # only tells where the timed-out cell was stopped
            for i, err in enumerate(errors):
                if err.cell == self.numbers[cell_index] and err.ename == "CellTimeout":
                    errors[i] = replace(err, traceback=tb, source_line=line)
            return
        errors.append(self._error(
            cell_index, ename=_text(content.get("ename"), "Error", 200),
            evalue=_text(content.get("evalue"), "", 1000),
            traceback=tb, source_line=line))

    def on_cell_executed(self, cell, cell_index, execute_reply):
        started = cell.metadata.get("ex8", {}).pop("started", None)
        if "ex8" in cell.metadata and not cell.metadata["ex8"]:
            del cell.metadata["ex8"]
        if started is None or time.monotonic() - started < self.cell_timeout:
            return
        # nbclient interrupted the cell; whatever it recorded (a KeyboardInterrupt, or
        # nothing) becomes one error that says why
        index = self.numbers[cell_index]
        errors = self.report.errors
        previous = [e for e in errors if e.cell == index]
        errors[:] = [e for e in errors if e.cell != index]
        errors.append(self._error(
            cell_index, ename="CellTimeout",
            evalue=f"stopped after the {self.cell_timeout:.0f} s limit per cell",
            traceback=previous[0].traceback if previous else "",
            source_line=previous[0].source_line if previous else None))
        self.report.timed_out_cells.append(cell_index + 1)
