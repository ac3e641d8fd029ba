"""A CSV file changed in place: the cells set get new values, every other byte stays as it was.

An LMS reads back the file it exported, so its encoding, byte order mark, delimiter, quoting,
line endings, column order and the rows this grader does not fill must come back unchanged.
Python's ``csv`` module rewrites whole rows; here each cell keeps its span in the text, and
only the spans of changed cells are replaced.
"""

from __future__ import annotations

import codecs
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

__all__ = ["Sheet", "Row", "neutralise", "write_bytes_atomically"]

#: byte order marks, longest first (a UTF-32 mark begins like a UTF-16 one)
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))
_DELIMITERS = (",", ";", "\t")
#: what a spreadsheet reads as the start of a formula (OWASP "CSV injection"), with the
#: full-width forms some spreadsheets also accept
_FORMULA_START = tuple("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def neutralise(value: str) -> str:
    """``value`` as text a spreadsheet will not run: a leading formula character gets a ``'``
    in front (OWASP's advice for CSV injection); plain numbers are left alone."""
    if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


@dataclass(frozen=True)
class _Cell:
    start: int  # span of the cell's raw text (quotes included) in the decoded file
    end: int
    value: str


@dataclass(frozen=True)
class Row:
    """One record of the file: its cells and where its text ends (before the line break)."""

    number: int  # 1-based, as a spreadsheet numbers it
    cells: tuple[_Cell, ...]
    end: int

    def __getitem__(self, column: int) -> str:
        return self.cells[column].value if column < len(self.cells) else ""

    @property
    def blank(self) -> bool:
        return all(not c.value.strip() for c in self.cells)


class Sheet:
    """A CSV file read for editing; ``set`` cells, then ``render`` the file's new bytes."""

    def __init__(self, raw: bytes, name: str, encoding: str | None = None):
        self.name = name
        self.bom = b""
        if not encoding:  # the mark says, else UTF-8 (what Canvas and Moodle write)
            self.bom, encoding = next(((m, c) for m, c in _BOMS if raw.startswith(m)),
                                      (b"", "utf-8"))
        else:
            try:
                given = codecs.lookup(encoding).name
            except LookupError:
                raise InputError(f"There is no text encoding called {encoding!r}.",
                                 path=name) from None
            if given in ("utf-8", "utf-8-sig") and raw.startswith(codecs.BOM_UTF8):
                self.bom, encoding = codecs.BOM_UTF8, "utf-8"
        self.encoding: str = encoding
        try:
            self.text = raw[len(self.bom):].decode(encoding)
        except UnicodeDecodeError as exc:
            raise InputError(f"The file {name} is not {encoding} (byte {exc.start + 1} "
                             "cannot be read); give its encoding with --encoding (e.g. cp1252).",
                             path=name) from None
        self.delimiter = self._sniff()
        self.rows = self._parse()
        self._edits: dict[tuple[int, int], str] = {}

    @classmethod
    def read(cls, path: Path, encoding: str | None = None) -> "Sheet":
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InputError(f"The file {path} cannot be read ({exc.strerror or exc}).",
                             path=str(path)) from exc
        return cls(raw, str(path), encoding)

    def _sniff(self) -> str:
        """The delimiter: the candidate found most often in the first record, outside quotes
        (Canvas writes ``;`` for locales with a decimal comma; a re-saved file may use tabs)."""
        counts = dict.fromkeys(_DELIMITERS, 0)
        quoted = False
        for char in self.text:
            if char == '"':
                quoted = not quoted
            elif not quoted and char in "\r\n":
                break
            elif not quoted and char in counts:
                counts[char] += 1
        return max(_DELIMITERS, key=lambda d: counts[d])  # ties: the first, a comma

    def _parse(self) -> list[Row]:
        text, delim, n = self.text, self.delimiter, len(self.text)
        rows: list[Row] = []
        i = 0
        while i < n:
            cells = []
            while True:
                start = i
                if i < n and text[i] == '"':
                    i, value = self._quoted(i)
                else:
                    while i < n and text[i] not in (delim, "\r", "\n"):
                        i += 1
                    value = text[start:i]
                cells.append(_Cell(start, i, value))
                if i < n and text[i] == delim:
                    i += 1
                    continue
                break
            rows.append(Row(len(rows) + 1, tuple(cells), i))
            i += 2 if text.startswith("\r\n", i) else 1
        return rows

    def _quoted(self, i: int) -> tuple[int, str]:
        """A quoted cell from ``i`` (its opening quote): where it ends and its value."""
        text, n, parts = self.text, len(self.text), []
        i += 1
        while True:
            close = text.find('"', i)
            if close < 0:
                line = text.count("\n", 0, i) + 1
                raise InputError(f"The file {self.name} has a quote opened on line {line} that "
                                 "is never closed; it is not a CSV file an LMS wrote.",
                                 path=self.name)
            parts.append(text[i:close])
            if text.startswith('""', close):
                parts.append('"')
                i = close + 2
                continue
            i = close + 1
            break
        tail = i  # text after the closing quote, as spreadsheets keep it: `"a"b` reads `ab`
        while i < n and text[i] not in (self.delimiter, "\r", "\n"):
            i += 1
        return i, "".join(parts) + text[tail:i]

    def set(self, row: Row, column: int, value: str) -> None:
        """Give a cell a new value (neutralised against formulas, quoted as needed)."""
        self._edits[(row.number, column)] = neutralise(value)

    def _quote(self, value: str) -> str:
        if any(c in value for c in (self.delimiter, '"', "\r", "\n")) or \
                value != value.strip():
            return '"' + value.replace('"', '""') + '"'
        return value

    def render(self) -> bytes:
        """The file with the cells set, everything else as it was read."""
        splices = []  # (start, end, new text), in file order
        for (number, column), value in self._edits.items():
            row = self.rows[number - 1]
            if column < len(row.cells):
                cell = row.cells[column]
                splices.append((cell.start, cell.end, self._quote(value)))
            else:  # a short row: the missing cells come first, empty
                pad = self.delimiter * (column - len(row.cells) + 1)
                splices.append((row.end, row.end, pad + self._quote(value)))
        parts, at = [], 0
        for start, end, new in sorted(splices):
            parts += [self.text[at:start], new]
            at = end
        parts.append(self.text[at:])
        return self.bom + "".join(parts).encode(self.encoding, errors="replace")


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one, never half of it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
