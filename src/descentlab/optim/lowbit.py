r"""Low-memory optimizer state: how a rule's state entries are *stored*, chosen per optimizer
(``state_dtype=``) and applied where the form's emitters load and store state
(:mod:`descentlab.optim.form`), so every rule written in the form gets it on both backends.

Two formats, each decoded to float32 when a step loads an entry and encoded when it stores
it; within a step every later read sees the float32 value (as bitsandbytes' and torchao's 8-bit
optimizers compute):

- :class:`Int8Blockwise` (``state_dtype="int8"``): Dettmers et al., "8-bit Optimizers via
  Block-wise Quantization" (ICLR 2022). Each block of ``block_size`` consecutive elements (256,
  as torchao; or 2048, bitsandbytes' optimizers) keeps its absolute maximum ``a`` (float32, the
  entry ``<key>_scale``, at least 1e-12 as torchao clips it) and one byte per element: the index
  of the value of the *dynamic quantization map* nearest to ``x * (1 / a)`` (ties to the
  larger; torchao divides by ``a``, which rounds differently within an ulp of a decision
  threshold only: a division per value would be the fused kernel's bottleneck).
  The map is the paper's dynamic tree type as bitsandbytes builds it
  (:func:`dynamic_map`): signed for entries that may be negative (a first moment), unsigned --
  one more fraction bit -- for entries a rule declares non-negative
  (:attr:`~descentlab.optim.form.FormRule.nonnegative`: a second moment). Decoding is
  ``map[code] * a``. 1.0156 bytes per element at block 256 (1.002 at 2048) against float32's 4.
  Tensors of fewer than ``min_size`` (4096) elements keep float32 state, as bitsandbytes and
  torchao do.
- :class:`BF16Stochastic` (``state_dtype="bfloat16"``): the upper 16 bits of float32, rounded
  *stochastically* (up with probability equal to the discarded fraction, so the rounding is
  unbiased and small updates to a large moment are not all lost). The random bits are a hash
  of the element's index, the step and the entry (:func:`sr_salt`), identical on both
  backends: a run is reproducible and the fused and eager backends agree bit for bit.

Encoding a value that is NaN stores the code of zero (int8); the step's own output is computed
from the float32 value, so a NaN still reaches the parameters.

The fused kernel quantizes a block in the pass that updates it: the block's new values are kept
in a 1 KiB buffer, their maximum taken, and each is encoded in vectors without a table: its
region (zero, one of the seven decades, one) by eight exact comparisons of its bits, its place
in the decade by one multiply-add, and -- for the few values whose place lies within 2^-12 of a
decision threshold -- a binary search over the thresholds (:meth:`Int8Blockwise.encoder`). This
gives exactly ``bucketize`` over the thresholds, the eager backend's encoding, on every float32
value (checked over all 2^32 while it was written; tests/test_lowbit.py checks the kernel next
to every threshold). Speed on one core (``benchmarks/step.py --state-dtypes``): the bfloat16
step moves fewer bytes and is faster than the float32 one; the int8 step is compute-bound (a
table read per value to decode, the arithmetic above to encode) and slower than the float32
one, for a quarter of the memory.
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
]

#: the smallest block scale (torchao's clip): a block of zeros encodes as zeros
MIN_SCALE = 1e-12


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
        bounds = torch.linspace(0.1, 1, items + 1)
        means = (bounds[:-1] + bounds[1:]) / 2.0
        data += (10 ** (-6 + i) * means).tolist()
        if signed:
            data += (-(10 ** (-6 + i)) * means).tolist()
    data += [0.0, 1.0]
    assert len(data) == 256
    return torch.tensor(sorted(data), dtype=torch.float32)


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
        zero = int(torch.searchsorted(dynamic_map(signed), torch.tensor(0.0)))
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
        zero = int(torch.searchsorted(dynamic_map(signed), torch.tensor(0.0)))
        c = torch.where(torch.isnan(y), zero, c)
        codes.copy_(c.view(codes.shape))
        scale.copy_(sc)

    @staticmethod
    @functools.lru_cache(maxsize=4)
    def encoder(signed: bool) -> dict[str, np.ndarray | int]:
        """The constants of the kernels' arithmetic encoder for one map (see :data:`_C_COMMON`):
        the code of a float32 ``x`` is ``#{thresholds <= x}`` (:func:`thresholds`), computed
        from the map's structure -- zero, seven decades ``d`` of ``n_d`` linearly spaced
        values ``10^(d-6) * (0.1 + 0.9 (k + 1/2) / n_d)``, then 1 -- instead of searched:

        - ``kpos[j]``: the bits of the threshold entering region ``j`` (decade ``j``; ``j = 7``:
          the value 1), so that ``|x|``'s bits ``>= kpos[j]`` counts it for ``x >= 0``;
          ``dneg[j]``: 1 where that threshold is an exact midpoint (a tie), which a negative
          ``x`` passes only strictly beyond (``x < t <=> |x| > |t|``; no 1 on the negative
          side; an unsigned map codes every negative ``x`` as 0). The regions of ``x``
          are counted exactly, ties included.
        - within decade ``d``: ``y = |x| * a[d] - b[d]`` puts the decade's inner thresholds
          at (within float32 rounding of) the integers ``1 .. n_d - 1``, so the code is
          ``base[d] + min(trunc(y), nmax[d])``; where ``y`` is within :data:`NEAR` of an
          integer, the rounding could decide, and the kernel counts the thresholds instead
          (a binary search, a few values in ten thousand).

        Checked here: the thresholds have this structure (a decade's inner thresholds lie
        within NEAR / 4 of their integers). The kernels' result equals the search on every
        float32 (tests/test_lowbit.py checks it next to every threshold)."""
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
            inner = t[base[d] : base[d] + n - 1].astype(np.float32)
            y = inner * a[d] - b[d]  # float32, as the kernel computes it
            if np.abs(y - np.arange(1, n)).max(initial=0.0) > NEAR / 4:
                raise AssertionError("the int8 map's thresholds are not where its encoder looks")
        return {
            "kpos": kpos,
            "dneg": dneg,
            "a": a,
            "b": b,
            "nmax": nmax,
            "base": base,
            "zero": zero,
            "t": t,
        }


#: how close to an integer the encoder's decade position ``y`` must be to count the thresholds
#: instead (float32 rounding moves a threshold's ``y`` by about 1e-5 at most)
NEAR = 2.0**-12


def _hash32(x: Tensor) -> Tensor:
    """Chris Wellons' ``lowbias32`` on int64 tensors holding uint32 values (the kernels'
    ``dl_hash``)."""
    m = 0xFFFFFFFF
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & m
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & m
    return x ^ (x >> 16)


def hash32(x: int) -> int:
    """:func:`_hash32` of one number (Python integers: a coefficient computed every step)."""
    m = 0xFFFFFFFF
    x &= m
    x ^= x >> 16
    x = (x * 0x7FEB352D) & m
    x ^= x >> 15
    x = (x * 0x846CA68B) & m
    return x ^ (x >> 16)


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
# The formats' C, for the fused kernels (descentlab.optim.fused.FusedBuilder.source): each
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
    mx = (a > mx) ? a : mx;
}
static inline void dl_q8_put(float* buf, float v, VF& mx) {
    *buf = v;
    const float a = fabsf(v);
    mx[0] = (a > mx[0]) ? a : mx[0];
}
/* The int8 encoder (Int8Blockwise.encoder): the code of x is the number of thresholds <= x,
   computed from the map's structure instead of searched -- the region of |x| (zero, decade
   0..6, one) by eight exact comparisons of its bits (per sign: ties go up), then its place in
   the decade by one multiply-add, all in vectors; a lane whose place lies within DL_Q8_NEAR of
   a threshold (a few in ten thousand) counts the thresholds by binary search instead. */
struct dl_q8_enc {
    int32_t kpos[16], dneg[16], nmax[16], base[16];
    float a[16], b[16];
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
/* one block: its scale (the absolute maximum, at least 1e-12) and each value's code */
static inline void dl_q8_block(const float* buf, int64_t n, uint8_t* codes, float* scale,
                               VF mx, const dl_q8_enc& E) {
    float m = 0.0f;
    for (int k = 0; k < DL_LF; ++k) m = (mx[k] > m) ? mx[k] : m;
    const float sc = (m > 1e-12f) ? m : 1e-12f;
    const float inv = 1.0f / sc;
    *scale = sc;
    dl_QI nmax, base;
    dl_QF av, bv;
    memcpy(&nmax, E.nmax, sizeof nmax);
    memcpy(&base, E.base, sizeof base);
    memcpy(&av, E.a, sizeof av);
    memcpy(&bv, E.b, sizeof bv);
    const dl_QI zero = {}, one = zero + 1;
    int64_t k = 0;
    for (; k + DL_QW <= n; k += DL_QW) {
        dl_QF x;
        memcpy(&x, buf + k, sizeof x);
        x = x * inv;
        dl_QI u;
        memcpy(&u, &x, sizeof u);
        const dl_QI neg = u >> 31, mag = u & 0x7fffffff, up = mag + neg;
        /* the region r of |x|: 8 less the boundaries not reached (for x < 0, a boundary that
           is an exact midpoint is reached only past it: up; and the value 1 never: u < 0) */
        dl_QI r = zero + 8;
        for (int j = 0; j < 7; ++j) r += (dl_QI)(E.kpos[j] > (E.dneg[j] ? up : mag));
        r += (dl_QI)(E.kpos[7] > u);
        const dl_QI d = (r > zero) ? r - one : zero;
        dl_QF ax;
        memcpy(&ax, &mag, sizeof ax);
        const dl_QF y = ax * __builtin_shuffle(av, d) - __builtin_shuffle(bv, d);
        const dl_QI k0 = __builtin_convertvector(y, dl_QI);
        const dl_QF f = y - __builtin_convertvector(k0, dl_QF);
        const dl_QI top = __builtin_shuffle(nmax, d);
        dl_QI c = __builtin_shuffle(base, d) + ((k0 < top) ? k0 : top);
        c = (r == zero) ? zero + E.zero : c;
        /* near a threshold, or NaN (no comparison holds): search */
        dl_QI near = ~(dl_QI)((f >= DL_Q8_NEAR) & (f <= 1.0f - DL_Q8_NEAR)) & (dl_QI)(r > zero);
        if (E.sgn) {
            c = neg ? (zero + 254) - c : c;
        } else {  /* every threshold is > 0: a negative x (or NaN) codes as 0 */
            c = c & ~neg;
            near = near & ~neg;
        }
        if (dl_q8_any(near)) {
            for (int l = 0; l < DL_QW; ++l)
                if (near[l]) c[l] = dl_q8_code(x[l], E);
        }
        dl_q8_bytes(codes + k, c);
    }
    for (; k < n; ++k) codes[k] = dl_q8_code(buf[k] * inv, E);
}
template <class T> static inline T dl_bf_ld(const uint16_t* p);
template <> inline float dl_bf_ld<float>(const uint16_t* p) {
    uint32_t u = (uint32_t)*p << 16; float f; memcpy(&f, &u, 4); return f;
}
template <> inline VF dl_bf_ld<VF>(const uint16_t* p) {
    dl_VS16 h; memcpy(&h, p, sizeof h);
    dl_VU32 u = __builtin_convertvector(h, dl_VU32) << 16;
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
    dl_VS16 h = __builtin_convertvector((u + r) >> 16, dl_VS16);
    memcpy(p, &h, sizeof h);
}
"""


@functools.lru_cache(maxsize=1)
def c_prelude() -> str:
    """The formats' C helpers, the int8 maps and their encoders' constants."""
    parts = [f"#define DL_Q8_NEAR {NEAR!r}f", _C_COMMON]
    for signed, tag in ((True, "s"), (False, "u")):
        q = dynamic_map(signed).numpy()
        parts.append(f"static const float dl_q8_map_{tag}[256] = {{{_c_floats(q)}}};")
        e = Int8Blockwise.encoder(signed)

        def ints(key: str, e: dict = e) -> str:
            return "{" + ", ".join(str(int(v)) for v in np.tile(e[key], 2)) + "}"

        def floats(key: str, e: dict = e) -> str:
            return "{" + _c_floats(np.tile(e[key], 2)) + "}"

        fields = [ints("kpos"), ints("dneg"), ints("nmax"), ints("base"), floats("a")]
        fields += [floats("b"), str(e["zero"]), str(int(signed)), "{" + _c_floats(e["t"]) + "}"]
        parts.append(f"static const dl_q8_enc dl_q8_enc_{tag} = {{{', '.join(fields)}}};")
    return "\n".join(parts)


def c_code(fmt: StateFormat, key: str, signed: bool, salt_index: int | None) -> dict[str, str]:
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
                f"VF mx_{key} = {{}};"
            ),
            "load": f"T s_{key} = dl_q8_ld<T>(a_{key} + j, dl_q8_map_{tag}) * sc_{key};",
            "store": f"dl_q8_put(buf_{key} + (j - jb_), s_{key}, mx_{key});",
            "close": (
                f"dl_q8_block(buf_{key}, je_ - jb_, a_{key} + jb_, a_{key}_scale + jb_ / {b}, "
                f"mx_{key}, dl_q8_enc_{tag});"
            ),
        }
    if isinstance(fmt, BF16Stochastic):
        assert salt_index is not None
        return {
            "decl": f"const uint32_t u_{key} = (uint32_t)C[{salt_index}];",
            "open": "",
            "load": f"T s_{key} = dl_bf_ld<T>(a_{key} + j);",
            "store": f"dl_sr_st(a_{key} + j, s_{key}, u_{key}, j);",
            "close": "",
        }
    raise ValueError(f"no C for the state format {fmt!r}")


def c_type(dtype: torch.dtype) -> str:
    """The C type of a stored entry of ``dtype``."""
    return {torch.uint8: "uint8_t", torch.float32: "float", torch.bfloat16: "uint16_t"}[dtype]
