"""Wall time and peak memory of `grade` against a bare nbclient run of the same notebook.

    python benchmarks/grading_time.py --profile structure [--repeat 2]
    python benchmarks/grading_time.py --profile quick --repeat 2
    python benchmarks/grading_time.py --profile quick --against MAX_REVIEW_LENGTH=500 ...

Side by side, in one run: (1) the submission prepared as the grader prepares it (the profile's
parameters injected) but executed by a bare ``nbclient.NotebookClient`` with no harvest cell,
no evaluation and no reports; (2) ``grade_submission`` on the same file; odd runs go the other
way round. Prints the seconds of each, their ratio, the grader's own share (evaluation,
reports; the evaluator's time split into what it measured while the notebook ran and after
it), and the peak memory of the grading process tree (grader + kernel + evaluator,
resident set sizes summed, sampled every 0.2 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class PeakMemory(threading.Thread):
    """Samples the summed RSS of this process and all its descendants."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = 0
        self.peak_single = 0
        self._done = threading.Event()

    def run(self):
        import psutil

        me = psutil.Process()
        while not self._done.wait(0.2):
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                self.peak_single = max(self.peak_single, rss)
            self.peak = max(self.peak, total)

    def stop(self):
        self._done.set()
        self.join()


def cell_seconds(path: Path) -> dict[str, float]:
    """Seconds per code cell of an executed notebook (nbclient's timestamps), keyed by the
    cell's first line."""
    from datetime import datetime

    import nbformat

    seconds: dict[str, float] = {}
    for cell in nbformat.read(path, as_version=4).cells:
        stamps = cell.metadata.get("execution", {})
        start, end = stamps.get("iopub.execute_input"), stamps.get("shell.execute_reply")
        if cell.cell_type != "code" or not (start and end):
            continue
        key = (cell.source.strip().splitlines() or [""])[0][:60]
        while key in seconds:
            key += " (again)"
        seconds[key] = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return seconds


def evaluation_seconds(out: Path) -> tuple[float, float]:
    """The evaluator's own clock, loading and measuring the models (evaluation.json): the
    seconds spent while the notebook ran (models handed out early) and after it."""
    tasks = json.loads((out / "evaluation.json").read_text())["tasks"]
    infos = [info for entry in tasks.values() for info in entry.values()
             if isinstance(info, dict)]
    early = sum(info.get("seconds", 0.0) for info in infos if info.get("early"))
    return early, sum(info.get("seconds", 0.0) for info in infos) - early


def bare_run(path: Path, profile, workdir: Path) -> float:
    """The notebook with the same parameters, run by nbclient and nothing else."""
    import nbformat
    from nbclient import NotebookClient

    from grader.submission import HARVEST_TAG, prepare_notebook, read_submission
    from grader.rubric import load_rubric

    sub = read_submission(path)
    nb, _ = prepare_notebook(sub, dict(profile.parameters), load_rubric().tasks)
    nb.cells = [c for c in nb.cells if HARVEST_TAG not in c.metadata.get("tags", [])]
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    NotebookClient(nb, timeout=int(profile.cell_timeout), kernel_name="python3",
                   allow_errors=True, resources={"metadata": {"path": str(workdir)}}).execute()
    elapsed = time.perf_counter() - start
    nbformat.write(nb, workdir / "bare.ipynb")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="structure")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--submission", type=Path, default=ROOT / "reference" /
                        "ex8_solution.ipynb")
    parser.add_argument("--against", nargs="+", metavar="NAME=VALUE",
                        help="also grade with the profile's parameters (or evaluation.NAME) "
                             "changed so (a profile before a change), interleaved with the "
                             "profile as it is, and print the ratio of their wall times")
    args = parser.parse_args()
    if args.against:
        return compare(args)

    from grader.data import ensure_cache
    from grader.pipeline import grade_submission
    from grader.rubric import load_rubric

    ensure_cache()  # the cache is warm for both: tokenising is not what is measured
    profile = load_rubric().profile(args.profile)
    bare, graded, kernel, evaluation, peaks, singles = [], [], [], [], [], []
    cells: dict[str, tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            # Odd runs grade first: the machine's drift falls on both sides alike.
            if i % 2 == 0:
                bare.append(bare_run(args.submission, profile, Path(tmp) / f"bare{i}"))
            watch = PeakMemory()
            watch.start()
            start = time.perf_counter()
            result = grade_submission(args.submission, profile=args.profile,
                                      out=Path(tmp) / f"graded{i}")
            graded.append(time.perf_counter() - start)
            watch.stop()
            peaks.append(watch.peak)
            singles.append(watch.peak_single)
            kernel.append(result.extra.get("kernel_seconds", float("nan")))
            evaluation.append(evaluation_seconds(Path(tmp) / f"graded{i}"))
            if i % 2 == 1:
                bare.append(bare_run(args.submission, profile, Path(tmp) / f"bare{i}"))
            graded_cells = cell_seconds(Path(tmp) / f"graded{i}" / "executed.ipynb")
            for key, seconds in cell_seconds(Path(tmp) / f"bare{i}" / "bare.ipynb").items():
                cells.setdefault(key, ([], []))[0].append(seconds)
                cells[key][1].append(graded_cells.get(key, float("nan")))
            print(f"run {i + 1}: bare {bare[-1]:.1f} s, grade {graded[-1]:.1f} s, of which "
                  f"the kernel {kernel[-1]:.1f} s (score {result.score:g}/"
                  f"{result.max_score:g})", flush=True)

    med = statistics.median
    print(f"\n{args.submission.name}, profile {args.profile}, {args.repeat} run(s), "
          f"medians, 2 CPU cores\n")
    print("| figure | value |")
    print("|---|---|")
    print(f"| bare nbclient execution | {med(bare):.1f} s |")
    print(f"| `grade` end to end | {med(graded):.1f} s |")
    print(f"| of which the kernel (incl. harvest cell) | {med(kernel):.1f} s |")
    print(f"| the evaluator's measuring while the notebook ran (early hand-out) | "
          f"{med(e for e, _ in evaluation):.1f} s |")
    print(f"| of which the evaluator's measuring after the kernel | "
          f"{med(a for _, a in evaluation):.1f} s |")
    print(f"| `grade` / bare | {med(graded) / med(bare):.2f} |")
    print(f"| peak memory, process tree (summed RSS) | {max(peaks) / 2**30:.2f} GB |")
    print(f"| peak memory, largest single process | {max(singles) / 2**30:.2f} GB |")
    print("\n| cell (first line) over 2 s | bare s | kernel in `grade` s | ratio |")
    print("|---|---|---|---|")
    for key, (bare_s, graded_s) in cells.items():
        if max(med(bare_s), med(graded_s)) > 2:
            print(f"| `{key}` | {med(bare_s):.1f} | {med(graded_s):.1f} | "
                  f"{med(graded_s) / med(bare_s):.2f} |")
    return 0


def _changed_rubric(profile_name: str, changes: list[str], path: Path) -> Path:
    """The bundled rubric with ``changes`` to one profile's parameters, written to ``path``
    (the evaluator reads the rubric from a file)."""
    import yaml

    from grader.rubric import default_rubric_path

    raw = yaml.safe_load(default_rubric_path().read_text())
    for item in changes:  # NAME=VALUE: a parameter; evaluation.NAME=VALUE: the evaluator's
        name, _, value = item.partition("=")
        section, _, name = name.rpartition(".")
        raw["profiles"][profile_name][section or "parameters"][name] = \
            None if value == "None" else int(value)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def compare(args) -> int:
    """The profile as it is against the same profile with ``--against``'s parameters, graded
    alternately (``--repeat`` pairs), wall times and peak memory side by side."""
    from grader.data import ensure_cache
    from grader.pipeline import grade_submission

    ensure_cache()
    times: dict[str, list[float]] = {"now": [], "against": []}
    peaks: dict[str, list[int]] = {"now": [], "against": []}
    scores: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        other = _changed_rubric(args.profile, args.against, Path(tmp) / "against.yaml")
        for i in range(args.repeat):
            order = ("now", "against") if i % 2 == 0 else ("against", "now")
            for side in order:
                watch = PeakMemory()
                watch.start()
                start = time.perf_counter()
                result = grade_submission(args.submission, profile=args.profile,
                                          out=Path(tmp) / f"{side}{i}",
                                          rubric=other if side == "against" else None)
                times[side].append(time.perf_counter() - start)
                watch.stop()
                peaks[side].append(watch.peak)
                scores[side] = f"{result.score:g}/{result.max_score:g}"
                print(f"run {i + 1}, {side}: {times[side][-1]:.1f} s, score {scores[side]}",
                      flush=True)
    med = statistics.median
    print(f"\n{args.submission.name}, profile {args.profile} against {' '.join(args.against)}, "
          f"{args.repeat} pair(s), medians\n")
    print("| figure | as it is | against | ratio |")
    print("|---|---|---|---|")
    print(f"| `grade` end to end | {med(times['now']):.1f} s | {med(times['against']):.1f} s "
          f"| {med(times['now']) / med(times['against']):.2f} |")
    print(f"| peak memory, process tree | {max(peaks['now']) / 2**30:.2f} GB | "
          f"{max(peaks['against']) / 2**30:.2f} GB | |")
    print(f"| score | {scores['now']} | {scores['against']} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
