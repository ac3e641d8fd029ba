"""The training history a notebook kept (information: a History is the kernel's word, so the
rubric may give it no points), and the bonus's measured "learns": the trained model against the
same architecture untrained, on the grader's own movies."""

from __future__ import annotations

from .base import Outcome, TaskContext, option, sentence

__all__ = ["check_history", "check_learns", "validate_epochs", "validate_ratio"]


def validate_epochs(value) -> str | None:
    if isinstance(value, str) and value.isidentifier():
        return None
    return option("int")(value)


def _history(ctx: TaskContext) -> dict | Outcome:
    """The History the notebook kept for the task, else the failure that says why there is
    none."""
    h = ctx.harvest.get("history", {})
    name = ctx.task.history
    status = h.get("status")
    if status == "ok" and isinstance(h.get("history"), dict):
        return h["history"]
    if status == "not_a_history":
        return Outcome(False, f"{ctx.label}: {name} is a {h.get('type')}, not the History "
                              "that fit() returns.",
                       hint=f"{name} = model.fit(...) keeps the History.",
                       cause="not_a_history",
                       todo=f"Keep the History that fit() returns as {name}: it is a "
                            f"{h.get('type')}.")
    why = ctx.not_run or f"{name} is not set"
    if ctx.not_run or ctx.harvest.get("model", {}).get("status") != "ok":
        cause, todo = ctx.training_cause()
    else:
        cause, todo = "no_history", f"Keep the History that fit() returns: {name} = " \
                                    f"{ctx.task.model}.fit(...)."
    return Outcome(False, f"{ctx.label}: no training history: {why}.",
                   hint=f"Keep the return value of fit(): {name} = "
                        f"{ctx.task.model}.fit(...).", cause=cause, todo=todo)


def check_history(ctx: TaskContext, spec) -> Outcome:
    """What the notebook's History says: the epochs and the keys it recorded. The kernel's word
    only, so the rubric gives it no points (``CheckEntry.scored``)."""
    history = _history(ctx)
    if isinstance(history, Outcome):
        return history
    epochs_opt = spec.options.get("epochs")
    want = ctx.parameter(epochs_opt) if isinstance(epochs_opt, str) else epochs_opt
    keys = list(spec.options.get("keys", []))
    got = len(history.get("loss", []))
    problems = []
    missing = [k for k in keys if k not in history]
    if missing:
        legacy = [k for k in history if k in ("acc", "val_acc")]
        problems.append(f"the history has no {', '.join(missing)}"
                        + (f" (it has {', '.join(legacy)}, Keras 2's names)" if legacy else ""))
    if want is not None and got != want:
        problems.append(f"it recorded {got} epoch{'s' * (got != 1)}, but {epochs_opt} is {want}")
    if problems:
        hint = []
        if any(k.startswith("val_") for k in missing):
            hint.append("pass validation_data=(X_val, y_val) to fit()")
        if "accuracy" in missing:
            hint.append("compile with metrics=['accuracy']")
        if want is not None and got != want:
            hint.append(f"pass epochs={epochs_opt} to fit() so the grader's profiles can set it")
        return Outcome(False, f"{ctx.label}: " + "; ".join(problems) + ".",
                       hint=sentence("; ".join(hint)) if hint else None,
                       todo=f"Fix the training of {ctx.task.model}: " + "; ".join(
                           hint or [problems[0]]) + ".")
    return Outcome(True, f"{ctx.label}: {got} epoch{'s' * (got != 1)} recorded with "
                         f"{', '.join(sorted(history))}.")


def validate_ratio(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        return "must be a number between 0 and 1 (a share of the untrained model's loss)"
    return None


def check_learns(ctx: TaskContext, spec) -> Outcome:
    """The trained model's loss on the grader's movies is clearly below the same architecture's
    untrained (the evaluator's own clone, with weights drawn afresh)."""
    trained = ctx.measured()
    if isinstance(trained, Outcome):  # why its measurement does not count
        return trained
    m = trained.get("metrics") or {}
    loss, base = m.get("loss"), m.get("untrained_loss")
    if not isinstance(loss, (int, float)) or not isinstance(base, (int, float)):
        return Outcome(False, sentence(f"{ctx.label}: the trained model could not be measured "
                                       f"on the grader's movies: "
                                       f"{trained.get('error', 'no prediction')}"),
                       cause="trained_unmeasured",
                       todo=ctx.unmeasured_todo(trained.get("error", "no prediction")))
    ratio = spec.options.get("at_most", 0.995)
    movies = ctx.profile.evaluation.get("movies")
    measured = (f"on the grader's {movies} movies its loss is {loss:.4f}; the same "
                f"architecture untrained scores {base:.4f} (at most {ratio:g} x that is "
                f"{ratio * base:.4f})")
    if loss <= ratio * base:
        return Outcome(True, f"{ctx.label}: {ctx.task.model} learned: {measured}.")
    return Outcome(False, f"{ctx.label}: {ctx.task.model} did not learn enough: {measured}.",
                   hint="In Keras 3 optimizer='adadelta' means a learning rate of 0.001 "
                        "(Keras 2 used 1.0): use keras.optimizers.Adadelta(learning_rate=1.0), "
                        "and pass epochs=MOVIE_EPOCHS to fit().",
                   todo=f"Make {ctx.task.model} learn: its loss on the grader's movies is "
                        f"{loss:.4f}, and at most {ratio * base:.4f} is needed.")
