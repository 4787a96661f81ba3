"""How an :class:`~descentlab.optim.Optimizer` runs its fused backend: one compiled plan per
chain structure and dtype (:mod:`descentlab.optim.fused` generates and compiles them), the
group's step through a plan, and the *steady* step -- the whole step in as little Python as
possible while nothing but the gradients changes from one step to the next. The steady step
launches a GPU group's Triton kernel too (:class:`SteadyPlan`: the two backends' compiled
steps).
"""

from __future__ import annotations

import warnings
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Protocol

import torch
from torch import Tensor

from . import fused as _fused
from .base import Chain, Rule, State, caller_stacklevel
from .c_emitter import CKernel
from .hyper import NOT_HYPER, Guard, HyperChecks, changed_numbers, number, recheck
from .program import NoProgram, collect, has_kernel_form
from .sharded import SteadyShards, is_dtensor
from .state import GroupStates, TrackedState, realify, scatter


class Optimizer(Protocol):
    """What the fused path reads and sets of the :class:`~descentlab.optim.Optimizer` it runs
    (a protocol: that class imports this module, not this module it)."""

    rule: Chain
    state: Any
    param_groups: list[dict[str, Any]]
    fused: bool | None
    _fold_lr: bool
    monitor: Any
    last_step_skipped: bool
    _hyper: HyperChecks
    _states: GroupStates
    _noop_precheck: bool


class SteadyPlan(Protocol):
    """A compiled step the steady step launches: the CPU kernel
    (:class:`~descentlab.optim.fused.FusedPlan`) or a GPU group's Triton launch
    (:class:`~descentlab.optim.gpu.TritonPlan`)."""

    @property
    def state_keys(self) -> list[str]: ...

    def steady_ok(self, params: list[Tensor]) -> bool: ...

    def steady_pointers(
        self, params: list[Tensor], grads: list[Tensor], cols: list[list]
    ) -> Any | None:
        """The kernel's addresses, where only the gradients have moved; else None."""

    def launch(self, params: list[Tensor], ptrs: Any, hyper: Any, t: float | list[float]) -> None:
        """Run the kernel on :meth:`steady_pointers`' addresses, every tensor at step ``t``
        (or each at its own, a list)."""


__all__ = ["FusedPath", "SteadyContext", "SteadyPlan"]


@dataclass(slots=True)
class SteadyContext:
    """What one param group's steady step checks and uses, recorded after a fused step.

    Attributes:
        state: the optimizer's state mapping then, and ``version``, its mutation count.
        params: the group's parameter list (the same list object) and ``n``, its length.
        hyper: the group's hyperparameters (Python values: compared by equality);
            ``signature``, the structure (kernel) of each of the chain's ``parts`` at them,
            and ``readers``, which parts' signatures read each hyperparameter.
        sts: the parameters' state dicts.
        plan: the compiled plan.
        counts: the group's step counters (a view; a parameter whose first gradient came
            later keeps a smaller count).
        step_ids: ``id`` of each parameter's step tensor.
        moved: the keys a schedule changed at the last step (checked first at the next),
            with the checks of their values and the parts whose signatures read them
            (:class:`Moved`); ``guard``, its test in one call, once values inside their
            bounds passed every check (:class:`~descentlab.optim.hyper.Guard`).
        shards: a group of DTensors stepped on its shards: their local tensors
            (:class:`~descentlab.optim.sharded.SteadyShards`); ``sts`` are then the DTensors'
            state dicts.
    """

    state: TrackedState
    version: int
    params: list[Tensor]
    n: int
    hyper: Mapping[str, Any]
    parts: tuple[Rule, ...]
    signature: tuple
    readers: dict[str, tuple[int, ...]]
    sts: list[dict]
    plan: SteadyPlan
    counts: memoryview
    step_ids: list[int]
    moved: Moved | None = None
    guard: Guard | None = None
    shards: SteadyShards | None = None


@dataclass(slots=True, frozen=True)
class Moved:
    """The keys a schedule changes (the same at every step, as a rule), what checks their
    values, and which of the chain's parts read them in their signatures: found once."""

    keys: frozenset[str]
    checks: list
    readers: tuple[int, ...]
    #: the values of the other keys, in one C call (None: no other key)
    rest: Callable[[Mapping[str, Any]], Any] | None = None
    #: ``rest`` of the hyperparameters these were found at (the other keys' values do not
    #: change while these are the keys that move)
    rest_values: Any = None
    #: the steady step's test of these keys in one call (None: a key has no bounds), armed
    #: (:attr:`SteadyContext.guard`) once values inside its bounds pass every check
    guard: Guard | None = None


#: whether the eager steps of ``fused=None`` without a compiler were announced (once per
#: process)
_NO_COMPILER_SAID = False


class FusedPath:
    """The fused backend of one optimizer: its compiled plans, the compiler check, and the
    steady contexts of its param groups, CPU and GPU (all caches: rebuilt after a copy or
    unpickling)."""

    def __init__(self, fold_lr: bool) -> None:
        #: a final plain ``scale_by_lr`` is folded into the parameter update
        self.fold_lr = fold_lr
        self.plans: dict[tuple, _fused.FusedPlan | None] = {}
        self.steady: dict[int, SteadyContext] = {}
        self._compiler: bool | None = None
        #: why a group ran eagerly under ``fused=None``, each said once
        self.announced: set[str] = set()

    @staticmethod
    def refuse_impossible(opt: Optimizer, defaults: Mapping[str, Any]) -> None:
        """``fused=True`` at construction: refuse what can never run fused here (no compiler,
        a rule without a fused form), naming why."""
        if not _fused.fused_available():
            raise _fused.FusedUnavailable(
                f"{type(opt).__name__}(fused=True) needs a C++ compiler (g++ or c++ on PATH, "
                "or $CXX); none was found"
            )
        try:
            collect(opt.rule, defaults, opt._fold_lr, leave_out_passing=True)
        except NoProgram:
            missing = [r.name for r in opt.rule.rules if not has_kernel_form(r)]
            raise ValueError(
                f"fused=True: rule(s) {', '.join(missing) or 'of this chain'} have no fused "
                f"form in this position, got {opt.rule!r}"
            ) from None

    def compiler_ok(self) -> bool:
        if self._compiler is None:
            self._compiler = _fused.fused_available()
        return self._compiler

    # ------------------------------------------------------------------ plans
    def choose(self, opt: Optimizer, params: list[Tensor], hyper: Mapping[str, Any]) -> Any:
        """The fused plan for this group's step, or None to run it eagerly."""
        if opt.fused is False or opt.monitor is not None:
            return None
        dtype = params[0].dtype
        if dtype not in _fused.DTYPES:
            return None  # fused=True raised in phase 1
        if opt.fused is None and not self.compiler_ok():
            global _NO_COMPILER_SAID
            if not _NO_COMPILER_SAID:
                _NO_COMPILER_SAID = True
                warnings.warn(
                    "descentlab: no C++ compiler (g++ or c++ on PATH, or $CXX): optimizers "
                    "step eagerly (the same result, slower; fused=True is refused)",
                    RuntimeWarning,
                    stacklevel=caller_stacklevel(),
                )
            return None
        plan = self.plan(opt, hyper, dtype)
        if plan is None and opt.fused:
            raise ValueError(
                f"{type(opt).__name__}(fused=True): the chain {opt.rule!r} has no fused form "
                "with these options"
            )
        return plan

    def plan(self, opt: Optimizer, hyper: Mapping[str, Any], dtype: torch.dtype) -> Any:
        """The compiled plan for this group's structure, or None where the chain has no
        fused form (cached: one plan per structural signature and dtype)."""
        # the final lr is folded into the parameter update for batched learning rates too,
        # so a batched run is bit-identical to K separate runs
        key = (dtype, self.fold_lr, opt.rule.fuse_signature(hyper))
        if key in self.plans:
            return self.plans[key]
        builder = self.builder(opt, hyper)
        plan = None
        if builder is not None:
            try:
                plan = _fused.FusedPlan(builder, dtype)
            except _fused.FusedUnavailable as exc:
                if opt.fused:
                    raise
                warnings.warn(
                    f"descentlab: the fused backend is unavailable ({exc}); running eagerly",
                    RuntimeWarning,
                    stacklevel=4,
                )
        self.plans[key] = plan
        return plan

    def builder(self, opt: Optimizer, hyper: Mapping[str, Any]) -> CKernel | None:
        """The C kernel of the chain's collected program at this structure (a final plain
        learning rate folded into the update as coefficient ``neglr``); None where some rule
        has no fused form."""
        try:
            program = collect(opt.rule, hyper, self.fold_lr, leave_out_passing=True)
        except NoProgram:
            return None
        return CKernel(program)

    # ------------------------------------------------------------------ one group's step
    def refuse_state(
        self,
        opt: Optimizer,
        gi: int,
        plan: Any,
        params: list[Tensor],
        owners: list[Tensor] | None = None,
    ) -> None:
        """``fused=True``, the first phase of a step: raise on the group's state that exists
        and that its kernel cannot use (:meth:`run` would refuse it only after the groups
        before it had moved). Looked up without adding entries: nothing changes."""
        sts = opt._states.current(opt, gi, owners or params)
        cols: State = {k: [st.get(k) for st in sts] for k in plan.state_arrays}
        if owners is not None:
            cols = realify(cols)
        why = plan.existing_state_error(params, list(cols.values()))
        if why:
            raise ValueError(f"{type(opt).__name__}(fused=True): param group {gi}: {why}")

    def run(
        self,
        opt: Optimizer,
        gi: int,
        plan: Any,
        params: list[Tensor],
        grads: list[Tensor],
        sts: list[dict],
        hyper: Mapping[str, Any],
        values: list[float],
        owners: list[Tensor] | None = None,
    ) -> bool:
        """Run one group's step through ``plan``; False: run it eagerly instead.
        (``owners``: the complex parameters whose real views ``params`` are.)"""
        state: State = {k: [st.get(k) for st in sts] for k in plan.state_keys}
        if owners is not None:
            state = realify(state)
        state["step"] = [st["step"] for st in sts]
        state["_step_values"] = values
        why = plan.run(params, grads, state, hyper, values, plain=opt._hyper.plain.get(gi, False))
        if why:
            if opt.fused:
                torch._foreach_sub_(state["step"], 1)  # nothing else has changed yet
                raise ValueError(f"{type(opt).__name__}(fused=True): param group {gi}: {why}")
            if why not in self.announced:  # the same form runs: the result, not the speed
                self.announced.add(why)
                warnings.warn(
                    f"descentlab: {type(opt).__name__} runs param group {gi} eagerly: the "
                    f"fused kernel cannot step it ({why}); fused=True would refuse it",
                    RuntimeWarning,
                    stacklevel=caller_stacklevel(),
                )
            return False
        for key in dict.fromkeys(plan.fills):  # the prepares may have created them
            if key.startswith("_"):
                continue
            if owners is not None and key in plan.state_arrays:
                scatter(params, {key: state[key]}, sts, owners)
                continue
            for st, v in zip(sts, state[key], strict=True):
                st[key] = v
        self.remember(opt, gi, plan, params, sts, hyper)
        return True

    def remember(
        self,
        opt: Optimizer,
        gi: int,
        plan: SteadyPlan,
        params: list[Tensor],
        sts: list[dict],
        hyper: Mapping[str, Any],
    ) -> None:
        """Record the group's steady context where the next step may take the steady path:
        plain hyperparameters, every parameter stepped, no gradient check."""
        base = opt._states.step_bases.get(gi)
        group = opt.param_groups[gi]
        self.steady.pop(gi, None)
        if not (
            plan.steady_ok(params)
            and opt._hyper.plain.get(gi)
            and base is not None
            and opt._noop_precheck
            and len(params) == len(group["params"])
            and not any(callable(v) for v in group.values())
        ):
            return
        step_ids = [id(st.get("step")) for st in sts]
        shards = None
        if is_dtensor(group["params"][0]):  # ``params``: its local shards (sharded.py)
            if not opt.rule.shard_local:
                return
            shards = SteadyShards(group["params"])
            sts = opt._states.of(opt, gi, group["params"])  # (the same step counters)
        counts = memoryview(base[0])  # the step counters, without NumPy's call costs
        self.steady[gi] = SteadyContext(
            opt.state, opt.state.version, group["params"], len(params), hyper,
            *_signature(opt.rule, hyper), sts, plan, counts, step_ids, shards=shards,
        )  # fmt: skip

    # ------------------------------------------------------------------ the steady step
    def steady_step(self, opt: Optimizer) -> bool:
        """The whole step in as little Python as possible, while nothing but the gradients has
        changed since the last fused step (same parameters, all with gradients; same state
        tensors, constant hyperparameters, plans). Everything is checked
        for every group before anything changes (a chain's prepares that must run at every
        step run then, before its kernel); False sends the step down the general path.
        (Each check costs: this path exists because a step's Python runs with cold caches.)
        """
        state = opt.state
        if opt.monitor is not None or type(state) is not TrackedState:
            return False
        todo = []
        for gi, group in enumerate(opt.param_groups):
            ctx = self.steady.get(gi)
            if ctx is None or ctx.state is not state or ctx.version != state.version:
                return False
            launch = _steady_launch(opt, gi, ctx, group)
            if launch is None:
                return False
            todo.append((group, ctx, *launch))
        for group, ctx, params, ptrs, t in todo:
            if ctx.shards is None:
                ctx.plan.launch(params, ptrs, ctx.hyper, t)
            else:
                ctx.shards.launch(ctx.plan, params, ptrs, ctx.hyper, t)
            if type(t) is list:
                ctx.counts[:] = array(ctx.counts.format, t)
            else:
                ctx.counts[:] = array(ctx.counts.format, [t]) * ctx.n
            group["step"] = int(group["step"]) + 1
        opt.last_step_skipped = False
        return True


def _steady_launch(
    opt: Optimizer, gi: int, ctx: SteadyContext, group: dict
) -> tuple[list[Tensor], Any, float | list[float]] | None:
    """The tensors the kernel steps (the parameters, or their local shards), its pointers and
    the new step count for ``group``'s steady step (each parameter's, where the counts
    differ), or None
    where anything but the gradients and plain numeric hyperparameters (a schedule's) changed
    since ``ctx`` was recorded."""
    params = group["params"]
    # the parameters' storage is checked by pointer in steady_pointers
    if params is not ctx.params or len(params) != ctx.n:
        return None
    hyper = {k: v for k, v in group.items() if k not in NOT_HYPER}
    try:
        same = hyper == ctx.hyper
    except RuntimeError:  # a tensor hyperparameter with several values
        return None
    if not same:
        guard = ctx.guard
        if guard is not None and guard.admits(hyper):  # a schedule's step: this one call
            ctx.hyper = opt._hyper.validated[gi] = hyper
        elif not _rescheduled(opt, gi, ctx, hyper):
            return None
    sts = ctx.sts
    try:
        if [id(st["step"]) for st in sts] != ctx.step_ids:
            return None
        cols = [[st[key] for st in sts] for key in ctx.plan.state_keys]
    except KeyError:
        return None
    grads = [p.grad for p in params]
    if ctx.shards is not None:
        local = ctx.shards.local(params, grads, cols)
        if local is None:
            return None
        params, grads, cols = local
    ptrs = ctx.plan.steady_pointers(params, grads, cols)
    if ptrs is None:
        return None
    counts = ctx.counts.tolist()
    if counts.count(counts[0]) == ctx.n:
        return params, ptrs, counts[0] + 1
    return params, ptrs, [c + 1 for c in counts]


class _Reads(Mapping):
    """A read-only view of a mapping that records which keys were read."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data, self.read = data, set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self.data[key]

    def __iter__(self):
        self.read.update(self.data)
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def _signature(
    rule: Rule, hyper: Mapping[str, Any]
) -> tuple[tuple[Rule, ...], tuple, dict[str, tuple[int, ...]]]:
    """The rule's parts (a chain's rules), each part's structural signature at ``hyper``, and
    the parts whose signature read each key: only a change of such a key can change it."""
    parts = tuple(rule.rules) if isinstance(rule, Chain) else (rule,)
    sigs, readers = [], {}
    for i, r in enumerate(parts):
        reads = _Reads(hyper)
        sigs.append(r.fuse_signature(reads))
        for key in reads.read:
            readers[key] = (*readers.get(key, ()), i)
    return parts, tuple(sigs), readers


def _same_keys_moved(
    hyper: Mapping[str, Any], last: Mapping[str, Any], moved: Moved | None
) -> frozenset[str] | None:
    """``moved.keys`` where only their values changed since ``last``, to plain numbers (a
    schedule's: the common case, in a few C calls), else None (:func:`changed_numbers`
    decides)."""
    if moved is None or len(hyper) != len(last):
        return None
    try:
        if moved.rest is not None and moved.rest(hyper) != moved.rest_values:
            return None
        for k in moved.keys:
            v = hyper[k]
            if type(v) is not float and not number(v):
                return None
    except KeyError:
        return None
    return moved.keys


def _rescheduled(opt: Optimizer, gi: int, ctx: SteadyContext, hyper: dict[str, Any]) -> bool:
    """Take the numbers a schedule changed into ``ctx`` (a check of each changed value, and
    nothing else: no re-validation of the others, no new plan); False where more than numbers
    changed, or the chain's structure (its kernel) did -- the signature of each part that
    read a changed value is computed again, no other. A bad value raises, naming it, before
    any group's step has changed anything. (This runs before every scheduled step, in the
    cold caches of a step: what the changed keys need is found once, for the next steps.)"""
    moved = ctx.moved
    keys = _same_keys_moved(hyper, ctx.hyper, moved)
    if keys is None:
        keys = changed_numbers(hyper, ctx.hyper, moved.keys if moved is not None else frozenset())
    if keys is None:
        return False
    parts, signature = ctx.parts, ctx.signature
    if moved is None or keys is not moved.keys:
        readers = {i for key in keys for i in ctx.readers.get(key, ())}
        others = [k for k in hyper if k not in keys]
        rest = itemgetter(*others) if others else None
        checks = opt.rule.changed_checks(keys)
        values = rest and rest(hyper)
        guard = Guard.of(
            opt.rule, gi, keys, len(hyper), rest, values, parts, signature, ctx.readers
        )
        moved = Moved(keys, checks, tuple(sorted(readers)), rest, values, guard)
        ctx.guard = None
    for i in moved.readers:
        if parts[i].fuse_signature(hyper) != signature[i]:
            return False
    recheck(moved.checks, gi, hyper)
    ctx.hyper, ctx.moved = hyper, moved
    opt._hyper.validated[gi] = hyper
    if ctx.guard is None and moved.guard is not None and moved.guard.admits(hyper):
        ctx.guard = moved.guard  # values inside the bounds passed every check: armed
    return True
