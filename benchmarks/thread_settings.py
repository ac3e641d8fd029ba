"""One training epoch of the reference's models under different thread settings.

    python benchmarks/thread_settings.py                       # Task 1 and Task 2, 3 rounds
    python benchmarks/thread_settings.py --models build_lstm_model --rounds 5
    python benchmarks/thread_settings.py --confined   # also the grader's settings, confined

Each measurement is a fresh Python process (TensorFlow reads its thread settings once, at
start-up) that builds the model from ``reference/solution.py``, traces it on one batch, then
times one epoch over 1,500 reviews of 500 tokens, batch 32 (the quick profile's shapes; the
tokens are random: the time of an epoch does not depend on the words). The settings are
interleaved round by round so that the machine's drift falls on all of them alike. Prints a
table of the median seconds per setting and model, and every measurement. With
``--confined``, one more setting runs the grader's thread budget inside the kernel's
confinement (``grader.sandbox.plan``: bubblewrap, cgroups with the CPU quota, rlimits, a
separate user, where this machine allows them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.sandbox import cores as _cores  # noqa: E402
from grader.sandbox import plan, thread_env  # noqa: E402

CONFINED = "confined: the grader now, in the kernel's confinement"


def settings(cores: int) -> dict[str, dict[str, str]]:
    return {
        "TensorFlow's defaults (nothing set)": {},
        f"inter-op 1, intra-op {cores} (the grader before)": {
            **thread_env(cores), "TF_NUM_INTEROP_THREADS": "1"},
        f"inter-op {cores}, intra-op {cores} (the grader now)": thread_env(cores),
    }


def epoch(builder: str) -> float:
    import numpy as np

    from reference import solution

    rng = np.random.default_rng(0)
    x = rng.integers(1, solution.TOP_WORDS, size=(1500, solution.MAX_REVIEW_LENGTH))
    y = rng.integers(0, 2, size=1500)
    model = getattr(solution, builder)()
    model.fit(x[:64], y[:64], epochs=1, batch_size=32, verbose=0)  # tracing is not measured
    start = time.perf_counter()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    return time.perf_counter() - start


def measure(model: str, env: dict[str, str] | None, cores: int) -> float:
    """Seconds of one epoch in a fresh process; ``env`` None: confined as the kernel is, with
    a budget of ``cores`` threads."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", model]
    conf = None
    with tempfile.TemporaryDirectory() as work:
        if env is None:
            conf = plan(Path(work) / "run", data_env={}, threads=cores,
                        show=("grader", "reference"), hide=(), readable=[ROOT / "benchmarks"],
                        sockets=False)
            command, env = conf.command_prefix + command, conf.env
        try:
            out = subprocess.run(command, env=env, cwd=conf.workdir if conf else work,
                                 capture_output=True, text=True)
        finally:
            if conf:
                conf.close()
    if out.returncode:
        raise SystemExit(f"the {model} epoch failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+",
                        default=["build_lstm_model", "build_lstm_dropout_model"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--confined", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(epoch(args.child)))
        return 0

    cores = _cores()
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("TF_NUM_", "OMP_", "OPENBLAS_", "MKL_"))}
    base["TF_CPP_MIN_LOG_LEVEL"] = "3"
    runs = {name: {**base, **env} for name, env in settings(cores).items()}
    if args.confined:
        runs[CONFINED] = None
    times: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds):
        for model in args.models:
            for name, env in runs.items():
                seconds = measure(model, env, cores)
                times.setdefault((model, name), []).append(seconds)
                print(f"round {round_ + 1}: {model}, {name}: {seconds:.1f} s", flush=True)

    print(f"\none epoch, 1,500 reviews x 500 tokens, batch 32, {cores} cores, "
          f"{args.rounds} rounds\n")
    print("| model | threads | median s | each run |")
    print("|---|---|---|---|")
    for (model, name), runs in times.items():
        print(f"| {model} | {name} | {statistics.median(runs):.1f} | "
              f"{', '.join(f'{t:.1f}' for t in runs)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
