"""The adaptive family in depth, AdaGrad → RMSProp → Adam: what dividing by a gradient's size
does on a constant slope, under noise and on the ravine; traces for several (η, β₂) run by
descentlab's Adagrad, RMSprop and Adam."""

from __future__ import annotations

import math

import torch

from descentlab import optim
from descentlab.book.cells import playground_url
from descentlab.book.chapters._common import Numbers, finish, slope_steps
from descentlab.book.checks import ck, close
from descentlab.book.model import Context, Play
from descentlab.book.render.chapter import ChapterPage, Part, Table
from descentlab.book.render.pages import Movable
from descentlab.problems.trajectories import races
from descentlab.report import figures as FG

__all__ = ["chapter"]

LR = 0.1
SLOPES = (0.01, 1.0, 100.0)
STEPS = 100
#: the noisy slope: signal-to-noise ratios μ/σ, runs, steps (the last half measured)
SNRS = (10.0, 1.0, 0.1)
NOISE_RUNS, NOISE_STEPS, NOISE_LR = 1000, 1500, 0.01
#: the ravine's traces
RAVINE_LRS = (0.01, 0.1, 0.5)
RAVINE_STEPS = 200
SETTINGS = (
    ("sgd", "SGD", {}),
    ("adagrad", "AdaGrad", {}),
    ("rmsprop", "RMSProp", {"alpha": 0.9}),
    ("rmsprop", "RMSProp", {"alpha": 0.99}),
    ("adam", "Adam", {"betas": (0.9, 0.99)}),
    ("adam", "Adam", {"betas": (0.9, 0.999)}),
)
SLIDER_LRS = (0.01, 0.03, 0.1, 0.3, 0.5, 1.0)
#: a rare feature: its gradient arrives every PERIOD steps, for SPARSE_T steps
PERIOD, SPARSE_T = 10, 300
#: Adam's ε and the tiny slopes it is compared with
EPS, TINY = 1e-8, (1e-10, 1e-8, 1e-6)
#: a spike: SPIKE_T gradients of SPIKE_QUIET, then one of SPIKE, for each β₂
SPIKE_T, SPIKE_QUIET, SPIKE, SPIKE_B2 = 5000, 1e-3, 1e3, (0.9, 0.99, 0.999)


def _noisy_adam(snr: float) -> float:
    """Adam's mean step on the slope ``g = μ + σξ`` (μ = 1, σ = μ/snr) over the last half of
    :data:`NOISE_STEPS`, in units of η, averaged over :data:`NOISE_RUNS` runs."""
    gen = torch.Generator().manual_seed(0)
    w = torch.nn.Parameter(torch.zeros(NOISE_RUNS, dtype=torch.float64))
    opt = optim.Adam([w], lr=NOISE_LR)
    moved = torch.zeros(NOISE_RUNS, dtype=torch.float64)
    half = NOISE_STEPS // 2
    for t in range(NOISE_STEPS):
        before = w.detach().clone()
        w.grad = 1.0 + (1.0 / snr) * torch.randn(NOISE_RUNS, dtype=torch.float64, generator=gen)
        opt.step()
        if t >= half:
            moved += before - w.detach()
    return float(moved.mean()) / (NOISE_STEPS - half) / NOISE_LR


def _ravine(lr: float) -> list:
    out = []
    for name, _, hyper in SETTINGS:
        out += races("ravine", [name], lr=lr, steps=RAVINE_STEPS, hyper={name: hyper})
    return out


def chapter(ctx: Context) -> ChapterPage:
    """The chapter's page, every number computed now."""
    n = Numbers(
        LR,
        *SLOPES,
        STEPS,
        *SNRS,
        NOISE_RUNS,
        NOISE_STEPS,
        NOISE_LR,
        *RAVINE_LRS,
        RAVINE_STEPS,
        0.9,
        0.99,
        0.999,
        1e-8,
        *SLIDER_LRS,
        10,
        1,
        0.05,
        5,
        2,
        PERIOD,
        SPARSE_T,
        *TINY,
        SPIKE_T,
        SPIKE_QUIET,
        SPIKE,
    )
    parts: list[Part] = []

    # 1. AdaGrad ---------------------------------------------------------------------------
    ada = ctx.memo(
        ("chapter", "adaptive", "adagrad"),
        lambda: [slope_steps(lambda p: optim.Adagrad(p, lr=LR), g, STEPS) for g in SLOPES],
    )
    rows = [
        [g, s[0], s[STEPS - 1], LR / math.sqrt(STEPS), sum(s), LR * (2 * math.sqrt(STEPS) - 1)]
        for g, s in zip(SLOPES, ada, strict=True)
    ]
    checks = [
        close(
            f"AdaGrad's step {STEPS} on the slope g = {g:g} is η/√t",
            s[STEPS - 1],
            LR / math.sqrt(STEPS),
            1e-6,
            rel=True,
        )
        for g, s in zip(SLOPES, ada, strict=True)
    ]
    checks.append(
        ck(
            f"after {STEPS} steps AdaGrad has moved at most η(2√T - 1) on every slope",
            all(sum(s) <= LR * (2 * math.sqrt(STEPS) - 1) for s in ada),
            f"{max(sum(s) for s in ada):.4g}",
            f"≤ {LR * (2 * math.sqrt(STEPS) - 1):.4g}",
        )
    )
    text1 = f"""
Gradient descent's step is the gradient times one rate for every parameter. The adaptive
methods give each parameter its own rate, read off the sizes of its own past gradients.
AdaGrad (items 55, 76, 108, 128) keeps the running sum of squares, `r ← r + g²`, per
coordinate, and steps `η g/(√r + ε)`. Two consequences follow at once from the formula, and
the table measures both with descentlab's `Adagrad` at η = {LR}.

First, scale invariance. On a constant slope g the sum after t steps is `t g²`, so the step
is `η g/(√t |g|) = η/√t`, whatever g is: a slope of 0.01 and a slope of 100 move the
parameter by the same amounts, {n(ada[0][0], 3)} then {n(ada[0][STEPS - 1], 3)} at step {STEPS}
on the first, {n(ada[2][0], 3)} then {n(ada[2][STEPS - 1], 3)} on the last. That is the point:
a coordinate whose gradients are small (a rare feature, a flat direction) gets a large rate,
one whose gradients are large gets a small one, and the units of the loss cancel.

Second, the decay. The step is `η/√t` even on a slope that never changes, so AdaGrad's
total travel after T steps is at most `η Σ 1/√t ≤ η(2√T - 1)`: at η = {LR} and T = {STEPS}
that is {n(LR * (2 * math.sqrt(STEPS) - 1), 3)}, measured {n(sum(ada[1]), 4)}. AdaGrad was
designed for convex problems with sparse gradients, where this decay is exactly the
Robbins–Monro schedule the schedules chapter derives. On a long non-convex training run the
accumulated sum only grows, the rates shrink towards zero, and learning stalls (items 56, 77,
109): a rate that was right early is far too small later."""
    parts.append(
        Part(
            "adagrad",
            "AdaGrad: each coordinate divided by its own history",
            [
                text1,
                Table(
                    [
                        "slope g",
                        "step 1",
                        f"step {STEPS}",
                        f"η/√{STEPS}",
                        f"travel in {STEPS} steps",
                        "bound η(2√T - 1)",
                    ],
                    rows,
                    f"descentlab's Adagrad on f(w) = g·w, η = {LR} (float64)",
                ),
                checks,
            ],
        )
    )

    # 2. RMSProp -----------------------------------------------------------------------------
    rms = ctx.memo(
        ("chapter", "adaptive", "rmsprop"),
        lambda: slope_steps(lambda p: optim.RMSprop(p, lr=LR, alpha=0.99), 1.0, STEPS),
    )
    first = LR / math.sqrt(1 - 0.99)
    later = LR / math.sqrt(1 - 0.99**STEPS)
    text2 = f"""
RMSProp (items 28, 57, 80, 110, 129) replaces the sum by an exponential moving average,
`v ← αv + (1 - α)g²` (torch calls the decay α, the lectures β₂ or γ), so that old gradients
fade with weight `α^k`. On a constant slope `v_t = (1 - α^t) g²` and the step is
`η/√(1 - α^t)`: it does not decay to zero but settles at η, the rate the user chose, in units
that are still invariant to the gradient's scale. The average covers about `1/(1 - α)`
steps; beyond that horizon the method has forgotten, which is what lets it keep a useful rate
through a long run and follow a gradient whose size changes.

The average starts at zero, and that has a cost the formula hides. After the first step `v`
is only `(1 - α)g²`, so the first step is `η/√(1 - α)` = {n(first, 3)} at η = {LR} and
α = 0.99: {n(first / LR, 3)} times the rate. descentlab's `RMSprop` measures {n(rms[0], 4)}. By step
{STEPS} the average has filled to `1 - α^T` of its value and the step is {n(rms[-1], 4)}
(predicted {n(later, 4)}). The large early steps are a real hazard when the parameters start
near a good point; Adam's bias correction is the fix."""
    parts.append(
        Part(
            "rmsprop",
            "RMSProp: forget, with a moving average",
            [
                text2,
                [
                    close("RMSProp's first step is η/√(1 - α)", rms[0], first, 1e-6, rel=True),
                    close(
                        f"RMSProp's step {STEPS} is η/√(1 - α^t)", rms[-1], later, 1e-6, rel=True
                    ),
                ],
            ],
        )
    )

    # 3. Adam and its bias correction ---------------------------------------------------------
    adam = slope_steps(lambda p: optim.Adam(p, lr=LR), 5.0, 3)
    raw = slope_steps(lambda p: optim.Adam(p, lr=LR, bias_correction=False), 5.0, 3)
    raw_first = LR * (1 - 0.9) / math.sqrt(1 - 0.999)
    text3 = f"""
Adam (items 29, 58, 81, 111, 130) runs both averages: `m ← β₁m + (1 - β₁)g` for the direction
(momentum, as an average rather than a sum) and `v ← β₂v + (1 - β₂)g²` for the size, and
steps `η m̂/(√v̂ + ε)`. The hats are the bias correction: both averages start at zero, so after
t steps their expected values are `(1 - β^t)` times the true moments, and dividing by that
factor removes the bias exactly when the gradient's moments are constant. Step by step:
unrolled from `m_0 = 0`, the average is a weighted sum of the gradients so far,

`m_t = (1 - β₁) Σ_(i=1..t) β₁^(t-i) g_i`,

and if every `g_i` has the same expectation `E[g]`, the expectation of the sum is
`E[g] (1 - β₁)(1 + β₁ + ... + β₁^(t-1)) = (1 - β₁^t) E[g]`, a geometric series. Dividing by
`1 - β₁^t` gives `m̂_t`, whose expectation is `E[g]` at every t; the same for `v` with β₂ and
`E[g²]`. The factor matters while `β^t` is not small, for about `1/(1 - β)` steps:
{n(1 / (1 - 0.9))} for β₁ = 0.9, {n(1 / (1 - 0.999))} for β₂ = 0.999, which is why the
correction of the denominator is the one that counts. On the slope g = 5
descentlab's `Adam` (β₁ = 0.9, β₂ = 0.999, η = {LR}) steps {n(adam[0], 4)}, {n(adam[1], 4)},
{n(adam[2], 4)}: exactly η from the first step (item 112's point).

Without the correction the first step is `η(1 - β₁)/√(1 - β₂)` = {n(raw_first, 4)}: the
numerator's average has filled to `1 - β₁` = {n(1 - 0.9, 3)} of its value, the denominator's
to `1 - β₂` = {n(1 - 0.999, 3)}, and after the square root the step is
{n(raw_first / LR, 3)} times η. descentlab's `Adam(bias_correction=False)` steps
{n(raw[0], 4)}, then {n(raw[1], 4)} and {n(raw[2], 4)}, growing while `v` is still filling. The
correction matters most in exactly the early phase where a large step can throw the
parameters far from a careful initialization."""
    parts.append(
        Part(
            "adam",
            "Adam: both averages, and the bias correction",
            [
                text3,
                [
                    close("Adam's first step is η (bias-corrected)", adam[0], LR, 1e-6, rel=True),
                    close(
                        "without the correction the first step is η(1 - β₁)/√(1 - β₂)",
                        raw[0],
                        raw_first,
                        1e-6,
                        rel=True,
                    ),
                ],
            ],
        )
    )

    # 4. under noise ---------------------------------------------------------------------------
    noisy = ctx.memo(("chapter", "adaptive", "noise"), lambda: [_noisy_adam(s) for s in SNRS])
    rows = [[s, 1 / math.sqrt(1 + 1 / s**2), m] for s, m in zip(SNRS, noisy, strict=True)]
    text4 = f"""
On a constant slope Adam's step is η whatever the gradient. With noise it is not, and this
is the least appreciated property of the adaptive methods. Let the gradient be `g = μ + σξ`
with ξ standard normal. The second-moment average tends to `E[g²] = μ² + σ²`, while the first
moment averages the noise away to μ, so the steady step is about `η μ/√(μ² + σ²)`, the
gradient's signal-to-noise ratio turned into a rate. Where the gradient is mostly signal Adam
steps η; where it is mostly noise, as near a minimum of a stochastic loss, Adam slows down by
itself: an automatic annealing that plain SGD does not have.

The table measures it: {NOISE_RUNS} runs of descentlab's `Adam` (η = {NOISE_LR}) on noisy
slopes with μ = 1, the mean step over the last {n(NOISE_STEPS // 2)} of {NOISE_STEPS} steps
in units of η.
At μ/σ = 10 the step is {n(noisy[0], 3)} of η, at 1 it is {n(noisy[1], 3)} (the formula says
`1/√2`), and at 0.1 it is {n(noisy[2], 3)}."""
    parts.append(
        Part(
            "noise",
            "Under noise: Adam's step follows the signal-to-noise ratio",
            [
                text4,
                Table(
                    ["μ/σ", "predicted step / η: 1/√(1 + σ²/μ²)", "measured step / η"],
                    rows,
                    f"descentlab's Adam on g = 1 + σξ, {NOISE_RUNS} runs, float64",
                ),
                [
                    close(f"μ/σ = {s:g}: Adam's mean step is η μ/√(μ² + σ²)", m, p, 0.03, rel=True)
                    for s, p, m in rows
                ],
            ],
        )
    )

    # 5. the ravine: traces for several (η, β₂) --------------------------------------------
    traces = ctx.memo(
        ("chapter", "adaptive", "ravine"), lambda: {lr: _ravine(lr) for lr in RAVINE_LRS}
    )
    rows = []
    for k, (_, label, hyper) in enumerate(SETTINGS):
        beta2 = hyper.get("alpha", hyper.get("betas", (0, ""))[1])
        row = [label, beta2]
        for lr in RAVINE_LRS:
            r = traces[lr][k]
            row.append("diverged" if bool(r.traj.diverged[0]) else float(r.traj.losses[0, -1]))
        rows.append(row)

    def final(lr: float, k: int) -> float:
        r = traces[lr][k]
        return math.inf if bool(r.traj.diverged[0]) else float(r.traj.losses[0, -1])

    ada_x = abs(float(traces[0.1][1].traj.paths[0, -1, 0] - traces[0.1][1].traj.paths[0, 0, 0]))
    ada_bound = 0.1 * (2 * math.sqrt(RAVINE_STEPS) - 1)
    sgd_diverges = math.isinf(final(0.5, 0))
    adaptive_finite = all(math.isfinite(final(0.5, k)) for k in range(1, len(SETTINGS)))
    adagrad_last = final(0.1, 1) > max(final(0.1, k) for k in range(2, len(SETTINGS)))
    text5 = f"""
The ravine `0.05x² + 5y²` (items 27 and 114) starts at (-10, 1): the floor along x is
{n(5 / 0.05)} times flatter than the walls across y. The table runs each method for
{RAVINE_STEPS} steps at three rates; its entries are the final loss. Three things are worth
reading in it.

At η = 0.5 plain SGD diverges: `ηL` = 5 is beyond the stable 2 on the walls. Every adaptive
method converges at that rate, because each coordinate's step is bounded by about η
whatever its curvature: the division by the gradient's size is a per-coordinate step-size
control, and that is why a rate that is reckless for SGD is safe for them (item 53).

AdaGrad is the slowest adaptive method at η = 0.1 (final loss {n(final(0.1, 1), 3)}), and the
first section tells why: its travel along the floor is bounded by `η(2√T - 1)` =
{n(ada_bound, 3)} at T = {RAVINE_STEPS}, short of the {n(10)} units to the minimum; it moved
{n(ada_x, 3)}. RMSProp and Adam keep steps of size η along the floor and arrive.

Finally β₂. With a short memory the average `v` is about the last few squared gradients,
so `g/√v` is close to the gradient's sign and the step close to η in every coordinate, even
next to the minimum: RMSProp with α = 0.9 hovers at the scale of η, and ends at
{n(final(0.1, 2), 3)} at η = 0.1 against {n(final(0.1, 3), 3)} with α = 0.99, whose longer
average still remembers the larger gradients of the way down and so takes smaller steps at
the bottom. For Adam the order of its two β₂ flips with the rate: at η = 0.1 the shorter
memory ends lower ({n(final(0.1, 4), 3)} against {n(final(0.1, 5), 3)}), at η = 0.5 higher
({n(final(0.5, 4), 3)} against {n(final(0.5, 5), 3)}). A fixed η and a fixed β₂ interact, one
reason β₂ is worth tuning when the default (0.999) misbehaves."""
    parts.append(
        Part(
            "ravine",
            "On the ravine: traces for several (η, β₂)",
            [
                text5,
                Table(
                    [
                        "method",
                        "β₂ (torch's α for RMSProp)",
                        *[f"loss after {RAVINE_STEPS} steps, η = {lr:g}" for lr in RAVINE_LRS],
                    ],
                    rows,
                    "descentlab's optimizers on the ravine from (-10, 1), float64",
                ),
                [
                    ck(
                        "at η = 0.5 SGD diverges and every adaptive method converges",
                        sgd_diverges and adaptive_finite,
                        f"SGD {final(0.5, 0):.3g}",
                        "inf and finite",
                    ),
                    ck(
                        "at η = 0.1 AdaGrad ends highest of the adaptive methods",
                        adagrad_last,
                        f"{final(0.1, 1):.3g}",
                        "above RMSProp's and Adam's",
                    ),
                    ck(
                        "RMSProp with α = 0.9 ends above α = 0.99 at η = 0.1 and 0.5 (it hovers)",
                        final(0.1, 2) > final(0.1, 3) and final(0.5, 2) > final(0.5, 3),
                        f"{final(0.1, 2):.3g}, {final(0.5, 2):.3g}",
                        f"> {final(0.1, 3):.3g}, > {final(0.5, 3):.3g}",
                    ),
                    ck(
                        "Adam's two β₂ swap places between η = 0.1 and η = 0.5",
                        final(0.1, 4) < final(0.1, 5) and final(0.5, 4) > final(0.5, 5),
                        f"{final(0.1, 4):.3g} < {final(0.1, 5):.3g}; "
                        f"{final(0.5, 4):.3g} > {final(0.5, 5):.3g}",
                        "< then >",
                    ),
                    ck(
                        "AdaGrad's travel along the floor is within η(2√T - 1)",
                        ada_x <= ada_bound,
                        f"{ada_x:.4g}",
                        f"≤ {ada_bound:.4g}",
                    ),
                ],
            ],
        )
    )

    # 5b. rare features and ε -------------------------------------------------------------------
    def sparse() -> list[float]:
        w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
        opt = optim.Adagrad([w], lr=LR)
        moved = []
        for t in range(SPARSE_T):
            before = w.detach().clone()
            w.grad = torch.tensor([1.0, 1.0 if (t + 1) % PERIOD == 0 else 0.0], dtype=torch.float64)
            opt.step()
            moved.append((before - w.detach()).abs().tolist())
        return moved

    sp = ctx.memo(("chapter", "adaptive", "sparse"), sparse)
    common_last, rare_last = sp[-1][0], sp[-1][1]
    travel = [sum(m[0] for m in sp), sum(m[1] for m in sp)]
    eps_steps = [slope_steps(lambda p: optim.Adam(p, lr=LR, eps=EPS), g, 1)[0] / LR for g in TINY]
    text_sparse = f"""
The per-coordinate division pays off most where the lectures' motivation for AdaGrad came
from: sparse features. Let one coordinate receive a gradient of 1 at every step and another,
a rare feature, the same gradient only every {PERIOD}th step. After T steps the first has
accumulated `r = T` and the second `r = T/{PERIOD}`, so when the rare gradient arrives AdaGrad
steps `η/√(T/{PERIOD})`, `√{PERIOD}` times the common coordinate's `η/√T`. Plain SGD would
treat the two gradients identically, and the rare feature would learn {PERIOD} times less.
descentlab's `Adagrad` at η = {LR}, step {SPARSE_T}: the common coordinate moves
{n(common_last, 4)}, the rare one {n(rare_last, 4)}, a ratio of {n(rare_last / common_last, 4)}
(`√{PERIOD}` = {n(math.sqrt(PERIOD), 4)}). Over the whole run the rare coordinate travels
{n(travel[1], 3)} against the common one's {n(travel[0], 3)}: from {n(SPARSE_T // PERIOD)}
gradients instead of {SPARSE_T}, {n(travel[1] / travel[0], 3)} of the distance with
{n(1 / PERIOD, 3)} of the gradients. Plain SGD's ratio would be exactly `1/period`, so
AdaGrad has multiplied the rare feature's share of the progress by
{n(travel[1] / travel[0] * PERIOD, 3)}.

The constant ε in the denominator, `η m̂/(√v̂ + ε)`, is usually called a safeguard against
dividing by zero, but it sets a scale. With the bias correction, Adam's first step on a slope
g is `η g/(|g| + ε)`: the rate η for gradients much larger than ε, and `η g/ε`, plain
gradient descent at the rate `η/ε`, for gradients much smaller. With ε = {EPS:g},
descentlab's `Adam` steps {", ".join(n(v, 3) for v in eps_steps)} times η on slopes
g = {", ".join(f"{g:g}" for g in TINY)}. A model whose gradients are tiny (a loss scaled down
by a large factor, say) is therefore trained by SGD with a huge rate, not by Adam;
raising ε, as some large models do, turns Adam smoothly towards momentum SGD. That is why
tuning ε matters in practice (item 82): it is not a guard against zero but a threshold on
the gradient's size."""
    parts.insert(
        len(parts) - 1,
        Part(
            "sparse",
            "Rare features, and what ε does",
            [
                text_sparse,
                Table(
                    ["slope g", "Adam's first step / η", "g/(|g| + ε)"],
                    [[g, v, g / (g + EPS)] for g, v in zip(TINY, eps_steps, strict=True)],
                    f"descentlab's Adam, ε = {EPS:g}, η = {LR} (float64)",
                ),
                [
                    close(
                        f"the rare coordinate's step is √{PERIOD} times the common one's",
                        rare_last / common_last,
                        math.sqrt(PERIOD),
                        1e-6,
                        rel=True,
                    ),
                    *[
                        close(
                            f"g = {g:g}: Adam's first step is η g/(|g| + ε)",
                            v,
                            g / (g + EPS),
                            1e-6,
                            rel=True,
                        )
                        for g, v in zip(TINY, eps_steps, strict=True)
                    ],
                ],
            ],
        ),
    )

    # 5c. a spike: Adam's step is bounded ---------------------------------------------------------
    def spikes() -> list[tuple[float, float]]:
        out = []
        for b2 in SPIKE_B2:
            w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
            opt = optim.Adam([w], lr=LR, betas=(0.9, b2))
            steps = []
            for t in range(SPIKE_T + 1):
                before = float(w.detach())
                w.grad = torch.full_like(w, SPIKE if t == SPIKE_T else SPIKE_QUIET)
                opt.step()
                steps.append(abs(float(w.detach()) - before))
            out.append((steps[-2], steps[-1]))
        return out

    sk = ctx.memo(("chapter", "adaptive", "spike"), spikes)
    bound = [LR * (1 - 0.9) / math.sqrt(1 - b2) for b2 in SPIKE_B2]
    text_spike = f"""
How large can one step of Adam be? Suppose the gradient has been a tiny {SPIKE_QUIET:g} for
{SPIKE_T} steps and then jumps to {SPIKE:g}, a spike {n(SPIKE / SPIKE_QUIET)} times
larger, as a bad batch or an outlier produces. Plain SGD's step jumps by the same factor.
Adam's averages have forgotten their start by then, so `m ≈ (1 - β₁)G` and `v ≈ (1 - β₂)G²`
for a spike G, and the step is

`η m̂/√v̂ ≈ η(1 - β₁)/√(1 - β₂)`,

whatever the size of the spike: Kingma and Ba's bound on Adam's step. It is η when
`1 - β₁ = √(1 - β₂)`, as for β₁ = 0.9 and β₂ = 0.99, and larger than η when β₂ is closer to
1: with the default 0.999 the bound is {n(bound[2] / LR, 3)} η. descentlab's `Adam` (η =
{LR}, β₁ = 0.9) steps {", ".join(n(s_ / LR, 3) for _, s_ in sk)} times η at the spike for
β₂ = {", ".join(f"{b:g}" for b in SPIKE_B2)}, against the bounds
{", ".join(n(b_ / LR, 3) for b_ in bound)}. Before the spike every step was η (a constant
gradient, divided by its own size). The per-coordinate normalisation is also a clip: one
wild gradient moves a parameter by a few η at most, where SGD's step grows with the spike.
With a short memory (β₂ = 0.9) the spike's step is even smaller than the steps before it,
because the spike fills the average at once; a β₂ close to 1 reacts slowly, and allows the
largest step exactly when the gradient changes suddenly."""
    parts.insert(
        len(parts) - 1,
        Part(
            "spike",
            "A gradient spike: Adam's step is bounded",
            [
                text_spike,
                Table(
                    [
                        "β₂",
                        "step before the spike / η",
                        "step at the spike / η",
                        "bound (1 - β₁)/√(1 - β₂)",
                    ],
                    [
                        [b2, q / LR, s_ / LR, b_ / LR]
                        for b2, (q, s_), b_ in zip(SPIKE_B2, sk, bound, strict=True)
                    ],
                    f"descentlab's Adam, η = {LR}, β₁ = 0.9: {SPIKE_T} gradients of "
                    f"{SPIKE_QUIET:g}, then one of {SPIKE:g}",
                ),
                [
                    close(
                        f"β₂ = {b2:g}: the step at the spike is η(1 - β₁)/√(1 - β₂)",
                        s_,
                        b_,
                        0.01,
                        rel=True,
                    )
                    for b2, (_, s_), b_ in zip(SPIKE_B2, sk, bound, strict=True)
                ],
            ],
        ),
    )

    # 6. the figure to move -------------------------------------------------------------------
    def frames() -> list:
        return [
            races("ravine", ["adagrad", "rmsprop", "adam"], lr=lr, steps=RAVINE_STEPS)
            for lr in SLIDER_LRS
        ]

    slider = ctx.memo(("chapter", "adaptive", "slider"), frames)
    figs = [
        FG.comparison_figure(
            "ravine",
            rs,
            title=f"Ravine, η = {lr:g}: AdaGrad, RMSProp, Adam for {RAVINE_STEPS} steps",
        )
        for lr, rs in zip(SLIDER_LRS, slider, strict=True)
    ]
    first_steps = [
        abs(float(rs[2].traj.paths[0, 1, 1] - rs[2].traj.paths[0, 0, 1])) for rs in slider
    ]
    text6 = f"""
Move η. Adam's first step is η along each axis at once, a diagonal move regardless of the
ravine's shape (measured at every frame: {", ".join(n(v, 3) for v in first_steps)}), which is
why adaptive paths start along the diagonal. At small η all three crawl; AdaGrad falls
behind first, as its steps shrink; at large η RMSProp and Adam hover across the floor at a
scale set by η, because near the minimum their divided step no longer shrinks with the
gradient. The adaptive methods do not remove the need to choose η; they change what it
means, from a multiple of the gradient to a distance per step."""
    mv = Movable(
        "η",
        [f"{v:g}" for v in SLIDER_LRS],
        figs,
        SLIDER_LRS.index(0.1),
        "Move η: AdaGrad, RMSProp and Adam on the ravine, paths and losses.",
        playground_url(
            Play(
                "ravine",
                {name: {"lr": 0.1} for name in ("adagrad", "rmsprop", "adam")},
                steps=RAVINE_STEPS,
            )
        ),
    )
    parts.append(
        Part(
            "move",
            "Move η: a rate becomes a distance",
            [
                text6,
                mv,
                [
                    close(f"η = {lr:g}: Adam's first step along y is η", s, lr, 1e-6, rel=True)
                    for lr, s in zip(SLIDER_LRS, first_steps, strict=True)
                ],
            ],
        )
    )
    page = ChapterPage(
        "Adaptive rates in depth: AdaGrad → RMSProp → Adam",
        "deep-adaptive.html",
        "What dividing each coordinate's step by the size of its gradients does: scale "
        "invariance and a decay for AdaGrad, a forgetting average for RMSProp, both averages "
        "and their bias correction for Adam, and under noise a step that follows the "
        "signal-to-noise ratio.",
        (
            27,
            28,
            29,
            53,
            55,
            56,
            57,
            58,
            76,
            77,
            80,
            81,
            82,
            107,
            108,
            109,
            110,
            111,
            112,
            128,
            129,
            130,
        ),
        parts,
    )
    keep = """
What to keep. AdaGrad divides by the root of a sum and its rate decays as `1/√t`; RMSProp
divides by the root of an average and keeps its rate; Adam adds momentum's average and
corrects both averages' start from zero. All three make a step's size independent of the
gradient's units, bound each coordinate's step by about η, and under noise shrink the step
by the signal-to-noise ratio. What they do not do is remove the rate: η becomes a distance
per step instead of a multiple of the gradient, ε sets the gradient size below which the
division stops, and the bias correction is what makes the first steps of a moving average
trustworthy. A rare feature gets a rate `√period` times larger than a common one under
AdaGrad, which is the reason the family was invented, and the reason AdaGrad itself decays
too fast on the long, non-convex runs where RMSProp and Adam replaced it."""
    return finish(page, n, keep)
