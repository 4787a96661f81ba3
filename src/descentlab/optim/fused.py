r"""The fused backend: a whole chain of update rules in one pass over each parameter's memory.

The C emitter (:mod:`~descentlab.optim.c_emitter`) writes the kernel of a chain's collected
program (:class:`~descentlab.optim.c_emitter.CKernel`: one loop body compiled for the CPU's
vectors and for the scalar tail); :mod:`descentlab._native` compiles and caches it, and
:class:`FusedPlan` runs it: coefficients computed in Python in double precision each step,
pointers and coefficients handed to the kernel through ``ctypes``, OpenMP over 32K-element
chunks. Every hyperparameter is a runtime argument, so a schedule never recompiles. The kernel
rounds where the eager backend does (bit for bit in float32 where ``dl_sqrt`` is torch's root:
:func:`sqrt_reproduces_torch`). The vector loop prefetches per CPU (:func:`software_prefetch`).

How it works, its numerics, the design history and the measured timings:
docs/kernel-runtime.md.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
from array import array
from collections.abc import Mapping
from itertools import repeat
from typing import Any

import numpy as np
import torch
from torch import Tensor

from descentlab import _native
from descentlab._native import KernelUnavailable, cache_dir, compile_count, compiler

from .base import (
    ADDRESSABLE_TYPES,
    GroupStep,
    dense,
    laid_out_as,
    unaddressable,
    written_in_place,
)
from .c_emitter import CHUNK, DTYPES, CKernel, _dtype_names, software_prefetch  # noqa: F401
from .plan import KernelPlan, Refused
from .program import register_probe
from .state import as_real

__all__ = [
    "DTYPES",
    "CKernel",
    "FusedUnavailable",
    "cache_dir",
    "compile_count",
    "compiler",
    "fused_available",
    "software_prefetch",
    "sqrt_reproduces_torch",
]


class FusedUnavailable(KernelUnavailable):
    """The fused backend cannot run here (no C++ compiler, the compiler failed, the kernel
    cache cannot be used)."""


_SMALL = 1 << 16  # groups smaller than this run on one thread (fork-join costs more)


def fused_available() -> bool:
    """True when a C++ compiler is present, so ``fused=True`` can build its kernels."""
    return _native.compiler() is not None


def _bind_step(handle: ctypes.CDLL) -> Any:
    fn = handle.dl_step
    fn.probe = handle.dl_sqrt_probe
    fn.restype = None
    fn.argtypes = [
        ctypes.c_int64,  # tensors
        ctypes.c_void_p,  # numel[n]
        ctypes.c_void_p,  # rows[n]
        ctypes.c_void_p,  # pointers[n * arrays]
        ctypes.c_void_p,  # coefficients
        ctypes.c_void_p,  # coefficient offset of each tensor[n]
        ctypes.c_int,  # threads
    ]
    return fn


def _load(source: str) -> Any:
    """The compiled step kernel for ``source`` (:func:`descentlab._native.load`)."""
    try:
        return _native.load(source, _bind_step, what="fused optimizer kernel")
    except KernelUnavailable as exc:
        raise FusedUnavailable(str(exc)) from None


def sqrt_reproduces_torch() -> bool:
    """Whether the kernels' float32 square root is bit-identical to ``torch.sqrt`` here.

    torch's float32 ``sqrt`` on contiguous CPU tensors is MKL's, which is not correctly
    rounded and depends on the CPU: on Intel AVX-512 CPUs the kernels reproduce it bit for bit
    (``x * rsqrt14(x)`` and one Newton correction). Elsewhere -- AMD CPUs, where MKL takes
    another path -- it cannot be reproduced (as measured in docs/kernel-runtime.md), and the
    kernels keep their faithful root, within an ulp of torch's. Float32 results of the fused
    backend then match the eager backend to rounding (about 1e-6 relative after 300 Adam steps)
    rather than bit for bit -- as torch's own for-loop and fused Adam differ from each other on
    such a CPU. Float64 roots are correctly rounded everywhere. The tests use it to decide
    between bit-identity and a rounding tolerance.

    The answer is measured once per process on 110,000 values spanning 60 decades, by the
    ``dl_sqrt_probe`` of the float32 kernel of the empty chain (cached and verified like any
    other), for the instruction set the kernels are built for (:func:`descentlab._native.target`).
    """
    return _sqrt_reproduces_torch(_native._target)


@functools.lru_cache(maxsize=8)
def _sqrt_reproduces_torch(target: tuple[str, ...]) -> bool:
    try:
        probe = _load(CKernel().source(torch.float32, False)).probe
    except KernelUnavailable:
        return False
    g = torch.Generator().manual_seed(0)
    x = torch.cat(
        [
            torch.rand(100_000, generator=g) * 10.0 ** torch.randint(-30, 30, (100_000,)),
            torch.rand(10_000, generator=g),
        ]
    ).float()
    out = torch.empty_like(x)
    probe(ctypes.c_void_p(x.data_ptr()), ctypes.c_void_p(out.data_ptr()), ctypes.c_int64(x.numel()))
    return torch.equal(out, torch.sqrt(x))


# --------------------------------------------------------------------------------------
# Plans: a compiled chain for one param group's structure and dtype
# --------------------------------------------------------------------------------------


def _row_values(hyper: Mapping[str, Any], keys: set[str]) -> tuple[int, list[dict[str, Any]]]:
    """(K, per-row hyperparameter dicts) -- K = 1 without batched hyperparameters."""
    if not any(
        isinstance(v, Tensor) or (type(v) is tuple and any(isinstance(x, Tensor) for x in v))
        for v in hyper.values()
    ):
        return 1, [hyper]
    k = 1
    batched: dict[str, list[float]] = {}
    for key in keys:
        v = hyper.get(key)
        if isinstance(v, tuple | list):
            for idx, x in enumerate(v):
                if isinstance(x, Tensor) and x.ndim >= 1:
                    batched[f"{key}[{idx}]"] = [float(e) for e in x.reshape(-1).tolist()]
        elif isinstance(v, Tensor) and v.ndim >= 1:
            batched[key] = [float(e) for e in v.reshape(-1).tolist()]
    for key, vals in batched.items():
        if len(vals) != 1:
            if k != 1 and len(vals) != k:
                raise ValueError(
                    f"batched hyperparameters disagree on K: {key} has {len(vals)}, expected {k}"
                )
            k = len(vals)
    if not batched:
        return 1, [_plain(hyper)]
    rows = []
    for r in range(k):
        row = dict(_plain(hyper))
        for key in keys:
            v = hyper.get(key)
            if isinstance(v, tuple | list):
                row[key] = tuple(_pick(x, r) if isinstance(x, Tensor) else x for x in v)
            elif isinstance(v, Tensor):
                row[key] = _pick(v, r)
        rows.append(row)
    return k, rows


def _pick(x: Tensor, r: int) -> float:
    flat = x.reshape(-1)
    return float(flat[r if flat.numel() > 1 else 0])


def _plain(hyper: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in hyper.items():
        if isinstance(v, Tensor) and v.ndim == 0:
            out[k] = v.item()
        elif isinstance(v, tuple) and any(isinstance(x, Tensor) and x.ndim == 0 for x in v):
            out[k] = tuple(x.item() if isinstance(x, Tensor) else x for x in v)
        else:
            out[k] = v
    return out


class FusedPlan(KernelPlan):
    """A compiled chain for one group structure: runs a step over lists of tensors (what is
    the same for every backend: :class:`~descentlab.optim.plan.KernelPlan`)."""

    #: :meth:`refuse_state` compares data pointers with those :meth:`run` last checked and
    #: checks in full only when they moved: a later group's state is checked before any group
    #: steps, whatever ``fused`` asks
    checks_cheaply = True

    def __init__(self, kernel: CKernel, dtype: torch.dtype) -> None:
        super().__init__(kernel.program)
        self.c = kernel
        self.dtype = dtype
        self.source = kernel.source(dtype)
        self.kernel = _load(self.source)
        self.arrays = ["p", "g", *kernel.arrays]
        #: the parameters at ``storage`` are not all contiguous (dense, in another order)
        self.strided = False
        self._k = 0
        self._shape: tuple = ()
        self._launch_args: tuple = ()
        self._zero_arrays: dict[int, Any] = {}
        self._rows_cache: tuple | None = None

    def run(self, group: GroupStep, plain: bool = False, outs: list[int] | None = None) -> None:
        """One step over the group, or -- before anything changes -- :class:`~descentlab.optim.
        plan.Refused`, naming why it cannot run.

        ``outs``: the addresses in the parameters' place (a first pass's partial sums,
        :class:`SumsPlan`; the parameters then only give the shapes and layout).

        ``plain``: the caller knows ``hyper`` holds only Python values (no batched tensors).

        Every array the kernel touches must be a CPU tensor of the plan's dtype shaped and laid
        out like its parameter, which is dense: contiguous, or (without batched values or
        low-bit state) a permutation of that such as channels_last. The kernel reads ``numel``
        elements from each data pointer, in memory order. Parameters and state are checked
        when their storage changes, gradients every step.
        """
        params, grads, state, hyper, steps = group
        b = self.c
        dtype = self.dtype
        cols = [state.get(key) for key in b.arrays]
        static = _storage(params, cols)
        k, rows_h = (1, [hyper]) if plain else self._rows(hyper)
        if k != 1 and b.formats:
            raise Refused("blockwise low-bit state with batched hyperparameters runs eagerly")
        if static != self.storage or k != self._k or 0 in static:
            self._take_storage(params, cols, static, k)
        # torch already keeps a gradient's dtype, device and shape its param's; its layout
        # is checked against the parameters' (all contiguous, as a rule: one test each)
        plain = ADDRESSABLE_TYPES
        if self.strided:
            pairs = zip(params, grads, strict=True)
            bad = [g for p, g in pairs if type(g) not in plain or not laid_out_as(g, p)]
        else:
            bad = [g for g in grads if type(g) not in plain or not g.is_contiguous()]
        if bad:
            raise _refusal(bad[0], dtype)
        for fn in self.prepare_fns:
            fn(state, params, grads, hyper)
        n = len(params)
        ptrs = static[:n] if outs is None else list(outs)
        ptrs += [g.data_ptr() for g in grads]
        if self.prepare_fns or len(static) != n * (1 + len(b.arrays)):
            for key in b.arrays:  # the prepares may have created state
                ptrs += [0 if t is None else t.data_ptr() for t in state[key]]
        else:
            ptrs += static[n:]
        a_numel, a_rows, total, rows = self._shape
        if not self.per_tensor and steps.count(steps[0]) == n:
            # the common case: one block of coefficients (K rows) shared by every tensor
            t = steps[0]
            values = [c.fn(h, t, None) for h in rows_h for c in self.coefs] or [0.0] * k
            a_coff = self._zeros(n)
        else:
            values, coff = self.coefficient_table(state, steps, rows, rows_h)
            a_coff = array("q", coff)
        # array.array: the cheapest way to hand C a block of numbers (and kept alive here)
        a_ptrs = array("Q", ptrs)
        a_vals = array("d", values)
        threads = torch.get_num_threads() if total >= _SMALL else 1
        self.kernel(
            n,
            a_numel.buffer_info()[0],
            a_rows.buffer_info()[0],
            a_ptrs.buffer_info()[0],
            a_vals.buffer_info()[0],
            a_coff.buffer_info()[0],
            threads,
        )
        # the kernel wrote through raw pointers: tell autograd the parameters changed, as an
        # in-place torch op would (a graph that saved them then refuses to backpropagate)
        written_in_place(params)

    def _take_storage(
        self, params: list[Tensor], cols: list[list | None], static: list[int], k: int
    ) -> None:
        """Check the parameters and state at new storage (``static``: their addresses; ``k``
        rows of batched values) and record what the launches read of them."""
        self._check_static(params, cols, k=k)
        self._shape = self._shapes(params, k)
        self.storage, self._k = static, k
        self.strided = not all(p.is_contiguous() for p in params)
        a_numel, a_rows, total, _ = self._shape
        self._launch_args = (
            a_numel.buffer_info()[0],
            a_rows.buffer_info()[0],
            self._zeros(len(params)).buffer_info()[0],
            total >= _SMALL,
        )

    def steady_pointers(
        self, params: list[Tensor], grads: list[Tensor], cols: list[list]
    ) -> tuple[list[int], Any] | None:
        """:meth:`~descentlab.optim.plan.KernelPlan.steady_pointers`: one flat list, where
        there are no batched hyperparameters."""
        if not self.steady_arrays or self._k != 1:
            return None
        got = self.steady_storage(params, grads, cols)
        if got is None:
            return None
        static, gp = got
        n = len(params)
        return static[:n] + gp + static[n:], self.steady_work(cols, grads)

    def launch(
        self,
        params: list[Tensor],
        ptrs: tuple[list[int], Any],
        hyper: Any,
        t: float | list[float],
    ) -> None:
        """:meth:`~descentlab.optim.plan.KernelPlan.launch`."""
        ptr_list, work = ptrs
        numel, rows, coff, threads = self._launch_args
        values, offsets = self.steady_coefficients(params, work, hyper, t)
        if offsets is not None:  # else one block of coefficients for every tensor (zeros)
            coff = offsets.buffer_info()[0]
        a_ptrs = array("Q", ptr_list)
        a_vals = array("d", values)
        self.kernel(
            len(params),
            numel,
            rows,
            a_ptrs.buffer_info()[0],
            a_vals.buffer_info()[0],
            coff,
            torch.get_num_threads() if threads else 1,
        )
        written_in_place(params)

    @property
    def merges(self) -> bool:  # type: ignore[override]
        """One row of coefficients and no work before the launch: the steady step may launch
        this plan with other groups' of the same kernel as one (:meth:`merged`)."""
        return self._k == 1 and not self.per_step and self.steady_arrays

    def merged(self, plans: list[FusedPlan], hypers: list[Mapping[str, Any]]) -> MergedPlan:
        """The steady launch of several groups' ``plans`` of this kernel as one (``hypers``:
        each group's hyperparameters)."""
        return MergedPlan(plans, hypers)

    def refuse_state(self, gi: int, params: list[Tensor], sts: list[dict], real: bool) -> None:
        """:class:`~descentlab.optim.plan.Refused` on the state that exists already (:meth:`run`
        checks in each group's update, after the groups before it have moved; state still to
        be made is made right). Looked up without adding entries; the storage :meth:`run` last
        checked passes at once."""
        cols: list[list | None] = [[st.get(k) for st in sts] for k in self.state_arrays]
        if real:
            cols = [[as_real(t) for t in col] for col in cols]  # type: ignore[union-attr]
        if _storage(params, cols) != self.storage:
            self._check_static(params, cols, existing=True)

    def _check_static(
        self, params: list[Tensor], cols: list[list | None], existing: bool = False, k: int = 1
    ) -> None:
        """:class:`~descentlab.optim.plan.Refused` on what is wrong with the parameters and the
        state columns ``cols`` (``existing``: only with the state there is; an entry still to
        be made passes; ``k``: the batched hyperparameters' length, whose rows are the
        parameters' leading slices)."""
        dtype = self.dtype
        layout = self._layout(k)
        for p in params:  # a group the kernel cannot step, the eager backend steps
            if unaddressable(p) or not (p.is_cpu and p.dtype is dtype and layout(p)):
                raise Refused(_refusal(p, dtype).args[0])
        stored = self.c.program.stored_arrays()
        for key, col in zip(self.c.arrays, cols, strict=True):
            if key in stored:
                self._check_stored(key, stored[key], params, col, existing)
                continue
            filled = existing or key in self.fills
            if col is None:
                if filled:
                    continue
                raise Refused(f"missing optimizer state {key!r}", eager=False)
            for p, t in zip(params, col, strict=True):
                if t is None:
                    if filled:
                        continue
                    raise Refused(f"missing optimizer state {key!r}", eager=False)
                if unaddressable(t) or not (t.is_cpu and t.dtype is dtype):
                    raise _refusal(t, dtype)
                if t.shape != p.shape:
                    raise Refused(
                        f"state of shape {tuple(t.shape)} for a parameter of {tuple(p.shape)}",
                        eager=False,
                    )
                if not laid_out_as(t, p):
                    raise _refusal(t, dtype)

    def _layout(self, k: int) -> Any:
        """The test of a parameter's layout the kernel can read: dense, and contiguous where
        low-bit blocks or the rows of ``k`` batched values are cut from its logical order."""
        return Tensor.is_contiguous if k != 1 or self.c.formats else dense

    def refuse_tensors(
        self, params: list[Tensor], grads: list[Tensor], hyper: Mapping[str, Any]
    ) -> None:
        """:class:`~descentlab.optim.plan.Refused` on what :meth:`run` would refuse of these
        CPU parameters and gradients: the first phase of a ``fused=True`` step, before any
        group changes."""
        dtype, layout = self.dtype, self._layout(self._rows(hyper)[0])
        for p, g in zip(params, grads, strict=True):
            for t in (p, g):
                if unaddressable(t) or t.dtype is not dtype:
                    raise Refused(_refusal(t, dtype).args[0])
            if not layout(p):
                raise _refusal(p, dtype)
            if not laid_out_as(g, p):
                raise _refusal(g, dtype)

    def _check_stored(
        self,
        name: str,
        where: tuple[str, int],
        params: list[Tensor],
        col: list | None,
        existing: bool = False,
    ) -> None:
        """:class:`~descentlab.optim.plan.Refused` on what is wrong with the low-bit state
        entries ``col`` (``where``: their key and index in the format's entries;
        ``existing``: a missing entry passes)."""
        key, idx = where
        fmt = self.c.formats[key][0]
        for p, t in zip(params, col or [None] * len(params), strict=True):
            expect = fmt.expect(p)[idx]
            if t is None and (existing or expect is None):
                continue
            if t is None or expect is None:
                why = f"optimizer state {name!r} does not fit {fmt.name} state"
                raise Refused(why, eager=False)
            want, shape = expect
            why = unaddressable(t)
            if why:
                raise Refused(f"optimizer state {name!r}: {why}")
            if not (t.is_cpu and t.dtype is want and t.is_contiguous()):
                raise Refused(
                    f"state {name!r} of {fmt.name} state must be {want}, got {t.dtype}",
                    eager=t.dtype is want and t.is_cpu,
                )
            if tuple(t.shape) != shape:
                raise Refused(
                    f"state {name!r} of shape {tuple(t.shape)}, expected {shape}", eager=False
                )

    def _rows(self, hyper: Mapping[str, Any]) -> tuple[int, list[dict[str, Any]]]:
        """:func:`_row_values`, cached while every batched tensor is the same object at the same
        version and every other value is equal (a step of K runs at constant hyperparameters
        would otherwise read K values out of each tensor again)."""
        sig: list[Any] = []
        refs: list[Tensor] = []
        for key, v in hyper.items():
            if isinstance(v, Tensor):
                sig.append((key, id(v), v._version))
                refs.append(v)
            elif type(v) is tuple and any(isinstance(x, Tensor) for x in v):
                for idx, x in enumerate(v):
                    if isinstance(x, Tensor):
                        sig.append((key, idx, id(x), x._version))
                        refs.append(x)
                    else:
                        sig.append((key, idx, x))
            else:
                sig.append((key, v))
        cached = self._rows_cache
        if cached is not None and cached[0] == sig:
            return cached[2], cached[3]
        k, rows_h = _row_values(hyper, self.c.program.rows_keys)
        # the cache holds the tensors, so their ids cannot be reused while it is valid
        self._rows_cache = (sig, refs, k, rows_h)
        return k, rows_h

    def _shapes(self, params: list[Tensor], k: int) -> tuple:
        rows = []
        for p in params:
            if k == 1:
                rows.append(1)
            elif p.ndim == 0 or p.shape[0] != k:
                raise ValueError(
                    f"batched hyperparameters of length {k} need parameters whose leading "
                    f"dimension is {k}, got shape {tuple(p.shape)}"
                )
            else:
                rows.append(k)
        numel = [p.numel() for p in params]
        return array("q", numel), array("q", rows), sum(numel), rows

    def _zeros(self, n: int) -> Any:
        z = self._zero_arrays.get(n)
        if z is None:
            z = array("q", [0] * n)
            self._zero_arrays[n] = z
        return z


class MergedPlan(FusedPlan):
    """Several param groups' plans of one kernel as one launch of the steady step: their
    tensors in one list (the parameters of every group, then each state array's entries of
    every group: the storage each plan last checked, concatenated), each group's coefficients
    a block of its own. A block starts as the first group's and recomputes only the
    coefficients that read a key whose value differs between the groups (:meth:`vary`): a
    per-layer learning rate recomputes those that read ``lr``; groups alike share one
    block."""

    def __init__(self, plans: list[FusedPlan], hypers: list[Mapping[str, Any]]) -> None:
        self.__dict__.update(plans[0].__dict__)  # the kernel, program, coefficients
        sizes = [len(p._shape[3]) for p in plans]
        parts = len(plans[0].storage) // sizes[0]
        self.storage = [
            x for j in range(parts) for p, n in zip(plans, sizes, strict=True)
            for x in p.storage[j * n : (j + 1) * n]
        ]  # fmt: skip
        self.strided = any(p.strided for p in plans)
        numel = array("q", [x for p in plans for x in p._shape[0]])
        total, n = sum(p._shape[2] for p in plans), len(numel)
        self._shape = (numel, array("q", [1] * n), total, [1] * n)
        self._launch_args = (
            numel.buffer_info()[0],
            self._shape[1].buffer_info()[0],
            self._zeros(n).buffer_info()[0],
            total >= _SMALL,
        )
        #: each tensor's group
        self.group_of = [g for g, k in enumerate(sizes) for _ in range(k)]
        width = max(len(self.coefs), 1)
        self.offsets = array("q", [g * width for g in self.group_of])
        self.keys: set[str] = set()
        self.varying: list[int] = []
        first = hypers[0]
        self.vary({k for h in hypers[1:] for k in {*h, *first} if h.get(k) != first.get(k)})
        #: no coefficient reads the step count (nor, merged, a per-tensor number)
        self.timeless = not any(c.steps for c in self.coefs)
        self._uses = {u for c in self.coefs for u in c.uses}
        #: (the groups' hyperparameters, their values); a value moved since (:meth:`vary`)
        self._memo, self._moved = None, True

    def vary(self, keys: Any) -> None:
        """Take ``keys`` as keys whose values may differ between the groups: their
        coefficients are each group's own (the steady step's call for each group moved)."""
        self._moved = True
        if self.keys.issuperset(keys):
            return
        self.keys.update(keys)
        self.varying = [j for j, c in enumerate(self.coefs) if not self.keys.isdisjoint(c.uses)]

    def steady_coefficients(
        self, params: list[Tensor], work: Any, hyper: Any, t: float | list[float]
    ) -> tuple[list[float], array | None]:
        """:meth:`~descentlab.optim.plan.KernelPlan.steady_coefficients` of the groups at once
        (``hyper``: each group's hyperparameters)."""
        coefs, varying = self.coefs, self.varying
        if type(t) is list:  # a block per group (where they differ) and step count
            at: dict[tuple, int] = {}
            values: list[float] = []
            for g, s in zip(self.group_of, t, strict=True):
                key = (g if varying else 0, s)
                if key not in at:
                    at[key] = len(values)
                    values += [c.fn(hyper[g], s, None) for c in coefs] or [0.0]
            return values, array("q", [at[(g if varying else 0, s)]
                                       for g, s in zip(self.group_of, t, strict=True)])  # fmt: skip
        memo = self._memo
        if memo is not None and memo[0] is hyper and not self._moved:
            return memo[1], self.offsets if varying else None
        first = [c.fn(hyper[0], t, None) for c in coefs] or [0.0]
        if not varying:
            values = first
        else:
            values, width = first * len(hyper), len(first)
            rest = hyper[1:]
            for j in varying:  # coefficient j of every later group's block, in one slice
                values[width + j :: width] = map(coefs[j].fn, rest, repeat(t), repeat(None))
        # kept from the second step no value moved (a schedule's: never); a tensor's own change
        # is no move: values read from a tensor are never kept
        keep, self._memo = self.timeless and not self._moved, None
        if keep and all(_immutable(h.get(k)) for h in hyper for k in self._uses):
            self._memo = (hyper, values)
        self._moved = False
        return values, self.offsets if varying else None


def _immutable(value: Any) -> bool:
    """Whether ``value`` cannot change in place: a number, text, None, or a tuple of them."""
    if type(value) is tuple:
        return all(map(_immutable, value))
    return type(value) in (float, int, bool, str, type(None))


def _storage(params: list[Tensor], cols: list[list | None]) -> list[int]:
    """The parameters' and the state columns' data pointers (0: an entry not there, or one a
    kernel may not address -- :func:`~descentlab.optim.base.unaddressable` -- whose pointer is
    never asked for: a 0 sends the step to the full check, which refuses it)."""
    plain = ADDRESSABLE_TYPES
    static = [p.data_ptr() if type(p) in plain else 0 for p in params]
    for col in cols:
        if col is not None:
            static += [t.data_ptr() if type(t) in plain else 0 for t in col]
    return static


def _refusal(t: Tensor, dtype: torch.dtype) -> Refused:
    """Why the kernel cannot step ``t`` (a state tensor: of another device or dtype than its
    parameter's, nothing steps it)."""
    why = unaddressable(t)
    if why:
        return Refused(why)
    if not t.is_cpu:
        return Refused(f"tensors must be on the CPU, got {t.device}", eager=False)
    if t.dtype is not dtype:
        return Refused(f"all tensors of a group must be {dtype}, got {t.dtype}", eager=False)
    return Refused(
        "tensors must be contiguous, or dense with their parameter's layout (channels_last, a "
        "transpose)"
    )


class SumsPlan(FusedPlan):
    """A first pass of a per-tensor total (:func:`~descentlab.optim.program.register_probe`):
    the kernel sums its program's update over each tensor, chunk by chunk into ``double``
    partial sums, then added here per tensor -- no value stored, nothing read twice."""

    def __init__(self, program: Any, dtype: torch.dtype) -> None:
        super().__init__(CKernel(program, sums=True), dtype)
        self._partial = torch.empty(0, dtype=torch.float64)
        self._numels: list[int] = []
        self._starts = np.zeros(0, dtype=np.intp)
        self._outs: list[int] = []
        self._total = 0

    def sums(self, group: GroupStep) -> list[list[float]]:
        """Each tensor's sums (``K`` of them: the program's :attr:`~descentlab.optim.
        program.ChainProgram.sums`, else its update)."""
        shapes, k = [p.numel() for p in group.params], len(self.c.summed)
        if shapes != self._numels:  # each tensor's first chunk in the partial sums
            chunks = [-(-n // CHUNK) for n in shapes]
            starts = list(itertools.accumulate(chunks, initial=0))
            if self._partial.numel() < starts[-1] * k:
                self._partial = torch.empty(starts[-1] * k, dtype=torch.float64)
            base = self._partial.data_ptr()
            self._numels, self._starts = shapes, np.array(starts[:-1], dtype=np.intp)
            self._outs, self._total = [base + 8 * k * a for a in starts[:-1]], starts[-1]
        self.run(group, outs=self._outs)
        part = self._partial.numpy()[: self._total * k].reshape(-1, k)
        if 0 in self._numels:  # (an empty tensor has no chunk: its sums are 0)
            bounds = [*self._starts.tolist(), self._total]
            return [part[a:b].sum(0).tolist() for a, b in itertools.pairwise(bounds)]
        return np.add.reduceat(part, self._starts, axis=0).tolist()


def _probe_plan(program: Any, dtype: torch.dtype) -> SumsPlan | None:
    """A probe program's C plan (:func:`~descentlab.optim.program.register_probe`), or None
    where this dtype or machine has no C kernel."""
    if dtype not in DTYPES or not fused_available():
        return None
    try:
        return SumsPlan(program, dtype)
    except FusedUnavailable:  # (the first pass is then the eager emitter's)
        return None


register_probe("cpu", _probe_plan)
