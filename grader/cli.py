"""The ``grade`` command: parse arguments, call the pipeline, map the outcome to an exit code.

Exit codes: 0 full marks (automatic checks), 1 points lost, 2 could not grade, 3 the grader
itself failed (a bug: its traceback is printed, not hidden). A folder is
graded as a batch (``grader.batch``); ``grade rescore DIR`` re-scores a graded batch (or one
grading's output folder) and merges the TA's marks; ``grade mark DIR`` serves the page where a
TA marks the written answers (``grader.marking``); ``grade gradescope`` builds a Gradescope
autograder bundle and ``grade export DIR`` fills an LMS's gradebook file (``grader.export``).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from .errors import GradingError
from .results import EXIT_NOT_GRADED

__all__ = ["main", "build_parser", "build_rescore_parser", "build_gradescope_parser",
           "build_export_parser", "build_mark_parser"]

PROFILES = ("structure", "quick", "full")
#: the grader itself failed: not the submission's doing, and not to be read as "points lost"
EXIT_GRADER_FAILED = 3


def _positive(kind):
    """An argparse type: a number of ``kind`` above zero (a limit of 0 s, or -1 workers, is a
    mistake to say, not a run to start)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a {'whole ' * (kind is int)}number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} is not above zero")
        return value
    return parse


#: what ``grade`` does, one line each: ``grade --help`` lists them (README says the same); a
#: subcommand is the first argument, with its own ``--help``
COMMANDS = (
    ("grade FILE", "grade a notebook (.ipynb) or a module (.py)"),
    ("grade FOLDER", "grade every submission in a folder (a batch)"),
    ("grade rescore DIR", "re-score a graded batch with an edited rubric"),
    ("grade mark DIR", "mark the written answers of a graded batch in the browser"),
    ("grade gradescope", "build a Gradescope autograder bundle"),
    ("grade export DIR --to LMS", "fill a Canvas or Moodle gradebook file"),
)
#: how long each profile takes on 2 CPU cores, as README's table says
PROFILE_HELP = ("how much to train: structure (builders and a token training run: about a "
                "minute), quick (about 2.5 minutes; the default), full (the exercise as written: "
                "hours on CPU, for GPUs)")


def _commands_text() -> str:
    width = max(len(usage) for usage, _ in COMMANDS)
    return "\n".join(f"  {usage:<{width}}  {what}" for usage, what in COMMANDS) + \
        "\n\nEach subcommand has its own --help: grade rescore --help."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Grade Exercise 8 (recurrent neural networks) submissions.\n\n"
                    + _commands_text(),
        epilog="Exit codes: 0 full marks, 1 points lost, 2 could not grade, 3 the grader "
               "failed.")
    parser.add_argument("path", type=Path, help="a submission (.ipynb or .py), or a folder "
                                                 "of submissions to grade as a batch")
    parser.add_argument("--profile", choices=PROFILES, default="quick", help=PROFILE_HELP)
    parser.add_argument("--rubric", type=Path, help="rubric YAML (default: the bundled ex8.yaml)")
    parser.add_argument("--out", type=Path,
                        help="output folder (default: <submission>_graded next to it)")
    parser.add_argument("--data", help="IMDB source: imdb.npz, an aclImdb folder or tarball "
                                       "(default: $EX8_IMDB, else Keras' download)")
    parser.add_argument("--timeout", type=_positive(float), help="seconds for the whole run")
    parser.add_argument("--cell-timeout", type=_positive(float), help="seconds per cell")
    batch = parser.add_argument_group("a folder of submissions")
    batch.add_argument("--workers", type=_positive(int),
                       help="submissions graded at once on this machine "
                            "(default: what the cores and memory allow)")
    batch.add_argument("--threads", type=_positive(int),
                       help="threads per kernel (default: the cores "
                            "shared among the workers)")
    batch.add_argument("--scheduler", metavar="ADDRESS",
                       help="grade on a Dask cluster (e.g. tcp://host:8786) instead")
    batch.add_argument("--force", action="store_true",
                       help="grade again what is unchanged since the last run")
    return parser


def _graded_folder(parser: argparse.ArgumentParser, rubric: str) -> None:
    parser.add_argument("path", type=Path, help="a graded batch's output folder (or its "
                                                "submissions folder), or one grading's output "
                                                "folder")
    parser.add_argument("--rubric", type=Path, help=f"{rubric} (default: the bundled ex8.yaml)")


def build_rescore_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade rescore", description="Apply an edited rubric (points, thresholds, "
        "visibility) and the TA's marks of the written answers (marks.csv) to a graded batch, "
        "or to one grading's output folder, without running any notebook again.")
    _graded_folder(parser, "the edited rubric")
    parser.add_argument("--out", type=Path, help="the batch's output folder, when PATH is the "
                                                 "submissions folder and it is not the default")
    return parser


def build_mark_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade mark", description="Mark the written answers in the browser: a page on "
        "127.0.0.1 (its address holds a random token), one question at a time, every student's "
        "answer with a points field and a comment, saved into DIR/marks.csv as they are typed. "
        "Then `grade rescore DIR` merges the marks into the reports and the gradebook.")
    _graded_folder(parser, "the rubric the folder was graded with")
    parser.add_argument("--port", type=int, default=0,
                        help="the port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--no-browser", action="store_true",
                        help="print the address without opening a browser")
    parser.add_argument("--by", metavar="NAME",
                        help="who marks, recorded with each mark (default: the login name)")
    return parser


def build_gradescope_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade gradescope", description="Build a Gradescope autograder bundle (setup.sh, "
        "run_autograder, this grader's source, the rubric and the profile).")
    parser.add_argument("--out", type=Path, default=Path("autograder.zip"),
                        help="the zip to write (default: autograder.zip)")
    parser.add_argument("--profile", choices=PROFILES, default="quick",
                        help="what each submission runs on Gradescope (default: quick)")
    parser.add_argument("--rubric", type=Path, help="rubric YAML (default: the bundled ex8.yaml)")
    parser.add_argument("--data", help="IMDB source to put in the bundle (default: none; "
                                       "Gradescope's setup then fetches Keras' imdb.npz)")
    parser.add_argument("--timeout", type=_positive(float),
                        help="seconds per submission (default: the profile's, at most 1800)")
    return parser


def build_export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade export", description="Fill an LMS's gradebook file with a graded batch's "
        "totals (and feedback comments where the LMS has a column for them).",
        epilog="Exit codes: 0 every student matched, 1 some found on one side only (listed), "
               "2 a file is not what it should be.")
    parser.add_argument("path", type=Path, help="the graded batch's output folder")
    parser.add_argument("--to", required=True, choices=("canvas", "moodle"), dest="lms")
    parser.add_argument("--template", required=True, type=Path,
                        help="the LMS's own file: Canvas' gradebook export, or Moodle's "
                             "grading worksheet")
    parser.add_argument("--out", type=Path,
                        help="the filled copy (default: <folder>_<lms>.csv beside the folder)")
    parser.add_argument("--column", help="Canvas: the assignment column (default: the only one "
                                         "naming ex8 or Exercise 8); Moodle: the grade column "
                                         "(default: Grade)")
    parser.add_argument("--encoding", help="the file's encoding when it is not UTF-8")
    return parser


def _gradescope(args) -> int:
    from .export.gradescope import GRADESCOPE_TIMEOUT, build_bundle

    s = build_bundle(args.out, profile=args.profile, rubric=args.rubric, data=args.data,
                     timeout=args.timeout)
    data = s.data or "none (setup.sh fetches Keras' imdb.npz)"
    print(f"autograder: {s.out} ({s.profile} profile; IMDB data: {data})")
    print(f"On Gradescope: Autograder Points {s.automatic:g}; the written answers "
          f"({s.manual:g} points) as a manually graded question; the bonus's {s.bonus:g} points "
          "count as extra credit above the autograder points.")
    print(f"Autograder settings: timeout {GRADESCOPE_TIMEOUT // 60} minutes (each submission "
          f"stops after {s.timeout:g} s), 4 GB of memory, 2 CPUs.")
    return 0


def _export(args) -> int:
    from .export.lms import export_gradebook

    s = export_gradebook(args.path, args.lms, args.template, out=args.out, column=args.column,
                         encoding=args.encoding)
    lms = s.lms.capitalize()
    comments = " and feedback comments" if s.comments else ""
    print(f"{lms}: {len(s.filled)} totals{comments} in column {s.column!r}: {s.out}")
    for title, entries in (
            (f"only in the batch (no row in the {lms} file)", s.only_batch),
            (f"only in the {lms} file (nothing graded)", s.only_lms),
            ("left as they were (no total)", s.no_total),
            (f"left as they were ({lms})", s.kept)):
        if entries:
            print(f"{title}: {len(entries)}")
            for key, what in entries:
                print(f"  {key}" + (f": {what}" if what else ""))
    if s.to_be_marked:
        print(f"totals without the written answers still to be marked (grade mark, then grade "
              f"rescore and export again): {len(s.to_be_marked)}")
        for key, points in s.to_be_marked:
            print(f"  {key}: {points:g} points to be marked")
    if s.over_maximum:
        print(f"above the file's maximum of {s.maximum:g}"
              + (" (Moodle's import skips these)" if s.lms == "moodle" else "")
              + ": " + ", ".join(f"{k} ({v:g})" for k, v in s.over_maximum))
    return 1 if s.unmatched else 0


def _mark(args) -> int:
    from .marking import open_folder
    from .marking.server import serve

    folder = open_folder(args.path, args.rubric)
    serve(folder, port=args.port, open_browser=not args.no_browser, marked_by=args.by)
    return 0


def _rescore_one(args) -> int:
    """``grade rescore`` of one grading's output folder."""
    from .pipeline import rescore
    from .report import summary_lines, use_colour
    from .rubric import load_rubric

    result = rescore(args.path, load_rubric(args.rubric))
    for line in summary_lines(result, colour=use_colour(sys.stdout)):
        print(line)
    print(f"feedback: {args.path / 'feedback.html'}")
    return 0


def _batch(args, rescore: bool) -> int:
    from . import batch

    if rescore:
        summary = batch.rescore_folder(args.path, rubric=args.rubric, out=args.out,
                                       progress=sys.stdout)
    else:
        summary = batch.grade_folder(
            args.path, out=args.out, profile=args.profile, rubric=args.rubric, data=args.data,
            timeout=args.timeout, cell_timeout=args.cell_timeout, workers=args.workers,
            threads=args.threads, scheduler=args.scheduler, force=args.force,
            progress=sys.stdout)
        print(summary.counts())
    print(f"gradebook: {summary.out / batch.GRADEBOOK}")
    print(f"class summary: {summary.out / batch.INDEX}")
    return 1 if summary.errors else 0


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except Exception:  # noqa: BLE001 - a bug of ours: shown whole, with an exit code of its own
        traceback.print_exc()
        print("grade: the grader itself failed (the traceback above); this is a bug in the "
              "grader, not a problem of the submission.", file=sys.stderr)
        return EXIT_GRADER_FAILED


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = {"gradescope": (build_gradescope_parser, _gradescope),
                "export": (build_export_parser, _export), "mark": (build_mark_parser, _mark)}
    if argv and argv[0] in commands:
        build, run = commands[argv[0]]
        args = build().parse_args(argv[1:])
        try:
            return run(args)
        except GradingError as err:
            print(f"grade: {err}", file=sys.stderr)
            return err.exit_code
    rescore = bool(argv) and argv[0] == "rescore"
    args = (build_rescore_parser().parse_args(argv[1:]) if rescore
            else build_parser().parse_args(argv))
    if rescore and (args.path / "result.json").is_file() and \
            not (args.path / "gradebook.csv").is_file():
        try:  # one grading's output folder, not a batch's
            return _rescore_one(args)
        except GradingError as err:
            print(f"grade: {err}", file=sys.stderr)
            return err.exit_code
    if not rescore and not args.path.exists():  # nothing to grade: nothing is written either
        print(f"grade: {args.path} does not exist.", file=sys.stderr)
        return EXIT_NOT_GRADED
    if rescore or args.path.is_dir():
        try:
            return _batch(args, rescore)
        except GradingError as err:
            print(f"grade: {err}", file=sys.stderr)
            return err.exit_code
        except KeyboardInterrupt:
            print("grade: interrupted; run the same command again to grade what is missing.",
                  file=sys.stderr)
            return 130
    from .pipeline import default_out_dir, grade_submission
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
    page = (args.out or default_out_dir(args.path)) / "feedback.html"
    if result.status != "graded":
        print(f"grade: {result.reason}", file=sys.stderr)
        print(f"feedback: {page}")  # it says the same, for the record
        return EXIT_NOT_GRADED
    for line in summary_lines(result, colour=use_colour(sys.stdout)):
        print(line)
    print(f"feedback: {page}")
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
