"""The exercises' worked solutions (their *hints*) bound to the runs that show them.

A numeric exercise binds its hint's words in its own code: its ``said`` dict maps a phrase of
the worked solution to what its run computes of it, and the exercise's check row is ✘ when
the solution no longer says the phrase (reworded, or turned to its opposite) or the run
computes the contrary (:func:`~descentlab.book.cells.said_words`); the same row reads what the
solution types (:func:`~descentlab.book.cells.typed_mismatches`): the libraries and numbers of
a sentence about the code, each formula whose letters the code's ``symbols`` dict binds, and
the value by which a sentence names the misconception. An open-ended exercise has
no run of its own: its hint's sentences are bound here, each to a small demonstration, as
rows of :data:`CLAIMS` that :mod:`descentlab.book.claims` adds to its own (the same
:class:`~descentlab.book.claims.Claim`: a phrase, its opposite, the run, the card that reads
it); the sentences nothing can back are in :data:`UNBACKED`, with why.

A row's demonstration is a function of this module (float64 numpy or descentlab's
optimizers, a few milliseconds each) or the name of a claim of ``claims.CLAIMS`` whose run
shows the same thing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from descentlab.book import lecture_hints
from descentlab.book.checks import shows as _shows

__all__ = ["CLAIMS", "UNBACKED"]

_Demo = Callable[[], tuple[bool, str]]


@_shows("SGD at a constant rate on a noisy quadratic: its iterates' mean settles at the optimum, "
        "their variance at ησ²/(2 - η)")  # fmt: skip
def _noise_adds_variance() -> tuple[bool, str]:
    """4000 chains of SGD (η = 0.1) on f = w²/2 whose gradient carries unit noise: the mean of
    the iterates against 0 (no bias) and their variance against ησ²/(2 - η)."""
    rng = np.random.default_rng(0)
    lr, w = 0.1, np.ones(4000)
    for _ in range(300):
        w -= lr * (w + rng.standard_normal(4000))
    floor = lr / (2 - lr)
    holds = bool(abs(w.mean()) < 0.02 and abs(w.var() / floor - 1) < 0.1)
    return holds, f"mean {w.mean():.3f}, variance {w.var():.4f} against ησ²/(2 - η) = {floor:.4f}"


@_shows("descentlab's RMSprop on a ravine's gradients 10 (W₂) and 0.1 (W₁): the step along each "
        "axis, and its rate per unit of gradient")  # fmt: skip
def _rms_equalizes() -> tuple[bool, str]:
    """descentlab's RMSprop fed the constant gradients (0.1, 10): after its average fills,
    both steps are about lr, so the large gradient's rate is 100 times smaller."""
    import torch

    from descentlab.optim import RMSprop

    g = torch.tensor([0.1, 10.0], dtype=torch.float64)
    w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = RMSprop([w], lr=0.01, alpha=0.9)
    for _ in range(60):
        before = w.detach().clone()
        w.grad = g.clone()
        opt.step()
    step = (w.detach() - before).abs()
    small, large = float(step[0]), float(step[1])
    holds = abs(small / large - 1) < 0.01 and large / 10 < small / 0.1
    return (
        holds,
        f"steps {small:.4g} (W₁) and {large:.4g} (W₂): rates {small / 0.1:.3g}, {large / 10:.3g}",
    )


def _descend_x_sin_x(x: float, lr: float, steps: int = 3000) -> tuple[float, float, float]:
    """Gradient descent on x sin x from ``x``: (its end, the least and the largest x it
    visited)."""
    lo = hi = x
    for _ in range(steps):
        x -= lr * (np.sin(x) + x * np.cos(x))
        lo, hi = min(lo, x), max(hi, x)
    return x, lo, hi


@_shows("gradient descent on x sin x from 2.5 and 1.5: where each ends and whether it crossed the "
        "hill at x ≈ 2.03, at rate 0.01 and at rate 0.8")  # fmt: skip
def _basins() -> tuple[bool, str]:
    """The two starts of the derivatives lecture's exercise at a small rate (each stays on
    its side of the maximum between its minima) and at a large one (one crosses it)."""
    hill = 2.0288  # the maximum of x sin x between its minima at 0 and 4.91
    ends, crossed = [], []
    for start in (2.5, 1.5):
        end, lo, hi = _descend_x_sin_x(start, 0.01)
        ends.append(end)
        crossed.append(lo < hill < hi)
    end, lo, hi = _descend_x_sin_x(2.5, 0.8, steps=30)
    large_crosses = lo < hill < hi and abs(end) < 0.5
    holds = not any(crossed) and abs(ends[0] - ends[1]) > 1 and large_crosses
    return bool(holds), (f"rate 0.01: ends {ends[0]:.3f} and {ends[1]:.3f}, crossed {crossed}; "
                         f"rate 0.8 from 2.5 crosses to {end:.2f}: {large_crosses}")  # fmt: skip


@_shows("the rule 'halve the rate when the loss rises' on SGD's noisy mini-batch losses at a "
        "stable rate: the rate it ends with")  # fmt: skip
def _halving_freezes() -> tuple[bool, str]:
    """SGD at η = 0.1 on f = w²/2 (stable up to η = 2) whose loss is read from a mini-batch
    (noise of scale 0.1): the rule halves the rate on noise alone."""
    rng = np.random.default_rng(0)
    lr, w, previous = 0.1, 1.0, np.inf
    for _ in range(300):
        loss = w * w / 2 + 0.1 * rng.standard_normal()
        if loss > previous:
            lr /= 2
        previous = loss
        w -= lr * (w + 0.1 * rng.standard_normal())
    frozen = bool(lr < 1e-6 * 0.1)
    return frozen, f"the rate falls from 0.1 to {lr:.2g} in 300 steps, every one stable"


@functools.cache
def _saddle_steps() -> dict[str, int]:
    """Steps descentlab's SGD, Momentum (β = 0.9) and RMSprop take to leave the saddle
    f = (x² - y²)/2 from (1, 10⁻³), lr 0.01: until |y| > 1."""
    import torch

    from descentlab.optim import SGD, Momentum, RMSprop

    makers = {
        "SGD": lambda p: SGD(p, lr=0.01),
        "momentum": lambda p: Momentum(p, lr=0.01, momentum=0.9),
        "RMSprop": lambda p: RMSprop(p, lr=0.01, alpha=0.9),
    }
    out = {}
    for name, make in makers.items():
        w = torch.nn.Parameter(torch.tensor([1.0, 1e-3], dtype=torch.float64))
        opt = make([w])
        steps = 0
        while abs(float(w.detach()[1])) <= 1 and steps < 2000:
            w.grad = w.detach() * torch.tensor([1.0, -1.0], dtype=torch.float64)
            opt.step()
            steps += 1
        out[name] = steps
    return out


@_shows("steps descentlab's SGD and Momentum (β = 0.9) take to leave the saddle (x² - y²)/2 "
        "from y = 10⁻³")  # fmt: skip
def _momentum_escapes() -> tuple[bool, str]:
    s = _saddle_steps()
    return s["momentum"] < s["SGD"], f"SGD {s['SGD']} steps, momentum {s['momentum']}"


@_shows("steps descentlab's Momentum and RMSprop take to leave the saddle (x² - y²)/2 from "
        "y = 10⁻³")  # fmt: skip
def _adaptive_escapes() -> tuple[bool, str]:
    s = _saddle_steps()
    return s["RMSprop"] < s["momentum"], f"momentum {s['momentum']} steps, RMSprop {s['RMSprop']}"


@_shows("descentlab's Adagrad and RMSprop fed gradient 10 for 100 steps, then 0.1: the last "
        "step of each, in units of lr")  # fmt: skip
def _adagrad_remembers() -> tuple[bool, str]:
    """A non-stationary gradient, large early and small later: AdaGrad's sum stays dominated
    by the early gradients, RMSprop's average forgets them."""
    import torch

    from descentlab.optim import Adagrad, RMSprop

    last = {}
    for name, make in (("Adagrad", lambda p: Adagrad(p, lr=0.01)),
                       ("RMSprop", lambda p: RMSprop(p, lr=0.01, alpha=0.9))):  # fmt: skip
        w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        opt = make([w])
        for t in range(200):
            before = float(w.detach())
            w.grad = torch.full_like(w, 10.0 if t < 100 else 0.1)
            opt.step()
        last[name] = abs(float(w.detach()) - before) / 0.01
    holds = last["Adagrad"] < 0.01 < 0.5 < last["RMSprop"]
    return holds, f"last step: Adagrad {last['Adagrad']:.3g} lr, RMSprop {last['RMSprop']:.3g} lr"


@_shows("descentlab's Adam's second moment after 100 unit gradients, then one gradient 0.01 "
        "(or 10): by how much it shrinks at β₂ = 0.9 and at 0.999")  # fmt: skip
def _second_moment_drops() -> tuple[bool, str]:
    import torch

    from descentlab.optim import Adam

    def after(beta2: float, last: float) -> float:
        w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        opt = Adam([w], lr=0.01, betas=(0.9, beta2))
        for t in range(101):
            w.grad = torch.full_like(w, 1.0 if t < 100 else last)
            opt.step()
            if t == 99:
                v = float(opt.state[w]["exp_avg_sq"])
        return float(opt.state[w]["exp_avg_sq"]) / v

    fast, slow, large = after(0.9, 0.01), after(0.999, 0.01), after(0.9, 10.0)
    holds = fast < 0.95 < 0.995 < slow and large > 1
    said = f"one small gradient leaves v at {fast:.3f} of itself at β₂ = 0.9, {slow:.4f} at 0.999"
    return holds, f"{said}; one large gradient multiplies it by {large:.3g}"


@_shows("the lecture's momentum and look-ahead Nesterov loops (book.reference, β = 0.9) on the "
        "slope f(w) = 2w and on w²/2: their paths over 20 steps")  # fmt: skip
def _nesterov_on_a_slope() -> tuple[bool, str]:
    """On a constant gradient the look-ahead point's gradient is the current point's: the
    lecture's two loops (v ← αv - η∇L(w) and v ← αv - η∇L(w + αv)) take the same steps, and
    differ on a curved loss."""
    from descentlab.book.reference import lookahead_nesterov, velocity

    def gap(grad: Callable[[np.ndarray], np.ndarray]) -> float:
        w = np.ones(1)
        heavy, ahead = velocity(w, grad, 0.1, 0.9, 20), lookahead_nesterov(w, grad, 0.1, 0.9, 20)
        return float(np.abs(heavy - ahead).max())

    slope, curved = gap(lambda w: np.full_like(w, 2.0)), gap(lambda w: w)
    holds = slope < 1e-12 < 1e-3 < curved
    return holds, f"paths differ by {slope:.1e} on the slope, {curved:.3g} on w²/2"


#: (name, said, opposite, demonstration, home): a hint sentence's phrase and its contrary, the
#: run that says which holds (a function above, or the name of a claim of claims.CLAIMS whose
#: run it shares) and the page that reads it (a lecture exercise's: the card of its first item)
CLAIMS: tuple[tuple[str, str, str, _Demo | str, str], ...] = (
    ("hint_lecture_batch_expectation", "so the batch mean has the same expectation",
     "so the batch median has the same expectation", "keep_batch_unbiased", "item 14"),
    ("hint_lecture_noise_variance", "The noise adds variance", "The noise adds bias",
     _noise_adds_variance, "item 19"),
    ("hint_lecture_rms_equalizes",
     "the large W₂ gradient is scaled down (less oscillation), the small W₁ gradient scaled up "
     "(faster progress along the floor)",
     "the small W₂ gradient is scaled down (more oscillation), the large W₁ gradient scaled up "
     "(slower progress along the floor)", _rms_equalizes, "item 27"),
    ("hint_lecture_basins", "and with a small rate it never crosses the hill between them",
     "and with a large rate it never crosses the hill between them", _basins, "item 44"),
    ("hint_lecture_halving_fails",
     "It fails where the loss rises for a reason other than a too-large step",
     "It fails where the loss falls for a reason other than a too-large step",
     _halving_freezes, "item 54"),
    ("hint_lecture_three_terms", "noise, squared bias, variance", "noise, squared variance, bias",
     "bias_is_distance", "item 66"),
    ("hint_lecture_small_batch_noise", "Small batches add gradient noise whose scale grows with",
     "Large batches add gradient noise whose scale decays with", "keep_floor_eta_over_b",
     "item 71"),
    ("hint_lecture_flat_barely", "at a flat one it barely changes",
     "at a sharp one it barely changes", "hint_lecture_sharp_shift", "item 71"),
    ("hint_lecture_momentum_escape",
     "The velocity sums those small gradients over 1/(1 - α) steps, so the escape speeds up",
     "The velocity sums those large gradients over 1/(1 - α) steps, so the escape speeds up",
     _momentum_escapes, "item 102"),
    ("hint_lecture_adaptive_escape", "dividing the tiny gradient by its own small RMS",
     "dividing the tiny gradient by its own large RMS", _adaptive_escapes, "item 102"),
    ("hint_lecture_adagrad_early",
     "a loss whose gradient is large early (far from the optimum, or a warm-up phase) and small "
     "later leaves r dominated by the early gradients",
     "a loss whose gradient is small early (far from the optimum, or a warm-up phase) and large "
     "later leaves r dominated by the early gradients", _adagrad_remembers, "item 109"),
    ("hint_lecture_step_set_by_lr", "The step's size is set by lr, not by the curvature",
     "The step's size is set by the curvature, not by lr", _rms_equalizes, "item 27"),
    ("hint_lecture_local", "Gradient descent is local", "Gradient descent is global", _basins,
     "item 44"),
    ("hint_lecture_constant_slope", "On a constant slope the gradient is the same at both points, "
     "so the two methods coincide", "On a constant slope the gradient differs at the two points, "
     "so the two methods differ", _nesterov_on_a_slope, "item 52"),
    ("hint_lecture_rmsprop_forgets", "RMSProp's moving average forgets the early phase",
     "RMSProp's moving average keeps the early phase", _adagrad_remembers, "item 109"),
    ("hint_lecture_average_forgets",
     "the average forgets, so the rate tracks the recent gradients' scale",
     "the average remembers, so the rate tracks the early gradients' scale", _adagrad_remembers,
     "item 129"),
    ("hint_lecture_beta2_small", "a single small gradient shrinks v fast",
     "a single large gradient shrinks v fast", _second_moment_drops, "item 113"),
    # the lectures' exercises, hints 000-004 (descentlab.book.lecture_hints)
    *lecture_hints.CLAIMS,
    # listed sentences backed
    ("card_momentum_saddle", "The same momentum escapes a saddle",
     "The same momentum stalls at a saddle", _momentum_escapes, "item 102"),
)  # fmt: skip

#: the hint sentences nothing can back, a phrase each holds and why
UNBACKED: dict[str, str] = {
    # the lectures' exercises, hints 000-004
    **lecture_hints.UNBACKED,
    # the chapters' exercise hints
    "The code draws the batches as descentlab's epoch does":
        "a pointer to the engine's source, not a result: descentlab's epoch shuffles with "
        "torch.randperm in engine/loop.py, and the code takes the first B of a random "
        "permutation (argsort of uniform draws); what the draws give, the variance, is the "
        "row's number",
    "the final model, refitted on all 30 after the choice, is the only one that does":
        "a rule of method, the protocol of model selection (choose by the folds, then refit "
        "the chosen model on every example): a convention of practice that no run decides",
    "The code times nothing: it evaluates the model of the cost for both batch sizes":
        "says what the code leaves out (no clock: the cost per step is the question's given "
        "model, 40 µs plus 2 µs per example), an absence no run can show; the model's two "
        "values, 42 and 2.625 µs, are the row's own numbers",
}  # fmt: skip
