"""`backprop info MODEL`: what a model file holds (architecture, parameters, training, metrics)."""

from __future__ import annotations

import json
from pathlib import Path

from ._common import format_table

NAME = "info"
HELP = "describe a model file: architecture, parameter count, training settings, final metrics"


def add_arguments(parser):
    parser.add_argument("model", help="model file (.safetensors) written by backprop")
    parser.add_argument("--json", action="store_true",
                        help="print the architecture and metadata as JSON instead")


def _shape(shape) -> str:
    return "x".join(map(str, shape))


def run(args) -> int:
    from ..network import Network
    from ..preprocessing import is_estimator_file

    network = Network.load(args.model)
    meta = network.metadata
    if args.json:
        print(json.dumps({"architecture": network.config(), "metadata": meta}, indent=2))
        return 0
    n_params = sum(p.size for p in network.parameters())
    print(f"model: {args.model} ({Path(args.model).stat().st_size} bytes)")
    print(f"network: {network.title}")
    rows = []
    for i, layer in enumerate(network.layers, start=1):
        act = getattr(layer, "activation", None)
        shape = (f"{layer.n_inputs} -> {layer.n_outputs}" if network.is_dense
                 else f"{_shape(layer.input_shape)} -> {_shape(layer.output_shape)}")
        rows.append([str(i), repr(layer) if not network.is_dense else type(layer).__name__, shape,
                     act.name if act is not None else "-", str(layer.n_params)])
    print(format_table(["layer", "type", "shape", "activation", "parameters"], rows))
    print(f"parameters: {n_params} ({network.dtype.name})")
    print(f"loss: {network.loss_fn.name} ({network.loss_fn.reduction})")
    if "task" in meta:
        print(f"task: {meta['task']}")
    if "target" in meta:
        print(f"target: {meta['target']}")
    if "features" in meta:
        print(f"features ({len(meta['features'])}): {', '.join(map(str, meta['features']))}")
        _print_encoding(meta)
    if "classes" in meta:
        print(f"classes ({len(meta['classes'])}): {', '.join(map(str, meta['classes']))}")
    for section in ("training", "metrics"):
        if isinstance(meta.get(section), dict) and meta[section]:
            print(f"{section}:")
            for key, value in meta[section].items():
                shown = (f"{value:.6g}" if isinstance(value, float)
                         else value if isinstance(value, str) else json.dumps(value))
                print(f"  {key}: {shown}")
    if "backprop_version" in meta:
        print(f"written by: backprop {meta['backprop_version']}")
    if "task" in meta and meta.get("estimator") in ("MLPClassifier", "MLPRegressor"):
        print(f"estimator: {meta['estimator']} (`backprop train` fitted it; {meta['estimator']}.load reads this file; "
              "--json shows its params and fitted attributes)")
    if is_estimator_file(meta):
        _print_estimator(args.model, meta)
    known = {"task", "target", "features", "classes", "training", "metrics", "backprop_version",
             "scaler", "target_scaler", "history", "preprocessing", "format", "estimator", "params", "fitted"}
    other = sorted(set(meta) - known)
    if other:
        print(f"other metadata: {', '.join(other)} (see --json)")
    return 0


def _print_encoding(meta) -> None:
    """Each feature's encoding (a file from before text columns: standardisation only)."""
    from .._validation import BackpropError
    from ..preprocessing import Encoding, Standardizer

    try:
        scaler = Standardizer.from_dict(meta.get("scaler"), "scaler")
        if "preprocessing" in meta:
            rows = Encoding.from_dict(meta["preprocessing"]).describe(scaler)
        else:
            rows = [(name, f"numeric: standardised with mean {m:.6g}, scale {s:.6g}; no missing values "
                           "allowed (written before missing-value support)")
                    for name, m, s in zip(meta["features"], scaler.mean, scaler.scale)]
    except (BackpropError, TypeError):
        return
    print("encoding:")
    for name, how in rows:
        print(f"  {name}: {how}")


def _print_estimator(path, meta) -> None:
    """A file from MLPClassifier/MLPRegressor.save: what the command line reads from it (features,
    classes), then its hyper-parameters and fitted numbers."""
    from .._validation import BackpropError
    from ..preprocessing import estimator_preprocessor

    print(f"written by: {meta.get('estimator')}.save")
    try:
        pre = estimator_preprocessor(meta, f"`{path}`")
    except BackpropError as exc:
        print(f"command line: cannot predict with it ({exc})")
    else:
        print(f"task: {pre.task}")
        if pre.positional:
            print(f"features ({len(pre.features)}): by position (fitted on an array without column names: "
                  "predict takes every column but --target, in order)")
        else:
            print(f"features ({len(pre.features)}): {', '.join(pre.features)}")
        if pre.task == "classify":
            how = "one logistic output" if pre.binary else "softmax outputs"
            print(f"classes ({len(pre.encoder)}, {how}): {', '.join(map(str, pre.encoder.classes))}")
        print("encoding: none (the estimator takes X as given; scale it before, e.g. in a Pipeline)")
    for section, keys in (("params", ("hidden_layer_sizes", "activation", "solver", "alpha", "batch_size",
                                      "learning_rate_init", "max_iter", "early_stopping", "random_state", "conv",
                                      "input_shape")),
                          ("fitted", ("n_iter_", "loss_", "best_loss_", "best_validation_score_"))):
        values = meta.get(section) if isinstance(meta.get(section), dict) else {}
        shown = [(k, values[k]) for k in keys if values.get(k) is not None]
        if shown:
            print(f"{section}:")
            for key, value in shown:
                print(f"  {key}: {f'{value:.6g}' if isinstance(value, float) else json.dumps(value)}")
