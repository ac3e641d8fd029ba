"""Written answers: "to be marked" until a TA marks them on the `grade mark` page, then merged by
`grade rescore` into gradebook.csv, index.html, each feedback page and results.json.

The fast tests build a graded batch by hand (result.json files written with ``to_dict``) and
drive the page's API with Flask's test client. The browser test marks the reference, graded
once per session (``reference_structure``) and copied into a batch of two students.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import jsonschema
import nbformat
import pytest

from grader import batch, cli
from grader.batch import Job, Settings, stored
from grader.errors import OUTPUT_MARK
from grader.marking import MARKS, Mark, MarksError, answer_digest, apply_marks, open_folder
from grader.marking.marks import read_marks, write_marks
from grader.marking.server import TOKEN_HEADER, create_app, start
from grader.results import CheckResult, SubmissionResult, TaskResult, to_dict, to_gradescope
from grader.rubric import load_rubric

from .browser import CHROMIUM_ARGS, chromium_path
from .conftest import assert_one_sentence

SCHEMA = json.loads((Path(__file__).parent / "fixtures" /
                     "gradescope_results.schema.json").read_text())
TOKEN = "t0ken-for-tests"
HOSTILE = '<img src=x onerror=alert(1)><script>alert(2)</script> LSTMs remember longer.'
ANSWERS = {"alice": "The LSTM is more accurate: its gates keep the gradient.", "bob": HOSTILE}


# --------------------------------------------------------------------------- a batch by hand


def _result(answer: str | None) -> SubmissionResult:
    """A graded result with the rubric's three written answers to be marked (task 1's holds
    ``answer``) and a few automatic checks."""
    def manual(task: str, text: str) -> CheckResult:
        label = {"task1": "Task 1", "task2": "Task 2", "task3": "Task 3"}[task]
        return CheckResult(task, "compare", "manual", f"{label}: written answer", 0.0, 2.0,
                           "pending", f"{label}: to be marked by a TA.", answer=text)

    return SubmissionResult(submission="/course/x_ex8.ipynb", profile="structure",
                            status="graded", tasks=(
        TaskResult("rnn", "SimpleRNN (worked example)", (
            CheckResult("rnn", "params", "param_count", "SimpleRNN: parameter count", 1.0, 1.0,
                        "passed", "yes"),)),
        TaskResult("task1", "Task 1: LSTM with Dropout layers", (
            CheckResult("task1", "layers", "layers", "Task 1: layers", 0.0, 6.0, "failed",
                        "no"),
            manual("task1", answer or ""))),
        TaskResult("task2", "Task 2: LSTM with input and recurrent dropout",
                   (manual("task2", "Slower epochs."),)),
        TaskResult("task3", "Task 3: Conv1D + MaxPooling1D + LSTM",
                   (manual("task3", "Faster."),))))


def _write_batch(out: Path, results: dict[str, SubmissionResult | None],
                 profile: str = "structure") -> Path:
    """A graded batch's output folder as `grade FOLDER` leaves it: manifest, markers, each
    student's result.json and the gradebook (None: not graded)."""
    rub = load_rubric()
    out.mkdir(parents=True)
    (out / OUTPUT_MARK).touch()
    settings = Settings(profile, str(rub.path), rub.digest, str(out), str(out.parent))
    jobs, rows = [], {}
    for student, result in results.items():
        job = Job(student, student.upper(), "", f"{student}_ex8.ipynb", student, "0" * 64)
        jobs.append(job)
        (out / student).mkdir()
        if result is None:
            result = SubmissionResult(submission=job.shown, profile=profile,
                                      status="not_graded", reason="not a notebook",
                                      reason_kind="InputError")
        (out / student / "result.json").write_text(json.dumps(to_dict(result)))
        rows[student] = stored.row_of(job, result, 0.0)
        stored.write_marker(out, job, settings, rows[student],
                            stored.run_digest(rub, profile), 900)
    stored.write_manifest(out, out.parent, profile, jobs, [])
    stored.write_gradebook(out, rows, [t.id for t in rub.tasks])
    return out


@pytest.fixture
def hand_batch(tmp_path) -> Path:
    return _write_batch(tmp_path / "graded", {"alice": _result(ANSWERS["alice"]),
                                              "bob": _result(HOSTILE), "carol": None})


@pytest.fixture
def client(hand_batch):
    app = create_app(open_folder(hand_batch), TOKEN, marked_by="ta1")
    return app.test_client()


def _put(client, headers=None, **body):
    mark = {"student": "alice", "task": "task1", "check": "compare", "points": "1",
            "comment": "", **body}
    return client.put("/api/marks", json=mark,
                      headers={TOKEN_HEADER: TOKEN} if headers is None else headers)


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- the page's API


def test_a_missing_or_wrong_token_is_refused_and_a_write_needs_it_in_the_header(client):
    assert client.get("/").status_code == 403
    assert client.get("/?token=wrong").status_code == 403
    assert client.get("/q/task2/compare?token=" + TOKEN[:-1]).status_code == 403
    assert client.get(f"/?token={TOKEN}").status_code == 200
    assert client.get("/q/task2/compare", headers={TOKEN_HEADER: TOKEN}).status_code == 200
    # a write with the token in the address only (what a form of another site could send)
    refused = client.put(f"/api/marks?token={TOKEN}", json={"student": "alice"})
    assert refused.status_code == 403
    assert refused.get_json() == {"error": "Refused: this page needs the token in the address "
                                           "that `grade mark` printed."}
    assert _put(client, headers={TOKEN_HEADER: "wrong"}).status_code == 403
    assert _put(client, headers={}).status_code == 403
    assert _put(client).status_code == 200


@pytest.mark.parametrize("host, status", [
    ("127.0.0.1:8765", 200), ("localhost:8765", 200), ("localhost", 200),
    ("evil.example:8765", 403), ("127.0.0.1.evil.example", 403), ("[::1]:8765", 403),
    ("localhost.:8765", 403),
])
def test_a_host_header_other_than_the_loopback_names_is_refused(client, host, status):
    got = client.get(f"/?token={TOKEN}", headers={"Host": host})
    assert got.status_code == status, host
    if status == 403:  # a page of another site, its DNS name rebound to 127.0.0.1
        assert got.get_data(as_text=True) == \
            f"Refused: the Host header {host!r} is not 127.0.0.1 or localhost.\n"
        assert _put(client, headers={TOKEN_HEADER: TOKEN, "Host": host}).status_code == 403


@pytest.mark.parametrize("body, error", [
    ({"points": "3"}, "The points '3' are not between 0 and 2."),
    ({"points": "-0.5"}, "The points '-0.5' are not between 0 and 2."),
    ({"points": "two"}, "The points 'two' are not a number."),
    ({"points": "nan"}, "The points 'nan' are not between 0 and 2."),
    ({"points": True}, "The student, task, check, points and comment must be text."),
    ({"student": "zed"}, "There is no answer of student 'zed' to task1/compare to mark."),
    ({"student": "carol"}, "There is no answer of student 'carol' to task1/compare to mark."),
    ({"task": "task1", "check": "layers"}, "There is no written answer task1/layers to mark."),
    ({"comment": "x" * 10_001}, "The comment is longer than 10,000 characters."),
])
def test_a_bad_mark_is_refused_with_a_sentence_and_nothing_is_saved(client, hand_batch, body,
                                                                     error):
    got = _put(client, **body)
    assert (got.status_code, got.get_json()) == (400, {"error": error})
    assert_one_sentence(error)
    assert not (hand_batch / MARKS).exists()


def test_a_request_that_is_not_a_json_object_is_refused(client, hand_batch):
    for data in ("points=2", "[1, 2]", "{"):
        got = client.put("/api/marks", data=data, content_type="application/json",
                         headers={TOKEN_HEADER: TOKEN})
        assert (got.status_code, got.get_json()) == (400, {"error": "The request is not a "
                                                                    "JSON object."})
    assert client.put("/api/marks", data="x" * 70_000, content_type="application/json",
                      headers={TOKEN_HEADER: TOKEN}).status_code == 413
    assert not (hand_batch / MARKS).exists()


def test_marks_round_trip_through_a_csv_a_spreadsheet_opens_safely(client, hand_batch):
    assert _put(client, points="1,5", comment="Right, but why?\nSay more.").get_json() == {
        "student": "alice", "task": "task1", "check": "compare", "points": "1.5",
        "comment": "Right, but why?\nSay more.",
        "marked_at": read_marks(hand_batch / MARKS, {("task1", "compare"): 2})[
            ("alice", "task1", "compare")].marked_at}
    assert _put(client, student="bob", points=2, comment="=HYPERLINK(\"x\")").status_code == 200
    assert _put(client, student="bob", task="task2", points="", comment="a draft"
                ).status_code == 200
    with open(hand_batch / MARKS, newline="") as fh:
        rows = list(csv.reader(fh))
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")
    assert all(stamp.fullmatch(r[6]) for r in rows[1:])
    assert [r[:6] + r[7:] for r in rows] == [
        ["student", "task", "check", "points", "comment", "marked_by", "answer_digest"],
        ["alice", "task1", "compare", "1.5", "Right, but why?\nSay more.", "ta1",
         answer_digest(ANSWERS["alice"])],
        ["bob", "task1", "compare", "2", "'=HYPERLINK(\"x\")", "ta1", answer_digest(HOSTILE)],
        ["bob", "task2", "compare", "", "a draft", "ta1", answer_digest("Slower epochs.")],
    ]
    marks = read_marks(hand_batch / MARKS, {(t, "compare"): 2.0 for t in ("task1", "task2",
                                                                           "task3")},
                       ["alice", "bob", "carol"])
    assert {k: (m.points, m.comment) for k, m in marks.items()} == {
        ("alice", "task1", "compare"): (1.5, "Right, but why?\nSay more."),
        ("bob", "task1", "compare"): (2.0, "=HYPERLINK(\"x\")"),
        ("bob", "task2", "compare"): (None, "a draft")}
    write_marks(hand_batch / MARKS, marks.values())  # what is read is what is written back
    with open(hand_batch / MARKS, newline="") as fh:
        assert list(csv.reader(fh)) == rows
    # points and comment both emptied: the row goes
    assert _put(client, student="bob", task="task2", points="", comment=" ").status_code == 200
    assert len(read_marks(hand_batch / MARKS, {(t, "compare"): 2.0 for t in ("task1", "task2",
                                                                              "task3")})) == 2


def test_the_page_shows_each_answer_escaped_with_its_mark_under_a_strict_policy(client):
    assert _put(client, student="bob", points="0.5", comment="<b>see me</b>").status_code == 200
    page = client.get(f"/?token={TOKEN}")
    html = page.get_data(as_text=True)
    nonce = re.search(r'<script nonce="([^"]+)">', html)[1]
    assert page.headers["Content-Security-Policy"] == (
        f"default-src 'none'; script-src 'nonce-{nonce}'; connect-src 'self'; "
        "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'")
    assert html.count("<script") == 1 and "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "&lt;b&gt;see me&lt;/b&gt;</textarea>" in html and 'value="0.5"' in html
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["X-Frame-Options"] == "DENY"
    # the prompt, the exercise's question and the reference answer (reference/ex8_source.py)
    assert "Compare the LSTM with the RNN model (markdown answer)." in html
    assert "In the notebook: Compare the LSTM with the RNN model. How do accuracy, training " \
           "curves and training time differ, and why?</div>" in html
    assert "Its gates let the gradient flow across the 500 time steps" in html
    assert re.search(r'<p id="absent">Not graded, or graded without this question: '
                     r'carol\.</p>', html)
    assert '<span id="done">1</span> of <span id="total">2</span>' in html


# --------------------------------------------------------------------------- the marks file


@pytest.mark.parametrize("text, error", [
    ("student,task,check,points\nalice,task1,compare,3\n",
     "line 2: the points '3' are not between 0 and 2 (task1/compare is worth 2)."),
    ("student,task,check,points,comment\nalice,task1,compare,1,ok\nbob,task1,compare,x,\n",
     "line 3: the points 'x' are not a number."),
    ("student,task,check,points,comment\nalice,task1,compare,1,\"two\nlines\"\n"
     "alice,task1,compare,2,\n",
     "line 4: alice's task1/compare is marked on line 2 already."),
    ("student,task,check,points\nalcie,task1,compare,1\n",
     "line 2: there is no student 'alcie' in this folder."),
    ("student,task,check,points\nalice,task1,layers,1\n",
     "line 2: 'task1/layers' is not a written answer of the rubric (these are: task1/compare, "
     "task2/compare, task3/compare)."),
    ("student,task,check,score\nalice,task1,compare,1\n",
     "has no 'points' column; its first line must name the columns student, task, check, "
     "points, comment, marked_by, marked_at, answer_digest."),
    ("student;task;check;points;comment\nalice;task1;compare;2,5;\n",
     "line 2: the points '2,5' are not between 0 and 2 (task1/compare is worth 2)."),
])
def test_a_bad_marks_file_is_refused_naming_file_line_and_value_and_nothing_is_written(
        hand_batch, capsys, text, error):
    (hand_batch / MARKS).write_text(text)
    before = _snapshot(hand_batch)
    with pytest.raises(MarksError) as raised:
        batch.rescore_folder(hand_batch)
    assert str(raised.value) == f"The marks file {hand_batch / MARKS}" + \
        (" " if error.startswith("has") else ", ") + error
    assert_one_sentence(str(raised.value))
    assert cli.main(["rescore", str(hand_batch)]) == 2
    assert capsys.readouterr().err == f"grade: {raised.value}\n"
    assert _snapshot(hand_batch) == before


def test_a_marks_file_a_spreadsheet_saved_reads_as_written(hand_batch):
    (hand_batch / MARKS).write_bytes(
        "\ufeffStudent;Task;Check;Points;Comment\r\nalice;task1;compare;1,5;\"'=1+1\"\r\n"
        "\r\nbob;task2;compare;;\r\n".encode())
    marks = read_marks(hand_batch / MARKS, {("task1", "compare"): 2.0, ("task2", "compare"): 2.0},
                       ["alice", "bob"])
    assert [(m.key, m.points, m.comment, m.answer_digest) for m in marks.values()] == [
        (("alice", "task1", "compare"), 1.5, "=1+1", ""),
        (("bob", "task2", "compare"), None, "", "")]


def test_a_marks_file_that_is_a_link_is_refused(hand_batch, tmp_path):
    (tmp_path / "elsewhere.csv").write_text("student,task,check,points\n")
    (hand_batch / MARKS).symlink_to(tmp_path / "elsewhere.csv")
    with pytest.raises(MarksError, match=r"marks\.csv is a link, not a regular file\.$"):
        batch.rescore_folder(hand_batch)


# --------------------------------------------------------------------------- merging


def test_a_mark_counts_for_the_answer_it_was_given_to():
    result = _result("first answer")
    given = Mark("alice", "task1", "compare", 1.5, "ok", answer_digest=answer_digest(
        "first answer"))
    marked, stale = apply_marks(result, {("task1", "compare"): given})
    check = marked.tasks[1].checks[1]
    assert (check.status, check.score, check.comment, check.message) == (
        "marked", 1.5, "ok", "Task 1: marked by a TA, 1.5 of 2 points.")
    assert stale == []
    assert (marked.automatic, marked.automatic_max, marked.marked, marked.marked_max,
            marked.pending, marked.score, marked.max_score) == (1, 7, 1.5, 2, 4, 2.5, 9)
    assert marked.exit_code == result.exit_code  # the exit code is the automatic checks'
    changed = _result("an answer rewritten since")
    again, stale = apply_marks(changed, {("task1", "compare"): given})
    check = again.tasks[1].checks[1]
    assert (check.status, check.score, stale) == ("pending", 0.0, [given])
    assert check.message == "Task 1: to be marked by a TA. It was marked (1.5 points) before " \
                            "the answer changed, so it is to be marked again."
    unmarked = replace(given, points=None)  # a comment alone is not a mark
    assert apply_marks(result, {("task1", "compare"): unmarked}) == (result, [])


def test_results_json_lists_answers_to_be_marked_apart_and_marked_ones_as_tests():
    pending = to_gradescope(_result("my answer"))
    jsonschema.validate(pending, SCHEMA)
    assert [t["extra_data"] for t in pending["tests"]] == [
        {"task": "rnn", "check": "params"}, {"task": "task1", "check": "layers"}]
    assert pending["score"] == 1
    assert pending["output"] == (
        "Written answers to be marked by a TA (6 points, not in this score yet):\n"
        "- Task 1: written answer (2 points): your answer:\n  my answer\n"
        "- Task 2: written answer (2 points): your answer:\n  Slower epochs.\n"
        "- Task 3: written answer (2 points): your answer:\n  Faster.")
    assert pending["extra_data"]["to_be_marked"][0] == {
        "task": "task1", "check": "compare", "name": "Task 1: written answer",
        "max_score": 2.0, "answer": "my answer"}
    marks = {("task1", "compare"): Mark("a", "task1", "compare", 1.5, "Say why."),
             ("task2", "compare"): Mark("a", "task2", "compare", 2.0, "")}
    marked = to_gradescope(apply_marks(_result("my answer"), marks)[0])
    jsonschema.validate(marked, SCHEMA)
    tests = {t["extra_data"]["check"] + "/" + t["extra_data"]["task"]: t for t in marked["tests"]}
    assert (tests["compare/task1"]["score"], tests["compare/task1"]["status"],
            tests["compare/task1"]["output"]) == (
        1.5, "failed", "Task 1: marked by a TA, 1.5 of 2 points.\nComment: Say why.")
    assert (tests["compare/task2"]["score"], tests["compare/task2"]["status"]) == (2, "passed")
    assert marked["score"] == 4.5
    assert [e["task"] for e in marked["extra_data"]["to_be_marked"]] == ["task3"]


def test_a_row_stored_before_marks_existed_reads_back_with_its_total_as_automatic(tmp_path):
    row = {"student": "a", "name": "", "points": {"rnn": 1.0}, "total": 1.0, "status": "graded",
           "reason": "", "feedback": "a/feedback.html", "seconds": 3.0}
    assert stored.Row.from_dict(row) == stored.Row("a", "", {"rnn": 1.0}, 1.0, "graded", "",
                                                   "a/feedback.html", 3.0, automatic=1.0,
                                                   marked=0.0, pending=None)
    assert stored.Row.from_dict({**row, "pending": 2.0}) is None  # part of the new ones only


def test_a_batch_run_keeps_a_graded_again_students_marks(hand_batch):
    """A student graded again (a resubmission with the same answer) keeps the TA's mark."""
    from grader.batch.folder import _GradingBook
    from grader.marking import by_student

    mark = Mark("alice", "task1", "compare", 2.0, "Good.", "ta1", "",
                answer_digest(ANSWERS["alice"]))
    write_marks(hand_batch / MARKS, [mark])
    rub = load_rubric()
    book = _GradingBook(hand_batch, [t.id for t in rub.tasks],
                        marks=by_student({mark.key: mark}),
                        settings=Settings("structure", str(rub.path), rub.digest,
                                          str(hand_batch), str(hand_batch.parent)),
                        digest="run", timeout=900)
    job = Job("alice", "ALICE", "", "alice_ex8.ipynb", "alice", "1" * 64)
    row = book.record(job, {"result": to_dict(_result(ANSWERS["alice"])), "seconds": 2.0})
    assert (row.points["task1"], row.automatic, row.marked, row.pending, row.total) == (
        2, 1, 2, 4, 3)
    stored_result = json.loads((hand_batch / "alice" / "result.json").read_text())
    assert stored_result["tasks"][1]["checks"][1]["status"] == "marked"
    assert '<div class="ta-comment">The TA\'s comment:<div class="written">Good.</div>' in \
        (hand_batch / "alice" / "feedback.html").read_text()


def test_mark_command_arguments_reach_the_server(hand_batch, monkeypatch):
    from grader.marking import server

    seen = {}
    monkeypatch.setattr(server, "serve", lambda folder, **kw: seen.update(kw, folder=folder))
    assert cli.main(["mark", str(hand_batch), "--port", "8123", "--no-browser", "--by",
                     "ta2"]) == 0
    assert seen.pop("folder").path == hand_batch.resolve()
    assert seen == {"port": 8123, "open_browser": False, "marked_by": "ta2"}
    assert cli.main(["mark", str(hand_batch / "nowhere")]) == 2


def test_results_from_before_answers_were_stored_are_rescored_first(hand_batch, capsys):
    path = hand_batch / "alice" / "result.json"
    data = json.loads(path.read_text())
    for task in data["tasks"]:
        for check in task["checks"]:
            check.pop("answer")
            check.pop("comment")
    path.write_text(json.dumps(data))
    assert cli.main(["mark", str(hand_batch), "--no-browser"]) == 2
    assert capsys.readouterr().err == (
        f"grade: The results in {hand_batch} were written by an earlier version of the grader, "
        f"without the answers' text; run `grade rescore {hand_batch}` first.\n")


# --------------------------------------------------------------------------- in a browser


def _set_answer(executed: Path, task: str, answer: str) -> None:
    nb = nbformat.read(executed, as_version=4)
    (cell,) = [c for c in nb.cells if "answer" in c.metadata.get("tags", [])
               and c.metadata.get("ex8", {}).get("task") == task]
    cell.source = "**The question.**\n\n" + answer
    nbformat.write(nb, executed)


@pytest.fixture(scope="module")
def graded_batch(reference_structure, tmp_path_factory):
    """The reference, graded once, as a batch of two students: alice's answers are the
    reference's, bob's task 1 answer is hostile HTML."""
    _, graded = reference_structure
    out = _write_batch(tmp_path_factory.mktemp("marking") / "graded",
                       {"alice": _result(""), "bob": _result("")})
    for student in ("alice", "bob"):  # the real grading's files over the stand-ins
        shutil.copytree(graded, out / student, symlinks=True, dirs_exist_ok=True)
    _set_answer(out / "bob" / "executed.ipynb", "task1", HOSTILE)
    assert cli.main(["rescore", str(out)]) == 0  # reports and rows from the real folders
    return out


def _gradebook(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "gradebook.csv", newline="") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}


@pytest.mark.kernel
def test_answers_to_be_marked_are_reported_apart_from_the_automatic_score(graded_batch):
    book = _gradebook(graded_batch)
    assert list(book["alice"]) == ["student", "name", "rnn", "task1", "task2", "task3", "bonus",
                                   "automatic", "marked", "to_be_marked", "total", "status",
                                   "reason", "feedback"]
    for student in ("alice", "bob"):
        assert {k: book[student][k] for k in ("task1", "automatic", "marked", "to_be_marked",
                                              "total")} == {
            "task1": "13", "automatic": "55", "marked": "0", "to_be_marked": "6", "total": "55"}
    feedback = (graded_batch / "alice" / "feedback.html").read_text()
    assert '<p class="score" id="total">Score: 55 / 55 points (structure profile)</p>' in feedback
    assert "6 more points are to be marked by a TA (written answers), not in this score yet." \
        in feedback
    assert feedback.count('<td class="pending">to be marked</td>') == 3
    assert feedback.count("&ndash; / 2</td>") == 3
    results = json.loads((graded_batch / "alice" / "results.json").read_text())
    assert not [t for t in results["tests"] if t["extra_data"]["check"] == "compare"]
    assert [e["task"] for e in results["extra_data"]["to_be_marked"]] == ["task1", "task2",
                                                                         "task3"]


@pytest.mark.kernel
def test_a_ta_marks_two_answers_in_the_browser_and_rescore_merges_them(graded_batch, tmp_path):
    from playwright.sync_api import sync_playwright

    running = start(open_folder(graded_batch), marked_by="ta1")
    dialogs, errors = [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else 0)
                assert page.goto(running.url).status == 200
                assert page.inner_text("h1") == \
                    "Task 1: LSTM with Dropout layers: written answer (2 points)"
                assert page.inner_text('section[data-student="bob"] .text') == HOSTILE
                for student, points, comment in (("alice", "1.5", "Right about the gates."),
                                                 ("bob", "2", "<b>Good</b>, and brief.")):
                    row = f'section[data-student="{student}"]'
                    page.fill(f"{row} input.points", points)
                    page.fill(f"{row} textarea.comment", comment)
                    page.wait_for_selector(f'{row}[data-state="saved"]', timeout=10_000)
                page.reload()
                assert page.input_value('section[data-student="alice"] input.points') == "1.5"
                assert page.input_value('section[data-student="bob"] textarea.comment') == \
                    "<b>Good</b>, and brief."
                assert page.inner_text("#done") == "2"
                page.fill('section[data-student="alice"] input.points', "5")
                page.wait_for_selector('section[data-student="alice"][data-state="error"]')
                assert page.inner_text('section[data-student="alice"] .state') == \
                    "The points '5' are not between 0 and 2."
                page.fill('section[data-student="alice"] input.points', "1.5")
                page.wait_for_selector('section[data-student="alice"][data-state="saved"]')
                wrong = page.goto(running.url.replace("token=", "token=x"))
                assert wrong.status == 403 and "Refused" in page.content()
                assert page.goto(running.url.split("?")[0]).status == 403
            finally:
                browser.close()
    finally:
        running.stop()
    # the browser's own line for each refusal above (400, 403) is the only console error
    assert dialogs == [] and [e for e in errors if "Failed to load resource" not in e] == []
    marks = read_marks(graded_batch / MARKS, {("task1", "compare"): 2.0},
                       ["alice", "bob"])
    assert {k[0]: (m.points, m.comment, m.marked_by) for k, m in marks.items()} == {
        "alice": (1.5, "Right about the gates.", "ta1"),
        "bob": (2.0, "<b>Good</b>, and brief.", "ta1")}

    assert cli.main(["rescore", str(graded_batch)]) == 0
    book = _gradebook(graded_batch)
    assert {s: {k: book[s][k] for k in ("task1", "automatic", "marked", "to_be_marked", "total")}
            for s in book} == {
        "alice": {"task1": "14.5", "automatic": "55", "marked": "1.5", "to_be_marked": "4",
                  "total": "56.5"},
        "bob": {"task1": "15", "automatic": "55", "marked": "2", "to_be_marked": "4",
                "total": "57"}}
    index = (graded_batch / "index.html").read_text()
    row = re.search(r'<tr class="student"[^>]*><td>alice</td>.*?</tr>', index, re.S)[0]
    assert re.findall(r'<td class="num ([\w-]+)">([^<]*)</td>', row) == [
        ("automatic", "55"), ("marked", "1.5"), ("to-be-marked", "4"), ("total", "56.5")]
    assert "<th class=\"num\">Marked by a TA (/6)</th>" in index
    feedback = (graded_batch / "alice" / "feedback.html").read_text()
    assert "Score: 56.5 / 57 points (structure profile): 55 / 55 from the automatic checks, " \
           "1.5 / 2 marked by a TA (written answers)" in feedback
    assert "4 more points are to be marked by a TA" in feedback
    task1 = re.search(r'<tr class="check" id="check-task1-compare" data-check="task1/compare"'
                      r'[^>]*>.*?</tr>', feedback, re.S)[0]
    assert '<td class="marked">marked by a TA</td>' in task1 and "1.5 / 2" in task1
    assert "Task 1: marked by a TA, 1.5 of 2 points." in task1
    assert '<div class="written">Right about the gates.</div>' in task1
    bob = (graded_batch / "bob" / "feedback.html").read_text()
    assert "&lt;b&gt;Good&lt;/b&gt;, and brief." in bob and "<b>Good</b>" not in bob
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in bob and "<script>" not in bob
    results = json.loads((graded_batch / "alice" / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    (task1_test,) = [t for t in results["tests"] if t["extra_data"] == {"task": "task1",
                                                                      "check": "compare"}]
    assert (task1_test["score"], task1_test["max_score"], task1_test["status"]) == (1.5, 2,
                                                                                   "failed")
    assert task1_test["output"].endswith("\nComment: Right about the gates.")
    assert results["score"] == 56.5
    assert [e["task"] for e in results["extra_data"]["to_be_marked"]] == ["task2", "task3"]


def test_an_lms_export_lists_the_totals_that_leave_out_answers_to_be_marked(tmp_path, capsys):
    graded = _write_batch(tmp_path / "graded", {"12345": _result("x")})
    sheet = tmp_path / "worksheet.csv"
    sheet.write_text("Identifier,Full name,Grade,Feedback comments\n"
                     "Participant 12345,Jane Doe,,\n")
    out = tmp_path / "filled.csv"
    assert cli.main(["export", str(graded), "--to", "moodle", "--template", str(sheet),
                     "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "totals without the written answers still to be marked (grade mark, then grade rescore "
        "and export again): 1", "  12345: 6 points to be marked"]
    assert "Written answers still to be marked: 6 points." in out.read_text()
