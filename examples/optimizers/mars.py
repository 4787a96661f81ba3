"""MARS (Yuan et al., 2024, Algorithm 2, MARS-AdamW), written outside descentlab: the gradient
corrected by its change since the previous step, ``c = g + gamma * beta1 / (1 - beta1) * (g -
g_prev)`` (no change at the first step: x_1 = x_0), clipped per tensor to norm 1 where its
norm is larger, then AdamW's moments of it. The clip is a sum over the whole tensor of a value
the form computes (``f.total``): the fused kernel computes it in a first pass."""

import math

from descentlab import optim
from descentlab.optim import form as F

_BETA = optim.Real(0.0, 1.0, hi_open=True, scalar=True)


class scale_by_mars(optim.FormRule):
    name = "scale_by_mars"
    checks = optim.declare(betas=optim.Items((_BETA, _BETA), "a pair (beta1, beta2)"),
                           gamma=optim.Real(0.0, scalar=True),
                           eps=optim.Real(0.0, scalar=True))  # fmt: skip

    def __init__(self, betas=(0.95, 0.99), gamma=0.025, eps=1e-8) -> None:
        super().__init__(betas=tuple(betas), gamma=gamma, eps=eps)

    def form(self, f: F.Form, hyper) -> None:
        c = {k: f.coef(k, fn, uses=("betas", "gamma", "eps")) for k, fn in {
            "k": lambda h, t: h["gamma"] * h["betas"][0] / (1 - h["betas"][0]),
            "w1": lambda h, t: 1 - h["betas"][0], "b2": lambda h, t: h["betas"][1],
            "w2": lambda h, t: 1 - h["betas"][1], "eps": lambda h, t: h["eps"],
            "bc1": lambda h, t: 1 - h["betas"][0] ** t,
            "bc2": lambda h, t: math.sqrt(1 - h["betas"][1] ** t),
        }.items()}  # fmt: skip
        first = f.first_step("prev_grad")  # 1 at a tensor's first step: no change yet
        change = f.let(f.g - F.where(first, f.g, f.state("prev_grad")))
        corrected = f.let(f.g + change * c["k"])
        # ||c|| where it is above 1, else 1: c / that is the paper's clip
        clip = f.total(corrected * corrected, lambda n, s: max(math.sqrt(s), 1.0))
        clipped = f.let(corrected / clip)
        f.assign("prev_grad", f.g)
        m = f.assign("exp_avg", F.lerp(f.state("exp_avg"), clipped, c["w1"]))
        v = f.state("exp_avg_sq")
        v = f.assign("exp_avg_sq", F.addcmul(v * c["b2"], clipped, clipped, c["w2"]))
        f.out((m / c["bc1"]) / (F.sqrt(v) / c["bc2"] + c["eps"]))


class MARS(optim.Named):
    # fmt: off
    def __init__(self, params, lr=3e-3, betas=(0.95, 0.99), gamma=0.025, eps=1e-8,
                 weight_decay=0.0, *, decoupled_weight_decay=True, fused=None) -> None:
        # fmt: on
        super().__init__(params, optim.adam_chain(scale_by_mars()), locals())
