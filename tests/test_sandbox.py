"""The confinement layers, each checked from inside a confined process and from the outside.

A short Python probe runs behind ``sandbox.plan``'s prefix and reports what it can see and do;
no kernel, no TensorFlow, so each case takes about a second. The layers that need root and
bubblewrap fail (not skip) where they are missing: .ci/run installs bubblewrap and CI runs as
root. The fallbacks (``unshare``, no namespaces, no root) are forced through ``EX8_SANDBOX``
and a patched ``_root``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from grader import sandbox
from grader.execute import _disk_usage, run_notebook

ROOT = Path(__file__).resolve().parent.parent

PROBE = r'''
import json, os, resource, socket, sys
seen = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "cwd": os.getcwd(),
        "env": dict(os.environ), "pid": os.getpid()}
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines()
              if ":\t" in line)
seen["caps"] = status["CapEff"].strip()
seen["bounding"] = status["CapBnd"].strip()
seen["no_new_privs"] = status["NoNewPrivs"].strip()
seen["rlimits"] = {name: resource.getrlimit(getattr(resource, "RLIMIT_" + name))[1]
                   for name in ("CPU", "FSIZE", "NOFILE", "CORE", "NPROC")}

def outcome(action):
    try:
        action()
        return "ok"
    except Exception as exc:
        return type(exc).__name__

def read(path):
    with open(path, "rb") as fh:
        fh.read(16)

def write(path):
    with open(path, "ab") as fh:
        fh.write(b"x")

seen["net"] = outcome(lambda: socket.create_connection(("1.1.1.1", 443), timeout=3))
seen["read"] = {p: outcome(lambda p=p: read(p)) for p in sys.argv[1].split(",")}
seen["write"] = {p: outcome(lambda p=p: write(p)) for p in sys.argv[2].split(",")}
seen["import"] = {}
for name in ("grader.data", "reference", "rubrics"):
    seen["import"][name] = outcome(lambda name=name: __import__(name))
seen["procs"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
if len(sys.argv) > 3:  # leave a daemon behind: double fork, new session, sleeps for an hour
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            import time
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)  # let go of the caller's pipes
            os.dup2(null, 2)
            with open("daemon.pid", "w") as fh:
                fh.write(str(os.getpid()))
            time.sleep(3600)
        os._exit(0)
    while not os.path.exists("daemon.pid"):
        pass
print(json.dumps(seen))
'''


def _need_full_layers():
    have = sandbox.available()
    missing = [k for k in ("root", "bwrap", "setpriv", "prlimit", "cgroup") if not have[k]]
    if missing:
        pytest.fail(f"this test needs {', '.join(missing)} (CI runs as root; .ci/run installs "
                    "bubblewrap)")


def _probe(conf: sandbox.Confinement, readable, writable, daemon=False) -> dict:
    args = [",".join(map(str, readable)), ",".join(map(str, writable))] + (["d"] if daemon
                                                                          else [])
    proc = subprocess.run([*conf.command_prefix, sys.executable, "-c", PROBE, *args],
                          env=conf.env, cwd=conf.workdir, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _uid_processes(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.fixture
def data_env(tmp_path):
    """A data source and a cache folder outside the work folder, readable by everyone."""
    source = tmp_path / "data" / "imdb.tar.gz"
    cache = tmp_path / "cache"
    source.parent.mkdir()
    cache.mkdir()
    source.write_bytes(b"reviews")
    (cache / "imdb-x.npz").write_bytes(b"cached")
    for path in (source.parent, source, cache, cache / "imdb-x.npz"):
        path.chmod(0o777 if path.is_dir() else 0o666)  # only the read-only bind stops writes
    return {"EX8_IMDB": str(source), "EX8_CACHE": str(cache)}


def test_every_layer_is_on_as_root_with_bubblewrap(tmp_path, data_env, monkeypatch):
    _need_full_layers()
    monkeypatch.setenv("EX8_CANARY", "grader-secret-42")
    other = tmp_path / "other_student"
    other.mkdir()
    (other / "secret.txt").write_text("classmate's answer")
    work = tmp_path / "me" / "work"
    conf = sandbox.plan(work, data_env=data_env, threads=2, timeout=100)
    try:
        assert conf.layers == [
            "scrubbed environment", "own HOME and temp folder", "thread budget 2",
            "separate unprivileged user",
            f"memory 4 GiB, 512 processes, 2 CPUs (cgroup {conf.cgroups.version})",
            "rlimits (CPU 260 s, files 256 MiB, 2048 open files, no core dumps, 512 processes)",
            "no network", "own process namespace",
            "filesystem view (system and Python read-only, only the work folder writable, "
            "grader files and other submissions hidden)", "work folder quota 1 GiB"]
        assert conf.off == []
        cache_file = Path(data_env["EX8_CACHE"]) / "imdb-x.npz"
        seen = _probe(conf, readable=[data_env["EX8_IMDB"], cache_file, "/etc/shadow",
                                      other / "secret.txt", ROOT / "rubrics" / "ex8.yaml"],
                      writable=[data_env["EX8_IMDB"], cache_file, work / "mine.txt",
                                Path(conf.env["HOME"]) / "h.txt", Path("/tmp/t.txt"),
                                other / "secret.txt", "/usr/lib/x"])
    finally:
        conf.close()
    assert seen["uid"] == seen["gid"] == conf.uid and conf.uid >= 1_500_000_000
    assert seen["groups"] == [conf.uid] or seen["groups"] == []
    assert seen["caps"] == seen["bounding"] == "0000000000000000"
    assert seen["no_new_privs"] == "1"
    assert seen["rlimits"] == {"CPU": 260, "FSIZE": 256 << 20, "NOFILE": 2048, "CORE": 0,
                               "NPROC": 512}
    assert seen["net"] == "OSError"  # ENETUNREACH: only a loopback, and it is down
    assert seen["read"] == {data_env["EX8_IMDB"]: "ok", str(cache_file): "ok",
                            "/etc/shadow": "FileNotFoundError",
                            str(other / "secret.txt"): "FileNotFoundError",
                            str(ROOT / "rubrics" / "ex8.yaml"): "FileNotFoundError"}
    assert seen["write"] == {data_env["EX8_IMDB"]: "OSError", str(cache_file): "OSError",
                             str(work / "mine.txt"): "ok", conf.env["HOME"] + "/h.txt": "ok",
                             "/tmp/t.txt": "ok", str(other / "secret.txt"): "FileNotFoundError",
                             "/usr/lib/x": "OSError"}
    assert seen["import"] == {"grader.data": "ok", "reference": "ModuleNotFoundError",
                              "rubrics": "ModuleNotFoundError"}
    assert seen["cwd"] == str(work.resolve())
    assert "EX8_CANARY" not in seen["env"] and seen["env"]["OMP_NUM_THREADS"] == "2"
    assert seen["env"]["EX8_IMDB"] == data_env["EX8_IMDB"]
    assert seen["procs"] == [1, seen["pid"]]  # bubblewrap's init and the probe: nothing else
    # undone: the work folder is the grader's again, the cgroups and the sockets folder gone
    assert {p.stat().st_uid for p in [work, *work.rglob("*")]} == {os.getuid()}
    assert not any(f.exists() for f in conf.cgroups.folders) and not conf.ipc_dir.exists()


def test_the_process_is_in_its_cgroup_while_it_runs(tmp_path, data_env):
    _need_full_layers()
    conf = sandbox.plan(tmp_path / "work", data_env=data_env, threads=1, timeout=60)
    try:
        proc = subprocess.Popen([*conf.command_prefix, "/bin/sleep", "30"], env=conf.env,
                                cwd=conf.workdir)
        deadline = time.monotonic() + 30
        while len(conf.cgroups.pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # bwrap outside, bwrap's init and sleep inside
        members = conf.cgroups.pids()
        assert proc.pid in members and len(members) >= 2
        memory = next(f for f in conf.cgroups.folders if "memory" in str(f) or
                      conf.cgroups.version == "v2")
        limit = "memory.limit_in_bytes" if conf.cgroups.version == "v1" else "memory.max"
        assert int((memory / limit).read_text()) == 4 << 30
    finally:
        assert conf.close() >= 2  # killed by the cgroup: bwrap and sleep
    assert proc.wait(timeout=10) == -9 and conf.cgroups.pids() == set()


@pytest.mark.parametrize("mode", ["bwrap", "unshare"])
def test_a_daemon_dies_with_its_namespace(tmp_path, data_env, monkeypatch, mode):
    _need_full_layers()
    monkeypatch.setenv(sandbox.MODE_ENV, mode)
    conf = sandbox.plan(tmp_path / "work", data_env=data_env, threads=1, timeout=60)
    try:
        _probe(conf, readable=[], writable=[], daemon=True)
        assert (conf.workdir / "daemon.pid").is_file()  # it was started
        # the probe was the namespace's main process: its end took the daemon along
        assert _wait(lambda: not conf.cgroups.pids())
    finally:
        assert conf.close() == 0
    assert not any(f.exists() for f in conf.cgroups.folders)


def test_without_namespaces_the_cgroup_kills_a_daemon(tmp_path, data_env, monkeypatch):
    _need_full_layers()
    monkeypatch.setenv(sandbox.MODE_ENV, "none")
    conf = sandbox.plan(tmp_path / "work", data_env=data_env, threads=1, timeout=60)
    _probe(conf, readable=[], writable=[], daemon=True)
    daemon = int((conf.workdir / "daemon.pid").read_text())
    assert _alive(daemon) and conf.cgroups.pids() == {daemon}
    assert conf.close() == 1
    assert _wait(lambda: not _alive(daemon))
    assert not any(f.exists() for f in conf.cgroups.folders)


@pytest.mark.parametrize("mode", ["bwrap", "unshare", "none"])
def test_a_run_dies_with_its_grader(tmp_path, data_env, monkeypatch, mode):
    """A grader killed with SIGKILL cannot close its runs: they must end by themselves."""
    _need_full_layers()
    monkeypatch.setenv(sandbox.MODE_ENV, mode)
    conf = sandbox.plan(tmp_path / "work", data_env=data_env, threads=1, timeout=60)
    grader = subprocess.Popen([sys.executable, "-c", (
        "import json, subprocess, sys, time\n"
        "subprocess.Popen(json.loads(sys.argv[1]), env=json.loads(sys.argv[2]))\n"
        "time.sleep(600)"), json.dumps([*conf.command_prefix, "/bin/sleep", "600"]),
        json.dumps(conf.env)], cwd=conf.workdir)
    try:
        assert _wait(lambda: any(_cmdline(p) == "/bin/sleep600" for p in conf.cgroups.pids()))
        grader.kill()
        grader.wait()
        assert _wait(lambda: not conf.cgroups.pids())  # nobody called close()
    finally:
        assert conf.close() == 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b"").decode()
    except OSError:
        return ""


def test_empty_cgroups_of_killed_graders_are_swept(tmp_path, data_env):
    _need_full_layers()
    _, parents = sandbox.cgroups.cgroup_base()
    stale, fresh = (parents["pids"] / "ex8-h4-stale-test", parents["pids"] / "ex8-h4-fresh-test")
    for folder in (stale, fresh):
        folder.mkdir()
    try:
        old = time.time() - 3600
        os.utime(stale, (old, old))
        sandbox.plan(tmp_path / "work", data_env=data_env, threads=1, timeout=60).close()
        assert not stale.exists() and fresh.exists()  # a fresh one may be about to be joined
    finally:
        for folder in (stale, fresh):
            if folder.exists():
                folder.rmdir()


def _wait(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_unshare_fallback_layers(tmp_path, data_env, monkeypatch):
    _need_full_layers()
    monkeypatch.setenv(sandbox.MODE_ENV, "unshare")
    conf = sandbox.plan(tmp_path / "work", data_env=data_env, threads=1, timeout=60)
    try:
        seen = _probe(conf, readable=["/etc/hostname"], writable=[tmp_path / "work" / "x"])
    finally:
        conf.close()
    assert "no network" in conf.layers and "own process namespace" in conf.layers
    assert "filesystem view (bubblewrap is missing)" in conf.off
    assert seen["net"] == "OSError" and seen["procs"][0] == 1
    # The separate user needs an interpreter other users can reach (not one under /root);
    # without bubblewrap nothing can show it to them.
    if sandbox.probe.traversable(Path(sys.executable)):
        assert seen["uid"] == conf.uid != 0
    else:
        assert conf.uid is None and seen["uid"] == 0
        assert conf.off[0].startswith("separate user (the Python environment is not readable")


def test_without_root_the_user_namespace_is_used(tmp_path, data_env, monkeypatch):
    """A student's laptop: bubblewrap in a user namespace; no uid switch, no cgroups."""
    _need_full_layers()
    monkeypatch.setattr(sandbox.probe, "is_root", lambda: False)
    conf = sandbox.plan(tmp_path / "work", data_env=data_env, threads=1, timeout=60)
    try:
        assert conf.uid is None and conf.cgroups is None
        assert "--unshare-user" in conf.command_prefix
        assert "--nproc=512" not in " ".join(conf.command_prefix)  # it would count the user's
        assert not any("setpriv" in part for part in conf.command_prefix)
        assert conf.off == ["separate user (needs root and setpriv)",
                            "memory and process limits (no writable cgroup; needs root)"]
        seen = _probe(conf, readable=["/etc/shadow"], writable=[tmp_path / "work" / "x"])
    finally:
        conf.close()
    assert seen["net"] == "OSError" and seen["read"] == {"/etc/shadow": "FileNotFoundError"}
    assert seen["write"] == {str(tmp_path / "work" / "x"): "ok"}


def test_no_namespaces_still_grades_and_says_so(tmp_path, data_env, monkeypatch):
    monkeypatch.setenv(sandbox.MODE_ENV, "none")
    monkeypatch.setattr(sandbox.probe, "is_root", lambda: False)
    conf = sandbox.plan(tmp_path / "work", data_env=data_env, threads=1, timeout=60)
    try:
        assert conf.layers[:3] == ["scrubbed environment", "own HOME and temp folder",
                                   "thread budget 1"]
        assert "no network (no namespaces here)" in conf.off
        assert conf.env["HOME"] == str((tmp_path / "work" / "home").resolve())
        seen = _probe(conf, readable=[], writable=[Path(conf.env["HOME"]) / "h.txt"])
    finally:
        conf.close()
    assert seen["write"] == {conf.env["HOME"] + "/h.txt": "ok"}


def _tiny_notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


@pytest.mark.kernel
def test_a_confined_kernel_is_interrupted_and_goes_on(tmp_path, data_env):
    """nbclient interrupts a cell by signalling the process group: the kernel must get it,
    bubblewrap (which SIGINT would kill) must not."""
    _need_full_layers()
    conf = sandbox.plan(tmp_path / "work", data_env=data_env, threads=1, timeout=120)
    nb = _tiny_notebook("import os, time\ntime.sleep(600)", "print(os.getuid(), 'after')")
    report = run_notebook(nb, conf.workdir, env=conf.env, cell_timeout=5, total_timeout=110,
                          owners=[None, None], confinement=conf)
    assert report.kernel is None and report.timed_out_cells == [1]
    assert report.notebook.cells[1].outputs[0]["text"] == f"{conf.uid} after\n"
    assert not any(f.exists() for f in conf.cgroups.folders) and _uid_processes(conf.uid) == []


def test_disk_usage_counts_blocks_and_entries(tmp_path):
    sparse = tmp_path / "sparse.bin"
    with open(sparse, "wb") as fh:
        fh.seek(10 << 30)
        fh.write(b"x")  # 10 GB long, one block used
    assert _disk_usage(tmp_path) < 1 << 20
    (tmp_path / "real.bin").write_bytes(b"x" * (2 << 20))
    assert 2 << 20 <= _disk_usage(tmp_path) < 3 << 20
    for i in range(20):
        (tmp_path / f"f{i}").touch()
    assert _disk_usage(tmp_path, max_entries=10) == float("inf")


@pytest.mark.kernel
@pytest.mark.parametrize("mode, root, layers", [
    ("unshare", True, ["scrubbed environment", "own HOME and temp folder", "thread budget 1",
                       "memory", "rlimits", "no network", "own process namespace",
                       "work folder quota"]),
    ("none", False, ["scrubbed environment", "own HOME and temp folder", "thread budget 1",
                     "rlimits", "work folder quota"]),
])
def test_fewer_layers_still_grade_and_the_report_says_which(tmp_path, monkeypatch, mode, root,
                                                             layers):
    from grader.pipeline import grade_submission

    monkeypatch.setenv(sandbox.MODE_ENV, mode)
    monkeypatch.setattr(sandbox.probe, "is_root", lambda: root)
    result = grade_submission(ROOT / "tests" / "adversarial" / "honest_slim_base.ipynb",
                              profile="structure", out=tmp_path / "out", threads=1)
    assert result.status == "graded" and result.kernel is None and result.score == 1.0
    assert len(result.confinement) == len(layers)
    assert all(on.startswith(name) for on, name in zip(result.confinement, layers)), \
        result.confinement
    html = (tmp_path / "out" / "feedback.html").read_text()
    assert f"Confinement: {', '.join(result.confinement)}." in html


def test_a_lower_cpu_weight_is_set_on_the_cgroup_and_listed(tmp_path, data_env):
    """The evaluator's weight: it yields the CPU to the kernel while both run."""
    _need_full_layers()
    plain = sandbox.plan(tmp_path / "a", data_env=data_env, threads=2, timeout=60)
    weighted = sandbox.plan(tmp_path / "b", data_env=data_env, threads=2, timeout=60,
                            limits=replace(sandbox.LIMITS, cpu_weight=10))
    try:
        assert weighted.cgroups.weight == 10 and plain.cgroups.weight is None
        assert "2 CPUs at weight 10 (cgroup" in " ".join(weighted.layers)
        assert "at weight" not in " ".join(plain.layers)
        if weighted.cgroups.version == "v1":
            cpu = next(f for f in weighted.cgroups.folders if "cpu" in f.parent.name.split(","))
            default = next(f for f in plain.cgroups.folders if "cpu" in f.parent.name.split(","))
            assert (cpu / "cpu.shares").read_text().strip() == "102"
            assert (default / "cpu.shares").read_text().strip() == "1024"
        else:
            assert (weighted.cgroups.folders[0] / "cpu.weight").read_text().strip() == "10"
    finally:
        plain.close()
        weighted.close()
