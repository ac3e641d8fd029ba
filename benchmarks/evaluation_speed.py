"""The grader's evaluation against the exercise's ``evaluate()``, on the same trained model.

    python benchmarks/evaluation_speed.py [--samples 10000] [--train 3500]

Trains the reference Task 1 model briefly (the speed of prediction does not depend on how well
it is trained), then times, side by side in one run:

- the exercise's evaluate(): ``model.evaluate`` (batch 32), ``predict(batch_size=1)``, the
  Keras 2 ``predict_classes(batch_size=1)`` (a second batch-1 predict: it no longer exists), and
  ``predict`` on as many training reviews for the histogram;
- the grader's: one ``predict`` in batches of 512 on the test reviews (what
  ``grader.evaluator`` does), plus the same train-review pass for the report's histogram.

Prints a table with seconds, the speed-up and both accuracies (they must be identical).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--train", type=int, default=3500)
    args = parser.parse_args()

    import keras
    import numpy as np

    import reference.solution as solution
    from grader.data import load_imdb_padded
    from grader.evaluator import imdb_metrics

    keras.utils.set_random_seed(7)
    x_train, y_train = load_imdb_padded(5000, 500, split="train", samples=args.train)
    x_test, y_test = load_imdb_padded(5000, 500, split="test", samples=args.samples)
    model = solution.build_lstm_model()
    model.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)
    hist_x = x_train[:args.samples]

    t0 = time.perf_counter()
    model.evaluate(x_test, y_test, verbose=0)
    prob_1 = model.predict(x_test, batch_size=1, verbose=0).ravel()
    classes = (model.predict(x_test, batch_size=1, verbose=0) > 0.5).astype(int).ravel()
    model.predict(hist_x, verbose=0)
    exercise = time.perf_counter() - t0

    t0 = time.perf_counter()
    prob = model.predict(x_test, batch_size=512, verbose=0).ravel()
    grader_test = time.perf_counter() - t0
    model.predict(hist_x, batch_size=512, verbose=0)
    grader = time.perf_counter() - t0

    acc_exercise = float(np.mean(classes == y_test))
    acc_grader = imdb_metrics(y_test, prob)["accuracy"]
    same = bool(np.array_equal((prob_1 > 0.5), (prob > 0.5)))
    print(f"\nTask 1 LSTM, {args.samples:,} test reviews, 2 CPU cores\n")
    print("| what | seconds | accuracy |")
    print("|---|---|---|")
    print(f"| exercise evaluate() (evaluate, 2 x predict batch 1, predict train) | "
          f"{exercise:.1f} | {acc_exercise:.4f} |")
    print(f"| grader: one predict, batch 512 (test reviews only) | {grader_test:.1f} | "
          f"{acc_grader:.4f} |")
    print(f"| grader: test + train histogram pass | {grader:.1f} | {acc_grader:.4f} |")
    print(f"\nspeed-up (same work: metrics + histogram): {exercise / grader:.1f}x; "
          f"test pass alone: {exercise / grader_test:.1f}x; identical predicted classes: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
