"""One confined process tree: the layers decided for this machine (``decide``, pure), then
applied for one run folder (``plan``): its command prefix, environment, cgroups, sockets folder
and user. ``Confinement.close`` undoes it and kills whatever the run left behind.

The layers, from the outside in: ``sh`` puts itself into the run's cgroups (memory, processes,
CPU) and ignores SIGINT, then ``prlimit`` sets the rlimits, then ``bwrap`` builds a mount,
network, PID, IPC and UTS namespace (``unshare`` when bubblewrap is missing), then ``setpriv``
drops to a fresh unprivileged uid with no capabilities and ``no_new_privs``, then Python.
"""

from __future__ import annotations

import os
import secrets
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..fstree import chown_tree, remove_tree
from ..quiet import QUIET_ENV
from . import limits as _limits
from .bwrap import bwrap_args
from .cgroups import Cgroups
from .limits import Limits, cores, size_text, thread_env
from . import probe
from .probe import Machine

__all__ = ["Confinement", "Decision", "decide", "plan"]

#: variables a kernel keeps from the grader's environment; everything else is dropped
_KEEP = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")


#: sockets need a short path (about 100 bytes at most); TMPDIR can be long (macOS)
_SOCKETS_ROOT = "/tmp" if os.path.isdir("/tmp") else None


@dataclass
class Confinement:
    """What a confined process is started with, and what has to be undone afterwards."""

    command_prefix: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)  # the layers that are on, for the report
    off: list[str] = field(default_factory=list)  # the ones that are not, and why
    workdir: Path | None = None
    ipc_dir: Path | None = None  # for the kernel's sockets (and connection file)
    uid: int | None = None  # the unprivileged user the process runs as, if any
    disk_quota: int | None = None  # bytes the work folder may hold (execute.py watches it)
    cgroups: Cgroups | None = None
    marker: str = ""  # an environment entry that finds the run's processes without cgroups
    memory_text: str = ""  # the memory limit, for messages ("4 GiB")
    kernel_args: list[str] = field(default_factory=list)  # for ipykernel, when it is the kernel
    hides_files: bool = False  # only what was bound is visible (bubblewrap's filesystem view)
    _closed: bool = False

    def out_of_memory(self) -> bool:
        """Whether the memory limit killed a process of the run (read before ``close``)."""
        return bool(self.cgroups and self.cgroups.oom_kills())

    def kill(self, pgid: int | None = None) -> int:
        """Kill every process of the run (the cgroup, else the marked ones and the group)."""
        killed = 0
        if pgid:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass
        if self.cgroups:
            killed += self.cgroups.kill()
        if self.marker:
            killed += _kill_marked(self.marker)
        return killed

    def close(self) -> int:
        """Kill what is left, remove the cgroups and the sockets folder, give the work folder
        back to the grader's user. Returns how many processes were still running."""
        if self._closed:
            return 0
        self._closed = True
        left = self.kill()
        if self.cgroups:
            self.cgroups.remove()
        if self.ipc_dir:
            _remove_quietly(self.ipc_dir)
        if self.uid is not None and self.workdir is not None:
            chown_tree(self.workdir, os.getuid(), os.getgid())
        return left


def _kill_marked(marker: str) -> int:
    """Without cgroups: the run's processes still carry its marker in their environment."""
    needle = marker.encode() + b"\0"
    killed = 0
    for _ in range(20):
        found = []
        for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if needle in (entry / "environ").read_bytes():
                        found.append(int(entry.name))
                except OSError:
                    continue
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        time.sleep(0.05)
    return killed


def _remove_quietly(top: Path) -> None:
    """Remove a folder a confined process wrote (however deep: ``fstree``), as far as it goes."""
    try:
        remove_tree(top)
    except OSError:
        pass


# --------------------------------------------------------------------------- deciding


@dataclass(frozen=True)
class Decision:
    """Which layers a run gets on a machine, and a sentence for each one that is off."""

    mode: str  # bwrap, unshare or none
    separate_user: bool
    cgroups: bool
    rlimits: bool
    off: tuple[str, ...]


def decide(m: Machine) -> Decision:
    """The layers for machine ``m``: a pure function of what the machine offers."""
    off = []
    user = m.root and m.setpriv and m.mode in ("bwrap", "unshare")
    if user and m.mode == "unshare" and not m.interpreter_reachable:
        user = False
        off.append("separate user (the Python environment is not readable by other users and "
                   "bubblewrap, which could show it, is missing)")
    elif not user:
        off.append("separate user (needs root and setpriv)")
    cgroups = m.root and m.cgroup
    if not cgroups:
        off.append("memory and process limits (no writable cgroup; needs root)")
    if not m.prlimit:
        off.append("rlimits (prlimit is missing)")
    if m.mode == "unshare":
        off.append("filesystem view (bubblewrap is missing)")
    elif m.mode == "none":
        off += ["no network (no namespaces here)", "filesystem view (no bubblewrap)"]
    return Decision(m.mode, user, cgroups, m.prlimit, tuple(off))


# --------------------------------------------------------------------------- applying


def _environment(data_env: dict[str, str], threads: int, home: Path, tmp: Path) -> dict:
    env = {k: os.environ[k] for k in _KEEP if k in os.environ}
    env.update(QUIET_ENV)
    env.update(thread_env(threads))
    env.update({k: str(Path(v).resolve()) for k, v in data_env.items() if v})
    env.update({"HOME": str(home), "TMPDIR": str(tmp), "IPYTHONDIR": str(home / ".ipython"),
                "MPLCONFIGDIR": str(home / ".matplotlib"), "PYTHONNOUSERSITE": "1",
                "PYTHONDONTWRITEBYTECODE": "1", "KERAS_HOME": str(home / ".keras"),
                "USER": "student", "LOGNAME": "student"})
    return env


def _join_cgroups(conf: Confinement, limits: Limits, threads: int) -> list[str]:
    """The run's cgroups, made; the prefix that joins them (``sh``, which also ignores SIGINT:
    nbclient interrupts a cell by signalling the process group, which must reach the kernel,
    ipykernel installs its own handler while a cell runs, but not kill bwrap or unshare)."""
    cgroups = Cgroups.create(limits, float(threads))
    if cgroups is None:
        conf.off.append("memory and process limits (no writable cgroup; needs root)")
        return []
    conf.cgroups = cgroups
    conf.memory_text = size_text(limits.memory)
    cpu = f", {cgroups.cpus:g} CPU{'s' if cgroups.cpus != 1 else ''}" if cgroups.cpus else ""
    if cgroups.weight:
        cpu += f" at weight {cgroups.weight}"
    conf.layers.append(f"memory {size_text(limits.memory)}, {limits.processes} processes{cpu} "
                       f"(cgroup {cgroups.version})")
    return [str(p) for p in cgroups.procs]


def _rlimits(conf: Confinement, limits: Limits, threads: int, timeout: float | None) -> list:
    cpu_seconds = int((timeout or 3600) * threads) + 60
    prefix = [probe.tool("prlimit"), f"--cpu={cpu_seconds}",
              f"--fsize={limits.file_size}", f"--nofile={limits.open_files}", "--core=0"]
    text = (f"rlimits (CPU {cpu_seconds} s, files {size_text(limits.file_size)}, "
            f"{limits.open_files} open files, no core dumps")
    if conf.uid is not None:  # RLIMIT_NPROC counts every process of the user: only ours
        prefix.append(f"--nproc={limits.processes}")
        text += f", {limits.processes} processes"
    conf.layers.append(text + ")")
    return [*prefix, "--"]


def _namespaces(conf: Confinement, mode: str, bwrap: list[str]) -> list[str]:
    if mode == "bwrap":
        conf.hides_files = True
        conf.layers += ["no network", "own process namespace",
                        "filesystem view (system and Python read-only, only the work folder "
                        "writable, grader files and other submissions hidden)"]
        # ipykernel exits when its parent is pid 1, which bwrap's init is in the namespace;
        # --die-with-parent does that poller's job (the kernel dies with the grader)
        conf.kernel_args = ["--IPKernelApp.parent_handle=1"]
        return [probe.found_tool("bwrap"), *bwrap, "--"]
    # bwrap's --die-with-parent, by hand: the run dies with the grader, killed or not
    setpriv = probe.tool("setpriv")
    prefix = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
    if mode == "unshare":
        user = [] if probe.is_root() else ["--user", "--map-root-user"]
        conf.layers += ["no network", "own process namespace"]
        return prefix + [probe.found_tool("unshare"), *user, "--net", "--pid", "--fork",
                         "--kill-child", "--mount-proc", "--ipc", "--uts", "--"]
    conf.marker = f"EX8_RUN={secrets.token_hex(8)}"
    conf.env["EX8_RUN"] = conf.marker.split("=", 1)[1]
    return prefix


def plan(workdir: Path, *, data_env: dict[str, str], threads: int | None = None,
         readable: tuple[Path, ...] | list[Path] = (), show: tuple[str, ...] = ("grader",),
         hide: tuple[str, ...] = ("reference", "rubrics"), limits: Limits | None = None,
         timeout: float | None = None, sockets: bool = True) -> Confinement:
    """Environment, limits and command prefix for a process whose working folder is ``workdir``.

    ``data_env`` holds the data the process reads (readable, never writable); ``readable`` more
    paths to show read-only; ``show``/``hide`` the grader's packages the process may import
    (the kernel: only ``grader``, for ``grader.data``; never the reference or the rubric).
    ``timeout`` is the run's wall-clock limit: the CPU-seconds rlimit is its backstop.
    """
    limits = limits or _limits.LIMITS
    threads = threads or cores()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    chosen = decide(probe.machine())
    conf = Confinement(workdir=workdir, disk_quota=limits.disk, off=list(chosen.off))
    readable = [Path(p).resolve() for p in (*readable, *data_env.values()) if p]
    readable = [p for p in dict.fromkeys(readable) if p.exists()]
    if chosen.mode == "bwrap":
        home, tmp = Path("/tmp/home"), Path("/tmp")
    else:
        home, tmp = workdir / "home", workdir / "tmp"
        for folder in (home, tmp):
            folder.mkdir(parents=True, exist_ok=True)
    conf.env = _environment(data_env, threads, home, tmp)
    conf.layers = ["scrubbed environment", "own HOME and temp folder", f"thread budget {threads}"]
    if sockets:  # a short path: socket paths are limited to about 100 bytes
        conf.ipc_dir = Path(tempfile.mkdtemp(prefix="ex8-ipc-", dir=_SOCKETS_ROOT))
    if chosen.separate_user:
        conf.uid = probe.fresh_uid()
        for path in (workdir, *([home, tmp] if chosen.mode != "bwrap" else []), conf.ipc_dir):
            if path is not None:
                os.chown(path, conf.uid, conf.uid)
        conf.layers.append("separate unprivileged user")
    prefix: list[str] = []
    joins = _join_cgroups(conf, limits, threads) if chosen.cgroups else []
    if chosen.mode != "none" or joins:
        prefix += [probe.tool("sh") or "/bin/sh", "-c",
                   'trap "" INT; while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; '
                   'done; shift; exec "$@"', "ex8-sandbox", *joins, "--"]
    if chosen.rlimits:
        prefix += _rlimits(conf, limits, threads, timeout)
    bwrap = bwrap_args(workdir, conf.ipc_dir, readable, list(show), list(hide), limits,
                       home) if chosen.mode == "bwrap" else []
    prefix += _namespaces(conf, chosen.mode, bwrap)
    if conf.uid is not None:
        prefix += [probe.found_tool("setpriv"), f"--reuid={conf.uid}", f"--regid={conf.uid}",
                   "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
                   "--"]
    conf.layers.append(f"work folder quota {size_text(limits.disk)}")
    conf.command_prefix = prefix
    return conf
