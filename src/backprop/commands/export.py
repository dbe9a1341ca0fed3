"""`backprop export MODEL --format onnx --out FILE`: a model file as an ONNX graph (docs/interchange.md)."""

from __future__ import annotations

from ._common import note, refuse_overwrite
from ._outputs import Paths

NAME = "export"
HELP = "write a model file as an ONNX graph (feature scaling and class labels inside) for ONNX Runtime"
PATHS = Paths(inputs=("model",), outputs=("out",))  # checked by cli.main before run


def add_arguments(parser):
    parser.add_argument("model", help="model file (.safetensors) written by backprop train, Network.save or an estimator's save")
    parser.add_argument("--format", choices=["onnx"], required=True, help="the interchange format (onnx)")
    parser.add_argument("--out", required=True, metavar="FILE", help="write the graph here (atomically)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default=None,
                        help="the graph's float type (default: the model's; float64 conv models need float32)")
    parser.add_argument("--no-preprocessing", action="store_true",
                        help="export the bare network, without the stored feature scaling and class labels")


def _model(path):
    """The object to export: an estimator for files its save wrote, else the network."""
    from ..network import Network
    from ..preprocessing import is_estimator_file

    network = Network.load(path)  # a `backprop train` file: the network with its preprocessing
    kind = network.metadata.get("estimator") if is_estimator_file(network.metadata) else None
    if kind in ("MLPClassifier", "MLPRegressor"):
        from .. import estimators

        return getattr(estimators, kind).load(path)
    return network


def run(args) -> int:
    from ..interop.onnx_export import OPSET, to_onnx

    if str(args.out) == "-":
        from .._validation import BackpropError

        raise BackpropError("`--out` must be a file name; an ONNX graph is binary and is not written to stdout")
    refuse_overwrite(args.out, args.model)
    model = _model(args.model)
    path = to_onnx(model, args.out, dtype=args.dtype, preprocessing=not args.no_preprocessing)
    note(f"wrote {path} (ONNX opset {OPSET})")
    return 0
