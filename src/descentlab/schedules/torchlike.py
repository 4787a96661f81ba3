"""The schedules of ``torch.optim.lr_scheduler``, as pure ``step -> value`` functions.

The optimization lecture lists LambdaLR to CosineAnnealingLR; warm restarts and one-cycle
complete torch's set. How the closed forms used here match torch's recursive stepping, and
``CosineAnnealing(form="recursive")`` that replays it: docs/schedules.md.
"""

from __future__ import annotations

import contextlib
import math
from bisect import bisect_right
from collections.abc import Callable, Iterable
from typing import Any

from descentlab.constraints import (
    CALLABLE,
    NONNEGATIVE,
    NONNEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    UNIT,
    Boolean,
    ListOf,
    Options,
    check,
)
from descentlab.schedules.base import Schedule

__all__ = [
    "Constant",
    "ConstantFactor",
    "CosineAnnealing",
    "CosineAnnealingWarmRestarts",
    "Exponential",
    "InverseTime",
    "Lambda",
    "Linear",
    "MultiStep",
    "Multiplicative",
    "OneCycle",
    "OneCycleMomentum",
    "Polynomial",
    "Step",
    "constant",
    "constant_factor",
    "cosine",
    "cosine_restarts",
    "exponential",
    "inverse_time_decay",
    "lambda_schedule",
    "linear",
    "multiplicative",
    "multistep",
    "one_cycle",
    "one_cycle_momentum",
    "polynomial",
    "step",
]

_CACHE_LIMIT = 32


def _replay(
    schedule: Schedule,
    step: int,
    base: float,
    update: Callable[[int, float, float], float],
) -> float:
    """Value of a recursion ``v_0 = base, v_t = update(t, v_{t-1}, base)`` at `step`.

    The last (step, value) per base is memoised, so stepping forward costs O(1) per step and
    the schedule stays a pure function of (step, base).
    """
    cache: dict[float, tuple[int, float]] = schedule.__dict__.setdefault("_cache", {})
    hit = cache.get(base)
    t, v = (0, base) if hit is None or hit[0] > step else hit
    while t < step:
        t += 1
        v = update(t, v, base)
    if len(cache) >= _CACHE_LIMIT and base not in cache:
        cache.clear()
    cache[base] = (t, v)
    return v


def _power(base: float, gamma: float, n: int) -> float:
    r""":math:`v_0 \gamma^n` as torch's schedulers reach it by repeated products: ``inf`` once
    it overflows (Python's ``gamma ** n`` raises ``OverflowError`` instead), ``0.0`` for a zero
    base (``0 * gamma * gamma ...`` stays 0).

    Example:
        >>> _power(0.5, 0.5, 3), _power(0.1, 2.0, 2000)
        (0.0625, inf)
    """
    with contextlib.suppress(OverflowError):
        return base * gamma**n
    if base == 0.0 or math.isnan(base):
        return base
    try:  # a tiny base can bring gamma**n back into range
        magnitude = math.exp(math.log(abs(base)) + n * math.log(gamma))
    except OverflowError:
        magnitude = math.inf
    return math.copysign(magnitude, base)


class Constant(Schedule):
    """The base value at every step: ``v(t) = value``.

    Args:
        value: the value; None inherits the param group's value (keeps it fixed).

    Example:
        >>> constant(0.1)(1000)
        0.1
    """

    _fields = ("value",)

    def __init__(self, value: float | None = None) -> None:
        self.base = check("value", value, None, NONNEGATIVE)

    def _repr_value(self, name: str) -> Any:
        return self.base

    def _at(self, step: int, base: float) -> float:
        return base


def constant(value: float | None = None) -> Constant:
    """A constant schedule; see `Constant`."""
    return Constant(value)


class _OfFunction(Schedule):
    """A schedule defined by a function ``fn`` of the step and a base."""

    _fields = ("fn", "base")

    def __init__(self, fn: Callable[[int], float], base: float | None = None) -> None:
        self.fn = check("fn", fn, CALLABLE)
        self.base = check("base", base, None, NONNEGATIVE)


class Lambda(_OfFunction):
    r"""Base times a user function: :math:`v(t) = v_0 \cdot f(t)` (torch ``LambdaLR``).

    Args:
        fn: ``step -> factor``; use a module-level function to keep the schedule picklable.
        base: :math:`v_0`, or None to inherit.

    Example:
        >>> lambda_schedule(lambda t: 0.95**t, base=0.1)(2)
        0.09025
    """

    def _at(self, step: int, base: float) -> float:
        return base * self.fn(step)


def lambda_schedule(fn: Callable[[int], float], base: float | None = None) -> Lambda:
    """``base * fn(step)`` (torch ``LambdaLR``); see `Lambda`."""
    return Lambda(fn, base)


class Multiplicative(_OfFunction):
    r"""Cumulative product: :math:`v(0) = v_0,\; v(t) = v(t-1) \cdot f(t)` (torch
    ``MultiplicativeLR``).

    Computed in torch's order, left to right from the base, with the last value memoised so
    stepping forward is O(1); `fn` must be deterministic.

    Args:
        fn: ``step -> factor`` for steps >= 1 (module-level for pickling).
        base: :math:`v_0`, or None to inherit.

    Example:
        >>> multiplicative(lambda t: 0.5, base=1.0)(3)
        0.125
    """

    def _update(self, t: int, v: float, base: float) -> float:
        return v * self.fn(t)

    def _at(self, step: int, base: float) -> float:
        return _replay(self, step, base, self._update)


def multiplicative(fn: Callable[[int], float], base: float | None = None) -> Multiplicative:
    """Cumulative product of `fn` (torch ``MultiplicativeLR``); see `Multiplicative`."""
    return Multiplicative(fn, base)


class Step(Schedule):
    r"""Decay by `gamma` every `step_size` steps (torch ``StepLR``).

    .. math:: v(t) = v_0 \, \gamma^{\lfloor t / s \rfloor}

    The momentum lecture's "step decay" (halve every few epochs) is the same with ``gamma=0.5``; see
    :func:`~descentlab.book.decays.step_decay`.

    Args:
        step_size: period s >= 1.
        gamma: factor per period, > 0.
        base: :math:`v_0`, or None to inherit.

    Example:
        >>> step(10, 0.5, base=0.1)(25)
        0.025
    """

    _fields = ("step_size", "gamma", "base")

    def __init__(self, step_size: int, gamma: float = 0.1, base: float | None = None) -> None:
        self.step_size = check("step_size", step_size, POSITIVE_INT)
        self.gamma = check("gamma", gamma, POSITIVE)
        self.base = check("base", base, None, NONNEGATIVE)

    def _at(self, step: int, base: float) -> float:
        return _power(base, self.gamma, step // self.step_size)


def step(step_size: int, gamma: float = 0.1, base: float | None = None) -> Step:
    """Decay by `gamma` every `step_size` steps (torch ``StepLR``); see `Step`."""
    return Step(step_size, gamma, base)


class MultiStep(Schedule):
    r"""Decay by `gamma` at each milestone (torch ``MultiStepLR``).

    .. math:: v(t) = v_0 \, \gamma^{\#\{m \in M : m \le t\}}

    A milestone listed twice decays twice, as in torch (which keeps a ``Counter``).

    Args:
        milestones: steps >= 0 (any order).
        gamma: factor per milestone, > 0.
        base: :math:`v_0`, or None to inherit.

    Example:
        >>> multistep([10, 20], 0.1, base=1.0)(15)
        0.1
    """

    _fields = ("milestones", "gamma", "base")

    def __init__(
        self, milestones: Iterable[int], gamma: float = 0.1, base: float | None = None
    ) -> None:
        self.milestones = sorted(
            check("milestones", milestones, ListOf(NONNEGATIVE_INT, min_len=0))
        )
        self.gamma = check("gamma", gamma, POSITIVE)
        self.base = check("base", base, None, NONNEGATIVE)

    def _at(self, step: int, base: float) -> float:
        return _power(base, self.gamma, bisect_right(self.milestones, step))


def multistep(
    milestones: Iterable[int], gamma: float = 0.1, base: float | None = None
) -> MultiStep:
    """Decay by `gamma` at each milestone (torch ``MultiStepLR``); see `MultiStep`."""
    return MultiStep(milestones, gamma, base)


class ConstantFactor(Schedule):
    r"""A constant factor until `total_iters`, then the base (torch ``ConstantLR``).

    .. math:: v(t) = v_0 \cdot (f \text{ if } t < T \text{ else } 1)

    Args:
        factor: f in [0, 1].
        total_iters: T >= 1.
        base: :math:`v_0`, or None to inherit.

    Example:
        >>> s = constant_factor(0.5, 3, base=0.2)
        >>> s(2), s(3)
        (0.1, 0.2)
    """

    _fields = ("factor", "total_iters", "base")

    def __init__(
        self, factor: float = 1.0 / 3, total_iters: int = 5, base: float | None = None
    ) -> None:
        self.factor = check("factor", factor, UNIT)
        self.total_iters = check("total_iters", total_iters, POSITIVE_INT)
        self.base = check("base", base, None, NONNEGATIVE)

    def _at(self, step: int, base: float) -> float:
        return base * self.factor if step < self.total_iters else base


def constant_factor(
    factor: float = 1.0 / 3, total_iters: int = 5, base: float | None = None
) -> ConstantFactor:
    """A constant factor until `total_iters` (torch ``ConstantLR``); see `ConstantFactor`."""
    return ConstantFactor(factor, total_iters, base)


class Linear(Schedule):
    r"""Linear interpolation of a factor over `total_iters` steps (torch ``LinearLR``).

    .. math:: v(t) = v_0 \left(s + (e - s)\,\frac{\min(t, T)}{T}\right)

    With ``base=1.0`` the factors are absolute values: the momentum lecture's momentum raised
    from 0.5 to 0.99 over the epochs is ``linear(0.5, 0.99, n_epochs, base=1.0)``. Torch restricts
    the factors to [0, 1] (its recursion divides by the start); here any factors >= 0 work.

    Args:
        start_factor: s >= 0.
        end_factor: e >= 0.
        total_iters: T >= 1.
        base: :math:`v_0`, or None to inherit.

    Example:
        >>> m = linear(0.5, 0.99, 10, base=1.0)
        >>> m(0), m(10), m(50)
        (0.5, 0.99, 0.99)
    """

    _fields = ("start_factor", "end_factor", "total_iters", "base")

    def __init__(
        self,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        base: float | None = None,
    ) -> None:
        self.start_factor = check("start_factor", start_factor, NONNEGATIVE)
        self.end_factor = check("end_factor", end_factor, NONNEGATIVE)
        self.total_iters = check("total_iters", total_iters, POSITIVE_INT)
        self.base = check("base", base, None, NONNEGATIVE)

    def _at(self, step: int, base: float) -> float:
        s, e, n = self.start_factor, self.end_factor, self.total_iters
        return base * (s + (e - s) * min(n, step) / n)


def linear(
    start_factor: float = 1.0 / 3,
    end_factor: float = 1.0,
    total_iters: int = 5,
    base: float | None = None,
) -> Linear:
    """Linear ramp of a factor (torch ``LinearLR``); see `Linear`."""
    return Linear(start_factor, end_factor, total_iters, base)


class Exponential(Schedule):
    r"""Decay by `gamma` every step (torch ``ExponentialLR``): :math:`v(t) = v_0\gamma^t`.

    The momentum lecture's :math:`\alpha_0 e^{-kt}` is the same with :math:`\gamma = e^{-k}`; see
    :func:`~descentlab.book.decays.exp_decay`.

    Args:
        gamma: factor per step, > 0.
        base: :math:`v_0`, or None to inherit.

    Example:
        >>> exponential(0.5, base=1.0)(3)
        0.125
    """

    _fields = ("gamma", "base")

    def __init__(self, gamma: float, base: float | None = None) -> None:
        self.gamma = check("gamma", gamma, POSITIVE)
        self.base = check("base", base, None, NONNEGATIVE)

    def _at(self, step: int, base: float) -> float:
        return _power(base, self.gamma, step)


def exponential(gamma: float, base: float | None = None) -> Exponential:
    """Decay by `gamma` every step (torch ``ExponentialLR``); see `Exponential`."""
    return Exponential(gamma, base)


class InverseTime(Schedule):
    r"""Inverse-time decay :math:`\eta(t) = \eta_0 / (1 + k t)` (Keras' ``InverseTimeDecay``).

    For :math:`k > 0` it meets the Robbins-Monro conditions: the harmonic sum diverges and the
    sum of squares converges, so it is the textbook schedule for SGD's convergence (the
    optimization lecture's :math:`\eta / t` is ``k = 1/t0`` with :math:`\eta_0 = \eta / t_0`).

    Args:
        k: decay rate >= 0.
        base: :math:`\eta_0`, or None to inherit.

    Example:
        >>> inverse_time_decay(0.5, base=1.0)(2)
        0.5
    """

    _fields = ("k", "base")

    def __init__(self, k: float, base: float | None = None) -> None:
        self.k = check("k", k, NONNEGATIVE)
        self.base = check("base", base, None, NONNEGATIVE)

    def _at(self, step: int, base: float) -> float:
        return base / (1.0 + self.k * step)


def inverse_time_decay(k: float, base: float | None = None) -> InverseTime:
    """``base / (1 + k t)``; see `InverseTime`."""
    return InverseTime(k, base)


class Polynomial(Schedule):
    r"""Polynomial decay to 0 at `total_iters`, then 0 (torch ``PolynomialLR``).

    .. math:: v(t) = v_0 \left(1 - \frac{\min(t, T)}{T}\right)^{p}

    Args:
        total_iters: T >= 1.
        power: p > 0.
        base: :math:`v_0`, or None to inherit.

    Example:
        >>> polynomial(4, 2.0, base=1.0)(2)
        0.25
    """

    _fields = ("total_iters", "power", "base")

    def __init__(self, total_iters: int = 5, power: float = 1.0, base: float | None = None) -> None:
        self.total_iters = check("total_iters", total_iters, POSITIVE_INT)
        self.power = check("power", power, POSITIVE)
        self.base = check("base", base, None, NONNEGATIVE)

    def _at(self, step: int, base: float) -> float:
        n = self.total_iters
        return base * (1.0 - min(n, step) / n) ** self.power


def polynomial(total_iters: int = 5, power: float = 1.0, base: float | None = None) -> Polynomial:
    """Polynomial decay (torch ``PolynomialLR``); see `Polynomial`."""
    return Polynomial(total_iters, power, base)


class CosineAnnealing(Schedule):
    r"""Cosine annealing from the base to `eta_min` over `T_max` steps (torch
    ``CosineAnnealingLR``; Loshchilov & Hutter, SGDR, https://arxiv.org/abs/1608.03983).

    .. math:: v(t) = \eta_{min} + (v_0 - \eta_{min})\,\frac{1 + \cos(\pi t / T_{max})}{2}

    Past `T_max` the cosine goes on (back up to the base at :math:`2T_{max}`), as torch's does.
    ``form="recursive"`` replays torch's stepping bit for bit (docs/schedules.md).

    Args:
        T_max: half period >= 1.
        eta_min: the minimum value (absolute), >= 0.
        base: :math:`v_0`, or None to inherit.
        form: "closed" or "recursive".

    Example:
        >>> s = cosine(10, base=1.0)
        >>> s(0), s(5), s(10)
        (1.0, 0.5, 0.0)
    """

    _fields = ("T_max", "eta_min", "base", "form")

    def __init__(
        self,
        T_max: int,
        eta_min: float = 0.0,
        base: float | None = None,
        form: str = "closed",
    ) -> None:
        self.T_max = check("T_max", T_max, POSITIVE_INT)
        self.eta_min = check("eta_min", eta_min, NONNEGATIVE)
        self.base = check("base", base, None, NONNEGATIVE)
        self.form = check("form", form, Options("closed", "recursive"))

    def _update(self, t: int, v: float, base: float) -> float:
        T, eta_min = self.T_max, self.eta_min
        if (t - 1 - T) % (2 * T) == 0:
            return v + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
        return (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T)) * (
            v - eta_min
        ) + eta_min

    def _at(self, step: int, base: float) -> float:
        if self.form == "recursive":
            return _replay(self, step, base, self._update)
        eta_min = self.eta_min
        return eta_min + (base - eta_min) * (1 + math.cos(math.pi * step / self.T_max)) / 2


def cosine(
    T_max: int, eta_min: float = 0.0, base: float | None = None, form: str = "closed"
) -> CosineAnnealing:
    """Cosine annealing (torch ``CosineAnnealingLR``); see `CosineAnnealing`."""
    return CosineAnnealing(T_max, eta_min, base, form)


class CosineAnnealingWarmRestarts(Schedule):
    r"""Cosine annealing restarted every cycle, cycles growing by `T_mult` (torch
    ``CosineAnnealingWarmRestarts``; SGDR, https://arxiv.org/abs/1608.03983).

    .. math:: v(t) = \eta_{min} + (v_0 - \eta_{min})\,\frac{1 + \cos(\pi T_{cur}/T_i)}{2}

    where cycle i lasts :math:`T_i = T_0 T_{mult}^i` steps and :math:`T_{cur}` counts the steps
    since the last restart (integer arithmetic, exactly as torch steps it).

    Args:
        T_0: first cycle length >= 1.
        T_mult: cycle growth factor, integer >= 1.
        eta_min: the minimum value (absolute), >= 0.
        base: :math:`v_0`, or None to inherit.

    Example:
        >>> s = cosine_restarts(4, base=1.0)
        >>> s(2), s(4)
        (0.5, 1.0)
    """

    _fields = ("T_0", "T_mult", "eta_min", "base")

    def __init__(
        self, T_0: int, T_mult: int = 1, eta_min: float = 0.0, base: float | None = None
    ) -> None:
        self.T_0 = check("T_0", T_0, POSITIVE_INT)
        self.T_mult = check("T_mult", T_mult, POSITIVE_INT)
        self.eta_min = check("eta_min", eta_min, NONNEGATIVE)
        self.base = check("base", base, None, NONNEGATIVE)

    def cycle(self, step: int) -> tuple[int, int]:
        """``(T_cur, T_i)``: steps since the last restart and the current cycle length."""
        if self.T_mult == 1:
            return step % self.T_0, self.T_0
        t_cur, t_i = step, self.T_0
        while t_cur >= t_i:
            t_cur -= t_i
            t_i *= self.T_mult
        return t_cur, t_i

    def _at(self, step: int, base: float) -> float:
        t_cur, t_i = self.cycle(step)
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def cosine_restarts(
    T_0: int, T_mult: int = 1, eta_min: float = 0.0, base: float | None = None
) -> CosineAnnealingWarmRestarts:
    """Cosine annealing with warm restarts; see `CosineAnnealingWarmRestarts`."""
    return CosineAnnealingWarmRestarts(T_0, T_mult, eta_min, base)


def _anneal(kind: str, start: float, end: float, pct: float) -> float:
    # torch's OneCycleLR._annealing_cos / _annealing_linear, same operation order
    if kind == "cos":
        cos_out = math.cos(math.pi * pct) + 1
        return end + (start - end) / 2.0 * cos_out
    return (end - start) * pct + start


def _one_cycle_phases(total_steps: int, pct_start: float, three_phase: bool) -> list[float]:
    if three_phase:
        return [
            float(pct_start * total_steps) - 1,
            float(2 * pct_start * total_steps) - 2,
            float(total_steps - 1),
        ]
    return [float(pct_start * total_steps) - 1, float(total_steps - 1)]


def _check_one_cycle(total_steps: Any, pct_start: Any, anneal_strategy: Any, three_phase: Any):
    total = check("total_steps", total_steps, POSITIVE_INT)
    pct = check("pct_start", pct_start, UNIT)
    kind = check("anneal_strategy", anneal_strategy, Options("cos", "linear"))
    check("three_phase", three_phase, Boolean)
    ends = _one_cycle_phases(total, pct, three_phase)
    starts = [0.0, *ends[:-1]]
    if any(e <= s for s, e in zip(starts, ends, strict=True)):
        raise ValueError(
            f"pct_start={pct!r} with total_steps={total} (three_phase={three_phase}) gives an "
            f"empty phase (phase ends at steps {ends}); make pct_start * total_steps > 1"
            + (" and pct_start < 0.5" if three_phase else "")
        )
    return total, pct, kind, ends


def _one_cycle_at(
    step: int, ends: list[float], kind: str, points: list[tuple[float, float]]
) -> float:
    # torch's OneCycleLR.get_lr: the first phase whose end is >= step (the last phase otherwise)
    start_step = 0.0
    for i, end_step in enumerate(ends):
        if step <= end_step or i == len(ends) - 1:
            pct = (step - start_step) / (end_step - start_step)
            return _anneal(kind, points[i][0], points[i][1], pct)
        start_step = end_step
    raise AssertionError("unreachable: the last phase always matches")


class OneCycle(Schedule):
    r"""The 1cycle learning-rate policy (torch ``OneCycleLR``; Smith & Topin 2017,
    https://arxiv.org/abs/1708.07120).

    From ``max_lr / div_factor`` up to ``max_lr`` over the first ``pct_start`` of
    `total_steps`, then down to ``max_lr / (div_factor * final_div_factor)``; with
    ``three_phase`` the second phase comes back to the start value symmetrically and a third
    phase anneals to the minimum. Each phase anneals with a half cosine
    (:math:`e + (s - e)(1 + \cos\pi p)/2`) or linearly. Steps past the end hold the final value
    (torch raises there). Pair with `OneCycleMomentum` to cycle momentum or ``betas[0]``.

    Args:
        total_steps: the cycle length >= 1.
        max_lr: the peak (absolute); None takes the base (the param group's value).
        pct_start: fraction of the cycle spent increasing, in [0, 1].
        anneal_strategy: "cos" or "linear".
        div_factor: start value = max_lr / div_factor, > 0.
        final_div_factor: minimum = start value / final_div_factor, > 0.
        three_phase: use the three-phase schedule.

    Example:
        >>> s = one_cycle(100, max_lr=1.0)
        >>> round(s(0), 12), s(29), round(s(99), 12)
        (0.04, 1.0, 4e-06)
    """

    _fields = (
        "total_steps",
        "max_lr",
        "pct_start",
        "anneal_strategy",
        "div_factor",
        "final_div_factor",
        "three_phase",
    )

    def __init__(
        self,
        total_steps: int,
        max_lr: float | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ) -> None:
        self.total_steps, self.pct_start, self.anneal_strategy, self._ends = _check_one_cycle(
            total_steps, pct_start, anneal_strategy, three_phase
        )
        self.base = check("max_lr", max_lr, None, NONNEGATIVE)
        self.div_factor = check("div_factor", div_factor, POSITIVE)
        self.final_div_factor = check("final_div_factor", final_div_factor, POSITIVE)
        self.three_phase = three_phase

    def _repr_value(self, name: str) -> Any:
        return self.base if name == "max_lr" else getattr(self, name)

    def _at(self, step: int, base: float) -> float:
        initial = base / self.div_factor
        minimum = initial / self.final_div_factor
        if self.three_phase:
            points = [(initial, base), (base, initial), (initial, minimum)]
        else:
            points = [(initial, base), (base, minimum)]
        s = min(step, self.total_steps - 1)
        return _one_cycle_at(s, self._ends, self.anneal_strategy, points)


def one_cycle(total_steps: int, *args: Any, **kwargs: Any) -> OneCycle:
    """The 1cycle learning rate (torch ``OneCycleLR``); the arguments of `OneCycle`."""
    return OneCycle(total_steps, *args, **kwargs)


class OneCycleMomentum(Schedule):
    r"""The momentum half of torch's ``OneCycleLR`` (``cycle_momentum=True``): absolute values.

    Momentum moves opposite to the learning rate: from `max_momentum` down to `base_momentum`
    while the lr rises, then back up (three-phase: down, up, then held at `max_momentum`).
    Schedule ``"momentum"`` (SGD, RMSprop) or ``"betas[0]"`` (Adam family) with it, with the same
    `total_steps`, `pct_start`, `anneal_strategy` and `three_phase` as the `OneCycle` lr.

    Args:
        total_steps: the cycle length >= 1.
        base_momentum: the lowest momentum, in [0, 1].
        max_momentum: the highest momentum, in [0, 1].
        pct_start, anneal_strategy, three_phase: as `OneCycle`.

    Example:
        >>> m = one_cycle_momentum(100)
        >>> m(0), m(29), m(99)
        (0.95, 0.85, 0.95)
    """

    _fields = (
        "total_steps",
        "base_momentum",
        "max_momentum",
        "pct_start",
        "anneal_strategy",
        "three_phase",
    )

    def __init__(
        self,
        total_steps: int,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        three_phase: bool = False,
    ) -> None:
        self.total_steps, self.pct_start, self.anneal_strategy, self._ends = _check_one_cycle(
            total_steps, pct_start, anneal_strategy, three_phase
        )
        self.base_momentum = check("base_momentum", base_momentum, UNIT)
        self.max_momentum = check("max_momentum", max_momentum, UNIT)
        self.three_phase = three_phase
        self.base = None

    def _at(self, step: int, base: float) -> float:
        lo, hi = self.base_momentum, self.max_momentum
        points = [(hi, lo), (lo, hi), (hi, hi)] if self.three_phase else [(hi, lo), (lo, hi)]
        s = min(step, self.total_steps - 1)
        return _one_cycle_at(s, self._ends, self.anneal_strategy, points)


def one_cycle_momentum(total_steps: int, *args: Any, **kwargs: Any) -> OneCycleMomentum:
    """Momentum cycling of torch's ``OneCycleLR``; the arguments of `OneCycleMomentum`."""
    return OneCycleMomentum(total_steps, *args, **kwargs)
