"""Cautious AdamW (Liang et al., 2024, Algorithm 1), written outside descentlab as a rule of its
own: AdamW's update ``u`` kept only where it agrees in sign with the gradient, rescaled by
``d / (nnz + 1)`` -- a reduction over each whole tensor, so the rule is left at the ``Rule``
defaults (not shard-local: under FSDP2 each tensor is stepped whole, by its owner)."""

import torch

from descentlab import optim

_BETA = optim.Real(0.0, 1.0, hi_open=True, scalar=True)


class scale_by_cautious_adam(optim.Rule):
    name = "scale_by_cautious_adam"
    state_keys = ("exp_avg", "exp_avg_sq")
    needs_step = True
    checks = optim.declare(betas=optim.BETAS, eps=optim.Real(0.0, scalar=True))

    def __init__(self, betas=(0.9, 0.999), eps=1e-8) -> None:
        super().__init__(betas=tuple(betas), eps=eps)

    def init(self, params):
        return {k: [torch.zeros_like(p) for p in params] for k in self.state_keys}

    def update(self, grads, state, params, hyper):
        (b1, b2), eps, out = hyper["betas"], hyper["eps"], []
        steps = optim.step_values(state, len(grads))
        for g, m, v, t in zip(grads, state["exp_avg"], state["exp_avg_sq"], steps, strict=True):
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            u = (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
            mask = (u * g > 0).to(u.dtype)
            out.append(u * mask * (mask.numel() / (mask.sum() + 1)))
        return out, state


class CautiousAdamW(optim.Named):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, *,
                 decoupled_weight_decay=True, maximize=False, foreach=None, fused=None,
                 monitor=False) -> None:  # fmt: skip
        super().__init__(params, optim.adam_chain(scale_by_cautious_adam()), locals())
