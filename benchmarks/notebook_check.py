"""How long ``check("task1")`` takes in a student's kernel, on the reference's real builders.

    python benchmarks/notebook_check.py [--repeat 5]

As in the notebook: Keras is imported first (the notebook's imports cell does it), then
``check()`` runs on each task in turn; the very first call also reads and validates the rubric.
It builds each builder's model and describes it, and predicts nothing. Prints seconds per task:
the first call and the median of ``--repeat`` more. The goal: task1 in under 5 s on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    started = time.perf_counter()
    import keras  # noqa: F401 - the notebook's imports cell, not check()'s cost

    imported = time.perf_counter() - started
    import reference.solution as solution
    from grader import check

    namespace = vars(solution)
    rows = []
    for task in ("task1", "task2", "task3", "bonus", "rnn"):
        times = []
        for _ in range(1 + args.repeat):
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                result = check(task, namespace=namespace)
            times.append(time.perf_counter() - t0)
        assert result.passed, f"the reference's {task} does not pass: {result}"
        rows.append((task, times[0], statistics.median(times[1:])))

    print(f"import keras (the notebook's imports cell): {imported:.1f} s; "
          f"{os.cpu_count()} cores; Keras {keras.__version__}")
    print(f"{'task':<8} {'first call (s)':>15} {'median of ' + str(args.repeat) + ' (s)':>16}")
    for task, first, median in rows:
        print(f"{task:<8} {first:>15.2f} {median:>16.2f}")
    print("(the first call of the run, task1's, also reads the rubric)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
