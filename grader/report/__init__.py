"""Reports read results and never change them: results.json, result.json, feedback.html, text.

Everything a report shows beyond the result (histories, predictions) is read back from the
output folder, so a stored run can be re-rendered after re-scoring without a kernel.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape

from ..results import SubmissionResult, to_dict, to_gradescope
from . import plots

__all__ = ["write_reports", "render_feedback", "summary_lines", "atomic_write_text", "CSP"]

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
       "form-action 'none'")


def atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def _figures(result: SubmissionResult, out: Path) -> dict[str, list[tuple[str, str]]]:
    """Per task, a list of (caption, data URI)."""
    harvest = _read_json(out / "harvest.json").get("tasks", {})
    evaluation = _read_json(out / "evaluation.json").get("tasks", {})
    arrays: dict[str, np.ndarray] = {}
    if (out / "predictions.npz").is_file():
        with np.load(out / "predictions.npz", allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    figures: dict[str, list[tuple[str, str]]] = {}
    for task in result.tasks:
        figs = []
        hist = (harvest.get(task.id) or {}).get("history", {}).get("history")
        uri = plots.history_plot(hist) if isinstance(hist, dict) else None
        if uri:
            figs.append(("Loss and accuracy per epoch (training and validation)", uri))
        metrics = ((evaluation.get(task.id) or {}).get("trained") or {}).get("metrics") or {}
        if f"{task.id}_test_prob" in arrays and "y_test" in arrays:
            figs.append(("Predicted probabilities, train and test reviews of each class",
                         plots.histogram_plot(arrays[f"{task.id}_train_prob"], arrays["y_train"],
                                              arrays[f"{task.id}_test_prob"], arrays["y_test"])))
        if "confusion" in metrics:
            figs.append((f"Confusion matrix on {metrics['samples']:,} test reviews",
                         plots.confusion_plot(metrics["confusion"])))
        if task.id == "bonus" and "bonus_track" in arrays:
            figs.append(("Top: the first 7 frames, then the model's own predictions; bottom: "
                         "the true movie", plots.frames_plot(arrays["bonus_track"],
                                                             arrays["bonus_truth"])))
        figures[task.id] = figs
    return figures


def render_feedback(result: SubmissionResult, out: Path) -> str:
    figures = _figures(result, out) if result.status == "graded" else {}
    return _env().get_template("feedback.html.j2").render(
        r=result, csp=CSP, figures=figures, name=Path(result.submission).name,
        extra=result.extra)


def write_reports(result: SubmissionResult, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(to_gradescope(result), indent=1))
    atomic_write_text(out / "result.json", json.dumps(to_dict(result), indent=1))
    atomic_write_text(out / "feedback.html", render_feedback(result, out))


def summary_lines(result: SubmissionResult) -> list[str]:
    """One line per task, and a last line with the total (plain text; the CLI adds colour)."""
    name = Path(result.submission).name
    if result.status != "graded":
        return [f"{name}: could not grade: {result.reason}"]
    lines = []
    for task in result.tasks:
        pending = f" ({task.pending:g} to be marked by a TA)" if task.pending else ""
        lost = [c.name.split(": ", 1)[-1] for c in task.checks if c.status == "failed"]
        lines.append(f"{task.title:<48} {task.score:>5g} / {task.max_score:<4g}{pending}"
                     + (f"  lost: {', '.join(lost)}" if lost else ""))
    lines.append(f"{name}: {result.score:g} / {result.max_score:g} points"
                 f" ({result.profile} profile)" + (f"; {result.kernel}" if result.kernel else ""))
    return lines

