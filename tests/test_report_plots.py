"""feedback.html's plots and the model comparison: every plot the exercise draws is there as a
PNG, a headless Chromium shows them, and the comparison table and misclassified reviews are
filled from the grader's own measurements."""

from __future__ import annotations

import base64
import io
import re

import nbformat
import numpy as np
import pytest

from grader.evaluator import decode_review, misclassified_reviews
from grader.report import plots
from grader.report.comparison import training_seconds

from .browser import visit

#: the plots of each task in the reference's feedback, in a profile that measures the IMDB
#: models' accuracy (``measured``, below); the structure profile trains too little for their
#: predictions (histograms, confusion matrices) to be drawn
EXPECTED_PLOTS = {"rnn": ["history", "histogram", "confusion"],
                  "task1": ["history", "histogram", "confusion"],
                  "task2": ["history", "histogram", "confusion"],
                  "task3": ["history", "histogram", "confusion"],
                  "bonus": ["history", "frames"]}
STRUCTURE_PLOTS = {task: [k for k in kinds if k not in ("histogram", "confusion")]
                   for task, kinds in EXPECTED_PLOTS.items()}
_FIGURE = re.compile(r'<figure data-plot="(\w+)"><img src="data:image/png;base64,([^"]+)"')


def _png(data: str):
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
    image.load()
    return image


def plots_by_task(html: str) -> dict[str, list[tuple[str, str]]]:
    """(kind, base64 PNG) of every figure, under the task section it is in."""
    found = {}
    for section in re.split(r'<h2 id="task-', html)[1:]:
        task = section.split('"', 1)[0]
        found[task] = _FIGURE.findall(section.split("<h2", 1)[0])
    return found


@pytest.fixture(scope="module")
def measured(reference_structure, tmp_path_factory):
    """The reference's structure run re-rendered as if its profile checked the IMDB models'
    accuracy (as quick and full do), so that their predictions are drawn: the output folder
    copied, the accuracy checks marked as run."""
    import dataclasses
    import shutil

    from grader.report import write_reports

    result, out = reference_structure
    copy = tmp_path_factory.mktemp("measured") / "graded"
    shutil.copytree(out, copy, symlinks=True)
    tasks = tuple(dataclasses.replace(t, checks=tuple(
        dataclasses.replace(c, status="passed", score=c.max_score) if c.kind == "accuracy"
        else c for c in t.checks)) for t in result.tasks)
    result = dataclasses.replace(result, tasks=tasks)
    write_reports(result, copy)
    return result, copy


@pytest.mark.kernel
def test_structure_profile_draws_no_predictions(reference_structure):
    _, out = reference_structure
    found = plots_by_task((out / "feedback.html").read_text())
    assert {task: [kind for kind, _ in figs] for task, figs in found.items()} == STRUCTURE_PLOTS


def comparison_cells(html: str) -> tuple[str, dict[str, list[str]]]:
    """The comparison table, and the number cells of each of its rows by task."""
    table = html.split('<table id="comparison-table">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr data-task="(\w+)"><td>[^<]*</td>\s*((?:<td class="num">[^<]*</td>\s*)+)'
                      r'</tr>', table)
    return table, {task: re.findall(r'<td class="num">([^<]*)</td>', tds) for task, tds in rows}


@pytest.mark.kernel
def test_feedback_holds_every_plot_as_a_png(measured):
    _, out = measured
    found = plots_by_task((out / "feedback.html").read_text())
    assert {task: [kind for kind, _ in figs] for task, figs in found.items()} == EXPECTED_PLOTS
    for task, figs in found.items():
        for kind, data in figs:
            image = _png(data)
            assert image.format == "PNG" and image.width > 200 and image.height > 150, (task, kind)
            assert len(np.unique(np.asarray(image.convert("L")))) > 10, (task, kind)  # drawn


#: a colour each kind of plot draws with (matplotlib's defaults), to find it in a screenshot
PLOT_COLOURS = {
    "history": [(31, 119, 180), (255, 127, 14)],  # training, validation
    "histogram": [(255, 128, 128), (128, 128, 255)],  # red and blue bars at alpha 0.5
    "confusion": [(8, 48, 107)],  # the darkest of "Blues"
    "frames": [(253, 231, 37), (68, 1, 84)],  # viridis: a square, the background
}


def _pixels_near(image: np.ndarray, colour, tolerance: int = 12) -> int:
    return int(np.all(np.abs(image[..., :3].astype(int) - colour) <= tolerance, axis=-1).sum())


@pytest.mark.kernel
def test_chromium_shows_every_plot(measured, tmp_path):
    from PIL import Image

    _, out = measured
    page = visit(out / "feedback.html", tmp_path / "feedback.png")
    assert page.page_errors == []
    expected = sum(len(kinds) for kinds in EXPECTED_PLOTS.values())
    assert len(page.image_sizes) == expected
    assert all(w > 200 and h > 150 for w, h in page.image_sizes)  # decoded by the browser
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot)).convert("RGB"))
    for kind, colours in PLOT_COLOURS.items():
        for colour in colours:
            assert _pixels_near(shot, colour) > 40, (kind, colour)


@pytest.mark.kernel
def test_comparison_table_and_misclassified_reviews(measured):
    result, out = measured
    html = (out / "feedback.html").read_text()
    table, cells = comparison_cells(html)
    assert list(cells) == ["rnn", "task1", "task2", "task3"]  # the bonus is not an IMDB model
    assert [c[0] for c in cells.values()] == ["180,737", "242,561", "242,561", "245,665"]
    for task, (_, accuracy, precision, recall, epochs, seconds) in cells.items():
        assert all(re.fullmatch(r"[01]\.\d{3}", v) for v in (accuracy, precision, recall)), task
        assert epochs == "1"  # EPOCHS in the structure profile
        assert re.fullmatch(r"\d+\.\d s", seconds) and float(seconds[:-2]) > 0, task
    assert set(result.extra["training_seconds"]) == {"rnn", "task1", "task2", "task3", "bonus"}
    reviews = re.findall(r'<tr class="misclassified"><td class="review">([^<]+)</td>', html)
    assert len(reviews) == 5
    assert all(len(text.split()) > 20 and re.search(r"\b(the|a|and)\b", text)
               for text in reviews)  # decoded back to English words


@pytest.mark.kernel
def test_comparison_without_measured_accuracy_shows_what_means_something(reference_structure):
    """The structure profile checks no accuracy: the comparison keeps parameters, epochs and
    training time, and says why the measured figures are left out."""
    _, out = reference_structure
    html = (out / "feedback.html").read_text()
    table, cells = comparison_cells(html)
    assert [c[:2] for c in cells.values()] == [["180,737", "1"], ["242,561", "1"],
                                               ["242,561", "1"], ["245,665", "1"]]
    assert "Test accuracy" not in table and 'id="not-measured"' in html
    assert 'id="reviews-table"' not in html


def test_misclassified_reviews_most_models_got_wrong_come_first():
    y = np.array([1, 0, 1, 0])
    probs = {"a": np.array([0.9, 0.8, 0.4, 0.1], dtype=np.float32),  # wrong on 1 and 2
             "b": np.array([0.2, 0.6, 0.45, 0.3], dtype=np.float32)}  # wrong on 0, 1 and 2
    x = np.array([[0, 1, 4, 5], [0, 1, 5, 2], [1, 4, 4, 4], [1, 5, 5, 5]])
    words = {1: "good", 2: "film"}
    reviews = misclassified_reviews(x, y, probs, words)
    # review 1: both wrong, more confidently than review 2; review 0: one model wrong
    assert [(r["index"], r["wrong"]) for r in reviews] == [(1, ["a", "b"]), (2, ["a", "b"]),
                                                           (0, ["b"])]
    assert reviews[0] == {"index": 1, "label": 0, "prob": {"a": 0.8, "b": 0.6},
                          "wrong": ["a", "b"], "text": "film ?"}


def test_decode_review_drops_padding_and_start_and_marks_unknown_words():
    assert decode_review([0, 0, 1, 4, 2, 5], {1: "a", 2: "movie"}) == "a ? movie"
    assert decode_review([4] * 5, {1: "so"}, max_words=3) == "so so so ..."


def test_training_time_is_the_time_of_the_cells_that_fit():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("m = build()"),
        nbformat.v4.new_code_cell("h = m.fit(x, y)\nplot(h)"),
        nbformat.v4.new_code_cell("h2 = m2.fit (x, y)"),
        nbformat.v4.new_code_cell("evaluate(m)")])
    for cell, (start, end) in zip(nb.cells, [("00.0", "01.5"), ("02.0", "14.25"),
                                             ("15.0", "18.0"), ("20.0", "29.0")]):
        cell.metadata["execution"] = {"iopub.status.busy": f"2026-01-01T10:00:{start}Z",
                                      "iopub.status.idle": f"2026-01-01T10:00:{end}Z"}
    assert training_seconds(nb, ["rnn", "rnn", "task1", "task1"]) == {"rnn": 12.25,
                                                                      "task1": 3.0}


def test_history_plot_reads_keras2_keys_and_gaps():
    two_panels = plots.history_plot({"loss": [0.7, 0.5], "acc": [0.5, None],
                                     "val_loss": [0.6, 0.6], "val_acc": [0.55, 0.6]})
    one_panel = plots.history_plot({"loss": [0.7, 0.5]})
    assert _png(two_panels.split(",", 1)[1]).width > 1.8 * _png(one_panel.split(",", 1)[1]).width
    assert plots.history_plot({"loss": []}) is None


def test_frames_plot_puts_predictions_above_the_truth():
    track = np.zeros((8, 40, 40, 1))
    truth = np.ones((8, 40, 40, 1))
    image = np.asarray(_png(plots.frames_plot(track, truth).split(",", 1)[1]).convert("RGB"))
    top, bottom = image[: image.shape[0] // 2], image[image.shape[0] // 2:]
    assert _pixels_near(top, (68, 1, 84)) > 1000 and _pixels_near(top, (253, 231, 37)) == 0
    assert _pixels_near(bottom, (253, 231, 37)) > 1000


@pytest.mark.parametrize("status, says", [
    ("skipped", "too little to learn from"),  # the structure profile: noise, said so
    ("failed", "flat or blurred predicted frames"),  # the quick profile's usual 3 epochs
    ("passed", "Its loss fell"),
])
def test_the_bonus_frames_say_how_long_the_model_trained(status, says):
    from grader.report import frames_caption
    from grader.results import CheckResult, TaskResult

    learns = CheckResult("bonus", "learns", "learns", "Bonus: learns", 0.0, 3.0, status, "")
    task = TaskResult("bonus", "Bonus", (learns,))
    caption = frames_caption(task, {"MOVIE_EPOCHS": 3, "MOVIE_SAMPLES": 24})
    assert "The model trained 3 epochs on 24 movies." in caption and says in caption
    # a result stored before the profile's parameters were kept: no made-up figures
    assert "trained" not in frames_caption(task, {})


def test_the_page_says_what_each_profile_ran():
    """Reviews cut to N words, M training reviews, K epochs; the ConvLSTM's movies: from the
    parameters the grader injected, and the exercise's review length where a profile sets none."""
    from grader.pipeline import profile_parameters
    from grader.report import profile_ran
    from grader.rubric import load_rubric

    rubric = load_rubric()
    said = {name: profile_ran(name, profile_parameters(rubric, profile))
            for name, profile in rubric.profiles.items()}
    assert said["quick"] == ("What the quick profile ran: reviews cut to 200 words, 4,000 "
                             "training reviews, 2 epochs of batch 32; the ConvLSTM on 12 movies "
                             "of 8 frames for 5 epochs.")
    assert said["full"] == ("What the full profile ran: reviews cut to 500 words, every "
                            "training review, 3 epochs of batch 64; the ConvLSTM on 1,200 "
                            "movies of 15 frames for 20 epochs.")
    assert profile_ran("quick", {}) == ""  # a result stored before parameters were recorded
