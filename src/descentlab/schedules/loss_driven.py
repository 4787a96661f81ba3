r"""Loss-driven rules: the next value depends on the losses seen, not only on the step.

``values = rule.step(loss, values)``, called by a :class:`~descentlab.schedules.Scheduler` once
per ``scheduler.step(loss=...)``. :class:`BoldDriver` is the gradient-descent lecture's
loss-driven learning-rate adaptation, :class:`ReduceOnPlateau` its patient cousin from torch.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from numbers import Real
from typing import Any

from descentlab.constraints import (
    NONNEGATIVE,
    NONNEGATIVE_INT,
    NUMBER,
    Boolean,
    Interval,
    ListOf,
    Options,
    check,
    invalid,
)

__all__ = ["BoldDriver", "LossRule", "ReduceOnPlateau", "bold_driver", "reduce_on_plateau"]


def check_loss(loss: Any) -> float:
    """The monitored loss as a float: a number or a one-element tensor (not None)."""
    if loss is None:
        raise ValueError("loss must be given (a loss-driven rule needs it), got None")
    if hasattr(loss, "numel") and hasattr(loss, "detach"):  # a tensor
        if loss.numel() != 1:
            raise invalid("loss", "a scalar", loss)
        loss = loss.detach().item()
    return float(check("loss", loss, NUMBER))


def _check_floor(name: str, value: Any) -> float | list[float]:
    return check(name, value, NONNEGATIVE, ListOf(NONNEGATIVE, min_len=0))


def _each(value: float | list[float], fn: Any) -> float | list[float]:
    """Apply `fn` to a group's value, elementwise when it is a list (a tensor hyperparameter)."""
    if isinstance(value, list):
        return [float(fn(float(x))) for x in value]
    return float(fn(float(value)))


def _per_group(name: str, value: float | list[float], n: int) -> list[float]:
    if isinstance(value, list):
        if len(value) != n:
            raise ValueError(
                f"{name} must give one value per param group ({n}), got {len(value)}: {value!r}"
            )
        return value
    return [value] * n


class LossRule(ABC):
    """A stateful ``(loss, values) -> values`` rule with `state_dict`/`load_state_dict`.

    After each `step`, `accepted` says whether the step that produced `loss` should be kept
    (always True except for a rejecting `BoldDriver`; the Scheduler then restores the
    parameters and optimizer state of the last accepted step).
    """

    _fields: tuple[str, ...] = ()
    _state_keys: tuple[str, ...] = ()
    accepted: bool = True

    @abstractmethod
    def step(self, loss: Any, values: Sequence[float | list[float]]) -> list[float | list[float]]:
        """Observe `loss` and return the new values of the driven param groups.

        Args:
            loss: the monitored number (a float or 0-d tensor).
            values: the current value of each driven param group (a list of floats for a
                tensor-valued hyperparameter, mapped elementwise).

        Returns:
            The values to set, one per group.
        """

    @abstractmethod
    def reset(self) -> None:
        """Forget all observed losses (back to the freshly built state)."""

    def check_groups(self, n: int) -> None:
        """Raise ValueError if per-group options do not fit `n` driven groups."""
        if n < 1:
            raise ValueError(f"a loss rule must drive at least one param group, got {n}")

    def state_dict(self) -> dict[str, Any]:
        """The rule's mutable state (plain Python values)."""
        return {k: getattr(self, k) for k in self._state_keys}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned; ValueError if keys are missing or unknown."""
        missing = set(self._state_keys) - set(state)
        unknown = set(state) - set(self._state_keys)
        if missing or unknown:
            raise ValueError(
                f"state for {type(self).__name__} must have keys {sorted(self._state_keys)}, "
                f"got {sorted(state)}"
            )
        for k in self._state_keys:
            setattr(self, k, state[k])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._fields)
        return f"{type(self).__name__}({args})"


class ReduceOnPlateau(LossRule):
    r"""Shrink by `factor` when the monitored metric stops improving (torch
    ``ReduceLROnPlateau``, same options and semantics, verified step for step).

    A metric :math:`m` improves on the best :math:`b` when (mode "min") :math:`m < b(1 - \tau)`
    (``threshold_mode="rel"``) or :math:`m < b - \tau` ("abs"); "max" mirrors it. After more
    than `patience` steps without improvement, each value becomes
    :math:`\max(v \cdot \text{factor}, \text{min\_lr})` unless that changes it by `eps` or less;
    then `cooldown` steps pass during which bad steps are not counted.

    Args:
        mode: "min" (a loss) or "max" (an accuracy).
        factor: multiplier in [0, 1).
        patience: steps without improvement tolerated, >= 0.
        threshold: improvement margin tau >= 0.
        threshold_mode: "rel" or "abs".
        cooldown: steps to wait after a reduction, >= 0.
        min_lr: floor (>= 0) for all groups, or a list with one per group. It floors whatever
            hyperparameter is driven; the name follows torch.
        eps: smallest change applied, >= 0.

    Example:
        >>> r, lr = reduce_on_plateau(factor=0.5, patience=1), [0.1]
        >>> for loss in (1.0, 1.0, 1.0, 0.5):
        ...     lr = r.step(loss, lr)
        ...     print(lr[0])
        0.1
        0.1
        0.05
        0.05
    """

    _fields = (
        "mode",
        "factor",
        "patience",
        "threshold",
        "threshold_mode",
        "cooldown",
        "min_lr",
        "eps",
    )
    _state_keys = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch", "num_reductions")

    def __init__(
        self,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0.0,
        eps: float = 1e-8,
    ) -> None:
        self.mode = check("mode", mode, Options("min", "max"))
        self.factor = check("factor", factor, Interval(Real, 0, 1, closed="left"))
        self.patience = check("patience", patience, NONNEGATIVE_INT)
        self.threshold = check("threshold", threshold, NONNEGATIVE)
        self.threshold_mode = check("threshold_mode", threshold_mode, Options("rel", "abs"))
        self.cooldown = check("cooldown", cooldown, NONNEGATIVE_INT)
        self.min_lr = _check_floor("min_lr", min_lr)
        self.eps = check("eps", eps, NONNEGATIVE)
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self.num_reductions = 0
        self.accepted = True

    def check_groups(self, n: int) -> None:
        super().check_groups(n)
        _per_group("min_lr", self.min_lr, n)

    def _reduce(self, old: float, floor: float) -> float:
        new = max(old * self.factor, floor)
        return new if old - new > self.eps else old

    def is_better(self, a: float, best: float) -> bool:
        """Whether metric `a` improves on `best` by more than the threshold."""
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, loss: Any, values: Sequence[float | list[float]]) -> list[float | list[float]]:
        current = check_loss(loss)
        floors = _per_group("min_lr", self.min_lr, len(values))
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        out = [_each(v, float) for v in values]
        if self.num_bad_epochs > self.patience:
            for i, old in enumerate(out):
                out[i] = _each(old, lambda v, floor=floors[i]: self._reduce(v, floor))
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
            self.num_reductions += 1
        self.accepted = True
        return out


def reduce_on_plateau(*args: Any, **kwargs: Any) -> ReduceOnPlateau:
    """Torch's ``ReduceLROnPlateau`` as a loss rule; the arguments of `ReduceOnPlateau`."""
    return ReduceOnPlateau(*args, **kwargs)


class BoldDriver(LossRule):
    r"""The "bold driver": grow the value while the loss falls, shrink it when the loss rises.

    With :math:`L_t` the loss at the current parameters and :math:`L_{prev}` the last accepted
    loss:

    * :math:`L_t \le L_{prev} + \tau |L_{prev}|` (improved): :math:`v \leftarrow
      \min(v \cdot \text{increase}, \text{max\_lr})`, and :math:`L_t` becomes :math:`L_{prev}`;
    * otherwise (or a non-finite loss): :math:`v \leftarrow \max(v \cdot \text{decrease},
      \text{min\_lr})`; with ``reject=True`` the step is rejected (``accepted`` is False): the
      Scheduler puts back the parameters and optimizer state of the last accepted step, and
      :math:`L_{prev}` stays. Without rejection :math:`L_t` becomes :math:`L_{prev}`.

    The first loss only sets :math:`L_{prev}`. With ``reject=True`` pass the loss *at the
    current parameters*, i.e. evaluated after ``optimizer.step()``.

    The gradient-descent lecture's loss-driven adaptation ("if the loss at the updated
    weights is larger than the previous one, do not take the update; halve the learning rate") is
    ``bold_driver(increase=1.0, decrease=0.5, reject=True)``; the classic rule (Vogl et al.
    1988; Battiti 1989, who named it) grows by ~1.05-1.1 on success.

    Args:
        increase: factor on improvement, >= 1.
        decrease: factor on a worse loss, in (0, 1].
        reject: undo steps that made the loss worse.
        min_lr: floor (>= 0), or one per group.
        max_lr: ceiling (> 0, may be inf), or one per group.
        threshold: relative tolerance tau >= 0 before a rise counts as worse.

    References:
        Vogl, Mangis, Rigler, Zink, Alkon (1988), Accelerating the convergence of the
        back-propagation method, Biological Cybernetics 59:257-263.
        Battiti (1989), Accelerated backpropagation learning: two optimization methods,
        Complex Systems 3:331-342.

    Example:
        >>> r, lr = bold_driver(increase=2.0, decrease=0.5), [1.0]
        >>> for loss in (3.0, 2.0, 2.5):
        ...     lr = r.step(loss, lr)
        ...     print(lr[0])
        1.0
        2.0
        1.0
    """

    _fields = ("increase", "decrease", "reject", "min_lr", "max_lr", "threshold")
    _state_keys = ("prev_loss", "accepted", "num_steps", "num_increases", "num_decreases")

    def __init__(
        self,
        increase: float = 1.05,
        decrease: float = 0.5,
        reject: bool = False,
        min_lr: float | Sequence[float] = 0.0,
        max_lr: float | Sequence[float] = math.inf,
        threshold: float = 0.0,
    ) -> None:
        self.increase = check("increase", increase, Interval(Real, 1, None))
        self.decrease = check("decrease", decrease, Interval(Real, 0, 1, closed="right"))
        self.reject = check("reject", reject, Boolean)
        self.min_lr = _check_floor("min_lr", min_lr)
        ceiling = Interval(Real, 0, None, closed="neither", finite=False)
        self.max_lr: float | list[float] = check(
            "max_lr", max_lr, ceiling, ListOf(ceiling, min_len=0)
        )
        self.threshold = check("threshold", threshold, NONNEGATIVE)
        self.reset()

    def reset(self) -> None:
        self.prev_loss: float | None = None
        self.accepted = True
        self.num_steps = 0
        self.num_increases = 0
        self.num_decreases = 0

    def check_groups(self, n: int) -> None:
        super().check_groups(n)
        _per_group("min_lr", self.min_lr, n)
        _per_group("max_lr", self.max_lr, n)

    def step(self, loss: Any, values: Sequence[float | list[float]]) -> list[float | list[float]]:
        current = check_loss(loss)
        floors = _per_group("min_lr", self.min_lr, len(values))
        ceilings = _per_group("max_lr", self.max_lr, len(values))
        self.num_steps += 1
        out = [_each(v, float) for v in values]
        prev = self.prev_loss
        if prev is None:
            if math.isfinite(current):
                self.prev_loss = current
            self.accepted = True
            return out
        if current <= prev + self.threshold * abs(prev):  # False for NaN: counts as worse
            self.num_increases += 1
            self.prev_loss = current
            self.accepted = True
            return [
                _each(v, lambda x, c=ceilings[i]: min(x * self.increase, c))
                for i, v in enumerate(out)
            ]
        self.num_decreases += 1
        self.accepted = not self.reject
        if not self.reject and math.isfinite(current):
            self.prev_loss = current
        return [
            _each(v, lambda x, f=floors[i]: max(x * self.decrease, f)) for i, v in enumerate(out)
        ]


def bold_driver(*args: Any, **kwargs: Any) -> BoldDriver:
    """The bold-driver loss rule; the arguments of `BoldDriver`."""
    return BoldDriver(*args, **kwargs)
