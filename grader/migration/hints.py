"""The hints of a run: every finding, joined with the errors the run recorded."""

from __future__ import annotations

import re
from pathlib import Path

from ..results import CellError, MigrationHint
from ..submission import cell_numbers, cell_places
from .rules import _ANSI, _MAX_CODE, _NUMPY_ALIASES, RULES, Finding
from .scan import _apply, _numpy_names, scan_source

__all__ = ["find_hints"]

# --------------------------------------------------------------------------- errors


_FRAME = re.compile(r"^\s*(?:Cell In\[(\d+)\], line (\d+)|File [^\n]*?\bsubmission\.py:(\d+))",
                    re.M)


def _classify(err: CellError) -> tuple[str, str] | None:
    """The rule whose Keras 2 spelling raises this error, and the name it names."""
    for rule in RULES.values():
        if rule.error and err.ename == rule.error[0]:
            m = re.search(rule.error[1], err.evalue)
            if m:
                return rule.id, (m.groupdict().get("name") or "")
    return None


def _full_traceback(notebook, err: CellError, places: dict[int, int]) -> str:
    """The whole traceback from the executed notebook (the recorded error keeps only a tail);
    ``places`` leads from a cell's number to its place in ``notebook``."""
    if err.cell in places:
        for output in notebook.cells[places[err.cell]].get("outputs", []):
            if output.get("output_type") == "error":
                return _ANSI.sub("", "\n".join(output.get("traceback", [])))
    return err.traceback


def _error_frame(traceback: str, counts: dict[int, int]) -> tuple[int | None, int] | None:
    """The innermost frame in the submission: (cell, line), or (None, line) in a module."""
    frames = _FRAME.findall(traceback)
    for count, line, module_line in reversed(frames):
        if module_line:
            return None, int(module_line)
        if int(count) in counts:
            return counts[int(count)], int(line)
    return None


# --------------------------------------------------------------------------- the hints


def _error_text(err: CellError) -> str:
    first = (err.evalue.splitlines() or [""])[0]
    first = re.sub(r"\s*\([^()]*\.py, line \d+\)$", "", first)  # IPython's name for the cell
    return f"{err.ename}: {first}"[:300]



def _fix(finding: Finding, lines: list[str]) -> str:
    if finding.fix:
        fix = finding.fix
    elif finding.edits:
        fix = _apply(lines[finding.line - 1], finding.edits).strip() or \
            "(remove this line)"
    else:
        fix = RULES[finding.rule].fix
    return fix


def _message(rule: str, name: str) -> str:
    template = RULES[rule].message
    if rule == "numpy_alias":
        return template.format(name=name or "float", builtin=_NUMPY_ALIASES.get(name, name))
    if "{name}" in template:
        default = {"input_shape": "input_shape"}.get(rule, "keras.layers.convolutional")
        return template.format(name=name or default)
    return template


def _quote(lines: list[str], line: int | None) -> str:
    if line is None or not 0 < line <= len(lines):
        return ""
    text = lines[line - 1].strip()
    return text if len(text) <= _MAX_CODE else text[:_MAX_CODE - 3] + "..."


def find_hints(notebook, errors=(), owners=(), *, module: Path | None = None
               ) -> list[MigrationHint]:
    """Hints for an executed notebook: from its code cells, and from its recorded errors.

    ``notebook`` is the notebook as the kernel ran it, so execution counts lead from a
    traceback to its cell; cells are numbered as in the student's notebook (``cell_numbers``,
    like ``CellError.cell``), and the grader's own cells (injected parameters, harvest) are
    skipped. ``owners[i]`` is the task of the cell at place ``i`` of ``notebook``. ``module``
    is a ``.py`` submission, whose lines are read as well (cell ``None``).
    """
    numbers = cell_numbers(notebook)
    places = {number: i for i, number in enumerate(numbers) if number is not None}
    jupyter = {p.cell: p for p in cell_places(notebook) if p is not None}
    units: dict[int | None, list[str]] = {}
    for number, index in places.items():
        if notebook.cells[index].cell_type == "code":
            units[number] = notebook.cells[index].source.splitlines()
    if module is not None:
        units[None] = Path(module).read_text(encoding="utf-8", errors="replace").splitlines()
    names = _numpy_names("\n".join(lines) for lines in units.values())
    findings = {unit: scan_source("\n".join(lines), names) for unit, lines in units.items()}
    counts = {notebook.cells[i].get("execution_count"): number for number, i in places.items()
              if notebook.cells[i].cell_type == "code" and notebook.cells[i].get("execution_count")}

    caused: dict[int, list[CellError]] = {}  # id of a finding -> the errors it raised
    for err in errors:
        kind = _classify(err)
        if kind is None:
            continue
        rule, name = kind
        frame = _error_frame(_full_traceback(notebook, err, places), counts)
        unit, line = frame if frame else (err.cell, None)
        candidates = [f for f in findings.get(unit, []) if f.rule == rule and
                      (line is None or f.line <= line <= f.end_line)]
        if line is None and len(candidates) != 1:
            # no frame to tell which line raised it: only a name-matched, unique one will do
            candidates = [f for f in (x for fs in findings.values() for x in fs)
                          if f.rule == rule and name and f.name == name][:1]
        if not candidates and unit in units:
            # a Keras 2 spelling the scan did not see (built at run time): the error shows it
            f = Finding(rule, line or 0, line or 0, name=name)
            findings[unit].append(f)
            candidates = [f]
        for f in candidates[:1]:
            caused.setdefault(id(f), []).append(err)

    hints = []
    for unit, found in findings.items():
        lines = units[unit]
        for f in found:
            errs = caused.get(id(f), [])
            place = places.get(unit) if unit is not None else None
            task = owners[place] if place is not None and place < len(owners) else None
            shown = jupyter.get(unit) if unit is not None else None
            hints.append(MigrationHint(
                rule=f.rule, cell=unit, line=f.line or None, task=task,
                code=_quote(lines, f.line or None), message=_message(f.rule, f.name),
                fix=_fix(f, lines) if f.line else RULES[f.rule].fix,
                error=_error_text(errs[0]) if errs else None,
                # the student's cells: a grader's cell (None) is not one to name, nor sortable
                error_cells=tuple(sorted({e.cell for e in errs if e.cell is not None})),
                code_cell=shown.code_cell if shown else None,
                first_line=shown.first_line if shown else None,
                heading=shown.heading if shown else None))
    return sorted(hints, key=lambda h: (h.cell is not None, h.cell or 0, h.line or 0, h.rule))
