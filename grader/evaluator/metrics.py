"""The grader's own metric code: nothing the kernel computed is used."""

from __future__ import annotations

import numpy as np

__all__ = ["imdb_metrics", "movie_metrics"]


def imdb_metrics(y_true: np.ndarray, prob: np.ndarray) -> dict:
    """Accuracy, weighted precision/recall (the exercise's), log loss and confusion matrix.

    The numbers scikit-learn's ``accuracy_score``, ``precision_score``/``recall_score``
    (``average="weighted", zero_division=0``), ``log_loss`` and ``confusion_matrix`` give
    (``tests/test_evaluate_metrics.py`` holds them to it), from the confusion matrix: importing
    ``sklearn.metrics`` (and SciPy with it) cost the evaluator 1.1 s of CPU per submission.
    """
    y_true = np.asarray(y_true).astype(int).ravel()
    prob = np.clip(np.asarray(prob, dtype=np.float64).ravel(), 1e-7, 1 - 1e-7)
    pred = (prob > 0.5).astype(int)
    n = len(y_true)
    confusion = np.zeros((2, 2), dtype=np.int64)  # rows: true class, columns: predicted
    np.add.at(confusion, (y_true, pred), 1)
    hits = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)  # the weights: how many reviews of each class
    predicted = confusion.sum(axis=0)

    def weighted(denominator):
        per_class = np.divide(hits, denominator, out=np.zeros(2), where=denominator > 0)
        return float(np.dot(per_class, support) / n)

    return {
        "accuracy": float(hits.sum() / n),
        "precision": weighted(predicted),
        "recall": weighted(support),
        "loss": float(-np.mean(np.where(y_true == 1, np.log(prob), np.log1p(-prob)))),
        "confusion": confusion.tolist(),
        "samples": int(n),
    }


def movie_metrics(truth: np.ndarray, pred: np.ndarray) -> dict:
    """Next-frame predictions against the true frames: binary cross-entropy (the exercise's
    loss), the share of pixels on the right side of 0.5, and the mean squared error."""
    truth = np.asarray(truth, dtype=np.float64)
    pred = np.clip(np.asarray(pred, dtype=np.float64), 1e-7, 1 - 1e-7)
    return {"loss": float(-np.mean(truth * np.log(pred) + (1 - truth) * np.log1p(-pred))),
            "pixel_accuracy": float(np.mean((pred > 0.5) == (truth > 0.5))),
            "mse": float(np.mean((pred - truth) ** 2))}
