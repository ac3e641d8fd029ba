"""Cells past their limit, kernels that die, runs past the total limit: results, not crashes."""

from __future__ import annotations

import nbformat
import pytest

from grader.pipeline import grade_submission

from .conftest import TEMPLATE_NB

pytestmark = pytest.mark.kernel


def with_cell(base, dest, source: str, *, before: str) -> str:
    """Insert a code cell before the first cell whose source contains ``before``."""
    nb = nbformat.read(base, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if before in c.source)
    nb.cells.insert(index, nbformat.v4.new_code_cell(source))
    nbformat.write(nb, dest)
    return dest


def test_endless_cell_is_stopped_and_the_tasks_before_it_are_graded(tmp_path):
    # The template: its cells are short (the builders raise), so a 30 s limit only ever stops
    # the endless one, even on a busy machine.
    path = with_cell(TEMPLATE_NB, tmp_path / "endless_loop_in_task1.ipynb",
                     "while True:\n    pass", before="def build_lstm_model")
    result = grade_submission(path, profile="structure", out=tmp_path / "out", cell_timeout=30)
    assert result.status == "graded" and result.kernel is None
    timeouts = [e for e in result.errors if e.ename == "CellTimeout"]
    assert len(timeouts) == 1 and "30 s" in timeouts[0].evalue
    # one error for the stopped cell, not also the KeyboardInterrupt that stopped it
    assert [e.ename for e in result.errors if e.cell == timeouts[0].cell] == ["CellTimeout"]
    rnn = next(t for t in result.tasks if t.id == "rnn")
    assert rnn.score == rnn.max_score > 0  # the worked example, before the loop, is graded
    # and the cells after the loop ran too: generate_movies (bonus) was defined and checked
    movies = next(c for t in result.tasks for c in t.checks if c.kind == "movies")
    assert movies.status == "passed"


def test_kernel_that_exits_is_reported_with_its_cell(tmp_path):
    path = with_cell(TEMPLATE_NB, tmp_path / "exits_in_task1.ipynb",
                     "import os\nos._exit(1)", before="def build_lstm_model")
    result = grade_submission(path, profile="structure", out=tmp_path / "out")
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    exit_cell = next(i for i, c in enumerate(code) if "os._exit" in c.source) + 1
    # named as Jupyter shows it in the notebook handed in (its number among the code cells and
    # its first line), though the grader's parameters cell runs before it
    said = f"The kernel died in code cell {exit_cell} (“import os”)"
    assert result.kernel == f"{said}."
    assert result.status == "graded" and result.score == 0
    builder = next(c for t in result.tasks for c in t.checks if c.task == "task1"
                   and c.check == "builder")
    assert said in builder.message
    assert builder.todo == f"Make the notebook run to its end: t{said[1:]}."
    assert (tmp_path / "out" / "feedback.html").is_file()
    assert said in (tmp_path / "out" / "feedback.html").read_text()


def test_run_past_the_total_limit_is_stopped(tmp_path):
    import psutil

    path = with_cell(TEMPLATE_NB, tmp_path / "sleeps.ipynb", "import time\ntime.sleep(1e9)",
                     before="def build_lstm_model")
    result = grade_submission(path, profile="structure", out=tmp_path / "out", timeout=45,
                              cell_timeout=600)
    assert result.kernel.startswith("The run was stopped after 45 s"), result.kernel
    assert result.execution_time < 120

    def ours(proc):  # other kernels may be running on this machine: only ours count
        try:
            return str(tmp_path) in proc.cwd()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False

    assert [p.pid for p in psutil.process_iter() if ours(p)] == []


@pytest.mark.parametrize("content", [
    {"traceback": {"nested": [[["x"]]]}, "ename": ["not", "text"], "evalue": {"a": 1},
     "execution_count": [1]},
    {"traceback": [["deep"] * 3, 7, None, "Cell In[" + "9" * 5000 + "], line " + "9" * 5000],
     "ename": "E" * 10_000, "evalue": "v" * (8 << 20), "execution_count": "12"},
    {"traceback": ["x" * (8 << 20)] * 4},
])
def test_a_forged_error_reply_is_recorded_bounded(content):
    """The error reply is the kernel's word: a traceback that is not a list of strings, names
    that are not text, digits past int()'s limit and megabytes of text become one bounded
    CellError, never an exception in the grader."""
    import nbformat

    from grader.recorder import CellRecorder

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("raise SystemExit")]
    recorder = CellRecorder(nb, ["task1"], cell_timeout=60)
    recorder.on_cell_error(nb.cells[0], 0, {"content": content})
    [error] = recorder.report.errors
    assert error.task == "task1" and error.code_cell == 1
    assert len(error.ename) <= 200 and len(error.evalue) <= 1000
    assert len(error.traceback) <= 4000
    assert error.source_line is None
