"""The PyImageSearch tutorial's training display, as a callback: the loss on the whole training
set, 0.5 * sum of squared errors, after epoch 1 and every ``every`` epochs."""

from __future__ import annotations

from ..callbacks import Callback
from ..losses import get_loss

__all__ = ["EpochLoss"]


class EpochLoss(Callback):
    """Record ``(epoch, loss)`` (epochs counted from 1) and hand each record to ``report``."""

    def __init__(self, X, Y, every: int = 100, report=None):
        self.X, self.Y, self.every = X, Y, every
        self.report = report
        self.loss = get_loss("half_sse", reduction="sum")
        self.records: list[tuple[int, float]] = []

    def on_epoch_end(self, state):
        epoch = state.epoch + 1
        if epoch == 1 or epoch % self.every == 0:
            record = (epoch, state.network.loss(self.X, self.Y, loss=self.loss))
            self.records.append(record)
            if self.report is not None:
                self.report(*record)
