"""Optimizer step time: descentlab's fused and eager backends vs torch.optim's paths.

For every registered optimizer with a fused step (drawn from the registry: one added to
descentlab is timed with no table to edit), at each size (float32 parameters split into 20
tensors), prints the median time of one ``step()`` of descentlab's fused backend (its
default), its eager backend, and, where torch has the optimizer (:data:`TORCH_TWINS`),
torch.optim's for-loop, foreach and (where it exists) fused paths; the ratios of descentlab's
to torch's best path and of descentlab's default to torch's for-loop; and the ratio to the
"axpy-eq" time measured in the same process: the bytes one step must move (each parameter,
gradient and state entry read once, parameter and state written once) at the rate torch's
in-place ``torch._foreach_add_(p, g, alpha=a)`` streams the same arrays. It is a reference,
not a bound: a fused kernel streams memory faster than torch's foreach add on some CPUs
(0.61-0.94x of it at 10M parameters on an Intel Ice Lake Xeon), so fused/axpy below 1 is not
an error. All paths are timed round-robin, one step each in turn, each path first in turn
(what runs before a step, and so what it left in the caches, rotates), so load from other
processes hits them alike.

Then it prints the compile overhead of the fused backend: the first step of each optimizer in
this process with an empty kernel cache (code generation + C++ compilation), and the first
step of a second process that finds the kernels in the disk cache.

    python benchmarks/step.py                 # 1M and 10M parameters
    python benchmarks/step.py --sizes 1e7 --repeat 30 --threads 1

``--schedule lr`` (or ``momentum``: betas where the optimizer has them, else momentum) times
instead a step whose value changes before every step, as torch's LRScheduler changes ``lr``
(a cosine from the value down to 1 %), against descentlab's step at a constant value -- the
same optimizer, its steps taken in turn with and without a change -- and torch's fastest path
(fused where it exists, else foreach) under the same schedule:

    python benchmarks/step.py --schedule lr --sizes 1e5,1e6,1e7 --threads 1 --clock cpu

``--blocks 10`` runs each arm's steps in blocks of 10 (after one untimed step, so the step before
a timed one is of the same kind in every arm), the arms' order rotated block by block.

``--device cuda`` times every named optimizer's step on the GPU instead (benchmarks/gpu_step.py:
descentlab's default there -- the generated Triton kernel -- against torch's fused path where it
has one and foreach otherwise, bytes moved against the copy bandwidth measured in the same run,
kernel launches per step from the torch profiler); it stops with one line without a device:

    python benchmarks/step.py --device cuda --sizes 1e7,1e8 --json results.jsonl

``--groups`` times instead the steady step of the same parameters in param groups against one
group: ``hf`` the two groups of Hugging Face's Trainer (the weights, the even tensors; the
biases and norms, the odd ones; one weight decay, as the Trainer's default makes them) and
``layers`` a group per layer (10 layers of two tensors, the lr 0.9x the layer's before:
layer-wise lr decay), each optimizer's steps in turn (``--blocks`` as with ``--schedule``):

    python benchmarks/step.py --groups --sizes 1e5,1e6 --threads 1 --clock cpu --blocks 10

(with ``--schedule lr`` every group's lr changes before every step, as under torch's LRScheduler).

``--aa`` adds a second optimizer of descentlab's fused path and of torch's fused path (its
foreach path where it has no fused one), stepping the same tensors in the same rotation: each
pair's ratio (A/A) is how far two identical steps differ in this run, and a fused/torch ratio
within it of 1 is no difference (the A/A arms are left out of torch's best):

    python benchmarks/step.py --aa --optimizers sgd --sizes 1e7 --threads 1 --clock cpu \
        --no-compile --repeat 400

``--against adamw`` puts torch's AdamW paths beside each optimizer torch has no twin of (your
own, by file path): its torch columns and ratios are then torch's AdamW's:

    python benchmarks/step.py --optimizers examples/optimizers/lamb.py:LAMB --against adamw \\
        --sizes 1e6,1e7 --threads 1 --clock cpu --no-compile --repeat 30

``--late`` gives one of the 20 tensors no gradient at the first step, on every path, so its
step count stays one behind the others' (a layer unfrozen later, a parameter unused at first):

    python benchmarks/step.py --late --sizes 1e5,1e6 --threads 1 --clock cpu --no-compile

``--adafactor`` times Adafactor instead (it has no fused step: a compiled kernel of its own,
:mod:`descentlab.optim.adafactor_native`): descentlab's default step and its torch-op step
(``fused=False``) against torch's foreach and for-loop ``torch.optim.Adafactor``, on 20
matrices (the factored second moment) and on 20 vectors, the arms' order rotated each repeat:

    python benchmarks/step.py --adafactor --sizes 1e5,1e6,1e7 --threads 1 --clock cpu --repeat 40

``--state-dtypes int8,bfloat16`` times the fused step with low-bit optimizer state
(:mod:`descentlab.optim.lowbit`) against the same optimizer's float32-state fused step, and
prints the ratio of state memory:

    python benchmarks/step.py --optimizers adamw --state-dtypes int8,bfloat16 --sizes 1e7 \\
        --threads 1 --clock cpu --repeat 20
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial

import torch

from descentlab import optim
from descentlab.optim.program import ChainProgram

#: descentlab's optimizers that torch has too, and how torch's is built: name ->
#: (descentlab kwargs, torch class, torch kwargs, has a torch fused kernel). (Torch's side of
#: a comparison: it cannot come from descentlab's registry.)
TORCH_TWINS: dict[str, tuple[dict, type, dict, bool]] = {
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
    "adamax": (dict(lr=2e-3), torch.optim.Adamax, dict(lr=2e-3), False),
    "asgd": (dict(lr=1e-2), torch.optim.ASGD, dict(lr=1e-2), False),
    "rprop": (dict(lr=1e-2), torch.optim.Rprop, dict(lr=1e-2), False),
}

PATHS = ["dl fused", "dl eager", "torch loop", "torch foreach", "torch fused"]


def fused_names() -> tuple[list[str], dict[str, str]]:
    """The registered optimizers whose fused step runs on plain float32 parameters, and the
    others with the reason each gives (SAM's step needs a closure; Adafactor, Muon... are
    written as torch code)."""
    names, others = [], {}
    for r in optim.records():
        params = make_params(40, n_tensors=2)
        try:
            r.factory(params, fused=True).step()
        except (ValueError, TypeError) as exc:
            others[r.name] = str(exc).splitlines()[0]
            continue
        names.append(r.name)
    return names, others


def make_params(
    total: int, n_tensors: int = 20, seed: int = 0, device: str = "cpu"
) -> list[torch.nn.Parameter]:
    """``n_tensors`` float32 parameters of ``total // n_tensors`` elements with gradients (drawn
    on the CPU, the same numbers on every device)."""
    g = torch.Generator().manual_seed(seed)
    size = total // n_tensors
    params = []
    for _ in range(n_tensors):
        p = torch.nn.Parameter(torch.randn(size, generator=g).to(device))
        p.grad = (torch.randn(size, generator=g) * 1e-2).to(device)
        params.append(p)
    return params


CLOCK = time.perf_counter


def _timed(fn: Callable[[], object]) -> float:
    t0 = CLOCK()
    fn()
    return CLOCK() - t0


def _timed_cuda(fn: Callable[[], object]) -> float:
    """One call of ``fn`` between two device synchronizations (host and device time)."""
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


#: the path added by ``--prefetch``: descentlab's fused step with the other software prefetch
#: choice than this CPU's (:func:`descentlab.optim.fused.software_prefetch`)
OTHER = "dl fused other prefetch"
AA = " (A/A)"  # the suffix of an A/A arm: the same path's second optimizer


def _other_prefetch(opt: optim.Optimizer) -> None:
    """Build ``opt``'s kernels with the software prefetch choice this CPU does not make (its
    first step, taken here)."""
    from descentlab.optim import fused

    old = os.environ.get("DESCENTLAB_PREFETCH")
    os.environ["DESCENTLAB_PREFETCH"] = "0" if fused.software_prefetch() else "1"
    try:
        with torch.no_grad():
            opt.step()
    finally:
        if old is None:
            del os.environ["DESCENTLAB_PREFETCH"]
        else:
            os.environ["DESCENTLAB_PREFETCH"] = old


def _optimizers(
    name: str, total: int, prefetch: bool = False, aa: bool = False, against: str | None = None
) -> dict[str, tuple[torch.optim.Optimizer, list]]:
    ours_kw, tcls, tkw, has_fused = TORCH_TWINS.get(name, ({}, None, {}, False))
    if tcls is None and against:  # torch has no twin: its paths of ``against`` instead
        _, tcls, tkw, has_fused = TORCH_TWINS[against]
    ocls = optim.get(name)
    opts = {}
    # every path steps the same parameters and gradients: where two tensors lie relative to
    # each other changes a streaming step by up to 40 % on a Zen 4 (measured: plain SGD at
    # 10M, 2.1 to 3.3 ms for torch's fused step and descentlab's alike), so separate tensors
    # per path made their ratio swing with the allocator; each path's state stays its own
    params = make_params(total)
    for path in PATHS:
        if (path == "torch fused" and not has_fused) or (path.startswith("torch") and not tcls):
            continue
        if path == "dl fused":
            opt = ocls(params, **ours_kw, fused=True)
        elif path == "dl eager":
            opt = ocls(params, **ours_kw, fused=False)
        elif path == "torch loop":
            opt = tcls(params, **tkw, foreach=False)
        elif path == "torch foreach":
            opt = tcls(params, **tkw, foreach=True)
        else:
            opt = tcls(params, **tkw, fused=True)
        opts[path] = (opt, params)
    if prefetch:
        opt = ocls(params, **ours_kw, fused=True)
        _other_prefetch(opt)
        opts[OTHER] = (opt, params)
    if aa:
        opts["dl fused" + AA] = (ocls(params, **ours_kw, fused=True), params)
        if tcls:
            kind = {"fused": True} if has_fused else {"foreach": True}
            opts[_torch_aa(has_fused)] = (tcls(params, **tkw, **kind), params)
    return opts


def _torch_aa(has_fused: bool) -> str:
    """The A/A arm of torch's path: its fused one, else its foreach one."""
    return ("torch fused" if has_fused else "torch foreach") + AA


def bytes_per_step(opt: optim.Optimizer, numel: int) -> int:
    """Bytes the fused plan moves: every array read once, parameter and state written once
    -- in each pass, where a per-tensor total takes a first pass of its own (LAMB, MARS)."""
    (plan,) = [p for p in opt._fused.plans.values() if p is not None]
    kernel = getattr(plan, "c", None) or plan.builder  # (the C kernel; .builder before 8ffae8b)
    program = getattr(kernel, "program", None)
    if program is None:  # (before the first passes were counted)
        return (len(plan.arrays) + 1 + len(kernel.written)) * numel * 4
    passes = [q for pr in program.prepares for q in pr.how.get("passes", ())]
    return (arrays_moved(program, 1) + sum(arrays_moved(q, 0) for q in passes)) * numel * 4


def arrays_moved(program: ChainProgram, writes_p: int) -> int:
    """Arrays one pass of ``program`` reads (those its statements use: a load the compiler
    drops moves nothing) and writes (its stores, and ``writes_p``: the parameter)."""
    used = program.used()
    reads = sum(1 for st in program.stmts if st.kind == "load" and st.out in used)
    return reads + sum(1 for st in program.stmts if st.kind == "store") + writes_p


def run(
    sizes: list[int],
    repeat: int,
    names: list[str],
    late: bool = False,
    prefetch: bool = False,
    aa: bool = False,
    against: str | None = None,
) -> list[dict]:
    rows = []
    alone = [n for n in names if n not in TORCH_TWINS]
    if against and alone:
        print(f"torch's columns of {', '.join(alone)}: torch's {against} (--against)")
    for total in sizes:
        print(
            f"\n{total / 1e6:g}M float32 parameters in 20 tensors (median ms per step"
            + ("; one tensor without a gradient at the first step)" if late else ")")
        )
        print(HEADER)
        for name in names:
            opts = _optimizers(name, total, prefetch, aa, against)
            bw_params = opts["dl eager"][1]
            grads = [p.grad for p in bw_params]
            with torch.no_grad():
                for i in range(3):  # warm-up: state allocation, first-touch page faults
                    if late:  # its step count stays one behind (a layer unfrozen later)
                        bw_params[5].grad = None if i == 0 else grads[5]
                    for opt, _ in opts.values():
                        opt.step()
                    torch._foreach_add_(bw_params, grads, alpha=1e-12)
            times: dict[str, list[float]] = {k: [] for k in [*opts, "triad"]}
            order = list(opts)
            for i in range(repeat):  # each path first in turn: none always follows the same
                for path in order[i % len(order) :] + order[: i % len(order)]:
                    times[path].append(_timed(opts[path][0].step))
                with torch.no_grad():
                    t0 = CLOCK()
                    torch._foreach_add_(bw_params, grads, alpha=1e-12)
                    times["triad"].append(CLOCK() - t0)
            med = {k: 1e3 * statistics.median(v) for k, v in times.items()}
            numel = sum(p.numel() for p in bw_params)
            bandwidth = 12 * numel / (med["triad"] / 1e3)  # bytes/s of p += a g
            moved = bytes_per_step(opts["dl fused"][0], numel)
            row = {"optimizer": name, "params": total, **{k: med.get(k) for k in PATHS}}
            torch_med = [v for k, v in med.items() if k.startswith("torch") and AA not in k]
            best = min(torch_med, default=None)
            row["fused/best"] = best and med["dl fused"] / best
            row["eager/best"] = best and med["dl eager"] / best
            row["default/loop"] = best and med["dl fused"] / med["torch loop"]
            row["axpy-eq"] = 1e3 * moved / bandwidth  # the step's bytes at foreach add's rate
            row["fused/axpy"] = med["dl fused"] / row["axpy-eq"]
            row["GB/s"] = bandwidth / 1e9
            rows.append(row)
            print(_fmt(row), flush=True)
            if aa:
                pairs = [(k[: -len(AA)], k) for k in med if k.endswith(AA)]
                row["A/A"] = {a: med[a] / med[b] for a, b in pairs}
                print(
                    f"{'':<9} A/A (same path, second optimizer): "
                    + ", ".join(f"{a} {r:.3f}" for a, r in row["A/A"].items()),
                    flush=True,
                )
            if prefetch:
                row["other prefetch/fused"] = med[OTHER] / med["dl fused"]
                best_t = best
                print(
                    f"{'':<9} {OTHER}: {med[OTHER]:.2f} ms, "
                    f"{row['other prefetch/fused']:.3f}x dl fused"
                    + (f", {med[OTHER] / best_t:.2f}x torch's best" if best_t else ""),
                    flush=True,
                )
            del opts
    return rows


def state_bytes(opt: torch.optim.Optimizer) -> int:
    """Bytes of the optimizer's state tensors (the step counts left out)."""
    return sum(
        v.numel() * v.element_size()
        for st in opt.state.values()
        for k, v in st.items()
        if k != "step" and isinstance(v, torch.Tensor)
    )


def run_state(
    sizes: list[int], repeat: int, names: list[str], dtypes: list[str], device: str = "cpu"
) -> list[dict]:
    """The fused step with low-bit state (``state_dtype``) against the same optimizer's fused
    float32 step, round-robin: medians, their ratio, and the ratio of state memory. On
    ``cuda``: the Triton steps, each timed between device synchronizations. Returns a row per
    optimizer, size and state (``ms``, ``over_f32``, ``memory``)."""
    timed = _timed_cuda if device == "cuda" else _timed
    rows = []
    for total in sizes:
        print(
            f"\n{total / 1e6:g}M float32 parameters in 20 tensors on {device} "
            "(median ms per fused step)"
        )
        print(f"{'optimizer':<12}{'state':>10}{'ms':>9}{'/f32':>7}{'memory/f32':>12}")
        for name in names:
            ours_kw = TORCH_TWINS[name][0] if name in TORCH_TWINS else {}
            arms = {}
            params = make_params(total)  # shared: see _optimizers
            if device != "cpu":
                for p in params:
                    p.data, p.grad = p.data.to(device), p.grad.to(device)
            for sd in [None, *dtypes]:
                arms[sd] = optim.get(name)(params, **ours_kw, fused=True, state_dtype=sd)
            with torch.no_grad():
                for _ in range(3):
                    for opt in arms.values():
                        opt.step()
            times: dict = {k: [] for k in arms}
            for _ in range(repeat):
                for sd, opt in arms.items():
                    times[sd].append(timed(opt.step))
            base = statistics.median(times[None])
            mem = state_bytes(arms[None])
            for sd in arms:
                med = statistics.median(times[sd])
                memory = state_bytes(arms[sd]) / mem
                print(f"{name:<12}{sd or 'float32':>10}{1e3 * med:>9.2f}{med / base:>7.2f}"
                      f"{memory:>12.3f}", flush=True)  # fmt: skip
                rows.append(dict(params=total, optimizer=name, state=sd or "float32",
                                 ms=1e3 * med, over_f32=med / base, memory=memory))  # fmt: skip
            del arms
    return rows


def _scheduled(group: dict, key: str, base: object, i: int) -> None:
    """Set ``group[key]`` to its value at step ``i`` of a 100-step cosine (lr: base -> 1 %;
    betas/momentum: beta1 or momentum between base and 0.8 base)."""
    c = (1 + math.cos(math.pi * (i % 100) / 100)) / 2
    if key == "lr":
        group["lr"] = base * (0.01 + 0.99 * c)
    elif key == "betas":  # beta1 moves; the others (beta2, Adan's beta3) are kept
        group["betas"] = (base[0] * (0.8 + 0.2 * c), *base[1:])
    else:
        group["momentum"] = base * (0.8 + 0.2 * c)


def _schedule_groups(
    key: str, bases: dict[str, list], arm: str, opt: torch.optim.Optimizer, i: int
) -> None:
    """Set ``key`` of each group of ``arm``'s optimizer to its value at step ``i`` from the
    group's base in ``bases`` (:func:`_scheduled`; an arm not there stays constant)."""
    if arm in bases:
        for group, base in zip(opt.param_groups, bases[arm], strict=True):
            _scheduled(group, key, base, i)


def _rotated(
    arms: dict[str, torch.optim.Optimizer],
    repeat: int,
    blocks: int,
    timed: Callable[[Callable[[], object]], float],
    before: Callable[[str, torch.optim.Optimizer, int], None] | None = None,
) -> dict[str, list[float]]:
    """Each arm's step times (``repeat`` of them after 3 rounds of warm-up), the arms' steps in
    turn: one each (``blocks`` 0), or in blocks of ``blocks`` timed steps, the first step of a
    block untimed (so the step before a timed one is of the same arm); the arms' order rotated
    each round. ``before(arm, optimizer, i)`` runs before its ``i``-th step (a schedule)."""
    times: dict[str, list[float]] = {k: [] for k in arms}
    per, n = blocks or 1, len(arms)
    with torch.no_grad():
        for i in range(3 + math.ceil(repeat / per)):
            for k in [*arms][i % n :] + [*arms][: i % n]:  # each arm first in turn
                opt = arms[k]
                for j in range(per + (blocks > 0)):
                    if before is not None:
                        before(k, opt, i * (per + 1) + j)
                    dt = timed(opt.step)
                    if i >= 3 and (j > 0 or not blocks):
                        times[k].append(dt)
    return times


def run_schedule(
    sizes: list[int],
    repeat: int,
    names: list[str],
    what: str,
    blocks: int = 0,
    device: str = "cpu",
) -> list[dict]:
    """Step time with a value changed before every step (see the module docstring);
    ``blocks``: each arm's steps in blocks of this many timed steps (0: one step each in
    turn); ``device="cuda"``: each step timed between device synchronizations. Returns a row
    per optimizer and size (median ms: ``const``, ``sched``, ``torch`` or None)."""
    timed = _timed_cuda if device == "cuda" else _timed
    print(
        f"\n{what} changed before every step on {device} (median ms per step; dl = descentlab's "
        "default backend, torch = its fused path where it has one, else foreach)"
    )
    print(
        f"{'optimizer':<9} {'params':>7} {'key':>8} {'dl const':>9} {'dl sched':>9} "
        f"{'sched/const':>11} {'torch sched':>11} {'dl/torch':>8}"
    )
    rows = []
    for total in sizes:
        for name in names:
            ours_kw, tcls, tkw, has_fused = TORCH_TWINS.get(name, ({}, None, {}, False))
            ocls = optim.get(name)
            probe = ocls(make_params(20), **ours_kw)
            hyper = probe.param_groups[0]
            if what == "lr":
                key = "lr"
            elif "betas" in hyper:
                key = "betas"
            elif hyper.get("momentum", 0):
                key = "momentum"
            else:
                continue
            tkind = dict(fused=True) if has_fused else dict(foreach=True)
            params = make_params(total, device=device)  # shared: see _optimizers
            # one descentlab optimizer takes both kinds of step, in turn: the same state
            # tensors, so the two differ only in the value changed before a scheduled step
            ours = ocls(params, **ours_kw)
            arms = {"const": ours, "sched": ours}
            if tcls is not None:
                arms["torch"] = tcls(params, **tkw, **tkind)
            bases = {k: [g[key] for g in o.param_groups] for k, o in arms.items() if k != "const"}
            times = _rotated(arms, repeat, blocks, timed, partial(_schedule_groups, key, bases))
            med = {k: 1e3 * statistics.median(v) for k, v in times.items()}
            t = med.get("torch")
            print(
                f"{name:<9} {total / 1e6:>6.1f}M {key:>8} {med['const']:>9.3f} "
                f"{med['sched']:>9.3f} {med['sched'] / med['const']:>10.3f}x "
                + (f"{t:>11.3f} {med['sched'] / t:>7.2f}x" if t else f"{'-':>11} {'-':>8}"),
                flush=True,
            )
            rows.append(dict(params=total, optimizer=name, key=key, const=med["const"],
                             sched=med["sched"], torch=t))  # fmt: skip
            del arms
    return rows


def groupings(params: list, hyper: dict) -> dict[str, list[dict]]:
    """``--groups``' arms: the 20 tensors in one group; in the two groups of Hugging Face's
    Trainer (the weights, the even tensors; the biases and norms, the odd ones), both at the
    optimizer's weight decay as the Trainer's default ``weight_decay=0.0`` makes them alike
    (where the two decays differ, so do their kernels: two launches of other work); and a
    group per layer of two tensors, the lr 0.9x the layer's before (layer-wise lr decay)."""
    lr = hyper["lr"]
    return {
        "one": [{"params": params}],
        "hf": [{"params": params[0::2]}, {"params": params[1::2]}],
        "layers": [{"params": params[i : i + 2], "lr": lr * 0.9 ** (i // 2)}
                   for i in range(0, len(params), 2)],
    }  # fmt: skip


def run_groups(
    sizes: list[int], repeat: int, names: list[str], blocks: int = 0, schedule: bool = False
) -> list[dict]:
    """The steady step of the same parameters in param groups (:func:`groupings`) against one
    group, each arm its own optimizer and state, their steps in turn (``blocks``: as in
    :func:`run_schedule`; ``schedule``: every group's lr changed before every step). Returns
    a row per optimizer and size (median ms of each arm)."""
    print("\nparam groups (median ms per step of descentlab's default backend; ratios to one "
          f"group{'; lr changed before every step' if schedule else ''})")  # fmt: skip
    print(f"{'optimizer':<9} {'params':>7} {'one':>9} {'hf':>9} {'layers':>9} {'hf/one':>7} "
          f"{'layers/one':>10}")  # fmt: skip
    rows = []
    for total in sizes:
        for name in names:
            ours_kw = TORCH_TWINS.get(name, ({},))[0]
            ocls = optim.get(name)
            params = make_params(total)  # shared: see _optimizers
            hyper = ocls(make_params(20), **ours_kw).param_groups[0]
            arms = {k: ocls(g, **ours_kw) for k, g in groupings(params, hyper).items()}
            before = None
            if schedule:  # every group's lr, each from its own
                bases = {k: [g["lr"] for g in o.param_groups] for k, o in arms.items()}
                before = partial(_schedule_groups, "lr", bases)
            times = _rotated(arms, repeat, blocks, _timed, before)
            med = {k: 1e3 * statistics.median(v) for k, v in times.items()}
            print(f"{name:<9} {total / 1e6:>6.1f}M {med['one']:>9.3f} {med['hf']:>9.3f} "
                  f"{med['layers']:>9.3f} {med['hf'] / med['one']:>6.3f}x "
                  f"{med['layers'] / med['one']:>9.3f}x", flush=True)  # fmt: skip
            key = "groups, lr" if schedule else "groups"
            rows.append(dict(params=total, optimizer=name, key=key, **med))
            del arms
    return rows


HEADER = (
    f"{'optimizer':<9} {'dl fused':>9} {'dl eager':>9} {'t loop':>8} {'t foreach':>9} "
    f"{'t fused':>8} {'fused/best':>10} {'eager/best':>10} {'dflt/loop':>9} "
    f"{'axpy-eq':>7} {'fused/axpy':>10} {'GB/s':>5}"
)


ADAFACTOR_ARMS: dict[str, Callable[[list], torch.optim.Optimizer]] = {
    "dl default": lambda ps: optim.Adafactor(ps, lr=1e-2),
    "dl fused=False": lambda ps: optim.Adafactor(ps, lr=1e-2, fused=False),
    "torch foreach": lambda ps: torch.optim.Adafactor(ps, lr=1e-2, foreach=True),
    "torch loop": lambda ps: torch.optim.Adafactor(ps, lr=1e-2, foreach=False),
}


def adafactor_params(total: int, layout: str) -> list[torch.nn.Parameter]:
    """20 float32 parameters of about ``total`` elements in all: vectors, or matrices of
    about ``total // 20`` elements (rows = columns // 2)."""
    if layout == "vectors":
        return make_params(total)
    g = torch.Generator().manual_seed(0)
    rows = max(1, round(math.sqrt(total / 20 / 2)))
    cols = max(1, total // 20 // rows)
    params = []
    for _ in range(20):
        p = torch.nn.Parameter(torch.randn(rows, cols, generator=g))
        p.grad = torch.randn(rows, cols, generator=g) * 1e-2
        params.append(p)
    return params


def run_adafactor(sizes: list[int], repeat: int) -> list[dict]:
    """Adafactor's step: each arm on its own copy of the same parameters and gradients, the
    arms' order rotated from one repeat to the next (median ms; ratio to torch's foreach)."""
    rows = []
    print("\nAdafactor (median ms per step; ratios to torch's foreach step)")
    print(f"{'params':>7} {'layout':<8} " + " ".join(f"{k:>14}" for k in ADAFACTOR_ARMS)
          + f" {'default/foreach':>15} {'fused=False/foreach':>19}")  # fmt: skip
    for total in sizes:
        for layout in ("matrices", "vectors"):
            base = adafactor_params(total, layout)
            opts = {}
            for name, make in ADAFACTOR_ARMS.items():
                ps = [torch.nn.Parameter(p.detach().clone()) for p in base]
                for p, b in zip(ps, base, strict=True):
                    p.grad = b.grad.clone()
                opts[name] = make(ps)
            for _ in range(3):  # warm-up: state, first-touch page faults, the kernel's build
                for opt in opts.values():
                    opt.step()
            times: dict[str, list[float]] = {k: [] for k in opts}
            order = list(opts)
            for i in range(repeat):
                for name in order[i % len(order) :] + order[: i % len(order)]:
                    times[name].append(_timed(opts[name].step))
            med = {k: 1e3 * statistics.median(v) for k, v in times.items()}
            row = {"optimizer": "adafactor", "params": total, "layout": layout, **med}
            row["default/foreach"] = med["dl default"] / med["torch foreach"]
            row["fused=False/foreach"] = med["dl fused=False"] / med["torch foreach"]
            rows.append(row)
            print(f"{total / 1e6:>6g}M {layout:<8} " + " ".join(f"{med[k]:>14.3f}" for k in opts)
                  + f" {row['default/foreach']:>14.2f}x {row['fused=False/foreach']:>18.2f}x",
                  flush=True)  # fmt: skip
            del opts
    return rows


def _fmt(row: dict) -> str:
    def ms(key: str, width: int) -> str:
        return f"{'-':>{width}}" if row[key] is None else f"{row[key]:>{width}.2f}"

    def ratio(key: str, width: int) -> str:
        return f"{'-':>{width + 1}}" if row[key] is None else f"{row[key]:>{width}.2f}x"

    return (
        f"{row['optimizer']:<9} {ms('dl fused', 9)} {ms('dl eager', 9)} {ms('torch loop', 8)} "
        f"{ms('torch foreach', 9)} {ms('torch fused', 8)} {ratio('fused/best', 9)} "
        f"{ratio('eager/best', 9)} {ratio('default/loop', 8)} {row['axpy-eq']:>7.2f} "
        f"{row['fused/axpy']:>9.2f}x {row['GB/s']:>5.1f}"
    )


_FIRST_STEP = """
import json, sys, time, torch
from descentlab import optim
torch.set_num_threads(int(sys.argv[2]))
out = {}
for name in sys.argv[1].split(","):
    w = torch.nn.Parameter(torch.randn(1000))
    w.grad = torch.randn(1000)
    opt = optim.get(name)([w], fused=True)
    t0 = time.perf_counter(); opt.step(); first = time.perf_counter() - t0
    t0 = time.perf_counter(); opt.step(); second = time.perf_counter() - t0
    out[name] = [1e3 * first, 1e3 * second]
print(json.dumps(out))
"""


def compile_overhead(names: list[str]) -> None:
    """First-step cost with an empty kernel cache, then in a second process."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "DESCENTLAB_CACHE": cache}
        runs = []
        for _ in range(2):
            proc = subprocess.run(
                [sys.executable, "-c", _FIRST_STEP, ",".join(names), str(torch.get_num_threads())],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print("\nfused backend compile overhead (first step on 1000 parameters, ms)")
    print(
        f"{'optimizer':<9} {'1st process: first step':>24} {'second step':>12} "
        f"{'2nd process: first step':>24}"
    )
    for name in names:
        (f1, s1), (f2, _) = runs[0][name], runs[1][name]
        print(f"{name:<9} {f1:>24.1f} {s1:>12.3f} {f2:>24.1f}")
    total1 = sum(runs[0][n][0] for n in names)
    total2 = sum(runs[1][n][0] for n in names)
    print(f"{'total':<9} {total1:>24.1f} {'':>12} {total2:>24.1f}")


def _write(path: str | None, rows: list[dict], args: argparse.Namespace) -> None:
    """Append ``rows`` to the JSON-lines file ``path`` (None: nothing)."""
    if path:
        with open(path, "a") as out:
            for row in rows:
                out.write(json.dumps({**row, "clock": args.clock, "threads": args.threads}) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7", help="total parameters, comma-separated")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="timed steps per measurement (default 15; 200 with --schedule, whose sched/const "
        "ratio at 100k parameters, a difference of about a microsecond, needs the samples)",
    )
    parser.add_argument("--optimizers", default=None, help="comma-separated (default: all)")
    parser.add_argument(
        "--against",
        choices=sorted(TORCH_TWINS),
        default=None,
        help="torch's paths of this optimizer beside each one torch has no twin of (your own, "
        "e.g. --optimizers examples/optimizers/lamb.py:LAMB --against adamw)",
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: the generated Triton step against torch's CUDA paths (benchmarks/gpu_step.py)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile overhead")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time; cpu: this process's CPU time, which leaves out the time other "
        "processes hold the CPU (only meaningful with --threads 1)",
    )
    parser.add_argument(
        "--schedule",
        choices=("lr", "momentum"),
        default=None,
        help="time steps whose lr (or betas/momentum) changes before every step instead",
    )
    parser.add_argument(
        "--groups",
        action="store_true",
        help="time instead the steady step in param groups (Hugging Face's two, a group per "
        "layer) against one group",
    )
    parser.add_argument(
        "--late",
        action="store_true",
        help="one of the 20 tensors has no gradient at the first step (every path): its step "
        "count stays one behind the others', as a layer's unfrozen after the first steps",
    )
    parser.add_argument(
        "--blocks",
        type=int,
        default=0,
        help="with --schedule: each arm's steps in blocks of this many timed steps (after one "
        "untimed step), the arms' order rotated block by block (default 0: one step each in "
        "turn)",
    )
    parser.add_argument(
        "--aa",
        action="store_true",
        help="also a second optimizer of descentlab's fused path and of torch's (fused, else "
        "foreach) on the same tensors: how far two identical steps differ in the run",
    )
    parser.add_argument(
        "--prefetch",
        action="store_true",
        help="time also the fused step with the other software prefetch choice than this "
        "CPU's (descentlab.optim.fused.software_prefetch), round-robin with the others",
    )
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "float16"),
        default="float32",
        help="with --device cuda: the parameters' dtype",
    )
    parser.add_argument(
        "--inner", type=int, default=5, help="with --device cuda: steps per timed sample"
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="append one JSON line per result (its times unrounded: for A/B comparisons)",
    )
    parser.add_argument(
        "--adafactor",
        action="store_true",
        help="time Adafactor instead (its compiled kernel, its torch-op step, torch's foreach "
        "and for-loop steps) on matrices and on vectors",
    )
    parser.add_argument(
        "--state-dtypes",
        default=None,
        help="time instead the fused step with these low-bit states (int8,bfloat16) against "
        "float32 state, e.g. --optimizers adamw --state-dtypes int8,bfloat16 (with --device "
        "cuda: the Triton steps)",
    )
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 200 if args.schedule or args.groups else 15
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    if args.device == "cuda" and not (args.state_dtypes or args.schedule):  # one line without
        # a device
        from gpu_step import run_cuda

        names = args.optimizers and [n.strip() for n in args.optimizers.split(",")]
        run_cuda(sizes, args.repeat, names, inner=args.inner,
                 dtype=getattr(torch, args.dtype), json_path=args.json)  # fmt: skip
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        if torch.get_num_threads() != 1:
            parser.error("--clock cpu needs --threads 1 (CPU time adds up over threads)")
        global CLOCK
        CLOCK = time.process_time
    if args.adafactor:
        print(
            f"Adafactor step benchmark: torch {torch.__version__}, {torch.get_num_threads()} "
            f"threads, {args.clock} clock, {args.repeat} rotated repeats"
        )
        rows = run_adafactor(sizes, args.repeat)
        if args.json:
            with open(args.json, "a") as out:
                for row in rows:
                    out.write(json.dumps({**row, "clock": args.clock}) + "\n")
        return
    # before any work: the optimizers with a fused step (low-bit state: any of descentlab's)
    known, others = fused_names()
    if args.state_dtypes:
        known, others = [r.name for r in optim.records()], {}
    names = [n.strip() for n in args.optimizers.split(",")] if args.optimizers else known
    specs = getattr(optim, "specs", None)  # (None: a base tree of step_ab.py from before them)
    for n in names:  # an optimizer of your own, by path/to/file.py:Class or module:Class
        if specs is not None and specs.is_spec(n):
            try:
                optim.get(n)(make_params(40, n_tensors=2), fused=True).step()
                known.append(n)
            except (ValueError, TypeError) as exc:
                others[n] = str(exc).splitlines()[0]
    unknown = [n for n in names if n not in known]
    if unknown:
        why = f" ({others[unknown[0]]})" if unknown[0] in others else ""
        parser.error(
            f"--optimizers: {unknown[0]!r} has no fused step to time{why}; choose from "
            + ", ".join(known)
        )
    if args.device == "cuda" and args.schedule:  # the scheduled Triton steps
        from gpu_step import refuse_without_cuda

        refuse_without_cuda("step.py --device cuda --schedule")
        rows = run_schedule(sizes, args.repeat, names, args.schedule, args.blocks, device="cuda")
        _write(args.json, rows, args)
        return
    if args.device == "cuda":  # low-bit state: the Triton steps
        from gpu_step import refuse_without_cuda

        refuse_without_cuda("step.py --device cuda --state-dtypes")
        rows = run_state(sizes, args.repeat, names, args.state_dtypes.split(","), device="cuda")
        _write(args.json, rows, args)
        return
    import machine  # (benchmarks/machine.py, beside this script)

    print(
        f"descentlab step benchmark: torch {torch.__version__} (its kernels: "
        f"{torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} threads, "
        f"{args.clock} clock, {args.repeat} round-robin repeats; "
        f"dl = descentlab (default backend: fused); {machine.cpu()}"
    )
    if not args.optimizers and others:  # said, not dropped silently
        print("not timed (no fused step): " + "; ".join(f"{n}: {w}" for n, w in others.items()))
    if args.groups:
        if args.schedule not in (None, "lr"):
            parser.error("--groups takes --schedule lr only (every group's lr changed)")
        rows = run_groups(sizes, args.repeat, names, args.blocks, args.schedule == "lr")
        _write(args.json, rows, args)
        return
    if args.schedule:
        _write(args.json, run_schedule(sizes, args.repeat, names, args.schedule, args.blocks), args)
        return
    if args.state_dtypes:
        _write(args.json, run_state(sizes, args.repeat, names, args.state_dtypes.split(",")), args)
        return
    if not args.no_compile:
        compile_overhead(names)
    rows = run(sizes, args.repeat, names, late=args.late, prefetch=args.prefetch, aa=args.aa,
               against=args.against)  # fmt: skip
    _write(args.json, rows, args)
    for total in sizes:
        sub = [r for r in rows if r["params"] == total]
        w_axpy = max(sub, key=lambda r: r["fused/axpy"])
        line = f"\n{total / 1e6:g}M: "
        twins = [r for r in sub if r["fused/best"] is not None]  # torch has them too
        if twins:
            w_loop = max(twins, key=lambda r: r["default/loop"])
            w_best = max(twins, key=lambda r: r["fused/best"])
            line += (
                f"worst default/torch-loop {w_loop['default/loop']:.2f}x "
                f"({w_loop['optimizer']}), worst fused/torch-best {w_best['fused/best']:.2f}x "
                f"({w_best['optimizer']}), "
            )
        print(line + f"worst fused/axpy {w_axpy['fused/axpy']:.2f}x ({w_axpy['optimizer']})")


if __name__ == "__main__":
    main()
