"""Checkpoint flags shared by training sub-commands (not a sub-command itself: the leading
underscore keeps ``cli`` from discovering it).

Wiring into a command::

    def add_arguments(parser):
        ...
        add_checkpoint_arguments(parser)

    def run(args):
        ...
        history = fit(network, X, Y, ..., **checkpoint_fit_kwargs(args, callbacks=[ProgressBar()]))
"""

from __future__ import annotations

import argparse

from .._validation import BackpropError

__all__ = ["add_checkpoint_arguments", "checkpoint_fit_kwargs"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}")
    return value


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--checkpoint DIR``, ``--checkpoint-every N`` and ``--resume DIR``."""
    group = parser.add_argument_group("checkpoints")
    group.add_argument("--checkpoint", metavar="DIR",
                       help="write a resumable checkpoint into DIR (the newest two are kept); "
                            "Ctrl-C saves the last finished epoch there too")
    group.add_argument("--checkpoint-every", metavar="N", type=_positive_int, default=None,
                       help="epochs between checkpoints (default 1; needs --checkpoint)")
    group.add_argument("--resume", metavar="DIR",
                       help="continue from the newest checkpoint in DIR; the result is bitwise "
                            "identical to a run that was never stopped (same data and settings)")


def checkpoint_fit_kwargs(args: argparse.Namespace, callbacks=()) -> dict:
    """Keyword arguments for ``fit``: ``callbacks`` (the given ones plus a Checkpoint when asked)
    and ``resume_from``."""
    from ..checkpoint import Checkpoint, latest_checkpoint

    callbacks = list(callbacks)
    resume = getattr(args, "resume", None)
    if resume is not None and latest_checkpoint(resume) is None:
        raise BackpropError(
            f"`--resume` must name a folder holding checkpoints; `{resume}` has none "
            f"(train once with --checkpoint {resume}, then resume from it)"
        )
    every = getattr(args, "checkpoint_every", None)
    directory = getattr(args, "checkpoint", None)
    if directory is None and every is not None:
        raise BackpropError(f"`--checkpoint-every` needs `--checkpoint DIR`; got --checkpoint-every {every} alone")
    if directory is not None:
        callbacks.append(Checkpoint(directory, every=every or 1))
    return {"callbacks": callbacks, "resume_from": resume}
