r"""Learning-rate schedules (the optimization and momentum lectures): fixed lr vs step, exponential,
1/t and cosine.

The optimization lecture: with a fixed learning rate SGD reaches the optimum's neighbourhood and
then hovers ("진동하고 수렴하지 않습니다"): the mini-batch noise keeps it at a floor that grows
with the rate; a decaying rate with :math:`\sum_t \eta_t = \infty,\ \sum_t \eta_t^2 < \infty`
(Robbins & Monro) converges, and cosine annealing is the popular choice. The momentum lecture
(cs231n) lists step decay, exponential decay :math:`\alpha_0 e^{-kt}` and 1/t decay
:math:`\alpha_0/(1+kt)`.

Two views:

1. *A real problem* -- every schedule trains the same network (MNIST-1D, the paper's CNN) with
   SGD + momentum from the same start, through :func:`descentlab.engine.run.train`; learning
   curves and final train loss, validation and test accuracy.
2. *The noisy quadratic* -- :math:`f(x) = \tfrac h2 \|x\|^2` with gradient noise
   :math:`\sigma` (:func:`descentlab.problems.landscapes.noisy_quadratic`), ``runs`` SGD runs
   per schedule at once (:func:`descentlab.problems.trajectories.run`); the constant rate
   stalls at the floor :math:`d\eta\sigma^2 / (2(2 - \eta h))`
   (:func:`~descentlab.problems.landscapes.sgd_stationary_loss`), the decays go below it.

The schedules over a run of ``T`` steps (step 0 is the first update):

==============  ============================================================================
``constant``    :math:`\eta_0`
``step``        halve every ``T // 5`` steps (the momentum lecture: "decay by half every few
                epochs")
``exponential`` :math:`\eta_0 e^{-kt}`, :math:`k = \ln(1/r)/T` (ends at :math:`r\eta_0`)
``1/t``         :math:`\eta_0 / (1 + kt)`, :math:`k = 10/T` (halved at :math:`T/10`, ends at
                :math:`\eta_0/11`; its mean rate is close to the exponential's)
``cosine``      :math:`\eta_0 (1 + \cos(\pi t / T)) / 2` (ends at 0)
==============  ============================================================================

with :math:`r` = ``final_ratio``.

References:
    Robbins & Monro, "A stochastic approximation method", 1951. Loshchilov & Hutter, "SGDR",
    ICLR 2017, https://arxiv.org/abs/1608.03983. CS231n, "Neural networks part 3",
    https://cs231n.github.io/neural-networks-3/.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

from descentlab import constraints as cs
from descentlab import optim
from descentlab.book.experiments._common import (
    ExperimentResult,
    experiment,
    finish,
    mean_std,
    timer,
)
from descentlab.engine.config import RunConfig, build_schedule
from descentlab.experiments.runners import train_all
from descentlab.problems import landscapes, trajectories

__all__ = ["CONSTRAINTS", "DEFAULTS", "QUICK", "SCHEDULES", "run", "schedule_specs"]

#: The schedules compared, in table order.
SCHEDULES: tuple[str, ...] = ("constant", "step", "exponential", "1/t", "cosine")

#: The full setting.
DEFAULTS: dict[str, Any] = {
    "problem": "mnist1d",
    "model": "cnn",
    "optimizer": "momentum",
    "lr": 0.2,
    "momentum": 0.9,
    "batch_size": 100,
    "steps": 1000,
    "eval_every": 25,
    "seeds": 2,
    "final_ratio": 0.01,
    "schedules": list(SCHEDULES),
    "quad_lr": 0.5,
    "quad_steps": 2000,
    "quad_runs": 2000,
    "quad_sigma": 1.0,
    "quad_dim": 2,
}

#: The small setting of the tests.
QUICK: dict[str, Any] = {"model": "mlp", "steps": 300, "seeds": 1, "eval_every": 15,
                         "quad_steps": 400}  # fmt: skip


_RATIO = cs.Interval(Real, 0, 1, closed="neither")

#: What each option must be (``schedules`` are checked against :data:`SCHEDULES`,
#: ``momentum`` where the optimizer takes one).
CONSTRAINTS: dict[str, list[Any]] = {
    "steps": [cs.Interval(Integral, 5, None)],
    "lr": [cs.POSITIVE],
    "batch_size": [cs.POSITIVE_INT],
    "eval_every": [cs.POSITIVE_INT],
    "seeds": [cs.POSITIVE_INT],
    "final_ratio": [_RATIO],
    "quad_lr": [cs.Interval(Real, 0, 2, closed="neither")],
    "quad_steps": [cs.Interval(Integral, 5, None)],
    "quad_runs": [cs.POSITIVE_INT],
    "quad_sigma": [cs.POSITIVE],
    "quad_dim": [cs.POSITIVE_INT],
}


def schedule_specs(steps: int, final_ratio: float) -> dict[str, str | None]:
    """The schedule of each name of :data:`SCHEDULES` for a run of ``steps`` steps, as the
    ``RunConfig.schedule`` spec strings (None: constant).

    Example:
        >>> schedule_specs(1000, 0.01)["1/t"]
        'inverse_time_decay(k=0.01)'
    """
    steps = cs.check("steps", steps, cs.POSITIVE_INT)
    r = cs.check("final_ratio", final_ratio, _RATIO)
    return {
        "constant": None,
        "step": f"step(step_size={max(1, steps // 5)}, gamma=0.5)",
        "exponential": f"exponential(gamma={math.exp(-math.log(1.0 / r) / steps):.12g})",
        "1/t": f"inverse_time_decay(k={10.0 / steps:.6g})",
        "cosine": f"cosine(T_max={steps})",
    }


def _schedule_values(spec: str | None, lr: float, steps: int) -> np.ndarray:
    if spec is None:
        return np.full(steps, lr)
    sched, _ = build_schedule(spec, total_steps=steps)
    return np.asarray([lr * sched(t) for t in range(steps)])


def _noisy_quadratic(
    names: Sequence[str], specs: dict[str, str | None], o: dict[str, Any], seed: int
) -> dict[str, Any]:
    lr = float(o["quad_lr"])
    steps = int(o["quad_steps"])
    runs = int(o["quad_runs"])
    sigma = float(o["quad_sigma"])
    dim = int(o["quad_dim"])
    f = landscapes.get("noisy_quadratic", h=1.0, sigma=sigma, dim=dim)
    start = torch.full((runs, dim), 3.0, dtype=torch.float64)
    qspecs = schedule_specs(steps, float(o["final_ratio"]))
    out: dict[str, Any] = {"t": np.arange(steps + 1)}
    for name in names:
        spec = qspecs[name]
        if spec is None:
            lr_arg: Any = lr
        else:
            sched, _ = build_schedule(spec, total_steps=steps)
            lr_arg = _Scaled(sched, lr)
        tr = trajectories.run(f, "sgd", start, steps, lr=lr_arg, seed=seed)
        out[name] = tr.losses.mean(0).numpy()
    out["floor"] = landscapes.sgd_stationary_loss(lr, h=1.0, sigma=sigma, dim=dim)
    out["settings"] = {"lr": lr, "steps": steps, "runs": runs, "sigma": sigma, "dim": dim}
    return out


class _Scaled:
    """``step -> base * factor(step)`` (a relative schedule made absolute)."""

    def __init__(self, schedule: Any, base: float) -> None:
        self.schedule, self.base = schedule, base

    def __call__(self, step: int) -> float:
        return self.base * float(self.schedule(step))


@experiment(DEFAULTS, QUICK, CONSTRAINTS, trains=True)
def run(
    o: dict[str, Any], v: dict[str, Any], *, quick: bool, seed: int, store: Any = None,
    backend: str = "local", address: str | None = None,
) -> ExperimentResult:  # fmt: skip
    """Fixed lr vs step, exponential, 1/t and cosine decay on a real problem and on the noisy
    quadratic.

    Args:
        quick: the small preset.
        seed: first seed.
        problem, model: the real problem (``mnist1d`` + ``cnn``).
        optimizer, lr, momentum: the optimizer and its initial rate (``momentum`` is passed
            to optimizers that take one).
        batch_size, steps, eval_every, seeds: the runs.
        final_ratio: ``r``, where the exponential decay ends (``r * lr``).
        schedules: a subset of :data:`SCHEDULES` (``constant`` is always run).
        quad_lr, quad_steps, quad_runs, quad_sigma, quad_dim: the noisy quadratic.
        store, backend, address: as :data:`~descentlab.book.experiments._common.TRAINING_OPTIONS`.

    Returns:
        an :class:`ExperimentResult`, one row per schedule.

    Example:
        >>> r = run(quick=True, schedules=["cosine"])  # doctest: +SKIP
        >>> cosine, floor = r.row(schedule="cosine"), r.data["quadratic"]["floor"]  # doctest: +SKIP
        >>> cosine["quad_final_loss"] < floor  # doctest: +SKIP
        True
    """
    chosen, hyper = _check_options(o, v)
    specs = schedule_specs(o["steps"], o["final_ratio"])
    with timer() as elapsed:
        per, curves = _train_schedules(o, chosen, hyper, specs, seed, store, backend, address)
        quad = _noisy_quadratic(chosen, specs, o, seed)
        seconds = elapsed()
    lr_curves = {name: _schedule_values(specs[name], float(o["lr"]), o["steps"]) for name in chosen}
    res = ExperimentResult(
        name="schedules",
        title="Learning-rate schedules: fixed vs step, exponential, 1/t, cosine",
        columns=list(_COLUMNS),
        rows=[_row(name, per[name], specs[name], lr_curves[name], quad[name]) for name in chosen],
    )
    _check_schedules(res, quad, o)
    res.data = {"curves": curves, "per_seed": per, "lr": lr_curves, "quadratic": quad}
    o["schedules"] = chosen
    notes = _notes(o, hyper, quad["settings"])
    return finish(res, quick=quick, seed=seed, options=o, seconds=seconds, notes=notes)


#: The table's columns.
_COLUMNS = ("schedule", "spec", "lr_end_ratio", "mean_lr_ratio", "train_loss", "val_acc",
            "test_acc", "test_acc_std", "late_val_loss_std", "quad_final_loss")  # fmt: skip


def _check_options(o: dict[str, Any], v: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Check the options (integers and ratios converted in place); the schedules to run, in
    table order, ``constant`` first, and the optimizer's hyperparameters."""
    o.update(v)
    chosen = [o["schedules"]] if isinstance(o["schedules"], str) else list(o["schedules"])
    unknown = [s for s in chosen if s not in SCHEDULES]
    if unknown:
        raise KeyError(f"unknown schedule(s) {unknown}; valid: {', '.join(SCHEDULES)}")
    opt_cls = optim.get(o["optimizer"])
    hyper: dict[str, Any] = {"lr": float(o["lr"])}
    if o["momentum"] is not None and "momentum" in inspect.signature(opt_cls).parameters:
        unit = cs.Interval(Real, 0, 1, closed="left")
        hyper["momentum"] = cs.check("momentum", o["momentum"], unit, owner="schedules")
    return [s for s in SCHEDULES if s in chosen or s == "constant"], hyper


def _train_schedules(
    o: dict[str, Any], chosen: list[str], hyper: dict[str, Any], specs: dict[str, str | None],
    seed: int, store: Any, backend: str, address: str | None,
) -> tuple[dict[str, dict[str, list[float]]], dict[str, list[dict[str, Any]]]]:  # fmt: skip
    """Train every schedule with every seed (recorded in ``store``); per schedule the summary
    numbers of each seed (with the spread of the validation loss over the last 20 % of the
    run, ``late_std``) and each run's learning curves."""
    n_steps = o["steps"]
    jobs = [(name, s) for name in chosen for s in range(seed, seed + o["seeds"])]
    configs = [
        RunConfig(
            problem=o["problem"], model=o["model"], optimizer=o["optimizer"],
            hyper=hyper, schedule={} if specs[name] is None else {"lr": specs[name]},
            batch_size=int(o["batch_size"]), steps=n_steps,
            eval_every=int(o["eval_every"]), seed=s, name=f"schedules-{name}-seed{s}",
        )
        for name, s in jobs
    ]  # fmt: skip
    results = train_all(configs, store, backend=backend, address=address)
    per: dict[str, dict[str, list[float]]] = {s: {} for s in chosen}
    curves: dict[str, list[dict[str, Any]]] = {s: [] for s in chosen}
    for (name, _), res in zip(jobs, results, strict=True):
        for key in ("train/loss", "val/accuracy", "val/loss", "test/accuracy"):
            per[name].setdefault(key, []).append(float(res.summary.get(key, math.nan)))
        per[name].setdefault("diverged", []).append(float(res.status == "diverged"))
        vl = res.metrics["val/loss"]
        late = vl.values[vl.steps > 0.8 * n_steps]
        per[name].setdefault("late_std", []).append(
            float(np.std(late)) if late.size > 1 else math.nan
        )
        curves[name].append({
            key: {"steps": res.metrics[key].steps, "values": res.metrics[key].values}
            for key in ("train/loss", "val/accuracy", "val/loss")
        })  # fmt: skip
    return per, curves


def _row(
    name: str, rec: dict[str, list[float]], spec: str | None, lrs: np.ndarray, q: np.ndarray
) -> dict[str, Any]:
    """One schedule's table row: means over the seeds, the rate's shape, the quadratic."""
    return {
        "schedule": name, "spec": spec or "constant",
        "lr_end_ratio": float(lrs[-1] / lrs[0]), "mean_lr_ratio": float(lrs.mean() / lrs[0]),
        "train_loss": mean_std(rec["train/loss"])[0],
        "val_acc": mean_std(rec["val/accuracy"])[0],
        "test_acc": mean_std(rec["test/accuracy"])[0],
        "test_acc_std": mean_std(rec["test/accuracy"])[1],
        "late_val_loss_std": mean_std(rec["late_std"])[0],
        "quad_final_loss": float(q[-1]),
    }  # fmt: skip


def _check_schedules(res: ExperimentResult, quad: dict[str, Any], o: dict[str, Any]) -> None:
    """The lectures' predictions: the fixed rate hovers at the noisy quadratic's floor, every
    decay ends below it, the decays bounce less at the end and one of them is best."""
    const, decays = res.rows[0], res.rows[1:]
    floor = float(quad["floor"])
    tail = max(1, int(o["quad_steps"]) // 5)
    tail_mean = float(np.mean(quad["constant"][-tail:]))
    # 2,000 runs: the tail mean's standard error is about 0.25 % at 400 steps, so 1 % is
    # four of them -- and tighter than any plausible mistake in the formula (a wrong factor
    # of the (2 - ηh) term moves it by 10 % or more at ηh = 0.5)
    res.check(
        f"constant-lr SGD on the noisy quadratic hovers at its theoretical floor {floor:.4g} "
        f"(measured {tail_mean:.4g} over the last {tail} steps of {o['quad_runs']} runs, "
        "within 1 %)",
        abs(tail_mean / floor - 1) < 0.01,
        f"{tail_mean:.4g} ({100 * (tail_mean / floor - 1):+.2f} %)",
        f"{floor:.4g} ± 1 %",
    )
    if not decays:
        return
    n = len(decays)
    below = [r["schedule"] for r in decays if r["quad_final_loss"] < floor]
    res.check(f"every decay ends below the constant-lr floor ({len(below)} of {n})",
              len(below) == n, f"{len(below)} of {n}", f"{n} of {n}")  # fmt: skip
    quiet = [r["schedule"] for r in decays
             if r["late_val_loss_std"] < const["late_val_loss_std"]]  # fmt: skip
    res.check(
        f"the fixed lr keeps bouncing at the end of training on {o['problem']}: the decays' "
        f"validation loss fluctuates less over the last 20 % ({len(quiet)} of {n})",
        len(quiet) == n,
        f"{len(quiet)} of {n} (constant's std {const['late_val_loss_std']:.3g})",
        f"{n} of {n}",
    )
    best = max(res.rows, key=lambda r: r["val_acc"])
    res.check(
        f"a decaying schedule has the best validation accuracy ({best['schedule']})",
        best["schedule"] != "constant",
        f"{best['schedule']} ({best['val_acc']:.3f})",
        "not constant",
    )


def _notes(o: dict[str, Any], hyper: dict[str, Any], quad: dict[str, Any]) -> list[str]:
    rates = ", ".join(f"{k}={v:g}" for k, v in hyper.items())
    return [
        f"{o['problem']} + {o['model']}, {o['optimizer']} ({rates}), "
        f"batch {o['batch_size']}, {o['steps']} steps, {o['seeds']} seed(s), same initialisation "
        "for every schedule. `lr_end_ratio` and `mean_lr_ratio` are the last and the average "
        "learning rate relative to the initial one; `late_val_loss_std` is the standard "
        "deviation of the validation loss over the evaluations of the last 20 % of the run "
        "(how much the iterate still bounces); `quad_final_loss` is the mean loss of "
        f"{quad['runs']} SGD runs on the noisy quadratic (lr {quad['lr']:g}, sigma "
        f"{quad['sigma']:g}, d {quad['dim']}) after {quad['steps']} steps.",
        "A fixed rate large enough to make fast progress early keeps bouncing at the end; the "
        "decays trade some early progress for a quiet finish. How much they gain depends on "
        "the area under the schedule (`mean_lr_ratio`): a decay that is too fast stops learning "
        "early (the finite-horizon face of the Robbins-Monro condition sum(lr) = infinity), "
        "one that is too slow ends as noisy as the fixed rate.",
    ]
