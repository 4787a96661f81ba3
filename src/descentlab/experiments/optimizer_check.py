"""Every check of an optimizer, in one call (``descentlab check-optimizer SPEC``): the fused
step against the eager one, the chain against its forms evaluated in float64
(:func:`~descentlab.optim.form.reference`), the Triton kernel under the interpreter, a state
dict's round trip and resume, param groups, the declared refusals, FSDP2 on 2 CPU processes
against one process, and a float64 loop of the user's own. Each is one :class:`Line`, with
the number measured and its tolerance; a check that cannot run here says why (skipped).

The optimizer is a name :func:`descentlab.optim.get` resolves: one of the package's, a name
given to :func:`~descentlab.optim.register`, ``path/to/file.py:Class`` or ``module:Class``.
Run as ``python -m descentlab.experiments.optimizer_check RANK WORLD DIR SPEC``, it is one
rank of the FSDP2 check.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["CHECKS", "Line", "check_optimizer"]

#: float32 runs of one math by two routes, within reordering (a bit for bit check where the
#: kernels' root is torch's: fused.sqrt_reproduces_torch)
F32_TOL = 2e-5
F64_TOL = 1e-12
#: FSDP2's shards against one process: float32 reductions reordered over 20 steps
SHARDED_TOL = 1e-5


@dataclass(frozen=True)
class Line:
    """One check's outcome: ``ok`` None when skipped (``detail`` says why)."""

    check: str
    ok: bool | None
    detail: str

    def __str__(self) -> str:
        word = {True: "ok  ", False: "FAIL", None: "skip"}[self.ok]
        return f"{word} {self.check}: {self.detail}"


def _rel(a: Sequence[Tensor], b: Sequence[Tensor]) -> float:
    return max(
        float((x.double() - y.double()).abs().max() / y.double().abs().max().clamp_min(1e-30))
        for x, y in zip(a, b, strict=True)
    )


def _within(name: str, err: float, tol: float, what: str = "relative difference") -> Line:
    ok = math.isfinite(err) and err <= tol
    return Line(name, ok, f"max {what} {err:.3g} (tolerance {tol:g})")


#: each step's gradient scale: zero gradients (a whole step, and one tensor's first step), and
#: scales over six decades, as a real run's warm-up, spikes and plateaus
SCALES = (1.0, 1.0, 1e-3, 0.0, 1e2, 1.0, 3e-2, 10.0, 1.0, 1e-4, 1.0, 1.0)
STEPS = len(SCALES)


class Broken(RuntimeError):
    """A run did what no step may do: changed ``p.grad``, or left a non-finite value."""


def _data(dtype: torch.dtype, steps: int = STEPS, seed: int = 3) -> tuple[list, list[list]]:
    """Three tensors (a matrix, a vector with a tail past 16 lanes, a scalar-like one) and
    ``steps`` gradients for each: a fixed direction plus noise (so that the parameters drift
    from where they started, as in training, and every state that sums gradients against that
    drift moves), scaled by :data:`SCALES`; the scalar-like tensor's first gradient is zero."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(7, 5), (301,), (1,)]
    start = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    drift = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    grads = []
    for t in range(steps):
        scale = SCALES[t % len(SCALES)]
        noise = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
        gs = [scale * (d + 0.5 * n) for d, n in zip(drift, noise, strict=True)]
        if t == 0:
            gs[2] = torch.zeros_like(gs[2])
        grads.append([x.to(dtype) for x in gs])
    return [x.to(dtype) for x in start], grads


def _finite(what: str, t: int, tensors: Any) -> None:
    for i, x in enumerate(tensors):
        if isinstance(x, Tensor) and x.is_floating_point() and not bool(x.isfinite().all()):
            raise Broken(f"{what} of tensor {i} is not finite after step {t}")


def _scan(opt: Any, ws: list, t: int) -> None:
    """Every output of a step finite: the parameters and every state tensor."""
    _finite("the parameter", t, [w.detach() for w in ws])
    for i, w in enumerate(ws):
        for key, value in opt.state.get(w, {}).items():
            values = value if isinstance(value, (list, tuple)) else [value]
            try:
                _finite(f"state {key!r}", t, values)
            except Broken as exc:
                raise Broken(str(exc).replace("tensor 0", f"tensor {i}")) from None


def _step(opt: Any, ws: list, gs: list, t: int) -> None:
    """One step with ``gs`` (copies given as ``p.grad``), then: ``p.grad`` is the tensor given
    and holds what it held, and every output is finite."""
    given = [g.clone() for g in gs]
    for w, g in zip(ws, given, strict=True):
        w.grad = g
    opt.step()
    for i, (w, g, g0) in enumerate(zip(ws, given, gs, strict=True)):
        if w.grad is not g or not torch.equal(g, g0):
            raise Broken(f"step {t} changed p.grad of tensor {i} (a step must leave it as given)")
    _scan(opt, ws, t)


def _run(make: Callable, start: list, grads: list, groups: Any = None, **kw: Any) -> list:
    ws = [torch.nn.Parameter(t.clone()) for t in start]
    opt = make(groups(ws) if groups else ws, **kw)
    for t, gs in enumerate(grads, 1):
        _step(opt, ws, gs, t)
    return [w.detach() for w in ws]


def _kernel_order(cls: Any, kw: dict) -> list[str]:
    """Why the fused kernel's order of operations is not provably the eager step's -- empty
    where it is: the kernel runs the eager step's primitives in its order, so it differs
    only by a square root (unless the kernels' is torch's:
    :func:`~descentlab.optim.fused.sqrt_reproduces_torch`) or by a sum over a tensor or the
    group (torch and the kernel add in different orders, and the kernel's per-tensor number
    of the sum is computed in double precision)."""
    from descentlab.optim.fused import sqrt_reproduces_torch
    from descentlab.optim.program import collect, form_of

    probe = cls([torch.nn.Parameter(torch.zeros(2))], fused=True, **kw)
    hyper = {k: v for k, v in probe.param_groups[0].items() if k != "params"}
    prog = collect(probe.rule, hyper, probe._fold_lr, leave_out_passing=True)
    ops = [s.op for s in prog.stmts if s.kind == "op"]
    why = []
    if "sqrt" in ops and not sqrt_reproduces_torch():
        why.append("a square root (the kernels' is not torch's on this CPU)")
    forms = [form_of(r, hyper) for r in probe.rule.rules]
    if any(f is not None and f.totals for f in forms) or prog.reads_g:
        why.append("a sum over a tensor or the group")
    return why


def _fused(cls: Any, kw: dict) -> Line:
    """The fused float32 run against the eager one: bit for bit where the kernel's order of
    operations is provably the eager step's (:func:`_kernel_order`), else within a tolerance
    that follows from the rule: sixteen times the eager float32 run's own distance from the
    same math in float64 (two float32 evaluations of one math, in two orders, each lie about
    that far from it, the largest error of each in its own element), and no less than sixteen
    float32 ulps. (ADOPT's fused run is 2.6 times that distance from its eager one under
    ``ATEN_CPU_CAPABILITY=default``: four times would be too close.)"""
    name = "fused vs eager"
    start, grads = _data(torch.float32)
    try:  # a refusal at construction: no fused form here (skipped, saying why)
        why = _kernel_order(cls, kw)
    except (ValueError, TypeError) as exc:
        return Line(name, None, f"no fused step ({str(exc).splitlines()[0].split(', got ')[0]})")
    try:  # a failure from here on is the fused run's: a FAIL
        fused = _run(cls, start, grads, fused=True, **kw)
    except Exception as exc:
        return Line(name, False, f"the fused run failed: {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}")  # fmt: skip
    eager = _run(cls, start, grads, fused=False, **kw)
    err = _rel(fused, eager)
    if not why:
        return Line(name, err == 0.0, f"max relative difference {err:.3g} (bit for bit "
                    "required: the kernel's order of operations is the eager step's)")  # fmt: skip
    exact = _run(cls, [x.double() for x in start], [[g.double() for g in gs] for gs in grads],
                 fused=False, **kw)  # fmt: skip
    own = _rel(eager, exact)
    tol = 16 * max(own, 2.0**-24)
    return Line(name, math.isfinite(err) and err <= tol, f"max relative difference {err:.3g} "
                f"(tolerance {tol:.3g}: the order differs by {' and '.join(why)}; the float32 "
                f"eager run is {own:.3g} from float64)")  # fmt: skip


def _reference(cls: Any, kw: dict) -> Line:
    """The optimizer's eager float64 run against its chain with every form rule evaluated by
    :func:`~descentlab.optim.form.reference` and every other by its own ``update``."""
    from descentlab.optim.form import FormRule, reference

    start, grads = _data(torch.float64)
    got = _run(cls, start, grads, fused=False, **kw)
    probe = cls([torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))], fused=False, **kw)
    hyper = {k: v for k, v in probe.param_groups[0].items() if k not in ("params", "step")}
    rules = probe.rule.rules
    if not any(isinstance(r, FormRule) for r in rules):
        return Line("float64 reference", None, "no rule written in the form")
    want = []
    for i, p in enumerate(start):
        p = p.clone()
        state = probe.rule.init([p])
        for t, gs in enumerate(grads, 1):
            state["step"] = [torch.tensor(float(t), dtype=torch.float64)]
            state["_step_values"] = [float(t)]
            u = gs[i]
            for rule in rules:
                if rule.passes_through(hyper):
                    continue
                if isinstance(rule, FormRule):
                    one = {k: v[0] for k, v in state.items() if not k.startswith("_")}
                    u = reference(rule.built(hyper), u, p, one, hyper, float(t))
                    state.update({k: [v] for k, v in one.items()})
                else:
                    (u,), state = rule.update([u], state, [p], hyper)
            p = p + u
        want.append(p)
    line = _within("float64 reference", _rel(got, want), F64_TOL)
    own = [r.name for r in rules if not isinstance(r, FormRule) and not r.passes_through(hyper)]
    if own:  # what is not written in the form is checked against itself: said
        return Line(line.check, line.ok, f"{line.detail}; {', '.join(own)} by its own update")
    return line


def _triton(cls: Any, kw: dict) -> Line:
    try:
        import triton  # noqa: F401
    except ImportError:
        return Line("Triton under the interpreter", None, "triton is not installed")
    if os.environ.get("TRITON_INTERPRET") != "1":
        return Line("Triton under the interpreter", None, "TRITON_INTERPRET=1 was not set "
                    "before triton loaded (descentlab check-optimizer sets it)")  # fmt: skip
    from descentlab.optim import gpu

    start, grads = _data(torch.float32)
    ws = [torch.nn.Parameter(t.clone()) for t in start]
    opt = cls(ws, fused=None, **kw)
    launched: list = []
    run = gpu.TritonPlan.run

    def counted(self: Any, *a: Any) -> Any:
        launched.append(1)
        return run(self, *a)

    gpu.TritonPlan.run = counted  # type: ignore[method-assign]
    try:
        with gpu.interpret_on_cpu():
            for t, gs in enumerate(grads, 1):
                _step(opt, ws, gs, t)
    finally:
        gpu.TritonPlan.run = run  # type: ignore[method-assign]
    if not launched:
        return Line("Triton under the interpreter", None, "the chain has no Triton program")
    eager = _run(cls, start, grads, fused=False, **kw)
    return _within("Triton under the interpreter", _rel([w.detach() for w in ws], eager), F32_TOL)


def _resume(cls: Any, kw: dict) -> Line:
    start, grads = _data(torch.float64)
    whole = _run(cls, start, grads, fused=False, **kw)
    ws = [torch.nn.Parameter(t.clone()) for t in start]
    opt = cls(ws, fused=False, **kw)
    half = len(grads) // 2
    for i, gs in enumerate(grads):
        if i == half:  # a new optimizer from the saved state dict, as a resumed run's
            sd = opt.state_dict()
            opt = cls(ws, fused=False, **kw)
            opt.load_state_dict(sd)
        _step(opt, ws, gs, i + 1)
    if all(torch.equal(w.detach(), v) for w, v in zip(ws, whole, strict=True)):
        return Line("state_dict round trip and resume", True,
                    "max relative difference 0: bit for bit the uninterrupted run")  # fmt: skip
    # (a per-tensor number kept in float32 is cast to a float64 parameter's dtype on loading,
    # as torch.optim casts it: NAdam's running product then goes on in float64)
    err = _rel([w.detach() for w in ws], whole)
    return _within("state_dict round trip and resume", err, F64_TOL)


def _groups(cls: Any, kw: dict) -> Line:
    """Two param groups at two learning rates against two optimizers of one group each."""
    start, grads = _data(torch.float64)
    lr = cls([torch.nn.Parameter(torch.zeros(1))], fused=False, **kw).defaults["lr"]

    def groups(ws: list) -> list[dict]:
        return [{"params": ws[:1]}, {"params": ws[1:], "lr": lr * 3}]

    both = _run(cls, start, grads, groups=groups, fused=False, **kw)
    one = _run(cls, start[:1], [g[:1] for g in grads], fused=False, **kw)
    two = _run(cls, start[1:], [g[1:] for g in grads], fused=False, **{**kw, "lr": lr * 3})
    return _bitwise("param groups", both, one + two, "two groups against two optimizers")


def _bitwise(name: str, got: list, want: list, what: str) -> Line:
    err = _rel(got, want)
    same = all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    return Line(name, same, f"{what}: max relative difference {err:.3g} (bit for bit required)")


def _chunked(cls: Any, kw: dict) -> Line:
    """The group stepped in chunks of a tensor each (as a large model's group is, in chunks of
    :attr:`~descentlab.optim.Optimizer.chunk_elements`) against the group stepped whole."""
    start, grads = _data(torch.float32)

    def made(chunk: int) -> Callable:
        def make(params: Any, **kw: Any) -> Any:
            opt = cls(params, **kw)
            opt.chunk_elements = chunk
            return opt

        return make

    whole = _run(made(1 << 40), start, grads, **kw)
    chunked = _run(made(1), start, grads, **kw)
    return _bitwise("chunked vs whole", chunked, whole, "a chunk per tensor against the group")


def _stacked(cls: Any, kw: dict) -> Line:
    """Two runs stacked as ``compare`` trains them (each tensor of the two runs one tensor with
    a leading run dimension, stepped by one optimizer) against each run alone -- where the
    engine stacks this optimizer at all (:func:`descentlab.optim.mixing.stacks`)."""
    from descentlab.optim.mixing import stack_runs, stacks

    name = "stacked vs alone"
    probe = cls([torch.nn.Parameter(torch.zeros(2))], **kw)
    why = stacks(probe)
    if why:
        return Line(name, True, f"trains alone, never stacked: {why}")
    (a0, ga), (b0, gb) = _data(torch.float32, seed=3), _data(torch.float32, seed=4)
    alone = _run(cls, a0, ga, **kw) + _run(cls, b0, gb, **kw)
    both = _run(cls, *stack_runs(a0, ga, b0, gb), **kw)
    rows = [x[0] for x in both] + [x[1] for x in both]
    return _bitwise(name, rows, alone, "two runs stacked against each alone")


def _dtypes(cls: Any, kw: dict) -> Line:
    """float64 and bfloat16 parameters (the default backend: fused where it can be) against
    the eager float64 run: float64 within :data:`F64_TOL`, bfloat16 within its rounding of
    each step's parameters (2^-8 relative a step)."""
    start, grads = _data(torch.float64)
    want = _run(cls, start, grads, fused=False, **kw)
    out = []
    for dtype, tol in ((torch.float64, F64_TOL), (torch.bfloat16, STEPS * 2.0**-8)):
        got = _run(cls, [x.to(dtype) for x in start],
                   [[g.to(dtype) for g in gs] for gs in grads], **kw)  # fmt: skip
        err = _rel(got, want)
        if not (math.isfinite(err) and err <= tol):
            return Line("float64 and bfloat16 parameters", False, f"{str(dtype)[6:]}: max "
                        f"relative difference {err:.3g} (tolerance {tol:g})")  # fmt: skip
        out.append(f"{str(dtype)[6:]} {err:.3g} (tolerance {tol:.3g})")
    return Line("float64 and bfloat16 parameters", True,
                "max relative difference from eager float64: " + ", ".join(out))  # fmt: skip


def _bad_values(spec: Any, good: Any) -> list:
    from descentlab.optim.hyperspec import Flag, Items, Pair, Real

    if isinstance(spec, Real):
        return spec.bad_values()
    if isinstance(spec, Pair) and isinstance(spec.first, Real):
        return [(b, good[1]) for b in spec.first.bad_values()]
    if isinstance(spec, Items) and spec.entries and isinstance(spec.entries[0], Real):
        return [(b, *good[1:]) for b in spec.entries[0].bad_values()]
    if isinstance(spec, Flag):
        return ["yes"]
    return []


def _refusals(cls: Any, kw: dict) -> Line:
    probe = cls([torch.nn.Parameter(torch.zeros(2))], fused=False, **kw)
    group = probe.param_groups[0]
    tried, wrong = 0, []
    for rule in probe.rule.rules:
        for key, spec in rule.checks.items():
            if key not in group or callable(group[key]) or key in kw:
                continue
            for bad in _bad_values(spec, group[key]):
                tried += 1
                w = torch.nn.Parameter(torch.ones(2))
                try:
                    cls([w], fused=False, **{**kw, key: bad})
                    wrong.append(f"{key}={bad!r} accepted")
                except (ValueError, TypeError) as exc:
                    if key not in str(exc):
                        wrong.append(f"{key}={bad!r}: the refusal does not name it")
    if not tried:
        return Line("declared refusals", None, "no declared hyperparameter with a range")
    said = "each refused naming its key" if not wrong else "; ".join(wrong[:3])
    return Line(
        "declared refusals", not wrong, f"{tried} values outside the declared ranges {said}"
    )


def _user_reference(cls: Any, kw: dict, loop: Callable) -> Line:
    """``loop(w0, grads, **hyper) -> w`` in float64, one tensor, against the eager run."""
    start, grads = _data(torch.float64)
    got = _run(cls, start[1:2], [g[1:2] for g in grads], fused=False, **kw)[0]
    probe = cls([torch.nn.Parameter(torch.zeros(1))], fused=False, **kw)
    hyper = {k: v for k, v in probe.param_groups[0].items() if k not in ("params", "step")}
    want = loop(start[1].clone(), [g[1].clone() for g in grads], **hyper)
    return _within("your float64 loop", _rel([got], [want]), F64_TOL)


# ------------------------------------------------------------------------------ FSDP2
def _model() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.Tanh(), torch.nn.Linear(10, 3))


def _train(model: torch.nn.Module, opt: Any, steps: int = 20) -> list[Tensor]:
    """``steps`` steps, the loss scaled by :data:`SCALES` (a zero gradient, six decades)."""
    for t in range(steps):
        x = torch.randn(5, 6, generator=torch.Generator().manual_seed(1000 + t))
        opt.zero_grad()
        (model(x).square().mean() * SCALES[t % len(SCALES)]).backward()
        opt.step()
    return [
        (p.detach().full_tensor() if hasattr(p, "full_tensor") else p.detach()).clone()
        for p in model.parameters()
    ]


def _rank(rank: int, world: int, folder: Path, spec: str, kw: dict) -> None:
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard

    from descentlab import optim

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    store = dist.FileStore(str(folder / "store"), world)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    try:
        model = _model()
        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                fully_shard(layer)
        fully_shard(model)
        got = _train(model, optim.get(spec)(model.parameters(), **kw))
        if rank == 0:
            torch.save(got, folder / "sharded.pt")
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _sharded(spec: str, kw: dict, world: int = 2, timeout: float = 300) -> Line:
    from descentlab import optim

    name = f"FSDP2 on {world} CPU processes vs one"
    if not torch.distributed.is_available():
        return Line(name, None, "torch.distributed is not available")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _model()
        want = _train(model, optim.get(spec)(model.parameters(), **kw))
    from descentlab._osutil import owned_tempdir

    # (a folder of this process: one that a killed command left is removed by the next)
    tmp = owned_tempdir("fsdp-check")
    try:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        (Path(tmp) / "kwargs.pt").write_bytes(pickle.dumps(kw))
        cmd = [sys.executable, "-c", _RANK_START, "", str(world), tmp, optim.specs.spec_of(spec),
               str(os.getpid())]  # fmt: skip
        logs = [Path(tmp) / f"rank-{r}.log" for r in range(world)]
        procs = []
        for r, log in enumerate(logs):
            with open(log, "w") as out:
                procs.append(subprocess.Popen([*cmd[:3], str(r), *cmd[4:]], env=env, text=True,
                                              stdout=out, stderr=subprocess.STDOUT))  # fmt: skip
        failed = _watch_ranks(procs, timeout)
        if failed is not None:
            rank, how = failed
            said = [ln for ln in logs[rank].read_text(errors="replace").splitlines() if ln.strip()]
            last = f": {said[-1].strip()}" if said and not how.startswith("hung") else ""
            return Line(name, False, f"rank {rank} {how}{last}")
        got = torch.load(Path(tmp) / "sharded.pt")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _within(name, _rel(got, want), SHARDED_TOL)


def _watch_ranks(procs: list[subprocess.Popen], timeout: float) -> tuple[int, str] | None:
    """Wait for the ranks: None when each ended well; else the first rank that did not (died,
    or still running at ``timeout`` seconds: hung), with how -- the others are killed then (a
    survivor's own error, gloo's "Connection closed by peer", is not the cause)."""
    deadline = time.monotonic() + timeout
    failed = None
    try:
        while failed is None and None in [p.poll() for p in procs]:  # (each polled)
            failed = next(((r, _ended(p.returncode)) for r, p in enumerate(procs)
                           if p.returncode not in (None, 0)), None)  # fmt: skip
            if failed is None and time.monotonic() > deadline:
                hung = next(r for r, p in enumerate(procs) if p.poll() is None)
                failed = (hung, f"hung: still running after {timeout:.0f} s")
            time.sleep(0.05)
        if failed is None:
            failed = next(((r, _ended(p.returncode)) for r, p in enumerate(procs)
                           if p.returncode != 0), None)  # fmt: skip
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    return failed


def _ended(code: int) -> str:
    """How a rank ended, in words: ``was killed by SIGKILL``, ``exited with 1``."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with {code}"


#: the checks by name, in the order they run
CHECKS = ("fused", "reference", "triton", "resume", "groups", "chunked", "stacked", "dtypes",
          "refusals", "sharded", "loop")  # fmt: skip

#: each check's line
NAMES = {"fused": "fused vs eager", "reference": "float64 reference",
         "triton": "Triton under the interpreter", "resume": "state_dict round trip and resume",
         "groups": "param groups", "chunked": "chunked vs whole", "stacked": "stacked vs alone",
         "dtypes": "float64 and bfloat16 parameters", "refusals": "declared refusals",
         "sharded": "FSDP2 on 2 CPU processes vs one", "loop": "your float64 loop"}  # fmt: skip


def check_optimizer(
    spec: str,
    checks: Sequence[str] = CHECKS,
    reference: Callable[..., Tensor] | None = None,
    **kwargs: Any,
) -> list[Line]:
    """Each of ``checks`` on the optimizer ``spec`` names (as :func:`descentlab.optim.get`
    reads it), built with ``kwargs``: one :class:`Line` each. ``reference``: a float64 loop
    ``reference(w0, grads, **hyper) -> w`` of your own (the ``loop`` check; skipped without).

    Example:
        >>> (line,) = check_optimizer("sgd", ["groups"], momentum=0.9)
        >>> line.ok, line.check
        (True, 'param groups')
        >>> line.detail
        'two groups against two optimizers: max relative difference 0 (bit for bit required)'
    """
    from descentlab import optim

    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check {unknown[0]!r}; the checks: {', '.join(CHECKS)}")
    cls = optim.get(spec)
    # the keyword arguments refused here, before any check, as a bad input (the command: exit 2)
    cls([torch.nn.Parameter(torch.zeros(2))], **kwargs)
    runs: dict[str, Callable[[], Line]] = {
        "fused": lambda: _fused(cls, kwargs),
        "reference": lambda: _reference(cls, kwargs),
        "triton": lambda: _triton(cls, kwargs),
        "resume": lambda: _resume(cls, kwargs),
        "groups": lambda: _groups(cls, kwargs),
        "chunked": lambda: _chunked(cls, kwargs),
        "stacked": lambda: _stacked(cls, kwargs),
        "dtypes": lambda: _dtypes(cls, kwargs),
        "refusals": lambda: _refusals(cls, kwargs),
        "sharded": lambda: _sharded(spec, kwargs),
        "loop": lambda: (Line("your float64 loop", None, "none given (--reference)")
                         if reference is None else _user_reference(cls, kwargs, reference)),
    }  # fmt: skip
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the eager notice: the lines say what ran)
        for c in checks:
            try:
                out.append(runs[c]())
            except Broken as exc:  # a run broke a rule of every step
                out.append(Line(NAMES[c], False, str(exc)))
            except Exception as exc:  # a check that raises fails, in one line
                text = str(exc).splitlines()[0] if str(exc) else ""
                out.append(Line(NAMES[c], False, f"{type(exc).__name__}: {text}"))
    return out


#: a rank's start (``python -c``, its arguments: rank, world, folder, spec, the command's pid):
#: it ends with its command, even one killed by ``kill -9`` (the kernel's parent-death signal,
#: asked for before torch's imports; a command already gone ends it at once)
_RANK_START = """import os, sys
from descentlab._osutil import killed_with_parent
killed_with_parent()
if os.getppid() != int(sys.argv[5]):
    sys.exit(1)
import pickle
from pathlib import Path
from descentlab.experiments.optimizer_check import _rank
kw = pickle.loads((Path(sys.argv[3]) / "kwargs.pt").read_bytes())
_rank(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], kw)
"""
