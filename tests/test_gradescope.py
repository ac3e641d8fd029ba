"""The Gradescope autograder bundle: built, unpacked into a root laid out as Gradescope's,
run there on the reference, and its results.json checked against Gradescope's documented
format (a JSON Schema written from its "Autograder Specifications")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from grader import cli
from grader.export import gradescope
from grader.export.gradescope import build_bundle, find_submission
from grader.results import (CheckResult, MigrationHint, SubmissionResult, TaskResult,
                            to_gradescope)
from grader.rubric import default_rubric_path, load_rubric

from .conftest import REFERENCE_NB, assert_one_sentence

SCHEMA = json.loads((Path(__file__).parent / "fixtures" /
                     "gradescope_results.schema.json").read_text())
SCRIPTS = Path(gradescope.__file__).parent / "autograder"


def _valid(results: dict) -> dict:
    jsonschema.validate(results, SCHEMA)
    return results


def _unpack(bundle: Path, root: Path) -> Path:
    """The bundle as Gradescope lays it out: its contents in source/, run_autograder copied to
    the root (modes kept, as the zip records them), and empty submission/ and results/."""
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
        for info in zf.infolist():
            if info.external_attr >> 16:
                os.chmod(root / "source" / info.filename, (info.external_attr >> 16) & 0o777)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def _run_autograder(root: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run([str(root / "run_autograder")], cwd=root, capture_output=True,
                          text=True, timeout=900,
                          env={**os.environ, "EX8_AUTOGRADER_ROOT": str(root),
                               "EX8_PYTHON": sys.executable, **env})


@pytest.mark.slow
@pytest.mark.kernel
def test_the_bundle_grades_the_reference_in_a_gradescope_root(tmp_path, imdb_source):
    bundle = build_bundle(tmp_path / "autograder.zip", profile="structure", data=imdb_source)
    with zipfile.ZipFile(bundle.out) as zf:
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
        assert modes["setup.sh"] == modes["run_autograder"] == 0o755
        assert zf.read("rubric.yaml") == default_rubric_path().read_bytes()
        assert json.loads(zf.read("ex8-autograder.json")) == {
            "profile": "structure", "rubric": "rubric.yaml", "timeout": 900,
            "data": f"data/{imdb_source.name}"}
        assert zf.getinfo(f"data/{imdb_source.name}").file_size == imdb_source.stat().st_size
    root = _unpack(bundle.out, tmp_path / "autograder")
    shutil.copy(REFERENCE_NB, root / "submission" / "ex8.ipynb")
    (root / "submission" / "__MACOSX").mkdir()  # what a zip made on a Mac adds
    (root / "submission" / "__MACOSX" / "._ex8.ipynb").write_bytes(b"\0\5\26\7")

    done = _run_autograder(root)
    assert done.returncode == 0, done.stderr[-3000:]
    results = _valid(json.loads((root / "results" / "results.json").read_text()))

    manual = [(t.id, c.id) for t in load_rubric().tasks for c in t.checks
              if c.check == "manual"]
    tests = results["tests"]
    assert tests and {t["output_format"] for t in tests} == {"text"}
    for t in tests:  # a written answer to be marked is no test: neither passed nor failed
        assert (t["extra_data"]["task"], t["extra_data"]["check"]) not in manual, t
        assert (t["score"], t["status"]) == (t["max_score"], "passed"), t
    assert results["score"] == sum(t["score"] for t in tests)
    assert results["score"] == bundle.automatic + bundle.bonus
    assert results["stdout_visibility"] == "hidden"
    waiting = results["extra_data"].pop("to_be_marked")
    assert [(e["task"], e["check"], e["max_score"]) for e in waiting] == \
        [(task, check, 2) for task, check in manual]
    assert results["output"].startswith(f"Written answers to be marked by a TA "
                                        f"({bundle.manual:g} points, not in this score yet):")
    assert results["extra_data"] == {"profile": "structure", "submission": "ex8.ipynb"}
    assert (root / "graded" / "feedback.html").is_file()


@pytest.mark.parametrize("files, words", [
    ([], "The submission holds no files: no notebook"),
    (["notes.txt"], "The submission holds only notes.txt: no notebook"),
    (["a.ipynb", "drafts/b.ipynb"], "The submission holds 2 .ipynb files (a.ipynb, "
                                    "drafts/b.ipynb) and none alone is named for Exercise 8"),
])
def test_no_or_several_notebooks_give_zero_and_a_sentence(tmp_path, monkeypatch, files, words):
    monkeypatch.setenv("EX8_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    (root / "source" / gradescope.CONFIG).write_text(json.dumps(
        {"profile": "quick", "rubric": "rubric.yaml", "timeout": 1800, "data": None}))
    for name in files:
        (root / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / name).write_text("{}")
    (root / "submission").mkdir(exist_ok=True)

    assert gradescope.run(root) == 0
    results = _valid(json.loads((root / "results" / "results.json").read_text()))
    assert results["score"] == 0 and results["tests"] == []
    assert results["output"].startswith(f"Could not grade: {words}")
    assert results["output_format"] == "text"
    assert_one_sentence(results["output"].removeprefix("Could not grade: "))


@pytest.mark.parametrize("files, chosen", [
    (["ex8.ipynb", "scratch.ipynb", "utils.py"], "ex8.ipynb"),
    (["my work.ipynb", "helpers.py"], "my work.ipynb"),
    (["repo/exercise8.py", "repo/setup.py"], "repo/exercise8.py"),
    (["ex8.ipynb", ".ipynb_checkpoints/ex8-checkpoint.ipynb", ".hidden/x.ipynb"], "ex8.ipynb"),
])
def test_the_one_notebook_or_the_one_named_for_ex8_is_graded(tmp_path, files, chosen):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    assert find_submission(tmp_path) == tmp_path / chosen


def test_run_autograder_writes_results_json_when_the_grader_cannot_start(tmp_path):
    root = tmp_path / "autograder"
    shutil.copytree(SCRIPTS, root / "source")
    shutil.copy2(SCRIPTS / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    done = _run_autograder(root, EX8_PYTHON=str(tmp_path / "no-such-python"))
    assert done.returncode == 127
    results = _valid(json.loads((root / "results" / "results.json").read_text()))
    assert results == {"score": 0, "output": "The autograder failed before it could grade "
                       "(exit code 127); the course staff can see why in its output.",
                       "output_format": "text", "tests": []}


def test_the_scripts_pass_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck; .ci/run does)")
    done = subprocess.run(["shellcheck", "--shell=bash", "--severity=style",
                           str(SCRIPTS / "setup.sh"), str(SCRIPTS / "run_autograder")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_every_gradescope_output_is_plain_text_so_hints_keep_their_indentation():
    check = CheckResult(task="task1", check="layers", kind="layers", name="Task 1: layers",
                        score=0, max_score=6, status="failed", message="found <LSTM(64)>",
                        hint="use 128 units")
    hint = MigrationHint(rule="predict_classes", cell=12, line=3, task="task1",
                         code="y = model.predict_classes(x)", message="gone in Keras 3",
                         fix="y = (model.predict(x) > 0.5)\n    .astype(int)")
    result = SubmissionResult(submission="ex8.ipynb", profile="quick", status="graded",
                              tasks=(TaskResult("task1", "Task 1", (check,)),), hints=(hint,),
                              kernel="the kernel died in cell 14")
    out = _valid(to_gradescope(result))
    assert out["output_format"] == "text" and out["tests"][0]["output_format"] == "text"
    assert "\n  Keras 3: y = (model.predict(x) > 0.5)\n               .astype(int)" in out["output"]
    assert "output_format" not in to_gradescope(SubmissionResult(
        submission="ex8.ipynb", profile="quick", status="graded"))


def test_the_bundled_source_builds_a_wheel_with_the_package_data(tmp_path):
    bundle = build_bundle(tmp_path / "autograder.zip", profile="quick")
    assert bundle.data is None and bundle.timeout == gradescope.DEFAULT_TIMEOUT
    with zipfile.ZipFile(bundle.out) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "source")
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path / "wheel"),
                           str(tmp_path / "source" / "ex8-grader")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = (tmp_path / "wheel").glob("ex8_grader-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        inside = set(zf.namelist())
    assert {"grader/export/autograder/run_autograder", "grader/export/autograder/setup.sh",
            "grader/export/gradescope.py", "grader/rubric.schema.json", "rubrics/ex8.yaml",
            "grader/report/templates/feedback.html.j2",
            "reference/ex8_solution.ipynb"} <= inside


def test_points_printed_for_gradescope_settings_come_from_the_rubric(tmp_path, capsys):
    rub = load_rubric()
    manual = sum(c.points for t in rub.tasks for c in t.checks
                 if c.check == "manual" and c.applies_to("quick"))
    bonus = sum(c.points for c in rub.task("bonus").checks if c.applies_to("quick"))
    everything = sum(c.points for t in rub.tasks for c in t.checks if c.applies_to("quick"))
    code = cli.main(["gradescope", "--out", str(tmp_path / "ag.zip"), "--timeout", "1200"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"Autograder Points {everything - manual - bonus:g};" in out
    assert f"the written answers ({manual:g} points)" in out
    assert f"the bonus's {bonus:g} points count as extra credit" in out
    assert "each submission stops after 1200 s" in out


def test_gradescope_arguments_reach_build_bundle(monkeypatch, tmp_path):
    seen = {}

    def fake(out, **kwargs):
        seen.update(kwargs, out=out)
        return gradescope.BundleSummary(out=out, profile="structure", timeout=60.0,
                                        automatic=1, manual=2, bonus=3, data=None)

    monkeypatch.setattr(gradescope, "build_bundle", fake)
    assert cli.main(["gradescope", "--out", "x.zip", "--profile", "structure", "--rubric",
                     "r.yaml", "--data", "imdb.npz", "--timeout", "60"]) == 0
    assert seen == {"out": Path("x.zip"), "profile": "structure", "rubric": Path("r.yaml"),
                    "data": "imdb.npz", "timeout": 60.0}


def test_a_timeout_gradescope_would_cut_short_is_refused(tmp_path, capsys):
    code = cli.main(["gradescope", "--out", str(tmp_path / "ag.zip"), "--timeout", "2400"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not (tmp_path / "ag.zip").exists()
    assert err.startswith("grade: A timeout of 2400 s leaves no time to report within "
                          "Gradescope's 40 minutes")
    assert_one_sentence(err.removeprefix("grade: "))


def test_a_missing_data_source_is_refused_before_writing(tmp_path, capsys):
    code = cli.main(["gradescope", "--out", str(tmp_path / "ag.zip"), "--data",
                     str(tmp_path / "nowhere.tar.gz")])
    assert code == 2 and not (tmp_path / "ag.zip").exists()
    assert "nowhere.tar.gz" in capsys.readouterr().err
