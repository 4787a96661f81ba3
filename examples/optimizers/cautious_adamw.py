"""Cautious AdamW (Liang et al., 2024, Algorithm 1), written outside descentlab as a wrapper: any
rule's update ``u`` kept only where it agrees in sign with the gradient ``g``, rescaled by
``d / (nnz + 1)`` -- a reduction over each whole tensor, so the wrapper is left at the ``Rule``
defaults (not shard-local: under FSDP2 each tensor is stepped whole, by its owner). Its ``form``
is the same per element: around a rule written in the form it runs in the fused kernels."""

from descentlab import optim
from descentlab.optim import form as F


class cautious(optim.Wrapper):
    name = "cautious"

    def update(self, grads, state, params, hyper):
        u, state = self.inner_update(grads, state, params, hyper)
        out = []
        for g, x in zip(grads, u, strict=True):
            mask = (x * g > 0).to(x.dtype)
            out.append(x * mask * (mask.numel() / (mask.sum() + 1)))
        return out, state

    def form(self, f, u):
        zero, one = f.coef("zero", lambda h, t: 0.0), f.coef("one", lambda h, t: 1.0)
        mask = f.let(F.where(F.gt(u * f.g, zero), one, zero))
        f.out(u * mask * f.total(mask, lambda n, s: n * (1 / (s + 1))))  # torch: n / tensor


class CautiousAdamW(optim.Named):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, *,
                 decoupled_weight_decay=True, fused=None) -> None:  # fmt: skip
        super().__init__(params, optim.adam_chain(cautious(optim.scale_by_adam())), locals())


class CautiousLion(optim.Named):  # the same wrapper around another optimizer's rule
    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, *, fused=None):
        rule = optim.chain(cautious(optim.scale_by_lion()), optim.add_decayed_weights(),
                           optim.scale_by_lr())  # fmt: skip
        super().__init__(params, rule, locals())
