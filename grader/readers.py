"""Validating readers for what the student's kernel wrote: one per kind of file.

Nothing the kernel wrote is used before it passes its reader: a regular file (never a link, a
FIFO or a device: opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked on the descriptor), at
most so many bytes read, JSON at most so deep, every field of the expected type and size. What
fails is ``Unreadable`` with the reason in words: the caller turns it into a failed check,
never a crash or a memory blow-up of the grader.
"""

from __future__ import annotations

import io
import json
import math
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import quoted

__all__ = ["Unreadable", "json_problem", "read_bytes", "read_json", "read_harvest", "clean_history",
           "read_npz", "MAX_HARVEST_BYTES", "MAX_HISTORY_KEYS", "MAX_HISTORY_EPOCHS"]

MAX_HARVEST_BYTES = 8 << 20
MAX_JSON_DEPTH = 20  # harvest.json is four levels deep
MAX_HISTORY_KEYS = 50
MAX_HISTORY_EPOCHS = 10_000
MAX_TEXT = 1_000  # an error message, a type's name
MAX_NAME = 200  # a function's or a model's name
MAX_NAMES = 100
MAX_NPZ_BYTES = 64 << 20


def json_problem(exc: ValueError) -> str:
    """What ``json`` found wrong, as a clause: "unterminated string starting at line 1, column
    11" (its message ends with " at", the position it gives apart)."""
    if not isinstance(exc, json.JSONDecodeError):
        return quoted(exc, 80)
    what = exc.msg[:-3] if exc.msg.endswith(" at") else exc.msg
    return f"{what[:1].lower()}{what[1:]} at line {exc.lineno}, column {exc.colno}"


class Unreadable(Exception):
    """A file the kernel wrote that the grader will not use; ``str()`` says why."""


def read_bytes(path: Path, limit: int) -> bytes:
    """The content of a regular file of at most ``limit`` bytes; no link is followed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise Unreadable(f"{Path(path).name} is missing") from None
    except OSError as exc:  # ELOOP: a link
        raise Unreadable(f"{Path(path).name} cannot be opened ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise Unreadable(f"{Path(path).name} is not a regular file")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise Unreadable(f"{Path(path).name} is larger than {limit >> 20} MB")
    return data


def _depth(value: Any, limit: int) -> int:
    """How deep a parsed JSON value nests (without recursion), up to ``limit + 1``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return depth
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node \
            if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def read_json(path: Path, *, limit: int, depth: int = MAX_JSON_DEPTH) -> Any:
    """A JSON file the kernel wrote, at most ``limit`` bytes and ``depth`` levels deep."""
    raw = read_bytes(path, limit)
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Unreadable(f"{Path(path).name} is not UTF-8 text") from None
    except RecursionError:
        raise Unreadable(f"{Path(path).name} is nested too deeply") from None
    except ValueError as exc:
        raise Unreadable(f"{Path(path).name} is not valid JSON ({json_problem(exc)})") from None
    if _depth(value, depth) > depth:
        raise Unreadable(f"{Path(path).name} is nested more than {depth} levels deep")
    return value


# --------------------------------------------------------------------------- harvest.json


def _text(value: Any, limit: int = MAX_TEXT) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _choice(value: Any, allowed: tuple[str, ...]) -> str | None:
    return value if isinstance(value, str) and value in allowed else None


def clean_history(value: Any) -> dict[str, list[float | None]] | None:
    """A History's numbers: at most 50 keys of at most 10,000 epochs, each a finite number or
    None (NaN and infinities become None); None if it is not such a mapping at all."""
    if not isinstance(value, dict):
        return None
    clean: dict[str, list[float | None]] = {}
    for key, series in list(value.items())[:MAX_HISTORY_KEYS]:
        if not isinstance(key, str) or not isinstance(series, list):
            continue
        numbers: list[float | None] = []
        for v in series[:MAX_HISTORY_EPOCHS]:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                numbers.append(None)
            else:
                numbers.append(float(v) if math.isfinite(v) else None)
        clean[key[:MAX_NAME]] = numbers
    return clean


_BUILDER = ("ok", "missing", "error", "not_a_model")
_MODEL = ("ok", "missing", "error", "not_a_model")
_HISTORY = ("ok", "missing", "not_a_history")
_MOVIES = ("ok", "missing", "error")


def _entry(raw: Any, statuses: tuple[str, ...]) -> dict[str, Any]:
    raw = raw if isinstance(raw, dict) else {}
    entry: dict[str, Any] = {"status": _choice(raw.get("status"), statuses) or "missing"}
    for key in ("error", "type", "file"):
        if _text(raw.get(key)) is not None:
            entry[key] = _text(raw.get(key))
    if raw.get("early") is True:
        entry["early"] = True
    return entry


def read_harvest(path: Path, task_ids) -> dict[str, Any]:
    """harvest.json as the checks read it: per task, the builder's, the model's and the
    history's status (one of a few words), short texts, and a clean history; the namespace's
    function and model names. Anything else in the file is dropped."""
    raw = read_json(path, limit=MAX_HARVEST_BYTES)
    if not isinstance(raw, dict) or not isinstance(raw.get("tasks"), dict):
        raise Unreadable(f"{Path(path).name} is not the grader's harvest (no tasks)")
    tasks = {}
    for tid in task_ids:
        item = raw["tasks"].get(tid)
        if not isinstance(item, dict):
            continue
        history = _entry(item.get("history"), _HISTORY)
        clean = clean_history((item.get("history") or {}).get("history")
                              if isinstance(item.get("history"), dict) else None)
        if history["status"] == "ok":
            if clean is None:
                history = {"status": "not_a_history", "type": "malformed data"}
            else:
                history["history"] = clean
        tasks[tid] = {"builder": _entry(item.get("builder"), _BUILDER),
                      "model": _entry(item.get("model"), _MODEL), "history": history}
    space = raw.get("namespace")
    if not isinstance(space, dict):
        space = {}
    functions = [_text(f, MAX_NAME) for f in space.get("functions", [])[:MAX_NAMES]
                 if isinstance(f, str)] if isinstance(space.get("functions"), list) else []
    models = []
    for m in space.get("models", [])[:20] if isinstance(space.get("models"), list) else []:
        if not isinstance(m, dict) or not isinstance(m.get("name"), str):
            continue
        params = m.get("params")
        layers = m.get("layers")
        if not isinstance(layers, list):
            layers = []
        models.append({"name": m["name"][:MAX_NAME],
                       "params": params if isinstance(params, int)
                       and not isinstance(params, bool) else None,
                       "layers": [x[:MAX_NAME] for x in layers[:50] if isinstance(x, str)]})
    namespace = {"functions": functions, "models": models,
                 "movies": _entry(space.get("movies"), _MOVIES)}
    return {"keras_error": _text(raw.get("keras_error")), "tasks": tasks, "namespace": namespace}


# --------------------------------------------------------------------------- .npz


def read_npz(path: Path, names: tuple[str, ...], *, max_bytes: int) -> dict[str, np.ndarray]:
    """Numeric arrays ``names`` from an ``.npz`` the kernel wrote: no pickle, and at most
    ``max_bytes`` unpacked per array (read from the header, then never more than that many
    bytes inflated: a deflate bomb stops there)."""
    path = Path(path)
    raw = read_bytes(path, MAX_NPZ_BYTES)  # what is checked is what is read: no second open
    arrays = {}
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            for name in names:
                with archive.open(f"{name}.npy") as member:
                    version = np.lib.format.read_magic(member)
                    header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, fortran, dtype = header(member, max_header_size=10_000)
                    if dtype.hasobject or dtype.kind not in "biuf":
                        raise Unreadable(f"{name} holds {dtype}, not numbers")
                    size = math.prod(shape) * dtype.itemsize
                    if size > max_bytes:
                        raise Unreadable(f"{name} would unpack to {size >> 20} MB")
                    data = member.read(size)
                    if len(data) != size:
                        raise Unreadable(f"{name} is cut short")
                    array = np.frombuffer(data, dtype=dtype)
                    arrays[name] = array.reshape(shape, order="F" if fortran else "C")
    except KeyError as exc:
        raise Unreadable(f"{path.name} lacks {exc.args[0]}") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise Unreadable(f"{path.name} is not a readable .npz ({type(exc).__name__})") from None
    return arrays
