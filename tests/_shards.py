"""Helpers of the sharded-training tests: a toy ``__torch_dispatch__`` wrapper subclass, a gloo
group of N CPU processes that runs a table of jobs once per test module (:func:`spawn`), and
the jobs: 20 steps of a small MLP sharded by ``fully_shard`` (FSDP2) or by tensor parallelism
(and of descentlab's GPT decoder block, tensor parallel), with every registered
optimizer, fused and eager, and torch's twins; checkpoints.

Run as a script it is one rank of such a group: ``python _shards.py RANK WORLD DIR``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils import _pytree as pytree

STEPS = 20
HERE = Path(__file__).resolve().parent


class Boxed(torch.Tensor):
    """A toy wrapper subclass (as DTensor, FP8 and quantized tensors are made): no storage of
    its own, every op unwraps ``inner``, runs, and wraps the result."""

    @staticmethod
    def __new__(cls, inner: torch.Tensor) -> Boxed:
        return torch.Tensor._make_wrapper_subclass(
            cls,
            inner.shape,
            dtype=inner.dtype,
            device=inner.device,
            strides=inner.stride(),
            requires_grad=inner.requires_grad,
        )

    def __init__(self, inner: torch.Tensor) -> None:
        self.inner = inner

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        def unwrap(x):
            return x.inner if isinstance(x, Boxed) else x

        out = func(*pytree.tree_map(unwrap, args), **pytree.tree_map(unwrap, kwargs or {}))
        if args and isinstance(args[0], Boxed) and out is args[0].inner:
            return args[0]  # an in-place op returns its argument
        return pytree.tree_map(lambda x: Boxed(x) if type(x) is torch.Tensor else x, out)


# ------------------------------------------------------------------------ the model and steps
def make_model(seed: int = 0) -> torch.nn.Sequential:
    """The MLP every job trains: 10 and 3 output rows, so 4 ranks hold uneven shards (3, 3, 3,
    1 rows; 1, 1, 1, 0: the last rank's shard of the second layer is empty)."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.Tanh(), torch.nn.Linear(10, 3))


def batch(t: int) -> torch.Tensor:
    return torch.randn(5, 6, generator=torch.Generator().manual_seed(1000 + t))


def train(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    steps: int = STEPS,
    start: int = 0,
    shadow: tuple[list[torch.nn.Parameter], torch.optim.Optimizer] | None = None,
    data: Callable[[int], torch.Tensor] | None = None,
    closure: bool = True,
) -> None:
    """``steps`` steps on fixed batches from batch ``start`` (the same on every rank: FSDP2's
    averaged gradients are then the unsharded ones, bit for bit, at 2 and 4 ranks).
    ``shadow``: unsharded copies of the parameters and their optimizer, stepped after each
    step on the whole of its gradients. ``data``: the batches (default :func:`batch`).
    ``closure`` False: the gradients computed before ``step()``, as most training loops do
    (the optimizer's steady step may then run)."""
    data = data or batch
    for t in range(start, start + steps):
        x = data(t)

        def loss_of(x: torch.Tensor = x) -> torch.Tensor:
            opt.zero_grad()
            loss = model(x).square().mean()
            loss.backward()
            return loss

        if closure:
            opt.step(loss_of)
        else:
            loss_of()
            opt.step()
        if shadow is not None:
            copies, twin = shadow
            for c, p in zip(copies, model.parameters(), strict=True):
                c.grad = p.grad.full_tensor().clone()
            twin.step()


def full_params(model: torch.nn.Module) -> list[torch.Tensor]:
    out = []
    for p in model.parameters():
        p = p.detach()
        out.append((p.full_tensor() if hasattr(p, "full_tensor") else p).clone())
    return out


def make_opt(case: dict, params: Any) -> torch.optim.Optimizer:
    """The case's optimizer: a registered descentlab one (``name``), a chain (``chain``: a
    callable), or torch's twin (``torch``: the class name), with ``kwargs``."""
    from descentlab import optim

    kwargs = dict(case.get("kwargs", {}))
    if "torch" in case:
        return getattr(torch.optim, case["torch"])(params, **kwargs)
    if case.get("model") == "zero":  # each rank steps its partition of whole parameters
        from torch.distributed.optim import ZeroRedundancyOptimizer

        cls = optim.get(case["name"])
        return ZeroRedundancyOptimizer(params, optimizer_class=cls, fused=case["fused"], **kwargs)
    if "chain" in case:
        rule = CHAINS[case["chain"]]()
        return optim.Optimizer(params, rule, fused=case["fused"], **kwargs)
    return optim.get(case["name"])(params, fused=case["fused"], **kwargs)


def clip_chain() -> Any:
    """AdamW behind a global-norm clip tight enough to clip at every step."""
    from descentlab import optim

    return optim.chain(
        optim.clip_by_global_norm(0.05), optim.scale_by_adam(), optim.scale_by_lr(1e-2)
    )


def cautious_chain() -> Any:
    """Cautious AdamW (Liang et al. 2024) as a user writes it outside the package
    (``examples/optimizers/cautious_adamw.py``): a wrapper left at the Rule defaults,
    whose mask's rescaling ``d / (nnz + 1)`` is a reduction over each whole tensor."""
    from descentlab import optim

    example = HERE.parent / "examples" / "optimizers" / "cautious_adamw.py"
    cautious = optim.specs.target(f"{example}:cautious")[0]
    return optim.chain(cautious(optim.scale_by_adam()), optim.scale_by_lr(1e-2))


#: the chains a case names (``chain``)
CHAINS = {"clip": clip_chain, "cautious": cautious_chain}


def unsharded(case: dict, stats: dict | None = None) -> list[torch.Tensor]:
    """The case's run in this one process, unsharded: the reference (``stats``: gets
    ``steady_steps``, the steps the optimizer took its steady step)."""
    gpt = case.get("model") in ("tpgpt", "tpsp")
    model = gpt_block() if gpt else make_model()
    opt = make_opt(case, model.parameters())
    steady = count_steady(opt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(model, opt, data=gpt_batch if gpt else None, closure=not case.get("steady"))
    if stats is not None:
        stats["steady_steps"] = steady[0]
    return full_params(model)


def count_steady(opt: torch.optim.Optimizer) -> list[int]:
    """A counter (its one element) of the steps ``opt`` takes its steady step."""
    count = [0]
    fused = getattr(opt, "_fused", None)
    if fused is None:
        return count
    take = fused.steady_step

    def counted(o: Any) -> bool:
        ok = take(o)
        count[0] += ok
        return ok

    fused.steady_step = counted
    return count


# ------------------------------------------------------------------- the GPT decoder block
GPT_WIDTH, GPT_HEADS = 8, 2  # one head per rank at 2 ranks


def gpt_block(seed: int = 0) -> torch.nn.Module:
    """descentlab's GPT decoder block (attention and MLP, pre-LayerNorm), small."""
    from descentlab.problems.gpt import Block

    torch.manual_seed(seed)
    return Block(GPT_WIDTH, GPT_HEADS, 0.0)


def gpt_batch(t: int) -> torch.Tensor:
    """A batch of 2 sequences of 4 positions (the sequence parallel norms split them)."""
    return torch.randn(2, 4, GPT_WIDTH, generator=torch.Generator().manual_seed(2000 + t))


def qkv_order(world: int) -> torch.Tensor:
    """The rows of the block's one ``qkv`` Linear (queries, keys, values: ``GPT_WIDTH`` rows
    each) ordered by rank: each rank's heads' query, key and value rows together (Megatron's
    layout of a fused qkv), so that ``ColwiseParallel``'s contiguous row shards hold whole
    heads."""
    per = GPT_WIDTH // world
    w = GPT_WIDTH
    return torch.cat(
        [
            torch.arange(j * w + r * per, j * w + (r + 1) * per)
            for r in range(world)
            for j in range(3)
        ]
    )


def in_block_order(params: list[torch.Tensor], world: int) -> list[torch.Tensor]:
    """A tensor-parallel block's full parameters (``qkv`` rows in :func:`qkv_order`) as the
    unsharded block orders them (the qkv weight and bias are the third and fourth)."""
    back = torch.argsort(qkv_order(world))
    return [p[back] if i in (2, 3) else p for i, p in enumerate(params)]


# ------------------------------------------------------------------------------ jobs (ranks)
def fsdp_model(layout: str | None = None, model: torch.nn.Module | None = None) -> torch.nn.Module:
    """:func:`make_model` (or ``model``) with every Linear and the model ``fully_shard``-ed
    (FSDP2); ``layout``: as torchtitan users run it, ``"hsdp"`` (a 2-D mesh, (replicate,
    shard)), ``"fsdptp"`` (tensor parallelism on a 2-D mesh's ``tp``, FSDP2 on its ``dp``),
    ``"mp"`` (``MixedPrecisionPolicy``: bfloat16 parameters, float32 reductions), ``"offload"``
    (``CPUOffloadPolicy``)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

    model = make_model() if model is None else model
    world = torch.distributed.get_world_size()
    options: dict[str, Any] = {}
    if layout == "hsdp":
        names = ("replicate", "shard")
        options["mesh"] = init_device_mesh("cpu", (2, world // 2), mesh_dim_names=names)
    elif layout == "fsdptp":
        from torch.distributed.tensor.parallel import (
            ColwiseParallel,
            RowwiseParallel,
            parallelize_module,
        )

        mesh = init_device_mesh("cpu", (2, world // 2), mesh_dim_names=("dp", "tp"))
        parallelize_module(model, mesh["tp"], {"0": ColwiseParallel(), "2": RowwiseParallel()})
        options["mesh"] = mesh["dp"]
    elif layout == "mp":
        options["mp_policy"] = MixedPrecisionPolicy(torch.bfloat16, torch.float32)
    elif layout == "offload":
        options["offload_policy"] = CPUOffloadPolicy()
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, **options)
    return fully_shard(model, **options)


def matrices_model(width: int, seed: int = 0) -> torch.nn.Sequential:
    """:data:`MATRICES` square Linear layers of ``width``, without biases: the matrices a
    matrix optimizer's compute and state are measured on (large enough that the matrix work,
    not a step's fixed Python, is most of a step; the rows divide among 2 and 4 ranks)."""
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for _ in range(MATRICES):
        layers += [torch.nn.Linear(width, width, bias=False), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers)


#: the measured layers: their number and the steps they take
MATRICES, MATRIX_STEPS = 8, 8


def matrices_batch(width: int) -> Callable[[int], torch.Tensor]:
    return lambda t: torch.randn(8, width, generator=torch.Generator().manual_seed(3000 + t))


def state_bytes(opt: torch.optim.Optimizer, params: Any = None) -> int:
    """The bytes of ``opt``'s state on this rank (a DTensor's local tensor), of ``params``'
    state alone where given."""
    keep = None if params is None else {id(p) for p in params}
    total = 0
    for p, st in opt.state.items():
        if keep is not None and id(p) not in keep:
            continue
        for v in st.values():
            for t in v if isinstance(v, list) else [v]:
                if isinstance(t, torch.Tensor):
                    t = getattr(t, "_local_tensor", t)
                    total += t.numel() * t.element_size()
    return total


def tp_model() -> torch.nn.Module:
    """:func:`make_model` with its first Linear column-wise and its second row-wise parallel
    (tensor parallelism over every rank)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        RowwiseParallel,
        parallelize_module,
    )

    mesh = init_device_mesh("cpu", (torch.distributed.get_world_size(),))
    plan = {"0": ColwiseParallel(), "2": RowwiseParallel()}
    return parallelize_module(make_model(), mesh, plan)


def tp_gpt_model(sequence_parallel: bool = False) -> torch.nn.Module:
    """:func:`gpt_block` under tensor parallelism: attention's ``qkv`` and the MLP's ``fc``
    column-wise, their projections out row-wise (Megatron's and torchtitan's plan; ``qkv``'s
    rows in :func:`qkv_order`); the LayerNorms replicated DTensors on the whole activations
    (every parameter a DTensor: one param group), or, ``sequence_parallel``, as torchtitan
    parallelizes a decoder layer: the LayerNorms on the sequence split across the ranks, their
    gradients ``Partial`` (reduced before the step). The block takes and returns whole
    (replicated) activations."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Replicate, Shard, distribute_module
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        PrepareModuleInput,
        PrepareModuleInputOutput,
        RowwiseParallel,
        SequenceParallel,
        parallelize_module,
    )

    world = torch.distributed.get_world_size()
    mesh = init_device_mesh("cpu", (world,))
    model = gpt_block()
    order = qkv_order(world)
    with torch.no_grad():
        for p in (model.attn.qkv.weight, model.attn.qkv.bias):
            p.copy_(p[order])
    if not sequence_parallel:

        def replicated(module: Any, inputs: tuple, mesh: Any) -> tuple:
            return tuple(DTensor.from_local(x, mesh, (Replicate(),)) for x in inputs)

        for norm in (model.ln1, model.ln2):
            distribute_module(norm, mesh, input_fn=replicated)
        plan = {
            "attn.qkv": ColwiseParallel(),
            "attn.proj": RowwiseParallel(),
            "fc": ColwiseParallel(),
            "proj": RowwiseParallel(),
        }
        return parallelize_module(model, mesh, plan)
    ends = PrepareModuleInputOutput(
        input_layouts=(Replicate(),),
        desired_input_layouts=(Shard(1),),
        output_layouts=(Shard(1),),
        desired_output_layouts=(Replicate(),),
        use_local_input=True,  # the residual stream: local tensors of the sequence's shards
        use_local_output=True,
    )
    parallelize_module(model, mesh, ends)
    plan = {
        "ln1": SequenceParallel(),
        "attn": PrepareModuleInput(input_layouts=(Shard(1),), desired_input_layouts=(Replicate(),)),
        "attn.qkv": ColwiseParallel(),
        "attn.proj": RowwiseParallel(output_layouts=Shard(1)),
        "ln2": SequenceParallel(),
        "fc": ColwiseParallel(input_layouts=Shard(1)),
        "proj": RowwiseParallel(output_layouts=Shard(1)),
    }
    return parallelize_module(model, mesh, plan)


def grad_norms(model: torch.nn.Module) -> tuple[float, float]:
    """The first batch's gradient norm over this rank's shards alone, and over the whole
    parameters: what a norm computed on the shard would use, and what it must use."""
    model(batch(0)).square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    local = torch.stack([torch.linalg.vector_norm(g.to_local()) for g in grads])
    full = torch.stack([torch.linalg.vector_norm(g.full_tensor()) for g in grads])
    model.zero_grad()
    return float(torch.linalg.vector_norm(local)), float(torch.linalg.vector_norm(full))


def fsdp_case(rank: int, world: int, case: dict) -> dict:
    """One case on a sharded model (``case["model"]``: ``"tp"``, tensor parallel; a layout
    of :func:`fsdp_model`; ``"matrices"``, :func:`matrices_model` under FSDP2, measured on
    every rank: the elements it stepped and its state; else FSDP2)."""
    from descentlab.optim import sharded

    kind = case.get("model")
    data = None
    if kind == "tp":
        model = tp_model()
    elif kind in ("tpgpt", "tpsp"):
        model = tp_gpt_model(sequence_parallel=kind == "tpsp")
        data = gpt_batch
    elif kind in ("ddp", "zero"):  # replicated parameters, gradients all-reduced by DDP
        model = torch.nn.parallel.DistributedDataParallel(make_model())
    elif kind == "matrices":
        model = fsdp_model(None, matrices_model(case["width"]))
        data = matrices_batch(case["width"])
    else:
        model = fsdp_model(kind)
    norms = grad_norms(model) if case.get("probe_norms") else None
    opt = make_opt(case, model.parameters())
    if case.get("sharding"):
        opt.sharding = case["sharding"]
    shadow = None
    if case.get("shadow"):  # the same optimizer unsharded, on the sharded run's gradients
        # (a copy: a replicated DTensor's full_tensor() is its local tensor itself)
        copies = [torch.nn.Parameter(p.detach().full_tensor().clone()) for p in model.parameters()]
        shadow = (copies, make_opt(case, copies))
    if case.get("force_local"):  # the counterfactual: whole-matrix math on each shard
        opt.rule.shard_local = True
    whole = sharded.whole
    if case.get("local_reductions"):  # the counterfactual: reductions over the shard alone
        sharded.whole = lambda tensors, params=None: list(tensors)
    steady = count_steady(opt)
    steps = MATRIX_STEPS if kind == "matrices" else STEPS
    try:
        train(model, opt, steps, shadow=shadow, data=data, closure=not case.get("steady"))
    finally:
        sharded.whole = whole
    none = types.SimpleNamespace(received=0, steps=0, stepped=0)  # (torch's optimizers)
    traffic = opt._sharded.traffic if hasattr(opt, "_sharded") else none
    last = next(model.parameters()).grad
    grad = weakref.ref(last) if last is not None else lambda: None
    del last
    opt.zero_grad()  # the last gradients are freed: no step keeps them
    params = full_params(model)
    copies = None if shadow is None else [p.detach().clone() for p in shadow[0]]
    if kind in ("tpgpt", "tpsp"):  # (compared with the unsharded block: its qkv rows in its order)
        params = in_block_order(params, world)
        copies = copies and in_block_order(copies, world)
    out = {
        "norms": norms,
        "params": params,
        "shadow": copies,
        "steady_steps": steady[0],
        "grad_freed": grad() is None,
        "fused": bool(getattr(opt, "_fused", None) and any(opt._fused.plans.values())),
        "received_per_step": traffic.received / steps,
        "gathers": traffic.steps,
        "placements": str(getattr(next(model.parameters()), "placements", None)),
    }
    if kind == "matrices":  # every rank's work, state and traffic; the replicated figures
        twin = shadow[1]  # type: ignore[index]
        mine = {"stepped": traffic.stepped, "state": state_bytes(opt), "received": traffic.received}
        ranks: list[Any] = [None] * world
        torch.distributed.all_gather_object(ranks, mine)
        out["ranks"] = ranks
        out["replicated_state"] = state_bytes(twin)
        out["largest_state"] = max(state_bytes(twin, [p]) for p in shadow[0])  # type: ignore[index]
        out["elements"] = sum(p.numel() for p in shadow[0])  # type: ignore[index]
        out["largest"] = max(p.numel() for p in shadow[0])  # type: ignore[index]
    return out


def failing_owner(rank: int, world: int, case: dict) -> dict:
    """Muon by owners on FSDP2, the Newton-Schulz iteration raising on rank 1 at the third
    step: each rank's error, and whether its parameters are those before that step."""
    from descentlab.optim import muon

    model = fsdp_model()
    opt = make_opt(case, model.parameters())
    train(model, opt, 2)
    before = full_params(model)
    iterate = muon.newton_schulz

    def fails(*args: Any, **kwargs: Any) -> torch.Tensor:
        raise ValueError("no iteration on rank 1")

    if rank == 1:
        muon.newton_schulz = fails
    try:
        train(model, opt, 1, start=2)
        error = None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        muon.newton_schulz = iterate
    after = full_params(model)
    errors: list[Any] = [None] * world
    torch.distributed.all_gather_object(errors, error)
    return {"errors": errors, "unchanged": all(map(torch.equal, before, after))}


def run_cases(rank: int, world: int, cases: list[dict]) -> dict[str, dict]:
    """Each case's :func:`fsdp_case` (a job: one process group runs the whole table)."""

    out = {}
    for case in cases:
        if os.environ.get("DESCENTLAB_SHARDS_VERBOSE") and rank == 0:
            print(case["id"], f"{time.perf_counter() - START:.1f}", flush=True)
        try:
            job = failing_owner if case.get("failing_owner") else fsdp_case
            out[case["id"]] = job(rank, world, case)
        except Exception as exc:  # torch's own optimizers may not step DTensors: recorded
            counterfactual = case.get("force_local") or case.get("local_reductions")
            if "torch" not in case and not counterfactual and not case.get("fails"):
                raise
            out[case["id"]] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
    return out


def _state_dicts(model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    return {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, opt)}


def _kinds(optim_sd: dict) -> dict[str, str]:
    """Each state entry's type (and placements) in an optimizer state dict, by key."""
    out = {}
    for st in optim_sd["state"].values():
        for k, v in st.items():
            kind = type(v).__name__
            if hasattr(v, "placements"):
                kind += str(tuple(v.placements))
            out[k] = kind
    return out


def save_checkpoints(rank: int, world: int, arg: dict) -> dict[str, dict]:
    """Each case: ``STEPS // 2`` steps, a checkpoint (``torch.distributed.checkpoint`` of the
    model's and optimizer's state dicts), then the other half: the uninterrupted run."""
    import torch.distributed.checkpoint as dcp

    out = {}
    for case in arg["cases"]:
        model = fsdp_model()
        opt = make_opt(case, model.parameters())
        try:
            train(model, opt, STEPS // 2)
            sd = _state_dicts(model, opt)
            dcp.save(sd, checkpoint_id=str(Path(arg["dir"]) / case["id"]))
        except Exception as exc:  # a refusal: one line
            out[case["id"]] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        train(model, opt, STEPS - STEPS // 2, start=STEPS // 2)
        out[case["id"]] = {"params": full_params(model), "kinds": _kinds(sd["optim"])}
    return out


def load_checkpoints(rank: int, world: int, arg: dict) -> dict[str, dict]:
    """Each case: a fresh model and optimizer, the checkpoint loaded (at this world size), the
    second half of the steps: the resumed run."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    out = {}
    for case in arg["cases"]:
        model = fsdp_model()
        opt = make_opt(case, model.parameters())
        sd = _state_dicts(model, opt)
        dcp.load(sd, checkpoint_id=str(Path(arg["dir"]) / case["id"]))
        set_model_state_dict(model, sd["model"])
        set_optimizer_state_dict(model, opt, sd["optim"])
        train(model, opt, STEPS - STEPS // 2, start=STEPS // 2)
        out[case["id"]] = {"params": full_params(model)}
    return out


JOBS: dict[str, Callable[[int, int, Any], Any]] = {
    "cases": run_cases,
    "save": save_checkpoints,
    "load": load_checkpoints,
}


def spawn(world: int, jobs: dict[str, tuple[str, Any]], tmp: Path, timeout: float = 600) -> dict:
    """Run ``jobs`` (result name -> (job name in :data:`JOBS`, its argument)) in one gloo
    group of ``world`` CPU processes; returns rank 0's results. Raises with every rank's
    output where a rank fails (a crash included: a clean exit is part of what is tested)."""
    tmp.mkdir(parents=True, exist_ok=True)
    for stale in ("store", "results.pt"):  # a FileStore's file must be new
        (tmp / stale).unlink(missing_ok=True)
    torch.save(jobs, tmp / "jobs.pt")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "_shards.py"), str(rank), str(world), str(tmp)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(world)
    ]
    deadline = time.monotonic() + timeout
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
        except subprocess.TimeoutExpired:
            for q in procs:  # a rank stuck in a collective: the group is ended, not left
                q.kill()
            outs.append(p.communicate()[0] + f"\n(timed out after {timeout:.0f} s)")
    codes = [p.returncode for p in procs]
    (tmp / "rank0.log").write_text(outs[0])
    if any(codes):
        raise AssertionError(
            f"ranks exited with {codes}:\n"
            + "\n".join(f"--- rank {i}\n{o}" for i, o in enumerate(outs))
        )
    return torch.load(tmp / "results.pt", weights_only=False)


def _main(rank: int, world: int, tmp: Path) -> None:
    import torch.distributed as dist

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    store = dist.FileStore(str(tmp / "store"), world)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    if os.environ.get("DESCENTLAB_SHARDS_VERBOSE"):
        print(f"rank {rank} up after {time.perf_counter() - START:.1f}s", flush=True)
    try:
        jobs = torch.load(tmp / "jobs.pt", weights_only=False)
        results = {name: JOBS[job](rank, world, arg) for name, (job, arg) in jobs.items()}
        if rank == 0:
            torch.save(results, tmp / "results.pt")
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    START = time.perf_counter()
    _main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
