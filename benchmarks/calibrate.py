"""Calibrate a profile's thresholds: the reference over several seeds, against baselines.

    python benchmarks/calibrate.py --profile quick --seeds 1 2 3 --baselines
    python benchmarks/calibrate.py --profile quick --set MAX_REVIEW_LENGTH=200 EPOCHS=2

Runs the code cells of reference/ex8_solution.ipynb in this process with the profile's
parameters (``--set`` overrides them, to try a candidate profile before editing the rubric)
and each SEED, on the kernel's view of the data (the held-out reviews removed, as in a graded
run), and measures every trained model the way the grader does: one batched predict on the
grader's held-out test reviews; the bonus's loss on the grader's movies against the same
architecture untrained (the evaluator's clone, weights drawn afresh).

With ``--baselines``, each seed also measures, per IMDB task, the builder's model untrained and
a model trained as the reference is but on shuffled labels: what a threshold must separate
the reference from.

Prints, per task: the accuracy per seed, the time per task, the lowest, its standard error (the
binomial error of one measurement or the seed-to-seed spread, whichever is larger), the
threshold the rubric has, and the separations in standard errors: threshold below the lowest
reference, threshold above the untrained and the shuffled models (each in the binomial SE at
that model's accuracy).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402
import numpy as np  # noqa: E402

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


def _accuracy(model, data) -> float:
    from grader.evaluator import imdb_metrics

    prob = model.predict(data.x_test, batch_size=512, verbose=0).ravel()
    return imdb_metrics(data.y_test, prob)["accuracy"]


def _untrained_movie_ratio(task, ns, data, seed) -> float:
    """The builder's model, untrained (its own seeded weights), against the grader's clone."""
    import keras

    keras.utils.set_random_seed(seed)
    trained, untrained = _movie_losses(ns[task.builder](), data)
    return trained / untrained


def _movie_losses(model, data) -> tuple[float, float]:
    """The trained bonus model's loss on the grader's movies, and its untrained clone's."""
    import keras

    from grader.evaluator import BASELINE_SEED, movie_metrics

    def loss(m):
        pred = np.concatenate([np.asarray(m(data.noisy[i:i + 4], training=False))
                               for i in range(0, len(data.noisy), 4)])
        return movie_metrics(data.shifted, pred)["loss"]

    keras.utils.set_random_seed(BASELINE_SEED)
    return loss(model), loss(keras.models.clone_model(model))


def _baselines(task, ns, data, params, seed) -> tuple[float, float]:
    """The builder's model untrained, and trained as the notebook trains it on shuffled labels."""
    import keras

    keras.utils.set_random_seed(seed)
    untrained = _accuracy(ns[task.builder](), data)
    shuffled = ns[task.builder]()
    labels = np.random.RandomState(seed).permutation(ns["y_train"])
    shuffled.fit(ns["X_train"], labels, epochs=params["EPOCHS"],
                 batch_size=params["BATCH_SIZE"], verbose=0)
    return untrained, _accuracy(shuffled, data)


def _se(p: float, n: int) -> float:
    p = min(max(p, 1 / n), 1 - 1 / n)
    return math.sqrt(p * (1 - p) / n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="override profile parameters (to try a profile before editing it)")
    parser.add_argument("--baselines", action="store_true",
                        help="also measure untrained and shuffled-label models (doubles the time)")
    args = parser.parse_args()

    from grader.data import ENV_SOURCE, ensure_cache
    from grader.heldout import ensure_view
    from grader.evaluator import load_eval_data

    rubric = load_rubric()
    profile = rubric.profile(args.profile)
    source, _ = ensure_cache()
    # the notebook reads the kernel's view, as in a graded run; the grader its held-out reviews
    os.environ[ENV_SOURCE] = str(ensure_view(source.path, **{
        "count": rubric.held_out["reviews"], "seed": rubric.held_out["seed"]}))
    params = dict(profile.parameters)
    for item in args.set:
        name, _, value = item.partition("=")
        params[name] = None if value == "None" else int(value)
    # the grader measures at the profile's review length: the candidate's, if it sets one
    profile = replace(profile, parameters=MappingProxyType(params))
    data = load_eval_data(rubric, profile, str(source.path))
    rows: dict[str, list[float]] = {}
    base: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, list[float]] = {}
    movies: dict[str, list[tuple[float, float]]] = {}
    for seed in args.seeds:
        ns = run_notebook(params, seed)
        for task in rubric.tasks:
            seconds.setdefault(task.id, []).append(ns["_timings"].get(task.id, 0.0))
            model = ns.get(task.model)
            if model is None:
                continue
            if task.kind == "imdb":
                rows.setdefault(task.id, []).append(_accuracy(model, data))
                if args.baselines:
                    untrained, shuffled = _baselines(task, ns, data, params, seed)
                    base.setdefault(task.id, {}).setdefault("untrained", []).append(untrained)
                    base[task.id].setdefault("shuffled", []).append(shuffled)
            else:
                movies.setdefault(task.id, []).append(_movie_losses(model, data))
                if args.baselines:
                    base.setdefault(task.id, {}).setdefault("untrained", []).append(
                        _untrained_movie_ratio(task, ns, data, seed))
        print(f"seed {seed}: " + ", ".join(f"{t} {v[-1]:.4f}" for t, v in rows.items())
              + "; time " + ", ".join(f"{t} {s:.0f}s" for t, s in ns["_timings"].items()),
              flush=True)

    n = len(data.y_test)
    print(f"\nprofile {args.profile} {' '.join(args.set)}: {n} held-out test reviews, seeds "
          f"{args.seeds}, parameters {params}\n")
    print("| task | seconds per seed | accuracy per seed | lowest | SE | lowest - 3 SE | "
          "threshold | below lowest (SE) | untrained | above it (SE) | shuffled labels | "
          "above it (SE) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for task in rubric.tasks:
        if task.id not in rows:
            continue
        accs = rows[task.id]
        low = min(accs)
        spread = (sum((a - sum(accs) / len(accs)) ** 2 for a in accs)
                  / max(len(accs) - 1, 1)) ** .5
        se = max(_se(low, n), spread)
        check = next((c for c in task.checks if c.check == "accuracy"), None)
        threshold = check.options.get("threshold", {}).get(args.profile) if check else None
        cells = [task.id, ", ".join(f"{s:.0f}" for s in seconds[task.id]),
                 ", ".join(f"{a:.4f}" for a in accs), f"{low:.4f}", f"{se:.4f}",
                 f"{low - 3 * se:.4f}", str(threshold),
                 f"{(low - threshold) / se:.1f}" if threshold else "-"]
        for kind in ("untrained", "shuffled"):
            values = base.get(task.id, {}).get(kind)
            if not values:
                cells += ["-", "-"]
                continue
            top = max(values)
            cells += [", ".join(f"{v:.4f}" for v in values),
                      f"{(threshold - top) / _se(top, n):.1f}" if threshold else "-"]
        print("| " + " | ".join(cells) + " |")
    for task_id, pairs in movies.items():
        ratios = [trained / untrained for trained, untrained in pairs]
        check = next((c for t in rubric.tasks if t.id == task_id for c in t.checks
                      if c.check == "learns"), None)
        at_most = check.options.get("at_most", 0.8) if check else None
        untrained = base.get(task_id, {}).get("untrained") or []
        print(f"| {task_id} | {', '.join(f'{s:.0f}' for s in seconds[task_id])} | loss / "
              f"untrained loss: " + ", ".join(f"{t:.4f} / {u:.4f} = {r:.3f}"
                                              for (t, u), r in zip(pairs, ratios))
              + f" | highest ratio {max(ratios):.3f} | | | learns at_most {at_most} | | "
              + (", ".join(f"{r:.4f}" for r in untrained) if untrained else "-")
              + " (untrained / clone) | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
