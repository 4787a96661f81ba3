"""The eager backend's emitter: a rule's form (:mod:`descentlab.optim.form`) run over a param
group's tensor lists with torch's ``_foreach_*`` kernels; the last reader of a value this step
made overwrites it (how often each value is read: :mod:`~descentlab.optim.ownership`). A rule
author reads :mod:`~descentlab.optim.form`; this module is how the eager step runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .base import (
    Numbers,
    Owned,
    State,
    bcast,
    lazy_state,
    per_step,
    scratch,
    small,
    step_values,
)
from .form import (
    _MASKS,
    Coef,
    Emitter,
    Expr,
    Form,
    Leaf,
    Op,
    _plain,
    primitive,
    register_emitters,
)
from .lowbit import sr_salt
from .ownership import Uses

if TYPE_CHECKING:
    from .form import FormRule

__all__ = ["EagerEmitter", "StoredEagerEmitter"]


def _number(v: Any) -> Any:
    """A coefficient's value: a float, or a 1-D tensor where a hyperparameter is batched."""
    if isinstance(v, Tensor):
        return v if v.ndim >= 1 and v.numel() > 1 else float(v)
    return float(v)


class _Scalars(list):
    """A coefficient's per-tensor values: one float per tensor, or with batched
    hyperparameters a length-K tensor (one value per row of the leading dimension); the
    values are not changed once made (:meth:`batched` and :meth:`one` are read once)."""

    def __init__(self, values: Any = (), *, one: Any = None, n: int = 0) -> None:
        if n:  # the same number for ``n`` tensors
            super().__init__([one] * n)
            self.batched = isinstance(one, Tensor)
            self._one = None if self.batched else one
            return
        super().__init__(values)
        self.batched = any(isinstance(v, Tensor) for v in self)
        first = self[0] if self else None
        same = not self.batched and all(v == first for v in self)
        self._one = first if same else None

    def one(self) -> float | None:
        """The value of every tensor, or None where they differ (or are batched)."""
        return self._one


def _batched_apply(op: str, a: list[Any], alpha: Any) -> list[Tensor]:
    """One primitive with a batched coefficient, tensor by tensor: its ``batched`` spelling
    (:data:`~descentlab.optim.form.PRIMITIVES`) with each operand broadcast along the tensor's
    leading dimension, as the fused kernels take one value per row (scalars' roundings as
    :mod:`descentlab.optim.base`'s batched helpers)."""
    prim = primitive(op, alpha)
    if prim is None or prim.batched is None:
        raise ValueError(f"primitive {op!r} takes no batched coefficient")
    operands = a if alpha is None else [*a, alpha]
    tensors = next(x for x in a if not isinstance(x, _Scalars))  # (a coefficient may be first)
    n = len(tensors)
    cols = [x if isinstance(x, list) else [x] * n for x in operands]
    out = []
    for i in range(n):
        xs, like = [c[i] for c in cols], tensors[i]
        out.append(prim.batched(*(bcast(x, like) for x in xs)))
    return out


class EagerEmitter(Emitter):
    """The form over a param group's tensor lists with torch's ``_foreach_*`` kernels (each
    primitive the kernel the C emitter reproduces), in as few passes as the form allows.

    Every value the step makes is counted by how many reads of it remain
    (:class:`~descentlab.optim.ownership.Uses`); its last reader updates it in place
    (``_foreach_mul_(t, c)``) instead of writing a new list. A state entry read only by its
    own assignment is that value's first buffer, so ``m = lerp(m, g, w)`` is
    ``m.lerp_(g, w)`` and ``v = addcmul(v * b, g, g, c)`` is ``v.mul_(b).addcmul_(g, g, c)``;
    an incoming update the previous rule of the chain made
    (:class:`~descentlab.optim.base.Owned`) and read once is used the same way. An in-place
    kernel rounds as its out-of-place twin, so the form's operation order and rounding stay.
    New values are written into the optimizer's scratch memory
    (:class:`~descentlab.optim.base.Workspace`), reused from step to step."""

    def __init__(
        self,
        grads: list[Tensor],
        params: list[Tensor],
        state: State,
        hyper: Mapping[str, Any],
    ) -> None:
        self.grads, self.params, self.state, self.given = grads, params, state, hyper
        self._hyper: dict[str, Any] | None = None
        self._steps: list[float] | None = None
        self._one_step: bool | None = None
        self.lazy: list[str] = []
        #: the step's learning rate of each tensor (a final form's :meth:`Form.lr_coef`)
        self.lrs: list[float] | None = None
        #: values this step made that a reader may overwrite: id -> [value, reads left]
        self._own: dict[int, list] = {}
        self._args: list[Any] = []
        self._uses: Uses | None = None
        self._grant: str | None = None  # a state entry its assignment may update in place

    @property
    def hyper(self) -> dict[str, Any]:
        """The group's hyperparameters, 0-dim tensors as numbers (made on first use)."""
        if self._hyper is None:
            self._hyper = {k: _plain(v) for k, v in self.given.items()}
        return self._hyper

    # -- ownership --------------------------------------------------------------------
    def _new(self, value: list[Tensor]) -> list[Tensor]:
        """A value made by this step (0 reads counted yet)."""
        self._own[id(value)] = [value, 0]
        return value

    def _last(self, x: Any) -> bool:
        """True where this primitive is the last reader of ``x``, a value of this step, and
        its result has ``x``'s dtype (an operand of another dtype would promote it)."""
        got = self._own.get(id(x))
        if got is None or got[1] != 1:
            return False
        return [a is x for a in self._args].count(True) == 1 and self._same_dtype(x)

    def _same_dtype(self, x: list[Tensor]) -> bool:
        """Every tensor operand of this primitive has ``x``'s dtype: always here (state,
        gradients and every value of the step have their parameter's dtype)."""
        return True

    def _read(self, x: Any) -> None:
        got = self._own.get(id(x))
        if got is not None:
            got[1] -= 1

    def made(self, e: Expr, v: Any) -> None:
        got = self._own.get(id(v))
        if got is not None:
            assert self._uses is not None
            got[1] += self._uses.nodes.get(id(e), 0)

    def _disown(self, *values: Any) -> None:
        for v in values:
            self._own.pop(id(v), None)

    def _scratch_copy(self, value: list[Tensor]) -> list[Tensor]:
        out = scratch(self.state, value)
        torch._foreach_copy_(out, value)
        return self._new(out)

    # -- evaluation -------------------------------------------------------------------
    def leaf_value(self, e: Leaf) -> Any:
        key = e.name.split(":", 1)[-1]
        v = self.leaf(key)
        assert self._uses is not None
        if key == self._grant or (
            e.name == "g" and isinstance(v, Owned) and self._uses.leaves[("g", 0)] == 1
        ):
            self._own.setdefault(id(v), [v, 0])
        return v

    def choose(self, e: Op, side: Any = None) -> Any:
        read: list[Any] = []

        def side_read(x: Expr) -> Any:
            got = self.value(x)
            read.append(got)
            return got

        v = super().choose(e, side_read)
        for x in read:
            self._read(x)
        return v

    def operate(self, e: Op, args: list[Any], alpha: Any) -> Any:
        self._args = args
        v = self.apply(e.op, args, alpha)
        own = self._own
        for x in args:  # each operand read once more
            got = own.get(id(x))
            if got is not None:
                got[1] -= 1
        return v

    def statements(self, form: Form) -> None:
        for pr in form.prepares:
            (pr.eager or pr.fn)(self.state, self.params, self.grads, self.given)
        self.lazy = form.lazy
        self._uses = Uses.of(form, final=self.lrs is not None)
        self._memo = {}
        for i, (kind, target, expr) in enumerate(form.statements):
            if kind == "product":
                self.scale(target, expr)
                continue
            if kind == "assign" and self._uses.own_reads[i] == 1:
                self._grant = target  # its one read is its buffer: updated in place
            v = self.value(expr)
            self._grant = None
            self._read(v)
            if kind == "let":
                v = self.materialize(v)
                self.made(target, v)
                self._memo[id(target)] = v
            else:
                self.assign(target, v, expr)

    def run(self, form: Form) -> Any:
        """Evaluate ``form``; returns the output (:class:`~descentlab.optim.base.Owned` where
        this step made it: the chain's next rule may overwrite it)."""
        out = super().run(form)
        if id(out) in self._own and not isinstance(out, Owned):
            return Owned(out)
        return out

    def leaf(self, name: str) -> list[Tensor]:
        if name == "g":
            return self.grads
        if name == "p":
            return self.params
        if name in self.lazy:  # made as the kernels make it: zeros laid out as the parameters
            return lazy_state(self.state, name, self.params, torch.zeros_like)
        return self.state[name]

    #: a coefficient's value as the step uses it, and a state number as a coefficient reads it
    number = staticmethod(_number)
    state_number = staticmethod(float)

    def coef(self, c: Coef) -> _Scalars:
        if self._steps is None:
            self._steps = step_values(self.state, len(self.params))
        h, fn, steps, number = self.hyper, c.fn, self._steps, self.number
        if c.varies:  # a number per tensor
            xs = c.extras(self.state, len(steps), self.lrs, self.state_number)
            return _Scalars(number(fn(h, t, x)) for t, x in zip(steps, xs, strict=True))
        if self._one_step is None:
            self._one_step = all(t == steps[0] for t in steps)
        if self._one_step and steps:  # every tensor at the same step: fn(h, t) once
            return _Scalars(one=number(fn(h, steps[0])), n=len(steps))
        return _Scalars(per_step(steps, lambda t: number(fn(h, t))))

    def scale(self, key: str, factor: Coef) -> None:
        values = self.coef(factor)
        if values.batched:
            torch._foreach_mul_(self.state[key], list(values))
        else:
            Numbers(self.state[key]).scale(list(values))

    def select(self, on: Any, a: Callable[[], Any], b: Callable[[], Any]) -> Any:
        one = on.one()
        if one is not None:  # the same branch for every tensor: only it is evaluated
            return a() if one != 0 else b()
        xs, ys = a(), b()
        self._disown(xs, ys)  # the chosen tensors of both stand in the result
        return [x if o != 0 else y for o, x, y in zip(on, xs, ys, strict=True)]

    def select_flag(self, flag: Any, a: Callable[[], Any], b: Callable[[], Any]) -> Any:
        if all(flag) or not any(flag):  # the branch every tensor takes, only
            return a() if flag[0] else b()
        xs, ys = a(), b()
        self._disown(xs, ys)
        self._args = [flag, xs, ys]
        return self.apply("where", self._args, None)

    def update_param(self, op: str, args: list[Any], alpha: Any) -> list[Tensor]:
        """In place on the parameters: ``p.addcdiv_(m, d, value=s)`` for ``addcdiv(p, ...)``."""
        kw = {} if alpha is None else {"alpha": alpha.one()}
        if None in kw.values():
            raise ValueError("a final form's alpha must be the same for every tensor")
        prim = primitive(op, alpha)
        if prim is None or prim.foreach is None:
            raise ValueError(f"no foreach form for primitive {op!r}")
        getattr(torch, f"_foreach_{prim.foreach.name}_")(
            self.params, *(_arg(x) for x in args[1:]), **kw
        )
        return self.params

    def apply(self, op: str, a: list[Any], alpha: Any) -> list[Tensor]:
        """``op``'s eager spellings in :data:`~descentlab.optim.form.PRIMITIVES`: its
        selection, its batched form where a coefficient is batched, else its foreach kernel."""
        prim = primitive(op, alpha)
        if prim is not None and prim.select is not None:
            return self._selection(op, a, prim.select)
        if prim is not None and all(isinstance(x, _Scalars) for x in a):
            return self._numbers(prim, a if alpha is None else [*a, alpha])
        if any(isinstance(x, _Scalars) and x.batched for x in (*a, alpha) if x is not None):
            return self._new(_batched_apply(op, a, alpha))
        f = prim.foreach if prim is not None else None
        if f is None:
            raise ValueError(f"no foreach form for primitive {op!r}")
        ops = a if alpha is None else [*a, alpha]
        x = ops[0]
        if isinstance(x, _Scalars):
            if not f.commutes:
                raise ValueError(f"a coefficient on the left of {op!r} has no foreach kernel")
            x, ops = ops[1], [ops[1], x, *ops[2:]]  # the same rounding
        if len(ops) == 1:
            return self._foreach(f.name, x)
        if f.coef == "list":
            return self._foreach(f.name, x, *ops[1:-1], _arg(ops[-1]))
        c = ops[-1]
        one = c.one()
        if f.coef == "alpha":
            if one is None:
                return self._each(f.name, x, *ops[1:-1], alpha=list(c))
            return self._foreach(f.name, x, *ops[1:-1], alpha=one)
        if one is None:
            return self._each(f.name, x, *ops[1:-1], list(c))
        return self._foreach(f.name, x, *ops[1:-1], one)

    def _numbers(self, prim: Any, ops: list[_Scalars]) -> _Scalars:
        """A primitive of per-tensor numbers alone (``eps * eps``): one number per tensor,
        rounded as the kernels compute it (in the parameter's dtype, float32 for 16-bit)."""
        out = []
        for i, p in enumerate(self.params):
            dtype = torch.float64 if p.dtype is torch.float64 else torch.float32
            xs = [torch.as_tensor(x[i], dtype=dtype) for x in ops]
            out.append(_number((prim.batched or prim.exact)(*xs)))
        return _Scalars(out)

    def _foreach(self, name: str, x: list[Tensor], *rest: Any, **kw: Any) -> list[Tensor]:
        """``_foreach_<name>`` on ``x``: in place where this is ``x``'s last reader."""
        if self._last(x):
            getattr(torch, f"_foreach_{name}_")(x, *rest, **kw)
            return x
        ws = self.state.get("_workspace")
        if ws is None or not self._same_dtype(x):
            return self._new(list(getattr(torch, f"_foreach_{name}")(x, *rest, **kw)))
        out = ws.take(x)  # the optimizer's scratch memory: nothing allocated
        if small(x):  # many small tensors: two foreach kernels beat a loop of out= calls
            torch._foreach_copy_(out, x)
            getattr(torch, f"_foreach_{name}_")(out, *rest, **kw)
            return self._new(out)
        col = lambda v, i: v[i] if isinstance(v, list) else v  # noqa: E731
        value = {"value": rest[-1]} if name in ("addcmul", "addcdiv") else {}
        args = rest[:-1] if value else rest
        f = getattr(torch, name)
        for i, (xi, oi) in enumerate(zip(x, out, strict=True)):
            f(
                xi,
                *(col(r, i) for r in args),
                **kw,
                **{k: col(v, i) for k, v in value.items()},
                out=oi,
            )
        return self._new(out)

    def _each(self, name: str, x: list[Tensor], *rest: Any, **kw: Any) -> list[Tensor]:
        """Tensor by tensor, a per-tensor number among the operands (``rest``/``kw`` lists
        aligned with ``x``, or one value for all)."""
        n = len(x)
        col = lambda v, i: v[i] if isinstance(v, list) else v  # noqa: E731
        calls = [
            ([col(r, i) for r in rest], {k: col(v, i) for k, v in kw.items()}) for i in range(n)
        ]
        if self._last(x):
            for xi, (r, k) in zip(x, calls, strict=True):
                getattr(xi, f"{name}_")(*r, **k)
            return x
        return self._new(
            [getattr(torch, name)(xi, *r, **k) for xi, (r, k) in zip(x, calls, strict=True)]
        )

    def _selection(self, op: str, a: list[Any], select: Callable[..., Any]) -> list[Any]:
        """Comparisons, where and clamp, tensor by tensor (``select``: the primitive's); a
        result that shares no tensor with its operands is this step's to overwrite."""
        if op == "ne0" and isinstance(a[0], _Scalars) and a[0].one() is not None:
            return [a[0].one() != 0] * len(a[0])  # a per-tensor flag, the same for all
        if op == "clamp" and all(isinstance(b, _Scalars) and b.one() is not None for b in a[1:]):
            x = self._foreach("clamp_min", a[0], a[1].one())  # one pair of foreach kernels
            torch._foreach_clamp_max_(x, a[2].one())
            return x
        cols = [x if isinstance(x, list) else [x] * len(self.params) for x in a]
        out = [select([c[i] for c in cols], p.dtype) for i, p in enumerate(self.params)]
        if op in _MASKS:
            return out
        given = {id(t) for x in a if isinstance(x, list) for t in x}
        if any(id(t) in given for t in out):
            self._disown(*a)
            return out
        return self._new(out)

    def materialize(self, value: Any) -> Any:
        # a named value must not change when a state entry it is is assigned later
        if any(value is v for v in self.state.values()):
            return self._scratch_copy(value)
        return value

    def assign(self, key: str, value: list[Tensor], expr: Expr) -> list[Tensor]:
        target = self.state[key]
        if value is not target:  # (in place already, or a where keeping the entry)
            torch._foreach_copy_(target, value)
        self._disown(target)
        return target


def _arg(y: Any) -> Any:
    if isinstance(y, _Scalars):
        one = y.one()
        return one if one is not None else list(y)
    return y


class StoredEagerEmitter(EagerEmitter):
    """:class:`EagerEmitter` whose elementwise state is stored in ``rule.state_format``
    (made as :class:`EagerEmitter`, then given its rule by :meth:`storing`)."""

    def storing(self, rule: FormRule) -> StoredEagerEmitter:
        """This emitter, reading and writing ``rule``'s stored state entries."""
        assert rule.state_format is not None
        self.fmt = rule.state_format
        self.rule = rule
        self.keys = rule.stored()
        self.work: dict[str, list[Tensor]] = {}
        self._one_dtype: bool | None = None
        return self

    def leaf(self, name: str) -> list[Tensor]:
        if name not in self.keys:
            return super().leaf(name)
        got = self.work.get(name)
        if got is None:
            cols = [self._entries(k) for k in self.fmt.keys(name)]
            signed = name not in self.rule.nonnegative
            got = self.work[name] = [
                self.fmt.decode([c[i] for c in cols], signed) for i in range(len(self.params))
            ]
        return got

    def _same_dtype(self, x: list[Tensor]) -> bool:
        """Every tensor operand of this primitive has ``x``'s dtype: the decoded state is
        float32 whatever the parameters' dtype (tensor by tensor where the group mixes
        dtypes)."""
        others = [a for a in self._args if a is not x and isinstance(a, list) and a]
        others = [a for a in others if isinstance(a[0], Tensor)]
        if self._one_dtype is None:
            first = self.params[0].dtype if self.params else None
            self._one_dtype = all(p.dtype == first for p in self.params)
        if self._one_dtype:
            return all(a[0].dtype == x[0].dtype for a in others)
        return all(ai.dtype == xi.dtype for a in others for ai, xi in zip(a, x, strict=True))

    def _entries(self, key: str) -> list[Any]:
        """A stored entry of every tensor (None where a tensor does not have it: a blockwise
        format's small tensors have no block scales)."""
        got = self.state.get(key)
        return [None] * len(self.params) if got is None else got

    def _aliased(self, value: Any) -> bool:
        lists = [*self.state.values(), *self.work.values(), self.grads, self.params]
        return any(value is v for v in lists)

    def materialize(self, value: Any) -> Any:
        return self._scratch_copy(value) if self._aliased(value) else value

    def assign(self, key: str, value: list[Tensor], expr: Expr) -> list[Tensor]:
        if key not in self.keys:
            return super().assign(key, value, expr)
        if value is not self.work.get(key) and self._aliased(value):
            value = self._scratch_copy(value)
        self.work[key] = value
        self._disown(value)  # the entry's value now: no later reader may overwrite it
        return value

    def statements(self, form: Form) -> None:
        super().statements(form)
        steps = step_values(self.state, len(self.params))
        for index, key in enumerate(self.keys):
            if key not in form.written:
                continue
            cols = [self._entries(k) for k in self.fmt.keys(key)]
            signed = key not in self.rule.nonnegative
            for i, v in enumerate(self.work[key]):
                self.fmt.encode(v, [c[i] for c in cols], signed, sr_salt(index, steps[i]))


register_emitters("eager", EagerEmitter, StoredEagerEmitter)
