r"""A GPU kernel derived from the one form (:mod:`descentlab.optim.form`): Triton source text.

:class:`TritonEmitter` is the form's fourth emitter (beside the eager foreach, the fused C and
the float64 reference): it writes one primitive per line of a ``@triton.jit`` kernel, in the
form's operation order, each rounding as the C emitter's (``lerp``, ``addcmul`` and
``add(alpha=)`` through one fused multiply-add; the square root correctly rounded, as the
fused C's on every CPU whose MKL root it does not reproduce). :func:`program` chains the forms
of a whole optimizer's rules into one per-element program, and :func:`kernel_source` wraps it
in a **multi-tensor** kernel: one launch steps every tensor of a param group, each program
instance one ``(tensor, chunk)`` row of a block table, its tensor's addresses read from a
table of pointers and its coefficients from a table of per-tensor numbers (computed once per
step per group, on the host, in double precision; rounded to the compute type).

Storage and compute: float32 and float64 parameters compute in their own type; float16 and
bfloat16 are loaded, widened exactly to float32, computed there and rounded once per stored
value (parameters and state keep their dtype, as in torch's fused kernels and the fused C).

A final ``scale_by_lr`` is folded into the parameter update, ``p = fma(u, -lr, p)``, as the eager
backend's ``_foreach_add_(p, u, alpha=-lr)``. A form's ``prepare`` steps (state made on a first
step, per-tensor values the coefficients read) are collected in the :class:`Program` and run
on the host before the launch (:class:`~descentlab.optim.gpu.TritonPlan`).

This module only writes text: it imports neither triton nor a device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .base import Chain, Rule, decayed
from .form import Coef, Emitter, Expr, Form, FormRule, Prepare, primitive, product_prepare, spell

__all__ = [
    "Program",
    "TritonEmitter",
    "Unsupported",
    "compute_dtype",
    "emittable",
    "kernel_source",
    "program",
    "split",
]

#: storage dtype -> Triton type name
_TL = {
    torch.float32: "tl.float32",
    torch.float64: "tl.float64",
    torch.float16: "tl.float16",
    torch.bfloat16: "tl.bfloat16",
}


class Unsupported(ValueError):
    """The chain (at these hyperparameters) has no Triton form; the message says which rule."""


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The type a kernel computes in for parameters of ``dtype`` (float32 for 16-bit)."""
    if dtype not in _TL:
        raise Unsupported(f"no Triton kernel for {dtype} parameters")
    return torch.float64 if dtype is torch.float64 else torch.float32


@dataclass
class Program:
    """A chain's per-element program: kernel body lines, the arrays it touches (``p``, ``g``,
    then state keys, in pointer-table order), the state keys it writes, and its
    coefficients (``(name, fn)`` in coefficient-table order)."""

    lines: list[str] = field(default_factory=list)
    arrays: list[str] = field(default_factory=lambda: ["p", "g"])
    written: list[str] = field(default_factory=list)
    coefs: list[tuple[str, Coef]] = field(default_factory=list)
    prepares: list[Prepare] = field(default_factory=list)
    current: dict[str, str] = field(default_factory=dict)
    counter: int = 0

    def let(self, expr: str) -> str:
        name = f"v{self.counter}"
        self.counter += 1
        self.lines.append(f"{name} = {expr}")
        return name

    def array(self, key: str) -> str:
        """The variable holding ``key``'s current value (loaded at its first use)."""
        if key not in self.current:
            if key not in self.arrays:
                self.arrays.append(key)
            self.current[key] = self.let(f"_ld({self.arrays.index(key)})")
        return self.current[key]

    def coef(self, name: str, c: Coef) -> str:
        for i, (n, _) in enumerate(self.coefs):
            if n == name:
                return f"c{i}"
        self.coefs.append((name, c))
        return f"c{len(self.coefs) - 1}"


class TritonEmitter(Emitter):
    """One rule's form as Triton statements appended to a :class:`Program` (``u``: the
    variable holding the rule's input update; ``prefix`` names its coefficients)."""

    def __init__(self, prog: Program, u: str, prefix: str) -> None:
        self.prog, self.u, self.prefix = prog, u, prefix
        self.p: str | None = None  # a final form's parameter (after a decoupled decay)
        self.lr_fn: Any = None

    def leaf(self, name: str) -> str:
        if name == "g":
            return self.u
        if name == "p":
            return self.p or self.prog.array("p")
        if name in self.lazy:
            raise Unsupported(f"state {name!r} made on its first use has no Triton form yet")
        return self.prog.array(f"state:{name}")

    def statements(self, form: Form) -> None:
        self.lazy = set(form.lazy)
        super().statements(form)

    def coef(self, c: Coef) -> str:
        if c.lr:  # a final form's: the step's learning rate from the chain's scale_by_lr
            fn, lr_fn = c.fn, self.lr_fn
            c = Coef(c.name, lambda h, t: fn(h, t, lr_fn(h, t)), c.uses)
        return self.prog.coef(f"{self.prefix}.{c.name}", c)

    def scale(self, key: str, factor: Coef) -> None:
        self.prog.prepares.append(Prepare(product_prepare(key, factor), {}))

    def run(self, form: Form) -> str:
        if any(pr.reads_g for pr in form.prepares):  # a group's norm: torch ops before
            raise Unsupported(f"{self.prefix} reads its whole input before the kernel")
        self.prog.prepares.extend(form.prepares)
        return super().run(form)

    def apply(self, op: str, a: list[str], alpha: str | None) -> str:
        prim = primitive(op, alpha)  # the root is correctly rounded: kernel_source
        if prim is None:
            raise Unsupported(f"no Triton form for primitive {op!r}")
        return spell(prim.triton, a, alpha, self.prog.let, "_one")

    def assign(self, key: str, value: str, expr: Expr) -> str:
        k = f"state:{key}"
        self.prog.array(k)
        if k not in self.prog.written:
            self.prog.written.append(k)
        self.prog.current[k] = value
        return value


#: the correctly rounded root and quotient of each compute type (float32's ``sqrt_rn`` and
#: ``div_rn``; float64's ``sqrt`` and ``/`` are IEEE's)
_HELPERS = {
    "tl.float32": ("tl.sqrt_rn(x)", "tl.div_rn(a, b)"),
    "tl.float64": ("tl.sqrt(x)", "a / b"),
}


def _refuse_batched(hyper: Mapping[str, Any]) -> None:
    key = _batched(hyper)
    if key is not None:
        raise Unsupported(f"batched hyperparameter {key!r} (one value per row) has no Triton form")


def _batched(hyper: Mapping[str, Any]) -> str | None:
    for k, v in hyper.items():
        if isinstance(v, Tensor) and v.ndim >= 1 and v.numel() > 1:
            return k
        if isinstance(v, tuple) and any(isinstance(x, Tensor) and x.numel() > 1 for x in v):
            return k
    return None


def emittable(rule: Rule, hyper: Mapping[str, Any]) -> bool:
    """Whether ``rule`` has a per-element Triton program at ``hyper``'s structure."""
    try:
        program(Chain(rule), hyper, False)
    except Unsupported:
        return False
    return True


def split(rule: Chain, hyper: Mapping[str, Any]) -> int:
    """Where the chain's Triton part starts: after its last rule without a per-element form.
    The rules before it (a global-norm clip, Muon's orthogonalization, Shampoo's roots...) run
    with torch ops on the device and hand their updates to the kernel as its gradients.

    Raises :class:`Unsupported` where no rule is left for the kernel, where a rule before it
    is element-local (a rule that would belong in the kernel, but has no form), or where a
    rule before it updates the parameters itself (:meth:`~descentlab.optim.base.Chain.
    final_plan`: Muon's adjusted learning rate)."""
    _refuse_batched(hyper)
    rules = list(rule.rules)
    start = 0
    for k, r in enumerate(rules):
        if not emittable(r, hyper):
            start = k + 1
    local = [r.name for r in rules[:start] if r.local and r.elementwise and not emittable(r, hyper)]
    if local:
        raise Unsupported(f"{local[0]} has no form")
    if start == len(rules):
        raise Unsupported(f"{rules[-1].name} has no form")
    final = rule.final_plan(hyper)
    if final is not None and final[0] < start:  # it updates the parameters itself
        raise Unsupported(f"{rules[final[0]].name} has no form")
    return start


def program(rule: Chain, hyper: Mapping[str, Any], fold_lr: bool) -> Program:
    """The per-element program of ``rule``'s whole chain at ``hyper``'s structure (raises
    :class:`Unsupported` naming the first rule without a form, or a batched hyperparameter)."""
    _refuse_batched(hyper)
    rules = list(rule.rules)
    prog = Program()
    u = prog.array("g")
    final = rule.final_plan(hyper)
    if final is not None and not isinstance(rules[final[0]], FormRule):
        final = None
    fold = fold_lr and rules and type(rules[-1]).__name__ == "scale_by_lr"
    body = rules[: final[0] + 1] if final else rules[:-1] if fold else rules
    for r in rules:
        if not isinstance(r, FormRule):
            raise Unsupported(f"{r.name} has no form")
    em = None
    for k, r in enumerate(body):
        form = r.built(hyper)
        em = TritonEmitter(prog, u, f"{k}:{r.name}")
        u = em.run(form)
    p = prog.array("p")
    if final:  # the rule's own parameter update, after torch's p.mul_(1 - lr * wd)
        assert em is not None
        if final[1] is not None:
            p = prog.let(f"{p} * {prog.coef('final.decay', Coef('decay', decayed, ()))}")
        em.p, em.lr_fn = p, rules[-1].step_lr  # type: ignore[attr-defined]
        new_p = em.final(form)
    elif fold:
        neg_lr = rules[-1].built(hyper).coefs["lr"]  # type: ignore[attr-defined]
        c = prog.coef(f"{len(rules) - 1}:{rules[-1].name}.lr", neg_lr)
        new_p = prog.let(f"tl.fma({u}, {c}, {p})")
    else:
        new_p = prog.let(f"{p} + {u}")
    prog.current["p"] = new_p
    prog.written.insert(0, "p")
    return prog


def kernel_source(prog: Program, dtypes: Sequence[torch.dtype], name: str) -> str:
    """The ``@triton.jit`` multi-tensor kernel ``name`` of ``prog`` for arrays of ``dtypes``
    (one per entry of ``prog.arrays``).

    Arguments: ``ptrs`` (int64 ``[tensors, arrays]``: each tensor's addresses), ``numel``
    (int64 ``[tensors]``), ``blocks`` (int64 ``[blocks, 2]``: tensor index, first element),
    ``coefs`` (``[tensors, coefficients]`` in the compute type); constexprs ``NA``, ``NC``,
    ``BLOCK``. One program instance per row of ``blocks``.
    """
    comp = _TL[compute_dtype(dtypes[0])]
    root, quotient = _HELPERS[comp]
    out = [
        "import triton",
        "import triton.language as tl",
        "",
        "",
        "@triton.jit",
        "def _sqrt(x):",
        f"    return {root}",
        "",
        "",
        "@triton.jit",
        "def _div(a, b):",
        f"    return {quotient}",
        "",
        "",
        "@triton.jit",
        f"def {name}(ptrs, numel, blocks, coefs, NA: tl.constexpr, NC: tl.constexpr,",
        "        BLOCK: tl.constexpr):",
        "    row = tl.program_id(0).to(tl.int64)",
        "    i = tl.load(blocks + 2 * row)",
        "    offs = tl.load(blocks + 2 * row + 1) + tl.arange(0, BLOCK)",
        "    mask = offs < tl.load(numel + i)",
        f"    _one = tl.full((BLOCK,), 1, {comp})",
    ]
    for j, dt in enumerate(dtypes):
        out.append(f"    a{j} = tl.load(ptrs + i * NA + {j}).to(tl.pointer_type({_TL[dt]}))")
    for j in range(len(prog.coefs)):
        out.append(f"    c{j} = tl.load(coefs + i * NC + {j})")
    for line in prog.lines:
        load = line.find("_ld(")
        if load >= 0:
            j = int(line[load + 4 : line.index(")", load)])
            conv = f".to({comp})" if dtypes[j] is not compute_dtype(dtypes[j]) else ""
            line = f"{line[:load]}tl.load(a{j} + offs, mask=mask, other=0){conv}"
        out.append(f"    {line}")
    for key in prog.written:
        j = prog.arrays.index(key)
        v = prog.current[key]
        conv = f".to({_TL[dtypes[j]]})" if dtypes[j] is not compute_dtype(dtypes[j]) else ""
        out.append(f"    tl.store(a{j} + offs, {v}{conv}, mask=mask)")
    return "\n".join(out) + "\n"
