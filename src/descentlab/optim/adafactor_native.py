r"""Adafactor's update as one compiled call for a whole param group (``adafactor_kernel.cpp``).

:class:`~descentlab.optim.adafactor.scale_by_adafactor` is not elementwise, so it has no form
in the fused backend's program; this kernel makes three passes over each tensor's memory where
torch's step makes about 19, every tensor of the group in one call through ``ctypes``. Where
it runs, its numerics against ``torch.optim.Adafactor``, what runs elsewhere (announced once
per reason) and its timings: docs/kernel-runtime.md ("Adafactor's kernel")."""

from __future__ import annotations

import ctypes
import functools
from array import array
from importlib import resources
from typing import Any

import torch
from torch import Tensor

from descentlab import _native
from descentlab._announce import once

from .base import caller_stacklevel

__all__ = ["available", "why_not", "write_update"]

_DTYPES = {torch.float32: "f32", torch.float64: "f64"}


def _say_once(why: str) -> None:
    once(
        ("adafactor", why),
        f"descentlab: Adafactor steps with torch's ops ({why}; the same result, slower)",
        stacklevel=caller_stacklevel(),
    )


def _bind(lib: ctypes.CDLL) -> dict[torch.dtype, Any]:
    fns = {}
    for dtype, suffix in _DTYPES.items():
        fn = getattr(lib, f"adafactor_step_{suffix}")
        fn.restype = None
        fn.argtypes = [
            ctypes.c_int64,  # tensors
            ctypes.c_void_p,  # meta[4 n]: kind, batches, rows, columns
            ctypes.c_void_p,  # pointers[6 n]: p, g, row, col, variance, u
            ctypes.c_void_p,  # coefficients[6 n] (double)
            ctypes.c_int,  # threads
        ]
        fns[dtype] = fn
    return fns


@functools.lru_cache(maxsize=1)
def _kernel() -> dict[torch.dtype, Any] | str:
    """The bound entry points, or why the kernel cannot be had (asked once per process)."""
    source = resources.files("descentlab.optim").joinpath("adafactor_kernel.cpp").read_text()
    try:
        return _native.load(source, _bind, what="Adafactor kernel")
    except _native.KernelUnavailable as exc:
        return str(exc).splitlines()[0]


def available() -> bool:
    """Whether the compiled Adafactor kernel can run here (a C++ compiler, a usable cache)."""
    return not isinstance(_kernel(), str)


def why_not(tensors: list[list[Tensor | None]]) -> str | None:
    """Why the kernel cannot step these tensors (lists of parameters, gradients and state,
    ``None`` where a tensor has no such state; the ``i``-th of each list belong together), or
    None where it can."""
    if torch.is_grad_enabled():
        return "autograd records this step"
    for i, p in enumerate(tensors[0]):
        dtype = p.dtype  # type: ignore[union-attr]
        if dtype not in _DTYPES:
            return f"the kernel takes float32 and float64 parameters, got {dtype}"
        if p.numel() == 0:  # type: ignore[union-attr]
            return "a parameter has no elements"
        for xs in tensors:
            x = xs[i]
            if x is None:
                continue
            if x.dtype != dtype or x.device.type != "cpu" or x.layout != torch.strided:
                return "the kernel takes CPU tensors whose state has the parameter's dtype"
            if not x.is_contiguous():
                return "the kernel takes contiguous tensors"
    return None


def write_update(
    params: list[Tensor],
    grads: list[Tensor],
    state: dict[str, list],
    steps: list[float],
    hyper: dict[str, Any],
    out: list[Tensor],
) -> bool:
    """Write Adafactor's update of each parameter (``lr``, weight decay included) into ``out``
    and advance ``state``'s ``row_var``/``col_var``/``variance``, in one kernel call; False
    (nothing changed) where the kernel does not apply (announced once per reason)."""
    none = [None] * len(params)
    rows, cols, variances = (state.get(k) or none for k in ("row_var", "col_var", "variance"))
    if params[0].device.type != "cpu":  # the CPU's kernel: other devices step with torch's ops
        return False
    why = why_not([params, grads, rows, cols, variances, out])
    if why is None:
        kernel = _kernel()
        if isinstance(kernel, str):
            why = f"the compiled kernel is unavailable: {kernel}"
    if why is not None:
        _say_once(why)
        return False
    lr, decay = float(hyper["lr"]), float(hyper["beta2_decay"])
    d, wd = float(hyper["d"]), float(hyper["weight_decay"])
    eps1, eps2 = hyper["eps"]
    threads = torch.get_num_threads() if sum(p.numel() for p in params) >= 1 << 16 else 1
    for dtype in dict.fromkeys(p.dtype for p in params):  # one call per dtype
        e1 = torch.finfo(dtype).eps if eps1 is None else float(eps1)
        meta, ptrs, coef = array("q"), array("q"), array("d")
        n = 0
        for i, p in enumerate(params):
            if p.dtype is not dtype:
                continue
            n += 1
            t = steps[i]
            if p.dim() > 1:
                r, c = p.shape[-2], p.shape[-1]
                meta.extend((1, p.numel() // (r * c), r, c))
                row, col, var = rows[i].data_ptr(), cols[i].data_ptr(), 0
            else:
                meta.extend((0, 1, 1, p.numel()))
                row, col, var = 0, 0, variances[i].data_ptr()
            ptrs.extend((p.data_ptr(), grads[i].data_ptr(), row, col, var, out[i].data_ptr()))
            coef.extend((t**decay, min(lr, 1 / t**0.5), e1, float(eps2), d, lr * wd))
        kernel[dtype](  # type: ignore[index]
            n, meta.buffer_info()[0], ptrs.buffer_info()[0], coef.buffer_info()[0], threads
        )
    return True
