"""`grade export`: a graded batch's totals in Canvas' gradebook export and Moodle's grading
worksheet (sample files in each system's format, in tests/fixtures/lms/), every other byte of
the file kept; students found on one side only are listed and set the exit code."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from grader import cli
from grader.export import lms
from grader.export.graded import GradedStudent
from grader.export.lms import export_gradebook
from grader.export.sheet import Sheet, neutralise
from grader.results import CheckResult, SubmissionResult, TaskResult, to_dict

from .conftest import assert_one_sentence

FIXTURES = Path(__file__).parent / "fixtures" / "lms"
TASKS = ["rnn", "task1", "task2", "task3", "bonus"]


def _check(task, check, name, score, max_score, status):
    return CheckResult(task=task, check=check, kind=check, name=name, score=score,
                       max_score=max_score, status=status, message="")


JANE = SubmissionResult(submission="x.ipynb", profile="quick", status="graded", tasks=(
    TaskResult("task1", "Task 1: LSTM with Dropout layers", (
        _check("task1", "layers", "Task 1: layers", 6, 6, "passed"),
        _check("task1", "accuracy", "Task 1: test accuracy", 0, 6, "failed"),
        _check("task1", "compare", "Task 1: written answer", 0, 2, "pending"))),
    TaskResult("bonus", "Bonus: ConvLSTM2D next-frame prediction", (
        _check("bonus", "layers", "Bonus: layers", 6, 6, "passed"),))))


def make_batch(folder: Path, rows: list[tuple[str, str, str, str, str]],
               results: dict[str, SubmissionResult] | None = None) -> Path:
    """A graded batch's output folder as `grade FOLDER` leaves it: gradebook.csv, manifest.json
    and, for the students in ``results``, their result.json. Rows: (student, name, total,
    status, reason)."""
    folder.mkdir(parents=True)
    with open(folder / "gradebook.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["student", "name", *TASKS, "total", "status", "reason", "feedback"])
        for student, name, total, status, reason in rows:
            writer.writerow([student, name, *[""] * len(TASKS), total, status, reason,
                             f"{student}/feedback.html"])
    (folder / "manifest.json").write_text(json.dumps({
        "folder": "/course/submissions", "profile": "quick", "skipped": [],
        "students": [{"student": s, "folder": s, "shown": f"{s}.ipynb"} for s, *_ in rows]}))
    for student, result in (results or {}).items():
        (folder / student).mkdir()
        (folder / student / "result.json").write_text(json.dumps(to_dict(result)))
    return folder


def _rows(name: str) -> list[tuple[str, ...]]:
    """Gradebook rows (student, name, total, status, reason) from a fixture file."""
    with open(FIXTURES / name, newline="", encoding="utf-8") as fh:
        return [tuple(r.values()) for r in csv.DictReader(fh)]


@pytest.fixture
def canvas_batch(tmp_path):
    return make_batch(tmp_path / "submissions_graded", _rows("canvas_batch_rows.csv"))


@pytest.fixture
def moodle_batch(tmp_path):
    return make_batch(tmp_path / "submissions_graded", _rows("moodle_batch_rows.csv"),
                      results={"12345": JANE})


def test_canvas_export_fills_the_assignment_column_and_keeps_every_other_byte(canvas_batch):
    summary = export_gradebook(canvas_batch, "canvas", FIXTURES / "canvas_gradebook_export.csv")
    assert summary.out == canvas_batch.parent / "submissions_graded_canvas.csv"
    assert summary.out.read_bytes() == (FIXTURES / "canvas_gradebook_filled.csv").read_bytes()
    assert summary.column == "Exercise 8 - Recurrent Neural Networks (1002)"
    assert summary.maximum == 76 and summary.comments is False
    assert summary.filled == ("12345", "34567", "bsmith")  # bsmith: by SIS Login ID
    assert summary.only_batch == (("99999", "ghostgus"),)
    assert summary.only_lms == (("56789", '="=1+1, Ann"'), ("1", "Student, Test"))
    assert summary.no_total == (("11111", "not_graded: The file x.ipynb is not valid JSON."),)
    assert summary.kept == (("45678", "excused (EX) in Canvas"),)
    assert summary.over_maximum == () and summary.unmatched


def test_moodle_export_fills_grades_and_escaped_feedback_comments(moodle_batch):
    summary = export_gradebook(moodle_batch, "moodle",
                               FIXTURES / "moodle_grading_worksheet.csv")
    assert summary.out.read_bytes() == \
        (FIXTURES / "moodle_grading_worksheet_filled.csv").read_bytes()
    assert summary.column == "Grade" and summary.comments is True
    assert summary.filled == ("12345", "45678", "67890")
    assert summary.kept == (("34567", "Moodle says the grade cannot be changed"),)
    assert summary.only_batch == (("99999", "Gus Ghost"), ("alice", ""))
    assert summary.only_lms == (("23456", "Sam Roe"),)
    assert summary.over_maximum == (("45678", 85.0),) and summary.maximum == 80


def test_export_command_lists_one_sided_students_and_exits_1(moodle_batch, tmp_path, capsys):
    out = tmp_path / "to_upload.csv"
    code = cli.main(["export", str(moodle_batch), "--to", "moodle", "--template",
                     str(FIXTURES / "moodle_grading_worksheet.csv"), "--out", str(out)])
    assert code == 1
    assert capsys.readouterr().out == (
        f"Moodle: 3 totals and feedback comments in column 'Grade': {out}\n"
        "only in the batch (no row in the Moodle file): 2\n"
        "  99999: Gus Ghost\n"
        "  alice\n"
        "only in the Moodle file (nothing graded): 1\n"
        "  23456: Sam Roe\n"
        "left as they were (Moodle): 1\n"
        "  34567: Moodle says the grade cannot be changed\n"
        "above the file's maximum of 80 (Moodle's import skips these): 45678 (85)\n")


def test_export_exits_0_when_every_student_is_matched(tmp_path, capsys):
    batch = make_batch(tmp_path / "b", [("12345", "", "12", "graded", "")])
    template = tmp_path / "worksheet.csv"
    template.write_text('Identifier,"Full name",Grade,"Last modified (grade)"\n'
                        '"Participant 12345","Jane Doe",,-\n')
    assert cli.main(["export", str(batch), "--to", "moodle", "--template", str(template)]) == 0
    assert (tmp_path / "b_moodle.csv").read_text() == (
        'Identifier,"Full name",Grade,"Last modified (grade)"\n'
        '"Participant 12345","Jane Doe",12,-\n')
    assert "1 totals in column 'Grade'" in capsys.readouterr().out


CANVAS_TWO = ("Student,ID,SIS Login ID,Section,Ex 8 draft (7),Exercise 8 (8),Quiz 3 (9)\n"
              "    Points Possible,,,,1.00,76.00,5.00\n"
              "\"Doe, Jane\",12345,jdoe,A,,,\n")


@pytest.mark.parametrize("column, filled", [
    ("Exercise 8 (8)", "Exercise 8 (8)"), ("exercise 8", "Exercise 8 (8)"), ("7", "Ex 8 draft (7)"),
])
def test_canvas_column_by_title_header_or_assignment_id(tmp_path, column, filled):
    batch = make_batch(tmp_path / "b", [("12345", "", "70", "graded", "")])
    (tmp_path / "export.csv").write_text(CANVAS_TWO)
    summary = export_gradebook(batch, "canvas", tmp_path / "export.csv", column=column)
    assert summary.column == filled
    row = summary.out.read_text().splitlines()[2].split(",")
    assert row[5 if filled.endswith("(7)") else 6] == "70"


@pytest.mark.parametrize("column, words", [
    (None, "In the Canvas file {f}, 2 assignment columns name Exercise 8; choose one with "
           "--column (its assignment columns are 'Ex 8 draft (7)', 'Exercise 8 (8)', "
           "'Quiz 3 (9)')."),
    ("Exercise 9", "The Canvas file {f} has no assignment column 'Exercise 9'; its assignment "
                   "columns are 'Ex 8 draft (7)', 'Exercise 8 (8)', 'Quiz 3 (9)'."),
])
def test_an_ambiguous_or_unknown_canvas_column_is_an_error_listing_the_candidates(
        tmp_path, capsys, column, words):
    batch = make_batch(tmp_path / "b", [("12345", "", "70", "graded", "")])
    (tmp_path / "export.csv").write_text(CANVAS_TWO)
    args = ["export", str(batch), "--to", "canvas", "--template", str(tmp_path / "export.csv")]
    assert cli.main(args + (["--column", column] if column else [])) == 2
    err = capsys.readouterr().err.strip()
    assert err == "grade: " + words.format(f=tmp_path / "export.csv")
    assert_one_sentence(err.removeprefix("grade: "))
    assert not (tmp_path / "b_canvas.csv").exists()


def test_canvas_semicolon_export_stays_semicolon_separated(tmp_path):
    batch = make_batch(tmp_path / "b", [("12345", "", "62.5", "graded", "")])
    (tmp_path / "export.csv").write_text(
        "Student;ID;SIS Login ID;Section;Exercise 8 (8);Current Score\n"
        "    Points Possible;;;;76,00;(read only)\n"
        "\"Doe; Jane\";12345;jdoe;A;;81,2\n")
    summary = export_gradebook(batch, "canvas", tmp_path / "export.csv")
    assert summary.out.read_text().splitlines()[2] == "\"Doe; Jane\";12345;jdoe;A;62.5;81,2"
    assert summary.maximum == 76


@pytest.mark.parametrize("name, text, words", [
    ("grades.csv", "name,points\nJane,3\n", "is not a Canvas gradebook export"),
    ("readonly.csv", "Student,ID,Section,Exercise 8 (8)\n    Points Possible,,,(read only)\n",
     "the column 'Exercise 8 (8)' is read only"),
])
def test_a_file_canvas_did_not_write_is_refused(tmp_path, capsys, name, text, words):
    batch = make_batch(tmp_path / "b", [("12345", "", "70", "graded", "")])
    (tmp_path / name).write_text(text)
    assert cli.main(["export", str(batch), "--to", "canvas", "--template",
                     str(tmp_path / name)]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and str(tmp_path / name) in err
    assert_one_sentence(err.removeprefix("grade: "))


def test_a_worksheet_without_identifier_is_refused(tmp_path, capsys):
    batch = make_batch(tmp_path / "b", [("12345", "", "70", "graded", "")])
    (tmp_path / "w.csv").write_text("Name,Grade\nJane,\n")
    assert cli.main(["export", str(batch), "--to", "moodle", "--template",
                     str(tmp_path / "w.csv")]) == 2
    assert "is not a Moodle grading worksheet: it has no 'Identifier' column" in \
        capsys.readouterr().err


def test_a_cp1252_worksheet_is_refused_without_encoding_and_kept_with_it(tmp_path, capsys):
    batch = make_batch(tmp_path / "b", [("12345", "", "12", "graded", "")])
    text = 'Identifier,"Full name",Grade,"Last modified (grade)"\r\n' \
           '"Participant 12345","Zoë Ünal",,-\r\n'
    (tmp_path / "w.csv").write_bytes(text.encode("cp1252"))
    args = ["export", str(batch), "--to", "moodle", "--template", str(tmp_path / "w.csv")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "is not utf-8 (byte 78 cannot be read); give its encoding with --encoding" in err
    assert cli.main(args + ["--encoding", "cp1252"]) == 0
    assert (tmp_path / "b_moodle.csv").read_bytes() == \
        text.replace(",,-", ",12,-").encode("cp1252")


def test_the_output_may_not_replace_the_lms_file(canvas_batch, tmp_path, capsys):
    template = tmp_path / "export.csv"
    template.write_bytes((FIXTURES / "canvas_gradebook_export.csv").read_bytes())
    assert cli.main(["export", str(canvas_batch), "--to", "canvas", "--template",
                     str(template), "--out", str(template)]) == 2
    assert "is the LMS file itself" in capsys.readouterr().err
    assert template.read_bytes() == (FIXTURES / "canvas_gradebook_export.csv").read_bytes()


def test_a_folder_that_is_not_a_graded_batch_points_to_its_output(tmp_path, canvas_batch,
                                                                   capsys):
    (tmp_path / "submissions").mkdir()
    assert cli.main(["export", str(tmp_path / "submissions"), "--to", "canvas", "--template",
                     str(FIXTURES / "canvas_gradebook_export.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"(is it {canvas_batch}?)" in err
    assert_one_sentence(err.removeprefix("grade: "))


@pytest.mark.parametrize("value, safe", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1+2", "'+1+2"),
    ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tcmd", "'\tcmd"), ("\uff1d1+1", "'\uff1d1+1"),
    ("62.5", "62.5"), ("Exercise 8: 62 points.", "Exercise 8: 62 points."),
])
def test_formulas_are_neutralised(value, safe):
    assert neutralise(value) == safe


def test_a_cell_set_to_a_formula_is_written_as_text_and_short_rows_are_padded():
    sheet = Sheet(b'a,b,c\n"multi\nline",x\n', "t.csv")
    assert [[c.value for c in r.cells] for r in sheet.rows] == [["a", "b", "c"],
                                                                ["multi\nline", "x"]]
    sheet.set(sheet.rows[1], 3, '=1+1, "quoted"')
    sheet.set(sheet.rows[0], 1, "B")
    assert sheet.render() == b'a,B,c\n"multi\nline",x,,"\'=1+1, ""quoted"""\n'


def test_the_comment_is_html_with_escaped_text():
    student = GradedStudent(student="1", name="", total=3.0, status="kernel_died",
                                reason="died at <b>\"x\" & y</b>")
    assert lms.feedback_comment(student, "quick") == (
        "Exercise 8, automatic grading (quick profile): 3 points.<br>"
        "died at &lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;")
