"""Keep the memory a process frees for its next allocations (glibc's ``malloc``).

A vectorized step allocates and frees tens of megabytes every step; glibc would hand them back
to the system and fault them in again. :func:`keep_freed_memory` sets glibc's two thresholds
once per process (``mallopt``): blocks up to 32 MiB come from the heap, which is not trimmed
below 1 GiB. It changes the whole process's allocator, so descentlab calls it only in the
processes it owns; elsewhere (another C library) it does nothing. Why, measured:
docs/training-runs.md ("Inside a vectorized pass").

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
