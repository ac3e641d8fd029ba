"""The adversarial corpus: every attack graded with the honest score, the host untouched.

All of tests/adversarial/ is graded once per session (structure profile, one CPU and a small
memory and disk budget each, three at a time), beside a classmate's graded folder, sentinel
files, a TCP listener on the grader's loopback and a process of the grader's user. Then: each
attack's score and messages, nothing outside the work folders changed or read, no process and
no cgroup of any run left, and the slim base graded afterwards as if nothing had happened.
The attacks and what they met are written to ``summary.json`` beside the graded folders.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import nbformat
import pytest

from grader import sandbox
from grader.evaluator import UnsafeModelError, inspect_archive
from grader.execute import MAX_OUTPUT_BYTES, run_notebook
from grader.fstree import remove_tree
from grader.pipeline import grade_submission
from grader.rubric import load_rubric

from .adversarial import build
from .browser import visit

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(build.__file__).parent
LIMITS = sandbox.Limits(memory=2560 << 20, file_size=32 << 20, disk=128 << 20, tmpfs=64 << 20)
#: runs that must hang or idle are cut short; everything else has the profile's limits
OPTIONS = {
    "bag_of_words_models_trained_on_every_review_score_no_accuracy": {"profile": "quick"},
    "untrained_bonus_model_earns_no_learns_points": {"profile": "quick"},
    "model_too_slow_to_predict_fails_its_task_alone": {"model_seconds": 20},
    "sleeping_forever_is_stopped_by_the_cell_limit": {"cell_timeout": 60},
    "ignoring_interrupts_is_stopped_by_the_total_limit": {"timeout": 75, "cell_timeout": 600},
    "fork_bomb_is_contained": {"cell_timeout": 30},
}
#: first the ones that mostly wait, so that they overlap with the rest
ORDER = ["bag_of_words_models_trained_on_every_review_score_no_accuracy",
         "untrained_bonus_model_earns_no_learns_points",
         "ignoring_interrupts_is_stopped_by_the_total_limit",
         "sleeping_forever_is_stopped_by_the_cell_limit", "fork_bomb_is_contained"]
SLIM_SCORE = TRAINED_SCORE = 1.0  # the rnn parameter count (its history is information)
#: what the structural checks of a task give a compiled builder model of other layers: the
#: builder, the output shape and the compile settings
OTHER_LAYERS = 2.0 + 1.0 + 2.0
#: every structural check of a task whose builder is the exercise's (the bonus adds 2 for
#: predicting movies of the right shape)
STRUCTURE = 2.0 + 6.0 + 2.0 + 1.0 + 2.0


def _options(name: str) -> dict:
    """grade_submission's keyword arguments for an attack (a model budget: a rubric of its own,
    in memory: the grader supervises the budget, the evaluator never reads it)."""
    options = dict(OPTIONS.get(name, {}))
    seconds = options.pop("model_seconds", None)
    if seconds:
        rubric = load_rubric()
        profile = rubric.profiles["structure"]
        budget = replace(profile, evaluation=MappingProxyType(
            {**profile.evaluation, "model_seconds": seconds}))
        options["rubric"] = replace(rubric, profiles=MappingProxyType(
            {**rubric.profiles, "structure": budget}))
    return {"profile": "structure", **options}


def _attack_lines(nb) -> list[str]:
    lines = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            lines += [line for line in str(text).splitlines() if line.startswith("ex8-attack:")]
    return lines


def _tree(paths) -> list[Path]:
    return [p for top in map(Path, paths) for p in ([top, *top.rglob("*")] if top.is_dir()
                                                   else [top])]


def _stats(paths: list[Path]) -> dict[str, tuple]:
    """Size, mtime and atime of each path, without reading or listing any: a read moves the
    atime of a file or folder whose atime is older than its mtime (relatime)."""
    return {str(p): (p.lstat().st_size, p.lstat().st_mtime_ns, p.lstat().st_atime_ns)
            for p in paths}


def _hashes(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in _tree(paths)
            if p.is_file() and not p.is_symlink()}


class _Listener:
    """A TCP port on the grader's loopback and an abstract Unix socket: who connects?"""

    def __init__(self):
        self.connections: list[str] = []
        self.tcp = socket.create_server(("127.0.0.1", build.LISTEN_PORT))
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind("\0" + build.ABSTRACT_SOCKET)
        self.unix.listen()
        self._stop = False
        self.threads = [threading.Thread(target=self._accept, args=(s,), daemon=True)
                        for s in (self.tcp, self.unix)]
        for t in self.threads:
            t.start()

    def _accept(self, server):
        server.settimeout(0.5)
        while not self._stop:
            try:
                conn, addr = server.accept()
            except OSError:
                continue
            self.connections.append(repr(addr))
            conn.close()

    def close(self):
        self._stop = True
        for t in self.threads:
            t.join()
        self.tcp.close()
        self.unix.close()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the whole corpus; returns ``{name: (result, out folder, attack lines)}`` and the
    host's state before and after."""
    missing = [k for k, v in sandbox.available().items() if not v and k != "unshare"]
    if missing:
        pytest.fail(f"the adversarial corpus needs every confinement layer; missing here: "
                    f"{', '.join(missing)} (CI runs as root, .ci/run installs bubblewrap)")
    batch = tmp_path_factory.mktemp("adversarial")
    victim = batch / build.VICTIM
    (victim / "work" / "artifacts").mkdir(parents=True)
    secret = f"victim-secret-{secrets.token_hex(8)}"
    (victim / "secret.txt").write_text(secret)
    (victim / "results.json").write_text(json.dumps({"score": 70}))
    # a harvest the grader would score if it followed a link to it: a full rnn history
    history = {k: [0.6] for k in ("loss", "accuracy", "val_loss", "val_accuracy")}
    (victim / "work" / "artifacts" / "harvest.json").write_text(json.dumps(
        {"tasks": {"rnn": {"history": {"status": "ok", "history": history},
                           "builder": {"status": "ok"}}}, "namespace": {}}))
    (victim / "work" / "artifacts" / "rnn.fresh.keras").write_bytes(b"not really a model")
    (batch / "SENTINEL.txt").write_text("the batch folder's own file")
    names = sorted(a.name for a in build.ATTACKS)
    names = [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]
    for name in names:  # a file in each output folder, right above the kernel's work folder
        (batch / name).mkdir()
        (batch / name / "SENTINEL.txt").write_text(f"{name}'s output folder")
    watched = [victim, batch / "SENTINEL.txt", *(batch / n / "SENTINEL.txt" for n in names),
               ROOT / "rubrics" / "ex8.yaml", ROOT / "reference" / "ex8_source.py",
               Path("/etc/passwd")]
    hashes, tree = _hashes(watched), _tree(watched)
    old = time.time() - 3600  # atime before mtime: the next read of these moves their atime
    for path in _tree(watched[:2 + len(names)]):
        os.utime(path, ns=(int(old * 1e9), path.stat().st_mtime_ns))
    before = _stats(tree)
    canary = f"canary-{secrets.token_hex(8)}"
    confinements: list[sandbox.Confinement] = []
    plan = sandbox.plan

    def spy(*args, **kwargs):
        conf = plan(*args, **kwargs)
        confinements.append(conf)
        return conf

    listener = _Listener()
    bystander = subprocess.Popen(["sleep", "3600"])  # a process of the grader's user
    mp = pytest.MonkeyPatch()
    mp.setattr(sandbox.limits, "LIMITS", LIMITS)
    mp.setattr(sandbox.confinement, "plan", spy)
    mp.setenv("EX8_ADVERSARIAL_CANARY", canary)

    def one(name):
        out = batch / name
        result = grade_submission(CORPUS / f"{name}.ipynb", out=out, threads=1,
                                  **_options(name))
        nb = nbformat.read(out / "executed.ipynb", as_version=4) \
            if (out / "executed.ipynb").exists() else nbformat.v4.new_notebook()
        return name, (result, out, _attack_lines(nb))

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(3) as pool:
            runs = dict(pool.map(one, names))
        corpus_seconds = time.monotonic() - started
        # the next submission, on a host the corpus went through
        runs["honest_slim_base"] = one("honest_slim_base")[1]
    finally:
        mp.undo()
        listener.close()
        bystander_alive = bystander.poll() is None
        bystander.kill()
        bystander.wait()
    after = _stats(tree), _hashes(watched), _tree(watched)  # stat first: hashing reads
    before = before, hashes, tree
    for name in names:  # the disk filler's leftovers: nothing to keep
        for junk in (batch / name / "work").glob("*.bin"):
            junk.unlink()
    summary = {name: {"score": r.score, "kernel": r.kernel, "met": lines,
                      "errors": [f"cell {e.cell}: {e.ename}" for e in r.errors]}
               for name, (r, _, lines) in runs.items()}
    summary["_"] = {"seconds": round(corpus_seconds), "layers": list(
        runs["honest_slim_base"][0].confinement)}
    (batch / "summary.json").write_text(json.dumps(summary, indent=1))
    return {"runs": runs, "before": before, "after": after, "victim": victim, "secret": secret,
            "canary": canary, "confinements": confinements, "listener": listener.connections,
            "bystander_alive": bystander_alive, "batch": batch, "names": names}


def test_corpus_is_up_to_date():
    assert build.main(["--check"]) == 0


def test_corpus_is_at_least_twenty_attacks():
    assert len(build.ATTACKS) >= 20 and len({a.name for a in build.ATTACKS}) == len(build.ATTACKS)
    assert sorted(p.stem for p in CORPUS.glob("*.ipynb")) == sorted(
        [a.name for a in build.ATTACKS] + list(build.BASELINES))


def _check(result, task, check):
    return next(c for t in result.tasks for c in t.checks if c.task == task and c.check == check)


def _outputs(out: Path) -> str:
    return (out / "executed.ipynb").read_text(encoding="utf-8")


# name -> (score, the kernel's sentence or None, further checks of (result, out, lines, ctx))
EXPECTED = {
    "forged_score_prints_are_flagged": (TRAINED_SCORE, None, lambda r, o, m, g: (
        any("printed accuracy 1.0000, the grader measured" in f for f in r.flags)
        and json.loads((o / "results.json").read_text())["score"] == TRAINED_SCORE)),
    "forged_results_json_and_links_are_ignored": (SLIM_SCORE, None, lambda r, o, m, g: (
        json.loads((o / "results.json").read_text())["score"] == SLIM_SCORE
        and not (o / "results.json").is_symlink()
        and "ex8-attack: write ../results.json: PermissionError" in " ".join(m)
        and "ex8-attack: write results.json in the work folder: done" in " ".join(m))),
    "linked_artifact_folder_is_refused": (
        0.0, "The notebook replaced the grader's artifact folder with a link, so nothing it "
             "produced was graded.", lambda r, o, m, g: not (o / "harvest.json").exists()),
    "linked_model_files_are_refused": (0.0, None, lambda r, o, m, g: (
        "rnn.fresh.keras was refused: it is not a regular file" in
        _check(r, "rnn", "params").message)),
    "monkeypatched_metrics_are_measured_honestly": (TRAINED_SCORE, None, lambda r, o, m, g: (
        any("printed accuracy 1.0000" in f for f in r.flags) and json.loads(
            (o / "evaluation.json").read_text())["tasks"]["rnn"]["trained"]["metrics"][
                "accuracy"] < 0.9)),
    "lying_eq_objects_score_nothing": (SLIM_SCORE, None, lambda r, o, m, g: (
        "build_lstm_model() returned AlwaysEqual, not a Keras model" in
        _check(r, "task1", "builder").message)),
    "sys_exit_is_an_error_and_the_run_goes_on": (SLIM_SCORE, None, lambda r, o, m, g: (
        [(e.cell, e.ename) for e in r.errors] == [(4, "SystemExit")])),
    "os_exit_kills_only_the_kernel": (0.0, "The kernel died in code cell 4 (“import os”).",
                                      None),
    "killing_the_grader_is_refused": (SLIM_SCORE, None, lambda r, o, m, g: (
        "ex8-attack: kill the parent (pid 1): PermissionError: [Errno 1] Operation not "
        "permitted" in m and g["bystander_alive"])),
    "replaced_showtraceback_still_records_errors": (SLIM_SCORE, None, lambda r, o, m, g: (
        [(e.cell, e.task, e.ename) for e in r.errors] == [(5, "task1", "NotImplementedError")])),
    "other_kernel_and_skip_tags_in_metadata_are_ignored": (SLIM_SCORE, None, lambda r, o, m, g: (
        m == ["ex8-attack: a cell tagged skip-execution ran"])),
    "reads_shadow_rubric_and_environment_find_nothing": (SLIM_SCORE, None, lambda r, o, m, g: (
        "ex8-attack: read /etc/shadow: FileNotFoundError" in " ".join(m)
        and "ex8-attack: import rubrics: ModuleNotFoundError" in " ".join(m)
        and "ex8-attack: import reference: ModuleNotFoundError" in " ".join(m)
        and g["canary"] not in _outputs(o) and "schema_version" not in _outputs(o)
        and "BEGIN SOLUTION" not in _outputs(o) and "root:" not in _outputs(o))),
    "other_students_files_are_unreachable": (SLIM_SCORE, None, lambda r, o, m, g: (
        g["secret"] not in _outputs(o)
        and f"ex8-attack: read ../../{build.VICTIM}/secret.txt: FileNotFoundError" in " ".join(m))),
    "sockets_reach_no_network": (SLIM_SCORE, None, lambda r, o, m, g: (
        "ex8-attack: TCP to 1.1.1.1:443: OSError: [Errno 101] Network is unreachable" in m
        and g["listener"] == [])),
    "allocating_50_gb_is_stopped_by_the_memory_limit": (
        0.0, "The kernel died in code cell 4 (“import numpy as np”): it needed more than the "
             "2.5 GiB of memory it may use.",
        lambda r, o, m, g: m[0] == "ex8-attack: one 50 GB array: MemoryError"),
    "fork_bomb_is_contained": (0.0, None, lambda r, o, m, g: (
        LIMITS.processes / 2 < int(re.search(r"fork bomb: (\d+) children", m[0]).group(1))
        < LIMITS.processes)),
    "thread_bomb_is_contained": (0.0, None, lambda r, o, m, g: (
        0 < int(re.search(r"thread bomb: (\d+) threads", m[0]).group(1)) < LIMITS.processes)),
    "sleeping_forever_is_stopped_by_the_cell_limit": (SLIM_SCORE, None, lambda r, o, m, g: (
        (4, "CellTimeout") in [(e.cell, e.ename) for e in r.errors])),
    "ignoring_interrupts_is_stopped_by_the_total_limit": (
        0.0, "The run was stopped after 75 s", None),
    "filling_the_disk_is_stopped_at_the_quota": (
        0.0, "The run was stopped in code cell 4 (“import os”): the notebook wrote more than "
             "128 MB into its work folder.",
        lambda r, o, m, g: "ex8-attack: one huge file here: 32 MB, then OSError: "
                           "File too large" in m),
    "printing_a_gigabyte_is_cut": (SLIM_SCORE, None, lambda r, o, m, g: (
        sum(len(json.dumps(x)) for x in nbformat.read(o / "executed.ipynb", 4).cells[4].outputs)
        <= MAX_OUTPUT_BYTES + 4096)),
    "xss_in_output_exception_and_names_runs_no_script": (SLIM_SCORE, None, lambda r, o, m, g: (
        "&lt;img src=x onerror=alert(&#34;ex8-xss-builder&#34;)&gt;" in
        (o / "feedback.html").read_text())),
    "lambda_layer_model_is_refused": (0.0, None, lambda r, o, m, g: (
        "rnn.fresh.keras was refused: it contains a Lambda layer" in
        _check(r, "rnn", "params").message)),
    "forged_keras_archive_is_refused": (0.0, None, lambda r, o, m, g: (
        "rnn.fresh.keras was refused: it refers to os.system" in
        _check(r, "rnn", "params").message)),
    "planted_numpy_and_startup_files_are_ignored": (SLIM_SCORE, None, lambda r, o, m, g: (
        "versions" in json.loads((o / "evaluation.json").read_text())
        and not list(g["batch"].rglob("EVIL_RAN"))
        and "ex8-attack: write ../numpy.py: PermissionError" in " ".join(m))),
    "a_folder_tree_1100_deep_is_removed_and_grading_again_works": (
        SLIM_SCORE, None, lambda r, o, m, g: (
            m == ["ex8-attack: a tree 1,100 folders deep"]
            and _grade_again(o).score == SLIM_SCORE)),
    "forged_histories_earn_nothing": (SLIM_SCORE, None, lambda r, o, m, g: (
        [(c.task, c.score, c.max_score) for t in r.tasks for c in t.checks
         if c.kind == "history"] == [(t, 0.0, 0.0) for t in ("rnn", "task1", "task2", "task3",
                                                             "bonus")]
        and "it recorded 3 epochs, but EPOCHS is 1" in _check(r, "rnn", "history").message)),
    # quick profile: the builders are the exercise's (structure points), the kept models are a
    # bag of words fitted on every review the notebook could load; no accuracy point
    "bag_of_words_models_trained_on_every_review_score_no_accuracy": (
        SLIM_SCORE + 2 * STRUCTURE + OTHER_LAYERS + STRUCTURE + 2, None,
        lambda r, o, m, g: (
            all(_check(r, t, "accuracy").score == 0 for t in ("task1", "task2", "task3"))
            and "lstm_model is not the model build_lstm_model() returns: it has 3 layers "
                "(Embedding(5000, 16), GlobalAveragePooling1D, Dense(1, activation=sigmoid); "
                "80,017 parameters), the builder's model 5" in
            _check(r, "task1", "accuracy").message
            and "cnn_lstm_model is not this task's model: it lacks the Conv1D, MaxPooling1D "
                "and LSTM layers the exercise asks for" in _check(r, "task3", "accuracy").message
            # the measured reviews are not in the notebook's data, nor any file it can see
            and "ex8-attack: loadable reviews: 25000 train, 15000 test" in m
            and re.fullmatch(r"ex8-attack: IMDB files visible: \['[^']*-view1-10000-\d+\.npz'\]",
                             next(x for x in m if "files visible" in x))
            and r.extra["held_out"] == {"reviews": 10000, "hidden": True} and not r.flags)),
    "untrained_bonus_model_earns_no_learns_points": (
        SLIM_SCORE + STRUCTURE + 2, None, lambda r, o, m, g: (
            _check(r, "bonus", "learns").score == 0
            and "convlstm_model did not learn enough" in _check(r, "bonus", "learns").message
            and _check(r, "bonus", "history").status == "passed")),
    "model_needing_more_memory_than_the_evaluator_fails_its_task_alone": (
        TRAINED_SCORE + OTHER_LAYERS, None, lambda r, o, m, g: (
            _evaluation(o)["task1"]["trained"]["error"] ==
            "task1.trained.keras was not measured: predicting 200 reviews needed more than "
            "2.5 GiB of memory."
            and "metrics" in _evaluation(o)["rnn"]["trained"])),
    "model_too_slow_to_predict_fails_its_task_alone": (
        TRAINED_SCORE + OTHER_LAYERS, None, lambda r, o, m, g: (
            _evaluation(o)["task1"]["trained"]["error"] ==
            "task1.trained.keras was not measured: predicting 200 reviews took more than 20 s."
            and "metrics" in _evaluation(o)["rnn"]["trained"])),
}


def _grade_again(out: Path):
    """The same submission graded again into the same folder: its kernel's tree is removed
    first (and given back to the grader before), however deep."""
    name = out.name
    result = grade_submission(CORPUS / f"{name}.ipynb", out=out, threads=1, **_options(name))
    remove_tree(out / "work")  # pytest's own clean-up of old temporary folders recurses
    return result


def _evaluation(out: Path) -> dict:
    return json.loads((out / "evaluation.json").read_text())["tasks"]


def test_every_attack_has_an_expectation():
    assert sorted(EXPECTED) == sorted(a.name for a in build.ATTACKS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_attack_gets_the_honest_score(graded, name):
    result, out, lines = graded["runs"][name]
    score, kernel, further = EXPECTED[name]
    assert result.status == "graded", result.reason
    assert result.score == score, (result.score, result.kernel, lines)
    if kernel is None:
        assert result.kernel is None, result.kernel
    else:
        assert (result.kernel or "").startswith(kernel), result.kernel
    if further:
        assert further(result, out, lines, graded), (lines, [t.checks for t in result.tasks])


def test_the_host_is_untouched(graded):
    # sentinels, the classmate's folder, the rubric, /etc/passwd: not written, not even read
    assert graded["after"] == graded["before"]
    assert graded["listener"] == [] and graded["bystander_alive"]
    for path in ("/tmp/ex8-adversarial-escape", "/tmp/ex8-adversarial-pwned"):
        assert not Path(path).exists()
    # every run's processes are gone, its cgroups and sockets folder removed
    uids = {c.uid for c in graded["confinements"]} - {None}
    assert len(uids) == len(graded["confinements"]) > len(build.ATTACKS)  # kernels, evaluators
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _uid(p) in uids]
    assert left == []
    assert not [f for c in graded["confinements"] for f in c.cgroups.folders if f.exists()]
    assert not [c.ipc_dir for c in graded["confinements"] if c.ipc_dir and c.ipc_dir.exists()]


def _uid(proc: Path) -> int | None:
    try:
        return proc.stat().st_uid
    except OSError:
        return None


def test_the_next_submission_is_graded_normally(graded):
    result, out, _ = graded["runs"]["honest_slim_base"]
    assert result.status == "graded" and result.kernel is None and result.errors == ()
    assert result.score == SLIM_SCORE
    assert _check(result, "rnn", "params").status == "passed"


def test_every_layer_was_on(graded):
    layers = list(graded["runs"]["honest_slim_base"][0].confinement)
    cgroup = graded["confinements"][-1].cgroups.version
    assert layers == [
        "scrubbed environment", "own HOME and temp folder", "thread budget 1",
        "separate unprivileged user", f"memory 2.5 GiB, 512 processes, 1 CPU (cgroup {cgroup})",
        "rlimits (CPU 960 s, files 32 MiB, 2048 open files, no core dumps, 512 processes)",
        "no network", "own process namespace",
        "filesystem view (system and Python read-only, only the work folder writable, grader "
        "files and other submissions hidden)", "work folder quota 128 MiB"]


def test_xss_report_runs_no_script(graded, tmp_path):
    _, out, _ = graded["runs"]["xss_in_output_exception_and_names_runs_no_script"]
    html = (out / "feedback.html").read_text()
    # the payloads reached the report, as text
    for payload in ('<script>alert("ex8-xss-exception")</script>',
                    '<img src=x onerror=alert("ex8-xss-builder")>',
                    'build_<img src=x onerror=alert("ex8-xss-name")>',
                    '<script>alert("ex8-xss-model")</script>'):
        escaped = payload.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
            .replace('"', "&#34;")
        assert escaped in html and payload not in html, payload
    assert "<script" not in html.lower() and "<img src=x" not in html
    page = visit(out / "feedback.html", tmp_path / "xss.png")
    assert page.dialogs == [] and page.page_errors == []
    assert all(url.startswith(("file:", "data:")) for url in page.requests), page.requests


def test_a_gigabyte_print_costs_the_grader_little(tmp_path):
    """One 1 GB message would cost the grader 2 GB to receive: zmq drops it unread."""
    import psutil

    conf = sandbox.plan(tmp_path / "work", data_env={}, threads=1, timeout=120)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('x' * 2**30)"),
                nbformat.v4.new_code_cell("print('still here')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    me, peak, done = psutil.Process(), [0], threading.Event()

    def watch():
        while not done.wait(0.1):
            peak[0] = max(peak[0], me.memory_info().rss)

    base = me.memory_info().rss
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    report = run_notebook(nb, conf.workdir, env=conf.env, cell_timeout=100, total_timeout=110,
                          owners=[None, None], confinement=conf)
    done.set()
    watcher.join()
    assert report.kernel is None and report.errors == []
    assert sum(len(str(o)) for o in report.notebook.cells[0].outputs) <= MAX_OUTPUT_BYTES
    assert peak[0] - base < 200 << 20, (peak[0] - base) >> 20


# --------------------------------------------------------------------------- archives


def _archive(tmp_path, config, members=()) -> Path:
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", config if isinstance(config, str) else
                         json.dumps(config))
        for name, data in members:
            archive.writestr(name, data)
    return path


def _sequential(**compile_config) -> dict:
    return {"module": "keras", "class_name": "Sequential", "registered_name": None,
            "config": {"name": "s", "layers": []}, "compile_config": compile_config}


def test_a_keras_loss_given_as_a_function_is_accepted(tmp_path):
    # loss=keras.losses.binary_crossentropy: Keras writes it as a name it looks up, not code
    loss = {"module": "builtins", "class_name": "function", "config": "binary_crossentropy",
            "registered_name": "function"}
    assert inspect_archive(_archive(tmp_path, _sequential(loss=loss)))["compile_config"]


@pytest.mark.parametrize("config, members, why", [
    (_sequential(loss={"module": "builtins", "class_name": "function", "config": {"code": "x"},
                       "registered_name": "function"}), (), "contains a function layer"),
    (_sequential(loss={"module": "keras", "class_name": "Loss",
                       "registered_name": "keras_hub>Loss"}), (), "needs the custom object"),
    (_sequential(), [("config.json", "{}")], "two archive members of the same name"),
    ("[" * 100_000 + "]" * 100_000, (), "nested too deeply"),
    (_sequential(), [("../evil.py", "import os")], "not a Keras 3 .keras archive"),
])
def test_crafted_archives_are_refused(tmp_path, config, members, why, recwarn):
    with pytest.raises(UnsafeModelError, match=why):
        inspect_archive(_archive(tmp_path, config, members))


def test_a_linked_archive_is_refused(tmp_path):
    real = _archive(tmp_path, _sequential())
    link = tmp_path / "link.keras"
    link.symlink_to(real)
    with pytest.raises(UnsafeModelError, match="not a regular file"):
        inspect_archive(link)


if __name__ == "__main__":  # pragma: no cover - for a look at the summary by hand
    sys.exit(pytest.main([__file__, "-q"]))
