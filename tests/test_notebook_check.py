"""``check("task1")`` in a student's notebook: the grader's structure checks of a builder, run
in-process on the reference's builders and broken ones, with the sentences ``grade`` gives; the
notebook's random state left alone; and, in one graded run, the reference with its check()
calls graded exactly as its golden results."""

from __future__ import annotations

import json
import random
import sys
import types

import nbformat
import numpy as np
import pytest

from grader import check
from grader.kernel import notebook_check
from grader.checks import STRUCTURE

from .conftest import REFERENCE_NB, ROOT, TEMPLATE_NB, assert_one_sentence

GOLDEN = ROOT / "tests" / "golden" / "reference_structure_results.json"
TASK1_LINES = [
    "Task 1: LSTM with Dropout layers: build_lstm_model() checked as `grade` checks it "
    "(advisory: your grade comes from `grade`)",
    "  [passed] builder function, 2 of 2 points: Task 1: build_lstm_model() returns a compiled "
    "Keras model.",
    "  [passed] layers, 6 of 6 points: Task 1: the layers of build_lstm_model() are "
    "Embedding(5000, 32), Dropout(0.4), LSTM(128), Dropout(0.4), Dense(1, activation=sigmoid), "
    "as the exercise asks.",
    "  [passed] parameter count, 2 of 2 points: Task 1: 242,561 parameters, as expected.",
    "  [passed] output shape, 1 of 1 point: Task 1: output shape (None, 1).",
    "  [passed] compile settings, 2 of 2 points: Task 1: compiled with loss binary_crossentropy, "
    "optimizer Adam (learning rate 0.001), metrics accuracy.",
    "  13 of 13 points. Checked by `grade` only: training history, test accuracy, written "
    "answer.",
]


@pytest.fixture(scope="module")
def solution():
    import reference.solution as solution

    return solution


@pytest.fixture
def namespace(solution) -> dict:
    """A notebook's namespace after the reference's cells: its builders, Keras, the constants."""
    return dict(vars(solution))


def _cell(path, start: str) -> str:
    return next(c.source for c in nbformat.read(path, as_version=4).cells
                if c.source.startswith(start))


def _printed(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_reference_task1_passes_with_the_lines_grade_would_say(namespace, capsys):
    result = check("task1", namespace=namespace)
    assert _printed(capsys) == TASK1_LINES
    assert result.tasks == ("task1",) and result.available and result.passed
    assert [c.kind for c in result.checks] == ["builder", "layers", "param_count",
                                               "output_shape", "compile"]
    assert (result.points, result.max_points) == (13, 13)
    assert repr(result) == "NotebookCheck(task1: 13 of 13 points, advisory)"
    # a builder's name, or the builder itself, is as good as the task's id
    assert check("build_lstm_model", namespace=namespace).checks == result.checks
    assert check(namespace["build_lstm_model"], namespace=namespace).checks == result.checks


def test_every_reference_builder_gets_the_sentences_of_the_graded_reference(namespace, capsys):
    """check() with no argument checks every task whose builder is defined, and says what the
    graded reference's results.json says, check by check."""
    result = check(namespace=namespace)
    golden = {(t["extra_data"]["task"], t["extra_data"]["check"]): t
              for t in json.loads(GOLDEN.read_text())["tests"]}
    assert result.tasks == ("rnn", "task1", "task2", "task3", "bonus")
    assert result.passed and result.points == result.max_points == 53
    shown = {(c.task, c.check): (c.name, c.score, c.max_score, c.message) for c in result.checks}
    # every builder, layers, parameter count, output shape and compile item of the rubric
    assert len(shown) == 22 and {c.kind for c in result.checks} == STRUCTURE
    assert shown == {key: (golden[key]["name"], golden[key]["score"], golden[key]["max_score"],
                           golden[key]["output"]) for key in shown}
    printed = _printed(capsys)
    assert printed[-1] == "  13 of 13 points. Checked by `grade` only: predicts next frames, " \
                          "generate_movies, training history, learns (loss on the grader's " \
                          "movies)."


@pytest.mark.parametrize("task", ["task1", "bonus"])
def test_the_description_is_the_evaluators_of_the_saved_model(namespace, task, tmp_path):
    """What check() judges is what the evaluator makes of the builder's saved model (layer
    names aside: each build numbers them anew)."""
    from grader.evaluator.archive import inspect_archive, load_inspected
    from grader.evaluator.describe import describe_model, model_input_shape
    from grader.rubric import load_rubric

    rubric = load_rubric()
    spec, profile = rubric.task(task), rubric.profile("quick")
    ctx = notebook_check._context(rubric, profile, spec, namespace)
    path = tmp_path / f"{task}.fresh.keras"
    namespace[spec.builder]().save(path)
    evaluated = describe_model(load_inspected(path), inspect_archive(path),
                               model_input_shape(rubric, profile, spec))

    def unnamed(info):
        return {**info, "layers": [{k: v for k, v in layer.items() if k != "name"}
                                   for layer in info["layers"]]}

    assert unnamed(ctx.evaluation["fresh"]) == unnamed(evaluated)


def test_lstm_64_units_gets_the_graders_layers_and_parameter_sentences(namespace, capsys):
    source = _cell(REFERENCE_NB, "def build_lstm_model")
    exec(source.replace("layers.LSTM(128),", "layers.LSTM(64),"), namespace)
    result = check("task1", namespace=namespace)
    failed = {c.check: c for c in result.checks if c.status == "failed"}
    assert sorted(failed) == ["layers", "params"]
    # the sentences of tests/test_grade_structure.py's graded LSTM(64) variant
    assert failed["layers"].message == \
        "Task 1: the layers of build_lstm_model() differ from the exercise's: expected " \
        "LSTM(128) after Dropout(0.4), found LSTM(64)."
    assert failed["params"].message == \
        "Task 1: expected 242,561 parameters, found 184,897 (Embedding 160,000, Dropout 0, " \
        "LSTM 24,832, Dropout 0, Dense 65)."
    assert (result.points, result.max_points) == (5, 13) and not result.passed
    printed = _printed(capsys)
    hint = "      Hint: The exercise asks for Embedding(5000, 32) -> Dropout(rate>0 and rate<1) " \
           "-> LSTM(128) -> Dropout(rate>0 and rate<1) -> Dense(1, activation=sigmoid)."
    assert printed[2:6] == [
        "  [failed] layers, 0 of 6 points: " + failed["layers"].message, hint,
        "  [failed] parameter count, 0 of 2 points: " + failed["params"].message, hint]
    assert printed[-1].startswith("  5 of 13 points.")


def test_the_templates_builder_gets_the_templates_hint(namespace, capsys):
    exec(_cell(TEMPLATE_NB, "def build_lstm_model"), namespace)  # raise NotImplementedError()
    result = check("task1", namespace=namespace)
    builder = result.checks[0]
    assert builder.message == "Task 1: calling build_lstm_model() raised NotImplementedError."
    assert builder.hint == "Replace the template's `raise NotImplementedError()` in " \
                           "build_lstm_model() with your model."
    assert result.points == 0 and all(c.status == "failed" for c in result.checks)
    # the four checks that have no model to look at say so once
    assert _printed(capsys)[1:] == [
        "  [failed] builder function, 0 of 2 points: " + builder.message,
        "      Hint: " + builder.hint,
        "  [failed] layers, parameter count, output shape, compile settings, 0 of 11 points: "
        "Task 1: there is no model to check. build_lstm_model() raised NotImplementedError. "
        "lstm_model is not set.",
        "  0 of 13 points. Checked by `grade` only: training history, test accuracy, written "
        "answer."]


@pytest.mark.parametrize("builder, message, hint", [
    (None, "Task 1: build_lstm_model() is not defined. No other builder function or Keras "
           "model was found either.", "Keep the name build_lstm_model: the grader calls it."),
    (lambda: "model", "Task 1: build_lstm_model() returned str, not a Keras model.",
     "End the builder with `return model`."),
    (lambda: sys.exit(3), "Task 1: calling build_lstm_model() raised SystemExit: 3.",
     "The builder takes no arguments and returns the compiled model."),
], ids=["missing", "not_a_model", "exits"])
def test_broken_builders_get_the_graders_builder_sentences(namespace, builder, message, hint,
                                                           capsys):
    namespace["build_lstm_model"] = builder
    result = check("task1", namespace=namespace)
    assert (result.checks[0].message, result.checks[0].hint) == (message, hint)
    assert result.points == 0
    assert "Hint: " + hint in capsys.readouterr().out


def test_a_model_the_evaluator_would_refuse_is_refused_in_its_words(namespace, capsys):
    """A Lambda layer runs arbitrary code when loaded: the evaluator refuses the saved model,
    and check() says so with the evaluator's sentence."""
    import keras

    namespace["build_lstm_model"] = lambda: keras.Sequential(
        [keras.Input((500,)), keras.layers.Lambda(lambda x: x / 2), keras.layers.Dense(1)])
    result = check("task1", namespace=namespace)
    assert result.checks[0].message.startswith(
        "Task 1: build_lstm_model() returns a model, but task1.fresh.keras was refused: it "
        "contains a Lambda layer")
    assert result.points == 0
    capsys.readouterr()


def test_unknown_task_gets_one_sentence_listing_the_ids(namespace, capsys):
    result = check("task4", namespace=namespace)
    [line] = _printed(capsys)
    assert line == "check(): there is no task 'task4'; the tasks are rnn, task1, task2, task3 " \
                   "and bonus (or their builders' names: 'build_lstm_model' for 'task1')."
    assert_one_sentence(line)
    assert result.checks == () and result.tasks == ()
    # and with no builder defined at all, check() says which it looks for
    check(namespace={})
    assert _printed(capsys) == [
        "check(): no builder of the exercise is defined yet (build_rnn_model(), "
        "build_lstm_model(), build_lstm_dropout_model(), build_cnn_lstm_model(), "
        "build_convlstm_model())."]


def test_without_the_rubric_it_says_so_in_one_line_and_calls_no_builder(namespace, monkeypatch,
                                                                       capsys):
    """As in the grader's confined kernel, where the rubrics package does not exist."""
    monkeypatch.setitem(sys.modules, "rubrics", None)  # importing it fails
    called = []
    namespace["build_lstm_model"] = lambda: called.append(1)
    result = check("task1", namespace=namespace)
    assert _printed(capsys) == [notebook_check.UNAVAILABLE]
    assert_one_sentence(notebook_check.UNAVAILABLE)
    assert not result.available and result.checks == () and called == []
    assert repr(result) == "NotebookCheck(not available here)"


def test_a_failure_of_check_itself_is_printed_not_raised(namespace, monkeypatch, capsys):
    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(notebook_check, "_context", broken)
    result = check("task1", namespace=namespace)
    assert _printed(capsys) == ["check() itself failed (RuntimeError: boom); this is a bug in "
                                "the grader, not in your notebook, and `grade` still grades it."]
    assert not result.available


def test_builders_are_found_in_the_notebooks_namespace(namespace, monkeypatch, capsys):
    # a plain Python caller: its globals
    notebook = {**namespace, "check": check}
    exec("found = check('task1')", notebook)
    assert notebook["found"].passed
    # IPython: its user namespace, wherever check() is called from
    shell = types.SimpleNamespace(user_ns=namespace)
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert check("task1").passed
    assert _printed(capsys) == TASK1_LINES * 2


def _random_state():
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import global_seed_generator

    numpy_state = np.random.get_state()
    return (random.getstate(), numpy_state[1].tolist(), numpy_state[2:],
            np.asarray(global_seed_generator().state).tolist(),
            dict(global_state.get_global_attribute("object_name_uids")))


def test_the_notebooks_random_state_is_unchanged(namespace, capsys):
    """A builder draws its initial weights' seeds from the notebook's random state: a run with
    check() calls must train exactly the models of a run without them."""
    import keras

    def run(checks: bool):
        keras.utils.set_random_seed(7)
        keras.random.uniform((1,))  # Keras' global seed generator exists, as after any draw
        if checks:
            before = _random_state()
            check("task1", namespace=namespace)
            check(namespace=namespace)
            assert _random_state() == before
        model = namespace["build_lstm_model"]()
        x = np.random.randint(1, 5000, size=(8, 500))
        history = model.fit(x, np.arange(8) % 2, epochs=1, batch_size=8, verbose=0)
        return model.get_weights(), history.history["loss"]

    (weights, loss), (weights_checked, loss_checked) = run(False), run(True)
    assert loss == loss_checked
    assert all(np.array_equal(a, b) for a, b in zip(weights, weights_checked, strict=True))
    capsys.readouterr()


@pytest.mark.kernel
def test_graded_reference_with_check_calls_scores_as_the_golden_file(reference_structure):
    """The reference calls check() after each builder; graded, it scores exactly its golden
    results, and each call printed one line (the rubric is hidden from the confined kernel)
    or, where the machine cannot hide it, its checks, all passed, and raised nothing."""
    result, out = reference_structure
    got = json.loads((out / "results.json").read_text())
    got["execution_time"] = 0
    assert got == json.loads(GOLDEN.read_text())
    assert not result.errors and result.kernel is None
    executed = nbformat.read(out / "executed.ipynb", as_version=4)
    calls = [c for c in executed.cells if c.source.rstrip().endswith(("check(\"task1\")",
             "check(\"task2\")", "check(\"task3\")", "check(\"bonus\")"))]
    assert len(calls) == 4
    hidden = any(layer.startswith("filesystem view") for layer in result.confinement)
    for cell in calls:
        assert all(o.output_type != "error" for o in cell.outputs)
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        if hidden:
            assert text == notebook_check.UNAVAILABLE + "\n"
        else:
            assert "[failed]" not in text and "[passed] builder function" in text


def test_the_builder_is_judged_against_the_notebooks_own_review_length(namespace, capsys):
    """`grade` sets its profile's MAX_REVIEW_LENGTH; in the student's own notebook, check()
    compares the builder's input with the notebook's value, so a builder that follows it
    passes whatever the profiles say."""
    import keras

    namespace["MAX_REVIEW_LENGTH"] = 321

    def builder():
        model = keras.Sequential([keras.Input(shape=(321,)),
                                  keras.layers.Embedding(5000, 32), keras.layers.Dropout(0.4),
                                  keras.layers.LSTM(128), keras.layers.Dropout(0.4),
                                  keras.layers.Dense(1, activation="sigmoid")])
        model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
        return model

    namespace["build_lstm_model"] = builder
    first = check("task1", namespace=namespace)
    assert first.checks and first.checks[0].status == "passed", capsys.readouterr().out
    namespace["MAX_REVIEW_LENGTH"] = 200
    builder_check = check("task1", namespace=namespace).checks[0]
    assert builder_check.message.startswith("Task 1: build_lstm_model() builds a model for "
                                            "reviews of 321 words, but MAX_REVIEW_LENGTH is 200")
    capsys.readouterr()
