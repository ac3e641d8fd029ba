"""Read and validate a submission, and turn it into the notebook the kernel runs.

Small transforms in a fixed order (nbgrader's way): read -> normalise (outputs cleared, kernel
pinned) -> inject the profile's parameters after the ``parameters`` cell (papermill's
convention) -> append the harvest cell. A ``.py`` module is first wrapped in a notebook that
imports it and trains each task's model with the profile's budget.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .errors import InputError, quoted
from .files import read_submission_file
from .kernel.cells import HARVEST_TAG, KERNELSPEC, harvest_source, wrap_module
from .readers import _depth, json_problem

__all__ = ["Submission", "read_submission", "prepare_notebook", "cell_tasks", "task_answers",
           "MAX_SUBMISSION_BYTES", "INJECTED_TAG", "HARVEST_TAG", "is_grader_cell",
           "cell_numbers", "definitions", "CellPlace", "cell_places"]

MAX_SUBMISSION_BYTES = 50 << 20
#: a notebook's JSON nests about 6 levels (widget states in its metadata, a few more); deeper
#: is refused before any library recurses through it
MAX_NOTEBOOK_DEPTH = 64
INJECTED_TAG = "injected-parameters"
ANSWER_PLACEHOLDER = "YOUR ANSWER HERE"


@dataclass
class Submission:
    path: Path
    kind: str  # "notebook" or "module"
    #: the notebook as submitted; for a module, the notebook the grader wraps it in (made by
    #: ``prepare_notebook``, from the rubric's tasks)
    notebook: nbformat.NotebookNode | None
    notes: list[str] = field(default_factory=list)  # what the grader changed, for the report


def _decode(path: Path, data: bytes) -> str:
    if not data.strip():
        raise InputError(f"{path} is empty.", path=str(path))
    if b"\x00" in data[:8192]:
        raise InputError(f"{path} is a binary file, not a notebook or Python source.",
                         path=str(path))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte {exc.start} is invalid).",
                         path=str(path)) from exc


def read_submission(path: str | Path) -> Submission:
    """Validate the file before any kernel starts; one clear sentence when it is unusable."""
    path = Path(path)
    # a regular file only (not a FIFO or /dev/zero), read from one descriptor with a bound
    text = _decode(path, read_submission_file(path, (".ipynb", ".py"), MAX_SUBMISSION_BYTES))
    if path.suffix == ".py":
        try:
            compile(text, str(path), "exec")
        except SyntaxError as exc:
            raise InputError(f"{path} does not compile: line {exc.lineno}: "
                             f"{quoted(exc.msg)}.", path=str(path)) from exc
        except ValueError as exc:
            raise InputError(f"{path} does not compile: {quoted(exc)}.",
                             path=str(path)) from exc
        except (RecursionError, MemoryError) as exc:
            raise InputError(f"{path} does not compile: an expression is nested too deeply.",
                             path=str(path)) from exc
        return Submission(path, "module", None)  # wrapped with the rubric's tasks: prepare
    return Submission(path, "notebook", _parse_notebook(path, text))


def _parse_notebook(path: Path, text: str) -> nbformat.NotebookNode:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not a notebook: not valid JSON ({json_problem(exc)}).",
                         path=str(path)) from exc
    except RecursionError as exc:
        raise InputError(f"{path} is not a notebook the grader reads: its JSON is nested too "
                         "deeply.", path=str(path)) from exc
    if _depth(raw, MAX_NOTEBOOK_DEPTH) > MAX_NOTEBOOK_DEPTH:
        raise InputError(f"{path} is not a notebook the grader reads: its JSON is nested more "
                         f"than {MAX_NOTEBOOK_DEPTH} levels deep.", path=str(path))
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        raise InputError(f"{path} is JSON but not a Jupyter notebook (no cells).", path=str(path))
    major = raw.get("nbformat")
    if major != 4:
        raise InputError(f"{path} is an nbformat v{major} notebook; this grader reads v4 (open "
                         "and save it in a current Jupyter to convert it).", path=str(path))
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the top level"
        raise InputError(f"{path} is not a valid v4 notebook: at {where}, "
                         f"{str(exc.message)[:200]}.", path=str(path)) from exc
    except Exception as exc:  # nbformat raises a zoo of errors on malformed input
        raise InputError(f"{path} is not a valid notebook ({type(exc).__name__}).",
                         path=str(path)) from exc
    return nb


# --------------------------------------------------------------------------- preparing


def _params_source(parameters: dict) -> str:
    lines = ["# Parameters injected by the grader (profile values)"]
    lines += [f"{name} = {value!r}" for name, value in parameters.items()]
    return "\n".join(lines)


def prepare_notebook(sub: Submission, parameters: dict, tasks) -> tuple[nbformat.NotebookNode,
                                                                        str]:
    """Clear outputs, pin the kernel, inject parameters, append the harvest cell.

    Returns the notebook and the name of the (not yet existing) artifact folder the harvest
    will create: a random name, so nothing the notebook ran before can have prepared it.
    """
    if sub.notebook is None:
        sub.notebook = wrap_module(sub.path, tasks)
    nb = nbformat.from_dict(json.loads(json.dumps(sub.notebook)))  # a deep, independent copy
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    code_cells = []
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs = []
            c.execution_count = None
            code_cells.append(c)
        c.metadata.pop("execution", None)
    injected = nbformat.v4.new_code_cell(_params_source(parameters))
    injected.metadata["tags"] = [INJECTED_TAG]
    stale = [i for i, c in enumerate(nb.cells) if INJECTED_TAG in c.metadata.get("tags", [])]
    position = next((i for i, c in enumerate(nb.cells)
                     if "parameters" in c.metadata.get("tags", [])), None)
    if stale:
        # papermill's way: an earlier run's injected parameters are replaced where they stand
        # (the cell keeps its number: it was the student's); a second one would set stale
        # values again, so it is emptied
        # the feedback quotes the cell's first line as it was handed in, not the grader's
        injected.metadata["ex8"] = {"replaces_cell": True,
                                    "first_line": first_line(nb.cells[stale[0]].source)}
        nb.cells[stale[0]] = injected
        for i in stale[1:]:
            nb.cells[i].source = "# ex8 grader: stale injected parameters removed"
        sub.notes.append("The notebook carried injected parameters from an earlier papermill "
                         "run: the grader's replaced them.")
    elif position is None:
        sub.notes.append("No cell is tagged 'parameters': the grader's parameters were put at "
                         "the top of the notebook.")
        nb.cells.insert(0, injected)
    else:
        nb.cells.insert(position + 1, injected)
    out_dir = f"artifacts-{secrets.token_hex(8)}"
    harvest = nbformat.v4.new_code_cell(harvest_source(tasks, out_dir))
    harvest.metadata["tags"] = [HARVEST_TAG]
    nb.cells.append(harvest)
    for c in nb.cells:  # nbformat >= 4.5 wants ids; old notebooks have none
        c.setdefault("id", secrets.token_hex(4))
    return nb, out_dir


# --------------------------------------------------------------------------- reading back


def is_grader_cell(cell) -> bool:
    """The injected parameters cell or the harvest cell: the grader's, not the student's (but
    injected parameters that replaced a papermill cell of the notebook keep that cell's
    place)."""
    meta = cell.get("metadata", {})
    tags = meta.get("tags", [])
    if INJECTED_TAG in tags and meta.get("ex8", {}).get("replaces_cell"):
        return False
    return INJECTED_TAG in tags or HARVEST_TAG in tags


def cell_numbers(nb: nbformat.NotebookNode) -> list[int | None]:
    """Each cell's number in the notebook the student handed in (1-based, every cell counts, as
    when counting them from the top); None for the grader's own cells. Feedback names cells by
    these numbers, not by their place in the prepared notebook, which has one cell more."""
    numbers: list[int | None] = []
    student = 0
    for c in nb.cells:
        if is_grader_cell(c):
            numbers.append(None)
        else:
            student += 1
            numbers.append(student)
    return numbers


def first_line(source: str) -> str:
    """A cell's first line that is not blank, as Jupyter shows it (stripped)."""
    return next((line.strip() for line in source.splitlines() if line.strip()), "")


_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
_FENCED = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.M | re.S)  # code, not headings


@dataclass(frozen=True)
class CellPlace:
    """Where a cell is, as a student finds it in Jupyter (``grader.cellref``)."""

    cell: int  # every cell of the notebook handed in counted from the top (``cell_numbers``)
    code_cell: int  # its number among the code cells
    first_line: str
    heading: str | None  # the heading above it, only when another code cell has its first line


def cell_places(nb: nbformat.NotebookNode) -> list[CellPlace | None]:
    """Each code cell's place in the notebook handed in; None for markdown and raw cells and
    the grader's own cells (injected parameters that replaced a papermill cell keep its place
    and its first line as handed in)."""
    found: list[CellPlace | None] = []
    heading, number, code = None, 0, 0
    for c in nb.cells:
        grader = is_grader_cell(c)
        number += not grader
        if c.cell_type == "markdown":
            headings = _HEADING.findall(_FENCED.sub("", c.source))
            heading = headings[-1].strip() if headings else heading
        if c.cell_type != "code" or grader:
            found.append(None)
            continue
        code += 1
        line = c.metadata.get("ex8", {}).get("first_line") if INJECTED_TAG in \
            c.metadata.get("tags", []) else None
        found.append(CellPlace(number, code, line if isinstance(line, str) else
                               first_line(c.source), heading))
    lines = [p.first_line for p in found if p is not None]
    # the heading tells apart cells that start alike ("# YOUR CODE HERE"); elsewhere it is noise
    return [p if p is None or lines.count(p.first_line) > 1 else
            CellPlace(p.cell, p.code_cell, p.first_line, None) for p in found]


def _mentions(source: str, name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", source) is not None


def _heading_task(source: str, tasks) -> str | None:
    """The task a markdown heading introduces: one that names a task's label from the rubric
    ("Task 1", "Bonus": its title up to the colon), the last one named."""
    found = None
    for heading in re.findall(r"^#+ (.*)$", source, re.M):
        for task in tasks:
            label = task.title.split(":")[0].split(" (")[0].strip()
            if label and re.search(rf"\b{re.escape(label)}\b", heading, re.I):
                found = task.id
    return found


def cell_tasks(nb: nbformat.NotebookNode, tasks) -> list[str | None]:
    """The task each cell belongs to: the last task whose names its source mentions.

    A cell that names no task belongs to the task of the cell before it (the plot and
    evaluation cells after a training cell); cells before the first task belong to none.
    """
    owners: list[str | None] = []
    current = None
    for c in nb.cells:
        if c.cell_type == "code" and HARVEST_TAG not in c.metadata.get("tags", []):
            named = [t.id for t in tasks
                     if any(_mentions(c.source, n) for n in (t.builder, t.model, t.history))]
            if named:
                current = named[-1]
        elif c.cell_type == "markdown":
            heading = _heading_task(c.source, tasks)
            if heading:
                current = heading
        owners.append(current if c.cell_type == "code" else None)
    return owners


def task_answers(nb: nbformat.NotebookNode, task_id: str) -> tuple[str, ...]:
    """Markdown answers of a task: cells tagged ``answer`` whose metadata names the task."""
    answers = []
    for c in nb.cells:
        if c.cell_type != "markdown" or "answer" not in c.metadata.get("tags", []):
            continue
        if c.metadata.get("ex8", {}).get("task") != task_id:
            continue
        # The question is the paragraph in bold the template starts with; the rest is the answer.
        paragraphs = re.split(r"\n\s*\n", c.source.replace(ANSWER_PLACEHOLDER, ""))
        text = "\n\n".join(p.strip() for p in paragraphs
                             if p.strip() and not p.lstrip().startswith("**"))
        if text:
            answers.append(text)
    return tuple(answers)


def definitions(nb: nbformat.NotebookNode, names) -> dict[str, int]:
    """The cell that defines each of ``names`` (``def name(`` or ``name =`` at the start of a
    line; the last one counts), numbered as ``cell_numbers`` numbers it. A ``.py`` module's
    names are all defined by the wrapper's cell that imports it."""
    found: dict[str, int] = {}
    for c, number in zip(nb.cells, cell_numbers(nb)):
        if c.cell_type != "code" or number is None:
            continue
        if str(c.metadata.get("ex8", {}).get("label", "")).startswith("the import of"):
            for name in names:
                found.setdefault(name, number)
            continue
        for name in names:
            if re.search(rf"^[ \t]*(?:def[ \t]+{re.escape(name)}[ \t]*\(|{re.escape(name)}"
                         rf"[ \t]*=(?!=))", c.source, re.M):
                found[name] = number
    return found
