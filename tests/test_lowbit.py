"""Low-bit optimizer state (descentlab.optim.lowbit): the 8-bit blockwise format against a
float64 loop written from Dettmers et al. 2022 (the dynamic tree map decoded bit pattern by bit
pattern, nearest rounding per block) and against torchao's 8-bit optimizer code; bfloat16
stochastic rounding against its definition; fused and eager steps bit for bit; state dicts
that save, load and resume exactly."""

from __future__ import annotations

import io
import math

import pytest
import torch

from descentlab import optim
from descentlab.optim import c_emitter as CE
from descentlab.optim import fused as F
from descentlab.optim import lowbit as L

BITWISE = F.sqrt_reproduces_torch()
FORMATS = {
    "int8": "int8",
    "int8-2048": L.Int8Blockwise(block_size=2048),
    "bf16": "bfloat16",
}


# ---------------------------------------------------------------- the paper, in float64
def paper_map(signed: bool) -> list[float]:
    """The dynamic tree type (Dettmers 2016; 2022 Sec. 2): after the sign bit (unsigned: none,
    it is one more fraction bit), the number of leading zeros E is the exponent 10^-E, the
    first one bit is the indicator, the F bits after it a linear fraction: the midpoint of the
    j-th of 2^F bins of [0.1, 1]. The all-zero pattern is 0; the pattern with no indicator bit
    left (signed: negative zero) is 1, as in bitsandbytes."""
    out = []
    for code in range(256):
        sign, rest, width = (-1 if code & 0x80 else 1, code & 0x7F, 7) if signed else (1, code, 8)
        if rest == 0:
            out.append(0.0 if sign > 0 else 1.0)
            continue
        e = width - rest.bit_length()  # leading zeros
        f = width - e - 1  # fraction bits after the indicator
        if e > 6:  # unsigned 0b00000001: no fraction left
            out.append(1.0)
            continue
        j = rest & ((1 << f) - 1)
        out.append(sign * 10.0**-e * (0.1 + 0.9 * (j + 0.5) / 2**f))
    return sorted(out)


def paper_quantize(x: torch.Tensor, block: int, signed: bool):
    """Blockwise: absmax per block (at least 1e-12), the nearest map value to x / absmax
    (ties to the larger), in float64. Returns codes, absmax and the normalized values."""
    q = torch.tensor(paper_map(signed), dtype=torch.float64)
    x = x.double().reshape(-1)
    n = x.numel()
    pad = -n % block
    blocks = torch.nn.functional.pad(x, (0, pad)).view(-1, block)
    amax = blocks.abs().amax(1).clamp_min(1e-12)
    y = (blocks / amax[:, None]).reshape(-1)[:n]
    dist = (y[:, None] - q[None, :]).abs()
    best = dist.min(1, keepdim=True).values
    codes = torch.where(dist == best, torch.arange(256), -1).amax(1)  # ties: the larger
    return codes, amax, y


def paper_dequantize(codes: torch.Tensor, amax: torch.Tensor, block: int, signed: bool):
    q = torch.tensor(paper_map(signed), dtype=torch.float64)
    return q[codes.long().reshape(-1)] * amax.double().repeat_interleave(block)[: codes.numel()]


def _near_midpoint(y: torch.Tensor, signed: bool, rel: float = 2e-6) -> torch.Tensor:
    q = torch.tensor(paper_map(signed), dtype=torch.float64)
    mid = (q[1:] + q[:-1]) / 2
    return ((y[:, None] - mid[None, :]).abs() <= rel * mid.abs().clamp_min(1e-7)).any(1)


def _moments(n: int, seed: int, signed: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g) * torch.exp(3 * torch.randn(n, generator=g))
    return x if signed else x.square()


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_map_is_the_papers_dynamic_tree(signed):
    ours = L.dynamic_map(signed).double()
    paper = torch.tensor(paper_map(signed), dtype=torch.float64)
    torch.testing.assert_close(ours, paper, rtol=1e-6, atol=0)  # float32 rounding only
    assert ours.unique().numel() == 256


@pytest.mark.parametrize("block", [256, 2048])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_quantization_matches_the_paper_loop(signed, block):
    x = _moments(3 * block + 77, 1, signed)  # a partial last block
    codes = torch.empty(x.shape, dtype=torch.uint8)
    scale = torch.empty(-(-x.numel() // block))
    fmt = L.Int8Blockwise(block_size=block)
    fmt.encode(x, [codes, scale], signed, 0)
    want, amax, y = paper_quantize(x, block, signed)
    torch.testing.assert_close(scale.double(), amax, rtol=0, atol=0)
    differ = codes.long() != want
    # only where x / absmax lies within float32 rounding of a midpoint of two map values
    assert differ.sum() <= 3 and bool(_near_midpoint(y[differ], signed).all())
    deq = fmt.decode([codes, scale], signed).double()
    torch.testing.assert_close(
        deq, paper_dequantize(codes, scale, block, signed), rtol=2e-7, atol=0
    )
    # nearest rounding: the error is at most half the map's local gap times absmax
    err = (deq - x.double()).abs() / scale.double().repeat_interleave(block)[: x.numel()]
    assert float(err.max()) <= 0.5 * float(L.dynamic_map(signed).diff().max()) + 1e-7


_ENCODE_PROBE = """// tests/test_lowbit.py: the fused kernels' int8 encoder on given values
{prelude}
extern "C" void dl_q8_probe(const float* x, uint8_t* out, int64_t n, int sgn) {{
    VF one = {{}};
    one += 1.0f;  // every block's absolute maximum: 1, so the encoder codes x itself
    for (int64_t j = 0; j < n; j += 256) {{
        float sc;
        dl_q8_block(x + j, (n - j < 256) ? n - j : 256, out + j, &sc, one,
                    sgn ? dl_q8_enc_s : dl_q8_enc_u);
    }}
}}
"""


def _kernel_codes(x: torch.Tensor, signed: bool) -> torch.Tensor:
    """The codes the fused kernels' encoder (lowbit's C, compiled as the kernels are) gives
    the float32 values ``x``."""
    import ctypes

    from descentlab import _native

    try:
        _, lib = _native.load_library(
            _ENCODE_PROBE.format(prelude=CE._PRELUDE + L.c_prelude()), what="encoder probe"
        )
    except _native.KernelUnavailable as exc:
        pytest.skip(str(exc))
    x = x.contiguous()
    out = torch.empty(x.shape, dtype=torch.uint8)
    lib.dl_q8_probe(
        ctypes.c_void_p(x.data_ptr()),
        ctypes.c_void_p(out.data_ptr()),
        ctypes.c_int64(x.numel()),
        ctypes.c_int(int(signed)),
    )
    return out


def _ulps_around(v: torch.Tensor, k: int) -> torch.Tensor:
    """``v`` and the ``k`` float32 values on each side of each of its values."""
    out, up, down = [v], v, v
    for _ in range(k):
        up = torch.nextafter(up, torch.tensor(math.inf))
        down = torch.nextafter(down, torch.tensor(-math.inf))
        out += [up, down]
    return torch.cat(out)


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_the_kernels_encoder_gives_bucketize_exactly(signed):
    """The kernels' arithmetic encoder (region by comparisons, place in the decade by a
    multiply-add, a search near a threshold) against torch.bucketize over the thresholds (the
    eager encoder): on the 24 float32 values on each side of every threshold (where rounding
    decides, ties included), of every region boundary's mirror, 1, 0 and the tiny values, on
    200,000 values spread over 30 decades of both signs, and on inf and NaN. (Run over all
    2^32 float32 values while it was written: no difference.)"""
    t = L.thresholds(signed)
    g = torch.Generator().manual_seed(3)
    decades = torch.randint(0, 30, (200_000,), generator=g)
    spread = torch.rand(200_000, generator=g) * 10.0**-decades
    special = torch.tensor([0.0, 1.0, 1.5, 1e-30, 1e-45, math.inf, 3e38])
    xs = torch.cat([_ulps_around(torch.cat([t, special]), 24), spread])
    xs = torch.cat([xs, -xs, torch.tensor([math.nan, -math.nan])])
    zero = int(torch.searchsorted(L.dynamic_map(signed), torch.tensor(0.0)))
    want = torch.where(torch.isnan(xs), zero, torch.bucketize(xs, t, right=True))
    got = _kernel_codes(xs, signed).long()
    bad = (got != want).nonzero().flatten()
    assert bad.numel() == 0, [(float(xs[i]), int(got[i]), int(want[i])) for i in bad[:5]]


_DECODE_PROBE = """// tests/test_lowbit.py: the fused kernels' int8 decoder on given codes
{prelude}
extern "C" int dl_q8_decode_probe(const uint8_t* codes, float* out, int64_t n, int sgn,
                                  float sc) {{
    const float* map = sgn ? dl_q8_map_s : dl_q8_map_u;
#if DL_Q8_VBMI
    dl_q8_dec(codes, n, out, sgn ? dl_q8_planes_s : dl_q8_planes_u, map, sc);
    return 1;
#else
    int64_t j = 0;
    for (; j + DL_LF <= n; j += DL_LF) {{
        VF v = dl_q8_ld<VF>(codes + j, map) * sc;
        memcpy(out + j, &v, sizeof v);
    }}
    for (; j < n; ++j) out[j] = dl_q8_ld<float>(codes + j, map) * sc;
    return 0;
#endif
}}
"""


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_the_kernels_decoder_gives_the_map_exactly(signed):
    """The kernels' int8 decoder (with AVX512-VBMI: a block's codes by byte permutes of the
    map's bytes, reordered through the interleaving; else the map read per value) gives
    ``map[code] * scale`` bit for bit: every code at every position of the 64-code groups,
    a partial group at the end, three scales."""
    import ctypes

    from descentlab import _native

    try:
        _, lib = _native.load_library(
            _DECODE_PROBE.format(prelude=CE._PRELUDE + L.c_prelude()), what="decoder probe"
        )
    except _native.KernelUnavailable as exc:
        pytest.skip(str(exc))
    g = torch.Generator().manual_seed(4)
    codes = torch.cat([torch.arange(256), torch.randperm(256, generator=g)] * 3)
    codes = torch.cat([codes, torch.randint(0, 256, (37,), generator=g)]).to(torch.uint8)
    q = L.dynamic_map(signed)
    for sc in (0.37, 1e-12, 3.0e5):
        out = torch.empty(codes.shape)
        lib.dl_q8_decode_probe(
            ctypes.c_void_p(codes.data_ptr()),
            ctypes.c_void_p(out.data_ptr()),
            ctypes.c_int64(codes.numel()),
            ctypes.c_int(int(signed)),
            ctypes.c_float(sc),
        )
        want = q[codes.long()] * torch.tensor(sc, dtype=torch.float32)
        bad = (out.view(torch.int32) != want.view(torch.int32)).nonzero().flatten()
        assert bad.numel() == 0, [(int(codes[i]), float(out[i]), float(want[i])) for i in bad[:5]]


def test_int8_lion_fused_equals_eager_bit_for_bit():
    """A rule without a square root (Lion: a signed int8 moment) is bit for bit the same on
    both backends on every CPU: the kernel's block scales and codes are the eager encoder's."""

    def run(fused):
        g = torch.Generator().manual_seed(8)
        ws = [torch.nn.Parameter(torch.randn(n, generator=g)) for n in (5000, 70_001)]
        rule = optim.chain(optim.scale_by_lion(), optim.scale_by_lr(0.1))
        opt = optim.Optimizer(ws, rule, state_dtype="int8", fused=fused)
        for _ in range(6):
            for w in ws:
                w.grad = torch.randn(w.shape, generator=g) * torch.randn(w.shape, generator=g).exp()
            opt.step()
        return [w.detach() for w in ws] + [v for w in ws for v in opt.state[w].values()]

    a, b = run(True), run(False)
    assert sum(v.dtype == torch.uint8 for v in a) == 2
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("make", [lambda: optim.trace(0.9), optim.scale_by_adagrad])
def test_a_rule_that_makes_its_own_state_is_refused(make):
    """torch's momentum buffer (the first gradient) and Adagrad's initial accumulator are made
    by the rules themselves: a low-bit format would never be applied (the state silently stayed
    float32 on the eager backend, and the fused one refused with a puzzling message)."""
    w = torch.nn.Parameter(torch.zeros(5000))
    rule = make()
    with pytest.raises(ValueError, match=rf"state_dtype='int8' cannot store {rule.name}'s state"):
        optim.Optimizer([w], optim.chain(rule, optim.scale_by_lr(0.1)), state_dtype="int8")
    with pytest.raises(ValueError, match=rf"state_dtype='bfloat16' cannot store {rule.name}'s"):
        rule.with_state("bfloat16")


def test_bytes_equal_torchaos_8bit_quantization():
    """torchao's 8-bit optimizer state (block 256, bitsandbytes' signed map for the first
    moment and unsigned for the second) holds the same bytes for the same values (but where
    a value lies within an ulp of a decision threshold)."""
    qu = pytest.importorskip("torchao.optim.quant_utils")
    from descentlab.optim.c_emitter import torch_fuses_multiply_add

    for signed in (True, False):
        qmap = L.dynamic_map(signed)
        # torchao builds the map with torch.linspace: the published map where torch runs its
        # vector kernels; its default kernels (ATEN_CPU_CAPABILITY=default) move bins by an ulp
        if torch_fuses_multiply_add():
            ao_map = torch.tensor(qu.create_dynamic_map(signed), dtype=torch.float32)
            assert torch.equal(ao_map, qmap)
        x = _moments(256 * 2000, 2, signed)
        y, scale = qu.scale_tensor(x, 256)
        codes_ao = qu.quantize_8bit_with_qmap(y, qmap)
        codes, sc = torch.empty(x.shape, dtype=torch.uint8), torch.empty(2000)
        L.Int8Blockwise().encode(x, [codes, sc], signed, 0)
        assert torch.equal(sc, scale)
        # torchao divides by the scale, descentlab multiplies by its reciprocal (the kernels'
        # divider is their bottleneck): a code may differ only within an ulp of a threshold
        differ = codes != codes_ao
        assert int(differ.sum()) <= 5
        assert bool(_near_midpoint(y[differ].double(), signed).all())
        same = ~differ
        torch.testing.assert_close(
            L.Int8Blockwise().decode([codes, sc], signed)[same],
            qu.dequant_with_qmap(codes_ao, qmap, scale)[same],
            rtol=0,
            atol=0,
        )


def test_bf16_stochastic_rounding_is_unbiased_and_one_of_the_neighbours():
    x = torch.tensor([1.0 + 3 * 2**-12, -2.5 - 2**-10, 1e-3 + 1e-7, 7.0]).repeat_interleave(1 << 16)
    out = torch.empty(x.shape, dtype=torch.bfloat16)
    L.BF16Stochastic().encode(x, [out], True, L.sr_salt(0, 7))
    bits = x.view(torch.int32).long() & 0xFFFFFFFF
    down, up = bits >> 16, (bits >> 16) + 1
    got = out.view(torch.int16).long() & 0xFFFF
    assert bool(((got == down) | (got == up)).all())
    for k in range(4):
        part = slice(k << 16, (k + 1) << 16)
        p = float(bits[part][0] & 0xFFFF) / 65536
        freq = float((got[part] == up[part]).double().mean())
        assert abs(freq - p) <= 5 * math.sqrt(max(p * (1 - p), 1e-9) / 65536) + 1e-9


# ---------------------------------------------------------------- steps
SIZES = (1, 17, 255, 257, 4099, 70_001)  # vector tails, partial blocks, several chunks


def _steps(state_dtype, fused, steps=12, lr=1e-2, start=None, opt_out=None):
    g = torch.Generator().manual_seed(5)
    ws = [torch.nn.Parameter(torch.randn(n, generator=g)) for n in SIZES]
    opt = optim.AdaBelief(ws, lr=lr, weight_decay=0.1, state_dtype=state_dtype, fused=fused)
    for _ in range(steps):
        for w in ws:
            w.grad = torch.randn(w.shape, generator=g) * 0.1
        opt.step()
    if opt_out is not None:
        opt_out.append(opt)
    return ws, opt


@pytest.mark.parametrize("fmt", list(FORMATS), ids=list(FORMATS))
def test_fused_equals_eager_bit_for_bit(fmt):
    (wa, oa), (wb, ob) = _steps(FORMATS[fmt], True), _steps(FORMATS[fmt], False)
    for a, b in zip(wa, wb, strict=True):
        sa, sb = oa.state[a], ob.state[b]
        assert sa.keys() == sb.keys()
        if BITWISE:
            assert torch.equal(a, b)
            for k in sa:
                assert torch.equal(sa[k], sb[k]), k
        else:
            torch.testing.assert_close(a, b, rtol=2e-5, atol=2e-5)


def test_a_step_is_the_paper_loop_on_the_stored_state():
    """One int8 AdaBelief step, checked in float64: the moments decoded from the stored codes
    and block maxima (the paper's dequantization), the paper's update, the new moments
    quantized again by the paper's loop (codes differ only within rounding of a midpoint)."""
    b1, b2, eps, lr = 0.9, 0.999, 1e-16, 1e-2
    ws, opt = _steps("int8", False, steps=5, lr=lr)
    w = ws[-1]
    st = opt.state[w]
    m0 = paper_dequantize(st["exp_avg"], st["exp_avg_scale"], 256, True)
    s0 = paper_dequantize(st["exp_avg_var"], st["exp_avg_var_scale"], 256, False)
    p0 = w.detach().double().clone()
    grad = torch.randn(w.shape, generator=torch.Generator().manual_seed(9))
    w.grad = grad
    for other in ws[:-1]:
        other.grad = None
    opt.step()
    t = 6
    g = grad.double()
    m = b1 * m0 + (1 - b1) * g
    s = b2 * s0 + (1 - b2) * (g - m) ** 2 + eps
    upd = (m / (1 - b1**t)) / ((s / (1 - b2**t)).sqrt() + eps)
    p = p0 * (1 - lr * 0.1) - lr * upd
    torch.testing.assert_close(w.detach().double(), p, rtol=1e-5, atol=1e-6)
    for key, val, signed in (("exp_avg", m, True), ("exp_avg_var", s, False)):
        want, amax, y = paper_quantize(val, 256, signed)
        torch.testing.assert_close(st[f"{key}_scale"].double(), amax, rtol=1e-5, atol=0)
        differ = st[key].long() != want
        assert float(differ.double().mean()) < 1e-3
        assert bool(_near_midpoint(y[differ], signed, rel=2e-5).all())


@pytest.mark.parametrize("name", ["adamw", "adabelief"])
def test_state_memory_is_under_a_third_of_float32(name):
    sizes = {}
    for sd in (None, "int8", "bfloat16"):
        w = torch.nn.Parameter(torch.zeros(1 << 20))
        w.grad = torch.ones_like(w)
        opt = optim.get(name)([w], state_dtype=sd)
        opt.step()
        st = opt.state[w]
        sizes[sd] = sum(v.numel() * v.element_size() for k, v in st.items() if k != "step")
    assert sizes["int8"] / sizes[None] <= 0.26  # 1 + 4/256 bytes per element of 4
    assert sizes["bfloat16"] / sizes[None] == 0.5


# ---------------------------------------------------------------- state dicts
@pytest.mark.parametrize("fmt", ["int8", "bf16"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "eager"])
def test_state_dict_saves_loads_and_resumes_exactly(fmt, fused):
    sd = FORMATS[fmt]
    whole, _ = _steps(sd, fused, steps=10)
    g = torch.Generator().manual_seed(5)
    ws = [torch.nn.Parameter(torch.randn(n, generator=g)) for n in SIZES]
    opt = optim.AdaBelief(ws, lr=1e-2, weight_decay=0.1, state_dtype=sd, fused=fused)

    def run(k):
        for _ in range(k):
            for w in ws:
                w.grad = torch.randn(w.shape, generator=g) * 0.1
            opt.step()

    run(5)
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "w": [w.detach().clone() for w in ws]}, buf)
    saved = {i: {k: v.clone() for k, v in opt.state[w].items()} for i, w in enumerate(ws)}
    buf.seek(0)
    blob = torch.load(buf)
    ws2 = [torch.nn.Parameter(t) for t in blob["w"]]
    opt = optim.AdaBelief(ws2, lr=1e-2, weight_decay=0.1, state_dtype=sd, fused=fused)
    opt.load_state_dict(blob["opt"])
    for i, w in enumerate(ws2):
        for k, v in saved[i].items():
            assert opt.state[w][k].dtype == v.dtype and torch.equal(opt.state[w][k], v), k
    ws[:] = ws2
    run(5)
    for a, b in zip(ws, whole, strict=True):
        assert torch.equal(a, b)


def test_float_state_loads_into_int8_and_int8_state_is_refused_elsewhere():
    w32, o32 = _steps(None, False, steps=3)
    w8 = [torch.nn.Parameter(w.detach().clone()) for w in w32]
    o8 = optim.AdaBelief(w8, state_dtype="int8")
    o8.load_state_dict(o32.state_dict())
    st = o8.state[w8[-1]]
    assert st["exp_avg"].dtype == torch.uint8
    m = o32.state[w32[-1]]["exp_avg"]
    dec = L.Int8Blockwise().decode([st["exp_avg"], st["exp_avg_scale"]], True)
    torch.testing.assert_close(dec, m, rtol=0.1, atol=float(m.abs().max()) * 0.02)
    fresh = [torch.nn.Parameter(w.detach().clone()) for w in w32]
    of = optim.AdaBelief(fresh)
    with pytest.raises(ValueError, match=r"int8 optimizer state.*state_dtype='int8'"):
        of.load_state_dict(o8.state_dict())
    assert not of.state  # nothing loaded
    with pytest.raises(ValueError, match=r"does not fit state_dtype='bfloat16'"):
        optim.AdaBelief(fresh, state_dtype="bfloat16").load_state_dict(o8.state_dict())


# ---------------------------------------------------------------- refusals
def test_bad_state_dtype_is_refused_by_name():
    w = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match=r"state_dtype must be .*got 'int4'"):
        optim.AdaBelief([w], state_dtype="int4")
    with pytest.raises(ValueError, match=r"block_size must be 256 or 2048.*got 512"):
        L.Int8Blockwise(block_size=512)
    rule = optim.chain(optim.scale_by_shampoo(), optim.scale_by_lr(0.1))
    with pytest.raises(ValueError, match=r"scale_by_shampoo is not"):
        optim.Optimizer([w], rule, state_dtype="int8")


def test_non_float32_parameters_are_refused_before_any_change():
    a = torch.nn.Parameter(torch.ones(4))
    b = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    opt = optim.AdaBelief([{"params": [a]}, {"params": [b]}], lr=0.1, state_dtype="int8")
    a.grad, b.grad = torch.ones(4), torch.ones(4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"needs float32 parameters, got torch.float64"):
        opt.step()
    assert torch.equal(a.detach(), torch.ones(4)) and not opt.state


def test_batched_hyperparameters_are_refused():
    """K runs stacked in one tensor would share blocks (and the rounding's random bits)."""
    w = torch.nn.Parameter(torch.ones(3, 300))
    opt = optim.AdaBelief([w], lr=torch.tensor([0.1, 0.2, 0.3]), state_dtype="int8")
    w.grad = torch.ones(3, 300)
    with pytest.raises(ValueError, match=r"batched hyperparameters \(here 'lr'"):
        opt.step()
    assert torch.equal(w.detach(), torch.ones(3, 300)) and not opt.state


def test_adamw_8bit_agrees_with_torchaos_adamw8bit(monkeypatch):
    """torchao's AdamW8bit (block 256, the same maps) run eagerly on the CPU: after five steps
    the parameters agree to float32 rounding and the stored moments byte for byte but where
    the two orders of operations (torchao: v.lerp(g^2, 1 - b2) and a division by the block's
    maximum; descentlab: torch's v*b2 + (1-b2) g g and the maximum's reciprocal) put a value
    on the other side of a decision threshold."""
    ao = pytest.importorskip("torchao.optim")
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)  # its step, run eagerly
    g = torch.Generator().manual_seed(11)
    start = torch.randn(64, 256, generator=g)
    grads = [torch.randn(64, 256, generator=g) for _ in range(5)]
    wa, wb = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    oa = ao.AdamW8bit([wa], lr=torch.tensor(1e-2), weight_decay=0.01)
    ob = optim.AdamW([wb], lr=1e-2, weight_decay=0.01, state_dtype="int8")
    for gr in grads:
        wa.grad, wb.grad = gr.clone(), gr.clone()
        oa.step()
        ob.step()
    torch.testing.assert_close(wb.detach(), wa.detach(), rtol=1e-5, atol=1e-6)
    for key in ("exp_avg", "exp_avg_sq"):
        theirs, ours = oa.state[wa][key], ob.state[wb]
        torch.testing.assert_close(ours[f"{key}_scale"], theirs.scale, rtol=1e-5, atol=0)
        differ = ours[key].reshape(-1) != theirs.codes.reshape(-1)
        assert float(differ.double().mean()) < 2e-3, key
        # a differing code is a neighbour (the value sat at a threshold)
        gap = ours[key].reshape(-1)[differ].long() - theirs.codes.reshape(-1)[differ].long()
        assert bool((gap.abs() == 1).all()), key


@pytest.mark.parametrize("fmt", ["int8", "bf16"])
def test_adamw_fused_equals_eager(fmt):
    def run(fused):
        g = torch.Generator().manual_seed(2)
        ws = [torch.nn.Parameter(torch.randn(n, generator=g)) for n in (17, 300, 70_001)]
        opt = optim.AdamW(ws, lr=1e-2, state_dtype=FORMATS[fmt], fused=fused)
        for _ in range(8):
            for w in ws:
                w.grad = torch.randn(w.shape, generator=g)
            opt.step()
        return [w.detach() for w in ws] + [v for w in ws for v in opt.state[w].values()]

    a, b = run(True), run(False)
    if BITWISE:
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    else:
        torch.testing.assert_close(a[:3], b[:3], rtol=2e-5, atol=2e-5)


def test_small_tensors_keep_float32_state_as_torchao_and_bitsandbytes():
    """Under 4096 elements (torchao's and bitsandbytes' min_8bit_size) the state stays float32:
    a few values gain nothing, and a quantized second moment of zero next to a large one would
    step by lr * m / eps."""
    a, b = torch.nn.Parameter(torch.ones(4095)), torch.nn.Parameter(torch.ones(4096))
    opt = optim.AdamW([a, b], state_dtype="int8")
    a.grad, b.grad = torch.ones(4095), torch.ones(4096)
    opt.step()
    assert opt.state[a]["exp_avg"].dtype == torch.float32 and "exp_avg_scale" not in opt.state[a]
    assert opt.state[b]["exp_avg"].dtype == torch.uint8 and "exp_avg_scale" in opt.state[b]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("fmt", ["int8", "bf16"])
def test_low_bit_state_runs_eagerly_on_cuda(fmt):
    """No Triton kernel stores low-bit state: a CUDA group runs the eager emitter (announced),
    which follows the CPU's to float32 rounding."""
    out = {}
    for dev in ("cpu", "cuda"):
        g = torch.Generator().manual_seed(4)
        w = torch.nn.Parameter(torch.randn(8192, generator=g).to(dev))
        opt = optim.AdamW([w], lr=1e-2, state_dtype=FORMATS[fmt])
        for _ in range(3):
            w.grad = torch.randn(8192, generator=g).to(dev)
            opt.step()
        out[dev] = (w.detach().cpu(), opt.state[w]["exp_avg"].dtype)
    torch.testing.assert_close(out["cuda"][0], out["cpu"][0], rtol=1e-4, atol=1e-5)
    assert out["cuda"][1] == out["cpu"][1]
