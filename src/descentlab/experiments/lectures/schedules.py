r"""Learning-rate schedules (seeds 000 and 003): fixed lr vs step, exponential, 1/t and cosine.

Seed 000: with a fixed learning rate SGD reaches the optimum's neighbourhood and then hovers
("진동하고 수렴하지 않습니다"): the mini-batch noise keeps it at a floor that grows with the
rate; a decaying rate with :math:`\sum_t \eta_t = \infty,\ \sum_t \eta_t^2 < \infty` (Robbins
& Monro) converges, and cosine annealing is the popular choice. Seed 003 (cs231n) lists step
decay, exponential decay :math:`\alpha_0 e^{-kt}` and 1/t decay :math:`\alpha_0/(1+kt)`.

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
``step``        halve every ``T // 5`` steps (seed 003: "decay by half every few epochs")
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

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from descentlab.experiments.lectures._common import (
    ExperimentResult,
    check_float,
    check_int,
    mean_std,
    resolve,
    timer,
)

__all__ = ["DEFAULTS", "QUICK", "SCHEDULES", "run", "schedule_specs"]

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
    "quad_runs": 200,
    "quad_sigma": 1.0,
    "quad_dim": 2,
}

#: The small setting of the tests.
QUICK: dict[str, Any] = {"model": "mlp", "steps": 300, "seeds": 1, "eval_every": 15,
                         "quad_runs": 100, "quad_steps": 400}  # fmt: skip


def schedule_specs(steps: int, final_ratio: float) -> dict[str, str | None]:
    """The schedule of each name of :data:`SCHEDULES` for a run of ``steps`` steps, as the
    ``RunConfig.schedule`` spec strings (None: constant).

    Example:
        >>> schedule_specs(1000, 0.01)["1/t"]
        'inverse_time(k=0.01)'
    """
    steps = check_int("steps", steps)
    r = check_float("final_ratio", final_ratio, high=1.0, high_open=True)
    return {
        "constant": None,
        "step": f"step_decay(every={max(1, steps // 5)}, drop=0.5)",
        "exponential": f"exp_decay(k={math.log(1.0 / r) / steps:.6g})",
        "1/t": f"inverse_time(k={10.0 / steps:.6g})",
        "cosine": f"cosine(T_max={steps})",
    }


def _schedule_values(spec: str | None, lr: float, steps: int) -> np.ndarray:
    from descentlab.engine.config import build_schedule

    if spec is None:
        return np.full(steps, lr)
    sched, _ = build_schedule(spec, total_steps=steps)
    return np.asarray([lr * sched(t) for t in range(steps)])


def _noisy_quadratic(
    names: Sequence[str], specs: dict[str, str | None], o: dict[str, Any], seed: int
) -> dict[str, Any]:
    from descentlab.engine.config import build_schedule
    from descentlab.problems import landscapes, trajectories

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


def run(
    *,
    quick: bool = False,
    seed: int = 0,
    problem: str | None = None,
    model: str | None = None,
    optimizer: str | None = None,
    lr: float | None = None,
    momentum: float | None = None,
    batch_size: int | None = None,
    steps: int | None = None,
    eval_every: int | None = None,
    seeds: int | None = None,
    final_ratio: float | None = None,
    schedules: Sequence[str] | None = None,
    quad_lr: float | None = None,
    quad_steps: int | None = None,
    quad_runs: int | None = None,
    quad_sigma: float | None = None,
    quad_dim: int | None = None,
    store: Any = None,
    backend: str = "local",
    address: str | None = None,
) -> ExperimentResult:
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
        store: a :class:`descentlab.store.Store` to record the runs in.
        backend, address: where the runs train: here (``"local"``) or as Ray tasks
            (``"ray"``; ``address`` joins a cluster), see
            :func:`~descentlab.experiments.ray_backend.train_all`.

    Returns:
        an :class:`ExperimentResult`, one row per schedule.

    Example:
        >>> r = run(quick=True, schedules=["cosine"])  # doctest: +SKIP
        >>> cosine, floor = r.row(schedule="cosine"), r.data["quadratic"]["floor"]  # doctest: +SKIP
        >>> cosine["quad_final_loss"] < floor  # doctest: +SKIP
        True
    """
    import inspect

    from descentlab import optim
    from descentlab.engine.config import RunConfig
    from descentlab.experiments.ray_backend import check_backend, train_all
    from descentlab.store import provenance

    o = resolve(dict(locals()), DEFAULTS, QUICK, quick)
    seed = check_int("seed", seed, 0)
    check_backend(backend, address)
    n_steps = check_int("steps", o["steps"], 5)
    check_float("lr", o["lr"])
    check_int("batch_size", o["batch_size"])
    check_int("eval_every", o["eval_every"])
    n_seeds = check_int("seeds", o["seeds"])
    ratio = check_float("final_ratio", o["final_ratio"], high=1.0, high_open=True)
    chosen = [o["schedules"]] if isinstance(o["schedules"], str) else list(o["schedules"])
    unknown = [s for s in chosen if s not in SCHEDULES]
    if unknown:
        raise KeyError(f"unknown schedule(s) {unknown}; valid: {', '.join(SCHEDULES)}")
    chosen = [s for s in SCHEDULES if s in chosen or s == "constant"]
    check_float("quad_lr", o["quad_lr"], high=2.0, high_open=True)
    check_int("quad_steps", o["quad_steps"], 5)
    check_int("quad_runs", o["quad_runs"])
    check_float("quad_sigma", o["quad_sigma"])
    check_int("quad_dim", o["quad_dim"])
    opt_cls = optim.get(o["optimizer"])
    hyper: dict[str, Any] = {"lr": float(o["lr"])}
    if o["momentum"] is not None and "momentum" in inspect.signature(opt_cls).parameters:
        hyper["momentum"] = check_float("momentum", o["momentum"], low=0.0, low_open=False,
                                        high=1.0, high_open=True)  # fmt: skip
    specs = schedule_specs(n_steps, ratio)

    per: dict[str, dict[str, list[float]]] = {s: {} for s in chosen}
    curves: dict[str, list[dict[str, Any]]] = {s: [] for s in chosen}
    with timer() as elapsed:
        jobs = [(name, s) for name in chosen for s in range(seed, seed + n_seeds)]
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
        quad = _noisy_quadratic(chosen, specs, o, seed)
        seconds = elapsed()

    rows = []
    for name in chosen:
        rec = per[name]
        lrs = _schedule_values(specs[name], float(o["lr"]), n_steps)
        q = quad[name]
        rows.append({
            "schedule": name, "spec": specs[name] or "constant",
            "lr_end_ratio": float(lrs[-1] / lrs[0]), "mean_lr_ratio": float(lrs.mean() / lrs[0]),
            "train_loss": mean_std(rec["train/loss"])[0],
            "val_acc": mean_std(rec["val/accuracy"])[0],
            "test_acc": mean_std(rec["test/accuracy"])[0],
            "test_acc_std": mean_std(rec["test/accuracy"])[1],
            "late_val_loss_std": mean_std(rec["late_std"])[0],
            "quad_final_loss": float(q[-1]),
        })  # fmt: skip
    const = rows[0]
    decays = rows[1:]
    floor = float(quad["floor"])
    tail = max(1, int(o["quad_steps"]) // 5)
    tail_mean = float(np.mean(quad["constant"][-tail:]))
    checks = {
        f"constant-lr SGD on the noisy quadratic hovers at its theoretical floor {floor:.3g} "
        f"(measured {tail_mean:.3g} over the last {tail} steps, within 20 %)": (
            abs(tail_mean / floor - 1) < 0.2
        ),
    }
    measured = {
        next(iter(checks)): {"measured": f"{tail_mean:.3g}", "expected": f"{floor:.3g} ± 20 %"}
    }
    if decays:
        below = [r["schedule"] for r in decays if r["quad_final_loss"] < floor]
        key = f"every decay ends below the constant-lr floor ({len(below)} of {len(decays)})"
        checks[key] = len(below) == len(decays)
        measured[key] = {"measured": f"{len(below)} of {len(decays)}",
                         "expected": f"{len(decays)} of {len(decays)}"}  # fmt: skip
        quiet = [r["schedule"] for r in decays
                 if r["late_val_loss_std"] < const["late_val_loss_std"]]  # fmt: skip
        key = (
            f"the fixed lr keeps bouncing at the end of training on {o['problem']}: the decays' "
            f"validation loss fluctuates less over the last 20 % ({len(quiet)} of {len(decays)})"
        )
        checks[key] = len(quiet) == len(decays)
        measured[key] = {"measured": f"{len(quiet)} of {len(decays)} (constant's std "
                                     f"{const['late_val_loss_std']:.3g})",
                         "expected": f"{len(decays)} of {len(decays)}"}  # fmt: skip
        best = max(rows, key=lambda r: r["val_acc"])
        key = f"a decaying schedule has the best validation accuracy ({best['schedule']})"
        checks[key] = best["schedule"] != "constant"
        measured[key] = {"measured": f"{best['schedule']} ({best['val_acc']:.3f})",
                         "expected": "not constant"}  # fmt: skip
    notes = [
        f"{o['problem']} + {o['model']}, {o['optimizer']} ({', '.join(f'{k}={v:g}' for k, v in hyper.items())}), "  # noqa: E501
        f"batch {o['batch_size']}, {n_steps} steps, {n_seeds} seed(s), same initialisation for "
        "every schedule. `lr_end_ratio` and `mean_lr_ratio` are the last and the average "
        "learning rate relative to the initial one; `late_val_loss_std` is the standard "
        "deviation of the validation loss over the evaluations of the last 20 % of the run "
        "(how much the iterate still bounces); `quad_final_loss` is the mean loss of "
        f"{quad['settings']['runs']} SGD runs on the noisy quadratic (lr "
        f"{quad['settings']['lr']:g}, sigma {quad['settings']['sigma']:g}, d "
        f"{quad['settings']['dim']}) after {quad['settings']['steps']} steps.",
        "A fixed rate large enough to make fast progress early keeps bouncing at the end; the "
        "decays trade some early progress for a quiet finish. How much they gain depends on "
        "the area under the schedule (`mean_lr_ratio`): a decay that is too fast stops learning "
        "early (the finite-horizon face of the Robbins-Monro condition sum(lr) = infinity), "
        "one that is too slow ends as noisy as the fixed rate.",
    ]
    lr_curves = {name: _schedule_values(specs[name], float(o["lr"]), n_steps) for name in chosen}
    data = {"curves": curves, "per_seed": per, "lr": lr_curves, "quadratic": quad}
    config = {"quick": quick, "seed": seed, **o, "schedules": chosen}
    return ExperimentResult(
        name="schedules",
        title="Learning-rate schedules: fixed vs step, exponential, 1/t, cosine",
        columns=[
            "schedule",
            "spec",
            "lr_end_ratio",
            "mean_lr_ratio",
            "train_loss",
            "val_acc",
            "test_acc",
            "test_acc_std",
            "late_val_loss_std",
            "quad_final_loss",
        ],
        rows=rows,
        checks=checks,
        measured=measured,
        notes=notes,
        data=data,
        config=config,
        seconds=seconds,
        provenance=provenance(seed, experiment="schedules"),
    )
