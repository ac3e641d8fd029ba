"""Run a prepared notebook in its own kernel with nbclient, and report what happened.

Errors do not stop the run (``allow_errors``); each is recorded against its cell. A cell that
runs past its limit is interrupted and the run goes on; a kernel that dies, or a run past the
total limit, ends the run with a sentence saying where. The kernel is always shut down.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from traitlets import List, Unicode

from .errors import ExecutionError
from .results import CellError

__all__ = ["ExecutionReport", "run_notebook", "MAX_OUTPUT_BYTES"]

#: stored output per cell; the rest is dropped as it arrives, so printing a gigabyte costs
#: the grader nothing but the time to receive it
MAX_OUTPUT_BYTES = 1 << 20
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: TensorFlow's start-up notices, printed by abseil before any log level applies; only these
#: exact lines are dropped from a cell's stderr, never anything else
_TF_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I0000 [^\n]*\] (oneDNN custom operations are on|This TensorFlow binary is optimized)"
    r"[^\n]*|To enable the following instructions: [^\n]*rebuild TensorFlow[^\n]*)\n?", re.M)


class GraderKernelManager(AsyncKernelManager):
    """Starts ``ipykernel`` with this interpreter, behind an optional confinement prefix."""

    command_prefix = List(Unicode(), default_value=[]).tag(config=True)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file,
               "--HistoryManager.enabled=False", *(extra_arguments or [])]
        return [*self.command_prefix, *cmd]


class _CappedClient(NotebookClient):
    """nbclient with a per-cell cap on stored output (its ``output`` hook point)."""

    max_output_bytes = MAX_OUTPUT_BYTES

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        if msg.get("msg_type") == "stream" and content.get("name") == "stderr":
            text = _TF_NOISE.sub("", content.get("text", ""))
            if not text:
                return None
            content["text"] = text
        size = len(str(msg.get("content", "")))
        used = self._output_bytes.get(cell_index, 0)
        self._output_bytes[cell_index] = used + size
        if used + size <= self.max_output_bytes:
            return super().output(outs, msg, display_id, cell_index)
        if used <= self.max_output_bytes:
            outs.append(nbformat.v4.new_output(
                "stream", name="stderr",
                text=f"\n[ex8 grader: output of this cell cut at {self.max_output_bytes >> 10} KB]\n"))
        return None


@dataclass
class ExecutionReport:
    notebook: nbformat.NotebookNode
    errors: list[CellError] = field(default_factory=list)
    kernel: str | None = None  # why the run ended early, one sentence
    timed_out_cells: list[int] = field(default_factory=list)
    seconds: float = 0.0
    last_cell: int | None = None  # 1-based index of the last cell that started


def _traceback_tail(lines: list[str], keep: int = 12) -> str:
    text = _ANSI.sub("", "\n".join(lines))
    tail = text.splitlines()[-keep:]
    return "\n".join(tail)[-4000:]


def _error_line(traceback: str) -> int | None:
    """The line of the cell where an error was raised (IPython marks it with ``---->``)."""
    cell_frames = re.findall(r"^(?:Cell In\[\d+\], line (\d+)|-+> ?(\d+))", traceback, re.M)
    for line, arrow in reversed(cell_frames):
        if line:
            return int(line)
    return None


def run_notebook(nb: nbformat.NotebookNode, workdir: Path, *, env: dict[str, str],
                 cell_timeout: float, total_timeout: float, owners: list[str | None],
                 command_prefix: list[str] | None = None, kernel_kwargs: dict | None = None,
                 startup_timeout: float = 120) -> ExecutionReport:
    """Execute ``nb`` in ``workdir``; ``owners[i]`` is the task cell ``i`` belongs to."""
    report = ExecutionReport(notebook=nb)
    # ipc sockets: no TCP port for other users of the machine to find, and they still reach a
    # kernel in its own network namespace. A short folder, because socket paths are limited.
    ipc_dir = Path(tempfile.mkdtemp(prefix="ex8-ipc-"))
    km = GraderKernelManager(kernel_name="python3", command_prefix=command_prefix or [],
                             transport="ipc", ip=str(ipc_dir / "k"), **(kernel_kwargs or {}))
    client = _CappedClient(nb, km=km, timeout=int(cell_timeout), startup_timeout=startup_timeout,
                           allow_errors=True, interrupt_on_timeout=True, record_timing=True,
                           skip_cells_with_tag="ex8-grader-runs-every-cell",
                           shutdown_kernel="immediate",
                           resources={"metadata": {"path": str(workdir)}})
    client._output_bytes = {}

    def on_cell_execute(cell, cell_index):
        report.last_cell = cell_index + 1
        cell.metadata.setdefault("ex8", {})["started"] = time.monotonic()

    def on_cell_error(cell, cell_index, execute_reply):
        content = execute_reply["content"]
        tb = _traceback_tail(content.get("traceback", []))
        report.errors.append(CellError(
            cell=cell_index + 1, task=owners[cell_index] if cell_index < len(owners) else None,
            ename=str(content.get("ename", "Error"))[:200],
            evalue=_ANSI.sub("", str(content.get("evalue", "")))[:1000],
            traceback=tb, source_line=_error_line(tb)))

    def on_cell_executed(cell, cell_index, execute_reply):
        started = cell.metadata.get("ex8", {}).pop("started", None)
        if not cell.metadata["ex8"]:
            del cell.metadata["ex8"]
        if started is not None and time.monotonic() - started >= cell_timeout:
            report.timed_out_cells.append(cell_index + 1)

    client.on_cell_execute = on_cell_execute
    client.on_cell_error = on_cell_error
    client.on_cell_executed = on_cell_executed

    log = open(workdir / "kernel.log", "ab")  # the kernel process's own chatter

    async def run():
        # cleanup_kc: shut the kernel down and close its sockets even though we made the km
        await client.async_execute(cleanup_kc=True, env=env, cwd=str(workdir), stdout=log,
                                   stderr=log)

    start = time.monotonic()
    try:
        asyncio.run(asyncio.wait_for(run(), timeout=total_timeout))
    except (asyncio.TimeoutError, TimeoutError):
        report.kernel = (f"The run was stopped after {total_timeout:.0f} s (the profile's total "
                         f"limit), in cell {report.last_cell}.")
    except DeadKernelError:
        report.kernel = f"The kernel died in cell {report.last_cell}."
    except RuntimeError as exc:
        if "Kernel didn't respond" in str(exc) or "Kernel died" in str(exc):
            report.kernel = f"The kernel did not start: {exc}."
        else:
            raise ExecutionError(f"The kernel could not be run: {exc}.") from exc
    finally:
        report.seconds = time.monotonic() - start
        log.close()
        shutil.rmtree(ipc_dir, ignore_errors=True)
    for index in report.timed_out_cells:
        for err in report.errors:
            if err.cell == index and err.ename == "KeyboardInterrupt":
                report.errors[report.errors.index(err)] = CellError(
                    cell=err.cell, task=err.task, ename="CellTimeout",
                    evalue=f"stopped after the {cell_timeout:.0f} s limit per cell",
                    traceback=err.traceback, source_line=err.source_line)
    return report
