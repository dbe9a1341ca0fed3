"""Text columns, missing values and overflow (issues 22 and 29): the encoding a model file stores
equals scikit-learn's fitted ColumnTransformer (fitted here, independently, on the same rows);
unseen categories, --missing and values that overflow through the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from backprop.cli import main
from backprop.network import Network
from backprop.preprocessing import load_model
from backprop.tables import read_table

FIXTURES = Path(__file__).parent / "fixtures"
NUMERIC, TEXT = ["area", "rooms", "age"], ["city"]


def _oracle(train_csv):
    """scikit-learn's own ColumnTransformer, fitted on the training file read by pandas."""
    df = pd.read_csv(train_csv)
    ct = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
        ("txt", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore", sparse_output=False)), TEXT),
    ])
    return ct.fit(df[NUMERIC + TEXT])


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A regressor trained by the CLI on cities.csv with every row for training (--validation 0)."""
    folder = tmp_path_factory.mktemp("enc")
    for name in ("cities.csv", "cities_new.csv"):
        shutil.copy(FIXTURES / name, folder / name)
    code = main(["train", str(folder / "cities.csv"), "--target", "price", "--features", "area,rooms,city,age",
                 "--hidden", "8", "--epochs", "3", "--validation", "0", "--quiet",
                 "--out", str(folder / "m.safetensors")])
    assert code == 0
    return folder


def test_stored_encoding_equals_the_fitted_column_transformer(model):
    # Reloaded from the file's JSON, the transform of the training file and of a new file (gaps
    # and an unseen city) equals the ColumnTransformer's output, and its learned numbers are stored.
    ct = _oracle(model / "cities.csv")
    network, pre = load_model(model / "m.safetensors")
    for name in ("cities.csv", "cities_new.csv"):
        frame = read_table(model / name, text_columns=pre.text_features)
        expected = ct.transform(pd.read_csv(model / name)[NUMERIC + TEXT])
        np.testing.assert_allclose(pre.transform(frame), expected, rtol=1e-12, atol=1e-12)
    meta = network.metadata["preprocessing"]
    by_name = {c["name"]: c for c in meta["columns"]}
    imputer, scaler = ct.named_transformers_["num"].steps[0][1], ct.named_transformers_["num"].steps[1][1]
    assert [by_name[n]["fill"] for n in NUMERIC] == imputer.statistics_.tolist()
    np.testing.assert_allclose(network.metadata["scaler"]["mean"][:3], scaler.mean_, rtol=1e-14)
    np.testing.assert_allclose(network.metadata["scaler"]["scale"][:3], scaler.scale_, rtol=1e-14)
    onehot = ct.named_transformers_["txt"].steps[1][1]
    assert by_name["city"]["categories"] == onehot.categories_[0].tolist() == ["Lille", "Nantes", "Paris"]
    assert by_name["city"]["fill"] == ct.named_transformers_["txt"].steps[0][1].statistics_[0]
    assert [c["name"] for c in meta["columns"]] == ["area", "rooms", "city", "age"]  # feature order kept
    json.dumps(network.metadata)  # plain JSON


def test_predict_on_an_unseen_city_notes_it_and_predicts(model, capsys):
    # 'Lyon' was never seen: a note names the column, value and count; the rows are predicted with
    # all-zero one-hot inputs, as the ColumnTransformer (handle_unknown='ignore') encodes them.
    code, out, err = run_cli(capsys, "predict", model / "m.safetensors", model / "cities_new.csv")
    assert code == 0
    lyon = int((pd.read_csv(model / "cities_new.csv")["city"] == "Lyon").sum())
    assert f"column 'city': {lyon} rows hold values never seen in training: 'Lyon' ({lyon})" in err
    ct = _oracle(model / "cities.csv")
    new = pd.read_csv(model / "cities_new.csv")
    medians = dict(zip(NUMERIC, ct.named_transformers_["num"].steps[0][1].statistics_))
    for name in NUMERIC:
        if new[name].isna().any():
            assert f"{name} ({new[name].isna().sum()}, with the median {medians[name]:g})" in err
    network, pre = load_model(model / "m.safetensors")
    Z = ct.transform(new[NUMERIC + TEXT])
    assert Z[1, 3:].tolist() == [0.0, 0.0, 0.0]  # row 2 of the file is in Lyon
    expected = pre.decode(network.predict(Z))
    np.testing.assert_allclose([float(v) for v in out.split()[1:]], expected, rtol=1e-12)
    code, out, err = run_cli(capsys, "evaluate", model / "m.safetensors", model / "cities_new.csv")
    assert code == 0 and "rows: 6" in out and "'Lyon' (2)" in err


def test_info_lists_each_features_encoding(model, capsys):
    # info shows the median fill and mean/scale of numbers, and a text column's categories.
    code, out, _ = run_cli(capsys, "info", model / "m.safetensors")
    assert code == 0
    assert "  city: text: one-hot of 3 categories (Lille, Nantes, Paris); missing -> 'Paris'" in out
    meta = Network.load(model / "m.safetensors").metadata
    area = meta["preprocessing"]["columns"][0]
    assert (f"  area: numeric: missing -> median {area['fill']:.6g}; standardised with mean "
            f"{meta['scaler']['mean'][0]:.6g}, scale {meta['scaler']['scale'][0]:.6g}") in out


@pytest.mark.parametrize("mode", ["impute", "drop", "error"])
def test_missing_modes(tmp_path, capsys, mode):
    # --missing impute fills and counts per column, drop counts the rows, error names the first
    # cell; the counts and medians come from pandas on the same file.
    df = pd.read_csv(FIXTURES / "cities.csv")
    gaps = df.isna().sum()
    shutil.copy(FIXTURES / "cities.csv", tmp_path / "cities.csv")
    code, _, err = run_cli(capsys, "train", tmp_path / "cities.csv", "--target", "price", "--missing", mode,
                           "--epochs", "1", "--quiet", "--validation", "0", "--out", tmp_path / "m.safetensors")
    assert (tmp_path / "m.safetensors").exists() == (mode != "error")
    if mode == "impute":
        assert code == 0 and f"filled {int(gaps.sum())} missing cells: " in err
        for name in NUMERIC:
            assert f"{name} ({gaps[name]}, with the median {df[name].median():g})" in err
        assert f"city ({gaps['city']}, with the most frequent value {df['city'].mode()[0]!r})" in err
    elif mode == "drop":
        dropped = int(df.isna().any(axis=1).sum())
        assert code == 0 and f"dropped {dropped} of {len(df)} rows with missing cells (--missing drop)" in err
        network, _ = load_model(tmp_path / "m.safetensors")
        assert network.metadata["training"]["n_train"] == len(df) - dropped
    else:
        first = int(np.flatnonzero(df.isna().any(axis=1))[0])
        column = df.columns[df.iloc[first].isna().to_numpy()][0]
        assert code == 1
        assert (f"cities.csv` line {first + 2}: column {column!r} (features) must hold a value; got a "
                "missing cell (--missing error)") in err


def test_legacy_files_still_evaluate(capsys):
    # A model file from before the encoding (no `preprocessing`) evaluates its own data as before.
    code, out, _ = run_cli(capsys, "evaluate", FIXTURES / "legacy_classify.safetensors", FIXTURES / "legacy_classify.csv")
    assert code == 0 and "accuracy:" in out


# -- issue 29: values that overflow ------------------------------------------------------------
def test_a_feature_whose_variance_overflows_is_refused(tmp_path, capsys):
    # Values near 1e160: the variance overflows float64; refused naming the column, its line and a
    # fix; nothing written, no numpy warning.
    rows = "\n".join(f"{v:.3e},{k % 2}" for k, v in enumerate([1e160, -2e160, 3e160, 1.5e160, 2e160, -1e160]))
    (tmp_path / "d.csv").write_text("x,y\n" + rows + "\n")
    code, out, err = run_cli(capsys, "train", tmp_path / "d.csv", "--target", "y", "--task", "classify",
                             "--quiet", "--out", tmp_path / "m.safetensors")
    assert code == 1 and not (tmp_path / "m.safetensors").exists()
    line = [l for l in err.splitlines() if l.startswith("backprop: error:")]
    assert len(line) == 1 and "column 'x' (features) holds values too large to standardise: 3e+160" in line[0]
    assert "d.csv` line 4" in line[0] and "divide the column by a power of ten" in line[0]
    assert "RuntimeWarning" not in err and "X[" not in err


def test_a_target_whose_variance_overflows_is_refused(tmp_path, capsys):
    # The regression target gets the same check (its scale used to become 1 silently).
    rows = "\n".join(f"{k},{v:.1e}" for k, v in enumerate([1e160, -2e160, 3e160, 5e159, 2e160, 1e159, 7e159]))
    (tmp_path / "d.csv").write_text("x,t\n" + rows + "\n")
    code, _, err = run_cli(capsys, "train", tmp_path / "d.csv", "--target", "t", "--task", "regress",
                           "--quiet", "--out", tmp_path / "m.safetensors")
    assert code == 1 and "column 't' (target) holds values too large to standardise" in err
    assert "line 4" in err and not (tmp_path / "m.safetensors").exists() and "RuntimeWarning" not in err


def test_predict_on_a_huge_finite_value_is_an_error_not_nan(model, tmp_path, capsys):
    # 1e308 is finite, but the network's output overflows: one line naming the file line and the
    # column; never nan/inf printed, no numpy warning, no output file.
    (tmp_path / "big.csv").write_text("area,rooms,city,age\n50,2,Paris,10\n1e308,2,Paris,10\n")
    out_file = tmp_path / "p.csv"
    code, out, err = run_cli(capsys, "predict", model / "m.safetensors", tmp_path / "big.csv", "--out", out_file)
    assert code == 1 and not out_file.exists() and "nan" not in out and "inf" not in out
    line = [l for l in err.splitlines() if l.startswith("backprop: error:")]
    assert len(line) == 1 and "big.csv` line 3" in line[0] and "column 'area'" in line[0]
    assert "RuntimeWarning" not in err


def test_an_infinite_cell_is_named_by_line_and_column(model, tmp_path, capsys):
    # "inf" in a file: the CSV column and 1-based line, not `X[0, 0]`.
    (tmp_path / "inf.csv").write_text("area,rooms,city,age\n50,2,Paris,10\n60,-inf,Paris,10\n")
    code, _, err = run_cli(capsys, "predict", model / "m.safetensors", tmp_path / "inf.csv")
    assert code == 1 and "inf.csv` line 3: column 'rooms' (features) must hold a finite number" in err
    assert "X[" not in err and "index" not in err


def test_an_old_model_on_a_huge_value_is_an_error_without_warnings(tmp_path, capsys):
    # A model file from before the encoding, given 1.7e308 in its column of smallest scale (finite,
    # but (x - mean) / scale overflows): one line naming the file line and the column, no numpy
    # warning, no nan.
    header = (FIXTURES / "legacy_regress.csv").read_text().splitlines()[0]
    names = header.split(",")
    scale = Network.load(FIXTURES / "legacy_regress.safetensors").metadata["scaler"]["scale"]
    small = int(np.argmin(scale))
    assert scale[small] < 1  # so that 1.7e308 / scale overflows
    row = ["1.7e308" if k == small else "0.5" for k in range(len(names))]
    (tmp_path / "big.csv").write_text(header + "\n" + ",".join(["0.1"] * len(names)) + "\n" + ",".join(row) + "\n")
    code, out, err = run_cli(capsys, "predict", FIXTURES / "legacy_regress.safetensors", tmp_path / "big.csv")
    assert code == 1 and "nan" not in out and "inf" not in out and "RuntimeWarning" not in err
    line = [l for l in err.splitlines() if l.startswith("backprop: error:")]
    assert len(line) == 1 and "big.csv` line 3" in line[0] and f"column {names[small]!r}" in line[0]


def test_a_value_far_outside_the_training_data_gets_a_note(model, tmp_path, capsys):
    # An area of 1e6 m2 (the training areas are 20..120) is predicted, with a note naming its
    # line and column; ordinary rows get no such note.
    (tmp_path / "far.csv").write_text("area,rooms,city,age\n50,2,Paris,10\n1e6,2,Paris,10\n")
    code, _, err = run_cli(capsys, "predict", model / "m.safetensors", tmp_path / "far.csv")
    assert code == 0 and "1 rows hold values more than 1000 standard deviations" in err
    assert "far.csv` line 3, column 'area'" in err
    code, _, err = run_cli(capsys, "predict", model / "m.safetensors", model / "cities_new.csv")
    assert code == 0 and "standard deviations" not in err


def test_a_column_pyarrow_reads_as_bools_keeps_its_spelling(tmp_path, capsys):
    # "True"/"False" cells are categories spelt as in the file, at train and at predict alike
    # (no unseen-value note on the training file itself).
    (tmp_path / "b.csv").write_text("x,flag,y\n1,True,a\n2,False,b\n3,True,a\n4,False,b\n5,True,a\n")
    code, _, _ = run_cli(capsys, "train", tmp_path / "b.csv", "--target", "y", "--epochs", "1", "--quiet",
                         "--validation", "0", "--out", tmp_path / "b.safetensors")
    assert code == 0
    meta = Network.load(tmp_path / "b.safetensors").metadata
    assert meta["preprocessing"]["columns"][1] == {"name": "flag", "kind": "text", "fill": "True",
                                                   "categories": ["False", "True"]}
    code, _, err = run_cli(capsys, "predict", tmp_path / "b.safetensors", tmp_path / "b.csv")
    assert code == 0 and "never seen" not in err


@pytest.mark.parametrize("name, content, expected", [
    ("r.csv", b"area,rooms,city,age\n50,2,Paris,10\n60,3,Paris,10,99\n", r"r\.csv` line 3: expected 4 fields"),
    ("u.csv", b"area,rooms,city,age\n50,2,Paris,10\n60,3,B\xe9ziers,10\n", r"u\.csv` line 3 is not valid UTF-8"),
    ("t.parquet", b"PAR1\x15\x04\x15\x10", r"t\.parquet` is not a readable Parquet file"),
    ("w.csv", b"area,rooms,city,age\n50,2,Paris,10\n60,three,Paris,10\n61,3,Paris,10\n",
     r"w\.csv` line 3: column 'rooms' \(features\) must be numeric; got 'three'"),
])
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_predict_and_evaluate_refuse_bad_files(model, tmp_path, capsys, name, content, expected, command):
    # Bad input at predict/evaluate time: exit 1, one line naming file and line/column, no --out file.
    import re

    (tmp_path / name).write_bytes(content)
    extra = ["--out", str(tmp_path / "p.csv")] if command == "predict" else []
    code, out, err = run_cli(capsys, command, model / "m.safetensors", tmp_path / name, *extra)
    lines = [l for l in err.splitlines() if l.startswith("backprop: error:")]
    assert code == 1 and len(lines) == 1 and re.search(expected, lines[0]) and "Traceback" not in err
    assert not (tmp_path / "p.csv").exists() and out == ""


def test_tune_refuses_a_text_column_by_name(tmp_path, capsys):
    # backprop tune's estimators take numbers only: a text column is one line naming it and the
    # two ways out; a missing cell names its line without offering --missing (tune has none).
    shutil.copy(FIXTURES / "cities.csv", tmp_path / "cities.csv")
    code, _, err = run_cli(capsys, "tune", tmp_path / "cities.csv", "--target", "price", "--grid", "hidden=4",
                           "--workers", "1", "--quiet", "--out", tmp_path / "t.safetensors")
    assert code == 1 and "column 'city' (features) holds text (e.g. " in err and "`backprop train`" in err
    code, _, err = run_cli(capsys, "tune", tmp_path / "cities.csv", "--target", "price", "--grid", "hidden=4",
                           "--features", "area,age", "--workers", "1", "--quiet", "--out", tmp_path / "t.safetensors")
    first = int(np.flatnonzero(pd.read_csv(FIXTURES / "cities.csv")["area"].isna())[0])  # columns in turn
    assert code == 1 and f"line {first + 2}: column 'area' (features) must hold a number" in err
    assert "--missing" not in err
    assert not (tmp_path / "t.safetensors").exists()


def test_a_numeric_column_with_spaced_missing_cells_stays_numeric(tmp_path, capsys):
    # " NA " is not one of pyarrow's exact null spellings, so it reads the column as text; it is
    # still a numeric column with one missing cell (filled with the median of 1, 2, 4 = 2).
    (tmp_path / "d.csv").write_text("x,y\n1,a\n NA ,b\n2,a\n4,b\n")
    code, _, err = run_cli(capsys, "train", tmp_path / "d.csv", "--target", "y", "--epochs", "1", "--quiet",
                           "--validation", "0", "--out", tmp_path / "m.safetensors")
    assert code == 0 and "x (1, with the median 2)" in err
    column = Network.load(tmp_path / "m.safetensors").metadata["preprocessing"]["columns"][0]
    assert column == {"name": "x", "kind": "numeric", "fill": 2.0}
