"""How the student's kernel (and the evaluator) are confined.

``probe`` (what this machine offers), ``confinement`` (the layers decided for it, purely, then
applied for one run: ``plan``; ``Confinement.close`` undoes them), ``cgroups``, ``bwrap`` (the
filesystem view), ``limits``, ``process`` (a confined helper: the evaluator), ``session`` (one
grading's sandbox as a context manager). The report lists the layers that were on, so a run on a
laptop without root or bubblewrap still grades and says what it could not do.
"""

from .confinement import Confinement, Decision, decide, plan
from .limits import LIMITS, Limits, cores, thread_env
from .probe import MODE_ENV, Machine, available
from .process import ConfinedProcess, start_confined
from .session import Session

__all__ = ["Confinement", "ConfinedProcess", "Decision", "Limits", "LIMITS", "Machine",
           "MODE_ENV", "Session", "available", "cores", "decide", "plan", "start_confined",
           "thread_env"]
