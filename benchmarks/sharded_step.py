"""The fused step on sharded parameters: its speed per element on each rank's local shards
against the same step unsharded.

Under FSDP2 (``torch.distributed.fsdp.fully_shard``) descentlab's fused kernel steps each
rank's local shards (:mod:`descentlab.optim.sharded`). In each of ``--world`` gloo CPU
processes this times one ``step()`` of an optimizer (AdamW by default, fused: its default) on
a stack of ``--layers`` square Linear layers of ``--size`` parameters in all, sharded by
``fully_shard``, and, interleaved step by step in the same process (so load from other
processes hits every arm alike):

- ``local``: the same optimizer on plain tensors shaped as this rank's shards (the elements the
  sharded step updates, unsharded): the sharded step's cost per element against it is the
  overhead of stepping DTensors;
- ``full``: the same optimizer on the whole unsharded model (every element, one process);
- ``control``: ``local`` again (another copy of the same tensors): ``control / local`` is the
  spread two arms of the same code show here, the A/A control a ratio is read against.

It prints the median step time of each arm (``--repeat`` steps each, after ``--warmup``), the
time per element, and the ratios ``sharded / local`` and ``(sharded / its elements) / (full /
its elements)``; rank 0's numbers, and every rank's ratio. Gradients are set, not computed:
only the optimizer step is timed, on the CPU clock of the stepping thread (``--clock wall``:
the wall clock, which counts the waits for a core other processes hold), ``sharded`` and
``local`` and ``control`` in turn (each first, and after each other, equally often),
``full`` last.
``--fresh``: new gradients before every step (FSDP2 makes a new gradient DTensor at every
step: each arm gets new gradient memory).

    python benchmarks/sharded_step.py                      # 2 ranks, 1M parameters
    python benchmarks/sharded_step.py --world 2 --size 16e6 --repeat 40 --fresh
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=int, default=2, help="gloo processes (default 2)")
    ap.add_argument("--size", type=float, default=1e6, help="parameters in all (default 1e6)")
    ap.add_argument("--layers", type=int, default=4, help="square Linear layers (default 4)")
    ap.add_argument("--optimizer", default="adamw", help="a registered name (default adamw)")
    ap.add_argument("--repeat", type=int, default=30, help="timed steps per arm (default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per arm (default 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per rank (default 1)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="(default cpu)")
    ap.add_argument("--fresh", action="store_true", help="new gradients before every step")
    ap.add_argument("--json", help="append rank 0's result to this file (JSON lines)")
    return ap.parse_args()


def _model(width: int, layers: int) -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(*[torch.nn.Linear(width, width, bias=False) for _ in range(layers)])


def _rank(rank: int, args: argparse.Namespace, store: str) -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    dist.init_process_group(
        "gloo", store=dist.FileStore(store, args.world), rank=rank, world_size=args.world
    )
    from torch.distributed.fsdp import fully_shard

    from descentlab import optim
    from descentlab.optim.dtensors import like

    width = max(1, int((args.size / args.layers) ** 0.5))
    cls = optim.get(args.optimizer)
    sharded = _model(width, args.layers)
    for layer in sharded:
        fully_shard(layer)
    fully_shard(sharded)
    local = [torch.nn.Parameter(p.to_local().detach().clone()) for p in sharded.parameters()]
    control = [torch.nn.Parameter(p.detach().clone()) for p in local]
    full = list(_model(width, args.layers).parameters())
    gen = torch.Generator().manual_seed(rank)

    def gradients() -> None:
        for p in local + control + full:
            p.grad = torch.randn(p.shape, generator=gen) * 1e-3
        for p in sharded.parameters():  # (of its parameter's spec, as FSDP2 makes one)
            p.grad = like(torch.randn(p.to_local().shape, generator=gen) * 1e-3, p)

    gradients()
    arms = {
        "sharded": cls(sharded.parameters()),
        "local": cls(local),
        "control": cls(control),
        "full": cls(full),
    }
    elements = {
        "sharded": sum(p.to_local().numel() for p in sharded.parameters()),
        "local": sum(p.numel() for p in local),
        "control": sum(p.numel() for p in control),
        "full": sum(p.numel() for p in full),
    }
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    times: dict[str, list[float]] = {k: [] for k in arms}
    for i in range(args.warmup + args.repeat):
        if args.fresh:
            gradients()
        # interleaved: sharded, local and the control in turn, each first as often and after
        # each other as often, then the whole model
        first = ("sharded", "local", "control")
        for name in (*first[i % 3 :], *first[: i % 3], "full"):
            t0 = clock()
            arms[name].step()
            dt = clock() - t0
            if i >= args.warmup:
                times[name].append(dt)
    fused = all(any(o._fused.plans.values()) for o in arms.values())
    med = {k: statistics.median(v) for k, v in times.items()}
    per = {k: med[k] / elements[k] for k in med}
    row = {
        "rank": rank,
        "world": args.world,
        "optimizer": args.optimizer,
        "fused": fused,
        "elements": elements,
        "median_s": med,
        "ns_per_element": {k: v * 1e9 for k, v in per.items()},
        "sharded_over_local": med["sharded"] / med["local"],
        "control_over_local": med["control"] / med["local"],
        "per_element_sharded_over_full": per["sharded"] / per["full"],
    }
    rows: list = [None] * args.world
    dist.all_gather_object(rows, row)
    if rank == 0:
        _report(rows, args)
    dist.destroy_process_group()


def _report(rows: list[dict], args: argparse.Namespace) -> None:
    r = rows[0]
    print(
        f"{args.optimizer} (fused: {r['fused']}), {args.world} ranks, {int(args.size):,} "
        f"parameters, {args.repeat} steps per arm, {args.threads} thread(s) per rank, "
        f"{args.clock} clock{', fresh gradients' if args.fresh else ''}"
    )
    print(f"{'arm':8s} {'elements':>10s} {'median ms':>10s} {'ns/element':>11s}")
    for k in ("sharded", "local", "control", "full"):
        print(
            f"{k:8s} {r['elements'][k]:>10,d} {r['median_s'][k] * 1e3:>10.3f} "
            f"{r['ns_per_element'][k]:>11.3f}"
        )
    for row in rows:
        print(
            f"rank {row['rank']}: sharded / local {row['sharded_over_local']:.3f}, control / "
            f"local {row['control_over_local']:.3f}; per element sharded / full "
            f"{row['per_element_sharded_over_full']:.3f}"
        )
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(rows) + "\n")


def main() -> None:
    args = _args()
    store = tempfile.mktemp(prefix="descentlab-sharded-bench-")
    try:
        mp.spawn(_rank, args=(args, store), nprocs=args.world, join=True)
    finally:
        if os.path.exists(store):
            os.unlink(store)


if __name__ == "__main__":
    sys.exit(main())
