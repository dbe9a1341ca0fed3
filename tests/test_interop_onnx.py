"""ONNX export checked by a second implementation: every exported graph is run by ONNX Runtime and
its outputs compared with the engine's (issue 24)."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from backprop import AvgPool2D, BackpropError, Conv2D, Dense, Flatten, Layer, MaxPool2D, Network  # noqa: E402
from backprop.activations import Activation  # noqa: E402
from backprop.interop import IR_VERSION, OPSET, onnx_model, to_onnx  # noqa: E402
from backprop.interop.onnx_export import ACTIVATION_OPS  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
ROOT = Path(__file__).resolve().parents[1]
ACTS = ["identity", "relu", "tanh", "sigmoid", "leaky_relu", "softmax", "exp"]
TOL = {np.float32: 1e-6, np.float64: 1e-12}


def session(model):
    data = model.SerializeToString() if hasattr(model, "SerializeToString") else str(model)
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def run(model, **inputs):
    return session(model).run(None, inputs)


def rel(ours, theirs) -> float:
    """max |ours - theirs| / max |ours|: the error relative to the size of the outputs."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float(np.max(np.abs(ours - theirs)) / np.max(np.abs(ours)))


def random_network(seed: int, activation: str, n_hidden: int, dtype):
    """Seeded random sizes; the activation on every hidden layer, or on the output for softmax/exp."""
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(1, 33, n_hidden + 2)]
    hidden = "tanh" if activation in ("softmax", "exp") else activation
    act = {"name": "leaky_relu", "negative_slope": 0.1} if activation == "leaky_relu" else hidden
    out = activation if activation in ("softmax", "exp", "sigmoid") else "identity"
    if activation == "softmax":
        sizes[-1] = max(sizes[-1], 2)
    net = Network.from_sizes(sizes, activation=act, output_activation=out, weight_init="glorot",
                             bias_init="normal", seed=seed, dtype=dtype)
    return net, rng


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("n_hidden", [1, 2, 3, 4])
def test_random_networks_match_onnx_runtime(dtype, activation, n_hidden):
    # Random 1-4 hidden-layer networks: ORT's outputs equal ours to 1e-6 (float32) / 1e-12 (float64)
    # relative, for batches of 1 and 1000.
    net, rng = random_network(100 * n_hidden + ACTS.index(activation), activation, n_hidden, dtype)
    model = onnx_model(net)
    sess = session(model)
    for n in (1, 1000):
        X = (rng.standard_normal((n, net.n_inputs)) * 2).astype(dtype)
        (out,) = sess.run(None, {"X": X})
        assert out.dtype == dtype and out.shape == (n, net.n_outputs)
        assert rel(net.predict(X), out) <= TOL[dtype]


def test_graph_is_checked_and_names_its_opset(tmp_path):
    # The written file passes onnx.checker, has the documented opset and IR version, and says what it is.
    net = Network.from_sizes([3, 4, 2], activation="relu", output_activation="softmax", seed=0)
    path = net.to_onnx(tmp_path / "m.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == IR_VERSION == 8
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)] and OPSET == 17
    assert model.producer_name == "backprop"
    assert [i.name for i in model.graph.input] == ["X"] and [o.name for o in model.graph.output] == ["output"]
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temporary file


def test_saturated_activations_are_exact_in_float64():
    # Net inputs of +-700 (sigmoid's tiny tails, exp's cap) element by element: ONNX Runtime's own
    # Sigmoid would be 1e-3 off here; the composed form agrees to 1e-12 on every element.
    z = np.linspace(-700, 700, 2801).reshape(-1, 1)
    for act in ("sigmoid", "exp", "leaky_relu", "tanh", "softmax"):
        spec = {"name": "leaky_relu", "negative_slope": 0.01} if act == "leaky_relu" else act
        n_out = 2 if act == "softmax" else 1
        weights = np.array([[1.0, -0.5]]) if act == "softmax" else np.ones((1, 1))
        layer = Dense(1, n_out, activation=spec, weight_init=weights, bias_init="zeros")
        net = Network([layer])
        (out,) = run(onnx_model(net), X=z)
        ours = net.predict(z)
        nonzero = ours != 0
        assert np.all(out[~nonzero] == 0), act
        assert np.max(np.abs(out[nonzero] - ours[nonzero]) / np.abs(ours[nonzero])) <= 1e-12, act


def test_every_activation_has_a_documented_form():
    # The mapping table names each activation the engine has, and the interchange page lists them.
    from backprop.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS

    assert set(ACTIVATION_OPS) == set(ACTIVATIONS) | set(OUTPUT_ACTIVATIONS)
    page = (ROOT / "docs" / "interchange.md").read_text(encoding="utf-8")
    for name in ACTIVATION_OPS:
        assert f"| {name} |" in page


def conv_network(dtype, seed=0):
    # padding, strides, a rectangular kernel, both pools, overlapping windows: every index matters
    return Network([
        Conv2D(2, 3, 3, padding=1, activation="relu", seed=seed, dtype=dtype),
        MaxPool2D(2),
        Conv2D(3, 4, (2, 3), stride=(1, 2), padding=(1, 0), activation="sigmoid", seed=seed + 1, dtype=dtype),
        AvgPool2D(2, stride=1),
        Flatten(),
        Dense(16, 5, activation="tanh", seed=seed + 2, dtype=dtype),
        Dense(5, 3, activation="softmax", seed=seed + 3, dtype=dtype),
    ], input_shape=(2, 8, 12))


def test_conv_network_matches_onnx_runtime():
    # NCHW in, Conv/MaxPool/AveragePool/Flatten: outputs equal ours to 1e-6 for batches of 1 and 1000
    # (a wrong kernel layout, padding or flattening order would be far off).
    net = conv_network(np.float32)
    sess = session(onnx_model(net))
    rng = np.random.default_rng(1)
    for n in (1, 1000):
        X = rng.standard_normal((n, 2, 8, 12)).astype(np.float32)
        (out,) = sess.run(None, {"X": X})
        assert out.shape == (n, 3) and rel(net.predict(X), out) <= 1e-6


def test_float64_conv_is_refused_and_float32_copy_exported(tmp_path):
    # A float64 conv net: one line naming the missing kernels and the fix; dtype="float32" exports a
    # float32 copy that equals our float32 copy to 1e-6. Max-pooling alone stays float64, to 1e-12.
    net = conv_network(np.float64)
    with pytest.raises(BackpropError, match=r"float64 .*Conv2D.*dtype='float32'") as err:
        net.to_onnx(tmp_path / "m.onnx")
    assert "\n" not in str(err.value) and not (tmp_path / "m.onnx").exists()
    X = np.random.default_rng(2).standard_normal((50, 2, 8, 12))
    (out,) = run(onnx_model(net, dtype="float32"), X=X.astype(np.float32))
    assert rel(net.copy(dtype=np.float32).predict(X.astype(np.float32)), out) <= 1e-6
    pooled = Network([MaxPool2D(2, stride=1), Flatten(), Dense(2 * 7 * 11, 3, activation="tanh", seed=0)],
                     input_shape=(2, 8, 12))
    (out,) = run(onnx_model(pooled), X=X)
    assert out.dtype == np.float64 and rel(pooled.predict(X), out) <= 1e-12


class Doubler(Layer):
    """A layer the exporter does not know."""

    def build(self, input_shape):
        self.input_shape = self.output_shape = tuple(input_shape)
        return self.output_shape

    def forward(self, X, training=False):
        return 2 * X

    n_inputs = n_outputs = property(lambda self: self.input_shape[0])


class Cube(Activation):
    name = "cube"

    def forward(self, Z):
        return Z**3


def test_unsupported_layer_or_activation_is_one_line(tmp_path):
    # An unknown layer or activation is named in one line, and nothing is written.
    net = Network([Dense(2, 3, seed=0), Doubler()])
    with pytest.raises(BackpropError, match=r"^cannot export layer 2 \(Doubler\) to ONNX; supported layers: Dense"):
        net.to_onnx(tmp_path / "a.onnx")
    net = Network([Dense(2, 3, activation=Cube(), seed=0)])
    with pytest.raises(BackpropError, match=r"activation 'cube' has no ONNX form") as err:
        net.to_onnx(tmp_path / "b.onnx")
    assert "\n" not in str(err.value) and not list(tmp_path.iterdir())
    with pytest.raises(BackpropError, match="must be a backprop Network, MLPClassifier or MLPRegressor; got dict"):
        onnx_model({})


def test_failed_export_keeps_the_old_file(tmp_path):
    # The write is atomic: an export that fails leaves an existing file as it was.
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    with pytest.raises(BackpropError):
        conv_network(np.float64).to_onnx(path)
    assert path.read_bytes() == b"old"


def test_missing_onnx_is_one_line(monkeypatch):
    # Without the onnx package: one line saying what to install.
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(BackpropError, match=r"^the onnx package is needed for ONNX export: pip install backprop\[onnx\]$"):
        onnx_model(Network.from_sizes([2, 1], seed=0))


# -- estimators ------------------------------------------------------------------------------------
def _blobs(n=300, k=3, d=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    return rng.standard_normal((n, d)) + 2.0 * np.eye(k, d)[y], y


@pytest.mark.parametrize("kind", ["multiclass-text", "binary-int", "multilabel", "one-class"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_classifier_labels_and_probabilities(kind, dtype, tmp_path):
    # label equals predict() exactly; probabilities equal predict_proba() to the dtype's tolerance.
    from backprop import MLPClassifier

    X, y = _blobs()
    if kind == "multiclass-text":
        y = np.array(["cat", "dog", "emu"], dtype=object)[y]
    elif kind == "binary-int":
        y = np.where(y == 0, 7, -2)
    elif kind == "multilabel":
        y = np.stack([y == 0, y != 1], axis=1).astype(int)
    else:
        y = np.full(len(y), 5)
    est = MLPClassifier(hidden_layer_sizes=(8, 6), activation="tanh", max_iter=30, random_state=0,
                        dtype=dtype).fit(X, y) if kind != "one-class" else \
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0, dtype=dtype).fit(X, y)
    path = est.to_onnx(tmp_path / "c.onnx")
    sess = session(path)
    assert [o.name for o in sess.get_outputs()] == ["label", "probabilities"]
    for rows in (X[:1], X):
        label, proba = sess.run(None, {"X": rows.astype(dtype)})
        np.testing.assert_array_equal(label, est.predict(rows))
        assert rel(est.predict_proba(rows), proba) <= TOL[dtype]
    if kind == "binary-int":
        assert label.dtype == np.int64
    if kind == "multiclass-text":
        assert sess.get_outputs()[0].type == "tensor(string)"


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regressor_variable(loss, tmp_path):
    # `variable` equals predict() to 1e-12 (identity output, and the exp output of the Poisson loss).
    from backprop import MLPRegressor

    X, y = _blobs()
    target = np.exp(X[:, 0] * 0.3) if loss == "poisson" else X @ [1.0, -2.0, 0.5, 0.0]
    est = MLPRegressor(loss=loss, hidden_layer_sizes=(10,), activation="relu", max_iter=40, random_state=0)
    est.fit(X, target)
    (variable,) = run(onnx_model(est), X=X)
    assert variable.shape == (len(X), 1) and rel(est.predict(X), variable[:, 0]) <= 1e-12


def test_conv_estimator_takes_pixel_rows():
    # A conv MLPClassifier (float32) exported: the graph takes rows of C*H*W pixels as predict does.
    from backprop import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 1 * 6 * 6)).astype(np.float32)
    y = (X[:, :18].sum(axis=1) > 0).astype(int) + (X[:, 0] > 1)
    est = MLPClassifier(hidden_layer_sizes=(8,), conv="4x3p1,max2,3x2,avg2", input_shape=(1, 6, 6),
                        max_iter=5, random_state=0, dtype="float32").fit(X, y)
    label, proba = run(onnx_model(est), X=X)
    np.testing.assert_array_equal(label, est.predict(X))
    assert rel(est.predict_proba(X), proba) <= 1e-6


# -- backprop train models and the command line ------------------------------------------------------
def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "backprop", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A classify and a regress model trained by the command line, on features of unequal scales."""
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 3)) * [1.0, 50.0, 0.01] + [0.0, 300.0, -2.0]
    species = np.array(["a", "b", "c"])[np.argmax(X / [1.0, 50.0, 0.01] - [0, 6.0, -200.0], axis=1)]
    _write_csv(folder / "c.csv", ["x1", "x2", "x3", "kind"], [[*r, s] for r, s in zip(X, species)])
    _write_csv(folder / "r.csv", ["x1", "x2", "x3", "y"], [[*r, r[0] * 3 + r[1] / 10] for r in X])
    for name, target in (("c", "kind"), ("r", "y")):
        result = cli("train", f"{name}.csv", "--target", target, "--hidden", "8", "--epochs", "5", "--quiet",
                     "--out", f"{name}.safetensors", cwd=folder)
        assert result.returncode == 0, result.stderr
    return folder, X


def test_cli_export_classifier_takes_raw_columns(trained):
    # The exported graph of a `backprop train` classifier takes the raw columns (scaling inside) and
    # gives the labels `backprop predict` gives, and the network's probabilities to 1e-12.
    from backprop.csvdata import read_csv
    from backprop.preprocessing import load_model

    folder, X = trained
    result = cli("export", "c.safetensors", "--format", "onnx", "--out", "c.onnx", cwd=folder)
    assert result.returncode == 0 and result.stdout == "" and "opset 17" in result.stderr
    network, pre = load_model(folder / "c.safetensors")
    table = read_csv(folder / "c.csv")
    expected = pre.labels(pre.decode(network.predict(pre.transform(table))))
    sess = session(folder / "c.onnx")
    label, proba = sess.run(None, {"X": pre.raw_features(table)})
    assert label.tolist() == expected and rel(network.predict(pre.transform(table)), proba) <= 1e-12
    props = {p.key: p.value for p in onnx.load(str(folder / "c.onnx")).metadata_props}
    assert props["features"] == '["x1", "x2", "x3"]' and props["classes"] == '["a", "b", "c"]'


def test_cli_export_regressor_answers_in_target_units(trained):
    # `variable` is the network's output unscaled by the stored target scaler: `predict`'s numbers.
    from backprop.csvdata import read_csv
    from backprop.preprocessing import load_model

    folder, _ = trained
    assert cli("export", "r.safetensors", "--format", "onnx", "--out", "r.onnx", cwd=folder).returncode == 0
    network, pre = load_model(folder / "r.safetensors")
    table = read_csv(folder / "r.csv")
    (variable,) = run(folder / "r.onnx", X=pre.raw_features(table))
    assert rel(pre.decode(network.predict(pre.transform(table))), variable[:, 0]) <= 1e-12
    # --no-preprocessing: the bare network, scaled inputs in, network outputs out
    assert cli("export", "r.safetensors", "--format", "onnx", "--out", "bare.onnx", "--no-preprocessing",
               cwd=folder).returncode == 0
    (out,) = run(folder / "bare.onnx", X=pre.transform(table))
    assert rel(network.predict(pre.transform(table)), out) <= 1e-12


def test_cli_export_float32_dtype(trained):
    # --dtype float32: the scaling stays float64 (as `predict` does it), the network runs in float32.
    from backprop.csvdata import read_csv
    from backprop.preprocessing import load_model

    folder, _ = trained
    assert cli("export", "c.safetensors", "--format", "onnx", "--out", "c32.onnx", "--dtype", "float32",
               cwd=folder).returncode == 0
    network, pre = load_model(folder / "c.safetensors")
    table = read_csv(folder / "c.csv")
    _, proba = run(folder / "c32.onnx", X=pre.raw_features(table))
    assert proba.dtype == np.float32
    assert rel(network.copy(dtype=np.float32).predict(pre.transform(table).astype(np.float32)), proba) <= 1e-6


def test_cli_export_of_an_estimator_file(tmp_path):
    # A file written by MLPClassifier.save exports with the estimator's head (label, probabilities).
    from backprop import MLPClassifier

    X, y = _blobs()
    est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=20, random_state=0).fit(X, y)
    est.save(tmp_path / "e.safetensors")
    assert cli("export", "e.safetensors", "--format", "onnx", "--out", "e.onnx", cwd=tmp_path).returncode == 0
    label, proba = run(tmp_path / "e.onnx", X=X)
    np.testing.assert_array_equal(label, est.predict(X))
    assert rel(est.predict_proba(X), proba) <= 1e-12


def test_cli_export_bad_input(trained, tmp_path):
    # Usage errors exit 2; a bad model, an --out over the input or a float64 conv model exit 1 with one
    # line and write nothing.
    folder, _ = trained
    assert cli("export", "c.safetensors", "--format", "tflite", "--out", "x", cwd=folder).returncode == 2
    assert cli("export", "c.safetensors", "--out", "x.onnx", cwd=folder).returncode == 2
    for args in (["c.safetensors", "--out", "c.safetensors"], ["c.csv", "--out", "g.onnx"],
                 ["missing.safetensors", "--out", "g.onnx"], ["c.safetensors", "--out", "no/such/g.onnx"],
                 ["c.safetensors", "--out", "-"]):
        result = cli("export", *args[:1], "--format", "onnx", *args[1:], cwd=folder)
        assert result.returncode == 1, args
        assert result.stderr.startswith("backprop: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert not (folder / "g.onnx").exists()
    conv_network(np.float64).save(tmp_path / "conv.safetensors")
    result = cli("export", "conv.safetensors", "--format", "onnx", "--out", "conv.onnx", cwd=tmp_path)
    assert result.returncode == 1 and "--dtype float32" in result.stderr and not (tmp_path / "conv.onnx").exists()
    result = cli("export", "conv.safetensors", "--format", "onnx", "--out", "conv.onnx", "--dtype", "float32",
                 cwd=tmp_path)
    assert result.returncode == 0 and (tmp_path / "conv.onnx").exists()
    X = np.random.default_rng(4).standard_normal((30, 2, 8, 12)).astype(np.float32)
    (out,) = run(tmp_path / "conv.onnx", X=X)
    assert rel(conv_network(np.float64).copy(dtype=np.float32).predict(X), out) <= 1e-6


# -- the interchange page -------------------------------------------------------------------------------
def test_interchange_page_example_runs(tmp_path, monkeypatch):
    # docs/interchange.md, in order in an empty folder: every Python block runs (the first prints the
    # block shown after "prints") and every `backprop ...` line of its shell blocks exits 0.
    import shlex

    page = (ROOT / "docs" / "interchange.md").read_text(encoding="utf-8")
    expected = re.search(r"prints\n\n```\n(.*?)```", page, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    ran = []
    for language, body in re.findall(r"```(\w*)\n(.*?)```", page, re.S):
        if language == "python":
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(body, f"interchange.md block {len(ran) + 1}", "exec"), {})
            if not ran:
                assert out.getvalue() == expected
            ran.append("python")
            continue
        for line in body.splitlines():
            if line.startswith("backprop "):
                result = cli(*shlex.split(line)[1:], cwd=tmp_path)
                assert result.returncode == 0, f"{line}: {result.stderr[-2000:]}"
                ran.append(line)
    assert ran.count("python") == 4 and len(ran) == 6 and (tmp_path / "iris.onnx").exists()


# -- models whose files store the column encoding (text columns one-hot, missing cells filled) -------
def test_cli_export_encodes_text_columns_and_fills_missing_cells(tmp_path):
    # A model trained on a text column and gappy numbers: the graph takes one input per column (text as
    # strings, missing as NaN or a missing spelling, unseen categories) and gives `backprop predict`'s
    # labels exactly and its probabilities to 1e-12.
    rng = np.random.default_rng(5)
    cities = np.array(["Lyon", "Paris", "Rome"])
    n = 240
    city = cities[rng.integers(0, 3, n)]
    size = rng.standard_normal(n) * 10 + 50
    age = rng.standard_normal(n)
    kind = np.where((city == "Paris") ^ (size > 50), "yes", "no")
    cells = [[f"{s:.3f}", f"{a:.3f}", c, k] for s, a, c, k in zip(size, age, city, kind)]
    for i in range(0, n, 17):
        cells[i][0] = "NA"
    for i in range(5, n, 23):
        cells[i][2] = ""
    _write_csv(tmp_path / "t.csv", ["size", "age", "city", "kind"], cells)
    new = [["55.0", "0.1", "Paris", "yes"], ["", "-1", "Oslo", "no"], ["40", "n/a", "", "no"],
           ["61", "2", "NA", "yes"], ["48.5", "0", "Rome", "no"]]
    _write_csv(tmp_path / "new.csv", ["size", "age", "city", "kind"], new)
    assert cli("train", "t.csv", "--target", "kind", "--hidden", "6", "--epochs", "5", "--quiet", "--out", "t.safetensors",
               cwd=tmp_path).returncode == 0
    result = cli("export", "t.safetensors", "--format", "onnx", "--out", "t.onnx", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert cli("predict", "t.safetensors", "new.csv", "--proba", "--out", "p.csv", cwd=tmp_path).returncode == 0
    with open(tmp_path / "p.csv", newline="") as f:
        predicted = list(csv.reader(f))[1:]
    sess = session(tmp_path / "t.onnx")
    assert [(i.name, i.type) for i in sess.get_inputs()] == [
        ("size", "tensor(double)"), ("age", "tensor(double)"), ("city", "tensor(string)")]

    def number(cell):
        return float(cell) if cell.strip().lower() not in ("", "na", "n/a") else np.nan

    feed = {"size": np.array([[number(r[0])] for r in new]), "age": np.array([[number(r[1])] for r in new]),
            "city": np.array([[r[2]] for r in new], dtype=object)}
    label, proba = sess.run(None, feed)
    assert label.tolist() == [row[0] for row in predicted]
    assert rel(np.array([[float(v) for v in row[1:]] for row in predicted]), proba) <= 1e-12


@pytest.mark.parametrize("name", ["legacy_classify", "legacy_regress"])
def test_model_files_without_an_encoding_export(name, tmp_path):
    # Files written before the column encoding (scaler only) export with one X input and give
    # `backprop predict`'s answers: labels exactly, values to 1e-12.
    fixtures = ROOT / "tests" / "fixtures"
    model, data = fixtures / f"{name}.safetensors", fixtures / f"{name}.csv"
    assert cli("export", model, "--format", "onnx", "--out", tmp_path / "m.onnx", cwd=tmp_path).returncode == 0
    assert cli("predict", model, data, "--out", tmp_path / "p.csv", cwd=tmp_path).returncode == 0
    with open(data, newline="") as f:
        rows = list(csv.reader(f))
    with open(tmp_path / "p.csv", newline="") as f:
        predicted = [row[0] for row in list(csv.reader(f))[1:]]
    X = np.array([[float(v) for v in row[:-1]] for row in rows[1:]])
    (answer, *_) = run(tmp_path / "m.onnx", X=X)
    if name == "legacy_classify":
        assert answer.tolist() == predicted
    else:
        assert rel(np.array(predicted, dtype=float), answer[:, 0]) <= 1e-12


def test_a_column_named_like_an_output_is_one_line():
    # With text columns the inputs are named after the columns; one named `label` is refused by name.
    net = Network.from_sizes([4, 3, 2], activation="relu", output_activation="softmax", seed=0)
    net.metadata = {"task": "classify", "features": ["label", "city"], "target": "y", "classes": ["n", "y"],
                    "scaler": {"mean": [1.0, 0.0, 0.0, 0.0], "scale": [2.0, 1.0, 1.0, 1.0]},
                    "preprocessing": {"version": 1, "columns": [
                        {"name": "label", "kind": "numeric", "fill": 0.5},
                        {"name": "city", "kind": "text", "fill": "a", "categories": ["a", "b", "c"]}]}}
    with pytest.raises(BackpropError, match=r"^cannot name the graph's output 'label': a feature column has that name"):
        onnx_model(net)
    net.metadata["features"][0] = net.metadata["preprocessing"]["columns"][0]["name"] = "x"
    label, proba = run(onnx_model(net), x=np.array([[np.nan], [3.0]]), city=np.array([["b"], ["zz"]], dtype=object))
    ours = net.predict(np.array([[(0.5 - 1) / 2, 0, 1, 0], [(3 - 1) / 2, 0, 0, 0]]))
    assert label.tolist() == [["n", "y"][k] for k in ours.argmax(axis=1)] and rel(ours, proba) <= 1e-12
