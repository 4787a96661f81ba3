r"""One form for an elementwise rule's math, from which every backend is derived.

A rule written in this form (a :class:`FormRule`) states its per-element update once, with
torch-like primitives over named state, the incoming update ``g`` and the parameter ``p``;
the operation order is the form's, and every backend follows it:

- :class:`EagerEmitter` runs it with ``torch._foreach_*`` kernels over a param group (the
  eager backend: :meth:`FormRule.update`);
- :class:`CEmitter` writes it into the fused backend's per-element C
  (:class:`~descentlab.optim.fused.FusedBuilder`: :meth:`FormRule.fuse`), each primitive
  rounding exactly as its torch kernel does (``lerp``, ``addcmul`` and ``add(alpha=)`` through
  one fused multiply-add, ``sqrt`` as torch's on this CPU: see :mod:`descentlab.optim.fused`),
  so the two backends agree bit for bit by construction;
- :func:`reference` evaluates it in float64 element by element from the primitives'
  mathematical definitions (the tests' independent check of both).

A GPU emitter (the next issue's) is one more class with the same interface: ``leaf``,
``coef``, ``apply`` (one primitive), ``assign`` and ``result``; no rule changes.

Example: AdaBelief's moments (:mod:`descentlab.optim.adabelief`)::

    def form(self, f, hyper):
        b1, b2 = f.coef("1mb1", lambda h, t: 1 - h["betas"][0]), ...
        m = f.assign("exp_avg", lerp(f.state("exp_avg"), f.g, b1))
        d = f.let(f.g - m)
        s = f.assign("exp_avg_var", addcmul(f.state("exp_avg_var") * b2, d, d, one_minus_b2) + eps)

Coefficients (``f.coef``) are the per-tensor numbers -- ``1 - beta1``, bias corrections,
``eps`` -- computed in Python in double precision once per step per group (per row with
batched hyperparameters) from the hyperparameters and the step count ``t``, and rounded to the
tensor's dtype where used (as torch rounds a Python scalar).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .base import Rule, State, bcast, step_values, zeros
from .lowbit import StateFormat, sr_salt, state_format

__all__ = [
    "CEmitter",
    "Coef",
    "EagerEmitter",
    "Expr",
    "Form",
    "FormRule",
    "StoredCEmitter",
    "StoredEagerEmitter",
    "absolute",
    "addcdiv",
    "addcmul",
    "lerp",
    "maximum",
    "reference",
    "sign",
    "sqrt",
]

CoefFn = Callable[[Mapping[str, Any], float], float]


# --------------------------------------------------------------------------------------
# Expressions
# --------------------------------------------------------------------------------------


class Expr:
    """A per-element value: a leaf (``g``, ``p``, a state entry, a coefficient) or a primitive
    applied to expressions. ``+ - * /`` and unary ``-`` build primitives too."""

    def __add__(self, other: Expr) -> Expr:
        return Op("add", (self, other))

    def __sub__(self, other: Expr) -> Expr:
        return Op("sub", (self, other))

    def __mul__(self, other: Expr) -> Expr:
        return Op("mul", (self, other))

    def __truediv__(self, other: Expr) -> Expr:
        return Op("div", (self, other))

    def __neg__(self) -> Expr:
        return Op("neg", (self,))


@dataclass(eq=False)
class Leaf(Expr):
    """``g`` (the incoming update), ``p`` (the parameter) or ``state:<key>`` at a version."""

    name: str
    version: int = 0


@dataclass(eq=False)
class Coef(Expr):
    """A per-tensor number ``fn(hyper, t)`` (``uses``: the hyperparameters it reads)."""

    name: str
    fn: CoefFn
    uses: tuple[str, ...]


@dataclass(eq=False)
class Op(Expr):
    op: str
    args: tuple[Expr, ...]
    alpha: Coef | None = None


@dataclass(eq=False)
class Let(Expr):
    """An expression evaluated once, where the form names it (:meth:`Form.let`)."""

    expr: Expr
    index: int


def lerp(a: Expr, b: Expr, w: Coef) -> Expr:
    """``a + w (b - a)`` as torch's ``lerp`` rounds it (one fused multiply-add)."""
    return Op("lerp", (a, b, w))


def addcmul(x: Expr, a: Expr, b: Expr, value: Coef) -> Expr:
    """``x + value * a * b`` as torch's ``addcmul`` rounds it."""
    return Op("addcmul", (x, a, b, value))


def addcdiv(x: Expr, a: Expr, b: Expr, value: Coef) -> Expr:
    """``x + (value * a) / b`` as torch's ``addcdiv`` rounds it."""
    return Op("addcdiv", (x, a, b, value))


def add(x: Expr, y: Expr, alpha: Coef) -> Expr:
    """``x + alpha * y`` as torch's ``add(alpha=)`` rounds it (one fused multiply-add)."""
    return Op("add", (x, y), alpha)


def sqrt(x: Expr) -> Expr:
    """The square root (torch's on this CPU: see
    :func:`~descentlab.optim.fused.sqrt_reproduces_torch`)."""
    return Op("sqrt", (x,))


def maximum(a: Expr, b: Expr) -> Expr:
    """The larger of two values, NaN if either is (torch's ``maximum``)."""
    return Op("maximum", (a, b))


def absolute(x: Expr) -> Expr:
    """``|x|`` (torch's ``abs``: ``|-0| = +0``, NaN stays NaN)."""
    return Op("abs", (x,))


def sign(x: Expr) -> Expr:
    """-1, 0 or 1 (NaN stays NaN; a zero keeps its sign), torch's ``sign``."""
    return Op("sign", (x,))


# --------------------------------------------------------------------------------------
# Forms
# --------------------------------------------------------------------------------------


@dataclass
class Form:
    """One rule's per-element program: statements in order, built by :meth:`FormRule.form`.

    ``f.g`` is the incoming update, ``f.p`` the parameter; :meth:`state` reads a state entry,
    :meth:`coef` declares a coefficient, :meth:`let` names a value (evaluated there, once),
    :meth:`assign` writes a state entry (later reads see the new value; reading the old one
    after it is refused), :meth:`out` sets the rule's output.
    """

    g: Expr = field(default_factory=lambda: Leaf("g"))
    p: Expr = field(default_factory=lambda: Leaf("p"))
    statements: list[tuple[str, Any, Expr]] = field(default_factory=list)
    coefs: dict[str, Coef] = field(default_factory=dict)
    states: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    output: Expr | None = None
    _versions: dict[str, int] = field(default_factory=dict)

    def state(self, key: str) -> Expr:
        if key not in self.states:
            self.states.append(key)
        return Leaf(f"state:{key}", self._versions.get(key, 0))

    def coef(self, name: str, fn: CoefFn, uses: Sequence[str] = ()) -> Coef:
        if name in self.coefs:
            raise ValueError(f"coefficient {name!r} declared twice")
        c = self.coefs[name] = Coef(name, fn, tuple(uses))
        return c

    def let(self, expr: Expr) -> Expr:
        self._check(expr)
        named = Let(expr, len(self.statements))
        self.statements.append(("let", named, expr))
        return named

    def assign(self, key: str, expr: Expr) -> Expr:
        self._check(expr)
        self.state(key)
        if key not in self.written:
            self.written.append(key)
        self.statements.append(("assign", key, expr))
        self._versions[key] = self._versions.get(key, 0) + 1
        return Leaf(f"state:{key}", self._versions[key])

    def out(self, expr: Expr) -> None:
        self._check(expr)
        self.output = expr

    def _check(self, expr: Expr) -> None:
        """Refuse a read of a state entry's value from before its last assignment (every
        backend would see the new one)."""
        for leaf in _leaves(expr):
            key = leaf.name.removeprefix("state:")
            if leaf.name.startswith("state:") and leaf.version != self._versions.get(key, 0):
                raise ValueError(
                    f"the form reads {key!r} from before its update; name that value with "
                    "let() before the assignment"
                )


def _leaves(expr: Expr) -> list[Leaf]:
    if isinstance(expr, Leaf):
        return [expr]
    if isinstance(expr, Op):
        return [x for a in expr.args for x in _leaves(a)]
    return []


# --------------------------------------------------------------------------------------
# Emitters: one per target. Each evaluates the statements in order; ``apply`` does one
# primitive on already evaluated operands.
# --------------------------------------------------------------------------------------


class Emitter(ABC):
    """What a target implements (the C kernel, the eager foreach kernels, a GPU kernel)."""

    @abstractmethod
    def leaf(self, name: str) -> Any:
        """The value of a leaf: ``g``, ``p`` or a state entry."""

    @abstractmethod
    def coef(self, c: Coef) -> Any:
        """The value of a per-tensor coefficient."""

    @abstractmethod
    def apply(self, op: str, args: list[Any], alpha: Any) -> Any:
        """One primitive ``op`` on already evaluated operands."""

    @abstractmethod
    def assign(self, key: str, value: Any, expr: Expr) -> Any:
        """Store ``value`` as the new state entry ``key``; returns what later reads see."""

    def materialize(self, value: Any) -> Any:
        """A value named by ``let``: evaluated here, once."""
        return value

    def run(self, form: Form) -> Any:
        """Evaluate ``form``; returns the output's value."""
        memo: dict[int, Any] = {}

        def ev(e: Expr) -> Any:
            got = memo.get(id(e))
            if got is not None:
                return got
            if isinstance(e, Leaf):
                v = self.leaf(e.name.split(":", 1)[-1] if ":" in e.name else e.name)
            elif isinstance(e, Coef):
                v = self.coef(e)
            elif isinstance(e, Let):
                raise AssertionError("a let is evaluated where it is declared")
            else:
                assert isinstance(e, Op)
                args = [ev(a) for a in e.args]
                v = self.apply(e.op, args, None if e.alpha is None else ev(e.alpha))
            memo[id(e)] = v
            return v

        for kind, target, expr in form.statements:
            if kind == "let":
                memo[id(target)] = self.materialize(ev(expr))
            else:
                self.assign(target, ev(expr), expr)
        assert form.output is not None, "a form must set its output with out()"
        return ev(form.output)


class CEmitter(Emitter):
    """Per-element C for the fused backend's builder (every value of type ``T``)."""

    def __init__(self, builder: Any, prefix: str) -> None:
        self.b, self.prefix = builder, prefix
        self.one: str | None = None

    def leaf(self, name: str) -> str:
        if name == "g":
            return self.b.u
        if name == "p":
            return "p"
        return self.b.state(name, write=name in self.written)

    def coef(self, c: Coef) -> str:
        fn = c.fn
        return self.b.coef(f"{self.prefix}_{c.name}", lambda h, t, e: fn(h, t), uses=c.uses)

    def apply(self, op: str, a: list[str], alpha: str | None) -> str:
        b = self.b
        if op == "add" and alpha is not None:
            return b.let(f"dl_fma({a[1]}, {alpha}, {a[0]})")
        if op in _C_INFIX:
            return b.let(f"{a[0]} {_C_INFIX[op]} {a[1]}")
        if op == "neg":
            return b.let(f"-{a[0]}")
        if op == "lerp":
            return b.let(f"dl_lerp({a[0]}, {a[1]}, {a[2]})")
        if op == "addcmul":
            return b.let(f"dl_fma({a[3]} * {a[1]}, {a[2]}, {a[0]})")
        if op == "addcdiv":
            return b.let(f"{a[0]} + ({a[3]} * {a[1]}) / {a[2]}")
        if op == "sqrt":
            return b.let(f"dl_sqrt({a[0]})")
        if op == "maximum":
            return b.let(f"(dl_isnan({a[1]}) | ({a[1]} > {a[0]})) ? {a[1]} : {a[0]}")
        if op == "abs":  # x + 0 turns -0 into +0, as torch's abs
            return b.let(f"({a[0]} < 0) ? -{a[0]} : {a[0]} + 0")
        if op == "sign":
            if self.one is None:
                self.one = b.coef(f"{self.prefix}_one", lambda h, t, e: 1.0)
            x, one = a[0], self.one
            return b.let(f"({x} > 0) ? {one} : (({x} < 0) ? -{one} : {x})")
        raise ValueError(f"no C form for primitive {op!r}")

    def assign(self, key: str, value: str, expr: Expr) -> str:
        var = self.b.state(key, write=True)
        self.b.line(f"{var} = {value};")
        return var

    def run(self, form: Form) -> str:
        self.written = set(form.written)
        out = super().run(form)
        self.b.u = out
        return out


_C_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


class _Scalars(list):
    """A coefficient's per-tensor values: one float per tensor, or with batched
    hyperparameters a length-K tensor (one value per row of the leading dimension)."""

    @property
    def batched(self) -> bool:
        return any(isinstance(v, Tensor) for v in self)

    def one(self) -> float | None:
        first = self[0]
        if self.batched:
            return None
        return first if all(v == first for v in self) else None


def _batched_apply(op: str, a: list[Any], alpha: Any) -> list[Tensor]:
    """One primitive with a batched coefficient, tensor by tensor (the value broadcast along
    each tensor's leading dimension, as the fused kernels take one value per row; scalars'
    roundings as :mod:`descentlab.optim.base`'s batched helpers)."""
    n = len(next(x for x in a if not isinstance(x, _Scalars)))
    cols = [x if isinstance(x, list) else [x] * n for x in a]
    out = []
    for i in range(n):
        xs = [c[i] for c in cols]
        like = next(x for x in xs if isinstance(x, Tensor) and x.ndim >= 1)
        v = [bcast(x, like) for x in xs]
        if op in ("add", "sub", "mul", "div"):
            y = v[1] if alpha is None else v[1] * bcast(alpha[i], like)
            out.append(getattr(torch, op if op != "sub" else "subtract")(v[0], y))
        elif op == "lerp":
            out.append(torch.lerp(v[0], v[1], v[2]))
        elif op == "addcmul":
            out.append(v[0] + v[1] * v[2] * v[3])
        elif op == "addcdiv":
            out.append(v[0] + (v[3] * v[1]) / v[2])
        else:
            raise ValueError(f"primitive {op!r} takes no batched coefficient")
    return out


class EagerEmitter(Emitter):
    """The form over a param group's tensor lists with torch's ``_foreach_*`` kernels (each
    primitive the kernel the C emitter reproduces)."""

    def __init__(
        self,
        grads: list[Tensor],
        params: list[Tensor],
        state: State,
        hyper: Mapping[str, Any],
    ) -> None:
        self.grads, self.params, self.state = grads, params, state
        self.hyper = {k: _plain(v) for k, v in hyper.items()}
        self._steps: list[float] | None = None

    def leaf(self, name: str) -> list[Tensor]:
        if name == "g":
            return self.grads
        if name == "p":
            return self.params
        return self.state[name]

    def coef(self, c: Coef) -> _Scalars:
        if self._steps is None:
            self._steps = step_values(self.state, len(self.params))
        h = self.hyper
        return _Scalars(_number(c.fn(h, t)) for t in self._steps)

    def apply(self, op: str, a: list[Any], alpha: Any) -> list[Tensor]:
        f = torch
        if any(isinstance(x, _Scalars) and x.batched for x in (*a, alpha) if x is not None):
            return _batched_apply(op, a, alpha)
        if op in ("add", "sub", "mul", "div"):
            x, y = a
            if isinstance(x, _Scalars):
                if op in ("mul", "add"):  # commutative: the same rounding
                    x, y = y, x
                else:
                    raise ValueError(f"a coefficient on the left of {op!r} has no foreach kernel")
            if alpha is not None:
                if alpha.one() is not None:
                    return list(f._foreach_add(x, y, alpha=alpha.one()))
                return [torch.add(xi, yi, alpha=ai) for xi, yi, ai in zip(x, y, alpha, strict=True)]
            return list(getattr(f, f"_foreach_{op}")(x, _arg(y)))
        if op == "neg":
            return list(f._foreach_neg(a[0]))
        if op == "lerp":
            w = a[2]
            if w.one() is not None:
                return list(f._foreach_lerp(a[0], a[1], w.one()))
            return [torch.lerp(x, y, wi) for x, y, wi in zip(a[0], a[1], w, strict=True)]
        if op in ("addcmul", "addcdiv"):
            return list(getattr(f, f"_foreach_{op}")(a[0], a[1], a[2], _arg(a[3])))
        if op == "sqrt":
            return list(f._foreach_sqrt(a[0]))
        if op == "maximum":
            return list(f._foreach_maximum(a[0], a[1]))
        if op == "sign":
            return list(f._foreach_sign(a[0]))
        if op == "abs":
            return list(f._foreach_abs(a[0]))
        raise ValueError(f"no foreach form for primitive {op!r}")

    def materialize(self, value: Any) -> Any:
        # a named value must not change when a state entry it is is assigned later
        if any(value is v for v in self.state.values()):
            return list(torch._foreach_clone(value))
        return value

    def assign(self, key: str, value: list[Tensor], expr: Expr) -> list[Tensor]:
        torch._foreach_copy_(self.state[key], value)
        return self.state[key]


def _arg(y: Any) -> Any:
    if isinstance(y, _Scalars):
        one = y.one()
        return one if one is not None else list(y)
    return y


def _number(v: Any) -> Any:
    """A coefficient's value: a float, or a 1-D tensor where a hyperparameter is batched."""
    if isinstance(v, Tensor):
        return v if v.ndim >= 1 and v.numel() > 1 else float(v)
    return float(v)


def _plain(v: Any) -> Any:
    if isinstance(v, Tensor) and v.ndim == 0:
        return v.item()
    if isinstance(v, tuple):
        return tuple(_plain(x) for x in v)
    return v


def reference(
    form: Form, g: Tensor, p: Tensor, state: dict[str, Tensor], hyper: Mapping[str, Any], t: float
) -> Tensor:
    """The form in float64 from each primitive's definition (no fused roundings, torch's
    kernels not used): the update of one tensor; ``state`` is updated in place."""

    class _Ref(Emitter):
        def leaf(self, name: str) -> Any:
            return {"g": g, "p": p}.get(name, state.get(name))

        def coef(self, c: Coef) -> float:
            return float(c.fn(hyper, t))

        def apply(self, op: str, a: list[Any], alpha: Any) -> Any:
            if op == "add":
                return a[0] + (a[1] if alpha is None else alpha * a[1])
            if op == "sub":
                return a[0] - a[1]
            if op == "mul":
                return a[0] * a[1]
            if op == "div":
                return a[0] / a[1]
            if op == "neg":
                return -a[0]
            if op == "lerp":
                return a[0] + a[2] * (a[1] - a[0])
            if op == "addcmul":
                return a[0] + a[3] * a[1] * a[2]
            if op == "addcdiv":
                return a[0] + a[3] * a[1] / a[2]
            if op == "sqrt":
                return a[0] ** 0.5 if isinstance(a[0], float) else torch.sqrt(a[0])
            if op == "maximum":
                return torch.maximum(a[0], a[1])
            if op == "sign":
                return torch.sign(a[0])
            if op == "abs":
                return abs(a[0])
            raise ValueError(op)

        def assign(self, key: str, value: Any, expr: Expr) -> Any:
            state[key] = value
            return value

    return _Ref().run(form)


# --------------------------------------------------------------------------------------
# Rules written in the form
# --------------------------------------------------------------------------------------


class FormRule(Rule):
    """An elementwise rule whose math is its :meth:`form`: the eager ``update`` and the fused
    ``fuse`` are derived from it (:class:`EagerEmitter`, :class:`CEmitter`), its state is
    created as zeros (the keys in ``state_keys``), and its kernel's structure is the values of
    its declared flags (:attr:`~descentlab.optim.Rule.checks`).

    Subclasses set ``name``, ``state_keys``, ``checks`` and write :meth:`form`.
    """

    local = True
    needs_step = True

    @abstractmethod
    def form(self, f: Form, hyper: Mapping[str, Any]) -> None:
        """Write the per-element math into ``f`` (``hyper``: only flags may choose the code)."""

    def built(self, hyper: Mapping[str, Any]) -> Form:
        """The form at these hyperparameters' structure (cached per signature)."""
        key = self.fuse_signature(hyper)
        cache = self.__dict__.setdefault("_cache_forms", {})
        form = cache.get(key)
        if form is None:
            form = Form()
            self.form(form, hyper)
            cache[key] = form
        return form

    #: state entries that are never negative (a second moment): a low-bit format may store
    #: them unsigned (:mod:`descentlab.optim.lowbit`)
    nonnegative: tuple[str, ...] = ()
    #: how the state is stored (None: in the parameters' dtype); see :meth:`with_state`
    state_format: StateFormat | None = None

    def init(self, params: list[Tensor]) -> State:
        if self.state_format is not None:
            return _stored_init(self, params)
        return {k: zeros(params) for k in self.state_keys}

    def __getstate__(self) -> dict[str, Any]:
        # the built forms are a cache (their coefficients are local functions: not picklable)
        return {k: v for k, v in self.__dict__.items() if k != "_cache_forms"}

    def fuse_signature(self, hyper: Mapping[str, Any]) -> tuple:
        from .hyperspec import Flag

        flags = tuple(bool(hyper[k]) for k, s in self.checks.items() if isinstance(s, Flag))
        return flags if self.state_format is None else (*flags, self.state_format.tag)

    def update(self, grads, state, params, hyper):
        if self.state_format is not None:
            emitter: EagerEmitter = StoredEagerEmitter(grads, params, state, hyper, self)
        else:
            emitter = EagerEmitter(grads, params, state, hyper)
        return emitter.run(self.built(hyper)), state

    def fuse(self, b: Any, hyper: Mapping[str, Any]) -> bool:
        if self.state_format is not None:
            StoredCEmitter(b, self.name, self).run(self.built(hyper))
        else:
            CEmitter(b, self.name).run(self.built(hyper))
        return True

    def with_state(self, state_dtype: str | StateFormat | None) -> FormRule:
        """A copy of this rule whose state is stored as ``state_dtype`` (``"int8"``,
        ``"bfloat16"``, a :class:`~descentlab.optim.lowbit.StateFormat`, or None for the
        parameters' dtype): the composable form of an optimizer's ``state_dtype=``."""
        rule = copy.copy(self)
        rule.state_format = state_format(state_dtype)
        return rule

    def stored_keys(self) -> tuple[str, ...]:
        """The state entries as stored (a low-bit format's companions included)."""
        fmt = self.state_format
        if fmt is None:
            return tuple(self.state_keys)
        return tuple(k for key in self.state_keys for k in fmt.keys(key))


# --------------------------------------------------------------------------------------
# Stored state: a low-bit format (descentlab.optim.lowbit) where the emitters load and store
# state. A stored entry is decoded to float32 when first read, later reads in the step see
# the float32 values the form computes, and written entries are encoded once, at the end.
# --------------------------------------------------------------------------------------


def _stored_init(rule: FormRule, params: list[Tensor]) -> State:
    fmt = rule.state_format
    assert fmt is not None
    out: State = {}
    for key in rule.state_keys:
        cols = fmt.init(params, key not in rule.nonnegative)
        out.update(zip(fmt.keys(key), cols, strict=True))
    return out


class StoredEagerEmitter(EagerEmitter):
    """:class:`EagerEmitter` whose state is stored in ``rule.state_format``."""

    def __init__(
        self,
        grads: list[Tensor],
        params: list[Tensor],
        state: State,
        hyper: Mapping[str, Any],
        rule: FormRule,
    ) -> None:
        super().__init__(grads, params, state, hyper)
        assert rule.state_format is not None
        self.fmt = rule.state_format
        self.rule = rule
        self.work: dict[str, list[Tensor]] = {}

    def leaf(self, name: str) -> list[Tensor]:
        if name not in self.rule.state_keys:
            return super().leaf(name)
        got = self.work.get(name)
        if got is None:
            cols = [self.state[k] for k in self.fmt.keys(name)]
            signed = name not in self.rule.nonnegative
            got = self.work[name] = [
                self.fmt.decode([c[i] for c in cols], signed) for i in range(len(self.params))
            ]
        return got

    def _aliased(self, value: Any) -> bool:
        lists = [*self.state.values(), *self.work.values(), self.grads, self.params]
        return any(value is v for v in lists)

    def materialize(self, value: Any) -> Any:
        return list(torch._foreach_clone(value)) if self._aliased(value) else value

    def assign(self, key: str, value: list[Tensor], expr: Expr) -> list[Tensor]:
        if key not in self.rule.state_keys:
            return super().assign(key, value, expr)
        if self._aliased(value):
            value = list(torch._foreach_clone(value))
        self.work[key] = value
        return value

    def run(self, form: Form) -> Any:
        out = super().run(form)
        steps = step_values(self.state, len(self.params))
        for index, key in enumerate(self.rule.state_keys):
            if key not in form.written:
                continue
            cols = [self.state[k] for k in self.fmt.keys(key)]
            signed = key not in self.rule.nonnegative
            for i, v in enumerate(self.work[key]):
                self.fmt.encode(v, [c[i] for c in cols], signed, sr_salt(index, steps[i]))
        return out


class StoredCEmitter(CEmitter):
    """:class:`CEmitter` whose state is stored in ``rule.state_format``: the builder loads
    and stores those entries through the format's C (:meth:`FusedBuilder.store_as`)."""

    def __init__(self, builder: Any, prefix: str, rule: FormRule) -> None:
        super().__init__(builder, prefix)
        self.rule = rule

    def run(self, form: Form) -> str:
        fmt = self.rule.state_format
        assert fmt is not None
        for index, key in enumerate(self.rule.state_keys):
            if key not in form.states:
                continue
            salt = None
            if fmt.salted:
                salt = self.b.coef(
                    f"{self.prefix}_salt{index}", lambda h, t, e, i=index: float(sr_salt(i, t))
                )
            self.b.store_as(key, fmt, key not in self.rule.nonnegative, salt)
        return super().run(form)
