"""The cells and code the grader puts into a student's kernel, built from the kernel package's
own modules (their source is pasted or handed over: the kernel imports nothing of the grader's
but ``grader.data``, and the advisory ``grader.check`` a notebook may call) and from the rubric,
the one source of task facts.

``harvest_source``: the notebook's last cell (``harvest``). ``early_harvest``: the silent code
run after every cell (the early hand-out). ``output_cap_lines``: what ipykernel runs before the
first cell (``output_cap``). ``wrap_module``: the notebook a ``.py`` submission runs in.
"""

from __future__ import annotations

import ast
import inspect
import json
from importlib import resources
from pathlib import Path

import nbformat

from ..checks.movies import MOVIES_CALL
from ..errors import InputError
from . import harvest as _harvest_module
from . import output_cap as _output_cap_module

__all__ = ["harvest_source", "early_harvest", "output_cap_lines", "wrap_module", "KERNELSPEC",
           "HARVEST_TAG"]

HARVEST_TAG = "ex8-harvest"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _body(module) -> str:
    """A kernel module's source without its docstring: what is pasted into the kernel."""
    return inspect.getsource(module).split('"""', 2)[2].strip()


def _defined(module) -> list[str]:
    """The names a kernel module's source defines at its top level: the harvest cell deletes
    them from the notebook's namespace after it ran."""
    tree = ast.parse(inspect.getsource(module))
    return [node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))]


def _harvest_spec(tasks, out_dir: str) -> dict:
    return {"out": out_dir, "movies_call": MOVIES_CALL,
            "tasks": [{"id": t.id, "builder": t.builder, "model": t.model, "history": t.history}
                      for t in tasks]}


def harvest_source(tasks, out_dir: str) -> str:
    return (f"# ex8 grader: hand out the models, histories and movies (plain data only)\n"
            f"{_body(_harvest_module)}\n\nharvest({json.dumps(_harvest_spec(tasks, out_dir))}, "
            f"globals())\ndel {', '.join(_defined(_harvest_module))}")


def early_harvest(tasks, out_dir: str) -> tuple[str, str, str]:
    """What the grader runs silently in the kernel for the early hand-out (``harvest`` with
    ``checkpoint=True``): code run once, code run after every cell, and the expression whose
    value is a JSON string of the tasks just saved, with their histories."""
    setup = (f"_ex8_grader = {{'spec': {json.dumps(_harvest_spec(tasks, out_dir))}}}\n"
             f"exec(compile({_body(_harvest_module)!r}, '<ex8 grader harvest>', 'exec'), "
             "_ex8_grader)")
    call = ("_ex8_grader['ready'] = _ex8_grader['harvest'](_ex8_grader['spec'], globals(), "
            "checkpoint=True)")
    return setup, call, "_ex8_grader['ready']"


def output_cap_lines(limit: int) -> str:
    """ipykernel's ``exec_lines``: the output cap installed, then its name removed."""
    return f"{_body(_output_cap_module)}\ncap_output({limit})\ndel cap_output\n"


def _reference_cell(tag: str) -> str:
    """The source of the reference notebook's cell tagged ``tag``: the one source of the
    exercise's parameters and data preparation."""
    ref = nbformat.reads(resources.files("reference").joinpath("ex8_solution.ipynb")
                         .read_text(encoding="utf-8"), as_version=4)
    for c in ref.cells:
        if tag in c.metadata.get("tags", []):
            return c.source
    raise InputError(f"reference/ex8_solution.ipynb has no cell tagged {tag!r}.")


def wrap_module(path: Path, tasks) -> nbformat.NotebookNode:
    """A notebook that imports the module, builds every task of ``tasks`` (the rubric's) with
    its builder and trains it as the exercise does, with the profile's budget."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell
    params = cell(_reference_cell("parameters"))  # the grader's own values come after it
    params.metadata["tags"] = ["parameters"]
    nb.cells.append(params)
    importing = cell(
        "import importlib.util, sys\n"
        "_spec = importlib.util.spec_from_file_location('submission', 'submission.py')\n"
        "submission = importlib.util.module_from_spec(_spec)\n"
        "sys.modules['submission'] = submission\n"
        "_spec.loader.exec_module(submission)\n"
        "for _name in ('TOP_WORDS', 'MAX_REVIEW_LENGTH', 'EMBEDDING_DIM'):\n"
        "    setattr(submission, _name, globals()[_name])  # builders read the module's globals\n"
        "globals().update({k: v for k, v in vars(submission).items() if callable(v) and\n"
        "                  getattr(v, '__module__', None) == 'submission'})")
    importing.metadata["ex8"] = {"label": f"the import of {path.name}"}
    nb.cells.append(importing)
    data = cell("import keras\nfrom sklearn.model_selection import train_test_split\n"
                + _reference_cell("data"))
    data.metadata["ex8"] = {"label": "the grader's data preparation"}
    nb.cells.append(data)
    for task in tasks:
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
