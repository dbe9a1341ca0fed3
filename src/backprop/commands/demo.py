"""`backprop demo mazur|brownlee|xor|digits|cnn`: the four classic tutorials, run from the engine.

Each prints output shaped like its tutorial's; ``--json`` prints every number at full precision
as one JSON object on stdout instead. Progress (digits) goes to stderr.
"""

from __future__ import annotations

import argparse
import json

from ._common import positive_int, seed_type

NAME = "demo"
HELP = "run a classic backpropagation tutorial (mazur, brownlee, xor, digits) or the digits CNN (cnn)"


def add_arguments(parser):
    sub = parser.add_subparsers(dest="demo", metavar="NAME", required=True)

    p = sub.add_parser("mazur", help="Mazur's step-by-step example (seeds 001, 002)",
                       description="Matt Mazur's 2-2-2 worked example: forward pass, backward pass, "
                                   "updated weights, then the 10,000-update loop.")
    p.add_argument("--iterations", type=positive_int, default=10000, help="updates in the loop (default 10000)")
    p.add_argument("--variant", choices=["correct", "blog"], default="correct",
                   help="'blog': the older update order (output weights changed before the hidden "
                        "deltas) behind the blog's 0.291027924 (default: correct)")
    p.add_argument("--show-all", action="store_true", help="print the error after every update")

    p = sub.add_parser("brownlee", help="Brownlee's backpropagation from scratch (seed 000)",
                       description="Jason Brownlee's 2-2-2 network on his 10-row dataset, initialised "
                                   "by Python's random.seed(SEED), online SGD.")
    p.add_argument("--seed", type=seed_type, default=1, help="Python random.seed (default 1)")
    p.add_argument("--epochs", type=positive_int, default=20, help="training epochs (default 20)")
    p.add_argument("--hidden", type=positive_int, default=2, help="hidden neurons (default 2)")

    p = sub.add_parser("xor", help="PyImageSearch's 2-2-1 XOR network (seed 003)",
                       description="A 2-2-1 sigmoid network learns XOR: learning rate 0.5, per-sample "
                                   "updates for 20,000 epochs.")
    _pyimagesearch_options(p, "weight seed", epochs=20000, every=1000)

    p = sub.add_parser("digits", help="PyImageSearch's 64-32-16-10 network on the 8x8 digits (seed 003)",
                       description="64-32-16-10 sigmoid network, per-sample SGD at 0.1, then "
                                   "scikit-learn's classification report on the 25% test split.")
    _pyimagesearch_options(p, "split and weight seed", epochs=1000, every=100)

    p = sub.add_parser("cnn", help="a small convolutional network on the 8x8 digits, beside a dense one",
                       description="Conv2D(16, 3x3, pad 1) -> ReLU -> MaxPool 2 -> Conv2D(32, 3x3, pad 1) -> "
                                   "ReLU -> MaxPool 2 -> Flatten -> Dense 64 ReLU -> Dense 10 softmax, Adam "
                                   "3e-3, batches of 32, on the digits demo's split; a 64-128-64-10 dense "
                                   "network trained the same way beside it.")
    p.add_argument("--epochs", type=positive_int, default=40, help="training epochs (default 40)")
    p.add_argument("--seed", type=seed_type, default=0, help="weight and shuffling seed (default 0)")
    p.add_argument("--no-dense", action="store_true", help="train the CNN only")

    for p in sub.choices.values():
        p.add_argument("--json", action="store_true",
                       help="print every number at full precision as JSON on stdout")
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show full tracebacks on errors")


def _pyimagesearch_options(p, seed_help: str, epochs: int, every: int) -> None:
    p.add_argument("--seed", type=seed_type, default=42, help=f"{seed_help} (default 42)")
    p.add_argument("--epochs", type=positive_int, default=epochs, help=f"training epochs (default {epochs})")
    p.add_argument("--every", type=positive_int, default=every, help=f"print the loss every N epochs (default {every})")
    p.add_argument("--variant", choices=["default", "pyimagesearch"], default="default",
                   help="'pyimagesearch': the tutorial's bias trick instead of true biases")


def run(args) -> int:
    return {"mazur": _mazur, "brownlee": _brownlee, "xor": _xor, "digits": _digits,
            "cnn": _cnn}[args.demo](args)


def _dump(obj) -> None:
    print(json.dumps(obj, indent=2))


def _fmt(x: float, decimals: int = 9) -> str:
    """At most ``decimals`` decimals, trailing zeros dropped (the blog's style)."""
    text = f"{x:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


# -- mazur -------------------------------------------------------------------------------------
def _mazur(args) -> int:
    from ..demos import mazur

    show = range(args.iterations) if args.show_all else None
    result = mazur.run(iterations=args.iterations, variant=args.variant, show=show)
    if args.json:
        _dump(result)
        return 0
    w = result["initial_weights"]
    print("Mazur's worked example: a 2-2-2 sigmoid network, inputs 0.05 and 0.10, targets 0.01 and "
          "0.99, learning rate 0.5, biases 0.35 and 0.60 (never trained)")
    print("initial weights: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in w.items()))
    print("\nThe forward pass")
    for key, value in result["forward"].items():
        print(f"  {key} = {_fmt(value)}")
    print("\nThe backward pass (from the original weights)")
    for key, value in result["backward"].items():
        note = ""
        if key == "dE_o2/dout_h1":
            note = (f"   (the blog prints -0.019049119, rounded by hand; exact: {value:.10f})")
        print(f"  {key} = {_fmt(value)}{note}")
    print(f"\nThe updated weights ({args.variant} update order)")
    for key, value in result["updated_weights"].items():
        print(f"  {key}+ = {_fmt(value)}")
    if args.variant == "blog":
        print("  (w5+..w8+ are the blog's; w1+..w4+ are not: the blog's text computes them from the "
              "original w5..w8, this order from the updated ones)")
    print(f"\nAfter the first round: E_total = {_fmt(result['error_after_first_round'])}")
    if args.variant == "correct":
        print("  (the blog's 0.291027924 came from an older update order that changed w5..w8 before "
              "computing the hidden deltas: see --variant blog)")
    print("\nThe loop (seed 001): the update's index i, then round(E_total, 9) after it")
    for i, error in result["errors"]:
        print(i, round(error, 9))
    out1, out2 = result["final_outputs"]
    print(f"\nAfter {result['iterations']} updates: E_total = {result['final_error']:.10f}, "
          f"out_o1 = {out1:.9f}, out_o2 = {out2:.9f}")
    if args.variant == "correct" and result["iterations"] == 10000:
        print("  (the blog's 10,000-round outputs 0.015912196 and 0.984065734 come from the older "
              "update order: see --variant blog)")
    if args.variant == "blog" and result["iterations"] == 10000:
        print("  (the blog's outputs after 10,000 rounds; its error there, 0.0000351085, does not "
              "follow from them, which give the error above: it is the correct order's error after "
              "9,999 updates)")
    return 0


# -- brownlee ----------------------------------------------------------------------------------
def _brownlee(args) -> int:
    from ..demos import brownlee

    result = brownlee.run(epochs=args.epochs, seed=args.seed, n_hidden=args.hidden)
    if args.json:
        _dump(result)
        return 0
    for epoch, error in enumerate(result["errors"]):
        print(">epoch=%d, lrate=%.3f, error=%.3f" % (epoch, result["lrate"], error))
    for layer in result["layers"]:
        print(layer)
    for expected, got in zip(result["expected"], result["predicted"]):
        print("Expected=%d, Got=%d" % (expected, got))
    return 0


# -- xor ---------------------------------------------------------------------------------------
def _info_loss(epoch: int, loss: float) -> None:
    print("[INFO] epoch={}, loss={:.7f}".format(epoch, loss), flush=True)


def _xor(args) -> int:
    import numpy as np

    from ..demos import xor

    if not args.json:
        print(f"[INFO] training a {xor.network(args.seed, args.variant)!r} on XOR "
              f"({args.variant} biases), seed {args.seed}...")
    result = xor.run(epochs=args.epochs, seed=args.seed, variant=args.variant, every=args.every,
                     report=None if args.json else _info_loss)
    if args.json:
        _dump(result)
        return 0
    for x, target, pred, step in zip(result["data"], result["ground_truth"], result["pred"], result["step"]):
        print("[INFO] data={}, ground-truth={}, pred={:.4f}, step={}".format(np.array(x), target, pred, step))
    return 0


# -- digits ------------------------------------------------------------------------------------
def _digits(args) -> int:
    import logging
    import sys

    from ..demos import digits
    from ..progress import ProgressBar

    if not args.json:
        from ..datasets import load_digits

        print("[INFO] loading MNIST (sample) dataset...")
        print("[INFO] samples: {}, dim: {}".format(*load_digits()[0].shape))
        print("[INFO] training network...")
        print(f"[INFO] {'-'.join(map(str, digits.SIZES))} sigmoid network ({args.variant} biases), "
              f"per-sample SGD at 0.1, seed {args.seed}")
    # the compiled kernels announce their first-run compilation on this logger (stderr)
    fast_log, notice = logging.getLogger("backprop.fast"), logging.StreamHandler(sys.stderr)
    fast_log.setLevel(logging.INFO)
    fast_log.addHandler(notice)
    try:
        result = digits.run(epochs=args.epochs, seed=args.seed, variant=args.variant, every=args.every,
                            callbacks=[ProgressBar(every=args.every, desc="digits")],
                            report=None if args.json else _info_loss)
    finally:
        fast_log.removeHandler(notice)
    from sklearn.metrics import classification_report  # imported after training: start-up time

    if args.json:
        report = classification_report(result["y_test"], result["y_pred"], output_dict=True, zero_division=0)
        _dump({"variant": args.variant, "seed": args.seed, "epochs": args.epochs,
               "network": repr(result["network"]), "n_train": result["n_train"],
               "n_test": result["n_test"], "losses": result["losses"],
               "accuracy": result["accuracy"], "classification_report": report,
               "y_test": result["y_test"].tolist(), "y_pred": result["y_pred"].tolist()})
        return 0
    print("[INFO] evaluating network...")
    print(classification_report(result["y_test"], result["y_pred"], zero_division=0))
    print(f"test accuracy: {result['accuracy']:.4f}")
    return 0


# -- cnn ---------------------------------------------------------------------------------------
def _cnn(args) -> int:
    import logging
    import sys

    from ..demos import cnn
    from ..progress import ProgressBar

    if not args.json:
        print("[INFO] 8x8 digits: 1347 training and 450 test images (the digits demo's split)")
        print(cnn.build_cnn(args.seed).summary())
        print(f"[INFO] Adam lr {cnn.LR:g}, batches of {cnn.BATCH}, {args.epochs} epochs, seed {args.seed}")
    fast_log, notice = logging.getLogger("backprop.fast"), logging.StreamHandler(sys.stderr)
    fast_log.setLevel(logging.INFO)
    fast_log.addHandler(notice)
    try:
        result = cnn.run(epochs=args.epochs, seed=args.seed, dense=not args.no_dense,
                         callbacks=[ProgressBar(desc="cnn")])
    finally:
        fast_log.removeHandler(notice)
    if args.json:
        _dump({"seed": args.seed, "epochs": args.epochs, "network": result["cnn"].config(),
               "n_train": result["n_train"], "n_test": result["n_test"],
               "loss": [float(v) for v in result["cnn_history"].loss], "accuracy": result["accuracy"],
               "dense_accuracy": result.get("dense_accuracy"), "y_test": result["y_test"].tolist(),
               "y_pred": result["y_pred"].tolist()})
        return 0
    print(f"CNN   ({cnn.CONV} -> {','.join(map(str, cnn.HIDDEN))} -> 10) test accuracy: {result['accuracy']:.4f}")
    if "dense_accuracy" in result:
        sizes = "-".join(map(str, cnn.DENSE_SIZES))
        print(f"dense ({sizes}, same optimizer and epochs) test accuracy: {result['dense_accuracy']:.4f}")
    return 0
