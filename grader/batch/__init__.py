"""Batch grading: a folder of submissions becomes jobs, graded in parallel (local worker pool or
a Dask cluster), resumable, with ``gradebook.csv``, one feedback page per student and a summary.

The modules, in the order a batch meets them:

- ``discover``: names -> jobs and skipped entries (pure), walking the folder without following
  links or opening anything but regular files;
- ``worker``: the grading process of one submission (``python -m grader.batch``), which grades a
  private copy of it, and ``run_job``, which starts that process;
- ``runners``: local worker threads, or a Dask cluster's task slots;
- ``progress``: the progress bar or lines;
- ``stored``: rows, markers (``batch.json``), the manifest and ``gradebook.csv``;
- ``folder``: ``grade_folder`` and ``rescore_folder``, which put these together.
"""

from __future__ import annotations

from .discover import Job, Skipped, find_submissions
from .folder import BatchSummary, default_out, grade_folder, rescore_folder
from .runners import default_workers
from .stored import GRADEBOOK, INDEX, MANIFEST, MARKER, Row
from .worker import Settings, run_job

__all__ = ["Job", "Settings", "Row", "Skipped", "BatchSummary", "find_submissions",
           "grade_folder", "rescore_folder", "run_job", "default_workers", "default_out",
           "GRADEBOOK", "INDEX", "MARKER", "MANIFEST"]
