"""Float64 loops written from the lectures' equations, in the lectures' notation.

The independent references of the book's formula checks and of
``tests/test_optim_lectures.py``: plain NumPy, no descentlab code. Each loop takes the start
``w``, a gradient function ``grad(w) -> array`` and the hyperparameters, and returns every
iterate (``steps + 1`` rows, the start first). ``lrs`` (where accepted) gives the learning
rate of each step (a schedule).

:data:`QUADRATIC` is the book's test problem: ``f(w) = ½ Σ a_i w_i² - b·w`` with unequal
curvatures.

Example:
    >>> import numpy as np
    >>> path = sgd(np.array([1.0]), lambda w: 2 * w, lr=0.25, steps=2)
    >>> path[:, 0].tolist()
    [1.0, 0.5, 0.25]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "QUADRATIC",
    "Quadratic",
    "adadelta",
    "adagrad",
    "adam",
    "adam_amsgrad",
    "adam_folded",
    "bold_driver",
    "cs231n_momentum",
    "lookahead_nesterov",
    "rmsprop",
    "sgd",
    "velocity",
]

Grad = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Quadratic:
    """``f(w) = ½ Σ a_i w_i² - b·w`` from ``w0``."""

    a: np.ndarray
    b: np.ndarray
    w0: np.ndarray

    def grad(self, w: np.ndarray) -> np.ndarray:
        return self.a * w - self.b

    def loss(self, w: np.ndarray) -> float:
        return float(0.5 * (self.a * w * w).sum() - (self.b * w).sum())


QUADRATIC = Quadratic(
    a=np.array([1.0, 4.0, 0.25, 9.0]),
    b=np.array([1.0, -2.0, 0.5, 3.0]),
    w0=np.array([0.5, 1.0, -2.0, 0.3]),
)


def _rates(lr: float, lrs: Sequence[float] | None, steps: int) -> list[float]:
    return [lr] * steps if lrs is None else [float(x) for x in lrs[:steps]]


def sgd(w: np.ndarray, grad: Grad, lr: float, steps: int, lrs=None) -> np.ndarray:
    """w ← w - η ∇L(w) (every lecture)."""
    out = [w.copy()]
    for eta in _rates(lr, lrs, steps):
        w = w - eta * grad(w)
        out.append(w.copy())
    return np.asarray(out)


def velocity(w: np.ndarray, grad: Grad, lr: float, a: float, steps: int, lrs=None) -> np.ndarray:
    """v ← αv - η∇L(w); w ← w + v, v⁰ = 0 (lectures 000, 001, 003 eq. 5.12, 004)."""
    v = np.zeros_like(w)
    out = [w.copy()]
    for eta in _rates(lr, lrs, steps):
        v = a * v - eta * grad(w)
        w = w + v
        out.append(w.copy())
    return np.asarray(out)


def cs231n_momentum(
    w: np.ndarray, grad: Grad, lr: float, mu: float, steps: int, lrs=None
) -> np.ndarray:
    """v ← ρv + ∇f(x); x ← x - αv (lecture 003's cs231n form; lecture 002's a ← βa + g)."""
    b = None
    out = [w.copy()]
    for eta in _rates(lr, lrs, steps):
        g = grad(w)
        b = g if b is None else mu * b + g
        w = w - eta * b
        out.append(w.copy())
    return np.asarray(out)


def lookahead_nesterov(w: np.ndarray, grad: Grad, lr: float, a: float, steps: int) -> np.ndarray:
    """v ← αv - η∇L(w + αv); w ← w + v (lecture 001; 003 eq. 5.13)."""
    v = np.zeros_like(w)
    out = [w.copy()]
    for _ in range(steps):
        v = a * v - lr * grad(w + a * v)
        w = w + v
        out.append(w.copy())
    return np.asarray(out)


def _root(acc: np.ndarray, eps: float, inside: bool) -> np.ndarray:
    return np.sqrt(acc + eps) if inside else eps + np.sqrt(acc)


def adagrad(
    w: np.ndarray, grad: Grad, lr: float, eps: float, steps: int, inside: bool = False
) -> np.ndarray:
    """r ← r + g⊙g; w ← w - η g/(ε + √r) (``inside``: g/√(r + ε), lecture 002)."""
    r = np.zeros_like(w)
    out = [w.copy()]
    for _ in range(steps):
        g = grad(w)
        r = r + g * g
        w = w - lr * g / _root(r, eps, inside)
        out.append(w.copy())
    return np.asarray(out)


def rmsprop(
    w: np.ndarray, grad: Grad, lr: float, rho: float, eps: float, steps: int, inside: bool = False
) -> np.ndarray:
    """r ← ρr + (1-ρ)g⊙g; w ← w - η g/(ε + √r) (``inside``: g/√(r + ε), lectures 002, 004)."""
    r = np.zeros_like(w)
    out = [w.copy()]
    for _ in range(steps):
        g = grad(w)
        r = rho * r + (1 - rho) * g * g
        w = w - lr * g / _root(r, eps, inside)
        out.append(w.copy())
    return np.asarray(out)


def _moments(w: np.ndarray, grad: Grad, b1: float, b2: float, steps: int, apply) -> np.ndarray:
    """The Adam family's loop: m ← β1 m + (1-β1) g, v ← β2 v + (1-β2) g⊙g, then
    ``w = apply(w, m, v, t)``; the iterates."""
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    out = [w.copy()]
    for t in range(1, steps + 1):
        g = grad(w)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = apply(w, m, v, t)
        out.append(w.copy())
    return np.asarray(out)


def adam(
    w: np.ndarray,
    grad: Grad,
    lr: float,
    b1: float,
    b2: float,
    eps: float,
    steps: int,
    *,
    bias_correction: bool = True,
    inside: bool = False,
) -> np.ndarray:
    """Kingma & Ba's Algorithm 1 (lecture 004; 001; 003 Alg. 5-5 with the moments corrected
    on the fly): m̂ = m/(1-β1^t), v̂ = v/(1-β2^t), w ← w - η m̂/(√v̂ + ε)."""

    def apply(w, m, v, t):
        mh, vh = (m / (1 - b1**t), v / (1 - b2**t)) if bias_correction else (m, v)
        return w - lr * mh / _root(vh, eps, inside)

    return _moments(w, grad, b1, b2, steps, apply)


def adam_folded(
    w: np.ndarray, grad: Grad, lr: float, b1: float, b2: float, eps: float, steps: int
) -> np.ndarray:
    """Lecture 002's Adam: w ← w - η/√(v + ε) · √(1-β2^t)/(1-β1^t) · m."""

    def apply(w, m, v, t):
        return w - lr / np.sqrt(v + eps) * math.sqrt(1 - b2**t) / (1 - b1**t) * m

    return _moments(w, grad, b1, b2, steps, apply)


def adam_amsgrad(
    w: np.ndarray, grad: Grad, lr: float, b1: float, b2: float, eps: float, steps: int
) -> np.ndarray:
    """AMSGrad: Adam with the running maximum of v (torch's form)."""
    vmax = [np.zeros_like(w)]

    def apply(w, m, v, t):
        vmax[0] = np.maximum(vmax[0], v)
        return w - lr * (m / (1 - b1**t)) / (np.sqrt(vmax[0] / (1 - b2**t)) + eps)

    return _moments(w, grad, b1, b2, steps, apply)


def adadelta(w: np.ndarray, grad: Grad, rho: float, eps: float, steps: int) -> np.ndarray:
    """Lecture 002: G ← γG + (1-γ)g², ΔW = √(H + ε)/√(G + ε) g, W ← W - ΔW,
    H ← γH + (1-γ)ΔW²."""
    G = np.zeros_like(w)
    H = np.zeros_like(w)
    out = [w.copy()]
    for _ in range(steps):
        g = grad(w)
        G = rho * G + (1 - rho) * g * g
        dw = np.sqrt(H + eps) / np.sqrt(G + eps) * g
        w = w - dw
        H = rho * H + (1 - rho) * dw * dw
        out.append(w.copy())
    return np.asarray(out)


def bold_driver(
    w: np.ndarray,
    grad: Grad,
    loss: Callable[[np.ndarray], float],
    lr: float,
    steps: int,
    increase: float = 1.0,
    decrease: float = 0.5,
) -> tuple[np.ndarray, list[float]]:
    """The loss-driven rule (bold driver with rejection) as a training loop runs it: the rule
    sees the loss after each step, so the first step is taken and its loss remembered; after
    that a step whose loss rose is undone and the rate multiplied by ``decrease``, else kept
    and the rate multiplied by ``increase``. Returns the iterates and each step's rate."""
    out, rates = [w.copy()], []
    f = None
    for _ in range(steps):
        rates.append(lr)
        trial = w - lr * grad(w)
        ft = loss(trial)
        if f is not None and ft > f:
            lr *= decrease
        else:
            w, f = trial, ft
            if len(rates) > 1:
                lr *= increase
        out.append(w.copy())
    return np.asarray(out), rates
