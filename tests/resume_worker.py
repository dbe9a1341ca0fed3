"""Training script for the SIGKILL-and-resume test (run as a subprocess; not a test module).

    python tests/resume_worker.py CHECKPOINT_DIR OUT_FILE

Trains a fixed small network with checkpoints every epoch, resuming from CHECKPOINT_DIR when it
holds a checkpoint, and saves the final network to OUT_FILE.
"""

from __future__ import annotations

import sys

import numpy as np

from backprop import Adam, Network, ReduceOnPlateau, fit
from backprop.checkpoint import Checkpoint, latest_checkpoint

EPOCHS = 150


def problem():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((600, 5))
    Y = np.tanh(X @ rng.standard_normal((5, 2)))
    net = Network.from_sizes([5, 16, 2], activation="tanh", output_activation="identity", seed=11)
    optimizer = Adam(lr=ReduceOnPlateau(0.01, patience=1, threshold=0.05))
    return net, optimizer, X, Y


def train(directory=None, resume=False):
    net, optimizer, X, Y = problem()
    callbacks = [Checkpoint(directory, every=1)] if directory else []
    history = fit(net, X, Y, epochs=EPOCHS, batch_size=3, optimizer=optimizer, seed=5,
                  callbacks=callbacks, resume_from=directory if resume else None)
    return net, history


if __name__ == "__main__":
    folder, out = sys.argv[1], sys.argv[2]
    net, history = train(folder, resume=latest_checkpoint(folder) is not None)
    net.save(out, metadata={"loss": history.loss, "epochs": history.epochs})
