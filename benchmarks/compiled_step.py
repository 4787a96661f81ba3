"""A whole compiled training step (zero_grad, forward, loss, backward, ``opt.step()``) with
descentlab's Adam against torch's Adam compiled the same way (its update traced into the
graph) and torch's ``fused=True`` Adam run eagerly.

Each arm trains its own copy of the same MLP on the same batch; the arms are timed
round-robin, one step each in turn, so load from other processes hits them alike; the
medians and the ratios to compiled torch Adam are printed. The compile (first steps) is left
out of the timing and reported separately. An arm that fails prints its error.

    python benchmarks/compiled_step.py                    # width 256: ~70k parameters
    python benchmarks/compiled_step.py --width 1024 --repeat 200 --threads 1 --clock cpu
    python benchmarks/compiled_step.py --device cuda --width 1024   # wall clock, synchronized
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import warnings
from collections.abc import Callable

import torch

from descentlab import optim

WARMUP = 3  # compile and the first steps


def _model(width: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(32, width), torch.nn.Tanh(), torch.nn.Linear(width, width),
        torch.nn.Tanh(), torch.nn.Linear(width, 10),
    )  # fmt: skip


def _arms(
    width: int, device: str = "cpu"
) -> dict[str, tuple[Callable[[], object], torch.nn.Module]]:
    """name -> (one training step, its model)."""
    base = _model(width).to(device)
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(1)).to(device)
    y = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(2)).to(device)
    makers: dict[str, tuple[Callable, bool]] = {
        "dl Adam compiled (fused)": (lambda ps: optim.Adam(ps, lr=1e-3), True),
        "dl Adam compiled (eager)": (lambda ps: optim.Adam(ps, lr=1e-3, fused=False), True),
        "torch Adam compiled": (lambda ps: torch.optim.Adam(ps, lr=1e-3), True),
        "torch Adam fused=True eager": (
            lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True),
            False,
        ),
        "dl Adam eager step": (lambda ps: optim.Adam(ps, lr=1e-3), False),
    }
    arms = {}
    for name, (make, compiled) in makers.items():
        model = copy.deepcopy(base)
        opt = make(model.parameters())

        def step(model=model, opt=opt) -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        arms[name] = (torch.compile(step) if compiled else step, model)
    return arms


def run(width: int, repeat: int, clock: Callable[[], float], device: str = "cpu") -> None:
    arms = _arms(width, device)
    n = sum(p.numel() for p in next(iter(arms.values()))[1].parameters())
    threads = torch.get_num_threads()
    where = torch.cuda.get_device_name() if device == "cuda" else f"{threads} threads"
    print(f"MLP 32-{width}-{width}-10: {n:,} parameters, batch 64, {where}")
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    live, first = {}, {}
    for name, (step, _) in arms.items():
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for _ in range(WARMUP):
                    step()
                sync()
        except Exception as exc:  # an arm that cannot run says why
            print(f"  {name:30s} fails: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
            continue
        first[name] = time.perf_counter() - t0
        live[name] = step
    times: dict[str, list[float]] = {name: [] for name in live}
    for _ in range(repeat):
        for name, step in live.items():
            sync()
            t0 = clock()
            step()
            sync()
            times[name].append(clock() - t0)
    ref = statistics.median(times.get("torch Adam compiled", [float("nan")]))
    print(f"  {'arm':30s} {'median step':>12s} {'/ torch compiled':>17s} {'first 3 steps':>14s}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:30s} {med * 1e6:9.0f} us {med / ref:16.2f}x {first[name]:12.1f} s")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=100)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: every arm on the GPU, each step timed by the wall clock between device "
        "synchronizations",
    )
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.exit(2, "compiled_step.py --device cuda: no CUDA device here\n")
    if args.threads:
        torch.set_num_threads(args.threads)
    wall = args.clock == "wall" or args.device == "cuda"
    clock = time.perf_counter if wall else time.process_time
    run(args.width, args.repeat, clock, args.device)


if __name__ == "__main__":
    main()
