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

``--first-steps`` measures the compile instead: each compiled arm's first three steps in a
process of its own (in one process the arm that runs first pays for loading and warming the
compiler, and the later arms reuse the forward and backward graphs it compiled), with empty
caches (a fresh ``TORCHINDUCTOR_CACHE_DIR`` and kernel cache) and then warm (a second process
with the same folders); the arms' order rotated from one repeat to the next. Each line: wall
seconds, CPU seconds of the process and of the compiler processes it started, graphs
compiled, graph breaks, recompiles, the wall seconds inside dynamo's compile (the whole of a
frame's compile: trace, AOT autograd, Inductor) and within it Inductor's C++ compiles
(``torch._dynamo.utils.compilation_time_metrics``):

    python benchmarks/compiled_step.py --first-steps --repeat 3
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


def run(
    width: int,
    repeat: int,
    clock: Callable[[], float],
    device: str = "cpu",
    json_path: str | None = None,
) -> None:
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
    print(f"  {'arm':30s} {'median step':>12s} {'/ torch compiled':>17s} {'first 3 steps*':>14s}")
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:30s} {med * 1e6:9.0f} us {med / ref:16.2f}x {first[name]:12.1f} s")
        rows.append(dict(arm=name, params=n, device=where, step_us=med * 1e6,
                         over_torch_compiled=med / ref, first_steps_s=first[name]))  # fmt: skip
    if json_path:
        import json

        with open(json_path, "a") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    print(
        "  * in this process, after the arms above it: the first compiled arm also pays for "
        "loading the compiler and the model's forward and backward graphs the later arms "
        "reuse; compare compiles with --first-steps"
    )


COMPILED_ARMS = ("torch Adam compiled", "dl Adam compiled (fused)", "dl Adam compiled (eager)")

_FIRST = """
import json, resource, sys, time, warnings
import torch
sys.path.insert(0, sys.argv[1])
import compiled_step
from torch._dynamo.utils import compilation_time_metrics as spent, counters

def cpu():
    a, b = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

step, _ = compiled_step._arms(int(sys.argv[3]))[sys.argv[2]]
c0, w0 = cpu(), time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for _ in range(compiled_step.WARMUP):
        step()
phase = {k: sum(v) for k, v in spent.items()}
print(json.dumps({
    "wall": time.perf_counter() - w0, "cpu": cpu() - c0,
    "graphs": counters["stats"]["unique_graphs"],
    "breaks": sum(counters["graph_break"].values()),
    "recompiles": counters["recompiles"]["total"] if "total" in counters["recompiles"]
    else sum(counters["recompiles"].values()),
    "dynamo": phase.get("_compile.compile_inner", 0.0),
    "cxx": phase.get("compile_file", 0.0),
}))
"""


def first_steps(width: int, repeat: int) -> None:
    """Each compiled arm's first three steps in its own process, with empty caches and then
    warm ones, the arms' order rotated per repeat (medians printed)."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    here = os.path.dirname(os.path.abspath(__file__))
    rows: dict[tuple[str, str], list[dict]] = {}
    order = list(COMPILED_ARMS)
    for r in range(repeat):
        for arm in order[r % len(order) :] + order[: r % len(order)]:
            with tempfile.TemporaryDirectory() as tmp:
                env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": os.path.join(tmp, "inductor"),
                       "DESCENTLAB_CACHE": os.path.join(tmp, "descentlab"),
                       "TRITON_CACHE_DIR": os.path.join(tmp, "triton")}  # fmt: skip
                for cache in ("empty", "warm"):
                    proc = subprocess.run(
                        [sys.executable, "-c", _FIRST, here, arm, str(width)],
                        env=env, capture_output=True, text=True, check=False,
                    )  # fmt: skip
                    if proc.returncode:
                        print(f"  {arm} ({cache}) failed: {proc.stderr.strip()[-300:]}")
                        continue
                    out = json.loads(proc.stdout.strip().splitlines()[-1])
                    rows.setdefault((arm, cache), []).append(out)
    print(f"first {WARMUP} steps of each compiled arm, each in a fresh process "
          f"(MLP width {width}; median of {repeat})")  # fmt: skip
    print(f"  {'arm':28s} {'caches':6s} {'wall s':>7s} {'CPU s':>7s} {'/torch':>7s} "
          f"{'graphs':>6s} {'breaks':>6s} {'recomp':>6s} {'dynamo s':>8s} "
          f"{'C++ s':>7s}")  # fmt: skip
    for cache in ("empty", "warm"):
        ref = rows.get(("torch Adam compiled", cache))
        ref_cpu = statistics.median(x["cpu"] for x in ref) if ref else float("nan")
        for arm in COMPILED_ARMS:
            got = rows.get((arm, cache))
            if not got:
                continue
            med = {k: statistics.median(x[k] for x in got) for k in got[0]}
            print(f"  {arm:28s} {cache:6s} {med['wall']:7.1f} {med['cpu']:7.1f} "
                  f"{med['cpu'] / ref_cpu:6.2f}x {med['graphs']:6.0f} {med['breaks']:6.0f} "
                  f"{med['recompiles']:6.0f} {med['dynamo']:8.1f} {med['cxx']:7.1f}")  # fmt: skip


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
    ap.add_argument("--json", metavar="PATH", help="append one JSON line per arm")
    ap.add_argument(
        "--first-steps",
        action="store_true",
        help="measure the compile: each compiled arm's first steps in a fresh process, with "
        "empty and then warm caches (--repeat processes per arm and cache; default 3)",
    )
    args = ap.parse_args(argv)
    if args.first_steps:
        first_steps(args.width, 3 if args.repeat == 100 else args.repeat)
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.exit(2, "compiled_step.py --device cuda: no CUDA device here\n")
    if args.threads:
        torch.set_num_threads(args.threads)
    wall = args.clock == "wall" or args.device == "cuda"
    clock = time.perf_counter if wall else time.process_time
    run(args.width, args.repeat, clock, args.device, args.json)


if __name__ == "__main__":
    main()
