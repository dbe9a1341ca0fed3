"""Test accuracy of `backprop demo cnn` over 10 seeds (issue 20's target: mean >= 0.988), beside the
dense network trained the same way and, when PyTorch is installed, the same CNN recipe in PyTorch.

Each seed draws the weights and the batch order; the split is the digits demo's (seed 42, 1347
training and 450 test images). PyTorch gets the same architecture, its own default initialisation,
Adam at 3e-3, batches of 32, the same number of epochs.

    PYTHONPATH=src python bench/cnn_digits_accuracy.py [--epochs 40] [--seeds 10] [--write]
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

from backprop.datasets import load_digits, one_hot, train_test_split
from backprop.demos import cnn

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START, END = "<!-- cnn-accuracy:start -->", "<!-- cnn-accuracy:end -->"
TARGET = 0.988


def torch_accuracy(seed: int, epochs: int) -> float | None:
    try:
        import torch
        from torch import nn
    except ImportError:
        return None
    torch.manual_seed(seed)
    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=42)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)).double()
    opt = torch.optim.Adam(model.parameters(), lr=cnn.LR)
    Xt = torch.tensor(X_train.reshape(-1, 1, 8, 8))
    yt = torch.tensor(y_train, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(yt), generator=gen).split(cnn.BATCH):
            opt.zero_grad()
            nn.functional.cross_entropy(model(Xt[idx]), yt[idx]).backward()
            opt.step()
    with torch.no_grad():
        pred = model(torch.tensor(X_test.reshape(-1, 1, 8, 8))).argmax(1).numpy()
    return float(np.mean(pred == y_test))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--write", action="store_true", help=f"put the table into {DOC.name}")
    args = parser.parse_args(argv)
    rows = {"backprop CNN": [], "backprop dense 64-128-64-10": [], "PyTorch CNN (same recipe)": []}
    start = time.perf_counter()
    for seed in range(args.seeds):
        result = cnn.run(epochs=args.epochs, seed=seed)
        rows["backprop CNN"].append(result["accuracy"])
        rows["backprop dense 64-128-64-10"].append(result["dense_accuracy"])
        t = torch_accuracy(seed, args.epochs)
        if t is not None:
            rows["PyTorch CNN (same recipe)"].append(t)
        print(f"seed {seed}: CNN {result['accuracy']:.4f}, dense {result['dense_accuracy']:.4f}"
              + ("" if t is None else f", PyTorch {t:.4f}"), file=sys.stderr)
    mean = float(np.mean(rows["backprop CNN"]))
    lines = [
        f"Digits CNN (`backprop demo cnn`), {args.seeds} seeds x {args.epochs} epochs, test accuracy on the 450 "
        f"held-out images ({platform.machine()}, Python {platform.python_version()}, "
        f"{time.perf_counter() - start:.0f} s in all):",
        "",
        "| network | mean | min | max |",
        "|---|---:|---:|---:|",
    ]
    for name, values in rows.items():
        if values:
            lines.append(f"| {name} | {np.mean(values):.4f} | {np.min(values):.4f} | {np.max(values):.4f} |")
    lines += ["", f"Target: mean CNN accuracy >= {TARGET}: **{'MET' if mean >= TARGET else 'NOT MET'}** ({mean:.4f})."]
    table = "\n".join(lines)
    print(table)
    if args.write:
        text = DOC.read_text()
        block = f"{START}\n{table}\n{END}"
        if START in text:
            text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda m: block, text, flags=re.S)
        else:
            text = text.rstrip() + "\n\n## Digits CNN accuracy\n\n" + block + "\n"
        DOC.write_text(text)
    return 0 if mean >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
