"""Preparing the notebook the kernel runs, without a kernel: the rubric is the one source of the
tasks, papermill's injected parameters are replaced where they stand, cells keep their numbers."""

from __future__ import annotations

from dataclasses import replace

import nbformat

from grader.rubric import load_rubric
from grader.submission import (INJECTED_TAG, cell_numbers, cell_places, cell_tasks,
                               prepare_notebook, read_submission)

from .conftest import REFERENCE_NB, ROOT

RUBRIC = load_rubric()


def test_a_module_is_wrapped_with_the_tasks_of_the_rubric_given(tmp_path):
    module = tmp_path / "my_ex8.py"
    module.write_text((ROOT / "reference" / "solution.py").read_text())
    sub = read_submission(module)
    only_task1 = replace(RUBRIC, tasks=tuple(t for t in RUBRIC.tasks if t.id == "task1"))
    nb, _ = prepare_notebook(sub, {"EPOCHS": 1}, only_task1.tasks)
    trained = [c.metadata["ex8"]["task"] for c in nb.cells if "task" in c.metadata.get("ex8", {})]
    assert trained == ["task1"]
    # the defaults are the exercise's own parameters cell, the grader's values come after it
    reference = nbformat.read(REFERENCE_NB, as_version=4)
    params = next(c for c in reference.cells if "parameters" in c.metadata.get("tags", []))
    assert nb.cells[0].source == params.source
    assert nb.cells[1].metadata["tags"] == [INJECTED_TAG] and "EPOCHS = 1" in nb.cells[1].source


def test_papermills_injected_cell_is_replaced_in_place_and_keeps_its_number(tmp_path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("EPOCHS = 3")
    params.metadata["tags"] = ["parameters"]
    stale = nbformat.v4.new_code_cell("# Parameters\nEPOCHS = 40")
    stale.metadata["tags"] = [INJECTED_TAG]
    nb.cells = [params, stale, nbformat.v4.new_code_cell("print(EPOCHS)")]
    path = tmp_path / "papermilled.ipynb"
    nbformat.write(nb, path)
    sub = read_submission(path)
    prepared, _ = prepare_notebook(sub, {"EPOCHS": 1}, RUBRIC.tasks)
    assert [c.source.splitlines()[-1] for c in prepared.cells[:3]] == \
        ["EPOCHS = 3", "EPOCHS = 1", "print(EPOCHS)"]
    assert cell_numbers(prepared)[:3] == [1, 2, 3]  # as in the notebook handed in
    # and as Jupyter shows them: the replaced cell is the second code cell, quoted by its first
    # line as handed in, not by the grader's; the harvest cell is not counted
    places = cell_places(prepared)
    assert [(p.code_cell, p.first_line) for p in places[:3]] == [
        (1, "EPOCHS = 3"), (2, "# Parameters"), (3, "print(EPOCHS)")]
    assert places[-1] is None
    assert "EPOCHS = 40" not in nbformat.writes(prepared)
    assert sub.notes == ["The notebook carried injected parameters from an earlier papermill "
                         "run: the grader's replaced them."]


def test_headings_name_tasks_by_the_rubrics_titles():
    nb = nbformat.v4.new_notebook()
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    nb.cells = [md("## 1.4 Task 1: Train an LSTM"), code("x = 1"),
                md("## 1.9 Bonus: ConvLSTM"), code("y = 2"), md("# Appendix"), code("z = 3")]
    assert cell_tasks(nb, RUBRIC.tasks) == [None, "task1", None, "bonus", None, "bonus"]
