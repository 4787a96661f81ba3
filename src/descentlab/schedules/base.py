"""The `Schedule` protocol, argument checks and the combinators `sequence` and `warmup`.

A schedule is a pure, picklable function of the step, ``step -> value``, that scales a *base*
(relative with ``base=None``, absolute otherwise): see docs/schedules.md.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any

from descentlab.constraints import CALLABLE, NONNEGATIVE, POSITIVE_INT, ListOf, check, invalid

__all__ = [
    "FunctionSchedule",
    "Schedule",
    "Sequential",
    "Warmup",
    "as_schedule",
    "from_function",
    "join",
    "sequence",
    "warmup",
]


def as_step(step: Any) -> int:
    """Coerce a step count (int, numpy/torch integer, integral float or 0-d tensor) to int >= 0."""
    s = None
    if not isinstance(step, bool):
        try:
            s = operator.index(step)
        except TypeError:
            with contextlib.suppress(TypeError, ValueError, OverflowError):
                f = float(step)
                s = int(f) if f.is_integer() else None
    if s is None or s < 0:
        raise invalid("step", "an integer >= 0", step)
    return s


# ---------------------------------------------------------------------------------------------


class Schedule(ABC):
    """A pure, picklable function ``step -> value`` with an optional base.

    Subclasses implement ``_at(step, base)`` for an int ``step >= 0`` and a resolved float
    ``base`` and list their constructor arguments in ``_fields`` (used by ``repr``).

    Example:
        >>> from descentlab.schedules import exponential
        >>> s = exponential(0.5, base=0.1)
        >>> s(0), s(2)
        (0.1, 0.025)
        >>> exponential(0.5)(2)    # relative: the factor
        0.25
    """

    _fields: tuple[str, ...] = ()
    base: float | None = None

    @abstractmethod
    def _at(self, step: int, base: float) -> float:
        """The value at `step` (an int >= 0) for the resolved `base`."""

    def value(self, step: Any, base: float | None = None) -> float:
        """The value at `step`, with `base` used only when this schedule has none of its own.

        Args:
            step: the step count, 0 for the first optimizer step.
            base: the inherited base (a param group's initial value); 1.0 when None.

        Returns:
            The scheduled value as a Python float.
        """
        s = as_step(step)
        b = self.base if self.base is not None else (1.0 if base is None else float(base))
        return float(self._at(s, b))

    def __call__(self, step: Any) -> float:
        """The value at `step` using this schedule's own base (1.0 when relative)."""
        return self.value(step)

    def _repr_value(self, name: str) -> Any:
        return getattr(self, name)

    def __repr__(self) -> str:
        parts = []
        for name in self._fields:
            v = self._repr_value(name)
            if callable(v) and not isinstance(v, Schedule):
                v_repr = getattr(v, "__qualname__", None) or repr(v)
            else:
                v_repr = repr(v)
            parts.append(f"{name}={v_repr}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __getstate__(self) -> dict[str, Any]:
        # memo caches (for recursive forms) are rebuilt on demand: keep pickles small
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_cache")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class FunctionSchedule(Schedule):
    """An absolute schedule from a plain function ``step -> value`` (the base is ignored).

    Unlike :class:`~descentlab.schedules.Lambda` (torch's ``LambdaLR``, ``base * fn(t)``),
    the function's result *is* the value. Picklable when `fn` is (a module-level function).

    Example:
        >>> from_function(lambda t: 0.1 / (1 + t))(4)
        0.02
    """

    _fields = ("fn",)

    def __init__(self, fn: Callable[[int], float]) -> None:
        self.fn = check("fn", fn, CALLABLE)
        self.base = None

    def _at(self, step: int, base: float) -> float:
        return float(self.fn(step))


def from_function(fn: Callable[[int], float]) -> FunctionSchedule:
    """Wrap a plain function ``step -> value`` as an absolute schedule (see `FunctionSchedule`)."""
    return FunctionSchedule(fn)


def as_schedule(obj: Schedule | Callable[[int], float], name: str = "schedule") -> Schedule:
    """Return `obj` if it is a `Schedule`, wrap a plain callable as absolute, else ValueError."""
    if isinstance(obj, Schedule):
        return obj
    if callable(obj):
        return FunctionSchedule(obj)
    raise invalid(name, "a Schedule or a callable step -> value", obj, type_error=True)


class Sequential(Schedule):
    r"""Run schedules one after another; each restarts its own step count at its boundary.

    .. math:: v(t) = s_i(t - b_{i-1}) \quad\text{for } b_{i-1} \le t < b_i,\; b_0 = 0

    The children inherit this schedule's base (or the param group's) unless they have their own.
    This is ``torch.optim.lr_scheduler.SequentialLR`` with ``milestones = boundaries``: at a
    milestone torch restarts the next scheduler at its step 0 with the same initial lr.

    Args:
        schedules: two or more schedules (plain callables are wrapped as absolute).
        boundaries: strictly increasing positive steps, one fewer than `schedules`.
        base: an own base for all children, or None to inherit.

    Example:
        >>> from descentlab.schedules import cosine, linear
        >>> s = sequence([linear(0.1, 1.0, 10), cosine(90)], [10], base=0.5)
        >>> s(0), s(10)
        (0.05, 0.5)
    """

    _fields = ("schedules", "boundaries", "base")

    def __init__(
        self,
        schedules: Sequence[Schedule | Callable[[int], float]],
        boundaries: Sequence[int],
        base: float | None = None,
    ) -> None:
        check("schedules", schedules, ListOf(CALLABLE))
        bs = check("boundaries", boundaries, ListOf(POSITIVE_INT, min_len=0))
        if len(bs) != len(schedules) - 1:
            n = len(schedules) - 1
            raise invalid("boundaries", f"a list of len(schedules) - 1 = {n} steps", boundaries)
        if any(b <= a for a, b in itertools.pairwise(bs)):
            raise invalid("boundaries", "strictly increasing", boundaries)
        self.schedules = [as_schedule(s, f"schedules[{i}]") for i, s in enumerate(schedules)]
        self.boundaries = bs
        self.base = check("base", base, None, NONNEGATIVE)

    def _at(self, step: int, base: float) -> float:
        i = bisect_right(self.boundaries, step)
        start = self.boundaries[i - 1] if i > 0 else 0
        return self.schedules[i].value(step - start, base)


def sequence(
    schedules: Sequence[Schedule | Callable[[int], float]],
    boundaries: Sequence[int],
    base: float | None = None,
) -> Sequential:
    """Join schedules at `boundaries` (torch's ``SequentialLR``); see `Sequential`."""
    return Sequential(schedules, boundaries, base)


join = sequence


class Warmup(Schedule):
    r"""Linear warmup into a schedule.

    .. math::
        v(t) = \begin{cases} v_0 + (s(0) - v_0)\, t / W & t < W \\ s(t - W) & t \ge W\end{cases}

    where :math:`W` = `steps`, :math:`s` the wrapped schedule and the start value
    :math:`v_0` = `start_value` (absolute) or `start_factor` :math:`\cdot s(0)`. The wrapped
    schedule starts its own step count after the warmup. With neither start given, the warmup
    starts from 0 (``start_factor=0.0``), as the usual "linear warmup from zero".

    Args:
        schedule: the schedule to warm up into (a plain callable is wrapped as absolute).
        steps: warmup length W >= 1.
        start_value: absolute start value (>= 0), or
        start_factor: start as a fraction (>= 0) of the schedule's first value.

    Examples:
        >>> from descentlab.schedules import constant
        >>> s = warmup(constant(0.1), 4)
        >>> [round(s(t), 6) for t in range(6)]
        [0.0, 0.025, 0.05, 0.075, 0.1, 0.1]
    """

    _fields = ("schedule", "steps", "start_value", "start_factor")

    def __init__(
        self,
        schedule: Schedule | Callable[[int], float],
        steps: int,
        start_value: float | None = None,
        start_factor: float | None = None,
    ) -> None:
        self.schedule = as_schedule(schedule)
        self.steps = check("steps", steps, POSITIVE_INT)
        if start_value is not None and start_factor is not None:
            raise ValueError(
                "give start_value or start_factor, not both; got "
                f"start_value={start_value!r}, start_factor={start_factor!r}"
            )
        self.start_value = check("start_value", start_value, None, NONNEGATIVE)
        if start_value is None and start_factor is None:
            start_factor = 0.0
        self.start_factor = check("start_factor", start_factor, None, NONNEGATIVE)
        self.base = None

    def _at(self, step: int, base: float) -> float:
        if step >= self.steps:
            return self.schedule.value(step - self.steps, base)
        target = self.schedule.value(0, base)
        start = self.start_value if self.start_value is not None else self.start_factor * target
        return start + (target - start) * step / self.steps


def warmup(
    schedule: Schedule | Callable[[int], float],
    steps: int,
    start_value: float | None = None,
    start_factor: float | None = None,
) -> Warmup:
    """Linear warmup over `steps` into `schedule`; see `Warmup`."""
    return Warmup(schedule, steps, start_value, start_factor)
