"""The fused backend (descentlab.optim.fused) against the eager one, torch.sqrt and itself.

Compiled kernels are cached on disk (``~/.cache/descentlab/fused``), so only the first run on a
machine compiles; nothing here is skipped when no compiler exists -- the tests then fail with
the backend's own error.
"""

from __future__ import annotations

import copy
import ctypes
import math
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
from _models import (
    batches,
    digits_mlp,
    laid_out_params,
    layout_loss,
    max_rel_err,
    param_groups,
    step_side_by_side,
    train,
)
from test_optim_parity import PARITY

from descentlab import _announce, optim
from descentlab.optim import fused as F
from descentlab.optim.program import has_kernel_form

STEPS = 300
# Fused vs eager, float32, 300 steps: bit-identical where the kernels reproduce torch's float32
# sqrt (Intel AVX-512); elsewhere (AMD) the kernels' faithful root is within an ulp of torch's,
# and ulp differences in the roots grow to ~1e-6..1e-5 relative over 300 Adam steps (torch's
# for-loop and fused Adam differ alike there).
BITWISE = F.sqrt_reproduces_torch()
TOL = 1e-6 if BITWISE else 2e-5


def _ran_fused(opt: optim.Optimizer) -> bool:
    return any(plan is not None for plan in opt._fused.plans.values())


def _fusable(cls: type, kwargs: dict) -> bool:
    opt = cls([torch.nn.Parameter(torch.ones(1))], fused=False, **kwargs)
    return all(has_kernel_form(r) for r in opt.rule.rules)


# the parity configurations of every optimizer whose rules all have a fused form
FUSED_PARITY = [p for p in PARITY if _fusable(p[2], p[3])]


@pytest.mark.parametrize(
    ("our_cls", "kwargs", "group2"),
    [(p[2], p[3], p[4]) for p in FUSED_PARITY],
    ids=[p[0] for p in FUSED_PARITY],
)
def test_fused_matches_eager_float32(our_cls, kwargs, group2):
    dtype = torch.float32
    eager = digits_mlp(dtype)
    fused = copy.deepcopy(eager)
    idx = batches(STEPS)
    sign = -1.0 if kwargs.get("maximize") else 1.0
    opt_f = our_cls(param_groups(fused, group2), fused=True, **kwargs)
    train(eager, our_cls(param_groups(eager, group2), fused=False, **kwargs), idx, dtype, sign)
    train(fused, opt_f, idx, dtype, sign)
    assert _ran_fused(opt_f)
    moved = max(
        float((p - q).detach().abs().max())
        for p, q in zip(eager.parameters(), digits_mlp(dtype).parameters(), strict=True)
    )
    assert moved > 1e-3, "the model did not train: the comparison would be vacuous"
    assert max_rel_err(fused, eager) <= TOL


# Rules with no square root: their kernels round exactly where the eager ops do, on every CPU.
NO_ROOT = [
    (optim.Adamax, dict(lr=0.02, weight_decay=0.05)),
    (optim.Adamax, dict(lr=0.02, betas=(0.8, 0.9), maximize=True)),
    (optim.ASGD, dict(lr=0.02, t0=20, lambd=0.01, weight_decay=0.01)),
    (optim.ASGD, dict(lr=0.05, alpha=0.6, maximize=True)),
    (optim.Rprop, dict(lr=0.01, etas=(0.4, 1.3), step_sizes=(1e-4, 0.05))),
    (optim.Rprop, dict(lr=0.01, maximize=True)),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(
    ("cls", "kw"), NO_ROOT, ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(NO_ROOT)]
)
def test_fused_adamax_asgd_rprop_are_eager_bit_for_bit(cls, kw, dtype):
    """100 steps on a 999-element tensor (vector loop and scalar tail): parameters and every
    state entry identical to the eager backend's."""
    gen = torch.Generator().manual_seed(2)
    init = torch.randn(37, 27, generator=gen, dtype=dtype)
    grads = [torch.randn(37, 27, generator=gen, dtype=dtype) for _ in range(100)]
    runs = []
    for fused in (True, False):
        w = init.clone().requires_grad_()
        opt = cls([w], fused=fused, **kw)
        for g in grads:
            w.grad = g.clone()
            opt.step()
        runs.append((w.detach(), opt.state[w]))
        assert _ran_fused(opt) is fused
    (wf, sf), (we, se) = runs
    assert float((wf - init).abs().max()) > 0.1
    assert torch.equal(wf, we), int((wf != we).sum())
    assert sorted(sf) == sorted(se)
    for key, value in se.items():
        assert torch.equal(sf[key], value), key


@pytest.mark.parametrize("name", ["SGD", "Adam", "Adagrad", "RMSprop", "Adamax"])
def test_a_zero_weight_decay_adds_nothing_as_in_torch(name):
    """weight_decay=0 is skipped, as the eager form and torch skip it: infinite and NaN
    parameters and -0 gradients pass through (``dl_fma(p, 0, g)`` would be NaN for p = inf
    and +0 for g = -0)."""
    inf, nan = math.inf, math.nan
    init = torch.tensor([inf, -inf, nan, 1.0, -0.0, 2.0] * 6)  # 36: vector loop and tail
    grad = torch.tensor([1.0, -1.0, 1.0, -0.0, -0.0, 0.5] * 6)
    runs = []
    for make in (
        lambda ps: getattr(optim, name)(ps, lr=0.1, fused=True),
        lambda ps: getattr(optim, name)(ps, lr=0.1, fused=False),
        lambda ps: getattr(torch.optim, name)(ps, lr=0.1, foreach=False),
    ):
        w = init.clone().requires_grad_()
        opt = make([w])
        for _ in range(3):
            w.grad = grad.clone()
            opt.step()
        runs.append(w.detach())
    fused, eager, theirs = runs
    assert bool(fused[:2].isinf().all()) and bool(fused[2].isnan())
    for other in (eager, theirs):
        torch.testing.assert_close(fused, other, rtol=0, atol=0, equal_nan=True)
        assert torch.equal(fused.signbit(), other.signbit())


def test_weight_decay_scheduled_through_zero_switches_kernels():
    """A decay that is 0 at some steps runs a kernel without it there (two kernels, both
    cached), equal to the eager backend."""
    gen = torch.Generator().manual_seed(4)
    init = torch.randn(40, generator=gen)
    grads = [torch.randn(40, generator=gen) for _ in range(6)]
    runs = []
    for fused in (True, False):
        w = init.clone().requires_grad_()
        opt = optim.SGD(
            [w], lr=0.1, momentum=0.9, weight_decay=lambda t: 0.1 * (t % 2), fused=fused
        )
        for g in grads:
            w.grad = g.clone()
            opt.step()
        runs.append((w.detach(), opt))
    (wf, of), (we, _) = runs
    assert torch.equal(wf, we)
    assert sum(plan is not None for plan in of._fused.plans.values()) == 2


# Composed chains that exercise the rules no named optimizer uses, in float32 and float64.
CHAINS = [
    (
        "clip-norm-rms-trace",
        lambda: optim.chain(
            optim.clip_by_global_norm(0.5),
            optim.scale_by_rms(alpha=0.9, eps_inside_sqrt=True),
            optim.trace(momentum=0.9, nesterov=True),
            optim.scale_by_lr(1e-3),
        ),
    ),
    (
        "guard-clip-value-noise-adam",
        lambda: optim.chain(
            optim.non_finite_guard("zero"),
            optim.clip_by_value(0.05),
            optim.add_noise(noise_eta=1e-4, noise_seed=3),
            optim.scale_by_adam(bias_correction=False, eps_inside_sqrt=True),
            optim.scale_by_lr(1e-2),
        ),
    ),
    (
        "adam-eps-inside-decayed",
        lambda: optim.chain(
            optim.scale_by_adam(betas=(0.8, 0.99), eps_inside_sqrt=True),
            optim.add_decayed_weights(1e-2),
            optim.scale_by_lr(1e-2),
        ),
    ),
    (
        "adagrad-inside-lr-decay",
        lambda: optim.chain(
            optim.scale_by_adagrad(initial_accumulator_value=0.1, eps_inside_sqrt=True),
            optim.scale_by_lr(5e-2, lr_decay=1e-2),
        ),
    ),
    ("velocity-nesterov", lambda: optim.chain(optim.velocity(0.9, 0.05, nesterov=True))),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("make", [c[1] for c in CHAINS], ids=[c[0] for c in CHAINS])
def test_fused_matches_eager_for_composed_chains(make, dtype):
    eager = digits_mlp(dtype)
    fused = copy.deepcopy(eager)
    idx = batches(100)
    opt_f = optim.Optimizer(fused.parameters(), make(), fused=True)
    train(eager, optim.Optimizer(eager.parameters(), make(), fused=False), idx, dtype)
    train(fused, opt_f, idx, dtype)
    assert _ran_fused(opt_f)
    assert max_rel_err(fused, eager) <= (TOL if dtype == torch.float32 else 1e-12)


def test_lookahead_nesterov_runs_fused_and_matches_eager():
    x = torch.linspace(-1, 1, 64, dtype=torch.float64).reshape(-1, 1)
    y = 3 * x - 1

    def run(fused: bool) -> torch.Tensor:
        w = torch.nn.Parameter(torch.zeros(1, 1, dtype=torch.float64))
        opt = optim.Nesterov([w], lr=0.1, lookahead=True, form="velocity", fused=fused)

        def closure():
            opt.zero_grad()
            loss = ((x @ w - y) ** 2).mean()
            loss.backward()
            return loss

        for _ in range(50):
            opt.step(closure)
        assert _ran_fused(opt) == fused
        return w.detach()

    assert torch.equal(run(True), run(False))


def test_schedules_changing_lr_and_momentum_never_recompile():
    model = digits_mlp(torch.float32)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.5, fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1 + t))
    idx = batches(40)
    train(model, opt, idx[:1], torch.float32)
    compiled, plans = F.compile_count(), len(opt._fused.plans)
    x = torch.randn(8, 64)
    for t in range(1, 40):
        opt.param_groups[0]["momentum"] = 0.5 + 0.49 * t / 40  # seed 003: 0.5 -> 0.99
        sched.step()
        opt.zero_grad()
        model(x[:, : model[0].in_features]).pow(2).mean().backward()
        opt.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 / 40)
    assert F.compile_count() == compiled, "a schedule recompiled the kernel"
    assert len(opt._fused.plans) == plans == 1


def _probe(dtype: torch.dtype):
    model = torch.nn.Linear(2, 1).to(dtype)
    opt = optim.Adam(model.parameters(), fused=True)
    model(torch.ones(1, 2, dtype=dtype)).sum().backward()
    opt.step()
    (plan,) = [p for p in opt._fused.plans.values() if p is not None]
    return plan.kernel.probe


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_kernel_sqrt_matches_torch(dtype):
    probe = _probe(dtype)
    g = torch.Generator().manual_seed(0)
    x = torch.cat(
        [
            torch.rand(100_003, generator=g, dtype=dtype) * 10.0 ** torch.randint(-30, 30, (1,)),
            torch.rand(10_000, generator=g, dtype=dtype),
            torch.tensor([0.0, -0.0, float("inf"), float("nan"), -1.0, 1e-45, 1e-40, 3.4e38]).to(
                dtype
            ),
        ]
    )
    out = torch.empty_like(x)
    probe(ctypes.c_void_p(x.data_ptr()), ctypes.c_void_p(out.data_ptr()), ctypes.c_int64(x.numel()))
    ref = torch.sqrt(x)
    same = (out == ref) | (out.isnan() & ref.isnan())
    assert torch.equal(torch.signbit(out[:2]), torch.signbit(ref[:2]))
    ulp = torch.finfo(dtype).eps * ref.abs()
    assert bool((same | ((out - ref).abs() <= ulp)).all()), "more than one ulp from torch.sqrt"
    if dtype == torch.float32 and BITWISE:
        assert bool(same.all()), "float32 sqrt should be bit-identical to torch's"
    elif dtype == torch.float32:
        # torch's root is not reproducible here: the kernels' is still faithful (within an ulp
        # of the correctly rounded root)
        exact = x.double().sqrt().float()
        near = (out - exact).abs() <= torch.finfo(dtype).eps * exact.abs()
        assert bool((near | (out == exact) | (out.isnan() & exact.isnan())).all())


def test_sqrt_probe_on_intel_avx512_says_bitwise():
    """Where MKL's AVX-512 path runs (Intel), the probe must find the kernels' root torch's."""
    cpuinfo = Path("/proc/cpuinfo")
    intel = cpuinfo.is_file() and "GenuineIntel" in cpuinfo.read_text()
    if not (intel and torch.backends.cpu.get_cpu_capability() == "AVX512"):
        pytest.skip("not an Intel AVX-512 CPU: MKL's float32 root is not reproducible here")
    assert BITWISE, "on Intel AVX-512 CPUs the kernels reproduce MKL's float32 sqrt"


def test_batched_hyperparameters_equal_separate_runs():
    k, d = 3, 1000
    g = torch.Generator().manual_seed(0)
    target = torch.randn(k, d, generator=g)
    lrs = torch.tensor([1e-2, 3e-2, 1e-1])
    betas = (torch.tensor([0.9, 0.8, 0.5]), 0.999)

    def run(make_opt, w0, tgt):
        w = torch.nn.Parameter(w0.clone())
        opt = make_opt([w])
        for _ in range(50):
            w.grad = 2 * (w.detach() - tgt) * (1 + w.detach().abs())
            opt.step()
        return w.detach(), opt

    w0 = torch.zeros(k, d)
    batched, opt = run(lambda p: optim.Adam(p, lr=lrs, betas=betas, fused=True), w0, target)
    assert _ran_fused(opt)
    for r in range(k):
        for fused in (True, False):
            row, _ = run(
                lambda p, r=r, fused=fused: optim.Adam(
                    p, lr=float(lrs[r]), betas=(float(betas[0][r]), 0.999), fused=fused
                ),
                w0[r : r + 1],
                target[r : r + 1],
            )
            # same per-row coefficients and loop body as a single run: bit-identical (to the
            # eager single run too, where the kernels reproduce torch's float32 sqrt)
            if fused or BITWISE:
                assert torch.equal(batched[r : r + 1], row)
            else:  # 50 steps at lr 0.1 with beta1 0.5 amplify rounding more than TOL's case
                assert float((batched[r : r + 1] - row).abs().max() / row.abs().max()) <= 1e-4
    # the eager backend's batched path computes per-run coefficients in float32 tensors
    eager, _ = run(lambda p: optim.Adam(p, lr=lrs, betas=betas, fused=False), w0, target)
    assert float((batched - eager).abs().max() / eager.abs().max()) <= 1e-4


@pytest.mark.parametrize("change", ["in place", "new tensor", "tuple entry in place"])
def test_batched_hyperparameters_are_reread_when_they_change(change):
    """The fused plan caches the K rows read out of batched hyperparameters; changing a value
    in place (a new tensor version) or replacing the tensor must take effect at once."""
    k, d = 3, 200
    target = torch.randn(k, d, generator=torch.Generator().manual_seed(1))

    def run(lrs, betas, fused):
        w = torch.nn.Parameter(torch.zeros(k, d))
        opt = optim.Adam([w], lr=lrs.clone(), betas=(betas[0].clone(), betas[1]), fused=fused)
        group = opt.param_groups[0]
        for t in range(40):
            if t == 20:
                if change == "in place":
                    group["lr"].mul_(0.1)
                elif change == "new tensor":
                    group["lr"] = group["lr"] * 0.1
                else:
                    group["betas"][0].fill_(0.5)
            w.grad = 2 * (w.detach() - target)
            opt.step()
        return w.detach(), opt

    lrs, betas = torch.tensor([1e-2, 3e-2, 1e-1]), (torch.tensor([0.9, 0.8, 0.7]), 0.999)
    fused, opt = run(lrs, betas, True)
    assert _ran_fused(opt)
    eager, _ = run(lrs, betas, False)
    assert float((fused - eager).abs().max() / eager.abs().max()) <= 1e-4
    unchanged = torch.zeros(k, d)  # the same 40 steps without the change differ
    w = torch.nn.Parameter(unchanged)
    opt = optim.Adam([w], lr=lrs.clone(), betas=(betas[0].clone(), 0.999), fused=True)
    for _ in range(40):
        w.grad = 2 * (w.detach() - target)
        opt.step()
    assert float((fused - w.detach()).abs().max()) > 1e-3


@pytest.mark.process
def test_second_process_loads_the_cache_without_compiling(tmp_path: Path):
    script = textwrap.dedent(
        """
        import time, torch
        from descentlab import optim
        from descentlab.optim import fused
        w = torch.nn.Parameter(torch.ones(1000))
        opt = optim.RAdam([w], lr=1e-3, weight_decay=1e-2, fused=True)
        w.grad = torch.ones(1000)
        fused.sqrt_reproduces_torch()  # its probe kernel is compiled (and cached) once too
        before = fused.compile_count()
        t0 = time.perf_counter(); opt.step(); first = time.perf_counter() - t0
        print(fused.compile_count() - before, first)
        """
    )
    # different hash seeds: the generated source must not depend on set or dict order
    runs = [
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "DESCENTLAB_CACHE": str(tmp_path), "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for seed in (1, 2)
    ]
    assert int(runs[0][0]) == 1, "the first process should compile its kernel"
    assert int(runs[1][0]) == 0, "the second process should load it from the disk cache"
    assert len(list((tmp_path / "fused").glob("k_*.so"))) == 2  # the kernel and the probe


class _NoFusedForm(optim.Rule):
    name = "no_fused_form"

    def update(self, grads, state, params, hyper):
        return grads, state


def test_fused_true_refuses_what_it_cannot_run():
    w = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match="no_fused_form"):
        optim.Optimizer([w], optim.chain(_NoFusedForm(), optim.scale_by_lr(0.1)), fused=True)
    with pytest.raises(ValueError, match="fused must be True or False, got 'yes'"):
        optim.Adam([w], fused="yes")
    with pytest.raises(ValueError, match="fused=True and foreach=True"):
        optim.SGD([w], fused=True, foreach=True)
    eight = torch.ones(3, dtype=torch.float8_e5m2).requires_grad_()
    opt = optim.Adam([eight], fused=True)
    eight.grad = torch.ones(3, dtype=torch.float8_e5m2)
    with pytest.raises(
        ValueError, match=r"float32, float64, float16, bfloat16, got torch\.float8_e5m2"
    ):
        opt.step()
    assert torch.equal(eight.detach().float(), torch.ones(3))
    assert float(opt.state[eight].get("step", 0)) == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_16_bit_parameters_run_fused_by_default_and_with_fused_true(dtype):
    for fused in (None, True):
        half = torch.nn.Parameter(torch.ones(3, dtype=dtype))
        opt = optim.Adam([half], lr=0.1, fused=fused)
        half.grad = torch.ones(3, dtype=dtype)
        opt.step()
        assert _ran_fused(opt)
        assert half.dtype == dtype and opt.state[half]["exp_avg"].dtype == dtype
        assert float(half.detach()[0]) == pytest.approx(0.9, abs=1e-2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_16_bit_kernels_round_to_nearest_even_like_torch(dtype):
    """The kernels' 16-bit loads and stores against torch's own conversions, in the vector
    loop and the scalar tail: a gradient step ``p + g * (-lr)`` is one float32 fma (exact in
    float64, then rounded to float32) rounded to 16 bits. Ties go to even, overflow to
    infinity; infinities, NaN, signed zeros and subnormals pass through."""
    fi = torch.finfo(dtype)
    eps, big, tiny = fi.eps, fi.max, fi.tiny
    half_ulp_of_max = 2.0 ** (math.log2(big / (2 - eps)) - 1) * eps
    # (p, g, p - g): lr = 1 in the first group
    cases = [
        (1.0, -eps / 2, 1.0),  # a tie: to the even neighbour below
        (1.0 + eps, -eps / 2, 1.0 + 2 * eps),  # a tie: to the even neighbour above
        (1.0, eps / 4, 1.0),  # a tie below 1 (finer spacing there)
        (big, -half_ulp_of_max, math.inf),  # a tie above the largest number: overflow
        (big, -big, math.inf),
        (-big, big, -math.inf),
        (math.inf, 1.0, math.inf),
        (-math.inf, 1.0, -math.inf),
        (math.nan, 1.0, math.nan),
        (tiny / 8, 0.0, tiny / 8),  # subnormal
        (tiny, tiny / 2, tiny / 2),  # a subnormal result
        (0.0, 0.0, 0.0),
        (-0.0, 0.0, -0.0),
        (3.0, -1.0, 4.0),
    ]
    gen = torch.Generator().manual_seed(5)
    sp, sg, want = (torch.tensor(col, dtype=torch.float64) for col in zip(*cases, strict=True))
    # the cases at the start (vector loop) and the end (scalar tail: 302 = 18 * 16 + 14)
    p1 = torch.cat([sp, torch.randn(274, generator=gen, dtype=torch.float64), sp]).to(dtype)
    g1 = torch.cat([sg, torch.randn(274, generator=gen, dtype=torch.float64), sg]).to(dtype)
    # arbitrary float32 results: magnitudes over ten decades, lr = 0.7
    scale = 10.0 ** torch.randint(-6, 4, (301,), generator=gen)
    p2 = (torch.randn(301, generator=gen, dtype=torch.float64) * scale).to(dtype)
    g2 = torch.randn(301, generator=gen, dtype=torch.float64).to(dtype)
    groups = [(p1, g1, 1.0), (p2, g2, 0.7)]
    ws = [p.clone().requires_grad_() for p, _, _ in groups]
    opt = optim.Optimizer(
        [{"params": [w], "lr": lr} for w, (_, _, lr) in zip(ws, groups, strict=True)],
        optim.chain(optim.scale_by_lr(1.0)),
        fused=True,
    )
    for w, (_, g, _) in zip(ws, groups, strict=True):
        w.grad = g.clone()
    opt.step()
    assert _ran_fused(opt)
    for w, (p, g, lr) in zip(ws, groups, strict=True):
        neg = torch.tensor(-lr, dtype=torch.float32).double()
        expect = (p.double() + g.double() * neg).float().to(dtype)
        got = w.detach()
        assert torch.equal(got.isnan(), expect.isnan())
        same = (got.view(torch.int16) == expect.view(torch.int16)) | expect.isnan()
        assert bool(same.all()), (got[~same], expect[~same])
    got = ws[0].detach().double()
    for part in (got[:14], got[-14:]):
        torch.testing.assert_close(part, want, rtol=0, atol=0, equal_nan=True)
        assert torch.equal(part.signbit(), want.signbit())


def test_default_falls_back_to_eager_where_fused_cannot_run():
    w = torch.nn.Parameter(torch.ones(3))
    opt = optim.Adam([w], lr=0.1, monitor=True)  # a monitor needs the update tensors: eager
    w.grad = torch.ones(3)
    opt.step()
    assert not opt._fused.plans and len(opt.monitor.records) == 1
    opt = optim.Optimizer([w], optim.chain(_NoFusedForm(), optim.scale_by_lr(0.1)))
    opt.step()
    assert torch.allclose(w.detach(), torch.full((3,), 0.8))


def test_without_a_compiler_the_default_runs_eagerly_and_says_so_once(monkeypatch):
    """No C++ compiler: ``fused=None`` steps eagerly (``fused=True`` is refused), and says so
    once per process, however many optimizers (it was silent: the trajectory kernels said
    it, the optimizers did not)."""

    monkeypatch.setattr(F, "fused_available", lambda: False)
    monkeypatch.setattr(_announce, "PROCESS", _announce.Once())
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        for name in ("adam", "sgd"):
            w = torch.nn.Parameter(torch.ones(3))
            opt = optim.get(name)([w], lr=0.1)
            for _ in range(2):
                w.grad = torch.ones(3)
                opt.step()
            assert not _ran_fused(opt)
    eager = [w for w in said if "no C++ compiler" in str(w.message)]
    assert len(eager) == 1, [str(w.message) for w in said]
    assert eager[0].filename == __file__


def test_a_group_the_kernel_cannot_step_runs_eagerly_and_says_so_once():
    """``fused=None``: a group whose tensors the kernel cannot step (here a strided state
    tensor) runs eagerly -- the same form, the same result -- and that fallback is announced
    once per optimizer and reason (it was silent: a slower step and no word why)."""
    ws = [torch.nn.Parameter(torch.randn(5, 7, generator=torch.Generator().manual_seed(i)))
          for i in range(2)]  # fmt: skip
    ref = [torch.nn.Parameter(w.detach().clone()) for w in ws]
    opts = [optim.AdamW(ws, lr=1e-2), optim.AdamW(ref, lr=1e-2, fused=False)]
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        for t in range(4):
            for opt, group in zip(opts, (ws, ref), strict=True):
                for w in group:
                    w.grad = torch.full_like(w, 0.1 * (t + 1))
                if t == 1:
                    strided = torch.zeros(70)[::2].view(5, 7)
                    opt.state[group[1]]["exp_avg"] = strided.copy_(opt.state[group[1]]["exp_avg"])
                opt.step()
    eager = [w for w in said if "eagerly" in str(w.message)]
    assert len(eager) == 1, [str(w.message) for w in said]
    assert "AdamW runs param group 0 eagerly" in str(eager[0].message)
    assert "contiguous" in str(eager[0].message)
    assert eager[0].filename == __file__  # points at the caller's step
    for a, b in zip(ws, ref, strict=True):
        assert torch.equal(a, b) if BITWISE else torch.allclose(a, b, rtol=TOL, atol=0)


@pytest.mark.parametrize("name", ["sgd", "adam", "momentum"])
def test_fused_follows_replaced_parameters_and_state(name):
    """The fused step caches what it can; replacing a parameter's storage, a state tensor or a
    whole state dict between steps must still act exactly as the eager backend does."""

    def run(fused: bool) -> list[torch.Tensor]:
        torch.manual_seed(0)
        ws = [torch.nn.Parameter(torch.randn(5, 7)) for _ in range(3)]
        kwargs = {"momentum": 0.9} if name == "momentum" else {}
        opt = optim.get(name)(ws, lr=0.1, fused=fused, **kwargs)
        g = torch.Generator().manual_seed(1)
        for t in range(12):
            for w in ws:
                w.grad = torch.randn(5, 7, generator=g)
            if t == 4:
                ws[0].data = ws[0].data.clone() * 0.5  # new storage, same Parameter
            if t == 7:
                for key in [k for k in opt.state[ws[1]] if k != "step"]:
                    opt.state[ws[1]][key] = torch.zeros_like(ws[1]) + 0.01
            if t == 9:
                opt.state[ws[2]] = {}  # reset one parameter's state
            opt.step()
            if fused and t not in (4, 7, 9):
                assert _ran_fused(opt)
        return [w.detach().clone() for w in ws]

    for a, b in zip(run(True), run(False), strict=True):
        if BITWISE or name != "adam":
            assert torch.equal(a, b)
        else:  # the one root per element is correctly rounded here, torch's is not
            assert float((a - b).abs().max() / b.abs().max()) <= TOL


def _mixed(seed: int = 0) -> list[torch.nn.Parameter]:
    """A model in mixed precision: 16-bit weights, float32 norms and biases, one float64
    tensor, interleaved in one param group."""
    g = torch.Generator().manual_seed(seed)
    dtypes = [torch.bfloat16, torch.float32, torch.bfloat16, torch.float64, torch.float16,
              torch.float32]  # fmt: skip
    return [torch.nn.Parameter(torch.randn(7 + 3 * i, generator=g).to(dt))
            for i, dt in enumerate(dtypes)]  # fmt: skip


@pytest.mark.parametrize("fused", [None, True], ids=["default", "fused"])
@pytest.mark.parametrize("name", ["adamw", "sgd", "adagrad"])
def test_a_group_of_several_dtypes_steps_one_kernel_per_dtype(name, fused):
    """torch's fused and foreach steps group a param group's tensors by dtype: a group in
    mixed precision runs one fused kernel per dtype (it ran eagerly, or was refused with
    fused=True), bit for bit as the same tensors in one group per dtype."""
    kw = {"momentum": 0.9} if name == "sgd" else {}
    ps, ref_ps = _mixed(), _mixed()
    opt = optim.get(name)(ps, lr=1e-2, fused=fused, **kw)
    by_dtype: dict = {}
    for p in ref_ps:
        by_dtype.setdefault(p.dtype, []).append(p)
    ref = optim.get(name)([{"params": g} for g in by_dtype.values()], lr=1e-2, fused=True, **kw)
    g = torch.Generator().manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no eager step announced
        step_side_by_side(opt, ref, ps, ref_ps, g, steps=4)
    assert {plan.dtype for plan in opt._fused.plans.values() if plan} == set(by_dtype)
    for a, b in zip(ps, ref_ps, strict=True):
        assert torch.equal(a, b)
        for key, value in ref.state[b].items():
            assert torch.equal(opt.state[a][key], value), key


@pytest.mark.parametrize(
    "make",
    [
        lambda ps, **kw: optim.Optimizer(
            ps, optim.chain(optim.clip_by_global_norm(0.5), optim.scale_by_lr(0.1)), **kw
        ),
        lambda ps, **kw: optim.Adafactor(ps, lr=1e-2, **kw),
    ],
    ids=["global-norm-clip", "adafactor"],
)
def test_a_chain_over_the_whole_group_is_not_split_by_dtype(make):
    """Only an element-local chain steps a group one dtype at a time: a global-norm clip (or
    any rule that reads the whole group) sees all its tensors, as with one dtype."""
    ps, ref_ps = _mixed(), _mixed()
    opt, ref = make(ps), make(ref_ps, fused=False)
    g = torch.Generator().manual_seed(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an eager step's announcement
        step_side_by_side(opt, ref, ps, ref_ps, g, steps=3)
    for a, b in zip(ps, ref_ps, strict=True):
        assert torch.equal(a, b)


def test_a_later_dtypes_unusable_state_is_refused_before_any_tensor_moves():
    """The tensors of one dtype launch before those of the next: state the second kernel
    cannot use is refused in the step's first phase, before the first kernel moves anything."""
    ps = _mixed()
    opt = optim.AdamW(ps, lr=1e-2, fused=True)
    for p in ps:
        p.grad = torch.ones_like(p)
    opt.step()
    opt.state[ps[5]]["exp_avg"] = opt.state[ps[5]]["exp_avg"].double()  # a float32 tensor's
    before = [p.detach().clone() for p in ps]
    with pytest.raises(ValueError, match=r"param group 0: .*torch\.float64"):
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ps, before, strict=True))
    assert {float(opt.state[p]["step"]) for p in ps} == {1.0}


def _swapped_state(opt: optim.Optimizer, ps: list) -> None:
    """The state of a model whose two last tensors are swapped: state loaded for other
    parameters (``load_state_dict`` accepts it, as torch's does)."""
    sd = opt.state_dict()
    sd["state"][1], sd["state"][2] = sd["state"][2], sd["state"][1]
    opt.load_state_dict(sd)


#: (how the second group's state is broken, what the refusal says)
BAD_STATE = [
    (lambda opt, ps: opt.state[ps[2]].update(exp_avg=opt.state[ps[2]]["exp_avg"].double()),
     r"param group 1: .*torch\.float64"),
    (lambda opt, ps: opt.state[ps[2]].update(exp_avg=torch.zeros(2 * 35)[::2].view(5, 7)),
     r"param group 1: .*contiguous"),
    (_swapped_state, r"param group 1: state of shape \(5, 7\) for a parameter of \(7, 5\)"),
]  # fmt: skip


@pytest.mark.parametrize(("bad", "says"), BAD_STATE, ids=["dtype", "strided", "other-params"])
def test_state_the_fused_step_cannot_use_is_refused_before_any_group_changes(bad, says):
    """A step that refuses a later group's state must not have stepped the earlier groups:
    the state is checked with the parameters and gradients, before anything changes (it was
    checked in each group's update, after the groups before it had moved)."""
    ps = [torch.nn.Parameter(torch.randn(s, generator=torch.Generator().manual_seed(i)))
          for i, s in enumerate([(4, 3), (7, 5), (5, 7)])]  # fmt: skip
    opt = optim.AdamW([{"params": ps[:1]}, {"params": ps[1:]}], lr=1e-2, fused=True)
    for p in ps:
        p.grad = torch.ones_like(p)
    opt.step()
    bad(opt, ps)
    before = [p.detach().clone() for p in ps]
    state = copy.deepcopy({i: dict(opt.state[p]) for i, p in enumerate(ps)})
    with pytest.raises(ValueError, match=says):
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ps, before, strict=True))
    for i, p in enumerate(ps):
        assert opt.state[p].keys() == state[i].keys()
        for key, value in state[i].items():
            assert value.dtype == opt.state[p][key].dtype, (i, key)
            assert torch.equal(value, opt.state[p][key]), (i, key)
    assert [g["step"] for g in opt.param_groups] == [1, 1]


def test_fused_step_counts_as_an_in_place_change_for_autograd():
    w = torch.nn.Parameter(torch.ones(4))
    opt = optim.Adam([w], fused=True)
    w.grad = torch.ones(4)
    opt.step()
    loss = (w * w).sum()  # saves w for backward
    w.grad = torch.ones(4)
    opt.step()
    assert _ran_fused(opt)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.process
def test_a_failing_compiler_falls_back_to_eager_by_default(monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", "/bin/false")  # found, but every compilation fails
    monkeypatch.setenv("DESCENTLAB_CACHE", str(tmp_path))
    w = torch.nn.Parameter(torch.ones(3))
    w.grad = torch.ones(3)
    opt = optim.Adam([w], lr=0.1)
    with pytest.warns(RuntimeWarning, match="fused backend is unavailable"):
        opt.step()
    assert not _ran_fused(opt)
    assert torch.allclose(w.detach(), torch.full((3,), 0.9))
    strict = optim.Adam([w], lr=0.1, fused=True)
    with pytest.raises(F.FusedUnavailable, match="compiling a fused optimizer kernel failed"):
        strict.step()
    assert torch.allclose(w.detach(), torch.full((3,), 0.9))


# tensor sizes around every vector width (4, 8 or 16 float32 lanes; 2, 4 or 8 float64): whole
# vectors, a scalar tail of every length, and tensors shorter than one vector
LANE_SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 47, 64, 65]


def _descend_each(make, init: list[torch.Tensor], grads: list[list[torch.Tensor]]) -> torch.Tensor:
    ws = [p.clone().requires_grad_() for p in init]
    opt = make(ws)
    for gs in grads:
        for w, g in zip(ws, gs, strict=True):
            w.grad = g.clone()
        opt.step()
    if isinstance(opt, optim.Optimizer):
        assert _ran_fused(opt) is opt.fused, "ran on the other backend"
    return torch.cat([w.detach().reshape(-1) for w in ws])


def _split(ts: list[torch.Tensor]) -> list[torch.Tensor]:
    return [e.reshape(1) for t in ts for e in t.reshape(-1)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_every_vector_lane_and_tail_length_is_computed_right(dtype):
    """A kernel that takes the wrong vector width or reads or writes lanes past a tensor's
    end gives wrong values somewhere in these sizes. Fused against an independent result,
    bit for bit, after 12 steps: the eager backend for rules without a square root (float32,
    float64), torch's fused Adam/AdamW for bfloat16 (whose rounding the 16-bit kernels
    follow); and, for rules with a root, each element as its own one-element tensor (every
    element in the scalar tail) against the same values in vectors."""
    gen = torch.Generator().manual_seed(11)
    init = [torch.randn(n, generator=gen).to(dtype) for n in LANE_SIZES]
    grads = [[torch.randn(n, generator=gen).to(dtype) for n in LANE_SIZES] for _ in range(12)]
    split_init, split_grads = _split(init), [_split(gs) for gs in grads]
    checks = []
    if dtype != torch.bfloat16:
        for cls, kw in (
            (optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
            (optim.Adamax, dict(lr=0.02, weight_decay=0.05)),
        ):
            eager = _descend_each(lambda ps, c=cls, k=kw: c(ps, fused=False, **k), init, grads)
            checks.append((cls, kw, eager))
    else:
        for name in ("Adam", "AdamW"):
            kw = dict(lr=0.01, weight_decay=0.1)
            theirs = getattr(torch.optim, name)
            ref = _descend_each(lambda ps, t=theirs, k=kw: t(ps, fused=True, **k), init, grads)
            checks.append((getattr(optim, name), kw, ref))
    for cls, kw in ((optim.Adam, dict(lr=0.01, weight_decay=0.1)), (optim.RMSprop, {})):
        one = _descend_each(lambda ps, c=cls, k=kw: c(ps, fused=True, **k), split_init, split_grads)
        checks.append((cls, kw, one))
    for cls, kw, ref in checks:
        got = _descend_each(lambda ps, c=cls, k=kw: c(ps, fused=True, **k), init, grads)
        moved = torch.cat([p.reshape(-1) for p in init]) != got
        assert float(moved.float().mean()) > 0.9, f"{cls.__name__}: the elements did not move"
        bad = (got != ref).nonzero().reshape(-1).tolist()
        assert not bad, f"{cls.__name__} {kw}: {len(bad)} elements differ, first at {bad[:5]}"


# (optimizer, options, parameter dtype, whether its kernel streams: no division or root)
STREAMING = [
    ("sgd", dict(lr=0.1), torch.float32, True),
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1), torch.float64, True),
    ("sgd", dict(lr=0.1, momentum=0.9), torch.bfloat16, False),  # 16-bit data: its own prelude
    ("adam", dict(lr=0.1), torch.float32, False),
    ("adagrad", dict(lr=0.1), torch.float32, False),
    ("rmsprop", dict(lr=0.1), torch.float64, False),
    ("lion", dict(lr=0.1), torch.float32, True),
]


@pytest.mark.parametrize(("name", "kw", "dtype", "streams"), STREAMING)
def test_a_kernel_without_division_or_root_takes_the_streaming_width(name, kw, dtype, streams):
    w = torch.nn.Parameter(torch.ones(5, dtype=dtype))
    w.grad = torch.ones(5, dtype=dtype)
    opt = optim.get(name)([w], fused=True, **kw)
    opt.step()
    (plan,) = [p for p in opt._fused.plans.values() if p is not None]
    assert ("#define DL_STREAM 1" in plan.source) is streams
    # the root the tests compare with torch's is the full-width kernels' root
    probe = F.CKernel().source(torch.float32, False)  # as sqrt_reproduces_torch builds it
    assert "#define DL_STREAM 1" not in probe


# --------------------------------------------------------------------------------------
# Parameters laid out otherwise than contiguous: channels_last weights, a transpose
# --------------------------------------------------------------------------------------


def _noisy_momentum(params, **kw) -> optim.Optimizer:
    chain = optim.chain(optim.add_noise(noise_eta=0.1), optim.trace(momentum=0.9),
                        optim.scale_by_lr(lr=0.1))  # fmt: skip
    return optim.Optimizer(params, chain, **kw)


#: (optimizer, options): a rule with a root and amsgrad's lazy maximum, momentum with
#: Nesterov (its buffer made from the first gradient), an accumulator, a sign, step sizes
#: made on the first step, the noise drawn before each step
LAYOUT_CASES = [
    (optim.AdamW, dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (optim.Adagrad, dict(lr=0.1)),
    (optim.Lion, dict(lr=1e-3)),
    (optim.Rprop, dict(lr=1e-2)),
    (_noisy_momentum, {}),
]


@pytest.mark.parametrize("fused", [None, True], ids=["default", "fused=True"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    ("cls", "kw"), LAYOUT_CASES, ids=[c[0].__name__.strip("_") for c in LAYOUT_CASES]
)
def test_channels_last_and_transposed_parameters_step_fused(cls, kw, dtype, fused):
    """torch's fused step takes parameters that are dense but not contiguous (a model in
    channels_last, a transposed weight); so does the kernel, which walks every tensor in
    memory order: the same bits as the same values laid out contiguously, fused, and the
    eager backend's, with no eager fallback and the steady step taken (it ran them eagerly,
    announced, and fused=True refused them)."""
    strided = laid_out_params(dtype)
    plain = [
        torch.nn.Parameter(p.detach().clone(memory_format=torch.contiguous_format)) for p in strided
    ]
    eager = [torch.nn.Parameter(p.detach().clone()) for p in strided]
    assert not strided[0].is_contiguous() and not strided[1].is_contiguous()
    opts = [cls(strided, fused=fused, **kw), cls(plain, fused=True, **kw),
            cls(eager, fused=False, **kw)]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "runs eagerly"
        for t in range(6):
            for ps, opt in zip((strided, plain, eager), opts, strict=True):
                opt.zero_grad()
                layout_loss(ps, t).backward()
                opt.step()
    assert _ran_fused(opts[0])
    # the steady step, where the chain has one (the noise is drawn before every step)
    assert list(opts[0]._fused.steady) == ([] if cls is _noisy_momentum else [0])
    assert strided[0].stride() == (27, 1, 9, 3) and strided[1].stride() == (1, 7)
    # against the eager backend: a root may part by an ulp (test_form.test_fused_equals_eager)
    rooted = cls in (optim.AdamW, optim.Adagrad)
    tol = 1e-12 if dtype == torch.float64 else TOL
    for a, b, c in zip(strided, plain, eager, strict=True):
        assert torch.equal(a, b)
        if rooted and not (dtype == torch.float32 and BITWISE):
            torch.testing.assert_close(a, c, rtol=tol, atol=tol)
        else:
            assert torch.equal(a, c)
        for key, v in opts[0].state[a].items():
            assert v.stride() == a.stride() or v.ndim == 0, key
            assert torch.equal(v, opts[1].state[b][key]), key


@pytest.mark.parametrize("steady", [0, 3], ids=["first-step", "after-steady-steps"])
@pytest.mark.parametrize("fused", [None, True], ids=["default", "fused=True"])
def test_a_gradient_laid_out_unlike_its_parameter_is_not_read_in_memory_order(fused, steady):
    """A channels_last parameter with a contiguous gradient: element k of one is not
    element k of the other in memory. fused=None steps the group eagerly (announced), and
    fused=True refuses it with nothing changed -- also where the steps before were steady."""
    ps = laid_out_params(torch.float32)
    ref = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    opt, eager = optim.AdamW(ps, lr=1e-2, fused=fused), optim.AdamW(ref, lr=1e-2, fused=False)
    for t in range(steady):
        for group, o in ((ps, opt), (ref, eager)):
            o.zero_grad()
            layout_loss(group, t).backward()
            o.step()
    assert list(opt._fused.steady) == ([0] if steady else [])
    for p, q in zip(ps, ref, strict=True):
        p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(3))  # contiguous
        q.grad = p.grad.clone()
    if fused:
        before = [p.detach().clone() for p in ps]
        state = copy.deepcopy(opt.state_dict())
        with pytest.raises(ValueError, match=r"param group 0: tensors must be contiguous"):
            opt.step()
        assert all(torch.equal(a, b) for a, b in zip(ps, before, strict=True))
        after = opt.state_dict()
        for i, st in state["state"].items():
            assert all(torch.equal(v, after["state"][i][k]) for k, v in st.items())
        return
    with pytest.warns(RuntimeWarning, match="runs param group 0 eagerly"):
        opt.step()
    eager.step()
    exact = BITWISE or not steady  # a root of the fused steps before may part by an ulp
    for a, b in zip(ps, ref, strict=True):
        assert torch.equal(a, b) if exact else torch.allclose(a, b, rtol=TOL, atol=0)


@pytest.mark.parametrize("fused", [None, True], ids=["default", "fused=True"])
def test_low_bit_state_of_a_channels_last_parameter_is_not_cut_in_memory_order(fused):
    """int8 blocks are cut from a parameter's logical order: the kernel, which would cut them
    in memory order, does not take a channels_last parameter's low-bit state (eager,
    announced; fused=True refuses) -- the eager backend's bytes, not others."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, 32, 3, 3, generator=g).to(memory_format=torch.channels_last)  # 4608
    ps, ref = [torch.nn.Parameter(w.clone())], [torch.nn.Parameter(w.clone())]
    opt = optim.AdamW(ps, lr=1e-2, state_dtype="int8", fused=fused)
    eager = optim.AdamW(ref, lr=1e-2, state_dtype="int8", fused=False)
    ps[0].grad = torch.randn(w.shape, generator=g).to(memory_format=torch.channels_last)
    ref[0].grad = ps[0].grad.clone()
    if fused:
        with pytest.raises(ValueError, match=r"param group 0: tensors must be contiguous"):
            opt.step()
        assert torch.equal(ps[0], ref[0]) and not opt.state
        return
    with pytest.warns(RuntimeWarning, match="runs param group 0 eagerly"):
        opt.step()
    eager.step()
    assert torch.equal(ps[0], ref[0])
    for key, v in eager.state[ref[0]].items():
        assert torch.equal(opt.state[ps[0]][key], v), key


def test_batched_rows_of_a_transposed_parameter_are_not_cut_in_memory_order():
    """K batched learning rates step row r of each parameter's leading dimension at lr[r]:
    the kernel cuts rows from memory, so a transposed parameter (rows not consecutive there)
    steps eagerly, announced -- at the eager backend's values."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 3, generator=g).t()  # (3, 6): row r is not consecutive in memory
    ps, ref = [torch.nn.Parameter(w.clone())], [torch.nn.Parameter(w.clone())]
    lr = torch.tensor([0.1, 0.01, 0.001])
    opt = optim.SGD(ps, lr=lr, momentum=0.9)
    eager = optim.SGD(ref, lr=lr, momentum=0.9, fused=False)
    for t in range(3):
        ps[0].grad = torch.randn(6, 3, generator=g).t()
        ref[0].grad = ps[0].grad.clone()
        if t == 0:
            with pytest.warns(RuntimeWarning, match="runs param group 0 eagerly"):
                opt.step()
        else:
            opt.step()
        eager.step()
    assert torch.equal(ps[0], ref[0])


@pytest.mark.parametrize("fused", [None, True], ids=["default", "fused=True"])
def test_a_checkpoint_of_a_contiguous_model_resumes_fused_in_channels_last(fused):
    """State saved from a contiguous model and loaded after ``model.to(channels_last)`` (or
    the other way round) is laid out as its parameters on loading -- the same values -- so
    the resumed steps stay fused (they ran eagerly, announced, and fused=True refused them),
    bit for bit the steps of the model that kept its layout."""
    for there, back in ((torch.contiguous_format, torch.channels_last),
                        (torch.channels_last, torch.contiguous_format)):  # fmt: skip
        g = torch.Generator().manual_seed(5)
        w = torch.randn(8, 3, 3, 3, generator=g)
        grads = [torch.randn(w.shape, generator=g) for _ in range(5)]
        kept = torch.nn.Parameter(w.clone(memory_format=there))
        opt = optim.AdamW([kept], lr=1e-2, weight_decay=0.1, amsgrad=True, fused=fused)
        for gr in grads[:2]:
            kept.grad = gr.clone(memory_format=there)
            opt.step()
        saved = copy.deepcopy(opt.state_dict())
        moved = torch.nn.Parameter(kept.detach().clone(memory_format=back))
        resumed = optim.AdamW([moved], lr=1e-2, weight_decay=0.1, amsgrad=True, fused=fused)
        resumed.load_state_dict(saved)
        for key, v in resumed.state[moved].items():
            assert v.ndim == 0 or v.stride() == moved.stride(), key
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no eager step announced
            for gr in grads[2:]:
                kept.grad = gr.clone(memory_format=there)
                moved.grad = gr.clone(memory_format=back)
                opt.step()
                resumed.step()
        assert torch.equal(kept, moved)
        for key, v in opt.state[kept].items():
            assert torch.equal(v, resumed.state[moved][key]), key


def test_state_an_eager_step_makes_is_laid_out_as_its_parameter():
    """amsgrad switched on at a step that runs eagerly (a gradient laid out unlike its
    channels_last parameter): the maximum it makes is laid out as the parameter, as the
    kernels make it (it took the gradient's layout, and every later step then ran eagerly)."""
    g = torch.Generator().manual_seed(6)
    p = torch.nn.Parameter(
        torch.randn(8, 3, 3, 3, generator=g).contiguous(memory_format=torch.channels_last)
    )
    opt = optim.AdamW([p], lr=1e-2)
    p.grad = torch.randn(p.shape, generator=g).contiguous(memory_format=torch.channels_last)
    opt.step()
    opt.param_groups[0]["amsgrad"] = True
    p.grad = torch.randn(p.shape, generator=g)  # contiguous: this step runs eagerly
    with pytest.warns(RuntimeWarning, match="eagerly"):
        opt.step()
    assert opt.state[p]["max_exp_avg_sq"].stride() == p.stride()
    p.grad = p.grad.contiguous(memory_format=torch.channels_last)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the next steps are fused again
        opt.step()
    assert list(opt._fused.steady) == [0]


def test_software_prefetch_is_chosen_per_cpu_and_kept_apart_in_the_cache(monkeypatch):
    """The generated vector loop prefetches by the CPU's maker and family (Intel: yes, measured
    10-15 % faster at 10M with a division or root; AMD Zen 5: yes, LAMB 8-11 % faster at 10M;
    AMD Zen 3 and 4: no, slower at 1M, docs/kernel-runtime.md),
    ``DESCENTLAB_PREFETCH`` overrides it, and each choice is its own source -- its own entry of
    the kernel cache -- with the same results."""
    from descentlab import _native

    monkeypatch.delenv("DESCENTLAB_PREFETCH", raising=False)
    cpus = [("GenuineIntel", 6, True), ("AuthenticAMD", 25, False), ("AuthenticAMD", 26, True),
            ("", 0, False)]  # fmt: skip
    for vendor, family, want in cpus:
        monkeypatch.setattr(_native, "cpu_vendor", lambda v=vendor: v)
        monkeypatch.setattr(_native, "cpu_family", lambda f=family: f)
        assert F.software_prefetch() is want
        monkeypatch.setenv("DESCENTLAB_PREFETCH", "0" if want else "1")
        assert F.software_prefetch() is not want
        monkeypatch.delenv("DESCENTLAB_PREFETCH")
    opt = optim.get("adam")([torch.nn.Parameter(torch.zeros(3))])
    builder = opt._fused.builder(
        opt, {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    )
    off, on = (builder.source(torch.float32, prefetch=x) for x in (False, True))
    assert "__builtin_prefetch" not in off
    # the vector loop only (the scalar tail reads what the vector loop prefetched), each of
    # the four streams once: the gradient for reading, the others for writing too
    assert on.count("__builtin_prefetch") == 4 and on.count("__builtin_prefetch(a_g") == 1
    assert "__builtin_prefetch(a_g + j + 2048 / sizeof(T0), 0);" in on
    assert (
        on.replace("\n".join(x for x in on.splitlines() if "__builtin_prefetch" in x) + "\n", "")
        == off
    )
    assert _native._key(on, "c++") != _native._key(off, "c++")
    monkeypatch.setattr(_native, "cpu_vendor", lambda: "GenuineIntel")
    assert builder.source(torch.float32) == on  # the CPU's choice is the default
    if not F.fused_available():
        return
    results = []
    for choice in ("0", "1"):  # the kernels of both choices, the same steps
        monkeypatch.setenv("DESCENTLAB_PREFETCH", choice)
        g = torch.Generator().manual_seed(0)
        p = torch.nn.Parameter(torch.randn(5000, generator=g))
        o = optim.get("adam")([p], lr=1e-2, fused=True)
        for _ in range(3):
            p.grad = torch.randn(5000, generator=g)
            o.step()
        (plan,) = [x for x in o._fused.plans.values() if x is not None]
        assert ("__builtin_prefetch" in plan.source) is (choice == "1")
        results.append(p.detach().clone())
    assert torch.equal(*results)
