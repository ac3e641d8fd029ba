"""Grading in the structure profile: each wrong submission loses exactly the points it breaks.

Every wrong submission is the reference notebook with one change; the expected loss is written
out as ``{(task, check): points}`` and compared with what the grader took off, exactly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader import cli
from grader.cellref import cell_ref
from grader.data import ENV_SOURCE
from grader.pipeline import grade_submission
from grader.results import EXIT_FULL_MARKS, EXIT_POINTS_LOST, from_dict

from .conftest import REFERENCE_NB, ROOT, TEMPLATE_NB, variant

pytestmark = pytest.mark.kernel

LSTM_BLOCK = ("layers.Embedding(TOP_WORDS, EMBEDDING_DIM),\n        layers.Dropout(0.4),\n"
              "        layers.LSTM(128),\n        layers.Dropout(0.4),\n")
# name -> (edits to the reference, {(task, check): points lost})
WRONG = {
    "lstm_64_units_loses_task1": (
        [("def build_lstm_model", "layers.LSTM(128),", "layers.LSTM(64),")],
        {("task1", "layers"): 6, ("task1", "params"): 2}),
    "task1_without_dropout_loses_task1_layers": (
        [(LSTM_BLOCK, "layers.Embedding(TOP_WORDS, EMBEDDING_DIM),\n        layers.LSTM(128),\n")],
        {("task1", "layers"): 6}),
    "task2_dropout_layers_instead_loses_task2_layers": (
        [("def build_lstm_dropout_model", "layers.LSTM(128, dropout=0.4, recurrent_dropout=0.4),",
          "layers.Dropout(0.4),\n        layers.LSTM(128),\n        layers.Dropout(0.4),")],
        {("task2", "layers"): 6}),
    "task3_without_maxpooling_loses_task3_layers": (
        [("        layers.MaxPooling1D(pool_size=2),\n", "")],
        {("task3", "layers"): 6}),
    "gru_instead_of_lstm_loses_task1": (
        [("def build_lstm_model", "layers.LSTM(128),", "layers.GRU(128),")],
        {("task1", "layers"): 6, ("task1", "params"): 2}),
    "relu_output_loses_task3_layers": (
        [("def build_cnn_lstm_model", 'layers.Dense(1, activation="sigmoid")',
          'layers.Dense(1, activation="relu")')],
        {("task3", "layers"): 6}),
    "mse_loss_loses_task1_compile": (
        [("def build_lstm_model", 'loss="binary_crossentropy"', 'loss="mse"')],
        {("task1", "compile"): 2}),
    "three_convlstm_layers_loses_bonus": (
        [("for _ in range(4):", "for _ in range(3):")],
        {("bonus", "layers"): 6, ("bonus", "params"): 2}),
    "renamed_builder_loses_task2_builder": (
        [("def build_lstm_dropout_model():", "def build_lstm_dropout():"),
         ("lstm_dropout_model = build_lstm_dropout_model()",
          "lstm_dropout_model = build_lstm_dropout()")],
        {("task2", "builder"): 2}),
    # Keras 2's module path: the cell raises before its def runs
    "failed_import_before_the_builder_loses_task1": (
        [("def build_lstm_model():", "from keras.layers.recurrent import LSTM\n\n\n"
                                     "def build_lstm_model():")],
        {("task1", "builder"): 2, ("task1", "layers"): 6, ("task1", "params"): 2,
         ("task1", "output_shape"): 1, ("task1", "compile"): 2}),
}


def lost(result) -> dict:
    return {(c.task, c.check): c.lost for t in result.tasks for c in t.checks if c.lost}


def grade(path: Path, tmp_path: Path, **kw):
    return grade_submission(path, profile="structure", out=tmp_path / "graded", **kw)


def test_reference_gets_every_automatic_point(reference_structure):
    result, out = reference_structure
    assert result.status == "graded", result.reason
    assert lost(result) == {}
    assert result.exit_code == EXIT_FULL_MARKS
    assert not result.errors and result.kernel is None
    manual = [c for t in result.tasks for c in t.checks if c.kind == "manual"]
    assert len(manual) == 3 and all(c.status == "pending" and c.score == 0 for c in manual)
    skipped = {(c.task, c.check) for t in result.tasks for c in t.checks if c.status == "skipped"}
    assert skipped == {("rnn", "accuracy"), ("task1", "accuracy"), ("task2", "accuracy"),
                       ("task3", "accuracy"), ("bonus", "learns")}
    for name in ("results.json", "result.json", "feedback.html", "executed.ipynb"):
        assert (out / name).is_file()


def test_reference_results_json_matches_golden(reference_structure):
    _, out = reference_structure
    got = json.loads((out / "results.json").read_text())
    got["execution_time"] = 0
    golden_path = ROOT / "tests" / "golden" / "reference_structure_results.json"
    golden = json.loads(golden_path.read_text())
    assert got == golden, f"results.json differs from {golden_path.name}; if the change is " \
                          "intended, regenerate it with tests/golden/regenerate.py"


@pytest.mark.parametrize("name", sorted(WRONG))
def test_wrong_submission_loses_exactly_its_points(name, tmp_path):
    edits, expected = WRONG[name]
    path = variant(REFERENCE_NB, tmp_path / f"{name}.ipynb", *edits)
    result = grade(path, tmp_path)
    assert result.status == "graded", result.reason
    assert lost(result) == expected
    assert result.exit_code == EXIT_POINTS_LOST
    for (task, check) in expected:
        c = next(c for t in result.tasks for c in t.checks if (c.task, c.check) == (task, check))
        assert c.message.startswith(next(t.title for t in result.tasks if t.id == task)
                                    .split(":")[0] + ":"), c.message


def _message(result, task, check):
    return next(c.message for t in result.tasks for c in t.checks
                if (c.task, c.check) == (task, check))


def test_messages_say_what_was_expected_and_found(tmp_path):
    edits, _ = WRONG["lstm_64_units_loses_task1"]
    result = grade(variant(REFERENCE_NB, tmp_path / "v.ipynb", *edits), tmp_path)
    assert _message(result, "task1", "layers") == \
        "Task 1: the layers of build_lstm_model() differ from the exercise's: expected " \
        "LSTM(128) after Dropout(0.4), found LSTM(64)."
    assert _message(result, "task1", "params") == \
        "Task 1: expected 242,561 parameters, found 184,897 (Embedding 160,000, Dropout 0, " \
        "LSTM 24,832, Dropout 0, Dense 65)."


def test_a_builder_whose_cell_failed_points_at_that_cell(tmp_path):
    edits, _ = WRONG["failed_import_before_the_builder_loses_task1"]
    path = variant(REFERENCE_NB, tmp_path / "v.ipynb", *edits)
    result = grade(path, tmp_path)
    error = next(e for e in result.errors if e.ename == "ModuleNotFoundError")
    where = f"code cell {error.code_cell} (“from keras.layers.recurrent import LSTM”), line 1"
    assert _message(result, "task1", "builder") == (
        f"Task 1: build_lstm_model() is not defined: {where} raised "
        "ModuleNotFoundError: No module named 'keras.layers.recurrent', so build_lstm_model "
        "was never defined.")
    handed_in = nbformat.read(path, as_version=4)
    assert handed_in.cells[error.cell - 1].source.startswith(
        "from keras.layers.recurrent import LSTM")
    code = [c for c in handed_in.cells if c.cell_type == "code"]
    assert code[error.code_cell - 1] is handed_in.cells[error.cell - 1]
    # one cause, said once: the builder's row says it, what to do is at the top
    builder = next(c for t in result.tasks for c in t.checks if c.check == "builder"
                   and c.task == "task1")
    assert (builder.cause, builder.todo) == (
        "builder_failed_cell", f"Fix {where}: it raised ModuleNotFoundError before "
                               "build_lstm_model() was defined.")


def test_papermills_injected_parameters_are_replaced_where_they_stand(tmp_path):
    """A notebook that went through papermill carries its values in a cell tagged
    injected-parameters; the grader's replace them there (as papermill does), and every cell
    keeps its number."""
    papermilled = tmp_path / "papermilled.ipynb"
    subprocess.run([sys.executable, "-m", "papermill", str(REFERENCE_NB), str(papermilled),
                    "-p", "EPOCHS", "4", "-p", "TRAIN_SAMPLES", "60", "--prepare-only"],
                   check=True, capture_output=True)
    broken = variant(papermilled, tmp_path / "papermilled_broken.ipynb",
                     ("plot_history(rnn_history)", "plot_history(rnn_history)\n1 / 0"))
    result = grade(broken, tmp_path)
    assert result.status == "graded", result.reason
    executed = nbformat.read(tmp_path / "graded" / "executed.ipynb", as_version=4)
    handed_in = nbformat.read(broken, as_version=4)
    assert len(executed.cells) == len(handed_in.cells) + 1  # the harvest only
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "EPOCHS = 1" in injected[0].source
    assert "EPOCHS = 4" not in json.dumps(executed)
    assert "1 epoch recorded" in _message(result, "rnn", "history")
    [error] = [e for e in result.errors if e.ename == "ZeroDivisionError"]
    assert handed_in.cells[error.cell - 1].source.endswith("1 / 0")  # numbered as handed in
    # and among the code cells: papermill's cell, replaced where it stands, keeps its number
    code = [c for c in handed_in.cells if c.cell_type == "code"]
    assert code[error.code_cell - 1].source.endswith("1 / 0")
    assert error.first_line == code[error.code_cell - 1].source.splitlines()[0].strip()
    assert lost(result) == {}


def test_renamed_builder_names_what_was_found_instead(tmp_path):
    edits, _ = WRONG["renamed_builder_loses_task2_builder"]
    result = grade(variant(REFERENCE_NB, tmp_path / "v.ipynb", *edits), tmp_path)
    msg = _message(result, "task2", "builder")
    assert "build_lstm_dropout_model() is not defined" in msg
    assert "build_lstm_dropout()" in msg
    assert "lstm_dropout_model (242,561 parameters, like Task 1 or Task 2)" in msg


def test_template_runs_to_the_end_and_scores_zero_on_every_coding_task(tmp_path):
    result = grade(TEMPLATE_NB, tmp_path)
    assert result.status == "graded" and result.kernel is None
    by_task = {t.id: t for t in result.tasks}
    for task in ("task1", "task2", "task3", "bonus"):
        assert by_task[task].score == 0, [c.message for c in by_task[task].checks]
        builder = next(c for c in by_task[task].checks if c.check == "builder")
        # the template's placeholder has no message: none is made up, and the hint names it
        assert builder.message.endswith("raised NotImplementedError."), builder.message
        assert "raise NotImplementedError()" in builder.hint
    # the worked example is complete in the template, so it still counts
    assert by_task["rnn"].score == by_task["rnn"].max_score
    # every failing training cell is reported against its task
    assert {e.task for e in result.errors if e.ename == "NotImplementedError"} == \
        {"task1", "task2", "task3", "bonus"}
    # the traceback names the cell as the page does, not by IPython's execution count
    for e in result.errors:
        where = "C" + cell_ref(e.code_cell, e.first_line, e.heading)[1:]
        assert f"{where}, line {e.source_line}" in e.traceback, e.traceback
        assert "In[" not in e.traceback


def test_python_module_submission_is_graded_like_a_notebook(tmp_path, monkeypatch, capsys):
    # the student's own command, every path relative: the kernel and the evaluator run in
    # folders of their own, so a path handed to them as given pointed nowhere (the grader
    # crashed with a FileNotFoundError for <submission>_graded/evaluation.json)
    shutil.copy(ROOT / "reference" / "solution.py", tmp_path / "my_ex8.py")
    monkeypatch.chdir(tmp_path)
    data = os.path.relpath(os.environ[ENV_SOURCE], tmp_path)
    code = cli.main(["my_ex8.py", "--profile", "structure", "--data", data])
    assert code == EXIT_FULL_MARKS, capsys.readouterr().err
    result = from_dict(json.loads(Path("my_ex8_graded/result.json").read_text()))
    assert result.status == "graded" and lost(result) == {}
    assert result.extra["kind"] == "module"


def test_an_error_in_a_module_submission_names_its_line_not_a_cell(tmp_path):
    # a .py submission runs in a notebook the grader builds around it: its cell numbers mean
    # nothing to the student, the module's lines do
    lines = (ROOT / "reference" / "solution.py").read_text().splitlines()
    builder = lines.index("def build_lstm_model():")
    line = next(i for i in range(builder, len(lines))
                if 'Dense(1, activation="sigmoid")' in lines[i]) + 1
    lines[line - 1] = lines[line - 1].replace('"sigmoid"', '"sigmoidd"')
    text = "\n".join(lines) + "\n"
    (tmp_path / "my_ex8.py").write_text(text)
    result = grade(tmp_path / "my_ex8.py", tmp_path)
    assert lost(result) == {("task1", "builder"): 2, ("task1", "layers"): 6, ("task1", "params"): 2,
                            ("task1", "output_shape"): 1, ("task1", "compile"): 2}
    [err] = result.errors
    assert (err.module, err.source_line, err.task, err.ename) == \
        ("my_ex8.py", line, "task1", "ValueError")
    assert f"File my_ex8.py:{line}, in build_lstm_model()" in err.traceback, err.traceback
    page = (tmp_path / "graded" / "feedback.html").read_text()
    assert f"my_ex8.py, line {line}: ValueError" in page
    assert not re.search(r"Cell \d", page)


def test_reference_models_are_measured_while_the_notebook_runs(reference_structure):
    """The early hand-out: each task's trained model was saved after its training cell and
    measured then; the last cell found it unchanged and did not save it again. Builders are
    called in the last cell only (their models are measured after the kernel)."""
    _, out = reference_structure
    harvest = json.loads((out / "harvest.json").read_text())["tasks"]
    evaluation = json.loads((out / "evaluation.json").read_text())["tasks"]
    for task in ("rnn", "task1", "task2", "task3", "bonus"):
        assert harvest[task]["model"].get("early") is True, task
        assert evaluation[task]["trained"].get("early") is True, task
        assert "early" not in harvest[task]["builder"], task
        assert "early" not in evaluation[task]["fresh"], task
        # the builder's model has the trained one's config but for the names: described once
        assert evaluation[task]["fresh"]["same_as_trained"] is True, task
        assert evaluation[task]["fresh"]["layers"] == evaluation[task]["trained"]["layers"]
    assert evaluation["task1"]["trained"]["metrics"]["samples"] == 100


def test_models_changed_after_their_task_are_measured_again(tmp_path):
    """A builder redefined and a model's weights zeroed in the last cell: what is graded is
    what the notebook holds at its end, not what was handed out early."""
    nb = json.loads(REFERENCE_NB.read_text())
    builder = next("".join(c["source"]) for c in nb["cells"]
                   if "".join(c["source"]).startswith("def build_lstm_model"))
    later = builder.replace("layers.LSTM(128),", "layers.LSTM(64),") + \
        "\nrnn_model.set_weights([np.zeros_like(w) for w in rnn_model.get_weights()])\n"
    path = variant(REFERENCE_NB, tmp_path / "changed.ipynb",
                   ("which = MOVIE_SAMPLES - 1", "plt.show()", "plt.show()\n\n" + later))
    result = grade(path, tmp_path)
    assert result.status == "graded", result.reason
    assert lost(result) == {("task1", "layers"): 6, ("task1", "params"): 2}
    out = tmp_path / "graded"
    harvest = json.loads((out / "harvest.json").read_text())["tasks"]
    evaluation = json.loads((out / "evaluation.json").read_text())["tasks"]
    assert harvest["task1"]["model"]["early"] and evaluation["task1"]["trained"]["early"]
    assert "early" not in harvest["rnn"]["model"] and "early" not in evaluation["rnn"]["trained"]
    assert evaluation["task2"]["trained"]["early"]
    # zero weights: every review gets exactly 0.5, and 0.5 is "negative"
    with np.load(out / "predictions.npz") as arrays:
        assert np.all(arrays["rnn_test_prob"] == 0.5)
        negatives = float(np.mean(arrays["y_test"] == 0))
    assert evaluation["rnn"]["trained"]["metrics"]["accuracy"] == pytest.approx(negatives)
    assert evaluation["task1"]["fresh"]["params"] == 184_897
    assert "same_as_trained" not in evaluation["task1"]["fresh"]


def test_rescoring_reads_the_artifacts_the_grading_read_not_a_planted_folder(
        reference_structure, tmp_path):
    """A notebook knows its artifact folder's name pattern and can plant another one that a
    glob would find first; re-scoring reads exactly the folder result.json names."""
    from grader.pipeline import rescore
    from grader.rubric import load_rubric

    _, out = reference_structure
    copy = tmp_path / "graded"
    shutil.copytree(out, copy, symlinks=True)
    planted = copy / "work" / "artifacts-0000000000000000"  # sorts before any real name
    planted.mkdir()
    (planted / "movies.npz").write_bytes(b"not an npz")
    before = from_dict(json.loads((copy / "result.json").read_text()))
    assert before.extra["artifacts"] != planted.name
    after = rescore(copy, load_rubric())
    assert [(c.check, c.status, c.message) for t in after.tasks for c in t.checks] == \
        [(c.check, c.status, c.message) for t in before.tasks for c in t.checks]
