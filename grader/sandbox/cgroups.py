"""The run's own cgroups (v1 ``memory``, ``pids``, ``cpu``; or v2): created with its limits,
joined by its first process, killed and removed at the end; an empty one a killed grader left
behind is swept by a later run."""

from __future__ import annotations

import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .limits import Limits

__all__ = ["Cgroups", "cgroup_base"]

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


def cgroup_base() -> tuple[str, dict[str, Path]] | None:
    """Where this process may create child cgroups: ``("v1", {controller: folder})`` or
    ``("v2", {"": folder})``; None when it may not (no root, read-only, no controllers)."""
    mounts, own = _cgroup_mounts(), dict(_cgroup_lines())
    v1: dict[str, Path] = {}
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
class Cgroups:
    """The run's own cgroups: one folder per v1 controller, or one v2 folder."""

    version: str
    folders: list[Path]
    cpus: float | None = None
    weight: int | None = None  # a CPU weight other than the default, when it could be set

    @classmethod
    def create(cls, limits: Limits, cpus: float) -> Cgroups | None:
        base = cgroup_base()
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
                for parent in parents.values():
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
        found: set[int] = set()
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
