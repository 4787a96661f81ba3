"""The matrix optimizers under FSDP2: each design's state, compute and communication per rank.

In each of ``--world`` gloo CPU processes, ``--layers`` square Linear layers of ``--width``
(no biases) are ``fully_shard``-ed and trained ``--steps`` steps on the same batches on every
rank, for each optimizer (Muon, Shampoo with its roots every step, SOAP, Adafactor) and each
design (``opt.sharding``: ``owners``, each matrix stepped by one rank; ``gather``, every rank
steps every matrix), beside the same optimizer unsharded on the same gradients (stepped in
the same process, interleaved). Per rank it reports the optimizer state in bytes against the
unsharded (replicated) figure, the stepping thread's CPU time per step against the
unsharded step's (after two untimed steps; gloo moves the bytes on threads of its own), the
bytes received per step and parameter element against the gather design's
``2 (1 - 1/N) 4``, and the largest relative difference of the parameters from the unsharded
run's.

    python benchmarks/sharded_matrix.py                   # 2 ranks, 8 layers of 256
    python benchmarks/sharded_matrix.py --world 4 --width 512 --steps 6
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

#: each optimizer's settings (Shampoo: its roots at every step, each step's work)
SETTINGS = {
    "muon": {},
    "shampoo": dict(precondition_frequency=1, start_preconditioning_step=1),
    "soap": {},
    "adafactor": {},
}


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=int, default=2, help="gloo processes (default 2)")
    ap.add_argument("--layers", type=int, default=8, help="square layers (default 8)")
    ap.add_argument("--width", type=int, default=256, help="their width (default 256)")
    ap.add_argument("--steps", type=int, default=8, help="steps (default 8)")
    ap.add_argument("--optimizers", default=",".join(SETTINGS), help="(default all four)")
    return ap.parse_args()


def _model(args: argparse.Namespace) -> torch.nn.Sequential:
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for _ in range(args.layers):
        layers += [torch.nn.Linear(args.width, args.width, bias=False), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers)


def _state_bytes(opt: torch.optim.Optimizer) -> int:
    total = 0
    for st in opt.state.values():
        for v in st.values():
            for t in v if isinstance(v, list) else [v]:
                if isinstance(t, torch.Tensor):
                    t = getattr(t, "_local_tensor", t)
                    total += t.numel() * t.element_size()
    return total


def _case(args: argparse.Namespace, name: str, design: str) -> dict:
    from torch.distributed.fsdp import fully_shard

    from descentlab import optim

    model = _model(args)
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer)
    fully_shard(model)
    opt = optim.get(name)(model.parameters(), **SETTINGS[name])
    opt.sharding = design
    copies = [torch.nn.Parameter(p.detach().full_tensor().clone()) for p in model.parameters()]
    twin = optim.get(name)(copies, **SETTINGS[name])
    cpu = [0.0, 0.0]
    for t in range(args.steps):
        x = torch.randn(16, args.width, generator=torch.Generator().manual_seed(t))
        opt.zero_grad()
        model(x).square().mean().backward()
        for c, p in zip(copies, model.parameters(), strict=True):
            c.grad = p.grad.full_tensor().clone()
        for i, step in enumerate((opt.step, twin.step) if t % 2 else (twin.step, opt.step)):
            t0 = time.thread_time()
            step()
            if t >= 2:
                cpu[i if t % 2 else 1 - i] += time.thread_time() - t0
    full = [p.detach().full_tensor() for p in model.parameters()]
    err = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(full, copies, strict=True))
    elements = sum(p.numel() for p in copies)
    return {
        "state": _state_bytes(opt),
        "replicated": _state_bytes(twin),
        "cpu": cpu[0] / cpu[1],
        "per_element": opt._sharded.traffic.received / args.steps / elements,
        "error": err,
    }


def _rank(rank: int, args: argparse.Namespace, store: str) -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", store=dist.FileStore(store, args.world), rank=rank,
                            world_size=args.world)  # fmt: skip
    n = args.world
    if rank == 0:
        print(f"{args.world} ranks, {args.layers} layers {args.width} x {args.width}, "
              f"{args.steps} steps; per rank: state / replicated, CPU / unsharded, bytes "
              f"received per element (gather design: {2 * (1 - 1 / n) * 4:.2f})")  # fmt: skip
    for name in args.optimizers.split(","):
        for design in ("owners", "gather"):
            rows: list = [None] * n
            dist.all_gather_object(rows, _case(args, name, design))
            if rank == 0:
                state = ", ".join(f"{r['state'] / r['replicated']:.3f}" for r in rows)
                cpu = ", ".join(f"{r['cpu']:.2f}" for r in rows)
                got = ", ".join(f"{r['per_element']:.2f}" for r in rows)
                err = max(r["error"] for r in rows)
                print(f"{name:9s} {design:6s} state {state} | CPU {cpu} | bytes {got} | "
                      f"error {err:.1e}", flush=True)  # fmt: skip
    dist.destroy_process_group()


def main() -> int:
    args = _args()
    store = tempfile.mktemp(prefix="descentlab-sharded-matrix-")
    try:
        mp.spawn(_rank, args=(args, store), nprocs=args.world, join=True)
    finally:
        if os.path.exists(store):
            os.unlink(store)
    return 0


if __name__ == "__main__":
    sys.exit(main())
