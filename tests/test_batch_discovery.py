"""Finding a batch's submissions, without a kernel: links, FIFOs, devices and sockets are skipped
and never opened; Moodle's and Canvas' download names never claim each other's students; names
with control characters are skipped; what a batch stores reads back only as it was written; the
gradebook is safe to open in a spreadsheet; the grading process grades a copy of exactly the
bytes it hashed."""

from __future__ import annotations

import csv
import hashlib
import os
import socket
import stat
import sys
import threading
from pathlib import Path

import pytest

from grader.batch import Row, find_submissions, stored
from grader.batch.discover import UNCLAIMED, identify_file, identify_folder, safe_folder
from grader.batch.worker import stage
from grader.errors import InputError

LINK = "a link; links are never followed (copy the file itself into the folder)"

_OPENED: list[str] | None = None  # while set, every path this process opens is added to it


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _OPENED is not None and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed: this one records only when asked


def _find(folder: Path, seconds: float = 20.0):
    """find_submissions in a thread: a FIFO it blocked on would fail the test, not hang it.
    Returns (jobs, skipped, every path opened meanwhile)."""
    global _OPENED
    found = {}
    _OPENED = opened = []

    def run():
        found["value"] = find_submissions(folder)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    _OPENED = None
    assert not thread.is_alive(), "find_submissions hung"
    return (*found["value"], opened)


def _skips(skipped) -> list[tuple[str, str]]:
    return [(s.path, s.reason) for s in skipped]


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "root-only" / "secret"
    path.parent.mkdir(mode=0o700)
    path.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    path.chmod(0o600)
    return path


def test_a_linked_submission_is_skipped_and_never_read(tmp_path, secret):
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "alice_ex8.py").symlink_to(secret)
    (folder / "mallory_ex8.ipynb").symlink_to("/etc/shadow")
    (folder / "zero_ex8.py").symlink_to("/dev/zero")
    (folder / "dangling_ex8.py").symlink_to(tmp_path / "nowhere")
    (folder / "dave").mkdir()
    (folder / "dave" / "ex8.ipynb").symlink_to(secret)  # inside a student's folder too
    jobs, skipped, opened = _find(folder)
    assert jobs == []
    assert _skips(skipped) == [("alice_ex8.py", LINK), ("dangling_ex8.py", LINK),
                               ("dave/ex8.ipynb", LINK), ("mallory_ex8.ipynb", LINK),
                               ("zero_ex8.py", LINK)]
    assert not [p for p in opened if "ex8" in p or p in (str(secret), "/etc/shadow",
                                                         "/dev/zero")], opened


def test_a_linked_student_folder_is_skipped_not_graded_as_its_target(tmp_path):
    folder = tmp_path / "subs"
    (folder / "carol").mkdir(parents=True)
    (folder / "carol" / "ex8.ipynb").write_text("{}")
    (folder / "bob").symlink_to("carol")
    (folder / "erin").symlink_to(tmp_path)  # a link out of the submissions folder
    jobs, skipped, _ = _find(folder)
    assert [(j.student, j.shown) for j in jobs] == [("carol", "carol/ex8.ipynb")]
    assert _skips(skipped) == [("bob", LINK), ("erin", LINK)]


def test_a_fifo_a_device_and_a_socket_are_skipped_without_hanging(tmp_path):
    folder = tmp_path / "s"
    (folder / "dave").mkdir(parents=True)
    os.mkfifo(folder / "x_ex8.ipynb")
    os.mkfifo(folder / "dave" / "ex8.ipynb")
    os.mknod(folder / "zero_ex8.py", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero's
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "s_ex8.py"))
    try:
        jobs, skipped, opened = _find(folder)
    finally:
        sock.close()
    assert jobs == []
    assert _skips(skipped) == [
        ("dave/ex8.ipynb", "a FIFO, not a regular file; it was not opened"),
        ("s_ex8.py", "a socket, not a regular file; it was not opened"),
        ("x_ex8.ipynb", "a FIFO, not a regular file; it was not opened"),
        ("zero_ex8.py", "a character device, not a regular file; it was not opened")]
    assert not [p for p in opened if "ex8" in p], opened


def test_a_submission_is_hashed_from_what_was_opened_and_bounded(tmp_path, monkeypatch):
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "alice_ex8.ipynb").write_bytes(b"{}" * 10)
    (folder / "huge_ex8.py").write_bytes(b"#" * 101)
    monkeypatch.setattr("grader.batch.discover.MAX_SUBMISSION_BYTES", 100)
    jobs, skipped, _ = _find(folder)
    assert skipped == []
    assert [(j.student, j.content, j.problem) for j in jobs] == [
        ("alice", hashlib.sha256(b"{}" * 10).hexdigest(), None),
        ("huge", "", "huge_ex8.py is 0 MB; a submission may have at most 0 MB (clear the "
                     "outputs).")]


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("name, who", [
    # Canvas: <sortable name>[_late]_<user id>_<submission id>_<original name>
    ("doejane_123456_7654321_ex8.ipynb", ("123456", "doejane")),
    ("doejane_late_123456_7654321_ex8-1.ipynb", ("123456", "doejane")),
    ("smithbob_340934_208490284_BobsExercise8.ipynb", ("340934", "smithbob")),
    ("mallory_999_555_12345_assignsubmission_file_ex8.ipynb", ("999", "mallory")),
    # Moodle: <full name>_<participant id>_assignsubmission_file_<original name>
    ("Jane Doe_1234567_assignsubmission_file_ex8.ipynb", ("1234567", "Jane Doe")),
    ("José Álvarez Ruiz_88_assignsubmission_file_mein ex8.ipynb", ("88", "José Álvarez Ruiz")),
    ("Participant_1234567_assignsubmission_file_ex8.py", ("1234567", "Participant")),  # blind
    ("Jane Doe_12345_assignsubmission_file_doejane_999_555_ex8.ipynb", ("12345", "Jane Doe")),
    # plain
    ("alice_ex8.ipynb", ("alice", "")),
    ("bob smith-Exercise8-1.py", ("bob smith", "")),
])
def test_moodle_and_canvas_names_claim_their_own_student(name, who):
    assert identify_file(name) == who


@pytest.mark.parametrize("name, reason", [
    ("Participant_12345_assignsubmission_file_2024_01_ex8.ipynb",
     "the name fits both a Moodle download (student 12345) and a Canvas one (student 2024); "
     "rename it <student>_ex8.ipynb"),
    ("alice_ex8\n.ipynb", "the name holds a control character; rename it"),
    ("alice_ex8.ipynb\n", "the name holds a control character; rename it"),
    ("ali\tce_ex8.ipynb", "the name holds a control character; rename it"),
    ("alice\x85_ex8.ipynb", "the name holds a control character; rename it"),
    ("alice\u202egnp.ex8.ipynb", "the name holds a control character; rename it"),
    ("alice\udcff_ex8.ipynb", "the name is not valid UTF-8 text; rename it"),
    ("ex8.ipynb", UNCLAIMED),
])
def test_a_name_that_fits_both_lms_or_holds_control_characters_claims_nobody(name, reason):
    assert identify_file(name) == reason


@pytest.mark.parametrize("name, who", [
    ("Jane Doe_12345_assignsubmission_file", ("12345", "Jane Doe")),
    ("Jane Doe_12345_assignsubmission_file_", ("12345", "Jane Doe")),  # Moodle 3.x
    ("alice", ("alice", "")),
    ("eve\x1b[31m", "the name holds a control character; rename it"),
])
def test_student_folder_names(name, who):
    assert identify_folder(name) == who


def test_a_canvas_download_never_claims_a_moodle_student(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    for name in ("mallory_999_555_12345_assignsubmission_file_ex8.ipynb",
                 "Jane Doe_12345_assignsubmission_file_ex8.ipynb"):
        (folder / name).write_text("{}")
    jobs, skipped, _ = _find(folder)
    assert skipped == []
    assert [(j.student, j.name, j.problem) for j in jobs] == [
        ("12345", "Jane Doe", None), ("999", "mallory", None)]


def test_names_with_control_characters_are_skipped_and_shown_escaped(tmp_path):
    folder = tmp_path / "subs"
    (folder / "eve\x1b[2J").mkdir(parents=True)
    (folder / "eve\x1b[2J" / "ex8.ipynb").write_text("{}")
    (folder / "frank").mkdir()
    (folder / "frank" / "ex8\r.ipynb").write_text("{}")
    (folder / "alice_ex8\n.ipynb").write_text("{}")
    (folder / "alice_ex8.ipynb\n").write_text("{}")
    jobs, skipped, _ = _find(folder)
    assert jobs == []
    control = "the name holds a control character; rename it"
    assert _skips(skipped) == [("alice_ex8\\n.ipynb", control), ("alice_ex8.ipynb\\n", control),
                               ("eve\\x1b[2J/", control), ("frank/ex8\\r.ipynb", control)]


def test_a_student_folder_never_begins_with_a_dash():
    assert safe_folder("-rf") == "rf" and safe_folder("=1+1") == "1_1"
    assert safe_folder("..") == "_" and safe_folder("bob smith") == "bob_smith"


# --------------------------------------------------------------------------- the worker's copy


def test_the_grading_process_grades_a_copy_of_exactly_the_bytes_it_hashed(tmp_path, secret):
    folder = tmp_path / "subs"
    (folder / "bob").mkdir(parents=True)
    (folder / "bob" / "ex8.ipynb").write_bytes(b'{"x": 1}')
    staging = tmp_path / "staging"
    digest = stage(str(folder), "bob/ex8.ipynb", staging)
    assert (staging / "bob" / "ex8.ipynb").read_bytes() == b'{"x": 1}'
    assert digest == hashlib.sha256(b'{"x": 1}').hexdigest()

    # replaced by links after it was found: nothing is copied
    (folder / "carol").symlink_to("bob")
    (folder / "alice_ex8.ipynb").symlink_to(secret)
    for shown in ("carol/ex8.ipynb", "alice_ex8.ipynb"):
        with pytest.raises(InputError) as info:
            stage(str(folder), shown, tmp_path / f"staging-{shown[0]}")
        assert str(info.value) == f"{shown} was not graded: {LINK}."
        assert not (tmp_path / f"staging-{shown[0]}" / shown).exists()
    os.mkfifo(folder / "x_ex8.ipynb")
    with pytest.raises(InputError, match=r"^x_ex8.ipynb was not graded: a FIFO, not a regular "
                                         r"file; it was not opened\.$"):
        stage(str(folder), "x_ex8.ipynb", tmp_path / "staging-x")


# --------------------------------------------------------------------------- stored files


def test_gradebook_cells_a_spreadsheet_would_run_are_quoted_and_numbers_stay_numbers(tmp_path):
    rows = {
        "=HYPERLINK(\"http://x\")": Row("=HYPERLINK(\"http://x\")", "+Jane", {"rnn": 3.0},
                                        3.0, "graded", "", "HYPERLINK_http_x/feedback.html",
                                        automatic=2.0, marked=1.0, pending=0.5),
        "@SUM(A1)": Row("@SUM(A1)", "-Bob", {"rnn": -1.5}, -1.5, "not_graded",
                        "\tcmd|' /C calc'!A0", "SUM_A1/feedback.html"),
        "carol": Row("carol", "Carol O'Neil", {}, None, "error", "\rx, \"y\"\nz",
                     "carol/feedback.html"),
    }
    stored.write_gradebook(tmp_path, rows, ["rnn"])
    with open(tmp_path / stored.GRADEBOOK, newline="") as fh:
        book = list(csv.reader(fh))
    assert book == [
        ["student", "name", "rnn", "automatic", "marked", "to_be_marked", "total", "status",
         "reason", "feedback"],
        ["'=HYPERLINK(\"http://x\")", "'+Jane", "3", "2", "1", "0.5", "3", "graded", "",
         "HYPERLINK_http_x/feedback.html"],
        ["'@SUM(A1)", "'-Bob", "-1.5", "", "", "", "-1.5", "not_graded",
         "'\tcmd|' /C calc'!A0", "SUM_A1/feedback.html"],
        ["carol", "Carol O'Neil", "", "", "", "", "", "error", "'\rx, \"y\"\nz",
         "carol/feedback.html"],
    ]


def _row(**kw) -> Row:
    return Row(**{**dict(student="alice", name="", points={"rnn": 3.0}, total=3.0,
                         status="graded", reason="", feedback="alice/feedback.html"), **kw})


def test_a_marker_reads_back_only_as_the_grader_wrote_it(tmp_path):
    from grader.batch import Job
    from grader.batch.worker import Settings

    job = Job("alice", "", "", "alice_ex8.ipynb", "alice", content="c" * 64)
    settings = Settings("quick", "r.yaml", "d" * 64, str(tmp_path), str(tmp_path))
    (tmp_path / "alice").mkdir()
    stored.write_marker(tmp_path, job, settings, _row(), "run", 300, "host:1")
    path = tmp_path / "alice" / stored.MARKER
    marker = stored.read_marker(path)
    assert (marker.content, marker.run, marker.timeout, marker.row) == ("c" * 64, "run", 300,
                                                                        _row())
    good = path.read_text()
    for bad in ("[", "[]", good.replace('"graded"', '"perfect"'),
                good.replace('"total": 3.0', '"total": "3"'), good.replace('"run"', '"ran"')):
        path.write_text(bad)
        assert stored.read_marker(path) is None, bad
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_text(good)
    assert stored.read_marker(path) is None  # the grader writes no links


def test_a_manifest_names_student_folders_inside_the_output_folder_only(tmp_path):
    from grader.batch import Job

    stored.write_manifest(tmp_path, tmp_path, "quick",
                          [Job("alice", "", "", "alice_ex8.ipynb", "alice")], [])
    manifest = stored.read_manifest(tmp_path / stored.MANIFEST)
    assert manifest.students == ({"student": "alice", "folder": "alice",
                                  "shown": "alice_ex8.ipynb"},)
    text = (tmp_path / stored.MANIFEST).read_text()
    (tmp_path / stored.MANIFEST).write_text(text.replace('"folder": "alice"',
                                                         '"folder": "../../etc"'))
    assert stored.read_manifest(tmp_path / stored.MANIFEST) is None
