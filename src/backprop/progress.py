"""Progress display for long training: a tqdm bar on a terminal, one plain line per epoch otherwise.

This is a renderer: it writes to a stream (stderr by default); the training core never prints.
"""

from __future__ import annotations

import sys

from .callbacks import Callback

__all__ = ["ProgressBar"]


def _format_logs(logs: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.6g}" for k, v in logs.items())


class ProgressBar(Callback):
    """Show epochs as a tqdm bar when ``stream`` is a terminal, else print one line every
    ``every`` epochs (and at the last one)."""

    def __init__(self, stream=None, every: int = 1, desc: str = "training", force_bar: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.every = max(1, int(every))
        self.desc = desc
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.use_bar = isatty if force_bar is None else force_bar
        self._bar = None

    def on_train_begin(self, state):
        if self.use_bar:
            from tqdm import tqdm

            self._bar = tqdm(total=state.epochs, desc=self.desc, unit="epoch", file=self.stream,
                             dynamic_ncols=True, leave=True)

    def on_epoch_end(self, state):
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(_format_logs(state.logs), refresh=False)
            return
        epoch = state.epoch + 1
        if epoch % self.every == 0 or epoch == state.epochs or epoch == 1:
            print(f"[{self.desc}] epoch {epoch}/{state.epochs}: {_format_logs(state.logs)}",
                  file=self.stream, flush=True)

    def on_train_end(self, state):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
