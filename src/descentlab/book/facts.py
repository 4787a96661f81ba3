"""One source for each fact: what the book's words, formulas and restatements say about a
number is checked against the number, not only the number itself.

* :func:`relation_words` -- a comparative word between two numbers ("2,400 examples, more
  than the 1,000 the set holds"; "(6 against 2) ... faster than"; "ends lower (A against B)";
  "A, above B"; "falls from A to B"; "A, k times B", "A steps, k times the B", "A is k times
  B"; "A beats B" in a sentence about a loss or an accuracy; "rises monotonically, A to B";
  "still above B after N steps: its ... is A"; "A, below the noise's variance σ² = B") that
  the numbers contradict; :func:`census` sorts the sentences with a direction word and two
  numbers by how their word is held: chosen, read, listed as no relation, or unread.
* :func:`formula_mismatches` -- a formula in backquotes or dollars that states its value
  (```6·1.5² = 13.5```, ``$1 - 1/\\kappa = 0.98$``), evaluated (SymPy) at the numbers its
  text binds (``κ = 50``): an exponent, a sign or two operands changed make it false.
* :func:`identity_mismatches` -- an equation typed between expressions (a derivation's
  step, ```d/dx (2x - 1)³ = 6(2x - 1)²```, ```f_x = 6(x-2)``` of a typed ```f```), its sides
  evaluated as functions: an exponent, a sign or a factor changed makes them differ.
* :func:`wrong_answers` -- the nearest wrong answers of an exercise, generated from every
  line of the arithmetic its code computes: each exponent off by one, each difference and
  quotient swapped, the other formula of a pair; the page's tolerance must refuse them all.
* :func:`restated` -- the same formula stated on two pages with values that differ.
* :class:`SeedLog` -- the seeds a chapter's own seeded functions are called with at run time
  (through any call site: loops, ``range``, helpers): one function called with two seeds and
  otherwise equal arguments is a re-seeded twin.

One source rather than a check, where a page can take it:

* :func:`word` -- the comparative printed beside two numbers, chosen from them;
  :func:`choose` -- a card's ``{{word:a,b,up}}``, the same word where the card types a and b.
* :func:`render_solution` -- a worked solution's ``{{lhs=name}}`` shown as the code's own
  formula for ``name`` at its numbers, typeset by SymPy's ``latex()``; :class:`Formula` -- one
  SymPy expression a chapter typesets and evaluates.
* :class:`Fact`, :func:`cite` -- a result two pages state, in one registry, cited as
  ``{{fact:name}}``; :func:`retyped` finds a formula typed on two pages instead.

Each check returns what it refuses as short strings; the build turns them into checks.

Example:
    >>> relation_words("It needs 2400 examples, fewer than the 1000 the set holds.")
    ['2400 … fewer than … 1000']
    >>> formula_mismatches("the error shrinks by `1 - 0.1·2 = 0.8` a step")
    []
    >>> formula_mismatches("the error shrinks by `1 + 0.1·2 = 0.8` a step")
    ['`1 + 0.1·2 = 0.8`: 1.2, not 0.8']
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import hashlib
import inspect
import itertools
import math
import operator
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from descentlab.book.typed import _GREEK, _NAMES, _SUB, _parsed, _python, expression, notation

if TYPE_CHECKING:
    from descentlab.book.render.pages import Check

__all__ = [
    "CITE",
    "SOLUTION_SLOT",
    "WORD_SLOT",
    "Fact",
    "Formula",
    "SeedLog",
    "bindings",
    "census",
    "choose",
    "cite",
    "evaluate",
    "formula_mismatches",
    "formula_tex",
    "identity_mismatches",
    "relation_words",
    "render_solution",
    "restated",
    "restated_check",
    "retyped",
    "rule_mismatches",
    "seed_signature",
    "seeds_check",
    "statements",
    "text_check",
    "word",
    "wrong_answers",
]

_NUM = r"\d{1,3}(?:,\d{3})+(?![\d.])|\d+(?:\.\d+)?(?:e[-+]?\d+)?"

# ------------------------------------------------------------------------------------------
# words that relate two numbers

#: comparatives a number's size decides: "more than", "fewer than"
_UP = {"more", "larger", "higher", "greater", "bigger", "faster", "steeper"}
_DOWN = {"fewer", "less", "smaller", "lower", "slower", "shallower"}
_QUANTITY = "more|fewer|less|larger|smaller|higher|lower|greater|bigger"
_ANY = "|".join(sorted(_UP | _DOWN))
#: each word's opposite: the pair :func:`word` chooses from
OPPOSITE = {
    "more": "fewer", "larger": "smaller", "higher": "lower", "greater": "less",
    "bigger": "smaller", "faster": "slower", "steeper": "shallower", "above": "below",
    "increases": "decreases", "rises": "falls", "grows": "shrinks", "costs more": "costs less",
    "growing": "shrinking",
}  # fmt: skip
OPPOSITE.update({v: k for k, v in list(OPPOSITE.items())})
_RISE = {"increases", "rises", "grows", "climbs", "increased", "rose", "grew", "increasing",
         "rising", "growing", "climbing"}  # fmt: skip
_FALL = {"decreases", "falls", "shrinks", "drops", "decays", "decreased", "fell", "dropped",
         "decreasing", "falling", "shrinking", "dropping", "decaying"}  # fmt: skip


def word(a: float, b: float, up: str) -> str:
    """The comparative of ``a`` to ``b``: ``up`` ("faster", "more", "above", "costs more")
    when ``a`` is the larger, its opposite (:data:`OPPOSITE`) when it is the smaller -- the
    word a page prints beside two numbers, chosen from them as the numbers are computed.

    Raises:
        ValueError: ``a`` equals ``b`` (neither word is true), or ``up`` has no opposite.

    Example:
        >>> word(6, 2, "faster"), word(0.02, 0.05, "higher"), word(3, 1, "below")
        ('faster', 'lower', 'above')
    """
    if up not in OPPOSITE:
        raise ValueError(f"word: up must be one of {sorted(OPPOSITE)}, got {up!r}")
    if a == b:
        raise ValueError(f"word: a and b are equal ({a!r}): neither {up!r} nor {OPPOSITE[up]!r}")
    ups = {"more", "larger", "higher", "greater", "bigger", "faster", "steeper", "above",
           "increases", "rises", "grows", "costs more", "growing"}  # fmt: skip
    big = up if up in ups else OPPOSITE[up]
    return big if a > b else OPPOSITE[big]


#: "A ..., <word> than ... B": the last number before the word, the first after "than"
_BETWEEN = r"(?:(?!\b(?:when|if|where|while|as|for|at|with|by)\b)[^\d.;:$`]){0,40}?"
_THAN = re.compile(
    rf"(?P<a>{_NUM})(?P<mid>{_BETWEEN})\b(?P<w>{_QUANTITY})\s+than\b(?P<gap>{_BETWEEN})"
    rf"(?P<b>{_NUM})"
)
#: "(A against B) ... <word> than": the first of two quantities set side by side, to the second
_AGAINST = re.compile(rf"\((?P<a>{_NUM}) against (?P<b>{_NUM})\)[^.;]*?\b(?P<w>{_ANY})\s+than\b")
#: "<word> (A against B)": "the shorter memory ends lower (0.1 against 0.2)"
_WORD_AGAINST = re.compile(
    rf"\b(?P<w>{_ANY}|above|below)\b(?:\s+than\s+\w+)?[^.;:()\d]{{0,40}}"
    rf"\((?P<a>{_NUM})\s+against\s+(?P<b>{_NUM})\)"
)
#: "A, above/below B": "ends at 0.31, above the 0.25 it started from" (a value, then a comma)
_ABOVE = re.compile(
    rf"(?P<a>{_NUM})(?P<mid>(?:\s+[a-z]+){{0,2}}),\s+(?:well\s+|far\s+|still\s+)?(?P<w>above|below)\s+"
    rf"(?P<gap>(?:the|its|their)?[^\d.;:$`=]{{0,30}}?)(?P<b>{_NUM})(?!\s*%)"
)
#: "rises from A to B", "falls from A at B = 1 to B at B = 64": the direction of a change
_FROM_TO = re.compile(
    rf"\b(?P<w>{'|'.join(sorted(_RISE | _FALL))})\s+from\s+(?P<a>{_NUM})"
    rf"(?:\s+at\s+[\w =.]{{1,20}}?)?\s+to\s+(?P<b>{_NUM})"
)
#: "rises monotonically, A to B": a direction, then the two ends of the change after a comma
_TO = re.compile(
    rf"\b(?P<w>{'|'.join(sorted(_RISE | _FALL))})(?:\s+(?:monotonically|steadily|throughout))?,"
    rf"\s+(?P<a>{_NUM})\s+to\s+(?P<b>{_NUM})"
)
#: "still above B after N steps: its gradient norm is A": where a run still is, then its value
_STILL = re.compile(
    rf"\bstill\s+(?P<w>above|below)\s+(?P<b>{_NUM})\s+after\s+(?:{_NUM})\s+[a-z]+:\s+"
    rf"its\s+[^\d.;:$`]{{0,40}}?\b(?:is|was)\s+(?P<a>{_NUM})"
)
#: "A at degree 12, below the noise's variance $\sigma^2$ = B", "A on average, below σ² = B": a
#: value beside a named quantity whose value the sentence states after its name and "="
_NAMED = re.compile(
    rf"(?P<a>{_NUM})(?P<mid>\s+at\s+[a-zα-ω]+(?:\s*=)?\s+(?:{_NUM})|(?:\s+[a-z]+){{0,2}}),\s+"
    rf"(?:still\s+)?(?P<w>above|below)\s+(?P<gap>(?:the\s+[^\d.;:$`=,]{{0,40}}?)?)"
    rf"(?:\$[^$]{{1,20}}\$\s*|[α-ω][²₀-₉]?\s*)?=\s*"
    rf"(?P<b>{_NUM})(?!\s*%)"
)
#: a card's or a page's word slot: ``{{word:6,2,faster}}`` prints :func:`word` of 6 and 2
WORD_SLOT = re.compile(rf"\{{\{{word:\s*({_NUM})\s*,\s*({_NUM})\s*,\s*([a-z ]+?)\s*\}}\}}")


def choose(text: str) -> str:
    """``text`` with each ``{{word:a,b,up}}`` replaced by :func:`word` of ``a`` and ``b``:
    a card's comparative chosen from the numbers it relates, where the card types them.

    Example:
        >>> choose("6 against 2: it shrinks {{word:6,2,slower}}")
        '6 against 2: it shrinks faster'
    """
    return WORD_SLOT.sub(lambda m: word(_number(m[1]), _number(m[2]), m[3]), text)


#: the units a count may carry between it and "k times": "1,380 steps, 10 times the 138"
_UNITS = "steps|runs|examples|weights|epochs|parameters|features|iterations|evaluations"
#: "A, k times B" / "A is k times larger than B" / "A (k times B)": the factor times B
#: must give A; a count may carry a scale, "37.7 M weights, 16 times the 2.3 M", each side its own
_TIMES = re.compile(
    rf"(?P<a>{_NUM})(?:\s+(?P<sa>[kMB]))?(?:(?:\s+(?:{_UNITS}))?,\s+|\s+(?:is|are|was|were)\s+|\s+\()"
    rf"(?:(?:about|still|roughly|nearly)\s+)?(?P<k>{_NUM})\s*(?:times|×)\s+(?P<w>(?:{_ANY})\s+than\s+|the\s+)?"
    rf"(?P<gap>[^\d.;:$`=,]{{0,25}}?)(?P<b>{_NUM})(?!\d|\.\d)(?:\s+(?P<sb>[kMB])\b)?"
)
#: "A beats B": which wins is the sentence's measure -- lower for a loss or an error, higher
#: for an accuracy (a sentence that names neither, or both, is not read)
_BEATS = re.compile(
    rf"(?P<a>{_NUM})(?P<mid>[^\d.;:$`]{{0,30}}?)\b(?P<w>beats?|beaten by)\b"
    rf"(?P<gap>[^\d.;:$`]{{0,40}}?)(?P<b>{_NUM})(?!\d|\.\d)"
)
#: the scales a count may carry: "37.7 M"
_SCALE = {"k": 1e3, "M": 1e6, "B": 1e9}
_SENTENCE = re.compile(r"(?<=[.;!?])\s+|\n\s*\n")
_RELATIONS = (_THAN, _AGAINST, _WORD_AGAINST, _ABOVE, _FROM_TO, _TO, _STILL, _NAMED, _TIMES, _BEATS)


#: a word that says which way two numbers lie: a comparative, a side, a direction of change
_DIRECTION = re.compile(
    r"\b(?:more|fewer|less|larger|smaller|higher|lower|greater|bigger|faster|slower|steeper|"
    r"shallower|above|below|beats?|beaten|(?:in|de)creas(?:es|ed|ing)|ris(?:es|ing)|rose|"
    r"fall(?:s|ing)?|fell|grow(?:s|ing)?|grew|shrink(?:s|ing)?|drop(?:s|ped|ping)?|"
    r"climb(?:s|ing)?)\b"
)
#: what holds no number a sentence relates: code in backquotes, formulas in dollars
_CODE = re.compile(r"`[^`]*`|\$\$.+?\$\$|\$[^$]+\$", re.DOTALL)


def census(
    text: str, listed: Mapping[str, str] | None = None, checked: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """Each sentence of ``text`` with a direction word (:data:`_DIRECTION`) and two numbers
    outside code and formulas, with how its word is held to the numbers: ``"chosen"`` (a
    ``{{word:a,b,up}}`` slot, :func:`choose`), ``"read"`` (a relation shape of
    :func:`relation_words` reads it, or it holds a phrase of ``checked``, the sentences a
    chapter's check row reads, :func:`~descentlab.book.checks.said`), ``"listed"`` (it holds a
    phrase of ``listed``, the sentences that relate none of their numbers, each with why) or
    ``"unread"``.

    Example:
        >>> census("It falls from 2 to 1. Item 3 shows it below, 4 steps on. A 2 kg cat.")
        [('It falls from 2 to 1.', 'read'), ('Item 3 shows it below, 4 steps on.', 'unread')]
    """
    out = []
    for sentence in _SENTENCE.split(text):
        plain = _CODE.sub(" ", sentence)
        if not _DIRECTION.search(plain) or len(re.findall(_NUM, plain)) < 2:
            continue
        said = " ".join(sentence.split())
        if WORD_SLOT.search(sentence):
            how = "chosen"
        elif any(p.search(sentence) for p in _RELATIONS) or any(
            phrase in said for phrase in checked or {}
        ):
            how = "read"
        elif any(phrase in said for phrase in listed or {}):
            how = "listed"
        else:
            how = "unread"
        out.append((said, how))
    return out


def _number(token: str) -> float:
    return float(token.replace(",", ""))


def relation_words(text: str) -> list[str]:
    """The comparatives of ``text`` that its numbers contradict: ``"A … fewer than … B"`` where
    A is not below B (a factor, "100 times smaller than", is not a quantity compared and is
    left alone)."""
    out = []
    for sentence in _SENTENCE.split(text):
        for pattern in _RELATIONS:
            for m in pattern.finditer(sentence):
                if re.search(r"\btimes\b|×|fold\b", m.groupdict().get("mid") or ""):
                    continue
                bad = _contradicted(pattern, m)
                if bad:
                    out.append(bad)
    return out


def _contradicted(pattern: re.Pattern[str], m: re.Match[str]) -> str | None:
    """What the match ``m`` of ``pattern`` says that its numbers contradict, or None."""
    a, b, w = _number(m["a"]), _number(m["b"]), m["w"]
    if pattern is _TIMES:
        k = _number(m["k"])
        sa, sb = _SCALE.get(m["sa"] or "", 1.0), _SCALE.get(m["sb"] or "", 1.0)
        a, b = a * sa, b * sb
        # "k times smaller than B": A = B/k; otherwise A = k·B, to the digits shown
        want = b / k if re.match(rf"(?:{'|'.join(_DOWN)})\b", w or "") else k * b
        half = _half_unit(m["a"]) * sa + abs(want) * _half_unit(m["k"]) / max(k, 1e-300)
        if abs(a - want) > 1.0001 * half + _half_unit(m["b"]) * sb * max(k, 1 / max(k, 1e-300)):
            said = f"{m['a']} … {m['k']} times {(w or '').strip()} … {m['b']}"
            return f"{said}: {want / sa:.4g}".replace("  ", " ")
        return None
    if pattern is _BEATS:
        lower = bool(re.search(r"\b(?:loss|losses|error|errors)\b", m.string))
        higher = bool(re.search(r"\baccurac(?:y|ies)\b", m.string))
        if lower == higher or a == b:
            return None
        first_wins = w != "beaten by"
        if first_wins == ((a < b) if lower else (a > b)):
            return None
        return f"{m['a']} … {w} … {m['b']} ({'lower' if lower else 'higher'} wins)"
    if pattern in (_FROM_TO, _TO):
        up = w in _RISE
        said = "from " if pattern is _FROM_TO else "… "
        return None if a == b or up == (b > a) else f"{w} {said}{m['a']} to {m['b']}"
    up = w in _UP or w == "above"
    if a == b or up == (a > b):
        return None
    joiner = " than" if pattern in (_THAN, _AGAINST) else ""
    return f"{m['a']} … {w}{joiner} … {m['b']}"


# ------------------------------------------------------------------------------------------
# formulas evaluated at the page's numbers


def evaluate(expr: str, bound: Mapping[str, float] | None = None) -> float | None:
    """``expr``'s value at ``bound`` (symbol -> number; ``κ`` or ``kappa``), or None where it
    is no number there (a free symbol left, a form this reader does not take).

    Example:
        >>> evaluate("⌊(224 + 2·3 - 7)/2⌋ + 1"), evaluate("1 - 1/κ", {"κ": 50})
        (112.0, 0.98)
        >>> evaluate("\\\\frac{\\\\kappa - 1}{\\\\kappa + 1}", {"κ": 9}), evaluate("Σ 1/t")
        (0.8, None)
    """
    py = _python(notation(expr)[0])
    if py is None:
        return None
    words = set(re.findall(r"[A-Za-z_]\w*", py)) - _NAMES
    names = {_GREEK.get(k, k): v for k, v in (bound or {}).items()}
    if any(w not in names and not re.fullmatch(r"e\d*", w) for w in words):
        return None
    try:
        value = _parsed(py).subs(names)
        out = float(value)
    except Exception:  # (a form SymPy reads otherwise, or no number: not this reader's)
        return None
    return out if math.isfinite(out) else None


#: a symbol bound to a number in the text: ``κ = 50``, ``x = 1.25``, ``lr 0.1`` is not one
_BINDING = re.compile(
    rf"(?<![\w/])([A-Za-zα-ω](?:[₀-₉]|_\w)?)\s*=\s*(-?(?:{_NUM}))"
    r"(?![\w.(·×*/^⁰¹²³⁴⁵⁶⁷⁸⁹⁻]|\s*[-+·×*/^]\s*[\w(])"
)


def bindings(text: str) -> dict[str, float]:
    """The symbols ``text`` sets to a number (``κ = 50``), each to its first value (a symbol
    set to two values is left out: which one a formula means is not known)."""
    seen: dict[str, set[float]] = defaultdict(set)
    for m in _BINDING.finditer(text):
        seen[m[1].translate(_SUB)].add(_number(m[2].lstrip("-")) * (-1 if m[2][0] == "-" else 1))
    return {k: next(iter(v)) for k, v in seen.items() if len(v) == 1}


#: a formula in backquotes or dollars
_FORMULA = re.compile(r"`([^`]+)`|\$\$(.+?)\$\$|\$([^$]+)\$", re.DOTALL)
_LITERAL = re.compile(rf"-?(?:{_NUM})")
#: a symbol alone: ``β₁``, ``lr``, ``\\eta_t``, ``x_{10}``
_BARE = re.compile(r"\\?[A-Za-zα-ωΑ-Ω]+[₀-₉]*(?:_\{?\w+\}?)?")


def _half_unit(token: str) -> float:
    """Half a unit in the last digit ``token`` shows."""
    mantissa, _, exponent = token.replace(",", "").partition("e")
    shown = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return 0.5 * 10.0 ** (int(exponent or 0) - shown)


def statements(text: str) -> Iterator[tuple[str, str, str, float, float]]:
    """Each ``lhs = value`` (or ``≈``) a formula of ``text`` states, its value a number or a
    formula of numbers (``π²/6``): ``(formula, lhs, value as shown, value, half a unit of what
    it shows)``; a chain ``a = b = 13.5`` states each of its sides."""
    for m in _FORMULA.finditer(text):
        formula = next(g for g in m.groups() if g is not None)
        sides = [s.strip().rstrip(",.:;") for s in re.split(r"=|≈|\\approx\b", formula)]
        if len(sides) < 2:
            continue
        last = sides[-1]
        if _LITERAL.fullmatch(last):
            sign = -1.0 if last.startswith("-") else 1.0
            value, half = sign * _number(last.lstrip("-")), _half_unit(last.lstrip("-"))
        else:
            got = evaluate(last) if re.search(r"\d", last) else None
            if got is None:
                continue
            value, half = got, 1e-9 * max(abs(got), 1.0)
        for lhs in sides[:-1]:
            # (a bare symbol, ``β = 0.9``, is a setting: pages set it to what they need)
            if lhs and not _LITERAL.fullmatch(lhs) and not _BARE.fullmatch(lhs):
                yield formula, lhs, last, value, half


def formula_mismatches(text: str, context: str = "") -> list[str]:
    """The formulas of ``text`` whose stated value is not what they evaluate to, to the digits
    the value shows, at the numbers ``text`` and ``context`` bind (:func:`bindings`)."""
    bound = bindings(context + "\n" + text)
    out = []
    for formula, lhs, shown, want, half in statements(text):
        got = evaluate(lhs, bound)
        if got is not None and abs(got - want) > 1.0001 * half + 1e-12 * abs(want):
            out.append(f"`{formula.strip()}`: {got:.6g}, not {shown}")
    return out


def _key(lhs: str) -> str:
    """A formula's left side, TeX and unicode alike: ``\\sum_t 1/t^2`` and ``Σ 1/t²``."""
    key = re.sub(r"\s+|\\[,;!]|[$_{}]|\\(?=\w)", "", lhs)
    key = key.replace("sum", "Σ").replace("^2", "²").replace("^", "")
    return re.sub(r"Σt", "Σ", key)


def restated(pages: Mapping[str, str]) -> list[str]:
    """The formulas two pages (name -> text) state with values that differ beyond the digits
    shown: the same left-hand side at the same bound numbers, ``Σ 1/t² = π²/6`` on one page
    and ``Σ 1/t² = 1.5`` on another."""
    said: dict[tuple[str, tuple], list[tuple[str, str, float, float]]] = defaultdict(list)
    for page, text in pages.items():
        bound = bindings(text)
        for _, lhs, shown, value, half in statements(text):
            free = tuple(sorted((k, v) for k, v in bound.items() if k in lhs))
            said[(_key(lhs), free)].append((page, shown, value, half))
    out = []
    for (key, _), where in said.items():
        if len({p for p, *_ in where}) < 2:
            continue
        lo, hi = min(where, key=lambda w: w[2]), max(where, key=lambda w: w[2])
        if hi[2] - lo[2] > 1.0001 * (lo[3] + hi[3]):
            shown = ", ".join(f"{v} ({p})" for p, v, *_ in where)
            out.append(f"{key}: {shown}")
    return out


# ------------------------------------------------------------------------------------------
# formulas rendered from what is computed

#: a slot of a worked solution: ``{{lhs=name}}`` shows the code's formula for ``name`` at its
#: numbers, and its value (``lhs`` may be empty)
SOLUTION_SLOT = re.compile(r"\{\{((?:[^{}=]|\{[^{}]*\})*)=(\w+)\}\}")


def _at_numbers(node: ast.expr, namespace: Mapping[str, Any]) -> ast.expr:
    """``node`` with each name a number of ``namespace`` replaced by the number (six
    significant digits, as a page shows it) and each ``x ** 0.5`` written ``sqrt(x)``."""

    class _Numbers(ast.NodeTransformer):
        def visit_Name(self, n: ast.Name) -> ast.AST:
            v = namespace.get(n.id)
            if isinstance(v, int | float) and not isinstance(v, bool):
                return ast.Constant(v if isinstance(v, int) else float(f"{v:.6g}"))
            return n

        def visit_BinOp(self, n: ast.BinOp) -> ast.AST:
            self.generic_visit(n)
            if (
                isinstance(n.op, ast.Pow)
                and isinstance(n.right, ast.Constant)
                and n.right.value == 0.5
            ):
                return ast.Call(ast.Name("sqrt", ast.Load()), [n.left], [])
            return n

    return ast.fix_missing_locations(_Numbers().visit(copy.deepcopy(node)))


def formula_tex(code: str, name: str, namespace: Mapping[str, Any]) -> str:
    """The TeX of the formula ``code`` computes ``name`` by (its last ``name = …``), each name
    in it replaced by its number in ``namespace`` (the code's, after it ran): SymPy's
    ``latex()`` of the expression the code evaluates, unevaluated.

    Raises:
        ValueError: ``code`` assigns no ``name``, or its formula is no expression SymPy reads.

    Example:
        >>> print(formula_tex("inner = 2 * 1.25 - 1\\nanswer = 6 * inner ** 2", "answer",
        ...                   {"inner": 1.5}))
        6 \\cdot {1.5}^{2}
    """
    from sympy import latex
    from sympy.parsing.sympy_parser import parse_expr

    values = {}
    for n in ast.parse(code).body:
        if isinstance(n, ast.Assign) and len(n.targets) == 1:
            t = n.targets[0]
            if isinstance(t, ast.Name):
                values[t.id] = n.value
            elif isinstance(t, ast.Tuple) and isinstance(n.value, ast.Tuple):
                values.update(zip((e.id for e in t.elts if isinstance(e, ast.Name)),
                                  n.value.elts, strict=False))  # fmt: skip
    if name not in values:
        raise ValueError(f"formula_tex: the code assigns no {name!r}")
    src = ast.unparse(_at_numbers(values[name], namespace)).replace("math.", "")
    try:
        expr = parse_expr(src, evaluate=False)
    except Exception as exc:  # (SymPy's parser raises its own errors and Python's alike)
        raise ValueError(f"formula_tex: {name} = {src} is no expression SymPy reads") from exc
    return latex(expr, order="none", mul_symbol="dot")


def render_solution(solution: str, code: str, namespace: Mapping[str, Any]) -> str:
    """``solution`` with each ``{{lhs=name}}`` replaced by ``$lhs = <the code's formula for
    name, at its numbers> = <its value>$``: the formula a worked solution shows is the one the
    code computes, so an exponent or an operand in the text cannot differ from the code's.

    Raises:
        ValueError: a slot names a value the code did not compute as a number.
    """

    def one(m: re.Match[str]) -> str:
        lhs, name = m[1].strip(), m[2]
        value = namespace.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"render_solution: {{{{{m[1]}={name}}}}} names no number of the code")
        shown = f"{value:.6g}"
        return "$" + " = ".join([*([lhs] if lhs else []), formula_tex(code, name, namespace),
                                 shown]) + "$"  # fmt: skip

    return SOLUTION_SLOT.sub(one, solution)


#: the names a :class:`Formula` reads as SymPy's functions, every other one a symbol
_FUNCTIONS = frozenset({"sqrt", "exp", "log", "Abs", "sin", "cos", "pi", "Eq", "Sum", "floor",
                        "ceiling", "Min", "Max"})  # fmt: skip
#: a relation's operator, as SymPy names it, as a test on two numbers
_HOLDS = {"==": operator.eq, "<=": operator.le, "<": operator.lt, ">=": operator.ge,
          ">": operator.gt}  # fmt: skip


class Formula:
    """A formula a page shows and a check evaluates, one SymPy expression for both: ``tex``
    is its ``latex()``, calling it evaluates it at the numbers given; the page's text cannot
    differ from what is computed. Parsed on first use (SymPy loads only when a page needs it).

    Example:
        >>> rate = Formula("(kappa - 1)/(kappa + 1)")
        >>> print(rate.tex, rate(kappa=9))
        \\frac{\\kappa - 1}{\\kappa + 1} 0.8
    """

    def __init__(self, source: str, names: Mapping[str, str] | None = None) -> None:
        #: ``names``: the TeX a symbol is shown as (``{"w_prev": "w_{t-1}"}``), where its
        #: Python name is not it
        self.source, self.names = source, dict(names or {})

    def _parse(self, evaluate: bool) -> Any:
        """The expression, every name but SymPy's functions a symbol (``beta``, ``gamma``
        and ``lambda`` are SymPy's functions and Python's keyword otherwise)."""
        from sympy import IndexedBase, Symbol
        from sympy.parsing.sympy_parser import parse_expr

        local = {n: Symbol(n) for n in re.findall(r"[A-Za-z_]\w*", self.source)
                 if n not in _FUNCTIONS}  # fmt: skip
        # a name indexed, ``g[t - k]``, is a sequence (a sum's terms: SymPy's IndexedBase)
        local |= {n: IndexedBase(n) for n in re.findall(r"([A-Za-z_]\w*)\[", self.source)}
        return parse_expr(self.source, local_dict=local, evaluate=evaluate)

    @functools.cached_property
    def expr(self) -> Any:
        return self._parse(True)

    @functools.cached_property
    def tex(self) -> str:
        """SymPy's ``latex()`` of the expression in the order it is written (unevaluated)."""
        from sympy import Symbol, latex

        names = {Symbol(k): v for k, v in self.names.items()}
        return latex(self._parse(False), order="none", symbol_names=names)

    def tex_at(self, **values: float) -> str:
        """The TeX of the formula with ``values`` put in and simplified as SymPy evaluates:
        ``z^2 - (1 + β)(1 - ηλ)z + β(1 - ηλ)`` at ηλ = 1 is ``z^{2}``."""
        from sympy import Symbol, latex, nsimplify

        at = {Symbol(k): nsimplify(v) for k, v in values.items()}
        names = {Symbol(k): v for k, v in self.names.items()}
        return latex(self.expr.subs(at), symbol_names=names)

    @functools.cached_property
    def _names(self) -> tuple[str, ...]:
        from sympy import Symbol

        # (a sequence's terms, ``g[t - k]``, are read through its name, ``g``: a list)
        free = self._parse(False).free_symbols
        return tuple(sorted(str(s) for s in free if isinstance(s, Symbol)))

    @functools.cached_property
    def _fn(self) -> Any:
        from sympy import lambdify, symbols

        return lambdify(symbols(self._names) if self._names else [], self.expr, "math")

    def _values(self, values: Mapping[str, float]) -> list[float]:
        missing = [n for n in self._names if n not in values]
        if missing:
            raise ValueError(f"Formula {self.source!r}: no value for {', '.join(missing)}")
        return [values[n] for n in self._names]

    def __call__(self, **values: float) -> float:
        """The formula's value at ``values`` (symbol name -> number), the expression compiled
        once (SymPy's ``lambdify``) so a check may evaluate it at every step of a run.

        Raises:
            ValueError: a symbol of the formula without a value (named), or the formula is
                a relation (:meth:`sides` and :meth:`holds` evaluate one).
        """
        if self._relation is not None:
            raise ValueError(f"Formula {self.source!r} is a relation: evaluate its sides")
        return float(self._fn(*self._values(values)))

    @functools.cached_property
    def _relation(self) -> Any:
        """The relation as written (``Eq(a, b)``, ``a <= b``), or None for an expression."""
        from sympy.core.relational import Relational

        rel = self._parse(False)
        return rel if isinstance(rel, Relational) else None

    @functools.cached_property
    def _side_fns(self) -> tuple[Any, Any]:
        from sympy import lambdify, symbols

        if self._relation is None:
            raise ValueError(f"Formula {self.source!r} is no relation: it has no sides")
        args = symbols(self._names) if self._names else []
        return tuple(lambdify(args, side, "math") for side in self._relation.args[:2])

    def sides(self, **values: float) -> tuple[float, float]:
        """A relation's (``Eq(eta*b_t, w_p - w_t)``, ``f_t <= f_0 + c*t*s``) two sides'
        values at ``values``, each evaluated as written (a check compares them to its
        tolerance).

        Raises:
            ValueError: the formula is no relation, or a symbol has no value (named).
        """
        at = self._values(values)
        return float(self._side_fns[0](*at)), float(self._side_fns[1](*at))

    def holds(self, **values: float) -> bool:
        """Whether the relation holds at ``values`` (``==`` exactly: a check that allows for
        rounding compares :meth:`sides`)."""
        return bool(_HOLDS[self._relation.rel_op](*self.sides(**values)))

    def coefficients(self, var: str, **values: float) -> list[float]:
        """The formula as a polynomial in ``var``: its coefficients, highest power first,
        each evaluated at ``values`` (``numpy.roots`` takes them as they come).

        Example:
            >>> Formula("z**2 - (1 + beta)*z + beta").coefficients("z", beta=0.5)
            [1.0, -1.5, 0.5]
        """
        fns = self._coefficient_fns(var)
        at = self._values({var: 0.0, **values})
        return [float(f(*at)) for f in fns]

    @functools.cache  # noqa: B019 (a Formula is a module constant: kept for the build)
    def _coefficient_fns(self, var: str) -> list[Any]:
        from sympy import Poly, Symbol, lambdify, symbols

        args = symbols(self._names) if self._names else []
        return [lambdify(args, c, "math") for c in Poly(self.expr, Symbol(var)).all_coeffs()]


# ------------------------------------------------------------------------------------------
# update rules typed in a text, evaluated

#: a rule typed in backquotes: ``v ← β₂v + (1-β₂)g²``
_RULE = re.compile(r"`\s*([A-Za-zα-ω])\s*←\s*([^`]+)`")
#: a gradient, as the texts write it: ``∇L(w)``, ``∇f``, ``f'(x)``, ``∂L/∂W`` (its argument,
#: where it has one, must be one variable: ``∇L(W + βv)`` is not read)
_GRAD = re.compile(r"(?:∇[Lf]|∂L/∂W|f')(?:\((?P<at>[^()]*)\))?")
#: the values a typed rule and a rule of the book are compared at: no two alike, none 0.5
_AT = (0.37, 0.61, 0.23, 0.71, 1.3, 0.17)


def _typed_rule(lhs: str, rhs: str) -> Any:
    """A typed rule's right side as a SymPy expression, its variable renamed ``x`` and the
    gradient ``g``; None where it holds what this reader does not take (a sum, a gradient at
    another point)."""
    bad = [m for m in _GRAD.finditer(rhs) if m["at"] is not None and not _BARE.fullmatch(m["at"])]
    if bad:
        return None
    try:
        expr = expression(_GRAD.sub(" g ", rhs).replace("⊙", "·"))
    except Exception:  # (a form SymPy reads otherwise: not this reader's)
        return None
    from sympy import Symbol

    name = _GREEK.get(lhs, lhs)
    return expr.subs(Symbol(name), Symbol("x_")) if Symbol(name) in expr.free_symbols else None


def _same_rule(typed: Any, rule: Formula) -> bool:
    """Whether ``typed`` (``x_`` the variable, ``g`` the gradient) is ``rule`` (``x`` and
    ``g``) under some renaming of their other letters, at the values :data:`_AT`."""
    from sympy import Symbol

    names = sorted(set(rule._names) - {"x", "g"})
    mine = sorted(str(v) for v in typed.free_symbols - {Symbol("x_"), Symbol("g")})
    if len(mine) != len(names) or ("g" in rule._names) != (Symbol("g") in typed.free_symbols):
        return False
    values = dict(zip(names, _AT[2:], strict=False)) | {"x": _AT[0], "g": _AT[1]}
    want = rule(**values)
    for order in itertools.permutations(names):
        at = {Symbol(a): values[b] for a, b in zip(mine, order, strict=True)}
        at |= {Symbol("x_"): _AT[0], Symbol("g"): _AT[1]}
        try:
            got = float(typed.subs(at))
        except (TypeError, ValueError):
            return False
        if abs(got - want) <= 1e-12 * max(abs(want), 1.0):
            return True
    return False


def rule_mismatches(
    text: str,
    stated: Sequence[tuple[str, Formula]],
    book: Mapping[str, Formula] | None = None,
    accepted: list[str] | None = None,
) -> tuple[int, list[str]]:
    """The update rules ``text`` types (```v ← β₂v + (1-β₂)g²```) that are not the rule
    ``text`` states there: the i-th rule read must be ``stated[i]`` (name, Formula: the
    variable ``x``, the gradient ``g``) under some renaming of its other letters, evaluated at
    the same values, so an exponent, a sign or two operands changed, or another rule of the
    book in its place, are refused (``book`` names the rule it is instead). Returns how many
    were read, and the refused ones; ``accepted``, where given, gets each rule read and
    accepted, as typed (the sentence holding it is bound: :mod:`descentlab.book.teaching`).

    Example:
        >>> avg, acc = Formula("a*x + (1 - a)*g**2"), Formula("x + g**2")
        >>> rule_mismatches("`r ← ρr + (1-ρ) g⊙g` and `G ← γG + (1-γ)g³`",
        ...                 [("average", avg), ("average", avg)])[1]
        ['`G ← γG + (1-γ)g³`: not average, the rule it states']
        >>> rule_mismatches("`r ← r + g⊙g`", [("average", avg)], {"sum": acc})[1]
        ['`r ← r + g⊙g`: not average, the rule it states (it is sum)']
    """
    read, bad = 0, []
    for m in _RULE.finditer(text):
        typed = _typed_rule(m[1], m[2])
        if typed is None:
            continue
        read += 1
        if read > len(stated):
            bad.append(f"{m[0]}: a rule its text states none of (the table names {len(stated)})")
            continue
        name, rule = stated[read - 1]
        if not _same_rule(typed, rule):
            other = [k for k, f in (book or {}).items() if k != name and _same_rule(typed, f)]
            bad.append(f"{m[0]}: not {name}, the rule it states"
                       + (f" (it is {other[0]})" if other else ""))  # fmt: skip
        elif accepted is not None:
            accepted.append(m[0])
    bad += [f"{name}: stated, not typed" for name, _ in stated[read:]]
    return read, bad


# ------------------------------------------------------------------------------------------
# equations typed in a text, their sides compared as functions

#: a side that differentiates: ``d/dx E``; ``f'`` or ``f'(u)`` and ``f_x`` of a name the text
#: defines (``f = u³``): the derivative in its one variable, or the partial in ``x``
_DDX = re.compile(r"d/d([a-z])\s*(.+)")
_PRIME = re.compile(r"([A-Za-z])'(?:\(([a-z])\))?")
_PARTIAL = re.compile(r"([A-Za-z])_([a-z])")
#: a definition typed alone in its quotes: ``f = u³``, ``u = 2x - 1``
_DEFINES = re.compile(r"([A-Za-z])\s*=\s*([^=≈<>≤≥←]+)")


def _side(side: str, defined: Mapping[str, Any]) -> tuple[Any, bool] | None:
    """A typed equation's side as a SymPy expression, and whether it is a derivative; None
    where this reader does not take it (a name alone, a vector, an expectation, words)."""
    from sympy import Symbol

    side = side.strip().rstrip(",.:;")
    if m := _DDX.fullmatch(side):
        inner = _side(m[2], defined)
        return None if inner is None else (inner[0].diff(Symbol(m[1])), True)
    m = _PRIME.fullmatch(side) or _PARTIAL.fullmatch(side)
    if m is not None and m[1] in defined:
        f = defined[m[1]]
        free = sorted(f.free_symbols, key=str)
        var = Symbol(m[2]) if m[2] else free[0] if len(free) == 1 else None
        return None if var is None or var not in free else (f.diff(var), True)
    py = None if _BARE.fullmatch(side) else _python(notation(side)[0])
    try:
        expr = None if py is None else _parsed(py)
    except Exception:  # (a form SymPy reads otherwise: not this reader's)
        return None
    return (expr, False) if hasattr(expr, "free_symbols") else None


def _differ(a: Any, b: Any) -> str:
    """Where two expressions of the same variables differ (at two points), or ``""``."""
    names = sorted(a.free_symbols | b.free_symbols, key=str)
    for shift in (0.0, 0.9):
        at = {s: v + shift for s, v in zip(names, _AT, strict=False)}
        try:
            x, y = complex(a.subs(at)), complex(b.subs(at))
        except (TypeError, ValueError):
            return ""
        if abs(x - y) > 1e-9 * max(abs(x), abs(y), 1.0):
            shown = ", ".join(f"{k} = {v:g}" for k, v in at.items())
            return f"at {shown or 'any point'}: {x.real:.6g} against {y.real:.6g}"
    return ""


def identity_mismatches(text: str, context: str = "") -> tuple[int, list[str]]:
    """The equations ``text`` types whose sides are not one function: in ``` `d/dx (2x - 1)³ =
    6(2x - 1)²` ```, ``` `f'(u) = 3u²` ``` (``f`` defined as ``` `f = u³` ``` in ``text`` or
    ``context``), ``` `f_x = 6(x-2)` ```, ``` `x² - 4x + 6 = (x - 2)² + 2` ``` every two sides in
    the same variables are evaluated at two points and must agree (a derivative's constant
    side too: ``` `u' = 2` ```). A side in no variable beside one in some is a condition, not
    compared (``` `2x - 4 = 0` ```); a name alone is a definition or a setting. Returns how many
    equations were read, and the refused ones.

    Example:
        >>> identity_mismatches("`f = u³`: `f'(u) = 3u²`, `(x + 1)² = x² + 2x + 1`")
        (2, [])
        >>> identity_mismatches("`d/dx (2x - 1)³ = 6(2x - 1)³`")[1][0][:42]
        '`d/dx (2x - 1)³ = 6(2x - 1)³`: its sides d'
    """
    defined: dict[str, Any] = {}
    for m in _FORMULA.finditer(context + "\n" + text):
        d = _DEFINES.fullmatch(next(g for g in m.groups() if g is not None).strip())
        side = _side(d[2], defined) if d is not None else None
        if side is not None and side[0].free_symbols and d[1] not in defined:
            defined[d[1]] = side[0]
    read, bad = 0, []
    for m in _FORMULA.finditer(text):
        formula = next(g for g in m.groups() if g is not None).strip()
        if re.search(r"[≈<>≤≥←]|\\approx", formula) or _DEFINES.fullmatch(formula):
            continue
        sides = [s for s in (_side(p, defined) for p in formula.split("=")) if s is not None]
        known = [s for s in sides if s[1]] or [s for s in sides if s[0].free_symbols]
        if not known:
            continue
        group = [e for e, _ in sides if e.free_symbols == known[0][0].free_symbols]
        if len(group) < 2:
            continue
        read += 1
        for other in group[1:]:
            if where := _differ(group[0], other):
                bad.append(f"`{formula}`: its sides differ, {where}")
                break
    return read, bad


@dataclass(frozen=True)
class Fact:
    """A result more than one page states, stated once: its formula (Python syntax, read by
    SymPy unevaluated) and the digits its value is shown to; a page cites it as
    ``{{fact:name}}`` (:func:`cite`) and shows ``$<latex of the formula> = <its value>$``
    (``\\approx`` where the digits round), both rendered from the one expression.

    Example:
        >>> print(Fact("2*0.6**10").tex())
        $2 \\cdot {0.6}^{10} \\approx 0.0121$
    """

    formula: str
    digits: int = 3

    def value(self) -> float:
        from sympy.parsing.sympy_parser import parse_expr

        return float(parse_expr(self.formula))

    def tex(self) -> str:
        from sympy import latex
        from sympy.parsing.sympy_parser import parse_expr

        v = self.value()
        shown = f"{v:.{self.digits}g}"
        sign = "=" if abs(float(shown) - v) <= 1e-12 * max(abs(v), 1.0) else "\\approx"
        expr = latex(parse_expr(self.formula, evaluate=False), order="none", mul_symbol="dot")
        return f"${expr} {sign} {shown}$"


#: a page's citation of a fact of the registry
CITE = re.compile(r"\{\{fact:(\w+)\}\}")


def cite(text: str, registry: Mapping[str, Fact]) -> str:
    """``text`` with each ``{{fact:name}}`` replaced by ``registry[name]`` rendered
    (:meth:`Fact.tex`): a result two pages state comes from one place.

    Raises:
        KeyError: a citation of a fact the registry does not hold (named).
    """

    def one(m: re.Match[str]) -> str:
        if m[1] not in registry:
            raise KeyError(f"cite: no fact {m[1]!r}; the registry holds {sorted(registry)}")
        return registry[m[1]].tex()

    return CITE.sub(one, text)


def _plain(lhs: str) -> str:
    """A formula's left side as Python, without spaces or brackets: ``2 \\cdot {0.6}^{10}`` and
    ``2·0.6¹⁰`` alike (``2*0.6**10``); the text itself where it is no formula of numbers."""
    py = _python(lhs)
    return re.sub(r"[\s()]", "", py) if py is not None else lhs


def retyped(pages: Mapping[str, str], registry: Mapping[str, Fact] | None = None) -> list[str]:
    """The formulas that two pages (name -> text) state, each typed on its page rather than
    cited from ``registry`` (:func:`cite`): the same left side at the same bound numbers,
    whatever the values (:func:`restated` finds those whose values differ); and a formula of
    the registry typed on any page instead of cited."""
    cited = [f.tex() for f in (registry or {}).values()]
    held = {_plain(lhs) for shown in cited for _, lhs, *_ in statements(shown)}
    said: dict[tuple[str, tuple], set[str]] = defaultdict(set)
    lhs_of: dict[tuple[str, tuple], str] = {}
    for page, text in pages.items():
        for shown in cited:
            text = text.replace(shown, " ")
        bound = bindings(text)
        for _, lhs, *_ in statements(text):
            free = tuple(sorted((k, v) for k, v in bound.items() if k in lhs))
            said[(_key(lhs), free)].add(page)
            lhs_of[(_key(lhs), free)] = lhs

    out = []
    for k, where in said.items():
        registered = _plain(lhs_of[k]) in held
        if len(where) > 1 or registered:
            why = " (the registry holds it)" if registered else ""
            out.append(f"{k[0]}: {', '.join(sorted(where))}{why}")
    return out


# ------------------------------------------------------------------------------------------
# the wrong answers an exercise's tolerance must refuse


#: the exponents an off-by-one is a reader's slip for (a square for a cube); a step count's
#: power (``0.9 ** 100``) off by one is a near value no tolerance is meant to refuse
SMALL_EXPONENT = 10


def _variants(tree: ast.expr) -> Iterator[tuple[str, ast.expr]]:
    """``tree`` with one change each: a small exponent (:data:`SMALL_EXPONENT`) off by one, a
    difference's or a quotient's operands swapped."""
    nodes = [n for n in ast.walk(tree) if isinstance(n, ast.BinOp)]
    for i, node in enumerate(nodes):
        changes = []
        small = isinstance(node.right, ast.Constant) and isinstance(node.right.value, int | float)
        if isinstance(node.op, ast.Pow) and small and abs(node.right.value) <= SMALL_EXPONENT:
            for d in (-1, 1):
                changes.append(
                    (f"exponent {node.right.value} {'+' if d > 0 else '-'} 1",
                     ast.BinOp(node.left, node.op, ast.Constant(node.right.value + d)))
                )  # fmt: skip
        if isinstance(node.op, ast.Sub | ast.Div):
            swapped = ast.BinOp(node.right, node.op, node.left)
            changes.append((f"{ast.unparse(node)} swapped", swapped))
        for what, new in changes:
            copy = _replace(tree, nodes[i], new)
            yield what, copy


def _replace(tree: ast.expr, old: ast.AST, new: ast.AST) -> ast.expr:
    class _Swap(ast.NodeTransformer):
        def visit(self, node: ast.AST) -> ast.AST:
            return new if node is old else self.generic_visit(node)

    out = copy.deepcopy(tree, memo={id(old): old})  # (``old`` kept, found by identity)
    return ast.fix_missing_locations(_Swap().visit(out))


def _small(node: ast.expr) -> bool:
    """``node`` is an integer exponent up to :data:`SMALL_EXPONENT` (a step count's power,
    ``0.998 ** 500``, off by one is a near value no tolerance is meant to refuse)."""
    return (isinstance(node, ast.Constant) and isinstance(node.value, int)
            and abs(node.value) <= SMALL_EXPONENT)  # fmt: skip


def _value(node: ast.expr, namespace: Mapping[str, Any]) -> float | None:
    """``node`` evaluated in ``namespace``, a number or None."""
    try:
        out = eval(compile(ast.Expression(node), "<pair>", "eval"), dict(namespace))
        return float(out)
    except Exception:  # (no number there: not a formula of numbers)
        return None


def _one_minus_power(n: ast.AST) -> bool:
    """``n`` is ``1 - a ** t``."""
    return (
        isinstance(n, ast.BinOp)
        and isinstance(n.op, ast.Sub)
        and isinstance(n.left, ast.Constant)
        and n.left.value == 1
        and isinstance(n.right, ast.BinOp)
        and isinstance(n.right.op, ast.Pow)
    )


def _sqrt_of(n: ast.AST) -> ast.expr | None:
    """What ``n`` is the square root of (``math.sqrt(k)``, ``k ** 0.5``), or None."""
    if isinstance(n, ast.Call) and len(n.args) == 1 and ast.unparse(n.func) in (
        "math.sqrt", "sqrt", "np.sqrt"):  # fmt: skip
        return n.args[0]
    if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow) and ast.unparse(n.right) == "0.5":
        return n.left
    return None


def _other_rate(node: ast.BinOp) -> tuple[str, ast.expr] | None:
    """For a rate ``(k - 1)/(k + 1)``, the other of the pair: gradient descent's for
    momentum's ``(√k - 1)/(√k + 1)`` and back; None for any other node."""
    lhs_, rhs_ = node.left, node.right
    rate = (
        isinstance(node.op, ast.Div)
        and isinstance(lhs_, ast.BinOp)
        and isinstance(rhs_, ast.BinOp)
        and isinstance(lhs_.op, ast.Sub)
        and isinstance(rhs_.op, ast.Add)
        and ast.unparse(lhs_.right) == ast.unparse(rhs_.right) == "1"
        and ast.unparse(lhs_.left) == ast.unparse(rhs_.left)
    )
    if not rate:
        return None
    k = lhs_.left  # type: ignore[attr-defined]
    root = _sqrt_of(k)
    other = root if root is not None else ast.BinOp(k, ast.Pow(), ast.Constant(0.5))
    name = "gradient descent's rate (κ - 1)/(κ + 1)" if root is not None else (
        "momentum's rate (√κ - 1)/(√κ + 1)")  # fmt: skip
    swapped = ast.BinOp(
        ast.BinOp(other, ast.Sub(), ast.Constant(1)),
        ast.Div(),
        ast.BinOp(other, ast.Add(), ast.Constant(1)),
    )
    return f"the other rate of the pair: {name}", swapped


def _pairs(tree: ast.expr, namespace: Mapping[str, Any]) -> Iterator[tuple[str, ast.expr]]:
    """``tree`` with one of its formulas replaced by the other formula of its pair: an
    average ``a·r + b·g`` with ``a + b = 1`` (RMSProp's, Adam's) by the sum ``r + g``
    (AdaGrad's); a bias correction ``x/(1 - β^t)`` dropped, or a factor ``(1 - β^t)`` (the
    raw moment for the corrected one); a geometric sum's ``1 - a^t`` by ``1 - a^(t+1)``
    (Nesterov's look-ahead for the velocity's step); gradient descent's rate ``(k - 1)/(k + 1)``
    by momentum's ``(√k - 1)/(√k + 1)`` and back."""

    for node in ast.walk(tree):
        if not isinstance(node, ast.BinOp):
            continue
        lhs_, rhs_ = node.left, node.right
        if isinstance(node.op, ast.Add) and all(
            isinstance(x, ast.BinOp) and isinstance(x.op, ast.Mult) for x in (lhs_, rhs_)
        ):
            a = _value(lhs_.left, namespace)  # type: ignore[attr-defined]
            b = _value(rhs_.left, namespace)  # type: ignore[attr-defined]
            if a is not None and b is not None and 0 < a < 1 and abs(a + b - 1) < 1e-12:
                summed = ast.BinOp(lhs_.right, ast.Add(), rhs_.right)  # type: ignore[attr-defined]
                yield (
                    "AdaGrad's sum for the moving average (the other accumulator)",
                    _replace(tree, node, summed),
                )
        if isinstance(node.op, ast.Div) and _one_minus_power(rhs_):
            yield "the bias correction dropped (the raw moment)", _replace(tree, node, lhs_)
        if isinstance(node.op, ast.Mult) and _one_minus_power(rhs_):
            yield "the bias-corrected moment for the raw one", _replace(tree, node, lhs_)
        if isinstance(node.op, ast.Mult) and _one_minus_power(lhs_):
            yield "the bias-corrected moment for the raw one", _replace(tree, node, rhs_)
        if _one_minus_power(node) and _small(node.right.right):  # type: ignore[attr-defined]
            power = node.right
            one_more = ast.BinOp(power.right, ast.Add(), ast.Constant(1))  # type: ignore[attr-defined]
            later = ast.BinOp(power.left, ast.Pow(), one_more)  # type: ignore[attr-defined]
            yield (
                "a geometric sum of one term more (Nesterov's look-ahead)",
                _replace(tree, power, later),
            )
        other = _other_rate(node)
        if other is not None:
            yield other[0], _replace(tree, node, other[1])


#: what a line of an exercise's arithmetic may call (a formula of numbers, not a run)
_PURE_CALLS = {"math.sqrt", "math.log", "math.exp", "math.ceil", "math.floor", "abs", "min",
               "max", "float", "round", "sqrt", "log", "exp"}  # fmt: skip


def _arithmetic(node: ast.AST) -> bool:
    """``node`` computes a number from numbers alone (no run, no loop, no attribute but
    :data:`_PURE_CALLS`)."""
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            if ast.unparse(n.func) not in _PURE_CALLS or n.keywords:
                return False
        elif isinstance(n, ast.Attribute):
            if not isinstance(n.value, ast.Name) or n.value.id != "math":
                return False
        elif not isinstance(
            n,
            ast.Expression
            | ast.Constant
            | ast.Name
            | ast.BinOp
            | ast.UnaryOp
            | ast.operator
            | ast.unaryop
            | ast.Load
            | ast.Tuple,
        ):
            return False
    return True


def _lines(tree: ast.Module) -> list[tuple[list[str], list[ast.expr]]]:
    """The top-level assignments of numbers from numbers, as ``(names, values)`` (a tuple
    assignment ``a, b = x, y`` one line of two)."""
    out = []
    for n in tree.body:
        if not isinstance(n, ast.Assign) or len(n.targets) != 1:
            continue
        t, v = n.targets[0], n.value
        if isinstance(t, ast.Name) and _arithmetic(v):
            out.append(([t.id], [v]))
        elif (isinstance(t, ast.Tuple) and isinstance(v, ast.Tuple) and len(t.elts) == len(v.elts)
              and all(isinstance(e, ast.Name) for e in t.elts) and _arithmetic(v)):  # fmt: skip
            out.append(([e.id for e in t.elts], list(v.elts)))  # type: ignore[attr-defined]
    return out


def wrong_answers(code: str, namespace: Mapping[str, Any]) -> list[tuple[str, float]]:
    """The nearest wrong answers to the ``answer`` an exercise's code computes: each formula of
    its arithmetic (every top-level ``name = …`` of numbers that ``answer`` is computed from,
    not only ``answer = …``) with an exponent off by one, a difference or quotient swapped, or
    replaced by the other formula of its pair (:func:`_pairs`: RMSProp's average and AdaGrad's
    sum, a bias correction and none, the velocity's and Nesterov's geometric sums, gradient
    descent's and momentum's rates), the lines after it computed again, evaluated in
    ``namespace`` (the code's, after it ran); those that give no number, or the answer itself,
    are left out."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    last = [
        n.value
        for n in tree.body
        if isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "answer" for t in n.targets)
    ]
    if not last:
        return []
    lines = [(t, v) for t, v in _lines(tree) if "answer" not in t]
    names = [x for targets, _ in lines for x in targets]
    if len(names) != len(set(names)):
        lines = []  # (a name set twice: the lines cannot be computed again in order)
    lines.append((["answer"], [last[-1]]))
    answer = namespace.get("answer")
    if not isinstance(answer, int | float) or isinstance(answer, bool):
        return []
    out, seen = [], set()
    for i, (line, values) in enumerate(lines):
        for j, expr in enumerate(values):
            where = f"{line[j]}: " if i < len(lines) - 1 else ""
            for what, new in [*_variants(expr), *_pairs(expr, namespace)]:
                ns = dict(namespace)
                try:
                    for k, (targets, vals) in enumerate(lines[i:], i):
                        for m, (name, v) in enumerate(zip(targets, vals, strict=True)):
                            node = new if (k, m) == (i, j) else v
                            ns[name] = eval(compile(ast.Expression(node), "<wrong>", "eval"), ns)
                    value = float(ns["answer"])
                except Exception:  # (a variant that raises is no answer a reader types)
                    continue
                if (math.isfinite(value) and abs(value - answer) > 1e-9 * max(abs(answer), 1e-12)
                        and value not in seen):  # fmt: skip
                    seen.add(value)
                    out.append((f"{where}{what}", value))
    return out


# ------------------------------------------------------------------------------------------
# twins by what they compute: the seeds drawn at run time


def _arg_key(value: Any) -> Any:
    """A hashable stand-in for an argument: arrays and tensors by their bytes."""
    if isinstance(value, int | float | str | bool | type(None)):
        return value
    if isinstance(value, tuple | list):
        return tuple(_arg_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _arg_key(v)) for k, v in value.items()))
    for attr in ("numpy", "tobytes"):
        with contextlib.suppress(Exception):
            arr = value.detach().cpu().numpy() if attr == "numpy" else value
            return ("array", getattr(arr, "shape", None), hashlib.sha1(arr.tobytes()).hexdigest())
    return ("object", repr(value)[:200])


def seed_signature(fn: Any) -> inspect.Signature | None:
    """``fn``'s signature when it takes a ``seed`` parameter; None when it takes none or has
    no signature to read (a builtin, a class without one).

    Example:
        >>> str(seed_signature(lambda n, seed=1: n))
        '(n, seed=1)'
        >>> seed_signature(len) is None, seed_signature(lambda n: n) is None
        (True, True)
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return sig if "seed" in sig.parameters else None


class SeedLog:
    """The calls of a module's own seeded functions (a parameter named ``seed``) while it
    runs, recorded by wrapping them in the module's namespace (:meth:`recording`): every call
    site reaches them there, a loop over ``range`` included.

    Example:
        >>> import types
        >>> mod = types.ModuleType("descentlab.example")
        >>> exec("def runs(n, seed=1): return n + seed\\n"
        ...      "def section(): return [runs(4, seed=s) for s in range(2)]", vars(mod))
        >>> log = SeedLog()
        >>> with log.recording(mod):
        ...     _ = mod.section()
        >>> log.reseeded()
        ['runs with seeds 0, 1']
    """

    def __init__(self) -> None:
        self.calls: dict[str, dict[Any, set[Any]]] = defaultdict(lambda: defaultdict(set))

    @contextmanager
    def recording(self, module: ModuleType) -> Iterator[SeedLog]:
        ns = vars(module)
        replicates = ns.get("REPLICATES", {})
        saved = {}
        for name, fn in list(ns.items()):
            if not inspect.isfunction(fn) or fn.__module__ != module.__name__ or name in replicates:
                continue
            sig = seed_signature(fn)
            if sig is not None:
                saved[name] = fn
                ns[name] = self._wrap(name, fn, sig)
        try:
            yield self
        finally:
            ns.update(saved)

    def _wrap(self, name: str, fn: Any, sig: inspect.Signature) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with contextlib.suppress(Exception):
                bound = sig.bind(*args, **kwargs)
                bound.apply_defaults()
                given = dict(bound.arguments)
                seed = given.pop("seed")
                self.calls[name][_arg_key(given)].add(_arg_key(seed))
            return fn(*args, **kwargs)

        return wrapper

    def reseeded(self) -> list[str]:
        """Each function called with two or more seeds and otherwise the same arguments."""
        return [
            f"{name} with seeds {', '.join(map(str, sorted(seeds, key=str)))}"
            for name, by_args in self.calls.items()
            for seeds in by_args.values()
            if len(seeds) > 1
        ][:5]


# ------------------------------------------------------------------------------------------
# the checks the pages show


def _check(text: str, bad: list[str], read: int, expected: str) -> Check:
    from descentlab.book.render.pages import Check

    return Check(
        text,
        "fail" if bad else "ok",
        "; ".join(bad) if bad else f"{read} read, none contradicted",
        expected,
    )


def text_check(
    text: str,
    context: str = "",
    rules: Sequence[tuple[str, Formula]] | None = None,
    book: Mapping[str, Formula] | None = None,
) -> Check | None:
    """The check that ``text``'s comparatives and stated formulas agree with its numbers, and
    that the update rules it types are the ones it states, ``rules`` (:func:`rule_mismatches`;
    not read where None; None where it has none of them), and that the equations it types
    have equal sides (:func:`identity_mismatches`)."""
    relations = sum(len(p.findall(text)) for p in _RELATIONS)
    formulas = sum(1 for _ in statements(text))
    from descentlab.book.bibliography import citation_mismatches, dated

    typed, wrong = rule_mismatches(text, rules, book) if rules is not None else (0, [])
    equations, unequal = identity_mismatches(text, context)
    cited = dated(text)
    if not relations and not formulas and not typed and not wrong and not cited and not equations:
        return None  # (a rule stated, not typed)
    bad = (
        relation_words(text)
        + formula_mismatches(text, context)
        + wrong
        + unequal
        + [f"citation {c}" for c in citation_mismatches(text)]
    )
    return _check(
        "every comparative word beside two numbers and every formula that states its value "
        "agrees with the numbers (formulas evaluated at the numbers the text binds)"
        + (", every update rule typed is the one it states" if typed else "")
        + (", every equation typed has equal sides (derivatives taken)" if equations else "")
        + (", every citation is its work's in the bibliography" if cited else ""),
        bad,
        relations + formulas + typed + equations + cited,
        "the words and formulas the numbers give",
    )


def seeds_check(log: SeedLog) -> Check:
    """The check that no seeded function of the chapter ran twice on the same arguments with
    two seeds (a second route that is the first re-seeded, through any call site)."""
    found = log.reseeded()
    ran = sum(len(v) for v in log.calls.values())
    return _check(
        "every second route computes something else: no seeded function ran with two seeds "
        "on otherwise equal arguments (recorded as the chapter ran)",
        found,
        ran,
        "none re-seeded",
    )


def restated_check(pages: Mapping[str, str], registry: Mapping[str, Fact] | None = None) -> Check:
    """The check that no formula two pages state has two values (:func:`restated`), nor is
    typed on both rather than cited from ``registry`` (:func:`retyped`)."""
    again = retyped(pages, registry)
    found = restated(pages) + [f"typed on two pages, not cited: {r}" for r in again]
    return _check(
        "a quantity two pages state has one value, cited from one place (formulas with the "
        "same left side at the same bound numbers, across the book's pages)",
        found,
        len(pages),
        "one value each, from one place",
    )
