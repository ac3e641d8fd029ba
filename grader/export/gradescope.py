"""A Gradescope autograder bundle of this grader, and what runs inside it.

``build_bundle`` writes the zip Gradescope asks for (its "Autograder Specifications"):
``setup.sh`` and ``run_autograder`` at the root, beside the grader's source, the rubric, the
chosen profile (``ex8-autograder.json``) and, when given, the IMDB data. On Gradescope,
``setup.sh`` installs everything once; ``run_autograder`` calls ``run`` for each submission,
which grades the one notebook (or module) in ``submission/`` and always leaves a
``results/results.json``, even when the grader itself fails.

``EX8_AUTOGRADER_ROOT`` moves ``/autograder`` elsewhere (a test lays out ``source/``,
``submission/`` and ``results/`` in a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import tomllib
import traceback
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import GradingError, InputError

__all__ = ["build_bundle", "BundleSummary", "run", "setup", "find_submission", "CONFIG",
           "GRADESCOPE_TIMEOUT"]

CONFIG = "ex8-autograder.json"
PACKAGE = "ex8-grader"  # the folder of the grader's source in the bundle
#: Gradescope's longest autograder run is 40 minutes ("Troubleshooting"); the grader stops
#: sooner, so that it still writes results.json for what the notebook did by then
GRADESCOPE_TIMEOUT = 40 * 60
DEFAULT_TIMEOUT = 30 * 60
_SCRIPTS = ("setup.sh", "run_autograder")
_SKIP = re.compile(r"(^|/)(__pycache__|[^/]*\.egg-info|\.[^/]*)(/|$)|\.py[co]$")
_STORED = (".gz", ".tgz", ".npz", ".zip", ".bz2", ".xz")  # compressed already
_EX8 = re.compile(r"ex(?:ercise)?[ _-]?0?8", re.I)
_IGNORED_DIRS = {"__MACOSX", ".ipynb_checkpoints"}


@dataclass(frozen=True)
class BundleSummary:
    out: Path
    profile: str
    timeout: float
    automatic: float  # the automatic checks of the tasks but the bonus, in this profile
    manual: float  # the written answers a TA marks (a manually graded question on Gradescope)
    bonus: float  # the bonus task's checks (extra credit above the autograder points)
    data: str | None  # the data file or folder in the bundle, or None (Keras' download)


# --------------------------------------------------------------------------- the bundle


def _project_root() -> Path:
    """The source checkout this grader runs from; the bundle carries its source."""
    root = Path(__file__).resolve().parents[2]
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
        if project["project"]["name"] == PACKAGE:
            return root
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        pass
    raise InputError("The Gradescope bundle carries the grader's source, and this grader is "
                     "not installed from a source checkout; run it from one (pip install -e .).")


def _source_files(root: Path):
    """(path, name in the bundle) of what `pip install` needs: pyproject.toml, the readme
    it names and the packages it lists, without caches."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    tops = sorted({p.split(".")[0] for p in project["tool"]["setuptools"]["packages"]})
    yield root / "pyproject.toml", "pyproject.toml"
    readme = project["project"].get("readme")
    if isinstance(readme, str):
        yield root / readme, readme
    for top in tops:
        for path in sorted((root / top).rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and not _SKIP.search(rel):
                yield path, rel


def _points(rubric, profile: str) -> tuple[float, float, float]:
    """(automatic, manual, bonus) points at stake in ``profile``."""
    automatic = manual = bonus = 0.0
    for task in rubric.tasks:
        for check in task.checks:
            if not check.applies_to(profile):
                continue
            if task.id == "bonus":
                bonus += check.points
            elif check.check == "manual":
                manual += check.points
            else:
                automatic += check.points
    return automatic, manual, bonus


def _add(zf: zipfile.ZipFile, path: Path, name: str, mode: int | None = None) -> None:
    info = zipfile.ZipInfo.from_file(path, name)
    info.compress_type = zipfile.ZIP_STORED if name.endswith(_STORED) else zipfile.ZIP_DEFLATED
    if mode is not None:
        info.external_attr = (0o100000 | mode) << 16
    with open(path, "rb") as src, zf.open(info, "w") as dst:
        while block := src.read(1 << 20):
            dst.write(block)


def build_bundle(out: str | Path = "autograder.zip", *, profile: str = "quick",
                 rubric: str | Path | None = None, data: str | Path | None = None,
                 timeout: float | None = None) -> BundleSummary:
    """Write Gradescope's autograder zip to ``out``; raise ``GradingError`` on a bad input."""
    from ..data import resolve_source
    from ..rubric import load_rubric

    rub = load_rubric(rubric)
    prof = rub.profile(profile)
    timeout = timeout or min(prof.timeout, DEFAULT_TIMEOUT)
    if timeout >= GRADESCOPE_TIMEOUT:
        raise InputError(f"A timeout of {timeout:g} s leaves no time to report within "
                         f"Gradescope's {GRADESCOPE_TIMEOUT // 60} minutes; give less.")
    source = resolve_source(data) if data is not None else None
    root = _project_root()
    out = Path(out)
    data_name = None
    config = {"profile": profile, "rubric": "rubric.yaml", "timeout": timeout, "data": None}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w") as zf:
            for script in _SCRIPTS:
                with resources.as_file(resources.files(__package__) / "autograder" /
                                       script) as path:
                    _add(zf, path, script, 0o755)
            _add(zf, rub.path, "rubric.yaml")
            for path, name in _source_files(root):
                _add(zf, path, f"{PACKAGE}/{name}")
            if source is not None:
                data_name = _add_data(zf, source.file)
                config["data"] = data_name
            zf.writestr(CONFIG, json.dumps(config, indent=1) + "\n")
    except OSError as exc:
        out.unlink(missing_ok=True)
        raise InputError(f"The bundle {out} cannot be written ({exc.strerror or exc}).",
                         path=str(out)) from exc
    automatic, manual, bonus = _points(rub, profile)
    return BundleSummary(out=out, profile=profile, timeout=timeout, automatic=automatic,
                         manual=manual, bonus=bonus, data=data_name)


def _add_data(zf: zipfile.ZipFile, path: Path) -> str:
    """The data source under ``data/``: a file (with imdb.npz's word index, when it has one)
    or an aclImdb folder. Returns its name in the bundle."""
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.is_file():
                _add(zf, file, f"data/{path.name}/{file.relative_to(path).as_posix()}")
        return f"data/{path.name}"
    _add(zf, path, f"data/{path.name}")
    index = path.with_name("imdb_word_index.json")
    if path.suffix == ".npz" and index.is_file():
        _add(zf, index, f"data/{index.name}")
    return f"data/{path.name}"


# --------------------------------------------------------------------------- on Gradescope


def _config(root: Path) -> dict:
    path = root / "source" / CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        if not (isinstance(config.get("profile"), str) and isinstance(config.get("rubric"), str)
                and isinstance(config.get("timeout"), (int, float))):
            raise ValueError
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(f"The bundle's {path} is missing or broken; build the bundle again "
                         "with `grade gradescope`.", path=str(path)) from exc
    return config


def _environment(config: dict, root: Path) -> None:
    """The bundled data as the grader's IMDB source; the cache beside it unless one is set."""
    source = root / "source"
    if config.get("data"):
        os.environ["EX8_IMDB"] = str(source / config["data"])
    os.environ.setdefault("EX8_CACHE", str(source / "ex8-cache"))


def find_submission(folder: Path) -> Path | str:
    """The submission in Gradescope's ``submission/`` folder (subfolders too, as a zip upload
    or a repository gives them): the one notebook, else the one ``.py`` module; among several,
    the one whose name says ex8. Otherwise a sentence for the student saying what was found."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(
        part.startswith(".") or part in _IGNORED_DIRS for part in p.relative_to(folder).parts))
    for suffix in (".ipynb", ".py"):
        found = [p for p in files if p.suffix == suffix]
        if len(found) > 1:
            found = [p for p in found if _EX8.search(p.stem)] or found
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(p.relative_to(folder).as_posix() for p in found[:10])
            more = f" and {len(found) - 10} more" if len(found) > 10 else ""
            return (f"The submission holds {len(found)} {suffix} files ({names}{more}) and none "
                    f"alone is named for Exercise 8; submit one notebook, e.g. ex8.ipynb.")
    what = f"only {', '.join(p.name for p in files[:5])}" if files else "no files"
    return (f"The submission holds {what}: no notebook (.ipynb) or Python module (.py) to "
            "grade; submit your ex8.ipynb.")


def run(root: str | Path) -> int:
    """Grade the submission under ``root`` and write ``root/results/results.json``."""
    root = Path(root)
    results = root / "results" / "results.json"
    started = time.monotonic()
    try:
        payload = _grade(root)
    except Exception:  # noqa: BLE001 - the grader failed: Gradescope still needs a results.json
        traceback.print_exc()
        payload = {"score": 0, "execution_time": round(time.monotonic() - started),
                   "output": "The autograder itself failed on this submission (not your "
                             "notebook's doing); the course staff can see why.",
                   "output_format": "text", "tests": []}
    results.parent.mkdir(parents=True, exist_ok=True)
    tmp = results.with_name(".results.json.tmp")
    tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    os.replace(tmp, results)
    print(f"score {payload['score']:g}; {results}")
    return 0


def _grade(root: Path) -> dict:
    from ..results import SubmissionResult, to_gradescope

    config = _config(root)
    _environment(config, root)
    found = find_submission(root / "submission")
    if isinstance(found, str):
        result = SubmissionResult(submission="submission/", profile=config["profile"],
                                  status="not_graded", reason=found, reason_kind="InputError")
    else:
        from ..pipeline import grade_submission

        # run beside the file, so that messages name "ex8.ipynb", not a path of Gradescope's
        os.chdir(found.parent)
        result = grade_submission(Path(found.name), profile=config["profile"],
                                  rubric=root / "source" / config["rubric"],
                                  out=root / "graded", timeout=config["timeout"])
    payload = to_gradescope(result)
    payload["stdout_visibility"] = "hidden"  # the grader's log is for the course staff
    payload["extra_data"] = {**payload.get("extra_data", {}), "profile": config["profile"],
                             "submission": found.name if isinstance(found, Path) else None}
    return payload


def setup(root: str | Path) -> int:
    """At image build time: tokenise the IMDB source into the cache once (Keras' download when
    the bundle has no data), and say which confinement the kernel will get."""
    import shutil

    from ..data import ensure_cache

    root = Path(root)
    config = _config(root)
    _environment(config, root)
    try:
        src, cache = ensure_cache()
    except GradingError as err:
        print(f"setup: {err}", file=sys.stderr)
        return 2
    print(f"IMDB source: {src.describe()}; cache: {cache}")
    if shutil.which("bwrap") is None:
        print("bubblewrap is not installed: kernels run without its filesystem view.")
    return 0


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.export.gradescope",
                                     description="What the bundle's scripts call.")
    parser.add_argument("step", choices=("setup", "run"))
    parser.add_argument("--root", type=Path,
                        default=Path(os.environ.get("EX8_AUTOGRADER_ROOT", "/autograder")))
    args = parser.parse_args(argv)
    return setup(args.root) if args.step == "setup" else run(args.root)


if __name__ == "__main__":
    sys.exit(_main())
