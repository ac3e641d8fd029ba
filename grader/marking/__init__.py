"""Written answers marked by a TA: the marks file, the marking page (``grade mark``), and the
marks merged into a result (``grade rescore``, and every batch run).

- ``marks``: ``marks.csv`` (its one validating reader, its writer) and ``apply_marks``;
- ``folder``: a graded output folder as the TA marks it: the questions, the reference answers,
  each student's answer;
- ``server``: the page, a Flask app on 127.0.0.1 behind a token.
"""

from __future__ import annotations

from .folder import MarkingFolder, Question, Student, open_folder, reference_answers
from .marks import (COLUMNS, MARKS, Mark, MarksError, answer_digest, apply_marks, by_student,
                    manual_items, read_marks, write_marks)

__all__ = ["MARKS", "COLUMNS", "Mark", "MarksError", "MarkingFolder", "Question", "Student",
           "open_folder", "reference_answers", "answer_digest", "apply_marks", "by_student",
           "manual_items", "read_marks", "write_marks"]
