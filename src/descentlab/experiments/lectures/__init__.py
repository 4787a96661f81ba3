"""The lectures' experiments, one module each.

==================  ==========================================================================
name                what it shows
==================  ==========================================================================
``sharpness``       small vs large batch on MNIST-1D: generalization gap and Keskar et al.'s
                    epsilon-sharpness (the DL-basics lecture)
``bias_variance``   bias², variance and noise across model sizes, from many refits (the
                    DL-basics lecture)
``ensembles``       bagging vs a single network, AdaBoost.SAMME of weak networks, with
                    scikit-learn as a reference (the DL-basics lecture)
``regularization``  none vs early stopping, weight decay (coupled, decoupled), dropout, mixup,
                    cutmix, label smoothing on an overfitting setup (the DL-basics lecture)
``schedules``       fixed lr vs step, exponential, 1/t, cosine decay; the noisy-quadratic floor
                    (the optimizer and momentum lectures)
``momentum_forms``  momentum with lr inside vs outside the buffer under a step decay (the
                    five lectures disagree)
``momentum``        momentum escapes a local minimum; Nesterov's and momentum's rates against
                    theory; less overshoot across a ravine (the derivatives, DL-basics and
                    momentum lectures)
``adaptive``        AdaGrad's stall vs RMSProp, Adadelta's unit invariance, Adam's bias
                    correction and eps, Algorithm 5-5 as printed (the DL-basics and momentum
                    lectures)
``convolution``     the three definitions of convolution against torch (the kernel flip);
                    AlexNet, 1x1 bottleneck and inception arithmetic against torch's layers
``information``     entropy of the coin and the die; cross-entropy = entropy + KL (the PyTorch
                    lecture)
``closed_form``     four ways to minimize x^2 - 4x + 6; normal equations vs gradient descent;
                    the second-derivative test; the Hessian's cost against p (the optimizer and
                    derivatives lectures)
``minibatch``       the mini-batch gradient is unbiased with variance tr(Σ)/B (the optimizer
                    lecture)
==================  ==========================================================================

Each experiment is ``run(name, quick=False, seed=0, **options)`` (or the module's own
``run``), returning an :class:`ExperimentResult`: a short table, the qualitative checks the
lectures predict, notes, and the data of its figures. Figures are drawn by
:mod:`descentlab.report.experiment_figures`; ``descentlab experiment NAME`` does both.

Example:
    >>> from descentlab.experiments import lectures
    >>> result = lectures.run("bias_variance", quick=True)
    >>> all(result.checks.values())
    True
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from descentlab.experiments.lectures import (
    adaptive,
    bias_variance,
    closed_form,
    convolution,
    ensembles,
    information,
    minibatch,
    momentum,
    momentum_forms,
    regularization,
    schedules,
    sharpness,
)
from descentlab.experiments.lectures._common import ExperimentResult

__all__ = ["DESCRIPTIONS", "EXPERIMENTS", "NAMES", "ExperimentResult", "get", "options", "run"]

#: name -> the experiment's ``run`` function.
EXPERIMENTS: dict[str, Callable[..., ExperimentResult]] = {
    "sharpness": sharpness.run,
    "bias_variance": bias_variance.run,
    "ensembles": ensembles.run,
    "regularization": regularization.run,
    "schedules": schedules.run,
    "momentum_forms": momentum_forms.run,
    "momentum": momentum.run,
    "adaptive": adaptive.run,
    "convolution": convolution.run,
    "information": information.run,
    "closed_form": closed_form.run,
    "minibatch": minibatch.run,
}

#: The experiment names, in the lectures' order.
NAMES: tuple[str, ...] = tuple(EXPERIMENTS)

#: One line per experiment (for ``descentlab experiment list``).
DESCRIPTIONS: dict[str, str] = {
    "sharpness": "small vs large batch on MNIST-1D: generalization gap and epsilon-sharpness",
    "bias_variance": "bias², variance and noise vs model size from many refits",
    "ensembles": "bagging and AdaBoost.SAMME of networks on digits, scikit-learn as reference",
    "regularization": "early stopping, weight decay, dropout, mixup, cutmix, label smoothing",
    "schedules": "fixed lr vs step, exponential, 1/t, cosine; the noisy-quadratic floor",
    "momentum_forms": "momentum with lr inside vs outside the buffer under a step decay",
    "momentum": "momentum escapes a local minimum; Nesterov vs momentum rates; overshoot",
    "adaptive": "AdaGrad stalls, Adadelta's units, Adam's bias correction and eps, Alg. 5-5",
    "convolution": "convolution's definitions vs torch (kernel flip); AlexNet/inception arithmetic",
    "information": "entropy of the coin and the die; cross-entropy = entropy + KL",
    "closed_form": "four ways to a minimum; normal equations vs GD; the Hessian's cost",
    "minibatch": "the mini-batch gradient: unbiased, variance tr(Σ)/B on an MLP",
}

_MODULES = {
    "sharpness": sharpness,
    "bias_variance": bias_variance,
    "ensembles": ensembles,
    "regularization": regularization,
    "schedules": schedules,
    "momentum_forms": momentum_forms,
    "momentum": momentum,
    "adaptive": adaptive,
    "convolution": convolution,
    "information": information,
    "closed_form": closed_form,
    "minibatch": minibatch,
}


def get(name: str) -> Callable[..., ExperimentResult]:
    """The ``run`` function of experiment ``name``.

    Raises:
        KeyError: unknown name (the message lists the valid ones).
    """
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; valid names: {', '.join(NAMES)}")
    return EXPERIMENTS[name]


def options(name: str, *, quick: bool = False) -> dict[str, Any]:
    """The options of experiment ``name`` with the values its preset uses.

    Example:
        >>> options("sharpness")["eps"]
        [0.001, 0.0005]
    """
    get(name)
    module = _MODULES[name]
    out = dict(module.DEFAULTS)
    if quick:
        out.update(module.QUICK)
    return out


def run(name: str, *, quick: bool = False, seed: int = 0, **opts: Any) -> ExperimentResult:
    """Run experiment ``name``.

    Args:
        name: one of :data:`NAMES`.
        quick: the small preset (seconds) instead of the full one (minutes).
        seed: the first seed.
        **opts: the experiment's options (see :func:`options`); ``store=`` records the
            training runs of ``regularization`` and ``schedules``.

    Returns:
        the :class:`ExperimentResult`.

    Raises:
        KeyError: unknown experiment.
        ValueError: unknown option (listing the valid ones) or a bad value.
    """
    fn = get(name)
    valid = [p for p in inspect.signature(fn).parameters if p not in ("quick", "seed")]
    unknown = sorted(set(opts) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for experiment {name!r}; valid options: "
            f"{', '.join(valid)}"
        )
    return fn(quick=quick, seed=seed, **opts)
