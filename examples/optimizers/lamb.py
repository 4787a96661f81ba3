"""LAMB (You et al., 2019, Algorithm 2), written outside descentlab as a wrapper: Adam's step
``r`` plus the decay ``lambda * x``, scaled per tensor by the trust ratio ``||x|| / ||r + lambda
x||`` (1 where either norm is 0; the paper's phi the identity). The ratio is two sums over the
whole tensor, one of them of the parameter: ``f.total`` computes both in the fused kernel's
first pass."""

import math

from descentlab import optim


def trust_ratio(numel, xx, uu):  # ||x|| / ||u|| from the two sums of squares
    return math.sqrt(xx) / math.sqrt(uu) if xx > 0 and uu > 0 else 1.0


class scale_by_trust_ratio(optim.Wrapper):
    name = "scale_by_trust_ratio"
    checks = optim.declare(weight_decay=optim.Real(0.0, scalar=True))

    def __init__(self, inner, weight_decay=0.0) -> None:
        super().__init__(inner, weight_decay=weight_decay)

    def update(self, grads, state, params, hyper):
        r, state = self.inner_update(grads, state, params, hyper)
        wd, out = float(hyper["weight_decay"]), []
        for x, p in zip(r, params, strict=True):
            u = x + p * wd
            out.append(u * trust_ratio(u.numel(), float((p * p).sum()), float((u * u).sum())))
        return out, state

    def form(self, f, r):
        wd = f.coef("wd", lambda h, t: h["weight_decay"], uses=("weight_decay",))
        u = f.let(r + f.p * wd)
        f.out(u * f.total((f.p * f.p, u * u), trust_ratio))


class LAMB(optim.Named):
    # fmt: off
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01, *,
                 fused=None) -> None:
        # fmt: on
        rule = optim.chain(scale_by_trust_ratio(optim.scale_by_adam()), optim.scale_by_lr())
        super().__init__(params, rule, locals())
