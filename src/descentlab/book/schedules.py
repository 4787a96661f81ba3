"""Evidence for learning-rate schedules: the Robbins-Monro conditions measured on
descentlab's schedules, torch's schedulers reproduced, the lectures' decays, and fixed-rate
SGD hovering around the optimum (even started there) with the ``schedules`` experiment's
noise floor.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.optim import lr_scheduler as TL

from descentlab import optim
from descentlab import schedules as S
from descentlab.book import convergence as C
from descentlab.book import decays as DC
from descentlab.book.checks import ck, close, diff_check, from_experiment
from descentlab.book.model import Context
from descentlab.book.render import seed_figures as LF
from descentlab.book.render.pages import Check, Evidence

__all__ = [
    "decay",
    "eta_over_t",
    "hover_at_optimum",
    "noise_floor",
    "robbins_monro",
    "torch_schedules",
]


def robbins_monro(ctx: Context) -> Evidence:
    """Σ η_t = ∞ and Σ η_t² < ∞, measured by descentlab.book.convergence.robbins_monro: a constant
    rate fails the second."""
    c, checks = _first_condition(S.constant(0.1), "a constant rate 0.1: Σ η_t diverges")
    checks.append(
        ck(
            "but Σ η_t² also diverges: the second condition fails",
            not c.meets,
            f"Σ η² = {c.sum_eta_sq[-1]:.0f} after 10,000 steps",
            "unbounded",
        )
    )
    return Evidence(checks=checks)


def _first_condition(schedule: Any, what: str) -> tuple[C.RobbinsMonroReport, list[Check]]:
    """``schedule`` measured over 10,000 steps by descentlab.book.convergence.robbins_monro, and the
    check of the first condition, Σ η_t = ∞, worded ``what``."""
    r = C.robbins_monro(schedule, 10_000)
    growth = f"growth exponent {r.eta_exponent:.3f}"
    return r, [ck(what, r.eta_sum_diverges, growth, "≥ -0.1 (unbounded)")]


def eta_over_t(ctx: Context) -> Evidence:
    """η/t meets both conditions (descentlab.book.decays.eta_over_t)."""
    r, checks = _first_condition(DC.eta_over_t(0.1), "η/t: Σ η_t diverges (like log t)")
    checks += [
        ck(
            "η/t: Σ η_t² converges",
            r.eta_sq_sum_converges,
            f"exponent {r.eta_sq_exponent:.2f}",
            "< -0.1",
        ),
        close("and Σ η_t² → η²π²/6", r.sum_eta_sq[-1], 0.01 * math.pi**2 / 6, 2e-6),
    ]
    return Evidence(checks=checks)


def torch_schedules(ctx: Context) -> Evidence:
    """Each of the lecture's torch schedulers (and cosine) reproduced by descentlab for 30
    steps."""
    cases = {
        "LambdaLR": (
            lambda o: TL.LambdaLR(o, lambda t: 0.95**t),
            S.lambda_schedule(lambda t: 0.95**t, base=0.1),
        ),
        "MultiplicativeLR": (
            lambda o: TL.MultiplicativeLR(o, lambda t: 0.9),
            S.multiplicative(lambda t: 0.9, base=0.1),
        ),
        "StepLR": (lambda o: TL.StepLR(o, 7, 0.5), S.step(7, 0.5, base=0.1)),
        "MultiStepLR": (
            lambda o: TL.MultiStepLR(o, [5, 12], 0.3),
            S.multistep([5, 12], 0.3, base=0.1),
        ),
        "ConstantLR": (lambda o: TL.ConstantLR(o, 0.5, 6), S.constant_factor(0.5, 6, base=0.1)),
        "LinearLR": (lambda o: TL.LinearLR(o, 0.2, 1.0, 10), S.linear(0.2, 1.0, 10, base=0.1)),
        "ExponentialLR": (lambda o: TL.ExponentialLR(o, 0.9), S.exponential(0.9, base=0.1)),
        "PolynomialLR": (lambda o: TL.PolynomialLR(o, 15, 2.0), S.polynomial(15, 2.0, base=0.1)),
        "CosineAnnealingLR": (lambda o: TL.CosineAnnealingLR(o, 20), S.cosine(20, base=0.1)),
    }
    rows, worst = [], 0.0
    for name, (make, ours) in cases.items():
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=0.1)
        sch = make(opt)
        diff = 0.0
        for t in range(30):
            diff = max(diff, abs(opt.param_groups[0]["lr"] - ours(t)))
            opt.step()
            sch.step()
        worst = max(worst, diff)
        rows.append([name, diff])
    return Evidence(
        checks=[
            diff_check(
                "each of the 9 torch schedulers against descentlab's for 30 steps (worst)",
                worst,
                1e-12,
            )
        ],
        tables=[(["torch scheduler", "max |lr - ours|"], rows)],
    )


def decay(ctx: Context) -> Evidence:
    """The momentum lecture's three decays (descentlab.schedules) against their formulas."""
    ts = np.arange(0, 50)
    out = []
    for text, ours, ref in (
        (
            "step decay: halve every 10 steps",
            [DC.step_decay(10, 0.5, a0=0.1)(t) for t in ts],
            0.1 * 0.5 ** (ts // 10),
        ),
        (
            "exponential α0 e^(-kt), k 0.05",
            [DC.exp_decay(0.05, a0=0.1)(t) for t in ts],
            0.1 * np.exp(-0.05 * ts),
        ),
        (
            "1/t decay α0/(1 + kt), k 0.5",
            [DC.inverse_time(0.5, a0=0.1)(t) for t in ts],
            0.1 / (1 + 0.5 * ts),
        ),
    ):
        out.append(
            diff_check(f"{text}, 50 steps", float(np.abs(np.asarray(ours) - ref).max()), 1e-15)
        )
    return Evidence(checks=out)


def noise_floor(ctx: Context) -> Evidence:
    """The schedules experiment's noisy quadratic: a fixed rate stalls at a floor, decays go
    below it."""
    ev = from_experiment("schedules", "floor", "decay ends below")(ctx)
    ev.figures.append(LF.build("seed000_noise_floor", ctx.quick))
    return ev


def hover_at_optimum(ctx: Context) -> Evidence:
    """Fixed-rate SGD started *at* the least-squares optimum leaves it and hovers: the
    mini-batch gradients there are not zero (only their mean is). η/t keeps it closer."""
    gen = torch.Generator().manual_seed(0)
    n, d = 200, 5
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = x @ torch.ones(d, dtype=torch.float64) + 0.5 * torch.randn(
        n, generator=gen, dtype=torch.float64
    )
    w_star = torch.linalg.lstsq(x, y[:, None]).solution[:, 0]
    full = x.T @ (x @ w_star - y) / n

    def run(schedule: str) -> np.ndarray:
        w = torch.nn.Parameter(w_star.clone())
        opt = optim.SGD([w], lr=0.05)
        sch = S.Scheduler(opt, {"lr": DC.eta_over_t(0.05)}) if schedule == "eta/t" else None
        g = torch.Generator().manual_seed(1)
        dist = []
        for _ in range(600):
            idx = torch.randperm(n, generator=g)[:10]
            opt.zero_grad()
            (0.5 * ((x[idx] @ w - y[idx]) ** 2).mean()).backward()
            opt.step()
            if sch is not None:
                sch.step()
            dist.append(float((w.detach() - w_star).norm()))
        return np.asarray(dist)

    fixed, decayed = run("fixed"), run("eta/t")
    return Evidence(
        checks=[
            ck(
                "fixed lr 0.05, batch 10, started at w*: the mean distance from w* over steps "
                "300-600",
                fixed[300:].mean() > 0.02,
                f"{fixed[300:].mean():.3g}",
                "> 0.02 (it hovers)",
            ),
            ck(
                "η/t from the same start stays closer",
                decayed[300:].mean() < 0.5 * fixed[300:].mean(),
                f"{decayed[300:].mean():.3g}",
                f"< half of {fixed[300:].mean():.3g}",
            ),
        ],
        notes=[f"At w* the full gradient is {float(full.norm()):.1e}: only the batches move it."],
    )
