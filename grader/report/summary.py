"""The class summary page, ``index.html`` of a graded batch: score distributions per task, every
student's row with a link to their feedback, and the failures grouped by reason.

It reads the gradebook's rows (``batch.Row``) and the rubric; it changes neither.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import CSP, _env, atomic_write_text, plots

__all__ = ["write_index", "render_index", "distribution_plot"]

#: how each kind of failure is headed on the page, in this order
FAILURES = {
    "not_graded": "Could not be graded (the file as submitted)",
    "timeout": "Stopped at the time limit",
    "kernel_died": "The kernel died",
    "error": "The grader or the machine failed (graded again on the next run)",
}


def distribution_plot(scores: list[float], max_score: float) -> str:
    """How many students got how many points on one task, as a checked PNG data URI."""
    fig = plots._figure(3.4, 2.4)
    ax = fig.add_subplot()
    top = max(max_score, max(scores, default=0.0))
    bins = np.arange(0, np.floor(top) + 2) - 0.5
    ax.hist(scores, bins=bins, color="#4a78b5", edgecolor="white")
    ax.set_xlabel("Points")
    ax.set_ylabel("Students")
    ax.set_xlim(-0.5, top + 0.5)
    ax.yaxis.get_major_locator().set_params(integer=True)
    return plots._render(fig)


def _tasks(rubric, profile: str) -> list[dict]:
    return [{"id": t.id, "title": t.title,
             "max": sum(c.points for c in t.checks if c.applies_to(profile))}
            for t in rubric.tasks]


def render_index(rows, rubric, profile: str, skipped, names: dict[str, str]) -> str:
    tasks = _tasks(rubric, profile)
    for task in tasks:
        scores = [r.points[task["id"]] for r in rows if task["id"] in r.points]
        task["count"] = len(scores)
        task["mean"] = float(np.mean(scores)) if scores else None
        task["plot"] = distribution_plot(scores, task["max"]) if scores else None
    failures = {status: [r for r in rows if r.status == status] for status in FAILURES}
    counts = {status: sum(r.status == status for r in rows)
              for status in ("graded", *FAILURES)}
    manual_max = sum(c.points for t in rubric.tasks for c in t.checks
                     if c.check == "manual" and c.applies_to(profile))
    total_max = sum(t["max"] for t in tasks)
    return _env().get_template("index.html.j2").render(
        csp=CSP, rows=rows, tasks=tasks, profile=profile, exercise=rubric.exercise,
        skipped=skipped, names=names, counts=counts,
        failures={FAILURES[s]: rs for s, rs in failures.items() if rs},
        total_max=total_max, manual_max=manual_max, auto_max=total_max - manual_max,
        waiting=sum(1 for r in rows if r.pending))


def write_index(path: Path, rows, rubric, profile: str, skipped,
                names: dict[str, str]) -> None:
    atomic_write_text(path, render_index(rows, rubric, profile, skipped, names))
