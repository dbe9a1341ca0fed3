"""The pyarrow table reader (backprop.tables): real CSV, TSV, compressed and Parquet files, and
every bad input refused with one line naming the file, the line (or row) and the column."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backprop._validation import BackpropError
from backprop.cli import main
from backprop.csvdata import MISSING
from backprop.tables import null_spellings, read_table


def _csv_text(seed=0, n=50):
    """A numeric CSV and, as the oracle, its values parsed by Python's csv module and float()."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1e3, (n, 3)) * rng.choice([1e-5, 1.0, 1e5], (n, 3))
    buffer = io.StringIO()
    w = csv.writer(buffer, lineterminator="\n")
    w.writerow(["a", "b", "c"])
    w.writerows([[repr(float(v)) for v in row] for row in X])
    text = buffer.getvalue()
    oracle = np.array([[float(v) for v in row] for row in list(csv.reader(io.StringIO(text)))[1:]])
    return text, oracle


def _numbers(frame):
    return frame.numeric(list(frame.columns))


def test_csv_numbers_read_exactly_as_python_parses_them(tmp_path):
    # Every float (shortest repr) reads back bit for bit, as float() of the csv module's cells.
    text, oracle = _csv_text()
    (tmp_path / "d.csv").write_text(text)
    np.testing.assert_array_equal(_numbers(read_table(tmp_path / "d.csv")), oracle)


@pytest.mark.parametrize("suffix, opener", [
    (".csv.gz", gzip.open), (".csv.bz2", bz2.open), (".csv.xz", lzma.open), (".csv.zst", None)])
def test_compressed_csv_reads_like_the_plain_file(tmp_path, suffix, opener):
    # A gzip/bz2/xz (stdlib writers) or zstd (pyarrow's writer) file is decompressed by its suffix.
    text, oracle = _csv_text(seed=1)
    path = tmp_path / f"d{suffix}"
    if opener is None:
        with pa.CompressedOutputStream(str(path), "zstd") as out:
            out.write(text.encode())
        assert path.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # the zstd magic number: really compressed
    else:
        with opener(path, "wb") as out:
            out.write(text.encode())
    np.testing.assert_array_equal(_numbers(read_table(path)), oracle)


@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_tab_and_semicolon_files_are_sniffed(tmp_path, delimiter):
    # The delimiter is guessed from the header line, as the cell reader guesses it.
    text, oracle = _csv_text(seed=2)
    (tmp_path / "d.tsv").write_text(text.replace(",", delimiter))
    frame = read_table(tmp_path / "d.tsv")
    assert frame.columns == ("a", "b", "c")
    np.testing.assert_array_equal(_numbers(frame), oracle)


def test_parquet_file_reads_its_columns(tmp_path):
    # A Parquet file written by pyarrow: numbers, text with nulls; rows are named "row N" (1-based).
    pq.write_table(pa.table({"x": [1.5, None, 3.0], "city": ["Paris", None, "Rome"]}), tmp_path / "d.parquet")
    frame = read_table(tmp_path / "d.parquet")
    assert frame.columns == ("x", "city") and frame.is_text("city") and not frame.is_text("x")
    assert np.isnan(frame.numbers("x")[1]) and frame.numbers("x")[2] == 3.0
    with pytest.raises(BackpropError, match=r"`.*d\.parquet` row 2: column 'x' \(features\) must hold a number"):
        frame.numeric(["x"])


def test_every_missing_spelling_in_any_case_is_null(tmp_path):
    # Empty cells and NA, N/A, NaN, null, None, ? in upper, lower and mixed case are missing cells.
    spellings = sorted(MISSING) + ["Na", "nULL", "NONE", "n/A", "nAn"]
    assert all(s in null_spellings() for s in spellings)
    lines = ["x,t"] + [f"{s},{k}" for k, s in enumerate(spellings)] + ["2.5,99"]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    frame = read_table(tmp_path / "d.csv")
    assert frame.missing("x").tolist() == [True] * len(spellings) + [False]


def test_header_options_and_text_columns(tmp_path):
    # --no-header names the columns column1..; text_columns forces a numeric-looking column to text.
    (tmp_path / "d.csv").write_text("1,2\n3,4\n")
    frame = read_table(tmp_path / "d.csv", header=False)
    assert frame.columns == ("column1", "column2") and frame.n_rows == 2
    (tmp_path / "e.csv").write_text("a,b\n1,2\n3,4\n")
    assert read_table(tmp_path / "e.csv", text_columns=["a"]).is_text("a")


def test_ragged_row_names_its_line_after_blank_lines_and_quoted_newlines(tmp_path):
    # The line is the file's (1-based), found by a csv-module rescan: a blank line and a quoted
    # field spanning two lines come before the bad row, which is on line 6.
    (tmp_path / "d.csv").write_text('a,b\n1,"two\nlines"\n\n3,4\n5,6,7\n')
    with pytest.raises(BackpropError, match=r"d\.csv` line 6: expected 2 fields like the header but found 3"):
        read_table(tmp_path / "d.csv")


def test_cell_messages_name_the_file_line(tmp_path):
    # A non-number in a numeric column is named by its own line, past a blank line and a multi-line cell.
    (tmp_path / "d.csv").write_text('a,b\n1,"x\ny"\n\n2,z\noops,w\n')
    frame = read_table(tmp_path / "d.csv")
    with pytest.raises(BackpropError, match=r"line 6: column 'a' \(features\) must be numeric; got 'oops'"):
        frame.numbers("a")


@pytest.mark.parametrize("content, expected", [
    (b"", "is empty"),
    (b"a,b\n", "has a header line but no data rows"),
    (b"a,a\n1,2\n", "column name 'a' appears twice"),
    (b"a,,c\n1,2,3\n", "column 2 of the header has no name"),
    (b"a,b\n1,2\n3,\xff\xfe\n", r"line 3 is not valid UTF-8: byte 0xff at byte 3 of the line"),
    (b"\xff\xfea\x00,\x00b\x00\n\x00", "is UTF-16 text"),
    (b"a,b\n1,\x002\n", "binary data"),
    (b"1,2\n3,4\n", "must be a header of column names"),
])
def test_bad_csv_files_are_one_clear_error(tmp_path, content, expected):
    # Each broken CSV is one BackpropError naming the file and what is wrong (and the line).
    (tmp_path / "d.csv").write_bytes(content)
    with pytest.raises(BackpropError, match=expected) as info:
        read_table(tmp_path / "d.csv")
    assert "d.csv" in str(info.value) and "\n" not in str(info.value)


def test_broken_compressed_and_parquet_files(tmp_path):
    # A truncated Parquet file, a file that is not Parquet, and a corrupt gzip file are refused by name.
    pq.write_table(pa.table({"x": np.arange(1000.0)}), tmp_path / "full.parquet")
    data = (tmp_path / "full.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.parquet").write_text("a,b\n1,2\n")
    for name in ("cut.parquet", "text.parquet"):
        with pytest.raises(BackpropError, match=rf"`.*{name}` is not a readable Parquet file .* write it again"):
            read_table(tmp_path / name)
    (tmp_path / "bad.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n" * 100)[:-30])
    with pytest.raises(BackpropError, match=r"bad\.csv\.gz"):
        read_table(tmp_path / "bad.csv.gz").numeric(["a", "b"])


# -- through the command line: exit 1, one line naming file/line/column, nothing written -------------
def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("backprop: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _parquet_cut(tmp_path):
    pq.write_table(pa.table({"x": np.arange(500.0), "y": np.arange(500.0) % 2}), tmp_path / "f.parquet")
    data = (tmp_path / "f.parquet").read_bytes()
    (tmp_path / "d.parquet").write_bytes(data[:-40])
    return "d.parquet"


@pytest.mark.parametrize("make, expected", [
    (lambda p: (p / "d.csv").write_text("x,y\n1,a\n2,b\n3,a,9\n4,b\n") and "d.csv",
     r"d\.csv` line 4: expected 2 fields like the header but found 3"),
    (lambda p: (p / "d.csv").write_text("x,e,y\n1,,a\n2,,b\n3,,a\n") and "d.csv",
     r"d\.csv`: column 'e' \(features\) is empty in every one of its 3 rows"),
    (lambda p: (p / "d.csv").write_text("x,y\n1,a\n2,b\n3,\n4,b\n") and "d.csv",
     r"d\.csv` line 4: column 'y' \(target\) has a missing value"),
    (lambda p: (p / "d.csv").write_bytes(b"x,y\n1,a\n2,b\n3,\xe9t\xe9\n") and "d.csv",
     r"d\.csv` line 4 is not valid UTF-8: byte 0xe9 at byte 3 of the line"),
    (_parquet_cut, r"d\.parquet` is not a readable Parquet file"),
    (lambda p: pq.write_table(pa.table({"x": [1.0, None, 3.0, 4.0], "y": ["a", "b", None, "b"]}),
                              p / "d.parquet") or "d.parquet",
     r"d\.parquet` row 3: column 'y' \(target\) has a missing value"),
])
def test_train_refuses_bad_input_with_one_line(tmp_path, capsys, make, expected):
    # Each bad input through `backprop train`: exit 1, one line naming the file and line/row/column,
    # and no model file written.
    name = make(tmp_path)
    code = main(["train", str(tmp_path / name), "--target", "y", "--out", str(tmp_path / "m.safetensors"),
                 "--epochs", "1", "--quiet"])
    _, err = capsys.readouterr()
    assert code == 1
    import re

    assert re.search(expected, _one_line(err)), err
    assert not (tmp_path / "m.safetensors").exists()


def test_parquet_and_compressed_files_train_and_predict_like_the_csv(tmp_path, capsys):
    # The same table as CSV, gzip CSV and Parquet (text column, gaps): the same model file
    # contents and the same predictions, whichever file is given.
    import pandas as pd

    from backprop.network import Network

    df = pd.read_csv("tests/fixtures/cities.csv")
    df.to_csv(tmp_path / "c.csv", index=False)
    df.to_csv(tmp_path / "c.csv.gz", index=False, compression="gzip")
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "c.parquet")
    outputs = []
    for name in ("c.csv", "c.csv.gz", "c.parquet"):
        model = tmp_path / f"{name}.safetensors"
        assert main(["train", str(tmp_path / name), "--target", "price", "--epochs", "2", "--quiet",
                     "--out", str(model)]) == 0
        meta = Network.load(model).metadata
        capsys.readouterr()
        assert main(["predict", str(model), str(tmp_path / name)]) == 0
        predicted = np.array([float(v) for v in capsys.readouterr().out.split()[1:]])
        outputs.append((meta["preprocessing"], meta["scaler"], predicted))
    assert outputs[0][:2] == outputs[1][:2] == outputs[2][:2]
    assert outputs[0][0]["columns"][2]["categories"] == sorted(df["city"].dropna().unique())
    assert len(outputs[0][2]) == len(df)
    for _, _, predicted in outputs[1:]:
        np.testing.assert_allclose(predicted, outputs[0][2], rtol=1e-9)


from hypothesis import given, settings, strategies as st  # noqa: E402

_cells = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
                   st.sampled_from(["", "NA", "?", "none"]))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(_cells, min_size=3, max_size=3), min_size=1, max_size=20),
       st.sampled_from([",", ";", "\t"]))
def test_reader_agrees_with_the_cell_reader(tmp_path_factory, rows, delimiter):
    # Property: for any table of floats and missing spellings, in any of the three delimiters,
    # pyarrow's reading equals the strict cell reader's (backprop.csvdata, csv module + float()).
    from backprop.csvdata import parse_csv, parse_number

    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows([["a", "b", "c"], *rows])
    path = tmp_path_factory.mktemp("p") / "d.csv"
    path.write_text(buffer.getvalue())
    cells = parse_csv(buffer.getvalue())
    expected = np.array([[np.nan if parse_number(v) is None else parse_number(v) for v in r] for r in cells.rows])
    frame = read_table(path)
    got = np.column_stack([frame.numbers(n) for n in "abc"])
    np.testing.assert_array_equal(got, expected)


def test_missing_spellings_with_spaces_are_missing(tmp_path):
    # " NA ", "  " and " ? " are missing cells as the cell reader strips them; " 2.5 " is a number.
    (tmp_path / "d.csv").write_text("x,c\n NA ,a\n  ,b\n ? , none \n 2.5 ,d\n")
    frame = read_table(tmp_path / "d.csv")
    assert np.isnan(frame.numbers("x")[:3]).all() and frame.numbers("x")[3] == 2.5
    assert frame.texts("c").to_pylist() == ["a", "b", None, "d"]
    assert frame.missing("c").tolist() == [False, False, True, False]
