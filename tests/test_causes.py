"""One cause said once: the checks name what failed them (a stable key), ``grader.causes`` groups
a task's failed checks by it, and what to do first comes out in the student's words. No kernel:
the checks run on stored data, as in test_checks.py."""

from __future__ import annotations

import json

import nbformat
import pytest

from grader.causes import causes, explained_by
from grader.cellref import cell_ref
from grader.checks import Outcome
from grader.checks.base import CAUSES
from grader.pipeline import check_all, with_places
from grader.results import (CellError, CheckResult, SubmissionResult, TaskResult, from_dict,
                            to_dict, to_gradescope)
from grader.submission import cell_places

from .conftest import TEMPLATE_NB, assert_one_sentence
from .test_checks import RUBRIC, TASK1_LAYERS, context, model

MISSING = {"status": "missing"}
PLACEHOLDER = {"builder": {"status": "error", "error": "NotImplementedError"}, "model": MISSING,
               "history": MISSING}
#: the template's Task 1 training cell, as the kernel reported its error
TRAINING_CELL = CellError(cell=18, task="task1", ename="NotImplementedError", evalue="",
                          traceback="", source_line=2, code_cell=12,
                          first_line="# YOUR CODE HERE",
                          heading="1.4 Task 1: Train and evaluate an LSTM model")


def _rubric_for(task_id):
    """The bundled rubric with only one task (check_all walks the rubric's tasks)."""
    import dataclasses

    return dataclasses.replace(RUBRIC, tasks=(RUBRIC.task(task_id),))


def grouped(ctx, profile="structure"):
    [task] = check_all(_rubric_for(ctx.task.id), RUBRIC.profile(profile), {ctx.task.id: ctx},
                       ctx.errors)
    return task, causes(task)


def test_a_placeholder_builder_is_one_cause_said_once_and_the_first_thing_to_do():
    ctx = context(profile="structure", harvest=PLACEHOLDER, errors=[TRAINING_CELL])
    task, found = grouped(ctx)
    first, then = found
    assert first.key == "builder_placeholder"
    assert first.todo == "Write build_lstm_model(): it still raises NotImplementedError."
    assert first.titles == ["builder function", "layers", "parameter count", "output shape",
                            "compile settings"]
    assert first.lost == 13 and first.first.check == "builder"
    # the training cell is the next thing, named so that it can be found in Jupyter
    assert then.key == "no_trained_model" and then.titles == ["training history"]
    assert then.todo == ("Train lstm_model and keep its History as lstm_history: code cell 12 "
                         "(“# YOUR CODE HERE”, under “1.4 Task 1: Train and evaluate an LSTM "
                         "model”), line 2 still raises NotImplementedError.")
    # a long heading is cut where it still finds the cell
    heading = "1.8 Task 3: Train and evaluate an LSTM model with a convolutional layer"
    assert cell_ref(14, "# YOUR CODE HERE", heading) == (
        "code cell 14 (“# YOUR CODE HERE”, under “1.8 Task 3: Train and evaluate an LSTM "
        "model…”)")
    # the other checks of the cause are "not checked: see above"; the first one says it
    assert set(explained_by(task)) == {"layers", "params", "output_shape", "compile"}
    for cause in found:
        assert_one_sentence(cause.todo.replace("“", "").replace("”", ""))


def test_in_the_quick_profile_the_accuracy_falls_with_the_training():
    ctx = context(profile="quick", harvest=PLACEHOLDER, errors=[TRAINING_CELL])
    _, (first, then) = grouped(ctx, "quick")
    assert then.titles == ["training history", "test accuracy"] and then.lost == 9


@pytest.mark.parametrize("harvest, errors, defined_in, key, todo", [
    ({"builder": MISSING, "model": MISSING, "history": MISSING}, [], {}, "builder_missing",
     "Write build_lstm_model(): it is not defined."),
    ({"builder": {"status": "error", "error": "ValueError: Unknown activation: 'sigmoidd'."},
      "model": MISSING, "history": MISSING}, [], {}, "builder_raised",
     "Fix build_lstm_model(): calling it raises ValueError."),
    ({"builder": {"status": "not_a_model", "type": "NoneType"}, "model": MISSING,
      "history": MISSING}, [], {}, "builder_not_a_model",
     "Make build_lstm_model() return the model: it returns NoneType."),
    ({"builder": MISSING, "model": MISSING, "history": MISSING},
     [CellError(cell=17, task="task1", ename="ModuleNotFoundError", evalue="No module named x",
                traceback="", source_line=1, code_cell=11,
                first_line="from keras.layers.recurrent import LSTM")],
     {"build_lstm_model": 17}, "builder_failed_cell",
     "Fix code cell 11 (“from keras.layers.recurrent import LSTM”), line 1: it raised "
     "ModuleNotFoundError before build_lstm_model() was defined."),
])
def test_each_builder_cause_fails_the_builders_checks_once(harvest, errors, defined_in, key,
                                                           todo):
    ctx = context(profile="structure", harvest=harvest, errors=errors, defined_in=defined_in)
    _, found = grouped(ctx)
    assert (found[0].key, found[0].todo) == (key, todo)
    assert found[0].titles[:5] == ["builder function", "layers", "parameter count",
                                   "output shape", "compile settings"]


def test_a_notebook_that_stopped_is_the_cause_of_every_check():
    ctx = context(profile="structure", harvest={},
                  not_run="The kernel died in code cell 9 (“evaluate(X_test, y_test)”)")
    _, [cause] = grouped(ctx)
    assert cause.key == "notebook_stopped"
    assert cause.todo == ("Make the notebook run to its end: the kernel died in code cell 9 "
                          "(“evaluate(X_test, y_test)”).")
    assert cause.titles == ["builder function", "layers", "parameter count", "output shape",
                            "compile settings", "training history"]


def test_a_trained_model_that_is_not_the_builders_fails_its_measured_checks_once():
    bonus = RUBRIC.task("bonus")
    fresh = {"layers": [{"class": "Conv3D", "name": "c", "settings": {}, "params": 1}],
             "params": 1, "output_shape": [None, None, 40, 40, 1],
             "compile": {"loss": "binary_crossentropy"}, "prediction_shape": [2, 8, 40, 40, 1],
             "input_shape": [2, 8, 40, 40, 1]}
    trained = dict(fresh, metrics={"loss": 0.1, "untrained_loss": 0.5})
    ctx = context(task="bonus", profile="quick", fresh=fresh, trained=trained, same=False)
    task, found = grouped(ctx, "quick")
    [cause] = [c for c in found if c.key == "not_the_builders_model"]
    assert cause.titles == ["predicts next frames", "learns (loss on the grader's movies)"]
    assert cause.todo == ("Train the model build_convlstm_model() returns: convlstm_model is "
                          "another model.")
    assert set(explained_by(task)) == {"learns"} and bonus.id == "bonus"


def test_checks_without_a_shared_cause_are_each_their_own():
    found = [dict(layer) for layer in TASK1_LAYERS]
    found[2] = dict(found[2], settings=dict(found[2]["settings"], units=64))
    ctx = context(profile="structure", fresh=model(found, 184_897),
                  harvest={"builder": {"status": "ok"}, "model": {"status": "ok"},
                           "history": {"status": "ok", "history": dict.fromkeys(
                               ("loss", "accuracy", "val_loss", "val_accuracy"), [0.6])}})
    task, found_causes = grouped(ctx)
    assert [c.titles for c in found_causes] == [["layers"], ["parameter count"]]
    assert found_causes[0].todo == ("Give build_lstm_model() the exercise's layers: expected "
                                    "LSTM(128) after Dropout(0.4), found LSTM(64).")
    assert found_causes[1].todo == ("Bring the model build_lstm_model() returns to 242,561 "
                                    "parameters: it has 184,897.")
    assert explained_by(task) == {}


def test_an_unknown_cause_is_refused():
    assert set(CAUSES) >= {"builder_placeholder", "builder_failed_cell", "notebook_stopped",
                           "not_the_builders_model", "no_trained_model"}
    with pytest.raises(ValueError):
        Outcome(False, "no", cause="something_else")


def _template_like() -> SubmissionResult:
    ctx = context(profile="structure", harvest=PLACEHOLDER, errors=[TRAINING_CELL])
    task = task_result_one(ctx)
    return SubmissionResult(submission="ex8.ipynb", profile="structure", status="graded",
                            tasks=(task,), errors=(TRAINING_CELL,))


def task_result_one(ctx) -> TaskResult:
    [task] = check_all(_rubric_for(ctx.task.id), RUBRIC.profile("structure"),
                       {ctx.task.id: ctx}, ctx.errors)
    return task


def test_results_json_keeps_one_test_per_check_and_points_at_the_cause():
    result = _template_like()
    tests = to_gradescope(result)["tests"]
    # every check but the skipped ones and the written answer still to be marked
    assert [t["extra_data"]["check"] for t in tests] == [
        c.check for c in result.tasks[0].checks if c.status not in ("skipped", "pending")]
    by_check = {t["extra_data"]["check"]: t["output"] for t in tests}
    assert by_check["builder"].startswith("Task 1: calling build_lstm_model() raised "
                                          "NotImplementedError.")
    for check in ("layers", "params", "output_shape", "compile"):
        assert by_check[check] == ("Not checked: see “Task 1: builder function”. Write "
                                   "build_lstm_model(): it still raises NotImplementedError.")


def test_results_of_earlier_versions_are_read_and_their_cells_named_for_jupyter():
    """result.json written before checks named causes and cells counted code cells only:
    from_dict reads it (the new fields have defaults), and re-scoring names its cells from the
    executed notebook."""
    stored = to_dict(_template_like())
    for task in stored["tasks"]:
        for check in task["checks"]:
            del check["cause"], check["todo"]
        for error in task["errors"]:
            del error["code_cell"], error["first_line"], error["heading"]
    nb = nbformat.read(TEMPLATE_NB, as_version=4)
    # Task 1's "# YOUR CODE HERE": its number among every cell, and among code cells
    every = next(i for i, c in enumerate(nb.cells, 1) if c.source.startswith("# YOUR CODE"))
    code = [c for c in nb.cells if c.cell_type == "code"].index(nb.cells[every - 1]) + 1
    for error in stored["errors"]:
        del error["code_cell"], error["first_line"], error["heading"]
        error["cell"] = every
        error["traceback"] = f"Cell {every}, line 2\n----> 2 raise NotImplementedError()"
    old = from_dict(json.loads(json.dumps(stored)))
    assert old.errors[0].code_cell is None
    assert cell_ref(None, None, cell=18) == "cell 18 (counting every cell, markdown too)"
    # its causes are still grouped by what each check says: one group per check
    assert len(causes(old.tasks[0])) == len(
        [c for c in old.tasks[0].checks if c.status == "failed"])
    [error] = with_places(old.errors, nb)
    assert (error.code_cell, error.first_line) == (code, "# YOUR CODE HERE")
    assert error.traceback.startswith(f"Code cell {code} (“# YOUR CODE HERE”, under “1.4 Task "
                                      "1: Train and evaluate an LSTM model”), line 2")


def test_cells_are_named_by_code_cell_first_line_and_heading_where_needed():
    nb = nbformat.read(TEMPLATE_NB, as_version=4)
    places = [p for p in cell_places(nb) if p is not None]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [p.code_cell for p in places] == list(range(1, len(code) + 1))
    for p, c in zip(places, code):
        assert c.source.strip().splitlines()[0].strip() == p.first_line
    # the four "# YOUR CODE HERE" cells are told apart by their headings; the others need none
    alike = [p for p in places if p.first_line == "# YOUR CODE HERE"]
    assert len(alike) == 4 and len({p.heading for p in alike}) == 4
    assert all(p.heading is None for p in places if p.first_line != "# YOUR CODE HERE")


def test_a_check_result_without_a_cause_reads_as_before():
    c = CheckResult("task1", "layers", "layers", "Task 1: layers", 0.0, 6.0, "failed",
                    "Task 1: the layers differ.")
    [cause] = causes(TaskResult("task1", "Task 1", (c,)))
    assert cause.key is None and cause.todo == "The layers differ."


def test_a_notebook_that_stopped_is_said_once_at_the_top_of_the_page(tmp_path):
    from grader.report import render_feedback

    kernel = "The kernel died in code cell 9 (“evaluate(X_test, y_test)”)"
    tasks = [TaskResult("rnn", "SimpleRNN (worked example)", ())]  # nothing to fix there
    for task_id in ("task1", "task2"):
        ctx = context(task=task_id, profile="structure", harvest={}, not_run=kernel)
        tasks.append(task_result_one(ctx))
    result = SubmissionResult(submission="ex8.ipynb", profile="structure", status="graded",
                              tasks=tuple(tasks), kernel=kernel + ".")
    page = render_feedback(result, tmp_path)
    assert page.count("First make the notebook run to its end.") == 1
    assert page.count("Make the notebook run to its end (see above).") == 2
    assert "Make the notebook run to its end: the kernel died" not in page
    assert page.count('id="how-counted"') == 1  # the page names a cell
    assert "Nothing to fix." in page


def test_what_costs_points_comes_first():
    """A History with the wrong number of epochs is information (0 points); a test accuracy
    below the threshold costs points: the page's first thing to do is the accuracy."""
    history = CheckResult("task1", "history", "history", "Task 1: training history", 0.0, 0.0,
                          "failed", "Task 1: it recorded 1 epoch, but EPOCHS is 2.",
                          todo="Fix the training of lstm_model: pass epochs=EPOCHS to fit().")
    accuracy = CheckResult("task1", "accuracy", "accuracy", "Task 1: test accuracy", 0.0, 9.0,
                           "failed", "Task 1: measured accuracy 0.56.",
                           todo="Raise the test accuracy of lstm_model to 0.70.")
    found = causes(TaskResult("task1", "Task 1", (history, accuracy)))
    assert [c.first.check for c in found] == ["accuracy", "history"]
