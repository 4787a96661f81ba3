"""A second route is another computation: the audit that finds a number checked against its
own code run again with another seed (a *re-seeded twin*). Such a twin agrees by the width of
its tolerance, not by an independent computation, and a bug in the shared code moves both
together. The audit reads a chapter module's source: a function of descentlab that takes a
``seed``, called anywhere in the module (lambdas and comprehensions included) with two
different seeds -- an explicit one against the default, a positional one, a loop over literal
seeds -- and otherwise the same arguments as far as the source fixes them, is refused, by a
check on the chapter's page. A chapter whose runs over seeds are replicates, never one checked
against another (a rate tuned on one seed and compared on others, bands over seeds), names the
function and why in its ``REPLICATES``; the check says each one it was told."""

from __future__ import annotations

import ast
import contextlib
import inspect
import sys
from collections import defaultdict
from types import ModuleType
from typing import Any

from descentlab.book.checks import ck
from descentlab.book.facts import seed_signature
from descentlab.book.render.pages import Check

__all__ = ["reseeded", "twins_check"]


def _callee(namespace: dict[str, Any], func: ast.expr) -> Any:
    """The callable a call's ``func`` names in ``namespace`` (``f`` or ``kit.f``), if any."""
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.insert(0, func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None
    obj = namespace.get(func.id)
    for part in parts:
        obj = getattr(obj, part, None)
    return obj if callable(obj) else None


def _loops(fn: ast.AST) -> dict[str, list[str]]:
    """Each loop or comprehension variable over a literal tuple or list: its values."""
    return {
        node.target.id: [ast.unparse(e) for e in node.iter.elts]
        for node in ast.walk(fn)
        if isinstance(node, ast.comprehension | ast.For)
        and isinstance(node.target, ast.Name)
        and isinstance(node.iter, ast.Tuple | ast.List)
    }


_UNKNOWN = object()


def _value(node: ast.expr | None, namespace: dict[str, Any], default: Any) -> Any:
    """An argument's value where the source fixes it (a literal, a module constant, the
    parameter's default when not passed), else ``_UNKNOWN``."""
    if node is None:
        return _UNKNOWN if default is inspect.Parameter.empty else default
    with contextlib.suppress(ValueError, TypeError, SyntaxError):  # (not a literal: below)
        return ast.literal_eval(node)
    if isinstance(node, ast.Name) and isinstance(namespace.get(node.id), int | float | str):
        return namespace[node.id]
    return _UNKNOWN


def _bound(
    call: ast.Call, sig: inspect.Signature, namespace: dict[str, Any], loops: dict[str, list[str]]
) -> tuple[list[str], dict[str, Any]]:
    """The seeds ``call`` passes (a loop variable's values, else the argument's text or the
    default's) and its other arguments' values where the source fixes them."""
    given: dict[str, ast.expr | None] = dict.fromkeys(sig.parameters)
    for name, arg in zip(sig.parameters, call.args, strict=False):
        if isinstance(arg, ast.Starred):  # what follows is unknown
            given = {k: (v if v is not None else ast.Name("?")) for k, v in given.items()}
            break
        given[name] = arg
    given.update({kw.arg: kw.value for kw in call.keywords if kw.arg in given})
    seed = given.pop("seed")
    if seed is None or (isinstance(seed, ast.Name) and seed.id == "?"):
        default = sig.parameters["seed"].default
        seeds = [repr(default) if default is not inspect.Parameter.empty else "?"]
    elif isinstance(seed, ast.Name) and seed.id in loops:
        seeds = loops[seed.id]
    else:
        v = _value(seed, namespace, inspect.Parameter.empty)
        seeds = [repr(v) if v is not _UNKNOWN else ast.unparse(seed)]
    return seeds, {k: _value(v, namespace, sig.parameters[k].default) for k, v in given.items()}


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two calls' other arguments: equal wherever both are known."""
    return all(a[k] is _UNKNOWN or b[k] is _UNKNOWN or a[k] == b[k] for k in a)


def reseeded(source: str, namespace: dict[str, Any]) -> list[str]:
    """The functions of descentlab (the chapter's own included) that ``source`` (names
    resolved in ``namespace``) calls with two or more seeds and otherwise the same arguments,
    as far as the source fixes them: ``"_runs with seeds 1, 2 (in _sampling)"``.

    Example:
        >>> src = "def runs(n, seed=1): ...\\ndef section(): return runs(4), runs(4, seed=2)"
        >>> ns = {"__name__": "descentlab.example"}
        >>> exec(src, ns)
        >>> reseeded(src, ns)
        ['runs with seeds 1, 2 (in section)']
    """
    calls: dict[str, list[tuple[list[str], dict[str, Any], str]]] = defaultdict(list)
    replicates = namespace.get("REPLICATES", {})
    for fn in ast.parse(source).body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        loops = _loops(fn)
        for call in (c for c in ast.walk(fn) if isinstance(c, ast.Call)):
            obj = _callee(namespace, call.func)
            if not str(getattr(obj, "__module__", "")).startswith("descentlab"):
                continue
            if ast.unparse(call.func) in replicates:
                continue
            sig = seed_signature(obj)
            if sig is not None:
                seeds, rest = _bound(call, sig, namespace, loops)
                calls[ast.unparse(call.func)].append((seeds, rest, fn.name))
    found = []
    for name, sites in calls.items():
        for i, (_, rest, _) in enumerate(sites):
            twins = [s for s in sites[i:] if _same(rest, s[1])]
            values = {v for s in twins for v in s[0]}
            if len(values) > 1:
                places = ", ".join(dict.fromkeys(s[2] for s in twins))
                found.append(f"{name} with seeds {', '.join(sorted(values))} (in {places})")
                break
    return found


def twins_check(module: ModuleType | str) -> Check:
    """✔ when no function of ``module`` (a chapter's) checks a computation against itself
    re-seeded (:func:`reseeded`)."""
    mod = sys.modules[module] if isinstance(module, str) else module
    found = reseeded(inspect.getsource(mod), vars(mod))
    told = "".join(f"; replicates, not second routes: {f} ({why})"
                   for f, why in getattr(mod, "REPLICATES", {}).items())  # fmt: skip
    return ck(
        "every second route is another computation, none the same code re-seeded",
        not found,
        ("; ".join(found) or "none re-seeded") + told,
        "none re-seeded",
    )
