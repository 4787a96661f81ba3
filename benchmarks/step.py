"""Optimizer step time: descentlab vs torch.optim's for-loop, foreach and fused paths.

For every named optimizer, at each size (float32 parameters split into 20 tensors), prints
the median time of one ``step()`` for each path, side by side in one process, and the ratio
of descentlab's to torch's for-loop and to torch's best path.

    python benchmarks/step.py                 # 1M and 10M parameters
    python benchmarks/step.py --sizes 1e6 --repeat 30
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from descentlab import optim

# name -> (descentlab factory kwargs, torch class, torch kwargs, has a torch fused kernel)
CASES: dict[str, tuple[dict, type, dict, bool]] = {
    "sgd": (dict(lr=1e-3), torch.optim.SGD, dict(lr=1e-3), True),
    "momentum": (dict(lr=1e-3, momentum=0.9), torch.optim.SGD, dict(lr=1e-3, momentum=0.9), True),
    "nesterov": (
        dict(lr=1e-3, momentum=0.9),
        torch.optim.SGD,
        dict(lr=1e-3, momentum=0.9, nesterov=True),
        True,
    ),
    "adagrad": (dict(lr=1e-2), torch.optim.Adagrad, dict(lr=1e-2), True),
    "adadelta": (dict(), torch.optim.Adadelta, dict(), False),
    "rmsprop": (dict(lr=1e-3), torch.optim.RMSprop, dict(lr=1e-3), False),
    "adam": (dict(lr=1e-3), torch.optim.Adam, dict(lr=1e-3), True),
    "adamw": (dict(lr=1e-3), torch.optim.AdamW, dict(lr=1e-3), True),
    "nadam": (dict(lr=1e-3), torch.optim.NAdam, dict(lr=1e-3), False),
    "radam": (dict(lr=1e-3), torch.optim.RAdam, dict(lr=1e-3), False),
}


def make_params(total: int, n_tensors: int = 20, seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    size = total // n_tensors
    params = []
    for _ in range(n_tensors):
        p = torch.nn.Parameter(torch.randn(size, generator=g))
        p.grad = torch.randn(size, generator=g) * 1e-2
        params.append(p)
    return params


def median_step_ms(
    cls: Callable[..., torch.optim.Optimizer], kwargs: dict, total: int, repeat: int
):
    params = make_params(total)
    opt = cls(params, **kwargs)
    for _ in range(3):  # warm-up: state allocation, first-touch page faults
        opt.step()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def run(sizes: list[int], repeat: int, names: list[str]) -> list[dict]:
    rows = []
    for total in sizes:
        for name in names:
            ours_kw, tcls, tkw, has_fused = CASES[name]
            ocls = optim.get(name)
            row = {"optimizer": name, "params": total}
            row["descentlab"] = median_step_ms(ocls, ours_kw, total, repeat)
            row["torch loop"] = median_step_ms(tcls, {**tkw, "foreach": False}, total, repeat)
            row["torch foreach"] = median_step_ms(tcls, {**tkw, "foreach": True}, total, repeat)
            row["torch fused"] = (
                median_step_ms(tcls, {**tkw, "fused": True}, total, repeat) if has_fused else None
            )
            best = min(v for k, v in row.items() if k.startswith("torch") and v is not None)
            row["vs loop"] = row["descentlab"] / row["torch loop"]
            row["vs best"] = row["descentlab"] / best
            rows.append(row)
            print(_fmt(row), flush=True)
    return rows


HEADER = (
    f"{'optimizer':<10} {'params':>6} {'descentlab':>11} {'torch loop':>11} "
    f"{'torch foreach':>14} {'torch fused':>12} {'vs loop':>8} {'vs best':>8}"
)


def _fmt(row: dict) -> str:
    fused = "-" if row["torch fused"] is None else f"{row['torch fused']:.2f}"
    return (
        f"{row['optimizer']:<10} {row['params'] / 1e6:>5.0f}M {row['descentlab']:>11.2f} "
        f"{row['torch loop']:>11.2f} {row['torch foreach']:>14.2f} {fused:>12} "
        f"{row['vs loop']:>7.2f}x {row['vs best']:>7.2f}x"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7", help="total parameters, comma-separated")
    parser.add_argument("--repeat", type=int, default=15, help="timed steps per measurement")
    parser.add_argument("--optimizers", default=",".join(CASES))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    names = [n.strip() for n in args.optimizers.split(",")]
    print(
        f"median step time in ms, float32, 20 tensors, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(HEADER)
    rows = run(sizes, args.repeat, names)
    worst = max(rows, key=lambda r: r["vs loop"])
    print(
        f"\nslowest relative to torch's for-loop: {worst['optimizer']} at "
        f"{worst['params'] / 1e6:.0f}M, {worst['vs loop']:.2f}x"
    )


if __name__ == "__main__":
    main()
