"""`backprop explain --conv`: one training step of a small convolutional network, every number.

The options (``--input``, ``--kernel``, ``--bias``, ``--target``, ``--stride``, ``--padding``,
``--pool``) and ``run_conv``; ``commands/explain.py`` adds them to its parser and hands over when
``--conv`` (or one of them) is given. With no values it works issue 20's golden example B.
Matrices are typed on one line: numbers separated by ``,``, rows by ``;``, channels by ``|``,
and, for kernels, filters (output channels) by ``/``. See docs/explain.md.
"""

from __future__ import annotations

import argparse
import math
import sys

CONV_OPTIONS = ("input", "kernel", "bias", "target", "stride", "padding", "pool", "pool_stride")
MATRIX_SYNTAX = "numbers separated by ',', rows by ';', channels by '|'"


class DefaultFloat(float):
    """A default that is told apart from the same number typed on the command line."""


class DefaultStr(str):
    """A default that is told apart from the same name typed on the command line."""


def _tensor(option: str, filters: bool = False):
    def parse(text: str):
        from ..explain.conv import parse_tensor

        try:
            return parse_tensor(text, option, filters=filters)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(" ".join(str(exc).replace("`", "").split())) from None

    return parse


def _pair(option: str, minimum: int):
    what = "a positive integer" if minimum == 1 else "an integer >= 0"

    def parse(text: str) -> tuple[int, int]:
        parts = text.lower().replace(",", "x").split("x")
        try:
            values = [int(v) for v in parts]
        except ValueError:
            values = []
        if len(values) == 1:
            values = values * 2
        if len(values) != 2 or min(values) < minimum:
            raise argparse.ArgumentTypeError(f"{option} must be {what} or a pair HxW of them; got {text!r}")
        return values[0], values[1]

    return parse


def _bias(text: str):
    if text.strip().lower() == "none":
        return "none"
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = [math.nan]
    if not all(map(math.isfinite, values)):
        raise argparse.ArgumentTypeError(f"--bias must be finite numbers separated by ',' (one per filter) or "
                                         f"'none'; got {text!r}")
    return values


class _PoolAction(argparse.Action):
    """--pool KIND SIZE: KIND max or avg, SIZE an integer or HxW."""

    def __call__(self, parser, namespace, values, option_string=None):
        kind, size = values[0].lower(), values[1]
        if kind not in ("max", "avg"):
            parser.error(f"argument --pool: KIND must be 'max' or 'avg' (e.g. --pool max 2); got {values[0]!r}")
        try:
            setattr(namespace, self.dest, (kind, _pair("--pool SIZE", 1)(size)))
        except argparse.ArgumentTypeError as exc:
            parser.error(f"argument --pool: {exc}")


def add_conv_arguments(parser) -> None:
    """The --conv group; also marks the defaults of --lr and --activation so that --conv can use
    its own (0.1 and identity) unless they are typed."""
    group = parser.add_argument_group(
        "a convolution instead (--conv; default: issue 20's golden example B)",
        f"Matrices on one line: {MATRIX_SYNTAX}, filters of a kernel by '/'; e.g. --kernel '1,-1;2,0'. "
        "--lr defaults to 0.1 and --activation to identity here; --seed draws small integers for what is not given.")
    group.add_argument("--conv", action="store_true",
                       help="explain Conv2D [+ pool] + Flatten under half_sse (example B by default)")
    group.add_argument("--input", type=_tensor("--input"), metavar="MATRIX",
                       help="the input X, e.g. '1,2,0;0,1,3;2,1,1' (channels separated by '|')")
    group.add_argument("--kernel", type=_tensor("--kernel", filters=True), metavar="MATRIX",
                       help="the kernel K: one matrix per input channel separated by '|', filters by '/'")
    group.add_argument("--bias", type=_bias, metavar="B[,B..]", help="one bias per filter (or one for all), or 'none'")
    group.add_argument("--target", type=_tensor("--target"), metavar="MATRIX",
                       help="the target T, shaped like the output (after the pool, if any)")
    group.add_argument("--stride", type=_pair("--stride", 1), metavar="S", help="the conv's stride, S or HxW (default 1)")
    group.add_argument("--padding", type=_pair("--padding", 0), metavar="P",
                       help="zeros around the input, P or HxW (default 0)")
    group.add_argument("--pool", nargs=2, action=_PoolAction, metavar=("KIND", "SIZE"),
                       help="a pool after the conv: max or avg, and its size (S or HxW)")
    group.add_argument("--pool-stride", type=_pair("--pool-stride", 1), metavar="S",
                       help="the pool's stride, S or HxW (default: its size; smaller strides overlap the windows)")
    parser.set_defaults(lr=DefaultFloat(0.5), activation=DefaultStr("sigmoid"))


def wants_conv(args) -> bool:
    return bool(getattr(args, "conv", False)) or any(getattr(args, o, None) is not None for o in CONV_OPTIONS)


def _clashes(args) -> list[str]:
    given = {"--layers": args.layers != [2, 2, 2], "--weights": args.weights, "--biases": args.biases,
             "--inputs": args.inputs, "--targets": args.targets, "--output-activation": args.output_activation,
             "--train-biases": args.train_biases, "--model": args.model, "--data": args.data,
             "--row": args.row is not None, "--diagram": args.diagram, "--loss": args.loss != "half_sse"}
    return [name for name, value in given.items() if value]


def conv_derivation(args):
    """The ConvDerivation the options describe (example B's numbers for what is not given)."""
    import numpy as np

    from .._validation import BackpropError, UsageError
    from ..explain.conv import EXAMPLE_B, conv_network, explain_conv

    rng = np.random.default_rng(args.seed) if args.seed is not None else None
    X, K, T = args.input, args.kernel, args.target
    if X is None:
        if rng is not None:
            C = K.shape[1] if K is not None else 1
            X = rng.integers(-2, 4, (C, 4, 4)).astype(float)
        else:
            X = np.array(EXAMPLE_B["X"], float)[None]
    if K is None:
        if rng is not None:
            K = rng.integers(-2, 3, (1, X.shape[0], 2, 2)).astype(float)
        elif X.shape[0] == 1:
            K = np.array(EXAMPLE_B["K"], float)[None, None]
        else:
            raise BackpropError(f"`--kernel` is needed for an input of {X.shape[0]} channels (one matrix per "
                                "channel separated by '|'), or pass --seed N for a random one")
    if args.bias == "none":
        b = None
    elif args.bias is not None:
        b = args.bias
    elif rng is not None:
        b = rng.integers(-1, 2, K.shape[0]).astype(float)
    else:
        b = EXAMPLE_B["b"]
    lr = 0.1 if isinstance(args.lr, DefaultFloat) else args.lr
    activation = "identity" if isinstance(args.activation, DefaultStr) else args.activation
    if args.pool_stride is not None and args.pool is None:
        raise UsageError("`--pool-stride` needs `--pool KIND SIZE`")
    pool = None if args.pool is None else (*args.pool, args.pool_stride)
    network = conv_network(K, b, X.shape, args.stride or 1, args.padding or 0, activation, pool)
    out_shape = network.layers[-2].output_shape
    if T is None:
        example_t = np.array(EXAMPLE_B["T"], float)[None]
        if rng is not None:
            T = rng.integers(-3, 6, out_shape).astype(float)
        elif example_t.shape == tuple(out_shape):
            T = example_t
        else:
            shown = "x".join(map(str, out_shape[1:] if out_shape[0] == 1 else out_shape))
            raise BackpropError(f"`--target` is needed: the output is {shown} and example B's target is 2x2 "
                                "(or pass --seed N for a random one)")
    return explain_conv(network, X, T, lr=lr, force=args.force)


def run_conv(args) -> int:
    """`backprop explain --conv ...`: write the derivation in the chosen format."""
    from .._validation import UsageError
    from ..io import atomic_write_bytes

    if not args.conv:
        given = next(o for o in CONV_OPTIONS if getattr(args, o, None) is not None).replace("_", "-")
        raise UsageError(f"`--{given}` describes a convolution and needs `--conv`")
    clash = _clashes(args)
    if clash:
        raise UsageError(f"`--conv` explains a convolution (options --input, --kernel, --bias, --target, --stride, "
                         f"--padding, --pool, --pool-stride); drop {', '.join(clash)}")
    digits = args.digits
    if args.format == "html" or args.steps is not None:
        from .explain import check_page_options

        check_page_options(args)
    derivation = conv_derivation(args)
    text = _page(derivation, args, digits) if args.format == "html" else derivation.render(args.format, digits)
    if args.output:
        atomic_write_bytes(args.output, text.encode("utf-8"))
        print(f"{args.format} written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _page(derivation, args, digits: int) -> str:
    from ..explain.conv_page import check_conv_drawable, conv_to_html, record_conv_training
    from .explain import training_bar

    check_conv_drawable(derivation, args.force)  # before a --steps run
    training = None
    if args.steps is not None:
        with training_bar(args.steps) as progress:
            training = record_conv_training(derivation, args.steps, digits, progress)
    return conv_to_html(derivation, digits, force=args.force, training=training)
