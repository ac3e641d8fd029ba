"""Read and validate a submission, and turn it into the notebook the kernel runs.

Small transforms in a fixed order (nbgrader's way): read -> normalise (outputs cleared, kernel
pinned) -> inject the profile's parameters after the ``parameters`` cell (papermill's
convention) -> append the harvest cell. A ``.py`` module is first wrapped in a notebook that
imports it and trains each task's model with the profile's budget.
"""

from __future__ import annotations

import inspect
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import harvest as _harvest_module
from .checks.movies import MOVIES_CALL
from .errors import InputError
from .files import read_submission_file

__all__ = ["Submission", "read_submission", "prepare_notebook", "cell_tasks", "task_answers",
           "MAX_SUBMISSION_BYTES", "INJECTED_TAG", "HARVEST_TAG", "early_harvest",
           "is_grader_cell", "cell_numbers"]

MAX_SUBMISSION_BYTES = 50 << 20
INJECTED_TAG = "injected-parameters"
HARVEST_TAG = "ex8-harvest"
KERNEL_NAME = "python3"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": KERNEL_NAME}
#: a tag no notebook uses: every cell runs, whatever tags the submission carries
NEVER_SKIP = "ex8-grader-runs-every-cell"
ANSWER_PLACEHOLDER = "YOUR ANSWER HERE"


@dataclass
class Submission:
    path: Path
    kind: str  # "notebook" or "module"
    notebook: nbformat.NotebookNode  # the notebook as submitted, or the wrapper of a module
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
            raise InputError(f"{path} does not compile: line {exc.lineno}: {exc.msg}.",
                             path=str(path)) from exc
        except ValueError as exc:
            raise InputError(f"{path} does not compile: {exc}.", path=str(path)) from exc
        return Submission(path, "module", wrap_module(path, text))
    return Submission(path, "notebook", _parse_notebook(path, text))


def _parse_notebook(path: Path, text: str) -> nbformat.NotebookNode:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not a notebook: not valid JSON (line {exc.lineno}, column "
                         f"{exc.colno}: {exc.msg}).", path=str(path)) from exc
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


# --------------------------------------------------------------------------- .py modules


def wrap_module(path: Path, text: str) -> nbformat.NotebookNode:
    """A notebook that imports the module, builds every task with its builder and trains it."""
    from .rubric import load_rubric

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell
    params = cell("# defaults; the grader injects its profile's values after this cell\n"
                  "TOP_WORDS, MAX_REVIEW_LENGTH, EMBEDDING_DIM = 5000, 500, 32\n"
                  "TRAIN_SAMPLES, TEST_SAMPLES, EPOCHS, BATCH_SIZE = None, 10000, 3, 64\n"
                  "MOVIE_SAMPLES, MOVIE_FRAMES, MOVIE_EPOCHS, SEED = 1200, 15, 20, 7")
    params.metadata["tags"] = ["parameters"]
    nb.cells.append(params)
    importing = cell(
        "import importlib.util, sys\n"
        f"_spec = importlib.util.spec_from_file_location('submission', 'submission.py')\n"
        "submission = importlib.util.module_from_spec(_spec)\n"
        "sys.modules['submission'] = submission\n"
        "_spec.loader.exec_module(submission)\n"
        "for _name in ('TOP_WORDS', 'MAX_REVIEW_LENGTH', 'EMBEDDING_DIM'):\n"
        "    setattr(submission, _name, globals()[_name])  # builders read the module's globals\n"
        "globals().update({k: v for k, v in vars(submission).items() if callable(v) and\n"
        "                  getattr(v, '__module__', None) == 'submission'})")
    importing.metadata["ex8"] = {"label": f"the import of {path.name}"}
    nb.cells.append(importing)
    data = cell(_data_cell_source())
    data.metadata["ex8"] = {"label": "the grader's data preparation"}
    nb.cells.append(data)
    for task in load_rubric().tasks:
        if task.kind == "imdb":
            body = (f"{task.model} = {task.builder}()\n"
                    f"{task.history} = {task.model}.fit(X_train, y_train, "
                    "validation_data=(X_val, y_val),\n"
                    "    epochs=EPOCHS, batch_size=BATCH_SIZE, verbose=2)")
        else:
            body = ("noisy_movies, shifted_movies = generate_movies(MOVIE_SAMPLES, MOVIE_FRAMES)\n"
                    f"{task.model} = {task.builder}()\n"
                    f"{task.history} = {task.model}.fit(noisy_movies[:MOVIE_SAMPLES * 5 // 6],\n"
                    "    shifted_movies[:MOVIE_SAMPLES * 5 // 6], batch_size=10, "
                    "epochs=MOVIE_EPOCHS,\n    validation_split=0.05, verbose=2)")
        c = cell(f"import keras\nkeras.utils.set_random_seed(SEED)\n{body}")
        c.metadata["ex8"] = {"task": task.id,
                             "label": f"the grader's call of {task.builder}() and training"}
        nb.cells.append(c)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["ex8"] = {"module": path.name}
    return nb


def _data_cell_source() -> str:
    """The reference notebook's data preparation cell (tagged ``data``), the one source."""
    from importlib import resources

    ref = nbformat.reads(resources.files("reference").joinpath("ex8_solution.ipynb")
                         .read_text(encoding="utf-8"), as_version=4)
    for c in ref.cells:
        if "data" in c.metadata.get("tags", []):
            return "import keras\nfrom sklearn.model_selection import train_test_split\n" + \
                c.source
    raise InputError("reference/ex8_solution.ipynb has no cell tagged 'data'.")


# --------------------------------------------------------------------------- preparing


def _params_source(parameters: dict) -> str:
    lines = ["# Parameters injected by the grader (profile values)"]
    lines += [f"{name} = {value!r}" for name, value in parameters.items()]
    return "\n".join(lines)


def _harvest_spec(tasks, out_dir: str) -> dict:
    return {"out": out_dir, "movies_call": MOVIES_CALL,
            "tasks": [{"id": t.id, "builder": t.builder, "model": t.model, "history": t.history}
                      for t in tasks]}


def _harvest_body() -> str:
    return inspect.getsource(_harvest_module).split('"""', 2)[2].strip()  # without the docstring


def harvest_source(tasks, out_dir: str) -> str:
    return (f"# ex8 grader: hand out the models, histories and movies (plain data only)\n"
            f"{_harvest_body()}\n\nharvest({json.dumps(_harvest_spec(tasks, out_dir))}, "
            f"globals())\ndel harvest")


def early_harvest(tasks, out_dir: str) -> tuple[str, str, str]:
    """What the grader runs silently in the kernel for the early hand-out (``harvest`` with
    ``checkpoint=True``): code run once, code run after every cell, and the expression whose
    value is a JSON string of the tasks just saved, with their histories."""
    setup = (f"_ex8_grader = {{'spec': {json.dumps(_harvest_spec(tasks, out_dir))}}}\n"
             f"exec(compile({_harvest_body()!r}, '<ex8 grader harvest>', 'exec'), _ex8_grader)")
    call = ("_ex8_grader['ready'] = _ex8_grader['harvest'](_ex8_grader['spec'], globals(), "
            "checkpoint=True)")
    return setup, call, "_ex8_grader['ready']"


def prepare_notebook(sub: Submission, parameters: dict, tasks) -> tuple[nbformat.NotebookNode,
                                                                        str]:
    """Clear outputs, pin the kernel, inject parameters, append the harvest cell.

    Returns the notebook and the name of the (not yet existing) artifact folder the harvest
    will create: a random name, so nothing the notebook ran before can have prepared it.
    """
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
    position = next((i for i, c in enumerate(nb.cells)
                     if "parameters" in c.metadata.get("tags", [])), None)
    if position is None:
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
    """The injected parameters cell or the harvest cell: the grader's, not the student's."""
    tags = cell.get("metadata", {}).get("tags", [])
    return INJECTED_TAG in tags or HARVEST_TAG in tags


def cell_numbers(nb: nbformat.NotebookNode) -> list[int | None]:
    """Each cell's number in the notebook the student handed in (1-based, every cell counts, as
    when counting them from the top); None for the grader's own cells. Feedback names cells by
    these numbers, not by their place in the prepared notebook, which has one cell more."""
    numbers, student = [], 0
    for c in nb.cells:
        if is_grader_cell(c):
            numbers.append(None)
        else:
            student += 1
            numbers.append(student)
    return numbers


def _mentions(source: str, name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", source) is not None


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
            heading = re.search(r"^#+ .*?(task\s*(\d)|bonus)", c.source, re.I | re.M)
            if heading:
                current = f"task{heading.group(2)}" if heading.group(2) else "bonus"
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
