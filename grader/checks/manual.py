"""Items a TA marks by hand (the "compare with the previous models" answers).

Such an item is neither passed nor failed: it is to be marked, with the answer's text kept for
the TA (``grade mark``) and the reports; the TA's marks are merged in by ``grader.marking``.
"""

from __future__ import annotations

from .base import Outcome, TaskContext

__all__ = ["check_manual", "ANSWER_CHARS"]

#: what the reports keep of one answer (a markdown cell can be of any size)
ANSWER_CHARS = 20_000


def check_manual(ctx: TaskContext, spec) -> Outcome:
    prompt = spec.options.get("prompt", "")
    answer = "\n\n".join(a.strip() for a in ctx.answers if a.strip())
    if len(answer) > ANSWER_CHARS:
        answer = answer[:ANSWER_CHARS - 3] + "..."
    found = "" if answer else " No answer was found (a markdown cell tagged answer)."
    return Outcome(False, f"{ctx.label}: to be marked by a TA. {prompt}{found}", pending=True,
                   answer=answer)
