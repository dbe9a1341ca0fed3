"""`backprop plot-boundary MODEL DATA.csv --out boundary.png`: decision regions of a 2-feature model.

The plane is coloured by the predicted class (or by the predicted value for regression), with the
rows of DATA on top, coloured by their true target when the file holds it.
"""

from __future__ import annotations

import argparse

from ._common import add_data_options, add_target_option, model_and_data, note, positive_int, refuse_overwrite

NAME = "plot-boundary"
MAX_RESOLUTION = 2000
HELP = "draw the decision regions of a model with two features, with the data points"


def add_arguments(parser):
    parser.add_argument("model", help="model file written by `backprop train` or an estimator's save() (two features)")
    parser.add_argument("data", help="CSV file with the model's two feature columns (target optional)")
    parser.add_argument("--out", required=True, metavar="IMAGE", help="image to write (.png, .svg, .pdf)")
    parser.add_argument("--resolution", type=resolution, default=200,
                        help=f"grid points per axis, 2 to {MAX_RESOLUTION} (default 200)")
    add_data_options(parser)
    add_target_option(parser)


def resolution(text: str) -> int:
    value = positive_int(text)
    if not 2 <= value <= MAX_RESOLUTION:
        raise argparse.ArgumentTypeError(f"must be an integer from 2 to {MAX_RESOLUTION}; got {text!r}")
    return value


def run(args) -> int:
    from pathlib import Path

    from .._validation import BackpropError
    from ..plots import check_plot_path, plot_decision_boundary

    def two_features(network, pre):
        if len(pre.features) != 2:
            raise BackpropError(
                f"plot-boundary needs a model with exactly 2 features; `{args.model}` has "
                f"{len(pre.features)} ({', '.join(pre.features)}); train one on two columns with --features A,B"
            )

    check_plot_path(args.out)
    refuse_overwrite(args.out, args.data, args.model)
    network, pre, table, _ = model_and_data(args, check=two_features)
    X_raw = pre.raw_features(table)
    values = pre.targets(table) if pre.has_target(table) else None

    def predict(grid):
        return pre.decode(network.predict(pre.scaler.transform(grid)))

    classes = [str(c) for c in pre.encoder.classes] if pre.task == "classify" else []
    plot_decision_boundary(predict, X_raw, args.out, task=pre.task, point_values=values,
                           class_names=classes, feature_names=pre.features,
                           title=f"{network} on {Path(args.data).name}", resolution=args.resolution)
    note(f"decision regions written to {args.out}")
    return 0
