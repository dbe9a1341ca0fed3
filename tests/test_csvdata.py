"""The CSV reader: faithful tables, and one clear error for every kind of bad file."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backprop._validation import BackpropError
from backprop.csvdata import format_csv, parse_csv, parse_number, read_csv, write_csv


def write(tmp_path, content, name="data.csv"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def error_of(path, **kwargs) -> str:
    with pytest.raises(BackpropError) as info:
        read_csv(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message  # one line
    return message


def test_reads_header_rows_and_line_numbers(tmp_path):
    # Header names, text cells, and the file line of each row (blank lines skipped, counted).
    path = write(tmp_path, "a,b,label\n1,2,x\n\n3.5,-4e2,y\r\n")
    table = read_csv(path)
    assert table.columns == ("a", "b", "label")
    assert table.rows == (("1", "2", "x"), ("3.5", "-4e2", "y"))
    assert table.lines == (2, 4)
    np.testing.assert_array_equal(table.numeric(["b", "a"]), [[2.0, 1.0], [-400.0, 3.5]])


def test_quoted_fields_with_delimiters_quotes_and_newlines(tmp_path):
    # Quoted cells keep commas, doubled quotes and newlines; line numbers follow the file.
    path = write(tmp_path, 'x,note\n1,"a, b"\n2,"say ""hi"""\n3,"two\nlines"\n4,end\n')
    table = read_csv(path)
    assert [r[1] for r in table.rows] == ["a, b", 'say "hi"', "two\nlines", "end"]
    assert table.lines == (2, 3, 4, 6)


@pytest.mark.parametrize("sep", [";", "\t"])
def test_delimiter_is_guessed_from_the_header(tmp_path, sep):
    # Semicolon and tab files are read without being told.
    path = write(tmp_path, f"a{sep}b\n1{sep}2\n")
    assert read_csv(path).columns == ("a", "b")
    assert read_csv(path).numeric(["a", "b"]).tolist() == [[1.0, 2.0]]


def test_utf8_bom_and_no_header(tmp_path):
    # A byte-order mark is skipped; --no-header names columns column1, column2, ...
    assert read_csv(write(tmp_path, b"\xef\xbb\xbfa,b\n1,2\n")).columns == ("a", "b")
    table = read_csv(write(tmp_path, "1,2\n3,4\n"), header=False)
    assert table.columns == ("column1", "column2") and table.n_rows == 2


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "is empty"),
        (b"  \n\n", "is empty"),
        (b"a,b\n", "no data rows"),
        (b"a,b\n1,2\n3,4,5\n", "line 3: expected 2 fields like the header but found 3"),
        (b"a,b\n1,2\n\n3\n", "line 4: expected 2 fields"),
        (b"a,,c\n1,2,3\n", "column 2 of the header has no name"),
        (b"a,b,a\n1,2,3\n", "column name 'a' appears twice (columns 1 and 3)"),
        (b"1,2,3\n4,5,6\n", "must be a header of column names; got only numbers"),
        (b"a,b\n1,2\n\xff\xfe9,9\n", "not valid UTF-8: byte 0xff at byte offset 8 (line 3)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data (a NUL byte at byte offset 8, line 3)"),
        (b"\xff\xfea\x00,\x00b\x00", "UTF-16"),
        (b'a,b\n1,"2\n', "malformed CSV"),
    ],
)
def test_bad_files_get_one_clear_message(tmp_path, content, expected):
    # Each kind of broken file is refused with a message naming the file and the problem.
    message = error_of(write(tmp_path, content))
    assert expected in message
    assert "data.csv" in message


def test_missing_or_folder_path(tmp_path):
    # A path that does not exist, or a folder, is refused by name.
    assert "does not exist" in error_of(tmp_path / "nope.csv")
    assert "not a file" in error_of(tmp_path)


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("", "missing value ('')"),
        ("NA", "missing value ('NA')"),
        ("nan", "missing value ('nan')"),
        ("?", "missing value ('?')"),
        ("inf", "finite number; got 'inf'"),
        ("-1e999", "finite number; got '-1e999'"),
        ("red", "must be numeric; got 'red'"),
        ("1_000", "must be numeric; got '1_000'"),
    ],
)
def test_numeric_names_column_line_and_value(tmp_path, cell, expected):
    # A bad feature cell names the column, the file line and the value received.
    table = read_csv(write(tmp_path, f"a,b\n1,2\n3,{cell}\n"))
    with pytest.raises(BackpropError) as info:
        table.numeric(["a", "b"])
    assert "line 3: column 'b' (features)" in str(info.value)
    assert expected in str(info.value)


def test_require_names_all_missing_columns(tmp_path):
    # Asking for absent columns names every one of them and the available ones.
    table = read_csv(write(tmp_path, "a,b\n1,2\n"))
    with pytest.raises(BackpropError, match=r"`--target`: .* has no columns 'x', 'y'; its columns are 'a', 'b'"):
        table.require(["a", "x", "y"], "--target")


def test_parse_number():
    # Plain numbers parse; missing spellings and text do not.
    assert parse_number(" 1.5e3 ") == 1500.0
    assert parse_number("-0") == 0.0
    assert parse_number("NaN") is None and parse_number("") is None and parse_number("abc") is None


def test_write_csv_is_atomic_and_exact(tmp_path, monkeypatch):
    # Floats written read back bit for bit; a failing write leaves the old file untouched.
    values = np.random.default_rng(0).standard_normal(50) * 10.0 ** np.arange(-25, 25)
    path = tmp_path / "out.csv"
    write_csv(path, ["v"], ([v] for v in values))
    np.testing.assert_array_equal(read_csv(path).numeric(["v"])[:, 0], values)

    path.write_text("old contents\n")

    def boom():
        yield [1.0]
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_csv(path, ["v"], boom())
    assert path.read_text() == "old contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary file left behind


# -- properties ------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_random_bytes_never_crash(tmp_path, data):
    # Whatever the bytes, reading either succeeds or raises BackpropError (never anything else).
    path = tmp_path / "random.csv"
    path.write_bytes(data)
    try:
        table = read_csv(path)
    except BackpropError as exc:
        assert str(exc)
    else:
        assert table.n_rows >= 1 and all(len(r) == len(table.columns) for r in table.rows)


_text_cell = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\ufeff"),
    max_size=12,
).map(str.strip)


@st.composite
def tables(draw):
    n_cols = draw(st.integers(1, 5))
    names = draw(
        st.lists(_text_cell.filter(lambda s: s and parse_number(s) is None), min_size=n_cols,
                 max_size=n_cols, unique=True)
    )
    n_rows = draw(st.integers(1, 6))
    cells = st.one_of(_text_cell.filter(lambda s: n_cols > 1 or s), st.floats(allow_nan=False).map(repr))
    rows = draw(st.lists(st.lists(cells, min_size=n_cols, max_size=n_cols), min_size=n_rows, max_size=n_rows))
    return names, rows


@settings(max_examples=200, deadline=None)
@given(table=tables())
def test_valid_tables_round_trip(table):
    # Any table written by Python's csv module reads back to the same names and cells.
    names, rows = table
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(names)
    writer.writerows(rows)
    parsed = parse_csv(buffer.getvalue(), delimiter=",")
    assert list(parsed.columns) == names
    assert [list(r) for r in parsed.rows] == rows


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=3, max_size=3),
                       min_size=1, max_size=8))
def test_numeric_tables_round_trip_exactly(values):
    # Finite floats written by format_csv come back bit for bit through numeric().
    parsed = parse_csv(format_csv(["a", "b", "c"], values))
    np.testing.assert_array_equal(parsed.numeric(["a", "b", "c"]), np.array(values, dtype=np.float64))
