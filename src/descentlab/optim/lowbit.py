r"""Low-memory optimizer state: how a rule's state entries are *stored*, chosen per optimizer
(``state_dtype=``) and applied where the form's emitters load and store state
(:mod:`descentlab.optim.form`), so every rule written in the form gets it on both backends.

Two formats, each decoded to float32 when a step loads an entry and encoded when it stores
it; within a step every later read sees the float32 value:

- :class:`Int8Blockwise` (``state_dtype="int8"``): Dettmers et al., "8-bit Optimizers via
  Block-wise Quantization" (ICLR 2022): per block of ``block_size`` elements its absolute
  maximum (float32, the entry ``<key>_scale``) and one byte per element, the nearest value of
  the dynamic quantization map (:func:`dynamic_map`; signed, or unsigned for entries a rule
  declares non-negative), ties to the larger. Tensors under ``min_size`` elements keep float32
  state. Encoding NaN stores the code of zero.
- :class:`BF16Stochastic` (``state_dtype="bfloat16"``): the upper 16 bits of float32, rounded
  stochastically with random bits hashed from the element's index, the step and the entry
  (:func:`sr_salt`), identical on both backends.

How the fused kernel encodes and decodes a block, and what it costs: docs/optimizers.md
("Low-memory state").
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "BF16Stochastic",
    "Int8Blockwise",
    "StateFormat",
    "dynamic_map",
    "state_format",
    "thresholds",
    "zero_code",
]

#: the smallest block scale (torchao's clip): a block of zeros encodes as zeros
MIN_SCALE = 1e-12


def _linspace(steps: int) -> Tensor:
    """``torch.linspace(0.1, 1, steps)`` as torch's AVX2 and AVX-512 kernels compute it (the
    map bitsandbytes publishes), whatever kernels this process's torch runs: its ``default``
    kernels round the multiply-add twice and move some values by an ulp
    (``ATEN_CPU_CAPABILITY=default``), which would change the map and every int8 state.
    The first half counts up from 0.1, the second down from 1, each point one rounding of
    ``start + step * i`` (exact in float64 before it)."""
    start, end = np.float32(0.1), np.float32(1.0)
    step = np.float32((end - start) / np.float32(steps - 1))
    i = np.arange(steps)
    up = (np.float64(start) + np.float64(step) * i).astype(np.float32)
    down = (np.float64(end) - np.float64(step) * (steps - 1 - i)).astype(np.float32)
    return torch.from_numpy(np.where(i < steps // 2, up, down))


@functools.lru_cache(maxsize=4)
def dynamic_map(signed: bool) -> Tensor:
    """The 256 values of the dynamic quantization map (float32, sorted), as bitsandbytes'
    ``create_dynamic_map(signed, max_exponent_bits=7, total_bits=8)`` builds it.

    Each value is ``10^-e`` times the midpoint of one of ``2^f`` equal bins of [0.1, 1] for
    exponents ``e = 6..0`` (the paper's dynamic tree: the exponent's zero bits, an indicator bit,
    then ``f`` fraction bits), with both signs where ``signed``; then 0 and 1.
    Unsigned maps have one more fraction bit at each exponent (the sign bit's)."""
    data: list[float] = []
    for i in range(7):
        items = 2**i if signed else 2 ** (i + 1)
        # in float32 tensors, rounding as bitsandbytes' (and torchao's copy) does
        bounds = _linspace(items + 1)
        means = (bounds[:-1] + bounds[1:]) / 2.0
        data += (10 ** (-6 + i) * means).tolist()
        if signed:
            data += (-(10 ** (-6 + i)) * means).tolist()
    data += [0.0, 1.0]
    assert len(data) == 256
    return torch.tensor(sorted(data), dtype=torch.float32)


@functools.lru_cache(maxsize=4)
def zero_code(signed: bool) -> int:
    """The code of 0 in :func:`dynamic_map` (a new entry's code; NaN encodes as it)."""
    return int(torch.searchsorted(dynamic_map(signed), torch.tensor(0.0)))


@functools.lru_cache(maxsize=4)
def thresholds(signed: bool) -> Tensor:
    """The 255 decision thresholds of nearest rounding onto :func:`dynamic_map` (float32): the
    smallest float32 at or above each midpoint of two neighbours (computed exactly), so that
    a float32 ``x``'s code is the number of thresholds ``<= x`` -- the nearest map value, ties
    to the larger."""
    q = dynamic_map(signed).double().numpy()
    mid = (q[:-1] + q[1:]) / 2  # exact: sums of two float32 values
    t = mid.astype(np.float32)
    below = t.astype(np.float64) < mid
    t[below] = np.nextafter(t[below], np.float32(np.inf))
    return torch.from_numpy(t.copy())


class StateFormat(ABC):
    """How a state entry is stored (:class:`Int8Blockwise`, :class:`BF16Stochastic`)."""

    #: the name ``state_dtype=`` takes
    name: str
    #: whether encoding takes a per-step seed (stochastic rounding)
    salted: bool = False
    #: whether entries are stored in blocks of consecutive elements (a shard of the tensor
    #: would cut them otherwise than the whole tensor's: refused on sharded parameters)
    blockwise: bool = False
    #: the dtype of each entry of :meth:`keys`
    dtypes: tuple[torch.dtype, ...] = ()

    @property
    @abstractmethod
    def tag(self) -> tuple:
        """What distinguishes the kernel code of this format (part of a rule's signature)."""

    @abstractmethod
    def keys(self, key: str) -> tuple[str, ...]:
        """The state entries that store ``key`` (``key`` first)."""

    @abstractmethod
    def init(self, params: list[Tensor], signed: bool) -> list[list[Any]]:
        """The stored zeros of each entry of :meth:`keys`, one list per entry (None where a
        parameter does not have that entry)."""

    @abstractmethod
    def decode(self, stored: list[Tensor], signed: bool) -> Tensor:
        """One parameter's value (float32, the parameter's shape) from its stored entries."""

    @abstractmethod
    def encode(self, value: Tensor, stored: list[Tensor], signed: bool, salt: int) -> None:
        """Store ``value`` (float32) into the entries ``stored`` in place."""

    @abstractmethod
    def expect(self, p: Tensor) -> list[tuple[torch.dtype, tuple[int, ...]] | None]:
        """The dtype and shape of each stored entry of parameter ``p`` (None: absent)."""

    def from_float(self, value: Tensor, signed: bool) -> list[Tensor]:
        """Stored entries holding ``value`` (a float state loaded from a float32 optimizer)."""
        stored = self.init([value], signed)
        out = [s[0] for s in stored]
        self.encode(value.float(), out, signed, 0)
        return out


@dataclass(frozen=True)
class Int8Blockwise(StateFormat):
    """8-bit blockwise dynamic quantization (Dettmers et al. 2022; see the module)."""

    block_size: int = 256
    #: tensors with fewer elements keep float32 state (bitsandbytes' ``min_8bit_size`` and
    #: torchao's rule: a bias's few values gain nothing, and a second moment quantized to zero
    #: next to a large one gives a step of ``lr * m / eps``)
    min_size: int = 4096
    name = "int8"
    blockwise = True

    def __post_init__(self) -> None:
        if self.block_size not in (256, 2048):
            raise ValueError(
                f"Int8Blockwise: block_size must be 256 or 2048 (the paper's), "
                f"got {self.block_size!r}"
            )
        if not (isinstance(self.min_size, int) and self.min_size >= 0):
            raise ValueError(
                f"Int8Blockwise: min_size must be an integer >= 0, got {self.min_size!r}"
            )

    @property
    def tag(self) -> tuple:
        return ("int8", self.block_size, self.min_size)

    dtypes = (torch.uint8, torch.float32)

    def small(self, p: Tensor) -> bool:
        """Whether ``p``'s state stays float32 (fewer than :attr:`min_size` elements)."""
        return p.numel() < self.min_size

    def keys(self, key: str) -> tuple[str, ...]:
        return (key, f"{key}_scale")

    def blocks(self, n: int) -> int:
        return -(-n // self.block_size)

    def init(self, params: list[Tensor], signed: bool) -> list[list[Any]]:
        zero = zero_code(signed)
        codes: list[Any] = []
        scales: list[Any] = []
        for p in params:
            if self.small(p):
                codes.append(torch.zeros(p.shape, device=p.device))
                scales.append(None)
            else:
                codes.append(torch.full(p.shape, zero, dtype=torch.uint8, device=p.device))
                scales.append(torch.full((self.blocks(p.numel()),), MIN_SCALE, device=p.device))
        return [codes, scales]

    def expect(self, p: Tensor) -> list[tuple[torch.dtype, tuple[int, ...]] | None]:
        if self.small(p):
            return [(torch.float32, tuple(p.shape)), None]
        return [(torch.uint8, tuple(p.shape)), (torch.float32, (self.blocks(p.numel()),))]

    def decode(self, stored: list[Tensor], signed: bool) -> Tensor:
        codes, scale = stored
        if scale is None:  # a small tensor's float32 state
            return codes
        q = dynamic_map(signed).to(codes.device)
        n = codes.numel()
        per = scale.repeat_interleave(self.block_size)[:n]
        return (q[codes.reshape(-1).long()] * per).reshape(codes.shape)

    def encode(self, value: Tensor, stored: list[Tensor], signed: bool, salt: int) -> None:
        codes, scale = stored
        if scale is None:
            if value is not codes:
                codes.copy_(value)
            return
        x = value.reshape(-1)
        n, b = x.numel(), self.block_size
        a = x.abs()
        a = torch.where(torch.isnan(a), 0.0, a)
        pad = self.blocks(n) * b - n
        amax = torch.nn.functional.pad(a, (0, pad)).view(-1, b).amax(1)
        sc = torch.where(amax > MIN_SCALE, amax, torch.tensor(MIN_SCALE, dtype=torch.float32))
        y = x * (1.0 / sc).repeat_interleave(b)[:n]  # the reciprocal: no division per value
        t = thresholds(signed).to(x.device)
        c = torch.bucketize(y, t, right=True)
        zero = zero_code(signed)
        c = torch.where(torch.isnan(y), zero, c)
        codes.copy_(c.view(codes.shape))
        scale.copy_(sc)

    @staticmethod
    @functools.lru_cache(maxsize=4)
    def encoder(signed: bool) -> dict[str, np.ndarray | int]:
        """The constants of the kernels' arithmetic encoder for one map (see :data:`_C_COMMON`):
        the code of a float32 ``x`` is ``#{thresholds <= x}`` (:func:`thresholds`), computed
        from the map's structure -- zero, seven decades ``d`` of ``n_d`` linearly spaced
        values, then 1 -- instead of searched. ``kpos``/``dneg``: each region boundary's bits
        and whether it is a tie (AVX-512: ``kb``, ``tk`` and ``r0`` by binade); ``a``, ``b``,
        ``base``, ``nmax`` (``ra``, ... by region): ``y = |x| a[d] - b[d]`` puts decade ``d``'s
        inner thresholds at the integers ``1 .. n_d - 1``, so the code is
        ``base[d] + min(trunc(y), nmax[d])``, searched where ``y`` is within :data:`NEAR` of
        one. Checked here: the thresholds have this structure."""
        q = dynamic_map(signed).double().numpy()
        t = thresholds(signed).numpy()
        zero = int(np.searchsorted(t, 0.0, side="right"))
        sizes = [2**d if signed else 2 ** (d + 1) for d in range(7)]
        base = np.cumsum([zero + 1, *sizes]).astype(np.int32)  # decades 0..6, then 1.0
        assert base[-1] == 255 and q[255] == 1.0 and q[zero] == 0.0
        kpos = t.view(np.int32)[base - 1].astype(np.int64)
        dneg = np.zeros(8, dtype=np.int64)  # unsigned: a negative x codes as 0 (all t > 0)
        if signed:  # the negative side mirrors the positive one, without the value 1
            assert np.array_equal(q[:zero], -q[zero + 1 : 255][::-1])
            kneg = (-t[254 - base[:-1]]).view(np.int32).astype(np.int64) + 1
            dneg[:7] = kneg - kpos[:7]
            assert set(dneg.tolist()) <= {0, 1}  # 1: the midpoint is a float32 (a tie)
        a = np.zeros(8, dtype=np.float32)
        b = np.full(8, -0.5, dtype=np.float32)  # the region of 1: y = 0.5, code base[7]
        nmax = np.zeros(8, dtype=np.int32)
        for d, n in enumerate(sizes):
            a[d] = np.float32(n / (0.9 * 10.0 ** (d - 6)))
            b[d] = np.float32(n / 9)
            nmax[d] = n - 1
            low = np.float32(kpos[d : d + 1].astype(np.int32).view(np.float32)[0])
            if np.float32(low * a[d]) - b[d] < -NEAR / 4:  # the kernels truncate y >= 0
                raise AssertionError("the int8 map's decade starts below its encoder's 0")
            inner = t[base[d] : base[d] + n - 1].astype(np.float32)
            y = inner * a[d] - b[d]  # float32, as the kernel computes it
            if np.abs(y - np.arange(1, n)).max(initial=0.0) > NEAR / 4:
                raise AssertionError("the int8 map's thresholds are not where its encoder looks")
        # the kernels' tables: by region r (0: zero, 1..7: decade r - 1, 8: one), and the
        # boundaries in K = 2 bits(|x|) - (x < 0) space: 2 kpos - 1 + dneg (K >= kb: reached)
        ra = np.zeros(16, dtype=np.float32)
        rb = np.full(16, -0.5, dtype=np.float32)
        rbase = np.full(16, base[7], dtype=np.int32)
        rnmax = np.zeros(16, dtype=np.int32)
        ra[1:8], rb[1:8], rbase[0], rbase[1:8] = a[:7], b[:7], zero, base[:7]
        rnmax[1:8] = nmax[:7]
        kb = (2 * kpos - 1 + dneg).astype(np.int64)
        assert kb.max() < 2**31
        # by binade (biased exponent less 104, at least 0): the boundary within it (a binade
        # holds one at most: a decade is wider) and the region below it
        exps = kpos >> 23
        assert exps.min() >= 104 and len(set(exps.tolist())) == 8
        tk = np.full(32, 2**31 - 1, dtype=np.int64)
        r0 = np.zeros(32, dtype=np.int32)
        for k in range(32):
            r0[k] = int((exps < 104 + k).sum())
            (inside,) = np.nonzero(exps == 104 + k)
            if inside.size:
                tk[k] = kb[inside[0]]
        return {
            "kpos": kpos,
            "dneg": dneg,
            "a": a,
            "b": b,
            "nmax": nmax,
            "base": base,
            "zero": zero,
            "t": t,
            "tk": tk,
            "r0": r0,
            "kb": kb,
            "rbase": rbase,
            "rnmax": rnmax,
            "ra": ra,
            "rb": rb,
        }


#: how close to an integer the encoder's decade position ``y`` must be to count the thresholds
#: instead (float32 rounding moves a threshold's ``y`` by about 1e-5 at most)
NEAR = 2.0**-12


def _hash32(x: Any) -> Any:
    """Chris Wellons' ``lowbias32`` of uint32 values: Python integers, or int64 tensors
    holding them (the kernels' ``dl_hash``)."""
    m = 0xFFFFFFFF
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & m
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & m
    return x ^ (x >> 16)


def hash32(x: int) -> int:
    """:func:`_hash32` of one number (a coefficient computed every step)."""
    return _hash32(x & 0xFFFFFFFF)


def sr_salt(key_index: int, step: float) -> int:
    """The stochastic rounding's per-entry, per-step seed: a hash of the entry's index in the
    rule's state and the step count."""
    return hash32(hash32(0x9E3779B9 * (key_index + 1)) + int(step))


@dataclass(frozen=True)
class BF16Stochastic(StateFormat):
    """bfloat16 storage with stochastic rounding (see the module)."""

    name = "bfloat16"
    salted = True

    @property
    def tag(self) -> tuple:
        return ("bf16sr",)

    dtypes = (torch.bfloat16,)

    def keys(self, key: str) -> tuple[str, ...]:
        return (key,)

    def init(self, params: list[Tensor], signed: bool) -> list[list[Tensor]]:
        return [[torch.zeros(p.shape, dtype=torch.bfloat16, device=p.device) for p in params]]

    def expect(self, p: Tensor) -> list[tuple[torch.dtype, tuple[int, ...]] | None]:
        return [(torch.bfloat16, tuple(p.shape))]

    def decode(self, stored: list[Tensor], signed: bool) -> Tensor:
        return stored[0].float()

    def encode(self, value: Tensor, stored: list[Tensor], signed: bool, salt: int) -> None:
        x = value.reshape(-1).contiguous()
        u = x.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
        j = torch.arange(x.numel(), dtype=torch.int64, device=x.device)
        r = _hash32(j ^ salt) & 0xFFFF
        hi = ((u + r) >> 16) & 0xFFFF
        bits = torch.where(hi >= 0x8000, hi - 0x10000, hi).to(torch.int16)
        stored[0].copy_(bits.view(torch.bfloat16).view(stored[0].shape))


_NAMES: dict[str, StateFormat] = {"int8": Int8Blockwise(), "bfloat16": BF16Stochastic()}


def state_format(state_dtype: str | StateFormat | None) -> StateFormat | None:
    """The format ``state_dtype`` names: None (the parameters' dtype), ``"int8"`` (block 256),
    ``"bfloat16"``, or a :class:`StateFormat` (e.g. ``Int8Blockwise(block_size=2048)``)."""
    if state_dtype is None or isinstance(state_dtype, StateFormat):
        return state_dtype
    if isinstance(state_dtype, str) and state_dtype in _NAMES:
        return _NAMES[state_dtype]
    raise ValueError(
        "state_dtype must be None, 'int8', 'bfloat16' or a descentlab.optim.lowbit."
        f"StateFormat, got {state_dtype!r}"
    )


# --------------------------------------------------------------------------------------
# The formats' C, for the fused kernels (descentlab.optim.c_emitter.CKernel.source): each
# stored entry is declared, loaded as float32 in the loop body, stored from it, and -- for a
# blockwise format -- prepared before and encoded after each block.
# --------------------------------------------------------------------------------------


def _c_floats(values: np.ndarray) -> str:
    return ", ".join(float(v).hex() if np.isfinite(v) else "INFINITY" for v in values)


_C_COMMON = r"""
/* descentlab.optim.lowbit: stored optimizer state */
/* dl_VS16 and dl_VU32: the 16- and 32-bit integers of a VF's lanes (DL_LF, fused.py) */
typedef uint16_t dl_VS16 __attribute__((vector_size(DL_LF * sizeof(uint16_t))));
typedef uint32_t dl_VU32 __attribute__((vector_size(DL_LF * sizeof(uint32_t))));
template <class T> static inline T dl_q8_ld(const uint8_t* p, const float* map);
template <> inline float dl_q8_ld<float>(const uint8_t* p, const float* map) { return map[*p]; }
template <> inline VF dl_q8_ld<VF>(const uint8_t* p, const float* map) {
#if defined(__AVX512F__)
    typedef int32_t VI __attribute__((vector_size(64)));
    typedef uint8_t VB __attribute__((vector_size(16)));
    VB b;
    memcpy(&b, p, sizeof b);
    const VF z = {};
    return __builtin_ia32_gathersiv16sf(z, map, __builtin_convertvector(b, VI),
                                        (unsigned short)-1, 4);
#else
    VF v;
    for (int k = 0; k < DL_LF; ++k) v[k] = map[p[k]];
    return v;
#endif
}
#if defined(__AVX512VBMI__) && defined(__AVX512BW__)
/* With AVX512-VBMI a block's codes are decoded before the loop, 64 at a time, by byte
   permutes instead of the map's gather (slow on some CPUs: docs/optimizers.md): the
   map's 256 floats as 4 planes of their bytes, each looked up by two 128-entry permutes, and
   the planes interleaved back into floats. The codes are first put in the order the
   interleaving (within 128-bit lanes) undoes. dq = map[code] * scale, as the load computes. */
#define DL_Q8_VBMI 1
typedef uint8_t dl_VB64 __attribute__((vector_size(64)));
typedef char dl_VC64 __attribute__((vector_size(64)));
typedef uint16_t dl_VW32 __attribute__((vector_size(64)));
typedef int32_t dl_VI16 __attribute__((vector_size(64)));
static inline void dl_q8_dec(const uint8_t* codes, int64_t n, float* dq, const uint8_t* planes,
                             const float* map, float sc) {
    dl_VB64 P[4][4];
    memcpy(P, planes, sizeof P);
    const dl_VI16 order = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
    const dl_VB64 lo8 = {0,  64, 1,  65, 2,  66, 3,  67, 4,  68, 5,  69, 6,  70, 7,  71,
                         16, 80, 17, 81, 18, 82, 19, 83, 20, 84, 21, 85, 22, 86, 23, 87,
                         32, 96, 33, 97, 34, 98, 35, 99, 36, 100, 37, 101, 38, 102, 39, 103,
                         48, 112, 49, 113, 50, 114, 51, 115, 52, 116, 53, 117, 54, 118, 55, 119};
    const dl_VB64 hi8 = lo8 + 8;
    const dl_VW32 lo16 = {0,  32, 1,  33, 2,  34, 3,  35, 8,  40, 9,  41, 10, 42, 11, 43,
                          16, 48, 17, 49, 18, 50, 19, 51, 24, 56, 25, 57, 26, 58, 27, 59};
    const dl_VW32 hi16 = lo16 + 4;
    int64_t k = 0;
    for (; k + 64 <= n; k += 64) {
        dl_VI16 raw;
        memcpy(&raw, codes + k, sizeof raw);
        const dl_VB64 idx = (dl_VB64)__builtin_shuffle(raw, order);
        const dl_VC64 top = (dl_VC64)idx < 0;
        dl_VB64 b[4];
        for (int p = 0; p < 4; ++p) {
            const dl_VB64 lo = __builtin_shuffle(P[p][0], P[p][1], idx);
            const dl_VB64 hi = __builtin_shuffle(P[p][2], P[p][3], idx);
            b[p] = top ? hi : lo;
        }
        const dl_VW32 w0 = (dl_VW32)__builtin_shuffle(b[0], b[1], lo8);
        const dl_VW32 w1 = (dl_VW32)__builtin_shuffle(b[0], b[1], hi8);
        const dl_VW32 w2 = (dl_VW32)__builtin_shuffle(b[2], b[3], lo8);
        const dl_VW32 w3 = (dl_VW32)__builtin_shuffle(b[2], b[3], hi8);
        const dl_VW32 d[4] = {__builtin_shuffle(w0, w2, lo16), __builtin_shuffle(w0, w2, hi16),
                              __builtin_shuffle(w1, w3, lo16), __builtin_shuffle(w1, w3, hi16)};
        for (int q = 0; q < 4; ++q) {
            VF v;
            memcpy(&v, &d[q], sizeof v);
            v = v * sc;
            memcpy(dq + k + 16 * q, &v, sizeof v);
        }
    }
    for (; k < n; ++k) dq[k] = map[codes[k]] * sc;
}
#endif
static inline VF dl_abs(VF v) {
    dl_VU32 u;
    memcpy(&u, &v, sizeof u);
    u &= 0x7fffffffu;
    memcpy(&v, &u, sizeof v);
    return v;
}
/* the loop body keeps a block's new values in a buffer and their running absolute maximum
   (NaN ignored) in mx, lane by lane */
static inline void dl_q8_put(float* buf, VF v, VF& mx) {
    memcpy(buf, &v, sizeof v);
    const VF a = dl_abs(v);
#if DL_VBYTES == 64  /* vmaxps(a, mx) is (a > mx) ? a : mx, NaN included: one instruction */
    mx = __builtin_ia32_maxps512_mask(a, mx, mx, (unsigned short)-1, 4);
#elif DL_VBYTES == 32
    mx = __builtin_ia32_maxps256(a, mx);
#else
    mx = (a > mx) ? a : mx;
#endif
}
static inline void dl_q8_put(float* buf, float v, VF& mx) {
    *buf = v;
    const float a = fabsf(v);
    mx[0] = (a > mx[0]) ? a : mx[0];
}
/* The int8 encoder (Int8Blockwise.encoder): the code of x is the number of thresholds <= x,
   computed from the map's structure instead of searched, in vectors and without branches but
   one: the region r of x (0: zero; 1..7: decade r - 1; 8: one) counts the region boundaries
   reached -- with AVX-512 one comparison, against the only boundary within x's binade (a
   boundary per binade at most: decades are wider than binades), looked up by the exponent;
   else eight comparisons -- then the place in the decade by one multiply-add. Comparisons are
   of K = 2 |x|'s bits - (x < 0) against 2 t's bits - 1 + tie: a boundary that is an exact
   midpoint of two map values (a tie) is reached by a negative x only strictly beyond it. A
   lane whose place lies within DL_Q8_NEAR of a threshold (a few in ten thousand), or NaN,
   counts the thresholds by binary search instead. */
struct dl_q8_enc {
    int32_t tk[32], r0[32];  /* by binade (the exponent less 104): boundary, region below */
    int32_t base[16], nmax[16];  /* by region: the code of its first value, the most after */
    float a[16], b[16];      /* by region: y = |x| a - b places x in it */
    /* without AVX-512: each region boundary's bits and tie, and the tables by decade */
    int32_t kpos[8], dneg[8], dbase[8], dnmax[8];
    float da[8], db[8];
    int32_t kpv[8][8];       /* kpos - 1, in 8 lanes each */
    int32_t zero, sgn;
    float t[255];
};
#if defined(__AVX512F__)
#define DL_QW 16
#else
#define DL_QW 8
#endif
typedef float dl_QF __attribute__((vector_size(DL_QW * sizeof(float))));
typedef int32_t dl_QI __attribute__((vector_size(DL_QW * sizeof(int32_t))));
typedef uint32_t dl_QU __attribute__((vector_size(DL_QW * sizeof(int32_t))));
typedef uint8_t dl_QB __attribute__((vector_size(DL_QW * sizeof(int32_t))));
typedef long long dl_QL __attribute__((vector_size(DL_QW * sizeof(int32_t))));
/* the number of thresholds <= x (x not NaN) */
static inline uint32_t dl_q8_search(float x, const float* t) {
    uint32_t c = 0;
    for (uint32_t s = 128; s; s >>= 1) c += (t[c + s - 1] <= x) ? s : 0;
    return c;
}
static inline uint8_t dl_q8_code(float x, const dl_q8_enc& E) {
    return (x != x) ? (uint8_t)E.zero : (uint8_t)dl_q8_search(x, E.t);
}
static inline bool dl_q8_any(dl_QI m) {
#if defined(__AVX512F__)
    return __builtin_ia32_ptestmd512(m, m, (unsigned short)-1) != 0;
#elif defined(__AVX__)
    return !__builtin_ia32_ptestz256((dl_QL)m, (dl_QL)m);
#else
    int32_t l[DL_QW];
    memcpy(l, &m, sizeof l);
    int32_t any = 0;
    for (int k = 0; k < DL_QW; ++k) any |= l[k];
    return any != 0;
#endif
}
/* each lane's low byte, in order */
static inline void dl_q8_bytes(uint8_t* out, dl_QI c) {
#if defined(__AVX512F__)
    typedef uint8_t VB __attribute__((vector_size(DL_QW)));
    const VB b = __builtin_convertvector(c, VB);
    memcpy(out, &b, sizeof b);
#else
    const dl_QB low = {0, 4, 8, 12, 16, 20, 24, 28};
    const dl_QB b = __builtin_shuffle((dl_QB)c, low);
    memcpy(out, &b, DL_QW);
#endif
}
/* the constants of one map, in registers for a block */
struct dl_q8_regs {
#if DL_QW == 16
    dl_QI tk0, tk1, r00, r01, base, nmax;
    dl_QF a, b;
#else
    dl_QI base0, nmax0;
    dl_QF a0, b0;
    dl_QI kp[8];
#endif
};
static inline dl_q8_regs dl_q8_load(const dl_q8_enc& E) {
    dl_q8_regs R;
#if DL_QW == 16
    memcpy(&R.tk0, E.tk, sizeof R.tk0);
    memcpy(&R.tk1, E.tk + 16, sizeof R.tk1);
    memcpy(&R.r00, E.r0, sizeof R.r00);
    memcpy(&R.r01, E.r0 + 16, sizeof R.r01);
    memcpy(&R.base, E.base, sizeof R.base);
    memcpy(&R.nmax, E.nmax, sizeof R.nmax);
    memcpy(&R.a, E.a, sizeof R.a);
    memcpy(&R.b, E.b, sizeof R.b);
#else
    memcpy(&R.base0, E.dbase, sizeof R.base0);
    memcpy(&R.nmax0, E.dnmax, sizeof R.nmax0);
    memcpy(&R.a0, E.da, sizeof R.a0);
    memcpy(&R.b0, E.db, sizeof R.b0);
    memcpy(R.kp, E.kpv, sizeof R.kp);
    __asm__("" : "+m"(R.kp));  /* not constants to the compiler: see dl_q8_vec */
#endif
    return R;
}
/* the codes of DL_QW values (not yet multiplied by the block's 1 / scale: inv) */
/* the lanes of a mask vector (all bits set or none) as the bits of an integer */
static inline unsigned dl_q8_mask(dl_QI m) {
#if DL_QW == 16 && defined(__AVX512DQ__)
    return __builtin_ia32_cvtd2mask512(m);
#elif DL_QW == 8 && defined(__AVX__)
    dl_QF f;
    memcpy(&f, &m, sizeof f);
    return (unsigned)__builtin_ia32_movmskps256(f);
#else
    unsigned bits = 0;
    for (int l = 0; l < DL_QW; ++l) bits |= (m[l] != 0) << l;
    return bits;
#endif
}
/* the codes of the DL_QW values src[0..] * inv */
template <int SGN>
static inline void dl_q8_vec(const float* src, float inv, uint8_t* out, const dl_q8_regs& R,
                             const dl_q8_enc& E) {
    dl_QF x;
    memcpy(&x, src, sizeof x);
    x = x * inv;
    dl_QI u;
    memcpy(&u, &x, sizeof u);
    const dl_QI neg = u >> 31;
    const dl_QI mag = u & 0x7fffffff;
    dl_QF ax;
    memcpy(&ax, &mag, sizeof ax);
#if DL_QW == 16
    const dl_QI key = (mag << 1) + neg;
    /* the binade: the exponent less 104, in 0..31 (31: |x| >= 2^24, inf or NaN: the region
       of 1, whose y is 0.5 but for inf and NaN, which are searched) */
    dl_QI bin = mag >> 23;
    bin = ((bin < 104) ? 104 : bin) - 104;
    bin = (bin > 31) ? 31 : bin;
    const dl_QI tk = __builtin_shuffle(R.tk0, R.tk1, bin);
    const dl_QI r0 = __builtin_shuffle(R.r00, R.r01, bin);
    const dl_QI r = r0 + ((key >= tk) ? 1 : 0);
    const dl_QF a = __builtin_shuffle(R.a, r), b = __builtin_shuffle(R.b, r);
    const dl_QI base = __builtin_shuffle(R.base, r), top = __builtin_shuffle(R.nmax, r);
#else
    /* the region r of |x| by comparisons: 8 less the boundaries not reached (for x < 0, a
       boundary that is an exact midpoint is reached only past it: up; the value 1 never:
       u < 0); then the tables of the decades d = r - 1 (the region of 0: set apart) */
    const dl_QI up = mag + neg, z = {};
    dl_QI r = z;
#if defined(__AVX2__)
    /* reached: x > kpos - 1, one vpcmpgtd each against a vector in memory (GCC rewrites a
       comparison with a known constant as a minimum and an equality: three instructions) */
    typedef int dl_V8S __attribute__((vector_size(32)));
    for (int j = 0; j < 7; ++j)
        r -= (dl_QI)__builtin_ia32_pcmpgtd256((dl_V8S)(E.dneg[j] ? up : mag), (dl_V8S)R.kp[j]);
    r -= (dl_QI)__builtin_ia32_pcmpgtd256((dl_V8S)u, (dl_V8S)R.kp[7]);
#else
    r += 8;
    for (int j = 0; j < 7; ++j) r += (dl_QI)(E.kpos[j] > (E.dneg[j] ? up : mag));
    r += (dl_QI)(E.kpos[7] > u);
#endif
    const dl_QI d = (r > z) ? r - 1 : z;
    const dl_QF a = __builtin_shuffle(R.a0, d), b = __builtin_shuffle(R.b0, d);
    const dl_QI base = __builtin_shuffle(R.base0, d), top = __builtin_shuffle(R.nmax0, d);
#endif
    const dl_QF y = ax * a - b;  /* >= 0 in every region (Int8Blockwise.encoder) */
    const dl_QI k0 = __builtin_convertvector(y, dl_QI);
    /* near a threshold, or NaN (no comparison holds): search */
#if DL_QW == 16 && defined(__AVX512DQ__)
    /* e: y less the nearest integer (vreduceps) */
    const dl_QF e = __builtin_ia32_reduceps512_mask(y, 8, y, (unsigned short)-1);
    dl_QI ae;
    memcpy(&ae, &e, sizeof ae);
    ae &= 0x7fffffff;
    dl_QF fe;
    memcpy(&fe, &ae, sizeof fe);
    dl_QI near = ~(dl_QI)(fe >= DL_Q8_NEAR);
#else
    const dl_QF f = y - __builtin_convertvector(k0, dl_QF);
    dl_QI near = ~(dl_QI)((f >= DL_Q8_NEAR) & (f <= 1.0f - DL_Q8_NEAR)) & (dl_QI)(r > z);
#endif
    /* a region reaches past its decade's last value, halfway to the next decade's first */
    dl_QI c = base + ((k0 < top) ? k0 : top);
#if DL_QW != 16
    c = (r == z) ? E.zero : c;
#endif
    if (SGN) {
        dl_QI flip = 254 - c;
#if DL_QW == 16
        flip = (flip < 0) ? 0 : flip;  /* the value 1 has no negative: the lowest code */
#endif
        c = neg ? flip : c;
    } else {  /* every threshold is > 0: a negative x (or NaN) codes as 0 */
        c = c & ~neg;
        near = near & ~neg;
    }
    dl_q8_bytes(out, c);
    for (unsigned bits = dl_q8_mask(near); __builtin_expect(bits != 0, 0); bits &= bits - 1) {
        const int l = __builtin_ctz(bits);
        out[l] = dl_q8_code(src[l] * inv, E);
    }
}
/* one block: its scale (the absolute maximum, at least 1e-12) and each value's code */
template <int SGN>
static inline void dl_q8_block_t(const float* buf, int64_t n, uint8_t* codes, float* scale,
                                 VF mx, const dl_q8_enc& E) {
    float m = 0.0f;
    for (int k = 0; k < DL_LF; ++k) m = (mx[k] > m) ? mx[k] : m;
    const float sc = (m > 1e-12f) ? m : 1e-12f;
    const float inv = 1.0f / sc;
    *scale = sc;
    const dl_q8_regs R = dl_q8_load(E);
    int64_t k = 0;
    for (; k + DL_QW <= n; k += DL_QW) dl_q8_vec<SGN>(buf + k, inv, codes + k, R, E);
    for (; k < n; ++k) codes[k] = dl_q8_code(buf[k] * inv, E);
}
static inline void dl_q8_block(const float* buf, int64_t n, uint8_t* codes, float* scale,
                               VF mx, const dl_q8_enc& E) {
    if (E.sgn)
        dl_q8_block_t<1>(buf, n, codes, scale, mx, E);
    else
        dl_q8_block_t<0>(buf, n, codes, scale, mx, E);
}
template <class T> static inline T dl_bf_ld(const uint16_t* p);
template <> inline float dl_bf_ld<float>(const uint16_t* p) {
    uint32_t u = (uint32_t)*p << 16; float f; memcpy(&f, &u, 4); return f;
}
template <> inline VF dl_bf_ld<VF>(const uint16_t* p) {
    dl_VS16 h; memcpy(&h, p, sizeof h);
#if DL_VBYTES == 64  /* one vpmovzxwd (the generic conversion splits it in halves) */
    typedef short dl_VH16 __attribute__((vector_size(32)));
    typedef int dl_VI16z __attribute__((vector_size(64)));
    dl_VU32 u = (dl_VU32)__builtin_ia32_pmovzxwd512_mask((dl_VH16)h, (dl_VI16z){},
                                                          (unsigned short)-1) << 16;
#elif DL_VBYTES == 32
    typedef short dl_VH8 __attribute__((vector_size(16)));
    typedef int dl_VI8 __attribute__((vector_size(32)));
    dl_VU32 u = (dl_VU32)__builtin_ia32_pmovzxwd256((dl_VH8)h) << 16;
#else
    dl_VU32 u = __builtin_convertvector(h, dl_VU32) << 16;
#endif
    VF f; memcpy(&f, &u, sizeof f); return f;
}
/* lowbias32 (C. Wellons), the eager backend's _hash32 */
template <class U> static inline U dl_hash(U x) {
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    return x;
}
/* stochastic rounding to bfloat16: add 16 random bits below the kept ones, truncate */
static inline void dl_sr_st(uint16_t* p, float v, uint32_t salt, int64_t j) {
    uint32_t u; memcpy(&u, &v, 4);
    const uint32_t r = dl_hash<uint32_t>((uint32_t)j ^ salt) & 0xffffu;
    *p = (uint16_t)((u + r) >> 16);
}
static const uint32_t dl_iota[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static inline void dl_sr_st(uint16_t* p, VF v, uint32_t salt, int64_t j) {
    dl_VU32 lane, u;
    memcpy(&lane, dl_iota, sizeof lane); memcpy(&u, &v, sizeof u);
    const dl_VU32 r = dl_hash<dl_VU32>((lane + (uint32_t)j) ^ salt) & 0xffffu;
#if DL_VBYTES == 32  /* the high halves fit 16 bits: packusdw saturates nothing */
    typedef int dl_VI8 __attribute__((vector_size(32)));
    typedef long long dl_VQ4 __attribute__((vector_size(32)));
    const dl_VI8 hi = (dl_VI8)((u + r) >> 16);
    const dl_VQ4 packed = (dl_VQ4)__builtin_ia32_packusdw256(hi, hi);
    const dl_VQ4 ordered = __builtin_shuffle(packed, (dl_VQ4){0, 2, 1, 3});
    memcpy(p, &ordered, sizeof(dl_VS16));
#else
    dl_VS16 h = __builtin_convertvector((u + r) >> 16, dl_VS16);
    memcpy(p, &h, sizeof h);
#endif
}
"""


@functools.lru_cache(maxsize=1)
def c_prelude() -> str:
    """The formats' C helpers, the int8 maps and their encoders' constants."""
    parts = [f"#define DL_Q8_NEAR {NEAR!r}f", _C_COMMON]
    for signed, tag in ((True, "s"), (False, "u")):
        q = dynamic_map(signed).numpy()
        parts.append(f"static const float dl_q8_map_{tag}[256] = {{{_c_floats(q)}}};")
        planes = q.view(np.uint8).reshape(256, 4).T  # little-endian: plane p = byte p
        parts.append(
            f"alignas(64) static const uint8_t dl_q8_planes_{tag}[1024] = "
            f"{{{', '.join(str(int(v)) for v in planes.reshape(-1))}}};"
        )
        e = Int8Blockwise.encoder(signed)

        def ints(key: str, e: dict = e) -> str:
            return "{" + ", ".join(str(int(v)) for v in e[key]) + "}"

        def floats(key: str, e: dict = e) -> str:
            return "{" + _c_floats(e[key]) + "}"

        fields = [ints("tk"), ints("r0"), ints("rbase"), ints("rnmax"), floats("ra"), floats("rb")]
        fields += [ints("kpos"), ints("dneg"), ints("base"), ints("nmax"), floats("a"), floats("b")]
        fields.append(
            "{" + ", ".join(f"{{{', '.join([str(int(k) - 1)] * 8)}}}" for k in e["kpos"]) + "}"
        )
        fields += [str(e["zero"]), str(int(signed)), "{" + _c_floats(e["t"]) + "}"]
        parts.append(f"static const dl_q8_enc dl_q8_enc_{tag} = {{{', '.join(fields)}}};")
    return "\n".join(parts)


def c_code(
    fmt: StateFormat, key: str, signed: bool, salt: tuple[int, int] | None
) -> dict[str, str]:
    """The C of one stored entry ``key``: ``decl`` (after the arrays' pointers ``a_<name>``),
    ``load`` and ``store`` (in the loop body, value ``s_<key>``), ``open`` and ``close``
    (around each block of a blockwise format; ``jb_``, ``je_``: the block's bounds)."""
    if isinstance(fmt, Int8Blockwise):
        tag = "s" if signed else "u"
        b = fmt.block_size
        return {
            "decl": "",
            "open": (
                f"const float sc_{key} = a_{key}_scale[jb_ / {b}]; float buf_{key}[{b}]; "
                f"VF mx_{key} = {{}};\n#if DL_Q8_VBMI\n    float dq_{key}[{b}];\n"
                f"    dl_q8_dec(a_{key} + jb_, je_ - jb_, dq_{key}, dl_q8_planes_{tag}, "
                f"dl_q8_map_{tag}, sc_{key});\n#endif"
            ),
            "load": (
                f"#if DL_Q8_VBMI\nT s_{key} = dl_ld<T>(dq_{key} + (j - jb_));\n#else\n"
                f"T s_{key} = dl_q8_ld<T>(a_{key} + j, dl_q8_map_{tag}) * sc_{key};\n#endif"
            ),
            "store": f"dl_q8_put(buf_{key} + (j - jb_), s_{key}, mx_{key});",
            "close": (
                f"dl_q8_block(buf_{key}, je_ - jb_, a_{key} + jb_, a_{key}_scale + jb_ / {b}, "
                f"mx_{key}, dl_q8_enc_{tag});"
            ),
        }
    if isinstance(fmt, BF16Stochastic):
        assert salt is not None  # the coefficients of the salt's high and low 16 bits
        hi, lo = salt
        return {
            "decl": f"const uint32_t u_{key} = ((uint32_t)C[{hi}] << 16) | (uint32_t)C[{lo}];",
            "open": "",
            "load": f"T s_{key} = dl_bf_ld<T>(a_{key} + j);",
            "store": f"dl_sr_st(a_{key} + j, s_{key}, u_{key}, j);",
            "close": "",
        }
    raise ValueError(f"no C for the state format {fmt!r}")


def c_type(dtype: torch.dtype) -> str:
    """The C type of a stored entry of ``dtype``."""
    return {torch.uint8: "uint8_t", torch.float32: "float", torch.bfloat16: "uint16_t"}[dtype]
