"""ADOPT (Taniguchi et al., 2024, Algorithm 1), written outside descentlab: the second moment
of the previous steps normalizes the gradient before the momentum takes it; the first step
only sets the second moment."""

from descentlab import optim
from descentlab.optim import form as F

_BETA = optim.Real(0.0, 1.0, hi_open=True, scalar=True)


class scale_by_adopt(optim.FormRule):
    name = "scale_by_adopt"
    checks = optim.declare(betas=optim.Items((_BETA, _BETA), "a pair (beta1, beta2)"),
                           eps=optim.Real(0.0, scalar=True))  # fmt: skip

    def __init__(self, betas=(0.9, 0.9999), eps=1e-6) -> None:
        super().__init__(betas=tuple(betas), eps=eps)

    def form(self, f: F.Form, hyper) -> None:
        first = f.coef("first", lambda h, t: float(t == 1))
        w1 = f.coef("1mb1", lambda h, t: 1 - h["betas"][0], uses=("betas",))
        w2 = f.coef("1mb2", lambda h, t: 1 - h["betas"][1], uses=("betas",))
        eps = f.coef("eps", lambda h, t: h["eps"], uses=("eps",))
        den = f.let(F.maximum(F.sqrt(f.state("v")), eps))  # max(sqrt(v_{t-1}), eps)
        m = f.assign("m", F.where(first, f.state("m"), F.lerp(f.state("m"), f.g / den, w1)))
        f.assign("v", F.where(first, f.g * f.g, F.lerp(f.state("v"), f.g * f.g, w2)))
        f.out(m)


class ADOPT(optim.Named):
    # fmt: off
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.9999), eps=1e-6, weight_decay=0.0, *,
                 decoupled_weight_decay=True, maximize=False, foreach=None, fused=None,
                 monitor=False) -> None:
        # fmt: on
        super().__init__(params, optim.adam_chain(scale_by_adopt()), locals())
