"""A ``torch.optim.Optimizer`` that runs a chain of update rules for each param group."""

from __future__ import annotations

import itertools
import sys
import warnings
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.optim import optimizer as _torch_optimizer

from . import fused as _fused
from .base import (
    Chain,
    HyperparameterTypeError,
    Rule,
    State,
    Workspace,
    chain,
    check_bool,
    scalar_dtype,
    step_values,
)

__all__ = ["Monitor", "Optimizer", "apply_updates"]


_GLOBAL_PRE_HOOKS = _torch_optimizer._global_optimizer_pre_hooks
_GLOBAL_POST_HOOKS = _torch_optimizer._global_optimizer_post_hooks
_profiler_enabled = torch.autograd._profiler_enabled
_is_compiling = torch.compiler.is_compiling

_PLAIN = (float, int, bool, str, tuple, type(None))
_NOT_HYPER = ("params", "step", "initial_lr")
#: per-step caches, left out of copies and pickles (rebuilt on the next step; whether a
#: compiler is present is asked again where an unpickled optimizer runs)
_CACHES = frozenset(
    (
        "_plans",
        "_workspaces",
        "_step_bases",
        "_sts_cache",
        "_steady",
        "_validated",
        "_plain",
        "_cc_ok",
    )
)
#: instance attributes torch's LR schedulers attach to an optimizer (not copied, as in torch)
_ATTACHED = frozenset(("step", "_opt_called"))
#: rule classes whose eager run under ``fused=None`` was announced (once per process)
_ANNOUNCED_EAGER: set[type] = set()


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of a warning that points at the first frame outside
    descentlab.optim (the user's constructor call, however deep the subclassing)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(__package__):
        frame, level = frame.f_back, level + 1
    return level


def _announce_eager(rule: Chain, owner: str) -> None:
    """Say once per rule class that ``fused=None`` runs a chain eagerly because this rule has
    no fused form (``fused=True`` is refused for it, ``fused=False`` asks for eager)."""
    for r in rule.rules:
        cls = type(r)
        if cls.fuse is Rule.fuse and cls not in _ANNOUNCED_EAGER:
            _ANNOUNCED_EAGER.add(cls)
            warnings.warn(
                f"descentlab: {r.name} has no fused form; fused=None runs {owner} eagerly "
                "(pass fused=False to say so and silence this warning)",
                RuntimeWarning,
                stacklevel=_caller_stacklevel(),
            )


def _resolve(group: Mapping[str, Any], step: int) -> dict[str, Any]:
    """The group's hyperparameters for update number ``step`` (0 = the first update);
    callables (schedules) are evaluated there."""
    return {
        k: (v(step) if callable(v) else v)
        for k, v in group.items()
        if k not in ("params", "step", "initial_lr")
    }


class _TrackedState(defaultdict):
    """``optimizer.state`` that counts its own mutations, so per-group caches of the
    parameters' state dicts know when one was replaced (``opt.state[p] = {}``)."""

    version = 0

    def __setitem__(self, key: Any, value: Any) -> None:
        self.version += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self.version += 1
        super().__delitem__(key)

    def pop(self, *args: Any) -> Any:
        self.version += 1
        return super().pop(*args)

    def popitem(self) -> Any:
        self.version += 1
        return super().popitem()

    def clear(self) -> None:
        self.version += 1
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.version += 1
        super().update(*args, **kwargs)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self.version += 1
        return super().setdefault(key, default)

    def __ior__(self, other: Any) -> Any:
        self.version += 1
        return super().__ior__(other)


def _check_batched(hyper: Mapping[str, Any], params: list[Tensor], where: str = "") -> None:
    """Refuse tensor hyperparameters that the step could not broadcast, before anything
    changes: a batched (1-D, length K) value runs K problems along each parameter's leading
    dimension, so every parameter of the group needs K there (K = 1 broadcasts to all)."""
    prefix = f"{where}: " if where else ""
    for key, v in hyper.items():
        items = (
            [(f"{key}[{i}]", x) for i, x in enumerate(v)]
            if isinstance(v, tuple | list)
            else [(key, v)]
        )
        for name, x in items:
            if not isinstance(x, Tensor):
                continue
            if x.is_complex() or x.dtype == torch.bool:
                raise HyperparameterTypeError(
                    f"{prefix}{name} must be a real tensor, got dtype {x.dtype}"
                )
            if x.ndim > 1 or (x.ndim == 1 and x.numel() == 0):
                raise ValueError(
                    f"{prefix}{name} must be a number, a 0-dim tensor or a 1-D tensor of length "
                    f"K >= 1 (one value per run), got shape {tuple(x.shape)}"
                )
            if x.ndim == 0:
                continue
            k = x.numel()
            for j, p in enumerate(params):
                if p.ndim == 0 or (k != 1 and p.shape[0] != k):
                    raise ValueError(
                        f"{prefix}{name} has length {k} (batched: one value per row of each "
                        f"parameter's leading dimension), but parameter {j} has shape "
                        f"{tuple(p.shape)}"
                    )


def _signature(hyper: Mapping[str, Any], params: list[Tensor]) -> tuple | None:
    """What a group's validation depends on when its hyperparameters hold tensors: each
    tensor by identity and in-place version, every other value by equality, and the
    parameters' shapes; None where a value has no reliable equality (validate every step)."""
    sig: list[Any] = []
    for key, v in hyper.items():
        for x in v if type(v) is tuple else (v,):
            if isinstance(x, Tensor):
                sig.append((key, id(x), x._version))
            elif type(x) in _PLAIN:
                sig.append((key, x))
            else:
                return None
    sig.append(tuple(p.shape for p in params))
    return tuple(sig)


def _equal(a: Any, b: Any) -> bool:
    """``a == b`` as one bool (False where a tensor compares elementwise)."""
    try:
        return bool(a == b)
    except (RuntimeError, TypeError, ValueError):
        return False


def _as_real(t: Any) -> Any:
    """A complex tensor as its real view (``[..., 2]``): torch's optimizers treat a complex
    number as a pair of reals, so every rule runs on the views."""
    return torch.view_as_real(t) if isinstance(t, Tensor) and t.is_complex() else t


def _realify(state: State) -> State:
    return {k: [_as_real(v) for v in vs] if type(vs) is list else vs for k, vs in state.items()}


def _as_complex(value: Any, old: Any, real_shape: torch.Size) -> Any:
    """What a complex parameter's state entry becomes after a rule computed ``value`` on the
    real views: ``old`` itself when ``value`` is its view, else the complex view of a new
    buffer (so the state keeps torch's layout: complex like the parameter)."""
    if not isinstance(value, Tensor) or value.is_complex() or value.shape != real_shape:
        return value
    if isinstance(old, Tensor) and old.is_complex() and old.data_ptr() == value.data_ptr():
        return old
    return torch.view_as_complex(value)


def _tracked(state: Any) -> _TrackedState:
    if type(state) is _TrackedState:
        return state
    return _TrackedState(dict, state)


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
        if step % self.every:
            return
        gn = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        un = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(updates)))
        pn = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(params)))
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

    ``copy.deepcopy`` and pickling give an optimizer that continues identically; under
    ``torch.compile`` the step runs eagerly behind a graph break (its state kept).

    Two backends run the chain. The *fused* one (:mod:`descentlab.optim.fused`) compiles the
    whole chain into one loop over each parameter's memory (one pass per step instead of a
    few per rule); the *eager* one runs each rule with ``torch._foreach_*`` kernels over
    cache-sized chunks of the group. ``fused=None`` (default) uses the fused backend where
    it applies -- float32, float64, float16 or bfloat16 contiguous CPU tensors, a chain whose
    rules all have a fused form, no monitor attached, a C++ compiler present -- and the eager
    one elsewhere; ``fused=True`` insists (errors say why it cannot run), ``fused=False``
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
        **hyper: Any,
    ) -> None:
        if fused is not None:
            check_bool("fused", fused)
        if not isinstance(rule, Rule):
            raise HyperparameterTypeError(
                f"rule must be an update rule (descentlab.optim.Rule), got {rule!r}"
            )
        self.rule: Chain = rule if isinstance(rule, Chain) else chain(rule)
        unknown = sorted(set(hyper) - set(self.rule.defaults))
        if unknown:
            valid = ", ".join(sorted(self.rule.defaults))
            raise ValueError(
                f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} for {self.rule!r}; "
                f"valid: {valid}"
            )
        # A final plain scale_by_lr is folded into the parameter update (p += -lr * u): one
        # pass and one temporary fewer per step, as torch's own kernels do.
        last = self.rule.rules[-1]
        self._fold_lr = type(last).__name__ == "scale_by_lr" and "lr_decay" not in last.defaults
        self._inner: Chain | None = (
            chain(*self.rule.rules[:-1]) if self._fold_lr and len(self.rule.rules) > 1 else None
        )
        defaults = {**self.rule.defaults, **hyper}
        self._probe_validate(defaults, where="defaults")
        self.monitor: Monitor | None = None
        self.fused = fused
        if fused:
            if not _fused.fused_available():
                raise _fused.FusedUnavailable(
                    f"{type(self).__name__}(fused=True) needs a C++ compiler (g++ or c++ on PATH, "
                    "or $CXX); none was found"
                )
            probe = _fused.FusedBuilder(hyper=defaults)
            if not self.rule.fuse(probe, defaults):
                missing = [r.name for r in self.rule.rules if type(r).fuse is Rule.fuse]
                raise ValueError(
                    f"fused=True: rule(s) {', '.join(missing) or 'of this chain'} have no fused "
                    f"form in this position, got {self.rule!r}"
                )
        self._reset_caches()
        self._noop_precheck = type(self.rule.rules[0]).precheck is Rule.precheck
        self._lookahead = any(getattr(r, "lookahead", False) for r in self.rule.rules)
        self.last_step_skipped = False
        self.skipped_steps = 0
        super().__init__(params, defaults)
        if fused is None:
            _announce_eager(self.rule, type(self).__name__)
        # a subclass that overrides step() gets torch's wrapper, which runs the hooks
        self._runs_hooks = type(self).step is Optimizer.step
        if monitor:
            self.attach_monitor(monitor if isinstance(monitor, Monitor) else None)

    # ------------------------------------------------------------------ set-up
    def _reset_caches(self) -> None:
        """Empty every per-step cache (at construction and after copying or unpickling:
        the caches hold compiled kernels, raw pointers and views, rebuilt on the next step)."""
        self._plans: dict[tuple, _fused.FusedPlan | None] = {}
        self._workspaces: dict[int, Workspace] = {}
        self._step_bases: dict[int, tuple[Any, list[Tensor], list[int]]] = {}
        self._sts_cache: dict[int, tuple[Any, int, list[int], list[dict]]] = {}
        self._steady: dict[int, tuple] = {}
        self._validated: dict[int, Any] = {}
        self._plain: dict[int, bool] = {}  # the group's hyperparameters are Python values

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
        super().__setstate__(state)
        self._reset_caches()

    def _probe_validate(self, group: Mapping[str, Any], where: str) -> None:
        for k, v in self.fixed.items():
            if k in group and not _equal(group[k], v):
                raise ValueError(
                    f"{k} is fixed at construction for {type(self).__name__} ({v!r}); "
                    f"{where} asked for {group[k]!r}"
                )
        hyper = _resolve(group, int(group.get("step", 0)))
        label = "" if where == "defaults" else where
        _check_batched(hyper, list(group.get("params", ())), label)
        try:
            self.rule.validate(hyper)
        except ValueError as exc:
            if where == "defaults":
                raise
            raise type(exc)(f"{where}: {exc}") from None

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        group.setdefault("step", 0)
        try:
            self._probe_validate(group, where=f"param group {len(self.param_groups) - 1}")
        except ValueError:
            self.param_groups.pop()
            raise

    def attach_monitor(self, monitor: Monitor | None = None) -> Monitor:
        """Start recording per-step statistics; returns the :class:`Monitor`."""
        self.monitor = monitor or Monitor()
        return self.monitor

    def detach_monitor(self) -> Monitor | None:
        m, self.monitor = self.monitor, None
        return m

    # ------------------------------------------------------------------ state helpers
    # (``self.state`` is keyed by tensors, whose hash is a Python call: look each up once)
    def _gather(self, params: list[Tensor], sts: list[dict] | None = None) -> State:
        if sts is None:
            sts = [self.state[p] for p in params]
        keys = dict.fromkeys(itertools.chain.from_iterable(sts))
        return {k: [st.get(k) for st in sts] for k in keys}

    def _scatter(
        self,
        params: list[Tensor],
        state: State,
        sts: list[dict] | None = None,
        owners: list[Tensor] | None = None,
    ) -> None:
        """Write ``state`` back into the parameters' state dicts; ``owners``: the complex
        parameters whose real views ``params`` are (their state is stored complex)."""
        if sts is None:
            sts = [self.state[p] for p in params]
        for k, values in state.items():
            if k.startswith("_"):
                continue
            if owners is None:
                for st, v in zip(sts, values, strict=True):
                    if v is not None:
                        st[k] = v
                continue
            for st, v, p, o in zip(sts, values, params, owners, strict=True):
                if v is not None:
                    st[k] = _as_complex(v, st.get(k), p.shape) if o.is_complex() else v

    def _init_new(self, params: list[Tensor], sts: list[dict] | None = None) -> None:
        if sts is None:
            sts = [self.state[p] for p in params]
        new = [i for i, st in enumerate(sts) if not st]
        if not new:
            return
        init = self.rule.init([params[i] for i in new])
        for j, i in enumerate(new):
            st = sts[i]
            st["step"] = torch.zeros((), dtype=scalar_dtype())
            for k, values in init.items():
                st[k] = values[j]

    def _validate(self, gi: int, hyper: dict[str, Any], params: list[Tensor] | None = None) -> None:
        """Validate a group's hyperparameters (skipped when they repeat the last valid ones:
        plain values by equality, tensors by identity and version, so a step costs no
        validation unless a schedule or the user changed something). ``params``: the
        group's parameters (default ``param_groups[gi]["params"]``), which batched values
        must fit."""
        if params is None:
            params = self.param_groups[gi]["params"]
        last = self._validated.get(gi)
        plain = self._plain[gi] = all(
            type(v) in _PLAIN and (type(v) is not tuple or all(type(x) in _PLAIN for x in v))
            for v in hyper.values()
        )
        if plain:
            if last is not None and last == hyper:
                return
            key: Any = hyper
        else:
            sig = _signature(hyper, params)
            if sig is not None and type(last) is tuple and last[0] == sig:
                return
            key = None if sig is None else (sig, hyper)  # the dict keeps the tensors' ids
        self._validated.pop(gi, None)
        try:
            _check_batched(hyper, params)
            self.rule.validate(hyper)
        except ValueError as exc:
            raise type(exc)(f"param group {gi}: {exc}") from None
        if key is not None:
            self._validated[gi] = key

    def _advance_steps(self, gi: int, steps: list[Tensor]) -> list[float]:
        """Add 1 to every parameter's step counter; returns the new counts.

        The counters stay one 0-dim tensor per parameter (torch's ``state_dict`` layout), but
        as views into one tensor per group, so a step increments them all with one operation
        instead of one per parameter. Counters that arrive otherwise (a fresh parameter, a
        loaded state dict) are rebased onto a new shared tensor once. ``steps`` are the
        counters of the group's parameters with gradients, in order.
        """
        cached = self._step_bases.get(gi)
        if cached is None or cached[2] != list(map(id, steps)):
            if len({s.dtype for s in steps}) != 1 or any(s.ndim for s in steps):
                torch._foreach_add_(steps, 1)
                return [float(s) for s in steps]
            base = torch.stack([s.detach() for s in steps])
            views = list(base.unbind(0))
            for st, v in zip(self._sts_cache[gi][3], views, strict=True):
                st["step"] = v
            # a NumPy view of the counters: incrementing through it costs a microsecond,
            # a torch op on a 20-element tensor several
            cached = (base.numpy(), views, list(map(id, views)))
            self._step_bases[gi] = cached
        counts = cached[0]
        counts += 1
        return counts.tolist()

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
        if _is_compiling():
            return self._step_eagerly_under_torch_compile(closure)
        if self._runs_hooks and (
            self._optimizer_step_pre_hooks
            or self._optimizer_step_post_hooks
            or _GLOBAL_PRE_HOOKS
            or _GLOBAL_POST_HOOKS
            or _profiler_enabled()
        ):
            return self._hooked_step(self, closure)
        return self._plain_step(closure)

    step.hooked = True  # type: ignore[attr-defined]

    def _plain_step(self, closure: Callable[[], Any] | None = None) -> Any:
        # the steady fused step runs no torch op that autograd could record
        if closure is None and self._steady and not self._lookahead and self._fast_step():
            return None
        return self._step(closure)

    _hooked_step = staticmethod(torch.optim.Optimizer.profile_hook_step(_plain_step))

    @torch._disable_dynamo
    def _step_eagerly_under_torch_compile(self, closure: Callable[[], Any] | None = None) -> Any:
        """The step under ``torch.compile``: run eagerly (a graph break), state kept.

        The step's Python (per-group caches, a state mapping that counts its mutations, the
        fused kernels called through raw pointers) is not something dynamo can trace
        faithfully, and the fused kernels are compiled code already."""
        return self.step(closure)

    @torch.no_grad()
    def _step(self, closure: Callable[[], Any] | None) -> Any:
        loss = None
        if self._lookahead:
            loss = self._lookahead_closure(closure)
        elif closure is not None:
            with torch.enable_grad():
                loss = closure()

        # Phase 1: everything that can fail, before anything changes.
        plans = []
        for gi, group in enumerate(self.param_groups):
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
                continue
            sparse = any(g.is_sparse for g in grads)
            owners = None
            if any(p.is_complex() for p in params):
                owners = params
                params = [_as_real(p) for p in params]
                grads = [_as_real(g) for g in grads]
            step = int(group["step"]) + 1
            hyper = _resolve(group, step - 1)  # schedules count from 0 (torch, Optax)
            self._validate(gi, hyper, group["params"])
            if self.fused and self.monitor is None:
                dtype = params[0].dtype
                if dtype not in _fused.DTYPES:
                    raise ValueError(
                        f"{type(self).__name__}(fused=True): parameters must be "
                        f"{_fused._dtype_names()}, got {dtype}"
                    )
            if sparse:
                self._check_sparse(gi, hyper)
                # rows absent from a sparse gradient are zeros: the dense update leaves their
                # parameters as torch's sparse one does, and rounds the others as it does
                grads = [g.coalesce().to_dense() if g.is_sparse else g for g in grads]
            plan = None if sparse else self._fused_choice(params, hyper)  # may raise
            if self.fused and plan is not None:
                # what the kernel refuses, refused here: a later group's refusal would
                # otherwise come after the earlier groups' updates
                for t in itertools.chain(params, grads):
                    if not (t.is_cpu and t.dtype is plan.dtype and t.is_contiguous()):
                        raise ValueError(
                            f"{type(self).__name__}(fused=True): param group {gi}: "
                            f"{_fused._why(t, plan.dtype)}"
                        )
            plans.append((gi, group, params, grads, hyper, step, plan, owners, sparse))

        for _, _, _, grads, hyper, _, _, _, _ in plans:
            if not self.rule.precheck(grads, hyper):
                self.last_step_skipped = True
                self.skipped_steps += 1
                return loss
        self.last_step_skipped = False

        # Phase 2: update.
        for gi, group, params, grads, hyper, step, plan, owners, sparse in plans:
            sts = self._param_states(gi, owners or params)
            self._init_new(owners or params, sts)
            steps = [st["step"] for st in sts]
            values = self._advance_steps(gi, steps)
            if plan is not None and self._fused_step(
                gi, plan, params, grads, sts, hyper, values, owners
            ):
                group["step"] = step
                continue
            state = self._gather(params, sts)
            if owners is not None:
                state = _realify(state)
            state["_step_values"] = values
            if self.monitor is not None:
                updates, state = self.rule.update(list(grads), state, params, hyper)
                self.monitor.record(step, gi, grads, updates, params, hyper)
                torch._foreach_add_(params, updates)
            else:
                ws = self._workspaces.setdefault(gi, Workspace())
                # torch's sparse path adds lr * update: the general p + (-lr) * u order
                final = self._final_plan(hyper) if self._plain.get(gi) and not sparse else None
                for a, b in self._chunks(params):
                    self._update_chunk(params, grads, state, hyper, ws, a, b, final)
            self._scatter(params, state, sts, owners)
            group["step"] = step
        return loss

    def _fast_step(self) -> bool:
        """The whole step in as little Python as possible, while nothing but the gradients has
        changed since the last fused step (same parameters, all with gradients; same state
        tensors, constant hyperparameters, plans; equal step counts). Everything is checked
        for every group before anything changes; False sends the step down the general path.
        (Each check costs: this path exists because a step's Python runs with cold caches.)
        """
        state = self.state
        if self.monitor is not None or type(state) is not _TrackedState:
            return False
        version = state.version
        todo = []
        for gi, group in enumerate(self.param_groups):
            ctx = self._steady.get(gi)
            if ctx is None or ctx[0] is not state or ctx[1] != version:
                return False
            _, _, plist, n, hyper, sts, plan, counts, step_ids = ctx
            params = group["params"]
            # the parameters' storage is checked by pointer in steady_pointers
            if params is not plist or len(params) != n:
                return False
            try:
                if {k: v for k, v in group.items() if k not in _NOT_HYPER} != hyper:
                    return False
            except RuntimeError:  # a tensor hyperparameter with several values
                return False
            try:
                if [id(st["step"]) for st in sts] != step_ids:
                    return False
                cols = [[st[key] for st in sts] for key in plan.builder.arrays]
            except KeyError:
                return False
            t = counts[0]
            if t != counts[n - 1]:
                return False
            ptrs = plan.steady_pointers(params, [p.grad for p in params], cols)
            if ptrs is None:
                return False
            todo.append((group, params, hyper, plan, counts, ptrs, t + 1))
        for group, params, hyper, plan, counts, ptrs, t in todo:
            plan.launch(params, ptrs, hyper, t)
            counts[:] = array(counts.format, [t]) * len(params)
            group["step"] = int(group["step"]) + 1
        self.last_step_skipped = False
        return True

    def _param_states(self, gi: int, params: list[Tensor]) -> list[dict]:
        """The state dicts of ``params`` (cached while neither the parameters nor
        ``self.state`` change: a lookup hashes each tensor in Python)."""
        state = self.state
        if type(state) is not _TrackedState:  # after __init__ or load_state_dict
            state = self.state = _tracked(state)
        cached = self._sts_cache.get(gi)
        ids = list(map(id, params))
        if (
            cached is not None
            and cached[0] is state
            and cached[1] == state.version
            and cached[2] == ids
        ):
            return cached[3]
        sts = [state[p] for p in params]
        self._sts_cache[gi] = (state, state.version, ids, sts)
        return sts

    # ------------------------------------------------------------------ fused backend
    def _fused_plan(self, hyper: Mapping[str, Any], dtype: torch.dtype) -> Any:
        """The compiled plan for this group's structure, or None where the chain has no
        fused form (cached: one plan per structural signature and dtype)."""
        # the final lr is folded into the parameter update for batched learning rates too,
        # so a batched run is bit-identical to K separate runs
        fold = self._fold_lr
        key = (dtype, fold, self.rule.fuse_signature(hyper))
        if key in self._plans:
            return self._plans[key]
        builder = self._fused_builder(hyper)
        plan = None
        if builder is not None:
            try:
                plan = _fused.FusedPlan(builder, dtype, fold)
            except _fused.FusedUnavailable as exc:
                if self.fused:
                    raise
                warnings.warn(
                    f"descentlab: the fused backend is unavailable ({exc}); running eagerly",
                    RuntimeWarning,
                    stacklevel=4,
                )
        self._plans[key] = plan
        return plan

    def _fused_builder(
        self, hyper: Mapping[str, Any], builder: _fused.FusedBuilder | None = None
    ) -> _fused.FusedBuilder | None:
        """The chain's per-element code for this structure (in ``builder`` if given), with a
        final plain learning rate folded into the update as coefficient ``neglr``; None where
        some rule has no fused form."""
        fold = self._fold_lr
        rules = self.rule.rules[:-1] if fold else self.rule.rules
        if builder is None:
            builder = _fused.FusedBuilder(hyper=hyper)
        final = self._final_plan(hyper)
        if final is not None:  # the parameter update in torch's operation order
            k, decay = final
            if not all(r.fuse(builder, hyper) for r in self.rule.rules[: k + 1]):
                return None
            assert builder.final_form is not None and builder.final_form[0] == builder.u
            p = "p"
            if decay is not None:  # torch: p.mul_(1 - lr * weight_decay) first
                c = builder.coef(
                    "final_decay",
                    lambda h, t, e: 1 - float(h["lr"]) * float(h["weight_decay"]),
                    uses=("lr", "weight_decay"),
                )
                p = f"(p * {c})"
            lr_rule = self.rule.rules[-1]
            builder.final = builder.final_form[1](builder, p, lr_rule.step_lr, lr_rule.lr_uses)
            return builder
        if not all(r.fuse(builder, hyper) for r in rules):
            return None
        if fold:
            builder.coef("neglr", lambda h, t, e: -float(h["lr"]), uses=("lr",))
        return builder

    def _check_sparse(self, gi: int, hyper: Mapping[str, Any]) -> None:
        """Refuse, before any change, what a step cannot do with sparse gradients."""
        if self.fused:
            raise ValueError(
                f"{type(self).__name__}(fused=True) does not support sparse gradients "
                f"(param group {gi}), as torch's fused kernels do not; use fused=None or False"
            )

    def _final_plan(self, hyper: Mapping[str, Any]) -> tuple[int, Rule | None] | None:
        """Where the chain ends in ``core -> [add_decayed_weights] -> scale_by_lr`` (rules
        that pass their input through at these hyperparameters aside) and ``core`` has
        :attr:`~descentlab.optim.Rule.has_final`: (core's index, the active decoupled decay
        rule or None). The step then updates the parameters as torch's for-loop does --
        ``p.mul_(1 - lr * wd)``, then ``p.addcdiv_(num, den, value=-step_size)`` -- so float32
        iterates round exactly as torch's. None: the general ``p + (-lr) * u``."""
        rules = self.rule.rules
        if len(rules) < 2 or type(rules[-1]).__name__ != "scale_by_lr":
            return None
        decay = None
        for k in range(len(rules) - 2, -1, -1):
            r = rules[k]
            if r.has_final:
                return k, decay
            if r.passes_through(hyper):
                continue
            if decay is None and type(r).__name__ == "add_decayed_weights":
                decay = r
                continue
            return None
        return None

    def _compiler_ok(self) -> bool:
        ok = getattr(self, "_cc_ok", None)
        if ok is None:
            ok = self._cc_ok = _fused.fused_available()
        return ok

    def _fused_choice(self, params: list[Tensor], hyper: Mapping[str, Any]) -> Any:
        """The fused plan for this group's step, or None to run it eagerly."""
        if self.fused is False or self.monitor is not None:
            return None
        dtype = params[0].dtype
        if dtype not in _fused.DTYPES:
            return None  # fused=True raised in phase 1
        if self.fused is None and not self._compiler_ok():
            return None
        plan = self._fused_plan(hyper, dtype)
        if plan is None and self.fused:
            raise ValueError(
                f"{type(self).__name__}(fused=True): the chain {self.rule!r} has no fused form "
                "with these options"
            )
        return plan

    def _fused_step(
        self,
        gi: int,
        plan: Any,
        params: list[Tensor],
        grads: list[Tensor],
        sts: list[dict],
        hyper: Mapping[str, Any],
        values: list[float],
        owners: list[Tensor] | None = None,
    ) -> bool:
        """Run one group's step with the fused backend; False: run it eagerly instead.
        (``owners``: the complex parameters whose real views ``params`` are.)"""
        state: State = {k: [st.get(k) for st in sts] for k in plan.keys}
        if owners is not None:
            state = _realify(state)
        state["step"] = [st["step"] for st in sts]
        state["_step_values"] = values
        why = plan.run(params, grads, state, hyper, values, plain=self._plain.get(gi, False))
        if why:
            if self.fused:
                torch._foreach_sub_(state["step"], 1)  # nothing else has changed yet
                raise ValueError(f"{type(self).__name__}(fused=True): {why}")
            return False
        for key in dict.fromkeys(plan.builder.fills):  # the prepares may have created them
            if key.startswith("_"):
                continue
            if owners is not None and key in plan.builder.arrays:
                self._scatter(params, {key: state[key]}, sts, owners)
                continue
            for st, v in zip(sts, state[key], strict=True):
                st[key] = v
        base = self._step_bases.get(gi)
        group = self.param_groups[gi]
        if (
            plan.builder.steady_ok
            and self._plain.get(gi)
            and base is not None
            and self._noop_precheck
            and len(params) == len(group["params"])
            and not any(callable(v) for v in group.values())
        ):
            counts = memoryview(base[0])  # the step counters, without NumPy's call costs
            if len(set(counts.tolist())) == 1:
                self._steady[gi] = (
                    self.state,
                    self.state.version,
                    group["params"],
                    len(params),
                    hyper,
                    sts,
                    plan,
                    counts,
                    [id(st.get("step")) for st in sts],
                )
            else:
                self._steady.pop(gi, None)
        else:
            self._steady.pop(gi, None)
        return True

    def _chunks(self, params: list[Tensor]) -> list[tuple[int, int]]:
        if not self.rule.elementwise:
            return [(0, len(params))]
        bounds, start, size = [], 0, 0
        for i, p in enumerate(params):
            n = p.numel()
            if size and size + n > self.chunk_elements:
                bounds.append((start, i))
                start, size = i, 0
            size += n
        bounds.append((start, len(params)))
        return bounds

    def _update_chunk(
        self,
        params: list[Tensor],
        grads: list[Tensor],
        state: State,
        hyper: Mapping[str, Any],
        ws: Workspace,
        a: int,
        b: int,
        final: tuple[int, Rule | None] | None = None,
    ) -> None:
        whole = a == 0 and b == len(params)
        sub: State = state if whole else {k: v[a:b] for k, v in state.items()}
        sub_params, sub_grads = (params, grads) if whole else (params[a:b], grads[a:b])
        ws.reset()
        sub["_workspace"] = ws
        lr = hyper.get("lr")
        if isinstance(lr, Tensor) and lr.ndim == 0:
            lr = lr.item()
        try:
            if final is not None:
                self._final_update(sub_params, sub_grads, sub, hyper, final)
            elif self._fold_lr and isinstance(lr, int | float):
                directions, sub = (
                    self._inner.update(list(sub_grads), sub, sub_params, hyper)
                    if self._inner is not None
                    else (sub_grads, sub)
                )
                torch._foreach_add_(sub_params, directions, alpha=-lr)
            else:
                updates, sub = self.rule.update(list(sub_grads), sub, sub_params, hyper)
                torch._foreach_add_(sub_params, updates)
        finally:
            sub.pop("_workspace", None)
        if not whole:
            n = len(params)
            for k, values in sub.items():
                state.setdefault(k, [None] * n)[a:b] = values

    def _final_update(
        self,
        params: list[Tensor],
        grads: list[Tensor],
        state: State,
        hyper: Mapping[str, Any],
        final: tuple[int, Rule | None],
    ) -> None:
        """The eager step of :meth:`_final_plan`'s chains (Python hyperparameters only)."""
        k, decay = final
        rules = self.rule.rules
        g: list[Tensor] = list(grads)
        for r in rules[:k]:
            g, state = r.update(g, state, params, hyper)
        lr_rule = rules[-1]
        if "lr_decay" in lr_rule.defaults:
            lrs = [lr_rule.step_lr(hyper, t) for t in step_values(state, len(params))]
        else:
            lrs = [lr_rule.step_lr(hyper, 0)] * len(params)
        if decay is not None and hyper["weight_decay"] != 0:
            torch._foreach_mul_(params, 1 - hyper["lr"] * hyper["weight_decay"])
        rules[k].apply_final(g, state, params, hyper, lrs)

    def _lookahead_closure(self, closure: Callable[[], Any] | None) -> Any:
        if closure is None:
            raise ValueError(
                f"{type(self).__name__} with lookahead=True evaluates the gradient at the "
                "lookahead point and needs step(closure)"
            )
        saved: list[tuple[Tensor, Tensor]] = []
        for group in self.param_groups:
            params = [p for p in group["params"] if self.state[p]]
            if not params:
                continue
            hyper = _resolve(group, int(group["step"]))
            shifts = self.rule.lookahead_shift(self._gather(params), params, hyper)
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
