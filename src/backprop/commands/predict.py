"""`backprop predict MODEL DATA.csv [--out FILE] [--proba]`: predictions for every row, as CSV."""

from __future__ import annotations

from ._common import add_data_options, add_target_option, model_and_data, network_outputs, note, refuse_overwrite

NAME = "predict"
HELP = "predict the target for each row of a CSV file with a trained model"


def add_arguments(parser):
    parser.add_argument("model", help="model file written by `backprop train` or an estimator's save()")
    parser.add_argument("data", help="CSV or Parquet file holding (at least) the model's feature columns, by name")
    parser.add_argument("--out", default=None, metavar="FILE",
                        help="write the predictions here (atomically); default: stdout")
    parser.add_argument("--proba", action="store_true",
                        help="add one probability column per class (classification models)")
    add_target_option(parser)
    add_data_options(parser)


def run(args) -> int:
    from .._validation import BackpropError
    from ..csvdata import write_csv

    refuse_overwrite(args.out, args.data, args.model)
    network, pre, table, X = model_and_data(args)
    if args.proba and pre.task != "classify":
        raise BackpropError("`--proba` needs a classification model; this model does regression")
    out = network_outputs(network, X, pre, table)
    name = pre.target or "prediction"
    if pre.task == "classify":
        columns = [name]
        predicted = pre.labels(pre.decode(out))
        if args.proba:
            columns += [f"proba_{c}" for c in pre.encoder.classes]
            rows = ([label, *map(float, p)] for label, p in zip(predicted, pre.probabilities(out)))
        else:
            rows = ([label] for label in predicted)
    else:
        columns = [name]
        rows = ([float(v)] for v in pre.decode(out))
    write_csv(args.out, columns, rows)
    if args.out not in (None, "-"):
        note(f"wrote {table.n_rows} predictions to {args.out}")
    return 0
