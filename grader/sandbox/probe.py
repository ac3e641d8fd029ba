"""What this machine offers for confinement: the tools, whether they run here, root, cgroups,
and where the Python environment lives. Read once per process (``machine``)."""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import stat
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import InfrastructureError
from .cgroups import cgroup_base
from .limits import _MiB

__all__ = ["Machine", "machine", "available", "tool", "found_tool", "is_root", "MODE_ENV",
           "fresh_uid", "python_roots", "package_dir", "under", "bwrap_head", "bwrap_caps"]

@lru_cache(maxsize=None)
def tool(name: str) -> str | None:
    for folder in ("/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        path = Path(folder) / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)  # the sandbox sees /usr; a tool elsewhere on PATH it may not
    return None


def found_tool(name: str) -> str:
    """The path of a tool a layer was decided on (``decide`` chooses a layer only where
    ``machine`` found its tool)."""
    path = tool(name)
    if path is None:
        raise InfrastructureError(f"The sandbox needs {name}, which this machine does not have.")
    return path


def is_root() -> bool:
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
    bwrap, true = tool("bwrap"), tool("true")
    if not (bwrap and true):
        return False
    # every feature the sandbox uses (--size needs 0.7, --disable-userns 0.8): an older
    # bubblewrap falls back to unshare rather than failing to start the kernel
    return _works(bwrap, *bwrap_head(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev",
                  "/dev", "--perms", "1777", "--size", str(_MiB), "--tmpfs", "/tmp", "--perms",
                  "0755", "--dir", "/tmp/x", *bwrap_caps(), true)


def bwrap_head() -> tuple[str, ...]:
    head = ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent")
    return head if is_root() else (*head, "--unshare-user", "--disable-userns")


def bwrap_caps() -> tuple[str, ...]:
    # as root, setpriv needs these three to drop to the run's uid and clear the bounding set
    return ("--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
            "--cap-add", "CAP_SETPCAP") if is_root() else ()


def _unshare_ok() -> bool:
    unshare, true = tool("unshare"), tool("true")
    if not (unshare and true):
        return False
    user = () if is_root() else ("--user", "--map-root-user")
    return _works(unshare, *user, "--net", "--pid", "--fork", "--kill-child", "--mount-proc",
                  true)


#: ``auto`` (default), or force ``bwrap``, ``unshare`` or ``none`` (no namespaces at all)
MODE_ENV = "EX8_SANDBOX"


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
    return {"root": is_root(), "bwrap": _bwrap_ok(), "unshare": _unshare_ok(),
            "setpriv": bool(tool("setpriv")), "prlimit": bool(tool("prlimit")),
            "cgroup": cgroup_base() is not None}


#: a fresh uid per run from this range: no name, no files, no other process shares it, so
#: RLIMIT_NPROC counts only this run's processes and runs cannot touch each other's files
_UID_RANGE = (1_500_000_000, 2_000_000_000)


def fresh_uid() -> int:
    while True:
        uid = secrets.randbelow(_UID_RANGE[1] - _UID_RANGE[0]) + _UID_RANGE[0]
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid


def traversable(path: Path) -> bool:
    """Whether any user may reach ``path`` (every folder on the way has x for others)."""
    path = path.resolve()
    for folder in [*reversed(path.parents), path]:
        try:
            if not folder.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def python_roots() -> list[Path]:
    """Folders the interpreter and its packages live in (a venv and its base interpreter)."""
    roots = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                         sys.base_exec_prefix)}
    roots.add(Path(sys.executable).resolve().parent.parent)
    for path in sys.path:  # site folders outside the prefixes (a user site, a .pth entry)
        resolved = Path(path or ".").resolve()
        if path and ("site-packages" in resolved.parts or "dist-packages" in resolved.parts):
            roots.add(resolved)
    return sorted(r for r in roots if not any(r != o and o in r.parents for o in roots))


def package_dir(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]).resolve() if locations else None


def under(path: Path, roots) -> bool:
    return any(path == r or r in path.parents for r in roots)


@dataclass(frozen=True)
class Machine:
    """What the layers can rely on here: the namespace mode (``bwrap``, ``unshare``, ``none``),
    root, the tools, a writable cgroup, and whether other users can reach the interpreter."""

    mode: str
    root: bool
    setpriv: bool
    prlimit: bool
    cgroup: bool
    interpreter_reachable: bool


def machine() -> Machine:
    return Machine(mode=_mode(), root=is_root(), setpriv=bool(tool("setpriv")),
                   prlimit=bool(tool("prlimit")), cgroup=cgroup_base() is not None,
                   interpreter_reachable=traversable(Path(sys.executable)))
