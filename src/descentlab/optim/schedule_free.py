r"""Schedule-Free AdamW (Defazio et al., 2024): averaging in place of a decaying schedule.

Three sequences: the base (AdamW-like, momentum-free) steps move :math:`z`, the averaged
point :math:`x` is what one evaluates, and gradients are taken at their interpolation
:math:`y`:

.. math::
    v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad
    z_{t+1} = z_t - \gamma_t\Big(\frac{g_t}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}
              + \lambda\, y_t\Big), \\
    c_{t+1} = \frac{\gamma_{\max,t}^{\,r}}{\sum_{i \le t} \gamma_{\max,i}^{\,r}}, \quad
    x_{t+1} = (1 - c_{t+1})\, x_t + c_{t+1} z_{t+1}, \quad
    y_{t+1} = \beta_1 x_{t+1} + (1-\beta_1)\, z_{t+1}

with :math:`g_t = \nabla f(y_t)`, :math:`\gamma_{\max,t}` the largest learning rate so far
and :math:`r` = ``weight_lr_power``. The parameters hold :math:`y` while training;
:meth:`ScheduleFreeAdamW.eval` swaps in :math:`x` and :meth:`~ScheduleFreeAdamW.train` swaps
back (the reference PyTorch API; descentlab's training engine calls both around each
evaluation). Optax's ``optax.contrib.schedule_free_adamw``, matched to 1e-10 in float64
(``tests/test_optax_reference.py``).

Conventions: weight decay is taken at :math:`y` and multiplied by the learning rate (Optax
and the reference code); the bias correction divides :math:`v` (Optax), where the reference
PyTorch code multiplies the learning rate by :math:`\sqrt{1-\beta_2^t}` -- which then also
enters the averaging weight :math:`c` (a different method in its first steps, tested against
a float64 loop of the reference equations in ``tests/test_modern_optim.py`` as the
``bias_correction="lr"`` option). A learning-rate schedule (warmup) is evaluated once per
step and used for both the step and the weight; Optax evaluates it one step later for the
weight. Hyperparameters are scalars (no batched runs).
"""

from __future__ import annotations

from typing import Any

import torch

from .base import (
    Numbers,
    arguments,
    number_column,
    per_step,
    step_values,
    zeros,
)
from .form import Form, FormRule, add, addcmul, sqrt
from .hyperspec import Choice, Pair, Real, declare
from .records import OptimizerRecord, adam_family
from .torchapi import Named, Params, pair

__all__ = ["ScheduleFreeAdamW", "schedule_free_adamw"]


class schedule_free_adamw(FormRule):
    r"""The whole Schedule-Free AdamW step (it includes the learning rate: the averaging
    weight depends on it); the update is :math:`y_{t+1} - y_t`.

    Args:
        lr: :math:`\gamma` (> 0; a schedule is evaluated at each step).
        betas: :math:`(\beta_1, \beta_2)`; :math:`\beta_1 \in (0, 1)` interpolates ``y``.
        eps: added to the root.
        weight_decay: :math:`\lambda`, at ``y``, times the learning rate.
        weight_lr_power: :math:`r`, the averaging weight :math:`\gamma_{\max}^r`.
        bias_correction: ``"v"`` (Optax: divide :math:`v`) or ``"lr"`` (the reference
            PyTorch code: multiply :math:`\gamma` by :math:`\sqrt{1-\beta_2^t}`, weight too).
    """

    name = "schedule_free_adamw"
    role = "direction + adaptive rate"
    own_dtype = ("weight_sum", "lr_max")  # float64 sums, as the reference keeps Python floats
    local = False
    elementwise = False
    #: its per-tensor averaging weights read the learning rates only, never a tensor's values
    shard_local = True
    tensorwise = True

    def __init__(
        self,
        lr: float = 0.0025,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        weight_lr_power: float = 2.0,
        bias_correction: str = "v",
    ) -> None:
        args = arguments(locals())
        super().__init__(**{**args, "betas": pair(betas)})

    def init(self, params):
        return {
            "z": [p.detach().clone(memory_format=torch.preserve_format) for p in params],
            "exp_avg_sq": zeros(params),
            "weight_sum": number_column(len(params), 0.0, torch.float64),
            "lr_max": number_column(len(params), 0.0, torch.float64),
        }

    # scalars only (no batched runs); beta1 divides (the averaging weight), so it is > 0
    checks = declare(
        betas=Pair(
            Real(0.0, 1.0, lo_open=True, hi_open=True, scalar=True),
            Real(0.0, 1.0, hi_open=True, scalar=True),
            "a pair (beta1, beta2)",
        ),
        lr=Real(0.0, scalar=True),
        eps=Real(0.0, scalar=True),
        weight_decay=Real(0.0, scalar=True),
        weight_lr_power=Real(0.0, scalar=True),
        bias_correction=Choice(("v", "lr")),
    )

    @staticmethod
    def _lr_t(hyper, t: float) -> float:
        r"""This step's rate: ``lr``, times :math:`\sqrt{1-\beta_2^t}` in the reference form."""
        lr = float(hyper["lr"])
        if hyper["bias_correction"] == "lr":
            return lr * (1 - float(hyper["betas"][1]) ** t) ** 0.5
        return lr

    def _advance(self, state, hyper) -> list[float]:
        r"""Update each tensor's largest rate and weight sum; returns the averaging weights
        :math:`c = \gamma_{\max}^r / \sum \gamma_{\max}^r` (0 before any weight)."""
        power = float(hyper["weight_lr_power"])
        lr_t = per_step(step_values(state, len(state["z"])), lambda t: self._lr_t(hyper, t))
        maxima, sums = Numbers(state["lr_max"]), Numbers(state["weight_sum"])
        lr_max = [max(m, x) for m, x in zip(maxima.get(), lr_t, strict=True)]
        weights = {m: m**power for m in set(lr_max)}  # (one value, as a rule)
        total = [s + weights[m] for s, m in zip(sums.get(), lr_max, strict=True)]
        maxima.set(lr_max)
        sums.set(total)
        return [weights[m] / s if s > 0 else 0.0 for m, s in zip(lr_max, total, strict=True)]

    signature_inside = frozenset({"weight_decay"})  # (a decay > 0 is never 0)

    def fuse_signature(self, hyper):
        return (hyper["bias_correction"], float(hyper["weight_decay"]) != 0)

    def form(self, f: Form, hyper) -> None:
        f.prepare(self._weights, needs=("lr_max", "weight_sum"))
        coef = f.coef
        b1 = coef("b1", lambda h, t: h["betas"][0], uses=("betas",))
        w1 = coef("1mb1", lambda h, t: 1 - h["betas"][0], uses=("betas",))
        b2 = coef("b2", lambda h, t: h["betas"][1], uses=("betas",))
        w2 = coef("1mb2", lambda h, t: 1 - h["betas"][1], uses=("betas",))
        eps = coef("eps", lambda h, t: h["eps"], uses=("eps",))
        neg_lr = coef("neglr", lambda h, t: -self._lr_t(h, t), uses=("lr", "betas"))
        ck = coef("ck", lambda h, t, e: e, per_tensor=_weight)
        keep = coef("1mck", lambda h, t, e: 1 - e, per_tensor=_weight)
        v = f.assign("exp_avg_sq", addcmul(f.state("exp_avg_sq") * b2, f.g, f.g, w2))
        if hyper["bias_correction"] == "lr":
            step = f.g / (sqrt(v) + eps)
        else:
            bc2 = coef("bc2", lambda h, t: 1 - h["betas"][1] ** t, uses=("betas",))
            step = f.g / (sqrt(v / bc2) + eps)
        if self.fuse_signature(hyper)[1]:  # the decay, at y, where there is one
            step = add(
                step, f.p, coef("wd", lambda h, t: h["weight_decay"], uses=("weight_decay",))
            )
        x = f.let((f.p - f.state("z") * w1) / b1)
        z = f.assign("z", add(f.state("z"), step, neg_lr))
        x = add(x * keep, z, ck)
        f.out(add(x * b1, z, w1) - f.p)  # the new y, as its difference from y

    def _weights(self, state, params, grads, hyper) -> None:
        state["_sf_ck"] = self._advance(state, hyper)


def _weight(state, i: int) -> float:
    return state["_sf_ck"][i]


class ScheduleFreeAdamW(Named):
    r"""Schedule-Free AdamW (Defazio et al., 2024), the reference PyTorch code's signature
    (``AdamWScheduleFree``) without its warmup argument: put a warmup on ``lr`` with
    :mod:`descentlab.schedules`. Train in :meth:`train` mode (the default), evaluate in
    :meth:`eval` mode.

    Example:
        >>> import torch
        >>> from descentlab.optim import ScheduleFreeAdamW
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
        >>> opt = ScheduleFreeAdamW([w], lr=0.1, fused=False)
        >>> for _ in range(50):
        ...     opt.zero_grad(); (w * w).sum().backward(); opt.step()
        >>> opt.eval(); bool(w.abs().max() < 0.2)  # the averaged point x
        True
        >>> opt.train()
    """

    # fmt: off
    def __init__(self, params: Params, lr: float = 0.0025,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, weight_lr_power: float = 2.0, *,
                 bias_correction: str = "v", foreach: bool | None = None,
                 fused: bool | None = None, monitor: bool = False) -> None:
    # fmt: on
        super().__init__(params, schedule_free_adamw(), locals())
        self.training = True

    def _swap(self, to_x: bool) -> None:
        with torch.no_grad():
            for group in self.param_groups:
                b1 = float(group["betas"][0])
                for p in group["params"]:
                    z = self.state[p].get("z")
                    if z is None:
                        continue
                    if to_x:  # x = (y - (1 - b1) z) / b1
                        p.sub_(z, alpha=1 - b1).div_(b1)
                    else:  # y = b1 x + (1 - b1) z
                        p.mul_(b1).add_(z, alpha=1 - b1)

    def eval(self) -> None:
        """Put the averaged point :math:`x` into the parameters (for evaluation)."""
        if self.training:
            self._swap(to_x=True)
            self.training = False

    def train(self) -> None:
        """Put the gradient point :math:`y` back into the parameters (for training)."""
        if not self.training:
            self._swap(to_x=False)
            self.training = True

    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        if not self.training:
            raise RuntimeError(
                "ScheduleFreeAdamW is in eval mode (parameters hold the averaged point x); "
                "call train() before step()"
            )
        return super().step(closure)


#: this module's registered optimizer (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (adam_family(
    name="sfadamw", display="Schedule-Free AdamW", color="#332288",
    year=2024, factory=ScheduleFreeAdamW, demo_lr={"ravine": 0.3, "saddle": 0.3},
    reference="Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, The Road Less Scheduled, "
    "NeurIPS 2024 (arXiv:2405.15682)",
),)
# fmt: on
