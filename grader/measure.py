"""The grader's side of the evaluator: start it, supervise each model's measurement, restart it.

Every model gets its own budget: a time limit (the profile's ``evaluation.model_seconds``,
counted from when the notebook has finished, so an early measurement slowed by the training
beside it is not held against the model) and the evaluator's memory limit. A model that
exceeds either, or makes the evaluator die, is not measured: the evaluator is started again
without it (``--skip``), its entry says why in one sentence, and every other model is measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import sandbox
from .data import ENV_CACHE, ENV_SOURCE
from .errors import InfrastructureError, quoted
from .evaluator import PROGRESS

if TYPE_CHECKING:
    from .pipeline import Run

__all__ = ["start_evaluator", "finish_evaluation", "MODEL_SECONDS", "EVALUATOR_CPU_WEIGHT"]

#: a model's time budget when the profile names none
MODEL_SECONDS = 300.0
#: the evaluator measures early models while the notebook runs: on a busy core the kernel
#: comes first (a tenth of its CPU claim), the evaluator uses what the kernel leaves idle
EVALUATOR_CPU_WEIGHT = 10
_POLL = 0.2


@dataclass(frozen=True)
class _InFlight:
    task: str
    role: str
    what: str
    started: float


def start_evaluator(run: Run, *, skip: dict[str, str] | None = None,
                    wait: bool = True) -> sandbox.ConfinedProcess:
    """The evaluator, confined. With ``wait`` it starts beside the kernel, imports TensorFlow
    and loads the grader's data while the notebook runs, measures the models handed out early,
    and waits for ``finish_evaluation`` to say go.

    It sees the work folder read-only (the artifact folder does not exist yet), the rubric and
    the data; it writes into its own folder, and -P keeps that folder (its cwd) off sys.path.
    """
    evaldir = run.out / "evaluator"
    cmd = [sys.executable, "-P", "-m", "grader.evaluator", str(run.artifacts), str(evaldir),
           "--rubric", str(run.rubric.path), "--profile", run.profile.name, "--data", run.data,
           "--skip", json.dumps(skip or {})] + (["--wait"] if wait else [])
    return run.box.start(
        cmd, workdir=evaldir, readable=[run.workdir, run.rubric.path], out=run.out,
        data_env={ENV_SOURCE: run.data, ENV_CACHE: str(run.cache.parent)},
        outputs=("evaluation.json", "predictions.npz"), threads=run.threads,
        timeout=_total_limit(run), cpu_weight=EVALUATOR_CPU_WEIGHT)


def _total_limit(run: Run) -> float:
    return max(600.0, run.total_timeout / 2)


def _in_flight(talk: str) -> _InFlight | None:
    """The model the evaluator has started and not finished, from its progress lines."""
    current = None
    for line in talk.splitlines():
        if not line.startswith(PROGRESS):
            continue
        try:
            event = json.loads(line[len(PROGRESS):])
            key = (str(event["task"]), str(event["role"]))
            if event["event"] == "start":
                current = _InFlight(*key, str(event.get("what") or "measuring it"),
                                    float(event["time"]))
            elif current is not None and key == (current.task, current.role):
                current = None
        except (ValueError, KeyError, TypeError):
            continue
    return current


def _supervise(proc: sandbox.ConfinedProcess, budget: float, since: float,
               deadline: float, memory: str) -> tuple[_InFlight, str] | None:
    """Wait for the evaluator. Returns None when it ended well; else the model it was
    measuring and why it was stopped."""
    while True:
        code = proc.poll()
        current = _in_flight(proc.output())
        now = time.time()
        if code is not None:
            break
        if current is not None and now - max(current.started, since) > budget:
            proc.cancel()
            return current, f"{current.what} took more than {budget:.0f} s"
        if now > deadline:
            proc.cancel()
            raise subprocess.TimeoutExpired(proc.proc.args, deadline - since)
        time.sleep(_POLL)
    if code == 0:
        proc.collect()
        return None
    oom = proc.out_of_memory()
    done = proc.collect()
    if current is None:  # not while measuring a model: ours to explain
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise InfrastructureError(f"The evaluation process failed (exit {code}): {tail}")
    why = f"{current.what} needed more than {memory} of memory" if oom else \
        f"the evaluator died while {current.what} (exit {code})"
    return current, why


def finish_evaluation(run: Run, evaluator: sandbox.ConfinedProcess, keep: dict) -> dict:
    """Say go to the evaluator started beside the kernel, and supervise it (and any restart)
    until every model is measured or stopped by its budget; return evaluation.json's data."""
    budget = float(run.profile.evaluation.get("model_seconds", MODEL_SECONDS))
    memory = evaluator.conf.memory_text or "the memory it may use"
    since = time.time()
    deadline = since + _total_limit(run)
    skip: dict[str, str] = {}
    evaluator.close_input("go " + json.dumps(keep))
    # each restart leaves one more model out: at most one per model of the rubric
    for _ in range(2 * len(run.rubric.tasks) + 1):
        try:
            stopped = _supervise(evaluator, budget, since, deadline, memory)
        except subprocess.TimeoutExpired as exc:
            raise InfrastructureError("The evaluation of the harvested models took too long.",
                                      path=str(run.submission)) from exc
        except InfrastructureError as exc:
            raise InfrastructureError(str(exc), path=str(run.submission)) from exc
        if stopped is None:  # it ended well
            break
        model, why = stopped
        skip[f"{model.task}.{model.role}"] = \
            f"{model.task}.{model.role}.keras was not measured: {why}."
        evaluator = start_evaluator(run, skip=skip, wait=False)
        evaluator.close_input()
        since = time.time()
        deadline = since + _total_limit(run)
    else:
        raise InfrastructureError("The evaluation kept failing after every model was left out.",
                                  path=str(run.submission))
    try:
        return json.loads((Path(run.out) / "evaluation.json").read_text())
    except (OSError, ValueError) as exc:
        raise InfrastructureError(f"The evaluation process left no readable results "
                                  f"({type(exc).__name__}: {quoted(exc)}).",
                                  path=str(run.submission)) from exc
