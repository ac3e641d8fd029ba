"""Nothing a submission or its kernel writes can crash, exhaust or mislead the grader.

The validating readers (``grader.readers``), the tree walker (``grader.fstree``), the
submission reader and the migration scan, on hostile input made here: deep JSON, deep
expressions, a deflate bomb, links, FIFOs, folder trees a thousand deep, histories of strings.
Then a fuzz test over notebook shapes, Python sources and harvest files, and one real grading
whose kernel floods the grader with output and a movie bomb, with the grader's peak memory
measured and bounded.
"""

from __future__ import annotations

import io
import json
import os
import threading
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader import cli
from grader.checks import TaskContext
from grader.errors import InputError
from grader.execute import MAX_OUTPUT_BYTES, MAX_TOTAL_OUTPUT_BYTES, _CappedClient
from grader.fstree import chown_tree, remove_tree
from grader.migration import scan_source
from grader.pipeline import check_all
from grader.readers import Unreadable, clean_history, read_harvest, read_json, read_npz
from grader.report.plots import history_plot
from grader.rubric import load_rubric
from grader.submission import read_submission

from .conftest import assert_one_sentence

RUBRIC = load_rubric()
TASK_IDS = [t.id for t in RUBRIC.tasks]
DEEP_EXPRESSION = "_x = " + "-" * 3000 + "1\n"


# --------------------------------------------------------------------------- readers


def test_a_harvest_nested_100000_deep_is_refused_with_a_reason(tmp_path):
    path = tmp_path / "harvest.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(Unreadable, match="harvest.json is nested too deeply"):
        read_harvest(path, TASK_IDS)


def test_json_deeper_than_the_bound_is_refused(tmp_path):
    path = tmp_path / "harvest.json"
    path.write_text(json.dumps({"tasks": {"a": "[" * 25 + "1" + "]" * 25}}).replace('"[', "[")
                    .replace(']"', "]"))
    with pytest.raises(Unreadable, match="nested more than 20 levels deep"):
        read_json(path, limit=1 << 20)


@pytest.mark.parametrize("make, why", [
    (lambda p: p.symlink_to("/etc/passwd"), "cannot be opened"),
    (lambda p: os.mkfifo(p), "not a regular file"),
    (lambda p: p.write_bytes(b"{" + b" " * (9 << 20) + b"}"), "larger than 8 MB"),
    (lambda p: p.write_bytes(b"\xff\xfe"), "not UTF-8"),
    (lambda p: p.write_text("[1, 2]"), "not the grader's harvest"),
])
def test_harvest_files_that_are_not_one_are_refused(tmp_path, make, why):
    path = tmp_path / "harvest.json"
    make(path)
    with pytest.raises(Unreadable, match=why):
        read_harvest(path, TASK_IDS)


def test_a_harvest_keeps_only_what_the_checks_read_in_their_types(tmp_path):
    path = tmp_path / "harvest.json"
    path.write_text(json.dumps({"tasks": {
        "task1": {"builder": {"status": "ok", "extra": "x" * 10},
                  "model": {"status": "<script>", "error": 5},
                  "history": {"status": "ok", "history": {
                      "loss": ["0.5", 0.4, None, True, 1e400], "accuracy": "high", "7": [1]}}},
        "planted": {"builder": {"status": "ok"}}},
        "namespace": {"functions": ["build_x", 3, "y" * 5000], "models": [{"name": 1}],
                      "movies": {"status": "ok"}}}))
    harvest = read_harvest(path, TASK_IDS)
    assert harvest["tasks"] == {"task1": {
        "builder": {"status": "ok"}, "model": {"status": "missing"},
        "history": {"status": "ok", "history": {"loss": [None, 0.4, None, None, None],
                                                "7": [1.0]}}}}
    assert harvest["namespace"]["functions"] == ["build_x", "y" * 200]
    assert harvest["namespace"]["models"] == []


def test_a_history_of_strings_is_cleaned_and_drawn():
    history = clean_history({"loss": ["0.7", "0.5"], "val_loss": [0.6, float("nan")]})
    assert history == {"loss": [None, None], "val_loss": [0.6, None]}
    assert history_plot({"loss": [0.7, None, 0.5], "val_loss": [0.6, None]}).startswith(
        "data:image/png;base64,")


def _bomb(path: Path, shape=(3, 10, 40, 40, 1), stream_bytes=0, declared=None):
    """An .npz whose members declare ``declared`` (or the real shape) and hold ``stream_bytes``
    of zeros beyond the header, deflated."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("noisy", "shifted"):
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {
                "descr": "<f4", "fortran_order": False, "shape": declared or shape})
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                member.write(header.getvalue())
                chunk = bytes(16 << 20)
                left = stream_bytes or int(np.prod(shape)) * 4
                while left > 0:
                    member.write(chunk[:left])
                    left -= len(chunk)


def test_a_deflate_bomb_is_refused_from_its_header_without_inflating(tmp_path):
    import psutil

    path = tmp_path / "movies.npz"
    _bomb(path, declared=(3 << 30,), stream_bytes=256 << 20)
    assert path.stat().st_size < 2 << 20
    before = psutil.Process().memory_info().rss
    with pytest.raises(Unreadable, match="noisy would unpack to 12288 MB"):
        read_npz(path, ("noisy", "shifted"), max_bytes=1 << 20)
    assert psutil.Process().memory_info().rss - before < 50 << 20


def test_a_bomb_behind_a_small_header_inflates_only_what_the_header_says(tmp_path):
    path = tmp_path / "movies.npz"
    _bomb(path, stream_bytes=256 << 20)  # the header says 192 KB; the stream goes on
    arrays = read_npz(path, ("noisy", "shifted"), max_bytes=1 << 20)
    assert arrays["noisy"].shape == (3, 10, 40, 40, 1) and not arrays["shifted"].any()


def test_an_object_array_is_refused(tmp_path):
    path = tmp_path / "movies.npz"
    np.savez(path, noisy=np.array([{"a": 1}], dtype=object), shifted=np.zeros(3))
    with pytest.raises(Unreadable, match="holds object, not numbers"):
        read_npz(path, ("noisy", "shifted"), max_bytes=1 << 20)


# --------------------------------------------------------------------------- folder trees


def _deep_tree(top: Path, depth: int, name: str) -> Path:
    """A chain of ``depth`` folders, built relative to each other (the whole path is longer
    than the system allows); a file at the bottom."""
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir(name, dir_fd=fd)
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(os.open("bottom.bin", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    os.close(fd)
    return top


def test_a_tree_1100_deep_with_long_names_is_chowned_and_removed(tmp_path):
    top = _deep_tree(tmp_path / "work", 1100, "d" * 200)  # 220 KB of path
    outside = tmp_path / "outside.txt"
    outside.write_text("not the kernel's")
    os.symlink(outside, top / "link")
    uid = os.getuid()
    chown_tree(top, uid + 1 if uid == 0 else uid, os.getgid())
    if uid == 0:  # the link was given away, not its target
        assert os.lstat(top / "link").st_uid == 1 and outside.stat().st_uid == 0
    remove_tree(top)
    assert not top.exists() and outside.read_text() == "not the kernel's"
    remove_tree(top)  # already gone: nothing to do


# --------------------------------------------------------------------------- submissions


def test_a_module_nested_too_deeply_is_exit_2_with_a_sentence(tmp_path, capsys):
    path = tmp_path / "deep_ex8.py"
    path.write_text(DEEP_EXPRESSION)
    with pytest.raises(InputError, match="does not compile: an expression is nested too deeply"):
        read_submission(path)
    assert cli.main([str(path), "--profile", "structure"]) == 2
    err = capsys.readouterr().err.strip().removeprefix("grade: ")
    assert_one_sentence(err)
    assert not (tmp_path / "deep_ex8_graded").exists() or "Traceback" not in err


def test_a_notebook_nested_50000_deep_is_exit_2(tmp_path):
    nb = nbformat.v4.new_notebook()
    text = nbformat.writes(nb).replace('"metadata": {}', '"metadata": {"x": '
                                       + "[" * 50_000 + "]" * 50_000 + "}", 1)
    path = tmp_path / "deep.ipynb"
    path.write_text(text)
    with pytest.raises(InputError, match="nested too deeply"):
        read_submission(path)
    path.write_text(nbformat.writes(nb).replace('"metadata": {}', '"metadata": {"x": '
                                                + "[" * 500 + "]" * 500 + "}", 1))
    with pytest.raises(InputError, match="nested more than 64 levels deep"):
        read_submission(path)


def test_a_json_error_is_one_whole_sentence(tmp_path):
    path = tmp_path / "cut.ipynb"
    path.write_text('{"cells": ["unterminated')
    with pytest.raises(InputError) as info:
        read_submission(path)
    assert str(info.value) == (f"{path} is not a notebook: not valid JSON (unterminated string "
                               "starting at line 1, column 12).")


def test_the_migration_scan_survives_deep_expressions():
    for source in (DEEP_EXPRESSION, "%%writefile x.py\n" + DEEP_EXPRESSION,
                   "print 'x'\n" + DEEP_EXPRESSION, "(" * 5000 + ")" * 5000):
        assert isinstance(scan_source(source), list)


# --------------------------------------------------------------------------- output caps


def _message(msg_type: str, size: int, **content) -> dict:
    if msg_type == "stream":
        content = {"name": "stdout", "text": "x" * size, **content}
    else:
        content = {"data": {"text/plain": "x" * size}, "metadata": {}, **content}
    return {"msg_type": msg_type, "header": {"msg_type": msg_type}, "parent_header": {},
            "content": content}


def test_display_updates_and_many_cells_stay_within_the_caps():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("") for _ in range(40)]
    client = _CappedClient(nb)
    client.reset_execution_trackers()  # what nbclient does before a run ...
    client.clear_before_next_output = False  # ... and before each cell
    for cell in nb.cells:
        cell.metadata["execution"] = {}
    # one display shown 80 times, then updated with 15 MB: every copy would take it
    for _ in range(80):
        client.process_message(_message("display_data", 10, transient={"display_id": "d"}),
                               nb.cells[0], 0)
    client.process_message(_message("update_display_data", 15 << 20,
                                    transient={"display_id": "d"}), nb.cells[0], 0)
    assert sum(len(json.dumps(o)) for o in nb.cells[0].outputs) < MAX_OUTPUT_BYTES
    for i in range(1, 40):  # 39 cells of a megabyte and a half each
        client.process_message(_message("stream", 3 << 19), nb.cells[i], i)
    stored = sum(len(json.dumps(o)) for c in nb.cells for o in c.outputs)
    assert stored <= MAX_TOTAL_OUTPUT_BYTES + 64 * 1024
    assert "cut at 16 MB for the whole notebook" in nb.cells[-1].outputs[-1].text
    client.process_message({"msg_type": "comm_open", "header": {}, "parent_header": {},
                            "content": {"data": {"state": "x" * (1 << 20)}}}, nb.cells[1], 1)
    assert not getattr(client, "widget_state", {})


# --------------------------------------------------------------------------- fuzzing

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() |
                     st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) |
                     st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=30)
_keys = st.sampled_from(["status", "history", "error", "type", "file", "early", "loss",
                         "accuracy", "ok", "missing", "not_a_history", "builder", "model"])
_harvests = st.recursive(
    _json, lambda inner: st.dictionaries(_keys | st.sampled_from(TASK_IDS), inner, max_size=5),
    max_leaves=40).map(lambda tasks: {"tasks": tasks if isinstance(tasks, dict) else {},
                                      "namespace": tasks})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(harvest=_harvests)
def test_any_harvest_file_is_read_and_checked_without_a_crash(tmp_path_factory, harvest):
    path = tmp_path_factory.mktemp("h") / "harvest.json"
    path.write_text(json.dumps(harvest))
    try:
        clean = read_harvest(path, TASK_IDS)
    except Unreadable:
        return
    contexts = {t.id: TaskContext(task=t, profile=RUBRIC.profile("quick"), rubric=RUBRIC,
                                  harvest=clean["tasks"].get(t.id) or {},
                                  namespace=clean["namespace"]) for t in RUBRIC.tasks}
    results = check_all(RUBRIC, RUBRIC.profile("quick"), contexts)
    assert not [c.message for t in results for c in t.checks
                if "could not run this check" in c.message]


_cells = st.fixed_dictionaries({"cell_type": st.sampled_from(["code", "markdown", "raw", 3]),
                                "source": st.text(max_size=40) | st.lists(st.text(max_size=10)),
                                "metadata": _json})
_notebooks = st.fixed_dictionaries(
    {"nbformat": st.sampled_from([4, 4, 4, 3, "4"]), "nbformat_minor": st.integers(0, 6),
     "metadata": _json, "cells": st.lists(_cells | _json, max_size=4)})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nb=_notebooks | _json)
def test_any_notebook_json_is_read_or_refused_in_a_sentence(tmp_path_factory, nb):
    from grader.submission import prepare_notebook

    path = tmp_path_factory.mktemp("n") / "fuzz_ex8.ipynb"
    path.write_text(json.dumps(nb))
    try:
        sub = read_submission(path)
    except InputError as err:
        assert "\n" not in str(err) and str(err).endswith(".")
        return
    prepare_notebook(sub, {"EPOCHS": 1}, RUBRIC.tasks)


@settings(max_examples=200, deadline=None)
@given(source=st.text(max_size=200) | st.sampled_from([DEEP_EXPRESSION, "\0", "def f(:\n",
                                                        "x = '''", "(" * 300 + ")" * 300]))
def test_any_python_source_is_read_or_refused_in_a_sentence(tmp_path_factory, source):
    path = tmp_path_factory.mktemp("p") / "fuzz_ex8.py"
    path.write_text(source, encoding="utf-8", errors="surrogatepass") if "\ud800" not in \
        source else path.write_bytes(source.encode("utf-8", "replace"))
    try:
        read_submission(path)
    except InputError as err:
        assert "\n" not in str(err) and str(err).endswith(".")
    scan_source(source)


# --------------------------------------------------------------------------- one real run


FLOOD = '''
from IPython.display import display, HTML
handle = None
for _ in range(80):  # one display id, eighty copies: an update would rewrite them all
    handle = display(HTML("small"), display_id="flood")
handle.update(HTML("x" * (15 << 20)))
'''
MANY_CELLS = 'print("y" * (1 << 20))'
MOVIE_BOMB = '''
import io, zipfile
import numpy as np

def savez(path, **arrays):
    """The harvest's np.savez, replaced: members that declare 1 GiB each, deflated zeros."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in arrays:
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (1 << 28,)})
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                member.write(header.getvalue())
                for _ in range(64):
                    member.write(bytes(16 << 20))

np.savez = savez

def generate_movies(n_samples=1200, n_frames=15):
    return np.zeros((n_samples, n_frames, 40, 40, 1)), np.zeros((n_samples, n_frames, 40, 40, 1))
'''


@pytest.mark.kernel
def test_floods_and_bombs_keep_the_grader_under_a_gigabyte(tmp_path):
    """A kernel that sends 1.2 GB of display updates, 60 cells of a megabyte and a movie bomb:
    the grader's own process stays under 1 GB (measured), the checks fail with sentences, and
    the stored notebook stays within its caps."""
    import psutil

    from grader.pipeline import grade_submission

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("EPOCHS = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(FLOOD),
                *[nbformat.v4.new_code_cell(MANY_CELLS) for _ in range(60)],
                nbformat.v4.new_code_cell(MOVIE_BOMB)]
    path = tmp_path / "floods_ex8.ipynb"
    nbformat.write(nb, path)
    me, peak, done = psutil.Process(), [0], threading.Event()

    def watch():
        while not done.wait(0.05):
            peak[0] = max(peak[0], me.memory_info().rss)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = grade_submission(path, profile="structure", out=tmp_path / "out")
    finally:
        done.set()
        watcher.join()
    assert result.status == "graded", result.reason
    print(f"the grader's peak resident memory: {peak[0] >> 20} MB")  # pytest -s shows it
    assert peak[0] < 1 << 30, f"the grader peaked at {peak[0] >> 20} MB"
    movies = next(c for t in result.tasks for c in t.checks if c.check == "generate_movies")
    assert movies.message == ("Bonus: its output could not be read: noisy would unpack to "
                              "1024 MB.")
    assert (tmp_path / "out" / "executed.ipynb").stat().st_size < MAX_TOTAL_OUTPUT_BYTES + (2 << 20)
