"""The bubblewrap sandbox's arguments: the system read-only, the Python environment and the
packages shown, a fresh tmpfs HOME and /tmp, the run's folder writable, and nothing else."""

from __future__ import annotations

import os
from pathlib import Path

from .limits import Limits
from . import probe
from .probe import package_dir, python_roots, under

__all__ = ["bwrap_args"]

#: the system folders a sandbox sees, read-only (plus /etc files below); nothing of /home,
#: /root, /srv, /var, /work, /opt: the grader's files and other submissions live there
_SYSTEM = ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/libx32", "/sbin")


_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
        "/etc/fonts", "/etc/alternatives", "/etc/mime.types")


class _Bwrap:
    """The arguments of one bubblewrap sandbox, parents of every mount made 0755 first."""

    def __init__(self):
        self.args: list[str] = []
        self.bound: list[Path] = []  # binds: below them the host's folders already exist
        self.made: set[Path] = {Path("/")}

    def _parents(self, dest: Path) -> None:
        for parent in reversed(dest.parents):
            if parent in self.made or under(parent, self.bound):
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


def bwrap_args(workdir: Path, ipc_dir: Path | None, readable: list[Path], show: list[str],
                hide: list[str], limits: Limits, home: Path) -> list[str]:
    box = _Bwrap()
    box.args += probe.bwrap_head()
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
    roots = python_roots()
    for root in roots:
        if not under(root, [Path("/usr")]):
            box.bind(root)
    for name in show:  # packages installed in place (editable): only the ones named
        folder = package_dir(name)
        if folder and not under(folder, roots):
            box.bind(folder)
    for name in hide:  # packages inside site-packages that this process must not read
        folder = package_dir(name)
        if folder and under(folder, roots):
            box.tmpfs(folder, 4096, "0755")
    for path in readable:
        box.bind(path)
    if ipc_dir:
        box.bind(ipc_dir, write=True)
    box.bind(workdir, write=True)
    box.args += ["--chdir", str(workdir), *probe.bwrap_caps()]
    return box.args
