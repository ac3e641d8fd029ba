"""``python -m grader.evaluator``: the trusted process that measures a run's models.

Runs as its own process, confined (``grader.sandbox``), so TensorFlow never loads into the
grader's main process and a model that exhausts memory takes only this process down. With
``--wait`` it starts beside the kernel: TensorFlow and the data are loaded while the notebook
runs, each task's trained model is measured as soon as the kernel hands it out (a line
``task ID`` on stdin), and ``go`` with a JSON object ``{task: [roles]}`` ends it (the roles
named were not saved again, so their early measurement stands). Without ``--wait``: measure
everything, write, exit (``grader.measure`` restarts it so after a model exhausted a budget).
"""

from __future__ import annotations

import argparse
import importlib.abc
import json
import os
import sys
from pathlib import Path

from .data import load_eval_data
from .measuring import Evaluator

__all__ = ["main", "refuse_unused_packages", "UNUSED_PACKAGES"]


#: packages Keras and TensorFlow import whenever they are installed, for what this process never
#: does (plots, pandas and SciPy inputs, scikit-learn wrappers, notebook detection); each of
#: those imports is guarded, so they go on without them. Refused here, the evaluator starts on
#: a third less CPU, on the cores a batch's kernels share (figures in BENCHMARKS.md).
UNUSED_PACKAGES = frozenset({"IPython", "matplotlib", "mpl_toolkits", "pandas", "scipy",
                             "sklearn"})


class _RefuseUnused(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in UNUSED_PACKAGES:
            raise ModuleNotFoundError(f"the evaluator does without {name}", name=name)
        return None


def refuse_unused_packages() -> None:
    """In this process, importing any of ``UNUSED_PACKAGES`` fails as if it were not installed.

    For the evaluator's own process only: the grader's process draws with matplotlib.
    """
    if not any(isinstance(f, _RefuseUnused) for f in sys.meta_path):
        sys.meta_path.insert(0, _RefuseUnused())


def main(argv: list[str] | None = None) -> int:
    refuse_unused_packages()
    parser = argparse.ArgumentParser(prog="python -m grader.evaluator",
                                     description="Measure harvested models (trusted side).")
    parser.add_argument("artifacts", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rubric", type=Path)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--data")
    parser.add_argument("--skip", type=json.loads, default={},
                        help='JSON {"task.role": why}: models not to measure (they exceeded a '
                             'budget in an earlier run); their entry is an error saying why')
    parser.add_argument("--wait", action="store_true",
                        help="load TensorFlow and the data first, then wait for a line 'go' on "
                             "stdin (anything else: exit without evaluating)")
    args = parser.parse_args(argv)

    from ..quiet import quiet_tensorflow
    from ..rubric import load_rubric

    quiet_tensorflow()
    rubric = load_rubric(args.rubric)
    profile = rubric.profile(args.profile)
    # TensorFlow and the data first: no model's time budget (``grader.measure``) pays for them
    import keras  # noqa: F401

    evaluator = Evaluator(args.artifacts, rubric, profile, args.out, source=args.data,
                          data=load_eval_data(rubric, profile, args.data), skip=args.skip)
    evaluator.words()  # for the misclassified reviews, read now rather than at the end
    if not args.wait:
        evaluator.finish()
        return 0
    # Started beside the kernel: the import and the data cost nothing on the clock then, and
    # each task's trained model is measured as soon as the kernel hands it out ("task ID"). "go"
    # and a JSON object {task: [roles]} end it: the roles named were not saved again, so their
    # early measurement stands; everything else is measured now.
    for line in sys.stdin:
        word, _, rest = line.strip().partition(" ")
        if word == "task":  # the trained model: builders are called in the last cell only
            evaluator.task(rest, ("trained",), early=True)
        elif word == "go":
            evaluator.finish(json.loads(rest) if rest else None)
            # Its files are written and closed: skip TensorFlow's teardown at exit, which took
            # 1.3 s after a predict (measured here), all of it on the grader's clock.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        else:
            break
    return 0  # no "go": not needed after all


if __name__ == "__main__":
    sys.exit(main())
