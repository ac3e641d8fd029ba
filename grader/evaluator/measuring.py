"""The evaluator's work: each task's models measured, early or at the end, then written out.

Every model file is measured from a copy taken when its turn comes (``archive.snapshot``).
Before and after each model, a progress line on stdout (``PROGRESS``): the grader times every
model from these and names the one a memory or time limit stopped (``grader.measure``).
Output: ``evaluation.json`` (plain data for the checks, and for the report's comparison: a few
test reviews the models got wrong, decoded back to words) and ``predictions.npz`` (arrays for
the report's plots).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import quoted
from .archive import inspect_archive, load_inspected, model_failure, snapshot
from .data import EvalData, load_eval_data, misclassified_reviews, word_ranks
from .describe import (architecture, describe_model, first_difference, model_input_shape,
                       without_names)
from .metrics import imdb_metrics, movie_metrics

__all__ = ["Evaluator", "evaluate_artifacts", "PROGRESS", "BASELINE_SEED"]

_PREDICT_BATCH = 512
BASELINE_SEED = 1234  # the untrained clone's weights: the same for every submission
PROGRESS = "ex8-evaluator:"  # the lines that tell the grader which model is being measured


def _progress(event: str, task: str, role: str, what: str = "") -> None:
    """One line on stdout: the grader times each model's measurement from these, and names the
    one a memory or time limit stopped."""
    print(PROGRESS, json.dumps({"event": event, "task": task, "role": role, "what": what,
                                "time": time.time()}), flush=True)


def _movie_function(model, frame_shape: tuple[int, ...]):
    """The model as one traced function for any number of movies and frames: ``predict``
    traces again for every new length, and the exercise's test below has eight lengths."""
    import tensorflow as tf

    @tf.function(autograph=False, input_signature=[
        tf.TensorSpec([None, None, *frame_shape], tf.float32)])
    def run(movies):
        return model(movies, training=False)

    return lambda movies: np.asarray(run(np.asarray(movies, dtype=np.float32)))


def _predict_frames(predict, movie: np.ndarray, given: int = 7) -> np.ndarray:
    """The exercise's test: feed ``given`` frames, then predict one frame at a time."""
    track = movie[:given]
    for _ in range(len(movie) - given):
        new = predict(track[np.newaxis])
        track = np.concatenate((track, new[0, -1:]), axis=0)
    return track


class Evaluator:
    """Measures each task's models (``task``), early or at the end, then writes the results
    (``finish``). Every model file is measured from a copy taken when its turn comes."""

    def __init__(self, artifacts: Path, rubric, profile, out: Path, source=None,
                 data: EvalData | None = None, skip: dict[str, str] | None = None):
        self.artifacts, self.rubric, self.profile, self.out, self.source = \
            artifacts, rubric, profile, out, source
        self.data = data
        #: ``task.role`` -> why it is not measured (it exceeded a budget in an earlier run)
        self.skip = dict(skip or {})
        self.infos: dict[tuple[str, str], dict] = {}
        self.arrays: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        self.configs: dict[tuple[str, str], dict] = {}
        self._copies = out / "models"
        self._words: dict[int, str] | None = None

    def words(self) -> dict[int, str] | None:
        """The word index by rank, read once (None when the source has none)."""
        if self._words is None:
            self._words = word_ranks(self.source) or {}
        return self._words or None

    def _eval_data(self) -> EvalData:
        """The grader's reviews and movies, loaded when the first model needs them."""
        if self.data is None:
            self.data = load_eval_data(self.rubric, self.profile, self.source)
        return self.data

    def task(self, task_id: str, roles=("fresh", "trained"), early: bool = False) -> None:
        task = next((t for t in self.rubric.tasks if t.id == task_id), None)
        if task is None:
            return
        names = {role: f"{task.id}.{role}.keras" for role in roles}
        copies = {role: snapshot(self.artifacts, name, self._copies)
                  for role, name in names.items()}
        for role in sorted(roles, key=("trained", "fresh").index):  # a twin reuses the trained
            self.infos.pop((task.id, role), None)
            self.configs.pop((task.id, role), None)
            self.arrays.pop((task.id, role), None)
            copy = copies[role]
            if copy is None:
                continue
            info: dict[str, Any]
            arrays: dict[str, np.ndarray]
            if f"{task.id}.{role}" in self.skip:  # it exhausted a budget in an earlier run
                info, arrays = {"error": self.skip[f"{task.id}.{role}"]}, {}
            else:
                _progress("start", task.id, role, self._what(task, role))
                info, arrays = self._measure(task, role, copy, names[role],
                                             trained=copies.get("trained") is not None or
                                             (self.artifacts / f"{task.id}.trained.keras")
                                             .is_file())
                _progress("end", task.id, role)
            if early:
                info["early"] = True
            self.infos[(task.id, role)], self.arrays[(task.id, role)] = info, arrays

    def _what(self, task, role: str) -> str:
        """What measuring a model does, for a sentence about a budget it exceeded."""
        ev = self.profile.evaluation
        if task.kind == "imdb" and role == "trained":
            return f"predicting {ev['test_samples'] + ev['train_samples']:,} reviews"
        if task.kind == "movies" and role == "trained":
            return f"predicting {ev['movies']} movies of {ev['movie_frames']} frames"
        return "loading and describing it"

    def _measure(self, task, role: str, path: Path, name: str,
                 trained: bool) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        info: dict[str, Any] = {}
        arrays: dict[str, np.ndarray] = {}
        input_shape = model_input_shape(self.rubric, self.profile, task)
        started = time.perf_counter()
        try:
            config = inspect_archive(path)
            twin = self._twin(task, role, config)
            if twin is not None:  # nothing of it is predicted: its description is all we need
                info.update(twin, seconds=round(time.perf_counter() - started, 3))
                self.configs[(task.id, role)] = config
                return info, arrays
            model = load_inspected(path)
            info.update(describe_model(model, config, input_shape))
            self.configs[(task.id, role)] = config
        except Exception as exc:  # a broken file is the submission's problem, not ours
            info["error"] = model_failure(name, exc)
            return info, arrays
        data = self._eval_data()
        arrays.update(y_test=data.y_test, y_train=data.y_train)
        try:
            if task.kind == "imdb" and role == "trained":
                self._predict_reviews(task, model, info, arrays)
            elif task.kind == "movies" and (role == "trained" or not trained):
                # the builder's model is predicted only when there is no trained one: its
                # shape is the trained model's, and the untrained baseline is our own clone
                self._predict_movies(task, model, role, info, arrays)
        except Exception as exc:
            info["error"] = f"{name} loaded, but predicting failed " \
                            f"({type(exc).__name__}: {quoted(exc, 300)})."
        info["seconds"] = round(time.perf_counter() - started, 3)
        return info, arrays

    def _predict_reviews(self, task, model, info: dict, arrays: dict) -> None:
        data = self._eval_data()
        # one predict over test and train reviews: one pass, one traced function
        both = np.concatenate((data.x_test, data.x_train))
        prob = np.asarray(model.predict(both, batch_size=_PREDICT_BATCH, verbose=0),
                          dtype=np.float32).reshape(len(both), -1)[:, 0]
        test_prob, train_prob = prob[:len(data.x_test)], prob[len(data.x_test):]
        info["metrics"] = imdb_metrics(data.y_test, test_prob)
        info["metrics"]["held_out"] = True  # test reviews no notebook's data holds
        arrays[f"{task.id}_test_prob"] = test_prob
        arrays[f"{task.id}_train_prob"] = train_prob

    def _predict_movies(self, task, model, role: str, info: dict, arrays: dict) -> None:
        data = self._eval_data()
        predict = _movie_function(model, data.noisy.shape[2:])
        pred = np.concatenate([predict(data.noisy[i:i + 4])
                               for i in range(0, len(data.noisy), 4)])
        info["prediction_shape"] = list(np.shape(pred))
        info["input_shape"] = list(data.noisy.shape)
        if role != "trained" or np.shape(pred) != data.shifted.shape:
            return
        truth = data.shifted
        info["metrics"] = {**movie_metrics(truth, pred),
                           "untrained_loss": self._untrained_loss(model)}
        arrays[f"{task.id}_track"] = _predict_frames(predict, data.noisy[-1])
        # the true frames without noise, as the exercise's last cell shows them: frame t of a
        # movie is frame t-1 of its shifted copy
        arrays[f"{task.id}_truth"] = np.concatenate((data.noisy[-1][:1],
                                                     data.shifted[-1][:-1]))

    def _untrained_loss(self, model) -> float:
        """The loss on our movies of the same architecture untrained: a clone of the model with
        weights drawn afresh by its own initializers, from a fixed seed (nothing the kernel
        computed: its builder's model could carry any weights)."""
        import keras

        keras.utils.set_random_seed(BASELINE_SEED)
        clone = keras.models.clone_model(model)
        data = self._eval_data()
        predict = _movie_function(clone, data.noisy.shape[2:])
        pred = np.concatenate([predict(data.noisy[i:i + 4])
                               for i in range(0, len(data.noisy), 4)])
        return movie_metrics(data.shifted, pred)["loss"]

    def _twin(self, task, role: str, config: dict) -> dict | None:
        """The builder's model described without loading it, when its config is the trained
        model's but for the layers' names: the description depends on the config alone."""
        trained = self.infos.get((task.id, "trained"))
        if role != "fresh" or not trained or "layers" not in trained or \
                without_names(config) != without_names(self.configs.get((task.id, "trained"))):
            return None
        keys = ("layers", "params", "output_shape", "input_shape", "compile")
        return {**json.loads(json.dumps({k: trained.get(k) for k in keys})),
                "same_as_trained": True}

    def finish(self, keep: dict[str, list[str]] | None = None) -> dict:
        """Measure what was not measured early, or changed since (every role of every task
        except those ``keep`` names), and write evaluation.json and predictions.npz."""
        keep = keep or {}
        for task in self.rubric.tasks:
            kept = [r for r in keep.get(task.id, ()) if (task.id, r) in self.infos]
            redo = tuple(r for r in ("fresh", "trained") if r not in kept)
            if redo:
                self.task(task.id, redo)
        result: dict[str, Any] = {"tasks": {}}
        arrays: dict[str, np.ndarray] = {}
        for task in self.rubric.tasks:
            entry: dict[str, Any] = {"kind": task.kind}
            for role in ("fresh", "trained"):
                if (task.id, role) in self.infos:
                    entry[role] = self.infos[(task.id, role)]
                    arrays.update(self.arrays[(task.id, role)])
            configs = [self.configs.get((task.id, role)) for role in ("trained", "fresh")]
            if all(configs):  # is the measured model the builder's architecture?
                difference = first_difference(*map(architecture, configs))
                entry["same_architecture"] = difference is None
                if difference:
                    entry["architecture_difference"] = difference
            result["tasks"][task.id] = entry
        probs = {t.id: arrays[f"{t.id}_test_prob"] for t in self.rubric.tasks
                 if f"{t.id}_test_prob" in arrays}
        if probs:  # a model was predicted: the data is loaded
            data = self._eval_data()
            result["reviews"] = misclassified_reviews(data.x_test, data.y_test, probs,
                                                      self.words())
        import keras

        result["versions"] = {"keras": keras.__version__, "backend": keras.backend.backend()}
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "evaluation.json").write_text(json.dumps(result, indent=1))
        np.savez_compressed(self.out / "predictions.npz", allow_pickle=False, **arrays)
        shutil.rmtree(self._copies, ignore_errors=True)
        return result


def evaluate_artifacts(artifacts: Path, rubric, profile, out: Path, source=None,
                       data: EvalData | None = None, skip: dict[str, str] | None = None) -> dict:
    """Describe and measure every task's models; write evaluation.json and predictions.npz.

    ``data`` is the grader's data when it was loaded ahead (see ``main``'s ``--wait``);
    ``skip`` (``{"task.role": why}``) the models not to measure again, and why.
    """
    return Evaluator(artifacts, rubric, profile, out, source, data, skip).finish()

