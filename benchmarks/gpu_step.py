"""``step.py --device cuda``: the step of every named optimizer on a CUDA device, descentlab's
default path there (the Triton kernel generated from the chain's form, one launch per group;
eager with torch's foreach kernels where the chain has a rule without a form) against torch's
fastest path where torch has the optimizer (``fused=True`` for Adam, AdamW, SGD and Adagrad,
``foreach=True`` for the others) and against descentlab's own eager backend.

For each size (parameters in 20 tensors) and optimizer it prints, and writes as one JSON object
per line with ``--json``:

- the median time of one step per path (CUDA events around ``--inner`` steps; the paths timed
  round-robin, one sample each in turn, ``--repeat`` samples), ms;
- the bytes one step must move (descentlab's Triton step: each array its kernel touches read
  once, each it writes written once; otherwise parameters, gradients and every state tensor of
  the parameters' size read, parameters and state written) and the bound they give at the
  copy bandwidth measured in the same run, round-robin with the steps (``dst.copy_(src)``);
- the ratios of descentlab's step to torch's path and to that bound;
- the CUDA kernels (and their names) and host-to-device copies of one step, counted by the
  torch profiler (kernels only: not the ``record_function`` ranges it also shows on the device).

Muon, Shampoo and SOAP are not element-local (matrix roots and orthogonalizations: their time
is arithmetic, not bytes): they run on square matrices, at the smallest size only. SAM is given
a closure that restores the gradients.

Without a CUDA device (or without triton) it stops with one line before any work.

Run on its own, it takes ``--schedule`` (a value changed before every step against the
constant step) and ``--state-dtypes`` (low-bit state against float32 state) as
``benchmarks/step.py`` does, and ``--device cpu`` runs any of its modes end to end on CPU
tensors, the Triton kernels under Triton's interpreter (host clock, no profiler counts: a check
of the script before a session on a device, not a measurement):

    python benchmarks/gpu_step.py --sizes 1e7,1e8 --json step.jsonl
    python benchmarks/gpu_step.py --schedule momentum --sizes 1e5,1e7 --blocks 5
    python benchmarks/gpu_step.py --device cpu --sizes 2e4 --optimizers adam,lion --repeat 2
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import gc
import json
import math
import os
import statistics
import sys
import time
import warnings
from typing import Any

import torch

from descentlab import optim
from descentlab.optim import gpu

#: registry name -> (torch class, torch kwargs, torch has a fused CUDA kernel); the same
#: hyperparameters are given to descentlab's optimizer
TORCH: dict[str, tuple[type, dict, bool]] = {
    "sgd": (torch.optim.SGD, dict(lr=1e-3), True),
    "momentum": (torch.optim.SGD, dict(lr=1e-3, momentum=0.9), True),
    "nesterov": (torch.optim.SGD, dict(lr=1e-3, momentum=0.9, nesterov=True), True),
    "adagrad": (torch.optim.Adagrad, dict(lr=1e-2), True),
    "adam": (torch.optim.Adam, dict(lr=1e-3), True),
    "adamw": (torch.optim.AdamW, dict(lr=1e-3), True),
    "adadelta": (torch.optim.Adadelta, dict(), False),
    "rmsprop": (torch.optim.RMSprop, dict(lr=1e-3), False),
    "nadam": (torch.optim.NAdam, dict(lr=1e-3), False),
    "radam": (torch.optim.RAdam, dict(lr=1e-3), False),
    "adamax": (torch.optim.Adamax, dict(lr=2e-3), False),
    "asgd": (torch.optim.ASGD, dict(lr=1e-2), False),
    "rprop": (torch.optim.Rprop, dict(lr=1e-2), False),
}
#: torch kwargs that descentlab's registry names already imply
_IMPLIED = {"momentum": ("momentum", "nesterov"), "nesterov": ("momentum", "nesterov")}
#: not element-local: square matrices, the smallest size only
MATRIX = ("muon", "shampoo", "soap")
N_TENSORS = 20
#: where the steps run: CUDA; the tests run this module on the CPU under Triton's interpreter
#: (times then by the host clock, no profiler counts)
DEVICE = torch.device("cuda")


def refuse_without_cuda(what: str = "step.py --device cuda") -> None:
    """Stop with one line where this mode cannot run."""
    if not torch.cuda.is_available():
        sys.exit(f"{what}: no CUDA device here (torch.cuda.is_available() is False)")
    if not gpu.triton_available():
        sys.exit(f"{what}: triton is not installed (pip install triton)")


def _params(total: int, matrix: bool, dtype: torch.dtype, seed: int) -> list[torch.nn.Parameter]:
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    each = total // N_TENSORS
    side = math.isqrt(each)
    shape = (side, side) if matrix else (each,)
    out = []
    for _ in range(N_TENSORS):
        p = torch.nn.Parameter(torch.randn(shape, device=DEVICE, generator=g).to(dtype))
        p.grad = (torch.randn(shape, device=DEVICE, generator=g) * 1e-2).to(dtype)
        out.append(p)
    return out


def _ours(name: str, params: list, **kw: Any) -> torch.optim.Optimizer:
    hyper = dict(TORCH[name][1]) if name in TORCH else {}
    for k in _IMPLIED.get(name, ()):
        hyper.pop(k, None)
    return optim.get(name)(params, **hyper, **kw)


def _paths(name: str, total: int, dtype: torch.dtype) -> dict[str, torch.optim.Optimizer]:
    """The optimizers timed for ``name``, each over its own copy of the same parameters."""
    matrix = name in MATRIX

    def params():
        return _params(total, matrix, dtype, seed=0)

    paths = {"dl": _ours(name, params())}
    if backend(paths["dl"]) != "eager":
        paths["dl eager"] = _ours(name, params(), fused=False)
    if name in TORCH:
        tcls, tkw, _ = TORCH[name]
        path = {"fused": True} if torch_path(name) == "fused" else {"foreach": True}
        paths["torch"] = tcls(params(), **tkw, **path)
    return paths


@functools.cache
def torch_path(name: str) -> str | None:
    """torch's fastest path for ``name`` here: ``"fused"`` where it has the kernel for this
    device (Adagrad's is CPU-only in some versions), else ``"foreach"``; None: no torch
    namesake."""
    if name not in TORCH:
        return None
    tcls, tkw, fused = TORCH[name]
    if not fused:
        return "foreach"
    w = torch.nn.Parameter(torch.ones(2, device=DEVICE))
    w.grad = torch.ones(2, device=DEVICE)
    try:
        tcls([w], **tkw, fused=True).step()
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        return "foreach"
    return "fused"


def _plan(opt: torch.optim.Optimizer) -> gpu.TritonPlan | None:
    group = opt.param_groups[0]
    hyper = {k: v for k, v in group.items() if k != "params"}
    try:
        return gpu.plan_for(opt, hyper, group["params"][0].dtype)
    except ValueError:
        return None


def backend(opt: torch.optim.Optimizer) -> str:
    """descentlab's default step on the device: ``"triton"`` (the generated kernel),
    ``"torch+triton"`` (rules that are not element-local with torch ops, then the kernel) or
    ``"eager"``."""
    plan = _plan(opt)
    if plan is None:
        return "eager"
    return "triton" if plan.prefix is None else "torch+triton"


def _stepper(opt: torch.optim.Optimizer):
    """``opt.step`` (SAM: with a closure that puts the gradients back, as a loss would)."""
    if not getattr(opt, "needs_closure", False) and type(opt).__name__ != "SAM":
        return opt.step
    params = [p for group in opt.param_groups for p in group["params"]]
    grads = [p.grad.clone() for p in params]

    def closure():
        for p, g in zip(params, grads, strict=True):
            p.grad = g.clone()
        return 0.0

    return lambda: opt.step(closure)


def _timed(fn, inner: int) -> float:
    """Milliseconds per call of ``fn`` over ``inner`` calls, between two CUDA events."""
    if DEVICE.type != "cuda":
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        return 1e3 * (time.perf_counter() - t0) / inner
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(inner):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / inner


def launches(fn) -> tuple[int, int, list[str]]:
    """(CUDA kernels, host-to-device copies, the kernels' names) of one call of ``fn``, from
    the torch profiler (:func:`device_work`)."""
    if DEVICE.type != "cuda":
        return 0, 0, []
    acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=acts) as prof:
        fn()
        torch.cuda.synchronize()
    names, copies = device_work(prof.events())
    return len(names), copies, names


def device_work(events: Any) -> tuple[list[str], int]:
    """The kernels (their names) and host-to-device copies among a profile's events.

    Only kernels count as launches. The device's timeline also holds copies, fills and **user
    annotations**: every ``record_function`` range (torch.optim wraps each ``step`` in one,
    ``Optimizer.step#Lion.step``) appears there as a ``gpu_user_annotation`` event spanning the
    kernels it launched. Counting every device event made the H100 run's one-launch steps read
    2 kernels per step. Where torch gives each event its activity type, that decides; else a
    device event named as a CPU event (an annotation's range) is not a kernel."""
    cuda, cpu = torch.autograd.DeviceType.CUDA, torch.autograd.DeviceType.CPU
    events = list(events)
    host = {e.name for e in events if e.device_type == cpu}
    names, copies = [], 0
    for e in events:
        if e.device_type != cuda:
            continue
        kind = getattr(e, "activity_type", None)
        if kind:
            if kind == "kernel":
                names.append(e.name)
            elif kind == "gpu_memcpy" and "HtoD" in e.name:
                copies += 1
        elif "Memcpy HtoD" in e.name:
            copies += 1
        elif "Memcpy" not in e.name and "Memset" not in e.name and e.name not in host:
            names.append(e.name)
    return names, copies


def distinct(names: list[str], keep: int = 12) -> list[str]:
    """The kernels' names in order of first launch, each with its count where it ran more than
    once (``name x3``), the first ``keep`` of them and how many others: a matrix method's step
    launches thousands of kernels of a dozen kinds."""
    counts = dict(collections.Counter(names))
    out = [n if c == 1 else f"{n} x{c}" for n, c in counts.items()]
    return out[:keep] + ([f"... {len(out) - keep} other kinds"] if len(out) > keep else [])


def moved_bytes(opt: torch.optim.Optimizer) -> int:
    """Bytes one step must move at least (see the module notes)."""
    params = [p for g in opt.param_groups for p in g["params"]]
    plan = _plan(opt)
    if plan is not None and plan.prefix is None:
        prog = plan.prog
        arrays = len(prog.arrays) + len(prog.written)
        return sum(arrays * p.numel() * p.element_size() for p in params)
    total = 0
    for p in params:
        same = [v for v in opt.state[p].values() if torch.is_tensor(v) and v.numel() == p.numel()]
        total += 3 * p.numel() * p.element_size() + 2 * sum(
            v.numel() * v.element_size() for v in same
        )
    return total


def measure(
    name: str,
    total: int,
    repeat: int,
    inner: int,
    dtype: torch.dtype = torch.float32,
    count: bool = True,
) -> dict[str, Any]:
    """One optimizer at one size: medians, bound, ratios, launches (see the module notes;
    ``count``: launches counted, else None -- they do not depend on the size)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the CPU backends' announcements at construction
        paths = _paths(name, total, dtype)
    steps = {k: _stepper(opt) for k, opt in paths.items()}
    numel = sum(p.numel() for g in paths["dl"].param_groups for p in g["params"])
    src = torch.randn(numel, device=DEVICE).to(dtype)
    dst = torch.empty_like(src)

    def copy() -> None:
        dst.copy_(src)

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")  # the eager fallback's announcement: in the row
        for fn in steps.values():  # compiles, allocates state
            fn()
        second = [_timed(fn, 1) for fn in steps.values()]
        slow = max(second) > 200.0  # a matrix method's roots: few samples
        n_inner, n_repeat = (1, 3) if slow else (inner, repeat)
        for _ in range(0 if slow else 2):
            for fn in steps.values():
                fn()
        times: dict[str, list[float]] = {k: [] for k in [*steps, "copy"]}
        for _ in range(n_repeat):
            for k, fn in steps.items():
                times[k].append(_timed(fn, n_inner))
            times["copy"].append(_timed(copy, n_inner))
        counts = {k: launches(fn) for k, fn in steps.items()} if count else {}
    med = {k: statistics.median(v) for k, v in times.items()}
    bandwidth = 2 * numel * src.element_size() / (med["copy"] / 1e3)  # bytes/s
    moved = moved_bytes(paths["dl"])
    bound = 1e3 * moved / bandwidth
    row = {
        "optimizer": name,
        "size": numel,
        "dtype": str(dtype).removeprefix("torch."),
        "shape": "matrix" if name in MATRIX else "vector",
        "backend": backend(paths["dl"]),
        "torch_path": torch_path(name),
        "ms": med,
        "samples": n_repeat,
        "moved_mb": moved / 1e6,
        "copy_gb_s": bandwidth / 1e9,
        "bound_ms": bound,
        "dl_over_bound": med["dl"] / bound,
        "dl_over_torch": med["dl"] / med["torch"] if "torch" in med else None,
        "dl_over_eager": med["dl"] / med["dl eager"] if "dl eager" in med else None,
        "launches": {
            k: {"kernels": c[0], "htod": c[1], "names": distinct(c[2])} for k, c in counts.items()
        }
        or None,
        "announced": sorted({str(w.message) for w in said if "descentlab" in str(w.message)}),
    }
    return row


def _free() -> None:
    gc.collect()
    if DEVICE.type == "cuda":
        torch.cuda.empty_cache()


def _line(r: dict[str, Any]) -> str:
    cells = " | ".join(f"{k} {v:.3f}" for k, v in r["ms"].items() if k != "copy")
    ratios = []
    if r["dl_over_torch"] is not None:
        ratios.append(f"dl/torch {r['torch_path']} {r['dl_over_torch']:.2f}x")
    if r["dl_over_eager"] is not None:
        ratios.append(f"dl/eager {r['dl_over_eager']:.2f}x")
    line = (
        f"{r['optimizer']:9s} [{r['backend']}] {cells} ms | moved {r['moved_mb']:.0f} MB, copy "
        f"{r['copy_gb_s']:.0f} GB/s, bound {r['bound_ms']:.3f} ms, dl/bound "
        f"{r['dl_over_bound']:.2f}x | {' '.join(ratios)}"
    )
    if r["launches"]:
        kernels = ", ".join(f"{k} {v['kernels']}+{v['htod']}" for k, v in r["launches"].items())
        line += f"\n          launches per step (kernels+HtoD copies): {kernels}"
    for said in r["announced"]:
        line += f"\n          announced: {said}"
    return line


def _device_name() -> str:
    return torch.cuda.get_device_name() if DEVICE.type == "cuda" else str(DEVICE)


def run_cuda(
    sizes: list[int],
    repeat: int,
    names: list[str] | None,
    *,
    inner: int = 5,
    dtype: torch.dtype = torch.float32,
    json_path: str | None = None,
) -> list[dict[str, Any]]:
    """Every optimizer in ``names`` (default: every registered one) at every size."""
    if DEVICE.type == "cuda":
        refuse_without_cuda()
    names = names or [r.name for r in optim.records()]
    unknown = sorted(set(names) - {r.name for r in optim.records()})
    if unknown:
        sys.exit(f"step.py --device cuda: unknown optimizer(s) {', '.join(unknown)}")
    print(
        f"device: {_device_name()}; torch {torch.__version__}; median ms per step "
        f"over {repeat} round-robin samples of {inner} steps; {dtype}",
        flush=True,
    )
    rows = []
    out = open(json_path, "a") if json_path else None  # noqa: SIM115 - one line per result
    try:
        for i, total in enumerate(sizes):
            print(f"\n{total / 1e6:g}M parameters in {N_TENSORS} tensors", flush=True)
            for name in names:
                if name in MATRIX and i > 0:
                    continue
                try:
                    row = measure(name, total, repeat, inner, dtype, count=i == 0)
                except Exception as exc:  # one optimizer's failure is reported, not fatal
                    row = {
                        "optimizer": name,
                        "size": total,
                        "error": f"{type(exc).__name__}: {exc}",
                    }
                    print(f"{name:9s} FAILED {row['error'][:300]}", flush=True)
                else:
                    print(_line(row), flush=True)
                _free()  # this optimizer's tensors, before the next one's
                rows.append(row)
                if out is not None:
                    out.write(json.dumps(row) + "\n")
                    out.flush()
    finally:
        if out is not None:
            out.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                    help="cpu: CPU tensors, the kernels under Triton's interpreter")  # fmt: skip
    ap.add_argument("--sizes", default="1e7,1e8", help="total parameters, comma-separated")
    ap.add_argument("--optimizers", default=None, help="comma-separated (default: all)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--inner", type=int, default=5, help="steps per timed sample")
    ap.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    ap.add_argument("--schedule", choices=("lr", "momentum"), default=None)
    ap.add_argument("--blocks", type=int, default=0, help="with --schedule: as step.py's")
    ap.add_argument("--state-dtypes", default=None, help="e.g. int8,bfloat16 (as step.py's)")
    ap.add_argument("--json", metavar="PATH", help="append one JSON line per result")
    args = ap.parse_args(argv)
    global DEVICE
    DEVICE = torch.device(args.device)
    route: Any = contextlib.nullcontext()
    if args.device == "cpu":  # before triton is imported: its jit reads it then
        os.environ["TRITON_INTERPRET"] = "1"
        route = gpu.interpret_on_cpu()
    else:
        refuse_without_cuda("gpu_step.py")
    sizes = [int(float(x)) for x in args.sizes.split(",")]
    names = args.optimizers and [n.strip() for n in args.optimizers.split(",")]
    with route:
        if not (args.schedule or args.state_dtypes):
            run_cuda(sizes, args.repeat, names, inner=args.inner,
                     dtype=getattr(torch, args.dtype), json_path=args.json)  # fmt: skip
            return
        import step  # (the CPU benchmark's modes, on this device)

        names = names or ["momentum", "nesterov", "lion", "adam", "adamw"]
        if args.schedule:
            rows = step.run_schedule(sizes, args.repeat, names, args.schedule, args.blocks,
                                     device=args.device)  # fmt: skip
        else:
            rows = step.run_state(sizes, args.repeat, names, args.state_dtypes.split(","),
                                  device=args.device)  # fmt: skip
    if args.json:
        with open(args.json, "a") as fh:
            fh.writelines(json.dumps({**r, "device": _device_name()}) + "\n" for r in rows)


if __name__ == "__main__":
    main()
