"""A ``torch.optim.Optimizer`` that runs a chain of update rules for each param group."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from operator import is_not
from typing import Any

import torch
from torch import Tensor
from torch.optim import optimizer as _torch_optimizer

from descentlab._announce import once

from . import compiled as _compiled
from . import differentiable as _differentiable
from . import fused as _fused
from . import sharded as _sharded
from .base import (
    Chain,
    HyperparameterTypeError,
    Rule,
    State,
    caller_stacklevel,
    chain,
    check_bool,
    dense,
    laid_out_as,
    scalar_dtype,
)
from .dtensors import any_dtensor, is_dtensor
from .eager import EagerPath
from .fusedpath import FusedPath
from .hyper import HyperChecks, check_group, check_known, resolve
from .lowbit import StateFormat
from .mixing import splits
from .program import has_kernel_form, why_no_form
from .state import (
    GroupStates,
    as_real,
    column_numbers,
    gather,
    init_new,
    realify,
    refuse_unlike_init,
    scatter,
)
from .stored import check_stored_params, loader, stored_chain

__all__ = ["SETTINGS_ONLY", "Monitor", "Optimizer", "apply_updates"]


#: ``params`` with which a constructor checks every setting as over parameters and returns,
#: nothing built (no param group, no state): how a comparison's plan checks its choices
SETTINGS_ONLY: Any = object()


_GLOBAL_PRE_HOOKS = _torch_optimizer._global_optimizer_pre_hooks
_GLOBAL_POST_HOOKS = _torch_optimizer._global_optimizer_post_hooks
_profiler_enabled = torch.autograd._profiler_enabled
_is_compiling = torch.compiler.is_compiling
_in_compiled_region = _compiled.in_compiled_region

#: per-step caches, left out of copies and pickles (rebuilt on the next step; whether a
#: compiler is present is asked again where an unpickled optimizer runs)
_CACHES = frozenset(
    ("_fused", "_eager", "_states", "_hyper", "_graph_handle", "_graph_params", "_sharded")
)
#: instance attributes torch's LR schedulers attach to an optimizer (not copied, as in torch)
_ATTACHED = frozenset(("step", "_opt_called"))


def _announce_eager(rule: Chain, owner: str) -> None:
    """Say once per rule class that ``fused=None`` runs a chain eagerly because this rule has
    no fused form (``fused=True`` is refused for it, ``fused=False`` asks for eager)."""
    for r in rule.rules:
        cls = type(r)
        if not has_kernel_form(r):
            once(
                ("eager", cls),
                f"descentlab: {r.name} has no fused form ({why_no_form(r)}); fused=None runs "
                f"{owner} eagerly "
                "(pass fused=False to say so and silence this warning)",
                stacklevel=caller_stacklevel(),
            )


@dataclass
class Monitor:
    """Opt-in per-step statistics of every param group, recorded by the optimizer.

    Each record holds: ``step`` (the group's step count), ``group`` (index), ``grad_norm``
    (L2 norm of the group's raw gradients), ``update_norm`` (L2 norm of the applied update),
    ``param_norm`` (before the update), ``update_ratio`` (update_norm / param_norm -- the
    "update-to-parameter ratio"; ~1e-3 is Karpathy's rule of thumb) and the numeric
    hyperparameters used at that step.

    Attach with :meth:`Optimizer.attach_monitor` (or ``monitor=True`` at construction).
    Nothing is computed while no monitor is attached.
    """

    every: int = 1
    records: list[dict[str, Any]] = field(default_factory=list)

    def record(
        self,
        step: int,
        index: int,
        grads: list[Tensor],
        updates: list[Tensor],
        params: list[Tensor],
        hyper: Mapping[str, Any],
    ) -> None:
        """Record param group ``index``'s step ``step`` if it is an ``every``-th one."""
        if step % self.every:
            return
        self.add(step, index, (self.norms(grads), self.norms(updates), self.norms(params)), hyper)

    def norms(self, tensors: list[Tensor]) -> Tensor:
        """The L2 norm over ``tensors`` (a monitor of several stacked runs: each run's)."""
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))

    def add(
        self, step: int, index: int, norms: tuple[Tensor, Tensor, Tensor], hyper: Mapping[str, Any]
    ) -> None:
        """Append one record of the gradients', update's and parameters' norms computed
        elsewhere (0-d tensors; :meth:`record` computes them from the step's tensors, a
        vectorized group from its slice of them)."""
        gn, un, pn = norms
        rec: dict[str, Any] = {
            "step": step,
            "group": index,
            "grad_norm": float(gn),
            "update_norm": float(un),
            "param_norm": float(pn),
            "update_ratio": float(un / pn) if float(pn) > 0 else float("inf"),
        }
        for k, v in hyper.items():
            if isinstance(v, bool):
                continue
            if isinstance(v, int | float):
                rec[k] = float(v)
            elif isinstance(v, tuple) and all(isinstance(x, int | float) for x in v):
                for i, x in enumerate(v):
                    rec[f"{k}[{i}]"] = float(x)
        self.records.append(rec)

    def series(self, key: str, group: int = 0) -> tuple[list[int], list[float]]:
        """(steps, values) of one statistic for one group."""
        rows = [r for r in self.records if r["group"] == group and key in r]
        return [r["step"] for r in rows], [r[key] for r in rows]


@dataclass(slots=True)
class _GroupStep:
    """One param group's step, between the checks (phase 1) and the update (phase 2):
    its parameters with gradients (real views of complex ones, whose ``owners`` they are),
    resolved hyperparameters, new step count, sparsity, and its ``parts``: each a compiled
    plan (None: eager) with the positions of the tensors it steps (None: all of them; a group
    of several devices or dtypes has one part each, as torch's fused steps group them)."""

    gi: int
    group: dict[str, Any]
    params: list[Tensor]
    grads: list[Tensor]
    hyper: dict[str, Any]
    step: int
    parts: list[tuple[Any, list[int] | None]]
    owners: list[Tensor] | None
    sparse: bool
    #: a group of DTensors: the local shards (or gathered values) ``params`` and ``grads`` are
    sharded: _sharded.ShardedGroup | None = None


def _is_dynamo_disabled_wrapper(fn: Any) -> bool:
    code = getattr(fn, "__code__", None)
    return (
        code is not None
        and code.co_name == "inner"
        and code.co_filename.endswith("_compile.py")
        and hasattr(fn, "__wrapped__")
    )


def _torch_method(name: str) -> Callable[..., Any]:
    """``torch.optim.Optimizer``'s method ``name``.

    torch wraps ``add_param_group``, ``zero_grad``, ``state_dict`` and ``load_state_dict`` in
    ``torch._disable_dynamo``, which imports ``torch._dynamo`` at the first call (~1.1 s: a
    process that trains spent it before its first step) only so that they run uncompiled.
    While ``torch._dynamo`` has not been imported nothing can be compiling, so the function
    inside is called directly: the same code in the same situation. Once it is imported, the
    wrapped method is called, as torch calls it."""
    fn = getattr(torch.optim.Optimizer, name)
    if "torch._dynamo" not in sys.modules and _is_dynamo_disabled_wrapper(fn):
        return fn.__wrapped__
    return fn


class Optimizer(torch.optim.Optimizer):
    """Run an update rule (usually a :func:`chain`) on each param group.

    Works wherever a torch optimizer works: param groups with their own hyperparameters,
    ``zero_grad``, closures, ``state_dict``/``load_state_dict``, torch's ``LRScheduler`` (it
    sets ``group["lr"]``), step hooks. Parameters without a gradient are skipped; sparse
    gradients are refused except where :attr:`sparse_grads` (SGD, Adagrad). A complex
    parameter is stepped as a pair of reals (torch's ``view_as_real``): every rule runs on the
    real views, the state stays complex.

    Each step first validates every group's hyperparameters and runs the rules' gradient
    checks (:class:`~descentlab.optim.non_finite_guard`), and only then changes anything, so
    bad values or a refused step leave parameters and state as they were.
    A value of the wrong type raises :class:`~descentlab.optim.HyperparameterTypeError` (a
    ``TypeError``, as torch's optimizers raise, and a ``ValueError``), one out of range
    ``ValueError``; both name the parameter and the value.

    ``copy.deepcopy``, pickling and ``torch.compile`` work as docs/optimizers.md says. Two
    backends run the chain: the *fused* one (:mod:`descentlab.optim.fused`, one compiled loop
    over each parameter's memory) where it applies -- float32, float64, float16 or bfloat16
    dense CPU tensors (contiguous, or laid out as channels_last or a transpose, each gradient
    and state as its parameter), a chain whose rules all have a fused form, no monitor
    attached, a C++ compiler present --, the *eager* one (``torch._foreach_*`` kernels, rule
    by rule) elsewhere; ``fused=True`` insists (errors say why it cannot run), ``fused=False``
    never fuses.

    Args:
        params: an iterable of tensors, of dicts (param groups) or of (name, tensor) pairs.
        rule: the update rule, e.g. ``chain(scale_by_adam(), scale_by_lr(1e-3))``.
        monitor: record per-step statistics into ``self.monitor`` (see :class:`Monitor`).
        fused: backend choice (None: fused where it applies, True: always, False: eager).
        **hyper: overrides of the rule's hyperparameter defaults.

    Example:
        >>> import torch
        >>> from descentlab import optim
        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = optim.Optimizer([w], optim.chain(optim.trace(0.9), optim.scale_by_lr(0.1)))
        >>> (w ** 2).sum().backward(); _ = opt.step()
        >>> w.detach()
        tensor([0.8000, 0.8000, 0.8000])
    """

    #: whether sparse gradients (``nn.Embedding(sparse=True)``) are accepted (torch: SGD and
    #: Adagrad); they are stepped densely, rows without a gradient as zeros, never fused
    sparse_grads: bool = False
    #: ``fused=None`` on a chain with a rule that has no fused form says once that it runs
    #: eagerly (a chain of one's own); a named optimizer's chain is the library's and says
    #: nothing (:class:`~descentlab.optim.torchapi.Named`)
    announces_eager: bool = True
    #: hyperparameters that change the chain's structure; param groups may not override them
    fixed: Mapping[str, Any] = {}
    #: elementwise chains run over a group in chunks of about this many elements, so each
    #: chunk's parameters, gradients and state stay in cache across the chain's passes
    chunk_elements: int = 1 << 18

    def __init__(
        self,
        params: Iterable[Any],
        rule: Rule,
        *,
        monitor: bool | Monitor = False,
        fused: bool | None = None,
        state_dtype: str | StateFormat | None = None,
        differentiable: bool = False,
        **hyper: Any,
    ) -> None:
        if fused is not None:
            check_bool("fused", fused)
        check_bool("differentiable", differentiable)
        if differentiable and fused:  # torch's words and type
            raise RuntimeError(
                "`fused` does not support `differentiable` (the fused step is compiled code "
                f"autograd cannot trace: {type(self).__name__} got fused=True, "
                "differentiable=True)"
            )
        if not isinstance(rule, Rule):
            raise HyperparameterTypeError(
                f"rule must be an update rule (descentlab.optim.Rule), got {rule!r}"
            )
        self.rule: Chain = rule if isinstance(rule, Chain) else chain(rule)
        check_known(self.rule, hyper)
        # A final plain scale_by_lr is folded into the parameter update (p += -lr * u): one
        # pass and one temporary fewer per step, as torch's own kernels do.
        last = self.rule.rules[-1]
        self._fold_lr = type(last).__name__ == "scale_by_lr" and "lr_decay" not in last.defaults
        defaults = {**self.rule.defaults, **hyper}
        #: the defaults' values as checked: a group added with the same is not checked again
        self._checked = check_group(self, defaults, where="defaults")
        self.rule = self.rule.bound(defaults)  # its repr shows the values in use
        #: how the rules' state is stored (descentlab.optim.lowbit): None, the parameters' dtype
        self.state_dtype = stored_chain(self.rule, state_dtype, type(self).__name__)
        self.monitor: Monitor | None = None
        #: autograd records the step (torch's ``differentiable``): it runs eagerly with
        #: gradients enabled (:mod:`descentlab.optim.differentiable`)
        self.differentiable = differentiable
        self.fused = False if differentiable else fused
        if differentiable:
            _differentiable.check_traceable(self.rule, type(self).__name__)
        if fused:
            FusedPath.refuse_impossible(self, defaults)
        self._reset_caches()
        if params is SETTINGS_ONLY:
            if fused is None and self.announces_eager:
                _announce_eager(self.rule, type(self).__name__)
            return
        if params is None:
            _refuse_batched_without_params(defaults)
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of Tensors or dicts (a "
                "model's .parameters(), a list of tensors or of param-group dicts), got None"
            )
        self._noop_precheck = type(self.rule.rules[0]).precheck is Rule.precheck
        self._lookahead = any(getattr(r, "lookahead", False) for r in self.rule.rules)
        self.last_step_skipped = False
        self.skipped_steps = 0
        if differentiable:  # torch's mark: its add_param_group then accepts non-leaf tensors
            defaults = {**defaults, "differentiable": True}
        super().__init__(params, defaults)
        if fused is None and self.announces_eager:
            _announce_eager(self.rule, type(self).__name__)
        # a subclass that overrides step() gets torch's wrapper, which runs the hooks
        self._runs_hooks = type(self).step is Optimizer.step
        if monitor:
            self.attach_monitor(monitor if isinstance(monitor, Monitor) else None)

    # ------------------------------------------------------------------ set-up
    def _reset_caches(self) -> None:
        """Empty every per-step cache (at construction and after copying or unpickling:
        the caches hold compiled kernels, raw pointers and views, rebuilt on the next step;
        what was said stays said: a loaded state does not say it again)."""
        said = self.__dict__.get("_fused")
        self._fused = FusedPath(self._fold_lr)
        if said is not None:
            self._fused.said = said.said
        self._eager = EagerPath(self.rule, self._fold_lr, self.differentiable)
        self._states = GroupStates()
        #: the rule's initial state tensors per parameter shape and dtype (refuse_unlike_init)
        self._init_made: dict[tuple, dict[str, Tensor]] = {}
        #: each later eager group's state entries as last checked (the same objects pass)
        self._init_checked: dict[int, tuple] = {}
        self._hyper = HyperChecks()
        self._sharded = _sharded.ShardedPath()
        self._graph_handle = _compiled.handle(self, self.__dict__.get("_graph_handle"))
        self._graph_params: list[Tensor] = []
        if hasattr(self, "param_groups"):
            self._list_graph_params()

    def _list_graph_params(self) -> None:
        """Every parameter in param-group order: what a step traced by ``torch.compile``
        reads (:func:`descentlab.optim.compiled.step_in_graph`)."""
        self._graph_params = [p for g in self.param_groups for p in g["params"]]

    def __getstate__(self) -> dict[str, Any]:
        # torch's keeps only defaults, state and param_groups; the rule, backend choice,
        # monitor and counters are part of this optimizer too. Left out as torch leaves them
        # out: hooks, and what an LRScheduler attached (an instance ``step`` that wraps the
        # original's step: a copy keeping it would step the original)
        return {
            k: v
            for k, v in self.__dict__.items()
            if k not in _CACHES and k not in _ATTACHED and not k.startswith("_optimizer_")
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("differentiable", False)  # pickled before it existed
        super().__setstate__(state)
        self._reset_caches()  # load_state_dict comes here too

    def probe_like(self, params: Any, rule: Rule, hyper: Mapping[str, Any]) -> Optimizer:
        """A plain eager optimizer of ``rule`` over ``params`` at ``hyper``, silent: the probe
        :mod:`~descentlab.optim.mixing` steps to see whether this one's chain mixes runs."""
        opt = Optimizer(params, rule, fused=False, **hyper)
        opt.announces_eager = False
        return opt

    def zero_grad(self, set_to_none: bool = True) -> None:
        """torch's ``zero_grad`` (see :func:`_torch_method`)."""
        _torch_method("zero_grad")(self, set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """torch's ``state_dict`` (see :func:`_torch_method`)."""
        return _torch_method("state_dict")(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's ``load_state_dict`` (see :func:`_torch_method`); low-bit state
        (``state_dtype``) keeps its stored dtypes (:func:`~descentlab.optim.lowbit.loader`)."""
        restore = loader(self, state_dict)  # refuses before anything changes
        keep = self._own_dtypes(state_dict)
        _torch_method("load_state_dict")(self, state_dict)
        restore()
        for p, entries in keep:
            self.state[p].update({k: v.to(device=p.device) for k, v in entries.items()})
        self._lay_out_state()

    def _own_dtypes(self, state_dict: dict[str, Any]) -> list[tuple[Tensor, dict[str, Tensor]]]:
        """The saved entries the chain's rules keep in a dtype of their own
        (:attr:`~descentlab.optim.Rule.own_dtype`), per parameter, to be put back after torch's
        load has cast them to the parameter's dtype."""
        keys = {k for r in self.rule.rules for k in r.own_dtype}
        saved = state_dict.get("state", {})
        if not keys or not saved:
            return []
        ids = itertools.chain.from_iterable(g["params"] for g in state_dict["param_groups"])
        params = (p for g in self.param_groups for p in g["params"])
        out = []
        for pid, p in zip(ids, params, strict=False):
            st = saved.get(pid) or {}
            entries = {k: v for k, v in st.items() if k in keys and isinstance(v, Tensor)}
            if entries:
                out.append((p, entries))
        return out

    def _lay_out_state(self) -> None:
        """Loaded state tensors laid out as their parameters, and per-tensor numbers as one
        column per group (:func:`~descentlab.optim.state.column_numbers`), the values
        unchanged: a checkpoint of a contiguous model resumed after ``model.to(memory_format=
        torch.channels_last)`` (or the other way round) keeps its fused steps, whose kernels
        read each state tensor beside its parameter in memory order."""
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state.get(p)
                if not st or not dense(p):
                    continue
                for key, v in st.items():
                    if not (isinstance(v, Tensor) and v.layout == torch.strided):
                        continue
                    if v.shape == p.shape and not laid_out_as(v, p):
                        st[key] = torch.empty_like(p, dtype=v.dtype).copy_(v)
            column_numbers([self.state[p] for p in group["params"] if p in self.state])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _torch_method("add_param_group")(self, param_group)
        group = self.param_groups[-1]
        group.setdefault("step", 0)
        gi = len(self.param_groups) - 1
        try:
            hyper = check_group(self, group, f"param group {gi}", self.__dict__.get("_checked"))
        except ValueError:
            self.param_groups.pop()
            raise
        self._hyper.passed(gi, hyper)
        self._list_graph_params()

    @property
    def sharding(self) -> str:
        """How a chain that reads whole tensors (Muon, Shampoo, SOAP, Adafactor) steps DTensor
        parameters (:mod:`descentlab.optim.sharded`): ``"owners"`` (the default: each tensor
        stepped by one rank, which keeps its state) or ``"gather"`` (every rank gathers and
        steps every tensor; replicated state). Set before the first step."""
        return self.__dict__.get("_shard_mode", "owners")

    @sharding.setter
    def sharding(self, mode: str) -> None:
        name = type(self).__name__
        if not isinstance(mode, str) or mode not in _sharded.MODES:
            raise ValueError(f"{name}: sharding must be 'owners' or 'gather', got {mode!r}")
        if mode != self.sharding and any(  # (the same answer on every rank)
            g.get("step") and any(map(is_dtensor, g["params"])) for g in self.param_groups
        ):
            raise ValueError(
                f"{name}: sharding={mode!r} after a step of sharded parameters (their state is "
                f"laid out for {self.sharding!r}); set it before the first step"
            )
        self._shard_mode = mode

    def attach_monitor(self, monitor: Monitor | None = None) -> Monitor:
        """Start recording per-step statistics; returns the :class:`Monitor`."""
        if self.differentiable:
            raise ValueError(
                f"{type(self).__name__}(differentiable=True) records no monitor statistics "
                "(the monitor reads each rule's updates, which the recorded step does not form)"
            )
        self.monitor = monitor or Monitor()
        return self.monitor

    def detach_monitor(self) -> Monitor | None:
        m, self.monitor = self.monitor, None
        return m

    def _validate(self, gi: int, hyper: dict[str, Any], params: list[Tensor] | None = None) -> None:
        """Validate group ``gi``'s resolved hyperparameters (cached while they repeat)."""
        params = self.param_groups[gi]["params"] if params is None else params
        self._hyper.check(self.rule, gi, hyper, params)

    # ------------------------------------------------------------------ step
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Perform one optimization step.

        Args:
            closure: re-evaluates the model and returns the loss. Required by lookahead
                rules (true Nesterov), which call it at the shifted point ``w + a v`` --
                the returned loss is then the loss *at that point*.
        """
        # torch.optim.Optimizer wraps a subclass's step in a profiler record and its hook
        # loops (``profile_hook_step``); with cold caches that wrapper alone costs as much
        # as the rest of the steady fused step. This step is marked ``hooked`` so torch leaves
        # it alone, and runs the same wrapper only when a hook is registered or the profiler
        # is on.
        if self.differentiable and (_is_compiling() or _in_compiled_region()):
            raise RuntimeError(
                f"{type(self).__name__}(differentiable=True) cannot step inside torch.compile: "
                "the compiled step is one operator that autograd does not differentiate "
                "through; call step() outside the compiled function"
            )
        if _is_compiling():
            return _compiled.step_in_graph(self, closure)
        if _in_compiled_region():
            # called eagerly inside a compiled function (a graph break before it): the step
            # runs untraced, as inside the graph's operator
            return _compiled.untraced(self._run_step)(closure)
        return self._run_step(closure)

    step.hooked = True  # type: ignore[attr-defined]

    def _run_step(self, closure: Callable[[], Any] | None = None) -> Any:
        """The step, outside ``torch.compile`` or inside its graph's operator."""
        if self._runs_hooks and (
            self._optimizer_step_pre_hooks
            or self._optimizer_step_post_hooks
            or _GLOBAL_PRE_HOOKS
            or _GLOBAL_POST_HOOKS
            or _profiler_enabled()
        ):
            return self._hooked_step(self, closure)
        return self._plain_step(closure)

    def _plain_step(self, closure: Callable[[], Any] | None = None) -> Any:
        # the steady fused step runs no torch op that autograd could record
        steady = closure is None and self._fused.steady and not self._lookahead
        if steady and self._fused.steady_step(self):
            return None
        return self._step(closure)

    _hooked_step = staticmethod(torch.optim.Optimizer.profile_hook_step(_plain_step))

    def _step(self, closure: Callable[[], Any] | None) -> Any:
        with torch.set_grad_enabled(self.differentiable):
            return self._step_body(closure)

    def _step_body(self, closure: Callable[[], Any] | None) -> Any:
        loss = None
        if self._lookahead:
            loss = _at_lookahead(self, closure)
        elif closure is not None:
            with torch.enable_grad():
                loss = closure()
        # Phase 1: everything that can fail, before anything changes.
        todo = [s for gi, g in enumerate(self.param_groups) if (s := self._prepare(gi, g))]
        for s in todo[1:]:  # an eager group's state the groups before it must not outrun
            if (
                s.sharded is None
                and s.owners is None
                and self.state_dtype is None
                and any(plan is None for plan, _ in s.parts)
            ):
                sts = self._states.current(self, s.gi, s.params)
                held = tuple(v for st in sts for v in st.values())
                last = self._init_checked.get(s.gi)
                if last is None or len(last) != len(held) or any(map(is_not, last, held)):
                    refuse_unlike_init(
                        type(self).__name__, s.gi, self.rule, s.params, sts, self._init_made
                    )
                    self._init_checked[s.gi] = held
        for s in todo:
            # a sharded group's check reads its gradients across the shards
            grads = s.grads if s.sharded is None else s.sharded.dgrads
            if not self.rule.precheck(grads, s.hyper):
                self.last_step_skipped = True
                self.skipped_steps += 1
                return loss
        self.last_step_skipped = False
        # Phase 2: update.
        self._fused.recorded.clear()
        for s in todo:
            self._update(s)
        self._fused.settle(self)
        return loss

    def _prepare(self, gi: int, group: dict[str, Any]) -> _GroupStep | None:
        """Phase 1 for one group: its parameters with gradients, hyperparameters (validated)
        and backend; raises on anything the step cannot do. None: nothing to step."""
        params, grads = [], []
        for j, p in enumerate(group["params"]):
            g = p.grad
            if g is None:
                continue
            if g.is_sparse and not self.sparse_grads:
                raise ValueError(
                    f"{type(self).__name__} does not support sparse gradients "
                    f"(param group {gi}, parameter {j}); use torch.optim.SparseAdam"
                )
            params.append(p)
            grads.append(g)
        if not params:
            return None
        sharded = None
        if any_dtensor(params):  # each rank's shards, the tensors it owns, or all gathered
            sharded = self._sharded.view(self, gi, params, grads)
            params, grads = sharded.params, sharded.grads
        sparse = any(g.is_sparse for g in grads)
        owners = None
        if any(p.is_complex() for p in params):
            if not all(r.complex_params for r in self.rule.rules):  # torch's words and type
                raise RuntimeError(f"{type(self).__name__} does not support complex parameters")
            owners = params
            params = [as_real(p) for p in params]
            grads = [as_real(g) for g in grads]
        if self.differentiable:
            _differentiable.refuse_leaf_params(type(self).__name__, gi, params)
        step = int(group["step"]) + 1
        hyper = resolve(group, step - 1)  # schedules count from 0 (torch, Optax)
        self._validate(gi, hyper, group["params"])
        if self.state_dtype is not None:
            check_stored_params(self, gi, params, owners, hyper)
        if self.fused and self.monitor is None:
            bad = next((p.dtype for p in params if p.dtype not in _fused.DTYPES), None)
            if bad is not None:
                raise ValueError(
                    f"{type(self).__name__}(fused=True): parameters must be "
                    f"{_fused._dtype_names()}, got {bad}"
                )
        if sparse:
            self._check_sparse(gi, hyper)
            # rows absent from a sparse gradient are zeros: the dense update leaves their
            # parameters as torch's sparse one does, and rounds the others as it does
            grads = [g.coalesce().to_dense() if g.is_sparse else g for g in grads]
            return _GroupStep(
                gi, group, params, grads, hyper, step, [(None, None)], owners, True, sharded
            )
        if not params:  # a rank that owns none of the group's tensors: it only exchanges
            return _GroupStep(gi, group, [], [], hyper, step, [], None, False, sharded)
        dtype, device = params[0].dtype, params[0].get_device()  # (get_device: -1 on the CPU)
        if (
            self.monitor is not None
            or self.fused is False
            or not self.rule.elementwise  # a rule reads the whole group (a global-norm clip)
            or all(p.dtype is dtype and p.get_device() == device for p in params)
        ):
            parts = [(self._fused.choose(self, gi, params, grads, hyper, owners, gi > 0), None)]
        else:  # one kernel per device and dtype, as torch's fused and foreach steps group them
            kinds = list(dict.fromkeys((p.device, p.dtype) for p in params))
            parts = []
            for kind in kinds:
                idx = [i for i, p in enumerate(params) if (p.device, p.dtype) == kind]
                sub = [params[i] for i in idx], [grads[i] for i in idx]
                part_owners = None if owners is None else [owners[i] for i in idx]
                # every part's state checked here: no part may move before another refuses
                parts.append((self._fused.choose(self, gi, *sub, hyper, part_owners, True), idx))
        return _GroupStep(gi, group, params, grads, hyper, step, parts, owners, False, sharded)

    def _update(self, s: _GroupStep) -> None:
        """Phase 2 for one group: initialise new state, count the step, update each part."""
        gi, params = s.gi, s.params
        if s.sharded is None:
            sts = self._states.of(self, gi, s.owners or params)
        else:  # the parameters' state dicts, their DTensors as the tensors the step runs on
            kept = self._states.of(self, gi, s.sharded.originals)
            sts = s.sharded.states(kept)
        try:
            if params:
                init_new(self.rule, s.owners or params, sts)
                values = self._states.advance(gi, sts)
            for plan, idx in s.parts:
                if idx is None:
                    self._update_part(s, plan, params, s.grads, sts, values, s.owners)
                    continue
                owners = None if s.owners is None else [s.owners[i] for i in idx]
                part = ([xs[i] for i in idx] for xs in (params, s.grads, sts, values))
                self._update_part(s, plan, *part, owners)
        except Exception:
            if s.sharded is not None:  # the other ranks are told: nothing moves there
                s.sharded.finish(kept, sts, failed=True)
            raise
        if s.sharded is not None:
            s.sharded.finish(kept, sts)
        s.group["step"] = s.step

    def _update_part(
        self,
        s: _GroupStep,
        plan: Any,
        params: list[Tensor],
        grads: list[Tensor],
        sts: list[dict],
        values: list[float],
        owners: list[Tensor] | None,
    ) -> None:
        """Update some of group ``s``'s tensors (all of them, or one device and dtype's) with
        ``plan``: its kernel (:meth:`FusedPath.run`), or the eager backend."""
        gi, hyper = s.gi, s.hyper
        if plan is not None and self._fused.run(
            self, gi, plan, params, grads, sts, hyper, values, owners
        ):
            return
        state = gather(sts)
        if owners is not None:
            state = realify(state)
        state["_step_values"] = values
        if self.monitor is not None and not self.differentiable:
            updates, state = self.rule.update(list(grads), state, params, hyper)
            self.monitor.record(s.step, gi, grads, updates, params, hyper)
            torch._foreach_add_(params, updates)
        else:
            # torch's sparse path adds lr * update: the general p + (-lr) * u order
            plain = self._hyper.plain.get(gi) and not s.sparse
            chunk = self.chunk_elements
            if chunk < sum(p.numel() for p in params) and not splits(self):
                chunk = sum(p.numel() for p in params)  # a rule reads across tensors: whole
            self._eager.run(gi, params, grads, state, hyper, bool(plain), chunk)
        scatter(params, state, sts, owners)

    # ------------------------------------------------------------------ fused backend
    def _check_sparse(self, gi: int, hyper: Mapping[str, Any]) -> None:
        """Refuse, before any change, what a step cannot do with sparse gradients."""
        if self.fused:
            raise ValueError(
                f"{type(self).__name__}(fused=True) does not support sparse gradients "
                f"(param group {gi}), as torch's fused kernels do not; use fused=None or False"
            )


def _refuse_batched_without_params(defaults: Mapping[str, Any]) -> None:
    """``params=None``: refuse a tensor hyperparameter of several elements as torch does (its
    length K must match the parameters' leading dimension, which None does not give), before
    torch refuses ``None`` itself."""
    for k, v in defaults.items():
        if isinstance(v, Tensor) and v.numel() != 1:
            raise ValueError(
                f"Tensor {k} must be 1-element: a length-K {k} runs K problems along the "
                f"parameters' leading dimension, and params=None gives none; got {k}={v!r}"
            )


def _at_lookahead(opt: Optimizer, closure: Callable[[], Any] | None) -> Any:
    """The closure's loss with every parameter shifted to its rule's lookahead point (true
    Nesterov), the parameters put back afterwards."""
    if closure is None:
        raise ValueError(
            f"{type(opt).__name__} with lookahead=True evaluates the gradient at the "
            "lookahead point and needs step(closure)"
        )
    saved: list[tuple[Tensor, Tensor]] = []
    for group in opt.param_groups:
        params = [p for p in group["params"] if opt.state[p]]
        if not params:
            continue
        hyper = resolve(group, int(group["step"]))
        shifts = opt.rule.lookahead_shift(gather([opt.state[p] for p in params]), params, hyper)
        if shifts is None:
            continue
        for p, s in zip(params, shifts, strict=True):
            saved.append((p, p.detach().clone()))
            p.add_(s)
    try:
        with torch.enable_grad():
            loss = closure()
    finally:
        for p, original in saved:
            p.copy_(original)
    return loss


def apply_updates(
    rule: Rule,
    params: list[Tensor],
    grads: list[Tensor],
    state: State | None = None,
    hyper: Mapping[str, Any] | None = None,
) -> State:
    """Functional use of a rule without an optimizer object: one in-place step.

    Args:
        rule: the update rule.
        params: tensors updated in place (``p += u``).
        grads: their gradients.
        state: the state returned by the previous call (None on the first).
        hyper: hyperparameters (defaults to ``rule.defaults``; missing keys filled from them).

    Returns:
        The new state (pass it to the next call).
    """
    h = {**rule.defaults, **(hyper or {})}
    rule.validate(h)
    if state is None:
        state = rule.init(params)
        state["step"] = [torch.zeros((), dtype=scalar_dtype()) for _ in params]
    if not rule.precheck(grads, h):
        return state
    torch._foreach_add_(state["step"], 1)
    updates, state = rule.update(list(grads), state, params, h)
    with torch.no_grad():
        torch._foreach_add_(params, updates)
    return state
