"""Hyperparameter constraints declared as data.

A rule lists what each of its hyperparameters accepts in :attr:`Rule.checks
<descentlab.optim.Rule.checks>` (name -> spec) and what ties several together in
:attr:`Rule.relations <descentlab.optim.Rule.relations>`. From that one declaration come:

- :meth:`Rule.validate <descentlab.optim.Rule.validate>`: every value of a param group, when
  it is added and whenever it changes in a way the optimizer cannot check alone;
- :meth:`Rule.changed_checks <descentlab.optim.Rule.changed_checks>`: only the values a schedule
  changed (torch's LRScheduler sets ``lr`` before every step), so a changed learning rate
  costs one comparison, not a validation of the whole group;
- the error messages (one format: :mod:`descentlab.constraints`), their words for the docs
  (:func:`describe`) and the refusal tests, which draw bad values from the specs
  (:meth:`Real.bad_values`).

A spec checks plain Python values and batched (1-D tensor) values; a tensor whose every
element lies in range passes, as torch.optim accepts tensor hyperparameters.

Where torch has the optimizer, a spec carries torch's wording of the refusal (``torch=``, e.g.
``"Invalid weight_decay value: {value}"``): a value out of range is refused with torch's
words first and this module's after them, ``Invalid weight_decay value: -1 (weight_decay must
be a number >= 0.0, got -1)``, so that code (and torch's own tests) matching torch's message
match descentlab's too.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from descentlab.constraints import Boolean, Constraint, Interval, Options, check, invalid
from descentlab.constraints import describe as _words

__all__ = [
    "BETAS",
    "NONNEG",
    "SCALAR_BETAS",
    "Choice",
    "Flag",
    "Integer",
    "Items",
    "Pair",
    "Real",
    "Relation",
    "Spec",
    "declare",
    "describe",
]

Hyper = Mapping[str, Any]


def _batched(value: Any) -> bool:
    return isinstance(value, Tensor) and value.ndim >= 1


def _in_torchs_words(exc: ValueError, torch: str | None, **fields: Any) -> ValueError:
    """``exc`` with torch's wording in front (a wrong type keeps this module's error)."""
    if torch is None or isinstance(exc, TypeError):
        return exc
    return ValueError(f"{torch.format(**fields)} ({exc})")


@functools.lru_cache(maxsize=128)
def _interval(lo: float | None, hi: float | None, closed: str, tensors: bool) -> Interval:
    # inf is a valid value; a tensor (a batched hyperparameter) is checked element by element
    return Interval(numbers.Real, lo, hi, closed=closed, finite=False, tensors=tensors)  # type: ignore[arg-type]


def _check_key(spec: Spec, name: str, rule: str, hyper: Hyper) -> None:
    spec.check(name, hyper[name], rule)


class Spec:
    """What one hyperparameter accepts, in the words of :mod:`descentlab.constraints` (its
    :meth:`constraints`): :meth:`check` raises naming it and its value."""

    def constraints(self) -> tuple[Constraint | None, ...]:
        """The constraints of which the value must meet one (None: the value None)."""
        return ()

    def check(self, name: str, value: Any, rule: str) -> None:
        """Raise (one line naming ``name`` and ``value``) unless ``value`` is accepted."""
        check(name, value, *self.constraints())

    def words(self) -> str:
        """What the value must be, in words (for docs and messages)."""
        return _words(*self.constraints())

    def test(self, name: str, rule: str) -> Callable[[Hyper], None]:
        """A check of ``hyper[name]`` (for a value a schedule changed)."""
        return functools.partial(_check_key, self, name, rule)

    def open_bounds(self) -> tuple[float, float] | None:
        """An open interval every float inside of which this spec accepts (two comparisons
        pass a scheduled value), or None."""
        return None

    def value_bounds(self) -> tuple | None:
        """What a scheduled value is compared with instead of :meth:`check` where it can
        be: ``(lo, hi)`` for a number (a float strictly inside passes), a tuple of those,
        one per entry, for a tuple of floats; None where only the whole check will do."""
        bounds = self.open_bounds()
        return None if bounds is None else (float(bounds[0]), float(bounds[1]))


def _entry_bounds(entries: tuple[Spec, ...]) -> tuple | None:
    """Each entry's open bounds (:meth:`Spec.value_bounds` of a tuple), or None."""
    bounds = tuple(e.value_bounds() for e in entries)
    if any(b is None or type(b[0]) is not float for b in bounds):
        return None
    return bounds


def _entries_test(spec: Spec, entries: tuple[Spec, ...], name: str, rule: str) -> Callable:
    """The check of a tuple hyperparameter (betas) before every scheduled step: a tuple of
    floats each inside its entry's :meth:`~Spec.open_bounds` is a few comparisons, anything
    else the whole check."""
    bounds = _entry_bounds(entries)
    if bounds is None:
        return Spec.test(spec, name, rule)
    n, check = len(entries), spec.check

    def test(hyper: Hyper) -> None:
        value = hyper[name]
        if type(value) is tuple and len(value) == n:
            for x, (lo, hi) in zip(value, bounds, strict=True):  # type: ignore[misc]
                if not (type(x) is float and lo < x < hi):
                    break
            else:
                return
        check(name, value, rule)

    return test


@dataclass(frozen=True)
class Real(Spec):
    """A real number (or a real tensor of them) in ``[lo, hi]``, either end open.

    ``scalar``: a batched (1-D tensor) value is refused, naming the rule (its eager form
    cannot broadcast it). ``message``: the text of that refusal, ``{rule}``, ``{name}`` and
    ``{value}`` filled in (torch's words first, as torch refuses a tensor lr of several
    elements). ``torch``: torch's wording of an out-of-range refusal (``{name}``,
    ``{value}``), see the module notes. ``none``: None is allowed too.
    """

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    scalar: bool = False
    message: str = (
        "Tensor {name} must be 1-element: {rule} takes a scalar {name}; a batched one is not "
        "supported, got {value}"
    )
    torch: str | None = None
    none: bool = False

    @property
    def closed(self) -> str:
        return {(False, False): "both", (False, True): "left", (True, False): "right"}.get(
            (self.lo_open, self.hi_open), "neither"
        )

    def inside(self, x: float) -> bool:
        """Whether the number ``x`` lies in range (False for NaN)."""
        lo, hi = self.lo, self.hi
        return (
            x == x
            and (lo is None or x > lo or (x == lo and not self.lo_open))
            and (hi is None or x < hi or (x == hi and not self.hi_open))
        )

    def open_bounds(self) -> tuple[float, float]:
        return (-math.inf if self.lo is None else self.lo, math.inf if self.hi is None else self.hi)

    def test(self, name: str, rule: str) -> Callable[[Hyper], None]:
        # runs before every scheduled step: a float inside both ends is two comparisons
        lo, hi = self.open_bounds()
        check = self.check

        def test(hyper: Hyper) -> None:
            value = hyper[name]
            if not (type(value) is float and lo < value < hi):
                check(name, value, rule)  # the ends, a NaN, another type: the whole check

        return test

    def check(self, name: str, value: Any, rule: str) -> None:
        if type(value) is float and self.inside(value):  # the common case, in a comparison
            return
        if value is None and self.none:
            return
        try:
            interval = _interval(self.lo, self.hi, self.closed, isinstance(value, Tensor))
            check(name, value, *((None,) if self.none else ()), interval)
        except ValueError as exc:  # (a batched value has no words in torch: it refuses one)
            torch = None if _batched(value) else self.torch
            raise _in_torchs_words(exc, torch, name=name, value=value) from None
        if self.scalar and _batched(value):
            raise ValueError(self.message.format(rule=rule, name=name, value=value.tolist()))

    def constraints(self) -> tuple[Constraint | None, ...]:
        return (None,) * self.none + (_interval(self.lo, self.hi, self.closed, False),)

    def bad_values(self) -> list[float]:
        """Values just outside the range, and NaN (for generated refusal tests)."""
        out = [float("nan")]
        if self.lo is not None:
            out.append(self.lo if self.lo_open else self.lo - max(1.0, abs(self.lo)))
        if self.hi is not None:
            out.append(self.hi if self.hi_open else self.hi + max(1.0, abs(self.hi)))
        return out


@dataclass(frozen=True)
class Integer(Spec):
    """An integer ``>= lo`` (``hi``: and ``<= hi``); a bool is not one."""

    lo: int | None = None
    hi: int | None = None

    def constraints(self) -> tuple[Constraint | None, ...]:
        return (Interval(numbers.Integral, self.lo, self.hi),)


@dataclass(frozen=True)
class Flag(Spec):
    """``True`` or ``False``."""

    def constraints(self) -> tuple[Constraint | None, ...]:
        return (Boolean(),)


@dataclass(frozen=True)
class Choice(Spec):
    """One of a few strings (``none``: None is allowed too; ``torch``: torch's wording of the
    refusal, ``{value}`` filled in, see the module notes)."""

    options: tuple[str, ...]
    none: bool = False
    torch: str | None = None

    def check(self, name: str, value: Any, rule: str) -> None:
        if value is None and self.none:
            return
        try:
            check(name, value, self.constraints()[-1])
        except ValueError as exc:
            raise _in_torchs_words(exc, self.torch, name=name, value=value) from None

    def constraints(self) -> tuple[Constraint | None, ...]:
        return (None,) * self.none + (Options(*self.options),)


@dataclass(frozen=True)
class Pair(Spec):
    """A tuple or list of two entries, each checked by its own spec (``name[0]``, ``name[1]``).

    ``what``: the words of the refusal of anything but a pair; ``scalar``: batched entries are
    refused with ``message``; ``torch``: torch's wording of an entry out of range
    (``{value}`` the pair, ``{index}`` and ``{entry}`` the entry; or one wording per entry),
    see the module notes.
    """

    first: Spec
    second: Spec
    what: str = "a pair"
    scalar: bool = False
    message: str = "{rule} takes scalar {name}; batched {name} are not supported"
    torch: str | tuple[str, str] | None = None

    def check(self, name: str, value: Any, rule: str) -> None:
        if not isinstance(value, tuple | list):
            raise invalid(name, self.what, value, type_error=True)
        if len(value) != 2:
            raise invalid(name, self.what, value)
        for index, spec in enumerate((self.first, self.second)):
            entry = f"{name}[{index}]"
            try:
                spec.check(entry, value[index], rule)
            except ValueError as exc:
                if not str(exc).startswith(f"{entry} must be"):  # not a range: as it is
                    raise
                words = dict(value=value, index=index, entry=value[index])
                torch = self.torch[index] if isinstance(self.torch, tuple) else self.torch
                raise _in_torchs_words(exc, torch, **words) from None
        for x in value if self.scalar else ():
            if _batched(x):
                raise ValueError(self.message.format(rule=rule, name=name, value=x.tolist()))

    def test(self, name: str, rule: str) -> Callable[[Hyper], None]:
        return _entries_test(self, (self.first, self.second), name, rule)

    def value_bounds(self) -> tuple | None:
        return _entry_bounds((self.first, self.second))

    def words(self) -> str:
        return f"{self.what}: {self.first.words()}, {self.second.words()}"


@dataclass(frozen=True)
class Items(Spec):
    """A tuple or list of ``len(entries)`` values, each checked by its own spec (``name[i]``);
    ``what``: the words of the refusal of anything else."""

    entries: tuple[Spec, ...]
    what: str

    def check(self, name: str, value: Any, rule: str) -> None:
        if not isinstance(value, tuple | list) or len(value) != len(self.entries):
            raise invalid(name, self.what, value, type_error=True)
        for i, (spec, v) in enumerate(zip(self.entries, value, strict=True)):
            spec.check(f"{name}[{i}]", v, rule)

    def test(self, name: str, rule: str) -> Callable[[Hyper], None]:
        return _entries_test(self, self.entries, name, rule)

    def value_bounds(self) -> tuple | None:
        return _entry_bounds(self.entries)

    def words(self) -> str:
        return f"{self.what}: {', '.join(e.words() for e in self.entries)}"


@dataclass(frozen=True)
class Relation:
    """A check that reads several hyperparameters (``keys``): ``test(hyper)`` raises.

    ``inside``: keys of these whose value, anywhere strictly inside the open bounds of the
    rule's spec for it (:meth:`Spec.value_bounds`), gives ``test`` the same outcome (the
    other values fixed): a schedule that moves only such keys, inside those bounds, needs
    the test once, not before every step. (tests/test_scheduled_guard.py draws values inside
    the bounds of every registered rule's declaration and checks the claim.)"""

    keys: frozenset[str]
    test: Callable[[Hyper], None] = field(compare=False)
    inside: frozenset[str] = field(default=frozenset(), compare=False)

    def __init__(
        self, keys: tuple[str, ...], test: Callable[[Hyper], None], inside: tuple[str, ...] = ()
    ) -> None:
        if not set(inside) <= set(keys):
            raise ValueError(f"Relation: inside={inside!r} must be among keys={keys!r}")
        object.__setattr__(self, "keys", frozenset(keys))
        object.__setattr__(self, "test", test)
        object.__setattr__(self, "inside", frozenset(inside))


#: a number >= 0; betas: a pair of numbers in [0, 1) (``SCALAR_BETAS``: not batched)
NONNEG = Real(0.0)
_BETA = Real(0.0, 1.0, hi_open=True)
_BETA_WORDS = "Invalid beta parameter at index {index}: {entry}"  # torch's Adam family
BETAS = Pair(_BETA, _BETA, "a pair (beta1, beta2)", torch=_BETA_WORDS)
SCALAR_BETAS = Pair(_BETA, _BETA, "a pair (beta1, beta2)", scalar=True, torch=_BETA_WORDS)


def declare(**specs: Spec) -> Mapping[str, Spec]:
    """A rule's :attr:`~descentlab.optim.Rule.checks`: name -> spec, in check order."""
    return specs


def describe(checks: Mapping[str, Spec]) -> dict[str, str]:
    """Each declared hyperparameter and what it must be, in words."""
    return {key: spec.words() for key, spec in checks.items()}
