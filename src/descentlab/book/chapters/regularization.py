"""Regularization and weight decay, in depth: the L2 penalty as a multiplicative decay in SGD,
ridge regression's shrinkage along each eigen-direction, the bias–variance trade-off as λ
moves, and why decoupled weight decay (AdamW) differs from an L2 penalty inside Adam; measured
with descentlab's SGD, Adam and AdamW against closed forms and a second solver, weight decay
from scratch, and a real training run on MNIST-1D."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from descentlab import optim
from descentlab.book import reference as ref
from descentlab.book.chapters import _common as kit
from descentlab.book.chapters import practice
from descentlab.book.checks import ck, said
from descentlab.book.facts import Formula, word
from descentlab.book.model import Context
from descentlab.book.render.chapter import Part, Table
from descentlab.book.render.live import Live, Probe, Slider
from descentlab.book.render.pages import Check

__all__ = ["CHAPTER"]

LR, DECAY, STEPS, LONG = 0.1, 0.5, 100, 2000
DEGREE, N_TRAIN, N_TEST, DRAWS, NOISE = 9, 20, 500, 50, 0.3
LAMBDAS = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
ADAM_LR, ADAM_DECAY, ADAM_STEPS = 0.01, 0.1, 200
#: the training set the live figure shows (one that overfits at λ = 0, as most draws do)
SHOWN_SEED = 2
#: the training runs on MNIST-1D: Adam's rate, the weight decay, the steps
TRAIN_LR, TRAIN_DECAY, TRAIN_STEPS = 0.003, 0.1, 400


def _features(x: np.ndarray) -> np.ndarray:
    """Legendre features of degree :data:`DEGREE` on [-1, 1] (well conditioned)."""
    return np.polynomial.legendre.legvander(x, DEGREE)


def _ridge(a: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Ridge by its normal equations, (AᵀA/N + λI) w = Aᵀy/N."""
    n = len(y)
    return np.linalg.solve(a.T @ a / n + lam * np.eye(a.shape[1]), a.T @ y / n)


def _ridge_lstsq(a: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """The same solution by least squares on the augmented system [A; √(Nλ) I] w ≈ [y; 0]
    (an SVD, no normal equations): the second route."""
    n, p = a.shape
    big = np.vstack([a, np.sqrt(n * lam) * np.eye(p)])
    return np.linalg.lstsq(big, np.concatenate([y, np.zeros(p)]), rcond=None)[0]


def _fits(solver=_ridge) -> dict[float, tuple[float, float, list[float]]]:
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
            w = solver(a, y, lam)
            train[lam].append(float(np.mean((a @ w - y) ** 2)))
            test[lam].append(float(np.mean((at @ w - yt) ** 2)))
    return {
        lam: (float(np.mean(train[lam])), float(np.mean(test[lam])), test[lam]) for lam in LAMBDAS
    }


# ------------------------------------------------------------------------------------------
# the update rules the sections show, one SymPy expression each: typeset on the page (latex)
# and evaluated at each step against descentlab's SGD and AdamW

L2_STEP = Formula("w - eta*(g + lamda*w)")
DECAY_STEP = Formula("(1 - eta*lamda)*w - eta*g")
DECOUPLED = Formula("(1 - eta*lamda)*w")
#: AdamW's weight without data after T steps, the decoupled decay's closed form
GEOMETRIC = Formula("(1 - eta*lamda)**T")
#: the SGD rules' check: the steps of the run they are evaluated on
RULE_STEPS = 300

# ------------------------------------------------------------------------------------------
# 1. L2 in SGD is a multiplicative decay

DECAY_TEXT = kit.Prose(
    """
Add the penalty $(\\lambda/2)\\|w\\|^2$ to a loss (item 85) and its gradient gains λw. One SGD
step becomes

$$w \\leftarrow {{rule_l2}} = {{rule_decay}}:$$

before following the data's gradient, every weight is multiplied by ${{f:decay_factor}}$. That is
why the penalty is called weight decay: without a data gradient a weight shrinks
geometrically, by the factor ${{f:decay_factor}}$ per step, towards zero. For plain SGD the two
descriptions are the same algorithm, and descentlab's `SGD` implements `weight_decay` as the
added gradient. The build runs it (η = {{lr}}, λ = {{decay}}) beside SGD on the loss plus the
penalty, differentiated by autograd, on a random least-squares problem: over {{steps}} steps
the two never differ by more than {{diff}}.

Where does the decayed iteration end? Its fixed point solves $\\nabla L(w) + \\lambda w = 0$, for
least squares $(A^\\top A/N + \\lambda I) w = A^\\top y/N$: ridge regression. After {{long}} steps
descentlab's iterate is within {{to_ridge}} of the closed form. Write the data's covariance
$A^\\top A/N$ in its eigenbasis with eigenvalues $\\sigma_i$: the unpenalised solution's component
along direction i is multiplied by

$${{f:shrink}}.$$

Directions the data pin down firmly (large $\\sigma_i$) keep their value, directions the data
barely see (small $\\sigma_i$, where noise dominates the estimate) are shrunk towards zero. The
penalty is a statement about which directions to trust.""",
    diff="SGD(weight_decay) against SGD on the penalised loss: their largest difference is 0",
    to_ridge="the decayed iterate's distance to the ridge solution is 0",
)


def _sgd_pair() -> tuple[float, float]:
    """descentlab's SGD with ``weight_decay`` against SGD on the loss plus ``λ‖w‖²/2``
    (autograd), 100 steps on a random least-squares problem: the largest difference, and the
    distance of the first to the ridge solution after many more steps."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(40, 5, dtype=torch.float64, generator=g)
    y = torch.randn(40, dtype=torch.float64, generator=g)
    w1 = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    w2 = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    o1, o2 = optim.SGD([w1], lr=LR, weight_decay=DECAY), optim.SGD([w2], lr=LR)
    diff = 0.0
    for t in range(LONG):
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


def _decay(ctx: Context, n: kit.Numbers) -> Part:
    diff, to_ridge = ctx.memo(("chapter", "regularization", "sgd"), _sgd_pair)
    text = DECAY_TEXT.fill(
        n,
        rule_l2=L2_STEP.tex,
        rule_decay=DECAY_STEP.tex,
        lr=f"{LR:g}",
        decay=f"{DECAY:g}",
        steps=str(STEPS),
        long=str(LONG),
        diff=kit.Twin(diff, 0.0, 1e-12, 2, rel=False),
        to_ridge=kit.Twin(to_ridge, 0.0, 1e-8, 2, rel=False),
    )
    bound = said(text, "the two never differ by more than", diff <= 1e-12,
                 f"largest difference {diff:.2g} over {STEPS} steps", "≤ 1e-12")  # fmt: skip
    title = "In SGD an L2 penalty is a multiplicative decay"
    return Part("decay", title, [text, [*_rule_checks(), bound]])


def _rule_checks() -> list[Check]:
    """The two SGD steps as the page shows them (:data:`L2_STEP`, :data:`DECAY_STEP`),
    evaluated at each step against descentlab's SGD(weight_decay), on a gradient that turns."""
    sgd = kit.iterates(lambda p: optim.SGD(p, lr=LR, weight_decay=DECAY), kit.wavy, 1.0,
                       RULE_STEPS)  # fmt: skip
    return [
        kit.rule_check(
            f"{what} as the page shows it, on a gradient that turns (η = {LR:g}, λ = {DECAY:g})",
            kit.rule_iterates(
                lambda st, g, t, rule=rule: {"w": rule(w=st["w"], eta=LR, lamda=DECAY, g=g)},
                kit.wavy, 1.0, RULE_STEPS,
            ),
            sgd,
        )
        for what, rule in (("the penalised step", L2_STEP), ("the decayed step", DECAY_STEP))
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------
# 2. the bias-variance trade-off as λ moves

TRADEOFF = kit.Prose(
    """
What the shrinkage buys shows in the classic experiment of items 62, 63 and 66. Fit a
polynomial of degree {{degree}} (in Legendre features, so that the fit is well conditioned) to
{{n_train}} noisy samples of $\\sin(\\pi x)$ on [-1, 1], noise σ = {{noise}}, by ridge regression
at several λ, and measure the error on the noise-free function at {{n_test}} test points;
average over {{draws}} draws of the training set. {{coefs}} coefficients for {{n_train}}
points: without a penalty the polynomial threads through the noise. Every number below is
computed twice, by the normal equations and by least squares on the augmented system
$[A; \\sqrt{N\\lambda}\\, I]\\, w \\approx [y; 0]$ (an SVD), and the two agree.

At λ = 0 the training error is {{tr0}}, below the noise's variance σ² = {{var}}, and the test
error huge: overfitting, variance. As λ grows the training error rises monotonically, {{tr0}} to
{{trL}}, because the fit is ever less free. The test error first falls, to {{te_best}} at λ =
{{best}}, then {{rises}} again as the shrinkage starts to remove signal along with noise, to
{{te1}} at λ = 1: underfitting, bias. (At λ = 0 the mean test error, {{te0}}, is dominated by a
few draws whose unpenalised fit is nearly singular; the best λ fits the truth better than λ = 0
in {{wins}} of the {{draws}} draws.) The gap between test and train errors shrinks all along; it
even turns negative, because the training error is measured against the noisy labels and so
includes their variance, {{var}}, while the test error is measured against the noise-free
function. This is the bias–variance decomposition of item 66 made visible: λ trades variance for
bias, and the best λ is where their sum is smallest. Choosing it needs data the fit did not see:
the cross-validation of item 64, which the generalization chapter takes apart.""",
    coefs="the features' count is degree + 1",
    tr0="λ = 0: the training error, against the SVD solver",
    trL="λ = 1: the training error, against the SVD solver",
    te_best="the best λ's test error, against the SVD solver",
    te1="λ = 1: the test error, against the SVD solver",
    te0="λ = 0: the test error, against the SVD solver",
    wins="draws where the best λ beats λ = 0, by the SVD solver",
    var="σ², against the variance of a million draws",
)


def _tradeoff(ctx: Context, n: kit.Numbers) -> Part:
    fits = ctx.memo(("chapter", "regularization", "fits"), _fits)
    twin = ctx.memo(("chapter", "regularization", "fits-lstsq"), lambda: _fits(_ridge_lstsq))
    best = min(LAMBDAS, key=lambda lam: fits[lam][1])
    train = [fits[lam][0] for lam in LAMBDAS]
    wins = sum(b < a for a, b in zip(fits[0.0][2], fits[best][2], strict=True))
    wins2 = sum(b < a for a, b in zip(twin[0.0][2], twin[best][2], strict=True))
    noise = np.random.default_rng(1).standard_normal(1_000_000) * NOISE
    text = TRADEOFF.fill(
        n,
        degree=str(DEGREE),
        n_train=str(N_TRAIN),
        noise=f"{NOISE:g}",
        n_test=str(N_TEST),
        draws=str(DRAWS),
        best=f"{best:g}",
        coefs=(_features(np.zeros(1)).shape[1], DEGREE + 1, 0),
        tr0=(fits[0.0][0], twin[0.0][0], 1e-4),
        trL=(train[-1], twin[1.0][0], 1e-6),
        te_best=(fits[best][1], twin[best][1], 1e-6),
        te1=(fits[1.0][1], twin[1.0][1], 1e-6),
        rises=word(fits[1.0][1], fits[best][1], "rises"),
        te0=(fits[0.0][1], twin[0.0][1], 1e-3),
        wins=(wins, wins2, 0),
        var=(NOISE**2, float(noise.var()), 0.01, 2),
    )
    rows = [[lam, tr, te, te - tr] for lam, (tr, te, _) in fits.items()]
    checks = [
        ck(
            "the training error rises with λ",
            all(a <= b for a, b in itertools.pairwise(train)),
            ", ".join(f"{v:.3g}" for v in train),
            "increasing",
        ),
        said(
            text,
            "The gap between test and train errors shrinks all along",
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
    ]
    table = Table(
        ["λ", "train error", "test error", "gap"],
        rows,
        f"ridge on degree-{DEGREE} Legendre features, {N_TRAIN} noisy samples of sin(πx), "
        f"mean of {DRAWS} draws",
    )
    return Part("tradeoff", "The bias–variance trade-off as λ moves", [text, table, checks])


# ------------------------------------------------------------------------------------------
# 3. Adam: L2 is not weight decay

ADAMW = kit.Prose(
    """
In an adaptive method the two descriptions part ways, and this is the point of AdamW (item
85's decoupled form, Loshchilov and Hutter). Adam with an L2 penalty adds λw to the gradient
and then divides by the root of the second moment: a weight whose gradient is large gets its
decay divided by a large number, a weight whose gradient is small gets the full decay
amplified. Decoupled weight decay applies $w \\leftarrow {{rule_decoupled}}$ outside the
adaptive division, the same relative decay for every weight, as in SGD.

The cleanest contrast is a weight with no data gradient at all. With the L2 penalty its only
gradient is λw, and Adam normalises it: the first steps are about η whatever λ is, so the
weight first falls by a constant amount per step, not a constant fraction (later the steps
shrink, as the second moment remembers the larger gradients of the start). descentlab's
`Adam` (η = {{lr}}, weight decay {{decay}}) moves the weight from 1 to {{coupled}} in {{steps}}
steps, a first step of exactly {{first}}. `AdamW` with the same numbers multiplies by
${{f:decay_factor}}$ each step and ends at {{decoupled}}, which is ${{rule_geometric}}$ =
{{geometric}}. In a network, the L2 form lets a weight with small, noisy gradients be pulled to
zero fast while weights with large gradients are barely regularized; the decoupled form treats
them alike, and its λ means the same thing whatever the gradient scale (the reason its authors
give for λ transferring better between settings).""",
    coupled="Adam + L2: the weight after T steps, against Kingma and Ba's loop with λw",
    first="Adam + L2: the first step is η",
    decoupled="AdamW: the weight after T steps is (1 - ηλ)^T",
    geometric="(1 - ηλ)^T, against the decay applied step by step",
)


def _pure_decay(decoupled: bool) -> list[float]:
    """A weight of 1 under Adam with weight decay and no data gradient: its value at each step
    (``decoupled``: AdamW's decay, else an L2 term added to the gradient)."""
    w = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = (optim.AdamW if decoupled else optim.Adam)([w], lr=ADAM_LR, weight_decay=ADAM_DECAY)
    out = [1.0]
    for _ in range(ADAM_STEPS):
        w.grad = torch.zeros_like(w)
        opt.step()
        out.append(float(w.detach()))
    return out


def _decoupled_rule() -> list[float]:
    """The weight at each step under the decoupled decay as the page shows it
    (:data:`DECOUPLED`), from 1: AdamW without data, whose Adam update is 0/(0 + ε) = 0."""
    rule = [1.0]
    for _ in range(ADAM_STEPS):
        rule.append(DECOUPLED(w=rule[-1], eta=ADAM_LR, lamda=ADAM_DECAY))
    return rule


def _adamw(ctx: Context, n: kit.Numbers) -> Part:
    coupled, decoupled = _pure_decay(False), _pure_decay(True)
    geometric = GEOMETRIC(eta=ADAM_LR, lamda=ADAM_DECAY, T=ADAM_STEPS)
    paper = ref.adam(np.ones(1), lambda w: ADAM_DECAY * w, ADAM_LR, 0.9, 0.999, 1e-8, ADAM_STEPS)[
        :, 0
    ]
    rule = _decoupled_rule()
    w = rule[-1]
    text = ADAMW.fill(
        n,
        rule_decoupled=DECOUPLED.tex,
        rule_geometric=GEOMETRIC.tex,
        lr=f"{ADAM_LR:g}",
        decay=f"{ADAM_DECAY:g}",
        steps=str(ADAM_STEPS),
        coupled=(coupled[-1], paper[-1]),
        first=(1 - coupled[1], ADAM_LR, 1e-6),
        decoupled=(decoupled[-1], geometric, 1e-9, 4),
        geometric=(geometric, w, 1e-12, 4),
    )
    rows = [
        [t, coupled[t], decoupled[t], (1 - ADAM_LR * ADAM_DECAY) ** t]
        for t in range(0, ADAM_STEPS + 1, ADAM_STEPS // 4)
    ]
    checks = [
        kit.rule_check(
            "AdamW's decoupled decay as the page shows it, with no data gradient",
            rule[1:],
            decoupled[1:],
        ),
        ck(
            "Adam + L2 shrinks the weight far more than AdamW here",
            coupled[-1] < decoupled[-1] - 0.5,
            f"{coupled[-1]:.3g}",
            f"< {decoupled[-1]:.3g}",
        ),
    ]
    table = Table(
        ["step t", "Adam + L2", "AdamW", "(1 - ηλ)^t"],
        rows,
        f"a weight of 1 with no data gradient, η = {ADAM_LR}, λ = {ADAM_DECAY}",
    )
    return Part("adamw", "In Adam, an L2 penalty is not weight decay", [text, table, checks])


# ------------------------------------------------------------------------------------------
# 4. the figure to move: a ridge fit computed in the page

MOVE = kit.Prose(
    """
Move λ over one draw of the training set (seed {{seed}} of numpy's generator, one that overfits
without a penalty, as most draws do): the page solves the ridge system of that draw itself,
the normal equations by Gaussian elimination at every position of the slider, and draws the
fit. At 0 the polynomial wiggles through every sample and swings away from the truth between
them; near
λ = {{best}} it follows $\\sin(\\pi x)$ closely; at 1 it is flattened towards zero and misses the
peaks. The readout gives the fit's error against the truth, which the build's numpy solution
reproduces at the probes.""",
)

MOVE_JS = """function (p) {
  var x = p.x, y = p.y, D = p.D, n = x.length, xs = [], grid = 200;
  function leg(t) {
    var P = [1, t];
    for (var k = 1; k < D; k++) P.push(((2 * k + 1) * t * P[k] - k * P[k - 1]) / (k + 1));
    return P;
  }
  var A = seq(D + 1).map(function () { return seq(D + 1).map(function () { return 0; }); });
  var b = seq(D + 1).map(function () { return 0; });
  for (var i = 0; i < n; i++) {
    var f = leg(x[i]);
    for (var r = 0; r <= D; r++) {
      b[r] += f[r] * y[i] / n;
      for (var c = 0; c <= D; c++) A[r][c] += f[r] * f[c] / n;
    }
  }
  for (var d = 0; d <= D; d++) A[d][d] += p.lam;
  var w = solve(A, b), fit = [], truth = [], err = 0, T = 500;
  function at(t) { var f = leg(t), s = 0; for (var k = 0; k <= D; k++) s += f[k] * w[k]; return s; }
  for (var g = 0; g <= grid; g++) {
    var t = -1 + 2 * g / grid;
    xs.push(t); fit.push(at(t)); truth.push(Math.sin(Math.PI * t));
  }
  for (var j = 0; j < T; j++) {
    var u = -1 + 2 * j / (T - 1), e = at(u) - Math.sin(Math.PI * u);
    err += e * e / T;
  }
  return {panels: [{x: {label: 'x', min: -1, max: 1}, y: {label: 'y', min: -2, max: 2},
    lines: [{x: xs, y: truth, label: 'sin(πx), the truth', colour: '#999999'},
            {x: xs, y: fit, label: 'ridge fit, λ = ' + fmt(p.lam)},
            {x: x, y: y, label: 'the noisy samples', colour: '#0072B2', dots: true}]}],
    values: {test: err}, text: 'error against the truth at 500 points: ' + fmt(err)};
}"""


def _move(ctx: Context, n: kit.Numbers) -> Part:
    fits = ctx.memo(("chapter", "regularization", "fits"), _fits)
    best = min(LAMBDAS, key=lambda lam: fits[lam][1])
    rng = np.random.default_rng(SHOWN_SEED)
    x = rng.uniform(-1, 1, N_TRAIN)
    y = np.sin(np.pi * x) + NOISE * rng.standard_normal(N_TRAIN)
    xt = np.linspace(-1, 1, N_TEST)

    def err(lam: float) -> float:
        return float(
            np.mean((_features(xt) @ _ridge(_features(x), y, lam) - np.sin(np.pi * xt)) ** 2)
        )

    probes = [Probe({"lam": lam}, {"test": err(lam)}, 1e-6) for lam in (1e-3, 1e-2, 1.0)]
    shown = [err(lam) for lam in LAMBDAS]
    fig = Live(
        "Move λ: a degree-9 ridge fit to 20 noisy samples, solved in the page, and the truth.",
        [Slider("lam", "λ", 1e-6, 1.0, best, log=True)],
        MOVE_JS,
        probes,
        against="the build's numpy solution",
        constants={"x": [float(v) for v in x], "y": [float(v) for v in y], "D": DEGREE},
    )
    checks = [
        ck(
            "on the draw shown, the table's best λ fits the truth better than λ = 0 and λ = 1",
            shown[LAMBDAS.index(best)] < min(shown[0], shown[-1]),
            f"{shown[LAMBDAS.index(best)]:.3g}",
            f"< {min(shown[0], shown[-1]):.3g}",
        )
    ]
    text = MOVE.fill(
        n,
        seed=str(SHOWN_SEED),
        best=f"{best:g}",
    )
    return Part(
        "move", "Move λ: from threading the noise to missing the signal", [text, fig, checks]
    )


# ------------------------------------------------------------------------------------------
# 5. from scratch, and a real training run

_scratch = kit.scratch(
    text="""
Both forms of decay from scratch, in plain torch: SGD with the penalty's gradient added, and
AdamW, Adam with the decay applied to the weights before the adaptive step. The build runs
them next to descentlab's `SGD(weight_decay=...)` and `AdamW` on a least-squares problem and
checks that every iterate is the same.""",
    code="""\
import torch
from descentlab import optim

"""
    + kit.LEAST_SQUARES
    + """

def sgd_l2(w, lr, lam, steps):
    path = []
    for _ in range(steps):
        w = w - lr * (grad(w) + lam * w)                # = (1 - lr lam) w - lr g
        path.append(w)
    return torch.stack(path)

def adamw(w, lr, lam, steps, b1=0.9, b2=0.999, eps=1e-8):
    m, v, path = torch.zeros_like(w), torch.zeros_like(w), []
    for t in range(1, steps + 1):
        g = grad(w)
        w = w * (1 - lr * lam)                          # the decay, outside the division
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
        path.append(w)
    return torch.stack(path)

"""
    + kit.least_squares_path("steps")
    + """

w0 = torch.zeros(5, dtype=torch.float64)
mine = torch.cat([sgd_l2(w0, 0.1, 0.5, 100), adamw(w0, 0.01, 0.1, 100)])
library = torch.cat([
    descentlab_path(lambda p: optim.SGD(p, lr=0.1, weight_decay=0.5), 100),
    descentlab_path(lambda p: optim.AdamW(p, lr=0.01, weight_decay=0.1), 100)])
print("AdamW after 100 steps, mine:", [round(v, 6) for v in mine[-1].tolist()])
print("                 descentlab:", [round(v, 6) for v in library[-1].tolist()])
print(f"largest relative difference: {((mine - library).abs() / library.abs().max()).max():.1e}")
""",
    what="SGD with an L2 penalty and AdamW from scratch give "
    "descentlab's SGD(weight_decay) and AdamW iterates (100 steps each)",
)

TRAINING = kit.Prose(
    """
On a network the difference between the two forms is not subtle. The figure trains
descentlab's default MNIST-1D model with mini-batches of 64 for {{steps}} steps three ways:
`Adam` at η = {{lr}} without decay, `Adam` with an L2 penalty of {{decay}} (its `weight_decay`),
and `AdamW` with the same {{decay}}. The L2 penalty's gradient, normalised by Adam like any
other, dominates every weight whose data gradient is small, and drags the whole network
towards zero: its training loss stays at the chance level $\\ln 10$ and its weights' norm
collapses. AdamW at the same λ decays each weight by the same factor ${{f:decay_factor}}$ per step,
trains like Adam, and ends with slightly smaller weights, the regularization it was asked
for.""",
)


def _norm(result) -> float:
    return float(sum((p.detach().double() ** 2).sum() for p in result.model.parameters()) ** 0.5)


def _training(ctx: Context, n: kit.Numbers) -> Part:
    base = {
        "problem": "mnist1d",
        "batch_size": 64,
        "steps": TRAIN_STEPS,
        "eval_every": 25,
        "seed": 0,
    }
    runs = {
        f"Adam, η = {TRAIN_LR:g}": {**base, "optimizer": "adam", "hyper": {"lr": TRAIN_LR}},
        f"Adam + L2 {TRAIN_DECAY:g}": {
            **base,
            "optimizer": "adam",
            "hyper": {"lr": TRAIN_LR, "weight_decay": TRAIN_DECAY},
        },
        f"AdamW, λ = {TRAIN_DECAY:g}": {
            **base,
            "optimizer": "adamw",
            "hyper": {"lr": TRAIN_LR, "weight_decay": TRAIN_DECAY},
        },
    }
    fig, res = kit.training_run(ctx, "regularization", runs, "MNIST-1D")
    (adam, l2, w) = res.values()
    checks = [
        ck(
            "Adam + L2 collapses: its final training loss is within 1 % of ln 10 and its weights' "
            "norm below a tenth of AdamW's",
            abs(kit.final(l2, "train/loss") / np.log(10) - 1) < 0.01 and _norm(l2) < 0.1 * _norm(w),
            f"{kit.final(l2, 'train/loss'):.4g}; {_norm(l2):.3g}",
            f"≈ {np.log(10):.4g}; < {0.1 * _norm(w):.3g}",
        ),
        ck(
            "AdamW trains like Adam (final loss within 25 %) with a smaller weights' norm",
            0.8 < kit.final(w, "train/loss") / kit.final(adam, "train/loss") < 1.25
            and _norm(w) < _norm(adam),
            f"{kit.final(w, 'train/loss'):.4g}; {_norm(w):.4g}",
            f"≈ {kit.final(adam, 'train/loss'):.4g}; < {_norm(adam):.4g}",
        ),
    ]
    text = TRAINING.fill(
        n,
        steps=str(TRAIN_STEPS),
        lr=f"{TRAIN_LR:g}",
        decay=f"{TRAIN_DECAY:g}",
    )
    table = kit.results_table(
        res,
        "descentlab's engine (train), MNIST-1D, batches of 64, seed 0",
        "train/loss",
        "test/accuracy",
        ("weights' norm", _norm),
    )
    return Part(
        "training", "A real training run: L2 in Adam against AdamW", [text, fig, table, checks]
    )


KEEP = """
What to keep. In SGD an L2 penalty and weight decay are one rule, the decayed step of the
first section, ending at the ridge solution that shrinks each
eigen-direction by ${{f:shrink}}$; λ trades variance for bias, and the best λ is
found on held-out data; in Adam the penalty's gradient is normalised like any other, so
decoupled decay (AdamW) is a different, and usually better behaved, regularizer: on a network
the L2 form can drag every weight to zero at a λ where AdamW barely acts."""

#: the chapter's exercises (:mod:`descentlab.book.chapters.practice`)
EXERCISES = practice.REGULARIZATION

CHAPTER = kit.Chapter(
    "deep-regularization",
    "Regularization and weight decay, in depth",
    "What an L2 penalty does to each step and to the solution, the bias–variance trade-off it "
    "controls, and why Adam needs its weight decay decoupled: derived, and measured with "
    "descentlab's SGD, Adam and AdamW, written from scratch, and trained on MNIST-1D.",
    (62, 63, 64, 65, 66, 83, 85),
    (
        LR,
        DECAY,
        STEPS,
        LONG,
        DEGREE,
        N_TRAIN,
        N_TEST,
        DRAWS,
        NOISE,
        *LAMBDAS,
        ADAM_LR,
        ADAM_DECAY,
        ADAM_STEPS,
        SHOWN_SEED,
        TRAIN_LR,
        TRAIN_DECAY,
        TRAIN_STEPS,
        64,
        1,
        2,
    ),
    (_decay, _tradeoff, _adamw, _move, _scratch, _training),
    KEEP,
    EXERCISES,
)
