"""Real training on real IMDB data in the quick profile: the reference earns every automatic
point, an untrained model loses exactly its accuracy points, and the reference's Task 1 model,
trained on the notebook's data, clears the rubric's threshold on the held-out reviews."""

from __future__ import annotations

import json

import nbformat
import pytest
import yaml

from grader.pipeline import grade_submission
from grader.results import EXIT_FULL_MARKS, EXIT_POINTS_LOST
from grader.rubric import default_rubric_path, load_rubric

from .conftest import REFERENCE_NB

pytestmark = [pytest.mark.slow, pytest.mark.kernel]


def test_reference_task1_model_clears_the_quick_threshold():
    """Train the reference's Task 1 model as its notebook does, measure it as the grader does."""
    import keras
    from sklearn.model_selection import train_test_split

    import reference.solution as solution
    from grader.data import load_imdb
    from grader.heldout import ensure_view
    from grader.evaluator import imdb_metrics, load_eval_data

    rubric = load_rubric()
    profile = rubric.profile("quick")
    p = profile.parameters
    keras.utils.set_random_seed(solution.SEED)
    # the notebook's data, as in a graded run: the source without the held-out reviews
    view = ensure_view(count=rubric.held_out["reviews"], seed=rubric.held_out["seed"])
    (x_all, y_all), _ = load_imdb(num_words=p.get("TOP_WORDS", solution.TOP_WORDS), source=view)
    x_all, y_all = x_all[:p["TRAIN_SAMPLES"]], y_all[:p["TRAIN_SAMPLES"]]
    x_train, x_val, y_train, y_val = train_test_split(x_all, y_all, test_size=0.3,
                                                      random_state=solution.SEED)
    pad = solution.MAX_REVIEW_LENGTH
    model = solution.build_lstm_model()
    model.fit(keras.utils.pad_sequences(x_train, maxlen=pad), y_train,
              validation_data=(keras.utils.pad_sequences(x_val, maxlen=pad), y_val),
              epochs=p["EPOCHS"], batch_size=p["BATCH_SIZE"], verbose=0)
    data = load_eval_data(rubric, profile)
    accuracy = imdb_metrics(data.y_test, model.predict(data.x_test, batch_size=512,
                                                       verbose=0).ravel())["accuracy"]
    threshold = rubric.task("task1").check("accuracy").options["threshold"]["quick"]
    assert accuracy >= threshold, f"Task 1 reached {accuracy:.4f}, threshold {threshold}"


def test_reference_gets_full_automatic_marks_in_quick(tmp_path):
    result = grade_submission(REFERENCE_NB, profile="quick", out=tmp_path / "out")
    assert result.status == "graded", result.reason
    lost = {(c.task, c.check): c.message for t in result.tasks for c in t.checks if c.lost}
    assert lost == {}
    assert result.exit_code == EXIT_FULL_MARKS
    assert result.flags == ()  # what the notebook printed agrees with what the grader measured
    accuracy = [c for t in result.tasks for c in t.checks if c.kind == "accuracy"
                and c.status == "passed"]
    assert {c.task for c in accuracy} == {"task1", "task2", "task3"}
    evaluation = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert evaluation["tasks"]["task1"]["trained"]["metrics"]["samples"] == \
        load_rubric().profile("quick").evaluation["test_samples"]


def _task1_only_rubric(tmp_path):
    raw = yaml.safe_load(default_rubric_path().read_text())
    raw["tasks"] = [t for t in raw["tasks"] if t["id"] == "task1"]
    path = tmp_path / "task1_only.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_untrained_model_loses_exactly_its_accuracy(tmp_path):
    """Task 1 built but never fitted. The other tasks' cells are dropped and a rubric with only
    Task 1 is used, so the run costs a kernel start instead of all the training."""
    nb = nbformat.read(REFERENCE_NB, as_version=4)
    keep = []
    for cell in nb.cells:
        task = cell.metadata.get("ex8", {}).get("task")
        if cell.cell_type == "code" and task not in (None, "task1"):
            continue
        if "lstm_history = lstm_model.fit(" in cell.source:
            cell.source = ("lstm_model = build_lstm_model()\n"
                           "evaluate(X_test, y_test, X_train[:len(X_test)], "
                           "y_train[:len(X_test)], lstm_model)")
        keep.append(cell)
    nb.cells = keep
    path = tmp_path / "untrained_model_loses_task1_accuracy.ipynb"
    nbformat.write(nb, path)
    result = grade_submission(path, profile="quick", out=tmp_path / "out",
                              rubric=_task1_only_rubric(tmp_path))
    assert result.status == "graded", result.reason
    # its history is missing (information, no points); its accuracy is measured, and low
    assert {(c.task, c.check): c.lost for t in result.tasks for c in t.checks if c.lost} == \
        {("task1", "accuracy"): 9}
    assert result.exit_code == EXIT_POINTS_LOST
    accuracy = next(c for c in result.tasks[0].checks if c.check == "accuracy")
    assert "looks untrained" in accuracy.hint
