"""Every check function on stored data: no kernel, no IMDB data, milliseconds each.

A task's context is what the pipeline hands a check: the harvest (the kernel's report), the
evaluation (the evaluator's measurements) and the notebook's errors. The layer descriptions
below are the evaluator's, for the reference's models and variants of them.
"""

from __future__ import annotations

import copy

import pytest

from grader.checks import REGISTRY, TaskContext
from grader.checks.base import sentence
from grader.checks.structure import align_layers, canonical_name
from grader.results import CellError
from grader.rubric import load_rubric

RUBRIC = load_rubric()


def layer(cls, params=0, **settings):
    return {"class": cls, "name": cls.lower(), "settings": settings, "params": params,
            "output_shape": None}


TASK1_LAYERS = [layer("Embedding", 160_000, input_dim=5000, output_dim=32),
                layer("Dropout", rate=0.4), layer("LSTM", 82_432, units=128, dropout=0.0,
                                                  recurrent_dropout=0.0),
                layer("Dropout", rate=0.4), layer("Dense", 129, units=1, activation="sigmoid")]
TASK2_LAYERS = [layer("Embedding", 160_000, input_dim=5000, output_dim=32),
                layer("LSTM", 82_432, units=128, dropout=0.4, recurrent_dropout=0.4),
                layer("Dense", 129, units=1, activation="sigmoid")]
BOW_LAYERS = [layer("Embedding", 80_000, input_dim=5000, output_dim=16),
              layer("GlobalAveragePooling1D"), layer("Dense", 17, units=1,
                                                     activation="sigmoid")]
COMPILED = {"loss": "binary_crossentropy", "optimizer": "Adam", "learning_rate": 0.001,
            "metrics": ["accuracy"]}
METRICS = {"accuracy": 0.81, "precision": 0.81, "recall": 0.81, "loss": 0.45, "samples": 2000,
           "confusion": [[800, 200], [180, 820]], "held_out": True}


def model(layers, params, **extra):
    return {"layers": layers, "params": params, "output_shape": [None, 1],
            "compile": dict(COMPILED), **extra}


def context(task="task1", profile="quick", fresh=None, trained=None, same=True, harvest=None,
            errors=(), defined_in=None, **kw) -> TaskContext:
    spec = RUBRIC.task(task)
    evaluation = {}
    if fresh is not None:
        evaluation["fresh"] = fresh
    if trained is not None:
        evaluation["trained"] = trained
    if fresh is not None and trained is not None and "error" not in trained:
        evaluation["same_architecture"] = same
        if not same:
            evaluation["architecture_difference"] = "layers[2].config.units: 64 vs 128"
    default = {"builder": {"status": "ok"}, "model": {"status": "ok"},
               "history": {"status": "ok", "history": {"loss": [0.6, 0.4]}}}
    return TaskContext(task=spec, profile=RUBRIC.profile(profile), rubric=RUBRIC,
                       harvest=default if harvest is None else harvest, evaluation=evaluation,
                       errors=tuple(errors), defined_in=defined_in or {}, **kw)


def run(ctx: TaskContext, check_id: str):
    spec = ctx.task.check(check_id)
    return REGISTRY[spec.check].func(ctx, spec)


# --------------------------------------------------------------------------- layers


def test_every_layer_difference_is_reported_not_only_the_first():
    found = copy.deepcopy(TASK1_LAYERS)
    found[0]["settings"]["output_dim"] = 64  # a wrong Embedding size ...
    found[2]["settings"]["units"] = 64  # ... and a wrong LSTM ...
    del found[3]  # ... and a missing Dropout after it
    outcome = run(context(fresh=model(found, 0)), "layers")
    assert not outcome.passed
    assert outcome.message == (
        "Task 1: the layers of build_lstm_model() differ from the exercise's: expected "
        "Embedding(5000, 32) after the input, found Embedding(5000, 64); expected LSTM(128) "
        "after Dropout(0.4), found LSTM(64); Dropout(rate>0 and rate<1) is missing after "
        "LSTM(64).")


def test_an_extra_layer_and_a_wrong_class_are_both_named():
    found = TASK1_LAYERS[:2] + [layer("GRU", units=128)] + TASK1_LAYERS[3:] + \
        [layer("Dense", units=1, activation="sigmoid")]
    outcome = run(context(fresh=model(found, 0)), "layers")
    assert "expected LSTM(128) after Dropout(0.4), found GRU(128)" in outcome.message
    assert "an extra Dense(1, activation=sigmoid) after Dense(1)." in \
        outcome.message


def test_a_passing_layers_message_names_the_values_it_checked():
    outcome = run(context("task2", fresh=model(TASK2_LAYERS, 242_561)), "layers")
    assert outcome.passed
    assert outcome.message == (
        "Task 2: the layers of build_lstm_dropout_model() are Embedding(5000, 32), "
        "LSTM(128, dropout=0.4, recurrent_dropout=0.4), Dense(1, activation=sigmoid), as the "
        "exercise asks.")


def test_optional_layers_may_be_left_out():
    spec = RUBRIC.task("bonus").check("layers").options["expect"]
    convlstm = layer("ConvLSTM2D", filters=40, kernel_size=[3, 3], padding="same",
                     return_sequences=True)
    found = [convlstm] * 4 + [layer("Conv3D", filters=1, activation="sigmoid")]
    pairs = align_layers(spec, found)
    assert [p[1]["class"] if p[1] else None for p in pairs] == \
        ["ConvLSTM2D", None, "ConvLSTM2D", None, "ConvLSTM2D", None, "ConvLSTM2D", None, "Conv3D"]
    assert run(context("bonus", fresh=model(found, 0)), "layers").passed


# --------------------------------------------------------------------------- compile


@pytest.mark.parametrize("loss, metric", [
    ("binary_crossentropy", "accuracy"),
    ("bce", "acc"),
    ("BinaryCrossentropy", "BinaryAccuracy"),  # class instances: their class names
    ({"module": "builtins", "class_name": "function", "config": "binary_crossentropy",
      "registered_name": "function"}, "binary_accuracy"),  # keras.losses.binary_crossentropy
    ("binary_crossentropy", {"module": "builtins", "class_name": "function",
                             "config": "binary_accuracy", "registered_name": "function"}),
])
def test_every_spelling_keras_accepts_for_the_loss_and_metric_passes(loss, metric):
    fresh = model(TASK1_LAYERS, 242_561)
    fresh["compile"].update(loss=loss, metrics=[metric])
    outcome = run(context(fresh=fresh), "compile")
    assert outcome.passed, outcome.message
    assert "loss binary_crossentropy" in outcome.message


@pytest.mark.parametrize("loss, metric, problem", [
    ("BinaryFocalCrossentropy", "accuracy",
     "expected loss binary_crossentropy, found binary_focal_crossentropy"),
    ("mse", "accuracy", "expected loss binary_crossentropy, found mean_squared_error"),
    ("binary_crossentropy", "Accuracy",  # keras.metrics.Accuracy(): exact equality
     "expected the metric accuracy, found exact_accuracy"),
])
def test_other_losses_and_metrics_fail(loss, metric, problem):
    fresh = model(TASK1_LAYERS, 242_561)
    fresh["compile"].update(loss=loss, metrics=[metric])
    outcome = run(context(fresh=fresh), "compile")
    assert not outcome.passed and problem in outcome.message


def test_canonical_names_of_keras_spellings():
    assert {canonical_name(n) for n in ("bce", "BinaryCrossentropy", "binary_crossentropy")} \
        == {"binary_crossentropy"}
    assert canonical_name("MeanSquaredError") == canonical_name("mse") == "mean_squared_error"


# --------------------------------------------------------------------------- builder


def test_a_builder_whose_cell_raised_points_at_that_cell():
    error = CellError(cell=16, task="task1", ename="ModuleNotFoundError",
                      evalue="No module named 'keras.layers.convolutional'", traceback="",
                      source_line=1, code_cell=11,
                      first_line="from keras.layers.convolutional import Conv1D")
    ctx = context(harvest={"builder": {"status": "missing"}, "model": {"status": "missing"}},
                  errors=[error], defined_in={"build_lstm_model": 16})
    outcome = run(ctx, "builder")
    where = "code cell 11 (“from keras.layers.convolutional import Conv1D”), line 1"
    assert outcome.message == (
        f"Task 1: build_lstm_model() is not defined: {where} raised "
        "ModuleNotFoundError: No module named 'keras.layers.convolutional', so "
        "build_lstm_model was never defined.")
    assert (outcome.cause, outcome.todo) == (
        "builder_failed_cell",
        f"Fix {where}: it raised ModuleNotFoundError before build_lstm_model() was defined.")
    layers = run(ctx, "layers")
    assert f"{where} raised ModuleNotFoundError" in layers.message
    assert (layers.cause, layers.todo) == (outcome.cause, outcome.todo)  # one cause, said once


def test_a_builder_that_is_simply_missing_says_keep_the_name():
    ctx = context(harvest={"builder": {"status": "missing"}, "model": {"status": "missing"}},
                  namespace={"functions": ["build_lstm_net"]})
    outcome = run(ctx, "builder")
    assert outcome.message == ("Task 1: build_lstm_model() is not defined. Found instead: "
                               "functions build_lstm_net().")
    assert outcome.hint == "Keep the name build_lstm_model: the grader calls it."


# --------------------------------------------------------------------------- measured


def test_accuracy_counts_for_the_builders_architecture():
    ctx = context(fresh=model(TASK1_LAYERS, 242_561),
                  trained=model(TASK1_LAYERS, 242_561, metrics=METRICS))
    outcome = run(ctx, "accuracy")
    assert outcome.passed
    assert outcome.message.startswith("Task 1: measured accuracy 0.8100 on 2,000 held-out test "
                                      "reviews (threshold 0.60")


def test_accuracy_of_another_model_than_the_builders_does_not_count():
    ctx = context(fresh=model(TASK1_LAYERS, 242_561),
                  trained=model(BOW_LAYERS, 80_017, metrics=METRICS), same=False)
    outcome = run(ctx, "accuracy")
    assert not outcome.passed
    assert outcome.message == (
        "Task 1: lstm_model is not the model build_lstm_model() returns: it has 3 layers "
        "(Embedding(5000, 16), GlobalAveragePooling1D, Dense(1, activation=sigmoid); 80,017 "
        "parameters), the builder's model 5 (Embedding(5000, 32), Dropout(0.4), LSTM(128), "
        "Dropout(0.4), Dense(1, activation=sigmoid); 242,561 parameters).")


def test_a_difference_the_listing_does_not_show_is_named_from_the_configs():
    ctx = context(fresh=model(TASK1_LAYERS, 242_561),
                  trained=model(TASK1_LAYERS, 242_561, metrics=METRICS), same=False)
    assert run(ctx, "accuracy").message.endswith(
        "their layers' configurations differ (layers[2].config.units: 64 vs 128).")


def test_a_builder_of_other_layers_does_not_make_its_model_count():
    ctx = context(fresh=model(BOW_LAYERS, 80_017),
                  trained=model(BOW_LAYERS, 80_017, metrics=METRICS))
    outcome = run(ctx, "accuracy")
    assert not outcome.passed
    assert outcome.message == (
        "Task 1: lstm_model is not this task's model: it lacks the Dropout and LSTM layers the "
        "exercise asks for, so its measurement does not count.")


def test_a_model_of_the_tasks_kind_with_other_sizes_still_counts():
    fewer = [layer("ConvLSTM2D", filters=40, kernel_size=[3, 3], padding="same",
                   return_sequences=True)] * 3 + [layer("Conv3D", filters=1,
                                                        activation="sigmoid")]
    measured = {"loss": 0.2, "untrained_loss": 0.69, "pixel_accuracy": 0.9, "mse": 0.1}
    ctx = context("bonus", fresh=model(fewer, 0), trained=model(fewer, 0, metrics=measured))
    assert run(ctx, "learns").passed


def test_without_a_builder_model_the_trained_one_is_not_counted():
    ctx = context(trained=model(TASK1_LAYERS, 242_561, metrics=METRICS),
                  harvest={"builder": {"status": "missing"}, "model": {"status": "ok"}})
    outcome = run(ctx, "accuracy")
    assert not outcome.passed
    assert outcome.message == (
        "Task 1: lstm_model is not counted: the grader compares it with the model "
        "build_lstm_model() returns, and build_lstm_model() returned no model.")


def test_a_model_stopped_by_its_budget_fails_with_the_reason():
    why = "task1.trained.keras was not measured: predicting 2,500 reviews needed more than " \
          "4 GiB of memory."
    ctx = context(fresh=model(TASK1_LAYERS, 242_561), trained={"error": why})
    assert run(ctx, "accuracy").message == \
        f"Task 1: the trained model could not be measured: {why}"


def test_accuracy_below_the_threshold_fails():
    low = dict(METRICS, accuracy=0.55)
    ctx = context(fresh=model(TASK1_LAYERS, 242_561),
                  trained=model(TASK1_LAYERS, 242_561, metrics=low))
    assert not run(ctx, "accuracy").passed


@pytest.mark.parametrize("loss, passed", [(0.2, True), (0.689, False)])
def test_learns_compares_with_the_same_architecture_untrained(loss, passed):
    convlstm = [layer("ConvLSTM2D", filters=40, kernel_size=[3, 3], padding="same",
                      return_sequences=True)] * 4 + [layer("Conv3D", filters=1,
                                                           activation="sigmoid")]
    measured = {"loss": loss, "untrained_loss": 0.69, "pixel_accuracy": 0.9, "mse": 0.1}
    ctx = context("bonus", fresh=model(convlstm, 0), trained=model(convlstm, 0, metrics=measured))
    outcome = run(ctx, "learns")
    assert outcome.passed is passed
    assert "the same architecture untrained scores 0.6900 (at most 0.995 x that is 0.6865)" in \
        outcome.message


# --------------------------------------------------------------------------- history


def test_a_history_check_is_information_and_its_hint_keeps_code_as_written():
    ctx = context(harvest={"builder": {"status": "ok"}, "model": {"status": "ok"},
                           "history": {"status": "ok", "history": {"loss": [0.6]}}})
    outcome = run(ctx, "history")
    assert not outcome.passed
    assert outcome.hint == ("Pass validation_data=(X_val, y_val) to fit(); compile with "
                            "metrics=['accuracy']; pass epochs=EPOCHS to fit() so the grader's "
                            "profiles can set it.")
    assert RUBRIC.task("task1").check("history").points == 0
    assert not REGISTRY["history"].scored


@pytest.mark.parametrize("text, expected", [
    ("pass epochs=EPOCHS to fit()", "Pass epochs=EPOCHS to fit()."),
    ("validation_data=(X_val, y_val) is missing", "validation_data=(X_val, y_val) is missing."),
    ("X_val is empty.", "X_val is empty."),
])
def test_sentences_keep_code_as_written(text, expected):
    assert sentence(text) == expected


def test_no_rubric_may_score_what_the_kernel_reported(tmp_path):
    import yaml

    from grader.errors import RubricError

    raw = yaml.safe_load(RUBRIC.path.read_text())
    raw["tasks"][1]["checks"] = [dict(c, points=3) if c["check"] == "history" else c
                                 for c in raw["tasks"][1]["checks"]]
    path = tmp_path / "scored-history.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(RubricError, match="check 'history' reads only what the notebook "
                                          "reported, which earns no points: give it 'points: "
                                          "0'"):
        load_rubric(path)


def test_a_review_length_written_by_hand_is_said_in_a_sentence():
    """The profiles set MAX_REVIEW_LENGTH; a builder with Input(shape=(500,)) cannot be trained
    on a profile's shorter reviews: the builder check says so, not a shape error."""
    from dataclasses import replace
    from types import MappingProxyType

    quick = RUBRIC.profile("quick")
    short = replace(quick, parameters=MappingProxyType({**quick.parameters,
                                                        "MAX_REVIEW_LENGTH": 200}))
    fresh = model(TASK1_LAYERS, 242_561, input_shape=[None, 500])
    ctx = context(fresh=fresh)
    ctx.profile = short
    outcome = run(ctx, "builder")
    assert outcome.message == (
        "Task 1: build_lstm_model() builds a model for reviews of 500 words, but "
        "MAX_REVIEW_LENGTH is 200 in the quick profile, so it cannot be trained or measured on "
        "its reviews.")
    assert outcome.hint.startswith("Write keras.Input(shape=(MAX_REVIEW_LENGTH,)) instead of "
                                   "the number 500")
    ctx.evaluation["fresh"]["input_shape"] = [None, 200]
    assert run(ctx, "builder").passed
