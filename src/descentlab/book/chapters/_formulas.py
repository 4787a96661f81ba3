"""The formulas of the chapters' prose from one source: each one a :class:`Formula` the page
shows (SymPy's ``latex()``) and a check evaluates against the code that computes the same
quantity, so a sign, an exponent or an index changed in it is a ✘ with its row.

A chapter's text cites a formula of :data:`FORMULAS` as ``{{f:name}}`` (inside its dollars:
``$b_t = {{f:momentum_sum}}$``); :func:`render` puts the TeX in and :func:`formula_checks`
gives the section one check per formula it cites: the formula at each of its settings against
descentlab's optimizer (its state or its step) or an independent numeric route (a series
summed term by term, a companion matrix's eigenvalues, a quadrature).

Every other formula a chapter's prose types between dollars is either made of a chapter's own
slots (``${{filled_tex}}$``: rendered from its Formula) or stays typed with its reason in
:data:`TYPED` (a symbol's name, a definition, a model's statement); :func:`census` counts the
three and lists the formulas none of them holds (unreviewed), which the build prints.

Example:
    >>> render("a rate of ${{f:complex_rate}}$ per step")
    'a rate of $\\\\sqrt{\\\\beta}$ per step'
    >>> [c.status for c in formula_checks("${{f:complex_rate}}$")]
    ['ok']
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from descentlab.book.chapters._typed import TYPED
from descentlab.book.checks import Check
from descentlab.book.facts import Formula
from descentlab.book.render.formulas import MATH

__all__ = [
    "FORMULAS",
    "SLOT",
    "TYPED",
    "Shown",
    "census",
    "formula_checks",
    "render",
]

#: a chapter text's citation of a formula of :data:`FORMULAS`
SLOT = re.compile(r"\{\{f:(\w+)\}\}")


@dataclass(frozen=True)
class Shown:
    """A formula a page shows, and its twin: ``pairs()`` gives (the formula's values, what
    the code computes there) at each setting it is checked at; the two must agree to within
    ``tol`` (relative)."""

    formula: Formula
    pairs: Callable[[], Sequence[tuple[dict[str, Any], float]]]
    against: str
    tol: float = 1e-9


# ------------------------------------------------------------------------------------------
# the twins: descentlab's optimizers run on given gradients, and numeric routes


def _run(make: Callable[[list], Any], grads: Iterable[float]) -> tuple[dict[str, float], float]:
    """descentlab's optimizer ``make(params)`` from 0 on the gradients ``grads`` in float64:
    its state after the last and the size of its last step."""
    import torch

    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = make([w])
    step = 0.0
    for g in grads:
        before = float(w.detach())
        w.grad = torch.full_like(w, float(g))
        opt.step()
        step = abs(float(w.detach()) - before)
    state = {k: float(v) for k, v in opt.state[w].items()}
    return state, step


def _optim() -> Any:
    from descentlab import optim

    return optim


def _wavy(t: int) -> list[float]:
    """The gradients ``1 + sin(i)``, i = 1 … t, as a sum's terms (index 0 unused)."""
    return [0.0] + [1.0 + math.sin(i) for i in range(1, t + 1)]


def _adagrad_sum() -> list:
    o = _optim()
    return [({"t": t, "g": g}, _run(lambda p: o.Adagrad(p, lr=0.1), [g] * t)[0]["sum"])
            for t, g in ((10, 3.0), (37, 0.2))]  # fmt: skip


def _adagrad_step(eta: float = 0.1) -> list:
    o = _optim()
    return [({"t": t, "g": g, "eta": eta}, _run(lambda p: o.Adagrad(p, lr=eta), [g] * t)[1])
            for t, g in ((10, 100.0), (37, 0.01))]  # fmt: skip


def _adagrad_travel() -> list:
    import scipy.integrate

    out = []
    for eta, big_t in ((0.1, 100), (0.3, 2500)):
        integral = scipy.integrate.quad(lambda t: t**-0.5, 1, big_t)[0]
        out.append(({"eta": eta, "T": big_t}, eta * (1 + integral)))
    return out


def _rmsprop(alpha: float, t: int, g: float) -> tuple[dict[str, float], float]:
    o = _optim()
    return _run(lambda p: o.RMSprop(p, lr=0.1, alpha=alpha, eps=0.0), [g] * t)


def _adam(grads: Sequence[float], **kw: Any) -> tuple[dict[str, float], float]:
    o = _optim()
    return _run(lambda p: o.Adam(p, lr=0.1, **kw), grads)


def _adam_sum() -> list:
    out = []
    for beta_1, t in ((0.9, 7), (0.6, 12)):
        g = _wavy(t)
        out.append(({"beta_1": beta_1, "t": t, "g": g},
                     _adam(g[1:], betas=(beta_1, 0.999))[0]["exp_avg"]))  # fmt: skip
    return out


def _adam_step() -> list:
    out = []
    for t in (1, 5):
        g = _wavy(t)[1:]
        state, step = _adam(g, eps=1e-3)
        at = {
            "eta": 0.1,
            "epsilon": 1e-3,
            "m_h": state["exp_avg"] / (1 - 0.9**t),
            "v_h": state["exp_avg_sq"] / (1 - 0.999**t),
        }
        out.append((at, step))  # fmt: skip
    return out


def _momentum(beta: float, grads: Sequence[float], lr: float = 0.1) -> tuple[dict, float]:
    o = _optim()
    return _run(lambda p: o.Momentum(p, lr=lr, momentum=beta), grads)


def _companion_modulus(beta: float, eta_lamda: float = 1.0) -> float:
    """Heavy ball's rate on one direction: the largest eigenvalue modulus of its two-by-two
    iteration matrix (the recurrence as a linear map of (wₜ, wₜ₋₁))."""
    a = np.array([[1 + beta - eta_lamda, -beta], [1.0, 0.0]])
    return float(max(abs(np.linalg.eigvals(a))))


def _edge(beta: float) -> float:
    """Where heavy ball's iteration matrix reaches modulus 1 (a root-finder on ηλ)."""
    import scipy.optimize

    return scipy.optimize.brentq(lambda x: _companion_modulus(beta, x) - 1, 1e-6, 8.0, xtol=1e-13)


def _stationary(eta: float, h: float, sigma: float, beta: float = 0.0) -> float:
    """E[w²] of ``w ← (1 - ηh)w - ησξ`` (β = 0) at stationarity, the series summed term by
    term."""
    r, terms = (1 - eta * h) ** 2, [eta**2 * sigma**2]
    while terms[-1] > 1e-22 * terms[0]:
        terms.append(terms[-1] * r)
    return math.fsum(terms)


def _relax(eta: float, h: float) -> float:
    """The steps in which (1 - ηh)^{2t} falls by a factor e."""
    return -1 / (2 * math.log(1 - eta * h))


def _without_replacement(values: Sequence[float], b: int) -> float:
    """The variance of the mean of ``b`` of ``values`` drawn without replacement, every
    subset enumerated."""
    import itertools

    means = [math.fsum(c) / b for c in itertools.combinations(values, b)]
    mid = math.fsum(means) / len(means)
    return math.fsum((m - mid) ** 2 for m in means) / len(means)


_POPULATION = (0.3, -1.2, 2.5, 0.9, -0.4, 1.7, 0.0)


def _population_s2() -> float:
    mid = math.fsum(_POPULATION) / len(_POPULATION)
    return math.fsum((v - mid) ** 2 for v in _POPULATION) / len(_POPULATION)


def _series(first: float, ratio: float) -> float:
    """``first (1 + ratio + ratio² + …)`` summed term by term until the terms vanish."""
    terms = [first]
    while abs(terms[-1]) > 1e-22 * abs(terms[0]):
        terms.append(terms[-1] * ratio)
    return math.fsum(terms)


def _batch_edge(h: float, c: float, b: float) -> float:
    """The η where the factor (1 - ηh)² + η²c/B of E[e²]'s recursion reaches 1 (brentq)."""
    import scipy.optimize

    return scipy.optimize.brentq(lambda e: (1 - e * h) ** 2 + e**2 * c / b - 1, 1e-9 / h,
                                 10 / h, xtol=1e-14)  # fmt: skip


def _conv_length(n: int, k: int, s: int, p: int, d: int) -> int:
    """The output length torch's conv1d gives."""
    import torch

    x = torch.zeros(1, 1, n)
    w = torch.zeros(1, 1, k)
    return int(torch.nn.functional.conv1d(x, w, stride=s, padding=p, dilation=d).shape[-1])


def _conv_params(c_in: int, c_out: int, k: int) -> int:
    import torch

    return sum(p.numel() for p in torch.nn.Conv2d(c_in, c_out, k).parameters())


def _distinct_share(n: int) -> float:
    """The expected share of distinct examples in n draws with replacement from n, by the
    chain of the distinct count (each draw new with probability (n - k)/n)."""
    p = [1.0] + [0.0] * n
    for _ in range(n):
        q = [0.0] * (n + 1)
        for k, pk in enumerate(p):
            if pk:
                q[k] += pk * k / n
                if k < n:
                    q[k + 1] += pk * (n - k) / n
        p = q
    return math.fsum(k * pk for k, pk in enumerate(p)) / n


def _steps_below(kappa: float, eps: float) -> int:
    """The first t with (1 - 1/κ)^t ≤ ε, counted step by step."""
    t, r = 0, 1.0
    while r > eps:
        r *= 1 - 1 / kappa
        t += 1
    return t


def _gd_rate(kappa: float, eta: float) -> float:
    """Gradient descent's contraction on curvatures 1 … κ at η: the largest |1 - ηλ| over
    a grid of the curvatures."""
    lam = np.linspace(1.0, kappa, 2001)
    return float(np.max(np.abs(1 - eta * lam)))


def _abs_normal(sigma: float) -> float:
    import scipy.integrate

    pdf = lambda x: math.exp(-x * x / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))  # noqa: E731
    return 2 * scipy.integrate.quad(lambda x: x * pdf(x), 0, 40 * sigma)[0]


def _curvature(w: float) -> float:
    """f''(w) of f = w²/2 + w⁴/4 by central differences."""
    f = lambda x: x * x / 2 + x**4 / 4  # noqa: E731
    h = 1e-4
    return (f(w + h) - 2 * f(w) + f(w - h)) / h**2


#: the formulas the chapters cite, each with its twin
FORMULAS: dict[str, Shown] = {
    # adaptive rates
    "adagrad_sum_slope": Shown(Formula("t*g**2"), _adagrad_sum,
                               "descentlab's Adagrad's sum after t steps on a slope g"),
    "adagrad_step_slope": Shown(Formula("eta*g/(sqrt(t)*Abs(g))"), _adagrad_step,
                                "descentlab's Adagrad's t-th step on a slope g", 1e-8),
    "adagrad_step": Shown(Formula("eta/sqrt(t)"), _adagrad_step,
                          "descentlab's Adagrad's t-th step on a slope g", 1e-8),
    "adagrad_travel": Shown(Formula("eta*(2*sqrt(T) - 1)"), _adagrad_travel,
                            "η(1 + ∫₁ᵀ dt/√t), the integral by quadrature", 1e-7),
    "rmsprop_v_slope": Shown(
        Formula("Eq(v_t, (1 - alpha**t)*g**2)"),
        lambda: [({"alpha": a, "t": t, "g": g, "v_t": _rmsprop(a, t, g)[0]["square_avg"]}, 0.0)
                 for a, t, g in ((0.99, 10, 1.0), (0.9, 25, 2.0))],
        "descentlab's RMSprop's average vₜ after t steps on a slope g: the sides' difference",
        1e-12),
    "rmsprop_step_slope": Shown(
        Formula("eta/sqrt(1 - alpha**t)"),
        lambda: [({"alpha": a, "t": t, "eta": 0.1}, _rmsprop(a, t, 1.0)[1])
                 for a, t in ((0.99, 1), (0.99, 40), (0.9, 7))],
        "descentlab's RMSprop's t-th step on a unit slope"),
    "rmsprop_horizon": Shown(Formula("(1 - alpha)**(-1)"),
                             lambda: [({"alpha": a}, math.fsum(a**k for k in range(40000)))
                                      for a in (0.9, 0.99)],
                             "the weights αᵏ summed term by term"),
    "rmsprop_first_v": Shown(Formula("(1 - alpha)*g**2"),
                             lambda: [({"alpha": a, "g": g}, _rmsprop(a, 1, g)[0]["square_avg"])
                                      for a, g in ((0.99, 1.0), (0.9, 3.0))],
                             "descentlab's RMSprop's average after one step on a slope g"),
    "rmsprop_first_step": Shown(Formula("eta/sqrt(1 - alpha)"),
                                lambda: [({"alpha": a, "eta": 0.1}, _rmsprop(a, 1, 1.0)[1])
                                         for a in (0.99, 0.9)],
                                "descentlab's RMSprop's first step on a unit slope"),
    "rmsprop_filled": Shown(Formula("1 - alpha**T"),
                            lambda: [({"alpha": a, "T": t},
                                      _rmsprop(a, t, 2.0)[0]["square_avg"] / 4.0)
                                     for a, t in ((0.99, 100), (0.9, 7))],
                            "descentlab's RMSprop's average after T steps over g²"),
    "adam_step": Shown(Formula("eta*m_h/(sqrt(v_h) + epsilon)",
                               {"m_h": "\\hat m", "v_h": "\\hat v"}), _adam_step,
                       "descentlab's Adam's t-th step (its averages corrected)"),
    "adam_sum": Shown(Formula("(1 - beta_1)*Sum(beta_1**(t - i)*g[i], (i, 1, t))"), _adam_sum,
                      "descentlab's Adam's first average after t steps on turning gradients"),
    "adam_bias": Shown(Formula("1 - beta_1**t"),
                       lambda: [({"beta_1": b, "t": t}, _adam([1.0] * t, betas=(b, 0.999))[0][
                           "exp_avg"]) for b, t in ((0.9, 3), (0.8, 11))],
                       "descentlab's Adam's first average after t steps of a unit gradient"),
    "adam_raw_first": Shown(
        Formula("eta*(1 - beta_1)/sqrt(1 - beta_2)"),
        lambda: [({"eta": 0.1, "beta_1": b1, "beta_2": b2},
                  _adam([5.0], betas=(b1, b2), bias_correction=False, eps=0.0)[1])
                 for b1, b2 in ((0.9, 0.999), (0.8, 0.99))],
        "descentlab's Adam's first step without the bias correction, on a slope of 5"),
    "adam_geometric": Shown(
        Formula("(1 - beta_1)*Sum(beta_1**k, (k, 0, t - 1))"),
        lambda: [({"beta_1": b, "t": t}, _adam([1.0] * t, betas=(b, 0.999))[0]["exp_avg"])
                 for b, t in ((0.9, 4), (0.7, 9))],
        "descentlab's Adam's first average after t steps of a unit gradient"),
    "adam_first_eps": Shown(
        Formula("eta*g/(Abs(g) + epsilon)"),
        lambda: [({"eta": 0.1, "g": g, "epsilon": e}, _adam([g], eps=e)[1])
                 for g, e in ((2.0, 0.5), (1e-6, 1e-8))],
        "descentlab's Adam's first step on a slope g"),
    "adam_tiny": Shown(
        Formula("eta*g/epsilon"),
        lambda: [({"eta": 0.1, "g": g, "epsilon": 1e-8}, _adam([g], eps=1e-8)[1])
                 for g in (1e-13, 3e-12)],
        "descentlab's Adam's first step on a slope g far below ε", 1e-3),
    "horizon": Shown(Formula("(1 - beta)**(-1)"),
                     lambda: [({"beta": b}, math.fsum(b**k for k in range(40000)))
                              for b in (0.9, 0.999)],
                     "the weights βᵏ summed term by term", 1e-8),
    "adagrad_decay": Shown(Formula("t**(-1/2)", {}),
                           lambda: [({"t": t}, _adagrad_step()[i][1] / 0.1)
                                    for i, t in enumerate((10, 37))],
                           "descentlab's Adagrad's t-th step on a slope, over η", 1e-8),
    "noisy_second": Shown(
        Formula("Eq(E, mu**2 + sigma**2)", {"E": "\\mathbb{E}[g^2]"}),
        lambda: [({"E": _second(mu, s), "mu": mu, "sigma": s}, 0.0)
                 for mu, s in ((1.0, 1.0), (0.3, 2.0))],
        "E[g²] of g = μ + σξ by quadrature over the normal density: the sides' difference",
        1e-9),
    "noisy_step": Shown(
        Formula("eta*mu/sqrt(mu**2 + sigma**2)"),
        lambda: [({"eta": 0.1, "mu": mu, "sigma": s}, 0.1 * mu / math.sqrt(_second(mu, s)))
                 for mu, s in ((1.0, 1.0), (0.1, 1.0))],
        "η μ over the root of E[g²] by quadrature over the normal density", 1e-8),
    # momentum
    "momentum_sum": Shown(
        Formula("Sum(beta**k*g[t - k], (k, 0, t - 1))"),
        lambda: [({"beta": b, "t": t, "g": _wavy(t)},
                  _momentum(b, _wavy(t)[1:])[0]["momentum_buffer"])
                 for b, t in ((0.9, 6), (0.5, 9))],
        "descentlab's Momentum's buffer after t steps on turning gradients"),
    "momentum_limit": Shown(Formula("(1 - beta)**(-1)"),
                            lambda: [({"beta": b}, _momentum(b, [1.0] * 600)[1] / 0.1)
                                     for b in (0.5, 0.9)],
                            "descentlab's Momentum's step on a unit slope after 600 steps, "
                            "over ηg"),
    "effective_rate": Shown(Formula("eta/(1 - beta)"),
                            lambda: [({"beta": b, "eta": e}, _momentum(b, [1.0] * 600, e)[1])
                                     for b, e in ((0.5, 0.1), (0.9, 0.03))],
                            "descentlab's Momentum's step on a unit slope after 600 steps"),
    "complex_rate": Shown(Formula("sqrt(beta)"),
                          lambda: [({"beta": b}, _companion_modulus(b)) for b in (0.5, 0.9)],
                          "heavy ball's iteration matrix's largest eigenvalue modulus (ηλ = 1)"),
    "edge": Shown(Formula("2*(1 + beta)"),
                  lambda: [({"beta": b}, _edge(b)) for b in (0.5, 0.9)],
                  "the ηλ where heavy ball's iteration matrix reaches modulus 1", 1e-9),
    "noise_ratio": Shown(
        Formula("sqrt((1 - beta)/(1 + beta))"),
        lambda: [({"beta": b}, math.sqrt(math.fsum((1 - b) ** 2 * b ** (2 * k)
                                                    for k in range(20000)))) for b in (0.5, 0.9)],
        "the root of Σ (1 - β)²β²ᵏ, the average's noise summed term by term"),
    # schedules
    "relax_steps": Shown(Formula("(2*eta*h)**(-1)"),
                         lambda: [({"eta": e, "h": 1.0}, _relax(e, 1.0)) for e in (0.002, 0.01)],
                         "the steps in which (1 - ηh)^(2t) falls by a factor e", 0.01),
    "floor": Shown(Formula("eta*sigma**2/(h*(2 - eta*h))"),
                   lambda: [({"eta": e, "h": h, "sigma": 1.5}, _stationary(e, h, 1.5))
                            for e, h in ((0.1, 1.0), (0.05, 3.0))],
                   "E[w²] of w ← (1 - ηh)w - ησξ, the series summed term by term"),
    "loss_floor": Shown(Formula("eta*sigma**2/(2*(2 - eta*h))"),
                        lambda: [({"eta": e, "h": h, "sigma": 1.5}, h / 2 * _stationary(e, h, 1.5))
                                 for e, h in ((0.1, 1.0), (0.05, 3.0))],
                        "h E[w²]/2 of w ← (1 - ηh)w - ησξ, the series summed term by term"),
    # batch
    "batch_var": Shown(
        Formula("S**2/B*(N - B)/(N - 1)"),
        lambda: [({"S": math.sqrt(_population_s2()), "B": b, "N": len(_POPULATION)},
                  _without_replacement(_POPULATION, b)) for b in (2, 3, 5)],
        "the variance of the batch mean over every batch of B of N = 7 gradients"),
    "finite_population": Shown(
        Formula("(N - B)/(N - 1)"),
        lambda: [({"B": b, "N": len(_POPULATION)},
                  _without_replacement(_POPULATION, b) * b / _population_s2()) for b in (2, 4)],
        "the variance of the batch mean over every batch, over S²/B"),
    "batch_floor": Shown(
        Formula("eta*sigma**2/(B*lamda*(2 - eta*lamda))"),
        lambda: [({"eta": e, "sigma": 1.3, "B": b, "lamda": lam},
                  _series(e**2 * 1.3**2 / b, (1 - e * lam) ** 2))
                 for e, b, lam in ((0.1, 4, 1.0), (0.3, 16, 2.0))],
        "E[e²] of e ← (1 - ηλ)e - η σξ/√B, the series summed term by term"),
    "batch_temperature": Shown(
        Formula("eta*sigma**2/(2*B*(2 - eta*lamda))"),
        lambda: [({"eta": e, "sigma": 1.3, "B": b, "lamda": lam},
                  lam / 2 * _series(e**2 * 1.3**2 / b, (1 - e * lam) ** 2))
                 for e, b, lam in ((0.1, 4, 1.0), (0.3, 16, 2.0))],
        "λ E[e²]/2 of e ← (1 - ηλ)e - η σξ/√B, the series summed term by term"),
    "batch_excess": Shown(
        Formula("eta**2*s**2/B/(2*eta*h - eta**2*h**2 - eta**2*c/B)"),
        lambda: [({"eta": e, "s": 0.7, "B": b, "h": 1.5, "c": 2.0},
                  _series(e**2 * 0.49 / b, (1 - e * 1.5) ** 2 + e**2 * 2.0 / b))
                 for e, b in ((0.1, 4), (0.4, 32))],
        "the recursion of E[e²] with its multiplicative noise c/B, summed term by term"),
    "batch_excess_small": Shown(
        Formula("eta*s**2/(2*h*B)"),
        lambda: [({"eta": e, "s": 0.7, "B": 8, "h": 1.5},
                  _series(e**2 * 0.49 / 8, (1 - e * 1.5) ** 2 + e**2 * 2.0 / 8))
                 for e in (1e-3, 5e-4)],
        "the recursion of E[e²] summed term by term at a small η", 1e-3),
    "batch_edge": Shown(
        Formula("2*h/(h**2 + c/B)"),
        lambda: [({"h": h, "c": c, "B": b},
                  _batch_edge(h, c, b))
                 for h, c, b in ((1.5, 2.0, 4), (1.0, 5.0, 64))],
        "the η where the recursion's factor (1 - ηh)² + η²c/B reaches 1 (a root-finder)"),
    # schedules
    "moment_step": Shown(
        Formula("(1 - eta*h)**2*x + eta**2*sigma**2", {"x": "\\mathbb{E}[w^2]"}),
        lambda: [({"eta": e, "h": 1.0, "sigma": 0.8, "x": x}, _noisy_step(x, e, 1.0, 0.8))
                 for e, x in ((0.1, 2.0), (0.5, 0.3))],
        "E[((1 - ηh)w - ησξ)²] by Gauss–Hermite quadrature over ξ"),
    "moment_path": Shown(
        Formula("v + (1 - eta*h)**(2*t)*(w_0**2 - v)", {"v": "v_\\infty"}),
        lambda: [({"eta": e, "h": 1.0, "t": t, "w_0": 2.0, "v": _stationary(e, 1.0, 0.8)},
                  _moments(e, 1.0, 0.8, 2.0, t)) for e, t in ((0.1, 7), (0.5, 3))],
        "the second moment's recursion iterated t times from w₀²"),
    "curvature_edge": Shown(
        Formula("2/(1 + 3*w**2)"),
        lambda: [({"w": w}, 2 / _curvature(w)) for w in (0.5, 2.0)],
        "2 over f''(w) of w²/2 + w⁴/4 by central differences", 1e-6),
    # convexity
    "gd_best_rate": Shown(
        Formula("(kappa - 1)/(kappa + 1)"),
        lambda: [({"kappa": k}, _gd_rate(k, 2 / (1 + k))) for k in (10.0, 100.0)],
        "max |1 - ηλ| over the curvatures 1 … κ at η = 2/(1 + κ)"),
    "gd_rate": Shown(
        Formula("(1 - kappa**(-1))**t"),
        lambda: [({"kappa": k, "t": t}, _gd_rate(k, 1 / k) ** t)
                 for k, t in ((10.0, 5), (50.0, 20))],
        "max |1 - ηλ| over the curvatures 1 … κ at η = 1/κ, to the t"),
    "gd_steps": Shown(
        Formula("ceiling(log(varepsilon)/log(1 - kappa**(-1)))"),
        lambda: [({"kappa": k, "varepsilon": e}, _steps_below(k, e))
                 for k, e in ((10.0, 1e-3), (100.0, 1e-6))],
        "the steps (1 - 1/κ)^t takes to reach ε, counted one by one"),
    "gd_steps_about": Shown(
        Formula("kappa*log(varepsilon**(-1))"),
        lambda: [({"kappa": k, "varepsilon": e}, _steps_below(k, e))
                 for k, e in ((100.0, 1e-6), (1000.0, 1e-3))],
        "the steps (1 - 1/κ)^t takes to reach ε, counted one by one (to 1 %)", 0.01),
    # methodology
    "bootstrap_miss": Shown(
        Formula("(1 - n**(-1))**n"),
        lambda: [({"n": n}, 1 - _distinct_share(n)) for n in (5, 40)],
        "1 - the expected share of distinct examples, by the chain of the distinct count"),
    "bootstrap_share": Shown(
        Formula("1 - (1 - n**(-1))**n"),
        lambda: [({"n": n}, _distinct_share(n)) for n in (5, 40)],
        "the expected share of distinct examples, by the chain of the distinct count"),
    "bootstrap_limit": Shown(
        Formula("1 - exp(-1)"),
        lambda: [({}, _distinct_share(n)) for n in (400, 600)],
        "the expected share of distinct examples of 400 and 600 draws (to 1e-3)", 1e-3),
    # losses
    "mean_abs_normal": Shown(
        Formula("sigma*sqrt(2/pi)"),
        lambda: [({"sigma": s}, _abs_normal(s)) for s in (1.0, 0.3)],
        "E|ε| of ε ~ N(0, σ²) by quadrature", 1e-8),
    # convolution
    "conv_out": Shown(
        Formula("floor((n + 2*p - d*(k - 1) - 1)/s) + 1"),
        lambda: [({"n": n, "p": p, "d": d, "k": k, "s": s}, _conv_length(n, k, s, p, d))
                 for n, k, s, p, d in ((32, 3, 1, 1, 1), (224, 11, 4, 2, 1), (17, 3, 2, 0, 3))],
        "the output length of torch's conv1d"),
    "conv_params": Shown(
        Formula("C_o*(C_i*k**2 + 1)", {"C_o": "C_{\\mathrm{out}}", "C_i": "C_{\\mathrm{in}}"}),
        lambda: [({"C_i": ci, "C_o": co, "k": k}, _conv_params(ci, co, k))
                 for ci, co, k in ((3, 64, 11), (16, 8, 1))],
        "the parameters of torch's Conv2d (weights and biases)"),
    "dilated_extent": Shown(
        Formula("d*(k - 1) + 1"),
        lambda: [({"d": d, "k": k}, 40 - _conv_length(40, k, 1, 0, d) + 1)
                 for k, d in ((3, 1), (5, 3))],
        "the inputs one output of torch's conv1d spans: n - n_out + 1 at stride 1"),
    "same_padding": Shown(
        Formula("d*(k - 1)/2"),
        lambda: [({"d": d, "k": k}, next(p for p in range(20)
                                         if _conv_length(30, k, 1, p, d) == 30))
                 for k, d in ((3, 1), (5, 2))],
        "the padding that keeps torch's conv1d's length at stride 1, searched"),
}  # fmt: skip


def _noisy_step(x: float, eta: float, h: float, sigma: float) -> float:
    """E[((1 - ηh)w - ησξ)²] at E[w²] = x (w = ±√x, half each), ξ standard normal, by
    Gauss–Hermite quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(20)
    weights = weights / weights.sum()
    out = 0.0
    for w in (math.sqrt(x), -math.sqrt(x)):
        out += 0.5 * float(np.sum(weights * ((1 - eta * h) * w - eta * sigma * nodes) ** 2))
    return out


def _moments(eta: float, h: float, sigma: float, w0: float, t: int) -> float:
    """E[wₜ²] of w ← (1 - ηh)w - ησξ from w₀, its recursion iterated t times."""
    m = w0 * w0
    for _ in range(t):
        m = _noisy_step(m, eta, h, sigma)
    return m


def _second(mu: float, sigma: float) -> float:
    """E[g²] of g = μ + σξ, ξ standard normal, by quadrature."""
    import scipy.integrate

    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    return scipy.integrate.quad(lambda x: (mu + sigma * x) ** 2 * pdf(x), -40, 40)[0]


def cited(text: str) -> list[str]:
    """The formulas ``text`` cites, in order, each once."""
    return list(dict.fromkeys(SLOT.findall(text)))


def render(text: str) -> str:
    """``text`` with each ``{{f:name}}`` replaced by its formula's TeX.

    Raises:
        KeyError: a citation of a formula :data:`FORMULAS` does not hold (named).
    """

    def one(m: re.Match[str]) -> str:
        if m[1] not in FORMULAS:
            raise KeyError(f"render: no formula {m[1]!r}; FORMULAS holds {sorted(FORMULAS)}")
        return FORMULAS[m[1]].formula.tex

    return SLOT.sub(one, text)


def _agree(shown: Shown) -> tuple[int, list[str]]:
    """How many settings ``shown`` was evaluated at, and those where it and its twin differ."""
    bad, pairs = [], shown.pairs()
    for values, want in pairs:
        try:
            f = shown.formula
            got = f(**values) if f._relation is None else float.__sub__(*f.sides(**values))
        except (ValueError, TypeError, ZeroDivisionError, OverflowError, IndexError) as exc:
            bad.append(f"{_at(values)}: {type(exc).__name__}")
            continue
        if not (math.isfinite(got) and abs(got - want) <= shown.tol * max(abs(want), 1.0)):
            bad.append(f"{_at(values)}: {got:.6g}, the code {want:.6g}")
    return len(pairs), bad


def _at(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v:g}" for k, v in values.items() if isinstance(v, int | float))


def formula_checks(text: str) -> list[Check]:
    """One check per formula ``text`` cites: the formula as the page shows it, evaluated at
    its settings, against its twin."""
    out = []
    for name in cited(text):
        shown = FORMULAS[name]
        read, bad = _agree(shown)
        out.append(Check(
            f"the formula ${shown.formula.tex}$ as the page shows it ({name}), at {read} "
            f"settings, against {shown.against}",
            "fail" if bad else "ok",
            "; ".join(bad) if bad else f"agrees to {shown.tol:g}",
            "the value the code computes",
        ))  # fmt: skip
    return out


# ------------------------------------------------------------------------------------------
# the census of the typed formulas


def math_pieces(text: str) -> Iterator[str]:
    """The TeX of every formula ``text`` holds between dollars (a code span's left out)."""
    for m in MATH.finditer(text):
        if m.group(1) is None:
            yield m.group(2) if m.group(2) is not None else m.group(3)


def _key(tex: str) -> str:
    return re.sub(r"\s+", " ", tex).strip()


#: arithmetic in a formula: an operator, a fraction, a root, a sum, a product, an integral
_ARITHMETIC = re.compile(r"[-+/^*]|\\(?:frac|sqrt|sum|prod|int|cdot|times)\b")


def _typed_arithmetic(tex: str) -> bool:
    """Whether ``tex`` keeps arithmetic typed around its slots (``\\eta = {{lr_tex}}`` keeps
    none; ``\\eta \\sum_t 1/\\sqrt t \\le {{f:bound}}`` does), its subscripts left out."""
    # a slot juxtaposed with a symbol, a number or a bracket multiplies it (``2{{f:floor}}``,
    # ``{{a1}}\,w^*``); a relation's command beside it does not (``\leftarrow {{rule}}``)
    bare = re.sub(r"\\(?:[a-zA-Z]+)\b(?<!\\mathbb)", " ", tex.replace("\\,", ""))
    if re.search(r"[\w\])}]§|§[\w(\[]", re.sub(r"\{\{[^{}]*\}\}", "§", bare)):
        return True
    rest = re.sub(r"\{\{[^{}]*\}\}", " ", tex)
    # an expectation, E[w²], names the quantity a rendered formula gives
    rest = re.sub(r"\\mathbb\{E\}\[[^\[\]]*\]", " ", rest)
    rest = re.sub(r"_\{[^{}]*\}|_\\?\w", "", rest)
    # a star or a transpose marks a symbol (w*, Aᵀ), it computes nothing
    rest = re.sub(r"\^(?:\*|\\top\b)", "", rest)
    return bool(_ARITHMETIC.search(rest))


def census(texts: Iterable[str]) -> dict[str, Any]:
    """The formulas between dollars of ``texts``, sorted: ``rendered`` (made of a chapter's
    slots or :data:`FORMULAS`' citations, no arithmetic typed around them), ``justified``
    (typed, with their reason in :data:`TYPED`; ``held``: those entries of the table) and
    ``unreviewed`` (typed, none of them: listed)."""
    out: dict[str, Any] = {"rendered": 0, "justified": 0, "unreviewed": [], "held": set()}
    for text in texts:
        for tex in math_pieces(text):
            if "{{" in tex and not _typed_arithmetic(tex):
                out["rendered"] += 1
            elif _key(tex) in TYPED:
                out["justified"] += 1
                out["held"].add(_key(tex))
            else:
                out["unreviewed"].append(_key(tex))
    return out


# ------------------------------------------------------------------------------------------
# the derivations' steps: update rules, recursions and their limits, each a Formula with its
# twin (the adaptive rates' sparse features and spikes, the schedules' and the batch's
# recursions)


def _rare(period: int, steps: int) -> list[float]:
    """A rare feature's gradients: 1 at every ``period``-th step, 0 otherwise."""
    return [1.0 if (t + 1) % period == 0 else 0.0 for t in range(steps)]


def _adagrad_rare(period: int, steps: int) -> tuple[float, float]:
    """descentlab's Adagrad's step on a rare and on a common feature at step ``steps`` (a
    multiple of ``period``)."""
    o = _optim()
    rare = _run(lambda p: o.Adagrad(p, lr=0.1), _rare(period, steps))[1]
    return rare, _run(lambda p: o.Adagrad(p, lr=0.1), [1.0] * steps)[1]


def _sgd_travel(grads: Sequence[float]) -> float:
    """How far descentlab's SGD (η = 0.1) travels from 0 on ``grads``."""
    import torch

    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = _optim().SGD([w], lr=0.1)
    for g in grads:
        w.grad = torch.full_like(w, float(g))
        opt.step()
    return abs(float(w.detach()))


@functools.cache
def _adam_spike(beta_1: float, beta_2: float, big: float = 10.0) -> tuple[dict, float]:
    """descentlab's Adam after 3000 steps of a gradient of 1e-9, then one of ``big``: its
    state and its step at the spike."""
    return _adam([1e-9] * 3000 + [big], betas=(beta_1, beta_2))


@functools.cache
def _harmonic(a: float, h: float, sigma: float, t: int) -> float:
    """E[w²] after ``t`` steps of w ← (1 - ηₖh)w - ηₖσξ at ηₖ = a/k from w = 0, each step's
    mean of the square by Gauss–Hermite quadrature over ξ (one node set, reused)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(20)
    weights = weights / weights.sum()
    m = 0.0
    for k in range(1, t + 1):
        eta = a / k
        # E[((1 - ηh)w - ησξ)²] for E[w²] = m, w = ±√m (half each), ξ standard normal
        m = float(np.sum(weights * ((1 - eta * h) * math.sqrt(m) - eta * sigma * nodes) ** 2))
    return m


def _with_replacement(values: Sequence[float], b: int) -> float:
    """The variance of the mean of ``b`` of ``values`` drawn with replacement, every ordered
    draw enumerated."""
    import itertools

    means = [math.fsum(c) / b for c in itertools.product(values, repeat=b)]
    mid = math.fsum(means) / len(means)
    return math.fsum((m - mid) ** 2 for m in means) / len(means)


#: examples (xᵢ, rᵢ) of a least-squares problem at its minimum: xᵢrᵢ has mean 0 and no
#: covariance with xᵢ² (the recursion's multiplicative noise is exact on it)
_EXAMPLES = ((1.0, 0.5), (1.0, -0.5), (2.0, 0.25), (2.0, -0.25))


def _batch_step(e2: float, eta: float, b: int) -> float:
    """E[e²] after one SGD step from E[e²] = ``e2`` (e = ±√e2, half each) on batches of ``b``
    of :data:`_EXAMPLES` drawn with replacement, every ordered batch enumerated: each
    example's gradient is xᵢ²e + xᵢrᵢ."""
    import itertools

    out, batches = [], list(itertools.product(_EXAMPLES, repeat=b))
    for e in (math.sqrt(e2), -math.sqrt(e2)):
        for batch in batches:
            g = math.fsum(x * x * e + x * r for x, r in batch) / b
            out.append((e - eta * g) ** 2)
    return math.fsum(out) / len(out)


def _example_moments() -> dict[str, float]:
    """h, c and s² of :data:`_EXAMPLES`: the mean and the spread of xᵢ², the spread of xᵢrᵢ."""
    n = len(_EXAMPLES)
    h = math.fsum(x * x for x, _ in _EXAMPLES) / n
    c = math.fsum((x * x - h) ** 2 for x, _ in _EXAMPLES) / n
    return {"h": h, "c": c, "s": math.sqrt(math.fsum((x * r) ** 2 for x, r in _EXAMPLES) / n)}


def _sgd_noisy_step(w: float, eta: float, h: float, sigma: float, xi: float) -> float:
    """descentlab's SGD's one step from ``w`` on the gradient hw + σξ."""
    import torch

    p = torch.nn.Parameter(torch.full((1,), w, dtype=torch.float64))
    opt = _optim().SGD([p], lr=eta)
    p.grad = torch.full_like(p, h * w + sigma * xi)
    opt.step()
    return float(p.detach())


def _chi2_var() -> float:
    """The variance of ξ², ξ standard normal, by quadrature."""
    import scipy.integrate

    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    return scipy.integrate.quad(lambda x: (x * x - 1) ** 2 * pdf(x), -40, 40)[0]


def _schedule(make: Callable[[Any], Any], t: int) -> float:
    from descentlab import schedules

    return float(make(schedules).value(t, 1.0))


FORMULAS |= {
    # adaptive rates: a rare feature, a spike
    "adagrad_step_T": Shown(Formula("eta/sqrt(T)"),
                            lambda: [({"T": v["t"], "eta": v["eta"]}, s)
                                     for v, s in _adagrad_step()],
                            "descentlab's Adagrad's T-th step on a slope g", 1e-8),
    "adagrad_rare": Shown(Formula("eta/sqrt(T/P)"),
                          lambda: [({"eta": 0.1, "T": t, "P": p}, _adagrad_rare(p, t)[0])
                                   for p, t in ((10, 200), (4, 48))],
                          "descentlab's Adagrad's step on a feature seen every P-th step, at "
                          "step T", 1e-8),
    "adagrad_rare_gain": Shown(Formula("sqrt(P)"),
                               lambda: [({"P": p}, rare / common) for p, t in ((10, 200), (4, 48))
                                        for rare, common in [_adagrad_rare(p, t)]],
                               "descentlab's Adagrad's rare step over its common one", 1e-8),
    "sgd_rare_share": Shown(Formula("P**(-1)"),
                            lambda: [({"P": p}, _sgd_travel(_rare(p, 60))
                                      / _sgd_travel([1.0] * 60)) for p in (10, 4)],
                            "descentlab's SGD's travel on a rare feature over a common one"),
    "bias_factor": Shown(Formula("1 - beta**t"),
                         lambda: [({"beta": b, "t": t},
                                   _adam([1.0] * t, betas=(b, 0.999))[0]["exp_avg"])
                                  for b, t in ((0.9, 3), (0.8, 11))],
                         "descentlab's Adam's first average after t steps of a unit gradient"),
    "adam_filled_1": Shown(Formula("1 - beta_1"),
                           lambda: [({"beta_1": b}, _adam([1.0], betas=(b, 0.999))[0][
                               "exp_avg"]) for b in (0.9, 0.8)],
                           "descentlab's Adam's first average after one unit gradient"),
    "adam_filled_2": Shown(Formula("1 - beta_2"),
                           lambda: [({"beta_2": b}, _adam([1.0], betas=(0.9, b))[0][
                               "exp_avg_sq"]) for b in (0.999, 0.99)],
                           "descentlab's Adam's second average after one unit gradient"),
    "spike_m": Shown(Formula("(1 - beta_1)*G"),
                     lambda: [({"beta_1": b1, "G": 10.0}, _adam_spike(b1, b2)[0]["exp_avg"])
                              for b1, b2 in ((0.9, 0.99), (0.8, 0.98))],
                     "descentlab's Adam's first average at a spike G = 10 after 3000 quiet "
                     "steps", 1e-6),
    "spike_v": Shown(Formula("(1 - beta_2)*G**2"),
                     lambda: [({"beta_2": b2, "G": 10.0}, _adam_spike(b1, b2)[0]["exp_avg_sq"])
                              for b1, b2 in ((0.9, 0.99), (0.8, 0.98))],
                     "descentlab's Adam's second average at a spike G = 10 after 3000 quiet "
                     "steps", 1e-6),
    "spike_step": Shown(Formula("eta*m_h/sqrt(v_h)", {"m_h": "\\hat m", "v_h": "\\hat v"}),
                        lambda: [({"eta": 0.1, "m_h": s["exp_avg"] / (1 - b1**3001),
                                   "v_h": s["exp_avg_sq"] / (1 - b2**3001)}, step)
                                 for b1, b2 in ((0.9, 0.99), (0.8, 0.98))
                                 for s, step in [_adam_spike(b1, b2)]],
                        "descentlab's Adam's step at the spike (its averages corrected)", 1e-6),
    "spike_bound": Shown(Formula("eta*(1 - beta_1)/sqrt(1 - beta_2)"),
                         lambda: [({"eta": 0.1, "beta_1": b1, "beta_2": b2},
                                   _adam_spike(b1, b2)[1])
                                  for b1, b2 in ((0.9, 0.99), (0.8, 0.98))],
                         "descentlab's Adam's step at a spike G = 10 after 3000 quiet steps",
                         1e-6),
    "noisy_even": Shown(Formula("sqrt(2)**(-1)"),
                        lambda: [({}, s / math.sqrt(_second(s, s))) for s in (1.0, 3.0)],
                        "μ over the root of E[g²] at μ = σ, by quadrature", 1e-8),
    # schedules: the noisy quadratic's recursion
    "noisy_sgd": Shown(Formula("(1 - eta*h)*w - eta*sigma*xi"),
                       lambda: [({"eta": e, "h": h, "sigma": s, "w": w, "xi": x},
                                 _sgd_noisy_step(w, e, h, s, x))
                                for e, h, s, w, x in ((0.1, 1.0, 1.0, 1.0, 0.3),
                                                      (0.5, 2.0, 0.7, -0.4, -1.2))],
                       "descentlab's SGD's step on the gradient hw + σξ"),
    "floor_fixed": Shown(Formula("eta**2*sigma**2/(1 - (1 - eta*h)**2)"),
                         lambda: [({"eta": e, "h": h, "sigma": 1.5}, _stationary(e, h, 1.5))
                                  for e, h in ((0.1, 1.0), (0.05, 3.0))],
                         "E[w²] of w ← (1 - ηh)w - ησξ, the series summed term by term"),
    "loss_floor_small": Shown(Formula("eta*sigma**2/4"),
                              lambda: [({"eta": e, "sigma": 300.0},
                                        h / 2 * _stationary(e, h, 300.0))
                                       for e, h in ((1e-4, 1.0), (1e-4, 3.0))],
                              "h E[w²]/2 of w ← (1 - ηh)w - ησξ at a small η, the series "
                              "summed term by term", 1e-3),
    "contraction": Shown(Formula("(1 - eta*h)**2"),
                         lambda: [({"eta": e, "h": 1.0},
                                   (_moments(e, 1.0, 0.8, 2.0, 4) - _stationary(e, 1.0, 0.8))
                                   / (_moments(e, 1.0, 0.8, 2.0, 3) - _stationary(e, 1.0, 0.8)))
                                  for e in (0.1, 0.5)],
                         "the second moment's distance to its floor, one step over the last, "
                         "by its recursion", 1e-8),
    "moment_gap": Shown(
        Formula("Eq(x_1 - v, (1 - eta*h)**2*(x - v))",
                {"x_1": "\\mathbb{E}[w_{t+1}^2]", "x": "\\mathbb{E}[w_t^2]", "v": "v_\\infty"}),
        lambda: [({"eta": e, "h": 1.0, "x": x, "x_1": _noisy_step(x, e, 1.0, 0.8),
                   "v": _stationary(e, 1.0, 0.8)}, 0.0) for e, x in ((0.1, 2.0), (0.5, 0.3))],
        "the second moment's step by Gauss–Hermite quadrature and its floor by the series: "
        "the sides' difference", 1e-9),
    "bias_decay": Shown(Formula("(1 - eta*h)**(2*t)"),
                        lambda: [({"eta": e, "h": 1.0, "t": t}, _moments(e, 1.0, 0.0, 1.0, t))
                                 for e, t in ((0.1, 7), (0.5, 3))],
                        "E[wₜ²] of the noiseless recursion from w₀ = 1, iterated"),
    "four_se": Shown(Formula("4*sqrt(2/R)"),
                     lambda: [({"R": r}, 4 * math.sqrt(_chi2_var() / r)) for r in (100, 400)],
                     "4 standard errors of a mean of R squared normals, Var[ξ²] by "
                     "quadrature", 1e-8),
    "harmonic": Shown(Formula("a/t"),
                      lambda: [({"a": a, "t": t},
                                _schedule(lambda S, a=a: S.inverse_time_decay(1.0, base=a), t - 1))
                               for a, t in ((1.0, 5), (0.5, 40))],
                      "descentlab's inverse_time_decay(1, base = a) at its step t - 1"),
    "harmonic_step": Shown(
        Formula("(1 - a*h/t)**2*x + a**2*sigma**2/t**2", {"x": "\\mathbb{E}[w^2]"}),
        lambda: [({"a": a, "h": 1.0, "sigma": 0.8, "t": t, "x": x},
                  _noisy_step(x, a / t, 1.0, 0.8)) for a, t, x in ((1.0, 3, 0.5), (2.0, 9, 0.1))],
        "E[((1 - ηh)w - ησξ)²] at η = a/t by Gauss–Hermite quadrature over ξ"),
    "harmonic_closes": Shown(
        Formula("Eq(c*(2*a*h - 1), a**2*sigma**2)"),
        lambda: [({"a": a, "h": 1.0, "sigma": 0.8, "c": 20000 * _harmonic(a, 1.0, 0.8, 20000)},
                  0.0) for a in (1.0, 2.0)],
        "c = t E[wₜ²] of the recursion at ηₜ = a/t iterated 20000 steps: the sides' "
        "difference", 2e-3),
    "harmonic_loss": Shown(
        Formula("h*a**2*sigma**2/(2*(2*a*h - 1)*t)"),
        lambda: [({"a": a, "h": 1.0, "sigma": 400.0, "t": 20000},
                  _harmonic(a, 1.0, 400.0, 20000) / 2) for a in (1.0, 2.0)],
        "h E[wₜ²]/2 of the recursion at ηₜ = a/t iterated t = 20000 steps", 2e-3),
    "harmonic_constant": Shown(
        Formula("a**2/(2*a*h - 1)"),
        lambda: [({"a": a, "h": 1.0}, 20000 * _harmonic(a, 1.0, 1.0, 20000))
                 for a in (1.0, 2.0)],
        "t E[wₜ²] of the recursion at ηₜ = a/t, σ = 1, iterated t = 20000 steps", 2e-3),
    "harmonic_constant_1": Shown(
        Formula("a**2/(2*a - 1)"),
        lambda: [({"a": a}, 20000 * _harmonic(a, 1.0, 1.0, 20000)) for a in (1.0, 2.0)],
        "t E[wₜ²] of the recursion at ηₜ = a/t, h = σ = 1, iterated t = 20000 steps", 2e-3),
    "offset_decay": Shown(Formula("a/(t + t_0)"),
                          lambda: [({"a": a, "t": t, "t_0": t0}, _schedule(
                              lambda S, a=a, t0=t0: S.inverse_time_decay(1 / t0, base=a / t0), t))
                                   for a, t, t0 in ((1.0, 5, 1.0), (2.0, 40, 2.0))],
                          "descentlab's inverse_time_decay(1/t₀, base = a/t₀) at step t"),
    "warmup_rate": Shown(Formula("Min(1, (t + 1)/(W + 1))"),
                         lambda: [({"t": t, "W": w}, _schedule(
                             lambda S, w=w: S.warmup(S.constant(), w, start_factor=1 / (w + 1)), t))
                                  for w, t in ((4, 0), (4, 2), (4, 9), (10, 7))],
                         "descentlab's warmup(constant(), W, start_factor = 1/(W + 1)) at "
                         "step t"),
    "curvature": Shown(Formula("1 + 3*w**2"),
                       lambda: [({"w": w}, _curvature(w)) for w in (0.5, 2.0)],
                       "f''(w) of w²/2 + w⁴/4 by central differences", 1e-6),
    # batch
    "replace_var": Shown(Formula("S**2/B"),
                         lambda: [({"S": math.sqrt(_population_s2()), "B": b},
                                   _with_replacement(_POPULATION, b)) for b in (1, 2, 3)],
                         "the variance of the batch mean over every ordered draw of B of N = 7 "
                         "gradients with replacement"),
    "quadruple_ratio": Shown(Formula("4*(N - 4)/(N - 16)"),
                             lambda: [({"N": len(v)}, _without_replacement(v, 4)
                                       / _without_replacement(v, 16))
                                      for v in (_POPULATION * 3,
                                                _POPULATION * 2 + _POPULATION[:4])],
                             "the variance of the batch mean of B = 4 over B = 16, every "
                             "batch of N = 21 and of N = 18 gradients enumerated"),
    "batch_recursion": Shown(
        Formula("((1 - eta*h)**2 + eta**2*c/B)*x + eta**2*s**2/B", {"x": "\\mathbb{E}[e^2]"}),
        lambda: [({"eta": e, "B": b, "x": x, **_example_moments()}, _batch_step(x, e, b))
                 for e, b, x in ((0.1, 1, 0.5), (0.3, 2, 0.2), (0.05, 3, 1.0))],
        "E[e²] after one SGD step, every ordered batch of four examples enumerated"),
    "noisy_batch_step": Shown(
        Formula("(1 - eta*lamda)**2*x + eta**2*sigma**2/B", {"x": "\\mathbb{E}[e^2]"}),
        lambda: [({"eta": e, "lamda": lam, "sigma": 1.3, "B": b, "x": x},
                  _noisy_step(x, e, lam, 1.3 / math.sqrt(b)))
                 for e, lam, b, x in ((0.1, 1.0, 4, 0.5), (0.3, 2.0, 16, 0.05))],
        "E[((1 - ηλ)e - ησξ/√B)²] by Gauss–Hermite quadrature over ξ"),
    "gd_step_e": Shown(Formula("(1 - eta*lamda)*e"),
                       lambda: [({"eta": e, "lamda": lam, "e": x},
                                 _sgd_noisy_step(x, e, lam, 0.0, 0.0))
                                for e, lam, x in ((0.1, 1.0, 2.0), (0.4, 7.0, -0.3))],
                       "descentlab's SGD's step on the gradient λe"),
}  # fmt: skip


#: per-example gradient noise nᵢ (mean 0) of a quadratic loss h w²/2: example i's gradient at w
#: is hw + nᵢ
_NOISE = (1.0, -1.0, 2.0, -2.0)


def _batch_moments(w: float, h: float, b: int) -> tuple[float, float]:
    """E[g_B²] and E[L(w - η g_B) - L(w)]'s coefficients over every ordered batch of ``b`` of
    :data:`_NOISE` drawn with replacement: (E[g_B], E[g_B²])."""
    import itertools

    gs = [h * w + math.fsum(c) / b for c in itertools.product(_NOISE, repeat=b)]
    return math.fsum(gs) / len(gs), math.fsum(g * g for g in gs) / len(gs)


def _loss_change(eta: float, w: float, h: float, b: int) -> float:
    """E[L(w - η g_B) - L(w)] of L = h w²/2, every ordered batch enumerated."""
    import itertools

    new = [h * (w - eta * (h * w + math.fsum(c) / b)) ** 2 / 2
           for c in itertools.product(_NOISE, repeat=b)]  # fmt: skip
    return math.fsum(new) / len(new) - h * w * w / 2


def _best_gain(w: float, h: float, b: int) -> float:
    """The largest expected decrease of L over η (scipy's bounded minimiser)."""
    import scipy.optimize

    res = scipy.optimize.minimize_scalar(lambda e: _loss_change(e, w, h, b), bounds=(0, 10 / h),
                                         method="bounded", options={"xatol": 1e-12})  # fmt: skip
    return -float(res.fun)


def _noise_b(w: float, h: float) -> int:
    """The batch of 1 … 6 whose best step gains half what the exact gradient's would."""
    exact = (h * w) ** 2 / (2 * h)
    return next(b for b in range(1, 7) if abs(_best_gain(w, h, b) - exact / 2) < 1e-9 * exact)


_S2 = math.fsum(n * n for n in _NOISE) / len(_NOISE)


def _well_temperature(eta: float, lam: float) -> float:
    """λ E[e²]/2 of e ← (1 - ηλ)e - ησξ (σ = 1), the series summed term by term."""
    return lam / 2 * _series(eta**2, (1 - eta * lam) ** 2)


_WELLS = {"s": "sharp", "f": "flat"}
_WELL_TEX = {f"lamda_{k}": f"\\lambda_{{\\mathrm{{{v}}}}}" for k, v in _WELLS.items()}


def _temperature_ratio(top: str, bottom: str) -> Shown:
    """The ``top`` well's temperature over the ``bottom`` one's ("s" sharp, "f" flat),
    ``(2 - ηλ_bottom)/(2 - ηλ_top)``, against each well's series summed term by term."""
    return Shown(
        Formula(f"(2 - eta*lamda_{bottom})/(2 - eta*lamda_{top})", _WELL_TEX),
        lambda: [
            ({"eta": e, "lamda_s": lam["s"], "lamda_f": lam["f"]},
             _well_temperature(e, lam[top]) / _well_temperature(e, lam[bottom]))
            for e, lam in ((0.1, {"s": 12.0, "f": 1.0}), (0.05, {"s": 30.0, "f": 2.0}))
        ],
        f"the {_WELLS[top]} well's temperature over the {_WELLS[bottom]} one's, each summed "
        "term by term",
    )  # fmt: skip


FORMULAS |= {
    "sgd_step": Shown(Formula("w - eta*g_B"),
                      lambda: [({"w": w, "eta": e, "g_B": g}, _sgd_noisy_step(w, e, 1.0, 1.0,
                                                                              g - w))
                               for w, e, g in ((1.0, 0.1, 0.3), (-2.0, 0.5, 4.0))],
                      "descentlab's SGD's step on the gradient g_B"),
    "batch_second": Shown(
        Formula("Eq(E, gbar**2 + S**2/B)", {"E": "\\mathbb{E}[g_B^2]", "gbar": "\\bar g"}),
        lambda: [({"E": _batch_moments(w, 1.5, b)[1], "gbar": 1.5 * w, "S": math.sqrt(_S2),
                   "B": b}, 0.0) for w, b in ((1.0, 1), (0.3, 3))],
        "E[g_B²] over every ordered batch of B of four gradients: the sides' difference"),
    "batch_change": Shown(
        Formula("-eta*gbar**2 + eta**2*h*(gbar**2 + S**2/B)/2", {"gbar": "\\bar g"}),
        lambda: [({"eta": e, "gbar": 1.5 * w, "h": 1.5, "S": math.sqrt(_S2), "B": b},
                  _loss_change(e, w, 1.5, b)) for e, w, b in ((0.1, 1.0, 1), (0.4, 0.3, 3))],
        "the loss's change after one step, every ordered batch of B of four gradients"),
    "batch_gain": Shown(
        Formula("gbar**4/(2*h*(gbar**2 + S**2/B))", {"gbar": "\\bar g"}),
        lambda: [({"gbar": 1.5 * w, "h": 1.5, "S": math.sqrt(_S2), "B": b},
                  _best_gain(w, 1.5, b)) for w, b in ((1.0, 1), (0.3, 3))],
        "the largest expected decrease over η (a minimiser), every batch enumerated", 1e-7),
    "batch_gain_scale": Shown(
        Formula("L_max/(1 + B_n/B)", {"L_max": "\\Delta L_{\\max}",
                                      "B_n": "B_{\\mathrm{noise}}"}),
        lambda: [({"L_max": (1.5 * w) ** 2 / 3.0, "B_n": _S2 / (1.5 * w) ** 2, "B": b},
                  _best_gain(w, 1.5, b)) for w, b in ((1.0, 1), (0.3, 3))],
        "the largest expected decrease over η (a minimiser), every batch enumerated", 1e-7),
    "noise_scale": Shown(
        Formula("S**2/gbar**2", {"gbar": "\\bar g"}),
        lambda: [({"S": math.sqrt(_S2), "gbar": 1.5 * w}, _noise_b(w, 1.5))
                 for w in (math.sqrt(_S2 / 2) / 1.5, math.sqrt(_S2 / 5) / 1.5)],
        "the batch (1 … 6, every batch enumerated) whose best step gains half the exact "
        "gradient's", 1e-9),
    "sharp_cooler": _temperature_ratio("f", "s"),
    "sharp_hotter": _temperature_ratio("s", "f"),
}  # fmt: skip


def _ridge_shrink(sigma: float, lam: float) -> float:
    """The ridge solution's component over the unpenalised one along an eigen-direction of
    AᵀA/N with eigenvalue ``sigma``: two least-squares solves of numpy (the penalised one as
    the augmented system [A; √(Nλ) I] w ≈ [y; 0])."""
    n = 2
    a = np.diag([math.sqrt(n * sigma), math.sqrt(n * 4.0)])  # AᵀA/N = diag(σ, 4)
    y = np.array([1.0, -0.5])
    plain = np.linalg.lstsq(a, y, rcond=None)[0]
    aug = np.vstack([a, math.sqrt(n * lam) * np.eye(2)])
    ridge = np.linalg.lstsq(aug, np.concatenate([y, np.zeros(2)]), rcond=None)[0]
    return float(ridge[0] / plain[0])


def _heavy_ball_variance(eta: float, beta: float, h: float, sigma: float) -> float:
    """The stationary variance of w under heavy ball with noise -ησξₜ on f = h w²/2: the
    discrete Lyapunov equation of its two-by-two recursion, solved by scipy."""
    import scipy.linalg

    a = np.array([[1 + beta - eta * h, -beta], [1.0, 0.0]])
    q = np.array([[(eta * sigma) ** 2, 0.0], [0.0, 0.0]])
    return float(scipy.linalg.solve_discrete_lyapunov(a, q)[0, 0])


def _weight_decay_factor(eta: float, lam: float) -> float:
    """descentlab's SGD with weight decay λ, one step on a zero gradient: the weight after
    over before."""
    import torch

    p = torch.nn.Parameter(torch.full((1,), 2.0, dtype=torch.float64))
    opt = _optim().SGD([p], lr=eta, weight_decay=lam)
    p.grad = torch.zeros_like(p)
    opt.step()
    return float(p.detach()) / 2.0


FORMULAS |= {
    "xsin_slope": Shown(Formula("sin(x) + x*cos(x)"),
                        lambda: [({"x": x}, (x + 1e-5) * math.sin(x + 1e-5) / 2e-5
                                  - (x - 1e-5) * math.sin(x - 1e-5) / 2e-5) for x in (0.7, 4.0)],
                        "the derivative of x sin x by central differences", 1e-8),
    "decay_factor": Shown(Formula("1 - eta*lamda"),
                          lambda: [({"eta": e, "lamda": lam}, _weight_decay_factor(e, lam))
                                   for e, lam in ((0.1, 0.01), (0.05, 3.0))],
                          "descentlab's SGD's step with weight decay λ on a zero gradient, "
                          "the weight after over before"),
    "shrink": Shown(Formula("sigma_i/(sigma_i + lamda)"),
                    lambda: [({"sigma_i": s, "lamda": lam}, _ridge_shrink(s, lam))
                             for s, lam in ((0.5, 0.1), (3.0, 2.0))],
                    "the ridge solution's component over the unpenalised one, both by numpy's "
                    "least squares"),
    "batch_sd": Shown(Formula("sqrt(B)**(-1)"),
                      lambda: [({"B": b}, math.sqrt(_with_replacement(_POPULATION, b)
                                                    / _with_replacement(_POPULATION, 1)))
                               for b in (2, 3)],
                      "the batch mean's standard deviation over one example's, every ordered "
                      "draw with replacement enumerated"),
    "momentum_floor": Shown(Formula("eta*sigma**2/(2*h*(1 - beta))"),
                            lambda: [({"eta": e, "beta": b, "sigma": 300.0, "h": 1.0},
                                      _heavy_ball_variance(e, b, 1.0, 300.0))
                                     for e, b in ((1e-5, 0.9), (1e-5, 0.5))],
                            "heavy ball's stationary variance at a small ηh, the Lyapunov "
                            "equation solved by scipy", 1e-3),
}  # fmt: skip


def _hb_best_eta(big: float, small: float) -> float:
    """The η that minimises heavy ball's slowest modulus over the curvatures μ and L at
    Polyak's β* (scipy's bounded minimiser on the companion matrices' eigenvalues)."""
    import scipy.optimize

    root = math.sqrt(big / small)
    beta = ((root - 1) / (root + 1)) ** 2
    worst = lambda e: max(_companion_modulus(beta, e * lam) for lam in (small, big))  # noqa: E731
    res = scipy.optimize.minimize_scalar(worst, bounds=(1e-3 / big, 4 / big), method="bounded",
                                         options={"xatol": 1e-13})  # fmt: skip
    return float(res.x)


FORMULAS["hb_eta"] = Shown(
    Formula("(2/(sqrt(L) + sqrt(mu)))**2"),
    lambda: [
        ({"L": big, "mu": small}, _hb_best_eta(big, small))
        for big, small in ((100.0, 1.0), (10.0, 0.5))
    ],
    "the η that minimises heavy ball's slowest modulus at β* (a bounded minimiser on the "
    "companion matrices' eigenvalues)",
    1e-4,
)
