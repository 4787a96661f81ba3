"""The GPU backend: a CUDA param group steps in one launch of a Triton kernel generated from
its chain's forms (:mod:`descentlab.optim.triton_emitter`).

:func:`triton_plan` is a CUDA group's plan (phase 1 of a step: it refuses, before anything
changes, what the kernel cannot step), :meth:`TritonPlan.run` the update (phase 2); the
optimizer's fused path (:class:`~descentlab.optim.fusedpath.FusedPath`) chooses it and decides
what a refusal becomes. A chain with a rule not written in the form runs eagerly on the GPU
(``fused=True`` refuses it). Kernels are cached per (chain
structure, dtypes); their source is text compiled by Triton. Low-bit state
(:mod:`~descentlab.optim.lowbit`) is decoded and encoded in the kernel; a blockwise format's
small tensors, whose state stays float32, take a second launch of the program without storage.

Without a GPU the same kernels run on CPU tensors under Triton's interpreter
(``TRITON_INTERPRET=1``, set before triton is imported): :func:`interpret_on_cpu` routes CPU
param groups through this path, for the tests.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import itertools
import os
import weakref
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from descentlab import _native

from . import lowbit
from .base import Chain, GroupStep, dense, laid_out_as, unaddressable, written_in_place
from .form import FormRule, _plain
from .plan import KernelPlan, LaunchFailed, Refused
from .state import as_real
from .triton_emitter import Program, Unsupported, compute_dtype, kernel_source, program, split

__all__ = [
    "BLOCK",
    "CudaPath",
    "TritonPlan",
    "cuda_path",
    "interpret_on_cpu",
    "on_gpu",
    "triton_available",
    "triton_plan",
]

#: elements per program instance (one (tensor, chunk) row of the block table)
BLOCK = 1024

_ROUTE_CPU = False
_KERNELS: dict[tuple[str, bool], Any] = {}
_TABLES: dict[tuple, tuple[Any, ...]] = {}  # pointers (state checked: the program)
_SHAPES: dict[tuple, tuple[Tensor, ...]] = {}  # sizes and blocks
_COEFS: dict[tuple, tuple[Tensor, ...]] = {}  # coefficient tables
_LOWBIT_TABLES: dict[tuple[str, torch.device], Tensor] = {}
_PROGRAMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@functools.cache
def triton_available() -> bool:
    """Whether triton can be imported here (asked once: every GPU group asks at every step,
    and each search of the import path costs time: docs/kernel-runtime.md)."""
    return importlib.util.find_spec("triton") is not None


@contextlib.contextmanager
def interpret_on_cpu() -> Iterator[None]:
    """Step CPU param groups through the Triton path (under ``TRITON_INTERPRET=1``)."""
    global _ROUTE_CPU
    if os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("interpret_on_cpu() needs TRITON_INTERPRET=1 set before triton loads")
    _ROUTE_CPU, before = True, _ROUTE_CPU
    try:
        yield
    finally:
        _ROUTE_CPU = before


def on_gpu(params: list[Tensor]) -> bool:
    """Whether a group of ``params`` takes the Triton step (CUDA tensors, or CPU ones inside
    :func:`interpret_on_cpu`)."""
    return params[0].is_cuda or (_ROUTE_CPU and params[0].is_cpu)


@dataclass
class TritonPlan(KernelPlan):
    """A group's compiled Triton step: the chain's program and its kernel, and the chain's
    rules before it (``prefix``: not element-local, run with torch ops; None: none). What is
    the same for every backend (coefficients, prepares, the steady step's storage test):
    :class:`~descentlab.optim.plan.KernelPlan`."""

    prog: Program
    kernel: Any
    compute: torch.dtype
    prefix: Chain | None = None
    #: a blockwise low-bit format's small tensors (float32 state): their own plan
    small: TritonPlan | None = None
    numel: tuple[int, ...] = field(default=(), repr=False)
    #: those parameters are not all contiguous (dense, in another order: each gradient is
    #: checked against its parameter's strides)
    strided: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        KernelPlan.__init__(self, self.prog.program)

    checks_cheaply = True
    whole_state = True  # a prefix's rules read and replace their own state; a format's parts

    @property
    def moves_first(self) -> bool:
        """The prefix's torch ops or the program's prepares change state before the launch's
        own check: the state is checked in the step's first phase."""
        return self.prefix is not None or bool(self.prog.prepares)

    @property
    def notice(self) -> str:
        """What runs otherwise than in the kernel (the prefix's torch ops), said once."""
        if self.prefix is None:
            return ""
        names = ", ".join(r.name for r in self.prefix.rules)
        return f"{names} (not element-local) runs with torch ops"

    def run(self, group: GroupStep, plain: bool = False) -> None:
        """One step of the group: the prefix's torch ops, then every tensor in one launch
        (``steps``: each tensor's step count, the ``t`` of its coefficients; two launches
        where a blockwise low-bit format keeps some tensors' state float32). The prefix may
        replace entries of ``state`` (a dict): the caller writes them back."""
        params, grads, state, hyper, steps = group
        prog = self.prog
        if self.prefix is not None or prog.prepares:  # once, over the whole group
            assert isinstance(state, dict)
            state["_step_values"] = steps  # the step counts the prefix's rules read
            if self.prefix is not None:
                grads, _ = self.prefix.update(list(grads), state, params, hyper)
                grads = [  # the kernel reads each in its parameter's layout
                    g if laid_out_as(g, p) else torch.empty_like(p).copy_(g)
                    for p, g in zip(params, grads, strict=True)
                ]
            for pr in prog.prepares:  # may make state: the caller stores it
                pr.fn(state, params, grads, hyper)
            del state["_step_values"]
        parts = self._parts(params)
        if parts is None:
            self._launcher(GroupStep(params, grads, state, hyper, steps))()
            written_in_place(params)
            return
        launches = []  # every part checked before either launches
        for plan, idx in parts:
            part = {  # per-tensor lists cut to the part; a group's own values kept
                k: [v[i] for i in idx] if isinstance(v, list) else v for k, v in state.items()
            }
            cut = [params[i] for i in idx], [grads[i] for i in idx], [steps[i] for i in idx]
            launches.append(plan._launcher(GroupStep(cut[0], cut[1], part, hyper, cut[2])))
        for launch in launches:
            launch()
        written_in_place(params)

    def _parts(self, params: list[Tensor]) -> list[tuple[TritonPlan, list[int]]] | None:
        """The launches of a group whose blockwise low-bit format keeps some tensors' state
        float32: each plan with the indices of the tensors it steps (no empty part); None
        where one launch of this plan steps them all."""
        fmt = self.prog.state_format
        if self.small is None or not any(fmt.small(p) for p in params):
            return None
        small = [fmt.small(p) for p in params]
        parts = [
            (plan, [i for i, s in enumerate(small) if s is k])
            for plan, k in ((self, False), (self.small, True))
        ]
        return [(plan, idx) for plan, idx in parts if idx]

    def refuse_state(self, gi: int, params: list[Tensor], sts: list[dict], real: bool) -> None:
        """:meth:`~descentlab.optim.plan.KernelPlan.refuse_state`, before this group's prefix
        too: checked where the storage is new, as the launch's own check."""
        split = self._parts(params)
        parts = [(self, params, sts)] if split is None else [
            (plan, [params[i] for i in idx], [sts[i] for i in idx]) for plan, idx in split
        ]  # fmt: skip
        for plan, part, part_sts in parts:
            arrays = [
                [st.get(a[6:]) for st in part_sts] if a.startswith("state:") else None
                for a in plan.prog.arrays
            ]
            if real:
                arrays = [None if c is None else [as_real(t) for t in c] for c in arrays]
            device = part[0].device
            try:
                key = tuple(0 if t is None else t.data_ptr() for c in arrays if c for t in c)
            except AttributeError:  # an entry that is no tensor: named by the check
                key = None
            if key is not None:  # checked for this program
                key = ("state", id(plan.prog), device, key)
            if key is None or key not in _TABLES:
                _check_state(plan.prog, arrays, part, device, f"param group {gi}")
                if key is not None:  # (the entry holds the program: its id stays its own)
                    _cached(_TABLES, key, lambda prog=plan.prog: (prog,))

    def _launcher(self, group: GroupStep) -> Callable[[], None]:
        """The launch of this plan's kernel over ``params`` (their prefix and prepares done),
        its tables built and checked: what it cannot step raises here, before any of the
        group's launches."""
        params, grads, state, hyper, steps = group
        prog, device = self.prog, params[0].device
        arrays = [
            params
            if a == "p"
            else grads
            if a == "g"
            else [_table(a, device)] * len(params)
            if a.startswith("table:")
            else state[a.removeprefix("state:")]
            for a in prog.arrays
        ]
        try:
            columns = [[t.data_ptr() for t in col] for col in arrays]
        except AttributeError:  # a state entry that is no tensor: named by the check
            _check_state(prog, arrays, params, device)
            raise
        h = {k: _plain(v) for k, v in hyper.items()}
        flat, offsets = self.coefficient_table(state, steps, [1] * len(params), [h])
        values = self._rows_of(flat, offsets)
        numel = tuple(p.numel() for p in params)
        check = functools.partial(_check_state, prog, arrays, params, device)
        launch = self._launch(params, columns, numel, values, check)
        # the storage the kernel was checked against, for the steady step (grads aside)
        pairs = zip(prog.arrays, columns, strict=True)
        state = [x for a, col in pairs if a.startswith("state:") for x in col]
        self.storage = [*columns[prog.arrays.index("p")], *state]
        self.numel = numel
        self.strided = not all(p.is_contiguous() for p in params)
        return launch

    def _launch(
        self,
        params: list[Tensor],
        columns: list[list[int]],
        numel: tuple[int, ...],
        values: tuple[tuple[float, ...], ...],
        check: Callable[[], None],
    ) -> Callable[[], None]:
        """The kernel's launch over the tensors at ``columns`` (one list of addresses per
        array of the program), of ``numel`` elements each, with per-tensor coefficient
        ``values``; ``check`` runs where the addresses are new, before their device table
        is made."""
        device = params[0].device
        block = max(BLOCK, self.prog.block)
        ptrs = _pointers(columns, numel, device, check)
        numel_t, blocks = _cached(
            _SHAPES, (device, numel, block), lambda: _shape_tables(numel, device, block)
        )
        first = values[0] if values else ()
        shared = values.count(first) == len(values)
        if shared:  # the kernel's scalar arguments: nothing copied to the device for them
            coefs = numel_t
        else:
            coefs = _cached(
                _COEFS,
                (device, self.compute, values),
                lambda: (_to_device(_host_table(values, self.compute), device),),
            )[0]
        # no contraction of a product and a sum into an fma: the form's roundings, not the
        # compiler's (the form's own fmas are explicit)
        return functools.partial(
            _launched,
            self.kernel[(blocks.shape[0],)],
            ptrs,
            numel_t,
            blocks,
            coefs,
            *first[: len(self.coefs)],
            NA=len(columns),
            NC=max(len(self.coefs), 1),
            BLOCK=block,
            SHARED=shared,
            enable_fp_fusion=False,
        )

    def _rows_of(self, flat: list[float], offsets: Any) -> tuple[tuple[float, ...], ...]:
        """The ``[tensors, coefficients]`` values of a coefficient table's blocks."""
        nc = max(len(self.coefs), 1)
        blocks = {o: tuple(float(v) for v in flat[o : o + nc]) for o in dict.fromkeys(offsets)}
        return tuple(blocks[o] for o in offsets)

    # -- the steady step (descentlab.optim.fusedpath: nothing but the gradients changed) --
    def steady_ok(self, params: list[Tensor]) -> bool:
        """Whether a group of ``params`` may take the steady step: one launch of the kernel
        (no prefix, no second launch for small tensors), and the plan's own test
        (:meth:`~descentlab.optim.plan.KernelPlan.steady_ok`)."""
        return self.prefix is None and self._parts(params) is None and super().steady_ok(params)

    def steady_pointers(
        self, params: list[Tensor], grads: list[Tensor], cols: list[list]
    ) -> tuple[list[list[int]], Any] | None:
        """:meth:`~descentlab.optim.plan.KernelPlan.steady_pointers`: one list per array of
        the kernel."""
        got = self.steady_storage(params, grads, cols)
        if got is None:
            return None
        kept, gp = got
        n, device = len(params), params[0].device
        state = iter(kept[j : j + n] for j in range(n, len(kept), n))
        columns = [
            kept[:n]
            if a == "p"
            else gp
            if a == "g"
            else [_table(a, device).data_ptr()] * n
            if a.startswith("table:")
            else next(state)
            for a in self.prog.arrays
        ]
        _pointers(columns, self.numel, device, _no_check)  # made before any group launches
        return columns, self.steady_work(cols, grads)

    def launch(
        self,
        params: list[Tensor],
        ptrs: tuple[list[list[int]], Any],
        hyper: Any,
        t: float | list[float],
    ) -> None:
        """:meth:`~descentlab.optim.plan.KernelPlan.launch`."""
        columns, work = ptrs
        flat, offsets = self.steady_coefficients(params, work, hyper, t)
        values = self._rows_of(flat, [0] * len(params) if offsets is None else offsets)
        self._launch(params, columns, self.numel, values, _no_check)()
        written_in_place(params)


def _no_check() -> None:
    """The check of addresses the steady step has compared with those last checked."""


def _pointers(
    columns: list[list[int]], numel: tuple[int, ...], device: torch.device, check: Callable
) -> Tensor:
    """The launch's device table of the addresses ``columns`` (one list per array), made
    where new, after ``check`` (cached by the addresses: a hit is always right)."""
    addresses = tuple(itertools.chain.from_iterable(zip(*columns, strict=True)))

    def make() -> tuple[Tensor]:
        check()
        return _pointer_table(addresses, len(numel), len(columns), device)

    return _cached(_TABLES, (device, addresses, numel), make)[0]


def _launched(launch: Callable, *args: Any, **kwargs: Any) -> None:
    """``launch(*args, **kwargs)``, a launch that fails (a kernel image this device cannot run,
    an error the device reports at the launch) raised as :class:`~descentlab.optim.plan.
    LaunchFailed`: the kernel did not run."""
    try:
        launch(*args, **kwargs)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as exc:
        raise LaunchFailed(_first_line(exc)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def fault(owner: str, where: str, exc: BaseException, kept: str) -> RuntimeError:
    """The one-line error of a step that ran out of device memory or whose kernel did not
    launch (``where``: the groups and device; ``kept``: what is as before the step and what
    took it all the same), of the error's kind."""
    what = "ran out of memory" if isinstance(exc, torch.OutOfMemoryError) else "did not launch"
    message = f"{owner}: the step {what} on {where}: {_first_line(exc)}; {kept}"
    if isinstance(exc, torch.OutOfMemoryError):
        return torch.OutOfMemoryError(message)
    return LaunchFailed(message)


def _table(name: str, device: torch.device) -> Tensor:
    """A low-bit format's table on ``device`` (``table:map1``: the signed map's 256 values,
    ``table:thr0``: the unsigned map's 255 thresholds...), made once per device."""
    key = (name, device)
    got = _LOWBIT_TABLES.get(key)
    if got is None:
        kind, signed = name.removeprefix("table:")[:-1], name[-1] == "1"
        host = (lowbit.dynamic_map if kind == "map" else lowbit.thresholds)(signed)
        got = _LOWBIT_TABLES[key] = host.to(device)
    return got


def _check_state(
    prog: Program,
    arrays: list[list[Any] | None],
    params: list[Tensor],
    device: torch.device,
    group: str | None = None,
) -> None:
    """Raise, naming the first, unless every state entry is a tensor the kernel can address
    as it reads it: the kernel reads raw pointers, so a tensor of another dtype, size or
    device would be garbage or a fault, not an error. (Run where the pointers are new, so a
    steady loop pays nothing.) ``group``: the first phase of a step, naming the param group,
    where state not there yet (a column or an entry of None) is still to be made."""
    fmt = prog.state_format
    for name, col in zip(prog.arrays, arrays, strict=True):
        if not name.startswith("state:") or (group and col is None):
            continue  # parameters and gradients: checked by triton_plan(); tables: made here
        dtype = prog.dtypes.get(name, params[0].dtype)
        for i, (t, p) in enumerate(zip(col, params, strict=True)):
            if group and t is None:
                continue
            why = unaddressable(t) if isinstance(t, Tensor) else ""
            if why:
                raise Refused(
                    f"state {name.removeprefix('state:')!r} of parameter {i} of "
                    f"{group or 'the group'}: {why}"
                )
            numel = p.numel()
            if name.endswith("_scale") and isinstance(fmt, lowbit.Int8Blockwise):
                numel = fmt.blocks(numel)
            # a parameter laid out otherwise than contiguous has its own layout's state (not
            # low-bit: that needs contiguous parameters)
            laid = isinstance(t, Tensor) and (
                t.is_contiguous() if p.is_contiguous() else t.shape == p.shape and laid_out_as(t, p)
            )
            fits = isinstance(t, Tensor) and (t.device, t.dtype, t.numel()) == (
                device, dtype, numel
            )  # fmt: skip
            if not (laid and fits):
                got = (
                    f"a {'' if t.is_contiguous() else 'non-contiguous '}{t.dtype} tensor of "
                    f"{t.numel()} elements on {t.device}"
                    if isinstance(t, Tensor)
                    else type(t).__name__
                )
                raise Refused(
                    f"state {name.removeprefix('state:')!r} of parameter {i} of "
                    f"{group or 'the group'} is "
                    f"{got}; the Triton step reads a {dtype} tensor of {numel} elements on "
                    f"{device}, contiguous or laid out as its parameter (state made or loaded "
                    "for other parameters?)",
                    eager=fits,  # laid out otherwise: the eager backend steps it
                )


def _pointer_table(
    addresses: tuple[int, ...], tensors: int, arrays: int, device: torch.device
) -> tuple[Tensor]:
    """The launch's pointers ``[tensors, arrays]`` on ``device``: new whenever an address is
    (a gradient made anew by ``zero_grad(set_to_none=True)`` at every step), so it is this
    small table alone, not the blocks', that a step with new gradients makes and copies."""
    host = torch.tensor(addresses, dtype=torch.int64).view(tensors, arrays)
    return (_to_device(host, device),)


def _shape_tables(numel: tuple[int, ...], device: torch.device, block: int) -> tuple[Tensor, ...]:
    """The launch's sizes and one ``(tensor, first element)`` row per program instance of
    ``block`` elements, on ``device``: they depend on the tensors' sizes alone, so they are
    made once for a group (in vectorized torch ops: a Python row per block took
    milliseconds for a model of 25M parameters)."""
    sizes = torch.tensor(numel, dtype=torch.int64)
    per = (sizes + block - 1) // block  # program instances per tensor (0 for empty ones)
    tensor = torch.repeat_interleave(torch.arange(len(numel)), per)
    first = torch.cumsum(per, 0) - per  # each tensor's first row
    start = (torch.arange(tensor.numel()) - first[tensor]) * block
    blocks = torch.stack((tensor, start), dim=1)
    return _to_device(sizes, device), _to_device(blocks, device)


def _host_table(values: tuple[tuple[float, ...], ...], dtype: torch.dtype) -> Tensor:
    """The ``[tensors, coefficients]`` table of ``values`` in ``dtype``, rounded to nearest as
    ``torch.tensor`` rounds (through an ``array``: a third of ``torch.tensor``'s time)."""
    code = {torch.float32: "f", torch.float64: "d"}.get(dtype)
    if code is None:
        return torch.tensor(values, dtype=dtype)
    flat = array(code, itertools.chain.from_iterable(values))
    return torch.frombuffer(flat, dtype=dtype).view(len(values), -1)


def _to_device(host: Tensor, device: torch.device) -> Tensor:
    """``host`` copied to ``device`` without waiting: staged in pinned memory (a copy from
    pageable memory may wait for the stream, i.e. for the backward pass still running)."""
    if device.type == "cuda":
        host = host.pin_memory()
    return host.to(device, non_blocking=True)


def _cached(cache: dict, key: tuple, make: Any) -> tuple[Any, ...]:
    """Device tables by their exact contents (the key is the data: a hit is always right);
    the last 64 of each kind kept, so a steady loop copies nothing to the device but the
    coefficients that changed. (Kinds apart: a step's new coefficients never push out the
    tables of pointers.)"""
    hit = cache.get(key)
    if hit is None:
        hit = cache[key] = make()
        if len(cache) > 64:
            cache.pop(next(iter(cache)))
    return hit


def _compile(source: str, name: str) -> Any:
    """The ``@triton.jit`` function ``name`` of ``source`` (through the one kernel cache:
    :func:`descentlab._native.load_module`)."""
    return getattr(_native.load_module(source, name), name)


def plan_for(opt: Any, hyper: Mapping[str, Any], dtype: torch.dtype) -> TritonPlan:
    """The Triton plan of ``opt``'s chain at ``hyper``'s structure for parameters of ``dtype``
    (raises :class:`Unsupported`). Programs are cached per chain and structure, kernels per
    source text."""
    compute = compute_dtype(dtype)
    prefix, kernel_part, prog, small = _programs(opt, hyper)
    if prog.state_format is not None and dtype is not torch.float32:
        raise Unsupported(f"low-bit optimizer state needs float32 parameters, got {dtype}")
    name = _name(kernel_part)
    plans = [
        TritonPlan(p, _kernel(p, dtype, name), compute, prefix) if p is not None else None
        for p in (prog, small)
    ]
    plan = plans[0]
    assert plan is not None
    plan.small = plans[1]
    return plan


def kernel_sources(opt: Any, hyper: Mapping[str, Any], dtype: torch.dtype) -> list[str]:
    """The Triton sources :func:`plan_for` compiles for ``opt``'s chain at ``hyper``'s
    structure (the chain's kernel, then a blockwise format's kernel of its small tensors),
    generated without compiling (raises :class:`Unsupported`)."""
    _, kernel_part, prog, small = _programs(opt, hyper)
    return [_source(p, dtype, _name(kernel_part)) for p in (prog, small) if p is not None]


def _name(kernel_part: Chain) -> str:
    return "dl_" + "_".join(r.name for r in kernel_part.rules)


def _programs(opt: Any, hyper: Mapping[str, Any]) -> tuple:
    """(the chain's prefix run by torch ops, the kernel's part, its program, a blockwise
    format's program of small tensors), cached per chain and structure."""
    per_rule = _PROGRAMS.setdefault(opt.rule, {})
    key = (opt.rule.fuse_signature(hyper), opt._fold_lr)
    got = per_rule.get(key)
    if got is None:
        start = split(opt.rule, hyper)
        rules = opt.rule.rules
        kernel_part = Chain(*rules[start:]) if start else opt.rule
        prefix = Chain(*rules[:start]) if start else None
        prog = program(kernel_part, hyper, opt._fold_lr)
        small = None  # a blockwise format's small tensors: the chain without storage
        if isinstance(prog.state_format, lowbit.Int8Blockwise):
            small = program(kernel_part, hyper, opt._fold_lr, stored=False)
        got = per_rule[key] = (prefix, kernel_part, prog, small)
    return got


def _kernel(prog: Program, dtype: torch.dtype, name: str) -> Any:
    """The compiled kernel of ``prog`` for parameters of ``dtype`` (cached by its source)."""
    source = _source(prog, dtype, name)
    mode = (source, os.environ.get("TRITON_INTERPRET") == "1")  # jit reads it when decorating
    kernel = _KERNELS.get(mode)
    if kernel is None:
        kernel = _KERNELS[mode] = _compile(source, name)
    return kernel


def _source(prog: Program, dtype: torch.dtype, name: str) -> str:
    return kernel_source(prog, [prog.dtypes.get(a, dtype) for a in prog.arrays], name)


def triton_plan(
    opt: Any, params: list[Tensor], grads: list[Tensor], hyper: Mapping[str, Any]
) -> TritonPlan:
    """The Triton plan of a GPU param group (:func:`on_gpu`), or
    :class:`~descentlab.optim.plan.Refused` naming why its kernel cannot step it."""
    dtype = params[0].dtype
    if not triton_available():
        raise Refused("triton is not installed")
    for p, g in zip(params, grads, strict=True):
        why = unaddressable(p) or unaddressable(g)
        if why:
            raise Refused(why)
        if any(t.dtype is not dtype or t.device != params[0].device for t in (p, g)):
            bad = p if p.dtype is not dtype or p.device != params[0].device else g
            raise Refused(f"its tensors must be {dtype} on {params[0].device}, got {bad.dtype}")
        if not (dense(p) and laid_out_as(g, p)):
            raise Refused(
                "its tensors must be contiguous, or dense with their parameter's layout "
                "(channels_last, a transpose)"
            )
    try:
        plan = plan_for(opt, hyper, dtype)
    except Unsupported as exc:
        raise Refused(str(exc)) from None
    if plan.prog.state_format is not None and not all(p.is_contiguous() for p in params):
        raise Refused("low-bit optimizer state needs contiguous parameters")  # cut in logical order
    return plan


@dataclass(frozen=True)
class CudaPath:
    """How a param group of a named optimizer steps on a CUDA device (at its defaults):
    ``kind`` ``"triton"`` (one launch of the generated kernel), ``"torch+triton"`` (the
    ``prefix`` rules, not element-local, with torch ops, then one launch) or ``"eager"``
    (torch ops throughout, announced; ``why``: the first rule without a form)."""

    kind: str
    prefix: tuple[str, ...] = ()
    why: str = ""


def cuda_path(opt: Any) -> CudaPath:
    """How ``opt``'s first param group steps on a CUDA device (what :func:`triton_plan` makes
    of a contiguous float32 group without a monitor or low-bit state);
    :func:`descentlab.optim.cuda_paths` gives every registered optimizer's."""
    hyper = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    try:
        start = split(opt.rule, hyper)
        program(Chain(*opt.rule.rules[start:]), hyper, opt._fold_lr)
    except Unsupported as exc:
        return CudaPath("eager", why=str(exc))
    prefix = tuple(x.name for x in opt.rule.rules[:start])
    return CudaPath("torch+triton" if prefix else "triton", prefix)


def has_form_rule(opt: Any, glue: str) -> bool:
    """Whether ``opt``'s chain holds a rule written in the form, other than the glue every
    chain shares (the rules of module ``glue``), that acts at its first group's
    hyperparameters (SGD's momentum of 0 passes gradients through)."""
    hyper = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    return any(
        isinstance(x, FormRule) and x.__module__ != glue and not x.passes_through(hyper)
        for x in opt.rule.rules
    )
