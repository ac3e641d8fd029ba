"""Training-history checks: the epochs a notebook recorded, the keys, and a falling loss."""

from __future__ import annotations

from .base import Outcome, TaskContext, option

__all__ = ["check_history", "check_loss_falls", "validate_epochs"]


def validate_epochs(value) -> str | None:
    if isinstance(value, str) and value.isidentifier():
        return None
    return option("int")(value)


def _history(ctx: TaskContext) -> tuple[dict | None, Outcome | None]:
    h = ctx.harvest.get("history", {})
    name = ctx.task.history
    status = h.get("status")
    if status == "ok" and isinstance(h.get("history"), dict):
        return h["history"], None
    if status == "not_a_history":
        return None, Outcome(False, f"{ctx.label}: {name} is a {h.get('type')}, not the History "
                                    "that fit() returns.",
                             hint=f"{name} = model.fit(...) keeps the History.")
    why = ctx.not_run or f"{name} is not set"
    return None, Outcome(False, f"{ctx.label}: no training history: {why}.",
                         hint=f"Keep the return value of fit(): {name} = "
                              f"{ctx.task.model}.fit(...).")


def check_history(ctx: TaskContext, spec) -> Outcome:
    history, failure = _history(ctx)
    if failure:
        return failure
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
                       hint=("; ".join(hint).capitalize() + ".") if hint else None)
    return Outcome(True, f"{ctx.label}: {got} epoch{'s' * (got != 1)} recorded with "
                         f"{', '.join(sorted(history))}.")


def check_loss_falls(ctx: TaskContext, spec) -> Outcome:
    history, failure = _history(ctx)
    if failure:
        return failure
    loss = history.get("loss", [])
    if len(loss) < 2:
        return Outcome(False, f"{ctx.label}: {len(loss)} epoch recorded; at least 2 are needed "
                              "to see the loss fall.")
    first, last = loss[0], loss[-1]
    if last < first:
        return Outcome(True, f"{ctx.label}: the training loss fell from {first:.4f} to "
                             f"{last:.4f}.")
    return Outcome(False, f"{ctx.label}: the training loss did not fall ({first:.4f} in the "
                          f"first epoch, {last:.4f} in the last).",
                   hint="In Keras 3 optimizer='adadelta' means a learning rate of 0.001 "
                        "(Keras 2 used 1.0): use keras.optimizers.Adadelta(learning_rate=1.0).")
