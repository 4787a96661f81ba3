"""What a comparison found: per optimizer its tuning candidates and final runs, the table
and the recommendation in words.

:class:`Comparison` is a plain value: everything here is computed from its fields, without
the store. Its statistics -- the choice, the paired ranking, the sequential design's next
look, the fastest optimizer, the tuning noise -- are :mod:`.verdict`'s functions (its methods
of those names call them); this module says them in words.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from descentlab.experiments.compare import speedup, verdict
from descentlab.experiments.compare.choices import OptimizerChoice
from descentlab.experiments.compare.speedup import Speedup
from descentlab.experiments.compare.verdict import Standing, TuningNoise, score_metric
from descentlab.experiments.compare.versus import seeds_words, versus_lines
from descentlab.experiments.kinds import kind_of
from descentlab.experiments.outputs import RunFolder
from descentlab.problems.paths import Trajectories
from descentlab.store import store_path_of

if TYPE_CHECKING:
    from descentlab.experiments.compare.spec import CompareSpec
    from descentlab.experiments.compare.stats import Estimate

__all__ = ["CandidateResult", "Comparison", "LandscapePath", "LandscapeRace", "OptimizerResult",
           "SeedCurves", "TuningNoise", "score_metric"]  # fmt: skip


@dataclass(frozen=True)
class LandscapePath:
    """One optimizer's path: its label, its name as the lectures write it, the learning rate
    used and the trajectory (K = 1)."""

    label: str
    display: str
    lr: float
    trajectories: Trajectories


@dataclass(frozen=True)
class LandscapeRace:
    """Every optimizer from the same start on one landscape."""

    name: str
    steps: int
    paths: list[LandscapePath]


@dataclass
class CandidateResult:
    """One tuning setting: its hyperparameters and validation score(s), one per fold and
    tuning seed."""

    setting: dict[str, Any]
    scores: list[float]  # NaN where the trial diverged or is missing
    statuses: list[str | None]
    run_ids: list[int | None]
    failures: list[str | None] = field(default_factory=list)
    #: pruning (:mod:`~descentlab.experiments.compare.pruning`): the step of the rung the
    #: setting was stopped at (pruned, or a rung run diverged), and its score there
    pruned_step: int | None = None
    pruned_score: float | None = None

    @property
    def score(self) -> float:
        """Mean validation score (NaN if any trial failed or is missing: a failed setting
        never wins)."""
        if self.failed or any(s is None or not math.isfinite(s) for s in self.scores):
            return math.nan
        return float(np.mean(self.scores))

    @property
    def diverged(self) -> int:
        return sum(s == "diverged" for s in self.statuses)

    @property
    def failed(self) -> int:
        """Trials of this setting that failed (diverged, at chance, or loss rose)."""
        return sum(f is not None for f in self.failures)

    @property
    def pruned(self) -> int:
        """Trials of this setting stopped early by pruning (tried, not failed)."""
        return sum(s == "pruned" for s in self.statuses)


@dataclass(frozen=True)
class SeedCurves:
    """One logged metric of several runs (one per seed), as logged: ``runs[i] = (steps,
    values)``; runs with nothing logged are left out.

    Example:
        >>> c = SeedCurves([(np.array([0, 5]), np.array([1.0, 0.5])), (np.array([0]), np.array([2.0]))])
        >>> c.aligned()
        (array([0, 5]), array([[1. , 0.5],
               [2. , nan]]))
    """  # noqa: E501

    runs: list[tuple[np.ndarray, np.ndarray]]

    def aligned(self) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values[runs, steps])`` on the union of the steps; a run that stopped
        early (diverged) is padded with NaN after its last value."""
        steps = np.unique(np.concatenate([s for s, _ in self.runs]))
        values = np.full((len(self.runs), len(steps)), np.nan)
        for i, (s, v) in enumerate(self.runs):
            values[i, np.searchsorted(steps, s)] = v
        return steps, values


@dataclass
class OptimizerResult:
    """Everything the comparison found for one optimizer.

    Attributes:
        choice: the optimizer.
        candidates: the tuning settings with their validation scores (empty for a
            ``fixed_lr`` optimizer).
        best: index of the chosen setting (None: all failed / not tuned yet / fixed lr).
        curve_runs / refit_runs: run ids per seed (None where missing).
        test_accuracy / test_loss: ``(mean, low, high)`` over the refit seeds that trained
            and the test examples (:func:`~descentlab.experiments.compare.stats.estimate`).
        test_accuracy_seeds / test_loss_seeds: every completed refit run's value by seed
            (:meth:`test_values`: those that trained).
        test_rmse / test_rmse_seeds: the same for the RMSE (regression).
        test_examples: the refit runs' per-example test outcomes by seed (``{"loss": [n],
            "accuracy": [n]}``, :mod:`descentlab.experiments.example_outcomes`);
            test_outcomes_missing: by seed, why a completed refit run has none.
        collapsed: ``{seed: step}``: curve runs whose training loss collapsed late
            (:func:`~descentlab.experiments.tuning.late_collapse`).
        test_estimates: ``{"accuracy"/"loss": Estimate}``: the intervals of
            ``test_accuracy`` / ``test_loss`` with their parts (seeds', test examples').
        steps_to_target / seconds_to_target: per curve seed (None: not reached).
        final_val_accuracy: per curve seed, the last validation accuracy.
        diverged_tuning: diverged tuning trials; diverged_final: diverged curve/refit runs.
        failed_tuning / failed_final: failed trials (diverged, at chance, or final training
            loss above the initial one); failures: ``{reason: count}`` over all trials.
        pruned_tuning: tuning trials stopped early by pruning (tried, never failed).
        cliff: learning rates next to the chosen one that failed (a chosen rate at a cliff's
            edge is fragile).
        setting: the setting of the final runs (the chosen one, or the fixed default lr).
        curves: the curve runs' logged metrics (``"train/loss"``, ``"val/accuracy"``,
            ``"monitor/update_ratio"``...), each over the seeds.
    """

    choice: OptimizerChoice
    candidates: list[CandidateResult]
    best: int | None
    curve_runs: list[int | None]
    refit_runs: list[int | None]
    test_accuracy: tuple[float, float, float]
    test_loss: tuple[float, float, float]
    steps_to_target: list[int | None]
    seconds_to_target: list[float | None]
    final_val_accuracy: list[float]
    final_val_loss: list[float]
    diverged_tuning: int
    diverged_final: int
    failed_tuning: int = 0
    failed_final: int = 0
    #: tuning trials stopped early by pruning (counted among the tuning trials, not failed)
    pruned_tuning: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    cliff: list[float] = field(default_factory=list)
    setting: dict[str, Any] | None = None
    test_accuracy_seeds: dict[int, float] = field(default_factory=dict)
    test_loss_seeds: dict[int, float] = field(default_factory=dict)
    test_rmse: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    test_rmse_seeds: dict[int, float] = field(default_factory=dict)
    curves: dict[str, SeedCurves] = field(default_factory=dict)
    test_examples: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    test_outcomes_missing: dict[int, str] = field(default_factory=dict)
    test_estimates: dict[str, Estimate] = field(default_factory=dict)
    collapsed: dict[int, int] = field(default_factory=dict)
    #: by run id (curve and refit runs): its own time, as its summary holds it
    #: (``train_seconds``, ``optimizer_seconds``, ``clock``: :mod:`descentlab.engine.timing`)
    run_timings: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: ``{test seed: why}``: refit runs that failed (diverged, at chance, loss rose), left out
    #: of :meth:`test_values` and :meth:`test_outcome_values`: the test metric, its interval
    #: and the verdict are over the seeds that trained; the failures are counted apart
    test_failures: dict[int, str] = field(default_factory=dict)
    #: your own code's metric's range, where its ``Score`` gave ``bounds`` (else None)
    metric_bounds: tuple[float, float] | None = None

    @property
    def label(self) -> str:
        return self.choice.label

    @property
    def execution_mode(self) -> str | None:
        """How its curve runs trained (:func:`.speedup.execution_mode`): one mode,
        ``"mixed"``, or None where no run says (none recorded)."""
        modes = {self.run_timings.get(i, {}).get("mode") for i in self.curve_runs if i}
        modes.discard(None)
        if not modes:
            return None
        return modes.pop() if len(modes) == 1 else "mixed"

    @property
    def best_setting(self) -> dict[str, Any] | None:
        if self.setting is not None:
            return self.setting
        return None if self.best is None else self.candidates[self.best].setting

    @property
    def n_tuning_trials(self) -> int:
        return sum(len(c.scores) for c in self.candidates)

    @property
    def n_final_trials(self) -> int:
        return sum(r is not None for r in self.curve_runs + self.refit_runs)

    def test_values(self, classification: bool) -> dict[int, float]:
        """The headline test metric by seed (accuracy, or loss for regression), over the
        seeds that trained."""
        values = self.test_accuracy_seeds if classification else self.test_loss_seeds
        return {s: v for s, v in values.items() if s not in self.test_failures}

    def test_runs(self, classification: bool) -> int:
        """The test seeds run: those that trained and those that failed."""
        return len(self.test_values(classification)) + len(self.test_failures)

    def test_outcome_values(self, name: str) -> dict[int, Any]:
        """The test ``name`` (``"accuracy"``, ``"loss"``) by seed that trained: per-example
        arrays where every such seed has them, else one number per seed."""
        numbers = self.test_accuracy_seeds if name == "accuracy" else self.test_loss_seeds
        numbers = {s: v for s, v in numbers.items() if s not in self.test_failures}
        arrays = {s: e[name] for s, e in self.test_examples.items() if name in e}
        arrays = {s: v for s, v in arrays.items() if s in numbers}
        if numbers and set(arrays) == set(numbers):
            return dict(sorted(arrays.items()))
        return numbers

    def test_mean_all(self, classification: bool) -> tuple[float, int]:
        """The headline test metric's mean over every test seed with a finite score, the
        failed ones scored as they scored, and how many seeds that is."""
        values = self.test_accuracy_seeds if classification else self.test_loss_seeds
        finite = [v for v in values.values() if math.isfinite(v)]
        return (float(np.mean(finite)) if finite else math.nan), len(finite)

    def test_summary(self, classification: bool) -> tuple[float, float, float]:
        return self.test_accuracy if classification else self.test_loss


@dataclass
class Comparison:
    """The outcome of :func:`compare` (or :func:`load_comparison`).

    Attributes:
        spec: the specification.
        results: one :class:`OptimizerResult` per optimizer, in the spec's order.
        run_dir: the run directory.
        task: ``"classification"`` or ``"regression"``.
        select_metric: the validation metric tuning maximised/minimised.
        record: the store's experiment record (provenance, status), if any.
        complete: every trial has finished.
        chance: the held-out metric at which a trial counts as failed (see
            :func:`~descentlab.experiments.tuning.chance_level`), if known.
        landscapes: the same optimizers' paths on ``spec.landscapes``
            (:func:`~descentlab.experiments.compare.landscapes.landscape_races`).
        folder: lecture outputs and the lecture book found beside the run
            (:func:`~descentlab.experiments.outputs.scan_run_folder`).

    Everything the report shows is here: the report only draws and lays it out.
    """

    spec: CompareSpec
    results: list[OptimizerResult]
    run_dir: Path
    task: str
    select_metric: str
    record: Any = None
    complete: bool = True
    chance: float | None = None
    landscapes: list[LandscapeRace] = field(default_factory=list)
    folder: RunFolder = field(default_factory=RunFolder)

    @property
    def store_path(self) -> Path:
        return store_path_of(self.run_dir)

    @property
    def report_path(self) -> Path:
        return self.run_dir / "report.html"

    @property
    def classification(self) -> bool:
        return self.task == "classification"

    @property
    def target_accuracy(self) -> float | None:
        """The validation accuracy whose first crossing is timed: the spec's, for a problem
        scored by its accuracy; None otherwise (a language model scored by its loss has no
        accuracy target anyone is expected to reach)."""
        return self.spec.target_accuracy if self.select_metric == "val/accuracy" else None

    def rows(self, *, timings: bool = True) -> list[dict[str, Any]]:
        """The results table as dicts (``timings=False`` leaves out the seconds to target and
        the execution modes, the only entries that differ between two runs of the same
        comparison)."""
        out = []
        for r in self.results:
            row: dict[str, Any] = {
                "optimizer": r.choice.display,
                "best": r.best_setting,
                "fixed_lr": r.choice.fixed_lr,
                "val_score": None if r.best is None else r.candidates[r.best].score,
                "test_accuracy": r.test_accuracy,
                "test_loss": r.test_loss,
                "test_per_seed": dict(r.test_values(self.classification)),
                "steps_to_target": r.steps_to_target,
                "diverged_tuning": r.diverged_tuning,
                "tuning_trials": r.n_tuning_trials,
                "diverged_final": r.diverged_final,
                "failed_tuning": r.failed_tuning,
                "pruned_tuning": r.pruned_tuning,
                "failed_final": r.failed_final,
                "test_failures": dict(r.test_failures),
                "failures": dict(r.failures),
                "cliff": list(r.cliff),
            }
            noise = self.tuning_noise(r)
            row["tuning_noise"] = None if noise.why_not else noise.sd
            row["close_settings"] = None if noise.why_not else noise.close
            if timings:
                row["seconds_to_target"] = r.seconds_to_target
                row["execution_mode"] = r.execution_mode
            out.append(row)
        return out

    def validation_score(self, r: OptimizerResult) -> float:
        """:func:`.verdict.validation_score`."""
        return verdict.validation_score(self, r)

    def chosen(self, scored: Sequence[OptimizerResult]) -> tuple[OptimizerResult, str]:
        """:func:`.verdict.chosen`."""
        return verdict.chosen(self, scored)

    def ranking(self) -> list[Standing]:
        """:func:`.verdict.ranking`."""
        return verdict.ranking(self)

    def more_seeds(self) -> dict[str, int]:
        """:func:`.verdict.more_seeds`."""
        return verdict.more_seeds(self)

    def speedups(self, baseline: OptimizerResult | None = None) -> list[Speedup]:
        """:func:`.speedup.speedups` over ``baseline`` (default: the chosen one)."""
        ranking = self.ranking() if baseline is None else None
        if baseline is None and not ranking:
            return []
        return speedup.speedups(self, ranking[0].result if baseline is None else baseline)

    def crossings(self) -> list[speedup.Crossing]:
        """:func:`.speedup.crossings`."""
        return speedup.crossings(self)

    def seed_lines(self, ranking: list[Standing] | None = None) -> list[str]:
        """How many test seeds each optimizer got, and why (the sequential verdict's looks)."""
        ranking = self.ranking() if ranking is None else ranking
        if len(ranking) < 2 or ranking[1].sequential is None:
            return []
        top = ranking[0]
        n = top.failures.runs
        why = "the chosen one: every look, for its failure rate and each comparison still open"
        lines = [f"{top.result.choice.display}: {n} test seeds ({why})"]
        for x in ranking[1:]:
            t = x.sequential
            lines.append(f"{x.result.choice.display}: {t.seeds} test seeds ({t.why})")
        return lines

    def fastest(self) -> tuple[OptimizerResult | None, list[OptimizerResult]]:
        """:func:`.verdict.fastest`."""
        return verdict.fastest(self)

    def recommendation(self, timings: bool = True) -> str:
        """The verdict, one part a line: the headline (:meth:`headline`), the chosen one's
        test metric, each other optimizer's paired difference with its simultaneous interval
        and verdict, the failed test seeds, the speedups, where the ranking changed during
        training and (with a target) the fastest to it. ``timings=False``: without the
        speedups in seconds (measurements of this machine, not results of the runs)."""
        ranking = self.ranking()
        if not ranking:
            return "No optimizer has finished its final runs yet: no recommendation."
        if ranking[0].chosen_on != "validation":
            return self.headline(ranking)
        parts = [self.headline(ranking), self._chosen_words(ranking[0])]
        parts += versus_lines(self, ranking)
        parts.append(_failure_words(ranking, round(self.spec.confidence * 100), self.kind))
        parts += self._speed_words(ranking, timings)
        fast, ties = self.fastest()
        if fast is not None:
            steps = [x for x in fast.steps_to_target if x is not None]
            parts.append(
                f"Fastest to {self.target_accuracy:g} validation accuracy: "
                f"{fast.choice.display} ({np.mean(steps):.0f} steps on average, "
                f"{len(steps)}/{len(fast.steps_to_target)} seeds)"
                + (f", not distinguishable from {_names(ties)}." if ties else ".")
            )
        from descentlab.experiments.compare.as_code import as_code

        paste = self.kind.metric_said(as_code, None)  # (your own code: the lines to paste back)
        if paste is not None:
            parts.append(paste(self))
        return "\n".join(p for p in parts if p)

    def headline(self, ranking: list[Standing] | None = None) -> str:
        """The recommendation in one line: ``use X at lr Y (its other settings); A, B not
        shown worse; C, D worse``, and the optimizers whose test runs failed."""
        ranking = self.ranking() if ranking is None else ranking
        if not ranking:
            return "No optimizer has finished its final runs yet: no recommendation."
        if ranking[0].chosen_on != "validation":  # (the test set judges a choice, never makes it)
            return (
                "No recommendation: no curve run has a validation score to choose on, and a "
                f"choice is never made on the test set (the table shows each one's test "
                f"{self.metric_name})."
            )
        top = ranking[0].result
        lr, _, rest = fmt_setting(top.best_setting).partition(" ")
        how = "not tuned" if top.choice.fixed_lr else rest
        text = f"use {top.choice.display} at lr {lr}" + (f" ({how})" if how else "")
        steady = verdict.steadier(ranking)
        if steady is not None:
            f, g = ranking[0].failures, steady.failures
            text += (
                f" ({f.failed} of {f.runs} test seeds failed) or {steady.result.choice.display} "
                f"({g.failed} of {g.runs}, not shown worse)"
            )
        groups: dict[str, list[OptimizerResult]] = {}
        for x in ranking[1:]:
            if x is steady:  # (named above)
                continue
            key = x.verdict if x.verdict in ("worse", "better") else "not shown worse"
            if x.failures.runs and x.failures.failed == x.failures.runs:
                key = "failed on every test seed"
            groups.setdefault(key, []).append(x.result)
        for key in ("better", "not shown worse", "worse", "failed on every test seed"):
            if key in groups:
                names = ", ".join(r.choice.display for r in groups[key])
                text += f"; {names} {'better on the test set' if key == 'better' else key}"
        failed = [x for x in ranking if x.failures.failed]
        if failed:
            text += "; failed test seeds: " + ", ".join(
                f"{x.result.choice.display} {x.failures.failed} of {x.failures.runs}"
                for x in failed
            )
        return text

    @property
    def kind(self) -> Any:
        """The kind of its trials (:class:`~descentlab.experiments.kinds.TrialKind`)."""
        return kind_of(self.spec)

    @property
    def metric_name(self) -> str:
        """The test metric as the user named it: your own code's (its ``Score``'s name, or the
        framework's ``--metric``), else ``"accuracy"`` or ``"loss"``."""
        said = self.record.provenance if self.record is not None else {}
        own = self.kind.metric_name(self.spec, said)
        return own or ("accuracy" if self.classification else "loss")

    @property
    def val_metric_words(self) -> str:
        """The validation metric as the text says it: your own code's by its name, else
        :func:`metric_words`."""
        return self.kind.metric_said(self.metric_name, metric_words(self.select_metric))

    def _chosen_words(self, top: Standing) -> str:
        cls = self.classification
        m, lo, hi = top.result.test_summary(cls)
        est = top.result.test_estimates.get("accuracy" if cls else "loss")
        f = ".3f" if cls else ".4g"  # losses span decades
        n, runs = len(top.result.test_values(cls)), top.failures.runs
        over = f"{n} seed{'s' if n != 1 else ''}" if n == runs else f"the {n} of {runs} seeds"
        over += " that trained" if n != runs else ""
        if est is not None and est.examples:
            over += f" and {est.examples} test examples"
        elif n:
            over += ", seeds' noise only"
        ci = f"[{lo:{f}}, {hi:{f}}]" if math.isfinite(lo) else "(no interval: one seed)"
        metric = self.val_metric_words
        if top.chosen_on == "validation":
            why = (
                f"chosen on its curve runs' mean validation {metric} ({top.validation:.4g}, no "
                "test example seen)"
            )
        else:
            why = f"chosen on its test {self.metric_name} (no curve run has a validation score)"
        conf = round(self.spec.confidence * 100)
        what = f"test {self.metric_name}"
        name = top.result.choice.display
        seeds = seeds_words(top, cls, f)
        return f"{name}, {why}: {what} {m:{f}} ({conf}% interval {ci} over {over}){seeds}."

    def _speed_words(self, ranking: list[Standing], timings: bool = True) -> list[str]:
        """The speedups over the chosen one (and the baseline), in the ranking's order, and
        where the ranking changed during training."""
        top = ranking[0].result
        order = {x.result.label: i for i, x in enumerate(ranking)}
        bases = [top] + [r for r in self.results if r.label == self.spec.baseline and r is not top]
        parts = [
            _speedup_words(
                self, b, sorted(self.speedups(b), key=lambda sp: order[sp.label]), timings
            )
            for b in bases
        ]
        found = self.crossings()
        if found:
            shown = {r.label: r.choice.display for r in self.results}
            passes = {(a, b): at for c in found for a, b, at in c.passes}
            parts.append(
                f"The ranking changed during training (the curve runs' mean validation "
                f"{self.val_metric_words} at "
                f"{' and '.join(f'{c.fraction:.0%}' for c in found)} of the budget against the "
                "end; the report draws it): "
                + "; ".join(
                    f"{shown[a]} passed {shown[b]} at step {at}" for (a, b), at in passes.items()
                )
                + "."
            )
        return parts

    def budget(self) -> str:
        """The tuning budget as one line, with the trials each optimizer was given."""
        from descentlab.experiments.compare.search_space import budget_line

        tuned = [r for r in self.results if not r.choice.fixed_lr]
        line = budget_line(self.spec, [r.choice for r in tuned]) + (
            " (tuning trials run: "
            + ", ".join(f"{r.choice.display} {r.n_tuning_trials}" for r in tuned)
            + ")"
            if tuned
            else ""
        )
        if self.spec.prune:
            from descentlab.experiments.compare.pruning import describe

            pruned = ", ".join(
                f"{r.choice.display} {r.pruned_tuning}/{r.n_tuning_trials}" for r in tuned
            )
            line += f" ({describe(self.spec.tune_length)}; pruned: {pruned or 'none'})"
        return line

    def protocol(self) -> list[str]:
        """The protocol as it ran, generated from the spec (the same lines in the console,
        the report and ``comparison.json``), the tuning trials run added to its first."""
        from descentlab.experiments.compare.protocol import protocol_lines

        cls = self.classification
        scored = sum(math.isfinite(r.test_summary(cls)[0]) for r in self.results)
        lines = protocol_lines(
            self.spec,
            metric=self.val_metric_words,
            compared=scored or None,
        )
        tuned = [r for r in self.results if not r.choice.fixed_lr]
        if tuned:
            runs = ", ".join(f"{r.choice.display} {r.n_tuning_trials}" for r in tuned)
            lines[0] += f" (tuning trials run: {runs})"
        return lines

    def warnings(self) -> list[str]:
        """Cliffs, one line each, then one line counting the failed trials per optimizer."""
        out = []
        for r in self.results:
            if r.cliff:
                lrs = ", ".join(f"{v:.3g}" for v in r.cliff)
                out.append(
                    f"{r.choice.display}: the chosen lr {fmt_setting(r.best_setting)} sits next "
                    f"to lr {lrs}, which failed -- a cliff: a slightly different rate may not "
                    "train at all."
                )
        parts = []
        for r in self.results:
            if r.failures:
                why = ", ".join(
                    f"{n} {_FAILURE_WORDS.get(k, k)}" for k, n in sorted(r.failures.items())
                )
                n = r.n_tuning_trials + r.n_final_trials
                parts.append(f"{r.choice.display} {sum(r.failures.values())}/{n} ({why})")
        if parts:
            out.append("Failed trials: " + "; ".join(parts) + ".")
        missing = [r for r in self.results if r.test_outcomes_missing]
        if missing:
            why = sorted({w for r in missing for w in r.test_outcomes_missing.values()})
            out.append(
                f"No per-example test outcomes for {_names(missing)} ({'; '.join(why)}: runs "
                "stored before they were recorded, or outcomes that did not match the run): "
                "their intervals and comparisons count the seeds' noise only, not the test "
                "set's."
            )
        out += [line for r in self.results if (line := _unmoved(r))]
        for r in self.results:
            if r.collapsed:
                where = ", ".join(f"seed {s} at step {t}" for s, t in sorted(r.collapsed.items()))
                out.append(
                    f"{r.choice.display}: late collapse ({where}): the training loss rose to "
                    "more than twice its lowest in the last quarter of the run and stayed there."
                )
        return out

    def tuning_noise(self, r: OptimizerResult) -> TuningNoise:
        """:func:`.verdict.tuning_noise`."""
        return verdict.tuning_noise(self, r)

    def tuning_noise_line(self) -> str:
        """The tuning noise of every tuned optimizer as one line (what ``descentlab
        compare`` prints under the budget)."""
        tuned = [r for r in self.results if not r.choice.fixed_lr]
        if not tuned:
            return "tuning noise: no optimizer is tuned"
        names = {
            "accuracy": "validation accuracy",
            "loss": "validation loss",
            "rmse": "validation RMSE",
        }
        metric = self.kind.metric_said(f"validation {self.metric_name}",
                                       names.get(self.select_metric.split("/", 1)[1],
                                                 self.select_metric))  # fmt: skip
        k = self.spec.tune_seeds
        noises = [(r, self.tuning_noise(r)) for r in tuned]
        measured = [(r, n) for r, n in noises if n.why_not is None]
        parts = []
        for r, n in measured:
            within = f"{n.close} other setting{'s' if n.close != 1 else ''} within it"
            parts.append(f"{r.choice.display} {n.sd:.3g} ({within})")
        missing = [(r, n) for r, n in noises if n.why_not is not None]
        if measured:
            seeds = sorted({n.seeds for _, n in measured})
            how = (
                f"the sd over the chosen setting's {'/'.join(map(str, seeds))} curve runs, "
                "each its tuning trial with another seed"
            )
            if k > 1:
                how += f", over sqrt({k})"
            score = "one seed" if k == 1 else f"the mean of {k} seeds"
            text = f"tuning noise (a tuning score: {metric}, {score}; {how}): " + ", ".join(parts)
            if missing:
                text += "; not measured for " + ", ".join(
                    f"{r.choice.display} ({n.why_not})" for r, n in missing
                )
            return text
        whys = sorted({n.why_not for _, n in missing})
        text = f"tuning noise: not measured ({'; '.join(w for w in whys if w)})"
        if k == 1:
            text += "; each setting was scored on one seed (--tune-seeds 2 averages 2)"
        else:
            text += f"; each setting was scored on the mean of {k} seeds"
        return text

    def table(self, *, timings: bool = True) -> str:
        """The results table as aligned text within 100 columns (what ``descentlab
        compare`` prints): each optimizer's learning rate, test metric over the seeds that
        trained, steps to a target the user set, failed trials by phase (pruned tuning
        trials beside them); the other settings on lines of their own below. (``timings``:
        kept for callers; the seconds to target are the report's, not the console's.)"""
        cls = self.classification
        target = self.target_accuracy
        conf = round(self.spec.confidence * 100)
        shown = self.kind.metric_said(self.metric_name, "acc" if cls else "loss")
        head = ["optimizer", "lr", f"test {shown} [{conf}% CI]"]
        rmse = self.select_metric == "val/rmse"  # a problem scored by its RMSE shows it too
        if rmse:
            head.append(f"test rmse [{conf}% CI]")
        if target is not None:
            head.append(f"steps to {target:g}")
        head += ["failed: tune", "curve", "test"]
        lines, settings = [head], []
        for r in self.results:
            lr, _, rest = fmt_setting(r.best_setting).partition(" ")
            if r.choice.fixed_lr and r.best_setting is not None:
                default = " (default, lr-free)" if r.choice.lr_free else " (default)"
                lr += "*" if "lr" in r.choice.hyper else default
            if r.cliff:
                lr += " !"
            if rest:
                settings.append(f"{r.choice.display}: {rest}")
            row = [r.choice.display, lr, _fmt_ci(r.test_summary(cls), 3)]
            if rmse:
                row.append(_fmt_ci(r.test_rmse, 3))
            if target is not None:
                reached = [s for s in r.steps_to_target if s is not None]
                row.append(_fmt_reached(reached, len(r.steps_to_target), "{:.0f}"))
            tune = "-"
            if not r.choice.fixed_lr:
                tune = f"{r.failed_tuning}/{r.n_tuning_trials}"
                tune += f" ({r.pruned_tuning} pruned)" if self.spec.prune else ""
            curves = sum(x is not None for x in r.curve_runs)
            failed = len(r.test_failures)
            row += [tune, f"{r.failed_final - failed}/{curves}", f"{failed}/{r.test_runs(cls)}"]
            lines.append(row)
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        text = []
        for j, line in enumerate(lines):
            cells = [
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            ]
            text.append("  ".join(cells).rstrip())
            if j == 0:
                text.append("  ".join("-" * w for w in widths))
        notes = []
        if any(r.choice.fixed_lr and "lr" in r.choice.hyper for r in self.results):
            notes.append("* a fixed learning rate given for it (--fixed-lr LABEL=LR)")
        if any(r.cliff for r in self.results):
            notes.append("! the chosen lr sits next to a learning rate that failed (a cliff)")
        if settings:
            notes.append("settings: " + "; ".join(settings))
        text += [textwrap.fill(n, width=100, subsequent_indent="  ") for n in notes]
        return "\n".join(text)


def _unmoved(r: OptimizerResult) -> str:
    """Where three or more settings tried all scored exactly the same: one line saying that
    the score did not move with the tuned values (something fixes them: a scheduler's own
    lr, a param group's, code that ignores the optimizer), so the choice among them is
    arbitrary; else ``""``."""
    scores = [c.score for c in r.candidates if math.isfinite(c.score)]
    if len(scores) < 3 or max(scores) != min(scores):
        return ""
    keys = sorted({k for c in r.candidates for k in c.setting})
    return (
        f"{r.choice.display}: every one of the {len(scores)} settings tried "
        f"({', '.join(keys)}) scored the same, {scores[0]:.6g}: the score does not move with "
        "the tuned values (does something in the training fix them -- a scheduler's own lr, a "
        "param group's -- or ignore the optimizer?); the choice among them is arbitrary."
    )


def _failure_words(ranking: list[Standing], conf: int, kind: Any) -> str:
    """The failed test seeds of each optimizer with their exact intervals, and which fail
    more (or less) often than the chosen one; what a failure is, as the trials' ``kind``
    says (:attr:`~descentlab.experiments.kinds.TrialKind.fails_when`)."""
    parts, clean = [], []
    top = ranking[0].result.choice.display
    for x in ranking:
        f = x.failures
        name = x.result.choice.display + (" (chosen)" if x is ranking[0] else "")
        if not f.failed and f.verdict != "fails less often":
            clean.append((name, f))
            continue
        why = ", ".join(f"{n} {_FAILURE_WORDS.get(k, k)}" for k, n in f.reasons)
        text = f"{name} {f.failed} of {f.runs}{f' ({why})' if why else ''} "
        text += f"[{f.low:.1%}, {f.high:.1%}]"
        if f.verdict in ("fails more often", "fails less often"):
            text += f", {f.verdict} than {top} (Holm-adjusted p = {f.p_adjusted:.2g})"
        parts.append(text)
    if clean:
        runs = sorted({f.runs for _, f in clean})
        span = f"{runs[0]}" if len(runs) == 1 else f"{runs[0]}-{runs[-1]}"
        most = max(f.high for _, f in clean)
        parts.append(
            f"none for {_names_of([n for n, _ in clean])} (0 of {span} each: at most {most:.1%})"
        )
    return (
        f"Failed test seeds ({kind.fails_when}; "
        f"{conf}% exact intervals; compared with {top}'s by the exact McNemar test, Holm, "
        f"{conf}% family-wise): " + "; ".join(parts) + "."
    )


def _speedup_words(
    cmp: Any, base: OptimizerResult, found: list[Speedup], timings: bool = True
) -> str:
    """The speedups over ``base`` as one line (``timings``: in seconds too)."""
    if not found:
        return ""
    shown = {r.label: r.choice.display for r in cmp.results}
    metric = cmp.val_metric_words
    k = len(cmp.spec.final_seeds)
    parts = []
    for sp in found:
        name = shown[sp.label]
        if not sp.reached:
            parts.append(
                f"{name}: {base.choice.display} does not reach its {sp.target:.4g} in "
                f"{cmp.spec.steps} steps (faster by more than 1x)"
            )
            continue
        text = f"{name} {_times(sp.steps)} in steps"
        if timings and math.isfinite(sp.seconds[0]):
            text += f", {_times(sp.seconds)} in time"
        elif timings and sp.withheld:
            text += f" ({sp.withheld})"
        parts.append(text)
    conf = round(cmp.spec.confidence * 100)
    return (
        f"Speedup over {base.choice.display} (the steps {base.choice.display} needs on its "
        f"curve runs to reach each one's final validation {metric}, over its {cmp.spec.steps}; "
        + (
            "in time the same with each run's own seconds, between runs of one execution "
            f"mode ({_modes(cmp)}); "
            if timings
            else ""
        )
        + f"{conf}% bootstrap over the {k} curve "
        "seeds): " + "; ".join(parts) + "."
    )


def _modes(cmp: Any) -> str:
    """Each optimizer's execution mode, as words (``adamw stacked, signsgd alone``)."""
    return ", ".join(
        f"{r.choice.display} {r.execution_mode or 'not recorded'}" for r in cmp.results
    )


def _times(v: tuple[float, float, float]) -> str:
    est, lo, hi = v
    return f"{est:.2f}x [{lo:.2f}, {'not reached' if math.isinf(hi) else f'{hi:.2f}'}]"


def _names_of(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


_FAILURE_WORDS = {
    "chance": "at chance",
    "diverged": "diverged",
    "loss rose": "loss rose",
    "failed": "failed (an error; the cause is stored)",
}


def _names(results: Sequence[OptimizerResult]) -> str:
    return _names_of([r.choice.display for r in results]) if results else ""


def fmt_setting(setting: Mapping[str, Any] | None) -> str:
    """A setting as text: its lr, then ``k=v`` for the others (an unset one: ``k=default``).

    Example:
        >>> fmt_setting({"lr": 0.01, "momentum": 0.9, "weight_decay": None})
        '0.01 momentum=0.9 weight_decay=default'
    """
    if setting is None:
        return "-"
    parts = [f"{setting['lr']:.3g}" if setting.get("lr") is not None else "default"]
    parts += [
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={'default' if v is None else v}"
        for k, v in setting.items()
        if k != "lr"
    ]
    return " ".join(parts)


def _fmt_ci(ci: tuple[float, float, float], digits: int) -> str:
    m, lo, hi = ci
    if not math.isfinite(m):
        return "-"
    if not math.isfinite(lo):
        return f"{m:.{digits}f} [1 seed]"
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _fmt_reached(values: list[float], n: int, fmt: str, counts: bool = True) -> str:
    if n == 0:
        return "-"
    if not values:
        return f"not reached (0/{n})" if counts else "-"
    text = fmt.format(float(np.mean(values)))
    return f"{text} ({len(values)}/{n})" if counts else text


def metric_words(metric: str) -> str:
    """A logged metric's name as the text says it (``val/rmse`` -> ``RMSE``)."""
    name = metric.split("/", 1)[-1]
    return "RMSE" if name == "rmse" else name
