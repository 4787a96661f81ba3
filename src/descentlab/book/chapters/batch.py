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
from descentlab.book.chapters._common import NO_LIVE_VIEW, Numbers, finish
from descentlab.book.checks import ck, close
from descentlab.book.model import Context
from descentlab.book.render.chapter import ChapterPage, Part, Table
from descentlab.book.render.pages import Movable
from descentlab.report import figures as FG

__all__ = ["chapter"]

N = 256
BATCHES = (1, 4, 16, 64, 256)
DRAWS = 8000
RUNS, STEPS = 128, 400
GRID = ((0.05, 1), (0.1, 1), (0.2, 1), (0.1, 4), (0.2, 4), (0.1, 16), (1.6, 64), (3.2, 64))
SLIDER_BS = (1, 2, 4, 8, 16, 64)
SLIDER_LR = 0.1
#: the two wells (a sharp minimum at -2, a flat one at 2, both of loss 0: the item-71 card's)
SHARP, FLAT = 40.0, 1.0
#: gradient descent's rates around the sharp well's edge 2/SHARP
EDGE_LRS = (0.03, 0.049, 0.051, 0.07)
#: noisy descent in the wells: the gradient noise σ of one example, runs, steps, (η, B)
WELL_SIGMA, WELL_RUNS, WELL_STEPS = 10.0, 1000, 1500
WELL_GRID = ((0.01, 1), (0.02, 1), (0.02, 4), (0.04, 1), (0.04, 4), (0.04, 16), (0.04, 64))
#: the slider over B at the largest η of the grid
WELL_LR = 0.04
#: the edge of stability: full-batch rates for a small tanh network, steps, every how many
#: steps the sharpness is measured
EOS_LRS = (0.05, 0.2, 0.3)
EOS_STEPS, EOS_EVERY = 2000, 100
#: where the gradient noise scale is read: fractions of the way from 0 to the minimum
NOISE_AT = (0.0, 0.9, 0.99)


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


def _wells_grad(w: torch.Tensor) -> torch.Tensor:
    """The gradient of ``min(SHARP (w + 2)²/2, FLAT (w - 2)²/2)``."""
    sharp, flat = SHARP / 2 * (w + 2) ** 2, FLAT / 2 * (w - 2) ** 2
    return torch.where(sharp < flat, SHARP * (w + 2), FLAT * (w - 2))


def _barrier() -> tuple[float, float]:
    """Where the two wells meet between the minima, and the loss there."""
    x = -2 + 4 / (math.sqrt(SHARP / FLAT) + 1)
    return x, SHARP / 2 * (x + 2) ** 2


def _wells(lr: float, b: int, start: float, sigma: float = WELL_SIGMA, runs: int = WELL_RUNS,
           steps: int = WELL_STEPS) -> tuple[np.ndarray, float, float]:  # fmt: skip
    """descentlab's SGD in the two wells from ``start``, the gradient plus the noise of a batch
    of ``b`` (``σ/√b`` times a standard normal): the final positions, and the mean loss over
    the last half of the steps of the runs that never left the start's well, and the
    fraction of the runs that left it at some step."""
    gen = torch.Generator().manual_seed(3)
    w = torch.nn.Parameter(torch.full((runs,), start, dtype=torch.float64))
    opt = optim.SGD([w], lr=lr)
    xb, _ = _barrier()
    stayed = torch.ones(runs, dtype=torch.bool)
    total = torch.zeros(runs, dtype=torch.float64)
    for t in range(steps):
        noise = sigma / math.sqrt(b) * torch.randn(runs, dtype=torch.float64, generator=gen)
        w.grad = _wells_grad(w.detach()) + noise
        opt.step()
        x = w.detach()
        stayed &= (x < xb) == (start < xb)
        if t >= steps // 2:
            total += torch.minimum(SHARP / 2 * (x + 2) ** 2, FLAT / 2 * (x - 2) ** 2)
    mean = float(total[stayed].mean()) / (steps - steps // 2) if bool(stayed.any()) else math.nan
    return w.detach().numpy().copy(), mean, 1.0 - float(stayed.double().mean())


def _edge_of_stability(lr: float) -> tuple[list[float], list[float]]:
    """Full-batch descentlab SGD at ``lr`` on a 5-32-32-1 tanh network fitting ``sin`` of a
    random projection of 40 points (squared error, float64): the loss at every step and the
    Hessian's largest eigenvalue every :data:`EOS_EVERY` steps (15 power iterations of
    Hessian-vector products)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, dtype=torch.float64, generator=g)
    y = torch.sin(x @ torch.randn(5, 1, dtype=torch.float64, generator=g))
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(5, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.Tanh(),
        torch.nn.Linear(32, 1),
    ).double()  # fmt: skip
    ps = list(net.parameters())
    opt = optim.SGD(ps, lr=lr)
    losses, sharp = [], []
    for t in range(EOS_STEPS + 1):
        loss = ((net(x) - y) ** 2).mean() / 2
        losses.append(float(loss.detach()))
        if t % EOS_EVERY == 0:
            grads = torch.autograd.grad(loss, ps, create_graph=True)
            v = [torch.randn(p.shape, dtype=torch.float64, generator=g) for p in ps]
            lam = 0.0
            for _ in range(15):
                norm = math.sqrt(sum(float((a * a).sum()) for a in v))
                v = [a / norm for a in v]
                hv = torch.autograd.grad(grads, ps, v, retain_graph=True)
                lam = sum(float((a * b).sum()) for a, b in zip(v, hv, strict=True))
                v = [h.detach() for h in hv]
            sharp.append(lam)
        if t == EOS_STEPS:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses, sharp


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
        SHARP,
        FLAT,
        *EDGE_LRS,
        WELL_SIGMA,
        WELL_RUNS,
        WELL_STEPS,
        *[v for p in WELL_GRID for v in p],
        WELL_LR,
        *EOS_LRS,
        EOS_STEPS,
        EOS_EVERY,
        32,
        40,
        20,
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
full batch. Quadrupling the batch from 4 to 16 divides the measured variance by
{n(drawn[1][1] / drawn[2][1], 3)} (the formula's `4 · (N - 4)/(N - 16)`, with the
finite-population correction), its standard deviation by
{n(math.sqrt(drawn[1][1] / drawn[2][1]), 3)}: the familiar `1/√B`."""
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
        "Move the batch size B: the excess loss of SGD's runs and the recursion's floor."
        + NO_LIVE_VIEW,
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
    # 5. the sharpness a rate can hold ---------------------------------------------------------
    xb, barrier = _barrier()
    edge_runs = ctx.memo(
        ("chapter", "batch", "edge"),
        lambda: [_wells(lr, 1, -2 + 1e-3, sigma=0.0, runs=1, steps=400)[0][0] for lr in EDGE_LRS],
    )
    left = [bool(x > xb) for x in edge_runs]
    eos = ctx.memo(("chapter", "batch", "eos"), lambda: [_edge_of_stability(lr) for lr in EOS_LRS])
    hover = [float(np.mean(sh[len(sh) // 2 :])) for _, sh in eos]
    rises = [int((np.diff(lo) > 0).sum()) for lo, _ in eos]
    text5 = f"""
The claim of item 71, that large batches end in sharp minima that generalize worse, needs a
measure of sharpness and a reason why the batch size would choose it. The measure is the
curvature: near a minimum the loss is `f(w* + e) ≈ f(w*) + eᵀHe/2`, and its sharpest
direction is the Hessian's largest eigenvalue λ. The reason starts with the
recursion of the previous chapters, now without noise. Along that direction one step of
gradient descent multiplies the distance by `1 - ηλ`:

`e ← (1 - ηλ) e`, which shrinks exactly when `|1 - ηλ| < 1`, that is `λ < 2/η`.

A minimum sharper than `2/η` is not a resting place for gradient descent at rate η, however
deep it is: every step overshoots by more than it corrects, and the iterate is thrown out of
the basin. The rate sets the sharpest minimum training can sit in. Cohen and co-authors
found the converse in real networks trained with full batches: the sharpness climbs during
training until it reaches `2/η` and then hovers there, the *edge of stability*, while the
loss keeps falling, non-monotonically.

The build tests the first half on two wells that meet at w = {n(xb, 3)}: a sharp minimum at
`w = -2` with curvature {SHARP:g} and a flat one at `w = 2` with curvature {FLAT:g}, both of
loss 0 (the card of item 71 shows them). The edge of the sharp well is `2/{SHARP:g}` =
{n(2 / SHARP, 3)}. Started at `w = -2 + 0.001`, descentlab's `SGD` with exact
gradients ends at {", ".join(n(x, 3) for x in edge_runs)} for η =
{", ".join(f"{v:g}" for v in EDGE_LRS)}:
below the edge it stays in the sharp well, above it it leaves for the flat one."""
    text5b = f"""
The second half, the edge of stability, needs a network. The build trains a small one (two
tanh layers of 32 units, 40 points, squared error) with full-batch descentlab `SGD` for
{EOS_STEPS} steps at η = {", ".join(f"{v:g}" for v in EOS_LRS)}, and every {EOS_EVERY} steps
measures the Hessian's largest eigenvalue by power iteration on Hessian-vector products (two
backward passes through the gradient, never the Hessian itself). All three start at the same
sharpness, {n(eos[0][1][0], 3)}, and the sharpness rises as the network fits: *progressive
sharpening*. At η = {EOS_LRS[0]:g} the edge `2/η` = {n(2 / EOS_LRS[0], 3)} is far away; the
sharpness climbs to {n(eos[0][1][-1], 3)} and the loss falls at every one of the
{EOS_STEPS} steps. At η = {EOS_LRS[1]:g} the climb stops at the edge: over the second half
of the run the sharpness averages {n(hover[1], 4)} against `2/η` = {n(2 / EOS_LRS[1], 3)},
and at η = {EOS_LRS[2]:g} it averages {n(hover[2], 4)} against {n(2 / EOS_LRS[2], 4)}. There
the loss rises at {n(rises[1])} and {n(rises[2])} of the {EOS_STEPS} steps, yet ends lower
than it was halfway, {n(eos[1][0][-1], 3)} against {n(eos[1][0][EOS_STEPS // 2], 3)} at η =
{EOS_LRS[1]:g}. The quadratic's analysis says such a run should diverge; the network instead
moves along the valley to where the curvature is just bearable. Which minimum training ends
in is decided by the rate, not by the loss alone."""
    fig = FG.new_figure(10.5, 3.8)
    a_, b_ = fig.subplots(1, 2)
    colors = ("#0072B2", "#D55E00", "#009E73")
    steps_axis = np.arange(0, EOS_STEPS + 1, EOS_EVERY)
    for lr, (lo, sh), col in zip(EOS_LRS, eos, colors, strict=True):
        a_.plot(steps_axis, sh, color=col, marker=".", label=f"η = {lr:g}")
        a_.axhline(2 / lr, color=col, ls="--", lw=1)
        b_.semilogy(lo, color=col, lw=1, label=f"η = {lr:g}")
    a_.set_ylim(0, 2.2 / EOS_LRS[1])
    a_.set_xlabel("step")
    a_.set_title("sharpness (largest Hessian eigenvalue); dashed: 2/η", fontsize=10)
    a_.legend(fontsize=8)
    b_.set_xlabel("step")
    b_.set_title("training loss (full batch)", fontsize=10)
    b_.legend(fontsize=8)
    parts.append(
        Part(
            "sharpness",
            "The sharpest minimum a rate can hold: λ < 2/η",
            [
                text5,
                Table(
                    ["η", "ηλ in the sharp well", "final w (from the sharp minimum)", "ends in"],
                    [
                        [lr, lr * SHARP, x, "flat well" if lv else "sharp well"]
                        for lr, x, lv in zip(EDGE_LRS, edge_runs, left, strict=True)
                    ],
                    "descentlab's SGD, exact gradients, 400 steps from w = -2 + 0.001",
                ),
                [
                    ck(
                        f"η = {lr:g}: gradient descent {'leaves' if lr * SHARP > 2 else 'stays in'}"
                        " the sharp well, as ηλ " + ("> 2" if lr * SHARP > 2 else "< 2") + " says",
                        lv == (lr * SHARP > 2),
                        f"ends at {x:.3g}",
                        "flat well" if lr * SHARP > 2 else "sharp well",
                    )
                    for lr, x, lv in zip(EDGE_LRS, edge_runs, left, strict=True)
                ],
                text5b,
                fig,
                Table(
                    [
                        "η",
                        "2/η",
                        "sharpness at step 0",
                        "largest sharpness",
                        "mean over the second half",
                        "steps where the loss rose",
                        "final loss",
                    ],
                    [
                        [lr, 2 / lr, sh[0], max(sh), hv, r, lo[-1]]
                        for lr, (lo, sh), hv, r in zip(EOS_LRS, eos, hover, rises, strict=True)
                    ],
                    f"full-batch descentlab SGD on a 5-32-32-1 tanh network, {EOS_STEPS} steps",
                ),
                [
                    ck(
                        f"η = {EOS_LRS[0]:g}: the sharpness rises but stays below 2/η, and the "
                        "loss never rises",
                        eos[0][1][-1] > 3 * eos[0][1][0]
                        and max(eos[0][1]) < 2 / EOS_LRS[0]
                        and rises[0] == 0,
                        f"{eos[0][1][0]:.3g} → {eos[0][1][-1]:.3g}; {rises[0]} rises",
                        f"×3 or more, < {2 / EOS_LRS[0]:g}; 0 rises",
                    ),
                    *[
                        close(
                            f"η = {lr:g}: over the second half the sharpness hovers at 2/η "
                            "(the edge of stability)",
                            hv,
                            2 / lr,
                            0.03,
                            rel=True,
                        )
                        for lr, hv in zip(EOS_LRS[1:], hover[1:], strict=True)
                    ],
                    *[
                        ck(
                            f"η = {lr:g}: the loss rises at some steps yet ends below its "
                            "value halfway",
                            r > 0 and lo[-1] < lo[EOS_STEPS // 2],
                            f"{r} rises; {lo[-1]:.3g}",
                            f"> 0; < {lo[EOS_STEPS // 2]:.3g}",
                        )
                        for lr, (lo, _), r in zip(EOS_LRS[1:], eos[1:], rises[1:], strict=True)
                    ],
                ],
            ],
        )
    )

    # 6. the noise as a temperature: which well ------------------------------------------------
    def wells() -> dict[tuple[float, int], tuple]:
        return {(lr, b): (_wells(lr, b, -2.0), _wells(lr, b, 2.0)) for lr, b in WELL_GRID}

    wl = ctx.memo(("chapter", "batch", "wells"), wells)

    def temp(lr: float, b: int, lam: float) -> float:
        return lr * WELL_SIGMA**2 / (2 * b * (2 - lr * lam))

    rows, esc, stay = [], {}, {}
    for lr, b in WELL_GRID:
        (xs, ms, left_s), (xf, _, left_f) = wl[(lr, b)]
        esc[(lr, b)] = left_s
        stay[(lr, b)] = 1.0 - left_f
        ms = "none stayed" if math.isnan(ms) else ms
        rows.append([lr, b, lr / b, temp(lr, b, SHARP), temp(lr, b, FLAT), ms, esc[(lr, b)],
                     stay[(lr, b)]])  # fmt: skip
    by_temp = sorted(WELL_GRID, key=lambda k_: temp(*k_, SHARP))
    quiet = [(lr, b) for lr, b in WELL_GRID if temp(lr, b, SHARP) < barrier / 20]
    sweep = [esc[(WELL_LR, b)] for b in (1, 4, 16, 64)]
    text6 = f"""
Noise adds the second half. Give each step the gradient of a batch: the exact gradient plus
noise of variance `σ²/B`. Inside one well of curvature λ this is the noisy quadratic of the
schedules chapter, and its recursion `E[e²] ← (1 - ηλ)² E[e²] + η²σ²/B` settles at
`E[e²] = ησ²/(Bλ(2 - ηλ))`. The mean excess loss in the well is λ/2 times that:

`T = ησ²/(2B(2 - ηλ))`.

Call it the well's *temperature*, the mean height the noise keeps the iterate above the
bottom. Two things set it. The first is `η/B`, the noise scale of the previous sections: the
temperature is proportional to it (at a fixed `ηλ`). The second is the factor `1/(2 - ηλ)`,
which is about `1/2` in a flat well and grows without bound as the well's curvature
approaches the edge `2/η`. A sharp well near the edge is a hot well. To leave a well the
iterate must climb its barrier, here {n(barrier, 3)} above both minima. The spread in the
well is Gaussian with `E[e²] = 2T/λ`, so the chance of being a height f above the bottom
falls like `exp(-f/(2T))`: a well whose temperature is a good fraction of its barrier is left
quickly, and one whose temperature is a small fraction keeps its iterate for a very long
time.

The table runs {WELL_RUNS} runs of descentlab's `SGD` for {WELL_STEPS} steps from each
minimum, with σ = {WELL_SIGMA:g} for one example, at several (η, B). Read the columns of the
sharp well. Where its temperature is below `barrier/20` = {n(barrier / 20, 3)} the runs stay,
and their mean loss over the last {n(WELL_STEPS // 2)} steps is the formula's T. At η = {WELL_LR:g},
where the sharp well sits at `ηλ` = {n(WELL_LR * SHARP, 3)}, close to its edge, the fraction
of runs that crossed its barrier at some step is {", ".join(n(v, 3) for v in sweep)} at B = 1, 4, 16
and 64: small batches leave the sharp minimum, large ones stay in it. Sorted by the sharp
well's temperature, the fractions that escaped rise, whatever η and B made that temperature.
The rows η = 0.01, B = 1 and η = {WELL_LR:g}, B = 4 have the same `η/B`, yet
{n(esc[(0.01, 1)], 3)} of the first left the sharp well and {n(esc[(0.04, 4)], 3)} of the
second: at the larger η the sharp well is closer to its edge and {
        n(temp(0.04, 4, SHARP) / temp(0.01, 1, SHARP), 3)
    } times hotter. The flat well is cooler in every row, by the factor
`(2 - ηλ_sharp)/(2 - ηλ_flat)`, and keeps all its runs wherever its temperature is below
`barrier/20`; only in the hottest row (η = {WELL_LR:g}, B = 1, flat temperature
{n(temp(0.04, 1, FLAT), 3)}) does it lose most of them, {n(1 - stay[(0.04, 1)], 3)}: there the
noise shakes the iterate out of both wells, the regime where the rate is simply too large.

So the batch size selects minima in this model in a precise sense: it sets the temperature,
and at a given temperature of the flat well the sharp well is hotter by the factor
`(2 - η λ_flat)/(2 - η λ_sharp)`. Keskar and co-authors' experiment (item 71's card runs it
at a small size) measured the other end of the chain on networks: the minima reached with
large batches had a larger loss rise under small perturbations of the weights, and a
larger gap between training and test accuracy."""
    xs_grid = np.linspace(-3.2, 4.5, 800)
    loss_curve = np.minimum(SHARP / 2 * (xs_grid + 2) ** 2, FLAT / 2 * (xs_grid - 2) ** 2)
    wfigs = []
    for b in (1, 4, 16, 64):
        (xs, _, _), (xf, _, _) = wl[(WELL_LR, b)]
        fig = FG.new_figure(8.5, 3.6)
        ax = fig.subplots()
        ax.plot(xs_grid, loss_curve, color="#33475b", lw=2)
        ax.set_ylim(-0.3, 12)
        ax.set_xlabel("weight w")
        ax.set_ylabel("loss")
        hx = ax.twinx()
        bins = np.linspace(-3.2, 4.5, 78)
        hx.hist(xs, bins=bins, color="#D55E00", alpha=0.5, label="runs started in the sharp well")
        hx.hist(
            xf, bins=bins, color="#0072B2", histtype="step", lw=1.8,
            label="runs started in the flat well",
        )  # fmt: skip
        hx.set_ylabel(f"runs (of {WELL_RUNS}) at the end")
        hx.legend(fontsize=8, loc="upper right")
        ax.set_title(
            f"η = {WELL_LR:g}, B = {b}: {100 * esc[(WELL_LR, b)]:.3g} % left the sharp well "
            f"(its T = {temp(WELL_LR, b, SHARP):.3g})",
            fontsize=10,
        )
        wfigs.append(fig)
    fractions = [esc[k_] for k_ in by_temp]
    parts.append(
        Part(
            "temperature",
            "Noise as a temperature: small batches leave sharp minima",
            [
                text6,
                Table(
                    [
                        "η",
                        "B",
                        "η/B",
                        "T sharp",
                        "T flat",
                        "mean loss, runs that stayed sharp",
                        "left the sharp well",
                        "stayed in the flat well",
                    ],
                    rows,
                    f"{WELL_RUNS} runs of descentlab's SGD per start, {WELL_STEPS} steps, "
                    f"σ = {WELL_SIGMA:g}, barrier {barrier:.3g}",
                ),
                Movable(
                    "B",
                    ["1", "4", "16", "64"],
                    wfigs,
                    1,
                    f"Move the batch size at η = {WELL_LR:g}: where the runs end, over the two "
                    "wells (the loss, left axis). Small batches heat the sharp well past its "
                    "barrier; large ones leave both wells cool." + NO_LIVE_VIEW,
                ),
                [
                    *[
                        close(
                            f"η = {lr:g}, B = {b}: the runs that stay in the sharp well sit at "
                            "the temperature ησ²/(2B(2 - ηλ))",
                            wl[(lr, b)][0][1],
                            temp(lr, b, SHARP),
                            0.1,
                            rel=True,
                        )
                        for lr, b in quiet
                    ],
                    ck(
                        "where the sharp well's temperature is below barrier/20, fewer than "
                        "1 % of its runs leave it",
                        all(esc[k_] < 0.01 for k_ in quiet),
                        ", ".join(f"{esc[k_]:.3g}" for k_ in quiet),
                        "< 0.01 each",
                    ),
                    ck(
                        f"η = {WELL_LR:g}: the fraction leaving the sharp well falls as B grows, "
                        "from most runs to almost none",
                        all(a >= c for a, c in itertools.pairwise(sweep))
                        and sweep[0] > 0.9 > 0.05 > sweep[-1],
                        ", ".join(f"{v:.3g}" for v in sweep),
                        "non-increasing, > 0.9 at B = 1, < 0.05 at B = 64",
                    ),
                    ck(
                        "sorted by the sharp well's temperature, the fraction that escaped "
                        "never falls",
                        all(a <= c + 0.02 for a, c in itertools.pairwise(fractions)),
                        ", ".join(f"{v:.3g}" for v in fractions),
                        "non-decreasing (within 0.02)",
                    ),
                    ck(
                        "the flat well keeps every run where its temperature is below "
                        "barrier/20, and in every row at least as many as the sharp well",
                        all(stay[k_] == 1.0 for k_ in WELL_GRID if temp(*k_, FLAT) < barrier / 20)
                        and all(stay[k_] >= 1 - esc[k_] for k_ in WELL_GRID),
                        ", ".join(f"{stay[k_]:.3g}" for k_ in WELL_GRID),
                        "1 where cool; ≥ the sharp well's",
                    ),
                    ck(
                        "equal η/B, different fates: η = 0.01, B = 1 stays sharp, "
                        f"η = {WELL_LR:g}, B = 4 (nearer the edge) leaves",
                        esc[(0.01, 1)] < 0.05 and esc[(0.04, 4)] > 0.95,
                        f"{esc[(0.01, 1)]:.3g} and {esc[(0.04, 4)]:.3g}",
                        "< 0.05 and > 0.95",
                    ),
                ],
            ],
        )
    )

    # 7. the gradient noise scale: how large a batch is worth -------------------------------------
    per_w = [x * (x * (a * k["w"]) - y) for a in NOISE_AT]
    gbar = [float(p.mean()) for p in per_w]
    s2 = [float(p.var(unbiased=False)) for p in per_w]
    bnoise = [v / g**2 for v, g in zip(s2, gbar, strict=True)]

    def gain(i: int, b: float) -> float:
        """The best one-step decrease of the loss with batch b (with replacement) at point i,
        from the exact expectation ``E[L(w - ηg_B)]`` maximised over η."""
        return gbar[i] ** 4 / (2 * k["h"] * (gbar[i] ** 2 + s2[i] / b))

    def mc_gain(i: int, b: int) -> float:
        gen = torch.Generator().manual_seed(4)
        idx = torch.randint(N, (DRAWS, b), generator=gen)
        gb = per_w[i][idx].mean(1)
        lr = gbar[i] ** 2 / (k["h"] * float((gb * gb).mean()))  # maximises η ḡ² - η²h E[g²]/2
        # the loss is quadratic: L(w - η g) - L(w) = -η g ḡ_true + η² h g²/2, in expectation
        return float((lr * gb * gbar[i] - lr**2 * k["h"] * gb * gb / 2).mean())

    b_star = [max(1, round(v)) for v in bnoise]
    mc = [mc_gain(i, b_) for i, b_ in enumerate(b_star)]
    text7 = f"""
How large should a batch be? McCandlish and co-authors answer with a short calculation that
the least-squares problem makes exact. With a batch of B, the step `w - ηg_B` changes the
loss in expectation by `-ηḡ² + η²h(ḡ² + S²/B)/2` (the variance of the previous sections
enters through `E[g_B²] = ḡ² + S²/B`). The best η maximises the decrease, and the decrease it
gets is

`ΔL(B) = ḡ⁴/(2h(ḡ² + S²/B)) = ΔL_max/(1 + B_noise/B)`, with `B_noise = S²/ḡ²`.

`B_noise`, the *gradient noise scale*, is the batch at which one step gains half of what the
exact gradient would. Below it, doubling B nearly doubles the progress per step: the batch
is noise-limited, and a larger batch with a proportionally larger rate is free speed (the
linear scaling rule again). Above it, progress per step saturates at `ΔL_max` and a larger
batch only costs more examples.

`B_noise` is not a constant of the problem: it grows as training approaches the minimum,
where the mean gradient vanishes but its spread does not. On this problem it is
{n(bnoise[0], 3)} at w = 0, {n(bnoise[1], 3)} at `w = {NOISE_AT[1]:g} w*` and
{n(bnoise[2], 3)} at `w = {NOISE_AT[2]:g} w*`. The build draws {DRAWS} batches at
each point with B the nearest integer to `B_noise` (at least 1) and measures the gain of the
best step: {", ".join(n(v, 3) for v in mc)} against the formula's
{", ".join(n(gain(i, b_), 3) for i, b_ in enumerate(b_star))}. Early in training a batch of
{b_star[0]} examples gains half of what the exact gradient gains; late, the same half needs
{b_star[2]} examples drawn, more than the {N} the training set holds, so only a large batch
or a smaller rate makes progress: the reason for schedules that grow the batch instead of
shrinking the rate."""
    parts.append(
        Part(
            "noise-scale",
            "The gradient noise scale: how large a batch is worth",
            [
                text7,
                Table(
                    [
                        "point (fraction of w*)",
                        "ḡ",
                        "S²",
                        "B_noise = S²/ḡ²",
                        "B used",
                        "best step's gain, drawn",
                        "formula ΔL_max/(1 + B_noise/B)",
                    ],
                    [
                        [a, gbar[i], s2[i], bnoise[i], b_star[i], mc[i], gain(i, b_star[i])]
                        for i, a in enumerate(NOISE_AT)
                    ],
                    f"least squares (N = {N}), {DRAWS} batches drawn with replacement per point",
                ),
                [
                    *[
                        close(
                            f"at {a:g} of w*: the best step's gain with B = {b_} is "
                            "ΔL_max/(1 + B_noise/B)",
                            m,
                            gain(i, b_),
                            0.1,
                            rel=True,
                        )
                        for i, (a, b_, m) in enumerate(zip(NOISE_AT, b_star, mc, strict=True))
                    ],
                    ck(
                        "the noise scale grows as the iterate nears the minimum",
                        bnoise[0] < bnoise[1] < bnoise[2],
                        ", ".join(f"{v:.3g}" for v in bnoise),
                        "increasing",
                    ),
                ],
            ],
        )
    )

    page = ChapterPage(
        "Mini-batch noise, the batch size and sharp minima, in depth",
        "deep-batch.html",
        "Why a batch gradient is an unbiased estimate, how its noise scales with B, the noise "
        "floor that η and B set together, the linear scaling rule and the curvature's edge "
        "where it breaks; the sharpest minimum a rate can hold (2/η, and the edge of "
        "stability), why small batches leave sharp minima, and the gradient noise scale: "
        "derived, and measured with descentlab's SGD.",
        (13, 14, 18, 70, 71),
        parts,
    )
    keep = """
What to keep. A batch gradient is unbiased with variance `S²/B` (times `(N - B)/(N - 1)`
without replacement); near a minimum SGD's floor is set by `η/B`, which is the linear
scaling rule; and the rule stops at the curvature's edge `η < 2h/(h² + c/B)`, beyond which
a larger batch no longer allows a larger rate. Gradient descent cannot rest in a minimum
sharper than `2/η`, and full-batch training of a network climbs to that edge and stays; the
noise heats a well of curvature λ to `ησ²/(2B(2 - ηλ))`, so small batches leave sharp minima
that large batches keep; and a batch beyond the noise scale `S²/ḡ²` buys little."""
    return finish(page, n, keep)
