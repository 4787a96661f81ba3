"""Learning-rate schedules in depth: the noise floor of a constant rate, the Robbins–Monro
conditions, the ``a/t`` schedule's exact variance recursion and its threshold ``ah = 1/2``,
the usual schedules side by side; traces of many runs of descentlab's SGD on the noisy
quadratic."""

from __future__ import annotations

import math

import numpy as np
import torch

from descentlab.book.chapters._common import Numbers, finish
from descentlab.book.checks import ck, close
from descentlab.book.model import Context
from descentlab.problems import landscapes as L
from descentlab.problems.trajectories import run
from descentlab.report import figures as FG
from descentlab.report.book_chapter import ChapterPage, Part, Table
from descentlab.report.lecture_book import Movable

__all__ = ["chapter"]

RUNS = 512
FLOOR_LRS = (0.05, 0.1, 0.2, 0.5)
FLOOR_STEPS, FLOOR_LAST = 400, 200
T = 1000
AS = (0.25, 1.0, 2.0)
SLIDER_AS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
ETA0, TABLE_T = 0.5, 1000


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


SCHEDULES = (
    ("constant", lambda t: ETA0 * 0.2),
    ("step: halve every 200", lambda t: ETA0 * 0.5 ** (t // 200)),
    ("exponential, k = 0.005", lambda t: ETA0 * math.exp(-0.005 * t)),
    ("1/√t", lambda t: ETA0 / math.sqrt(t + 1)),
    ("a/t, a = 1", lambda t: 1.0 / (t + 2)),
    ("cosine to 0", lambda t: ETA0 * 0.5 * (1 + math.cos(math.pi * t / TABLE_T))),
)


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
{n(floors[-1], 3)} (formula {n(rows[-1][1], 3)}): ten times the rate, about thirteen times
the floor, the `2 - ηh` in the denominator adding to the linear growth."""
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

    # 3. the usual schedules side by side -----------------------------------------------------
    table = ctx.memo(
        ("chapter", "schedules", "table"),
        lambda: [float(_mean_loss(fn, TABLE_T)[-1]) for _, fn in SCHEDULES],
    )
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
down with a delay of about `1/(ηh)` steps. Cosine annealing ends at rate zero and so lands
wherever the last, smallest steps leave it; it ends at {n(table[5], 3)}. The `a/t` schedule
with a = 1/h ends at {n(table[4], 3)}, close to the `1/(2t)` of the previous section, and
the lowest of the table is "{SCHEDULES[best][0]}". In a real network h is not one number:
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
                        "every decaying schedule ends below the constant rate's floor",
                        all(v < const for v in table[1:]),
                        f"{max(table[1:]):.3g}",
                        f"< {const:.3g}",
                    )
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
        "recursion and the asymptote.",
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
What to keep. With noisy gradients a constant rate hovers at a floor of about `ησ²/4`; a
schedule must keep `Σ η_t` infinite and `Σ η_t²` finite; `a/t` reaches the optimal `1/t`
only when `ah > 1/2`, best near `a = 1/h`; and the schedules of practice trade that
precision for robustness to curvatures nobody knows."""
    return finish(page, n, keep)
