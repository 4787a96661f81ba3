"""Regularization and weight decay, in depth: the L2 penalty as a multiplicative decay in
SGD, ridge regression's shrinkage along each eigen-direction, the bias–variance trade-off
as λ moves, and why decoupled weight decay (AdamW) differs from an L2 penalty inside Adam;
measured with descentlab's SGD, Adam and AdamW and closed forms."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from descentlab import optim
from descentlab.book.chapters._common import Numbers, finish
from descentlab.book.checks import ck, close
from descentlab.book.model import Context
from descentlab.book.render.chapter import ChapterPage, Part, Table
from descentlab.book.render.pages import Movable
from descentlab.report import figures as FG

__all__ = ["chapter"]

LR, DECAY, STEPS = 0.1, 0.5, 100
DEGREE, N_TRAIN, N_TEST, DRAWS, NOISE = 9, 20, 500, 50, 0.3
LAMBDAS = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
ADAM_LR, ADAM_DECAY, ADAM_STEPS = 0.01, 0.1, 200
#: the training set the movable figure shows (one that overfits at λ = 0, as most draws do)
SHOWN_SEED = 2


def _features(x: np.ndarray) -> np.ndarray:
    """Legendre features of degree :data:`DEGREE` on [-1, 1] (well conditioned)."""
    return np.polynomial.legendre.legvander(x, DEGREE)


def _ridge(a: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    n = len(y)
    return np.linalg.solve(a.T @ a / n + lam * np.eye(a.shape[1]), a.T @ y / n)


def _fits() -> dict[float, tuple[float, float, list[float]]]:
    """Mean train and test squared error of ridge on :data:`DRAWS` draws of noisy
    ``sin(πx)``, for each λ, and each draw's test error."""
    rng = np.random.default_rng(0)
    xt = np.linspace(-1, 1, N_TEST)
    at, yt = _features(xt), np.sin(np.pi * xt)
    train: dict[float, list[float]] = {lam: [] for lam in LAMBDAS}
    test: dict[float, list[float]] = {lam: [] for lam in LAMBDAS}
    for _ in range(DRAWS):
        x = rng.uniform(-1, 1, N_TRAIN)
        y = np.sin(np.pi * x) + NOISE * rng.standard_normal(N_TRAIN)
        a = _features(x)
        for lam in LAMBDAS:
            w = _ridge(a, y, lam)
            train[lam].append(float(np.mean((a @ w - y) ** 2)))
            test[lam].append(float(np.mean((at @ w - yt) ** 2)))
    return {
        lam: (float(np.mean(train[lam])), float(np.mean(test[lam])), test[lam]) for lam in LAMBDAS
    }


def _sgd_pair() -> tuple[float, float]:
    """descentlab's SGD with ``weight_decay`` against SGD on the loss plus ``λ‖w‖²/2``
    (autograd), 100 steps on a random least-squares problem: the largest difference, and
    the distance of the first to the ridge solution after many more steps."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(40, 5, dtype=torch.float64, generator=g)
    y = torch.randn(40, dtype=torch.float64, generator=g)
    w1 = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    w2 = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    o1 = optim.SGD([w1], lr=LR, weight_decay=DECAY)
    o2 = optim.SGD([w2], lr=LR)
    diff = 0.0
    for t in range(2000):
        o1.zero_grad()
        (0.5 * ((a @ w1 - y) ** 2).mean()).backward()
        o1.step()
        if t < STEPS:
            o2.zero_grad()
            (0.5 * ((a @ w2 - y) ** 2).mean() + 0.5 * DECAY * (w2**2).sum()).backward()
            o2.step()
            diff = max(diff, float((w1 - w2).detach().abs().max()))
    ridge = torch.linalg.solve(
        a.T @ a / 40 + DECAY * torch.eye(5, dtype=torch.float64), a.T @ y / 40
    )
    return diff, float((w1.detach() - ridge).abs().max())


def _pure_decay(decoupled: bool) -> list[float]:
    """A weight of 1 under Adam with weight decay and no data gradient: its value at each
    step (``decoupled``: AdamW's decay, else an L2 term added to the gradient)."""
    w = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = (
        optim.AdamW([w], lr=ADAM_LR, weight_decay=ADAM_DECAY)
        if decoupled
        else optim.Adam([w], lr=ADAM_LR, weight_decay=ADAM_DECAY)
    )
    out = [1.0]
    for _ in range(ADAM_STEPS):
        w.grad = torch.zeros_like(w)
        opt.step()
        out.append(float(w.detach()))
    return out


def chapter(ctx: Context) -> ChapterPage:
    """The chapter's page, every number computed now."""
    n = Numbers(
        LR,
        DECAY,
        STEPS,
        DEGREE,
        N_TRAIN,
        N_TEST,
        DRAWS,
        NOISE,
        *LAMBDAS,
        ADAM_LR,
        ADAM_DECAY,
        ADAM_STEPS,
        2000,
        1,
        2,
    )
    parts: list[Part] = []

    # 1. L2 in SGD is a multiplicative decay -------------------------------------------------
    diff, to_ridge = ctx.memo(("chapter", "regularization", "sgd"), _sgd_pair)
    text1 = f"""
Add the penalty `(λ/2)‖w‖²` to a loss (item 85) and its gradient gains `λw`. One SGD step
becomes `w ← w - η(g + λw) = (1 - ηλ)w - ηg`: before following the data's gradient, every
weight is multiplied by `1 - ηλ`. That is why the penalty is called weight decay: without a
data gradient a weight shrinks geometrically, by the factor `1 - ηλ` per step, towards zero.
For plain SGD the two descriptions are the same algorithm, and descentlab's `SGD` implements
`weight_decay` as the added gradient. The build runs it (η = {LR}, λ = {DECAY}) beside SGD on
the loss plus the penalty, differentiated by autograd, on a random least-squares problem: over
{STEPS} steps the two never differ by more than {n(diff, 2)}.

Where does the decayed iteration end? Its fixed point solves `∇L(w) + λw = 0`, for least
squares `(AᵀA/N + λI)w = Aᵀy/N`: ridge regression. After 2000 steps descentlab's iterate is
within {n(to_ridge, 2)} of the closed form. Write the data's covariance `AᵀA/N` in its
eigenbasis with eigenvalues `σ_i`: the unpenalised solution's component along direction i is
multiplied by `σ_i/(σ_i + λ)`. Directions the data pin down firmly (large `σ_i`) keep their
value, directions the data barely see (small `σ_i`, where noise dominates the estimate) are
shrunk towards zero. The penalty is a statement about which directions to trust."""
    parts.append(
        Part(
            "decay",
            "In SGD an L2 penalty is a multiplicative decay",
            [
                text1,
                [
                    close(
                        f"SGD(weight_decay = {DECAY}) equals SGD on L + λ‖w‖²/2 for {STEPS} steps",
                        diff,
                        0.0,
                        1e-12,
                    ),
                    close(
                        "after 2000 steps the decayed iterate is the ridge solution",
                        to_ridge,
                        0.0,
                        1e-8,
                    ),
                ],
            ],
        )
    )

    # 2. the bias-variance trade-off as λ moves -------------------------------------------------
    fits = ctx.memo(("chapter", "regularization", "fits"), _fits)
    rows = [[lam, tr, te, te - tr] for lam, (tr, te, _) in fits.items()]
    best = min(LAMBDAS, key=lambda lam: fits[lam][1])
    train = [fits[lam][0] for lam in LAMBDAS]
    wins = sum(b < a for a, b in zip(fits[0.0][2], fits[best][2], strict=True))
    text2 = f"""
What the shrinkage buys shows in the classic experiment of items 62, 63 and 66. Fit a
polynomial of degree {DEGREE} (in Legendre features, so that the fit is well conditioned) to
{N_TRAIN} noisy samples of `sin(πx)` on [-1, 1], noise σ = {NOISE}, by ridge regression at
several λ, and measure the error on the noise-free function at {N_TEST} test points; average
over {DRAWS} draws of the training set. {n(_features(np.zeros(1)).shape[1])} coefficients
for {N_TRAIN} points: without a penalty the polynomial threads through the noise.

At λ = 0 the training error is {n(fits[0.0][0], 3)}, below the noise's variance, and the
test error huge: overfitting, variance. As λ grows the training error rises
monotonically, {n(train[0], 3)} to {n(train[-1], 3)}, because the fit is ever less free. The
test error first falls, to {n(fits[best][1], 3)} at λ = {best:g}, then rises again as the
shrinkage starts to remove signal along with noise, to {n(fits[1.0][1], 3)} at λ = 1:
underfitting, bias. (At λ = 0 the mean test error, {n(fits[0.0][1], 3)}, is dominated by a
few draws whose unpenalised fit is nearly singular; the best λ fits the truth better than
λ = 0 in {n(wins)} of the {DRAWS} draws.) The gap between test and train errors
shrinks all along; it even turns negative, because the training error is measured against
the noisy labels and so includes their variance, {n(NOISE**2, 2)}, while the test error is
measured against the noise-free function. This is the
bias–variance decomposition of item 66 made visible: λ trades variance for bias, and the
best λ is where their sum is smallest. Choosing it needs data the fit did not see: the
cross-validation of item 64."""
    parts.append(
        Part(
            "tradeoff",
            "The bias–variance trade-off as λ moves",
            [
                text2,
                Table(
                    ["λ", "train error", "test error", "gap"],
                    rows,
                    f"ridge on degree-{DEGREE} Legendre features, {N_TRAIN} noisy samples of "
                    f"sin(πx), mean of {DRAWS} draws",
                ),
                [
                    ck(
                        "the training error rises with λ",
                        all(a <= b for a, b in itertools.pairwise(train)),
                        ", ".join(f"{v:.3g}" for v in train),
                        "increasing",
                    ),
                    ck(
                        "the gap (test - train) falls as λ grows",
                        all(a > b for a, b in itertools.pairwise([r[3] for r in rows])),
                        ", ".join(f"{r[3]:.3g}" for r in rows),
                        "decreasing",
                    ),
                    ck(
                        "in most draws the best λ fits the truth better than λ = 0",
                        wins > DRAWS / 2,
                        f"{wins} of {DRAWS}",
                        f"> {DRAWS // 2}",
                    ),
                    ck(
                        "the test error is U-shaped: its minimum is at neither end",
                        fits[best][1] < fits[0.0][1] and fits[best][1] < fits[1.0][1],
                        f"{fits[best][1]:.3g} at λ = {best:g}",
                        f"< {fits[0.0][1]:.3g} and < {fits[1.0][1]:.3g}",
                    ),
                ],
            ],
        )
    )

    # 3. Adam: L2 is not weight decay ------------------------------------------------------------
    coupled = _pure_decay(False)
    decoupled = _pure_decay(True)
    geometric = (1 - ADAM_LR * ADAM_DECAY) ** ADAM_STEPS
    text3 = f"""
In an adaptive method the two descriptions part ways, and this is the point of AdamW (item
85's decoupled form, Loshchilov and Hutter). Adam with an L2 penalty adds `λw` to the
gradient and then divides by the root of the second moment: a weight whose gradient is
large gets its decay divided by a large number, a weight whose gradient is small gets the
full decay amplified. Decoupled weight decay applies `w ← (1 - ηλ)w` outside the adaptive
division, the same relative decay for every weight, as in SGD.

The cleanest contrast is a weight with no data gradient at all. With the L2 penalty its only
gradient is `λw`, and Adam normalises it: the first steps are about η whatever λ is, so the
weight first falls by a constant amount per step, not a constant fraction (later the steps
shrink, as the second moment remembers the larger gradients of the start). descentlab's
`Adam` (η = {ADAM_LR}, weight decay {ADAM_DECAY}) moves the weight from 1 to
{n(coupled[-1], 3)} in {ADAM_STEPS} steps, a first step of exactly {n(1 - coupled[1], 3)}.
`AdamW` with the same numbers multiplies by `1 - ηλ` each step and ends at
{n(decoupled[-1], 4)}, which is `(1 - ηλ)^T` = {n(geometric, 4)}. In a network, the L2 form
lets a weight with small, noisy gradients be pulled to zero fast while weights with large
gradients are barely regularized; the decoupled form treats them alike, and its λ means the
same thing whatever the gradient scale (the reason its authors give for λ transferring
better between settings)."""
    parts.append(
        Part(
            "adamw",
            "In Adam, an L2 penalty is not weight decay",
            [
                text3,
                Table(
                    ["step t", "Adam + L2", "AdamW", "(1 - ηλ)^t"],
                    [
                        [t, coupled[t], decoupled[t], (1 - ADAM_LR * ADAM_DECAY) ** t]
                        for t in range(0, ADAM_STEPS + 1, ADAM_STEPS // 4)
                    ],
                    f"a weight of 1 with no data gradient, η = {ADAM_LR}, λ = {ADAM_DECAY}",
                ),
                [
                    close(
                        "Adam + L2 without data: the first step is η (the penalty's gradient "
                        "normalised)",
                        1 - coupled[1],
                        ADAM_LR,
                        1e-6,
                        rel=True,
                    ),
                    close(
                        "AdamW without data: the weight is (1 - ηλ)^T",
                        decoupled[-1],
                        geometric,
                        1e-9,
                        rel=True,
                    ),
                    ck(
                        "Adam + L2 shrinks the weight far more than AdamW here",
                        coupled[-1] < decoupled[-1] - 0.5,
                        f"{coupled[-1]:.3g}",
                        f"< {decoupled[-1]:.3g}",
                    ),
                ],
            ],
        )
    )

    # 4. the figure to move ---------------------------------------------------------------------
    rng = np.random.default_rng(SHOWN_SEED)
    x = rng.uniform(-1, 1, N_TRAIN)
    y = np.sin(np.pi * x) + NOISE * rng.standard_normal(N_TRAIN)
    xs = np.linspace(-1, 1, 400)
    figs, shown = [], []
    for lam in LAMBDAS:
        w = _ridge(_features(x), y, lam)
        shown.append(float(np.mean((_features(xs) @ w - np.sin(np.pi * xs)) ** 2)))
        fig = FG.new_figure(8.5, 3.8)
        ax = fig.subplots()
        ax.plot(xs, np.sin(np.pi * xs), color="#999999", lw=1.5, label="sin(πx), the truth")
        ax.plot(xs, _features(xs) @ w, color="#D55E00", lw=1.6, label=f"ridge fit, λ = {lam:g}")
        ax.plot(x, y, "o", color="#0072B2", ms=4, label=f"{N_TRAIN} noisy samples")
        ax.set_ylim(-2, 2)
        ax.set_title(
            f"degree {DEGREE}, λ = {lam:g}: mean over {DRAWS} draws, train "
            f"{fits[lam][0]:.3g}, test {fits[lam][1]:.3g}",
            fontsize=10,
        )
        ax.legend(fontsize=8, loc="lower right")
        figs.append(fig)
    text4 = f"""
Move λ over one draw of the training set (seed {SHOWN_SEED} of numpy's generator, one that
overfits without a penalty, as most draws do). At 0 the polynomial wiggles through every sample
and swings away from the truth between them; by λ = {best:g} it follows `sin(πx)` closely;
at 1 it is flattened towards zero and misses the peaks. The title gives the averages over
all {DRAWS} draws of the table above."""
    mv = Movable(
        "λ",
        [f"{lam:g}" for lam in LAMBDAS],
        figs,
        LAMBDAS.index(best),
        "Move λ: a degree-9 ridge fit to 20 noisy samples, and the truth.",
    )
    parts.append(
        Part(
            "move",
            "Move λ: from threading the noise to missing the signal",
            [
                text4,
                mv,
                [
                    ck(
                        "on the draw shown, the table's best λ fits the truth better than λ = 0 "
                        "and λ = 1",
                        shown[LAMBDAS.index(best)] < min(shown[0], shown[-1]),
                        f"{shown[LAMBDAS.index(best)]:.3g}",
                        f"< {min(shown[0], shown[-1]):.3g}",
                    )
                ],
            ],
        )
    )
    page = ChapterPage(
        "Regularization and weight decay, in depth",
        "deep-regularization.html",
        "What an L2 penalty does to each step and to the solution, the bias–variance "
        "trade-off it controls, and why Adam needs its weight decay decoupled: derived, and "
        "measured with descentlab's SGD, Adam and AdamW.",
        (62, 63, 64, 65, 66, 83, 85),
        parts,
    )
    keep = """
What to keep. In SGD an L2 penalty and weight decay are one rule, `w ← (1 - ηλ)w - ηg`,
ending at the ridge solution that shrinks each eigen-direction by `σ_i/(σ_i + λ)`; λ trades
variance for bias, and the best λ is found on held-out data; in Adam the penalty's gradient
is normalised like any other, so decoupled decay (AdamW) is a different, and usually better
behaved, regularizer."""
    return finish(page, n, keep)
