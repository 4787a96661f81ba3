"""A formula a teaching sentence types, read once and evaluated against what computes it.

A sentence of the book often types a formula in the page's notation -- ``|y - μ|/b + log 2b``,
``√((1-α)/(1+α))``, ``n xⁿ⁻¹``, ``-η∇L/(1-β₁)``, ``x̃ - ρv``, ``⌊(n + 2p - k)/s⌋ + 1`` -- that
says what a run, a library or the card's own cell computes. This module is the one place that
reads such a formula:

* :func:`python` -- the page's notation as the Python SymPy parses (superscript runs, ``ⁿ⁻¹``
  among them, as exponents; a Greek letter with a subscript as one name, ``β₁`` -> ``beta_1``;
  a hat or a tilde part of the name, ``x̃`` -> ``x_tilde``; ``√``; ``log 2b`` the log of the
  whole product; letters side by side multiplied where the values name them);
  :func:`expression` -- the SymPy expression; :func:`value` -- its number at the values given
  (keyed as the page types the symbols: ``μ``, ``β₁``, ``∇L``; or by their names, ``eta``);
* :func:`nearest_wrong` -- the formula a reader who slipped would type (a sign turned, an
  exponent or a digit raised, a symbol squared);
* :func:`typed` -- a claim row (``(name, said, opposite, demo, home)``,
  :class:`~descentlab.book.claims.Claim`) whose demonstration evaluates the typed formula
  against a reference computation and refuses the wrong one (a misconception's formula, or
  the nearest wrong one): a sign, an exponent or an operand changed on the page is ✘;
* :func:`gap` and :func:`part` -- what a card's reading of a typed formula against its own
  cell's values (:func:`~descentlab.book.card_claims.formula_reading`) measures.

The formula is read from the phrase itself (it must be a part of it), so the phrase and what is
evaluated cannot drift apart: a mutant of the page's formula is a ✘ by absence, a mutant of the
row's is a ✘ by evaluation.

Example:
    >>> value("1/(1 - p)", {"p": 0.5}), value("6xy - 10y", {"x": 1.0, "y": 2.0})
    (2.0, -8.0)
    >>> value("k²·b·C_out", {"k": 3, "b": 64, "C_out": 256})
    147456.0
    >>> nearest_wrong("1 - ηλ"), nearest_wrong("π²/6"), nearest_wrong("η/t")
    ('1 + ηλ', 'π³/6', 'η²/t')
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from descentlab.book.checks import shows as _shows

__all__ = ["Cases", "Row", "expression", "gap", "nearest_wrong", "notation", "part", "points",
           "python", "typed", "value"]  # fmt: skip

# the page's notation as Python: what every reader of a formula in the book parses

_GREEK = dict(
    zip(
        "αβγδεζηθικλμνξπρστφχψω",
        ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
         "lamda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "phi", "chi", "psi", "omega"],
        strict=True,
    )
)  # fmt: skip
_SUP = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_SUB = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
_TEX = [
    (re.compile(r"\\(?:left|right|,|;|!|quad|qquad|displaystyle)"), " "),
    (re.compile(r"\\(?:cdot|times)"), "*"),
    (re.compile(r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}"), r"((\1)/(\2))"),
    (re.compile(r"\\sqrt\s*\{([^{}]*)\}"), r"sqrt(\1)"),
    (re.compile(r"\\lfloor"), "floor("),
    (re.compile(r"\\rfloor"), ")"),
    (re.compile(r"\\(alpha|beta|gamma|delta|epsilon|eta|theta|kappa|lambda|mu|nu|pi|rho|sigma|tau)"),
     r" \1 "),
]  # fmt: skip
#: what a formula may hold to be evaluated: numbers, the operators, known names, brackets
_SAFE = re.compile(r"[\w\s.+\-*/()]*")


def _python(expr: str) -> str | None:
    """``expr`` (unicode or TeX) as a Python/SymPy expression, or None where it holds
    something this reader does not evaluate (sums, expectations, sets, words)."""
    s = expr
    for pat, rep in _TEX:
        s = pat.sub(rep, s)
    s = s.replace("{", "(").replace("}", ")").replace("^", "**")
    s = re.sub(r"(\d),(\d{3})(?!\d)", r"\1\2", s)
    s = re.sub(r"[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+", lambda m: f"**({m.group().translate(_SUP)})", s)
    s = re.sub(r"(\w)([₀₁₂₃₄₅₆₇₈₉]+)", lambda m: f"{m[1]}_{m[2].translate(_SUB)}", s)
    s = s.replace("·", "*").replace("×", "*").replace("−", "-").replace("½", "(1/2)")
    s = s.replace("⌊", "floor(").replace("⌋", ")").replace("\\lambda", " lamda ")
    s = re.sub(r"√\(", "sqrt(", s)
    s = re.sub(r"√(\w+)", r"sqrt(\1)", s)
    s = re.sub(r"\bln\b", "log", s)
    s = re.sub(r"\|([^|]+)\|", r"Abs(\1)", s)
    s = "".join(f" {_GREEK[c]} " if c in _GREEK else c for c in s)
    return s if _SAFE.fullmatch(s) and s.strip() else None


_NAMES = {"sqrt", "floor", "log", "exp", "Abs", "pi", "sign", "Max"}


@functools.lru_cache(maxsize=4096)
def _parsed(py: str) -> Any:
    from sympy import Symbol
    from sympy.parsing.sympy_parser import (
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    transforms = (*standard_transformations, implicit_multiplication_application)
    # every name but the reader's functions a symbol: SymPy reads ``beta``, ``gamma`` and
    # ``zeta`` (β, γ, ζ) as its own functions otherwise, and the formula is never evaluated
    local = {w: Symbol(w) for w in re.findall(r"[A-Za-z_]\w*", py) if w not in _NAMES}
    return parse_expr(py, local_dict=local, transformations=transforms, evaluate=True)


#: the numbers a formula is evaluated at and what computes it there: ``[(values, reference)]``
Cases = Sequence[tuple[Mapping[str, float], float]]
#: a claim row: ``(name, said, opposite, demonstration, home)``
Row = tuple[str, str, str, Callable[[], tuple[bool, str]], str]

#: a run of superscripts, ``ⁿ⁻¹`` among them: an exponent
_SUP_RUN = re.compile(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺ⁿᵗᵏᴺ]+")
_SUP_LETTERS = str.maketrans("ⁿᵗᵏᴺ", "ntkN")
#: ``log 2b``, ``ln q``, ``exp x``: a function applied to the product typed after it
_APPLIED = re.compile(r"\b(log|ln|exp) (\S+?)(?=[\s),;]|$)")
#: the reader's functions: never a value's symbol, even where a value is keyed by one letter
_FUNCTIONS = ("sqrt", "log", "exp", "ln", "sign", "floor", "Abs", "Max", "pi")
_MARKS = {"\u0303": "_tilde", "\u0302": "_hat"}


def notation(formula: str, names: Mapping[str, str] | None = None, keys: Sequence[str] = ()
             ) -> tuple[str, dict[str, str]]:  # fmt: skip
    """``formula`` as the page types it, rewritten into what the reader parses (each key
    ``named``): what :func:`python` reads, and what a text of several formulas is read as."""
    s = formula
    for typed_as, name in (names or {}).items():
        s = s.replace(typed_as, f" {name} ")
    s = _APPLIED.sub(r"\1(\2)", s)
    s = _SUP_RUN.sub(lambda m: f"**({m[0].translate(_SUP).translate(_SUP_LETTERS)})", s)
    ordered = sorted(keys, key=len, reverse=True)
    named = {k: f"s{i}_" for i, k in enumerate(ordered)}
    if named:
        token = re.compile("|".join([*(rf"\b{f}\b" for f in _FUNCTIONS), *map(re.escape, ordered)]))
        s = token.sub(lambda m: f" {named.get(m[0], m[0])} ", s)
    for mark, suffix in _MARKS.items():
        s = s.replace(mark, suffix)
    s = re.sub(r"√(\d*\.\d+)", r"√(\1)", re.sub(r"√\s+", "√", s.replace("√", " √")))
    s = re.sub(r"([α-ω])([₀-₉]+)", lambda m: f" {_GREEK[m[1]]}_{m[2].translate(_SUB)} ", s)
    s = re.sub(r"([α-ω])_(\w+)", lambda m: f" {_GREEK[m[1]]}_{m[2]} ", s)
    return s.replace("sign(", "sign ("), named


def python(formula: str, names: Mapping[str, str] | None = None, keys: Sequence[str] = ()
           ) -> tuple[str, dict[str, str]]:  # fmt: skip
    """``formula`` as the page types it, as the Python SymPy parses, and the names the
    ``keys`` (symbols as typed: ``β₁``, ``∇L``, ``x``) are read as: each key is one name
    wherever it stands, so ``6xy`` is ``6·x·y`` where ``x`` and ``y`` are keys. ``names``
    renames what is no symbol before it is read (``{"Σ_k": "", "∇J(Θ_k)": "g"}``).

    Raises:
        ValueError: the formula holds what the reader does not take (a sum, a set, words).
    """
    s, named = notation(formula, names, keys)
    py = _python(s)
    if py is None:
        raise ValueError(f"the typed formula {formula!r} holds what the reader does not take")
    return py, named


def expression(formula: str, names: Mapping[str, str] | None = None) -> Any:
    """``formula`` (as the page types it) as a SymPy expression, its symbols named as
    :func:`python` reads them (``α₁`` -> ``alpha_1``, ``x̃`` -> ``x_tilde``).

    Raises:
        ValueError: a form the reader does not take.
    """
    return _parsed(python(formula, names)[0])


def value(formula: str, at: Mapping[str, float], names: Mapping[str, str] | None = None) -> float:
    """``formula`` (as the page types it) evaluated at ``at``, keyed by its symbols as typed
    (``μ``, ``β₁``, ``∇L``) or by the names they are read as (``eta``); ``names`` renames
    what is no symbol (``{"μ_B": "m"}``) before it is read. Compiled once (SymPy's
    ``lambdify``).

    Raises:
        ValueError: the formula is no number at ``at`` (a symbol without a value, a form the
            reader does not take), named.
    """
    try:
        py, named = python(formula, names, tuple(at))
        args, fn = _compiled(py)
        bound = {_GREEK.get(k, k): float(v) for k, v in at.items()}
        bound |= {named[k]: float(v) for k, v in at.items()}
        got = float(fn(*(bound[a] for a in args)))
    except (KeyError, TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
        raise ValueError(f"the typed formula {formula!r} is no number at {dict(at)}") from exc
    if not math.isfinite(got):
        raise ValueError(f"the typed formula {formula!r} is no number at {dict(at)}")
    return got


@functools.cache
def _compiled(py: str) -> tuple[tuple[str, ...], Callable[..., float]]:
    """``py`` parsed: its symbols' names and the expression compiled over them."""
    from sympy import lambdify

    expr = _parsed(py)
    args = tuple(sorted(str(s) for s in expr.free_symbols))
    return args, lambdify(args, expr, "math")


def nearest_wrong(formula: str) -> str:
    """The formula a reader who slipped would type: its first binary ``+`` or ``-`` turned;
    where it has none, its first exponent (a superscript digit) one larger; else its first
    digit one larger; else its first symbol squared.

    Raises:
        ValueError: ``formula`` has no sign, digit or symbol to change.
    """
    sign = re.search(r"(?<=[^\s(+\-])(\s*)([+-])", formula)
    if sign:
        return formula[: sign.start(2)] + "+-"[sign[2] == "+"] + formula[sign.end(2) :]
    up = dict(zip("⁰¹²³⁴⁵⁶⁷⁸012345678", "¹²³⁴⁵⁶⁷⁸⁹123456789", strict=True))
    digit = re.search(r"[⁰¹²³⁴⁵⁶⁷⁸]", formula) or re.search(r"[0-8]", formula)
    if digit:
        return formula[: digit.start()] + up[digit[0]] + formula[digit.end() :]
    letter = re.search(r"[a-zα-ω](?![\w(])", formula)
    if letter:
        return formula[: letter.end()] + "²" + formula[letter.end() :]
    raise ValueError(f"nearest_wrong: {formula!r} has no sign, digit or symbol to change")


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


def points(reference: Callable[..., float], at: Sequence[Mapping[str, float]], *,
           keywords: bool = False) -> Callable[[], Cases]:  # fmt: skip
    """The cases of a reference that is a function of the values: ``reference(values)`` (or
    ``reference(**values)``, ``keywords``) at each of ``at``. Its doc's first paragraph (or
    its name) is what :func:`typed` names it by."""

    def cases() -> Cases:
        return [(b, float(reference(**b) if keywords else reference(b))) for b in at]

    cases.__doc__ = reference.__doc__ or reference.__name__
    return cases


def typed(name: str, said: str, formula: str, cases: Callable[[], Cases], home: str, *,
          shows: str = "", wrong: str = "", opposite: str = "",
          names: Mapping[str, str] | None = None, tol: float = 1e-9) -> Row:  # fmt: skip
    """A claim row for a formula a sentence types: ``formula`` (a part of ``said``, as the page
    types it) is evaluated (:func:`value`) at each case of ``cases()`` -- the values a reference
    computation used and what it computed there (a descentlab optimizer, a torch layer,
    autograd, a simulation; :func:`points` for a reference that is a function of the values)
    -- and so is ``wrong`` (a misconception's formula; :func:`nearest_wrong` where empty); the
    opposite is ``said`` with ``wrong`` in the formula's place (``opposite`` where the
    misconception changes more of the phrase). The run holds when the typed
    formula is within ``tol`` of every reference (:func:`gap`) and the wrong one is off by
    more than ten times ``tol``: a sign, an exponent or an operand changed on the page is ✘
    (neither phrase), and so is a formula the reference refutes. ``shows`` names the
    reference (its doc where empty).

    Raises:
        ValueError: ``formula`` is not part of ``said``.
    """
    part(formula, said)
    wrong = wrong or nearest_wrong(formula)
    what = shows or " ".join((cases.__doc__ or "").strip().split("\n\n")[0].split())

    @_shows(f"{what}: the typed {formula} against {wrong}")
    def demo() -> tuple[bool, str]:
        got = cases()
        try:
            right, off = gap(formula, got, names), gap(wrong, got, names)
        except ValueError as exc:
            return False, str(exc)
        return right <= tol and off > 10 * tol, (
            f"{formula} off by {right:.1e}, {wrong} off by {off:.2g} ({len(got)} cases)"
        )

    demo.typed = (formula, wrong)  # type: ignore[attr-defined]  (read from the phrases)
    return name, said, opposite or said.replace(formula, wrong, 1), demo, home
