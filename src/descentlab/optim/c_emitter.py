"""The fused C backend's emitter: a chain's collected program (:mod:`descentlab.optim.program`)
written as C -- the per-element loop body (:func:`render`), each primitive spelled from
:data:`~descentlab.optim.form.PRIMITIVES`, and the whole kernel around it (:class:`CKernel`:
its prelude, vector and scalar loops, low-bit state's frame, and the OpenMP split of a group).
:mod:`descentlab.optim.fused` compiles, loads and launches it. This module only writes text.

Every value has the C type ``T`` (the vector type in the main loop, the scalar type in the
tail). The body reads ``p``, ``g`` and each state entry ``s_<key>`` (loaded before it, stored
after it: a low-bit entry through its format's C, :mod:`~descentlab.optim.lowbit`), and each
coefficient ``c_<name>``; each primitive is one line ``T tN = ...;``, a comparison is written
into the ``where`` that reads it, and a store is ``s_<key> = tN;``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from descentlab import _native

from .form import _MASKS, primitive, spell
from .program import ChainProgram, from_program

__all__ = ["CHUNK", "DTYPES", "CBody", "CKernel", "render", "software_prefetch"]

#: 1 of type ``T`` (a literal would be a scalar in the vector loop)
ONE = "dl_bc<T>(1.0)"


@dataclass(frozen=True)
class CBody:
    """A program's loop body: its lines, and the C expression of the new parameter."""

    lines: tuple[str, ...]
    final: str
    #: the C expressions of the values a first pass sums (:attr:`ChainProgram.sums`)
    sums: tuple[str, ...] = ()


def render(prog: ChainProgram) -> CBody:
    """The loop body of ``prog`` (raises ValueError for a primitive without a C spelling)."""
    lines: list[str] = []
    names = {"g": "g", "p": "p"}
    inline: dict[str, str] = {}  # a value written into its reader: its expression

    def let(expr: str) -> str:
        name = f"t{len(lines)}"  # one line per statement: a fresh name in the body
        lines.append(f"T {name} = {expr};")
        return name

    def name(token: str) -> str:
        if token.startswith("s:"):
            return f"s_{token[2:]}"
        if token.startswith("c:"):
            return f"c_{prog.coefs[int(token[2:])].name}"
        return names[token]

    for s in prog.stmts:
        if s.kind == "op":
            prim = primitive(s.op, s.alpha)
            if prim is None:
                raise ValueError(f"no C form for primitive {s.op!r}")
            a = [name(x) for x in s.args]
            alpha = None if s.alpha is None else name(s.alpha)
            if s.op in _MASKS:  # an operand of where only: inline, never a T variable
                names[s.out] = prim.c.format(*a)  # type: ignore[union-attr]
            elif s.inline:
                inline[s.out] = spell(prim.c, a, alpha, lambda e: e, ONE)
                names[s.out] = f"({inline[s.out]})"
            else:
                names[s.out] = spell(prim.c, a, alpha, let, ONE)
        elif s.kind == "let":  # a state value named before its store: copied
            names[s.out] = let(name(s.args[0]))
        elif s.kind == "store":
            lines.append(f"s_{s.out} = {name(s.args[0])};")
    return CBody(
        tuple(lines),
        inline.get(prog.update) or name(prog.update),
        tuple(inline.get(t) or name(t) for t in prog.sums),
    )


#: elements per OpenMP work item (a blockwise format's block divides it)
CHUNK = 1 << 15
_VERSION = "descentlab-fused-3"  # the first line of every generated source


def software_prefetch() -> bool:
    """Whether the generated vector loop prefetches 2 KiB ahead in every stream, chosen by the
    CPU's maker and family: on Intel and on AMD's Zen 5 (family 26), where the hardware
    prefetcher alone leaves a step with a division or root slower, and not on AMD's Zen 3 and
    Zen 4 (family 25), where the software prefetch makes the step slower (as measured in
    docs/kernel-runtime.md). ``DESCENTLAB_PREFETCH=1`` (or ``0``) overrides the choice for the
    kernels built after it is set (each choice is its own kernel in the cache)."""
    forced = os.environ.get("DESCENTLAB_PREFETCH", "")
    if forced in ("0", "1"):
        return forced == "1"
    vendor = _native.cpu_vendor()
    return vendor == "GenuineIntel" or (vendor == "AuthenticAMD" and _native.cpu_family() >= 26)


@functools.lru_cache(maxsize=1)
def torch_fuses_multiply_add() -> bool:
    """Whether torch's float32 multiply-adds round once here (``torch.add(x, y, alpha=a)``,
    ``addcmul``, ``lerp``), as the generated kernels' ``dl_fma`` does.

    torch's CPU kernels are compiled once per instruction set and chosen when it starts
    (``ATEN_CPU_CAPABILITY``): its AVX2 and AVX-512 kernels fuse every multiply-add, its
    ``default`` kernels (no vector instructions) round the product and then the sum. The kernels
    follow what this process's torch does, so that the fused backend stays bit-identical to the
    eager one under each: measured once per process on 1,003 values (a vector loop and its
    tail), and in the source (:meth:`CKernel.source`), so the cache keeps one kernel per choice.
    """
    g = torch.Generator().manual_seed(0)
    x, y = (torch.randn(1003, generator=g) for _ in range(2))
    alpha = 0.37
    twice = x + torch.tensor(alpha) * y  # -ffp-contract is not torch's concern: a tensor each
    return not torch.equal(torch.add(x, y, alpha=alpha), twice)


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
    (:class:`~descentlab.optim.program.ChainProgram`): its loop body (:func:`render`), and
    :meth:`source`, the whole kernel. Every value has the C type ``T`` (``double`` for
    float64 parameters, else ``float``: float16 and bfloat16 values are widened exactly on
    load and rounded to the nearest even when stored, as torch's fused kernels do)."""

    def __init__(self, program: ChainProgram | None = None, *, sums: bool = False) -> None:
        #: the program (the empty chain's: ``p + g``, where None)
        self.program = _empty() if program is None else program
        body = render(self.program)
        self.lines, self.final = list(body.lines), body.final
        #: a first pass of per-tensor totals: the program's sums (else its update) are summed,
        #: the parameter not stored; the pointer in the parameter's place is the tensor's
        #: ``double`` partial sums, ``K`` per CHUNK elements (the parameter, where read, is
        #: another array)
        self.sums = sums
        self.summed = list(body.sums or (body.final,)) if sums else []

    #: the state entries the kernel reads, in pointer order (after ``p`` and ``g``)
    arrays = from_program("arrays")
    written = from_program("written")
    coefs = from_program("coefs")
    formats = from_program("formats")
    prepares = from_program("prepares")
    fills = from_program("fills")

    def final_expr(self) -> str:
        """The C expression of the updated parameter."""
        return self.final

    def source(
        self,
        dtype: torch.dtype,
        stream: bool | None = None,
        prefetch: bool | None = None,
        fused_multiply_add: bool | None = None,
    ) -> str:
        """C++ source of the kernel ``dl_step`` (and ``dl_sqrt_probe``: its square root).
        ``stream``: take the streaming vector width (``DL_STREAM`` in the prelude); None:
        where the body has no division or root (nor low-precision or low-bit data).
        ``prefetch``: the vector loop prefetches 2 KiB ahead in every stream it reads; None:
        this CPU's choice (:func:`software_prefetch`). ``fused_multiply_add``: ``dl_fma`` and
        ``dl_lerp`` round once (True) or twice (False); None: as this process's torch does
        (:func:`torch_fuses_multiply_add`). Each choice is in the source, so the kernel cache
        keeps one kernel per choice."""
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
        final = (
            "\n".join(f"acc{k} += {x};" for k, x in enumerate(self.summed))
            if self.sums
            else f"{st}(a_p + j, {self.final});"
        )
        if prefetch is None:
            prefetch = software_prefetch()
        moved = self._moved()
        ahead = "\n".join(  # the gradient read once, the others read and written
            f"__builtin_prefetch(a_{n} + j + 2048 / sizeof({store}), {0 if n == 'g' else 1});"
            for n in names
            if stored.get(n, (n, 0))[1] == 0 and n in moved
        )
        code = self._stored_code()

        def body_of(code: Mapping[str, Mapping[str, str]]) -> str:
            return "\n".join(
                [
                    *([] if self.sums else [f"T p = {ld}(a_p + j);"]),
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
        if fused_multiply_add is None:
            fused_multiply_add = torch_fuses_multiply_add()
        if not fused_multiply_add:
            prelude += _TWO_ROUNDINGS
        if stream is None:
            stream = low is None and not code and not self.program.slow
        if stream:  # multiply-adds only: bound by memory, at the width that streams fastest
            prelude = "#define DL_STREAM 1" + prelude
        finish = ""
        if code:
            plain = body_of(self._plain_code())
            decl, finish, prelude = self._stored_frame(decl, code, prelude, plain, coefs)
        vsum = ssum = sumdecl = ""
        if self.sums:  # each block's accumulators, added in double into the chunk's sums
            if code:
                raise ValueError("a first pass sums plain values (no low-bit state)")
            n_sums = len(self.summed)
            coefs += "".join(f"\n        T acc{k} = dl_bc<T>(0.0);" for k in range(n_sums))
            sumdecl = f"\n    double sum[{n_sums}] = {{0}};"
            vsum = "".join(
                f"\n        for (int64_t l = 0; l < W; ++l) sum[{k}] += acc{k}[l];"
                for k in range(n_sums)
            )
            ssum = "".join(f"\n        sum[{k}] += acc{k};" for k in range(n_sums))
            finish = (
                f"    double* const out = (double*)ptrs[i] + (j0 / {CHUNK}) * {n_sums};\n"
                f"    for (int k = 0; k < {n_sums}; ++k) "
                f"out[k] = (j0 % {CHUNK} == 0) ? sum[k] : out[k] + sum[k];"
            )
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
            vsum=vsum,
            ssum=ssum,
            sumdecl=sumdecl,
        )

    def _moved(self) -> set[str]:
        """The arrays a pass reads or writes: the parameter where it is stored (not a first
        pass's, whose slot holds its sums), the state it stores, and those whose values its
        statements use (an array loaded and never used -- LAMB's kernel's gradient -- is
        neither read nor prefetched)."""
        used = self.program.used()
        moved = {
            n for n in ("p", "g", *self.arrays) if (n if n in ("p", "g") else f"s:{n}") in used
        }
        return moved | set(self.written) | (set() if self.sums else {"p"})

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
    int64_t j = j0;{sumdecl}
    {{
        typedef V T;
{coefs}
        for (; j + W <= j1; j += W) {{
{vbody}
        }}{vsum}
    }}
    {{
        typedef T0 T;
{coefs}
        for (; j < j1; ++j) {{
{body}
        }}{ssum}
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
#include <stddef.h>
#include <stdint.h>
/* The C library's functions the kernels call, declared: in C++ <math.h>, <stdlib.h> and
   <string.h> were half of a compile (docs/kernel-runtime.md: the same machine code) */
extern "C" {
float fmaf(float, float, float); double fma(double, double, double);
float sqrtf(float); double sqrt(double); float fabsf(float);
float sinf(float); double sin(double); float cosf(float); double cos(double);
float powf(float, float); double pow(double, double);
void* malloc(size_t); void free(void*); void* memcpy(void*, const void*, size_t);
}
#define INFINITY (__builtin_inff())
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


# torch's kernels without vector instructions (ATEN_CPU_CAPABILITY=default) round a
# multiply-add's product and then its sum: so do the kernels built in such a process
# (torch_fuses_multiply_add). The names are taken over after the prelude: its own square root
# (MKL's, whatever torch's capability) keeps its fused correction.
_TWO_ROUNDINGS = r"""
static inline float dl_fma2(float a, float b, float c) { return a * b + c; }
static inline double dl_fma2(double a, double b, double c) { return a * b + c; }
static inline VF dl_fma2(VF a, VF b, VF c) { return a * b + c; }
static inline VD dl_fma2(VD a, VD b, VD c) { return a * b + c; }
template <class T> static inline T dl_lerp2(T a, T b, T w) {
    T d = b - a;
    return ((w < 0.5) & (w > -0.5)) ? a + w * d : b - (1 - w) * d;
}
#define dl_fma dl_fma2
#define dl_lerp dl_lerp2
"""


def prelude(fused_multiply_add: bool | None = None) -> str:
    """The kernels' C helpers (``dl_fma``, ``dl_sqrt``, ``dl_lerp``, ``dl_bc``, ...) for another
    generated kernel that must round as the fused backend does (the landscapes' kernels):
    ``fused_multiply_add`` as in :meth:`CKernel.source` (None: as this process's torch)."""
    if fused_multiply_add is None:
        fused_multiply_add = torch_fuses_multiply_add()
    return _PRELUDE if fused_multiply_add else _PRELUDE + _TWO_ROUNDINGS


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
