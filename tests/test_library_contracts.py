"""What the grader relies on in nbclient and jupyter_client, pinned in pyproject.toml: these
tests fail when a release changes it (then widen the pin only after adapting execute.py)."""

from __future__ import annotations

import inspect
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from grader.execute import _CappedClient, run_notebook


def test_the_notebook_client_methods_the_grader_extends_are_still_there():
    # every storing message passes process_message; after_cell runs in async_execute_cell
    assert list(inspect.signature(NotebookClient.process_message).parameters) == \
        ["self", "msg", "cell", "cell_index"]
    assert list(inspect.signature(NotebookClient.async_execute_cell).parameters)[:4] == \
        ["self", "cell", "cell_index", "execution_count"]
    for name in ("reset_execution_trackers", "async_wait_for_reply", "on_cell_execute",
                 "on_cell_error", "on_cell_executed"):
        assert hasattr(NotebookClient, name), name
    assert _CappedClient.process_message is not NotebookClient.process_message


@pytest.mark.kernel
def test_a_kernel_that_never_starts_is_reported_as_such(tmp_path: Path):
    """jupyter_client says "Kernel died before replying" (or "didn't respond"): execute.py
    reads that text to tell a kernel that never started from one that died later."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    report = run_notebook(nb, tmp_path, env={"PATH": "/usr/bin:/bin"}, cell_timeout=30,
                          total_timeout=60, owners=[None], command_prefix=["/bin/false"],
                          startup_timeout=20)
    assert report.event == "no_start", (report.event, report.kernel)
    assert report.kernel.startswith("The kernel did not start: Kernel ")
