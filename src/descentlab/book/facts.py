"""One source for each fact: what the book's words, formulas and restatements say about a
number is checked against the number, not only the number itself.

* :func:`relation_words` -- a comparative word between two numbers ("2,400 examples, more
  than the 1,000 the set holds"; "(6 against 2) ... faster than") that the numbers contradict.
* :func:`formula_mismatches` -- a formula in backquotes or dollars that states its value
  (```6·1.5² = 13.5```, ``$1 - 1/\\kappa = 0.98$``), evaluated (SymPy) at the numbers its
  text binds (``κ = 50``): an exponent, a sign or two operands changed make it false.
* :func:`wrong_answers` -- the nearest wrong answers of an exercise, generated from the
  expression its code computes: each exponent off by one, each difference and quotient
  swapped; the page's tolerance must refuse them all.
* :func:`restated` -- the same formula stated on two pages with values that differ.
* :class:`SeedLog` -- the seeds a chapter's own seeded functions are called with at run time
  (through any call site: loops, ``range``, helpers): one function called with two seeds and
  otherwise equal arguments is a re-seeded twin.

Each returns what it refuses as short strings; the build turns them into checks.

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
import math
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from descentlab.book.render.pages import Check

__all__ = [
    "SeedLog",
    "bindings",
    "evaluate",
    "formula_mismatches",
    "relation_words",
    "restated",
    "restated_check",
    "seeds_check",
    "statements",
    "text_check",
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
#: "A ..., <word> than ... B": the last number before the word, the first after "than"
_BETWEEN = r"(?:(?!\b(?:when|if|where|while|as|for|at|with|by)\b)[^\d.;:$`]){0,40}?"
_THAN = re.compile(
    rf"(?P<a>{_NUM})(?P<mid>{_BETWEEN})\b(?P<w>{_QUANTITY})\s+than\b(?P<gap>{_BETWEEN})"
    rf"(?P<b>{_NUM})"
)
#: "(A against B) ... <word> than": the first of two quantities set side by side, to the second
_AGAINST = re.compile(rf"\((?P<a>{_NUM}) against (?P<b>{_NUM})\)[^.;]*?\b(?P<w>{_ANY})\s+than\b")
_SENTENCE = re.compile(r"(?<=[.;!?])\s+|\n\s*\n")


def _number(token: str) -> float:
    return float(token.replace(",", ""))


def relation_words(text: str) -> list[str]:
    """The comparatives of ``text`` that its numbers contradict: ``"A … fewer than … B"`` where
    A is not below B (a factor, "100 times smaller than", is not a quantity compared and is
    left alone)."""
    out = []
    for sentence in _SENTENCE.split(text):
        for pattern in (_THAN, _AGAINST):
            for m in pattern.finditer(sentence):
                if re.search(r"\btimes\b|×|fold\b", m.groupdict().get("mid") or ""):
                    continue
                a, b, w = _number(m["a"]), _number(m["b"]), m["w"]
                if a == b or (w in _UP) == (a > b):
                    continue
                out.append(f"{m['a']} … {w} than … {m['b']}")
    return out


# ------------------------------------------------------------------------------------------
# formulas evaluated at the page's numbers

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


_NAMES = {"sqrt", "floor", "log", "exp", "Abs", "pi"}


@functools.lru_cache(maxsize=4096)
def _parsed(py: str) -> Any:
    from sympy.parsing.sympy_parser import (
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    transforms = (*standard_transformations, implicit_multiplication_application)
    return parse_expr(py, transformations=transforms, evaluate=True)


def evaluate(expr: str, bound: Mapping[str, float] | None = None) -> float | None:
    """``expr``'s value at ``bound`` (symbol -> number; ``κ`` or ``kappa``), or None where it
    is no number there (a free symbol left, a form this reader does not take).

    Example:
        >>> evaluate("⌊(224 + 2·3 - 7)/2⌋ + 1"), evaluate("1 - 1/κ", {"κ": 50})
        (112.0, 0.98)
        >>> evaluate("\\\\frac{\\\\kappa - 1}{\\\\kappa + 1}", {"κ": 9}), evaluate("Σ 1/t")
        (0.8, None)
    """
    py = _python(expr)
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
        sides = [s.strip().rstrip(",.:;") for s in re.split(r"=|≈", formula)]
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


def wrong_answers(code: str, namespace: Mapping[str, Any]) -> list[tuple[str, float]]:
    """The nearest wrong answers to the ``answer = …`` an exercise's code computes: the
    expression with each exponent off by one and each difference or quotient swapped,
    evaluated in ``namespace`` (the code's, after it ran); those that give no number, or the
    answer itself, are left out."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    assigns = [
        n.value
        for n in tree.body
        if isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "answer" for t in n.targets)
    ]
    if not assigns:
        return []
    answer = namespace.get("answer")
    if not isinstance(answer, int | float) or isinstance(answer, bool):
        return []
    out = []
    for what, expr in _variants(assigns[-1]):
        try:
            value = eval(compile(ast.Expression(expr), "<wrong>", "eval"), dict(namespace))
            value = float(value)
        except Exception:  # (a variant that raises is no answer a reader types)
            continue
        if math.isfinite(value) and abs(value - answer) > 1e-9 * max(abs(answer), 1e-12):
            out.append((what, value))
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
            try:
                sig = inspect.signature(fn)
            except (TypeError, ValueError):
                continue
            if "seed" in sig.parameters:
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


def text_check(text: str, context: str = "") -> Check | None:
    """The check that ``text``'s comparatives and stated formulas agree with its numbers
    (None where it has neither)."""
    relations = sum(len(p.findall(text)) for p in (_THAN, _AGAINST))
    formulas = sum(1 for _ in statements(text))
    if not relations and not formulas:
        return None
    bad = relation_words(text) + formula_mismatches(text, context)
    return _check(
        "every comparative word beside two numbers and every formula that states its value "
        "agrees with the numbers (formulas evaluated at the numbers the text binds)",
        bad,
        relations + formulas,
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


def restated_check(pages: Mapping[str, str]) -> Check:
    """The check that no formula two pages state has two values (:func:`restated`)."""
    found = restated(pages)
    return _check(
        "a quantity two pages state has one value (formulas with the same left side at the "
        "same bound numbers, across the book's pages)",
        found,
        len(pages),
        "one value each",
    )
