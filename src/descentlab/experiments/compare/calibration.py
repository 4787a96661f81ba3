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
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Outcome",
    "Rates",
    "Scenario",
    "aa_comparison",
    "detection_rate",
    "false_worse_rate",
    "rates",
    "simulate",
]


def aa_comparison(
    rng: np.random.Generator,
    m: int,
    *,
    seeds: int = 5,
    examples: int = 1000,
    accuracy: float = 0.85,
    difficulty_sd: float = 2.0,
    seed_sd: float = 0.1,
    rho: float = 0.0,
    worse_by: float = 0.0,
) -> object:
    """One A/A comparison of ``m`` optimizers identical in distribution (module docstring):
    ``examples`` test and validation examples each, ``seeds`` seeds, test accuracy about
    ``accuracy`` (the difficulties' centre), seed effects of standard deviation ``seed_sd``
    on the logit scale, shared with the validation run by ``rho`` (0: the test on other seeds
    than the choice, as :func:`~descentlab.experiments.compare.compare` runs it; the test
    outcomes are keyed by its test seeds). ``worse_by``: the last
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
        keys = spec.test_seeds[:seeds]
        r.test_accuracy_seeds = {k: float(test[s].mean()) for s, k in enumerate(keys)}
        r.test_examples = {k: {"accuracy": test[s]} for s, k in enumerate(keys)}
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

    return CompareSpec(optimizers=["sgd"], seeds=seeds, steps=100, max_seeds=max(seeds, 2))


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


# -- the protocols side by side, in every scenario ------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One simulated setting of M optimizers (:func:`simulate`).

    Attributes:
        m: optimizers.
        task: ``"classification"`` (per-example 0/1, accuracy about ``accuracy``) or
            ``"regression"`` (per-example losses, lognormal: lower is better).
        seed_sd: the seed effect's standard deviation (logit scale; log scale for a loss).
        rho: how much of a seed's luck its curve run (validation) shares with the refit run
            of the same seed (only the fixed protocol pairs them: the sequential one tests on
            other seeds).
        noisy: the first optimizer's seed effect is this many times the others' (its mean
            metric kept equal to theirs).
        accuracy: the classification accuracy the difficulties are centred on.
        examples: test and validation examples.
        worse_sd: the last optimizer truly worse by this many seed standard deviations of an
            optimizer's test metric (one seed's; 0: an A/A scenario).
        worse_logit: or by this much on the logit (log) scale.
    """

    m: int
    task: str = "classification"
    seed_sd: float = 0.1
    rho: float = 0.5
    noisy: float = 1.0
    accuracy: float = 0.85
    examples: int = 1000
    worse_sd: float = 0.0
    worse_logit: float = 0.0

    def __post_init__(self) -> None:
        if self.m < 2:
            raise ValueError(f"a scenario needs at least 2 optimizers, got m={self.m}")
        if self.task not in ("classification", "regression"):
            raise ValueError(f"task must be classification or regression, got {self.task!r}")


_GH = np.polynomial.hermite_e.hermegauss(40)  # nodes and weights for E[f(N(0, 1))]


class _World:
    """One simulated problem: example difficulties, each optimizer's offset and seed sd."""

    def __init__(self, rng: np.random.Generator, sc: Scenario) -> None:
        self.sc = sc
        n = sc.examples
        if sc.task == "classification":
            sd = 2.0
            centre = math.log(sc.accuracy / (1 - sc.accuracy)) * math.sqrt(1 + math.pi * sd**2 / 8)
        else:
            sd, centre = 0.5, 0.0
        self.test_a = rng.normal(centre, sd, n)
        self.val_a = rng.normal(centre, sd, n)
        self.sds = [sc.seed_sd * (sc.noisy if o == 0 else 1.0) for o in range(sc.m)]
        # offsets that keep every optimizer's mean metric equal whatever its seed sd
        base = self._mean(self.test_a, 0.0, sc.seed_sd)
        self.offsets = [self._solve(self.test_a, base, s) for s in self.sds]
        self.metric_sd = self._seed_sd(self.test_a, self.offsets[-1], sc.seed_sd)
        if sc.worse_sd or sc.worse_logit:
            drop = sc.worse_sd * self.metric_sd
            if sc.worse_logit:
                shift = sc.worse_logit if sc.task == "classification" else -sc.worse_logit
                self.offsets[-1] -= shift
            else:
                sign = 1.0 if sc.task == "classification" else -1.0
                self.offsets[-1] = self._solve(self.test_a, base - sign * drop, self.sds[-1])
        self.truth = [
            self._mean(self.test_a, c, s) for c, s in zip(self.offsets, self.sds, strict=True)
        ]

    def _mean(self, a: np.ndarray, c: float, s: float) -> float:
        x, w = _GH
        if self.sc.task == "regression":
            return float(np.mean(np.exp(a + c)) * math.exp(s * s / 2) * math.exp(0.125))
        p = _sigmoid(a[None, :] + c + s * x[:, None]).mean(1)
        return float(np.dot(w, p) / w.sum())

    def _seed_sd(self, a: np.ndarray, c: float, s: float) -> float:
        """One seed's standard deviation of the test metric (seed effect and per-example
        noise)."""
        x, w = _GH
        w = w / w.sum()
        if self.sc.task == "regression":
            m = np.exp(a + c)
            seed = np.mean(m) ** 2 * math.exp(0.25) * math.exp(s * s) * (math.exp(s * s) - 1)
            ex = np.mean(m * m) * math.exp(2 * s * s) * (math.exp(0.5) - math.exp(0.25))
            return math.sqrt(seed + ex / len(a))
        p = _sigmoid(a[None, :] + c + s * x[:, None])
        means = p.mean(1)
        seed = float(np.dot(w, means**2) - np.dot(w, means) ** 2)
        ex = float(np.dot(w, (p * (1 - p)).mean(1))) / len(a)
        return math.sqrt(seed + ex)

    def _solve(self, a: np.ndarray, target: float, s: float) -> float:
        from scipy import optimize

        return float(optimize.brentq(lambda c: self._mean(a, c, s) - target, -20.0, 20.0))

    def outcomes(
        self, rng: np.random.Generator, o: int, delta: np.ndarray, val: bool
    ) -> np.ndarray:
        """Per-example outcomes ``[seeds, examples]`` of optimizer ``o`` with seed effects
        ``delta`` on the validation or the test examples."""
        a = self.val_a if val else self.test_a
        x = a[None, :] + self.offsets[o] + delta[:, None]
        if self.sc.task == "regression":
            return np.exp(x + 0.5 * rng.normal(size=x.shape))
        return (rng.random(x.shape) < _sigmoid(x)).astype(float)


@dataclass(frozen=True)
class Outcome:
    """One simulated comparison's verdicts (:func:`simulate`): ``calls`` by optimizer index
    (``"worse"``, ``"better"``, ...; the chosen one absent), ``chosen`` its index and ``seeds``
    the test seeds each optimizer was run with."""

    chosen: int
    calls: dict[int, str]
    seeds: list[int]


def simulate(
    sc: Scenario, rng: np.random.Generator, *, protocol: str, looks: tuple[int, ...] = (5,)
) -> Outcome:
    """One comparison of the scenario through a protocol: ``"fixed"`` (5 seeds shared by the
    curve and the refit runs, Holm over every pair: :func:`~descentlab.experiments.compare.
    stats.with_best`) or ``"sequential"`` (the choice on curve seeds, the test on disjoint
    seeds added look by look: :func:`~descentlab.experiments.compare.sequential.look`)."""
    from descentlab.experiments.compare import sequential, stats

    w = _World(rng, sc)
    cls = sc.task == "classification"
    k = looks[0]
    val_delta = [rng.normal(0.0, s, k) for s in w.sds]
    if protocol == "fixed":
        test_delta = [
            sc.rho * v + math.sqrt(1 - sc.rho**2) * rng.normal(0.0, s, k)
            for v, s in zip(val_delta, w.sds, strict=True)
        ]
    elif protocol == "sequential":
        test_delta = [rng.normal(0.0, s, k) for s in w.sds]
    else:
        raise ValueError(f"protocol must be 'fixed' or 'sequential', got {protocol!r}")
    val = [w.outcomes(rng, o, val_delta[o], True).mean(1).mean() for o in range(sc.m)]
    chosen = int(np.argmax(val) if cls else np.argmin(val))
    tests = [w.outcomes(rng, o, test_delta[o], False) for o in range(sc.m)]
    others = [o for o in range(sc.m) if o != chosen]

    def values(o: int) -> dict[int, np.ndarray]:
        return {s: tests[o][s] for s in range(len(tests[o]))}

    if protocol == "fixed":
        family = sc.m * (sc.m - 1) // 2
        got = stats.with_best(values(chosen), [values(o) for o in others], maximize=cls,
                              family=family)  # fmt: skip
        return Outcome(chosen, {o: t.verdict for o, t in zip(others, got, strict=True)}, [k] * sc.m)
    while True:
        r = sequential.look(values(chosen), [values(o) for o in others], maximize=cls,
                            looks=looks)  # fmt: skip
        if not r.open:
            break
        for o in [chosen, *(others[i] for i in r.open)]:
            more = r.next_seeds - len(tests[o])
            if more > 0:
                extra = w.outcomes(rng, o, rng.normal(0.0, w.sds[o], more), False)
                tests[o] = np.vstack([tests[o], extra])
    return Outcome(
        chosen,
        {o: t.verdict for o, t in zip(others, r.tests, strict=True)},
        [len(t) for t in tests],
    )


@dataclass(frozen=True)
class Rates:
    """A protocol's rates over many simulated comparisons: ``false`` (the family-wise error:
    some optimizer as good as the chosen one called worse or better), ``power`` (the truly
    worse one called worse; NaN in an A/A scenario), each with its Monte-Carlo standard
    error, and ``seeds``: the mean test seeds per optimizer."""

    false: float
    false_se: float
    power: float
    power_se: float
    seeds: float
    sims: int


def rates(
    sc: Scenario, *, protocol: str, sims: int, seed: int, looks: tuple[int, ...] = (5,)
) -> Rates:
    """:func:`simulate` ``sims`` times (seeded) and count."""
    rng = np.random.default_rng(seed)
    false = power = 0
    seeds = 0.0
    worse = sc.worse_sd > 0 or sc.worse_logit > 0
    for _ in range(sims):
        out = simulate(sc, rng, protocol=protocol, looks=looks)
        nulls = [o for o in out.calls if not (worse and o == sc.m - 1)]
        if worse and out.chosen == sc.m - 1:
            nulls = []  # the worse one was chosen: every other is truly better, none is null
        false += any(out.calls[o] in ("worse", "better") for o in nulls)
        power += worse and out.calls.get(sc.m - 1) == "worse"
        seeds += float(np.mean(out.seeds))

    def se(p: float) -> float:
        return math.sqrt(max(p * (1 - p), 1.0 / sims) / sims)

    f, p = false / sims, (power / sims if worse else math.nan)
    return Rates(f, se(f), p, se(p) if worse else math.nan, seeds / sims, sims)
