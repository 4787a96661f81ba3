"""Learning-rate schedules in depth: the noise floor of a constant rate, its exact curve and the
best constant for a budget, the Robbins–Monro conditions and the ``a/t`` schedule's exact
recursion, step decay's staircase, warm-up, and the usual schedules side by side. Every
schedule is descentlab's own (:mod:`descentlab.schedules`), checked against the lecture's
formula written by hand; traces of many runs of descentlab's SGD on the noisy quadratic, SGD
with a schedule from scratch, and a real training run on MNIST-1D."""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize
import scipy.stats
import torch

from descentlab import optim
from descentlab import schedules as S
from descentlab.book.chapters import _common as kit
from descentlab.book.chapters import practice
from descentlab.book.checks import ck, close, diff_check, said
from descentlab.book.facts import word
from descentlab.book.model import Context
from descentlab.book.render.chapter import Part, Table
from descentlab.book.render.live import Live, Probe, Slider
from descentlab.problems import landscapes as L
from descentlab.problems.trajectories import run
from descentlab.report import figures as FG

__all__ = ["CHAPTER"]

RUNS = 512
FLOOR_LRS = (0.05, 0.1, 0.2, 0.5)
FLOOR_STEPS, FLOOR_LAST = 400, 200
T = 1000
AS = (0.25, 1.0, 2.0)
SLIDER_AS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
ETA0, TABLE_T = 0.5, 1000
#: the constant rates whose whole loss curve is compared with the exact solution
CURVE_LRS = (0.02, 0.05, 0.2)
#: the cosine's floor rate ``eta_min`` where the table shows it at a value other than its 0
ETA_MIN = 0.05
#: step decay's stages: the rate halves every STAGE steps from ETA0
STAGE = 200
#: warm-up on f(w) = w²/2 + w⁴/4 from W0: the warm-up lengths, the constant rates' grid,
#: the target |w| and the steps allowed
W0 = 2.9
WARMUPS = (5, 20, 50)
WARM_GRID = tuple(round(0.01 * i, 2) for i in range(5, 51))
WARM_TOL, WARM_STEPS = 1e-8, 400
#: four standard errors of a mean of RUNS squared standard normals, relative
SE = 4 * math.sqrt(2 / RUNS)
#: the training runs on MNIST-1D
TRAIN_B, TRAIN_STEPS, TRAIN_LR, TRAIN_WARM = 64, 600, 0.2, 60


def _noisy() -> L.Landscape:
    return L.noisy_quadratic(h=1.0, sigma=1.0, dim=1)


def _mean_loss(lr, steps: int) -> np.ndarray:
    """The mean loss of :data:`RUNS` runs of descentlab's SGD on the noisy quadratic from 1
    (``lr`` a rate or a descentlab schedule)."""
    tr = run(_noisy(), "sgd", torch.ones(RUNS, 1, dtype=torch.float64), steps, lr=lr, seed=0)
    return tr.losses.mean(0).numpy()


def _recursion(rates, steps: int) -> np.ndarray:
    """The expected loss under the rates ``rates(t)`` by the second-moment recursion
    E[w²] ← (1 - η_t)² E[w²] + η_t² (h = σ = 1, w_0 = 1): no run involved."""
    v, out = 1.0, [0.5]
    for t in range(steps):
        e = rates(t)
        v = (1 - e) ** 2 * v + e * e
        out.append(0.5 * v)
    return np.array(out)


def _a_over_t(a: float) -> S.Schedule:
    """descentlab's ``a/(t + t0)`` (t0 = max(a, 1): the first rate at most 1, stable on h = 1)."""
    t0 = max(a, 1.0)
    return S.inverse_time_decay(1 / t0, base=a / t0)


def _a_over_t_by_hand(a: float):
    t0 = max(a, 1.0)
    return lambda t: a / (t + t0)


def _warm_cosine_by_hand(t: int, warm: int = 50) -> float:
    if t < warm:
        return ETA0 * t / warm
    return ETA0 * 0.5 * (1 + math.cos(math.pi * (t - warm) / (TABLE_T - warm)))


def _one_cycle_by_hand(t: int, up: float = 0.3, div: float = 25.0, final_div: float = 1e4) -> float:
    """torch's ``OneCycleLR`` (cosine) as its documentation writes it: from ``ETA0/div`` up to
    ``ETA0`` by step ``up·T - 1``, then down to ``ETA0/(div·final_div)`` by step ``T - 1``."""
    start, end = ETA0 / div, ETA0 / div / final_div
    e1, e2 = up * TABLE_T - 1, TABLE_T - 1
    if t <= e1:
        return ETA0 + (start - ETA0) / 2 * (math.cos(math.pi * t / e1) + 1)
    return end + (ETA0 - end) / 2 * (math.cos(math.pi * (t - e1) / (e2 - e1)) + 1)


#: the schedules side by side: a name, descentlab's schedule, and the lecture's formula
SCHEDULES = (
    ("constant", S.constant(ETA0 * 0.2), lambda t: ETA0 * 0.2),
    ("step: halve every 200", S.step(200, 0.5, base=ETA0), lambda t: ETA0 * 0.5 ** (t // 200)),
    (
        "exponential, k = 0.005",
        S.exponential(math.exp(-0.005), base=ETA0),
        lambda t: ETA0 * math.exp(-0.005 * t),
    ),
    (
        "1/√t",
        S.lambda_schedule(lambda t: (t + 1) ** -0.5, base=ETA0),
        lambda t: ETA0 / math.sqrt(t + 1),
    ),
    ("a/t, a = 1", _a_over_t(1.0), _a_over_t_by_hand(1.0)),
    (
        "cosine to 0",
        S.cosine(TABLE_T, base=ETA0),
        lambda t: ETA0 * 0.5 * (1 + math.cos(math.pi * t / TABLE_T)),
    ),
    (
        "linear warm-up 50, then cosine",
        S.warmup(S.cosine(TABLE_T - 50, base=ETA0), 50),
        _warm_cosine_by_hand,
    ),
    ("1-cycle (torch's OneCycleLR)", S.one_cycle(TABLE_T, max_lr=ETA0), _one_cycle_by_hand),
    (
        f"cosine to eta_min = {ETA_MIN:g}",
        S.cosine(TABLE_T, eta_min=ETA_MIN, base=ETA0),
        lambda t: ETA_MIN + (ETA0 - ETA_MIN) * 0.5 * (1 + math.cos(math.pi * t / TABLE_T)),
    ),
)


# ------------------------------------------------------------------------------------------
# 1. the noise floor

FLOOR = kit.Prose(
    """
A constant learning rate cannot converge when the gradient is noisy (items 18 and 20). The
cleanest place to see how far it gets is the noisy quadratic $f(w) = h w^2/2$ whose gradient
is $hw + \\sigma\\xi$, with ξ a fresh standard normal at every step: the mini-batch gradient of
item 14 in its simplest form. One SGD step is $w \\leftarrow {{f:noisy_sgd}}$.
Square it and take the expectation; the noise is independent of w, so the cross term vanishes
and

$$\\mathbb{E}[w^2] \\leftarrow {{f:moment_step}}.$$

This is a linear recursion for the second moment. For $0 < \\eta h < 2$ it contracts, and its
fixed point is
$\\mathbb{E}[w^2] = {{f:floor_fixed}} = {{f:floor}}$.
The expected loss settles at

$${{f:loss_floor}},$$

about ${{f:loss_floor_small}}$ for a small rate: the floor is proportional to the rate. A smaller
rate
gets lower, but the contraction factor ${{f:contraction}}$ is closer to one, so it gets there
more slowly. No constant rate has both.

The table runs {{runs}} independent runs of descentlab's `SGD` with h = σ = 1 from w = 1 for
{{steps}} steps and averages the loss over the runs and the last {{last}} steps. At η = 0.05 the
floor is {{m0}} (formula {{f0}}), at η = 0.5 it is {{m1}} (formula {{f1}}): 10 times the rate,
{{ratio}} times the floor, the $2 - \\eta h$ in the denominator adding to the linear growth.""",
    m0="η = 0.05: the measured floor, against ησ²/(2(2 - ηh))",
    f0="the library's floor formula, against the recursion iterated to its limit",
    m1="η = 0.5: the measured floor, against the formula",
    f1="the floor formula at η = 0.5, against the recursion's limit",
    ratio="the floors' ratio, against the formula's",
)


def _fixed_point(lr: float) -> float:
    """The recursion's limit, iterated until it stops moving (the twin of the closed form)."""
    v = 1.0
    for _ in range(100_000):
        nxt = (1 - lr) ** 2 * v + lr * lr
        if abs(nxt - v) < 1e-18:
            break
        v = nxt
    return 0.5 * v


def _floor(ctx: Context, n: kit.Numbers) -> Part:
    floors = ctx.memo(("chapter", "schedules", "floor"), _floor_runs)
    formula = [L.sgd_stationary_loss(e) for e in FLOOR_LRS]
    text = FLOOR.fill(
        n,
        runs=str(RUNS),
        steps=str(FLOOR_STEPS),
        last=str(FLOOR_LAST),
        m0=(floors[0], formula[0], 0.1),
        f0=(formula[0], _fixed_point(FLOOR_LRS[0])),
        m1=(floors[-1], formula[-1], 0.1),
        f1=(formula[-1], _fixed_point(FLOOR_LRS[-1])),
        ratio=(floors[-1] / floors[0], formula[-1] / formula[0], 0.15),
    )
    rows = [[e, p, m] for e, p, m in zip(FLOOR_LRS, formula, floors, strict=True)]
    table = Table(
        ["η", "floor ησ²/(2(2 - ηh))", f"measured (mean of {RUNS} runs, last {FLOOR_LAST} steps)"],
        rows,
        "descentlab's SGD on the noisy quadratic, h = σ = 1, float64",
    )
    checks = [
        close(f"η = {e:g}: the measured floor is ησ²/(2(2 - ηh))", m, p, 0.1) for e, p, m in rows
    ]
    return Part("floor", "The noise floor of a constant rate", [text, table, checks])


def _floor_runs() -> list[float]:
    return [float(_mean_loss(e, FLOOR_STEPS)[-FLOOR_LAST:].mean()) for e in FLOOR_LRS]


# ------------------------------------------------------------------------------------------
# 2. the whole curve of a constant rate, and the best constant for a budget

BIAS = kit.Prose(
    """
The recursion does more than give the floor: it is linear, so it can be solved for every step.
Subtract the fixed point $v_\\infty = {{f:floor}}$ from both sides and the
constant term disappears,
${{f:moment_gap}}$. Unrolled from the start $w_0$,

$$\\mathbb{E}[w_t^2] = {{f:moment_path}}.$$

Two terms, and they are the whole story of a constant rate. The first is the *variance*, the
floor, proportional to η. The second is the *bias*, the memory of the start, which decays
geometrically at the rate ${{f:contraction}}$ and so takes about
${{f:relax_steps}}$ steps per factor e.
A large η forgets the start fast and hovers high; a small η hovers low and forgets slowly. For
a fixed budget of steps there is a best constant rate, where the two terms balance: minimising
the exact loss over η gives {{best}} for {{budgets}} steps, shrinking about like $\\ln T / T$
($\\eta T/\\ln T$ is {{ratio}}), with final losses {{loss}}. The rate that is best depends on
how long one trains, which
is already an argument for a schedule: the right rate late in a run is not the right rate
early.

The build runs {{runs}} runs at each of η = {{curve_lrs}} and at the best constant for {{T}}
steps, and compares the mean loss with the solution at steps {{probe}}: every gap is within
the ${{f:four_se}}$ = {{se}} that R = {{runs}} runs allow (4 standard errors of a mean of
squared normals). At {{T}} steps the best constant ends at {{best_end}}; the next section's
a/t schedule with a = 1 ends at {{a1}}, {{gain}} times {{lower}} than the best constant's
{{best_end}}, with no tuning to the budget.""",
    best="the best constant rate on a grid, against a bounded minimiser",
    ratio="ηT/ln T at the grid's best rate, against the minimiser's",
    loss="the best loss for the budget, against the minimiser's",
    se="four standard errors of a mean of squared normals: √2 is χ²₁'s std",
    best_end="the best constant's measured end, against the exact curve",
    a1="a/t with a = 1: the measured end, against the recursion",
    gain="the ratio, against the exact curves'",
)


def _exact_const(lr: float, steps: int) -> np.ndarray:
    v_inf = lr / (2 - lr)
    t = np.arange(steps + 1)
    return 0.5 * (v_inf + (1 - lr) ** (2 * t) * (1 - v_inf))


def _best(budget: int) -> tuple[float, float]:
    """The best constant rate for ``budget`` steps on a grid of 4001 rates, and its loss."""
    grid = np.geomspace(1e-4, 1.0, 4001)
    lr = float(grid[np.argmin([_exact_const(e, budget)[-1] for e in grid])])
    return lr, float(_exact_const(lr, budget)[-1])


def _best_scipy(budget: int) -> float:
    """The same minimum by a bounded scalar minimiser on log η (the twin of the grid)."""
    res = scipy.optimize.minimize_scalar(
        lambda z: _exact_const(10**z, budget)[-1],
        bounds=(-4, 0),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return float(10**res.x)


def _bias(ctx: Context, n: kit.Numbers) -> Part:
    budgets = (T // 10, T, T * 10)
    best = {b: _best(b) for b in budgets}
    scipy_best = {b: _best_scipy(b) for b in budgets}
    curves = ctx.memo(
        ("chapter", "schedules", "const"),
        lambda: {e: _mean_loss(e, T) for e in (*CURVE_LRS, best[T][0])},
    )
    a1 = ctx.memo(("chapter", "schedules", "a_over_t"), _a_over_t_runs)[1.0][T]
    probe = (T // 10, T // 2, T)
    exact_a1, end = _recursion(_a_over_t_by_hand(1.0), T)[T], float(curves[best[T][0]][T])
    exact_end = float(_exact_const(best[T][0], T)[T])
    text = BIAS.fill(
        n,
        runs=str(RUNS),
        T=str(T),
        budgets=", ".join(map(str, budgets)),
        curve_lrs=", ".join(f"{e:g}" for e in CURVE_LRS),
        probe=", ".join(str(t) for t in probe),
        best=[(best[b][0], scipy_best[b], 0.005) for b in budgets],
        ratio=[
            (best[b][0] * b / math.log(b), scipy_best[b] * b / math.log(b), 0.005, 2)
            for b in budgets
        ],
        loss=[(best[b][1], float(_exact_const(scipy_best[b], b)[-1]), 1e-4) for b in budgets],
        se=(SE, 4 * scipy.stats.chi2(1).std() / math.sqrt(RUNS), 1e-9, 2),
        best_end=(end, exact_end, SE),
        a1=(a1, exact_a1, SE),
        gain=(end / a1, exact_end / exact_a1, 2 * SE),
        lower=word(a1, end, "higher"),
    )
    rows = [[e, *[float(c[t]) for t in probe], *[float(_exact_const(e, T)[t]) for t in probe]]
            for e, c in curves.items()]  # fmt: skip
    table = Table(
        ["η", *[f"mean loss at t = {t}" for t in probe], *[f"exact at t = {t}" for t in probe]],
        rows,
        f"{RUNS} runs of descentlab's SGD at a constant rate, h = σ = 1, from w = 1 (the last "
        f"row: the best constant for {T} steps)",
    )
    gaps = [abs(r[1 + i] / r[4 + i] - 1) for r in rows for i in range(3)]
    ratios = [best[b][0] * b / math.log(b) for b in budgets]
    checks = [
        ck(f"the mean loss of {RUNS} runs is the exact solution at steps "
           + ", ".join(str(t) for t in probe) + " (four standard errors)", max(gaps) < SE,
           f"largest gap {max(gaps):.3g}", f"< {SE:.3g}"),
        ck("the best constant rate shrinks like ln T / T: η T / ln T varies by less than 20 % over "
           "the budgets", max(ratios) < 1.2 * min(ratios), ", ".join(f"{r:.3g}" for r in ratios),
           "max < 1.2 × min"),
        ck(f"a/t with a = 1/h ends below the best constant rate for {T} steps", a1 < end,
           f"{a1:.3g}", f"< {end:.3g}"),
    ]  # fmt: skip
    title = "A constant rate, exactly: the bias decays, the variance stays"
    return Part("bias-variance", title, [text, table, checks])


# ------------------------------------------------------------------------------------------
# 3. a/t: the exact recursion and the threshold

A_OVER_T = kit.Prose(
    """
To converge, the rate must fall. Robbins and Monro's conditions (item 20) say how fast:

$$\\sum_t \\eta_t = \\infty, \\qquad \\sum_t \\eta_t^2 < \\infty,$$

the first so that the iterates can still travel any distance, the second so that the noise's
total contribution $\\sum_t \\eta_t^2\\sigma^2$ stays bounded. The canonical choice is
$\\eta_t = {{f:harmonic}}$ (item 21), and the second-moment recursion above tells exactly how it
behaves:
with $\\eta_t = {{f:harmonic}}$ it reads
$\\mathbb{E}[w^2] \\leftarrow {{f:harmonic_step}}$.

Try $\\mathbb{E}[w^2] \\approx c/t$ in it. Expanding to first order in 1/t, the recursion closes
when ${{f:harmonic_closes}}$, so when ah > 1/2 the expected loss falls like

$${{f:harmonic_loss}},$$

the optimal 1/t. The constant ${{f:harmonic_constant}}$ is smallest at a = 1/h: the best a/t
schedule
takes a full Newton step's scale. When ah < 1/2 the guess fails: the contraction
$(1 - ah/t)^2$ is too weak to forget the start, and the loss falls only like $t^{-2ah}$, slower
than 1/t.

The build runs {{runs}} runs of descentlab's `SGD` under descentlab's schedule
`inverse_time_decay`, $\\eta_t = {{f:offset_decay}}$ (the offset $t_0$ keeps the first rate at most
1),
for {{T}} steps, and iterates the recursion exactly with the rates written by hand. At a = 1
the loss after {{T}} steps is {{m1}} (exact recursion {{e1}}, asymptote {{s1}}); at a = 2 it
is {{m2}}, {{higher}} than the {{m1}} of a = 1, as the constant ${{f:harmonic_constant_1}}$ predicts
({{s2}}). At a = 0.25 it is {{m025}},
and its slope on a log–log plot between steps {{quarter}} and {{T}} is {{k025}}, the $-2ah$ of
the theory, against the recursion's {{k1}} at a = 1.""",
    m1="a = 1: the measured loss, against the recursion",
    e1="the recursion at a = 1, against the runs",
    s1="the asymptote a²/(2(2a - 1)t), against the recursion",
    m2="a = 2: the measured loss, against the recursion",
    s2="the asymptote at a = 2, against the recursion",
    m025="a = 0.25: the measured loss, against the recursion",
    k025="a = 0.25: the measured log–log slope, against -2ah",
    k1="a = 1: the recursion's log–log slope, against the -1 of 1/t",
)


def _a_over_t_runs() -> dict[float, np.ndarray]:
    return {a: _mean_loss(_a_over_t(a), T) for a in SLIDER_AS}


def _slope(c: np.ndarray) -> float:
    return float(np.log(c[T] / c[T // 4]) / np.log(4))


def _one_over_t(ctx: Context, n: kit.Numbers) -> Part:
    measured = ctx.memo(("chapter", "schedules", "a_over_t"), _a_over_t_runs)
    exact = {a: _recursion(_a_over_t_by_hand(a), T) for a in AS}
    asym = {a: 0.5 * a * a / ((2 * a - 1) * T) for a in AS if a > 0.5}
    text = A_OVER_T.fill(
        n,
        runs=str(RUNS),
        T=str(T),
        quarter=str(T // 4),
        m1=(measured[1.0][T], exact[1.0][T], SE),
        e1=(exact[1.0][T], measured[1.0][T], SE),
        s1=(asym[1.0], exact[1.0][T], 0.05),
        m2=(measured[2.0][T], exact[2.0][T], SE),
        higher=word(measured[2.0][T], measured[1.0][T], "higher"),
        s2=(asym[2.0], exact[2.0][T], 0.05),
        m025=(measured[0.25][T], exact[0.25][T], SE),
        k025=kit.Twin(_slope(measured[0.25]), -0.5, 0.1, rel=False),
        k1=kit.Twin(_slope(exact[1.0]), -1.0, 0.05, rel=False),
    )
    rows = [[a, measured[a][T], exact[a][T], asym.get(a, "none (ah < 1/2)"), _slope(measured[a])]
            for a in AS]  # fmt: skip
    table = Table(
        ["a", f"measured loss at t = {T}", "exact recursion", "asymptote a²/(2(2a - 1)t)",
         f"log–log slope, t = {T // 4}-{T}"],
        rows,
        f"{RUNS} runs of descentlab's SGD, η_t = a/(t + t_0), h = σ = 1",
    )  # fmt: skip
    checks = [
        *[close(f"a = {a:g}: the mean loss at t = {T} is the recursion's (within 4 standard "
                f"errors of a mean of {RUNS} squared normals)", measured[a][T], exact[a][T], SE)
          for a in AS],
        ck("a = 1/h ends lower than a = 2/h", measured[1.0][T] < measured[2.0][T],
           f"{measured[1.0][T]:.3g}", f"< {measured[2.0][T]:.3g}"),
    ]  # fmt: skip
    return Part("one-over-t", "Why a/t, and why the constant a matters", [text, table, checks])


# ------------------------------------------------------------------------------------------
# 4. step decay: a staircase of floors

STAIRCASE = kit.Prose(
    """
Step decay is the schedule the floor explains best: descentlab's `step` schedule holds η for
{{stage}} steps, halves it, holds again. Within each stage the recursion of the first section
runs with that stage's rate: the bias term forgets the previous stage's level within about
${{f:relax_steps}}$ steps, and the loss settles on the new, lower floor
${{f:loss_floor}}$.
The curve is a staircase whose steps are the floors of the successive rates, each about half
the one before. At the end of the stages (the mean over each stage's last {{quarter}} steps,
{{runs}} runs) the loss is {{measured}}, against the floors {{floors}} of the rates {{rates}}.
This is why a decay is needed at all: with noisy gradients the only way below a floor is a
smaller rate, and the floor follows the rate down with a delay. A stage must last a few times
${{f:relax_steps}}$ steps for its floor to be reached; the last stage, at the smallest rate, forgets
slowest, so the stages of practice grow longer as the rate falls (or the decay is continuous,
as with the cosine).""",
    measured="a stage's measured end, against its rate's floor",
    floors="a stage's floor, against the recursion's limit",
    rates="a stage's rate from descentlab's step schedule, against η₀/2^j",
)


def _table_runs() -> list[np.ndarray]:
    return [_mean_loss(lib, TABLE_T) for _, lib, _ in SCHEDULES]


def _staircase(ctx: Context, n: kit.Numbers) -> Part:
    curve = ctx.memo(("chapter", "schedules", "table"), _table_runs)[1]
    lib = SCHEDULES[1][1]
    stages = [
        (
            lib(j * STAGE),
            float(curve[(j + 1) * STAGE - STAGE // 4 : (j + 1) * STAGE + 1].mean()),
            L.sgd_stationary_loss(lib(j * STAGE)),
        )
        for j in range(TABLE_T // STAGE)
    ]
    text = STAIRCASE.fill(
        n,
        stage=str(STAGE),
        quarter=str(STAGE // 4),
        runs=str(RUNS),
        measured=[(m, f, 0.15) for _, m, f in stages],
        floors=[(f, _fixed_point(e)) for e, _, f in stages],
        rates=[(e, ETA0 * 0.5**j) for j, (e, _, _) in enumerate(stages)],
    )
    fig = FG.new_figure(9.0, 3.6)
    ax = fig.subplots()
    ax.semilogy(curve, color="#D55E00", lw=1, label=f"step decay: mean loss of {RUNS} runs")
    for j, (e, _, f) in enumerate(stages):
        ax.plot(
            [j * STAGE, (j + 1) * STAGE],
            [f, f],
            "--",
            color="#555555",
            lw=1.2,
            label="each stage's floor ησ²/(2(2 - ηh))" if j == 0 else None,
        )
        ax.annotate(f"η = {e:g}", ((j + 0.5) * STAGE, f * 1.35), ha="center", fontsize=8)
    ax.set(xlabel="step t", ylim=(3e-3, 1))
    ax.set_title(f"halve η every {STAGE} steps: the loss walks down the floors", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    table = Table(
        [
            "stage's rate",
            f"mean loss, last {STAGE // 4} steps of the stage",
            "floor ησ²/(2(2 - ηh))",
        ],
        [list(r) for r in stages],
        f"step decay (halve every {STAGE}), {RUNS} runs of descentlab's SGD",
    )
    checks = [
        close(f"η = {e:g}: the stage ends on its rate's floor", m, f, 0.15, rel=True)
        for e, m, f in stages
    ]
    return Part("staircase", "Step decay: a staircase of floors", [text, fig, table, checks])


# ------------------------------------------------------------------------------------------
# 5. warm-up

WARM = kit.Prose(
    """
Warm-up runs the other way: it starts the rate small and raises it over the first steps. On
the noisy quadratic it has nothing to fix, since the curvature is the same everywhere; it
spends steps at a small rate while the bias is largest, and the table below measures it
costing a little. It helps where the curvature is large at the start and falls as training
proceeds, as it does along the path of a network's early training. The smallest example is
$f(w) = w^2/2 + w^4/4$, whose curvature ${{f:curvature}}$ is {{curv}} at the start w = {{w0}} and 1
at
the minimum. Near the minimum the best rate is 1/h = 1, a Newton step; at the start the linear
stability bound of the first sections asks for $\\eta < {{f:curvature_edge}}$ = {{safe}}. No
constant
rate serves both ends.

The build runs descentlab's `SGD` to |w| < {{tol}}, at most {{steps}} steps, at every constant
rate from {{lo}} to {{hi}} in steps of {{dlr}}. At η = 1 the first step throws the iterate to
{{jump}}, and it diverges. The largest constant that still converges is {{largest}}, {{above}} the
linear bound {{safe}} (the bound is sufficient, not necessary: the first steps shrink w before the
overshoot compounds), and the fastest constant needs {{fastest}} steps. descentlab's linear
`warmup` to η = 1, $\\eta_t = {{f:warmup_rate}}$ driven by its `Scheduler`, needs
{{warm}} steps for W = {{ws}}: while the rate is small the iterate falls to where the
curvature is small, and by the time the rate is large it is also safe. In deep networks the
same happens with the sharpness (the batch chapter measures it); with Adam a second reason
adds to it, the second-moment average that is not yet filled in the first steps (the adaptive
chapter's RMSProp section).""",
    curv="the curvature 1 + 3w² at the start, against autograd's second derivative",
    safe="the bound 2/(1 + 3w²), against a root-finder on |1 - ηf''| = 1",
    jump="the first step at η = 1, against descentlab's SGD",
    largest="the largest convergent constant, against the runs by hand",
    fastest="the fastest constant's steps, against the run by hand",
    warm="the warm-up's steps with descentlab's schedule, against one written by hand",
)


def _warm_runs(rates: list[float], warm: int = 0) -> list[int | None]:
    """descentlab's SGD on ``f(w) = w²/2 + w⁴/4`` from :data:`W0`, one param group per rate,
    the rate warmed up over ``warm`` steps by descentlab's ``warmup`` and ``Scheduler``: the
    steps until ``|w| <`` :data:`WARM_TOL` (None: diverged or not within :data:`WARM_STEPS`)."""
    ws = [torch.nn.Parameter(torch.tensor([W0], dtype=torch.float64)) for _ in rates]
    opt = optim.SGD([{"params": [w], "lr": r} for w, r in zip(ws, rates, strict=True)], lr=1.0)
    sched = (
        S.Scheduler(opt, {"lr": S.warmup(S.constant(), warm, start_factor=1 / (warm + 1))})
        if warm
        else None
    )
    out: list[int | None] = [None] * len(rates)
    alive = [True] * len(rates)
    for t in range(WARM_STEPS):
        for w in ws:
            x = w.detach()
            w.grad = x + x**3
        opt.step()
        if sched is not None:
            sched.step()
        for i, w in enumerate(ws):
            v = abs(float(w.detach()[0]))
            if alive[i] and (not math.isfinite(v) or v > 1e6):
                alive[i] = False
                with torch.no_grad():
                    w.zero_()
            elif alive[i] and out[i] is None and v < WARM_TOL:
                out[i] = t + 1
    return [o if a else None for o, a in zip(out, alive, strict=True)]


def _warm_by_hand(rate: float, warm: int = 0) -> int | None:
    """The same run in Python floats with the warm-up written by hand (the second route)."""
    w = W0
    for t in range(WARM_STEPS):
        w -= rate * (min(1.0, (t + 1) / (warm + 1)) if warm else 1.0) * (w + w**3)
        if not math.isfinite(w) or abs(w) > 1e6:
            return None
        if abs(w) < WARM_TOL:
            return t + 1
    return None


def _warm(ctx: Context, n: kit.Numbers) -> Part:
    const, warm, at_one = ctx.memo(("chapter", "schedules", "warm"), _warm_all)
    ok = [(r, st) for r, st in zip(WARM_GRID, const, strict=True) if st is not None]
    fastest, largest = min(ok, key=lambda p: p[1]), max(r for r, _ in ok)
    safe = 2 / (1 + 3 * W0**2)
    start = torch.tensor(W0, dtype=torch.float64)
    hess = float(torch.autograd.functional.hessian(lambda x: x**2 / 2 + x**4 / 4, start))
    text = WARM.fill(
        n,
        w0=f"{W0:g}",
        tol=f"{WARM_TOL:g}",
        steps=str(WARM_STEPS),
        ws=", ".join(map(str, WARMUPS)),
        lo=f"{WARM_GRID[0]:g}",
        hi=f"{WARM_GRID[-1]:g}",
        dlr=f"{WARM_GRID[1] - WARM_GRID[0]:.2g}",
        curv=(1 + 3 * W0**2, hess),
        safe=(safe, scipy.optimize.brentq(lambda e: abs(1 - e * hess) - 1, 1e-6, 1.0)),
        jump=(W0 - (W0 + W0**3), _first_step()),
        largest=(largest, max(r for r in WARM_GRID if _warm_by_hand(r) is not None), 0),
        above=word(largest, safe, "above"),
        fastest=(fastest[1], _warm_by_hand(fastest[0]), 0),
        warm=[(st, _warm_by_hand(1.0, w), 0) for w, st in zip(WARMUPS, warm, strict=True)],
    )
    rows = [
        ["constant η = 1", "diverged" if at_one is None else at_one],
        [f"fastest constant (η = {fastest[0]:g})", fastest[1]],
        [f"largest constant that converges (η = {largest:g})", dict(ok)[largest]],
        *[
            [f"descentlab's warmup to 1 over W = {w}", st]
            for w, st in zip(WARMUPS, warm, strict=True)
        ],
    ]
    checks = [
        ck("the constant rate 1/h = 1 diverges from the start", at_one is None,
           "diverged" if at_one is None else str(at_one), "diverged"),
        ck("every warm-up to η = 1 converges, faster than every constant rate",
           all(st is not None and st < fastest[1] for st in warm), ", ".join(map(str, warm)),
           f"< {fastest[1]}"),
        ck("the largest convergent constant rate is above the linear bound", largest > safe,
           f"{largest:g}", f"> {safe:.3g}"),
    ]  # fmt: skip
    caption = f"descentlab's SGD on f(w) = w²/2 + w⁴/4 from w = {W0:g}"
    table = Table(["schedule", f"steps to |w| < {WARM_TOL:g}"], rows, caption)
    return Part(
        "warm-up", "Warm-up: a small rate while the curvature is large", [text, table, checks]
    )


def _warm_all() -> tuple[list, list, int | None]:
    const = _warm_runs(list(WARM_GRID))
    return const, [_warm_runs([1.0], w)[0] for w in WARMUPS], _warm_runs([1.0])[0]


def _first_step() -> float:
    w = torch.nn.Parameter(torch.tensor([W0], dtype=torch.float64))
    opt = optim.SGD([w], lr=1.0)
    w.grad = w.detach() + w.detach() ** 3
    opt.step()
    return float(w.detach()[0])


# ------------------------------------------------------------------------------------------
# 6. the usual schedules side by side, descentlab's against the lectures' formulas

TABLE = kit.Prose(
    """
The schedules of the lectures' table (item 22) and of practice, side by side on the same noisy
quadratic, each descentlab's own (`constant`, `step`, `exponential`, `lambda_schedule`,
`inverse_time_decay`, `cosine`, `warmup` into `cosine`, `one_cycle`) and each checked, step by
step, against the formula the lecture or torch's documentation writes. Each starts at
η = {{eta0}} (the constant rate runs at {{c0}}, where its floor is moderate) and runs {{T}}
steps over {{runs}} runs. The columns $\\sum \\eta_t$ and $\\sum \\eta_t^2$ are the two
Robbins–Monro sums over the run: the first measures how far the iterates could travel, the
second how much noise they took in. The last column is a second route to the measured one:
the second-moment recursion driven by the hand-written formula.

The constant rate ends at its floor, {{const}}. Every decaying schedule ends below it. Step
decay and the exponential behave alike: each lowers the rate, and the floor follows it down
with a delay of about ${{f:relax_steps}}$ steps. Cosine annealing ends at rate zero and so lands
wherever the last, smallest steps leave it; it ends at {{cosine}}. The a/t schedule with
a = 1/h ends at {{a1}}, close to the 1/(2t) of the section above. The two shapes of current
practice that begin with a warm-up, a linear warm-up into a cosine and the 1-cycle (up for
the first part of the run, then down), end at {{warm}} and {{cycle}}, within {{within}} times
the plain cosine's: on a problem whose curvature is the same everywhere the warm-up neither
helps nor costs much, as the warm-up section above explains. A cosine need not end at zero:
with `eta_min` = {{eta_min}} (the last row) it bends down to that rate instead, whose steps
still inject noise, and ends at {{cos_min}}, the floor of the constant rate {{eta_min}}
({{cos_min_floor}} by the floor's formula), {{cos_min_ratio}} times the plain cosine's end: a
floor rate trades the last steps' precision for steps that keep moving. In a real network
h is not one number: no a suits every curvature at once, which is why practitioners use
schedules (cosine, step) whose shape is robust to it, and tune the start.""",
    c0="the constant schedule's value, against the formula's",
    const="constant: the measured end, against the recursion with the formula by hand",
    cosine="cosine: the measured end, against the recursion with the formula by hand",
    a1="a/t: the measured end, against the recursion with the formula by hand",
    warm="warm-up then cosine: the measured end, against the recursion by hand",
    cycle="1-cycle: the measured end, against the recursion by hand",
    within="the warm-up shapes over the cosine, against the recursion's ratio",
    cos_min="cosine with eta_min: the measured end, against the recursion by hand",
    cos_min_floor="the floor ηh/(2(2 - ηh)) at η = eta_min, against the recursion by hand",
    cos_min_ratio="the eta_min cosine's end over the plain cosine's, against the recursion's",
)


def _table(ctx: Context, n: kit.Numbers) -> Part:
    table = [float(c[-1]) for c in ctx.memo(("chapter", "schedules", "table"), _table_runs)]
    exact = [float(_recursion(hand, TABLE_T)[-1]) for _, _, hand in SCHEDULES]
    text = TABLE.fill(
        n,
        eta0=f"{ETA0:g}",
        T=str(TABLE_T),
        runs=str(RUNS),
        c0=(SCHEDULES[0][1](0), SCHEDULES[0][2](0)),
        const=(table[0], exact[0], SE),
        cosine=(table[5], exact[5], SE),
        a1=(table[4], exact[4], SE),
        warm=(table[6], exact[6], SE),
        cycle=(table[7], exact[7], SE),
        within=(max(table[6], table[7]) / table[5], max(exact[6], exact[7]) / exact[5], 2 * SE),
        eta_min=f"{ETA_MIN:g}",
        cos_min=(table[8], exact[8], SE),
        cos_min_floor=(L.sgd_stationary_loss(ETA_MIN), exact[8], 0.01),
        cos_min_ratio=(table[8] / table[5], exact[8] / exact[5], 2 * SE),
    )
    twins = [max(abs(lib(t) - hand(t)) for t in range(TABLE_T)) for _, lib, hand in SCHEDULES]
    rows = [
        [name, lib(0), lib(TABLE_T - 1), math.fsum(lib(t) for t in range(TABLE_T)),
         math.fsum(lib(t) ** 2 for t in range(TABLE_T)), end, ex]
        for (name, lib, _), end, ex in zip(SCHEDULES, table, exact, strict=True)
    ]  # fmt: skip
    checks = [
        *[diff_check(f"descentlab's {name} schedule is the lecture's formula at every one of "
                     f"{TABLE_T} steps", err, 1e-12)
          for (name, _, _), err in zip(SCHEDULES, twins, strict=True)],
        ck("the warm-up schedules end within 1.5 times the plain cosine's loss",
           max(table[6], table[7]) < 1.5 * table[5], f"{table[6]:.3g}, {table[7]:.3g}",
           f"< 1.5 × {table[5]:.3g}"),
        ck("every decaying schedule ends below the constant rate's floor",
           max(table[1:]) < table[0], f"{max(table[1:]):.3g}", f"< {table[0]:.3g}"),
    ]  # fmt: skip
    tab = Table(
        ["schedule (descentlab)", "η_0", f"η at t = {TABLE_T - 1}", "Σ η_t", "Σ η_t²",
         f"mean loss at t = {TABLE_T}", "recursion with the hand-written formula"],
        rows,
        f"{RUNS} runs of descentlab's SGD on the noisy quadratic, h = σ = 1",
    )  # fmt: skip
    return Part("table", "The usual schedules, side by side", [text, tab, checks])


# ------------------------------------------------------------------------------------------
# 7. the figure to move: a/t's constant, computed in the page

MOVE = kit.Prose(
    """
Move a: the page iterates the second-moment recursion under $\\eta_t = {{f:offset_decay}}$ itself,
for
{{T}} steps, at every position of the slider. Below a = 0.5 the curve bends away from the
asymptote and stays high: the schedule forgets the start too slowly. At a = 1 the loss lies
on the 1/t line; at larger a it is parallel to it but higher, because the early rates inject
more noise than they remove. The runs of descentlab's `SGD` at the slider's marked values (the
table) agree: their lowest loss after {{T}} steps is at a = {{best}}, and every a with
ah ≥ 1/2 ends below the floor of the constant rate 0.1, a decay keeps descending where a
constant rate stays; but at a = 0.1 the loss after {{T}} steps is still {{a01}}, above that
floor ({{floor}}). That schedule satisfies both Robbins–Monro conditions and still converges
too slowly to matter: the conditions say whether, the constant says how fast.""",
    a01="a = 0.1: the measured end, against the recursion",
    floor="the floor of η = 0.1, against the recursion's limit",
)

MOVE_JS = """function (p) {
  var T = p.T, t0 = Math.max(p.a, 1), v = 1, loss = [0.5], asym = [NaN];
  for (var t = 0; t < T; t++) {
    var e = p.a / (t + t0);
    v = (1 - e) * (1 - e) * v + e * e;
    loss.push(0.5 * v);
    asym.push(p.a > 0.5 ? 0.5 * p.a * p.a / ((2 * p.a - 1) * (t + 1)) : NaN);
  }
  var ts = seq(T + 1), floor = 0.1 / (2 * (2 - 0.1));
  return {panels: [{x: {label: 'step t', log: true, min: 1},
                    y: {label: 'expected loss', log: true, min: 1e-4, max: 1},
    lines: [{x: ts, y: loss, label: 'a/t, a = ' + fmt(p.a) + ': the exact recursion'},
            {x: ts, y: asym, label: 'asymptote a²/(2(2a - 1)t)', dash: true},
            {x: [1, T], y: [floor, floor], label: 'constant η = 0.1: its floor', dash: true,
             colour: '#0072B2'}]}],
    values: {final: loss[T]}, text: 'expected loss after ' + T + ' steps: ' + fmt(loss[T])};
}"""


def _move(ctx: Context, n: kit.Numbers) -> Part:
    measured = ctx.memo(("chapter", "schedules", "a_over_t"), _a_over_t_runs)
    finals = [float(measured[a][T]) for a in SLIDER_AS]
    exact = [float(_recursion(_a_over_t_by_hand(a), T)[T]) for a in SLIDER_AS]
    best, floor = SLIDER_AS[int(np.argmin(finals))], L.sgd_stationary_loss(0.1)
    text = MOVE.fill(
        n,
        T=str(T),
        best=f"{best:g}",
        a01=(finals[0], exact[0], SE),
        floor=(floor, _fixed_point(0.1)),
    )
    probes = [
        Probe({"a": a}, {"final": float(_recursion(_a_over_t(a), T)[T])}) for a in (0.25, 1.0, 4.0)
    ]
    fig = Live(
        "Move a in $\\eta_t = {{f:offset_decay}}$: the expected loss by the exact recursion "
        "(log–log), the asymptote and the floor of a constant rate.",
        [Slider("a", "a", 0.05, 8.0, 1.0, log=True)],
        MOVE_JS,
        probes,
        against="the recursion under descentlab's inverse_time_decay",
        constants={"T": T},
    )
    table = Table(
        ["a", f"measured loss at t = {T} (mean of {RUNS} runs of descentlab's SGD)", "recursion"],
        [[a, f, e] for a, f, e in zip(SLIDER_AS, finals, exact, strict=True)],
    )
    above = max(f for a, f in zip(SLIDER_AS, finals, strict=True) if a >= 0.5)
    checks = [
        ck("the lowest measured loss of the marked values is at a = 1/h", best == 1.0,
           f"{best:g}", "1"),
        said(text, "ends below the floor of the constant rate", above < floor < finals[0],
             f"{above:.3g}; {finals[0]:.3g}", f"< {floor:.3g} <"),
    ]  # fmt: skip
    return Part("move", "Move a: the 1/t schedule's constant", [text, fig, table, checks])


# ------------------------------------------------------------------------------------------
# 8. from scratch, and a real training run

_scratch = kit.scratch(
    text="""
A schedule is a function of the step, and SGD with a schedule is one line more than SGD. The
cell below writes linear warm-up into a cosine by hand and runs SGD with it in plain torch on
64 copies of the noisy quadratic; beside it descentlab's `SGD` driven by descentlab's
`Scheduler` with `warmup(cosine(...))`, on the same noise. The build checks that every iterate
is the same: the library's schedule is the formula the reader types.""",
    code="""\
import math
import torch
from descentlab import optim, schedules as S

T, W, eta = 200, 20, 0.5
def lr_at(t):                            # linear warm-up from 0, then a cosine to 0
    if t < W:
        return eta * t / W
    return eta * 0.5 * (1 + math.cos(math.pi * (t - W) / (T - W)))

gen = torch.Generator().manual_seed(0)
noise = torch.randn(T, 64, generator=gen, dtype=torch.float64)   # 64 noisy quadratics

w, mine = torch.ones(64, dtype=torch.float64), []
for t in range(T):
    w = w - lr_at(t) * (w + noise[t])   # the gradient h w + sigma xi, h = sigma = 1
    mine.append(w)
mine = torch.stack(mine)

p = torch.nn.Parameter(torch.ones(64, dtype=torch.float64))
opt = optim.SGD([p], lr=eta)
sched = S.Scheduler(opt, {"lr": S.warmup(S.cosine(T - W), W)})   # relative to lr = eta
library = []
for t in range(T):
    p.grad = p.detach() + noise[t]
    opt.step()
    sched.step()
    library.append(p.detach().clone())
library = torch.stack(library)
print(f"mean loss after {T} steps: mine {0.5 * (mine[-1] ** 2).mean():.6f}, "
      f"descentlab {0.5 * (library[-1] ** 2).mean():.6f}")
print(f"largest difference over all steps: {(mine - library).abs().max():.1e}")
""",
    what="SGD with warm-up and cosine from scratch gives descentlab's SGD under its Scheduler",
)

TRAINING = kit.Prose(
    """
On a network the same schedules are one line of a run's configuration. The figure trains
descentlab's default MNIST-1D model with `Momentum` (β = 0.9, η = {{lr}}) for {{steps}} steps,
mini-batches of {{batch}}, three ways: a constant rate, descentlab's `warmup` over {{warm}}
steps into a `cosine`, and `step` decay halving every {{stage}} steps. The engine records the
rate it applied at every evaluation, and the checks compare it with the formulas written by
hand: the schedule the run used is the one the text describes. The rate is large on
purpose: at the constant rate the run soon stops improving and hovers, its loss high and
noisy, the floor of the first section in a network; both decays walk down below it, as step
decay walks down the staircase of floors above.""",
)


def _training(ctx: Context, n: kit.Numbers) -> Part:
    from descentlab.engine.config import RunConfig

    base = {
        "problem": "mnist1d",
        "batch_size": TRAIN_B,
        "steps": TRAIN_STEPS,
        "eval_every": 25,
        "seed": 0,
        "optimizer": "momentum",
        "hyper": {"lr": TRAIN_LR, "momentum": 0.9},
    }
    hands = {
        "constant": lambda t: TRAIN_LR,
        f"warm-up {TRAIN_WARM}, then cosine": lambda t: (
            TRAIN_LR
            * (
                t / TRAIN_WARM
                if t < TRAIN_WARM
                else 0.5 * (1 + math.cos(math.pi * (t - TRAIN_WARM) / (TRAIN_STEPS - TRAIN_WARM)))
            )
        ),
        f"step: halve every {TRAIN_STEPS // 3}": lambda t: (
            TRAIN_LR * 0.5 ** (t // (TRAIN_STEPS // 3))
        ),
    }
    scheds = [
        {},
        {"lr": S.warmup(S.cosine(TRAIN_STEPS - TRAIN_WARM), TRAIN_WARM)},
        {"lr": S.step(TRAIN_STEPS // 3, 0.5)},
    ]
    runs = {label: RunConfig(**base, schedule=s) for label, s in zip(hands, scheds, strict=True)}
    fig, res = kit.training_run(ctx, "schedules", runs, "MNIST-1D, Momentum (β = 0.9)")
    checks = []
    for (label, hand), r in zip(hands.items(), res.values(), strict=True):
        if "hyper/lr" in r.metrics:
            s = r.metrics["hyper/lr"]
            # the value recorded at step k is the rate of the step that follows it
            err = max(abs(float(v) - hand(int(k))) for k, v in zip(s.steps, s.values, strict=True))
            checks.append(
                diff_check(
                    f"{label}: the rate the engine applied is the formula's at "
                    f"every one of {len(s.steps)} evaluations",
                    err,
                    1e-9,
                )
            )
    losses = [kit.final(r, "train/loss") for r in res.values()]
    checks.append(
        ck(
            "both decays end below half of the constant rate's final training loss",
            max(losses[1:]) < 0.5 * losses[0],
            f"{max(losses[1:]):.4g}",
            f"< {0.5 * losses[0]:.4g}",
        )
    )
    text = TRAINING.fill(
        n,
        lr=f"{TRAIN_LR:g}",
        steps=str(TRAIN_STEPS),
        batch=str(TRAIN_B),
        warm=str(TRAIN_WARM),
        stage=str(TRAIN_STEPS // 3),
    )
    table = kit.results_table(
        res,
        f"descentlab's engine (train), MNIST-1D, batches of {TRAIN_B}, seed 0",
        "train/loss",
        "test/accuracy",
        first="schedule",
    )
    return Part(
        "training", "A real training run, scheduled by descentlab", [text, fig, table, checks]
    )


KEEP = """
What to keep. With noisy gradients a constant rate hovers at a floor of about
${{f:loss_floor_small}}$;
its loss is a bias that decays like ${{f:bias_decay}}$ plus that floor, so the best constant
rate depends on the budget and shrinks like $\\ln T/T$. A schedule must keep $\\sum \\eta_t$
infinite and $\\sum \\eta_t^2$ finite; a/t reaches the optimal 1/t only when ah > 1/2, best near
a = 1/h. Step decay walks down a staircase of floors, each reached after a few times
${{f:relax_steps}}$ steps. Warm-up is for a different problem, a curvature that is large at the
start: it keeps the rate below 2/λ until λ has fallen. The schedules of practice (step,
cosine, warm-up then cosine, 1-cycle) trade the precision of a/t for robustness to curvatures
nobody knows, and on a noisy problem each of them ends far below the floor of a constant rate.
Every one of them is a descentlab schedule, checked here against its formula."""

#: the chapter's exercises (:mod:`descentlab.book.chapters.practice`)
EXERCISES = practice.SCHEDULES

CHAPTER = kit.Chapter(
    "deep-schedules",
    "Learning-rate schedules in depth",
    "Why a constant rate stalls at a floor proportional to the rate, what the Robbins–Monro "
    "conditions ask of a schedule, and the exact behaviour of a/t: derived on the noisy "
    "quadratic, measured over many runs of descentlab's SGD under descentlab's own schedules, "
    "each checked against its formula.",
    (15, 16, 17, 18, 19, 20, 21, 22, 106, 115, 125),
    (
        RUNS,
        *FLOOR_LRS,
        ETA_MIN,
        FLOOR_STEPS,
        FLOOR_LAST,
        T,
        *AS,
        *SLIDER_AS,
        ETA0,
        TABLE_T,
        0.1,
        200,
        0.005,
        1,
        2,
        4,
        10,
        *CURVE_LRS,
        STAGE,
        W0,
        *WARMUPS,
        WARM_TOL,
        WARM_STEPS,
        TRAIN_B,
        TRAIN_STEPS,
        TRAIN_LR,
        TRAIN_WARM,
        TRAIN_STEPS // 3,
        T // 4,
        STAGE // 4,
        64,
        0.9,
        T // 10,
        T // 2,
        T * 10,
        0.01,
    ),
    (_floor, _bias, _one_over_t, _staircase, _warm, _table, _move, _scratch, _training),
    KEEP,
    EXERCISES,
)
