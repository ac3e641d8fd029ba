"""What the evaluator says of a model: its layers and settings, parameters, output shape and
compile settings (``describe_model``), and whether two models have one architecture
(``architecture``, ``first_difference``). Plain data only: the checks read it."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["describe_model", "architecture", "first_difference", "without_names",
           "model_input_shape"]


_BUILD_SPECIFIC = {"name", "shared_object_id"}


def without_names(node: Any) -> Any:
    """A config without what differs between two builds of one architecture: the layers' names
    (``lstm``, ``lstm_1``) and the ids Keras gives shared objects (Python object ids)."""
    if isinstance(node, dict):
        return {k: without_names(v) for k, v in node.items() if k not in _BUILD_SPECIFIC}
    if isinstance(node, list):
        return [without_names(v) for v in node]
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
    names: dict[str, str] = {}
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
    return f"{trail or 'the model'}: {_shown(a)} vs {_shown(b)}"


def _shown(value: Any) -> str:
    return f"{len(value)} items" if isinstance(value, list) else json.dumps(value)[:60]


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


def model_input_shape(rubric, profile, task) -> tuple:
    """The input a task's model is built for, in ``profile``, when its builder left it unbuilt."""
    return (None, rubric.review_length(profile)) if task.kind == "imdb" \
        else (None, None, 40, 40, 1)


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
    try:  # what the model was built for: (None, 500) where a notebook wrote 500 by hand
        inputs = _shape(model.inputs[0].shape)
    except (AttributeError, IndexError, TypeError, ValueError):
        inputs = None
    return {"layers": layers, "params": int(model.count_params()), "output_shape": output_shape,
            "input_shape": inputs, "compile": _compile_settings(config.get("compile_config"))}


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
