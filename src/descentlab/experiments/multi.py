r"""Several problems at once: the comparison protocol on each, and AlgoPerf's view across them.

:func:`compare_many` runs :func:`~descentlab.experiments.compare.compare` on every problem
(each in its own run directory, with its own report) and summarises across problems: a rank
table of final test metrics, each run's own time to the problem's validation target (its
own, else its fixed stored one, :mod:`descentlab.problems.targets`, else one measured by
reference runs, :mod:`descentlab.experiments.reference`, else 95% of the way to the best
result), Dolan-Moré performance profiles and AlgoPerf's benchmark score on those times
(:mod:`descentlab.experiments.compare.scoring`). The suite, its targets, budgets and held-out
variants: docs/compare.md ("Several problems").

References:
    Dolan & Moré, "Benchmarking optimization software with performance profiles",
    Mathematical Programming 91, 2002.
    Dahl et al., "Benchmarking neural network training algorithms" (AlgoPerf), 2023,
    https://arxiv.org/abs/2306.07179.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import textwrap
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from descentlab.experiments import reference, tuning
from descentlab.experiments.compare import CompareSpec, compare
from descentlab.experiments.compare.scoring import (  # (their home: the report reads them)
    SCORE_MAX_RATIO,
    benchmark_score,
    performance_profile,
    rank_table,
    wins,
)
from descentlab.experiments.compare.search_space import DEFAULT_BUDGET, QUASIRANDOM, budget_line
from descentlab.problems import targets
from descentlab.problems.problem import is_problem_ref, problem_slug, resolve_for_compare
from descentlab.store import Store

__all__ = [
    "DEFAULT_SUITE",
    "SCORE_MAX_RATIO",
    "SUITE_PROTOCOL",
    "SUITE_SETTINGS",
    "MultiComparison",
    "benchmark_score",
    "compare_many",
    "expand_problems",
    "performance_profile",
    "rank_table",
    "wins",
]


# ------------------------------------------------------------------------------------------
# Held-out variants of a workload: the AlgoPerf guard against optimizers tuned to one setting.
# AlgoPerf (Dahl et al. 2023, section 4.2) scores submissions also on randomized variants of
# its workloads. NAME~SEED (digits~1) is a problem of its own whose seed chooses and values
# one change: the model's width, its activation, or a seeded subset of its data (what each
# problem's variants are: docs/compare.md). Its target is set relative to the comparison.

#: Between a problem's name and its variant's seed: ``digits~3``.
SEPARATOR = "~"

#: Per problem, where its model's options are, for the model it must have: ``(model, field,
#: width option, its default)`` (``model`` None: the problem's default model). The same
#: ``field`` takes ``activation``.
MODEL_KNOBS: dict[str, tuple[str | None, str, str, int]] = {
    "mnist1d": (None, "model_options", "channels", 25),
    "digits": ("mlp", "model_options", "hidden", 100),
    "charlm": (None, "problem_options", "d_model", 64),
}

#: The activations a variant puts in place of the models' ReLU.
ACTIVATION_CHOICES: tuple[str, ...] = ("tanh", "gelu", "silu")

#: The fraction of the training (and of the validation) examples a data variant keeps.
SUBSET = 0.75

_MAX_SEED = 2**31 - 1


def parse_variant(item: str) -> tuple[str, int] | None:
    """``(name, seed)`` of ``"NAME~SEED"``; None for a plain name.

    Example:
        >>> parse_variant("digits~3"), parse_variant("digits")
        (('digits', 3), None)

    Raises:
        ValueError: a seed that is not a non-negative integer, or no name.
    """
    if SEPARATOR not in item:
        return None
    name, _, seed = item.rpartition(SEPARATOR)
    name, seed = name.strip(), seed.strip()
    if not name or not seed.isdigit() or int(seed) > _MAX_SEED:
        raise ValueError(
            f"problems: a variant is NAME~SEED with SEED an integer in 0..{_MAX_SEED}, got {item!r}"
        )
    return name, int(seed)


def variant_fields(name: str, seed: int, fields: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The spec ``fields`` of problem ``name`` changed into its variant ``seed``, and what
    changed in words. The same ``(name, seed)`` always gives the same variant."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in fields.items()}
    knobs = MODEL_KNOBS.get(name)
    has_model = knobs is not None and out.get("model") == knobs[0]
    kinds = ["width", "activation", "data"] if has_model else ["data"]
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind != "data":
        _, where, option, default = knobs  # type: ignore[misc]
        options = dict(out.get(where) or {})
        if kind == "width":
            old = int(options.get(option, default))
            factor = (0.5, 2.0)[int(rng.integers(2))]
            new = max(1, round(old * factor))
            if option == "d_model":  # the transformer's heads must divide its width
                new = max(4, new - new % 4)
        else:
            option, old = "activation", options.get("activation", "relu")
            new = str(rng.choice([a for a in ACTIVATION_CHOICES if a != old]))
        options[option] = new
        out[where] = options
        what = f"{option} {old}" if kind == "width" else old
        return out, f"{kind}: {what} -> {new}"
    options = dict(out.get("problem_options") or {})
    if name == "charlm":  # a problem object with its own fixed split: a subset of its corpus
        old = int(options.get("n_chars", 200_000))
        options["n_chars"] = max(10_000, round(old * SUBSET))
        out["problem_options"] = options
        return out, f"data subset: n_chars {old} -> {options['n_chars']}"
    subset_seed = int(rng.integers(1, 100_000))
    options.update(train_subset=SUBSET, subset_seed=subset_seed)
    out["problem_options"] = options
    return out, (
        f"data subset: {SUBSET:.0%} of the training and validation examples (subset seed "
        f"{subset_seed}), the same test set"
    )


#: The problems of ``--problems default``.
DEFAULT_SUITE: tuple[str, ...] = ("mnist1d", "digits", "quadratic_deep", "charlm")

#: Per-problem settings of the suite (overridden by settings given for all problems): short
#: budgets, so that the 4-problem default suite ends within 10 minutes on 2 cores.
SUITE_SETTINGS: dict[str, dict[str, Any]] = {
    "mnist1d": {"batch_size": 128, "steps": 400, "tune_steps": 400},
    "digits": {"model": "mlp", "batch_size": 64, "steps": 300, "tune_steps": 300},
    "quadratic_deep": {"batch_size": 128, "steps": 200, "tune_steps": 200},
    "charlm": {
        "problem_options": {"n_chars": 60_000, "context": 32, "d_model": 32},
        "batch_size": 32,
        "steps": 250,
        "tune_steps": 250,
    },
    # not in the default suite: ResNet-20 on 32x32 images (docs/data-and-models.md: 40
    # steps left every optimizer near chance; 200/400 is the measured comparison's setting)
    "digits32": {"model": "resnet20", "batch_size": 32, "steps": 400, "tune_steps": 200},
}

#: Settings with a stored target beside the suite's own (``scripts/measure_targets.py``):
#: ``PROBLEM/MODEL`` -> the suite's settings of PROBLEM with these fields changed.
TARGET_SETTINGS: dict[str, dict[str, Any]] = {
    "charlm/gpt": {"model": "gpt", "model_options": {"d_model": 32}},
}

#: The tuning protocol of a suite unless told otherwise: AlgoPerf's external tuning, equal
#: declared budgets of :data:`~descentlab.experiments.compare.search_space.DEFAULT_BUDGET`
#: quasi-random trials per optimizer, each scored over 2 seeds (the mean).
SUITE_PROTOCOL: dict[str, Any] = {
    "search": QUASIRANDOM,
    "lrs_per_optimizer": DEFAULT_BUDGET,
    "tune_seeds": 2,
}

#: The optimizers a suite compares unless told otherwise (the adaptive/non-adaptive contrast).
SUITE_OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "rmsprop", "adam")

_AUTO_FRACTION = 0.95


def expand_problems(problems: str | Sequence[Any]) -> list[Any]:
    """``"default"`` or ``"a,b,c"`` (or a list, possibly holding ``Problem`` objects) -> a
    list of problems, duplicates refused.

    Example:
        >>> expand_problems("default")
        ['mnist1d', 'digits', 'quadratic_deep', 'charlm']
        >>> expand_problems("digits, moons")
        ['digits', 'moons']
    """
    if isinstance(problems, str):
        items: list[Any] = [p.strip() for p in problems.split(",") if p.strip()]
    else:
        items = list(problems)
    out: list[Any] = []
    for p in items:
        v = parse_variant(p) if isinstance(p, str) else None
        if v is not None and v[0] == "default":  # a variant of each default problem
            out.extend(f"{name}{SEPARATOR}{v[1]}" for name in DEFAULT_SUITE)
        else:
            out.extend(DEFAULT_SUITE if p == "default" else [p])
    if not out:
        raise ValueError(f"problems must name at least one problem, got {problems!r}")
    names = [p if isinstance(p, str) else getattr(p, "name", repr(p)) for p in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"problems must be distinct, got {dup} more than once")
    return out


# ------------------------------------------------------------------------------------------
# running


@dataclass
class ProblemSummary:
    """One problem's numbers in the multi-problem view."""

    name: str
    comparison: Any
    metric: str  # accuracy / loss / rmse
    maximize: bool
    target: float | None
    # "given" (the problem's own), "fixed" (stored, measured by reference runs), "measured"
    # (by reference runs for this comparison, --measure-targets) or "auto"
    target_kind: str
    final: list[float]  # per optimizer, mean final test metric (NaN: none)
    steps_to_target: list[float]  # per optimizer, median over seeds (inf: not reached)
    error: str | None = None
    seconds: list[float] = field(default_factory=list)  # per optimizer, like steps_to_target
    clocks: list[str] = field(default_factory=list)  # the clocks its runs were timed with
    test_target: float | None = None  # the fixed test target (None: none stored)
    target_note: str | None = None  # why a stored target does not apply here


@dataclass
class MultiComparison:
    """The outcome of :func:`compare_many`."""

    labels: list[str]
    displays: list[str]
    problems: list[ProblemSummary]
    run_dir: Path
    settings: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, str] = field(default_factory=dict)  # a variant's name -> what changed

    @property
    def report_path(self) -> Path:
        return self.run_dir / "report.html"

    def times(self) -> np.ndarray:
        """``(problems, optimizers)`` steps to target (inf: not reached)."""
        return np.array([p.steps_to_target for p in self.problems], dtype=float)

    def ranks(self) -> np.ndarray:
        scores = np.array([p.final for p in self.problems], dtype=float)
        return rank_table(scores, [p.maximize for p in self.problems])

    def seconds(self) -> np.ndarray:
        """``(problems, optimizers)`` each run's own seconds to target (inf: not reached;
        NaN: reached by runs whose time was not measured, recorded before per-run timing)."""
        return np.array(
            [p.seconds or [math.nan] * len(self.labels) for p in self.problems], dtype=float
        )

    def time_score(self) -> np.ndarray | None:
        """AlgoPerf's benchmark score on seconds to target (None: some run's time was not
        measured)."""
        secs = self.seconds()
        return None if np.isnan(secs).any() else benchmark_score(secs)

    def step_score(self) -> np.ndarray:
        """The same score on steps to target (deterministic; a costlier step is free)."""
        return benchmark_score(self.times())

    def targets_table(self) -> str:
        """Time to each problem's validation target, in steps and wall-clock seconds, under
        the problem's step budget (what ``descentlab compare --problems`` prints second)."""
        head = ["time to validation target", *self.displays]
        lines = [head]
        secs = self.seconds()
        for i, p in enumerate(self.problems):
            if p.target is None:
                lines.append([f"{p.name}: no target", *("-" for _ in self.labels)])
                continue
            sign = ">=" if p.maximize else "<="
            budget = p.comparison.spec.steps
            row = [f"{p.name}: {p.metric} {sign} {p.target:.4g} ({p.target_kind}), {budget} steps"]
            for j in range(len(self.labels)):
                st, sc = p.steps_to_target[j], secs[i, j]
                if not math.isfinite(st):
                    row.append("not reached")
                else:
                    row.append(f"{st:.0f} / {sc:.2f} s" if math.isfinite(sc) else f"{st:.0f} / -")
            lines.append(row)
        out = _aligned(lines)
        out += textwrap.wrap(
            "(steps / seconds: median over the curve seeds; seconds: each run's own forward/"
            f"backward and optimizer time, {self.clock_words()}; a run of a vectorized pass is "
            "charged an equal share of the shared forward/backward pass and its own optimizer's "
            "step; fixed targets: measured by reference runs, scripts/measure_targets.py)",
            width=100,
        )
        notes = [p.target_note for p in self.problems if p.target_note]
        out += [
            f"note: {n}: its target is relative to this comparison (auto; --measure-targets "
            "measures one by reference runs)"
            for n in notes
        ]
        out += [f"variant {k}: {v}" for k, v in self.variants.items()]
        return "\n".join(out)

    def budget_lines(self) -> list[str]:
        """The tuning budget of the suite, one line per distinct protocol (the trials' steps
        per problem)."""
        lines: dict[str, list[str]] = {}
        for p in self.problems:
            spec = p.comparison.spec
            tuned = [c for c in spec.choices() if not c.fixed_lr]
            key = budget_line(spec, tuned, steps="@")
            lines.setdefault(key, []).append(f"{p.name} {spec.tune_length}")
        return [k.replace("@", "steps per trial: " + ", ".join(v)) for k, v in lines.items()]

    def verdict_lines(self) -> list[str]:
        """Each problem's verdict, as its own comparison says it (the recommendation's first
        line), and the test seeds each optimizer got there and why (the sequential design's
        looks): what ``descentlab compare --problems`` prints under the rank table."""
        out = []
        for p in self.problems:
            cmp = p.comparison
            ranking = cmp.ranking()
            out.append(f"{p.name}: {cmp.headline(ranking)}")
            seeds = cmp.seed_lines(ranking)
            if seeds:
                out.append(f"  {p.name} test seeds: " + "; ".join(seeds))
        return out

    def table(self) -> str:
        """The rank table as aligned text (what ``descentlab compare --problems`` prints)."""
        ranks = self.ranks()
        head = ["problem (metric)", *self.displays]
        lines = [head]
        for i, p in enumerate(self.problems):
            row = [f"{p.name} ({p.metric})"]
            for j in range(len(self.labels)):
                v = p.final[j]
                row.append("-" if math.isnan(v) else f"{v:.3f} #{ranks[i, j]:g}")
            lines.append(row)
        lines.append(["mean rank", *(f"{m:.2f}" for m in ranks.mean(axis=0))])
        timed = self.time_score()
        if timed is not None:
            lines.append(["wins (seconds to target)", *(f"{v:.0%}" for v in wins(self.seconds()))])
        lines.append(
            [
                f"AlgoPerf score, seconds (r<={SCORE_MAX_RATIO:g})",
                *("-" if timed is None else f"{v:.3f}" for v in (timed if timed is not None
                                                                  else self.labels)),
            ]
        )  # fmt: skip
        lines.append(
            [
                f"score in steps (r<={SCORE_MAX_RATIO:g})",
                *(f"{v:.3f}" for v in self.step_score()),
            ]
        )
        out = _aligned(lines)
        if timed is None:
            out.append(
                "(no seconds score: some runs were recorded before per-run timing; train them "
                "again in a new runs folder)"
            )
        return "\n".join(out)

    def clock_words(self) -> str:
        """The clocks the runs' times were measured with, in words."""
        kinds: list[str] = []
        for p in self.problems:
            for kind in p.clocks:
                if kind not in kinds:
                    kinds.append(kind)
        return " and ".join(kinds) if kinds else "not measured"


def _aligned(lines: list[list[str]]) -> list[str]:
    """Rows of cells as aligned text: the first column left, the others right, a rule under
    the header row."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for k, line in enumerate(lines):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def _problem_name(problem: Any) -> str:
    if isinstance(problem, str) and parse_variant(problem) is not None:
        return problem
    if isinstance(problem, str):
        return (
            problem_slug(problem)
            if is_problem_ref(problem) and problem not in SUITE_SETTINGS
            else problem
        )
    return str(getattr(problem, "name", problem))


def _spec_for(problem: Any, settings: Mapping[str, Any]) -> Any:
    key = problem if isinstance(problem, str) else None
    variant = parse_variant(key) if key is not None else None
    if variant is not None:  # NAME~SEED: the suite's settings of NAME, then its variant
        base = _spec_for(variant[0], settings)
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
        changed, _ = variant_fields(variant[0], variant[1], fields)
        return CompareSpec(**changed)
    fields: dict[str, Any] = {"optimizers": SUITE_OPTIMIZERS, "landscapes": (), **SUITE_PROTOCOL}
    if settings.get("search", QUASIRANDOM) != QUASIRANDOM:  # another search: its own count
        fields.pop("lrs_per_optimizer")
    fields.update(SUITE_SETTINGS.get(key or "", {}))
    fields.update(settings)
    if key is not None:
        fields["problem"] = key
    return CompareSpec(**fields)


def compare_many(
    problems: str | Sequence[Any],
    runs_dir: str | os.PathLike[str] = "runs",
    *,
    settings: Mapping[str, Any] | None = None,
    workers: int | None = None,
    threads: int = 1,
    progress: Any = None,
    vectorize: bool = True,
    measure_targets: bool = False,
    checkpoint_every: int | str | None = "auto",
) -> MultiComparison:
    """Compare the same optimizers on several problems; return the multi-problem view (write
    its report with :func:`descentlab.report.profiles.render_multi_report`).

    Args:
        problems: ``"default"``, ``"mnist1d,digits,..."`` or a list of dataset names,
            built-in problems (``charlm``), references (``pkg.mod:fn``, ``file.py:fn``) and
            :class:`~descentlab.problems.problem.Problem` objects.
        runs_dir: where every problem's run directory and the suite's directory
            (``suite-<hash>``, holding ``report.html``) go.
        settings: :class:`~descentlab.experiments.compare.CompareSpec` fields for every
            problem (optimizers, lrs_per_optimizer, seeds...); they override the suite's per-problem
            settings (:data:`SUITE_SETTINGS`). Default optimizers: :data:`SUITE_OPTIMIZERS`.
        workers, threads, progress, vectorize, checkpoint_every: as for
            :func:`~descentlab.experiments.compare.compare`.
        measure_targets: a problem with no target of its own and none stored gets one from
            its reference comparison (:func:`~descentlab.experiments.reference.measure_target`,
            run once in ``runs_dir``: found again, not trained again, the next time) instead
            of a target relative to the compared optimizers.

    Returns:
        The :class:`MultiComparison`.

    Raises:
        ValueError, KeyError: a bad problem or setting (every spec is checked before any
            training).
    """
    settings = dict(settings or {})
    items = expand_problems(problems)
    specs = [_spec_for(p, settings) for p in items]
    variants = _variant_notes(items, settings)
    for spec, p in zip(specs, items, strict=True):
        own = not isinstance(p, str) or is_problem_ref(p)
        spec.validate(custom_data=own)
        if own:  # load and check every problem of your own before any training
            resolve_for_compare(spec, None if isinstance(p, str) else p)
    choices = specs[0].choices()
    labels = [c.label for c in choices]
    summaries: list[ProblemSummary] = []
    for spec, p in zip(specs, items, strict=True):
        cmp = compare(
            spec,
            runs_dir,
            workers=workers,
            threads=threads,
            progress=progress,
            problem=None if isinstance(p, str) else p,
            vectorize=vectorize,
            checkpoint_every=checkpoint_every,
        )
        name = _problem_name(p)
        measured = None
        own = _given_target(cmp) is not None or targets.target_for(name, spec.to_dict())[0]
        if measure_targets and not own:
            measured = reference.measure_target(
                name, spec, runs_dir, workers=workers, progress=progress,
                problem=None if isinstance(p, str) else p,
            )  # fmt: skip
        summaries.append(_summarise(name, cmp, measured))
    digest = hashlib.sha256("|".join(f"{s.run_name()}" for s in specs).encode()).hexdigest()[:8]
    run_dir = Path(runs_dir) / f"suite-{digest}"
    return MultiComparison(
        labels=labels,
        displays=[c.display for c in choices],
        problems=summaries,
        run_dir=run_dir,
        settings=settings,
        variants=variants,
    )


def _variant_notes(items: Sequence[Any], settings: Mapping[str, Any]) -> dict[str, str]:
    """What each held-out variant among ``items`` changes, in words."""
    out = {}
    for p in items:
        v = parse_variant(p) if isinstance(p, str) else None
        if v is not None:
            spec = _spec_for(v[0], settings)
            base = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
            out[p] = f"a variant of {v[0]}, {variant_fields(v[0], v[1], base)[1]}"
    return out


def _summarise(name: str, cmp: Any, measured: targets.Target | None = None) -> ProblemSummary:
    """Final test metrics and times to target of one problem (from its comparison's values:
    the refit runs' test metric by seed, the curve runs' validation curves and clocks)."""
    key = cmp.select_metric.split("/", 1)[1]
    maximize = key == "accuracy"
    finals: list[float] = []
    curves: list[list[tuple[np.ndarray, np.ndarray]]] = []
    for r in cmp.results:
        by_seed = {"accuracy": r.test_accuracy_seeds, "loss": r.test_loss_seeds,
                   "rmse": r.test_rmse_seeds}[key]  # fmt: skip
        vals = [v for v in by_seed.values() if math.isfinite(v)]
        finals.append(float(np.mean(vals)) if vals else math.nan)
        got = r.curves.get(f"val/{key}")
        curves.append([] if got is None else list(got.runs))
    given = _given_target(cmp)
    fixed, why_not = targets.target_for(name, cmp.spec.to_dict())
    if given is not None:
        target, kind, test_target = given, "given", None
    elif measured is not None and measured.metric == key:
        target, kind, test_target = measured.validation, "measured", measured.test
    elif fixed is not None and fixed.metric == key:
        target, kind, test_target = fixed.validation, "fixed", fixed.test
    else:
        target, kind, test_target = _auto_target(curves, maximize), "auto", None
    steps, seconds, clocks = _times_to_target(cmp, key, target, maximize)
    return ProblemSummary(
        name, cmp, key, maximize, target, kind, finals, steps, seconds=seconds, clocks=clocks,
        test_target=test_target, target_note=None if kind != "auto" else why_not,
    )  # fmt: skip


def _times_to_target(
    cmp: Any, key: str, target: float | None, maximize: bool
) -> tuple[list[float], list[float], list[str]]:
    """Per optimizer, the median over the curve runs of the steps and of the run's own
    seconds (``progress/train_time``: its forward/backward and optimizer time) to ``target``
    (inf: not reached within the run's steps; NaN seconds: a run recorded without its own
    time); and the clocks the times were measured with."""
    steps: list[float] = []
    seconds: list[float] = []
    clocks: list[str] = []
    store = Store(cmp.store_path) if cmp.store_path.is_file() else None
    try:
        for r in cmp.results:
            per_step, per_sec = [], []
            for run_id in r.curve_runs:
                if run_id is None or store is None or target is None:
                    continue
                m = store.metrics(run_id)
                val, own = m.get(f"val/{key}"), m.get("progress/train_time")
                if val is None:
                    continue
                clock = None if own is None else _at_steps(own, val.steps)
                hit, secs = tuning.time_to_target(
                    val.steps, val.values, target, seconds=clock, maximize=maximize
                )
                # Step 0 is the initial model: a target already met there costs one step.
                per_step.append(math.inf if hit is None else float(max(hit, 1)))
                if hit is None:
                    per_sec.append(math.inf)
                elif clock is None or secs is None or not math.isfinite(secs):
                    per_sec.append(math.nan)
                else:
                    if hit == 0 and len(val.steps) > 1:  # one step's time
                        secs = float(clock[1]) / max(1, int(val.steps[1]))
                    per_sec.append(secs)
                kind = (store.get_run(run_id).summary or {}).get("clock")
                if kind and kind not in clocks:
                    clocks.append(str(kind))
            steps.append(float(np.median(per_step)) if per_step else math.inf)
            seconds.append(float(np.median(per_sec)) if per_sec else math.inf)
    finally:
        if store is not None:
            store.close()
    return steps, seconds, clocks


def _at_steps(series: Any, steps: np.ndarray) -> np.ndarray:
    lookup = dict(zip(series.steps.tolist(), series.values.tolist(), strict=True))
    return np.asarray([lookup.get(int(s), math.nan) for s in steps], dtype=float)


def _given_target(cmp: Any) -> float | None:
    prov = cmp.record.provenance if cmp.record is not None else {}
    value = prov.get("target")
    return None if value is None else float(value)


def _auto_target(curves: list[list[tuple[np.ndarray, np.ndarray]]], maximize: bool) -> float | None:
    """95% of the way from the mean initial value to the best mean final value (geometric
    for losses and RMSE, which are positive).

    Example:
        >>> run = lambda *v: [(np.arange(len(v)), np.array(v, dtype=float))]
        >>> round(_auto_target([run(0.1, 0.5, 0.9), run(0.1, 0.7)], True), 3)
        0.86
        >>> round(_auto_target([run(1000.0, 10.0)], False), 3)  # 10 * 100 ** 0.05
        12.589
    """
    initial, final = [], []
    for runs in curves:
        if not runs:
            continue
        initial.extend(float(v[0]) for _, v in runs)
        ends = [float(v[-1]) for _, v in runs]
        if all(math.isfinite(e) for e in ends):
            final.append(float(np.mean(ends)))
    if not initial or not final:
        return None
    start = float(np.nanmean(initial))
    best = max(final) if maximize else min(final)
    if not maximize and best > 0 and start > best:
        return best * (start / best) ** (1 - _AUTO_FRACTION)
    return start + _AUTO_FRACTION * (best - start)
