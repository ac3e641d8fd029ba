"""Keras 2 -> Keras 3 migration hints: the lines of a submission written the exercise's 2018 way.

The exercise was written for Keras 2.1 and Python 2; students copy its code into Keras 3 and
meet errors that say little. Each hint names the cell and line, quotes it and gives the Keras 3
spelling. Hints are advice and cost no points; a hint whose line raised one of the run's
recorded errors says so. ``rules`` (what changed, and the fix), ``scan`` (finding them in a
source: ``ast``, ``tokenize`` for Python 2 print statements, which do not parse, line by line
for a cell that still does not parse), ``hints`` (findings joined with the run's errors).
"""

from .hints import find_hints
from .rules import LEGACY_MODULES, RULES
from .scan import scan_source

__all__ = ["find_hints", "scan_source", "RULES", "LEGACY_MODULES"]
