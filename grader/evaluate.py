"""Trusted side: load the models a kernel produced, safely, and measure them on our own data.

Runs as its own process (``python -m grader.evaluate``), so TensorFlow never loads into the
grader's main process and a model that exhausts memory takes only this process down. Nothing
the submission printed or computed is used: accuracy comes from one batched ``predict`` on the
grader's own test subset, the bonus from movies the grader generates itself.

With ``--wait`` it starts beside the kernel and measures each task's models as soon as the
kernel hands them out (see ``grader.harvest``), then the rest when the notebook has finished.

Output: ``evaluation.json`` (plain data for the checks, and for the report's comparison: a few
test reviews the models got wrong, decoded back to words) and ``predictions.npz`` (arrays for
the report's plots) in the output folder.
"""

from __future__ import annotations

import argparse
import importlib.abc
import json
import os
import re
import shutil
import stat
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["inspect_archive", "describe_model", "imdb_metrics", "movie_metrics",
           "load_eval_data", "evaluate_artifacts", "Evaluator", "misclassified_reviews",
           "decode_review", "UnsafeModelError", "MAX_MODEL_BYTES", "refuse_unused_packages",
           "reference_generate_movies", "architecture", "first_difference", "PROGRESS"]

MAX_MODEL_BYTES = 64 << 20
MAX_CONFIG_BYTES = 4 << 20
_ALLOWED_MEMBERS = {"metadata.json", "config.json", "model.weights.h5"}
_FORBIDDEN_CLASSES = {"Lambda", "TFSMLayer", "__lambda__", "function"}
_KERAS_MODULE = re.compile(r"keras(\.[A-Za-z_][A-Za-z0-9_]*)*")
_PREDICT_BATCH = 512
_BASELINE_SEED = 1234  # the untrained clone's weights: the same for every submission
PROGRESS = "ex8-evaluator:"  # the lines that tell the grader which model is being measured


class UnsafeModelError(Exception):
    """A harvested model file is refused before Keras sees it."""


# --------------------------------------------------------------------------- safe loading


def _keras_function(node: dict) -> bool:
    """How Keras 3 writes one of its own functions given by object (``loss=keras.losses.
    binary_crossentropy``): a name it looks up among its built-ins, never code."""
    return node.get("class_name") == "function" and isinstance(node.get("config"), str) and \
        node.get("registered_name") in (None, "function") and \
        (node.get("module") == "builtins" or _KERAS_MODULE.fullmatch(str(node.get("module"))))


def _walk_config(node: Any, trail: str = "model") -> None:
    if isinstance(node, dict):
        cls = node.get("class_name")
        if isinstance(cls, str) and not _keras_function(node):
            if cls in _FORBIDDEN_CLASSES:
                raise UnsafeModelError(f"it contains a {cls} layer or object ({trail}), which "
                                       "can run arbitrary code; build the model from Keras layers")
            module = node.get("module")
            if module is not None and not _KERAS_MODULE.fullmatch(str(module)):
                raise UnsafeModelError(f"it refers to {module}.{cls} ({trail}); only Keras' own "
                                       "layers, losses and optimizers are accepted")
            registered = node.get("registered_name")
            if registered not in (None, cls):  # "package>Name": registered by other code
                raise UnsafeModelError(f"it needs the custom object {registered!r} ({trail})")
            trail = f"{trail} > {cls}"
        for value in node.values():
            _walk_config(value, trail)
    elif isinstance(node, list):
        for value in node:
            _walk_config(value, trail)


def inspect_archive(path: Path) -> dict:
    """Check a ``.keras`` archive's size, members and config before any Keras code reads it."""
    if path.is_symlink() or not path.is_file():
        raise UnsafeModelError("it is not a regular file")
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise UnsafeModelError(f"it is {size / 2**20:.0f} MB, more than the "
                               f"{MAX_MODEL_BYTES >> 20} MB allowed")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = {i.filename for i in infos}
            extra = names - _ALLOWED_MEMBERS
            if len(names) < len(infos):  # two members of one name: which one is read?
                raise UnsafeModelError("it holds two archive members of the same name")
            if extra or "config.json" not in names:
                raise UnsafeModelError("it is not a Keras 3 .keras archive (members: "
                                       f"{', '.join(sorted(names)[:5])})")
            if sum(i.file_size for i in infos) > 4 * MAX_MODEL_BYTES:
                raise UnsafeModelError("it unpacks to more than allowed")
            info = archive.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise UnsafeModelError("its config.json is too large")
            config = json.loads(archive.read(info))
    except zipfile.BadZipFile as exc:
        raise UnsafeModelError("it is not a zip archive (only the Keras 3 .keras format is "
                               "accepted)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnsafeModelError("its config.json is not valid JSON") from exc
    except RecursionError as exc:
        raise UnsafeModelError("its config.json is nested too deeply") from exc
    try:
        _walk_config(config)
    except RecursionError as exc:
        raise UnsafeModelError("its config.json is nested too deeply") from exc
    return config


def _load_inspected(path: Path):
    """``load_model(safe_mode=True, compile=False)`` of a file ``inspect_archive`` passed."""
    import keras

    return keras.saving.load_model(path, safe_mode=True, compile=False)


_BUILD_SPECIFIC = {"name", "shared_object_id"}


def _without_names(node: Any) -> Any:
    """A config without what differs between two builds of one architecture: the layers' names
    (``lstm``, ``lstm_1``) and the ids Keras gives shared objects (Python object ids)."""
    if isinstance(node, dict):
        return {k: _without_names(v) for k, v in node.items() if k not in _BUILD_SPECIFIC}
    if isinstance(node, list):
        return [_without_names(v) for v in node]
    return node


_NOT_ARCHITECTURE = {"build_input_shape", "build_config", "compile_config", "trainable"}


def architecture(config: Any) -> Any:
    """What two builds of one architecture share: the model's class and its layers' configs,
    with the layers' names (``lstm``, ``lstm_1``) and every reference to them replaced by their
    position, and without what a build or a training run adds (build shapes, compile settings)."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        return None
    inner = config["config"]
    layers = inner.get("layers") if isinstance(inner.get("layers"), list) else []
    names = {}
    for i, layer in enumerate(layers):
        name = layer.get("name") or (layer.get("config") or {}).get("name") \
            if isinstance(layer, dict) else None
        if isinstance(name, str):
            names.setdefault(name, f"#{i}")

    def canon(node):
        if isinstance(node, dict):
            return {k: canon(v) for k, v in node.items()
                    if k not in _BUILD_SPECIFIC and k not in _NOT_ARCHITECTURE}
        if isinstance(node, list):
            return [canon(v) for v in node]
        return names.get(node, node) if isinstance(node, str) else node

    rest = {k: v for k, v in inner.items() if k != "layers"}
    return {"class": config.get("class_name"), "layers": canon(layers), "model": canon(rest)}


def first_difference(a: Any, b: Any, trail: str = "") -> str | None:
    """Where two plain-data trees first differ, as ``path: a vs b`` (None: they are equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            found = first_difference(a.get(key), b.get(key), f"{trail}.{key}" if trail else key)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{trail}[{i}]")
            if found:
                return found
        return None
    if a == b:
        return None
    show = (lambda v: json.dumps(v)[:60] if not isinstance(v, list) else f"{len(v)} items")
    return f"{trail or 'the model'}: {show(a)} vs {show(b)}"


# --------------------------------------------------------------------------- describing


_SETTINGS = ("units", "rate", "dropout", "recurrent_dropout", "filters", "kernel_size",
             "pool_size", "strides", "padding", "activation", "recurrent_activation",
             "return_sequences", "input_dim", "output_dim", "data_format", "use_bias")


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        # serialized objects (an activation given as a function, an initializer): their name
        return value.get("class_name") or value.get("config", {}).get("name") \
            if isinstance(value.get("config"), dict) else value.get("class_name")
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


def _flat_layers(model):
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model) and hasattr(layer, "layers"):
            yield from _flat_layers(layer)
        else:
            yield layer


def _shape(shape) -> list | None:
    try:
        return [None if d is None else int(d) for d in shape]
    except TypeError:
        return None


def describe_model(model, config: dict, input_shape: tuple) -> dict:
    """Layers with their settings, parameter count, output shape and compile settings."""
    if not model.built:
        # Keras 2 code (Embedding(input_length=...)) gives an unbuilt Sequential: build it with
        # the exercise's input so its structure can still be checked.
        model.build(input_shape)
    layers = []
    for layer in _flat_layers(model):
        if type(layer).__name__ == "InputLayer":
            continue
        cfg = layer.get_config()
        try:
            out = _shape(layer.output.shape)
        except (AttributeError, ValueError):
            out = None
        layers.append({"class": type(layer).__name__, "name": layer.name,
                       "settings": {k: _plain(cfg[k]) for k in _SETTINGS if k in cfg},
                       "params": int(layer.count_params()), "output_shape": out})
    try:
        output_shape = _shape(model.outputs[0].shape)
    except (AttributeError, IndexError, TypeError, ValueError):
        output_shape = _shape(model.compute_output_shape(input_shape))
    return {"layers": layers, "params": int(model.count_params()), "output_shape": output_shape,
            "compile": _compile_settings(config.get("compile_config"))}


def _compile_settings(cfg) -> dict | None:
    if not isinstance(cfg, dict):
        return None

    def name(obj):
        if isinstance(obj, dict) and "class_name" not in obj:  # {output name: metrics}
            return [n for v in obj.values() for n in _listed(name(v))]
        if isinstance(obj, dict):
            if obj.get("class_name") == "function":  # keras.losses.binary_crossentropy
                return obj.get("config") if isinstance(obj.get("config"), str) else None
            config = obj.get("config")
            return obj.get("class_name") or (config.get("name") if isinstance(config, dict)
                                             else None)
        if isinstance(obj, (list, tuple)):
            return [n for o in obj for n in _listed(name(o))]
        return obj

    optimizer = cfg.get("optimizer")
    lr = None
    if isinstance(optimizer, dict) and isinstance(optimizer.get("config"), dict):
        lr = optimizer["config"].get("learning_rate")
        lr = lr if isinstance(lr, (int, float)) else None
    loss = name(cfg.get("loss"))
    return {"loss": loss[0] if isinstance(loss, list) and len(loss) == 1 else loss,
            "optimizer": name(optimizer), "learning_rate": lr,
            "metrics": [m for m in _listed(name(cfg.get("metrics") or [])) if m is not None]}


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------- measuring


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


def _progress(event: str, task: str, role: str, what: str = "") -> None:
    """One line on stdout: the grader times each model's measurement from these, and names the
    one a memory or time limit stopped."""
    print(PROGRESS, json.dumps({"event": event, "task": task, "role": role, "what": what,
                                "time": time.time()}), flush=True)


def reference_generate_movies():
    """The reference's ``generate_movies``, taken out of ``reference/solution.py`` alone.

    Importing the module would also import what its other cells use (matplotlib,
    scikit-learn), which the evaluator does without (``UNUSED_PACKAGES``); the function itself
    needs NumPy only.
    """
    import ast
    import importlib.util

    path = Path(importlib.util.find_spec("reference.solution").origin)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = [node for node in tree.body
             if isinstance(node, ast.FunctionDef) and node.name == "generate_movies"]
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
    from .data import load_held_out, load_imdb_subsets

    ev, data = profile.evaluation, rubric.data
    seed = data.get("seed", 113)
    x_test, y_test = load_held_out(data["top_words"], data["max_review_length"],
                                   ev["test_samples"], count=rubric.held_out["reviews"],
                                   seed=rubric.held_out["seed"], source=source)
    x_train, y_train = load_imdb_subsets(data["top_words"], data["max_review_length"],
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


def _word_ranks(source) -> dict[int, str] | None:
    from .data import get_word_index
    from .errors import DataSourceError

    try:
        return {rank: word for word, rank in get_word_index(source).items()}
    except DataSourceError:  # an imdb.npz without its word index: reviews stay numbers
        return None


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


def _snapshot(artifacts: Path, name: str, into: Path) -> Path | None:
    """Copy ``artifacts/name`` into the evaluator's own folder and return the copy: the kernel
    may still be running and rewrite its files, so what is inspected is what is loaded. Links
    (the folder or the file) are not followed; None if there is no regular file."""
    try:
        folder = os.open(artifacts, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    except FileNotFoundError:
        return None
    except OSError:  # a link, say: the loader refuses it with its own sentence
        return artifacts / name
    finally:
        os.close(folder)
    with os.fdopen(fd, "rb") as src:
        st = os.fstat(src.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_MODEL_BYTES:
            return artifacts / name  # refused by the loader, which says why
        into.mkdir(parents=True, exist_ok=True)
        copy = into / name
        with open(copy, "wb") as dst:
            dst.write(src.read(MAX_MODEL_BYTES + 1))  # more than allowed: refused as too large
    return copy


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
            self._words = _word_ranks(self.source) or {}
        return self._words or None

    def task(self, task_id: str, roles=("fresh", "trained"), early: bool = False) -> None:
        task = next((t for t in self.rubric.tasks if t.id == task_id), None)
        if task is None:
            return
        names = {role: f"{task.id}.{role}.keras" for role in roles}
        copies = {role: _snapshot(self.artifacts, name, self._copies)
                  for role, name in names.items()}
        for role in sorted(roles, key=("trained", "fresh").index):  # a twin reuses the trained
            self.infos.pop((task.id, role), None)
            self.configs.pop((task.id, role), None)
            self.arrays.pop((task.id, role), None)
            if copies[role] is None:
                continue
            if f"{task.id}.{role}" in self.skip:  # it exhausted a budget in an earlier run
                info, arrays = {"error": self.skip[f"{task.id}.{role}"]}, {}
            else:
                _progress("start", task.id, role, self._what(task, role))
                info, arrays = self._measure(task, role, copies[role], names[role],
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

    def _measure(self, task, role: str, path: Path, name: str, trained: bool):
        info: dict[str, Any] = {}
        arrays: dict[str, np.ndarray] = {}
        input_shape = (None, self.rubric.data["max_review_length"]) if task.kind == "imdb" \
            else (None, None, 40, 40, 1)
        started = time.perf_counter()
        try:
            config = inspect_archive(path)
            twin = self._twin(task, role, config)
            if twin is not None:  # nothing of it is predicted: its description is all we need
                info.update(twin, seconds=round(time.perf_counter() - started, 3))
                self.configs[(task.id, role)] = config
                return info, arrays
            model = _load_inspected(path)
            info.update(describe_model(model, config, input_shape))
            self.configs[(task.id, role)] = config
        except UnsafeModelError as exc:
            info["error"] = f"{name} was refused: {exc}."
            return info, arrays
        except Exception as exc:  # a broken file is the submission's problem, not ours
            info["error"] = f"{name} could not be loaded ({type(exc).__name__}: " \
                            f"{str(exc)[:300]})."
            return info, arrays
        if self.data is None:
            self.data = load_eval_data(self.rubric, self.profile, self.source)
        arrays.update(y_test=self.data.y_test, y_train=self.data.y_train)
        try:
            if task.kind == "imdb" and role == "trained":
                self._predict_reviews(task, model, info, arrays)
            elif task.kind == "movies" and (role == "trained" or not trained):
                # the builder's model is predicted only when there is no trained one: its
                # shape is the trained model's, and the untrained baseline is our own clone
                self._predict_movies(model, role, info, arrays)
        except Exception as exc:
            info["error"] = f"{name} loaded, but predicting failed " \
                            f"({type(exc).__name__}: {str(exc)[:300]})."
        info["seconds"] = round(time.perf_counter() - started, 3)
        return info, arrays

    def _predict_reviews(self, task, model, info: dict, arrays: dict) -> None:
        data = self.data
        # one predict over test and train reviews: one pass, one traced function
        both = np.concatenate((data.x_test, data.x_train))
        prob = np.asarray(model.predict(both, batch_size=_PREDICT_BATCH, verbose=0),
                          dtype=np.float32).reshape(len(both), -1)[:, 0]
        test_prob, train_prob = prob[:len(data.x_test)], prob[len(data.x_test):]
        info["metrics"] = imdb_metrics(data.y_test, test_prob)
        info["metrics"]["held_out"] = True  # test reviews no notebook's data holds
        arrays[f"{task.id}_test_prob"] = test_prob
        arrays[f"{task.id}_train_prob"] = train_prob

    def _predict_movies(self, model, role: str, info: dict, arrays: dict) -> None:
        data = self.data
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
        arrays["bonus_track"] = _predict_frames(predict, data.noisy[-1])
        # the true frames without noise, as the exercise's last cell shows them: frame t of a
        # movie is frame t-1 of its shifted copy
        arrays["bonus_truth"] = np.concatenate((data.noisy[-1][:1], data.shifted[-1][:-1]))

    def _untrained_loss(self, model) -> float:
        """The loss on our movies of the same architecture untrained: a clone of the model with
        weights drawn afresh by its own initializers, from a fixed seed (nothing the kernel
        computed: its builder's model could carry any weights)."""
        import keras

        keras.utils.set_random_seed(_BASELINE_SEED)
        clone = keras.models.clone_model(model)
        predict = _movie_function(clone, self.data.noisy.shape[2:])
        pred = np.concatenate([predict(self.data.noisy[i:i + 4])
                               for i in range(0, len(self.data.noisy), 4)])
        return movie_metrics(self.data.shifted, pred)["loss"]

    def _twin(self, task, role: str, config: dict) -> dict | None:
        """The builder's model described without loading it, when its config is the trained
        model's but for the layers' names: the description depends on the config alone."""
        trained = self.infos.get((task.id, "trained"))
        if role != "fresh" or not trained or "layers" not in trained or \
                _without_names(config) != _without_names(self.configs.get((task.id, "trained"))):
            return None
        keys = ("layers", "params", "output_shape", "compile")
        return {**json.loads(json.dumps({k: trained[k] for k in keys})), "same_as_trained": True}

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
        if probs:
            result["reviews"] = misclassified_reviews(self.data.x_test, self.data.y_test, probs,
                                                      self.words())
        import keras

        result["versions"] = {"keras": keras.__version__, "backend": keras.backend.backend()}
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "evaluation.json").write_text(json.dumps(result, indent=1))
        np.savez_compressed(self.out / "predictions.npz", **arrays)
        shutil.rmtree(self._copies, ignore_errors=True)
        return result


def evaluate_artifacts(artifacts: Path, rubric, profile, out: Path, source=None,
                       data: EvalData | None = None, skip: dict[str, str] | None = None) -> dict:
    """Describe and measure every task's models; write evaluation.json and predictions.npz.

    ``data`` is the grader's data when it was loaded ahead (see ``main``'s ``--wait``);
    ``skip`` (``{"task.role": why}``) the models not to measure again, and why.
    """
    return Evaluator(artifacts, rubric, profile, out, source, data, skip).finish()


#: packages Keras and TensorFlow import whenever they are installed, for what this process never
#: does (plots, pandas and SciPy inputs, scikit-learn wrappers, notebook detection); each of
#: those imports is guarded, so they go on without them. Refused here, the evaluator's start-up
#: takes a third less CPU (median of 5: 3.6 s instead of 5.8 s with ``sklearn.metrics``), on the
#: cores a batch's kernels share (BENCHMARKS.md).
UNUSED_PACKAGES = frozenset({"IPython", "matplotlib", "mpl_toolkits", "pandas", "scipy",
                             "sklearn"})


class _RefuseUnused(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in UNUSED_PACKAGES:
            raise ModuleNotFoundError(f"the evaluator does without {name}", name=name)
        return None


def refuse_unused_packages() -> None:
    """In this process, importing any of ``UNUSED_PACKAGES`` fails as if it were not installed.

    For the evaluator's own process only: the grader's process draws with matplotlib.
    """
    if not any(isinstance(f, _RefuseUnused) for f in sys.meta_path):
        sys.meta_path.insert(0, _RefuseUnused())


def main(argv: list[str] | None = None) -> int:
    refuse_unused_packages()
    parser = argparse.ArgumentParser(prog="python -m grader.evaluate",
                                     description="Measure harvested models (trusted side).")
    parser.add_argument("artifacts", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rubric", type=Path)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--data")
    parser.add_argument("--skip", type=json.loads, default={},
                        help='JSON {"task.role": why}: models not to measure (they exceeded a '
                             'budget in an earlier run); their entry is an error saying why')
    parser.add_argument("--wait", action="store_true",
                        help="load TensorFlow and the data first, then wait for a line 'go' on "
                             "stdin (anything else: exit without evaluating)")
    args = parser.parse_args(argv)

    from .quiet import quiet_tensorflow
    from .rubric import load_rubric

    quiet_tensorflow()
    rubric = load_rubric(args.rubric)
    profile = rubric.profile(args.profile)
    # TensorFlow and the data first: no model's time budget (``grader.measure``) pays for them
    import keras  # noqa: F401

    evaluator = Evaluator(args.artifacts, rubric, profile, args.out, source=args.data,
                          data=load_eval_data(rubric, profile, args.data), skip=args.skip)
    evaluator.words()  # for the misclassified reviews, read now rather than at the end
    if not args.wait:
        evaluator.finish()
        return 0
    # Started beside the kernel: the import and the data cost nothing on the clock then, and
    # each task's trained model is measured as soon as the kernel hands it out ("task ID"). "go"
    # and a JSON object {task: [roles]} end it: the roles named were not saved again, so their
    # early measurement stands; everything else is measured now.
    for line in sys.stdin:
        word, _, rest = line.strip().partition(" ")
        if word == "task":  # the trained model: builders are called in the last cell only
            evaluator.task(rest, ("trained",), early=True)
        elif word == "go":
            evaluator.finish(json.loads(rest) if rest else None)
            # Its files are written and closed: skip TensorFlow's teardown at exit, which took
            # 1.3 s after a predict (measured here), all of it on the grader's clock.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        else:
            break
    return 0  # no "go": not needed after all


if __name__ == "__main__":
    sys.exit(main())
