"""The vectorized engine of :func:`~descentlab.engine.multirun.train_many`: K runs of one
model trained in one pass (stacked parameters, ``torch.func.vmap``), each equal to the run
:func:`~descentlab.engine.run.train` would give (see :mod:`descentlab.engine.multirun`).

The K runs are trained by the one loop (:class:`~descentlab.engine.loop.Loop`: batches,
evaluation cadence, early stopping, records), given :class:`Stacked` -- the K runs' stacked
parameters, one :class:`_OptimizerGroup` per optimizer among them, their evaluation -- whose
losses and gradients come from :class:`Gradients` (vmap, its traced graph, or for the
MNIST-1D CNN one compiled call, :mod:`descentlab.engine.vcnn`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, stack_module_state, vmap
from torch.fx.experimental.proxy_tensor import make_fx

from descentlab import optim, schedules
from descentlab._announce import once
from descentlab._osutil import gc_paused
from descentlab.engine import building, evaluation, optimizing, outcome, rundata, timing, vcnn
from descentlab.engine.config import RunConfig
from descentlab.engine.loop import Batch, Batches, Diverged, Loop
from descentlab.engine.monitoring import base_optimizer
from descentlab.engine.run import live
from descentlab.engine.vconv import vmap_friendly
from descentlab.optim.mixing import stacks
from descentlab.schedules.scheduler import parse_key
from descentlab.store import Store

_STALE = (
    "descentlab: a traced step kept from an earlier vectorized group did not reproduce this "
    "group's step; it was traced afresh (same numbers; please report this)"
)

__all__ = ["VectorizeError", "json_key", "train_group"]

# Trace each step's vmap(grad) into a plain graph of ATen operations (see _traced_fn); tests
# switch it off to check the eager path, which computes the same numbers.
_TRACE = True

# The MNIST-1D CNN's step computed by the compiled kernel (descentlab.engine.vcnn) where it
# applies; tests switch it off to check the traced graph's path for that model too.
_KERNEL = True
# validation examples the compiled CNN evaluation is checked on (with the step: check_cnn)
_CHECK_EXAMPLES = 256
# this process's answer of Gradients.check_cnn per shape and dtype (None before it compared)
_lock = threading.Lock()
_verified: dict[tuple[Any, ...], bool] = {}

# A step whose inputs have another shape than the first step's is traced at its
# _TRACE_AFTER-th occurrence, and the first step's shape only in runs of at least
# _TRACE_AFTER steps: a trace costs what tracing saves over 45-60 steps of the MNIST-1D CNN
# and 70-160 of its MLP (K = 2-15, one thread), so an epoch's last batch in a run of a
# dozen epochs, or a run of a dozen steps, is computed by vmap (the same numbers).
_TRACE_AFTER = 32

#: traced steps kept for later groups in this process, most recently used last (_graph_key)
_GRAPHS: OrderedDict[str, Any] = OrderedDict()
_GRAPHS_KEPT = 16

# A reused graph must reproduce the eager step to this relative precision (of each tensor's
# largest entry): the same operations in the same order agree to the last bits.
_RTOL = {torch.float16: 1e-2, torch.bfloat16: 1e-2, torch.float32: 1e-5, torch.float64: 1e-12}

# The fields of a run's config that its traced step can depend on (the others -- optimizer,
# hyperparameters, schedules, seed, length, evaluations, input regularizers, weight noise --
# act outside the graph: on its inputs or on its outputs).
_GRAPH_FIELDS = (
    "problem", "problem_options", "split_seed", "val_fraction", "model", "model_options",
    "loss", "loss_options", "label_smoothing", "batch_size", "drop_last", "device",
)  # fmt: skip


class VectorizeError(ValueError):
    """The runs cannot be trained in one vectorized pass (the message says why)."""


def json_key(value: Any) -> str:
    """A string equal for equal JSON-able values; objects that JSON cannot hold (rules,
    schedules, factories) are keyed by identity."""

    def default(obj: Any) -> str:
        return f"<object {id(obj)}>"

    return json.dumps(value, sort_keys=True, default=default)


def _graph_key(group: Any, kind: str, dim: int | None, inputs: tuple[Tensor, ...]) -> str | None:
    """What a group's traced step is a function of, as a string; None where part of it is
    not a plain value (a model or loss given as a function or object: no graph is shared).

    The graph depends on the model and the loss (named, with their options, and the data they
    are built for), the step kind, which inputs are batched, and the names, shapes and dtypes
    of the parameters (K runs), buffers and batch -- not on the optimizer, hyperparameters,
    seeds or the values of any tensor."""
    cfg, b0 = group.cfg0, group.b0
    splits = b0.splits
    if not (isinstance(b0.model_name, str) and isinstance(cfg.model or splits.default_model, str)):
        return None
    if not isinstance(cfg.loss or splits.default_loss, str):
        return None
    fields = {name: getattr(cfg, name) for name in _GRAPH_FIELDS}
    fields.update(model_name=b0.model_name, loss_name=b0.loss_name, kind=kind, dim=dim,
                  default_dtype=str(torch.get_default_dtype()))  # fmt: skip
    fields["data"] = [type(splits).__name__, getattr(splits, "name", None), splits.task,
                      list(splits.input_shape), splits.n_outputs]  # fmt: skip
    fields["tensors"] = [
        [[n, list(t.shape), str(t.dtype), t.requires_grad] for n, t in group.params.items()],
        [[n, list(t.shape), str(t.dtype)] for n, t in group.buffers.items()],
        [[list(t.shape), str(t.dtype)] for t in inputs],
    ]
    try:
        return json.dumps(fields, sort_keys=True)
    except (TypeError, ValueError):
        return None


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return (
            isinstance(a, Tensor)
            and isinstance(b, Tensor)
            and a.shape == b.shape
            and bool(torch.equal(a, b))
        )
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _stack_values(key: str, values: list[Any], dtype: torch.dtype) -> Any:
    """One value for the stacked optimizer: shared as is, or a length-K tensor of numbers."""
    first = values[0]
    if all(_same(v, first) for v in values[1:]):
        return first
    if all(_is_number(v) for v in values):
        return torch.tensor([float(v) for v in values], dtype=dtype)
    if all(isinstance(v, tuple | list) and len(v) == len(first) for v in values):
        items = [
            _stack_values(f"{key}[{j}]", [v[j] for v in values], dtype) for j in range(len(first))
        ]
        return tuple(items) if isinstance(first, tuple) else items
    raise VectorizeError(
        f"hyperparameter {key!r} differs between the runs and is not a number: {values!r}"
    )


def _set_entry(group: dict[str, Any], key: str, value: Any) -> None:
    name, index = parse_key(key)
    if index is None:
        group[name] = value
        return
    items = list(group[name])
    items[index] = value
    group[name] = tuple(items) if isinstance(group[name], tuple) else items


def _per_run(value: Any, k: int) -> list[float | None]:
    """The K per-run numbers of a group entry (None where it is not a number)."""
    if isinstance(value, Tensor):
        if value.ndim == 1 and value.numel() == k:
            return [float(v) for v in value.tolist()]
        if value.numel() == 1:
            return [float(value.item())] * k
        return [None] * k
    if _is_number(value):
        return [float(value)] * k
    return [None] * k


def _optimizer_key(cfg: RunConfig) -> str:
    """Runs with equal keys step with one optimizer over their stacked parameters (a
    monitored optimizer steps with the runs of the optimizer it wraps)."""
    return json_key(base_optimizer(cfg.optimizer))


def _optimizer_runs(configs: Sequence[RunConfig]) -> list[int]:
    """Lengths of the consecutive runs of ``configs`` that share an optimizer."""
    lengths: list[int] = []
    previous = None
    for cfg in configs:
        key = _optimizer_key(cfg)
        if lengths and key == previous:
            lengths[-1] += 1
        else:
            lengths.append(1)
        previous = key
    return lengths


class _OptimizerGroup:
    """The runs ``start:stop`` of a vectorized group that share one optimizer (one chain of
    update rules): their hyperparameters stacked into length-``n`` tensors where they differ,
    one optimizer over the slices ``[start:stop]`` of the stacked parameters, its per-step
    schedules, and one copy of each loss-driven schedule per run.

    Runs of other optimizers share the forward and backward pass (the model and the data are
    the same) and step with their own group: each run keeps its own update rule."""

    def __init__(
        self,
        configs: Sequence[RunConfig],
        opts: Sequence[Any],
        start: int,
        stop: int,
        total: int,
        dtype: torch.dtype,
    ) -> None:
        self.start, self.stop, self.n = start, stop, stop - start
        self.cfg = configs[start]
        opts = list(opts[start:stop])
        if not all(isinstance(o, optim.Optimizer) for o in opts):
            raise VectorizeError(
                f"optimizer {type(opts[0]).__name__} is not a descentlab optimizer"
            )
        chains = [tuple(type(r) for r in o.rule.rules) for o in opts]
        if any(c != chains[0] for c in chains) or any(type(o) is not type(opts[0]) for o in opts):
            raise VectorizeError("the runs' optimizers are different chains of update rules")
        for r in opts[0].rule.rules:
            _check_rule(r)
        mixes = stacks(opts[0])  # (decided from what the chain computes: a probe of it)
        if mixes:
            raise VectorizeError(mixes)
        self.hyper: dict[str, Any] = {
            key: _stack_values(key, [o.defaults[key] for o in opts], dtype)
            for key in opts[0].defaults
        }
        fixed = getattr(opts[0], "fixed", {})
        if any(getattr(o, "fixed", {}) != fixed for o in opts[1:]):
            raise VectorizeError("the runs' optimizers differ in structural options")
        self.per_step, self.loss_rules, self.rule_monitor = optimizing.split_schedules(
            self.cfg.schedule, total
        )
        for key in self.loss_rules:
            # n independent decisions need n values from the start.
            value = optimizing.hyper_value(self.hyper, key)
            if not isinstance(value, Tensor):
                _set_entry(self.hyper, key, torch.full((self.n,), float(value), dtype=dtype))
        # the runs whose own optimizer has a monitor attached (MonitoredOptimizer): the
        # group records for them what it would record in a run alone
        self.monitors: list[tuple[int, optim.Monitor]] = [
            (j, o.monitor) for j, o in enumerate(opts) if o.monitor is not None
        ]
        self.optimizer: Any = None
        self.scheduler: Any = None
        self.whole = False

    def _slices(self, tensors: list[Tensor]) -> list[Tensor]:
        if self.whole:
            return tensors
        return [t.detach()[self.start : self.stop] for t in tensors]

    def make(self, params: list[Tensor]) -> Any:
        """An optimizer over this group's slices of the stacked ``params``."""
        spec = base_optimizer(self.cfg.optimizer)
        opt = optimizing.make_optimizer(spec, self._slices(params), self.cfg.hyper)
        group = opt.param_groups[0]
        for key, value in self.hyper.items():
            group[key] = value
        return opt

    def attach(self, params: list[Tensor], k: int) -> None:
        """Build the optimizer (and its schedules) over the stacked parameters of K runs."""
        self.whole = self.n == k
        self.optimizer = self.make(params)
        if self.per_step:
            self.scheduler = schedules.Scheduler(self.optimizer, self.per_step)

    def run_rules(self) -> list[dict[str, Any]]:
        """One fresh copy of the loss-driven schedules per run."""
        out = []
        for _ in range(self.n):
            rules = {key: copy.deepcopy(r) for key, r in self.loss_rules.items()}
            for r in rules.values():
                r.check_groups(1)
                r.reset()
            out.append(rules)
        return out

    def step(
        self, opt: Any, params: list[Tensor], grads: list[Tensor], frozen: Sequence[bool] = ()
    ) -> None:
        """One step of ``opt`` (this group's optimizer or a copy over ``params``) with this
        group's slices of the stacked gradients. On the group's optimizer, the monitored runs
        that are not ``frozen`` (indexed over the whole group) and whose monitor records this
        step get their records."""
        for p, g in zip(opt.param_groups[0]["params"], self._slices(grads), strict=True):
            # a stacked weight's gradient comes transposed from vmap's backward; the fused
            # kernel steps contiguous tensors (the copy costs less than the eager step)
            p.grad = g if g.is_contiguous() else g.contiguous()
        if opt is self.optimizer and self.monitors:
            step = int(opt.param_groups[0].get("step", 0)) + 1
            due = [
                (j, m)
                for j, m in self.monitors
                if step % m.every == 0 and not (frozen and frozen[self.start + j])
            ]
            if due:
                # attached for this step only: the other steps keep the unmonitored path
                opt.attach_monitor(_RunMonitors(due, self.n))
                try:
                    opt.step()
                finally:
                    opt.detach_monitor()
            else:
                opt.step()
        else:
            opt.step()
        if opt is self.optimizer and self.scheduler is not None:
            self.scheduler.step()

    def narrow(self, keep: list[int], start: int, params: list[Tensor], k: int) -> None:
        """Keep only the runs ``keep`` (indices within this group, increasing), now the rows
        ``start:start + len(keep)`` of the ``k`` stacked ``params``: the optimizer is made
        again over them and given its state cut to those runs (every per-run tensor of its
        state and param group, the step counters as they are), and the per-step schedules
        continue from their step with those runs' bases and values. A kept run's next steps
        are those it would have taken with the others still there (the update rules are
        elementwise); the fused backend's caches are rebuilt on the next step."""
        n = self.n
        state = _narrow_state(self.optimizer.state_dict(), keep, n)
        sched = None if self.scheduler is None else self.scheduler.state_dict()
        self.hyper = {key: _narrow(v, keep, n) for key, v in self.hyper.items()}
        self.monitors = [(keep.index(j), m) for j, m in self.monitors if j in keep]
        self.start, self.stop, self.n = start, start + len(keep), len(keep)
        self.whole = self.n == k
        self.optimizer = self.make(params)
        self.optimizer.load_state_dict(state)
        if sched is not None:
            self.scheduler = schedules.Scheduler(self.optimizer, self.per_step)
            for name in ("base", "values"):
                sched[name] = [_narrow(v, keep, n) for v in sched[name]]
            self.scheduler.load_state_dict(sched)

    def values(self, key: str) -> list[float | None]:
        """Each run's current value of hyperparameter ``key``."""
        return _per_run(optimizing.hyper_value(self.optimizer.param_groups[0], key), self.n)

    def step_rules(self, i: int, rules: Mapping[str, Any], metric: float) -> None:
        """Run ``i``'s loss-driven schedules, after an evaluation that measured ``metric``."""
        group = self.optimizer.param_groups[0]
        for key, rule in rules.items():
            current = optimizing.hyper_value(group, key)
            new = rule.step(metric, [float(current[i - self.start])])[0]
            with torch.no_grad():
                current[i - self.start] = new


def _narrow(value: Any, keep: list[int], n: int) -> Any:
    """A group entry (or a scheduler's base or value) of ``n`` runs cut to the runs ``keep``:
    a length-``n`` tensor or list of numbers per run indexed, a tuple of them entry by entry,
    a value shared by the runs as it is."""
    if isinstance(value, Tensor):
        if value.ndim == 1 and value.numel() == n:
            return value[torch.tensor(keep, device=value.device)].clone()
        return value
    if isinstance(value, list) and len(value) == n and all(_is_number(v) for v in value):
        return [value[j] for j in keep]
    if isinstance(value, tuple | list):
        return type(value)(_narrow(v, keep, n) for v in value)
    return value


def _narrow_state(state: dict[str, Any], keep: list[int], n: int) -> dict[str, Any]:
    """An optimizer's ``state_dict()`` over slices of ``n`` stacked runs, cut to the runs
    ``keep``: every state tensor with a leading run dimension indexed (the elementwise rules'
    state has its parameter's shape), per-tensor numbers (step counters) kept; the param
    group's per-run hyperparameters cut by :func:`_narrow`."""
    idx = torch.tensor(keep)
    per_param = {
        pid: {
            key: v.index_select(0, idx.to(v.device))
            if isinstance(v, Tensor) and v.ndim >= 1 and v.shape[0] == n
            else v
            for key, v in st.items()
        }
        for pid, st in state["state"].items()
    }
    groups = [
        {key: v if key == "params" else _narrow(v, keep, n) for key, v in g.items()}
        for g in state["param_groups"]
    ]
    return {"state": per_param, "param_groups": groups}


class _RunMonitors(optim.Monitor):
    """Attached to a group's stacked optimizer for one step: gives each due run's own
    :class:`~descentlab.optim.Monitor` the record the run alone would record -- the L2 norms
    of the run's slice of the gradients, the update and the parameters before the update
    (every tensor of the param group: each run's norm over its slices), and its own values
    of the hyperparameters."""

    def __init__(self, due: list[tuple[int, optim.Monitor]], n: int) -> None:
        super().__init__()
        self.due, self.n = due, n

    def norms(self, tensors: list[Tensor]) -> Tensor:
        """``(n,)``: each run's L2 norm over its slices of ``tensors``."""
        each = [torch.linalg.vector_norm(t.reshape(self.n, -1), dim=1) for t in tensors]
        return torch.linalg.vector_norm(torch.stack(each), dim=0)

    def add(
        self, step: int, index: int, norms: tuple[Tensor, Tensor, Tensor], hyper: Mapping[str, Any]
    ) -> None:
        """Each due run's record: its own norms and values of the hyperparameters."""
        for j, monitor in self.due:
            own = {key: _run_value(v, j, self.n) for key, v in hyper.items()}
            monitor.add(step, index, tuple(x[j] for x in norms), own)


def _split(params: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The stacked parameters that train, and the others (detached)."""
    trainable = {n: p for n, p in params.items() if p.requires_grad}
    return trainable, {n: p.detach() for n, p in params.items() if not p.requires_grad}


def _run_value(value: Any, j: int, n: int) -> Any:
    """Run ``j``'s value of a stacked hyperparameter (a length-``n`` tensor, or a tuple of
    them; a shared value as it is)."""
    if isinstance(value, Tensor) and value.ndim == 1 and value.numel() == n:
        return float(value[j])
    if isinstance(value, tuple):
        return tuple(_run_value(v, j, n) for v in value)
    return value


def _check_rule(r: Any) -> None:
    # (whether a rule's reductions would mix the stacked runs: optim.mixing.stacks)
    if type(r).precheck is not optim.Rule.precheck:
        raise VectorizeError(
            f"update rule {r.name!r} checks all gradients at once, which would mix the runs"
        )
    if getattr(r, "lookahead", False):
        raise VectorizeError(f"update rule {r.name!r} needs a lookahead closure")


#: the compiled CNN step's tolerance against autograd, relative to each tensor's largest value
_KERNEL_TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-10}


def _step_agrees(got: Any, ref: Any) -> bool:
    """Whether the compiled CNN step's ``got`` (losses, gradients) equals the reference ``ref``
    (each run's losses and gradients by autograd) to rounding."""
    losses, grads = got
    ref_losses, ref_grads = ref
    tol = _KERNEL_TOLERANCE[losses.dtype]
    pairs = [(losses, ref_losses)] + [(grads[n], ref_grads[n]) for n in grads]
    for a, b in pairs:
        b = b.detach()
        scale = float(b.abs().max()) if b.numel() else 0.0
        if a.shape != b.shape or not bool(((a - b).abs() <= tol * max(scale, 1e-30)).all()):
            return False
    return True


def _evaluations_agree(
    evaluated: list[dict[str, float]], ref: list[dict[str, float]], examples: int, tol: float
) -> bool:
    """Whether the compiled CNN's evaluations ``evaluated`` equal the ``ref`` metrics of
    :func:`~descentlab.engine.evaluation.evaluate` on ``examples`` examples: losses to
    rounding (``tol``), accuracies to one example (a near-tie of two logits may round either
    way)."""
    return all(
        math.isclose(mine["loss"], theirs["loss"], rel_tol=tol)
        and abs(mine["accuracy"] - theirs["accuracy"]) * examples <= 1.0 + 1e-9
        for mine, theirs in zip(evaluated, ref, strict=True)
    )


class Gradients:
    """How the K runs' losses and gradients are computed, all K in one pass: by the compiled
    step of the MNIST-1D CNN (:mod:`~descentlab.engine.vcnn`) where it applies, else by the
    model applied to the stacked parameters with ``functional_call`` under ``vmap``, its step
    traced once per input shape (``make_fx``).

    Args:
        base: the model's structure (on the meta device), applied to the stacked tensors.
        builts: the K runs as built (their models are the CNN kernel's check's reference).
        params, buffers: the stacked parameters and buffers (:class:`Stacked`'s).
        total: the runs' length (short runs are not traced).
        mix: whether the inputs are mixed (mixup/cutmix).
    """

    def __init__(
        self,
        base: nn.Module,
        configs: Sequence[RunConfig],
        builts: Sequence[building.Built],
        params: dict[str, Tensor],
        buffers: dict[str, Tensor],
        total: int,
        mix: bool,
    ) -> None:
        self.base, self.builts = base, builts
        self.cfg0, self.b0 = configs[0], builts[0]
        self.params, self.buffers = params, buffers
        self.train_loss = self.b0.train_loss
        self.total, self.mix = total, mix
        self.dtype = next(iter(params.values())).dtype
        self.x_val, self.y_val = self.b0.x_val, self.b0.y_val
        self._vmapped: dict[Any, Any] = {}
        self._uses: dict[Any, int] = {}
        self._trace = True
        self._untraced: list[tuple[str, str]] = []
        self._in_trial = False
        self._retrace: set[Any] = set()  # shapes traced before runs left (see restack)
        self.cnn = self._cnn_kernel(self.b0.model)

    def restack(self, params: dict[str, Tensor], buffers: dict[str, Tensor]) -> None:
        """The stacked tensors after runs left the pass (:meth:`Stacked.drop`). Each step is
        computed the way it was before, so that the runs left take the very steps they take
        without pruning: a step shape that was traced is traced again for the smaller stack
        at its next use (the traced graph and vmap's eager path agree only up to rounding);
        one not traced yet keeps its count of uses (:data:`_TRACE_AFTER`)."""
        self.params, self.buffers = params, buffers
        traced = [key for key, fn in self._vmapped.items() if key[0] == "traced" and fn]
        self._retrace.update(traced)
        for key in traced:
            del self._vmapped[key]

    def _batch_loss(self, kind: str) -> Callable[..., Tensor]:
        """One run's training loss ``(trainable, fixed, buffers, *inputs) -> loss``."""
        base, train_loss = self.base, self.train_loss

        def forward(p: Any, fixed: Any, b: Any, x: Tensor) -> Tensor:
            return functional_call(base, ({**p, **fixed}, b), (x,))

        if kind == "train":

            def f(p: Any, fixed: Any, b: Any, x: Tensor, y: Tensor) -> Tensor:
                return train_loss(forward(p, fixed, b, x), y)

            return f

        # lam L(f(x'), y_a) + (1 - lam) L(f(x'), y_b), with lam and 1 - lam computed in Python
        # as regularize.mixup_loss does (w holds both).
        def g(p: Any, fixed: Any, b: Any, x: Tensor, y: Tensor, y2: Tensor, w: Tensor) -> Tensor:
            out = forward(p, fixed, b, x)
            return w[0] * train_loss(out, y) + w[1] * train_loss(out, y2)

        return g

    def _in_dims(self, kind: str, dim: int | None) -> tuple[int | None, ...]:
        return (0, 0, 0, dim, dim) if kind == "train" else (0, 0, 0, 0, 0, 0, 0)

    def _losses_fn(self, kind: str, dim: int | None) -> Callable[..., Tensor]:
        """The K losses under vmap (eager path: autograd takes the gradients)."""
        key = ("losses", kind, dim)
        fn = self._vmapped.get(key)
        if fn is None:
            fn = vmap(self._batch_loss(kind), in_dims=self._in_dims(kind, dim),
                      randomness="different")  # fmt: skip
            self._vmapped[key] = fn
        return fn

    def _traced_fn(self, kind: str, dim: int | None, inputs: tuple[Tensor, ...]) -> Any:
        """``vmap(grad_and_value(batch_loss))`` traced once per input shape into a graph of
        plain batched ATen operations (``make_fx``), or None where tracing is off or fails.

        Replaying the graph gives the same numbers as the eager path (the same operations in
        the same order, random ones included: dropout draws fresh masks at every call) without
        re-running vmap's and functional_call's Python machinery and the autograd engine at
        every step -- on the MNIST-1D MLP that overhead is about as large as the arithmetic.

        A graph is a pure function of its inputs (parameters, buffers, batch). One traced for
        an earlier group of the same computation in this process (:func:`_graph_key`: the
        same model, loss, step kind, shapes and dtypes) is reused once it reproduces the eager
        step on this group's inputs (:meth:`_reproduces`, one eager step): tracing costs
        0.12-0.45 s on the MNIST-1D CNN, what tracing saves over 45-60 of its steps. Runs
        shorter than :data:`_TRACE_AFTER` steps are not traced, nor rarer shapes before their
        :data:`_TRACE_AFTER`-th step.
        """
        if not (_TRACE and self._trace):
            return None
        # (the inputs' shapes per run: the same key before and after runs leave the pass)
        per_run = dim == 0 or kind != "train"
        key = ("traced", kind, dim, *[(tuple(t.shape[per_run:]), t.dtype) for t in inputs])
        if key in self._vmapped:
            return self._vmapped[key]
        if key in self._retrace:
            self._retrace.discard(key)  # traced before runs left the pass: traced again
        elif self._in_trial:
            # the first step's shape, used at nearly every step: traced unless the runs are
            # too short for the trace to pay (vmap computes their steps: same numbers)
            if self.total < _TRACE_AFTER:
                return None
        else:
            # Another shape than the first step's (an epoch's last, smaller batch): traced at
            # its _TRACE_AFTER-th step; before, vmap computes it (same numbers up to rounding,
            # slower).
            self._uses[key] = uses = self._uses.get(key, 0) + 1
            if uses < _TRACE_AFTER:
                return None
        joint = vmap(
            grad_and_value(self._batch_loss(kind)),
            in_dims=self._in_dims(kind, dim),
            randomness="different",
        )
        shared = _graph_key(self, kind, dim, inputs)
        fn = _GRAPHS.get(shared) if shared is not None else None
        if fn is not None:
            if self._reproduces(fn, joint, inputs):
                _GRAPHS.move_to_end(shared)
                self._vmapped[key] = fn
                return fn
            del _GRAPHS[shared]
            self._untraced.append(("kept graph", _STALE))
        fn, failure = self._trace_graph(joint, inputs)
        if failure is not None:
            self._untraced.append((kind, failure))
        elif shared is not None and not any(n.op == "get_attr" for n in fn.graph.nodes):
            # (a graph holding constants -- tensors made in the forward pass -- is kept to
            # this group)
            _GRAPHS[shared] = fn
            while len(_GRAPHS) > _GRAPHS_KEPT:
                _GRAPHS.popitem(last=False)
        if not self._in_trial:  # the trial step silences warnings: it announces after
            self.announce_untraced()
        self._vmapped[key] = fn
        return fn

    def _copies(self, inputs: tuple[Tensor, ...]) -> tuple[Any, ...]:
        """The arguments of a step: copies of the parameters, buffers and ``inputs``."""
        return (
            {n: t.detach().clone() for n, t in self._trainable().items()},
            {n: t.detach().clone() for n, t in self._fixed().items()},
            {n: t.clone() for n, t in self.buffers.items()},
            *[t.clone() for t in inputs],
        )

    def _trace_graph(
        self, joint: Callable[..., Any], inputs: tuple[Tensor, ...]
    ) -> tuple[Any, str | None]:
        """``(graph, None)``, or ``(None, why)`` where ``joint`` cannot be traced.

        Traced on fake tensors (shapes and dtypes only): nothing is computed, the graph keeps
        no data, and a step whose operations depend on values fails here instead of being
        traced with the values of one step. Distinct copies: the tracer would merge an input
        passed twice into one."""
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:  # tracing's short-lived objects, collected while they live, would set off full
                # collections of the whole process (0.1-0.5 s each with torch loaded)
                with gc_paused():
                    fn = make_fx(joint, tracing_mode="fake")(*self._copies(inputs))
                    # the nodes' metadata (fake values, stack traces) is not needed to replay
                    for node in fn.graph.nodes:
                        node.meta.clear()
            except Exception as exc:  # the eager path does the same computation, slower
                return None, f"{type(exc).__name__}: {exc}"
        return fn, None

    def _reproduces(self, fn: Any, joint: Callable[..., Any], inputs: tuple[Tensor, ...]) -> bool:
        """Whether graph ``fn`` gives the eager ``joint``'s losses and gradients on copies of
        this group's parameters, buffers and ``inputs`` (the same random draws: each from the
        same state, which is put back), up to float rounding."""
        outs = []
        for f in (joint, fn):
            with torch.random.fork_rng(devices=[]), torch.no_grad(), gc_paused():
                try:
                    outs.append(torch.utils._pytree.tree_leaves(f(*self._copies(inputs))))
                except Exception:
                    return False
        ref, got = outs
        if len(ref) != len(got):
            return False
        for a, b in zip(got, ref, strict=True):
            if a.shape != b.shape or a.dtype != b.dtype:
                return False
            finite = b[torch.isfinite(b)]
            tol = _RTOL.get(a.dtype, 0.0) * (float(finite.abs().max()) if finite.numel() else 0.0)
            same = (a == b) | ((a - b).abs() <= tol) | (a.isnan() & b.isnan())
            if not bool(same.all()):
                return False
        return True

    def announce_untraced(self) -> None:
        """Warn once per process and subject that tracing failed (the vmap path gives the
        same numbers, more slowly) or that a kept graph was traced afresh."""
        for subject, text in self._untraced:
            if subject in ("train", "mix"):
                text = (
                    f"descentlab: the vectorized {subject} step could not be traced "
                    f"({text}); it runs through vmap at every step instead (same numbers, "
                    "slower)"
                )
            once(("untraced", subject), text, stacklevel=3)
        self._untraced.clear()

    def _cnn_kernel(self, model: nn.Module) -> vcnn.CNNKernel | None:
        """The compiled step of the MNIST-1D CNN (:mod:`~descentlab.engine.vcnn`) where it
        applies, else None (a kernel that cannot be built is announced once)."""
        cfg = self.cfg0
        applies = vcnn.applicable(model, self.b0.loss_name, cfg.loss_options, self.dtype,
                                  mix=self.mix, any_device=True)  # fmt: skip
        if not (_KERNEL and applies):
            return None
        device = next(model.parameters()).device
        if device.type != "cpu":
            self._untraced.append(("cnn kernel device", vcnn.CPU_ONLY.format(device=device)))
            return None
        try:
            return vcnn.CNNKernel(model, cfg.label_smoothing, self.dtype)
        except RuntimeError as exc:
            self._untraced.append(("cnn kernel", vcnn.UNAVAILABLE.format(reason=exc)))
            return None

    def check_cnn(
        self, inputs: tuple[Tensor, ...], dim: int | None, params: Any, buffers: Any
    ) -> None:
        """Before a process first trusts the compiled step for a shape (the answer remembered
        in :data:`_verified`): its losses and gradients on the first batch against autograd,
        run by run, and its evaluations against :func:`~descentlab.engine.evaluation.evaluate`."""
        kernel = self.cnn
        assert kernel is not None
        key = kernel.key(int(inputs[0].shape[-1]))
        with _lock:
            known = _verified.get(key)
        if known is not None:
            if not known:
                self.cnn = None  # (announced by the group that compared)
            return
        trainable, fixed = _split(params)
        ref = self._looped_losses_and_grads(dim, inputs, trainable, fixed, buffers)
        with torch.no_grad():
            got = kernel({n: p.detach() for n, p in trainable.items()}, *inputs, dim)
            # the evaluation too: every run's model (still at the group's starting weights,
            # as the copies are) on some validation examples, by evaluation.evaluate
            xv, yv = self.x_val[:_CHECK_EXAMPLES], self.y_val[:_CHECK_EXAMPLES]
            evaluated = kernel.evaluate(params, xv, yv)
            reference = [
                evaluation.evaluate(b.model, xv, yv, b.eval_loss, classification=True)
                for b in self.builts
            ]
        tol = _KERNEL_TOLERANCE[got[0].dtype]
        ok = _step_agrees(got, ref) and _evaluations_agree(evaluated, reference, len(yv), tol)
        with _lock:
            _verified[key] = ok  # (this process's answer for the shape)
        if not ok:
            self.cnn = None
            self._untraced.append(("cnn kernel check", vcnn.DISAGREES))

    def _looped_losses_and_grads(
        self,
        dim: int | None,
        inputs: tuple[Tensor, ...],
        trainable: dict[str, Tensor],
        fixed: dict[str, Tensor],
        buffers: dict[str, Tensor],
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The kernel check's reference: each run's training loss and gradients by plain
        autograd, one run at a time (no vmap, whose cross-entropy goes through a Python
        decomposition that imports SymPy: about a CPU second in each worker process)."""
        loss_of = self._batch_loss("train")
        losses, grads = [], {n: [] for n in trainable}
        for k in range(next(iter(trainable.values())).shape[0]):
            p = {n: t[k].detach().requires_grad_() for n, t in trainable.items()}
            xs = [t if dim is None else t.select(dim, k) for t in inputs]
            loss = loss_of(p, {n: t[k] for n, t in fixed.items()},
                           {n: t[k] for n, t in buffers.items()}, *xs)  # fmt: skip
            for n, g in zip(p, torch.autograd.grad(loss, list(p.values())), strict=True):
                grads[n].append(g)
            losses.append(loss.detach())
        return torch.stack(losses), {n: torch.stack(g) for n, g in grads.items()}

    def _trainable(self) -> dict[str, Tensor]:
        return {n: p for n, p in self.params.items() if p.requires_grad}

    def _fixed(self) -> dict[str, Tensor]:
        return {n: p for n, p in self.params.items() if not p.requires_grad}

    def __call__(
        self,
        kind: str,
        dim: int | None,
        inputs: tuple[Tensor, ...],
        params: dict[str, Tensor],
        buffers: dict[str, Tensor],
        noise: dict[str, Tensor] | None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The K training losses and the gradients of every run (at the noisy weights when
        there is weight noise: ``w + std * eps``, as ``regularize.WeightNoise`` perturbs): by
        the compiled CNN step, a traced graph, else eagerly (the K losses under vmap, their
        gradients by autograd)."""
        trainable, fixed = _split(params)
        compiled = kind == "train" and self.cnn is not None
        traced = None if compiled else self._traced_fn(kind, dim, inputs)
        if compiled or traced is not None:
            with torch.no_grad():
                p_in = self._noisy({n: p.detach() for n, p in trainable.items()}, noise)
                if compiled:
                    return self.cnn(p_in, *inputs, dim)
                grads, losses = traced(p_in, fixed, buffers, *inputs)
            return losses, grads
        p_in = self._noisy(dict(trainable), noise)
        losses = self._losses_fn(kind, dim)(p_in, fixed, buffers, *inputs)
        names = list(trainable)
        # The sum's gradient is each run's own gradient (the runs share no parameter).
        values = torch.autograd.grad(losses.sum(), [trainable[n] for n in names])
        return losses.detach(), dict(zip(names, values, strict=True))

    def _noisy(self, p_in: dict[str, Tensor], noise: dict[str, Tensor] | None) -> dict[str, Tensor]:
        """``p_in`` at the noisy weights ``w + std * eps`` where there is weight noise."""
        if noise is not None:
            std = self.cfg0.weight_noise
            p_in.update({n: torch.add(p_in[n], e, alpha=std) for n, e in noise.items()})
        return p_in


class Stacked:
    """The :class:`~descentlab.engine.loop.Stepper` of K runs of one architecture: their
    parameters stacked (``torch.func.stack_module_state``), their losses and gradients from
    :class:`Gradients`, one :class:`_OptimizerGroup` per optimizer among them, the input
    regularizers and weight noise drawn per run exactly as a single run draws them, and each
    run evaluated by its own model (see the module docstring of
    :mod:`descentlab.engine.multirun`).

    A run the loop has ended (diverged, stopped early) keeps its weights as they were then;
    its slice of the stacked tensors is never read again (nothing couples the runs) and its
    gradients are zeroed from then on, so that no NaN or inf enters the optimizer's state.
    """

    def __init__(
        self, configs: list[RunConfig], builts: list[building.Built], batches: Batches
    ) -> None:
        self.configs, self.builts, self.batches = configs, builts, batches
        self.k = k = len(configs)
        b0 = self.b0 = builts[0]
        self.cfg0 = configs[0]
        models = [b.model for b in builts]
        structure = [type(m) for m in models]
        shapes = [[tuple(p.shape) for p in m.state_dict().values()] for m in models]
        if any(s != structure[0] for s in structure) or any(s != shapes[0] for s in shapes):
            raise VectorizeError("the runs' models differ in architecture")
        param_dtype = next(iter(models[0].parameters())).dtype
        total = b0.total_steps
        # -- one optimizer per run of runs that share an update rule (``_OptimizerGroup``) ---
        self.opt_groups: list[_OptimizerGroup] = []
        start = 0
        for key in _optimizer_runs(configs):
            stop = start + key
            self.opt_groups.append(
                _OptimizerGroup(configs, [b.optimizer for b in builts], start, stop, total,
                                param_dtype)
            )  # fmt: skip
            start = stop
        self.rule_monitor = self.opt_groups[0].rule_monitor
        # -- stacked model ----------------------------------------------------------------
        self.params, self.buffers = stack_module_state(models)
        self.device = next(iter(self.params.values())).device
        #: each run's share of the pass's forward/backward, and of its optimizer's step
        self.clock = timing.RunClock(k, self.device)
        self.base = vmap_friendly(copy.deepcopy(models[0]).to("meta"))
        self.mix = self.cfg0.mixup_alpha > 0 or self.cfg0.cutmix_alpha > 0
        self.pipeline = b0.pipeline  # (the regularizers are fields the group shares)
        self.noisy_names = [n for n, p in models[0].named_parameters() if p.requires_grad]
        self.gradients = Gradients(self.base, configs, builts, self.params, self.buffers,
                                   total, self.mix)  # fmt: skip
        self.gradients._in_trial = True
        self._trial()
        self.gradients._in_trial = False
        self.gradients.announce_untraced()
        for og in self.opt_groups:
            og.attach(list(self.params.values()), k)
        self.run_rules: list[dict[str, Any]] = [
            rules for og in self.opt_groups for rules in og.run_rules()
        ]
        self.best: list[dict[str, Tensor] | None] = [None] * k
        self._stepped = False
        self._mask_of: tuple[bool, ...] = ()
        self._mask = torch.zeros(k, dtype=torch.bool, device=self.device)
        #: the runs (indices over the K) in the stacked tensors, row by row: all K until
        #: :meth:`drop` takes runs out of the pass
        self.rows: list[int] = list(range(k))
        self._row: dict[int, int] = {i: i for i in range(k)}

    # -- pruning inside the pass ----------------------------------------------------------

    @property
    def dropped(self) -> bool:
        """Whether runs were taken out of the pass (:meth:`drop`)."""
        return len(self.rows) < self.k

    def _of_rows(self, per_run: Sequence[Any]) -> list[Any]:
        """A list over the K runs, as it stands for the runs still in the stacked tensors."""
        return list(per_run) if not self.dropped else [per_run[i] for i in self.rows]

    def drop(self, gone: Sequence[int]) -> None:
        """Take the runs ``gone`` (indices over the K runs) out of the pass: from here on the
        stacked parameters and buffers, each optimizer's state (its per-run tensors and
        hyperparameters, step counters, the fused backend's caches made again), the per-step
        schedules, the per-run data-order and augmentation generators and the step's traced
        graph hold only the others, which continue exactly as they would have with the
        ``gone`` runs still there (nothing couples the runs), at the cost of the runs left.
        The loop ends the ``gone`` runs first
        (:meth:`Loop.drop <descentlab.engine.loop.Loop.drop>`): their results are their
        weights at this step."""
        out = set(gone)
        keep = [r for r, i in enumerate(self.rows) if i not in out]
        if len(keep) == len(self.rows):
            return
        self.rows = [self.rows[r] for r in keep]
        self._row = {i: r for r, i in enumerate(self.rows)}
        self._mask_of = ()
        self.batches.keep(keep)
        if not keep:  # nothing left to step (the loop stops: every run has ended)
            return
        idx = torch.tensor(keep, device=self.device)
        self.params = {
            n: p.detach().index_select(0, idx).requires_grad_(p.requires_grad)
            for n, p in self.params.items()
        }
        self.buffers = {n: b.index_select(0, idx) for n, b in self.buffers.items()}
        groups, start = [], 0
        for og in self.opt_groups:
            mine = [r - og.start for r in keep if og.start <= r < og.stop]
            if mine:
                og.narrow(mine, start, list(self.params.values()), len(keep))
                groups.append(og)
                start += len(mine)
        self.opt_groups = groups
        self.gradients.restack(self.params, self.buffers)

    # -- training -------------------------------------------------------------------------

    def train_mode(self) -> None:
        self.base.train()

    def _frozen_mask(self, frozen: Sequence[bool]) -> Tensor:
        key = tuple(frozen)
        if key != self._mask_of:
            self._mask_of = key
            self._mask = torch.tensor(key, device=self.device)
        return self._mask

    def step(self, batch: Batch, frozen: Sequence[bool], diverged: Diverged) -> Tensor:
        """One optimizer step of every run; returns the K training losses (before the step)."""
        self._stepped = True
        clock = self.clock
        start = clock.stamp()
        x, y, dim = batch
        noise = self._weight_noise() if self.cfg0.weight_noise > 0 else None
        kind = "train"
        inputs: tuple[Tensor, ...] = (x, y)
        if self.pipeline is not None:
            x, y, y2, w = self._regularized_inputs(x, y, dim)
            dim = 0
            inputs = (x, y) if y2 is None else (x, y, y2, w)
            kind = "train" if y2 is None else "mix"
        values, grads = self.gradients(kind, dim, inputs, self.params, self.buffers, noise)
        rows = self.rows if self.dropped else None
        clock.add(start, clock.stamp(), timing.COMPUTE, rows)  # shared by the runs stacked
        per_run = frozen  # the loop's list: ``diverged`` marks a run frozen in it
        frozen = self._of_rows(per_run)
        frozen_any = any(frozen)
        finite = torch.isfinite(values)
        if frozen_any:
            finite |= self._frozen_mask(frozen)
        if not bool(finite.all()):
            for r, ok in enumerate(finite.tolist()):
                if not ok:
                    diverged(self.rows[r], float(values[r]))
            frozen = self._of_rows(per_run)  # with the runs that diverged now
            frozen_any = True
        gs = list(grads.values())
        if frozen_any:
            # a frozen run's gradient may be NaN: zero it
            mask = self._frozen_mask(frozen)
            gs = [g.masked_fill(mask.view(-1, *([1] * (g.dim() - 1))), 0.0) for g in gs]
        for og in self.opt_groups:
            start = clock.stamp()
            og.step(og.optimizer, list(self.params.values()), gs, frozen)
            clock.add(start, clock.stamp(), timing.UPDATE, self.rows[og.start : og.stop])
        if rows is None:
            return values.double()
        # the runs taken out of the pass have ended: their entries are never read
        out = torch.zeros(self.k, dtype=torch.float64, device=values.device)
        out[torch.tensor(rows, device=values.device)] = values.double()
        return out

    def _regularized_inputs(
        self, x: Tensor, y: Tensor, dim: int | None
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """Per-run augmentation, input noise and mixup/cutmix, each run drawing from its own
        generator in the order a single run draws (augment, noise, mix)."""
        assert self.pipeline is not None
        xs, ys, y2s, ws = [], [], [], []
        for i, gen in enumerate(self.batches.aug_gens):
            xb, yb, yb2, lam = self.pipeline(
                x if dim is None else x[i], y if dim is None else y[i], gen
            )
            if self.mix:
                ys.append(yb)
                y2s.append(yb2)
                ws.append([lam, 1.0 - lam])
            xs.append(xb)
        if not self.mix:
            k = len(self.rows)
            return torch.stack(xs), (y if dim == 0 else y.expand(k, *y.shape)), None, None
        w = torch.tensor(ws, dtype=self.gradients.dtype, device=x.device)
        return torch.stack(xs), torch.stack(ys), torch.stack(y2s), w

    def _weight_noise(self) -> dict[str, Tensor]:
        """Each run's ``eps`` (stacked), drawn as ``regularize.WeightNoise`` draws it: one
        ``randn`` per trainable parameter, in order, from the run's augmentation generator."""
        noise: dict[str, list[Tensor]] = {n: [] for n in self.noisy_names}
        for g in self.batches.aug_gens:
            for name in self.noisy_names:
                p = self.params[name]
                noise[name].append(torch.randn(p.shape[1:], generator=g, dtype=p.dtype))
        return {n: torch.stack(v).to(self.device) for n, v in noise.items()}

    def _trial(self) -> None:
        """One step and one evaluation on copies: anything vmap, the tracer or the batched
        rules cannot do fails here, before any run is recorded."""
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                params = {n: p.detach().clone().requires_grad_(p.requires_grad)
                          for n, p in self.params.items()}  # fmt: skip
                buffers = {n: b.clone() for n, b in self.buffers.items()}
                opts = [og.make(list(params.values())) for og in self.opt_groups]
                # the inputs of the first step, as :class:`Batches` gives them (so that its traced
                # graph is the one the runs use): shared when the runs share their data order
                n = self.batches.n
                bs = min(self.cfg0.batch_size or n, n)
                x, y = self.batches.x[:bs], self.batches.y[:bs]
                dim: int | None = None
                if not (self.batches.shared and self.pipeline is None):
                    dim = 0
                    x = x.expand(self.k, *x.shape).contiguous()
                    y = y.expand(self.k, *y.shape).contiguous()
                inputs: tuple[Tensor, ...] = (x, y)
                if self.mix:
                    w = torch.tensor([[1.0, 0.0]] * self.k, dtype=self.gradients.dtype,
                                     device=x.device)  # fmt: skip
                    inputs = (x, y, y, w)
                kind = "mix" if self.mix else "train"
                self.base.train()
                if self.gradients.cnn is not None:
                    self.gradients.check_cnn(inputs, dim, params, buffers)
                _, grads = self.gradients(kind, dim, inputs, params, buffers, None)
                for og, opt in zip(self.opt_groups, opts, strict=True):
                    og.step(opt, list(params.values()), list(grads.values()))
                with torch.no_grad():
                    # the eval-mode forward too (GRU's has no batching rule: the model is
                    # left to one run at a time, whose numbers are known to be right)
                    self.base.eval()
                    vmap(functional_call, in_dims=(None, 0, None))(
                        self.base, (params, buffers), (self.b0.x_val[:2],)
                    )
            except VectorizeError:
                raise
            except Exception as exc:
                raise VectorizeError(
                    f"model {self.b0.model_name!r} with optimizer {self.cfg0.optimizer!r} "
                    f"cannot be trained under torch.func.vmap: {type(exc).__name__}: {exc}"
                ) from exc
            finally:
                self.base.train()

    # -- evaluation -----------------------------------------------------------------------

    @torch.no_grad()
    def _evaluate(self, x: Tensor, y: Tensor) -> list[dict[str, float]]:
        """The metrics of every run on ``(x, y)``, each computed by ``evaluation.evaluate`` on
        the run's own model holding its current weights -- the single run's evaluation. One
        forward pass per run: evaluation batches are large, so there is no per-operation cost
        to share, and the model's own layers (``nn.Conv1d``: MKL-DNN) are faster on them than
        the vectorized product form.

        Before the first step, runs that start from the same weights (the same seed) are
        evaluated once: the same deterministic forward pass would give the same numbers.

        A metric a run's evaluation does not give (the RMSE of non-finite outputs) is missing
        for that run: its records leave it out, as the run alone does.

        The MNIST-1D CNN's runs, where its compiled step applies, are evaluated by the same
        kernel, all K in one call (:meth:`vcnn.CNNKernel.evaluate
        <descentlab.engine.vcnn.CNNKernel.evaluate>`: the same metrics, ~10x faster)."""
        cnn = self.gradients.cnn
        if cnn is not None and self.b0.classification:
            keys = ("loss", "accuracy")
            out: list[dict[str, float]] = [{} for _ in range(self.k)]
            if self.rows:
                for i, m in zip(self.rows, cnn.evaluate(self.params, x, y), strict=True):
                    out[i] = {key: m[key] for key in keys}
            return out
        per_run: list[dict[str, float]] = []
        done: list[tuple[str, dict[str, Tensor], dict[str, float]]] = []
        for i, b in enumerate(self.builts):
            if i not in self._row:  # taken out of the pass (its results are kept)
                per_run.append({})
                continue
            state = self.keep(i)
            loss = json_key([self.configs[i].loss, self.configs[i].loss_options])
            metrics = None
            if not self._stepped:
                metrics = next((m for k, s, m in done if k == loss and _same_state(s, state)), None)
            if metrics is None:
                _load_into(b.model, state)
                metrics = evaluation.evaluate(
                    b.model, x, y, b.eval_loss, classification=b.classification
                )
                if not self._stepped:
                    done.append((loss, state, metrics))
            per_run.append(metrics)
        return per_run

    def metrics(self, train: bool | None = None) -> list[dict[str, float | None]]:
        """Each run's metrics now (``train``: whether the training split is measured too;
        None: as the runs' configs say)."""
        out: list[dict[str, float | None]] = [{} for _ in range(self.k)]
        train = self.cfg0.evaluate_train if train is None else train
        for split, x, y in rundata.eval_splits(self.b0, train):
            for i, metrics in enumerate(self._evaluate(x, y)):
                out[i].update({f"{split}/{name}": v for name, v in metrics.items()})
        return out

    def hyper(self) -> list[dict[str, float]]:
        out: list[dict[str, float]] = [{} for _ in range(self.k)]
        for key in self.cfg0.schedule:
            values = [v for og in self.opt_groups for v in og.values(key)]
            for i, v in zip(self.rows, values, strict=True):
                if v is not None:
                    out[i][key] = v
        return out

    def after_evaluation(self, i: int, values: dict[str, float]) -> None:
        if self.run_rules[i]:
            r = self._row[i]
            og = next(og for og in self.opt_groups if og.start <= r < og.stop)
            og.step_rules(r, self.run_rules[i], values[self.rule_monitor])

    def early_update(self, i: int, early: Any, value: float, step: int) -> bool:
        improved = early.is_improvement(value)
        stop = bool(early.update(value, None, step=step))
        if improved and early.restore_best:
            self.best[i] = self.keep(i)
        return stop

    # -- results --------------------------------------------------------------------------

    def keep(self, i: int) -> dict[str, Tensor]:
        r = self._row[i]
        out = {n: p.detach()[r].clone() for n, p in self.params.items()}
        out.update({n: b[r].clone() for n, b in self.buffers.items()})
        return out

    def restore(self, i: int, final: Any, best: bool) -> None:
        _load_into(self.builts[i].model, (self.best[i] or final) if best else final)

    def evaluating(self, i: int) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def _same_state(a: dict[str, Tensor], b: dict[str, Tensor]) -> bool:
    """Whether two runs' weights and buffers are equal (bit for bit)."""
    return a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def _load_into(model: nn.Module, state: dict[str, Tensor] | None) -> None:
    if state is None:
        return
    with torch.no_grad():
        for name, t in (*model.named_parameters(), *model.named_buffers()):
            if name in state:
                t.copy_(state[name])


def train_group(
    configs: list[RunConfig], splits: Any, store: Store | None, progress: bool | None
) -> list[outcome.RunResult]:
    """Train ``configs`` in one vectorized pass; results in the order of ``configs``.

    Raises:
        VectorizeError: something in the runs cannot be vectorized (found before any run is
            recorded).
    """
    order = _by_optimizer(configs)
    with torch.random.fork_rng(devices=[]):
        loop = _stacked([configs[i] for i in order], splits)
        k, b0 = len(order), loop.builts[0]
        run_ids: list[int | None] = [None] * k
        if store is not None:
            with store.transaction():
                for i, (cfg, b) in enumerate(zip(loop.configs, loop.builts, strict=True)):
                    multirun = {"mode": "vmap", "runs": k, "index": i}
                    run_ids[i] = outcome.create_record(store, cfg, b, record=cfg.to_dict(),
                                                       multirun=multirun)  # fmt: skip
        desc = f"{k} runs of {b0.model_name} (vmap)"
        out = live(loop, loop.stepper, store, run_ids, progress=progress, desc=desc, agreed=None)
    return _unordered(order, out)


def _by_optimizer(configs: list[RunConfig]) -> list[int]:
    """The order a pass stacks ``configs`` in: the runs of one optimizer next to each other
    (each optimizer steps a slice), otherwise as given."""
    keys = [_optimizer_key(c) for c in configs]
    first = {key: i for i, key in reversed(list(enumerate(keys)))}
    return sorted(range(len(configs)), key=lambda i: (first[keys[i]], i))


def _unordered(order: list[int], stacked: list[Any]) -> list[Any]:
    """``stacked`` (one item per run, in the pass's ``order``) in the order of its configs."""
    out = list(stacked)
    for position, i in enumerate(order):
        out[i] = stacked[position]
    return out


def _stacked(configs: list[RunConfig], splits: Any) -> Loop:
    """The loop of K runs built (each exactly as ``train()`` builds it: the same initial
    weights) and stacked."""
    builts = [building.build(cfg, splits) for cfg in configs]
    batches = Batches([cfg.seed for cfg in configs], builts[0].x_train, builts[0].y_train,
                      configs[0].batch_size, configs[0].drop_last)  # fmt: skip
    return Loop(configs, builts, Stacked(configs, builts, batches), batches)


#: ``decide(rung, step, measured)`` of :func:`train_in_rungs`: ``measured[p][i]`` the
#: validation metrics of pass ``p``'s run ``i`` at the rung (``{}``: the run has ended);
#: returns, per pass and run, whether it goes on.
RungDecision = Callable[[int, int, list[list[dict[str, float]]]], list[list[bool]]]


def train_in_rungs(
    passes: Sequence[tuple[list[RunConfig], Any]],
    rungs: Sequence[int],
    decide: RungDecision,
    *,
    progress: bool | None = False,
    message: str = "pruned at step {step} (rung {rung})",
    ended: Callable[[int, int, outcome.RunResult, building.Built], None] | None = None,
) -> list[list[outcome.RunResult]]:
    """Vectorized passes trained together up to each of ``rungs`` (steps), where ``decide``
    sees every run's validation metrics and the runs it stops leave their passes
    (:meth:`Loop.drop <descentlab.engine.loop.Loop.drop>`, :meth:`Stacked.drop`): no run
    restarts, and a run that goes on trains exactly as in its pass without pruning (the
    same steps, numbers and records; the rung's measurement records nothing). ``passes``:
    each pass's configs (as :func:`train_group` takes them: one model, length and schedule)
    and its data. A stopped run ends with status ``"interrupted"`` and ``message`` (its
    result: its weights and records at the rung); nothing is written to a store (the caller
    records what it keeps: ``ended(pass, run, result, built)`` is called for every run at
    the end). Results per pass, in the order of its configs."""
    orders = [_by_optimizer(configs) for configs, _ in passes]
    with torch.random.fork_rng(devices=[]):
        loops = [_stacked([configs[i] for i in order], splits)
                 for (configs, splits), order in zip(passes, orders, strict=True)]  # fmt: skip
        for k, step in enumerate(rungs):
            for loop in loops:
                if step < loop.total:
                    live(loop, loop.stepper, None, loop.run_ids, until_step=step, progress=False,
                         desc="rungs (vmap)", agreed=None, hold=True)  # fmt: skip
            measured = [
                _unordered(order, loop.measure() if step < loop.total else [{} for _ in order])
                for loop, order in zip(loops, orders, strict=True)
            ]
            keep = decide(k, step, measured)
            for loop, order, goes in zip(loops, orders, keep, strict=True):
                gone = [position for position, i in enumerate(order) if not goes[i]]
                if gone and step < loop.total:
                    loop.drop(gone, "interrupted", message.format(step=step, rung=k))
        out = []
        for loop, order in zip(loops, orders, strict=True):
            held = live(loop, loop.stepper, None, loop.run_ids, progress=progress,
                        desc="rungs (vmap)", agreed=None)  # fmt: skip
            for position, i in enumerate(order):
                if ended is not None:
                    ended(len(out), i, held[position], loop.builts[position])
            out.append(_unordered(order, held))
    return out
