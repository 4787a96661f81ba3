"""Keep the memory a process frees for its next allocations (glibc's ``malloc``).

A vectorized step (:mod:`descentlab.engine.vectorized`) allocates and frees tens of
megabytes of temporaries at every step: K runs' window matrices, products and gradients,
each of a few megabytes. By default glibc returns large freed blocks to the system (blocks
above a threshold that it adapts as it goes are mapped and unmapped one by one; the top of the
heap is trimmed when more than twice that threshold is free), and every page handed back
costs a page fault, with the page zeroed, when the next step touches it again. Measured on the
MNIST-1D CNN (``train_many`` of K=15 Adam runs, 200 steps, one thread): 200 to 3,500 minor
faults per step, and 1.3x as much CPU time per run and step (1.54-1.84 against 1.17-1.19 ms)
as with the freed memory kept (0-4 faults per step); K=8: 5-480 faults per step, within
noise. :func:`keep_freed_memory` sets glibc's two thresholds once per process (``mallopt``):
blocks up to 32 MiB come from the heap, and the heap is not trimmed below 1 GiB, so a
process keeps at most what its largest step held. Elsewhere (another C library) it does
nothing: only speed differs, never a number.

It changes the whole process's allocator, so descentlab calls it only in processes it owns:
the ``descentlab`` program and its worker processes (both modes of a comparison, vectorized
and one trial at a time, run under the same setting). A program of your own that calls
:func:`~descentlab.engine.multirun.train_many` in its own process may call it first.

Example:
    >>> keep_freed_memory() in (True, False)
    True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["keep_freed_memory"]

# glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# the largest mmap threshold glibc accepts on 64-bit systems, and the trim threshold
_MMAP_THRESHOLD = 32 * 1024 * 1024
_TRIM_THRESHOLD = 1024 * 1024 * 1024

_STATE: dict[str, bool] = {}


def keep_freed_memory() -> bool:
    """Set glibc's ``M_MMAP_THRESHOLD`` (32 MiB) and ``M_TRIM_THRESHOLD`` (1 GiB) once per
    process; True where both were set, False where the C library is not glibc or refused."""
    if "set" not in _STATE:
        ok = False
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                ok = (
                    libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1
                    and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1
                )
            except (OSError, AttributeError):
                ok = False
        _STATE["set"] = ok
    return _STATE["set"]
