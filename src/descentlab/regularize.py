"""Regularizers (the regularization and CNN lecture): early stopping, mixup, cutmix, label
smoothing, noise on inputs and weights, data augmentation, and L1/L2 penalties.

Dropout and batch normalisation are model options (:mod:`descentlab.problems.models`); coupled
(L2 in the gradient) and decoupled (AdamW) weight decay are update rules of
:mod:`descentlab.optim` (``add_l2``, ``add_decayed_weights``).

All randomness goes through an explicit ``torch.Generator`` passed by the caller, so a training
run that saves and restores its generator's state is bit-reproducible and resumable. Each
function documents the order of its draws.

References:
    Prechelt, "Early stopping - but when?", 1998.
    Zhang, Cisse, Dauphin, Lopez-Paz, "mixup: beyond empirical risk minimization", ICLR 2018,
    https://arxiv.org/abs/1710.09412.
    Yun et al., "CutMix: regularization strategy to train strong classifiers with localizable
    features", ICCV 2019, https://arxiv.org/abs/1905.04899.
    Szegedy et al., "Rethinking the inception architecture" (label smoothing), CVPR 2016,
    https://arxiv.org/abs/1512.00567.
    An, "The effects of adding noise during backpropagation training on a generalization
    performance", Neural Computation 1996; Graves, "Practical variational inference for neural
    networks", NeurIPS 2011 (weight noise).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from descentlab.constraints import NONNEGATIVE, POSITIVE, check

__all__ = [
    "EarlyStopping",
    "WeightNoise",
    "add_input_noise",
    "augment_1d",
    "augment_image",
    "batch_pipeline",
    "cutmix",
    "l1_penalty",
    "l2_penalty",
    "mixup",
    "mixup_loss",
    "mixup_targets",
    "sample_beta",
    "smooth_labels",
]


def _check_generator(generator: Any) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


# --------------------------------------------------------------------------------------------
# early stopping


class EarlyStopping:
    """Stop when a validation metric has not improved for ``patience`` evaluations.

    An evaluation improves on the best so far when ``metric < best - min_delta`` (``mode="min"``)
    or ``metric > best + min_delta`` (``mode="max"``); a NaN never improves. After ``patience``
    evaluations in a row without improvement, :meth:`update` returns ``True`` and, with
    ``restore_best``, loads the weights saved at the best evaluation back into the model.

    Args:
        patience: number of evaluations in a row without improvement after which to stop (>= 1).
        min_delta: minimum change that counts as an improvement (>= 0).
        mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).
        restore_best: keep a copy of the best weights and restore them when stopping.

    Attributes:
        best: best metric so far (``inf``/``-inf`` before the first update).
        best_step: the ``step`` of the best evaluation (``None`` before it).
        bad_count: evaluations since the last improvement.
        stopped: whether :meth:`update` has returned ``True``.

    Example:
        >>> model = nn.Linear(1, 1)
        >>> es = EarlyStopping(patience=2)
        >>> [es.update(v, model) for v in [1.0, 0.5, 0.6, 0.7]]
        [False, False, False, True]
        >>> es.best, es.best_step
        (0.5, 1)
    """

    def __init__(
        self,
        patience: int,
        min_delta: float = 0.0,
        mode: str = "min",
        restore_best: bool = True,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an integer >= 1, got {patience!r}")
        self.min_delta = check("min_delta", min_delta, NONNEGATIVE)
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.patience = patience
        self.mode = mode
        self.restore_best = bool(restore_best)
        self.best: float = math.inf if mode == "min" else -math.inf
        self.best_step: int | None = None
        self.bad_count = 0
        self.n_updates = 0
        self.stopped = False
        self.best_state: dict[str, Tensor] | None = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> EarlyStopping:
        """Early stopping as a run's config asks for it (``RunConfig.early_stopping``):
        ``patience`` (10), ``min_delta`` (0), ``monitor`` (``"val/loss"``; an accuracy is
        maximized), ``restore_best`` (True)."""
        monitor = spec.get("monitor", "val/loss")
        return cls(
            patience=int(spec.get("patience", 10)),
            min_delta=float(spec.get("min_delta", 0.0)),
            mode="max" if monitor.endswith("accuracy") else "min",
            restore_best=bool(spec.get("restore_best", True)),
        )

    def is_improvement(self, metric: float) -> bool:
        """Whether ``metric`` improves on :attr:`best` by more than ``min_delta``."""
        if math.isnan(metric):
            return False
        if self.mode == "min":
            return metric < self.best - self.min_delta
        return metric > self.best + self.min_delta

    def update(
        self, metric: float | Tensor, model: nn.Module | None = None, step: int | None = None
    ) -> bool:
        """Record one evaluation; return ``True`` when training should stop.

        Args:
            metric: the validation metric.
            model: the model; its ``state_dict`` is copied at each improvement (and restored on
                stopping) when ``restore_best``.
            step: the training step of this evaluation (default: the number of updates so far).

        Returns:
            whether to stop.
        """
        value = float(metric)
        step = self.n_updates if step is None else int(step)
        self.n_updates += 1
        if self.is_improvement(value):
            self.best = value
            self.best_step = step
            self.bad_count = 0
            if self.restore_best and model is not None:
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.bad_count += 1
        if self.bad_count >= self.patience:
            self.stopped = True
            if self.restore_best and model is not None:
                self.restore(model)
            return True
        return False

    def restore(self, model: nn.Module) -> None:
        """Load the best weights into ``model`` (no-op before the first improvement)."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        """The full state (including the best weights), for checkpoints."""
        return {
            "patience": self.patience,
            "min_delta": self.min_delta,
            "mode": self.mode,
            "restore_best": self.restore_best,
            "best": self.best,
            "best_step": self.best_step,
            "bad_count": self.bad_count,
            "n_updates": self.n_updates,
            "stopped": self.stopped,
            "best_state": copy.deepcopy(self.best_state),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state produced by :meth:`state_dict`."""
        for key in ("patience", "min_delta", "mode", "restore_best", "best", "best_step",
                    "bad_count", "n_updates", "stopped"):  # fmt: skip
            setattr(self, key, state[key])
        self.best_state = copy.deepcopy(state["best_state"])


# --------------------------------------------------------------------------------------------
# mixup / cutmix / label smoothing


def sample_beta(alpha: float, beta: float, generator: torch.Generator) -> float:
    """One draw from ``Beta(alpha, beta)`` driven by a ``torch.Generator``.

    ``torch.distributions.Beta`` cannot take a generator, so one 63-bit integer is drawn from
    ``generator`` and seeds NumPy's ``default_rng`` for the Beta draw: deterministic in the
    generator's state and advancing it.

    Args:
        alpha, beta: shape parameters (> 0).
        generator: the torch generator.

    Returns:
        a float in ``[0, 1]``.
    """
    a = check("alpha", alpha, POSITIVE)
    b = check("beta", beta, POSITIVE)
    _check_generator(generator)
    seed = int(torch.randint(0, 2**63 - 1, (), generator=generator))
    return float(np.random.default_rng(seed).beta(a, b))


def _check_batch(x: Tensor, y: Tensor) -> None:
    if x.dim() < 2:
        raise ValueError(f"x must be batched, (N, ...), got shape {tuple(x.shape)}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"x and y must have the same batch size, got {x.shape[0]} and {y.shape[0]}"
        )


def mixup(
    x: Tensor, y: Tensor, alpha: float, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, float]:
    """Mixup: convex combinations of pairs of examples.

    ``lam ~ Beta(alpha, alpha)``, ``perm`` a random permutation of the batch, and
    ``x' = lam x + (1 - lam) x[perm]``; the loss is ``lam L(f(x'), y) + (1 - lam)
    L(f(x'), y[perm])`` (:func:`mixup_loss`), which for cross-entropy equals cross-entropy
    against the mixed one-hot targets (:func:`mixup_targets`). Works for any input layout:
    1-D signals ``(N, L)``/``(N, C, L)``, images ``(N, C, H, W)``, feature vectors.

    Draws: ``lam`` (:func:`sample_beta`), then ``torch.randperm(N)``.

    Args:
        x: inputs ``(N, ...)``.
        y: labels ``(N,)`` (or one-hot/soft targets ``(N, C)``).
        alpha: Beta parameter (> 0; 0.2-0.4 for ImageNet in the paper, 1 gives uniform lam).
        generator: torch generator.

    Returns:
        ``(x_mixed, y_a, y_b, lam)`` with ``y_a = y`` and ``y_b = y[perm]``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> xm, ya, yb, lam = mixup(torch.randn(4, 40), torch.arange(4), 1.0, g)
        >>> xm.shape, 0.0 <= lam <= 1.0
        (torch.Size([4, 40]), True)
    """
    _check_batch(x, y)
    lam = sample_beta(alpha, alpha, generator)
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    x_mixed = lam * x + (1.0 - lam) * x[perm]
    return x_mixed, y, y[perm], lam


def mixup_loss(
    loss_fn: Callable[[Tensor, Tensor], Tensor], output: Tensor, y_a: Tensor, y_b: Tensor,
    lam: float,
) -> Tensor:  # fmt: skip
    """``lam loss_fn(output, y_a) + (1 - lam) loss_fn(output, y_b)`` (mixup and cutmix)."""
    return lam * loss_fn(output, y_a) + (1.0 - lam) * loss_fn(output, y_b)


def mixup_targets(y_a: Tensor, y_b: Tensor, lam: float, n_classes: int) -> Tensor:
    """Soft targets ``lam onehot(y_a) + (1 - lam) onehot(y_b)`` of shape ``(N, n_classes)``."""
    a = torch.nn.functional.one_hot(y_a, n_classes).float()
    b = torch.nn.functional.one_hot(y_b, n_classes).float()
    return lam * a + (1.0 - lam) * b


def cutmix(
    x: Tensor, y: Tensor, alpha: float, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, float]:
    """CutMix: paste a random box (image) or segment (1-D signal) from a shuffled batch.

    ``lam ~ Beta(alpha, alpha)``. For images ``(N, C, H, W)`` a box of size
    ``(int(H sqrt(1 - lam)), int(W sqrt(1 - lam)))`` centred at a uniform pixel is clipped to the
    image and replaced by the same box of ``x[perm]``; for signals ``(N, L)`` or ``(N, C, L)`` a
    segment of length ``int(L (1 - lam))`` centred at a uniform position. ``lam`` is then
    recomputed as the fraction of the input that was kept, so that the loss
    ``lam L(f(x'), y) + (1 - lam) L(f(x'), y[perm])`` (:func:`mixup_loss`) weights the labels by
    area, as in the paper's reference code.

    Draws: ``lam``, ``randperm(N)``, then the centre (``cy``, ``cx`` for images; ``c`` for
    signals) with ``torch.randint``.

    Args:
        x: inputs ``(N, L)``, ``(N, C, L)`` or ``(N, C, H, W)``.
        y: labels ``(N,)`` (or soft targets).
        alpha: Beta parameter (> 0).
        generator: torch generator.

    Returns:
        ``(x_mixed, y_a, y_b, lam)``; ``x`` is not modified.
    """
    _check_batch(x, y)
    if x.dim() not in (2, 3, 4):
        raise ValueError(
            f"cutmix needs signals (N, L), (N, C, L) or images (N, C, H, W), got {tuple(x.shape)}"
        )
    lam = sample_beta(alpha, alpha, generator)
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    out = x.clone()
    if x.dim() == 4:
        h, w = x.shape[-2:]
        ratio = math.sqrt(1.0 - lam)
        cut_h, cut_w = int(h * ratio), int(w * ratio)
        cy = int(torch.randint(0, h, (), generator=generator))
        cx = int(torch.randint(0, w, (), generator=generator))
        y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
        x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
        out[:, :, y1:y2, x1:x2] = x[perm][:, :, y1:y2, x1:x2]
        kept = 1.0 - (y2 - y1) * (x2 - x1) / (h * w)
    else:
        length = x.shape[-1]
        cut = int(length * (1.0 - lam))
        c = int(torch.randint(0, length, (), generator=generator))
        a, b = max(c - cut // 2, 0), min(c + cut // 2, length)
        out[..., a:b] = x[perm][..., a:b]
        kept = 1.0 - (b - a) / length
    return out, y, y[perm], float(kept)


def smooth_labels(y: Tensor, n_classes: int, smoothing: float) -> Tensor:
    """Label smoothing: ``(1 - eps) onehot(y) + eps / n_classes`` (float, ``(N, n_classes)``).

    Cross-entropy against these targets equals ``losses.get("cross_entropy",
    label_smoothing=eps)`` (torch's definition).

    Args:
        y: integer labels ``(N,)``.
        n_classes: number of classes.
        smoothing: ``eps`` in ``[0, 1]``.

    Returns:
        the smoothed targets.

    Example:
        >>> smooth_labels(torch.tensor([1]), 4, 0.2)
        tensor([[0.0500, 0.8500, 0.0500, 0.0500]])
    """
    eps = check("smoothing", smoothing, NONNEGATIVE)
    if eps > 1.0:
        raise ValueError(f"smoothing must be in [0, 1], got {smoothing!r}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
        raise ValueError(f"n_classes must be an integer >= 1, got {n_classes!r}")
    onehot = torch.nn.functional.one_hot(y, n_classes).to(torch.get_default_dtype())
    return (1.0 - eps) * onehot + eps / n_classes


# --------------------------------------------------------------------------------------------
# noise


def add_input_noise(x: Tensor, std: float, generator: torch.Generator) -> Tensor:
    """``x + std * eps`` with ``eps ~ N(0, I)`` drawn from ``generator`` (one ``randn``).

    Training with input noise is, to first order, Tikhonov regularisation (Bishop, 1995).

    Args:
        x: inputs.
        std: noise standard deviation (>= 0).
        generator: torch generator (on any device: the noise is moved to ``x``'s).

    Returns:
        a new tensor.
    """
    s = check("std", std, NONNEGATIVE)
    _check_generator(generator)
    # drawn where the generator lives (a CPU generator for CUDA data too: the same draws on
    # every device), then moved
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=generator.device).to(
        x.device
    )
    return x + s * noise


class WeightNoise:
    """Additive Gaussian noise on the weights during the forward and backward pass.

    Inside ``with noise.perturbed(model):`` every trainable parameter ``w`` (that ``include``
    accepts) is replaced by ``w + std * eps``; on exit the clean weights are put back. The
    gradient computed inside is therefore the gradient *at the perturbed point*, which the
    optimizer then applies to the clean weights::

        with weight_noise.perturbed(model):
            loss = loss_fn(model(x), y)
            loss.backward()
        optimizer.step()

    (An, 1996; Graves, 2011). Draws: one ``randn`` per parameter, in ``model.parameters()``
    order.

    Args:
        std: noise standard deviation (>= 0).
        generator: torch generator.
        include: optional predicate ``(name, parameter) -> bool`` selecting the perturbed
            parameters (e.g. weights only, not biases).

    Example:
        >>> model, g = nn.Linear(2, 1), torch.Generator().manual_seed(0)
        >>> before = model.weight.detach().clone()
        >>> with WeightNoise(0.1, g).perturbed(model):
        ...     changed = not torch.equal(model.weight, before)
        >>> changed, torch.equal(model.weight, before)
        (True, True)
    """

    def __init__(
        self,
        std: float,
        generator: torch.Generator,
        include: Callable[[str, nn.Parameter], bool] | None = None,
    ) -> None:
        self.std = check("std", std, NONNEGATIVE)
        self.generator = _check_generator(generator)
        self.include = include

    def _selected(self, model: nn.Module) -> list[nn.Parameter]:
        return [
            p
            for name, p in model.named_parameters()
            if p.requires_grad and (self.include is None or self.include(name, p))
        ]

    @contextlib.contextmanager
    def perturbed(self, model: nn.Module) -> Iterator[nn.Module]:
        """Context manager: perturb the weights on entry, restore them exactly on exit."""
        params = self._selected(model)
        saved = [p.detach().clone() for p in params]
        try:
            with torch.no_grad():
                for p in params:
                    noise = torch.randn(
                        p.shape, generator=self.generator, dtype=p.dtype,
                        device=self.generator.device,
                    ).to(p.device)  # fmt: skip
                    p.add_(noise, alpha=self.std)
            yield model
        finally:
            with torch.no_grad():
                for p, s in zip(params, saved, strict=True):
                    p.copy_(s)


# --------------------------------------------------------------------------------------------
# augmentation


def augment_1d(
    x: Tensor,
    max_shift: int,
    scale_range: tuple[float, float],
    generator: torch.Generator,
) -> Tensor:
    """Random circular shifts and amplitude scalings of 1-D signals, one per example.

    ``x'[n, ..., t] = s_n x[n, ..., (t - k_n) mod L]`` with ``k_n`` uniform in
    ``{-max_shift, ..., max_shift}`` and ``s_n`` uniform in ``scale_range``: the same kinds of
    transformation (circular translation, scaling) that MNIST-1D's generator applies.

    Draws: ``randint`` of the ``N`` shifts, then ``rand`` of the ``N`` scales.

    Args:
        x: signals ``(N, L)`` or ``(N, C, L)``.
        max_shift: largest shift in samples (>= 0).
        scale_range: ``(low, high)`` with ``0 < low <= high``; ``(1, 1)`` disables scaling.
        generator: torch generator.

    Returns:
        a new tensor of ``x``'s shape.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> augment_1d(torch.arange(5.0).reshape(1, 5), 2, (1.0, 1.0), g)
        tensor([[3., 4., 0., 1., 2.]])
    """
    if x.dim() not in (2, 3):
        raise ValueError(f"augment_1d needs signals (N, L) or (N, C, L), got {tuple(x.shape)}")
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"max_shift must be an integer >= 0, got {max_shift!r}")
    try:
        lo, hi = (float(v) for v in scale_range)
    except (TypeError, ValueError):
        raise ValueError(f"scale_range must be a pair (low, high), got {scale_range!r}") from None
    if not (0.0 < lo <= hi) or not math.isfinite(hi):
        raise ValueError(f"scale_range must satisfy 0 < low <= high, got {scale_range!r}")
    _check_generator(generator)
    n, length = x.shape[0], x.shape[-1]
    shifts = torch.randint(-max_shift, max_shift + 1, (n,), generator=generator)
    scales = lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)
    idx = (torch.arange(length)[None, :] - shifts[:, None]) % length  # (N, L)
    idx = idx.to(x.device)
    if x.dim() == 3:
        idx = idx[:, None, :].expand(n, x.shape[1], length)
    shifted = torch.gather(x, -1, idx)
    view = (n,) + (1,) * (x.dim() - 1)
    return shifted * scales.to(dtype=x.dtype, device=x.device).reshape(view)


def augment_image(x: Tensor, max_translate: int, generator: torch.Generator) -> Tensor:
    """Random translations of images by up to ``max_translate`` pixels, zero-filled.

    ``x'[n, c, i, j] = x[n, c, i - dy_n, j - dx_n]`` (0 outside the image) with ``dy_n``,
    ``dx_n`` uniform in ``{-max_translate, ..., max_translate}``; for 8x8 digits one or two
    pixels are small translations that keep the digit recognisable.

    Draws: ``randint`` of the ``N`` vertical shifts, then of the ``N`` horizontal ones.

    Args:
        x: images ``(N, C, H, W)`` or ``(N, H, W)``.
        max_translate: largest shift in pixels (>= 0).
        generator: torch generator.

    Returns:
        a new tensor of ``x``'s shape.
    """
    if x.dim() not in (3, 4):
        raise ValueError(f"augment_image needs (N, C, H, W) or (N, H, W), got {tuple(x.shape)}")
    m = max_translate
    if isinstance(m, bool) or not isinstance(m, int) or m < 0:
        raise ValueError(f"max_translate must be an integer >= 0, got {max_translate!r}")
    _check_generator(generator)
    squeeze = x.dim() == 3
    img = x[:, None] if squeeze else x
    n, _, h, w = img.shape
    dy = torch.randint(-m, m + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(-m, m + 1, (n,), generator=generator).to(x.device)
    padded = torch.nn.functional.pad(img, (m, m, m, m))
    rows = torch.arange(h, device=x.device)[None, :] - dy[:, None] + m  # (N, H)
    cols = torch.arange(w, device=x.device)[None, :] - dx[:, None] + m  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    out = out.permute(0, 3, 1, 2)
    return (out[:, 0] if squeeze else out).contiguous()


# --------------------------------------------------------------------------------------------
# penalties


#: ``(x, y, generator) -> (x', y_a, y_b or None, lam or None)``
BatchPipeline = Callable[
    [Tensor, Tensor, torch.Generator], tuple[Tensor, Tensor, Tensor | None, float | None]
]


def batch_pipeline(
    augment: bool | Mapping[str, Any],
    input_noise: float,
    mixup_alpha: float,
    cutmix_alpha: float,
    x_dim: int,
) -> BatchPipeline | None:
    """A training batch's input regularizers as one function, in the order it draws from the
    generator: augmentation (``augment`` True or its options: :func:`augment_image`'s
    ``max_translate`` for images, ``x_dim`` 4, else :func:`augment_1d`'s ``max_shift`` and
    ``scale_range``), input noise, then mixup or cutmix (which return the second targets and
    the mixing weight). None when there are none."""
    if not (augment or input_noise > 0 or mixup_alpha or cutmix_alpha):
        return None
    shifted = None if augment is False else _augmenter({} if augment is True else augment, x_dim)
    mix, alpha = None, 0.0
    if mixup_alpha > 0:
        mix, alpha = mixup, mixup_alpha
    elif cutmix_alpha > 0:
        mix, alpha = cutmix, cutmix_alpha

    def pipeline(
        xb: Tensor, yb: Tensor, gen: torch.Generator
    ) -> tuple[Tensor, Tensor, Tensor | None, float | None]:
        if shifted is not None:
            xb = shifted(xb, gen)
        if input_noise > 0:
            xb = add_input_noise(xb, input_noise, gen)
        if mix is None:
            return xb, yb, None, None
        return mix(xb, yb, alpha, gen)

    return pipeline


def _augmenter(opts: Mapping[str, Any], x_dim: int) -> Callable[[Tensor, torch.Generator], Tensor]:
    if x_dim == 4:
        m = int(opts.get("max_translate", 1))
        return lambda x, g: augment_image(x, m, g)
    shift = int(opts.get("max_shift", 3))
    scale = tuple(opts.get("scale_range", (0.9, 1.1)))
    return lambda x, g: augment_1d(x, shift, scale, g)


def l2_penalty(parameters: Iterable[Tensor]) -> Tensor:
    """``0.5 sum ||w||^2``: its gradient is ``w``, so ``loss + lam * l2_penalty`` is coupled
    weight decay with coefficient ``lam``."""
    params = list(parameters)
    if not params:
        raise ValueError("parameters must not be empty")
    return 0.5 * sum(p.pow(2).sum() for p in params)  # type: ignore[return-value]


def l1_penalty(parameters: Iterable[Tensor]) -> Tensor:
    """``sum |w|``: gradient ``sign(w)``; drives small weights to exactly zero (lasso)."""
    params = list(parameters)
    if not params:
        raise ValueError("parameters must not be empty")
    return sum(p.abs().sum() for p in params)  # type: ignore[return-value]
