"""feedback.html read as a student reads it: the template, a half-done notebook (the reference
with Tasks 2 and 3 back to the template's placeholders) and the reference, each graded once in
the structure profile and opened in headless Chromium.

What must hold: the top says per task the first thing to do and what it is worth; a cause is
said once, the other checks it fails say "not checked: see above"; every cell reference names a
code cell the student can find in Jupyter (its number among the code cells, its first line);
what the profile cannot show is not drawn as a finding. The screenshots are kept in
``$EX8_SCREENSHOTS`` when it is set (else in the test's temporary folder) to be looked at.
"""

from __future__ import annotations

import html as html_lib
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from grader.cellref import HOW_COUNTED
from grader.report import summary_lines
from grader.submission import cell_places

from .browser import visit

pytestmark = pytest.mark.kernel

CODING = {"task1": "build_lstm_model", "task2": "build_lstm_dropout_model",
          "task3": "build_cnn_lstm_model", "bonus": "build_convlstm_model"}
#: a cell reference as grader.cellref writes it
CELL_REF = re.compile(r"\b[Cc]ode cell (\d+) \((?:“(.*?)”|empty)(?:, under “(.*?)”)?\)")


def _text(page: str) -> str:
    """The page's text, as a reader sees it (tags dropped, entities read)."""
    body = page.split("<body>", 1)[-1]
    text = " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", body)).split())
    return re.sub(r"([(“]) | (?=[,.;:)”])", r"\1", text)


def _summary_cell(page: str, task: str) -> str:
    row = re.search(rf'<tr data-task="{task}">(.*?)</tr>', page, re.S)
    assert row, task
    return row.group(1)


def _check_row(page: str, task: str, check: str) -> str:
    row = re.search(rf'<tr class="check" id="check-{task}-{check}"[^>]*>(.*?)</tr>', page, re.S)
    assert row, (task, check)
    return html_lib.unescape(row.group(1))


def test_the_template_says_per_task_what_to_do_first_and_each_cause_once(template_structure):
    result, out = template_structure
    page = (out / "feedback.html").read_text()
    text = _text(page)
    for task, builder in CODING.items():
        todo = f"Write {builder}(): it still raises NotImplementedError."
        top = html_lib.unescape(_summary_cell(page, task))
        # the first thing to do, with its points and the checks it fails listed under it
        assert re.search(rf'<div class="todo" data-cause="builder_placeholder"><strong>'
                         rf'{re.escape(todo)}</strong> <span class="worth">1[35] '
                         r'points\.</span>', top), top
        assert re.search(r"Fails: builder function, layers, parameter count, output shape, "
                         r"(predicts next frames, )?compile settings\.", _text(top)), top
        assert text.count(todo) == 1, todo
        # the builder's sentence once per task; the other checks it fails point above
        said = f"calling {builder}() raised NotImplementedError"
        assert text.count(said) == 1, said
        cause = next(t for t in result.tasks if t.id == task)
        explained = [c.check for c in cause.checks if c.cause == "builder_placeholder"]
        assert explained[0] == "builder" and len(explained) >= 5
        assert said in _check_row(page, task, "builder")
        for check in explained[1:]:
            row = _check_row(page, task, check)
            assert "Not checked: see above" in row and "there is no model" not in row, row
    # the terminal says the same first thing
    lines = summary_lines(result)
    assert "  first (13 points, 5 checks): Write build_lstm_model(): it still raises " \
           "NotImplementedError. Then 1 more: see feedback.html." in lines, lines
    # results.json: one test per check still, the explained ones pointing at their cause
    tests = json.loads((out / "results.json").read_text())["tests"]
    assert len(tests) == sum(1 for t in result.tasks for c in t.checks
                             if c.status not in ("skipped", "pending"))
    layers = next(t for t in tests if t["extra_data"] == {"task": "task1", "check": "layers"})
    assert layers["output"] == ("Not checked: see “Task 1: builder function”. Write "
                                "build_lstm_model(): it still raises NotImplementedError.")


def test_a_half_done_notebook_is_told_what_is_left(half_done_structure):
    result, out = half_done_structure
    page = (out / "feedback.html").read_text()
    scores = {t.id: t.score for t in result.tasks}
    assert scores["task1"] > 0 and scores["bonus"] > 0 and scores["task2"] == scores["task3"] == 0
    for task in ("rnn", "task1", "bonus"):
        assert "Nothing to fix" in _summary_cell(page, task), task
    for task in ("task2", "task3"):
        top = html_lib.unescape(_summary_cell(page, task))
        assert f"<strong>Write {CODING[task]}(): it still raises NotImplementedError.</strong>" \
            in top
        assert "Then: Train " in top  # the training cell, next


def _strings(value):
    """Every string in a JSON document."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _handed_in(result) -> nbformat.NotebookNode:
    return nbformat.read(result.submission, as_version=4)


@pytest.mark.parametrize("which", ["template_structure", "half_done_structure",
                                   "reference_structure"])
def test_every_cell_reference_is_a_code_cell_of_the_notebook_handed_in(which, request):
    result, out = request.getfixturevalue(which)
    nb = _handed_in(result)
    places = [p for p in cell_places(nb) if p is not None]
    for name in ("feedback.html", "results.json", "result.json"):
        text = (out / name).read_text()
        text = _text(text) if name.endswith(".html") else "\n".join(_strings(json.loads(text)))
        # no cell named the old way, counting markdown cells too
        assert not re.search(r"(?<![Cc]ode )\b[Cc]ell \d", text), (name, re.search(
            r".{40}(?<![Cc]ode )\b[Cc]ell \d.{40}", text))
        for m in CELL_REF.finditer(text):
            number, line, heading = int(m[1]), m[2] or "", m[3]
            place = places[number - 1]
            assert place.first_line.startswith(line.removesuffix("…")), (name, m[0])
            assert heading is None or place.heading.startswith(heading.removesuffix("…")), \
                (name, m[0])
    page = _text((out / "feedback.html").read_text())
    # how cells are counted: said once on a page that names cells
    assert page.count(HOW_COUNTED) == (1 if CELL_REF.search(page) else 0)
    if which == "template_structure":  # the template's errors are named that way
        refs = CELL_REF.findall(page)
        training = {p.code_cell for p in places if p.first_line == "# YOUR CODE HERE"}
        assert len(training) == 4 and {int(n) for n, *_ in refs} >= training, refs


def test_the_structure_profile_draws_no_predictions_as_findings(reference_structure):
    result, out = reference_structure
    page = (out / "feedback.html").read_text()
    kinds = re.findall(r'<figure data-plot="(\w+)">', page)
    assert "histogram" not in kinds and "confusion" not in kinds
    assert 'id="reviews-table"' not in page and '<th class="num">Test accuracy' not in page
    note = _text(page.split('id="not-drawn"', 1)[1].split("</p>", 1)[0])
    assert "SimpleRNN, Task 1, Task 2, Task 3" in note and "100 reviews for 1 epoch" in note
    # the bonus's frames say how long the model trained (the profile's MOVIE_EPOCHS and
    # MOVIE_SAMPLES) and what that can show
    caption = re.search(r'<figure data-plot="frames">.*?<figcaption>(.*?)</figcaption>', page,
                        re.S).group(1)
    assert "The model trained 1 epoch on 6 movies." in html_lib.unescape(caption)
    assert "noise" in caption
    assert result.extra["parameters"]["MOVIE_EPOCHS"] == 1
    # what the profile ran, under the score
    ran = re.search(r'<p class="note" id="profile-ran">(.*?)</p>', page).group(1)
    assert ran == ("What the structure profile ran: reviews cut to 200 words, 100 training "
                   "reviews, 1 epoch of batch 64; the ConvLSTM on 6 movies of 8 frames for 1 "
                   "epoch.")


def _screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("EX8_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("which", ["template_structure", "half_done_structure",
                                   "reference_structure"])
def test_each_page_opens_in_chromium_with_what_to_do_on_the_first_screen(which, request,
                                                                         tmp_path):
    _, out = request.getfixturevalue(which)
    shot = _screenshots(tmp_path) / f"{which}.png"
    page = visit(out / "feedback.html", shot, selectors=("#summary",))
    assert page.page_errors == [] and page.dialogs == []
    assert [c for c in page.console if c[0] in ("error", "warning")] == []
    assert all(w > 0 and h > 0 for w, h in page.image_sizes)
    x, y, width, height = page.boxes["#summary"]
    assert y + height < 900, page.boxes  # the whole summary on the first screen (1200 x 900)
    assert shot.stat().st_size > 10_000
