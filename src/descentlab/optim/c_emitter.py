"""The fused C backend's emitter: a rule's form (:mod:`descentlab.optim.form`) written into the
per-element C of :class:`~descentlab.optim.fused.FusedBuilder`, each primitive spelled from
:data:`~descentlab.optim.form.PRIMITIVES`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .form import (
    _MASKS,
    Coef,
    Emitter,
    Expr,
    Form,
    lazy_zeros,
    primitive,
    product_prepare,
    register_emitters,
    spell,
)
from .lowbit import sr_salt
from .plan import coefficient

if TYPE_CHECKING:
    from .form import FormRule

__all__ = ["CEmitter", "StoredCEmitter"]


class CEmitter(Emitter):
    """Per-element C for the fused backend's builder (every value of type ``T``): each
    primitive is one line ``T tN = ...;`` of the builder's loop body, from :data:`PRIMITIVES`.
    ``prefix`` scopes the rule's coefficients (:meth:`~descentlab.optim.fused.FusedBuilder.
    scope`: two instances of one rule in a chain keep theirs apart)."""

    def __init__(self, builder: Any, prefix: str) -> None:
        self.b, self.prefix = builder, prefix
        self.one: str | None = None
        self.written: set[str] = set()
        self.lazy: set[str] = set()
        self.p, self.lr_fn, self.lr_uses = "p", None, ()

    def let(self, expr: str) -> str:
        """``T tN = expr;`` in the loop body; returns ``tN``."""
        name = f"t{len(self.b.lines)}"  # one line per statement: a fresh name in the chain
        self.b.lines.append(f"T {name} = {expr};")
        return name

    def leaf(self, name: str) -> str:
        if name == "g":
            return self.b.u
        if name == "p":
            return self.p
        return self._array(name)

    def _array(self, key: str) -> str:
        if key in self.lazy:  # made as zeros before the kernel runs, where missing
            self.lazy.discard(key)
            pr = lazy_zeros(key)
            self.b.prepare(pr.fn, **pr.how)
        return self.b.state(key, write=key in self.written)

    def coef(self, c: Coef) -> str:
        name = f"{self.prefix}_{c.name}"
        return self.b.add(coefficient(name, c, self.lr_fn, self.lr_uses))

    def apply(self, op: str, a: list[str], alpha: str | None) -> str:
        prim = primitive(op, alpha)
        if prim is None:
            raise ValueError(f"no C form for primitive {op!r}")
        if op in _MASKS:  # a mask is an operand of where only: inline, never a T variable
            return prim.c.format(*a)  # type: ignore[union-attr]
        self.b.slow = self.b.slow or prim.slow
        if op == "sign" and self.one is None:  # 1 of type T (a literal would be a scalar)
            self.one = self.b.coef(f"{self.prefix}_sign_one", lambda h, t, e: 1.0)
        return spell(prim.c, a, alpha, self.let, self.one)

    def materialize(self, value: str) -> str:
        # a state entry's value named before its assignment is copied (the name is reused)
        return self.let(value) if value.startswith("s_") else value

    def assign(self, key: str, value: str, expr: Expr) -> str:
        var = self._array(key)
        self.b.lines.append(f"{var} = {value};")
        return var

    def scale(self, key: str, factor: Coef) -> None:
        self.b.prepare(product_prepare(key, factor), needs=(key,))

    def run(self, form: Form) -> str:
        self.written, self.lazy = set(form.written), set(form.lazy)
        for pr in form.prepares:
            self.b.prepare(pr.fn, **pr.how)
        out = super().run(form)
        self.b.u = out
        return out

    def final_c(self, form: Form, p: str, lr_fn: Callable, lr_uses: Sequence[str]) -> str:
        """The C expression of the new parameter (``p``: the parameter after a decoupled
        decay; ``lr_fn(hyper, t)``: the step's learning rate, reading ``lr_uses``)."""
        self.p, self.lr_fn, self.lr_uses = p, lr_fn, tuple(lr_uses)
        return self.final(form)


class StoredCEmitter(CEmitter):
    """:class:`CEmitter` whose elementwise state is stored in ``rule.state_format``: the
    builder loads and stores those entries through the format's C
    (:meth:`~descentlab.optim.fused.FusedBuilder.store_as`)."""

    def __init__(self, builder: Any, prefix: str, rule: FormRule) -> None:
        super().__init__(builder, prefix)
        self.rule = rule

    def run(self, form: Form) -> str:
        fmt = self.rule.state_format
        assert fmt is not None
        for index, key in enumerate(self.rule.stored()):
            if key not in form.states:
                continue
            salt = None
            if fmt.salted:
                salt = self.b.coef(
                    f"{self.prefix}_salt{index}", lambda h, t, e, i=index: float(sr_salt(i, t))
                )
            self.b.store_as(key, fmt, key not in self.rule.nonnegative, salt)
        return super().run(form)

    def _array(self, key: str) -> str:
        if key in self.b.formats:  # a lazy entry is made with the stored state, at init
            self.lazy.discard(key)
        return super()._array(key)


register_emitters("c", CEmitter, StoredCEmitter)
