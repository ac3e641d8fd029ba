"""Speed-up of batch grading with several local workers over one.

    python benchmarks/batch_speedup.py                  # 8 submissions, structure profile, 1 vs 2
    python benchmarks/batch_speedup.py --rounds 2       # 1, 2, then 2, 1: drift cancels
    python benchmarks/batch_speedup.py --workers 1 2 4 --submissions 12
    python benchmarks/batch_speedup.py --threads 1      # one thread per kernel in every row

Grades the same folder of copies of the reference notebook once per worker count and round (a
fresh output folder each time, so nothing is reused) and prints a table: workers, threads per
kernel, wall time (summed over the rounds), time per submission, CPU seconds per submission
(the whole machine's busy time: kernels, evaluators and graders) and the speed-up over the
first row. Each worker's kernel gets the cores divided among the workers (``grade DIR``'s default
thread budget), or ``--threads`` for every row: then a lone worker does not use the second core
for its kernel's ops, and the speed-up measures how the batch itself scales. Rounds alternate
the order (1 2, 2 1, ...), so a machine that gets slower or faster during the run weighs on both
sides alike.

The CPU column bounds the speed-up: with every core busy, N workers take at least
CPU per submission / cores per submission, so the speed-up over one worker is at most
cores x (one worker's time per submission) / (its CPU per submission). The efficiency column is
the speed-up over that bound (1.0: the workers use every core a lone grading leaves idle), and
the last column the throughput: gradings per hour per core.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.batch import grade_folder  # noqa: E402
from grader.sandbox import cores as _cores  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--profile", default="structure")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every worker count this many times, alternating the order")
    parser.add_argument("--threads", type=int,
                        help="threads per kernel for every row (default: cores / workers)")
    parser.add_argument("--keep", type=Path, help="keep the graded folders here")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="ex8-speedup-"))
    folder = root / "submissions"
    folder.mkdir()
    for i in range(1, args.submissions + 1):
        shutil.copyfile(ROOT / "reference" / "ex8_solution.ipynb",
                        folder / f"student{i:02d}_ex8.ipynb")
    cores = _cores()  # as grade DIR counts them (a Slurm job's, not the node's)
    seconds = {w: 0.0 for w in args.workers}
    cpu = {w: 0.0 for w in args.workers}
    try:
        for round_ in range(args.rounds):
            for workers in (args.workers if round_ % 2 == 0 else args.workers[::-1]):
                threads = args.threads or max(1, cores // workers)
                used = _busy_cpu()
                started = time.monotonic()
                summary = grade_folder(folder, out=root / f"graded-{workers}-{round_}",
                                       profile=args.profile, workers=workers, threads=threads,
                                       progress=sys.stderr)
                seconds[workers] += time.monotonic() - started
                cpu[workers] += _busy_cpu() - used
                bad = [r.student for r in summary.rows if r.status != "graded"]
                if bad:
                    print(f"not graded with {workers} workers: {', '.join(bad)}", file=sys.stderr)
                    return 1
    finally:
        if args.keep:
            shutil.copytree(root, args.keep, dirs_exist_ok=True)
        shutil.rmtree(root, ignore_errors=True)
    rows = [(w, args.threads or max(1, cores // w), seconds[w], cpu[w]) for w in args.workers]

    base, base_cpu = rows[0][2], rows[0][3]
    graded = args.submissions * args.rounds
    # the most any number of workers can gain on these cores: a lone grading keeps
    # base_cpu / base of them busy already
    bound = cores * base / base_cpu
    print(f"{args.submissions} submissions (copies of the reference), {args.profile} profile, "
          f"{cores} cores, {args.rounds} round(s); CPU bound of the speed-up: {cores} x "
          f"{base / graded:.1f} s / {base_cpu / graded:.1f} s = {bound:.2f}x")
    print("| workers | threads per kernel | wall time | per submission | CPU per submission "
          "| speed-up | efficiency (speed-up / bound) | gradings per hour per core |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for workers, threads, wall, used in rows:
        print(f"| {workers} | {threads} | {wall:.0f} s | {wall / graded:.1f} s "
              f"| {used / graded:.1f} s | {base / wall:.2f}x | {base / wall / bound:.2f} "
              f"| {graded / (wall / 3600) / cores:.1f} |")
    return 0


def _busy_cpu() -> float:
    """CPU seconds this machine has spent busy since boot (``/proc/stat``: user, nice, system,
    irq, softirq; not idle, I/O wait or time stolen by the host). Over a run, the batch's
    processes and anything else running: run it on an otherwise quiet machine. Kernels and
    evaluators end in their sandbox's PID namespace, where no rusage of ours counts them."""
    with open("/proc/stat") as fh:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, fh.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
