"""IMDB loading for the exercise and the grader: a drop-in for ``keras.datasets.imdb``.

``load_imdb`` returns what ``keras.datasets.imdb.load_data`` returns, from one of these sources,
in this order: the ``source=`` argument, the ``EX8_IMDB`` environment variable, Keras' own
download. A source is the official ``imdb.npz``, an ``aclImdb/`` folder, or a tarball in the
official layout (``aclImdb_v1.tar.gz`` or the labeled-only ``aclImdb_labeled.tar.gz``).

Raw text is tokenised once into a cache in Keras' format (word ranks by frequency, 1-based),
keyed by the source's hash, under ``$EX8_CACHE`` or the user's cache folder.

Tokenisation rule for raw text (``TOKENISER_VERSION`` changes when it does): the review is
lower-cased, every ``<br />`` becomes a space, and the tokens are the runs of letters and digits,
with apostrophes kept inside a word (``don't``, ``director's``); everything else separates
tokens. Words are ranked by how often they occur in the 25,000 training reviews (ties broken
alphabetically), rank 1 being the most frequent. As in Keras' file, test words that never occur in
the training reviews are dropped.

Held-out reviews: the grader measures accuracy on test reviews no notebook can read. ``held_out``
picks them (a seeded draw from the test split), and ``ensure_view`` writes the *kernel's view*: the
cache without them (every training review, the rest of the test split), the only IMDB file a
confined kernel sees. ``load_imdb`` reads a view like any source; the evaluator reads the held-out
reviews from the full cache with ``load_held_out``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import re
import tarfile
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import DataSourceError, quoted

__all__ = [
    "load_imdb",
    "get_word_index",
    "load_imdb_padded",
    "load_imdb_subsets",
    "resolve_source",
    "cache_path_for",
    "pad_sequences_pre",
    "TOKENISER_VERSION",
    "ENV_SOURCE",
    "ENV_CACHE",
]

log = logging.getLogger(__name__)

ENV_SOURCE = "EX8_IMDB"
ENV_CACHE = "EX8_CACHE"
TOKENISER_VERSION = 1
_CACHE_FORMAT = 1
_VIEW_KEY = "ex8_view"  # the array that marks a kernel's view (JSON: what was held out)
_VIEW_FORMAT = 1  # changes when the choice of held-out reviews does (``held_out``)

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_FILE_NAME = re.compile(r"(\d+)_(\d+)\.txt$")
_SPLITS = ("train", "test")
_LABELS = (("neg", 0), ("pos", 1))


def tokenise(text: str) -> list[str]:
    """Split one raw review into tokens by the rule in the module docstring."""
    return _TOKEN.findall(_BREAK.sub(" ", text.lower()))


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """Where the reviews come from: ``kind`` is ``npz``, ``folder``, ``tarball``, ``keras``, or
    ``view`` (a kernel's view: cache arrays without the held-out reviews, read as they are)."""

    kind: str
    path: Path | None

    def describe(self) -> str:
        return "Keras' download" if self.path is None else f"{self.kind} {self.path}"

    @property
    def file(self) -> Path:
        """The file or folder to read: every source has one but Keras' download, which
        ``_concrete`` fetches first."""
        if self.path is None:
            raise ValueError("Keras' download has no file until it is fetched (_concrete)")
        return self.path


def resolve_source(source: str | os.PathLike | None = None) -> Source:
    """Pick the source: the argument, else ``$EX8_IMDB``, else Keras' own download."""
    origin = "the source argument"
    if source is None and os.environ.get(ENV_SOURCE):
        source, origin = os.environ[ENV_SOURCE], f"${ENV_SOURCE}"
    if source is None:
        return Source("keras", None)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataSourceError(
            f"The IMDB source {path} given by {origin} does not exist; point {ENV_SOURCE} at "
            "imdb.npz, an aclImdb/ folder or an aclImdb tarball.", path=str(path))
    if path.is_dir():
        root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
        if not all((root / split / label).is_dir() for split in _SPLITS for label, _ in _LABELS):
            raise DataSourceError(
                f"The IMDB folder {path} has no train/{{pos,neg}} and test/{{pos,neg}} "
                "folders (the official aclImdb layout).", path=str(path))
        return Source("folder", root.resolve())  # handed to processes in other folders
    path = path.resolve()
    if path.suffix == ".npz":
        return Source("view" if _is_view(path) else "npz", path)
    if tarfile.is_tarfile(path):
        return Source("tarball", path)
    raise DataSourceError(
        f"The IMDB source {path} is neither imdb.npz, an aclImdb folder nor a tarball.",
        path=str(path))


def _is_view(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return f"{_VIEW_KEY}.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _source_key(src: Source) -> str:
    digest = hashlib.sha256(f"tok{TOKENISER_VERSION}/fmt{_CACHE_FORMAT}/{src.kind}".encode())
    if src.kind == "folder":
        # Hashing 50,000 files' contents on every load would cost more than the load itself;
        # names, sizes and modification times identify a folder's state well enough.
        for split in _SPLITS:
            for label, _ in _LABELS:
                for entry in sorted(os.scandir(src.file / split / label), key=lambda e: e.name):
                    st = entry.stat()
                    digest.update(f"{split}/{label}/{entry.name}:{st.st_size}:{st.st_mtime_ns}"
                                  .encode())
    else:
        with open(src.file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:20]


def cache_dir() -> Path:
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ex8-grader"


def _concrete(source) -> Source:
    """The source to read: Keras' download is fetched (or found in Keras' cache) first."""
    src = resolve_source(source)
    return Source("npz", _keras_download()) if src.kind == "keras" else src


def cache_path_for(source: str | os.PathLike | None = None) -> Path:
    """The cache file a source is (or will be) tokenised into (a view is its own cache)."""
    src = _concrete(source)
    return src.file if src.kind == "view" else cache_dir() / f"imdb-{_source_key(src)}.npz"


# --------------------------------------------------------------------------- reading raw text


def _iter_reviews(src: Source) -> Iterator[tuple[str, int, int, str]]:
    """Yield ``(split, label, id, text)`` for every labeled review of a folder or tarball."""
    if src.kind == "folder":
        for split in _SPLITS:
            for label_name, label in _LABELS:
                for path in (src.file / split / label_name).iterdir():
                    m = _FILE_NAME.search(path.name)
                    if m:
                        yield split, label, int(m.group(1)), path.read_text(encoding="utf-8")
        return
    wanted = {(split, name): label for split in _SPLITS for name, label in _LABELS}
    with tarfile.open(src.file) as archive:
        for member in archive:
            if not member.isfile():
                continue
            parts = member.name.split("/")
            m = _FILE_NAME.search(parts[-1])
            if len(parts) < 3 or not m or (parts[-3], parts[-2]) not in wanted:
                continue
            fh = archive.extractfile(member)
            if fh is None:  # only for a member that is not a file
                continue
            text = fh.read().decode("utf-8")
            yield parts[-3], wanted[parts[-3], parts[-2]], int(m.group(1)), text


def _build_from_text(src: Source) -> dict[str, np.ndarray]:
    """Tokenise every review and rank words by training-set frequency (Keras' format)."""
    reviews: dict[str, list[tuple[int, int, list[str]]]] = {split: [] for split in _SPLITS}
    for split, label, review_id, text in _iter_reviews(src):
        reviews[split].append((label, review_id, tokenise(text)))
    for split in _SPLITS:
        if not reviews[split]:
            raise DataSourceError(f"The IMDB source {src.path} holds no {split} reviews.",
                                  path=str(src.path))
        # A fixed order, independent of the archive's member order: negatives, then positives,
        # each by review id.
        reviews[split].sort(key=lambda r: (r[0], r[1]))
    counts = Counter(tok for _, _, toks in reviews["train"] for tok in toks)
    words = sorted(counts, key=lambda w: (-counts[w], w))
    rank = {w: i + 1 for i, w in enumerate(words)}
    arrays: dict[str, np.ndarray] = {"words": np.array(words, dtype=str)}
    for split in _SPLITS:
        seqs = [[rank[t] for t in toks if t in rank] for _, _, toks in reviews[split]]
        arrays.update(_pack(split, seqs, [label for label, _, _ in reviews[split]]))
    return arrays


def _pack(split: str, seqs, labels) -> dict[str, np.ndarray]:
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    flat = np.fromiter((w for s in seqs for w in s), dtype=np.int32, count=int(lengths.sum()))
    return {f"{split}_ranks": flat, f"{split}_lengths": lengths,
            f"{split}_labels": np.asarray(labels, dtype=np.int64)}


# --------------------------------------------------------------------------- Keras' npz


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Reads the object arrays of Keras' imdb.npz; refuses every global but numpy's arrays."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
                ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in an IMDB npz file")
        return super().find_class(module, name)


def _read_npy(raw: bytes) -> np.ndarray:
    fh = io.BytesIO(raw)
    try:
        return np.lib.format.read_array(fh, allow_pickle=False)
    except ValueError:  # an object array: a pickle stream after the header
        fh.seek(0)
        major, _ = np.lib.format.read_magic(fh)
        header = np.lib.format.read_array_header_1_0 if major == 1 else \
            np.lib.format.read_array_header_2_0
        header(fh)
        return _ArrayOnlyUnpickler(fh).load()


def _build_from_npz(src: Source) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(src.file) as archive:
            raw = {name[:-4]: _read_npy(archive.read(name)) for name in archive.namelist()
                   if name.endswith(".npy")}
    except (zipfile.BadZipFile, ValueError, pickle.UnpicklingError, EOFError) as exc:
        raise DataSourceError(f"The IMDB file {src.path} is not a readable imdb.npz "
                              f"({quoted(exc)}).",
                              path=str(src.path)) from exc
    missing = {"x_train", "y_train", "x_test", "y_test"} - raw.keys()
    if missing:
        raise DataSourceError(f"The IMDB file {src.path} lacks {', '.join(sorted(missing))}.",
                              path=str(src.path))
    arrays: dict[str, np.ndarray] = {}
    for split in _SPLITS:
        seqs = [list(map(int, s)) for s in raw[f"x_{split}"]]
        arrays.update(_pack(split, seqs, raw[f"y_{split}"]))
    index_file = src.file.with_name("imdb_word_index.json")
    words: list[str] = []
    if index_file.exists():
        index = json.loads(index_file.read_text(encoding="utf-8"))
        words = [""] * max(index.values(), default=0)
        for word, i in index.items():
            words[i - 1] = word
    arrays["words"] = np.array(words, dtype=str)
    return arrays


def _keras_download() -> Path:
    from .quiet import quiet_tensorflow, tensorflow_notices_dropped

    quiet_tensorflow()  # Keras brings TensorFlow, whose start-up notices are not for users
    try:
        with tensorflow_notices_dropped():
            from keras.utils import get_file

        return Path(get_file(
            fname="imdb.npz",
            origin="https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz",
            file_hash="69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"))
    except Exception as exc:  # no network, proxy refusal, ...: all end the same way for a user
        # Keras says "URL fetch failure on <url>: <code> -- <reason>"; the reason is the news
        why = str(exc).rpartition(" -- ")[2].strip()[:120] or type(exc).__name__
        raise DataSourceError(
            f"No IMDB source is reachable: Keras' download failed ({why}); set "
            f"{ENV_SOURCE} to imdb.npz, an aclImdb/ folder or an aclImdb tarball.") from exc


# --------------------------------------------------------------------------- the cache


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, allow_pickle=False, **arrays)  # the cache is read without pickles
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # kernels run as another user read it too
        os.replace(tmp, path)  # readers see the old file, no file, or the whole new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_cache(src: Source) -> dict[str, np.ndarray]:
    """Read a source from scratch into the cache's arrays (the slow path)."""
    log.info("tokenising IMDB from %s (once; cached afterwards)", src.describe())
    return _build_from_npz(src) if src.kind == "npz" else _build_from_text(src)


def _load_arrays(source, keys=None) -> dict[str, np.ndarray]:
    """The source's arrays from its cache (built first if need be); ``keys``: only these."""
    src = _concrete(source)
    if src.kind == "view":  # already in the cache's format, and read-only where kernels see it
        with np.load(src.file, allow_pickle=False) as f:
            return {k: f[k] for k in f.files if keys is None or k in keys}
    path = cache_dir() / f"imdb-{_source_key(src)}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                log.debug("IMDB cache hit: %s", path)
                return {k: f[k] for k in f.files if keys is None or k in keys}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            log.warning("IMDB cache %s is unreadable (%s); rebuilding it", path, exc)
    arrays = build_cache(src)
    try:
        _atomic_savez(path, arrays)
    except OSError as exc:  # a read-only cache folder costs time, not correctness
        log.warning("could not write the IMDB cache %s: %s", path, exc)
    return arrays


def _encoded_splits(arrays, *, num_words, skip_top, maxlen, seed, start_char, oov_char,
                    index_from, first: dict[str, int | None] | None = None,
                    orders: dict[str, np.ndarray] | None = None):
    """Keras' ``load_data`` steps on flat arrays: shuffle, shift, mark, filter, cut to num_words.

    Returns ``{split: (words, lengths, labels)}`` with each split's reviews concatenated in
    ``words``; the steps and their order are Keras' own, so the results are identical.
    ``first`` (``{split: n}``, n None: all) encodes only those splits, and of each only its
    first n reviews after the shuffle: the same as the full encoding's first n when no later
    step looks at the other reviews (no ``maxlen`` filter, ``num_words`` given). ``orders``
    (``{split: indices}``) encodes exactly those reviews of a split, in that order, instead.
    """
    if (first or orders) and (maxlen or not num_words):
        raise ValueError("first= needs num_words and no maxlen: the other reviews decide those")
    rng = np.random.RandomState(seed)
    encoded = {}
    for split in _SPLITS:
        if orders is not None and split not in orders:
            continue
        lengths = arrays[f"{split}_lengths"]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        order = np.arange(len(lengths))
        if orders is not None:
            order = np.asarray(orders[split], dtype=np.int64)
        else:
            rng.shuffle(order)  # one shuffle per split, train first: Keras' sequence of draws
        if orders is None and first is not None:
            if split not in first:
                continue
            order = order[:first[split]]  # [:None] keeps all
        flat = arrays[f"{split}_ranks"]
        starts, lengths = starts[order], lengths[order]
        labels = arrays[f"{split}_labels"][order]
        pos = np.arange(int(lengths.sum())) - np.repeat(
            np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        words = flat[np.repeat(starts, lengths) + pos].astype(np.int64) + index_from
        if start_char is not None:
            words = np.insert(words, np.concatenate([[0], np.cumsum(lengths)[:-1]]), start_char)
            lengths = lengths + 1
        if maxlen:
            short = lengths < maxlen
            words, labels, lengths = words[np.repeat(short, lengths)], labels[short], lengths[short]
            if not len(lengths):
                raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, "
                                 "no sequence was kept. Increase maxlen.")
        encoded[split] = (words, lengths, labels)
    if not num_words:
        num_words = max(int(w.max()) for w, _, _ in encoded.values() if len(w))
    for split, (words, lengths, labels) in encoded.items():
        inside = (words >= skip_top) & (words < num_words)
        if oov_char is not None:
            words = np.where(inside, words, oov_char)
        else:
            review = np.repeat(np.arange(len(lengths)), lengths)
            lengths = np.bincount(review[inside], minlength=len(lengths))
            words = words[inside]
        encoded[split] = (words, lengths, labels)
    return encoded


def load_imdb(path: str = "imdb.npz", num_words: int | None = None, skip_top: int = 0,
              maxlen: int | None = None, seed: int = 113, start_char: int | None = 1,
              oov_char: int | None = 2, index_from: int = 3, *, source=None, **kwargs):
    """Load IMDB like ``keras.datasets.imdb.load_data`` and return the same values.

    Returns ``(x_train, y_train), (x_test, y_test)``: object arrays of lists of word indices
    and int64 label arrays, shuffled with ``seed`` exactly as Keras shuffles them. ``source``
    (else ``$EX8_IMDB``) names the reviews; without either, Keras' download is used.
    ``path`` is only the file name of that download, as in Keras.
    """
    if kwargs:
        raise TypeError(f"Unrecognized keyword arguments: {sorted(kwargs)}")
    encoded = _encoded_splits(_load_arrays(source), num_words=num_words, skip_top=skip_top,
                              maxlen=maxlen, seed=seed, start_char=start_char,
                              oov_char=oov_char, index_from=index_from)
    out = []
    for split in _SPLITS:
        words, lengths, labels = encoded[split]
        x = np.empty(len(lengths), dtype=object)
        x[:] = [chunk.tolist() for chunk in np.split(words, np.cumsum(lengths)[:-1])]
        out.append((x, labels))
    return tuple(out)


def get_word_index(source=None) -> dict[str, int]:
    """The word -> rank map of ``source`` (1 = most frequent), like Keras' ``get_word_index``."""
    words = _load_arrays(source, keys={"words"})["words"]
    if not len(words):
        raise DataSourceError("The IMDB source has no word index (imdb_word_index.json is not "
                              f"beside the npz); set {ENV_SOURCE} to a raw-text source instead.")
    return {str(w): i + 1 for i, w in enumerate(words) if w}


def _pad_flat(words, lengths, maxlen: int) -> np.ndarray:
    """Pre-pad and pre-truncate concatenated reviews to ``maxlen``, as ``pad_sequences`` does."""
    out = np.zeros((len(lengths), maxlen), dtype=np.int32)
    ends = np.cumsum(lengths)
    row = np.repeat(np.arange(len(lengths)), lengths)
    col = maxlen - (np.repeat(ends, lengths) - np.arange(int(ends[-1]) if len(ends) else 0))
    keep = col >= 0
    out[row[keep], col[keep]] = words[keep]
    return out


def pad_sequences_pre(x, maxlen: int) -> np.ndarray:
    """``keras.utils.pad_sequences(x, maxlen)`` (pre-padding, pre-truncation) without Keras."""
    lengths = np.fromiter((len(s) for s in x), dtype=np.int64, count=len(x))
    words = np.fromiter((w for s in x for w in s), dtype=np.int64, count=int(lengths.sum()))
    return _pad_flat(words, lengths, maxlen)


def load_imdb_padded(num_words: int, maxlen: int, *, split: str = "test",
                     samples: int | None = None, seed: int = 113, source=None):
    """The grader's view: ``split``'s first ``samples`` reviews, padded like the exercise does.

    Same order and encoding as ``load_imdb(num_words=num_words, seed=seed)``, so the grader
    evaluates on exactly the reviews a notebook sees as ``x_test[:samples]``.
    """
    return load_imdb_subsets(num_words, maxlen, {split: samples}, seed=seed, source=source)[split]


def _rank_keys() -> set[str]:
    return {f"{split}_{part}" for split in _SPLITS for part in ("ranks", "lengths", "labels")}


def load_imdb_subsets(num_words: int, maxlen: int, samples: dict[str, int | None], *,
                      seed: int = 113, source=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``load_imdb_padded`` for several splits at once (``{split: samples}``, None: all), from
    one read of the cache; only the reviews asked for are encoded."""
    arrays = _load_arrays(source, keys=_rank_keys())
    encoded = _encoded_splits(arrays, num_words=num_words, skip_top=0, maxlen=None, seed=seed,
                              start_char=1, oov_char=2, index_from=3, first=samples)
    return {split: (_pad_flat(words, lengths, maxlen), labels)
            for split, (words, lengths, labels) in encoded.items()}


def ensure_cache(source=None) -> tuple[Source, Path]:
    """Resolve the source and make sure its cache exists, so that kernels only read it."""
    src = _concrete(source)
    if src.kind == "view":
        return src, src.file
    path = cache_dir() / f"imdb-{_source_key(src)}.npz"
    if not path.exists():
        _load_arrays(src.path)
    elif path.stat().st_mode & 0o044 != 0o044:
        # a cache written before it was made readable: confined kernels run as another user
        try:
            path.chmod(0o644)
        except OSError:
            pass
    return src, path
