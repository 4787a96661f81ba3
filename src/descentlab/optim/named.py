r"""Named optimizers: short chains of update rules with torch's signatures and defaults.

Every class here takes exactly the arguments of its ``torch.optim`` namesake (same order,
same defaults) and produces the same iterates (tested to 1e-6 relative in float64 over 300
steps), plus keyword-only options for the variants the lectures use. ``foreach`` is accepted
for compatibility and has no effect (descentlab always works on lists of tensors);
``capturable=True`` and ``differentiable=True`` are not supported and raise ``ValueError``.

Complex parameters are stepped as pairs of reals (torch's ``view_as_real``), with their state
kept complex like the parameter, so iterates and state dicts match torch's. State dicts load
both ways: a ``torch.optim`` namesake's (or an older torch's) into these classes, and these
classes' into torch (``tests/test_torch_contract.py``).

``fused`` (every optimizer here, not only those torch has fused kernels for) chooses the
backend: ``None`` (default) runs the whole chain as one compiled pass over each parameter's
memory where it can (:mod:`descentlab.optim.fused`) and eagerly elsewhere, ``True`` insists on
the fused pass, ``False`` always runs eagerly. Both backends give the same iterates to float
rounding (tested to 1e-6 relative in float32 over 300 steps).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim.lbfgs import _strong_wolfe  # torch's line search: torch's iterates

from .base import Rule, chain, check_bool, check_choice
from .optimizer import _NOT_HYPER, Optimizer, _scalar_dtype
from .records import OptimizerRecord, ParityConfig
from .rules import (
    add_decayed_weights,
    add_l2,
    maximize,
    scale_by_adadelta,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_adamax,
    scale_by_asgd,
    scale_by_lbfgs,
    scale_by_lr,
    scale_by_nadam,
    scale_by_radam,
    scale_by_rms,
    scale_by_rprop,
    trace,
    velocity,
)

__all__ = [
    "ASGD",
    "LBFGS",
    "RECORDS",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Momentum",
    "NAdam",
    "Nesterov",
    "RAdam",
    "RMSprop",
    "Rprop",
]

Params = Iterable[Any]
_maximize = maximize  # the rule; `maximize` is also a constructor argument below


def _torch_flags(
    name: str,
    *,
    foreach: bool | None = None,
    capturable: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
) -> None:
    if foreach is not None:
        check_bool("foreach", foreach)
    if capturable:
        raise ValueError(f"{name}: capturable=True is not supported by descentlab, got True")
    if differentiable:
        raise ValueError(f"{name}: differentiable=True is not supported by descentlab, got True")
    if fused is not None:
        check_bool("fused", fused)
    if fused and foreach:
        raise ValueError(f"{name}: fused=True and foreach=True cannot be used together")


def _pair(betas: Any) -> Any:
    """``betas`` as a tuple, where it is a sequence (anything else is refused by name when
    the chain validates it: ``tuple("ab")`` would hide a string)."""
    return tuple(betas) if isinstance(betas, list | tuple | Tensor) else betas


class _Named(Optimizer):
    """Common plumbing: build the chain, pass the hyperparameters."""

    def __init__(self, params: Params, rule: Rule, hyper: dict[str, Any], **kw: Any) -> None:
        super().__init__(params, rule, **hyper, **kw)

    def _init_adam_family(
        self,
        params: Params,
        scale: Rule,
        decoupled_weight_decay: bool,
        hyper: dict[str, Any],
        monitor: bool,
        fused: bool | None,
    ) -> None:
        """The Adam family's set-up: ``scale`` (``scale_by_adam``, ``_nadam``, ``_radam``) in
        the chain of :func:`_adam_chain`; torch's ``decoupled_weight_decay`` is a hyperparameter
        of every param group (each group may choose, as in torch)."""
        check_bool("decoupled_weight_decay", decoupled_weight_decay)
        rule = _adam_chain(scale)
        hyper = {**hyper, "decoupled_weight_decay": decoupled_weight_decay}
        _Named.__init__(self, params, rule, hyper, monitor=monitor, fused=fused)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict of this optimizer, of its ``torch.optim`` namesake, or of an
        older torch (no ``maximize`` key, ``state['step']`` a Python number).

        torch's optimizers keep no group step count and SGD no per-parameter step; torch's
        flags (``foreach``, ``fused``...) mean nothing here. They are completed as torch
        completes old state dicts: missing hyperparameters take this optimizer's defaults,
        a missing group step is the largest step of its parameters, a number step becomes a
        0-dim tensor. Continuing then gives the iterates torch gives continuing.
        """
        super().load_state_dict(_from_torch(state_dict, self.defaults))

    def _check_sparse(self, gi: int, hyper: dict[str, Any]) -> None:
        super()._check_sparse(gi, hyper)
        wd = hyper["weight_decay"]
        if isinstance(wd, Tensor) or wd != 0:  # torch's SGD and Adagrad fail here too
            raise RuntimeError(
                f"{type(self).__name__}: weight_decay is not compatible with sparse gradients, "
                f"got weight_decay={wd!r} in param group {gi}"
            )

    def __repr__(self) -> str:
        rules = " -> ".join(r.name for r in self.rule.rules)
        return f"{type(self).__name__}({rules}; " + super().__repr__().split("(", 1)[1]


_TORCH_FLAGS = ("foreach", "capturable", "differentiable", "fused")


def _from_torch(state_dict: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """A copy of a (torch or older) optimizer state dict in this library's layout; the
    tensors are shared, not copied (torch's own loading shares them too)."""
    groups, states = state_dict["param_groups"], state_dict["state"]
    new_states = {k: dict(v) for k, v in states.items()}
    new_groups = []
    for group in groups:
        if group.get("differentiable"):
            raise ValueError(
                "load_state_dict: the state dict is of a differentiable=True optimizer, which "
                "descentlab does not support, got differentiable=True"
            )
        g = {k: v for k, v in group.items() if k not in _TORCH_FLAGS}
        for k, v in defaults.items():
            g.setdefault(k, v)
        steps = []
        for pid in g["params"]:
            st = new_states.get(pid)
            if not st:
                continue
            step = st.get("step")
            if step is not None and not isinstance(step, torch.Tensor):
                st["step"] = torch.tensor(float(step), dtype=_scalar_dtype())
            if step is not None:
                steps.append(float(st["step"]))
        if "step" not in g:
            g["step"] = int(max(steps, default=0))
        for pid in g["params"]:  # torch's SGD keeps no per-parameter step
            st = new_states.get(pid)
            if st and "step" not in st:
                st["step"] = torch.tensor(float(g["step"]), dtype=_scalar_dtype())
        new_groups.append(g)
    return {**state_dict, "state": new_states, "param_groups": new_groups}


class SGD(_Named):
    r"""Stochastic gradient descent, with optional momentum (torch's ``SGD``).

    .. math::
        g \leftarrow \pm g + \lambda p,\quad
        b_t = \mu b_{t-1} + (1-\tau) g,\quad
        p \leftarrow p - \eta\,(b_t \text{ or } g + \mu b_t)

    Chain: ``maximize -> add_l2 -> trace -> scale_by_lr``. With ``momentum=0`` this is the
    plain update :math:`w \leftarrow w - \eta \nabla L` of seeds 000-004: full-batch gradient
    descent, SGD or mini-batch SGD depending only on the batch the gradient comes from.

    Example:
        >>> import torch
        >>> from descentlab.optim import SGD
        >>> model = torch.nn.Linear(4, 1)
        >>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    """

    sparse_grads = True

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
        monitor: bool = False,
    ) -> None:
        _torch_flags("SGD", foreach=foreach, differentiable=differentiable, fused=fused)
        rule = chain(_maximize(), add_l2(), trace(), scale_by_lr())
        hyper = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, rule, hyper, monitor=monitor, fused=fused)


class Momentum(_Named):
    r"""Gradient descent with momentum, in either of the lectures' two forms.

    - ``form="torch"`` (default; seed 002, cs231n in seed 003): the buffer accumulates
      gradients and the learning rate multiplies outside,
      :math:`b = \mu b + g,\; w \leftarrow w - \eta b` (torch's ``SGD(momentum=...)``).
    - ``form="velocity"`` (seeds 000, 001, 003 eq. 5.12, 004): the learning rate is inside,
      :math:`v = \alpha v - \eta g,\; w \leftarrow w + v`.

    Equal at a constant learning rate; different when a schedule changes it (the velocity
    form keeps old steps at their old size).
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        momentum: float = 0.9,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        form: str = "torch",
        maximize: bool = False,
        fused: bool | None = None,
        monitor: bool = False,
    ) -> None:
        check_choice("form", form, ("torch", "velocity"))
        hyper: dict[str, Any] = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        if form == "torch":
            rule = chain(_maximize(), add_l2(), trace(), scale_by_lr())
            hyper["dampening"] = dampening
        else:
            if dampening != 0:
                raise ValueError(f"dampening applies to form='torch' only, got {dampening}")
            rule = chain(_maximize(), add_l2(), velocity())
        super().__init__(params, rule, hyper, monitor=monitor, fused=fused)
        self.form = form


class Nesterov(_Named):
    r"""Nesterov's accelerated gradient, as a change of variables or as a true lookahead.

    - ``lookahead=False`` (default): torch's change-of-variables form derived in seed 003,
      :math:`b = \mu b + g(w),\; w \leftarrow w - \eta (g + \mu b)` (``form="torch"``), or
      :math:`v' = \alpha v - \eta g(w),\; w \leftarrow w - \alpha v + (1+\alpha) v'`
      (``form="velocity"``). Both evaluate the gradient at the current point.
    - ``lookahead=True`` (seeds 001, 002, eq. 5.13): the gradient is evaluated at the
      lookahead point, :math:`v = \alpha v - \eta \nabla f(w + \alpha v),\; w \leftarrow w+v`.
      ``step`` then needs a closure, which the optimizer calls with the parameters shifted.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 0,
        *,
        lookahead: bool = False,
        form: str = "torch",
        maximize: bool = False,
        fused: bool | None = None,
        monitor: bool = False,
    ) -> None:
        check_bool("lookahead", lookahead)
        check_choice("form", form, ("torch", "velocity"))
        hyper: dict[str, Any] = dict(
            lr=lr, momentum=momentum, weight_decay=weight_decay, maximize=maximize
        )
        if lookahead:
            rule = chain(_maximize(), add_l2(), velocity(lookahead=True))
        elif form == "torch":
            rule = chain(_maximize(), add_l2(), trace(nesterov=True), scale_by_lr())
            hyper["nesterov"] = True
        else:
            rule = chain(_maximize(), add_l2(), velocity(nesterov=True))
            hyper["nesterov"] = True
        super().__init__(params, rule, hyper, monitor=monitor, fused=fused)
        self.lookahead = lookahead


class Adagrad(_Named):
    r"""AdaGrad (torch's ``Adagrad``): per-coordinate rates shrinking with the sum of squared
    gradients, :math:`p \leftarrow p - \frac{\eta_t}{\sqrt{r_t}+\epsilon} g`, with
    :math:`\eta_t = \eta/(1+(t-1)\,\text{lr\_decay})`.

    Chain: ``maximize -> add_l2 -> scale_by_adagrad -> scale_by_lr``. ``eps_inside_sqrt``
    gives seed 002's :math:`\eta/\sqrt{G_t+\epsilon}`. Optax's ``adagrad`` puts eps inside
    and starts the accumulator at 0.1; torch and Keras outside (Keras: 1e-7, accumulator 0.1).
    """

    sparse_grads = True

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        eps_inside_sqrt: bool = False,
        monitor: bool = False,
    ) -> None:
        _torch_flags("Adagrad", foreach=foreach, differentiable=differentiable, fused=fused)
        rule = chain(
            _maximize(),
            add_l2(),
            scale_by_adagrad(initial_accumulator_value=initial_accumulator_value),
            scale_by_lr(lr_decay=0 if lr_decay is None else lr_decay),  # None: refused by type
        )
        hyper = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            eps_inside_sqrt=eps_inside_sqrt,
            maximize=maximize,
        )
        super().__init__(params, rule, hyper, monitor=monitor, fused=fused)


class Adadelta(_Named):
    r"""Adadelta (torch's ``Adadelta``; seed 002's equations), chain
    ``maximize -> add_l2 -> scale_by_adadelta -> scale_by_lr`` with torch's ``lr=1.0``."""

    def __init__(
        self,
        params: Params,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        monitor: bool = False,
    ) -> None:
        _torch_flags(
            "Adadelta",
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
        )
        rule = chain(_maximize(), add_l2(), scale_by_adadelta(), scale_by_lr())
        hyper = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, rule, hyper, monitor=monitor, fused=fused)


class RMSprop(_Named):
    r"""RMSprop (torch's ``RMSprop``): chain
    ``maximize -> add_l2 -> scale_by_rms -> trace -> scale_by_lr``.

    ``centered`` subtracts the squared mean gradient; ``momentum > 0`` adds torch's buffer
    :math:`b = \mu b + g/(\sqrt{r}+\epsilon)`; ``eps_inside_sqrt`` gives seed 002's form.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        *,
        eps_inside_sqrt: bool = False,
        fused: bool | None = None,
        monitor: bool = False,
    ) -> None:
        _torch_flags(
            "RMSprop",
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
        )
        rule = chain(_maximize(), add_l2(), scale_by_rms(centered=centered), trace(), scale_by_lr())
        hyper = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            eps_inside_sqrt=eps_inside_sqrt,
            maximize=maximize,
        )
        super().__init__(params, rule, hyper, monitor=monitor, fused=fused)


def _adam_chain(core: Rule) -> Rule:
    """``maximize -> add_l2 -> core -> add_decayed_weights -> scale_by_lr``, where each param
    group's ``decoupled_weight_decay`` switches on exactly one of the two penalties."""
    switch = "decoupled_weight_decay"
    return chain(
        _maximize(),
        add_l2(off_when=switch),
        core,
        add_decayed_weights(0.0, on_when=switch),
        scale_by_lr(),
    )


class Adam(_Named):
    r"""Adam (torch's ``Adam``): chain ``maximize -> add_l2 -> scale_by_adam ->
    add_decayed_weights -> scale_by_lr``; each param group's ``decoupled_weight_decay``
    (torch's per-group option) switches on ``add_decayed_weights`` (AdamW) instead of
    ``add_l2``.

    Options beyond torch: ``bias_correction=False`` (seed 003's first Adam) and
    ``eps_inside_sqrt=True`` (seed 002). See :class:`~descentlab.optim.scale_by_adam`.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
        bias_correction: bool = True,
        eps_inside_sqrt: bool = False,
        monitor: bool = False,
    ) -> None:
        name = type(self).__name__
        _torch_flags(
            name,
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
        )
        hyper = dict(
            lr=lr,
            betas=_pair(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            bias_correction=bias_correction,
            eps_inside_sqrt=eps_inside_sqrt,
            maximize=maximize,
        )
        self._init_adam_family(
            params, scale_by_adam(amsgrad=amsgrad), decoupled_weight_decay, hyper, monitor, fused
        )


class AdamW(Adam):
    """AdamW (torch's ``AdamW``): Adam with decoupled weight decay, default 1e-2."""

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        bias_correction: bool = True,
        eps_inside_sqrt: bool = False,
        monitor: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
            bias_correction=bias_correction,
            eps_inside_sqrt=eps_inside_sqrt,
            monitor=monitor,
        )


class NAdam(_Named):
    """NAdam (torch's ``NAdam``): chain ``maximize -> add_l2 -> scale_by_nadam ->
    add_decayed_weights -> scale_by_lr``, one of the two penalties on in each param group
    (``decoupled_weight_decay``, per group as in torch)."""

    def __init__(
        self,
        params: Params,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        monitor: bool = False,
    ) -> None:
        _torch_flags(
            "NAdam",
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
        )
        hyper = dict(
            lr=lr,
            betas=_pair(betas),
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            maximize=maximize,
        )
        self._init_adam_family(
            params, scale_by_nadam(), decoupled_weight_decay, hyper, monitor, fused
        )


class RAdam(_Named):
    """RAdam (torch's ``RAdam``): chain ``maximize -> add_l2 -> scale_by_radam ->
    add_decayed_weights -> scale_by_lr``, one of the two penalties on in each param group
    (``decoupled_weight_decay``, per group as in torch)."""

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        monitor: bool = False,
    ) -> None:
        _torch_flags(
            "RAdam",
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
        )
        hyper = dict(
            lr=lr, betas=_pair(betas), eps=eps, weight_decay=weight_decay, maximize=maximize
        )
        self._init_adam_family(
            params, scale_by_radam(), decoupled_weight_decay, hyper, monitor, fused
        )


_WARNED_EAGER: set[str] = set()


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _eager_only(name: str, fused: bool | None) -> None:
    """Announce (once per optimizer) that ``fused=None`` runs this chain eagerly: its rule
    has no fused form (``fused=True`` is refused by the optimizer, naming the rule)."""
    if fused is None and name not in _WARNED_EAGER:
        _WARNED_EAGER.add(name)
        warnings.warn(
            f"descentlab: {name} has no fused form; fused=None runs it eagerly "
            "(pass fused=False to say so and silence this warning)",
            RuntimeWarning,
            stacklevel=3,
        )


class Adamax(_Named):
    r"""Adamax (torch's ``Adamax``): chain ``maximize -> add_l2 -> scale_by_adamax ->
    scale_by_lr``, Adam with the infinity norm,
    :math:`p \leftarrow p - \frac{\eta}{1-\beta_1^t}\,\frac{m_t}{u_t}`,
    :math:`u_t = \max(\beta_2 u_{t-1}, |g_t|+\epsilon)`. Runs eagerly (no fused form).

    Example:
        >>> import torch
        >>> from descentlab.optim import Adamax
        >>> opt = Adamax(torch.nn.Linear(4, 1).parameters(), lr=2e-3, fused=False)
    """

    def __init__(
        self,
        params: Params,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        fused: bool | None = None,
        monitor: bool = False,
    ) -> None:
        _torch_flags(
            "Adamax",
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
        )
        rule = chain(_maximize(), add_l2(), scale_by_adamax(), scale_by_lr())
        hyper = dict(
            lr=lr, betas=_pair(betas), eps=eps, weight_decay=weight_decay, maximize=maximize
        )
        super().__init__(params, rule, hyper, monitor=monitor, fused=fused)
        _eager_only("Adamax", fused)


class ASGD(_Named):
    r"""Averaged SGD (torch's ``ASGD``): chain ``maximize -> add_l2 -> scale_by_asgd``.

    Steps :math:`p \leftarrow p - \eta_{t-1}(g + \lambda p)` with
    :math:`\eta_t = \eta/(1+\lambda\eta t)^\alpha`, and keeps the average of the iterates
    from step ``t0`` on in state ``ax`` (see :class:`~descentlab.optim.scale_by_asgd`).
    Runs eagerly (no fused form).

    Example:
        >>> import torch
        >>> from descentlab.optim import ASGD
        >>> opt = ASGD(torch.nn.Linear(4, 1).parameters(), lr=0.01, t0=100, fused=False)
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        *,
        fused: bool | None = None,
        monitor: bool = False,
    ) -> None:
        _torch_flags(
            "ASGD",
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
        )
        rule = chain(_maximize(), add_l2(), scale_by_asgd())
        hyper = dict(
            lr=lr,
            lambd=lambd,
            alpha=alpha,
            t0=t0,
            weight_decay=weight_decay,
            maximize=maximize,
        )
        super().__init__(params, rule, hyper, monitor=monitor, fused=fused)
        _eager_only("ASGD", fused)


class Rprop(_Named):
    r"""Rprop (torch's ``Rprop``): chain ``maximize -> scale_by_rprop``; sign-based steps
    whose per-coordinate sizes start at ``lr`` and adapt by ``etas`` within
    ``step_sizes`` (see :class:`~descentlab.optim.scale_by_rprop`). Meant for full-batch
    gradients. Runs eagerly (no fused form).

    Example:
        >>> import torch
        >>> from descentlab.optim import Rprop
        >>> opt = Rprop(torch.nn.Linear(4, 1).parameters(), lr=0.01, fused=False)
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        monitor: bool = False,
    ) -> None:
        _torch_flags(
            "Rprop",
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
        )
        rule = chain(_maximize(), scale_by_rprop())
        hyper = dict(lr=lr, etas=_pair(etas), step_sizes=_pair(step_sizes), maximize=maximize)
        super().__init__(params, rule, hyper, monitor=monitor, fused=fused)
        _eager_only("Rprop", fused)


class LBFGS(_Named):
    r"""L-BFGS (torch's ``LBFGS``): up to ``max_iter`` quasi-Newton iterations per
    ``step(closure)``, each along the direction of :class:`~descentlab.optim.scale_by_lbfgs`
    (the two-loop recursion over the last ``history_size`` curvature pairs), with a fixed
    step ``lr`` (the first one scaled to :math:`\min(1, 1/\lVert g\rVert_1)\,\text{lr}`) or
    torch's strong-Wolfe line search (``line_search_fn="strong_wolfe"``; torch's own routine
    is called, so the iterates are torch's).

    Like torch's, it takes one parameter group, flattens all parameters into one vector,
    needs a closure that re-evaluates the loss (with ``zero_grad`` and ``backward``), and
    keeps its history as the state of the first parameter under torch's keys, so state
    dicts load both ways. It stops early when the largest gradient entry is at most
    ``tolerance_grad`` or the step or the loss change is at most ``tolerance_change``.
    ``fused`` is accepted for the registry's uniform signature; only ``None``/``False``
    (the one, eager, form) are valid.

    Example:
        >>> import torch
        >>> from descentlab.optim import LBFGS
        >>> w = torch.nn.Parameter(torch.tensor([3.0, -1.0], dtype=torch.float64))
        >>> opt = LBFGS([w], lr=1, max_iter=20, line_search_fn="strong_wolfe")
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = ((w - 1) ** 2).sum()
        ...     loss.backward()
        ...     return loss
        >>> _ = opt.step(closure)
        >>> w.detach()
        tensor([1., 1.], dtype=torch.float64)
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
        *,
        fused: bool | None = None,
    ) -> None:
        if fused:
            raise ValueError(
                "LBFGS(fused=True): scale_by_lbfgs has no fused form (it is not elementwise)"
            )
        if fused is not None:
            check_bool("fused", fused)
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError(f"LBFGS: Tensor lr must be 1-element, got {lr.numel()} elements")
        rule = chain(scale_by_lbfgs(), scale_by_lr(1))
        hyper = dict(
            lr=lr,
            max_iter=max_iter,
            max_eval=max_iter * 5 // 4 if max_eval is None and _int(max_iter) else max_eval,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            history_size=history_size,
            line_search_fn=line_search_fn,
        )
        self._lbfgs_rule = rule.rules[0]
        Optimizer.__init__(self, params, rule, fused=False, **hyper)
        if len(self.param_groups) != 1:
            raise ValueError(
                "LBFGS takes one parameter group (it flattens all parameters into one "
                f"vector, as torch's), got {len(self.param_groups)}"
            )
        self._params = self.param_groups[0]["params"]

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict of this optimizer or of ``torch.optim.LBFGS`` (torch's keys;
        torch's implementation flags are dropped, missing hyperparameters defaulted)."""
        groups = []
        for group in state_dict["param_groups"]:
            g = {k: v for k, v in group.items() if k not in _TORCH_FLAGS}
            for k, v in self.defaults.items():
                g.setdefault(k, v)
            g.setdefault("step", 0)
            groups.append(g)
        torch.optim.Optimizer.load_state_dict(self, {**state_dict, "param_groups": groups})
        self._params = self.param_groups[0]["params"]

    def _flat_grad(self) -> Tensor:
        views = []
        for p in self._params:
            g = p.grad
            if g is None:
                view = p.new_zeros(p.numel())
            else:
                if g.is_sparse:
                    g = g.to_dense()
                view = g.reshape(-1)
            views.append(torch.view_as_real(view).view(-1) if view.is_complex() else view)
        return torch.cat(views, 0)

    def _move(self, t: Any, d: Tensor) -> None:
        """p += t * d, d cut into the parameters' shapes (complex as pairs of reals)."""
        offset = 0
        for p in self._params:
            real = torch.view_as_real(p) if p.is_complex() else p
            n = real.numel()
            real.add_(d[offset : offset + n].view_as(real), alpha=t)
            offset += n

    def _evaluate_at(self, closure: Any, x: list[Tensor], t: Any, d: Tensor) -> tuple:
        """Loss and flat gradient at ``x + t d`` (the line search's probe); the parameters
        are put back to ``x`` afterwards."""
        self._move(t, d)
        loss = float(closure())
        flat = self._flat_grad()
        for p, saved in zip(self._params, x, strict=True):
            p.copy_(saved)
        return loss, flat

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        """Run up to ``max_iter`` iterations; returns the loss before the first one.

        Args:
            closure: re-evaluates the model and returns the loss (required).
        """
        if closure is None:
            raise ValueError(
                "LBFGS.step needs a closure that re-evaluates the loss (zero_grad, forward, "
                "backward, return the loss), got closure=None"
            )
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        self._validate(0, {k: v for k, v in group.items() if k not in _NOT_HYPER})
        lr = float(group["lr"])
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        history = group["history_size"]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        loss = float(orig_loss)
        evals = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if flat_grad.abs().max() <= tol_grad:
            return orig_loss

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            d = self._lbfgs_rule.direction(state, flat_grad, history)
            prev_loss = loss
            t = min(1.0, 1.0 / flat_grad.abs().sum()) * lr if state["n_iter"] == 1 else lr
            state["t"] = t
            gtd = flat_grad.dot(d)
            if gtd > -tol_change:  # not a descent direction
                break

            ls_evals = 0
            if group["line_search_fn"] is not None:
                x = [p.clone(memory_format=torch.contiguous_format) for p in self._params]

                def probe(x, t, d):
                    return self._evaluate_at(closure, x, t, d)

                loss, flat_grad, t, ls_evals = _strong_wolfe(probe, x, t, d, loss, flat_grad, gtd)
                state["t"] = t
                self._move(t, d)
                converged = flat_grad.abs().max() <= tol_grad
            else:
                self._move(t, d)
                converged = False
                if n_iter != max_iter:
                    loss = float(closure())
                    flat_grad = self._flat_grad()
                    converged = flat_grad.abs().max() <= tol_grad
                    ls_evals = 1
            evals += ls_evals
            state["func_evals"] += ls_evals

            if (
                n_iter == max_iter
                or evals >= max_eval
                or converged
                or d.mul(t).abs().max() <= tol_change
                or abs(loss - prev_loss) < tol_change
            ):
                break
        state["prev_loss"] = prev_loss
        group["step"] = int(group.get("step", 0)) + 1
        return orig_loss


# --------------------------------------------------------------------------------------
# The records of the registered optimizers (registry order: the lectures')
# --------------------------------------------------------------------------------------

_TWO_DECADES_SGD = (1e-2, 1.0)
_TWO_DECADES_ADAM = (1e-3, 1e-1)

RECORDS: tuple[OptimizerRecord, ...] = (
    OptimizerRecord(
        name="sgd",
        display="SGD",
        color="#D62728",
        lr_range=_TWO_DECADES_SGD,
        demo_lr={"ravine": 0.18, "saddle": 0.05},
        family="sgd",
        adaptive=False,
        year=1951,
        reference="Robbins & Monro, A Stochastic Approximation Method, Ann. Math. Statist. 1951",
        factory=SGD,
        parity=(
            ParityConfig("sgd", "SGD", dict(lr=0.1), dict(lr=0.05)),
            ParityConfig("sgd-momentum", "SGD", dict(lr=0.05, momentum=0.9), dict(momentum=0.5)),
            ParityConfig(
                "sgd-dampening", "SGD", dict(lr=0.05, momentum=0.9, dampening=0.3), dict(lr=0.1)
            ),
            ParityConfig(
                "sgd-nesterov", "SGD", dict(lr=0.05, momentum=0.9, nesterov=True), dict(lr=0.02)
            ),
            ParityConfig(
                "sgd-weight-decay",
                "SGD",
                dict(lr=0.05, momentum=0.9, weight_decay=1e-2),
                dict(weight_decay=0.0),
            ),
            ParityConfig(
                "sgd-maximize", "SGD", dict(lr=0.05, momentum=0.8, maximize=True), dict(lr=0.1)
            ),
        ),
    ),
    OptimizerRecord(
        name="momentum",
        display="Momentum",
        color="#0072B2",
        lr_range=_TWO_DECADES_SGD,
        demo_lr={"ravine": 0.02, "saddle": 0.01},
        family="momentum",
        adaptive=False,
        year=1964,
        reference="Polyak, Some methods of speeding up the convergence of iteration methods, "
        "USSR Comput. Math. Math. Phys. 1964",
        factory=Momentum,
    ),
    OptimizerRecord(
        name="nesterov",
        display="Nesterov",
        color="#56B4E9",
        lr_range=_TWO_DECADES_SGD,
        demo_lr={"ravine": 0.02, "saddle": 0.01},
        family="momentum",
        adaptive=False,
        year=1983,
        reference="Nesterov, A method for solving the convex programming problem with "
        "convergence rate O(1/k^2), Soviet Math. Dokl. 1983",
        factory=Nesterov,
    ),
    OptimizerRecord(
        name="adagrad",
        display="AdaGrad",
        color="#009E73",
        lr_range=_TWO_DECADES_SGD,
        demo_lr={"ravine": 1.0, "saddle": 0.3},
        family="adaptive",
        adaptive=True,
        year=2011,
        reference="Duchi, Hazan & Singer, Adaptive Subgradient Methods for Online Learning "
        "and Stochastic Optimization, JMLR 2011",
        factory=Adagrad,
        parity=(
            ParityConfig("adagrad", "Adagrad", dict(lr=0.05), dict(lr=0.02)),
            ParityConfig(
                "adagrad-decay-init",
                "Adagrad",
                dict(lr=0.05, lr_decay=1e-2, initial_accumulator_value=0.1, weight_decay=1e-3),
                dict(lr_decay=0.0),
            ),
            ParityConfig("adagrad-maximize", "Adagrad", dict(lr=0.05, maximize=True, eps=1e-6)),
        ),
    ),
    OptimizerRecord(
        name="adadelta",
        display="Adadelta",
        color="#CC79A7",
        # lr multiplies an already unit-corrected step (torch's default is 1.0; short runs
        # favour larger values)
        lr_range=(1.0, 100.0),
        demo_lr={"ravine": 20.0, "saddle": 10.0},
        family="adaptive",
        adaptive=False,  # per-coordinate, but its steps are not about lr: see fixed_lr
        year=2012,
        reference="Zeiler, ADADELTA: An Adaptive Learning Rate Method, arXiv:1212.5701 (2012)",
        factory=Adadelta,
        parity=(
            ParityConfig("adadelta", "Adadelta", {}, dict(rho=0.95)),
            ParityConfig(
                "adadelta-wd",
                "Adadelta",
                dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=1e-2),
                dict(lr=1.0),
            ),
        ),
        fixed_lr=1.0,
    ),
    OptimizerRecord(
        name="rmsprop",
        display="RMSProp",
        color="#E69F00",
        lr_range=_TWO_DECADES_ADAM,
        demo_lr={"ravine": 0.05, "saddle": 0.02},
        family="adaptive",
        adaptive=True,
        year=2012,
        reference="Tieleman & Hinton, Lecture 6.5, Neural Networks for Machine Learning "
        "(Coursera) 2012",
        factory=RMSprop,
        parity=(
            ParityConfig("rmsprop", "RMSprop", dict(lr=1e-3), dict(alpha=0.9)),
            ParityConfig(
                "rmsprop-centered", "RMSprop", dict(lr=1e-3, centered=True), dict(lr=5e-4)
            ),
            ParityConfig(
                "rmsprop-momentum", "RMSprop", dict(lr=1e-3, momentum=0.9), dict(momentum=0.5)
            ),
            ParityConfig(
                "rmsprop-centered-momentum-wd",
                "RMSprop",
                dict(lr=5e-4, momentum=0.9, centered=True, weight_decay=1e-3),
            ),
        ),
    ),
    OptimizerRecord(
        name="adam",
        display="Adam",
        color="#000000",
        lr_range=_TWO_DECADES_ADAM,
        demo_lr={"ravine": 0.3, "saddle": 0.05},
        family="adam",
        adaptive=True,
        year=2015,
        reference="Kingma & Ba, Adam: A Method for Stochastic Optimization, ICLR 2015",
        factory=Adam,
        parity=(
            ParityConfig("adam", "Adam", dict(lr=1e-2), dict(betas=(0.8, 0.99))),
            ParityConfig("adam-amsgrad", "Adam", dict(lr=1e-2, amsgrad=True), dict(lr=3e-3)),
            ParityConfig(
                "adam-weight-decay", "Adam", dict(lr=1e-2, weight_decay=1e-2), dict(eps=1e-6)
            ),
            ParityConfig("adam-maximize", "Adam", dict(lr=1e-2, maximize=True)),
            ParityConfig(
                "adam-decoupled",
                "Adam",
                dict(lr=1e-2, weight_decay=1e-1, decoupled_weight_decay=True),
                dict(lr=5e-3),
            ),
        ),
    ),
    OptimizerRecord(
        name="adamw",
        display="AdamW",
        color="#7F7F7F",
        lr_range=_TWO_DECADES_ADAM,
        demo_lr={},
        family="adam",
        adaptive=True,
        year=2019,
        reference="Loshchilov & Hutter, Decoupled Weight Decay Regularization, ICLR 2019",
        factory=AdamW,
        parity=(
            ParityConfig("adamw", "AdamW", dict(lr=1e-2), dict(weight_decay=0.1)),
            ParityConfig("adamw-amsgrad", "AdamW", dict(lr=1e-2, amsgrad=True, weight_decay=0.05)),
        ),
    ),
    OptimizerRecord(
        name="nadam",
        display="NAdam",
        color="#8C564B",
        lr_range=_TWO_DECADES_ADAM,
        demo_lr={},
        family="adam",
        adaptive=True,
        year=2016,
        reference="Dozat, Incorporating Nesterov Momentum into Adam, ICLR 2016 workshop",
        factory=NAdam,
        parity=(
            ParityConfig("nadam", "NAdam", dict(lr=1e-2), dict(momentum_decay=8e-3)),
            ParityConfig("nadam-wd", "NAdam", dict(lr=1e-2, weight_decay=1e-2)),
            ParityConfig(
                "nadam-decoupled",
                "NAdam",
                dict(lr=1e-2, weight_decay=1e-1, decoupled_weight_decay=True),
            ),
        ),
    ),
    OptimizerRecord(
        name="radam",
        display="RAdam",
        color="#9467BD",
        lr_range=_TWO_DECADES_ADAM,
        demo_lr={},
        family="adam",
        adaptive=True,
        year=2020,
        reference="Liu et al., On the Variance of the Adaptive Learning Rate and Beyond, ICLR 2020",
        factory=RAdam,
        parity=(
            ParityConfig("radam", "RAdam", dict(lr=1e-2), dict(betas=(0.9, 0.99))),
            ParityConfig("radam-wd", "RAdam", dict(lr=1e-2, weight_decay=1e-2)),
            ParityConfig(
                "radam-decoupled",
                "RAdam",
                dict(lr=1e-2, weight_decay=1e-1, decoupled_weight_decay=True),
            ),
        ),
    ),
    OptimizerRecord(
        name="adamax",
        display="Adamax",
        color="#BCBD22",
        lr_range=_TWO_DECADES_ADAM,
        demo_lr={},
        family="adam",
        adaptive=True,
        year=2015,
        reference="Kingma & Ba, Adam: A Method for Stochastic Optimization (section 7.1), "
        "ICLR 2015",
        factory=Adamax,
        parity=(
            ParityConfig("adamax", "Adamax", dict(lr=1e-2), dict(betas=(0.8, 0.99))),
            ParityConfig(
                "adamax-wd-maximize",
                "Adamax",
                dict(lr=5e-3, weight_decay=1e-2, maximize=True, eps=1e-6),
                dict(lr=1e-2),
            ),
        ),
    ),
    OptimizerRecord(
        name="asgd",
        display="ASGD",
        color="#17BECF",
        lr_range=_TWO_DECADES_SGD,
        demo_lr={},
        family="sgd",
        adaptive=False,
        year=1992,
        reference="Polyak & Juditsky, Acceleration of Stochastic Approximation by Averaging, "
        "SIAM J. Control Optim. 1992",
        factory=ASGD,
        parity=(
            ParityConfig("asgd", "ASGD", dict(lr=0.05), dict(lr=0.02)),
            ParityConfig(
                "asgd-averaging-wd-maximize",
                "ASGD",
                dict(lr=0.05, lambd=1e-2, alpha=0.6, t0=100, weight_decay=1e-3, maximize=True),
                dict(t0=50, lambd=1e-3),
            ),
        ),
    ),
    OptimizerRecord(
        name="rprop",
        display="Rprop",
        color="#AA4499",
        # lr is Rprop's initial step per coordinate (then adapted within step_sizes)
        lr_range=(1e-4, 1e-2),
        demo_lr={},
        family="adaptive",
        adaptive=True,
        year=1993,
        reference="Riedmiller & Braun, A Direct Adaptive Method for Faster Backpropagation "
        "Learning: the RPROP Algorithm, IEEE ICNN 1993",
        factory=Rprop,
        parity=(
            ParityConfig("rprop", "Rprop", dict(lr=1e-3), dict(lr=5e-4)),
            ParityConfig(
                "rprop-etas-sizes",
                "Rprop",
                dict(lr=1e-3, etas=(0.3, 1.5), step_sizes=(1e-5, 1e-2), maximize=True),
                dict(etas=(0.6, 1.1)),
            ),
        ),
    ),
)
