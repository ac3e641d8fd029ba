"""Safe loading: a model file the kernel wrote is checked before any Keras code reads it.

A regular file (not a link), at most ``MAX_MODEL_BYTES``, only the three members of the Keras 3
format, each once, and a ``config.json`` naming only Keras' own classes (no ``Lambda``,
``TFSMLayer``, code objects or custom objects); then ``load_model(safe_mode=True,
compile=False)``. Each file is copied into the evaluator's own folder first (``snapshot``), so
a kernel still running cannot change it between its check and its loading.
"""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["UnsafeModelError", "inspect_archive", "inspect_config", "model_failure",
           "load_inspected", "snapshot", "MAX_MODEL_BYTES"]

MAX_MODEL_BYTES = 64 << 20
MAX_CONFIG_BYTES = 4 << 20
_ALLOWED_MEMBERS = {"metadata.json", "config.json", "model.weights.h5"}
_FORBIDDEN_CLASSES = {"Lambda", "TFSMLayer", "__lambda__", "function"}
_KERAS_MODULE = re.compile(r"keras(\.[A-Za-z_][A-Za-z0-9_]*)*")


class UnsafeModelError(Exception):
    """A harvested model file is refused before Keras sees it."""


def _keras_function(node: dict) -> bool:
    """How Keras 3 writes one of its own functions given by object (``loss=keras.losses.
    binary_crossentropy``): a name it looks up among its built-ins, never code."""
    return node.get("class_name") == "function" and isinstance(node.get("config"), str) and \
        node.get("registered_name") in (None, "function") and \
        (node.get("module") == "builtins" or
         _KERAS_MODULE.fullmatch(str(node.get("module"))) is not None)


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
    inspect_config(config)
    return config


def inspect_config(config: Any) -> None:
    """Refuse a model's config (what ``config.json`` holds) that names anything but Keras' own
    classes: raises ``UnsafeModelError`` saying what and where."""
    try:
        _walk_config(config)
    except RecursionError as exc:
        raise UnsafeModelError("its config.json is nested too deeply") from exc


def model_failure(name: str, exc: Exception) -> str:
    """Why the model in the file ``name`` was not described: refused, or not loadable."""
    from ..errors import quoted

    if isinstance(exc, UnsafeModelError):
        return f"{name} was refused: {quoted(exc, 400)}."
    return f"{name} could not be loaded ({type(exc).__name__}: {quoted(exc, 300)})."


def load_inspected(path: Path):
    """``load_model(safe_mode=True, compile=False)`` of a file ``inspect_archive`` passed."""
    import keras

    return keras.saving.load_model(path, safe_mode=True, compile=False)


def snapshot(artifacts: Path, name: str, into: Path) -> Path | None:
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
