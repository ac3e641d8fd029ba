"""The evaluator's review metrics, and what its process does without.

``imdb_metrics`` computes from the confusion matrix what scikit-learn's metrics give (the
exercise's ``evaluate()`` uses them); the evaluator no longer imports ``sklearn.metrics``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import (accuracy_score, confusion_matrix, log_loss, precision_score,
                             recall_score)

from grader.evaluator import imdb_metrics
from grader.evaluator.__main__ import UNUSED_PACKAGES

from .conftest import ROOT


def _sklearn(y, prob):
    prob = np.clip(np.asarray(prob, dtype=np.float64), 1e-7, 1 - 1e-7)
    pred = (prob > 0.5).astype(int)
    return {
        "accuracy": accuracy_score(y, pred),
        "precision": precision_score(y, pred, average="weighted", zero_division=0),
        "recall": recall_score(y, pred, average="weighted", zero_division=0),
        "loss": log_loss(y, prob, labels=[0, 1]),
        "confusion": confusion_matrix(y, pred, labels=[0, 1]).tolist(),
        "samples": len(y),
    }


def _cases():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 1000)
    yield "random", y, rng.random(1000)
    yield "informative", y, np.clip(y * 0.6 + rng.random(1000) * 0.5, 0, 1)
    yield "perfect", y, y.astype(float)
    yield "inverted", y, 1.0 - y
    yield "all one class predicted", y, np.full(1000, 0.9)
    yield "one class only", np.ones(50, dtype=int), rng.random(50)
    yield "exactly 0.5 is negative", np.array([0, 1, 1]), np.array([0.5, 0.5, 0.50001])
    yield "float32 probabilities", y, rng.random(1000).astype(np.float32)


@pytest.mark.parametrize("name,y,prob", list(_cases()), ids=[c[0] for c in _cases()])
def test_metrics_are_scikit_learns(name, y, prob):
    ours, theirs = imdb_metrics(y, prob), _sklearn(y, prob)
    assert ours["confusion"] == theirs["confusion"]
    assert ours["samples"] == theirs["samples"]
    for key in ("accuracy", "precision", "recall", "loss"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-12, abs=1e-15), key
    json.dumps(ours)  # plain numbers for evaluation.json


def test_the_evaluator_process_does_without_the_unused_packages():
    """What ``python -m grader.evaluator`` imports: Keras, the reference's movies and the
    metrics, none of the packages it refuses; Keras still builds and predicts without them."""
    code = """
import json, sys
import numpy as np
from grader.evaluator.__main__ import refuse_unused_packages
refuse_unused_packages()
import keras
from keras import layers
from grader.evaluator import imdb_metrics, reference_generate_movies
model = keras.Sequential([keras.Input((20,)), layers.Embedding(50, 4), layers.LSTM(3),
                          layers.Dense(1, activation="sigmoid")])
prob = model.predict(np.arange(40).reshape(2, 20) % 50, verbose=0)[:, 0]
print(imdb_metrics(np.array([0, 1]), prob)["samples"], reference_generate_movies()(1, 3)[0].shape)
try:
    import sklearn
except ModuleNotFoundError as exc:
    print("refused:", exc)
print(json.dumps(sorted({m.partition(".")[0] for m in sys.modules})))
"""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "2 (1, 3, 40, 40, 1)"
    assert lines[1] == "refused: the evaluator does without sklearn"
    loaded = set(json.loads(lines[2]))
    assert "keras" in loaded and "tensorflow" in loaded
    assert not loaded & UNUSED_PACKAGES
