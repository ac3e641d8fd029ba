"""Speed-up of batch grading with several local workers over one.

    python benchmarks/batch_speedup.py                  # 8 submissions, structure profile, 1 vs 2
    python benchmarks/batch_speedup.py --workers 1 2 4 --submissions 12

Grades the same folder of copies of the reference notebook once per worker count (a fresh
output folder each time, so nothing is reused) and prints a table: workers, threads per
kernel, wall time, time per submission and the speed-up over the first row. Each worker's
kernel gets the cores divided among the workers (``grade DIR``'s default thread budget).
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

from grader.batch import _cores, grade_folder  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--profile", default="structure")
    parser.add_argument("--keep", type=Path, help="keep the graded folders here")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="ex8-speedup-"))
    folder = root / "submissions"
    folder.mkdir()
    for i in range(1, args.submissions + 1):
        shutil.copyfile(ROOT / "reference" / "ex8_solution.ipynb",
                        folder / f"student{i:02d}_ex8.ipynb")
    cores = _cores()  # as grade DIR counts them (a Slurm job's, not the node's)
    rows = []
    try:
        for workers in args.workers:
            threads = max(1, cores // workers)
            started = time.monotonic()
            summary = grade_folder(folder, out=root / f"graded-{workers}", profile=args.profile,
                                   workers=workers, threads=threads, progress=sys.stderr)
            seconds = time.monotonic() - started
            bad = [r.student for r in summary.rows if r.status != "graded"]
            if bad:
                print(f"not graded with {workers} workers: {', '.join(bad)}", file=sys.stderr)
                return 1
            rows.append((workers, threads, seconds))
    finally:
        if args.keep:
            shutil.copytree(root, args.keep, dirs_exist_ok=True)
        shutil.rmtree(root, ignore_errors=True)

    base = rows[0][2]
    print(f"{args.submissions} submissions (copies of the reference), {args.profile} profile, "
          f"{cores} cores")
    print("| workers | threads per kernel | wall time | per submission | speed-up |")
    print("|---:|---:|---:|---:|---:|")
    for workers, threads, seconds in rows:
        print(f"| {workers} | {threads} | {seconds:.0f} s | {seconds / args.submissions:.1f} s "
              f"| {base / seconds:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
