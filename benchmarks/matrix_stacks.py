"""The matrix optimizers on a stack of same-shape matrices: time and operations per step.

For ``--count`` matrices of ``--shape`` (float32), each arm's ``step()`` is timed in turn,
interleaved step by step (load from other processes hits every arm alike), on the CPU clock
of this thread (``--clock wall`` on a GPU, where the thread waits for the device), median of
``--repeat`` steps after ``--warmup``:

- Muon (descentlab, Newton-Schulz in bfloat16, its default) against a batched bfloat16 Muon
  written here in plain torch on the same matrices (Keller Jordan's: the stack's momentum,
  Nesterov's mix, five quintic iterations as batched products, the decoupled decay and the
  step): the reference the step should be within 1.2x of;
- Shampoo (roots every ``--every`` steps) against pytorch-optimizer's ``ScalableShampoo`` at
  matched settings (SGD grafting, no Nesterov, roots by SVD), and SOAP against
  pytorch-optimizer's ``SOAP``; Adafactor alone.

It also prints the aten operations a step runs (views left out: what a GPU launches as
kernels), the largest over the timed steps.

    python benchmarks/matrix_stacks.py                          # 20 matrices 256 x 256
    python benchmarks/matrix_stacks.py --count 20 --shape 1024,1024 --device cuda --clock wall
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from descentlab import optim
from descentlab.optim.muon import NS_COEFFICIENTS


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20, help="matrices (default 20)")
    ap.add_argument("--shape", default="256,256", help="rows,columns (default 256,256)")
    ap.add_argument("--repeat", type=int, default=15, help="timed steps per arm (default 15)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per arm (default 3)")
    ap.add_argument("--every", type=int, default=10, help="Shampoo's roots every (default 10)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    return ap.parse_args()


class _Ops(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        views = (torch.ops.aten._unsafe_view.default, torch.ops.aten.detach.default)
        self.count += not func.is_view and func not in views
        return func(*args, **(kwargs or {}))


class PlainMuon:
    """Muon on a stack of same-shape matrices in plain torch: the reference."""

    def __init__(self, params: list[torch.Tensor], lr: float = 1e-3, wd: float = 0.1) -> None:
        self.params, self.lr, self.wd = params, lr, wd
        self.buf = torch.zeros(len(params), *params[0].shape, device=params[0].device)

    @torch.no_grad()
    def step(self) -> None:
        g = torch.stack([p.grad for p in self.params])
        self.buf.lerp_(g, 1 - 0.95)
        x = g.lerp_(self.buf, 0.95).bfloat16()
        tall = x.size(-2) > x.size(-1)
        if tall:
            x = x.mT
        x = x / torch.linalg.vector_norm(x, dim=(-2, -1), keepdim=True).clamp(min=1e-7)
        a, b, c = NS_COEFFICIENTS
        for _ in range(5):
            gram = x @ x.mT
            x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
        x = (x.mT if tall else x).float()
        scale = max(1, x.size(-2) / x.size(-1)) ** 0.5
        torch._foreach_mul_(self.params, 1 - self.lr * self.wd)
        torch._foreach_add_(self.params, list(x.unbind(0)), alpha=-self.lr * scale)


def _arms(every: int) -> dict[str, Callable[[list[torch.Tensor]], object]]:
    import pytorch_optimizer as po

    shampoo = dict(betas=(0.9, 0.999), epsilon=1e-12, precondition_frequency=every,
                   start_preconditioning_step=1, grafting="sgd", merge_dims=False)  # fmt: skip
    return {
        "Muon": lambda ps: optim.Muon(ps),
        "Muon, plain torch, batched bf16": PlainMuon,
        "Shampoo": lambda ps: optim.Shampoo(ps, **shampoo),
        "ScalableShampoo (pytorch-optimizer)": lambda ps: po.ScalableShampoo(
            ps,
            betas=(0.9, 0.999),
            matrix_eps=1e-12,
            preconditioning_compute_steps=every,
            start_preconditioning_step=1,
            graft_type=1,
            nesterov=False,
            use_svd=True,
            shape_interpretation=False,
        ),
        "SOAP": lambda ps: optim.SOAP(ps),
        "SOAP (pytorch-optimizer)": lambda ps: po.SOAP(ps),
        "Adafactor": lambda ps: optim.Adafactor(ps),
    }


def main() -> int:
    args = _args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    shape = tuple(int(s) for s in args.shape.split(","))
    dev = torch.device(args.device)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    gen = torch.Generator().manual_seed(0)
    arms = {}
    for name, make in _arms(args.every).items():
        ps = [torch.nn.Parameter(torch.randn(shape, generator=gen).to(dev) * 0.02)
              for _ in range(args.count)]  # fmt: skip
        arms[name] = (ps, make(ps))
    times: dict[str, list[float]] = {k: [] for k in arms}
    ops = dict.fromkeys(arms, 0)
    for i in range(args.warmup + args.repeat):
        for name, (ps, opt) in arms.items():
            for p in ps:
                p.grad = torch.randn(shape, generator=gen).to(dev) * 0.01
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = clock()
            opt.step()  # type: ignore[attr-defined]
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if i >= args.warmup:
                times[name].append(clock() - t0)
                count = _Ops()
                with count:
                    opt.step()  # type: ignore[attr-defined]
                ops[name] = max(ops[name], count.count)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.count} matrices {shape}, {args.device}, {args.threads} thread(s), "
          f"{args.clock} clock, median of {args.repeat}")  # fmt: skip
    print(f"{'arm':40s} {'ms':>9s} {'ops':>6s}")
    for k in arms:
        print(f"{k:40s} {med[k] * 1e3:9.3f} {ops[k]:6d}")
    for a, b in (("Muon", "Muon, plain torch, batched bf16"),
                 ("Shampoo", "ScalableShampoo (pytorch-optimizer)"),
                 ("SOAP", "SOAP (pytorch-optimizer)")):  # fmt: skip
        print(f"{a} / {b}: {med[a] / med[b]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
