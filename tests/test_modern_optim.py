"""The modern optimizers (Lion, Lookahead, SAM, Schedule-Free AdamW, Adafactor, Muon): torch
parity for Muon, float64 loops written from the papers' equations for the conventions Optax
does not share, refusals of bad hyperparameters, state-dict round trips and their records.

Adafactor's torch parity runs in ``tests/test_optim_parity.py`` (its record's parity
configurations); the Optax trajectories in ``tests/test_optax_reference.py``.
"""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from _models import batches, digits_mlp, digits_tensors, train

from descentlab import _announce, optim

NEW = ("lion", "lookahead", "sam", "sfadamw", "adafactor", "muon")


def _quiet(cls, params, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "no fused form" (tested below)
        return cls(params, **kw)


# ------------------------------------------------------------------ Muon against torch


def _split(model):
    weights = [p for p in model.parameters() if p.dim() == 2]
    others = [p for p in model.parameters() if p.dim() != 2]
    return weights, others


class _Both(torch.optim.Optimizer):
    """torch's Muon for the matrices and torch's AdamW for the rest, stepped together."""

    def __init__(self, muon, adamw):
        self.parts = (muon, adamw)
        self.param_groups = muon.param_groups + adamw.param_groups
        self.state = {}

    def zero_grad(self, set_to_none=True):
        for o in self.parts:
            o.zero_grad(set_to_none)

    def step(self, closure=None):
        for o in self.parts:
            o.step()


MUON_PARITY = [
    ("default", dict(lr=0.02), dict(lr=3e-3)),
    (
        "plain-rms-3steps",
        dict(lr=0.01, momentum=0.9, nesterov=False, adjust_lr_fn="match_rms_adamw", ns_steps=3),
        dict(lr=2e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
    ),
    ("no-decay", dict(lr=0.03, weight_decay=0.0, adjust_lr_fn="original"), dict(lr=1e-3)),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("muon_kw", "adamw_kw"), [c[1:] for c in MUON_PARITY],
                         ids=[c[0] for c in MUON_PARITY])  # fmt: skip
def test_muon_matches_torch_muon_and_adamw(muon_kw, adamw_kw, dtype):
    """200 steps of the digits MLP: descentlab's Muon over all parameters against torch's
    Muon over the matrices plus torch's AdamW over the biases (its fallback)."""
    ref = digits_mlp(dtype)
    ours = copy.deepcopy(ref)
    w, b = _split(ref)
    both = _Both(torch.optim.Muon(w, **muon_kw), torch.optim.AdamW(b, foreach=False, **adamw_kw))
    fallback = {f"adamw_{k}": v for k, v in adamw_kw.items()}
    fallback.setdefault("adamw_weight_decay", 0.01)  # torch's AdamW default
    mine = _quiet(optim.Muon, ours.parameters(), **muon_kw, **fallback)
    idx = batches(200)
    train(ref, both, idx, dtype)
    train(ours, mine, idx, dtype)
    worst, moved = 0.0, 0.0
    start = digits_mlp(dtype)
    for p, q, s in zip(ours.parameters(), ref.parameters(), start.parameters(), strict=True):
        scale = q.detach().abs().max().clamp_min(1e-12)
        worst = max(worst, float((p - q).detach().abs().max() / scale))
        moved = max(moved, float((q - s).detach().abs().max()))
    assert moved > 1e-2, "the reference did not train"
    assert worst <= {torch.float64: 1e-6, torch.float32: 1e-5}[dtype], worst


def _ns_loop(m, coefficients, steps):
    """Newton-Schulz from its definition: X <- a X + b (X X^T) X + c (X X^T)^2 X on the wide
    orientation, X_0 = M / ||M||_F (float64, no clamp: the matrices here are far from 0)."""
    a, b, c = coefficients
    tall = m.shape[0] > m.shape[1]
    x = m.T if tall else m
    x = x / torch.sqrt((x * x).sum())
    for _ in range(steps):
        s = x @ x.T
        x = a * x + b * (s @ x) + c * (s @ (s @ x))
    return x.T if tall else x


def test_muon_nesterov_in_float64_matches_the_equations():
    """torch's Nesterov form (not Optax's bias-corrected one) with the iteration in float64:
    B = mu B + (1 - mu) g, direction (1 - mu) g + mu B, decay then the scaled step."""
    g = torch.Generator().manual_seed(3)
    w0 = torch.randn(6, 4, generator=g, dtype=torch.float64)
    target = torch.randn(6, 4, generator=g, dtype=torch.float64)
    lr, mu, wd, coef = 0.02, 0.9, 0.05, (3.4445, -4.7750, 2.0315)

    def grad(w):
        return 2 * (w - target) + 0.3 * w**3

    w = w0.clone().requires_grad_()
    opt = _quiet(optim.Muon, [w], lr=lr, momentum=mu, weight_decay=wd, ns_dtype=None)
    ref, buf = w0.clone(), torch.zeros_like(w0)
    for _ in range(100):
        opt.zero_grad()
        w.grad = grad(w.detach())
        opt.step()
        gr = grad(ref)
        buf = mu * buf + (1 - mu) * gr
        direction = (1 - mu) * gr + mu * buf
        ref = ref * (1 - lr * wd) - lr * math.sqrt(6 / 4) * _ns_loop(direction, coef, 5)
    assert float((w.detach() - ref).abs().max() / ref.abs().max()) <= 1e-10


def test_muon_refuses_what_torch_refuses():
    w = [torch.nn.Parameter(torch.ones(3, 2))]
    with pytest.raises(ValueError, match=r"lr must be a number >= 0\.0, got -0\.1"):
        optim.Muon(w, lr=-0.1, fused=False)
    with pytest.raises(ValueError, match=r"adjust_lr_fn must be one of .*, got 'bad'"):
        optim.Muon(w, adjust_lr_fn="bad", fused=False)
    with pytest.raises(ValueError, match=r"ns_steps must be an integer in \[0, 99\], got 100"):
        optim.Muon(w, ns_steps=100, fused=False)
    with pytest.raises(TypeError, match=r"ns_coefficients must be a tuple of three numbers"):
        optim.Muon(w, ns_coefficients=(1.0, 2.0), fused=False)
    with pytest.raises(
        TypeError, match=r"ns_dtype must be a floating torch.dtype \(or its name\) or None"
    ):
        optim.Muon(w, ns_dtype=torch.int32, fused=False)
    with pytest.raises(ValueError, match=r"adamw_betas|betas\[1\] must be"):
        optim.Muon(w, adamw_betas=(0.9, 1.5), fused=False)


# ------------------------------------------------------------------ Schedule-Free


def test_schedule_free_reference_form_matches_the_paper_loop():
    """``bias_correction="lr"`` with a warmup schedule on lr: the reference PyTorch code's
    update, y <- lerp(y, z, c) + lr_t (b1 (1 - c) - 1) g_hat, z <- z - lr_t g_hat, with
    lr_t = lr(t) sqrt(1 - b2^t), weight lr_max^r, written out in float64."""
    a = torch.tensor([[2.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
    y0 = torch.tensor([1.5, -2.0], dtype=torch.float64)
    b1, b2, eps, wd, r, base, warm = 0.9, 0.99, 1e-8, 0.01, 2.0, 0.05, 10
    sched = lambda t: base * min(1.0, (t + 1) / warm)  # noqa: E731  (t counts from 0)
    w = y0.clone().requires_grad_()
    opt = _quiet(optim.ScheduleFreeAdamW, [w], lr=sched, betas=(b1, b2), eps=eps,
                 weight_decay=wd, weight_lr_power=r, bias_correction="lr")  # fmt: skip
    y, z, v = y0.clone(), y0.clone(), torch.zeros(2, dtype=torch.float64)
    lr_max = weight_sum = 0.0
    for k in range(200):
        opt.zero_grad()
        (0.5 * w @ a @ w).backward()
        opt.step()
        g = a @ y
        lr_t = sched(k) * math.sqrt(1 - b2 ** (k + 1))
        lr_max = max(lr_max, lr_t)
        weight = lr_max**r
        weight_sum += weight
        c = weight / weight_sum
        v = b2 * v + (1 - b2) * g * g
        g_hat = g / (torch.sqrt(v) + eps) + wd * y
        y = (1 - c) * y + c * z + lr_t * (b1 * (1 - c) - 1) * g_hat
        z = z - lr_t * g_hat
    assert float((w.detach() - y).abs().max() / y.abs().max()) <= 1e-10
    opt.eval()  # x = (y - (1 - b1) z) / b1
    x = (y - (1 - b1) * z) / b1
    assert float((w.detach() - x).abs().max() / x.abs().max()) <= 1e-10
    opt.train()
    assert float((w.detach() - y).abs().max() / y.abs().max()) <= 1e-10


def test_schedule_free_refuses_steps_in_eval_mode():
    w = torch.nn.Parameter(torch.ones(2))
    opt = _quiet(optim.ScheduleFreeAdamW, [w])
    (w * w).sum().backward()
    opt.step()
    opt.eval()
    with pytest.raises(RuntimeError, match="eval mode"):
        opt.step()


# ------------------------------------------------------------------ SAM


def test_sam_asam_matches_the_equations():
    """ASAM (adaptive=True) around SGD with momentum, two param groups sharing one norm:
    eps = rho |w|^2 g / || |w| g ||, the base step with the gradient at w + eps."""
    a = torch.tensor([[1.0, 0.2, 0.0], [0.2, 2.0, 0.1], [0.0, 0.1, 0.7]], dtype=torch.float64)
    u0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    v0 = torch.tensor([0.3, 0.8], dtype=torch.float64)
    loss = lambda u, v: 0.5 * u @ a @ u + (v**4).sum() + (u[:2] * v).sum()  # noqa: E731
    u, v = u0.clone().requires_grad_(), v0.clone().requires_grad_()
    opt = _quiet(optim.SAM, [{"params": [u]}, {"params": [v], "lr": 0.02}], base="sgd",
                 rho=0.1, adaptive=True, lr=0.05, momentum=0.9)  # fmt: skip

    def closure():
        opt.zero_grad()
        value = loss(u, v)
        value.backward()
        return value

    ref = [u0.clone(), v0.clone()]
    bufs = [None, None]
    for _ in range(60):
        opt.step(closure)
        x = [t.clone().requires_grad_() for t in ref]
        gs = torch.autograd.grad(loss(*x), x)
        norm = torch.sqrt(sum(((t.abs() * g) ** 2).sum() for t, g in zip(ref, gs, strict=True)))
        shifted = [(t + 0.1 * t.abs() ** 2 * g / norm).requires_grad_()
                   for t, g in zip(ref, gs, strict=True)]  # fmt: skip
        gs = torch.autograd.grad(loss(*shifted), shifted)
        for i, (lr, g) in enumerate(zip((0.05, 0.02), gs, strict=True)):
            bufs[i] = g.clone() if bufs[i] is None else 0.9 * bufs[i] + g
            ref[i] = ref[i] - lr * bufs[i]
    for got, want in zip((u, v), ref, strict=True):
        assert float((got.detach() - want).abs().max() / want.abs().max()) <= 1e-10


def test_sam_needs_a_closure():
    w = torch.nn.Parameter(torch.ones(2))
    opt = _quiet(optim.SAM, [w], lr=0.1)
    with pytest.raises(ValueError, match=r"needs step\(closure\)"):
        opt.step()


# ------------------------------------------------------------------ refusals, records, state


BAD = [
    ("lion", dict(lr=-1.0), ValueError, r"lr must be a number >= 0\.0, got -1\.0"),
    (
        "lion",
        dict(betas=(0.9, 1.0)),
        ValueError,
        r"betas\[1\] must be a number in \[0\.0, 1\.0\), got 1\.0",
    ),
    ("lion", dict(weight_decay="x"), TypeError, r"weight_decay must be a number >= 0\.0, got 'x'"),
    (
        "lookahead",
        dict(sync_period=0),
        ValueError,
        r"sync_period must be a positive integer, got 0",
    ),
    ("lookahead", dict(sync_period=2.5), TypeError, r"sync_period must be a positive integer"),
    ("lookahead", dict(slow_step_size=1.5), ValueError, r"slow_step_size must be .*got 1.5"),
    ("lookahead", dict(base="nope"), ValueError, r"base must be one of .*got 'nope'"),
    ("lookahead", dict(lr=-0.1), ValueError, r"lr must be a number >= 0\.0, got -0\.1"),
    ("sam", dict(rho=-0.1), ValueError, r"rho must be a number >= 0\.0, got -0\.1"),
    ("sam", dict(adaptive="yes"), TypeError, r"adaptive must be True or False, got 'yes'"),
    ("sam", dict(momentum=1.5), ValueError, r"momentum must be .*got 1.5"),
    (
        "sfadamw",
        dict(betas=(0.0, 0.999)),
        ValueError,
        r"betas\[0\] must be a number in \(0\.0, 1\.0\), got 0\.0",
    ),
    (
        "sfadamw",
        dict(weight_lr_power=-1.0),
        ValueError,
        r"weight_lr_power must be a number >= 0\.0, got -1\.0",
    ),
    ("sfadamw", dict(bias_correction="x"), ValueError, r"bias_correction must be one of"),
    (
        "adafactor",
        dict(beta2_decay=0.5),
        ValueError,
        r"beta2_decay must be a number <= 0\.0, got 0\.5",
    ),
    ("adafactor", dict(d=0.5), ValueError, r"d must be a number >= 1\.0, got 0\.5"),
    (
        "adafactor",
        dict(eps=(None, -1.0)),
        ValueError,
        r"eps\[1\] must be a number >= 0\.0, got -1\.0",
    ),
    ("adafactor", dict(eps=1e-3), TypeError, r"eps must be a pair \(eps1 or None, eps2\)"),
    (
        "muon",
        dict(momentum=-0.5),
        ValueError,
        r"momentum must be a number in \[0\.0, 1\.0\), got -0\.5",
    ),
    (
        "muon",
        dict(weight_decay=-1.0),
        ValueError,
        r"weight_decay must be a number >= 0\.0, got -1\.0",
    ),
]


@pytest.mark.parametrize(("name", "kw", "exc", "message"), BAD,
                         ids=[f"{b[0]}-{next(iter(b[1]))}" for b in BAD])  # fmt: skip
def test_bad_hyperparameters_are_refused_by_name(name, kw, exc, message):
    w = torch.nn.Parameter(torch.ones(3, 2))
    before = w.detach().clone()
    with pytest.raises(exc, match=message):
        _quiet(optim.get(name), [w], **kw)
    assert torch.equal(w.detach(), before)


def _digits_closure(model, opt, ix):
    x, y = digits_tensors()
    x = x.to(torch.float64)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[ix]), y[ix])
        loss.backward()
        return loss

    return closure


@pytest.mark.parametrize("name", NEW)
def test_state_dict_round_trip_continues_identically(name):
    """Five steps, a state dict, a fresh optimizer that loads it: five more steps land
    exactly where ten uninterrupted steps do."""
    idx = batches(10, seed=1)
    straight = digits_mlp(torch.float64)
    resumed = copy.deepcopy(straight)
    kw = {"lr": 1e-2}
    a = _quiet(optim.get(name), straight.parameters(), **kw)
    for ix in idx:
        a.step(_digits_closure(straight, a, ix))
    b = _quiet(optim.get(name), resumed.parameters(), **kw)
    for ix in idx[:5]:
        b.step(_digits_closure(resumed, b, ix))
    saved = copy.deepcopy(b.state_dict())
    c = _quiet(optim.get(name), resumed.parameters(), **kw)
    c.load_state_dict(saved)
    for ix in idx[5:]:
        c.step(_digits_closure(resumed, c, ix))
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
    assert any(not torch.equal(p, q)
               for p, q in zip(straight.parameters(), digits_mlp(torch.float64).parameters(),
                               strict=True))  # fmt: skip


@pytest.mark.parametrize("name", NEW)
def test_record_is_complete_and_named(name):
    rec = optim.record(name)
    assert rec.factory is optim.get(name)
    assert rec.display and rec.color.startswith("#") and 2015 <= rec.year <= 2025
    lo, hi = rec.lr_range
    assert 0 < lo < hi
    assert name in optim.NAMES


@pytest.mark.parametrize(
    ("cls", "rule"),
    [(optim.Adafactor, optim.scale_by_adafactor), (optim.Muon, optim.scale_by_muon)],
)
def test_eager_only_optimizers_run_eagerly_by_default_without_a_warning(cls, rule):
    # Their default is to run eagerly: a warning would ask the user to act on nothing. A
    # chain of one's own with the same rule still says so once.

    _announce.forget("eager")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt = cls([torch.nn.Parameter(torch.ones(2, 2))])
    assert opt.fused is None
    with pytest.raises(ValueError, match="no fused form"):
        cls([torch.nn.Parameter(torch.ones(2, 2))], fused=True)
    with pytest.warns(RuntimeWarning, match=f"{rule.name} has no fused form"):
        optim.Optimizer([torch.nn.Parameter(torch.ones(2, 2))],
                        optim.chain(rule()))  # fmt: skip


@pytest.mark.skipif(not optim.fused_available(), reason="no C++ compiler")
@pytest.mark.parametrize("name", ["lion", "lookahead", "sfadamw"])
def test_fused_matches_eager_in_float32(name):
    """Lion, Lookahead (around Adam) and Schedule-Free AdamW have fused forms: 300 float32
    steps of the digits MLP on both backends agree to float rounding."""
    ref = digits_mlp(torch.float32)
    ours = copy.deepcopy(ref)
    idx = batches(300)
    train(ref, optim.get(name)(ref.parameters(), lr=1e-3, fused=False), idx, torch.float32)
    train(ours, optim.get(name)(ours.parameters(), lr=1e-3, fused=True), idx, torch.float32)
    for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
        assert float((p - q).detach().abs().max() / q.detach().abs().max()) <= 1e-5


@pytest.mark.parametrize("name", ["Adafactor", "Muon"])
def test_a_torch_state_dict_loads_and_continues_as_torch_does(name):
    """Five steps of torch's optimizer, its state dict loaded into descentlab's namesake:
    five more steps land where torch's own five more do (matrices only, torch's Muon)."""
    g = torch.Generator().manual_seed(5)
    w0 = torch.randn(6, 4, generator=g, dtype=torch.float64)
    x = torch.randn(4, 8, generator=g, dtype=torch.float64)
    kw = {"lr": 0.02} if name == "Muon" else {"lr": 0.05, "weight_decay": 0.01}

    def run(opt, w, steps):
        for _ in range(steps):
            opt.zero_grad()
            (torch.tanh(w @ x) ** 2).sum().backward()
            opt.step()

    ref = w0.clone().requires_grad_()
    torch_opt = getattr(torch.optim, name)([ref], **kw)
    run(torch_opt, ref, 5)
    ours = ref.detach().clone().requires_grad_()
    mine = _quiet(getattr(optim, name), [ours], **kw)
    mine.load_state_dict(copy.deepcopy(torch_opt.state_dict()))
    run(torch_opt, ref, 5)
    run(mine, ours, 5)
    assert float((ours - ref).detach().abs().max() / ref.detach().abs().max()) <= 1e-12


@pytest.mark.parametrize("name", NEW)
def test_runs_on_a_landscape_by_name(name):
    """Each new optimizer races on the saddle by name at its record's demonstration rate and
    leaves the saddle point towards a minimum (f = -1 there; the start is at f = 3.24)."""
    from descentlab.problems import landscapes, trajectories

    f = landscapes.get("saddle")
    lr = optim.record(name).lr_on(f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tr = trajectories.run(f, name, starts=[-1.8, 0.001], lr=lr, steps=150)
    assert not bool(tr.diverged.any())
    assert float(tr.losses[0, -1]) < -0.5, float(tr.losses[0, -1])


def test_compare_runs_the_new_optimizers_by_name(tmp_path, capsys):
    """``descentlab compare --optimizers lion,lookahead,sam,sfadamw,adafactor,muon`` on a
    tiny problem: every optimizer is tuned, run and reported."""
    from descentlab.cli import main

    argv = [
        "compare", "--problem", "moons", "--problem-option", "n_samples=200", "--model", "mlp",
        "--model-option", "hidden=4", "--optimizers", ",".join(NEW), "--batch-size", "16",
        "--steps", "6", "--tune-steps", "4", "--lr-trials", "2", "--seeds", "1",
        "--tune-seeds", "1", "--no-refine", "--landscapes", "none", "--no-progress",
        "--workers", "1", "--runs-dir", str(tmp_path), "--name", "modern", "--report",
    ]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert main(argv) == 0
    out = capsys.readouterr().out
    for name in NEW:
        assert optim.record(name).display in out or name in out, name
    assert (tmp_path / "modern" / "report.html").exists()
