r"""Momentum with the learning rate inside or outside the buffer (the lectures disagree).

Two ways to write heavy-ball momentum appear in the lectures:

- *torch form* (seed 002, cs231n in seed 003; ``torch.optim.SGD``): the buffer sums
  gradients and the rate multiplies it, :math:`b_t = \mu b_{t-1} + g_t,\ \theta_{t+1} =
  \theta_t - \eta_t b_t`;
- *velocity form* (seeds 000, 001, 003 eq. 5.12, 004): the rate is inside,
  :math:`v_t = \mu v_{t-1} - \eta_t g_t,\ \theta_{t+1} = \theta_t + v_t`.

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
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from descentlab.experiments.lectures._common import (
    ExperimentResult,
    check_float,
    check_int,
    resolve,
    timer,
)

__all__ = ["DEFAULTS", "QUICK", "lockstep", "predicted_gap", "run"]

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
    mu = check_float("momentum", momentum, low=0.0, low_open=False, high=1.0, high_open=True)
    g = check_float("gamma", gamma, low=0.0, low_open=False)
    d = np.asarray(last_update.detach() if isinstance(last_update, Tensor) else last_update,
                   dtype=np.float64)  # fmt: skip
    ks = np.asarray(k, dtype=np.float64)
    factor = (1.0 - g) * mu * (1.0 - mu**ks) / (1.0 - mu)
    return np.multiply.outer(factor, d) if ks.ndim else factor * d


def _flat(model: nn.Module) -> Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


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
    from descentlab import optim, schedules

    models = {"torch": copy.deepcopy(model), "velocity": copy.deepcopy(model)}
    opts = {f: optim.Momentum(models[f].parameters(), lr=lr, momentum=momentum, form=f)
            for f in models}  # fmt: skip
    scheds = {f: (schedules.Scheduler(opts[f], {"lr": schedule}) if schedule is not None
                  else None) for f in models}  # fmt: skip
    n = int(x.shape[0])
    gen = torch.Generator().manual_seed(int(seed))
    xs, ys, pos = x, y, n
    max_diff = [float((_flat(models["torch"]) - _flat(models["velocity"])).abs().max())]
    norms: dict[str, list[float]] = {"torch": [], "velocity": []}
    lrs: list[float] = []
    updates: list[Tensor] = []
    ev: dict[str, Any] = {"steps": [], "train_loss": {f: [] for f in models},
                          "val_acc": {f: [] for f in models}}  # fmt: skip

    @torch.no_grad()
    def evaluate(step: int) -> None:
        ev["steps"].append(step)
        for f, m in models.items():
            ev["train_loss"][f].append(float(F.cross_entropy(m(x), y)))
            if x_val is not None:
                ev["val_acc"][f].append(float((m(x_val).argmax(-1) == y_val).double().mean()))

    evaluate(0)
    for t in range(steps):
        if pos + batch_size > n:
            perm = torch.randperm(n, generator=gen)
            xs, ys, pos = x[perm], y[perm], 0
        xb, yb = xs[pos : pos + batch_size], ys[pos : pos + batch_size]
        pos += batch_size
        lrs.append(float(opts["torch"].param_groups[0]["lr"]))
        for f, m in models.items():
            before = _flat(m)
            opts[f].zero_grad(set_to_none=True)
            F.cross_entropy(m(xb), yb).backward()
            opts[f].step()
            if scheds[f] is not None:
                scheds[f].step()
            delta = _flat(m) - before
            norms[f].append(float(delta.norm()))
            if f == "torch":
                updates.append(delta)
        max_diff.append(float((_flat(models["torch"]) - _flat(models["velocity"])).abs().max()))
        if (t + 1) % eval_every == 0 or t + 1 == steps:
            evaluate(t + 1)
    return {
        "max_diff": np.asarray(max_diff),
        "update_norm": {f: np.asarray(v) for f, v in norms.items()},
        "lrs": np.asarray(lrs),
        "torch_updates": updates,
        "eval": ev,
        "models": models,
    }


def _ravine(o: dict[str, Any], gamma: float, momentum: float) -> dict[str, Any]:
    from descentlab import schedules
    from descentlab.problems import landscapes, trajectories

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


def run(
    *,
    quick: bool = False,
    seed: int = 0,
    problem: str | None = None,
    hidden: int | None = None,
    momenta: list[float] | None = None,
    effective_lr: float | None = None,
    gamma: float | None = None,
    batch_size: int | None = None,
    steps: int | None = None,
    eval_every: int | None = None,
    ravine_steps: int | None = None,
    ravine_lr: float | None = None,
) -> ExperimentResult:
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
    from descentlab import schedules
    from descentlab.problems import data as datasets
    from descentlab.problems import models as model_zoo
    from descentlab.store import provenance

    o = resolve(dict(locals()), DEFAULTS, QUICK, quick)
    seed = check_int("seed", seed, 0)
    mus = o["momenta"] if isinstance(o["momenta"], list | tuple) else [o["momenta"]]
    if not mus:
        raise ValueError("momenta must hold at least one value, got []")
    mus = [check_float("momenta", m, low=0.0, low_open=True, high=1.0, high_open=True)
           for m in mus]  # fmt: skip
    eff = check_float("effective_lr", o["effective_lr"])
    gam = check_float("gamma", o["gamma"], high=1.0, high_open=True)
    n_steps = check_int("steps", o["steps"], 4)
    bs = check_int("batch_size", o["batch_size"])
    every = check_int("eval_every", o["eval_every"])
    check_int("ravine_steps", o["ravine_steps"], 3)
    check_float("ravine_lr", o["ravine_lr"])
    hid = check_int("hidden", o["hidden"])
    splits = datasets.load(o["problem"])
    if splits.task != "classification":
        raise ValueError(f"problem must be a classification dataset, got {o['problem']!r}")
    x, y = splits.x_train.double(), splits.y_train
    xv, yv = splits.x_val.double(), splits.y_val
    if bs > x.shape[0]:
        raise ValueError(f"batch_size must be <= {x.shape[0]}, got {bs}")
    decay = n_steps // 2
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        base_model = model_zoo.build(
            "mlp", input_shape=splits.input_shape, n_outputs=splits.n_outputs, hidden=hid
        ).double()

    runs: list[dict[str, Any]] = []
    with timer() as elapsed:
        cases = [(mu, "step") for mu in mus] + [(mus[0], "cosine")]
        for mu, kind in cases:
            lr = eff * (1.0 - mu)
            sched = (schedules.multistep([decay], gamma=gam) if kind == "step"
                     else schedules.cosine(n_steps))  # fmt: skip
            out = lockstep(base_model, x, y, momentum=mu, lr=lr, schedule=sched, steps=n_steps,
                           batch_size=bs, eval_every=every, seed=seed, x_val=xv,
                           y_val=yv)  # fmt: skip
            runs.append({**out, "momentum": mu, "schedule": kind, "lr": lr})
        ravine = _ravine(o, gam, mus[0])
        seconds = elapsed()

    rows = []
    for r in runs:
        mu, md = r["momentum"], r["max_diff"]
        scale = float(np.max(np.abs(_flat(r["models"]["torch"]).numpy())))
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
            row.update({"max_diff_before": None, "diff_1_after": None, "predicted_1_after": None,
                        "k": None, "diff_k_after": None, "predicted_k_after": None,
                        "extra_old_steps": None, "step_ratio_after": None})  # fmt: skip
        ev = r["eval"]
        row.update({
            "max_diff_end": float(md[-1]), "relative_diff_end": float(md[-1]) / scale,
            "train_loss_torch": ev["train_loss"]["torch"][-1],
            "train_loss_velocity": ev["train_loss"]["velocity"][-1],
            "val_acc_torch": ev["val_acc"]["torch"][-1],
            "val_acc_velocity": ev["val_acc"]["velocity"][-1],
        })  # fmt: skip
        rows.append(row)

    step_rows = [r for r in rows if r["schedule"] == "step"]
    checks = {
        "the two forms are identical before the decay (max |diff| < 1e-12, float64)": all(
            r["max_diff_before"] < 1e-12 for r in step_rows
        ),
        "they differ after the decay (max |diff| > 1e-4 within 1/(1 - mu) steps)": all(
            max(r["diff_1_after"], r["diff_k_after"]) > 1e-4 for r in step_rows
        ),
        "the first step after the decay matches the prediction (1-gamma) mu |Delta| (10 %)": all(
            abs(r["diff_1_after"] / r["predicted_1_after"] - 1) < 0.1 for r in step_rows
        ),
        "the velocity form's first step after the decay is several times the torch form's "
        "(> 3x)": all(r["step_ratio_after"] > 3 for r in step_rows),
        "higher momentum, larger gap after the decay": (
            len(step_rows) < 2 or step_rows[-1]["diff_k_after"] > step_rows[0]["diff_k_after"]
        ),
    }
    before = max(r["max_diff_before"] for r in step_rows)
    after = min(max(r["diff_1_after"], r["diff_k_after"]) for r in step_rows)
    pred = max(abs(r["diff_1_after"] / r["predicted_1_after"] - 1) for r in step_rows)
    ratio = min(r["step_ratio_after"] for r in step_rows)
    measured = dict(zip(checks, [
        {"measured": f"max |diff| {before:.1e}", "expected": "< 1e-12"},
        {"measured": f"min over momenta {after:.2g}", "expected": "> 1e-4"},
        {"measured": f"worst {100 * pred:.1f} % off", "expected": "< 10 %"},
        {"measured": f"≥ {ratio:.2f}x", "expected": "> 3x"},
        {"measured": " < ".join(f"{r['diff_k_after']:.3g}" for r in step_rows),
         "expected": "increasing with momentum"},
    ], strict=True))  # fmt: skip
    notes = [
        f"{o['problem']} MLP ({hid} hidden), float64, both forms from the same weights on the "
        f"same mini-batches (batch {bs}), {n_steps} steps, lr = {eff:g} (1 - mu), multiplied "
        f"by {gam:g} at step {decay} (`step`), or cosine-annealed to 0 (`cosine`). `diff_*` "
        "are max |theta_torch - theta_velocity| over all weights, one and k = 1/(1 - mu) steps "
        "(at most to the end of the run) after the decay; `predicted_*` the first-order "
        "theory (1 - gamma) |Delta_{s-1}| mu (1 - mu^k) / (1 - mu) from the last update before "
        "the decay; `extra_old_steps` is "
        "how many old-sized steps further the velocity form travels in the limit.",
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
    data = {
        "decay_at": decay,
        "runs": [
            {
                "momentum": r["momentum"],
                "schedule": r["schedule"],
                "lr": r["lr"],
                "max_diff": r["max_diff"],
                "update_norm": r["update_norm"],
                "lrs": r["lrs"],
                "eval": r["eval"],
                "predicted": (
                    predicted_gap(
                        r["torch_updates"][decay - 1],
                        r["momentum"],
                        gam,
                        np.arange(1, n_steps - decay + 1),
                    )
                    .__abs__()
                    .max(1)
                    if r["schedule"] == "step"
                    else None
                ),
            }
            for r in runs
        ],
        "ravine": ravine,
    }
    config = {"quick": quick, "seed": seed, **o, "momenta": mus, "decay_at": decay}
    return ExperimentResult(
        name="momentum_forms",
        title="Momentum with lr inside (velocity) vs outside (torch) the buffer",
        columns=[
            "momentum",
            "schedule",
            "lr",
            "max_diff_before",
            "diff_1_after",
            "predicted_1_after",
            "k",
            "diff_k_after",
            "predicted_k_after",
            "extra_old_steps",
            "step_ratio_after",
            "max_diff_end",
            "relative_diff_end",
            "train_loss_torch",
            "train_loss_velocity",
            "val_acc_torch",
            "val_acc_velocity",
        ],
        rows=rows,
        checks=checks,
        measured=measured,
        notes=notes,
        data=data,
        config=config,
        seconds=seconds,
        provenance=provenance(seed, experiment="momentum_forms"),
    )
