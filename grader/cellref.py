"""How feedback names a cell so that a student can find it in Jupyter, which shows no cell
numbers: by its number among the code cells and its first line (and the heading above it when
another code cell starts with the same line). ``submission.cell_places`` finds these."""

from __future__ import annotations

__all__ = ["HOW_COUNTED", "cell_ref", "place"]

#: said once on the feedback page
HOW_COUNTED = ("Cells are named so that you can find them in Jupyter: “code cell 12” is the "
               "12th code cell from the top (markdown cells are not counted), followed by its "
               "first line, and by the heading above it when another code cell starts with the "
               "same line.")
#: a first line or heading longer than this is cut (with …); enough to search for in Jupyter
MAX_LINE = 48


def cell_ref(code_cell: int | None, first_line: str | None, heading: str | None = None, *,
             cell: int | None = None) -> str:
    """``code cell 12 (“# YOUR CODE HERE”, under “1.3 LSTM model”)``. Without a code cell
    number (a result of an earlier version, which counted every cell): ``cell 18 (counting
    every cell, markdown too)``."""
    if code_cell is None:
        return f"cell {cell} (counting every cell, markdown too)" if cell is not None else \
            "a cell"
    line = _cut(first_line or "")
    quoted = f"“{line}”" if line else "empty"
    under = f", under “{_cut(heading)}”" if heading else ""
    return f"code cell {code_cell} ({quoted}{under})"


def _cut(text: str) -> str:
    """At most ``MAX_LINE`` characters, cut after a whole word where there is one."""
    if len(text) <= MAX_LINE:
        return text
    cut = text[:MAX_LINE - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut[MAX_LINE // 2:] else cut).rstrip() + "…"


def place(item) -> str:
    """The cell of a ``results.CellError`` or ``results.MigrationHint``, as ``cell_ref``
    names it."""
    return cell_ref(item.code_cell, item.first_line, item.heading, cell=item.cell)
