"""An optimizer's card: what it is made of and what it computes, read from its one source.

Everything on the card comes from what the optimizer runs, nothing is written twice: its
registry record (name, year, reference), its chain of rules, each rule's declared checks (the
hyperparameters' defaults and, in words, what each must be: the same declaration that makes
the error messages), the state each rule keeps, and -- for the rules written in the form of
:mod:`descentlab.optim.form` -- the per-element update, statement by statement, in the order
every backend (eager, fused C, Triton) runs it. Each coefficient is listed with the Python
that computes it.

The update is rendered by one more emitter of the form: :func:`statements` returns each
statement as Python over named values (``sqrt``, ``maximum``, ``where``, ... and the
coefficients' names), which ``tests/test_optimizer_card.py`` evaluates and compares with the
form's float64 definition (:func:`descentlab.optim.form.reference`); :func:`card` prints them
with mathematical signs.

Example:
    >>> print(card("adabelief").splitlines()[1])
    chain: maximize -> add_l2 -> scale_by_adabelief -> add_decayed_weights -> scale_by_lr
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from descentlab import optim
from descentlab.optim import form as F
from descentlab.optim.hyperspec import describe

__all__ = ["Statement", "card", "coefficient_source", "statements"]


def _operand(value: tuple[str, int], need: int) -> str:
    text, prec = value
    return f"({text})" if prec < need else text


@dataclass(frozen=True)
class Statement:
    """One statement of a rule's update: ``kind`` is ``"let"`` (a named value), ``"assign"``
    (a state entry's new value), ``"scale"`` (a per-tensor number multiplied), ``"out"`` (the
    rule's update ``u``) or ``"final"`` (the new parameter ``p``, in the rule's own order)."""

    kind: str
    target: str
    python: str


class _Text(F.Emitter):
    """The form's statements as Python text (each value: its text and its precedence)."""

    def __init__(self) -> None:
        self.out: list[Statement] = []
        self.coefs: dict[str, F.Coef] = {}
        self.lets = 0

    def leaf(self, name: str) -> tuple[str, int]:
        return name, 4

    def coef(self, c: F.Coef) -> tuple[str, int]:
        name = c.name if c.name.isidentifier() else f"c_{c.name}"
        self.coefs[name] = c
        return name, 4

    def apply(self, op: str, args: list[Any], alpha: Any) -> tuple[str, int]:
        prim = F.primitive(op, alpha)  # its text: PRIMITIVES' ``text``
        if prim is None or not prim.text[0]:
            raise ValueError(f"no text for primitive {op!r}")
        template, prec, needs, alpha_needs = prim.text
        texts = [_operand(a, need) for a, need in zip(args, needs, strict=True)]
        a = None if alpha is None else _operand(alpha, alpha_needs)
        return template.format(*texts, alpha=a), prec

    def materialize(self, value: tuple[str, int]) -> tuple[str, int]:
        self.lets += 1
        name = f"x{self.lets}"
        self.out.append(Statement("let", name, value[0]))
        return name, 4

    def assign(self, key: str, value: tuple[str, int], expr: F.Expr) -> tuple[str, int]:
        self.out.append(Statement("assign", key, value[0]))
        return key, 4

    def scale(self, key: str, factor: F.Coef) -> None:
        self.out.append(Statement("scale", key, f"{key} * {self.coef(factor)[0]}"))


def statements(form: F.Form, final: bool) -> tuple[list[Statement], dict[str, F.Coef]]:
    """``form``'s update as Python statements (``final``: ending in its final form's new
    parameter, else in its output ``u``), and the coefficients they name."""
    text = _Text()
    if final:
        text.statements(form)
        p = text.final(form)[0]
        text.out.append(Statement("final", "p", p))
    else:
        u = text.run(form)[0]
        text.out.append(Statement("out", "u", u))
    return text.out, text.coefs


def _lambda_node(fn: Callable[..., Any]) -> tuple[str, ast.Lambda] | None:
    """The source of ``fn``'s module and the node of the lambda that is ``fn``."""
    try:
        source = inspect.getsource(inspect.getmodule(fn))  # type: ignore[arg-type]
    except (OSError, TypeError):
        return None
    code = fn.__code__
    found = [
        n
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Lambda) and n.lineno == code.co_firstlineno
    ]
    if len(found) > 1:  # several on one line: the one whose compiled code is fn's
        found = [n for n in found if _compiled(n).co_code == code.co_code]
        found = [n for n in found if _constants(_compiled(n)) == _constants(code)]
    return (source, found[0]) if len(found) == 1 else None


def _compiled(node: ast.Lambda) -> Any:
    module = compile(ast.Expression(body=node), "<lambda>", "eval")
    return next(c for c in module.co_consts if inspect.iscode(c))


def _constants(code: Any) -> tuple:
    return tuple(c for c in code.co_consts if not inspect.iscode(c))


def coefficient_source(fn: Callable[..., Any]) -> str:
    """The Python that computes a coefficient: a lambda's body, with the lambdas it calls by
    name (a closure's ``b1(h, t)``) given after it; a function's name."""
    found = _lambda_node(fn) if fn.__name__ == "<lambda>" else None
    if found is None:
        return f"{fn.__module__}.{fn.__qualname__}(h, t)"
    source, node = found
    args = ", ".join(a.arg for a in node.args.args)
    text = f"({args}) -> {ast.get_source_segment(source, node.body)}"
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
        inner = cell.cell_contents
        if callable(inner) and getattr(inner, "__name__", "") == "<lambda>":
            text += f", where {name} = {coefficient_source(inner)}"
    return text


_SIGNS = (("sqrt(", "√("), (" * ", "·"), (" - ", " − "), ("maximum(", "max("), ("-", "−"))


def _pretty(python: str) -> str:
    for a, b in _SIGNS:
        python = python.replace(a, b)
    return python


def _at_step_one(c: F.Coef, hyper: Mapping[str, Any]) -> str:
    """The coefficient's value at step 1 (not for a per-tensor one)."""
    if c.per_tensor is not None or c.reads is not None:
        return ""
    value = c.fn(hyper, 1.0, float(hyper["lr"])) if c.lr else c.fn(hyper, 1.0)
    return f"  [{float(value):.4g} at t = 1]"


def card(name: str, options: Mapping[str, Any] | None = None) -> str:
    """The card of the registered optimizer ``name`` at its defaults, or with ``options``
    (its keyword arguments: flags such as ``amsgrad=True`` change the update)."""
    rec = optim.record(name)
    p = torch.nn.Parameter(torch.zeros(2))
    kwargs = dict(options or {})
    if "fused" in inspect.signature(rec.factory).parameters:
        kwargs.setdefault("fused", False)  # (the card builds no kernel)
    opt = rec.factory([p], **kwargs)
    hyper = {k: v for k, v in opt.param_groups[0].items() if k not in ("params", "step")}
    rules = opt.rule.rules
    spec = optim.specs.spec_of(name)  # an optimizer of your own: where it is read from
    lines = [
        f"{rec.display} ({rec.year}): {rec.reference}" if rec.year else f"{rec.display}: {spec}"
    ]
    lines += ["chain: " + " -> ".join(r.name for r in rules), ""]
    lines.append("hyperparameters (value at these options: what it must be)")
    words: dict[str, str] = {}
    for r in rules:
        for key, text in describe(r.checks).items():
            words.setdefault(key, text)
    for key, value in hyper.items():
        lines.append(f"  {key} = {value!r}" + (f": {words[key]}" if key in words else ""))
    for r in rules:  # the declared checks that read several hyperparameters
        for rel in r.relations:
            lines.append(f"  and: {inspect.getdoc(rel.test)} ({', '.join(sorted(rel.keys))})")
    plan = opt.rule.final_plan(hyper)
    shifted = "  its gradient is taken at another point than the parameters (torch code)"
    for k, r in enumerate(rules):
        moves = bool(getattr(r, "lookahead", False))  # SAM's ascent, Nesterov's lookahead
        if r.passes_through(hyper) and not moves:
            continue
        if not isinstance(r, F.FormRule):
            state = sorted(r.init([p.detach()])) if r.state_keys else []
            lines += ["", r.name + (f" (state: {', '.join(state)})" if state else "")]
            lines += [shifted] if moves else []
            if not r.passes_through(hyper):
                lines.append("  written as torch code (its update method), not in the form")
            continue
        form = r.built(hyper)
        final = plan is not None and plan[0] == k
        body, coefs = statements(form, final)
        if not final and not moves and [(s.kind, s.python) for s in body] == [("out", "g")]:
            continue  # nothing at these values (maximize=False)
        state = [key for key in form.states if not key.startswith("_")] + list(form.scalars)
        lines += ["", r.name + (f" (state: {', '.join(state)})" if state else "")]
        lines += [shifted] if moves else []
        for pr in form.prepares:
            lines.append(f"  first, in Python: {pr.fn.__module__}.{pr.fn.__qualname__}")
        for s in body:
            arrow = "=" if s.kind in ("let", "out") else "<-"
            lines.append(f"  {s.target} {arrow} {_pretty(s.python)}")
        for cname, c in coefs.items():
            kind = " (per tensor)" if c.per_tensor is not None or c.reads else ""
            source = coefficient_source(c.fn)
            lines.append(f"    {cname}{kind} = {source}{_at_step_one(c, hyper)}")
        if final:
            assert plan is not None
            decay = "" if plan[1] is None else (
                f"{plan[1].name} first, as torch's p.mul_(1 - lr * weight_decay), then "
            )  # fmt: skip
            lines.append(
                f"  the rules after it run inside this update ({decay}scale_by_lr: its "
                "learning rate is the coefficients' lr), in torch's order"
            )
            break
    return "\n".join(lines)
