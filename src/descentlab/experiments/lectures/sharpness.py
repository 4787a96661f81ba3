r"""Batch size and sharp minima (the DL-basics lecture; Keskar et al., 2017).

The DL-basics lecture quotes Keskar et al.: large-batch methods "tend to converge to sharp
minimizers of the training and testing functions", small-batch methods "to flat minimizers ... due
to the inherent noise in the gradient estimation", and sharp minima generalize worse. This
experiment trains the same network from the same initialisation with a small and a large batch,
stops both at the same training loss, and measures

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
- the loss along the segment between the two minima (Keskar's figure 3) and along random
  directions around each of them.

Why a direct loop and not :func:`descentlab.engine.run.train`: the two runs must stop at the
*same training loss* (sharpness divides by :math:`1 + f(x)` and cross-entropy flattens as it
saturates, so minima at different depths do not compare), a stopping rule the engine does not
have.

References:
    Keskar, Mudigere, Nocedal, Smelyanskiy, Tang, "On large-batch training for deep learning:
    generalization gap and sharp minima", ICLR 2017, https://arxiv.org/abs/1609.04836.
    Li, Xu, Taylor, Studer, Goldstein, "Visualizing the loss landscape of neural nets",
    NeurIPS 2018, https://arxiv.org/abs/1712.09913 (layer-normalized random directions).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.optimize
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from descentlab import optim
from descentlab.constraints import POSITIVE, POSITIVE_INT, ListOf, Options, check, invalid
from descentlab.experiments.lectures._common import (
    ExperimentResult,
    experiment,
    finish,
    flat_params,
    load_classification,
    mean_std,
    timer,
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
    "run",
    "train_to_loss",
]

#: The full setting (a few minutes on two cores).
DEFAULTS: dict[str, Any] = {
    "problem": "mnist1d",
    "n_train": 2000,
    "hidden": 100,
    "optimizer": "sgd",
    "lr": 0.5,
    "small_batch": 32,
    "large_batch": None,
    "target_loss": 0.02,
    "max_steps": 20000,
    "eval_every": 20,
    "seeds": 3,
    "eps": [1e-3, 5e-4],
    "subspace_dim": 100,
    "maxiter": 10,
    "starts": 2,
    "n_directions": 5,
    "radius": 0.5,
}

#: The small setting of the tests (seconds).
QUICK: dict[str, Any] = {
    "n_train": 500,
    "hidden": 48,
    "seeds": 1,
    "target_loss": 0.05,
    "eps": [1e-3],
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
# the experiment


_FULL = [None, Options("full", 0), POSITIVE_INT]  # None, "full" and 0 all mean "everything"

#: The options' constraints.
CONSTRAINTS: dict[str, list[Any]] = {
    "seeds": [POSITIVE_INT],
    "hidden": [POSITIVE_INT],
    "lr": [POSITIVE],
    "small_batch": [POSITIVE_INT],
    "large_batch": _FULL,
    "target_loss": [POSITIVE],
    "max_steps": [POSITIVE_INT],
    "eval_every": [POSITIVE_INT],
    "eps": [POSITIVE, ListOf(POSITIVE)],
    "subspace_dim": _FULL,
    "maxiter": [POSITIVE_INT],
    "starts": [POSITIVE_INT],
    "n_directions": [POSITIVE_INT],
    "radius": [POSITIVE],
}


def _full_is_none(value: Any) -> int | None:
    return None if value in ("full", 0, None) else value


@dataclass
class _Setting:
    """The checked options and the data of one sharpness run."""

    seeds: int
    hidden: int
    lr: float
    small: int
    large: int | None
    target: float
    max_steps: int
    eval_every: int
    eps: list[float]
    p: int | None
    maxiter: int
    starts: int
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
    def where(self) -> str:
        return f"a random {self.p}-d subspace" if self.p is not None else "the full space"

    @property
    def main_key(self) -> str:
        kind = "sub" if self.p is not None else "full"
        return f"sharp_{kind}_{self.eps[0]:g}"


def _setting(o: dict[str, Any], v: dict[str, Any]) -> _Setting:
    """The setting of the checked options ``v`` (and of ``o``: the optimizer, the data)."""
    small, large = v["small_batch"], _full_is_none(v["large_batch"])
    eps = v["eps"] if isinstance(v["eps"], list) else [v["eps"]]
    optim.get(o["optimizer"])  # unknown names fail before any work
    data = load_classification(o["problem"], o["n_train"])
    n, splits = data.n, data.splits
    if small >= n or (large is not None and large > n):
        raise invalid("small_batch and large_batch", f"batch sizes that fit the {n} training "
                      "examples", (small, large))  # fmt: skip
    if large is not None and large <= small:
        raise invalid("large_batch", f"larger than small_batch ({small})", large)
    return _Setting(
        v["seeds"], v["hidden"], v["lr"], small, large, v["target_loss"], v["max_steps"],
        v["eval_every"], eps, _full_is_none(v["subspace_dim"]), v["maxiter"], v["starts"],
        v["n_directions"], v["radius"], o["optimizer"], n, splits.x_train[:n],
        splits.y_train[:n], data.x_test, data.y_test, splits.input_shape, splits.n_outputs,
    )  # fmt: skip


@dataclass
class _Record:
    """What the seeds measured, per batch size."""

    alphas: np.ndarray
    ts: np.ndarray
    per: dict[str, dict[str, list[Any]]] = field(default_factory=lambda: {"small": {}, "large": {}})
    curves: dict[str, Any] = field(default_factory=lambda: {"small": [], "large": []})
    interp: list[dict[str, Any]] = field(default_factory=list)
    perturb: dict[str, list[Any]] = field(default_factory=lambda: {"small": [], "large": []})

    def data(self, main_key: str) -> dict[str, Any]:
        """The figures' data."""
        return {
            "alphas": self.alphas,
            "interpolation": self.interp,
            "perturbation_t": self.ts,
            "perturbation": self.perturb,
            "training_curves": self.curves,
            "per_seed": self.per,
            "main_sharpness_key": main_key,
        }


def _measure(
    st: _Setting, model: nn.Module, log: dict[str, Any], s: int, rec: dict[str, list[Any]]
) -> None:
    """Accuracies, weight norm and sharpness of one trained model, appended to ``rec``."""
    tr_loss, tr_acc = _accuracy(model, st.x, st.y)
    te_loss, te_acc = _accuracy(model, st.x_test, st.y_test)
    for key, value in (
        ("steps", log["steps"]), ("epochs", log["epochs"]), ("reached", log["reached"]),
        ("train_loss", tr_loss), ("train_acc", tr_acc), ("test_loss", te_loss),
        ("test_acc", te_acc), ("weight_norm", float(flat_params(model).norm())),
    ):  # fmt: skip
        rec.setdefault(key, []).append(value)
    for e in st.eps:
        for kind, p in (("sub", st.p), ("full", None)):
            if kind == "sub" and p is None:
                continue
            found = epsilon_sharpness(
                model, st.x, st.y, eps=e, subspace_dim=p, maxiter=st.maxiter, starts=st.starts,
                seed=s,
            )  # fmt: skip
            rec.setdefault(f"sharp_{kind}_{e:g}", []).append(found.sharpness)


def _seed(st: _Setting, s: int, rec: _Record) -> None:
    """One seed: one initialisation trained with each batch size, then measured."""
    trained: dict[str, nn.Module] = {}
    for label, bs in (("small", st.small), ("large", st.large)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)  # the same initialisation for both batch sizes
            model = models.build(
                "mlp", input_shape=st.input_shape, n_outputs=st.n_outputs, hidden=st.hidden
            )
        log = train_to_loss(
            model, st.x, st.y, optimizer=st.optimizer, lr=st.lr, batch_size=bs,
            target_loss=st.target, max_steps=st.max_steps, eval_every=st.eval_every, seed=s,
        )  # fmt: skip
        trained[label] = model
        _measure(st, model, log, s, rec.per[label])
        rec.curves[label].append({"steps": log["curve_steps"], "loss": log["curve_loss"]})
        rec.perturb[label].append(
            perturbation_losses(model, st.x, st.y, rec.ts, st.n_dirs, seed=1000 + s).tolist()
        )
    small, large = trained["small"], trained["large"]
    tr_l, tr_a = interpolate_losses(small, large, st.x, st.y, rec.alphas)
    te_l, te_a = interpolate_losses(small, large, st.x_test, st.y_test, rec.alphas)
    rec.interp.append({"train_loss": tr_l, "train_acc": tr_a, "test_loss": te_l, "test_acc": te_a})


def _table(
    st: _Setting, per: dict[str, dict[str, list[Any]]]
) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and the two rows (means over seeds) of the table."""
    main_eps = st.eps[0]
    columns = ["batch", "batch_size", "steps", "epochs", "train_loss", "train_acc", "test_acc",
               "gap", "sharpness", "sharpness_std"]  # fmt: skip
    extra = []  # (column, record key)
    for e in st.eps:
        if st.p is not None and e != main_eps:
            extra.append((f"sharpness_sub_{e:g}", f"sharp_sub_{e:g}"))
        extra.append((f"sharpness_full_{e:g}", f"sharp_full_{e:g}"))
    rows = []
    for label, bs in (("small", st.small), ("large", st.large)):
        rec = per[label]
        gaps = [a - b for a, b in zip(rec["train_acc"], rec["test_acc"], strict=True)]
        sharp_m, sharp_s = mean_std(rec[st.main_key])
        row = {"batch": label, "batch_size": st.n if bs is None else bs}
        for key in ("steps", "epochs", "train_loss", "train_acc", "test_acc"):
            row[key] = mean_std(rec[key])[0]
        row.update(gap=mean_std(gaps)[0], sharpness=sharp_m, sharpness_std=sharp_s)
        row.update({column: mean_std(rec[key])[0] for column, key in extra})
        rows.append(row)
    return columns + [column for column, _ in extra], rows


def _check(result: ExperimentResult, st: _Setting, per: dict[str, dict[str, list[Any]]]) -> None:
    """The lecture's predictions, from the table."""
    sm, lg = result.rows
    main_eps = st.eps[0]
    full_key = f"sharpness_full_{main_eps:g}"
    reached = all(all(per[k]["reached"]) for k in per)
    for text, key in (
        (f"the large-batch minimum is sharper (eps={main_eps:g}, {st.where})", "sharpness"),
        (f"the large-batch minimum is sharper in the full space (eps={main_eps:g})", full_key),
    ):
        result.check(
            text, lg[key] > sm[key], f"{lg[key]:.3g} (large) vs {sm[key]:.3g} (small)",
            "large > small",
        )  # fmt: skip
    result.check(
        "the large batch generalizes worse (larger train-test gap)", lg["gap"] > sm["gap"],
        f"gap {lg['gap']:.3g} (large) vs {sm['gap']:.3g} (small)", "large > small",
    )  # fmt: skip
    result.check(
        "both runs reached the target training loss", reached, "yes" if reached else "no", "yes"
    )


def _notes(st: _Setting) -> list[str]:
    return [
        f"Both batch sizes start from the same initialisation and stop at the same full-batch "
        f"training loss ({st.target:g}); sharpness is Keskar's epsilon-sharpness of that loss "
        f"(x100, relative to 1 + f), maximised by {st.starts} x {st.maxiter} L-BFGS-B "
        f"iterations (from the minimum, then from random points of the box) in {st.where} "
        f"(A: standard normal n x p) and in the full space (A = I). Means over {st.seeds} "
        f"seed(s); `sharpness_std` is their standard deviation.",
        "The small batch's gradient noise keeps it out of narrow valleys: at equal training "
        "loss its minimum is flatter, and in Keskar et al.'s account that is why it "
        "generalizes better. Sharpness is not invariant to reparametrisation (Dinh et al., "
        "2017), so compare minima of the same network, as here.",
        "The measure mixes two terms: f(x + d) - f(x) ~ g.d + d'Hd/2. The first grows like "
        "eps, the second like eps²; training stops where the full-batch gradient g is small "
        "but not zero, so at small boxes the first-order term dominates and the minima look "
        "alike, while larger boxes see the curvature. Comparing the columns of two eps tells "
        "which term speaks (ratio 2 for the gradient, 4 for the curvature when eps doubles).",
    ]


@experiment(DEFAULTS, QUICK, CONSTRAINTS)
def run(o: dict[str, Any], v: dict[str, Any], *, quick: bool, seed: int) -> ExperimentResult:
    """Small vs large batch on MNIST-1D (MLP): accuracy, generalization gap, sharpness.

    For each of ``seeds`` seeds, one initialisation is trained twice with the same optimizer
    and learning rate, with ``small_batch`` examples per step and with ``large_batch``
    (None or ``"full"``: the whole training set), each until its full-batch training loss is
    <= ``target_loss``. Then :func:`epsilon_sharpness` at each ``eps`` in a random
    ``subspace_dim``-dimensional subspace and in the full space, the interpolation between
    the two minima and the loss along random directions are measured.

    Args:
        quick: the small preset (:data:`QUICK`) instead of :data:`DEFAULTS`.
        seed: first seed (seeds ``seed .. seed + seeds - 1``).
        problem: a classification dataset (``mnist1d``).
        n_train: training examples used (the first ``n_train`` of the training split).
        hidden: width of the MNIST-1D paper's MLP.
        optimizer: descentlab optimizer name.
        lr: learning rate (shared by both batch sizes).
        small_batch, large_batch: the batch sizes (large None/"full": full batch).
        target_loss: the training loss both runs stop at.
        max_steps, eval_every: step limit per run, steps between checks of the loss.
        seeds: number of seeds.
        eps: box sizes of the sharpness (one or several).
        subspace_dim: ``p`` of the random subspace ("full"/0 skips the subspace measure).
        maxiter, starts: L-BFGS-B iterations per start, and starts (the first at the
            minimum, then random points of the box).
        n_directions, radius: random directions of the perturbation curves, and their
            largest relative perturbation.

    Returns:
        an :class:`ExperimentResult` with one row per batch size (means and standard
        deviations over seeds) and the curves in ``data``.
    """
    st = _setting(o, v)
    rec = _Record(alphas=np.linspace(-0.5, 1.5, 41), ts=np.linspace(-st.radius, st.radius, 41))
    with timer() as elapsed:
        for s in range(seed, seed + st.seeds):
            _seed(st, s, rec)
        seconds = elapsed()
    columns, rows = _table(st, rec.per)
    result = ExperimentResult(
        "sharpness", "Batch size and sharp minima (Keskar et al. 2017)", columns, rows
    )
    _check(result, st, rec.per)
    result.data = rec.data(st.main_key)
    options = {**o, "n_train": st.n, "large_batch": st.large, "subspace_dim": st.p,
               "eps": st.eps}  # fmt: skip
    return finish(
        result, quick=quick, seed=seed, options=options, seconds=seconds, notes=_notes(st)
    )
