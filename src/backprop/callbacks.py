"""Training callbacks and the History a fit returns. Nothing here prints.

A callback sees a :class:`TrainState` at each hook and may set ``state.stop_training``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import BackpropError, check_int, check_non_negative

__all__ = ["History", "TrainState", "Callback", "EarlyStopping", "LambdaCallback"]


@dataclass
class History:
    """Per-epoch record of a fit: ``epochs`` (their 0-based numbers), ``loss`` (training),
    ``val_loss`` and ``metrics`` (by name), and how it ended: ``stopped_early`` (a callback
    stopped it), ``interrupted`` (Ctrl-C), ``diverged`` with ``divergence`` (what happened and its
    likely cause), and ``stop_reason`` (one line, empty when all epochs ran)."""

    epochs: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    stopped_early: bool = False
    interrupted: bool = False
    diverged: bool = False
    divergence: str = ""  # when diverged: what happened and its likely cause (stop_reason adds the weights kept)
    stop_reason: str = ""

    def record(self, epoch: int, logs: dict[str, float]) -> None:
        self.epochs.append(epoch)
        for key, value in logs.items():
            if key == "loss":
                self.loss.append(value)
            elif key == "val_loss":
                self.val_loss.append(value)
            else:
                self.metrics.setdefault(key, []).append(value)

    @property
    def history(self) -> dict[str, list[float]]:
        """Keras-style dict of every recorded series."""
        out = {"loss": self.loss}
        if self.val_loss:
            out["val_loss"] = self.val_loss
        out.update(self.metrics)
        return out

    def __len__(self) -> int:
        return len(self.epochs)

    def _repr_png_(self) -> bytes | None:
        """Jupyter: the loss curve (and val_loss) as a PNG where matplotlib is installed, else None
        (Jupyter then shows the repr)."""
        if not self.loss:
            return None
        try:  # a bare Figure draws with Agg and leaves the notebook's pyplot backend alone
            from matplotlib.figure import Figure
        except ImportError:
            return None
        import io

        fig = Figure(figsize=(5, 3), dpi=100)
        ax = fig.add_subplot()
        ax.plot(self.epochs, self.loss, label="loss")
        if self.val_loss:
            ax.plot(self.epochs[: len(self.val_loss)], self.val_loss, label="val_loss")
        if min(self.loss) > 0:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend()
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()


@dataclass
class TrainState:
    """What callbacks see: the live ``network`` and ``optimizer``, the ``history`` so far, the
    shuffling Generator ``rng``, the number of ``epochs`` asked for, the current ``epoch``
    (0-based), ``batch`` and ``n_batches`` per epoch, the ``logs`` of the epoch just ended, and
    ``stop_training``, which a callback sets to stop after the current epoch."""

    network: Any
    optimizer: Any
    history: History
    rng: np.random.Generator
    epochs: int
    epoch: int = 0
    batch: int = 0
    n_batches: int = 0
    logs: dict[str, float] = field(default_factory=dict)
    stop_training: bool = False
    callbacks: list = field(default_factory=list)  # the fit's callbacks, in order (checkpoints save their state)


class Callback:
    """Base class: override any hook.

    A callback whose bookkeeping must survive a checkpoint (``backprop.checkpoint``) also
    overrides ``state_dict`` (a dict of JSON values and numpy arrays, or None for nothing to
    save, the default) and ``load_state_dict`` (given that dict back on resume)."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_epoch_begin(self, state: TrainState) -> None: ...
    def on_batch_end(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...

    def state_dict(self) -> dict | None:
        return None

    def load_state_dict(self, state: dict) -> None:
        pass


class LambdaCallback(Callback):
    """Call ``on_epoch_end(state)`` (any callable taking a TrainState) at the end of every epoch."""

    def __init__(self, on_epoch_end):
        self._fn = on_epoch_end

    def on_epoch_end(self, state):
        self._fn(state)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs; with
    ``restore_best`` the best weights seen are put back at the end."""

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 restore_best: bool = True):
        self.monitor = monitor
        self.patience = check_int("patience", patience, minimum=1)
        self.min_delta = check_non_negative("min_delta", min_delta)
        self.restore_best = restore_best
        self.mode = "max" if "acc" in monitor or "score" in monitor else "min"

    def on_train_begin(self, state):
        self.best = -np.inf if self.mode == "max" else np.inf
        self.best_weights = None
        self.wait = 0

    def on_epoch_end(self, state):
        if self.monitor not in state.logs:
            raise BackpropError(
                f"EarlyStopping `monitor` {self.monitor!r} is not logged; logged: {', '.join(state.logs)}"
            )
        value = state.logs[self.monitor]
        better = value > self.best + self.min_delta if self.mode == "max" else value < self.best - self.min_delta
        if better:
            self.best, self.wait = value, 0
            if self.restore_best:
                self.best_weights = state.network.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            state.stop_training = True
            state.history.stopped_early = True
            state.history.stop_reason = (
                f"{self.monitor} did not improve by {self.min_delta:g} for {self.patience} epochs"
            )

    def on_train_end(self, state):
        if self.restore_best and self.best_weights is not None:
            state.network.set_weights(self.best_weights)
