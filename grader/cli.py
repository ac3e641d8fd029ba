"""The ``grade`` command: parse arguments, call the pipeline, map the outcome to an exit code.

Exit codes: 0 full marks (automatic checks), 1 points lost, 2 could not grade.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import GradingError
from .results import EXIT_NOT_GRADED

__all__ = ["main", "build_parser"]

PROFILES = ("structure", "quick", "full")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade", description="Grade Exercise 8 (recurrent neural networks) submissions.",
        epilog="Exit codes: 0 full marks, 1 points lost, 2 could not grade.")
    parser.add_argument("path", type=Path, help="a submission (.ipynb or .py)")
    parser.add_argument("--profile", choices=PROFILES, default="quick",
                        help="how much to train: structure (seconds), quick (minutes, "
                             "default), full (the exercise as written; for GPUs)")
    parser.add_argument("--rubric", type=Path, help="rubric YAML (default: the bundled ex8.yaml)")
    parser.add_argument("--out", type=Path,
                        help="output folder (default: <submission>_graded next to it)")
    parser.add_argument("--data", help="IMDB source: imdb.npz, an aclImdb folder or tarball "
                                       "(default: $EX8_IMDB, else Keras' download)")
    parser.add_argument("--timeout", type=float, help="seconds for the whole run")
    parser.add_argument("--cell-timeout", type=float, help="seconds per cell")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .pipeline import grade_submission
    from .report import summary_lines, use_colour

    try:
        result = grade_submission(args.path, profile=args.profile, rubric=args.rubric,
                                  out=args.out, data=args.data, timeout=args.timeout,
                                  cell_timeout=args.cell_timeout)
    except GradingError as err:
        print(f"grade: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("grade: interrupted.", file=sys.stderr)
        return 130
    if result.status != "graded":
        print(f"grade: {result.reason}", file=sys.stderr)
        return EXIT_NOT_GRADED
    for line in summary_lines(result, colour=use_colour(sys.stdout)):
        print(line)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
