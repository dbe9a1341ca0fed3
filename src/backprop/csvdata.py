"""CSV tables for the command line: a strict, clear reader and an atomic writer (csv + numpy only).

:func:`read_csv` turns a file into a :class:`Table` of text cells (one header line of column
names, then data rows) and refuses anything it cannot read faithfully with one clear message that
names the file, the line and what to do: an empty file, binary data, bytes that are not UTF-8,
a header with a missing or repeated column name, a row with the wrong number of fields, broken
quoting. :meth:`Table.numeric` then converts chosen columns to a float array and names the column
and line of any missing, non-numeric or infinite value.

Missing values are empty cells and the usual spellings ``NA``, ``N/A``, ``NaN``, ``null``,
``None`` and ``?`` (any case).
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ._validation import BackpropError

__all__ = ["Table", "read_csv", "parse_csv", "write_csv", "format_csv", "parse_number", "is_missing",
           "MISSING"]

MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
_DELIMITERS = (",", ";", "\t")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def is_missing(text: str) -> bool:
    """True for an empty cell or a usual spelling of "missing" (NA, NaN, null, ?...)."""
    return text.strip().lower() in MISSING


def parse_number(text: str) -> float | None:
    """The float a cell holds, or None if it is not a plain number (missing cells give None too).

    Accepts what Python's float() accepts except digit-group underscores ("1_000") and the
    missing-value spellings; "inf" and overflowing numbers come back as infinities.
    """
    text = text.strip()
    if "_" in text or text.lower() in MISSING:
        return None
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Table:
    """Text cells of a CSV file: ``columns`` (names), ``rows`` (tuples of cells, one per column)
    and ``lines`` (the 1-based file line where each row starts, for messages)."""

    source: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    lines: tuple[int, ...]

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    def where(self, i: int) -> str:
        """"`f.csv` line 7": where data row i (0-based) starts, for messages."""
        return f"{self.source} line {self.lines[i]}"

    def require(self, names: Sequence[str], argument: str) -> list[int]:
        """Positions of ``names``; one error naming every missing column and the argument."""
        missing = [n for n in names if n not in self.columns]
        if missing:
            what = "column" if len(missing) == 1 else "columns"
            hint = ""
            if any(parse_number(c) is not None for c in self.columns):
                hint = " (its first line looks like data: if the file has no header line, pass --no-header)"
            shown = ", ".join(map(repr, self.columns[:20])) + (", ..." if len(self.columns) > 20 else "")
            raise BackpropError(
                f"`{argument}`: {self.source} has no {what} {', '.join(map(repr, missing))}; "
                f"its columns are {shown}{hint}"
            )
        return [self.columns.index(n) for n in names]

    def strings(self, name: str, argument: str = "column", allow_missing: bool = False) -> list[str]:
        """The stripped cells of one column; a missing cell is an error unless ``allow_missing``."""
        (j,) = self.require([name], argument)
        values = [row[j].strip() for row in self.rows]
        if not allow_missing:
            for i, value in enumerate(values):
                if value.lower() in MISSING:
                    raise BackpropError(
                        f"{self.source} line {self.lines[i]}: column {name!r} ({argument}) has a "
                        f"missing value ({value!r}); fill it in or remove the row"
                    )
        return values

    def numeric(self, names: Sequence[str], argument: str = "features") -> np.ndarray:
        """Columns ``names`` as a float64 array of shape (n_rows, len(names)).

        A missing, non-numeric or infinite cell is an error naming the column and the line.
        """
        positions = self.require(names, argument)
        out = np.empty((self.n_rows, len(positions)), dtype=np.float64)
        for k, (name, j) in enumerate(zip(names, positions)):
            for i, row in enumerate(self.rows):
                value = parse_number(row[j])
                if value is None or not math.isfinite(value):
                    raise BackpropError(self._cell_problem(name, argument, row[j], i))
                out[i, k] = value
        return out

    def _cell_problem(self, name: str, argument: str, cell: str, i: int) -> str:
        where = f"{self.source} line {self.lines[i]}: column {name!r} ({argument})"
        text = cell.strip()
        if text.lower() in MISSING:
            return f"{where} must hold a number; got a missing value ({text!r}); fill it in or remove the row"
        if parse_number(text) is not None:
            return f"{where} must hold a finite number; got {text!r}; replace it or remove the row"
        shown = text if len(text) <= 40 else text[:37] + "..."
        return (
            f"{where} must be numeric; got {shown!r}; encode it as numbers, or leave the column "
            "out with --features"
        )


def _locate(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _decode(data: bytes, source: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BackpropError(f"{source} is UTF-16 text; save it as UTF-8 (or plain ASCII) CSV")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise BackpropError(
            f"{source} is not a CSV text file: it holds binary data (a NUL byte at byte offset {nul}, "
            f"line {_locate(data, nul)}); give a comma-separated text file"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise BackpropError(
            f"{source} is not valid UTF-8: byte 0x{bad} at byte offset {exc.start} (line "
            f"{_locate(data, exc.start)}); save the file as UTF-8"
        ) from None


def _sniff_delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])  # ties keep the earlier (comma first)
    return best if counts[best] else ","


def _column_names(header: list[str], source: str) -> tuple[str, ...]:
    names = [cell.strip() for cell in header]
    for j, name in enumerate(names, start=1):
        if not name:
            raise BackpropError(
                f"{source} line 1: column {j} of the header has no name; every column needs a name "
                f"(the header was {','.join(names)!r})"
            )
    seen: dict[str, int] = {}
    for j, name in enumerate(names, start=1):
        if name in seen:
            raise BackpropError(
                f"{source} line 1: column name {name!r} appears twice (columns {seen[name]} and {j}); "
                "column names must be unique"
            )
        seen[name] = j
    if all(parse_number(n) is not None for n in names):
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise BackpropError(
            f"{source} line 1 must be a header of column names; got only numbers ({shown}); add a "
            "header line, or pass --no-header to name the columns column1, column2, ..."
        )
    return tuple(names)


def parse_csv(text: str, source: str = "<data>", *, header: bool = True,
              delimiter: str | None = None) -> Table:
    """Parse CSV text (see :func:`read_csv`)."""
    if not text.strip():
        raise BackpropError(
            f"{source} is empty; expected a CSV file with a header line and at least one data row"
        )
    delimiter = _sniff_delimiter(text) if delimiter is None else delimiter
    if len(delimiter) != 1 or delimiter in "\"\r\n":
        raise BackpropError(f"`delimiter` must be one character other than a quote or newline; got {delimiter!r}")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    columns: tuple[str, ...] | None = None
    rows: list[tuple[str, ...]] = []
    lines: list[int] = []
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip() and (columns is None or len(columns) > 1)):
                continue  # a blank line
            if columns is None:
                if header:
                    columns = _column_names(row, source)
                    continue
                columns = tuple(f"column{j}" for j in range(1, len(row) + 1))
            if len(row) != len(columns):
                raise BackpropError(
                    f"{source} line {line}: expected {len(columns)} fields like the header but found "
                    f"{len(row)}; look for a stray {_DELIMITER_NAMES.get(delimiter, repr(delimiter))}, "
                    "a missing value or an unclosed quote"
                )
            rows.append(tuple(row))
            lines.append(line)
    except csv.Error as exc:
        raise BackpropError(f"{source} line {reader.line_num}: malformed CSV ({exc})") from None
    if columns is None or not rows:
        raise BackpropError(f"{source} has a header line but no data rows; expected at least one row")
    return Table(source=source, columns=columns, rows=tuple(rows), lines=tuple(lines))


def read_csv(path: str | os.PathLike, *, header: bool = True, delimiter: str | None = None) -> Table:
    """Read a CSV file into a :class:`Table` of text cells.

    - The first non-blank line is the header of column names (unique, non-empty); with
      ``header=False`` every line is data and the columns are named column1, column2, ...
    - ``delimiter`` None picks the one of comma, semicolon and tab found most often in the first
      line (comma on ties). Quoted fields may hold delimiters, quotes ("") and newlines.
    - UTF-8 (a byte-order mark is skipped); blank lines are skipped.
    """
    path = Path(path)
    source = f"`{path}`"
    if not path.exists():
        raise BackpropError(f"data file {source} does not exist; check the path")
    if not path.is_file():
        raise BackpropError(f"data file {source} is not a file (a folder?); give a CSV file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BackpropError(f"cannot read data file {source}: {exc.strerror or exc}") from None
    return parse_csv(_decode(data, source), source, header=header, delimiter=delimiter)


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))  # shortest text that reads back to the same float
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def format_csv(columns: Sequence[str], rows: Iterable[Sequence]) -> str:
    """CSV text (``\\n`` line ends) with a header; floats are written so they read back exactly."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(columns))
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()


def write_csv(path: str | os.PathLike | None, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Write a table atomically to ``path`` (never half-written), or to stdout when ``path`` is
    None or "-"."""
    text = format_csv(columns, rows)
    if path is None or str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from .io import atomic_write_bytes

    atomic_write_bytes(path, text.encode("utf-8"))
