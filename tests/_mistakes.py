"""Researchers' mistakes: broken copies of three published optimizers (LAMB, You et al. 2020;
Prodigy, Mishchenko & Defazio 2023; MARS, Yuan et al. 2024) and of three wrappers in the
style of Cautious, each one real mistake, written as their authors would, with the public API
only. ``tests/test_optimizer_mistakes.py`` runs ``check-optimizer`` on each (its table is
docs/own_optimizer.md's). The correct versions are here too (``Lamb``, ``Mars``) and pass."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from descentlab import optim
from descentlab.optim import form as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "optimizers"))
import cautious_adamw  # (the examples: their mistakes below change one thing each)
import prodigy

_BETA = optim.Real(0.0, 1.0, hi_open=True, scalar=True)
_ADAM = optim.declare(betas=optim.Items((_BETA, _BETA), "a pair (beta1, beta2)"),
                      eps=optim.Real(0.0, scalar=True),
                      weight_decay=optim.Real(0.0, scalar=True))  # fmt: skip


# -- LAMB ------------------------------------------------------------------------------------
class lamb(optim.Rule):
    """Adam's direction plus decoupled decay, scaled per tensor by ||p|| / ||u||."""

    name = "lamb"
    state_keys = ("m", "v")
    checks = _ADAM
    #: the mistakes, each a switch of this one rule
    grad_in_place = float32_state = unguarded_ratio = False

    def __init__(self, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01):
        super().__init__(betas=tuple(betas), eps=eps, weight_decay=weight_decay)

    def init(self, params):
        def zeros(p):  # (the mistake: a low-precision parameter's moments kept in float32)
            low = self.float32_state and p.dtype in (torch.bfloat16, torch.float16)
            return torch.zeros_like(p, dtype=torch.float32 if low else p.dtype)

        return {k: [zeros(p) for p in params] for k in ("m", "v")}

    def update(self, grads, state, params, hyper):
        (b1, b2), eps, wd = hyper["betas"], hyper["eps"], hyper["weight_decay"]
        out = []
        for g, p, m, v, t in zip(grads, params, state["m"], state["v"],
                                 optim.step_values(state, len(grads)), strict=True):  # fmt: skip
            if self.grad_in_place:  # (weight decay coupled into p.grad itself)
                g.add_(p, alpha=wd)
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            r = (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
            if self.unguarded_ratio:  # the ratio of the Adam direction alone, 0 / 0 at g = 0
                u = r + wd * p
                ratio = p.norm() / r.norm()
            else:
                u = r + wd * p
                pn, un = p.norm(), u.norm()
                ratio = torch.where((pn > 0) & (un > 0), pn / un, torch.ones_like(pn))
            out.append(u * ratio)
        return out, state


class _Lamb(optim.Named):
    announces_eager = False  # (eager by design: no form)
    rule_type = lamb

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01, *,
                 fused=None):  # fmt: skip
        super().__init__(params, optim.chain(self.rule_type(), optim.scale_by_lr()), locals())


def _lamb(**mistake):
    return type("Lamb", (_Lamb,), {"rule_type": type("lamb", (lamb,), mistake)})


Lamb = _lamb()
LambGradInPlace = _lamb(grad_in_place=True)
LambFloat32State = _lamb(float32_state=True)
LambUnguardedRatio = _lamb(unguarded_ratio=True)


# -- Adam without eps, in the form -----------------------------------------------------------
class scale_by_adam_no_eps(optim.FormRule):
    name = "scale_by_adam_no_eps"
    checks = optim.declare(betas=optim.Items((_BETA, _BETA), "a pair (beta1, beta2)"))

    def __init__(self, betas=(0.9, 0.999)):
        super().__init__(betas=tuple(betas))

    def form(self, f, hyper):
        w1 = f.coef("w1", lambda h, t: 1 - h["betas"][0], uses=("betas",))
        w2 = f.coef("w2", lambda h, t: 1 - h["betas"][1], uses=("betas",))
        bc1 = f.coef("bc1", lambda h, t: 1 - h["betas"][0] ** t, uses=("betas",))
        bc2 = f.coef("bc2", lambda h, t: math.sqrt(1 - h["betas"][1] ** t), uses=("betas",))
        m = f.assign("m", F.lerp(f.state("m"), f.g, w1))
        v = f.assign("v", F.lerp(f.state("v"), f.g * f.g, w2))
        f.out((m / bc1) / (F.sqrt(v) / bc2))  # eps left out: 0 / 0 where g has been 0


class AdamNoEps(optim.Named):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0, *, fused=None):
        rule = optim.chain(scale_by_adam_no_eps(), optim.add_decayed_weights(),
                           optim.scale_by_lr())  # fmt: skip
        super().__init__(params, rule, locals())


# -- wrappers whose form is not their update --------------------------------------------------
class signed(optim.Wrapper):
    """The sign of the inner rule's update; the form writes the sign as u / |u| (NaN at 0)."""

    name = "signed"

    def update(self, grads, state, params, hyper):
        u, state = self.inner_update(grads, state, params, hyper)
        return [torch.sign(x) for x in u], state

    def form(self, f, u):
        f.out(u / F.absolute(u))


class annealed(optim.Wrapper):
    """The update scaled by sqrt(1 - t / T) until T, then 0: the form forgets the 0 (its
    coefficient's square root of a negative number fails at step 3)."""

    name = "annealed"

    def update(self, grads, state, params, hyper):
        u, state = self.inner_update(grads, state, params, hyper)
        ts = optim.step_values(state, len(u))
        return [x * math.sqrt(max(0.0, 1 - t / 2.5)) for x, t in zip(u, ts, strict=True)], state

    def form(self, f, u):
        f.out(u * f.coef("anneal", lambda h, t: math.sqrt(1 - t / 2.5)))


class cautious_unscaled(cautious_adamw.cautious):
    """Cautious's mask; the form forgets the d / (nnz + 1) rescale its update applies."""

    name = "cautious_unscaled"

    def form(self, f, u):
        zero, one = f.coef("zero", lambda h, t: 0.0), f.coef("one", lambda h, t: 1.0)
        f.out(u * F.where(F.gt(u * f.g, zero), one, zero))


class _Wrapped(optim.Named):
    wrapper: type = signed

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, *,
                 decoupled_weight_decay=True, fused=None):  # fmt: skip
        rule = optim.adam_chain(self.wrapper(optim.scale_by_adam()))
        super().__init__(params, rule, locals())


def _adam_wrapped(wrapper):
    return type(wrapper.__name__, (_Wrapped,), {"wrapper": wrapper})


SignedAdamNanFusedOnly = _adam_wrapped(signed)
AnnealedAdamFailsFused = _adam_wrapped(annealed)
CautiousFormUnscaled = _adam_wrapped(cautious_unscaled)


# -- Prodigy ---------------------------------------------------------------------------------
class prodigy_d_on_rule(prodigy.scale_by_prodigy):
    """d and its sums kept on the rule object, not in the state: a state dict forgets them."""

    def update(self, grads, state, params, hyper):
        d0 = hyper["d0"]
        kept = getattr(self, "kept", {"d": d0, "d_max": d0, "numerator": 0.0})
        for key, x in kept.items():  # (the state's copies are not read back)
            state[key] = [torch.tensor(x, dtype=torch.float64) for _ in params]
        out, state = super().update(grads, state, params, hyper)
        self.kept = {k: float(state[k][0]) for k in ("d", "d_max", "numerator")}
        return out, state


class prodigy_elementwise(prodigy.scale_by_prodigy):
    elementwise = True  # left at the default: d's sums span every tensor all the same


class _Prodigy(optim.Named):
    announces_eager = False  # (eager by design: no form)
    rule_type: type = prodigy.scale_by_prodigy

    def __init__(self, params, lr=1.0, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 d0=1e-6, d_coef=1.0, growth_rate=math.inf, *, fused=None):  # fmt: skip
        super().__init__(params, optim.chain(self.rule_type()), locals())


def _prodigy(rule_type):
    return type("Prodigy", (_Prodigy,), {"rule_type": rule_type})


ProdigyForgetsD = _prodigy(prodigy_d_on_rule)
ProdigyElementwise = _prodigy(prodigy_elementwise)


# -- MARS ------------------------------------------------------------------------------------
class mars(optim.Rule):
    """MARS-AdamW (Yuan et al. 2024, Algorithm 1, the approximate form): c = g + gamma b1 /
    (1 - b1) (g - g_prev), clipped to norm 1 per tensor, then AdamW's moments of c."""

    name = "mars"
    state_keys = ("m", "v", "prev")
    checks = optim.declare(betas=optim.Items((_BETA, _BETA), "a pair (beta1, beta2)"),
                           eps=optim.Real(0.0, scalar=True),
                           gamma=optim.Real(0.0, scalar=True))  # fmt: skip
    prev_on_rule = bias_late = False

    def __init__(self, betas=(0.95, 0.99), eps=1e-8, gamma=0.025):
        super().__init__(betas=tuple(betas), eps=eps, gamma=gamma)

    def init(self, params):
        return {"m": [torch.zeros_like(p) for p in params],
                "v": [torch.zeros_like(p) for p in params],
                "prev": [p.detach().clone().zero_() for p in params]}  # fmt: skip

    def update(self, grads, state, params, hyper):
        (b1, b2), eps, gamma = hyper["betas"], hyper["eps"], hyper["gamma"]
        if self.prev_on_rule:  # the previous gradients in a dict of the rule's own
            self.prevs = getattr(self, "prevs", {})
        out = []
        for i, (g, m, v, t) in enumerate(zip(grads, state["m"], state["v"],
                                             optim.step_values(state, len(grads)),
                                             strict=True)):  # fmt: skip
            kept = self.prevs if self.prev_on_rule else {i: state["prev"][i]} if t > 1 else {}
            prev = kept.get(i, g)
            c = g + gamma * (b1 / (1 - b1)) * (g - prev)
            norm = c.norm()
            c = torch.where(norm > 1, c / norm, c)
            m.lerp_(c, 1 - b1)
            v.mul_(b2).addcmul_(c, c, value=1 - b2)
            if self.prev_on_rule:
                self.prevs[i] = g.clone()
            else:
                state["prev"][i].copy_(g)
            k = t + 1 if self.bias_late else t
            out.append((m / (1 - b1**k)) / ((v / (1 - b2**k)).sqrt() + eps))
        return out, state


class _Mars(optim.Named):
    announces_eager = False  # (eager by design: no form)
    rule_type: type = mars

    def __init__(self, params, lr=3e-3, betas=(0.95, 0.99), eps=1e-8, gamma=0.025,
                 weight_decay=0.0, *, decoupled_weight_decay=True, fused=None):  # fmt: skip
        super().__init__(params, optim.adam_chain(self.rule_type()), locals())


def _mars(**mistake):
    return type("Mars", (_Mars,), {"rule_type": type("mars", (mars,), mistake)})


Mars = _mars()
MarsBiasLate = _mars(bias_late=True)
MarsPrevOnRule = _mars(prev_on_rule=True)
MarsOnShards = _mars(shard_local=True)
