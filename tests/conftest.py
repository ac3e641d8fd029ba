"""Shared fixtures: the real IMDB source, a private data cache, and submission variants."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_NB = ROOT / "reference" / "ex8_solution.ipynb"
TEMPLATE_NB = ROOT / "student_template" / "ex8.ipynb"
DEFAULT_IMDB = ROOT.parent / "shared" / "data" / "aclImdb_labeled.tar.gz"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def pytest_sessionfinish(session, exitstatus):
    # A run that collected nothing must fail, not pass quietly as "no tests ran" (exit 5).
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def imdb_source() -> Path:
    """The labeled IMDB reviews (raw text, official layout): $EX8_IMDB or ../shared/data."""
    path = Path(os.environ.get("EX8_IMDB") or DEFAULT_IMDB)
    if not path.exists():
        pytest.fail(f"The IMDB data is not at {path}; set EX8_IMDB. Tests run on real data only.")
    return path


@pytest.fixture(autouse=True)
def _data_for_tests_that_need_it(request):
    """Tests that start kernels, train, or read IMDB (markers kernel, slow, data) get the real
    data and its warm cache; the fast tier (``tox -e fast``) needs neither."""
    if any(request.node.get_closest_marker(m) for m in ("kernel", "slow", "data")):
        request.getfixturevalue("_data_cache")


@pytest.fixture(scope="session")
def _data_cache(tmp_path_factory, imdb_source):
    """A cache shared by the whole session, warmed once (tokenising takes ~20 s)."""
    cache = os.environ.get("EX8_CACHE") or str(tmp_path_factory.mktemp("ex8-cache"))
    old = {k: os.environ.get(k) for k in ("EX8_CACHE", "EX8_IMDB")}
    os.environ["EX8_CACHE"] = cache
    os.environ["EX8_IMDB"] = str(imdb_source)
    from grader.data import ensure_cache

    ensure_cache(str(imdb_source))
    yield Path(cache)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def reference_structure(tmp_path_factory):
    """The reference graded once in the structure profile: ``(result, output folder)``."""
    from grader.pipeline import grade_submission

    out = tmp_path_factory.mktemp("reference_structure") / "graded"
    return grade_submission(REFERENCE_NB, profile="structure", out=out), out


@pytest.fixture(scope="session")
def template_structure(tmp_path_factory):
    """The student template graded once in the structure profile: ``(result, output folder)``."""
    from grader.pipeline import grade_submission

    out = tmp_path_factory.mktemp("template_structure") / "graded"
    return grade_submission(TEMPLATE_NB, profile="structure", out=out), out


def half_done(dest: Path, tasks=("task2", "task3")) -> Path:
    """The reference with the code cells of ``tasks`` back to the template's (builders and
    training cells that raise NotImplementedError): a notebook half done."""
    nb = nbformat.read(REFERENCE_NB, as_version=4)
    template = nbformat.read(TEMPLATE_NB, as_version=4)
    assert len(nb.cells) == len(template.cells)
    for i, cell in enumerate(template.cells):
        if cell.cell_type == "code" and cell.metadata.get("ex8", {}).get("task") in tasks:
            nb.cells[i] = cell
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest


@pytest.fixture(scope="session")
def half_done_structure(tmp_path_factory):
    """``half_done`` graded once in the structure profile: ``(result, output folder)``."""
    from grader.pipeline import grade_submission

    folder = tmp_path_factory.mktemp("half_done_structure")
    path = half_done(folder / "half_done_ex8.ipynb")
    return grade_submission(path, profile="structure", out=folder / "graded"), folder / "graded"


def variant(base: Path, dest: Path, *edits: tuple[str, ...]) -> Path:
    """A copy of a notebook with text edits, each applied exactly once.

    An edit is ``(old, new)``, or ``(anchor, old, new)`` to edit only the cell containing
    ``anchor`` (when ``old`` occurs in several cells).
    """
    nb = nbformat.read(base, as_version=4)
    for edit in edits:
        anchor, old, new = edit if len(edit) == 3 else (edit[0], *edit)
        hits = [c for c in nb.cells if anchor in c.source and old in c.source]
        assert len(hits) == 1, f"{old!r} is in {len(hits)} cells of {base.name}, not 1"
        assert hits[0].source.count(old) == 1, f"{old!r} is more than once in its cell"
        hits[0].source = hits[0].source.replace(old, new)
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest


def assert_one_sentence(text: str) -> None:
    """A message for a person: one line, one sentence, ending with a full stop."""
    import re

    assert "\n" not in text, text
    assert text.endswith("."), text
    assert not re.search(r"[.!?]\s+[A-Z]", text[:-1]), f"more than one sentence: {text}"
