"""The book's teaching sentences bound to the runs that show them.

A :class:`Claim` is a sentence that teaches -- a card's explanation, a definition, a "What to
keep" line, what a cell prints -- held as two phrases, the one the page says and its opposite,
with a small instrumented run (its *demonstration*) that measures which of the two is true:
where Nesterov's loop takes its gradient, whether AdaGrad's effective rate falls, which
noise's negative log-likelihood is the squared error, which ensemble lowers which part of the
error, where SGD ends for a small and a large batch. :meth:`Claim.check` is a check row: ✔
when the page holds the phrase the run bears out and not its opposite, ✘ otherwise -- so a
page that says the opposite is a ✘, and so is a run that measures the opposite.

Every claim is in :data:`CLAIMS` and names its home, the page its sentence is written on (a
card, or a chapter with its exercises and "What to keep"; a lecture exercise's hint is read on
the card of the item it practises). A page gets the rows of the claims whose phrase or
opposite it holds and of every claim at home there, whatever it says (:func:`claim_checks`):
a sentence reworded into neither phrase is ✘ too. The teaching sentences nothing can back are
in :data:`UNBACKED` with why; :mod:`descentlab.book.teaching` counts every teaching sentence
by kind and holds every one of them to a claim, a reading, a check row or :data:`UNBACKED`;
:func:`backed_share` counts the "What to keep" lines alone.

Example:
    >>> [c.status for c in claim_checks("AdaGrad: its rate decays as 1/√t.")]
    ['ok']
    >>> [c.status for c in claim_checks("AdaGrad: its rate grows as √t.")]
    ['fail']
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from descentlab.book import card_claims, hint_claims, keep_claims
from descentlab.book.checks import ck
from descentlab.book.checks import shows as _shows
from descentlab.book.render.pages import Check

__all__ = [
    "CLAIMS",
    "UNBACKED",
    "Claim",
    "backed_share",
    "claim_checks",
    "teaching_sentences",
    "unbacked_count",
]


@dataclass(frozen=True)
class Claim:
    """A teaching sentence and the run that shows it.

    Attributes:
        name: a short id.
        said: the phrase the page holds when the run bears it out.
        opposite: the phrase that says the contrary (a page holding it is ✘ while the run
            bears ``said`` out; the page must hold it when the run measures it).
        demo: the demonstration: ``(holds, measured)``, ``holds`` true when the run bears
            ``said`` out, ``measured`` what it measured, in words; what it measures, in
            words, is its ``shows`` (:func:`_shows`), the check's text.
        home: where the sentence is written (``item 65``: a card; ``deep-batch``: a
            chapter, its prose, exercises or "What to keep"): the claim's row is on that page
            whatever the page says -- a sentence reworded into neither phrase is ✘ there.
    """

    name: str
    said: str
    opposite: str
    demo: Callable[[], tuple[bool, str]]
    home: str = ""

    @property
    def shows(self) -> str:
        """What the demonstration measures, in words (the check's text; :func:`_shows`)."""
        return getattr(self.demo, "shows", self.demo.__name__)

    def on(self, text: str) -> bool:
        """Whether ``text`` holds this claim's phrase or its opposite."""
        plain = _plain(text)
        return self.said in plain or self.opposite in plain

    def check(self, text: str) -> Check:
        """The row that reads this claim on ``text`` against its demonstration."""
        holds, measured = _run(self.name)
        plain = _plain(text)
        right, wrong = (self.said, self.opposite) if holds else (self.opposite, self.said)
        ok = right in plain and wrong not in plain
        page = wrong if wrong in plain else right if right in plain else "neither phrase"
        return ck(
            f'{self.shows} (the page says "{page}")', ok, measured, f'the page says "{right}"'
        )


def _plain(text: str) -> str:
    return " ".join(text.replace("*", "").replace("`", "").split())


@functools.cache
def _run(name: str) -> tuple[bool, str]:
    """A claim's demonstration, run once per process (the runs are tiny and deterministic)."""
    return _BY_NAME[name].demo()


# ------------------------------------------------------------------------------------------
# the demonstrations (float64 numpy, a few milliseconds each)


_Demo = Callable[[], tuple[bool, str]]


@_shows("the Nesterov loop's gradient, instrumented, is taken at w + βv")
def _nesterov_point() -> tuple[bool, str]:
    """The book's Nesterov loop (:func:`~descentlab.book.reference.lookahead_nesterov`, held
    to descentlab's Nesterov by the momentum chapter's formula checks) with its gradient
    instrumented: the point each gradient is taken at, against the iterate and the
    look-ahead point w + βv."""
    from descentlab.book.reference import lookahead_nesterov

    h, beta, lr = np.array([1.0, 10.0]), 0.9, 0.05
    taken: list[np.ndarray] = []

    def grad(w: np.ndarray) -> np.ndarray:
        taken.append(w.copy())
        return h * w

    path = lookahead_nesterov(np.array([1.0, 1.0]), grad, lr, beta, 6)
    ahead = [path[t] + beta * (path[t] - path[t - 1]) for t in range(1, 6)]
    off_ahead = max(float(np.abs(taken[t] - ahead[t - 1]).max()) for t in range(1, 6))
    off_here = min(float(np.abs(taken[t] - path[t]).max()) for t in range(1, 6))
    holds = off_ahead < 1e-12 < off_here
    return holds, f"gradient points off w + βv by {off_ahead:.1e}, off w by ≥ {off_here:.2g}"


@_shows("descentlab's Adagrad's effective rate on a constant gradient falls at every step")
def _adagrad_rate() -> tuple[bool, str]:
    """descentlab's Adagrad on the slope L(w) = w: the effective rate |Δw|/|g| at each step."""
    import torch

    from descentlab.optim import Adagrad

    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = Adagrad([w], lr=0.1)
    rates, prev = [], 0.0
    for _ in range(50):
        opt.zero_grad()
        w.sum().backward()
        opt.step()
        rates.append(abs(float(w.detach()) - prev))
        prev = float(w.detach())
    falls = all(b < a for a, b in itertools.pairwise(rates))
    return falls, f"effective rate {rates[0]:.3g} at step 1, {rates[-1]:.3g} at step 50"


@_shows(
    "descentlab's RMSprop's effective rate on a constant gradient is the same at steps 200 and 400"
)
def _rmsprop_rate() -> tuple[bool, str]:
    """descentlab's RMSprop on the slope L(w) = w: the effective rate after its average fills
    (steps 200 and 400), against AdaGrad's that keeps falling."""
    import torch

    from descentlab.optim import RMSprop

    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = RMSprop([w], lr=0.01, alpha=0.9)
    moves = []
    for _ in range(400):
        before = float(w.detach())
        opt.zero_grad()
        w.sum().backward()
        opt.step()
        moves.append(abs(float(w.detach()) - before))
    kept = abs(moves[399] - moves[199]) < 1e-6 * moves[199]
    return kept, f"effective rate {moves[199]:.4g} at step 200, {moves[399]:.4g} at step 400"


@_shows("descentlab's Gaussian NLL is r²/2 plus a constant, the Laplace NLL |r| plus one")
def _nll_shapes() -> tuple[bool, str]:
    """descentlab's Gaussian and Laplace negative log-likelihoods at residuals r: which one
    is r²/2 plus a constant (the L2 loss) and which |r| plus a constant (L1)."""
    import torch

    from descentlab import losses

    r = torch.linspace(-3, 3, 13, dtype=torch.float64)
    zero = torch.zeros_like(r)

    def spread(family: str, shape: torch.Tensor) -> float:
        nll = losses.nll(family, scale=1.0, reduction="none")(zero, r)
        return float((nll - shape).max() - (nll - shape).min())

    g_l2, l_l1 = spread("normal", r**2 / 2), spread("laplace", r.abs())
    g_l1 = spread("normal", r.abs())
    holds = g_l2 < 1e-9 and l_l1 < 1e-9 < g_l1
    return holds, (
        f"Gaussian NLL - r²/2 varies by {g_l2:.1e}, Laplace NLL - |r| by {l_l1:.1e}, "
        f"Gaussian NLL - |r| by {g_l1:.2g}"
    )


_Y = np.array([1.0, 2.0, 3.0, 4.0, 100.0])  # the card's data: one outlier


def _best_constants() -> tuple[float, float]:
    """The constants that minimise descentlab's Gaussian (L2) and Laplace (L1) negative
    log-likelihoods on :data:`_Y`, by a grid search (the card's cell, finer)."""
    import torch

    from descentlab import losses

    y = torch.tensor(_Y)
    c = torch.linspace(0, 50, 5001, dtype=torch.float64)
    best = []
    for family in ("normal", "laplace"):
        nll = losses.nll(family, scale=1.0, reduction="none")
        values = nll(c[:, None].expand(-1, len(_Y)), y.expand(len(c), -1)).sum(1)
        best.append(float(c[values.argmin()]))
    return best[0], best[1]


@_shows("the best constants under L2 and L1 on the card's data, against its mean and median")
def _mean_median() -> tuple[bool, str]:
    """The best constants under L2 and L1 against the data's mean and median."""
    l2, l1 = _best_constants()
    mean, median = float(_Y.mean()), float(np.median(_Y))
    holds = abs(l2 - mean) < 0.01 and abs(l1 - median) < 0.01
    return holds, f"L2's best constant {l2:.2f} (mean {mean:g}), L1's {l1:.2f} (median {median:g})"


@_shows("the card's outlier moves L2's best constant more than ten times as far as L1's")
def _outlier_pull() -> tuple[bool, str]:
    """How far the outlier pulls each best constant from the fit without it."""
    l2, l1 = _best_constants()
    clean = _Y[:-1]
    pull2, pull1 = abs(l2 - clean.mean()), abs(l1 - np.median(clean))
    return pull2 > 10 * pull1, f"the outlier moves L2's fit by {pull2:.3g}, L1's by {pull1:.3g}"


@_shows("the variance of an average of M errors correlated by ρ falls towards ρσ², not 0")
def _averaged_variance() -> tuple[bool, str]:
    """The variance of the average of M errors that correlate by ρ = 0.3, M = 1 and 400:
    which part shrinks with M and which stays (the exact formula, no sampling)."""
    rho = 0.3
    var = {m: rho + (1 - rho) / m for m in (1, 400)}
    holds = var[400] < var[1] and abs(var[400] - rho) < 0.01
    return holds, f"variance {var[1]:.3g} at M = 1, {var[400]:.4g} at M = 400 (ρσ² = {rho:g})"


def _truth(x: np.ndarray) -> np.ndarray:
    return np.sin(2 * x)


def _fits(fit: Callable[[np.ndarray, np.ndarray, np.random.Generator], Callable], n: int = 40,
          sets: int = 60, seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """Squared bias and variance of ``fit`` over ``sets`` training sets of ``n`` noisy points
    of :func:`_truth`, on a test grid (the decomposition of the expected squared error)."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(-1.5, 1.5, 61)
    preds = []
    for _ in range(sets):
        x = rng.uniform(-1.5, 1.5, n)
        y = _truth(x) + 0.3 * rng.standard_normal(n)
        preds.append(fit(x, y, rng)(grid))
    p = np.asarray(preds)
    bias2 = float(((p.mean(0) - _truth(grid)) ** 2).mean())
    return bias2, float(p.var(0).mean())


def _nearest(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Callable:
    """The 1-nearest-neighbour regressor: a model of low bias and high variance."""
    return lambda g: y[np.abs(g[:, None] - x[None]).argmin(1)]


def _bagged(base: Callable, bags: int = 15) -> Callable:
    def fit(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Callable:
        models = []
        for _ in range(bags):
            i = rng.integers(0, len(x), len(x))
            models.append(base(x[i], y[i], rng))
        return lambda g: np.mean([m(g) for m in models], axis=0)

    return fit


def _stump(x: np.ndarray, r: np.ndarray) -> Callable:
    """The least-squares one-split stump on ``x`` for the targets ``r``."""
    order = np.argsort(x)
    xs, rs = x[order], r[order]
    cum = np.cumsum(rs)
    k = np.arange(1, len(x))
    left, right = cum[:-1] / k, (cum[-1] - cum[:-1]) / (len(x) - k)
    gain = k * left**2 + (len(x) - k) * right**2
    j = int(gain.argmax())
    cut, a, b = (xs[j] + xs[j + 1]) / 2, left[j], right[j]
    return lambda g: np.where(g <= cut, a, b)


def _boosted(rounds: int, shrink: float = 0.5) -> Callable:
    def fit(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Callable:
        stumps, r = [], y - y.mean()
        for _ in range(rounds):
            s = _stump(x, r)
            stumps.append(s)
            r = r - shrink * s(x)
        return lambda g: y.mean() + shrink * sum(s(g) for s in stumps)

    return fit


@functools.cache
def _ensembles() -> dict[str, tuple[float, float]]:
    """(bias², variance) of the 1-nearest-neighbour regressor, its bagged average, one stump and 30
    boosted stumps."""
    one_stump = _boosted(1, 1.0)
    return {
        "nearest": _fits(_nearest),
        "bagged": _fits(_bagged(_nearest)),
        "stump": _fits(one_stump),
        "boosted": _fits(_boosted(30)),
    }


@_shows(
    "bias² and variance over 60 training sets: bagging 1-nearest-neighbour fits lowers the "
    "variance, boosting 30 stumps lowers the bias²"
)
def _ensemble_errors() -> tuple[bool, str]:
    """Bagging against its base model, boosting against one stump: which of bias² and
    variance each lowers the more."""
    e = _ensembles()
    (pb, pv), (bb, bv), (sb, sv), (ob, ov) = (e[k] for k in ("nearest", "bagged", "stump",
                                                               "boosted"))  # fmt: skip
    bag_var, bag_bias = pv - bv, pb - bb
    boost_bias, boost_var = sb - ob, sv - ov
    holds = bag_var > abs(bag_bias) and boost_bias > boost_var
    return holds, (
        f"bagging: variance {pv:.3g} → {bv:.3g}, bias² {pb:.3g} → {bb:.3g}; "
        f"boosting: bias² {sb:.3g} → {ob:.3g}, variance {sv:.3g} → {ov:.3g}"
    )


@_shows(
    "a constant fit over many training sets: the average's distance from the truth stays as n "
    "grows, the scatter shrinks; together they are the expected error"
)
def _bias_variance_names() -> tuple[bool, str]:
    """A constant fit on many training sets: the distance of its average prediction from the
    truth (what "bias" names) stays when the sets grow, the scatter of its predictions around
    their average (what "variance" names) shrinks -- and the decomposition's sum matches the
    expected squared error measured directly."""
    rng = np.random.default_rng(1)
    grid = np.linspace(-1.5, 1.5, 61)
    out = {}
    for n in (10, 1000):
        preds, errs = [], []
        for _ in range(200):
            x = rng.uniform(-1.5, 1.5, n)
            y = _truth(x) + 0.3 * rng.standard_normal(n)
            c = np.full_like(grid, y.mean())
            preds.append(c)
            errs.append(((c - _truth(grid)) ** 2).mean())
        p = np.asarray(preds)
        dist = float(((p.mean(0) - _truth(grid)) ** 2).mean())
        scatter = float(p.var(0).mean())
        out[n] = (dist, scatter, float(np.mean(errs)))
    (d10, s10, e10), (d1k, s1k, _) = out[10], out[1000]
    holds = abs(d1k - d10) < 0.05 * d10 and s1k < s10 / 20 and abs(d10 + s10 - e10) < 1e-9
    return holds, (
        f"distance of the average from the truth {d10:.3g} (n = 10), {d1k:.3g} (n = 1000); "
        f"scatter {s10:.3g}, {s1k:.2g}"
    )


@_shows("SGD from a sharp well's bottom, 2,000 steps: the share still in it at B = 1 and B = 64")
def _sharp_wells() -> tuple[bool, str]:
    """SGD with gradient noise of variance σ²/B on two wells, a sharp one (curvature 40, at
    -1) and a flat one (curvature 1, at 2), 400 runs from the sharp well's bottom: the share
    still in the sharp well after 2,000 steps, at B = 1 and B = 64."""
    rng = np.random.default_rng(0)
    sharp, flat, lr = 40.0, 1.0, 0.04

    def grad(x: np.ndarray) -> np.ndarray:
        in_sharp = sharp / 2 * (x + 1) ** 2 < flat / 2 * (x - 2) ** 2
        return np.where(in_sharp, sharp * (x + 1), flat * (x - 2))

    kept = {}
    for b in (1, 64):
        x = np.full(400, -1.0)
        for _ in range(2000):
            x = x - lr * (grad(x) + 6.0 / np.sqrt(b) * rng.standard_normal(x.shape))
        kept[b] = float((sharp / 2 * (x + 1) ** 2 < flat / 2 * (x - 2) ** 2).mean())
    holds = kept[64] > 0.9 > 0.1 > kept[1]
    shares = f"{kept[1]:.2f} at B = 1, {kept[64]:.2f} at B = 64"
    return holds, f"share in the sharp well after 2,000 steps: {shares}"


@_shows(
    "the heavy-ball map read from descentlab's SGD (lr 0.1, momentum 0.9, f = ½w²) has spectral "
    "radius √β"
)
def _heavy_ball_modulus() -> tuple[bool, str]:
    """The heavy-ball map of lr 0.1, momentum 0.9 on f(w) = ½w², read from descentlab's SGD:
    its spectral radius against √β and β."""
    radius = _sgd_map_radius()
    holds = abs(radius - 0.9**0.5) < 1e-9
    return holds, f"spectral radius {radius:.6g} (√β = {0.9**0.5:.6g}, β = 0.9)"


@functools.cache
def _sgd_map_radius() -> float:
    """The spectral radius of the heavy-ball map of lr 0.1, momentum 0.9 on f(w) = ½w², read
    from descentlab's SGD (one step from each of the two unit states)."""
    import torch

    from descentlab.optim import SGD

    cols = []
    for w0, b0 in ((1.0, 0.0), (0.0, 1.0)):
        w = torch.nn.Parameter(torch.tensor([w0], dtype=torch.float64))
        opt = SGD([w], lr=0.1, momentum=0.9)
        if b0:
            opt.state[w]["momentum_buffer"] = torch.tensor([b0], dtype=torch.float64)
        opt.zero_grad()
        (0.5 * w * w).sum().backward()
        opt.step()
        cols.append([float(w.detach()), float(opt.state[w]["momentum_buffer"])])
    return float(np.abs(np.linalg.eigvals(np.array(cols).T)).max())


@_shows("the product Π (1 - 0.5/t) falls like a power of t with exponent 1/2")
def _decaying_product() -> tuple[bool, str]:
    """w_t = Π (1 - 0.5/s) over s ≤ t: the exponent p of its fall like t^-p between t = 100
    and 400, and the ratio of successive factors (1 for a geometric fall)."""
    w = np.cumprod(1 - 0.5 / np.arange(2, 401))  # (the first factor, 1 - 0.5/1, aside)
    p = float(np.log(w[99 - 1] / w[399 - 1]) / np.log(400 / 100))
    holds = abs(p - 0.5) < 0.01
    return holds, f"w falls like t^-{p:.3f} between t = 100 and 400"


@_shows("least-squares polynomials of degree 0 to 8: the training error never rises")
def _training_error_falls() -> tuple[bool, str]:
    """Least-squares polynomials of degree 0 to 8 on one noisy sample of 30 points: the
    training error at each degree (nested models: it can only fall)."""
    rng = np.random.default_rng(2)
    x = rng.uniform(-1.5, 1.5, 30)
    y = _truth(x) + 0.3 * rng.standard_normal(30)
    err = [float(((np.polyval(np.polyfit(x, y, d), x) - y) ** 2).mean()) for d in range(9)]
    falls = all(b <= a + 1e-12 for a, b in itertools.pairwise(err))
    return falls, f"training error {err[0]:.3g} at degree 0, {err[-1]:.3g} at degree 8"


@_shows("log(1 + eˣ) against its chords and tangents on 41 points")
def _chords_and_tangents() -> tuple[bool, str]:
    """log(1 + eˣ), a convex function, on 41 points: the largest excess of the function over
    its chords between any two points, and of its tangents over the function."""
    x = np.linspace(-4, 4, 41)
    f = np.logaddexp(0, x)
    df = 1 / (1 + np.exp(-x))
    t = np.linspace(0, 1, 11)[:, None, None]
    chord = t * f[:, None] + (1 - t) * f[None, :]
    inside = np.logaddexp(0, t * x[:, None] + (1 - t) * x[None, :])
    over_chord = float((inside - chord).max())
    tangent = f[:, None] + df[:, None] * (x[None, :] - x[:, None])
    over_f = float((tangent - f[None, :]).max())
    holds = over_chord <= 1e-12 and over_f <= 1e-12
    return holds, f"f above a chord by at most {over_chord:.1e}, a tangent above f by {over_f:.1e}"


@_shows("Newton on eˣ - 2x: each step's correct digits 1.6 to 2.6 times the last's")
def _newton_digits() -> tuple[bool, str]:
    """Newton on f(x) = eˣ - 2x from 1 (minimum ln 2): the correct digits after each step."""
    x, digits = 1.0, []
    for _ in range(4):
        x -= (np.exp(x) - 2) / np.exp(x)
        digits.append(-np.log10(abs(x - np.log(2))))
    ratios = [b / a for a, b in itertools.pairwise(digits[:3])]
    holds = all(1.6 < r < 2.6 for r in ratios)
    return holds, "correct digits " + ", ".join(f"{d:.1f}" for d in digits[:3])


@_shows("the mean over every batch of 2 of 6 gradients equals the full gradient")
def _batch_unbiased() -> tuple[bool, str]:
    """Every batch of 2 of 6 per-example gradients, drawn without replacement: the mean of
    the batch means against the full gradient."""
    g = np.array([1.0, -2.0, 3.5, 0.25, 4.0, -1.0])
    means = [(g[i] + g[j]) / 2 for i, j in itertools.combinations(range(6), 2)]
    gap = abs(float(np.mean(means)) - float(g.mean()))
    return gap < 1e-12, f"mean of the 15 batch gradients - full gradient = {gap:.1e}"


@_shows("descentlab's Gaussian and Laplace NLLs: their shapes and their best constants")
def _likelihood_pairs() -> tuple[bool, str]:
    """The two runs above together: Gaussian NLL is r²/2, Laplace |r|; their best constants
    are the mean and the median."""
    (a, ma), (b, mb) = _nll_shapes(), _mean_median()
    return bool(a and b), f"{ma}; {mb}"


@_shows("ridge over 100 training sets: a larger λ raises the bias² and lowers the variance")
def _ridge_tradeoff() -> tuple[bool, str]:
    """Ridge regression (10 features, 30 points of one design, 100 noise draws) at λ = 0.1
    and λ = 30: squared bias and variance of its predictions on fixed test inputs."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal(10)
    xt = rng.standard_normal((20, 10))
    x = rng.standard_normal((30, 10))  # a fixed design: the sets differ in their noise
    out = {}
    for lam in (0.1, 30.0):
        preds = []
        for _ in range(100):
            y = x @ w + rng.standard_normal(30)
            beta = np.linalg.solve(x.T @ x + lam * np.eye(10), x.T @ y)
            preds.append(xt @ beta)
        p = np.asarray(preds)
        out[lam] = (float(((p.mean(0) - xt @ w) ** 2).mean()), float(p.var(0).mean()))
    (b1, v1), (b2, v2) = out[0.1], out[30.0]
    holds = b2 > b1 and v2 < v1
    return holds, f"λ = 0.1: bias² {b1:.3g}, variance {v1:.3g}; λ = 30: {b2:.3g}, {v2:.3g}"


@_shows("the heavy-ball map at β = 0.9 is stable up to ηλ = 2(1 + β), past plain descent's 2")
def _heavy_ball_edge() -> tuple[bool, str]:
    """The heavy-ball map on a curvature λ at β = 0.9: its spectral radius just inside and just
    outside ηλ = 2(1 + β), against plain descent's edge ηλ = 2."""

    def radius(hl: float, beta: float) -> float:
        m = np.array([[1 + beta - hl, -beta], [1.0, 0.0]])
        return float(np.abs(np.linalg.eigvals(m)).max())

    inside, outside, plain = radius(3.78, 0.9), radius(3.82, 0.9), radius(2.02, 0.0)
    holds = inside < 1 < outside and plain > 1
    return holds, (f"radius {inside:.4f} at ηλ = 3.78, {outside:.4f} at 3.82 (β = 0.9); plain "
                   f"descent's {plain:.3f} at ηλ = 2.02")  # fmt: skip


@_shows("SGD's exact expected loss on a noisy quadratic minimised over η at T = 100 and 10,000")
def _best_rate_budget() -> tuple[bool, str]:
    """SGD's expected loss on a noisy quadratic (curvature 1, noise 1, start 10) after T steps,
    exactly (bias (1 - η)^2T plus the floor's part), minimised over η on a grid: the best rate
    at T = 100 and at T = 10,000."""
    eta = np.geomspace(1e-4, 1.0, 2001)

    def best(t: int) -> float:
        decay = (1 - eta) ** (2 * t)
        loss = decay * 100.0 + eta / (2 - eta) * (1 - decay)
        return float(eta[loss.argmin()])

    short, long = best(100), best(10_000)
    return long < short / 20, f"best constant rate {short:.3g} at T = 100, {long:.3g} at T = 10,000"


@_shows("gradient descent on a curvature λ converges at η = 0.95·2/λ and diverges at 1.05·2/λ")
def _rate_below_edge() -> tuple[bool, str]:
    """Gradient descent on a curvature λ = 4 for 50 steps at η = 0.95·2/λ and 1.05·2/λ: the
    distance to the minimum at the end."""
    ends = {f: abs(1 - f * 2) ** 50 for f in (0.95, 1.05)}
    return ends[0.95] < 1 < ends[1.05], (
        f"distance × {ends[0.95]:.3g} below 2/λ, × {ends[1.05]:.3g} above it, in 50 steps"
    )


def _polynomial_errors() -> tuple[dict[int, float], dict[int, float]]:
    """Least-squares polynomials of degree 1 to 9 on 30 noisy points of sin 2πx: (train, test)
    mean squared errors by degree (the test set 400 fresh points)."""
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, 30)
    y = np.sin(2 * np.pi * x) + 0.3 * rng.standard_normal(30)
    xt = rng.uniform(0, 1, 400)
    yt = np.sin(2 * np.pi * xt) + 0.3 * rng.standard_normal(400)
    train, test = {}, {}
    for d in range(1, 10):
        c = np.polynomial.polynomial.polyfit(x, y, d)
        train[d] = float(((np.polynomial.polynomial.polyval(x, c) - y) ** 2).mean())
        test[d] = float(((np.polynomial.polynomial.polyval(xt, c) - yt) ** 2).mean())
    return train, test


@_shows("polynomials of degree 1 to 9 on 30 noisy points: the test error's minimum at neither end")
def _test_error_u() -> tuple[bool, str]:
    """The test error of the polynomials above: its minimum at neither end of the degrees."""
    _, test = _polynomial_errors()
    best = min(test, key=test.__getitem__)
    holds = 1 < best < 9 and test[1] > test[best] < test[9]
    return holds, (f"test error {test[1]:.3g} at degree 1, {test[best]:.3g} at {best}, "
                   f"{test[9]:.3g} at 9")  # fmt: skip


@_shows("polynomials on 30 noisy points: the line's train and test errors, degree 5's, degree 9's")
def _line_underfits() -> tuple[bool, str]:
    """The polynomials above: the line's train and test errors both high (it underfits), degree
    9's train error below degree 5's and its test error above (it follows the noise)."""
    train, test = _polynomial_errors()
    holds = train[1] > 2 * train[5] and test[1] > 2 * test[5] and train[9] < train[5] < test[9]
    return holds, (
        f"degree 1: train {train[1]:.3g}, test {test[1]:.3g}; degree 5: "
        f"{train[5]:.3g}, {test[5]:.3g}; degree 9: {train[9]:.3g}, {test[9]:.3g}"
    )


@_shows(
    "three stacked torch convolutions of kernel 3: the inputs one output reads, at strides 1 and 2"
)
def _receptive_field() -> tuple[bool, str]:
    """Three stacked 1-D convolutions of kernel 3 (torch), strides 1 and 2: the inputs one
    output reads (its gradient's support), against 1 + 2(1 + s + s²)."""
    import torch

    fields = {}
    for s in (1, 2):
        x = torch.zeros(1, 1, 64, dtype=torch.float64, requires_grad=True)
        h = x
        for _ in range(3):
            h = torch.nn.functional.conv1d(h, torch.ones(1, 1, 3, dtype=torch.float64), stride=s)
        h[0, 0, 0].backward()
        fields[s] = int((x.grad != 0).sum())
    holds = fields[2] > fields[1] and all(fields[s] == 1 + 2 * (1 + s + s * s) for s in (1, 2))
    return holds, f"receptive field {fields[1]} inputs at strides 1, {fields[2]} at strides 2"


@_shows("a two-unit tanh network at its minimum, with its units swapped, and halfway between")
def _permuted_minima() -> tuple[bool, str]:
    """A two-unit tanh network fitted exactly (loss 0) and the same network with its hidden
    units swapped: the loss at both and at the midpoint of the chord between them."""
    x = np.linspace(-2, 2, 41)

    def loss(p: np.ndarray) -> float:
        a1, a2, b1, b2 = p
        return float(((a1 * np.tanh(b1 * x) + a2 * np.tanh(b2 * x) - target) ** 2).mean())

    w = np.array([1.0, -1.0, 2.0, 0.5])
    target = np.tanh(2 * x) - np.tanh(0.5 * x)
    swapped = w[[1, 0, 3, 2]]
    ends, mid = max(loss(w), loss(swapped)), loss((w + swapped) / 2)
    return mid > ends + 1e-3, f"loss {ends:.1e} at both minima, {mid:.3g} halfway between"


@_shows("a convex function's stationary point, by Newton, against its least value on a grid")
def _convex_stationary() -> tuple[bool, str]:
    """f(x) = log(1 + eˣ) + x²/2 (convex): its stationary point by Newton against the least
    value on a grid; and -f's stationary point (concave) against -f's values around it."""
    x = 0.0
    for _ in range(30):
        s = 1 / (1 + np.exp(-x))
        x -= (s + x) / (s * (1 - s) + 1)
    grid = np.linspace(-5, 5, 2001)
    f = np.logaddexp(0, grid) + grid**2 / 2
    fx = float(np.logaddexp(0, x) + x**2 / 2)
    holds = bool(fx <= f.min() + 1e-12 and -fx > (-f).min())
    return holds, f"f at its stationary point {fx:.6g}, least on the grid {f.min():.6g}"


@_shows("gradient descent at η = 1/L to 1e-6: the steps at κ = 10 and κ = 100")
def _steps_grow_with_kappa() -> tuple[bool, str]:
    """Gradient descent at η = 1/L on diag(1, 1/κ) from (1, 1): the steps until ‖x‖ < 1e-6,
    at κ = 10 and κ = 100."""
    steps = {}
    for kappa in (10, 100):
        h, x, t = np.array([1.0, 1 / kappa]), np.ones(2), 0
        while np.linalg.norm(x) >= 1e-6:
            x, t = x - h * x, t + 1
        steps[kappa] = t
    ratio = steps[100] / steps[10]
    return 8 < ratio < 12, f"{steps[10]} steps at κ = 10, {steps[100]} at κ = 100"


@_shows("SGD's second-moment factor (1 - ηh)² + η²c/B below 1: the largest η at B = 10, 10³, 10⁶")
def _batch_edge() -> tuple[bool, str]:
    """The second moment of SGD on a curvature h = 1 with gradient noise c/B = 1/B multiplies by
    (1 - ηh)² + η²c/B a step: the largest η that keeps it below 1, at B = 10, 10³, 10⁶."""
    eta = np.linspace(1e-3, 2.5, 250_001)
    edge = {b: float(eta[((1 - eta) ** 2 + eta**2 / b < 1)].max()) for b in (10, 1000, 10**6)}
    holds = edge[10] < edge[1000] and edge[10**6] - edge[1000] < 0.01
    return holds, ", ".join(f"B = {b:g}: η < {e:.4f}" for b, e in edge.items())


@_shows("ridge against least squares in the design's eigenbasis: each ratio σᵢ/(σᵢ + λ) < 1")
def _ridge_shrink() -> tuple[bool, str]:
    """Ridge (λ = 2) against least squares on one design, in the design's eigenbasis: the
    ratio of each coordinate, against σᵢ/(σᵢ + λ) (σᵢ the eigenvalues of XᵀX)."""
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((40, 4)), rng.standard_normal(40)
    sig, vec = np.linalg.eigh(x.T @ x)
    ols = vec.T @ np.linalg.solve(x.T @ x, x.T @ y)
    ridge = vec.T @ np.linalg.solve(x.T @ x + 2.0 * np.eye(4), x.T @ y)
    ratio = ridge / ols
    holds = bool(np.allclose(ratio, sig / (sig + 2.0), rtol=1e-9)) and bool((ratio < 1).all())
    return holds, "ratios " + ", ".join(f"{r:.4f}" for r in ratio)


@_shows(
    "the Gaussian and Laplace NLLs' best scales on a skewed sample, against the RMS residual and "
    "the mean absolute deviation"
)
def _noise_scales() -> tuple[bool, str]:
    """Residuals of a skewed sample: the Gaussian NLL's best scale σ and the Laplace NLL's best
    b on a grid, against the root mean squared residual and the mean absolute deviation."""
    r = np.array([-1.0, -0.5, 0.0, 0.2, 0.4, 3.0])
    s = np.linspace(0.05, 3, 59001)[:, None]
    gauss = (r**2 / (2 * s**2) + np.log(s)).sum(1)
    laplace = (np.abs(r) / s + np.log(2 * s)).sum(1)
    sigma, b = float(s[gauss.argmin(), 0]), float(s[laplace.argmin(), 0])
    rms, mad = float(np.sqrt((r**2).mean())), float(np.abs(r).mean())
    med = float(np.median(np.abs(r)))
    holds = abs(sigma - rms) < 1e-3 and abs(b - mad) < 1e-3 and abs(b - med) > 0.1
    return holds, f"σ {sigma:.4f} (RMS {rms:.4f}), b {b:.4f} (mean |r| {mad:.4f}, median {med:.2f})"


@_shows("the product of 1,000 Gaussian densities in float64, and their logs' sum")
def _product_underflows() -> tuple[bool, str]:
    """The product of 1,000 Gaussian densities (each below 1) in float64, and their logs' sum."""
    z = np.random.default_rng(6).standard_normal(1000)
    dens = np.exp(-(z**2) / 2) / np.sqrt(2 * np.pi)
    prod, logsum = float(np.prod(dens)), float(np.log(dens).sum())
    holds = bool((dens < 1).all()) and prod == 0.0 and np.isfinite(logsum)
    return holds, f"product {prod:g}, sum of logs {logsum:.1f} (largest density {dens.max():.3f})"


@_shows("heavy ball and descent at their optimal settings: the steps to 10⁻⁶ as κ grows 100-fold")
def _optimal_heavy_ball_steps() -> tuple[bool, str]:
    """Heavy ball at its optimal (η, β) for curvatures in [1/κ, 1], against gradient descent at
    its optimal η: the steps to shrink the error 10⁶-fold (from the maps' spectral radii over
    40 curvatures), at κ = 100 and 10,000."""
    steps = {}
    for kappa in (100.0, 10_000.0):
        lams = np.geomspace(1 / kappa, 1, 40)
        r = (np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)
        eta, beta = 4 / (1 + np.sqrt(1 / kappa)) ** 2, r**2
        rho = max(
            float(np.abs(np.linalg.eigvals(np.array([[1 + beta - eta * lam, -beta],
                                                     [1.0, 0.0]]))).max())
            for lam in lams
        )  # fmt: skip
        gd = float(np.abs(1 - 2 / (1 + 1 / kappa) * lams).max())
        steps[kappa] = (np.log(1e-6) / np.log(rho), np.log(1e-6) / np.log(gd))
    hb = steps[10_000.0][0] / steps[100.0][0]
    gd = steps[10_000.0][1] / steps[100.0][1]
    holds = bool(7 < hb < 14 and 70 < gd < 140)
    return holds, f"κ × 100 multiplies heavy ball's steps by {hb:.1f}, descent's by {gd:.0f}"


@_shows("descentlab's SGD buffer on a constant gradient sums the weights β^k to 1/(1 - β)")
def _momentum_memory() -> tuple[bool, str]:
    """descentlab's SGD with momentum 0.9 on a constant gradient 1 for 200 steps: its buffer,
    the sum of the weights it gives past gradients, against 1/(1 - β) and 1/β."""
    import torch

    from descentlab.optim import SGD

    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = SGD([w], lr=0.01, momentum=0.9)
    for _ in range(200):
        opt.zero_grad()
        w.sum().backward()
        opt.step()
    buf = float(opt.state[w]["momentum_buffer"])
    return abs(buf - 10) < 1e-6, f"buffer {buf:.6g} (1/(1 - β) = 10, 1/β = {1 / 0.9:.3g})"


@_shows(
    "descentlab's Adagrad, RMSprop and Adam take the same steps on a gradient 1,000 times larger"
)
def _units_free_steps() -> tuple[bool, str]:
    """descentlab's Adagrad, RMSprop and Adam on L(w) = c·w, c = 1 and 1000: the largest
    relative difference of their first five steps, against the gradients' ratio 1000."""
    import torch

    from descentlab.optim import Adagrad, Adam, RMSprop

    def moves(make: Callable, c: float) -> np.ndarray:
        w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        opt, out = make([w]), []
        for _ in range(5):
            before = float(w.detach())
            opt.zero_grad()
            (c * w).sum().backward()
            opt.step()
            out.append(float(w.detach()) - before)
        return np.array(out)

    gaps = []
    for make in (lambda p: Adagrad(p, lr=0.1), lambda p: RMSprop(p, lr=0.01),
                 lambda p: Adam(p, lr=0.01)):  # fmt: skip
        a, b = moves(make, 1.0), moves(make, 1000.0)
        gaps.append(float(np.abs(a / b - 1).max()))
    return max(gaps) < 1e-5, f"steps differ by at most {max(gaps):.1e} relative (gradients × 1000)"


@_shows("SGD's exact second moment under a/t: t·E[x²] flat at ah = 1, growing at ah = 0.25")
def _a_over_t() -> tuple[bool, str]:
    """SGD's exact second moment on a curvature h = 1 with noise σ² = 1 under η_t = a/t:
    t·E[x²] at t = 2,000 and 20,000 (flat for the optimal 1/t), at ah = 1 and ah = 0.25."""
    growth = {}
    for a in (1.0, 0.25):
        v, at = 1.0, {}
        for t in range(1, 20_001):
            v = (1 - a / t) ** 2 * v + (a / t) ** 2
            if t in (2000, 20_000):
                at[t] = t * v
        growth[a] = at[20_000] / at[2000]
    holds = abs(growth[1.0] - 1) < 0.05 and growth[0.25] > 2
    return holds, f"t·E[x²] grows × {growth[1.0]:.3f} at ah = 1, × {growth[0.25]:.3g} at ah = 0.25"


@_shows("SGD's exact stationary second moment: the same at equal η/B, doubled with η alone")
def _floor_by_eta_over_b() -> tuple[bool, str]:
    """SGD's stationary second moment on a curvature h = 1 with noise σ²/B (the fixed point of
    v = (1 - ηh)²v + η²σ²/B) at (η, B) = (0.01, 1), (0.02, 2), (0.04, 4) and (0.02, 1)."""

    def floor(eta: float, b: int) -> float:
        return eta**2 / b / (1 - (1 - eta) ** 2)

    same = [floor(0.01 * k, k) for k in (1, 2, 4)]
    spread = max(same) / min(same) - 1
    holds = spread < 0.02 and floor(0.02, 1) > 1.9 * floor(0.01, 1)
    return holds, (f"floor {same[0]:.4g}, {same[1]:.4g}, {same[2]:.4g} at η/B = 0.01; "
                   f"{floor(0.02, 1):.4g} at η = 0.02, B = 1")  # fmt: skip


@_shows("torch's conv1d against numpy's correlate and convolve")
def _cross_correlation() -> tuple[bool, str]:
    """torch's conv1d with the kernel (1, 2, 3) on a ramp, against numpy's correlate and
    convolve."""
    import torch

    x, k = np.arange(8.0) ** 2, np.array([1.0, 2.0, 3.0])
    out = torch.nn.functional.conv1d(torch.tensor(x)[None, None], torch.tensor(k)[None, None])[
        0, 0
    ].numpy()
    corr = float(np.abs(out - np.correlate(x, k, "valid")).max())
    conv = float(np.abs(out - np.convolve(x, k, "valid")).max())
    return corr < 1e-12 < conv, f"off numpy's correlate by {corr:.1e}, off convolve by {conv:.3g}"


#: AlexNet's layers: (kind, out, in, kernel, output map side) -- conv layers' grouped inputs
_ALEXNET = (("conv", 96, 3, 11, 55), ("conv", 256, 48, 5, 27), ("conv", 384, 256, 3, 13),
            ("conv", 384, 192, 3, 13), ("conv", 256, 192, 3, 13), ("dense", 4096, 9216, 1, 1),
            ("dense", 4096, 4096, 1, 1), ("dense", 1000, 4096, 1, 1))  # fmt: skip


@_shows("AlexNet's layers: the convolutions' share of the weights and of the multiply-adds")
def _conv_compute_dense_weights() -> tuple[bool, str]:
    """AlexNet's layers: the share of its weights and of its multiply-adds (weights times the
    output map's area) in the convolutions."""
    weights = {"conv": 0, "dense": 0}
    macs = {"conv": 0, "dense": 0}
    for kind, out, inp, k, side in _ALEXNET:
        w = out * inp * k * k
        weights[kind] += w
        macs[kind] += w * side * side
    wc = weights["conv"] / sum(weights.values())
    mc = macs["conv"] / sum(macs.values())
    return (
        mc > 0.5 > wc,
        f"convolutions: {100 * wc:.0f} % of the weights, {100 * mc:.0f} % of the compute",
    )


@_shows("the diagonal preconditioner on diag(1, 100), on the axes and rotated by 45°")
def _rotation_defeats_diagonal() -> tuple[bool, str]:
    """H = diag(1, 100) and H rotated by 45°: the condition number after the diagonal (Jacobi)
    preconditioner D^-1/2 H D^-1/2."""

    def preconditioned(h: np.ndarray) -> float:
        d = 1 / np.sqrt(np.diag(h))
        ev = np.linalg.eigvalsh(d[:, None] * h * d[None, :])
        return float(ev.max() / ev.min())

    h = np.diag([1.0, 100.0])
    c = np.sqrt(0.5)
    rot = np.array([[c, -c], [c, c]])
    axis, turned_ = preconditioned(h), preconditioned(rot @ h @ rot.T)
    return (
        axis < 1.01 and turned_ > 50,
        f"κ after the diagonal: {axis:.3g} on the axes, {turned_:.3g} rotated",
    )


@_shows("the heavy-ball map read from descentlab's SGD against descent's factor at η = 0.1")
def _momentum_slower_here() -> tuple[bool, str]:
    """The heavy-ball map read from descentlab's SGD (lr 0.1, momentum 0.9, f = ½w²) against
    plain descent's factor |1 - ηλ| at the same η."""
    radius = _sgd_map_radius()
    return radius > 0.9, f"momentum's spectral radius {radius:.4f}, descent's factor 0.9"


@_shows("Jensen's gap of log(1 + eˣ) over 500 random distributions")
def _jensen_gap() -> tuple[bool, str]:
    """E f(X) - f(E X) for f(x) = log(1 + eˣ) over 500 random distributions on 5 points, and
    for -f."""
    rng = np.random.default_rng(7)
    x = rng.normal(0, 2, (500, 5))
    p = rng.dirichlet(np.ones(5), 500)
    gap = (p * np.logaddexp(0, x)).sum(1) - np.logaddexp(0, (p * x).sum(1))
    return float(gap.min()) >= -1e-12 and float(gap.max()) > 0.01, (
        f"gap between {gap.min():.2g} and {gap.max():.3g} for f; -f's gap the negative"
    )


@_shows("Newton with autograd's derivatives on √(1 + x²) from 1.5 and from 0.5")
def _newton_sqrt_diverges() -> tuple[bool, str]:
    """Newton with autograd's derivatives on f(x) = √(1 + x²) (convex) from x = 1.5 and 0.5:
    |x| after three steps."""
    import torch

    ends = {}
    for x0 in (1.5, 0.5):
        x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        for _ in range(3):
            (g,) = torch.autograd.grad(torch.sqrt(1 + x * x), x, create_graph=True)
            (h,) = torch.autograd.grad(g, x)
            x = (x - g / h).detach().requires_grad_(True)
        ends[x0] = abs(float(x.detach()))
    return ends[1.5] > 1e4 and ends[0.5] < 1e-3, (
        f"|x| after three steps: {ends[1.5]:.3g} from 1.5, {ends[0.5]:.2g} from 0.5"
    )


@_shows("20,000 means of 20 normal draws: their variance")
def _variance_of_mean() -> tuple[bool, str]:
    """20,000 means of 20 standard normal draws: their variance and standard deviation."""
    m = np.random.default_rng(8).standard_normal((20_000, 20)).mean(1)
    var = float(m.var())
    return abs(var * 20 - 1) < 0.05, f"variance {var:.4f} (1/20 = 0.05), sd {np.sqrt(var):.3f}"


@_shows("polynomials of degree 1 and 7 over 60 training sets: squared bias and variance")
def _flexibility_tradeoff() -> tuple[bool, str]:
    """Least-squares polynomials of degree 1 and 7 over 60 training sets of 40 noisy points:
    squared bias and variance of their predictions."""

    def poly(d: int) -> Callable:
        def fit(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Callable:
            c = np.polynomial.polynomial.polyfit(x, y, d)
            return lambda g: np.polynomial.polynomial.polyval(g, c)

        return fit

    (b1, v1), (b7, v7) = _fits(poly(1)), _fits(poly(7))
    return b7 < b1 and v7 > v1, (
        f"degree 1: bias² {b1:.3g}, variance {v1:.3g}; degree 7: {b7:.3g}, {v7:.3g}"
    )


@_shows("an average started at 0 over a constant, divided by 1 - αᵗ, against the constant")
def _bias_correction() -> tuple[bool, str]:
    """An average v ← αv + (1 - α)g started at 0, α = 0.999, over a constant g = 2: v and
    v/(1 - αᵗ) at steps 1, 10 and 100."""
    alpha, v, raw, fixed = 0.999, 0.0, [], []
    for t in range(1, 101):
        v = alpha * v + (1 - alpha) * 2.0
        if t in (1, 10, 100):
            raw.append(v)
            fixed.append(v / (1 - alpha**t))
    holds = max(abs(f - 2.0) for f in fixed) < 1e-9 and max(raw) < 1
    return holds, "v " + ", ".join(f"{r:.3g}" for r in raw) + "; corrected " + ", ".join(
        f"{f:.6g}" for f in fixed
    )


@_shows("two wells of curvature 40 and 1: the loss a shift of 0.1 adds at each bottom")
def _shifted_wells() -> tuple[bool, str]:
    """A test surface shifted by 0.1 from the training one: the loss it adds at the bottom of
    a sharp well (curvature 40) and of a flat one (curvature 1)."""
    rise = {h: h / 2 * 0.1**2 for h in (40.0, 1.0)}
    return rise[40.0] > 10 * rise[
        1.0
    ], f"the shift adds {rise[40.0]:.3g} (sharp), {rise[1.0]:.3g} (flat)"


@_shows("descentlab's Adagrad on two coordinates with gradients 3 and 0.1: each one's rate")
def _adagrad_moved_more() -> tuple[bool, str]:
    """descentlab's Adagrad (lr 0.1) on L(w) = 3w₁ + 0.1w₂ for 10 steps: the effective rate
    |Δw|/|g| of each coordinate at the last step."""
    import torch

    from descentlab.optim import Adagrad

    w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    g = torch.tensor([3.0, 0.1], dtype=torch.float64)
    opt = Adagrad([w], lr=0.1)
    for _ in range(10):
        before = w.detach().clone()
        opt.zero_grad()
        (g * w).sum().backward()
        opt.step()
    rate = ((w.detach() - before).abs() / g).tolist()
    return rate[0] < rate[1], f"effective rate {rate[0]:.3g} (gradient 3), {rate[1]:.3g} (0.1)"


@_shows("the directional derivative of a smooth loss (torch autograd) over 360 unit directions")
def _steepest_ascent() -> tuple[bool, str]:
    """L(w) = log(1 + e^(w₁ + 2w₂)) + w₁²/2 at (0.3, -0.2): its directional derivative over 360
    unit directions, the largest against the one along ∇L and its sign."""
    import torch

    w = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.softplus(w[0] + 2 * w[1]) + w[0] ** 2 / 2
    (g,) = torch.autograd.grad(loss, w)
    angles = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    dirs = np.stack([np.cos(angles), np.sin(angles)], 1)
    slopes = dirs @ g.numpy()
    best = dirs[slopes.argmax()]
    along = g.numpy() / np.linalg.norm(g.numpy())
    holds = slopes.max() > 0 and float(best @ along) > 0.999
    return holds, (f"largest slope {slopes.max():.4f} along a direction at cos {best @ along:.5f} "
                   f"to ∇L; |∇L| = {np.linalg.norm(g.numpy()):.4f}")  # fmt: skip


#: every claim the book binds (its pages' phrases; :func:`claim_checks` finds them there)
CLAIMS: tuple[Claim, ...] = (
    Claim("nesterov_point",
          "evaluates the gradient where the velocity is about to carry the iterate, not where it "
          "is", "evaluates the gradient at the current point", _nesterov_point, "deep-momentum"),
    Claim("adagrad_falls", "its rate decays as", "its rate grows as", _adagrad_rate,
          "deep-adaptive"),
    Claim("rmsprop_keeps", "divides by the root of an average and keeps its rate",
          "divides by the root of an average and decays its rate", _rmsprop_rate, "deep-adaptive"),
    Claim("l2_gaussian", "L2 assumes light-tailed Gaussian noise",
          "L2 assumes heavy-tailed Laplace noise", _nll_shapes, "item 5"),
    Claim("mean_median", "the L2 fit of a constant is the mean, the L1 fit the median",
          "the L2 fit of a constant is the median, the L1 fit the mean", _mean_median, "item 5"),
    Claim("outlier_pull", "is pulled hard by outliers, L1 assumes heavier tails and is robust",
          "is robust to outliers, L1 assumes heavier tails and is pulled hard", _outlier_pull,
          "item 5"),
    Claim("shared_part_stays", "the independent part shrinks with M, the shared part stays",
          "the shared part shrinks with M, the independent part stays", _averaged_variance,
          "item 68"),
    Claim("bias_is_distance", "Bias is how far the average prediction",
          "Variance is how far the average prediction", _bias_variance_names, "item 65"),
    Claim("variance_is_scatter", "Variance is how much the predictions scatter",
          "Bias is how much the predictions scatter", _bias_variance_names, "item 65"),
    Claim("dartboard",
          "bias is the distance of the cluster's centre from the bull's-eye, variance the "
          "cluster's spread",
          "variance is the distance of the cluster's centre from the bull's-eye, bias the "
          "cluster's spread", _bias_variance_names, "item 65"),
    Claim("ensembles_card", "bagging reduces variance, boosting mainly reduces bias",
          "bagging reduces bias, boosting mainly reduces variance", _ensemble_errors, "item 69"),
    Claim("ensembles_keep",
          "bagging averages resampled models to cut variance, boosting adds weak models in "
          "sequence to cut bias",
          "bagging averages resampled models to cut bias, boosting adds weak models in sequence "
          "to cut variance", _ensemble_errors, "deep-methodology"),
    Claim("sharp_minima", "small batches leave sharp minima that large batches keep",
          "large batches leave sharp minima that small batches keep", _sharp_wells, "deep-batch"),
    # the chapters' exercises' worked solutions (a hint that gives the wrong rate)
    Claim("hint_adagrad_falls", "its rate falls, it never grows", "its rate grows, it never falls",
          _adagrad_rate, "deep-adaptive"),
    Claim("hint_heavy_ball_modulus", "both roots have modulus √β", "both roots have modulus β",
          _heavy_ball_modulus, "deep-momentum"),
    Claim("hint_decay_like_root", "which falls like 1/√t, not geometrically",
          "which falls geometrically, not like 1/√t", _decaying_product, "deep-schedules"),
    # more "What to keep" lines
    Claim("keep_spiral_modulus", "complex roots spiral at $\\sqrt\\beta$",
          "complex roots spiral at $\\beta$", _heavy_ball_modulus, "deep-momentum"),
    Claim("keep_training_error_falls", "The training error only falls as a model grows",
          "The training error only rises as a model grows", _training_error_falls,
          "deep-methodology"),
    Claim("keep_chords_tangents", "lies below its chords and above its tangents",
          "lies above its chords and below its tangents", _chords_and_tangents, "deep-convexity"),
    Claim("keep_newton_digits", "doubles the correct digits every step",
          "adds one correct digit every step", _newton_digits, "deep-newton"),
    Claim("keep_batch_unbiased", "A batch gradient is unbiased", "A batch gradient is biased",
          _batch_unbiased, "deep-batch"),
    Claim("keep_likelihood_pairs",
          "Gaussian noise gives the squared error and the mean, Laplace noise the absolute error "
          "and the median",
          "Gaussian noise gives the absolute error and the median, Laplace noise the squared "
          "error and the mean", _likelihood_pairs, "deep-likelihood"),
    Claim("keep_ridge_tradeoff", "λ trades variance for bias", "λ trades bias for variance",
          _ridge_tradeoff, "deep-regularization"),
    # bound from the census of teaching sentences (book/teaching.py): What to keep
    Claim("keep_momentum_edge", "the stable range grows to", "the stable range shrinks to",
          _heavy_ball_edge, "deep-momentum"),
    Claim("keep_best_rate_budget", "the best constant rate depends on the budget and shrinks like",
          "the best constant rate depends on the budget and grows like", _best_rate_budget,
          "deep-schedules"),
    Claim("keep_warmup_below_edge", "it keeps the rate below 2/λ", "it keeps the rate above 2/λ",
          _rate_below_edge, "deep-schedules"),
    Claim("keep_each_unbiased", "and each is unbiased", "and each is biased", _batch_unbiased,
          "deep-descent"),
    Claim("keep_test_error_u", "the test error falls, then rises",
          "the test error rises, then falls", _test_error_u, "deep-methodology"),
    Claim("keep_receptive_field", "a receptive field that grows with the product of the strides",
          "a receptive field that shrinks with the product of the strides", _receptive_field,
          "deep-convolution"),
    Claim("keep_convex_stationary", "a stationary point of a convex loss is its global minimum",
          "a stationary point of a concave loss is its global minimum", _convex_stationary,
          "deep-convexity"),
    Claim("keep_steps_kappa", "whose step count grows like", "whose step count shrinks like",
          _steps_grow_with_kappa, "deep-convexity"),
    Claim("keep_permuted_minima", "the chord between two equivalent minima rises above them",
          "the chord between two equivalent minima falls below them", _permuted_minima,
          "deep-convexity"),
    Claim("keep_batch_edge", "beyond which a larger batch no longer allows a larger rate",
          "beyond which a larger batch still allows a larger rate", _batch_edge, "deep-batch"),
    Claim("keep_ridge_shrinks", "the ridge solution that shrinks each eigen-direction",
          "the ridge solution that grows each eigen-direction", _ridge_shrink,
          "deep-regularization"),
    Claim("keep_noise_scales", "the root mean squared residual, the mean absolute deviation",
          "the root mean squared residual, the median absolute deviation", _noise_scales,
          "deep-likelihood"),
    # definitions and what a cell prints
    Claim("definition_mse_gaussian", "MSE is the Gaussian likelihood",
          "MSE is the Laplace likelihood", _nll_shapes, "item 117"),
    Claim("cell_sample_mean", "the maximizer of the mean is the sample mean",
          "the maximizer of the mean is the sample median", _mean_median, "item 2"),
    Claim("cell_underflow", "densities below 1 underflows", "densities above 1 underflows",
          _product_underflows, "item 3"),
    Claim("cell_line_underfits", "the line underfits, degree 5 fits",
          "the line overfits, degree 5 fits", _line_underfits, "item 63"),
    Claim("keep_momentum_sqrt_kappa", "the steps needed grow with $\\sqrt\\kappa$ instead of κ",
          "the steps needed grow with κ instead of $\\sqrt\\kappa$", _optimal_heavy_ball_steps,
          "deep-momentum"),
    Claim("keep_momentum_memory", "Momentum averages gradients over about $1/(1 - \\beta)$ steps",
          "Momentum averages gradients over about $1/\\beta$ steps", _momentum_memory,
          "deep-momentum"),
    Claim("keep_units_free", "make a step's size independent of the gradient's units",
          "make a step's size proportional to the gradient's units", _units_free_steps,
          "deep-adaptive"),
    Claim("keep_a_over_t", "a/t reaches the optimal 1/t only when ah > 1/2",
          "a/t reaches the optimal 1/t only when ah < 1/2", _a_over_t, "deep-schedules"),
    Claim("keep_floor_eta_over_b", "SGD's floor is set by η/B", "SGD's floor is set by ηB",
          _floor_by_eta_over_b, "deep-batch"),
    Claim("keep_sharper_than_edge", "cannot rest in a minimum sharper than 2/η",
          "cannot rest in a minimum flatter than 2/η", _rate_below_edge, "deep-batch"),
    Claim("keep_cross_correlation", "Deep learning's convolution is a cross-correlation",
          "Deep learning's convolution is a flipped-kernel convolution", _cross_correlation,
          "deep-convolution"),
    Claim("keep_conv_compute",
          "convolutions dominate a network's compute and dense layers its weights",
          "dense layers dominate a network's compute and convolutions its weights",
          _conv_compute_dense_weights, "deep-convolution"),
    Claim("keep_rotation_defeats", "which a rotation defeats", "which a rotation leaves intact",
          _rotation_defeats_diagonal, "deep-newton"),
    # the chapters' exercises' worked solutions
    Claim("hint_momentum_slower", "momentum is slower on this well-conditioned problem",
          "momentum is faster on this well-conditioned problem", _momentum_slower_here,
          "deep-momentum"),
    Claim("hint_gaussian_prior", "A Gaussian prior is L2", "A Laplace prior is L2", _nll_shapes,
          "deep-regularization"),
    Claim("hint_mse_gaussian", "which is why the MSE is the Gaussian's loss",
          "which is why the MSE is the Laplace's loss", _nll_shapes, "deep-likelihood"),
    Claim("hint_jensen", "For a convex f the gap is never negative",
          "For a convex f the gap is never positive", _jensen_gap, "deep-convexity"),
    Claim("hint_newton_diverges", "the iterates diverge although f is convex",
          "the iterates converge because f is convex", _newton_sqrt_diverges, "deep-newton"),
    Claim("hint_average_variance", "averaging 20 noises divides their variance by 20",
          "averaging 20 noises divides their standard deviation by 20", _variance_of_mean,
          "deep-methodology"),
    # the lectures' exercises' worked solutions (read on the card of the item they practise)
    Claim("hint_lecture_underflow", "probabilities below 1 underflows to 0",
          "probabilities above 1 underflows to 0", _product_underflows, "item 2"),
    Claim("hint_lecture_l1_median", "whose minimizer is the median", "whose minimizer is the mean",
          _mean_median, "item 6"),
    Claim("hint_lecture_l2_mean", "(the mean is its minimizer)", "(the median is its minimizer)",
          _mean_median, "item 7"),
    Claim("hint_lecture_adagrad_root", "the rate decays as 1/√t however large g is",
          "the rate grows as √t however large g is", _adagrad_rate, "item 55"),
    Claim("hint_lecture_bagging", "their variance by up to B: bagging reduces variance",
          "their variance by up to B: bagging reduces bias", _ensemble_errors, "item 68"),
    Claim("hint_lecture_boosting", "it mainly reduces bias (and can overfit)",
          "it mainly reduces variance (and can overfit)", _ensemble_errors, "item 68"),
    Claim("hint_lecture_adagrad_falls", "so η/√G falls toward 0", "so η/√G grows without bound",
          _adagrad_rate, "item 77"),
    Claim("hint_lecture_rate_decays", "The sum grows without bound and the rate decays",
          "The sum grows without bound and the rate grows", _adagrad_rate, "item 129"),
    # cards' explanations
    Claim("card_batch_unbiased", "the batch mean has the same expectation: it is unbiased",
          "the batch mean has the same expectation: it is biased", _batch_unbiased, "item 14"),
    Claim("card_error_grows", "and the error grows geometrically",
          "and the error shrinks geometrically", _rate_below_edge, "item 15"),
    Claim("card_velocity_grows", "the velocity grows to 1/(1-β) times a single step",
          "the velocity grows to 1/β times a single step", _momentum_memory, "item 24"),
    Claim("card_convex_one_basin", "A convex function has one basin",
          "A concave function has one basin", _convex_stationary, "item 46"),
    Claim("card_network_not_convex", "Network losses are not convex", "Network losses are convex",
          _permuted_minima, "item 46"),
    Claim("card_adagrad_falls", "the effective rate ε/√r falls for the whole run",
          "the effective rate ε/√r grows for the whole run", _adagrad_rate, "item 56"),
    Claim("card_rmsprop_no_decay", "the effective rate no longer decays to zero",
          "the effective rate still decays to zero", _rmsprop_rate, "item 57"),
    Claim("card_flexible_trades", "a more flexible model trades bias for variance",
          "a more flexible model trades variance for bias", _flexibility_tradeoff, "item 66"),
    Claim("card_bagging_helps_variance", "It helps high-variance models",
          "It helps high-bias models", _ensemble_errors, "item 68"),
    Claim("card_adagrad_monotone", "So the effective rate η/√G falls monotonically",
          "So the effective rate η/√G rises monotonically", _adagrad_rate, "item 77"),
    Claim("card_averaging_divides",
          "Averaging n independent noises divides their variance by about n",
          "Averaging n independent noises divides their standard deviation by about n",
          _variance_of_mean, "item 98"),
    Claim("card_root_beta", "every coordinate shrinks by √β", "every coordinate shrinks by β",
          _heavy_ball_modulus, "item 102"),
    Claim("card_adagrad_only_falls", "AdaGrad's effective rate ρ/√r only falls",
          "AdaGrad's effective rate ρ/√r only rises", _adagrad_rate, "item 109"),
    Claim("card_bias_correction", "is an unbiased estimate at every step",
          "is a biased estimate at every step", _bias_correction, "item 111"),
    Claim("card_l1_median", "(its best constant is the median, item 5)",
          "(its best constant is the mean, item 5)", _mean_median, "item 116"),
    Claim("hint_lecture_sd_half", "four times the batch, half the noise's standard deviation",
          "four times the batch, a quarter of the noise's standard deviation",
          _variance_of_mean, "item 14"),
    Claim("hint_lecture_convex_one", "A convex loss would have one",
          "A concave loss would have one", _convex_stationary, "item 46"),
    Claim("hint_lecture_validation_rises",
          "Training error keeps falling while validation error, after a point, rises",
          "Training error keeps rising while validation error, after a point, falls",
          _test_error_u, "item 84"),
    Claim("hint_lecture_sharp_shift", "At a sharp minimum a small shift",
          "At a flat minimum a small shift", _shifted_wells, "item 71"),
    Claim("hint_lecture_moved_smaller", "a parameter that moved a lot gets a smaller rate",
          "a parameter that moved a lot gets a larger rate", _adagrad_moved_more, "item 128"),
    # definitions (the census's pattern: "X is the ...", "X measures how ...")
    Claim("definition_gradient_ascent", "is the direction in which the loss rises fastest",
          "is the direction in which the loss falls fastest", _steepest_ascent, "item 11"),
    Claim("definition_minibatch_noise", "the true gradient plus noise with zero mean",
          "the true gradient plus noise with a nonzero mean", _batch_unbiased, "item 98"),
    Claim("card_quadruple_halves_sd", "quadrupling the batch halves the noise's standard deviation",
          "quadrupling the batch quarters the noise's standard deviation", _variance_of_mean,
          "item 14"),
    Claim("card_double_halves_variance", "so doubling B halves it",
          "so doubling B quarters it", _variance_of_mean, "item 70"),
    Claim("card_oscillates_shrinks", "the iterate overshoots and oscillates, but shrinks",
          "the iterate overshoots and oscillates, and grows", _rate_below_edge, "item 106"),
    Claim("card_moved_small_rate", "has a large h and from then on a small rate",
          "has a large h and from then on a large rate", _adagrad_moved_more, "item 128"),
)  # fmt: skip
_BY_NAME = {c.name: c for c in CLAIMS}


def _joined(rows: Iterable[tuple[str, str, str, Any, str]]) -> tuple[Claim, ...]:
    """The claims a module of their own declares (the cards', the hints', the "What to keep"
    lines'), as ``(name, said, opposite, demo, home)`` rows: a demonstration of their own, or
    named by a string -- one of this module's demonstrations, or a claim above whose
    demonstration it shares."""

    def demo(d: Any) -> Callable[[], tuple[bool, str]]:
        return d if callable(d) else globals()[d] if d in globals() else _Shared(d)

    return tuple(Claim(n, s, o, demo(d), h) for n, s, o, d, h in rows)


class _Shared:
    """The demonstration of the claim ``name``, its result shared (:func:`_run`: it runs once
    per process, whichever claim reads it first); the claim is looked up when it runs, so a row
    may name one its own module declares."""

    def __init__(self, name: str) -> None:
        self.name = self.__name__ = name

    def __call__(self) -> tuple[bool, str]:
        return _run(self.name)

    @property
    def shows(self) -> str:
        return _BY_NAME[self.name].shows


for _rows in (card_claims.CLAIMS, hint_claims.CLAIMS, keep_claims.CLAIMS):
    CLAIMS += _joined(_rows)
    _BY_NAME = {c.name: c for c in CLAIMS}

#: the teaching sentences (of the "What to keep" lines) that nothing the build runs can back,
#: a phrase each holds and why
UNBACKED: dict[str, str] = {
    "Compare optimizers on one loop": "a rule of method: the protocol the compare chapter "
    "and descentlab compare follow (one loop, one budget, rates tuned on validation data); a "
    "protocol is chosen, not measured, and no run's outcome can make it false",
    "call one ahead of another only where every seed agrees": "a rule of method: when to call "
    "a difference a win (every seed agreeing, a grid-edge rate marked) is a decision rule the "
    "compare command applies to its paired runs, not a property of any run",
    "the schedules chapter shows what is": "a pointer to the schedules chapter, whose own "
    "claim (keep_constant_floor) and rows show that a decaying rate, not momentum, lowers the "
    "floor; the clause states nothing itself",
    "The exercises on the momentum lecture's page practise these steps": "a pointer to the "
    "momentum lecture's exercises (hints 000-004), whose own check rows read their answers; "
    "an instruction to the reader with no quantity in it",
    "Cross-validation is that data carved out of the training set": "a definition: it names "
    "the procedure that holds out part of the training set as validation data; a name cannot "
    "be refuted by a run (item 64's card runs the folds)",
    "early stopping is cross-validation over the steps of one run": "a definition by analogy "
    "(the step count is the hyperparameter the validation error chooses); item 84's card and "
    "the regularization chapter run early stopping, the analogy itself has no contrary a run "
    "shows",
    # sentences whose word swapped (teaching.turned) says no contrary, or that a chapter's
    # rows measure on its computed values without reading the sentence's words
    "More data is the most reliable regularizer": "a judgement from practice; no run of the "
    "book sets more data against the regularizers",
    **hint_claims.UNBACKED,
    **card_claims.UNBACKED,
    **keep_claims.UNBACKED,
}


def claim_checks(text: str, claims: Iterable[Claim] = CLAIMS, home: str = "") -> list[Check]:
    """The rows of the claims whose phrase or opposite ``text`` holds, and of those whose
    home is ``home`` (the page ``text`` is: ``item 65``, ``deep-batch``) whatever it holds."""
    return [c.check(text) for c in claims if c.on(text) or (home and c.home == home)]


_SENTENCE = re.compile(r"(?<=[.;!?])\s+")


def teaching_sentences(text: str) -> list[str]:
    """The sentences of a "What to keep" text (its heading dropped)."""
    body = _plain(text).removeprefix("What to keep.").strip()
    return [s for s in _SENTENCE.split(body) if s]


def backed_share(texts: Iterable[str], claims: Iterable[Claim] = CLAIMS,
                 read: Iterable[str] = ()) -> tuple[int, int]:  # fmt: skip
    """(backed, all): of the teaching sentences of ``texts``, those that hold a claim's
    phrase or a phrase of ``read`` (the phrases a chapter's check row reads)."""
    phrases = [c.said for c in claims] + list(read)
    sentences = [s for t in texts for s in teaching_sentences(t)]
    return sum(any(p in s for p in phrases) for s in sentences), len(sentences)


def unbacked_count(texts: Iterable[str]) -> int:
    """The teaching sentences of ``texts`` listed in :data:`UNBACKED`."""
    sentences = [s for t in texts for s in teaching_sentences(t)]
    return sum(any(p in s for p in UNBACKED) for s in sentences)
