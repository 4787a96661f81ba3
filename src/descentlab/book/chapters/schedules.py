"""Learning-rate schedules in depth: the noise floor of a constant rate, the Robbins–Monro
conditions, the ``a/t`` schedule's exact variance recursion and its threshold ``ah = 1/2``,
the usual schedules side by side; traces of many runs of descentlab's SGD on the noisy
quadratic."""

from __future__ import annotations

import math

import numpy as np
import torch

from descentlab import optim
from descentlab.book.chapters._common import NO_LIVE_VIEW, Numbers, finish
from descentlab.book.checks import ck, close
from descentlab.book.model import Context
from descentlab.book.render.chapter import ChapterPage, Part, Table
from descentlab.book.render.pages import Movable
from descentlab.problems import landscapes as L
from descentlab.problems.trajectories import run
from descentlab.report import figures as FG

__all__ = ["chapter"]

RUNS = 512
FLOOR_LRS = (0.05, 0.1, 0.2, 0.5)
FLOOR_STEPS, FLOOR_LAST = 400, 200
T = 1000
AS = (0.25, 1.0, 2.0)
SLIDER_AS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
ETA0, TABLE_T = 0.5, 1000
#: the constant rates whose whole loss curve is compared with the exact solution
CURVE_LRS = (0.02, 0.05, 0.2)
#: step decay's stages: the rate halves every STAGE steps from ETA0
STAGE = 200
#: warm-up on f(w) = w²/2 + w⁴/4 from W0: the warm-up lengths, the constant rates' grid,
#: the target |w| and the steps allowed
W0 = 2.9
WARMUPS = (5, 20, 50)
WARM_GRID = tuple(round(0.01 * i, 2) for i in range(5, 51))
WARM_TOL, WARM_STEPS = 1e-8, 400


def _noisy() -> L.Landscape:
    return L.noisy_quadratic(h=1.0, sigma=1.0, dim=1)


def _mean_loss(lr, steps: int) -> np.ndarray:
    """The mean loss of :data:`RUNS` runs of descentlab's SGD on the noisy quadratic from 1."""
    tr = run(_noisy(), "sgd", torch.ones(RUNS, 1, dtype=torch.float64), steps, lr=lr, seed=0)
    return tr.losses.mean(0).numpy()


def _a_over_t(a: float):
    t0 = max(a, 1.0)  # the first rate a/t0 at most 1: stable on h = 1
    return (lambda t: a / (t + t0)), t0


def _exact(a: float, steps: int) -> np.ndarray:
    """The expected loss under ``η_t = a/(t + t0)`` by the variance recursion (h = σ = 1)."""
    rate, _ = _a_over_t(a)
    v, out = 1.0, [0.5]
    for t in range(steps):
        e = rate(t)
        v = (1 - e) ** 2 * v + e * e
        out.append(0.5 * v)
    return np.array(out)


def _warm_cosine(t: int, warm: int = 50) -> float:
    if t < warm:
        return ETA0 * (t + 1) / warm
    return ETA0 * 0.5 * (1 + math.cos(math.pi * (t - warm) / (TABLE_T - warm)))


def _one_cycle(t: int, up: float = 0.3, div: float = 25.0, final_div: float = 1e4) -> float:
    """torch's ``OneCycleLR`` (cosine): from ``ETA0/div`` up to ``ETA0`` over the first
    ``up`` of the run, then down to ``ETA0/(div·final_div)``."""
    start, end, peak = ETA0 / div, ETA0 / div / final_div, up * TABLE_T
    if t < peak:
        return start + (ETA0 - start) * (1 - math.cos(math.pi * t / peak)) / 2
    return end + (ETA0 - end) * (1 + math.cos(math.pi * (t - peak) / (TABLE_T - peak))) / 2


SCHEDULES = (
    ("constant", lambda t: ETA0 * 0.2),
    ("step: halve every 200", lambda t: ETA0 * 0.5 ** (t // 200)),
    ("exponential, k = 0.005", lambda t: ETA0 * math.exp(-0.005 * t)),
    ("1/√t", lambda t: ETA0 / math.sqrt(t + 1)),
    ("a/t, a = 1", lambda t: 1.0 / (t + 2)),
    ("cosine to 0", lambda t: ETA0 * 0.5 * (1 + math.cos(math.pi * t / TABLE_T))),
    ("linear warm-up 50, then cosine", lambda t: _warm_cosine(t)),
    ("1-cycle (torch's OneCycleLR shape)", lambda t: _one_cycle(t)),
)


def _warm(rates: list[float], schedule=None) -> list[int | None]:
    """descentlab's SGD on ``f(w) = w²/2 + w⁴/4`` from :data:`W0`, one run per rate (a param
    group each), the rate times ``schedule(t)`` at step t: the steps until ``|w| <``
    :data:`WARM_TOL` (None: diverged or not within :data:`WARM_STEPS`)."""
    ws = [torch.nn.Parameter(torch.tensor([W0], dtype=torch.float64)) for _ in rates]
    opt = optim.SGD([{"params": [w], "lr": r} for w, r in zip(ws, rates, strict=True)], lr=1.0)
    out: list[int | None] = [None] * len(rates)
    alive = [True] * len(rates)
    for t in range(WARM_STEPS):
        if not any(a and o is None for a, o in zip(alive, out, strict=True)):
            break
        for g, r in zip(opt.param_groups, rates, strict=True):
            g["lr"] = r * (schedule(t) if schedule else 1.0)
        for w in ws:
            x = w.detach()
            w.grad = x + x**3
        opt.step()
        for i, w in enumerate(ws):
            v = abs(float(w.detach()[0]))
            if alive[i] and (not math.isfinite(v) or v > 1e6):
                alive[i] = False
                with torch.no_grad():
                    w.zero_()
            elif alive[i] and out[i] is None and v < WARM_TOL:
                out[i] = t + 1
    return [o if a else None for o, a in zip(out, alive, strict=True)]


def chapter(ctx: Context) -> ChapterPage:
    """The chapter's page, every number computed now."""
    n = Numbers(
        RUNS,
        *FLOOR_LRS,
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
        *CURVE_LRS,
        STAGE,
        W0,
        *WARMUPS,
        WARM_TOL,
        WARM_STEPS,
    )
    parts: list[Part] = []

    # 1. the noise floor --------------------------------------------------------------------
    floors = ctx.memo(
        ("chapter", "schedules", "floor"),
        lambda: [float(_mean_loss(e, FLOOR_STEPS)[-FLOOR_LAST:].mean()) for e in FLOOR_LRS],
    )
    rows = [[e, L.sgd_stationary_loss(e), m] for e, m in zip(FLOOR_LRS, floors, strict=True)]
    text1 = f"""
A constant learning rate cannot converge when the gradient is noisy (items 18 and 20). The
cleanest place to see how far it gets is the noisy quadratic `f(w) = hw²/2` whose gradient
is `hw + σξ`, with ξ a fresh standard normal at every step: the mini-batch gradient of
item 14 in its simplest form. One SGD step is `w ← (1 - ηh)w - ησξ`. Square it and take
the expectation; the noise is independent of w, so the cross term vanishes and

`E[w²] ← (1 - ηh)² E[w²] + η²σ²`.

This is a linear recursion for the second moment. For `0 < ηh < 2` it contracts, and its
fixed point is `E[w²] = η²σ²/(1 - (1 - ηh)²) = ησ²/(h(2 - ηh))`. The expected loss settles at
`ησ²/(2(2 - ηh))`, about `ησ²/4` for a small rate: the floor is proportional to the rate.
A smaller rate gets lower, but the contraction factor `(1 - ηh)²` is closer to one, so it
gets there more slowly. No constant rate has both.

The table runs {RUNS} independent runs of descentlab's `SGD` with h = σ = 1 from w = 1 for
{FLOOR_STEPS} steps and averages the loss over the runs and the last {FLOOR_LAST} steps. At
η = 0.05 the floor is {n(floors[0], 3)} (formula {n(rows[0][1], 3)}), at η = 0.5 it is
{n(floors[-1], 3)} (formula {n(rows[-1][1], 3)}): {n(FLOOR_LRS[-1] / FLOOR_LRS[0])} times the
rate, {n(floors[-1] / floors[0], 3)} times the floor, the `2 - ηh` in the denominator adding
to the linear growth."""
    parts.append(
        Part(
            "floor",
            "The noise floor of a constant rate",
            [
                text1,
                Table(
                    [
                        "η",
                        "floor ησ²/(2(2 - ηh))",
                        f"measured (mean of {RUNS} runs, last {FLOOR_LAST} steps)",
                    ],
                    rows,
                    "descentlab's SGD on the noisy quadratic, h = σ = 1, float64",
                ),
                [
                    close(f"η = {e:g}: the measured floor is ησ²/(2(2 - ηh))", m, p, 0.1, rel=True)
                    for e, p, m in rows
                ],
            ],
        )
    )

    # 2. a/t: the exact recursion and the threshold -----------------------------------------
    def curves() -> dict[float, np.ndarray]:
        return {a: _mean_loss(_a_over_t(a)[0], T) for a in SLIDER_AS}

    measured = ctx.memo(("chapter", "schedules", "a_over_t"), curves)  # (the slider's too)
    exact = {a: _exact(a, T) for a in AS}
    slopes = {a: float(np.log(measured[a][T] / measured[a][T // 4]) / np.log(4)) for a in AS}
    asym = {a: 0.5 * a * a / ((2 * a - 1) * T) for a in AS if a > 0.5}
    text2 = f"""
To converge, the rate must fall. Robbins and Monro's conditions (item 20) say how fast:
`Σ η_t = ∞`, so that the iterates can still travel any distance, and `Σ η_t² < ∞`, so that
the noise's total contribution `Σ η_t² σ²` stays bounded. The canonical choice is `η_t =
a/t` (item 21), and the second-moment recursion above tells exactly how it behaves: with
`η_t = a/t` it reads `E[w²] ← (1 - ah/t)² E[w²] + a²σ²/t²`.

Try `E[w²] ≈ c/t` in it. Expanding to first order in `1/t`, the recursion closes when
`c(2ah - 1) = a²σ²`, so when `ah > 1/2` the expected loss falls like
`h a²σ²/(2(2ah - 1)t)`, the optimal `1/t`. The constant `a²/(2ah - 1)` is smallest at
`a = 1/h`: the best `a/t` schedule takes a full Newton step's scale. When `ah < 1/2` the
guess fails: the contraction `(1 - ah/t)²` is too weak to forget the start, and the loss
falls only like `t^(-2ah)`, slower than `1/t`.

The build runs {RUNS} runs of descentlab's `SGD` with `η_t = a/(t + t_0)` (the offset `t_0`
keeps the first rate at most 1) for {T} steps, and iterates the recursion exactly. At a = 1
the loss after {T} steps is {n(measured[1.0][T], 3)} (exact recursion {n(exact[1.0][T], 3)},
asymptote {n(asym[1.0], 3)}); at a = 2 it is {n(measured[2.0][T], 3)}, higher, as the
constant `a²/(2a - 1)` predicts ({n(asym[2.0], 3)}). At a = 0.25 it is
{n(measured[0.25][T], 3)}, and its slope on a log–log plot between steps {n(T // 4)} and {T}
is {n(slopes[0.25], 3)}, the `-2ah` = `-0.5` of the theory, against {n(slopes[1.0], 3)} at
a = 1."""
    parts.append(
        Part(
            "one-over-t",
            "Why a/t, and why the constant a matters",
            [
                text2,
                Table(
                    [
                        "a",
                        f"measured loss at t = {T}",
                        "exact recursion",
                        "asymptote a²/(2(2a - 1)t)",
                        f"log–log slope, t = {T // 4}-{T}",
                    ],
                    [
                        [a, measured[a][T], exact[a][T], asym.get(a, "none (ah < 1/2)"), slopes[a]]
                        for a in AS
                    ],
                    f"{RUNS} runs of descentlab's SGD, η_t = a/(t + t_0), h = σ = 1",
                ),
                [
                    *[
                        close(
                            f"a = {a:g}: the mean loss at t = {T} is the recursion's (within 4 "
                            f"standard errors of a mean of {RUNS} squared normals)",
                            measured[a][T],
                            exact[a][T],
                            4 * math.sqrt(2 / RUNS),
                            rel=True,
                        )
                        for a in AS
                    ],
                    close(
                        "a = 0.25 (ah < 1/2): the loss falls like t^(-2ah)", slopes[0.25], -0.5, 0.1
                    ),
                    ck(
                        "a = 1/h ends lower than a = 2/h",
                        measured[1.0][T] < measured[2.0][T],
                        f"{measured[1.0][T]:.3g}",
                        f"< {measured[2.0][T]:.3g}",
                    ),
                ],
            ],
        )
    )

    # 1b. the whole curve of a constant rate, and the best constant for a budget ---------------
    def exact_const(lr: float, steps: int) -> np.ndarray:
        v_inf = lr / (2 - lr)
        t = np.arange(steps + 1)
        return 0.5 * (v_inf + (1 - lr) ** (2 * t) * (1 - v_inf))

    grid = np.geomspace(1e-4, 1.0, 4001)
    budgets = (T // 10, T, T * 10)
    best_lr = {b: float(grid[np.argmin([exact_const(e, b)[-1] for e in grid])]) for b in budgets}
    best_loss = {b: float(exact_const(best_lr[b], b)[-1]) for b in budgets}
    curves_c = ctx.memo(
        ("chapter", "schedules", "const"),
        lambda: {e: _mean_loss(e, T) for e in (*CURVE_LRS, best_lr[T])},
    )
    se = 4 * math.sqrt(2 / RUNS)
    probe = (T // 10, T // 2, T)
    gaps = {
        (e, t_): abs(float(c[t_]) / float(exact_const(e, T)[t_]) - 1)
        for e, c in curves_c.items()
        for t_ in probe
    }
    worst_gap = max(gaps.values())
    a1_final = float(measured[1.0][T])
    text1b = f"""
The recursion does more than give the floor: it is linear, so it can be solved for every
step. Subtract the fixed point `v_∞ = ησ²/(h(2 - ηh))` from both sides and the constant term
disappears, `E[w_(t+1)²] - v_∞ = (1 - ηh)² (E[w_t²] - v_∞)`. Unrolled from the start `w_0`,

`E[w_t²] = v_∞ + (1 - ηh)^(2t) (w_0² - v_∞)`.

Two terms, and they are the whole story of a constant rate. The first is the *variance*, the
floor, proportional to η. The second is the *bias*, the memory of the start, which decays
geometrically at the rate `(1 - ηh)²` and so takes about `1/(2ηh)` steps per factor e. A large
η forgets the start fast and hovers high; a small η hovers low and forgets slowly. For a fixed
budget of steps there is a best constant rate, where the two terms balance: minimising the
exact loss over η gives {n(best_lr[budgets[0]], 3)} for {n(budgets[0])} steps,
{n(best_lr[T], 3)} for {T} and {n(best_lr[budgets[2]], 3)} for {n(budgets[2])}, shrinking
about like `ln T / T` (`η T / ln T` is
{", ".join(n(best_lr[b] * b / math.log(b), 2) for b in budgets)}), with final losses
{n(best_loss[budgets[0]], 3)}, {n(best_loss[T], 3)} and {n(best_loss[budgets[2]], 3)}. The
rate that is best depends on how long one trains, which is already an argument for a
schedule: the right rate late in a run is not the right rate early.

The build runs {RUNS} runs at each of η = {", ".join(f"{e:g}" for e in CURVE_LRS)} and at the
best constant for {T} steps, and compares the mean loss with the solution at steps
{", ".join(n(t_) for t_ in probe)}: the largest relative gap is {n(worst_gap, 2)}, within the
`4·√(2/RUNS)` = {n(se, 2)} that {RUNS} runs allow (4 standard errors of a mean of squared
normals). At {T} steps the best constant
ends at {n(curves_c[best_lr[T]][T], 3)}; the next section's `a/t` schedule with a = 1 ends at
{n(a1_final, 3)}, {n(curves_c[best_lr[T]][T] / a1_final, 3)} times lower, with no tuning to
the budget."""
    parts.insert(
        1,
        Part(
            "bias-variance",
            "A constant rate, exactly: the bias decays, the variance stays",
            [
                text1b,
                Table(
                    [
                        "η",
                        *[f"mean loss at t = {t_}" for t_ in probe],
                        *[f"exact at t = {t_}" for t_ in probe],
                    ],
                    [
                        [
                            e,
                            *[float(c[t_]) for t_ in probe],
                            *[float(exact_const(e, T)[t_]) for t_ in probe],
                        ]
                        for e, c in curves_c.items()
                    ],
                    f"{RUNS} runs of descentlab's SGD at a constant rate, h = σ = 1, from w = 1 "
                    f"(the last row: the best constant for {T} steps)",
                ),
                [
                    ck(
                        f"the mean loss of {RUNS} runs is the exact solution at steps "
                        + ", ".join(str(t_) for t_ in probe)
                        + " (four standard errors)",
                        worst_gap < se,
                        f"largest gap {worst_gap:.3g}",
                        f"< {se:.3g}",
                    ),
                    ck(
                        "the best constant rate shrinks like ln T / T: η T / ln T varies by less "
                        "than 20 % over the budgets",
                        max(best_lr[b] * b / math.log(b) for b in budgets)
                        < 1.2 * min(best_lr[b] * b / math.log(b) for b in budgets),
                        ", ".join(f"{best_lr[b] * b / math.log(b):.3g}" for b in budgets),
                        "max < 1.2 × min",
                    ),
                    ck(
                        "the best constant rate shrinks as the budget grows",
                        best_lr[budgets[0]] > best_lr[T] > best_lr[budgets[2]],
                        ", ".join(f"{best_lr[b]:.3g}" for b in budgets),
                        "decreasing",
                    ),
                    ck(
                        f"a/t with a = 1/h ends below the best constant rate for {T} steps",
                        a1_final < float(curves_c[best_lr[T]][T]),
                        f"{a1_final:.3g}",
                        f"< {float(curves_c[best_lr[T]][T]):.3g}",
                    ),
                ],
            ],
        ),
    )

    # 3a. step decay: a staircase of floors --------------------------------------------------
    step_curve = ctx.memo(
        ("chapter", "schedules", "table"),
        lambda: [_mean_loss(fn, TABLE_T) for _, fn in SCHEDULES],
    )[1]
    stages = [
        (
            ETA0 * 0.5**j,
            float(step_curve[(j + 1) * STAGE - STAGE // 4 : (j + 1) * STAGE + 1].mean()),
            L.sgd_stationary_loss(ETA0 * 0.5**j),
        )
        for j in range(TABLE_T // STAGE)
    ]
    text_stair = f"""
Step decay is the schedule the floor explains best. Hold η for {STAGE} steps, halve it, hold
again. Within each stage the recursion of the first section runs with that stage's rate: the
bias term forgets the previous stage's level within about `1/(2ηh)` steps, and the loss
settles on the new, lower floor `ησ²/(2(2 - ηh))`. The curve is a staircase whose steps are
the floors of the successive rates, each about half the one before. At the end of the
stages (the mean over each stage's last {n(STAGE // 4)} steps, {RUNS} runs) the loss is
{", ".join(n(m, 3) for _, m, _ in stages)}, against the floors
{", ".join(n(f, 3) for _, _, f in stages)} of the rates
{", ".join(n(e, 3) for e, _, _ in stages)}. This is why a decay is needed at all: with noisy
gradients the only way below a floor is a smaller rate, and the floor follows the rate down
with a delay. A stage must last a few times `1/(2ηh)` steps for its floor to be reached;
the last stage, at the smallest rate, forgets slowest, so the stages of practice grow longer
as the rate falls (or the decay is continuous, as with the cosine)."""
    stair_fig = FG.new_figure(9.0, 3.6)
    ax = stair_fig.subplots()
    ax.semilogy(step_curve, color="#D55E00", lw=1, label=f"step decay: mean loss of {RUNS} runs")
    for j, (e, _, f_) in enumerate(stages):
        ax.plot(
            [j * STAGE, (j + 1) * STAGE],
            [f_, f_],
            "--",
            color="#555555",
            lw=1.2,
            label="each stage's floor ησ²/(2(2 - ηh))" if j == 0 else None,
        )
        ax.annotate(f"η = {e:g}", ((j + 0.5) * STAGE, f_ * 1.35), ha="center", fontsize=8)
    ax.set_xlabel("step t")
    ax.set_ylim(3e-3, 1)
    ax.set_title(f"halve η every {STAGE} steps: the loss walks down the floors", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    parts.append(
        Part(
            "staircase",
            "Step decay: a staircase of floors",
            [
                text_stair,
                stair_fig,
                Table(
                    [
                        "stage's rate",
                        f"mean loss, last {STAGE // 4} steps of the stage",
                        "floor ησ²/(2(2 - ηh))",
                    ],
                    [list(r) for r in stages],
                    f"step decay (halve every {STAGE}), {RUNS} runs of descentlab's SGD",
                ),
                [
                    close(f"η = {e:g}: the stage ends on its rate's floor", m, f_, 0.15, rel=True)
                    for e, m, f_ in stages
                ],
            ],
        )
    )

    # 3b. warm-up ------------------------------------------------------------------------------
    warm = ctx.memo(
        ("chapter", "schedules", "warm"),
        lambda: (
            _warm(list(WARM_GRID)),
            [_warm([1.0], lambda t, w_=w_: min(1.0, (t + 1) / (w_ + 1)))[0] for w_ in WARMUPS],
            _warm([1.0])[0],
        ),
    )
    const_steps, warm_steps, at_one = warm
    ok_const = [(r, st) for r, st in zip(WARM_GRID, const_steps, strict=True) if st is not None]
    fastest = min(ok_const, key=lambda p_: p_[1])
    largest = max(r for r, _ in ok_const)
    safe = 2 / (1 + 3 * W0**2)
    text_warm = f"""
Warm-up runs the other way: it starts the rate small and raises it over the first steps. On
the noisy quadratic it has nothing to fix, since the curvature is the same everywhere; it
spends steps at a small rate while the bias is largest, and the table below measures it
costing a little. It helps where the curvature is large at the start and falls as training
proceeds, as it does along the path of a network's early training. The smallest example is
`f(w) = w²/2 + w⁴/4`, whose curvature `1 + 3w²` is {n(1 + 3 * W0**2, 3)} at the start
w = {W0:g} and 1 at the minimum. Near the minimum the best rate is `1/h` = 1, a Newton step;
at the start the linear stability bound of the first sections asks for
`η < 2/(1 + 3w²)` = {n(safe, 3)}. No constant rate serves both ends.

The build runs descentlab's `SGD` to `|w|` < {WARM_TOL:g}, at most {WARM_STEPS} steps, at
every constant rate from {n(WARM_GRID[0], 2)} to {n(WARM_GRID[-1], 2)} in steps of
{n(WARM_GRID[1] - WARM_GRID[0], 2)}. At η = 1 the first step throws the iterate to
{n(W0 - (W0 + W0**3), 3)}, and it diverges. The largest constant that still converges is
{n(largest, 2)}, above the linear bound (the bound is sufficient, not necessary: the
first steps shrink w before the overshoot compounds), and the fastest constant needs
{n(fastest[1])} steps. A linear warm-up to η = 1, `η_t = min(1, (t + 1)/(W + 1))`, needs
{", ".join(n(v) for v in warm_steps)} steps for W = {", ".join(str(v) for v in WARMUPS)}:
while the rate is small the iterate falls to where the curvature is small, and by the time
the rate is large it is also safe. In deep networks the same happens with the sharpness
(the batch chapter measures it); with Adam a second reason adds to it, the second-moment
average that is not yet filled in the first steps (the adaptive chapter's RMSProp section)."""
    parts.append(
        Part(
            "warm-up",
            "Warm-up: a small rate while the curvature is large",
            [
                text_warm,
                Table(
                    ["schedule", f"steps to |w| < {WARM_TOL:g}"],
                    [
                        ["constant η = 1", "diverged" if at_one is None else at_one],
                        [f"fastest constant (η = {fastest[0]:g})", fastest[1]],
                        [
                            f"largest constant that converges (η = {largest:g})",
                            dict(ok_const)[largest],
                        ],
                        *[
                            [f"linear warm-up to 1 over W = {w_}", st]
                            for w_, st in zip(WARMUPS, warm_steps, strict=True)
                        ],
                    ],
                    f"descentlab's SGD on f(w) = w²/2 + w⁴/4 from w = {W0:g}",
                ),
                [
                    ck(
                        "the constant rate 1/h = 1 diverges from the start",
                        at_one is None,
                        "diverged" if at_one is None else str(at_one),
                        "diverged",
                    ),
                    ck(
                        "every warm-up to η = 1 converges, faster than every constant rate",
                        all(st is not None and st < fastest[1] for st in warm_steps),
                        ", ".join(str(v) for v in warm_steps),
                        f"< {fastest[1]}",
                    ),
                    ck(
                        "the largest convergent constant rate is above the linear bound",
                        largest > safe,
                        f"{largest:g}",
                        f"> {safe:.3g}",
                    ),
                ],
            ],
        )
    )

    # 3. the usual schedules side by side -----------------------------------------------------
    table = [
        float(c[-1])
        for c in ctx.memo(
            ("chapter", "schedules", "table"),
            lambda: [_mean_loss(fn, TABLE_T) for _, fn in SCHEDULES],
        )
    ]
    sums = [
        (sum(fn(t) for t in range(TABLE_T)), sum(fn(t) ** 2 for t in range(TABLE_T)))
        for _, fn in SCHEDULES
    ]
    const = table[0]
    best = min(range(len(SCHEDULES)), key=table.__getitem__)
    rows = [
        [name, fn(0), fn(TABLE_T - 1), s1, s2, final]
        for (name, fn), (s1, s2), final in zip(SCHEDULES, sums, table, strict=True)
    ]
    text3 = f"""
The schedules of the lectures' table (item 22) and of practice, side by side on the same
noisy quadratic: each starts at η = {ETA0} (the constant rate runs at
{n(SCHEDULES[0][1](0), 3)}, where its floor is moderate) and runs {TABLE_T} steps over {RUNS}
runs. The columns `Σ η_t` and `Σ η_t²` are the two Robbins–Monro sums over the run: the first
measures how far the iterates could travel, the second how much noise they took in.

The constant rate ends at its floor, {n(const, 3)}. Every decaying schedule ends below it.
Step decay and the exponential behave alike: each lowers the rate, and the floor follows it
down with a delay of about `1/(2ηh)` steps. Cosine annealing ends at rate zero and so lands
wherever the last, smallest steps leave it; it ends at {n(table[5], 3)}. The `a/t` schedule
with a = 1/h ends at {n(table[4], 3)}, close to the `1/(2t)` of the previous section, and
the lowest of the table is "{SCHEDULES[best][0]}". The two shapes of current practice that
begin with a warm-up, a linear warm-up into a cosine and the 1-cycle (up for the first part
of the run, then down), end at {n(table[6], 3)} and {n(table[7], 3)}, within
{n(max(table[6], table[7]) / table[5], 3)} times the plain cosine's: on a problem whose
curvature is the same everywhere the warm-up neither helps nor costs much, as the warm-up
section above explains. In a real network h is not one number:
no `a` suits every curvature at once, which is why practitioners use schedules (cosine,
step) whose shape is robust to it, and tune the start."""
    parts.append(
        Part(
            "table",
            "The usual schedules, side by side",
            [
                text3,
                Table(
                    [
                        "schedule",
                        "η_0",
                        f"η at t = {TABLE_T - 1}",
                        "Σ η_t",
                        "Σ η_t²",
                        f"mean loss at t = {TABLE_T}",
                    ],
                    rows,
                    f"{RUNS} runs of descentlab's SGD on the noisy quadratic, h = σ = 1",
                ),
                [
                    ck(
                        "the warm-up schedules end within 1.5 times the plain cosine's loss",
                        max(table[6], table[7]) < 1.5 * table[5],
                        f"{table[6]:.3g}, {table[7]:.3g}",
                        f"< 1.5 × {table[5]:.3g}",
                    ),
                    ck(
                        "every decaying schedule ends below the constant rate's floor",
                        all(v < const for v in table[1:]),
                        f"{max(table[1:]):.3g}",
                        f"< {const:.3g}",
                    ),
                ],
            ],
        )
    )

    # 4. the figure to move --------------------------------------------------------------------
    sl = measured
    floor = L.sgd_stationary_loss(0.1)
    figs = []
    t = np.arange(T + 1)
    for a in SLIDER_AS:
        fig = FG.new_figure(8.5, 3.8)
        ax = fig.subplots()
        ax.loglog(t[1:], sl[a][1:], color="#D55E00", label=f"a/t, a = {a:g} (mean of {RUNS})")
        ax.loglog(
            t[1:],
            _exact(a, T)[1:],
            "--",
            color="#555555",
            lw=1,
            label="exact second-moment recursion",
        )
        ax.axhline(floor, color="#0072B2", lw=1, ls=":", label="constant η = 0.1: its floor")
        if a > 0.5:
            ax.loglog(
                t[10:],
                0.5 * a * a / ((2 * a - 1) * t[10:]),
                color="#009E73",
                lw=1,
                label="asymptote a²/(2(2a - 1)t)",
            )
        ax.set_ylim(1e-4, 1)
        ax.set_xlabel("step t")
        ax.set_title(
            f"η_t = a/(t + t0), a = {a:g}: loss after {T} steps {sl[a][T]:.3g}", fontsize=10
        )
        ax.legend(fontsize=8, loc="lower left")
        figs.append(fig)
    finals = [float(sl[a][T]) for a in SLIDER_AS]
    best_a = SLIDER_AS[min(range(len(SLIDER_AS)), key=finals.__getitem__)]
    text4 = f"""
Move a. Below a = 0.5 the curve bends away from the asymptote and stays high: the schedule
forgets the start too slowly. At a = 1 the measured loss lies on the `1/t` line; at larger
a it is parallel to it but higher, because the early rates inject more noise than they
remove. The lowest loss after {T} steps on the slider is at a = {best_a:g}. Every frame
with `ah ≥ 1/2` ends below the floor of the constant rate 0.1, a decay keeps descending
where a constant rate stays; but at a = 0.1 the loss after {T} steps is still
{n(finals[0], 3)}, above that floor ({n(floor, 3)}). That schedule satisfies both
Robbins–Monro conditions and still converges too slowly to matter: the conditions say
whether, the constant says how fast."""
    mv = Movable(
        "a",
        [f"{a:g}" for a in SLIDER_AS],
        figs,
        SLIDER_AS.index(1.0),
        "Move a in `η_t = a/(t + t0)`: the mean loss of 512 runs (log–log), the exact "
        "recursion and the asymptote." + NO_LIVE_VIEW,
    )
    parts.append(
        Part(
            "move",
            "Move a: the 1/t schedule's constant",
            [
                text4,
                mv,
                [
                    ck("the slider's lowest loss is at a = 1/h", best_a == 1.0, f"{best_a:g}", "1"),
                    ck(
                        "every frame with ah ≥ 1/2 ends below the constant rate's floor "
                        "(η = 0.1), a = 0.1 above it",
                        max(v for a, v in zip(SLIDER_AS, finals, strict=True) if a >= 0.5)
                        < floor
                        < finals[0],
                        f"{max(v for a, v in zip(SLIDER_AS, finals, strict=True) if a >= 0.5):.3g}"
                        f"; {finals[0]:.3g}",
                        f"< {floor:.3g} <",
                    ),
                ],
            ],
        )
    )
    page = ChapterPage(
        "Learning-rate schedules in depth",
        "deep-schedules.html",
        "Why a constant rate stalls at a floor proportional to the rate, what the Robbins–Monro "
        "conditions ask of a schedule, and the exact behaviour of `a/t`: derived on the noisy "
        "quadratic, measured over many runs of descentlab's SGD.",
        (15, 16, 17, 18, 19, 20, 21, 22, 106, 115, 125),
        parts,
    )
    keep = """
What to keep. With noisy gradients a constant rate hovers at a floor of about `ησ²/4`; its
loss is a bias that decays like `(1 - ηh)^(2t)` plus that floor, so the best constant rate
depends on the budget and shrinks like `ln T / T`. A schedule must keep `Σ η_t` infinite and
`Σ η_t²` finite; `a/t` reaches the optimal `1/t` only when `ah > 1/2`, best near `a = 1/h`.
Step decay walks down a staircase of floors, each reached after a few times `1/(2ηh)` steps.
Warm-up is for a different problem, a curvature that is large at the start: it keeps the
rate below `2/λ` until λ has fallen. The schedules of practice (step, cosine, warm-up then
cosine, 1-cycle) trade the precision of `a/t` for robustness to curvatures nobody knows,
and on a noisy problem each of them ends far below the floor of a constant rate."""
    return finish(page, n, keep)
