"""The preprocessing a ``backprop train`` model file stores, as ONNX nodes in front of and behind
the network, so that the exported graph takes the raw feature columns and answers in labels.

Two input formats, after the model file's metadata (docs/model-format.md):

- a model whose metadata has no ``preprocessing`` (every feature numeric, none missing): one input
  ``X``, float64, shape (N, n_features), the columns in the order of ``features``; the graph
  computes ``(X - mean) / scale`` with the stored ``scaler``, as ``Standardizer`` does;
- a model with ``preprocessing`` (the column encoding: missing cells filled, text columns one-hot
  encoded): NaN in a numeric column is a missing cell and becomes the stored median, then the scaler
  applies. Without text columns the input is still ``X`` (N, n_features); with them, there is one
  input per feature column, named as the column, shape (N, 1): float64 for a numeric column, string
  for a text column (an empty string or a spelling of missing such as ``NA`` becomes the stored most
  frequent value; then one 0/1 input per stored category, all zeros for a value never seen in
  training: ``ai.onnx.ml`` ``LabelEncoder`` to the category's index, ``Equal`` to each index).

Then, after a ``Cast`` to float32 for a float32 network and a ``Reshape`` to NCHW for an image
network, the network; classification gives ``label`` (the class of the largest output, int64 or
string as the stored ``classes``) and ``probabilities`` (the network's outputs); regression gives
``variable``, ``output * s + m`` with the stored ``target_scaler``, float64.
"""

from __future__ import annotations

import numpy as np

from .._validation import BackpropError

__all__ = ["has_preprocessing", "preprocessed_graph"]


def has_preprocessing(meta: dict) -> bool:
    """True for the metadata ``backprop train`` writes (it names a task and features)."""
    return isinstance(meta, dict) and "task" in meta and "features" in meta


def _preprocessor(network, meta: dict):
    from ..preprocessing import Preprocessor

    pre = Preprocessor.from_metadata(meta, "the model")
    encoding = getattr(pre, "encoding", None)
    width = encoding.width if encoding is not None else len(pre.features)
    if network.n_inputs != width or network.n_outputs != pre.n_outputs:
        raise BackpropError(
            f"the model's network has {network.n_inputs} inputs and {network.n_outputs} outputs but its "
            f"metadata describes {width} inputs and {pre.n_outputs} outputs; the file is inconsistent"
        )
    return pre, encoding


def _matrix_features(g, pre) -> str:
    """The format without ``preprocessing``: X (N, n_features), standardised."""
    x = g.add_input("X", np.float64, ["N", len(pre.features)])
    return g.op("Div", g.op("Sub", x, g.const("mean", pre.scaler.mean, np.float64)),
                g.const("scale", pre.scaler.scale, np.float64))


def _column_features(g, pre, encoding) -> str:
    """The format with ``preprocessing``: one input per column, filled, scaled and one-hot encoded
    into the network's inputs (numeric columns first, then each text column's categories)."""
    from ..tables import null_spellings

    numeric = encoding.numeric
    if not encoding.text:  # numbers only: one matrix, as without `preprocessing`
        inputs = {}
        x = g.add_input("X", np.float64, ["N", len(numeric)])
    else:
        inputs = {c.name: g.add_input(c.name, np.float64 if c.kind == "numeric" else object, ["N", 1])
                  for c in encoding.columns}
    parts = []
    if numeric:
        m = len(numeric)
        if inputs:
            x = inputs[numeric[0].name] if m == 1 else g.op("Concat", *(inputs[c.name] for c in numeric), axis=1)
        fills = g.const("median", [[c.fill for c in numeric]], np.float64)
        x = g.op("Where", g.op("IsNaN", x), fills, x)
        parts.append(g.op("Div", g.op("Sub", x, g.const("mean", pre.scaler.mean[:m], np.float64)),
                          g.const("scale", pre.scaler.scale[:m], np.float64)))
    for col in encoding.text:
        cats = list(col.categories)
        fill = cats.index(col.fill) if col.fill in cats else -1
        missing = [w for w in null_spellings() if w not in cats]
        index = g.op("LabelEncoder", inputs[col.name], domain="ai.onnx.ml", keys_strings=cats + missing,
                     values_int64s=list(range(len(cats))) + [fill] * len(missing), default_int64=-1)
        hot = g.op("Equal", index, g.const(f"{col.name}_categories", [list(range(len(cats)))], np.int64))
        parts.append(g.op("Cast", hot, to=g.elem_type(np.float64)))
    return parts[0] if len(parts) == 1 else g.op("Concat", *parts, axis=1)


def preprocessed_graph(network, meta: dict):
    """The checked ONNX model of a ``backprop train`` model: raw features in, labels or values out."""
    from .onnx_export import Graph, _as_images, binary_outputs, label_output, network_nodes

    pre, encoding = _preprocessor(network, meta)
    g = Graph(network.dtype)
    x = _matrix_features(g, pre) if encoding is None else _column_features(g, pre, encoding)
    if network.dtype != np.float64:
        x = g.op("Cast", x, to=g.elem_type(network.dtype))
    out = network_nodes(g, network, _as_images(g, network, x))
    props = {"source": "backprop train", "task": pre.task, "features": list(pre.features),
             "target": pre.target or ""}
    if pre.task == "classify" and pre.binary:  # two classes on one logistic output: class 1 above 0.5
        above = g.op("Cast", g.op("Greater", out, g.const("half", 0.5)), to=g.onnx.TensorProto.INT64)
        binary_outputs(g, pre.encoder.classes, above, out, network.dtype)
        props["classes"] = list(pre.encoder.classes)
    elif pre.task == "classify":
        label_output(g, pre.encoder.classes, g.op("ArgMax", out, axis=1, keepdims=0))
        g.add_output("probabilities", out, network.dtype, ["N", pre.n_outputs])
        props["classes"] = list(pre.encoder.classes)
    else:
        if network.dtype != np.float64:
            out = g.op("Cast", out, to=g.elem_type(np.float64))
        ts = pre.target_scaler
        value = g.op("Add", g.op("Mul", out, g.const("target_scale", ts.scale, np.float64)),
                     g.const("target_mean", ts.mean, np.float64))
        g.add_output("variable", value, np.float64, ["N", 1])
    return g.model(f"backprop train model: {network.title}", props)
