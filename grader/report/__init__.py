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

from ..results import SubmissionResult, to_dict, to_gradescope
from . import plots
from .comparison import comparison_rows

__all__ = ["write_reports", "render_feedback", "summary_lines", "use_colour",
           "atomic_write_text", "warm", "draw_histories", "CSP"]

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


def _figures(result: SubmissionResult, out: Path, harvest: dict,
             evaluation: dict) -> dict[str, list[tuple[str, str, str]]]:
    """Per task, a list of (kind, caption, data URI); the kind names the plot for tests."""
    harvest = harvest.get("tasks", {})
    evaluation = evaluation.get("tasks", {})
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
            figs.append(("history", f"{what} per epoch (training and validation)", uri))
        metrics = ((evaluation.get(task.id) or {}).get("trained") or {}).get("metrics") or {}
        if f"{task.id}_test_prob" in arrays and "y_test" in arrays:
            figs.append(("histogram", "Predicted probability of a good review, for training "
                         "and test reviews of each class",
                         plots.histogram_plot(arrays[f"{task.id}_train_prob"], arrays["y_train"],
                                              arrays[f"{task.id}_test_prob"], arrays["y_test"])))
        if "confusion" in metrics:
            figs.append(("confusion", f"Confusion matrix on {metrics['samples']:,} test reviews",
                         plots.confusion_plot(metrics["confusion"])))
        if f"{task.id}_track" in arrays and f"{task.id}_truth" in arrays:  # a movies task
            figs.append(("frames", "One of the grader's movies. Top: its first 7 frames, then "
                         "the model's own predictions, each from the frames before it; bottom: "
                         "the true frames", plots.frames_plot(arrays[f"{task.id}_track"],
                                                              arrays[f"{task.id}_truth"])))
        figures[task.id] = figs
    return figures


def render_feedback(result: SubmissionResult, out: Path) -> str:
    figures, rows, reviews = {}, [], []
    if result.status == "graded":
        harvest = _read_json(out / "harvest.json")
        evaluation = _read_json(out / "evaluation.json")
        figures = _figures(result, out, harvest, evaluation)
        rows = comparison_rows(result, evaluation, harvest)
        reviews = [r for r in evaluation.get("reviews", []) if isinstance(r, dict)]
    return _env().get_template("feedback.html.j2").render(
        r=result, csp=CSP, figures=figures, name=Path(result.submission).name,
        extra=result.extra, comparison=rows, reviews=reviews,
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
        lost = [c.name.split(": ", 1)[-1] for c in task.checks if c.status == "failed"]
        style = "red" if task.auto_lost else "yellow" if task.pending else "green"
        score = paint(f"{task.score:>5g} / {task.max_score:<4g}", style)
        lines.append(f"{task.title:<48} {score}{paint(pending, 'yellow')}"
                     + (paint(f"  lost: {', '.join(lost)}", "red") if lost else ""))
    if result.hints:
        raised = sum(1 for h in result.hints if h.error)
        lines.append(paint(f"Keras 3 migration hints: {len(result.hints)} ({raised} of them "
                           "raised an error; the others are advice, worth no points)", "bold"))
        for h in result.hints[:max_hints]:
            where = (f"cell {h.cell}" if h.cell is not None else "module") + \
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

