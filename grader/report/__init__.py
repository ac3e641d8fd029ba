"""Reports read results and never change them: results.json, result.json, feedback.html, text.

Everything a report shows beyond the result (histories, predictions) is read back from the
output folder, so a stored run can be re-rendered after re-scoring without a kernel.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
from pathlib import Path

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape

from ..causes import causes, check_title, explained_by
from ..cellref import HOW_COUNTED, cell_ref, place
from ..results import SubmissionResult, to_dict, to_gradescope
from . import plots
from .comparison import comparison_rows

__all__ = ["write_reports", "render_feedback", "summary_lines", "use_colour",
           "atomic_write_text", "warm", "draw_histories", "CSP", "frames_caption",
           "measures_accuracy"]

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
       "form-action 'none'")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a temporary file beside it, then a rename). The file
    gets the mode every other output gets: 0666 less the umask (0644 as a rule), not
    ``mkstemp``'s 0600."""
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@functools.lru_cache(maxsize=1)  # one per process: each template is compiled once
def _env() -> Environment:
    env = Environment(loader=PackageLoader("grader.report", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pts"] = lambda v: f"{v:g}"
    env.filters["place"] = place  # a CellError or MigrationHint's cell, as Jupyter shows it
    env.filters["capfirst"] = lambda text: text[:1].upper() + text[1:]
    env.filters["old_cell"] = lambda number: cell_ref(None, None, cell=number)
    env.filters["title_of"] = check_title
    env.filters["points"] = lambda v: "no points" if not v else \
        f"{v:g} point{'s' * (v != 1)}"
    return env


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def warm() -> None:
    """Import matplotlib and compile the feedback template: the grader calls this in a thread
    while the kernel runs, so the reports cost only their drawing at the end."""
    plots.warm()
    _env().get_template("feedback.html.j2")


def draw_histories(harvest: dict) -> None:
    """Draw the harvest's training curves ahead (``plots.history_plot`` keeps the last few): the
    grader calls this while the evaluator finishes, and the report then finds them drawn."""
    for entry in (harvest.get("tasks") or {}).values():
        hist = ((entry or {}).get("history") or {}).get("history") \
            if isinstance(entry, dict) else None
        if isinstance(hist, dict):
            plots.history_plot(hist)


def measures_accuracy(task) -> bool:
    """Whether the profile trains a task's model enough to measure it: the rubric checks its
    accuracy there. Otherwise (the structure profile: 100 reviews, 1 epoch) its predictions are
    noise, and the report does not draw them as findings."""
    return any(c.kind == "accuracy" and c.status != "skipped" for c in task.checks)


def _plural(n, word: str) -> str:
    return f"{n:,} {word}{'s' * (n != 1)}" if isinstance(n, int) else f"{n} {word}s"


def profile_ran(profile: str, parameters: dict) -> str:
    """What the profile ran, in a sentence ("reviews cut to 200 words, 4,000 training reviews,
    2 epochs of batch 32; ..."), from the parameters the grader injected (``extra.parameters``);
    empty when a result stored before they were recorded has none."""
    if not parameters:
        return ""
    imdb = []
    if parameters.get("MAX_REVIEW_LENGTH"):
        imdb.append(f"reviews cut to {parameters['MAX_REVIEW_LENGTH']:,} words")
    if "TRAIN_SAMPLES" in parameters:
        samples = parameters["TRAIN_SAMPLES"]
        imdb.append(_plural(samples, "training review") if samples else "every training review")
    if parameters.get("EPOCHS"):
        imdb.append(_plural(parameters["EPOCHS"], "epoch")
                    + (f" of batch {parameters['BATCH_SIZE']}" if parameters.get("BATCH_SIZE")
                       else ""))
    movies = ""
    if parameters.get("MOVIE_SAMPLES") and parameters.get("MOVIE_EPOCHS"):
        frames = f" of {parameters['MOVIE_FRAMES']} frames" if parameters.get("MOVIE_FRAMES") \
            else ""
        movies = (f"the ConvLSTM on {_plural(parameters['MOVIE_SAMPLES'], 'movie')}{frames} "
                  f"for {_plural(parameters['MOVIE_EPOCHS'], 'epoch')}")
    parts = "; ".join(filter(None, [", ".join(imdb), movies]))
    return f"What the {profile} profile ran: {parts}." if parts else ""


def frames_caption(task, parameters: dict) -> str:
    """What the bonus's predicted frames can show: how long the model trained (the profile's
    MOVIE_EPOCHS and MOVIE_SAMPLES), and what the "learns" check made of it."""
    what = ("One of the grader's movies. Top: its first 7 frames, then the model's own "
            "predictions, each from the frames before it; bottom: the true frames.")
    epochs, samples = parameters.get("MOVIE_EPOCHS"), parameters.get("MOVIE_SAMPLES")
    if epochs is None or samples is None:
        return what
    trained = f" The model trained {_plural(epochs, 'epoch')} on {_plural(samples, 'movie')}."
    learns = next((c for c in task.checks if c.kind == "learns"), None)
    if learns is None or learns.status == "skipped":
        return what + trained + (" That is too little to learn from (whether it learns is not "
                                 "checked in this profile): the predicted frames show noise, "
                                 "not what the model can do.")
    if learns.status == "passed":
        return what + trained + " Its loss fell (see “learns” above); more epochs sharpen the " \
                                "predicted squares."
    return what + trained + " Its loss did not fall enough (see “learns” above): flat or " \
                            "blurred predicted frames are what that looks like."


def _figures(result: SubmissionResult, out: Path, harvest: dict,
             evaluation: dict) -> dict[str, list[tuple[str, str, str]]]:
    """Per task, a list of (kind, caption, data URI); the kind names the plot for tests.
    Predictions are drawn only for tasks whose accuracy the profile measures."""
    harvest = harvest.get("tasks", {})
    evaluation = evaluation.get("tasks", {})
    parameters = result.extra.get("parameters") or {}
    arrays: dict[str, np.ndarray] = {}
    if (out / "predictions.npz").is_file():
        with np.load(out / "predictions.npz", allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    figures: dict[str, list[tuple[str, str, str]]] = {}
    for task in result.tasks:
        figs = []
        hist = (harvest.get(task.id) or {}).get("history", {}).get("history")
        uri = plots.history_plot(hist) if isinstance(hist, dict) else None
        if uri:
            what = "Loss and accuracy" if {"accuracy", "acc"} & set(hist) else "Loss"
            epochs = len(hist.get("loss") or [])
            figs.append(("history", f"{what} per epoch (training and validation), as the "
                         "notebook's History recorded them" +
                         (": one epoch, one point per curve" if epochs == 1 else ""), uri))
        metrics = ((evaluation.get(task.id) or {}).get("trained") or {}).get("metrics") or {}
        drawn = measures_accuracy(task)
        if drawn and f"{task.id}_test_prob" in arrays and "y_test" in arrays:
            figs.append(("histogram", "Predicted probability of a good review, for training "
                         "and test reviews of each class",
                         plots.histogram_plot(arrays[f"{task.id}_train_prob"], arrays["y_train"],
                                              arrays[f"{task.id}_test_prob"], arrays["y_test"])))
        if drawn and "confusion" in metrics:
            figs.append(("confusion", f"Confusion matrix on {metrics['samples']:,} test reviews",
                         plots.confusion_plot(metrics["confusion"])))
        if f"{task.id}_track" in arrays and f"{task.id}_truth" in arrays:  # a movies task
            figs.append(("frames", frames_caption(task, parameters),
                         plots.frames_plot(arrays[f"{task.id}_track"],
                                           arrays[f"{task.id}_truth"])))
        figures[task.id] = figs
    return figures


def undrawn(result: SubmissionResult, evaluation: dict) -> list[str]:
    """The tasks whose predictions were measured but are not drawn (``measures_accuracy``)."""
    measured = evaluation.get("tasks") or {}
    return [t.title.split(":")[0].split(" (")[0] for t in result.tasks
            if not measures_accuracy(t)
            and ((measured.get(t.id) or {}).get("trained") or {}).get("metrics", {}).get(
                "confusion") is not None]


def names_cells(result: SubmissionResult) -> bool:
    """Whether the page names a cell (``grader.cellref``): then it says how cells are counted."""
    texts = [result.kernel or ""] + [c.message + " " + (c.todo or "") for t in result.tasks
                                     for c in t.checks]
    return any(e.cell is not None and not e.module for e in result.errors) or \
        any(h.cell is not None for h in result.hints) or any("code cell " in t for t in texts)


def render_feedback(result: SubmissionResult, out: Path) -> str:
    figures, rows, reviews, left_out = {}, [], [], []
    # the profile trains enough to measure some model: else no measured figure is a finding
    measured_any = any(measures_accuracy(t) for t in result.tasks)
    if result.status == "graded":
        harvest = _read_json(out / "harvest.json")
        evaluation = _read_json(out / "evaluation.json")
        figures = _figures(result, out, harvest, evaluation)
        rows = comparison_rows(result, evaluation, harvest)
        left_out = undrawn(result, evaluation)
        if measured_any:
            reviews = [r for r in evaluation.get("reviews", []) if isinstance(r, dict)]
    return _env().get_template("feedback.html.j2").render(
        r=result, csp=CSP, figures=figures, name=Path(result.submission).name,
        extra=result.extra, comparison=rows, reviews=reviews, left_out=left_out,
        measured_any=measured_any,
        parameters=result.extra.get("parameters") or {},
        profile_ran=profile_ran(result.profile, result.extra.get("parameters") or {}),
        causes={t.id: causes(t) for t in result.tasks},
        explained={t.id: explained_by(t) for t in result.tasks},
        errors_by_cell={e.cell: e for e in result.errors if e.cell is not None},
        how_counted=HOW_COUNTED, names_cells=names_cells(result),
        titles={t.id: t.title.split(":")[0].split(" (")[0] for t in result.tasks})


def write_reports(result: SubmissionResult, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(to_gradescope(result), indent=1))
    atomic_write_text(out / "result.json", json.dumps(to_dict(result), indent=1))
    atomic_write_text(out / "feedback.html", render_feedback(result, out))


_COLOURS = {"green": "32", "red": "31", "yellow": "33", "dim": "2", "bold": "1"}


def use_colour(stream) -> bool:
    """Colour for a terminal; plain text when piped, on a dumb terminal, or with NO_COLOR."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR") \
        and os.environ.get("TERM") != "dumb"


def summary_lines(result: SubmissionResult, colour: bool = False,
                  max_hints: int = 8) -> list[str]:
    """One line per task, the Keras 3 migration hints, and a last line with the total.

    ``colour`` adds ANSI colours (green: full marks, red: points lost, yellow: to be marked by
    a TA); the text is the same without it.
    """
    def paint(text: str, *styles: str) -> str:
        if not colour or not styles or not text:
            return text
        return f"\x1b[{';'.join(_COLOURS[s] for s in styles)}m{text}\x1b[0m"

    name = Path(result.submission).name
    if result.status != "graded":
        return [paint(f"{name}: could not grade: {result.reason}", "red", "bold")]
    lines = []
    for task in result.tasks:
        pending = f" ({task.pending:g} to be marked by a TA)" if task.pending else ""
        style = "red" if task.auto_lost else "yellow" if task.pending else "green"
        score = paint(f"{task.score:>5g} / {task.max_score:<4g}", style)
        lines.append(f"{task.title:<48} {score}{paint(pending, 'yellow')}")
        found = causes(task)
        if found:  # the first thing to do, as the page's summary says it
            first = found[0]
            worth = f"{first.lost:g} point{'s' * (first.lost != 1)}" if first.lost else \
                "no points"
            more = f" Then {len(found) - 1} more: see feedback.html." if len(found) > 1 else ""
            checks = ": " + ", ".join(first.titles) if len(first.titles) <= 3 else \
                f", {len(first.titles)} checks"
            # the kernel's sentence ends the summary: said once, not once per task
            todo = "Make the notebook run to its end (see the last line)." if \
                first.key == "notebook_stopped" and result.kernel else first.todo
            lines.append(paint(f"  first ({worth}{checks}): {todo}" + more, "red"))
    if result.hints:
        raised = sum(1 for h in result.hints if h.error)
        lines.append(paint(f"Keras 3 migration hints: {len(result.hints)} ({raised} of them "
                           "raised an error; the others are advice, worth no points)", "bold"))
        for h in result.hints[:max_hints]:
            where = (place(h) if h.cell is not None else "module") + \
                (f", line {h.line}" if h.line else "")
            fix = "; ".join(line.strip() for line in h.fix.splitlines())
            fix = fix if len(fix) <= 100 else fix[:97] + "..."
            lines.append(f"  {where}: {h.code}" + paint(f"  ->  {fix}", "green")
                         + (paint(f"  ({h.error.split(':')[0]})", "red") if h.error else ""))
        if len(result.hints) > max_hints:
            lines.append(paint(f"  ... and {len(result.hints) - max_hints} more in "
                               "feedback.html", "dim"))
    total = f"{name}: {result.score:g} / {result.max_score:g} points ({result.profile} profile)"
    if result.marked_max:  # the automatic score apart from the TA's marks
        total += f", {result.marked:g} / {result.marked_max:g} of them marked by a TA"
    lines.append(paint(total, "bold", "red" if result.exit_code else "green")
                 + (paint(f"; {result.pending:g} points to be marked by a TA", "yellow")
                    if result.pending else "")
                 + (paint(f"; {result.kernel}", "red") if result.kernel else ""))
    return lines

