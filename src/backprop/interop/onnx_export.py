"""ONNX export: a Network, a fitted estimator or a ``backprop train`` model as an ONNX graph.

The graph is built with ``onnx.helper`` (default domain, opset ``OPSET``, IR version
``IR_VERSION``) and checked with ``onnx.checker.check_model(full_check=True)`` before it is
written (atomically). What each piece becomes:

- ``Dense``: ``Gemm(X, W, b)`` (``MatMul(X, W)`` without a bias); W keeps its (n_in, n_out) layout.
- ``Conv2D``: ``Conv`` (OIHW kernel, ``pads`` = padding on both sides), ``MaxPool2D``/``AvgPool2D``:
  ``MaxPool``/``AveragePool`` (no padding, floor), ``Flatten``: ``Flatten(axis=1)``. The graph is
  NCHW throughout (the layers' channels-last arrays are an internal layout of the same function),
  and ``Flatten`` of NCHW is the C-H-W order ours emits, so the Dense weights after it are unchanged.
- activations, see ``ACTIVATION_OPS``: relu, tanh and softmax are ONNX's ``Relu``, ``Tanh`` and
  ``Softmax(axis=-1)``; sigmoid, leaky_relu and exp are composed from primitives, as the engine
  computes them, because ONNX Runtime's ``Sigmoid`` kernel is an approximation (1.32: 1e-3 relative
  off in float64 at z = -30, 3.9 relative off near z = -18 in float32) and ``LeakyRelu``'s slope is a float32 attribute
  (0.01 would be 1e-9 off in float64).

A float64 network with Conv2D or AvgPool2D layers is refused unless ``dtype="float32"``: ONNX
Runtime's CPU provider has no float64 ``Conv`` or ``AveragePool`` kernel, so such a graph would be
valid ONNX that the most common runtime cannot run. ``dtype="float32"`` exports a float32 copy.

The heads (what the graph outputs) are in ``_estimator_head`` and ``onnx_preprocessing``:
classifiers give ``label`` (int64, string, bool or double, as their classes) and
``probabilities`` as skl2onnx's MLP converter does, regressors ``variable``, a plain network
``output``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._validation import BackpropError, check_dtype
from ..activations import ACTIVATIONS, EXP_CAP, OUTPUT_ACTIVATIONS
from ..layers import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D
from ._deps import require

__all__ = ["OPSET", "IR_VERSION", "ACTIVATION_OPS", "onnx_model", "to_onnx", "Graph"]

#: The default-domain opset of every exported graph (onnx 1.12's; tested with onnxruntime 1.32).
OPSET = 17
#: IR version 8 is the one that goes with opset 17 (onnx 1.12).
IR_VERSION = 8
#: The ``ai.onnx.ml`` opset, imported only by graphs that encode text columns (its LabelEncoder).
ML_OPSET = 2

#: What each activation becomes (z is the layer's net input).
ACTIVATION_OPS = {
    "identity": "nothing (z passes through)",
    "relu": "Relu(z)",
    "tanh": "Tanh(z)",
    "softmax": "Softmax(z, axis=-1)",
    "sigmoid": "E = Exp(Neg(Abs(z))); Div(Where(GreaterOrEqual(z, 0), 1, E), Add(1, E))",
    "leaky_relu": "Where(Greater(z, 0), z, Mul(z, negative_slope))",
    "exp": f"Exp(Min(z, {EXP_CAP:g}))",
}
_LAYERS = "Dense, Conv2D, MaxPool2D, AvgPool2D, Flatten"


class Graph:
    """A graph under construction: nodes, constants (initializers), inputs and outputs, with
    unique tensor names. ``dtype`` is the float type of the network's tensors."""

    def __init__(self, dtype):
        self.onnx = require("onnx", "ONNX export")
        self.dtype = np.dtype(dtype)
        self.nodes, self.constants, self.inputs, self.outputs = [], [], [], []
        self._used: set[str] = set()
        self.domains: dict[str, int] = {"": OPSET}

    def name(self, hint: str) -> str:
        name, k = hint, 1
        while name in self._used:
            k += 1
            name = f"{hint}_{k}"
        self._used.add(name)
        return name

    def elem_type(self, dtype) -> int:
        return self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))

    def const(self, hint: str, value, dtype=None) -> str:
        """A constant tensor (``dtype`` default: the graph's float type; object arrays are strings)."""
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self.name(hint)
        self.constants.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
        """Add one node; returns its output's name (``out`` names it exactly). ``domain=
        "ai.onnx.ml"`` takes an operator of the ML domain (``ML_OPSET``)."""
        name = self.name(out or op_type.lower())
        if out is not None and name != out:
            raise BackpropError(
                f"cannot name the graph's output {out!r}: a feature column has that name; rename the column "
                "and train again"
            )
        if attrs.get("domain"):
            self.domains[attrs["domain"]] = ML_OPSET
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [name], name=f"{name}_node", **attrs))
        return name

    def add_input(self, name: str, dtype, shape) -> str:
        self.name(name)
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, self.elem_type(dtype), list(shape)))
        return name

    def add_output(self, name: str, tensor: str, dtype, shape) -> None:
        self.op("Identity", tensor, out=name)
        self.outputs.append(self.onnx.helper.make_tensor_value_info(name, self.elem_type(dtype), list(shape)))

    def model(self, doc: str, props: dict):
        helper = self.onnx.helper
        graph = helper.make_graph(self.nodes, "backprop", self.inputs, self.outputs, self.constants, doc_string=doc)
        from .. import __version__

        opsets = [helper.make_opsetid(domain, version) for domain, version in self.domains.items()]
        model = helper.make_model(graph, opset_imports=opsets, ir_version=IR_VERSION,
                                  producer_name="backprop", producer_version=__version__, doc_string=doc)
        helper.set_model_props(model, {k: v if isinstance(v, str) else json.dumps(v) for k, v in props.items()})
        self.onnx.checker.check_model(model, full_check=True)
        return model


# -- the network ---------------------------------------------------------------------------------
def _activation(g: Graph, act, z: str, where: str) -> str:
    """The activation's output for net input ``z`` (see ACTIVATION_OPS)."""
    known = {**ACTIVATIONS, **OUTPUT_ACTIVATIONS}
    name = getattr(act, "name", None)
    if name not in known or type(act) is not known[name]:
        raise BackpropError(
            f"cannot export {where} to ONNX: its activation {name or type(act).__name__!r} has no ONNX form; "
            f"supported: {', '.join(sorted(ACTIVATION_OPS))}"
        )
    if name == "identity":
        return z
    if name == "relu":
        return g.op("Relu", z)
    if name == "tanh":
        return g.op("Tanh", z)
    if name == "softmax":
        return g.op("Softmax", z, axis=-1)
    if name == "exp":
        return g.op("Exp", g.op("Min", z, g.const("exp_cap", EXP_CAP)))
    zero = g.const("zero", 0.0)
    if name == "leaky_relu":
        slope = g.const("negative_slope", act.negative_slope)
        return g.op("Where", g.op("Greater", z, zero), z, g.op("Mul", z, slope))
    # sigmoid, as activations.sigmoid: E = e^-|z|; 1 / (1 + E) for z >= 0, E / (1 + E) below
    one = g.const("one", 1.0)
    E = g.op("Exp", g.op("Neg", g.op("Abs", z)))
    return g.op("Div", g.op("Where", g.op("GreaterOrEqual", z, zero), one, E), g.op("Add", one, E))


def check_exportable(network, dtype) -> None:
    """Refuse, in one line, a layer ONNX export does not know or a float64 conv network."""
    for i, layer in enumerate(network.layers, start=1):
        if type(layer) not in (Dense, Conv2D, MaxPool2D, AvgPool2D, Flatten):
            raise BackpropError(
                f"cannot export layer {i} ({type(layer).__name__}) to ONNX; supported layers: {_LAYERS}"
            )
    if np.dtype(dtype) == np.float64:
        slow = sorted({type(layer).__name__ for layer in network.layers if type(layer) in (Conv2D, AvgPool2D)})
        if slow:
            raise BackpropError(
                f"cannot export a float64 network with {' and '.join(slow)} layers to ONNX: ONNX Runtime's CPU "
                "provider has no float64 Conv or AveragePool kernel; pass dtype='float32' (--dtype float32) "
                "to export a float32 copy"
            )


def network_nodes(g: Graph, network, x: str) -> str:
    """Nodes for every layer of ``network`` from tensor ``x`` (NCHW images or (N, n) rows in the
    network's layout); returns the output tensor's name."""
    for i, layer in enumerate(network.layers, start=1):
        where = f"layer {i} ({layer!r})"
        if type(layer) is Dense:
            W = g.const(f"W{i}", layer.params["W"])
            x = g.op("Gemm", x, W, g.const(f"b{i}", layer.params["b"])) if layer.use_bias else g.op("MatMul", x, W)
            x = _activation(g, layer.activation, x, where)
        elif type(layer) is Conv2D:
            (ph, pw) = layer.padding
            inputs = [x, g.const(f"W{i}", layer.params["W"])]
            if layer.use_bias:
                inputs.append(g.const(f"b{i}", layer.params["b"]))
            x = g.op("Conv", *inputs, kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                     pads=[ph, pw, ph, pw])
            x = _activation(g, layer.activation, x, where)
        elif type(layer) in (MaxPool2D, AvgPool2D):
            x = g.op("MaxPool" if type(layer) is MaxPool2D else "AveragePool", x,
                     kernel_shape=list(layer.pool_size), strides=list(layer.stride))
        elif type(layer) is Flatten:
            if len(layer.input_shape) == 3:
                x = g.op("Flatten", x, axis=1)
        else:  # check_exportable ran first; kept so a new layer type cannot slip through
            raise BackpropError(f"cannot export {where} to ONNX; supported layers: {_LAYERS}")
    return x


def _as_images(g: Graph, network, x: str) -> str:
    """Rows of C*H*W pixel values (C-H-W order) -> NCHW, for networks that take images."""
    if not network.images_in:
        return x
    return g.op("Reshape", x, g.const("image_shape", [-1, *network.input_shape], np.int64))


# -- heads ---------------------------------------------------------------------------------------
def class_constant(g: Graph, classes) -> tuple[str, np.dtype]:
    """The class labels as a constant: int64, string, bool or double (from their numpy kind)."""
    values = np.asarray(classes)
    kind = values.dtype.kind
    if kind in "iu":
        values = values.astype(np.int64)
    elif kind in "UO" and all(isinstance(v, str) for v in values.tolist()):
        values = np.array(values.tolist(), dtype=object)
    elif kind == "f":
        values = values.astype(np.float64)
    elif kind != "b":
        raise BackpropError(
            f"cannot export class labels of dtype {values.dtype} to ONNX; labels must be integers, text, "
            "booleans or numbers"
        )
    return g.const("classes", values, values.dtype), values.dtype


def label_output(g: Graph, classes, index: str) -> None:
    """``label`` = classes[index] for an (N,) int64 index tensor."""
    table, dtype = class_constant(g, classes)
    g.add_output("label", g.op("Gather", table, index, axis=0), dtype, ["N"])


def _estimator_head(g: Graph, est, out: str, dtype) -> None:
    n_out = est.n_outputs_
    if not hasattr(est, "classes_"):
        g.add_output("variable", out, dtype, ["N", n_out])
        return
    kind = est._y_type
    if kind == "multiclass":
        label_output(g, est.classes_, g.op("ArgMax", out, axis=1, keepdims=0))
        g.add_output("probabilities", out, dtype, ["N", n_out])
        return
    eps = np.finfo(dtype).eps  # predict_proba clips logistic outputs to [eps, 1 - eps]
    p = g.op("Clip", out, g.const("eps", eps), g.const("one_minus_eps", 1 - eps))
    above = g.op("Cast", g.op("Greater", out, g.const("half", 0.5)), to=g.onnx.TensorProto.INT64)
    if kind == "multilabel-indicator":
        g.add_output("label", above, np.int64, ["N", n_out])
        g.add_output("probabilities", p, dtype, ["N", n_out])
        return
    classes = list(est.classes_) * (2 if len(est.classes_) == 1 else 1)  # one class: always it
    binary_outputs(g, np.asarray(classes, dtype=est.classes_.dtype), above, p, dtype)


def binary_outputs(g: Graph, classes, above: str, p: str, dtype) -> None:
    """Two classes on one logistic output: ``label`` = classes[above] for the (N, 1) int64
    ``above`` (output > 0.5) and ``probabilities`` = [1 - p, p]."""
    label_output(g, classes, g.op("Squeeze", above, g.const("axis_1", [1], np.int64)))
    g.add_output("probabilities", g.op("Concat", g.op("Sub", g.const("one", 1.0), p), p, axis=1), dtype, ["N", 2])


# -- entry points --------------------------------------------------------------------------------
def _target_dtype(current, dtype):
    return np.dtype(current) if dtype is None else check_dtype("dtype", dtype)


def _network_graph(network, dtype, preprocessing: bool):
    from .onnx_preprocessing import has_preprocessing, preprocessed_graph

    dtype = _target_dtype(network.dtype, dtype)
    check_exportable(network, dtype)
    if dtype != network.dtype:
        network = network.copy(dtype=dtype)
    meta = network.metadata if isinstance(getattr(network, "metadata", None), dict) else {}
    if preprocessing and has_preprocessing(meta):
        return preprocessed_graph(network, meta)
    g = Graph(dtype)
    shape = ["N", *network.input_shape]
    out = network_nodes(g, network, g.add_input("X", dtype, shape))
    g.add_output("output", out, dtype, ["N", network.n_outputs])
    return g.model(network.title, {"source": "Network", "input_shape": list(network.input_shape)})


def _estimator_graph(est, dtype):
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est, "coefs_")
    network = est._network()
    dtype = _target_dtype(network.dtype, dtype)
    check_exportable(network, dtype)
    if dtype != network.dtype:
        network = network.copy(dtype=dtype)
    g = Graph(dtype)
    x = _as_images(g, network, g.add_input("X", dtype, ["N", est.n_features_in_]))
    _estimator_head(g, est, network_nodes(g, network, x), dtype)
    props = {"source": type(est).__name__}
    if hasattr(est, "feature_names_in_"):
        props["features"] = [str(f) for f in est.feature_names_in_]
    if hasattr(est, "classes_"):
        props["classes"] = [c.item() if hasattr(c, "item") else c for c in est.classes_]
    return g.model(f"{type(est).__name__}: {network.title}", props)


def onnx_model(model, dtype=None, preprocessing: bool = True):
    """The ONNX graph (an ``onnx.ModelProto``, checked) of ``model``: a Network, or a fitted
    MLPClassifier / MLPRegressor.

    - ``dtype``: the graph's float type, default the model's; ``"float32"`` exports a float32
      copy (needed for float64 conv networks, see the module docstring).
    - ``preprocessing``: for a network loaded from a ``backprop train`` model file, put the
      stored feature scaling and class labels (or target scaling) into the graph, so that it
      takes the raw feature columns (default True); False exports the bare network.
    """
    from ..network import Network

    if isinstance(model, Network):
        return _network_graph(model, dtype, preprocessing)
    if hasattr(model, "_network") and hasattr(model, "hidden_layer_sizes"):
        return _estimator_graph(model, dtype)
    raise BackpropError(
        f"`model` must be a backprop Network, MLPClassifier or MLPRegressor; got {type(model).__name__}"
    )


def to_onnx(model, path, dtype=None, preprocessing: bool = True) -> Path:
    """Write ``model`` (a Network or a fitted estimator) to ``path`` as ONNX, atomically;
    returns the path. ``dtype`` and ``preprocessing`` are those of :func:`onnx_model`."""
    from ..io import atomic_write_bytes

    proto = onnx_model(model, dtype=dtype, preprocessing=preprocessing)
    return atomic_write_bytes(path, proto.SerializeToString())
