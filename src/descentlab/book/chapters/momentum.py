"""Momentum, in depth: the velocity as an average, heavy ball on one eigen-direction as a
two-by-two linear system, the condition number and the optimal (η, β), Nesterov's variant;
traces for several (η, β) run by descentlab's Momentum and Nesterov on quadratics."""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import torch

from descentlab import optim
from descentlab.book.cells import playground_url
from descentlab.book.chapters._common import (
    Numbers,
    envelope_rate,
    finish,
    heavy_ball_rate,
    slope_steps,
    steps_to,
)
from descentlab.book.checks import ck, close
from descentlab.book.model import Context, Play
from descentlab.book.render.chapter import ChapterPage, Part, Table
from descentlab.book.render.pages import Movable
from descentlab.problems import landscapes as L
from descentlab.problems.trajectories import run
from descentlab.report import figures as FG

__all__ = ["chapter"]

KAPPA = 100.0
#: the slopes' settings: β and the steps the velocity has to fill
SLOPE_BETAS = (0.5, 0.9, 0.99)
SLOPE_STEPS = 200
#: the trace table's grid on the κ = 100 quadratic
TRACE_LRS = (1.0, 2.0)
TRACE_BETAS = (0.0, 0.5, 0.9)
TRACE_STEPS = 1500
#: the slider's β at η = 1
SLIDER_BETAS = (0.0, 0.5, 0.7, 0.81, 0.9, 0.95, 0.99)
SLIDER_STEPS = 400
#: Lessard, Recht and Packard's function (curvature LES_L, 1, LES_L on w < 1, 1 ≤ w < 2,
#: w ≥ 2): heavy ball at Polyak's optimum for κ = LES_L, Nesterov at (1/L, (√κ-1)/(√κ+1))
LES_L = 25.0
LES_HB = (4 / (math.sqrt(LES_L) + 1) ** 2, ((math.sqrt(LES_L) - 1) / (math.sqrt(LES_L) + 1)) ** 2)
LES_NEST = (1 / LES_L, (math.sqrt(LES_L) - 1) / (math.sqrt(LES_L) + 1))
LES_STARTS = (3.3, 1.5, 0.5, -2.0)
LES_STEPS = 500


def _lessard_grad(w: torch.Tensor) -> torch.Tensor:
    return torch.where(w < 1, LES_L * w, torch.where(w < 2, w + LES_L - 1, LES_L * w - LES_L + 1))


def _lessard_f(w: float) -> float:
    if w < 1:
        return LES_L / 2 * w * w
    if w < 2:
        return w * w / 2 + (LES_L - 1) * w - (LES_L - 1) / 2
    return LES_L / 2 * w * w - (LES_L - 1) * w + 3 * (LES_L - 1) / 2


def _optimal(kappa: float, L_: float = 1.0) -> tuple[float, float]:
    mu = L_ / kappa
    return (2 / (math.sqrt(L_) + math.sqrt(mu))) ** 2, (
        (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    ) ** 2


def _slope_steps(beta: float, lr: float = 0.1, g: float = 1.0) -> list[float]:
    """descentlab's Momentum on the constant slope ``f(w) = g w``: each step's size."""
    return slope_steps(lambda p: optim.Momentum(p, lr=lr, momentum=beta), g, SLOPE_STEPS)


def _quad(lrs, betas: list[float], steps: int, bound: float | None = None):
    """descentlab's Momentum on the κ = 100 quadratic from (1, 1), one run per β."""
    return run(
        L.quadratic(kappa=KAPPA, dim=2),
        "momentum",
        torch.ones(len(betas), 2, dtype=torch.float64),
        steps,
        lr=lrs,
        hyper={"momentum": list(betas)},
        bound=bound,
    )


def _frame(f, tr, k: int, lr: float, beta: float, eig: list[float]) -> object:
    fig = FG.new_figure(10.5, 3.8)
    a, b = fig.subplots(1, 2)
    xs = np.linspace(-1.1, 1.1, 200)
    X, Y = np.meshgrid(xs, xs)
    Z = 0.5 * (eig[0] * X**2 + eig[1] * Y**2)
    a.contour(X, Y, np.log10(Z + 1e-4), levels=18, cmap="viridis", linewidths=0.6)
    p = tr.paths[k].numpy()
    a.plot(p[:, 0], p[:, 1], color="#D55E00", lw=1, marker=".", ms=2.5)
    a.plot([0], [0], "k*", ms=9)
    a.set_xlim(-1.1, 1.1)
    a.set_ylim(-1.1, 1.1)
    a.set_title(f"the first {SLIDER_STEPS} steps from (1, 1)", fontsize=10)
    loss = tr.losses[k].numpy()
    rho = heavy_ball_rate(lr, beta, eig)
    b.semilogy(loss, color="#D55E00", label="loss (descentlab's Momentum)")
    t = np.arange(len(loss))
    b.semilogy(
        t,
        loss[0] * rho ** (2 * t),
        "--",
        color="#555555",
        lw=1,
        label=f"predicted envelope ρ^(2t), ρ = {rho:.4f}",
    )
    b.set_ylim(1e-14, 10)
    b.set_xlabel("step t")
    b.set_title(f"κ = {KAPPA:g}, η = {lr:g}, β = {beta:g}", fontsize=10)
    b.legend(fontsize=8, loc="lower left")
    return fig


def chapter(ctx: Context) -> ChapterPage:
    """The chapter's page, every number computed now."""
    eta_opt, beta_opt = _optimal(KAPPA)
    n = Numbers(
        KAPPA,
        0.1,
        1,
        2,
        *SLOPE_BETAS,
        SLOPE_STEPS,
        *TRACE_LRS,
        *TRACE_BETAS,
        0.01,
        SLIDER_STEPS,
        *SLIDER_BETAS,
        TRACE_STEPS,
        200,
        400,
        0.5,
        0.9,
        512,
        LES_L,
        *LES_STARTS,
        LES_STEPS,
    )
    eig = [1.0 / KAPPA, 1.0]
    parts: list[Part] = []

    # 1. the velocity as an average -----------------------------------------------------
    slopes = ctx.memo(
        ("chapter", "momentum", "slope"), lambda: [_slope_steps(b) for b in SLOPE_BETAS]
    )
    rows, checks = [], []
    for beta, sizes in zip(SLOPE_BETAS, slopes, strict=True):
        limit = 1 / (1 - beta)
        filled = (1 - beta**SLOPE_STEPS) / (1 - beta)
        rows.append([beta, limit, filled, sizes[-1] / 0.1])
        checks.append(
            close(
                f"β = {beta:g}: the step after {SLOPE_STEPS} steps is η g (1 - β^T)/(1 - β)",
                sizes[-1],
                0.1 * filled,
                1e-9,
                rel=True,
            )
        )
    t_half = math.log(0.5) / math.log(0.99)
    text1 = f"""
Start from torch's form of momentum, the one descentlab's `Momentum` uses: the buffer
collects gradients, `b ← βb + g`, and the step is `w ← w - ηb`. Unroll the buffer from
`b = 0` and it is a weighted sum of every gradient so far, `b_t = g_t + βg_(t-1) + β²g_(t-2)
+ ...`: the newest gradient counts fully, one from k steps ago counts `β^k`. The weights sum
to `(1 - β^t)/(1 - β)`, which tends to `1/(1 - β)`. So momentum is gradient descent on a
running average of the gradients, multiplied by the weights' sum: where the gradient keeps
its direction the step grows towards `η/(1 - β)` times the gradient, and where it flips sign
from step to step the terms cancel.

The simplest place to see this is a constant slope, `f(w) = gw`, where every gradient is the
same. The table runs descentlab's `Momentum` at η = 0.1 and g = 1 for {SLOPE_STEPS} steps and
reads the size of the last step, in units of plain gradient descent's step ηg. At β = 0.5 the
sum is full after a few steps, and the step is {n(slopes[0][-1] / 0.1)} times plain gradient
descent's. At β = 0.9 it is {n(slopes[1][-1] / 0.1)}. At β = 0.99 the promised factor is
{n(1 / (1 - 0.99))}, but after {SLOPE_STEPS} steps the buffer has only reached
{n(slopes[2][-1] / 0.1)}: the memory that makes β close to 1 attractive also makes it slow to
fill. The weight of a gradient halves every `ln 2/ln(1/β)` steps, {n(t_half)} steps at
β = 0.99, so a buffer of that β needs several times that many steps to forget a start or
to react to a turn. This is the first trade-off of momentum, and it returns below in another form:
large β means a long, smooth memory and a slow reaction."""
    parts.append(
        Part(
            "average",
            "The velocity is an average of past gradients",
            [
                text1,
                Table(
                    [
                        "β",
                        "1/(1 - β)",
                        f"(1 - β^T)/(1 - β), T = {SLOPE_STEPS}",
                        "measured step / (ηg)",
                    ],
                    rows,
                    "descentlab's Momentum on the slope f(w) = w, η = 0.1 (float64)",
                ),
                checks,
            ],
        )
    )

    # 2. one eigen-direction: a linear system ---------------------------------------------
    lam = 1.0
    stable_edge = 2 * (1 + 0.5) / lam
    one = run(
        L.quadratic(kappa=1.0, dim=1),
        "momentum",
        torch.ones(2, 1, dtype=torch.float64),
        200,
        lr=[0.97 * stable_edge, 1.03 * stable_edge],
        hyper={"momentum": [0.5, 0.5]},
        bound=1e8,
    )
    below_div, above_div = bool(one.diverged[0]), bool(one.diverged[1])
    text2 = f"""
Why does averaging help, and when does it hurt? On a quadratic the question has an exact
answer, because everything decouples. Write the loss in the Hessian's eigenbasis, `f(w) =
Σ λ_i w_i²/2`: the gradient along direction i is `λ_i w_i`, and momentum's update along that
direction involves only that direction. Eliminate the buffer (from `w_(t+1) = w_t - ηb_(t+1)`
and `b_(t+1) = βb_t + λw_t` one gets `ηb_t = w_(t-1) - w_t`) and one direction obeys

`w_(t+1) = (1 + β - ηλ) w_t - β w_(t-1)`.

This is a linear recurrence of order two: the present and the previous position set the
next. Its solutions are combinations of `z^t` for the two roots of the characteristic
polynomial `z² - (1 + β - ηλ) z + β = 0`, and the distance to the minimum shrinks like the
larger modulus of the two roots, ρ. Three facts follow from the polynomial alone. The product
of the roots is β, so when they are complex (a conjugate pair) both have modulus `√β`: the
iterate spirals in at the rate `√β` whatever the rate η, overshooting and coming back. When
they are real the path does not oscillate at a rate set by β, and the larger root decides.
And the recurrence is stable exactly when `0 < ηλ < 2(1 + β)`: plain gradient descent needs
`ηλ < 2`, momentum stretches that to {n(2 * (1 + 0.9))} at β = 0.9.

The build checks the edge: on `f = w²/2` (λ = 1) at β = 0.5 the edge is ηλ = {n(stable_edge)}.
descentlab's `Momentum` at ηλ = {n(0.97 * stable_edge, 3)}, just below it,
{"converges" if not below_div else "diverges"}; at ηλ = {n(1.03 * stable_edge, 3)}, just above
it, it {"diverges" if above_div else "converges"}."""
    parts.append(
        Part(
            "recurrence",
            "One direction of a quadratic is a two-by-two system",
            [
                text2,
                [
                    ck(
                        "heavy ball at ηλ 3 % below 2(1 + β) (β = 0.5) stays finite for 200 steps",
                        not below_div,
                        "diverged" if below_div else "finite",
                        "finite",
                    ),
                    ck(
                        "heavy ball at ηλ 3 % above 2(1 + β) diverges",
                        above_div,
                        "diverged" if above_div else "finite",
                        "diverged",
                    ),
                ],
            ],
        )
    )

    # 3. the condition number: traces for several (η, β) ----------------------------------
    grid = [(a, b) for a in TRACE_LRS for b in TRACE_BETAS] + [(eta_opt, beta_opt), (eta_opt, 0.5)]
    tr = ctx.memo(
        ("chapter", "momentum", "trace"),
        lambda: _quad([a for a, _ in grid], [b for _, b in grid], TRACE_STEPS, bound=1e6),
    )
    rows, checks = [], []
    measured_rates = {}
    for k, (a, b) in enumerate(grid):
        rho = heavy_ball_rate(a, b, eig)
        loss = tr.losses[k].numpy()
        div = bool(tr.diverged[k])
        st = steps_to(loss, 1e-12) if not div else None
        meas = envelope_rate(loss, 200, 400) if not div else float("nan")
        measured_rates[(a, b)] = meas
        pred_steps = math.log(1e-6) / math.log(rho) if rho < 1 else float("inf")
        rows.append(
            [
                round(a, 4),
                round(b, 4),
                round(rho, 5),
                "never" if rho >= 1 else round(pred_steps),
                "diverged" if div else (round(meas, 5)),
                "diverged" if div else (st if st is not None else f"> {TRACE_STEPS}"),
            ]
        )
        if rho < 1:
            checks.append(
                close(
                    f"η = {a:.4g}, β = {b:.4g}: the measured rate is ρ", meas, rho, 0.01, rel=True
                )
            )
        elif rho > 1:
            checks.append(
                ck(
                    f"η = {a:.4g}, β = {b:.4g}: ρ > 1 and the run diverges",
                    div,
                    "diverged" if div else "finite",
                    "diverged",
                )
            )
        else:
            checks.append(
                close(
                    f"η = {a:.4g}, β = {b:.4g}: ρ = 1, the loss neither shrinks nor grows",
                    meas,
                    1.0,
                    1e-6,
                    rel=True,
                )
            )
    gd_rate = (KAPPA - 1) / (KAPPA + 1)
    hb_rate = (math.sqrt(KAPPA) - 1) / (math.sqrt(KAPPA) + 1)
    gd_steps = math.log(1e-6) / math.log(gd_rate)
    hb_steps = math.log(1e-6) / math.log(hb_rate)
    k_opt = grid.index((eta_opt, beta_opt))
    st_opt = steps_to(tr.losses[k_opt].numpy(), 1e-12)
    checks.append(
        close(
            "at the optimal (η, β) the rate is (√κ - 1)/(√κ + 1)",
            heavy_ball_rate(eta_opt, beta_opt, eig),
            hb_rate,
            1e-6,
            rel=True,
        )
    )
    checks.append(
        ck(
            "at η = 2 plain gradient descent (β = 0) never converges, momentum does",
            measured_rates[(2.0, 0.0)] > 0.999 and measured_rates[(2.0, 0.5)] < 0.99,
            f"{measured_rates[(2.0, 0.0)]:.4f} and {measured_rates[(2.0, 0.5)]:.4f}",
            "≥ 0.999 and < 0.99",
        )
    )
    text3 = f"""
A real problem has many directions with different curvatures, and one (η, β) must serve
them all. Take the quadratic with eigenvalues from μ = 0.01 to L = 1, condition number
κ = L/μ = {n(KAPPA)}, started at (1, 1). Plain gradient descent's best rate is
`η = 2/(L + μ)`, where the two extreme directions contract equally fast, at
`(κ - 1)/(κ + 1)` = {n(gd_rate, 4)} per step: about {n(round(gd_steps))} steps to shrink
the distance by a factor `10^6`. The stiff direction limits η, the flat one then crawls.

Momentum changes the bargain. In the flat direction a large β lets the small gradient build
up speed; in the stiff one the same β makes the roots complex, and they spiral in at `√β`
whatever η is, so η can grow beyond what gradient descent tolerates. Balancing the two gives
the classic choice (Polyak's heavy ball, derived in Goh's article): `η = (2/(√L + √μ))²`
= {n(eta_opt, 4)} and `β = ((√κ - 1)/(√κ + 1))²` = {n(beta_opt, 4)}, with the rate
`(√κ - 1)/(√κ + 1)` = {n(hb_rate, 4)}: the condition number enters through its square root.
Predicted, about {n(round(hb_steps))} steps instead of {n(round(gd_steps))}.

The table runs descentlab's `Momentum` for {TRACE_STEPS} steps at each (η, β) and measures
the rate from the loss's envelope between steps 200 and 400 (the loss is the distance
squared, weighted by the curvatures). Every measured rate matches the polynomial's ρ. Three
rows teach most. At η = 2, β = 0, gradient descent sits exactly on its edge: the stiff
direction flips sign every step without shrinking, ρ = 1, and the loss never falls
(measured {n(measured_rates[(2.0, 0.0)], 4)}). Add β = 0.5 at the same η and the stiff
direction becomes a damped spiral, ρ = {n(heavy_ball_rate(2.0, 0.5, eig), 4)}. At β = 0.9
the rate is {n(heavy_ball_rate(1.0, 0.9, eig), 4)} at both rates η: that is `√0.9`, the
complex roots' modulus, and η no longer matters. The last rows show the optimum's rate,
{n(measured_rates[(eta_opt, beta_opt)], 4)} measured, and its fragility: at the same η
with β = 0.5 the stiff direction leaves the stable region (`ηL` > `2(1 + β)`) and the run
diverges.

One honest detail: the loss takes {n(st_opt)} steps at the optimum to fall by `10^12`, more
than the rate alone predicts. At the optimal β the flat direction's two roots coincide (the
polynomial's discriminant is zero), and a double root multiplies `ρ^t` by t: the error
carries a linear factor that the rate hides. Tuned slightly off the optimum, the roots
separate and the factor goes away, one reason practitioners rarely sit exactly on it."""
    parts.append(
        Part(
            "condition",
            "The condition number: traces for several (η, β)",
            [
                text3,
                Table(
                    [
                        "η",
                        "β",
                        "predicted ρ",
                        "predicted steps to 1e-6 distance",
                        "measured rate (steps 200-400)",
                        "measured steps to loss × 1e-12",
                    ],
                    rows,
                    f"descentlab's Momentum on the quadratic with κ = {KAPPA:g} (eigenvalues 0.01 "
                    "and 1), start (1, 1), float64",
                ),
                checks,
            ],
        )
    )

    # 4. the figure to move -----------------------------------------------------------------
    slider = ctx.memo(
        ("chapter", "momentum", "slider"),
        lambda: _quad(1.0, list(SLIDER_BETAS), SLIDER_STEPS),
    )
    f = L.quadratic(kappa=KAPPA, dim=2)
    rates = [heavy_ball_rate(1.0, b, eig) for b in SLIDER_BETAS]
    finals = [float(slider.losses[k, -1]) for k in range(len(SLIDER_BETAS))]
    best = min(range(len(SLIDER_BETAS)), key=rates.__getitem__)
    best_meas = min(range(len(SLIDER_BETAS)), key=finals.__getitem__)
    figs = [_frame(f, slider, k, 1.0, b, eig) for k, b in enumerate(SLIDER_BETAS)]
    crit = (1 - math.sqrt(0.01)) ** 2
    text4 = f"""
Move β at η = 1 and watch both panels. At β = 0 the path drops straight down the stiff
direction in one step (ηL = 1 lands exactly on the floor) and then creeps along the flat
one, a straight line on the log scale with slope `2 ln 0.99`. As β grows the creeping speeds
up: the flat direction's roots stay real while β is below `(1 - √(ημ))²` =
{n(crit, 3)}, the larger one shrinking as β grows. Beyond that value they turn complex and
the rate is `√β`, which grows with β: the path starts to circle, the loss curve shows
ripples, and more β is slower. The best β on the slider is {SLIDER_BETAS[best]:g} by the
polynomial and {SLIDER_BETAS[best_meas]:g} by the loss after {SLIDER_STEPS} steps. At
β = 0.99 the ball overshoots wildly and its loss, after {SLIDER_STEPS} steps, is
{n(finals[-1], 2)}, against {n(finals[best_meas], 2)} at the best β. This is the second face of the
trade-off of the first section: memory speeds up a slow direction only until it becomes
inertia."""
    mv = Movable(
        "β",
        [f"{b:g}" for b in SLIDER_BETAS],
        figs,
        SLIDER_BETAS.index(0.81),
        "Move β (η = 1, κ = 100): left the path, right the loss with the envelope "
        "`ρ^(2t)` the characteristic polynomial predicts.",
        playground_url(
            Play(
                "quadratic",
                {"sgd": {"lr": 1.0}, "momentum": {"lr": 1.0, "momentum": 0.81}},
                steps=SLIDER_STEPS,
                starts=((1.0, 1.0),),
                kappa=KAPPA,
            )
        ),
    )
    parts.append(
        Part(
            "move",
            "Move β: from crawling to circling",
            [
                text4,
                mv,
                [
                    ck(
                        "the slider's fastest β by the loss is the polynomial's",
                        best == best_meas,
                        f"{SLIDER_BETAS[best_meas]:g}",
                        f"{SLIDER_BETAS[best]:g}",
                    )
                ],
            ],
        )
    )

    # 5. Nesterov ---------------------------------------------------------------------------
    nest = run(
        L.quadratic(kappa=KAPPA, dim=2),
        "nesterov",
        torch.ones(2, 2, dtype=torch.float64),
        TRACE_STEPS,
        lr=[1.0, 1.0],
        hyper={"momentum": [0.9, 0.81]},
    )
    n_rates = []
    for b in (0.9, 0.81):
        r = 0.0
        for lam_ in eig:
            c = 1 - lam_ * 1.0
            r = max(r, float(np.abs(np.roots([1.0, -(1 + b) * c, b * c])).max()))
        n_rates.append(r)
    n_meas = [envelope_rate(nest.losses[k].numpy(), 200, 400) for k in range(2)]
    text5 = f"""
Nesterov's variant (items 52 and 104) evaluates the gradient where the velocity is about to
carry the iterate, not where it is. On a quadratic the same elimination gives
`w_(t+1) = (1 + β)(1 - ηλ) w_t - β(1 - ηλ) w_(t-1)`: the curvature now multiplies the
momentum term too. In the stiff direction the look-ahead sees the wall coming, and the
polynomial `z² - (1 + β)(1 - ηλ) z + β(1 - ηλ)` has smaller roots there than heavy ball's.
At η = 1, ηL = 1 makes the stiff direction's polynomial `z²`: it is solved in one step
whatever β. The flat direction then decides: at β = 0.9 Nesterov's predicted rate is
{n(n_rates[0], 4)} (heavy ball's {n(heavy_ball_rate(1.0, 0.9, eig), 4)}), measured
{n(n_meas[0], 4)}; at β = 0.81, {n(n_rates[1], 4)} predicted and {n(n_meas[1], 4)} measured.
On a quadratic the gain over a well-tuned heavy ball is modest; Nesterov's guarantee is that
it keeps the accelerated rate on every smooth convex function, where heavy ball can fail."""
    parts.append(
        Part(
            "nesterov",
            "Nesterov: the gradient at the look-ahead point",
            [
                text5,
                [
                    close(
                        f"Nesterov, η = 1, β = {b:g}: the measured rate is its polynomial's",
                        m,
                        r,
                        0.01,
                        rel=True,
                    )
                    for b, m, r in zip((0.9, 0.81), n_meas, n_rates, strict=True)
                ],
            ],
        )
    )

    # 5b. where heavy ball fails: Lessard's function ------------------------------------------
    def lessard() -> dict[tuple[str, float], list[float]]:
        out = {}
        makers = {
            "heavy ball": lambda p: optim.Momentum(p, lr=LES_HB[0], momentum=LES_HB[1]),
            "Nesterov": lambda p: optim.Nesterov(p, lr=LES_NEST[0], momentum=LES_NEST[1]),
            "gradient descent": lambda p: optim.SGD(p, lr=2 / (LES_L + 1)),
        }
        for name, make in makers.items():
            for x0 in LES_STARTS:
                w = torch.nn.Parameter(torch.tensor([x0], dtype=torch.float64))
                opt = make([w])
                xs = []
                for _ in range(LES_STEPS):
                    w.grad = _lessard_grad(w.detach())
                    opt.step()
                    xs.append(float(w.detach()[0]))
                out[(name, x0)] = xs
        return out

    les = ctx.memo(("chapter", "momentum", "lessard"), lessard)
    cyc = les[("heavy ball", LES_STARTS[0])]
    period3 = max(abs(cyc[-1 - i] - cyc[-4 - i]) for i in range(3))
    others = max(_lessard_f(xs[-1]) for (nm, _), xs in les.items() if nm != "heavy ball")
    les_rows = [
        [name, x0, *[round(v, 4) + 0.0 for v in xs[-3:]], _lessard_f(xs[-1])]
        for (name, x0), xs in les.items()
    ]
    text5b = f"""
Why would anyone prefer Nesterov's form, if on quadratics a tuned heavy ball is as fast?
Because a quadratic is the only place where heavy ball's analysis holds. Lessard, Recht and
Packard built a function that is as well-behaved as a function can be without being
quadratic: one variable, strongly convex with curvature between μ = 1 and L = {n(LES_L)}, its
gradient continuous, made of three quadratic pieces with curvatures {n(LES_L)}, 1 and
{n(LES_L)}, joined at w = 1 and w = 2. Heavy ball with the (η, β) that is optimal for every
quadratic of that condition number, here η = {n(LES_HB[0], 3)} and β = {n(LES_HB[1], 3)},
converges from some starts and not from others. From w = {LES_STARTS[0]:g} descentlab's
`Momentum` settles on a cycle of three points, {", ".join(n(v, 4) for v in cyc[-3:])}, and
repeats it forever (after {LES_STEPS} steps the iterates repeat with period three to within
{n(period3, 2)}), its loss never below {n(min(_lessard_f(v) for v in cyc[-3:]), 3)}. Each piece
alone would be fine; the failure comes from the switches, which a linear analysis cannot see.
Nesterov's method with its own tuning, η = `1/L` and β = `(√κ - 1)/(√κ + 1)` =
{n(LES_NEST[1], 3)}, converges from every start in the table, and so does plain gradient
descent: on smooth strongly convex functions Nesterov's accelerated rate is a theorem, heavy
ball's is only a theorem about quadratics."""
    parts.append(
        Part(
            "lessard",
            "Where heavy ball fails: a function that is not quadratic",
            [
                text5b,
                Table(
                    [
                        "method",
                        "start w",
                        "third-last iterate",
                        "second-last",
                        "last",
                        "final loss",
                    ],
                    les_rows,
                    f"descentlab's Momentum, Nesterov and SGD on Lessard's function (μ = 1, "
                    f"L = {LES_L:g}), {LES_STEPS} steps, float64",
                ),
                [
                    ck(
                        f"heavy ball from w = {LES_STARTS[0]:g} ends on a cycle of period 3, "
                        "its loss bounded away from 0",
                        period3 < 1e-9 and min(_lessard_f(v) for v in cyc[-3:]) > 1,
                        f"period-3 gap {period3:.2g}; loss ≥ "
                        f"{min(_lessard_f(v) for v in cyc[-3:]):.3g}",
                        "< 1e-09; > 1",
                    ),
                    ck(
                        "Nesterov and gradient descent converge from every start",
                        all(
                            _lessard_f(xs[-1]) < 1e-20
                            for (name, _), xs in les.items()
                            if name != "heavy ball"
                        ),
                        f"largest final loss {others:.2g}",
                        "< 1e-20",
                    ),
                    ck(
                        "heavy ball converges from the other starts: the failure depends on "
                        "the start",
                        all(
                            _lessard_f(les[("heavy ball", x0)][-1]) < 1e-20 for x0 in LES_STARTS[1:]
                        ),
                        ", ".join(
                            f"{_lessard_f(les[('heavy ball', x0)][-1]):.2g}"
                            for x0 in LES_STARTS[1:]
                        ),
                        "< 1e-20",
                    ),
                ],
            ],
        )
    )

    # 6. the (η, β) plane, and momentum under noise --------------------------------------------
    etas = np.linspace(0.005, 4.2, 300)
    betas_ = np.linspace(0.0, 0.995, 300)
    E_, B_ = np.meshgrid(etas, betas_)

    def modulus(lam_: float) -> np.ndarray:
        a_ = 1 + B_ - E_ * lam_
        disc = a_ * a_ - 4 * B_
        real = np.maximum(np.abs(a_ + np.sqrt(np.abs(disc))), np.abs(a_ - np.sqrt(np.abs(disc))))
        return np.where(disc < 0, np.sqrt(B_), real / 2)

    plane = np.maximum(modulus(eig[0]), modulus(eig[1]))
    stable = float((plane < 1).mean())
    fig = FG.new_figure(7.5, 4.6)
    ax = fig.subplots()
    ax.set_facecolor("#cccccc")  # ρ ≥ 1: no convergence, left grey
    im = ax.contourf(
        E_,
        B_,
        np.ma.masked_where(plane >= 1.0, plane),
        levels=np.linspace(0.8, 1.0, 21),
        cmap="viridis",
        extend="min",
    )
    fig.colorbar(im, ax=ax, label="rate ρ per step (grey: ρ ≥ 1, no convergence)")
    ax.plot([eta_opt], [beta_opt], "r*", ms=12, label=f"optimum ρ = {hb_rate:.3f}")
    ax.plot(etas, np.clip(etas / 2 - 1, 0, 1), "w--", lw=1, label="edge ηL = 2(1 + β)")
    ax.set_ylim(0, 1)
    ax.set_xlabel("η")
    ax.set_ylabel("β")
    ax.set_title(
        f"heavy ball on the quadratic with κ = {KAPPA:g}: the rate over (η, β)", fontsize=10
    )
    ax.legend(fontsize=8, loc="lower right")

    noisy_grid = [(ee * (1 - b), b) for ee in (0.1, 0.5) for b in (0.0, 0.5, 0.9)]

    def noisy_runs():
        tr_ = run(
            L.noisy_quadratic(h=1.0, sigma=1.0, dim=1),
            "momentum",
            torch.ones(512, 1, dtype=torch.float64).repeat(len(noisy_grid), 1),
            400,
            lr=[a for a, _ in noisy_grid for _ in range(512)],
            hyper={"momentum": [b for _, b in noisy_grid for _ in range(512)]},
            seed=0,
        )
        return [
            float(tr_.losses[k * 512 : (k + 1) * 512, 200:].mean()) for k in range(len(noisy_grid))
        ]

    floors = ctx.memo(("chapter", "momentum", "noise"), noisy_runs)

    def lyapunov(lr_: float, b: float) -> float:
        """The stationary E[w²] from the 2×2 discrete Lyapunov equation Σ = AΣAᵀ + Q."""
        a_ = np.array([[1 + b - lr_, -b], [1.0, 0.0]])
        q = np.array([[lr_ * lr_, 0.0], [0.0, 0.0]])
        return float(scipy.linalg.solve_discrete_lyapunov(a_, q)[0, 0])

    def closed(lr_: float, b: float) -> float:
        return lr_ * (1 + b) / ((1 - b) * (2 * (1 + b) - lr_))

    nrows = [
        [a, b, a / (1 - b), closed(a, b) / 2, lyapunov(a, b) / 2, m]
        for (a, b), m in zip(noisy_grid, floors, strict=True)
    ]
    text7 = f"""
Goh's article draws the whole plane of choices, and the build can too: the figure colours
every (η, β) by the polynomial's ρ on the κ = {n(KAPPA)} quadratic. The stable region,
{n(100 * stable, 3)} % of the rectangle drawn, is bounded on the right by the stiff
direction's edge `ηL = 2(1 + β)`; inside it, the rate is `√β` wherever the roots are complex
(horizontal bands), and the single best point sits at the corner where the flat direction's
roots meet, the star.

Gradients in training are noisy, and momentum's average interacts with the noise too. Take
the noisy quadratic of the schedules chapter, gradient `hw + σξ`, and run heavy ball. The
state is now the pair `(w_t, w_(t-1))`, the recursion of the second section with a noise term
`-ησξ_t`, and its stationary covariance Σ solves the discrete Lyapunov equation
`Σ = AΣAᵀ + Q`, with A the two-by-two matrix of the recursion and Q the noise's. Solved by
hand for the variance of w, it gives

`E[w²] = ησ²(1 + β)/(h(1 - β)(2(1 + β) - ηh))`,

which for a small ηh is `(η/(1 - β)) σ²/(2h)`: the floor of plain SGD at the rate
`η/(1 - β)`. Averaging the gradients does reduce the noise of each step, but the velocity
adds up `1/(1 - β)` of them, and the two effects cancel. At a fixed *effective* rate
`η/(1 - β)` momentum buys speed on a badly conditioned problem and nothing against noise.
The table runs {n(512)} runs of descentlab's `Momentum` for {n(400)} steps at effective
rates 0.1 and 0.5 with β = 0, 0.5, 0.9, and averages the loss over the last {n(200)} steps:
at effective rate 0.1 the floors are {", ".join(n(r[5], 3) for r in nrows[:3])}, at 0.5
{", ".join(n(r[5], 3) for r in nrows[3:])}, each on the closed form and on the Lyapunov
solution. The larger effective rate shows the correction term: there the floors differ by
{n(max(r[5] for r in nrows[3:]) / min(r[5] for r in nrows[3:]), 3)} times across β, because
`ηh` is no longer small for β = 0."""
    parts.append(
        Part(
            "plane",
            "The (η, β) plane, and momentum under noise",
            [
                text7,
                fig,
                Table(
                    [
                        "η",
                        "β",
                        "η/(1 - β)",
                        "closed form (loss)",
                        "Lyapunov (loss)",
                        "measured (mean of 512 runs)",
                    ],
                    nrows,
                    "descentlab's Momentum on the noisy quadratic h = σ = 1, from w = 1",
                ),
                [
                    *[
                        close(
                            f"η = {a:g}, β = {b:g}: the closed form is the Lyapunov solution",
                            c,
                            ly,
                            1e-9,
                            rel=True,
                        )
                        for a, b, _, c, ly, _ in nrows
                    ],
                    *[
                        close(
                            f"η = {a:g}, β = {b:g}: the measured floor is the formula's",
                            m,
                            c,
                            0.1,
                            rel=True,
                        )
                        for a, b, _, c, _, m in nrows
                    ],
                    ck(
                        "at effective rate 0.1 the three β give floors within 10 % of each other",
                        max(r[5] for r in nrows[:3]) < 1.1 * min(r[5] for r in nrows[:3]),
                        ", ".join(f"{r[5]:.3g}" for r in nrows[:3]),
                        "max < 1.1 × min",
                    ),
                ],
            ],
        ),
    )

    text6 = """
What to keep. Momentum averages gradients over about `1/(1 - β)` steps; on a quadratic each
direction is a second-order linear recurrence whose roots give its rate; complex roots spiral
at `√β`; the stable range grows to `ηλ < 2(1 + β)`; and with the right pair (η, β) the steps
needed grow with `√κ` instead of κ. Nesterov's look-ahead puts the curvature into the
momentum term and damps the stiff directions further. With noisy gradients the average also
smooths the noise, but the step grows by the same `1/(1 - β)`: at a fixed effective rate
`η/(1 - β)` momentum and plain SGD reach the same noise floor when `ηh` is small, measured
above, so momentum is a cure for bad conditioning, not for noise; the schedules chapter
shows what is. The exercises on the momentum lecture's page practise these steps."""
    page = ChapterPage(
        "Momentum, in depth",
        "deep-momentum.html",
        "Why an average of past gradients speeds up a slow direction, how much, and when it "
        "turns into overshooting: derived on a quadratic, where every claim is exact, and "
        "measured with descentlab's Momentum and Nesterov.",
        (24, 25, 26, 50, 51, 52, 98, 99, 100, 102, 104),
        parts,
    )
    return finish(page, n, text6)
