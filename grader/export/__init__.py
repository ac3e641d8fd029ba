"""Hand the grader to the systems a course runs on: an autograder bundle for Gradescope
(``gradescope``).

Nothing is imported here, so that ``python -m grader.export.gradescope`` (what the bundle's
scripts call) starts without importing itself twice.
"""
