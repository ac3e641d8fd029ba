"""Batch grading: a folder of six real submissions graded locally and on a Dask cluster, killed
and resumed, re-scored after a rubric edit; student ids from LMS download names.

One uninterrupted local run (module fixture) is the yardstick. The Dask, kill and re-score tests
work on copies of its output folder from which some students' stored results are removed, so
each of them grades real notebooks (or, re-scoring, none) while the suite stays within budget.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from html import unescape
from pathlib import Path

import psutil
import pytest
import yaml

from grader import batch, cli
from grader.batch import GRADEBOOK, MARKER, find_submissions, grade_folder
from grader.batch.discover import UNCLAIMED
from grader.rubric import default_rubric_path, load_rubric

from .browser import visit
from .conftest import REFERENCE_NB, TEMPLATE_NB, variant

pytestmark = pytest.mark.kernel

#: long enough for the reference to finish in the structure profile on a busy 2-core machine
#: (about 75 s alone), short enough that the sleeping notebook costs little: it runs beside
#: the others from the start, because its name sorts first
TIMEOUT = 300

NO_POOLING_BUILDER = (
    "def build_cnn_lstm_model", "    # YOUR CODE HERE\n    raise NotImplementedError()",
    "    model = keras.Sequential([\n        keras.Input(shape=(MAX_REVIEW_LENGTH,)),\n"
    "        layers.Embedding(TOP_WORDS, EMBEDDING_DIM),\n"
    "        layers.Conv1D(filters=32, kernel_size=3, padding=\"same\", activation=\"relu\"),\n"
    "        layers.LSTM(128),\n        layers.Dense(1, activation=\"sigmoid\"),\n    ])\n"
    "    model.compile(loss=\"binary_crossentropy\", optimizer=\"adam\", metrics=[\"accuracy\"])\n"
    "    return model")

# student -> (status, points per task or None, total or None); the test rubric gives task 1's
# accuracy check a structure-profile threshold of 0 (every trained model passes), so that
# re-scoring has a threshold to raise: accuracy thresholds otherwise apply in quick/full only
EXPECTED = {
    "asleep_times_out": ("timeout", dict(rnn=0, task1=0, task2=0, task3=0, bonus=0), 0),
    "full_marks_reference": ("graded", dict(rnn=1, task1=22, task2=13, task3=13, bonus=15), 64),
    "lstm64_loses_task1": ("graded", dict(rnn=1, task1=14, task2=13, task3=13, bonus=15), 56),
    "malformed_not_graded": ("not_graded", None, None),
    "template_scores_1": ("graded", dict(rnn=1, task1=0, task2=0, task3=0, bonus=0), 1),
    "unpooled_task3_builder_only": ("graded", dict(rnn=1, task1=0, task2=0, task3=7, bonus=0),
                                    8),
}
CHEAP = ("malformed_not_graded", "template_scores_1", "unpooled_task3_builder_only")
LINK = "a link; links are never followed (copy the file itself into the folder)"


def _test_rubric(path: Path, task1_structure_threshold: float) -> Path:
    """The bundled rubric, with a structure-profile threshold on task 1's accuracy check."""
    raw = yaml.safe_load(default_rubric_path().read_text())
    task1 = next(t for t in raw["tasks"] if t["id"] == "task1")
    check = next(c for c in task1["checks"] if c["check"] == "accuracy")
    check["threshold"] = {**check["threshold"], "structure": task1_structure_threshold}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    applied = [(t.id, c.id) for t in load_rubric(path).tasks for c in t.checks
               if c.check == "accuracy" and c.applies_to("structure")]
    assert applied == [("task1", "accuracy")]
    return path


def _make_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    variant(REFERENCE_NB, folder / "full_marks_reference_ex8.ipynb")
    shutil.copyfile(TEMPLATE_NB, folder / "template_scores_1_ex8.ipynb")
    variant(REFERENCE_NB, folder / "lstm64_loses_task1_ex8.ipynb",
            ("def build_lstm_model", "layers.LSTM(128),", "layers.LSTM(64),"))
    variant(TEMPLATE_NB, folder / "unpooled_task3_builder_only_ex8.ipynb", NO_POOLING_BUILDER)
    variant(TEMPLATE_NB, folder / "asleep_times_out_ex8.ipynb",
            ("keras.utils.set_random_seed(SEED)",
             "import time\ntime.sleep(10 ** 6)\nkeras.utils.set_random_seed(SEED)"))
    (folder / "malformed_not_graded_ex8.ipynb").write_text("{ this is not a notebook")
    (folder / "notes.txt").write_text("not a submission")
    (folder / "linked_ex8.py").symlink_to("/etc/shadow")  # never read, though root may
    os.mkfifo(folder / "waiting_ex8.ipynb")  # never opened: it would block the batch
    return folder


def _args(rubric: Path) -> dict:
    return dict(profile="structure", rubric=rubric, timeout=TIMEOUT, workers=2, threads=1)


@pytest.fixture(scope="module")
def six(tmp_path_factory):
    """The six submissions graded once with 2 local workers: (folder, out, summary, rubric, log)."""
    root = tmp_path_factory.mktemp("batch")
    folder = _make_folder(root / "submissions")
    rubric = _test_rubric(root / "rubric.yaml", 0.0)
    log = io.StringIO()
    summary = grade_folder(folder, out=root / "graded", progress=log, **_args(rubric))
    return folder, root / "graded", summary, rubric, log.getvalue()


def _gradebook(out: Path) -> dict[str, dict]:
    with open(out / GRADEBOOK, newline="") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def _copy_without(src: Path, dest: Path, students) -> Path:
    """The output folder of the yardstick run, as if ``students`` had never finished."""
    shutil.copytree(src, dest, symlinks=True)
    (dest / GRADEBOOK).unlink()
    for student in students:
        (dest / student / MARKER).unlink()
    return dest


def test_six_submissions_give_six_rows_with_their_statuses(six):
    folder, out, summary, _, log = six
    book = _gradebook(out)
    assert sorted(book) == sorted(EXPECTED)
    for student, (status, points, total) in EXPECTED.items():
        row = book[student]
        assert row["status"] == status, (student, row)
        got = {t: row[t] for t in ("rnn", "task1", "task2", "task3", "bonus")}
        assert got == ({t: f"{p:g}" for t, p in points.items()} if points else
                       dict.fromkeys(got, "")), student
        assert row["total"] == ("" if total is None else f"{total:g}"), student
        # the written answers (6 points) are to be marked, apart from the automatic points
        assert (row["automatic"], row["marked"], row["to_be_marked"]) == (
            ("", "", "") if total is None else (f"{total:g}", "0", "6")), student
        assert row["feedback"] == f"{student}/feedback.html"
        assert (out / row["feedback"]).is_file()
    assert book["asleep_times_out"]["reason"].startswith(
        f"The run was stopped after {TIMEOUT} s"), book["asleep_times_out"]["reason"]
    assert book["malformed_not_graded"]["reason"].startswith(
        "malformed_not_graded_ex8.ipynb is not a notebook"), book["malformed_not_graded"]
    assert [(s.path, s.reason) for s in summary.skipped] == [
        ("linked_ex8.py", LINK), ("notes.txt", "not a notebook or a .py file"),
        ("waiting_ex8.ipynb", "a FIFO, not a regular file; it was not opened")]
    # a not_graded row is not counted as graded (a timeout is: it has its points)
    assert (summary.graded, summary.not_graded, summary.failed, summary.reused) == (5, 1, 0, 0)
    assert summary.counts() == ("graded 5, not graded 1 (the files as handed in), kept 0 "
                                "unchanged, skipped 3 files")
    last = log.strip().splitlines()[-1]
    assert last.startswith("[6/6] ") and "done 6, running 0, failed 2" in last, last


def test_class_summary_links_every_student_and_groups_failures(six, tmp_path):
    _, out, *_ = six
    html = (out / "index.html").read_text()
    head = unescape(html.split("<head>", 1)[1].lstrip())
    assert head.startswith('<meta http-equiv="Content-Security-Policy" content="default-src '
                           "'none'; img-src data:;")
    assert html.count('<tr class="student"') == 6
    for student in EXPECTED:
        assert f'href="./{student}/feedback.html"' in html
    assert html.count('class="distribution"') == 5
    assert html.count("data:image/png;base64,") == 5  # every task has graded students
    assert "Could not be graded (the file as submitted) (1)" in html
    assert "Stopped at the time limit (1)" in html
    assert "notes.txt: not a notebook or a .py file" in html
    assert f"linked_ex8.py: {LINK}" in html
    page = visit(out / "index.html", tmp_path / "index.png")
    assert page.page_errors == [] and page.dialogs == []
    assert [c for c in page.console if c[0] in ("error", "warning")] == []
    assert len(page.image_sizes) == 5 and all(w > 0 and h > 0 for w, h in page.image_sizes)
    assert all(url.startswith(("file:", "data:")) for url in page.requests)


def test_unchanged_rerun_grades_nothing(six, monkeypatch):
    folder, out, _, rubric, _ = six
    before = (out / GRADEBOOK).read_bytes()
    markers = {p: p.stat().st_mtime_ns for p in out.glob(f"*/{MARKER}")}

    def no_grading(job, settings):
        raise AssertionError(f"{job.student} was graded again")

    monkeypatch.setattr(batch.worker, "run_job", no_grading)
    summary = grade_folder(folder, out=out, **_args(rubric))
    assert (summary.graded, summary.reused) == (0, 6)
    assert (out / GRADEBOOK).read_bytes() == before
    assert {p: p.stat().st_mtime_ns for p in out.glob(f"*/{MARKER}")} == markers


def test_dask_local_cluster_gives_the_same_gradebook(six, tmp_path):
    from distributed import Client, LocalCluster

    folder, out, _, rubric, _ = six
    regraded = ("malformed_not_graded", "template_scores_1")
    out2 = _copy_without(out, tmp_path / "graded", regraded)
    args = _args(rubric)
    del args["workers"], args["threads"]  # a Dask worker shares its own machine's cores out
    # no default client in this process, as when `grade --scheduler` runs from a shell
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        pids = set(client.run(os.getpid).values())
        summary = grade_folder(folder, out=out2, scheduler=cluster.scheduler_address, **args)
    assert (summary.graded, summary.not_graded, summary.reused) == (1, 1, 4)
    assert (out2 / GRADEBOOK).read_bytes() == (out / GRADEBOOK).read_bytes()
    for student in regraded:  # graded by the cluster's workers, not in this process
        worker = json.loads((out2 / student / MARKER).read_text())["worker"]
        assert int(worker.rsplit(":", 1)[1]) in pids, worker
    assert json.loads((out2 / "template_scores_1" / "result.json").read_text())["extra"][
        "kernel_seconds"] > 0


def test_killed_batch_resumes_to_the_same_gradebook(six, tmp_path):
    folder, out, _, rubric, _ = six
    out3 = _copy_without(out, tmp_path / "graded", CHEAP)
    cmd = [sys.executable, "-m", "grader.cli", str(folder), "--out", str(out3), "--profile",
           "structure", "--rubric", str(rubric), "--timeout", str(TIMEOUT), "--workers", "2",
           "--threads", "1"]
    with open(tmp_path / "batch.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + 300
    # the three kept rows are written at once; the fourth is the first this run grades
    while not (out3 / GRADEBOOK).is_file() or len(_gradebook(out3)) < 4:
        assert proc.poll() is None, (tmp_path / "batch.log").read_text()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    tree = psutil.Process(proc.pid).children(recursive=True)
    graders = [p for p in tree if "grader.batch" in " ".join(p.cmdline())]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert graders  # grading was under way when the batch died
    _, alive = psutil.wait_procs(tree, timeout=60)
    assert alive == [], [p.pid for p in alive]  # no grader, kernel or evaluator left behind
    done = _gradebook(out3)
    assert {"asleep_times_out", "full_marks_reference", "lstm64_loses_task1",
            "malformed_not_graded"} <= set(done) and len(done) < 6

    summary = grade_folder(folder, out=out3, **_args(rubric))
    assert (summary.graded, summary.reused) == (6 - len(done), len(done))
    assert (out3 / GRADEBOOK).read_bytes() == (out / GRADEBOOK).read_bytes()


def test_rescore_after_raising_a_threshold_changes_exactly_the_affected_rows(six, tmp_path,
                                                                             monkeypatch):
    folder, out, _, rubric, _ = six
    out4 = tmp_path / "graded"
    shutil.copytree(out, out4, symlinks=True)
    accuracy = {}
    for student in EXPECTED:
        evaluation = out4 / student / "evaluation.json"
        if evaluation.is_file():
            trained = json.loads(evaluation.read_text())["tasks"]["task1"].get("trained") or {}
            if "metrics" in trained:
                accuracy[student] = trained["metrics"]["accuracy"]
    assert sorted(accuracy) == ["full_marks_reference", "lstm64_loses_task1"]
    raised = round(min(accuracy.values()) + 0.005, 3)
    affected = {s for s, a in accuracy.items() if a < raised}
    new_rubric = _test_rubric(tmp_path / "raised.yaml", raised)

    def no_process(*args, **kwargs):
        raise AssertionError(f"re-scoring started a process: {args[:1]}")

    before = _gradebook(out4)
    started = time.monotonic()
    with monkeypatch.context() as m:
        m.setattr(subprocess.Popen, "__init__", no_process)  # no kernel, no evaluator
        assert cli.main(["rescore", str(out4), "--rubric", str(new_rubric)]) == 0
    seconds = time.monotonic() - started
    after = _gradebook(out4)
    changed = {s for s in before if before[s] != after[s]}
    assert changed == affected
    for s in changed:
        points = load_rubric(new_rubric).task("task1").check("accuracy").points
        assert float(after[s]["task1"]) == float(before[s]["task1"]) - points == 13
        for column in ("automatic", "total"):
            assert float(after[s][column]) == float(before[s][column]) - points
        assert {k: v for k, v in after[s].items() if k not in ("task1", "automatic", "total")} \
            == {k: v for k, v in before[s].items() if k not in ("task1", "automatic", "total")}
    assert seconds < 60, seconds

    # the re-scored rows count as graded with the new rubric: nothing is graded again
    monkeypatch.setattr(batch.worker, "run_job", lambda job, settings: pytest.fail(job.student))
    summary = grade_folder(folder, out=out4, **_args(new_rubric))
    assert (summary.graded, summary.reused) == (0, 6)
    assert _gradebook(out4) == after


def test_a_grading_process_that_dies_is_a_row_and_is_tried_again(tmp_path):
    import nbformat

    folder = tmp_path / "submissions"
    folder.mkdir()
    for name, code in (("sleeper", "import time\ntime.sleep(10 ** 6)"),
                       ("exits", "import os\nos._exit(1)")):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
        nbformat.write(nb, folder / f"{name}_ex8.ipynb")
    hostile = "<img src=x onerror=alert(1)>"
    (folder / f"{hostile}_ex8.ipynb").write_text("not json")
    out = tmp_path / "graded"
    killed = []

    def kill_the_sleepers_grader():
        while not (out / GRADEBOOK).is_file() or len(_gradebook(out)) < 2:
            time.sleep(0.1)  # the other two are done: only the sleeper is being graded
        for p in psutil.Process().children():
            if "grader.batch" in " ".join(p.cmdline()):
                p.kill()
                killed.append(p.pid)

    watcher = threading.Thread(target=kill_the_sleepers_grader, daemon=True)
    watcher.start()
    args = dict(profile="structure", timeout=15, workers=2, threads=1)
    summary = grade_folder(folder, out=out, **args)
    watcher.join(5)
    assert len(killed) == 1
    rows = {r.student: r for r in summary.rows}
    assert rows["sleeper"].status == "error"
    assert rows["sleeper"].reason.startswith("The grading process died by SIGKILL")
    assert rows[hostile].status == "not_graded"
    assert (rows["exits"].status, rows["exits"].reason) == (
        "kernel_died", "The kernel died in code cell 1 (“import os”).")
    html = (out / "index.html").read_text()
    assert hostile not in html and "&lt;img src=x onerror=alert(1)&gt;" in html

    again = grade_folder(folder, out=out, **args)
    assert (again.graded, again.reused) == (1, 2)
    assert {r.student: r.status for r in again.rows} == {
        "sleeper": "timeout", "exits": "kernel_died", hostile: "not_graded"}
    page = visit(out / "index.html")
    assert page.dialogs == [] and page.page_errors == []


def test_hostile_entries_are_skipped_or_not_graded_and_every_output_has_one_mode(tmp_path):
    """No kernel starts: nothing here can be graded. A link to a root-only file, a linked
    student folder and a FIFO are skipped unread; a module beside the submissions is not
    imported by the grading process; a name a spreadsheet would run is a quoted cell; every
    file the batch writes has the mode the umask gives (0644 here)."""
    folder, out = tmp_path / "subs", tmp_path / "graded"
    (folder / "carol").mkdir(parents=True)
    secret = tmp_path / "secret"
    secret.write_text("TOP-SECRET")
    secret.chmod(0o600)
    (folder / "alice_ex8.py").symlink_to(secret)
    (folder / "bob").symlink_to(tmp_path)
    (folder / "carol" / "ex8.ipynb").symlink_to(secret)
    os.mkfifo(folder / "x_ex8.ipynb")
    (folder / "=HYPERLINK(1)_ex8.ipynb").write_text("not json")
    pwned = tmp_path / "pwned"  # a module beside the submissions is never imported as root
    (folder / "json.py").write_text(f"open({str(pwned)!r}, 'w').close()\n")
    before = os.umask(0o022)
    try:
        summary = grade_folder(folder, out=out, profile="structure", workers=1, threads=1)
    finally:
        os.umask(before)
    assert [(s.path, s.reason) for s in summary.skipped] == [
        ("alice_ex8.py", LINK), ("bob", LINK), ("carol/ex8.ipynb", LINK),
        ("json.py", UNCLAIMED), ("x_ex8.ipynb", "a FIFO, not a regular file; it was not opened")]
    assert not pwned.exists()
    with open(out / GRADEBOOK, newline="") as fh:
        _, row = list(csv.reader(fh))
    assert row[:2] == ["'=HYPERLINK(1)", ""] and row[-3] == "not_graded"
    assert row[-2].startswith("'=HYPERLINK(1)_ex8.ipynb is not a notebook: not valid JSON")
    assert row[-1] == "HYPERLINK_1/feedback.html"
    found = list(out.rglob("*"))
    assert not [p for p in found if p.is_file() and b"TOP-SECRET" in p.read_bytes()]
    assert {p.relative_to(out).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in found
            if p.is_file()} == dict.fromkeys(
        [".ex8-grader", ".HYPERLINK_1.lock", "gradebook.csv", "manifest.json", "index.html",
         *(f"HYPERLINK_1/{n}" for n in ("batch.json", "results.json", "result.json",
                                        "feedback.html", ".ex8-grader"))], oct(0o644))


def test_student_ids_from_lms_download_names(tmp_path):
    files = {
        "Jane Doe_12345_assignsubmission_file_ex8.ipynb": ("12345", "Jane Doe"),
        "doejane_23456_67890_ex8.ipynb": ("23456", "doejane"),
        "roesam_LATE_34567_67891_my notebook.ipynb": ("34567", "roesam"),
        "alice_ex8.ipynb": ("alice", ""),
        "bob smith-Exercise8-1.py": ("bob smith", ""),
        "Dan Brown_45678_assignsubmission_file/anything.ipynb": ("45678", "Dan Brown"),
        "carol/ex8.ipynb": ("carol", ""),
        "carol/helper.py": None,  # a notebook in the folder wins over a module
        "erin/ex8_draft.py": ("erin", ""),
        "frank/a.ipynb": ("frank", ""),
        "frank/b.ipynb": None,
        "gina_ex8.ipynb": ("gina", ""),
        "gina/ex8.ipynb": ("gina", ""),
        "ex8.ipynb": None,  # whose?
        "grades.csv": None,
        "slides/notes.pdf": None,
        ".DS_Store": None,
    }
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    jobs, skipped = find_submissions(tmp_path)
    got = {j.student: (j.name, j.shown, j.problem) for j in jobs}
    assert got == {
        "12345": ("Jane Doe", "Jane Doe_12345_assignsubmission_file_ex8.ipynb", None),
        "23456": ("doejane", "doejane_23456_67890_ex8.ipynb", None),
        "34567": ("roesam", "roesam_LATE_34567_67891_my notebook.ipynb", None),
        "45678": ("Dan Brown", "Dan Brown_45678_assignsubmission_file/anything.ipynb", None),
        "alice": ("", "alice_ex8.ipynb", None),
        "bob smith": ("", "bob smith-Exercise8-1.py", None),
        "carol": ("", "carol/ex8.ipynb", None),
        "erin": ("", "erin/ex8_draft.py", None),
        "frank": ("", "frank/", "the folder holds 2 .ipynb files (a.ipynb, b.ipynb); keep one."),
        "gina": ("", "gina/ex8.ipynb, gina_ex8.ipynb",
                 "2 submissions claim student gina (gina/ex8.ipynb, gina_ex8.ipynb); keep one."),
    }
    assert {j.student: j.folder for j in jobs}["bob smith"] == "bob_smith"
    assert [(s.path, s.reason.split(" (")[0]) for s in skipped] == [
        ("ex8.ipynb", "the name does not say whose it is"),
        ("grades.csv", "not a notebook or a .py file"),
        ("slides/", "a folder without a notebook or .py file")]


def test_batch_counts_each_submission_once_by_its_status():
    summary = batch.BatchSummary(out=Path("o"), rows=(), skipped=(), graded=3, reused=2,
                                 not_graded=1, failed=1)
    assert summary.counts() == ("graded 3, not graded 1 (the files as handed in), failed 1 "
                                "(graded again on the next run), kept 2 unchanged, skipped 0 "
                                "files")
    assert batch.BatchSummary(out=Path("o"), rows=(), skipped=(), graded=1,
                              reused=0).counts() == "graded 1, kept 0 unchanged, skipped 0 files"


def test_cli_arguments_reach_grade_folder_and_rescore_folder(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake(name, errors=0):
        def call(path, **kwargs):
            seen[name] = dict(kwargs, path=path)
            rows = tuple(batch.Row(str(i), "", {}, None, "error", "", "") for i in range(errors))
            return batch.BatchSummary(out=tmp_path, rows=rows, skipped=(), graded=0, reused=0)
        return call

    monkeypatch.setattr(batch, "grade_folder", fake("grade", errors=1))
    monkeypatch.setattr(batch, "rescore_folder", fake("rescore"))
    code = cli.main([str(tmp_path), "--profile", "structure", "--rubric", "r.yaml", "--out", "o",
                     "--data", "imdb.npz", "--timeout", "99", "--cell-timeout", "7",
                     "--workers", "3", "--threads", "2", "--scheduler", "tcp://h:8786",
                     "--force"])
    assert code == 1  # a row is an `error`: the next run grades it again
    assert seen["grade"] == dict(
        path=tmp_path, out=Path("o"), profile="structure", rubric=Path("r.yaml"),
        data="imdb.npz", timeout=99.0, cell_timeout=7.0, workers=3, threads=2,
        scheduler="tcp://h:8786", force=True, progress=sys.stdout)
    assert cli.main(["rescore", str(tmp_path), "--rubric", "new.yaml"]) == 0
    assert seen["rescore"] == dict(path=tmp_path, rubric=Path("new.yaml"), out=None,
                                   progress=sys.stdout)
    assert f"gradebook: {tmp_path / GRADEBOOK}" in capsys.readouterr().out
