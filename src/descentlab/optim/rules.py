r"""The update rules that named optimizers are chained from.

Each rule is a class (lower-case, used like a function: ``scale_by_adam(betas=(0.9, 0.99))``)
whose constructor arguments are hyperparameter *defaults*; the values actually used at each
step are read from the param group, so schedulers may change any of them.

Notation: :math:`g` incoming gradient (or previous rule's output), :math:`p` parameter,
:math:`t` the step count (1 on the first step), :math:`u` the rule's output. Updates are
added to parameters: :math:`p \leftarrow p + u`.

Where the lectures disagree, a rule takes an option; the default matches ``torch.optim``:

==========================  =======================================  ==================
variant                     option                                   lectures
==========================  =======================================  ==================
momentum, lr outside        :class:`trace` (torch)                   seed 002, seed 003 (cs231n)
momentum, lr inside         :class:`velocity`                        seeds 000, 001, 003, 004
Nesterov change of vars     ``trace(nesterov=True)``                 seed 003 derivation
Nesterov lookahead grad     ``velocity(lookahead=True)``             seeds 001, 002
eps inside the root         ``eps_inside_sqrt=True``                 seed 002 (AdaGrad/RMSprop/Adam)
eps outside the root        default                                  seeds 001, 003
Adam w/o bias correction    ``scale_by_adam(bias_correction=False)`` seed 003 (first version)
==========================  =======================================  ==================
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import (
    Hyper,
    HyperparameterTypeError,
    Owned,
    Rule,
    add_into,
    add_scaled_,
    as_scalar,
    bcast,
    check_bool,
    check_choice,
    check_range,
    div_into_,
    ema_sq_,
    is_batched,
    lerp_,
    mul,
    mul_,
    scratch,
    sqrt_into,
    step_values,
    writable,
)

__all__ = [
    "NonFiniteGradientError",
    "add_decayed_weights",
    "add_l2",
    "add_noise",
    "clip_by_global_norm",
    "clip_by_value",
    "maximize",
    "non_finite_guard",
    "scale_by_adadelta",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_asgd",
    "scale_by_lbfgs",
    "scale_by_lr",
    "scale_by_nadam",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rprop",
    "trace",
    "velocity",
]


def _zeros(params: list[Tensor]) -> list[Tensor]:
    return [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]


def _scale_each_(xs: list[Tensor], factors: list[Any]) -> None:
    """xs[i] *= factors[i]; factors are numbers or batched tensors."""
    if is_batched(*factors):
        for x, f in zip(xs, factors, strict=True):
            x.mul_(bcast(f, x))
    else:
        first = factors[0]
        if all(f == first for f in factors):
            torch._foreach_mul_(xs, first)
        else:
            torch._foreach_mul_(xs, [float(f) for f in factors])


def _div_each_(xs: list[Tensor], factors: list[Any]) -> None:
    if is_batched(*factors):
        for x, f in zip(xs, factors, strict=True):
            x.div_(bcast(f, x))
    else:
        first = factors[0]
        if all(f == first for f in factors):
            torch._foreach_div_(xs, first)
        else:
            torch._foreach_div_(xs, [float(f) for f in factors])


def _betas(hyper: Hyper) -> tuple[Any, Any]:
    b1, b2 = hyper["betas"]
    return as_scalar(b1), as_scalar(b2)


def _check_betas(hyper: Hyper, scalar: str = "") -> None:
    """Check ``hyper["betas"]``; ``scalar``: the name of a rule that refuses batched betas."""
    betas = hyper["betas"]
    if not isinstance(betas, tuple | list):
        raise HyperparameterTypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    if len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    check_range("betas[0]", betas[0], 0.0, 1.0, hi_open=True)
    check_range("betas[1]", betas[1], 0.0, 1.0, hi_open=True)
    if scalar and is_batched(*betas):
        raise ValueError(f"{scalar} takes scalar betas; batched betas are not supported")


def _pow(base: Any, t: float) -> Any:
    return base**t


# --------------------------------------------------------------------------------------
# Fused forms (descentlab.optim.fused): each rule's per-element math as C, mirroring the
# rounding of the eager foreach kernels above (fma where torch's kernel uses one).
# --------------------------------------------------------------------------------------


def _hp(key: str, sign: float = 1.0):
    return lambda h, t, e: sign * float(h[key])


def _beta(i: int, one_minus: bool = False):
    if one_minus:
        return lambda h, t, e: 1 - float(h["betas"][i])
    return lambda h, t, e: float(h["betas"][i])


def _fill_missing(state, key: str, grads, like_zero: bool = True) -> list:
    """State entries a rule creates lazily in eager mode, created before the kernel."""
    values = state.get(key)
    if values is None:
        values = [None] * len(grads)
        state[key] = values
    for i, v in enumerate(values):
        if v is None:
            values[i] = torch.zeros_like(grads[i], memory_format=torch.contiguous_format)
    return values


def _steps(state, n: int) -> list[float]:
    return step_values(state, n)


# ======================================================================================
# Learning rate, sign, weight decay
# ======================================================================================


class scale_by_lr(Rule):
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

    def validate(self, hyper: Hyper) -> None:
        check_range("lr", hyper["lr"], 0.0)
        if "lr_decay" in self.defaults:
            check_range("lr_decay", hyper["lr_decay"], 0.0)

    @property
    def lr_uses(self) -> tuple[str, ...]:
        """The hyperparameters :meth:`step_lr` reads."""
        return ("lr", "lr_decay") if "lr_decay" in self.defaults else ("lr",)

    def step_lr(self, hyper: Hyper, t: float) -> float:
        """The learning rate of step ``t`` (Python numbers), as torch computes it."""
        if "lr_decay" in self.defaults:
            return float(hyper["lr"]) / (1 + (t - 1) * float(hyper.get("lr_decay", 0)))
        return float(hyper["lr"])

    def fuse_signature(self, hyper):
        return ("lr_decay" in self.defaults,)

    def fuse(self, b, hyper):
        if "lr_decay" in self.defaults:
            c = b.coef(
                "lr_decayed",
                lambda h, t, e: -float(h["lr"]) / (1 + (t - 1) * float(h.get("lr_decay", 0))),
                uses=("lr", "lr_decay"),
            )
        else:
            c = b.coef("lr_scale", _hp("lr", -1.0), uses=("lr",))
        b.u = b.let(f"{b.u} * {c}")
        return True

    def update(self, grads, state, params, hyper):
        lr = as_scalar(hyper["lr"])
        decay = hyper.get("lr_decay", 0) if "lr_decay" in self.defaults else 0
        if decay:
            steps = step_values(state, len(grads))
            factors = [-lr / (1 + (t - 1) * decay) for t in steps]
            out = writable(state, grads)
            _scale_each_(out, factors)
            return out, state
        out = writable(state, grads)
        mul_(out, -lr)
        return out, state


class maximize(Rule):
    """Negate gradients when ``maximize`` is true (torch's ``maximize=True``)."""

    name = "maximize"
    role = "regularization / sign"

    def __init__(self, maximize: bool = False) -> None:
        super().__init__(maximize=maximize)

    def validate(self, hyper: Hyper) -> None:
        check_bool("maximize", hyper["maximize"])

    def fuse_signature(self, hyper):
        return (bool(hyper["maximize"]),)

    def fuse(self, b, hyper):
        if hyper["maximize"]:
            b.u = b.let(f"-{b.u}")
        return True

    def update(self, grads, state, params, hyper):
        if not hyper["maximize"]:
            return grads, state
        if isinstance(grads, Owned):
            torch._foreach_neg_(grads)
            return grads, state
        out = scratch(state, grads)
        for g, o in zip(grads, out, strict=True):
            torch.neg(g, out=o)
        return out, state


class add_l2(Rule):
    r"""Coupled L2 penalty: :math:`u = g + \lambda p`.

    This is the gradient of seed 002's :math:`\frac{\lambda}{2}\lVert W\rVert^2` added to the
    loss; placed *before* an adaptive rule it is rescaled by that rule (Adam's
    ``weight_decay``), which is why AdamW decouples it (:class:`add_decayed_weights`).

    Args:
        weight_decay: :math:`\lambda \ge 0`.
        off_when: the name of a boolean hyperparameter that switches this rule off in the
            param groups where it is true (torch's per-group ``decoupled_weight_decay``: the
            Adam family chains both penalties and each group picks one).
    """

    name = "add_l2"
    role = "regularization / sign"

    def __init__(self, weight_decay: float = 0.0, *, off_when: str | None = None) -> None:
        super().__init__(weight_decay=weight_decay, **({off_when: False} if off_when else {}))
        self.switch = off_when
        self.on = False  # the value of the switch that turns this rule on (none: always on)

    def _active(self, hyper: Hyper) -> bool:
        return self.switch is None or bool(hyper.get(self.switch, False)) is self.on

    def passes_through(self, hyper: Hyper) -> bool:
        return not self._active(hyper)

    def validate(self, hyper: Hyper) -> None:
        check_range("weight_decay", hyper["weight_decay"], 0.0)
        if self.switch is not None:
            check_bool(self.switch, hyper.get(self.switch, False))

    def fuse_signature(self, hyper):
        return (self._active(hyper),)

    def fuse(self, b, hyper):
        if not self._active(hyper):
            return True
        # always emitted: with weight_decay == 0, dl_fma(p, 0, g) == g, and a schedule may
        # change the decay without a new kernel
        c = b.coef(f"wd_{self.name}", _hp("weight_decay"), uses=("weight_decay",))
        b.u = b.let(f"dl_fma(p, {c}, {b.u})")
        return True

    def update(self, grads, state, params, hyper):
        wd = as_scalar(hyper["weight_decay"])
        if (not is_batched(wd) and wd == 0) or not self._active(hyper):
            return grads, state
        return add_into(state, grads, params, wd), state

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


# ======================================================================================
# Momentum
# ======================================================================================


class trace(Rule):
    r"""Heavy-ball momentum with the learning rate *outside* the buffer (torch's SGD).

    .. math::
        b_t = \mu\, b_{t-1} + (1-\tau)\, g_t \quad (b_1 = g_1), \qquad
        u = b_t \;\text{or, with Nesterov,}\; u = g_t + \mu\, b_t

    followed by :class:`scale_by_lr`. The Nesterov form is the change of variables derived
    in seed 003 (cs231n): it evaluates the gradient at the current point yet reproduces the
    lookahead method in shifted coordinates. With ``momentum == 0`` the rule passes gradients
    through and keeps no buffer.

    Args:
        momentum: :math:`\mu \in [0, 1)`.
        dampening: :math:`\tau \in [0, 1]` (torch's ``dampening``).
        nesterov: use Nesterov's form (needs momentum > 0 and dampening == 0).
    """

    name = "trace"
    role = "search direction (momentum)"
    state_keys = ("momentum_buffer",)

    def __init__(self, momentum: float = 0.9, dampening: float = 0.0, nesterov: bool = False):
        super().__init__(momentum=momentum, dampening=dampening, nesterov=nesterov)

    def validate(self, hyper: Hyper) -> None:
        check_range("momentum", hyper["momentum"], 0.0, 1.0, hi_open=True)
        check_range("dampening", hyper.get("dampening", 0.0), 0.0, 1.0)
        nesterov = hyper.get("nesterov", False)
        check_bool("nesterov", nesterov)
        if nesterov:
            m = hyper["momentum"]
            if not is_batched(m) and m == 0:
                raise ValueError(f"nesterov=True requires momentum > 0, got momentum={m}")
            d = hyper.get("dampening", 0.0)
            if is_batched(d) or d != 0:
                raise ValueError(f"nesterov=True requires dampening == 0, got dampening={d}")

    def fuse_signature(self, hyper):
        m = hyper["momentum"]
        return (is_batched(m) or as_scalar(m) != 0, bool(hyper.get("nesterov", False)))

    def passes_through(self, hyper: Hyper) -> bool:
        return not self.fuse_signature(hyper)[0]

    def fuse(self, b, hyper):
        active, nesterov = self.fuse_signature(hyper)
        if not active:
            return True

        def prepare(state, params, grads, hyper):
            bufs = state.get("momentum_buffer")
            if bufs is None:
                bufs = [None] * len(grads)
                state["momentum_buffer"] = bufs
            first = []
            for i, buf in enumerate(bufs):
                first.append(buf is None)
                if buf is None:
                    bufs[i] = torch.empty_like(grads[i], memory_format=torch.contiguous_format)
            state["_trace_first"] = first

        b.prepare(prepare, fills=("momentum_buffer",), steady=True)
        buf = b.state("momentum_buffer", write=True)
        first = b.coef(
            "trace_first",
            lambda h, t, e: 1.0 if e else 0.0,
            per_tensor=lambda st, i: st["_trace_first"][i],
        )
        cm = b.coef("trace_m", _hp("momentum"), uses=("momentum",))
        cd = b.coef(
            "trace_1md", lambda h, t, e: 1 - float(h.get("dampening", 0.0)), uses=("dampening",)
        )
        b.line(f"{buf} = ({first} != 0) ? {b.u} : dl_fma({b.u}, {cd}, {buf} * {cm});")
        b.u = b.let(f"dl_fma({buf}, {cm}, {b.u})") if nesterov else buf
        return True

    def update(self, grads, state, params, hyper):
        m = as_scalar(hyper["momentum"])
        if not is_batched(m) and m == 0:
            return grads, state
        d = as_scalar(hyper.get("dampening", 0.0))
        bufs = state.get("momentum_buffer")
        if bufs is None:
            bufs = [None] * len(grads)
            state["momentum_buffer"] = bufs
        old_idx = [i for i, b in enumerate(bufs) if b is not None]
        for i, b in enumerate(bufs):
            if b is None:
                bufs[i] = torch.clone(grads[i]).detach()
        if old_idx:
            old = [bufs[i] for i in old_idx]
            g_old = [grads[i] for i in old_idx]
            mul_(old, m)
            add_scaled_(old, g_old, 1 - d)
        if hyper.get("nesterov", False):
            return add_into(state, grads, bufs, m), state
        return list(bufs), state  # aliases the buffers: not Owned


class velocity(Rule):
    r"""Momentum with the learning rate *inside* the velocity (seeds 000, 001, 003 eq. 5.12):

    .. math:: v_t = \alpha\, v_{t-1} - \eta\, g_t, \qquad u = v_t \qquad (v_0 = 0)

    It replaces :class:`scale_by_lr` in a chain. At a constant learning rate it produces the
    same iterates as :class:`trace` (``v = -lr * b``); when the rate changes they differ:
    here a new rate only affects new gradients, while in torch's form it rescales the whole
    accumulated buffer at once.

    ``nesterov=True`` uses seed 003's change of variables,
    :math:`u = -\alpha v_{t-1} + (1+\alpha) v_t`. ``lookahead=True`` evaluates the gradient
    at the true lookahead point :math:`w + \alpha v` (seeds 001, 002, eq. 5.13): the optimizer
    then requires a closure and calls it at the shifted parameters.

    Args:
        momentum: :math:`\alpha \in [0, 1)`.
        lr: :math:`\eta \ge 0` (a hyperparameter of this rule).
        nesterov: change-of-variables Nesterov.
        lookahead: gradient at the lookahead point (structural; fixed at construction).
    """

    name = "velocity"
    role = "search direction (momentum)"
    state_keys = ("velocity",)

    def __init__(
        self,
        momentum: float = 0.9,
        lr: Any = 1e-3,
        nesterov: bool = False,
        *,
        lookahead: bool = False,
    ) -> None:
        super().__init__(momentum=momentum, lr=lr, nesterov=nesterov)
        check_bool("lookahead", lookahead)
        self.lookahead = lookahead
        if lookahead:
            self.name = "velocity_lookahead"

    def __repr__(self) -> str:
        # `name` tells the lookahead form apart in the family tree; the repr is the call that
        # builds this rule again.
        args = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        return f"velocity({args}" + (", lookahead=True)" if self.lookahead else ")")

    def init(self, params):
        return {"velocity": _zeros(params)}

    def validate(self, hyper: Hyper) -> None:
        check_range("momentum", hyper["momentum"], 0.0, 1.0, hi_open=True)
        check_range("lr", hyper["lr"], 0.0)
        check_bool("nesterov", hyper.get("nesterov", False))
        if self.lookahead and hyper.get("nesterov", False):
            raise ValueError(
                "nesterov=True (change of variables) and lookahead=True are two forms of the "
                "same method; choose one"
            )

    def lookahead_shift(self, state, params, hyper):
        if not self.lookahead:
            return None
        vs = state.get("velocity")
        if vs is None:
            return None
        return mul(vs, as_scalar(hyper["momentum"]))

    def fuse_signature(self, hyper):
        return (bool(hyper.get("nesterov", False)),)

    def fuse(self, b, hyper):
        v = b.state("velocity", write=True)
        ca = b.coef("vel_a", _hp("momentum"), uses=("momentum",))
        cl = b.coef("vel_neglr", _hp("lr", -1.0), uses=("lr",))
        nesterov = bool(hyper.get("nesterov", False))
        prev = b.let(v) if nesterov else None
        b.line(f"{v} = dl_fma({b.u}, {cl}, {v} * {ca});")
        if nesterov:
            cn = b.coef("vel_nega", _hp("momentum", -1.0), uses=("momentum",))
            c1 = b.coef("vel_1pa", lambda h, t, e: 1 + float(h["momentum"]), uses=("momentum",))
            b.u = b.let(f"dl_fma({v}, {c1}, {prev} * {cn})")
        else:
            b.u = v
        return True

    def update(self, grads, state, params, hyper):
        a = as_scalar(hyper["momentum"])
        lr = as_scalar(hyper["lr"])
        vs = state["velocity"]
        nesterov = hyper.get("nesterov", False)
        prev = writable(state, vs) if nesterov else None
        mul_(vs, a)
        add_scaled_(vs, grads, -lr)
        if nesterov:
            mul_(prev, -a)  # u = (1 + a) v_new - a v_old
            add_scaled_(prev, vs, 1 + a)
            return prev, state
        return list(vs), state


# ======================================================================================
# Adaptive learning rates
# ======================================================================================


def _root_denominator(state, acc: list[Tensor], eps: Any, inside: bool) -> Owned:
    """dl_sqrt(acc) + eps, or dl_sqrt(acc + eps), in scratch memory (or in ``acc`` if Owned)."""
    if inside:
        out = add_into(state, acc, None, eps)
        torch._foreach_sqrt_(out)
    else:
        out = sqrt_into(state, acc)
        _add_eps_(out, eps)
    return out


class scale_by_adagrad(Rule):
    r"""AdaGrad (Duchi et al., 2011): accumulate squared gradients.

    .. math:: r_t = r_{t-1} + g_t^2, \qquad u = \frac{g_t}{\sqrt{r_t} + \epsilon}
       \quad\text{or}\quad \frac{g_t}{\sqrt{r_t + \epsilon}}\ (\text{eps\_inside\_sqrt})

    :math:`r_0` = ``initial_accumulator_value``. torch and seeds 001/003 put eps outside the
    root (seed 003's code uses 1e-7); seed 002 writes it inside. Optax's ``scale_by_rss``
    adds eps inside as well, with an initial accumulator of 0.1.
    """

    name = "scale_by_adagrad"
    role = "adaptive learning rate"
    state_keys = ("sum",)

    def __init__(
        self,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        eps_inside_sqrt: bool = False,
    ) -> None:
        super().__init__(
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            eps_inside_sqrt=eps_inside_sqrt,
        )

    def init(self, params):
        v = self.defaults["initial_accumulator_value"]
        # a complex parameter is a pair of reals: both halves start at v (as torch)
        return {"sum": [torch.full_like(p, complex(v, v) if p.is_complex() else v) for p in params]}

    def validate(self, hyper: Hyper) -> None:
        check_range("initial_accumulator_value", hyper["initial_accumulator_value"], 0.0)
        check_range("eps", hyper["eps"], 0.0)
        check_bool("eps_inside_sqrt", hyper["eps_inside_sqrt"])

    def fuse_signature(self, hyper):
        return (bool(hyper["eps_inside_sqrt"]),)

    has_final = True

    def fuse(self, b, hyper):
        acc = b.state("sum", write=True)
        g = b.u
        b.line(f"{acc} = dl_fma({g}, {g}, {acc});")
        d = _fused_root(b, acc, "adagrad_eps", bool(hyper["eps_inside_sqrt"]))
        b.u = b.let(f"{g} / {d}")
        b.final_form = (b.u, _addcdiv_final("adagrad", g, d))
        return True

    def _denominator(self, grads, state, hyper) -> Owned:
        sums = state["sum"]
        torch._foreach_addcmul_(sums, grads, grads, 1)
        return _root_denominator(state, sums, as_scalar(hyper["eps"]), hyper["eps_inside_sqrt"])

    def update(self, grads, state, params, hyper):
        denom = self._denominator(grads, state, hyper)
        div_into_(denom, grads)
        return denom, state

    def apply_final(self, grads, state, params, hyper, lrs):
        denom = self._denominator(grads, state, hyper)
        torch._foreach_addcdiv_(params, grads, denom, [-lr for lr in lrs])


class scale_by_rms(Rule):
    r"""RMSProp (Hinton, 2012): a moving average of squared gradients.

    .. math:: r_t = \alpha r_{t-1} + (1-\alpha) g_t^2, \qquad
       u = \frac{g_t}{\sqrt{r_t - \bar g_t^2} + \epsilon}

    where :math:`\bar g_t = \alpha \bar g_{t-1} + (1-\alpha) g_t` only when ``centered``
    (Graves, 2013), else 0. ``eps_inside_sqrt`` puts eps under the root (seed 002; also
    Optax's ``scale_by_rms``). torch's RMSprop momentum is :class:`trace` after this rule;
    Keras's RMSprop puts eps outside too but defaults it to 1e-7.
    """

    name = "scale_by_rms"
    role = "adaptive learning rate"
    state_keys = ("square_avg", "grad_avg")

    def __init__(
        self,
        alpha: float = 0.99,
        eps: float = 1e-8,
        centered: bool = False,
        eps_inside_sqrt: bool = False,
    ) -> None:
        super().__init__(alpha=alpha, eps=eps, centered=centered, eps_inside_sqrt=eps_inside_sqrt)

    def init(self, params):
        state = {"square_avg": _zeros(params)}
        if self.defaults["centered"]:
            state["grad_avg"] = _zeros(params)
        return state

    def validate(self, hyper: Hyper) -> None:
        check_range("alpha", hyper["alpha"], 0.0, 1.0)
        check_range("eps", hyper["eps"], 0.0)
        check_bool("centered", hyper["centered"])
        check_bool("eps_inside_sqrt", hyper["eps_inside_sqrt"])

    def fuse_signature(self, hyper):
        return (bool(hyper["centered"]), bool(hyper["eps_inside_sqrt"]))

    def fuse(self, b, hyper):
        centered, inside = self.fuse_signature(hyper)
        sq = b.state("square_avg", write=True)
        ca = b.coef("rms_alpha", _hp("alpha"), uses=("alpha",))
        c1 = b.coef("rms_1ma", lambda h, t, e: 1 - float(h["alpha"]), uses=("alpha",))
        b.line(f"{sq} = dl_fma({c1} * {b.u}, {b.u}, {sq} * {ca});")
        acc = sq
        if centered:
            b.prepare(
                lambda state, params, grads, hyper: _fill_missing(state, "grad_avg", grads),
                fills=("grad_avg",),
                steady=True,
            )
            ga = b.state("grad_avg", write=True)
            b.line(f"{ga} = dl_lerp({ga}, {b.u}, {c1});")
            acc = b.let(f"dl_fma(-{ga}, {ga}, {sq})")
        d = _fused_root(b, acc, "rms_eps", inside)
        g = b.u
        b.u = b.let(f"{g} / {d}")
        b.final_form = (b.u, _addcdiv_final("rms", g, d))
        return True

    has_final = True

    def update(self, grads, state, params, hyper):
        denom = self._denominator(grads, state, hyper)
        div_into_(denom, grads)
        return denom, state

    def apply_final(self, grads, state, params, hyper, lrs):
        denom = self._denominator(grads, state, hyper)
        torch._foreach_addcdiv_(params, grads, denom, [-lr for lr in lrs])

    def _denominator(self, grads, state, hyper) -> Owned:
        alpha = as_scalar(hyper["alpha"])
        eps = as_scalar(hyper["eps"])
        sq = state["square_avg"]
        ema_sq_(sq, grads, alpha)
        if hyper["centered"]:
            ga = state.get("grad_avg")
            if ga is None or any(x is None for x in ga):
                ga = [
                    x if x is not None else torch.zeros_like(g)
                    for x, g in zip(ga or [None] * len(grads), grads, strict=True)
                ]
                state["grad_avg"] = ga
            lerp_(ga, grads, 1 - alpha)
            acc = writable(state, sq)
            torch._foreach_addcmul_(acc, ga, ga, -1)
        else:
            acc = sq
        return _root_denominator(state, acc, eps, hyper["eps_inside_sqrt"])


class scale_by_adadelta(Rule):
    r"""Adadelta (Zeiler, 2012), seed 002's equations:

    .. math::
        G_t = \rho G_{t-1} + (1-\rho) g_t^2, \quad
        \Delta_t = \frac{\sqrt{H_{t-1} + \epsilon}}{\sqrt{G_t + \epsilon}}\, g_t, \quad
        H_t = \rho H_{t-1} + (1-\rho) \Delta_t^2, \quad u = \Delta_t

    followed by :class:`scale_by_lr` (torch's ``lr``, default 1.0 -- the paper has none).
    """

    name = "scale_by_adadelta"
    role = "adaptive learning rate"
    state_keys = ("square_avg", "acc_delta")

    def __init__(self, rho: float = 0.9, eps: float = 1e-6) -> None:
        super().__init__(rho=rho, eps=eps)

    def init(self, params):
        return {"square_avg": _zeros(params), "acc_delta": _zeros(params)}

    def validate(self, hyper: Hyper) -> None:
        check_range("rho", hyper["rho"], 0.0, 1.0)
        check_range("eps", hyper["eps"], 0.0)

    def fuse(self, b, hyper):
        sq = b.state("square_avg", write=True)
        acc = b.state("acc_delta", write=True)
        cr = b.coef("ada_rho", _hp("rho"), uses=("rho",))
        c1 = b.coef("ada_1mr", lambda h, t, e: 1 - float(h["rho"]), uses=("rho",))
        ce = b.coef("ada_eps", _hp("eps"), uses=("eps",))
        b.line(f"{sq} = dl_fma({c1} * {b.u}, {b.u}, {sq} * {cr});")
        std = b.let(f"dl_sqrt({sq} + {ce})")
        delta = b.let(f"(dl_sqrt({acc} + {ce}) / {std}) * {b.u}")
        b.line(f"{acc} = dl_fma({c1} * {delta}, {delta}, {acc} * {cr});")
        b.u = delta
        return True

    def update(self, grads, state, params, hyper):
        rho = as_scalar(hyper["rho"])
        eps = as_scalar(hyper["eps"])
        sq, acc = state["square_avg"], state["acc_delta"]
        ema_sq_(sq, grads, rho)
        std = _root_denominator(state, sq, eps, inside=True)
        deltas = _root_denominator(state, acc, eps, inside=True)
        torch._foreach_div_(deltas, std)
        torch._foreach_mul_(deltas, grads)
        ema_sq_(acc, deltas, rho)
        return Owned(deltas), state


class scale_by_adam(Rule):
    r"""Adam (Kingma & Ba, 2015) = momentum + RMSProp (seed 000), with its options.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad
        u = \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon}

    - ``bias_correction=False`` drops both :math:`1-\beta^t` factors (seed 003's first
      version, whose "first step is huge": on step 1 the update is
      :math:`(1-\beta_1)/\sqrt{1-\beta_2} \approx 3.16` times the corrected one for the
      default betas, because the second moment starts near zero);
    - ``eps_inside_sqrt=True`` uses seed 002's form
      :math:`u = \sqrt{1-\beta_2^t}/(1-\beta_1^t)\; m_t / \sqrt{v_t + \epsilon}`;
    - ``amsgrad=True`` divides by the running maximum of :math:`v_t` (Reddi et al., 2018).

    Keras writes eps as "epsilon hat" and defaults it to 1e-7 (seed 002's tip); torch and
    Optax default to 1e-8, outside the root.
    """

    name = "scale_by_adam"
    role = "direction + adaptive rate"
    state_keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(
        self,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        amsgrad: bool = False,
        bias_correction: bool = True,
        eps_inside_sqrt: bool = False,
    ) -> None:
        super().__init__(
            betas=tuple(betas),
            eps=eps,
            amsgrad=amsgrad,
            bias_correction=bias_correction,
            eps_inside_sqrt=eps_inside_sqrt,
        )
        self.needs_step = True

    def init(self, params):
        state = {"exp_avg": _zeros(params), "exp_avg_sq": _zeros(params)}
        if self.defaults["amsgrad"]:
            state["max_exp_avg_sq"] = _zeros(params)
        return state

    def validate(self, hyper: Hyper) -> None:
        _check_betas(hyper)
        check_range("eps", hyper["eps"], 0.0)
        for flag in ("amsgrad", "bias_correction", "eps_inside_sqrt"):
            check_bool(flag, hyper[flag])

    def fuse_signature(self, hyper):
        return (
            bool(hyper["amsgrad"]),
            bool(hyper["bias_correction"]),
            bool(hyper["eps_inside_sqrt"]),
        )

    def fuse(self, b, hyper):
        amsgrad, bias_correction, inside = self.fuse_signature(hyper)
        m = b.state("exp_avg", write=True)
        v = b.state("exp_avg_sq", write=True)
        _fused_moments(b, m, v, "adam")
        if amsgrad:
            b.prepare(
                lambda state, params, grads, hyper: _fill_missing(state, "max_exp_avg_sq", grads),
                fills=("max_exp_avg_sq",),
                steady=True,
            )
            vmax = b.state("max_exp_avg_sq", write=True)
            b.line(f"{vmax} = (dl_isnan({v}) | ({v} > {vmax})) ? {v} : {vmax};")
            v = vmax
        if bias_correction:
            bc1 = b.coef("adam_bc1", lambda h, t, e: 1 - float(h["betas"][0]) ** t, uses=("betas",))
            bc2 = b.coef(
                "adam_bc2s",
                lambda h, t, e: (1 - float(h["betas"][1]) ** t) ** 0.5,
                uses=("betas",),
            )
            ce = b.coef("adam_eps", _hp("eps"), uses=("eps",))
            root = f"dl_sqrt({v} + {ce}) / {bc2}" if inside else f"dl_sqrt({v}) / {bc2} + {ce}"
            d = b.let(root)
            b.u = b.let(f"({m} / {d}) / {bc1}")
            b.final_form = (b.u, _addcdiv_final("adam", m, d, bias_correction=True))
        else:
            d = _fused_root(b, v, "adam_eps", inside)
            b.u = b.let(f"{m} / {d}")
            b.final_form = (b.u, _addcdiv_final("adam", m, d))
        return True

    has_final = True

    def apply_final(self, grads, state, params, hyper, lrs):
        denom, m, bc1 = self._denominator(grads, state, hyper)
        if bc1 is None:
            steps = [-lr for lr in lrs]
        else:  # torch: step_size = lr / bias_correction1; p.addcdiv_(m, denom, -step_size)
            steps = [-(lr / c) for lr, c in zip(lrs, bc1, strict=True)]
        torch._foreach_addcdiv_(params, m, denom, steps)

    def update(self, grads, state, params, hyper):
        denom, m, bc1 = self._denominator(grads, state, hyper)
        div_into_(denom, m)
        if bc1 is not None:
            _div_each_(denom, bc1)
        return denom, state

    def _denominator(self, grads, state, hyper) -> tuple[Owned, list[Tensor], list | None]:
        """Update the moments; returns (the denominator, m, the bias corrections 1 - b1^t or
        None): the update is m / denominator / (1 - b1^t)."""
        b1, b2 = _betas(hyper)
        eps = as_scalar(hyper["eps"])
        m, v = state["exp_avg"], state["exp_avg_sq"]
        lerp_(m, grads, 1 - b1)
        ema_sq_(v, grads, b2)
        if hyper["amsgrad"]:
            vmax = state.get("max_exp_avg_sq")
            if vmax is None or any(x is None for x in vmax):
                vmax = [
                    x if x is not None else torch.zeros_like(g)
                    for x, g in zip(vmax or [None] * len(grads), grads, strict=True)
                ]
                state["max_exp_avg_sq"] = vmax
            torch._foreach_maximum_(vmax, v)
            v = vmax
        if hyper["bias_correction"]:
            steps = step_values(state, len(grads))
            bc1 = [1 - _pow(b1, t) for t in steps]
            bc2_sqrt = [(1 - _pow(b2, t)) ** 0.5 for t in steps]
            if hyper["eps_inside_sqrt"]:
                denom = _root_denominator(state, v, eps, inside=True)
                _div_each_(denom, bc2_sqrt)
            else:
                denom = sqrt_into(state, v)
                _div_each_(denom, bc2_sqrt)
                _add_eps_(denom, eps)
            return denom, m, bc1
        return _root_denominator(state, v, eps, hyper["eps_inside_sqrt"]), m, None


def _add_eps_(xs: list[Tensor], eps: Any) -> None:
    if is_batched(eps):
        for x in xs:
            x.add_(bcast(eps, x))
    else:
        torch._foreach_add_(xs, eps)


def _scalar_dtype() -> torch.dtype:
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class scale_by_nadam(Rule):
    r"""NAdam (Dozat, 2016): Adam with a Nesterov-style momentum term, as in torch.

    .. math::
        \mu_t = \beta_1\,(1 - \tfrac12\, 0.96^{t\,\psi}), \quad
        \Pi_t = \textstyle\prod_{i \le t} \mu_i, \quad
        u = \frac{1}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}\Big(
            \frac{1-\mu_t}{1-\Pi_t}\, g_t + \frac{\mu_{t+1}}{1 - \Pi_t \mu_{t+1}}\, m_t\Big)

    with :math:`\psi` = ``momentum_decay``; :math:`m, v` as in :class:`scale_by_adam`.
    """

    name = "scale_by_nadam"
    role = "direction + adaptive rate"
    state_keys = ("exp_avg", "exp_avg_sq", "mu_product")

    def __init__(
        self,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        momentum_decay: float = 4e-3,
    ) -> None:
        super().__init__(betas=tuple(betas), eps=eps, momentum_decay=momentum_decay)
        self.needs_step = True

    def init(self, params):
        return {
            "exp_avg": _zeros(params),
            "exp_avg_sq": _zeros(params),
            "mu_product": [torch.ones((), dtype=_scalar_dtype()) for _ in params],
        }

    def validate(self, hyper: Hyper) -> None:
        _check_betas(hyper, scalar=self.name)
        check_range("eps", hyper["eps"], 0.0)
        check_range("momentum_decay", hyper["momentum_decay"], 0.0)
        if is_batched(hyper["momentum_decay"]):
            raise ValueError(
                "scale_by_nadam takes a scalar momentum_decay; a batched one is not supported, "
                f"got {hyper['momentum_decay'].tolist()}"
            )

    def fuse(self, b, hyper):
        m = b.state("exp_avg", write=True)
        v = b.state("exp_avg_sq", write=True)

        def prepare(state, params, grads, hyper):
            b1, b2 = _betas(hyper)
            if is_batched(b1, b2):
                raise ValueError(
                    "scale_by_nadam takes scalar betas; batched betas are not supported"
                )
            psi = as_scalar(hyper["momentum_decay"])
            steps = step_values(state, len(grads))
            torch._foreach_mul_(
                state["mu_product"], [b1 * (1.0 - 0.5 * (0.96 ** (t * psi))) for t in steps]
            )

        b.prepare(prepare, needs=("mu_product",))
        _fused_moments(b, m, v, "nadam")
        bc2 = b.coef(
            "nadam_bc2s", lambda h, t, e: (1 - float(h["betas"][1]) ** t) ** 0.5, uses=("betas",)
        )
        ce = b.coef("nadam_eps", _hp("eps"), uses=("eps",))

        def mu(h, t):
            return float(h["betas"][0]) * (1.0 - 0.5 * (0.96 ** (t * float(h["momentum_decay"]))))

        prod = lambda st, i: float(st["mu_product"][i])  # noqa: E731
        cg = b.coef("nadam_cg", lambda h, t, e: (1.0 - mu(h, t)) / (1.0 - e), per_tensor=prod)
        cav = b.coef(
            "nadam_ca",
            lambda h, t, e: mu(h, t + 1) / (1.0 - e * mu(h, t + 1)),
            per_tensor=prod,
        )
        d = b.let(f"dl_sqrt({v}) / {bc2} + {ce}")
        b.u = b.let(f"({b.u} / {d}) * {cg} + ({m} / {d}) * {cav}")
        return True

    def update(self, grads, state, params, hyper):
        b1, b2 = _betas(hyper)
        if is_batched(b1, b2):
            raise ValueError("scale_by_nadam takes scalar betas; batched betas are not supported")
        eps = as_scalar(hyper["eps"])
        psi = as_scalar(hyper["momentum_decay"])
        m, v, mu_prod = state["exp_avg"], state["exp_avg_sq"], state["mu_product"]
        steps = step_values(state, len(grads))
        lerp_(m, grads, 1 - b1)
        ema_sq_(v, grads, b2)
        denom = sqrt_into(state, v)
        mus = [b1 * (1.0 - 0.5 * (0.96 ** (t * psi))) for t in steps]
        mu_next = [b1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * psi))) for t in steps]
        torch._foreach_mul_(mu_prod, mus)
        _div_each_(denom, [(1 - b2**t) ** 0.5 for t in steps])
        _add_eps_(denom, eps)
        prods = [float(x) for x in mu_prod]
        c_grad = [(1.0 - mu) / (1.0 - pr) for mu, pr in zip(mus, prods, strict=True)]
        c_avg = [mn / (1.0 - pr * mn) for mn, pr in zip(mu_next, prods, strict=True)]
        out = scratch(state, grads)
        for g, d, o in zip(grads, denom, out, strict=True):
            torch.div(g, d, out=o)
        _scale_each_(out, c_grad)
        div_into_(denom, m)
        _scale_each_(denom, c_avg)
        torch._foreach_add_(out, denom)
        return out, state


class scale_by_radam(Rule):
    r"""RAdam (Liu et al., 2020): Adam whose adaptive term is switched on only once the
    variance of the adaptive rate is tractable.

    .. math::
        \rho_\infty = \frac{2}{1-\beta_2} - 1, \quad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t}, \quad
        u = \frac{m_t}{1-\beta_1^t}\cdot
        \begin{cases} r_t \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t}+\epsilon} & \rho_t > 5\\
        1 & \text{otherwise}\end{cases},\quad
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}
    """

    name = "scale_by_radam"
    role = "direction + adaptive rate"
    state_keys = ("exp_avg", "exp_avg_sq")

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(betas=tuple(betas), eps=eps)
        self.needs_step = True

    def init(self, params):
        return {"exp_avg": _zeros(params), "exp_avg_sq": _zeros(params)}

    def validate(self, hyper: Hyper) -> None:
        _check_betas(hyper, scalar=self.name)
        check_range("eps", hyper["eps"], 0.0)
        # its eager form adds eps per element (no per-run broadcast): refused before any change
        _scalar_hyper(self.name, hyper, "eps")

    def fuse(self, b, hyper):
        m = b.state("exp_avg", write=True)
        v = b.state("exp_avg_sq", write=True)

        def prepare(state, params, grads, hyper):
            if is_batched(*_betas(hyper)):
                raise ValueError(
                    "scale_by_radam takes scalar betas; batched betas are not supported"
                )

        b.prepare(prepare)
        _fused_moments(b, m, v, "radam")

        def rho(h, t):
            b2 = float(h["betas"][1])
            rho_inf = 2 / (1 - b2) - 1
            return rho_inf, rho_inf - 2 * t * (b2**t) / (1 - b2**t)

        def rect(h, t, e):
            rho_inf, rho_t = rho(h, t)
            if rho_t <= 5:
                return 0.0
            b1, b2 = float(h["betas"][0]), float(h["betas"][1])
            r = (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            return r**0.5 * (1 - b2**t) ** 0.5 / (1 - b1**t)

        on = b.coef("radam_on", lambda h, t, e: 1.0 if rho(h, t)[1] > 5 else 0.0, uses=("betas",))
        cr = b.coef("radam_rect", rect, uses=("betas",))
        bc1 = b.coef("radam_bc1", lambda h, t, e: 1 - float(h["betas"][0]) ** t, uses=("betas",))
        ce = b.coef("radam_eps", _hp("eps"), uses=("eps",))
        b.u = b.let(f"({on} != 0) ? ({m} / (dl_sqrt({v}) + {ce})) * {cr} : {m} / {bc1}")
        return True

    def update(self, grads, state, params, hyper):
        b1, b2 = _betas(hyper)
        if is_batched(b1, b2):
            raise ValueError("scale_by_radam takes scalar betas; batched betas are not supported")
        eps = as_scalar(hyper["eps"])
        m, v = state["exp_avg"], state["exp_avg_sq"]
        steps = step_values(state, len(grads))
        lerp_(m, grads, 1 - b1)
        ema_sq_(v, grads, b2)
        rho_inf = 2 / (1 - b2) - 1
        out = scratch(state, grads)
        for i, t in enumerate(steps):
            bc1 = 1 - b1**t
            rho_t = rho_inf - 2 * t * (b2**t) / (1 - b2**t)
            if rho_t > 5:
                rect = (
                    (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
                ) ** 0.5
                torch.sqrt(v[i], out=out[i]).add_(eps)
                torch.div(m[i], out[i], out=out[i]).mul_(rect * (1 - b2**t) ** 0.5 / bc1)
            else:
                torch.div(m[i], bc1, out=out[i])
        return out, state


# ======================================================================================
# Clipping, noise, guards
# ======================================================================================


class clip_by_global_norm(Rule):
    r"""Rescale so the global L2 norm over the group is at most ``max_norm``:
    :math:`u = g \cdot \min(1, \frac{c}{\lVert g\rVert_2 + 10^{-6}})` (as
    ``torch.nn.utils.clip_grad_norm_``, applied per param group)."""

    name = "clip_by_global_norm"
    elementwise = False

    def __init__(self, max_norm: float = 1.0) -> None:
        super().__init__(max_norm=max_norm)

    def validate(self, hyper: Hyper) -> None:
        check_range("max_norm", hyper["max_norm"], 0.0, lo_open=True)

    def fuse(self, b, hyper):
        if b.lines or b.u != "g":
            return False  # the norm is of the raw gradients only when this rule comes first

        def prepare(state, params, grads, hyper):
            norms = torch._foreach_norm(grads, 2.0)
            total = torch.linalg.vector_norm(torch.stack(norms), 2.0)
            coef = torch.clamp(as_scalar(hyper["max_norm"]) / (total + 1e-6), max=1.0)
            state["_clip_coef"] = float(coef)

        b.prepare(prepare)
        c = b.coef("clip_coef", lambda h, t, e: e, per_tensor=lambda st, i: st["_clip_coef"])
        b.u = b.let(f"{b.u} * {c}")
        return True

    def update(self, grads, state, params, hyper):
        max_norm = as_scalar(hyper["max_norm"])
        norms = torch._foreach_norm(grads, 2.0)
        total = torch.linalg.vector_norm(torch.stack(norms), 2.0)
        coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        out = writable(state, grads)
        torch._foreach_mul_(out, coef)
        return out, state


class clip_by_value(Rule):
    """Clamp every gradient entry to ``[-clip_value, clip_value]``."""

    name = "clip_by_value"

    def __init__(self, clip_value: float = 1.0) -> None:
        super().__init__(clip_value=clip_value)

    def validate(self, hyper: Hyper) -> None:
        check_range("clip_value", hyper["clip_value"], 0.0, lo_open=True)

    def fuse(self, b, hyper):
        lo = b.coef("clipv_lo", _hp("clip_value", -1.0), uses=("clip_value",))
        hi = b.coef("clipv_hi", _hp("clip_value"), uses=("clip_value",))
        x = b.let(f"({b.u} < {lo}) ? {lo} : {b.u}")
        b.u = b.let(f"({x} > {hi}) ? {hi} : {x}")
        return True

    def update(self, grads, state, params, hyper):
        c = as_scalar(hyper["clip_value"])
        out = writable(state, grads)
        if is_batched(c):
            for o in out:
                cb = bcast(c, o)
                torch.clamp_(o, min=-cb, max=cb)
        else:
            torch._foreach_clamp_min_(out, -c)
            torch._foreach_clamp_max_(out, c)
        return out, state


class add_noise(Rule):
    r"""Annealed Gaussian gradient noise (Neelakantan et al., 2015):
    :math:`u = g + \mathcal N(0, \sigma_t^2)`, :math:`\sigma_t^2 = \eta / (1+t)^\gamma`.

    The noise is a deterministic function of (``noise_seed``, step, parameter index), so a
    resumed run draws exactly the noise an uninterrupted one would.
    """

    name = "add_noise"
    elementwise = False  # the noise stream is indexed by position in the whole group

    def __init__(self, noise_eta: float = 0.01, noise_gamma: float = 0.55, noise_seed: int = 0):
        super().__init__(noise_eta=noise_eta, noise_gamma=noise_gamma, noise_seed=noise_seed)
        self.needs_step = True

    def validate(self, hyper: Hyper) -> None:
        check_range("noise_eta", hyper["noise_eta"], 0.0)
        check_range("noise_gamma", hyper["noise_gamma"], 0.0)
        seed = hyper["noise_seed"]
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise HyperparameterTypeError(
                f"noise_seed must be a non-negative integer, got {seed!r}"
            )
        if seed < 0:
            raise ValueError(f"noise_seed must be a non-negative integer, got {seed!r}")

    def fuse(self, b, hyper):
        def prepare(state, params, grads, hyper):
            seed = hyper["noise_seed"]
            steps = step_values(state, len(grads))
            noise = []
            gen = torch.Generator(device="cpu")
            for i, (g, t) in enumerate(zip(grads, steps, strict=True)):
                gen.manual_seed((seed * 1_000_003 + int(t) * 8191 + i) % (2**63 - 1))
                noise.append(torch.randn(g.shape, generator=gen, dtype=g.dtype))
            state["_noise"] = noise

        b.prepare(prepare, fills=("_noise",))
        z = b.state("_noise")
        c = b.coef(
            "noise_sigma",
            lambda h, t, e: (float(h["noise_eta"]) / (1 + t) ** float(h["noise_gamma"])) ** 0.5,
            uses=("noise_eta", "noise_gamma"),
        )
        b.u = b.let(f"{b.u} + {z} * {c}")
        return True

    def update(self, grads, state, params, hyper):
        eta = as_scalar(hyper["noise_eta"])
        gamma = as_scalar(hyper["noise_gamma"])
        seed = hyper["noise_seed"]
        steps = step_values(state, len(grads))
        out = writable(state, grads)
        gen = torch.Generator(device="cpu")
        for i, (o, t) in enumerate(zip(out, steps, strict=True)):
            gen.manual_seed((seed * 1_000_003 + int(t) * 8191 + i) % (2**63 - 1))
            sigma = (eta / (1 + t) ** gamma) ** 0.5
            noise = torch.randn(o.shape, generator=gen, dtype=o.dtype).to(o.device)
            o.add_(noise * bcast(sigma, o) if is_batched(sigma) else noise.mul_(sigma))
        return out, state


class NonFiniteGradientError(FloatingPointError):
    """Raised by :class:`non_finite_guard` in ``"raise"`` mode."""


class non_finite_guard(Rule):
    """Handle NaN/inf gradients before anything changes.

    Modes: ``"raise"`` raises :class:`NonFiniteGradientError`; ``"skip"`` skips the whole
    optimizer step (no parameter or state changes, step count unchanged); ``"zero"`` replaces
    the bad entries by zero. It inspects the raw gradients, so it must be the first rule of a
    chain (:func:`chain` enforces this).
    """

    name = "non_finite_guard"

    def __init__(self, mode: str = "raise") -> None:
        super().__init__(non_finite=mode)

    def __repr__(self) -> str:
        # The constructor's argument is `mode`; the param-group key is `non_finite`.
        return f"{self.name}(mode={self.defaults['non_finite']!r})"

    def validate(self, hyper: Hyper) -> None:
        check_choice("non_finite", hyper["non_finite"], ("raise", "skip", "zero"))

    def fuse_signature(self, hyper):
        return (hyper["non_finite"] == "zero",)

    def fuse(self, b, hyper):
        if hyper["non_finite"] == "zero":
            b.u = b.let(f"dl_finite({b.u}) ? {b.u} : dl_bc<T>(0)")
        return True

    def precheck(self, grads, hyper) -> bool:
        mode = hyper["non_finite"]
        if mode == "zero" or not grads:
            return True
        total = torch.stack(torch._foreach_norm(grads, 2.0)).sum()
        if bool(torch.isfinite(total)):
            return True
        if mode == "skip":
            return False
        bad = [i for i, g in enumerate(grads) if not bool(torch.isfinite(g).all())]
        raise NonFiniteGradientError(
            f"non-finite gradient in {len(bad)} parameter(s) (indices {bad} of the group); "
            "parameters and optimizer state were left unchanged"
        )

    def update(self, grads, state, params, hyper):
        if hyper["non_finite"] != "zero":
            return grads, state
        out = writable(state, grads)
        for o in out:
            torch.nan_to_num_(o, nan=0.0, posinf=0.0, neginf=0.0)
        return out, state


def _fused_root(b, acc: str, name: str, inside: bool) -> str:
    """C for dl_sqrt(acc) + eps, or dl_sqrt(acc + eps)."""
    ce = b.coef(name, _hp("eps"), uses=("eps",))
    return b.let(f"dl_sqrt({acc} + {ce})" if inside else f"dl_sqrt({acc}) + {ce}")


def _addcdiv_final(prefix: str, num: str, den: str, bias_correction: bool = False):
    """The final form ``p + (s * num) / den`` of torch's ``p.addcdiv_(num, den, value=s)``,
    ``s = -lr`` (``-lr / (1 - beta1^t)`` with Adam's bias correction)."""

    def final(b, p: str, lr_fn, lr_uses) -> str:
        if bias_correction:
            fn = lambda h, t, e: -(lr_fn(h, t) / (1 - float(h["betas"][0]) ** t))  # noqa: E731
            uses = (*lr_uses, "betas")
        else:
            fn, uses = (lambda h, t, e: -lr_fn(h, t)), lr_uses
        s = b.coef(f"{prefix}_final", fn, uses=uses)
        return f"{p} + ({s} * {num}) / {den}"

    return final


def _fused_moments(b, m: str, v: str, prefix: str) -> None:
    """Adam's moment updates, as lerp_ and ema_sq_ round them."""
    c1 = b.coef(f"{prefix}_1mb1", _beta(0, one_minus=True), uses=("betas",))
    c2 = b.coef(f"{prefix}_b2", _beta(1), uses=("betas",))
    c3 = b.coef(f"{prefix}_1mb2", _beta(1, one_minus=True), uses=("betas",))
    b.line(f"{m} = dl_lerp({m}, {b.u}, {c1});")
    b.line(f"{v} = dl_fma({c3} * {b.u}, {b.u}, {v} * {c2});")


# ======================================================================================
# torch.optim's remaining first-order methods: Adamax, ASGD, Rprop
# ======================================================================================


def _lazy(state, key: str, like: list[Tensor], make) -> list[Tensor]:
    """State entries made from the param group's values (not the rule's defaults) on a
    parameter's first step, as torch makes them: ``make(tensor)`` for each missing one."""
    values = state.get(key)
    if values is None:
        values = state[key] = [None] * len(like)
    for i, v in enumerate(values):
        if v is None:
            values[i] = make(like[i])
    return values


def _scalar_hyper(rule: str, hyper: Hyper, *keys: str) -> None:
    for key in keys:
        value = hyper[key]
        for v in value if isinstance(value, tuple | list) else (value,):
            if is_batched(v):
                raise ValueError(
                    f"{rule} takes a scalar {key}; a batched one is not supported, got {v.tolist()}"
                )


class scale_by_adamax(Rule):
    r"""Adamax (Kingma & Ba, 2015, section 7.1): Adam with the infinity norm.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        u_t = \max(\beta_2 u_{t-1},\, |g_t| + \epsilon), \quad
        u = \frac{m_t}{(1-\beta_1^t)\, u_t}

    followed by :class:`scale_by_lr`. eps is added to :math:`|g_t|` inside the max, as
    torch does (the paper has no eps).

    Example:
        >>> import torch
        >>> from descentlab import optim
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = optim.Optimizer([w], optim.chain(optim.scale_by_adamax(), optim.scale_by_lr(0.1)))
        >>> (w ** 2).sum().backward(); _ = opt.step()
        >>> w.detach()
        tensor([ 0.9000, -1.9000])
    """

    name = "scale_by_adamax"
    role = "direction + adaptive rate"
    state_keys = ("exp_avg", "exp_inf")

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(betas=tuple(betas), eps=eps)
        self.needs_step = True

    def init(self, params):
        return {"exp_avg": _zeros(params), "exp_inf": _zeros(params)}

    def validate(self, hyper: Hyper) -> None:
        _check_betas(hyper, scalar=self.name)
        check_range("eps", hyper["eps"], 0.0)
        _scalar_hyper(self.name, hyper, "eps")

    def update(self, grads, state, params, hyper):
        b1, b2 = _betas(hyper)
        eps = as_scalar(hyper["eps"])
        m, n = state["exp_avg"], state["exp_inf"]
        steps = step_values(state, len(grads))
        lerp_(m, grads, 1 - b1)
        torch._foreach_mul_(n, b2)
        out = scratch(state, grads)
        for g, ni, o in zip(grads, n, out, strict=True):
            torch.abs(g, out=o).add_(eps)
            torch.maximum(ni, o, out=ni)
        for mi, ni, o, t in zip(m, n, out, steps, strict=True):
            torch.div(mi, ni, out=o).div_(1 - b1**t)
        return out, state


class scale_by_rprop(Rule):
    r"""Rprop (Riedmiller & Braun, 1993), torch's variant: per-coordinate step sizes that
    grow while the gradient keeps its sign and shrink when it flips.

    .. math::
        s_t = \operatorname{clip}\big(s_{t-1}\cdot
        \begin{cases}\eta_+ & g_t g_{t-1} > 0\\ \eta_- & g_t g_{t-1} < 0\\ 1 & \text{else}
        \end{cases},\ s_{\min}, s_{\max}\big), \qquad
        u = -s_t \operatorname{sign}(g_t)

    where a coordinate whose sign flipped takes no step and its stored gradient becomes 0
    (so the next step does not shrink it again). :math:`s_0` = the group's ``lr``. The
    update is final: do not follow this rule with :class:`scale_by_lr`. Rprop reads only
    gradient signs, so it is meant for full-batch gradients (as torch's documentation says).

    Args:
        lr: the initial step size :math:`s_0 > 0`.
        etas: :math:`(\eta_-, \eta_+)`, with :math:`0 < \eta_- < 1 < \eta_+`.
        step_sizes: :math:`(s_{\min}, s_{\max})`.
    """

    name = "scale_by_rprop"
    role = "adaptive learning rate"
    state_keys = ("prev", "step_size")

    def __init__(
        self,
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
    ) -> None:
        super().__init__(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes))

    def init(self, params):
        return {"prev": _zeros(params)}

    def validate(self, hyper: Hyper) -> None:
        check_range("lr", hyper["lr"], 0.0)
        for key in ("etas", "step_sizes"):
            value = hyper[key]
            if not isinstance(value, tuple | list):
                raise HyperparameterTypeError(f"{key} must be a pair, got {value!r}")
            if len(value) != 2:
                raise ValueError(f"{key} must be a pair, got {value!r}")
        _scalar_hyper(self.name, hyper, "lr", "etas", "step_sizes")
        minus, plus = hyper["etas"]
        check_range("etas[0]", minus, 0.0, 1.0, lo_open=True, hi_open=True)
        check_range("etas[1]", plus, 1.0, lo_open=True)
        lo, hi = hyper["step_sizes"]
        check_range("step_sizes[0]", lo, 0.0)
        check_range("step_sizes[1]", hi, as_scalar(lo))

    def update(self, grads, state, params, hyper):
        lr = as_scalar(hyper["lr"])
        minus, plus = (as_scalar(e) for e in hyper["etas"])
        lo, hi = (as_scalar(s) for s in hyper["step_sizes"])
        prevs = state["prev"]
        sizes = _lazy(state, "step_size", grads, lambda g: torch.full_like(g, lr))
        out = scratch(state, grads)
        for g, prev, size, o in zip(grads, prevs, sizes, out, strict=True):
            factor = torch.mul(g, prev).sign_()
            flipped = factor < 0
            factor.masked_fill_(factor > 0, plus).masked_fill_(flipped, minus)
            factor.masked_fill_(factor == 0, 1.0)
            size.mul_(factor).clamp_(lo, hi)
            prev.copy_(g).masked_fill_(flipped, 0.0)
            torch.sign(prev, out=o).mul_(size).neg_()
        return out, state


class scale_by_asgd(Rule):
    r"""Averaged SGD (Polyak & Juditsky, 1992) as torch's ``ASGD`` runs it: a decaying
    step with a small proportional shrink, and a running average of the iterates.

    .. math::
        p_t = p_{t-1} - \eta_{t-1}(g_t + \lambda p_{t-1}), \quad
        \bar p_t = \bar p_{t-1} + \mu_{t-1}(p_t - \bar p_{t-1}),

        \eta_t = \frac{\eta}{(1 + \lambda \eta t)^{\alpha}}, \quad
        \mu_t = \frac{1}{\max(1,\, t - t_0)}

    with :math:`\eta_0 = \eta` (the group's ``lr``) and :math:`\mu_0 = 1`. The average is
    state ``ax`` (torch's name; it is not written into the parameters); ``eta`` and ``mu``
    are 0-dim tensors in the state, as in torch. The update is final: do not follow this
    rule with :class:`scale_by_lr`.

    Args:
        lr: :math:`\eta \ge 0`.
        lambd: the decay term :math:`\lambda \ge 0`.
        alpha: the power of the step decay.
        t0: the step after which averaging starts.
    """

    name = "scale_by_asgd"
    role = "step size"
    state_keys = ("eta", "mu", "ax")

    def __init__(
        self, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6
    ) -> None:
        super().__init__(lr=lr, lambd=lambd, alpha=alpha, t0=t0)
        self.needs_step = True

    def init(self, params):
        return {"ax": _zeros(params)}

    def validate(self, hyper: Hyper) -> None:
        check_range("lr", hyper["lr"], 0.0)
        check_range("lambd", hyper["lambd"], 0.0)
        check_range("alpha", hyper["alpha"], 0.0)
        check_range("t0", hyper["t0"], 0.0)
        _scalar_hyper(self.name, hyper, "lr", "lambd", "alpha", "t0")

    def update(self, grads, state, params, hyper):
        from .optimizer import _scalar_dtype  # the optimizer imports this module's base

        lr, lambd = as_scalar(hyper["lr"]), as_scalar(hyper["lambd"])
        alpha, t0 = as_scalar(hyper["alpha"]), as_scalar(hyper["t0"])
        dtype = _scalar_dtype()
        etas = _lazy(state, "eta", grads, lambda g: torch.tensor(float(lr), dtype=dtype))
        mus = _lazy(state, "mu", grads, lambda g: torch.ones((), dtype=dtype))
        axs = state["ax"]
        steps = step_values(state, len(grads))
        out = scratch(state, grads)
        for g, p, o, eta, mu, ax, t in zip(grads, params, out, etas, mus, axs, steps, strict=True):
            e, m = eta.item(), mu.item()
            # torch's operations, then the difference: exact (Sterbenz) while a step is
            # smaller than the parameter, so p + u is torch's iterate to the bit
            new = torch.mul(p, 1 - lambd * e).add_(g, alpha=-e)
            torch.sub(new, p, out=o)
            new = torch.add(p, o)  # the parameter the optimizer is about to write
            if m != 1:
                ax.add_(new.sub_(ax).mul_(m))
            else:
                ax.copy_(new)
            # through a tensor of the default dtype, as torch rounds them (also after a
            # state dict load has cast eta and mu to the parameter's dtype)
            eta.copy_(torch.as_tensor(lr / ((1 + lambd * lr * t) ** alpha)))
            mu.copy_(torch.as_tensor(1 / max(1, t - t0)))
        return out, state


# ======================================================================================
# L-BFGS: a closure-driven rule (its history is its state)
# ======================================================================================


class scale_by_lbfgs(Rule):
    r"""The L-BFGS search direction (Nocedal & Wright, *Numerical Optimization*, Alg. 7.4)
    from the last ``history_size`` curvature pairs, kept as state in torch's layout.

    With :math:`s_k = x_{k+1}-x_k` (``old_stps``), :math:`y_k = g_{k+1}-g_k`
    (``old_dirs``) and :math:`\rho_k = 1/y_k^\top s_k` (``ro``; a pair is kept only when
    :math:`y^\top s > 10^{-10}`), the two-loop recursion computes
    :math:`d = -H_k g` where :math:`H_k` is the L-BFGS inverse-Hessian approximation seeded
    with :math:`H_0 = \frac{s^\top y}{y^\top y} I` (``H_diag``). The first direction is
    :math:`-g`.

    L-BFGS steps along :math:`d` several times per ``step`` and re-evaluates the loss in
    between, so it is driven by :class:`~descentlab.optim.LBFGS` (which owns the closure
    loop and the line search) through :meth:`direction`; it takes one parameter group over
    all parameters flattened into one vector, as torch's does.

    Args:
        max_iter: iterations per ``step`` (>= 1).
        max_eval: loss evaluations per ``step`` (>= 1; None: ``max_iter * 5 // 4``).
        tolerance_grad: stop when the largest gradient entry is at most this.
        tolerance_change: stop when the step or the loss change is at most this.
        history_size: the number of curvature pairs kept (>= 1).
        line_search_fn: None (fixed step ``lr``) or ``"strong_wolfe"``.
    """

    name = "scale_by_lbfgs"
    elementwise = False

    def __init__(
        self,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        super().__init__(
            max_iter=max_iter,
            max_eval=max_iter * 5 // 4 if max_eval is None else max_eval,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            history_size=history_size,
            line_search_fn=line_search_fn,
        )

    def validate(self, hyper: Hyper) -> None:
        for key in ("max_iter", "max_eval", "history_size"):
            value = hyper[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise HyperparameterTypeError(f"{key} must be an integer, got {value!r}")
            if value < 1:
                raise ValueError(f"{key} must be >= 1, got {value}")
        check_range("tolerance_grad", hyper["tolerance_grad"], 0.0)
        check_range("tolerance_change", hyper["tolerance_change"], 0.0)
        _scalar_hyper(self.name, hyper, "tolerance_grad", "tolerance_change")
        if hyper["line_search_fn"] is not None:
            check_choice("line_search_fn", hyper["line_search_fn"], ("strong_wolfe",))

    def direction(self, state: dict[str, Any], flat_grad: Tensor, history_size: int) -> Tensor:
        """The next search direction; updates the history in ``state`` (torch's keys:
        ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``, ``H_diag``, ``al``,
        ``prev_flat_grad``) with the pair of the last step, and the state's ``n_iter``
        (already counted for this iteration) tells the first iteration."""
        if state["n_iter"] == 1:
            d = flat_grad.neg()
            state.update(old_dirs=[], old_stps=[], ro=[], H_diag=1)
        else:
            y = flat_grad.sub(state["prev_flat_grad"])
            s = state["d"].mul(state["t"])
            ys = y.dot(s)
            dirs, stps, ro = state["old_dirs"], state["old_stps"], state["ro"]
            if ys > 1e-10:
                if len(dirs) == history_size:
                    del dirs[0], stps[0], ro[0]
                dirs.append(y)
                stps.append(s)
                ro.append(1.0 / ys)
                state["H_diag"] = ys / y.dot(y)
            al = state.get("al")
            if al is None or len(al) < history_size:
                al = state["al"] = [None] * history_size
            q = flat_grad.neg()
            for i in range(len(dirs) - 1, -1, -1):
                al[i] = stps[i].dot(q) * ro[i]
                q.add_(dirs[i], alpha=-al[i])
            d = r = torch.mul(q, state["H_diag"])
            for i in range(len(dirs)):
                beta = dirs[i].dot(r) * ro[i]
                r.add_(stps[i], alpha=al[i] - beta)
        prev = state.get("prev_flat_grad")
        if prev is None or prev.shape != flat_grad.shape:
            state["prev_flat_grad"] = flat_grad.clone(memory_format=torch.contiguous_format)
        else:
            prev.copy_(flat_grad)
        state["d"] = d
        return d

    def update(self, grads, state, params, hyper):
        raise ValueError(
            "scale_by_lbfgs evaluates the loss several times per step: use it through "
            "descentlab.optim.LBFGS and step(closure), not in a chain"
        )
