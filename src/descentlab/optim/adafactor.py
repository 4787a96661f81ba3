r"""Adafactor (Shazeer & Stern, 2018): a factored second moment and a relative step size.

For a matrix gradient (the last two dimensions of any tensor of 2 or more dimensions) only
the row and column means of :math:`g^2` are kept, and their outer product over their mean
estimates :math:`v`; vectors keep :math:`v` whole. With :math:`\hat\beta_{2,t} = 1 -
t^{c}` (``beta2_decay`` :math:`c = -0.8`):

.. math::
    R_t = \hat\beta_{2,t} R_{t-1} + (1-\hat\beta_{2,t})\,\mathrm{mean}_{\mathrm{cols}}(g^2),
    \quad C_t = \dots\,\mathrm{mean}_{\mathrm{rows}}(g^2), \quad
    \hat v = \frac{R_t C_t}{\mathrm{mean}(R_t)} \\
    u = \frac{g}{\sqrt{\max(\hat v, \epsilon_1^2)}}, \quad
    \rho_t = \min(\eta, 1/\sqrt t), \quad
    \alpha_t = \max(\epsilon_2, \mathrm{RMS}(p))\,\rho_t, \quad
    p \leftarrow p(1 - \eta\lambda) - \frac{\alpha_t}{\max(1, \mathrm{RMS}(u)/d)}\, u

torch's ``torch.optim.Adafactor`` (its signature, defaults and operation order), matched to
1e-6 relative over 300 steps (``tests/test_modern_optim.py``), and Optax's
``optax.adafactor`` chain to 1e-10 in float64 where their conventions agree
(``tests/test_optax_reference.py``). Conventions of Optax that differ: the decay rate
computed in float32; ``eps`` added to :math:`g^2` rather than a clamp; the two *largest*
dimensions factored (torch: the last two); ``min_dim_size_to_factor=128`` (torch factors
every matrix); no :math:`\min(\eta, 1/\sqrt t)`; a weight decay not multiplied by the
learning rate. No momentum (torch's has none either).
"""

from __future__ import annotations

import torch

from . import adafactor_native
from .base import Rule, arguments, chain, scratch, step_values
from .hyperspec import Pair, Real, declare
from .records import OptimizerRecord, ParityConfig
from .torchapi import Named, Params
from .transforms import maximize as _maximize

__all__ = ["Adafactor", "scale_by_adafactor"]

_EPS_WORDS = ("epsilon1 should be >= 0 but is: {entry}", "epsilon2 should be >= 0 but is: {entry}")


class scale_by_adafactor(Rule):
    r"""The whole Adafactor step of torch (it includes the learning rate and the weight
    decay: the relative step size depends on both).

    Args:
        lr: :math:`\eta \ge 0`; the step is :math:`\min(\eta, 1/\sqrt t)` times the RMS.
        beta2_decay: :math:`c \le 0` in :math:`\hat\beta_{2,t} = 1 - t^{c}`.
        eps: :math:`(\epsilon_1, \epsilon_2)`; :math:`\epsilon_1` None: the dtype's epsilon.
        d: clipping threshold :math:`d \ge 1` on the update's RMS.
        weight_decay: :math:`\lambda \ge 0`, decoupled, times :math:`\eta`.
    """

    name = "scale_by_adafactor"
    role = "adaptive learning rate"
    state_keys = ("row_var", "col_var", "variance")
    elementwise = False
    tensorwise = True

    def __init__(
        self,
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(**{**arguments(locals()), "eps": tuple(eps)})
        self.needs_step = True

    def init(self, params):
        state: dict[str, list] = {"row_var": [], "col_var": [], "variance": []}
        for p in params:
            if p.dim() > 1:
                state["row_var"].append(p.new_zeros((*p.shape[:-1], 1)))
                state["col_var"].append(p.new_zeros((*p.shape[:-2], 1, p.shape[-1])))
                state["variance"].append(None)
            else:
                state["row_var"].append(None)
                state["col_var"].append(None)
                state["variance"].append(torch.zeros_like(p))
        return state

    # torch's words where torch refuses the same value (torch.optim.Adafactor's own checks);
    # a batched value is refused too (the factored statistics are per tensor)
    checks = declare(
        lr=Real(0.0, scalar=True, torch="Learning rate should be >= 0 but is: {value}"),
        beta2_decay=Real(hi=0.0, scalar=True, torch="beta2_decay should be <= 0 but is: {value}"),
        eps=Pair(
            Real(0.0, none=True),
            Real(0.0),
            "a pair (eps1 or None, eps2)",
            scalar=True,
            torch=_EPS_WORDS,
        ),
        d=Real(1.0, scalar=True, torch="Clipping threshold d should be >= 1 but is: {value}"),
        weight_decay=Real(0.0, scalar=True, torch="weight_decay should be >= 0 but is: {value}"),
    )
    complex_params = False  # as torch's: the factored statistics assume real matrices

    #: whether the step runs the compiled kernel (:mod:`~descentlab.optim.adafactor_native`)
    #: where it applies; False: torch's ops always (``Adafactor(..., fused=False)``)
    native: bool = True

    def update(self, grads, state, params, hyper):
        if self.native and params:
            out = scratch(state, params)
            steps = step_values(state, len(params))
            if adafactor_native.write_update(params, grads, state, steps, hyper, out):
                return list(out), state
        return self.torch_update(grads, state, params, hyper)

    def torch_update(self, grads, state, params, hyper):
        """The update written with torch's ops, as ``torch.optim.Adafactor``'s for-loop."""
        lr, decay = float(hyper["lr"]), float(hyper["beta2_decay"])
        d, wd = float(hyper["d"]), float(hyper["weight_decay"])
        eps1, eps2 = hyper["eps"]
        out = []
        for i, t in enumerate(step_values(state, len(params))):
            p, g = params[i], grads[i]
            e1 = torch.finfo(p.dtype).eps if eps1 is None else eps1
            one_minus_beta2 = t**decay
            alpha = max(eps2, p.norm(2).item() / (p.numel() ** 0.5)) * min(lr, 1 / t**0.5)
            if g.dim() > 1:
                row, col = state["row_var"][i], state["col_var"][i]
                row.lerp_(torch.norm(g, dim=-1, keepdim=True).square_().div_(g.size(-1)),
                          one_minus_beta2)  # fmt: skip
                col.lerp_(torch.norm(g, dim=-2, keepdim=True).square_().div_(g.size(-2)),
                          one_minus_beta2)  # fmt: skip
                v = row @ col
                v.div_(row.mean(dim=-2, keepdim=True).clamp_(min=e1))
            else:
                v = state["variance"][i]
                v.lerp_(g * g, one_minus_beta2)
                v = v.clone()
            u = v.clamp_(min=e1 * e1).rsqrt_().mul_(g)
            denom = max(1.0, u.norm(2).item() / ((u.numel() ** 0.5) * d))
            u.mul_(-alpha / denom)
            if wd != 0:  # torch: p *= 1 - lr * wd, before the step
                u.add_(p, alpha=-lr * wd)
            out.append(u)
        return out, state


class Adafactor(Named):
    r"""Adafactor with ``torch.optim.Adafactor``'s signature: chain ``maximize ->
    scale_by_adafactor``. Runs eagerly (its step reduces over each tensor).

    Example:
        >>> import torch
        >>> from descentlab.optim import Adafactor
        >>> opt = Adafactor(torch.nn.Linear(4, 3).parameters(), lr=1e-2, fused=False)
    """

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-2, beta2_decay: float = -0.8,
                 eps: tuple[float | None, float] = (None, 1e-3), d: float = 1.0,
                 weight_decay: float = 0.0, *, foreach: bool | None = None,
                 maximize: bool = False, fused: bool | None = None,
                 monitor: bool = False) -> None:
    # fmt: on
        if isinstance(eps, list):
            eps = tuple(eps)
        core = scale_by_adafactor()
        core.native = fused is not False  # fused=False: torch's ops, the reference
        super().__init__(params, chain(_maximize(), core), locals())


#: this module's registered optimizer (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (OptimizerRecord(
    name="adafactor", display="Adafactor", color="#AEC7E8", family="adaptive", adaptive=True,
    year=2018, factory=Adafactor, lr_range=(1e-3, 1e-1), demo_lr={"ravine": 0.3, "saddle": 0.05},
    reference="Shazeer & Stern, Adafactor: Adaptive Learning Rates with Sublinear Memory Cost, "
    "ICML 2018 (arXiv:1804.04235)",
    parity=(
        ParityConfig("adafactor", "Adafactor", dict(lr=1e-2), dict(lr=5e-3)),
        ParityConfig(
            "adafactor-wd-eps-d",
            "Adafactor",
            dict(lr=2e-2, eps=(1e-20, 1e-2), d=2.0, weight_decay=1e-2, beta2_decay=-0.6),
            dict(weight_decay=0.0),
        ),
        ParityConfig("adafactor-maximize", "Adafactor", dict(lr=1e-2, maximize=True)),
    ),
),)
# fmt: on
