"""The test reviews the grader keeps to itself, and the kernel's view of the data without them.

``held_out`` picks them (a seeded random order of the test split, never a review with a twin
anywhere in the source, whose text would stay readable); ``ensure_view`` writes the kernel's
copy of the cache without them, which is all a notebook can load; ``load_held_out`` gives the
evaluator the first n of them, encoded and padded as the exercise does.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from .data import (_SPLITS, _VIEW_FORMAT, _VIEW_KEY, _atomic_savez, _encoded_splits,
                   _load_arrays, _pad_flat, _rank_keys, ensure_cache)
from .errors import DataSourceError

__all__ = ["held_out", "load_held_out", "ensure_view"]


def _twins(arrays) -> dict[str, np.ndarray]:
    """Per split, which reviews have a word-for-word twin anywhere in the source (IMDB has
    some 400 texts twice, a few across the splits)."""
    keys: dict[str, list[bytes]] = {}
    counts: Counter = Counter()
    for split in _SPLITS:
        lengths, ranks = arrays[f"{split}_lengths"], arrays[f"{split}_ranks"]
        ends = np.cumsum(lengths)
        keys[split] = [ranks[end - n:end].tobytes() for n, end in zip(lengths, ends)]
        counts.update(keys[split])
    return {split: np.fromiter((counts[k] > 1 for k in keys[split]), dtype=bool,
                               count=len(keys[split])) for split in _SPLITS}


def held_out(arrays, count: int, seed: int) -> np.ndarray:
    """The test reviews the grader keeps to itself: ``count`` indices into the cache's test
    split (its fixed order: negatives, then positives, by review id), in a seeded random order,
    so that the first n of them are a fair sample for any n. A review with a twin anywhere in
    the source is never held out: its text would stay readable."""
    n_test = len(arrays["test_lengths"])
    if not 0 < count < n_test:
        raise DataSourceError(f"The IMDB source has {n_test} test reviews; holding out {count} "
                              "of them leaves none for the notebooks (or holds out none).")
    order = np.random.RandomState(seed).permutation(n_test)
    return order[~_twins(arrays)["test"][order]][:count]


def load_held_out(num_words: int, maxlen: int, samples: int, *, count: int, seed: int,
                  source=None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``samples`` held-out test reviews, encoded and padded as the exercise does
    (``num_words``, start, out-of-vocabulary and index offsets of ``load_imdb``'s defaults)."""
    arrays = _load_arrays(source, keys=_rank_keys())
    if samples > count:
        raise ValueError(f"{samples} reviews asked for, but only {count} are held out")
    order = held_out(arrays, count, seed)[:samples]
    words, lengths, labels = _encoded_splits(
        arrays, num_words=num_words, skip_top=0, maxlen=None, seed=0, start_char=1, oov_char=2,
        index_from=3, orders={"test": order})["test"]
    return _pad_flat(words, lengths, maxlen), labels


def _without(arrays: dict[str, np.ndarray], split: str, drop: np.ndarray) -> dict:
    """One split's flat arrays without the reviews at the indices ``drop``."""
    lengths = arrays[f"{split}_lengths"]
    keep = np.ones(len(lengths), dtype=bool)
    keep[drop] = False
    return {f"{split}_ranks": arrays[f"{split}_ranks"][np.repeat(keep, lengths)],
            f"{split}_lengths": lengths[keep], f"{split}_labels": arrays[f"{split}_labels"][keep]}


def ensure_view(source=None, *, count: int, seed: int) -> Path:
    """The kernel's view of ``source``: its cache without the ``count`` held-out test reviews,
    written once beside the cache (atomically) and returned. Word ranks come from the training
    reviews alone, so they are the full source's."""
    src, cache = ensure_cache(source)
    if src.kind == "view":
        raise DataSourceError(f"The IMDB source {src.path} is a kernel's view (held-out reviews "
                              "removed), not a source the grader can measure on.",
                              path=str(src.path))
    path = cache.with_name(f"{cache.stem}-view{_VIEW_FORMAT}-{count}-{seed}.npz")
    if path.exists():
        return path
    arrays = _load_arrays(source)
    view = {k: v for k, v in arrays.items() if not k.startswith("test_")}
    view.update(_without(arrays, "test", held_out(arrays, count, seed)))
    view[_VIEW_KEY] = np.array(json.dumps({"held_out": count, "seed": seed, "of": cache.name,
                                           "format": _VIEW_FORMAT}))
    _atomic_savez(path, view)
    return path
