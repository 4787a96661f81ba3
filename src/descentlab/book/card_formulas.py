"""The formulas the cards' explanations type, evaluated where they are read.

A card's sentence that states a relation in its own notation -- an identity
(``√β = (√κ-1)/(√κ+1)``), an approximation at the numbers it is meant for
(``(κ-1)/(κ+1) ≈ 1 - 2/κ`` at ``κ = 100``), a bound (``(1+β-ηλ)² - 4β ≤ 0``), a number worked
out (``0.999^1000 = 0.37``) -- is bound by a :class:`Typed` row: the row names the phrase the
page holds and the relation the phrase states, *typed in the page's notation* (unicode,
``√``, ``²``, ``α₁``, ``·``); :func:`holds` parses each side (through
:func:`descentlab.book.typed.expression`, the book's one reader of a typed formula), puts in
the row's values (``κ = 100``), gives every symbol left two sets of values (an identity must
hold at both) and compares the sides: ``=`` to the row's tolerance, ``≈`` to 1 % unless the
row says otherwise, ``≤`` and ``<`` as written.

The card's row (:func:`formula_checks`) reads the page: where the phrase is there, the
relation is evaluated; where the page types another formula with the same left side (a sign
or an exponent changed), *that* formula is evaluated, and is ✘ with the two values; where the
phrase is gone, ✘. The census (:mod:`descentlab.book.teaching`) counts a sentence holding a
row's phrase as backed.

Example:
    >>> holds("√β = (√κ-1)/(√κ+1) ≈ 1 - 2/√κ", "β = ((√κ-1)/(√κ+1))², κ = 10000")[0]
    True
    >>> holds("(κ-1)/(κ+1) ≈ 1 + 2/κ", "κ = 100")[0]
    False
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from descentlab.book.checks import ck
from descentlab.book.render.pages import Check
from descentlab.book.typed import expression

__all__ = ["FORMULAS", "Typed", "formula_checks", "holds"]


@dataclass(frozen=True)
class Typed:
    """A relation a card's sentence states, in the page's notation.

    Attributes:
        item: the card (seed_items.md number).
        said: the phrase the page holds (plain: no backquotes).
        at: the values the relation is meant at, typed as the page types them and read in
            order (``"L = 100, μ = 1, κ = L/μ"``); every symbol left is given two sets of
            values (the relation must be an identity in it).
        states: the relation, where ``said`` is no formula itself (``"At κ = 100 that is 5
            against 50"`` states ``"√κ/2 = 5; κ/2 = 50"``); ``said`` where empty. Several
            relations are separated by ``;``.
        tol: the relative tolerance of ``=`` (and of ``≈`` where larger than 1 %), for
            numbers the page rounds.
    """

    item: int
    said: str
    at: str = ""
    states: str = ""
    tol: float = 1e-9

    @property
    def relation(self) -> str:
        return self.states or self.said


#: the relations :func:`holds` reads, longest first (``≤`` before ``<``)
_REL = re.compile(r"\s*(≈|≤|<|=)\s*")
#: the values a symbol the row leaves free takes, two sets (an identity holds at both)
_FREE = ((0.37, 0.61, 0.23, 0.71, 0.43, 0.17, 0.53, 0.29), (0.13, 0.41, 0.67, 0.19, 0.83, 0.31,
                                                             0.57, 0.47))  # fmt: skip


def _values(at: str) -> dict[Any, Any]:
    """The row's values (numbers, or formulas in the symbols left free), each read in order
    at the ones before it."""
    out: dict[Any, Any] = {}
    for part in (p for p in re.split(r",\s+", at) if p.strip()):
        name, _, value = part.partition("=")
        (symbol,) = expression(name.strip()).free_symbols
        out[symbol] = expression(value.strip()).subs(out)
    return out


def _number(expr: Any, free: Mapping[Any, float]) -> float:
    value = complex(expr.subs(free))
    if abs(value.imag) > 1e-12 * max(1.0, abs(value.real)):
        raise ValueError(f"{expr} is complex there ({value:.4g})")
    return value.real


def _compare(op: str, a: float, b: float, tol: float) -> bool:
    if op in "≤<":
        return a <= b + tol * max(1.0, abs(b)) if op == "≤" else a < b
    rel = max(tol, 0.01) if op == "≈" else tol
    return math.isfinite(a) and abs(a - b) <= max(rel * max(abs(a), abs(b)), 1e-12)


def holds(relation: str, at: str = "", tol: float = 1e-9) -> tuple[bool, str]:
    """Whether ``relation`` (sides separated by ``=``, ``≈``, ``≤``, ``<``; several relations
    by ``;``) holds at the values ``at`` and, for each symbol left, at two sets of values;
    and what its sides evaluate to, in words.

    Raises:
        ValueError: a side holds a form the reader does not take (a sum, a set, words).
    """
    values = _values(at)
    ok, shown = True, []
    for one in (r for r in relation.split(";") if r.strip()):
        parts = _REL.split(one.strip())
        sides, ops = [expression(s).subs(values) for s in parts[::2]], parts[1::2]
        left = sorted(set().union(*(e.free_symbols for e in sides)), key=str)
        if len(left) > len(_FREE[0]):
            raise ValueError(f"{one!r}: more free symbols than values to give them")
        for free in _FREE:
            nums = [_number(e, dict(zip(left, free, strict=False))) for e in sides]
            ok &= all(
                _compare(op, a, b, tol) for op, a, b in zip(ops, nums, nums[1:], strict=False)
            )
        shown.append(" vs ".join(f"{n:.6g}" for n in nums))
    return ok, "; ".join(shown)


def _plain(text: str) -> str:
    return " ".join(text.replace("*", "").replace("`", "").split())


def _first_side(formula: str) -> str:
    return _REL.split(formula.strip())[0].strip()


def _on_page(row: Typed, page: str, raw: str) -> tuple[str, str] | None:
    """(the relation to evaluate, what the page types) -- the row's own where the page holds
    its phrase; else a formula the page types with the row's left side (``said`` a formula)."""
    if row.said in page:
        return row.relation, row.said
    if row.states:
        return None
    key = _first_side(row.said)
    for typed in re.findall(r"`([^`]+)`", raw):
        if _first_side(typed) == key and _REL.search(typed):
            return typed, typed
    return None


def formula_checks(number: int, text: str) -> list[Check]:
    """The rows that evaluate card ``number``'s typed relations (:data:`FORMULAS`) as
    ``text`` (its explanation) states them: ✘ where one is false at its values, or the page
    no longer states it."""
    page = _plain(text)
    rows = []
    for row in (r for r in FORMULAS if r.item == number):
        found = _on_page(row, page, text)
        label = f'the typed relation "{row.said}", evaluated'
        if found is None:
            rows.append(ck(label, False, "the page no longer states it", row.relation))
            continue
        relation, typed = found
        try:
            ok, measured = holds(relation, row.at, row.tol)
        except (ValueError, TypeError, ZeroDivisionError) as exc:
            ok, measured = False, f"unread: {exc}"
        at = f" at {row.at}" if row.at else ""
        at += f" ({relation})" if relation != typed else ""
        rows.append(
            ck(
                f'the typed relation "{typed}"{at}, evaluated',
                ok,
                measured,
                "its sides agree" + ("" if typed == row.said else f': "{row.said}"'),
            )
        )
    return rows


#: the relations the cards' explanations type, each evaluated on its card
FORMULAS: tuple[Typed, ...] = (
    # cards, items 100-131
    Typed(100, "α = 0 forgets it at once and leaves v = -ρ∇J", "α = 0", "αv - ρ·g = -ρ·g"),
    Typed(102, "Gradient descent multiplies x_i by 1 - ηλ_i",
          states="x - η·(λ x) = (1 - ηλ) x"),  # the gradient of ½λx² is λx
    Typed(102, "η = 2/(L+μ) makes the worst factor (κ-1)/(κ+1) ≈ 1 - 2/κ",
          "L = 100, μ = 1, κ = L/μ, η = 2/(L+μ)",
          "|1 - ηL| = (κ-1)/(κ+1) ≈ 1 - 2/κ; |1 - ημ| = (κ-1)/(κ+1)"),
    Typed(102, "so shrinking the error by e takes ≈ κ/2 steps", "κ = 100",
          "-1/log((κ-1)/(κ+1)) ≈ κ/2"),
    Typed(102, "x_{t+1} = (1 + β - ηλ) x_t - β x_{t-1}",
          states="x + β(x - p) - ηλ x = (1 + β - ηλ) x - β p"),  # heavy ball: x, its last p
    Typed(102, "the discriminant (1+β-ηλ)² - 4β ≤ 0 at both ends gives η = 4/(√L+√μ)² and "
               "β = ((√κ-1)/(√κ+1))²",
          "L = 100, μ = 1, κ = L/μ, η = 4/(√L+√μ)², β = ((√κ-1)/(√κ+1))²",
          "(1+β-ηL)² - 4β = 0; (1+β-ημ)² - 4β = 0"),
    Typed(102, "At κ = 100 that is 5 against 50", "κ = 100", "√κ/2 = 5; κ/2 = 50"),
    Typed(103, "f = 0.05 x² + 5 y² the curvature across is λ = 10", states="2·5 = 10"),
    Typed(103, "1 - 0.18·10 = -0.8"),
    Typed(103, "it overshoots the floor and flips side every step", states="1 - 0.18·10 < 0"),
    Typed(103, "y_{t+1} = (1 + β - ηλ) y_t - β y_{t-1}",
          states="y + β(y - p) - ηλ y = (1 + β - ηλ) y - β p"),
    Typed(103, "So momentum damps the zig-zag only when √β < 0.8", "β = 0.64",
          "√β = |1 - 0.18·10|"),
    Typed(103, "at β = 0.3 the oscillation dies as 0.55^t", states="√0.3 ≈ 0.55"),
    Typed(103, "at β = 0.9 it dies as 0.95^t", states="√0.9 ≈ 0.95"),
    Typed(105, "x̃_new = x_new + ρ v_new = x + v_new + ρ v_new",
          "x_new = x + v_new, x̃_new = x_new + ρ v_new"),
    Typed(105, "x̃ += -ρ v_old + (1 + ρ) v_new", "x̃_new = x + v_new + ρ v_new, x̃ = x + ρ v_old",
          "x̃_new - x̃ = -ρ v_old + (1 + ρ) v_new"),
    Typed(106, "gradient descent gives w ← (1 - ηλ) w", states="w - η·(λ w) = (1 - ηλ) w"),
    Typed(106, "for 0 < η < 1/λ it is in (0, 1)", "λ = 4, η = 0.1", "0 < 1 - ηλ < 1"),
    Typed(106, "at η = 1/λ it lands in one step", "η = 1/λ", "(1 - ηλ) w = 0"),
    Typed(106, "at η = 2/λ it bounces forever", "η = 2/λ", "1 - ηλ = -1"),
    Typed(112, "ρ (1-α₁)/√(1-α₂) · sign(g) = ρ · 0.1/0.0316 = 3.16 ρ",
          "α₁ = 0.9, α₂ = 0.999, g = 1", tol=2e-3),
    Typed(112, "With α₂ closer to 1 it is worse", "α₁ = 0.9",
          "(1-α₁)/√(1-0.999) < (1-α₁)/√(1-0.9999)"),
    Typed(113, "β₁ = 0.9 averages the direction over about 10 steps, β₂ = 0.999 the gradient's "
               "size over about 1,000", states="1/(1-0.9) ≈ 10; 1/(1-0.999) ≈ 1000"),
    Typed(113, "5e-4 is the safer half", states="5e-4 = 1e-3/2"),
    Typed(129, "a gradient k steps old weighs γ^k, so after ≈ 1/(1-γ) steps it is forgotten",
          "γ = 0.99", "γ^(1/(1-γ)) ≈ exp(-1)"),
    Typed(130, "α_t = α √(1-β₂^t)/(1-β₁^t)",
          "α_t = α √(1-β₂^t)/(1-β₁^t), ε̂ = ε√(1-β₂^t), m̂ = m/(1-β₁^t), v̂ = v/(1-β₂^t)",
          "α_t m/(√v + ε̂) = α m̂/(√v̂ + ε)"),
)  # fmt: skip
