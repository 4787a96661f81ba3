r"""The verdict checked by simulation through the comparison's own loop: comparisons of M
optimizers whose truth is known are run look by look -- :meth:`~descentlab.experiments.
compare.Comparison.more_seeds` until it is empty, each optimizer it names given the test
seeds it asks for, then :meth:`~descentlab.experiments.compare.Comparison.ranking` -- and
its calls are counted against the truth.

The model (:class:`Scenario`). A test example :math:`i` has a difficulty :math:`a_i \sim
N(c, \tau^2)` (the centre set so that the accuracy is about ``accuracy``), shared by every
run; a run (optimizer :math:`o`, seed :math:`s`) has a seed effect :math:`\delta_{os} \sim
N(0, \sigma_o^2)` and gets example :math:`i` right with probability
:math:`\operatorname{sigmoid}(a_i + b_o + \delta_{os})` (regression: a lognormal loss); the
validation examples are drawn the same way. A run *fails* with probability ``fail[o]``: it
then gets each example right with probability ``failed_accuracy`` (0.45: below the chance
level ``chance`` the comparison judges runs by, as a run that learned nothing is judged),
on the validation set too. The offsets :math:`b_o` keep the optimizers' trained runs equal
in mean (the metric verdict's null), or with ``compensate`` their means *over all seeds*
equal: a failing optimizer then trains slightly better when it trains.

:func:`simulate` runs one comparison; :func:`rates` counts, over many: the family-wise error
of the metric verdict (a call the truth denies: :func:`_false`),
of the failure verdict (an optimizer failing as often as the chosen one called different),
of either, the power (the optimizer made worse called worse), the simultaneous intervals'
coverage of the true differences, and the test seeds run.

Example:
    >>> r = rates(Scenario(3), sims=4, seed=0)
    >>> 0.0 <= r.false <= 1.0 and r.seeds >= 5
    True
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Outcome", "Rates", "Scenario", "rates", "simulate"]

_GH = np.polynomial.hermite_e.hermegauss(40)  # nodes and weights for E[f(N(0, 1))]

#: true pseudo-medians simulated before (:meth:`_World.truth_key`: value), looked up before
#: one is simulated (the tests load theirs: tests/_verdict_truths.py)
KNOWN: dict[str, float] = {}
#: those simulated here (:meth:`_World.pseudo_median`)
COMPUTED: dict[str, float] = {}


@dataclass(frozen=True)
class Scenario:
    """One simulated setting of M optimizers (module docstring).

    Attributes:
        m: optimizers.
        task: ``"classification"`` (per-example 0/1, accuracy about ``accuracy``) or
            ``"regression"`` (per-example losses, lognormal: lower is better).
        seed_sd: the seed effect's standard deviation (logit scale; log scale for a loss).
        noisy: the first optimizer's seed effect is this many times the others' (its mean
            metric kept equal to theirs).
        accuracy: the classification accuracy the difficulties are centred on.
        examples: test and validation examples.
        worse_sd: the last optimizer truly worse by this many seed standard deviations of an
            optimizer's test metric (one seed's; 0: an A/A scenario).
        worse_logit: or by this much on the logit (log) scale.
        fail: each optimizer's chance that a run fails (the first ones; the rest 0).
        failed_accuracy: a failed run's chance of getting an example right.
        compensate: a failing optimizer's trained runs are better, so that its mean over all
            seeds equals the others' (else its trained runs equal theirs).
        chance: the accuracy at or below which a run is judged failed (None: none judged).
        seeds: test seeds at the first look (and curve seeds); looks double to 8 times it.
        bad: the first optimizer's chance that a run is bad but trains (above ``chance``).
        bad_drop: a bad run's accuracy this much below the optimizer's (its per-example
            chances scaled down): the optimizer truly worse by ``bad * bad_drop``.
        seed_df: the seed effects from a Student t with these degrees of freedom (scaled to
            ``seed_sd``; 0: normal).
    """

    m: int
    task: str = "classification"
    seed_sd: float = 0.1
    noisy: float = 1.0
    accuracy: float = 0.85
    examples: int = 1000
    worse_sd: float = 0.0
    worse_logit: float = 0.0
    fail: tuple[float, ...] = ()
    failed_accuracy: float = 0.45
    compensate: bool = False
    chance: float | None = 0.5
    seeds: int = 5
    bad: float = 0.0
    bad_drop: float = 0.0
    seed_df: float = 0.0

    def __post_init__(self) -> None:
        if self.m < 2:
            raise ValueError(f"a scenario needs at least 2 optimizers, got m={self.m}")
        if self.task not in ("classification", "regression"):
            raise ValueError(f"task must be classification or regression, got {self.task!r}")
        if len(self.fail) > self.m or not all(0 <= p < 1 for p in self.fail):
            raise ValueError(f"fail must hold at most m rates in [0, 1), got {self.fail!r}")
        if self.seed_df and self.seed_df <= 2:
            raise ValueError(f"seed_df must be above 2 (a finite sd), got {self.seed_df}")

    def fails(self, o: int) -> float:
        return self.fail[o] if o < len(self.fail) else 0.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def hodges_lehmann_counted(d: np.ndarray) -> float:
    """:func:`~descentlab.experiments.compare.sequential.hodges_lehmann` of ``d`` -- the median
    of its Walsh averages ``(d_i + d_j) / 2``, ``i <= j`` (``inf`` against ``-inf``: 0) --
    found over the distinct values of ``d`` and their counts: the same float, each average
    computed as ``walsh`` computes it, the median's two middle ones averaged as ``np.median``
    averages them. Many seeds take few values (an accuracy's mean over 1,000 examples), so
    the pairs of distinct values are far fewer than the ``k (k + 1) / 2`` averages."""
    if not len(d):
        return math.nan
    u, c = np.unique(np.asarray(d, dtype=float), return_counts=True)
    i, j = np.triu_indices(len(u))
    with np.errstate(invalid="ignore"):
        w = (u[i] + u[j]) / 2
    w = np.where(np.isnan(w), 0.0, w)
    many = np.where(i == j, c[i] * (c[i] + 1) // 2, c[i] * c[j])
    order = np.argsort(w, kind="stable")
    w, upto = w[order], np.cumsum(many[order])
    total = int(upto[-1])

    def at(rank: int) -> float:  # the rank-th (from 0) of the sorted Walsh averages
        return w[int(np.searchsorted(upto, rank, side="right"))]

    if total % 2:
        return float(at(total // 2))
    return float(np.mean([at(total // 2 - 1), at(total // 2)]))


class _World:
    """One simulated problem: example difficulties, each optimizer's offset and seed sd."""

    def __init__(self, rng: np.random.Generator, sc: Scenario) -> None:
        self.sc = sc
        #: the generator's state it was drawn from (with ``sc``: what the world is made of)
        self.drawn_from = repr(rng.bit_generator.state)
        n = sc.examples
        if sc.task == "classification":
            sd = 2.0
            centre = math.log(sc.accuracy / (1 - sc.accuracy)) * math.sqrt(1 + math.pi * sd**2 / 8)
        else:
            sd, centre = 0.5, 0.0
        self.test_a = rng.normal(centre, sd, n)
        self.val_a = rng.normal(centre, sd, n)
        self.nodes = _GH
        if sc.seed_df:  # Student t quantiles at equal weights, scaled to a unit sd
            from scipy import stats as st

            q = st.t.ppf((np.arange(400) + 0.5) / 400, sc.seed_df)
            self.nodes = (q / math.sqrt(sc.seed_df / (sc.seed_df - 2)), np.ones(400))
        self.sds = [sc.seed_sd * (sc.noisy if o == 0 else 1.0) for o in range(sc.m)]
        self._solved: dict[tuple[float, float], float] = {}
        base = self._mean(0.0, sc.seed_sd)
        targets = [base] * sc.m
        if sc.compensate:  # the mean over all seeds equal: the trained runs make up for failures
            targets = [(base - sc.fails(o) * sc.failed_accuracy) / (1 - sc.fails(o))
                       for o in range(sc.m)]  # fmt: skip
        self.offsets = [self._solve(t, s) for t, s in zip(targets, self.sds, strict=True)]
        if sc.worse_sd or sc.worse_logit:
            sign = 1.0 if sc.task == "classification" else -1.0
            if sc.worse_logit:
                self.offsets[-1] -= sign * sc.worse_logit
            else:
                drop = sc.worse_sd * self._seed_sd(self.offsets[-1], sc.seed_sd)
                self.offsets[-1] = self._solve(targets[-1] - sign * drop, self.sds[-1])
        #: each optimizer's true mean test metric over the runs that train
        self.truth = [self._mean(c, s) for c, s in zip(self.offsets, self.sds, strict=True)]
        #: a bad run of the first optimizer: its per-example chances times this
        self.bad_scale = 1.0 - sc.bad_drop / self.truth[0]
        self.truth[0] -= sc.bad * sc.bad_drop

    def _mean(self, c: float, s: float) -> float:
        x, w = self.nodes
        a = self.test_a
        if self.sc.task == "regression":
            return float(np.mean(np.exp(a + c)) * math.exp(s * s / 2) * math.exp(0.125))
        p = _sigmoid(a[None, :] + c + s * x[:, None]).mean(1)
        return float(np.dot(w, p) / w.sum())

    def _seed_sd(self, c: float, s: float) -> float:
        """One seed's standard deviation of the test metric (seed effect and per-example
        noise)."""
        x, w = self.nodes
        w = w / w.sum()
        a = self.test_a
        if self.sc.task == "regression":
            m = np.exp(a + c)
            seed = np.mean(m) ** 2 * math.exp(0.25) * math.exp(s * s) * (math.exp(s * s) - 1)
            ex = np.mean(m * m) * math.exp(2 * s * s) * (math.exp(0.5) - math.exp(0.25))
            return math.sqrt(seed + ex / len(a))
        p = _sigmoid(a[None, :] + c + s * x[:, None])
        means = p.mean(1)
        seed = float(np.dot(w, means**2) - np.dot(w, means) ** 2)
        return math.sqrt(seed + float(np.dot(w, (p * (1 - p)).mean(1))) / len(a))

    def _solve(self, target: float, s: float) -> float:
        """The offset whose mean is ``target`` (solved once per target and sd: the
        optimizers that share both share it)."""
        from scipy import optimize

        if (target, s) not in self._solved:
            solved = optimize.brentq(lambda c: self._mean(c, s) - target, -20.0, 20.0)
            self._solved[target, s] = float(solved)
        return self._solved[target, s]

    def pseudo_median(self, top: int, o: int, k: int = 1500) -> float:
        """The true pseudo-median of ``o``'s deficit against ``top`` on a test seed (positive:
        worse; a failed run the worst a seed can do, as the verdict counts it), the size the
        verdict's signed-rank test is a test of: 0 where the two are drawn alike (their
        difference is then symmetric about 0), else the Hodges-Lehmann estimate over ``k``
        simulated seeds of each (its own seeded generator: the comparison's draws stay as
        they were), looked up in :data:`KNOWN` first."""
        sc = self.sc
        alike = (self.offsets[top] == self.offsets[o] and self.sds[top] == self.sds[o]
                 and sc.fails(top) == sc.fails(o) and not (sc.bad and 0 in (top, o)))  # fmt: skip
        if alike:
            return 0.0
        key = self.truth_key(top, o, k)
        if key in KNOWN:
            return KNOWN[key]
        COMPUTED[key] = self._pseudo_median(top, o, k)
        return COMPUTED[key]

    def truth_key(self, top: int, o: int, k: int) -> str:
        """What :meth:`pseudo_median` of ``o`` against ``top`` is a function of, hashed: the
        scenario, the generator's state the world was drawn from, the pair and ``k`` (a key
        into :data:`KNOWN`). Integers and the scenario's own fields only: no float the world
        computed (an offset solved through ``exp``) whose last bits another CPU's ``exp``
        could move."""
        fields = (self.sc, self.drawn_from, top, o, k)
        return hashlib.blake2b(repr(fields).encode(), digest_size=8).hexdigest()

    def _pseudo_median(self, top: int, o: int, k: int) -> float:
        """:meth:`pseudo_median` simulated."""
        from descentlab.experiments import tuning

        sc = self.sc
        rng = np.random.default_rng([top, o, k])
        cls = sc.task == "classification"
        values = []
        for i in (top, o):
            v = self.runs(rng, i, k, val=False).mean(1)
            # each distinct value judged once (an accuracy takes at most examples + 1 values)
            seen, where = np.unique(v, return_inverse=True)
            bad = np.array([tuning.trial_failure("completed", float(x), maximize=cls,
                                                 chance=sc.chance if cls else None,
                                                 initial_loss=None, final_loss=None)
                            is not None for x in seen], dtype=bool)[where]  # fmt: skip
            values.append(np.where(bad, -np.inf if cls else np.inf, v))
        d = values[0] - values[1] if cls else values[1] - values[0]
        both = np.isinf(values[0]) & np.isinf(values[1])
        return hodges_lehmann_counted(np.where(both, 0.0, d))

    def runs(self, rng: np.random.Generator, o: int, k: int, val: bool) -> np.ndarray:
        """Per-example outcomes ``[k seeds, examples]`` of ``k`` new runs of optimizer ``o``
        on the validation or the test examples (failed runs at ``failed_accuracy``)."""
        a = self.val_a if val else self.test_a
        sc = self.sc
        if sc.seed_df:
            effect = rng.standard_t(sc.seed_df, k) / math.sqrt(sc.seed_df / (sc.seed_df - 2))
        else:
            effect = rng.normal(0.0, 1.0, k)
        x = a[None, :] + self.offsets[o] + self.sds[o] * effect[:, None]
        if sc.task == "regression":
            return np.exp(x + 0.5 * rng.normal(size=x.shape))
        p = _sigmoid(x)
        if o == 0 and sc.bad:
            p[rng.random(k) < sc.bad] *= self.bad_scale
        failed = rng.random(k) < self.sc.fails(o)
        p[failed] = self.sc.failed_accuracy
        return (rng.random(x.shape) < p).astype(float)


@functools.cache
def _spec(seeds: int) -> Any:
    from descentlab.experiments.compare import CompareSpec

    return CompareSpec(optimizers=["sgd"], seeds=seeds, steps=100)


def _add(
    w: _World,
    rng: np.random.Generator,
    r: Any,
    o: int,
    upto: int,
    spec: Any,
    *,
    summed: bool = True,
) -> None:
    """``r`` given test seeds up to ``upto``, judged and summed up as ``collect`` does
    (``summed=False``: not summed up, :func:`_sum_up` left to the caller)."""
    from descentlab.experiments import tuning

    cls = w.sc.task == "classification"
    name = "accuracy" if cls else "loss"
    have = r.test_runs(cls)
    new = spec.test_seeds[have:upto]
    if not new:
        return
    for seed, row in zip(new, w.runs(rng, o, len(new), val=False), strict=True):
        value = float(row.mean())
        chance = w.sc.chance if cls else None
        failure = tuning.trial_failure(
            "completed", value, chance=chance, maximize=cls, initial_loss=None, final_loss=None
        )
        if failure is not None:
            r.test_failures[seed] = failure
        r.test_examples[seed] = {name: row}
        (r.test_accuracy_seeds if cls else r.test_loss_seeds)[seed] = value
    if summed:
        _sum_up(w, r)


def _sum_up(w: _World, r: Any) -> None:
    """``r``'s test estimate from its test seeds, as ``collect`` makes it (the verdict reads
    it in ``ranking()`` only: :func:`simulate` makes it once, before it)."""
    from descentlab.experiments.compare.stats import estimate

    cls = w.sc.task == "classification"
    name = "accuracy" if cls else "loss"
    if r.test_values(cls):
        est = estimate(r.test_outcome_values(name), bounds=(0.0, 1.0 if cls else math.inf))
        r.test_estimates[name] = est
        if cls:
            r.test_accuracy = est.interval
        else:
            r.test_loss = est.interval


def comparison(sc: Scenario, rng: np.random.Generator) -> tuple[Any, _World]:
    """A comparison of the scenario at its first look: curve runs (their validation scores)
    and ``sc.seeds`` test seeds for every optimizer."""
    from descentlab.experiments.compare import Comparison, OptimizerResult
    from descentlab.experiments.compare.choices import OptimizerChoice
    from descentlab.experiments.compare.results import SeedCurves

    w = _World(rng, sc)
    spec = _spec(sc.seeds)
    cls = sc.task == "classification"
    metric = "val/accuracy" if cls else "val/loss"
    results = []
    for o in range(sc.m):
        val = w.runs(rng, o, sc.seeds, val=True).mean(1)
        r = OptimizerResult(
            choice=OptimizerChoice(label=f"opt{o}", optimizer="sgd"), candidates=[], best=None,
            curve_runs=[None] * sc.seeds, refit_runs=[], test_accuracy=(math.nan,) * 3,
            test_loss=(math.nan,) * 3, steps_to_target=[], seconds_to_target=[],
            final_val_accuracy=list(val), final_val_loss=[], diverged_tuning=0,
            diverged_final=0, setting={"lr": 0.01},
        )  # fmt: skip
        r.curves[metric] = SeedCurves([(np.array([spec.steps]), np.array([v])) for v in val])
        _add(w, rng, r, o, sc.seeds, spec)
        results.append(r)
    return Comparison(spec, results, "", sc.task, metric, chance=sc.chance), w


@dataclass(frozen=True)
class Outcome:
    """One simulated comparison (:func:`simulate`), by optimizer index (the chosen one
    absent from the dicts): ``calls`` the metric verdicts, ``fails`` the failure verdicts,
    ``truth`` how much worse each truly is on its trained runs, ``covered`` whether every
    simultaneous interval holds its true difference, ``seeds`` the test seeds each ran,
    ``failed`` the test seeds of each that failed, ``tested`` the size the verdict tests and
    its interval is of (:meth:`_World.pseudo_median`)."""

    chosen: int
    calls: dict[int, str]
    fails: dict[int, str]
    truth: dict[int, float]
    covered: bool
    seeds: list[int]
    failed: list[int] = field(default_factory=list)
    tested: dict[int, float] = field(default_factory=dict)


def simulate(sc: Scenario, rng: np.random.Generator) -> Outcome:
    """One comparison of the scenario, through :meth:`more_seeds` until it is empty, then
    :meth:`ranking`."""
    cmp, w = comparison(sc, rng)
    index = {r.label: o for o, r in enumerate(cmp.results)}
    while want := cmp.more_seeds():
        for label, n in want.items():
            o = index[label]
            _add(w, rng, cmp.results[o], o, n, cmp.spec, summed=False)
    for r in cmp.results:
        _sum_up(w, r)
    ranking = cmp.ranking()
    top = index[ranking[0].result.label]
    sign = 1.0 if sc.task == "classification" else -1.0
    truth = {index[x.result.label]: sign * (w.truth[top] - w.truth[index[x.result.label]])
             for x in ranking[1:]}  # fmt: skip
    # what the verdict tests and prints: the pseudo-median of the seeds' differences (the
    # mean where the choice was made on the test outcomes and the mean's test is printed)
    tested = truth
    if ranking[1].sequential is not None:
        tested = {index[x.result.label]: w.pseudo_median(top, index[x.result.label])
                  for x in ranking[1:]}  # fmt: skip
    covered = all(
        x.interval[1] <= tested[index[x.result.label]] <= x.interval[2] for x in ranking[1:]
    )
    cls = sc.task == "classification"
    return Outcome(
        top,
        {index[x.result.label]: x.verdict for x in ranking[1:]},
        {index[x.result.label]: x.failures.verdict for x in ranking[1:]},
        truth,
        covered,
        [r.test_runs(cls) for r in cmp.results],
        [len(r.test_failures) for r in cmp.results],
        tested,
    )


@dataclass(frozen=True)
class Rates:
    """Rates over many simulated comparisons (:func:`rates`), each with its Monte-Carlo
    standard error: ``false`` (the metric verdict's family-wise error: a call the truth
    denies, :func:`_false`), ``fail_false`` (the failure verdict's:
    an optimizer failing as often as the chosen one called different), ``any_false`` (either),
    ``power`` (the optimizer made worse called worse; NaN without one), ``coverage`` (every
    simultaneous interval holds its true difference), ``unshown`` (an optimizer that fails
    is chosen, another is called worse, and none of its test seeds failed: nothing says it
    is brittle), ``called`` (any comparison called worse or better, whatever the truth: the
    false calls where every optimizer's mean over all its seeds is equal); ``seeds``: the
    mean test seeds per optimizer."""

    false: float
    false_se: float
    fail_false: float
    fail_false_se: float
    any_false: float
    any_false_se: float
    power: float
    power_se: float
    coverage: float
    coverage_se: float
    unshown: float
    unshown_se: float
    called: float
    called_se: float
    seeds: float
    sims: int


def _false(call: str, deficit: float, fails_more: float) -> bool:
    """A metric call the truth denies: the verdict counts a failed seed as the worst a seed
    can do, so an optimizer is truly worse where its trained runs are worse (``deficit`` >
    0) or it fails more often, and neither is better; equal in both, no call is right. Where
    the two disagree (trained runs better, failing more often) either call may be right."""
    d = 0.0 if abs(deficit) < 1e-12 else deficit
    if call == "worse":
        return d <= 0 and fails_more <= 0
    return call == "better" and d >= 0 and fails_more >= 0


def rates(sc: Scenario, *, sims: int, seed: int) -> Rates:
    """:func:`simulate` ``sims`` times (seeded) and count."""
    rng = np.random.default_rng(seed)
    worse = sc.worse_sd > 0 or sc.worse_logit > 0
    n = dict.fromkeys(("false", "fail", "any", "power", "covered", "unshown", "called"), 0)
    seeds = 0.0
    for _ in range(sims):
        out = simulate(sc, rng)
        metric = any(
            _false(out.calls[o], d, sc.fails(o) - sc.fails(out.chosen))
            for o, d in out.truth.items()
        )
        fail = any(
            out.fails[o] not in ("", "not shown different")
            for o in out.fails
            if sc.fails(o) == sc.fails(out.chosen)
        )
        n["false"] += metric
        n["fail"] += fail
        n["any"] += metric or fail
        n["power"] += worse and out.calls.get(sc.m - 1) == "worse"
        n["covered"] += out.covered
        n["called"] += any(v in ("worse", "better") for v in out.calls.values())
        n["unshown"] += (
            sc.fails(out.chosen) > 0
            and "worse" in out.calls.values()
            and not out.failed[out.chosen]
        )
        seeds += float(np.mean(out.seeds))

    def rate(k: int) -> tuple[float, float]:
        p = k / sims
        return p, math.sqrt(max(p * (1 - p), 1.0 / sims) / sims)

    power = rate(n["power"]) if worse else (math.nan, math.nan)
    counts = [*rate(n["false"]), *rate(n["fail"]), *rate(n["any"]), *power]
    counts += [*rate(n["covered"]), *rate(n["unshown"]), *rate(n["called"])]
    return Rates(*counts, seeds / sims, sims)
