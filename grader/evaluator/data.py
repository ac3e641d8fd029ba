"""The grader's data: its held-out test reviews, a few training reviews for the report's
histogram, its own movies, and the word index that turns reviews back into words."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EvalData", "load_eval_data", "reference_generate_movies", "decode_review",
           "misclassified_reviews", "word_ranks"]


def reference_generate_movies():
    """The reference's ``generate_movies``, taken out of ``reference/solution.py`` alone.

    Importing the module would also import what its other cells use (matplotlib,
    scikit-learn), which the evaluator does without (``UNUSED_PACKAGES``); the function itself
    needs NumPy only.
    """
    import ast
    import importlib.util

    spec = importlib.util.find_spec("reference.solution")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("reference.solution is not installed beside the grader",
                                  name="reference.solution")
    path = Path(spec.origin)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[ast.stmt] = [node for node in tree.body if isinstance(node, ast.FunctionDef)
                             and node.name == "generate_movies"]
    namespace: dict[str, Any] = {"np": np}
    exec(compile(ast.Module(body=found, type_ignores=[]), str(path), "exec"), namespace)
    return namespace["generate_movies"]


@dataclass
class EvalData:
    x_test: np.ndarray
    y_test: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    noisy: np.ndarray
    shifted: np.ndarray


def load_eval_data(rubric, profile, source=None) -> EvalData:
    """The grader's own test reviews (held out of every notebook's data: ``grader.data``), a
    train subset for the histogram, and its own movies."""
    from ..data import load_imdb_subsets
    from ..heldout import load_held_out

    ev, data = profile.evaluation, rubric.data
    seed = data.get("seed", 113)
    length = rubric.review_length(profile)  # what the notebook's models are built for
    x_test, y_test = load_held_out(data["top_words"], length,
                                   ev["test_samples"], count=rubric.held_out["reviews"],
                                   seed=rubric.held_out["seed"], source=source)
    x_train, y_train = load_imdb_subsets(data["top_words"], length,
                                         {"train": ev["train_samples"]}, seed=seed,
                                         source=source)["train"]
    state = np.random.get_state()
    np.random.seed(seed)  # the same movies for every submission
    try:
        noisy, shifted = reference_generate_movies()(ev["movies"], ev["movie_frames"])
    finally:
        np.random.set_state(state)
    return EvalData(x_test, y_test, x_train, y_train, noisy, shifted)


def decode_review(sequence, words: dict[int, str], max_words: int = 120) -> str:
    """Word indices back to text (indices are ranks + 3; 0 pads, 1 starts, 2 is unknown)."""
    tokens = [words.get(int(i) - 3, "?") for i in sequence if int(i) >= 2]
    text = " ".join(tokens[:max_words])
    return text + (" ..." if len(tokens) > max_words else "")


def misclassified_reviews(x_test, y_test, probs: dict[str, np.ndarray],
                          words: dict[int, str] | None, count: int = 5) -> list[dict]:
    """The test reviews most models got wrong, most confidently first, with every model's
    probability of "positive"."""
    if not probs:
        return []
    tasks = list(probs)
    p = np.stack([probs[t] for t in tasks])
    wrong = (p > 0.5) != np.asarray(y_test).astype(bool)
    n_wrong = wrong.sum(axis=0)
    confidence = np.where(wrong, np.abs(p - 0.5), 0).sum(axis=0)
    order = [int(i) for i in np.lexsort((-confidence, -n_wrong)) if n_wrong[i]][:count]
    return [{"index": i, "label": int(y_test[i]),
             "prob": {t: round(float(probs[t][i]), 4) for t in tasks},
             "wrong": [t for k, t in enumerate(tasks) if wrong[k, i]],
             "text": decode_review(x_test[i], words) if words else None} for i in order]


def word_ranks(source) -> dict[int, str] | None:
    from ..data import get_word_index
    from ..errors import DataSourceError

    try:
        return {rank: word for word, rank in get_word_index(source).items()}
    except DataSourceError:  # an imdb.npz without its word index: reviews stay numbers
        return None
