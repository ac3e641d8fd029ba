"""How the student's kernel (and the evaluator) are confined.

``plan`` decides, for one run folder, the command prefix, the environment and the list of
layers that are on, and sets up what must exist before the process starts (its cgroups, its
sockets folder, the folders its user may write). ``Confinement.close`` undoes it and kills
whatever the run left behind. The report lists the layers, so a run on a laptop without root
or bubblewrap still grades and says what it could not do.

The layers, from the outside in: ``sh`` puts itself into the run's cgroups (memory, processes,
CPU) and ignores SIGINT, then ``prlimit`` sets the rlimits, then ``bwrap`` builds a mount,
network, PID, IPC and UTS namespace (``unshare`` when bubblewrap is missing), then ``setpriv``
drops to a fresh unprivileged uid with no capabilities and ``no_new_privs``, then Python.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from .fstree import chown_tree, remove_tree
from .quiet import QUIET_ENV

__all__ = ["Confinement", "ConfinedProcess", "Limits", "LIMITS", "plan", "start_confined",
           "thread_env", "available", "MODE_ENV"]

#: variables a kernel keeps from the grader's environment; everything else is dropped
_KEEP = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")
#: ``auto`` (default), or force ``bwrap``, ``unshare`` or ``none`` (no namespaces at all)
MODE_ENV = "EX8_SANDBOX"
#: a fresh uid per run from this range: no name, no files, no other process shares it, so
#: RLIMIT_NPROC counts only this run's processes and runs cannot touch each other's files
_UID_RANGE = (1_500_000_000, 2_000_000_000)
#: the system folders a sandbox sees, read-only (plus /etc files below); nothing of /home,
#: /root, /srv, /var, /work, /opt: the grader's files and other submissions live there
_SYSTEM = ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/libx32", "/sbin")
_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
        "/etc/fonts", "/etc/alternatives", "/etc/mime.types")
#: sockets need a short path (about 100 bytes at most); TMPDIR can be long (macOS)
_SOCKETS_ROOT = "/tmp" if os.path.isdir("/tmp") else None
_GiB = 1 << 30
_MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Resource limits of one confined process tree."""

    memory: int = 4 * _GiB  # cgroup; RLIMIT_AS is not used: TensorFlow reserves far more
    processes: int = 512  # cgroup pids.max and RLIMIT_NPROC (TensorFlow starts many threads)
    file_size: int = 256 * _MiB  # RLIMIT_FSIZE: a .keras file is at most 64 MB
    open_files: int = 2048
    disk: int = _GiB  # the work folder, watched while the kernel runs
    tmpfs: int = 512 * _MiB  # /tmp (with HOME) and /dev/shm inside bubblewrap
    #: its claim on the CPU when others want it too (cgroup v2 ``cpu.weight``; v1 ``cpu.shares``
    #: is 1024 times this over 100): the evaluator's early measuring yields to the kernel
    cpu_weight: int = 100


#: the defaults; tests replace them with smaller ones
LIMITS = Limits()


def thread_env(threads: int) -> dict[str, str]:
    """The thread budget of one process tree, for every library that sizes its own pools.

    TensorFlow's inter-op pool gets the budget too, as TensorFlow's own default does: with one
    inter-op thread an LSTM epoch took 19 % (Task 1) and 74 % (Task 2) longer
    (``benchmarks/thread_settings.py``, BENCHMARKS.md).
    """
    n = str(max(1, threads))
    return {"OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n,
            "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": n}


# --------------------------------------------------------------------------- what is there


@lru_cache(maxsize=None)
def _tool(name: str) -> str | None:
    for folder in ("/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        path = Path(folder) / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)  # the sandbox sees /usr; a tool elsewhere on PATH it may not
    return None


def _root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@lru_cache(maxsize=None)
def _works(*cmd: str) -> bool:
    """Whether a namespace tool actually runs here (containers and AppArmor may forbid it)."""
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _bwrap_ok() -> bool:
    bwrap, true = _tool("bwrap"), _tool("true")
    if not (bwrap and true):
        return False
    # every feature the sandbox uses (--size needs 0.7, --disable-userns 0.8): an older
    # bubblewrap falls back to unshare rather than failing to start the kernel
    return _works(bwrap, *_bwrap_head(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev",
                  "/dev", "--perms", "1777", "--size", str(_MiB), "--tmpfs", "/tmp", "--perms",
                  "0755", "--dir", "/tmp/x", *_bwrap_caps(), true)


def _bwrap_head() -> tuple[str, ...]:
    head = ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent")
    return head if _root() else (*head, "--unshare-user", "--disable-userns")


def _bwrap_caps() -> tuple[str, ...]:
    # as root, setpriv needs these three to drop to the run's uid and clear the bounding set
    return ("--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
            "--cap-add", "CAP_SETPCAP") if _root() else ()


def _unshare_ok() -> bool:
    unshare, true = _tool("unshare"), _tool("true")
    if not (unshare and true):
        return False
    user = () if _root() else ("--user", "--map-root-user")
    return _works(unshare, *user, "--net", "--pid", "--fork", "--kill-child", "--mount-proc",
                  true)


def _mode() -> str:
    wanted = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if wanted == "none" or sys.platform != "linux":
        return "none"
    if wanted in ("auto", "bwrap") and _bwrap_ok():
        return "bwrap"
    if wanted in ("auto", "bwrap", "unshare") and _unshare_ok():
        return "unshare"
    return "none"


def available() -> dict[str, bool]:
    """Which layers this machine offers (for the README's table and the tests)."""
    return {"root": _root(), "bwrap": _bwrap_ok(), "unshare": _unshare_ok(),
            "setpriv": bool(_tool("setpriv")), "prlimit": bool(_tool("prlimit")),
            "cgroup": _cgroup_base() is not None}


# --------------------------------------------------------------------------- cgroups


def _cgroup_lines() -> list[tuple[str, str]]:
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return []
    return [(c, p) for _, c, p in (line.split(":", 2) for line in text.splitlines() if line)]


def _cgroup_mounts() -> dict[str, Path]:
    """Mount point of each cgroup v1 controller, and ``"2"`` for the v2 hierarchy."""
    mounts: dict[str, Path] = {}
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return mounts
    for line in lines:
        head, _, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if len(fields) < 5 or len(rest) < 3 or fields[3] != "/":
            continue  # a cgroup mounted from inside the hierarchy: paths would not line up
        if rest[0] == "cgroup2":
            mounts.setdefault("2", Path(fields[4]))
        elif rest[0] == "cgroup":
            for option in rest[2].split(","):
                mounts.setdefault(option, Path(fields[4]))
    return mounts


def _cgroup_base() -> tuple[str, dict[str, Path]] | None:
    """Where this process may create child cgroups: ``("v1", {controller: folder})`` or
    ``("v2", {"": folder})``; None when it may not (no root, read-only, no controllers)."""
    mounts, own = _cgroup_mounts(), dict(_cgroup_lines())
    v1 = {}
    for controller in ("memory", "pids", "cpu"):
        for names, path in own.items():
            if controller in names.split(",") and controller in mounts:
                folder = mounts[controller] / path.lstrip("/")
                if folder.is_dir() and os.access(folder, os.W_OK):
                    v1[controller] = folder
    if "memory" in v1 and "pids" in v1:
        return "v1", v1
    if "2" in mounts and "" in own:
        folder = mounts["2"] / own[""].lstrip("/")
        controllers = _read(folder / "cgroup.controllers").split()
        if {"memory", "pids"} <= set(controllers) and os.access(folder, os.W_OK):
            return "v2", {"": folder}
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


@dataclass
class _Cgroups:
    """The run's own cgroups: one folder per v1 controller, or one v2 folder."""

    version: str
    folders: list[Path]
    cpus: float | None = None
    weight: int | None = None  # a CPU weight other than the default, when it could be set

    @classmethod
    def create(cls, limits: Limits, cpus: float) -> _Cgroups | None:
        base = _cgroup_base()
        if base is None:
            return None
        version, parents = base
        for parent in {*parents.values(), *(p.parent for p in parents.values()
                                            if version == "v2")}:
            _sweep(parent)
        name = f"ex8-{secrets.token_hex(6)}"
        made: list[Path] = []
        try:
            if version == "v1":
                for controller, parent in parents.items():
                    (parent / name).mkdir()
                    made.append(parent / name)
                ok = _write(parents["memory"] / name / "memory.limit_in_bytes", str(limits.memory))
                _write(parents["memory"] / name / "memory.memsw.limit_in_bytes",
                       str(limits.memory))  # no swap beyond the limit, where swap accounting is on
                ok = ok and _write(parents["pids"] / name / "pids.max", str(limits.processes))
                cpu = "cpu" in parents and _write(parents["cpu"] / name / "cpu.cfs_quota_us",
                                                  str(int(cpus * 100_000)))
                weighted = cpu and limits.cpu_weight != 100 and _write(
                    parents["cpu"] / name / "cpu.shares",
                    str(max(2, limits.cpu_weight * 1024 // 100)))
            else:
                group = cls._v2_folder(parents[""], name)
                made.append(group)
                ok = _write(group / "memory.max", str(limits.memory)) and \
                    _write(group / "pids.max", str(limits.processes))
                _write(group / "memory.swap.max", "0")
                cpu = _write(group / "cpu.max", f"{int(cpus * 100_000)} 100000")
                weighted = cpu and limits.cpu_weight != 100 and _write(
                    group / "cpu.weight", str(limits.cpu_weight))
        except OSError:
            ok, cpu = False, False
        if not ok:
            for folder in made:
                _rmdir(folder)
            return None
        return cls(version, made, cpus if cpu else None, limits.cpu_weight if weighted else None)

    @staticmethod
    def _v2_folder(own: Path, name: str) -> Path:
        # "No internal processes": a cgroup holding processes cannot hand controllers to
        # children, so the run's cgroup goes under ours if ours delegates, else beside it.
        wanted = {"memory", "pids", "cpu"} & set(_read(own / "cgroup.controllers").split())
        if wanted <= set(_read(own / "cgroup.subtree_control").split()) or _write(
                own / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(wanted))):
            (own / name).mkdir()
            return own / name
        (own.parent / name).mkdir()
        return own.parent / name

    @property
    def procs(self) -> list[Path]:
        return [f / "cgroup.procs" for f in self.folders]

    def oom_kills(self) -> int:
        """How many processes the memory limit killed (v1 ``memory.oom_control``, v2
        ``memory.events``)."""
        for folder in self.folders:
            for name in ("memory.oom_control", "memory.events"):
                for line in _read(folder / name).splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and value.strip().isdigit():
                        return int(value)
        return 0

    def pids(self) -> set[int]:
        found = set()
        for path in self.procs:
            found.update(int(p) for p in _read(path).split())
        return found

    def kill(self, wait: float = 10.0) -> int:
        """SIGKILL every process in the cgroups until they are empty; returns how many."""
        killed: set[int] = set()
        if self.version == "v2":
            _write(self.folders[0] / "cgroup.kill", "1")
        deadline = time.monotonic() + wait
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                except OSError:
                    pass
            time.sleep(0.05)
        return len(killed)

    def remove(self) -> None:
        for folder in self.folders:
            _rmdir(folder)


def _sweep(parent: Path, age: float = 600) -> None:
    """Remove the empty cgroups of runs whose grader was killed before it could (a cgroup is
    only empty for the moment between its creation and its process joining it)."""
    for folder in parent.glob("ex8-*"):
        try:
            if time.time() - folder.stat().st_mtime > age and \
                    not _read(folder / "cgroup.procs").split():
                folder.rmdir()
        except OSError:
            continue


def _rmdir(folder: Path) -> None:
    for _ in range(50):  # a cgroup stays busy for a moment after its last process died
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)


# --------------------------------------------------------------------------- the plan


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
    cgroups: _Cgroups | None = None
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


def _fresh_uid() -> int:
    while True:
        uid = secrets.randbelow(_UID_RANGE[1] - _UID_RANGE[0]) + _UID_RANGE[0]
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid


def _traversable(path: Path) -> bool:
    """Whether any user may reach ``path`` (every folder on the way has x for others)."""
    path = path.resolve()
    for folder in [*reversed(path.parents), path]:
        try:
            if not folder.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def _python_roots() -> list[Path]:
    """Folders the interpreter and its packages live in (a venv and its base interpreter)."""
    roots = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                         sys.base_exec_prefix)}
    roots.add(Path(sys.executable).resolve().parent.parent)
    for path in sys.path:  # site folders outside the prefixes (a user site, a .pth entry)
        resolved = Path(path or ".").resolve()
        if path and ("site-packages" in resolved.parts or "dist-packages" in resolved.parts):
            roots.add(resolved)
    return sorted(r for r in roots if not any(r != o and o in r.parents for o in roots))


def _package_dir(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]).resolve() if locations else None


def _under(path: Path, roots) -> bool:
    return any(path == r or r in path.parents for r in roots)


class _Bwrap:
    """The arguments of one bubblewrap sandbox, parents of every mount made 0755 first."""

    def __init__(self):
        self.args: list[str] = []
        self.bound: list[Path] = []  # binds: below them the host's folders already exist
        self.made: set[Path] = {Path("/")}

    def _parents(self, dest: Path) -> None:
        for parent in reversed(dest.parents):
            if parent in self.made or _under(parent, self.bound):
                continue  # made already, or inside a bind that shows the host's folder
            # bwrap makes missing parents 0700 (owned by root): the dropped uid could not pass
            self.args += ["--perms", "0755", "--dir", str(parent)]
            self.made.add(parent)

    def bind(self, src: Path, dest: Path | None = None, *, write: bool = False) -> None:
        dest = dest or src
        self._parents(dest)
        self.args += ["--bind" if write else "--ro-bind", str(src), str(dest)]
        self.bound.append(dest)
        self.made.add(dest)

    def tmpfs(self, dest: Path, size: int, perms: str = "1777") -> None:
        self._parents(dest)
        self.args += ["--perms", perms, "--size", str(size), "--tmpfs", str(dest)]
        self.made.add(dest)

    def dir(self, dest: Path, perms: str = "0777") -> None:
        self._parents(dest)
        self.args += ["--perms", perms, "--dir", str(dest)]
        self.made.add(dest)


def _bwrap_args(workdir: Path, ipc_dir: Path | None, readable: list[Path], show: list[str],
                hide: list[str], limits: Limits, home: Path) -> list[str]:
    box = _Bwrap()
    box.args += _bwrap_head()
    for name in _SYSTEM:
        path = Path(name)
        if path.is_symlink():
            box.args += ["--symlink", os.readlink(path), name]
            box.made.add(path)
        elif path.is_dir():
            box.bind(path)
    box.args += ["--proc", "/proc", "--dev", "/dev"]
    box.made.update({Path("/proc"), Path("/dev")})
    for name in _ETC:
        if Path(name).exists():
            box.bind(Path(name))
    box.tmpfs(Path("/tmp"), limits.tmpfs)
    box.tmpfs(Path("/dev/shm"), limits.tmpfs)  # joblib and TensorFlow want it
    box.dir(home)
    roots = _python_roots()
    for root in roots:
        if not _under(root, [Path("/usr")]):
            box.bind(root)
    for name in show:  # packages installed in place (editable): only the ones named
        folder = _package_dir(name)
        if folder and not _under(folder, roots):
            box.bind(folder)
    for name in hide:  # packages inside site-packages that this process must not read
        folder = _package_dir(name)
        if folder and _under(folder, roots):
            box.tmpfs(folder, 4096, "0755")
    for path in readable:
        box.bind(path)
    if ipc_dir:
        box.bind(ipc_dir, write=True)
    box.bind(workdir, write=True)
    box.args += ["--chdir", str(workdir), *_bwrap_caps()]
    return box.args


def _size(n: int) -> str:
    return f"{n / _GiB:g} GiB" if n >= _GiB else f"{n / _MiB:g} MiB"


def plan(workdir: Path, *, data_env: dict[str, str], threads: int | None = None,
         readable: tuple[Path, ...] | list[Path] = (), show: tuple[str, ...] = ("grader",),
         hide: tuple[str, ...] = ("reference", "rubrics"), limits: Limits | None = None,
         timeout: float | None = None, sockets: bool = True) -> Confinement:
    """Environment, limits and command prefix for a process whose working folder is ``workdir``.

    ``data_env`` holds the data source and cache (readable, never writable); ``readable`` more
    paths to show read-only; ``show``/``hide`` the grader's packages the process may import
    (the kernel: only ``grader``, for ``grader.data``; never the reference or the rubric).
    ``timeout`` is the run's wall-clock limit: the CPU-seconds rlimit is its backstop.
    """
    limits = limits or LIMITS
    threads = threads or os.cpu_count() or 1
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    mode = _mode()
    conf = Confinement(workdir=workdir, disk_quota=limits.disk)
    readable = [Path(p).resolve() for p in (*readable, *data_env.values()) if p]
    readable = [p for p in dict.fromkeys(readable) if p.exists()]

    if mode == "bwrap":
        home, tmp = Path("/tmp/home"), Path("/tmp")
    else:
        home, tmp = workdir / "home", workdir / "tmp"
        for folder in (home, tmp):
            folder.mkdir(parents=True, exist_ok=True)
    env = {k: os.environ[k] for k in _KEEP if k in os.environ}
    env.update(QUIET_ENV)
    env.update(thread_env(threads))
    env.update({k: str(Path(v).resolve()) for k, v in data_env.items() if v})
    env.update({"HOME": str(home), "TMPDIR": str(tmp), "IPYTHONDIR": str(home / ".ipython"),
                "MPLCONFIGDIR": str(home / ".matplotlib"), "PYTHONNOUSERSITE": "1",
                "PYTHONDONTWRITEBYTECODE": "1", "KERAS_HOME": str(home / ".keras"),
                "USER": "student", "LOGNAME": "student"})
    conf.env = env
    conf.layers = ["scrubbed environment", "own HOME and temp folder", f"thread budget {threads}"]

    if sockets:
        # A short path: socket paths are limited to about 100 bytes.
        conf.ipc_dir = Path(tempfile.mkdtemp(prefix="ex8-ipc-", dir=_SOCKETS_ROOT))

    uid_ok = _root() and bool(_tool("setpriv")) and mode in ("bwrap", "unshare")
    if uid_ok and mode == "unshare" and not _traversable(Path(sys.executable)):
        uid_ok = False
        conf.off.append("separate user (the Python environment is not readable by other "
                        "users and bubblewrap, which could show it, is missing)")
    if uid_ok:
        conf.uid = _fresh_uid()
        for path in (workdir, *([home, tmp] if mode != "bwrap" else []), conf.ipc_dir):
            if path is not None:
                os.chown(path, conf.uid, conf.uid)
        conf.layers.append("separate unprivileged user")
    elif not conf.off:
        conf.off.append("separate user (needs root and setpriv)")

    prefix: list[str] = []
    cgroups = _Cgroups.create(limits, float(threads)) if _root() else None
    if cgroups:
        conf.cgroups = cgroups
        conf.memory_text = _size(limits.memory)
        cpu = f", {cgroups.cpus:g} CPU{'s' if cgroups.cpus != 1 else ''}" if cgroups.cpus else ""
        if cgroups.weight:
            cpu += f" at weight {cgroups.weight}"
        conf.layers.append(f"memory {_size(limits.memory)}, {limits.processes} processes{cpu} "
                           f"(cgroup {cgroups.version})")
    else:
        conf.off.append("memory and process limits (no writable cgroup; needs root)")
    # sh joins the cgroups, then ignores SIGINT: nbclient interrupts a cell by signalling the
    # process group, which must reach the kernel (ipykernel installs its own handler while a
    # cell runs) but not kill bwrap or unshare on the way.
    joins = [str(p) for p in (cgroups.procs if cgroups else [])]
    if mode != "none" or joins:
        prefix += [_tool("sh") or "/bin/sh", "-c",
                   'trap "" INT; while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; '
                   'done; shift; exec "$@"', "ex8-sandbox", *joins, "--"]

    prlimit = _tool("prlimit")
    if prlimit:
        cpu_seconds = int((timeout or 3600) * threads) + 60
        prefix += [prlimit, f"--cpu={cpu_seconds}", f"--fsize={limits.file_size}",
                   f"--nofile={limits.open_files}", "--core=0"]
        text = (f"rlimits (CPU {cpu_seconds} s, files {_size(limits.file_size)}, "
                f"{limits.open_files} open files, no core dumps")
        if conf.uid is not None:  # RLIMIT_NPROC counts every process of the user: only ours
            prefix.append(f"--nproc={limits.processes}")
            text += f", {limits.processes} processes"
        conf.layers.append(text + ")")
        prefix.append("--")
    else:
        conf.off.append("rlimits (prlimit is missing)")

    if mode == "bwrap":
        prefix += [_tool("bwrap"), *_bwrap_args(workdir, conf.ipc_dir, readable, list(show),
                                                list(hide), limits, home), "--"]
        conf.hides_files = True
        conf.layers += ["no network", "own process namespace",
                        "filesystem view (system and Python read-only, only the work folder "
                        "writable, grader files and other submissions hidden)"]
        # ipykernel exits when its parent is pid 1, which bwrap's init is in the namespace;
        # --die-with-parent does that poller's job (the kernel dies with the grader)
        conf.kernel_args = ["--IPKernelApp.parent_handle=1"]
    else:
        # bwrap's --die-with-parent, by hand: the run dies with the grader, killed or not
        prefix += [_tool("setpriv"), "--pdeathsig", "KILL", "--"] if _tool("setpriv") else []
    if mode == "unshare":
        user = [] if _root() else ["--user", "--map-root-user"]
        prefix += [_tool("unshare"), *user, "--net", "--pid", "--fork", "--kill-child",
                   "--mount-proc", "--ipc", "--uts", "--"]
        conf.layers += ["no network", "own process namespace"]
        conf.off.append("filesystem view (bubblewrap is missing)")
    elif mode == "none":
        conf.off += ["no network (no namespaces here)", "filesystem view (no bubblewrap)"]
        conf.marker = f"EX8_RUN={secrets.token_hex(8)}"
        env["EX8_RUN"] = conf.marker.split("=", 1)[1]
    if conf.uid is not None:
        prefix += [_tool("setpriv"), f"--reuid={conf.uid}", f"--regid={conf.uid}",
                   "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
                   "--"]
    conf.layers.append(f"work folder quota {_size(limits.disk)}")
    conf.command_prefix = prefix
    return conf


class ConfinedProcess:
    """A confined helper started ahead of time: ``send`` gives it a line of work, ``finish``
    its last line and waits, ``cancel`` ends it. Its stdout and stderr go to a temporary file,
    so a helper that talks while it waits can never block on a full pipe; ``output`` reads
    what it has said so far (a supervisor follows its progress there)."""

    def __init__(self, proc, conf, outputs: tuple[str, ...], out: Path, timeout: float, log):
        self.proc, self.conf, self.outputs, self.out, self.timeout, self.log = \
            proc, conf, outputs, out, timeout, log

    def send(self, line: str) -> bool:
        """One line on its stdin; False if it has gone (``finish`` then says why)."""
        try:
            self.proc.stdin.write(line.rstrip("\n") + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def close_input(self, line: str | None = None) -> None:
        """Its last line (if any), then the end of its input."""
        if line is not None:
            self.send(line)
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def poll(self) -> int | None:
        return self.proc.poll()

    def output(self, limit: int = 1 << 20) -> str:
        """What it has written so far (the last ``limit`` bytes)."""
        size = os.fstat(self.log.fileno()).st_size
        return os.pread(self.log.fileno(), limit, max(0, size - limit)).decode("utf-8",
                                                                              "replace")

    def out_of_memory(self) -> bool:
        """Whether its memory limit killed it (read before ``collect``)."""
        return self.conf.out_of_memory()

    def finish(self, line: str = "go") -> subprocess.CompletedProcess:
        """Send ``line`` (``go``), wait, and move its outputs into place."""
        try:
            self.proc.communicate(line.rstrip("\n") + "\n", timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.cancel()
            raise
        except BrokenPipeError:
            self.proc.wait(timeout=self.timeout)
        return self.collect()

    def collect(self) -> subprocess.CompletedProcess:
        """After it has ended: undo its confinement, move its outputs into place, and return
        its exit code and what it said."""
        self.proc.wait()
        self.conf.close()
        for name in self.outputs:
            path = self.conf.workdir / name
            if path.is_file() and not path.is_symlink():
                os.replace(path, self.out / name)
        _remove_quietly(self.conf.workdir)
        talk = self.output()
        self.log.close()
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, "", talk)

    def cancel(self) -> None:
        """Not needed after all (or too slow): kill it without waiting for it to get ready."""
        if self.proc.returncode is None:
            self.proc.kill()
            self.proc.communicate()
        self.conf.close()
        self.log.close()
        _remove_quietly(self.conf.workdir)


def start_confined(argv: list[str], *, workdir: Path, data_env: dict[str, str],
                   readable: list[Path], outputs: tuple[str, ...], out: Path,
                   threads: int | None, timeout: float, cpu_weight: int = 100) -> ConfinedProcess:
    """Start a trusted helper (the evaluator) confined: it reads ``readable`` and the data, and
    writes only ``workdir``; the files named in ``outputs`` are moved into ``out`` after.

    The evaluator is our code, but it unpacks files the student's kernel wrote: a loader bug
    must not reach the network, the other submissions or the grader's files. ``cpu_weight``
    below 100 makes it yield the CPU to the kernel while both run (with a cgroup).
    """
    _remove_quietly(workdir)
    conf = plan(workdir, data_env=data_env, threads=threads, readable=readable,
                show=("grader", "reference", "rubrics"), hide=(), sockets=False,
                timeout=timeout, limits=replace(LIMITS, cpu_weight=cpu_weight))
    log = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen([*conf.command_prefix, *argv], env=conf.env, cwd=str(workdir),
                                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    except BaseException:
        conf.close()
        log.close()
        raise
    return ConfinedProcess(proc, conf, outputs, out, timeout, log)
