"""keep_freed_memory (engine/memory.py): glibc's malloc keeps large freed blocks for the next
allocations instead of unmapping or trimming them (each page handed back costs a page fault
when the next vectorized step touches it again)."""

from __future__ import annotations

import ctypes
import platform
import subprocess
import sys

import pytest

from descentlab.engine.memory import keep_freed_memory

pytestmark = [
    pytest.mark.skipif(
        platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
    ),
    pytest.mark.process,  # a fresh process's glibc defaults
]

# A 24 MiB block: allocated, touched and freed. Prints whether it was mapped on its own (the
# bytes glibc holds in mapped blocks grew by its size) and whether its bytes stayed in the
# heap's free lists after ``free``.
PROBE = """
import ctypes

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]

def probe(n=24 << 20):
    before = libc.mallinfo2()
    p = libc.malloc(n)
    libc.memset(p, 1, n)
    during = libc.mallinfo2()
    libc.free(p)
    after = libc.mallinfo2()
    return during.hblkhd - before.hblkhd >= n, after.fordblks >= n
"""


def _has_mallinfo2() -> bool:
    return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")


@pytest.mark.skipif(not _has_mallinfo2(), reason="glibc older than 2.33")
def test_large_freed_blocks_stay_in_the_heap():
    # a fresh process with glibc's defaults: the block is mapped alone and unmapped on free
    code = PROBE + "print(*probe())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]
    # after keep_freed_memory: from the heap, and kept there after free
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # once per process; calling again changes nothing
    scope: dict[str, object] = {}
    exec(PROBE, scope)  # the same probe, in this process
    mapped, kept = scope["probe"]()  # type: ignore[operator]
    assert (mapped, kept) == (False, True)
