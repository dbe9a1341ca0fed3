"""Checkpoints: save a fit at epoch ends and resume it bitwise-exactly.

``Checkpoint(directory, every=N)`` is a callback. Every N epochs (and after the last one) it
writes ``checkpoint-<epochs done>.safetensors`` into ``directory``: one safetensors file holding
the weights (``network/W1``...) and the optimizer's slot arrays (``optimizer/<slot>/<i>``), with a
JSON entry ``backprop.checkpoint`` for everything else::

    {"format": "backprop.checkpoint", "version": 1, "epoch": <epochs done>,
     "network": network.config(), "n_batches": <batches per epoch>,
     "optimizer": {"type": "SGD", "hyper": {...}, "schedule": "Constant", "t": ..., "schedule_state": {...}},
     "rng": <the shuffling Generator's bit_generator.state>, "history": {...History fields...}}

Each file is written whole with :func:`backprop.io.atomic_write_bytes` (temporary file, fsync,
rename), so a file with a checkpoint name is always complete: a run killed at any moment leaves
the previous checkpoint intact and perhaps a stray temporary file (removed at the next start).
Only the newest ``keep`` checkpoints are kept.

``fit(..., resume_from=directory)`` calls :func:`restore`, which loads the newest readable
checkpoint into the network, the optimizer, the Generator and the History, and returns the epoch
to continue from. Because the fit loop draws the Generator only for the per-epoch permutation,
a run resumed from an epoch-end state is bitwise identical to one that never stopped.

On Ctrl-C (``on_interrupt=True``, the default) the state at the end of the last finished epoch
is written even if it was not due, so nothing finished is lost. The callback keeps that state
encoded in memory between writes; for the small networks of this library that costs far less
than an epoch.

Callbacks that keep a ``state_dict`` (the estimators' scikit-learn rules: curves, stopping
counters, best weights) have it saved too, under ``"callbacks"`` (JSON values by position and
class name) and tensors ``callbacks/<i>:<class>/<name>``; resuming needs the same callbacks.
Not saved: the state of callbacks without one (EarlyStopping's patience counter, for one) and of
layers with their own random state; resume with the same data, batch size and optimizer settings.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np

from ._validation import BackpropError, check_int
from .callbacks import Callback, History, TrainState
from .io import atomic_write_bytes, parse_json, read_safetensors

__all__ = ["Checkpoint", "restore", "latest_checkpoint", "list_checkpoints", "FORMAT", "VERSION"]

FORMAT = "backprop.checkpoint"
VERSION = 1
_NAME = re.compile(r"^checkpoint-(\d{6,})\.safetensors$")


def _file_name(epoch: int) -> str:
    return f"checkpoint-{epoch:06d}.safetensors"


def list_checkpoints(directory) -> list[tuple[int, Path]]:
    """(epochs done, path) of every checkpoint in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        match = _NAME.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def latest_checkpoint(directory) -> Path | None:
    """The newest checkpoint file in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def _hyper(optimizer) -> dict:
    """The optimizer's scalar settings (momentum, betas...), compared on resume."""
    return {k: v for k, v in sorted(vars(optimizer).items())
            if k != "t" and isinstance(v, (bool, int, float, str))}


def _to_json(value):
    """bit_generator.state holds Python ints (PCG64) or numpy arrays (MT19937): make it JSON."""
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    return value


def _from_json(value):
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.array(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
        return {k: _from_json(v) for k, v in value.items()}
    return value


def encode(state: TrainState, epoch: int) -> bytes:
    """The bytes of a checkpoint of ``state`` after ``epoch`` epochs."""
    from safetensors.numpy import save

    optimizer = state.optimizer
    opt_state = optimizer.state_dict()
    tensors = {f"network/{name}": np.ascontiguousarray(p) for name, p in state.network.named_parameters()}
    for slot, arrays in opt_state["slots"].items():
        for i, array in enumerate(arrays):
            tensors[f"optimizer/{slot}/{i}"] = np.ascontiguousarray(array)
    description = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": epoch,
        "network": state.network.config(),
        "n_batches": state.n_batches,
        "optimizer": {
            "type": type(optimizer).__name__,
            "hyper": _hyper(optimizer),
            "schedule": type(optimizer.schedule).__name__,
            "t": opt_state["t"],
            "schedule_state": opt_state["schedule"],
            "slots": {slot: len(arrays) for slot, arrays in opt_state["slots"].items()},
        },
        "rng": _to_json(state.rng.bit_generator.state),
        "history": dataclasses.asdict(state.history),
        "callbacks": _callback_states(state, tensors),
    }
    # Python's float repr round-trips exactly; NaN/inf (a schedule's initial "best") stay readable.
    return save(tensors, metadata={FORMAT: json.dumps(description)})


def _callback_key(i: int, callback) -> str:
    return f"{i}:{type(callback).__name__}"


def _callback_states(state: TrainState, tensors: dict) -> dict:
    """The ``state_dict`` of every callback that keeps one, by position and class name: JSON
    values in the description, arrays as tensors ``callbacks/<key>/<name>``."""
    saved = {}
    for i, cb in enumerate(state.callbacks):
        values = cb.state_dict()
        if values is None:
            continue
        key = _callback_key(i, cb)
        arrays = sorted(k for k, v in values.items() if isinstance(v, np.ndarray))
        for name in arrays:
            tensors[f"callbacks/{key}/{name}"] = np.ascontiguousarray(values[name])
        saved[key] = {"values": {k: v for k, v in values.items() if k not in arrays}, "arrays": arrays}
    return saved


def _restore_callbacks(saved: dict, tensors: dict, state: TrainState, path: Path) -> None:
    mine = {_callback_key(i, cb): cb for i, cb in enumerate(state.callbacks) if cb.state_dict() is not None}
    if set(saved) != set(mine):
        raise BackpropError(
            f"`{path}` was written with callbacks that keep state {sorted(saved) or 'none'}; this run has "
            f"{sorted(mine) or 'none'}: resume with the same callbacks (and the same settings)"
        )
    for key, entry in saved.items():
        values = dict(entry["values"])
        values.update({name: tensors[f"callbacks/{key}/{name}"] for name in entry["arrays"]})
        mine[key].load_state_dict(values)


class Checkpoint(Callback):
    """Write a resumable checkpoint every ``every`` epochs (and after the last) into ``directory``.

    >>> fit(net, X, Y, epochs=100, callbacks=[Checkpoint("ckpt", every=5)])     # doctest: +SKIP
    >>> fit(net, X, Y, epochs=100, callbacks=[Checkpoint("ckpt", every=5)], resume_from="ckpt")  # doctest: +SKIP
    """

    def __init__(self, directory, every: int = 1, keep: int = 2, on_interrupt: bool = True):
        self.directory = Path(directory)
        self.every = check_int("every", every)
        self.keep = check_int("keep", keep)
        self.on_interrupt = bool(on_interrupt)
        self._pending: tuple[int, bytes] | None = None
        self.written: list[Path] = []

    def on_train_begin(self, state):
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackpropError(f"cannot create the checkpoint folder `{self.directory}`: {exc.strerror}") from None
        if state.epoch == 0 and list_checkpoints(self.directory):
            raise BackpropError(
                f"the checkpoint folder `{self.directory}` already holds checkpoints of an earlier run; "
                f"resume from it (resume_from / --resume) or choose an empty folder"
            )
        for entry in self.directory.glob(".checkpoint-*.tmp"):  # left by a run killed mid-write
            entry.unlink(missing_ok=True)
        self._pending = None

    def on_epoch_end(self, state):
        done = state.epoch + 1
        if done % self.every == 0 or done == state.epochs:
            self._pending = (done, encode(state, done))
            self._write()
        elif self.on_interrupt:
            self._pending = (done, encode(state, done))

    def on_train_end(self, state):
        if state.history.interrupted and self._pending is not None:
            self._write()

    def _write(self) -> None:
        epoch, payload = self._pending
        path = atomic_write_bytes(self.directory / _file_name(epoch), payload)
        self._pending = None
        self.written.append(path)
        for _, old in list_checkpoints(self.directory)[: -self.keep]:
            old.unlink(missing_ok=True)


def _load(path: Path) -> tuple[dict, dict]:
    header, tensors = read_safetensors(path)
    meta = header.get("__metadata__", {})
    if FORMAT not in meta:
        raise BackpropError(f"`{path}` is a safetensors file but not a backprop checkpoint")
    description = parse_json(meta[FORMAT], "the checkpoint description", path)
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise BackpropError(f"`{path}`: the checkpoint description must be a JSON object with format {FORMAT!r}")
    if description.get("version") != VERSION:
        raise BackpropError(f"`{path}` is checkpoint version {description.get('version')!r}; this backprop reads {VERSION}")
    return description, tensors


def restore(directory, state: TrainState) -> int:
    """Load the newest readable checkpoint in ``directory`` into ``state`` (network weights,
    optimizer, Generator, History); return the number of epochs it had finished."""
    directory = Path(directory)
    found = list_checkpoints(directory)
    if not found:
        raise BackpropError(
            f"`resume_from` must be a folder holding checkpoints; `{directory}` has none "
            f"(start without resuming, with a Checkpoint callback writing there)"
        )
    errors = []
    for _, path in reversed(found):  # newest first; an unreadable one falls back to the previous
        try:
            description, tensors = _load(path)
            break
        except BackpropError as exc:
            errors.append(str(exc))
    else:
        raise BackpropError(f"no checkpoint in `{directory}` could be read: {'; '.join(errors)}")
    try:
        _apply(description, tensors, state, path)
    except (KeyError, TypeError, AttributeError) as exc:
        raise BackpropError(f"`{path}`: the checkpoint description is malformed ({exc})") from None
    return state.epoch


def _apply(description: dict, tensors: dict, state: TrainState, path: Path) -> None:
    network, optimizer = state.network, state.optimizer
    if description["network"] != network.config():
        raise BackpropError(
            f"`{path}` was written for another network; build the same architecture to resume "
            f"(checkpoint: {description['network']}, this network: {network.config()})"
        )
    if description["n_batches"] != state.n_batches:
        raise BackpropError(
            f"`{path}` was written with {description['n_batches']} batches per epoch; this run has "
            f"{state.n_batches}: resume with the same data and batch_size"
        )
    opt = description["optimizer"]
    mine = {"type": type(optimizer).__name__, "hyper": _hyper(optimizer), "schedule": type(optimizer.schedule).__name__}
    theirs = {"type": opt["type"], "hyper": opt["hyper"], "schedule": opt["schedule"]}
    if mine != theirs:
        raise BackpropError(
            f"`{path}` was written with optimizer {theirs}; this run uses {mine}: resume with the same optimizer settings"
        )
    names = [name for name, _ in network.named_parameters()]
    weights = [tensors[f"network/{name}"] for name in names]
    slots = {slot: [tensors[f"optimizer/{slot}/{i}"] for i in range(count)] for slot, count in opt["slots"].items()}
    rng_state = _from_json(description["rng"])
    history = History(**description["history"])
    try:
        state.rng.bit_generator.state = rng_state
    except (ValueError, TypeError) as exc:
        raise BackpropError(f"`{path}`: its random state does not fit this run's Generator ({exc})") from None
    network.set_weights(weights)
    optimizer.load_state_dict({"t": opt["t"], "slots": slots, "schedule": opt["schedule_state"]})
    for field in dataclasses.fields(History):
        setattr(state.history, field.name, getattr(history, field.name))
    _restore_callbacks(description.get("callbacks", {}), tensors, state, path)
    state.epoch = int(description["epoch"])
