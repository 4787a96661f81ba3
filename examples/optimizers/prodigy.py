"""Prodigy (Mishchenko & Defazio, 2023, Algorithm 4: the Adam form), written outside descentlab:
Adam whose step size ``d`` is estimated as it trains, from two sums over every parameter of the
group -- ``<g, x0 - x>`` weighted by the step sizes so far, and the L1 norm of ``s``, a running
sum of gradients. The update reads every tensor of the group, so the rule says it is not
elementwise (``elementwise = False``: a group is never stepped in chunks, nor runs stacked).
``d`` and its two sums are the group's, kept with each tensor's state as float64 numbers so
that a state dict resumes them."""

import math

import torch

from descentlab import optim

_BETA = optim.Real(0.0, 1.0, hi_open=True, scalar=True)


class scale_by_prodigy(optim.Rule):
    name = "scale_by_prodigy"
    elementwise = False  # d is the group's: its sums span every tensor
    state_keys = ("p0", "s", "m", "v", "d", "d_max", "numerator")
    own_dtype = ("d", "d_max", "numerator")  # the group's numbers, in float64
    checks = optim.declare(betas=optim.Items((_BETA, _BETA), "a pair (beta1, beta2)"),
                           eps=optim.Real(0.0, scalar=True),
                           d0=optim.Real(0.0, lo_open=True, scalar=True),
                           d_coef=optim.Real(0.0, lo_open=True, scalar=True),
                           growth_rate=optim.Real(1.0, scalar=True),
                           weight_decay=optim.Real(0.0, scalar=True),
                           lr=optim.Real(0.0, scalar=True))  # fmt: skip

    def __init__(self, lr=1.0, betas=(0.9, 0.999), eps=1e-8, d0=1e-6, d_coef=1.0,
                 growth_rate=math.inf, weight_decay=0.0):  # fmt: skip
        super().__init__(lr=lr, betas=tuple(betas), eps=eps, d0=d0, d_coef=d_coef,
                         growth_rate=growth_rate, weight_decay=weight_decay)  # fmt: skip

    def init(self, params):
        def number(x):
            return [torch.tensor(float(x), dtype=torch.float64) for _ in params]

        return {"p0": [p.detach().clone() for p in params],
                "s": [torch.zeros_like(p) for p in params],
                "m": [torch.zeros_like(p) for p in params],
                "v": [torch.zeros_like(p) for p in params],
                "d": number(self.defaults["d0"]), "d_max": number(self.defaults["d0"]),
                "numerator": number(0.0)}  # fmt: skip

    def update(self, grads, state, params, hyper):
        (b1, b2), lr, d0 = hyper["betas"], hyper["lr"], hyper["d0"]
        b3 = math.sqrt(b2)
        d, d_max = float(state["d"][0]), float(state["d_max"][0])
        dlr = d * lr
        numerator, denominator = float(state["numerator"][0]) * b3, 0.0
        for g, p, p0, s, m, v in zip(grads, params, state["p0"], state["s"], state["m"],
                                     state["v"], strict=True):  # fmt: skip
            numerator += (d / d0) * dlr * float(torch.dot(g.flatten(), (p0 - p).flatten()))
            m.mul_(b1).add_(g, alpha=d * (1 - b1))
            v.mul_(b2).addcmul_(g, g, value=d * d * (1 - b2))
            s.mul_(b3).add_(g, alpha=(d / d0) * dlr)
            denominator += float(s.abs().sum())
        if denominator > 0:  # (every gradient zero so far: d stays)
            d_hat = hyper["d_coef"] * numerator / denominator
            if d == d0:
                d = max(d, d_hat)
            d_max = max(d_max, d_hat)
            d = min(d_max, d * hyper["growth_rate"])
        for key, x in (("d", d), ("d_max", d_max), ("numerator", numerator)):
            state[key] = [torch.tensor(x, dtype=torch.float64) for _ in params]
        # the decoupled weight decay at the step size the step began with, as the paper's
        wd, eps = hyper["weight_decay"], hyper["eps"]
        out = [-dlr * (m / (v.sqrt() + d * eps) + wd * p)
               for p, m, v in zip(params, state["m"], state["v"], strict=True)]  # fmt: skip
        return out, state


class Prodigy(optim.Named):
    def __init__(self, params, lr=1.0, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 d0=1e-6, d_coef=1.0, growth_rate=math.inf, *, fused=None):  # fmt: skip
        super().__init__(params, optim.chain(scale_by_prodigy()), locals())
