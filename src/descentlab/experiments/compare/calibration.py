r"""An A/A check of the verdict: how often does a comparison of optimizers that are identical
in distribution call one of them "worse"?

:func:`aa_comparison` makes a :class:`~descentlab.experiments.compare.Comparison` of ``m``
optimizers that differ in nothing but chance, as a real one would hold them: for each, its
curve runs' final validation accuracy and its refit runs' per-example test outcomes, by
seed. The outcomes are drawn from one model for every optimizer: example :math:`i` has a
difficulty :math:`a_i \sim N(c, \tau^2)` (some examples easy, some
hard, shared by every run; the centre is set so that the mean accuracy is about
:math:`p`), a run (optimizer :math:`o`, seed :math:`s`) a seed effect
:math:`\delta_{os} \sim N(0, \sigma^2)`, and the run gets example :math:`i` right with
probability :math:`\operatorname{sigmoid}(a_i + \delta_{os})`. The validation set is drawn
the same way with its own examples; its seed effect is :math:`\rho\,\delta_{os} +
\sqrt{1-\rho^2}\,\varepsilon` (a seed's curve and refit runs start from the same weights:
:math:`\rho` is how much of a seed's luck they share).

:func:`false_worse_rate` then runs the comparison's own choice and verdict
(:meth:`~descentlab.experiments.compare.Comparison.ranking`) on many such comparisons and
counts those in which any optimizer is called worse -- the family-wise error the verdict
promises to keep at ``1 - confidence`` (5 %).

Example:
    >>> rate, se = false_worse_rate(4, sims=20, seed=0)
    >>> 0.0 <= rate <= 1.0 and se >= 0.0
    True
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["aa_comparison", "detection_rate", "false_worse_rate"]


def aa_comparison(
    rng: np.random.Generator,
    m: int,
    *,
    seeds: int = 5,
    examples: int = 1000,
    accuracy: float = 0.85,
    difficulty_sd: float = 2.0,
    seed_sd: float = 0.1,
    rho: float = 0.5,
    worse_by: float = 0.0,
) -> object:
    """One A/A comparison of ``m`` optimizers identical in distribution (module docstring):
    ``examples`` test and validation examples each, ``seeds`` seeds, test accuracy about
    ``accuracy`` (the difficulties' centre), seed effects of standard deviation ``seed_sd``
    on the logit scale, shared with the validation run by ``rho``. ``worse_by``: the last
    optimizer (``opt{m-1}``) truly worse by this much on the logit scale, on the test and the
    validation examples alike (an A/B comparison, for :func:`detection_rate`)."""
    from descentlab.experiments.compare import Comparison, OptimizerResult
    from descentlab.experiments.compare.choices import OptimizerChoice
    from descentlab.experiments.compare.results import SeedCurves
    from descentlab.experiments.compare.stats import estimate

    # the centre at which the mean of sigmoid(a), a ~ N(centre, sd^2), is about `accuracy`
    # (the probit approximation of the logistic-normal mean)
    centre = math.log(accuracy / (1 - accuracy)) * math.sqrt(1 + math.pi * difficulty_sd**2 / 8)
    test_a = rng.normal(centre, difficulty_sd, examples)
    val_a = rng.normal(centre, difficulty_sd, examples)
    spec = _spec(seeds)
    results = []
    for o in range(m):
        delta = rng.normal(0.0, seed_sd, seeds) - (worse_by if o == m - 1 else 0.0)
        shared = rho * delta - (1 - rho) * (worse_by if o == m - 1 else 0.0)
        val_delta = shared + math.sqrt(1 - rho * rho) * rng.normal(0.0, seed_sd, seeds)
        test = rng.random((seeds, examples)) < _sigmoid(test_a[None, :] + delta[:, None])
        val = rng.random((seeds, examples)) < _sigmoid(val_a[None, :] + val_delta[:, None])
        test = test.astype(float)
        r = OptimizerResult(
            choice=OptimizerChoice(label=f"opt{o}", optimizer="sgd"), candidates=[], best=None,
            curve_runs=[None] * seeds, refit_runs=[None] * seeds, test_accuracy=(math.nan,) * 3,
            test_loss=(math.nan,) * 3, steps_to_target=[], seconds_to_target=[],
            final_val_accuracy=list(val.mean(1)), final_val_loss=[], diverged_tuning=0,
            diverged_final=0, setting={"lr": 0.01},
        )  # fmt: skip
        r.test_accuracy_seeds = {s: float(test[s].mean()) for s in range(seeds)}
        r.test_examples = {s: {"accuracy": test[s]} for s in range(seeds)}
        est = estimate(r.test_outcome_values("accuracy"), bounds=(0.0, 1.0))
        r.test_estimates["accuracy"] = est
        r.test_accuracy = est.interval
        r.curves["val/accuracy"] = SeedCurves(
            [(np.array([spec.steps]), np.array([v])) for v in val.mean(1)]
        )
        results.append(r)
    return Comparison(spec, results, "", "classification", "val/accuracy")


@functools.cache
def _spec(seeds: int) -> object:
    from descentlab.experiments.compare import CompareSpec

    return CompareSpec(optimizers=["sgd"], seeds=seeds, steps=100)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def false_worse_rate(m: int, *, sims: int, seed: int, **model: float) -> tuple[float, float]:
    """The fraction of ``sims`` A/A comparisons of ``m`` optimizers (:func:`aa_comparison`,
    ``model`` its keywords) in which some optimizer is called worse than the chosen one (or
    better: any claimed difference is false here), with its Monte-Carlo standard error."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(sims):
        ranking = aa_comparison(rng, m, **model).ranking()  # type: ignore[attr-defined]
        hits += any(x["test"].verdict in ("worse", "better") for x in ranking[1:])
    rate = hits / sims
    return rate, math.sqrt(max(rate * (1 - rate), 1.0 / sims) / sims)


def detection_rate(
    m: int, worse_by: float, *, sims: int, seed: int, **model: float
) -> tuple[float, float]:
    """The power: the fraction of ``sims`` comparisons of ``m`` optimizers, one of them truly
    worse by ``worse_by`` on the logit scale (:func:`aa_comparison`), in which that one is
    called worse, with its Monte-Carlo standard error."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(sims):
        ranking = aa_comparison(rng, m, worse_by=worse_by, **model).ranking()  # type: ignore[attr-defined]
        hits += any(
            x["result"].label == f"opt{m - 1}" and x["test"].verdict == "worse" for x in ranking[1:]
        )
    rate = hits / sims
    return rate, math.sqrt(max(rate * (1 - rate), 1.0 / sims) / sims)
