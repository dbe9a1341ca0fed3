"""Reading data tables through pyarrow: CSV/TSV (plain or gzip/bz2/xz/zstd-compressed) and Parquet.

:func:`read_table` returns a :class:`Frame`: a ``pyarrow.Table`` with the file's name and what
is needed to name a cell in a message (the 1-based file line of a CSV row, the 1-based row of a
Parquet file). The parsing and the conversion to numbers are pyarrow's (multi-threaded C++); the
only Python loops here run over columns, never over cells, except on the error path, where the
file is scanned again with Python's ``csv`` module to find the line a message must name (pyarrow's
own errors do not say it).

Why pyarrow (and not pandas): it reads CSV several times faster than pandas' default engine,
reads Parquet and compressed files with the same call, and gives typed columns with a null mask
that convert to float64 numpy arrays without touching each cell. pandas is not needed.

Refused, with one line naming the file, the line (or row) and the column: an empty file, a header
without data rows, a header with an empty or repeated name, a row with the wrong number of
fields, bytes that are not UTF-8 (or UTF-16, or binary data), a Parquet file that is truncated or
not Parquet at all. Missing values are empty cells and the spellings of
:data:`backprop.csvdata.MISSING` in any case (``NA``, ``n/a``, ``NaN``, ``null``, ``None``, ``?``).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import itertools
import lzma
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ._validation import BackpropError
from .csvdata import MISSING, _column_names, _DELIMITER_NAMES, _sniff_delimiter, parse_number

__all__ = ["Frame", "read_table", "frame_from_cells", "release_memory", "null_spellings", "COMPRESSED", "PARQUET"]

COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zstd": "zstd"}
PARQUET = (".parquet", ".pq")
_NUMBER = r"^\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)\s*$"


def null_spellings() -> list[str]:
    """Every case variant of the missing-value spellings (pyarrow matches null values exactly)."""
    out = set()
    for word in MISSING:
        choices = [(c.lower(), c.upper()) if c.isalpha() else (c,) for c in word]
        out.update("".join(p) for p in itertools.product(*choices))
    return sorted(out)


def _open_text(path: Path, compression: str | None):
    """A text stream of the (decompressed) file, for sniffing and for locating errors."""
    if compression is None:
        raw = open(path, "rb")
    elif compression == "gzip":
        raw = gzip.open(path, "rb")
    elif compression == "bz2":
        raw = bz2.open(path, "rb")
    elif compression == "xz":
        raw = lzma.open(path, "rb")
    else:
        import pyarrow as pa

        raw = pa.input_stream(str(path), compression="zstd")
    return raw


def _head(path: Path, compression: str | None, size: int = 1 << 16) -> bytes:
    with _open_text(path, compression) as f:
        return f.read(size)


def _all_bytes(path: Path, compression: str | None) -> bytes:
    with _open_text(path, compression) as f:
        return f.read()


class Frame:
    """A table read by :func:`read_table`: ``table`` (pyarrow), ``source`` (the file, quoted for
    messages) and the map from a row to the line or row number a message shows."""

    def __init__(self, table, source: str, path: Path | None = None, kind: str = "csv",
                 header: bool = True, delimiter: str = ",", compression: str | None = None,
                 rows: np.ndarray | None = None, lines: Sequence[int] | None = None):
        self.table = table
        self.source = source
        self.path = path
        self.kind = kind
        self.header = header
        self.delimiter = delimiter
        self.compression = compression
        self.rows = rows  # original row of each row (None: all rows, in order)
        self._lines: list[int] | None = None if lines is None else list(lines)

    # -- shape and names ----------------------------------------------------------------------------
    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.table.column_names)

    @property
    def n_rows(self) -> int:
        return self.table.num_rows

    def require(self, names: Sequence[str], argument: str) -> list[int]:
        """Positions of ``names``; one error naming every missing column and the argument."""
        missing = [n for n in names if n not in self.columns]
        if missing:
            what = "column" if len(missing) == 1 else "columns"
            hint = ""
            if self.kind == "csv" and any(parse_number(c) is not None for c in self.columns):
                hint = " (its first line looks like data: if the file has no header line, pass --no-header)"
            shown = ", ".join(map(repr, self.columns[:20])) + (", ..." if len(self.columns) > 20 else "")
            raise BackpropError(
                f"`{argument}`: {self.source} has no {what} {', '.join(map(repr, missing))}; "
                f"its columns are {shown}{hint}"
            )
        return [self.columns.index(n) for n in names]

    # -- where a row is ---------------------------------------------------------------------------
    def _original(self, i: int) -> int:
        return int(self.rows[i]) if self.rows is not None else int(i)

    def where(self, i: int) -> str:
        """"`f.csv` line 7" (CSV: the 1-based file line where row i starts) or "`f.parquet` row 3"."""
        k = self._original(i)
        if self.kind != "csv" or (self.path is None and self._lines is None):
            return f"{self.source} row {k + 1}"
        if self._lines is None:
            self._lines = _row_lines(self.path, self.compression, self.delimiter, self.header)
        line = self._lines[k] if k < len(self._lines) else k + 1 + self.header
        return f"{self.source} line {line}"

    def take(self, keep: np.ndarray) -> "Frame":
        """The rows where the boolean mask ``keep`` is true (messages still name their own lines)."""
        import pyarrow as pa

        index = np.flatnonzero(keep)
        original = index if self.rows is None else self.rows[index]
        frame = Frame(self.table.filter(pa.array(keep)), self.source, self.path, self.kind, self.header,
                      self.delimiter, self.compression, original)
        frame._lines = self._lines
        return frame

    # -- columns ---------------------------------------------------------------------------------
    def column(self, name: str):
        return self.table.column(name)

    def is_text(self, name: str) -> bool:
        """True when pyarrow read the column as text (or bool/dates: anything but numbers or all-null)."""
        import pyarrow as pa

        t = self.column(name).type
        return not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t)
                    or pa.types.is_decimal(t))

    def is_empty(self, name: str) -> bool:
        """True when every cell of the column is missing."""
        col = self.texts(name) if self.is_text(name) else self.column(name)
        return col.null_count == len(col)

    def missing(self, name: str) -> np.ndarray:
        """Boolean mask of the missing cells of a column."""
        col = self.texts(name) if self.is_text(name) else self.column(name)
        return col.is_null().to_numpy(zero_copy_only=False)

    def numbers(self, name: str, argument: str = "features", out: np.ndarray | None = None) -> np.ndarray:
        """The column as float64 (NaN for a missing cell), written into ``out`` when given.

        A text cell in it is an error naming the line: the first cell that is not a number.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        col = self.column(name)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            col = self.texts(name)  # " NA " and "  " are missing too
            bad = pc.invert(pc.match_substring_regex(col, _NUMBER, ignore_case=True))
            bad = bad.fill_null(False).to_numpy(zero_copy_only=False)
            if bad.any():
                i = int(np.argmax(bad))
                text = str(col[i].as_py()).strip()
                shown = text if len(text) <= 40 else text[:37] + "..."
                raise BackpropError(
                    f"{self.where(i)}: column {name!r} ({argument}) must be numeric; got {shown!r}; "
                    "correct the value, or leave the column out with --features"
                )
            col = pc.cast(pc.utf8_trim_whitespace(col), pa.float64())
        elif not self.is_text(name):
            col = col.cast(pa.float64()) if col.type != pa.float64() else col
        else:
            raise BackpropError(
                f"{self.source}: column {name!r} ({argument}) must be numeric; it holds {col.type} values"
            )
        if out is None:
            return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
        start = 0
        for chunk in col.chunks:  # each chunk straight into its rows (a view when it has no nulls)
            out[start:start + len(chunk)] = chunk.to_numpy(zero_copy_only=chunk.null_count == 0)
            start += len(chunk)
        return out

    def texts(self, name: str):
        """The column as a pyarrow string ChunkedArray (cells stripped of spaces; null for missing)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        col = self.column(name)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            return pc.utf8_trim_whitespace(pc.cast(col, pa.string()))
        col = pc.utf8_trim_whitespace(col)
        spaced = pc.is_in(pc.utf8_lower(col), value_set=pa.array(sorted(MISSING)))  # pyarrow matched exact cells only
        return pc.if_else(spaced, pa.scalar(None, pa.string()), col) if pc.any(spaced).as_py() else col

    def strings(self, name: str, argument: str = "column", allow_missing: bool = False) -> list[str]:
        """The stripped cells of one column as Python strings (a target column: one per row)."""
        self.require([name], argument)
        col = self.texts(name)
        if not allow_missing and col.null_count:
            i = int(np.argmax(self.missing(name)))
            raise BackpropError(
                f"{self.where(i)}: column {name!r} ({argument}) has a missing value; fill it in or remove "
                "the row"
            )
        return ["" if v is None else v for v in col.to_pylist()]

    def numeric(self, names: Sequence[str], argument: str = "features") -> np.ndarray:
        """Columns ``names`` as a float64 array (n_rows, len(names)), in Fortran order (each
        column contiguous: filled column by column); a missing, text or infinite cell is an error
        naming the column and the line."""
        self.require(names, argument)
        out = np.empty((self.n_rows, len(names)), dtype=np.float64, order="F")
        for k, name in enumerate(names):
            self.numbers(name, argument, out=out[:, k])
            bad = ~np.isfinite(out[:, k])
            if bad.any():
                i = int(np.argmax(bad))
                if np.isnan(out[i, k]):
                    raise BackpropError(
                        f"{self.where(i)}: column {name!r} ({argument}) must hold a number; got a missing "
                        "value; fill it in or remove the row")
                raise BackpropError(
                    f"{self.where(i)}: column {name!r} ({argument}) must hold a finite number; got "
                    f"{float(out[i, k])!r}; replace it or remove the row")
        return out


def release_memory() -> None:
    """Give the memory pyarrow's pool keeps after a read (the parser's blocks) back to the system."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def frame_from_cells(table) -> Frame:
    """A :class:`Frame` of text columns from a :class:`backprop.csvdata.Table` (the strict cell
    reader's), missing spellings as nulls; messages keep the table's lines."""
    import pyarrow as pa

    columns = {}
    for j, name in enumerate(table.columns):
        cells = [row[j].strip() for row in table.rows]
        columns[name] = pa.array([None if c.lower() in MISSING else c for c in cells], type=pa.string())
    return Frame(pa.table(columns), table.source, None, "csv", lines=table.lines)


# -- reading ---------------------------------------------------------------------------------
def _kind(path: Path) -> tuple[str, str | None]:
    suffixes = [s.lower() for s in path.suffixes]
    compression = COMPRESSED.get(suffixes[-1]) if suffixes else None
    if suffixes and suffixes[-1] in PARQUET:
        return "parquet", None
    return "csv", compression


def read_table(path: str | os.PathLike, *, header: bool = True, delimiter: str | None = None,
               text_columns: Sequence[str] = ()) -> Frame:
    """Read a CSV/TSV (``.gz``, ``.bz2``, ``.xz``, ``.zst`` compressed by suffix) or Parquet file.

    - CSV: the first line is the header of column names (unique, non-empty); with ``header=False``
      the columns are named column1, column2, ...; ``delimiter`` None picks the one of comma,
      semicolon and tab found most often in the first line. Quoted fields may hold delimiters,
      quotes and newlines. UTF-8 (a byte-order mark is skipped); blank lines are skipped.
    - ``text_columns`` are read as text whatever they look like (a model's category columns).
    - Parquet (``.parquet``, ``.pq``): read with pyarrow.parquet; rows are numbered from 1.
    """
    path = Path(path)
    source = f"`{path}`"
    if not path.exists():
        raise BackpropError(f"data file {source} does not exist; check the path")
    if not path.is_file():
        raise BackpropError(f"data file {source} is not a file (a folder?); give a CSV or Parquet file")
    if not os.access(path, os.R_OK):
        raise BackpropError(f"cannot read data file {source}: permission denied")
    kind, compression = _kind(path)
    if kind == "parquet":
        return _read_parquet(path, source)
    return _read_csv(path, source, compression, header, delimiter, text_columns)


def _read_parquet(path: Path, source: str) -> Frame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(str(path))
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BackpropError(
            f"{source} is not a readable Parquet file ({reason}); it may be truncated or not Parquet: "
            "write it again"
        ) from None
    if table.num_rows == 0:
        raise BackpropError(f"{source} has no rows; expected at least one row")
    names = table.column_names
    for j, name in enumerate(names, start=1):
        if names.index(name) != j - 1:
            raise BackpropError(f"{source}: column name {name!r} appears twice (columns "
                                f"{names.index(name) + 1} and {j}); column names must be unique")
    return Frame(table, source, path, "parquet")


def _check_bytes(head: bytes, source: str) -> None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BackpropError(f"{source} is UTF-16 text; save it as UTF-8 (or plain ASCII) CSV")
    nul = head.find(b"\x00")
    if nul >= 0:
        line = head.count(b"\n", 0, nul) + 1
        raise BackpropError(
            f"{source} is not a CSV text file: it holds binary data (a NUL byte at byte offset {nul}, "
            f"line {line}); give a comma-separated text file"
        )


def _utf8_error(path: Path, compression: str | None, source: str) -> None:
    """Raise naming the first byte that is not UTF-8 (its line and column), if there is one."""
    data = _all_bytes(path, compression)
    _check_bytes(data, source)
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        bad = data[exc.start: exc.start + 1].hex()
        raise BackpropError(
            f"{source} line {line} is not valid UTF-8: byte 0x{bad} at byte {exc.start - start + 1} of "
            "the line; save the file as UTF-8"
        ) from None


def _read_csv(path: Path, source: str, compression: str | None, header: bool, delimiter: str | None,
              text_columns: Sequence[str]) -> Frame:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        head = _head(path, compression)
    except (OSError, EOFError, lzma.LZMAError, pa.ArrowException) as exc:
        raise BackpropError(f"cannot read data file {source}: {compression or 'the'} data is broken "
                            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    _check_bytes(head, source)
    text_head = head.decode("utf-8-sig", errors="replace")
    if not text_head.strip():
        raise BackpropError(f"{source} is empty; expected a CSV file with a header line and at least one data row")
    delimiter = _sniff_delimiter(text_head) if delimiter is None else delimiter
    read = pacsv.ReadOptions(autogenerate_column_names=not header)
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    convert = pacsv.ConvertOptions(
        null_values=null_spellings(), strings_can_be_null=True, quoted_strings_can_be_null=True,
        column_types={name: pa.string() for name in text_columns})
    try:
        # Arrow has no xz codec: Python's lzma decompresses that one; the others are Arrow's streams
        stream = (lzma.open(path, "rb") if compression == "xz"
                  else pa.input_stream(str(path), compression=compression) if compression else None)
        try:
            table = pacsv.read_csv(stream if stream is not None else str(path), read_options=read,
                                   parse_options=parse, convert_options=convert)
        finally:
            if stream is not None:
                stream.close()
    except (pa.ArrowInvalid, pa.ArrowException, OSError, EOFError, lzma.LZMAError) as exc:
        _explain_csv_error(exc, path, source, compression, header, delimiter)
        raise  # _explain_csv_error always raises
    release_memory()
    if header:
        _column_names(table.column_names, source)
    else:
        table = table.rename_columns([f"column{j}" for j in range(1, table.num_columns + 1)])
    if table.num_rows == 0:
        raise BackpropError(f"{source} has a header line but no data rows; expected at least one row")
    if any(pa.types.is_binary(t) or pa.types.is_large_binary(t) for t in table.schema.types):
        _utf8_error(path, compression, source)
    return Frame(table, source, path, "csv", header, delimiter, compression)


def _explain_csv_error(exc, path: Path, source: str, compression, header: bool, delimiter: str):
    """Turn pyarrow's error into the project's one line (with the line found by a csv rescan)."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "Empty CSV" in message:
        raise BackpropError(
            f"{source} is empty; expected a CSV file with a header line and at least one data row") from None
    try:
        data = _all_bytes(path, compression)
    except (OSError, EOFError, lzma.LZMAError) as read_error:
        raise BackpropError(f"cannot read data file {source}: {compression or 'the'} data is broken "
                            f"({read_error})") from None
    _utf8_error(path, compression, source)
    text = data.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    width, start = None, 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip() and (width is None or width > 1)):
                continue
            if width is None:
                width = len(row)
                continue
            if len(row) != width:
                raise BackpropError(
                    f"{source} line {line}: expected {width} fields like the {'header' if header else 'first line'}"
                    f" but found {len(row)}; look for a stray "
                    f"{_DELIMITER_NAMES.get(delimiter, repr(delimiter))}, a missing value or an unclosed quote"
                ) from None
    except csv.Error as csv_exc:
        raise BackpropError(f"{source} line {reader.line_num}: malformed CSV ({csv_exc})") from None
    raise BackpropError(f"{source}: malformed CSV ({message})") from None


def _row_lines(path: Path, compression, delimiter: str, header: bool) -> list[int]:
    """The 1-based file line where each data row starts (the csv module's count; blank lines
    skipped as pyarrow skips them). Only run to word an error message."""
    text = _all_bytes(path, compression).decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    lines, start, first = [], 1, header
    for row in reader:
        line, start = start, reader.line_num + 1
        if not row or all(not cell for cell in row) and len(row) == 1:
            continue
        if first:
            first = False
            continue
        lines.append(line)
    return lines

