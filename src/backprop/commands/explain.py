"""`backprop explain`: the worked chain-rule derivation of one training step.

With no options it prints seed 002's worked example. See docs/explain.md.
"""

from __future__ import annotations

import contextlib
import math
import sys

from ._common import positive_float, positive_int, seed_type

NAME = "explain"
HELP = "show one training step worked out by the chain rule (seed 002's example by default)"

FORMATS = ("text", "markdown", "latex", "json", "html")
MAX_DIGITS = 30


def _numbers(option: str):
    """argparse type for a comma-separated list of numbers, named in its error."""

    def parse(text: str) -> list[float]:
        try:
            values = [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise _argparse_error(f"{option} must be comma-separated numbers; got {text!r}") from None
        bad = next((k for k, v in enumerate(values) if not math.isfinite(v)), None)
        if bad is not None:
            raise _argparse_error(f"{option} must be finite numbers; got {text!r} (number {bad + 1} is "
                                  f"{values[bad]})")
        return values

    return parse


def _registry(option: str, lookup: str):
    """argparse type for an activation or loss name, checked against its registry (the name is
    returned as typed, so a marked default stays marked)."""

    def parse(text: str) -> str:
        from .. import activations, losses

        try:
            getattr(activations if lookup == "activation" else losses, f"get_{lookup}")(text)
        except ValueError:
            names = sorted(activations.ACTIVATIONS if lookup == "activation" else losses.LOSSES)
            raise _argparse_error(f"{option} must be one of {', '.join(names)}; got {text!r}") from None
        return text

    return parse


def _digits(text: str) -> int:
    """Decimals shown: 1 to 30."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_DIGITS:
        raise _argparse_error(f"must be an integer from 1 to {MAX_DIGITS}; got {text!r}")
    return value


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(v) for v in text.split(",")]
    except ValueError:
        raise _argparse_error(f"--layers must be comma-separated integers such as 2,2,2; got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise _argparse_error(f"--layers must list at least two sizes >= 1 (inputs, ..., outputs); got {text!r}")
    return sizes


def _argparse_error(message: str):
    import argparse

    return argparse.ArgumentTypeError(message)


def add_arguments(parser):
    net = parser.add_argument_group("the network (default: seed 002's 2-2-2 example)")
    net.add_argument("--layers", type=_sizes, default=[2, 2, 2], metavar="N,N,..",
                     help="layer sizes, inputs first (default 2,2,2)")
    net.add_argument("--weights", type=_numbers("--weights"), metavar="W,W,..",
                     help="w1, w2, .. neuron by neuron: the first neuron's incoming weights input by input, "
                          "then the next neuron's, layer by layer (default: the seed's for 2,2,2, else random)")
    net.add_argument("--biases", type=_numbers("--biases"), metavar="B,B,..",
                     help="one bias per layer or one per neuron (default 0.35 per hidden layer, 0.60 output)")
    net.add_argument("--inputs", type=_numbers("--inputs"), metavar="X,X,..",
                     help="the sample's inputs (default 0.05,0.10 for two inputs, else random)")
    net.add_argument("--targets", type=_numbers("--targets"), metavar="T,T,..",
                     help="the sample's targets (default 0.01,0.99 for two outputs, else random)")
    net.add_argument("--activation", type=_registry("--activation", "activation"), default="sigmoid",
                     help="hidden activation (default sigmoid)")
    net.add_argument("--output-activation", type=_registry("--output-activation", "activation"), default=None,
                     help="output activation (default: --activation; sigmoid/softmax for the cross-entropies)")
    net.add_argument("--loss", type=_registry("--loss", "loss"), default="half_sse",
                     help="half_sse (default), sse, mse, binary_cross_entropy, softmax_cross_entropy")
    net.add_argument("--lr", type=positive_float, default=0.5, help="learning rate (default 0.5)")
    net.add_argument("--train-biases", action="store_true", help="train the biases too (the seed keeps them fixed)")
    net.add_argument("--seed", type=seed_type, default=None,
                     help="random weights (and inputs/targets where there is no default) from this seed")
    net.add_argument("--force", action="store_true", help="explain networks with more than 64 weights")
    saved = parser.add_argument_group("a saved model instead (explain one row of a CSV through it)")
    saved.add_argument("--model", metavar="FILE", help="a model file saved by backprop (.safetensors)")
    saved.add_argument("--data", metavar="FILE", help="CSV with a header row and the model's columns")
    saved.add_argument("--row", type=positive_int, metavar="N", help="data row to explain (1 = the row after the header)")
    saved.add_argument("--target-column", default=None, metavar="COLUMN",
                       help="the target column of --data, for a model saved by MLPClassifier/MLPRegressor.save "
                            "(a `backprop train` model names its own)")
    out = parser.add_argument_group("output")
    out.add_argument("--format", choices=FORMATS, default="text",
                     help="text (default), markdown, latex, json, or html (a self-contained step-through page)")
    out.add_argument("--steps", type=positive_int, metavar="N",
                     help="with --format html: also train N steps on the sample and show the error curve and the "
                          "network at a sample of them")
    out.add_argument("--digits", type=_digits, default=9,
                     help=f"decimals shown, 1 to {MAX_DIGITS} (default 9, as the seed)")
    out.add_argument("--output", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    out.add_argument("--diagram", metavar="FILE", help="also draw the network before/after to FILE (.png or .svg)")
    from ._explain_conv import add_conv_arguments

    add_conv_arguments(parser)  # --conv and its options (commands/_explain_conv.py)


def _is_default_example(args) -> bool:
    return (args.layers == [2, 2, 2] and args.weights is None and args.biases is None and args.inputs is None
            and args.targets is None and args.activation == "sigmoid" and args.output_activation is None
            and args.loss == "half_sse" and args.lr == 0.5 and not args.train_biases and args.seed is None)


def _check_count(option: str, values, expected: int, what: str):
    from .._validation import UsageError

    if len(values) != expected:
        raise UsageError(f"`{option}` must list {expected} numbers ({what}); got {len(values)}")
    return values


def _sample(args, loss_fn):
    """(inputs, targets): given, the seed's for two inputs/outputs, else random from --seed."""
    import numpy as np

    n_in, n_out = args.layers[0], args.layers[-1]
    rng = np.random.default_rng(args.seed)
    if args.inputs is not None:
        x = _check_count("--inputs", args.inputs, n_in, "one per input")
    else:
        x = [0.05, 0.10] if n_in == 2 else list(np.round(rng.uniform(0, 1, n_in), 2))
    if args.targets is not None:
        y = _check_count("--targets", args.targets, n_out, "one per output")
    elif loss_fn.name == "softmax_cross_entropy":
        y = list(np.eye(n_out)[rng.integers(n_out)])
    else:
        y = [0.01, 0.99] if n_out == 2 else list(np.round(rng.uniform(0, 1, n_out), 2))
    return x, y


def _saved_model_derivation(args):
    from .._validation import UsageError
    from ..explain import explain
    from ..explain.saved import sample_from_csv
    from ..preprocessing import load_model

    if args.data is None or args.row is None:
        raise UsageError("`--model` needs `--data FILE` and `--row N` too")
    network_options = {"--layers": args.layers != [2, 2, 2], "--weights": args.weights, "--biases": args.biases,
                       "--inputs": args.inputs, "--targets": args.targets, "--seed": args.seed is not None,
                       "--activation": args.activation != "sigmoid", "--output-activation": args.output_activation,
                       "--loss": args.loss != "half_sse", "--train-biases": args.train_biases}
    clash = [name for name, given in network_options.items() if given]
    if clash:
        raise UsageError(f"`--model` takes the network from the file; drop {', '.join(clash)}")
    network, pre = load_model(args.model)
    x, y, notes = sample_from_csv(pre.with_target(args.target_column), args.data, args.row)
    derivation = explain(network, x, y, lr=args.lr, force=args.force)
    derivation.notes = notes + derivation.notes
    return derivation


def _derivation(args):
    from .._validation import UsageError
    from ..explain import explain
    from ..explain import example
    from ..explain.build import build_network, count_weights
    from ..losses import get_loss

    if args.model is not None:
        return _saved_model_derivation(args)
    if args.data is not None or args.row is not None or args.target_column is not None:
        raise UsageError("`--data`, `--row` and `--target-column` need `--model FILE` (a saved model) too")
    if _is_default_example(args):
        return example.derivation()
    loss_fn = get_loss(args.loss)
    weights = args.weights
    if weights is None and args.layers == [2, 2, 2] and args.seed is None:
        weights = example.WEIGHTS
    if weights is not None:
        n = count_weights(args.layers)
        _check_count("--weights", weights, n, f"w1..w{n} for layers {','.join(map(str, args.layers))}")
    if args.biases is not None:
        per_layer, per_neuron = len(args.layers) - 1, sum(args.layers[1:])
        if len(args.biases) not in (per_layer, per_neuron):
            _check_count("--biases", args.biases, per_layer, f"one per layer, or {per_neuron}: one per neuron")
    network = build_network(args.layers, weights, args.biases, args.activation, args.output_activation,
                            loss_fn, args.train_biases, args.seed)
    check_softmax_units(network)
    x, y = _sample(args, loss_fn)
    check_targets(y, loss_fn)
    return explain(network, x, y, lr=args.lr, force=args.force)


def check_softmax_units(network) -> None:
    """A softmax over one unit is the constant 1: every gradient through it is zero."""
    from .._validation import UsageError

    for k, layer in enumerate(network.layers):
        if layer.activation.name == "softmax" and layer.n_outputs == 1:
            where = "the output layer" if k == len(network.layers) - 1 else f"hidden layer {k + 1}"
            raise UsageError(f"`--layers`: a softmax over one unit ({where}) is always 1, so every gradient "
                             "through it is 0; give it at least two units, or use sigmoid (with "
                             "--loss binary_cross_entropy) for one output")


# The targets each loss is defined for (outside them the "loss" is negative or meaningless).
TARGET_RANGES = {"binary_cross_entropy": (0.0, 1.0, "in [0, 1] (probabilities)"),
                 "softmax_cross_entropy": (0.0, math.inf, ">= 0 (class weights, one-hot or soft labels)"),
                 "half_poisson_deviance": (0.0, math.inf, ">= 0 (counts or rates)")}


def check_targets(targets, loss_fn) -> None:
    from .._validation import UsageError

    low, high, what = TARGET_RANGES.get(loss_fn.name, (-math.inf, math.inf, ""))
    bad = next((k for k, t in enumerate(targets) if not low <= t <= high), None)
    if bad is not None:
        raise UsageError(f"`--targets` must be {what} for --loss {loss_fn.name}; got {targets[bad]:g} "
                         f"(target {bad + 1})")


def run(args) -> int:
    from ..io import atomic_write_bytes
    from ._explain_conv import run_conv, wants_conv

    if wants_conv(args):
        return run_conv(args)
    digits = args.digits
    if args.format == "html" or args.steps is not None:
        check_page_options(args)
    derivation = _derivation(args)
    if args.format == "html":
        text = _page(derivation, args, digits)
    else:
        text = derivation.render(args.format, digits)
    if args.diagram:
        from ..explain.diagram import draw

        draw(derivation, args.diagram, digits)
        print(f"diagram written to {args.diagram}", file=sys.stderr)
    if args.output:
        atomic_write_bytes(args.output, text.encode("utf-8"))
        print(f"{args.format} written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def check_page_options(args) -> None:
    """--steps of an html page, checked before any work (``cli`` checks --output is writable)."""
    from .._validation import UsageError

    if args.steps is not None and args.format != "html":
        raise UsageError(f"`--steps` needs `--format html`; got --format {args.format}")


def _page(derivation, args, digits: int) -> str:
    from ..explain.page import check_drawable, record_training, to_html

    check_drawable(derivation, args.force)  # before a --steps run
    training = None
    if args.steps is not None:
        with training_bar(args.steps) as progress:
            training = record_training(derivation, args.steps, digits, progress)
    return to_html(derivation, digits, force=args.force, training=training)


@contextlib.contextmanager
def training_bar(steps: int):
    """A progress bar on stderr for a --steps run; yields ``progress(done, total)``."""
    from tqdm import tqdm

    with tqdm(total=steps, desc="training", unit="step", file=sys.stderr, leave=False, disable=None) as bar:
        yield lambda done, total: bar.update(done - bar.n)
