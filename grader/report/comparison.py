"""The comparison the exercise asks for: one row per IMDB model, and reviews the models got wrong.

Measured figures come from the evaluator (``evaluation.json``), epochs from the harvested
histories, training time from the executed notebook's cell timing (nbclient's
``record_timing``, stored in the result's ``extra`` when the notebook ran).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

__all__ = ["ComparisonRow", "comparison_rows", "training_seconds"]

_FIT = re.compile(r"\.fit\s*\(")


def _elapsed(timing: dict) -> float | None:
    try:
        start = datetime.fromisoformat(timing["iopub.status.busy"])
        end = datetime.fromisoformat(timing["iopub.status.idle"])
    except (KeyError, TypeError, ValueError):
        return None
    return (end - start).total_seconds()


def training_seconds(notebook, owners) -> dict[str, float]:
    """Per task, the wall time of its cells that call ``fit`` (as the kernel reported it)."""
    seconds: dict[str, float] = {}
    for cell, owner in zip(notebook.cells, owners):
        if owner is None or cell.cell_type != "code" or not _FIT.search(cell.source):
            continue
        elapsed = _elapsed(cell.get("metadata", {}).get("execution", {}))
        if elapsed is not None:
            seconds[owner] = seconds.get(owner, 0.0) + elapsed
    return {task: round(s, 2) for task, s in seconds.items()}


@dataclass(frozen=True)
class ComparisonRow:
    task: str
    title: str
    params: int | None = None
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    epochs: int | None = None
    seconds: float | None = None
    samples: int | None = None  # test reviews measured


def comparison_rows(result, evaluation: dict, harvest: dict) -> list[ComparisonRow]:
    """A row for every IMDB task (the bonus predicts movies, so it is not compared here)."""
    measured = evaluation.get("tasks") or {}
    histories = harvest.get("tasks") or {}
    seconds = result.extra.get("training_seconds") or {}
    rows = []
    for task in result.tasks:
        entry = measured.get(task.id) or {}
        kind = entry.get("kind") or ("movies" if any(
            "prediction_shape" in (entry.get(role) or {}) for role in ("fresh", "trained"))
            else "imdb")  # evaluation.json written before it said the kind
        if kind != "imdb":
            continue
        trained, fresh = entry.get("trained") or {}, entry.get("fresh") or {}
        metrics = trained.get("metrics") or {}
        history = ((histories.get(task.id) or {}).get("history") or {}).get("history") or {}
        loss = history.get("loss") if isinstance(history, dict) else None
        rows.append(ComparisonRow(
            task=task.id, title=task.title,
            params=trained.get("params", fresh.get("params")),
            accuracy=metrics.get("accuracy"), precision=metrics.get("precision"),
            recall=metrics.get("recall"), epochs=len(loss) if isinstance(loss, list) else None,
            seconds=seconds.get(task.id), samples=metrics.get("samples")))
    return rows
