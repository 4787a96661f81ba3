"""The adaptive family in depth, AdaGrad → RMSProp → Adam: what dividing by a gradient's size
does on a constant slope, under noise, on rare features, at a spike and on the ravine;
descentlab's Adagrad, RMSprop and Adam against the float64 loops of the papers, Adam from
scratch, and a real training run on MNIST-1D."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.integrate
import torch

from descentlab import optim
from descentlab.book import reference as ref
from descentlab.book.chapters import _common as kit
from descentlab.book.chapters import practice
from descentlab.book.checks import ck, close, said
from descentlab.book.facts import Formula, word
from descentlab.book.model import Context
from descentlab.book.render.chapter import Part, Table
from descentlab.book.render.live import Live, Probe, Slider
from descentlab.problems import landscapes as L
from descentlab.problems.trajectories import races

__all__ = ["CHAPTER"]

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
#: the descentlab defaults the float64 loops take (AdaGrad's ε, RMSProp's and Adam's)
EPS_ADAGRAD, EPS = 1e-10, 1e-8
#: a rare feature: its gradient arrives every PERIOD steps, for SPARSE_T steps
PERIOD, SPARSE_T = 10, 300
#: the tiny slopes Adam's ε is compared with
TINY = (1e-10, 1e-8, 1e-6)
#: a spike: SPIKE_T gradients of SPIKE_QUIET, then one of SPIKE, for each β₂
SPIKE_T, SPIKE_QUIET, SPIKE, SPIKE_B2 = 5000, 1e-3, 1e3, (0.9, 0.99, 0.999)
#: the live figure's probes: (η, β₂)
LIVE_PROBES = ((0.01, 0.99), (0.1, 0.9), (0.5, 0.999))
#: the training run on MNIST-1D
TRAIN_B, TRAIN_STEPS = 64, 400
TRAIN = (
    ("sgd", "SGD", 0.1),
    ("adagrad", "AdaGrad", 0.03),
    ("rmsprop", "RMSProp", 0.003),
    ("adam", "Adam", 0.003),
)


# ------------------------------------------------------------------------------------------
# the update rules the sections show, one SymPy expression each: typeset on the page
# (latex) and evaluated step by step against descentlab's optimizers, so the rule the reader
# sees is the one checked

ADAGRAD_R = Formula("r + g**2")
ADAGRAD_W = Formula("w - eta*g/(sqrt(r) + epsilon)")
RMSPROP_V = Formula("alpha*v + (1 - alpha)*g**2")
ADAM_M = Formula("beta_1*m + (1 - beta_1)*g")
ADAM_V = Formula("beta_2*v + (1 - beta_2)*g**2")


def _rule_steps(g: float, steps: int, accumulate: Any, step: Any) -> list[float]:
    """The sizes of the steps on the slope ``f(w) = g w`` from 0 of the rule the page shows:
    ``accumulate(state, g)`` the state's update (the Formulas), ``step(state, g, t)`` the step."""
    state: dict[str, float] = {"r": 0.0, "v": 0.0, "m": 0.0}
    out = []
    for t in range(1, steps + 1):
        state.update(accumulate(state, g))
        out.append(abs(step(state, g, t)))
    return out


# ------------------------------------------------------------------------------------------
# 1. AdaGrad

ADAGRAD = kit.Prose(
    """
Gradient descent's step is the gradient times one rate for every parameter. The adaptive
methods give each parameter its own rate, read off the sizes of its own past gradients.
AdaGrad (items 55, 76, 108, 128) keeps the running sum of squares per coordinate and divides
by its root:

$$r \\leftarrow {{rule_r}}, \\qquad w \\leftarrow {{rule_w}}.$$

Two consequences follow at once from the formula, and the table measures both with
descentlab's `Adagrad` at η = {{lr}}.

First, scale invariance. On a constant slope g the sum after t steps is
${{f:adagrad_sum_slope}}$, so the step is ${{f:adagrad_step_slope}} = {{f:adagrad_step}}$,
whatever g is: a slope of 0.01 and a slope of 100
move the parameter by the same amounts, {{a0}} then {{a0T}} at step {{steps}} on the first,
{{a2}} then {{a2T}} on the last. That is the point: a coordinate whose gradients are small (a
rare feature, a flat direction) gets a large rate, one whose gradients are large gets a small
one, and the units of the loss cancel.

Second, the decay. The step is ${{f:adagrad_step}}$ even on a slope that never changes, so
AdaGrad's total travel after T steps is at most

$$\\eta \\sum_{t=1}^{T} \\frac{1}{\\sqrt t} \\le
\\eta \\Big(1 + \\int_1^T \\frac{dt}{\\sqrt t}\\Big) = {{f:adagrad_travel}}:$$

at η = {{lr}} and T = {{steps}} that is {{bound}}, measured {{travel}}. AdaGrad was designed
for convex problems with sparse gradients, where this decay is exactly the Robbins–Monro
schedule the schedules chapter derives. On a long non-convex training run the accumulated sum
only grows, the rates shrink towards zero, and learning stalls (items 56, 77, 109): a rate
that was right early is far too small later.""",
    a0="AdaGrad's first step on g = 0.01, against η",
    a0T="its last step, against η/√t",
    a2="AdaGrad's first step on g = 100, against η",
    a2T="its last step, against η/√t",
    bound="η(2√T - 1), against the integral by quadrature",
    travel="the measured travel on g = 1, against η Σ 1/√t",
)


def _travel_bound(lr: float, steps: int) -> float:
    """η(1 + ∫_1^T dt/√t) by quadrature: the twin of η(2√T - 1)."""
    return lr * (1 + scipy.integrate.quad(lambda t: t**-0.5, 1, steps)[0])


def _adagrad(ctx: Context, n: kit.Numbers) -> Part:
    ada = ctx.memo(("chapter", "adaptive", "adagrad"), _adagrad_runs)
    last, bound = LR / math.sqrt(STEPS), LR * (2 * math.sqrt(STEPS) - 1)
    text = ADAGRAD.fill(
        n,
        rule_r=ADAGRAD_R.tex,
        rule_w=ADAGRAD_W.tex,
        lr=f"{LR:g}",
        steps=str(STEPS),
        a0=(ada[0][0], LR, 1e-6),
        a0T=(ada[0][-1], last, 1e-6),
        a2=(ada[2][0], LR, 1e-6),
        a2T=(ada[2][-1], last, 1e-6),
        bound=(bound, _travel_bound(LR, STEPS)),
        travel=(sum(ada[1]), LR * math.fsum(t**-0.5 for t in range(1, STEPS + 1)), 1e-6, 4),
    )
    rows = [[g, s[0], s[-1], last, sum(s), bound] for g, s in zip(SLOPES, ada, strict=True)]
    checks = [
        close(f"AdaGrad's step {STEPS} on the slope g = {g:g} is η/√t", s[-1], last, 1e-6)
        for g, s in zip(SLOPES, ada, strict=True)
    ]
    rule = [
        _rule_steps(
            g, STEPS, lambda st, g: {"r": ADAGRAD_R(r=st["r"], g=g)},
            lambda st, g, t: ADAGRAD_W(w=0.0, eta=LR, g=g, r=st["r"], epsilon=EPS_ADAGRAD),
        )
        for g in SLOPES
    ]  # fmt: skip
    flat, runs = [x for r in rule for x in r], [x for s in ada for x in s]
    checks.append(kit.rule_check("AdaGrad's two updates as the page shows them", flat, runs))
    far = max(sum(s) for s in ada)
    checks.append(ck(f"after {STEPS} steps AdaGrad has moved at most η(2√T - 1) on every slope",
                     far <= bound, f"{far:.4g}", f"≤ {bound:.4g}"))  # fmt: skip
    table = Table(
        ["slope g", "step 1", f"step {STEPS}", f"η/√{STEPS}", f"travel in {STEPS} steps",
         "bound η(2√T - 1)"],
        rows,
        f"descentlab's Adagrad on f(w) = g·w, η = {LR} (float64)",
    )  # fmt: skip
    title = "AdaGrad: each coordinate divided by its own history"
    return Part("adagrad", title, [text, table, checks])


def _adagrad_runs() -> list[list[float]]:
    return [kit.slope_steps(lambda p: optim.Adagrad(p, lr=LR), g, STEPS) for g in SLOPES]


# ------------------------------------------------------------------------------------------
# 2. RMSProp

RMSPROP = kit.Prose(
    """
RMSProp (items 28, 57, 80, 110, 129) replaces the sum by an exponential moving average,
$v \\leftarrow {{rule_v}}$ (torch calls the decay α, the lectures β₂ or γ), so
that old gradients fade with weight $\\alpha^k$. On a constant slope ${{f:rmsprop_v_slope}}$
and the step is ${{f:rmsprop_step_slope}}$: it does not decay to zero but settles at η, the
rate the user chose, in units that are still invariant to the gradient's scale. The average
covers about ${{f:rmsprop_horizon}}$ steps; beyond that horizon the method has forgotten, which is
what lets it keep a useful rate through a long run and follow a gradient whose size changes.

The average starts at zero, and that has a cost the formula hides. After the first step v is
only ${{f:rmsprop_first_v}}$, so the first step is
${{f:rmsprop_first_step}}$ = {{first}} at η = {{lr}}
and α = 0.99: {{ratio}} times the rate. descentlab's `RMSprop` measures {{m0}}. By step
{{steps}} the average has filled to ${{f:rmsprop_filled}}$ of its value and the step is {{mT}}
(predicted {{later}}). The large early steps are a real hazard when the parameters start near
a good point; Adam's bias correction is the fix.""",
    first="η/√(1 - α), against descentlab's first step",
    ratio="the first step over η, against the measured one",
    m0="descentlab's first step, against η/√(1 - α)",
    mT="descentlab's last step, against η/√(1 - α^t)",
    later="η/√(1 - α^T), against the average's weights summed term by term",
)


def _rmsprop(ctx: Context, n: kit.Numbers) -> Part:
    rms = ctx.memo(
        ("chapter", "adaptive", "rmsprop"),
        lambda: kit.slope_steps(lambda p: optim.RMSprop(p, lr=LR, alpha=0.99), 1.0, STEPS),
    )
    first, later = LR / math.sqrt(1 - 0.99), LR / math.sqrt(1 - 0.99**STEPS)
    weights = math.fsum(0.01 * 0.99**k for k in range(STEPS))
    text = RMSPROP.fill(
        n,
        rule_v=RMSPROP_V.tex,
        lr=f"{LR:g}",
        steps=str(STEPS),
        first=(first, rms[0], 1e-6),
        ratio=(first / LR, rms[0] / LR, 1e-6),
        m0=(rms[0], first, 1e-6, 4),
        mT=(rms[-1], later, 1e-6, 4),
        later=(later, LR / math.sqrt(weights), 1e-9, 4),
    )
    rule = _rule_steps(
        1.0, STEPS, lambda st, g: {"v": RMSPROP_V(alpha=0.99, v=st["v"], g=g)},
        lambda st, g, t: LR * g / (math.sqrt(st["v"]) + EPS),
    )  # fmt: skip
    checks = [
        kit.rule_check("RMSProp's average as the page shows it", rule, rms),
        close("RMSProp's first step is η/√(1 - α)", rms[0], first, 1e-6),
        close(f"RMSProp's step {STEPS} is η/√(1 - α^t)", rms[-1], later, 1e-6),
    ]
    return Part("rmsprop", "RMSProp: forget, with a moving average", [text, checks])


# ------------------------------------------------------------------------------------------
# 3. Adam and its bias correction

ADAM = kit.Prose(
    """
Adam (items 29, 58, 81, 111, 130) runs both averages, $m \\leftarrow {{rule_m}}$
for the direction (momentum, as an average rather than a sum) and
$v \\leftarrow {{rule_v}}$ for the size, and steps
${{f:adam_step}}$. The hats are the bias correction: both averages
start
at zero, so after t steps their expected values are $({{f:bias_factor}})$ times the true moments,
and dividing by that factor removes the bias exactly when the gradient's moments are constant.
Step by step: unrolled from $m_0 = 0$, the average is a weighted sum of the gradients so far,

$$m_t = {{f:adam_sum}},$$

and if every $g_i$ has the same expectation $\\mathbb{E}[g]$, the expectation of the sum is a
geometric series,

$$\\mathbb{E}[m_t] = \\mathbb{E}[g]\\,{{f:adam_geometric}}
= \\big({{f:adam_bias}}\\big)\\,\\mathbb{E}[g].$$

Dividing by ${{f:adam_bias}}$ gives $\\hat m_t$, whose expectation is $\\mathbb{E}[g]$ at every t;
the
same for v with β₂ and $\\mathbb{E}[g^2]$. The factor matters while $\\beta^t$ is not small, for
about ${{f:horizon}}$ steps: {{h1}} for β₁ = 0.9, {{h2}} for β₂ = 0.999, which is why the
correction of the denominator is the one that counts. On the slope g = 5 descentlab's `Adam`
(β₁ = 0.9, β₂ = 0.999, η = {{lr}}) steps {{a0}}, {{a1}}, {{a2}}: exactly η from the first step
(item 112's point).

Without the correction the first step is ${{f:adam_raw_first}}$ = {{raw}}: the
numerator's average has filled to ${{f:adam_filled_1}}$ of its value, the denominator's to
${{f:adam_filled_2}}$, and after the square root the step is {{rawratio}} times η. descentlab's
`Adam(bias_correction=False)` steps {{r0}}, then {{r1}} and {{r2}}, {{growing}} while v is still
filling. The correction matters most in exactly the early phase where a large step can throw
the parameters far from a careful initialization.""",
    h1="1/(1 - β₁), against the series summed term by term",
    h2="1/(1 - β₂), against the series summed term by term",
    a0="Adam's first step on g = 5, against η",
    a1="its second step, against η",
    a2="its third step, against η",
    raw="η(1 - β₁)/√(1 - β₂), against descentlab without the correction",
    rawratio="the uncorrected first step over η, against the paper's loop",
    r0="uncorrected step 1, against the paper's float64 loop",
    r1="uncorrected step 2, against the loop",
    r2="uncorrected step 3, against the loop",
)


def _adam(ctx: Context, n: kit.Numbers) -> Part:
    adam = kit.slope_steps(lambda p: optim.Adam(p, lr=LR), 5.0, 3)
    raw = kit.slope_steps(lambda p: optim.Adam(p, lr=LR, bias_correction=False), 5.0, 3)
    path = ref.adam(np.zeros(1), lambda w: np.full(1, 5.0), LR, 0.9, 0.999, EPS, 3,
                    bias_correction=False)  # fmt: skip
    loop = np.abs(np.diff(path[:, 0]))
    raw_first = LR * (1 - 0.9) / math.sqrt(1 - 0.999)
    text = ADAM.fill(
        n,
        rule_m=ADAM_M.tex,
        rule_v=ADAM_V.tex,
        lr=f"{LR:g}",
        h1=(1 / (1 - 0.9), math.fsum(0.9**k for k in range(2000))),
        h2=(1 / (1 - 0.999), math.fsum(0.999**k for k in range(60000)), 1e-9, 4),
        a0=(adam[0], LR, 1e-6, 4),
        a1=(adam[1], LR, 1e-6, 4),
        a2=(adam[2], LR, 1e-6, 4),
        raw=(raw_first, raw[0], 1e-6, 4),
        rawratio=(raw_first / LR, loop[0] / LR, 1e-6),
        r0=(raw[0], loop[0], 1e-9, 4),
        r1=(raw[1], loop[1], 1e-9, 4),
        r2=(raw[2], loop[2], 1e-9, 4),
        growing=word(raw[2], raw[0], "growing"),
    )

    def moments(st: dict[str, float], g: float) -> dict[str, float]:
        return {"m": ADAM_M(beta_1=0.9, m=st["m"], g=g), "v": ADAM_V(beta_2=0.999, v=st["v"], g=g)}

    def corrected(st: dict[str, float], g: float, t: int) -> float:
        m_hat, v_hat = st["m"] / (1 - 0.9**t), st["v"] / (1 - 0.999**t)
        return LR * m_hat / (math.sqrt(v_hat) + EPS)

    rule_raw = _rule_steps(
        5.0, 3, moments, lambda st, g, t: LR * st["m"] / (math.sqrt(st["v"]) + EPS)
    )
    checks = [
        kit.rule_check(
            "Adam's two averages as the page shows them, bias-corrected",
            _rule_steps(5.0, 3, moments, corrected),
            adam,
        ),
        kit.rule_check("the same, uncorrected", rule_raw, raw),
        close("Adam's first step is η (bias-corrected)", adam[0], LR, 1e-6),
        close(
            "without the correction the first step is η(1 - β₁)/√(1 - β₂)", raw[0], raw_first, 1e-6
        ),
    ]
    return Part("adam", "Adam: both averages, and the bias correction", [text, checks])


# ------------------------------------------------------------------------------------------
# 4. under noise

NOISE = kit.Prose(
    """
On a constant slope Adam's step is η whatever the gradient. With noise it is not, and this is
the least appreciated property of the adaptive methods. Let the gradient be $g = \\mu + \\sigma\\xi$
with ξ standard normal. The second-moment average tends to ${{f:noisy_second}}$,
while the first moment averages the noise away to μ, so the steady step is about

$${{f:noisy_step}},$$

the gradient's signal-to-noise ratio turned into a rate. Where the gradient is mostly signal
Adam steps η; where it is mostly noise, as near a minimum of a stochastic loss, Adam slows down
by itself: an automatic annealing that plain SGD does not have.

The table measures it: {{runs}} runs of descentlab's `Adam` (η = {{lr}}) on noisy slopes with
μ = 1, the mean step over the last {{half}} of {{steps}} steps in units of η. At μ/σ = 10 the
step is {{s10}} of η, at 1 it is {{s1}} (the formula says ${{f:noisy_even}}$), and at 0.1 it is
{{s01}}.""",
    s10="μ/σ = 10: Adam's mean step over η, against μ/√(μ² + σ²)",
    s1="μ/σ = 1: Adam's mean step over η, against μ/√(μ² + σ²)",
    s01="μ/σ = 0.1: Adam's mean step over η, against μ/√(μ² + σ²)",
)


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


def _noise(ctx: Context, n: kit.Numbers) -> Part:
    noisy = ctx.memo(("chapter", "adaptive", "noise"), lambda: [_noisy_adam(s) for s in SNRS])
    pred = [1 / math.sqrt(1 + 1 / s**2) for s in SNRS]
    text = NOISE.fill(
        n,
        runs=str(NOISE_RUNS),
        lr=f"{NOISE_LR:g}",
        half=str(NOISE_STEPS // 2),
        steps=str(NOISE_STEPS),
        s10=(noisy[0], pred[0], 0.03),
        s1=(noisy[1], pred[1], 0.03),
        s01=(noisy[2], pred[2], 0.03),
    )
    table = Table(
        ["μ/σ", "predicted step / η: 1/√(1 + σ²/μ²)", "measured step / η"],
        [[s, p, m] for s, p, m in zip(SNRS, pred, noisy, strict=True)],
        f"descentlab's Adam on g = 1 + σξ, {NOISE_RUNS} runs, float64",
    )
    title = "Under noise: Adam's step follows the signal-to-noise ratio"
    return Part("noise", title, [text, table, []])


# ------------------------------------------------------------------------------------------
# 5. the ravine: traces for several (η, β₂), against the papers' loops

RAVINE = kit.Prose(
    """
The ravine $0.05 x^2 + 5 y^2$ (items 27 and 114) starts at (-10, 1): the floor along x is
{{flatter}} times flatter than the walls across y. The table runs each method for {{steps}}
steps at three rates; its entries are the final loss, each also computed by the float64 loop
of the method's paper (`descentlab.book.reference`) as a second route. Three things are worth
reading in it.

At η = 0.5 plain SGD diverges: ηL = 5 is beyond the stable 2 on the walls. Every adaptive
method converges at that rate, because each coordinate's step is bounded by about η whatever
its curvature: the division by the gradient's size is a per-coordinate step-size control, and
that is why a rate that is reckless for SGD is safe for them (item 53).

AdaGrad is the slowest adaptive method at η = 0.1 (final loss {{ada}}), and the first section
tells why: its travel along the floor is bounded by ${{f:adagrad_travel}}$ = {{bound}} at
T = {{steps}}, short of the 10 units to the minimum; it moved {{moved}}. RMSProp and Adam keep
steps of size η along the floor and arrive.

Finally β₂. With a short memory the average v is about the last few squared gradients, so
$g/\\sqrt v$ is close to the gradient's sign and the step close to η in every coordinate, even
next to the minimum: RMSProp with α = 0.9 hovers at the scale of η, and ends at {{r09}} at
η = 0.1 against {{r099}} with α = 0.99, whose longer average still remembers the larger
gradients of the way down and so takes smaller steps at the bottom. For Adam the order of its
two β₂ flips with the rate: at η = 0.1 the shorter memory ends {{a_word}} ({{a099}} against
{{a0999}}), at η = 0.5 {{b_word}} ({{b099}} against {{b0999}}). A fixed η and a fixed β₂ interact,
one reason β₂ is worth tuning when the default (0.999) misbehaves.""",
    flatter="the walls' curvature over the floor's, against autograd's Hessian",
    ada="η = 0.1, AdaGrad: the final loss, against the paper's float64 loop",
    r09="η = 0.1, RMSProp α = 0.9: the final loss, against the paper's loop",
    r099="η = 0.1, RMSProp α = 0.99: the final loss, against the paper's loop",
    a099="η = 0.1, Adam β₂ = 0.99: the final loss, against the paper's loop",
    a0999="η = 0.1, Adam β₂ = 0.999: the final loss, against the paper's loop",
    b099="η = 0.5, Adam β₂ = 0.99: the final loss, against the paper's loop",
    b0999="η = 0.5, Adam β₂ = 0.999: the final loss, against the paper's loop",
    bound="η(2√T - 1), against the integral",
    moved="AdaGrad's travel along x, against the paper's loop",
)


def _ravine_runs(lr: float) -> list:
    out = []
    for name, _, hyper in SETTINGS:
        out += races("ravine", [name], lr=lr, steps=RAVINE_STEPS, hyper={name: hyper})
    return out


def _paper_loop(k: int, lr: float) -> np.ndarray:
    """Setting ``k``'s path on the ravine by the float64 loop of its paper."""
    grad, w0 = (lambda w: np.array([0.1 * w[0], 10.0 * w[1]])), np.array([-10.0, 1.0])
    name, _, hyper = SETTINGS[k]
    if name == "sgd":
        return ref.sgd(w0, grad, lr, RAVINE_STEPS)
    if name == "adagrad":
        return ref.adagrad(w0, grad, lr, EPS_ADAGRAD, RAVINE_STEPS)
    if name == "rmsprop":
        return ref.rmsprop(w0, grad, lr, hyper["alpha"], EPS, RAVINE_STEPS)
    return ref.adam(w0, grad, lr, *hyper["betas"], EPS, RAVINE_STEPS)


def _ravine_loss(w: np.ndarray) -> float:
    return float(0.05 * w[0] ** 2 + 5 * w[1] ** 2)


def _ravine(ctx: Context, n: kit.Numbers) -> Part:
    traces = ctx.memo(("chapter", "adaptive", "ravine"), _ravine_traces)

    def fin(lr: float, k: int) -> float:
        r = traces[lr][k]
        return math.inf if bool(r.traj.diverged[0]) else float(r.traj.losses[0, -1])

    def twin(lr: float, k: int) -> tuple[float, float, float]:
        return fin(lr, k), _ravine_loss(_paper_loop(k, lr)[-1]), 1e-6

    origin = torch.zeros(2, dtype=torch.float64)
    hess = torch.autograd.functional.hessian(lambda x: L.get("ravine")(x), origin)
    bound = 0.1 * (2 * math.sqrt(RAVINE_STEPS) - 1)
    moved = abs(float(traces[0.1][1].traj.paths[0, -1, 0] - traces[0.1][1].traj.paths[0, 0, 0]))
    text = RAVINE.fill(
        n,
        steps=str(RAVINE_STEPS),
        a_word=word(fin(0.1, 4), fin(0.1, 5), "higher"),
        b_word=word(fin(0.5, 4), fin(0.5, 5), "higher"),
        flatter=(5 / 0.05, float(hess[1, 1] / hess[0, 0])),
        ada=twin(0.1, 1),
        r09=twin(0.1, 2),
        r099=twin(0.1, 3),
        a099=twin(0.1, 4),
        a0999=twin(0.1, 5),
        b099=twin(0.5, 4),
        b0999=twin(0.5, 5),
        bound=(bound, _travel_bound(0.1, RAVINE_STEPS)),
        moved=(moved, abs(_paper_loop(1, 0.1)[-1, 0] + 10.0), 1e-6),
    )
    rows = [
        [label, hyper.get("alpha", hyper.get("betas", (0, ""))[1]),
         *["diverged" if math.isinf(fin(lr, k)) else fin(lr, k) for lr in RAVINE_LRS]]
        for k, (_, label, hyper) in enumerate(SETTINGS)
    ]  # fmt: skip
    table = Table(
        ["method", "β₂ (torch's α for RMSProp)",
         *[f"loss after {RAVINE_STEPS} steps, η = {lr:g}" for lr in RAVINE_LRS]],
        rows,
        "descentlab's optimizers on the ravine from (-10, 1), float64",
    )  # fmt: skip
    title = "On the ravine: traces for several (η, β₂)"
    last = [_last_steps(traces[0.1][k]) for k in (2, 3)]
    smaller = said(text, "takes smaller steps at the bottom", last[1] < last[0],
                   f"{last[1]:.3g} against {last[0]:.3g}", "smaller")  # fmt: skip
    return Part("ravine", title, [text, table, [*_ravine_checks(fin, moved, bound), smaller]])


def _last_steps(run) -> float:
    """The mean length of a ravine run's steps over the last tenth of the run."""
    path = np.asarray(run.traj.paths[0], dtype=float)
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    return float(steps[-len(steps) // 10 :].mean())


def _ravine_traces() -> dict[float, list]:
    return {lr: _ravine_runs(lr) for lr in RAVINE_LRS}


def _ravine_checks(fin, moved: float, bound: float) -> list:
    adaptive = range(1, len(SETTINGS))
    return [
        ck("at η = 0.5 SGD diverges and every adaptive method converges",
           math.isinf(fin(0.5, 0)) and all(math.isfinite(fin(0.5, k)) for k in adaptive),
           f"SGD {fin(0.5, 0):.3g}", "inf and finite"),
        ck("at η = 0.1 AdaGrad ends highest of the adaptive methods",
           fin(0.1, 1) > max(fin(0.1, k) for k in range(2, len(SETTINGS))), f"{fin(0.1, 1):.3g}",
           "above RMSProp's and Adam's"),
        ck("RMSProp with α = 0.9 ends above α = 0.99 at η = 0.1 and 0.5 (it hovers)",
           fin(0.1, 2) > fin(0.1, 3) and fin(0.5, 2) > fin(0.5, 3),
           f"{fin(0.1, 2):.3g}, {fin(0.5, 2):.3g}", f"> {fin(0.1, 3):.3g}, > {fin(0.5, 3):.3g}"),
        ck("Adam's two β₂ swap places between η = 0.1 and η = 0.5",
           fin(0.1, 4) < fin(0.1, 5) and fin(0.5, 4) > fin(0.5, 5),
           f"{fin(0.1, 4):.3g} < {fin(0.1, 5):.3g}; {fin(0.5, 4):.3g} > {fin(0.5, 5):.3g}",
           "< then >"),
        ck("AdaGrad's travel along the floor is within η(2√T - 1)", moved <= bound,
           f"{moved:.4g}", f"≤ {bound:.4g}"),
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------
# 6. rare features and ε

SPARSE = kit.Prose(
    """
The per-coordinate division pays off most where the lectures' motivation for AdaGrad came
from: sparse features. Let one coordinate receive a gradient of 1 at every step and another,
a rare feature, the same gradient only every {{period}}th step. After T steps the first has
accumulated r = T and the second r = T/{{period}}, so when the rare gradient arrives AdaGrad
steps ${{f:adagrad_rare}}$, ${{f:adagrad_rare_gain}}$ times the common coordinate's
${{f:adagrad_step_T}}$ (P the
period). Plain SGD would treat the two gradients identically, and the rare feature would learn
P times less. descentlab's `Adagrad` at η = {{lr}}, step {{T}}: the common coordinate moves
{{common}}, the rare one {{rare}}, a ratio of {{ratio}} (${{f:adagrad_rare_gain}}$ = {{sqrtp}}).
Over the
whole run the rare coordinate travels {{rtravel}} against the common one's {{ctravel}}: from
{{arrivals}} gradients instead of {{T}}, {{share}} of the distance with {{fraction}} of the
gradients. Plain SGD's ratio would be exactly ${{f:sgd_rare_share}}$, so AdaGrad has multiplied the
rare
feature's share of the progress by {{gain}}.

The constant ε in the denominator, ${{f:adam_step}}$, is usually called
a safeguard against dividing by zero, but it sets a scale. With the bias correction, Adam's
first step on a slope g is ${{f:adam_first_eps}}$: the rate η for gradients much larger than
ε, and ${{f:adam_tiny}}$, plain gradient descent at the rate η/ε, for gradients much smaller.
With ε = {{eps}}, descentlab's `Adam` steps {{e0}}, {{e1}} and {{e2}} times η on slopes
g = {{tiny}}. A model whose gradients are tiny (a loss scaled down by a large factor, say) is
therefore trained by SGD with a huge rate, not by Adam; raising ε, as some large models do,
turns Adam smoothly towards momentum SGD. That is why tuning ε matters in practice (item 82):
it is not a guard against zero but a threshold on the gradient's size.""",
    common="the common coordinate's last step, against η/√T",
    rare="the rare one's, against η/√(T/P)",
    ratio="their ratio, against √P",
    sqrtp="√P, against ∫ dx/(2√x) by quadrature",
    arrivals="the rare gradients, against their count in the run",
    rtravel="the rare coordinate's travel, against η Σ 1/√k",
    ctravel="the common one's, against η Σ 1/√t",
    share="the share of the distance, against the sums'",
    fraction="the rare gradients' fraction, against their count over T",
    gain="the gain over SGD's 1/P, against the sums'",
    e0="g = 1e-10: Adam's first step over η, against g/(|g| + ε)",
    e1="g = 1e-08: Adam's first step over η, against g/(|g| + ε)",
    e2="g = 1e-06: Adam's first step over η, against g/(|g| + ε)",
)


def _sparse_runs() -> list[list[float]]:
    w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt, moved = optim.Adagrad([w], lr=LR), []
    for t in range(SPARSE_T):
        before = w.detach().clone()
        w.grad = torch.tensor([1.0, 1.0 if (t + 1) % PERIOD == 0 else 0.0], dtype=torch.float64)
        opt.step()
        moved.append((before - w.detach()).abs().tolist())
    return moved


def _sparse(ctx: Context, n: kit.Numbers) -> Part:
    sp = ctx.memo(("chapter", "adaptive", "sparse"), _sparse_runs)
    common, rare = sp[-1]
    travel = [sum(m[0] for m in sp), sum(m[1] for m in sp)]
    k = SPARSE_T // PERIOD
    exact = [LR * math.fsum(t**-0.5 for t in range(1, SPARSE_T + 1)),
             LR * math.fsum(j**-0.5 for j in range(1, k + 1))]  # fmt: skip
    eps = [kit.slope_steps(lambda p: optim.Adam(p, lr=LR, eps=EPS), g, 1)[0] / LR for g in TINY]
    text = SPARSE.fill(
        n,
        period=str(PERIOD),
        lr=f"{LR:g}",
        T=str(SPARSE_T),
        eps=f"{EPS:g}",
        tiny=", ".join(f"{g:g}" for g in TINY),
        common=(common, LR / math.sqrt(SPARSE_T), 1e-6, 4),
        rare=(rare, LR / math.sqrt(k), 1e-6, 4),
        ratio=(rare / common, math.sqrt(PERIOD), 1e-6, 4),
        sqrtp=(
            math.sqrt(PERIOD),
            scipy.integrate.quad(lambda x: 0.5 / x**0.5, 0, PERIOD)[0],
            1e-7,
            4,
        ),
        arrivals=(k, sum((t + 1) % PERIOD == 0 for t in range(SPARSE_T)), 0),
        rtravel=(travel[1], exact[1], 1e-6),
        ctravel=(travel[0], exact[0], 1e-6),
        share=(travel[1] / travel[0], exact[1] / exact[0], 1e-6),
        fraction=(1 / PERIOD, k / SPARSE_T, 1e-12),
        gain=(travel[1] / travel[0] * PERIOD, exact[1] / exact[0] * PERIOD, 1e-6),
        **{
            f"e{i}": (v, g / (g + EPS), 1e-6)
            for i, (g, v) in enumerate(zip(TINY, eps, strict=True))
        },
    )
    table = Table(
        ["slope g", "Adam's first step / η", "g/(|g| + ε)"],
        [[g, v, g / (g + EPS)] for g, v in zip(TINY, eps, strict=True)],
        f"descentlab's Adam, ε = {EPS:g}, η = {LR} (float64)",
    )
    return Part("sparse", "Rare features, and what ε does", [text, table, []])


# ------------------------------------------------------------------------------------------
# 7. a spike: Adam's step is bounded

SPIKE_TEXT = kit.Prose(
    """
How large can one step of Adam be? Suppose the gradient has been a tiny {{quiet}} for {{T}}
steps and then jumps to {{spike}}, as a bad batch or an outlier produces. Plain SGD's step
jumps by the same factor. Adam's averages have forgotten their start by then, so
$m \\approx {{f:spike_m}}$ and $v \\approx {{f:spike_v}}$ for a spike G, and the step is

$${{f:spike_step}} \\approx {{f:spike_bound}},$$

whatever the size of the spike: Kingma and Ba's bound on Adam's step. It is η when
$1 - \\beta_1 = \\sqrt{1 - \\beta_2}$, as for β₁ = 0.9 and β₂ = 0.99, and {{larger}} than η when β₂
is closer to 1: with the default 0.999 the bound is {{b999}} η. descentlab's `Adam` (η =
{{lr}}, β₁ = 0.9) steps {{s}} times η at the spike for β₂ = {{b2s}}, against the bounds
{{k}}. Before the spike every step was η (a constant
gradient, divided by its own size). The per-coordinate normalisation is also a clip: one wild
gradient moves a parameter by a few η at most, where SGD's step grows with the spike. With a
short memory (β₂ = 0.9) the spike's step is even smaller than the steps before it, because the
spike fills the average at once; a β₂ close to 1 reacts slowly, and allows the largest step
exactly when the gradient changes suddenly.""",
    b999="the bound at β₂ = 0.999, against the measured spike step",
    s="the spike's step over η, against Adam's averages iterated in Python",
    k="the bound (1 - β₁)/√(1 - β₂), against the measured step",
)


def _spike_runs() -> list[tuple[float, float]]:
    out = []
    for b2 in SPIKE_B2:
        w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        opt, steps = optim.Adam([w], lr=LR, betas=(0.9, b2)), []
        for t in range(SPIKE_T + 1):
            before = float(w.detach())
            w.grad = torch.full_like(w, SPIKE if t == SPIKE_T else SPIKE_QUIET)
            opt.step()
            steps.append(abs(float(w.detach()) - before))
        out.append((steps[-2], steps[-1]))
    return out


def _spike_step(b2: float) -> float:
    """The spike's step over η from Adam's averages iterated in Python floats (no descentlab)."""
    m = v = 0.0
    for t in range(1, SPIKE_T + 2):
        g = SPIKE if t == SPIKE_T + 1 else SPIKE_QUIET
        m, v = 0.9 * m + 0.1 * g, b2 * v + (1 - b2) * g * g
    t = SPIKE_T + 1
    return (m / (1 - 0.9**t)) / (math.sqrt(v / (1 - b2**t)) + EPS)


def _spike(ctx: Context, n: kit.Numbers) -> Part:
    sk = ctx.memo(("chapter", "adaptive", "spike"), _spike_runs)
    bound = [(1 - 0.9) / math.sqrt(1 - b2) for b2 in SPIKE_B2]
    exact = [_spike_step(b2) for b2 in SPIKE_B2]
    text = SPIKE_TEXT.fill(
        n,
        quiet=f"{SPIKE_QUIET:g}",
        T=str(SPIKE_T),
        spike=f"{SPIKE:g}",
        lr=f"{LR:g}",
        b2s=", ".join(f"{b:g}" for b in SPIKE_B2),
        b999=(bound[2], sk[2][1] / LR, 0.01),
        larger=word(bound[2], 1.0, "larger"),
        s=[(s / LR, e, 1e-6) for (_, s), e in zip(sk, exact, strict=True)],
        k=[(b, s / LR, 0.01) for (_, s), b in zip(sk, bound, strict=True)],
    )
    rows = [[b2, q / LR, s / LR, b] for b2, (q, s), b in zip(SPIKE_B2, sk, bound, strict=True)]
    table = Table(
        ["β₂", "step before the spike / η", "step at the spike / η", "bound (1 - β₁)/√(1 - β₂)"],
        rows,
        f"descentlab's Adam, η = {LR}, β₁ = 0.9: {SPIKE_T} gradients of {SPIKE_QUIET:g}, "
        f"then one of {SPIKE:g}",
    )
    return Part("spike", "A gradient spike: Adam's step is bounded", [text, table, []])


# ------------------------------------------------------------------------------------------
# 8. the figure to move: the three methods on the ravine, computed in the page

MOVE = kit.Prose(
    """
Move η and β₂ (RMSProp's α and Adam's β₂ at once): the page runs AdaGrad, RMSProp and Adam on
the ravine for {{steps}} steps itself, each in a few lines of JavaScript. Adam's first step is
η along each axis at once, a diagonal move regardless of the ravine's shape (measured by
descentlab at η = {{probe_lrs}}: {{first}} times η), which is why adaptive paths start along
the diagonal. At small η all three crawl; AdaGrad falls behind first, as its steps shrink; at
large η RMSProp and Adam hover across the floor at a scale set by η, because near the minimum
their divided step no longer shrinks with the gradient. The adaptive methods do not remove
the need to choose η; they change what it means, from a multiple of the gradient to a
distance per step.""",
    first="Adam's first step along y over η, against 1",
)

MOVE_JS = """function (p) {
  var T = p.T, eps = 1e-8, lam = [0.1, 10.0];
  function loss(w) { return 0.05 * w[0] * w[0] + 5 * w[1] * w[1]; }
  function runs(step) {  // r: the rate along y each step (what multiplies the gradient there)
    var w = [-10, 1], s = {}, xs = [w[0]], ys = [w[1]], ls = [loss(w)], r = [0];
    for (var t = 1; t <= T; t++) {
      var g = [lam[0] * w[0], lam[1] * w[1]];
      for (var i = 0; i < 2; i++) w[i] = step(i, g[i], w[i], t, s);
      xs.push(w[0]); ys.push(w[1]); ls.push(loss(w)); r.push(s.r1);
    }
    return {x: xs, y: ys, l: ls, r: r};
  }
  var ada = runs(function (i, g, w, t, s) {
    s[i] = (s[i] || 0) + g * g;
    s['r' + i] = p.lr / (Math.sqrt(s[i]) + 1e-10);
    return w + (-p.lr * g) / (Math.sqrt(s[i]) + 1e-10);
  });
  var rms = runs(function (i, g, w, t, s) {
    s[i] = (s[i] || 0) * p.beta2 + (1 - p.beta2) * g * g;
    s['r' + i] = p.lr / (Math.sqrt(s[i]) + eps);
    return w + (-p.lr * g) / (Math.sqrt(s[i]) + eps);
  });
  var adam = runs(function (i, g, w, t, s) {
    var m = s['m' + i] || 0, v = s['v' + i] || 0;
    m = m + (1 - 0.9) * (g - m);
    v = v * p.beta2 + (1 - p.beta2) * g * g;
    s['m' + i] = m; s['v' + i] = v;
    var den = Math.sqrt(v) / Math.sqrt(1 - Math.pow(p.beta2, t)) + eps;
    s['r' + i] = (p.lr / (1 - Math.pow(0.9, t))) / den;
    return w + (-(p.lr / (1 - Math.pow(0.9, t))) * m) / den;
  });
  // why a run blows up: its rate along y passed the largest stable one on curvature 10,
  // 2/10 for a plain step, 2(1 + 0.9)/((1 - 0.9) 10) for Adam's averaged one
  function why(run, bound, grew) {
    var low = 0, k;
    for (k = 0; k <= T; k++) if (run.l[k] < run.l[low]) low = k;
    for (k = low; k <= T && !(run.r[k] > bound); k++);
    if (k > T) return '';
    return 'its rate along y, ' + grew + ', was ' + fmt(run.r[low]) + ' at its lowest loss ' +
           '(step ' + low + ')' + (k > low ? ' and ' + fmt(run.r[k]) + ' at step ' + k : '') +
           ', past ' +
           fmt(bound) + ', the largest stable rate on curvature 10: near the minimum the ' +
           'gradients shrank, so v, the average of their squares, fell and the divided step grew ' +
           'until it overshot';
  }
  var ts = seq(T + 1);
  return {panels: [
    {x: {label: 'x (the floor)', min: -11, max: 2}, y: {label: 'y (across)', min: -1.5, max: 1.5},
     lines: [{x: ada.x, y: ada.y, label: 'AdaGrad'}, {x: rms.x, y: rms.y, label: 'RMSProp'},
             {x: adam.x, y: adam.y, label: 'Adam'}]},
    {x: {label: 'step'}, y: {label: 'loss', log: true, min: 1e-12, max: 100},
     lines: [{x: ts, y: ada.l, label: 'AdaGrad'}, {x: ts, y: rms.l, label: 'RMSProp'},
             {x: ts, y: adam.l, label: 'Adam'}]}],
    values: {adagrad: ada.l[T], rmsprop: rms.l[T], adam: adam.l[T],
             adam_first_y: Math.abs(adam.y[1] - 1)},
    why: {AdaGrad: why(ada, 0.2, 'η/√(Σg²)'), RMSProp: why(rms, 0.2, 'η/√v'),
          Adam: why(adam, 3.8, 'η/(1 - β₁ᵗ)/√v̂')},
    text: 'final losses: AdaGrad ' + fmt(ada.l[T]) + ', RMSProp ' + fmt(rms.l[T]) +
          ', Adam ' + fmt(adam.l[T])};
}"""


def _move(ctx: Context, n: kit.Numbers) -> Part:
    rs = ctx.memo(("chapter", "adaptive", "live"), _live_runs)
    first = [abs(float(r[2].traj.paths[0, 1, 1] - r[2].traj.paths[0, 0, 1])) for r in rs]
    probes = [
        Probe({"lr": lr, "beta2": b2}, {**{x.name: float(x.traj.losses[0, -1]) for x in r},
                                        "adam_first_y": f}, 1e-6)
        for (lr, b2), r, f in zip(LIVE_PROBES, rs, first, strict=True)
    ]  # fmt: skip
    text = MOVE.fill(
        n,
        steps=str(RAVINE_STEPS),
        probe_lrs=", ".join(f"{lr:g}" for lr, _ in LIVE_PROBES),
        first=[(f / lr, 1.0, 1e-6) for (lr, _), f in zip(LIVE_PROBES, first, strict=True)],
    )
    fig = Live(
        "Move η and β₂: AdaGrad, RMSProp and Adam on the ravine $0.05x^2 + 5y^2$ from "
        "(-10, 1), paths and losses.",
        [Slider("lr", "η", 0.003, 1.0, 0.1, log=True), Slider("beta2", "β₂", 0.5, 0.9999, 0.99)],
        MOVE_JS,
        probes,
        against="descentlab's Adagrad, RMSprop and Adam",
        constants={"T": RAVINE_STEPS},
    )
    return Part("move", "Move η: a rate becomes a distance", [text, fig, []])


def _live_runs() -> list[list]:
    return [
        races("ravine", ["adagrad", "rmsprop", "adam"], lr=lr, steps=RAVINE_STEPS,
              hyper={"rmsprop": {"alpha": b2}, "adam": {"betas": (0.9, b2)}})
        for lr, b2 in LIVE_PROBES
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------
# 9. from scratch, and a real training run

_scratch = kit.scratch(
    text="""
Adam is a few lines from scratch: the two averages, the two corrections, the step. The cell
below is the whole of it in plain torch, with AdaGrad beside it; the build runs both on the
ravine next to descentlab's `Adam` and `Adagrad` and checks that every iterate is the same.""",
    code="""\
import torch
from descentlab import optim

def adam(grad, w, lr, b1=0.9, b2=0.999, eps=1e-8, steps=100):
    m, v, path = torch.zeros_like(w), torch.zeros_like(w), [w]
    for t in range(1, steps + 1):
        g = grad(w)
        m = b1 * m + (1 - b1) * g                 # the direction's average
        v = b2 * v + (1 - b2) * g * g             # the size's average
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)   # the bias corrections
        w = w - lr * m_hat / (v_hat.sqrt() + eps)
        path.append(w)
    return torch.stack(path)

def adagrad(grad, w, lr, eps=1e-10, steps=100):
    r, path = torch.zeros_like(w), [w]
    for _ in range(steps):
        g = grad(w)
        r = r + g * g
        w = w - lr * g / (r.sqrt() + eps)
        path.append(w)
    return torch.stack(path)

curv = torch.tensor([0.1, 10.0], dtype=torch.float64)   # the ravine 0.05 x^2 + 5 y^2
w0 = torch.tensor([-10.0, 1.0], dtype=torch.float64)
mine = torch.stack([adam(lambda w: curv * w, w0, 0.1), adagrad(lambda w: curv * w, w0, 0.1)])

"""
    + kit.library_path("curv")
    + """

library = torch.stack([descentlab_path(lambda p: optim.Adam(p, lr=0.1)),
                       descentlab_path(lambda p: optim.Adagrad(p, lr=0.1))])
print("Adam after 100 steps, mine:", mine[0, -1].tolist())
print("                descentlab:", library[0, -1].tolist())
print(f"largest relative difference: {((mine - library).abs() / library.abs().max()).max():.1e}")
""",
    what="Adam and AdaGrad from scratch give descentlab's iterates on the ravine (100 steps each)",
)

TRAINING = kit.Prose(
    """
On a network the adaptive methods' advantage is that their rate needs less care. The figure
trains descentlab's default MNIST-1D model with mini-batches of {{batch}} for {{steps}} steps
with `SGD`, `Adagrad`, `RMSprop` and `Adam`, each at a rate typical for it ({{rates}}).
The adaptive methods descend faster early, where the gradients of the layers differ most in
size; AdaGrad's accumulated sum slows it later in the run, as its first section predicts.""",
)


def _training(ctx: Context, n: kit.Numbers) -> Part:
    base = {"problem": "mnist1d", "batch_size": TRAIN_B, "steps": TRAIN_STEPS, "eval_every": 25}
    runs = {
        f"{label}, η = {lr:g}": {**base, "optimizer": name, "hyper": {"lr": lr}}
        for name, label, lr in TRAIN
    }
    fig, res = kit.training_run(ctx, "adaptive", runs, "MNIST-1D")
    by = dict(zip((name for name, _, _ in TRAIN), res.values(), strict=True))
    losses = {name: kit.final(r, "train/loss") for name, r in by.items()}
    early = {name: float(r.metrics["train/loss"].values[4]) for name, r in by.items()}
    step = int(next(iter(by.values())).metrics["train/loss"].steps[4])
    worst = max(losses.values())
    checks = [
        ck("after 100 steps Adam's and RMSProp's training losses are below SGD's",
           max(early["adam"], early["rmsprop"]) < early["sgd"],
           f"{early['adam']:.4g}, {early['rmsprop']:.4g}", f"< {early['sgd']:.4g}"),
        ck("every run trains: the final loss is below the initial ln 10", worst < math.log(10),
           f"{worst:.4g}", f"< {math.log(10):.4g}"),
    ]  # fmt: skip
    rates = ", ".join(f"{lr:g}" for _, _, lr in TRAIN)
    text = TRAINING.fill(n, batch=str(TRAIN_B), steps=str(TRAIN_STEPS), rates=rates)
    table = kit.results_table(
        res,
        f"descentlab's engine (train), MNIST-1D, batches of {TRAIN_B}, seed 0",
        (f"{kit.WORDS['train/loss']} at step {step}", lambda r: r.metrics["train/loss"].values[4]),
        "train/loss",
        "test/accuracy",
    )
    return Part("training", "A real training run", [text, fig, table, checks])


KEEP = """
What to keep. AdaGrad divides by the root of a sum and its rate decays as
${{f:adagrad_decay}}$; RMSProp
divides by the root of an average and keeps its rate; Adam adds momentum's average and
corrects both averages' start from zero, a correction that matters in the first steps and
fades. All three make a step's size independent of the
gradient's units, bound each coordinate's step by about η, and under noise shrink the step by
the signal-to-noise ratio. What they do not do is remove the rate: η becomes a distance per
step instead of a multiple of the gradient, ε sets the gradient size below which the division
stops, and the bias correction is what makes the first steps of a moving average trustworthy.
A rare feature gets a rate ${{f:adagrad_rare_gain}}$ times larger than a common one under AdaGrad,
which is
the reason the family was invented, and the reason AdaGrad itself decays too fast on the long,
non-convex runs where RMSProp and Adam replaced it."""

#: the chapter's exercises (:mod:`descentlab.book.chapters.practice`)
EXERCISES = practice.ADAPTIVE

CHAPTER = kit.Chapter(
    "deep-adaptive",
    "Adaptive rates in depth: AdaGrad → RMSProp → Adam",
    "What dividing each coordinate's step by the size of its gradients does: scale invariance "
    "and a decay for AdaGrad, a forgetting average for RMSProp, both averages and their bias "
    "correction for Adam, and under noise a step that follows the signal-to-noise ratio; "
    "descentlab's optimizers against the papers' loops, Adam from scratch, and a training run.",
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
    (
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
        EPS,
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
        TRAIN_B,
        TRAIN_STEPS,
        NOISE_STEPS // 2,
        *(lr for _, _, lr in TRAIN),
    ),
    (_adagrad, _rmsprop, _adam, _noise, _ravine, _sparse, _spike, _move, _scratch, _training),
    KEEP,
    EXERCISES,
)
