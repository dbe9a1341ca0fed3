"""Optimizers and learning-rate schedules.

An optimizer owns its state and updates parameters in place with ``step(params, grads)``; the
i-th state slot belongs to the i-th parameter, so always pass the same list in the same order.
A frozen parameter is simply not passed. ``lr`` is a number or a schedule.
"""

from __future__ import annotations

import numpy as np

from ._validation import BackpropError, check_int, check_non_negative, check_positive, check_probability, describe

__all__ = [
    "Schedule",
    "Constant",
    "InverseScaling",
    "ReduceOnPlateau",
    "Optimizer",
    "SGD",
    "Adam",
    "get_optimizer",
]


# -- schedules -------------------------------------------------------------------------------
class Schedule:
    """A learning rate that may change with the step count ``t`` or with the epoch's loss."""

    def lr_at(self, t: int) -> float:
        raise NotImplementedError

    def epoch_end(self, loss: float) -> None:
        """Called once per epoch with the epoch's training loss."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class Constant(Schedule):
    """lr_t = lr."""

    def __init__(self, lr: float):
        self.lr = check_positive("lr", lr)

    def lr_at(self, t):
        return self.lr

    def __repr__(self):
        return f"Constant({self.lr:g})"


class InverseScaling(Schedule):
    """lr_t = lr / (t + 1) ** power_t, t counting optimizer steps from 0."""

    def __init__(self, lr: float, power_t: float = 0.5):
        self.lr = check_positive("lr", lr)
        self.power_t = check_non_negative("power_t", power_t)

    def lr_at(self, t):
        return self.lr / (t + 1) ** self.power_t

    def __repr__(self):
        return f"InverseScaling({self.lr:g}, power_t={self.power_t:g})"


class ReduceOnPlateau(Schedule):
    """Multiply the rate by ``factor`` when the epoch loss has not improved by ``threshold`` for
    ``patience`` epochs in a row; never below ``min_lr``."""

    def __init__(
        self,
        lr: float,
        factor: float = 0.2,
        patience: int = 2,
        threshold: float = 1e-4,
        min_lr: float = 0.0,
    ):
        self.lr = check_positive("lr", lr)
        self.factor = check_probability("factor", factor)
        if self.factor == 0:
            raise BackpropError(f"`factor` must be a number in (0, 1); got {factor}")
        self.patience = check_int("patience", patience)
        self.threshold = check_non_negative("threshold", threshold)
        self.min_lr = check_non_negative("min_lr", min_lr)
        self.best = np.inf
        self.wait = 0

    def lr_at(self, t):
        return self.lr

    def epoch_end(self, loss):
        if loss < self.best - self.threshold:
            self.best, self.wait = loss, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.lr = max(self.lr * self.factor, self.min_lr)
            self.wait = 0

    def state_dict(self):
        return {"lr": self.lr, "best": self.best, "wait": self.wait}

    def load_state_dict(self, state):
        self.lr, self.best, self.wait = float(state["lr"]), float(state["best"]), int(state["wait"])

    def __repr__(self):
        return f"ReduceOnPlateau({self.lr:g}, factor={self.factor:g}, patience={self.patience})"


def as_schedule(lr) -> Schedule:
    if isinstance(lr, Schedule):
        return lr
    return Constant(lr)


# -- optimizers ------------------------------------------------------------------------------
class Optimizer:
    """Base class: ``step`` applies one update in place and advances the step counter ``t``."""

    def __init__(self, lr):
        self.schedule = as_schedule(lr)
        self.t = 0
        self.state: dict[str, list[np.ndarray]] = {}

    @property
    def lr(self) -> float:
        """The learning rate the next step will use."""
        return self.schedule.lr_at(self.t)

    def _slots(self, name: str, params: list[np.ndarray]) -> list[np.ndarray]:
        slots = self.state.get(name)
        if slots is None or len(slots) != len(params):
            slots = self.state[name] = [np.zeros_like(p) for p in params]
        return slots

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        if len(params) != len(grads):
            raise BackpropError(
                f"`grads` must have one array per parameter ({len(params)}); got {len(grads)}"
            )
        self._update(params, grads, self.lr)
        self.t += 1

    def _update(self, params, grads, lr) -> None:
        raise NotImplementedError

    def epoch_end(self, loss: float) -> None:
        self.schedule.epoch_end(loss)

    def state_dict(self) -> dict:
        """Everything needed to resume: step count, slot arrays (copies) and schedule state."""
        return {
            "t": self.t,
            "slots": {k: [a.copy() for a in v] for k, v in self.state.items()},
            "schedule": self.schedule.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["t"])
        self.state = {k: [np.array(a) for a in v] for k, v in state["slots"].items()}
        self.schedule.load_state_dict(state.get("schedule", {}))


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay.

    With g = grad + weight_decay * p (weight decay on weight matrices only, p.ndim >= 2)::

        momentum == 0:  p <- p - lr * g
        otherwise:      v <- momentum * v - lr * g
                        p <- p + v                          (classical)
                        p <- p + momentum * v - lr * g      (nesterov=True)
    """

    def __init__(self, lr=0.01, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(lr)
        self.momentum = check_probability("momentum", momentum)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise BackpropError("`nesterov` needs a positive `momentum`; got momentum=0")
        self.weight_decay = check_non_negative("weight_decay", weight_decay)

    def _update(self, params, grads, lr):
        velocity = self._slots("velocity", params) if self.momentum else None
        for i, (p, g) in enumerate(zip(params, grads)):
            if self.weight_decay and p.ndim >= 2:
                g = g + self.weight_decay * p
            if velocity is None:
                p -= lr * g
                continue
            v = velocity[i]
            v *= self.momentum
            v -= lr * g
            if self.nesterov:
                p += self.momentum * v - lr * g
            else:
                p += v

    def __repr__(self):
        return (
            f"SGD(lr={self.schedule!r}, momentum={self.momentum:g}, nesterov={self.nesterov}, "
            f"weight_decay={self.weight_decay:g})"
        )


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), bias-corrected. With t counting from 1::

        m <- beta_1 * m + (1 - beta_1) * g
        v <- beta_2 * v + (1 - beta_2) * g^2
        p <- p - lr * (m / (1 - beta_1^t)) / (sqrt(v / (1 - beta_2^t)) + epsilon)

    ``weight_decay`` adds weight_decay * p to g for weight matrices (L2, not decoupled).
    """

    def __init__(self, lr=0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(lr)
        self.beta_1 = check_probability("beta_1", beta_1)
        self.beta_2 = check_probability("beta_2", beta_2)
        self.epsilon = check_positive("epsilon", epsilon)
        self.weight_decay = check_non_negative("weight_decay", weight_decay)

    def _update(self, params, grads, lr):
        m_slots = self._slots("m", params)
        v_slots = self._slots("v", params)
        t = self.t + 1
        c1 = 1.0 - self.beta_1**t
        c2 = 1.0 - self.beta_2**t
        for p, g, m, v in zip(params, grads, m_slots, v_slots):
            if self.weight_decay and p.ndim >= 2:
                g = g + self.weight_decay * p
            m *= self.beta_1
            m += (1.0 - self.beta_1) * g
            v *= self.beta_2
            v += (1.0 - self.beta_2) * (g * g)
            p -= lr * (m / c1) / (np.sqrt(v / c2) + self.epsilon)

    def __repr__(self):
        return f"Adam(lr={self.schedule!r}, beta_1={self.beta_1:g}, beta_2={self.beta_2:g})"


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def get_optimizer(spec, lr=None) -> Optimizer:
    """An optimizer by name (with ``lr``), or an Optimizer instance as is."""
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, str) and spec.lower() in OPTIMIZERS:
        cls = OPTIMIZERS[spec.lower()]
        return cls() if lr is None else cls(lr=lr)
    raise BackpropError(
        f"`optimizer` must be one of {', '.join(sorted(OPTIMIZERS))} or an Optimizer; got {describe(spec)}"
    )
