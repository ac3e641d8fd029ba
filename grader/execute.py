"""Run a prepared notebook in its own kernel with nbclient, and report what happened.

Errors do not stop the run (``allow_errors``); each is recorded against its cell. A cell that
runs past its limit is interrupted and the run goes on; a kernel that dies, or a run past the
total limit, ends the run with a sentence saying where. The kernel is always shut down.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbclient.util import ensure_async
from traitlets import Integer, List, Type, Unicode

from .errors import ExecutionError, quoted
from .fstree import remove_tree
from .kernel.cells import output_cap_lines
from .quiet import TF_NOISE
from .recorder import CellRecorder, ExecutionReport
from .sandbox import Confinement

__all__ = ["ExecutionReport", "AfterCell", "run_notebook", "MAX_OUTPUT_BYTES"]

#: stored output per cell, and in all; the rest is dropped as it arrives, so printing a
#: gigabyte costs the grader nothing but the time to receive it. Display updates count too
#: (``update_display_data`` rewrites an earlier output in place), and widgets' messages are
#: not kept at all (the grader shows no widget).
MAX_OUTPUT_BYTES = 1 << 20
MAX_TOTAL_OUTPUT_BYTES = 16 << 20
#: the messages that store something in the notebook
_STORING = frozenset({"stream", "display_data", "execute_result", "error",
                      "update_display_data"})
#: a larger message from the kernel is dropped by zmq before it is read (its connection is reset
#: and comes back): one 1 GB print would otherwise cost the grader 2 GB to receive and decode.
#: Nothing that large could be stored anyway (the cap above is far smaller).
MAX_MESSAGE_BYTES = 16 << 20
#: what a kernel sends per cell on stdout and stderr before it drops the rest itself, so a loop
#: of prints cannot pile messages up in the kernel faster than the grader drops them (twice the
#: stored cap, so the grader still cuts and says so)
KERNEL_OUTPUT_CHARS = 2 * MAX_OUTPUT_BYTES


class GraderKernelClient(AsyncKernelClient):
    """The client nbclient talks through: output messages above ``MAX_MESSAGE_BYTES`` are
    dropped by zmq before the grader reads them."""

    def connect_iopub(self, identity=None):
        # zmq copies the context's socket options when a socket is made: only this one gets
        # the limit (a lost reply on the shell channel would stall the run instead)
        self.context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        try:
            return super().connect_iopub(identity)
        finally:
            self.context.setsockopt(zmq.MAXMSGSIZE, -1)


class GraderKernelManager(AsyncKernelManager):
    """Starts ``ipykernel`` with this interpreter, behind an optional confinement prefix."""

    client_factory = Type(GraderKernelClient, klass=AsyncKernelClient)
    command_prefix = List(Unicode(), default_value=[]).tag(config=True)
    #: the confined kernel's own user: it must read the connection file the grader writes
    kernel_uid = Integer(None, allow_none=True).tag(config=True)
    kernel_args = List(Unicode(), default_value=[]).tag(config=True)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file,
               "--HistoryManager.enabled=False",
               f"--IPKernelApp.exec_lines={output_cap_lines(KERNEL_OUTPUT_CHARS)}",
               *self.kernel_args,
               *(extra_arguments or [])]
        return [*self.command_prefix, *cmd]

    def write_connection_file(self, **kwargs):
        super().write_connection_file(**kwargs)
        if self.kernel_uid is not None:
            os.chown(self.connection_file, self.kernel_uid, self.kernel_uid)


@dataclass
class AfterCell:
    """Code the grader runs in the kernel after every code cell, silently: no cell number, no
    output in the notebook, nothing in the kernel's history. ``setup`` runs once, before the
    first ``code``; ``handle`` gets the text of ``expression`` after each successful run."""

    setup: str
    code: str
    expression: str
    handle: Callable[[str], None]
    skip_tag: str | None = None  # a cell with this tag is not followed by ``code``


class _CappedClient(NotebookClient):
    """nbclient with caps on stored output, per cell and in all (every message that stores
    something passes ``process_message``, nbclient's one entry point for them), and the
    grader's own silent code after each cell (``after_cell``)."""

    max_output_bytes = MAX_OUTPUT_BYTES
    max_total_bytes = MAX_TOTAL_OUTPUT_BYTES
    after_cell: AfterCell | None = None
    _after_cell_ready = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.output_bytes: dict[int, int] = {}  # per cell index: what its messages brought
        self.total_bytes = 0
        self.cut: set[int] = set()  # cells whose output was cut (the note is there)

    def process_message(self, msg, cell, cell_index):
        msg_type = msg.get("msg_type", "")
        if msg_type.startswith("comm"):
            return None  # widgets: never shown by the grader, so never kept
        if msg_type not in _STORING:
            return super().process_message(msg, cell, cell_index)
        content = msg.get("content") or {}
        if msg_type == "stream" and content.get("name") == "stderr":
            text = TF_NOISE.sub("", str(content.get("text", "")))
            if not text:
                return None
            content["text"] = text
        size = len(str(content))
        used = self.output_bytes.get(cell_index, 0)
        room = min(self.max_output_bytes - used, self.max_total_bytes - self.total_bytes)
        self.output_bytes[cell_index] = used + size
        if size <= room:
            self.total_bytes += size
            return super().process_message(msg, cell, cell_index)
        if msg_type == "stream" and room > 1024:  # keep the beginning of the text
            content["text"] = str(content.get("text", ""))[:room - 1024]
            self.total_bytes += room
            super().process_message(msg, cell, cell_index)
        if cell_index not in self.cut:
            self.cut.add(cell_index)
            whole = self.max_total_bytes - self.total_bytes < size
            cell.outputs.append(nbformat.v4.new_output(
                "stream", name="stderr", text="\n[ex8 grader: output of this cell cut at "
                + (f"{self.max_total_bytes >> 20} MB for the whole notebook]\n" if whole
                   else f"{self.max_output_bytes >> 10} KB]\n")))
        return None

    async def async_execute_cell(self, cell, cell_index, execution_count=None,
                                 store_history=True):
        cell = await super().async_execute_cell(cell, cell_index, execution_count,
                                                store_history)
        hook = self.after_cell
        if hook is not None and cell.cell_type == "code" and cell.source.strip() and \
                hook.skip_tag not in cell.metadata.get("tags", []):
            if not self._after_cell_ready:
                self._after_cell_ready = True
                await self._silent(hook.setup, {})
            reply = await self._silent(hook.code, {"value": hook.expression})
            value = ((reply or {}).get("content", {}).get("user_expressions") or {}).get("value")
            if isinstance(value, dict) and value.get("status") == "ok":
                hook.handle(str(value.get("data", {}).get("text/plain", ""))[:1 << 20])
        return cell

    async def _silent(self, code: str, expressions: dict) -> dict | None:
        if self.kc is None:  # called after a cell ran: the kernel's client is there
            raise RuntimeError("the notebook's kernel has no client")
        msg_id = await ensure_async(self.kc.execute(
            code, silent=True, store_history=False, user_expressions=expressions,
            stop_on_error=False))
        return await self.async_wait_for_reply(msg_id)

def _disk_usage(top: Path, max_entries: int = 100_000) -> float:
    """Bytes a folder holds on disk (sparse files count what they use); a folder with more
    than ``max_entries`` entries counts as infinite (inodes are a disk resource too)."""
    total, seen, stack = 0, 0, [str(top)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    seen += 1
                    if seen > max_entries:
                        return float("inf")
                    st = entry.stat(follow_symlinks=False)
                    total += st.st_blocks * 512 if hasattr(st, "st_blocks") else st.st_size
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue
    return total


class _DiskWatch(threading.Thread):
    """Stops the run when the work folder grows past its quota (the only disk it may write)."""

    def __init__(self, workdir: Path, quota: int, stop_run):
        super().__init__(name="ex8-disk-watch", daemon=True)
        self.workdir, self.quota, self.stop_run = workdir, quota, stop_run
        self.tripped = False
        self._done = threading.Event()

    def run(self):
        while not self._done.wait(0.5):
            if _disk_usage(self.workdir) > self.quota:
                self.tripped = True
                self.stop_run()
                return

    def stop(self):
        self._done.set()


def run_notebook(nb: nbformat.NotebookNode, workdir: Path, *, env: dict[str, str],
                 cell_timeout: float, total_timeout: float, owners: list[str | None],
                 command_prefix: list[str] | None = None, kernel_kwargs: dict | None = None,
                 startup_timeout: float = 120, confinement: Confinement | None = None,
                 after_cell: AfterCell | None = None) -> ExecutionReport:
    """Execute ``nb`` in ``workdir``; ``owners[i]`` is the task cell ``i`` belongs to.

    With a ``confinement`` (``sandbox.plan``), the kernel starts behind its prefix, its
    sockets go where the sandbox can reach them, the work folder's quota is watched, and at
    the end every process of the run is killed and the confinement undone. ``after_cell``:
    the grader's silent code after each code cell (the early hand-out of the models).
    """
    recorder = CellRecorder(nb, owners, cell_timeout)
    report = recorder.report
    # ipc sockets: no TCP port for other users of the machine to find, and they still reach a
    # kernel in its own network namespace. A short folder, because socket paths are limited.
    ipc_dir = confinement.ipc_dir if confinement and confinement.ipc_dir else \
        Path(tempfile.mkdtemp(prefix="ex8-ipc-"))
    client = _client(nb, workdir, ipc_dir, confinement, command_prefix, kernel_kwargs,
                     cell_timeout=cell_timeout, startup_timeout=startup_timeout)
    client.after_cell = after_cell
    km = client.km
    assert km is not None  # _client made it
    client.on_cell_execute = recorder.on_cell_execute
    client.on_cell_error = recorder.on_cell_error
    client.on_cell_executed = recorder.on_cell_executed
    watch = None
    if confinement and confinement.disk_quota:
        def stop_run():  # from the watch thread: the cgroup, or the kernel's process group
            confinement.kill(getattr(km.provisioner, "pgid", None))

        watch = _DiskWatch(workdir, confinement.disk_quota, stop_run)
        watch.start()
    start = time.monotonic()
    oom = False
    try:
        _execute(client, report, workdir, env, total_timeout, start)
    finally:
        report.seconds = time.monotonic() - start
        # nbclient registers its kernel's clean-up at exit and never takes it back: it would
        # keep this client (and the notebook's outputs) alive until the grader ends, then fail
        # on the kernel manager it already cleared ("Exception ignored in atexit callback")
        atexit.unregister(client._cleanup_kernel)
        if watch:
            watch.stop()
        if confinement:
            oom = confinement.out_of_memory()
            confinement.close()  # every process the kernel left behind dies here
        try:
            remove_tree(ipc_dir)  # the kernel could write there: however deep
        except OSError:
            pass
    if watch and watch.tripped:
        report.event = "disk"
        report.kernel = (f"The run was stopped {report.last_cell}: the notebook wrote "
                         f"more than {watch.quota >> 20} MB into its work folder.")
    elif oom and confinement and report.event == "died":
        report.event = "memory"
        report.kernel = (f"The kernel died {report.last_cell}: it needed more than the "
                         f"{confinement.memory_text} of memory it may use.")
    return report


def _client(nb: nbformat.NotebookNode, workdir: Path, ipc_dir: Path,
            confinement: Confinement | None, command_prefix: list[str] | None,
            kernel_kwargs: dict | None, *, cell_timeout: float,
            startup_timeout: float) -> _CappedClient:
    """The notebook's client and its kernel manager: ipc sockets in ``ipc_dir``, the kernel
    behind the confinement's prefix and uid."""
    if confinement:
        command_prefix = confinement.command_prefix
    km = GraderKernelManager(kernel_name="python3", command_prefix=command_prefix or [],
                             transport="ipc", ip=str(ipc_dir / "k"),
                             connection_file=str(ipc_dir / "kernel.json"),
                             kernel_uid=confinement.uid if confinement else None,
                             kernel_args=confinement.kernel_args if confinement else [],
                             **(kernel_kwargs or {}))
    return _CappedClient(nb, km=km, timeout=int(cell_timeout), startup_timeout=startup_timeout,
                         allow_errors=True, interrupt_on_timeout=True, record_timing=True,
                         skip_cells_with_tag="ex8-grader-runs-every-cell",
                         shutdown_kernel="immediate",
                         resources={"metadata": {"path": str(workdir)}})


def _execute(client: _CappedClient, report: ExecutionReport, workdir: Path,
             env: dict[str, str], total_timeout: float, start: float) -> None:
    """Runs every cell within ``total_timeout``; a run that ends early says why in
    ``report.kernel`` (and ``report.event``). Raises ``ExecutionError`` only for what is
    nobody's notebook's doing."""
    with open(workdir / "kernel.log", "ab") as log:  # the kernel process's own chatter
        async def run():
            # cleanup_kc: shut the kernel down and close its sockets though we made the km
            await client.async_execute(cleanup_kc=True, env=env, cwd=str(workdir),
                                       stdout=log, stderr=log)

        try:
            asyncio.run(asyncio.wait_for(run(), timeout=total_timeout))
        except (asyncio.TimeoutError, TimeoutError, DeadKernelError) as exc:
            # Cancelling at the deadline may surface as the kernel's death: the clock decides.
            if isinstance(exc, DeadKernelError) and time.monotonic() - start < total_timeout:
                report.event = "died"
                report.kernel = f"The kernel died {report.last_cell}."
            else:
                report.event = "timeout"
                report.kernel = (f"The run was stopped after {total_timeout:.0f} s (the total "
                                 f"limit), {report.last_cell}.")
        except RuntimeError as exc:
            if "Kernel didn't respond" in str(exc) or "Kernel died" in str(exc):
                report.event = "no_start"
                report.kernel = f"The kernel did not start: {quoted(exc)}."
            else:
                raise ExecutionError(f"The kernel could not be run: {quoted(exc)}.") from exc
