"""The demonstrations behind the first cards' conceptual sentences (items 1-33: likelihood,
stationary points, gradient descent, noise, step sizes, momentum, derivatives).

Each is a tiny instrumented run (float64 numpy or descentlab's optimizers, a few milliseconds)
that returns ``(holds, measured)``: ``holds`` true when the run bears the card's phrase out,
``measured`` what it measured, in words. :data:`descentlab.book.card_claims.CLAIMS` binds each
to its phrase and the phrase's opposite, so a page saying the opposite, or a run measuring
it, is a ✘ on the card. The second part holds the independent computations a card's typed
formulas are evaluated against (:func:`descentlab.book.typed.typed`).

Example:
    >>> saddle_stop()[0]
    True
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from descentlab.book.checks import shows

__all__ = [
    "autograd_cubic",
    # the references the typed formulas are evaluated against (typed.typed)
    "autograd_partial",
    "autograd_power",
    "backprop_cost",
    "batch_cost",
    "cheap_steps_farther",
    "constant_rate_floor",
    "decaying_rate_settles",
    "eigenvalue_test",
    "error_factor",
    "finite_population",
    "flat_second_derivative",
    "flipping_terms_cancel",
    "hessian_size",
    "impulse_weight",
    "inverse_squares",
    "laplace_nll",
    "least_squares_gradient",
    "momentum_zero_is_descent",
    "newton_one_jump",
    "noise_walk",
    "normal_nll",
    "partial_holds_others",
    "power_decays",
    "saddle_stop",
    "schedule_factors",
    "stability_edge",
    "steep_component",
    "taylor_half",
    "travel_budget",
    "velocities",
    "velocity_limit",
    "velocity_recursion",
    "velocity_unrolled",
]


@shows("one Newton step and one gradient step (η = 0.1) on a random 4-dimensional quadratic: "
       "the distance left to its minimum")  # fmt: skip
def newton_one_jump() -> tuple[bool, str]:
    """x - H⁻¹∇f(x) on f = ½xᵀHx - bᵀx from a random start: the minimum of the quadratic
    model, which for a quadratic is the function itself, in one step."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    h, b, x = a @ a.T + np.eye(4), rng.normal(size=4), rng.normal(size=4)
    best = np.linalg.solve(h, b)
    newton = x - np.linalg.solve(h, h @ x - b)
    step = x - 0.1 * (h @ x - b)
    off, left = float(np.abs(newton - best).max()), float(np.abs(step - best).max())
    return (
        off < 1e-12 < 1e-3 < left,
        f"Newton {off:.1e} from the minimum, a gradient step {left:.2g}",
    )


@shows("torch's Hessian of a function of p = 3 and 6 weights: its numbers against p²")
def hessian_size() -> tuple[bool, str]:
    """torch.autograd.functional.hessian's size at two p: p² numbers, so 10¹² at p = 10⁶."""
    import torch

    sizes = {p: torch.autograd.functional.hessian(lambda w: (w.sum() ** 3), torch.ones(p)).numel()
             for p in (3, 6)}  # fmt: skip
    holds = all(n == p * p for p, n in sizes.items()) and (10**6) ** 2 == 10**12
    return holds, ", ".join(f"p = {p}: {n} numbers" for p, n in sizes.items())


def _mlp_costs(batch: int = 32, widths: tuple[int, ...] = (20, 64, 64, 1)) -> tuple[int, int, int]:
    """A tanh network's forward and backward passes in numpy, every matrix product's
    multiply-adds counted: (forward, backward, weights); the gradient is checked against a
    finite difference."""
    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(a, b)) / math.sqrt(a) for a, b in itertools.pairwise(widths)]
    x = rng.normal(size=(batch, widths[0]))
    count = [0]

    def mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        count[0] += a.shape[0] * a.shape[1] * b.shape[1]
        return a @ b

    def forward(ws: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        hs = [x]
        for w in ws[:-1]:
            hs.append(np.tanh(mm(hs[-1], w)))
        out = mm(hs[-1], ws[-1])
        return float((out**2).mean()), [*hs, out]

    loss, hs = forward(ws)
    fwd, count[0] = count[0], 0
    delta, grads = 2 * hs[-1] / hs[-1].size, []
    for i in range(len(ws) - 1, -1, -1):
        grads.insert(0, mm(hs[i].T, delta))
        if i:  # (the input needs no gradient)
            delta = mm(delta, ws[i].T) * (1 - hs[i] ** 2)
    bwd = count[0]
    bumped = [w.copy() for w in ws]
    bumped[0][0, 0] += 1e-6
    fd = (forward(bumped)[0] - loss) / 1e-6
    if abs(fd - grads[0][0, 0]) > 1e-4 * max(1.0, abs(fd)):
        raise ValueError("the hand-written backward pass is not the gradient")
    return fwd, bwd, sum(w.size for w in ws)


@shows("a tanh network's backward pass, its matrix products' multiply-adds counted, against "
       "its forward pass and against one forward pass per weight (finite differences)")  # fmt: skip
@functools.cache
def backprop_cost() -> tuple[bool, str]:
    """The backward pass costs a small multiple of the forward pass (about two: a product for
    the weights' gradient and one for the input's, per layer); a difference quotient per
    weight would cost one forward pass per weight."""
    fwd, bwd, weights = _mlp_costs()
    ratio = bwd / fwd
    return 1.5 <= ratio <= 2.5 < weights, (
        f"backward {bwd:,} multiply-adds, {ratio:.2f} forward passes; {weights:,} weights"
    )


@shows("a linear model's gradient on a batch of 20 and on all 1,000 examples: the multiply-"
       "adds of each, counted")  # fmt: skip
def batch_cost() -> tuple[bool, str]:
    """The gradient of a mean squared error over a batch costs in proportion to the batch."""
    rng = np.random.default_rng(0)
    x, y, w = rng.normal(size=(1000, 5)), rng.normal(size=1000), np.zeros(5)

    def cost(idx: np.ndarray) -> int:
        r = x[idx] @ w - y[idx]  # forward: |B| · 5
        _ = x[idx].T @ r  # backward: 5 · |B|
        return 2 * idx.size * x.shape[1]

    part, full = cost(np.arange(20)), cost(np.arange(1000))
    return part * 1000 == full * 20, f"{part} against {full} multiply-adds: {part / full:.3g}"


@shows(
    "the card's regression (1,000 examples, 5 weights) from zero: one epoch of batch-20 steps "
    "(50 steps) against one full-batch step, both at lr 0.05, the full loss after"
)
def cheap_steps_farther() -> tuple[bool, str]:
    """The same data read once, as 50 noisy steps or as one exact step, at the same rate."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 5))
    y = x @ np.ones(5) + 0.1 * rng.normal(size=1000)

    def loss(w: np.ndarray) -> float:
        return float(((x @ w - y) ** 2).mean())

    def grad(w: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return 2 * x[idx].T @ (x[idx] @ w - y[idx]) / idx.size

    w = np.zeros(5)
    for idx in rng.permutation(1000).reshape(50, 20):
        w = w - 0.05 * grad(w, idx)
    exact = np.zeros(5) - 0.05 * grad(np.zeros(5), np.arange(1000))
    return loss(w) < 0.5 * loss(
        exact
    ), f"loss {loss(w):.3g} after 50 batch steps, {loss(exact):.3g}"


@shows("gradient descent (η = 0.1) on f = x² - y² from (1, 0): where it stops and the "
       "Hessian's eigenvalues there")  # fmt: skip
def saddle_stop() -> tuple[bool, str]:
    """Started on the ridge's axis, descent walks to the stationary point (0, 0), a saddle."""
    p = np.array([1.0, 0.0])
    for _ in range(200):
        p = p - 0.1 * np.array([2 * p[0], -2 * p[1]])
    eig = np.linalg.eigvalsh(np.diag([2.0, -2.0]))
    holds = bool(float(np.abs(p).max()) < 1e-9 and eig.min() < 0 < eig.max())
    return holds, f"stops at ({p[0]:.1e}, {p[1]:.1e}), eigenvalues {eig[0]:g}, {eig[1]:g}"


def _double_well() -> tuple[object, list[float]]:
    from descentlab.problems import landscapes

    f = landscapes.get("double_well")
    return f, [p.x[0] for p in f.points]


@shows("the double well x⁴/4 - x² + 0.3x at its three stationary points: (f(x + h) - f(x))/h²"
       " at h = 10⁻³ against ½ f''(x) and f''(x)")  # fmt: skip
def taylor_half() -> tuple[bool, str]:
    """Near a stationary point the change is second order with the factor ½."""

    def f(x: float) -> float:
        return x**4 / 4 - x**2 + 0.3 * x

    _, xs = _double_well()
    h, off_half, off_whole = 1e-3, 0.0, math.inf
    for x in xs:
        second = 3 * x**2 - 2
        q = (f(x + h) - f(x)) / h**2
        off_half = max(off_half, abs(q - second / 2))
        off_whole = min(off_whole, abs(q - second))
    return (
        off_half < 0.01 < off_whole,
        f"off ½f'' by ≤ {off_half:.1e}, off f'' by ≥ {off_whole:.2g}",
    )


@shows("x³, x⁴ and -x⁴ at 0, each with f'' = 0 there: f at ±0.1 against f(0)")
def flat_second_derivative() -> tuple[bool, str]:
    """f'' = 0 at 0 for all three; x³ has no extremum there, x⁴ a minimum, -x⁴ a maximum."""
    kinds = []
    for f in (lambda x: x**3, lambda x: x**4, lambda x: -(x**4)):
        left, right = f(-0.1) - f(0.0), f(0.1) - f(0.0)
        kinds.append(
            "minimum" if left > 0 < right else "maximum" if left < 0 > right else "neither"
        )
    return kinds == ["neither", "minimum", "maximum"], "x³, x⁴, -x⁴: " + ", ".join(kinds)


@shows("½xᵀHx at 0 for H = diag(2, 1), diag(2, -1) and diag(-2, -1): its change along 16 "
       "directions of length 0.1")  # fmt: skip
@functools.cache
def eigenvalue_test() -> tuple[bool, str]:
    """All eigenvalues positive: f rises in every direction (a minimum); mixed: it rises in some
    and falls in others (a saddle) -- though the eigenvalues' sum is positive."""
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    d = 0.1 * np.stack([np.cos(angles), np.sin(angles)], 1)
    kinds = []
    for eig in ((2.0, 1.0), (2.0, -1.0), (-2.0, -1.0)):
        change = 0.5 * (d**2 @ np.array(eig))
        kinds.append("minimum" if change.min() > 0 else "maximum" if change.max() < 0 else "saddle")
    return kinds == ["minimum", "saddle", "maximum"], "diag(2, 1), diag(2, -1), diag(-2, -1): " + (
        ", ".join(kinds)
    )


@shows("torch's autograd gradient of ½‖Xw - y‖² (100 × 3) at two w against Xᵀ(Xw - y), "
       "its linearity, and the gradient at the normal equations' solution")  # fmt: skip
def least_squares_gradient() -> tuple[bool, str]:
    """The typed gradient against autograd's, g(w₁) + g(w₂) - g(0) against g(w₁ + w₂), and the
    gradient at XᵀXw = Xᵀy."""
    import torch

    torch.manual_seed(0)
    x, y = torch.randn(100, 3, dtype=torch.float64), torch.randn(100, dtype=torch.float64)

    def grad(w: torch.Tensor) -> torch.Tensor:
        w = w.clone().requires_grad_(True)
        (0.5 * ((x @ w - y) ** 2).sum()).backward()
        return w.grad

    w1, w2 = torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    typed = max(float((grad(w) - x.T @ (x @ w - y)).abs().max()) for w in (w1, w2))
    plus = float((grad(w1) - x.T @ (x @ w1 + y)).abs().max())
    zero = torch.zeros(3, dtype=torch.float64)
    linear = float((grad(w1) + grad(w2) - grad(zero) - grad(w1 + w2)).abs().max())
    at = float(grad(torch.linalg.solve(x.T @ x, x.T @ y)).abs().max())
    holds = max(typed, linear, at) < 1e-9 < 1.0 < plus
    return holds, (
        f"Xᵀ(Xw - y) off autograd by {typed:.1e} (Xᵀ(Xw + y) by {plus:.3g}); "
        f"linearity off by {linear:.1e}; gradient {at:.1e} at the normal equations"
    )


def _noisy_floor(rates: np.ndarray, chains: int = 500, seed: int = 0) -> float:
    """Noisy gradient descent on ½w² (gradient w + ξ, ξ ~ N(0, 1)) from the optimum, the rate
    of step t ``rates[t]``: E[w²] at the end over ``chains`` independent chains."""
    rng = np.random.default_rng(seed)
    w = np.zeros(chains)
    for a in rates:
        w = w - a * (w + rng.standard_normal(chains))
    return float((w**2).mean())


@shows("noisy gradient descent on ½w² from its minimum, 500 chains: E[w²] after 300 steps "
       "at α = 0.1 and α = 0.05")  # fmt: skip
def constant_rate_floor() -> tuple[bool, str]:
    """A constant rate leaves a floor, about proportional to the rate (ασ²/(2 - α))."""
    at, half = _noisy_floor(np.full(300, 0.1)), _noisy_floor(np.full(300, 0.05), seed=1)
    return at > 0.03 and 1.6 < at / half < 2.4, f"E[w²] {at:.4f} at α = 0.1, {half:.4f} at 0.05"


@shows("noisy gradient descent on ½w² from its minimum, 500 chains, 300 steps: E[w²] at a "
       "constant α = 0.1 against α_t = 1/(t + 10)")  # fmt: skip
@functools.cache
def decaying_rate_settles() -> tuple[bool, str]:
    """A decaying rate drives the spread towards 0; a constant one keeps its floor."""
    steady = _noisy_floor(np.full(300, 0.1))
    decay = _noisy_floor(1.0 / (np.arange(300) + 10.0), seed=1)
    return decay < 0.2 * steady, f"E[w²] {steady:.4f} at the constant rate, {decay:.5f} decaying"


def _walk_spread(rates: np.ndarray, noise: np.ndarray, marks: tuple[int, ...]) -> list[float]:
    """A pure noise walk w ← w - η_t ξ_t, one chain per row of ``noise``: its variance at each
    mark."""
    w = np.cumsum(rates[None, :] * noise, 1)
    return [float(w[:, m - 1].var()) for m in marks]


@shows("the noise walk w ← w - η_t ξ_t (300 chains): its variance at steps 100 and 1,000 "
       "for η_t = 0.1, 0.1/√t and 0.1/t")  # fmt: skip
@functools.cache
def noise_walk() -> tuple[bool, str]:
    """Constant: the noise's sum keeps spreading (×10); 1/√t (Σ η² = ∞): still spreading;
    1/t (Σ η² < ∞): it settles."""
    t = np.arange(1, 1001, dtype=float)
    noise = np.random.default_rng(0).standard_normal((300, t.size))
    grow = {name: (lambda v: v[1] / v[0])(_walk_spread(r, noise, (100, 1000)))
            for name, r in (("constant", np.full(1000, 0.1)), ("1/√t", 0.1 / np.sqrt(t)),
                            ("1/t", 0.1 / t))}  # fmt: skip
    holds = grow["constant"] > 7 and grow["1/√t"] > 1.2 and grow["1/t"] < 1.05
    return holds, "variance ×" + ", ×".join(f"{v:.2f} ({k})" for k, v in grow.items())


@shows("descent on log cosh(w - 1000) (|gradient| < 1) from 0 for 10⁴ steps: the distance "
       "left at η_t = 0.5 · 0.9^t (Σ η = 5) and at η_t = 10/√(t + 1) (Σ η = ∞)")  # fmt: skip
@functools.cache
def travel_budget() -> tuple[bool, str]:
    """With |∇f| ≤ 1 the iterate travels at most Σ η_t: a finite sum cannot reach a far start's
    optimum, a divergent one does."""
    left = {}
    for name, rate in (
        ("geometric", lambda t: 0.5 * 0.9**t),
        ("10/√t", lambda t: 10 / math.sqrt(t + 1)),
    ):
        w = 0.0
        for t in range(10_000):
            w -= rate(t) * math.tanh(w - 1000.0)
        left[name] = abs(w - 1000.0)
    holds = left["geometric"] > 990 and left["10/√t"] < 1
    return holds, f"left {left['geometric']:.1f} (geometric), {left['10/√t']:.2g} (10/√t)"


@shows("η/t^p for p = 0.4, 0.5, 0.75, 1 and 1.5: the sums of η_t and of η_t² over t in "
       "[10³, 10⁴) against [10⁴, 10⁵) (a sum that does not shrink there diverges)")  # fmt: skip
@functools.cache
def power_decays() -> tuple[bool, str]:
    """Which of Robbins and Monro's two conditions each power meets."""
    t = np.arange(1000, 100_000, dtype=float)
    meets = {}
    for p in (0.4, 0.5, 0.75, 1.0, 1.5):
        one = [float((t[i : i + n] ** -p).sum()) for i, n in ((0, 9000), (9000, 90_000))]
        two = [float((t[i : i + n] ** (-2 * p)).sum()) for i, n in ((0, 9000), (9000, 90_000))]
        meets[p] = (one[1] >= 0.99 * one[0], two[1] < 0.99 * two[0])  # (Σ η = ∞, Σ η² < ∞)
    want = {0.4: (True, False), 0.5: (True, False), 0.75: (True, True), 1.0: (True, True),
            1.5: (False, True)}  # fmt: skip
    return meets == want, "; ".join(
        f"p = {p}: Σ η = ∞ {a}, Σ η² < ∞ {b}" for p, (a, b) in meets.items()
    )


@shows("torch's StepLR, ExponentialLR, CosineAnnealingLR and LinearLR at base "
       "rates 0.1 and 0.3, 10 steps: the rates' ratio; descentlab's step, exponential and "
       "cosine schedules against torch's")  # fmt: skip
@functools.cache
def schedule_factors() -> tuple[bool, str]:
    """Every torch scheduler's rate is the base times a factor of the step (the ratio of two
    bases' rates stays 3); descentlab's schedules give the same rates."""
    import torch

    from descentlab.schedules import torchlike as S

    lr = torch.optim.lr_scheduler
    makers = {
        "step": (lambda o: lr.StepLR(o, 3, 0.5), lambda b: S.step(3, 0.5, base=b)),
        "exponential": (lambda o: lr.ExponentialLR(o, 0.9), lambda b: S.exponential(0.9, base=b)),
        "cosine": (lambda o: lr.CosineAnnealingLR(o, 10), lambda b: S.cosine(10, base=b)),
        "linear": (lambda o: lr.LinearLR(o, 0.5, 1.0, 4), None),
    }
    ratio_off = ours_off = 0.0
    for torch_made, ours in makers.values():
        rates = []
        for base in (0.1, 0.3):
            opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
            sched, seen = torch_made(opt), []
            for _ in range(10):
                seen.append(opt.param_groups[0]["lr"])
                opt.step()
                sched.step()
            rates.append(np.array(seen))
        ratio_off = max(ratio_off, float(np.abs(rates[1] / rates[0] - 3).max()))
        if ours is not None:
            mine = np.array([ours(0.1)(t) for t in range(10)])
            ours_off = max(ours_off, float(np.abs(mine - rates[0]).max()))
    holds = ratio_off < 1e-9 and ours_off < 1e-12
    return (
        holds,
        f"ratio off 3 by {ratio_off:.1e}; descentlab's rates off torch's by {ours_off:.1e}",
    )


def _matches(
    got: np.ndarray, right: np.ndarray, wrong: np.ndarray, said: str, other: str
) -> tuple[bool, str]:
    """Whether ``got`` is ``right`` to 1e-12 and off ``wrong`` by more than 1e-3, in words."""
    off, far = float(np.abs(got - right).max()), float(np.abs(got - wrong).max())
    return off < 1e-12 < 1e-3 < far, f"off {said} by {off:.1e}, off {other} by {far:.2g}"


def velocities(grads: np.ndarray, beta: float, lr: float = 0.05) -> np.ndarray:
    """descentlab's Momentum (the velocity form) fed ``grads``: each step's Δw, the velocity."""
    import torch

    from descentlab.optim import Momentum

    w = torch.nn.Parameter(torch.zeros(grads.shape[1], dtype=torch.float64))
    opt = Momentum([w], lr=lr, momentum=beta, form="velocity")
    out = []
    for g in grads:
        before = w.detach().clone()
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append((w.detach() - before).numpy())
    return np.array(out)


@shows("descentlab's Momentum (velocity form, β₁ = 0.9, η = 0.05) on 30 random gradients: "
       "each velocity against β₁m - η∇L and (1 - β₁)m - η∇L")  # fmt: skip
def velocity_recursion() -> tuple[bool, str]:
    """The velocity keeps the fraction β₁ of its last value and adds -η∇L."""
    g = np.random.default_rng(0).normal(size=(30, 2))
    m = velocities(g, 0.9)
    prev = np.vstack([np.zeros((1, 2)), m[:-1]])
    return _matches(m, 0.9 * prev - 0.05 * g, 0.1 * prev - 0.05 * g, "β₁m - η∇L", "(1 - β₁)m - η∇L")


@shows("descentlab's Momentum (velocity form, β₁ = 0.9, η = 0.05) on 30 random gradients: its "
       "last velocity against -η Σ_k β₁^(t-k) ∇L_k and -η Σ_k β₁^k ∇L_k")  # fmt: skip
def velocity_unrolled() -> tuple[bool, str]:
    """The velocity weighs the newest gradient 1 and the one k steps older β₁^k."""
    g = np.random.default_rng(1).normal(size=(30, 2))
    m = velocities(g, 0.9)[-1]
    k = np.arange(1, 31)
    recent, oldest = -0.05 * (0.9 ** (30 - k)) @ g, -0.05 * (0.9**k) @ g
    return _matches(m, recent, oldest, "the newest-first sum", "the oldest-first")


@shows("descentlab's Momentum (velocity form) at β₁ = 0 and β₁ = 0.5 against descentlab's SGD, "
       "20 random gradients at η = 0.05: the largest difference of the iterates")  # fmt: skip
def momentum_zero_is_descent() -> tuple[bool, str]:
    """With β₁ = 0 the velocity is the current step: plain gradient descent."""
    import torch

    from descentlab.optim import SGD

    g = np.random.default_rng(2).normal(size=(20, 2))
    w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt, sgd = SGD([w], lr=0.05), []
    for gt in g:
        w.grad = torch.tensor(gt, dtype=torch.float64)
        opt.step()
        sgd.append(w.detach().clone().numpy())
    zero, half = (np.cumsum(velocities(g, b), 0) for b in (0.0, 0.5))
    return _matches(np.array(sgd), zero, half, "β₁ = 0", "β₁ = 0.5")


@shows("descentlab's Momentum (velocity form, β = 0.9, η = 0.05) after 40 steps of a gradient "
       "that flips sign each step, against a constant one: |velocity| over η")  # fmt: skip
def flipping_terms_cancel() -> tuple[bool, str]:
    """The flipping gradients' terms cancel (|m| → η/(1 + β)); a constant one's add up
    (→ η/(1 - β))."""
    flips = np.where(np.arange(40) % 2 == 0, 1.0, -1.0)[:, None]
    flipped = abs(float(velocities(flips, 0.9)[-1, 0])) / 0.05
    constant = abs(float(velocities(np.ones((40, 1)), 0.9)[-1, 0])) / 0.05
    return flipped < 1.0 < 5.0 < constant, f"|m|/η {flipped:.3f} flipping, {constant:.2f} constant"


@shows("the ravine 0.05x² + 5y² (the card's terrain): |∂f/∂y| against |∂f/∂x| at 50 random "
       "points of its window")  # fmt: skip
def steep_component() -> tuple[bool, str]:
    """Where both coordinates are off the floor by comparable amounts, the steep direction's
    component dominates the gradient."""
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1.5, 1.5, 50), rng.uniform(-1.5, 1.5, 50)
    gx, gy = np.abs(0.1 * x), np.abs(10 * y)
    share = float(np.median(gy / (gx + gy)))
    return share > 0.9, f"the median share of |∂f/∂y| in |∂f/∂x| + |∂f/∂y|: {share:.3f}"


@shows("f = 3xy² + 4x³ - 5y² + 1 at (1, 2): autograd's ∂f/∂x against the difference quotient "
       "of x ↦ f(x, 2) (y held) and against the one along (1, 1)/√2 (both moving)")  # fmt: skip
def partial_holds_others() -> tuple[bool, str]:
    """A partial derivative is the one-variable derivative with the others held fixed."""
    import torch

    def f(x: float, y: float) -> float:
        return 3 * x * y**2 + 4 * x**3 - 5 * y**2 + 1

    p = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    (3 * p[0] * p[1] ** 2 + 4 * p[0] ** 3 - 5 * p[1] ** 2 + 1).backward()
    fx, h = float(p.grad[0]), 1e-6
    held = (f(1 + h, 2) - f(1 - h, 2)) / (2 * h)
    s = h / math.sqrt(2)
    both = (f(1 + s, 2 + s) - f(1 - s, 2 - s)) / (2 * h)
    return abs(held - fx) < 1e-6 < 1.0 < abs(both - fx), (
        f"∂f/∂x {fx:.6g}; y held {held:.6g}; both moving {both:.6g}"
    )


# ------------------------------------------------------------------------------------------
# the references the cards' typed formulas are evaluated against: each takes the formula's
# symbols as typed (``μ``, ``β₁``) and computes the same quantity another way


def laplace_nll(v: dict[str, float]) -> float:
    """-log of torch's Laplace(μ, b) density at y."""
    import torch

    d = torch.distributions.Laplace(
        torch.tensor(v["μ"], dtype=torch.float64), torch.tensor(v["b"], dtype=torch.float64)
    )
    return -float(d.log_prob(torch.tensor(v["y"], dtype=torch.float64)))


def normal_nll(v: dict[str, float]) -> float:
    """-log of torch's Normal(μ, σ) density at y."""
    import torch

    d = torch.distributions.Normal(
        torch.tensor(v["μ"], dtype=torch.float64), torch.tensor(v["σ"], dtype=torch.float64)
    )
    return -float(d.log_prob(torch.tensor(v["y"], dtype=torch.float64)))


def finite_population(v: dict[str, float]) -> float:
    """The variance of the mean of B of N fixed numbers drawn without replacement (every
    subset enumerated) over the variance with replacement (σ²/B)."""
    import itertools

    n, b = int(v["N"]), int(v["B"])
    x = np.random.default_rng(0).normal(size=n)
    means = np.array([x[list(c)].mean() for c in itertools.combinations(range(n), b)])
    return float(means.var() / (x.var() / b))


def error_factor(v: dict[str, float]) -> float:
    """descentlab's SGD at rate η, one step on λ(w - 2)²/2 from w = 3: the error after over
    the error before."""
    import torch

    from descentlab.optim import SGD

    w = torch.nn.Parameter(torch.tensor([3.0], dtype=torch.float64))
    opt = SGD([w], lr=v["η"])
    w.grad = v["λ"] * (w.detach() - 2)
    opt.step()
    return (w.item() - 2) / (3 - 2)


def stability_edge(v: dict[str, float]) -> float:
    """The largest rate on a grid of 1,001 in [1/L, 3/L] at which gradient descent on
    diag(L, L/7) has not grown after 150 steps: the divergence limit, found by running."""
    big = v["L"]
    etas = np.linspace(1 / big, 3 / big, 1001)
    x = np.ones((etas.size, 2))
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(150):
            x = x - etas[:, None] * np.array([big, big / 7]) * x
        stable = np.abs(x).max(1) <= 1
    return float(etas[stable].max())


def inverse_squares(_: dict[str, float]) -> float:
    """Σ 1/t² summed to N = 10⁴, plus the tail's Euler-Maclaurin terms 1/N - 1/(2N²) +
    1/(6N³) (the next is below 10⁻²⁰)."""
    n = 10**4
    t = np.arange(n, 0, -1, dtype=float)
    return float((1 / t**2).sum()) + 1 / n - 1 / (2 * n**2) + 1 / (6 * n**3)


def velocity_limit(v: dict[str, float]) -> float:
    """descentlab's Momentum (velocity form) after 60 steps of the constant gradient ∇L."""
    return float(velocities(np.full((60, 1), v["∇L"]), v["β₁"], lr=v["η"])[-1, 0])


def impulse_weight(v: dict[str, float]) -> float:
    """descentlab's Momentum (velocity form): one gradient, then zeros; the velocity k steps
    later over the velocity it made."""
    k = int(v["k"])
    grads = np.zeros((k + 1, 1))
    grads[0] = 1.0
    m = velocities(grads, v["β"], lr=1.0)[:, 0]
    return float(m[k] / m[0])


def _autograd(f: Callable[[Any], Any], *at: float) -> list[float]:
    import torch

    p = torch.tensor(at, dtype=torch.float64, requires_grad=True)
    f(p).backward()
    return p.grad.tolist()


def autograd_cubic(v: dict[str, float]) -> float:
    """autograd's derivative of 3x³ - 2x + 1 at x."""
    return _autograd(lambda p: 3 * p[0] ** 3 - 2 * p[0] + 1, v["x"])[0]


def autograd_power(v: dict[str, float]) -> float:
    """autograd's derivative of xⁿ at x."""
    return _autograd(lambda p: p[0] ** v["n"], v["x"])[0]


def autograd_partial(coordinate: int) -> Callable[[dict[str, float]], float]:
    """autograd's partial derivative of 3xy² + 4x³ - 5y² + 1 in x (0) or y (1)."""

    def partial(v: dict[str, float]) -> float:
        f = lambda p: 3 * p[0] * p[1] ** 2 + 4 * p[0] ** 3 - 5 * p[1] ** 2 + 1  # noqa: E731
        return _autograd(f, v["x"], v["y"])[coordinate]

    return partial
