"""How an :class:`~descentlab.optim.Optimizer` runs its compiled steps, whatever backend: the
one choice of a group's plan (:meth:`FusedPath.choose`: a CUDA group's Triton kernel,
:mod:`descentlab.optim.gpu`; a CPU group's C kernel, one plan per group, chain structure and
dtype, :mod:`descentlab.optim.fused`; else eager), the group's step through it
(:meth:`FusedPath.run`: a refusal, :class:`~descentlab.optim.plan.Refused`, becomes the eager
step said once or the error, in one place), and the *steady* step -- every group's whole step
in as little Python as possible while nothing but the gradients changes from one step to the
next (what it launches of either plan: :meth:`~descentlab.optim.plan.KernelPlan.launch`;
groups of one C kernel in one launch).
"""

from __future__ import annotations

import warnings
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import accumulate, chain
from operator import itemgetter
from typing import Any, Protocol

import torch
from torch import Tensor

from descentlab._announce import Once, once

from . import fused as _fused
from . import gpu as _gpu
from .base import Chain, GroupStep, Rule, caller_stacklevel
from .c_emitter import CKernel
from .dtensors import is_dtensor
from .hyper import NOT_HYPER, Guard, HyperChecks, changed_numbers, number, recheck
from .plan import KernelPlan, LaunchFailed, Refused
from .program import NoProgram, collect, has_kernel_form
from .sharded import SteadyShards
from .state import GroupStates, TrackedState, column, gather, realify, scatter


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


__all__ = ["FusedPath", "SteadyContext"]

_PARAMS = itemgetter("params")


@dataclass(slots=True)
class SteadyContext:
    """What one param group's steady step checks and uses, recorded after a fused step.

    Attributes:
        state: the optimizer's state mapping then, and ``version``, its mutation count.
        n: the group's number of parameters.
        hyper: the group's hyperparameters (Python values: compared by equality);
            ``signature``, the structure (kernel) of each of the chain's ``parts`` at them,
            and ``readers``, which parts' signatures read each hyperparameter.
        sts: the parameters' state dicts.
        plan: the compiled plan.
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
    n: int
    hyper: Mapping[str, Any]
    parts: tuple[Rule, ...]
    signature: tuple
    readers: dict[str, tuple[int, ...]]
    sts: list[dict]
    plan: KernelPlan
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


class FusedPath:
    """The fused backend of one optimizer: its compiled plans, the compiler check, and the
    steady contexts of its param groups, CPU and GPU (all caches: rebuilt after a copy or
    unpickling)."""

    def __init__(self, fold_lr: bool) -> None:
        #: a final plain ``scale_by_lr`` is folded into the parameter update
        self.fold_lr = fold_lr
        #: each group's compiled plan per structure and dtype (a plan records the storage its
        #: group's launches were checked against, so groups never share one)
        self.plans: dict[tuple, _fused.FusedPlan | None] = {}
        self.steady: dict[int, SteadyContext] = {}
        #: every group's context at once, for the steady step (None: made at the next one)
        self.bundle: _Bundle | None = None
        #: the contexts the general step now running has recorded (:meth:`settle`)
        self.recorded: list[SteadyContext] = []
        self._compiler: bool | None = None
        #: why a group ran eagerly under ``fused=None``, each said once per optimizer
        self.said = Once()

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
        except NoProgram as exc:
            missing = [r.name for r in opt.rule.rules if not has_kernel_form(r)]
            raise ValueError(
                f"fused=True: rule(s) {', '.join(missing) or 'of this chain'} have no fused "
                f"form in this position: {exc} (got {opt.rule!r})"
            ) from None

    def compiler_ok(self) -> bool:
        if self._compiler is None:
            self._compiler = _fused.fused_available()
        return self._compiler

    # ------------------------------------------------------------------ plans
    def choose(
        self,
        opt: Optimizer,
        gi: int,
        params: list[Tensor],
        grads: list[Tensor],
        hyper: Mapping[str, Any],
        owners: list[Tensor] | None,
        later: bool,
    ) -> KernelPlan | None:
        """The plan that steps these tensors of group ``gi`` (one device and dtype, unless the
        group runs eagerly): the Triton kernel's on a CUDA device, the C kernel's on the CPU;
        None: eager. What the kernel cannot step is refused here, before anything changes
        (:meth:`refused` decides what that becomes); ``later``: something may move before
        their update, so the state there is is checked too (as it is where the plan's step
        changes state before its own check)."""
        if opt.fused is False:
            return None
        gpu = _gpu.on_gpu(params)
        if opt.monitor is not None:  # it records each rule's updates: the eager backend's
            if opt.fused:
                self.announce(
                    f"monitor:{params[0].device}",
                    f"{type(opt).__name__}(fused=True) runs eagerly on {params[0].device} while "
                    "a monitor is attached (it records each rule's updates, which the kernel "
                    "never forms)",
                )
            return None
        try:
            if gpu:
                plan: KernelPlan | None = _gpu.triton_plan(opt, params, grads, hyper)
            else:
                plan = self.c_plan(opt, gi, hyper, params[0].dtype)
                if opt.fused and plan is not None:
                    # what the kernel refuses, refused here: a later group's refusal would
                    # otherwise come after the earlier groups' updates
                    _on_the_cpu(opt, gi, [*params, *grads])
                    plan.refuse_tensors(params, grads, hyper)
            if plan is not None and (
                plan.moves_first or (later and (opt.fused or plan.checks_cheaply))
            ):
                sts = opt._states.current(opt, gi, owners or params)
                plan.refuse_state(gi, params, sts, owners is not None)
        except Refused as exc:
            where = f" on {params[0].device}" if gpu else ""
            self.refused(opt, gi, exc, where)
            return None
        if plan is not None and plan.notice:
            owner = type(opt).__name__
            self.announce(
                f"notice:{plan.notice}",
                f"{owner}: {plan.notice} on {params[0].device}; the rest of its chain in one "
                "Triton launch per group",
            )
        return plan

    def refused(self, opt: Optimizer, gi: int, exc: Refused, where: str = "") -> None:
        """What a refusal of group ``gi``'s tensors becomes (``where``: the device, where not
        the CPU): the error, where ``fused=True`` or nothing steps them (the step count put
        back first by the caller), else the eager step, said once per optimizer and reason."""
        owner = type(opt).__name__
        if opt.fused or not exc.eager:
            asked = "(fused=True)" if opt.fused else ""
            raise Refused(f"{owner}{asked}{where}: param group {gi}: {exc}", eager=exc.eager)
        self.announce(  # the same form runs: the result, not the speed
            str(exc),
            f"{owner} runs param group {gi} eagerly{where}: the fused kernel cannot step it "
            f"({exc}); fused=True would refuse it",
        )

    def announce(self, key: str, message: str) -> None:
        """Say ``message`` once per optimizer and ``key``."""
        self.said(key, f"descentlab: {message}", stacklevel=caller_stacklevel())

    def c_plan(
        self, opt: Optimizer, gi: int, hyper: Mapping[str, Any], dtype: torch.dtype
    ) -> _fused.FusedPlan | None:
        """The C kernel's plan of a CPU group of ``dtype``, or None (a dtype it has no kernel
        for, no compiler; ``fused=True``: a chain with no fused form is refused here)."""
        if dtype not in _fused.DTYPES:
            return None  # fused=True raised in phase 1
        if opt.fused is None and not self.compiler_ok():
            once(
                ("no-compiler",),
                "descentlab: no C++ compiler (g++ or c++ on PATH, or $CXX): optimizers "
                "step eagerly (the same result, slower; fused=True is refused)",
                stacklevel=caller_stacklevel(),
            )
            return None
        plan = self.plan(opt, gi, hyper, dtype)
        if plan is None and opt.fused:
            raise ValueError(
                f"{type(opt).__name__}(fused=True): the chain {opt.rule!r} has no fused form "
                "with these options"
            )
        return plan

    def plan(
        self, opt: Optimizer, gi: int, hyper: Mapping[str, Any], dtype: torch.dtype
    ) -> _fused.FusedPlan | None:
        """Group ``gi``'s compiled plan for its structure, or None where the chain has no fused
        form (cached: one plan per group, structural signature and dtype; groups of one
        structure share the kernel, each its own plan)."""
        # the final lr is folded into the parameter update for batched learning rates too,
        # so a batched run is bit-identical to K separate runs
        key = (dtype, self.fold_lr, opt.rule.fuse_signature(hyper))
        if (gi, key) in self.plans:
            return self.plans[(gi, key)]
        kernel = next((p.c for (_, k), p in self.plans.items() if k == key and p), None)
        if kernel is None and not any(k == key for _, k in self.plans):
            kernel = self.builder(opt, hyper)
        plan = None
        if kernel is not None:
            try:
                plan = _fused.FusedPlan(kernel, dtype)
            except _fused.FusedUnavailable as exc:
                if opt.fused:
                    raise
                warnings.warn(
                    f"descentlab: the fused backend is unavailable ({exc}); running eagerly",
                    RuntimeWarning,
                    stacklevel=caller_stacklevel(),
                )
        self.plans[(gi, key)] = plan
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
    def run(
        self,
        opt: Optimizer,
        gi: int,
        plan: KernelPlan,
        params: list[Tensor],
        grads: list[Tensor],
        sts: list[dict],
        hyper: Mapping[str, Any],
        values: list[float],
        owners: list[Tensor] | None = None,
    ) -> bool:
        """Run one group's step through ``plan``; False: run it eagerly instead (said once).
        (``owners``: the complex parameters whose real views ``params`` are.) A refusal that
        is an error puts the step count back: nothing else has changed."""
        if plan.whole_state:
            state = gather(sts)
        else:
            state = {k: [st.get(k) for st in sts] for k in (*plan.state_keys, "step")}
        if owners is not None:
            state = realify(state)
        state["_step_values"] = values
        try:
            group = GroupStep(params, grads, state, hyper, values)
            plan.run(group, opt._hyper.plain.get(gi, False))
        except Refused as exc:
            try:
                self.refused(opt, gi, exc, f" on {params[0].device}" if _gpu.on_gpu(params) else "")
            except Refused:
                torch._foreach_sub_(state["step"], 1)
                raise
            return False
        except (torch.OutOfMemoryError, LaunchFailed) as exc:  # before the kernel ran
            torch._foreach_sub_(state["step"], 1)
            raise _fault(opt, [gi], params, exc, list(range(gi)), plan.moves_first) from None
        # the prepares may have made state entries (a prefix's torch ops, replaced any)
        made = state if plan.whole_state else {k: state[k] for k in plan.fills if k in state}
        scatter(params, made, sts, owners)
        self.remember(opt, gi, plan, params, sts, hyper)
        return True

    def remember(
        self,
        opt: Optimizer,
        gi: int,
        plan: KernelPlan,
        params: list[Tensor],
        sts: list[dict],
        hyper: Mapping[str, Any],
    ) -> None:
        """Record the group's steady context where the next step may take the steady path:
        plain hyperparameters, every parameter stepped, no gradient check."""
        base = opt._states.step_bases.get(gi)
        group = opt.param_groups[gi]
        self.steady.pop(gi, None)
        self.bundle = None
        if not (
            plan.steady_ok(params)
            and opt._hyper.plain.get(gi)
            and base is not None
            and opt._noop_precheck
            and len(params) == len(group["params"])
            and not any(callable(v) for v in group.values())
        ):
            return
        shards = None
        if is_dtensor(group["params"][0]):  # ``params``: its local shards (sharded.py)
            if not opt.rule.shard_local:
                return
            shards = SteadyShards(group["params"], bool(plan.prepare_fns))
            sts = opt._states.of(opt, gi, group["params"])  # (the same step counters)
        self.steady[gi] = ctx = SteadyContext(
            opt.state, opt.state.version, len(params), hyper,
            *_signature(opt.rule, hyper), sts, plan, shards=shards,
        )  # fmt: skip
        self.recorded.append(ctx)

    # ------------------------------------------------------------------ the steady step
    def settle(self, opt: Optimizer) -> None:
        """After a general step's updates: the contexts it recorded hold the state as it is
        now (a later group's new state entries, made after an earlier group's context was
        recorded, are no change to the earlier group's)."""
        for ctx in self.recorded:
            ctx.version = opt.state.version
        self.recorded.clear()

    def steady_step(self, opt: Optimizer) -> bool:
        """The whole step in as little Python as possible, while nothing but the gradients (and
        a schedule's numbers) has changed since the last fused step: same parameters, all with
        gradients; same state tensors, plans, structure. Groups whose C kernel is the same run
        as one launch, each with its own coefficients (:class:`_Bundle`). Everything is checked
        for every group before anything changes (a chain's prepares that must run at every
        step run then, before its kernel); False sends the step down the general path. (Each
        check costs: this path exists because a step's Python runs with cold caches.)"""
        state = opt.state
        if opt.monitor is not None or type(state) is not TrackedState:
            return False
        b = self.bundle
        if b is None or b.state is not state or b.version != state.version:
            b = self.bundle = _Bundle.of(opt, self.steady)
            if b is None:
                return False
        groups = opt.param_groups
        # (the tensors in these lists are checked by their addresses, with the state's)
        lists = list(map(_PARAMS, groups))  # (no comprehension: a frame fewer each step)
        if list(map(len, lists)) != b.lens or not b.current(opt):
            return False
        try:
            if [id(st["step"]) for st in b.sts] != b.step_ids:
                return False
        except KeyError:
            return False
        todo = []
        for unit in b.units:
            try:  # (a device's tables of pointers made here, before any group launches)
                launch = unit.pointers(lists)
            except torch.OutOfMemoryError as exc:
                raise _fault(opt, unit.gis, lists[unit.gis[0]], exc, []) from None
            if launch is None:
                return False
            todo.append(launch)
        col = b.counts.tolist()  # every group's step counters, one column
        same = col.count(col[0]) == len(col)
        for k, (unit, (params, ptrs)) in enumerate(zip(b.units, todo, strict=True)):
            t = col[0] + 1 if same else [col[i] + 1 for i in unit.index]  # type: ignore[union-attr]
            try:
                unit.plan.launch(params, ptrs, unit.hyper, t)
            except (torch.OutOfMemoryError, LaunchFailed) as exc:  # its kernel did not run
                b.advance(groups, col, same, b.units[:k])
                done = [gi for u in b.units[:k] for gi in u.gis]
                raise _fault(opt, unit.gis, params, exc, done, unit.plan.per_step) from None
        b.advance(groups, col, same)
        opt.last_step_skipped = False
        return True


def _fault(
    opt: Optimizer,
    gis: list[int],
    params: list[Tensor],
    exc: BaseException,
    done: list[int],
    moved: bool = False,
) -> RuntimeError:
    """The one-line error of groups ``gis`` whose step ran out of device memory or whose
    kernel did not launch, their step counts as before (``done``: the groups that took the
    step all the same; ``moved``: work before the kernel changed their state)."""

    def named(gs: list[int]) -> str:
        return f"param group{'s' * (len(gs) > 1)} {', '.join(map(str, gs))}"

    if moved:  # (torch ops or a prepare before the kernel)
        kept = f"the work before the kernel of {named(gis)} ran: resume from a checkpoint"
    elif done:
        kept = f"{named(done)} took the step; {named(gis)} did not, as before the step"
    else:
        kept = "the parameters and optimizer state are as before the step"
    return _gpu.fault(type(opt).__name__, f"{named(gis)} ({params[0].device})", exc, kept)


@dataclass(slots=True)
class _Unit:
    """What the steady step launches at once: the groups of one C kernel (their tensors in
    one list: a merged plan, :meth:`~descentlab.optim.plan.KernelPlan.merged`), or one group
    with its own plan (a Triton plan, a group of DTensors stepped on its ``shards``, a plan
    with work before each launch)."""

    plan: KernelPlan
    gis: list[int]
    sts: list[dict]
    #: the group's hyperparameters, or each group's (a merged plan: a list)
    hyper: Any
    shards: SteadyShards | None = None
    #: where its tensors' step counters are in the bundle's column
    index: list[int] | None = None

    def pointers(self, lists: list[list[Tensor]]) -> tuple[list[Tensor], Any] | None:
        """The tensors the kernel steps (the parameters, or their local shards) and its
        pointers, or None where anything but the gradients moved since the last launch."""
        gis = self.gis
        params = (
            lists[gis[0]] if len(gis) == 1 else [*chain.from_iterable(map(lists.__getitem__, gis))]
        )
        try:
            cols = [[st[key] for st in self.sts] for key in self.plan.state_keys]
        except KeyError:
            return None
        grads = [p.grad for p in params]
        if self.shards is not None:
            local = self.shards.local(params, grads, cols)
            if local is None:
                return None
            params, grads, cols = local
        ptrs = self.plan.steady_pointers(params, grads, cols)
        return None if ptrs is None else (params, ptrs)


@dataclass(slots=True)
class _Bundle:
    """Every param group's steady context at once (the steady step runs only where every
    group has one): the groups' snapshots (a step whose groups equal them compares nothing
    else of their hyperparameters), their numbers of parameters, the state dicts of all their
    parameters, the step counters of all of them as one column (one read and one write a
    step, whatever the number of groups), and the launches (:class:`_Unit`)."""

    state: TrackedState
    version: int
    ctxs: list[SteadyContext]
    lens: list[int]
    #: each group as last stepped (None: compared in full at the next step)
    snaps: list[dict | None]
    sts: list[dict]
    #: ``id`` of each parameter's step counter; ``steps``, those tensors, held so that no new
    #: tensor can take one of those ids (an address freed and reused)
    step_ids: list[int]
    steps: list[Tensor]
    #: the counters' column (a view, without NumPy's call costs; a parameter whose first
    #: gradient came later keeps a smaller count)
    counts: memoryview
    units: list[_Unit]
    #: each group's unit and its place there
    where: list[tuple[_Unit, int]]

    @classmethod
    def of(cls, opt: Optimizer, steady: dict[int, SteadyContext]) -> _Bundle | None:
        """The bundle of ``steady``'s contexts, or None unless every group has one, recorded
        at the state there is, and the counters of all can be one column (one dtype)."""
        state, n = opt.state, len(opt.param_groups)
        ctxs = [steady[gi] for gi in range(n) if gi in steady]
        if not ctxs or len(ctxs) != n:
            return None
        if any(c.state is not state or c.version != state.version for c in ctxs):
            return None
        sts = [st for c in ctxs for st in c.sts]
        counts = column(sts, "step")  # (the groups' columns laid out as one)
        if counts is None:
            return None
        starts = list(accumulate((c.n for c in ctxs), initial=0))
        kernels: dict[Any, list[int]] = {}
        for gi, c in enumerate(ctxs):
            merges = c.shards is None and c.plan.merges
            kernels.setdefault(id(c.plan.kernel) if merges else (gi,), []).append(gi)  # type: ignore[attr-defined]
        units, where = [], []
        for gis in kernels.values():
            index = [i for gi in gis for i in range(starts[gi], starts[gi + 1])]
            if len(gis) == 1:
                c = ctxs[gis[0]]
                unit = _Unit(c.plan, gis, c.sts, c.hyper, c.shards, index)
            else:
                hypers = [ctxs[gi].hyper for gi in gis]
                plan = ctxs[gis[0]].plan.merged([ctxs[gi].plan for gi in gis], hypers)  # type: ignore[attr-defined]
                unit = _Unit(plan, gis, [sts[i] for i in index], hypers, index=index)
            units.append(unit)
            where += [(gi, (unit, i)) for i, gi in enumerate(gis)]
        steps = [st["step"] for st in sts]
        return cls(
            state, state.version, ctxs, [c.n for c in ctxs], [None] * n, sts,
            list(map(id, steps)), steps, memoryview(counts), units,
            [u for _, u in sorted(where, key=itemgetter(0))],
        )  # fmt: skip

    def advance(
        self, groups: list[dict], col: list[float], same: bool, done: list[_Unit] | None = None
    ) -> None:
        """Add 1 to the step counters (``col``: their values; ``same``: all equal; one write)
        and to the groups' ``step``: every group's, or the groups of the units ``done``
        (those that took the step before a fault)."""
        c, snaps = self.counts, self.snaps
        if done is not None:
            for unit in done:
                for i in unit.index:  # type: ignore[union-attr]
                    c[i] = col[i] + 1
                for gi in unit.gis:
                    groups[gi]["step"] = step = int(groups[gi]["step"]) + 1
                    if snaps[gi] is not None:
                        snaps[gi]["step"] = step  # type: ignore[index]
            return
        if same:
            c[:] = array(c.format, [col[0] + 1]) * len(col)
        else:
            c[:] = array(c.format, [x + 1 for x in col])
        for group, snap in zip(groups, snaps, strict=True):  # (a plain loop: map costs more)
            group["step"] = step = int(group["step"]) + 1
            if snap is not None:
                snap["step"] = step

    def current(self, opt: Optimizer) -> bool:
        """Whether every group is as its snapshot, else take the numbers that a schedule
        changed (in a group unlike its snapshot); False where more than numbers changed, or
        the structure of a group's kernel did (a bad value raises, naming it, before anything
        changed). A group whose numbers moved keeps no snapshot (a schedule moves them again
        at the next step); it takes one at the first step they stay."""
        groups, snaps = opt.param_groups, self.snaps
        try:
            same = groups == snaps
        except RuntimeError:  # a tensor of several values: group by group below
            same = False
        if same:
            return True
        for gi, snap in enumerate(snaps):
            group = groups[gi]
            try:
                if snap is not None and group == snap:
                    continue
            except RuntimeError:  # a tensor of several values
                return False
            ctx = self.ctxs[gi]
            hyper = dict(group)  # (no comprehension: a scheduled step enters one call more)
            for k in NOT_HYPER:
                hyper.pop(k, None)
            try:
                same = hyper == ctx.hyper
            except RuntimeError:  # a tensor hyperparameter with several values
                return False
            if same:
                snaps[gi] = dict(group)
                continue
            guard = ctx.guard
            if guard is not None and guard.admits(hyper):  # a schedule's step: one call
                ctx.hyper = opt._hyper.validated[gi] = hyper
            elif not _rescheduled(opt, gi, ctx, hyper):
                return False
            unit, i = self.where[gi]
            if type(unit.hyper) is list:
                unit.hyper[i] = ctx.hyper
                unit.plan.vary(ctx.moved.keys if ctx.moved is not None else hyper.keys())
            else:
                unit.hyper = ctx.hyper
            snaps[gi] = None
        return True


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


def _on_the_cpu(opt: Optimizer, gi: int, tensors: list[Tensor]) -> None:
    """Refuse, as torch's fused step does, a tensor of group ``gi`` that is not on the CPU
    (torch's RuntimeError and words)."""
    for t in tensors:
        if not t.is_cpu:
            raise RuntimeError(
                "`fused=True` requires all the params to be floating point Tensors of "
                f"supported devices: ['cpu', 'cuda'] but {t.dtype} and "
                f"{t.device.type} ({type(opt).__name__}'s fused step runs on the CPU, "
                f"and on CUDA through Triton; param group {gi})"
            )
