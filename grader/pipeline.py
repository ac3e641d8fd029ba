"""``grade_submission``: one submission, graded in named steps, top to bottom.

validate -> prepare -> execute (the harvest is the notebook's last cell; each task's trained
model is also handed out early, as soon as it is trained) -> evaluate (a separate process, which
measures the early models while the notebook goes on) -> check -> report. Each step is a
function of its own; a submission that cannot be graded becomes a result with a reason, not an
exception.
"""

from __future__ import annotations

import ast
import json
import math
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import nbformat

from . import sandbox
from .cellref import cell_ref
from .checks import TaskContext, check_name, run_check
from .data import ENV_SOURCE, ensure_cache
from .heldout import ensure_view
from .errors import GradingError, InfrastructureError, InputError, output_folder
from .execute import AfterCell, ExecutionReport, run_notebook
from .fstree import remove_tree
from .kernel.cells import early_harvest
from .marking.marks import Mark, apply_marks, single_marks
from .measure import finish_evaluation, start_evaluator
from .migration import find_hints
from .readers import Unreadable, clean_history, read_harvest
from .report.comparison import training_seconds
from .results import CellError, CheckResult, SubmissionResult, TaskResult, from_dict
from .rubric import Profile, Rubric, load_rubric
from .submission import (HARVEST_TAG, Submission, cell_places, cell_tasks, definitions,
                         prepare_notebook, read_submission, task_answers)

__all__ = ["grade_submission", "default_out_dir", "Run", "check_all", "validate", "prepare",
           "execute", "evaluate", "report", "rescore"]

PRINTED_TOLERANCE = 0.02
#: what a run leaves in its output folder besides the reports (which are rewritten anyway)
STALE_OUTPUTS = ("harvest.json", "evaluation.json", "predictions.npz", "executed.ipynb",
                 "evaluator")
#: what a grading deletes or replaces in its output folder (a batch adds batch.json, grader.log)
OWN_OUTPUTS = ("work", *STALE_OUTPUTS, "results.json", "result.json", "feedback.html",
               "batch.json", "grader.log")
_PRINTED_ACCURACY = re.compile(r"^\s*Accuracy\s*[:=]\s*([01](?:\.\d+)?)", re.M | re.I)


def default_out_dir(submission: Path) -> Path:
    return submission.parent / f"{submission.stem}_graded"


@dataclass
class Run:
    """One grading run's state, passed from step to step.

    The fields without a default are filled in by the step that makes them (``box`` by
    ``grade_submission`` before the first step) and read only by the steps after it; a
    re-scoring (``rescore``) runs no step and reads none of them. ``execution`` and
    ``evaluator`` may really be None: a grading that failed before the notebook ran has no
    execution, and the evaluator is handed over by ``evaluate``.
    """

    submission: Path
    rubric: Rubric
    profile: Any
    out: Path
    data: str | None = None
    sub: Submission = field(init=False)  # validate
    notebook: nbformat.NotebookNode = field(init=False)  # prepare: the notebook the kernel runs
    owners: list[str | None] = field(default_factory=list)
    cache: Path = field(init=False)  # validate
    #: validate: the kernel's IMDB data, the source without the held-out reviews
    view: Path = field(init=False)
    workdir: Path = field(init=False)  # prepare
    #: prepare names it, the harvest cell makes it
    artifacts: Path = field(init=False)
    confinement: sandbox.Confinement = field(init=False)  # prepare: the kernel's
    execution: ExecutionReport | None = None
    harvest: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)
    cell_timeout: float = 0.0
    total_timeout: float = 0.0
    threads: int | None = None  # the kernel's thread budget (a batch shares the cores out)
    box: sandbox.Session = field(init=False)  # owns every confinement and process of the grading
    evaluator: sandbox.ConfinedProcess | None = None  # started early, waiting for its go
    early: list[str] = field(default_factory=list)  # tasks handed to the evaluator early
    harvest_problem: str | None = None  # why harvest.json, which the kernel wrote, was refused
    ahead: ThreadPoolExecutor | None = None  # report work done while waiting (``_ahead``)


# --------------------------------------------------------------------------- steps


def validate(run: Run) -> None:
    """Step 1: the file parses; the data source is reachable (before any kernel starts)."""
    run.sub = read_submission(run.submission)
    src, cache = ensure_cache(run.data)
    run.data = str(src.path)
    run.cache = cache
    run.view = ensure_view(run.data, count=run.rubric.held_out["reviews"],
                           seed=run.rubric.held_out["seed"])


def prepare(run: Run) -> None:
    """Step 2: a fresh work folder, the notebook with parameters injected and harvest appended."""
    run.workdir = run.out / "work"
    # what an earlier kernel left, however deep (fstree); and an earlier run's artifacts,
    # which must not be reported as this run's (its plots, say)
    for stale in (run.workdir, *(run.out / name for name in STALE_OUTPUTS)):
        remove_tree(stale)
    run.workdir.mkdir(parents=True)
    if run.sub.kind == "module":
        shutil.copyfile(run.submission, run.workdir / "submission.py")
    nb, artifact_name = prepare_notebook(run.sub, dict(run.profile.parameters), run.rubric.tasks)
    run.notebook = nb
    run.artifacts = run.workdir / artifact_name
    run.owners = cell_tasks(nb, run.rubric.tasks)
    # the kernel sees its view of the data only: never the source, the cache, the held-out reviews
    run.confinement = run.box.plan(run.workdir, data_env={ENV_SOURCE: str(run.view)},
                                   threads=run.threads, timeout=run.total_timeout)


def _early_handout(run: Run) -> AfterCell:
    """After every cell, the kernel saves the trained model of each task that has just got a
    model and a history; the evaluator measures it while the notebook goes on, and the grader
    draws its training curves (``grader.harvest``). What the kernel answers is only a hint: a
    task id the rubric does not know is ignored, anything malformed is dropped."""
    from .report.plots import history_plot

    setup, code, expression = early_harvest(run.rubric.tasks, run.artifacts.name)
    known = {t.id for t in run.rubric.tasks}

    def handle(text: str) -> None:
        try:
            items = json.loads(ast.literal_eval(text))  # the repr of a JSON string
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return
        for item in items if isinstance(items, list) else ():
            tid = item.get("id") if isinstance(item, dict) else None
            if not isinstance(tid, str) or tid not in known or tid in run.early or \
                    run.evaluator is None:
                continue
            run.early.append(tid)
            run.evaluator.send(f"task {tid}")
            history = clean_history(item.get("history"))  # the kernel's word: validated
            if history:
                _ahead(run, history_plot, history)

    return AfterCell(setup, code, expression, handle, skip_tag=HARVEST_TAG)


def _ahead(run: Run, func, *args) -> None:
    """Report work done while the grader waits (for the kernel, for the evaluator), in one
    thread, one job after another (matplotlib is not thread-safe). A job that fails only
    means the report does that work itself later (and meets the error there)."""
    if run.ahead is None:
        run.ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ex8-ahead")
    run.ahead.submit(func, *args)


def execute(run: Run) -> None:
    """Step 3 (and 4, the harvest cell): run the notebook in its own kernel."""
    from .report import warm

    run.evaluator = start_evaluator(run)
    _ahead(run, warm)
    run.execution = run_notebook(
        run.notebook, run.workdir, env=run.confinement.env, cell_timeout=run.cell_timeout,
        total_timeout=run.total_timeout, owners=run.owners, confinement=run.confinement,
        after_cell=_early_handout(run))
    if run.artifacts.is_symlink():  # the notebook's doing: it may point at anyone's files
        run.execution.kernel = run.execution.kernel or (
            "The notebook replaced the grader's artifact folder with a link, so nothing it "
            "produced was graded.")
    elif run.artifacts.is_dir():
        try:  # the kernel wrote it: validated, bounded, and only what the checks read is kept
            run.harvest = read_harvest(run.artifacts / "harvest.json",
                                       [t.id for t in run.rubric.tasks])
        except Unreadable as exc:
            run.harvest_problem = f"the grader's harvest could not be used: {exc}"
    if run.harvest:  # kept beside the results: re-scoring and reports read it from there
        (run.out / "harvest.json").write_text(json.dumps(run.harvest))


def evaluate(run: Run) -> None:
    """Step 5: measure the harvested models in a separate, trusted process."""
    evaluator, run.evaluator = run.evaluator, None
    if evaluator is None:  # execute starts it first thing
        raise InfrastructureError("The grader reached the evaluation without an evaluator "
                                  "started.")
    if not run.harvest:
        evaluator.cancel()
        return
    # the trained models the last cell did not save again: what the evaluator measured early
    # stands
    tasks = run.harvest.get("tasks")
    if not isinstance(tasks, dict):
        tasks = {}
    keep = {tid: ["trained"] for tid in run.early if isinstance(tasks.get(tid), dict)
            and isinstance(tasks[tid].get("model"), dict)
            and tasks[tid]["model"].get("early") is True}
    from .report import draw_histories

    _ahead(run, draw_histories, run.harvest)  # drawn early unless they changed since
    run.evaluation = finish_evaluation(run, evaluator, keep)


def _task_context(run: Run, task, artifacts: Path | None, answers=(), errors=()) -> TaskContext:
    """The checks' view of ``task``; ``artifacts``: the harvest's folder, None when it is gone
    (a re-scoring's)."""
    not_run = None
    if not run.harvest:
        not_run = run.execution.kernel if run.execution and run.execution.kernel else \
            run.harvest_problem or "the notebook did not reach its last cell"
        not_run = not_run.rstrip(".")
    return TaskContext(task=task, profile=run.profile, rubric=run.rubric,
                       harvest=(run.harvest.get("tasks") or {}).get(task.id) or {},
                       namespace=run.harvest.get("namespace") or {},
                       evaluation=(run.evaluation.get("tasks") or {}).get(task.id) or {},
                       artifacts=artifacts if run.harvest else None, answers=answers,
                       not_run=not_run, errors=tuple(errors),
                       defined_in=definitions(run.execution.notebook, (task.builder,))
                       if run.execution else {})


def check_all(rubric: Rubric, profile, contexts: dict[str, TaskContext],
              errors: Sequence[CellError] = ()) -> list[TaskResult]:
    """Step 6: every rubric item against the artifacts and the measurements."""
    results = []
    for task in rubric.tasks:
        ctx = contexts[task.id]
        checks = []
        for spec in task.checks:
            if not spec.applies_to(profile.name):
                checks.append(CheckResult(task.id, spec.id, spec.check, check_name(ctx, spec),
                                          0.0, spec.points, "skipped",
                                          f"Not checked in the {profile.name} profile.",
                                          visibility=spec.visibility))
                continue
            checks.append(run_check(ctx, spec))
        results.append(TaskResult(task.id, task.title, tuple(checks),
                                  tuple(e for e in errors if e.task == task.id)))
    return results


def printed_accuracy_flags(run: Run) -> list[str]:
    """Compare the accuracy a notebook printed with the one the grader measured.

    They are measured on different reviews (the notebook's test reviews, the grader's held-out
    ones), so a flag needs a difference of more than four standard errors of the two estimates
    (and at least ``PRINTED_TOLERANCE``).
    """
    flags: list[str] = []
    if not run.execution:
        return flags
    printed: dict[str, float] = {}
    for cell, owner in zip(run.execution.notebook.cells, run.owners):
        if cell.cell_type != "code" or owner is None:
            continue
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            for m in _PRINTED_ACCURACY.finditer(str(text)):
                printed[owner] = float(m.group(1))
    shown = run.profile.parameters.get("TEST_SAMPLES") or run.rubric.held_out["reviews"]
    for task in run.rubric.tasks:
        metrics = (run.evaluation.get("tasks", {}).get(task.id, {}).get("trained", {})
                   .get("metrics", {}))
        measured, samples = metrics.get("accuracy"), metrics.get("samples")
        if task.id not in printed or measured is None or not samples:
            continue
        p = min(max(measured, 0.05), 0.95)
        tolerance = max(PRINTED_TOLERANCE, 4 * math.sqrt(p * (1 - p) * (1 / samples + 1 / shown)))
        if abs(printed[task.id] - measured) > tolerance:
            flags.append(f"{task.title}: the notebook printed accuracy {printed[task.id]:.4f}, "
                         f"the grader measured {measured:.4f} on {samples:,} held-out test "
                         f"reviews, further apart than chance explains (±{tolerance:.3f}).")
    return flags


def held_out_flags(run: Run) -> list[str]:
    """Say so when the machine could not hide the held-out reviews from the notebook."""
    if run.confinement.hides_files:
        return []
    return ["The accuracy was measured on test reviews held out of the notebook's data, but "
            "this machine has no filesystem view (bubblewrap), so the notebook could have read "
            "them from the IMDB source."]


def report(result: SubmissionResult, run: Run | None, out: Path) -> None:
    """Step 7: results.json, result.json, feedback.html and the executed notebook."""
    from .report import write_reports

    if run is not None and run.execution is not None:
        nbformat.write(run.execution.notebook, out / "executed.ipynb")
    write_reports(result, out)


# --------------------------------------------------------------------------- the whole run


def _not_graded(path: Path, profile: str, err: GradingError, started: float,
                rubric_digest: str = "") -> SubmissionResult:
    return SubmissionResult(submission=str(path), profile=profile, status="not_graded",
                            reason=str(err), reason_kind=err.reason,
                            execution_time=time.monotonic() - started,
                            rubric_digest=rubric_digest)


def grade_submission(path: str | Path, *, profile: str = "quick",
                     rubric: str | Path | Rubric | None = None, out: str | Path | None = None,
                     data: str | None = None, timeout: float | None = None,
                     cell_timeout: float | None = None,
                     threads: int | None = None) -> SubmissionResult:
    """Grade one ``.ipynb`` or ``.py`` submission and write its reports into ``out``.

    ``threads`` caps the threads of the kernel and the evaluator (default: every core).

    Raises ``RubricError`` for a broken rubric (nothing can be graded); every problem with the
    submission itself is a ``not_graded`` result with a reason.
    """
    started = time.monotonic()
    path = Path(path)
    rubric = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
    prof = rubric.profile(profile)
    out = output_folder(Path(out) if out else default_out_dir(path), writes=OWN_OUTPUTS,
                        earlier=("result.json", "feedback.html"))
    run = Run(submission=path, rubric=rubric, profile=prof, out=out, data=data,
              cell_timeout=cell_timeout or prof.cell_timeout,
              total_timeout=timeout or prof.timeout, threads=threads)
    # a TA's marks of an earlier grading in this folder stay (a bad marks file: before running)
    marks = single_marks(out, rubric, prof.name, path.name)
    failure = None
    # the sandbox of this grading: whatever step raises, every confinement and process it made
    # is undone on the way out (cgroups, sockets folders, the evaluator)
    with sandbox.Session() as run.box:
        try:
            validate(run)
            prepare(run)
            execute(run)
            evaluate(run)
        except (InputError, InfrastructureError, GradingError) as err:
            failure = err
        finally:
            if run.ahead is not None:  # done long before, as a rule
                run.ahead.shutdown(wait=True)
    if failure is not None:
        result = _not_graded(path, profile, failure, started, rubric.digest)
        report(result, run if run.execution else None, out)
        return result
    result, _ = apply_marks(_graded(run, profile, started), marks)
    report(result, run, out)
    return result


def _graded(run: Run, profile: str, started: float) -> SubmissionResult:
    """Step 6 and the result: every check, the errors, hints and flags, what ran."""
    execution, submitted = run.execution, run.sub.notebook
    if execution is None or submitted is None:  # execute, and prepare_notebook, set them
        raise InfrastructureError("The grader came to the checks without the notebook it ran.")
    answers = {t.id: task_answers(submitted, t.id) for t in run.rubric.tasks}
    contexts = {t.id: _task_context(run, t, run.artifacts, answers[t.id], execution.errors)
                for t in run.rubric.tasks}
    tasks = check_all(run.rubric, run.profile, contexts, execution.errors)
    hints = find_hints(execution.notebook, execution.errors, run.owners,
                       module=run.submission if run.sub.kind == "module" else None)
    return SubmissionResult(
        submission=str(run.submission), profile=profile, status="graded", tasks=tuple(tasks),
        errors=tuple(execution.errors), kernel=execution.kernel,
        kernel_event=execution.event,
        flags=tuple(printed_accuracy_flags(run) + held_out_flags(run)),
        confinement=tuple(run.confinement.layers),
        execution_time=time.monotonic() - started, rubric_digest=run.rubric.digest,
        extra={"notes": list(run.sub.notes), "kind": run.sub.kind,
               "kernel_seconds": round(execution.seconds, 2),
               "artifacts": run.artifacts.name,
               "held_out": {"reviews": run.rubric.held_out["reviews"],
                            "hidden": run.confinement.hides_files},
               # how long the models trained: what the report's figures can show
               "parameters": profile_parameters(run.rubric, run.profile),
               "training_seconds": training_seconds(execution.notebook, run.owners)},
        hints=tuple(hints))


def profile_parameters(rubric: Rubric, profile: Profile) -> dict:
    """The parameters the notebook ran with: the profile's, and the review length it keeps
    from the exercise when the profile does not set one."""
    return {"MAX_REVIEW_LENGTH": rubric.review_length(profile), **profile.parameters}


def with_places(items, nb) -> tuple:
    """``CellError``s or ``MigrationHint``s with the cells named as Jupyter shows them
    (``submission.cell_places``), for those stored before results said so; ``nb`` is the
    executed notebook. A module's errors name its lines, not cells: they stay as they are."""
    places = {p.cell: p for p in cell_places(nb) if p is not None}

    def upgraded(item):
        if item.code_cell is not None or item.cell not in places or \
                getattr(item, "module", None):
            return item
        p = places[item.cell]
        item = replace(item, code_cell=p.code_cell, first_line=p.first_line, heading=p.heading)
        if isinstance(item, CellError):  # its traceback named the cell as the page did
            def named(m):
                q = places.get(int(m[1]))
                return m[0] if q is None else \
                    "C" + cell_ref(q.code_cell, q.first_line, q.heading)[1:]

            item = replace(item, traceback=re.sub(r"^Cell (\d+)(?=, line)", named,
                                                  item.traceback, flags=re.M))
        return item

    return tuple(upgraded(i) for i in items)


def rescore(out: Path, rubric: Rubric,
            marks: Mapping[tuple[str, str], Mark] | None = None) -> SubmissionResult:
    """Apply ``rubric`` and a TA's ``marks`` (this student's, by task and check) to the run
    stored in ``out`` and rewrite its reports; nothing is run. ``marks`` None: the marks file
    of ``out`` itself (a single grading's output folder).

    The checks see what they saw when the notebook ran: the harvest, the evaluation, the
    artifacts and the executed notebook's answers, all read back from the output folder.
    """
    stored = from_dict(json.loads((out / "result.json").read_text(encoding="utf-8")))
    if stored.status != "graded":
        return stored
    if marks is None:  # refused before anything is written when the file is bad
        marks = single_marks(out, rubric, stored.profile, Path(stored.submission).name)
    prof = rubric.profile(stored.profile)
    executed = out / "executed.ipynb"
    nb = nbformat.read(executed, as_version=4) if executed.is_file() else None
    run = Run(submission=Path(stored.submission), rubric=rubric, profile=prof, out=out)
    artifacts = None
    if (out / "harvest.json").is_file():
        try:  # written by the grader from a validated harvest: validated again all the same
            run.harvest = read_harvest(out / "harvest.json", [t.id for t in rubric.tasks])
        except Unreadable:
            run.harvest = {}
        run.evaluation = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
        # exactly the folder the grading read (result.json names it), never a glob's pick
        name = stored.extra.get("artifacts")
        folder = out / "work" / name if isinstance(name, str) and "/" not in name else None
        artifacts = folder if folder is not None and folder.is_dir() and \
            not folder.is_symlink() else None
    if nb is not None:  # only its kernel sentence matters to the checks
        run.execution = ExecutionReport(notebook=nb, kernel=stored.kernel)
    errors, hints = stored.errors, stored.hints
    if nb is not None:  # a result of an earlier version named cells by every cell's number
        errors, hints = with_places(errors, nb), with_places(hints, nb)
    contexts = {t.id: _task_context(run, t, artifacts, task_answers(nb, t.id) if nb else (),
                                    errors) for t in rubric.tasks}
    result = replace(stored, tasks=tuple(check_all(rubric, prof, contexts, errors)),
                     errors=errors, hints=hints, rubric_digest=rubric.digest,
                     extra={**stored.extra, "parameters": profile_parameters(rubric, prof)})
    result, _ = apply_marks(result, marks)
    report(result, None, out)
    return result
