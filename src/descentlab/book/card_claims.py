"""The cards' explanations bound to what their cells computed, and to tiny runs.

Two bindings, one per kind of sentence:

* :class:`Reading` -- a card's sentence about what its own cell computes ("the larger β, the
  slower to turn"; "above it the loss blows up"; "its entropy is far below a fair die's") is
  read against the values that cell printed on the page, not against a run written for the
  purpose. A reading names two of the cell's values, ``a`` and ``b``, and the phrase that is
  true when ``a > b``; its opposite is the phrase with every direction word swapped
  (:func:`descentlab.book.teaching.turned`). The card's row
  (:func:`descentlab.book.teaching.result_checks`) chooses between the two from the values and
  is ✘ when the page holds the other one, or neither: a direction word swapped on the page, or
  a cell whose values turn round, is a ✘ on that card.
* :data:`CLAIMS` -- a conceptual sentence (what a method does, what a density is) is bound to a
  tiny instrumented run, as :class:`descentlab.book.claims.Claim` binds it: each row is
  ``(name, said, opposite, demonstration, home)``, the demonstration one of this module's
  functions or the name of one of :mod:`descentlab.book.claims`'s; that module turns the rows
  into claims.

:data:`UNBACKED` lists the cards' sentences that nothing the book runs can back, with why.

Example:
    >>> r = next(r for r in READINGS if r.item == 118)
    >>> r.said
    "so its entropy is far below a fair die's"
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from descentlab.book import card_runs as _r
from descentlab.book.bibliography import cite, cite_in
from descentlab.book.checks import shows as _shows

__all__ = ["CLAIMS", "READINGS", "UNBACKED", "Reading"]


class Ran(Protocol):
    """A code cell as it ran (:class:`descentlab.book.cells.CellRun`): what it printed and
    its namespace afterwards."""

    output: str
    namespace: dict[str, Any]


@dataclass(frozen=True)
class Reading:
    """A card's sentence read against the values its cell computed.

    Attributes:
        item: the card (seed_items.md number).
        said: the phrase the page holds when ``a > b``; its direction words swapped
            (:func:`~descentlab.book.teaching.turned`) give the phrase for ``a ≤ b``.
        values: ``run -> (a, b)``, read from the cell's printed output or its namespace.
        shows: what ``a`` and ``b`` are, in words (the row's text).
    """

    item: int
    said: str
    values: Callable[[Ran], tuple[float, float]]
    shows: str


def printed(run: Ran, pattern: str) -> float:
    """The number ``pattern``'s first group matches in the cell's printed output (``None``
    printed reads as infinity: a threshold never reached).

    Raises:
        ValueError: the output holds no match (the cell prints something else).
    """
    m = re.search(pattern, run.output, re.MULTILINE)
    if m is None:
        raise ValueError(f"the cell printed nothing matching {pattern!r}")
    return math.inf if m.group(1) == "None" else float(m.group(1))


def _p(pattern: str) -> Callable[[Ran], float]:
    return lambda run: printed(run, pattern)


def _pair(a: str, b: str) -> Callable[[Ran], tuple[float, float]]:
    """The values two patterns read from the cell's output."""
    return lambda run: (printed(run, a), printed(run, b))


_FLOAT = r"([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?|None)"


def _agree(
    first: str = "by hand", second: str = "descentlab"
) -> Callable[[Ran], tuple[float, float]]:
    """(tolerance, largest difference) between the numbers the cell printed after ``first``
    and after ``second`` (on one line, or on two)."""

    def read(run: Ran) -> tuple[float, float]:
        text = run.output[run.output.find(first) + len(first) :]
        one, _, other = text.partition(second)
        a, b = (re.findall(r"[-+]?\d+\.\d+", part) for part in (one, other.split("\n\n")[0]))
        return _gap(a, b)

    return read


def _each(first: str, second: str) -> Callable[[Ran], tuple[float, float]]:
    """(tolerance, largest difference) between every number the cell printed after ``first``
    and the one after ``second`` on the same line."""

    def read(run: Ran) -> tuple[float, float]:
        a, b = (re.findall(rf"{re.escape(label)} ([-+]?\d+\.\d+)", run.output)
                for label in (first, second))  # fmt: skip
        return _gap(a, b)

    return read


def _gap(a: list[str], b: list[str]) -> tuple[float, float]:
    if not a or len(a) != len(b):
        raise ValueError("the cell printed no two sets of values to compare")
    pairs = [(float(x), float(y)) for x, y in zip(a, b, strict=True)]
    return 1e-12 * max(1.0, *(abs(x) for x, _ in pairs)), max(abs(x - y) for x, y in pairs)


def _spread(run: Ran, sign: int) -> float:
    """Over the cell's models, the spread of KL + sign · mean log-likelihood."""
    rows = re.findall(rf"KL\(P_data\|\|P_model\) = {_FLOAT}, mean log-likelihood {_FLOAT}",
                      run.output)  # fmt: skip
    if len(rows) < 2:
        raise ValueError("the cell printed fewer than two models' KL and log-likelihood")
    values = [float(kl) + sign * float(ll) for kl, ll in rows]
    return max(values) - min(values)


#: item 45's two ends a valley apart: the distance between them against half the spacing
_VALLEYS = (
    lambda run: (
        abs(printed(run, rf"lr 1\.0: after 30 steps x = {_FLOAT}")
            - printed(run, rf"lr 0\.05: after 30 steps x = {_FLOAT}")),
        math.pi / 2,
    ),
    "the distance between the cell's two ends (lr 1.0 and lr 0.05) against π/2, half the "
    "spacing of x sin x's valleys",
)  # fmt: skip


#: the cards' sentences about what their cells compute, read against the values printed
READINGS: tuple[Reading, ...] = (
    Reading(15, "above it the loss blows up within a few steps",
            _pair(rf"lr 1\.1: \|x - 2\| after 20 steps = {_FLOAT}",
                  rf"lr 0\.9: \|x - 2\| after 20 steps = {_FLOAT}"),
            "the cell's |x - 2| after 20 steps at lr 1.1 (above the limit 1) against lr 0.9"),
    Reading(16, "Ten times smaller a rate is ten times more steps",
            _pair(rf"lr  0\.02: +{_FLOAT} steps", rf"lr   0\.2: +{_FLOAT} steps"),
            "the cell's steps to |x - 2| < 0.01 at lr 0.02 against lr 0.2"),
    Reading(24, "rolls along the floor much faster than SGD at the same rate",
            lambda run: (abs(printed(run, rf"^sgd .*after 150 steps {_FLOAT}")),
                         abs(printed(run, rf"^momentum .*after 150 steps {_FLOAT}"))),
            "the cell's distance left to the floor's minimum after 150 steps: SGD's against "
            "momentum's"),
    Reading(26, "the larger β, the smoother and the slower to turn",
            _pair(rf"beta 0\.99: .* after {_FLOAT} steps", rf"beta 0\.5: .* after {_FLOAT} steps"),
            "the cell's steps until an impulse falls below 1/e: β = 0.99 against β = 0.5"),
    Reading(45, "lr 1.0 takes steps so large that the iterate lands in another valley",
            *_VALLEYS),
    Reading(45, "a large step can jump over a ridge into another basin that a small step would "
                "never leave",
            *_VALLEYS),
    Reading(50, 'If the barrier is lower than the "kinetic energy" gathered on the way down, it '
                "crosses into the deeper well",
            _pair(rf"^sgd +: ends at x = {_FLOAT}", rf"^momentum: ends at x = {_FLOAT}"),
            "the cell's ends: plain descent's x against momentum's (the deeper well at x < 0)"),
    Reading(103, "slower than SGD's, and the path bounces harder across the ravine",
            _pair(rf"beta 0\.9: largest \|y\| after step 10 = {_FLOAT}",
                  rf"beta None: largest \|y\| after step 10 = {_FLOAT}"),
            "the cell's largest |y| after step 10: momentum at β = 0.9 against SGD"),
    Reading(106, "above, it diverges",
            lambda run: (abs(printed(run, r"lr 1\.05: .*, ([-+\d.]+)\] \.\.\.") - 2), 2.0),
            "the cell's |x - 2| at lr 1.05 (above 2/λ = 1) after five steps against its start's"),
    Reading(106, "Too small η makes the factor close to 1",
            _pair(r"lr 0\.01: .*, ([-+\d.]+)\] \.\.\.", r"lr  0\.2: .*, ([-+\d.]+)\] \.\.\."),
            "the cell's x after five steps at lr 0.01 against lr 0.2 (the minimum at 2)"),
    Reading(112, "Without the correction Adam's first step is not too small but too large",
            _pair(rf"bias_correction=False: first step {_FLOAT}",
                  rf"bias_correction=True : first step {_FLOAT}"),
            "the cell's first Adam step without the bias correction against with it"),
    Reading(114, "so they leave the saddle first",
            lambda run: (min(printed(run, rf"^{n} *: \|y\| > 0\.5 from step {_FLOAT}")
                             for n in ("sgd", "momentum")),
                         max(printed(run, rf"^{n} *: \|y\| > 0\.5 from step {_FLOAT}")
                             for n in ("rmsprop", "adam"))),
            "the cell's first step with |y| > 0.5: the earlier of SGD and momentum against the "
            "later of RMSProp and Adam"),
    Reading(1, "KL(P_data ‖ P_model) = E_data[log P_data] - E_data[log P_model]",
            lambda run: (_spread(run, -1), _spread(run, 1)),
            "the spread over the cell's four models of KL - log-likelihood (what the opposite "
            "sign would hold constant) against KL + log-likelihood (E_data[log P_data])"),
    Reading(51, "agree to the last digit in the cell", _agree(),
            "the cell's rule by hand against descentlab: its tolerance against the largest "
            "difference printed"),
    Reading(73, "The cell runs descentlab's optimizer beside the rule written out by hand",
            _agree(), "the cell's rule by hand against descentlab: its tolerance against the "
            "largest difference printed"),
    Reading(80, "The cell runs descentlab's optimizer beside the rule written out by hand",
            _agree(), "the cell's rule by hand against descentlab: its tolerance against the "
            "largest difference printed"),
    Reading(22, "the cell compares two with torch's", _each("torch StepLR", "descentlab step"),
            "the cell's rates by torch's StepLR against descentlab's step schedule: a tolerance "
            "against the largest difference printed"),
    Reading(105, "The iterates are the same sequence shifted by ρv",
            _agree("x + rho v (lecture):", "descentlab Nesterov:"),
            "the cell's look-ahead iterate x + ρv by the lecture's loop against descentlab's "
            "Nesterov: a tolerance against the largest difference printed"),
    Reading(115, "α₀/(1+kt) falls like 1/t: the sum diverges",
            _pair(r"^1/t +: .*\[[\d.]+, [\d.]+, ([\d.]+)\]",
                  r"^exponential: .*\[[\d.]+, [\d.]+, ([\d.]+)\]"),
            "the cell's sum of the rates over 10⁴ steps: 1/t's against the exponential's"),
    Reading(115, "exponential α₀e^{-kt} falls by a constant factor per step, so Σ α_t is finite",
            lambda run: (1.01 * printed(run, r"^exponential: .*\[[\d.]+, ([\d.]+),"),
                         printed(run, r"^exponential: .*\[[\d.]+, [\d.]+, ([\d.]+)\]")),
            "the cell's exponential sum over 100 steps, plus 1 %, against its sum over 10⁴ steps"),
    Reading(117, "an error five times larger costs 25 times more",
            lambda run: (printed(run, rf"MSE per example: \[[\d.]+, {_FLOAT}\]")
                         / printed(run, rf"MSE per example: \[{_FLOAT},"),
                         printed(run, rf"L1 per example : \[[\d.]+, {_FLOAT}\]")
                         / printed(run, rf"L1 per example : \[{_FLOAT},")),
            "the cell's ratio of the two examples' MSE against the ratio of their L1 losses"),
    Reading(118, "so its entropy is far below a fair die's",
            _pair(rf"fair die +: {_FLOAT}", rf"die with five 1s +: {_FLOAT}"),
            "the cell's entropy of a fair die against the die with five 1s"),
    Reading(125, "the rate must stay below 2/L for the largest curvature L",
            _pair(rf"lr  2\.1: after 300 steps loss {_FLOAT}",
                  rf"lr  1\.9: after 300 steps loss {_FLOAT}"),
            "the cell's loss after 300 steps at lr 2.1 (above 2/L = 2) against lr 1.9"),
    Reading(127, "momentum reaches the minimum in fewer steps",
            _pair(rf"^sgd +: loss < 1e-3 from step {_FLOAT}",
                  rf"^momentum: loss < 1e-3 from step {_FLOAT}"),
            "the cell's first step with loss < 1e-3: SGD's against momentum's"),
    # cards, items 100-131
    Reading(103, "holds for the right pair of settings, not for any",
            lambda run: (min(printed(run, rf"beta None: largest \|y\| after step 10 = {_FLOAT}")
                             / printed(run, rf"beta 0\.3: largest \|y\| after step 10 = {_FLOAT}"),
                             printed(run, rf"beta 0\.9: largest \|y\| after step 10 = {_FLOAT}")
                             / printed(run, rf"beta None: largest \|y\| after step 10 = {_FLOAT}")),
                         1.0),
            "the cell's largest |y| after step 10: the smaller of SGD's over β = 0.3's (damped) "
            "and β = 0.9's over SGD's (bouncing harder), against 1"),
    Reading(105, "The change of variables stores the look-ahead point instead",
            _agree("x + rho v (lecture):", "descentlab Nesterov:"),
            "the cell's look-ahead point x + ρv by the lecture's loop against the parameters "
            "descentlab's Nesterov stores: a tolerance against the largest difference printed"),
    Reading(105, "Everything now needs ∇f(x̃) only, at the stored parameters",
            _agree("x + rho v (lecture):", "descentlab Nesterov:"),
            "the cell's descentlab Nesterov, its gradient taken at its stored parameters, against "
            "the lecture's x + ρv: a tolerance against the largest difference printed"),
    Reading(105, "Let x̃ = x + ρv.", _agree("x + rho v (lecture):", "descentlab Nesterov:"),
            "the parameters descentlab's Nesterov stores against the cell's x + ρv by the "
            "lecture's loop: a tolerance against the largest difference printed"),
    Reading(114, "At the saddle the gradient points almost exactly along the ridge",
            lambda run: (_saddle_slope_ratio(run), 100.0),
            "|∂f/∂x| over |∂f/∂y| at the cell's saddle's start, by autograd, against 100"),
    Reading(115, "the three of the lecture differ in how fast",
            _pair(r"^1/t +: .*\[[\d.]+, [\d.]+, ([\d.]+)\]",
                  r"^exponential: .*\[[\d.]+, [\d.]+, ([\d.]+)\]"),
            "the cell's sum of the rates over 10⁴ steps: 1/t's against the exponential's"),
    Reading(115, "A decay schedule makes the step size fall with time",
            lambda run: (min(printed(run, rf"^{n} *: .*\[{_FLOAT},") / 10
                             / printed(run, rf"^{n} *: rate at t=100 {_FLOAT}")
                             for n in ("exponential", "1/t")), 1.0),
            "the cell's mean rate over the first 10 steps over its rate at t = 100, the smaller "
            "of the two schedules', against 1"),
)  # fmt: skip


def _saddle_slope_ratio(run: Ran) -> float:
    """|∂f/∂x| / |∂f/∂y| at the start of the saddle the cell ran (its namespace's ``saddle``),
    by autograd: along the ridge y = 0 against across it."""
    import torch

    saddle = run.namespace["saddle"]
    x = torch.tensor(saddle.start, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(saddle.fn(x[None]).sum(), x)
    return float(grad[0].abs() / grad[1].abs())


# ------------------------------------------------------------------------------------------
# the conceptual sentences' demonstrations (float64 numpy or torch, a few milliseconds each)

_Demo = Callable[[], tuple[bool, str]]


@_shows("torch's Laplace and Normal log-densities against the two densities the cards type")
def _densities() -> tuple[bool, str]:
    """torch's Laplace(μ, b) and Normal(μ, σ) log-densities at 9 points against the logs of the
    typed 1/(2b) · exp(-|y - μ|/b) and (2πσ²)^(-1/2) exp(-(y - μ)²/(2σ²))."""
    import torch

    y = torch.linspace(-3, 3, 9, dtype=torch.float64)
    mu, b = 0.5, 1.5
    laplace = -torch.log(torch.tensor(2 * b, dtype=torch.float64)) - (y - mu).abs() / b
    gauss = -0.5 * math.log(2 * math.pi * b * b) - (y - mu) ** 2 / (2 * b * b)
    at, scale = torch.tensor(mu, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    lap = torch.distributions.Laplace(at, scale).log_prob(y)
    nor = torch.distributions.Normal(at, scale).log_prob(y)
    pairs = (("laplace", laplace, lap), ("gauss", gauss, nor), ("swapped", laplace, nor))
    off = {k: float((f - d).abs().max()) for k, f, d in pairs}
    holds = off["laplace"] < 1e-12 and off["gauss"] < 1e-12 and off["swapped"] > 0.1
    return holds, (f"Laplace's formula off torch's Laplace by {off['laplace']:.1e}, the "
                   f"Gaussian's off Normal by {off['gauss']:.1e}, Laplace's off Normal by "
                   f"{off['swapped']:.2g}")  # fmt: skip


@_shows("f = x³ - 3x at its two stationary points: f'' and the change a step of ±0.01 makes")
def _second_derivative() -> tuple[bool, str]:
    """f = x³ - 3x at x = 1 (f'' = 6) and x = -1 (f'' = -6): f(x ± 0.01) - f(x)."""

    def f(x: float) -> float:
        return x**3 - 3 * x

    up = min(f(1 + d) - f(1) for d in (-0.01, 0.01))
    down = max(f(-1 + d) - f(-1) for d in (-0.01, 0.01))
    return up > 0 > down, f"f'' = 6: f rises by ≥ {up:.2e}; f'' = -6: falls by ≥ {-down:.2e}"


def _adagrad_steps(grads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """descentlab's Adagrad (lr 0.1) fed ``grads`` (steps × coordinates): each step's |Δw|
    and the accumulated G at the end."""
    from descentlab.optim import Adagrad

    moves, state = _r._fed(Adagrad, grads, lr=0.1)
    return moves, state["sum"]


@_shows("descentlab's Adagrad, gradient 1 at every step on one coordinate and at every 10th "
           "on the other: each one's G and its step at step 50")  # fmt: skip
def _rare_coordinate() -> tuple[bool, str]:
    """Two coordinates fed gradient 1: one at every step, one at every 10th (a rare feature)."""
    grads = np.zeros((50, 2))
    grads[:, 0] = 1.0
    grads[9::10, 1] = 1.0
    moves, total = _adagrad_steps(grads)
    holds = total[1] < total[0] and moves[-1, 1] > moves[-1, 0]
    return holds, (f"G {total[0]:.0f} (every step) against {total[1]:.0f} (rare); step 50: "
                   f"{moves[-1, 0]:.4f} against {moves[-1, 1]:.4f}")  # fmt: skip


@_shows("descentlab's Adagrad fed gradient 10 for 10 steps, then 0.1, against one fed 0.1 "
           "throughout: the step at step 100")  # fmt: skip
def _early_large_gradients() -> tuple[bool, str]:
    """The same coordinate twice: early large gradients, then small; small throughout."""
    grads = np.full((100, 2), 0.1)
    grads[:10, 0] = 10.0
    moves, _ = _adagrad_steps(grads)
    holds = moves[-1, 0] < 0.5 * moves[-1, 1]
    return holds, f"step 100: {moves[-1, 0]:.2e} after early large gradients, {moves[-1, 1]:.2e}"


@_shows("descentlab's SGD with weight decay α = 0.5 at η = 0.1 on a zero data gradient: w's "
           "factor per step")  # fmt: skip
def _weight_decay_factor() -> tuple[bool, str]:
    """descentlab's SGD(weight_decay=α) on a zero gradient: w after one step over w before."""
    import torch

    from descentlab.optim import SGD

    w = torch.nn.Parameter(torch.tensor([2.0, -3.0], dtype=torch.float64))
    opt = SGD([w], lr=0.1, weight_decay=0.5)
    before = w.detach().clone()
    w.grad = torch.zeros(2, dtype=torch.float64)
    opt.step()
    factor = (w.detach() / before).numpy()
    holds = bool(np.allclose(factor, 1 - 0.1 * 0.5, atol=1e-15, rtol=0))
    return holds, f"factor {factor[0]:.4f}, {factor[1]:.4f} (1 - ηα = 0.95)"


@_shows("a torch Conv2d(3, 8, 3) and the dense layer that maps the same images: weights at "
           "16 × 16 and 64 × 64")  # fmt: skip
def _conv_weights_fixed() -> tuple[bool, str]:
    """One convolution applied to 16 × 16 and 64 × 64 images, against the dense layer that maps
    each image to an output of the convolution's size."""
    import torch

    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    own = sum(p.numel() for p in conv.parameters())
    dense = {}
    for side in (16, 64):
        out = conv(torch.zeros(1, 3, side, side)).numel()
        dense[side] = 3 * side * side * out + out
    holds = dense[64] > 100 * dense[16] > 100 * own
    return holds, (f"convolution {own} weights at both sizes; dense {dense[16]:,} at 16², "
                   f"{dense[64]:,} at 64²")  # fmt: skip


@_shows("Adam's ratio (1 - β₁ᵗ)/√(1 - β₂ᵗ) at β = (0.9, 0.999), steps 1 to 500")
def _adam_ratio() -> tuple[bool, str]:
    """The factor the two bias corrections give Adam's uncorrected step, per step."""
    t = np.arange(1, 501)
    ratio = (1 - 0.9**t) / np.sqrt(1 - 0.999**t)
    return bool((ratio > 1).all()), f"ratio {ratio[0]:.3f} at t = 1, {ratio.min():.3f} at least"


@_shows("torch's log_softmax against the log of its softmax at logits (0, -200)")
def _log_softmax() -> tuple[bool, str]:
    """log p of the second class, -200 - log(1 + e⁻²⁰⁰) ≈ -200, by both routes."""
    import torch

    z = torch.tensor([0.0, -200.0])
    direct = float(torch.log_softmax(z, 0)[1])
    via = float(torch.log(torch.softmax(z, 0))[1])
    holds = abs(direct + 200) < 1e-4 and not math.isfinite(via)
    return holds, f"log_softmax {direct:.4g}, log(softmax) {via}"


@_shows("Jensen's gap log E[x] - E[log x] over 300 random distributions on (0, 10]")
def _log_concave() -> tuple[bool, str]:
    """The gap is ≥ 0 for every distribution when log is concave (≤ 0 were it convex)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 10, (300, 5))
    p = rng.dirichlet(np.ones(5), 300)
    gap = np.log((p * x).sum(1)) - (p * np.log(x)).sum(1)
    return bool(gap.min() >= 0), f"gap from {gap.min():.3g} to {gap.max():.3g}"


@_shows("the forward difference quotient of (x - 1)² at its minimum x = 1, h = 0.1 to 0.001")
def _quotient_at_minimum() -> tuple[bool, str]:
    """(f(1 + h) - f(1))/h at the minimum, where the slope is 0: it equals h."""
    qs = [h * h / h for h in (0.1, 0.01, 0.001)]  # ((1 + h - 1)² - 0)/h
    holds = qs[0] > qs[1] > qs[2] > 0
    return holds, "quotients " + ", ".join(f"{q:.3g}" for q in qs)


@_shows("the negative log-likelihood of 50 normal draws and their likelihood over 601 means")
def _nll_same_problem() -> tuple[bool, str]:
    """float64: the mean that minimizes the negative log-likelihood against the one that
    maximizes the likelihood (50 draws: the product does not underflow)."""
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, 50)
    mus = np.linspace(0, 6, 601)[:, None]
    logp = -0.5 * ((x - mus) / 2.0) ** 2 - math.log(2.0 * math.sqrt(2 * math.pi))
    nll, lik = -logp.sum(1), np.exp(logp).prod(1)
    low, high = float(mus[nll.argmin(), 0]), float(mus[lik.argmax(), 0])
    far = float(mus[nll.argmax(), 0])
    return low == high != far, f"argmin NLL {low:.2f}, argmax likelihood {high:.2f}"


@_shows("f = x³ - 3x on [-3, 3]: its least value on a grid against its local minima and ends")
def _interval_minimum() -> tuple[bool, str]:
    """The global minimum over [-3, 3] on a fine grid, against the local minimum f(1) = -2
    alone and with the endpoints f(-3) = -18, f(3) = 18."""
    x = np.linspace(-3, 3, 60001)
    least = float((x**3 - 3 * x).min())
    local, ends = -2.0, min(-18.0, 18.0)
    holds = abs(least - min(local, ends)) < 1e-9 and abs(least - local) > 1
    return holds, f"least on the grid {least:.4g}; local minimum {local:g}, ends -18 and 18"


@_shows("the true function sin 2πx against 20,000 noisy targets (σ = 0.3): its squared error")
def _noise_floor() -> tuple[bool, str]:
    """The best possible model, the truth itself, still errs by the noise's variance σ²."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 20000)
    y = np.sin(2 * np.pi * x) + rng.normal(0, 0.3, x.size)
    err = float(np.mean((np.sin(2 * np.pi * x) - y) ** 2))
    return abs(err - 0.09) < 0.005, f"the truth's squared error {err:.4f} (σ² = 0.09)"


@_shows("descentlab's SGD at η = 0.1, one step on a gradient g, against W - ηg and W + ηg")
def _sgd_step() -> tuple[bool, str]:
    """One step of descentlab's plain SGD on given weights and gradient."""
    import torch

    from descentlab.optim import SGD

    w0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    g = torch.tensor([0.3, 0.1, -0.4], dtype=torch.float64)
    w = torch.nn.Parameter(w0.clone())
    opt = SGD([w], lr=0.1)
    w.grad = g.clone()
    opt.step()
    minus = float((w.detach() - (w0 - 0.1 * g)).abs().max())
    plus = float((w.detach() - (w0 + 0.1 * g)).abs().max())
    return minus < 1e-15 < plus, f"off W - ηg by {minus:.1e}, off W + ηg by {plus:.2g}"


@_shows("a biased die's -Σ p log p against the mean of -log p over 200,000 rolls")
def _entropy_surprise() -> tuple[bool, str]:
    """The entropy of p = (0.5, 0.2, 0.2, 0.1) against the average surprise of sampled
    outcomes (and against Σ p log p, the opposite sign)."""
    rng = np.random.default_rng(0)
    p = np.array([0.5, 0.2, 0.2, 0.1])
    h = float(-(p * np.log(p)).sum())
    surprise = float(-np.log(p[rng.choice(4, 200000, p=p)]).mean())
    return abs(surprise - h) < 0.01 < abs(surprise + h), f"H {h:.4f}, mean surprise {surprise:.4f}"


@_shows("two standard normals with correlation 0 and 0.8: the joint density at 5 points "
           "against the product of the marginals")  # fmt: skip
def _independence_product() -> tuple[bool, str]:
    """The bivariate normal density against φ(x)φ(y), independent and correlated."""

    def joint(x: np.ndarray, y: np.ndarray, rho: float) -> np.ndarray:
        q = (x * x - 2 * rho * x * y + y * y) / (1 - rho * rho)
        return np.exp(-q / 2) / (2 * np.pi * np.sqrt(1 - rho * rho))

    x, y = np.linspace(-1, 1, 5), np.linspace(0.5, -1.5, 5)
    product = np.exp(-(x * x + y * y) / 2) / (2 * np.pi)
    off = {rho: float(np.abs(joint(x, y, rho) / product - 1).max()) for rho in (0.0, 0.8)}
    return off[0.0] < 1e-12 < 0.1 < off[0.8], (
        f"joint off the product by {off[0.0]:.1e} (ρ = 0), {off[0.8]:.2g} (ρ = 0.8)"
    )


@_shows("descentlab's SGD at η = 0.2 on x² - 4x + 6 from 4: each step's |Δx|, 10 steps")
def _steps_shrink() -> tuple[bool, str]:
    """The step η|f'(x)| at a constant rate, as the iterate nears the minimum at 2."""
    import torch

    from descentlab.optim import SGD

    w = torch.nn.Parameter(torch.tensor([4.0], dtype=torch.float64))
    opt = SGD([w], lr=0.2)
    moves = []
    for _ in range(10):
        before = w.item()
        w.grad = 2 * w.detach() - 4
        opt.step()
        moves.append(abs(w.item() - before))
    holds = all(b < a for a, b in itertools.pairwise(moves))
    return holds, f"|Δx| {moves[0]:.3g} at step 1, {moves[-1]:.3g} at step 10"


Row = tuple[str, str, str, "Callable[[], tuple[bool, str]] | str", str]

#: the cards' conceptual sentences and the runs that show them: (name, said, opposite, demo,
#: home); a demo named by a string is :mod:`descentlab.book.claims`'s function of that name
CLAIMS: tuple[Row, ...] = (
    ("card_log_gaussian_quadratic", "(a quadratic for the Gaussian)",
     "(a quadratic for the Laplace)", "_nll_shapes", "item 4"),
    ("card_shape_is_distribution", "a Laplace density ∝ exp(-|r|/b) gives |r|, a Gaussian",
     "a Gaussian density ∝ exp(-|r|/b) gives |r|, a Laplace", "_nll_shapes", "item 5"),
    ("card_laplace_density", "The Laplace density is p(y) = 1/(2b)",
     "The Gaussian density is p(y) = 1/(2b)", _densities, "item 6"),
    ("card_laplace_l1", "maximum likelihood under Laplace noise is minimizing",
     "maximum likelihood under Gaussian noise is minimizing", "_nll_shapes", "item 6"),
    ("card_gaussian_density", "The Gaussian density is p(y) = (2πσ²)^(-1/2)",
     "The Laplace density is p(y) = (2πσ²)^(-1/2)", _densities, "item 7"),
    ("card_least_squares_gaussian", "least squares is maximum likelihood under Gaussian noise",
     "least squares is maximum likelihood under Laplace noise", "_nll_shapes", "item 7"),
    ("card_convex_one_point", "and convex (the one stationary point is the minimum)",
     "and concave (the one stationary point is the minimum)", "_convex_stationary", "item 8"),
    ("card_rate_edge_diverges", "(above 2/L it diverges)", "(below 2/L it diverges)",
     "_rate_below_edge", "item 72"),
    ("card_noise_smaller_rate", "against noise it takes a smaller rate or a larger batch",
     "against noise it takes a larger rate or a smaller batch", "_floor_by_eta_over_b",
     "item 98"),
    ("card_neighbourhood_grows", "it reaches a neighbourhood whose size grows with the rate",
     "it reaches a neighbourhood whose size shrinks with the rate", "_floor_by_eta_over_b",
     "item 17"),
    ("card_steps_shrink", "Near a minimum the gradient shrinks, so the steps shrink by themselves",
     "Near a minimum the gradient grows, so the steps grow by themselves", _steps_shrink,
     "item 41"),
    ("card_adagrad_slowed", "where early gradients are large and unrepresentative), AdaGrad has "
     "slowed too much", "where early gradients are small and unrepresentative), AdaGrad has "
     "slowed too much", _early_large_gradients, "item 56"),
    ("card_second_derivative", "If f'' > 0 every small step raises f",
     "If f'' > 0 every small step lowers f", _second_derivative, "item 9"),
    ("card_step_lowers", "a small step against it lowers the loss",
     "a small step against it raises the loss", "_steepest_ascent", "item 11"),
    ("card_one_rate_too_large", "too large and some direction diverges, too small and others "
     "crawl", "too small and some direction diverges, too large and others crawl",
     "_rate_below_edge", "item 53"),
    ("card_convex_global", "on a convex loss the global minimum",
     "on a concave loss the global minimum", "_convex_stationary", "item 61"),
    ("card_overfit_errors", "so the training error is tiny and the test error large",
     "so the training error is large and the test error tiny", "_line_underfits", "item 63"),
    ("card_noise_kicks_small_batches", "SGD's noise, larger at small batches, kicks the iterate "
     "out of narrow basins", "SGD's noise, larger at large batches, kicks the iterate out of "
     "narrow basins", "_sharp_wells", "item 71"),
    ("card_flat_robust", "flat basins are more robust to the shift",
     "sharp basins are more robust to the shift", "_shifted_wells", "item 71"),
    ("card_momentum_sum", "Momentum's velocity is a running sum of past gradients",
     "Momentum's velocity is a running product of past gradients", "_momentum_memory",
     "item 24"),
    ("card_step_to_one_over", "the step on a constant gradient grows to ηg/(1-β)",
     "the step on a constant gradient shrinks to ηg/(1-β)", "_momentum_memory", "item 73"),
    ("card_rare_large_updates", "so its G stays small and each of its rare updates is large",
     "so its G stays large and each of its rare updates is small", _rare_coordinate,
     "item 76"),
    ("card_frequent_small_steps", "accumulates a large G and takes small steps",
     "accumulates a small G and takes large steps", _rare_coordinate, "item 76"),
    ("card_g_only_grows", "G only grows: each step adds g² ≥ 0",
     "G only shrinks: each step adds g² ≥ 0", "_adagrad_rate", "item 77"),
    ("card_validation_u", "The validation loss falls while the network learns the signal and "
     "rises", "The validation loss rises while the network learns the signal and falls",
     "_test_error_u", "item 84"),
    ("card_weight_decay_shrinks", "each SGD step first shrinks the weights by the factor 1 - ηα",
     "each SGD step first grows the weights by the factor 1 - ηα", _weight_decay_factor,
     "item 85"),
    ("card_conv_weights_fixed", "so its parameter count does not depend on the image size",
     "so its parameter count grows with the image size", _conv_weights_fixed, "item 93"),
    ("card_flat_direction_crawls", "moves along the flat y direction by a factor 1 - η b per step",
     "moves along the steep y direction by a factor 1 - η b per step", "_steps_grow_with_kappa",
     "item 97"),
    ("card_velocity_grows_towards", "the velocity grows towards -ρ∇J/(1-α)",
     "the velocity shrinks towards -ρ∇J/(1-α)", "_momentum_memory", "item 99"),
    ("card_velocity_averages", "As α → 1 the velocity averages over ≈ 1/(1-α) steps",
     "As α → 1 the velocity averages over ≈ 1/α steps", "_momentum_memory", "item 100"),
    ("card_one_rate_flat_small", "and is then too small for the flat ones",
     "and is then too large for the flat ones", "_steps_grow_with_kappa", "item 107"),
    ("card_large_gradient_small_rate", "A coordinate with large gradients gets a proportionally "
     "smaller rate", "A coordinate with large gradients gets a proportionally larger rate",
     "_adagrad_moved_more", "item 107"),
    ("card_rare_keeps_large_step", "keep a small r and so a large step",
     "keep a large r and so a small step", _rare_coordinate, "item 108"),
    ("card_early_large_keep_small", "the early large gradients keep the rate small",
     "the early large gradients keep the rate large", _early_large_gradients, "item 109"),
    ("card_uncorrected_too_small", "early in training r without correction is far too small",
     "early in training r without correction is far too large", "_bias_correction",
     "item 111"),
    ("card_adam_ratio_above", "stays above 1 for hundreds of steps",
     "stays below 1 for hundreds of steps", _adam_ratio, "item 112"),
    ("card_mean_pulled", "(the mean is pulled towards outliers)",
     "(the median is pulled towards outliers)", "_outlier_pull", "item 117"),
    ("card_log_softmax", "which is more accurate than taking the log of a softmax",
     "which is less accurate than taking the log of a softmax", _log_softmax, "item 120"),
    ("card_log_concave", "by Jensen's inequality on the concave log",
     "by Jensen's inequality on the convex log", _log_concave, "item 121"),
    ("card_quotient_shrinks", "the difference quotient there shrinks with h",
     "the difference quotient there grows with h", _quotient_at_minimum, "item 124"),
    ("card_velocity_carries", "on a consistent slope the step grows towards η/(1-α)",
     "on a consistent slope the step shrinks towards η/(1-α)", "_momentum_memory", "item 127"),
    ("card_rare_keeps_large_rate", "Parameters with rare or small gradients keep a large rate",
     "Parameters with rare or small gradients keep a small rate", _rare_coordinate, "item 128"),
    ("card_wide_rate_window", "The usable window is between, and it narrows as the problem gets "
     "more ill-conditioned", "The usable window is between, and it narrows as the problem gets "
     "less ill-conditioned", "_steps_grow_with_kappa", "item 125"),
    ("definition_derivative_limit", "(f(x+h) - f(x))/h as h → 0", "(f(x+h) - f(x))/h as h → ∞",
     _quotient_at_minimum, "item 124"),
    ("definition_nll_same_problem", "Minimizing the negative log-likelihood is the same problem",
     "Maximizing the negative log-likelihood is the same problem", _nll_same_problem, "item 4"),
    ("definition_interval_minimum", "is the smallest of the local minima and the endpoints",
     "is the smallest of the local minima alone", _interval_minimum, "item 9"),
    ("definition_noise_floor", "The noise is a floor no model removes",
     "The noise is a floor a flexible model removes", _noise_floor, "item 66"),
    ("definition_sgd_step", "W ← W - ηg is the whole of SGD", "W ← W + ηg is the whole of SGD",
     _sgd_step, "item 72"),
    ("definition_independence_product", "Independence is what allows the product",
     "Dependence is what allows the product", _independence_product, "item 3"),
    ("definition_entropy_surprise", "H(p) = -Σ p_i log p_i is the expected surprise",
     "H(p) = Σ p_i log p_i is the expected surprise", _entropy_surprise, "item 118"),
    # cards, items 100-131
    ("card_two_forms_one_method", "The two forms are one method in different units",
     "The two forms are two different methods", _r._momentum_two_forms, "item 101"),
    ("card_cs231n_form", "cs231n keeps v = ρv + ∇f and steps x -= αv",
     "cs231n keeps v = ρv - ∇f and steps x -= αv", _r._momentum_two_forms, "item 101"),
    ("card_velocity_form", "(5.12) keeps u = βu - η∇f and steps x += u",
     "(5.12) keeps u = βu + η∇f and steps x += u", _r._momentum_two_forms, "item 101"),
    ("card_forms_substitution", "Put u = -αv: the recurrence becomes u = ρu - α∇f",
     "Put u = αv: the recurrence becomes u = ρu - α∇f", _r._momentum_two_forms, "item 101"),
    ("card_forms_agree", "The iterates agree exactly while the rate is constant",
     "The iterates differ while the rate is constant", _r._momentum_two_forms, "item 101"),
    ("card_forms_repriced", "in the cs231n form a new α scales the whole accumulated v at once",
     "in the cs231n form a new α scales only the new gradients", _r._momentum_two_forms,
     "item 101"),
    ("card_forms_drop", "the cs231n form (torch's SGD) slows immediately, the velocity form "
     "coasts", "the velocity form slows immediately, the cs231n form (torch's SGD) coasts",
     _r._momentum_two_forms, "item 101"),
    ("card_roots_modulus", "so both have modulus exactly √β, whatever λ is",
     "so both have modulus exactly β, whatever λ is", _r._heavy_ball_roots, "item 102"),
    ("card_nesterov_where", "Nesterov's change is where the gradient is taken",
     "Nesterov's change is how large the step is", "_nesterov_point", "item 104"),
    ("card_momentum_carries_to", "Momentum alone would carry the iterate to Θ̃ = Θ + αv",
     "Momentum alone would carry the iterate to Θ̃ = Θ - αv", "_nesterov_point", "item 104"),
    ("card_nesterov_look_ahead", "Nesterov looks there first and uses the gradient at that "
     "look-ahead point", "Nesterov looks there first and uses the gradient at the current "
     "point", "_nesterov_point", "item 104"),
    ("card_nesterov_corrects", "corrects the step before it is taken, not one step later",
     "corrects the step one step later, not before it is taken", _r._nesterov_corrects,
     "item 104"),
    ("card_divide_by_size", "divide each coordinate's step by a running measure of that "
     "coordinate's gradient size", "multiply each coordinate's step by a running measure of "
     "that coordinate's gradient size", "_units_free_steps", "item 107"),
    ("card_diagonal_axes", "fixes ill-conditioning that is aligned with the axes (not a rotated "
     "ravine)", "fixes ill-conditioning that is rotated (not an axis-aligned ravine)",
     "_rotation_defeats_diagonal", "item 107"),
    ("card_adagrad_rule", "and steps -ρ g/(ε + √r)", "and steps -ρ g/(ε + r)", _r._adagrad_rule,
     "item 108"),
    ("card_adagrad_over_root_t", "so its step is ρ/√t in size", "so its step is ρ/t in size",
     _r._adagrad_rule, "item 108"),
    ("card_rmsprop_forgets", "replaces the sum by a moving average, which forgets",
     "replaces the sum by a moving average, which never forgets", _r._rmsprop_forgets,
     "item 109"),
    ("card_rate_recovers", "the rate recovers when the gradients shrink, unlike AdaGrad's",
     "the rate stays small when the gradients shrink, like AdaGrad's", _r._rmsprop_forgets,
     "item 110"),
    ("card_adam_averages", "v = α₁v + (1-α₁)g and r = α₂r + (1-α₂)g², both started at 0",
     "v = α₁v + (1-α₁)g and r = α₂r + (1-α₂)g², both started at the first gradient",
     _r._adam_moments, "item 111"),
    ("card_adam_unrolled", "Unrolled, v_t = (1-α₁) Σ_{k=1..t} α₁^(t-k) g_k",
     "Unrolled, v_t = (1-α₁) Σ_{k=1..t} α₁^k g_k", _r._adam_moments, "item 111"),
    ("card_adam_second_correction", "the same for r̂ with α₂", "the same for r̂ with α₁",
     _r._adam_moments, "item 111"),
    ("card_adam_lr_is_step", 'means "move each weight by about 0.001 per step"',
     'means "move each weight by about 0.001 times its gradient per step"', _r._adam_lr_step,
     "item 113"),
    ("card_ravine_momentum", "momentum wins by accumulating the gentle, consistent slope",
     "momentum loses by accumulating the gentle, consistent slope", _r._ravine_race,
     "item 114"),
    ("card_adaptive_axes", "the adaptive methods win by dividing out the scales, which here are "
     "aligned with the axes", "the adaptive methods win by dividing out the scales, which here "
     "are rotated off the axes", "_rotation_defeats_diagonal", "item 114"),
    ("card_step_decay", "Step decay multiplies by γ every k steps",
     "Step decay multiplies by γ every step", _r._step_decay, "item 115"),
    ("card_l1_five_times", "an error of 10 costs five times an error of 2",
     "an error of 10 costs 25 times an error of 2", _r._l1_loss, "item 116"),
    ("card_l1_gradient_sign", "Its gradient is sign(ŷ - y), the same size for every error",
     "Its gradient is ŷ - y, the same size for every error", _r._l1_loss, "item 116"),
    ("card_l1_steps_over", "the gradient does not shrink near the optimum, so a constant "
     "learning rate keeps stepping over it", "the gradient shrinks near the optimum, so a "
     "constant learning rate settles on it", _r._l1_loss, "item 116"),
    ("card_entropy_largest", "It is largest when every outcome is equally likely",
     "It is smallest when every outcome is equally likely", _r._entropy_extremes, "item 118"),
    ("card_entropy_log_n", "n equal outcomes: log n) and zero when one outcome is certain",
     "n equal outcomes: n log n) and zero when one outcome is certain", _r._entropy_extremes,
     "item 118"),
    ("card_cross_entropy_scored", "is the expected surprise when outcomes come from p but are "
     "scored with q", "is the expected surprise when outcomes come from q but are scored with "
     "p", _r._cross_entropy, "item 119"),
    ("card_cross_entropy_splits", "It splits as H(p, q) = H(p) + KL(p ‖ q)",
     "It splits as H(p, q) = H(q) + KL(p ‖ q)", _r._cross_entropy, "item 119"),
    ("card_cross_entropy_follows", "So minimizing the cross-entropy over q makes q follow p",
     "So minimizing the cross-entropy over q makes p follow q", _r._cross_entropy,
     "item 119"),
    ("card_cross_entropy_one_hot", "for one-hot p it is -log q_true, the classification loss",
     "for one-hot p it is log q_true, the classification loss", _r._cross_entropy,
     "item 119"),
    ("card_kl_split", "KL(P ‖ Q) = Σ P log(P/Q) = H(P, Q) - H(P)",
     "KL(P ‖ Q) = Σ P log(P/Q) = H(P) - H(P, Q)", _r._cross_entropy, "item 121"),
    ("card_kldivloss_order", "KLDivLoss expects the log of Q as its input and P as its target",
     "KLDivLoss expects the log of P as its input and Q as its target", _r._cross_entropy,
     "item 121"),
    ("card_forward_kl_covers", "so Q spreads to cover both peaks (mode-covering",
     "so Q hides inside one peak (mode-covering", _r._kl_fits, "item 122"),
    ("card_reverse_kl_seeks", "so it hides inside one peak (mode-seeking",
     "so it spreads to cover both peaks (mode-seeking", _r._kl_fits, "item 122"),
    ("card_kl_not_distance", "The two fits differ, so KL is not a distance",
     "The two fits agree, so KL is a distance", _r._kl_fits, "item 122"),
    ("card_triplet_zero", "max(d(a, p) - d(a, n) + margin, 0) is zero once the negative is "
     "farther", "max(d(a, n) - d(a, p) + margin, 0) is zero once the negative is farther",
     _r._triplet, "item 123"),
    ("card_triplet_pull_push", "its gradient pulls the positive towards the anchor and pushes "
     "the negative away, by the same amount", "its gradient pushes the positive away from the "
     "anchor and pulls the negative towards it, by the same amount", _r._triplet, "item 123"),
    ("card_quotient_halves", "so halving h halves it (the central quotient "
     "(f(x+h) - f(x-h))/2h errs by h²)", "so halving h quarters it (the central quotient "
     "(f(x+h) - f(x-h))/2h errs by h)", _r._quotient_errors, "item 124"),
    ("card_sgd_every_tensor", "W ← W - η ∂L/∂W for every weight tensor at once",
     "W ← W + η ∂L/∂W for every weight tensor at once", _sgd_step, "item 126"),
    ("card_zero_grad", "forgetting zero_grad() would add this step's gradient to the last "
     "one's", "forgetting zero_grad() would replace the last one's gradient by this step's",
     _r._grad_accumulates, "item 126"),
    ("card_no_eps_sign", "the first step is exactly η·sign(g) in every coordinate",
     "the first step is exactly η·g in every coordinate", _r._adagrad_no_eps, "item 128"),
    ("card_rate_follows_recent", "then follows the recent gradient size, up or down, instead "
     "of only falling", "then only falls, like AdaGrad's, instead of following the recent "
     "gradient size", _r._rmsprop_forgets, "item 129"),
    ("card_adam_defaults", "defaults α = 1e-3, β₁ = 0.9, β₂ = 0.999, ε = 1e-8",
     "defaults α = 1e-3, β₁ = 0.999, β₂ = 0.9, ε = 1e-8", _r._adam_paper, "item 130"),
    ("card_adam_last_line", "Its last line is θ -= α m̂/(√v̂ + ε)",
     "Its last line is θ -= α m̂/(v̂ + ε)", _r._adam_paper, "item 130"),
    ("card_velocity_fraction", "α is the fraction of the old velocity kept at each step",
     "α is the fraction of the old velocity lost at each step", _r._velocity_kept, "item 100"),
    ("card_three_lines", "In PyTorch that is the three lines zero_grad(), loss.backward(), step()",
     "In PyTorch that is the two lines loss.backward(), step()", _r._grad_accumulates,
     "item 126"),
    ("card_ignore_index", "targets equal to ignore_index contribute nothing to the sum or to the "
     "normalization", "targets equal to ignore_index contribute nothing to the sum but count in "
     "the normalization", _r._ignore_index, "item 120"),
    ("card_coordinates_apart", "Each coordinate is its own problem",
     "Each coordinate is coupled to the others", _r._coordinates_apart, "item 102"),
)  # fmt: skip

#: why a step of algebra is listed (the reason several rows of :data:`UNBACKED` share)
_DERIVATION = (
    "a step of a derivation the sentence writes out: a swapped word breaks the algebra on the "
    "page (the formula checks evaluate its typed formulas); no run measures a step of algebra"
)
#: the cards' sentences that nothing the book runs can back, a phrase each holds and why
UNBACKED: dict[str, str] = {
    "one step is w ← (1 - αλ) w - ασξ": (
        "the model of a noisy step written out (a definition of the process the next sentence "
        "solves), nothing to measure"
    ),
    "In the stationary state the variance V is unchanged by a step": _DERIVATION,
    "the noise injected by step t has variance η_t² σ²": _DERIVATION,
    "a small change dx changes u by g'(x) dx": (
        "the chain rule stated; the card's cell checks it against autograd, and 'small' swapped to"
        " 'large' names the limit's opposite, no contrary a run can show"
    ),
    "expand the square around E[f̂]": _DERIVATION,
    "the cross terms vanish because the noise has mean 0": _DERIVATION,
    "So the expected error is bias² + variance + noise": (
        "bias and variance swapped name the same three parts: no contrary; the methodology "
        "chapter's rows check the sum exactly"
    ),
    "Precisely: with independent noise of variance σ² the stationary variance of v": _DERIVATION,
    "an exponential moving average with weights (1-α)α^k": _DERIVATION,
    "then E[v_t] = E[g] (1-α₁) Σ_{j=0..t-1} α₁^j": _DERIVATION,
    "The blog's formula folds Adam's two bias corrections into the rate": _DERIVATION,
    "the only difference from the usual form is where ε sits": (
        "a comparison of two typed forms of one update (the card's cell runs both and prints their"
        " difference); 'small' swapped is the condition's opposite, not a contrary"
    ),
    "The two are equal up to where ε sits": (
        "a comparison of two typed forms of one update (the card's cell runs both); 'small' "
        "swapped is the condition's opposite, not a contrary"
    ),
    "it falls to 1/e after -1/ln β ≈ 1/(1-β) steps": (
        "β^k < 1 for β < 1 by arithmetic, 'grows' would not be a contrary a run could show; the "
        "card's cell prints the steps and the reading of the sentence after it holds them"
    ),
    "With a small rate the factor 1 - ηλ is close to 1": _DERIVATION,
    "SGD replaces the mean over all N examples by the mean over a random batch": (
        "the definition of the algorithm: 'median' would define another estimator, which no run "
        "refutes; item 14's claim binds that the batch mean is unbiased"
    ),
    "weight multiplies each example's loss by its class's weight and the mean divides": (
        "torch's documented convention for CrossEntropyLoss(weight=...) restated: 'median' would "
        "describe another library, the card's cell prints torch's value"
    ),
    "which changes y by f'(u)·g'(x) dx": _DERIVATION,
    cite("robbins1951") + " asked": "history: what a paper asked",
    "trained the same networks with small and large batches and found": (
        "a paper's finding (Keskar et al.); the card's experiment measures its own networks' "
        "sharpness in rows of its own"
    ),
    "The effect depends on the setting: a tuned learning rate": (
        "a judgement from the literature on sharp minima, no run of the book sets tuned rates "
        "against sharpness"
    ),
    "The book's card measures it on a small fully connected network": (
        "a description of the card's experiment, whose rows are on the card"
    ),
    "it puts the ratio of the largest to the smallest batch's sharpness": (
        "a description of the card's rows, which test the ratio themselves"
    ),
    f"later work {cite_in('santurkar2018')} found": (
        "history: a paper's finding on batch normalization"
    ),
    "Gaussian input noise of variance σ² adds exactly σ²‖w‖²": (
        f"a cited result {cite_in('bishop1995')} on a linear model; 'small' swapped names another "
        "perturbation size, not a contrary the card computes"
    ),
    "Nesterov's method has a provably better worst-case rate": (
        "a theorem's worst case over a function class: no finite run shows a worst case"
    ),
    '"Faster" is a guarantee about the worst case': (
        "a theorem's worst case over a function class: no finite run shows a worst case"
    ),
    "That correction is what extends momentum's 1 - 1/√κ": (
        "a theorem's guarantee over a function class; the momentum chapter runs Lessard's "
        "counterexample where heavy ball fails"
    ),
    "The cost of one step grows with N": (
        "a cost count (one gradient per example), arithmetic not a measurement"
    ),
    "the practical search starts high and divides": "a rule of method for tuning",
    "so constant-rate SGD is pushed off it and settles into a stationary spread": (
        "'mean' names a moment (the expected gradient): 'median' is no contrary; item 18's "
        "derivation and cell give the spread"
    ),
    "In practice 1/t from the first step is too aggressive": "a rule of practice for schedules",
    "A rate small enough to keep W₂ stable makes the W₁ steps tiny": (
        "the two sentences state the dilemma of one rate on two curvatures, bound on item 107 "
        "(gradient descent's steps grow with κ); the card's cell runs one rate per optimizer, not "
        "the two a swap would compare"
    ),
    "a larger one makes W₂ overshoot back and forth": (
        "the dilemma of one rate on two curvatures, bound on item 107; the card's cell runs one "
        "rate per optimizer"
    ),
    "is a running mean of the squared gradient per coordinate": (
        "the definition of RMSProp's average, 'median' would define another method; item 110's "
        "readings and claims hold the average"
    ),
    "Dividing the step by √v + ε makes it about η in every coordinate": (
        "a description of the update's scale; item 107's claim measures the per-coordinate rates "
        "on descentlab's Adagrad"
    ),
    "Expanding the cube first gives the same polynomial with more work": (
        "a remark on hand work, nothing to run"
    ),
    "so the bowl is three times steeper in x: gradient descent shrinks": (
        "its word is chosen from the curvatures 6 and 2 by the build ({{word:...}}, facts.choose):"
        " a swap cannot reach the page"
    ),
    "In large networks most local minima found in practice have similar loss": (
        "an empirical finding about large networks; no run of the book trains one"
    ),
    "The grid grows with the square of the resolution": "arithmetic of a grid's size",
    "on a given problem at given settings the gain over heavy-ball momentum": (
        "a judgement on settings; item 75's cell compares the two at one setting"
    ),
    '"Faster in practice" depends on the settings': (
        "a judgement on settings; the card's cell compares the two at one setting"
    ),
    "It grows with the model's capacity and shrinks with more data": (
        "a rule of thumb about the generalization gap; the methodology chapter's rows measure the "
        "gap against λ, not against data size"
    ),
    "that is bias.": (
        "the name of the clause before it: swapped with the next sentence's name, the card's "
        "definitions of bias and variance (bound to runs) hold the words"
    ),
    "that is variance.": (
        "the name of the clause before it: swapped with the sentence before, the card's "
        "definitions of bias and variance (bound to runs) hold the words"
    ),
    "Boosting builds the ensemble in sequence": (
        "a definition of a procedure (AdaBoost's weights); item 69's claim measures which error "
        "boosting lowers"
    ),
    "is still far from it when the run ends": (
        "a description of the card's figure run at settings the card does not print ('small' is "
        "ε's size relative to H, a setting)"
    ),
    "That needs w copies of every parameter's squared gradient": (
        "a memory count, arithmetic not a measurement"
    ),
    "makes Adam less aggressive on flat coordinates": (
        "the numbers are ε's settings; the effect of ε is item 78's figure, no cell of this card "
        "runs it"
    ),
    "Regularization is anything that lowers the test error more than the training error": (
        "a definition (Goodfellow et al.), nothing to measure"
    ),
    "The toolbox works in three ways": "a classification of methods, nothing to measure",
    "Small weights make the function smoother": (
        "a judgement ('usually generalizes better') with a bound in words; no run of the book sets"
        " weight sizes against smoothness"
    ),
    "flat minima.": (
        "the end of a list of names (the paragraph's last item); the item's claim on sharp minima "
        "is bound on item 71"
    ),
    "Label smoothing replaces the one-hot target": (
        "a definition of a procedure; 'less over-confident' is its purpose, not a measurement"
    ),
    "Mixup trains on convex combinations of two examples": (
        "a definition of a procedure ('convex combination' names weights in [0, 1]; 'concave' is "
        "no contrary)"
    ),
    "Fewer parameters mean less to fit": (
        "a judgement from practice (less data, less overfitting); the card's claim binds the "
        "parameter count itself"
    ),
    "AlexNet pools once more before fc6": (
        "'once more' counts a pooling; the numbers are the card's cell's AlexNet count, read by "
        "the numbers' census"
    ),
    "What the average does not do is lower the noise floor": (
        "the momentum chapter's noise section measures the equal floors in its rows; the card's "
        "cell measures the noise-to-signal ratio, not the floor"
    ),
    "The same momentum escapes a saddle": (
        "a description of item 114's race, whose cell and reading bind who leaves the saddle first"
    ),
    "On a convex problem that is a reasonable schedule": (
        "a judgement; AdaGrad's falling rate is bound on items 56, 77 and 109"
    ),
    "Fit one Gaussian Q to a two-peaked P": (
        "the card's instruction (what the cell does); 'Laplace' would name another exercise, not a"
        " contrary"
    ),
    "Adam and RMSProp are good first choices": (
        "a judgement from practice; the adaptive chapter's rows measure the rates' independence of"
        " scale"
    ),
    # cards, items 100-131
    "Raising α from 0.5 to 0.99 during training starts with a responsive optimizer": (
        "a rule of practice for scheduling momentum (Sutskever et al.'s warm-up of μ): no run of "
        "the book trains with a momentum schedule against a fixed one"
    ),
    "With a schedule on momentum the same optimizer does it": (
        "a pointer to the library's schedulable hyperparameters (the compare command's schedules),"
        " not a statement about optimization"
    ),
    "Why momentum helps poor conditioning, on the quadratic": (
        "the card's heading: it names the setting (the quadratic, κ = L/μ) that its following "
        "sentences derive on, each bound to its typed relation"
    ),
    "The cell shows the three at the same rate": (
        "what the cell prints, with its printed output beside it; the numbers it names are read by "
        "the card's reading 'holds for the right pair of settings, not for any'"
    ),
    "The lecture's figure is the damped case": (
        "a pointer to the lecture's own figure (the seed's slide), which the book does not redraw"
    ),
    "items 24 and 127 show the bouncing one": (
        "a pointer to items 24 and 127, whose cells and readings show momentum rolling faster and "
        "swinging past"
    ),
    "Nesterov as written needs the gradient at Θ + αv, a point where no parameter lives": (
        "how autograd frameworks are built (backward fills .grad at the tensors held), a fact of "
        "the software; the card's cell runs the stored form"
    ),
    "They are starting values: on the book's problems the best rate still differs": (
        "a pointer to item 131 and to the compare command's tuned rates, which this card does not "
        "run"
    ),
    "The two races separate the two ideas": (
        "the card's heading for its two races; the ravine's and the saddle's sentences after it "
        "are bound to a run and to the cell's reading"
    ),
    "Q = P.": (
        "the end of the sentence 'with equality only when Q/P is constant, i.e. Q = P', cut off "
        "at 'i.e.'; the sentence's Jensen step is bound to a run"
    ),
    "It trains an embedding in which distance means dissimilarity": (
        "the purpose of the triplet loss (a description of its training signal: pairs, not "
        "labels), nothing a run can refute"
    ),
    "That does not make them best everywhere, and the gap to the best optimizer": (
        "a judgement from optimizer benchmarks across tasks; the book compares optimizers on its "
        "own problems, one at a time, in the compare command's reports"
    ),
    "the cheap insurance is to try a few optimizers, each at its own tuned rate": (
        "a rule of method (what descentlab compare automates), not a fact a run shows"
    ),
}
