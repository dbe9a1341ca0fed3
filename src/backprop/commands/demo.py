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
    from sklearn.metrics import classification_report

    from ..demos import digits
    from ..progress import ProgressBar

    print("[INFO] loading the 8x8 digits (1797 samples, 64 features), training 64-32-16-10 ...")
    result = digits.run(epochs=args.epochs, seed=args.seed,
                        callbacks=[ProgressBar(every=100, desc="digits")])
    print(classification_report(result["y_test"], result["y_pred"], digits=2))
    print(f"test accuracy: {result['accuracy']:.4f}")
    return 0
