"""The fit loop: batching, shuffling, validation, callbacks -> History. Never prints.

Progress is shown by a callback (``backprop.progress.ProgressBar``) that the caller passes in.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ._validation import BackpropError, check_int, check_non_negative, describe
from . import fast as _fast
from .callbacks import Callback, History, TrainState
from .guards import Diverged, DivergenceGuard
from .initializers import as_generator
from .optimizers import Optimizer, get_optimizer

__all__ = ["fit", "accuracy", "METRICS", "iterate_batches"]


def accuracy(out: np.ndarray, Y: np.ndarray) -> float:
    """Fraction of samples whose predicted class matches: argmax for several outputs, a 0.5
    threshold for one."""
    if out.shape[1] == 1:
        return float(np.mean((out[:, 0] > 0.5) == (Y[:, 0] > 0.5)))
    return float(np.mean(np.argmax(out, axis=1) == np.argmax(Y, axis=1)))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {"accuracy": accuracy}


def iterate_batches(n: int, batch_size: int, rng: np.random.Generator | None):
    """Index arrays (or slices, unshuffled) covering range(n) in batches of ``batch_size``."""
    if rng is None:
        for start in range(0, n, batch_size):
            yield slice(start, start + batch_size)
        return
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def _resolve_optimizer(optimizer, lr) -> Optimizer:
    if optimizer is None:
        return get_optimizer("sgd", lr=0.1 if lr is None else lr)
    if isinstance(optimizer, Optimizer) and lr is not None:
        raise BackpropError(
            "give `lr` or an `optimizer` instance, not both; set the rate on the optimizer "
            f"(got lr={lr!r} and optimizer={optimizer!r})"
        )
    return get_optimizer(optimizer, lr=lr)


def fit(
    network,
    X,
    Y,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float | None = None,
    optimizer: Optimizer | str | None = None,
    loss=None,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = None,
    validation_data: tuple | None = None,
    metrics: Sequence[str] = (),
    callbacks: Sequence[Callback] = (),
    sample_weight=None,
    resume_from=None,
    fast: bool | None = None,
    l2: float = 0.0,
) -> History:
    """Train ``network`` on (X, Y) and return the per-epoch History.

    - ``lr`` (default 0.1, seed 003's alpha) builds plain SGD; or pass ``optimizer`` (an
      Optimizer, or "sgd"/"adam" with ``lr``).
    - ``batch_size=1`` with ``shuffle=False`` is the tutorials' per-sample (online) training.
    - The epoch's ``loss`` is the sum of the per-batch losses (each taken before its update),
      weighted by batch share for mean-reduced losses: with batch_size=1 and a sum-reduced
      loss it is the sum of the per-row errors, as the Brownlee tutorial prints.
    - ``validation_data=(X_val, Y_val)`` adds ``val_loss`` and ``val_<metric>`` per epoch, for
      each name in ``metrics`` (``"accuracy"``).
    - ``callbacks``: Callback objects (``on_train_begin``, ``on_epoch_begin``, ``on_batch_end``,
      ``on_epoch_end``, ``on_train_end``); ``sample_weight``: one weight per row of X.
    - Ctrl-C stops training cleanly after the current step; ``history.interrupted`` is then True.
    - Divergence (a NaN/inf loss or weight, or an exploding loss; see ``backprop.guards``) stops
      training with the last good weights; ``history.diverged`` and ``history.stop_reason`` say why.
    - ``resume_from=DIR`` continues from the latest checkpoint a ``backprop.checkpoint.Checkpoint``
      callback wrote there (bitwise identical to a run that was never stopped).
    - ``l2``: the L2 penalty scaled by batch size, scikit-learn's rule: a batch of m rows adds
      0.5 * l2 * ||W||^2 / m to its loss (W: every trainable weight matrix, biases left out), so
      its step's gradient gains l2 * W / m; the epoch's loss counts each batch's penalty by its
      share of rows, m / n. Unlike an optimizer's ``weight_decay`` it needs no per-batch hook,
      so it trains on the fast path.
    - ``fast``: None (default) runs whole epochs in the compiled kernel of ``backprop.fast`` where
      it applies (same results to rounding; BACKPROP_FAST=0 turns this off), True requires it,
      False forces the numpy reference path. On the fast path Ctrl-C stops after the epoch.
    """
    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size)
    l2 = check_non_negative("l2", l2)
    loss_fn = network._resolve_loss(loss)
    X2, Y2 = network.prepare(X, Y)
    n = X2.shape[0]
    weights = None if sample_weight is None else loss_fn._weights(n, sample_weight)
    if weights is not None and not np.sum(weights) > 0:
        raise BackpropError("`sample_weight` must give at least one sample a positive weight; got all zeros")
    optimizer = _resolve_optimizer(optimizer, lr)
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    for name in metrics:
        if name not in METRICS:
            raise BackpropError(f"`metrics` entries must be one of {', '.join(METRICS)}; got {name!r}")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise BackpropError(
                f"`validation_data` must be a pair (X_val, Y_val); got {describe(validation_data)}"
            )
        X_val, Y_val = network.prepare(*validation_data, names=("validation_data[0]", "validation_data[1]"))
    callbacks = list(callbacks or ())
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise BackpropError(
                f"`callbacks` entries must be backprop.Callback objects (subclass Callback or use "
                f"LambdaCallback(fn)); got {describe(cb)}"
            )
    use_fast = _fast.use_fast_path(fast, network, loss_fn, optimizer, callbacks)

    rng = as_generator(seed)
    history = History()
    state = TrainState(network=network, optimizer=optimizer, history=history, rng=rng, epochs=epochs,
                       n_batches=-(-n // batch_size), callbacks=callbacks)
    params, grads = network.trainable()
    mean = loss_fn.reduction == "mean"
    w_total = float(np.sum(weights)) if weights is not None else float(n)
    first_epoch = 0
    if resume_from is not None:
        from .checkpoint import restore  # checkpoint sits above training's imports; loaded on use

        first_epoch = restore(resume_from, state)
    guard = DivergenceGuard(state, X2)
    runner = None  # issue 6: the compiled fast path runs whole epochs (see backprop.fast)
    if use_fast:
        runner = _fast.make_runner(network, X2, Y2, loss_fn, optimizer, batch_size, weights, l2)
    decayed = [g for p, g in zip(params, grads) if p.ndim >= 2] if l2 else []
    decayed_params = [p for p in params if p.ndim >= 2] if l2 else []

    for cb in callbacks:
        cb.on_train_begin(state)
    guard.start()
    try:
        for epoch in range(first_epoch, epochs):
            state.epoch = epoch
            for cb in callbacks:
                cb.on_epoch_begin(state)
            # fast path: the whole epoch in one call, and no numpy batches (issue 6)
            total = runner.run_epoch(rng if shuffle else None) if runner is not None else 0.0
            batches = () if runner is not None else iterate_batches(n, batch_size, rng if shuffle else None)
            for b, idx in enumerate(batches):
                Xb, Yb = X2[idx], Y2[idx]
                wb = None if weights is None else weights[idx]
                network.forward_batch(Xb, training=True)
                value = network.backward_batch(Yb, loss_fn, wb)
                guard.check_batch(value, epoch, b)
                penalty = 0.0
                if l2:  # scikit-learn's L2 rule, at the weights of this batch's forward pass
                    m = Xb.shape[0]
                    penalty = 0.5 * l2 * sum(float(np.dot(p.ravel(), p.ravel())) for p in decayed_params) / n
                    for p, g in zip(decayed_params, decayed):
                        g += (l2 / m) * p
                optimizer.step(params, grads)
                if mean:
                    share = Xb.shape[0] if wb is None else float(np.sum(wb))
                    value *= share / w_total
                total += value + penalty
                state.batch = b
                for cb in callbacks:
                    cb.on_batch_end(state)
            guard.check_epoch(total, epoch)
            logs = {"loss": total}
            if validation_data is not None:
                out = network.forward_batch(X_val)
                logs["val_loss"] = network.batch_loss(Y_val, loss_fn)
                for name in metrics:
                    logs[f"val_{name}"] = METRICS[name](out, Y_val)
            optimizer.epoch_end(total)
            history.record(epoch, logs)
            state.logs = logs
            for cb in callbacks:
                cb.on_epoch_end(state)
            if state.stop_training:
                break
    except Diverged as exc:
        guard.restore()
        history.diverged = True
        history.stop_reason = str(exc)
        history.divergence = exc.diagnosis
    except KeyboardInterrupt:
        history.interrupted = True
        history.stop_reason = "interrupted (Ctrl-C)"
    finally:
        guard.finish()
        for cb in callbacks:
            cb.on_train_end(state)
    return history
