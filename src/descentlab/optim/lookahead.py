r"""Lookahead (Zhang et al., 2019): k steps forward, one step back.

A *fast* optimizer (any chain) takes ``sync_period`` steps; then the *slow* weights move a
fraction ``slow_step_size`` of the way towards the fast ones and the fast weights restart
from there:

.. math::
    \phi \leftarrow \phi + \alpha\,(\theta_{t} - \phi), \qquad \theta_t \leftarrow \phi
    \qquad \text{every } k \text{ steps}

The rule :class:`lookahead` comes *after* the learning rate (it reads the finished update
``u`` and the parameter): ``chain(..., scale_by_lr(), lookahead())``, so the parameters are
the fast weights and the slow weights live in the state (``"slow"``). The sync is written
once, in the form (:mod:`descentlab.optim.form`): a ``where`` on the step's sync flag, so the
whole chain is one fused kernel on the CPU and one Triton launch on a GPU. Optax's
``optax.lookahead(fast, sync_period, slow_step_size)``, matched to 1e-10 in float64
(``tests/test_optax_reference.py``).

Conventions: Optax keeps both weights as the parameters (``LookaheadParams``) and the
gradient is taken at the fast ones, as here; the fast optimizer's state is kept across a
synchronization (Optax's default ``reset_state=False``, the paper's "maintain" option).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch

from . import adam, adam_variants, adaptive, asgd, lion, rprop, sgd
from .base import HyperparameterTypeError, Rule, chain
from .form import Form, FormRule, lerp, where
from .hyperspec import Integer, Real, declare
from .optimizer import Optimizer
from .records import OptimizerRecord, adam_family

__all__ = ["Lookahead", "Wrapped", "base_chain", "factory_keywords", "lookahead", "resolve_base"]

#: the optimizers Lookahead and SAM can wrap by name: the classic ones and Lion
_BASES = (sgd, adaptive, adam, adam_variants, asgd, rprop, lion)


class lookahead(FormRule):
    r"""Every ``sync_period`` steps, pull the slow weights towards the fast ones and reset
    the fast weights to them (Zhang et al., 2019). Place it last, after the learning rate.

    Args:
        sync_period: :math:`k \ge 1`, fast steps per synchronization.
        slow_step_size: :math:`\alpha \in [0, 1]`.

    Example:
        >>> from descentlab import optim
        >>> optim.chain(optim.scale_by_adam(), optim.scale_by_lr(1e-3), optim.lookahead(5, 0.5))
        ... # doctest: +ELLIPSIS
        chain(scale_by_adam(...), scale_by_lr(lr=0.001), lookahead(sync_period=5, ...))
    """

    name = "lookahead"
    role = "wrapper (gradient point, averaging)"

    def __init__(self, sync_period: int = 5, slow_step_size: float = 0.5) -> None:
        super().__init__(sync_period=sync_period, slow_step_size=slow_step_size)

    def init(self, params):
        return {"slow": [p.detach().clone(memory_format=torch.preserve_format) for p in params]}

    checks = declare(sync_period=Integer(1), slow_step_size=Real(0.0, 1.0))

    def form(self, f: Form, hyper) -> None:
        k = ("sync_period",)
        sync = f.coef("sync", lambda h, t: float(int(t) % int(h["sync_period"]) == 0), uses=k)
        alpha = f.coef("alpha", lambda h, t: h["slow_step_size"], uses=("slow_step_size",))
        slow = f.state("slow")
        slow = f.assign("slow", where(sync, lerp(slow, f.p + f.g, alpha), slow))
        f.out(where(sync, slow - f.p, f.g))  # the fast weights restart from the slow ones


def resolve_base(base: Any) -> type[Optimizer]:
    """A base optimizer given by registry name (``"adam"``) or as a descentlab class."""
    if isinstance(base, type) and issubclass(base, Optimizer):
        return base
    names = {r.name: r.factory for m in _BASES for r in m.RECORDS}
    if not isinstance(base, str):
        raise HyperparameterTypeError(
            f"base must be an optimizer name ({', '.join(names)}) or a descentlab optimizer "
            f"class, got {base!r}"
        )
    key = base.strip().lower()
    if key not in names:
        raise ValueError(f"base must be one of {', '.join(names)}, got {base!r}")
    return names[key]


class Wrapped(Optimizer):
    """An optimizer around a named base optimizer: ``chain(*before, <base's rules>,
    *after)`` with the base's hyperparameters (``lr`` None: the base's default) and the
    wrapper's own ``extra`` ones."""

    def __init__(
        self,
        params: Any,
        base: Any,
        lr: float | None,
        base_kwargs: dict[str, Any],
        extra: dict[str, Any],
        rules: tuple[tuple[Rule, ...], tuple[Rule, ...]],
        *,
        fused: bool | None,
        monitor: bool,
    ) -> None:
        rule, hyper = base_chain(base, base_kwargs, lr)
        before, after = rules
        chained = chain(*before, *rule.rules, *after)
        super().__init__(params, chained, monitor=monitor, fused=fused, **hyper, **extra)
        self.base = resolve_base(base)


def factory_keywords(factory: Any, hyper: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The keyword hyperparameters ``factory(params, **hyper)`` takes, with their defaults
    (``inspect.Parameter.empty`` where there is none): its own, and for a wrapper
    (:class:`Wrapped`: Lookahead, SAM) its base optimizer's too -- the base named by
    ``hyper["base"]`` or the wrapper's default one. The wrapper's own come first and win.

    Example:
        >>> from descentlab.optim.sam import SAM
        >>> ks = factory_keywords(SAM, {"base": "adam"})
        >>> ks["rho"], ks["betas"], "base_kwargs" in ks
        (0.05, (0.9, 0.999), False)
    """
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}
    own = {
        n: p.default
        for n, p in sig.parameters.items()
        if n != "params" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }
    if not (isinstance(factory, type) and issubclass(factory, Wrapped)):
        return own
    base = (hyper or {}).get("base", own.get("base"))
    try:
        inner = factory_keywords(resolve_base(base))
    except (TypeError, ValueError):
        return own  # a bad base is refused, naming it, when the optimizer is built
    return {**own, **{k: v for k, v in inner.items() if k not in own}}


def base_chain(
    base: Any, kwargs: dict[str, Any], lr: float | None = None
) -> tuple[Rule, dict[str, Any]]:
    """The chain and hyperparameters of ``base(params, lr=lr, **kwargs)`` (``lr`` None: the
    base's default), built on a probe (so its own checks refuse bad values, naming them,
    before anything is created)."""
    cls = resolve_base(base)
    if kwargs.get("differentiable"):  # the wrapper's own rules have no differentiable step
        raise ValueError(
            f"differentiable=True is not supported around a base optimizer ({cls.__name__} "
            "in Lookahead or SAM), got differentiable=True"
        )
    if lr is not None:
        kwargs = {**kwargs, "lr": lr}
    probe = cls([torch.nn.Parameter(torch.zeros(1))], **{"fused": False, **kwargs})
    hyper = {k: v for k, v in probe.defaults.items() if k in probe.rule.defaults}
    return probe.rule, hyper


class Lookahead(Wrapped):
    r"""Lookahead around a named optimizer: ``chain(<base's rules>, lookahead())``.

    Args:
        params: parameters or param groups.
        base: the fast optimizer, a registry name (``"adam"``, ``"sgd"``...) or a class.
        sync_period: fast steps per synchronization (:math:`k`, the paper's 5).
        slow_step_size: :math:`\alpha` (the paper's 0.5).
        lr: the base's learning rate (None: the base's default).
        fused: backend (None: fused where the base has a fused form).
        base_kwargs: the base optimizer's hyperparameters (``lr``, ``momentum``, ...).

    Example:
        >>> import torch
        >>> from descentlab.optim import Lookahead
        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = Lookahead([w], base="sgd", lr=0.1, sync_period=2, fused=False)
        >>> for _ in range(2):
        ...     opt.zero_grad(); (w * w).sum().backward(); opt.step()
        >>> round(w[0].item(), 4)  # fast: 1 -> 0.8 -> 0.64; slow: 1 + 0.5 (0.64 - 1)
        0.82
    """

    def __init__(
        self,
        params: Any,
        base: Any = "adam",
        sync_period: int = 5,
        slow_step_size: float = 0.5,
        lr: float | None = None,
        *,
        fused: bool | None = None,
        monitor: bool = False,
        **base_kwargs: Any,
    ) -> None:
        extra = dict(sync_period=sync_period, slow_step_size=slow_step_size)
        rules = ((), (lookahead(),))
        super().__init__(params, base, lr, base_kwargs, extra, rules, fused=fused, monitor=monitor)


#: this module's registered optimizer (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (adam_family(
    name="lookahead", display="Lookahead", color="#882255",
    year=2019, factory=Lookahead, demo_lr={"ravine": 0.3, "saddle": 0.1},
    reference="Zhang, Lucas, Hinton & Ba, Lookahead Optimizer: k steps forward, 1 step back, "
    "NeurIPS 2019 (arXiv:1907.08610)",
),)
# fmt: on
