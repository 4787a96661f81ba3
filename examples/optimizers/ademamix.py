"""AdEMAMix (Pagliardini et al., 2024, Algorithm 1), its alpha and beta3 warmed up likewise."""

import math

from descentlab import optim
from descentlab.optim import form as F

_BETA = optim.Real(0.0, 1.0, hi_open=True, scalar=True)


def beta3_at(h, t):  # the paper's beta3 scheduler, from beta1 up to beta3
    (b1, _, b3), T = h["betas"], h["t_alpha_beta3"]
    if not T or t >= T:
        return b3
    lo, hi = math.log(b1), math.log(b3)
    return min(math.exp(lo * hi / ((1 - t / T) * hi + t / T * lo)), b3)


class scale_by_ademamix(optim.FormRule):
    name = "scale_by_ademamix"
    checks = optim.declare(betas=optim.Items((_BETA,) * 3, "three betas (beta1, beta2, beta3)"),
                           alpha=optim.Real(0.0, scalar=True), eps=optim.Real(0.0, scalar=True),
                           t_alpha_beta3=optim.Real(0.0, scalar=True))  # fmt: skip

    def __init__(self, betas=(0.9, 0.999, 0.9999), alpha=5.0, t_alpha_beta3=0, eps=1e-8):
        super().__init__(betas=tuple(betas), alpha=alpha, t_alpha_beta3=t_alpha_beta3, eps=eps)

    def form(self, f: F.Form, hyper) -> None:
        c = {k: f.coef(k, fn, uses=("betas", "alpha", "t_alpha_beta3", "eps")) for k, fn in {
            "w1": lambda h, t: 1 - h["betas"][0], "b2": lambda h, t: h["betas"][1],
            "w2": lambda h, t: 1 - h["betas"][1], "w3": lambda h, t: 1 - beta3_at(h, t),
            "bc1": lambda h, t: 1 - h["betas"][0] ** t, "eps": lambda h, t: h["eps"],
            "bc2": lambda h, t: math.sqrt(1 - h["betas"][1] ** t),
            "alpha": lambda h, t: h["alpha"] * min(1.0, t / (h["t_alpha_beta3"] or t)),
        }.items()}  # fmt: skip
        m1 = f.assign("m1", F.lerp(f.state("m1"), f.g, c["w1"]))
        m2 = f.assign("m2", F.lerp(f.state("m2"), f.g, c["w3"]))
        nu = f.assign("nu", F.addcmul(f.state("nu") * c["b2"], f.g, f.g, c["w2"]))
        f.out((m1 / c["bc1"] + m2 * c["alpha"]) / (F.sqrt(nu) / c["bc2"] + c["eps"]))


class AdEMAMix(optim.Named):
    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999, 0.9999),
        alpha=5.0,
        t_alpha_beta3=0,
        eps=1e-8,
        weight_decay=0.0,
        *,
        decoupled_weight_decay=True,
        fused=None,
    ):
        super().__init__(params, optim.adam_chain(scale_by_ademamix()), locals())
