"""Mini-batch noise and the batch size, in depth: the batch gradient's mean and variance (with
the finite-population correction), SGD's noise floor as a function of η and B (an exact
second-moment recursion with the multiplicative noise of least squares), the linear scaling
rule and where it breaks, the sharpest minimum a rate can hold, noise as a temperature, and
the gradient noise scale; runs of descentlab's SGD, mini-batch SGD from scratch, and a real
training run on MNIST-1D."""

from __future__ import annotations

import itertools
import math

import numpy as np
import scipy.optimize
import scipy.sparse.linalg
import scipy.special
import torch

from descentlab import optim
from descentlab.book.chapters import _common as kit
from descentlab.book.chapters import practice
from descentlab.book.checks import ck, close, said
from descentlab.book.facts import word
from descentlab.book.model import Context
from descentlab.book.render.chapter import Part, Table
from descentlab.book.render.live import Live, Probe, Slider
from descentlab.report import figures as FG

__all__ = ["CHAPTER", "constants", "least_squares", "predicted_floor", "recursion_at"]

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
#: the training runs on MNIST-1D: (batch, rate), steps
TRAIN = ((64, 0.1), (256, 0.4))
TRAIN_STEPS = 400


def least_squares() -> tuple[torch.Tensor, torch.Tensor]:
    """The chapter's least-squares data: N points of y = 2x + 0.5ε (seeded), float64."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, dtype=torch.float64, generator=g)
    return x, 2 * x + 0.5 * torch.randn(N, dtype=torch.float64, generator=g)


def constants(x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """The curvature h, the minimizer, the gradient noise at the minimum s² and the spread
    of the curvature c (the multiplicative noise) of the per-example losses."""
    h = float((x * x).mean())
    w_star = float((x * y).sum() / (x * x).sum())
    r = y - x * w_star
    return {
        "h": h,
        "w": w_star,
        "s2": float(((x * r) ** 2).mean()),
        "c": float((x**4).mean() - h * h),
    }


def _data() -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """The least-squares data and their :func:`constants`."""
    x, y = least_squares()
    return x, y, constants(x, y)


def _per_example(w: float, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each example's gradient and curvature of ``(xw - y)²/2`` at ``w``, by autograd
    (torch.func: per-example gradients and second derivatives), the twin of the closed forms."""
    loss = lambda w_, x_, y_: 0.5 * (x_ * w_ - y_) ** 2  # noqa: E731
    wt = torch.tensor(w, dtype=torch.float64)
    g = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))(wt, x, y)
    h = torch.func.vmap(torch.func.grad(torch.func.grad(loss)), in_dims=(None, 0, 0))(wt, x, y)
    return g, h


def predicted_floor(lr: float, b: int, k: dict[str, float]) -> float:
    """The stationary excess loss of SGD with batch ``b`` drawn with replacement:
    ``h v/2`` with ``v = η²s²/B / (2ηh - η²h² - η²c/B)`` (infinite when the denominator is
    not positive: the recursion diverges)."""
    den = 2 * lr * k["h"] - lr**2 * k["h"] ** 2 - lr**2 * k["c"] / b
    return math.inf if den <= 0 else 0.5 * k["h"] * lr**2 * k["s2"] / b / den


def _floor_by_recursion(lr: float, b: int, k: dict[str, float], steps: int = 200_000) -> float:
    """The same floor by iterating E[e²] ← ((1 - ηh)² + η²c/B) E[e²] + η²s²/B to its limit."""
    v, a = k["w"] ** 2, (1 - lr * k["h"]) ** 2 + lr**2 * k["c"] / b
    for _ in range(steps):
        nxt = a * v + lr**2 * k["s2"] / b
        if abs(nxt - v) <= 1e-16 * abs(nxt):
            break
        v = nxt
    return 0.5 * k["h"] * v


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


# ------------------------------------------------------------------------------------------
# 1. the batch gradient's mean and variance

VARIANCE = kit.Prose(
    """
Mini-batch SGD replaces the gradient of the average loss by the average over a random batch
(items 13, 14, 70). Why that is fair, and what it costs, are two short calculations. Let the
training set have N examples with gradients $g_i$ at the current weights, full gradient
$\\bar g = \\sum_i g_i/N$ and spread $S^2 = \\sum_i (g_i - \\bar g)^2/N$. A batch of B examples
drawn uniformly has mean $\\bar g$: each example is equally likely to be in it, so the
expectation of the batch mean is the full mean. The batch gradient is *unbiased*.

Its variance is where the batch size enters. Drawn with replacement, the B gradients are
independent and the variance of their mean is ${{f:replace_var}}$. Drawn without replacement, as a
shuffled epoch does, they are slightly negatively correlated (an example in the batch cannot
be drawn again), and the variance is

$$\\mathrm{Var}[g_B] = {{f:batch_var}}:$$

the finite-population correction, which makes the full batch exact.

The build checks both on a least-squares problem of N = {{N}} examples ($y = 2x + 0.5\\epsilon$,
the loss $(xw - y)^2/2$), at w = 0, by drawing {{draws}} batches without replacement for each
B. The mean of the batch gradients is {{mean1}} at B = 1 against a full gradient of {{full}};
the variance is {{v1}} at B = 1 (formula {{f1}}), {{v64}} at B = 64 (formula {{f64}}), and
{{vN}} at the full batch. Quadrupling the batch from 4 to 16 divides the measured variance by
{{ratio}} (the formula's ${{f:quadruple_ratio}}$, with the finite-population correction), its
standard deviation by {{sd}}: the familiar ${{f:batch_sd}}$.""",
    mean1="the batch gradients' mean at B = 1, against the full gradient (6 standard errors)",
    full="the full gradient, against autograd on the mean loss",
    v1="B = 1: the measured variance, against the formula",
    f1="the formula at B = 1, against the draws",
    v64="B = 64: the measured variance, against the formula",
    f64="the formula at B = 64, against the draws",
    vN="the full batch's variance is 0",
    ratio="the variance's fall from B = 4 to 16, against the formula's 4(N - 4)/(N - 16)",
    sd="the standard deviation's fall, against the formula's",
)


def _draws(x: torch.Tensor, y: torch.Tensor) -> list[tuple[float, float, float]]:
    g = torch.Generator().manual_seed(2)
    per = x * (x * 0.0 - y)  # each example's gradient at w = 0
    out = []
    for b in BATCHES:
        idx = torch.rand(DRAWS, N, generator=g, dtype=torch.float64).argsort(1)[:, :b]
        gb = per[idx].mean(1)
        dev2 = (gb - gb.mean()) ** 2  # the variance's standard error, from the draws
        out.append((float(gb.mean()), float(dev2.mean()), float(dev2.std()) / DRAWS**0.5))
    return out


def _variance(ctx: Context, n: kit.Numbers) -> Part:
    x, y = least_squares()
    drawn = ctx.memo(("chapter", "batch", "draws"), lambda: _draws(x, y))
    per, _ = _per_example(0.0, x, y)
    full, var1 = float(per.mean()), float(per.var(unbiased=False))
    w = torch.zeros((), dtype=torch.float64, requires_grad=True)
    (0.5 * ((x * w - y) ** 2).mean()).backward()
    formula = [var1 / b * (N - b) / (N - 1) for b in BATCHES]
    se = [s for _, _, s in drawn]
    f_ratio = formula[1] / formula[2]
    text = VARIANCE.fill(
        n,
        N=str(N),
        draws=str(DRAWS),
        mean1=kit.Twin(drawn[0][0], full, 6 * math.sqrt(var1 / DRAWS), 4, rel=False),
        full=(full, float(w.grad), 1e-9, 4),
        v1=kit.Twin(drawn[0][1], formula[0], 4 * se[0], 3, rel=False),
        f1=kit.Twin(formula[0], drawn[0][1], 4 * se[0], 3, rel=False),
        v64=kit.Twin(drawn[3][1], formula[3], 4 * se[3], 3, rel=False),
        f64=kit.Twin(formula[3], drawn[3][1], 4 * se[3], 3, rel=False),
        vN=kit.Twin(drawn[4][1], 0.0, 1e-20, 2, rel=False),
        ratio=(drawn[1][1] / drawn[2][1], f_ratio, 0.05),
        sd=(math.sqrt(drawn[1][1] / drawn[2][1]), math.sqrt(f_ratio), 0.03),
    )
    rows = [[b, m, full, v, f] for b, (m, v, _), f in zip(BATCHES, drawn, formula, strict=True)]
    checks = [
        close(
            f"B = {b}: the batch gradients' variance is S²/B · (N - B)/(N - 1) (within 4 "
            "standard errors of the draws' estimate)",
            v,
            f,
            4 * s,
        )
        for (b, _, _, v, f), s in zip(rows[:-1], se, strict=False)
    ]
    table = Table(
        [
            "B",
            "mean of the batch gradients",
            "full gradient",
            "variance measured",
            "S²/B · (N - B)/(N - 1)",
        ],
        rows,
        f"{DRAWS} batches drawn without replacement from {N} examples, at w = 0",
    )
    return Part(
        "variance", "The batch gradient: unbiased, with variance S²/B", [text, table, checks]
    )


# ------------------------------------------------------------------------------------------
# 2. the noise floor as a function of η and B

FLOOR = kit.Prose(
    """
Near the minimum $w^*$ the batch gradient is $h(w - w^*)$ plus noise, and the schedules
chapter's recursion applies with the noise's variance divided by B. Least squares adds one
honest complication: each example's gradient $x_i^2(w - w^*) + x_i r_i$ has a part that grows
with the distance to the minimum, so the noise is partly multiplicative. Writing $e = w - w^*$,
$s^2$ for the spread of $x_i r_i$ at the minimum and c for the spread of $x_i^2$, one SGD step
gives

$$\\mathbb{E}[e^2] \\leftarrow {{f:batch_recursion}},$$

whose fixed point is
$\\mathbb{E}[e^2] = {{f:batch_excess}}$.
For small η this is ${{f:batch_excess_small}}$: the floor of the excess loss
$h\\,\\mathbb{E}[e^2]/2$
grows with η and falls with B, and only through their ratio η/B. Here h = {{h}},
$s^2$ = {{s2}} and c = {{c}} (each also computed from per-example gradients by autograd).

The table runs {{runs}} runs of descentlab's `SGD` for {{steps}} steps at each (η, B), batches
drawn with replacement, and averages the excess loss over the last {{half}} steps. Every
measured floor lands on the recursion's. Quadrupling B at η = 0.1 divides the floor by
{{ratio}}. The rows with equal η/B (0.05 with B = 1 and 0.2 with B = 4) have nearly equal
floors, {{m005}} and {{m02}}: this is the *linear scaling rule*, multiply the batch by m and
the rate by m to keep the same noise, in its exact small-rate form.""",
    h="h = mean x², against the per-example curvatures by autograd",
    s2="s² at the minimum, against the per-example gradients' variance by autograd",
    c="c, against the per-example curvatures' variance by autograd",
    ratio="the floor's fall from B = 1 to 4 at η = 0.1, against the recursion's",
    m005="η = 0.05, B = 1: the measured floor, against the recursion",
    m02="η = 0.2, B = 4: the measured floor, against the recursion",
)


def _floors(ctx: Context) -> dict[tuple[float, int], np.ndarray]:
    x, y, k = _data()
    settings = set(GRID) | {(SLIDER_LR, b) for b in SLIDER_BS}
    return ctx.memo(
        ("chapter", "batch", "sgd"),
        lambda: {(lr, b): _sgd(lr, b, x, y, k["w"], k["h"]) for lr, b in sorted(settings)},
    )


def _floor(ctx: Context, n: kit.Numbers) -> Part:
    x, y, k = _data()
    measured = {key: float(c[STEPS // 2 :].mean()) for key, c in _floors(ctx).items()}
    g_star, h_per = _per_example(k["w"], x, y)
    pred = {key: predicted_floor(*key, k) for key in GRID}
    text = FLOOR.fill(
        n,
        runs=str(RUNS),
        steps=str(STEPS),
        half=str(STEPS // 2),
        h=(k["h"], float(h_per.mean()), 1e-9, 4),
        s2=(k["s2"], float(g_star.var(unbiased=False))),
        c=(k["c"], float(h_per.var(unbiased=False))),
        ratio=(measured[(0.1, 1)] / measured[(0.1, 4)], pred[(0.1, 1)] / pred[(0.1, 4)], 0.2),
        m005=(measured[(0.05, 1)], pred[(0.05, 1)], 0.15),
        m02=(measured[(0.2, 4)], pred[(0.2, 4)], 0.15),
    )
    rows, checks = [], []
    for lr, b in GRID:
        p, m = pred[(lr, b)], measured[(lr, b)]
        rows.append(
            [lr, b, lr / b, "diverges" if math.isinf(p) else p, "diverged" if math.isinf(m) else m]
        )
        if math.isinf(p):
            checks.append(
                ck(
                    f"η = {lr:g}, B = {b}: the recursion diverges, and so does SGD",
                    math.isinf(m),
                    f"{m:.3g}",
                    "inf",
                )
            )
        else:
            checks.append(
                close(f"η = {lr:g}, B = {b}: the floor is the recursion's", m, p, 0.15, rel=True)
            )
    checks.append(
        close(
            "equal η/B, equal floors (η = 0.05, B = 1 against η = 0.2, B = 4)",
            measured[(0.2, 4)],
            measured[(0.05, 1)],
            0.2,
            rel=True,
        )
    )
    table = Table(
        ["η", "B", "η/B", "predicted floor", f"measured (mean of {RUNS} runs)"],
        rows,
        f"descentlab's SGD on least squares (N = {N}), batches with replacement",
    )
    return Part("floor", "The noise floor depends on η/B", [text, table, checks])


# ------------------------------------------------------------------------------------------
# 3. where linear scaling breaks

EDGE = kit.Prose(
    """
The linear scaling rule has an edge, and the recursion shows where. Its denominator must stay
positive: $\\eta < {{f:batch_edge}}$, close to gradient descent's 2/h once B is large. The noise
shrinks with B, the curvature does not. At B = 64 the edge is η = {{edge}}. Scaling η = 0.05
at B = 1 linearly to B = 64 asks for η = 3.2, past the edge: the recursion diverges, and so
does every run of descentlab's `SGD` in the table above. Half of that, η = 1.6, is stable, with
floor {{m16}} against the predicted {{p16}}. Large-batch training runs into exactly this wall:
past a critical batch size the noise is no longer what limits the rate, the curvature is, and
a larger batch buys no more speed per step, only cost per step. Warm-up schedules exist largely
to approach this edge without crossing it while the curvature is still high.

The noise has a second role that a quadratic cannot show: a noise whose size scales like η/B
keeps SGD out of basins narrower than the noise, so the batch size is also an implicit choice
of which minima training can settle in. The book's sharpness card (item 71) tests the claim
that small batches find flatter minima on a network: the full build reproduces it, the quick
build's smaller run does not (its card is ○, not reproduced, and shows what it measured). The
mechanism is what this chapter can show exactly, in its last sections.""",
    edge="the edge 2h/(h² + c/B) at B = 64, against a root-finder on the recursion's factor = 1",
    m16="η = 1.6, B = 64: the measured floor, against the prediction",
    p16="the predicted floor, against the recursion iterated to its limit",
)


def _edge(ctx: Context, n: kit.Numbers) -> Part:
    k = constants(*least_squares())
    edge = 2 * k["h"] / (k["h"] ** 2 + k["c"] / 64)
    root = scipy.optimize.brentq(
        lambda e: (1 - e * k["h"]) ** 2 + e * e * k["c"] / 64 - 1, 1e-3, 10
    )
    m16 = float(_floors(ctx)[(1.6, 64)][STEPS // 2 :].mean())
    text = EDGE.fill(
        n,
        edge=(edge, root),
        m16=(m16, predicted_floor(1.6, 64, k), 0.15),
        p16=(predicted_floor(1.6, 64, k), _floor_by_recursion(1.6, 64, k), 1e-6),
    )
    checks = [
        ck(
            "η = 3.2 at B = 64 is past the edge 2h/(h² + c/B), η = 1.6 before it",
            1.6 < edge < 3.2,
            f"{edge:.4g}",
            "between 1.6 and 3.2",
        )
    ]
    return Part("edge", "Where the linear scaling rule breaks", [text, checks])


# ------------------------------------------------------------------------------------------
# 4. the figure to move: the floor recursion for any (η, B), computed in the page

MOVE = kit.Prose(
    """
Move B and η: the page iterates the recursion of the floor section itself, with this
problem's h, $s^2$ and c, for {{steps}} steps from w = 0. Every curve first falls at the same
speed: far from the minimum the gradient's signal dominates and the batch size hardly matters
(the descent's rate is set by $1 - \\eta h$). Then each curve flattens at its floor, and the
floor falls with B; push η up and, whatever B, the curve stops flattening and climbs once η
passes ${{f:batch_edge}}$. The runs of descentlab's `SGD` at η = {{lr}} (the table) follow the
same curves: their floor falls from {{b1}} at B = 1 to {{b64}} at B = 64. A large batch pays
for its lower floor with B times the gradient evaluations per step: at a fixed budget of
examples, small batches take more steps and are often ahead until their floor is reached,
which is when a decaying rate or a growing batch takes over.""",
    b1="B = 1: the measured floor, against the recursion",
    b64="B = 64: the measured floor, against the recursion",
)

MOVE_JS = """function (p) {
  var T = p.T, v = p.w * p.w, loss = [0.5 * p.h * v];
  var a = Math.pow(1 - p.lr * p.h, 2) + p.lr * p.lr * p.c / p.b;
  for (var t = 0; t < T; t++) { v = a * v + p.lr * p.lr * p.s2 / p.b; loss.push(0.5 * p.h * v); }
  var den = 2 * p.lr * p.h - p.lr * p.lr * p.h * p.h - p.lr * p.lr * p.c / p.b;
  var floor = den > 0 ? 0.5 * p.h * p.lr * p.lr * p.s2 / p.b / den : Infinity, ts = seq(T + 1);
  return {panels: [{x: {label: 'step'},
                    y: {label: 'expected excess loss', log: true, min: 1e-5, max: 3},
    lines: [{x: ts, y: loss, label: 'the recursion, B = ' + p.b + ', η = ' + fmt(p.lr)},
            {x: [0, T], y: [floor, floor], label: 'its floor', dash: true, colour: '#555555'}]}],
    values: {at400: loss[T], floor: floor},
    text: isFinite(floor) ? 'floor ' + fmt(floor) + ' (excess loss)'
                          : 'past the edge 2h/(h² + c/B): the recursion diverges'};
}"""


def _move(ctx: Context, n: kit.Numbers) -> Part:
    k = constants(*least_squares())
    curves = _floors(ctx)
    floors = [float(curves[(SLIDER_LR, b)][STEPS // 2 :].mean()) for b in SLIDER_BS]
    probes = [
        Probe(
            {"lr": lr, "b": b},
            {"at400": recursion_at(lr, b, k, STEPS), "floor": predicted_floor(lr, b, k)},
            1e-9,
        )
        for lr, b in ((0.1, 1), (0.2, 4), (1.6, 64))
    ]
    text = MOVE.fill(
        n,
        steps=str(STEPS),
        lr=f"{SLIDER_LR:g}",
        b1=(floors[0], predicted_floor(SLIDER_LR, 1, k), 0.15),
        b64=(floors[-1], predicted_floor(SLIDER_LR, 64, k), 0.15),
    )
    fig = Live(
        "Move B and η: the expected excess loss of SGD on this least-squares problem, by "
        "the exact recursion, and its floor.",
        [
            Slider("b", "B", 1, 64, 4, integer=True),
            Slider("lr", "η", 0.01, 3.5, SLIDER_LR, log=True),
        ],
        MOVE_JS,
        probes,
        against="the build's recursion",
        constants={**k, "T": STEPS},
    )
    rows = [
        [b, f, predicted_floor(SLIDER_LR, b, k)] for b, f in zip(SLIDER_BS, floors, strict=True)
    ]
    table = Table(
        ["B", f"measured floor (mean of {RUNS} runs of descentlab's SGD)", "recursion"],
        rows,
        f"η = {SLIDER_LR:g}, batches with replacement",
    )
    checks = [
        ck(
            "the measured floor falls as B grows (η fixed)",
            all(a > b for a, b in itertools.pairwise(floors)),
            ", ".join(f"{v:.3g}" for v in floors),
            "decreasing",
        )
    ]
    return Part("move", "Move B: the same descent, different floors", [text, fig, table, checks])


def recursion_at(lr: float, b: int, k: dict[str, float], steps: int) -> float:
    """The expected excess loss after ``steps`` steps of SGD from w = 0, batches of ``b``
    drawn with replacement, by the second-moment recursion (``k``: :func:`constants`)."""
    v, a = k["w"] ** 2, (1 - lr * k["h"]) ** 2 + lr * lr * k["c"] / b
    for _ in range(steps):
        v = a * v + lr * lr * k["s2"] / b
    return 0.5 * k["h"] * v


# ------------------------------------------------------------------------------------------
# 5. the sharpest minimum a rate can hold

SHARPNESS = kit.Prose(
    """
The claim of item 71, that large batches end in sharp minima that generalize worse, needs a
measure of sharpness and a reason why the batch size would choose it. The measure is the
curvature: near a minimum the loss is $f(w^* + e) \\approx f(w^*) + e^\\top H e/2$, and its
sharpest direction is the Hessian's largest eigenvalue λ. The reason starts with the recursion
of the previous chapters, now without noise. Along that direction one step of gradient
descent multiplies the distance by ${{f:decay_factor}}$:

$$e \\leftarrow {{f:gd_step_e}},$$

which shrinks exactly when $|1 - \\eta\\lambda| < 1$, that is λ < 2/η. A minimum sharper than
2/η is not a resting place for gradient descent at rate η, however deep it is: every step
overshoots by more than it corrects, and the iterate is thrown out of the basin. The rate sets
the sharpest minimum training can sit in. Cohen and co-authors found the converse in real
networks trained with full batches: the sharpness climbs during training until it reaches 2/η
and then hovers there, the *edge of stability*, while the loss keeps falling,
non-monotonically.

The build tests the first half on two wells that meet at w = {{xb}}: a sharp minimum at w = -2
with curvature {{sharp}} and a flat one at w = 2 with curvature {{flat}}, both of loss 0 (the
card of item 71 shows them). The edge of the sharp well is 2/{{sharp}} = {{edge}}. Started at
w = -2 + 0.001, descentlab's `SGD` with exact gradients ends at {{ends}} for η = {{lrs}}: below
the edge it stays in the sharp well, above it it leaves for the flat one.""",
    xb="where the wells meet, against a root-finder",
    ends="where descentlab's SGD ends, against gradient descent in Python floats",
    edge="the sharp well's edge 2/λ, against a root-finder on |1 - ηλ| = 1",
)

EOS = kit.Prose(
    """
The second half, the edge of stability, needs a network. The build trains a small one (two
tanh layers of 32 units, 40 points, squared error) with full-batch descentlab `SGD` for
{{steps}} steps at η = {{lrs}}, and every {{every}} steps measures the Hessian's largest
eigenvalue by power iteration on Hessian-vector products (two backward passes through the
gradient, never the Hessian itself). All three start at the same sharpness, {{s0}} (scipy's
Lanczos iteration on the same products agrees), and the sharpness rises as the network fits:
*progressive sharpening*. At η = {{lr0}} the edge 2/η is far away; the sharpness climbs and the
loss falls at every step. At η = {{lr1}} the climb stops at the edge: over the second half of
the run the sharpness averages {{h1}} against 2/η = {{e1}}, and at η = {{lr2}} it averages
{{h2}} against {{e2}}. There the loss rises at some steps (the table counts them), yet ends
lower than it was halfway. The quadratic's analysis says such a run should diverge; the
network instead moves along the valley to where the curvature is just bearable. Which minimum
training ends in is decided by the rate, not by the loss alone.""",
    s0="the initial sharpness by power iteration, against scipy's Lanczos",
    h1="η = 0.2: the sharpness over the second half, against 2/η",
    e1="2/η, against a root-finder on |1 - ηλ| = 1",
    h2="η = 0.3: the sharpness over the second half, against 2/η",
    e2="2/η, against the root-finder",
)


def _wells_grad(w: torch.Tensor) -> torch.Tensor:
    """The gradient of ``min(SHARP (w + 2)²/2, FLAT (w - 2)²/2)``."""
    sharp, flat = SHARP / 2 * (w + 2) ** 2, FLAT / 2 * (w - 2) ** 2
    return torch.where(sharp < flat, SHARP * (w + 2), FLAT * (w - 2))


def _barrier() -> tuple[float, float]:
    """Where the two wells meet between the minima, and the loss there."""
    x = -2 + 4 / (math.sqrt(SHARP / FLAT) + 1)
    return x, SHARP / 2 * (x + 2) ** 2


def _wells(
    lr: float,
    b: int,
    start: float,
    sigma: float = WELL_SIGMA,
    runs: int = WELL_RUNS,
    steps: int = WELL_STEPS,
    seed: int = 3,
) -> tuple[np.ndarray, float, float]:
    """descentlab's SGD in the two wells from ``start``, the gradient plus the noise of a batch
    of ``b`` (``σ/√b`` times a standard normal): the final positions, the mean loss over the
    last half of the steps of the runs that never left the start's well, and the fraction of
    the runs that left it at some step."""
    gen = torch.Generator().manual_seed(seed)
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


def _escape_by_kernel(
    lr: float, b: int, start: float, steps: int = WELL_STEPS, per: int = 10
) -> float:
    """The probability that the iterate from ``start`` crosses the barrier at some step, with
    no run: the density of w on a grid of cells 1/``per`` of the noise's σ/√b wide on the
    start's side of the barrier, carried a step by the Gaussian kernel of the update
    (mean w - ηf'(w) at each cell's centre), the mass that lands past the barrier absorbed.
    The second route to :func:`_wells`'s fraction: an expectation, not a sample; halving the
    cells moved each fraction by under 4e-4 (2026-11-27)."""
    xb, _ = _barrier()
    s = lr * WELL_SIGMA / math.sqrt(b)
    lam = SHARP if start < xb else FLAT
    spread = math.sqrt(max(lr * WELL_SIGMA**2 / (b * lam * (2 - lr * lam)), 0.0) + s * s)
    h = abs(start - xb) / (math.ceil(abs(start - xb) / (s / per) - 0.5) + 0.5)  # start: a centre
    cells = math.ceil(max(1.5, 12 * spread) / h + abs(start - xb) / h)
    side = -1.0 if start < xb else 1.0
    edges = np.sort(xb + side * h * np.arange(cells + 1))
    c = (edges[:-1] + edges[1:]) / 2
    slope = np.where(SHARP * (c + 2) ** 2 < FLAT * (c - 2) ** 2, SHARP * (c + 2), FLAT * (c - 2))
    cdf = scipy.special.ndtr((edges[:, None] - (c - lr * slope)[None, :]) / s)
    move = np.diff(cdf, axis=0)
    if start < xb:  # what falls off the grid's far end stays in its last cell
        move[0] += cdf[0]
    else:
        move[-1] += 1 - cdf[-1]
    p = np.zeros(cells)
    p[int(np.argmin(np.abs(c - start)))] = 1.0
    for _ in range(steps):
        p = move @ p
    return float(1.0 - p.sum())


def _descent_by_hand(lr: float, start: float, steps: int = 400) -> float:
    """Gradient descent in the wells in Python floats, the slope written piece by piece."""
    w = start
    for _ in range(steps):
        w -= lr * (
            SHARP * (w + 2) if SHARP * (w + 2) ** 2 < FLAT * (w - 2) ** 2 else FLAT * (w - 2)
        )
    return w


def _widths(net: torch.nn.Module) -> str:
    """A network's layer widths as a caption states them: ``5-32-32-1``."""
    lin = [m for m in net if isinstance(m, torch.nn.Linear)]
    return "-".join(str(w) for w in [lin[0].in_features, *(m.out_features for m in lin)])


def _eos_problem() -> tuple[torch.Tensor, torch.Tensor, torch.nn.Module]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, dtype=torch.float64, generator=g)
    y = torch.sin(x @ torch.randn(5, 1, dtype=torch.float64, generator=g))
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(5, 32),
        torch.nn.Tanh(),
        torch.nn.Linear(32, 32),
        torch.nn.Tanh(),
        torch.nn.Linear(32, 1),
    ).double()
    return x, y, net


def _power_sharpness(loss: torch.Tensor, ps: list, gen: torch.Generator) -> float:
    grads = torch.autograd.grad(loss, ps, create_graph=True)
    v = [torch.randn(p.shape, dtype=torch.float64, generator=gen) for p in ps]
    lam = 0.0
    for _ in range(15):
        norm = math.sqrt(sum(float((a * a).sum()) for a in v))
        v = [a / norm for a in v]
        hv = torch.autograd.grad(grads, ps, v, retain_graph=True)
        lam = sum(float((a * b).sum()) for a, b in zip(v, hv, strict=True))
        v = [h.detach() for h in hv]
    return lam


def _edge_of_stability(lr: float) -> tuple[list[float], list[float]]:
    """Full-batch descentlab SGD at ``lr`` on a 5-32-32-1 tanh network fitting ``sin`` of a
    random projection of 40 points (squared error, float64): the loss at every step and the
    Hessian's largest eigenvalue every :data:`EOS_EVERY` steps (15 power iterations of
    Hessian-vector products)."""
    x, y, net = _eos_problem()
    g = torch.Generator().manual_seed(0)
    ps = list(net.parameters())
    opt = optim.SGD(ps, lr=lr)
    losses, sharp = [], []
    for t in range(EOS_STEPS + 1):
        loss = ((net(x) - y) ** 2).mean() / 2
        losses.append(float(loss.detach()))
        if t % EOS_EVERY == 0:
            sharp.append(_power_sharpness(loss, ps, g))
        if t == EOS_STEPS:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses, sharp


def _lanczos_sharpness() -> float:
    """The initial network's largest Hessian eigenvalue by scipy's Lanczos (eigsh) on
    Hessian-vector products: the twin of the power iteration."""
    x, y, net = _eos_problem()
    ps = list(net.parameters())
    grads = torch.autograd.grad(((net(x) - y) ** 2).mean() / 2, ps, create_graph=True)
    sizes = [p.numel() for p in ps]

    def hvp(v: np.ndarray) -> np.ndarray:
        parts = torch.split(torch.as_tensor(v.ravel(), dtype=torch.float64), sizes)
        hv = torch.autograd.grad(
            grads, ps, [a.view_as(p) for a, p in zip(parts, ps, strict=True)], retain_graph=True
        )
        return torch.cat([h.reshape(-1) for h in hv]).numpy()

    op = scipy.sparse.linalg.LinearOperator((sum(sizes), sum(sizes)), matvec=hvp, dtype=np.float64)
    return float(
        scipy.sparse.linalg.eigsh(op, k=1, which="LA", tol=1e-10, v0=np.ones(sum(sizes)))[0][0]
    )


def _sharpness(ctx: Context, n: kit.Numbers) -> Part:
    xb, _ = _barrier()
    ends = ctx.memo(
        ("chapter", "batch", "edge"),
        lambda: [_wells(lr, 1, -2 + 1e-3, sigma=0.0, runs=1, steps=400)[0][0] for lr in EDGE_LRS],
    )
    meet = scipy.optimize.brentq(lambda w: SHARP * (w + 2) ** 2 - FLAT * (w - 2) ** 2, -2, 2)
    edge = scipy.optimize.brentq(lambda e: abs(1 - e * SHARP) - 1, 1e-6, 1.0)
    text = SHARPNESS.fill(
        n,
        sharp=f"{SHARP:g}",
        flat=f"{FLAT:g}",
        lrs=", ".join(f"{v:g}" for v in EDGE_LRS),
        xb=(xb, meet),
        edge=(2 / SHARP, edge),
        ends=[(x, _descent_by_hand(lr, -2 + 1e-3)) for lr, x in zip(EDGE_LRS, ends, strict=True)],
    )
    left = [bool(x > xb) for x in ends]
    rows = [
        [lr, lr * SHARP, x, "flat well" if lv else "sharp well"]
        for lr, x, lv in zip(EDGE_LRS, ends, left, strict=True)
    ]
    checks = [
        ck(
            f"η = {lr:g}: gradient descent {'leaves' if lr * SHARP > 2 else 'stays in'} the sharp "
            "well, as ηλ " + ("> 2" if lr * SHARP > 2 else "< 2") + " says",
            lv == (lr * SHARP > 2),
            f"ends at {x:.3g}",
            "flat well" if lr * SHARP > 2 else "sharp well",
        )
        for lr, x, lv in zip(EDGE_LRS, ends, left, strict=True)
    ]
    sides = [lv == (lr * SHARP > 2) for lr, lv in zip(EDGE_LRS, left, strict=True)]
    checks.append(said(text, "below the edge it stays in the sharp well", all(sides),
                       f"{sum(sides)} of {len(sides)} on their side", "all"))  # fmt: skip
    table = Table(
        ["η", "ηλ in the sharp well", "final w (from the sharp minimum)", "ends in"],
        rows,
        "descentlab's SGD, exact gradients, 400 steps from w = -2 + 0.001",
    )
    return Part(
        "sharpness",
        "The sharpest minimum a rate can hold: λ < 2/η",
        [text, table, checks, *_eos_blocks(ctx, n)],
    )


def _eos_blocks(ctx: Context, n: kit.Numbers) -> list:
    eos = ctx.memo(("chapter", "batch", "eos"), lambda: [_edge_of_stability(lr) for lr in EOS_LRS])
    hover = [float(np.mean(sh[len(sh) // 2 :])) for _, sh in eos]
    rises = [int((np.diff(lo) > 0).sum()) for lo, _ in eos]
    edges = [
        scipy.optimize.brentq(lambda e, lr=lr: abs(1 - lr * e) - 1, 1e-6, 1e3) for lr in EOS_LRS
    ]
    text = EOS.fill(
        n,
        steps=str(EOS_STEPS),
        every=str(EOS_EVERY),
        lrs=", ".join(f"{v:g}" for v in EOS_LRS),
        lr0=f"{EOS_LRS[0]:g}",
        lr1=f"{EOS_LRS[1]:g}",
        lr2=f"{EOS_LRS[2]:g}",
        s0=(eos[0][1][0], ctx.memo(("chapter", "batch", "lanczos"), _lanczos_sharpness), 1e-3),
        h1=(hover[1], 2 / EOS_LRS[1], 0.03, 4),
        e1=(2 / EOS_LRS[1], edges[1]),
        h2=(hover[2], 2 / EOS_LRS[2], 0.03, 4),
        e2=(2 / EOS_LRS[2], edges[2], 1e-9, 4),
    )
    fig = _eos_figure(eos)
    rows = [
        [lr, 2 / lr, sh[0], max(sh), hv, r, lo[-1]]
        for lr, (lo, sh), hv, r in zip(EOS_LRS, eos, hover, rises, strict=True)
    ]
    checks = [
        ck(
            f"η = {EOS_LRS[0]:g}: the sharpness rises but stays below 2/η, and the loss never "
            "rises",
            eos[0][1][-1] > 3 * eos[0][1][0] and max(eos[0][1]) < 2 / EOS_LRS[0] and rises[0] == 0,
            f"{eos[0][1][0]:.3g} → {eos[0][1][-1]:.3g}; {rises[0]} rises",
            f"×3 or more, < {2 / EOS_LRS[0]:g}; 0 rises",
        ),
        *[
            close(
                f"η = {lr:g}: over the second half the sharpness hovers at 2/η (the edge of "
                "stability)",
                hv,
                2 / lr,
                0.03,
                rel=True,
            )
            for lr, hv in zip(EOS_LRS[1:], hover[1:], strict=True)
        ],
        *[
            ck(
                f"η = {lr:g}: the loss rises at some steps yet ends below its value halfway",
                r > 0 and lo[-1] < lo[EOS_STEPS // 2],
                f"{r} rises; {lo[-1]:.3g}",
                f"> 0; < {lo[EOS_STEPS // 2]:.3g}",
            )
            for lr, (lo, _), r in zip(EOS_LRS[1:], eos[1:], rises[1:], strict=True)
        ],
    ]
    table = Table(
        [
            "η",
            "2/η",
            "sharpness at step 0",
            "largest sharpness",
            "mean over the second half",
            "steps where the loss rose",
            "final loss",
        ],
        rows,
        f"full-batch descentlab SGD on a {_widths(_eos_problem()[2])} tanh network, "
        f"{EOS_STEPS} steps",
    )
    return [text, fig, table, checks]


def _eos_figure(eos: list) -> object:
    fig = FG.new_figure(10.5, 3.8)
    a_, b_ = fig.subplots(1, 2)
    steps_axis = np.arange(0, EOS_STEPS + 1, EOS_EVERY)
    for lr, (lo, sh), col in zip(EOS_LRS, eos, ("#0072B2", "#D55E00", "#009E73"), strict=True):
        a_.plot(steps_axis, sh, color=col, marker=".", label=f"η = {lr:g}")
        a_.axhline(2 / lr, color=col, ls="--", lw=1)
        b_.semilogy(lo, color=col, lw=1, label=f"η = {lr:g}")
    a_.set(ylim=(0, 2.2 / EOS_LRS[1]), xlabel="step")
    a_.set_title("sharpness (largest Hessian eigenvalue); dashed: 2/η", fontsize=10)
    b_.set(xlabel="step")
    b_.set_title(f"{kit.WORDS['train/loss']} (full batch)", fontsize=10)
    a_.legend(fontsize=8)
    b_.legend(fontsize=8)
    return fig


# ------------------------------------------------------------------------------------------
# 6. the noise as a temperature: which well

TEMPERATURE = kit.Prose(
    """
Noise adds the second half. Give each step the gradient of a batch: the exact gradient plus
noise of variance $\\sigma^2/B$. Inside one well of curvature λ this is the noisy quadratic of
the schedules chapter, and its recursion
$\\mathbb{E}[e^2] \\leftarrow {{f:noisy_batch_step}}$
settles at
$\\mathbb{E}[e^2] = {{f:batch_floor}}$. The mean excess loss in the well
is λ/2 times that:

$$T = {{f:batch_temperature}}.$$

Call it the well's *temperature*, the mean height the noise keeps the iterate above the
bottom. Two things set it. The first is η/B, the noise scale of the previous sections: the
temperature is proportional to it (at a fixed ηλ). The second is the factor $1/(2 - \\eta\\lambda)$,
which is about 1/2 in a flat well and grows without bound as the well's curvature approaches
the edge 2/η. A sharp well near the edge is a hot well. To leave a well the iterate must climb
its barrier, here {{barrier}} above both minima. The spread in the well is Gaussian with
$\\mathbb{E}[e^2] = 2T/\\lambda$, so the chance of being a height f above the bottom falls like
$\\exp(-f/(2T))$: a well whose temperature is a good fraction of its barrier is left quickly,
and one whose temperature is a small fraction keeps its iterate for a very long time.

The table runs {{runs}} runs of descentlab's `SGD` for {{steps}} steps from each minimum, with σ
= {{sigma}} for one example, at several (η, B). Read the columns of the sharp well. Where its
temperature is below barrier/20 = {{cool}} the runs stay, and their mean loss over the last
{{half}} steps is the formula's T. At η = {{lr}}, where the sharp well sits at ηλ = 1.6, close
to its edge, the fraction of runs that crossed its barrier at some step is {{sweep}} at B = 1,
4, 16 and 64 (the probability itself, computed with no run by carrying the density of w step by
step on a grid, agrees within the runs' binomial error): small batches leave the sharp minimum,
large ones stay in it. Sorted by the sharp well's temperature, the fractions that escaped rise,
whatever η and B made that temperature. The rows η = 0.01, B = 1 and η = {{lr}}, B = 4 have the
same η/B, yet {{e001}} of the first left the sharp well and {{e004}} of the second: at the
larger η the sharp well is closer to its edge and {{hotter}} times hotter. The flat well is
cooler in every row, by the factor ${{f:sharp_cooler}}$, and keeps all its runs wherever its
temperature is below
barrier/20; only in the hottest row (η = {{lr}}, B = 1, flat temperature {{tflat}}) does it lose
most of them, {{lost}}: there the noise shakes the iterate out of both wells, the regime where
the rate is simply too large.

So the batch size selects minima in this model in a precise sense: it sets the temperature,
and at a given temperature of the flat well the sharp well is hotter by the factor
${{f:sharp_hotter}}$. Keskar and co-authors'
experiment (item 71's card runs it at a small size: reproduced by the full build, ○ in the
quick one) measured the other end of the chain on
networks: the minima reached with large batches had a larger loss rise under small
perturbations of the weights, and a larger gap between training and test accuracy.""",
    barrier="the barrier, against the flat well's loss where a root-finder says the wells meet",
    sweep="the fraction that left the sharp well, against the density carried on a grid",
    cool="barrier/20, against the root-finder's",
    e001="η = 0.01, B = 1: the fraction that left, against the density carried on a grid",
    e004="η = 0.04, B = 4: the fraction that left, against the density carried on a grid",
    hotter="the temperatures' ratio, against the recursions iterated to their limits",
    tflat="the flat well's temperature at η = 0.04, B = 1, against its recursion",
    lost="the fraction that left the flat well, against the density carried on a grid",
)


def _temp(lr: float, b: int, lam: float) -> float:
    return lr * WELL_SIGMA**2 / (2 * b * (2 - lr * lam))


def _temp_by_recursion(lr: float, b: int, lam: float) -> float:
    v = 0.0
    for _ in range(100_000):
        nxt = (1 - lr * lam) ** 2 * v + lr * lr * WELL_SIGMA**2 / b
        if abs(nxt - v) <= 1e-15 * nxt:
            break
        v = nxt
    return lam / 2 * v


def _escaped(fraction: float, lr: float, b: int, start: float) -> kit.Twin:
    """A fraction of :data:`WELL_RUNS` runs against the probability by the grid
    (:func:`_escape_by_kernel`): within 4 of the runs' binomial standard errors (at least that
    of one run in the runs) and 1e-3 for the grid, which halving its cells moves by under
    4e-4."""
    p = _escape_by_kernel(lr, b, start)
    tol = 4 * math.sqrt(max(p * (1 - p), 1 / WELL_RUNS) / WELL_RUNS) + 1e-3
    return kit.Twin(fraction, p, tol, 3, rel=False)


def _temperature(ctx: Context, n: kit.Numbers) -> Part:
    wl = ctx.memo(
        ("chapter", "batch", "wells"),
        lambda: {(lr, b): (_wells(lr, b, -2.0), _wells(lr, b, 2.0)) for lr, b in WELL_GRID},
    )
    _, barrier = _barrier()
    esc = {key: v[0][2] for key, v in wl.items()}
    stay = {key: 1.0 - v[1][2] for key, v in wl.items()}
    sweep = [esc[(WELL_LR, b)] for b in (1, 4, 16, 64)]
    meet = scipy.optimize.brentq(lambda w: SHARP * (w + 2) ** 2 - FLAT * (w - 2) ** 2, -2, 2)
    text = TEMPERATURE.fill(
        n,
        runs=str(WELL_RUNS),
        steps=str(WELL_STEPS),
        sigma=f"{WELL_SIGMA:g}",
        half=str(WELL_STEPS // 2),
        lr=f"{WELL_LR:g}",
        barrier=(barrier, FLAT / 2 * (meet - 2) ** 2),
        cool=(barrier / 20, FLAT / 2 * (meet - 2) ** 2 / 20),
        sweep=[_escaped(v, WELL_LR, b, -2.0) for b, v in zip((1, 4, 16, 64), sweep, strict=True)],
        e001=_escaped(esc[(0.01, 1)], 0.01, 1, -2.0),
        e004=_escaped(esc[(0.04, 4)], 0.04, 4, -2.0),
        hotter=(
            _temp(0.04, 4, SHARP) / _temp(0.01, 1, SHARP),
            _temp_by_recursion(0.04, 4, SHARP) / _temp_by_recursion(0.01, 1, SHARP),
        ),
        tflat=(_temp(0.04, 1, FLAT), _temp_by_recursion(0.04, 1, FLAT)),
        lost=_escaped(1 - stay[(0.04, 1)], 0.04, 1, 2.0),
    )
    return Part(
        "temperature",
        "Noise as a temperature: small batches leave sharp minima",
        [text, *_temperature_table(wl, esc, stay, barrier, sweep)],
    )


def _temperature_table(wl: dict, esc: dict, stay: dict, barrier: float, sweep: list) -> list:
    rows = [
        [lr, b, lr / b, _temp(lr, b, SHARP), _temp(lr, b, FLAT),
         "none stayed" if math.isnan(wl[(lr, b)][0][1]) else wl[(lr, b)][0][1], esc[(lr, b)],
         stay[(lr, b)]]
        for lr, b in WELL_GRID
    ]  # fmt: skip
    quiet = [key for key in WELL_GRID if _temp(*key, SHARP) < barrier / 20]
    fractions = [esc[key] for key in sorted(WELL_GRID, key=lambda k: _temp(*k, SHARP))]
    checks = [
        *[
            close(
                f"η = {lr:g}, B = {b}: the runs that stay in the sharp well sit at the temperature "
                "ησ²/(2B(2 - ηλ))",
                wl[(lr, b)][0][1],
                _temp(lr, b, SHARP),
                0.1,
                rel=True,
            )
            for lr, b in quiet
        ],
        ck(
            "where the sharp well's temperature is below barrier/20, fewer than 1 % of its runs "
            "leave it",
            all(esc[key] < 0.01 for key in quiet),
            ", ".join(f"{esc[key]:.3g}" for key in quiet),
            "< 0.01 each",
        ),
        ck(
            f"η = {WELL_LR:g}: the fraction leaving the sharp well falls as B grows, from most "
            "runs "
            "to almost none",
            all(a >= c for a, c in itertools.pairwise(sweep)) and sweep[0] > 0.9 > 0.05 > sweep[-1],
            ", ".join(f"{v:.3g}" for v in sweep),
            "non-increasing, > 0.9 at B = 1, < 0.05 at B = 64",
        ),
        ck(
            "sorted by the sharp well's temperature, the fraction that escaped never falls",
            all(a <= c + 0.02 for a, c in itertools.pairwise(fractions)),
            ", ".join(f"{v:.3g}" for v in fractions),
            "non-decreasing (within 0.02)",
        ),
        ck(
            "the flat well keeps every run where its temperature is below barrier/20, and in every "
            "row at least as many as the sharp well",
            all(stay[k] == 1.0 for k in WELL_GRID if _temp(*k, FLAT) < barrier / 20)
            and all(stay[k] >= 1 - esc[k] for k in WELL_GRID),
            ", ".join(f"{stay[k]:.3g}" for k in WELL_GRID),
            "1 where cool; ≥ the sharp well's",
        ),
        ck(
            f"equal η/B, different fates: η = 0.01, B = 1 stays sharp, η = {WELL_LR:g}, B = 4 "
            "(nearer "
            "the edge) leaves",
            esc[(0.01, 1)] < 0.05 and esc[(0.04, 4)] > 0.95,
            f"{esc[(0.01, 1)]:.3g} and {esc[(0.04, 4)]:.3g}",
            "< 0.05 and > 0.95",
        ),
    ]
    table = Table(
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
    )
    return [table, _wells_figure(wl, esc), checks]


def _wells_figure(wl: dict, esc: dict) -> object:
    xs_grid = np.linspace(-3.2, 4.5, 800)
    fig = FG.new_figure(10.5, 3.6)
    axes = fig.subplots(1, 2)
    for ax, b in zip(axes, (1, 64), strict=True):
        (xs, _, _), (xf, _, _) = wl[(WELL_LR, b)]
        ax.plot(
            xs_grid,
            np.minimum(SHARP / 2 * (xs_grid + 2) ** 2, FLAT / 2 * (xs_grid - 2) ** 2),
            color="#33475b",
            lw=2,
        )
        ax.set(ylim=(-0.3, 12), xlabel="weight w", ylabel="loss")
        hx = ax.twinx()
        bins = np.linspace(-3.2, 4.5, 78)
        hx.hist(xs, bins=bins, color="#D55E00", alpha=0.5, label="started in the sharp well")
        hx.hist(
            xf,
            bins=bins,
            color="#0072B2",
            histtype="step",
            lw=1.8,
            label="started in the flat well",
        )
        hx.legend(fontsize=7, loc="upper right")
        ax.set_title(
            f"η = {WELL_LR:g}, B = {b}: {100 * esc[(WELL_LR, b)]:.3g} % left the sharp well",
            fontsize=10,
        )
    return fig


# ------------------------------------------------------------------------------------------
# 7. the gradient noise scale: how large a batch is worth

NOISE_SCALE = kit.Prose(
    """
How large should a batch be? McCandlish and co-authors answer with a short calculation that
the least-squares problem makes exact. With a batch of B, the step ${{f:sgd_step}}$ changes the
loss in expectation by ${{f:batch_change}}$ (the variance of the
previous sections enters through ${{f:batch_second}}$). The best η maximises
the decrease, and the decrease it gets is

$$\\Delta L(B) = {{f:batch_gain}}
= {{f:batch_gain_scale}},
\\qquad B_{\\mathrm{noise}} = {{f:noise_scale}}.$$

$B_{\\mathrm{noise}}$, the *gradient noise scale*, is the batch at which one step gains half of
what the exact gradient would. Below it, doubling B nearly doubles the progress per step: the
batch is noise-limited, and a larger batch with a proportionally larger rate is free speed
(the linear scaling rule again). Above it, progress per step saturates at $\\Delta L_{\\max}$ and
a larger batch only costs more examples.

$B_{\\mathrm{noise}}$ is not a constant of the problem: it grows as training approaches the
minimum, where the mean gradient vanishes but its spread does not. On this problem it is
{{b0}} at w = 0, {{b1}} at $w = {{a1}}\\,w^*$ and {{b2}} at $w = {{a2}}\\,w^*$. The build draws
{{draws}} batches at each point with B the nearest integer to $B_{\\mathrm{noise}}$ (at least 1)
and measures the gain of the best step: {{mc}} against the formula's {{gains}}. Early in
training a batch of {{bs0}} examples gains half of what the exact gradient gains; late, the
same half needs {{bs2}} examples drawn, {{more}} than the {{N}} the training set holds, so only a
large batch or a smaller rate makes progress: the reason for schedules that grow the batch
instead of shrinking the rate.""",
    bs0="the batch used at w = 0, from autograd's B_noise",
    b0="B_noise at w = 0, against per-example gradients by autograd",
    b1="B_noise at 0.9 w*, against per-example gradients by autograd",
    b2="B_noise at 0.99 w*, against per-example gradients by autograd",
    mc="the drawn gain of the best step, against the formula",
    gains="the formula's gain, against the draws",
    bs2="the batch used near w*, from autograd's B_noise",
)


def _noise_scale(ctx: Context, n: kit.Numbers) -> Part:
    x, y, k = _data()
    per_w = [x * (x * (a * k["w"]) - y) for a in NOISE_AT]
    gbar = [float(p.mean()) for p in per_w]
    s2 = [float(p.var(unbiased=False)) for p in per_w]
    bnoise = [v / g**2 for v, g in zip(s2, gbar, strict=True)]
    twin = [
        float(g.var(unbiased=False) / g.mean() ** 2)
        for g in (_per_example(a * k["w"], x, y)[0] for a in NOISE_AT)
    ]

    def gain(i: int, b: float) -> float:
        return gbar[i] ** 4 / (2 * k["h"] * (gbar[i] ** 2 + s2[i] / b))

    def mc_gain(i: int, b: int) -> float:
        gen = torch.Generator().manual_seed(4)
        gb = per_w[i][torch.randint(N, (DRAWS, b), generator=gen)].mean(1)
        lr = gbar[i] ** 2 / (k["h"] * float((gb * gb).mean()))  # maximises η ḡ² - η²h E[g²]/2
        return float((lr * gb * gbar[i] - lr**2 * k["h"] * gb * gb / 2).mean())

    b_star = [max(1, round(v)) for v in bnoise]
    mc = [mc_gain(i, b) for i, b in enumerate(b_star)]
    text = NOISE_SCALE.fill(
        n,
        draws=str(DRAWS),
        N=str(N),
        a1=f"{NOISE_AT[1]:g}",
        a2=f"{NOISE_AT[2]:g}",
        b0=(bnoise[0], twin[0]),
        b1=(bnoise[1], twin[1]),
        b2=(bnoise[2], twin[2]),
        mc=[(m, gain(i, b), 0.1) for i, (m, b) in enumerate(zip(mc, b_star, strict=True))],
        gains=[(gain(i, b), m, 0.1) for i, (m, b) in enumerate(zip(mc, b_star, strict=True))],
        bs0=(b_star[0], max(1, round(twin[0])), 0),
        bs2=(b_star[2], max(1, round(twin[2])), 0),
        more=word(b_star[2], N, "more"),
    )
    rows = [
        [a, gbar[i], s2[i], bnoise[i], b_star[i], mc[i], gain(i, b_star[i])]
        for i, a in enumerate(NOISE_AT)
    ]
    checks = [
        *[
            close(
                f"at {a:g} of w*: the best step's gain with B = {b} is ΔL_max/(1 + B_noise/B)",
                m,
                gain(i, b),
                0.1,
                rel=True,
            )
            for i, (a, b, m) in enumerate(zip(NOISE_AT, b_star, mc, strict=True))
        ],
        ck(
            "the noise scale grows as the iterate nears the minimum",
            bnoise[0] < bnoise[1] < bnoise[2],
            ", ".join(f"{v:.3g}" for v in bnoise),
            "increasing",
        ),
    ]
    table = Table(
        [
            "point (fraction of w*)",
            "ḡ",
            "S²",
            "B_noise = S²/ḡ²",
            "B used",
            "best step's gain, drawn",
            "formula ΔL_max/(1 + B_noise/B)",
        ],
        rows,
        f"least squares (N = {N}), {DRAWS} batches drawn with replacement per point",
    )
    return Part(
        "noise-scale", "The gradient noise scale: how large a batch is worth", [text, table, checks]
    )


# ------------------------------------------------------------------------------------------
# 8. from scratch, and a real training run

_scratch = kit.scratch(
    text="""
Mini-batch SGD from scratch is a shuffle, a slice and a step. The cell below writes one epoch
loop in plain torch on this chapter's least-squares data, drawing each epoch's order from a
seeded generator, and runs descentlab's `SGD` on the same batches; the build checks that every
iterate is the same, and the printout shows the batch gradient's variance falling like 1/B.""",
    code="""\
import torch
from descentlab import optim

g = torch.Generator().manual_seed(0)
x = torch.randn(256, dtype=torch.float64, generator=g)
y = 2 * x + 0.5 * torch.randn(256, dtype=torch.float64, generator=g)

def epochs(batch, lr, n_epochs, seed=1):
    order = torch.Generator().manual_seed(seed)
    w, path = torch.zeros((), dtype=torch.float64), []
    for _ in range(n_epochs):
        perm = torch.randperm(256, generator=order)          # shuffle: without replacement
        for i in range(0, 256, batch):
            xb, yb = x[perm[i:i + batch]], y[perm[i:i + batch]]
            w = w - lr * (xb * (xb * w - yb)).mean()         # the batch's mean gradient
            path.append(w)
    return torch.stack(path)

def descentlab_epochs(batch, lr, n_epochs, seed=1):
    order = torch.Generator().manual_seed(seed)
    w = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))
    opt, path = optim.SGD([w], lr=lr), []
    for _ in range(n_epochs):
        perm = torch.randperm(256, generator=order)
        for i in range(0, 256, batch):
            xb, yb = x[perm[i:i + batch]], y[perm[i:i + batch]]
            opt.zero_grad()
            (0.5 * (xb * w - yb) ** 2).mean().backward()
            opt.step()
            path.append(w.detach().clone())
    return torch.stack(path)

mine = torch.cat([epochs(b, 0.05, 3) for b in (1, 16, 64)])
library = torch.cat([descentlab_epochs(b, 0.05, 3) for b in (1, 16, 64)])
w_star = float((x * y).sum() / (x * x).sum())
for b in (1, 16, 64):
    per = x * (x * 0.0 - y)
    print(f"B = {b:2d}: batch-gradient variance at w = 0 is S^2/B * (N-B)/(N-1) = "
          f"{per.var(unbiased=False) / b * (256 - b) / 255:.4f}; w after 3 epochs "
          f"{float(epochs(b, 0.05, 3)[-1]):.4f} (w* = {w_star:.4f})")
print(f"largest difference from descentlab over all steps: {(mine - library).abs().max():.1e}")
""",
    what="mini-batch SGD from scratch gives descentlab's SGD on the "
    "same batches, iterate by iterate (three batch sizes, three epochs)",
)

TRAINING = kit.Prose(
    """
On a network the linear scaling rule is a statement about examples, not steps. The figure
trains descentlab's default MNIST-1D model with `SGD` three ways, plotted against the number of
examples drawn: B = {{b1}} at η = {{lr1}}; B = {{b2}} at η = {{lr2}}, the same η/B; and
B = {{b2}} at η = {{lr1}}, a larger batch without the larger rate. Per example, the first two
progress alike, as the floor section's η/B predicts; the third, which drew as many examples
per step as the second but took steps of a quarter of the size, falls behind: a larger batch
is only worth its cost with a proportionally larger rate, up to the edge above.""",
)


def _training(ctx: Context, n: kit.Numbers) -> Part:
    base = kit.run_config("mnist1d", TRAIN_STEPS, "sgd", eval_every=25, seed=0)
    (b1, lr1), (b2, lr2) = TRAIN
    runs = {
        f"B = {b}, η = {lr:g}": {
            **base,
            "batch_size": b,
            "hyper": {"lr": lr},
            "steps": TRAIN_STEPS * b1 // b,
        }
        for b, lr in ((b1, lr1), (b2, lr2), (b2, lr1))
    }
    _, res = kit.training_run(ctx, "batch", runs, "")
    fig = FG.new_figure(8.5, 3.6)
    ax = fig.subplots()
    for (label, r), b in zip(res.items(), (b1, b2, b2), strict=True):
        s = r.metrics["train/loss"]
        ax.plot(np.asarray(s.steps) * b, s.values, marker=".", ms=3, lw=1.4, label=label)
    ax.set(xlabel="examples drawn", ylabel="train/loss")
    words = kit.WORDS["train/loss"]
    ax.set_title(f"MNIST-1D, descentlab's SGD: {words} against examples drawn", fontsize=10)
    ax.legend(fontsize=8)
    same, scaled, unscaled = (kit.final(r, "train/loss") for r in res.values())
    checks = [
        ck(
            "per example drawn, the same η/B ends within 25 % of the same training loss",
            0.8 < scaled / same < 1.25,
            f"{scaled:.4g} / {same:.4g} = {scaled / same:.3g}",
            "in (0.8, 1.25)",
        ),
        ck(
            "the larger batch without the larger rate ends higher than both",
            unscaled > max(same, scaled),
            f"{unscaled:.4g}",
            f"> {max(same, scaled):.4g}",
        ),
    ]
    text = TRAINING.fill(
        n,
        b1=str(b1),
        lr1=f"{lr1:g}",
        b2=str(b2),
        lr2=f"{lr2:g}",
    )
    table = kit.results_table(
        res,
        f"descentlab's engine (train), MNIST-1D, {TRAIN_STEPS * b1} examples drawn, seed 0",
        "train/loss",
        "test/accuracy",
    )
    return Part("training", "A real training run: η/B, per example", [text, fig, table, checks])


KEEP = """
What to keep. A batch gradient is unbiased with variance ${{f:replace_var}}$ (times
${{f:finite_population}}$
without replacement); near a minimum SGD's floor is set by η/B, which is the linear scaling
rule; and the rule stops at the curvature's edge $\\eta < {{f:batch_edge}}$, beyond which a larger
batch no longer allows a larger rate. Gradient descent cannot rest in a minimum sharper than
2/η, and full-batch training of a network climbs to that edge and stays; the noise heats a
well of curvature λ to ${{f:batch_temperature}}$, so small batches leave sharp
minima that large batches keep; and a batch beyond the noise scale $S^2/\\bar g^2$ buys
little."""

#: the chapter's exercises (:mod:`descentlab.book.chapters.practice`)
EXERCISES = practice.BATCH

CHAPTER = kit.Chapter(
    "deep-batch",
    "Mini-batch noise, the batch size and sharp minima, in depth",
    "Why a batch gradient is an unbiased estimate, how its noise scales with B, the noise floor "
    "that η and B set together, the linear scaling rule and the curvature's edge where it "
    "breaks; the sharpest minimum a rate can hold (2/η, and the edge of stability), why small "
    "batches leave sharp minima, and the gradient noise scale: derived, and measured with "
    "descentlab's SGD, written from scratch, and trained on MNIST-1D.",
    (13, 14, 18, 70, 71),
    (
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
        STEPS // 2,
        WELL_STEPS // 2,
        0.001,
        *[v for p in TRAIN for v in p],
        1.6,
        3.2,
    ),
    (_variance, _floor, _edge, _move, _sharpness, _temperature, _noise_scale, _scratch, _training),
    KEEP,
    EXERCISES,
)
