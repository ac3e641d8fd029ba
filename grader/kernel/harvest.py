"""Kernel side of the harvest: the last cell of every graded notebook runs ``harvest``.

The source of this module is pasted into that cell (it needs nothing from the grader), so only
the standard library, NumPy and Keras are used. It hands out plain data only: ``.keras`` files,
``history`` numbers as JSON, the notebook's ``generate_movies`` output as ``.npz``. None of it is
trusted: the grader measures the models itself and validates every field it reads.

Early hand-out (``checkpoint=True``): the grader also runs ``harvest`` silently after every code
cell (no cell number, no output). As soon as a task has a Keras model and a history, its trained
model is saved then, so the evaluator can measure it while the notebook goes on; the call
returns, as JSON, the tasks it saved and their histories (the grader draws them meanwhile).
The last cell saves it again only if it changed since (its weights, layers or compile
settings), and says which files are the early ones (``"early": true``). Builders are only
called in the last cell:
a model built mid-notebook would draw from the notebook's random state and move the seeded
initial weights of every model after it.

The notebook's ``check()`` (``grader.kernel.notebook_check``) calls the builders through
``_call_builder`` and lists the namespace with ``_namespace_listing``, so it reports them in the
harvest's terms. Helpers are named with a leading underscore: the harvest cell defines them in
the notebook's namespace, whose listing skips such names, and deletes them afterwards.
"""


def _describe_error(exc):
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def _call_builder(builder, model_type):
    """A task's builder called once: ``(entry, model)``, the entry's status ``missing``,
    ``error``, ``not_a_model`` or ``ok`` (model None unless ``ok``)."""
    if not callable(builder):
        return {"status": "missing"}, None
    try:
        fresh = builder()
    except BaseException as exc:  # noqa: BLE001 - SystemExit from a builder is an error too
        return {"status": "error", "error": _describe_error(exc)}, None
    if model_type and isinstance(fresh, model_type):
        return {"status": "ok"}, fresh
    return {"status": "not_a_model", "type": type(fresh).__name__}, None


def _namespace_listing(namespace, model_type):
    """What else the notebook holds: lets the report say "found build_lstm_net() instead"."""
    import types

    models, functions = [], []
    for name, value in list(namespace.items()):
        if name.startswith("_"):
            continue
        if isinstance(value, types.FunctionType) and value.__module__ in (None, "__main__"):
            functions.append(name)
        elif model_type and isinstance(value, model_type):
            try:
                params = int(value.count_params())
            except Exception:  # noqa: BLE001 - an unbuilt model has no count yet
                params = None
            models.append({"name": name, "params": params,
                           "layers": [type(layer).__name__ for layer in value.layers][:50]})
    return {"models": models[:20], "functions": functions[:100]}


def _model_type(checkpoint):
    """``(keras.Model, None)``; ``((), why)`` when Keras cannot be imported; ``None`` at a
    checkpoint before the notebook imported Keras (a model needs it loaded already)."""
    import sys

    if checkpoint:
        loaded = sys.modules.get("keras")  # never imported here
        return None if loaded is None else (loaded.Model, None)
    try:
        import keras
    except Exception as exc:  # noqa: BLE001 - any failure here is reported, not raised
        return (), f"{type(exc).__name__}: {exc}"
    return keras.Model, None


def _save(model, path):
    import os

    model.save(path)
    return os.path.basename(path)


def _digest(model):
    """What the evaluator reads from a saved model: its weights, layers and compile settings."""
    import hashlib
    import json

    import numpy as np

    h = hashlib.sha256()
    for weight in model.weights:
        h.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    compiled = getattr(model, "get_compile_config", lambda: None)()
    h.update(json.dumps([model.get_config(), compiled], sort_keys=True, default=repr).encode())
    return h.hexdigest()


def _plain_history(obj):
    """A History's numbers as plain JSON (bounded: 50 keys of 10,000 values), or None."""
    import math

    hist = getattr(obj, "history", None)
    if not isinstance(hist, dict):
        return None
    clean = {}
    for key, values in list(hist.items())[:50]:
        try:
            numbers = [float(v) for v in list(values)[:10000]]
        except (TypeError, ValueError):
            continue
        clean[str(key)[:100]] = [v if math.isfinite(v) else None for v in numbers]
    return clean


def _checkpoint(spec, namespace, state, model_type):
    """The early hand-out after a cell: each task that now has a built model and a history is
    saved once; the tasks saved, with their histories, as a JSON string."""
    import json
    import os

    out = spec["out"]
    ready: list = []
    for task in spec["tasks"]:
        model = namespace.get(task["model"])
        if task["id"] in state or namespace.get(task["history"]) is None or \
                not isinstance(model, model_type) or not model.built:
            continue
        early = state[task["id"]] = {}  # once per task, whatever happens below
        try:
            os.makedirs(out, exist_ok=True)
            if os.path.islink(out) or not os.path.isdir(out):
                return json.dumps(ready)
            early["digest"] = _digest(model)
            _save(model, f"{out}/{task['id']}.trained.keras")
        except BaseException:  # noqa: BLE001 - the last cell saves it then
            early.clear()
            continue
        # the history as the last cell would hand it out: the grader draws it meanwhile
        hist = _plain_history(namespace.get(task["history"]))
        ready.append({"id": task["id"],
                      "history": hist if len(json.dumps(hist)) < 100_000 else None})
    return json.dumps(ready)


def _task_entry(task, namespace, out, early, model_type):
    """One task's builder (called, its model saved), trained model and history."""
    entry = {}
    entry["builder"], fresh = _call_builder(namespace.get(task["builder"]), model_type)
    if fresh is not None:
        try:
            entry["builder"]["file"] = _save(fresh, f"{out}/{task['id']}.fresh.keras")
        except BaseException as exc:  # noqa: BLE001
            entry["builder"] = {"status": "error",
                                "error": "saving it failed: " + _describe_error(exc)}
    model = namespace.get(task["model"])
    if model is None:
        entry["model"] = {"status": "missing"}
    elif model_type and isinstance(model, model_type):
        try:
            if early.get("digest") and _digest(model) == early["digest"]:
                entry["model"] = {"status": "ok", "file": f"{task['id']}.trained.keras",
                                  "early": True}
            else:
                entry["model"] = {"status": "ok",
                                  "file": _save(model, f"{out}/{task['id']}.trained.keras")}
        except BaseException as exc:  # noqa: BLE001
            entry["model"] = {"status": "error", "error": _describe_error(exc)}
    else:
        entry["model"] = {"status": "not_a_model", "type": type(model).__name__}
    hist = namespace.get(task["history"])
    if hist is None:
        entry["history"] = {"status": "missing"}
    else:
        clean = _plain_history(hist)
        entry["history"] = {"status": "ok", "history": clean} if clean is not None else \
            {"status": "not_a_history", "type": type(hist).__name__}
    return entry


def _movies(spec, namespace):
    """The notebook's ``generate_movies`` called with the grader's arguments (NumPy's random
    state seeded, then restored), its output saved as ``movies.npz``."""
    import numpy as np

    make = namespace.get("generate_movies")
    if not callable(make):
        return {"status": "missing"}
    try:
        rng = np.random.get_state()
        np.random.seed(0)
        try:
            noisy, shifted = make(**spec["movies_call"])
        finally:
            np.random.set_state(rng)
        np.savez(f"{spec['out']}/movies.npz", noisy=np.asarray(noisy, dtype=np.float32),
                 shifted=np.asarray(shifted, dtype=np.float32))
        return {"status": "ok"}
    except BaseException as exc:  # noqa: BLE001
        return {"status": "error", "error": _describe_error(exc)}


def harvest(spec, namespace, checkpoint=False):
    import json
    import os

    out = spec["out"]
    grader = namespace.get("_ex8_grader")
    state = grader.setdefault("early", {}) if isinstance(grader, dict) else {}
    found = _model_type(checkpoint)
    if found is None:
        return "[]"
    model_type, keras_error = found
    if checkpoint:
        return _checkpoint(spec, namespace, state, model_type)

    os.makedirs(out, exist_ok=bool(state))  # fresh, unless an early hand-out made it
    if os.path.islink(out):
        raise RuntimeError("the artifact folder is a link")
    report = {"keras_error": keras_error, "tasks": {}, "namespace": {}}
    for task in spec["tasks"]:
        report["tasks"][task["id"]] = _task_entry(task, namespace, out,
                                                  state.get(task["id"]) or {}, model_type)
    report["namespace"] = _namespace_listing(namespace, model_type)
    report["namespace"]["movies"] = _movies(spec, namespace)
    with open(f"{out}/harvest.json", "w", encoding="utf-8") as fh:
        json.dump(report, fh)
    print(f"ex8 grader: harvested {len(spec['tasks'])} tasks")
