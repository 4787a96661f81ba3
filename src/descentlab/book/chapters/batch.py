"""Mini-batch noise and the batch size, in depth: the batch gradient's mean and variance
(with the finite-population correction), SGD's noise floor as a function of η and B (an
exact second-moment recursion with the multiplicative noise of least squares), the linear
scaling rule and where it breaks; runs of descentlab's SGD on a least-squares problem."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from descentlab import optim
from descentlab.book.chapters._common import Numbers, finish
from descentlab.book.checks import ck, close
from descentlab.book.model import Context
from descentlab.report import figures as FG
from descentlab.report.book_chapter import ChapterPage, Part, Table
from descentlab.report.lecture_book import Movable

__all__ = ["chapter"]

N = 256
BATCHES = (1, 4, 16, 64, 256)
DRAWS = 8000
RUNS, STEPS = 128, 400
GRID = ((0.05, 1), (0.1, 1), (0.2, 1), (0.1, 4), (0.2, 4), (0.1, 16), (1.6, 64), (3.2, 64))
SLIDER_BS = (1, 2, 4, 8, 16, 64)
SLIDER_LR = 0.1


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, dtype=torch.float64, generator=g)
    return x, 2 * x + 0.5 * torch.randn(N, dtype=torch.float64, generator=g)


def _constants(x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """The curvature h, the minimizer, the gradient noise at the minimum s² and the
    spread of the curvature c (the multiplicative noise) of the per-example losses."""
    h = float((x * x).mean())
    w_star = float((x * y).sum() / (x * x).sum())
    r = y - x * w_star
    return {
        "h": h,
        "w": w_star,
        "s2": float(((x * r) ** 2).mean()),
        "c": float((x**4).mean() - h * h),
    }


def predicted_floor(lr: float, b: int, k: dict[str, float]) -> float:
    """The stationary excess loss of SGD with batch ``b`` drawn with replacement:
    ``h v/2`` with ``v = η²s²/B / (2ηh - η²h² - η²c/B)`` (infinite when the denominator is
    not positive: the recursion diverges)."""
    den = 2 * lr * k["h"] - lr**2 * k["h"] ** 2 - lr**2 * k["c"] / b
    return math.inf if den <= 0 else 0.5 * k["h"] * lr**2 * k["s2"] / b / den


def _sgd(lr: float, b: int, x: torch.Tensor, y: torch.Tensor, w_star: float, h: float):
    """:data:`RUNS` runs of descentlab's SGD, batches of ``b`` drawn with replacement: the
    mean excess loss at every step (inf after a divergence)."""
    gen = torch.Generator().manual_seed(1)
    w = torch.nn.Parameter(torch.zeros(RUNS, dtype=torch.float64))
    opt = optim.SGD([w], lr=lr)
    out = [0.5 * h * w_star**2]
    for _ in range(STEPS):
        idx = torch.randint(N, (RUNS, b), generator=gen)
        xb, yb = x[idx], y[idx]
        w.grad = (xb * (xb * w.detach()[:, None] - yb)).mean(1)
        opt.step()
        loss = float((0.5 * h * (w.detach() - w_star) ** 2).mean())
        if not math.isfinite(loss) or loss > 1e12:
            out += [math.inf] * (STEPS + 1 - len(out))
            break
        out.append(loss)
    return np.array(out)


def chapter(ctx: Context) -> ChapterPage:
    """The chapter's page, every number computed now."""
    n = Numbers(
        N,
        *BATCHES,
        DRAWS,
        RUNS,
        STEPS,
        *[v for p in GRID for v in p],
        *SLIDER_BS,
        SLIDER_LR,
        2,
        0.5,
        0,
    )
    x, y = _data()
    k = _constants(x, y)
    parts: list[Part] = []

    # 1. the batch gradient's mean and variance ---------------------------------------------
    def draws() -> list[tuple[float, float, float]]:
        g = torch.Generator().manual_seed(2)
        per = x * (x * 0.0 - y)  # each example's gradient at w = 0
        out = []
        for b in BATCHES:
            idx = torch.rand(DRAWS, N, generator=g, dtype=torch.float64).argsort(1)[:, :b]
            gb = per[idx].mean(1)
            dev2 = (gb - gb.mean()) ** 2  # the variance's standard error, from the draws
            out.append((float(gb.mean()), float(dev2.mean()), float(dev2.std()) / DRAWS**0.5))
        return out

    drawn = ctx.memo(("chapter", "batch", "draws"), draws)
    per = x * (x * 0.0 - y)
    full, var1 = float(per.mean()), float(per.var(unbiased=False))
    rows = [
        [b, m, full, v, var1 / b * (N - b) / (N - 1)]
        for b, (m, v, _) in zip(BATCHES, drawn, strict=True)
    ]
    errors = [se for _, _, se in drawn]
    text1 = f"""
Mini-batch SGD replaces the gradient of the average loss by the average over a random batch
(items 13, 14, 70). Why that is fair, and what it costs, are two short calculations. Let the
training set have N examples with gradients `g_i` at the current weights, full gradient
`ḡ = Σ g_i/N` and spread `S² = Σ (g_i - ḡ)²/N`. A batch of B examples drawn uniformly has
mean `ḡ`: each example is equally likely to be in it, so the expectation of the batch mean
is the full mean. The batch gradient is *unbiased*.

Its variance is where the batch size enters. Drawn with replacement, the B gradients are
independent and the variance of their mean is `S²/B`. Drawn without replacement, as a
shuffled epoch does, they are slightly negatively correlated (an example in the batch cannot
be drawn again), and the variance is `S²/B · (N - B)/(N - 1)`: the finite-population
correction, which makes the full batch exact.

The build checks both on a least-squares problem of N = {N} examples (`y = 2x + 0.5ε`, the
loss `(xw - y)²/2`), at w = 0, by drawing {DRAWS} batches without replacement for each B. The
mean of the batch gradients is {n(drawn[0][0], 4)} at B = 1 against a full gradient of
{n(full, 4)}; the variance is {n(drawn[0][1], 3)} at B = 1 (formula {n(rows[0][4], 3)}),
{n(drawn[3][1], 3)} at B = 64 (formula {n(rows[3][4], 3)}), and {n(drawn[4][1], 2)} at the
full batch. Quadrupling the batch divides the noise's variance by about four, its standard
deviation by two: the familiar `1/√B`."""
    tol_mean = 6 * math.sqrt(var1 / DRAWS)
    parts.append(
        Part(
            "variance",
            "The batch gradient: unbiased, with variance S²/B",
            [
                text1,
                Table(
                    [
                        "B",
                        "mean of the batch gradients",
                        "full gradient",
                        "variance measured",
                        "S²/B · (N - B)/(N - 1)",
                    ],
                    rows,
                    f"{DRAWS} batches drawn without replacement from {N} examples, at w = 0",
                ),
                [
                    *[
                        close(
                            f"B = {b}: the batch gradients' variance is S²/B · (N - B)/(N - 1) "
                            "(within 4 standard errors of the draws' estimate)",
                            v,
                            p,
                            4 * se,
                        )
                        for (b, _, _, v, p), se in zip(rows[:-1], errors, strict=False)
                    ],
                    ck(
                        "the full batch's variance is 0",
                        rows[-1][3] < 1e-20,
                        f"{rows[-1][3]:.2g}",
                        "0",
                    ),
                    close(
                        "B = 1: the batch gradients' mean is the full gradient (6 standard errors)",
                        drawn[0][0],
                        full,
                        tol_mean,
                    ),
                ],
            ],
        )
    )

    # 2. the noise floor as a function of η and B --------------------------------------------
    def floors() -> dict[tuple[float, int], np.ndarray]:
        settings = set(GRID) | {(SLIDER_LR, b) for b in SLIDER_BS}
        return {(lr, b): _sgd(lr, b, x, y, k["w"], k["h"]) for lr, b in sorted(settings)}

    curves = ctx.memo(("chapter", "batch", "sgd"), floors)
    measured = {key: float(c[STEPS // 2 :].mean()) for key, c in curves.items()}
    rows = []
    checks = []
    for lr, b in GRID:
        pred = predicted_floor(lr, b, k)
        meas = measured[(lr, b)]
        rows.append(
            [
                lr,
                b,
                lr / b,
                "diverges" if math.isinf(pred) else pred,
                "diverged" if math.isinf(meas) else meas,
            ]
        )
        if math.isinf(pred):
            checks.append(
                ck(
                    f"η = {lr:g}, B = {b}: the recursion diverges, and so does SGD",
                    math.isinf(meas),
                    f"{meas:.3g}",
                    "inf",
                )
            )
        else:
            checks.append(
                close(
                    f"η = {lr:g}, B = {b}: the floor is the recursion's", meas, pred, 0.15, rel=True
                )
            )
    ratio = measured[(0.1, 1)] / measured[(0.1, 4)]
    text2 = f"""
Near the minimum `w*` the batch gradient is `h(w - w*)` plus noise, and the previous
chapter's recursion applies with the noise's variance divided by B. Least squares adds one
honest complication: each example's gradient `x_i²(w - w*) + x_i r_i` has a part that grows
with the distance to the minimum, so the noise is partly multiplicative. Writing `e = w -
w*`, `s²` for the spread of `x_i r_i` at the minimum and `c` for the spread of `x_i²`, one
SGD step gives

`E[e²] ← ((1 - ηh)² + η²c/B) E[e²] + η²s²/B`,

whose fixed point is `E[e²] = η²s²/B / (2ηh - η²h² - η²c/B)`. For small η this is
`ηs²/(2hB)`: the floor of the excess loss `hE[e²]/2` grows with η and falls with B, and
only through their ratio `η/B`. Here h = {n(k["h"], 4)}, `s²` = {n(k["s2"], 3)} and c =
{n(k["c"], 3)}.

The table runs {RUNS} runs of descentlab's `SGD` for {STEPS} steps at each (η, B), batches
drawn with replacement, and averages the excess loss over the last {n(STEPS // 2)} steps.
Every measured floor lands on the recursion's. Quadrupling B at η = 0.1 divides the floor
by {n(ratio, 3)}. The rows with equal `η/B` (0.05 with B = 1 and 0.2 with B = 4) have nearly
equal floors, {n(measured[(0.05, 1)], 3)} and {n(measured[(0.2, 4)], 3)}: this is the *linear
scaling rule*, multiply the batch by m and the rate by m to keep the same noise, in its
exact small-rate form."""
    parts.append(
        Part(
            "floor",
            "The noise floor depends on η/B",
            [
                text2,
                Table(
                    ["η", "B", "η/B", "predicted floor", f"measured (mean of {RUNS} runs)"],
                    rows,
                    f"descentlab's SGD on least squares (N = {N}), batches with replacement",
                ),
                [
                    *checks,
                    close(
                        "equal η/B, equal floors (η = 0.05, B = 1 against η = 0.2, B = 4)",
                        measured[(0.2, 4)],
                        measured[(0.05, 1)],
                        0.2,
                        rel=True,
                    ),
                ],
            ],
        )
    )

    # 3. where linear scaling breaks ----------------------------------------------------------
    edge = 2 * k["h"] / (k["h"] ** 2 + k["c"] / 64)
    text3 = f"""
The linear scaling rule has an edge, and the recursion shows where. Its denominator must
stay positive: `η < 2h/(h² + c/B)`, close to gradient descent's `2/h` once B is large. The
noise shrinks with B, the curvature does not. At B = 64 the edge is η = {n(edge, 3)}. Scaling
η = 0.05 at B = 1 linearly to B = 64 asks for η = 3.2, past the edge: the recursion
diverges, and so does every run of descentlab's `SGD` in the table above. Half of that,
η = 1.6, is stable, with floor {n(measured[(1.6, 64)], 3)} against the predicted
{n(predicted_floor(1.6, 64, k), 3)}. Large-batch training runs into exactly this wall: past
a critical batch size the noise is no longer what limits the rate, the curvature is, and a
larger batch buys no more speed per step, only cost per step. Warm-up schedules exist
largely to approach this edge without crossing it while the curvature is still high.

The noise has a second role that a quadratic cannot show. The book's sharpness card (item
71) measures the claim that small batches find flatter minima: a noise whose size scales
like `η/B` keeps SGD out of basins narrower than the noise, so the batch size is also an
implicit choice of which minima training can settle in."""
    parts.append(
        Part(
            "edge",
            "Where the linear scaling rule breaks",
            [
                text3,
                [
                    ck(
                        "η = 3.2 at B = 64 is past the edge 2h/(h² + c/B), η = 1.6 before it",
                        1.6 < edge < 3.2,
                        f"{edge:.4g}",
                        "between 1.6 and 3.2",
                    )
                ],
            ],
        )
    )

    # 4. the figure to move --------------------------------------------------------------------
    figs = []
    t = np.arange(STEPS + 1)
    for b in SLIDER_BS:
        fig = FG.new_figure(8.5, 3.6)
        ax = fig.subplots()
        c = curves[(SLIDER_LR, b)]
        ax.semilogy(t, c, color="#D55E00", label=f"B = {b}: mean excess loss of {RUNS} runs")
        ax.axhline(
            predicted_floor(SLIDER_LR, b, k),
            color="#555555",
            ls="--",
            lw=1,
            label="the recursion's floor",
        )
        ax.set_ylim(1e-5, 3)
        ax.set_xlabel("step")
        ax.set_title(
            f"SGD, η = {SLIDER_LR:g}, batch B = {b}: floor {measured[(SLIDER_LR, b)]:.3g}",
            fontsize=10,
        )
        ax.legend(fontsize=8)
        figs.append(fig)
    slider_floors = [measured[(SLIDER_LR, b)] for b in SLIDER_BS]
    text4 = f"""
Move B at η = {SLIDER_LR:g}. Every curve first falls at the same speed: far from the minimum the
gradient's signal dominates and the batch size hardly matters (the descent's rate is set by
`1 - ηh`). Then each curve flattens at its floor, and the floor falls with B, from
{n(slider_floors[0], 3)} at B = 1 to {n(slider_floors[-1], 3)} at B = 64. A large batch pays
for its lower floor with B times the gradient evaluations per step: at a fixed budget of
examples, small batches take more steps and are often ahead until their floor is reached,
which is when a decaying rate or a growing batch takes over."""
    mv = Movable(
        "B",
        [str(b) for b in SLIDER_BS],
        figs,
        SLIDER_BS.index(4),
        "Move the batch size B: the excess loss of SGD's runs and the recursion's floor.",
    )
    parts.append(
        Part(
            "move",
            "Move B: the same descent, different floors",
            [
                text4,
                mv,
                [
                    ck(
                        "the floor falls as B grows (η fixed)",
                        all(a > b_ for a, b_ in itertools.pairwise(slider_floors)),
                        ", ".join(f"{v:.3g}" for v in slider_floors),
                        "decreasing",
                    )
                ],
            ],
        )
    )
    page = ChapterPage(
        "Mini-batch noise and the batch size, in depth",
        "deep-batch.html",
        "Why a batch gradient is an unbiased estimate, how its noise scales with B, the noise "
        "floor that η and B set together, the linear scaling rule and the curvature's edge "
        "where it breaks: derived for least squares, measured with descentlab's SGD.",
        (13, 14, 18, 70, 71),
        parts,
    )
    keep = """
What to keep. A batch gradient is unbiased with variance `S²/B` (times `(N - B)/(N - 1)`
without replacement); near a minimum SGD's floor is set by `η/B`, which is the linear
scaling rule; and the rule stops at the curvature's edge `η < 2h/(h² + c/B)`, beyond which
a larger batch no longer allows a larger rate."""
    return finish(page, n, keep)
