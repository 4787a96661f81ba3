"""A formula a teaching sentence types, evaluated against what computes it.

A card's sentence often types a formula -- ``W -= η g/√(G + ε)``, ``⌊(n + 2p - k)/s⌋ + 1``,
``√((1-α)/(1+α))``, ``1/(1 - p)`` -- that says what a run, a library or the card's own cell
computes. :func:`value` evaluates the formula *as typed* (SymPy, through
:func:`~descentlab.book.facts.evaluate`) at the numbers given; two bindings use it:

* :func:`~descentlab.book.card_claims.formula_reading` -- a
  :class:`~descentlab.book.card_claims.Reading` whose values are
  the largest relative gap between the typed formula and what the card's cell computed, at
  the numbers the cell used, against a tolerance: the row is ✘ when the page no longer holds
  the phrase (a sign, an exponent, an operand changed on the page) or the formula, evaluated,
  leaves the cell's values;
* :func:`formula_demo` -- a claim's demonstration (:class:`~descentlab.book.claims.Claim`) with
  no cell to read: the typed formula and a misconception's formula (the claim's opposite) are
  both evaluated against a reference computation (descentlab's optimizer, a torch layer, a
  simulation); the claim holds when the typed one matches and the misconception does not.

The formula is read from the phrase itself (it must be a part of it), so the phrase and what is
evaluated cannot drift apart: a mutant of the page's formula is a ✘ by absence, a mutant of the
row's is a ✘ by evaluation.

Example:
    >>> value("1/(1 - p)", {"p": 0.5})
    2.0
    >>> value("k²·b·C_out", {"k": 3, "b": 64, "C_out": 256})
    147456.0
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from descentlab.book.checks import shows as _shows
from descentlab.book.facts import _GREEK, _parsed, _python

__all__ = ["Cases", "formula_demo", "gap", "part", "value"]

#: the numbers a formula is evaluated at and what computes it there: ``[(values, reference)]``
Cases = Sequence[tuple[Mapping[str, float], float]]
#: superscript letters the evaluator does not read, as powers
_POWERS = {"ⁿ": "^(n)", "ᵗ": "^(t)", "ᵏ": "^(k)"}


def value(formula: str, at: Mapping[str, float], names: Mapping[str, str] | None = None) -> float:
    """``formula`` (as a page types it) evaluated at ``at`` (symbol -> number; ``η`` or ``eta``);
    ``names`` renames what the evaluator does not read as one symbol (``{"μ_B": "m"}``,
    ``{"m̂": "m"}``) before it is read. The formula is read as
    :func:`~descentlab.book.facts.evaluate` reads it, and compiled once (SymPy's ``lambdify``).

    Raises:
        ValueError: the formula is no number at ``at`` (a symbol without a value, a form the
            evaluator does not take), named.
    """
    text = formula
    for typed, name in (names or {}).items():
        text = text.replace(typed, f" {name} ")
    for sup, power in _POWERS.items():
        text = text.replace(sup, power)
    bound = {_GREEK.get(k, k): float(v) for k, v in at.items()}
    try:
        args, fn = _compiled(text)
        got = float(fn(*(bound[a] for a in args)))
    except (KeyError, TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
        raise ValueError(f"the typed formula {formula!r} is no number at {dict(at)}") from exc
    if not math.isfinite(got):
        raise ValueError(f"the typed formula {formula!r} is no number at {dict(at)}")
    return got


@functools.cache
def _compiled(text: str) -> tuple[tuple[str, ...], Callable[..., float]]:
    """``text`` read as :func:`~descentlab.book.facts.evaluate` reads it: its symbols' names
    and the expression compiled over them."""
    from sympy import lambdify

    py = _python(text)
    if py is None:
        raise ValueError(f"{text!r} holds what the evaluator does not read")
    expr = _parsed(py)
    args = tuple(sorted(str(s) for s in expr.free_symbols))
    return args, lambdify(args, expr, "math")


def gap(formula: str, cases: Cases, names: Mapping[str, str] | None = None) -> float:
    """The largest relative difference between ``formula`` evaluated at each case's values and
    the case's reference (the absolute difference where the reference is 0)."""
    if not cases:
        raise ValueError(f"no case to evaluate {formula!r} at")
    return max(abs(value(formula, at, names) - ref) / (abs(ref) or 1.0) for at, ref in cases)


def part(formula: str, phrase: str) -> None:
    """Refuse a ``formula`` that is not part of the ``phrase`` it is read from."""
    if formula not in phrase:
        raise ValueError(f"the formula {formula!r} is not part of the phrase {phrase!r}")


def formula_demo(formula: str, wrong: str, cases: Callable[[], Cases], shows: str, *,
                 rel: float = 1e-9, names: Mapping[str, str] | None = None,
                 ) -> Callable[[], tuple[bool, str]]:  # fmt: skip
    """A claim's demonstration: ``formula`` (typed in the claim's phrase) and ``wrong`` (typed
    in its opposite) evaluated at ``cases()``, a reference computation's numbers and values;
    it holds when ``formula`` is within ``rel`` of every reference and ``wrong`` is not. Its
    ``typed`` is ``(formula, wrong)``: a claim's phrase and opposite must hold them."""

    @_shows(f"{shows}: the typed {formula} against {wrong}")
    def demo() -> tuple[bool, str]:
        got: Any = cases()
        right, off = gap(formula, got, names), gap(wrong, got, names)
        return right <= rel < off, (
            f"{formula} off by {right:.1e}, {wrong} off by {off:.2g} ({len(got)} cases)"
        )

    demo.typed = (formula, wrong)  # type: ignore[attr-defined]  (read from the phrases)
    return demo
