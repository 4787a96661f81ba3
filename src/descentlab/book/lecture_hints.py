"""The lectures' exercises' worked solutions (hints 000-004) bound to what computes them.

Two shapes hold most of their sentences:

* a **typed formula** (``f'(w) = 4w³ - 4w``, ``q = (√κ-1)/(√κ+1)``, ``γG + (1 - γ)g²``): a
  :func:`~descentlab.book.typed.typed` row evaluates the formula as the page types it
  (:func:`~descentlab.book.typed.value`) at a few bindings against the same quantity
  computed another way -- one step of descentlab's optimizer, autograd, a recursion iterated,
  an enumeration -- and its opposite is the formula's
  :func:`~descentlab.book.typed.nearest_wrong` (a sign turned, an exponent raised), which
  the run shows is not the reference: a page that types a slipped formula holds the
  opposite, or neither phrase, and is ✘;
* a **conceptual sentence** ("the log keeps the argmax", "at test time one example's output
  no longer depends on the others in its batch"): a claim row with a tiny instrumented run
  whose opposite is what the misconception would say.

The rows are ``(name, said, opposite, demonstration, home)``, as
:data:`~descentlab.book.hint_claims.CLAIMS` holds them (it appends :data:`CLAIMS`); a
demonstration is a function of this module or the name of a claim whose run it shares. The
sentences of these hints that nothing can run are in :data:`UNBACKED`, each with why.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from descentlab.book.checks import shows as _shows
from descentlab.book.typed import points, typed

__all__ = ["CLAIMS", "UNBACKED"]

_Demo = Callable[[], tuple[bool, str]]


def _one_sgd_step(grad: Callable[[Any], Any], w0: float, lr: float) -> float:
    """descentlab's SGD: one step from ``w0`` on the gradient ``grad``: where it lands."""
    import torch

    from descentlab.optim import SGD

    w = torch.nn.Parameter(torch.tensor([w0], dtype=torch.float64))
    w.grad = grad(w.detach())
    SGD([w], lr=lr).step()
    return float(w.detach()[0])


def _parabola_factor(η: float) -> float:
    """one step of descentlab's SGD on (x - 2)² + 2 from x = 4: the error after over before"""
    return (_one_sgd_step(lambda x: 2 * (x - 2), 4.0, η) - 2) / 2


def _quadratic_factor(η: float, a: float) -> float:
    """one step of descentlab's SGD on aw²/2 from w = 1: where w lands"""
    return _one_sgd_step(lambda w: a * w, 1.0, η)


def _autograd(w: float, order: int = 1) -> float:
    """autograd's derivative of the exercise's f(w) = w⁴ - 2w²"""
    import torch

    x = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    (d,) = torch.autograd.grad(x**4 - 2 * x**2, x, create_graph=True)
    if order == 2:
        (d,) = torch.autograd.grad(d, x)
    return float(d.detach())


def _autograd_second(w: float) -> float:
    """autograd's second derivative of the exercise's f(w) = w⁴ - 2w²"""
    return _autograd(w, 2)


def _missed_by_all(n: float) -> float:
    """the share of all n-draw bootstrap samples of n examples (every one enumerated) that
    miss example 0"""
    draws = list(itertools.product(range(int(n)), repeat=int(n)))
    return sum(0 not in d for d in draws) / len(draws)


def _steps_to_shrink(q: float) -> float:
    """the t at which qᵗ crosses e⁻⁵, found by bisection on qᵗ (no logarithm)"""
    lo, hi = 0.0, 1.0
    while q**hi > np.exp(-5.0):
        hi *= 2
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if q**mid > np.exp(-5.0) else (lo, mid)
    return hi


def _gd_rate(κ: float) -> float:
    """gradient descent at its best rate 2/(1 + κ) on curvatures 1 and κ: the larger factor
    one step of descentlab's SGD shrinks the error by"""
    lr = 2 / (1 + κ)
    return max(abs(_quadratic_factor(lr, a)) for a in (1.0, κ))


def _heavy_ball_rate(κ: float) -> float:
    """heavy ball at its optimal η = 4/(√κ + 1)² (curvatures 1/κ to 1) and β = q²: the
    spectral radius of its two-step map on the extreme curvatures (numpy's eigenvalues)"""
    q = (np.sqrt(κ) - 1) / (np.sqrt(κ) + 1)
    lr, beta = 4 / (1 + np.sqrt(1 / κ)) ** 2, q**2
    return max(float(np.abs(np.linalg.eigvals([[1 + beta - lr * h, -beta], [1.0, 0.0]])).max())
               for h in (1 / κ, 1.0))  # fmt: skip


def _stationary_variance(η: float, σ: float, h: float) -> float:
    """the variance recursion of SGD on hw²/2 with gradient noise σ, v ← (1 - ηh)²v + η²σ²,
    iterated to its fixed point"""
    v = 0.0
    for _ in range(2000):
        v = (1 - η * h) ** 2 * v + η**2 * σ**2
    return v


def _rmsprop_average(γ: float, G: float, g: float) -> float:
    """descentlab's RMSprop's square_avg after one gradient g from square_avg G"""
    import torch

    from descentlab.optim import RMSprop

    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = RMSprop([w], lr=0.01, alpha=γ)
    w.grad = torch.ones_like(w)
    opt.step()  # the state made; then set to G
    opt.state[w]["square_avg"].fill_(G)
    w.grad = torch.full_like(w, g)
    opt.step()
    return float(opt.state[w]["square_avg"][0])


def _adam_first_step(lr: float, g: float, ε: float) -> float:
    """descentlab's Adam's first step on the gradient g (minus the move: the update's size)"""
    import torch

    from descentlab.optim import Adam

    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    w.grad = torch.full_like(w, g)
    Adam([w], lr=lr, eps=ε).step()
    return -float(w.detach()[0])


def _adadelta_step(H: float, G: float, g: float, ε: float) -> float:
    """descentlab's Adadelta (ρ = 0.5) from acc_delta H: the step it takes on the gradient g,
    its square_avg G read after the step (the average that already holds g)"""
    import torch

    from descentlab.optim import Adadelta

    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = Adadelta([w], rho=0.5, eps=ε)
    w.grad = torch.ones_like(w)
    opt.step()
    opt.state[w]["acc_delta"].fill_(H)
    opt.state[w]["square_avg"].fill_((G - 0.5 * g * g) / 0.5)  # so that it holds G after g
    before = float(w.detach()[0])
    w.grad = torch.full_like(w, g)
    opt.step()
    return float(w.detach()[0]) - before


def _three_terms(ε: float, f: float, Ef: float, fh: float) -> float:
    """t - f̂ for t = f + ε, by the definition of t"""
    return (f + ε) - fh


def _look_ahead_moved(xt: float, rho: float, v: float, v_new: float) -> float:
    """x_new + ρv_new with x = x̃ - ρv and x_new = x + v_new, each step of the definition"""
    x = xt - rho * v
    x_new = x + v_new
    return x_new + rho * v_new


def _ema_window(beta: float) -> float:
    """the mean age, plus one, of the weights an exponential moving average at β gives the
    past values: the EMA run on a unit impulse for 10/(1 - β) steps"""
    weights, avg = [], 0.0
    for k in range(10 * round(1 / (1 - beta))):
        avg = beta * avg + (1 - beta) * (1.0 if k == 0 else 0.0)
        weights.append(avg)
    w = np.asarray(weights)
    return float((w * np.arange(1, len(w) + 1)).sum() / w.sum())


@_shows(
    "an EMA run on a unit impulse at β = 0.9 and at 0.999: the mean age of its weights, "
    "plus one (the steps it averages over)"
)
def _ema_windows() -> tuple[bool, str]:
    fast, slow = _ema_window(0.9), _ema_window(0.999)
    holds = abs(fast / 10 - 1) < 0.05 and abs(slow / 1000 - 1) < 0.05
    return holds, f"{fast:.3g} steps at β = 0.9, {slow:.4g} at 0.999"


@_shows(
    "Adam's second moment, v ← β₂v + (1 - β₂)g², fed gradients 1 + noise 0.5 for 6,000 "
    "steps: its relative spread over the last 3,000, at β₂ = 0.999 and at 0.9"
)
def _stable_denominator() -> tuple[bool, str]:
    noise = np.random.default_rng(0).standard_normal(6000)
    spread = {}
    for beta2 in (0.999, 0.9):
        v, seen = 0.0, []
        for n in noise:
            v = beta2 * v + (1 - beta2) * (1 + 0.5 * n) ** 2
            seen.append(v)
        late = np.asarray(seen[3000:])
        spread[beta2] = float(late.std() / late.mean())
    holds = spread[0.999] < 0.3 * spread[0.9]
    return holds, f"spread {spread[0.999]:.3f} at 0.999, {spread[0.9]:.3f} at 0.9"


@_shows(
    "the halving rule as the page types it, run in gradient descent on w²/2 at η = 2.5 "
    "(a step that diverges) and on a noisy plateau: the loss after 60 steps, the rate's rises"
)
def _typed_halving_rule() -> tuple[bool, str]:
    """The rule's code, as the hint types it, executed each step (``loss``, ``previous``,
    ``lr`` its names): it must tame a divergent rate, and on a plateau never raise it."""
    rule = "if loss > previous: lr /= 2"

    def run(loss_of: Callable[[float, int], float], lr: float) -> tuple[float, list[float]]:
        names: dict[str, float] = {"lr": lr, "previous": np.inf}
        w, rates = 1.0, []
        for t in range(60):
            names["loss"] = loss_of(w, t)
            exec(rule, {}, names)  # the hint's own line of code
            names["previous"] = names["loss"]
            rates.append(names["lr"])
            w -= names["lr"] * w
        return names["loss"], rates

    noise = np.random.default_rng(0).standard_normal(60)
    diverging, _ = run(lambda w, t: w * w / 2, 2.5)
    _, plateau = run(lambda w, t: 1.0 + 0.01 * noise[t], 0.1)
    rises = sum(b > a for a, b in itertools.pairwise(plateau))
    holds = diverging < 1e-6 and rises == 0
    said = f"loss {diverging:.2g} from 0.5 at η = 2.5; on the plateau the rate rose {rises} times"
    return holds, said


@_shows(
    "the lecture's momentum and look-ahead Nesterov loops (book.reference, α = 0.9) on the "
    "steep, well-conditioned 10w²/2 from 1 at η = 0.1 (ηh = 1): the sign changes of w over 30 "
    "steps"
)
def _nesterov_brakes() -> tuple[bool, str]:
    from descentlab.book.reference import lookahead_nesterov, velocity

    def flips(path: np.ndarray) -> int:
        return int((np.diff(np.sign(path[:, 0])) != 0).sum())

    grad = lambda w: 10 * w  # noqa: E731
    heavy = flips(velocity(np.ones(1), grad, 0.1, 0.9, 30))
    ahead = flips(lookahead_nesterov(np.ones(1), grad, 0.1, 0.9, 30))
    return ahead < heavy, f"momentum changes sign {heavy} times, Nesterov {ahead}"


@_shows("the log of 1,000 random likelihoods: whether it keeps their order and their argmax")
def _log_keeps_order() -> tuple[bool, str]:
    p = np.random.default_rng(0).random(1000)
    order = np.argsort(p)
    kept = bool(np.all(np.diff(np.log(p)[order]) > 0)) and np.argmax(np.log(p)) == np.argmax(p)
    return kept, f"order kept: {kept}; argmax {np.argmax(p)} and {np.argmax(np.log(p))}"


@_shows(
    "autograd on the squared errors of 8 examples: the gradient of their sum against the sum "
    "of their gradients, and the mean of every 2-example batch's gradient (times 4)"
)
def _sum_of_gradients() -> tuple[bool, str]:
    import torch

    x = torch.linspace(-1, 2, 8, dtype=torch.float64)
    w = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    (whole,) = torch.autograd.grad(((w * x - 1) ** 2).sum(), w)
    each = torch.stack([torch.autograd.grad((w * xi - 1) ** 2, w)[0] for xi in x])
    batches = torch.stack([4 * each[list(b)].sum() for b in itertools.combinations(range(8), 2)])
    holds = abs(float(whole - each.sum())) < 1e-12 and abs(float(batches.mean() - whole)) < 1e-9
    return holds, (
        f"∇Σ {float(whole):.6g}, Σ∇ {float(each.sum()):.6g}, the batches' mean "
        f"{float(batches.mean()):.6g}"
    )


_DATA = np.array([0.3, 1.1, 1.7, 2.0, 4.2, 5.0, 7.5])  # a sample the likelihood demos share


@_shows(
    "torch's Laplace(μ, b) log-densities of 7 values, summed and negated, against the typed "
    "Σ|xᵢ - μ|/b + N log(2b) and its misread twin"
)
def _laplace_nll() -> tuple[bool, str]:
    import torch

    mu, b, n = 1.5, 0.7, len(_DATA)
    at = torch.tensor([mu, b], dtype=torch.float64)
    nll = -float(torch.distributions.Laplace(at[0], at[1]).log_prob(torch.tensor(_DATA)).sum())
    typed = float(np.abs(_DATA - mu).sum() / b + n * np.log(2 * b))
    wrong = float(np.abs(_DATA - mu).sum() / b - n * np.log(2 * b))
    holds = abs(nll - typed) < 1e-9 < abs(nll - wrong)
    return holds, f"torch {nll:.6g}, typed {typed:.6g}, with - N log(2b) {wrong:.6g}"


def _gaussian_nll(mu: np.ndarray, sigma: float) -> np.ndarray:
    """Σ (xᵢ - μ)²/(2σ²) + N log(σ√2π) over the demos' sample, at each μ."""
    r = _DATA[None, :] - np.asarray(mu, dtype=float).reshape(-1, 1)
    return (r**2).sum(1) / (2 * sigma**2) + len(_DATA) * np.log(sigma * np.sqrt(2 * np.pi))


@_shows(
    "the Gaussian negative log-likelihood over a grid of μ at σ = 1 and σ = 3: where each is "
    "least, and the ratio of their slopes"
)
def _sigma_scales() -> tuple[bool, str]:
    mus = np.linspace(0, 6, 601)
    one, three = _gaussian_nll(mus, 1.0), _gaussian_nll(mus, 3.0)
    slopes = np.diff(three) / np.diff(one)
    same = mus[one.argmin()] == mus[three.argmin()]
    holds = bool(same and np.allclose(slopes, 1 / 9))
    at = f"least at μ = {mus[one.argmin()]:.2f} and {mus[three.argmin()]:.2f}"
    return holds, f"{at}, slopes' ratio {slopes.mean():.4f}"


@_shows(
    "the Gaussian negative log-likelihood at the sample's mean over a grid of σ: the σ "
    "where it is least, against the residuals' standard deviation and their variance"
)
def _sigma_optimum() -> tuple[bool, str]:
    sigmas = np.linspace(0.5, 8, 7501)
    r2 = float(((_DATA - _DATA.mean()) ** 2).sum())
    nll = r2 / (2 * sigmas**2) + len(_DATA) * np.log(sigmas * np.sqrt(2 * np.pi))
    best, sd = float(sigmas[nll.argmin()]), float(_DATA.std())
    holds = abs(best - sd) < 2e-3 and abs(best - sd**2) > 0.5
    return holds, f"least at σ = {best:.3f}; standard deviation {sd:.3f}, variance {sd**2:.3f}"


@_shows(
    "descentlab's SGD on |w - 5| (gradient ±1) from 0, 10,000 steps at ηₜ = 1/t² and at "
    "1/t: how far each travels"
)
def _finite_sum_stops() -> tuple[bool, str]:
    ends = {}
    for label, rate in (("1/t²", lambda t: 1 / t**2), ("1/t", lambda t: 1 / t)):
        w = 0.0
        for t in range(1, 10001):
            w -= rate(t) * np.sign(w - 5)
        ends[label] = w
    holds = ends["1/t²"] < np.pi**2 / 6 + 1e-9 and abs(ends["1/t"] - 5) < 0.01
    return holds, f"ηₜ = 1/t² ends at {ends['1/t²']:.4f} (Σηₜ = π²/6), 1/t at {ends['1/t']:.2f}"


@_shows(
    "the partial sums of ηₜ and ηₜ² for ηₜ = 1/t and 1/t² at 10, 100, 1,000 and 10,000 "
    "terms: what each decade adds"
)
def _both_conditions() -> tuple[bool, str]:
    """A sum that diverges adds about as much each decade (1/t: ln 10); one that converges adds
    ten times less each decade (1/t²)."""
    t = np.arange(1, 10**4 + 1, dtype=float)

    def decades(terms: np.ndarray) -> np.ndarray:
        return np.diff(np.cumsum(terms)[[9, 99, 999, 9999]])

    sums, squares = decades(1 / t), decades(1 / t**2)
    holds = bool(sums.min() > 2.2 and np.all(squares[1:] < 0.11 * squares[:-1]))
    return holds, (
        f"each decade adds {', '.join(f'{x:.3g}' for x in sums)} to Σ1/t and "
        f"{', '.join(f'{x:.1e}' for x in squares)} to Σ1/t², the sum of ηₜ = 1/t²"
    )


@_shows(
    "a kernel of 3 fitted by least squares to map a signal to a target, by convolution and by "
    "cross-correlation: the fits' residuals, and the kernels against each other flipped"
)
def _learned_flip() -> tuple[bool, str]:
    rng = np.random.default_rng(0)
    x, target = rng.standard_normal(40), rng.standard_normal(38)
    windows = np.lib.stride_tricks.sliding_window_view(x, 3)  # correlation's rows
    corr, res_c, *_ = np.linalg.lstsq(windows, target, rcond=None)
    conv, res_v, *_ = np.linalg.lstsq(windows[:, ::-1], target, rcond=None)
    holds = bool(np.allclose(res_c, res_v) and np.allclose(conv, corr[::-1]))
    return holds, f"residuals {float(res_c[0]):.6g} and {float(res_v[0]):.6g}; flipped: {holds}"


@_shows(
    "50 classifiers that all guess at random, the one with the fewest errors on a test set of "
    "200 chosen: its test error against its error on 100,000 unseen examples"
)
def _chosen_on_test() -> tuple[bool, str]:
    rng = np.random.default_rng(0)
    test = rng.random((50, 200)) < 0.5  # each model's errors on the test set
    best = int(test.mean(1).argmin())
    unseen = float((rng.random(100_000) < 0.5).mean())
    said = float(test[best].mean())
    return said < unseen - 0.05, f"test error {said:.3f}, unseen {unseen:.3f}"


@_shows(
    "gradient descent on an under-determined least squares from 0: the weights' distance "
    "from their start at each step"
)
def _early_stop_norm() -> tuple[bool, str]:
    rng = np.random.default_rng(0)
    a, y = rng.standard_normal((10, 30)), rng.standard_normal(10)
    w, norms = np.zeros(30), []
    for _ in range(300):
        w -= 0.01 * a.T @ (a @ w - y)
        norms.append(float(np.linalg.norm(w)))
    holds = bool(np.all(np.diff(norms) > 0))
    return holds, f"distance {norms[9]:.3f} after 10 steps, {norms[-1]:.3f} after 300"


@_shows(
    "batch normalization's x̂ = (x - mean)/√(var + ε) over a batch (torch's var_mean), for 5 "
    "random inputs in batches of 1 and of 8"
)
def _one_example_erased() -> tuple[bool, str]:
    import torch

    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def normed(batch: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(batch, dim=0, unbiased=False)
        return (batch - mean) / torch.sqrt(var + 1e-5)

    one, eight = normed(x[:1]).abs().max(), normed(x).abs().max()
    said = f"largest |x̂| {float(one):.3g} in a batch of 1, {float(eight):.3g} in 8"
    return bool(one == 0 < eight), said


@_shows(
    "batch normalization over 20 training batches (x̂ from the batch's var_mean, the running "
    "averages kept as torch's BatchNorm keeps them), then at test time (x̂ from the running "
    "averages): example 0's output in two batches that differ in the others"
)
def _test_time_statistics() -> tuple[bool, str]:
    """Training normalizes with the batch's own statistics; test time with the running
    averages collected in training (torch's ``batch_norm`` at ``training=False``: its call costs
    tens of milliseconds here, the formula microseconds)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    mean, var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)

    def trained(batch: torch.Tensor) -> torch.Tensor:
        v, m = torch.var_mean(batch, dim=0, unbiased=False)
        return (batch - m) / torch.sqrt(v + 1e-5)

    for _ in range(20):  # torch's running averages: momentum 0.1, the unbiased variance
        batch = torch.randn(16, 3, generator=gen, dtype=torch.float64)
        mean.mul_(0.9).add_(0.1 * batch.mean(0))
        var.mul_(0.9).add_(0.1 * batch.var(0))
    a = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    b = torch.cat([a[:1], torch.randn(3, 3, generator=gen, dtype=torch.float64)])
    train = float((trained(a)[0] - trained(b)[0]).abs().max())
    tested = [((x - mean) / torch.sqrt(var + 1e-5))[0] for x in (a, b)]
    test = float((tested[0] - tested[1]).abs().max())
    said = f"example 0 differs by {train:.3g} in training, {test:.3g} at test time"
    return test == 0 < train, said


def _two_peaks() -> tuple[np.ndarray, np.ndarray, float]:
    """The grid, the two-peaked P (peaks at ±2, σ 0.5) on it, and its step."""
    x = np.linspace(-8, 8, 801)
    p = np.exp(-((x - 2) ** 2) / 0.5) + np.exp(-((x + 2) ** 2) / 0.5)
    return x, p / p.sum(), float(x[1] - x[0])


@functools.cache
def _kl_fits() -> dict[str, tuple[float, float]]:
    """The Gaussian Q (mean, σ) that minimizes KL(P‖Q) and the one that minimizes KL(Q‖P) over
    a grid of means and σ, P two-peaked."""
    x, p, _ = _two_peaks()
    m, s = np.meshgrid(np.linspace(-3, 3, 25), np.linspace(0.2, 3.0, 15), indexing="ij")
    q = np.exp(-((x - m[..., None]) ** 2) / (2 * s[..., None] ** 2))
    q = np.maximum(q / q.sum(-1, keepdims=True), 1e-300)
    logp = np.log(np.maximum(p, 1e-300))
    kls = {"forward": (p * (logp - np.log(q))).sum(-1), "reverse": (q * (np.log(q) - logp)).sum(-1)}
    out = {}
    for key, kl in kls.items():
        i = np.unravel_index(np.argmin(kl), kl.shape)
        out[key] = (float(m[i]), float(s[i]))
    return out


@_shows("the Gaussian Q that minimizes KL(P‖Q), P with peaks at ±2 (σ 0.5): its mean and σ")
def _forward_covers() -> tuple[bool, str]:
    m, s = _kl_fits()["forward"]
    return abs(m) < 0.2 and s > 1.5, f"mean {m:.2f}, σ {s:.2f}"


@_shows("the Gaussian Q that minimizes KL(Q‖P), P with peaks at ±2 (σ 0.5): its mean and σ")
def _reverse_picks_one() -> tuple[bool, str]:
    m, s = _kl_fits()["reverse"]
    return abs(abs(m) - 2) < 0.2 and s < 0.8, f"mean {m:.2f}, σ {s:.2f}"


@_shows(
    "descentlab's Adagrad fed the gradients 1, 2, 3: its state against the sum of their "
    "squares and their mean square"
)
def _adagrad_sum() -> tuple[bool, str]:
    import torch

    from descentlab.optim import Adagrad

    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = Adagrad([w], lr=0.01)
    for g in (1.0, 2.0, 3.0):
        w.grad = torch.full_like(w, g)
        opt.step()
    got = float(opt.state[w]["sum"][0])
    return got == 14.0, f"state {got:g}; Σg² = 14, mean g² = {14 / 3:.3g}"


@_shows(
    "the lecture's (5.12) loop and the cs231n form (book.reference) on w²/2, 20 steps at a "
    "constant rate and with the rate halved at step 10: their largest difference"
)
def _cs231n_same_iterates() -> tuple[bool, str]:
    from descentlab.book.reference import cs231n_momentum, velocity

    grad = lambda w: w  # noqa: E731
    gaps = []
    for rates in ([0.1] * 20, [0.1] * 10 + [0.05] * 10):
        a = velocity(np.ones(1), grad, 0.1, 0.9, 20, lrs=rates)
        b = cs231n_momentum(np.ones(1), grad, 0.1, 0.9, 20, lrs=rates)
        gaps.append(float(np.abs(a - b).max()))
    holds = gaps[0] < 1e-12 < 1e-6 < gaps[1]
    return holds, f"constant rate {gaps[0]:.1e}, rate changed mid-run {gaps[1]:.3g}"


@_shows(
    "Nesterov's update in x̃ = x + ρv alone, its gradient calls instrumented, against the "
    "look-ahead loop's (book.reference) on (x² + 10y²)/2: where each takes its gradients"
)
def _stored_point() -> tuple[bool, str]:
    from descentlab.book.reference import lookahead_nesterov

    h, rho, lr = np.array([1.0, 10.0]), 0.9, 0.05
    looked: list[np.ndarray] = []

    def grad(w: np.ndarray) -> np.ndarray:
        looked.append(w.copy())
        return h * w

    lookahead_nesterov(np.ones(2), grad, lr, rho, 10)
    xt, v, stored, taken = np.ones(2), np.zeros(2), [], []
    for _ in range(10):
        stored.append(xt.copy())
        taken.append(xt.copy())  # the only point the x̃ form has: its stored parameter
        v_new = rho * v - lr * h * xt
        xt = xt - rho * v + (1 + rho) * v_new
        v = v_new
    off = max(float(np.abs(a - b).max()) for a, b in zip(looked, taken, strict=True))
    return off < 1e-12, f"the look-ahead loop's gradient points are off the stored x̃ by {off:.1e}"


@_shows(
    "descentlab's SGD at the saddle (x² - y²)/2 from (1, 10⁻³), lr 0.01: its first step "
    "along the escape direction y and along x"
)
def _saddle_tiny_steps() -> tuple[bool, str]:
    import torch

    from descentlab.optim import SGD

    w = torch.nn.Parameter(torch.tensor([1.0, 1e-3], dtype=torch.float64))
    w.grad = w.detach() * torch.tensor([1.0, -1.0], dtype=torch.float64)
    SGD([w], lr=0.01).step()
    dy, dx = abs(float(w.detach()[1]) - 1e-3), abs(float(w.detach()[0]) - 1)
    return dy < 0.01 * dx, f"step along y {dy:.1e}, along x {dx:.1e}"


@_shows("descentlab's Adadelta's first step on gradients 1 and 100, at ε = 10⁻⁶ and 10⁻⁴")
def _eps_first_step() -> tuple[bool, str]:
    import torch

    from descentlab.optim import Adadelta

    def first(g: float, eps: float) -> float:
        w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        w.grad = torch.full_like(w, g)
        Adadelta([w], eps=eps).step()
        return abs(float(w.detach()[0]))

    steps = {(g, e): first(g, e) for g in (1.0, 100.0) for e in (1e-6, 1e-4)}
    by_eps = steps[1.0, 1e-4] / steps[1.0, 1e-6]
    by_g = steps[100.0, 1e-6] / steps[1.0, 1e-6]
    holds = abs(by_eps - 10) < 0.1 and abs(by_g - 1) < 0.01
    return holds, f"ε 100 times larger: step × {by_eps:.3g}; gradient 100 times: × {by_g:.3g}"


@_shows(
    "descentlab's Adadelta and SGD (lr 0.01) on L = c·w for c = 1 and 1000, 40 steps: "
    "the ratio of their last steps"
)
def _adadelta_units() -> tuple[bool, str]:
    import torch

    from descentlab.optim import SGD, Adadelta

    def last(make: Callable, c: float, steps: int = 40) -> float:
        w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        opt = make([w])
        for _ in range(steps):
            before = float(w.detach()[0])
            w.grad = torch.full_like(w, c)
            opt.step()
        return abs(float(w.detach()[0]) - before)

    ada = last(Adadelta, 1000.0) / last(Adadelta, 1.0)
    sgd = last(lambda p: SGD(p, lr=0.01), 1000.0, 1) / last(lambda p: SGD(p, lr=0.01), 1.0, 1)
    return abs(ada - 1) < 0.01 and sgd > 999, f"Adadelta's step × {ada:.4f}, SGD's × {sgd:.4g}"


@_shows(
    "bagging 40 fits of degree 5 on 60 noisy examples: the error on each example of the fits whose "
    "bag missed it (out of bag), of those that drew it, and on 2,000 unseen examples"
)
def _out_of_bag() -> tuple[bool, str]:
    rng = np.random.default_rng(0)

    def data(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.uniform(-1, 1, n)
        return x, 2 * x + rng.standard_normal(n)

    x, y = data(60)
    xs, ys = data(2000)
    fits, drawn = [], []
    for _ in range(40):
        idx = rng.integers(0, 60, 60)
        fits.append(np.polyfit(x[idx], y[idx], 5))
        drawn.append(np.isin(np.arange(60), idx))
    pred = np.array([np.polyval(f, x) for f in fits])
    mask = np.array(drawn)
    oob = float(np.mean([((pred[~mask[:, i], i].mean() - y[i]) ** 2) for i in range(60)]))
    inbag = float(np.mean([((pred[mask[:, i], i].mean() - y[i]) ** 2) for i in range(60)]))
    unseen = float(((np.mean([np.polyval(f, xs) for f in fits], 0) - ys) ** 2).mean())
    holds = abs(oob / unseen - 1) < abs(inbag / unseen - 1) and abs(oob / unseen - 1) < 0.25
    return holds, f"out of bag {oob:.3f}, in bag {inbag:.3f}, unseen {unseen:.3f}"


@_shows(
    "16 data sets of 40 noisy examples of sin 3x, a degree-5 fit on all 40 and on one fold's 32: "
    "their mean squared error against sin 3x"
)
def _refit_on_all() -> tuple[bool, str]:
    """The model refit on every training example, against the one a fold trained (4/5 of
    them): the error each makes on the function the data come from."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (16, 40))
    y = np.sin(3 * x) + 0.3 * rng.standard_normal(x.shape)
    grid = np.linspace(-1, 1, 101)

    def error(m: int) -> float:
        fits = [np.polyfit(x[i, :m], y[i, :m], 5) for i in range(len(x))]
        return float(
            np.mean([((np.polyval(c, grid) - np.sin(3 * grid)) ** 2).mean() for c in fits])
        )

    every, fold = error(40), error(32)
    return every < fold, f"error {every:.4f} refit on all 40, {fold:.4f} on one fold's 32"


#: (name, said, opposite, demonstration, home): the lectures' hints' sentences and the runs
#: that show them (a :func:`~descentlab.book.typed.typed` row: the formula evaluated against
#: what computes it)
CLAIMS: tuple[tuple[str, str, str, _Demo | str, str], ...] = (
    # hint 000
    typed("hint_typed_parabola_factor", "The step multiplies the error by 1 - 2η", "1 - 2η",
          points(_parabola_factor, ({"η": 0.3}, {"η": 0.8}), keywords=True), "item 11"),
    typed("hint_typed_quadratic_factor", "A step multiplies w by 1 - ηa", "1 - ηa",
          points(_quadratic_factor, ({"η": 0.3, "a": 4.0}, {"η": 0.1, "a": 2.5}), keywords=True),
          "item 15"),
    ("hint_log_keeps_argmax",
     "The log is strictly increasing, so it keeps the order of the values and the argmax",
     "The log is strictly decreasing, so it reverses the order of the values and the argmax",
     _log_keeps_order, "item 2"),
    ("hint_gradient_of_sum", "the gradient of a sum is the sum of the examples' gradients, which "
     "is what mini-batches estimate", "the gradient of a sum is the product of the examples' "
     "gradients, which is what mini-batches estimate", _sum_of_gradients, "item 2"),
    ("hint_laplace_nll", "The negative log-likelihood of the data is Σ|xᵢ - μ|/b + N log(2b)",
     "The negative log-likelihood of the data is Σ|xᵢ - μ|/b - N log(2b)", _laplace_nll,
     "item 6"),
    ("hint_sigma_scales", "σ only scales the loss, as a learning rate would",
     "σ shifts the loss's minimizer, as a learning rate would", _sigma_scales, "item 7"),
    ("hint_sigma_optimum", "its optimum is the residuals' standard deviation",
     "its optimum is the residuals' variance", _sigma_optimum, "item 7"),
    ("hint_finite_sum_stops", "if Σηₜ is finite the iterate can only travel a bounded distance "
     "and misses a far optimum (ηₜ = 1/t² stops short)", "if Σηₜ is finite the iterate can only "
     "travel a bounded distance and misses a far optimum (ηₜ = 1/t stops short)",
     _finite_sum_stops, "item 19"),
    ("hint_one_over_t_both", "ηₜ = η/t satisfies both", "ηₜ = η/t² satisfies both",
     _both_conditions, "item 19"),
    ("hint_diagonal_exact", "A diagonal preconditioner is exact here because H is diagonal",
     "A diagonal preconditioner is exact here whatever H's axes",
     "keep_rotation_defeats",
     "item 8"),
    # hint 001
    ("hint_nesterov_brakes", "fewer oscillations than momentum on a steep, well-conditioned valley",
     "more oscillations than momentum on a steep, well-conditioned valley", _nesterov_brakes,
     "item 52"),
    ("hint_typed_halving_rule", "if loss > previous: lr /= 2", "if loss < previous: lr /= 2",
     _typed_halving_rule, "item 54"),
    ("hint_plateau_never_raises", "and on a plateau it never raises the rate back",
     "and on a plateau it raises the rate back", _typed_halving_rule, "item 54"),
    typed("hint_typed_derivative", "f'(w) = 4w³ - 4w vanishes at -1, 0 and 1", "4w³ - 4w",
          points(_autograd, ({"w": 0.7}, {"w": -1.3}, {"w": 1.0}), keywords=True), "item 46"),
    typed("hint_typed_second_derivative",
          "f'' = 12w² - 4 is negative at 0 (a maximum) and positive at ±1", "12w² - 4",
          points(_autograd_second, ({"w": 0.7}, {"w": -1.3}), keywords=True), "item 46"),
    # hint 002
    typed("hint_typed_missed_by_all", "An example is missed by all n draws with probability "
          "(1 - 1/n)ⁿ", "(1 - 1/n)ⁿ", points(_missed_by_all, ({"n": 3.0}, {"n": 5.0}),
          keywords=True), "item 67", names={"ⁿ": "**n"}),
    ("hint_learned_flip", "A learned kernel absorbs the flip, so training is the same either way",
     "A learned kernel cannot absorb the flip, so training differs either way", _learned_flip,
     "item 91"),
    ("hint_textbook_differs", "comparing with a textbook formula is not",
     "comparing with a textbook formula is too",
     "keep_cross_correlation",
     "item 91"),
    ("hint_out_of_bag", "These out-of-bag examples test a bagged model for free",
     "These in-bag examples test a bagged model for free", _out_of_bag, "item 67"),
    ("hint_refit_on_all", "once chosen, the model should use every training example",
     "once chosen, the model should use one fold's training examples", _refit_on_all, "item 64"),
    ("hint_test_set_optimistic", "its error is then optimistic and no longer estimates the error "
     "on unseen data", "its error is then pessimistic and no longer estimates the error on "
     "unseen data", _chosen_on_test, "item 64"),
    typed("hint_typed_three_terms", "Write t - f̂ = ε + (f - E f̂) + (E f̂ - f̂)",
          "ε + (f - E f̂) + (E f̂ - f̂)", points(_three_terms, ({"ε": 0.3, "f": 1.2, "Ef": 0.9,
          "fh": 0.7}, {"ε": -0.4, "f": 2.0, "Ef": 1.1, "fh": 1.6}), keywords=True), "item 66",
          names={"E f̂": "Ef", "f̂": "fh"}),
    ("hint_ema_forgets", "old gradients are forgotten and the rate stays at the scale of the "
     "recent ones", "old gradients are kept and the rate stays at the scale of the early ones",
     "hint_lecture_rmsprop_forgets", "item 77"),
    typed("hint_typed_adadelta", "ΔW = -√(H + ε)/√(G + ε)·g", "-√(H + ε)/√(G + ε)·g",
          points(_adadelta_step, ({"H": 0.04, "G": 2.0, "g": 1.5, "ε": 1e-6}, {"H": 0.3, "G": 9.0,
          "g": -2.0, "ε": 0.01}), keywords=True), "item 78"),
    ("hint_adadelta_units", "so the update has the units of W, not of W per gradient",
     "so the update has the units of W per gradient, not of W", _adadelta_units, "item 78"),
    ("hint_adadelta_eps", "ε sets the first steps' size, while H is still 0",
     "g sets the first steps' size, while H is still 0", _eps_first_step, "item 78"),
    ("hint_early_stop_norm", "Stopping at the validation minimum limits how far the weights "
     "travel from their start", "Stopping at the validation minimum does not limit how far the "
     "weights travel from their start", _early_stop_norm, "item 84"),
    ("hint_one_example_erased", "With one example x̂ = 0 for every input",
     "With one example x̂ = x for every input", _one_example_erased, "item 90"),
    ("hint_test_time_averages", "so one example's output no longer depends on the others in its "
     "batch", "so one example's output still depends on the others in its batch",
     _test_time_statistics, "item 90"),
    ("hint_settles_wide", "it shakes the iterate out of narrow basins, so it settles in wide ones",
     "it shakes the iterate out of wide basins, so it settles in narrow ones",
     "sharp_minima",
     "item 71"),
    # hint 003
    typed("hint_typed_steps_to_shrink", "Steps to shrink by e⁵ are 5/(-ln q)", "5/(-ln q)",
          points(_steps_to_shrink, ({"q": 0.9}, {"q": 0.995}), keywords=True), "item 102",
          tol=1e-6),
    typed("hint_typed_gd_rate", "Gradient descent: q = (κ-1)/(κ+1)", "(κ-1)/(κ+1)", points(_gd_rate,
          ({"κ": 9.0}, {"κ": 400.0}), keywords=True), "item 102"),
    typed("hint_typed_heavy_ball_rate", "momentum: q = (√κ-1)/(√κ+1)", "(√κ-1)/(√κ+1)",
          points(_heavy_ball_rate, ({"κ": 9.0}, {"κ": 400.0}), keywords=True), "item 102",
          tol=1e-6),
    typed("hint_typed_sgd_floor", "SGD's is ησ²/(h(2 - ηh))", "ησ²/(h(2 - ηh))",
          points(_stationary_variance, ({"η": 0.1, "σ": 1.0, "h": 1.0}, {"η": 0.3, "σ": 2.0,
          "h": 3.0}), keywords=True), "item 98"),
    ("hint_momentum_conditioning", "Momentum cures bad conditioning",
     "Momentum cures gradient noise",
     "keep_momentum_sqrt_kappa", "item 98"),
    ("hint_cs231n_form", "v' = αv' + g and Θ -= ρv'", "v' = αv' - g and Θ -= ρv'",
     _cs231n_same_iterates, "item 101"),
    ("hint_cs231n_same", "The scaling absorbs ρ into the velocity",
     "The scaling leaves ρ outside the velocity", _cs231n_same_iterates, "item 101"),
    ("hint_cs231n_rate_change", "when ρ changes mid-run, (5.12)'s stored velocity already holds "
     "the old rate", "when ρ changes mid-run, (5.12)'s stored velocity holds the new rate",
     _cs231n_same_iterates, "item 101"),
    typed("hint_typed_change_of_variables", "x̃_new = x_new + ρv_new = x̃ - ρv + (1 + ρ)v_new",
          "x̃ - ρv + (1 + ρ)v_new", points(_look_ahead_moved, ({"xt": 0.7, "rho": 0.9, "v": -0.2,
          "v_new": 0.15}, {"xt": -1.1, "rho": 0.5, "v": 0.4, "v_new": -0.3}), keywords=True),
          "item 105", names={"x̃": "xt", "ρ": " rho "}),
    ("hint_stored_point", "Every gradient is now taken at the stored point x̃",
     "Every gradient is now taken at the look-ahead point x̃ + ρv", _stored_point, "item 105"),
    ("hint_sgd_tiny_steps", "so SGD's steps are tiny", "so SGD's steps are large",
     _saddle_tiny_steps, "item 102"),
    ("hint_beta1_window", "β₁ = 0.9 averages the direction over about 10 steps",
     "β₁ = 0.9 averages the direction over about 100 steps", _ema_windows, "item 113"),
    ("hint_beta2_window", "β₂ = 0.999 estimates the gradient's scale over about 1000,",
     "β₂ = 0.999 estimates the gradient's scale over about 100,", _ema_windows, "item 113"),
    ("hint_stable_denominator", "so the denominator is stable", "so the denominator is noisy",
     _stable_denominator, "item 113"),
    # hint 004
    typed("hint_typed_adam_first_step", "so the step is lr·g/(|g| + ε)", "lr·g/(|g| + ε)",
          points(_adam_first_step, ({"lr": 1e-3, "g": -0.02, "ε": 1e-8}, {"lr": 0.1, "g": 0.5,
          "ε": 0.3}), keywords=True), "item 130"),
    ("hint_forward_kl_covers", "E_P[log P/Q] is huge wherever P > 0 and Q ≈ 0, so Q must cover "
     "every peak", "E_P[log P/Q] is huge wherever P > 0 and Q ≈ 0, so Q must sit on one peak",
     _forward_covers, "item 122"),
    ("hint_reverse_kl_picks", "E_Q[log Q/P] is huge wherever Q > 0 and P ≈ 0, so Q must avoid "
     "the valley between the peaks and sits on one", "E_Q[log Q/P] is huge wherever Q > 0 and "
     "P ≈ 0, so Q must cover every peak", _reverse_picks_one, "item 122"),
    ("hint_adagrad_sum", "AdaGrad adds g² to a sum", "AdaGrad adds g² to an average",
     _adagrad_sum, "item 129"),
    typed("hint_typed_rmsprop_average", "RMSProp mixes it into γG + (1 - γ)g²", "γG + (1 - γ)g²",
          points(_rmsprop_average, ({"γ": 0.9, "G": 2.0, "g": 3.0}, {"γ": 0.5, "G": 0.1,
          "g": -1.0}), keywords=True), "item 129"),
)  # fmt: skip

#: the sentences of hints 000-004 that nothing the build runs can back, a phrase each holds
#: and why
UNBACKED: dict[str, str] = {
    "That sum is why 1/(1 - μ) is called momentum's memory": "a name: why the book calls "
    "1/(1 - μ) momentum's memory; the number it names, 100 learning rates, is the exercise's "
    "checked answer, and item 26's card measures the memory",
    "Adam's and RMSProp's per-coordinate scaling are cheap estimates of it": "an analogy: "
    "Adam's √v tracks each coordinate's gradient scale, which on a quadratic is the curvature "
    "times the distance to the minimum, not the curvature alone; what it 'estimates' depends on "
    "a reading no run can settle",
    "That is item 43's 'barely moves'": "a pointer to item 43's card, whose cell shows the "
    "slow run this exercise counts",
    "The folds only estimate how each setting generalizes": "a rule of method: the role the "
    "folds play in the procedure, by its definition (item 64's card runs the procedure)",
    "It costs a validation set and the evaluations along the way": "the cost of the procedure, "
    "read off its definition: examples held out and one evaluation per check, nothing a run "
    "measures",
    "Each method's advantage rests on assumptions about the landscape": "an epistemic "
    "statement about theory and real networks; item 131's card and the compare chapter "
    "measure optimizers on real loops instead",
    "a comparison with tuned rates and several seeds measures what theory cannot promise": "a "
    "rule of method; the compare chapter and descentlab's compare command carry it out",
}
