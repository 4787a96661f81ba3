r"""The fused backend: a whole chain of update rules in one pass over each parameter's memory.

:class:`CKernel` is the C of a chain's collected program
(:class:`~descentlab.optim.program.ChainProgram`: its statements, state arrays and per-tensor
coefficients), its loop body written by the C emitter (:mod:`~descentlab.optim.c_emitter`);
:meth:`CKernel.source` generates the kernel (one loop body compiled for the
CPU's vectors and for the scalar tail), :mod:`descentlab._native` compiles and caches it, and
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
import os
from array import array
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from descentlab import _native
from descentlab._native import KernelUnavailable, cache_dir, compile_count, compiler

from .base import dense, grad_pointers, laid_out_as, written_in_place
from .c_emitter import render
from .plan import KernelPlan
from .program import ChainProgram, Coefficient

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


CHUNK = 1 << 15  # elements per OpenMP work item
_SMALL = 1 << 16  # groups smaller than this run on one thread (fork-join costs more)
_VERSION = "descentlab-fused-3"  # the first line of every generated source


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


def software_prefetch() -> bool:
    """Whether the generated vector loop prefetches 2 KiB ahead in every stream, chosen by the
    CPU's maker: on Intel, where the hardware prefetcher alone leaves a step with a division or
    root slower, and not on AMD (Zen 3, Zen 4), where the software prefetch makes the step
    slower (as measured in docs/kernel-runtime.md). ``DESCENTLAB_PREFETCH=1``
    (or ``0``) overrides the choice for the kernels built after it is set (each choice is its
    own kernel in the cache)."""
    forced = os.environ.get("DESCENTLAB_PREFETCH", "")
    if forced in ("0", "1"):
        return forced == "1"
    return _native.cpu_vendor() == "GenuineIntel"


@functools.lru_cache(maxsize=1)
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
    other).
    """
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
# Code generation
# --------------------------------------------------------------------------------------


def _empty() -> ChainProgram:
    """The empty chain's program: ``p + g``."""
    prog = ChainProgram()
    prog.update = prog.op("add", ("p", "g"), inline=True)
    return prog


class CKernel:
    """The fused C kernel of a chain's collected program
    (:class:`~descentlab.optim.program.ChainProgram`): its loop body, written by the C
    emitter (:func:`~descentlab.optim.c_emitter.render`), and :meth:`source`, the whole
    kernel. Every value has the C type ``T`` (``double`` for float64 parameters, else
    ``float``: float16 and bfloat16 values are widened exactly on load and rounded to the
    nearest even when stored, as torch's fused kernels do)."""

    def __init__(self, program: ChainProgram | None = None) -> None:
        #: the program (the empty chain's: ``p + g``, where None)
        self.program = _empty() if program is None else program
        body = render(self.program)
        self.lines, self.final = list(body.lines), body.final

    @property
    def arrays(self) -> list[str]:
        """The state entries the kernel reads, in pointer order (after ``p`` and ``g``)."""
        return self.program.arrays

    @property
    def written(self) -> list[str]:
        return self.program.written

    @property
    def coefs(self) -> list[Coefficient]:
        return self.program.coefs

    @property
    def formats(self) -> dict[str, tuple[Any, bool, Any]]:
        return self.program.formats

    @property
    def prepares(self) -> list[Any]:
        return self.program.prepares

    @property
    def fills(self) -> list[str]:
        return self.program.fills

    def final_expr(self) -> str:
        """The C expression of the updated parameter."""
        return self.final

    def source(
        self,
        dtype: torch.dtype,
        stream: bool | None = None,
        prefetch: bool | None = None,
    ) -> str:
        """C++ source of the kernel ``dl_step`` (and ``dl_sqrt_probe``: its square root).
        ``stream``: take the streaming vector width (``DL_STREAM`` in the prelude); None:
        where the body has no division or root (nor low-precision or low-bit data).
        ``prefetch``: the vector loop prefetches 2 KiB ahead in every stream it reads; None:
        this CPU's choice (:func:`software_prefetch`). The choice is in the source, so the
        kernel cache keeps one kernel per choice."""
        if dtype not in DTYPES:
            raise ValueError(f"fused kernels take {_dtype_names()} tensors, got {dtype}")
        # float16/bfloat16: stored as 16 bits, computed in float32 (rounded to the nearest
        # even at each store), as torch's fused CPU kernels do; the float32 and float64
        # kernels' text is unchanged by this (no extra prelude, same names)
        low = _LOW_PRECISION.get(dtype)
        scalar = "double" if dtype == torch.float64 else "float"
        store, ld, st = ("S", "dl_ldx<T>", "dl_stx") if low else ("T0", "dl_ld<T>", "dl_st")
        names = ["p", "g", *self.arrays]
        stored = self.program.stored_arrays()
        types = {n: store for n in names} | self._stored_types(dtype, stored)
        decl = "\n".join(
            f"    {types[n]}* __restrict__ a_{n} = ({types[n]}*)ptrs[{k} * n + i];"
            for k, n in enumerate(names)
        )
        final = f"{st}(a_p + j, {self.final});"
        if prefetch is None:
            prefetch = software_prefetch()
        ahead = "\n".join(  # the gradient read once, the others read and written
            f"__builtin_prefetch(a_{n} + j + 2048 / sizeof({store}), {0 if n == 'g' else 1});"
            for n in names
            if stored.get(n, (n, 0))[1] == 0
        )
        code = self._stored_code()

        def body_of(code: Mapping[str, Mapping[str, str]]) -> str:
            return "\n".join(
                [
                    f"T p = {ld}(a_p + j);",
                    f"T g = {ld}(a_g + j);",
                    *(
                        code[n]["load"] if n in code else f"T s_{n} = {ld}(a_{n} + j);"
                        for n in self.arrays
                        if n not in stored or n in code
                    ),
                    *self.lines,
                    *(
                        code[n]["store"] if n in code else f"{st}(a_{n} + j, s_{n});"
                        for n in self.written
                    ),
                    final,
                ]
            )

        body = body_of(code)
        coefs = "\n".join(
            f"const T c_{c.name} = dl_bc<T>(C[{k}]);" for k, c in enumerate(self.coefs)
        )
        prelude = _PRELUDE if low is None else _PRELUDE + _LOW_COMMON + low
        if stream is None:
            stream = low is None and not code and not self.program.slow
        if stream:  # multiply-adds only: bound by memory, at the width that streams fastest
            prelude = "#define DL_STREAM 1" + prelude
        finish = ""
        if code:
            plain = body_of(self._plain_code())
            decl, finish, prelude = self._stored_frame(decl, code, prelude, plain, coefs)
        return _KERNEL.format(
            finish=finish,
            version=_VERSION,
            prelude=prelude,
            scalar=scalar,
            decl=decl,
            coefs=coefs,
            vbody=f"{ahead}\n{body}" if prefetch else body,
            body=body,
            chunk=CHUNK,
            ncoef=max(len(self.coefs), 1),
        )

    # -- state stored in a low-bit format (descentlab.optim.lowbit) ---------------------
    def _stored_types(
        self, dtype: torch.dtype, stored: Mapping[str, tuple[str, int]]
    ) -> dict[str, str]:
        from . import lowbit

        if stored and dtype != torch.float32:
            raise ValueError(f"low-bit optimizer state needs float32 parameters, got {dtype}")
        out = {}
        for name, (key, idx) in stored.items():
            fmt = self.formats[key][0]
            out[name] = lowbit.c_type(fmt.dtypes[idx])
        return out

    def _plain_code(self) -> dict[str, dict[str, str]]:
        """Loads and stores of the stored entries of a tensor that keeps float32 state (a
        blockwise format's tensors under its ``min_size``)."""
        return {
            key: {
                "load": f"T s_{key} = dl_ld<T>((T0*)a_{key} + j);",
                "store": f"dl_st((T0*)a_{key} + j, s_{key});",
            }
            for key in self.formats
        }

    def _stored_code(self) -> dict[str, dict[str, str]]:
        from . import lowbit

        at = self.program.coef_index
        return {
            key: lowbit.c_code(
                fmt, key, signed, None if salt is None else (at(salt[0]), at(salt[1]))
            )
            for key, (fmt, signed, salt) in self.formats.items()
        }

    def _stored_frame(
        self,
        decl: str,
        code: Mapping[str, Mapping[str, str]],
        prelude: str,
        plain: str,
        coefs: str,
    ) -> tuple[str, str, str]:
        """The segment's declarations and its end with stored state: a blockwise format runs
        the segment block by block (CHUNK is a multiple of every block size, so a segment --
        one row of a tensor without batched hyperparameters -- starts at a block), opening
        each block before the loops and encoding it after them."""
        from . import lowbit

        blocks = {getattr(f, "block_size", None) for f, _, _ in self.formats.values()} - {None}
        assert len(blocks) <= 1 and all(CHUNK % b == 0 for b in blocks)
        decl += "\n" + "\n".join(f"    {c['decl']}" for c in code.values() if c["decl"])
        finish = ""
        if blocks:
            # a tensor under the format's min_size keeps float32 state (no block scales):
            # the plain loops, then return
            first = next(k for k, (f, _, _) in self.formats.items() if hasattr(f, "block_size"))
            decl += (
                f"\n    if (a_{first}_scale == 0) {{\n    int64_t j = j0;\n"
                f"    {{\n        typedef V T;\n{coefs}\n"
                f"        for (; j + W <= j1; j += W) {{\n{plain}\n        }}\n    }}\n"
                f"    {{\n        typedef T0 T;\n{coefs}\n"
                f"        for (; j < j1; ++j) {{\n{plain}\n        }}\n    }}\n"
                "    return;\n    }"
            )
            b = blocks.pop()
            decl += (
                f"\n    for (int64_t jb_ = j0; jb_ < j1; jb_ += {b}) {{"
                f"\n    const int64_t je_ = (jb_ + {b} < j1) ? jb_ + {b} : j1;"
                + "".join(f"\n    {c['open']}" for c in code.values() if c["open"])
                + "\n    const int64_t j0 = jb_, j1 = je_;  // this block"
            )
            finish = "".join(f"\n    {c['close']}" for c in code.values() if c["close"])
            finish += "\n    }"
        return decl, finish, prelude + lowbit.c_prelude()


# The kernel: ``dl_segment`` runs the loop body over one row segment of one tensor (vector
# loop, then scalar tail); ``dl_step`` splits the group into CHUNK-element work items for
# OpenMP. ``{name}`` fields are filled by :meth:`CKernel.source`.
_KERNEL = """// generated by descentlab.optim.fused ({version})
{prelude}
typedef {scalar} T0;
typedef T0 V __attribute__((vector_size(DL_VBYTES)));
static const int64_t W = DL_VBYTES / sizeof(T0);

static inline void dl_segment(int64_t n, int64_t i, int64_t j0, int64_t j1,
                              const double* C, void* const* ptrs) {{
{decl}
    int64_t j = j0;
    {{
        typedef V T;
{coefs}
        for (; j + W <= j1; j += W) {{
{vbody}
        }}
    }}
    {{
        typedef T0 T;
{coefs}
        for (; j < j1; ++j) {{
{body}
        }}
    }}
{finish}
}}

extern "C" void dl_step(int64_t n, const int64_t* numel, const int64_t* rows,
                        void* const* ptrs, const double* coefs, const int64_t* coff,
                        int threads) {{
    int64_t* start = (int64_t*)malloc(sizeof(int64_t) * (size_t)(n + 1));
    start[0] = 0;
    for (int64_t i = 0; i < n; ++i) start[i + 1] = start[i] + (numel[i] + {chunk} - 1) / {chunk};
    const int64_t total = start[n];
    #pragma omp parallel for schedule(static) num_threads(threads) if(threads > 1)
    for (int64_t c = 0; c < total; ++c) {{
        int64_t lo = 0, hi_i = n - 1;
        while (lo < hi_i) {{
            const int64_t mid = (lo + hi_i + 1) / 2;
            if (start[mid] <= c) lo = mid; else hi_i = mid - 1;
        }}
        const int64_t i = lo;
        const int64_t inner = numel[i] / rows[i];
        int64_t j0 = (c - start[i]) * {chunk};
        const int64_t hi = (j0 + {chunk} < numel[i]) ? j0 + {chunk} : numel[i];
        while (j0 < hi) {{
            const int64_t r = j0 / inner;
            const int64_t j1 = ((r + 1) * inner < hi) ? (r + 1) * inner : hi;
            dl_segment(n, i, j0, j1, coefs + coff[i] + r * {ncoef}, ptrs);
            j0 = j1;
        }}
    }}
    free(start);
}}

extern "C" void dl_sqrt_probe(const T0* x, T0* out, int64_t n) {{
    int64_t j = 0;
    for (; j + W <= n; j += W) dl_st(out + j, dl_sqrt(dl_ld<V>(x + j)));
    for (; j < n; ++j) out[j] = dl_sqrt(x[j]);
}}
"""

# Helpers of the generated C++ (GCC vector extensions: the same loop body is compiled for a
# vector type V in the main loop and for the scalar type in the tail).
_PRELUDE = r"""
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* The vector width: the CPU's widest vectors with a fused multiply-add and a correctly rounded
   square root among AVX-512 (64 bytes), AVX2 with FMA (32 bytes) and, elsewhere, 16 bytes
   (SSE2, NEON) with fma and sqrt taken lane by lane from libm. The width follows
   -march=native: GCC compiles a vector type wider than the CPU's registers with round trips
   through the stack, much slower (docs/kernel-runtime.md). A kernel without a division or
   root (DL_STREAM: plain SGD, momentum) is bound by memory and takes 32-byte vectors even
   with AVX-512, which stream faster; its results do not depend on the width. DL_LF and DL_LD
   are the float and double lanes. */
#if defined(__AVX512F__) && !defined(DL_STREAM)
#define DL_VBYTES 64
#elif defined(__AVX2__) && defined(__FMA__)
#define DL_VBYTES 32
#else
#define DL_VBYTES 16
#endif
#define DL_LF (DL_VBYTES / 4)
#define DL_LD (DL_VBYTES / 8)
typedef float VF __attribute__((vector_size(DL_VBYTES)));
typedef double VD __attribute__((vector_size(DL_VBYTES)));
template <class T> static inline T dl_ld(const void* p) { T v; memcpy(&v, p, sizeof v); return v; }
template <class T> static inline void dl_st(void* p, T v) { memcpy(p, &v, sizeof v); }
template <class T> static inline T dl_bc(double c);
template <> inline float dl_bc<float>(double c) { return (float)c; }
template <> inline double dl_bc<double>(double c) { return c; }
template <> inline VF dl_bc<VF>(double c) { VF v = {}; return v + (float)c; }
template <> inline VD dl_bc<VD>(double c) { VD v = {}; return v + c; }
static inline float dl_fma(float a, float b, float c) { return fmaf(a, b, c); }
static inline double dl_fma(double a, double b, double c) { return fma(a, b, c); }
static inline double dl_sqrt(double x) { return sqrt(x); }
#if DL_VBYTES == 64
static inline VF dl_exact_sqrt(VF x) {
    VF z = {};
    return __builtin_ia32_sqrtps512_mask(x, z, (unsigned short)-1, 4);
}
static inline VD dl_sqrt(VD x) {
    VD z = {};
    return __builtin_ia32_sqrtpd512_mask(x, z, (unsigned char)-1, 4);
}
/* GCC's builtins behind _mm512_fmadd_ps/pd and _mm512_rsqrt14_ps: <immintrin.h> itself would
   double the compile time of a kernel */
static inline VF dl_fma(VF a, VF b, VF c) {
    return __builtin_ia32_vfmaddps512_mask(a, b, c, (unsigned short)-1, 4);
}
static inline VD dl_fma(VD a, VD b, VD c) {
    return __builtin_ia32_vfmaddpd512_mask(a, b, c, (unsigned char)-1, 4);
}
/* float32 square root as torch computes it on Intel AVX-512 CPUs (MKL VML, high-accuracy
   mode): y ~ 1/sqrt(x) to 14 bits, s = x y, then one Newton correction s + (x - s^2) y/2
   through fused multiply-adds. Faithful (< 0.51 ulp), and bit-identical to torch.sqrt there
   (elsewhere within an ulp of it: sqrt_reproduces_torch()). 0 and inf pass through;
   subnormal inputs (rsqrt14 is too coarse there) take the exact root. */
static inline VF dl_sqrt(VF v) {
    VF zero = {};
    VF y = __builtin_ia32_rsqrt14ps512_mask(v, zero, (unsigned short)-1);
    VF s = v * y;
    VF h = y * 0.5f;
    VF r = dl_fma(dl_fma(-s, s, v), h, s);
    r = ((v < 1.17549435e-38f) & (v > 0.0f)) ? dl_exact_sqrt(v) : r;
    return ((v == 0.0f) | (v == INFINITY)) ? v : r;
}
static inline float dl_sqrt(float x) {
    VF v = {};
    v[0] = x;
    return dl_sqrt(v)[0];
}
#elif DL_VBYTES == 32
/* the builtins behind _mm256_fmadd_ps/pd (one rounding) and _mm256_sqrt_ps/pd (correctly
   rounded, as sqrtf and sqrt) */
static inline VF dl_exact_sqrt(VF x) { return __builtin_ia32_sqrtps256(x); }
static inline VD dl_sqrt(VD x) { return __builtin_ia32_sqrtpd256(x); }
static inline VF dl_fma(VF a, VF b, VF c) { return __builtin_ia32_vfmaddps256(a, b, c); }
static inline VD dl_fma(VD a, VD b, VD c) { return __builtin_ia32_vfmaddpd256(a, b, c); }
static inline VF dl_sqrt(VF x) { return dl_exact_sqrt(x); }
static inline float dl_sqrt(float x) { return sqrtf(x); }
#else
static inline VF dl_exact_sqrt(VF x) {
    for (int k = 0; k < DL_LF; ++k) x[k] = sqrtf(x[k]);
    return x;
}
static inline VD dl_sqrt(VD x) {
    for (int k = 0; k < DL_LD; ++k) x[k] = sqrt(x[k]);
    return x;
}
static inline VF dl_fma(VF a, VF b, VF c) {
    for (int k = 0; k < DL_LF; ++k) a[k] = fmaf(a[k], b[k], c[k]);
    return a;
}
static inline VD dl_fma(VD a, VD b, VD c) {
    for (int k = 0; k < DL_LD; ++k) a[k] = fma(a[k], b[k], c[k]);
    return a;
}
static inline VF dl_sqrt(VF x) { return dl_exact_sqrt(x); }
static inline float dl_sqrt(float x) { return sqrtf(x); }
#endif
/* torch's CPU lerp: one rounding through fma, exact at both ends */
template <class T> static inline T dl_lerp(T a, T b, T w) {
    T d = b - a;
    return ((w < 0.5) & (w > -0.5)) ? dl_fma(w, d, a) : dl_fma(w - 1, d, b);
}
template <class T> static inline auto dl_isnan(T x) { return x != x; }
template <class T> static inline auto dl_finite(T x) { return (x - x) == 0; }
"""


# float16 and bfloat16 storage (the compute type T0 is float): ``dl_ldx`` widens a vector (or
# one value) exactly, ``dl_stx`` rounds to the nearest even. The square root is the correctly
# rounded one, as in torch's fused kernels and its float16/bfloat16 ``sqrt`` (the MKL-faithful
# root of the prelude only reproduces torch's float32 ``sqrt``): ``dl_sqrt`` names it from here
# on.
_LOW_COMMON = r"""
typedef uint16_t S;
template <class T> static inline T dl_ldx(const S* p);
static inline VF dl_sqrt_cr(VF x) { return dl_exact_sqrt(x); }
static inline float dl_sqrt_cr(float x) { return sqrtf(x); }
#define dl_sqrt dl_sqrt_cr
"""

_LOW_PRECISION = {
    # IEEE binary16: the compiler's conversions (vcvtph2ps/vcvtps2ph with F16C or AVX-512,
    # round to nearest even; overflow to inf, NaN stays NaN)
    torch.float16: r"""
typedef _Float16 VH __attribute__((vector_size(DL_LF * sizeof(_Float16))));
template <> inline VF dl_ldx<VF>(const S* p) {
    VH h; memcpy(&h, p, sizeof h); return __builtin_convertvector(h, VF);
}
template <> inline float dl_ldx<float>(const S* p) { _Float16 h; memcpy(&h, p, 2); return h; }
static inline void dl_stx(S* p, VF v) {
    VH h = __builtin_convertvector(v, VH); memcpy(p, &h, sizeof h);
}
static inline void dl_stx(S* p, float v) { _Float16 h = (_Float16)v; memcpy(p, &h, 2); }
""",
    # bfloat16: the upper half of a float32; rounding adds 0x7fff plus the lowest kept bit
    # (to nearest, ties to even) and a NaN becomes the quiet NaN 0x7fc0 (c10::BFloat16's rule)
    torch.bfloat16: r"""
typedef uint16_t VS __attribute__((vector_size(DL_LF * sizeof(uint16_t))));
typedef uint32_t VU __attribute__((vector_size(DL_LF * sizeof(uint32_t))));
template <> inline VF dl_ldx<VF>(const S* p) {
    VS h; memcpy(&h, p, sizeof h);
    VU u = __builtin_convertvector(h, VU) << 16;
    VF f; memcpy(&f, &u, sizeof f); return f;
}
template <> inline float dl_ldx<float>(const S* p) {
    uint32_t u = (uint32_t)*p << 16; float f; memcpy(&f, &u, 4); return f;
}
static inline void dl_stx(S* p, VF v) {
    VU u; memcpy(&u, &v, sizeof u);
    VU r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    VU nan = (VU)(v != v);
    r = (r & ~nan) | (nan & 0x7fc0u);
    VS h = __builtin_convertvector(r, VS); memcpy(p, &h, sizeof h);
}
static inline void dl_stx(S* p, float v) {
    uint32_t u; memcpy(&u, &v, 4);
    *p = (v != v) ? (S)0x7fc0 : (S)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
""",
}

#: the parameter dtypes the fused kernels take
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _dtype_names() -> str:
    return ", ".join(str(d).removeprefix("torch.") for d in DTYPES)


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

    def __init__(self, kernel: CKernel, dtype: torch.dtype) -> None:
        super().__init__(kernel.program)
        self.c = kernel
        self.dtype = dtype
        self.source = kernel.source(dtype)
        self.kernel = _load(self.source)
        self.arrays = ["p", "g", *kernel.arrays]
        #: the parameters at ``storage`` are not all contiguous (dense, in another order)
        self._strided = False
        self._k = 0
        self._shape: tuple = ()
        self._launch_args: tuple = ()
        self._zero_arrays: dict[int, Any] = {}
        self._rows_cache: tuple | None = None

    def run(
        self,
        params: list[Tensor],
        grads: list[Tensor],
        state: dict[str, list],
        hyper: Mapping[str, Any],
        steps: list[float],
        *,
        plain: bool = False,
    ) -> str:
        """One step over the group, or -- before anything changes -- the reason it cannot run.

        ``plain``: the caller knows ``hyper`` holds only Python values (no batched tensors).

        Every array the kernel touches must be a CPU tensor of the plan's dtype shaped and laid
        out like its parameter, which is dense: contiguous, or (without batched values or
        low-bit state) a permutation of that such as channels_last. The kernel reads ``numel``
        elements from each data pointer, in memory order. Parameters and state are checked
        when their storage changes, gradients every step.
        """
        b = self.c
        dtype = self.dtype
        cols = [state.get(key) for key in b.arrays]
        static = _storage(params, cols)
        k, rows_h = (1, [hyper]) if plain else self._rows(hyper)
        if k != 1 and b.formats:
            return "blockwise low-bit state with batched hyperparameters runs eagerly"
        if static != self.storage or k != self._k or 0 in static:
            why = self._check_static(params, cols, k=k)
            if why:
                return why
            self._shape = self._shapes(params, k)
            self.storage, self._k = static, k
            self._strided = not all(p.is_contiguous() for p in params)
            a_numel, a_rows, total, _ = self._shape
            self._launch_args = (
                a_numel.buffer_info()[0],
                a_rows.buffer_info()[0],
                self._zeros(len(params)).buffer_info()[0],
                total >= _SMALL,
            )
        # torch already keeps a gradient's dtype, device and shape its param's; its layout
        # is checked against the parameters' (all contiguous, as a rule: one test each)
        if self._strided:
            bad = [g for p, g in zip(params, grads, strict=True) if not laid_out_as(g, p)]
        else:
            bad = [g for g in grads if not g.is_contiguous()]
        if bad:
            return _why(bad[0], dtype)
        for fn in self.prepare_fns:
            fn(state, params, grads, hyper)
        n = len(params)
        ptrs = static[:n]
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
        return ""

    def steady_pointers(
        self, params: list[Tensor], grads: list[Tensor], cols: list[list]
    ) -> tuple[list[int], Any] | None:
        """The kernel's pointer list in the steady state -- no batched hyperparameters,
        parameters and state at the storage :meth:`run` last checked, and gradients laid out
        as their parameters -- with what the prepares a step runs need
        (:meth:`~descentlab.optim.plan.KernelPlan.steady_work`), or None (the caller then
        takes the general path). Nothing is changed."""
        if not self.steady_arrays or self._k != 1:
            return None
        static = self.kept_storage(params, cols)
        if static is None:
            return None
        gp = grad_pointers(params, grads, self._strided)
        if gp is None:
            return None
        n = len(params)
        return static[:n] + gp + static[n:], self.steady_work(cols, grads)

    def launch(
        self,
        params: list[Tensor],
        ptrs: tuple[list[int], Any],
        hyper: Any,
        t: float | list[float],
    ) -> None:
        """Run the kernel on :meth:`steady_pointers`' list, every tensor at step ``t`` (or
        each at its own: a list), its coefficients from
        :meth:`~descentlab.optim.plan.KernelPlan.steady_coefficients`."""
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

    def existing_state_error(self, params: list[Tensor], cols: list[list | None]) -> str:
        """What is wrong with the state that exists already, or "": the first phase of a step
        (:meth:`run` checks in each group's update, after the groups before it have moved;
        state still to be made is made right). The storage :meth:`run` last checked passes at
        once."""
        if _storage(params, cols) == self.storage:
            return ""
        return self._check_static(params, cols, existing=True)

    def _check_static(
        self, params: list[Tensor], cols: list[list | None], existing: bool = False, k: int = 1
    ) -> str:
        """What is wrong with the parameters and the state columns ``cols`` (``existing``:
        only with the state there is; an entry still to be made passes; ``k``: the batched
        hyperparameters' length, whose rows are the parameters' leading slices)."""
        dtype = self.dtype
        layout = self._layout(k)
        for p in params:
            if not (p.is_cpu and p.dtype is dtype and layout(p)):
                return _why(p, dtype)
        stored = self.c.program.stored_arrays()
        for key, col in zip(self.c.arrays, cols, strict=True):
            if key in stored:
                why = self._check_stored(key, stored[key], params, col, existing)
                if why:
                    return why
                continue
            filled = existing or key in self.fills
            if col is None:
                if filled:
                    continue
                return f"missing optimizer state {key!r}"
            for p, t in zip(params, col, strict=True):
                if t is None:
                    if filled:
                        continue
                    return f"missing optimizer state {key!r}"
                if not (t.is_cpu and t.dtype is dtype):
                    return _why(t, dtype)
                if t.shape != p.shape:
                    return f"state of shape {tuple(t.shape)} for a parameter of {tuple(p.shape)}"
                if not laid_out_as(t, p):
                    return _why(t, dtype)
        return ""

    def _layout(self, k: int) -> Any:
        """The test of a parameter's layout the kernel can read: dense, and contiguous where
        low-bit blocks or the rows of ``k`` batched values are cut from its logical order."""
        return Tensor.is_contiguous if k != 1 or self.c.formats else dense

    def tensors_error(
        self, params: list[Tensor], grads: list[Tensor], hyper: Mapping[str, Any]
    ) -> str:
        """What :meth:`run` would refuse of these CPU parameters and gradients, or "": the
        first phase of a ``fused=True`` step, before any group changes."""
        dtype, layout = self.dtype, self._layout(self._rows(hyper)[0])
        for p, g in zip(params, grads, strict=True):
            for t in (p, g):
                if t.dtype is not dtype:
                    return _why(t, dtype)
            if not layout(p):
                return _why(p, dtype)
            if not laid_out_as(g, p):
                return _why(g, dtype)
        return ""

    def _check_stored(
        self,
        name: str,
        where: tuple[str, int],
        params: list[Tensor],
        col: list | None,
        existing: bool = False,
    ) -> str:
        """What is wrong with the low-bit state entries ``col`` (``where``: their key and
        index in the format's entries), or "" (``existing``: a missing entry passes)."""
        key, idx = where
        fmt = self.c.formats[key][0]
        for p, t in zip(params, col or [None] * len(params), strict=True):
            expect = fmt.expect(p)[idx]
            if t is None and (existing or expect is None):
                continue
            if t is None or expect is None:
                return f"optimizer state {name!r} does not fit {fmt.name} state"
            want, shape = expect
            if not (t.is_cpu and t.dtype is want and t.is_contiguous()):
                return f"state {name!r} of {fmt.name} state must be {want}, got {t.dtype}"
            if tuple(t.shape) != shape:
                return f"state {name!r} of shape {tuple(t.shape)}, expected {shape}"
        return ""

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


def _storage(params: list[Tensor], cols: list[list | None]) -> list[int]:
    """The parameters' and the state columns' data pointers (0: an entry not there)."""
    static = [p.data_ptr() for p in params]
    for col in cols:
        if col is not None:
            static += [0 if t is None else t.data_ptr() for t in col]
    return static


def _why(t: Tensor, dtype: torch.dtype) -> str:
    if not t.is_cpu:
        return f"tensors must be on the CPU, got {t.device}"
    if t.dtype is not dtype:
        return f"all tensors of a group must be {dtype}, got {t.dtype}"
    return (
        "tensors must be contiguous, or dense with their parameter's layout (channels_last, a "
        "transpose)"
    )
