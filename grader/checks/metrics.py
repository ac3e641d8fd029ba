"""Measured-performance checks: accuracy on the grader's own test reviews."""

from __future__ import annotations

from typing import Mapping

from .base import Outcome, TaskContext, fmt_int, sentence

__all__ = ["check_accuracy", "validate_threshold"]


def validate_threshold(options: Mapping, profiles: set) -> str | None:
    threshold = options.get("threshold")
    if not isinstance(threshold, Mapping) or not threshold:
        return "key 'threshold' must map profile names to accuracies"
    for name, value in threshold.items():
        if name not in profiles:
            return f"key 'threshold' names unknown profile {name!r}"
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            return f"key 'threshold.{name}' must be a number between 0 and 1"
    return None


def check_accuracy(ctx: TaskContext, spec) -> Outcome:
    threshold = spec.options["threshold"][ctx.profile.name]
    trained = ctx.measured()
    if isinstance(trained, Outcome):  # why its measurement does not count
        return trained
    if "metrics" not in trained:
        return Outcome(False, sentence(f"{ctx.label}: the trained model could not be measured: "
                                       f"{trained.get('error', 'no prediction')}"),
                       cause="trained_unmeasured",
                       todo=ctx.unmeasured_todo(trained.get("error", "no prediction")))
    m = trained["metrics"]
    held = "held-out " if m.get("held_out") else ""
    measured = (f"measured accuracy {m['accuracy']:.4f} on {fmt_int(m['samples'])} {held}test "
                f"reviews (threshold {threshold:.2f}; weighted precision {m['precision']:.3f}, "
                f"recall {m['recall']:.3f})")
    if m["accuracy"] >= threshold:
        return Outcome(True, f"{ctx.label}: {measured}.")
    hint = "Check that the model is trained (fit with epochs=EPOCHS, batch_size=BATCH_SIZE) " \
           "on X_train, y_train, and that the output is Dense(1, activation='sigmoid') with " \
           "binary_crossentropy."
    if ctx.harvest.get("history", {}).get("status") != "ok":
        hint = f"{ctx.task.model} looks untrained: fit it and keep the History as " \
               f"{ctx.task.history}."
    return Outcome(False, f"{ctx.label}: {measured}.", hint=hint,
                   todo=f"Raise the test accuracy of {ctx.task.model} to {threshold:.2f}: the "
                        f"grader measured {m['accuracy']:.4f}.")
