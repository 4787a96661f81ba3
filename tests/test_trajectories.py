"""Batched trajectories: equal to separate runs, divergence, schedules, theory, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from descentlab import optim, schedules
from descentlab.problems import landscapes as L
from descentlab.problems import trajectories as T

# Outcomes computed from training or iterating in float arithmetic: `make test` runs them
# again under ATEN_CPU_CAPABILITY=default and =avx2 (pytest -m arith).
pytestmark = pytest.mark.arith

F64 = torch.float64

# name, descentlab hyper, torch.optim reference class, torch hyper, learning rates
OPTIMIZERS = [
    ("sgd", {}, torch.optim.SGD, {}, [1e-3, 2e-3, 5e-4]),
    ("momentum", {"momentum": 0.9}, torch.optim.SGD, {"momentum": 0.9}, [1e-4, 5e-4, 1e-3]),
    (
        "nesterov",
        {"momentum": 0.8},
        torch.optim.SGD,
        {"momentum": 0.8, "nesterov": True},
        [1e-4, 5e-4, 1e-3],
    ),
    ("adagrad", {}, torch.optim.Adagrad, {}, [0.05, 0.1, 0.3]),
    ("adadelta", {}, torch.optim.Adadelta, {}, [0.5, 1.0, 2.0]),
    ("rmsprop", {"alpha": 0.9}, torch.optim.RMSprop, {"alpha": 0.9}, [1e-3, 1e-2, 3e-2]),
    ("adam", {}, torch.optim.Adam, {}, [1e-2, 3e-2, 1e-1]),
    ("adamw", {"weight_decay": 0.1}, torch.optim.AdamW, {"weight_decay": 0.1}, [1e-2, 5e-2, 0.1]),
    ("nadam", {}, torch.optim.NAdam, {}, [1e-2, 3e-2, 1e-1]),
    ("radam", {}, torch.optim.RAdam, {}, [1e-4, 3e-4, 1e-3]),
]
STARTS = torch.tensor([[-1.2, 1.0], [0.5, -0.5], [1.5, 2.0]], dtype=F64)
STEPS = 60


def _separate(f, make_opt, start, steps, closure_step=False):
    """One run from the equations of use: a (d,) parameter, the optimizer, a plain loop."""
    p = start.clone().requires_grad_(True)
    opt = make_opt([p])
    path = [p.detach().clone()]

    def closure():
        opt.zero_grad()
        loss = f(p)
        loss.backward()
        return loss

    for _ in range(steps):
        if closure_step:
            opt.step(closure)
        else:
            closure()
            opt.step()
        path.append(p.detach().clone())
    return torch.stack(path)


@pytest.mark.parametrize(
    ("name", "hyper", "ref_cls", "ref_hyper", "lrs"), OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS]
)
def test_batched_equals_separate_runs_and_torch(name, hyper, ref_cls, ref_hyper, lrs):
    f = L.get("rosenbrock")
    tr = T.run(f, name, STARTS, STEPS, lr=lrs, hyper=hyper)
    assert tr.batched and tr.paths.shape == (3, STEPS + 1, 2) and tr.losses.shape == (3, STEPS + 1)
    assert not tr.diverged.any()
    cls = optim.get(name)
    for k in range(3):
        own = _separate(f, lambda ps, k=k: cls(ps, lr=lrs[k], **hyper), STARTS[k], STEPS)
        torch.testing.assert_close(tr.paths[k], own, rtol=1e-12, atol=1e-12)
        ref = _separate(f, lambda ps, k=k: ref_cls(ps, lr=lrs[k], **ref_hyper), STARTS[k], STEPS)
        torch.testing.assert_close(tr.paths[k], ref, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(tr.losses, f(tr.paths))


def test_torch_optim_class_fallback_matches_batched():
    f = L.get("beale")
    lrs = [1e-3, 1e-2, 3e-2]
    fallback = T.run(f, torch.optim.Adam, STARTS, 80, lr=lrs)
    batched = T.run(f, "adam", STARTS, 80, lr=lrs)
    assert not fallback.batched and batched.batched
    torch.testing.assert_close(fallback.paths, batched.paths, rtol=1e-9, atol=1e-10)


def test_chain_rule_and_per_run_momentum():
    f = L.get("ravine")
    rule = optim.chain(optim.trace(), optim.scale_by_lr())
    mom = [0.0, 0.5, 0.9]
    tr = T.run(f, rule, STARTS, 50, lr=0.05, hyper={"momentum": mom})
    assert tr.optimizer == "trace -> scale_by_lr"
    for k in range(3):
        ref = _separate(
            f, lambda ps, k=k: torch.optim.SGD(ps, lr=0.05, momentum=mom[k]), STARTS[k], 50
        )
        torch.testing.assert_close(tr.paths[k], ref, rtol=1e-10, atol=1e-12)


def test_lookahead_nesterov_against_equations():
    # Seed 003, eq. 5.13: v <- a v - lr grad f(w + a v); w <- w + v (float64 loop).
    f = L.get("rosenbrock")
    lrs = [2e-4, 5e-4, 1e-3]
    tr = T.run(f, "nesterov", STARTS, 80, lr=lrs, hyper={"lookahead": True, "momentum": 0.9})
    for k in range(3):
        w, v = STARTS[k].clone(), torch.zeros(2, dtype=F64)
        for t in range(80):
            torch.testing.assert_close(tr.paths[k, t], w, rtol=1e-10, atol=1e-12)
            v = 0.9 * v - lrs[k] * L.grad(f, w + 0.9 * v)
            w = w + v
        torch.testing.assert_close(tr.paths[k, -1], w, rtol=1e-10, atol=1e-12)
        own = _separate(
            f,
            lambda ps, k=k: optim.Nesterov(ps, lr=lrs[k], momentum=0.9, lookahead=True),
            STARTS[k],
            80,
            closure_step=True,
        )
        torch.testing.assert_close(tr.paths[k], own, rtol=1e-12, atol=1e-12)


def test_schedule_as_learning_rate_equals_separate_runs():
    f = L.get("bowl")
    sched = schedules.inverse_time_decay(1.0, base=0.3)
    tr = T.run(f, "sgd", STARTS, 30, lr=sched)
    for k in range(3):
        own = _separate(f, lambda ps: optim.SGD(ps, lr=sched), STARTS[k], 30)
        torch.testing.assert_close(tr.paths[k], own, rtol=1e-12, atol=1e-12)
    # ... and both follow x <- x - eta_t grad f(x) with eta_t = sched(t), t = 0, 1, ...
    # (schedules count from 0, as torch's and Optax's do).
    x = STARTS.clone()
    for t in range(30):
        x = x - sched(t) * L.grad(f, x)
    torch.testing.assert_close(tr.paths[:, -1], x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("rule", "opt_name", "scale"),
    [
        (lambda: schedules.bold_driver(increase=1.1, decrease=0.5, reject=True), "sgd", 1.0),
        (lambda: schedules.bold_driver(increase=1.2, decrease=0.5), "momentum", 0.25),
        (lambda: schedules.reduce_on_plateau(factor=0.5, patience=2), "sgd", 1.0),
    ],
    ids=["bold-reject", "bold-momentum", "plateau"],
)
def test_per_run_loss_rule_equals_separate_runs_with_scheduler(rule, opt_name, scale):
    f = L.get("rosenbrock")
    lrs = [5e-4 * scale, 1e-3 * scale, 1.5e-3 * scale]
    steps = 60
    tr = T.run(f, opt_name, STARTS, steps, lr=lrs, loss_rule=rule())
    cls = optim.get(opt_name)
    n_changed = 0
    for k in range(3):
        p = STARTS[k].clone().requires_grad_(True)
        opt = cls([p], lr=lrs[k])
        sch = schedules.Scheduler(opt, {"lr": rule()})
        path = [p.detach().clone()]
        for _ in range(steps):
            opt.zero_grad()
            f(p).backward()
            opt.step()
            with torch.no_grad():
                sch.step(f(p))
            path.append(p.detach().clone())
        torch.testing.assert_close(tr.paths[k], torch.stack(path), rtol=1e-12, atol=1e-12)
        n_changed += opt.param_groups[0]["lr"] != lrs[k]
    assert n_changed > 0  # the rule really acted
    assert not tr.diverged.any()


def test_scheduler_factory_single_run_bold_driver():
    f = L.get("xsinx")
    make = lambda o: schedules.Scheduler(o, {"lr": schedules.bold_driver(reject=True)})  # noqa: E731
    tr = T.run(f, "sgd", [2.5], 40, lr=1.0, scheduler=make, dtype=F64)
    assert tr.losses.shape == (1, 41)
    # With rejection the recorded loss never increases.
    assert (tr.losses[0, 1:] <= tr.losses[0, :-1] + 1e-12).all()


def test_torch_lr_scheduler_is_stepped_blind():
    f = L.get("bowl")
    make = lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=5, gamma=0.5)  # noqa: E731
    tr = T.run(f, "sgd", STARTS, 12, lr=0.1, scheduler=make)
    x = STARTS.clone()
    for t in range(12):
        x = x - 0.1 * 0.5 ** (t // 5) * L.grad(f, x)
    torch.testing.assert_close(tr.paths[:, -1], x, rtol=1e-12, atol=1e-12)


def test_divergence_is_flagged_and_frozen():
    f = L.get("parabola")
    # x_t - 2 = (1 - 2 lr)^t (x_0 - 2): lr 1.5 doubles the error each step with a sign flip.
    tr = T.run(f, "sgd", [4.0], 20, lr=[0.2, 1.0, 1.5], bound=100.0, dtype=F64)
    assert tr.diverged.tolist() == [False, False, True]
    # |2 (-2)^t| + 2 > 100 first at t = 6 (2 * 64 = 128).
    assert tr.diverged_at.tolist() == [-1, -1, 6]
    x5 = 2 + 2 * (-2.0) ** 5
    assert (tr.paths[2, 6:, 0] == x5).all() and tr.paths[2, 5, 0] == x5
    assert tr.final_losses[2] == math.inf and math.isfinite(tr.final_losses[0])
    single = T.run(f, "sgd", [4.0], 20, lr=1.0, dtype=F64)
    torch.testing.assert_close(tr.paths[1], single.paths[0], rtol=1e-12, atol=1e-12)


def test_overflow_to_inf_and_nan_does_not_crash():
    f = L.get("rosenbrock")
    tr = T.run(f, "sgd", STARTS.float(), 200, lr=[1e-3, 1.0, 0.5])
    assert tr.diverged.tolist() == [False, True, True]
    assert torch.isfinite(tr.paths).all()
    at = tr.diverged_at[1].item()
    assert 1 <= at <= 200
    assert torch.equal(tr.paths[1, at:], tr.paths[1, at - 1].expand(201 - at, 2))
    good = T.run(f, "sgd", STARTS[:1].float(), 200, lr=1e-3)
    # float32: a per-run (tensor) lr and a scalar lr may round differently by an ulp.
    torch.testing.assert_close(tr.paths[0], good.paths[0], rtol=1e-5, atol=1e-6)


def test_gd_on_condition_100_contracts_at_theoretical_rate():
    # Nesterov (2004), Thm 2.1.15: with step 2/(L + mu), ||x_{t+1} - x*|| <= q ||x_t - x*||,
    # q = (kappa - 1)/(kappa + 1), tight along the extreme eigenvectors.
    f = L.get("quadratic", kappa=100.0, dim=10, rotate=True)
    mu, lip = f.params["mu"], f.params["L"]
    starts = torch.randn(8, 10, generator=torch.Generator().manual_seed(0), dtype=F64)
    tr = T.run(f, "sgd", starts, 400, lr=2 / (lip + mu))
    err = tr.paths.norm(dim=-1)  # the minimum is the origin
    ratios = err[:, 201:] / err[:, 200:-1]
    q = (100 - 1) / (100 + 1)
    assert ((ratios - q).abs() / q).max() < 0.01
    # ... and not faster than the bound along the worst direction:
    assert ratios.max() <= q * (1 + 1e-9)


def test_noisy_quadratic_stationary_loss_matches_closed_form():
    lrs = [0.05, 0.2, 0.5, 1.0]
    runs = 500
    f = L.get("noisy_quadratic", h=1.0, sigma=1.0, dim=2)
    lr = torch.tensor(lrs, dtype=F64).repeat_interleave(runs)
    tr = T.run(f, "sgd", torch.zeros(2, dtype=F64), 600, lr=lr, seed=1)
    # Burn-in 200 steps ((1 - 0.05)^400 ~ 1e-9 of the start remains), then average.
    stationary = tr.losses[:, 200:].mean(1).reshape(len(lrs), runs).mean(1)
    for i, eta in enumerate(lrs):
        expected = L.sgd_stationary_loss(eta, h=1.0, sigma=1.0, dim=2)
        assert stationary[i].item() == pytest.approx(expected, rel=0.10)
    # eta / t keeps descending below the constant-rate floors.
    decay = T.run(
        f,
        "sgd",
        torch.full((runs, 2), 2.0, dtype=F64),
        600,
        lr=schedules.inverse_time_decay(1.0, base=1.0),
        seed=2,
    )
    assert decay.losses[:, -1].mean() < 0.2 * L.sgd_stationary_loss(0.05, dim=2)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"optimizer": "adamm"}, KeyError, "unknown optimizer 'adamm'; valid names: sgd, momentum"),
        ({"landscape": "bananas"}, KeyError, "unknown landscape 'bananas'; valid names: parabola"),
        ({"starts": [1.0, 2.0, 3.0]}, ValueError, r"starts must have shape \(2,\) or \(K, 2\)"),
        ({"steps": 0}, ValueError, "steps must be a positive integer, got 0"),
        ({"steps": -3}, ValueError, "steps must be a positive integer, got -3"),
        ({"steps": 2.5}, ValueError, "steps must be a positive integer, got 2.5"),
        ({"lr": -1.0}, ValueError, r"lr must be a finite number > 0, got -1.0"),
        ({"lr": 0.0}, ValueError, r"lr must be a finite number > 0, got 0.0"),
        ({"lr": [0.1, -0.1]}, ValueError, r"lr must be a finite number > 0, got \[0.1, -0.1\]"),
        ({"lr": [0.1, 0.2], "starts": torch.zeros(3, 2)}, ValueError, "number of runs"),
        ({"bound": 0.0}, ValueError, "bound must be a finite number > 0, got 0.0"),
        ({"starts": [float("nan"), 0.0]}, ValueError, "starts must be finite"),
        ({"optimizer": 3}, ValueError, "optimizer must be a name"),
    ],
)
def test_bad_input(kwargs, exc, match):
    args = {"landscape": "rosenbrock", "optimizer": "adam", "starts": [0.0, 0.0], "steps": 5}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        T.run(**args)


def test_scheduler_with_a_loss_rule_and_many_runs_points_to_loss_rule():
    make = lambda o: schedules.Scheduler(o, {"lr": schedules.bold_driver()})  # noqa: E731
    with pytest.raises(ValueError, match="loss_rule="):
        T.run("bowl", "sgd", STARTS, 5, lr=0.1, scheduler=make)
    plateau = lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o)  # noqa: E731
    with pytest.raises(ValueError, match="ReduceLROnPlateau takes one loss"):
        T.run("bowl", torch.optim.SGD, STARTS, 5, lr=0.1, scheduler=plateau)


@pytest.mark.parametrize("name", ["muon", "adafactor", "shampoo", "soap"])
def test_matrix_optimizers_step_each_start_separately(name):
    """A rule that reads the whole tensor (Muon's orthogonalization, Adafactor's factored
    moments, Shampoo's and SOAP's preconditioners) stepped K starts stacked as one (K, 2)
    matrix: a second start moved the first one's path (Muon on Rosenbrock, 50 steps from
    (-1.2, 1): (-1.16231, 1.00804) alone, (-1.17738, 1.03483) beside (1.5, -0.5)). Each start
    now takes its own step: its path is the one it takes alone, bit for bit."""
    import warnings

    from descentlab.problems import trajectories as T

    starts = [[-1.2, 1.0], [1.5, -0.5], [0.3, 0.2]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        together = T.run("rosenbrock", name, starts, 30, lr=0.01)
        for i, s in enumerate(starts):
            alone = T.run("rosenbrock", name, [s], 30, lr=0.01)
            assert torch.equal(alone.paths[0], together.paths[i]), (name, i)
        # per-run learning rates reach their own run
        lrs = T.run("rosenbrock", name, starts[:2], 10, lr=[0.01, 0.02])
        for i, lr in enumerate((0.01, 0.02)):
            alone = T.run("rosenbrock", name, [starts[i]], 10, lr=lr)
            assert torch.equal(alone.paths[0], lrs.paths[i]), (name, lr)
    assert not T.stacks_runs(name) and T.stacks_runs("adam")
