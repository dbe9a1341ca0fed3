"""`backprop demo NAME`: the classic tutorials, run from the engine."""

from __future__ import annotations

import sys

NAME = "demo"
HELP = "run a classic backpropagation tutorial (digits)"


def add_arguments(parser):
    parser.add_argument("name", choices=["digits"], help="which tutorial")
    parser.add_argument("--epochs", type=int, default=1000, help="training epochs (default 1000)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")


def run(args) -> int:
    import logging

    from ..demos import digits
    from ..progress import ProgressBar

    # issue 6: say so when the compiled kernels are being built (first run only)
    fast_log, notice = logging.getLogger("backprop.fast"), logging.StreamHandler(sys.stderr)
    fast_log.setLevel(logging.INFO)
    fast_log.addHandler(notice)
    print("[INFO] loading the 8x8 digits (1797 samples, 64 features), training 64-32-16-10 ...")
    try:
        result = digits.run(epochs=args.epochs, seed=args.seed,
                            callbacks=[ProgressBar(every=100, desc="digits")])
    finally:
        fast_log.removeHandler(notice)
    from sklearn.metrics import classification_report  # imported after training: start-up time

    print(classification_report(result["y_test"], result["y_pred"], digits=2))
    print(f"test accuracy: {result['accuracy']:.4f}")
    return 0
