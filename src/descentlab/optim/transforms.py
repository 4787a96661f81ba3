r"""The transforms that many optimizers share: the learning rate, the sign, weight decay,
clipping, gradient noise and the non-finite guard.

Each rule's docstring gives its math, and each is written once, in the form
(:mod:`descentlab.optim.form`), from which every backend is derived; the global-norm clip's
factor and the noise's draws are computed by a prepare step of the form, before the
per-element program. Notation as in
:mod:`descentlab.optim.base`: :math:`g` the incoming gradient (or the previous rule's
output), :math:`p` the parameter, :math:`t` the step count, :math:`u` the rule's output,
added to the parameter.
"""

from __future__ import annotations

from typing import Any

import torch

from . import dtensors, sharded
from .base import Hyper, as_scalar, is_batched, laid_out_as, step_values
from .form import Form, FormRule, add, clamp, eq, where
from .hyperspec import NONNEG, Choice, Flag, Integer, Real, declare

__all__ = [
    "NonFiniteGradientError",
    "add_decayed_weights",
    "add_l2",
    "add_noise",
    "clip_by_global_norm",
    "clip_by_value",
    "maximize",
    "non_finite_guard",
    "scale_by_lr",
]


def _rate(hyper: Hyper, t: float, decayed: bool) -> Any:
    r"""The learning rate of step ``t`` (a number, or a batched tensor), as torch computes it:
    with ``lr_decay``, :math:`\eta / (1 + (t-1)\,\text{lr\_decay})`."""
    if decayed:
        return hyper["lr"] / (1 + (t - 1) * hyper.get("lr_decay", 0))
    return hyper["lr"]


_WEIGHT_DECAY = Real(0.0, torch="Invalid weight_decay value: {value}")  # torch's words


class scale_by_lr(FormRule):
    r"""Multiply by the negative learning rate: :math:`u = -\eta_t\, g`.

    With ``lr_decay`` (AdaGrad's option in torch) the rate decays in inverse time,
    :math:`\eta_t = \eta / (1 + (t-1)\,\text{lr\_decay})` -- the lectures' ``a0 / (1 + k t)``.
    A schedule (a callable ``step -> lr``) may be given as ``lr``: the optimizer evaluates
    it at the group's step count.

    Args:
        lr: learning rate (>= 0), a number, a length-K tensor or a schedule.
        lr_decay: inverse-time decay factor, or None to leave it out of the hyperparameters.
    """

    name = "scale_by_lr"
    role = "step size"

    def __init__(self, lr: Any = 1e-3, lr_decay: float | None = None) -> None:
        defaults: dict[str, Any] = {"lr": lr}
        if lr_decay is not None:
            defaults["lr_decay"] = lr_decay
        super().__init__(**defaults)
        self.needs_step = lr_decay is not None

    checks = declare(  # torch's words (its optimizers' own checks of these)
        lr=Real(0.0, torch="Invalid learning rate: {value}"),
        lr_decay=Real(0.0, torch="Invalid lr_decay value: {value}"),
    )

    @property
    def lr_uses(self) -> tuple[str, ...]:
        """The hyperparameters :meth:`step_lr` reads."""
        return ("lr", "lr_decay") if "lr_decay" in self.defaults else ("lr",)

    def step_lr(self, hyper: Hyper, t: float) -> float:
        """The learning rate of step ``t`` (Python numbers), as torch computes it."""
        if not self.needs_step:  # (the steady step of a group per layer asks at every step)
            return float(hyper["lr"])
        return float(_rate({k: float(hyper[k]) for k in self.lr_uses}, t, self.needs_step))

    def fuse_signature(self, hyper):
        return ("lr_decay" in self.defaults,)

    def form(self, f: Form, hyper) -> None:
        decayed = self.needs_step
        f.out(f.g * f.coef("lr", lambda h, t: -_rate(h, t, decayed), uses=self.lr_uses))


class maximize(FormRule):
    """Negate gradients when ``maximize`` is true (torch's ``maximize=True``)."""

    name = "maximize"
    role = "regularization / sign"
    needs_step = False

    def __init__(self, maximize: bool = False) -> None:
        super().__init__(maximize=maximize)

    checks = declare(maximize=Flag())

    def form(self, f: Form, hyper) -> None:
        f.out(-f.g if hyper["maximize"] else f.g)


class add_l2(FormRule):
    r"""Coupled L2 penalty: :math:`u = g + \lambda p`.

    This is the gradient of the DL-basics lecture's :math:`\frac{\lambda}{2}\lVert W\rVert^2` added
    to the loss; placed *before* an adaptive rule it is rescaled by that rule (Adam's
    ``weight_decay``), which is why AdamW decouples it (:class:`add_decayed_weights`).

    Args:
        weight_decay: :math:`\lambda \ge 0`.
        off_when: the name of a boolean hyperparameter that switches this rule off in the
            param groups where it is true (torch's per-group ``decoupled_weight_decay``: the
            Adam family chains both penalties and each group picks one).
    """

    name = "add_l2"
    role = "regularization / sign"
    needs_step = False

    def __init__(self, weight_decay: float = 0.0, *, off_when: str | None = None) -> None:
        super().__init__(weight_decay=weight_decay, **({off_when: False} if off_when else {}))
        self.switch = off_when
        self.checks = declare(
            weight_decay=_WEIGHT_DECAY, **({off_when: Flag()} if off_when else {})
        )
        self.on = False  # the value of the switch that turns this rule on (none: always on)

    def _active(self, hyper: Hyper) -> bool:
        return self.switch is None or bool(hyper.get(self.switch, False)) is self.on

    def passes_through(self, hyper: Hyper) -> bool:
        return not all(self.fuse_signature(hyper))

    signature_inside = frozenset({"weight_decay"})  # (a decay > 0 is never the zero skipped)

    def fuse_signature(self, hyper):
        wd = hyper["weight_decay"]
        return (self._active(hyper), is_batched(wd) or as_scalar(wd) != 0)

    def form(self, f: Form, hyper) -> None:
        if not all(self.fuse_signature(hyper)):
            # a zero decay is skipped, as torch skips it: fma(p, 0, g) is not g where p is
            # infinite or NaN (0 * inf), or g is -0
            f.out(f.g)
            return
        f.out(add(f.g, f.p, f.coef("wd", lambda h, t: h["weight_decay"], uses=("weight_decay",))))

    def __repr__(self) -> str:
        if self.switch is None:
            return super().__repr__()
        kw = "on_when" if self.on else "off_when"
        return f"{self.name}(weight_decay={self.defaults['weight_decay']!r}, {kw}={self.switch!r})"


class add_decayed_weights(add_l2):
    r"""Decoupled weight decay (Loshchilov & Hutter, 2019): :math:`u = g + \lambda p`,
    placed *after* the adaptive rule and before :class:`scale_by_lr`, so the parameter
    shrinks by :math:`\eta\lambda p` whatever the gradient statistics (AdamW).

    Args:
        weight_decay: :math:`\lambda \ge 0`.
        on_when: the name of a boolean hyperparameter that switches this rule on only in the
            param groups where it is true (see :class:`add_l2`).
    """

    name = "add_decayed_weights"

    def __init__(self, weight_decay: float = 1e-2, *, on_when: str | None = None) -> None:
        super().__init__(weight_decay, off_when=on_when)
        self.on = True


class clip_by_global_norm(FormRule):
    r"""Rescale so the global L2 norm over the group is at most ``max_norm``:
    :math:`u = g \cdot \min(1, \frac{c}{\lVert g\rVert_2 + 10^{-6}})` (as
    ``torch.nn.utils.clip_grad_norm_``, applied per param group). The factor is computed
    before the per-element program, from the rule's input: a kernel takes the rule only first
    in its chain (on a GPU it runs with torch ops, before the kernel)."""

    name = "clip_by_global_norm"
    local = False
    elementwise = False
    shard_local = True  # its norm spans the shards (sharded.foreach_norm)
    needs_step = False

    def __init__(self, max_norm: float = 1.0) -> None:
        super().__init__(max_norm=max_norm)

    checks = declare(max_norm=Real(0.0, lo_open=True))

    def form(self, f: Form, hyper) -> None:
        f.prepare(_clip_factor, reads_g=True)
        factor = f.coef("factor", lambda h, t, x: x, per_tensor=lambda st, i: st["_clip_factor"])
        f.out(f.g * factor)


def _clip_factor(state, params, grads, hyper) -> None:
    """The group's clipping factor, in the gradients' dtype (as torch's ``clip_grad_norm_``)."""
    # a sharded group's norms span the shards (a local shard's alone would clip each rank
    # differently)
    norms = sharded.foreach_norm(grads, 2.0, params)
    total = torch.linalg.vector_norm(torch.stack(norms), 2.0)
    factor = torch.clamp(as_scalar(hyper["max_norm"]) / (total + 1e-6), max=1.0)
    state["_clip_factor"] = float(factor)


class clip_by_value(FormRule):
    """Clamp every gradient entry to ``[-clip_value, clip_value]``."""

    name = "clip_by_value"
    needs_step = False

    def __init__(self, clip_value: float = 1.0) -> None:
        super().__init__(clip_value=clip_value)

    checks = declare(clip_value=Real(0.0, lo_open=True))

    def form(self, f: Form, hyper) -> None:
        lo = f.coef("lo", lambda h, t: -h["clip_value"], uses=("clip_value",))
        hi = f.coef("hi", lambda h, t: h["clip_value"], uses=("clip_value",))
        f.out(clamp(f.g, lo, hi))


class add_noise(FormRule):
    r"""Annealed Gaussian gradient noise (Neelakantan et al., 2015):
    :math:`u = g + \sigma_t z`, :math:`z \sim \mathcal N(0, 1)`,
    :math:`\sigma_t^2 = \eta / (1+t)^\gamma`.

    The noise is a deterministic function of (``noise_seed``, step, parameter index), so a
    resumed run draws exactly the noise an uninterrupted one would.
    """

    name = "add_noise"
    local = False
    elementwise = False  # the noise stream is indexed by position in the whole group

    def __init__(self, noise_eta: float = 0.01, noise_gamma: float = 0.55, noise_seed: int = 0):
        super().__init__(noise_eta=noise_eta, noise_gamma=noise_gamma, noise_seed=noise_seed)

    checks = declare(noise_eta=NONNEG, noise_gamma=NONNEG, noise_seed=Integer(0))

    def form(self, f: Form, hyper) -> None:
        f.prepare(_draw_noise, fills=("_noise",))
        sigma = f.coef(
            "sigma",
            lambda h, t: (h["noise_eta"] / (1 + t) ** h["noise_gamma"]) ** 0.5,
            uses=("noise_eta", "noise_gamma"),
        )
        f.out(f.g + f.state("_noise") * sigma)


def _draw_noise(state, params, grads, hyper) -> None:
    """This step's standard normal draws, one stream per (seed, step, tensor index)."""
    seed = hyper["noise_seed"]
    gen = torch.Generator(device="cpu")
    noise = []
    steps = step_values(state, len(grads))
    for i, (p, g, t) in enumerate(zip(params, grads, steps, strict=True)):
        gen.manual_seed((seed * 1_000_003 + int(t) * 8191 + i) % (2**63 - 1))
        drawn = torch.randn(g.shape, generator=gen, dtype=g.dtype).to(g.device)
        # laid out as the parameter, which a kernel reads in memory order (same values)
        noise.append(drawn if laid_out_as(drawn, p) else torch.empty_like(p).copy_(drawn))
    state["_noise"] = noise


class NonFiniteGradientError(FloatingPointError):
    """Raised by :class:`non_finite_guard` in ``"raise"`` mode."""


class non_finite_guard(FormRule):
    """Handle NaN/inf gradients before anything changes.

    Modes: ``"raise"`` raises :class:`NonFiniteGradientError`; ``"skip"`` skips the whole
    optimizer step (no parameter or state changes, step count unchanged); ``"zero"`` replaces
    the bad entries by zero. It inspects the raw gradients, so it must be the first rule of a
    chain (:func:`chain` enforces this).
    """

    name = "non_finite_guard"
    local = False
    needs_step = False

    def __init__(self, mode: str = "raise") -> None:
        super().__init__(non_finite=mode)

    def __repr__(self) -> str:
        # The constructor's argument is `mode`; the param-group key is `non_finite`.
        return f"{self.name}(mode={self.defaults['non_finite']!r})"

    checks = declare(non_finite=Choice(("raise", "skip", "zero")))

    def fuse_signature(self, hyper):
        return (hyper["non_finite"] == "zero",)

    def form(self, f: Form, hyper) -> None:
        if hyper["non_finite"] != "zero":
            f.out(f.g)
            return
        zero = f.coef("zero", lambda h, t: 0.0)
        f.out(where(eq(f.g - f.g, zero), f.g, zero))  # x - x is 0 where x is finite

    def precheck(self, grads, hyper) -> bool:
        mode = hyper["non_finite"]
        if mode == "zero" or not grads:
            return True
        total = torch.stack(sharded.foreach_norm(grads, 2.0)).sum()  # across shards
        if bool(torch.isfinite(total)):
            return True
        if mode == "skip":
            return False
        whole = [g.full_tensor() if dtensors.is_dtensor(g) else g for g in grads]  # (rare)
        bad = [i for i, g in enumerate(whole) if not bool(torch.isfinite(g).all())]
        raise NonFiniteGradientError(
            f"non-finite gradient in {len(bad)} parameter(s) (indices {bad} of the group); "
            "parameters and optimizer state were left unchanged"
        )
