"""The lectures' experiments, one module each.

==================  ==========================================================================
name                what it shows
==================  ==========================================================================
``sharpness``       batch sizes on MNIST-1D: generalization gap and Keskar et al.'s
                    epsilon-sharpness with intervals over seeds (the DL-basics lecture)
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
:mod:`descentlab.book.render.experiment_figures`; ``descentlab experiment NAME`` does both.

Example:
    >>> from descentlab.book import experiments as lectures
    >>> result = lectures.run("bias_variance", quick=True)
    >>> all(result.checks.values())
    True
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

from descentlab.book.experiments._common import ExperimentResult

__all__ = ["DESCRIPTIONS", "NAMES", "ExperimentResult", "get", "options", "run"]

#: One line per experiment (for ``descentlab experiment list``), in the lectures' order; each
#: is the module of that name here, imported when it is first run (listing the experiments,
#: ``descentlab experiment --help``, imports none of them).
DESCRIPTIONS: dict[str, str] = {
    "sharpness": "batch sizes on MNIST-1D: generalization gap and epsilon-sharpness",
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

#: The experiment names, in the lectures' order.
NAMES: tuple[str, ...] = tuple(DESCRIPTIONS)


def _module(name: str) -> ModuleType:
    """The module of experiment ``name`` (KeyError: unknown name, listing the valid ones)."""
    if name not in DESCRIPTIONS:
        raise KeyError(f"unknown experiment {name!r}; valid names: {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}")


def get(name: str) -> Callable[..., ExperimentResult]:
    """The ``run`` function of experiment ``name``.

    Raises:
        KeyError: unknown name (the message lists the valid ones).
    """
    return _module(name).run


def options(name: str, *, quick: bool = False) -> dict[str, Any]:
    """The options of experiment ``name`` with the values its preset uses.

    Example:
        >>> options("sharpness")["eps"]
        [0.001, 0.0005]
    """
    module = _module(name)
    out = dict(module.DEFAULTS)
    if quick:
        out.update(module.QUICK)
    return out


def run(name: str, *, quick: bool = False, seed: int = 0, **opts: Any) -> ExperimentResult:
    """Run experiment ``name``: the lecture's claim measured, its table and its checks.

    Args:
        name: one of :data:`NAMES`.
        quick: the small preset (seconds) instead of the full one (minutes).
        seed: the first seed.
        **opts: the experiment's options (see :func:`options`); ``store=`` records the
            training runs of ``regularization`` and ``schedules``.

    Returns:
        the :class:`ExperimentResult`: ``title``, the table (``columns``, ``rows``;
        ``table_text()``), ``checks`` (each lecture's prediction and whether this run bore it
        out), ``notes``, the figures' ``data``, the resolved ``config`` and ``seconds``.

    Writes:
        Nothing (the figures are drawn by
        :func:`descentlab.book.render.experiment_figures.write`, as ``descentlab experiment`` does);
        with ``store=`` the training runs of ``regularization`` and ``schedules`` are recorded
        in that store.

    Raises:
        KeyError: unknown experiment (listing the valid names).
        ValueError: unknown option (listing the valid ones) or a bad value; raised before the
            experiment runs.

    Example:
        >>> from descentlab.book import experiments as lectures
        >>> result = lectures.run("bias_variance", quick=True)
        >>> result.title
        'Bias-variance decomposition across model sizes (poly, fixed design)'
        >>> result.columns[:5], len(result.rows), all(result.checks.values())
        (['size', 'params', 'bias2', 'variance', 'noise'], 6, True)
        >>> lectures.run("bias_variance", quick=True, colour="red")
        Traceback (most recent call last):
        ValueError: unknown option(s) ['colour'] for experiment 'bias_variance'; ...
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
