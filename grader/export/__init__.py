"""Hand the grader and its results to the systems a course runs on: an autograder bundle for
Gradescope (``gradescope``) and a graded batch's totals in Canvas' or Moodle's own gradebook
file (``lms``).

Both read a graded batch only through the files it stored (``graded``), never through the
batch runner's internals. Nothing is imported here, so that ``python -m
grader.export.gradescope`` (what the bundle's scripts call) starts without importing itself
twice.
"""
