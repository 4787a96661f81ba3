"""descentlab.schedules against torch.optim.lr_scheduler (driving a real torch.optim.SGD/Adam),
the lectures' equations, closed-form partial sums and float64 reference loops."""

from __future__ import annotations

import io
import math
import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.special
import torch
from torch.optim import lr_scheduler as tls

import descentlab.schedules as S
from descentlab.book import convergence as C
from descentlab.book import decays as D


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # tiny float64 tensors: with 2 OpenMP threads on a busy 2-core machine, torch.tanh on 512
    # doubles measured 6.7 ms instead of 4 us (thread hand-off), which dominated these tests
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


N_STEPS = 1000
GROUP_LRS = (0.1, 0.03, 0.7)
RTOL = 1e-12


# module-level functions (picklable) used by lambda/multiplicative schedules
def wiggle(t: int) -> float:
    return (1.0 + 0.1 * math.sin(0.37 * t)) / (1.0 + 0.05 * t)


def slow(t: int) -> float:
    return 0.99**t


def every_third(t: int) -> float:
    return 0.98 if t % 3 == 0 else 0.999


def harmonic(t: int) -> float:
    return 0.5 / (t + 1)


# ---------------------------------------------------------------------------------------------
# harness: torch's scheduler on one optimizer, ours on an identical one; record group values


def sgd(lrs=GROUP_LRS, momentum=0.0):
    groups = [
        {"params": [torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))], "lr": lr}
        for lr in lrs
    ]
    return torch.optim.SGD(groups, lr=0.1, momentum=momentum)


def sgd_momentum():
    return sgd(momentum=0.9)


def adam():
    groups = [
        {"params": [torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))], "lr": lr}
        for lr in GROUP_LRS
    ]
    return torch.optim.Adam(groups, lr=0.1, betas=(0.9, 0.999))


def read(group, key):
    m = re.match(r"^(\w+)(?:\[(\d+)\])?$", key)
    v = group[m.group(1)]
    return float(v if m.group(2) is None else v[int(m.group(2))])


def record(opt, keys):
    return [[read(g, k) for k in keys] for g in opt.param_groups]


def torch_trace(make, keys=("lr",), make_opt=sgd, losses=None, n=N_STEPS):
    opt = make_opt()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = make(opt)
        out = [record(opt, keys)]
        for t in range(n):
            opt.step()
            if losses is None:
                sched.step()
            else:
                sched.step(losses[t])
            out.append(record(opt, keys))
    return np.array(out)


def our_trace(spec, keys=("lr",), make_opt=sgd, losses=None, n=N_STEPS):
    opt = make_opt()
    sched = S.Scheduler(opt, spec)
    out = [record(opt, keys)]
    for t in range(n):
        opt.step()
        sched.step(None if losses is None else losses[t])
        out.append(record(opt, keys))
    return np.array(out)


def seq(opt, parts, milestones):
    return tls.SequentialLR(opt, [p(opt) for p in parts], milestones)


# id, torch scheduler factory, our spec, recorded keys, optimizer factory
TORCH_TABLE = [
    ("StepLR", lambda o: tls.StepLR(o, 30, 0.5), {"lr": S.step(30, 0.5)}),
    ("StepLR-7", lambda o: tls.StepLR(o, 7, 0.93), {"lr": S.step(7, 0.93)}),
    (
        "MultiStepLR",
        lambda o: tls.MultiStepLR(o, [250, 100, 250, 700], 0.3),
        {"lr": S.multistep([250, 100, 250, 700], 0.3)},
    ),
    ("ConstantLR", lambda o: tls.ConstantLR(o, 0.25, 120), {"lr": S.constant_factor(0.25, 120)}),
    ("ConstantLR-default", lambda o: tls.ConstantLR(o), {"lr": S.constant_factor()}),
    ("LinearLR-up", lambda o: tls.LinearLR(o, 0.1, 1.0, 400), {"lr": S.linear(0.1, 1.0, 400)}),
    ("LinearLR-down", lambda o: tls.LinearLR(o, 1.0, 0.05, 600), {"lr": S.linear(1.0, 0.05, 600)}),
    ("LinearLR-default", lambda o: tls.LinearLR(o), {"lr": S.linear()}),
    ("ExponentialLR", lambda o: tls.ExponentialLR(o, 0.995), {"lr": S.exponential(0.995)}),
    ("ExponentialLR-fast", lambda o: tls.ExponentialLR(o, 0.97), {"lr": S.exponential(0.97)}),
    ("PolynomialLR", lambda o: tls.PolynomialLR(o, 800, 2.0), {"lr": S.polynomial(800, 2.0)}),
    (
        "PolynomialLR-sqrt",
        lambda o: tls.PolynomialLR(o, 1000, 0.5),
        {"lr": S.polynomial(1000, 0.5)},
    ),
    ("PolynomialLR-default", lambda o: tls.PolynomialLR(o), {"lr": S.polynomial()}),
    (
        "CosineAnnealingLR",
        lambda o: tls.CosineAnnealingLR(o, 300, 1e-4),
        {"lr": S.cosine(300, 1e-4)},
    ),
    ("CosineAnnealingLR-full", lambda o: tls.CosineAnnealingLR(o, 1000), {"lr": S.cosine(1000)}),
    (
        "CosineAnnealingLR-short",
        lambda o: tls.CosineAnnealingLR(o, 7, 0.01),
        {"lr": S.cosine(7, 0.01)},
    ),
    (
        "CosineAnnealingLR-recursive",
        lambda o: tls.CosineAnnealingLR(o, 42, 1e-3),
        {"lr": S.cosine(42, 1e-3, form="recursive")},
    ),
    (
        "CosineAnnealingWarmRestarts",
        lambda o: tls.CosineAnnealingWarmRestarts(o, 50, 2, 1e-5),
        {"lr": S.cosine_restarts(50, 2, 1e-5)},
    ),
    (
        "CosineAnnealingWarmRestarts-Tmult1",
        lambda o: tls.CosineAnnealingWarmRestarts(o, 37),
        {"lr": S.cosine_restarts(37)},
    ),
    (
        "OneCycleLR-cos-momentum",
        lambda o: tls.OneCycleLR(o, max_lr=[0.5, 0.2, 1.0], total_steps=N_STEPS + 1),
        {
            "lr": [S.one_cycle(N_STEPS + 1, m) for m in (0.5, 0.2, 1.0)],
            "momentum": S.one_cycle_momentum(N_STEPS + 1),
        },
        ("lr", "momentum"),
        sgd_momentum,
    ),
    (
        "OneCycleLR-linear-three-phase",
        lambda o: tls.OneCycleLR(
            o,
            max_lr=list(GROUP_LRS),
            total_steps=N_STEPS + 1,
            pct_start=0.25,
            anneal_strategy="linear",
            base_momentum=0.8,
            max_momentum=0.9,
            div_factor=10.0,
            final_div_factor=100.0,
            three_phase=True,
        ),
        {
            "lr": S.one_cycle(N_STEPS + 1, None, 0.25, "linear", 10.0, 100.0, True),
            "momentum": S.one_cycle_momentum(N_STEPS + 1, 0.8, 0.9, 0.25, "linear", True),
        },
        ("lr", "momentum"),
        sgd_momentum,
    ),
    (
        "OneCycleLR-adam-betas",
        lambda o: tls.OneCycleLR(o, max_lr=list(GROUP_LRS), total_steps=N_STEPS + 1, pct_start=0.4),
        {
            "lr": S.one_cycle(N_STEPS + 1, pct_start=0.4),
            "betas[0]": S.one_cycle_momentum(N_STEPS + 1, pct_start=0.4),
        },
        ("lr", "betas[0]", "betas[1]"),
        adam,
    ),
    ("LambdaLR", lambda o: tls.LambdaLR(o, wiggle), {"lr": S.lambda_schedule(wiggle)}),
    (
        "LambdaLR-per-group",
        lambda o: tls.LambdaLR(o, [wiggle, slow, harmonic]),
        {"lr": [S.lambda_schedule(f) for f in (wiggle, slow, harmonic)]},
    ),
    (
        "MultiplicativeLR",
        lambda o: tls.MultiplicativeLR(o, every_third),
        {"lr": S.multiplicative(every_third)},
    ),
    (
        "SequentialLR-warmup-cosine",
        lambda o: seq(
            o,
            [
                lambda q: tls.LinearLR(q, 0.01, 1.0, 100),
                lambda q: tls.CosineAnnealingLR(q, 900, 1e-5),
            ],
            [100],
        ),
        {"lr": S.sequence([S.linear(0.01, 1.0, 100), S.cosine(900, 1e-5)], [100])},
    ),
    (
        "SequentialLR-as-warmup",
        lambda o: seq(
            o,
            [
                lambda q: tls.LinearLR(q, 0.01, 1.0, 100),
                lambda q: tls.CosineAnnealingLR(q, 900, 1e-5),
            ],
            [100],
        ),
        {"lr": S.warmup(S.cosine(900, 1e-5), 100, start_factor=0.01)},
    ),
    (
        "SequentialLR-three",
        lambda o: seq(
            o,
            [
                lambda q: tls.ConstantLR(q, 0.5, 50),
                lambda q: tls.ExponentialLR(q, 0.99),
                lambda q: tls.StepLR(q, 100, 0.5),
            ],
            [50, 400],
        ),
        {
            "lr": S.join(
                [S.constant_factor(0.5, 50), S.exponential(0.99), S.step(100, 0.5)], [50, 400]
            )
        },
    ),
    (
        "SequentialLR-multistep-poly",
        lambda o: seq(
            o,
            [lambda q: tls.MultiStepLR(q, [30, 60], 0.5), lambda q: tls.PolynomialLR(q, 500, 1.5)],
            [300],
        ),
        {"lr": S.sequence([S.multistep([30, 60], 0.5), S.polynomial(500, 1.5)], [300])},
    ),
    # the lectures' schedules are torch's under another name
    ("lecture-step-decay=StepLR", lambda o: tls.StepLR(o, 25, 0.5), {"lr": D.step_decay(25)}),
    (
        "lecture-exp-decay=ExponentialLR",
        lambda o: tls.ExponentialLR(o, math.exp(-0.004)),
        {"lr": D.exp_decay(0.004)},
    ),
]


def _row(row):
    name, make, spec, *rest = row
    keys = rest[0] if rest else ("lr",)
    make_opt = rest[1] if len(rest) > 1 else sgd
    return pytest.param(make, spec, keys, make_opt, id=name)


@pytest.mark.parametrize(("make", "spec", "keys", "make_opt"), [_row(r) for r in TORCH_TABLE])
def test_matches_torch_lr_scheduler(make, spec, keys, make_opt):
    ref = torch_trace(make, keys, make_opt)
    ours = our_trace(spec, keys, make_opt)
    assert ref.shape == (N_STEPS + 1, len(make_opt().param_groups), len(keys))
    # the reference actually moves (a constant trace would make this test vacuous)
    assert np.ptp(ref[:, :, 0], axis=0).min() > 0
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=0)


def test_pure_schedule_values_match_torch_per_group():
    """The Scheduler only evaluates schedule.value(step, base): check the pure function too."""
    sched = S.cosine_restarts(40, 2, 1e-4)
    ref = torch_trace(lambda o: tls.CosineAnnealingWarmRestarts(o, 40, 2, 1e-4))
    for g, lr in enumerate(GROUP_LRS):
        vals = [sched.value(t, lr) for t in range(N_STEPS + 1)]
        np.testing.assert_allclose(vals, ref[:, g, 0], rtol=RTOL, atol=0)
    absolute = S.cosine_restarts(40, 2, 1e-4, base=GROUP_LRS[1])
    np.testing.assert_allclose(
        [absolute(t) for t in range(N_STEPS + 1)], ref[:, 1, 0], rtol=RTOL, atol=0
    )


def test_cosine_recursive_form_is_torch_bit_for_bit_and_closed_form_drift_is_small():
    ref = torch_trace(lambda o: tls.CosineAnnealingLR(o, 13, 2e-3))
    rec = our_trace({"lr": S.cosine(13, 2e-3, form="recursive")})
    closed = our_trace({"lr": S.cosine(13, 2e-3)})
    np.testing.assert_array_equal(rec, ref)
    rel = np.abs(closed - ref) / ref
    assert 0 < rel.max() < 1e-12  # the two forms do round differently, within the bound


# ---------------------------------------------------------------------------------------------
# ReduceLROnPlateau


def plateau_losses(n=N_STEPS, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    loss = np.exp(-t / 250.0) + 0.1 + 0.01 * rng.standard_normal(n)
    loss[400:650] = 0.3  # a flat stretch: exact ties
    return np.round(loss, 3).tolist()


PLATEAU_TABLE = [
    ("default", {}, False),
    ("fast", {"factor": 0.5, "patience": 2}, False),
    (
        "max-rel-cooldown",
        {"mode": "max", "factor": 0.5, "patience": 3, "threshold": 0.01, "cooldown": 5},
        True,
    ),
    (
        "abs-minlr-list",
        {
            "threshold_mode": "abs",
            "threshold": 1e-3,
            "factor": 0.7,
            "patience": 2,
            "min_lr": [1e-3, 1e-4, 0.05],
        },
        False,
    ),
    ("eps-skips-small-changes", {"factor": 0.5, "patience": 1, "eps": 1e-2}, False),
    (
        "max-abs",
        {"mode": "max", "threshold_mode": "abs", "threshold": 0.005, "patience": 4, "cooldown": 2},
        True,
    ),
]


@pytest.mark.parametrize(
    ("options", "negate"), [pytest.param(o, n, id=i) for i, o, n in PLATEAU_TABLE]
)
def test_reduce_on_plateau_matches_torch(options, negate):
    losses = plateau_losses()
    metric = [-x for x in losses] if negate else losses
    ref = torch_trace(lambda o: tls.ReduceLROnPlateau(o, **options), losses=metric)
    ours = our_trace({"lr": S.reduce_on_plateau(**options)}, losses=metric)
    assert np.ptp(ref[:, 0, 0]) > 0  # it did reduce
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=0)


# ---------------------------------------------------------------------------------------------
# lecture schedules against the lectures' equations (numpy, vectorised)

T = np.arange(N_STEPS, dtype=np.float64)
LECTURE_TABLE = [
    ("003-step-decay", D.step_decay(30, a0=0.2), 0.2 * 0.5 ** np.floor(T / 30)),
    ("003-step-decay-0.9", D.step_decay(7, 0.9, 1.0), 0.9 ** np.floor(T / 7)),
    ("003-exp-decay", D.exp_decay(0.01, 0.5), 0.5 * np.exp(-0.01 * T)),
    ("003-1/t-decay", D.inverse_time(0.2, 0.5), 0.5 / (1 + 0.2 * T)),
    ("000-eta/t", D.eta_over_t(0.3), 0.3 / (T + 1)),  # lecture t = step + 1
    ("000-eta/t-t0", D.eta_over_t(0.3, t0=10), 0.3 / (T + 10)),
    ("eta/t-relative", D.eta_over_t(), 1.0 / (T + 1)),
]


@pytest.mark.parametrize(
    ("sched", "expected"), [pytest.param(s, e, id=i) for i, s, e in LECTURE_TABLE]
)
def test_lecture_schedules_follow_the_equations(sched, expected):
    got = np.array([sched(t) for t in range(N_STEPS)])
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0)


def test_relative_schedule_scales_each_group_base():
    opt = sgd()
    sched = S.Scheduler(opt, {"lr": D.inverse_time(0.5)})
    for _ in range(4):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx(
        [lr / 3.0 for lr in GROUP_LRS], rel=1e-15
    )


def test_warmup_and_sequence_follow_their_definitions():
    inner = S.cosine(50, 0.01, base=0.4)
    w = S.warmup(inner, 10, start_value=0.05)
    for t in range(10):
        assert w(t) == pytest.approx(0.05 + (0.4 - 0.05) * t / 10, rel=1e-15)
    for t in range(10, 200):
        assert w(t) == inner(t - 10)
    z = S.warmup(S.constant(2.0), 4)  # default: from zero
    assert [z(t) for t in range(6)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    s = S.sequence([S.constant(1.0), S.exponential(0.5), S.constant(7.0)], [3, 5], base=9.0)
    assert [s(t) for t in range(8)] == [1.0, 1.0, 1.0, 9.0, 4.5, 7.0, 7.0, 7.0]


def test_one_cycle_holds_final_value_past_the_end_and_inherits_max_lr():
    s = S.one_cycle(100)
    assert s.value(99, 2.0) == s.value(100, 2.0) == s.value(10_000, 2.0)
    assert s.value(99, 2.0) == pytest.approx(2.0 / 25 / 1e4, rel=1e-12)
    assert max(s.value(t, 2.0) for t in range(100)) == 2.0


# ---------------------------------------------------------------------------------------------
# any hyperparameter: momentum 0.5 -> 0.99 (seed 003) on torch.optim.SGD


def test_scheduled_momentum_drives_torch_sgd_like_a_reference_loop():
    n, ramp, lr = 40, 25, 0.05
    a = np.array([1.0, 4.0, 9.0])
    w0 = np.array([1.0, -2.0, 0.5])
    w = torch.nn.Parameter(torch.tensor(w0))
    opt = torch.optim.SGD([w], lr=lr, momentum=0.9)
    sched = S.Scheduler(opt, {"momentum": S.linear(0.5, 0.99, ramp, base=1.0)})
    expected_mu = [0.5 + (0.99 - 0.5) * min(t, ramp) / ramp for t in range(n)]
    seen_mu, traj = [], []
    for _ in range(n):
        seen_mu.append(opt.param_groups[0]["momentum"])
        opt.zero_grad()
        (0.5 * (torch.tensor(a) * w * w).sum()).backward()
        opt.step()
        sched.step()
        traj.append(w.detach().numpy().copy())
    np.testing.assert_allclose(seen_mu, expected_mu, rtol=1e-15, atol=0)
    # reference: torch's SGD momentum from its equations, with the scheduled mu_t
    x, buf, ref = w0.copy(), None, []
    for t in range(n):
        g = a * x
        buf = g.copy() if buf is None else expected_mu[t] * buf + g
        x = x - lr * buf
        ref.append(x.copy())
    np.testing.assert_allclose(np.array(traj), np.array(ref), rtol=1e-12, atol=1e-15)
    assert not np.allclose(ref[-1], w0)


def test_betas_index_key_keeps_the_other_element_and_tuple_type():
    opt = adam()
    sched = S.Scheduler(opt, {"betas[1]": S.constant(0.95), "betas[0]": S.linear(1.0, 0.5, 10)})
    for _ in range(10):
        opt.step()
        sched.step()
    for g in opt.param_groups:
        assert isinstance(g["betas"], tuple)
        assert g["betas"] == (0.45, 0.95)


def test_tensor_valued_hyperparameters_are_scheduled_elementwise_in_place():
    lr = torch.tensor([0.1, 0.2, 0.4], dtype=torch.float64)
    groups = [{"params": [torch.nn.Parameter(torch.zeros(3, 2))], "lr": lr}]
    # torch.optim accepts only scalar lrs; the group dict itself is what the Scheduler edits
    opt = torch.optim.SGD(groups[0]["params"], lr=0.1)
    opt.param_groups[0]["lr"] = lr
    sched = S.Scheduler(opt, {"lr": S.exponential(0.5)})
    sched.step()
    sched.step()
    assert opt.param_groups[0]["lr"] is lr
    torch.testing.assert_close(lr, torch.tensor([0.025, 0.05, 0.1], dtype=torch.float64))
    assert sched.value("lr") == [[0.025, 0.05, 0.1]]


def test_per_group_drivers_and_none_leave_groups_alone():
    opt = sgd()
    sched = S.Scheduler(opt, {"lr": [S.constant(1.0), None, S.exponential(0.5)]})
    for _ in range(3):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == [1.0, GROUP_LRS[1], GROUP_LRS[2] / 8]
    assert sched.get_last_lr() == [1.0, None, GROUP_LRS[2] / 8]


def test_works_with_descentlab_optimizers():
    optim = pytest.importorskip("descentlab.optim")
    if not hasattr(optim, "SGD"):
        pytest.skip("descentlab.optim.SGD not available yet")
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    q = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    ours = optim.SGD([p], lr=0.1, momentum=0.9)
    ref = torch.optim.SGD([q], lr=0.1, momentum=0.9)
    spec = {"lr": S.cosine(30, 1e-3), "momentum": S.linear(0.5, 0.99, 20, base=1.0)}
    s1, s2 = S.Scheduler(ours, dict(spec)), S.Scheduler(ref, dict(spec))
    for _ in range(40):
        for w, o, s in ((p, ours, s1), (q, ref, s2)):
            o.zero_grad()
            (w * w * torch.arange(1.0, 4.0, dtype=torch.float64)).sum().backward()
            o.step()
            s.step()
    assert ours.param_groups[0]["momentum"] == 0.99
    torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-15)


def test_bold_driver_rejection_undoes_a_descentlab_adam_step_entirely():
    optim = pytest.importorskip("descentlab.optim")
    if not hasattr(optim, "Adam"):
        pytest.skip("descentlab.optim.Adam not available yet")
    w = torch.nn.Parameter(torch.tensor([1.0, -1.0], dtype=torch.float64))
    opt = optim.Adam([w], lr=0.5)
    sched = S.Scheduler(opt, {"lr": S.bold_driver(reject=True)})
    kept, n_rejected = None, 0
    for _ in range(6):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
        with torch.no_grad():
            sched.step((w * w).sum())
        group = {k: v for k, v in opt.param_groups[0].items() if k not in ("params", "lr")}
        now = (w.detach().clone(), {k: v.clone() for k, v in opt.state[w].items()}, group)
        if sched.last_rejected:
            n_rejected += 1
            assert kept is not None
            assert torch.equal(now[0], kept[0]) and now[2] == kept[2]
            assert all(torch.equal(now[1][k], kept[1][k]) for k in kept[1])
        else:
            kept = now
    assert n_rejected > 0  # lr 0.5 overshoots the minimum: some steps are undone


# ---------------------------------------------------------------------------------------------
# state_dict: 500 straight == 250 + save/load into fresh objects + 250


class TinyNet(torch.nn.Module):
    """tanh(x W1) W2: two parameters in two param groups, few ops per step (fast tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = torch.nn.Parameter(0.5 * torch.randn(5, 8, dtype=torch.float64))
        self.w2 = torch.nn.Parameter(0.5 * torch.randn(8, 1, dtype=torch.float64))

    def forward(self, x):
        return torch.tanh(x @ self.w1) @ self.w2


def _model_and_data():
    torch.manual_seed(0)
    x = torch.randn(64, 5, dtype=torch.float64)
    y = torch.sin(x.sum(1, keepdim=True)) + 0.1 * torch.randn(64, 1, dtype=torch.float64)
    return TinyNet(), x, y


def _sgd_groups(model):
    return torch.optim.SGD(
        [
            {"params": [model.w1], "lr": 0.05, "weight_decay": 1e-3},
            {"params": [model.w2], "lr": 0.02, "weight_decay": 0.0},
        ],
        lr=0.05,
        momentum=0.9,
    )


def _adam_groups(model):
    return torch.optim.Adam([{"params": [model.w1]}, {"params": [model.w2], "lr": 3e-3}], lr=1e-2)


RESUME_TABLE = [
    # id, optimizer, spec, total steps (resumed at half), loss at the updated parameters
    (
        "sgd-cosine-momentum-wd",
        _sgd_groups,
        lambda: {
            "lr": S.warmup(S.cosine(400, 1e-4), 50, start_factor=0.1),
            "momentum": S.linear(0.5, 0.99, 300, base=1.0),
            "weight_decay": [S.exponential(0.99), None],
        },
        500,
        False,
    ),
    (
        "sgd-plateau",
        _sgd_groups,
        lambda: {"lr": S.reduce_on_plateau(factor=0.5, patience=3, threshold=1e-3, cooldown=2)},
        200,
        False,
    ),
    (
        "sgd-bold-driver-reject",
        _sgd_groups,
        lambda: {"lr": S.bold_driver(1.1, 0.5, reject=True), "momentum": S.constant(0.5)},
        200,
        True,
    ),
    (
        "adam-onecycle-betas",
        _adam_groups,
        lambda: {"lr": S.one_cycle(200, pct_start=0.2), "betas[0]": S.one_cycle_momentum(200, 0.8)},
        200,
        False,
    ),
    (
        "adam-multiplicative-recursive-cosine",
        _adam_groups,
        lambda: {
            "lr": S.multiplicative(every_third),
            "eps": S.cosine(70, 1e-9, base=1e-6, form="recursive"),
        },
        200,
        False,
    ),
]


def _train(model, opt, sched, x, y, steps, log, loss_after):
    keys = sched.keys
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        if loss_after:
            with torch.no_grad():
                loss = torch.nn.functional.mse_loss(model(x), y)
        sched.step(loss=loss.detach())
        log.append([[read(g, k) for k in keys] for g in opt.param_groups])


@pytest.mark.parametrize(
    ("make_opt", "make_spec", "n", "loss_after"),
    [pytest.param(*row[1:], id=row[0]) for row in RESUME_TABLE],
)
def test_state_dict_round_trip_resumes_exactly(make_opt, make_spec, n, loss_after):
    model, x, y = _model_and_data()
    opt = make_opt(model)
    sched = S.Scheduler(opt, make_spec())
    straight: list = []
    _train(model, opt, sched, x, y, n, straight, loss_after)

    model2, _, _ = _model_and_data()
    opt2 = make_opt(model2)
    sched2 = S.Scheduler(opt2, make_spec())
    resumed: list = []
    _train(model2, opt2, sched2, x, y, n // 2, resumed, loss_after)
    buf = io.BytesIO()
    torch.save(
        {"model": model2.state_dict(), "opt": opt2.state_dict(), "sched": sched2.state_dict()}, buf
    )
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    model3, _, _ = _model_and_data()
    with torch.no_grad():  # fresh objects with different parameters: everything comes from ckpt
        for p in model3.parameters():
            p.add_(1.0)
    opt3 = make_opt(model3)
    sched3 = S.Scheduler(opt3, make_spec())
    model3.load_state_dict(ckpt["model"])
    opt3.load_state_dict(ckpt["opt"])
    sched3.load_state_dict(ckpt["sched"])
    assert sched3.last_step == n // 2
    _train(model3, opt3, sched3, x, y, n - n // 2, resumed, loss_after)

    assert resumed == straight
    for a, b in zip(model.parameters(), model3.parameters(), strict=True):
        assert torch.equal(a, b)
    # the schedule really changed something over the run
    assert straight[0] != straight[-1]


def test_load_state_dict_rejects_a_mismatched_state_before_changing_anything():
    opt = sgd()
    sched = S.Scheduler(opt, {"lr": S.step(3)})
    other = S.Scheduler(sgd(), {"lr": S.step(3), "momentum": S.constant(0.5)})
    before = [g["lr"] for g in opt.param_groups]
    with pytest.raises(ValueError, match="keys"):
        sched.load_state_dict(other.state_dict())
    with pytest.raises(ValueError, match="state must be"):
        sched.load_state_dict({"last_step": 3})
    assert [g["lr"] for g in opt.param_groups] == before and sched.last_step == 0


# ---------------------------------------------------------------------------------------------
# loss rules: bold driver against a float64 loop written from its definition


def test_bold_driver_with_rejection_matches_reference_loop():
    a = np.array([1.0, 3.0, 12.0])
    w0 = np.array([2.0, -1.0, 0.3])
    lr0, n = 0.2, 60  # 0.2 > 2/12: the stiff coordinate makes the loss rise -> rejections
    w = torch.nn.Parameter(torch.tensor(w0))
    opt = torch.optim.SGD([w], lr=lr0)
    sched = S.Scheduler(opt, {"lr": S.bold_driver(increase=1.1, decrease=0.5, reject=True)})

    def f(v):
        return 0.5 * (torch.tensor(a) * v * v).sum()

    traj, lrs, rejected = [], [], []
    for _ in range(n):
        opt.zero_grad()
        f(w).backward()
        opt.step()
        with torch.no_grad():
            sched.step(f(w))
        traj.append(w.detach().numpy().copy())
        lrs.append(opt.param_groups[0]["lr"])
        rejected.append(sched.last_rejected)

    x, lr, prev, ref_traj, ref_lrs, ref_rej = w0.copy(), lr0, None, [], [], []
    for _ in range(n):
        x_new = x - lr * (a * x)
        loss = 0.5 * float(np.sum(a * x_new * x_new))
        rej = False
        if prev is None:
            prev, x = loss, x_new
        elif loss <= prev:
            prev, x, lr = loss, x_new, lr * 1.1
        else:
            lr, rej = lr * 0.5, True
        ref_traj.append(x.copy())
        ref_lrs.append(lr)
        ref_rej.append(rej)
    assert rejected == ref_rej and any(ref_rej) and not all(ref_rej[1:])
    np.testing.assert_allclose(lrs, ref_lrs, rtol=1e-15, atol=0)
    np.testing.assert_allclose(np.array(traj), np.array(ref_traj), rtol=1e-12, atol=1e-300)


def test_bold_driver_rejection_restores_optimizer_state():
    w = torch.nn.Parameter(torch.tensor([1.0, -1.0], dtype=torch.float64))
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    sched = S.Scheduler(opt, {"lr": S.bold_driver(reject=True)})
    for target, loss in ((0.0, 1.0), (0.0, 0.5)):  # two accepted steps
        opt.zero_grad()
        (w - target).square().sum().backward()
        opt.step()
        sched.step(loss)
    kept_w = w.detach().clone()
    kept_buf = opt.state[w]["momentum_buffer"].clone()
    opt.zero_grad()
    (w - 5.0).square().sum().backward()
    opt.step()
    assert not torch.equal(w, kept_w)
    sched.step(0.9)  # worse than 0.5: rejected
    assert sched.last_rejected
    assert torch.equal(w, kept_w)
    assert torch.equal(opt.state[w]["momentum_buffer"], kept_buf)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 1.05 * 0.5, rel=1e-15)


def test_bold_driver_without_rejection_and_bounds():
    r = S.bold_driver(increase=2.0, decrease=0.25, min_lr=0.1, max_lr=3.0)
    vals, out = [1.0], []
    for loss in (5.0, 4.0, 3.0, float("nan"), 3.5, 3.4, 9.0, 9.5):
        vals = r.step(loss, vals)
        out.append(vals[0])
    # the first loss is only recorded; 3.0 * 2 is capped at 3.0; NaN counts as worse but is not
    # remembered (3.5 is compared with 3.0); 0.375 * 0.25 is floored at 0.1
    assert out == [1.0, 2.0, 3.0, 0.75, 0.1875, 0.375, 0.1, 0.1]
    assert r.accepted and r.prev_loss == 9.5
    assert (r.num_steps, r.num_increases, r.num_decreases) == (8, 3, 4)


def test_building_a_scheduler_resets_a_reused_rule():
    rule = S.reduce_on_plateau(patience=0, factor=0.5)
    first = S.Scheduler(sgd(), {"lr": rule})
    for loss in (1.0, 2.0, 3.0):
        first.step(loss)
    assert rule.num_reductions == 2 and rule.best == 1.0
    opt = sgd()
    second = S.Scheduler(opt, {"lr": rule})
    assert rule.num_reductions == 0 and rule.best == math.inf
    second.step(5.0)  # a first loss is an improvement on a fresh rule: no reduction
    assert [g["lr"] for g in opt.param_groups] == list(GROUP_LRS)


def test_loss_rule_requires_a_loss():
    opt = sgd()
    sched = S.Scheduler(opt, {"lr": S.reduce_on_plateau()})
    with pytest.raises(ValueError, match="loss must be given"):
        sched.step()
    with pytest.raises(ValueError, match="loss must be a scalar"):
        sched.step(torch.ones(2))
    assert sched.last_step == 0


# ---------------------------------------------------------------------------------------------
# Robbins-Monro


RM_TABLE = [
    # id, schedule, meets, sum eta diverges, sum eta^2 converges
    ("eta/t", D.eta_over_t(0.5), True, True, True),
    ("a0/(1+kt)", D.inverse_time(0.1, 1.0), True, True, True),
    ("constant", S.constant(0.1), False, True, False),
    ("a0*exp(-kt)", D.exp_decay(0.01, 1.0), False, False, True),
    ("1/sqrt(t)", S.from_function(lambda t: (t + 1) ** -0.5), False, True, False),
    ("t^-0.75", S.from_function(lambda t: (t + 1) ** -0.75), True, True, True),
    ("t^-1.5", S.from_function(lambda t: (t + 1) ** -1.5), False, False, True),
    ("step-decay", D.step_decay(1000, a0=1.0), False, False, True),
    ("cosine (periodic)", S.cosine(1000, base=1.0), False, True, False),
    ("polynomial (reaches 0)", S.polynomial(5000, base=1.0), False, False, True),
]


@pytest.mark.parametrize(
    ("sched", "meets", "diverges", "converges"),
    [pytest.param(s, m, d, c, id=i) for i, s, m, d, c in RM_TABLE],
)
def test_robbins_monro_verdicts(sched, meets, diverges, converges):
    r = C.robbins_monro(sched, 50_000)
    assert (r.meets, r.eta_sum_diverges, r.eta_sq_sum_converges) == (meets, diverges, converges)
    assert ("conditions met" in r.explanation) == meets
    assert r.sum_eta.shape == r.sum_eta_sq.shape == (50_000,)


def test_robbins_monro_partial_sums_match_closed_forms():
    n, eta = 20_000, 0.5
    k = np.arange(1, n + 1)
    r = C.robbins_monro(D.eta_over_t(eta), n)
    harmonic_n = scipy.special.digamma(k + 1) + np.euler_gamma  # H_k
    np.testing.assert_allclose(r.sum_eta, eta * harmonic_n, rtol=1e-12)
    trigamma = scipy.special.polygamma(1, k + 1)  # sum_{j<=k} 1/j^2 = pi^2/6 - psi1(k+1)
    np.testing.assert_allclose(r.sum_eta_sq, eta**2 * (np.pi**2 / 6 - trigamma), rtol=1e-12)
    assert r.eta_exponent == pytest.approx(0.0, abs=0.01)  # harmonic: flat increments
    assert r.eta_sq_exponent == pytest.approx(-1.0, abs=0.01)
    e = C.robbins_monro(D.exp_decay(1e-3, 2.0), n)
    q = math.exp(-1e-3)
    np.testing.assert_allclose(e.sum_eta, 2.0 * (1 - q**k) / (1 - q), rtol=1e-10)
    c = C.robbins_monro(S.constant(0.1), 1000)
    np.testing.assert_allclose(c.sum_eta_sq, 0.01 * np.arange(1, 1001), rtol=1e-12)
    assert c.eta_exponent == pytest.approx(1.0, abs=1e-9)


def test_robbins_monro_rejects_loss_rules_and_negative_values():
    with pytest.raises(ValueError, match="loss rule"):
        C.robbins_monro(S.bold_driver(), 1000)
    with pytest.raises(ValueError, match=r"got -1\.0 at step 0"):
        C.robbins_monro(S.from_function(lambda t: -1.0), 1000)


# ---------------------------------------------------------------------------------------------
# validation: one table of invalid arguments; each names the parameter and the value

INVALID = [
    (lambda: S.step(0), "step_size", "0"),
    (lambda: S.step(-3), "step_size", "-3"),
    (lambda: S.step(2.5), "step_size", "2.5"),
    (lambda: S.step(10, gamma=0), "gamma", "0"),
    (lambda: S.step(10, gamma=-0.5), "gamma", "-0.5"),
    (lambda: S.step(10, base=-1.0), "base", "-1.0"),
    (lambda: S.multistep([10, -1]), "milestones[1]", "-1"),
    (lambda: S.multistep(5), "milestones", "5"),
    (lambda: S.constant(-1.0), "value", "-1.0"),
    (lambda: S.lambda_schedule(5), "fn", "5"),
    (lambda: S.multiplicative("x"), "fn", "'x'"),
    (lambda: S.constant_factor(1.5), "factor", "1.5"),
    (lambda: S.constant_factor(-0.1), "factor", "-0.1"),
    (lambda: S.constant_factor(0.5, 0), "total_iters", "0"),
    (lambda: S.linear(-0.1), "start_factor", "-0.1"),
    (lambda: S.linear(0.5, -1.0), "end_factor", "-1.0"),
    (lambda: S.linear(total_iters=0), "total_iters", "0"),
    (lambda: S.exponential(0.0), "gamma", "0.0"),
    (lambda: S.exponential(float("nan")), "gamma", "nan"),
    (lambda: S.polynomial(0), "total_iters", "0"),
    (lambda: S.polynomial(10, power=-1.0), "power", "-1.0"),
    (lambda: S.cosine(0), "T_max", "0"),
    (lambda: S.cosine(-5), "T_max", "-5"),
    (lambda: S.cosine(10, eta_min=-1.0), "eta_min", "-1.0"),
    (lambda: S.cosine(10, form="bogus"), "form", "'bogus'"),
    (lambda: S.cosine_restarts(0), "T_0", "0"),
    (lambda: S.cosine_restarts(10, T_mult=0), "T_mult", "0"),
    (lambda: S.cosine_restarts(10, eta_min=-0.1), "eta_min", "-0.1"),
    (lambda: S.one_cycle(0), "total_steps", "0"),
    (lambda: S.one_cycle(100, max_lr=-1.0), "max_lr", "-1.0"),
    (lambda: S.one_cycle(100, pct_start=1.5), "pct_start", "1.5"),
    (lambda: S.one_cycle(100, anneal_strategy="cosine"), "anneal_strategy", "'cosine'"),
    (lambda: S.one_cycle(100, div_factor=0.0), "div_factor", "0.0"),
    (lambda: S.one_cycle(100, final_div_factor=-1.0), "final_div_factor", "-1.0"),
    (lambda: S.one_cycle(3, pct_start=0.3), "pct_start", "0.3"),
    (lambda: S.one_cycle(100, three_phase="yes"), "three_phase", "'yes'"),
    (lambda: S.one_cycle_momentum(100, base_momentum=1.2), "base_momentum", "1.2"),
    (lambda: S.one_cycle_momentum(100, max_momentum=-0.1), "max_momentum", "-0.1"),
    (lambda: D.step_decay(0), "every", "0"),
    (lambda: D.step_decay(5, drop=1.5), "drop", "1.5"),
    (lambda: D.exp_decay(-1.0), "k", "-1.0"),
    (lambda: D.inverse_time(-0.5), "k", "-0.5"),
    (lambda: D.eta_over_t(-1.0), "eta", "-1.0"),
    (lambda: D.eta_over_t(1.0, t0=0), "t0", "0"),
    (lambda: S.warmup(S.constant(0.1), 0), "steps", "0"),
    (lambda: S.warmup(S.constant(0.1), 5, start_value=-1.0), "start_value", "-1.0"),
    (lambda: S.warmup(S.constant(0.1), 5, start_factor=-2.0), "start_factor", "-2.0"),
    (lambda: S.warmup(S.constant(0.1), 5, 0.1, 0.5), "start_factor", "0.5"),
    (lambda: S.warmup(42, 5), "schedule", "42"),
    (lambda: S.sequence([S.constant(), S.constant()], [0]), "boundaries[0]", "0"),
    (lambda: S.sequence([S.constant()] * 3, [10, 5]), "boundaries", "[10, 5]"),
    (lambda: S.sequence([S.constant()] * 2, []), "boundaries", "[]"),
    (lambda: S.sequence([], []), "schedules", "[]"),
    (lambda: S.reduce_on_plateau(mode="avg"), "mode", "'avg'"),
    (lambda: S.reduce_on_plateau(factor=1.0), "factor", "1.0"),
    (lambda: S.reduce_on_plateau(factor=-0.1), "factor", "-0.1"),
    (lambda: S.reduce_on_plateau(patience=-1), "patience", "-1"),
    (lambda: S.reduce_on_plateau(threshold=-1e-4), "threshold", "-0.0001"),
    (lambda: S.reduce_on_plateau(threshold_mode="pct"), "threshold_mode", "'pct'"),
    (lambda: S.reduce_on_plateau(cooldown=-1), "cooldown", "-1"),
    (lambda: S.reduce_on_plateau(min_lr=-1.0), "min_lr", "-1.0"),
    (lambda: S.reduce_on_plateau(min_lr=[0.1, -1.0]), "min_lr[1]", "-1.0"),
    (lambda: S.reduce_on_plateau(eps=-1.0), "eps", "-1.0"),
    (lambda: S.bold_driver(increase=0.9), "increase", "0.9"),
    (lambda: S.bold_driver(decrease=0.0), "decrease", "0.0"),
    (lambda: S.bold_driver(decrease=1.5), "decrease", "1.5"),
    (lambda: S.bold_driver(reject="yes"), "reject", "'yes'"),
    (lambda: S.bold_driver(min_lr=-1.0), "min_lr", "-1.0"),
    (lambda: S.bold_driver(max_lr=0.0), "max_lr", "0.0"),
    (lambda: S.bold_driver(threshold=-1.0), "threshold", "-1.0"),
    (lambda: S.cosine(10)(-1), "step", "-1"),
    (lambda: S.cosine(10)(1.5), "step", "1.5"),
    (lambda: C.robbins_monro(S.constant(0.1), 10), "horizon", "10"),
    (lambda: C.robbins_monro(S.constant(0.1), 1000, tolerance=0.0), "tolerance", "0.0"),
    (lambda: S.Scheduler(sgd(), {"betas[x]": S.constant()}), "schedule key", "'betas[x]'"),
    (lambda: S.Scheduler(sgd(), {"lr": [S.constant()]}), "schedules['lr']", "got 1"),
    (lambda: S.Scheduler(sgd(), {"lr": "cosine"}), "schedules['lr']", "'cosine'"),
    (lambda: S.Scheduler(sgd(), {}), "schedules", "{}"),
    (lambda: S.Scheduler(sgd(), {"momentum[0]": S.constant()}), "momentum[0]", "0.0"),
    (
        lambda: S.Scheduler(sgd(), {"lr": S.reduce_on_plateau(min_lr=[0.1, 0.2])}),
        "min_lr",
        "[0.1, 0.2]",
    ),
]


@pytest.mark.parametrize(
    ("make", "param", "value"), [pytest.param(m, p, v, id=f"{p}={v}") for m, p, v in INVALID]
)
def test_invalid_arguments_raise_value_error_naming_parameter_and_value(make, param, value):
    with pytest.raises(ValueError) as info:
        make()
    msg = str(info.value)
    assert param in msg and value in msg, msg


def test_unknown_hyperparameter_key_raises_key_error_listing_valid_names():
    with pytest.raises(KeyError, match=r"'betas'.*valid names: .*lr.*momentum"):
        S.Scheduler(sgd(), {"betas[0]": S.constant()})


# ---------------------------------------------------------------------------------------------
# pickling, repr, docstring examples

PICKLE_TABLE = [
    S.constant(0.3),
    S.lambda_schedule(wiggle, 0.2),
    S.multiplicative(every_third),
    S.step(7, 0.5),
    S.multistep([3, 9], 0.2, 1.0),
    S.constant_factor(0.5, 4),
    S.linear(0.5, 0.99, 10, base=1.0),
    S.exponential(0.9),
    S.polynomial(20, 2.0),
    S.cosine(13, 0.01, form="recursive"),
    S.cosine_restarts(5, 2, 0.001),
    S.one_cycle(50, 0.4, three_phase=True, pct_start=0.2),
    S.one_cycle_momentum(50),
    D.step_decay(5, a0=0.1),
    D.exp_decay(0.1),
    D.inverse_time(0.1),
    D.eta_over_t(0.5),
    S.from_function(harmonic),
    S.warmup(S.cosine(30), 5, start_value=0.01),
    S.sequence([S.linear(0.1, 1.0, 5), S.exponential(0.9)], [5]),
]


@pytest.mark.parametrize("sched", PICKLE_TABLE, ids=lambda s: type(s).__name__)
def test_schedules_pickle_and_repr(sched):
    steps = [0, 1, 2, 7, 33, 120, 999]
    before = [sched.value(t, 0.7) for t in steps]  # warms recursive caches before pickling
    clone = pickle.loads(pickle.dumps(sched))
    assert [clone.value(t, 0.7) for t in steps] == before
    assert repr(clone) == repr(sched)
    assert repr(sched).startswith(type(sched).__name__ + "(")
    assert isinstance(sched, S.Schedule)


def test_scheduler_repr_and_rule_state_round_trip():
    rule = S.reduce_on_plateau(patience=0)
    for loss in (1.0, 1.0, 2.0):
        rule.step(loss, [0.1])
    clone = S.reduce_on_plateau(patience=0)
    clone.load_state_dict(pickle.loads(pickle.dumps(rule.state_dict())))
    assert clone.state_dict() == rule.state_dict() and rule.num_reductions == 2
    with pytest.raises(ValueError, match="must have keys"):
        clone.load_state_dict({"best": 1.0})
    text = repr(S.Scheduler(sgd(), {"lr": S.cosine(10), "momentum": S.constant(0.9)}))
    assert "CosineAnnealing(T_max=10" in text and "'momentum'" in text


# The docstring examples of every schedules module run as doctests (pytest's
# --doctest-modules over src/, see pyproject.toml).


def test_public_api_is_exported_with_docstrings():
    for name in S.__all__:
        obj = getattr(S, name)
        assert obj.__doc__ and obj.__doc__.strip(), name
