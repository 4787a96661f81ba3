"""Regularization on an overfitting setup (the regularization and CNN lecture).

The regularization and CNN lecture lists the regularizers -- early stopping, parameter norm penalty
(weight decay), data augmentation, noise robustness, label smoothing, mixup, cutmix, dropout, batch
normalization -- and ends: fix the network and the data, try the regularizers, and watch the
generalization performance. This experiment does exactly that on a setup built to overfit: a wide
MLP (``digits_mlp``, 512 hidden units) on only ``n_train`` digits (the lecture's "small data" case),
trained by Adam with every method in turn:

===================  =========================================================================
method               how (all through :func:`descentlab.engine.run.train`)
===================  =========================================================================
``none``             plain Adam
``early_stopping``   stop when the validation loss has not improved for ``patience``
                     evaluations, restore the best weights
``l2_coupled``       Adam's ``weight_decay``: :math:`g + \\lambda w` enters the adaptive
                     moments (the L2 penalty's gradient)
``decoupled_wd``     AdamW: :math:`w \\leftarrow w - \\eta\\lambda w` outside the moments
                     (Loshchilov & Hutter)
``dropout``          ``digits_mlp(dropout=p)``
``mixup``            convex combinations of pairs of examples and labels
``cutmix``           pasted patches, labels mixed by area
``label_smoothing``  cross-entropy against ``(1 - eps) onehot + eps / K``
``augmentation``     each training image shifted by up to ``max_translate`` pixels
``input_noise``      Gaussian noise of std ``input_noise`` added to the training inputs
``weight_noise``     the weights perturbed by Gaussian noise of std ``weight_noise`` for each
                     gradient (noise robustness, the regularization and CNN lecture: "random
                     noise on inputs or weights")
``batch_norm``       ``digits_mlp(batch_norm=True)``: each hidden layer normalized over the batch
===================  =========================================================================

Every method runs with ``seeds`` seeds; the table reports train, validation and test accuracy,
the generalization gap (train minus test accuracy, and test minus train loss) and the steps
run; the figure shows the learning curves. Losses and accuracies are measured on clean
(unaugmented, unsmoothed) data, so the methods compare.

References:
    Loshchilov & Hutter, "Decoupled weight decay regularization", ICLR 2019,
    https://arxiv.org/abs/1711.05101. Srivastava et al., "Dropout", JMLR 2014. Zhang et al.,
    "mixup", ICLR 2018. Yun et al., "CutMix", ICCV 2019. Szegedy et al., label smoothing,
    CVPR 2016. Prechelt, "Early stopping - but when?", 1998.
"""

from __future__ import annotations

import dataclasses
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from descentlab import constraints as cs
from descentlab.book.experiments._common import (
    ExperimentResult,
    experiment,
    finish,
    mean_std,
    timer,
)
from descentlab.engine.config import RunConfig
from descentlab.experiments.runners import train_all
from descentlab.problems import data as datasets

__all__ = ["CONSTRAINTS", "DEFAULTS", "METHODS", "QUICK", "method_configs", "run"]

#: The methods, in table order, each with how the table describes it (a template of the
#: options).
_METHODS: tuple[tuple[str, str], ...] = (
    ("none", "Adam, nothing else"),
    ("early_stopping", "patience {patience} evaluations on val loss, best weights"),
    ("l2_coupled", "Adam weight_decay={l2:g} (L2 gradient in the moments)"),
    ("decoupled_wd", "AdamW weight_decay={decoupled_wd:g}"),
    ("dropout", "dropout p={dropout:g}"),
    ("mixup", "mixup alpha={mixup_alpha:g}"),
    ("cutmix", "cutmix alpha={cutmix_alpha:g}"),
    ("label_smoothing", "label smoothing eps={label_smoothing:g}"),
    ("augmentation", "random shifts up to {max_translate} pixel(s)"),
    ("input_noise", "input noise std {input_noise:g}"),
    ("weight_noise", "weight noise std {weight_noise:g}"),
    ("batch_norm", "batch norm after each hidden layer"),
)
#: The methods, in table order.
METHODS: tuple[str, ...] = tuple(name for name, _ in _METHODS)

#: The full setting.
DEFAULTS: dict[str, Any] = {
    "problem": "digits",
    "n_train": 200,
    "hidden": [512],
    "lr": 1e-3,
    "batch_size": 32,
    "steps": 1500,
    "eval_every": 25,
    "seeds": 5,
    "methods": list(METHODS),
    "patience": 8,
    "l2": 5e-3,
    "decoupled_wd": 1.0,
    "dropout": 0.5,
    "mixup_alpha": 0.4,
    "cutmix_alpha": 1.0,
    "label_smoothing": 0.1,
    "max_translate": 1,
    "input_noise": 0.2,
    "weight_noise": 0.05,
}

#: The small setting of the tests.
QUICK: dict[str, Any] = {
    "hidden": [256],
    "lr": 3e-3,
    "steps": 450,
    "eval_every": 15,
    "seeds": 5,
    "patience": 5,
}


_FRACTION = cs.Interval(Real, 0, 1, closed="neither")

#: What each option must be (``hidden``: one width or a list of them; ``methods`` are
#: checked against :data:`METHODS`).
CONSTRAINTS: dict[str, list[Any]] = {
    "n_train": [cs.Interval(Integral, 10, None)],
    "hidden": [cs.ListOf(cs.POSITIVE_INT), cs.POSITIVE_INT],
    "lr": [cs.POSITIVE],
    "batch_size": [cs.POSITIVE_INT],
    "steps": [cs.POSITIVE_INT],
    "eval_every": [cs.POSITIVE_INT],
    "seeds": [cs.POSITIVE_INT],
    "patience": [cs.POSITIVE_INT],
    "l2": [cs.POSITIVE],
    "decoupled_wd": [cs.POSITIVE],
    "dropout": [_FRACTION],
    "mixup_alpha": [cs.POSITIVE],
    "cutmix_alpha": [cs.POSITIVE],
    "label_smoothing": [_FRACTION],
    "max_translate": [cs.POSITIVE_INT],
    "input_noise": [cs.POSITIVE],
    "weight_noise": [cs.POSITIVE],
}


def method_configs(base: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The :class:`~descentlab.engine.config.RunConfig` of each method, from the plain one.

    Args:
        base: the run without regularization.
        options: the regularization strengths (``patience``, ``l2``, ``decoupled_wd``,
            ``dropout``, ``mixup_alpha``, ``cutmix_alpha``, ``label_smoothing``).

    Returns:
        ``{method: RunConfig}`` for every name of :data:`METHODS`.

    Example:
        >>> from descentlab.engine.config import RunConfig
        >>> cfgs = method_configs(RunConfig(hyper={"lr": 1e-3}, steps=10), DEFAULTS)
        >>> cfgs["decoupled_wd"].optimizer, cfgs["decoupled_wd"].hyper["weight_decay"]
        ('adamw', 1.0)
    """
    mo = dict(base.model_options)
    return {
        "none": base,
        "early_stopping": base.replace(
            early_stopping={
                "patience": int(options["patience"]),
                "monitor": "val/loss",
                "restore_best": True,
            },
        ),
        "l2_coupled": base.replace(hyper={**base.hyper, "weight_decay": float(options["l2"])}),
        "decoupled_wd": base.replace(
            optimizer="adamw", hyper={**base.hyper, "weight_decay": float(options["decoupled_wd"])}
        ),
        "dropout": base.replace(model_options={**mo, "dropout": float(options["dropout"])}),
        "mixup": base.replace(mixup_alpha=float(options["mixup_alpha"])),
        "cutmix": base.replace(cutmix_alpha=float(options["cutmix_alpha"])),
        "label_smoothing": base.replace(label_smoothing=float(options["label_smoothing"])),
        "augmentation": base.replace(augment={"max_translate": int(options["max_translate"])}),
        "input_noise": base.replace(input_noise=float(options["input_noise"])),
        "weight_noise": base.replace(weight_noise=float(options["weight_noise"])),
        "batch_norm": base.replace(model_options={**mo, "batch_norm": True}),
    }


def _describe(method: str, o: dict[str, Any]) -> str:
    return dict(_METHODS)[method].format(**o)


@experiment(DEFAULTS, QUICK, CONSTRAINTS, trains=True)
def run(
    o: dict[str, Any], v: dict[str, Any], *, quick: bool, seed: int, store: Any = None,
    backend: str = "local", address: str | None = None,
) -> ExperimentResult:  # fmt: skip
    """None vs early stopping vs weight decay (coupled, decoupled) vs dropout vs mixup vs
    cutmix vs label smoothing, on ``n_train`` digits with a wide MLP.

    The training set is a stratified subset of ``n_train`` examples of the training split
    (the validation and test splits are kept whole). Each method is one
    :func:`~descentlab.engine.run.train` run per seed (recorded in ``store`` if given).

    Args:
        quick: the small preset.
        seed: first seed.
        problem: an image classification dataset (``digits``).
        n_train: training examples.
        hidden: hidden widths of ``digits_mlp``.
        lr: Adam's learning rate.
        batch_size: mini-batch size.
        steps: optimizer steps per run.
        eval_every: steps between evaluations (curves, early stopping).
        seeds: seeds per method.
        methods: a subset of :data:`METHODS` (``none`` is always run).
        patience, l2, decoupled_wd, dropout, mixup_alpha, cutmix_alpha, label_smoothing,
            max_translate, input_noise, weight_noise: the regularizers' strengths.
        store, backend, address: as :data:`~descentlab.book.experiments._common.TRAINING_OPTIONS`.

    Returns:
        an :class:`ExperimentResult`, one row per method.

    Example:
        >>> r = run(quick=True, methods=["dropout"])  # doctest: +SKIP
        >>> [row["method"] for row in r.rows]  # doctest: +SKIP
        ['none', 'dropout']
    """
    chosen = _check_options(o, v)
    small = _small_training_set(o["problem"], o["n_train"])
    with timer() as elapsed:
        per, curves = _train_methods(o, chosen, seed, small, store, backend, address)
        seconds = elapsed()
    res = ExperimentResult(
        name="regularization",
        title=f"Regularization on an overfitting setup ({o['n_train']} digits, wide MLP)",
        columns=list(_COLUMNS),
        rows=[_row(m, per[m], o) for m in chosen],
    )
    _check_gaps(res, o)
    res.data = {"curves": curves, "per_seed": per,
                "descriptions": {m: _describe(m, o) for m in chosen}}  # fmt: skip
    o["methods"] = chosen
    return finish(res, quick=quick, seed=seed, options=o, seconds=seconds, notes=_notes(o, small))


#: The table's columns.
_COLUMNS = ("method", "setting", "train_acc", "val_acc", "test_acc", "test_acc_std", "gap",
            "loss_gap", "steps", "seconds")  # fmt: skip

#: The summary numbers kept per seed, and the curves kept per run.
_KEPT = ("train/accuracy", "val/accuracy", "test/accuracy", "train/loss", "val/loss",
         "test/loss", "steps", "wall_time")  # fmt: skip
_CURVES = ("train/accuracy", "val/accuracy", "train/loss", "val/loss")


def _check_options(o: dict[str, Any], v: dict[str, Any]) -> list[str]:
    """``o`` with the checked values ``v`` (a single hidden width as a list); the methods to
    run, in table order, ``none`` first."""
    o.update(v)
    if isinstance(o["hidden"], int):
        o["hidden"] = [o["hidden"]]
    chosen = list(o["methods"]) if not isinstance(o["methods"], str) else [o["methods"]]
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise KeyError(f"unknown method(s) {unknown}; valid methods: {', '.join(METHODS)}")
    if o["batch_size"] > o["n_train"]:
        raise cs.invalid("batch_size", f"<= n_train ({o['n_train']})", o["batch_size"],
                      owner="regularization")  # fmt: skip
    return [m for m in METHODS if m in chosen or m == "none"]


def _small_training_set(problem: str, n: int) -> Any:
    """``problem``'s splits with the training split cut to a stratified subset of ``n``
    examples (the validation and test splits whole)."""
    splits = datasets.load(problem)
    if splits.task != "classification" or len(splits.input_shape) != 3:
        raise ValueError(f"problem must be an image classification dataset, got {problem!r}")
    if n >= splits.n_train:
        raise ValueError(f"n_train must be < {splits.n_train} for {problem!r}, got {n}")
    idx = np.arange(splits.n_train)
    keep, _ = train_test_split(idx, train_size=n, stratify=splits.y_train.numpy(), random_state=0)
    keep = np.sort(keep)
    return dataclasses.replace(splits, x_train=splits.x_train[keep], y_train=splits.y_train[keep])


def _train_methods(
    o: dict[str, Any], chosen: list[str], seed: int, small: Any, store: Any, backend: str,
    address: str | None,
) -> tuple[dict[str, dict[str, list[Any]]], dict[str, list[dict[str, Any]]]]:  # fmt: skip
    """Train every method with every seed on ``small`` (recorded in ``store``); per method
    the summary numbers of each seed and each run's learning curves."""
    base = RunConfig(
        problem=o["problem"], model="digits_mlp", model_options={"hidden": o["hidden"]},
        optimizer="adam", hyper={"lr": float(o["lr"])}, batch_size=o["batch_size"],
        steps=o["steps"], eval_every=o["eval_every"], evaluate_test=True,
    )  # fmt: skip
    configs = method_configs(base, o)
    jobs = [(m, s) for m in chosen for s in range(seed, seed + o["seeds"])]
    results = train_all(
        [configs[m].replace(seed=s, name=f"regularization-{m}-seed{s}") for m, s in jobs],
        store,
        data=small,
        backend=backend,
        address=address,
    )
    per: dict[str, dict[str, list[Any]]] = {m: {} for m in chosen}
    curves: dict[str, list[dict[str, Any]]] = {m: [] for m in chosen}
    for (m, _), res in zip(jobs, results, strict=True):
        for key in _KEPT:
            per[m].setdefault(key, []).append(float(res.summary[key]))
        curves[m].append({
            key: {"steps": res.metrics[key].steps, "values": res.metrics[key].values}
            for key in _CURVES
        })  # fmt: skip
    return per, curves


def _notes(o: dict[str, Any], small: Any) -> list[str]:
    return [
        f"digits_mlp {tuple(o['hidden'])} on {o['n_train']} training digits (stratified "
        f"subset), Adam lr {o['lr']:g}, batch {o['batch_size']}, {o['steps']} steps, "
        f"{o['seeds']} seed(s); validation ({small.n_val}) and test ({small.n_test}) splits "
        "whole. `gap` = train - test accuracy, `loss_gap` = test - train cross-entropy, both "
        "on clean data.",
        "Coupled L2 in Adam is weak and uneven: the penalty's gradient is divided by the "
        "adaptive scale like any gradient, so weights with large gradients are barely decayed. "
        "Decoupled decay (AdamW) shrinks every weight by the same factor per step.",
    ]


def _row(m: str, rec: dict[str, list[Any]], o: dict[str, Any]) -> dict[str, Any]:
    """One method's table row: means over the seeds."""
    gap = [a - b for a, b in zip(rec["train/accuracy"], rec["test/accuracy"], strict=True)]
    lgap = [b - a for a, b in zip(rec["train/loss"], rec["test/loss"], strict=True)]
    return {
        "method": m, "setting": _describe(m, o),
        "train_acc": mean_std(rec["train/accuracy"])[0],
        "val_acc": mean_std(rec["val/accuracy"])[0],
        "test_acc": mean_std(rec["test/accuracy"])[0],
        "test_acc_std": mean_std(rec["test/accuracy"])[1],
        "gap": mean_std(gap)[0], "loss_gap": mean_std(lgap)[0],
        "steps": mean_std(rec["steps"])[0], "seconds": mean_std(rec["wall_time"])[0],
    }  # fmt: skip


def _check_gaps(res: ExperimentResult, o: dict[str, Any]) -> None:
    """The lecture's predictions: the plain network overfits, early stopping stops early,
    most regularizers shrink the loss gap and the best one beats no regularization."""
    none, others = res.rows[0], res.rows[1:]
    res.check(
        "without regularization the wide MLP overfits (train accuracy ~1, test well below)",
        none["train_acc"] > 0.99 and none["gap"] > 0.05,
        f"train {none['train_acc']:.3f}, gap {none['gap']:.3f}",
        "train > 0.99, gap > 0.05",
    )
    n_steps = o["steps"]
    es = next((r for r in res.rows if r["method"] == "early_stopping"), None)
    if es is not None:
        res.check(
            f"early stopping stops before the end ({es['steps']:.0f} of {n_steps} steps, "
            f"patience {o['patience']} evaluations)",
            es["steps"] < n_steps,
            f"{es['steps']:.0f} steps",
            f"< {n_steps}",
        )
    if others:
        smaller = [r["method"] for r in others if r["loss_gap"] < none["loss_gap"]]
        need = max(1, (2 * len(others) + 2) // 3)
        res.check(
            f"the regularizers reduce the loss gap vs none ({len(smaller)} of {len(others)})",
            len(smaller) >= need,
            f"{len(smaller)} of {len(others)}",
            f"≥ {need}",
        )
        best = max(others, key=lambda r: r["test_acc"])
        res.check(
            f"the best regularizer beats none on test accuracy ({best['method']})",
            best["test_acc"] > none["test_acc"],
            f"{best['test_acc']:.4f}",
            f"> {none['test_acc']:.4f} (none)",
        )
