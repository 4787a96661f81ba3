"""Declarative parameter constraints: one way to check arguments, one error format.

Every public entry point of descentlab (optimizers, schedules, run configurations, the store,
the experiments and the CLI) checks its arguments with this module, so a bad value always
reads the same way and always raises before any state changes::

    Adam: lr must be a number >= 0.0, got -1.0

A *constraint* describes a set of accepted values and how to say it in words. A parameter may
take several constraints; a value passes when one of them accepts it (``None`` among them means
"None is allowed"). As in ``torch.optim``:

* a value of the wrong *type* (a string where a number belongs, a bool where an integer
  belongs, a list, a complex tensor) raises :class:`ParameterTypeError`, a ``TypeError``;
* a value of the right type outside the accepted set raises ``ValueError``.

:class:`ParameterTypeError` is also a ``ValueError``, so code that reports every bad value the
same way (the CLI, the run engine) catches both with ``except ValueError``. ``bool`` is never a
number here, although Python makes it an ``int``.

The constraints: :class:`Interval` (with the named :data:`POSITIVE_INT`,
:data:`NONNEGATIVE_INT`, :data:`POSITIVE`, :data:`NONNEGATIVE`, :data:`UNIT`,
:data:`FRACTION`), :class:`Options`, :class:`Boolean`, :class:`InstanceOf` (:data:`NAME`,
:data:`CALLABLE`), :class:`ListOf`, and ``None`` for the value ``None``.

:func:`check` checks one value, :func:`validate` a mapping of values against a mapping of
constraints, and :func:`invalid` builds the same error for a rule no constraint expresses (a
relation between two parameters).

Example:
    >>> from numbers import Integral, Real
    >>> check("steps", 100, Interval(Integral, 1, None))
    100
    >>> check("lr", -1.0, Interval(Real, 0.0, None), owner="Adam")
    Traceback (most recent call last):
    ...
    ValueError: Adam: lr must be a finite number >= 0.0, got -1.0
    >>> check("cv_folds", "3", None, Interval(Integral, 2, None))
    Traceback (most recent call last):
    ...
    descentlab.constraints.ParameterTypeError: cv_folds must be None or an integer >= 2, got '3'
    >>> validate({"mode": [Options("min", "max")], "patience": [Interval(Integral, 1, None)]},
    ...          {"mode": "min", "patience": 3})
    {'mode': 'min', 'patience': 3}
"""

from __future__ import annotations

import math
import numbers
import operator
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar

__all__ = [
    "CALLABLE",
    "FRACTION",
    "NAME",
    "NONNEGATIVE",
    "NONNEGATIVE_INT",
    "NUMBER",
    "POSITIVE",
    "POSITIVE_INT",
    "STR_KEYED",
    "UNIT",
    "Boolean",
    "Constraint",
    "InstanceOf",
    "Interval",
    "ListOf",
    "Options",
    "ParameterTypeError",
    "build",
    "check",
    "describe",
    "invalid",
    "validate",
]

Closed = Literal["both", "left", "right", "neither"]
_T = TypeVar("_T")


class ParameterTypeError(TypeError, ValueError):
    """A parameter of the wrong type: a ``TypeError`` (torch's type) that is also a ``ValueError``.

    Code that handles every bad value alike (the CLI prints it, the engine records it) catches
    both kinds with ``except ValueError``.
    """


class Constraint(ABC):
    """A set of accepted values and its description in words.

    Subclasses define :meth:`accepts_type` (the value has the right kind: a wrong kind is a
    ``TypeError``), :meth:`accepts` (the value is in the set: a right kind outside it is a
    ``ValueError``), :meth:`convert` (the value in its canonical form) and ``__str__`` (the
    words after "must be").
    """

    @abstractmethod
    def accepts_type(self, value: Any) -> bool:
        """Whether ``value`` has the right kind (else the error is a ``TypeError``)."""

    @abstractmethod
    def accepts(self, value: Any) -> bool:
        """Whether ``value``, of the right kind, is in the set (else a ``ValueError``)."""

    def convert(self, value: Any) -> Any:
        return value


def _tensor_type() -> type | None:
    # torch is never imported for this: a tensor can only exist once someone imported torch.
    torch = sys.modules.get("torch")
    return getattr(torch, "Tensor", None)


def _is_tensor(value: Any) -> bool:
    tensor = _tensor_type()
    return tensor is not None and isinstance(value, tensor)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool) or _is_tensor(value):
        return False
    if isinstance(value, numbers.Integral):
        return True
    try:
        operator.index(value)  # numpy integers
    except TypeError:
        return False
    return True


def _is_real(value: Any) -> bool:
    return _is_integer(value) or (
        isinstance(value, numbers.Real) and not isinstance(value, bool) and not _is_tensor(value)
    )


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond float's range
        return math.inf if value > 0 else -math.inf


def _bound(x: float) -> str:
    return "inf" if x == math.inf else "-inf" if x == -math.inf else str(x)


class Interval(Constraint):
    """Numbers of a kind between two bounds.

    Args:
        kind: :class:`numbers.Real` (any real number; an integer is one too) or
            :class:`numbers.Integral` (integers only: ``2.0`` is refused).
        low, high: the bounds; ``None`` leaves that side unbounded.
        closed: which ends belong to the interval: ``"both"`` (default), ``"left"``,
            ``"right"`` or ``"neither"``.
        finite: refuse ``inf`` and ``-inf`` (default; ``nan`` is always refused).
        tensors: also accept a real tensor whose every element lies in the interval (a batched
            hyperparameter); its shape is the caller's to check.

    Example:
        >>> from numbers import Integral, Real
        >>> str(Interval(Real, 0, 1, closed="left")), str(Interval(Integral, 1, None))
        ('a finite number in [0, 1)', 'a positive integer')
    """

    def __init__(
        self,
        kind: type,
        low: float | None,
        high: float | None,
        *,
        closed: Closed = "both",
        finite: bool = True,
        tensors: bool = False,
    ) -> None:
        if kind not in (numbers.Real, numbers.Integral):
            raise ValueError(f"kind must be numbers.Real or numbers.Integral, got {kind!r}")
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be 'both', 'left', 'right' or 'neither', got {closed!r}")
        if low is not None and high is not None and high < low:
            raise ValueError(f"high must be >= low, got low={low!r}, high={high!r}")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed
        self.finite, self.tensors = finite, tensors

    def _kind_ok(self, value: Any) -> bool:
        return _is_integer(value) if self.kind is numbers.Integral else _is_real(value)

    def _tensor_ok(self, value: Any) -> bool:
        return (
            self.tensors
            and _is_tensor(value)
            and not value.is_complex()
            and value.dtype is not sys.modules["torch"].bool
        )

    def accepts_type(self, value: Any) -> bool:
        return self._kind_ok(value) or self._tensor_ok(value)

    def _in(self, x: float) -> bool:
        if isinstance(x, float) and (math.isnan(x) or (self.finite and math.isinf(x))):
            return False
        if self.low is not None and (
            x < self.low or (x == self.low and self.closed in ("right", "neither"))
        ):
            return False
        return self.high is None or not (
            x > self.high or (x == self.high and self.closed in ("left", "neither"))
        )

    def accepts(self, value: Any) -> bool:
        if _is_tensor(value):
            return all(self._in(float(v)) for v in value.detach().reshape(-1).tolist())
        if self.kind is numbers.Integral:  # integers compare exactly
            return self._in(operator.index(value))
        return self._in(_as_float(value))

    def convert(self, value: Any) -> Any:
        if _is_tensor(value):
            return value
        if self.kind is numbers.Integral:
            return int(operator.index(value))
        return _as_float(value)

    def _range(self) -> str:
        low, high = self.low, self.high
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if low is not None and high is not None:
            return f" in {'[' if left else '('}{_bound(low)}, {_bound(high)}{']' if right else ')'}"
        if low is not None:
            return f" {'>=' if left else '>'} {_bound(low)}"
        if high is not None:
            return f" {'<=' if right else '<'} {_bound(high)}"
        return ""

    def __str__(self) -> str:
        if self.kind is numbers.Integral:
            if self.low == 1 and self.high is None and self.closed in ("both", "left"):
                text = "a positive integer"
            else:
                text = "an integer" + self._range()
        else:
            text = ("a finite number" if self.finite else "a number") + self._range()
        return text + (" (or a real tensor of them)" if self.tensors else "")

    def __repr__(self) -> str:
        kind = "Integral" if self.kind is numbers.Integral else "Real"
        return f"Interval({kind}, {self.low!r}, {self.high!r}, closed={self.closed!r})"


#: Common intervals: "a positive integer", "an integer >= 0", "a finite number > 0",
#: "a finite number >= 0", "a finite number in [0, 1]" and "a finite number in (0, 1)".
POSITIVE_INT = Interval(numbers.Integral, 1, None)
NONNEGATIVE_INT = Interval(numbers.Integral, 0, None)
POSITIVE = Interval(numbers.Real, 0, None, closed="neither")
NONNEGATIVE = Interval(numbers.Real, 0, None)
FRACTION = Interval(numbers.Real, 0, 1, closed="neither")
UNIT = Interval(numbers.Real, 0, 1)


class Options(Constraint):
    """One of a few values; a value of another type than every option is a ``TypeError``.

    Example:
        >>> str(Options("min", "max"))
        "one of 'min', 'max'"
    """

    def __init__(self, *options: Any) -> None:
        if not options:
            raise ValueError("Options needs at least one option")
        self.options = tuple(options)

    def accepts_type(self, value: Any) -> bool:
        if isinstance(value, bool):  # a bool only where an option is one
            return any(isinstance(o, bool) for o in self.options)
        return any(
            isinstance(value, type(o)) or (_is_real(value) and _is_real(o)) for o in self.options
        )

    def accepts(self, value: Any) -> bool:
        return value in self.options

    def convert(self, value: Any) -> Any:
        return self.options[self.options.index(value)]  # the option itself (np.str_ -> str)

    def __str__(self) -> str:
        return "one of " + ", ".join(map(repr, self.options))

    def __repr__(self) -> str:
        return f"Options{self.options!r}"


class Boolean(Constraint):
    """``True`` or ``False`` (not 0 or 1, not a string)."""

    def accepts_type(self, value: Any) -> bool:
        return isinstance(value, bool)

    def accepts(self, value: Any) -> bool:
        return True

    def __str__(self) -> str:
        return "True or False"

    def __repr__(self) -> str:
        return "Boolean()"


class InstanceOf(Constraint):
    """An instance of ``cls``, said as ``description`` (``"a mapping"``).

    ``test`` (optional) is a further condition on the value; a value of the right type that
    fails it is a ``ValueError``. A bool is an instance only where ``cls`` names ``bool`` (or
    ``object``), a tensor never (it would pass as a number).
    """

    def __init__(self, cls: type | tuple[type, ...], description: str, test: Any = None) -> None:
        self.cls, self.description, self.test = cls, description, test

    def accepts_type(self, value: Any) -> bool:
        if isinstance(value, bool):  # a bool is a number only where bool is named
            named = self.cls if isinstance(self.cls, tuple) else (self.cls,)
            return bool in named or object in named
        return isinstance(value, self.cls) and not _is_tensor(value)

    def accepts(self, value: Any) -> bool:
        return self.test is None or bool(self.test(value))

    def __str__(self) -> str:
        return self.description

    def __repr__(self) -> str:
        return f"InstanceOf({self.cls!r}, {self.description!r})"


#: A name: a non-empty string.
NAME = InstanceOf(str, "a name", bool)
#: A function (anything callable).
CALLABLE = InstanceOf(Callable, "callable")
#: Any real number, nan and infinities included (not a bool).
NUMBER = InstanceOf(numbers.Real, "a number")


def _str_keys(value: Any) -> bool:
    return all(isinstance(k, str) for k in value)


#: A mapping whose keys are strings (options, hyperparameters).
STR_KEYED = InstanceOf(Mapping, "a dict with string keys", _str_keys)


class ListOf(Constraint):
    """A sequence (list, tuple, range; not a string) of at least ``min_len`` entries, each
    satisfying ``each``.

    The entries are checked one by one, so an error names the entry (``sizes[1] must be a
    positive integer, got 0``); :func:`check` returns them converted, as a list.
    """

    def __init__(self, each: Constraint, *, min_len: int = 1) -> None:
        self.each, self.min_len = each, min_len

    def accepts_type(self, value: Any) -> bool:
        return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)

    def accepts(self, value: Any) -> bool:
        return len(value) >= self.min_len

    def __str__(self) -> str:
        if self.min_len <= 1:
            return "a non-empty list" if self.min_len == 1 else "a list"
        return f"a list of at least {self.min_len} entries"

    def __repr__(self) -> str:
        return f"ListOf({self.each!r}, min_len={self.min_len})"


class _IsNone(Constraint):
    def accepts_type(self, value: Any) -> bool:
        return value is None

    def accepts(self, value: Any) -> bool:
        return True

    def __str__(self) -> str:
        return "None"


def _constraint(c: Constraint | None) -> Constraint:
    if c is None:
        return _IsNone()
    if isinstance(c, type) and issubclass(c, Constraint):
        return c()  # Boolean as well as Boolean()
    if not isinstance(c, Constraint):
        raise TypeError(f"not a constraint: {c!r}")
    return c


def _shown(value: Any) -> str:
    if _is_tensor(value):
        if value.is_complex() or value.dtype is sys.modules["torch"].bool:
            return f"a tensor of dtype {value.dtype}"
        return (
            str(value.tolist())
            if value.numel() <= 10
            else f"a tensor of shape {tuple(value.shape)}"
        )
    return repr(value)


def describe(*constraints: Constraint | None) -> str:
    """The words after "must be" for ``constraints``: ``"None or a positive integer"``."""
    return " or ".join(str(_constraint(c)) for c in constraints)


def invalid(
    name: str, must: str, value: Any, *, owner: str | None = None, type_error: bool = False
) -> ValueError:
    """The error for ``name``: ``"owner: name must be <must>, got <value>"``.

    For the rules no constraint expresses (a relation between parameters); raise what it
    returns. ``type_error=True`` makes it a :class:`ParameterTypeError`.

    Example:
        >>> invalid("batch_size", "<= the number of training examples (100)", 500)
        ValueError('batch_size must be <= the number of training examples (100), got 500')
    """
    prefix = f"{owner}: " if owner else ""
    cls = ParameterTypeError if type_error else ValueError
    return cls(f"{prefix}{name} must be {must}, got {_shown(value)}")


def check(name: str, value: Any, *constraints: Constraint | None, owner: str | None = None) -> Any:
    """Return ``value`` if a constraint accepts it, converted: a number of an :class:`Interval`
    as ``int`` (integral) or ``float`` (real), a list's entries as a list, a tensor unchanged.

    Raises :class:`ParameterTypeError` when no constraint accepts its type, else
    ``ValueError``; the message names ``owner`` (when given), ``name``, every constraint and
    the value.

    Example:
        >>> from numbers import Real
        >>> check("momentum", 0.9, Interval(Real, 0, 1, closed="left"))
        0.9
        >>> check("nesterov", 1, Boolean)
        Traceback (most recent call last):
        ...
        descentlab.constraints.ParameterTypeError: nesterov must be True or False, got 1
    """
    cs = [_constraint(c) for c in constraints]
    if not cs:
        raise TypeError(f"check({name!r}, ...) needs at least one constraint")
    typed = [c for c in cs if c.accepts_type(value)]
    for c in typed:
        if c.accepts(value):
            if isinstance(c, ListOf):
                return [check(f"{name}[{i}]", v, c.each, owner=owner) for i, v in enumerate(value)]
            return c.convert(value)
    raise invalid(name, describe(*cs), value, owner=owner, type_error=not typed)


def validate(
    constraints: Mapping[str, Iterable[Constraint | None]],
    values: Mapping[str, Any],
    *,
    owner: str | None = None,
) -> dict[str, Any]:
    """Check every entry of ``values`` that ``constraints`` names; return them converted.

    Entries ``values`` lacks are skipped (their defaults are the caller's); a key of
    ``values`` that ``constraints`` does not name is a ``ValueError`` listing the valid names.

    Example:
        >>> from numbers import Real
        >>> validate({"lr": [Interval(Real, 0, None)]}, {"lr": 0.1, "beta": 0.9}, owner="SGD")
        Traceback (most recent call last):
        ...
        ValueError: SGD: unknown parameter 'beta'; valid names: lr
    """
    unknown = [k for k in values if k not in constraints]
    if unknown:
        prefix = f"{owner}: " if owner else ""
        which = ", ".join(map(repr, unknown))
        raise ValueError(
            f"{prefix}unknown parameter{'s' if len(unknown) > 1 else ''} {which}; "
            f"valid names: {', '.join(constraints)}"
        )
    return {k: check(k, v, *constraints[k], owner=owner) for k, v in values.items()}


def build(
    factories: Mapping[str, Callable[..., _T]], key: str, unknown: str, bad: str, /, **kwargs: Any
) -> _T:
    """``factories[key](**kwargs)``; an unknown ``key`` is a ``KeyError`` listing the valid names,
    arguments the factory does not take (its ``TypeError``) a ``ValueError`` ``"<bad>: ..."``."""
    if key not in factories:
        raise KeyError(f"unknown {unknown}; valid names: {', '.join(factories)}")
    try:
        return factories[key](**kwargs)
    except TypeError as exc:
        raise ValueError(f"{bad}: {exc}") from None
