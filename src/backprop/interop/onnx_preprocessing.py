"""The preprocessing a ``backprop train`` model file stores, as ONNX nodes in front of and behind
the network, so that the exported graph takes the raw feature columns and answers in labels.

The graph of such a model:

- input ``X``: float64, shape (N, n_features), the columns in the order of the metadata's
  ``features`` (also stored in the ONNX model's ``features`` property);
- the feature steps, in order (``FEATURE_STEPS``); today one, ``scaler``: ``(X - mean) / scale``
  in float64, as :class:`backprop.preprocessing.Standardizer` computes it, then a ``Cast`` to
  float32 for a float32 network;
- the network (and a ``Reshape`` to NCHW first for image networks, whose rows are pixels);
- classification: ``probabilities`` (the network's outputs) and ``label``, the class of the
  largest output (int64 or string, as the stored ``classes``); regression: ``variable``,
  ``output * s + m`` with the stored ``target_scaler``, float64.

A new step (the encoding of text columns, say) is one more entry in ``FEATURE_STEPS``: a function
``step(g, meta, x) -> x`` that reads its part of the metadata and returns the new tensor, and a
``feature_inputs`` that declares the graph's inputs when they are no longer one float matrix.
"""

from __future__ import annotations

import numpy as np

from .._validation import BackpropError

__all__ = ["has_preprocessing", "preprocessed_graph", "FEATURE_STEPS"]


def has_preprocessing(meta: dict) -> bool:
    """True for the metadata ``backprop train`` writes (it names a task and features)."""
    return isinstance(meta, dict) and "task" in meta and "features" in meta


def _scaler(g, meta, x: str) -> str:
    from ..preprocessing import Standardizer

    scaler = Standardizer.from_dict(meta.get("scaler"), "scaler")
    return g.op("Div", g.op("Sub", x, g.const("mean", scaler.mean, np.float64)),
                g.const("scale", scaler.scale, np.float64))


#: (metadata key, step) in the order the model applies them to the raw features.
FEATURE_STEPS = [("scaler", _scaler)]


def _preprocessor(network, meta: dict):
    from ..preprocessing import Preprocessor

    pre = Preprocessor.from_metadata(meta, "the model")
    if network.n_inputs != len(pre.features) or network.n_outputs != pre.n_outputs:
        raise BackpropError(
            f"the model's network has {network.n_inputs} inputs and {network.n_outputs} outputs but its "
            f"metadata lists {len(pre.features)} features and {pre.n_outputs} outputs; the file is inconsistent"
        )
    return pre


def preprocessed_graph(network, meta: dict):
    """The checked ONNX model of a ``backprop train`` model: raw features in, labels or values out."""
    from .onnx_export import Graph, _as_images, label_output, network_nodes

    pre = _preprocessor(network, meta)
    g = Graph(network.dtype)
    x = g.add_input("X", np.float64, ["N", len(pre.features)])
    for _, step in FEATURE_STEPS:
        x = step(g, meta, x)
    if network.dtype != np.float64:
        x = g.op("Cast", x, to=g.elem_type(network.dtype))
    out = network_nodes(g, network, _as_images(g, network, x))
    props = {"source": "backprop train", "task": pre.task, "features": list(pre.features),
             "target": pre.target or ""}
    if pre.task == "classify":
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
