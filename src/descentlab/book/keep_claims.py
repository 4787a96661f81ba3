"""The chapters' "What to keep" lines bound to the runs that show them.

Each row of :data:`CLAIMS` is a :class:`~descentlab.book.claims.Claim`'s fields -- its name,
the phrase the box says, the misconception it turns into (not a swapped word alone: heavy ball
as a first-order recurrence, a schedule whose rates sum to a finite total, a line search no
better than a fixed rate, maximum likelihood seeking one mode), its demonstration and its
home chapter; :mod:`descentlab.book.claims` makes them claims (a demonstration named by a
string is one of that module's). :data:`UNBACKED` lists the lines nothing can back, and why.
Every "What to keep" line is one or the other (:func:`descentlab.book.teaching.unbound`).

Each demonstration is a few milliseconds of float64 numpy or torch, deterministic.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from descentlab.book.checks import shows as _shows

__all__ = ["CLAIMS", "UNBACKED"]

_Demo = Callable[[], tuple[bool, str]]


def _heavy_ball_roots(hl: float, beta: float) -> np.ndarray:
    """The roots of heavy ball's recurrence on one direction of curvature λ (hl = ηλ)."""
    return np.roots([1.0, -(1 + beta - hl), beta])


@_shows(
    "heavy ball on one direction (ηλ = 0.2, β = 0.8): its errors' rate against the roots "
    "of its second-order recurrence, and the spread of its step-to-step ratios"
)
def _second_order_recurrence() -> tuple[bool, str]:
    """Heavy ball on f = λw²/2 (ηλ = 0.2, β = 0.8) for 300 steps: the rate its error falls at
    (over the last 100 steps) against the largest root modulus of z² - (1 + β - ηλ)z + β, and
    whether one factor carries each error to the next (a first-order recurrence)."""
    hl, beta = 0.2, 0.8
    w, prev, path = 1.0, 1.0, [1.0]
    for _ in range(300):
        w, prev = w - hl * w + beta * (w - prev), w
        path.append(w)
    env = np.abs(np.array(path))
    rate = float((np.max(env[-20:]) / np.max(env[-120:-100])) ** (1 / 100))
    root = float(np.abs(_heavy_ball_roots(hl, beta)).max())
    ratios = np.array(path[1:40]) / np.array(path[:39])
    spread = float(ratios.max() - ratios.min())
    holds = abs(rate - root) < 5e-3 and spread > 0.5
    return holds, (
        f"rate {rate:.4f}, largest root {root:.4f}; step-to-step ratios spread over {spread:.2f}"
    )


@_shows(
    "the spectral radii of heavy ball's and Nesterov's maps on a stiff direction "
    "(ηλ = 0.9, β = 0.9)"
)
def _nesterov_damps_stiff() -> tuple[bool, str]:
    """On a direction of curvature λ, Nesterov's iterate obeys z² - (1 + β)(1 - ηλ)z +
    β(1 - ηλ), heavy ball z² - (1 + β - ηλ)z + β: their spectral radii at a stiff ηλ = 0.9,
    read from 60 steps of each loop."""
    hl, beta = 0.9, 0.9

    def rate(nesterov: bool) -> float:
        w, v = 1.0, 0.0
        for _ in range(60):
            g = hl * (w + beta * v) if nesterov else hl * w
            v = beta * v - g
            w = w + v
        return abs(w) ** (1 / 60)

    hb, nag = rate(False), rate(True)
    return nag < 0.5 * hb, f"error per step × {hb:.3f} for heavy ball, × {nag:.3f} for Nesterov"


@_shows(
    "Adam's bias correction (β₁ = 0.9, β₂ = 0.999) on a constant gradient: the corrected "
    "step over the raw one at steps 1, 10 and 10,000"
)
def _correction_fades() -> tuple[bool, str]:
    """descentlab's Adam on L(w) = w: its first step against lr (corrected), and the factor
    √(1 - β₂ᵗ)/(1 - β₁ᵗ) that the correction multiplies the raw step m/√v by, from the two
    averages run on a constant gradient."""
    import torch

    from descentlab.optim import Adam

    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = Adam([w], lr=0.01)
    w.sum().backward()
    opt.step()
    first = abs(float(w.detach()))
    b1, b2, m, v, factor = 0.9, 0.999, 0.0, 0.0, {}
    for t in range(1, 10_001):
        m, v = b1 * m + (1 - b1), b2 * v + (1 - b2)
        if t in (1, 10, 10_000):
            factor[t] = 1.0 / (m / np.sqrt(v))
    holds = abs(first - 0.01) < 1e-9 and factor[1] < 0.5 and abs(factor[10_000] - 1) < 1e-3
    return holds, (
        f"Adam's first step {first:.4g} (lr 0.01); correction × {factor[1]:.3g} at "
        f"step 1, × {factor[10]:.3g} at 10, × {factor[10_000]:.4f} at 10,000"
    )


def _moments(rates: Callable[[int], float], steps: int, x0: float = 10.0) -> tuple[float, float]:
    """SGD on h = 1 with gradient noise σ² = 1: the exact mean and second moment of the
    iterate after ``steps`` steps at the rates ``rates(t)``, t = 1, 2, ..."""
    mean, second = x0, x0 * x0
    for t in range(1, steps + 1):
        eta = rates(t)
        mean, second = (1 - eta) * mean, (1 - eta) ** 2 * second + eta * eta
    return mean, second


@_shows(
    "SGD's exact expected loss on a noisy quadratic (h = 1, σ² = 1) after 4,000 steps at "
    "η = 0.05, against ησ²/4 and 0"
)
def _constant_rate_floor() -> tuple[bool, str]:
    """The exact expected loss E[x²]/2 at η = 0.05 from x = 10 after 2,000 and 4,000 steps."""
    at = {t: _moments(lambda _t: 0.05, t)[1] / 2 for t in (2000, 4000)}
    quarter = 0.05 / 4
    holds = abs(at[4000] / quarter - 1) < 0.05 and abs(at[4000] / at[2000] - 1) < 1e-6
    return holds, (
        f"loss {at[2000]:.5f} at step 2,000, {at[4000]:.5f} at 4,000 (ησ²/4 = {quarter:.5f})"
    )


@_shows(
    "SGD's exact second moment (h = 1, σ² = 1, from 10) after 20,000 steps under η = 1/(t+1) "
    "(Σ infinite, Σ² finite), 1/(t+1)² (Σ finite) and 0.05 (Σ² infinite)"
)
def _robbins_monro() -> tuple[bool, str]:
    """The exact E[x²] after 20,000 steps under three schedules: the one whose sums are
    infinite and finite goes to 0, the one with a finite sum stalls short of the minimum, the
    constant one at its floor."""
    ends = {
        name: _moments(rate, 20_000)[1]
        for name, rate in (
            ("1/t", lambda t: 1 / (t + 1)),
            ("1/t²", lambda t: 1 / (t + 1) ** 2),
            ("constant", lambda t: 0.05),
        )
    }
    holds = ends["1/t"] < 1e-3 < 0.02 < ends["constant"] < 1 < ends["1/t²"]
    return holds, "E[x²] after 20,000 steps: " + ", ".join(
        f"{v:.3g} ({k})" for k, v in ends.items()
    )


@_shows(
    "SGD's exact expected loss under step decay (η = 0.1 halved every 400 steps): each "
    "stage's end against its floor"
)
def _staircase() -> tuple[bool, str]:
    """Step decay on the noisy quadratic, exactly: the loss at the end of each of four stages
    of 400 steps against that stage's constant-rate floor ησ²/(2(2 - ηh)), and against 0."""
    ends, floors, second = [], [], 100.0
    for stage in range(4):
        eta = 0.1 / 2**stage
        for _ in range(400):
            second = (1 - eta) ** 2 * second + eta * eta
        ends.append(second / 2)
        floors.append(eta / (2 * (2 - eta)))
    holds = all(abs(e / f - 1) < 0.1 for e, f in zip(ends, floors, strict=True))
    holds = holds and all(b < 0.6 * a for a, b in itertools.pairwise(ends))
    return holds, "stage ends " + ", ".join(
        f"{e:.4f} (floor {f:.4f})" for e, f in zip(ends, floors, strict=True)
    )


@_shows(
    "the best expected decrease of one SGD step on a quadratic (gradient 1, per-example "
    "variance 100, noise scale 100), over η, at B = 10 to 10⁴: the steps it implies"
)
def _noise_scale_batch() -> tuple[bool, str]:
    """One SGD step on f = h(x - x*)²/2 at a point with gradient ḡ = 1 and per-example
    gradient variance S² = 100 (noise scale S²/ḡ² = 100): the expected decrease
    ηḡ² - η²h(ḡ² + S²/B)/2, maximised over η on a grid, and the steps (1/decrease) it
    implies, at B = 10, 100, 1,000 and 10,000."""
    eta = np.linspace(1e-4, 2.0, 20_001)
    steps = {}
    for b in (10, 100, 1000, 10_000):
        steps[b] = 1 / float((eta - eta**2 * (1 + 100 / b) / 2).max())
    holds = steps[10] / steps[100] > 4 and steps[1000] / steps[10_000] < 1.1
    return holds, "steps " + ", ".join(f"{s:.3g} at B = {b:g}" for b, s in steps.items())


@_shows(
    "descentlab's Adam with an L2 penalty against AdamW, λ = 10⁻⁴, lr 0.01, 200 steps on a "
    "loss that is its penalty alone"
)
def _adamw_differs() -> tuple[bool, str]:
    """descentlab's Adam with weight_decay (the L2 form, its gradient normalised) and with
    decoupled_weight_decay (AdamW), λ = 10⁻⁴, lr 0.01, from w = 1 with no other loss: where
    each weight is after 200 steps."""
    import torch

    from descentlab.optim import Adam

    ends = {}
    for decoupled in (False, True):
        w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
        opt = Adam([w], lr=0.01, weight_decay=1e-4, decoupled_weight_decay=decoupled)
        for _ in range(200):
            opt.zero_grad()
            w.grad = torch.zeros_like(w)
            opt.step()
        ends[decoupled] = float(w.detach().abs().max())
    holds = ends[False] < 0.05 and ends[True] > 0.999
    return holds, f"w after 200 steps: {ends[False]:.3g} (L2 in Adam), {ends[True]:.6f} (AdamW)"


@_shows(
    "a single Gaussian fitted to an even mixture of N(-3, 1) and N(3, 1) by maximum "
    "likelihood (KL from data to model) and by the reverse KL"
)
def _covers_modes() -> tuple[bool, str]:
    """The mixture on a grid; a Gaussian's (μ, σ) on a grid minimising KL(p‖q) (maximum
    likelihood: the cross-entropy) and KL(q‖p): where each puts its mean and spread."""
    x = np.linspace(-10, 10, 401)
    dx = x[1] - x[0]

    def normal(m: np.ndarray | float, s: np.ndarray | float) -> np.ndarray:
        return np.exp(-((x - m) ** 2) / (2 * s * s)) / (s * np.sqrt(2 * np.pi))

    p = (normal(-3.0, 1.0) + normal(3.0, 1.0)) / 2
    mus, sds = np.linspace(-4, 4, 25), np.linspace(0.5, 4.5, 25)
    q = normal(mus[:, None, None], sds[None, :, None])
    tiny = 1e-300
    forward = (p * (np.log(p + tiny) - np.log(q + tiny))).sum(-1) * dx
    reverse = (q * (np.log(q + tiny) - np.log(p + tiny))).sum(-1) * dx
    (fm, fs), (rm, rs) = (np.unravel_index(k.argmin(), k.shape) for k in (forward, reverse))
    ml, rev = (mus[fm], sds[fs]), (mus[rm], sds[rs])
    holds = abs(ml[0]) < 0.3 and ml[1] > 2.5 and abs(rev[0]) > 2.5 and rev[1] < 1.5
    return holds, (
        f"maximum likelihood: μ {ml[0]:.2f}, σ {ml[1]:.2f}; reverse KL: μ {rev[0]:.2f}, "
        f"σ {rev[1]:.2f}"
    )


@_shows("every batch of 1, 2 and 6 of 6 gradients: the batch mean's expectation and variance")
def _same_step_other_noise() -> tuple[bool, str]:
    """Every batch of B of 6 per-example gradients (without replacement), B = 1, 2, 6: the mean
    of the batch means (the expected step) and their variance (the noise)."""
    g = np.array([1.0, -2.0, 3.5, 0.25, 4.0, -1.0])
    got = {}
    for b in (1, 2, 6):
        means = [float(np.mean(g[list(c)])) for c in itertools.combinations(range(6), b)]
        got[b] = (float(np.mean(means)), float(np.var(means)))
    same = max(abs(m - g.mean()) for m, _ in got.values()) < 1e-12
    holds = same and got[1][1] > got[2][1] > got[6][1] == 0.0
    return holds, "expected step, variance: " + "; ".join(
        f"B = {b}: {m:.4g}, {v:.3g}" for b, (m, v) in got.items()
    )


def _epochs(epochs: int) -> tuple[list[float], list[float]]:
    """A redundant training set (100 targets 1 + 0.01z): the exact expected loss above the
    optimum after each epoch for SGD (one example a step, η = 0.05) and full-batch descent
    (one exact step an epoch, η = 0.5), from x = 0."""
    a = 1 + 0.01 * np.random.default_rng(9).standard_normal(100)
    s2 = float(a.var())
    sgd, gd, second, err = [], [], float(a.mean()) ** 2, float(a.mean())
    for _ in range(epochs):
        for _ in range(100):
            second = 0.95**2 * second + 0.05**2 * s2
        err *= 0.5
        sgd.append(second / 2)
        gd.append(err * err / 2)
    return sgd, gd


@_shows(
    "a redundant training set of 100 examples: SGD's and full-batch descent's exact expected "
    "loss after the first epoch"
)
def _cheap_steps_win() -> tuple[bool, str]:
    """The loss after one epoch: 100 cheap noisy steps against one exact step."""
    sgd, gd = _epochs(1)
    return gd[0] > 100 * sgd[0], f"after one epoch: SGD {sgd[0]:.2g}, full batch {gd[0]:.2g}"


@_shows(
    "the same runs over 30 epochs: the epoch from which the full batch is lower, against "
    "its e-folding count 1/ln 4"
)
def _full_batch_late() -> tuple[bool, str]:
    """The first epoch at which full-batch descent's loss is below SGD's, against its loss's
    e-folding count (1/ln 4 epochs: the loss falls × 1/4 an epoch)."""
    sgd, gd = _epochs(30)
    cross = next((e + 1 for e in range(30) if gd[e] < sgd[e]), 31)
    efold = 1 / np.log(4)
    return cross > 5 * efold and gd[-1] < sgd[-1], (
        f"the full batch is lower from epoch {cross} (e-folding count {efold:.2f} epochs)"
    )


@_shows(
    "an epoch's per-example gradient noise at a fixed point, summed: a shuffled pass against "
    "100 draws with replacement"
)
def _shuffled_cancels() -> tuple[bool, str]:
    """The deviations of 100 per-example gradients from their mean at a fixed point: their sum
    over one shuffled pass, and its root mean square over 200 passes of draws with
    replacement."""
    rng = np.random.default_rng(10)
    dev = rng.standard_normal(100)
    dev -= dev.mean()
    shuffled = float(abs(dev[rng.permutation(100)].sum()))
    drawn = float(np.sqrt((dev[rng.integers(0, 100, (200, 100))].sum(1) ** 2).mean()))
    return shuffled < 1e-9 < 1 < drawn, (
        f"summed noise {shuffled:.1e} over a shuffled pass, {drawn:.3g} (RMS) with replacement"
    )


@_shows(
    "a torch Conv2d(3, 8, 3) on 16 × 16 and 64 × 64 images: its parameters, against a dense "
    "layer's for each size"
)
def _kernel_shared() -> tuple[bool, str]:
    """One torch Conv2d(3, 8, 3) applied to images of two sizes (the same module: its
    parameters do not depend on the size), against the dense layer that maps each image to
    the same output."""
    import torch

    conv = torch.nn.Conv2d(3, 8, 3)
    n = sum(p.numel() for p in conv.parameters())
    dense, outs = {}, {}
    for side in (16, 64):
        out = conv(torch.zeros(1, 3, side, side))
        outs[side] = tuple(out.shape[-2:])
        dense[side] = 3 * side * side * out[0].numel()
    holds = n == 8 * 3 * 9 + 8 and dense[64] > 100 * dense[16]
    return holds, (
        f"{n} parameters at {outs[16]} and {outs[64]} outputs; a dense layer "
        f"{dense[16]:,} and {dense[64]:,}"
    )


@_shows(
    "a 3 × 3 convolution of 256 channels against a 1 × 1 bottleneck to 64 around it: weights "
    "and multiply-adds on a 28 × 28 map"
)
def _bottleneck() -> tuple[bool, str]:
    """Weights and multiply-adds (weights times the map's area) of a 3 × 3 convolution
    256 → 256 and of the bottleneck 1 × 1 256 → 64, 3 × 3 64 → 64, 1 × 1 64 → 256."""
    area = 28 * 28
    plain = 256 * 256 * 9
    neck = 256 * 64 + 64 * 64 * 9 + 64 * 256
    ratio_w = neck / plain
    ratio_c = neck * area / (plain * area)
    return ratio_w < 0.2 and ratio_c < 0.2, (
        f"the bottleneck: {100 * ratio_w:.0f} % of the weights, {100 * ratio_c:.0f} % of the "
        "multiply-adds"
    )


@_shows(
    "Newton on cos x from 0.3 (negative curvature), and with Armijo's backtracking and a "
    "gradient fallback"
)
def _newton_climbs() -> tuple[bool, str]:
    """Pure Newton on f = cos x from 0.3 (f'' < 0 there) for 5 steps, and the safeguarded one
    (a descent direction: -f'/|f''| or the gradient, then Armijo's halving)."""
    x = 0.3
    for _ in range(5):
        x -= -np.sin(x) / -np.cos(x)
    pure = float(np.cos(x))
    y = 0.3
    for _ in range(5):
        g, h = -np.sin(y), -np.cos(y)
        d = -g / h if h > 0 else -g
        step = 1.0
        while np.cos(y + step * d) > np.cos(y) + 1e-4 * step * g * d:
            step /= 2
        y += step * d
    safe = float(np.cos(y))
    start = float(np.cos(0.3))
    return pure > start and safe < start, (
        f"f from {start:.4f}: pure Newton {pure:.4f} (x = {x:.2g}, the maximum), safeguarded "
        f"{safe:.4f}"
    )


@_shows(
    "descent on x⁴/4 from 2, 50 steps: Armijo's backtracking against the best of 30 fixed rates"
)
def _line_search_step() -> tuple[bool, str]:
    """Gradient descent on f = x⁴/4 from 2 for 50 steps: at each fixed rate of a grid (those
    that do not diverge) and with Armijo's backtracking from a step of 100; the loss at the
    end."""
    best = np.inf
    for eta in np.geomspace(1e-3, 1.0, 30):
        x = 2.0
        for _ in range(50):
            x -= eta * x**3
            if abs(x) > 1e6:
                break
        if abs(x) <= 1e6:
            best = min(best, x**4 / 4)
    x = 2.0
    for _ in range(50):
        g, step = x**3, 100.0
        while (x - step * g) ** 4 / 4 > x**4 / 4 - 1e-4 * step * g * g:
            step /= 2
        x -= step * g
    searched = x**4 / 4
    return searched < best / 100, f"loss after 50 steps: {searched:.2g} searched, {best:.2g} fixed"


@_shows(
    "descentlab's LBFGS on a quadratic of κ = 100 from gradients alone (no graph, so no "
    "Hessian): its calls and ‖x‖, against descent at 1/L"
)
def _lbfgs_gradients() -> tuple[bool, str]:
    """descentlab's LBFGS (strong Wolfe) on f = xᵀHx/2, H = diag(1, ..., 100) in 10
    dimensions, whose closure sets the gradient Hx by hand (no autograd graph: no Hessian can
    be formed); its closure calls and the distance to the minimum, against gradient descent at
    η = 1/L after as many gradients."""
    import torch

    from descentlab.optim import LBFGS

    h = torch.linspace(1, 100, 10, dtype=torch.float64)
    w = torch.nn.Parameter(torch.ones(10, dtype=torch.float64))
    opt = LBFGS([w], lr=1, max_iter=40, line_search_fn="strong_wolfe", tolerance_grad=1e-12)
    calls = [0]

    def closure() -> torch.Tensor:
        calls[0] += 1
        with torch.no_grad():
            w.grad = h * w
            return (h * w * w).sum() / 2

    opt.step(closure)
    dist = float(w.detach().norm())
    gd = float(np.linalg.norm((1 - np.linspace(1, 100, 10) / 100) ** calls[0]))
    return dist < 1e-4 < 0.5 < gd, (
        f"‖x‖ {dist:.1e} after {calls[0]} gradients; descent at 1/L after as many {gd:.2g}"
    )


# listed sentences backed: the demonstrations of the "What to keep" lines once listed


@_shows(
    "the exact mean and variance of SGD on x²/2 with unit gradient noise from x = 10, 1,000 "
    "steps: the end of step decay, cosine, warm-up then cosine and 1-cycle (peak 0.1) against "
    "the floor of the constant rate 0.1"
)
def _schedules_below_floor() -> tuple[bool, str]:
    """Each schedule's expected loss at its last step, as a fraction of the constant rate's."""
    t = np.arange(1000)
    cosine = 0.05 * (1 + np.cos(np.pi * t / 1000))
    warm = np.where(t < 50, 0.1 * (t + 1) / 50, 0.05 * (1 + np.cos(np.pi * (t - 50) / 950)))
    cycle = np.interp(t, [0, 450, 900, 999], [0.004, 0.1, 0.004, 0.0001])
    ends = {
        "constant": _moments(lambda k: 0.1, 1000),
        "step": _moments(lambda k: 0.1 * 0.1 ** ((k - 1) // 300), 1000),
        "cosine": _moments(lambda k: float(cosine[k - 1]), 1000),
        "warm-up": _moments(lambda k: float(warm[k - 1]), 1000),
        "1-cycle": _moments(lambda k: float(cycle[k - 1]), 1000),
    }
    floor = ends.pop("constant")[1]
    worst = max(m[1] for m in ends.values()) / floor
    return worst < 0.2, f"each schedule ends at ≤ {worst:.3f} of the constant rate's floor"


@_shows(
    "descentlab's SGD (η 0.4, one example a step) on least squares over 20 points, 10,000 "
    "chains, 60 steps: E[e²] against the recursion with the data's fourth moment and with "
    "(1 - ηE[x²])² in its place"
)
def _recursion_higher_moments() -> tuple[bool, str]:
    """The squared error e = w - w* after 60 steps, measured, against the exact recursion
    E[e'²] = E[(1 - ηx²)²]E[e²] + 2ηE[(1 - ηx²)xε]E[e] + η²E[x²ε²] and the one that drops the
    data's fourth moment."""
    import torch

    from descentlab.optim import SGD

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 2, 20)
    y = 2 * x + rng.normal(0, 0.5, 20)
    best = float(x @ y / (x @ x))
    eps, eta = y - best * x, 0.4
    w = torch.nn.Parameter(torch.full((10000,), best + 1.0, dtype=torch.float64))
    opt = SGD([w], lr=eta)
    for _ in range(60):
        i = rng.integers(0, 20, w.numel())
        w.grad = torch.from_numpy(x[i] * (x[i] * w.detach().numpy() - y[i]))
        opt.step()
    measured = float(np.mean((w.detach().numpy() - best) ** 2))

    def recursion(factor: float) -> float:
        mean, second = 1.0, 1.0
        for _ in range(60):
            cross = 2 * eta * np.mean((1 - eta * x * x) * x * eps) * mean
            mean, second = (
                (1 - eta * np.mean(x * x)) * mean,
                (factor * second + cross + eta**2 * np.mean((x * eps) ** 2)),
            )
        return float(second)

    exact = recursion(float(np.mean((1 - eta * x * x) ** 2)))
    alone = recursion(float((1 - eta * np.mean(x * x)) ** 2))
    holds = abs(measured - exact) < 0.05 * exact and abs(measured - alone) > 0.2 * alone
    return holds, f"E[e²] {measured:.5f}; the recursion {exact:.5f}, without E[x⁴] {alone:.5f}"


#: the claims: (name, said, opposite, demonstration, home) -- a demonstration named by a
#: string is :mod:`descentlab.book.claims`'s
CLAIMS: tuple[tuple[str, str, str, _Demo | str, str], ...] = (
    ("keep_second_order", "is a second-order linear recurrence whose roots give its rate",
     "is a first-order linear recurrence whose factor gives its rate", _second_order_recurrence,
     "deep-momentum"),
    ("keep_nesterov_stiff", "damps the stiff directions further",
     "damps the stiff directions less", _nesterov_damps_stiff, "deep-momentum"),
    ("keep_correction_early", "a correction that matters in the first steps and fades",
     "a correction that matters in the late steps and grows", _correction_fades,
     "deep-adaptive"),
    ("keep_constant_floor", "a constant rate hovers at a floor",
     "a constant rate converges to the minimum", _constant_rate_floor, "deep-schedules"),
    ("keep_robbins_monro", "keep $\\sum \\eta_t$ infinite and $\\sum \\eta_t^2$ finite",
     "keep $\\sum \\eta_t$ finite and $\\sum \\eta_t^2$ finite", _robbins_monro,
     "deep-schedules"),
    ("keep_staircase", "Step decay walks down a staircase of floors",
     "Step decay drops straight to the minimum", _staircase, "deep-schedules"),
    ("keep_noise_scale", "a batch beyond the noise scale $S^2/\\bar g^2$ buys little",
     "a batch beyond the noise scale $S^2/\\bar g^2$ divides the steps it needs",
     _noise_scale_batch, "deep-batch"),
    ("keep_adamw_differs", "decoupled decay (AdamW) is a different",
     "decoupled decay (AdamW) is the same", _adamw_differs, "deep-regularization"),
    ("keep_noise_terms", "and the model's noise decides the terms",
     "and every noise model gives the same terms", "_nll_shapes", "deep-likelihood"),
    ("keep_cover_modes", "maximum-likelihood models cover every mode",
     "maximum-likelihood models seek a single mode", _covers_modes, "deep-likelihood"),
    ("keep_cost_and_noise", "what separates them is the cost of a step and the noise it carries",
     "what separates them is the direction of their expected step", _same_step_other_noise,
     "deep-descent"),
    ("keep_cheap_steps", "many cheap noisy steps per epoch beat one exact step",
     "one exact step per epoch beats many cheap noisy steps", _cheap_steps_win, "deep-descent"),
    ("keep_full_batch_late", "the full batch wins only long after its own e-folding count",
     "the full batch wins from its first epochs", _full_batch_late, "deep-descent"),
    ("keep_shuffled_cancels", "an epoch of shuffled batches cancels its noise",
     "an epoch of shuffled batches keeps its noise", _shuffled_cancels, "deep-descent"),
    ("keep_kernel_shared", "independent of the image's size because the kernel is shared",
     "proportional to the image's size because the kernel is shared", _kernel_shared,
     "deep-convolution"),
    ("keep_bottleneck", "a 1 × 1 bottleneck cuts both",
     "a 1 × 1 bottleneck cuts the weights but not the compute", _bottleneck, "deep-convolution"),
    ("keep_newton_climbs", "on non-convex ground it can diverge or climb to a maximum",
     "on non-convex ground it still descends", _newton_climbs, "deep-newton"),
    ("keep_line_search", "a line search picks the step a fixed rate cannot",
     "a line search picks no better step than a fixed rate", _line_search_step, "deep-newton"),
    ("keep_lbfgs_gradients", "L-BFGS builds curvature from gradients alone",
     "L-BFGS builds curvature from the Hessian", _lbfgs_gradients, "deep-newton"),
    # listed sentences backed
    ("keep_conditioning_not_noise", "so momentum is a cure for bad conditioning, not for noise",
     "so momentum is a cure for noise, not for bad conditioning", "card_average_keeps_floor",
     "deep-momentum"),
    ("keep_schedules_below_floor", "each of them ends far below the floor of a constant rate",
     "each of them ends at the floor of a constant rate", _schedules_below_floor,
     "deep-schedules"),
    ("keep_test_set_optimistic", "choosing on the test set instead reports an optimistic number",
     "choosing on the test set instead reports an honest number", "card_test_choice_optimistic",
     "deep-methodology"),
    ("keep_bias_squared", "The expected error splits into squared bias, variance and noise",
     "The expected error splits into bias, variance and noise", "card_bias_squared_sum",
     "deep-methodology"),
    ("keep_rate_a_distance", "η becomes a distance per step instead of a multiple of the gradient",
     "η stays a multiple of the gradient instead of a distance per step",
     "card_steps_about_rate", "deep-adaptive"),
    ("keep_rare_feature_rate", "times larger than a common one under AdaGrad",
     "times smaller than a common one under AdaGrad", "card_rare_large_updates", "deep-adaptive"),
    ("keep_recursion_moments", "a recursion on the error's mean and second moment with the "
     "data's own higher moments", "a recursion on the error's mean and second moment with the "
     "data's variance alone", _recursion_higher_moments, "deep-descent"),
)  # fmt: skip

#: the "What to keep" lines nothing the build runs can back, a phrase each holds and why
UNBACKED: dict[str, str] = {
    "Every one of them is a descentlab schedule, checked here against its formula": "a "
    "pointer to the page's own rows: each schedule's row checks descentlab's schedule "
    "against its formula; the line states no behaviour a run could turn",
    "its output length is ": "notation: the formula is rendered from the chapter's Formula "
    "object, which the chapter's formula row evaluates",
    "On the digits, tuned, many pairs are level within three seeds": "a result of the chapter's "
    "tuned training runs on the digits (minutes), shown in its table beside the line; no tiny "
    "run can repeat it",
    "the saving flattens past a batch size that depends on the machine": "a timing that depends "
    "on the reader's machine (the line says so): no deterministic run can back it",
}
