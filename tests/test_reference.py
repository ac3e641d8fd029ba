"""The reference solution: exact parameter counts and shapes, the movies, the generated files."""

from __future__ import annotations

import nbformat
import numpy as np
import pytest

from reference import build

from .conftest import REFERENCE_NB, TEMPLATE_NB

EXPECTED = {
    "build_rnn_model": (180_737, (None, 1)),
    "build_lstm_model": (242_561, (None, 1)),
    "build_lstm_dropout_model": (242_561, (None, 1)),
    "build_cnn_lstm_model": (245_665, (None, 1)),
    "build_convlstm_model": (407_001, (None, None, 40, 40, 1)),
}


@pytest.fixture(scope="module")
def solution():
    import reference.solution as solution

    return solution


@pytest.mark.parametrize("builder", sorted(EXPECTED))
def test_reference_models_have_the_exercise_parameter_counts(solution, builder):
    model = getattr(solution, builder)()
    params, shape = EXPECTED[builder]
    assert model.count_params() == params
    assert tuple(model.output_shape) == shape
    assert model.compiled


def test_convlstm_maps_a_movie_to_a_movie_of_the_same_shape(solution):
    model = solution.build_convlstm_model()
    movie = np.zeros((1, 15, 40, 40, 1), dtype=np.float32)
    assert model.predict(movie, verbose=0).shape == (1, 15, 40, 40, 1)


def test_convlstm_optimizer_is_adadelta_with_keras2_learning_rate(solution):
    opt = solution.build_convlstm_model().optimizer
    assert type(opt).__name__ == "Adadelta"
    assert float(opt.learning_rate) == pytest.approx(1.0)


def test_generate_movies_shapes_range_and_shift(solution):
    np.random.seed(0)
    noisy, shifted = solution.generate_movies(n_samples=30, n_frames=12)
    assert noisy.shape == shifted.shape == (30, 12, 40, 40, 1)
    assert noisy.min() >= 0 and noisy.max() <= 1 and shifted.min() >= 0 and shifted.max() <= 1
    assert set(np.unique(shifted)) <= {0.0, 1.0}
    # shifted frame t is the (noise-free) square layout of noisy frame t+1
    assert np.array_equal(shifted[:, :-1], (noisy[:, 1:] >= 0.5).astype(shifted.dtype))
    assert noisy[:, 1:].sum() > 0 and not np.array_equal(noisy[:, :-1], noisy[:, 1:])


def test_the_evaluators_generate_movies_is_the_solutions(solution):
    """What the evaluator takes out of reference/solution.py makes the same movies."""
    from grader.evaluator import reference_generate_movies

    made = []
    for make in (solution.generate_movies, reference_generate_movies()):
        np.random.seed(3)
        made.append(make(n_samples=5, n_frames=9))
    for a, b in zip(*made):
        assert np.array_equal(a, b)
    assert reference_generate_movies().__code__.co_filename.endswith("reference/solution.py")


def test_generated_files_are_up_to_date():
    stale = build.stale()
    assert not stale, f"run `python -m reference.build`: {[p.name for p in stale]} are stale"


def test_stale_detection_notices_an_edit(tmp_path, monkeypatch):
    copy = tmp_path / "ex8.ipynb"
    copy.write_text(TEMPLATE_NB.read_text().replace("YOUR CODE HERE", "my code", 1))
    monkeypatch.setattr(build, "TEMPLATE_NOTEBOOK", copy)
    assert build.stale() == [copy]


def _code(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    return nb, "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def test_template_has_stubs_where_the_solution_has_code():
    sol_nb, sol = _code(REFERENCE_NB)
    tpl_nb, tpl = _code(TEMPLATE_NB)
    assert "### BEGIN SOLUTION" not in sol and "### BEGIN SOLUTION" not in tpl
    assert tpl.count("raise NotImplementedError()") == 8  # 4 builders, 4 training cells
    for name in ("build_lstm_model", "build_lstm_dropout_model", "build_cnn_lstm_model",
                 "build_convlstm_model"):
        assert f"def {name}():" in tpl  # the template asks for the contract's names
    assert "layers.LSTM(128" in sol and "layers.LSTM(128" not in tpl
    assert "def generate_movies" in tpl and "def build_rnn_model" in tpl  # given code stays
    # the same cells, markdown and tags in both, the parameters cell first among code cells
    assert [c.cell_type for c in sol_nb.cells] == [c.cell_type for c in tpl_nb.cells]
    for nb in (sol_nb, tpl_nb):
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert first_code.metadata["tags"] == ["parameters"]
        assert "Task 1: Train and evaluate an LSTM model" in "".join(
            c.source for c in nb.cells if c.cell_type == "markdown")
        nbformat.validate(nb)


def test_parameters_cell_holds_the_contract_names():
    nb = nbformat.read(REFERENCE_NB, as_version=4)
    ns: dict = {}
    exec(nb.cells[1].source, ns)
    assert {k: ns[k] for k in ns if k.isupper()} == {
        "TOP_WORDS": 5000, "MAX_REVIEW_LENGTH": 500, "EMBEDDING_DIM": 32, "TRAIN_SAMPLES": None,
        "TEST_SAMPLES": 10000, "EPOCHS": 3, "BATCH_SIZE": 64, "MOVIE_SAMPLES": 1200,
        "MOVIE_FRAMES": 15, "MOVIE_EPOCHS": 20, "SEED": 7}


def test_markers_must_pair():
    with pytest.raises(ValueError, match="without"):
        build.render(["x", "### BEGIN SOLUTION", "y"], student=True, markdown=False)
    with pytest.raises(ValueError, match="without"):
        build.render(["### END SOLUTION"], student=False, markdown=False)
    assert build.render(["    ### BEGIN SOLUTION", "    a = 1", "    ### END SOLUTION"],
                        student=True, markdown=False) == \
        "    # YOUR CODE HERE\n    raise NotImplementedError()"
