"""A param group's hyperparameters: resolved at each step (schedules are evaluated),
validated before anything changes, and not validated again while they repeat."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from .base import HyperparameterTypeError, Rule

__all__ = [
    "NOT_HYPER",
    "Guard",
    "HyperChecks",
    "as_one",
    "changed_numbers",
    "check_batched",
    "check_group",
    "check_known",
    "equal",
    "recheck",
    "resolve",
]

_PLAIN = (float, int, bool, str, tuple, type(None))
_NUMBERS = (float, int)


def number(v: Any) -> bool:
    """A plain number or a tuple of them (not a bool: a flag may change the structure)."""
    if type(v) in _NUMBERS:
        return True
    if type(v) is not tuple:
        return False
    for x in v:  # noqa: SIM110 (a generator costs a microsecond before every scheduled step)
        if type(x) not in _NUMBERS:
            return False
    return True


#: param-group keys that are no hyperparameters (torch's ``differentiable`` mark included)
NOT_HYPER = ("params", "step", "initial_lr", "differentiable")


def changed_numbers(
    hyper: Mapping[str, Any], last: Any, guess: frozenset[str] = frozenset()
) -> frozenset[str] | None:
    """The keys whose values differ from the valid ``last``'s, where only plain numbers
    changed (a schedule's); None where anything else did, or a key came or went.

    Runs before every scheduled step. ``guess``: the keys this found the last time (a
    schedule changes the same ones at every step); where nothing else differs, that costs a
    copy and one comparison (the answer is then ``guess``, a key of it possibly unchanged)."""
    if type(last) is not dict and not isinstance(last, Mapping):  # (an ABC check: slow)
        return None
    if len(last) != len(hyper):
        return None
    if guess:
        probe = dict(hyper)
        for k in guess:
            v, w = probe.get(k), last.get(k, last)  # ``last`` itself: a key that is new
            if type(v) not in _NUMBERS and not number(v):
                break
            if type(w) not in _NUMBERS and not number(w):
                break
            probe[k] = w
        else:
            if probe == last:
                return guess
    changed = []
    for k, v in hyper.items():
        w = last.get(k, last)
        if v != w:
            if not (number(v) and number(w)):
                return None
            changed.append(k)
    return frozenset(changed)


class Guard:
    """What lets a step whose schedule moved some numbers cost what a step at constant values
    costs: one call (:meth:`admits`) tests that only those keys moved, each to a float (or a
    tuple of floats) strictly inside the open bounds of its specs
    (:meth:`~descentlab.optim.Rule.changed_bounds`) -- where every spec accepts it, and where
    the checks of several keys declared constant there (:attr:`~descentlab.optim.hyperspec.
    Relation.inside`) and the kernel's structure (:attr:`~descentlab.optim.Rule.
    signature_inside`) cannot change -- and runs what is left: the other checks of the moved
    keys, the signatures of the chain's parts that may change there (as a rule, none).

    Made by :meth:`of` once per set of moved keys; the steady step uses it once values
    inside the bounds passed every check (then, with the other keys as they were, every
    value inside passes them too).
    """

    __slots__ = (
        "admits",
        "checks",
        "floats",
        "gi",
        "n",
        "rest",
        "rest_values",
        "signatures",
        "tuples",
    )

    def __init__(
        self,
        gi: int,
        n: int,
        rest: Any,
        rest_values: Any,
        bounds: list[tuple[str, tuple]],
        signatures: list[tuple[Rule, tuple]],
        checks: list,
    ) -> None:
        self.gi, self.n = gi, n
        #: the other keys' values in one C call (None: no other key), and what they were
        self.rest, self.rest_values = rest, rest_values
        #: (key, entries) of each tuple value, then (key, entry or -1, lo, hi) of each float
        self.tuples = tuple((key, len(b)) for key, b in bounds if type(b[0]) is tuple)
        self.floats = tuple(
            (key, i, lo, hi)
            for key, b in bounds
            for i, (lo, hi) in (enumerate(b) if type(b[0]) is tuple else ((-1, b),))
        )
        self.signatures, self.checks = signatures, checks
        #: ``admits(hyper)``: whether ``hyper`` differs from the values this guard was made
        #: at only in moved values inside their bounds, that pass the checks left and keep
        #: the kernel's structure (False: the whole test decides). A bad value raises, naming
        #: it. One moved number or pair with nothing left to run (a schedule's lr, momentum,
        #: betas) is a closure of a few comparisons: this runs before every scheduled step.
        self.admits: Callable[[Mapping[str, Any]], bool] = self._admits_any
        if not signatures and not checks and len(bounds) == 1:
            ((key, b),) = bounds
            get = rest if rest is not None else _no_rest
            if type(b[0]) is float:
                self.admits = _admits_number(key, *b, n, get, rest_values)
            elif len(b) == 2:
                self.admits = _admits_pair(key, *b[0], *b[1], n, get, rest_values)

    @classmethod
    def of(
        cls,
        rule: Rule,
        gi: int,
        keys: frozenset[str],
        n: int,
        rest: Any,
        rest_values: Any,
        parts: tuple[Rule, ...],
        signature: tuple,
        readers: Mapping[str, tuple[int, ...]],
    ) -> Guard | None:
        """The guard of a schedule moving ``keys`` of group ``gi`` (``n`` keys in all;
        ``rest``: the other keys' values getter, ``rest_values`` what it read) at the chain's
        structure ``signature`` (``parts``: the chain's rules; ``readers``: which parts'
        signatures read each key); None where a moved key has no bounds."""
        bounds, checks = rule.changed_bounds(keys)
        if not keys <= {key for key, _ in bounds}:
            return None
        signatures = []
        for i in sorted({i for key in keys for i in readers.get(key, ())}):
            read = frozenset(key for key in keys if i in readers.get(key, ()))
            if not parts[i].bounded_signature(read):
                signatures.append((parts[i], signature[i]))
        return cls(gi, n, rest, rest_values, bounds, signatures, checks)

    def _admits_any(self, hyper: Mapping[str, Any]) -> bool:
        """:attr:`admits` of any moved keys, checks and signatures."""
        if len(hyper) != self.n:
            return False
        try:
            if self.rest is not None and self.rest(hyper) != self.rest_values:
                return False
            for key, n in self.tuples:
                v = hyper[key]
                if type(v) is not tuple or len(v) != n:
                    return False
            for key, i, lo, hi in self.floats:
                x = hyper[key] if i < 0 else hyper[key][i]
                if type(x) is not float or not lo < x < hi:
                    return False
        except (KeyError, RuntimeError):  # a key swapped; a tensor of several values
            return False
        for part, sig in self.signatures:
            if part.fuse_signature(hyper) != sig:
                return False
        if self.checks:
            recheck(self.checks, self.gi, hyper)
        return True


def _no_rest(hyper: Mapping[str, Any]) -> None:
    """The other keys' values where no other key is."""
    return None


def _admits_number(key: str, lo: float, hi: float, n: int, rest: Callable, values: Any) -> Any:
    """:attr:`Guard.admits` of one moved number, nothing else to run."""

    def admits(hyper: Mapping[str, Any]) -> bool:
        try:
            x = hyper[key]
            return type(x) is float and lo < x < hi and len(hyper) == n and rest(hyper) == values
        except (KeyError, RuntimeError):  # a key swapped; a tensor of several values
            return False

    return admits


def _admits_pair(
    key: str, lo0: float, hi0: float, lo1: float, hi1: float, n: int, rest: Callable, values: Any
) -> Any:
    """:attr:`Guard.admits` of one moved pair of numbers (betas), nothing else to run."""

    def admits(hyper: Mapping[str, Any]) -> bool:
        try:
            v = hyper[key]
            if type(v) is not tuple or len(v) != 2:
                return False
            x, y = v
            return (
                type(x) is float
                and type(y) is float
                and lo0 < x < hi0
                and lo1 < y < hi1
                and len(hyper) == n
                and rest(hyper) == values
            )
        except (KeyError, RuntimeError):
            return False

    return admits


def recheck(tests: list, gi: int, hyper: Mapping[str, Any]) -> None:
    """Run ``tests``, the checks of the values a schedule changed (the others passed before)
    and of what relates them (:meth:`~descentlab.optim.Rule.changed_checks`), nothing else.
    A bad value raises, naming its param group ``gi``."""
    try:
        for test in tests:
            test(hyper)
    except ValueError as exc:
        raise type(exc)(f"param group {gi}: {exc}") from None


def resolve(group: Mapping[str, Any], step: int) -> dict[str, Any]:
    """The group's hyperparameters for update number ``step`` (0 = the first update);
    callables (schedules) are evaluated there. A tensor of one element, of any dimension, is
    a scalar (a 0-dim view of it, so that in-place changes to the group's tensor still
    reach the step), as torch reads a ``torch.tensor([[1e-3]])`` lr; a length-K tensor (K > 1)
    stays batched."""
    hyper = {k: (v(step) if callable(v) else v) for k, v in group.items() if k not in NOT_HYPER}
    for k, v in hyper.items():
        if isinstance(v, Tensor):
            hyper[k] = as_one(v)
        elif type(v) is tuple and any(isinstance(x, Tensor) for x in v):
            hyper[k] = tuple(as_one(x) for x in v)
    return hyper


def as_one(value: Any) -> Any:
    """A one-element tensor of any dimension as a 0-dim one (a view); anything else as is."""
    if isinstance(value, Tensor) and value.ndim and value.numel() == 1:
        return value.reshape(())
    return value


def check_batched(hyper: Mapping[str, Any], params: list[Tensor], where: str = "") -> None:
    """Refuse tensor hyperparameters that the step could not broadcast, before anything
    changes: a batched (1-D, length K) value runs K problems along each parameter's leading
    dimension, so every parameter of the group needs K there (K = 1 broadcasts to all)."""
    prefix = f"{where}: " if where else ""
    for key, v in hyper.items():
        items = (
            [(f"{key}[{i}]", x) for i, x in enumerate(v)]
            if isinstance(v, tuple | list)
            else [(key, v)]
        )
        for name, x in items:
            if not isinstance(x, Tensor):
                continue
            if x.is_complex() or x.dtype == torch.bool:
                raise HyperparameterTypeError(
                    f"{prefix}{name} must be a real tensor, got dtype {x.dtype}"
                )
            if x.ndim > 1 or (x.ndim == 1 and x.numel() == 0):
                raise ValueError(
                    f"{prefix}{name} must be a number, a 0-dim tensor or a 1-D tensor of length "
                    f"K >= 1 (one value per run), got shape {tuple(x.shape)}"
                )
            if x.ndim == 0:
                continue
            k = x.numel()
            for j, p in enumerate(params):
                if p.ndim == 0 or (k != 1 and p.shape[0] != k):
                    raise ValueError(
                        f"{prefix}{name} has length {k} (batched: one value per row of each "
                        f"parameter's leading dimension), but parameter {j} has shape "
                        f"{tuple(p.shape)}"
                    )


def _signature(hyper: Mapping[str, Any], params: list[Tensor]) -> tuple | None:
    """What a group's validation depends on when its hyperparameters hold tensors: each
    tensor by identity and in-place version, every other value by equality, and the
    parameters' shapes; None where a value has no reliable equality (validate every step)."""
    sig: list[Any] = []
    for key, v in hyper.items():
        for x in v if type(v) is tuple else (v,):
            if isinstance(x, Tensor):
                sig.append((key, id(x), x._version))
            elif type(x) in _PLAIN:
                sig.append((key, x))
            else:
                return None
    sig.append(tuple(p.shape for p in params))
    return tuple(sig)


def equal(a: Any, b: Any) -> bool:
    """``a == b`` as one bool (False where a tensor compares elementwise)."""
    try:
        return bool(a == b)
    except (RuntimeError, TypeError, ValueError):
        return False


def check_known(rule: Rule, hyper: Mapping[str, Any]) -> None:
    """Refuse hyperparameters that no rule of the chain reads, listing the valid ones."""
    unknown = sorted(set(hyper) - set(rule.defaults))
    if unknown:
        valid = ", ".join(sorted(rule.defaults))
        raise ValueError(
            f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} for {rule!r}; "
            f"valid: {valid}"
        )


def check_group(
    opt: Any, group: Mapping[str, Any], where: str, known: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Validate a param group (or the defaults, ``where="defaults"``) of ``opt`` when it is
    added: its fixed options, batched values against its parameters, the rule's checks (not
    again for plain values equal to ``known``, the defaults already checked). Returns the
    group's resolved hyperparameters."""
    for k, v in opt.fixed.items():
        if k in group and not equal(group[k], v):
            raise ValueError(
                f"{k} is fixed at construction for {type(opt).__name__} ({v!r}); "
                f"{where} asked for {group[k]!r}"
            )
    hyper = resolve(group, int(group.get("step", 0)))
    label = "" if where == "defaults" else where
    check_batched(hyper, list(group.get("params", ())), label)
    if known is not None and is_plain(hyper) and known == hyper:
        return hyper
    try:
        opt.rule.validate(hyper)
    except ValueError as exc:
        if where == "defaults":
            raise
        raise type(exc)(f"{where}: {exc}") from None
    return hyper


def is_plain(hyper: Mapping[str, Any]) -> bool:
    """Whether every hyperparameter is a Python value (a tuple of them too): no tensor."""
    return all(
        type(v) in _PLAIN and (type(v) is not tuple or all(type(x) in _PLAIN for x in v))
        for v in hyper.values()
    )


class HyperChecks:
    """Each param group's last valid hyperparameters (a cache: rebuilt after a copy)."""

    def __init__(self) -> None:
        self.validated: dict[int, Any] = {}
        self.plain: dict[int, bool] = {}  # the group's hyperparameters are Python values

    def check(self, rule: Rule, gi: int, hyper: dict[str, Any], params: list[Tensor]) -> None:
        """Validate a group's hyperparameters (skipped when they repeat the last valid ones:
        plain values by equality, tensors by identity and version, so a step costs no
        validation unless a schedule or the user changed something). ``params``: the
        group's parameters, which batched values must fit."""
        last = self.validated.get(gi)
        self.plain[gi] = plain = is_plain(hyper)
        if plain:
            if last is not None and last == hyper:
                return
            keys = changed_numbers(hyper, last)
            if keys is not None:
                recheck(rule.changed_checks(keys), gi, hyper)
                self.validated[gi] = hyper
                return
            key: Any = hyper
        else:
            sig = _signature(hyper, params)
            if sig is not None and type(last) is tuple and last[0] == sig:
                return
            key = None if sig is None else (sig, hyper)  # the dict keeps the tensors' ids
        self.validated.pop(gi, None)
        try:
            check_batched(hyper, params)
            rule.validate(hyper)
        except ValueError as exc:
            raise type(exc)(f"param group {gi}: {exc}") from None
        if key is not None:
            self.validated[gi] = key

    def passed(self, gi: int, hyper: dict[str, Any]) -> None:
        """Group ``gi``'s plain ``hyper`` checked when added: its first step checks nothing."""
        if is_plain(hyper):
            self.validated[gi] = hyper
