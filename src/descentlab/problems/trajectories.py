"""Many optimisation runs on an analytic landscape at once: batched trajectories.

:func:`run` starts ``K`` runs of one optimizer -- from ``K`` starting points, with ``K``
learning rates (or any ``K`` hyperparameter values), or both -- and records every iterate:

- ``paths``: shape ``(K, T + 1, d)``, the points :math:`x_0, x_1, \\dots, x_T` (``T`` steps;
  index 0 is the start);
- ``losses``: shape ``(K, T + 1)``, the exact loss :math:`f(x_t)` at each point (for a noisy
  landscape the optimizer sees stochastic gradients but the recorded loss is the exact one);
- ``diverged`` / ``diverged_at``: which runs left the finite numbers (inf/NaN point or loss)
  or the box ``|x_i| <= bound``, and the first step ``t`` at which they did. A diverged run is
  *frozen*: from ``diverged_at`` on, its path and loss stay at its last valid point
  :math:`x_{t-1}`, and it never disturbs the other runs.

The K runs are one parameter of shape ``(K, d)`` and a per-run hyperparameter a length-K
tensor, so one step advances all runs with the arithmetic of K separate runs; a
``torch.optim`` class, or a rule that reads the whole tensor, gets one param group per run.
Where it applies the whole run is one compiled call (:mod:`descentlab.problems.kernels`) with
the same iterates. Both paths, the order of a step and what couples runs: docs/playground.md
("Batched trajectories and the trajectory kernel").

Example:
    >>> import torch
    >>> from descentlab.problems import landscapes, trajectories
    >>> f = landscapes.get("parabola")
    >>> tr = trajectories.run(f, "sgd", starts=[4.0], lr=[0.2, 0.01, 1.0], steps=6)
    >>> tr.paths.shape, tr.losses.shape
    (torch.Size([3, 7, 1]), torch.Size([3, 7]))
    >>> [round(v, 3) for v in tr.paths[:, 1, 0].tolist()]    # x1 = x0 - lr * (2 x0 - 4)
    [3.2, 3.96, 0.0]

References:
    - Karpathy et al., CS231n "Neural Networks Part 3" (optimizer animations),
      https://cs231n.github.io/neural-networks-3/
    - Robbins & Monro, "A Stochastic Approximation Method", Ann. Math. Statist. 22 (1951).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from descentlab import optim
from descentlab.problems import kernels
from descentlab.problems.landscapes import Landscape
from descentlab.problems.landscapes import get as get_landscape
from descentlab.problems.paths import (
    OptimizerSpec,
    Race,
    Trajectories,
    default_lr,
    optimizer_label,
)

__all__ = ["races", "run"]  # the values they return: descentlab.problems.paths

# --------------------------------------------------------------------------------------------
# argument handling


def _check_positive_values(name: str, value: Any) -> None:
    """Every entry of a number, list, tuple, array or tensor must be finite and > 0."""
    if isinstance(value, list | tuple):
        vals = list(value)
    elif hasattr(value, "tolist") and not isinstance(value, int | float):
        vals = [value.tolist()] if getattr(value, "ndim", 1) == 0 else value.tolist()
    else:
        vals = [value]
    for v in vals:
        ok = isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < math.inf
        if not ok:
            shown = value.tolist() if isinstance(value, Tensor) else value
            raise ValueError(f"{name} must be a finite number > 0, got {shown}")


def _per_run(
    name: str, value: Any, dtype: torch.dtype, tuple_is_per_run: bool = False
) -> tuple[Any, int | None]:
    """A number/callable/bool/str passes; a list or 1-D tensor becomes a (K,) tensor.

    Tuples are structured values (``betas=(0.9, 0.999)``) and pass through unchanged,
    except for ``lr`` where any sequence means one value per run.
    """
    if callable(value) or isinstance(value, bool | str) or value is None:
        return value, None
    if isinstance(value, tuple) and not tuple_is_per_run:
        return value, None
    if isinstance(value, int | float):
        return value, None
    t = torch.as_tensor(value, dtype=dtype).detach()
    if t.ndim == 0:
        return float(t), None
    if t.ndim != 1 or t.numel() == 0:
        raise ValueError(
            f"{name} must be a number or a 1-D sequence (one value per run), "
            f"got shape {tuple(t.shape)}"
        )
    return t, int(t.numel())


def _resolve_landscape(landscape: Landscape | str) -> Landscape:
    if isinstance(landscape, Landscape):
        return landscape
    if isinstance(landscape, str):
        return get_landscape(landscape)
    raise ValueError(f"landscape must be a Landscape or a name, got {landscape!r}")


def _resolve_optimizer(optimizer: OptimizerSpec) -> tuple[str, Any]:
    """('descentlab', cls) | ('rule', rule) | ('torch', cls)."""
    if isinstance(optimizer, str):
        return "descentlab", optim.get(optimizer)
    if isinstance(optimizer, optim.Rule):
        return "rule", optimizer
    if isinstance(optimizer, type) and issubclass(optimizer, optim.Optimizer):
        return "descentlab", optimizer
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return "torch", optimizer
    raise ValueError(
        "optimizer must be a name (one of "
        f"{', '.join(optim.NAMES)}), an update rule or a torch.optim.Optimizer class; "
        f"got {optimizer!r}"
    )


def _starts_tensor(f: Landscape, starts: Any, dtype: torch.dtype | None) -> Tensor:
    x = torch.as_tensor(starts).detach()
    if dtype is None:
        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    x = x.to(dtype)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[-1] != f.dim or x.shape[0] == 0:
        raise ValueError(
            f"starts must have shape ({f.dim},) or (K, {f.dim}) for landscape {f.name!r} "
            f"(dimension {f.dim}), got {tuple(torch.as_tensor(starts).shape)}"
        )
    if not torch.isfinite(x).all():
        raise ValueError(f"starts must be finite, got {x.tolist()}")
    return x


# --------------------------------------------------------------------------------------------
# the two execution paths


class _Batched:
    """One (K, d) parameter, hyperparameters as scalars or length-K tensors."""

    batched = True

    def __init__(self, kind: str, spec: Any, x0: Tensor, hyper: dict[str, Any]) -> None:
        self.k = x0.shape[0]
        self.x = x0.clone().requires_grad_(True)
        self._ones = torch.ones(self.k, dtype=x0.dtype)
        self.opt = (
            spec([self.x], **hyper)
            if kind == "descentlab"
            else optim.Optimizer([self.x], spec, **hyper)
        )
        self.lookahead = any(getattr(r, "lookahead", False) for r in self.opt.rule.rules)

    def points(self) -> Tensor:
        return self.x.detach()

    def set_rows(self, mask: Tensor, values: Tensor) -> None:
        with torch.no_grad():
            self.x.copy_(torch.where(mask[:, None], values, self.x))

    def loss(self, sample: Callable[[Tensor], Tensor], with_grad: bool) -> Tensor:
        if not with_grad:
            with torch.no_grad():
                return sample(self.x)
        with torch.enable_grad():
            value = sample(self.x)
            # grad_outputs of ones: the gradient of the sum, without the sum.
            (self.x.grad,) = torch.autograd.grad(value, self.x, self._ones)
        return value.detach()

    def zero_rows(self, mask: Tensor) -> None:
        if self.x.grad is not None:
            self.x.grad.masked_fill_(mask[:, None], 0.0)

    # per-run hyperparameters and per-run rejection (loss rules)
    def get_values(self, name: str) -> list[float]:
        v = self.opt.param_groups[0][name]
        if isinstance(v, Tensor) and v.ndim == 1:
            return [float(a) for a in v.tolist()]
        return [float(v)] * self.k

    def set_values(self, name: str, values: list[float]) -> None:
        self.opt.param_groups[0][name] = torch.tensor(values, dtype=self.x.dtype)

    def snapshot(self) -> list[tuple[Tensor, Tensor]]:
        """(live tensor, copy) for the parameter and every per-run state tensor."""
        live = [self.x.detach()]
        for v in self.opt.state[self.x].values():
            if isinstance(v, Tensor) and v.ndim >= 1 and v.shape[0] == self.k:
                live.append(v)
        return [(t, t.clone()) for t in live]

    def restore_rows(self, mask: Tensor, snap: list[tuple[Tensor, Tensor]]) -> None:
        with torch.no_grad():
            for live, saved in snap:
                m = mask.view(-1, *([1] * (live.ndim - 1)))
                live.copy_(torch.where(m, saved, live))


class _Groups:
    """One param group per run: the torch.optim fallback (K parameters of shape (d,)), and
    descentlab optimizers that are not elementwise (Muon, Adafactor, Shampoo, SOAP, global-norm
    clipping, ...: their update reads the whole tensor, so K runs stacked as the rows of one
    (K, d) tensor would step as one matrix). These get K parameters of shape (1, d), each in
    its own group: exactly the tensor a run started alone steps, so a run's path does not
    depend on the runs beside it."""

    batched = False

    def __init__(
        self, spec: Any, x0: Tensor, hyper: dict[str, Any], *, kind: str = "torch"
    ) -> None:
        self.k = x0.shape[0]
        if kind == "torch":
            for name, v in hyper.items():
                if callable(v):
                    raise ValueError(
                        f"{name} is a schedule, which torch.optim classes cannot evaluate; use "
                        "a descentlab optimizer, or scheduler=... with a torch LR scheduler"
                    )
        rows = kind != "torch"  # a descentlab run alone steps a (1, d) parameter
        self.ps = [
            (x0[i : i + 1] if rows else x0[i]).clone().requires_grad_(True) for i in range(self.k)
        ]
        groups = []
        for i, p in enumerate(self.ps):
            g: dict[str, Any] = {"params": [p]}
            for name, v in hyper.items():
                g[name] = float(v[i]) if isinstance(v, Tensor) and v.ndim == 1 else v
            groups.append(g)
        if kind == "rule":
            self.opt = optim.Optimizer(groups, spec)
        else:
            self.opt = spec(groups)
        rules = getattr(getattr(self.opt, "rule", None), "rules", ())
        self.lookahead = any(getattr(r, "lookahead", False) for r in rules)

    def _stacked(self) -> Tensor:
        return torch.cat(self.ps) if self.ps[0].ndim == 2 else torch.stack(self.ps)

    def points(self) -> Tensor:
        return self._stacked().detach()

    def set_rows(self, mask: Tensor, values: Tensor) -> None:
        with torch.no_grad():
            for i in torch.nonzero(mask).reshape(-1).tolist():
                self.ps[i].copy_(values[i])

    def loss(self, sample: Callable[[Tensor], Tensor], with_grad: bool) -> Tensor:
        if not with_grad:
            with torch.no_grad():
                return sample(self._stacked())
        with torch.enable_grad():
            value = sample(self._stacked())
            grads = torch.autograd.grad(value.sum(), self.ps)
        for p, g in zip(self.ps, grads, strict=True):
            p.grad = g
        return value.detach()

    def zero_rows(self, mask: Tensor) -> None:
        for i in torch.nonzero(mask).reshape(-1).tolist():
            if self.ps[i].grad is not None:
                self.ps[i].grad.zero_()

    def get_values(self, name: str) -> list[float]:
        return [float(g[name]) for g in self.opt.param_groups]

    def set_values(self, name: str, values: list[float]) -> None:
        for g, v in zip(self.opt.param_groups, values, strict=True):
            g[name] = v

    def snapshot(self) -> list[tuple[Tensor, Tensor]]:
        return [(p, p.detach().clone()) for p in self.ps] + [
            (v, v.clone())
            for p in self.ps
            for v in self.opt.state[p].values()
            if isinstance(v, Tensor)
        ]

    def restore_rows(self, mask: Tensor, snap: list[tuple[Tensor, Tensor]]) -> None:
        rows = set(torch.nonzero(mask).reshape(-1).tolist())
        owners = {id(p): i for i, p in enumerate(self.ps)}
        for i, p in enumerate(self.ps):
            for v in self.opt.state[p].values():
                if isinstance(v, Tensor):
                    owners[id(v)] = i
        with torch.no_grad():
            for live, saved in snap:
                if owners.get(id(live)) in rows:
                    live.copy_(saved)


class _PerRunLossRule:
    """K independent copies of a loss rule, each driving one run's ``key`` from its own loss.

    A rejected step (``BoldDriver(reject=True)``) puts back that run's parameters and
    per-run optimizer state from its last accepted step. The step counter of a batched
    optimizer is shared by the runs and keeps counting (only bias-corrected rules such as
    Adam's see the difference from a separate run).
    """

    def __init__(self, rule: Any, runner: _Batched | _Groups, key: str) -> None:
        if not (hasattr(rule, "step") and hasattr(rule, "accepted")):
            raise ValueError(
                f"loss_rule must be a loss rule (e.g. descentlab.schedules.bold_driver()), "
                f"got {rule!r}"
            )
        if hasattr(rule, "check_groups"):
            rule.check_groups(1)
        self.rules = [copy.deepcopy(rule) for _ in range(runner.k)]
        self.runner = runner
        self.key = key
        self.rejects = bool(getattr(rule, "reject", False))
        # Per-run values need a per-run container from the start.
        runner.set_values(key, runner.get_values(key))
        self.snap = runner.snapshot() if self.rejects else None

    def step(self, losses: Tensor, frozen: Tensor) -> bool:
        """Observe each run's loss; True if some run's parameters were put back."""
        values = self.runner.get_values(self.key)
        rejected = torch.zeros(len(self.rules), dtype=torch.bool)
        for i, (rule, loss) in enumerate(zip(self.rules, losses.tolist(), strict=True)):
            if frozen[i]:
                continue
            values[i] = float(rule.step(loss, [values[i]])[0])
            rejected[i] = not rule.accepted
        self.runner.set_values(self.key, values)
        if not self.rejects:
            return False
        any_rejected = bool(rejected.any())
        if any_rejected:
            self.runner.restore_rows(rejected, self.snap)
        # A fresh snapshot: accepted runs advance, rejected runs hold the restored values.
        self.snap = self.runner.snapshot()
        return any_rejected


def _make_scheduler_step(sched: Any, k: int) -> Callable[[Tensor], bool]:
    """Adapt a scheduler object: torch LRSchedulers step blind, others get the loss."""
    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau) and k > 1:
        raise ValueError(
            "torch's ReduceLROnPlateau takes one loss for all param groups; with K > 1 runs use "
            "loss_rule=descentlab.schedules.reduce_on_plateau(...) for per-run decisions"
        )
    if isinstance(sched, torch.optim.lr_scheduler.LRScheduler):

        def blind(losses: Tensor) -> bool:
            sched.step()
            return False

        return blind

    def with_loss(losses: Tensor) -> bool:
        try:
            sched.step(losses.reshape(()) if k == 1 else losses)
        except ValueError as exc:
            if k > 1 and "scalar" in str(exc):
                raise ValueError(
                    f"{exc}; a scheduler with a loss rule takes one loss for all runs -- with "
                    "K > 1 runs pass the rule as loss_rule=... for per-run decisions"
                ) from None
            raise
        return bool(getattr(sched, "last_rejected", False))

    return with_loss


# --------------------------------------------------------------------------------------------


def _per_run_hyper(
    lr: Any, hyper: Mapping[str, Any] | None, dtype: torch.dtype, n_starts: int
) -> tuple[int, dict[str, Any], Tensor | None]:
    """The number of runs ``K`` (agreed between the starts and the per-run values), the
    hyperparameters (``lr`` included; a one-element tensor becomes a float) and the
    learning rates as a ``(K,)`` tensor when they are numbers."""
    sizes = {n_starts}
    all_hyper: dict[str, Any] = {}
    lr_tensor: Tensor | None = None
    if lr is not None:
        if not callable(lr):
            _check_positive_values("lr", lr)
        lr_value, n = _per_run("lr", lr, dtype, tuple_is_per_run=True)
        if not callable(lr_value):
            lr_tensor = torch.as_tensor(lr_value, dtype=dtype).reshape(-1)
        if n is not None:
            sizes.add(n)
        all_hyper["lr"] = lr_value
    for name, value in (hyper or {}).items():
        if name == "lr":
            raise ValueError("pass the learning rate as lr=..., not inside hyper")
        v, n = _per_run(name, value, dtype)
        if n is not None:
            sizes.add(n)
        all_hyper[name] = v
    sizes.discard(1)
    if len(sizes) > 1:
        raise ValueError(
            f"the number of runs must agree between starts ({n_starts}) and per-run "
            f"hyperparameters; got sizes {sorted(sizes)}"
        )
    k = sizes.pop() if sizes else 1
    for name, v in list(all_hyper.items()):
        if isinstance(v, Tensor) and v.numel() == 1:
            all_hyper[name] = float(v)
    if lr_tensor is not None:
        lr_tensor = lr_tensor.expand(k).clone()
    return k, all_hyper, lr_tensor


def _check_starts(f: Landscape, x0: Tensor, bound: float | None) -> None:
    """The loss is finite at every start, and every start lies inside the bound."""
    with torch.no_grad():
        f0_bad = ~torch.isfinite(f(x0))
    if f0_bad.any():
        raise ValueError(f"the loss is not finite at the starts {x0[f0_bad].tolist()}")
    if bound is not None and (x0.abs().amax(-1) > bound).any():
        raise ValueError(f"starts must lie inside the bound |x_i| <= {bound}")


class _Recorder:
    """The time-major buffers of the points and exact losses, and the runs that diverged.

    Time-major: each step writes one contiguous block (a strided (K, T, d) write per step
    costs more than the optimizer step itself at K = 10,000). A run that diverges at step
    ``t`` is frozen at its point and loss of step ``t - 1``.
    """

    def __init__(self, x0: Tensor, steps: int, bound: float | None) -> None:
        k, d = x0.shape
        self.bound = bound
        self.paths = torch.empty(steps + 1, k, d, dtype=x0.dtype)
        self.losses = torch.empty(steps + 1, k, dtype=x0.dtype)
        self.diverged = torch.zeros(k, dtype=torch.bool)
        self.diverged_at = torch.full((k,), -1, dtype=torch.int64)
        self.frozen_x = x0.clone()
        self.frozen_loss = torch.zeros(k, dtype=x0.dtype)
        self.any_diverged = False

    def _freeze_new(self, t: int, x: Tensor, exact: Tensor) -> None:
        """Freeze the runs that left the finite numbers or the bound at step ``t``."""
        bad = ~torch.isfinite(exact) | ~torch.isfinite(x).all(-1)
        if self.bound is not None:
            bad |= x.abs().amax(-1) > self.bound
        new = bad & ~self.diverged
        if new.any():
            # t >= 1 here: the starts were checked before the first step.
            self.diverged_at[new] = t
            self.frozen_x[new] = self.paths[t - 1][new]
            self.frozen_loss[new] = self.losses[t - 1][new]
            self.diverged |= new
            self.any_diverged = True

    def record(self, t: int, runner: _Batched | _Groups, exact: Tensor) -> None:
        """Record step ``t`` (``exact``: the exact losses at the runner's points), holding
        the diverged runs at their frozen points (their gradients zeroed)."""
        x = runner.points()
        # Cheap test first: the sums of all points and losses are finite (and the largest
        # coordinate inside the bound) unless some run went bad -- only then look per run.
        # (A sum of finite terms can overflow; the per-run test then finds nobody.)
        suspect = not math.isfinite(float(exact.sum() + x.sum()))
        if self.bound is not None and not suspect:
            suspect = float(x.abs().max()) > self.bound
        if suspect:
            self._freeze_new(t, x, exact)
        if self.any_diverged:
            runner.set_rows(self.diverged, self.frozen_x)
            x = runner.points()
            exact = torch.where(self.diverged, self.frozen_loss, exact)
            runner.zero_rows(self.diverged)
        self.paths[t] = x
        self.losses[t] = exact

    def trajectories(
        self, landscape: str, label: str, lr: Tensor | None, batched: bool
    ) -> Trajectories:
        """The recorded runs. Views of the time-major buffers (a copy to ``(K, T + 1, d)``
        order would cost more than a tenth of the run at K = 10,000, T = 1,000); call
        ``.contiguous()`` where layout matters."""
        return Trajectories(
            paths=self.paths.transpose(0, 1),
            losses=self.losses.T,
            diverged=self.diverged,
            diverged_at=self.diverged_at,
            lr=lr,
            landscape=landscape,
            optimizer=label,
            batched=batched,
        )


def _step_by_step(
    f: Landscape,
    runner: _Batched | _Groups,
    rec: _Recorder,
    steps: int,
    observers: list[Callable[[Tensor], bool]],
    seed: int,
) -> None:
    """The Python loop: evaluate, let the observers see the loss, record, step."""
    gen = torch.Generator(device=rec.frozen_x.device).manual_seed(seed)
    stochastic = f.stochastic

    def sample(x: Tensor) -> Tensor:
        return f.sample(x, generator=gen) if stochastic else f(x)

    def closure() -> Tensor:
        observed = runner.loss(sample, with_grad=True)
        if rec.any_diverged:
            runner.zero_rows(rec.diverged)
        return observed.sum()

    for t in range(steps + 1):
        with_grad = t < steps and not runner.lookahead
        observed = runner.loss(sample, with_grad)
        if t > 0 and observers:
            restored = False
            for observe in observers:
                restored |= observe(observed)
            if restored:  # a loss rule put parameters back: evaluate there again
                observed = runner.loss(sample, with_grad)
        exact = observed
        if stochastic:
            with torch.no_grad():
                exact = f(runner.points())
        rec.record(t, runner, exact)
        if t == steps:
            break
        if runner.lookahead:
            runner.opt.step(closure)
        else:
            runner.opt.step()


def _observers(
    runner: _Batched | _Groups,
    rec: _Recorder,
    scheduler: Callable[[torch.optim.Optimizer], Any] | None,
    loss_rule: Any,
    loss_rule_key: str,
) -> list[Callable[[Tensor], bool]]:
    """What sees the losses after each step: the per-run loss rule, then the scheduler."""
    observers: list[Callable[[Tensor], bool]] = []
    if loss_rule is not None:
        per_run = _PerRunLossRule(loss_rule, runner, loss_rule_key)
        observers.append(lambda losses: per_run.step(losses, rec.diverged))
    if scheduler is not None:
        observers.append(_make_scheduler_step(scheduler(runner.opt), runner.k))
    return observers


def _prepare(
    landscape: Landscape | str, optimizer: OptimizerSpec, starts: Any, steps: int, lr: Any,
    hyper: Mapping[str, Any] | None, bound: float | None, dtype: torch.dtype | None,
    kernel: bool | None,
) -> tuple[Landscape, Tensor, _Batched | _Groups, Tensor | None]:  # fmt: skip
    """:func:`run`'s arguments checked: the landscape, the ``(K, d)`` starts, the runner of
    the ``K`` runs and the learning rates as a ``(K,)`` tensor (None unless numbers)."""
    f = _resolve_landscape(landscape)
    kind, spec = _resolve_optimizer(optimizer)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if bound is not None:
        _check_positive_values("bound", bound)
    x0 = _starts_tensor(f, starts, dtype)
    k, all_hyper, lr_tensor = _per_run_hyper(lr, hyper, x0.dtype, x0.shape[0])
    x0 = x0.expand(k, f.dim).clone()
    _check_starts(f, x0, bound)
    if kernel is not None and not isinstance(kernel, bool):
        raise ValueError(f"kernel must be None, True or False, got {kernel!r}")
    runner: _Batched | _Groups
    if kind == "torch" or _couples_rows(kind, spec, x0, all_hyper):
        runner = _Groups(spec, x0, all_hyper, kind=kind)
    else:
        runner = _Batched(kind, spec, x0, all_hyper)
    return f, x0, runner, lr_tensor


def stacks_runs(optimizer: OptimizerSpec) -> bool:
    """True when :func:`run` advances K runs of ``optimizer`` as one stacked (K, d) tensor
    (one step for all: an elementwise chain); False when it needs a param group per run (a
    rule that reads the whole tensor, such as Muon, Adafactor, Shampoo, SOAP, global-norm
    clipping, or a torch.optim class), which costs a Python loop over the runs."""
    kind, spec = _resolve_optimizer(optimizer)
    if kind == "torch":
        return False
    return not _couples_rows(kind, spec, torch.zeros(2, 2, dtype=torch.float64), {})


def _couples_rows(kind: str, spec: Any, x0: Tensor, hyper: dict[str, Any]) -> bool:
    """Whether K > 1 runs stacked as the rows of one tensor would step as one matrix: the
    optimizer's chain is not elementwise (its update reads the whole tensor). Probed on one
    run's parameter with one run's hyperparameters (warnings are the real run's to give)."""
    if x0.shape[0] == 1:
        return False
    one = {k: float(v[0]) if isinstance(v, Tensor) and v.ndim == 1 else v for k, v in hyper.items()}
    p = x0[:1].clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = spec([p], **one) if kind == "descentlab" else optim.Optimizer([p], spec, **one)
    return not getattr(probe.rule, "elementwise", True)


def _kernel_trajectories(
    f: Landscape, runner: _Batched | _Groups, x0: Tensor, steps: int, bound: float | None,
    lr_tensor: Tensor | None, label: str, plain: bool, insist: bool | None,
) -> Trajectories | None:  # fmt: skip
    """All steps in one compiled call, or None where no kernel applies (``plain``: no
    scheduler and no loss rule); ValueError then if ``insist``."""
    done = None
    if plain and isinstance(runner, _Batched):
        done = kernels.run_kernel(f, runner.opt, x0, steps, bound)
    if done is None:
        if insist:
            raise ValueError(
                f"kernel=True: no compiled trajectory kernel for {label!r} on landscape "
                f"{f.name!r} with these options (see descentlab.problems.kernels)"
            )
        return None
    path_buf, loss_buf, diverged_at = done
    return Trajectories(
        paths=path_buf.transpose(0, 1),
        losses=loss_buf.T,
        diverged=diverged_at >= 0,
        diverged_at=diverged_at,
        lr=lr_tensor,
        landscape=f.name,
        optimizer=label,
        batched=True,
        kernel=True,
    )


def run(
    landscape: Landscape | str,
    optimizer: OptimizerSpec,
    starts: Any,
    steps: int,
    lr: Any = None,
    *,
    hyper: Mapping[str, Any] | None = None,
    bound: float | None = None,
    scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
    loss_rule: Any = None,
    loss_rule_key: str = "lr",
    seed: int = 0,
    dtype: torch.dtype | None = None,
    kernel: bool | None = None,
) -> Trajectories:
    """Run ``K`` optimisations of ``landscape`` at once (one per start and/or per
    hyperparameter value; one start or value is shared) and record every iterate.

    Args:
        landscape: a :class:`~descentlab.problems.landscapes.Landscape` or its name.
        optimizer: a name from :data:`descentlab.optim.NAMES`, a descentlab optimizer class,
            an update rule or a ``torch.optim.Optimizer`` class (one param group per run).
        starts: ``(d,)`` or ``(K, d)`` starting points.
        steps: number of optimizer steps ``T`` (> 0).
        lr: learning rate: a number, ``K`` numbers (one per run), a schedule (callable
            ``step -> value``) or ``None`` for the optimizer's default.
        hyper: other constructor arguments / hyperparameters (``momentum=0.9``,
            ``lookahead=True``, ``betas=(0.9, 0.999)``); a list or 1-D tensor of ``K``
            numbers gives one value per run (tuples are passed through as they are).
        bound: a run diverges when ``max_i |x_i| > bound`` (besides inf/NaN); ``None``
            checks only for non-finite values.
        scheduler: ``optimizer -> scheduler`` factory (a ``Scheduler`` or a torch
            ``LRScheduler``), stepped after each step with the losses at the new point; its
            loss rule makes *one* decision for all runs.
        loss_rule: a loss rule (``schedules.bold_driver(...)``) copied once per run: run
            ``k``'s ``loss_rule_key`` follows run ``k``'s own losses.
        loss_rule_key: the hyperparameter the loss rule drives (default ``"lr"``).
        seed: seed of the gradient noise of a stochastic landscape.
        dtype: floating dtype of the runs (default: that of floating ``starts``, or torch's).
        kernel: run all ``T`` steps in one compiled call where it applies (``None``);
            ``False`` always steps in Python; ``True`` insists (ValueError where it cannot).

    Returns:
        :class:`Trajectories`: ``paths`` ``(K, T + 1, d)`` (the start first), ``losses``
        ``(K, T + 1)``, ``diverged`` and ``diverged_at``, ``lr`` per run.

    Writes:
        The trajectory kernel compiled on its first use, in :func:`descentlab._native.cache_dir`.

    Raises:
        KeyError: unknown landscape or optimizer name (the message lists the valid names).
        ValueError: a bad start, ``steps``, ``lr`` or ``bound``; mismatched numbers of runs.

    Example:
        >>> import torch
        >>> from descentlab.problems.trajectories import run
        >>> tr = run("rosenbrock", "adam", starts=torch.tensor([-1.5, 2.0]), steps=100,
        ...          lr=[0.01, 0.05])
        >>> tr.paths.shape, tr.losses.shape
        (torch.Size([2, 101, 2]), torch.Size([2, 101]))
        >>> tr.diverged.tolist(), bool((tr.losses[:, -1] < tr.losses[:, 0]).all())
        ([False, False], True)
        >>> run("rosenbrock", "adam", starts=[0.0, 0.0, 0.0], steps=10)
        Traceback (most recent call last):
        ValueError: starts must have shape (2,) or (K, 2) for landscape 'rosenbrock' ...
    """
    f, x0, runner, lr_tensor = _prepare(landscape, optimizer, starts, steps, lr, hyper, bound,
                                        dtype, kernel)  # fmt: skip
    label = optimizer_label(optimizer)
    if kernel is not False:
        plain = scheduler is None and loss_rule is None
        done = _kernel_trajectories(f, runner, x0, steps, bound, lr_tensor, label, plain, kernel)
        if done is not None:
            return done
    rec = _Recorder(x0, steps, bound)
    _step_by_step(f, runner, rec, steps, _observers(runner, rec, scheduler, loss_rule,
                                                   loss_rule_key), seed)  # fmt: skip
    return rec.trajectories(f.name, label, lr_tensor, runner.batched)


# --------------------------------------------------------------------------------------------
# races: several optimizers from one start


def races(
    landscape: Landscape | str,
    optimizers: Sequence[str],
    *,
    lr: float | Sequence[float] | None = None,
    steps: int = 150,
    start: Sequence[float] | None = None,
    hyper: Mapping[str, Mapping[str, Any]] | None = None,
    bound: float | None = None,
) -> list[Race]:
    """Run each optimizer once from the same start (what the race figures draw).

    Args:
        landscape: a landscape or its name.
        optimizers: optimizer names (:data:`descentlab.optim.NAMES`).
        lr: one learning rate for all, one per optimizer, or ``None`` for :func:`default_lr`.
        steps: number of steps (> 0).
        start: starting point (default: the landscape's demonstration start).
        hyper: per-optimizer extra hyperparameters, e.g. ``{"momentum": {"momentum": 0.8}}``.
        bound: divergence box (default: 100 times the landscape's domain).

    Returns:
        One :class:`Race` per optimizer, in order: its ``name``, ``lr``, ``label`` and
        trajectory ``traj`` (:class:`Trajectories` of one run).

    Writes:
        Nothing (``descentlab landscape`` draws the races into a figure).

    Raises:
        KeyError: unknown landscape or optimizer name (the message lists the valid names).
        ValueError: no optimizer, ``steps <= 0``, a learning rate ``<= 0``, neither one
            learning rate nor one per optimizer, a start of the wrong dimension.

    Example:
        >>> from descentlab.problems.trajectories import races
        >>> found = races("rosenbrock", ["sgd", "momentum", "adam"], steps=50)
        >>> [r.label for r in found]
        ['SGD (lr=0.001)', 'Momentum (lr=0.0001)', 'Adam (lr=0.08)']
        >>> found[0].traj.paths.shape
        torch.Size([1, 51, 2])
        >>> races("rosenbrock", ["sgd"], steps=0)
        Traceback (most recent call last):
        ValueError: steps must be a positive integer, got 0
    """
    f = get_landscape(landscape) if isinstance(landscape, str) else landscape
    names = [str(n).strip().lower() for n in optimizers]
    if not names:
        raise ValueError("optimizers must name at least one optimizer, got none")
    for n in names:
        optim.get(n)  # KeyError listing the valid names
    if lr is None:
        lrs = [default_lr(f, n) for n in names]
    elif isinstance(lr, int | float):
        lrs = [float(lr)] * len(names)
    else:
        lrs = [float(v) for v in lr]
        if len(lrs) == 1:
            lrs = lrs * len(names)
        if len(lrs) != len(names):
            raise ValueError(
                f"lr must give one value or one per optimizer ({len(names)}), got {len(lrs)}"
            )
    start_t = torch.tensor(f.start if start is None else list(start), dtype=torch.float64)
    if bound is None:
        bound = 100 * max(max(abs(lo), abs(hi)) for lo, hi in f.domain)
    races = []
    for name, rate in zip(names, lrs, strict=True):
        tr = run(f, name, start_t, steps, lr=rate, hyper=(hyper or {}).get(name), bound=bound)
        races.append(Race(name, rate, tr))
    return races
