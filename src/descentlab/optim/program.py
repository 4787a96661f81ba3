"""The collected program of a chain: what a kernel of the chain does per element, built once
from the rules' forms (:mod:`descentlab.optim.form`) whatever backend runs it.

:func:`collect` walks the chain as every backend walks it (:meth:`~descentlab.optim.Chain.
walk`) and records each rule's form in one :class:`ChainProgram`: its statements in order
(:class:`Stmt`: loads of the arrays, primitives, snapshots of state values, state stores, the
low-bit state's encode points, the parameter's update), the state arrays in pointer order and
those it writes, the low-bit formats of stored entries, the coefficients in their table's order
(:class:`~descentlab.optim.plan.Coefficient`: every kind of the form's coefficients in one) and
the Python steps before the kernel (:class:`~descentlab.optim.form.Prepare`).

A kernel backend is an emitter of this program plus a launcher: the fused C kernel
(:class:`~descentlab.optim.c_emitter.CKernel`, its loop body
:func:`~descentlab.optim.c_emitter.render`) and the Triton kernel
(:func:`~descentlab.optim.triton_emitter.render`). What a launch owns
whatever the backend (the coefficient table, prepares, the steady step) is a
:class:`~descentlab.optim.plan.KernelPlan` of the program. An emitter spells each primitive
from :data:`~descentlab.optim.form.PRIMITIVES` and chooses its own names; it adds no state,
coefficient or prepare of its own.

Values are named by tokens: ``g`` and ``p`` (the gradient and the parameter as loaded),
``s:<key>`` (state entry ``key``: as loaded, and after a store its stored value), ``%<n>``
(the value of statement ``n``) and ``c:<j>`` (coefficient ``j``).
"""

from __future__ import annotations

import dis
import types
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .base import Chain, Rule, decayed
from .form import Coef, Emitter, Expr, Form, FormRule, Prepare, lazy_zeros, primitive
from .form import product_prepare as _product
from .lowbit import sr_salt

__all__ = [
    "ChainProgram",
    "Coefficient",
    "NoProgram",
    "Stmt",
    "coefficient",
    "collect",
    "has_kernel_form",
    "reads_argument",
]


CoefFn = Callable[[Mapping[str, Any], float, Any], float]


@dataclass
class Coefficient:
    """A per-tensor (per-row with batched hyperparameters) number of a kernel:
    ``fn(hyper, t, extra)`` in double precision, ``extra`` being ``per_tensor(state, i)`` or
    None; ``uses``: the hyperparameters ``fn`` reads; ``reads``: the state entry of 0-dim
    tensors ``extra`` is (read a whole column at once: :meth:`KernelPlan.coefficient_table`)."""

    name: str
    fn: CoefFn
    per_tensor: Callable[[Mapping[str, list], int], Any] | None
    uses: tuple[str, ...] = ()
    reads: str | None = None
    #: whether the value may depend on the step ``t`` (None: :func:`reads_argument` of fn)
    steps: bool | None = None

    def __post_init__(self) -> None:
        if self.steps is None:
            self.steps = reads_argument(self.fn, 1)


#: names through which a function can reach its frame's locals without loading them
_FRAME_READERS = frozenset({"locals", "vars", "eval", "exec", "_getframe", "currentframe"})


def reads_argument(fn: Callable[..., Any], index: int) -> bool:
    """Whether ``fn``'s value may depend on its positional argument ``index``: True unless
    ``fn`` is a plain Python function whose own code never loads, stores or deletes that
    argument, shares it with a nested function or names a way to its frame's locals (a
    callable object, a ``functools.partial``, a builtin: True)."""
    code = fn.__code__ if type(fn) is types.FunctionType else None
    if code is None or index >= code.co_argcount:
        return True
    name = code.co_varnames[index]
    if name in code.co_cellvars or not _FRAME_READERS.isdisjoint(code.co_names):
        return True
    return any(
        name in (i.argval if isinstance(i.argval, tuple) else (i.argval,))
        for i in dis.get_instructions(code)
        if "FAST" in i.opname or "DEREF" in i.opname or "CLOSURE" in i.opname
    )


def coefficient(
    name: str, c: Any, lr_fn: Callable | None = None, lr_uses: Sequence[str] = ()
) -> Coefficient:
    """The kernel's :class:`Coefficient` of a form's :class:`~descentlab.optim.form.Coef`,
    whichever of its four kinds: ``fn(hyper, t)``; ``fn(hyper, t, x)`` reading a per-tensor
    number of the state (``reads``) or of a prepare (``per_tensor``); or a final form's
    ``fn(hyper, t, lr)`` of the step's learning rate ``lr_fn(hyper, t)`` (reading
    ``lr_uses``)."""
    fn, uses = c.fn, c.uses
    if c.per_tensor is not None:
        return Coefficient(name, fn, c.per_tensor, uses)
    if c.lr:
        assert lr_fn is not None, f"{c.name!r} reads the learning rate: final forms only"
        return Coefficient(name, lambda h, t, e: fn(h, t, lr_fn(h, t)), None, (*uses, *lr_uses))
    if c.reads is not None:
        return Coefficient(name, lambda h, t, e: fn(h, t, e), number_of(c.reads), uses, c.reads)
    return Coefficient(name, lambda h, t, e: fn(h, t), None, uses, steps=reads_argument(fn, 1))


def number_of(key: str) -> Callable[[Mapping[str, list], int], float]:
    """Tensor ``i``'s number of state ``key``, alone (:meth:`KernelPlan.coefficient_table`
    reads a whole column at once: :class:`~descentlab.optim.base.Numbers`)."""
    return lambda state, i: float(state[key][i])


class NoProgram(ValueError):
    """The chain has no per-element program at this structure (the message says why)."""


@dataclass(frozen=True)
class Stmt:
    """One statement of a :class:`ChainProgram`.

    ``kind``:
      - ``"load"``: the first use of ``out`` (``g``, ``p`` or ``s:<key>``);
      - ``"op"``: ``out = op(*args, alpha)``, a primitive of
        :data:`~descentlab.optim.form.PRIMITIVES`; ``inline``: a value used once, where a
        backend may write it into its reader (the decayed parameter, the plain update);
      - ``"let"``: ``out`` names the state value ``args[0]`` as it is now (a later store of
        that entry does not change it);
      - ``"store"``: ``s:<out>`` becomes ``args[0]``;
      - ``"commit"``: the rule that stores ``out`` in a low-bit format has made its last
        change of it (a backend may encode it here).
    """

    kind: str
    out: str
    op: str = ""
    args: tuple[str, ...] = ()
    alpha: str | None = None
    inline: bool = False


@dataclass(kw_only=True)
class ChainProgram:
    """A chain's per-element program at one structure (see the module's docstring)."""

    stmts: list[Stmt] = field(default_factory=list)
    #: the coefficients, in the kernel's table order
    coefs: list[Coefficient] = field(default_factory=list)
    #: the Python steps before the kernel, in order (``how``: ``fills``, ``needs``, ``steady``)
    prepares: list[Prepare] = field(default_factory=list)
    #: the state entries the kernel reads, in pointer order (after ``p`` and ``g``); a low-bit
    #: entry's companions (its block scales) follow it
    arrays: list[str] = field(default_factory=list)
    #: the state entries it writes, in the order of their first use
    written: list[str] = field(default_factory=list)
    #: entries stored in a low-bit format: key -> (the format, whether it may be negative,
    #: the coefficients of its stochastic rounding's salt -- its high and low 16 bits -- or
    #: None)
    formats: dict[str, tuple[Any, bool, tuple[str, str] | None]] = field(default_factory=dict)
    #: the token of the new parameter
    update: str = "p"
    #: the body divides or takes a root (:attr:`~descentlab.optim.form.Primitive.slow`)
    slow: bool = False
    #: the first rule, where its prepares read the raw gradients' values (a group's norm)
    reads_g: str | None = None
    #: the tokens a ``load`` statement has loaded
    loaded: set[str] = field(default_factory=set, repr=False)

    @property
    def state_arrays(self) -> list[str]:
        return self.arrays

    @property
    def state_format(self) -> Any:
        """The low-bit format of the stored state (one per chain), or None."""
        return next(iter(self.formats.values()))[0] if self.formats else None

    @property
    def fills(self) -> list[str]:
        """The state entries the prepares make where missing."""
        return [k for pr in self.prepares for k in pr.how.get("fills", ())]

    @property
    def rows_keys(self) -> set[str]:
        """The hyperparameters the coefficients read (a batched one makes them per row)."""
        return {u for c in self.coefs for u in c.uses}

    def stored_arrays(self) -> dict[str, tuple[str, int]]:
        """Every array a low-bit format stores: name -> (its key, its index in the format's
        entries)."""
        return {
            name: (key, idx)
            for key, (fmt, _, _) in self.formats.items()
            for idx, name in enumerate(fmt.keys(key))
        }

    def coef_index(self, name: str) -> int:
        return next(j for j, c in enumerate(self.coefs) if c.name == name)

    # -- building ---------------------------------------------------------------------
    def declare(self, c: Coefficient) -> str:
        """Coefficient ``c``'s token (a name declared before is refused)."""
        if any(d.name == c.name for d in self.coefs):
            raise ValueError(f"kernel coefficient {c.name!r} declared twice")
        self.coefs.append(c)
        return f"c:{len(self.coefs) - 1}"

    def op(self, op: str, args: Sequence[str], alpha: str | None = None, **kw: Any) -> str:
        prim = primitive(op, alpha)
        self.slow = self.slow or (prim is not None and prim.slow)
        out = f"%{len(self.stmts)}"
        self.stmts.append(Stmt("op", out, op, tuple(args), alpha, **kw))
        return out

    def array(self, key: str, *, write: bool = False) -> str:
        """State entry ``key``'s token (an array of the kernel; ``write``: it is stored)."""
        if key not in self.arrays:
            self.arrays.append(key)
        if write and key not in self.written:
            self.written.append(key)
        return f"s:{key}"


def has_kernel_form(rule: Rule) -> bool:
    """Whether ``rule`` can stand in a fused kernel's program: written in the form, or passing
    its input through there (:attr:`~descentlab.optim.Rule.kernel_passes`)."""
    return isinstance(rule, FormRule) or rule.kernel_passes


def collect(
    rule: Chain,
    hyper: Mapping[str, Any],
    fold_lr: bool,
    *,
    stored: bool = True,
    leave_out_passing: bool = False,
) -> ChainProgram:
    """The per-element program of ``rule``'s chain at ``hyper``'s structure (cached per chain,
    structure and options). ``stored``: low-bit state in its format (False: as float32 -- a
    blockwise format's small tensors); ``leave_out_passing``: a rule that passes its input
    through without a form (:attr:`~descentlab.optim.Rule.kernel_passes`: SAM's ascent link)
    is left out (the C kernel), else refused. Raises :class:`NoProgram` naming the first rule
    without a form, or a rule after the first whose prepares read its input's values."""
    leave_out = leave_out_passing and any(r.kernel_passes for r in rule.rules)
    key = (rule.fuse_signature(hyper), fold_lr, stored, leave_out)
    per_chain = _CACHE.setdefault(rule, {})
    got = per_chain.get(key)
    if got is None:
        got = per_chain[key] = _collect(rule, hyper, fold_lr, stored, leave_out)
    return got


#: the programs of each chain (weak: a chain's programs go with it)
_CACHE: weakref.WeakKeyDictionary[Chain, dict] = weakref.WeakKeyDictionary()


def _collect(
    rule: Chain, hyper: Mapping[str, Any], fold_lr: bool, stored: bool, leave_out: bool
) -> ChainProgram:
    walk = rule.walk(hyper, fold_lr)
    prog = ChainProgram()
    u = _load(prog, "g")
    rec: _Recorder | None = None
    form: Form | None = None
    k = 0
    for r in walk.body:
        if not isinstance(r, FormRule):
            if leave_out and has_kernel_form(r):
                continue
            raise NoProgram(f"{r.name} has no form")
        form = r.built(hyper)
        if any(pr.reads_g for pr in form.prepares):
            if u != "g":  # the kernel's prepares see the raw gradients, not this rule's input
                raise NoProgram(f"{r.name} reads its whole input before the kernel")
            prog.reads_g = r.name
        k += 1
        rec = _Recorder(prog, u, f"{r.name}{k}", r if stored and r.state_format else None)
        u = rec.run(form)
    p = _load(prog, "p")
    if walk.end == "final":  # the rule's own update, after p.mul_(1 - lr * wd)
        assert rec is not None and form is not None
        if walk.decay is not None:
            c = prog.declare(Coefficient("final_decay", decayed, None, ("lr", "weight_decay")))
            p = prog.op("mul", (p, c), inline=True)
        lr: Any = walk.lr
        rec.p, rec.lr_fn, rec.lr_uses = p, lr.step_lr, tuple(lr.lr_uses)
        prog.update = rec.final(form)
    elif walk.end == "fold":
        c = prog.declare(Coefficient("neglr", lambda h, t, e: -float(h["lr"]), None, ("lr",)))
        prog.update = prog.op("add", (p, u), c, inline=True)
    else:
        prog.update = prog.op("add", (p, u), inline=True)
    return prog


def _load(prog: ChainProgram, token: str) -> str:
    """``token``, loaded where it is first used."""
    if token not in prog.loaded:
        prog.loaded.add(token)
        prog.stmts.append(Stmt("load", token))
    return token


class _Recorder(Emitter):
    """One rule's form recorded into a :class:`ChainProgram` (``u``: the token of its input;
    ``prefix`` scopes its coefficients' names; ``stored``: the rule, where its state is kept in
    its low-bit format)."""

    def __init__(self, prog: ChainProgram, u: str, prefix: str, stored: FormRule | None) -> None:
        self.prog, self.u, self.prefix, self.stored = prog, u, prefix, stored
        self.p = "p"
        self.lr_fn: Callable | None = None
        self.lr_uses: tuple[str, ...] = ()
        self.keys: list[str] = []

    def run(self, form: Form) -> Any:
        self.written, self.lazy = set(form.written), set(form.lazy)
        self.prog.prepares.extend(form.prepares)
        rule = self.stored
        if rule is not None:
            fmt = rule.state_format
            if self.prog.formats and self.prog.state_format != fmt:
                raise NoProgram("two low-bit state formats in one chain")
            for index, key in enumerate(rule.stored()):
                if key not in form.states:
                    continue
                self.keys.append(key)
                salt = None
                if fmt.salted:  # the uint32 in two halves: exact in every compute type
                    salt = (
                        self._salt(f"salt{index}_hi", lambda s: s >> 16, index),
                        self._salt(f"salt{index}_lo", lambda s: s & 0xFFFF, index),
                    )
                self.prog.array(key)
                for extra in fmt.keys(key)[1:]:
                    self.prog.array(extra)
                self.prog.formats[key] = (fmt, key not in rule.nonnegative, salt)
        return super().run(form)

    def _salt(self, name: str, part: Callable[[int], int], index: int) -> str:
        c = Coefficient(
            f"{self.prefix}_{name}", lambda h, t, e: float(part(sr_salt(index, t))), None
        )
        self.prog.declare(c)
        return c.name

    def statements(self, form: Form) -> None:
        super().statements(form)
        for key in self.keys:
            if key in form.written:
                self.prog.stmts.append(Stmt("commit", key))

    def _lazy(self, key: str) -> None:
        if key in self.lazy:  # made as zeros before the kernel runs, where missing
            self.lazy.discard(key)
            if key not in self.prog.formats:  # (a stored entry is made at init)
                self.prog.prepares.append(lazy_zeros(key))

    def leaf(self, name: str) -> str:
        if name == "g":
            return self.u
        if name == "p":
            return self.p if self.p != "p" else _load(self.prog, "p")
        self._lazy(name)
        return _load(self.prog, self.prog.array(name, write=name in self.written))

    def coef(self, c: Coef) -> str:
        return self.prog.declare(
            coefficient(f"{self.prefix}_{c.name}", c, self.lr_fn, self.lr_uses)
        )

    def apply(self, op: str, a: list[str], alpha: str | None) -> str:
        if primitive(op, alpha) is None:
            raise NoProgram(f"no form for primitive {op!r}")
        return self.prog.op(op, a, alpha)

    def materialize(self, value: str) -> str:
        # a state value named before its assignment keeps that value (the entry may change)
        if not value.startswith("s:"):
            return value
        out = f"%{len(self.prog.stmts)}"
        self.prog.stmts.append(Stmt("let", out, args=(value,)))
        return out

    def assign(self, key: str, value: str, expr: Expr) -> str:
        self._lazy(key)
        token = self.prog.array(key, write=True)
        if key not in self.prog.formats:  # (a stored entry is decoded where first read)
            _load(self.prog, token)
        self.prog.stmts.append(Stmt("store", key, args=(value,)))
        return token

    def scale(self, key: str, factor: Coef) -> None:
        self.prog.prepares.append(Prepare(_product(key, factor), {"needs": (key,)}))
