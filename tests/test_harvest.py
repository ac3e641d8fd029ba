"""The kernel side of the harvest, run in this process on a small model: the early hand-out
saves a trained model once and leaves the notebook's random state alone; the last cell saves
again exactly what changed since."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from grader.kernel.harvest import harvest


def _notebook_namespace() -> dict:
    """What a notebook holds after one task: a builder, its trained model and the history."""
    import keras
    from keras import layers

    def build():
        model = keras.Sequential([keras.Input((8,)), layers.Dense(4, activation="relu"),
                                  layers.Dense(1, activation="sigmoid")])
        model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
        return model

    keras.utils.set_random_seed(0)
    model = build()
    x = np.random.rand(64, 8).astype("float32")
    history = model.fit(x, (x.sum(axis=1) > 4).astype("float32"), epochs=2, verbose=0)
    return {"_ex8_grader": {}, "build": build, "model": model, "history": history}


@pytest.fixture
def notebook(tmp_path):
    spec = {"out": str(tmp_path / "artifacts-test"), "movies_call": {},
            "tasks": [{"id": "t", "builder": "build", "model": "model", "history": "history"}]}
    return spec, _notebook_namespace()


def _random_state():
    from keras.src.random.seed_generator import global_seed_generator

    keras_state = np.asarray(global_seed_generator().state).tolist()  # made on first use
    return random.getstate(), np.random.get_state()[1].tolist(), keras_state


def _early(spec, namespace) -> list[str]:
    """The tasks the early hand-out saved (it answers in JSON, with their histories)."""
    return [item["id"] for item in json.loads(harvest(spec, namespace, checkpoint=True))]


def _final(spec, namespace) -> dict:
    harvest(spec, namespace)
    with open(f"{spec['out']}/harvest.json", encoding="utf-8") as fh:
        return json.load(fh)["tasks"]["t"]


def test_early_hand_out_saves_the_trained_model_once_and_draws_no_random_numbers(notebook):
    spec, namespace = notebook
    before = _random_state()
    answer = json.loads(harvest(spec, namespace, checkpoint=True))
    assert _random_state() == before
    assert [item["id"] for item in answer] == ["t"]
    assert answer[0]["history"] == {k: [float(v) for v in values] for k, values
                                    in namespace["history"].history.items()}
    assert _early(spec, namespace) == []  # once per task
    assert sorted(p.name for p in Path(spec["out"]).iterdir()) == ["t.trained.keras"]


def test_no_hand_out_before_the_history_exists(notebook):
    spec, namespace = notebook
    del namespace["history"]
    assert _early(spec, namespace) == []
    namespace["history"] = object()  # not a Keras history: handed out, with no curves to draw
    assert json.loads(harvest(spec, namespace, checkpoint=True)) == [{"id": "t", "history": None}]


def test_last_cell_keeps_an_unchanged_model_and_builds_the_builder(notebook):
    spec, namespace = notebook
    assert _early(spec, namespace) == ["t"]
    namespace["model"].predict(np.zeros((2, 8), "float32"), verbose=0)  # reading changes nothing
    entry = _final(spec, namespace)
    assert entry["model"] == {"status": "ok", "file": "t.trained.keras", "early": True}
    assert entry["builder"] == {"status": "ok", "file": "t.fresh.keras"}


@pytest.mark.parametrize("change", [
    lambda m: m.set_weights([np.zeros_like(w) for w in m.get_weights()]),
    lambda m: m.compile(loss="mse", optimizer="adam", metrics=["accuracy"]),
    lambda m: m.layers[0].set_weights([w + 1 for w in m.layers[0].get_weights()]),
], ids=["weights", "compile", "one_layer"])
def test_last_cell_saves_again_a_model_changed_since(notebook, change):
    spec, namespace = notebook
    assert _early(spec, namespace) == ["t"]
    change(namespace["model"])
    entry = _final(spec, namespace)
    assert entry["model"] == {"status": "ok", "file": "t.trained.keras"}
