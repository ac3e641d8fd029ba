"""Keras 3 migration hints: each Keras 2 / Python 2 spelling at its cell and line, with its fix.

The unit tests read small sources. The integration tests grade the exercise's own code (the
fixture ``keras2_exercise_code_gets_migration_hints.ipynb``, built from the seed text by
``fixtures/build_keras2_fixture.py``) once in the structure profile: every line of it that
fails under Keras 3 gets its hint at the right cell and line, and the reference gets none.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import nbformat
import pytest

from grader.migration import LEGACY_MODULES, RULES, find_hints
from grader.results import CellError, from_dict, to_dict, to_gradescope

from .conftest import REFERENCE_NB, ROOT, TEMPLATE_NB

FIXTURES = ROOT / "tests" / "fixtures"
KERAS2_NB = FIXTURES / "keras2_exercise_code_gets_migration_hints.ipynb"
SEED = ROOT.parent / "shared" / "seed" / "000_2604270522ec1f05.txt"


def hints_of(source: str) -> list[tuple[str, int, str]]:
    """(rule, line, Keras 3 spelling) of every hint in one cell."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    return [(h.rule, h.line, h.fix) for h in find_hints(nb)]


# --------------------------------------------------------------------------- one rule each

RULE_CASES = {
    "predict_classes": ("Y_cls = model.predict_classes(X_test, batch_size=1)",
                        [("predict_classes", 1,
                          'Y_cls = (model.predict(X_test, batch_size=1) > 0.5).astype("int32")')]),
    "predict_proba": ("p = model.predict_proba(X)", [("predict_proba", 1, "p = model.predict(X)")]),
    "history_keys_subscript": (
        "x = 1\nplt.plot(network_history.history['val_acc'])",
        [("history_keys", 2, "plt.plot(network_history.history['val_accuracy'])")]),
    "history_keys_get_and_monitor": (
        'a = h.history.get("acc")\ncb = EarlyStopping(monitor="val_acc")',
        [("history_keys", 1, 'a = h.history.get("accuracy")'),
         ("history_keys", 2, 'cb = EarlyStopping(monitor="val_accuracy")')]),
    "metrics_acc": ("model.compile(loss='binary_crossentropy', optimizer='adam', metrics=['acc'])",
                    [("metrics_acc", 1, "model.compile(loss='binary_crossentropy', "
                                        "optimizer='adam', metrics=['accuracy'])")]),
    "numpy_alias": ("import numpy as npy\nx = npy.zeros(3, dtype=npy.int) + npy.float(2)",
                    [("numpy_alias", 2, "x = npy.zeros(3, dtype=int) + float(2)")]),
    "legacy_import_from": (
        "from keras.layers.convolutional_recurrent import ConvLSTM2D as C, ConvLSTM1D",
        [("legacy_import", 1, "from keras.layers import ConvLSTM2D as C, ConvLSTM1D")]),
    "legacy_import_module": ("import keras.layers.normalization as norm",
                             [("legacy_import", 1, "from keras import layers as norm")]),
    "legacy_import_multiline": (
        "from keras.layers.embeddings import (\n    Embedding,\n)",
        [("legacy_import", 1, "from keras.layers import Embedding")]),
    "embedding_input_length_add": (
        "model.add(Embedding(top_words, 32, input_length=max_review_length))",
        [("embedding_input_length", 1, "model.add(keras.Input(shape=(max_review_length,)))\n"
                                       "model.add(Embedding(top_words, 32))")]),
    "embedding_input_length_list": (
        "model = keras.Sequential([\n    Embedding(5000, 32, input_length=500),\n"
        "    LSTM(100),\n])",
        [("embedding_input_length", 2, "model = keras.Sequential([\n    keras.Input(shape=(500,)),"
                                       "\n    Embedding(5000, 32),\n    LSTM(100),\n])")]),
    "input_shape_on_its_own_line": (
        "seq.add(ConvLSTM2D(filters=40, kernel_size=(3, 3),\n"
        "                   input_shape=(None, 40, 40, 1),\n"
        "                   padding='same', return_sequences=True))",
        [("input_shape", 2, "seq.add(keras.Input(shape=(None, 40, 40, 1)))\n"
                            "seq.add(ConvLSTM2D(filters=40, kernel_size=(3, 3),\n"
                            "                   padding='same', return_sequences=True))")]),
    "optimizer_lr": ("opt = keras.optimizers.Adam(lr=0.01)",
                     [("optimizer_lr", 1, "opt = keras.optimizers.Adam(learning_rate=0.01)")]),
    "adadelta_string": ("seq.compile(loss='binary_crossentropy', optimizer='adadelta')",
                        [("adadelta", 1, "seq.compile(loss='binary_crossentropy', "
                                         "optimizer=keras.optimizers.Adadelta(learning_rate=1.0))")]),
    "adadelta_default": ("m.compile(optimizer=Adadelta(), loss='mse')",
                         [("adadelta", 1, "m.compile(optimizer=Adadelta(learning_rate=1.0), "
                                          "loss='mse')")]),
    "print_statement": ('def f(x):\n    print "a", x,\n    print >>sys.stderr, "err", x\n'
                        '    if x: print x\n    return x',
                        [("print_statement", 2, 'print("a", x, end=" ")'),
                         ("print_statement", 3, 'print("err", x, file=sys.stderr)'),
                         ("print_statement", 4, "print(x)")]),
    "print_statement_over_two_lines": (
        "print 'Report:', classification_report(Y_test,\n"
        "                                     Y_cls)",
        [("print_statement", 1, "print('Report:', classification_report(Y_test,\n"
                                "                                     Y_cls))")]),
}


@pytest.mark.parametrize("case", sorted(RULE_CASES))
def test_rule_gives_the_keras3_spelling_at_its_line(case):
    source, expected = RULE_CASES[case]
    assert hints_of(source) == expected


def test_every_rule_has_a_case():
    covered = {rule for _, expected in RULE_CASES.values() for rule, _, _ in expected}
    assert covered == set(RULES)


def test_print_statements_do_not_hide_the_other_hints_of_their_cell():
    source = ("def evaluate(model, X):\n    Y_cls = model.predict_classes(X)\n"
              "    print 'Report:', Y_cls\n    return np.float(Y_cls.mean())")
    assert [(r, line) for r, line, _ in hints_of(source)] == [
        ("predict_classes", 2), ("print_statement", 3), ("numpy_alias", 4)]


def test_a_cell_that_never_parses_is_read_line_by_line():
    source = ("try:\n    y = model.predict_classes(x)\nexcept Exception, e:\n    print 'x', e\n"
              "h.history['acc']\nfrom keras.layers.embeddings import Embedding\nz = np.float(3)")
    assert hints_of(source) == [
        ("predict_classes", 2, RULES["predict_classes"].fix),
        ("print_statement", 4, "print('x', e)"),
        ("history_keys", 5, "h.history['accuracy']"),
        ("legacy_import", 6, "from keras.layers import Embedding"),
        ("numpy_alias", 7, "z = float(3)"),
    ]


def test_a_cell_that_warns_is_still_parsed():
    # "\d" in a plain string warns, and this suite turns warnings into errors
    assert hints_of('pattern = re.compile("\\d+")\ny = model.predict_classes(x)') == [
        ("predict_classes", 2, 'y = (model.predict(x) > 0.5).astype("int32")')]


def test_magics_keep_the_line_numbers():
    source = ("%matplotlib inline\n!pip list\nfrom keras.layers.convolutional import Conv3D\n"
              "%time x = 1")
    assert hints_of(source) == [("legacy_import", 3, "from keras.layers import Conv3D")]


def test_keras3_code_gets_no_hints():
    source = """\
print("x")
print (x)
print ("ok"), x
y = (model.predict(x) > 0.5).astype("int32")
history.history['accuracy'], history.history["val_accuracy"]
np.float32(3), np.int64(2), np.bool_(1), float(np.pi)
from keras.layers import Conv1D, MaxPooling1D
from keras import layers
keras.optimizers.Adam(learning_rate=1e-3)
m.compile(optimizer=keras.optimizers.Adadelta(1.0), loss="mse", metrics=["accuracy"])
m.compile(optimizer=keras.optimizers.Adadelta(learning_rate=1.0))
# model.predict_classes(x) and history['acc'] in a comment
plt.legend(['acc', 'val_acc'])
s = "print 'x'; from keras.layers.convolutional import Conv1D"
lr = 0.1
layers.Embedding(input_dim=5000, output_dim=32)
keras.Sequential([keras.Input(shape=(500,)), layers.Embedding(5000, 32)])
"""
    assert hints_of(source) == []


@pytest.mark.parametrize("path", [REFERENCE_NB, TEMPLATE_NB], ids=["reference", "template"])
def test_the_reference_and_the_template_hold_no_legacy_code(path):
    nb = nbformat.read(path, as_version=4)
    assert find_hints(nb) == []


def test_every_legacy_module_is_gone_from_the_installed_keras():
    # in a child process: importing Keras here would drag TensorFlow's warnings into pytest
    code = ("import importlib, json, sys\nfailed = []\n"
            f"for m in {list(LEGACY_MODULES)!r}:\n"
            "    try:\n        importlib.import_module('keras.layers.' + m)\n"
            "    except ModuleNotFoundError:\n        failed.append(m)\n"
            "print(json.dumps(failed))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""})
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == list(LEGACY_MODULES)


# --------------------------------------------------------------------------- recorded errors


def _executed(*cells: tuple[str, int, list[str] | None]) -> nbformat.NotebookNode:
    """A notebook as the kernel left it: (source, execution count, error traceback or None)."""
    nb = nbformat.v4.new_notebook()
    for source, count, traceback in cells:
        cell = nbformat.v4.new_code_cell(source, execution_count=count)
        if traceback:
            cell.outputs = [nbformat.v4.new_output("error", ename="E", evalue="",
                                                   traceback=traceback)]
        nb.cells.append(cell)
    return nb


KEYERROR_TB = ["\x1b[0;31mKeyError\x1b[0m   Traceback (most recent call last)",
               "Cell \x1b[0;32mIn[4], line 1\x1b[0m\n----> 1 plot(history)",
               "Cell In[3], line 3, in plot(h)\n      2 plt.plot(h.history['loss'])\n"
               "----> 3 plt.plot(h.history['acc'])", "KeyError: 'acc'"]


def test_a_hint_whose_line_raised_an_error_names_the_error_and_where_it_ran():
    nb = _executed(("x = 1", 1, None),
                   ("def plot(h):\n    plt.plot(h.history['loss'])\n"
                    "    plt.plot(h.history['acc'])\n"
                    "    plt.plot(h.history['val_acc'])", 3, None),
                   ("plot(history)", 4, KEYERROR_TB))
    err = CellError(cell=3, task="rnn", ename="KeyError", evalue="'acc'",
                    traceback="KeyError: 'acc'")  # the recorded tail lost the frames
    hints = find_hints(nb, [err], [None, "rnn", "rnn"])
    assert [(h.cell, h.line, h.task, h.error, h.error_cells) for h in hints] == [
        (2, 3, "rnn", "KeyError: 'acc'", (3,)), (2, 4, "rnn", None, ())]


def test_cells_are_numbered_as_in_the_students_notebook():
    """The grader's parameters cell (and the harvest cell) are not the student's: a hint and
    its error name the cell the student counts, and its task is that cell's."""
    from grader.submission import HARVEST_TAG, INJECTED_TAG, cell_numbers

    nb = _executed(("SEED = 1", 1, None), ("SEED = 2  # the grader's", 2, None),
                   ("def plot(h):\n    plt.plot(h.history['loss'])\n    plt.plot(h.history['acc'])",
                    3, None), ("plot(history)", 4, KEYERROR_TB), ("harvest()", 5, None))
    nb.cells[1].metadata["tags"] = [INJECTED_TAG]
    nb.cells[4].metadata["tags"] = [HARVEST_TAG]
    assert cell_numbers(nb) == [1, None, 2, 3, None]
    err = CellError(cell=3, task="rnn", ename="KeyError", evalue="'acc'", traceback="")
    [hint] = find_hints(nb, [err], [None, None, "task1", "rnn", None])
    assert (hint.cell, hint.line, hint.task, hint.error, hint.error_cells) == \
        (2, 3, "task1", "KeyError: 'acc'", (3,))
    # and as Jupyter shows it: the second code cell handed in, by its first line
    assert (hint.code_cell, hint.first_line, hint.heading) == (2, "def plot(h):", None)


def test_a_timeout_in_a_grader_cell_is_not_given_a_students_number(tmp_path):
    from grader.report import render_feedback
    from grader.results import SubmissionResult

    result = SubmissionResult(
        submission="x_ex8.ipynb", profile="structure", status="graded",
        errors=(CellError(cell=None, task=None, ename="CellTimeout", traceback="",
                          evalue="stopped after the 300 s limit per cell"),))
    html = render_feedback(result, tmp_path)
    assert "<strong>The grader's own cell: CellTimeout</strong>" in html
    assert "Cell None" not in html


def test_an_error_the_source_does_not_show_becomes_a_hint_at_its_frame():
    tb = ["AttributeError   Traceback (most recent call last)",
          "Cell In[2], line 2\n      1 name = 'predict_' + 'classes'\n----> 2 getattr(m, name)(x)",
          "AttributeError: 'Sequential' object has no attribute 'predict_classes'"]
    nb = _executed(("name = 'predict_' + 'classes'\ngetattr(m, name)(x)", 2, tb))
    err = CellError(cell=1, task=None, ename="AttributeError",
                    evalue="'Sequential' object has no attribute 'predict_classes'",
                    traceback="\n".join(tb))
    [hint] = find_hints(nb, [err])
    assert (hint.rule, hint.cell, hint.line, hint.code) == \
        ("predict_classes", 1, 2, "getattr(m, name)(x)")
    assert hint.fix == RULES["predict_classes"].fix and hint.error_cells == (1,)


def test_errors_of_other_kinds_make_no_hints():
    nb = _executed(("evaluate(X)", 1, ["NameError: name 'evaluate' is not defined"]))
    err = CellError(cell=1, task=None, ename="NameError", evalue="name 'evaluate' is not defined",
                    traceback="")
    assert find_hints(nb, [err]) == []


def test_a_module_submission_is_read_too(tmp_path):
    module = tmp_path / "sub.py"
    module.write_text("import numpy as np\n\ndef build():\n"
                      "    return np.zeros(2, dtype=np.float)\n")
    tb = ["AttributeError   Traceback (most recent call last)",
          "Cell In[1], line 1\n----> 1 build()",
          f"File {tmp_path}/work/submission.py:4, in build()\n----> 4 return np.zeros(2)",
          "AttributeError: module 'numpy' has no attribute 'float'."]
    nb = _executed(("build()", 1, tb))
    err = CellError(cell=1, task="task1", ename="AttributeError",
                    evalue="module 'numpy' has no attribute 'float'.", traceback="")
    [hint] = find_hints(nb, [err], ["task1"], module=module)
    assert (hint.cell, hint.line, hint.fix, hint.error_cells) == \
        (None, 4, "return np.zeros(2, dtype=float)", (1,))


# --------------------------------------------------------------------------- the exercise's code


def test_the_fixture_is_the_exercise_code_as_printed():
    """Every exercise line in the fixture is in the seed text; the committed file is current."""
    spec = importlib.util.spec_from_file_location("build_keras2_fixture",
                                                  FIXTURES / "build_keras2_fixture.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    assert SEED.is_file(), f"the exercise text is not at {SEED}"
    seed = re.sub(r"\s+", " ", SEED.read_text(encoding="utf-8"))
    for cell in builder.EXERCISE_CELLS:
        if cell in builder.NOT_IN_SEED:
            continue
        for line in filter(str.strip, cell.splitlines()):
            printed = builder.EXERCISE_REPAIRS.get(line.strip(), line.strip())
            assert re.sub(r"\s+", " ", printed) in seed, line
    assert nbformat.read(KERAS2_NB, as_version=4) == builder.build(), \
        "run python tests/fixtures/build_keras2_fixture.py"


#: (rule, cell, line, the error it raised, the cells that reported it); cells are numbered as in
#: the student's notebook (executed.ipynb has one cell more: the grader's parameters cell, its
#: cell 3), lines as in the cell
KERAS2_HINTS = [
    ("embedding_input_length", 8, 6, None, ()),
    ("history_keys", 11, 12, "KeyError: 'acc'", (12, 18, 22)),
    ("history_keys", 11, 13, None, ()),
    ("predict_classes", 14, 6, None, ()),  # the SyntaxError of line 11 stops the whole cell
    ("print_statement", 14, 11, "SyntaxError: Missing parentheses in call to 'print'. "
                                "Did you mean print(...)?", (14,)),
    ("embedding_input_length", 17, 6, None, ()),
    ("embedding_input_length", 21, 5, None, ()),
    ("legacy_import", 25, 1, "ModuleNotFoundError: No module named 'keras.layers.convolutional'",
     (25,)),
    ("embedding_input_length", 25, 6, None, ()),
    ("numpy_alias", 29, 5, "AttributeError: module 'numpy' has no attribute 'float'.", (33,)),
    ("numpy_alias", 29, 7, None, ()),
    ("legacy_import", 31, 2, "ModuleNotFoundError: No module named 'keras.layers.convolutional'",
     (31,)),
    ("legacy_import", 31, 3, None, ()),
    ("legacy_import", 31, 4, None, ()),
    ("input_shape", 31, 12, None, ()),
    ("adadelta", 31, 31, None, ()),
]

#: every line of the exercise that fails under Keras 3 -> (cell, line, its Keras 3 spelling)
FAILING_LINES = {
    "plt.plot(network_history.history['acc'])":
        (11, 12, "plt.plot(network_history.history['accuracy'])"),
    "plt.plot(network_history.history['val_acc'])":
        (11, 13, "plt.plot(network_history.history['val_accuracy'])"),
    "Y_cls = model.predict_classes(X_test, batch_size=1)":
        (14, 6, 'Y_cls = (model.predict(X_test, batch_size=1) > 0.5).astype("int32")'),
    "print 'Classification Report:\\n', classification_report(Y_test, Y_cls)":
        (14, 11, "print('Classification Report:\\n', classification_report(Y_test, Y_cls))"),
    "from keras.layers.convolutional import Conv1D, MaxPooling1D":
        (25, 1, "from keras.layers import Conv1D, MaxPooling1D"),
    "noisy_movies = np.zeros((n_samples, n_frames, row, col, 1), dtype=np.float)":
        (29, 5, "noisy_movies = np.zeros((n_samples, n_frames, row, col, 1), dtype=float)"),
    "dtype=np.float)": (29, 7, "dtype=float)"),
    "from keras.layers.convolutional import Conv3D": (31, 2, "from keras.layers import Conv3D"),
    "from keras.layers.convolutional_recurrent import ConvLSTM2D":
        (31, 3, "from keras.layers import ConvLSTM2D"),
    "from keras.layers.normalization import BatchNormalization":
        (31, 4, "from keras.layers import BatchNormalization"),
}

#: points the exercise's code loses in the structure profile, and why
KERAS2_LOST = {
    # (fit(epochs=3) where the grader's profile sets EPOCHS = 1 is reported, worth no points)
    # the keras.layers.convolutional import stops the builder's cell
    **{("task3", c): p for c, p in (("builder", 2), ("layers", 6), ("params", 2),
                                    ("output_shape", 1), ("compile", 2))},
    # the same for the bonus, and np.float stops generate_movies
    **{("bonus", c): p for c, p in (("builder", 2), ("layers", 6), ("params", 2),
                                    ("output_shape", 1), ("predicts_frames", 2), ("compile", 2))},
}


@pytest.fixture(scope="module")
def keras2_graded(tmp_path_factory):
    from grader.pipeline import grade_submission

    out = tmp_path_factory.mktemp("keras2") / "graded"
    return grade_submission(KERAS2_NB, profile="structure", out=out), out


@pytest.mark.kernel
def test_the_exercise_code_gets_exactly_these_hints(keras2_graded):
    result, out = keras2_graded
    assert result.status == "graded", result.reason
    assert [(h.rule, h.cell, h.line, h.error, h.error_cells) for h in result.hints] == \
        KERAS2_HINTS
    submitted = nbformat.read(KERAS2_NB, as_version=4)
    for h in result.hints:  # each quote is the line it names, in the notebook handed in
        assert h.code == submitted.cells[h.cell - 1].source.splitlines()[h.line - 1].strip()
    assert {h.task for h in result.hints if h.cell in (8, 11, 14)} == {"rnn"}
    assert {h.task for h in result.hints if h.cell in (29, 31)} == {"bonus"}


@pytest.mark.kernel
@pytest.mark.parametrize("code", sorted(FAILING_LINES))
def test_each_failing_line_of_the_exercise_gets_its_hint(keras2_graded, code):
    result, _ = keras2_graded
    cell, line, fix = FAILING_LINES[code]
    [hint] = [h for h in result.hints if (h.cell, h.line) == (cell, line)]
    assert (hint.code, hint.fix) == (code, fix)


@pytest.mark.kernel
def test_hints_cost_no_points(keras2_graded):
    result, _ = keras2_graded
    lost = {(c.task, c.check): c.lost for t in result.tasks for c in t.checks if c.lost}
    assert lost == KERAS2_LOST
    assert len(to_gradescope(result)["tests"]) == sum(
        1 for t in result.tasks for c in t.checks if c.status not in ("skipped", "pending"))


@pytest.mark.kernel
def test_hints_reach_every_report(keras2_graded):
    result, out = keras2_graded
    assert from_dict(json.loads((out / "result.json").read_text())) == result
    assert from_dict(to_dict(result)).hints == result.hints
    output = json.loads((out / "results.json").read_text())["output"]
    assert "\nKeras 3 migration hints (advice, no points): 16\n" in f"\n{output}"
    # cells named as Jupyter shows them: by code cell and first line (README, cellref)
    assert "- code cell 9 (“from sklearn.metrics import accuracy_score,…”), line 11: " \
           "print 'Classification Report:\\n', classification_report(Y_test, Y_cls)  [raised " \
           "SyntaxError: " in output
    html = (out / "feedback.html").read_text()
    for h in result.hints:
        assert f'id="hint-{h.cell}-{h.line}-{h.rule}"' in html
    assert html.count('class="box hint-box bad"') == 5
    # the error of code cell 8 points to the line that raised it, in code cell 7
    assert '<a href="#hint-11-12-history_keys">the hint for code cell 7 (“def ' \
           'plot_history(network_history):”), line 12</a>' in html


@pytest.mark.kernel
def test_a_notebook_free_of_legacy_code_gets_no_hints(reference_structure):
    result, out = reference_structure
    assert result.hints == ()
    html = (out / "feedback.html").read_text()
    assert 'class="box hint-box' not in html and 'id="hints-summary"' not in html
    # the top-level output says only what is left to a TA: no hint
    output = json.loads((out / "results.json").read_text())["output"]
    assert output.startswith("Written answers to be marked by a TA (6 points")
    assert "Keras 3" not in output and "hint" not in output

