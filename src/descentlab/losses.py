"""Losses: a registry of torch's losses by name, and losses derived from likelihoods.

Every loss is a callable ``loss(output, target) -> scalar tensor`` (with ``reduction="none"``
a tensor of per-example values). The callables are ``functools.partial`` objects of module-level
functions, so they pickle (runs can be spread over processes).

The registry's names and what each computes: docs/data-and-models.md.

References:
    PyTorch loss documentation, https://pytorch.org/docs/stable/nn.html#loss-functions.
    Hermans, Beyer, Leibe, "In defense of the triplet loss for person re-identification", 2017,
    https://arxiv.org/abs/1703.07737 (batch-hard mining).
    Bishop, "Pattern Recognition and Machine Learning", 2006, sections 1.2.5 and 4.3.4.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, distributions

from descentlab.constraints import NONNEGATIVE, POSITIVE, build, check

__all__ = [
    "FAMILIES",
    "LOSSES",
    "LossFn",
    "SequenceCrossEntropy",
    "get",
    "mismatch_hint",
    "nll",
    "triplet_margin",
]

LossFn = Callable[[Tensor, Tensor], Tensor]

_REDUCTIONS = ("mean", "sum", "none")


def mismatch_hint(output: Any, target: Any) -> str:
    """What to say after a loss that cannot compare ``output`` with ``target``: a sequence
    model's ``(N, T, V)`` logits with ``(N, T)`` integer labels need the token-level loss.

    Example:
        >>> mismatch_hint(torch.zeros(2, 64, 100), torch.zeros(2, 64, dtype=torch.long))
        ' -- (N, T, V) logits with (N, T) labels are a sequence: use loss="sequence_cross_entropy"'
        >>> mismatch_hint(torch.zeros(2, 3), torch.zeros(2))
        ''
    """
    if not isinstance(output, Tensor) or not isinstance(target, Tensor):
        return ""
    if (
        output.dim() == 3
        and target.dim() == 2
        and tuple(output.shape[:2]) == tuple(target.shape)
        and not target.is_floating_point()
    ):
        return (
            " -- (N, T, V) logits with (N, T) labels are a sequence: use "
            'loss="sequence_cross_entropy"'
        )
    return ""


def _check_reduction(reduction: str, allowed: Sequence[str] = _REDUCTIONS) -> str:
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {list(allowed)}, got {reduction!r}")
    return reduction


def _check_same_shape(name: str, output: Tensor, target: Tensor) -> None:
    if output.shape != target.shape:
        raise ValueError(
            f"{name}: output and target must have the same shape, got output "
            f"{tuple(output.shape)} and target {tuple(target.shape)}"
        )


def _as_tensor_or_none(name: str, value: Any) -> Tensor | None:
    if value is None:
        return None
    t = torch.as_tensor(value, dtype=torch.get_default_dtype())
    if t.dim() != 1 or not torch.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"{name} must be a 1-D sequence of finite numbers >= 0, got {value!r}")
    return t


def _reduce(values: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


# --------------------------------------------------------------------------------------------
# elementwise regression losses


def _elementwise(
    name: str, fn: Callable[..., Tensor], output: Tensor, target: Tensor, **kw: Any
) -> Tensor:
    """torch's loss ``fn`` of an output and a target of the same shape."""
    _check_same_shape(name, output, target)
    return fn(output, target, **kw)


def _half_sse(output: Tensor, target: Tensor, *, reduction: str) -> Tensor:
    _check_same_shape("half_sse", output, target)
    per_example = 0.5 * (output - target).pow(2).reshape(output.shape[0], -1).sum(dim=1)
    return _reduce(per_example, reduction)


def _bce(output: Tensor, target: Tensor, *, weight: Tensor | None, reduction: str) -> Tensor:
    _check_same_shape("bce", output, target)
    w = None if weight is None else weight.to(output)
    return F.binary_cross_entropy(output, target.to(output.dtype), weight=w, reduction=reduction)


def _bce_logits(
    output: Tensor, target: Tensor, *, pos_weight: Tensor | None, reduction: str
) -> Tensor:
    _check_same_shape("bce_with_logits", output, target)
    pw = None if pos_weight is None else pos_weight.to(output)
    return F.binary_cross_entropy_with_logits(
        output, target.to(output.dtype), pos_weight=pw, reduction=reduction
    )


# --------------------------------------------------------------------------------------------
# classification losses


def _cross_entropy(
    output: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None,
    ignore_index: int,
    label_smoothing: float,
    reduction: str,
) -> Tensor:
    w = None if weight is None else weight.to(output)
    if target.is_floating_point() and target.shape != output.shape:
        raise ValueError(
            "cross_entropy: probability targets must have the output's shape "
            f"{tuple(output.shape)}, got {tuple(target.shape)}"
        )
    return F.cross_entropy(
        output,
        target,
        weight=w,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        reduction=reduction,
    )


class SequenceCrossEntropy:
    r"""Token-level cross-entropy: logits ``(N, T, V)`` (or any ``(..., V)``) against labels
    ``(N, T)`` (the logits' shape without its last dimension).

    .. math::

        L = \frac{\sum_{i,t:\ y_{it} \ne \text{ignore}} w_{y_{it}}
                   \left(-\log \operatorname{softmax}(x_{it})_{y_{it}}\right)}
                  {\sum_{i,t:\ y_{it} \ne \text{ignore}} w_{y_{it}}}

    -- ``torch.nn.functional.cross_entropy`` of the flattened logits, whose own layout is
    ``(N, V, T)``. Positions labelled ``ignore_index`` (padding) count in neither sum.
    :meth:`denominator` is the mean's denominator of a batch, so that an evaluation over
    batches weights each one by the positions it counts; the engine reports ``accuracy`` over
    counted positions and ``perplexity``, ``exp`` of the mean loss.

    Example:
        >>> ce = SequenceCrossEntropy(ignore_index=0)
        >>> logits = torch.zeros(1, 3, 4)
        >>> round(float(ce(logits, torch.tensor([[1, 2, 0]]))), 4), ce.denominator(
        ...     torch.tensor([[1, 2, 0]]))
        (1.3863, 2.0)
    """

    #: the engine's evaluation counts positions, not examples, and reports perplexity
    token_level = True

    def __init__(
        self,
        *,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        reduction: str = "mean",
    ) -> None:
        self.weight, self.ignore_index = weight, ignore_index
        self.label_smoothing, self.reduction = label_smoothing, reduction

    def __call__(self, output: Tensor, target: Tensor) -> Tensor:
        if tuple(output.shape[:-1]) != tuple(target.shape) or target.is_floating_point():
            raise ValueError(
                "sequence_cross_entropy: labels must be integers of the logits' shape without "
                f"its last dimension {tuple(output.shape[:-1])}, got {tuple(target.shape)} "
                f"{target.dtype}"
            )
        w = None if self.weight is None else self.weight.to(output)
        out = F.cross_entropy(
            output.reshape(-1, output.shape[-1]), target.reshape(-1), weight=w,
            ignore_index=self.ignore_index, label_smoothing=self.label_smoothing,
            reduction=self.reduction,
        )  # fmt: skip
        return out.reshape(target.shape) if self.reduction == "none" else out

    def denominator(self, target: Tensor) -> float:
        """The mean's denominator on ``target``: positions counted (their weights' sum)."""
        counted = target != self.ignore_index
        if self.weight is None:
            return float(counted.sum())
        w = self.weight.to(target.device)[target.clamp_min(0)]
        return float((w * counted).sum())

    def __repr__(self) -> str:
        return f"sequence_cross_entropy(ignore_index={self.ignore_index})"


def _make_seq_ce(
    *, weight: Any = None, ignore_index: int = -100, label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> LossFn:  # fmt: skip
    return SequenceCrossEntropy(**_ce_options(weight, ignore_index, label_smoothing, reduction))


def _nll_torch(
    output: Tensor, target: Tensor, *, weight: Tensor | None, ignore_index: int, reduction: str
) -> Tensor:
    w = None if weight is None else weight.to(output)
    return F.nll_loss(output, target, weight=w, ignore_index=ignore_index, reduction=reduction)


def _probs_target(name: str, output: Tensor, target: Tensor) -> Tensor:
    """Integer labels -> one-hot; probability targets must match the output's shape."""
    if not target.is_floating_point():
        if target.shape != output.shape[:1] + output.shape[2:]:
            raise ValueError(
                f"{name}: label targets must have shape {tuple(output.shape[:1])}, "
                f"got {tuple(target.shape)}"
            )
        return F.one_hot(target, output.shape[1]).movedim(-1, 1).to(output.dtype)
    _check_same_shape(name, output, target)
    return target.to(output.dtype)


def _kl_reduce(pointwise: Tensor, reduction: str) -> Tensor:
    per_example = pointwise.sum(dim=1)
    if reduction == "batchmean":
        return per_example.sum() / pointwise.shape[0]
    if reduction == "sum":
        return per_example.sum()
    return per_example


def _kl_forward(
    output: Tensor, target: Tensor, *, input_is_log_probs: bool, reduction: str
) -> Tensor:
    p = _probs_target("kl_div_forward", output, target)
    log_q = output if input_is_log_probs else F.log_softmax(output, dim=1)
    # F.kl_div(input=log q, target=p) = p (log p - log q), with 0 log 0 = 0.
    return _kl_reduce(F.kl_div(log_q, p, reduction="none"), reduction)


def _kl_reverse(
    output: Tensor, target: Tensor, *, input_is_log_probs: bool, eps: float, reduction: str
) -> Tensor:
    p = _probs_target("kl_div_reverse", output, target)
    if eps > 0:
        p = (1.0 - eps) * p + eps / p.shape[1]
    log_q = output if input_is_log_probs else F.log_softmax(output, dim=1)
    # With log_target=True, F.kl_div(input=log p, target=log q) = q (log q - log p).
    return _kl_reduce(F.kl_div(torch.log(p), log_q, reduction="none", log_target=True), reduction)


# --------------------------------------------------------------------------------------------
# triplet margin


def triplet_margin(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """Triplet margin loss ``max(d(a, p) - d(a, n) + margin, 0)`` (``torch.nn.TripletMarginLoss``).

    Pulls the anchor towards the positive and pushes it away from the negative (the PyTorch losses
    lecture).

    Args:
        anchor, positive, negative: embeddings of shape ``(N, D)``.
        margin: the margin (> 0).
        p: norm degree of the distance.
        eps: added inside the norm, as torch does.
        swap: use the distance swap of Balntas et al.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        the loss.

    Example:
        >>> a, b = torch.zeros(1, 2), torch.ones(1, 2)
        >>> float(triplet_margin(a, a, b, margin=2.0))  # 0 - sqrt(2) + 2
        0.585...
    """
    check("margin", margin, POSITIVE)
    _check_reduction(reduction)
    return F.triplet_margin_loss(
        anchor, positive, negative, margin=margin, p=p, eps=eps, swap=swap, reduction=reduction
    )


def _triplet_indices(embeddings: Tensor, labels: Tensor, mining: str, p: float) -> Tensor:
    """Triplets ``(a, pos, neg)`` of a labelled batch: all valid ones, or batch-hard ones."""
    n = labels.shape[0]
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(n, dtype=torch.bool, device=labels.device)
    pos_mask = same & ~eye
    neg_mask = ~same
    if mining == "all":
        valid = pos_mask[:, :, None] & neg_mask[:, None, :]
        return valid.nonzero()
    with torch.no_grad():
        dist = torch.cdist(embeddings.detach(), embeddings.detach(), p=p)
        hardest_pos = dist.masked_fill(~pos_mask, -math.inf).argmax(dim=1)
        hardest_neg = dist.masked_fill(~neg_mask, math.inf).argmin(dim=1)
    ok = pos_mask.any(dim=1) & neg_mask.any(dim=1)
    anchors = torch.arange(n, device=labels.device)[ok]
    return torch.stack([anchors, hardest_pos[ok], hardest_neg[ok]], dim=1)


def _triplet_batch(
    output: Tensor,
    target: Tensor,
    *,
    margin: float,
    p: float,
    eps: float,
    swap: bool,
    mining: str,
    reduction: str,
) -> Tensor:
    if output.dim() != 2:
        raise ValueError(f"triplet_margin: embeddings must be (N, D), got {tuple(output.shape)}")
    if target.shape != output.shape[:1] or target.is_floating_point():
        raise ValueError(
            "triplet_margin: target must be integer labels of shape "
            f"{tuple(output.shape[:1])}, got {tuple(target.shape)} {target.dtype}"
        )
    idx = _triplet_indices(output, target, mining, p)
    if idx.shape[0] == 0:
        # No anchor has both a positive and a negative: a zero that keeps the graph.
        zero = output.sum() * 0.0
        return zero if reduction != "none" else zero.reshape(1)[:0]
    return F.triplet_margin_loss(
        output[idx[:, 0]], output[idx[:, 1]], output[idx[:, 2]],
        margin=margin, p=p, eps=eps, swap=swap, reduction=reduction,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# negative log-likelihood of a torch.distributions family

FAMILIES: dict[str, type[distributions.Distribution]] = {
    "normal": distributions.Normal,
    "gaussian": distributions.Normal,
    "laplace": distributions.Laplace,
    "cauchy": distributions.Cauchy,
    "studentt": distributions.StudentT,
    "gumbel": distributions.Gumbel,
    "lognormal": distributions.LogNormal,
    "halfnormal": distributions.HalfNormal,
    "exponential": distributions.Exponential,
    "gamma": distributions.Gamma,
    "beta": distributions.Beta,
    "poisson": distributions.Poisson,
    "bernoulli": distributions.Bernoulli,
    "continuousbernoulli": distributions.ContinuousBernoulli,
    "categorical": distributions.Categorical,
    "geometric": distributions.Geometric,
    "binomial": distributions.Binomial,
}
"""Families :func:`nll` accepts by name (class names in lower case, plus ``gaussian``)."""


def _resolve_family(family: type[distributions.Distribution] | str) -> type:
    if isinstance(family, str):
        key = family.lower().replace("_", "")
        if key not in FAMILIES:
            raise KeyError(f"unknown family {family!r}; valid names: {', '.join(FAMILIES)}")
        return FAMILIES[key]
    if isinstance(family, type) and issubclass(family, distributions.Distribution):
        if family not in FAMILIES.values():
            raise ValueError(
                f"family {family.__name__} is not supported (its parameters are not "
                f"elementwise); supported: {sorted({c.__name__ for c in FAMILIES.values()})}"
            )
        return family
    raise ValueError(f"family must be a torch.distributions class or a name, got {family!r}")


def _free_params(cls: type, fixed: dict[str, Any]) -> tuple[str, ...]:
    names = list(cls.arg_constraints)
    # Families parameterised either by probs or by logits take logits from the model.
    if "probs" in names and "logits" in names:
        names.remove("probs" if "probs" not in fixed else "logits")
        if "probs" in fixed:
            names.remove("probs")
    unknown = sorted(set(fixed) - set(cls.arg_constraints))
    if unknown:
        raise ValueError(
            f"fixed parameter(s) {unknown} do not belong to {cls.__name__}; its parameters: "
            f"{list(cls.arg_constraints)}"
        )
    if "total_count" in names and "total_count" not in fixed:
        raise ValueError(
            f"{cls.__name__} needs total_count fixed, e.g. nll('binomial', total_count=10)"
        )
    free = tuple(n for n in names if n not in fixed)
    if not free:
        raise ValueError(f"all parameters of {cls.__name__} are fixed; the model must set one")
    return free


def _dist_nll(
    output: Tensor,
    target: Tensor,
    *,
    family: type,
    free: tuple[str, ...],
    fixed: dict[str, Any],
    reduction: str,
    validate: bool,
) -> Tensor:
    k = len(free)
    if k == 1:
        raw = [output]
    else:
        if output.shape[-1] % k:
            raise ValueError(
                f"distribution_nll({family.__name__}): the output's last dimension must hold "
                f"{k} parameters {list(free)} in equal parts, got shape {tuple(output.shape)}"
            )
        raw = list(torch.chunk(output, k, dim=-1))
        if target.dim() == raw[0].dim() - 1 and raw[0].shape[-1] == 1:
            raw = [r.squeeze(-1) for r in raw]
    params: dict[str, Any] = dict(fixed)
    for name, r in zip(free, raw, strict=True):
        constraint = family.arg_constraints[name]
        params[name] = r if name == "logits" else distributions.biject_to(constraint)(r)
    dist = family(**params, validate_args=validate)
    log_p = dist.log_prob(target.to(output.dtype) if family is not distributions.Categorical
                          else target)  # fmt: skip
    return _reduce(-log_p, reduction)


def nll(
    family: type[distributions.Distribution] | str,
    *,
    reduction: str = "mean",
    validate: bool = True,
    **fixed: Any,
) -> LossFn:
    """Negative log-likelihood of a ``torch.distributions`` family parameterised by the model.

    The model's output sets the family's parameters that are not ``fixed``: one free parameter
    takes the whole output; ``k`` free parameters split the output's last dimension into ``k``
    equal parts (in the order of ``family.arg_constraints``). Outputs are unconstrained: each is
    mapped into its parameter's support by ``torch.distributions.biject_to`` (``exp`` for a
    positive scale); families with ``probs``/``logits`` take logits. The loss is
    ``-log p(y | output)`` averaged (``"mean"``) or summed over the elements of the target.

    Laplace with a fixed ``scale=b`` gives ``|y - mu| / b + log 2b`` (L1, the optimization lecture),
    Normal with ``scale=sigma`` gives ``(y - mu)^2 / (2 sigma^2) + log(2 pi sigma^2) / 2`` (L2),
    Categorical gives cross-entropy, Bernoulli gives ``bce_with_logits``.

    Args:
        family: a class from :data:`FAMILIES` or its name (``"normal"``/``"gaussian"``,
            ``"laplace"``, ``"categorical"``, ``"poisson"``, ...).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        validate: let torch check parameters and targets (support of ``y``).
        **fixed: parameters held fixed, e.g. ``scale=1.0``.

    Returns:
        ``loss(output, target) -> Tensor``.

    Example:
        >>> loss = nll("laplace", scale=1.0)
        >>> mu, y = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 1.0])
        >>> round(float(loss(mu, y)), 4)  # mean |y - mu| + log 2
        1.6931
    """
    cls = _resolve_family(family)
    _check_reduction(reduction)
    free = _free_params(cls, fixed)
    return functools.partial(
        _dist_nll, family=cls, free=free, fixed=dict(fixed), reduction=reduction,
        validate=bool(validate),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# registry


def _make_simple(*fn: Any) -> Callable[..., LossFn]:
    def make(*, reduction: str = "mean") -> LossFn:
        return functools.partial(*fn, reduction=_check_reduction(reduction))

    return make


def _make_huber(*, delta: float = 1.0, reduction: str = "mean") -> LossFn:
    return functools.partial(
        _elementwise, "huber", F.huber_loss, delta=check("delta", delta, POSITIVE),
        reduction=_check_reduction(reduction),
    )  # fmt: skip


def _make_smooth_l1(*, beta: float = 1.0, reduction: str = "mean") -> LossFn:
    return functools.partial(
        _elementwise, "smooth_l1", F.smooth_l1_loss, beta=check("beta", beta, NONNEGATIVE),
        reduction=_check_reduction(reduction),
    )  # fmt: skip


def _make_bce(*, weight: Any = None, reduction: str = "mean") -> LossFn:
    w = None if weight is None else torch.as_tensor(weight, dtype=torch.get_default_dtype())
    return functools.partial(_bce, weight=w, reduction=_check_reduction(reduction))


def _make_bce_logits(*, pos_weight: Any = None, reduction: str = "mean") -> LossFn:
    return functools.partial(
        _bce_logits, pos_weight=_as_tensor_or_none("pos_weight", pos_weight),
        reduction=_check_reduction(reduction),
    )  # fmt: skip


def _check_ignore_index(ignore_index: Any) -> int:
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise ValueError(f"ignore_index must be an integer, got {ignore_index!r}")
    return ignore_index


def _check_smoothing(label_smoothing: Any) -> float:
    ls = check("label_smoothing", label_smoothing, NONNEGATIVE)
    if ls > 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    return ls


def _ce_options(weight: Any, ignore_index: Any, label_smoothing: Any, reduction: Any) -> dict:
    """Cross-entropy's options, each checked (the smoothing first)."""
    ls = _check_smoothing(label_smoothing)
    return dict(weight=_as_tensor_or_none("weight", weight),
                ignore_index=_check_ignore_index(ignore_index), label_smoothing=ls,
                reduction=_check_reduction(reduction))  # fmt: skip


def _make_ce(
    *, weight: Any = None, ignore_index: int = -100, label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> LossFn:  # fmt: skip
    return functools.partial(
        _cross_entropy, **_ce_options(weight, ignore_index, label_smoothing, reduction)
    )


def _make_nll_torch(
    *, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"
) -> LossFn:
    return functools.partial(
        _nll_torch, weight=_as_tensor_or_none("weight", weight),
        ignore_index=_check_ignore_index(ignore_index), reduction=_check_reduction(reduction),
    )  # fmt: skip


_KL_REDUCTIONS = ("batchmean", "sum", "none")


def _make_kl_forward(*, input_is_log_probs: bool = False, reduction: str = "batchmean") -> LossFn:
    return functools.partial(
        _kl_forward, input_is_log_probs=bool(input_is_log_probs),
        reduction=_check_reduction(reduction, _KL_REDUCTIONS),
    )  # fmt: skip


def _make_kl_reverse(
    *, input_is_log_probs: bool = False, eps: float = 0.0, reduction: str = "batchmean"
) -> LossFn:
    e = check("eps", eps, NONNEGATIVE)
    if e >= 1.0:
        raise ValueError(f"eps must be in [0, 1), got {eps!r}")
    return functools.partial(
        _kl_reverse, input_is_log_probs=bool(input_is_log_probs), eps=e,
        reduction=_check_reduction(reduction, _KL_REDUCTIONS),
    )  # fmt: skip


def _make_triplet(
    *, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False,
    mining: str = "hard", reduction: str = "mean",
) -> LossFn:  # fmt: skip
    if mining not in ("hard", "all"):
        raise ValueError(f"mining must be 'hard' or 'all', got {mining!r}")
    return functools.partial(
        _triplet_batch, margin=check("margin", margin, POSITIVE),
        p=check("p", p, POSITIVE), eps=check("eps", eps, NONNEGATIVE), swap=bool(swap),
        mining=mining, reduction=_check_reduction(reduction),
    )  # fmt: skip


def _make_distribution_nll(
    *, family: Any = None, reduction: str = "mean", validate: bool = True, **fixed: Any
) -> LossFn:
    if family is None:
        raise ValueError(f"distribution_nll needs family=..., one of {', '.join(FAMILIES)}")
    return nll(family, reduction=reduction, validate=validate, **fixed)


_FACTORIES: dict[str, Callable[..., LossFn]] = {
    "l1": _make_simple(_elementwise, "l1", F.l1_loss),
    "mse": _make_simple(_elementwise, "mse", F.mse_loss),
    "half_sse": _make_simple(_half_sse),
    "huber": _make_huber,
    "smooth_l1": _make_smooth_l1,
    "cross_entropy": _make_ce,
    "sequence_cross_entropy": _make_seq_ce,
    "nll": _make_nll_torch,
    "bce": _make_bce,
    "bce_with_logits": _make_bce_logits,
    "kl_div_forward": _make_kl_forward,
    "kl_div_reverse": _make_kl_reverse,
    "triplet_margin": _make_triplet,
    "distribution_nll": _make_distribution_nll,
}

LOSSES: tuple[str, ...] = tuple(_FACTORIES)


def get(name: str, **kwargs: Any) -> LossFn:
    """A loss by name, configured by keyword arguments.

    Args:
        name: one of :data:`LOSSES`.
        **kwargs: the loss's options: ``reduction`` (all; ``"mean"``, ``"sum"``, ``"none"``,
            or for the KL losses ``"batchmean"`` (default), ``"sum"``, ``"none"``);
            ``cross_entropy`` and ``sequence_cross_entropy``: ``weight``, ``ignore_index``,
            ``label_smoothing``; ``nll``:
            ``weight``, ``ignore_index``; ``huber``: ``delta``; ``smooth_l1``: ``beta``;
            ``bce``: ``weight``; ``bce_with_logits``: ``pos_weight``; ``kl_div_forward``:
            ``input_is_log_probs``; ``kl_div_reverse``: ``input_is_log_probs``, ``eps`` (mixes
            the target with the uniform distribution so that zeros do not give infinity);
            ``triplet_margin``: ``margin``, ``p``, ``eps``, ``swap``, ``mining``
            (``"hard"``: the hardest positive and negative of each anchor, or ``"all"`` valid
            triplets); ``distribution_nll``: ``family`` and fixed parameters (see :func:`nll`).

    Returns:
        ``loss(output, target) -> Tensor``; picklable.

    Raises:
        KeyError: unknown name (the message lists the valid names).
        ValueError: a bad option value, or an option the loss does not have.

    Example:
        >>> ce = get("cross_entropy", label_smoothing=0.1)
        >>> round(float(ce(torch.zeros(2, 3), torch.tensor([0, 2]))), 4)  # log 3
        1.0986
    """
    return build(_FACTORIES, name, f"loss {name!r}", f"bad option for loss {name!r}", **kwargs)
