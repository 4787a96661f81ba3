"""``step.py --device cuda``: the step of every optimizer with a rule written in the form, on a
CUDA device, through descentlab's generated Triton kernel (its default there), against its eager
backend (torch's foreach kernels) and torch.optim's foreach and fused paths where torch has the
optimizer.

For each size (float32 parameters in 20 tensors) it prints the median time of one step per path
(CUDA events; the paths timed round-robin, one step each in turn), the bytes one step must move
(each array the kernel touches read once, each it writes written once) and the bound they give
at the copy bandwidth measured in the same run (``dst.copy_(src)`` over as many bytes), the
ratios of descentlab's Triton step to torch's paths and to that bound, and the kernels and
host-to-device copies of one step counted by the torch profiler.

Without a CUDA device (or without triton) it stops with one line before any work.
"""

from __future__ import annotations

import functools
import statistics
import sys

import torch

from descentlab import optim
from descentlab.optim import form as FM
from descentlab.optim import gpu

#: optimizers torch has, by registry name: (torch class, has a fused CUDA kernel)
TORCH = {
    "adam": (torch.optim.Adam, True),
    "adamw": (torch.optim.AdamW, True),
    "sgd": (torch.optim.SGD, True),
    "adagrad": (torch.optim.Adagrad, True),
    "adamax": (torch.optim.Adamax, False),
    "nadam": (torch.optim.NAdam, False),
    "radam": (torch.optim.RAdam, False),
    "rmsprop": (torch.optim.RMSprop, False),
    "adadelta": (torch.optim.Adadelta, False),
}
LR = 1e-3


def refuse_without_cuda() -> None:
    """Stop with one line where this mode cannot run."""
    if not torch.cuda.is_available():
        sys.exit("step.py --device cuda: no CUDA device here (torch.cuda.is_available() is False)")
    if not gpu.triton_available():
        sys.exit("step.py --device cuda: triton is not installed (pip install triton)")


def form_optimizers() -> list[str]:
    """Registered optimizers whose chain holds a rule written in the form."""
    probe = [torch.nn.Parameter(torch.zeros(2))]
    return [
        r.name
        for r in optim.records()
        if any(isinstance(x, FM.FormRule) for x in r.factory(probe, fused=False).rule.rules)
    ]


def _params(total: int, n: int = 20) -> list[torch.nn.Parameter]:
    g = torch.Generator(device="cuda").manual_seed(0)
    out = []
    for _ in range(n):
        p = torch.nn.Parameter(torch.randn(total // n, device="cuda", generator=g))
        p.grad = torch.randn(total // n, device="cuda", generator=g) * 1e-2
        out.append(p)
    return out


def _paths(name: str, total: int) -> dict[str, torch.optim.Optimizer]:
    cls = optim.get(name)
    paths = {
        "dl triton": cls(_params(total), lr=LR),
        "dl eager": cls(_params(total), lr=LR, fused=False),
    }
    if name in TORCH:
        tcls, fused = TORCH[name]
        paths["torch foreach"] = tcls(_params(total), lr=LR, foreach=True)
        if fused:
            paths["torch fused"] = tcls(_params(total), lr=LR, fused=True)
    return paths


def _time(fn) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)  # ms


def _launches(opt: torch.optim.Optimizer) -> tuple[int, int]:
    """(kernels, host-to-device copies) of one step, from the torch profiler."""
    acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=acts) as prof:
        opt.step()
        torch.cuda.synchronize()
    kernels = copies = 0
    for e in prof.events():
        if e.device_type != torch.autograd.DeviceType.CUDA:
            continue
        if "Memcpy HtoD" in e.name:
            copies += 1
        elif "Memcpy" not in e.name and "Memset" not in e.name:
            kernels += 1
    return kernels, copies


def _moved(opt: optim.Optimizer, numel: int) -> int:
    """Bytes the Triton step moves: each array read once, each written array written once."""
    group = opt.param_groups[0]
    hyper = {k: v for k, v in group.items() if k != "params"}
    prog = gpu.plan_for(opt, hyper, torch.float32).prog
    return (len(prog.arrays) + len(prog.written)) * numel * 4


def run_cuda(sizes: list[int], repeat: int, names: list[str] | None) -> None:
    refuse_without_cuda()
    names = names or form_optimizers()
    print(f"device: {torch.cuda.get_device_name()}; median ms per step over {repeat} repeats")
    for total in sizes:
        src = torch.randn(total, device="cuda")
        dst = torch.empty_like(src)
        print(f"\n{total / 1e6:g}M float32 parameters in 20 tensors")
        for name in names:
            paths = _paths(name, total)
            for _ in range(3):  # warm-up: kernels compiled, state allocated
                for opt in paths.values():
                    opt.step()
                dst.copy_(src)
            times: dict[str, list[float]] = {k: [] for k in [*paths, "copy"]}
            for _ in range(repeat):
                for k, opt in paths.items():
                    times[k].append(_time(opt.step))
                times["copy"].append(_time(functools.partial(dst.copy_, src)))
            med = {k: statistics.median(v) for k, v in times.items()}
            bandwidth = 2 * total * 4 / (med["copy"] / 1e3)  # bytes/s of a copy
            moved = _moved(paths["dl triton"], total)
            bound = 1e3 * moved / bandwidth
            ours = med["dl triton"]
            cells = [f"{k} {v:.3f}" for k, v in med.items() if k != "copy"]
            ratios = [f"/{k} {ours / med[k]:.2f}x" for k in paths if k != "dl triton"]
            launches = {k: _launches(opt) for k, opt in paths.items()}
            print(
                f"{name:10s} {' | '.join(cells)} | moved {moved / 1e6:.0f} MB, copy "
                f"{bandwidth / 1e9:.0f} GB/s, bound {bound:.3f} ms, triton/bound "
                f"{ours / bound:.2f}x | {' '.join(ratios)}"
            )
            print(
                "           launches per step (kernels, HtoD copies): "
                + ", ".join(f"{k} {kc}+{hc}" for k, (kc, hc) in launches.items()),
                flush=True,
            )
            del paths
