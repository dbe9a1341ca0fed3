"""Divergence guard for the fit loop: stop when training blows up, keep the last good weights.

Training has *diverged* when any of these holds (checked in this order):

- a batch's loss (computed before its update) is NaN or infinite: checked after every batch,
  before the optimizer step, so a non-finite loss never reaches the weights;
- an epoch's loss is NaN or infinite, or is more than ``EXPLODE_FACTOR`` (1e6) times
  ``max(first epoch's loss, 1)`` ("exploding"): checked at every epoch end;
- a weight is NaN or infinite after the epoch's last update: checked at every epoch end.

The weights at the end of the last good epoch (or the initial weights) are copied once per epoch
and put back when training diverges. The per-batch check is one ``math.isfinite`` on a Python
float; the per-epoch check reads every weight once. Both are negligible next to a training step
(see docs/reliability.md for the measurement).

While training runs the guard silences numpy's overflow/invalid-value warnings: a diverging run
would otherwise print a screenful of them before the guard names the cause. The guard itself
reports the problem, so nothing is lost.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Diverged", "DivergenceGuard", "EXPLODE_FACTOR"]

EXPLODE_FACTOR = 1e6
UNSCALED = 100.0  # features larger than this in magnitude are called "not scaled"


class Diverged(Exception):
    """Raised inside the fit loop when training diverges. ``diagnosis`` says what happened and
    its likely cause, ``kept`` which weights were kept; ``str()`` is the whole sentence, which
    fit records as ``history.stop_reason`` (and the diagnosis alone as ``history.divergence``)."""

    def __init__(self, diagnosis: str, kept: str):
        super().__init__(f"{diagnosis}; kept {kept}")
        self.diagnosis, self.kept = diagnosis, kept


class DivergenceGuard:
    """Watches a fit: ``check_batch`` per batch, ``check_epoch`` per epoch, ``restore`` on failure."""

    def __init__(self, state, X: np.ndarray):
        """``state`` is the fit's TrainState (network, optimizer, history so far); ``X`` the inputs."""
        self.network = network = state.network
        self.optimizer = state.optimizer
        self.X = X
        self.first_loss: float | None = state.history.loss[0] if state.history.loss else None
        self.good_epoch = state.epoch - 1  # the last epoch whose end weights are kept (-1: the initial weights)
        self.good_weights = network.get_weights()
        self._errstate = np.errstate(over="ignore", invalid="ignore")

    def start(self) -> None:
        self._errstate.__enter__()

    def finish(self) -> None:
        self._errstate.__exit__(None, None, None)

    def check_batch(self, value: float, epoch: int, batch: int) -> None:
        """Raise Diverged if the batch loss is NaN or infinite."""
        if not math.isfinite(value):
            raise self._diverged(f"the loss became {value} at epoch {epoch + 1}, batch {batch + 1}")

    def check_epoch(self, loss: float, epoch: int) -> None:
        """Raise Diverged if the epoch loss is non-finite or exploding, or a weight is non-finite;
        otherwise remember these weights as the last good ones."""
        if not math.isfinite(loss):
            raise self._diverged(f"the loss became {loss} at epoch {epoch + 1}")
        if self.first_loss is None:
            self.first_loss = loss
        limit = EXPLODE_FACTOR * max(self.first_loss, 1.0)
        if loss > limit:
            raise self._diverged(
                f"the loss exploded at epoch {epoch + 1}: {loss:.4g}, more than {EXPLODE_FACTOR:g} "
                f"times the first epoch's {self.first_loss:.4g}"
            )
        named = self.network.named_parameters()
        for name, p in named:
            # a finite sum proves every entry finite (one pass, no temporary array)
            if not (math.isfinite(np.add.reduce(p, axis=None)) or np.isfinite(p).all()):
                raise self._diverged(f"weights `{name}` became NaN or infinite at epoch {epoch + 1}")
        kept = self.good_weights
        if len(kept) == len(named) and all(k.shape == p.shape for k, (_, p) in zip(kept, named)):
            for k, (_, p) in zip(kept, named):
                np.copyto(k, p)
        else:
            self.good_weights = self.network.get_weights()
        self.good_epoch = epoch

    def restore(self) -> None:
        """Put the last good weights back."""
        self.network.set_weights(self.good_weights)

    def _diverged(self, what: str) -> Diverged:
        scale = float(np.max(np.abs(self.X))) if self.X.size else 0.0
        lr = getattr(self.optimizer, "lr", None)
        rate = f" ({lr:g})" if isinstance(lr, float) else ""
        if scale > UNSCALED:
            cause = (f"the features are probably not scaled (the largest |X| is {scale:.4g}): standardize "
                     f"them (e.g. StandardScaler) or lower the learning rate{rate}")
        else:
            cause = f"the learning rate{rate} is probably too high: lower it (e.g. by 10x)"
        kept = "the initial weights" if self.good_epoch < 0 else f"the weights after epoch {self.good_epoch + 1}"
        return Diverged(f"training diverged: {what}; {cause}", kept)
