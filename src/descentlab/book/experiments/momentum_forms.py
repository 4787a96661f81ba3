r"""Momentum with the learning rate inside or outside the buffer (the lectures disagree).

Two ways to write heavy-ball momentum appear in the lectures:

- *torch form* (the regularization and CNN lecture, cs231n in the momentum lecture;
  ``torch.optim.SGD``): the buffer sums gradients and the rate multiplies it,
  :math:`b_t = \mu b_{t-1} + g_t,\ \theta_{t+1} = \theta_t - \eta_t b_t`;
- *velocity form* (the optimization, derivatives, momentum (eq. 5.12) and PyTorch losses lectures):
  the rate is inside, :math:`v_t = \mu v_{t-1} - \eta_t g_t,\ \theta_{t+1} = \theta_t + v_t`.

With a constant rate :math:`v_t = -\eta b_t` and the iterates are the same. When the rate
changes from :math:`\eta` to :math:`\gamma\eta` at step :math:`s`, the torch form rescales the
whole buffer at once, while the velocity form keeps the old momentum at the old rate: with the
same gradients, :math:`v_t + \gamma\eta b_t = \mu (v_{t-1} + \gamma\eta b_{t-1})`, so after
:math:`k` steps at the new rate

.. math::
    \theta^{vel}_{s+k} - \theta^{torch}_{s+k}
    = -(1-\gamma)\,\eta\, b_{s-1}\, \frac{\mu(1-\mu^k)}{1-\mu}
    = (1-\gamma)\,\Delta_{s-1}\,\frac{\mu(1-\mu^k)}{1-\mu},

where :math:`\Delta_{s-1} = -\eta b_{s-1}` is the last update before the decay. The velocity
form travels :math:`(1-\gamma)\mu/(1-\mu)` old-sized steps further (8.1 for
:math:`\mu = 0.9,\ \gamma = 0.1`; 89 for :math:`\mu = 0.99`), over about :math:`1/(1-\mu)`
steps. This is exact for a linear loss and the first-order effect in general
(:func:`predicted_gap`).

The experiment shows it twice: on the ravine :math:`0.05 x^2 + 5 y^2` (2-D paths), and on a
network (MNIST-1D MLP, float64) trained by both forms *in lockstep* -- the same initial
weights, the same mini-batches, the same schedule -- recording the largest parameter
difference after every step. A direct loop is needed (not :func:`descentlab.engine.run.train`)
because the two runs must advance together and be compared step by step.

When it matters: a sudden drop of the rate with high momentum (step decay, ReduceLROnPlateau);
much less for smooth per-step schedules (cosine), where the velocity form only lags the
schedule by about :math:`1/(1-\mu)` steps. With warm-up (a rising rate) the velocity form
lags the other way.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from descentlab import constraints as cs
from descentlab import optim, schedules
from descentlab.book.experiments._common import (
    ExperimentResult,
    experiment,
    finish,
    flat_params,
    timer,
)
from descentlab.problems import data as datasets
from descentlab.problems import landscapes, trajectories
from descentlab.problems import models as model_zoo

__all__ = ["CONSTRAINTS", "DEFAULTS", "QUICK", "lockstep", "predicted_gap", "run"]

#: The full setting.
DEFAULTS: dict[str, Any] = {
    "problem": "mnist1d",
    "hidden": 100,
    "momenta": [0.9, 0.99],
    "effective_lr": 0.5,
    "gamma": 0.1,
    "batch_size": 100,
    "steps": 600,
    "eval_every": 20,
    "ravine_steps": 120,
    "ravine_lr": 0.02,
}

#: The small setting of the tests.
QUICK: dict[str, Any] = {"hidden": 32, "steps": 160, "eval_every": 40, "ravine_steps": 60}


def predicted_gap(
    last_update: Tensor | np.ndarray, momentum: float, gamma: float, k: int | np.ndarray
) -> np.ndarray:
    r"""First-order prediction of :math:`\theta^{vel} - \theta^{torch}` after ``k`` steps at the
    decayed rate: :math:`(1-\gamma)\,\Delta_{s-1}\,\mu(1-\mu^k)/(1-\mu)` (exact for a linear
    loss).

    Args:
        last_update: :math:`\Delta_{s-1}`, the (shared) update of the last step before the
            decay, any shape.
        momentum: :math:`\mu \in [0, 1)`.
        gamma: the decay factor (new rate / old rate).
        k: steps taken at the new rate (>= 0), scalar or array.

    Returns:
        the predicted difference; with an array ``k`` the leading axis runs over ``k``.

    Example:
        >>> round(float(predicted_gap(np.array([1.0]), 0.9, 0.1, 1000)[0]), 9)  # 0.9 * 0.9 / 0.1
        8.1
    """
    mu = cs.check("momentum", momentum, cs.Interval(Real, 0, 1, closed="left"))
    g = cs.check("gamma", gamma, cs.NONNEGATIVE)
    d = np.asarray(last_update.detach() if isinstance(last_update, Tensor) else last_update,
                   dtype=np.float64)  # fmt: skip
    ks = np.asarray(k, dtype=np.float64)
    factor = (1.0 - g) * mu * (1.0 - mu**ks) / (1.0 - mu)
    return np.multiply.outer(factor, d) if ks.ndim else factor * d


def lockstep(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    momentum: float,
    lr: float,
    schedule: Any,
    steps: int,
    batch_size: int,
    eval_every: int,
    seed: int = 0,
    x_val: Tensor | None = None,
    y_val: Tensor | None = None,
) -> dict[str, Any]:
    """Train two copies of ``model`` with ``Momentum(form="torch")`` and
    ``Momentum(form="velocity")`` on identical mini-batches under the same lr ``schedule``.

    Args:
        model: the initial model (copied; not modified).
        x, y: training data (classification).
        momentum: :math:`\\mu`.
        lr: initial rate (the schedule is relative to it).
        schedule: a :mod:`descentlab.schedules` schedule for ``lr`` (None: constant).
        steps: updates.
        batch_size: examples per update (a fresh permutation per epoch).
        eval_every: steps between full-batch evaluations.
        seed: seed of the batch order.
        x_val, y_val: optional validation data.

    Returns:
        ``{"max_diff"``: ``(steps + 1,)`` max |theta_torch - theta_velocity| after each update
        (index 0: the start), ``"update_norm"``: ``{"torch", "velocity"}`` -> ``(steps,)``
        norms of the updates, ``"lrs"``: ``(steps,)`` the rate of each update,
        ``"torch_updates"``: the torch form's update vectors, ``"eval"``: ``{"steps",
        "train_loss", "val_acc"}`` (full-batch, per form), ``"models"``: the two trained
        models ``}``.

    Example:
        >>> from descentlab import schedules
        >>> m = nn.Linear(4, 3).double()
        >>> x, y = torch.randn(32, 4, dtype=torch.float64), torch.arange(32) % 3
        >>> out = lockstep(m, x, y, momentum=0.9, lr=0.1, batch_size=8, eval_every=5,
        ...                schedule=schedules.multistep([10], gamma=0.1), steps=20)
        >>> bool(out["max_diff"][:11].max() < 1e-12 < out["max_diff"][11])
        True
    """
    models = {"torch": copy.deepcopy(model), "velocity": copy.deepcopy(model)}
    opts = {f: optim.Momentum(models[f].parameters(), lr=lr, momentum=momentum, form=f)
            for f in models}  # fmt: skip
    scheds = {f: (schedules.Scheduler(opts[f], {"lr": schedule}) if schedule is not None
                  else None) for f in models}  # fmt: skip
    batches = _batches(x, y, batch_size, steps, seed)
    max_diff = [_max_diff(models)]
    norms: dict[str, list[float]] = {"torch": [], "velocity": []}
    lrs: list[float] = []
    updates: list[Tensor] = []
    ev: dict[str, Any] = {"steps": [], "train_loss": {f: [] for f in models},
                          "val_acc": {f: [] for f in models}}  # fmt: skip
    _evaluate(ev, 0, models, x, y, x_val, y_val)
    for t, (xb, yb) in enumerate(batches):
        lrs.append(float(opts["torch"].param_groups[0]["lr"]))
        for f, m in models.items():
            delta = _step(m, opts[f], scheds[f], xb, yb)
            norms[f].append(float(delta.norm()))
            if f == "torch":
                updates.append(delta)
        max_diff.append(_max_diff(models))
        if (t + 1) % eval_every == 0 or t + 1 == steps:
            _evaluate(ev, t + 1, models, x, y, x_val, y_val)
    return {
        "max_diff": np.asarray(max_diff),
        "update_norm": {f: np.asarray(v) for f, v in norms.items()},
        "lrs": np.asarray(lrs),
        "torch_updates": updates,
        "eval": ev,
        "models": models,
    }


def _batches(
    x: Tensor, y: Tensor, batch_size: int, steps: int, seed: int
) -> Iterator[tuple[Tensor, Tensor]]:
    """``steps`` mini-batches, a fresh permutation of the examples each epoch (seeded)."""
    n = int(x.shape[0])
    gen = torch.Generator().manual_seed(int(seed))
    xs, ys, pos = x, y, n
    for _ in range(steps):
        if pos + batch_size > n:
            perm = torch.randperm(n, generator=gen)
            xs, ys, pos = x[perm], y[perm], 0
        yield xs[pos : pos + batch_size], ys[pos : pos + batch_size]
        pos += batch_size


def _max_diff(models: dict[str, nn.Module]) -> float:
    """max |theta_torch - theta_velocity| over all weights."""
    return float((flat_params(models["torch"]) - flat_params(models["velocity"])).abs().max())


def _step(model: nn.Module, opt: Any, sched: Any, xb: Tensor, yb: Tensor) -> Tensor:
    """One update of ``model`` on a batch (then the scheduler's step); the update vector."""
    before = flat_params(model)
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(xb), yb).backward()
    opt.step()
    if sched is not None:
        sched.step()
    return flat_params(model) - before


@torch.no_grad()
def _evaluate(
    ev: dict[str, Any], step: int, models: dict[str, nn.Module], x: Tensor, y: Tensor,
    x_val: Tensor | None, y_val: Tensor | None,
) -> None:  # fmt: skip
    """Record both models' full-batch training loss (and validation accuracy) at ``step``."""
    ev["steps"].append(step)
    for f, m in models.items():
        ev["train_loss"][f].append(float(F.cross_entropy(m(x), y)))
        if x_val is not None:
            ev["val_acc"][f].append(float((m(x_val).argmax(-1) == y_val).double().mean()))


def _ravine(o: dict[str, Any], gamma: float, momentum: float) -> dict[str, Any]:
    f = landscapes.get("ravine")
    steps = int(o["ravine_steps"])
    decay = steps // 3
    lr = float(o["ravine_lr"])
    sched = schedules.multistep([decay], gamma=gamma, base=lr)
    start = torch.tensor([-10.0, 1.0], dtype=torch.float64)
    out: dict[str, Any] = {"decay_at": decay, "lr": lr, "momentum": momentum, "steps": steps}
    for form in ("torch", "velocity"):
        tr = trajectories.run(f, "momentum", start, steps, lr=sched,
                              hyper={"momentum": momentum, "form": form})  # fmt: skip
        out[form] = {"path": tr.paths[0].numpy(), "loss": tr.losses[0].numpy()}
    out["distance"] = np.linalg.norm(out["torch"]["path"] - out["velocity"]["path"], axis=1)
    return out


_OPEN_UNIT = cs.Interval(Real, 0, 1, closed="neither")

#: What each option must be (``momenta``: one value or a non-empty list, each in (0, 1)).
CONSTRAINTS: dict[str, list[Any]] = {
    "momenta": [cs.ListOf(_OPEN_UNIT), _OPEN_UNIT],
    "effective_lr": [cs.POSITIVE],
    "gamma": [_OPEN_UNIT],
    "steps": [cs.Interval(Integral, 4, None)],
    "batch_size": [cs.POSITIVE_INT],
    "eval_every": [cs.POSITIVE_INT],
    "ravine_steps": [cs.Interval(Integral, 3, None)],
    "ravine_lr": [cs.POSITIVE],
    "hidden": [cs.POSITIVE_INT],
}


@experiment(DEFAULTS, QUICK, CONSTRAINTS)
def run(o: dict[str, Any], v: dict[str, Any], *, quick: bool, seed: int) -> ExperimentResult:
    """Torch-form vs velocity-form momentum under a step decay (and a cosine schedule).

    For each momentum :math:`\\mu` in ``momenta`` the network is trained in lockstep by both
    forms with rate :math:`\\eta = ` ``effective_lr`` :math:`(1-\\mu)` (the same effective
    step :math:`\\eta/(1-\\mu)` for every :math:`\\mu`), multiplied by ``gamma`` halfway; the
    first momentum is also run under cosine annealing. Float64 throughout, so "identical
    before the decay" means equal to rounding.

    Args:
        quick: the small preset.
        seed: seed of the initialisation and the batch order.
        problem: a classification dataset (``mnist1d``).
        hidden: width of the MNIST-1D paper's MLP.
        momenta: the momenta compared.
        effective_lr: :math:`\\eta/(1-\\mu)`.
        gamma: the step decay's factor.
        batch_size, steps, eval_every: the runs.
        ravine_steps, ravine_lr: the 2-D illustration (first momentum, decay at a third).

    Returns:
        an :class:`ExperimentResult`, one row per (momentum, schedule).

    Example:
        >>> r = run(quick=True)  # doctest: +SKIP
        >>> r.row(momentum=0.9, schedule="step")["max_diff_before"] < 1e-12  # doctest: +SKIP
        True
    """
    v = _check_options(v)
    mus, gam, n_steps = v["momenta"], v["gamma"], v["steps"]
    splits, base_model = _data_and_model(o["problem"], v, seed)
    decay = n_steps // 2
    with timer() as elapsed:
        runs = _lockstep_runs(base_model, splits, v, decay, seed)
        ravine = _ravine(o, gam, mus[0])
        seconds = elapsed()
    res = ExperimentResult(
        name="momentum_forms",
        title="Momentum with lr inside (velocity) vs outside (torch) the buffer",
        columns=list(_COLUMNS),
        rows=[_row(r, decay, gam, n_steps) for r in runs],
    )
    _check_forms(res)
    res.data = {"decay_at": decay, "runs": [_run_data(r, decay, gam, n_steps) for r in runs],
                "ravine": ravine}  # fmt: skip
    notes = _notes(o["problem"], v, decay)
    options = {**o, "momenta": mus, "decay_at": decay}
    return finish(res, quick=quick, seed=seed, options=options, seconds=seconds, notes=notes)


#: The table's columns.
_COLUMNS = ("momentum", "schedule", "lr", "max_diff_before", "diff_1_after", "predicted_1_after",
            "k", "diff_k_after", "predicted_k_after", "extra_old_steps", "step_ratio_after",
            "max_diff_end", "relative_diff_end", "train_loss_torch", "train_loss_velocity",
            "val_acc_torch", "val_acc_velocity")  # fmt: skip


def _check_options(c: dict[str, Any]) -> dict[str, Any]:
    """The checked options under short names: ``momenta`` (a list), ``eff``, ``gamma``,
    ``steps``, ``bs``, ``every``, ``hidden``."""
    mus = c["momenta"] if isinstance(c["momenta"], list) else [c["momenta"]]
    return {"momenta": mus, "eff": c["effective_lr"], "gamma": c["gamma"], "steps": c["steps"],
            "bs": c["batch_size"], "every": c["eval_every"], "hidden": c["hidden"]}  # fmt: skip


def _data_and_model(problem: str, v: dict[str, Any], seed: int) -> tuple[Any, nn.Module]:
    """The classification problem's splits and the MLP both forms start from (float64)."""
    splits = datasets.load(problem)
    if splits.task != "classification":
        raise ValueError(f"problem must be a classification dataset, got {problem!r}")
    if v["bs"] > splits.x_train.shape[0]:
        raise ValueError(f"batch_size must be <= {splits.x_train.shape[0]}, got {v['bs']}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        base_model = model_zoo.build(
            "mlp", input_shape=splits.input_shape, n_outputs=splits.n_outputs, hidden=v["hidden"]
        ).double()
    return splits, base_model


def _lockstep_runs(
    base_model: nn.Module, splits: Any, v: dict[str, Any], decay: int, seed: int
) -> list[dict[str, Any]]:
    """:func:`lockstep` for every momentum under the step decay, and for the first one
    under cosine annealing, at the rate ``effective_lr (1 - mu)``."""
    x, y = splits.x_train.double(), splits.y_train
    xv, yv = splits.x_val.double(), splits.y_val
    runs = []
    cases = [(mu, "step") for mu in v["momenta"]] + [(v["momenta"][0], "cosine")]
    for mu, kind in cases:
        lr = v["eff"] * (1.0 - mu)
        sched = (schedules.multistep([decay], gamma=v["gamma"]) if kind == "step"
                 else schedules.cosine(v["steps"]))  # fmt: skip
        out = lockstep(base_model, x, y, momentum=mu, lr=lr, schedule=sched, steps=v["steps"],
                       batch_size=v["bs"], eval_every=v["every"], seed=seed, x_val=xv,
                       y_val=yv)  # fmt: skip
        runs.append({**out, "momentum": mu, "schedule": kind, "lr": lr})
    return runs


def _row(r: dict[str, Any], decay: int, gam: float, n_steps: int) -> dict[str, Any]:
    """One run's table row: the differences before and after the decay against the
    prediction (step decay only), and both forms' outcome."""
    mu, md = r["momentum"], r["max_diff"]
    scale = float(np.max(np.abs(flat_params(r["models"]["torch"]).numpy())))
    row: dict[str, Any] = {"momentum": mu, "schedule": r["schedule"], "lr": r["lr"]}
    if r["schedule"] == "step":
        k_char = max(1, min(round(1.0 / (1.0 - mu)), n_steps - decay))
        last = r["torch_updates"][decay - 1]
        pred1 = float(np.abs(predicted_gap(last, mu, gam, 1)).max())
        predk = float(np.abs(predicted_gap(last, mu, gam, k_char)).max())
        row.update({
            "max_diff_before": float(md[: decay + 1].max()),
            "diff_1_after": float(md[decay + 1]), "predicted_1_after": pred1,
            "k": k_char, "diff_k_after": float(md[decay + k_char]),
            "predicted_k_after": predk,
            "extra_old_steps": (1.0 - gam) * mu / (1.0 - mu),
            "step_ratio_after": float(r["update_norm"]["velocity"][decay]
                                      / r["update_norm"]["torch"][decay]),
        })  # fmt: skip
    else:
        row.update(dict.fromkeys(_COLUMNS[3:11]))
    ev = r["eval"]
    row.update({
        "max_diff_end": float(md[-1]), "relative_diff_end": float(md[-1]) / scale,
        "train_loss_torch": ev["train_loss"]["torch"][-1],
        "train_loss_velocity": ev["train_loss"]["velocity"][-1],
        "val_acc_torch": ev["val_acc"]["torch"][-1],
        "val_acc_velocity": ev["val_acc"]["velocity"][-1],
    })  # fmt: skip
    return row


def _check_forms(res: ExperimentResult) -> None:
    """Equal before the decay, apart after it by the predicted amount, the velocity form's
    larger step, and a larger gap with higher momentum."""
    step_rows = [r for r in res.rows if r["schedule"] == "step"]
    before = max(r["max_diff_before"] for r in step_rows)
    after = min(max(r["diff_1_after"], r["diff_k_after"]) for r in step_rows)
    pred = max(abs(r["diff_1_after"] / r["predicted_1_after"] - 1) for r in step_rows)
    ratio = min(r["step_ratio_after"] for r in step_rows)
    res.check("the two forms are identical before the decay (max |diff| < 1e-12, float64)",
              all(r["max_diff_before"] < 1e-12 for r in step_rows),
              f"max |diff| {before:.1e}", "< 1e-12")  # fmt: skip
    res.check("they differ after the decay (max |diff| > 1e-4 within 1/(1 - mu) steps)",
              all(max(r["diff_1_after"], r["diff_k_after"]) > 1e-4 for r in step_rows),
              f"min over momenta {after:.2g}", "> 1e-4")  # fmt: skip
    res.check(
        "the first step after the decay matches the prediction (1-gamma) mu |Delta| (10 %)",
        all(abs(r["diff_1_after"] / r["predicted_1_after"] - 1) < 0.1 for r in step_rows),
        f"worst {100 * pred:.1f} % off",
        "< 10 %",
    )
    res.check("the velocity form's first step after the decay is several times the torch "
              "form's (> 3x)", all(r["step_ratio_after"] > 3 for r in step_rows),
              f"≥ {ratio:.2f}x", "> 3x")  # fmt: skip
    res.check(
        "higher momentum, larger gap after the decay",
        len(step_rows) < 2 or step_rows[-1]["diff_k_after"] > step_rows[0]["diff_k_after"],
        " < ".join(f"{r['diff_k_after']:.3g}" for r in step_rows),
        "increasing with momentum",
    )


def _run_data(r: dict[str, Any], decay: int, gam: float, n_steps: int) -> dict[str, Any]:
    """One run's curves for the figure (the predicted gap after a step decay)."""
    predicted = None
    if r["schedule"] == "step":
        gaps = predicted_gap(r["torch_updates"][decay - 1], r["momentum"], gam,
                             np.arange(1, n_steps - decay + 1))  # fmt: skip
        predicted = np.abs(gaps).max(1)
    keys = ("momentum", "schedule", "lr", "max_diff", "update_norm", "lrs", "eval")
    return {**{k: r[k] for k in keys}, "predicted": predicted}


def _notes(problem: str, v: dict[str, Any], decay: int) -> list[str]:
    return [
        f"{problem} MLP ({v['hidden']} hidden), float64, both forms from the same weights on "
        f"the same mini-batches (batch {v['bs']}), {v['steps']} steps, lr = {v['eff']:g} "
        f"(1 - mu), multiplied by {v['gamma']:g} at step {decay} (`step`), or cosine-annealed "
        "to 0 (`cosine`). `diff_*` are max |theta_torch - theta_velocity| over all weights, one "
        "and k = 1/(1 - mu) steps (at most to the end of the run) after the decay; "
        "`predicted_*` the first-order theory (1 - gamma) |Delta_{s-1}| mu (1 - mu^k) / (1 - mu) "
        "from the last update before the decay; `extra_old_steps` is how many old-sized steps "
        "further the velocity form travels in the limit.",
        "When it matters: after a sudden rate drop with high momentum the velocity form keeps "
        "moving at the old speed for about 1/(1 - mu) steps (torch's form slows down at once), "
        "which can undo part of the decay's benefit or, with a large drop, overshoot; with a "
        "smooth schedule the rate changes a little at every step, so the forms part from the "
        "first step, but the velocity form only lags the schedule by about 1/(1 - mu) steps. "
        "Once the weights differ at all, mini-batch training amplifies the difference "
        "(compare `max_diff_end` of the cosine row), so judge the forms by their outcome -- "
        "loss and accuracy -- not by the distance between their weights. "
        "Papers and code written in one form are reproduced in the other only at a constant "
        "rate.",
    ]
