r"""Whole batched trajectories in one compiled call.

:func:`descentlab.problems.trajectories.run` advances ``K`` runs one optimizer step at a time;
here the *whole* ``T``-step loop of all ``K`` runs is one call of a C++ kernel generated from
the optimizer's per-element update (:class:`descentlab.optim.c_emitter.CKernel`, the fused
backend's loop body) and the landscape's value and gradient in closed form (:data:`_CLOSED`,
written in autograd's order of operations and checked against it before use), compiled and
cached by :mod:`descentlab._native`. What applies, how it runs and its numerics:
docs/playground.md ("Batched trajectories and the trajectory kernel").

Example:
    >>> import torch
    >>> from descentlab.problems import trajectories
    >>> tr = trajectories.run("rosenbrock", "adam", torch.zeros(3, 2), steps=5, lr=0.1)
    >>> tr.kernel      # the whole run was one compiled call (with a C++ compiler present)
    True
"""

from __future__ import annotations

import ctypes
import dis
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from descentlab import _native
from descentlab._announce import once
from descentlab.optim import c_emitter as _c_emitter
from descentlab.optim import fused as _fused
from descentlab.optim.fused import CKernel
from descentlab.optim.hyper import resolve as _resolve
from descentlab.problems.landscapes import NAMES, Landscape, value_and_grad

__all__ = ["closed_form_value_and_grad", "landscape_code", "run_kernel", "supports"]

_MAX_DIM = 8  # quadratic and rastrigin: kernels for up to 8 coordinates


def _warn_once(key: str, message: str) -> None:
    once(("trajectory-kernel", key), message, stacklevel=4)


# --------------------------------------------------------------------------------------------
# closed-form landscapes


@dataclass(frozen=True)
class LandscapeCode:
    """A landscape's value and gradient as C++: a case of
    ``template <class T> T dl_f(int land, const T* X, T* G, const double* P)`` that sets the
    gradient ``G`` and returns the value at ``X`` (``D`` coordinates), with its runtime
    parameters ``P`` (read as ``PC(k)``: rounded to the runs' dtype, as torch rounds Python
    scalars)."""

    kind: str
    dim: int
    code: str
    params: tuple[float, ...] = ()


@dataclass(frozen=True)
class _Closed:
    dims: tuple[int, ...]
    code: str
    params: Any = None  # Landscape -> tuple of floats


_ANY_DIM = tuple(range(1, _MAX_DIM + 1))

# Each gradient is written in the order in which autograd visits and accumulates the terms
# of torch's expression (last-created node first), so that it rounds as autograd does.
_CLOSED: dict[str, _Closed] = {
    # (x**2 - 4*x) + 6; autograd: pow -> 2x, mul -> -4
    "parabola": _Closed((1,), "T x = X[0]; G[0] = x * 2 + (-4); return (x * x - x * 4) + 6;"),
    "xsinx": _Closed((1,), "T x = X[0]; T s = dl_sin(x); G[0] = s + x * dl_cos(x); return x * s;"),
    # (3 * x**3 - 2*x) + 1
    "cubic": _Closed(
        (1,), "T x = X[0]; G[0] = (x * x * 3) * 3 + (-2); return (x * x * x * 3 - x * 2) + 1;"
    ),
    # (2x - 1)**3
    "chain_cubic": _Closed((1,), "T y = X[0] * 2 - 1; G[0] = ((y * y) * 3) * 2; return y * y * y;"),
    # 3 (x-2)**2 + (y-2)**2
    "bowl": _Closed(
        (2,),
        "T a = X[0] - 2; T b = X[1] - 2; G[0] = (a * 2) * 3; G[1] = b * 2;"
        " return (a * a) * 3 + b * b;",
    ),
    # ((3x * y**2 + 4 x**3) - 5 y**2) + 1
    "cubic2d": _Closed(
        (2,),
        "T x = X[0]; T y = X[1]; T x3 = x * 3; T yy = y * y;"
        " G[0] = yy * 3 + ((x * x) * 3) * 4;"
        " G[1] = x3 * (y * 2) + (y * 2) * (-5);"
        " return ((x3 * yy + (x * x * x) * 4) - yy * 5) + 1;",
    ),
    # (x**4 / 4 - x**2) + tilt x; autograd: tilt, then -(2x), then (4 x**3) / 4
    "double_well": _Closed(
        (1,),
        "T x = X[0]; G[0] = (PC(0) + -(x * 2)) + ((x * x * x) * 4) * PC(1);"
        " return (dl_pow4(x) / 4 - x * x) + x * PC(0);",
        lambda f: (float(f.params["tilt"]), 0.25),
    ),
    # 0.05 x**2 + 5 y**2
    "ravine": _Closed(
        (2,),
        "T x = X[0]; T y = X[1]; G[0] = (x * 2) * PC(0); G[1] = (y * 2) * 5;"
        " return (x * x) * PC(0) + (y * y) * 5;",
        lambda f: (0.05,),
    ),
    # (x**2 - y**2) + y**4 / 4
    "saddle": _Closed(
        (2,),
        "T x = X[0]; T y = X[1]; G[0] = x * 2; G[1] = -(y * 2) + ((y * y * y) * 4) * PC(0);"
        " return (x * x - y * y) + dl_pow4(y) / 4;",
        lambda f: (0.25,),
    ),
    # b (v - u*u)**2 + (a - u)**2: autograd reaches u first through (a - u), then twice
    # through u*u: ((-2e) + s) + s with s = -(b (2d)) u
    "rosenbrock": _Closed(
        (2,),
        "T u = X[0]; T v = X[1]; T d = v - u * u; T e = PC(0) - u;"
        " T gv = PC(1) * (d * 2); T s = -gv * u;"
        " G[0] = (-(e * 2) + s) + s; G[1] = gv;"
        " return PC(1) * (d * d) + e * e;",
        lambda f: (float(f.params["a"]), float(f.params["b"])),
    ),
    # autograd visits the three squares last to first, each through u*v^k before (c_k - u)
    "beale": _Closed(
        (2,),
        "T u = X[0]; T v = X[1]; T v2 = v * v; T v3 = v * v * v;"
        " T a = (PC(0) - u) + u * v; T b = (PC(1) - u) + u * v2; T c = (PC(2) - u) + u * v3;"
        " T ga = a * 2; T gb = b * 2; T gc = c * 2;"
        " G[0] = ((((gc * v3 + (-gc)) + gb * v2) + (-gb)) + ga * v) + (-ga);"
        " G[1] = ((gc * u) * ((v * v) * 3) + (gb * u) * (v * 2)) + ga * u;"
        " return (a * a + b * b) + c * c;",
        lambda f: (1.5, 2.25, 2.625),
    ),
    # A d + sum_i (x_i**2 - A cos(2 pi x_i)); autograd: 2x + (A sin(c x)) c
    "rastrigin": _Closed(
        _ANY_DIM,
        "T s = X[0] * X[0] - PC(1) * dl_cos(X[0] * PC(0));"
        " G[0] = X[0] * 2 + (PC(1) * dl_sin(X[0] * PC(0))) * PC(0);"
        " for (int i = 1; i < D; ++i) {"
        " T c = X[i] * PC(0); s = s + (X[i] * X[i] - PC(1) * dl_cos(c));"
        " G[i] = X[i] * 2 + (PC(1) * dl_sin(c)) * PC(0); }"
        " return s + PC(2);",
        lambda f: (2 * math.pi, float(f.params["A"]), float(f.params["A"]) * f.dim),
    ),
    # (x**2 + y - 11)**2 + (x + y**2 - 7)**2
    "himmelblau": _Closed(
        (2,),
        "T x = X[0]; T y = X[1]; T a = (x * x + y) - 11; T b = (x + y * y) - 7;"
        " T ga = a * 2; T gb = b * 2;"
        " G[0] = gb + ga * (x * 2); G[1] = gb * (y * 2) + ga;"
        " return a * a + b * b;",
    ),
    # 0.5 * sum_i (x @ H)_i x_i; autograd: 0.5 (x @ H) + (0.5 x) @ H^T
    "quadratic": _Closed(
        _ANY_DIM,
        "T xh[D]; T s = {};"
        " for (int i = 0; i < D; ++i) { T a = X[0] * PC(i);"
        " for (int j = 1; j < D; ++j) a = a + X[j] * PC(j * D + i); xh[i] = a; }"
        " for (int i = 0; i < D; ++i) { T b = (X[0] * PC(D * D)) * PC(i * D);"
        " for (int j = 1; j < D; ++j) b = b + (X[j] * PC(D * D)) * PC(i * D + j);"
        " G[i] = xh[i] * PC(D * D) + b; s = (i == 0) ? xh[0] * X[0] : s + xh[i] * X[i]; }"
        " return s * PC(D * D);",
        lambda f: (*f.params["H"].reshape(-1).tolist(), 0.5),
    ),
}


def _kinds(dim: int) -> list[str]:
    """The closed forms compiled into the kernels for ``dim``-dimensional runs."""
    return [name for name, c in _CLOSED.items() if dim in c.dims]


def landscape_code(f: Landscape) -> LandscapeCode | None:
    """The closed-form C++ of a registered deterministic landscape, or None."""
    c = _CLOSED.get(f.name)
    if c is None or f.stochastic or f.dim not in c.dims:
        return None
    return LandscapeCode(f.name, f.dim, c.code, c.params(f) if c.params else ())


# --------------------------------------------------------------------------------------------
# code generation


_KERNEL = r"""
#include <sys/mman.h>
typedef {scalar} T0;
typedef {vec} V;                  /* one vector (the fused backend's type: DL_VBYTES) */
static const int L = DL_VBYTES / sizeof(T0);  /* lanes of a vector */
static const int NV = 4;          /* vectors per block: independent chains for the CPU */
static const int B = NV * L;      /* runs per block */
static const int D = {dim};
static const int NC = {ncoef};
static const int NS = {nstate};
#define PC(k) ((T0)P[k])

static inline T0 dl_sin(T0 x) {{ return {sin}(x); }}
static inline T0 dl_cos(T0 x) {{ return {cos}(x); }}
static inline T0 dl_pow4(T0 x) {{ return {pow}(x, (T0)4); }}
static inline V dl_sin(V x) {{ for (int l = 0; l < L; ++l) x[l] = dl_sin(x[l]); return x; }}
static inline V dl_cos(V x) {{ for (int l = 0; l < L; ++l) x[l] = dl_cos(x[l]); return x; }}
static inline V dl_pow4(V x) {{ for (int l = 0; l < L; ++l) x[l] = dl_pow4(x[l]); return x; }}

/* ask for transparent huge pages on a large output before its first touch: a 2 MiB page
   fault instead of 512 small ones (advice only; ignored where unsupported) */
static void dl_hugepages(void* p, size_t n) {{
    const uintptr_t page = 2u << 20;
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~(page - 1);
    if (e > a) madvise((void*)a, e - a, MADV_HUGEPAGE);
}}

/* horizontal sum and max by halving (NaN propagates through the sum) */
static inline T0 dl_hsum(V x) {{
{hsum}
    return x[0];
}}
static inline T0 dl_hmax(V x) {{
{hmax}
    return x[0];
}}

template <class T> static inline T dl_f(int land, const T* X, T* G, const double* P) {{
    switch (land) {{
{landscape}
    }}
    return X[0];
}}

/* one block of B runs, all steps, state in registers; padding lanes repeat the first run */
static void dl_block(int land, int64_t K, int64_t steps, int64_t r0, int nl, const T0* x0,
                     const T0* const* init, T0* path, T0* loss, int64_t* div_at,
                     const double* const* tab, const int64_t* const* idx, const int64_t* U,
                     const double* P, double bound) {{
    typedef V T;
    T X[NV][D], G[NV][D], F[NV];
    T ST[NV][NS > 0 ? NS : 1][D];
    int64_t off[NC > 0 ? NC : 1][B];
    for (int b = 0; b < B; ++b) {{
        const int v = b / L, l = b % L;
        const int64_t r = r0 + (b < nl ? b : 0);
        for (int i = 0; i < D; ++i) {{
            X[v][i][l] = x0[r * D + i];
            for (int s = 0; s < NS; ++s) ST[v][s][i][l] = init[s][r * D + i];
        }}
        for (int c = 0; c < NC; ++c) off[c][b] = idx[c] ? idx[c][r] : 0;
    }}
    /* the coefficient tables in locals: the compiler cannot know that the outputs do not
       overwrite the pointer arrays */
    const double* tb[NC > 0 ? NC : 1];
    int64_t us[NC > 0 ? NC : 1];
    bool rowwise[NC > 0 ? NC : 1];
    for (int c = 0; c < NC; ++c) {{ tb[c] = tab[c]; us[c] = U[c]; rowwise[c] = idx[c] != 0; }}
    bool dead[B] = {{}};
    bool any_dead = false;
    const bool bounded = bound < INFINITY;
    for (int64_t t = 0;; ++t) {{
        /* cheap test first: the sum of (y - y) over every value and run is 0 unless some
           value is inf or NaN; with a bound, the largest |x_i| */
        T chk = {{}};
        T big = {{}};
        for (int v = 0; v < NV; ++v) {{
            F[v] = dl_f<T>(land, X[v], G[v], P);
            chk += F[v] - F[v];
            for (int i = 0; i < D; ++i) {{
                chk += X[v][i] - X[v][i];
                if (bounded) {{
                    T a = X[v][i] < 0 ? -X[v][i] : X[v][i];
                    big = a > big ? a : big;
                }}
            }}
        }}
        const bool suspect = dl_hsum(chk) != 0 || (bounded && dl_hmax(big) > bound);
        if (suspect) {{
            for (int b = 0; b < nl; ++b) {{
                const int v = b / L, l = b % L;
                if (dead[b]) continue;
                bool bad = !(F[v][l] - F[v][l] == 0);
                for (int i = 0; i < D; ++i) {{
                    bad |= !(X[v][i][l] - X[v][i][l] == 0);
                    if (bounded) bad |= (X[v][i][l] > bound) | (X[v][i][l] < -bound);
                }}
                if (bad) {{ dead[b] = true; any_dead = true; div_at[r0 + b] = t; }}
            }}
        }}
        if (any_dead) {{  /* frozen at the last recorded point (t >= 1 here) */
            const T0* pp = path + ((t - 1) * K + r0) * D;
            const T0* lp = loss + (t - 1) * K + r0;
            for (int b = 0; b < nl; ++b) {{
                if (!dead[b]) continue;
                const int v = b / L, l = b % L;
                for (int i = 0; i < D; ++i) {{ X[v][i][l] = pp[b * D + i]; G[v][i][l] = 0; }}
                F[v][l] = lp[b];
            }}
        }}
        T0* pt = path + (t * K + r0) * D;
        T0* lt = loss + t * K + r0;
        if (nl == B) {{
            for (int v = 0; v < NV; ++v) dl_st(lt + v * L, F[v]);
{vstore}
        }} else {{
            for (int b = 0; b < nl; ++b) {{
                const int v = b / L, l = b % L;
                for (int i = 0; i < D; ++i) pt[b * D + i] = X[v][i][l];
                lt[b] = F[v][l];
            }}
        }}
        if (t == steps) break;
        for (int v = 0; v < NV; ++v) {{
{coefs}
            for (int i = 0; i < D; ++i) {{
                T p = X[v][i];
                T g = G[v][i];
{load}
{body}
{store}
                X[v][i] = {final};
            }}
        }}
    }}
}}

extern "C" void dl_traj(int land, int64_t K, int64_t steps, const T0* x0, const T0* const* init,
                        T0* path, T0* loss, int64_t* div_at, const double* const* tab,
                        const int64_t* const* idx, const int64_t* U, const double* P,
                        double bound, int threads) {{
    const int64_t blocks = (K + B - 1) / B;
    dl_hugepages(path, (steps + 1) * K * D * sizeof(T0));
    dl_hugepages(loss, (steps + 1) * K * sizeof(T0));
    #pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if(threads > 1)
    for (int64_t b = 0; b < blocks; ++b) {{
        const int64_t r0 = b * B;
        const int nl = (int)((K - r0) < B ? (K - r0) : B);
        dl_block(land, K, steps, r0, nl, x0, init, path, loss, div_at, tab, idx, U, P, bound);
    }}
}}

/* the closed-form value and gradient at n points (checked against autograd before use) */
extern "C" void dl_value_grad(int land, int64_t n, const T0* x, T0* f, T0* g, const double* P) {{
    for (int64_t r = 0; r < n; ++r) {{
        T0 X[D], G[D];
        for (int i = 0; i < D; ++i) X[i] = x[r * D + i];
        f[r] = dl_f<T0>(land, X, G, P);
        for (int i = 0; i < D; ++i) g[r * D + i] = G[i];
    }}
}}
"""


def _per_width(make: Callable[[int], tuple[str, ...]], size: int) -> tuple[str, ...]:
    """Each piece of C that ``make(lanes)`` writes for a vector of ``lanes`` elements of
    ``size`` bytes, for every vector width of the fused prelude (``DL_VBYTES``: 64, 32 or 16
    bytes, chosen by the compiler for the CPU), under the preprocessor's choice."""
    widths = (64, 32, 16)
    pieces = [make(w // size) for w in widths]
    out = []
    for k in range(len(pieces[0])):
        text = "".join(
            f"#{'if' if i == 0 else 'elif'} DL_VBYTES == {w}\n{p[k]}\n"
            for i, (w, p) in enumerate(zip(widths, pieces, strict=True))
        )
        out.append(text + "#endif")
    return tuple(out)


def _reductions_and_store(lanes: int, itype: str, dim: int) -> tuple[str, str, str]:
    """The bodies of ``dl_hsum`` and ``dl_hmax`` (by halving) and the vector store of a
    block's points, for ``lanes``-element vectors."""
    mask = f"typedef {itype} VM __attribute__((vector_size({lanes} * sizeof({itype}))));"

    def shuffle(a: str, b: str, idx: list[int]) -> str:
        return f"__builtin_shuffle({a}, {b}, (VM){{{', '.join(map(str, idx))}}})"

    hsum, hmax = [f"    {mask}"], [f"    {mask}"]
    half = lanes // 2
    while half >= 1:
        idx = [(j + half) % lanes for j in range(lanes)]
        hsum.append(f"    x = x + {shuffle('x', 'x', idx)};")
        hmax.append(f"    {{ V y = {shuffle('x', 'x', idx)}; x = (y > x) ? y : x; }}")
        half //= 2
    if dim == 1:
        vstore = "            for (int v = 0; v < NV; ++v) dl_st(pt + v * L, X[v][0]);"
    elif dim == 2:
        lo = [j // 2 + (lanes if j % 2 else 0) for j in range(lanes)]
        hi = [lanes // 2 + j // 2 + (lanes if j % 2 else 0) for j in range(lanes)]
        vstore = (
            f"            {mask}\n"
            "            for (int v = 0; v < NV; ++v) {\n"
            f"                dl_st(pt + 2 * v * L, {shuffle('X[v][0]', 'X[v][1]', lo)});\n"
            f"                dl_st(pt + 2 * v * L + L, {shuffle('X[v][0]', 'X[v][1]', hi)});\n"
            "            }"
        )
    else:
        vstore = (
            "            for (int b = 0; b < B; ++b)\n"
            "                for (int i = 0; i < D; ++i) pt[b * D + i] = X[b / L][i][b % L];"
        )
    return "\n".join(hsum), "\n".join(hmax), vstore


def _source(builder: CKernel, dim: int, dtype: torch.dtype) -> str:
    """The kernel of one chain structure for ``dim``-dimensional runs of every closed form
    (:func:`_kinds`; the landscape is a runtime switch, so one compilation serves all)."""
    double = dtype == torch.float64
    arrays = builder.arrays
    coefs = "\n".join(
        f"            T c_{c.name};\n"
        f"            if (rowwise[{k}]) {{ for (int l = 0; l < L; ++l) "
        f"c_{c.name}[l] = (T0)tb[{k}][t * us[{k}] + off[{k}][v * L + l]]; }}\n"
        f"            else c_{c.name} = dl_bc<T>(tb[{k}][t * us[{k}]]);"
        for k, c in enumerate(builder.coefs)
    )
    load = "\n".join(f"                T s_{n} = ST[v][{k}][i];" for k, n in enumerate(arrays))
    store = "\n".join(
        f"                ST[v][{arrays.index(n)}][i] = s_{n};" for n in builder.written
    )
    body = "\n".join("                " + line for line in builder.lines)
    final = builder.final_expr()
    size = 8 if double else 4
    itype = "int64_t" if double else "int32_t"
    hsum, hmax, vstore = _per_width(lambda lanes: _reductions_and_store(lanes, itype, dim), size)
    kernel = _KERNEL.format(
        scalar="double" if double else "float",
        vec="VD" if double else "VF",
        hsum=hsum,
        hmax=hmax,
        vstore=vstore,
        dim=dim,
        ncoef=len(builder.coefs),
        nstate=len(arrays),
        sin="sin" if double else "sinf",
        cos="cos" if double else "cosf",
        pow="pow" if double else "powf",
        landscape="\n".join(
            f"    case {k}: {{ {_CLOSED[name].code} }}" for k, name in enumerate(_kinds(dim))
        ),
        coefs=coefs,
        load=load,
        body=body,
        store=store,
        final=final,
    )
    # the fused backend's prelude: dl_fma, dl_sqrt, dl_lerp, dl_bc, ... (identical rounding)
    return f"// descentlab.problems.kernels\n{_c_emitter.prelude()}\n{kernel}"


def _bind(lib: ctypes.CDLL) -> tuple[Any, Any]:
    traj = lib.dl_traj
    traj.restype = None
    traj.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, *([ctypes.c_void_p] * 9)]
    traj.argtypes += [ctypes.c_double, ctypes.c_int]
    vg = lib.dl_value_grad
    vg.restype = None
    vg.argtypes = [ctypes.c_int, ctypes.c_int64, *([ctypes.c_void_p] * 4)]
    return traj, vg


# --------------------------------------------------------------------------------------------
# coefficients


def _batched(v: Any) -> bool:
    if isinstance(v, Tensor):
        return v.ndim >= 1 and v.numel() > 1
    if isinstance(v, tuple | list):
        return any(_batched(x) for x in v)
    return False


def _columns(key: str, v: Any, k: int) -> list[Tensor]:
    """One float64 column of K values per batched component of ``v``."""
    parts = list(v) if isinstance(v, tuple | list) else [v]
    return [
        torch.as_tensor(x, dtype=torch.float64).reshape(-1).expand(k)
        for x in parts
        if isinstance(x, Tensor | float | int)
    ]


def _with_row(plain: dict[str, Any], keys: list[str], hyper: Mapping[str, Any], row: list[float]):
    """``plain`` with the batched ``keys`` set to one row's values."""
    out = dict(plain)
    pos = 0
    for key in keys:
        v = hyper[key]
        if isinstance(v, tuple | list):
            vals = []
            for x in v:
                if isinstance(x, Tensor | float | int):
                    vals.append(row[pos])
                    pos += 1
                else:
                    vals.append(x)
            out[key] = tuple(vals)
        else:
            out[key] = row[pos]
            pos += 1
    return out


def _reads_step(fn: Any) -> bool:
    """Whether a coefficient function ``fn(hyper, step, extra)`` can depend on ``step``: its
    code loads that argument, or hands it to an inner function (conservative: anything that
    is not plain Python code counts as reading it)."""
    code = getattr(fn, "__code__", None)
    if code is None or code.co_argcount < 2:
        return True
    return _code_reads_step(code)


@functools.lru_cache(maxsize=512)
def _code_reads_step(code: Any) -> bool:
    name = code.co_varnames[1]
    if name in code.co_cellvars:
        return True
    for ins in dis.get_instructions(code):
        if ins.opname.startswith("LOAD_FAST") or ins.opname.startswith("LOAD_DEREF"):
            argval = ins.argval if isinstance(ins.argval, tuple) else (ins.argval,)
            if name in argval:
                return True
    return False


def _coefficient_tables(
    builder: CKernel,
    rule: Any,
    hyper: Mapping[str, Any],
    k: int,
    steps: int,
    dtype: torch.dtype,
) -> tuple[list[Tensor], list[Tensor | None], list[int]]:
    """Per coefficient: a (T, U) float64 table (a (1, U) one when the value cannot change with
    the step), the (K,) row index of each run (None when U == 1) and the table's stride in
    steps (U, or 0 for a one-row table)."""
    plain = _fused._plain(hyper)
    rows: list[list[dict[str, Any]]] = []
    index: list[Tensor | None] = []
    for uses in (c.uses for c in builder.coefs):
        keys = [key for key in uses if key in hyper and _batched(hyper[key])]
        if not keys:
            rows.append([{key: v for key, v in plain.items() if not _batched(v)}])
            index.append(None)
            continue
        cols = [col for key in keys for col in _columns(key, hyper[key], k)]
        uniq, inverse = torch.unique(torch.stack(cols, 1), dim=0, return_inverse=True)
        base = {key: v for key, v in plain.items() if not _batched(v) or key in keys}
        rows.append([_with_row(base, keys, hyper, r) for r in uniq.tolist()])
        index.append(inverse.to(torch.int64).contiguous())
    # the prepares (state allocation, NAdam's running product) on a one-element shadow
    shadow = torch.zeros(1, dtype=dtype)
    state: dict[str, Any] = {key: list(v) for key, v in rule.init([shadow]).items()}
    step_t = torch.zeros((), dtype=torch.float64)
    state["step"] = [step_t]
    values: list[list[float]] = [[] for _ in builder.coefs]
    varies = [c.per_tensor is not None or _reads_step(c.fn) for c in builder.coefs]
    last = steps if builder.prepares or any(varies) else 1
    for t in range(1, last + 1):
        if builder.prepares:
            step_t.fill_(t)
            state["_step_values"] = [float(t)]
            for fn in (pr.fn for pr in builder.prepares):
                fn(state, [shadow], [shadow], hyper)
        for j, c in enumerate(builder.coefs):
            if t > 1 and not varies[j]:
                continue
            e = c.per_tensor(state, 0) if c.per_tensor is not None else None
            fn = c.fn
            values[j] += [float(fn(h, t, e)) for h in rows[j]]
    tables = [
        torch.tensor(v, dtype=torch.float64).reshape(-1, len(r))
        for v, r in zip(values, rows, strict=True)
    ]
    strides = [len(r) if v else 0 for r, v in zip(rows, varies, strict=True)]
    return tables, index, strides


# --------------------------------------------------------------------------------------------
# entry points


@dataclass
class _Prepared:
    opt: Any
    hyper: dict[str, Any]
    builder: CKernel
    land: LandscapeCode


def _prepare(f: Landscape, opt: Any, dtype: torch.dtype) -> _Prepared | None:
    if dtype not in (torch.float32, torch.float64):
        return None
    land = landscape_code(f)
    if land is None or land.dim != f.dim:
        if not f.stochastic and f.name in NAMES:  # a function of the user's: step by step
            _warn_once(
                f"closed-{f.name}-{f.dim}",
                f"descentlab: landscape {f.name!r} in {f.dim}-D has no closed form for the "
                "trajectory kernel; its trajectories run step by step with autograd (slower)",
            )
        return None
    rules = opt.rule.rules
    if any(not r.local or getattr(r, "lookahead", False) for r in rules):
        return None
    group = opt.param_groups[0]
    if any(callable(v) for key, v in group.items() if key != "params"):
        return None  # schedules: the step-by-step path evaluates them
    hyper = _resolve(group, 0)
    opt._validate(0, hyper)
    builder = opt._fused.builder(opt, hyper)
    if builder is None:
        return None
    return _Prepared(opt, hyper, builder, land)


def supports(f: Landscape, opt: Any, dtype: torch.dtype) -> bool:
    """Whether :func:`run_kernel` can run this landscape, optimizer and dtype."""
    return _prepare(f, opt, dtype) is not None


def run_kernel(
    f: Landscape, opt: Any, x0: Tensor, steps: int, bound: float | None
) -> tuple[Tensor, Tensor, Tensor] | None:
    """Run ``opt`` (a descentlab optimizer over the single ``(K, d)`` parameter ``x0``, not yet
    stepped) for ``steps`` steps in one kernel call.

    Returns:
        ``(paths, losses, diverged_at)`` with time-major shapes ``(T+1, K, d)``, ``(T+1, K)``
        and ``(K,)`` (-1: never diverged); None when the kernel does not apply (see the
        module docstring) or no C++ compiler is present (announced once).
    """
    dtype = x0.dtype
    prep = _prepare(f, opt, dtype)
    if prep is None:
        return None
    if _native.compiler() is None:
        _warn_once(
            "compiler",
            "descentlab: no C++ compiler (g++ or c++ on PATH, or $CXX): trajectories run step "
            "by step instead of in one compiled kernel (slower)",
        )
        return None
    builder, land = prep.builder, prep.land
    try:
        source = _source(builder, land.dim, dtype)
        traj, value_grad = _native.load(source, _bind, what="trajectory kernel")
    except _native.KernelUnavailable as exc:
        _warn_once("compile", f"descentlab: trajectory kernel unavailable ({exc}); step by step")
        return None
    k, d = x0.shape
    x0 = x0.contiguous()
    params = torch.tensor(land.params or (0.0,), dtype=torch.float64)
    if not _closed_form_agrees(f, land, value_grad, x0):
        return None
    init = prep.opt.rule.init([x0])
    states = []
    for key in builder.arrays:
        v = init.get(key, [None])[0]
        if v is None:
            if key not in builder.fills:
                return None
            v = torch.zeros_like(x0)
        states.append(v.to(dtype).contiguous())
    tables, index, sizes = _coefficient_tables(builder, prep.opt.rule, prep.hyper, k, steps, dtype)
    path = torch.empty(steps + 1, k, d, dtype=dtype)
    loss = torch.empty(steps + 1, k, dtype=dtype)
    div_at = torch.full((k,), -1, dtype=torch.int64)
    ptr = ctypes.c_void_p
    a_init = (ptr * max(len(states), 1))(*[s.data_ptr() for s in states])
    a_tab = (ptr * max(len(tables), 1))(*[t.data_ptr() for t in tables])
    a_idx = (ptr * max(len(index), 1))(*[0 if i is None else i.data_ptr() for i in index])
    a_u = torch.tensor(sizes or [1], dtype=torch.int64)
    threads = torch.get_num_threads() if k * steps >= 1 << 16 else 1
    land_id = _kinds(land.dim).index(land.kind)
    traj(
        land_id,
        k,
        steps,
        x0.data_ptr(),
        ctypes.addressof(a_init),
        path.data_ptr(),
        loss.data_ptr(),
        div_at.data_ptr(),
        ctypes.addressof(a_tab),
        ctypes.addressof(a_idx),
        a_u.data_ptr(),
        params.data_ptr(),
        math.inf if bound is None else float(bound),
        threads,
    )
    return path, loss, div_at


def _evaluate(land: LandscapeCode, value_grad: Any, x: Tensor) -> tuple[Tensor, Tensor]:
    """The closed form's value and gradient at the points ``x`` (``(n, d)``), as the kernel
    computes them (``value_grad``: its entry point)."""
    x = x.contiguous()
    params = torch.tensor(land.params or (0.0,), dtype=torch.float64)
    fk = torch.empty(x.shape[0], dtype=x.dtype)
    gk = torch.empty_like(x)
    kind = _kinds(land.dim).index(land.kind)
    value_grad(kind, x.shape[0], x.data_ptr(), fk.data_ptr(), gk.data_ptr(), params.data_ptr())
    return fk, gk


def closed_form_value_and_grad(f: Landscape, x: Tensor) -> tuple[Tensor, Tensor] | None:
    """The trajectory kernel's own value and gradient of ``f`` at the points ``x``
    (``(n, d)``, float32 or float64), or None where ``f`` has no closed form: what the tests
    check against autograd for every registered landscape."""
    from descentlab.optim import SGD

    land = landscape_code(f)
    if land is None or land.dim != f.dim:
        return None
    opt = SGD([torch.zeros(1, f.dim, dtype=x.dtype, requires_grad=True)], lr=0.1)
    prep = _prepare(f, opt, x.dtype)
    if prep is None:
        return None
    source = _source(prep.builder, land.dim, x.dtype)
    _, value_grad = _native.load(source, _bind, what="trajectory kernel")
    return _evaluate(land, value_grad, x)


def _closed_form_agrees(f: Landscape, land: LandscapeCode, value_grad: Any, x0: Tensor) -> bool:
    """The kernel's value and gradient at (up to 64 of) the starts against the landscape's
    torch function and autograd; a mismatch (a different function under a registered name)
    is announced and sends the run down the step-by-step path."""
    x = x0[:64].contiguous()
    fk, gk = _evaluate(land, value_grad, x)
    ft, gt = value_and_grad(f, x)
    tol = 1e-10 if x.dtype == torch.float64 else 1e-4
    ok = torch.allclose(fk, ft, rtol=tol, atol=tol) and torch.allclose(gk, gt, rtol=tol, atol=tol)
    if not ok:
        _warn_once(
            f"mismatch-{land.kind}",
            f"descentlab: landscape {f.name!r} does not match its closed form (a custom "
            "function under a registered name?); its trajectories run step by step",
        )
    return ok
