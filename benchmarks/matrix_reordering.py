"""How far reordering float additions moves Shampoo and SOAP, beside their references.

The same 5 steps of an MLP (6 -> ``--width`` -> 3, Tanh) are run twice per optimizer: with
the gradient of the batch's mean loss as computed, and with the batch's rows in reverse
order (the sums over examples in another order: the gradient differs by float rounding, as
a sharded or tensor-parallel step's does). It prints the largest relative difference of the
parameters after the 5 steps, for descentlab's Shampoo and SOAP and for pytorch-optimizer's
``Shampoo``, ``ScalableShampoo`` (Google's Distributed Shampoo) and ``SOAP`` (the SOAP
paper's code) at matched settings, and for AdamW as the yardstick, in float32 and float64.

    python benchmarks/matrix_reordering.py
    python benchmarks/matrix_reordering.py --width 64 --batch 8
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable

import torch

from descentlab import optim


def arms() -> dict[str, Callable]:
    """Each setting's (descentlab, reference) pair of optimizer factories; the reference None
    where there is none to match."""
    import pytorch_optimizer as po

    def scalable(eps: float) -> Callable:
        return lambda ps: po.ScalableShampoo(
            ps, lr=1e-2, betas=(0.9, 0.999), preconditioning_compute_steps=1,
            start_preconditioning_step=1, graft_type=1, matrix_eps=eps, nesterov=False,
            use_svd=True, shape_interpretation=False,
        )  # fmt: skip

    def ours(**kw: object) -> Callable:
        return lambda ps: optim.Shampoo(ps, lr=1e-2, **kw)

    sgd = dict(betas=(0.9, 0.999), precondition_frequency=1, start_preconditioning_step=1,
               grafting="sgd", merge_dims=False, precondition_1d=False)  # fmt: skip
    paper = dict(betas=(0.0, 1.0), grafting="none", precondition_frequency=1,
                 start_preconditioning_step=1, merge_dims=False, block_size=10_000)  # fmt: skip
    return {
        "Shampoo, paper, eps 1e-6": (ours(**paper, epsilon=1e-6),
                                     lambda ps: po.Shampoo(ps, lr=1e-2, matrix_eps=1e-6)),
        "Shampoo, SGD grafting, eps 1e-6": (ours(**sgd, epsilon=1e-6), scalable(1e-6)),
        "Shampoo, SGD grafting, eps 1e-12": (ours(**sgd, epsilon=1e-12), scalable(1e-12)),
        "Shampoo defaults (roots from step 10)": (ours(), None),
        "Shampoo defaults, roots from step 1": (
            ours(precondition_frequency=1, start_preconditioning_step=1), None),
        "Shampoo, roots from step 1, eps 1e-6": (
            ours(precondition_frequency=1, start_preconditioning_step=1, epsilon=1e-6), None),
        "SOAP defaults": (lambda ps: optim.SOAP(ps, lr=3e-3), lambda ps: po.SOAP(ps, lr=3e-3)),
        "SOAP, bases every step": (lambda ps: optim.SOAP(ps, lr=3e-3, precondition_frequency=1),
                                   lambda ps: po.SOAP(ps, lr=3e-3, precondition_frequency=1)),
        "AdamW": (lambda ps: optim.AdamW(ps, lr=1e-2), lambda ps: torch.optim.AdamW(ps, lr=1e-2)),
    }  # fmt: skip


def spread(make: Callable, dtype: torch.dtype = torch.float32, width: int = 10, batch: int = 16,
           steps: int = 5) -> float:  # fmt: skip
    """The largest relative difference of the parameters after ``steps`` steps between the
    batches as drawn and reversed."""
    out = []
    for reverse in (False, True):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(6, width), torch.nn.Tanh(), torch.nn.Linear(width, 3)
        ).to(dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = make(model.parameters())
        for t in range(steps):
            x = torch.randn(batch, 6, generator=torch.Generator().manual_seed(1000 + t))
            x = x.to(dtype).flip(0) if reverse else x.to(dtype)
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
        out.append([p.detach().clone() for p in model.parameters()])
    return max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(*out, strict=True))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=10, help="hidden width (default 10)")
    ap.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"{'setting':40s} {'':11s} {'float32':>9s} {'float64':>9s}")
    for name, pair in arms().items():
        for who, make in zip(("descentlab", "reference"), pair, strict=True):
            if make is None:
                continue
            got = [spread(make, d, args.width, args.batch) for d in (torch.float32, torch.float64)]
            print(f"{name:40s} {who:11s} {got[0]:9.2e} {got[1]:9.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
