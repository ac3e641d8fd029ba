"""grader.data on the real reviews: Keras' semantics from raw text, the cache, the sources."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from grader import data, heldout
from grader.errors import DataSourceError

from .conftest import assert_one_sentence

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def full(imdb_source):
    return data.load_imdb(source=imdb_source)


def test_tarball_gives_all_labeled_reviews_balanced(full):
    (x_train, y_train), (x_test, y_test) = full
    assert len(x_train) == len(y_train) == 25_000
    assert len(x_test) == len(y_test) == 25_000
    assert y_train.sum() == 12_500 and y_test.sum() == 12_500
    assert x_train.dtype == object and isinstance(x_train[0], list)
    assert all(seq[0] == 1 for seq in x_train[:100])  # start_char


def test_num_words_caps_every_index(imdb_source):
    (x_train, _), (x_test, _) = data.load_imdb(num_words=5000, source=imdb_source)
    assert max(max(s) for s in x_train) == 4999
    assert max(max(s) for s in x_test) == 4999
    assert min(min(s) for s in x_train) == 1
    # oov_char=2 replaces what the cut removed, so lengths are unchanged
    (x_all, _), _ = data.load_imdb(source=imdb_source)
    assert [len(s) for s in x_train[:50]] == [len(s) for s in x_all[:50]]


def test_words_are_ranked_by_training_frequency(imdb_source):
    index = data.get_word_index(imdb_source)
    assert index["the"] == 1 and index["and"] == 2
    # <br /> is removed before tokenising: "br" is no frequent word (it would rank near "the")
    assert "<br" not in index and index.get("br", 10**9) > 10_000
    (x_train, _), _ = data.load_imdb(source=imdb_source)
    inverse = {i + 3: w for w, i in index.items()}
    words = [inverse[i] for i in x_train[0][1:]]
    assert all(w == w.lower() for w in words)


def test_tokeniser_rule():
    text = "A <br /><br />GREAT film, isn't it? 10/10 -- director's cut_"
    assert data.tokenise(text) == ["a", "great", "film", "isn't", "it", "10", "10", "director's",
                                   "cut"]


def _keras_npz(path: Path, arrays: dict, n_train: int | None = None, n_test: int | None = None):
    """Write ``arrays`` (the cache's flat form) as Keras' imdb.npz: object arrays of lists."""
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        lengths = arrays[f"{split}_lengths"]
        seqs = np.split(arrays[f"{split}_ranks"], np.cumsum(lengths)[:-1])[:n]
        x = np.empty(len(seqs), dtype=object)
        x[:] = [s.astype(int).tolist() for s in seqs]
        out[f"x_{split}"] = x
        out[f"y_{split}"] = arrays[f"{split}_labels"][:n]
    np.savez(path, **out)


@pytest.fixture(scope="module")
def npz_of_tarball(imdb_source, tmp_path_factory):
    path = tmp_path_factory.mktemp("npz") / "imdb.npz"
    _keras_npz(path, data._load_arrays(imdb_source))
    return path


@pytest.mark.parametrize("kwargs", [
    {}, {"num_words": 5000}, {"num_words": 5000, "skip_top": 20, "seed": 7},
    {"maxlen": 100, "start_char": None, "index_from": 0, "oov_char": None, "num_words": 300},
])
def test_npz_and_tarball_sources_agree(imdb_source, npz_of_tarball, kwargs):
    (a_x, a_y), (a_xt, a_yt) = data.load_imdb(source=imdb_source, **kwargs)
    (b_x, b_y), (b_xt, b_yt) = data.load_imdb(source=npz_of_tarball, **kwargs)
    assert np.array_equal(a_y, b_y) and np.array_equal(a_yt, b_yt)
    assert list(a_x) == list(b_x) and list(a_xt) == list(b_xt)


@pytest.mark.parametrize("kwargs", [
    {"num_words": 5000}, {"num_words": 400, "skip_top": 10, "seed": 3, "maxlen": 300},
    {"oov_char": None, "num_words": 100, "start_char": 5, "index_from": 7},
])
def test_load_imdb_equals_keras_load_data_on_the_same_npz(imdb_source, tmp_path, monkeypatch,
                                                          kwargs):
    from keras.src.datasets import imdb as keras_imdb

    path = tmp_path / "imdb.npz"
    _keras_npz(path, data._load_arrays(imdb_source), n_train=3000, n_test=2000)
    monkeypatch.setattr(keras_imdb, "get_file", lambda **_: str(path))
    (k_x, k_y), (k_xt, k_yt) = keras_imdb.load_data(**kwargs)
    (o_x, o_y), (o_xt, o_yt) = data.load_imdb(source=path, **kwargs)
    assert list(k_x) == list(o_x) and list(k_xt) == list(o_xt)
    assert np.array_equal(k_y, o_y) and np.array_equal(k_yt, o_yt)


def test_second_load_hits_the_cache(imdb_source, monkeypatch):
    data.load_imdb(source=imdb_source)  # built (or already built) by now

    def no_rebuild(src):
        raise AssertionError(f"the cache was rebuilt for {src}")

    monkeypatch.setattr(data, "build_cache", no_rebuild)
    (x, _), _ = data.load_imdb(num_words=5000, source=imdb_source)
    assert len(x) == 25_000
    assert data.cache_path_for(imdb_source).exists()


def _small_corpus(imdb_source, root: Path, per_class: int = 5) -> dict[str, bytes]:
    """A few real reviews per split and label, in the official layout, as a folder."""
    files: dict[str, bytes] = {}
    counts: dict[tuple, int] = {}
    with tarfile.open(imdb_source) as archive:
        for member in archive:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or parts[2] not in ("pos", "neg"):
                continue
            key = (parts[1], parts[2])
            if counts.get(key, 0) < per_class:
                counts[key] = counts.get(key, 0) + 1
                files[member.name] = archive.extractfile(member).read()
            if len(counts) == 4 and all(v >= per_class for v in counts.values()):
                break
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return files


def test_folder_and_tarball_of_the_same_reviews_agree(imdb_source, tmp_path):
    files = _small_corpus(imdb_source, tmp_path / "folder")
    tar_path = tmp_path / "small.tar.gz"
    with tarfile.open(tar_path, "w:gz") as archive:
        for name in reversed(sorted(files)):  # member order must not matter
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            archive.addfile(info, io.BytesIO(files[name]))
    a = data.load_imdb(source=tmp_path / "folder" / "aclImdb", num_words=50)
    b = data.load_imdb(source=tar_path, num_words=50)
    assert [list(a[i][0]) for i in (0, 1)] == [list(b[i][0]) for i in (0, 1)]
    assert len(a[0][0]) == 10 and len(a[1][0]) == 10


def test_two_processes_building_the_cache_at_once_both_succeed(imdb_source, tmp_path):
    _small_corpus(imdb_source, tmp_path / "folder", per_class=40)
    cache = tmp_path / "cache"
    code = ("import sys; from grader.data import load_imdb; "
            "(x, y), _ = load_imdb(source=sys.argv[1]); print(len(x), sum(map(len, x)))")
    env = {"EX8_CACHE": str(cache), "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "folder")], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1] and outs[0].startswith("80 ")
    assert [p.name for p in cache.iterdir()] == [data.cache_path_for(tmp_path / "folder").name]


def test_padding_matches_keras(imdb_source):
    import keras

    (x, _), _ = data.load_imdb(num_words=5000, source=imdb_source)
    assert np.array_equal(data.pad_sequences_pre(x[:300], 500),
                          keras.utils.pad_sequences(x[:300], maxlen=500))
    padded, labels = data.load_imdb_padded(5000, 500, split="train", samples=300,
                                           source=imdb_source)
    assert np.array_equal(padded, keras.utils.pad_sequences(x[:300], maxlen=500))
    assert padded.dtype == np.int32 and labels.shape == (300,)


def test_subsets_are_the_full_encodings_first_reviews(imdb_source):
    """The evaluator encodes only the reviews it measures; they must be the notebook's."""
    (x_train, y_train), (x_test, y_test) = data.load_imdb(num_words=5000, source=imdb_source)
    subsets = data.load_imdb_subsets(5000, 500, {"test": 250, "train": None},
                                     source=imdb_source)
    assert np.array_equal(subsets["test"][0], data.pad_sequences_pre(x_test[:250], 500))
    assert np.array_equal(subsets["test"][1], y_test[:250])
    assert np.array_equal(subsets["train"][0], data.pad_sequences_pre(x_train, 500))
    assert np.array_equal(subsets["train"][1], y_train)
    with pytest.raises(ValueError, match="maxlen"):  # a filter needs every review
        data._encoded_splits({}, num_words=5000, skip_top=0, maxlen=100, seed=113,
                             start_char=1, oov_char=2, index_from=3, first={"test": 5})


def test_no_source_reachable_names_the_variable(monkeypatch):
    import keras

    monkeypatch.delenv("EX8_IMDB", raising=False)

    def offline(**_):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(DataSourceError, match="EX8_IMDB") as info:
        data.load_imdb()
    assert "download failed (Network is unreachable)" in str(info.value)
    assert_one_sentence(str(info.value))


@pytest.mark.parametrize("make, words", [
    (lambda p: p, "does not exist"),
    (lambda p: (p.mkdir(), p)[1], "no train/"),
    (lambda p: (p.write_text("hello"), p)[1], "neither imdb.npz"),
])
def test_bad_sources_say_what_is_wrong(tmp_path, make, words):
    path = make(tmp_path / "src")
    with pytest.raises(DataSourceError, match=words):
        data.load_imdb(source=path)


def test_the_kernels_view_holds_no_held_out_review(imdb_source):
    """The grader measures on reviews no notebook can load: the kernel's view is the source
    without them, every training review and the rest of the test split, with the same words."""
    view = heldout.ensure_view(imdb_source, count=10_000, seed=20260)
    assert data.resolve_source(view).kind == "view"
    (x_train, _), (x_test, y_test) = data.load_imdb(num_words=5000, source=view)
    (full_train, _), _ = data.load_imdb(num_words=5000, source=imdb_source)
    assert len(x_train) == 25_000 and len(x_test) == 15_000
    assert [list(x) for x in x_train[:50]] == [list(x) for x in full_train[:50]]
    assert data.get_word_index(view) == data.get_word_index(imdb_source)
    held, labels = heldout.load_held_out(5000, 500, 10_000, count=10_000, seed=20260,
                                         source=imdb_source)
    assert held.shape == (10_000, 500) and 0.45 < labels.mean() < 0.55
    visible = {tuple(row) for row in data.pad_sequences_pre(np.concatenate([x_train, x_test]),
                                                             500)}
    assert not visible & {tuple(row) for row in held}  # not one text, nor a twin of one
    assert heldout.ensure_view(imdb_source, count=10_000, seed=20260) == view  # written once
    with pytest.raises(DataSourceError, match="is a kernel's view"):
        heldout.ensure_view(view, count=10_000, seed=20260)


def test_held_out_reviews_are_a_seeded_sample_without_twins(imdb_source):
    arrays = data._load_arrays(imdb_source)
    first = heldout.held_out(arrays, 10_000, 1)
    assert np.array_equal(first, heldout.held_out(arrays, 10_000, 1))
    assert not np.array_equal(first[:100], heldout.held_out(arrays, 10_000, 2)[:100])
    assert len(set(first.tolist())) == 10_000
    assert not heldout._twins(arrays)["test"][first].any()
    with pytest.raises(DataSourceError, match="holding out 25000"):
        heldout.held_out(arrays, 25_000, 1)
