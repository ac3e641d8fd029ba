"""Structural checks: the builder, the layer sequence and settings, parameters, shapes, compile."""

from __future__ import annotations

import re
from typing import Any, Mapping

from .base import Outcome, TaskContext, fmt_int, sentence

__all__ = ["check_builder", "check_layers", "check_param_count", "check_output_shape",
           "check_compile", "validate_layer_spec", "describe_expected", "describe_found",
           "align_layers", "layer_differences", "canonical_name"]

_CONDITIONS = {"gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
               "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
               "in": lambda a, b: a in b}
_COND_TEXT = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "in": " in "}
#: settings shown without a name, in this order: LSTM(128), Conv1D(32, 3), Embedding(5000, 32)
_POSITIONAL = ("input_dim", "output_dim", "units", "filters", "kernel_size", "pool_size", "rate")
_SETTINGS = {"units", "rate", "dropout", "recurrent_dropout", "filters", "kernel_size",
             "pool_size", "strides", "padding", "activation", "recurrent_activation",
             "return_sequences", "input_dim", "output_dim", "data_format", "use_bias"}


# --------------------------------------------------------------------------- the spec


def validate_layer_spec(value) -> str | None:
    if not isinstance(value, list) or not value:
        return "must be a non-empty list of layers"
    for i, item in enumerate(value, 1):
        if not isinstance(item, Mapping) or "class" not in item:
            return f"item {i} must be a mapping with a 'class'"
        if not isinstance(item["class"], (str, list)):
            return f"item {i}: 'class' must be a layer class name or a list of them"
        for key, cond in item.items():
            if key in ("class", "optional"):
                continue
            if key not in _SETTINGS:
                return f"item {i}: unknown layer setting {key!r}"
            if isinstance(cond, Mapping):
                bad = set(cond) - set(_CONDITIONS)
                if bad or not cond:
                    return f"item {i}: setting {key!r} has unknown conditions {sorted(bad)}"
    return None


def _classes(item) -> list[str]:
    return [item["class"]] if isinstance(item["class"], str) else list(item["class"])


def _norm(value):
    """Compare 3 with [3] (a Conv1D kernel_size), and tuples with lists."""
    if isinstance(value, (list, tuple)):
        return value[0] if len(value) == 1 else list(value)
    return value


def _matches(cond, actual) -> bool:
    actual = _norm(actual)
    if isinstance(cond, Mapping):
        try:
            return actual is not None and all(_CONDITIONS[op](actual, ref)
                                              for op, ref in cond.items())
        except TypeError:
            return False
    return actual == _norm(cond)


def _fmt_value(v) -> str:
    v = _norm(v)
    if isinstance(v, list):
        return "x".join(str(x) for x in v)
    if isinstance(v, bool) or v is None:
        return str(v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def _fmt_cond(key, cond) -> str:
    if isinstance(cond, Mapping):
        return " and ".join(f"{key}{_COND_TEXT[op]}{_fmt_value(ref)}" for op, ref in cond.items())
    return _fmt_value(cond) if key in _POSITIONAL else f"{key}={_fmt_value(cond)}"


def _ordered(keys):
    return sorted(keys, key=lambda k: (_POSITIONAL.index(k) if k in _POSITIONAL else 99, k))


def describe_expected(item) -> str:
    keys = _ordered(k for k in item if k not in ("class", "optional"))
    args = ", ".join(_fmt_cond(k, item[k]) for k in keys)
    return f"{' or '.join(_classes(item))}({args})" if args else " or ".join(_classes(item))


def describe_found(layer: Mapping, keys=None) -> str:
    settings = layer.get("settings", {})
    if keys is None:
        keys = [k for k in _POSITIONAL if k in settings][:2]
        if "activation" in settings and settings["activation"] not in ("linear", "tanh", None):
            keys.append("activation")
    keys = [k for k in _ordered(keys) if k in settings]
    args = ", ".join(_fmt_value(settings[k]) if k in _POSITIONAL else
                     f"{k}={_fmt_value(settings[k])}" for k in keys)
    return f"{layer['class']}({args})" if args else layer["class"]


# --------------------------------------------------------------------------- the checks


def check_builder(ctx: TaskContext, spec) -> Outcome:
    b = ctx.harvest.get("builder", {})
    name = ctx.task.builder
    status = b.get("status")
    key, todo = ctx.builder_cause() or ("builder_missing", f"Write {name}(): it is not defined.")
    if status == "ok":
        fresh = ctx.evaluation.get("fresh", {})
        if "error" in fresh:  # builder_cause says why: the grader could not check the model
            return Outcome(False, sentence(f"{ctx.label}: {name}() returns a model, but "
                                           f"{fresh['error']}"), cause=key, todo=todo)
        if fresh and fresh.get("compile") is None:
            return Outcome(False, f"{ctx.label}: {name}() returns a model that is not compiled.",
                           hint="Call model.compile(loss=..., optimizer=..., metrics=[...]) "
                                "inside the builder and return the compiled model.",
                           cause="builder_not_compiled",
                           todo=f"Compile the model in {name}() before returning it.")
        length = _fixed_length(ctx, fresh)
        if length is not None:
            want = ctx.rubric.review_length(ctx.profile)
            return Outcome(False, f"{ctx.label}: {name}() builds a model for reviews of "
                                  f"{length} words, but MAX_REVIEW_LENGTH is {want} in the "
                                  f"{ctx.profile.name} profile, so it cannot be trained or "
                                  "measured on its reviews.",
                           hint="Write keras.Input(shape=(MAX_REVIEW_LENGTH,)) instead of "
                                f"the number {length}: the grader's profiles set "
                                "MAX_REVIEW_LENGTH.",
                           cause="builder_review_length",
                           todo=f"Use MAX_REVIEW_LENGTH in {name}() instead of {length}.")
        return Outcome(True, f"{ctx.label}: {name}() returns a compiled Keras model.")
    if status == "error":
        error = str(b.get("error"))
        hint = f"Replace the template's `raise NotImplementedError()` in {name}() with your " \
               "model." if error.startswith("NotImplementedError") else \
               "The builder takes no arguments and returns the compiled model."
        return Outcome(False, sentence(f"{ctx.label}: calling {name}() raised {error}"),
                       hint=hint, cause=key, todo=todo)
    if status == "not_a_model":
        return Outcome(False, f"{ctx.label}: {name}() returned {b.get('type')}, not a Keras "
                              "model.", hint="End the builder with `return model`.", cause=key,
                       todo=todo)
    if ctx.not_run:
        return Outcome(False, sentence(f"{ctx.label}: {name}() could not be looked for: "
                                       f"{ctx.not_run}"), cause=key, todo=todo)
    failed = ctx.failed_before(name)
    if failed:
        return Outcome(False, f"{ctx.label}: {name}() is not defined: {failed}.",
                       hint="Fix that error first: the rest of the cell did not run.",
                       cause=key, todo=todo)
    return Outcome(False, f"{ctx.label}: {name}() is not defined. " + _found_instead(ctx),
                   hint=f"Keep the name {name}: the grader calls it.", cause=key, todo=todo)


def _fixed_length(ctx: TaskContext, fresh) -> int | None:
    """The review length an IMDB model was built for, when it is not the profile's (a number
    written by hand where the template says MAX_REVIEW_LENGTH); None when it fits."""
    shape = (fresh or {}).get("input_shape")
    if ctx.task.kind != "imdb" or not isinstance(shape, list) or len(shape) != 2:
        return None
    length = shape[1]
    want = ctx.rubric.review_length(ctx.profile)
    return length if isinstance(length, int) and length != want else None


def _found_instead(ctx: TaskContext) -> str:
    """Name what the namespace holds instead, and which task each model resembles."""
    functions = [f for f in ctx.namespace.get("functions", []) if f.startswith("build")]
    builders = {t.builder for t in ctx.rubric.tasks}
    functions = [f for f in functions if f not in builders]
    parts = []
    if functions:
        parts.append("functions " + ", ".join(f"{f}()" for f in functions[:5]))
    models = []
    for m in ctx.namespace.get("models", [])[:6]:
        like = _resembles(ctx, m)
        models.append(f"{m['name']} ({fmt_int(m.get('params'))} parameters"
                      + (f", like {like}" if like else "") + ")")
    if models:
        parts.append("Keras models " + ", ".join(models))
    return ("Found instead: " + "; ".join(parts) + ".") if parts else \
        "No other builder function or Keras model was found either."


def _resembles(ctx: TaskContext, model: Mapping) -> str | None:
    names = []
    classes = set(model.get("layers", []))
    for task in ctx.rubric.tasks:
        expected = [c.options.get("expect") for c in task.checks if c.check == "param_count"]
        layer_spec = next((c.options.get("expect") for c in task.checks if c.check == "layers"),
                          None)
        needed = {_classes(i)[0] for i in layer_spec or [] if not i.get("optional")}
        if model.get("params") in expected or (needed and needed <= classes and
                                                 len(needed) >= 3):
            names.append(task.title.split(":")[0])
    return " or ".join(names) or None


def align_layers(expected, layers) -> list[tuple[Mapping | None, Mapping | None]]:
    """Pair the rubric's layers with the model's, fewest differences first (an edit distance:
    a layer of the wrong class, a missing one and an extra one each cost one; a missing
    optional layer costs nothing). Returns ``(expected item or None, layer or None)`` pairs in
    order: None on the left is an extra layer, None on the right a missing one."""
    n, m = len(expected), len(layers)
    cost = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        cost[i][m] = cost[i + 1][m] + (0 if expected[i].get("optional") else 1)
    for j in range(m - 1, -1, -1):
        cost[n][j] = cost[n][j + 1] + 1
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            same = layers[j]["class"] in _classes(expected[i])
            # a matching class is preferred to skipping; settings are compared afterwards
            cost[i][j] = min(cost[i + 1][j + 1] + (0 if same else 1),
                             cost[i + 1][j] + (0 if expected[i].get("optional") else 1),
                             cost[i][j + 1] + 1)
    pairs, i, j = [], 0, 0
    while i < n or j < m:
        if i < n and j < m:
            same = layers[j]["class"] in _classes(expected[i])
            if cost[i][j] == cost[i + 1][j + 1] + (0 if same else 1):
                pairs.append((expected[i], layers[j]))
                i, j = i + 1, j + 1
                continue
        if i < n and cost[i][j] == cost[i + 1][j] + (0 if expected[i].get("optional") else 1):
            pairs.append((expected[i], None))
            i += 1
        else:
            pairs.append((None, layers[j]))
            j += 1
    return pairs


def _setting_keys(item) -> list[str]:
    return [k for k in item if k not in ("class", "optional")]


def layer_differences(expected, layers) -> tuple[list[str], list[str]]:
    """Every difference between the rubric's layers and the model's, in words, and the model's
    layers as checked (with the settings the rubric names)."""
    problems, checked = [], []
    previous = "the input"
    for item, layer in align_layers(expected, layers):
        if layer is None:  # a missing layer (align_layers never pairs None with None)
            if item is not None and not item.get("optional"):
                problems.append(f"{describe_expected(item)} is missing after {previous}")
            continue
        if item is None:
            problems.append(f"an extra {describe_found(layer)} after {previous}")
            previous = describe_found(layer)
            continue
        keys = _setting_keys(item)
        if layer["class"] not in _classes(item):
            problems.append(f"expected {describe_expected(item)} after {previous}, found "
                            f"{describe_found(layer)}")
        else:
            wrong = [k for k in keys if not _matches(item[k], layer["settings"].get(k))]
            if wrong:
                problems.append(f"expected {describe_expected(item)} after {previous}, found "
                                f"{describe_found(layer, keys)}")
            checked.append(describe_found(layer, keys))
        previous = describe_found(layer, [k for k in keys if k in _POSITIONAL]) \
            if keys else layer["class"]
    return problems, checked


def check_layers(ctx: TaskContext, spec) -> Outcome:
    found = ctx.model_info()
    if not found:
        return ctx.model_missing()
    role, info = found
    problems, checked = layer_differences(spec.options["expect"], info["layers"])
    source = f"{ctx.task.builder}()" if role == "fresh" else ctx.task.model
    if problems:
        missing = [item for item, layer in align_layers(spec.options["expect"], info["layers"])
                   if item is not None and layer is None and not item.get("optional")]
        one_missing = len(missing) == 1 and len(problems) == 1
        hint = f"Add the {describe_expected(missing[0])} layer." if one_missing else spec_hint(ctx)
        more = len(problems) - 1
        todo = f"Add the {describe_expected(missing[0])} layer to {source}." if one_missing else \
            sentence(f"Give {source} the exercise's layers: {problems[0]}" +
                     (f" (and {more} more difference{'s' * (more > 1)})" if more else ""))
        return Outcome(False, f"{ctx.label}: the layers of {source} differ from the "
                              f"exercise's: " + "; ".join(problems) + ".", hint=hint, todo=todo)
    return Outcome(True, f"{ctx.label}: the layers of {source} are " + ", ".join(checked)
                   + ", as the exercise asks.")


def spec_hint(ctx: TaskContext) -> str | None:
    expected = next((c.options.get("expect") for c in ctx.task.checks if c.check == "layers"),
                    None)
    if not expected:
        return None
    required = [describe_expected(i) for i in expected if not i.get("optional")]
    return "The exercise asks for " + " -> ".join(required) + "."


def _the_model(ctx: TaskContext, role: str) -> str:
    """The model a structural check looked at, in words."""
    return f"the model {ctx.task.builder}() returns" if role == "fresh" else ctx.task.model


def check_param_count(ctx: TaskContext, spec) -> Outcome:
    found = ctx.model_info()
    if not found:
        return ctx.model_missing()
    role, info = found
    want, got = spec.options["expect"], info["params"]
    if got == want:
        return Outcome(True, f"{ctx.label}: {fmt_int(got)} parameters, as expected.")
    detail = ", ".join(f"{layer['class']} {fmt_int(layer['params'])}" for layer in info["layers"])
    return Outcome(False, f"{ctx.label}: expected {fmt_int(want)} parameters, found "
                          f"{fmt_int(got)} ({detail}).", hint=spec_hint(ctx),
                   todo=f"Bring {_the_model(ctx, role)} to {fmt_int(want)} parameters: it has "
                        f"{fmt_int(got)}.")


def _fmt_shape(shape) -> str:
    if shape is None:
        return "unknown"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def check_output_shape(ctx: TaskContext, spec) -> Outcome:
    found = ctx.model_info()
    if not found:
        return ctx.model_missing()
    role, info = found
    want, got = list(spec.options["expect"]), info.get("output_shape")
    if got == want:
        return Outcome(True, f"{ctx.label}: output shape {_fmt_shape(got)}.")
    return Outcome(False, f"{ctx.label}: expected output shape {_fmt_shape(want)}, found "
                          f"{_fmt_shape(got)}.", hint=spec_hint(ctx),
                   todo=f"Make {_the_model(ctx, role)} output {_fmt_shape(want)}: it outputs "
                        f"{_fmt_shape(got)}.")


#: Keras' own aliases (keras.losses.ALL_OBJECTS_DICT, keras.metrics): a string, a function and
#: a class instance of one loss or metric are serialised as these names, after ``_snake``
_ALIASES = {"bce": "binary_crossentropy", "mse": "mean_squared_error",
            "mae": "mean_absolute_error", "mape": "mean_absolute_percentage_error",
            "msle": "mean_squared_logarithmic_error", "kld": "kl_divergence",
            "kullback_leibler_divergence": "kl_divergence", "logcosh": "log_cosh",
            "huber_loss": "huber",
            # compile(metrics=["accuracy"]) is binary accuracy for one sigmoid output; Keras'
            # Accuracy() class is not (it compares probabilities with labels for equality)
            "acc": "binary_accuracy", "accuracy": "binary_accuracy"}


#: how a canonical name is shown: as a student writes it for a sigmoid output
_SHOWN = {"binary_accuracy": "accuracy"}


def _snake(text: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).lower()


def canonical_name(value) -> str | None:
    """The one name of a loss or metric however Keras was given it: ``"bce"``,
    ``"binary_crossentropy"``, ``keras.losses.binary_crossentropy`` (serialised as a
    ``function``) and ``keras.losses.BinaryCrossentropy()`` are all ``binary_crossentropy``."""
    if isinstance(value, Mapping):  # a serialised object the evaluator did not flatten
        value = value.get("config") if value.get("class_name") == "function" else \
            value.get("class_name")
    if not isinstance(value, str):
        return None
    if value in ("Accuracy",):  # the class, not the string: exact equality
        return "exact_accuracy"
    name = value if value.islower() else _snake(value)
    return _ALIASES.get(name, name)


def check_compile(ctx: TaskContext, spec) -> Outcome:
    found = ctx.model_info()
    if not found:
        return ctx.model_missing()
    role, info = found
    comp: Mapping[str, Any] | None = info.get("compile")
    if comp is None:
        return Outcome(False, f"{ctx.label}: the model is not compiled.",
                       hint="Call model.compile(...) in the builder.",
                       cause="builder_not_compiled" if role == "fresh" else None,
                       todo=f"Compile the model in {ctx.task.builder}() before returning it.")
    problems = []
    want_loss = spec.options.get("loss")
    loss = canonical_name(comp.get("loss"))
    if want_loss and canonical_name(want_loss) != loss:
        problems.append(f"expected loss {want_loss}, found {loss or comp.get('loss')}")
    metrics = {n for n in map(canonical_name, comp.get("metrics") or []) if n is not None}
    for metric in spec.options.get("metrics", []):
        if canonical_name(metric) not in metrics:
            problems.append(f"expected the metric {metric}, found "
                            f"{', '.join(sorted(metrics)) or 'no metrics'}")
    optimizer = comp.get("optimizer")
    lr = comp.get("learning_rate")
    used = f"{optimizer}" + (f" (learning rate {lr:g})" if isinstance(lr, (int, float)) else "")
    if problems:
        return Outcome(False, f"{ctx.label}: " + "; ".join(problems) + ".",
                       hint="compile(loss='binary_crossentropy', optimizer=..., "
                            "metrics=['accuracy']) for a sigmoid output.",
                       todo=f"Fix how {_the_model(ctx, role)} is compiled: {problems[0]}.")
    shown = sorted({_SHOWN.get(m, m) for m in metrics})
    return Outcome(True, f"{ctx.label}: compiled with loss {loss}, optimizer {used}"
                   + (f", metrics {', '.join(shown)}" if shown else "") + ".")
