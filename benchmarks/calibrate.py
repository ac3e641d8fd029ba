"""Calibrate a profile's accuracy thresholds: run the reference notebook over several seeds.

    python benchmarks/calibrate.py --profile quick --seeds 1 2 3

Runs the code cells of reference/ex8_solution.ipynb in this process with the profile's
parameters and each SEED, measures every trained model the way the grader does (its own test
subset, one batched predict), and prints a table: accuracy per task and seed, the mean, the
lowest, its standard error and the threshold the rubric would need (lowest - 3 SE).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from grader.rubric import load_rubric  # noqa: E402


def run_notebook(params: dict, seed: int) -> dict:
    nb = nbformat.read(ROOT / "reference" / "ex8_solution.ipynb", as_version=4)
    ns: dict = {"__name__": "__calibrate__"}
    timings = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        start = time.perf_counter()
        exec(compile(cell.source, "<cell>", "exec"), ns)
        if "parameters" in cell.metadata.get("tags", []):
            ns.update(params, SEED=seed)
        task = cell.metadata.get("ex8", {}).get("task")
        if task:
            timings[task] = timings.get(task, 0.0) + time.perf_counter() - start
    ns["_timings"] = timings
    return ns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="override profile parameters (to try a profile before editing it)")
    args = parser.parse_args()

    from grader.evaluate import imdb_metrics, load_eval_data

    rubric = load_rubric()
    profile = rubric.profile(args.profile)
    data = load_eval_data(rubric, profile)
    rows: dict[str, list[float]] = {}
    extra: dict[str, list[str]] = {}
    for seed in args.seeds:
        params = dict(profile.parameters)
        for item in args.set:
            name, _, value = item.partition("=")
            params[name] = None if value == "None" else int(value)
        ns = run_notebook(params, seed)
        for task in rubric.tasks:
            model = ns.get(task.model)
            if model is None:
                continue
            if task.kind == "imdb":
                prob = model.predict(data.x_test, batch_size=512, verbose=0).ravel()
                rows.setdefault(task.id, []).append(imdb_metrics(data.y_test, prob)["accuracy"])
            else:
                loss = ns[task.history].history["loss"]
                extra.setdefault(task.id, []).append(f"loss {loss[0]:.4f} -> {loss[-1]:.4f}")
        print(f"seed {seed}: " + ", ".join(f"{t} {v[-1]:.4f}" for t, v in rows.items())
              + "; time " + ", ".join(f"{t} {s:.0f}s" for t, s in ns["_timings"].items()),
              flush=True)

    n = len(data.y_test)
    print(f"\nprofile {args.profile}: {n} test reviews, seeds {args.seeds}\n")
    print("| task | accuracy per seed | mean | lowest | SE (binomial, lowest) | lowest - 3 SE "
          "| rubric threshold |")
    print("|---|---|---|---|---|---|---|")
    for task in rubric.tasks:
        if task.id not in rows:
            continue
        accs = rows[task.id]
        low = min(accs)
        # The seed-to-seed spread and the binomial error of one measurement, whichever is larger.
        spread = (sum((a - sum(accs) / len(accs)) ** 2 for a in accs) / max(len(accs) - 1, 1)) ** .5
        se = max(math.sqrt(low * (1 - low) / n), spread)
        check = next((c for c in task.checks if c.check == "accuracy"), None)
        threshold = check.options.get("threshold", {}).get(args.profile) if check else None
        print(f"| {task.id} | {', '.join(f'{a:.4f}' for a in accs)} | "
              f"{sum(accs) / len(accs):.4f} | {low:.4f} | {se:.4f} | {low - 3 * se:.4f} | "
              f"{threshold} |")
    for task, notes in extra.items():
        print(f"| {task} | {'; '.join(notes)} | | | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
