r"""Batch size and sharp minima (the DL-basics lecture; Keskar et al., 2017).

The DL-basics lecture quotes Keskar et al.: large-batch methods "tend to converge to sharp
minimizers of the training and testing functions", small-batch methods "to flat minimizers ... due
to the inherent noise in the gradient estimation", and sharp minima generalize worse. This
experiment trains the same fully connected network (a small stand-in for the paper's F1,
784-5x512-10 on MNIST) from the same initialisation with several batch sizes, stops every run
at the same training loss, and measures, over several seeds with t intervals
(:func:`t_interval`; the ratio of the largest to the smallest batch's sharpness paired by seed
on the log scale, :func:`ratio_interval`)

- train and test accuracy and the generalization gap;
- Keskar's :math:`\epsilon`-sharpness (:func:`epsilon_sharpness`),

  .. math::
      \phi_{x,f}(\epsilon, A) = \frac{\max_{y \in C_\epsilon} f(x + A y) - f(x)}{1 + f(x)}
      \times 100,\qquad
      C_\epsilon = \{ y \in \mathbb{R}^p : |y_i| \le \epsilon (|(A^+ x)_i| + 1) \},

  the largest relative rise of the full-batch training loss :math:`f` in a box around the
  minimum :math:`x`, in a random :math:`p`-dimensional subspace spanned by the columns of
  :math:`A` (``subspace_dim=None``: the whole space, :math:`A = I_n`). The inner maximisation is
  solved inexactly, as in the paper, by a few iterations of L-BFGS-B (``scipy.optimize.minimize``
  with ``bounds``) started at :math:`y = 0`;
- the loss along the segment between the smallest and the largest batch's minima (Keskar's
  figure 3) and along random directions around each minimum.

Why a direct loop and not :func:`descentlab.engine.run.train`: the two runs must stop at the
*same training loss* (sharpness divides by :math:`1 + f(x)` and cross-entropy flattens as it
saturates, so minima at different depths do not compare), a stopping rule the engine does not
have. The measures are taken in the full space (:math:`A = I`, the paper's table 3, whose F1
numbers the book's card quotes) and in a random 100-dimensional subspace (its table 4).

References:
    Keskar, Mudigere, Nocedal, Smelyanskiy, Tang, "On large-batch training for deep learning:
    generalization gap and sharp minima", ICLR 2017, https://arxiv.org/abs/1609.04836.
    Li, Xu, Taylor, Studer, Goldstein, "Visualizing the loss landscape of neural nets",
    NeurIPS 2018, https://arxiv.org/abs/1712.09913 (layer-normalized random directions).
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.optimize
import scipy.stats
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from descentlab import optim
from descentlab.book.bibliography import cite_in
from descentlab.book.experiments._common import (
    ExperimentResult,
    experiment,
    finish,
    flat_params,
    load_classification,
    mean_std,
    timer,
)
from descentlab.constraints import (
    POSITIVE,
    POSITIVE_INT,
    Interval,
    ListOf,
    Options,
    check,
    invalid,
)
from descentlab.problems import models

__all__ = [
    "CONSTRAINTS",
    "DEFAULTS",
    "QUICK",
    "SharpnessResult",
    "epsilon_sharpness",
    "interpolate_losses",
    "perturbation_losses",
    "ratio_interval",
    "run",
    "t_interval",
    "train_to_loss",
    "verdict",
]

#: The full setting (about ten minutes on two cores; docs/book.md has the measured time).
DEFAULTS: dict[str, Any] = {
    "problem": "mnist1d",
    "n_train": 1000,
    "hidden": [128, 128, 128, 128, 128],
    "optimizer": "sgd",
    "lr": 0.2,
    "batch_sizes": [32, 128, 512, 1000],
    "target_loss": 0.02,
    "max_steps": 20000,
    "eval_every": 20,
    "seeds": 5,
    "eps": [1e-3, 5e-4],
    "subspace_dim": 100,
    "maxiter": 10,
    "starts": 2,
    "confidence": 0.95,
    "n_directions": 5,
    "radius": 0.5,
}

#: The small setting of the tests (seconds).
QUICK: dict[str, Any] = {
    "n_train": 300,
    "hidden": [32, 32],
    # 0.5 sat at the edge of stability for batch 16: one seed's run spiked near the target
    # and stalled at loss 1.03 for 20000 steps under one CPU's arithmetic and not another's.
    "lr": 0.2,
    "batch_sizes": [16, 300],
    "seeds": 2,
    "target_loss": 0.05,
    "eps": [1e-3],
    "subspace_dim": "full",
    "n_directions": 2,
}


# ------------------------------------------------------------------------------------------
# the loss as a function of a flat parameter vector


class _FlatLoss:
    """``w -> mean loss of model(w) on (x, y)`` for a flat parameter vector ``w`` (float64)."""

    def __init__(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.model = copy.deepcopy(model).to(dtype).eval()
        self.names = [n for n, _ in self.model.named_parameters()]
        self.shapes = [p.shape for _, p in self.model.named_parameters()]
        self.x = x.to(dtype)
        self.y = y if not torch.is_floating_point(y) else y.to(dtype)
        self.loss_fn = loss_fn
        self.x0 = flat_params(self.model)

    def params(self, w: Tensor) -> dict[str, Tensor]:
        out, i = {}, 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            k = math.prod(shape)
            out[name] = w[i : i + k].reshape(shape)
            i += k
        return out

    def __call__(self, w: Tensor) -> Tensor:
        out = torch.func.functional_call(self.model, self.params(w), (self.x,))
        return self.loss_fn(out, self.y)

    def layer_directions(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` random directions, each parameter tensor rescaled to the norm of the same
        tensor of the minimum (Li et al.'s filter normalisation, per tensor)."""
        dirs = torch.randn(n, self.x0.numel(), generator=generator, dtype=self.x0.dtype)
        i = 0
        for shape in self.shapes:
            k = math.prod(shape)
            block = dirs[:, i : i + k]
            scale = self.x0[i : i + k].norm() / block.norm(dim=1, keepdim=True).clamp_min(1e-30)
            dirs[:, i : i + k] = block * scale
            i += k
        return dirs


def _default_loss(y: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    return F.cross_entropy if not torch.is_floating_point(y) else F.mse_loss


@dataclass(frozen=True)
class SharpnessResult:
    """Keskar's epsilon-sharpness of one minimum.

    Attributes:
        sharpness: :math:`100 (f_{max} - f(x)) / (1 + f(x))`.
        loss: :math:`f(x)`, the loss at the minimum.
        max_loss: the largest loss L-BFGS-B found in the box.
        eps: the box's relative size.
        subspace_dim: ``p`` (None: the whole space).
        n_params: ``n``.
        evaluations: loss evaluations used by L-BFGS-B.
    """

    sharpness: float
    loss: float
    max_loss: float
    eps: float
    subspace_dim: int | None
    n_params: int
    evaluations: int


def epsilon_sharpness(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    *,
    eps: float = 1e-3,
    subspace_dim: int | None = 100,
    maxiter: int = 10,
    starts: int = 2,
    seed: int = 0,
) -> SharpnessResult:
    r"""Keskar et al.'s :math:`\epsilon`-sharpness of ``model`` on ``(x, y)``.

    .. math::
        \phi = \frac{\max_{y \in C_\epsilon} f(x + A y) - f(x)}{1 + f(x)} \times 100,\quad
        C_\epsilon = \{ |y_i| \le \epsilon (|(A^+ x)_i| + 1) \}

    where :math:`f` is the mean loss over all of ``(x, y)`` (full batch, evaluated in float64
    on a copy of the model) and :math:`x` the model's parameters. :math:`A` is an
    :math:`n \times p` matrix of independent standard normal entries (drawn from ``seed``),
    :math:`A^+` its pseudo-inverse; ``subspace_dim=None`` takes :math:`A = I_n`. The maximum
    is approximated, as in the paper, by ``maxiter`` iterations of
    ``scipy.optimize.minimize(method="L-BFGS-B", bounds=...)`` on :math:`-f(x + Ay)` from
    :math:`y = 0`, then from ``starts - 1`` points drawn uniformly in the box (at an exact
    minimum the gradient at :math:`y = 0` vanishes and the search could not start); the
    largest loss evaluated in the box is kept. Models in eval mode (dropout
    off, batch norm on running statistics).

    Args:
        model: the trained model (not modified).
        x: inputs.
        y: targets (class labels: cross-entropy; floats: MSE, unless ``loss_fn``).
        loss_fn: mean-reduced loss ``loss_fn(outputs, targets)``.
        eps: relative box size (> 0; the paper uses 1e-3 and 5e-4).
        subspace_dim: ``p`` (>= 1) or None for the full space.
        maxiter: L-BFGS-B iterations per start (>= 1; 10 in the paper's experiments).
        starts: L-BFGS-B runs (>= 1): from 0, then from random points of the box.
        seed: seed of :math:`A` and of the random starts.

    Returns:
        :class:`SharpnessResult`.

    Example:
        >>> m = nn.Linear(2, 1)
        >>> x, y = torch.randn(50, 2), torch.randn(50, 1)
        >>> r = epsilon_sharpness(m, x, y, eps=1e-3, subspace_dim=None)
        >>> r.sharpness >= 0
        True

    References:
        Keskar et al., ICLR 2017, section 2.2.2, https://arxiv.org/abs/1609.04836.
    """
    eps = check("eps", eps, POSITIVE)
    maxiter = check("maxiter", maxiter, POSITIVE_INT)
    starts = check("starts", starts, POSITIVE_INT)
    subspace_dim = check("subspace_dim", subspace_dim, None, POSITIVE_INT)
    f = _FlatLoss(model, x, y, loss_fn or _default_loss(y))
    a, bound = _subspace_box(f.x0, eps, subspace_dim, seed)
    with torch.no_grad():
        f0 = float(f(f.x0))
    best, count = _maximize_in_box(f, a, bound.numpy(), f0, maxiter, starts, seed)
    return SharpnessResult(
        sharpness=100.0 * (best - f0) / (1.0 + f0),
        loss=f0,
        max_loss=best,
        eps=eps,
        subspace_dim=subspace_dim,
        n_params=f.x0.numel(),
        evaluations=count,
    )


def _subspace_box(
    x0: Tensor, eps: float, subspace_dim: int | None, seed: int
) -> tuple[Tensor | None, Tensor]:
    """The subspace matrix ``A`` (None: the whole space) and the half-widths of the box
    ``eps (|A^+ x| + 1)``."""
    if subspace_dim is None:
        return None, eps * (x0.abs() + 1.0)
    g = torch.Generator().manual_seed(int(seed))
    a = torch.randn(x0.numel(), subspace_dim, generator=g, dtype=x0.dtype)
    coords = torch.linalg.lstsq(a, x0.unsqueeze(1)).solution.squeeze(1)  # A^+ x
    return a, eps * (coords.abs() + 1.0)


def _maximize_in_box(
    f: _FlatLoss, a: Tensor | None, b: np.ndarray, f0: float, maxiter: int, starts: int,
    seed: int,
) -> tuple[float, int]:  # fmt: skip
    """The largest finite loss ``f(x0 + A y)`` L-BFGS-B finds over ``|y| <= b`` from
    ``starts`` starts, and the number of evaluations."""
    x0 = f.x0
    best = [f0]
    count = [0]

    def objective(v: np.ndarray) -> tuple[float, np.ndarray]:
        yv = torch.from_numpy(v).requires_grad_(True)
        w = x0 + (yv if a is None else a @ yv)
        value = f(w)
        (grad,) = torch.autograd.grad(value, yv)
        fv = float(value.detach())
        count[0] += 1
        if math.isfinite(fv):
            best[0] = max(best[0], fv)
        return -fv, -grad.numpy()

    rng = np.random.default_rng(int(seed))
    for k in range(starts):
        # The paper starts at y = 0; at an exact minimum the gradient there vanishes and
        # L-BFGS-B cannot leave, so further starts are uniform in the box.
        y0 = np.zeros_like(b) if k == 0 else rng.uniform(-b, b)
        scipy.optimize.minimize(
            objective,
            y0,
            jac=True,
            method="L-BFGS-B",
            bounds=scipy.optimize.Bounds(-b, b),
            # No tolerance may end the search early: near a minimum the gradient is ~0.
            options={"maxiter": maxiter, "gtol": 0.0, "ftol": 0.0},
        )
    return best[0], count[0]


@torch.no_grad()
def interpolate_losses(
    model_a: nn.Module,
    model_b: nn.Module,
    x: Tensor,
    y: Tensor,
    alphas: Sequence[float],
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Loss and accuracy of :math:`(1-\alpha)\,x_a + \alpha\,x_b` for each ``alpha``.

    Keskar's figure 3: the segment between a small-batch (:math:`\alpha=0`) and a large-batch
    (:math:`\alpha=1`) minimum, extended beyond both ends.

    Returns:
        ``(losses, accuracies)`` (accuracies are NaN for regression targets).

    Example:
        >>> a, b = nn.Linear(3, 2), nn.Linear(3, 2)
        >>> losses, accs = interpolate_losses(a, b, torch.randn(8, 3), torch.zeros(8).long(),
        ...                                   [0.0, 0.5, 1.0])
        >>> losses.shape, accs.shape
        ((3,), (3,))
    """
    fa = _FlatLoss(model_a, x, y, loss_fn or _default_loss(y))
    xb = flat_params(copy.deepcopy(model_b).double())
    losses, accs = [], []
    for alpha in alphas:
        w = (1.0 - alpha) * fa.x0 + alpha * xb
        out = torch.func.functional_call(fa.model, fa.params(w), (fa.x,))
        losses.append(float(fa.loss_fn(out, fa.y)))
        if torch.is_floating_point(y):
            accs.append(float("nan"))
        else:
            accs.append(float((out.argmax(-1) == y).double().mean()))
    return np.asarray(losses), np.asarray(accs)


@torch.no_grad()
def perturbation_losses(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    ts: Sequence[float],
    n_directions: int = 5,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    seed: int = 0,
) -> np.ndarray:
    r"""Loss at :math:`x + t\,d_k` for random layer-normalized directions :math:`d_k`.

    Each :math:`d_k` is Gaussian with every parameter tensor rescaled to the norm of that
    tensor at the minimum (Li et al., 2018), so ``t`` is a perturbation relative to the
    weights' size and minima of different scale compare.

    Returns:
        ``(n_directions, len(ts))`` losses.

    Example:
        >>> m, x, y = nn.Linear(3, 2), torch.randn(8, 3), torch.zeros(8).long()
        >>> perturbation_losses(m, x, y, [-0.5, 0.0, 0.5], n_directions=4).shape
        (4, 3)
    """
    n_directions = check("n_directions", n_directions, POSITIVE_INT)
    f = _FlatLoss(model, x, y, loss_fn or _default_loss(y))
    dirs = f.layer_directions(n_directions, torch.Generator().manual_seed(int(seed)))
    return np.asarray([[float(f(f.x0 + t * d)) for t in ts] for d in dirs])


# ------------------------------------------------------------------------------------------
# training to a target loss


def train_to_loss(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    optimizer: str,
    lr: float,
    batch_size: int | None,
    target_loss: float,
    max_steps: int,
    eval_every: int,
    seed: int,
) -> dict[str, Any]:
    """Train ``model`` in place with a descentlab optimizer until the full-batch training loss
    is <= ``target_loss`` (checked every ``eval_every`` steps) or ``max_steps``.

    Mini-batches are slices of a fresh permutation per epoch (``torch.Generator`` seeded with
    ``seed``); ``batch_size=None`` is full-batch gradient descent.

    Returns:
        ``{"steps", "epochs", "reached", "curve_steps", "curve_loss"}``.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> m, x = nn.Linear(4, 2), torch.randn(64, 4)
        >>> y = (x[:, 0] > 0).long()
        >>> log = train_to_loss(m, x, y, optimizer="sgd", lr=0.5, batch_size=None,
        ...                     target_loss=0.6, max_steps=500, eval_every=5, seed=0)
        >>> log["reached"], log["curve_loss"][-1] <= 0.6
        (True, True)
    """
    loss_fn = _default_loss(y)
    opt = optim.get(optimizer)(model.parameters(), lr=lr)
    n = int(x.shape[0])
    gen = torch.Generator().manual_seed(int(seed))
    xs, ys, pos = x, y, n
    steps, curve_steps, curve_loss = 0, [0], []
    with torch.no_grad():
        curve_loss.append(float(loss_fn(model(x), y)))
    reached = curve_loss[0] <= target_loss
    model.train()
    while not reached and steps < max_steps:
        if batch_size is None or batch_size >= n:
            xb, yb = x, y
        else:
            if pos + batch_size > n:
                perm = torch.randperm(n, generator=gen)
                xs, ys, pos = x[perm], y[perm], 0
            xb, yb = xs[pos : pos + batch_size], ys[pos : pos + batch_size]
            pos += batch_size
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        value = loss.item()
        if not math.isfinite(value):
            raise ValueError(f"training diverged (loss {value}) at step {steps}; lower lr")
        loss.backward()
        opt.step()
        steps += 1
        if steps % eval_every == 0 or steps == max_steps:
            with torch.no_grad():
                value = float(loss_fn(model(x), y))
            curve_steps.append(steps)
            curve_loss.append(value)
            reached = value <= target_loss
    bs = n if batch_size is None else min(batch_size, n)
    return {
        "steps": steps,
        "epochs": steps * bs / n,
        "reached": reached,
        "curve_steps": curve_steps,
        "curve_loss": curve_loss,
    }


@torch.no_grad()
def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> tuple[float, float]:
    model.eval()
    out = model(x)
    return float(F.cross_entropy(out, y)), float((out.argmax(-1) == y).float().mean())


# ------------------------------------------------------------------------------------------
# intervals over seeds


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` and its two-sided Student t interval over them (``n - 1`` degrees
    of freedom, scale: the standard error with ``ddof=1``).

    One value has no interval: ``(mean, -inf, inf)``. Values all equal: ``(mean, mean, mean)``.

    Example:
        >>> m, lo, hi = t_interval([1.0, 2.0, 3.0])
        >>> m, round(lo, 4), round(hi, 4)
        (2.0, -0.4841, 4.4841)
    """
    a = np.asarray(values, dtype=np.float64)
    mean = float(a.mean())
    if a.size < 2:
        return mean, -math.inf, math.inf
    sem = float(a.std(ddof=1)) / math.sqrt(a.size)
    if sem == 0.0:
        return mean, mean, mean
    lo, hi = scipy.stats.t.interval(confidence, a.size - 1, loc=mean, scale=sem)
    return mean, float(lo), float(hi)


def ratio_interval(
    large: Sequence[float], small: Sequence[float], confidence: float = 0.95
) -> tuple[float, float, float]:
    """The ratio ``large / small`` of paired positive values (one pair per seed): the
    exponential of the mean paired difference of their logarithms (the geometric mean of the
    per-seed ratios) and of its :func:`t_interval`. NaN where a value is not positive.

    Example:
        >>> r, lo, hi = ratio_interval([2.0, 4.0, 8.0], [1.0, 1.0, 2.0])
        >>> round(r, 4)
        3.1748
    """
    a, b = np.asarray(large, np.float64), np.asarray(small, np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"large and small must pair up, got {a.size} and {b.size} values")
    if not (np.all(a > 0) and np.all(b > 0)):
        return math.nan, math.nan, math.nan
    m, lo, hi = t_interval(np.log(a) - np.log(b), confidence)
    return math.exp(m), math.exp(lo), math.exp(hi)


def verdict(ratio: float, lo: float, hi: float) -> str:
    """``"sharper"`` (the interval lies above 1), ``"reversed"`` (the ratio is below 1: the
    large batch's minimum is the flatter), ``"tie"`` (a ratio >= 1 whose interval contains 1)
    or ``"undefined"`` (NaN: a sharpness was not positive)."""
    if not all(math.isfinite(v) or math.isinf(v) for v in (ratio, lo, hi)) or math.isnan(ratio):
        return "undefined"
    if lo > 1.0:
        return "sharper"
    if ratio < 1.0:
        return "reversed"
    return "tie"


# ------------------------------------------------------------------------------------------
# the experiment


#: The options' constraints.
CONSTRAINTS: dict[str, list[Any]] = {
    "seeds": [POSITIVE_INT],
    "hidden": [POSITIVE_INT, ListOf(POSITIVE_INT)],
    "lr": [POSITIVE],
    "batch_sizes": [ListOf(POSITIVE_INT, min_len=2)],
    "target_loss": [POSITIVE],
    "max_steps": [POSITIVE_INT],
    "eval_every": [POSITIVE_INT],
    "eps": [POSITIVE, ListOf(POSITIVE)],
    "subspace_dim": [None, Options("full", 0), POSITIVE_INT],
    "maxiter": [POSITIVE_INT],
    "starts": [POSITIVE_INT],
    "confidence": [Interval(numbers.Real, 0, 1, closed="neither")],
    "n_directions": [POSITIVE_INT],
    "radius": [POSITIVE],
}


def _full_is_none(value: Any) -> int | None:
    return None if value in ("full", 0, None) else value


@dataclass
class _Setting:
    """The checked options and the data of one sharpness run."""

    seeds: int
    hidden: tuple[int, ...]
    lr: float
    batches: list[int]
    target: float
    max_steps: int
    eval_every: int
    eps: list[float]
    p: int | None
    maxiter: int
    starts: int
    confidence: float
    n_dirs: int
    radius: float
    optimizer: str
    n: int
    x: Tensor
    y: Tensor
    x_test: Tensor
    y_test: Tensor
    input_shape: Any
    n_outputs: int

    @property
    def labels(self) -> list[str]:
        """Row labels: ``small`` (the smallest batch), ``large`` (the largest), ``mid <B>``."""
        last = len(self.batches) - 1
        return ["small" if i == 0 else "large" if i == last else f"mid {b}"
                for i, b in enumerate(self.batches)]  # fmt: skip

    @property
    def spaces(self) -> list[tuple[str, int | None]]:
        """The measures: ``("full", None)`` (the paper's table 3), then ``("sub", p)``."""
        return [("full", None)] + ([("sub", self.p)] if self.p is not None else [])

    def measures(self) -> list[str]:
        """The sharpness measures' record keys, the full space's first."""
        return [f"sharp_{kind}_{e:g}" for kind, _ in self.spaces for e in self.eps]

    def where(self, kind: str) -> str:
        return f"a random {self.p}-d subspace" if kind == "sub" else "the full space"


def _setting(o: dict[str, Any], v: dict[str, Any]) -> _Setting:
    """The setting of the checked options ``v`` (and of ``o``: the optimizer, the data)."""
    batches = list(v["batch_sizes"])
    if any(b >= a for a, b in zip(batches[1:], batches, strict=False)):
        raise invalid("batch_sizes", "strictly increasing", batches)
    eps = v["eps"] if isinstance(v["eps"], list) else [v["eps"]]
    hidden = tuple(v["hidden"]) if isinstance(v["hidden"], list) else (v["hidden"],)
    optim.get(o["optimizer"])  # unknown names fail before any work
    data = load_classification(o["problem"], o["n_train"])
    n, splits = data.n, data.splits
    if batches[-1] > n:
        raise invalid("batch_sizes", f"at most the {n} training examples (n_train)", batches)
    return _Setting(
        v["seeds"], hidden, v["lr"], batches, v["target_loss"], v["max_steps"],
        v["eval_every"], eps, _full_is_none(v["subspace_dim"]), v["maxiter"], v["starts"],
        v["confidence"], v["n_directions"], v["radius"], o["optimizer"], n,
        splits.x_train[:n], splits.y_train[:n], data.x_test, data.y_test, splits.input_shape,
        splits.n_outputs,
    )  # fmt: skip


@dataclass
class _Record:
    """What the seeds measured, per batch-size label."""

    alphas: np.ndarray
    ts: np.ndarray
    per: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    curves: dict[str, list[Any]] = field(default_factory=dict)
    interp: list[dict[str, Any]] = field(default_factory=list)
    perturb: dict[str, list[Any]] = field(default_factory=dict)

    def data(self, stats: dict[str, Any]) -> dict[str, Any]:
        """The figures' and the card's data."""
        return {
            "alphas": self.alphas,
            "interpolation": self.interp,
            "perturbation_t": self.ts,
            "perturbation": self.perturb,
            "training_curves": self.curves,
            "per_seed": self.per,
            "stats": stats,
        }


def _measure(
    st: _Setting, model: nn.Module, log: dict[str, Any], s: int, rec: dict[str, list[Any]]
) -> None:
    """Accuracies, weight norm and sharpness of one trained model, appended to ``rec``."""
    tr_loss, tr_acc = _accuracy(model, st.x, st.y)
    te_loss, te_acc = _accuracy(model, st.x_test, st.y_test)
    for key, value in (
        ("seed", s), ("steps", log["steps"]), ("epochs", log["epochs"]),
        ("reached", log["reached"]),
        ("train_loss", tr_loss), ("train_acc", tr_acc), ("test_loss", te_loss),
        ("test_acc", te_acc), ("weight_norm", float(flat_params(model).norm())),
    ):  # fmt: skip
        rec.setdefault(key, []).append(value)
    for kind, p in st.spaces:
        for e in st.eps:
            found = epsilon_sharpness(
                model, st.x, st.y, eps=e, subspace_dim=p, maxiter=st.maxiter, starts=st.starts,
                seed=s,
            )  # fmt: skip
            rec.setdefault(f"sharp_{kind}_{e:g}", []).append(found.sharpness)


def _seed(st: _Setting, s: int, rec: _Record) -> None:
    """One seed: one initialisation trained with each batch size, then measured."""
    trained: dict[str, nn.Module] = {}
    for label, bs in zip(st.labels, st.batches, strict=True):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)  # the same initialisation for every batch size
            model = models.build(
                "digits_mlp", input_shape=st.input_shape, n_outputs=st.n_outputs,
                hidden=st.hidden,
            )  # fmt: skip
        log = train_to_loss(
            model, st.x, st.y, optimizer=st.optimizer, lr=st.lr, batch_size=bs,
            target_loss=st.target, max_steps=st.max_steps, eval_every=st.eval_every, seed=s,
        )  # fmt: skip
        trained[label] = model
        _measure(st, model, log, s, rec.per.setdefault(label, {}))
        rec.curves.setdefault(label, []).append(
            {"steps": log["curve_steps"], "loss": log["curve_loss"]}
        )
        rec.perturb.setdefault(label, []).append(
            perturbation_losses(model, st.x, st.y, rec.ts, st.n_dirs, seed=1000 + s).tolist()
        )
    small, large = trained["small"], trained["large"]
    tr_l, tr_a = interpolate_losses(small, large, st.x, st.y, rec.alphas)
    te_l, te_a = interpolate_losses(small, large, st.x_test, st.y_test, rec.alphas)
    rec.interp.append({"train_loss": tr_l, "train_acc": tr_a, "test_loss": te_l, "test_acc": te_a})


def _stats(st: _Setting, per: dict[str, dict[str, list[Any]]]) -> dict[str, Any]:
    """Per measure (space and eps): each batch size's mean sharpness with its t interval over
    seeds, its ratio to the smallest batch's (paired by seed, on the log scale) with its
    interval, and the verdict of the largest against the smallest batch."""
    out: dict[str, Any] = {}
    small = per["small"]
    for kind, p in st.spaces:
        for e in st.eps:
            key = f"sharp_{kind}_{e:g}"
            rows = []
            for label, b in zip(st.labels, st.batches, strict=True):
                m, lo, hi = t_interval(per[label][key], st.confidence)
                r, rlo, rhi = ratio_interval(per[label][key], small[key], st.confidence)
                rows.append({"batch": label, "batch_size": b, "mean": m, "lo": lo, "hi": hi,
                             "ratio": r, "ratio_lo": rlo, "ratio_hi": rhi})  # fmt: skip
            last = rows[-1]
            out[key] = {
                "space": kind, "subspace_dim": p, "eps": e, "by_batch": rows,
                "ratio": last["ratio"], "ratio_lo": last["ratio_lo"],
                "ratio_hi": last["ratio_hi"],
                "verdict": verdict(last["ratio"], last["ratio_lo"], last["ratio_hi"]),
            }  # fmt: skip
    gaps = {
        label: np.asarray(per[label]["train_acc"]) - np.asarray(per[label]["test_acc"])
        for label in st.labels
    }
    m, lo, hi = t_interval(gaps["large"] - gaps["small"], st.confidence)
    out["gap_difference"] = {"mean": m, "lo": lo, "hi": hi}
    out["seeds"] = st.seeds
    out["confidence"] = st.confidence
    return out


def _table(
    st: _Setting, per: dict[str, dict[str, list[Any]]], stats: dict[str, Any]
) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and the rows (one per batch size: means over seeds) of the table."""
    columns = ["batch", "batch_size", "steps", "epochs", "train_loss", "train_acc", "test_acc",
               "gap"]  # fmt: skip
    keys = st.measures()
    columns += [k.removeprefix("sharp_") for k in keys]
    columns += ["ratio_" + k.removeprefix("sharp_") for k in keys]
    rows = []
    for i, (label, bs) in enumerate(zip(st.labels, st.batches, strict=True)):
        rec = per[label]
        gaps = [a - b for a, b in zip(rec["train_acc"], rec["test_acc"], strict=True)]
        row: dict[str, Any] = {"batch": label, "batch_size": bs}
        for key in ("steps", "epochs", "train_loss", "train_acc", "test_acc"):
            row[key] = mean_std(rec[key])[0]
        row["gap"] = mean_std(gaps)[0]
        for k in keys:
            b = stats[k]["by_batch"][i]
            row[k.removeprefix("sharp_")] = b["mean"]
            row["ratio_" + k.removeprefix("sharp_")] = b["ratio"]
        rows.append(row)
    return columns, rows


def _interval_text(m: float, lo: float, hi: float, digits: int = 3) -> str:
    return f"{m:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"


def _check(
    result: ExperimentResult, st: _Setting, per: dict[str, dict[str, list[Any]]],
    stats: dict[str, Any],
) -> None:  # fmt: skip
    """The lecture's predictions, from the intervals: a tie is not a win. An empirical claim
    the seeds do not bear out is ○ (not reproduced here), as on the book's card."""
    pct = f"{100 * st.confidence:g} %"
    small, large = st.batches[0], st.batches[-1]
    for key in st.measures():
        s = stats[key]
        result.check(
            f"the large-batch minimum is sharper (B={large} vs {small}, eps={s['eps']:g}, "
            f"{st.where(s['space'])}; ratio, {pct} t interval over {st.seeds} seeds)",
            s["verdict"] == "sharper",
            f"{_interval_text(s['ratio'], s['ratio_lo'], s['ratio_hi'])} ({s['verdict']})",
            "interval above 1", unmet="not_reproduced",
        )  # fmt: skip
    g = stats["gap_difference"]
    result.check(
        f"the large batch generalizes worse (train-test accuracy gap, large - small, paired, "
        f"{pct} interval)", g["lo"] > 0,
        _interval_text(g["mean"], g["lo"], g["hi"]), "interval above 0", unmet="not_reproduced",
    )  # fmt: skip
    missed = _missed(st, per)
    result.check(
        "every run reached the target training loss", not missed,
        "yes" if not missed else "no: " + "; ".join(missed),
        f"yes (within {st.max_steps} steps a run)", unmet="not_reproduced",
    )  # fmt: skip


def _missed(st: _Setting, per: dict[str, dict[str, list[Any]]]) -> list[str]:
    """The runs that stopped at ``max_steps`` above the target loss, each with its loss."""
    out = []
    for label, bs in zip(st.labels, st.batches, strict=True):
        rec = per[label]
        for i, ok in enumerate(rec["reached"]):
            if not ok:
                seed, loss, steps = rec["seed"][i], rec["train_loss"][i], rec["steps"][i]
                out.append(f"batch {bs} seed {seed} at loss {loss:.3g} after {steps} steps")
    return out


def _notes(st: _Setting, stats: dict[str, Any], per: dict[str, dict[str, list[Any]]]) -> list[str]:
    flagged = [
        f"eps={s['eps']:g} in {st.where(s['space'])}: {s['verdict']} (ratio "
        f"{_interval_text(s['ratio'], s['ratio_lo'], s['ratio_hi'])})"
        for k in st.measures() if (s := stats[k])["verdict"] != "sharper"
    ]  # fmt: skip
    notes = [
        f"Every batch size ({', '.join(map(str, st.batches))}) starts from the same "
        f"initialisation and stops at the same full-batch training loss ({st.target:g}); "
        f"sharpness is Keskar's epsilon-sharpness of that loss (x100, relative to 1 + f), "
        f"maximised by {st.starts} x {st.maxiter} L-BFGS-B iterations (from the minimum, then "
        f"from random points of the box) in the full space (A = I, the paper's table 3)"
        + (f" and in {st.where('sub')} (A: standard normal n x p)" if st.p is not None else "")
        + f". Means over {st.seeds} seed(s) with {100 * st.confidence:g} % t intervals; the "
        "ratio to the smallest batch is paired by seed (the mean difference of log-sharpness, "
        "exponentiated).",
        "The small batch's gradient noise keeps it out of narrow valleys: at equal training "
        "loss its minimum is flatter, and in Keskar et al.'s account that is why it "
        "generalizes better. Sharpness is not invariant to reparametrisation "
        f"{cite_in('dinh2017')}, so compare minima of the same network, as here.",
    ]
    if flagged:
        notes.append("Not sharper at every box size: " + "; ".join(flagged) + ".")
    if missed := _missed(st, per):
        notes.append(
            f"Not every run reached the target loss {st.target:g} within its cap of "
            f"{st.max_steps} steps ({'; '.join(missed)}): those minima are not at the same "
            "depth as the others', so the sharpness comparison is not the paper's protocol "
            "(the card is ○, not reproduced)."
        )
    return notes


@experiment(DEFAULTS, QUICK, CONSTRAINTS)
def run(o: dict[str, Any], v: dict[str, Any], *, quick: bool, seed: int) -> ExperimentResult:
    """Batch sizes on MNIST-1D (a fully connected ReLU network): accuracy, generalization
    gap, Keskar's epsilon-sharpness with intervals over seeds.

    For each of ``seeds`` seeds, one initialisation is trained once per batch size of
    ``batch_sizes`` with the same optimizer and learning rate, each until its full-batch
    training loss is <= ``target_loss``. Then :func:`epsilon_sharpness` at each ``eps`` in the
    full space and in a random ``subspace_dim``-dimensional subspace, the interpolation
    between the smallest and the largest batch's minima and the loss along random directions
    are measured.

    Args:
        quick: the small preset (:data:`QUICK`) instead of :data:`DEFAULTS`.
        seed: first seed (seeds ``seed .. seed + seeds - 1``).
        problem: a classification dataset (``mnist1d``).
        n_train: training examples used (the first ``n_train`` of the training split).
        hidden: widths of the hidden layers (an int: one layer).
        optimizer: descentlab optimizer name.
        lr: learning rate (shared by every batch size).
        batch_sizes: strictly increasing batch sizes (at least 2; at most ``n_train``, which
            is full-batch gradient descent).
        target_loss: the training loss every run stops at.
        max_steps, eval_every: step limit per run, steps between checks of the loss.
        seeds: number of seeds.
        eps: box sizes of the sharpness (one or several).
        subspace_dim: ``p`` of the random subspace ("full"/0 skips the subspace measure).
        maxiter, starts: L-BFGS-B iterations per start, and starts (the first at the
            minimum, then random points of the box).
        confidence: level of the t intervals over seeds.
        n_directions, radius: random directions of the perturbation curves, and their
            largest relative perturbation.

    Returns:
        an :class:`ExperimentResult` with one row per batch size (means over seeds), the
        intervals in ``data["stats"]`` and the curves in ``data``.
    """
    st = _setting(o, v)
    rec = _Record(alphas=np.linspace(-0.5, 1.5, 41), ts=np.linspace(-st.radius, st.radius, 41))
    with timer() as elapsed:
        for s in range(seed, seed + st.seeds):
            _seed(st, s, rec)
        seconds = elapsed()
    stats = _stats(st, rec.per)
    columns, rows = _table(st, rec.per, stats)
    result = ExperimentResult(
        "sharpness", f"Batch size and sharp minima {cite_in('keskar2017')}", columns, rows
    )
    _check(result, st, rec.per, stats)
    result.data = rec.data(stats)
    n_params = sum(p.numel() for p in models.build(
        "digits_mlp", input_shape=st.input_shape, n_outputs=st.n_outputs, hidden=st.hidden
    ).parameters())  # fmt: skip
    result.data["n_params"] = n_params
    options = {**o, "n_train": st.n, "hidden": list(st.hidden), "batch_sizes": st.batches,
               "subspace_dim": st.p, "eps": st.eps}  # fmt: skip
    notes = _notes(st, stats, rec.per)
    return finish(result, quick=quick, seed=seed, options=options, seconds=seconds, notes=notes)
