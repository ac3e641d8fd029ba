"""The `grade` command: arguments reach the pipeline; bad input is exit 2 and one sentence."""

from __future__ import annotations

import json
import re
import os
import stat
import threading
from pathlib import Path

import nbformat
import pytest

from grader import cli, pipeline
from grader.results import SubmissionResult

from .conftest import ROOT, assert_one_sentence


def test_arguments_reach_grade_submission(monkeypatch, tmp_path, capsys):
    seen = {}

    def fake(path, **kwargs):
        seen.update(kwargs, path=path)
        return SubmissionResult(submission=str(path), profile=kwargs["profile"],
                                status="graded")

    monkeypatch.setattr(pipeline, "grade_submission", fake)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub.ipynb").write_text("{}")  # a path that does not exist never gets this far
    code = cli.main(["sub.ipynb", "--profile", "structure", "--rubric", "r.yaml", "--out",
                     str(tmp_path), "--data", "imdb.npz", "--timeout", "99",
                     "--cell-timeout", "7"])
    assert code == 0
    assert seen == {"path": Path("sub.ipynb"), "profile": "structure", "rubric": Path("r.yaml"),
                    "out": tmp_path, "data": "imdb.npz", "timeout": 99.0, "cell_timeout": 7.0}


def test_defaults(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.py").write_text("")
    monkeypatch.setattr(pipeline, "grade_submission", lambda path, **kw: seen.update(kw) or
                        SubmissionResult(submission=str(path), profile="quick", status="graded"))
    cli.main(["x.py"])
    assert seen == {"profile": "quick", "rubric": None, "out": None, "data": None,
                    "timeout": None, "cell_timeout": None}


def _write(path: Path, content) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


V3 = json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {},
                 "worksheets": [{"cells": []}]})


@pytest.mark.parametrize("name, content, words", [
    ("not_json.ipynb", "{this is not json", "not valid JSON"),
    ("old_format.ipynb", V3, "nbformat v3"),
    ("empty.ipynb", "", "is empty"),
    ("binary.ipynb", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
    ("broken.py", "def f(:\n    pass\n", "does not compile: line 1"),
    ("latin1.py", "x = '\xe9'\n".encode("latin-1"), "not UTF-8"),
    ("notes.txt", "hello", "neither a notebook"),
    ("no_cells.ipynb", json.dumps({"nbformat": 4, "metadata": {}}), "not a Jupyter notebook"),
    ("bad_cell.ipynb", json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                   "cells": [{"cell_type": "code"}]}), "not a valid"),
])
def test_malformed_input_is_exit_2_with_one_sentence(tmp_path, capsys, name, content, words):
    path = _write(tmp_path / name, content)
    code = cli.main([str(path), "--profile", "structure", "--out", str(tmp_path / "out")])
    printed = capsys.readouterr()
    err = printed.err.strip()
    assert code == 2
    assert err.startswith("grade: ") and str(path) in err and words in err
    assert_one_sentence(err.removeprefix("grade: "))
    # a report is still written, saying why the submission could not be graded
    assert json.loads((tmp_path / "out" / "results.json").read_text())["score"] == 0
    page = tmp_path / "out" / "feedback.html"
    assert printed.out == f"feedback: {page}\n" and words in page.read_text()


def test_missing_file(tmp_path, capsys):
    code = cli.main([str(tmp_path / "nope.ipynb"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "does not exist" in err
    assert_one_sentence(err.removeprefix("grade: "))


@pytest.mark.parametrize("arg", ["nosuch.ipynb", "nosuchdir/"])
def test_a_path_that_does_not_exist_writes_nothing(tmp_path, monkeypatch, capsys, arg):
    monkeypatch.chdir(tmp_path)
    assert cli.main([arg, "--profile", "structure"]) == 2
    assert capsys.readouterr().err == f"grade: {arg.rstrip('/')} does not exist.\n"
    assert list(tmp_path.iterdir()) == []  # no nosuch_graded/ with a report in it


def _in_time(func, seconds: float = 20.0):
    """``func()`` in a thread: a read that blocks fails the test instead of hanging it."""
    done = {}
    thread = threading.Thread(target=lambda: done.update(value=func()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "it hung"
    return done["value"]


@pytest.mark.parametrize("make, what", [
    (lambda p: p.symlink_to("/dev/zero"), "a character device"),
    (lambda p: os.mknod(p, stat.S_IFCHR | 0o600, os.makedev(1, 5)), "a character device"),
    (os.mkfifo, "a FIFO"),
])
def test_a_link_to_dev_zero_a_fifo_or_a_device_is_exit_2_naming_the_file(tmp_path, capsys,
                                                                          make, what):
    path = tmp_path / "zero_ex8.py"
    make(path)
    code = _in_time(lambda: cli.main([str(path), "--out", str(tmp_path / "out")]))
    err = capsys.readouterr().err
    assert code == 2 and err == f"grade: {path} is {what}, not a submission file.\n"
    assert_one_sentence(err.strip().removeprefix("grade: "))


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_every_report_gets_the_mode_the_umask_gives(tmp_path, capsys, umask, mode):
    path = _write(tmp_path / "not_json.ipynb", "{this is not json")
    before = os.umask(umask)
    try:
        code = cli.main([str(path), "--out", str(tmp_path / "out")])
    finally:
        os.umask(before)
    assert code == 2
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "out").iterdir()}
    assert modes == dict.fromkeys((".ex8-grader", "results.json", "result.json",
                                   "feedback.html"), mode)


@pytest.mark.parametrize("files, words", [
    ((), "it is empty"),
    (("ex8.ipynb", "grades.csv"), "ex8.ipynb: the name does not say whose it is"),
])
def test_a_folder_with_nothing_to_grade_is_exit_2(tmp_path, capsys, files, words):
    folder = tmp_path / "subs"
    folder.mkdir()
    for name in files:
        (folder / name).write_text("{}")
    code = cli.main([str(folder), "--profile", "structure", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and str(folder) in err and words in err
    assert ("(and 1 more skipped)" in err) == (len(files) == 2)
    assert_one_sentence(err.removeprefix("grade: "))
    assert not (tmp_path / "out").exists()  # refused before anything is written


@pytest.mark.data  # a batch looks for its data source first
@pytest.mark.parametrize("batch", [False, True])
def test_an_output_folder_that_cannot_be_made_is_exit_2(tmp_path, capsys, batch):
    nb = tmp_path / "subs" / "alice_ex8.ipynb"
    nb.parent.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), nb)
    blocker = _write(tmp_path / "a_file", "not a folder")
    out = blocker / "out"
    code = cli.main([str(nb.parent if batch else nb), "--profile", "structure", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and f"The output folder {out} cannot be created (Not a directory)" in err
    assert_one_sentence(err.removeprefix("grade: "))


@pytest.mark.data  # a batch looks for its data source first
@pytest.mark.parametrize("batch, planted", [(False, "work/thesis.tex"), (True, "index.html")])
def test_an_output_folder_with_someone_elses_files_is_refused(tmp_path, capsys, batch, planted):
    # the grader replaces work/ and its reports in its output folder: `--out .` in a project
    # folder must not delete the project's own work/ (nor a batch its index.html)
    nb = tmp_path / "subs" / "alice_ex8.ipynb"
    nb.parent.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), nb)
    out = tmp_path / "project"
    kept = out / planted
    kept.parent.mkdir(parents=True)
    kept.write_text("years of it")
    _write(out / "notes.txt", "other files are no reason to refuse")
    code = cli.main([str(nb.parent if batch else nb), "--profile", "structure", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    first = planted.split("/")[0]
    assert code == 2 and f"The output folder {out} already holds {first}, which the grader" in err
    assert_one_sentence(err.removeprefix("grade: "))
    assert kept.read_text() == "years of it"
    assert sorted(p.name for p in out.iterdir()) == sorted([first, "notes.txt"])


def test_grade_dot_puts_the_batch_beside_the_folder(tmp_path, monkeypatch):
    from grader.batch import default_out

    (tmp_path / "subs").mkdir()
    monkeypatch.chdir(tmp_path / "subs")
    # not "_graded" inside the submissions folder, as Path(".").name is ""
    assert default_out(Path(".")) == tmp_path / "subs_graded"
    assert default_out(Path("../subs/")) == tmp_path / "subs_graded"


def test_a_failure_of_the_grader_itself_is_exit_3_with_its_traceback(tmp_path, monkeypatch,
                                                                     capsys):
    def broken(path, **kw):
        raise RuntimeError("an unforeseen bug")

    monkeypatch.setattr(pipeline, "grade_submission", broken)
    (tmp_path / "x.ipynb").write_text("{}")
    assert cli.main([str(tmp_path / "x.ipynb")]) == cli.EXIT_GRADER_FAILED == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError: an unforeseen bug" in err
    assert err.strip().splitlines()[-1].startswith("grade: the grader itself failed")


def test_broken_rubric_is_exit_2(tmp_path, capsys):
    nb = tmp_path / "ok.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), nb)
    rubric = _write(tmp_path / "rubric.yaml", "schema_version: 1\ntasks: 3\n")
    code = cli.main([str(nb), "--rubric", str(rubric)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and str(rubric) in err
    assert_one_sentence(err.removeprefix("grade: "))


@pytest.mark.parametrize("args, words", [
    (["--timeout", "-5"], "argument --timeout: -5 is not above zero"),
    (["--cell-timeout", "0"], "argument --cell-timeout: 0 is not above zero"),
    (["--workers", "0"], "argument --workers: 0 is not above zero"),
    (["--threads", "1.5"], "argument --threads: '1.5' is not a whole number"),
])
def test_limits_and_counts_must_be_above_zero(capsys, args, words):
    with pytest.raises(SystemExit) as info:
        cli.main(["subs", *args])
    assert info.value.code == 2 and words in capsys.readouterr().err


def test_unknown_profile_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["x.ipynb", "--profile", "fast"])
    assert info.value.code == 2


def test_no_data_source_is_one_sentence_without_tensorflows_notices(tmp_path):
    """No EX8_IMDB and no network: Keras' download is tried (it brings TensorFlow, whose
    libraries print notices below Python's logging), then one sentence and exit 2."""
    import os
    import subprocess
    import sys

    from .conftest import REFERENCE_NB, ROOT

    env = {k: v for k, v in os.environ.items() if k not in ("EX8_IMDB", "TF_CPP_MIN_LOG_LEVEL")}
    env.update(EX8_CACHE=str(tmp_path / "cache"), KERAS_HOME=str(tmp_path / "keras"),
               HTTPS_PROXY="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    done = subprocess.run([sys.executable, "-m", "grader.cli", str(REFERENCE_NB), "--profile",
                           "structure", "--out", str(tmp_path / "out")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    err = done.stderr.strip()
    assert done.returncode == 2, err
    assert err.startswith("grade: No IMDB source is reachable: Keras' download failed ("), err
    assert "EX8_IMDB" in err and "\n" not in err  # nothing else: no abseil or oneDNN notices
    assert_one_sentence(err.removeprefix("grade: "))


def test_help_lists_every_command_and_says_what_readme_says(capsys):
    """`grade --help` names every subcommand (README's table of commands says the same), and
    the profiles' times are README's."""
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    readme = " ".join((ROOT / "README.md").read_text().replace("`", "").split())
    for usage, what in cli.COMMANDS:
        assert f"{usage} {what}" in out, usage
        assert f"| {usage} | {what}" in readme, usage
    for command in ("rescore", "mark", "gradescope", "export"):
        assert f"grade {command}" in out
        with pytest.raises(SystemExit):  # each has its own --help
            cli.main([command, "--help"])
    assert "structure (builders and a token training run: about a minute)" in out
    assert "| structure |" in readme and "about a minute |" in readme
    assert "seconds)" not in out


@pytest.mark.parametrize("name, content, words", [
    ("unterminated.ipynb", '{"cells": ["unterminated', "unterminated string starting at line 1"),
    ("perhaps.py", "print(1 2)\n", "does not compile: line 1: invalid syntax"),
])
def test_an_error_sentence_ends_where_the_sentence_ends(tmp_path, capsys, name, content, words):
    """A message built from an exception's text: never cut mid-sentence ("starting at)"),
    never ".." or "?." at its end."""
    path = _write(tmp_path / name, content)
    assert cli.main([str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().removeprefix("grade: ")
    assert words in err, err
    assert_one_sentence(err)
    assert not re.search(r"[.?!]\.$|\(\)|at\)", err), err


def test_exception_text_becomes_a_clause_of_our_sentence():
    from grader.errors import quoted

    assert quoted("invalid syntax. Perhaps you forgot a comma?") == \
        "invalid syntax; Perhaps you forgot a comma"
    assert quoted("Kernel died before replying.\n") == "Kernel died before replying"
    cut = quoted("word " * 100, 40)
    assert len(cut) <= 40 and cut.endswith("word...")


@pytest.mark.kernel
def test_a_graded_notebook_leaves_nothing_on_stderr_at_exit(tmp_path):
    """`grade` as a student runs it: after the summary, nothing more (nbclient's clean-up at
    exit, once a grading has cleaned its kernel up, raised "Exception ignored in atexit
    callback" with a traceback)."""
    import subprocess
    import sys

    import nbformat

    from .conftest import ROOT

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "tiny_ex8.ipynb"
    nbformat.write(nb, path)
    done = subprocess.run([sys.executable, "-m", "grader.cli", str(path), "--profile",
                           "structure", "--out", str(tmp_path / "out")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr  # graded, points lost
    assert "tiny_ex8.ipynb: 0 / " in done.stdout, done.stdout
    assert done.stderr == "", done.stderr
