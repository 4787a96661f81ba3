"""Momentum, in depth: the velocity as an average, heavy ball on one eigen-direction as a
two-by-two linear system, the condition number and the optimal (η, β), Nesterov's variant,
Lessard's counterexample, the (η, β) plane and the noise; traces run by descentlab's Momentum
and Nesterov on quadratics, heavy ball from scratch, and a real training run on MNIST-1D."""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import scipy.optimize
import torch

from descentlab import optim
from descentlab.book.chapters import _common as kit
from descentlab.book.chapters import practice
from descentlab.book.checks import Check, ck, close, said
from descentlab.book.experiments.momentum import envelope_rate, theory_rate
from descentlab.book.facts import Formula
from descentlab.book.model import Context
from descentlab.book.render.chapter import Part, Table
from descentlab.book.render.live import Live, Probe, Slider
from descentlab.problems import landscapes as L
from descentlab.problems.trajectories import run
from descentlab.report import figures as FG

__all__ = ["CHAPTER"]

KAPPA = 100.0
EIG = (1.0 / KAPPA, 1.0)
#: the slopes' settings: β and the steps the velocity has to fill
SLOPE_LR, SLOPE_BETAS, SLOPE_STEPS = 0.1, (0.5, 0.9, 0.99), 200
#: the edge: β, and how far below and above it the runs go
EDGE_BETA, EDGE_MARGIN = 0.5, 0.03
#: the trace table's grid on the κ = 100 quadratic, and the window its rate is read in
TRACE_LRS, TRACE_BETAS, TRACE_STEPS = (1.0, 2.0), (0.0, 0.5, 0.9), 1500
WINDOW = (200, 400)
#: the live figure's steps and its probes' (η, β)
LIVE_STEPS = 400
LIVE_PROBES = ((1.0, 0.0), (1.0, 0.9), (3.0, 0.6))
#: Nesterov's β at η = 1
NEST_BETAS = (0.9, 0.81)
#: Lessard, Recht and Packard's function (curvature LES_L, 1, LES_L on w < 1, 1 ≤ w < 2,
#: w ≥ 2): heavy ball at Polyak's optimum for κ = LES_L, Nesterov at (1/L, (√κ-1)/(√κ+1))
LES_L = 25.0
LES_HB = (4 / (math.sqrt(LES_L) + 1) ** 2, ((math.sqrt(LES_L) - 1) / (math.sqrt(LES_L) + 1)) ** 2)
LES_NEST = (1 / LES_L, (math.sqrt(LES_L) - 1) / (math.sqrt(LES_L) + 1))
LES_STARTS = (3.3, 1.5, 0.5, -2.0)
LES_STEPS = 500
#: the noisy quadratic: runs, steps (the second half averaged), effective rates and β
NOISE_RUNS, NOISE_STEPS, NOISE_EFFECTIVE, NOISE_BETAS = 512, 400, (0.1, 0.5), (0.0, 0.5, 0.9)
#: the training run on MNIST-1D: batch, steps, SGD's rate and momentum's β
TRAIN_B, TRAIN_STEPS, TRAIN_LR, TRAIN_BETA = 64, 400, 0.1, 0.9


def _quad(lrs, betas, steps: int, bound: float | None = None):
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


def _rate(loss: np.ndarray) -> float:
    """The distance's contraction per step in :data:`WINDOW`, from the loss's envelope (the
    loss is the distance squared, weighted by the curvatures)."""
    return envelope_rate(np.sqrt(loss), *WINDOW)


def _optimal(kappa: float) -> tuple[float, float]:
    """Polyak's (η, β) for the quadratic with eigenvalues 1/κ and 1."""
    return (2 / (1 + math.sqrt(1 / kappa))) ** 2, (
        (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    ) ** 2


def _rho(char: Formula, eta: float, beta: float, eigs=EIG) -> float:
    """The rate the polynomial ``char`` the page shows gives: the largest modulus of its roots
    in z (np.roots of its coefficients at η, β and each curvature λ of ``eigs``)."""
    roots = [np.roots(char.coefficients("z", eta=eta, beta=beta, lamda=lam)) for lam in eigs]
    # (a polynomial of lower degree than two, shown wrong, has fewer roots: no rate, NaN)
    if any(len(r) != 2 for r in roots):
        return math.nan
    return max(float(max(abs(r))) for r in roots)


def _crossing(f, lo: float, hi: float, xtol: float) -> float:
    """Where ``f`` changes sign between ``lo`` and ``hi`` (brentq), NaN where it does not (a
    polynomial shown wrong: the check that compares it is then a ✘, not a crash)."""
    if f(lo) * f(hi) > 0:
        return math.nan
    return scipy.optimize.brentq(f, lo, hi, xtol=xtol)


def _edge(beta: float, lam: float = 1.0) -> float:
    """Where the polynomial's largest root reaches modulus 1 (a root-finder on its roots)."""
    return _crossing(lambda e: _rho(HB_CHAR, e, beta, [lam]) - 1, 1e-6, 8 / lam, 1e-13)


# ------------------------------------------------------------------------------------------
# the update rules the sections show, one SymPy expression each: typeset on the page (latex)
# and evaluated at each step against descentlab's Momentum and Nesterov, so the rule the
# reader sees is the one checked

MOM_B = Formula("beta*b + g")
MOM_W = Formula("w - eta*b")
MOM_B_DAMPED = Formula("beta*b + (1 - tau)*g")
#: one eigen-direction's recurrences, the buffer eliminated: heavy ball's and Nesterov's
HB_NEXT = Formula("(1 + beta - eta*lamda)*w_t - beta*w_p", {"w_p": "w_{t-1}"})
NEST_NEXT = Formula("(1 + beta)*(1 - eta*lamda)*w_t - beta*(1 - eta*lamda)*w_p", {"w_p": "w_{t-1}"})
#: the buffer eliminated, line by line: each evaluated at descentlab's iterates and buffers
STEP_NEXT = Formula("Eq(w_n, w_t - eta*b_n)", {"w_n": "w_{t+1}", "b_n": "b_{t+1}"})
BUFFER_NEXT = Formula("Eq(b_n, beta*b_t + lamda*w_t)", {"b_n": "b_{t+1}"})
ELIMINATED = Formula("Eq(eta*b_t, w_p - w_t)", {"w_p": "w_{t-1}"})
#: the recurrences' characteristic polynomials (their roots are the rates the pages print), the
#: edge of heavy ball's stability and the β where its roots turn complex
HB_CHAR = Formula("z**2 - (1 + beta - eta*lamda)*z + beta")
NEST_CHAR = Formula("z**2 - (1 + beta)*(1 - eta*lamda)*z + beta*(1 - eta*lamda)")
EDGE = Formula("2*(1 + beta)")
CRIT = Formula("(1 - sqrt(eta*mu))**2")
#: the buffer on a constant slope: its weights' sum after t steps, the damped buffer's after T
#: (over ηg), and a gradient's half-life in the buffer
FILLED = Formula("(1 - beta**t)/(1 - beta)")
DAMPED_FILLED = Formula("beta**(T - 1) + (1 - tau)*(1 - beta**(T - 1))/(1 - beta)")
#: the damped buffer's filled step over ηg, T → ∞ (DAMPED_FILLED's limit)
DAMPED_LIMIT = Formula("(1 - tau)/(1 - beta)")
HALF_LIFE = Formula("log(2)/log(beta**(-1))")
#: heavy ball's stationary E[w²] on the noisy quadratic (gradient hw + σξ), the Lyapunov
#: equation solved by hand
NOISE_VAR = Formula("eta*sigma**2*(1 + beta)/(h*(1 - beta)*(2*(1 + beta) - eta*h))")
#: the rules' checks: the rate, the curvature of the recurrences' quadratic, the steps
RULE_LR, RULE_CURV, RULE_STEPS = 0.1, 1.0, 300
#: the damping the damped buffer is checked at: not 0.5, where τ and 1 - τ are one number and
#: a rule that swaps them would pass
RULE_DAMPING = 0.3


def _buffer_rule(beta: float, tau: float = 0.0) -> list[float]:
    """The iterates of the rule the page shows (the buffer starts at the first gradient, then
    gains the damped one), on the gradient that turns (:func:`kit.wavy`)."""

    def update(st: dict[str, float], g: float, t: int) -> dict[str, float]:
        if tau == 0.0:
            b = MOM_B(beta=beta, b=st.get("b", 0.0), g=g)
        else:
            b = g if t == 1 else MOM_B_DAMPED(beta=beta, b=st["b"], tau=tau, g=g)
        return {"b": b, "w": MOM_W(w=st["w"], eta=RULE_LR, b=b)}

    return kit.rule_iterates(update, kit.wavy, 1.0, RULE_STEPS)


def _recurrence_rule(rule: Formula, nesterov: bool) -> tuple[list[float], list[float]]:
    """One eigen-direction's recurrence as the page shows it, evaluated at each step at
    descentlab's two last iterates on ``f = λw²/2``, and descentlab's next iterates."""
    make = optim.Nesterov if nesterov else optim.Momentum
    ws = [1.0, *kit.iterates(lambda p: make(p, lr=RULE_LR, momentum=0.9),
                             lambda w, t: RULE_CURV * w, 1.0, RULE_STEPS)]  # fmt: skip
    shown = [
        rule(beta=0.9, eta=RULE_LR, lamda=RULE_CURV, w_t=ws[t], w_p=ws[t - 1])
        for t in range(1, RULE_STEPS)
    ]
    return shown, ws[2:]


def _derivation_checks() -> list:
    """The buffer's elimination as the page shows it, line by line: each equation's two sides
    at descentlab's Momentum's iterates and buffers on ``f = λw²/2`` (β = 0.9), every step."""
    w = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = optim.Momentum([w], lr=RULE_LR, momentum=0.9)
    ws, bs = [1.0], [0.0]
    for _ in range(RULE_STEPS):
        w.grad = RULE_CURV * w.detach().clone()
        opt.step()
        ws.append(float(w.detach()))
        bs.append(float(opt.state[w]["momentum_buffer"]))
    at = {"eta": RULE_LR, "beta": 0.9, "lamda": RULE_CURV}
    lines = {
        "wₜ₊₁ from bₜ₊₁": [STEP_NEXT.sides(w_n=ws[t + 1], w_t=ws[t], b_n=bs[t + 1], **at)
                                 for t in range(1, RULE_STEPS)],
        "bₜ₊₁ from bₜ": [BUFFER_NEXT.sides(b_n=bs[t + 1], b_t=bs[t], w_t=ws[t], **at)
                             for t in range(1, RULE_STEPS)],
        "ηbₜ from two iterates": [ELIMINATED.sides(b_t=bs[t], w_p=ws[t - 1], w_t=ws[t], **at)
                                    for t in range(1, RULE_STEPS + 1)],
    }  # fmt: skip
    return [
        kit.rule_check(f"the derivation's line {name} as the page shows it: its left side",
                       [a for a, _ in sides], [b for _, b in sides],
                       against="its right side at descentlab's Momentum's iterates and buffers")
        for name, sides in lines.items()
    ]  # fmt: skip


def _polynomial_checks(char: Formula, rec: Formula, method: str, grid) -> list[Check]:
    """The characteristic polynomial as the page shows it is its recurrence's (coefficients
    1, -a, -b for ``w_{t+1} = a w_t + b w_{t-1}`` as shown), and its roots' largest modulus
    is the rate experiments.momentum.theory_rate computes, at each (η, β) of ``grid`` and
    each curvature of the quadratic (to 1e-7: at the optimum's double root np.roots is
    exact only to the square root of the rounding)."""
    coefs, rates = [], []
    for eta, beta in grid:
        for lam in EIG:
            at = {"eta": eta, "beta": beta, "lamda": lam}
            want = [1.0, -rec(w_t=1.0, w_p=0.0, **at), -rec(w_t=0.0, w_p=1.0, **at)]
            got = char.coefficients("z", **at)
            coefs += [abs(g - x) / max(abs(x), 1.0) for g, x in zip(got, want, strict=True)]
            coefs += [math.inf] * (len(got) != len(want))  # (of another degree)
        rho = theory_rate(method, eta, beta, EIG)
        rates.append(abs(_rho(char, eta, beta) - rho) / rho)
    # (a NaN, no rate, is the worst: max() would pass over it after the first item)
    coef, roots = (max(v) if all(math.isfinite(x) for x in v) else math.inf for v in (coefs, rates))
    where = f"at {len(grid)} (η, β) and both curvatures (worst)"
    return [
        close(f"the characteristic polynomial as the page shows it: its coefficients against "
              f"the recurrence shown, {where}", coef, 0.0, 1e-12),
        close(f"the characteristic polynomial as the page shows it: its roots' largest "
              f"modulus against theory_rate({method!r}), {where}", roots, 0.0, 1e-7),
    ]  # fmt: skip


def _rule_checks() -> list:
    """The checks that the rules the page shows are descentlab's, step by step."""
    wavy = [kit.iterates(lambda p, d=d: optim.Momentum(p, lr=RULE_LR, momentum=0.9, dampening=d),
                         kit.wavy, 1.0, RULE_STEPS) for d in (0.0, RULE_DAMPING)]  # fmt: skip
    return [
        kit.rule_check("the buffer and the step as the page shows them (β = 0.9), on a "
                       "gradient that turns", _buffer_rule(0.9), wavy[0]),
        kit.rule_check(f"the damped buffer as the page shows it (τ = {RULE_DAMPING:g})",
                       _buffer_rule(0.9, RULE_DAMPING),
                       wavy[1]),
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------
# 1. the velocity as an average

AVERAGE = kit.Prose(
    """
Start from torch's form of momentum, the one descentlab's `Momentum` uses: the buffer
collects gradients, $b \\leftarrow {{rule_b}}$, and the step is $w \\leftarrow {{rule_w}}$.
Unroll the buffer from $b = 0$ and it is a weighted sum of every gradient so far,

$$b_t = g_t + \\beta g_{t-1} + \\beta^2 g_{t-2} + \\dots = {{f:momentum_sum}}.$$

The newest gradient counts fully, one from k steps ago counts $\\beta^k$. The weights sum to
${{filled_tex}}$, which tends to ${{f:momentum_limit}}$. So momentum is gradient descent
on a running average of the gradients, multiplied by the weights' sum: where the gradient
keeps its direction the step grows towards ${{f:effective_rate}}$ times the gradient, and where it
flips sign from step to step the terms cancel.

The simplest place to see this is a constant slope, $f(w) = gw$, where every gradient is the
same. The table runs descentlab's `Momentum` at η = 0.1 and g = 1 for {{steps}} steps and reads
the size of the last step, in units of plain gradient descent's step ηg. At β = 0.5 the sum is
full after a few steps, and the step is {{s05}} times plain gradient descent's. At β = 0.9 it
is {{s09}}. At β = 0.99 the promised factor is {{limit099}}, but after {{steps}} steps the
buffer has only reached {{s099}}: the memory that makes β close to 1 attractive also makes it
slow to fill. The weight of a gradient halves every ${{half_tex}}$ steps, {{half}}
steps at β = 0.99, so a buffer of that β needs several times that many steps to forget a
start or to react to a turn. This is the first trade-off of momentum, and it returns below in
another form: large β means a long, smooth memory and a slow reaction.

torch's `dampening` τ, which descentlab's `Momentum` takes too, scales each gradient entering
the buffer, $b \\leftarrow {{rule_damped}}$, all but the first (the buffer starts at
the gradient itself). The filled step is then ${{damped_limit_tex}}$ times ηg, {{dlimit}} at
β = 0.9 and `dampening` = 0.5: the measured step after {{steps}} steps is {{sdamp}} times
ηg, against {{sdamp_pred}} from ${{damped_tex}}$. With
`dampening` = β the buffer is an exponential moving average of the gradients, and the step
stays ηg: measured {{sema}} times ηg. The factor ${{f:momentum_limit}}$ is a property of the
undamped buffer, not of momentum.""",
    s05="β = 0.5: the measured step over ηg, against the filled sum",
    s09="β = 0.9: the measured step over ηg, against the filled sum",
    limit099="1/(1 - β) at β = 0.99, against the series summed term by term",
    s099="β = 0.99: the measured step over ηg, against the filled sum",
    half="the half-life ln 2/ln(1/β), against a root-finder on β^t = 1/2",
    sdamp="β = 0.9, dampening 0.5: the measured step over ηg, against the formula",
    sdamp_pred="β^(T-1) + (1 - τ)(1 - β^(T-1))/(1 - β), against the measured step",
    dlimit="the filled step's formula at β = 0.9, τ = 0.5, against the damped buffer's "
    "measured step",
    sema="dampening = β = 0.9: the measured step over ηg, against 1",
)


def _damped_step(beta: float, tau: float) -> float:
    """The step after :data:`SLOPE_STEPS` steps on a unit slope, over ηg, with dampening τ:
    the buffer starts at g, then gains (1 - τ)g a step."""
    return DAMPED_FILLED(beta=beta, tau=tau, T=SLOPE_STEPS)


def _average(ctx: Context, n: kit.Numbers) -> Part:
    slopes = ctx.memo(("chapter", "momentum", "slope"), _slope_runs)
    damped, ema = (
        kit.slope_steps(
            lambda p, d=d: optim.Momentum(p, lr=SLOPE_LR, momentum=0.9, dampening=d),
            1.0,
            SLOPE_STEPS,
        )
        for d in (0.5, 0.9)
    )
    filled = [FILLED(beta=b, t=SLOPE_STEPS) for b in SLOPE_BETAS]
    m = [s[-1] / SLOPE_LR for s in slopes]
    text = AVERAGE.fill(
        n,
        rule_b=MOM_B.tex,
        rule_w=MOM_W.tex,
        rule_damped=MOM_B_DAMPED.tex,
        filled_tex=FILLED.tex,
        half_tex=HALF_LIFE.tex,
        damped_tex=DAMPED_FILLED.tex,
        damped_limit_tex=DAMPED_LIMIT.tex,
        steps=str(SLOPE_STEPS),
        s05=(m[0], filled[0]),
        s09=(m[1], filled[1]),
        limit099=(1 / (1 - 0.99), math.fsum(0.99**k for k in range(20000))),
        s099=(m[2], filled[2]),
        half=(
            HALF_LIFE(beta=0.99),
            scipy.optimize.brentq(lambda t: 0.99**t - 0.5, 1, 1000, xtol=1e-12),
        ),
        sdamp=(damped[-1] / SLOPE_LR, _damped_step(0.9, 0.5), 1e-9),
        sdamp_pred=(_damped_step(0.9, 0.5), damped[-1] / SLOPE_LR, 1e-9),
        dlimit=(DAMPED_LIMIT(beta=0.9, tau=0.5), damped[-1] / SLOPE_LR, 1e-8),
        sema=(ema[-1] / SLOPE_LR, 1.0, 1e-9),
    )
    rows = [[b, 1 / (1 - b), f, v] for b, f, v in zip(SLOPE_BETAS, filled, m, strict=True)]
    checks = [
        close(f"β = {b:g}: the step after {SLOPE_STEPS} steps is ηg (1 - β^T)/(1 - β)", v, f, 1e-9)
        for b, f, v in zip(SLOPE_BETAS, filled, m, strict=True)
    ]
    checks += _rule_checks()
    table = Table(
        ["β", "1/(1 - β)", f"(1 - β^T)/(1 - β), T = {SLOPE_STEPS}", "measured step / (ηg)"],
        rows,
        "descentlab's Momentum on the slope f(w) = w, η = 0.1 (float64)",
    )
    return Part("average", "The velocity is an average of past gradients", [text, table, checks])


def _slope_runs() -> list[list[float]]:
    return [
        kit.slope_steps(lambda p, b=b: optim.Momentum(p, lr=SLOPE_LR, momentum=b), 1.0, SLOPE_STEPS)
        for b in SLOPE_BETAS
    ]


# ------------------------------------------------------------------------------------------
# 2. one eigen-direction: a linear system

RECURRENCE = kit.Prose(
    """
Why does averaging help, and when does it hurt? On a quadratic the question has an exact
answer, because everything decouples. Write the loss in the Hessian's eigenbasis,
$f(w) = \\sum_i \\lambda_i w_i^2/2$: the gradient along direction i is $\\lambda_i w_i$, and
momentum's update along that direction involves only that direction. Eliminate the buffer
(from ${{step_next}}$ and ${{buffer_next}}$ one gets ${{eliminated}}$) and one direction
obeys

$$w_{t+1} = {{rule_hb}}.$$

This is a linear recurrence of order two: the present and the previous position set the next.
Its solutions are combinations of $z^t$ for the two roots of the characteristic polynomial

$${{hb_char}} = 0,$$

and the distance to the minimum shrinks like the larger modulus of the two roots, ρ. Three
facts follow from the polynomial alone. The product of the roots is β, so when they are
complex (a conjugate pair) both have modulus ${{f:complex_rate}}$: the iterate spirals in
at the rate ${{f:complex_rate}}$ whatever the rate η, overshooting and coming back. When
they are real the path does not oscillate at a rate set by β, and the larger root decides.
And the recurrence is stable exactly when $0 < \\eta\\lambda < {{edge_tex}}$: plain gradient
descent needs $\\eta\\lambda < 2$, momentum stretches that to {{edge09}} at β = 0.9.

The build checks the edge: on $f = w^2/2$ (λ = 1) at β = 0.5 the edge is ηλ = {{edge05}}.
descentlab's `Momentum` 3 % below it, at ηλ = {{below}}, {{below_fate}}; 3 % above it, at
ηλ = {{above}}, it {{above_fate}}.""",
    edge09="the edge 2(1 + β) at β = 0.9, against a root-finder on the largest root",
    edge05="the edge 2(1 + β) at β = 0.5, against the root-finder",
    below="3 % below the edge, against the root-finder's",
    above="3 % above the edge, against the root-finder's",
)


def _recurrence(ctx: Context, n: kit.Numbers) -> Part:
    edge = EDGE(beta=EDGE_BETA)
    lrs = [(1 - EDGE_MARGIN) * edge, (1 + EDGE_MARGIN) * edge]
    one = run(L.quadratic(kappa=1.0, dim=1), "momentum", torch.ones(2, 1, dtype=torch.float64),
              200, lr=lrs, hyper={"momentum": [EDGE_BETA] * 2}, bound=1e8)  # fmt: skip
    below, above = bool(one.diverged[0]), bool(one.diverged[1])
    root = _edge(EDGE_BETA)
    text = RECURRENCE.fill(
        n,
        rule_hb=HB_NEXT.tex,
        step_next=STEP_NEXT.tex,
        buffer_next=BUFFER_NEXT.tex,
        eliminated=ELIMINATED.tex,
        hb_char=HB_CHAR.tex,
        edge_tex=EDGE.tex,
        edge09=(EDGE(beta=0.9), _edge(0.9)),
        edge05=(edge, root),
        below=(lrs[0], (1 - EDGE_MARGIN) * root),
        above=(lrs[1], (1 + EDGE_MARGIN) * root),
        below_fate="diverges" if below else "converges",
        above_fate="diverges" if above else "converges",
    )
    fate = {True: "diverged", False: "finite"}
    checks = [
        ck("heavy ball at ηλ 3 % below 2(1 + β) (β = 0.5) stays finite for 200 steps",
           not below, fate[below], "finite"),
        ck("heavy ball at ηλ 3 % above 2(1 + β) diverges", above, fate[above], "diverged"),
        kit.rule_check("the recurrence as the page shows it, at descentlab's Momentum's "
                       "iterates on λw²/2", *_recurrence_rule(HB_NEXT, nesterov=False)),
        *_derivation_checks(),
        *_polynomial_checks(HB_CHAR, HB_NEXT, "momentum", _grid()),
    ]  # fmt: skip
    return Part("recurrence", "One direction of a quadratic is a two-by-two system", [text, checks])


# ------------------------------------------------------------------------------------------
# 3. the condition number: traces for several (η, β)

#: the rates the section shows and states, one expression each: typeset (SymPy's latex) and
#: evaluated at κ, so the formula on the page is the one computed
GD_RATE = Formula("(kappa - 1)/(kappa + 1)")
HB_RATE = Formula("(sqrt(kappa) - 1)/(sqrt(kappa) + 1)")
HB_BETA = Formula("((sqrt(kappa) - 1)/(sqrt(kappa) + 1))**2")
#: gradient descent's best rate, where the extreme directions contract equally fast
GD_LR = Formula("2/(L + mu)")

CONDITION = kit.Prose(
    """
A real problem has many directions with different curvatures, and one (η, β) must serve them
all. Take the quadratic with eigenvalues from μ = 0.01 to L = 1, condition number
κ = L/μ = {{kappa}}, started at (1, 1). Plain gradient descent's best rate is
$\\eta = {{gd_lr_tex}}$, where the two extreme directions contract equally fast, at

$$\\rho_{\\mathrm{GD}} = {{gd_tex}}$$

= {{gd_rate}} per step: about {{gd_steps}} steps to shrink the distance by a factor
$10^6$. The stiff direction limits η, the flat one then crawls.

Momentum changes the bargain. In the flat direction a large β lets the small gradient build
up speed; in the stiff one the same β makes the roots complex, and they spiral in at
${{f:complex_rate}}$ whatever η is, so η can grow beyond what gradient descent tolerates. Balancing
the two gives the classic choice (Polyak's heavy ball, derived in Goh's article):

$$\\eta^* = {{f:hb_eta}}, \\qquad
\\beta^* = {{beta_tex}}, \\qquad
\\rho^* = {{hb_tex}},$$

here η* = {{eta_opt}}, β* = {{beta_opt}} and ρ* = {{hb_rate}}: the condition number enters
through its square root. Predicted, about {{hb_steps}} steps instead of {{gd_steps}}.

The table runs descentlab's `Momentum` for {{trace_steps}} steps at each (η, β) and measures the
rate from the loss's envelope between steps 200 and 400 (the loss is the distance squared,
weighted by the curvatures). Every measured rate matches the polynomial's ρ, and the steps the
table predicts, computed with no run from the powers of each direction's two-by-two recurrence
matrix, are the run's in every row. Three rows teach
most. At η = 2, β = 0, gradient descent sits exactly on its edge: the stiff direction flips
sign every step without shrinking, ρ = 1, and the loss never falls (measured {{flat}}). Add
β = 0.5 at the same η and the stiff direction becomes a damped spiral, ρ = {{rho205}}. At
β = 0.9 the rate is {{rho109}} at both rates η: that is $\\sqrt{0.9}$, the complex roots'
modulus, and η no longer matters. The last rows show the optimum's rate, {{opt_meas}}
measured, and its fragility: at the same η with β = 0.5 the stiff direction leaves the stable
region ($\\eta L > {{edge_tex}}$) and the run diverges.

One honest detail: the loss takes {{st_opt}} steps at the optimum to fall by $10^{12}$, more
than the rate alone predicts. At the optimal β the flat direction's two roots coincide (the
polynomial's discriminant is zero), and a double root multiplies $\\rho^t$ by t: the error
carries a linear factor that the rate hides. Tuned slightly off the optimum, the roots
separate and the factor goes away, one reason practitioners rarely sit exactly on it.""",
    kappa="κ = L/μ of the quadratic's eigenvalues",
    gd_rate="gradient descent's (κ - 1)/(κ + 1), against its measured rate at 2/(L + μ)",
    gd_steps="gradient descent's predicted steps to 1e-6, against its run",
    eta_opt="η* = (2/(√L + √μ))², against a numerical minimisation of ρ over (η, β)",
    beta_opt="β* = ((√κ - 1)/(√κ + 1))², against the numerical minimisation",
    hb_rate="ρ* = (√κ - 1)/(√κ + 1), against the minimised ρ",
    hb_steps="heavy ball's predicted steps, against the polynomial's ρ at (η*, β*)",
    flat="η = 2, β = 0: the measured rate, against |1 - ηL| = 1",
    rho205="η = 2, β = 0.5: the polynomial's ρ, against the measured rate",
    rho109="η = 1, β = 0.9: the polynomial's ρ, against √β",
    opt_meas="the optimum's measured rate, against ρ*",
    st_opt="steps to 1e-12 of the loss at (η*, β*), against the recurrences in float64",
)


def _grid() -> list[tuple[float, float]]:
    eta_opt, beta_opt = _optimal(KAPPA)
    gd = GD_LR(L=EIG[1], mu=EIG[0])
    return [(a, b) for a in TRACE_LRS for b in TRACE_BETAS] + [
        (eta_opt, beta_opt),
        (eta_opt, 0.5),
        (gd, 0.0),
    ]


def _trace_rows(grid, tr) -> tuple[list[list], list, dict]:
    rows, checks, rates = [], [], {}
    for k, (a, b) in enumerate(grid):
        rho, loss, div = (
            _rho(HB_CHAR, a, b),
            tr.losses[k].numpy(),
            bool(tr.diverged[k]),
        )
        st = kit.steps_to(loss, 1e-12) if not div else None
        rates[(a, b)] = meas = _rate(loss) if not div else math.nan
        rows.append(
            [
                round(a, 4),
                round(b, 4),
                round(rho, 5),
                _power_steps(a, b) or "never",
                "diverged" if div else round(meas, 5),
                "diverged" if div else (st if st is not None else f"> {TRACE_STEPS}"),
            ]
        )
        label, shown = f"η = {a:.4g}, β = {b:.4g}", rows[-1][3]  # the table's number
        checks.append(
            ck(
                f"{label}: the table's predicted steps are the run's, within one",
                (shown == "never" and st is None)
                or (shown != "never" and st is not None and abs(shown - st) <= 1),
                f"predicted {shown}, run {st}",
                "equal within one step (both none when it never gets there)",
            )
        )
        if rho > 1 + 1e-12:
            checks.append(
                ck(
                    f"{label}: ρ > 1 and the run diverges",
                    div,
                    "diverged" if div else "finite",
                    "diverged",
                )
            )
        else:
            checks.append(close(f"{label}: the measured rate is ρ", meas, rho, 0.005, rel=True))
    return rows, checks, rates


def _condition(ctx: Context, n: kit.Numbers) -> Part:
    grid = _grid()
    tr = ctx.memo(
        ("chapter", "momentum", "trace"),
        lambda: _quad([a for a, _ in grid], [b for _, b in grid], TRACE_STEPS, bound=1e6),
    )
    rows, checks, rates = _trace_rows(grid, tr)
    eta, beta = _optimal(KAPPA)
    opt = scipy.optimize.minimize(
        lambda v: theory_rate("momentum", v[0], v[1], EIG),
        [2.0, 0.5],
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-13},
    )
    gd, hb = GD_RATE(kappa=KAPPA), HB_RATE(kappa=KAPPA)
    text = CONDITION.fill(
        n,
        gd_tex=GD_RATE.tex,
        gd_lr_tex=GD_LR.tex,
        hb_tex=HB_RATE.tex,
        beta_tex=HB_BETA.tex,
        edge_tex=EDGE.tex,
        trace_steps=str(TRACE_STEPS),
        kappa=kit.Twin(KAPPA, EIG[1] / EIG[0], 0),
        gd_rate=(gd, rates[grid[-1]], 0.002, 4),
        gd_steps=(
            round(math.log(1e-6) / math.log(gd)),
            kit.steps_to(tr.losses[-1].numpy(), 1e-12),
            0.01,
        ),
        eta_opt=(eta, opt.x[0], 1e-4, 4),
        beta_opt=(HB_BETA(kappa=KAPPA), opt.x[1], 1e-4, 4),
        hb_rate=(hb, opt.fun, 1e-5, 4),
        hb_steps=(
            round(math.log(1e-6) / math.log(hb)),
            math.log(1e-6) / math.log(theory_rate("momentum", eta, beta, EIG)),
            0.01,
        ),
        flat=(rates[(2.0, 0.0)], theory_rate("gd", 2.0, 0.0, EIG), 1e-6, 4),
        rho205=(theory_rate("momentum", 2.0, 0.5, EIG), rates[(2.0, 0.5)], 0.005, 4),
        rho109=(theory_rate("momentum", 1.0, 0.9, EIG), math.sqrt(0.9), 1e-9, 4),
        opt_meas=(rates[(eta, beta)], hb, 0.01, 4),
        st_opt=(
            kit.steps_to(tr.losses[grid.index((eta, beta))].numpy(), 1e-12),
            _double_root_steps(eta, beta),
            0.02,
        ),
    )
    checks.append(
        ck(
            "at η = 2 plain gradient descent (β = 0) never converges, momentum does",
            rates[(2.0, 0.0)] > 0.999 and rates[(2.0, 0.5)] < 0.99,
            f"{rates[(2.0, 0.0)]:.4f} and {rates[(2.0, 0.5)]:.4f}",
            "≥ 0.999 and < 0.99",
        )
    )
    table = Table(
        ["η", "β", "predicted ρ", "predicted steps to loss × 1e-12 (powers of the recurrence)",
         f"measured rate (steps {WINDOW[0]}-{WINDOW[1]})", "measured steps to loss × 1e-12"],
        rows,
        f"descentlab's Momentum on the quadratic with κ = {KAPPA:g} (eigenvalues 0.01 and 1), "
        "start (1, 1), float64",
    )  # fmt: skip
    title = "The condition number: traces for several (η, β)"
    return Part("condition", title, [text, table, checks])


def _power_steps(eta: float, beta: float) -> int | None:
    """The first t at which the loss has lost a factor 1e12, by powers of each direction's
    2×2 companion matrix ``[[1 + β - ηλ, -β], [1, 0]]`` applied to (w_0, w_-1) = (1, 1) (no
    run, no envelope); None if not within :data:`TRACE_STEPS` steps."""
    mats = [np.array([[1 + beta - eta * lam, -beta], [1.0, 0.0]]) for lam in EIG]
    first = float(sum(EIG))
    for t in range(1, TRACE_STEPS):
        ws = [np.linalg.matrix_power(m, t)[0].sum() for m in mats]
        loss = sum(lam * w * w for lam, w in zip(EIG, ws, strict=True))
        if loss <= 1e-12 * first:
            return t
        if loss > 1e12 * first:  # diverging
            return None
    return None


def _double_root_steps(eta: float, beta: float) -> int:
    """The first t at which the exact solution of the two directions' recurrences (each
    iterated in float64 from w_0 = w_-1 = 1) has lost a factor 1e12 of its loss: the second
    route for the optimum's steps, with no envelope involved."""
    w = np.array([1.0, 1.0])
    prev = w.copy()
    lam = np.array(EIG)
    first = float((lam * w * w).sum())
    for t in range(1, TRACE_STEPS):
        w, prev = (1 + beta - eta * lam) * w - beta * prev, w
        if t == 1:  # the first step of heavy ball from rest: w_1 = w_0 - ηλw_0
            w = prev - eta * lam * prev
        if float((lam * w * w).sum()) <= 1e-12 * first:
            return t
    return TRACE_STEPS


# ------------------------------------------------------------------------------------------
# 4. the figure to move: computed in the page

MOVE = kit.Prose(
    """
Move η and β and watch both panels: the page runs heavy ball itself, the recurrence above in
a few lines of JavaScript, for {{live_steps}} steps from (1, 1) on the κ = {{kappa}} quadratic.
At β = 0 and η = 1 the path drops straight down the stiff direction in one step (ηL = 1 lands
exactly on the floor) and then creeps along the flat one, a straight line on the log scale
with slope $2 \\ln 0.99$. As β grows the creeping speeds up: the flat direction's roots stay
real while β is below ${{crit_tex}}$ = {{crit}}, the larger one shrinking as β
grows. Beyond that value they turn complex and the rate is ${{f:complex_rate}}$, which grows with β:
the path starts to circle, the loss curve shows ripples, and more β is slower. Push η past
${{edge_tex}}$ and the stiff direction explodes. This is the second face of the trade-off of
the first section: memory speeds up a slow direction only until it becomes inertia. Under the
figure the page says whether its own computation agrees with descentlab's `Momentum`,
checked when the page opens.""",
    crit="where the flat roots turn complex at η = 1, against a root-finder",
)

#: heavy ball on the quadratic with eigenvalues 1/κ and 1, in the reader's browser
MOVE_JS = """function (p) {
  var lam = [0.01, 1.0], w = [1, 1], b = [0, 0], loss = [], path = [[1], [1]], T = p.T;
  loss.push(0.5 * (lam[0] + lam[1]));
  for (var t = 0; t < T; t++) {
    for (var i = 0; i < 2; i++) {
      b[i] = p.beta * b[i] + lam[i] * w[i];
      w[i] = w[i] - p.lr * b[i];
    }
    path[0].push(w[0]); path[1].push(w[1]);
    loss.push(0.5 * (lam[0] * w[0] * w[0] + lam[1] * w[1] * w[1]));
  }
  var rho = 0;
  lam.forEach(function (l) {
    var a = 1 + p.beta - p.lr * l, d = a * a - 4 * p.beta;
    var r = d < 0 ? Math.sqrt(p.beta)
                  : Math.max(Math.abs(a + Math.sqrt(d)), Math.abs(a - Math.sqrt(d))) / 2;
    rho = Math.max(rho, r);
  });
  var ts = seq(T + 1), env = ts.map(function (t) { return loss[0] * Math.pow(rho, 2 * t); });
  var envLabel = 'envelope ρ^(2t), ρ = ' + fmt(rho), why = {};
  if (rho > 1) {  // why it diverges: a root of the characteristic polynomial outside 1
    why['heavy ball, computed here'] = why[envLabel] = 'ρ = ' + fmt(rho) + ' > 1: a root of ' +
      'z² - (1 + β - ηλ)z + β lies outside the unit circle (stable only for 0 < ηλ < ' +
      '2(1 + β) = ' + fmt(2 * (1 + p.beta)) + '; here ηλ = ' + fmt(p.lr * Math.max(lam[0],
      lam[1])) + ' on the stiff direction), so each step multiplies the error by ρ';
  }
  return {panels: [
    {x: {label: 'w1 (flat direction)', min: -1.2, max: 1.2},
     y: {label: 'w2 (stiff)', min: -1.2, max: 1.2},
     lines: [{x: path[0], y: path[1], label: 'the path from (1, 1)'}]},
    {x: {label: 'step t'}, y: {label: 'loss', log: true, min: 1e-14, max: 10},
     lines: [{x: ts, y: loss, label: 'heavy ball, computed here'},
             {x: ts, y: env, label: envLabel, dash: true,
              colour: '#555555'}]}],
    values: {loss100: loss[100], rho: rho}, why: why,
    text: 'ρ = ' + fmt(rho) + ' per step (the characteristic polynomial); loss after ' + T +
          ' steps ' + fmt(loss[T])};
}"""


def _move(ctx: Context, n: kit.Numbers) -> Part:
    tr = ctx.memo(
        ("chapter", "momentum", "live"),
        lambda: _quad([a for a, _ in LIVE_PROBES], [b for _, b in LIVE_PROBES], 100),
    )
    probes = [
        Probe(
            {"lr": a, "beta": b},
            {"loss100": float(tr.losses[k, 100]), "rho": theory_rate("momentum", a, b, EIG)},
        )
        for k, (a, b) in enumerate(LIVE_PROBES)
    ]
    text = MOVE.fill(
        n,
        live_steps=str(LIVE_STEPS),
        kappa=f"{KAPPA:g}",
        crit_tex=CRIT.tex,
        edge_tex=EDGE.tex,
        crit=(CRIT(eta=1.0, mu=EIG[0]), _real_roots_end(1.0, EIG[0])),
    )
    fig = Live(
        "Move η and β (κ = 100): left the path, right the loss with the envelope $\\rho^{2t}$ "
        "the characteristic polynomial predicts.",
        [Slider("lr", "η", 0.05, 4.2, 1.0), Slider("beta", "β", 0.0, 0.995, 0.81)],
        MOVE_JS,
        probes,
        against="descentlab's Momentum",
        constants={"T": LIVE_STEPS},
    )
    return Part("move", "Move η and β: from crawling to circling", [text, fig, []])


def _real_roots_end(eta: float, lam: float) -> float:
    """The β below 1 at which the discriminant of the polynomial the page shows changes sign
    (a root-finder on its coefficients)."""

    def disc(b: float) -> float:
        c2, c1, c0 = HB_CHAR.coefficients("z", eta=eta, beta=b, lamda=lam)
        return c1 * c1 - 4 * c2 * c0

    return _crossing(disc, 0.0, 0.999999, 1e-14)


# ------------------------------------------------------------------------------------------
# 5. Nesterov

NESTEROV = kit.Prose(
    """
Nesterov's variant (items 52 and 104) evaluates the gradient where the velocity is about to
carry the iterate, not where it is. On a quadratic the same elimination gives

$$w_{t+1} = {{rule_nest}}:$$

the curvature now multiplies the momentum term too. In the stiff direction the look-ahead
sees the wall coming, and the polynomial ${{nest_char}}$ has smaller roots there than heavy
ball's. At η = 1, ηL = 1 makes the stiff direction's polynomial ${{nest_stiff}}$: it is solved
in one step whatever β. The flat direction then decides: at β = 0.9 Nesterov's predicted rate
is {{n09}} (heavy ball's {{hb09}}), measured {{m09}}; at β = 0.81, {{n081}} predicted and
{{m081}} measured. On a quadratic the gain over a well-tuned heavy ball is modest; Nesterov's
guarantee is that it keeps the accelerated rate on every smooth convex function, where heavy
ball can fail.""",
    n09="Nesterov's ρ at β = 0.9 (np.roots), against the flat root in closed form",
    hb09="heavy ball's ρ at η = 1, β = 0.9, against √β",
    m09="Nesterov at β = 0.9: measured, against predicted",
    n081="Nesterov's ρ at β = 0.81, against the closed form",
    m081="Nesterov at β = 0.81: measured, against predicted",
)


def _nesterov(ctx: Context, n: kit.Numbers) -> Part:
    nest = run(L.quadratic(kappa=KAPPA, dim=2), "nesterov", torch.ones(2, 2, dtype=torch.float64),
               TRACE_STEPS, lr=[1.0, 1.0], hyper={"momentum": list(NEST_BETAS)})  # fmt: skip
    pred = [_rho(NEST_CHAR, 1.0, b) for b in NEST_BETAS]
    meas = [_rate(nest.losses[k].numpy()) for k in range(2)]
    flat = [_nesterov_flat_root(b) for b in NEST_BETAS]
    text = NESTEROV.fill(
        n,
        rule_nest=NEST_NEXT.tex,
        nest_char=NEST_CHAR.tex,
        nest_stiff=NEST_CHAR.tex_at(eta=1.0, lamda=EIG[1]),
        n09=(pred[0], flat[0], 1e-9, 4),
        hb09=(theory_rate("momentum", 1.0, 0.9, EIG), math.sqrt(0.9), 1e-9, 4),
        m09=(meas[0], pred[0], 0.005, 4),
        n081=(pred[1], flat[1], 1e-9, 4),
        m081=(meas[1], pred[1], 0.005, 4),
    )
    checks = [
        kit.rule_check(
            "Nesterov's recurrence as the page shows it, at descentlab's Nesterov's iterates on "
            "λw²/2",
            *_recurrence_rule(NEST_NEXT, True),
        ),
        *_polynomial_checks(NEST_CHAR, NEST_NEXT, "nesterov", [(1.0, b) for b in NEST_BETAS]),
    ]
    return Part("nesterov", "Nesterov: the gradient at the look-ahead point", [text, checks])


def _nesterov_flat_root(beta: float, eta: float = 1.0) -> float:
    """The modulus of the flat direction's roots of Nesterov's polynomial, by the quadratic
    formula (complex: √(β(1 - ημ)))."""
    c = 1 - eta * EIG[0]
    a, d = (1 + beta) * c, ((1 + beta) * c) ** 2 - 4 * beta * c
    return math.sqrt(beta * c) if d < 0 else (abs(a) + math.sqrt(d)) / 2


# ------------------------------------------------------------------------------------------
# 6. where heavy ball fails: Lessard's function

LESSARD = kit.Prose(
    """
Why would anyone prefer Nesterov's form, if on quadratics a tuned heavy ball is as fast?
Because a quadratic is the only place where heavy ball's analysis holds. Lessard, Recht and
Packard built a function that is as well-behaved as a function can be without being
quadratic: one variable, strongly convex with curvature between μ = 1 and L = {{L}}, its
gradient continuous, made of three quadratic pieces with curvatures {{L}}, 1 and {{L}}, joined
at w = 1 and w = 2. Heavy ball with the (η, β) that is optimal for every quadratic of that
condition number, here η = {{eta}} and β = {{beta}}, converges from some starts and not from
others. From w = {{start}} descentlab's `Momentum` settles on a cycle of three points,
{{cycle}}, and repeats it forever (after {{steps}} steps the iterates repeat with period three
to within {{period3}}), its loss never below {{floor}}. Each piece alone would be fine; the
failure comes from the switches, which a linear analysis cannot see. Nesterov's method with
its own tuning, $\\eta = 1/L$ and $\\beta = {{nbeta_tex}}$ = {{nbeta}},
converges from every start in the table, and so does plain gradient descent: on smooth
strongly convex functions Nesterov's accelerated rate is a theorem, heavy ball's is only a
theorem about quadratics.""",
    eta="Polyak's η for curvatures 1 to 25, against the κ = 25 formula over L",
    beta="Polyak's β for κ = 25, against the formula",
    cycle="a point of the cycle, against the scalar recurrence",
    period3="the period-3 gap after the run, against 0",
    floor="the cycle's lowest loss, against the scalar recurrence's",
    nbeta="Nesterov's β, against (√κ - 1)/(√κ + 1)",
)


def _lessard_grad(w: torch.Tensor) -> torch.Tensor:
    return torch.where(w < 1, LES_L * w, torch.where(w < 2, w + LES_L - 1, LES_L * w - LES_L + 1))


def _lessard_f(w: float) -> float:
    if w < 1:
        return LES_L / 2 * w * w
    if w < 2:
        return w * w / 2 + (LES_L - 1) * w - (LES_L - 1) / 2
    return LES_L / 2 * w * w - (LES_L - 1) * w + 3 * (LES_L - 1) / 2


def _lessard_runs() -> dict[tuple[str, float], list[float]]:
    makers = {
        "heavy ball": lambda p: optim.Momentum(p, lr=LES_HB[0], momentum=LES_HB[1]),
        "Nesterov": lambda p: optim.Nesterov(p, lr=LES_NEST[0], momentum=LES_NEST[1]),
        "gradient descent": lambda p: optim.SGD(p, lr=2 / (LES_L + 1)),
    }
    out = {}
    for name, make in makers.items():
        for x0 in LES_STARTS:
            w = torch.nn.Parameter(torch.tensor([x0], dtype=torch.float64))
            opt, xs = make([w]), []
            for _ in range(LES_STEPS):
                w.grad = _lessard_grad(w.detach())
                opt.step()
                xs.append(float(w.detach()[0]))
            out[(name, x0)] = xs
    return out


def _lessard(ctx: Context, n: kit.Numbers) -> Part:
    les = ctx.memo(("chapter", "momentum", "lessard"), _lessard_runs)
    cyc = les[("heavy ball", LES_STARTS[0])]
    gap = max(abs(cyc[-1 - i] - cyc[-4 - i]) for i in range(3))
    others = max(_lessard_f(xs[-1]) for (nm, _), xs in les.items() if nm != "heavy ball")
    floor, fixed = min(_lessard_f(v) for v in cyc[-3:]), _three_cycle()
    text = LESSARD.fill(
        n,
        L=f"{LES_L:g}",
        start=f"{LES_STARTS[0]:g}",
        steps=str(LES_STEPS),
        eta=(LES_HB[0], _optimal(LES_L)[0] / LES_L),
        beta=(LES_HB[1], _optimal(LES_L)[1]),
        cycle=[(v, u, 1e-9, 4) for v, u in zip(sorted(cyc[-3:]), sorted(fixed), strict=True)],
        period3=kit.Twin(gap, 0.0, 1e-9, 2, rel=False),
        floor=(floor, min(_lessard_f(v) for v in fixed)),
        nbeta_tex=HB_RATE.tex,
        nbeta=(LES_NEST[1], HB_RATE(kappa=LES_L)),
    )
    rows = [
        [name, x0, *[round(v, 4) + 0.0 for v in xs[-3:]], _lessard_f(xs[-1])]
        for (name, x0), xs in les.items()
    ]
    rest = [_lessard_f(les[("heavy ball", x0)][-1]) for x0 in LES_STARTS[1:]]
    checks = [
        ck(f"heavy ball from w = {LES_STARTS[0]:g} ends on a cycle of period 3, its loss bounded "
           "away from 0", gap < 1e-9 and floor > 1, f"period-3 gap {gap:.2g}; loss ≥ {floor:.3g}",
           "< 1e-09; > 1"),
        said(text, "its loss never below", min(map(_lessard_f, cyc[-30:])) >= floor * (1 - 1e-9),
             f"{min(map(_lessard_f, cyc[-30:])):.6g}", f"≥ {floor:.6g}"),
        ck("Nesterov and gradient descent converge from every start", others < 1e-20,
           f"largest final loss {others:.2g}", "< 1e-20"),
        ck("heavy ball converges from the other starts: the failure depends on the start",
           max(rest) < 1e-20, ", ".join(f"{v:.2g}" for v in rest), "< 1e-20"),
    ]  # fmt: skip
    table = Table(
        ["method", "start w", "third-last iterate", "second-last", "last", "final loss"],
        rows,
        f"descentlab's Momentum, Nesterov and SGD on Lessard's function (μ = 1, L = {LES_L:g}), "
        f"{LES_STEPS} steps, float64",
    )
    title = "Where heavy ball fails: a function that is not quadratic"
    return Part("lessard", title, [text, table, checks])


def _three_cycle() -> list[float]:
    """Heavy ball's last three iterates from the first start by the scalar recurrence
    w' = w - η f'(w) + β(w - w_prev), iterated in Python floats with the derivative written
    piece by piece: the second route for the cycle descentlab's `Momentum` ends on."""
    eta, beta = LES_HB

    def slope(w: float) -> float:
        return LES_L * w if w < 1 else (w + LES_L - 1 if w < 2 else LES_L * (w - 1) + 1)

    w = prev = LES_STARTS[0]
    out = []
    for _ in range(LES_STEPS):
        w, prev = w - eta * slope(w) + beta * (w - prev), w
        out.append(w)
    return out[-3:]


# ------------------------------------------------------------------------------------------
# 7. the (η, β) plane

PLANE = kit.Prose(
    """
Goh's article draws the whole plane of choices, and the build can too: the figure colours
every (η, β) by the polynomial's ρ on the κ = {{kappa}} quadratic. The stable region,
{{stable}} % of the rectangle drawn, is bounded on the right by the stiff direction's edge
$\\eta L = {{edge_tex}}$; inside it, the rate is ${{f:complex_rate}}$ wherever the roots are complex
(horizontal bands), and the single best point sits at the corner where the flat direction's
roots meet, the star.""",
    stable="the stable share of a 300 × 300 grid, against the exact area",
)

PLANE_ETAS, PLANE_BETAS = (0.005, 4.2), (0.0, 0.995)


def _modulus(E: np.ndarray, B: np.ndarray, lam: float) -> np.ndarray:
    a = 1 + B - E * lam
    disc = a * a - 4 * B
    real = np.maximum(np.abs(a + np.sqrt(np.abs(disc))), np.abs(a - np.sqrt(np.abs(disc))))
    return np.where(disc < 0, np.sqrt(B), real / 2)


def _plane(ctx: Context, n: kit.Numbers) -> Part:
    E, B = np.meshgrid(np.linspace(*PLANE_ETAS, 300), np.linspace(*PLANE_BETAS, 300))
    plane = np.maximum(_modulus(E, B, EIG[0]), _modulus(E, B, EIG[1]))
    (e0, e1), (b0, b1) = PLANE_ETAS, PLANE_BETAS
    exact = ((2 - e0) * (b1 - b0) + (b1**2 - b0**2)) / ((e1 - e0) * (b1 - b0))  # η < 2(1 + β)
    fig = FG.new_figure(7.5, 4.6)
    ax = fig.subplots()
    ax.set_facecolor("#cccccc")  # ρ ≥ 1: no convergence, left grey
    im = ax.contourf(
        E,
        B,
        np.ma.masked_where(plane >= 1.0, plane),
        levels=np.linspace(0.8, 1.0, 21),
        cmap="viridis",
        extend="min",
    )
    fig.colorbar(im, ax=ax, label="rate ρ per step (grey: ρ ≥ 1, no convergence)")
    eta_opt, beta_opt = _optimal(KAPPA)
    ax.plot([eta_opt], [beta_opt], "r*", ms=12, label=f"optimum ρ = {math.sqrt(beta_opt):.3f}")
    etas = np.linspace(*PLANE_ETAS, 300)
    ax.plot(etas, np.clip(etas / 2 - 1, 0, 1), "w--", lw=1, label="edge ηL = 2(1 + β)")
    ax.set(ylim=(0, 1), xlabel="η", ylabel="β")
    ax.set_title(
        f"heavy ball on the quadratic with κ = {KAPPA:g}: the rate over (η, β)", fontsize=10
    )
    ax.legend(fontsize=8, loc="lower right")
    stable = (100 * float((plane < 1).mean()), 100 * exact, 0.01, 2)
    text = PLANE.fill(n, kappa=f"{KAPPA:g}", stable=stable, edge_tex=EDGE.tex)
    return Part("plane", "The (η, β) plane", [text, fig, []])


# ------------------------------------------------------------------------------------------
# 8. momentum under noise

NOISE = kit.Prose(
    """
Gradients in training are noisy, and the lecture's item 98 says that momentum helps against
the noise: its velocity is an average, and an average of noisy gradients is less noisy. Item
98 measures that the *direction* of the velocity is indeed cleaner, its noise-to-signal ratio
${{f:noise_ratio}}$ times a single gradient's, {{nsr}} at β = 0.9 on a slope
with unit noise (measured here {{nsr_meas}}). But the velocity also adds up about
${{f:momentum_limit}}$ gradients, so the *step* grows by the same factor. Which wins?

Take the noisy quadratic of the schedules chapter, gradient $hw + \\sigma\\xi$, and run heavy
ball. The state is now the pair $(w_t, w_{t-1})$, the recursion of the second section with a
noise term $-\\eta\\sigma\\xi_t$, and its stationary covariance Σ solves the discrete Lyapunov
equation $\\Sigma = A \\Sigma A^\\top + Q$, with A the two-by-two matrix of the recursion and Q the
noise's. Solved by hand for the variance of w, it gives

$$\\mathbb{E}[w^2] = {{noise_var}},$$

which for a small ηh is ${{f:momentum_floor}}$: the floor of plain SGD
at the rate ${{f:effective_rate}}$. The cleaner direction and the longer step cancel exactly. At a
fixed *effective* rate ${{f:effective_rate}}$ momentum buys speed on a badly conditioned problem and
nothing against noise. The table runs {{runs}} runs of descentlab's `Momentum` for {{steps}}
steps at effective rates 0.1 and 0.5 with β = 0, 0.5, 0.9, and averages the loss over the last
{{half}} steps: at effective rate 0.1 the floors are {{low}}, at 0.5 {{high}}, each on the
closed form and on the Lyapunov solution. The larger effective rate shows the correction
term: there the floors differ by {{spread}} times across β, because ηh is no longer small
for β = 0. So the lecture's claim holds for the direction and fails for the distance to the
minimum; what does lower a noise floor is a smaller rate, which is the schedules chapter's
subject.""",
    nsr="√((1 - β)/(1 + β)), against the buffer's std 1/√(1 - β²) over its mean",
    nsr_meas="the velocity's measured noise-to-signal ratio, against the formula",
    low="a measured floor at effective rate 0.1, against the Lyapunov solution",
    high="a measured floor at effective rate 0.5, against the Lyapunov solution",
    spread="the floors' spread at effective rate 0.5, against the closed form's",
)


def _noise_floors() -> list[float]:
    grid = [(e * (1 - b), b) for e in NOISE_EFFECTIVE for b in NOISE_BETAS]
    tr = run(
        L.noisy_quadratic(h=1.0, sigma=1.0, dim=1),
        "momentum",
        torch.ones(NOISE_RUNS, 1, dtype=torch.float64).repeat(len(grid), 1),
        NOISE_STEPS,
        lr=[a for a, _ in grid for _ in range(NOISE_RUNS)],
        hyper={"momentum": [b for _, b in grid for _ in range(NOISE_RUNS)]},
        seed=0,
    )
    half = NOISE_STEPS // 2
    return [
        float(tr.losses[k * NOISE_RUNS : (k + 1) * NOISE_RUNS, half:].mean())
        for k in range(len(grid))
    ]


def _direction_noise(beta: float = 0.9, steps: int = 4000) -> float:
    """The velocity's noise-to-signal ratio on the slope g = 1 + ξ (descentlab's Momentum)."""
    gen = torch.Generator().manual_seed(0)
    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt, moved = optim.Momentum([w], lr=1.0, momentum=beta), []
    for _ in range(steps):
        before = float(w.detach())
        w.grad = 1.0 + torch.randn(1, dtype=torch.float64, generator=gen)
        opt.step()
        moved.append(before - float(w.detach()))
    s = np.asarray(moved[200:])
    return float(s.std() / s.mean())


def _lyapunov(lr: float, b: float) -> float:
    """The stationary E[w²] from the 2×2 discrete Lyapunov equation Σ = AΣAᵀ + Q."""
    a = np.array([[1 + b - lr, -b], [1.0, 0.0]])
    return float(
        scipy.linalg.solve_discrete_lyapunov(a, np.array([[lr * lr, 0.0], [0.0, 0.0]]))[0, 0]
    )


def _closed(lr: float, b: float) -> float:
    """The closed form as the page shows it, at h = σ = 1."""
    return NOISE_VAR(eta=lr, beta=b, sigma=1.0, h=1.0)


def _closed_checks(grid) -> list[Check]:
    """The closed form as the page shows it against the Lyapunov solution, at each (η, β)."""
    return [
        close(f"η = {a:g}, β = {b:g}: the closed form is the Lyapunov solution",
              _closed(a, b), _lyapunov(a, b), 1e-9)
        for a, b in grid
    ]  # fmt: skip


def _noise(ctx: Context, n: kit.Numbers) -> Part:
    floors = ctx.memo(("chapter", "momentum", "noise"), _noise_floors)
    nsr = ctx.memo(("chapter", "momentum", "direction"), _direction_noise)
    grid = [(e * (1 - b), b) for e in NOISE_EFFECTIVE for b in NOISE_BETAS]
    rows = [
        [a, b, a / (1 - b), _closed(a, b) / 2, _lyapunov(a, b) / 2, m]
        for (a, b), m in zip(grid, floors, strict=True)
    ]
    k = len(NOISE_BETAS)
    high = [r[5] for r in rows[k:]]
    text = NOISE.fill(
        n,
        noise_var=NOISE_VAR.tex,
        runs=str(NOISE_RUNS),
        steps=str(NOISE_STEPS),
        half=str(NOISE_STEPS // 2),
        nsr=(math.sqrt((1 - 0.9) / (1 + 0.9)), math.sqrt(1 / (1 - 0.81)) * (1 - 0.9)),
        nsr_meas=(nsr, math.sqrt((1 - 0.9) / (1 + 0.9)), 0.05),
        low=[(r[5], r[4], 0.1) for r in rows[:k]],
        high=[(r[5], r[4], 0.1) for r in rows[k:]],
        spread=(
            max(high) / min(high),
            max(r[3] for r in rows[k:]) / min(r[3] for r in rows[k:]),
            0.1,
        ),
    )
    low = [r[5] for r in rows[:k]]
    checks = [
        *_closed_checks(grid),
        *[close(f"η = {a:g}, β = {b:g}: the measured floor is the formula's", m, c, 0.1)
          for a, b, _, c, _, m in rows],
        ck("at effective rate 0.1 the three β give floors within 10 % of each other",
           max(low) < 1.1 * min(low), ", ".join(f"{v:.3g}" for v in low), "max < 1.1 × min"),
    ]  # fmt: skip
    table = Table(
        ["η", "β", "η/(1 - β)", "closed form (loss)", "Lyapunov (loss)",
         f"measured (mean of {NOISE_RUNS} runs)"],
        rows,
        "descentlab's Momentum on the noisy quadratic h = σ = 1, from w = 1",
    )  # fmt: skip
    title = "Momentum under noise: a cleaner direction, a longer step"
    return Part("noise", title, [text, table, checks])


# ------------------------------------------------------------------------------------------
# 9. from scratch, and a real training run

SCRATCH = kit.Prose(
    """
Everything above ran descentlab's `Momentum` and `Nesterov`. Written from scratch in plain
torch, each is three lines inside a loop: the buffer, the step, and for Nesterov the
look-ahead term. The cell below is the whole of it; the build runs it on the κ = {{kappa}}
quadratic next to descentlab's optimizers and checks that every iterate is the same, so the
twin a reader types and the optimizer the library ships cannot drift apart.""",
)

_scratch = kit.scratch(
    text=lambda n: SCRATCH.fill(n, kappa=f"{KAPPA:g}"),
    code="""\
import torch
from descentlab import optim

def heavy_ball(grad, w, lr, beta, steps):
    b, path = torch.zeros_like(w), [w]
    for _ in range(steps):
        b = beta * b + grad(w)          # the velocity: an average of gradients
        w = w - lr * b
        path.append(w)
    return torch.stack(path)

def nesterov(grad, w, lr, beta, steps):
    b, path = torch.zeros_like(w), [w]
    for _ in range(steps):
        g = grad(w)
        b = beta * b + g
        w = w - lr * (g + beta * b)     # the gradient at the look-ahead point, torch's form
        path.append(w)
    return torch.stack(path)

lam = torch.tensor([0.01, 1.0], dtype=torch.float64)     # kappa = 100
w0 = torch.ones(2, dtype=torch.float64)
mine = torch.stack([heavy_ball(lambda w: lam * w, w0, 1.0, 0.81, 100),
                    nesterov(lambda w: lam * w, w0, 1.0, 0.81, 100)])

"""
    + kit.library_path("lam")
    + """

library = torch.stack([
    descentlab_path(lambda p: optim.Momentum(p, lr=1.0, momentum=0.81)),
    descentlab_path(lambda p: optim.Nesterov(p, lr=1.0, momentum=0.81))])
print("after 100 steps, heavy ball:", mine[0, -1].tolist())
print("                 descentlab:", library[0, -1].tolist())
print(f"largest difference over both methods and all steps: {(mine - library).abs().max():.1e}")
""",
    what="heavy ball and Nesterov from scratch give descentlab's iterates (100 steps each)",
)

TRAINING = kit.Prose(
    """
The quadratics isolate one effect at a time; a network mixes them. The figure trains
descentlab's default MNIST-1D model with mini-batches of {{batch}} for {{steps}} steps, three
ways: plain `SGD` at η = {{lr}}; `Momentum` with β = {{beta}} at η = {{small}}, the same
effective rate ${{f:effective_rate}}$; and `Momentum` with β = {{beta}} at η = {{lr}}, {{factor}}
times the effective rate. The noise section predicts that the first two behave alike, and they do:
their training losses stay close all along, and the checks below measure how close at the
end. The third, with the same β, descends much faster, because its *effective* rate is
larger, not because of the averaging. Comparisons of momentum against SGD that do not fix the
effective rate measure the rate.""",
    factor="the effective rates' ratio 1/(1 - β), against the rates' ratio",
)


def _training(ctx: Context, n: kit.Numbers) -> Part:
    base = {"problem": "mnist1d", "batch_size": TRAIN_B, "steps": TRAIN_STEPS, "eval_every": 25}
    small = TRAIN_LR * (1 - TRAIN_BETA)
    runs = {
        f"SGD, η = {TRAIN_LR:g}": {**base, "optimizer": "sgd", "hyper": {"lr": TRAIN_LR}},
        f"Momentum β = {TRAIN_BETA:g}, η = {small:g} (the same η/(1 - β))": {
            **base, "optimizer": "momentum", "hyper": {"lr": small, "momentum": TRAIN_BETA}},
        f"Momentum β = {TRAIN_BETA:g}, η = {TRAIN_LR:g} (ten times η/(1 - β))": {
            **base, "optimizer": "momentum", "hyper": {"lr": TRAIN_LR, "momentum": TRAIN_BETA}},
    }  # fmt: skip
    fig, res = kit.training_run(ctx, "momentum", runs, "MNIST-1D")
    sgd, same, fast = (kit.final(r, "train/loss") for r in res.values())
    checks = [
        ck("at the same effective rate, momentum's final training loss is within 25 % of SGD's",
           0.8 < same / sgd < 1.25, f"{same:.4g} / {sgd:.4g} = {same / sgd:.3g}", "in (0.8, 1.25)"),
        ck("at ten times the effective rate, the final training loss is below half of SGD's",
           fast < 0.5 * sgd, f"{fast:.4g}", f"< {0.5 * sgd:.4g}"),
    ]  # fmt: skip
    text = TRAINING.fill(
        n,
        batch=str(TRAIN_B),
        steps=str(TRAIN_STEPS),
        lr=f"{TRAIN_LR:g}",
        beta=f"{TRAIN_BETA:g}",
        small=f"{small:g}",
        factor=(1 / (1 - TRAIN_BETA), TRAIN_LR / small),
    )
    caption = f"descentlab's engine (train), MNIST-1D, batches of {TRAIN_B}, seed 0"
    table = kit.results_table(res, caption, "train/loss", "test/accuracy")
    title = "A real training run: the effective rate decides"
    return Part("training", title, [text, fig, table, checks])


KEEP = """
What to keep. Momentum averages gradients over about $1/(1 - \\beta)$ steps; on a quadratic
each direction is a second-order linear recurrence whose roots give its rate; complex roots
spiral at $\\sqrt\\beta$; the stable range grows to $\\eta\\lambda < {{f:edge}}$; and with the
right pair (η, β) the steps needed grow with $\\sqrt\\kappa$ instead of κ. Nesterov's look-ahead
puts the curvature into the momentum term and damps the stiff directions further, and keeps
its rate beyond quadratics, where heavy ball can cycle. With noisy gradients the average
smooths the direction, but the step grows by the same ${{f:momentum_limit}}$: at a fixed effective
rate ${{f:effective_rate}}$ momentum and plain SGD reach the same noise floor when ηh is small,
measured above on the quadratic and seen in the training run, so momentum is a cure for bad
conditioning, not for noise; the schedules chapter shows what is. The exercises on the
momentum lecture's page practise these steps."""

#: the chapter's exercises (:mod:`descentlab.book.chapters.practice`)
EXERCISES = practice.MOMENTUM

CHAPTER = kit.Chapter(
    "deep-momentum",
    "Momentum, in depth",
    "Why an average of past gradients speeds up a slow direction, how much, and when it turns "
    "into overshooting: derived on a quadratic, where every claim is exact, and measured with "
    "descentlab's Momentum and Nesterov, written from scratch, and trained on MNIST-1D.",
    (24, 25, 26, 50, 51, 52, 98, 99, 100, 102, 104),
    (
        KAPPA,
        1e-12,  # the loss fraction the steps are counted to (the table's headings)
        0.01,
        0.1,
        1,
        2,
        3,
        *SLOPE_BETAS,
        SLOPE_STEPS,
        *TRACE_LRS,
        *TRACE_BETAS,
        TRACE_STEPS,
        *WINDOW,
        LIVE_STEPS,
        *NEST_BETAS,
        LES_L,
        *LES_STARTS,
        LES_STEPS,
        NOISE_RUNS,
        NOISE_STEPS,
        *NOISE_EFFECTIVE,
        *NOISE_BETAS,
        NOISE_STEPS // 2,
        TRAIN_B,
        TRAIN_STEPS,
        TRAIN_LR,
        TRAIN_BETA,
        TRAIN_LR * (1 - TRAIN_BETA),
    ),
    (
        _average,
        _recurrence,
        _condition,
        _move,
        _nesterov,
        _lessard,
        _plane,
        _noise,
        _scratch,
        _training,
    ),
    KEEP,
    EXERCISES,
)
