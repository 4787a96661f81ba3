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

A sentence that types a formula is bound by evaluating the formula as typed
(:mod:`descentlab.book.typed`): :func:`formula_reading` against the values
the card's cell computed, :func:`~descentlab.book.typed.typed` (a claim's row) against a
reference computation, beside a misconception's (or the nearest wrong) formula it refutes.

:data:`UNBACKED` lists the cards' sentences that nothing the book runs can back, with why.

Example:
    >>> r = next(r for r in READINGS if r.item == 118)
    >>> r.said
    "so its entropy is far below a fair die's"
"""

from __future__ import annotations

import ast
import copy
import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from descentlab.book import basics_demos as _basics
from descentlab.book import card_runs as _r
from descentlab.book.bibliography import cite, cite_in
from descentlab.book.checks import shows as _shows
from descentlab.book.keep_claims import _moments, _noise_scale_batch
from descentlab.book.typed import Cases, gap, part, points, typed

__all__ = ["CLAIMS", "READINGS", "UNBACKED", "Reading", "formula_reading"]


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


def formula_reading(item: int, said: str, formula: str, cases: Callable[[Ran], Cases],
                    shows: str, *, rel: float = 1e-9,
                    names: Mapping[str, str] | None = None) -> Reading:  # fmt: skip
    """A reading of card ``item``'s phrase ``said`` that types ``formula`` (a part of it): its
    values are ``(rel, gap)`` (:func:`~descentlab.book.typed.gap` over ``cases(run)``, the
    numbers the cell used and what it computed there), so the row holds while the typed
    formula, evaluated, stays within ``rel`` of the cell's values.

    Raises:
        ValueError: ``formula`` is not part of ``said``.
    """
    part(formula, said)
    return Reading(item, said, lambda run: (rel, gap(formula, cases(run), names)),
                   f"{shows}: the typed {formula} evaluated, its largest relative gap against "
                   f"a tolerance {rel:g}")  # fmt: skip


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
    first: str = "by hand", second: str = "descentlab", tol: float = 1e-12
) -> Callable[[Ran], tuple[float, float]]:
    """(tolerance, largest difference) between the numbers the cell printed after ``first``
    and after ``second`` (on one line, or on two); the tolerance ``tol`` relative."""

    def read(run: Ran) -> tuple[float, float]:
        text = run.output[run.output.find(first) + len(first) :]
        one, _, other = text.partition(second)
        a, b = (re.findall(r"[-+]?\d+\.\d+", part) for part in (one, other.split("\n\n")[0]))
        return _gap(a, b, tol)

    return read


def _each(first: str, second: str) -> Callable[[Ran], tuple[float, float]]:
    """(tolerance, largest difference) between every number the cell printed after ``first``
    and the one after ``second`` on the same line."""

    def read(run: Ran) -> tuple[float, float]:
        a, b = (re.findall(rf"{re.escape(label)} ([-+]?\d+\.\d+)", run.output)
                for label in (first, second))  # fmt: skip
        return _gap(a, b)

    return read


def _gap(a: list[str], b: list[str], tol: float = 1e-12) -> tuple[float, float]:
    if not a or len(a) != len(b):
        raise ValueError("the cell printed no two sets of values to compare")
    pairs = [(float(x), float(y)) for x, y in zip(a, b, strict=True)]
    return tol * max(1.0, *(abs(x) for x, _ in pairs)), max(abs(x - y) for x, y in pairs)


def _close(
    a: str, b: str | None, tol: float, value: float = 0.0
) -> Callable[[Ran], tuple[float, float]]:
    """(``tol``, the difference between the number pattern ``a`` reads and the one ``b`` reads,
    or ``value`` where ``b`` is None): a > b when the cell's two numbers agree."""
    return lambda run: (tol, abs(printed(run, a) - (value if b is None else printed(run, b))))


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


# ------------------------------------------------------------------------------------------
# cards, items 67-99: the values their readings take from the cells


def _rate_decades(run: Ran) -> tuple[float, float]:
    """The fewest decades the cell's SGD losses over its four rates span on one landscape (a
    divergence counted as 3), against 1."""
    spans = []
    for row in re.findall(r"SGD loss after 300 steps by lr: (\{.*\})", run.output):
        losses = list(ast.literal_eval(row).values())
        finite = [float(v) for v in losses if v != "diverged"]
        spans.append(math.log10(max(finite) / min(finite)) + 3 * ("diverged" in losses))
    if not spans:
        raise ValueError("the cell printed no losses by rate")
    return min(spans), 1.0


def _quadratic_kappa(run: Ran) -> tuple[float, float]:
    """The condition number of the cell's landscape ``f`` (its Hessian at the start, by
    autograd), against 10."""
    import torch

    f = run.namespace["f"]
    at = torch.as_tensor(f.start, dtype=torch.float64)
    eig = torch.linalg.eigvalsh(torch.autograd.functional.hessian(lambda z: f(z[None])[0], at))
    return float(eig.max() / eig.min()), 10.0


def _early_stop_epochs(run: Ran) -> tuple[float, float]:
    """0.5 against how far the cell's stopper's kept epoch is from the lowest validation loss's
    plus how far the epoch it stopped at is from that epoch + patience."""
    kept, losses = run.namespace["stopper"].state_dict(), run.namespace["val_losses"]
    best = int(np.argmin(losses))
    return 0.5, abs(kept["best_step"] - best) + abs(
        run.namespace["epoch"] - best - kept["patience"]
    )


def _batch_norm_cases(run: Ran) -> list[tuple[dict[str, float], float]]:
    """Two entries of each feature of the cell's batch norm output (|x̂| > 0.1): the batch's
    mean, variance (biased) and ε there, and the output."""
    bn, x, out = (run.namespace[k] for k in ("bn", "x", "out"))
    xs, cases = x.double(), []
    for j in range(x.shape[1]):
        rows = [i for i in range(x.shape[0]) if abs(float(out[i, j])) > 0.1][:2]
        mean, var = float(xs[:, j].mean()), float(xs[:, j].var(unbiased=False))
        cases += [({"x": float(xs[i, j]), "mB": mean, "vB": var, "ε": bn.eps}, float(out[i, j]))
                  for i in rows]  # fmt: skip
    return cases


def _running_statistics(run: Ran) -> tuple[float, float]:
    """The cell's batch norm in eval mode (a copy) on its batch: the gap to the batch's own
    normalization against the gap to the one by the running averages."""
    import torch

    bn, x = copy.deepcopy(run.namespace["bn"]).eval(), run.namespace["x"]
    with torch.no_grad():
        y = bn(x)
    by_running = (x - bn.running_mean) / (bn.running_var + bn.eps).sqrt()
    return float((y - run.namespace["out"]).abs().max()), float((y - by_running).abs().max())


def _channel_sum(run: Ran) -> tuple[float, float]:
    """1e-4 against: the gap between the cell's conv1's first output channel and the sum of its
    kernels' responses to each input channel alone, plus 1 if its weight's shape is not
    (out_channels, in_channels, kH, kW)."""
    import torch

    conv, x = run.namespace["conv1"], run.namespace["x"]
    shape = (conv.out_channels, conv.in_channels, *conv.kernel_size)
    with torch.no_grad():
        alone = sum(torch.nn.functional.conv2d(x[:, c : c + 1], conv.weight[:1, c : c + 1])
                    for c in range(conv.in_channels)) + conv.bias[0]  # fmt: skip
        off = float((conv(x)[:, :1] - alone).abs().max())
    return 1e-4, off + (tuple(conv.weight.shape) != shape)


def _alexnet_weights(run: Ran) -> tuple[float, float]:
    """The cell's AlexNet fully connected weights against 10 times its convolutions'."""
    return float(run.namespace["dense"]), 10.0 * run.namespace["conv"]


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
    # cards, items 1-33
    Reading(1, "Training picks w so that this distribution resembles the one the data came from",
            lambda run: (min(printed(run, rf"model mean {m}: KL\(P_data\|\|P_model\) = {_FLOAT}")
                             for m in ("0\\.0", "1\\.0", "2\\.0")),
                         printed(run, rf"model mean 1\.5: KL\(P_data\|\|P_model\) = {_FLOAT}")),
            "the cell's least KL over the models away from the data's mean 1.5 against the "
            "model at 1.5"),
    Reading(1, "minimizing the divergence is maximizing E_data[log P_model(x | w)]",
            lambda run: (_spread(run, -1), _spread(run, 1)),
            "the spread over the cell's four models of KL - log-likelihood against KL + "
            "log-likelihood (constant when minimizing one is maximizing the other)"),
    Reading(2, "ŵ = argmax_w p_model(X | w)",
            _close(rf"argmax of the log-likelihood: mu = {_FLOAT}",
                   rf"sample mean \(the closed-form MLE\): {_FLOAT}", 0.011),
            "the cell's argmax of the likelihood over a grid of step 0.01 against the closed-form"
            " MLE: a tolerance against their difference"),
    Reading(6, "(1/b) Σ|f_w(x_i) - y_i| + n log 2b",
            _close(rf"NLL = {_FLOAT};", rf"L1/b \+ n log 2b = {_FLOAT}", 2e-6),
            "the cell's summed Laplace NLL (descentlab) against (1/b) Σ|f_w(x_i) - y_i| + n log 2b:"
            " a tolerance against their difference"),
    Reading(8, "the normal equations XᵀX w = Xᵀy",
            _agree("normal equations:", "500 GD steps", 1e-6),
            "the cell's solution of XᵀX w = Xᵀy against 500 gradient steps: a tolerance against "
            "the largest difference"),
    Reading(10, "so second-order information is available without ever forming H",
            _close(rf"max \|Hv - H @ v\| = {_FLOAT}", None, 1e-12),
            "the cell's Hv by differentiating ∇f·v (p numbers) against H @ v: a tolerance "
            "against the largest difference"),
    Reading(19, "w^t = w^0 - Σ_{k<t} η_k ∇L(w^k)",
            _close(rf"w_50 = {_FLOAT};", rf"w_0 - sum eta_k g_k = {_FLOAT}", 1e-9),
            "the cell's w after 50 descentlab SGD steps against w⁰ - Σ η_k ∇L(w^k): a tolerance "
            "against their difference"),
    Reading(20, "A constant rate fails the second, a geometric decay fails the first",
            lambda run: (float(bool(re.search(r"constant 0\.1: sum eta diverges True , sum eta\^2 "
                                              r"converges False", run.output))
                               and bool(re.search(r"exponential : sum eta diverges False, sum "
                                                  r"eta\^2 converges True", run.output))), 0.5),
            "the cell's Robbins-Monro rows: the constant rate's Σ η² diverges and the "
            "exponential's Σ η converges (1) or not (0)"),
    Reading(23, "about κ steps per factor e",
            lambda run: (printed(run, rf"kappa +1000: +{_FLOAT} steps")
                         / printed(run, rf"kappa +10: +{_FLOAT} steps"), 30.0),
            "the cell's steps at κ = 1000 over the steps at κ = 10 (100 if the count grows like "
            "κ, 10 like √κ) against 30"),
    Reading(29, "steps -η m̂/(√v̂ + ε) with both bias-corrected",
            _agree("momentum + RMSProp by hand:", "descentlab Adam"),
            "the cell's bias-corrected m̂/(√v̂ + ε) steps by hand against descentlab's Adam: "
            "its tolerance against the largest difference printed"),
    Reading(30, "The cell runs the whole pipeline on a tiny regression",
            _close(rf"slope {_FLOAT} \(true 3\)", None, 0.1, 3.0),
            "the cell's fitted slope after the pipeline against the true 3: a tolerance of 0.1 "
            "against their difference"),
    Reading(31, "Autograd does exactly this bookkeeping",
            _close(r"autograd gradient at .*: \[([-\d.]+)\]", rf"the rule by hand +: {_FLOAT}",
                   1e-9),
            "the cell's autograd derivative against the power rule's by hand: a tolerance against "
            "their difference"),
    Reading(32, "The gradient stacks them, ∇f = (f_x, f_y)",
            lambda run: (1e-9, max(abs(printed(run, rf"autograd gradient at .*: \[{a}\]")
                                       - printed(run, rf"the rule by hand +: \[{b}\]"))
                                   for a, b in ((_FLOAT + ", .*", "([-\\d.]+), .*"),
                                                (".*, " + _FLOAT, ".*, ([-\\d.]+)")))),
            "the cell's autograd gradient against (f_x, f_y) by hand: a tolerance against the "
            "largest difference"),
    # cards, items 34-66 (the values read by the functions of their block below)
    Reading(34, "the chain rule is the shortcut", lambda run: _by_hand_gap(run),
            "the cell's chain rule by hand, 6(2x - 1)², against autograd's derivative at 0.8: "
            "a tolerance against the difference"),
    Reading(36, "to minimize a loss L(w, b)",
            _pair(rf"step   0: .*L {_FLOAT}", rf"step 300: .*L {_FLOAT}"),
            "the cell's loss L(w, b) at step 0 against step 300"),
    Reading(36, "the question becomes where that function is lowest",
            lambda run: (1e-3, abs(printed(run, rf"step 300: w {_FLOAT}") - 2)
                         + abs(printed(run, rf"step 300: .*b {_FLOAT}") - 1)),
            "the cell's end against the data's line w = 2, b = 1, where L = 0 is lowest: a "
            "tolerance against the distance"),
    Reading(37, "Four ways to the minimum of f = x² - 4x + 6",
            lambda run: (1e-3, max(abs(float(v) - 2)
                                   for v in re.findall(rf"x\* = {_FLOAT}", run.output))),
            "the x* each of the cell's four ways prints against 2: a tolerance against the "
            "largest distance"),
    Reading(39, "The optimizers differ along two axes",
            lambda run: _true(run, _axes_shown),
            "the cell's chains: a velocity's trace for momentum, Nesterov and Adam, a per-"
            "coordinate scale for AdaGrad, RMSProp and Adam (1: so, 0: not)"),
    Reading(39, "so the table's two axes are visible in the optimizer's own description",
            lambda run: _true(run, _axes_shown),
            "the cell's chains: a velocity's trace for momentum, Nesterov and Adam, a per-"
            "coordinate scale for AdaGrad, RMSProp and Adam (1: so, 0: not)"),
    Reading(40, "the rate of change of f along u is ∇f·u = ‖∇f‖ cos θ",
            lambda run: (1e-3 * abs(printed(run, rf"-\|grad\| = {_FLOAT}")),
                         abs(printed(run, rf"slope {_FLOAT}")
                             - printed(run, rf"-\|grad\| = {_FLOAT}"))),
            "the cell's least slope ∇f·u over 360 unit directions against -‖∇f‖ (cos θ = -1): "
            "a tolerance against the difference"),
    Reading(40, "the negative gradient is the direction of steepest descent",
            lambda run: (1.0, abs(printed(run, rf"360 directions: {_FLOAT} degrees")
                                  - printed(run, rf"-gradient direction: {_FLOAT} degrees"))),
            "the cell's steepest of 360 directions against -∇f's, in degrees: 1° (the "
            "directions' spacing) against the difference"),
    Reading(42, "The descent is monotone",
            lambda run: (min(a - b for a, b in itertools.pairwise(_listed(run, r"lr +0\.2"))),
                         0.0),
            "the cell's least decrease of x from one step to the next, at lr 0.2, against 0"),
    Reading(43, "at η = 0.2 it is 0.6",
            lambda run: (1e-3, abs((_listed(run, r"lr +0\.2")[1] - 2) / 2 - 0.6)),
            "the cell's first error factor (x₁ - 2)/(x₀ - 2) at lr 0.2 against 0.6: a "
            "tolerance against the distance"),
    Reading(43, "it is 0.98, so ten steps remove only 18 % of the error",
            lambda run: (5e-3, max(abs((_listed(run, r"lr 0\.01")[1] - 2) / 2 - 0.98),
                                   abs(1 - (_listed(run, r"lr 0\.01")[10] - 2) / 2 - 0.18))),
            "the cell's first error factor at lr 0.01 against 0.98 and the share of the error "
            "its ten steps removed against 18 %: a tolerance against the larger distance"),
    Reading(43, "the iterate jumps from 4 to 2 - 2 = 0 and back forever",
            lambda run: (1e-9, max(abs(x - (0.0 if k % 2 else 4.0))
                                   for k, x in enumerate(_listed(run, r"lr +1\.0")))),
            "the cell's path at lr 1 against 4, 0, 4, 0, ...: a tolerance against the largest "
            "distance"),
    Reading(44, "x sin x has several minima", lambda run: _two_ends(run),
            "the distance between the cell's two ends (starts 2.5 and 1.5) against π/2, half "
            "the spacing of x sin x's valleys"),
    Reading(44, "the start decides which valley it ends in", lambda run: _two_ends(run),
            "the distance between the cell's two ends (starts 2.5 and 1.5) against π/2, half "
            "the spacing of x sin x's valleys"),
    Reading(44, "From 2.5 the slope points right, towards the minimum near 4.91",
            lambda run: (5e-3, abs(_x_sin_x_end(2.5, 0.25)(run) - 4.91)),
            "the cell's end from 2.5 against 4.91: a tolerance against the distance"),
    Reading(44, "from 1.5 it points left, towards the minimum at 0",
            lambda run: (5e-3, abs(_x_sin_x_end(1.5, 0.25)(run) - 0.0)),
            "the cell's end from 1.5 against 0: a tolerance against the distance"),
    Reading(45, "From 2.5, lr 0.05 creeps into the nearby minimum",
            lambda run: (1e-2, abs(_x_sin_x_end(2.5, 0.05)(run) - 4.9132)),
            "the cell's end at lr 0.05 against x sin x's minimum nearest 2.5, 4.9132: a "
            "tolerance against the distance"),
    Reading(47, "builds every (x, y) pair from two axes, and the values form a matrix",
            lambda run: _bowl_values(run),
            "the cell's 5 × 5 values against 3(x - 2)² + (y - 2)² at every (x, y) of its axes: a "
            "tolerance against the largest difference"),
    Reading(48, "shuffle the example indices, cut them into consecutive batches",
            lambda run: _true(run, _epochs_hold),
            "the cell's epochs: 12 examples shuffled and cut into 3 batches of 4, each once, "
            "the two epochs' batches different (1: so, 0: not)"),
    Reading(48, "Every example is used exactly once per epoch (sampling without replacement), "
                "and reshuffling each epoch makes the batches different every time",
            lambda run: _true(run, _epochs_hold),
            "the cell's epochs: 12 examples shuffled and cut into 3 batches of 4, each once, "
            "the two epochs' batches different (1: so, 0: not)"),
    Reading(49, "the same shape as W", lambda run: _true(run, _gradient_shape),
            "the cell's autograd dL/dW printed as 3 rows of 2, W's shape (1: so, 0: not)"),
    Reading(49, "it is the outer product δ xᵀ", _agree("autograd dL/dW:", "outer(delta, x):"),
            "the cell's autograd dL/dW against outer(δ, x): a tolerance against the largest "
            "difference printed"),
    Reading(50, "the gradient is zero, and gradient descent stops there",
            lambda run: (1e-3, abs(_double_well_slope(
                printed(run, rf"^sgd +: ends at x = {_FLOAT}")))),
            "the double well's slope at the cell's end of plain descent: a tolerance against "
            "its size"),
    Reading(50, "momentum 0.9 crosses and plain descent stays",
            _pair(rf"^sgd +: ends at x = {_FLOAT}", rf"^momentum: ends at x = {_FLOAT}"),
            "the cell's ends: plain descent's x against momentum's (the deeper well at x < 0)"),
    Reading(53, "the range of rates that works widens",
            lambda run: (min(len(_listed(run, n)) for n in ("rmsprop", "adam")),
                         len(_listed(run, "sgd"))),
            "the cell's number of rates within 0.01 of the minimum: the fewer of RMSProp's and "
            "Adam's against SGD's"),
    Reading(54, "if the loss rose, the step was too long, so undo it and halve the rate",
            lambda run: (printed(run, rf"without, lr 1\.5 : \|x - 2\| after 20 steps = {_FLOAT}"),
                         abs(printed(run, rf"^with the rule .*\.\.\. {_FLOAT}") - 2)),
            "the cell's |x - 2| after 20 steps at lr 1.5: without the rule against with it"),
    Reading(58, "the first step is exactly ε per coordinate",
            lambda run: (1e-8, max(abs(v - 0.1) for v in _listed(run, "first step"))),
            "the cell's first Adam step per coordinate against ε = 0.1: a tolerance against the "
            "largest distance"),
    Reading(62, "The generalization gap is the difference between the two",
            lambda run: _gap_is_difference(run),
            "the cell's printed gaps against test MSE - train MSE: a tolerance against the "
            "largest difference"),
    Reading(63, "so both training and test errors are high",
            lambda run: (min(printed(run, rf"degree  1: train MSE {_FLOAT}"),
                             printed(run, rf"degree  1: .*test MSE {_FLOAT}")),
                         max(printed(run, rf"degree  5: train MSE {_FLOAT}"),
                             printed(run, rf"degree  5: .*test MSE {_FLOAT}"))),
            "the cell's line (degree 1): the lower of its train and test MSE against the higher "
            "of degree 5's"),
    Reading(64, "every example is validated exactly once, never trained on in its own fold",
            lambda run: _true(run, lambda out: len(re.findall(r"overlap with train: 0$", out,
                                                              re.MULTILINE)) == 5
                              and "every example validated once: True" in out),
            "the cell's five folds: no overlap with their training part, every example "
            "validated once (1: so, 0: not)"),
    # cards, items 67-99
    Reading(67, "draws n examples from n with replacement",
            lambda run: (len(run.namespace["draws"][0])
                         - max(len(np.unique(d)) for d in run.namespace["draws"]), 0.0),
            "the cell's bootstrap draws: a sample's length against its most distinct examples "
            "(repeats: drawn with replacement)"),
    formula_reading(67, "is (1 - 1/n)ⁿ → 1/e", "(1 - 1/n)ⁿ",
                    lambda run: [({"n": run.namespace["n"]}, 1 - run.namespace["distinct"])],
                    "the share of examples the cell's 100 bootstrap samples never drew",
                    rel=0.01),
    Reading(67, "a standard error without a formula",
            lambda run: (0.1, abs(printed(run, rf"of the mean {_FLOAT},")
                                  / printed(run, rf"sigma/sqrt\(n\) {_FLOAT}") - 1)),
            "the cell's bootstrap standard error of a mean against σ/√n: 10 % against their "
            "relative gap"),
    Reading(70, "B = 1 (stochastic) gives the noisiest",
            _pair(rf"^B = +1: .* {_FLOAT}$", rf"^B = +16: .* {_FLOAT}$"),
            "the cell's squared distance of the batch gradient from the full one: B = 1 "
            "against B = 16"),
    Reading(70, "B = N (batch) the exact gradient",
            lambda run: (1e-12, printed(run, rf"^B = 2048: .* {_FLOAT}$")),
            "the cell's squared distance of the batch gradient at B = N = 2048 from the full "
            "one against 1e-12"),
    Reading(70, "mini-batches sit between",
            lambda run: (min(a - b for a, b in itertools.pairwise(
                [printed(run, rf"^B = +{b}: .* {_FLOAT}$") for b in (1, 16, 256, 2048)])), 0.0),
            "the cell's squared distances at B = 1, 16, 256, 2048: the least fall from one "
            "batch size to the next, against 0"),
    Reading(72, "all its difficulty is in η", _rate_decades,
            "the cell's SGD losses after 300 steps over four rates: the fewest decades "
            "(a divergence counted as 3) they span on a landscape, against 1"),
    formula_reading(74, "the point the accumulated step is about to reach, W - ηβa", "W - ηβa",
                    lambda run: [({"W": run.namespace["w"], "a": run.namespace["a"],
                                   "η": run.namespace["opt"].defaults["lr"],
                                   "β": run.namespace["opt"].defaults["momentum"]},
                                  run.namespace["W"].item())],
                    "the cell's loop by hand against descentlab's Nesterov, which stores the "
                    "look-ahead point", rel=1e-12),
    Reading(75, "on an ill-conditioned quadratic", _quadratic_kappa,
            "the condition number of the cell's quadratic (its Hessian's eigenvalues, autograd) "
            "against 10"),
    Reading(78, "if the loss is rescaled the steps stay the same",
            lambda run: (1e-5, abs(printed(run, rf"by +1\.0: w after 200 steps = {_FLOAT}")
                                   / printed(run, rf"by 100\.0: w after 200 steps = {_FLOAT}")
                                   - 1)),
            "the cell's Adadelta after 200 steps on w² and on 100 w²: a tolerance 1e-5 against "
            "their relative gap"),
    Reading(81, "gives exactly that factor", _agree(),
            "the cell's Adam with the corrections folded into the rate by hand against "
            "descentlab's Adam: its tolerance against the largest difference printed"),
    Reading(82, "ε is in the denominator next to √v̂",
            _pair(rf"^gradient 1e-06: first step +eps 1e-08: {_FLOAT}",
                  rf"^gradient 1e-06: .*eps 1e-03: {_FLOAT}$"),
            "the cell's first Adam step at gradient 1e-6: ε = 1e-8 against ε = 1e-3"),
    Reading(82, "While √v̂ ≫ ε it does nothing",
            lambda run: (0.01, abs(printed(run, rf"^gradient 1e\+00: first step +eps 1e-08: "
                                                rf"{_FLOAT}")
                                   / printed(run, rf"^gradient 1e\+00: .*eps 1e-07: {_FLOAT}")
                                   - 1)),
            "the cell's first Adam step at gradient 1 with ε = 1e-8 and 1e-7: 1 % against their "
            "relative gap"),
    formula_reading(82, "it caps the step at about η·|m̂|/ε", "η·|m̂|/ε",
                    lambda run: [({"η": run.namespace["opt"].defaults["lr"], "m": 1e-9, "ε": 1e-3},
                                  printed(run, rf"^gradient 1e-09: .*eps 1e-03: {_FLOAT}$"))],
                    "the cell's first Adam step at gradient 1e-9, ε = 1e-3 (where m̂ is the "
                    "gradient)", rel=0.01, names={"m̂": "m"}),
    Reading(82, "the right value depends on the gradients' scale",
            lambda run: tuple(printed(run, rf"^gradient {g}: first step +eps 1e-08: {_FLOAT}")
                              / printed(run, rf"^gradient {g}: .*eps 1e-03: {_FLOAT}$")
                              for g in ("1e-09", r"1e\+00")),
            "how much the cell's first Adam step changes from ε = 1e-3 to 1e-8: at gradient "
            "1e-9 against at gradient 1"),
    Reading(84, "keeps the weights from the epoch with the lowest validation loss and stops "
                "after patience epochs without improvement", _early_stop_epochs,
            "the cell's stopper: 0.5 against how far its kept epoch is from the lowest "
            "validation loss's plus how far its stop is from that epoch + patience"),
    Reading(85, "For adaptive optimizers the two are not the same",
            lambda run: (float((run.namespace["w"] - run.namespace["v"]).detach().abs().max()),
                         1e-12),
            "the cell's weights after one step of AdamW and of Adam with L2 (zero data "
            "gradient): their largest difference against 1e-12"),
    formula_reading(85, "AdamW applies the decay 1 - ηλ directly to the weights", "1 - ηλ",
                    lambda run: [({"η": run.namespace["opt"].defaults["lr"],
                                   "λ": run.namespace["opt"].defaults["weight_decay"]}, w / w0)
                                 for w, w0 in zip(run.namespace["w"].tolist(), (2.0, -1.0),
                                                  strict=True)],
                    "the cell's AdamW weights after one step on a zero gradient over the "
                    "weights before (2, -1)", rel=1e-12),
    formula_reading(89, "scales the survivors by 1/(1 - p)", "1/(1 - p)",
                    lambda run: [({"p": run.namespace["drop"].p},
                                  float(run.namespace["out"].max()))],
                    "the value torch's Dropout gives the cell's surviving units of 1",
                    rel=1e-6),
    formula_reading(90, "x̂ = (x - μ_B)/√(σ²_B + ε)", "(x - μ_B)/√(σ²_B + ε)", _batch_norm_cases,
                    "torch's BatchNorm1d output on the cell's batch, at 6 entries",
                    rel=1e-5, names={"μ_B": "mB", "σ²_B": "vB"}),
    Reading(90, "At test time the running averages of μ and σ² replace the batch's",
            _running_statistics,
            "the cell's batch norm in eval mode on its batch: its gap to the batch-normalized "
            "values against its gap to the values normalized by the running averages"),
    Reading(91, "Convolution slides a flipped kernel over a signal",
            lambda run: (1e-12, float(np.abs(np.asarray(run.namespace["true_conv"])
                                             - run.namespace["torch_flipped"].flatten().numpy()
                                             ).max())),
            "numpy's convolve against torch's conv1d with the kernel flipped, in the cell: "
            "1e-12 against the largest difference"),
    Reading(91, "does not flip the kernel: it computes a cross-correlation",
            lambda run: (1e-12, float(np.abs(
                np.correlate(run.namespace["f"], run.namespace["k"], "valid")
                - run.namespace["torch_conv"].flatten().numpy()).max())),
            "numpy's correlate against torch's conv1d, on the cell's signal and kernel: 1e-12 "
            "against the largest difference"),
    Reading(91, "it matters when comparing with a textbook formula",
            lambda run: (float(np.abs(np.asarray(run.namespace["true_conv"])
                                      - run.namespace["torch_conv"].flatten().numpy()).max()),
                         1e-12),
            "numpy's convolve against torch's conv1d, in the cell: their largest difference "
            "against 1e-12"),
    Reading(92, "weight has shape (out_channels, in_channels, kH, kW): every output channel has "
                "one kH × kW kernel per input channel and sums their responses",
            _channel_sum, "the cell's conv1 on an image: 1e-4 against the gap between an output "
            "channel and the sum of its per-input-channel kernels' responses (and its weight's "
            "shape against (out, in, kH, kW))"),
    formula_reading(92, "has 16·3·5·5 weights (plus 16 biases)", "16·3·5·5",
                    lambda run: [({}, run.namespace["conv1"].weight.numel())],
                    "the weights of the cell's torch Conv2d(3, 16, 5)"),
    Reading(95, "AlexNet's parameters are dominated by its fully connected layers",
            _alexnet_weights,
            "the cell's AlexNet table: its fully connected weights against 10 times its "
            "convolutions'"),
    formula_reading(95, "the unpooled 13·13·256 map of conv5 to 4,096 units", "13·13·256",
                    lambda run: [({}, next(r["weights"] for r in run.namespace["rows"]
                                           if r["layer"] == "fc6") / 4096)],
                    "the cell's fc6 weights (descentlab's AlexNet table) over its 4,096 units"),
    formula_reading(96, "costs k²·b·C_out", "k²·b·C_out",
                    lambda run: [({"k": 3, "b": 64, "C_out": 256}, run.namespace["r"]["conv"])],
                    "descentlab's bottleneck count in the cell (k = 3, b = 64, C_out = 256): "
                    "the k × k convolution's weights"),
    formula_reading(96, "instead of k²·C·C_out", "k²·C·C_out",
                    lambda run: [({"k": 3, "C": 256, "C_out": 256},
                                  run.namespace["r"]["direct"])],
                    "descentlab's bottleneck count in the cell (k = 3, C = C_out = 256): the "
                    "direct convolution's weights"),
    Reading(98, "the signal, which points the same way step after step, adds up",
            lambda run: (printed(run, rf"step mean {_FLOAT} "), 1.0),
            "the cell's mean step of momentum (lr 1) on the noisy gradient of mean 1, against "
            "one gradient's signal 1"),
    formula_reading(98, "√((1-α)/(1+α)) times that of a single gradient", "√((1-α)/(1+α))",
                    lambda run: [({"α": run.namespace["opt"].defaults["momentum"]},
                                  printed(run, rf"momentum {_FLOAT},"))],
                    "the cell's measured noise-to-signal ratio of momentum's steps (3,900 "
                    "steps)", rel=0.1),
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
    # listed sentences backed
    Reading(27, "the cell's y falls monotonically",
            lambda run: (0.5, float((run.namespace["y"].diff() > 0).sum()
                                    + (run.namespace["y"] < 0).sum())),
            "the cell's last run (RMSProp): 0.5 against the steps where y rises or is below 0"),
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

    moves, opt, w = _fed(lambda p: Adagrad(p, lr=0.1), grads)
    return np.abs(moves), opt.state[w]["sum"].numpy()
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


# ------------------------------------------------------------------------------------------
# cards, items 34-66: what their cells printed, read (the readings' values), and the runs of
# their conceptual sentences


def _listed(run: Ran, label: str) -> list[float]:
    """The numbers of the list the cell printed after ``label`` (``lr  0.2: [4.0, 3.2, ...]``,
    ``autograd gradient at [0.8] : [2.16]``: the list after the label's colon)."""
    m = re.search(rf"^{label}[^\n]*?: *\[([^\]]*)\]", run.output, re.MULTILINE)
    if m is None:
        raise ValueError(f"the cell printed no list after {label!r}")
    return [float(v) for v in re.findall(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", m[1])]


def _by_hand_gap(run: Ran) -> tuple[float, float]:
    """(tolerance, largest difference) between autograd's gradient and the rule by hand."""
    by_hand = re.search(r"^the rule by hand *: *\[?([^\]\n]*)", run.output, re.MULTILINE)
    if by_hand is None:
        raise ValueError("the cell printed no rule by hand")
    hand = [float(v) for v in by_hand[1].split(",")]
    return _gap([str(v) for v in _listed(run, "autograd gradient")], [str(v) for v in hand])


def _x_sin_x_end(start: float, lr: float) -> Callable[[Ran], float]:
    return _p(rf"start {start}, lr {lr}: after 30 steps x = {_FLOAT}")


def _true(run: Ran, holds: Callable[[str], bool]) -> tuple[float, float]:
    """(1, 0) when the cell's output bears out ``holds``, (0, 0) otherwise: a reading of a
    property of what the cell printed rather than of two numbers."""
    return float(holds(run.output)), 0.0


def _epochs_hold(out: str) -> bool:
    """Item 48's cell: each epoch's batches a partition of the 12 examples into consecutive
    batches of 4, in a shuffled order, and the two epochs' batches different."""
    epochs = [[[int(i) for i in b.split(",")] for b in re.findall(r"\[([\d, ]+)\]", line)]
              for line in re.findall(r"batches (\[\[.*?\]\]);", out)]  # fmt: skip
    flat = [sorted(i for b in e for i in b) for e in epochs]
    shuffled = [i for b in epochs[0] for i in b] != list(range(12)) if epochs else False
    return (len(epochs) == 2 and all(f == list(range(12)) for f in flat)
            and all(len(b) == 4 for e in epochs for b in e)
            and epochs[0] != epochs[1] and shuffled)  # fmt: skip


def _axes_shown(out: str) -> bool:
    """Item 39's cell: the optimizers that build a velocity print a trace with momentum > 0 (or
    Adam's), those that scale per coordinate a ``scale_by_`` rule other than the rate's; SGD
    neither."""
    rows = dict(re.findall(r"^(\w+) +\d{4}: (.*)$", out, re.MULTILINE))
    velocity = {n for n, c in rows.items()
                if re.search(r"trace\(momentum=0\.\d", c) or "scale_by_adam" in c}  # fmt: skip
    scaled = {n for n, c in rows.items() if re.search(r"scale_by_(?!lr)", c)}
    return (len(rows) == 6 and velocity == {"momentum", "nesterov", "adam"}
            and scaled == {"adagrad", "rmsprop", "adam"})  # fmt: skip


def _bowl_values(run: Ran) -> tuple[float, float]:
    """Item 47's cell: (tolerance, largest difference) between the 5 × 5 values it printed and
    f = 3(x - 2)² + (y - 2)² at every (x, y) of the axes 0, 1, ..., 4 (rows y, columns x)."""
    shown = np.array([float(v) for v in re.findall(r"-?\d+\.\d*(?!\d)", run.output)])
    if shown.size != 25:
        raise ValueError(f"the cell printed {shown.size} values, not 5 × 5")
    y, x = np.meshgrid(np.arange(5.0), np.arange(5.0), indexing="ij")
    return 1e-9, float(np.abs(shown.reshape(5, 5) - (3 * (x - 2) ** 2 + (y - 2) ** 2)).max())


def _gap_is_difference(run: Ran) -> tuple[float, float]:
    """Item 62's cell: (tolerance, largest difference) between each printed gap and its test
    MSE minus its train MSE (each printed to three decimals)."""
    rows = re.findall(rf"train MSE {_FLOAT}, test MSE {_FLOAT}, gap {_FLOAT}", run.output)
    if not rows:
        raise ValueError("the cell printed no train and test MSE")
    return 2e-3, max(abs(float(g) - (float(te) - float(tr))) for tr, te, g in rows)


def _two_ends(run: Ran) -> tuple[float, float]:
    """Item 44's cell: the distance between its two ends against π/2, half the spacing of
    x sin x's valleys."""
    ends = (_x_sin_x_end(s, 0.25)(run) for s in (2.5, 1.5))
    return abs(next(ends) - next(ends)), math.pi / 2


def _gradient_shape(out: str) -> bool:
    """Item 49's cell: autograd's dL/dW printed as 3 rows of 2 numbers, W's shape."""
    block = out.partition("autograd dL/dW:")[2].partition("outer")[0]
    rows = [re.findall(r"[-+]?\d+\.\d+", r) for r in block.split("\n") if "[" in r]
    return len(rows) == 3 and all(len(r) == 2 for r in rows)


def _double_well_slope(x: float) -> float:
    """The slope of descentlab's double well at ``x`` (autograd)."""
    import torch

    from descentlab.problems import landscapes

    at = torch.tensor([[x]], dtype=torch.float64)
    return float(landscapes.grad(landscapes.get("double_well"), at)[0, 0])


def _fed(make: Callable, grads: np.ndarray) -> tuple[np.ndarray, Any, Any]:
    """A descentlab optimizer ``make([w])`` fed ``grads`` (steps × coordinates) from w = 0:
    each step's Δw (signed), the optimizer and w."""
    import torch

    w = torch.nn.Parameter(torch.zeros(grads.shape[1], dtype=torch.float64))
    opt, moves = make([w]), []
    for g in grads:
        before = w.detach().clone()
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        moves.append((w.detach() - before).numpy())
    return np.array(moves), opt, w


@_shows("f = 3(x - 2)² + (y - 2)²: its gradient at (2, 2) and f at the 8 points 0.01 around")
def _bowl_minimum() -> tuple[bool, str]:
    """Central differences of the bowl at (2, 2), and whether every neighbour is higher (a
    minimum) or lower (a maximum)."""

    def f(x: float, y: float) -> float:
        return 3 * (x - 2) ** 2 + (y - 2) ** 2

    h = 1e-4
    grad = [(f(2 + h, 2) - f(2 - h, 2)) / (2 * h), (f(2, 2 + h) - f(2, 2 - h)) / (2 * h)]
    rise = min(f(2 + a, 2 + b) - f(2, 2) for a in (-0.01, 0, 0.01) for b in (-0.01, 0, 0.01)
               if a or b)  # fmt: skip
    holds = max(abs(g) for g in grad) < 1e-9 and rise > 0
    return holds, f"gradient ({grad[0]:.1e}, {grad[1]:.1e}); every neighbour higher by ≥ {rise:.1e}"


@_shows("steepest descent in the norm √(uᵀDu), D = diag(1, 10), over 3,600 directions, "
           "against -∇f")  # fmt: skip
def _norm_steepest() -> tuple[bool, str]:
    """The unit direction (in the D-norm) of most negative slope ∇f·u at ∇f = (1, 1), against
    the Euclidean one, -∇f: the angle between them."""
    g, d = np.array([1.0, 1.0]), np.array([1.0, 10.0])
    angles = np.linspace(0, 2 * np.pi, 3600, endpoint=False)
    u = np.stack([np.cos(angles), np.sin(angles)], 1)
    u /= np.sqrt((u * u * d).sum(1, keepdims=True))  # unit in the D-norm
    best = u[(u @ g).argmin()]
    turn = math.degrees(math.acos(-best @ g / (np.linalg.norm(best) * np.linalg.norm(g))))
    return turn > 5, f"the D-norm's steepest direction is {turn:.1f}° from -∇f"


@_shows("descentlab's SGD, one step on a(x - 2)² for three a and rates: the error's factor "
           "against 1 - ε·f'' and 1 + ε·f''")  # fmt: skip
def _error_factor() -> tuple[bool, str]:
    """(x₁ - 2)/(x₀ - 2) after one step of descentlab's SGD on a(x - 2)² from 4, f'' = 2a."""
    from descentlab.optim import SGD

    off = []
    for a, lr in ((1.0, 0.2), (3.0, 0.05), (0.5, 0.7)):
        moves, _, _ = _fed(lambda p, lr=lr: SGD(p, lr=lr), np.array([[2 * a * (0.0 - 2)]]))
        factor = (0.0 + moves[0, 0] - 2) / (0.0 - 2)  # from x₀ = 0: x₁ = Δx
        off.append((abs(factor - (1 - lr * 2 * a)), abs(factor - (1 + lr * 2 * a))))
    minus, plus = max(o[0] for o in off), min(o[1] for o in off)
    shown = f"off 1 - ε·f'' by {minus:.1e}, off 1 + ε·f'' by ≥ {plus:.2g}"
    return bool(minus < 1e-12 < plus), shown


@_shows("heavy ball (β 0.9) and gradient descent at η 0.1 on x² from 1: where each goes past 0")
def _momentum_overshoots() -> tuple[bool, str]:
    """The least x of 30 steps of each on f = x² (the gradient vanishes at 0)."""
    x, v, low, gd, gd_low = 1.0, 0.0, 1.0, 1.0, 1.0
    for _ in range(30):
        v = 0.9 * v - 0.1 * 2 * x
        x, gd = x + v, gd - 0.1 * 2 * gd
        low, gd_low = min(low, x), min(gd_low, gd)
    return low < -0.1 and gd_low > 0, f"heavy ball reaches x = {low:.3f}, descent {gd_low:.2e}"


@_shows("descentlab's Momentum (velocity form, α 0.5, ε 0.1) on a constant gradient 1: its "
           "first step against gradient descent's, each next against α times the last")  # fmt: skip
def _velocity_steps() -> tuple[bool, str]:
    """Steps of the velocity form v ← αv - εg, w ← w + v on g = 1."""
    from descentlab.optim import Momentum

    moves, _, _ = _fed(lambda p: Momentum(p, lr=0.1, momentum=0.5, form="velocity"),
                       np.ones((6, 1)))  # fmt: skip
    steps = moves[:, 0]
    first = steps[0] / -0.1
    fraction = max(abs((b + 0.1) / a - 0.5) for a, b in itertools.pairwise(steps))
    holds = bool(abs(first - 1) < 1e-12 and fraction < 1e-12)
    return holds, (f"first step {first:.6g} × -εg; each next is -εg + {0.5 + fraction:.6g} × "
                   "the last")  # fmt: skip


@_shows("the bold driver's verdict (the loss rose or fell) on 40 steps of descent on x²/2 "
           "that all lower the loss: from exact losses and from losses with noise of std "
           "0.01")  # fmt: skip
def _noisy_bold_driver() -> tuple[bool, str]:
    """Every step of gradient descent at η 0.1 lowers x²/2; the share of steps the rule would
    undo when it compares exact losses and when it compares noisy (mini-batch) ones."""
    x = 0.9 ** np.arange(41)
    loss = x * x / 2
    noisy = loss + np.random.default_rng(0).normal(0, 0.01, loss.size)
    exact_wrong = float(np.mean(np.diff(loss) > 0))
    noisy_wrong = float(np.mean(np.diff(noisy) > 0))
    return exact_wrong == 0 and noisy_wrong > 0.2, (
        f"steps judged 'the loss rose': {exact_wrong:.0%} exact, {noisy_wrong:.0%} noisy"
    )


@_shows("descentlab's Adagrad (lr 0.1) with δ = 1e-7 and δ = 0: a step on gradients (2, 0)")
def _delta_guards_zero() -> tuple[bool, str]:
    """The first step with δ = 1e-7 against δ = 0: equal where the gradient is 2, and where it
    is 0 a step of 0 against 0/0."""
    from descentlab.optim import Adagrad

    grads = np.array([[2.0, 0.0]])
    with_delta, _, _ = _fed(lambda p: Adagrad(p, lr=0.1, eps=1e-7), grads)
    without, _, _ = _fed(lambda p: Adagrad(p, lr=0.1, eps=0.0), grads)
    off = abs(with_delta[0, 0] - without[0, 0]) / 0.1
    holds = off < 1e-6 and with_delta[0, 1] == 0 and not math.isfinite(without[0, 1])
    return holds, (f"steps differ by {off:.1e} of ε where g = 2; where g = 0: {with_delta[0, 1]} "
                   f"with δ, {without[0, 1]} without")  # fmt: skip


@_shows("descentlab's Adagrad (lr 0.1) on a constant gradient 1: the step at steps 1 and 100")
def _adagrad_constant_steps() -> tuple[bool, str]:
    """|Δw| at t = 1 against ε, at t = 100 against ε/√100."""
    moves, _ = _adagrad_steps(np.ones((100, 1)))
    first, last = float(moves[0, 0]), float(moves[-1, 0])
    holds = abs(first - 0.1) < 1e-6 and abs(last * 10 - 0.1) < 1e-6
    return holds, f"step {first:.6g} at t = 1, {last:.6g} at t = 100 (ε/√t = 0.01)"


@_shows("descentlab's Adam, three steps on gradients (2, -3), against the notebook's letters by "
           "hand with corrections 1/(1 - ρᵗ) and 1/ρᵗ")  # fmt: skip
def _adam_by_hand() -> tuple[bool, str]:
    """s, r moving averages of g and g², corrected, the step -ε ŝ/(δ + √r̂)."""
    from descentlab.optim import Adam

    grads = np.array([[2.0, -3.0], [1.0, 0.5], [-0.5, 2.0]])
    moves, _, _ = _fed(lambda p: Adam(p, lr=0.1, betas=(0.9, 0.999), eps=1e-8), grads)

    def by_hand(correct: Callable[[float, int], float]) -> np.ndarray:
        s, r, out = np.zeros(2), np.zeros(2), []
        for t, g in enumerate(grads, 1):
            s, r = 0.9 * s + 0.1 * g, 0.999 * r + 0.001 * g * g
            out.append(-0.1 * (s / correct(0.9, t)) / (1e-8 + np.sqrt(r / correct(0.999, t))))
        return np.array(out)

    right = float(np.abs(moves - by_hand(lambda rho, t: 1 - rho**t)).max())
    wrong = float(np.abs(moves - by_hand(lambda rho, t: rho**t)).max())
    return bool(right < 1e-12 < wrong), f"off 1/(1 - ρᵗ) by {right:.1e}, off 1/ρᵗ by {wrong:.2g}"


@_shows("gradient descent (η 0.1, 40 steps from 1) on x² and on x² with a deeper well at 4")
def _local_slope_only() -> tuple[bool, str]:
    """The two paths, and where each function is lowest: the far well changes nothing."""

    def well(x: Any) -> Any:  # the far well, and below its slope
        return -20 * np.exp(-4 * (x - 4) ** 2)

    a = b = 1.0
    apart = 0.0
    for _ in range(40):
        a, b = a - 0.1 * 2 * a, b - 0.1 * (2 * b - 8 * (b - 4) * well(b))
        apart = max(apart, abs(a - b))
    xs = np.linspace(-1, 6, 7001)
    lowest = float(xs[(xs * xs + well(xs)).argmin()])
    return apart < 1e-12 and lowest > 3, (
        f"paths apart by {apart:.1e}, both end at {b:.2g}; the other function is lowest at "
        f"{lowest:.2f}"
    )


@_shows("200 models of true accuracy 0.7 scored on a test set of 200: the best score against "
           "that model's score on 200 fresh examples")  # fmt: skip
def _chosen_on_test() -> tuple[bool, str]:
    """The score of the model the test set chose, on the test set and on new data."""
    rng = np.random.default_rng(0)
    test = rng.binomial(200, 0.7, 200) / 200
    fresh = rng.binomial(200, 0.7, 200) / 200
    best = int(test.argmax())
    return bool(test[best] > fresh[best] + 0.03), (
        f"chosen model: {test[best]:.3f} on the test set, {fresh[best]:.3f} on new data"
    )


# cards, items 67-99: the conceptual sentences' demonstrations and the reference computations
# their typed formulas are evaluated against (:func:`descentlab.book.typed.typed`)


def _moves(make: Callable[[list[Any]], Any], grads: np.ndarray, keys: tuple[str, ...] = ()
           ) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:  # fmt: skip
    """descentlab's optimizer ``make([w])`` fed ``grads`` (steps × coordinates), float64: each
    step's Δw, and its state's ``keys`` after each step."""
    import torch

    w = torch.nn.Parameter(torch.zeros(grads.shape[1], dtype=torch.float64))
    opt, moves, states = make([w]), [], []
    for g in grads:
        before = w.detach().clone()
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        moves.append((w.detach() - before).numpy())
        states.append({k: opt.state[w][k].clone().numpy() for k in keys})
    return np.array(moves), states


def _samme_cases() -> list[tuple[dict[str, float], float]]:
    """SAMME's defining property, solved numerically: the α whose weight exp(α) on the
    misclassified examples brings the learner's weighted error up to chance, (K - 1)/K."""
    cases = []
    for err, k in ((0.1, 2), (0.3, 2), (0.3, 3), (0.5, 3), (0.45, 5), (0.7, 5)):
        lo, hi = -50.0, 50.0
        for _ in range(200):  # the reweighted error rises with α: bisect
            mid = (lo + hi) / 2
            up = err * math.exp(mid)
            lo, hi = (mid, hi) if up / (up + 1 - err) < (k - 1) / k else (lo, mid)
        cases.append(({"err": err, "K": k}, (lo + hi) / 2))
    return cases


@_shows("the sharpness experiment's quick settings: batch sizes, seeds, box sizes, target losses")
def _sharpness_quick() -> tuple[bool, str]:
    """The quick build's settings of the card's experiment, counted."""
    from descentlab.book.experiments import sharpness

    o = sharpness.DEFAULTS | sharpness.QUICK
    counts = (len(o["batch_sizes"]), o["seeds"], len(o["eps"]))
    one_target = isinstance(o["target_loss"], float)
    return counts == (2, 2, 1) and one_target, (
        f"{counts[0]} batch sizes, {counts[1]} seeds, {counts[2]} box(es); one target loss "
        f"{o['target_loss']}"
    )


@_shows("the lecture's NAG on x²/2 from 1,000 states whose look-ahead point is past the "
           "minimum: the look-ahead gradient's sign and the step against heavy ball's")  # fmt: skip
def _lookahead_brakes() -> tuple[bool, str]:
    """States (W, a) where the accumulated step carries W past the minimum 0 of x²/2 (η = 0.5,
    β = 0.9): the gradient at W - ηβa against the gradient at W, and NAG's step -η(βa +
    ∇L(W - ηβa)) against heavy ball's -η(βa + ∇L(W))."""
    rng = np.random.default_rng(0)
    w, a = rng.uniform(0.05, 1, 1000), rng.uniform(0.5, 3, 1000)
    ahead = w - 0.5 * 0.9 * a
    past = ahead < 0
    back = bool(((ahead * w)[past] < 0).all())  # ∇L = x: its sign flips past the minimum
    brakes = bool((np.abs(0.9 * a + ahead) < np.abs(0.9 * a + w))[past].all())
    return back and brakes and past.sum() > 100, (
        f"{int(past.sum())} states past the minimum: look-ahead gradient points back in all: "
        f"{back}; NAG's step shorter in all: {brakes}"
    )


@_shows("heavy ball at Polyak's optimum for κ = 25 on the quadratic and on Lessard, Recht and "
           "Packard's function of the same κ, 300 steps from 3.3")  # fmt: skip
def _heavy_ball_lessard() -> tuple[bool, str]:
    """Heavy ball's tuned (η, β) on w²·25/2 and on the piecewise quadratic with curvatures 25,
    1, 25 (the same L and μ): the loss left after 300 steps."""
    big = 25.0
    eta, beta = 4 / (math.sqrt(big) + 1) ** 2, ((math.sqrt(big) - 1) / (math.sqrt(big) + 1)) ** 2

    def lessard(w: float) -> tuple[float, float]:  # (f, f')
        if w < 1:
            return big / 2 * w * w, big * w
        if w < 2:
            return w * w / 2 + (big - 1) * w - (big - 1) / 2, w + big - 1
        return big / 2 * w * w - (big - 1) * w + 3 * (big - 1) / 2, big * w - big + 1

    def left(fn: Callable[[float], tuple[float, float]]) -> float:
        w = prev = 3.3
        for _ in range(300):
            w, prev = w - eta * fn(w)[1] + beta * (w - prev), w
        return fn(w)[0]

    quad, pw = left(lambda w: (big / 2 * w * w, big * w)), left(lessard)
    return quad < 1e-12 and pw > 1, f"loss left: quadratic {quad:.1e}, Lessard's {pw:.3g}"


def _adagrad_cases() -> list[tuple[dict[str, float], float]]:
    """descentlab's Adagrad (η = 0.1, ε = 0.01 inside the root), three steps on two
    coordinates: each step's η, g, G (after adding g²) and ε, and the step it took."""
    from descentlab.optim import Adagrad

    grads = np.array([[1.0, 0.5], [2.0, -1.0], [0.3, 3.0]])
    moves, states = _moves(lambda p: Adagrad(p, lr=0.1, eps=0.01, eps_inside_sqrt=True), grads,
                           ("sum",))  # fmt: skip
    return [({"η": 0.1, "g": g, "G": s["sum"][i], "ε": 0.01}, -moves[t, i])
            for t, (row, s) in enumerate(zip(grads, states, strict=True))
            for i, g in enumerate(row)]  # fmt: skip


@_shows("descentlab's Adagrad, RMSprop and Adadelta on a gradient 1 for 30 steps: the state "
           "each divides by")  # fmt: skip
def _moving_average_state() -> tuple[bool, str]:
    """AdaGrad's sum grows with the steps; RMSProp's and Adadelta's averages stay below 1."""
    from descentlab.optim import Adadelta, Adagrad, RMSprop

    ones = np.ones((30, 1))
    total = _moves(lambda p: Adagrad(p, lr=0.1), ones, ("sum",))[1][-1]["sum"][0]
    avgs = [_moves(make, ones, ("square_avg",))[1][-1]["square_avg"][0]
            for make in (lambda p: RMSprop(p, lr=0.01, alpha=0.9),
                         lambda p: Adadelta(p, rho=0.9))]  # fmt: skip
    holds = abs(total - 30) < 1e-12 and all(0.9 < a < 1 for a in avgs)
    return (
        holds,
        f"AdaGrad's sum {total:g}; RMSProp's average {avgs[0]:.4f}, Adadelta's {avgs[1]:.4f}",
    )


def _adadelta_cases() -> list[tuple[dict[str, float], float]]:
    """descentlab's Adadelta (lr 1, ρ = 0.9, ε = 1e-6), three steps on two coordinates: each
    step's G (after adding g²), H (before the step), g and ε, and the step it took."""
    from descentlab.optim import Adadelta

    grads = np.array([[1.0, 0.5], [2.0, -1.0], [0.3, 3.0]])
    moves, states = _moves(lambda p: Adadelta(p, lr=1.0, rho=0.9, eps=1e-6), grads,
                           ("square_avg", "acc_delta"))  # fmt: skip
    before = [np.zeros(2)] + [s["acc_delta"] for s in states[:-1]]
    return [({"G": s["square_avg"][i], "H": h[i], "g": g, "ε": 1e-6}, moves[t, i])
            for t, (row, s, h) in enumerate(zip(grads, states, before, strict=True))
            for i, g in enumerate(row)]  # fmt: skip


@_shows("descentlab's Adadelta's first step from rest at ε = 1e-6 and 1e-4, gradients 0.1 to "
           "10: over √ε and over ε")  # fmt: skip
def _adadelta_first_step() -> tuple[bool, str]:
    """The first step, where H = 0, against √ε and ε (within a factor 10 is 'about')."""
    from descentlab.optim import Adadelta

    ratios = []
    for eps in (1e-6, 1e-4):
        moves, _ = _moves(lambda p, e=eps: Adadelta(p, lr=1.0, rho=0.9, eps=e),
                          np.array([[0.1, 1.0, 10.0]]))  # fmt: skip
        ratios += [(abs(m) / math.sqrt(eps), abs(m) / eps) for m in moves[0]]
    root = all(0.1 < r < 10 for r, _ in ratios)
    plain = all(0.1 < r < 10 for _, r in ratios)
    return root and not plain, (
        f"first step / √ε from {min(r for r, _ in ratios):.3g} to "
        f"{max(r for r, _ in ratios):.3g}; / ε ≥ {min(r for _, r in ratios):.3g}"
    )


def _adadelta_bowl_steps() -> list[tuple[dict[str, float], float]]:
    """The adaptive experiment's Adadelta loop (lr 1, ε = 1e-6) on the bowl: the first step
    within 1e-3 of its minimum (2, 2)."""
    from descentlab.book.experiments.adaptive import _MIN, _X0, _bowl_grad, adadelta_units

    far = np.linalg.norm(adadelta_units(_bowl_grad, _X0, 740) - _MIN, axis=1)
    if far[-1] >= 1e-3:
        raise ValueError("Adadelta is not within 1e-3 of the bowl's minimum in 740 steps")
    return [({}, float(np.argmax(far < 1e-3)))]


def _ema_window_cases() -> list[tuple[dict[str, float], float]]:
    """descentlab's RMSprop (α = ρ) fed one squared gradient and then zeros: its average holds
    that gradient with weight (1-ρ)ρ^(k-1) at age k; the weights' mean age (in steps, the
    newest counted 1) at ρ = 0.5 and 0.6."""
    from descentlab.optim import RMSprop

    cases = []
    for rho in (0.5, 0.6):
        grads = np.zeros((40, 1))
        grads[0] = 1.0
        _, states = _moves(lambda p, r=rho: RMSprop(p, lr=0.01, alpha=r), grads, ("square_avg",))
        weights = np.array([s["square_avg"][0] for s in states])
        cases.append(({"ρ": rho}, float((np.arange(1, 41) * weights).sum() / weights.sum())))
    return cases


@_shows("descentlab's RMSprop (γ = 0.9) and Adagrad fed gradient 10 for 20 steps, then 0.1 "
           "for 60: the effective rate |Δw|/|g| at step 20 and step 80")  # fmt: skip
def _rate_adapts_up() -> tuple[bool, str]:
    """RMSProp's rate rises again once the gradients shrink; AdaGrad's keeps falling."""
    from descentlab.optim import Adagrad, RMSprop

    grads = np.full((80, 1), 0.1)
    grads[:20] = 10.0
    rms, _ = _moves(lambda p: RMSprop(p, lr=0.01, alpha=0.9), grads)
    ada, _ = _moves(lambda p: Adagrad(p, lr=0.1), grads)
    r = {n: (abs(m[19, 0]) / 10, abs(m[79, 0]) / 0.1) for n, m in (("rms", rms), ("ada", ada))}
    holds = r["rms"][1] > 10 * r["rms"][0] and r["ada"][1] < r["ada"][0]
    return holds, (
        f"RMSProp's rate {r['rms'][0]:.3g} → {r['rms'][1]:.3g}; AdaGrad's "
        f"{r['ada'][0]:.3g} → {r['ada'][1]:.3g}"
    )


def _early_stop_cases() -> list[tuple[dict[str, float], float]]:
    """The L2 strength λ whose ridge filter h/(h + λ) is nearest (in the largest gap over
    curvatures h) to gradient descent's after t steps at η from 0, 1 - (1 - ηh)^t."""
    cases = []
    for eta, t in ((0.1, 100), (0.01, 500), (0.05, 40)):
        h = np.geomspace(1e-2, 1e2, 200)[:, None] / (eta * t)
        h = h[h[:, 0] < 1 / eta]
        lams = np.geomspace(1e-2, 1e2, 400)[None, :] / (eta * t)
        gap = np.abs(1 - (1 - eta * h) ** t - h / (h + lams)).max(0)
        cases.append(({"η": eta, "t": t}, float(lams[0, gap.argmin()])))
    return cases


@_shows("least squares on 8 examples in 20 dimensions (the label the sign of x₁): test "
           "accuracy with no augmentation, sign flips of x₂…x₂₀, sign flips of x₁")  # fmt: skip
def _invariance_helps() -> tuple[bool, str]:
    """Augmentation by a transformation the label does not depend on (flipping the signs of the
    irrelevant coordinates) against one it does (flipping x₁): the test accuracy of the
    minimum-norm least-squares fit."""
    rng = np.random.default_rng(0)
    x, test = rng.normal(size=(8, 20)), rng.normal(size=(4000, 20))

    def accuracy(flip: slice | None) -> float:
        xs, ys = [x], [np.sign(x[:, 0])]
        for _ in range(0 if flip is None else 30):
            signs = np.ones(20)
            signs[flip] = rng.choice([-1.0, 1.0], size=len(range(20)[flip]))
            xs.append(x * signs)
            ys.append(np.sign(x[:, 0]))  # the label as it was: true only if the flip keeps it
        w = np.linalg.lstsq(np.vstack(xs), np.concatenate(ys), rcond=None)[0]
        return float((np.sign(test @ w) == np.sign(test[:, 0])).mean())

    none, kept, broken = accuracy(None), accuracy(slice(1, 20)), accuracy(slice(0, 1))
    holds = kept > none + 0.05 and broken < none - 0.05
    return holds, f"accuracy {none:.3f} none, {kept:.3f} invariant flips, {broken:.3f} x₁ flipped"


@_shows("the expected loss under weight noise σ = 0.1 (20,000 draws) at a sharp minimum "
           "(curvature 100) and a flat one (curvature 1) of equal loss")  # fmt: skip
def _weight_noise_flat() -> tuple[bool, str]:
    """Noisy weights at the bottom of 50 w² and of 0.5 w²: which costs more."""
    noise = np.random.default_rng(0).normal(0, 0.1, 20000)
    sharp, flat = float((50 * noise**2).mean()), float((0.5 * noise**2).mean())
    return (
        flat < sharp / 10,
        f"expected loss {sharp:.3g} at the sharp minimum, {flat:.3g} at the flat",
    )


@_shows("a logistic slope fitted to two classes at ±1 by gradient descent, with hard, smoothed "
           "(ε = 0.2) and mixup targets: the slope after 150 and 300 steps")  # fmt: skip
def _soft_targets() -> tuple[bool, str]:
    """Hard targets push the slope (the boundary's sharpness) up without end; smoothed and
    mixup targets have a finite best slope."""
    lam = np.linspace(0, 1, 21)
    sets = {"hard": (np.array([-1.0, 1.0]), np.array([0.0, 1.0])),
            "smoothed": (np.array([-1.0, 1.0]), np.array([0.1, 0.9])),
            "mixup": (2 * lam - 1, lam)}  # fmt: skip
    slopes = {}
    for name, (x, y) in sets.items():
        w, at = 0.0, []
        for step in range(300):
            p = 1 / (1 + np.exp(-w * x))
            w -= 2.0 * float(((p - y) * x).mean())
            if step in (149, 299):
                at.append(w)
        slopes[name] = at
    soft = max(slopes["smoothed"][1], slopes["mixup"][1])
    settled = all(abs(a - b) < 1e-3 for a, b in (slopes["smoothed"], slopes["mixup"]))
    hard = slopes["hard"]
    holds = hard[1] > 1.5 * soft and hard[1] > hard[0] + 0.1 and settled
    return holds, (
        f"slope hard {hard[0]:.2f} → {hard[1]:.2f}; smoothed {slopes['smoothed'][1]:.2f}"
        f", mixup {slopes['mixup'][1]:.2f}"
    )


def _dropout_masks() -> list[tuple[dict[str, float], float]]:
    """The distinct thinned networks torch's Dropout (p = 0.5) draws for n units in 2,000
    draws, n = 3 and 5 (the global random state kept)."""
    import torch

    cases = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for n in (3, 5):
            masks = torch.nn.functional.dropout(torch.ones(2000, n), 0.5, training=True) > 0
            cases.append(({"n": n}, float(len(set(map(tuple, masks.tolist()))))))
    return cases


@_shows("least squares fits a kernel to a convolution's output through cross-correlation and "
           "through convolution: the residuals and the two kernels")  # fmt: skip
def _flip_learned() -> tuple[bool, str]:
    """Targets from a flipped-kernel convolution; a kernel learned by either operation fits
    them exactly, the one the flip of the other."""
    rng = np.random.default_rng(0)
    x, kernel = rng.normal(size=40), np.array([1.0, 2.0, -1.0])
    y = np.convolve(x, kernel, "valid")
    windows = np.lib.stride_tricks.sliding_window_view(x, 3)
    fits = [np.linalg.lstsq(a, y, rcond=None) for a in (windows, windows[:, ::-1])]
    residual = max(
        float(np.abs(a @ f[0] - y).max())
        for a, f in zip((windows, windows[:, ::-1]), fits, strict=True)
    )
    flipped = float(np.abs(fits[0][0] - fits[1][0][::-1]).max())
    return residual < 1e-10 and flipped < 1e-10, (
        f"residual {residual:.1e} by both; kernels each other's flip to {flipped:.1e}"
    )


@_shows("torch's max_pool2d(2) on a 32 × 32 map: the side out")
def _pooling_halves() -> tuple[bool, str]:
    import torch

    side = torch.nn.functional.max_pool2d(torch.zeros(1, 1, 32, 32), 2).shape[-1]
    return side < 32, f"side 32 → {side}"


@_shows("a 1 × 1 torch conv2d (8 → 4 channels) on a 5 × 5 map against its weight matrix applied "
           "to each pixel's channels, and with a neighbour changed")  # fmt: skip
def _one_by_one() -> tuple[bool, str]:
    """conv2d with a 1 × 1 kernel against W·x[:, i, j] + b at every pixel; a pixel's output
    with its neighbours changed."""
    import torch

    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(*s, generator=g, dtype=torch.float64)
               for s in ((1, 8, 5, 5), (4, 8, 1, 1), (4,)))  # fmt: skip
    out = torch.nn.functional.conv2d(x, w, b)
    dense = torch.einsum("oc,ncij->noij", w[:, :, 0, 0], x) + b[None, :, None, None]
    moved = x.clone()
    moved[0, :, 2, 3] += 1.0  # a neighbour of (2, 2)
    near = torch.nn.functional.conv2d(moved, w, b)[0, :, 2, 2]
    off, still = float((out - dense).abs().max()), float((near - out[0, :, 2, 2]).abs().max())
    return off < 1e-12 and still == 0.0, f"off W·x by {off:.1e}; a neighbour moves it by {still:g}"


@_shows("gradient descent (η = 0.1) on x⁴/4 - x²/2 + 0.1x from x = 1.5: where it stops, against "
           "the deeper valley at x < 0")  # fmt: skip
def _local_minimum_stops() -> tuple[bool, str]:
    def f(x: float) -> float:
        return x**4 / 4 - x * x / 2 + 0.1 * x

    x = 1.5
    for _ in range(500):
        x -= 0.1 * (x**3 - x + 0.1)
    deep = min(np.linspace(-2, 0, 2001), key=f)
    holds = x > 0 and abs(x**3 - x + 0.1) < 1e-8 and f(x) > f(deep) + 0.1
    return holds, f"stops at x = {x:.4f} (f = {f(x):.4f}); the deeper valley f = {f(deep):.4f}"


@_shows("gradient descent (η = 0.1) on (x² - y²)/2 from (1, 0), (1, 1e-8) and (1, 1e-2): the "
           "gradient at the saddle and the steps until |y| > 0.5")  # fmt: skip
def _saddle_ridge() -> tuple[bool, str]:
    """The saddle's gradient (x, -y) at 0; from the ridge y = 0 the iterate stays on it; near it
    the gradient's y part is -y, so the escape takes longer the closer the start."""

    def leave(y0: float) -> int | None:
        x, y = 1.0, y0
        for t in range(1, 1001):
            x, y = x - 0.1 * x, y + 0.1 * y
            if abs(y) > 0.5:
                return t
        return None

    on, near, nearer = leave(0.0), leave(1e-2), leave(1e-8)
    holds = on is None and near is not None and nearer is not None and nearer > 2 * near
    return holds, f"from y = 0: {on or 'never'}; from 1e-2: {near} steps; from 1e-8: {nearer} steps"


def _ravine_cases() -> list[tuple[dict[str, float], float]]:
    """Gradient descent at η = 1/a on ½(a x² + b y²) from (1, 1): the steps until y < 1/e."""
    cases = []
    for a, b in ((100.0, 1.0), (400.0, 1.0), (50.0, 2.0)):
        y, steps = 1.0, 0
        while y >= 1 / math.e:
            y -= (1 / a) * b * y
            steps += 1
        cases.append(({"a": a, "b": b}, float(steps)))
    return cases


def _velocity_cases() -> list[tuple[dict[str, float], float]]:
    """descentlab's Momentum in the velocity form (ρ = 0.1, α = 0.9) fed one gradient 2 at step
    k of 6: its velocity after step 6 (a single term of the sum)."""
    from descentlab.optim import Momentum

    cases = []
    for k in (1, 3, 6):
        grads = np.zeros((6, 1))
        grads[k - 1] = 2.0
        moves, _ = _moves(lambda p: Momentum(p, lr=0.1, momentum=0.9, form="velocity"), grads)
        cases.append(({"ρ": 0.1, "α": 0.9, "t": 6, "k": k, "g": 2.0}, float(moves[-1, 0])))
    return cases


@_shows("descentlab's Momentum (velocity form, ρ = 0.1, α = 0.9), 60 steps on a gradient of "
           "constant sign and on one that flips every step: the velocity's size")  # fmt: skip
def _consistent_against_flipping() -> tuple[bool, str]:
    from descentlab.optim import Momentum

    signs = np.array([[1.0], [-1.0]] * 30)
    runs = {"same": np.ones((60, 1)), "flips": signs}
    speed = {n: abs(_moves(lambda p: Momentum(p, lr=0.1, momentum=0.9, form="velocity"),
                           g)[0][-1, 0]) for n, g in runs.items()}  # fmt: skip
    holds = speed["same"] > 0.9 and speed["flips"] < 0.1
    return (
        holds,
        f"|v| {speed['same']:.4f} on a constant sign, {speed['flips']:.4f} on a flipping one",
    )


def _conv_lengths() -> list[tuple[dict[str, float], float]]:
    """torch's conv1d output length for inputs n, kernels k, strides s and paddings p."""
    import torch

    cases = []
    for n, k, s, p in ((32, 3, 1, 1), (32, 3, 2, 1), (227, 11, 4, 0), (28, 5, 1, 0),
                       (10, 4, 3, 2), (7, 7, 2, 3)):  # fmt: skip
        out = torch.nn.functional.conv1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s,
                                         padding=p).shape[-1]  # fmt: skip
        cases.append(({"n": n, "k": k, "s": s, "p": p}, float(out)))
    return cases


def _same_padding() -> list[tuple[dict[str, float], float]]:
    """The padding at which torch's conv1d at stride 1 keeps an input of 16, kernels 1 to 7."""
    import torch

    def length(k: int, p: int) -> int:
        return torch.nn.functional.conv1d(torch.zeros(1, 1, 16), torch.zeros(1, 1, k),
                                          padding=p).shape[-1]  # fmt: skip

    return [({"k": k}, float(next(p for p in range(k) if length(k, p) == 16)))
            for k in (1, 3, 5, 7)]  # fmt: skip


@_shows("torch's conv1d with the same padding (k - 1)/2 at stride 2 on inputs 16 and 32, k = 3, 5")
def _stride_two_halves() -> tuple[bool, str]:
    import torch

    got = {(n, k): torch.nn.functional.conv1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k),
                                               stride=2, padding=(k - 1) // 2).shape[-1]
           for n in (16, 32) for k in (3, 5)}  # fmt: skip
    return all(v == n // 2 for (n, _), v in got.items()), f"lengths out {sorted(set(got.values()))}"


# listed sentences backed: the demonstrations of the sentences once listed as nothing can back


def _lyapunov(a: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The stationary covariance P = A P Aᵀ + Q of a linear recursion driven by noise Q."""
    n = a.shape[0]
    return np.linalg.solve(np.eye(n * n) - np.kron(a, a), q.ravel()).reshape(n, n)


def _heavy_ball_floor(lr: float, beta: float, lam: float = 1.0) -> float:
    """The stationary variance of heavy ball on λx²/2 with unit gradient noise: state (x, x₋)."""
    a = np.array([[1 + beta - lr * lam, -beta], [1.0, 0.0]])
    return float(_lyapunov(a, np.array([[lr * lr, 0.0], [0.0, 0.0]]))[0, 0])


def _radius(lr: float, beta: float, lam: float, nesterov: bool) -> float:
    """The spectral radius of heavy ball's (or Nesterov's) map on one direction of curvature λ."""
    h = lr * lam
    a, b = ((1 + beta) * (1 - h), beta * (1 - h)) if nesterov else (1 + beta - h, beta)
    return float(np.abs(np.roots([1.0, -a, b])).max())


@_shows(
    "κ = 100: steps to 10⁻³ of heavy ball (η 4/1.21, β (9/11)²) against descent; on λ = 1 with "
    "unit noise, heavy ball's floor (η 0.001, β 0.9) against SGD's at η 0.01"
)
def _momentum_conditioning_not_noise() -> tuple[bool, str]:
    """Deterministic: the error's rate of each on the slow direction (λ = 0.01, η = 1), and
    the exact stationary variances at the same effective rate η/(1 - β)."""
    steps_gd = math.log(1e-3) / math.log(_radius(1.0, 0.0, 0.01, False))
    hb = max(_radius(4 / 1.21, (9 / 11) ** 2, lam, False) for lam in (0.01, 1))
    steps_hb = math.log(1e-3) / math.log(hb)
    ratio = _heavy_ball_floor(0.001, 0.9) / _heavy_ball_floor(0.01, 0.0)
    holds = steps_gd > 5 * steps_hb and abs(ratio - 1) < 0.05
    return holds, (f"steps: descent {steps_gd:.0f}, heavy ball {steps_hb:.0f}; heavy ball's floor "
                   f"{ratio:.3f} of SGD's")  # fmt: skip


@_shows(
    "Monte Carlo: a line fitted to 20 noisy points of sin 2πx, 10,000 training sets, "
    "scored at x = 0.9 on a fresh target: the error against bias² + variance + σ²"
)
def _bias_squared_sum() -> tuple[bool, str]:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (10000, 20))
    y = np.sin(2 * np.pi * x) + rng.normal(0, 0.3, x.shape)
    xm, ym = x.mean(1, keepdims=True), y.mean(1, keepdims=True)
    slope = ((x - xm) * (y - ym)).sum(1) / ((x - xm) ** 2).sum(1)
    pred = ym[:, 0] + slope * (0.9 - xm[:, 0])
    truth = math.sin(2 * math.pi * 0.9)
    err = float(np.mean((truth + rng.normal(0, 0.3, pred.size) - pred) ** 2))
    bias, var = float(pred.mean() - truth), float(pred.var())
    squared, plain = bias**2 + var + 0.09, abs(bias) + var + 0.09
    holds = abs(err - squared) < 0.03 * err and abs(err - plain) > 0.1 * err
    return holds, (f"error {err:.4f}; bias² + variance + σ² {squared:.4f}, |bias| + variance + σ² "
                   f"{plain:.4f}")  # fmt: skip


@_shows(
    "gradient descent on λx²/2 at ηλ = 0.01 and 0.001: the steps to divide the error by e "
    "against 1/(ηλ)"
)
def _e_fold_steps() -> tuple[bool, str]:
    counts = []
    for h in (0.01, 0.001):
        x, n = 1.0, 0
        while x > math.exp(-1):
            x, n = x - h * x, n + 1
        counts.append((n, 1 / h))
    holds = all(abs(n - t) <= 0.01 * t for n, t in counts)
    return holds, ", ".join(f"{n} steps at 1/(ηλ) = {t:.0f}" for n, t in counts)


@_shows(
    "rates 10, 10/3, 10/9, ... on curvatures 0.01 to 1 (edge 2): the first that does not blow "
    "up in 20 steps, its steps to 10⁻⁴ against the fewest over 200 rates below the edge"
)
def _first_stable_near_fastest() -> tuple[bool, str]:
    lam = np.geomspace(0.01, 1, 8)

    def steps(lr: float) -> float:
        worst = np.abs(1 - lr * lam).max()
        return math.inf if worst >= 1 else math.log(1e-4) / math.log(worst)

    lr = 10.0
    while np.abs(1 - lr * lam).max() ** 20 > 1:  # the loss blows up: divide by 3
        lr /= 3
    best = min(steps(r) for r in np.linspace(0.01, 1.999, 200))
    return steps(
        lr
    ) < 3 * best, f"first stable rate {lr:.3g}: {steps(lr):.0f} steps, fewest {best:.0f}"


@_shows(
    "4,000 chains of SGD (η 0.1) on x²/2 started at its minimum, unit gradient noise: the "
    "mean x² after 100 and 200 steps against the stationary ησ²/(2 - η)"
)
def _pushed_off_minimum() -> tuple[bool, str]:
    rng = np.random.default_rng(0)
    x, seen = np.zeros(4000), []
    for t in range(200):
        x = x - 0.1 * (x + rng.normal(0, 1, x.size))
        if t in (99, 199):
            seen.append(float(np.mean(x * x)))
    want = 0.1 / (2 - 0.1)
    holds = all(abs(s - want) < 0.1 * want for s in seen)
    return holds, f"mean x² {seen[0]:.4f} and {seen[1]:.4f}; stationary {want:.4f}"


@_shows(
    "descentlab's SGD at η 0.1, one step on 20,000 coordinates with gradient noise σ = 1: "
    "the step's variance against η²σ² and ησ²"
)
def _injected_noise() -> tuple[bool, str]:
    from descentlab.optim import SGD

    noise = np.random.default_rng(0).normal(0, 1, (1, 20000))
    moves, _, _ = _fed(lambda p: SGD(p, lr=0.1), noise)
    var = float(moves.var())
    return abs(var / 0.01 - 1) < 0.05, f"variance {var:.5f}; η²σ² 0.01, ησ² 0.1"


@_shows(
    "descentlab's Momentum (β 0.9 and 0.99) fed one gradient then zeros: the steps until its "
    "velocity falls to 1/e, against 1/(1 - β)"
)
def _velocity_e_fold() -> tuple[bool, str]:
    from descentlab.optim import Momentum

    out = []
    for beta in (0.9, 0.99):
        grads = np.zeros((int(2 / (1 - beta)), 1))
        grads[0] = 1.0
        moves, _, _ = _fed(lambda p, b=beta: Momentum(p, lr=1.0, momentum=b), grads)
        steps = int(np.argmax(np.abs(moves[:, 0]) < math.exp(-1) * abs(moves[0, 0])))
        out.append((steps, 1 / (1 - beta)))
    holds = all(abs(s - t) <= 0.06 * t for s, t in out)
    return holds, ", ".join(f"{s} steps at 1/(1 - β) = {t:.0f}" for s, t in out)


@_shows(
    "gradient descent on ½(0.1 W₁² + 10 W₂²) from (1, 1), 20 steps: W₁'s largest step at "
    "rates 0.05 and 0.19 (below W₂'s edge 0.2), and W₂'s sign changes at 0.15 (above 1/10)"
)
def _one_rate_two_curvatures() -> tuple[bool, str]:
    def path(lr: float) -> np.ndarray:
        w, out = np.ones(2), [np.ones(2)]
        for _ in range(20):
            w = w - lr * np.array([0.1, 10.0]) * w
            out.append(w)
        return np.array(out)

    w1_step = max(float(np.abs(np.diff(path(lr)[:, 0])).max()) for lr in (0.05, 0.19))
    flips = int(np.sum(np.diff(np.sign(path(0.15)[:, 1])) != 0))
    return w1_step < 0.02 and flips > 15, (
        f"W₁'s largest step {w1_step:.4f} of its distance 1; W₂ changes sign {flips} times in 20"
    )


@_shows(
    "descentlab's RMSprop (η 0.01) fed steady gradients 10⁻³, 1 and 10³ for 300 steps: "
    "each coordinate's last step against η and against η times its gradient"
)
def _steps_about_rate() -> tuple[bool, str]:
    from descentlab.optim import RMSprop

    g = np.array([1e-3, 1.0, 1e3])
    moves, _, _ = _fed(lambda p: RMSprop(p, lr=0.01), np.tile(g, (300, 1)))
    last = np.abs(moves[-1])
    off = float(np.abs(last / 0.01 - 1).max())
    return off < 0.05, f"last steps {', '.join(f'{s:.4g}' for s in last)} (η 0.01; η·g {0.01 * g})"


@_shows(
    "autograd's derivative of sin(u), u = x³, at x = 0.7, 1.3 against f'(u)·g'(x) and f'(u) + g'(x)"
)
def _rates_multiply() -> tuple[bool, str]:
    import torch

    off, far = 0.0, math.inf
    for x0 in (0.7, 1.3):
        x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        torch.sin(x**3).backward()
        u = x0**3
        d = float(x.grad)
        off = max(off, abs(d - math.cos(u) * 3 * x0**2))
        far = min(far, abs(d - (math.cos(u) + 3 * x0**2)))
    return off < 1e-12 < 0.1 < far, f"product off by {off:.1e}, sum by ≥ {far:.2g}"


@_shows(
    "heavy ball against Nesterov on curvatures 0.01 and 1: the slower direction's rate of "
    "each at Nesterov's settings (η 1, β 9/11) and at heavy ball's (η 4/1.21, β (9/11)²)"
)
def _nesterov_gain_settings() -> tuple[bool, str]:
    def worst(lr: float, beta: float, nesterov: bool) -> float:
        return max(_radius(lr, beta, lam, nesterov) for lam in (0.01, 1.0))

    own = (worst(1.0, 9 / 11, True), worst(1.0, 9 / 11, False))
    hb = (worst(4 / 1.21, (9 / 11) ** 2, True), worst(4 / 1.21, (9 / 11) ** 2, False))
    holds = own[0] < own[1] and hb[0] > hb[1]
    return holds, (f"at Nesterov's settings Nesterov {own[0]:.3f}, heavy ball {own[1]:.3f}; at "
                   f"heavy ball's Nesterov {hb[0]:.3f}, heavy ball {hb[1]:.3f}")  # fmt: skip


@_shows(
    "polynomials fitted to noisy sin πx, 100 draws each: the test-minus-training error at "
    "degrees 3, 5, 9 (15 points) and at 15, 60, 240 points (degree 5)"
)
def _gap_capacity_data() -> tuple[bool, str]:
    rng = np.random.default_rng(0)

    def gap(degree: int, n: int) -> float:
        out = []
        for _ in range(100):
            x = rng.uniform(-1, 1, n)
            y = np.sin(np.pi * x) + rng.normal(0, 0.3, n)
            basis = np.polynomial.legendre.legvander(x, degree)
            coef = np.linalg.lstsq(basis, y, rcond=None)[0]
            xt = rng.uniform(-1, 1, 100)
            yt = np.sin(np.pi * xt) + rng.normal(0, 0.3, 100)
            test = np.polynomial.legendre.legvander(xt, degree) @ coef
            out.append(np.mean((test - yt) ** 2) - np.mean((basis @ coef - y) ** 2))
        return float(np.median(out))

    by_degree = [gap(d, 15) for d in (3, 5, 9)]
    by_data = [gap(5, n) for n in (15, 60, 240)]
    holds = by_degree == sorted(by_degree) and by_data == sorted(by_data, reverse=True)
    return holds, (f"gap by degree {', '.join(f'{g:.3f}' for g in by_degree)}; by size "
                   f"{', '.join(f'{g:.3f}' for g in by_data)}")  # fmt: skip


def _adam_forms(g: float, steps: int = 10) -> tuple[float, float, float]:
    """Adam's step after ``steps`` steps of gradient ``g`` (β 0.9, 0.999, ε 10⁻⁸), written three
    ways: m̂/(√v̂ + ε), the blog's rate-folded m/√(v + ε), the paper's m/(√v + ε) with ε unhatted."""
    b1, b2, eps, m, v = 0.9, 0.999, 1e-8, 0.0, 0.0
    for _ in range(steps):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
    fold = math.sqrt(1 - b2**steps) / (1 - b1**steps)
    usual = (m / (1 - b1**steps)) / (math.sqrt(v / (1 - b2**steps)) + eps)
    return usual, fold * m / math.sqrt(v + eps), fold * m / (math.sqrt(v) + eps)


def _gap_only_near(form: int, near: float, far: float) -> tuple[bool, str]:
    """Form ``form`` of :func:`_adam_forms` against the usual one: far apart at gradient ``near``
    (√v as small as where ε sits), within 10⁻³ at ``far``."""
    gaps = [abs(_adam_forms(g)[form] / _adam_forms(g)[0] - 1) for g in (near, far)]
    return gaps[0] > 0.1 and gaps[1] < 1e-3, (
        f"gap {gaps[0]:.2g} at g = {near:g}, {gaps[1]:.1e} at g = {far:g}"
    )


@_shows(
    "Adam's step after 10 steps of a gradient g, as m̂/(√v̂ + ε) and as the blog's "
    "η_t m/√(v + ε): their relative gap at √v near √ε (g = 10⁻⁴) and at g = 10⁻¹"
)
def _blog_epsilon() -> tuple[bool, str]:
    return _gap_only_near(1, 1e-4, 1e-1)


@_shows(
    "Adam's step after 10 steps of a gradient g, as m̂/(√v̂ + ε) and as α_t m/(√v + ε) with "
    "ε unhatted: their relative gap at √v near ε (g = 10⁻⁸) and at g = 10⁻⁴"
)
def _paper_epsilon() -> tuple[bool, str]:
    return _gap_only_near(2, 1e-8, 1e-4)


@_shows(
    "descentlab's Adam (η 0.001) fed gradient 10⁻⁶ on a flat coordinate for 20 steps, at "
    "ε 10⁻⁸ and 10⁻³: the distance each moved"
)
def _larger_eps_gentler() -> tuple[bool, str]:
    from descentlab.optim import Adam

    moved = {eps: float(np.abs(_fed(lambda p, e=eps: Adam(p, lr=1e-3, eps=e),
                                    np.full((20, 1), 1e-6))[0].sum()))
             for eps in (1e-8, 1e-3)}  # fmt: skip
    return moved[1e-3] < 0.01 * moved[
        1e-8
    ], f"moved {moved[1e-8]:.2e} at ε 10⁻⁸, {moved[1e-3]:.2e} at 10⁻³"


@_shows(
    "a tanh network 1-32-32-1 with its weights times 0.5, 1 and 2: its largest slope on "
    "[-2, 2] (401 points)"
)
def _small_weights_smooth() -> tuple[bool, str]:
    rng = np.random.default_rng(0)
    w1, w2, w3 = (
        rng.normal(0, 1, (32, 1)),
        rng.normal(0, 1 / 32**0.5, (32, 32)),
        rng.normal(0, 1 / 32**0.5, (1, 32)),
    )
    x = np.linspace(-2, 2, 401)[None, :]

    def slope(s: float) -> float:
        f = (s * w3) @ np.tanh((s * w2) @ np.tanh((s * w1) @ x))
        return float(np.abs(np.diff(f[0]) / np.diff(x[0])).max())

    slopes = [slope(s) for s in (0.5, 1.0, 2.0)]
    return slopes == sorted(slopes), f"largest slopes {', '.join(f'{s:.3g}' for s in slopes)}"


@_shows(
    "gradient descent (η 1) on 3 logits against a one-hot target and torch's label smoothing "
    "0.1: the true logit's lead after 1,000 and 4,000 steps"
)
def _smoothing_finite_logits() -> tuple[bool, str]:
    import torch

    z = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.cross_entropy(z, torch.tensor([0]), label_smoothing=0.1).backward()
    target = (torch.softmax(z, 1) - z.grad)[0].detach().numpy()  # the smoothed target torch uses
    leads = {}
    for name, t in (("one-hot", np.array([1.0, 0, 0])), ("smoothed", target)):
        logits, seen = np.zeros(3), []
        for step in range(1, 4001):
            p = np.exp(logits - logits.max())
            logits -= p / p.sum() - t
            if step in (1000, 4000):
                seen.append(logits[0] - logits[1])
        leads[name] = seen
    limit = math.log(target[0] / target[1])
    holds = bool(
        leads["one-hot"][1] > leads["one-hot"][0] + 1 and abs(leads["smoothed"][1] - limit) < 1e-6
    )
    one, smooth = leads["one-hot"], leads["smoothed"][1]
    return holds, (f"one-hot lead {one[0]:.2f} then {one[1]:.2f}; smoothed {smooth:.4f} (its "
                   f"limit {limit:.4f})")  # fmt: skip


@_shows(
    "v ← 0.9 v + g over 10,000 chains, g = 1 + unit noise, 150 steps: v's variance and mean "
    "against σ²/(1 - α²) = 5.26, σ²/(1 - α)² = 100 and g/(1 - α) = 10"
)
def _velocity_variance() -> tuple[bool, str]:
    rng = np.random.default_rng(0)
    v = np.zeros(10000)
    for _ in range(150):
        v = 0.9 * v + 1 + rng.normal(0, 1, v.size)
    var, mean = float(v.var()), float(v.mean())
    holds = abs(var / (1 / 0.19) - 1) < 0.05 and abs(mean - 10) < 0.1
    return holds, f"variance {var:.3f}, mean {mean:.3f}"


@_shows(
    "descentlab's RMSprop (α 0.9) fed gradient 1 for 200 steps, and fed 1 once then 0: its mean "
    "square r, and the step where the first gradient's weight falls to 1/e of (1 - α)"
)
def _moving_average_weights() -> tuple[bool, str]:
    import torch

    from descentlab.optim import RMSprop

    def square_avg(grads: list[float]) -> list[float]:
        w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        opt, out = RMSprop([w], lr=1e-3, alpha=0.9), []
        for g in grads:
            w.grad = torch.full((1,), g, dtype=torch.float64)
            opt.step()
            out.append(float(opt.state[w]["square_avg"][0]))
        return out

    total = square_avg([1.0] * 200)[-1]
    impulse = square_avg([1.0] + [0.0] * 30)
    fold = next(k for k, r in enumerate(impulse) if r < impulse[0] / math.e)
    holds = abs(total - 1) < 1e-6 and abs(fold - 10) <= 1
    return holds, f"r {total:.6f} after 200 steps of 1; weight below 1/e after {fold} steps"


@_shows(
    "descentlab's Adam (β₁ 0.9) fed a constant gradient 2 for 1, 5 and 30 steps: its first moment "
    "against 2(1 - β₁^t) and 2(1 - β₁)^t"
)
def _zero_start_weight() -> tuple[bool, str]:
    import torch

    from descentlab.optim import Adam

    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt, off, far = Adam([w], lr=1e-3, betas=(0.9, 0.999)), 0.0, math.inf
    for t in range(1, 31):
        w.grad = torch.full((1,), 2.0, dtype=torch.float64)
        opt.step()
        if t in (1, 5, 30):
            m = float(opt.state[w]["exp_avg"][0])
            off, far = max(off, abs(m - 2 * (1 - 0.9**t))), min(far, abs(m - 2 * 0.1**t) + (t == 1))
    return off < 1e-12 < 0.1 < far, f"off 2(1 - β₁^t) by {off:.1e}, off 2(1 - β₁)^t by ≥ {far:.2g}"


@_shows(
    "torch's cross_entropy with class weights on 6 examples of 3 classes, against Σ wᵢLᵢ/Σ wᵢ "
    "and Σ wᵢLᵢ/N"
)
def _class_weight_mean() -> tuple[bool, str]:
    import torch

    rng = np.random.default_rng(0)
    logits = torch.tensor(rng.normal(0, 1, (6, 3)))
    target, weight = (
        torch.tensor([0, 1, 2, 2, 1, 2]),
        torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64),
    )
    got = float(torch.nn.functional.cross_entropy(logits, target, weight=weight))
    each = torch.nn.functional.cross_entropy(logits, target, reduction="none").numpy()
    w = weight[target].numpy()
    by_weight, by_count = float((w * each).sum() / w.sum()), float((w * each).sum() / len(w))
    return abs(got - by_weight) < 1e-12 < 0.1 < abs(got - by_count), (
        f"torch {got:.6f}; Σ wᵢLᵢ/Σ wᵢ {by_weight:.6f}, Σ wᵢLᵢ/N {by_count:.6f}"
    )


@_shows(
    "Adam and SGD on c·x²/2 for c = 0.01, 1, 100, 100 steps from 1: the best of 41 rates "
    "10⁻⁴ to 10⁴ for each c, the spread of the best rates in decades"
)
def _best_rate_scale() -> tuple[bool, str]:
    rates = np.logspace(-4, 4, 41)
    best: dict[str, list[float]] = {"Adam": [], "SGD": []}
    for c in (0.01, 1.0, 100.0):
        x, sx, m, v = np.ones_like(rates), np.ones_like(rates), 0.0 * rates, 0.0 * rates
        for t in range(1, 101):
            g = c * x
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
            x = x - rates * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
            sx = np.clip(sx - rates * c * sx, -1e100, 1e100)  # a diverging rate stays finite
        for name, end in (("Adam", x), ("SGD", sx)):
            best[name].append(float(rates[np.argmin(np.abs(end))]))
    spread = {k: math.log10(max(b) / min(b)) for k, b in best.items()}
    return spread["Adam"] < 1 < 3 < spread["SGD"], (
        f"best rates spread over {spread['Adam']:.1f} decades for Adam, {spread['SGD']:.1f} for SGD"
    )


@_shows(
    "autograd: the gradient of the mean of 8 squared errors against the mean and the sum of "
    "the 8 examples' own gradients"
)
def _mean_gradient_linear() -> tuple[bool, str]:
    import torch

    rng = np.random.default_rng(0)
    x, y = torch.tensor(rng.normal(0, 1, (8, 3))), torch.tensor(rng.normal(0, 1, 8))
    w = torch.tensor(rng.normal(0, 1, 3), requires_grad=True)
    full = torch.autograd.grad(((x @ w - y) ** 2).mean(), w)[0]
    each = torch.stack([torch.autograd.grad((x[i] @ w - y[i]) ** 2, w)[0] for i in range(8)])
    off = float((full - each.mean(0)).abs().max())
    far = float((full - each.sum(0)).abs().max())
    return off < 1e-12 < 0.1 < far, f"off the mean by {off:.1e}, off the sum by {far:.2g}"


@_shows(
    "the exact mean and variance of SGD on x²/2 with unit gradient noise from x = 10, 2,000 "
    "steps at η/t and at η/(1 + kt), η 0.1, k 0.01: the expected loss each ends at"
)
def _one_over_t_aggressive() -> tuple[bool, str]:
    rates = {"η/t": lambda t: 0.1 / t, "η/(1 + kt)": lambda t: 0.1 / (1 + 0.01 * t)}
    ends = {name: _moments(rate, 2000)[1] for name, rate in rates.items()}  # E[x²] at the end
    return ends["η/t"] > 100 * ends["η/(1 + kt)"], (
        f"E[x²] {ends['η/t']:.3g} at η/t, {ends['η/(1 + kt)']:.2g} at η/(1 + kt)"
    )


@_shows(
    "numpy's polynomials: (2x - 1)³ expanded then differentiated, against 6(2x - 1)² "
    "expanded, and the multiplications each way"
)
def _expanded_cube() -> tuple[bool, str]:
    from numpy.polynomial import polynomial as P

    u = np.array([-1.0, 2.0])
    cube = P.polypow(u, 3)  # the cube expanded: 8x³ - 12x² + 6x - 1
    chain = 6 * P.polypow(u, 2)
    same = np.allclose(P.polyder(cube), chain, atol=0, rtol=0)
    return bool(same), (
        f"d/dx of {cube.tolist()} is {P.polyder(cube).tolist()}; 6(2x - 1)² is {chain.tolist()}"
    )


@_shows("np.outer of two axes of 60 and 120 points: the grid's values at each resolution")
def _grid_square() -> tuple[bool, str]:
    sizes = {n: np.outer(np.linspace(-2, 2, n), np.linspace(-2, 2, n)).size for n in (60, 120)}
    return sizes[120] == 4 * sizes[60], f"{sizes[60]} values at 60, {sizes[120]} at 120"


@_shows(
    "Adam's step after 10 steps of gradient 1 as m̂/(√v̂ + ε), as the blog's η_t m/√(v + ε) "
    "and as m/√(v + ε) with neither correction: each one's gap to the first"
)
def _blog_folds_corrections() -> tuple[bool, str]:
    usual, blog, _ = _adam_forms(1.0)
    b1, b2, m, v = 0.9, 0.999, 0.0, 0.0
    for _ in range(10):
        m, v = b1 * m + (1 - b1), b2 * v + (1 - b2)
    bare = m / math.sqrt(v + 1e-8)
    folded, dropped = abs(blog / usual - 1), abs(bare / usual - 1)
    return (
        folded < 1e-6 and dropped > 0.1,
        f"folded off by {folded:.1e}, uncorrected by {dropped:.2g}",
    )


@_shows(
    "Monte Carlo: a line fitted to 20 noisy points of sin 2πx, 10,000 training sets, scored "
    "at x = 0.9: the two cross terms of the expanded square, with noise of mean 0 and of "
    "mean 0.3, as fractions of the error"
)
def _cross_terms_vanish() -> tuple[bool, str]:
    rng = np.random.default_rng(1)
    truth, out = math.sin(2 * math.pi * 0.9), {}
    for mean in (0.0, 0.3):
        x = rng.uniform(0, 1, (10000, 20))
        y = np.sin(2 * np.pi * x) + rng.normal(mean, 0.3, x.shape)
        xm, ym = x.mean(1, keepdims=True), y.mean(1, keepdims=True)
        slope = ((x - xm) * (y - ym)).sum(1) / ((x - xm) ** 2).sum(1)
        pred = ym[:, 0] + slope * (0.9 - xm[:, 0])
        noise = rng.normal(mean, 0.3, pred.size)  # the test target's, independent of the fit
        err = float(np.mean((truth + noise - pred) ** 2))
        cross = 2 * np.mean(noise * (truth - pred)) + 2 * np.mean(
            (truth - pred.mean()) * (pred.mean() - pred)
        )
        out[mean] = abs(float(cross)) / err
    return out[0.0] < 0.02 < 0.1 < out[0.3], (
        f"cross terms {out[0.0]:.1e} of the error at noise mean 0, {out[0.3]:.2g} at mean 0.3"
    )


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
    # cards, items 1-33
    ("card_loss_from_distribution", "the loss follows from the assumed distribution",
     "the loss is chosen apart from the assumed distribution", "_nll_shapes", "item 2"),
    ("card_iid_product", "the probability of all of them is the product of each one's",
     "the probability of all of them is the sum of each one's", _independence_product, "item 3"),
    ("card_argmax_unmoved", "the argmax does not move", "the argmax moves", _nll_same_problem,
     "item 4"),
    typed("card_laplace_nll", "Its negative log is |y - μ|/b + log 2b", "|y - μ|/b + log 2b",
          points(_basics.laplace_nll, ({"y": 1.3, "μ": 0.5, "b": 1.5}, {"y": -2.0, "μ": 0.7,
          "b": 0.4})), "item 6", shows="-log of torch's Laplace density"),
    typed("card_gaussian_nll", "its negative log is (y - μ)²/(2σ²) + ½ log 2πσ²",
          "(y - μ)²/(2σ²) + ½ log 2πσ²", points(_basics.normal_nll, ({"y": 1.3, "μ": 0.5, "σ": 1.5},
          {"y": -2.0, "μ": 0.7, "σ": 0.4})), "item 7", shows="-log of torch's Normal density"),
    ("card_ls_gradient_linear", "the gradient Xᵀ(Xw - y) is linear in w",
     "the gradient Xᵀ(Xw + y) is linear in w", _basics.least_squares_gradient, "item 8"),
    ("card_network_many_solutions", "∇L = 0 is a nonlinear system with many solutions",
     "∇L = 0 is a linear system with one solution", "_permuted_minima", "item 8"),
    ("card_taylor_half", "f(x + h) ≈ f(x) + ½ f''(x) h²", "f(x + h) ≈ f(x) + f''(x) h²",
     _basics.taylor_half, "item 9"),
    ("card_negative_curvature_maximum", "if f'' < 0 a maximum", "if f'' < 0 a minimum",
     _second_derivative, "item 9"),
    ("card_flat_decides_nothing", "f'' = 0 decides nothing", "f'' = 0 makes a minimum",
     _basics.flat_second_derivative, "item 9"),
    ("card_all_eigenvalues_positive", "the test asks for all its eigenvalues to be positive",
     "the test asks for its eigenvalues' sum to be positive", _basics.eigenvalue_test, "item 9"),
    ("card_mixed_signs_saddle", "mixed signs make a saddle", "mixed signs make a minimum",
     _basics.eigenvalue_test, "item 9"),
    ("card_newton_jumps", "Newton's method would jump to the minimum of the local quadratic model",
     "Newton's method would step part way to the minimum of the local quadratic model",
     _basics.newton_one_jump, "item 10"),
    ("card_hessian_numbers", "p = 10⁶ weights that is 10¹² numbers",
     "p = 10⁶ weights that is 10⁶ numbers", _basics.hessian_size, "item 10"),
    ("card_backprop_twice_forward", "which backpropagation computes for about twice the cost of a "
     "forward pass", "which backpropagation computes for the cost of a forward pass per weight",
     _basics.backprop_cost, "item 11"),
    ("card_descent_stops_at_saddle", "but possibly a saddle", "but never a saddle",
     _basics.saddle_stop, "item 11"),
    ("card_batch_cost", "A step costs |B|/N of a full-batch step",
     "A step costs N/|B| of a full-batch step", _basics.batch_cost, "item 13"),
    ("card_cheap_steps_farther", "those many cheap steps go much farther",
     "the one exact step goes much farther", _basics.cheap_steps_farther, "item 13"),
    typed("card_finite_population", "multiplies this by (N - B)/(N - 1)", "(N - B)/(N - 1)",
          points(_basics.finite_population, ({"N": 6, "B": 2}, {"N": 8, "B": 3})), "item 14",
          shows="the variance of the mean of every subset of B of N numbers over σ²/B"),
    typed("card_error_factor", "a gradient step multiplies the error by 1 - ηλ", "1 - ηλ",
          points(_basics.error_factor, ({"η": 0.1, "λ": 2.0}, {"η": 0.3, "λ": 5.0})), "item 15",
          shows="descentlab's SGD, one step on λ(w - 2)²/2"),
    typed("card_rate_cap", "caps the learning rate at 2/L", "2/L", points(_basics.stability_edge,
          ({"L": 4.0}, {"L": 10.0})), "item 15",
          shows="the largest stable rate of gradient descent on diag(L, L/7), found by running",
          tol=1e-3),
    ("card_constant_rate_no_convergence",
     "a constant rate with noisy gradients does not converge to the minimum",
     "a constant rate with noisy gradients converges to the minimum",
     _basics.decaying_rate_settles, "item 17"),
    ("card_floor_halves", "halve α and the spread halves", "halve α and the spread stays",
     _basics.constant_rate_floor, "item 18"),
    ("card_decaying_converges", "Only a decaying rate (items 20-21) converges",
     "Even a constant rate (items 20-21) converges", _basics.decaying_rate_settles, "item 18"),
    ("card_tail_must_shrink", "For the iterates to settle, the tail of this series must shrink",
     "For the iterates to settle, the tail of this series need not shrink", _basics.noise_walk,
     "item 19"),
    ("card_constant_sum_wanders", "so the sum keeps wandering", "so the sum settles",
     _basics.noise_walk, "item 19"),
    ("card_noisy_tail_finite", "the noisy tail sums to something finite while the total rate Σ "
     "η_k is still unlimited", "the noisy tail sums to something finite while the total rate Σ "
     "η_k is finite too", _basics.power_decays, "item 19"),
    ("card_cover_any_distance", "the steps must be able to cover any distance",
     "the steps need not cover any distance", _basics.travel_budget, "item 20"),
    ("card_finite_travel_budget", "a finite sum is a finite travel budget",
     "a finite sum is no limit on travel", _basics.travel_budget, "item 20"),
    ("card_finite_noise_to_settle", "it must be finite for the iterate to stop fluctuating",
     "it may be infinite and the iterate still stops fluctuating", _basics.noise_walk, "item 20"),
    typed("card_inverse_squares", "Σ 1/t² = π²/6", "π²/6", points(_basics.inverse_squares, ({},)),
          "item 21", shows="Σ 1/t² summed to 10⁴ with its tail's Euler-Maclaurin terms", tol=1e-11),
    ("card_powers_meet_both", "Any η/t^p with ½ < p ≤ 1 does too",
     "Any η/t^p with 0 < p ≤ 1 does too", _basics.power_decays, "item 21"),
    ("card_powers_fail", "p ≤ ½ fails the second, p > 1 the first",
     "p ≤ ½ fails the first, p > 1 the second", _basics.power_decays, "item 21"),
    ("card_torch_schedules_factor",
     "torch's schedulers all multiply the optimizer's base rate by a factor",
     "torch's schedulers all add to the optimizer's base rate a term", _basics.schedule_factors,
     "item 22"),
    ("card_descentlab_same_factors",
     "descentlab's schedules are the same factors as functions of the step",
     "descentlab's schedules are other factors than torch's", _basics.schedule_factors,
     "item 22"),
    ("card_momentum_addresses_slowness", "That slowness, not the noise, is what momentum addresses",
     "That noise, not the slowness, is what momentum addresses", "_optimal_heavy_ball_steps",
     "item 23"),
    ("card_flipping_cancel", "the flipping terms partly cancel", "the flipping terms add up",
     _basics.flipping_terms_cancel, "item 24"),
    ("card_velocity_keeps_fraction",
     "it keeps the fraction β₁ of its last value and adds the new step -η∇L",
     "it keeps the fraction 1 - β₁ of its last value and adds the new step -η∇L",
     _basics.velocity_recursion, "item 25"),
    ("card_velocity_unrolled", "m_t = -η Σ_k β₁^(t-k) ∇L(w_k)", "m_t = -η Σ_k β₁^k ∇L(w_k)",
     _basics.velocity_unrolled, "item 25"),
    ("card_momentum_zero_descent", "With β₁ = 0 it is gradient descent",
     "With β₁ = 0.5 it is gradient descent", _basics.momentum_zero_is_descent, "item 25"),
    typed("card_velocity_limit", "on a constant gradient it converges to -η∇L/(1-β₁)",
          "-η∇L/(1-β₁)", points(_basics.velocity_limit, ({"η": 0.05, "∇L": 2.0, "β₁": 0.6},
          {"η": 0.1, "∇L": -1.0, "β₁": 0.5})), "item 25",
          shows="descentlab's Momentum (velocity form) after 60 steps of a constant gradient"),
    typed("card_impulse_weight", "a gradient's weight in m has shrunk to β^k", "β^k",
          points(_basics.impulse_weight, ({"β": 0.9, "k": 3}, {"β": 0.5, "k": 5})), "item 26",
          shows="descentlab's Momentum (velocity form): one gradient's velocity k steps later "
          "over its first", wrong="β^(k+1)"),
    ("card_steep_dominates", "the gradient is dominated by its W₂ component",
     "the gradient is dominated by its W₁ component", _basics.steep_component, "item 27"),
    typed("card_power_rule", "d/dx xⁿ = n xⁿ⁻¹", "n xⁿ⁻¹", points(_basics.autograd_power,
          ({"x": 1.3, "n": 3}, {"x": 0.7, "n": 5})), "item 31",
          shows="autograd's derivative of xⁿ"),
    typed("card_cubic_derivative", "d/dx (3x³ - 2x + 1) = 9x² - 2", "9x² - 2",
          points(_basics.autograd_cubic, ({"x": 1.5}, {"x": -0.7})), "item 31",
          shows="autograd's derivative of 3x³ - 2x + 1"),
    ("card_partial_holds", "differentiates in one variable holding the others fixed",
     "differentiates in every variable at once", _basics.partial_holds_others, "item 32"),
    typed("card_partial_x", "f_x = 3y² + 12x²", "3y² + 12x²", points(_basics.autograd_partial(0),
          ({"x": 1.0, "y": 2.0}, {"x": -0.5, "y": 1.5})), "item 32", shows="autograd's ∂f/∂x"),
    typed("card_partial_y", "f_y = 6xy - 10y", "6xy - 10y", points(_basics.autograd_partial(1),
          ({"x": 1.0, "y": 2.0}, {"x": -0.5, "y": 1.5})), "item 32", shows="autograd's ∂f/∂y"),
    ("card_gradient_two_forwards", "a gradient costs about two forward passes, not one per weight",
     "a gradient costs one forward pass per weight", _basics.backprop_cost, "item 33"),
    # cards, items 34-66
    ("card_bowl_minimum", "Both vanish at (2, 2), the minimum",
     "Both vanish at (2, 2), the maximum", _bowl_minimum, "item 35"),
    ("card_step_against_gradient", "move a learning rate's worth against it",
     "move a learning rate's worth along it", "_steepest_ascent", "item 38"),
    ("card_largest_along_gradient", "It is largest for θ = 0", "It is smallest for θ = 0",
     "_steepest_ascent", "item 40"),
    ("card_other_norm_turns", "in another norm the steepest direction changes",
     "in another norm the steepest direction is the same", _norm_steepest, "item 40"),
    ("card_error_factor", "on a quadratic each step multiplies the error by 1 - ε·f''",
     "on a quadratic each step multiplies the error by 1 + ε·f''", _error_factor, "item 41"),
    ("card_momentum_keeps_moving", "it keeps moving after the gradient vanishes",
     "it stops where the gradient vanishes", _momentum_overshoots, "item 50"),
    ("card_velocity_first_step", "The first step is plain gradient descent",
     "The first step is α times plain gradient descent", _velocity_steps, "item 51"),
    ("card_velocity_fraction", "afterwards each step adds a fraction α of the last",
     "afterwards each step adds a fraction 1 - α of the last", _velocity_steps, "item 51"),
    ("card_nesterov_ahead", "Nesterov takes the gradient at the point momentum is about to "
     "reach, w + αv", "Nesterov takes the gradient at the point it stands on, w",
     "_nesterov_point", "item 52"),
    ("card_bold_driver_noisy", "unreliable with noisy mini-batch losses",
     "just as reliable with noisy mini-batch losses", _noisy_bold_driver, "item 54"),
    ("card_delta_only_guards", "only prevents a division by zero",
     "also sets the step's size", _delta_guards_zero, "item 55"),
    ("card_adagrad_root_t", "ε per step at first, shrinking like 1/√t",
     "ε per step at first, growing like √t", _adagrad_constant_steps, "item 55"),
    ("card_adam_corrections", "both corrected by 1/(1 - ρ^t) for their zero start",
     "both corrected by 1/ρ^t for their zero start", _adam_by_hand, "item 58"),
    ("card_local_slope_only", "Nothing in the method looks beyond the local slope",
     "The method sees beyond the local slope", _local_slope_only, "item 61"),
    ("card_test_choice_optimistic", "using it to choose would make its score optimistic",
     "using it to choose would make its score pessimistic", _chosen_on_test, "item 64"),
    # cards, items 67-99
    typed("card_samme_alpha", "α = log((1 - err)/err) + log(K - 1)",
          "log((1 - err)/err) + log(K - 1)", _samme_cases, "item 69",
          shows="the α that brings a learner's reweighted error to chance "
          "(K - 1)/K, solved by bisection for 6 (err, K)", wrong="log((1 - err)/err) - log(K - 1)"),
    ("card_sharpness_quick", "the quick build: two batch sizes, two seeds, one box",
     "the quick build: four batch sizes, five seeds, two boxes", _sharpness_quick, "item 71"),
    ("card_lookahead_brakes", "that look-ahead gradient already points back and brakes the step",
     "that look-ahead gradient still points forward and speeds the step", _lookahead_brakes,
     "item 74"),
    ("card_heavy_ball_no_guarantee", "Heavy-ball momentum matches that on quadratics but has no "
     "such guarantee in general", "Heavy-ball momentum matches that on quadratics and keeps that "
     "guarantee in general", _heavy_ball_lessard, "item 75"),
    typed("card_adagrad_step", "accumulated squared gradients, W -= η g/√(G + ε)", "η g/√(G + ε)",
          _adagrad_cases, "item 76",
          shows="descentlab's Adagrad's steps (ε inside the root), 3 steps × 2 coordinates",
          wrong="η g/(G + ε)"),
    ("card_moving_average", "RMSProp and Adadelta replace the sum by a moving average",
     "RMSProp and Adadelta keep AdaGrad's sum", _moving_average_state, "item 77"),
    typed("card_adadelta_step", "steps ΔW = -√(H + ε)/√(G + ε) · g", "-√(H + ε)/√(G + ε) · g",
          _adadelta_cases, "item 78",
          shows="descentlab's Adadelta's steps, 3 steps × 2 coordinates",
          wrong="-√(G + ε)/√(H + ε) · g"),
    ("definition_adadelta_slow_start", "so the first steps are about √ε",
     "so the first steps are about ε", _adadelta_first_step, "item 78"),
    typed("card_adadelta_bowl_steps", "it reaches the bowl's minimum after about 730 steps", "730",
          _adadelta_bowl_steps, "item 78", shows="the figure's Adadelta run (the adaptive "
          "experiment's loop): its first step within 1e-3 of the minimum", wrong="7300", tol=0.05),
    typed("card_ema_window", "with an effective window of 1/(1-ρ) steps", "1/(1-ρ)",
          _ema_window_cases, "item 79", shows="the mean age of the weights "
          "descentlab's RMSprop gives a past squared gradient, at ρ = 0.5 and 0.6", wrong="1/ρ",
          tol=1e-6),
    ("card_rate_adapts_up", "so the rate adapts up as well as down",
     "so the rate only adapts down", _rate_adapts_up, "item 80"),
    typed("card_early_stopping_l2", "close to an L2 penalty with strength ≈ 1/(η t)", "1/(η t)",
          _early_stop_cases, "item 84", shows="the L2 strength whose ridge filter is "
          "nearest gradient descent's after t steps, for 3 (η, t), within a factor 2", wrong="η t",
          tol=1.0),
    ("card_invariance_only", "It only helps when the transformations are real invariances of "
     "the task", "It helps whatever the transformations are", _invariance_helps, "item 86"),
    ("card_weight_noise_flat", "Noise on the weights rewards solutions where the loss does not "
     "change when the weights move", "Noise on the weights rewards solutions where the loss "
     "changes most when the weights move", _weight_noise_flat, "item 87"),
    ("card_soft_targets", "All three ask for smooth transitions between classes instead of a "
     "hard boundary", "All three ask for a hard boundary between classes instead of smooth "
     "transitions", _soft_targets, "item 88"),
    typed("card_thinned_networks", "an average over the 2ⁿ thinned networks", "2ⁿ", _dropout_masks,
          "item 89", shows="the distinct masks torch's dropout draws on n = 3 and 5 units",
          wrong="2n", tol=0.0),
    ("card_flip_learned", "Because the kernel is learned, the flip does not matter for training",
     "Because the kernel is learned, the flip matters for training", _flip_learned, "item 91"),
    ("card_pooling_reduces", "Pooling then reduces the resolution",
     "Pooling then keeps the resolution", _pooling_halves, "item 93"),
    ("card_one_by_one", "it is a fully connected layer applied pixel by pixel",
     "it is a fully connected layer applied to the whole image", _one_by_one, "item 96"),
    ("card_local_minimum_stops", "the iterate stops whether or not a deeper valley lies beyond "
     "the ridge", "the iterate moves on to the deeper valley beyond the ridge",
     _local_minimum_stops, "item 97"),
    ("card_saddle_gradient_zero", "At a saddle point the gradient is zero too",
     "At a saddle point the gradient is nonzero", _saddle_ridge, "item 97"),
    ("card_saddle_ridge", "started exactly on the ridge the iterate never leaves, and started "
     "near it it crawls", "started exactly on the ridge the iterate leaves at once, and started "
     "near it it crawls", _saddle_ridge, "item 97"),
    typed("card_kappa_steps", "it needs about a/b = κ steps", "a/b", _ravine_cases, "item 97",
          shows="gradient descent at η = 1/a on ½(a x² + "
          "b y²): the steps until y < 1/e, for 3 (a, b)", wrong="√(a/b)",
          opposite="it needs about √(a/b) = √κ steps", tol=0.03),
    ("card_momentum_conditioning", "Momentum speeds up badly conditioned directions",
     "Momentum slows down badly conditioned directions", "_optimal_heavy_ball_steps",
     "item 98"),
    typed("card_velocity_sum", "after t steps v = -ρ Σ_k α^(t-k) ∇J(Θ_k)", "-ρ Σ_k α^(t-k) ∇J(Θ_k)",
          _velocity_cases, "item 99",
          shows="descentlab's velocity-form Momentum fed one gradient at step k of t = 6 "
          "(one term of the sum)", wrong="-ρ Σ_k α^k ∇J(Θ_k)", names={"Σ_k": "", "∇J(Θ_k)": "g"}),
    ("card_flipping_cancels", "where it flips sign from step to step the terms cancel",
     "where it flips sign from step to step the terms add up", _consistent_against_flipping,
     "item 99"),
    ("card_speed_and_damping", "speed along consistent directions, damping across oscillating "
     "ones", "speed across oscillating directions, damping along consistent ones",
     _consistent_against_flipping, "item 99"),
    typed("card_conv_output_size", "give ⌊(n + 2p - k)/s⌋ + 1 outputs", "⌊(n + 2p - k)/s⌋ + 1",
          _conv_lengths, "item 94", shows="torch's conv1d output length for 6 (n, k, s, p)",
          wrong="⌊(n + p - k)/s⌋ + 1"),
    typed("card_same_padding", "padding p = (k - 1)/2 with stride 1 keeps the size", "(k - 1)/2",
          _same_padding, "item 94", shows="the padding that keeps torch's "
          "conv1d's length at stride 1, k = 1 to 7", wrong="(k + 1)/2"),
    ("card_stride_two_halves", "stride 2 halves it", "stride 2 keeps it", _stride_two_halves,
     "item 94"),
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
    # listed sentences backed
    ("card_bias_squared_sum", "So the expected error is bias² + variance + noise",
     "So the expected error is bias + variance + noise", _bias_squared_sum, "item 66"),
    ("card_e_fold_steps", "reducing it by e takes 1/(ηλ) steps",
     "reducing it by e takes 1/(ηλ)² steps", _e_fold_steps, "item 16"),
    ("card_first_stable_fastest", "the first stable rate is near the fastest",
     "the first stable rate is far from the fastest", _first_stable_near_fastest, "item 17"),
    ("card_stationary_spread", "constant-rate SGD is pushed off it and settles into a stationary "
     "spread", "constant-rate SGD stays on it once there", _pushed_off_minimum, "item 18"),
    ("card_injected_noise", "the noise injected by step t has variance η_t² σ²",
     "the noise injected by step t has variance η_t σ²", _injected_noise, "item 20"),
    ("card_velocity_e_fold", "it falls to 1/e after -1/ln β ≈ 1/(1-β) steps",
     "it falls to 1/e after -1/ln β ≈ 1/(1-β)² steps", _velocity_e_fold, "item 26"),
    ("card_stable_w2_tiny_w1", "A rate small enough to keep W₂ stable makes the W₁ steps tiny",
     "A rate small enough to keep W₂ stable leaves the W₁ steps large", _one_rate_two_curvatures,
     "item 27"),
    ("card_larger_overshoots", "a larger one makes W₂ overshoot back and forth",
     "a larger one makes W₂ settle without overshooting", _one_rate_two_curvatures, "item 27"),
    ("card_steps_about_rate", "makes it about η in every coordinate that has had steady gradients",
     "makes it about η times the gradient in every coordinate that has had steady gradients",
     _steps_about_rate, "item 28"),
    ("card_rates_multiply", "the rates multiply", "the rates add", _rates_multiply, "item 33"),
    ("card_nesterov_gain_reversed", "the gain over heavy-ball momentum can be small or, for badly "
     "chosen settings, reversed", "the gain over heavy-ball momentum holds at any settings",
     _nesterov_gain_settings, "item 52"),
    ("card_faster_depends", '"Faster in practice" depends on the settings',
     '"Faster in practice" holds at any settings', _nesterov_gain_settings, "item 75"),
    ("card_gap_capacity_data", "It grows with the model's capacity and shrinks with more data",
     "It shrinks with the model's capacity and grows with more data", _gap_capacity_data,
     "item 62"),
    ("card_critical_batch", "the extra accuracy buys little",
     "the extra accuracy keeps dividing the steps", _noise_scale_batch, "item 70"),
    ("card_blog_epsilon", "which matters only when √v is as small as √ε",
     "which matters even when √v is far above √ε", _blog_epsilon, "item 81"),
    ("card_paper_epsilon", "which changes the result only when √v is as small as ε",
     "which changes the result even when √v is far above ε", _paper_epsilon, "item 130"),
    ("card_larger_eps_gentler", "makes Adam less aggressive on flat coordinates",
     "makes Adam more aggressive on flat coordinates", _larger_eps_gentler, "item 82"),
    ("card_small_weights_smooth", "Small weights make the function smoother",
     "Small weights make the function rougher", _small_weights_smooth, "item 85"),
    ("card_smoothing_finite", "so the network is never asked for infinite logits",
     "so the network is still asked for infinite logits", _smoothing_finite_logits, "item 88"),
    ("card_average_keeps_floor", "What the average does not do is lower the noise floor",
     "What the average does is lower the noise floor", _momentum_conditioning_not_noise,
     "item 98"),
    ("card_heavy_ball_floor", "heavy ball hovers at the noise floor of plain SGD",
     "heavy ball hovers below the noise floor of plain SGD", _momentum_conditioning_not_noise,
     "item 98"),
    ("card_velocity_variance", "the stationary variance of v is σ²/(1-α²)",
     "the stationary variance of v is σ²/(1-α)²", _velocity_variance, "item 98"),
    ("card_weights_sum_one", "which sum to 1 (so r estimates the mean square gradient)",
     "which sum to 1/(1-α) (so r estimates the mean square gradient)", _moving_average_weights,
     "item 110"),
    ("card_zero_start_weight", "= E[g] (1 - α₁^t)", "= E[g] (1 - α₁)^t", _zero_start_weight,
     "item 111"),
    ("card_class_weight_mean", "the mean divides by the sum of those weights",
     "the mean divides by the number of examples", _class_weight_mean, "item 120"),
    ("card_rate_scale_free", "makes the best learning rate depend less on the problem's scale",
     "makes the best learning rate depend more on the problem's scale", _best_rate_scale,
     "item 131"),
    ("card_mean_gradient", "so ∇L = (1/N) Σ ∇L_i", "so ∇L = Σ ∇L_i", _mean_gradient_linear,
     "item 12"),
    ("card_one_over_t_aggressive", "1/t from the first step is too aggressive",
     "1/t from the first step is gentle enough", _one_over_t_aggressive, "item 21"),
    ("card_expanded_cube", "Expanding the cube first gives the same polynomial",
     "Expanding the cube first gives a different polynomial", _expanded_cube, "item 34"),
    ("card_grid_square", "The grid grows with the square of the resolution",
     "The grid grows linearly with the resolution", _grid_square, "item 47"),
    ("card_blog_folds", "The blog's formula folds Adam's two bias corrections into the rate",
     "The blog's formula drops Adam's two bias corrections", _blog_folds_corrections, "item 81"),
    ("card_expand_square", "E[(t - f̂)²] = (f - E[f̂])² + E[(f̂ - E[f̂])²] + σ²",
     "E[(t - f̂)²] = (f - E[f̂]) + E[(f̂ - E[f̂])²] + σ²", _bias_squared_sum, "item 66"),
    ("card_cross_terms_vanish", "the cross terms vanish because the noise has mean 0",
     "the cross terms remain although the noise has mean 0", _cross_terms_vanish, "item 66"),
)  # fmt: skip

#: the cards' sentences that nothing the book runs can back, a phrase each holds and why
UNBACKED: dict[str, str] = {
    "SGD replaces the mean over all N examples by the mean over a random batch": (
        "the definition of the algorithm: 'median' would define another estimator, which no run "
        "refutes; item 14's claim binds that the batch mean is unbiased"
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
        "a cost model, not a behaviour: a full-batch step evaluates one gradient per example by "
        "the definition of L, so its cost is proportional to N by construction; the book times "
        "no machine (timings vary with it), and a count of the definition's terms could not fail"
    ),
    "so the bowl is three times steeper in x: gradient descent shrinks": (
        "its word is chosen from the curvatures 6 and 2 by the build ({{word:...}}, facts.choose):"
        " a swap cannot reach the page"
    ),
    "In large networks most local minima found in practice have similar loss": (
        "an empirical finding about large networks; no run of the book trains one"
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
        "a memory count of an optimizer the book does not implement (a windowed AdaGrad): w "
        "stored copies is what the design, stated in the sentence before, means; no optimizer of "
        "the book holds a window whose state a run could count"
    ),
    "Regularization is anything that lowers the test error more than the training error": (
        "a definition of the word (Goodfellow et al.'s): it says what counts as regularization; "
        "item 83's experiment measures each method's effect on the gap, the definition has no "
        "contrary a run could show"
    ),
    "The toolbox works in three ways": (
        "a classification: how the book groups the regularizers (limit training, vary the data, "
        "add noise) is a choice of presentation; item 83's experiment measures every method named"
    ),
    "flat minima.": (
        "the end of a list of names (the paragraph's last item); the item's claim on sharp minima "
        "is bound on item 71"
    ),
    "Mixup trains on convex combinations of two examples": (
        "a definition of a procedure ('convex combination' names weights in [0, 1]; 'concave' is "
        "no contrary)"
    ),
    "Fewer parameters mean less to fit": (
        "a judgement from practice (less data, less overfitting); the card's claim binds the "
        "parameter count itself"
    ),
    "On a convex problem that is a reasonable schedule": (
        "a judgement ('reasonable') with no threshold to test; AdaGrad's falling rate is bound on "
        "items 56, 77 and 109, and whether a 1/√t fall suits a convex problem is the regret bound "
        "of Duchi et al., a worst case no finite run shows"
    ),
    "Fit one Gaussian Q to a two-peaked P": (
        "the card's instruction (what the cell does); 'Laplace' would name another exercise, not a"
        " contrary"
    ),
    # cards, items 1-33
    "A model with weights w defines a distribution over the data": (
        "notation: names the model's distribution P_model(· | w) that the card's next sentences "
        "compare with P_data; a definition by convention, nothing to run"
    ),
    "That is why the next items start from the likelihood": (
        "a pointer to the lecture's order (items 2-4 take the likelihood up), no quantity stated"
    ),
    "It needs no prior and no loss chosen by hand": (
        "what the definition ŵ = argmax p(X | w) leaves out (a prior, as a MAP estimate would "
        "add): a reading of the formula, not a result; the next clause, the loss following from "
        "the distribution, is bound by a run"
    ),
    "identical distribution is what lets one model p_model serve every factor": (
        "the meaning of 'identically distributed' (one density for every example), a modelling "
        "assumption by definition; the product's dependence on independence is bound on item 3"
    ),
    "Write the model's prediction as the centre μ = f_w(x)": (
        "notation: names the prediction μ that items 6 and 7's formulas (each evaluated against "
        "torch's densities) use"
    ),
    "hence iterative descent.": (
        "the conclusion the sentence before draws (no formula solves ∇L = 0, so iterate), a rule "
        "of method; the card's cell runs the iteration beside the normal equations"
    ),
    "first-order methods skip it and take many cheap steps": (
        "the definition of a first-order method (gradients only, no Hessian); a gradient's cost "
        "is bound on items 11 and 33 by counted multiply-adds"
    ),
    "the price is noise, which item 14 quantifies and item 18 shows at the end of training": (
        "a pointer to items 14 and 18, whose cells measure the batch gradient's variance and the "
        "noise floor (their claims bind them)"
    ),
    "Let B be drawn uniformly": (
        "the sampling assumption the derivation starts from (a setting), nothing to measure; what "
        "it yields, an unbiased batch mean, is bound by item 14's claim"
    ),
    "that is where training time goes": (
        "a judgement about real training runs (their flattest directions take the time), which no"
        " run of the book times; the step count 1/(ηλ) behind it is the card's reading"
    ),
    "Item 20 turns this into the two conditions": (
        "a pointer to item 20, whose two conditions are bound there"
    ),
    "Two things.": (
        "announces the two conditions the next two sentences state, each bound by a run there"
    ),
    "A tuned rate and a schedule fix the step's size, not its direction": (
        "true by definition: a rate, scheduled or not, is a positive scalar times the gradient, "
        "and a positive scalar cannot turn a vector; nothing to measure"
    ),
    "which is why it is a strong default": (
        "a judgement from practice ('a strong default'); what Adam inherits is the card's cell, "
        "whose reading binds its step to momentum's and RMSProp's averages"
    ),
    '"Often best" is not "always"': (
        "a summary of item 60's race table on the book's landscapes, whose rows are checked on "
        "that card"
    ),
    "The lecture in one line: assume a distribution for the data": (
        "the lecture's summary: restates items 1-7 (the likelihood and its losses), each bound on "
        "its card"
    ),
    "the loss's gradient comes from backpropagation": (
        "the summary's second clause: restates items 11 and 33, bound there by counted "
        "multiply-adds"
    ),
    "an optimizer turns gradients into steps (SGD, then momentum for direction": (
        "the summary's third clause: restates items 11-29 (SGD, momentum, RMSProp, Adam, "
        "schedules), each bound on its card"
    ),
    # cards, items 34-66
    "Everything else (the model's architecture, the data) is fixed while the optimizer runs": (
        "which quantities are the problem's variables is a modelling convention (training "
        "optimizes the weights by definition); the cell's data are constants by construction, "
        "no run can refute a convention"
    ),
    "The three choices (start, direction, step size) are exactly what the rest of the lecture": (
        "a pointer to the cards that vary each choice: items 44 (the start), 51-58 (direction "
        "and step size) and 43 (the rate), whose cells and rows run them"
    ),
    "saddle points, not bad minima, are the usual obstacle": (
        "an empirical finding of the literature on large networks' losses; the book trains no "
        "large network whose critical points it could count"
    ),
    "if it fell, keep going (or grow the rate a little)": (
        "the bold driver's other branch, a design choice of the heuristic (grow or keep); the "
        "card's cell runs increase=1.0 and the reading on the halving branch holds the run"
    ),
    "The family tree: gradient descent → SGD (random batches) → momentum and Nesterov": (
        "a genealogy: which method was proposed as a change of which is history (the "
        "bibliography dates each); the card's cell prints each child's chain beside its parent"
    ),
    "AdaGrad (per-coordinate scale from summed squares) → RMSProp and Adadelta": (
        "a genealogy of the adaptive methods (history, dated by the bibliography); items "
        "55-58 bind each method's rule to descentlab's optimizer"
    ),
    "Each child adds one rule to its parent's chain, which descentlab's optimizers print": (
        "what counts as 'one rule' is a reading of the printed chains (a trace's setting "
        "changed, or a scale rule replaced), shown beside the sentence; no comparison of the "
        "strings decides it"
    ),
    "No optimizer wins everywhere": (
        "a universal negative over all landscapes (the lecture's quotation of Bengio): no "
        "finite set of runs shows 'everywhere', and the card's cell, three landscapes at three "
        "rates, crowns RMSProp on each"
    ),
    "The honest comparison tunes each optimizer's rate, runs several seeds": (
        "a rule of method for comparing optimizers (what descentlab compare implements); "
        "nothing this card runs measures a method"
    ),
    "Gradient descent uses first derivatives only (it is first order)": (
        "the definitions of 'first order' and 'iterative', names for the rule item 41 binds "
        "to descentlab's SGD (w ← w - ε∇f(w) reads the gradient alone)"
    ),
    "Training error measures how well the model fits the data it was fitted to": (
        "a definition of a term by convention (the loss on the training set); the card's cell "
        "prints it beside the test error, and the gap's reading holds their difference"
    ),
    "what matters is the error on new data from the same distribution": (
        "the goal of learning stated, a choice of what to value rather than a fact a run "
        "could refute"
    ),
    "To choose a hyperparameter without touching the test set, split the training data": (
        "the purpose of cross-validation, a rule of method (choose without the test set); the "
        "card's claim measures what choosing on the test set does to its score"
    ),
    "train on k - 1, score on the held-out one, rotate, and average the k scores": (
        "the definition of k-fold cross-validation's loop, a procedure; the card's cell prints "
        "the folds, and the reading on fold_indices holds that they partition the examples"
    ),
    "Pick the best setting, then refit on all the training data": (
        "a rule of method (refit with every example once the setting is chosen), nothing to "
        "measure on this card"
    ),
    "The test set is used once, at the end, to report": (
        "a rule of method; the next clause's claim measures why (a score chosen on the test "
        "set is optimistic)"
    ),
    "Think of the training set as random": (
        "an instruction to the reader setting the frame (training sets as draws) that the "
        "definitions of bias and variance after it use; nothing to measure"
    ),
    # cards, items 67-99
    "Bagging (bootstrap aggregating) fits one model per bootstrap sample": (
        f"the definition of bagging {cite_in('breiman1996')}, a name for a procedure; the variance "
        "formula "
        "after it is printed against the cell's averages, and item 69's claim measures which "
        "error bagging lowers"
    ),
    "Keskar et al.": (
        "a citation's authors, cut from its year by the sentence splitter at 'et al.'; the "
        "finding it introduces is listed with the next sentence as a paper's finding"
    ),
    "there is no formula for it on a network": (
        "a negative about networks in general (no closed form for the best rate), which no "
        "finite run shows; the search is item 17's card, the schedules the schedules chapter's"
    ),
    "This made AdaGrad the method of choice for sparse problems": (
        "history: AdaGrad's adoption for word embeddings and click prediction "
        f"{cite_in('duchi2011')}; the rare feature's large steps it rests on are bound in the "
        "sentence before"
    ),
    "AdaGrad's alternative fix would be a window": (
        "a design no optimizer of the book implements (a hypothetical); the cell prints the "
        "memory it would take against Adadelta's state"
    ),
    "Which one helps depends on what limits generalization in the task": (
        "a rule of method (choose a regularizer by what limits generalization); 'the task' is "
        "every task, no run covers it, and item 83's experiment measures each method on one"
    ),
    "the book measures each on one overfitting problem": (
        "a pointer to the card's own experiment (book/experiments/regularization.py), whose "
        "table runs every method named on one overfitting MLP"
    ),
    "augmentation manufactures it by applying transformations the label does not depend on": (
        "the definition of data augmentation with examples of transformations, a name for a "
        "procedure; the card's cell prints what regularize.augment_1d does to a signal"
    ),
    "The network sees each example in many versions and cannot memorize one of them": (
        "a mechanism in words about a network's memory of examples, which the book has no "
        "measure of; item 83's experiment measures augmentation's effect on the gap"
    ),
    "what it must learn is what stays the same across them": (
        "restates the invariance the sentence before defines; the claim on the next sentence "
        "runs augmentation by an invariance and by a non-invariance"
    ),
    "A unit cannot rely on any particular other unit being present": (
        f"the motivation of dropout {cite_in('srivastava2014')} in words: co-adaptation has no "
        "measure the book computes"
    ),
    "It was introduced to reduce": (
        f"history: the motivation {cite('ioffe2015')} gave, which the rest of the paragraph "
        "reports later work disputing"
    ),
    "This imbalance is why later networks replaced the big dense layers by global pooling": (
        "history of architecture design (Network in Network, GoogLeNet); the imbalance itself "
        "is read from the cell's table on this card"
    ),
    "Inception and ResNet's bottleneck blocks use it": (
        "history: which architectures use the block; its saving is read from descentlab's count "
        "on this card"
    ),
    "three landscapes defeat that view": (
        "the paragraph's announcement: each of its three landscapes (a local minimum, a saddle, "
        "poor conditioning) is bound in a sentence after it"
    ),
    "Poor conditioning is the everyday problem": (
        "a judgement of how often in practice; the conditioning's cost in steps (a/b = κ) is "
        "bound in the sentences after it"
    ),
    "Equation (5.12) gives the iterate a velocity": (
        "a pointer to the lecture's equation (5.12), whose velocity form the next sentence types "
        "and a claim evaluates"
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
