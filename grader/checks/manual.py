"""Items a TA marks by hand (the "compare with the previous models" answers)."""

from __future__ import annotations

from .base import Outcome, TaskContext

__all__ = ["check_manual"]


def check_manual(ctx: TaskContext, spec) -> Outcome:
    prompt = spec.options.get("prompt", "")
    answers = [a.strip() for a in ctx.answers if a.strip()]
    if not answers:
        return Outcome(False, f"{ctx.label}: to be marked by a TA. {prompt} No answer was found.",
                       pending=True)
    answer = " ".join(" ".join(answers).split())
    if len(answer) > 400:
        answer = answer[:397] + "..."
    return Outcome(False, f"{ctx.label}: to be marked by a TA. {prompt} Answer: {answer}",
                   pending=True)
