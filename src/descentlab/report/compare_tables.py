"""The tables and text of a comparison's report: the verdict, the results table, the
protocol, the configuration and provenance, and every tuning trial.

Each function takes a :class:`~descentlab.experiments.compare.Comparison` and returns HTML;
:func:`tables` makes all of them at once for the report's page; the multi-problem report
reuses the verdict and the results table for each problem.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from descentlab.experiments.compare.protocol import search_words
from descentlab.experiments.compare.results import fmt_setting
from descentlab.report.page import escape, html_table

__all__ = [
    "config_section",
    "protocol",
    "results_table",
    "speed_section",
    "table_note",
    "tables",
    "trials_section",
    "verdict",
]


class Tables(NamedTuple):
    """The tables and text of one comparison's report page (HTML), made at once."""

    verdict: str
    results: str
    note: str
    speed: str
    protocol: str
    config: str


def tables(cmp: Any) -> Tables:
    """Every table and text of the report's page: the page lays them out, with its figures."""
    return Tables(verdict(cmp), results_table(cmp), table_note(cmp), speed_section(cmp),
                  protocol(cmp) + trials_section(cmp), config_section(cmp))  # fmt: skip


def _ci(ci: tuple[float, float, float], digits: int = 3) -> str:
    m, lo, hi = ci
    if not math.isfinite(m):
        return "-"
    return f'{m:.{digits}f} <span class="ci">[{lo:.{digits}f}, {hi:.{digits}f}]</span>'


def _mean(values: Iterable[float | None]) -> float:
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(sum(vals) / len(vals)) if vals else math.nan


def _columns(cmp: Any) -> list[tuple[str, str]]:
    """The results table's columns, each with what it holds (the note under the table)."""
    conf = round(cmp.spec.confidence * 100)
    target = cmp.target_accuracy
    metric_name = cmp.metric_name  # (your own code's, by its name)
    # Classification shows accuracy only (the test loss is in the figure below): a table
    # that fits the page beats one that scrolls.
    tuned = cmp.select_metric.split("/", 1)[1]  # the problem's own metric (accuracy, loss, rmse)
    rmse = tuned == "rmse"  # a problem scored by its RMSE shows the test RMSE
    test = "rmse" if rmse else metric_name
    tuned = cmp.kind.metric_said(metric_name, tuned)
    noise = (
        "counting the seeds' noise and, where the refit runs stored per-example outcomes, "
        "the test set's" + (" (the RMSE: the root of the mean squared error)" if rmse else "")
    )
    cols = [
        ("optimizer", "the optimizer (highlighted: the chosen one and those not shown worse)"),
        (
            "lr",
            "the chosen setting (unset hyperparameters at their defaults); a cliff is a failed "
            "learning rate next to it; a late collapse a seed whose training loss jumped near "
            "the end",
        ),
        (
            f"test {test} [{conf}% CI], per seed",
            f"the refit runs' test {test} over the seeds that trained (on training + "
            f"validation data, test set evaluated once at the end): mean, {conf}% interval "
            f"{noise}, each seed's value",
        ),
        (
            "vs the chosen one (paired; positive: worse)",
            f"the verdict against the optimizer chosen on validation, on the test seeds both "
            f"trained ({conf}% family-wise over the comparisons with it, group-sequential), "
            "and the size that verdict tests -- the pseudo-median of the seeds' differences "
            "(Hodges-Lehmann, a failed seed the worst) -- with the interval the signed-rank "
            "test inverts: the intervals hold together over every comparison and look; an end "
            "the seeds cannot bound at that level is said missing; the seeds on which it was "
            "behind, with the sign test",
        ),
        (
            "failed test seeds",
            f"refit runs that failed ({cmp.kind.fails_when}; left out "
            f"of the test metric), with the exact {conf}% interval of the rate, and whether it "
            "fails more or less often than the chosen one (exact McNemar test on the seeds "
            f"both ran, Holm, {conf}% family-wise)",
        ),
        (
            f"tuning val {'acc' if tuned == 'accuracy' else tuned}",
            f"the chosen setting's mean validation {tuned} during tuning, with the tuning "
            "noise: the standard deviation of the same setting's final validation score over "
            "the curve runs' seeds (same split and length), divided by the square root of the "
            "tuning seeds averaged, and how many other settings scored within it (the tuning "
            "did not tell those apart)",
        ),
    ]
    # seconds: each curve run's own time (engine.timing); none for runs recorded before it
    timed = any(s is not None for r in cmp.results for s in r.seconds_to_target)
    if target is not None:
        cols.append(
            (
                f"to {target:g} val acc: steps{', seconds' if timed else ''}",
                f"the curve runs' (training split) first evaluation at {target:g} validation "
                "accuracy: mean over the seeds that reached it"
                + (
                    "; seconds: each curve run's own forward/backward and optimizer time until "
                    "then (thread CPU time on the CPU, CUDA events on a GPU; a run of a "
                    "vectorized pass is charged its share), evaluations excluded "
                    "(machine-dependent)"
                    if timed
                    else ""
                ),
            )
        )
    cols.append(
        (
            "failed trials",
            f"tuning and final runs that failed ({cmp.kind.fails_when})",
        )
    )
    return cols


def _versus(cmp: Any, x: Any) -> str:
    """The comparison's cell: the verdict, the paired difference with its simultaneous
    interval (in accuracy points for an accuracy), against
    ``--min-difference`` where set, and the seeds it was behind on (the comparison's own
    sentence as a tooltip)."""
    t = x.test
    est, low, high = x.interval
    lines = []
    if t.verdict != "identical" and (math.isfinite(low) or math.isfinite(high)):
        k = 100.0 if cmp.task == "classification" else 1.0
        fmt = "+.1f" if k == 100.0 else "+.3g"
        units = " points" if k == 100.0 else ""
        ends = [f"{k * v:{fmt}}" if math.isfinite(v) else "no bound" for v in (low, high)]
        lines.append(f"{k * est:{fmt}} [{ends[0]}, {ends[1]}]{units}")
        if not (math.isfinite(low) and math.isfinite(high)):
            n = x.sequential.seeds if x.sequential else t.diff.seeds
            lines.append(f"no bound: at this level {n} seeds cannot give one")
        if x.practical:
            tau = f"{k * cmp.spec.min_difference:.3g}{units}"
            lines.append({"beyond": f"more than {tau}", "maybe below": f"possibly less than {tau}",
                          "within": f"within +-{tau}"}[x.practical])  # fmt: skip
        lines.append(f"behind on {t.behind}/{t.diff.seeds} seeds, sign p = {t.sign_p:.3g}")
        if x.by_ranks_alone:
            lines.append("by the seeds' ranks: the interval reaches 0")
        if x.by_interval_alone:
            lines.append("the interval excludes 0; the test over every seed does not")
        if not t.diff.examples:
            lines.append("seeds' noise only")
    elif t.verdict != "identical":
        n = t.diff.seeds
        lines.append(f"no interval: at this level {n} seed{'s' if n != 1 else ''} cannot bound it")
    detail = "<br>".join(lines)
    return f'<span title="{escape(t.describe())}">{escape(t.verdict)}</span>' + (
        f'<br><span class="ci">{detail}</span>' if detail else ""
    )


def _failures(x: Any) -> str:
    """The failed test seeds' cell: k of n, the exact interval, against the chosen one."""
    f = x.failures
    if not f.runs:
        return "-"
    cell = f"{f.failed}/{f.runs}"
    if f.failed:
        why = ", ".join(f"{n} {k}" for k, n in f.reasons)
        cell = f'<span class="bad">{cell}</span> <span class="ci">({escape(why)})</span>'
    cell += f'<br><span class="ci">[{f.low:.1%}, {f.high:.1%}]'
    if f.verdict in ("fails more often", "fails less often"):
        cell += f"<br>{f.verdict} (p = {f.p_adjusted:.2g}, Holm)"
    return cell + "</span>"


def table_note(cmp: Any) -> str:
    """The note under the results table: what each of its columns holds (HTML)."""
    return (
        "Columns: "
        + "; ".join(f"<b>{escape(name)}</b>: {escape(what)}" for name, what in _columns(cmp))
        + "."
    )


def results_table(cmp: Any) -> str:
    """The results table: per optimizer its setting, test metric with interval and seeds, the
    paired comparison with the best, the tuning score, the time to target, failed trials
    (:func:`table_note` describes them)."""
    classification = cmp.task == "classification"
    target = cmp.target_accuracy
    tuned = cmp.select_metric.split("/", 1)[1]
    rmse = tuned == "rmse"
    cols = [name for name, _ in _columns(cmp)]
    timed = any(s is not None for r in cmp.results for s in r.seconds_to_target)
    ranked = cmp.ranking()
    ranking = {id(x.result): x for x in ranked}
    rows, classes = [], []
    for r in cmp.results:
        score = r.candidates[r.best].score if r.best is not None else math.nan
        lr = _setting_cell(r.best_setting)
        if r.choice.fixed_lr and r.best_setting is not None:
            given = "given" if "lr" in r.choice.hyper else "default"
            lr += f' <span class="ci">({given}, not tuned)</span>'
        if r.cliff:
            near = ", ".join(f"{v:.3g}" for v in r.cliff)
            lr += f' <span class="cliff" title="lr {near} failed">⚠ cliff: {near} failed</span>'
        if r.collapsed:
            seeds = ", ".join(str(s) for s in sorted(r.collapsed))
            lr += f' <span class="cliff">⚠ late collapse: seed {seeds}</span>'
        row = [escape(r.choice.display), lr]
        values = r.test_rmse_seeds if rmse else r.test_values(classification)
        values = {k: v for k, v in values.items() if k not in r.test_failures}
        seeds = " ".join(f"{values[s]:.3f}" for s in sorted(values))
        per_seed = f'<br><span class="ci">{seeds}</span>' if seeds else ""
        summary = r.test_rmse if rmse else r.test_summary(classification)
        row.append(_ci(summary) + per_seed)
        rank = ranking.get(id(r))
        if rank is None:
            row.append("-")
        elif rank is ranked[0]:
            row.append("<strong>chosen</strong> (best on validation)")
        else:
            row.append(_versus(cmp, rank))
        row.append("-" if rank is None else _failures(rank))
        cell = "-" if not math.isfinite(score) else f"{score:.4f}"
        noise = cmp.tuning_noise(r)
        if math.isfinite(score) and noise.why_not is None:
            close = noise.close
            cell += f'<br><span class="ci">± {noise.sd:.4f} seed sd ({noise.seeds} seeds)<br>'
            cell += f"{close} other setting{'s' if close != 1 else ''} within it</span>"
        elif math.isfinite(score):
            cell += f'<br><span class="ci">noise not measured: {escape(noise.why_not)}</span>'
        row.append(cell)
        if target is not None:
            steps = [s for s in r.steps_to_target if s is not None]
            secs = [s for s in r.seconds_to_target if s is not None]
            n = len(r.steps_to_target)
            if n == 0:
                cell = "-"
            elif not steps:
                cell = f"not reached (0/{n})"
            else:
                cell = f"{_mean(steps):.0f}"
                if timed:  # "-": recorded without its own time
                    cell += f", {_mean(secs):.1f} s" if secs else ", -"
                cell += f" <span class=ci>({len(steps)}/{n} seeds)</span>"
            row.append(cell)
        failed = r.failed_tuning + r.failed_final
        total = r.n_tuning_trials + r.n_final_trials
        why = ", ".join(f"{n} {k}" for k, n in sorted(r.failures.items()))
        cell = f"{failed}/{total}"
        if why:
            cell = f'<span class="bad">{cell}</span><br><span class="ci">{escape(why)}</span>'
        if r.pruned_tuning:  # tried, stopped early: not failures
            pruned = f"{r.pruned_tuning}/{r.n_tuning_trials} tuning pruned"
            cell += f'<br><span class="ci">{pruned}</span>'
        row.append(cell)
        rows.append(row)
        classes.append("best" if rank is not None and rank.tied else "")
    return html_table(cols, rows, row_classes=classes, raw=True, text_columns=(0, 1))


def _setting_cell(setting: Any) -> str:
    """A chosen setting for the results table: the learning rate, then each other tuned
    hyperparameter on a line of its own (a row of 6 settings side by side made the table
    wider than the page)."""
    text = fmt_setting(setting)
    lr, _, rest = text.partition(" ")
    lines = "".join(f"<br>{escape(part)}" for part in rest.split(" ") if part)
    return escape(lr) + (f'<span class="ci">{lines}</span>' if lines else "")


def verdict(cmp: Any) -> str:
    """The recommendation, then the warnings (cliffs, failed trials)."""
    head, _, detail = cmp.recommendation().partition("\n")
    text = (
        f'<p class="verdict"><strong>Recommendation: {escape(head)}.</strong>'
        + "".join(f"<br>{escape(line)}" for line in detail.splitlines())
        + "</p>"
    )
    warnings = cmp.warnings()
    if warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
        text += f'<div class="warn"><ul class="tight">{items}</ul></div>'
    return text


def _own_code(cmp: Any) -> dict[str, str] | None:
    """The protocol's words where the comparison ran your own training code (None: a
    problem's runs): what its trials were scored on, how they trained and failed."""
    return cmp.kind.metric_said(_your_code_words, lambda cmp: None)(cmp)


def _your_code_words(cmp: Any) -> dict[str, str]:
    spec = cmp.spec
    scored = cmp.kind.scored_on(spec)
    return {
        "scored": f"on {scored}" if scored else "on the validation split descentlab gave it",
        "training": "<b>Train</b>: "
        + escape(cmp.kind.training_words(spec).removeprefix("training: "))
        + ".",
        "failures": "<b>Count failures</b>: your code trains, so descentlab sees no chance "
        "level and no training loss: a trial fails only where a value it reported or returned "
        "is not finite (diverged).",
    }


def _as_your_code(item: str, every: int) -> str:
    """A protocol item in the words of your code's runs: its curve the values it reported."""
    return item.replace(
        f"evaluated on the validation split every {every} steps: learning curves, time to "
        "target, and (first seed) the optimizer's monitor (update-to-parameter ratio).",
        "its learning curve the values your code reported (run.report) on the validation split.",
    )


def protocol(cmp: Any) -> str:
    """The protocol as the comparison ran it, step by step."""
    s = cmp.spec
    folds = _validation(cmp)
    search, fixed = _search(s)
    metric = cmp.select_metric.split("/", 1)[1]
    seeds = ", ".join(map(str, s.final_seeds))
    tune_seeds = ", ".join(map(str, s.tuning_seeds))
    batch = _batch(s)
    length = (
        f"up to {s.tune_length} steps (a pruned setting only to its rung)"
        if s.prune
        else f"{s.tune_length} steps"
    )
    chance = (
        f" ({cmp.chance:.3g} here)" if cmp.chance is not None and math.isfinite(cmp.chance) else ""
    )
    conf = round(s.confidence * 100)
    tune = (
        f"<b>Tune</b> on validation data only: {search}, each trained {length} "
        f"({batch}, seed{'s' if s.tune_seeds > 1 else ''} {tune_seeds}) and scored by its "
        f"final validation {metric} on {folds}. These runs hold no test example at all."
    )
    if len(fixed) == len(s.optimizers):
        tune = f"<b>No tuning</b>: every optimizer at a fixed learning rate ({batch})."
    failures = (
        "<b>Count failures</b>: a trial fails when its loss goes non-finite, when its final "
        f"held-out {metric} is no better than chance{chance} (the most frequent class plus two "
        "standard errors; for regression, the loss of predicting the training mean), or when "
        "its final training loss is above its initial one."
    )
    own = _own_code(cmp)
    if own is not None:  # (your code trained: its data, batches and failures are its own)
        tune = tune.replace(f"({batch}, ", "(").replace(f"on {folds}", own["scored"])
        failures = own["failures"]
    items = [
        tune,
        *([own["training"]] if own is not None else []),
        failures,
        f"<b>Select</b> the best mean validation {metric} per optimizer; a failed setting "
        "never wins (ties go to the smaller learning rate). A chosen rate next to a failed one "
        "is flagged as a cliff.",
        f"<b>Curve runs</b>: the chosen setting with {s.seeds} seeds ({seeds}), {s.steps} steps "
        "on the training split, evaluated on the validation "
        f"split every {s.curve_eval_every} steps: learning curves, time to target, and (first "
        "seed) the optimizer's monitor (update-to-parameter ratio).",
        f"<b>Refit</b> the chosen setting on training + validation data with {s.looks[0]} "
        f"other seeds (test seeds, disjoint from the curve runs'), {s.steps} steps; the test "
        "set is evaluated once, at the end of each refit run, which stores each test "
        f"example's outcome. Means and their {conf}% "
        "intervals count both sources of noise: the seeds' and the test set's own sampling "
        "(seeds and test examples crossed: the variance of the mean is the seed means' "
        "variance over the seeds plus what of the example means' variance the seed-by-example "
        "interaction does not explain, with Satterthwaite's degrees of freedom, the seeds' "
        "k - 1 for a paired comparison; clipped to the metric's range).",
        *_judging(s, metric, conf, cmp.kind.fails_when),
    ]
    if own is not None:  # (what your code's runs did: no monitor, no chance level)
        items = [_as_your_code(item, s.curve_eval_every) for item in items]
    seeds_got = cmp.seed_lines()
    if seeds_got:
        items.append(
            "<b>Test seeds each optimizer got</b>: "
            + "; ".join(escape(line) for line in seeds_got)
            + "."
        )
    ran = "".join(f"<li>{escape(line.strip())}</li>" for line in cmp.protocol())
    return (
        "<p>As run (generated from the spec; the console and comparison.json show the same "
        f'lines):</p><ul class="tight">{ran}</ul>'
        + '<ol class="protocol">'
        + "".join(f"<li>{i}</li>" for i in items)
        + "</ol>"
    )


def _validation(cmp: Any) -> str:
    """How the tuning trials were validated: k-fold cross-validation or a holdout split."""
    s = cmp.spec
    return (
        f"{s.cv_folds}-fold cross-validation over training + validation data (scikit-learn's "
        f"{'Stratified' if cmp.task == 'classification' else ''}KFold, seed {s.split_seed})"
        if s.cv_folds
        else f"a holdout validation split ({s.val_fraction:.0%} of the training data, seed "
        f"{s.split_seed})"
    )


def _batch(s: Any) -> str:
    """The batches a step of the spec ``s`` trains on: the full batch, mini-batches, or
    accumulated micro-batches."""
    acc = s.accumulate or 1
    if s.batch_size is None:
        return "full batch"
    if acc > 1 and not isinstance(s.batch_size, str):
        return (
            f"{s.batch_size * acc} examples a step in {acc} accumulated micro-batches of "
            f"{s.batch_size}"
        )
    return f"mini-batches of {s.batch_size}"


def _search(s: Any) -> tuple[str, list[str]]:
    """How the settings were searched (HTML), and the optimizers kept at a fixed rate."""
    if s.search == "grid":
        search = f"a coarse log grid of {s.lrs_per_optimizer} learning rates per optimizer"
        if s.refine:
            search += (
                f", extended one grid step at a time past an edge that wins (at most "
                f"{s.max_extend} beyond each end of the range), then refined half a step on "
                "either side of the best"
            )
    else:
        search = search_words(s)
    if s.space:
        search += f", with {escape(json.dumps(s.space))}"
    fixed = [c.display for c in s.choices() if c.fixed_lr]
    if fixed:
        search += f"; {escape(', '.join(fixed))} kept at a fixed learning rate (not tuned)"
    return search, fixed


def _judging(s: Any, metric: str, conf: int, fails_when: str) -> list[str]:
    """The protocol's steps after the runs: the choice and the verdict, the failed test
    seeds, the speedups (HTML)."""
    return [
        f"<b>Choose</b> the optimizer with the best mean final validation {metric} over its "
        "curve runs: no test example and no test seed plays a part in the choice. Each other "
        "optimizer is then compared with it on the test seeds on which both trained, paired "
        "by seed and by test example, each of the M - 1 comparisons at the family's "
        f"{100 - conf}% over M - 1 inside a group-sequential design: each look's new seeds "
        "give their own paired t statistic, turned into an exact standard normal and combined "
        "over the looks (the inverse-normal combination test), against boundaries that spend "
        "that level over the looks in proportion to the seeds"
        + (
            f" (looks at {', '.join(map(str, s.looks))} test seeds). The chosen one and every "
            "comparison still open get the next look's seeds; a comparison decided, or too "
            "close to be decided by the last look, gets no more"
            if len(s.looks) > 1
            else ""
        )
        + f". So the chance of calling any optimizer that is as good <i>worse</i> is at most "
        f"{100 - conf}% (simulated: benchmarks/aa_calibration.py, docs/verdict.md): "
        "<i>worse</i> (or <i>better</i>) when its combined statistic -- Wilcoxon's signed-rank "
        "test on every seed both ran, a failed seed ranked the worst, so that a seed made "
        "worse never makes a verdict gentler -- crosses its boundary, else <i>not "
        "distinguishable</i>. Beside each verdict, the size on the seeds both trained at the "
        f"same level: the intervals hold together at {conf}% over every comparison and look.",
        f"<b>Failed test seeds</b> ({escape(fails_when)}) are left out of "
        f"the test metric and counted apart: each optimizer's rate with its exact {conf}% "
        "interval, compared with the chosen one's by the exact McNemar test on the seeds "
        f"both ran, Holm over the M - 1, {conf}% family-wise (a second family beside the "
        "metric's).",
        "<b>Speedups</b>: the steps the chosen one (and a --baseline) needs on its curve runs "
        "to reach each other optimizer's final validation score, over that one's steps "
        "(and the same in each run's own seconds), with a bootstrap interval over the curve "
        "seeds; where the curve runs' ranking at a quarter or half of the budget differs from "
        "the end's, the step at which it changed.",
    ]


def _kv(items: Mapping[str, Any]) -> str:
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(_kv_value(v))}</dd>" for k, v in items.items())
    return f'<dl class="kv">{rows}</dl>'


def _kv_value(v: Any) -> str:
    """A configuration value as shown: an unset one (None) is "default"."""
    if v is None:
        return "default"
    if isinstance(v, Mapping | list):
        return json.dumps(_defaults(v), sort_keys=True)
    return str(v)


def _defaults(v: Any) -> Any:
    if v is None:
        return "default"
    if isinstance(v, Mapping):
        return {k: _defaults(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_defaults(x) for x in v]
    return v


def config_section(cmp: Any) -> str:
    """The configuration and the provenance (versions, git, machine, command, sessions)."""
    s = cmp.spec
    spec = s.to_dict()
    spec["refine"] = s.refines  # as it ran: a budget or random search never refines
    spec["optimizers"] = [
        f"{o['label']}: {o['optimizer']} {o['hyper'] or ''} lr range "
        f"{'default' if o['lr_range'] is None else o['lr_range']}".strip()
        for o in spec["optimizers"]
    ]
    parts = ["<h3>Configuration</h3>", _kv(spec)]
    rec = cmp.record
    if rec is not None:
        prov = dict(rec.provenance)
        shown = {}
        for key in ("versions", "git", "machine", "argv", "created", "task"):
            if key in prov:
                shown[key] = prov[key]
        sessions = prov.get("sessions", [])
        if sessions:
            shown["sessions"] = sessions
            total = sum(float(x.get("seconds", 0.0)) for x in sessions)
            shown["time spent (all sessions)"] = f"{total:.1f} s"
        shown["status"] = rec.status
        shown["run directory"] = str(cmp.run_dir)
        shown["store"] = str(cmp.store_path)
        parts += ["<h3>Provenance</h3>", _kv(shown)]
    return "\n".join(parts)


def trials_section(cmp: Any) -> str:
    """Every tuning setting with its scores, failures and run ids (folded away)."""
    metric = cmp.select_metric.split("/", 1)[1]
    s = cmp.spec
    n = max((len(c.scores) for r in cmp.results for c in r.candidates), default=1)
    if n == 1:
        heads = [f"val {metric}"]
    else:
        folds = [f"fold {i}" for i in range(s.cv_folds)] if s.cv_folds else ["val"]
        seeds = [f"seed {x}" for x in s.tuning_seeds] if s.tune_seeds > 1 else [""]
        heads = [f"{f} {sd}".strip() + f" {metric}" for f in folds for sd in seeds][:n]
    cols = ["optimizer", "setting", *heads, "mean", "failed", "run ids"]
    rows, classes = [], []
    for r in cmp.results:
        lo, hi = r.choice.lr_range
        order = sorted(range(len(r.candidates)), key=lambda i: r.candidates[i].setting["lr"])
        for ci in order:
            c = r.candidates[ci]
            scores = [("-" if not math.isfinite(v) else f"{v:.4f}") for v in c.scores]
            lr = float(c.setting["lr"])
            where = "" if lo * (1 - 1e-6) <= lr <= hi * (1 + 1e-6) else " (extension)"
            failed = sorted({f for f in c.failures if f is not None})
            not_run = sum(st is None for st in c.statuses)
            rows.append(
                [
                    r.choice.display,
                    fmt_setting(c.setting) + where,
                    *scores,
                    "-" if not math.isfinite(c.score) else f"{c.score:.4f}",
                    ", ".join(failed)
                    or (f"pruned at step {c.pruned_step}" if c.pruned else "")
                    or ("not run" if not_run else "-"),
                    ", ".join(str(i) for i in c.run_ids if i is not None),
                ]
            )
            classes.append("best" if ci == r.best else "")
    table = html_table(cols, rows, row_classes=classes, text_columns=(0, 1))
    total = sum(len(r.candidates) for r in cmp.results)
    return (
        f"<details><summary>All {total} tuning settings, by learning rate (chosen ones "
        f"highlighted)</summary>{table}</details>"
    )


def speed_section(cmp: Any) -> str:
    """The speedups over the chosen one (and the baseline) as a table, and where the
    ranking changed during training (HTML; empty where there is nothing to say)."""
    ranking = cmp.ranking()
    if not ranking:
        return ""
    bases = [ranking[0].result]
    bases += [r for r in cmp.results if r.label == cmp.spec.baseline and r is not bases[0]]
    shown = {r.label: r.choice.display for r in cmp.results}
    rows = []
    for b in bases:
        for sp in cmp.speedups(b):
            cells = []
            for est, low, high in (sp.steps, sp.seconds):
                if not math.isfinite(est) and not math.isinf(est):
                    cells.append("-")
                elif math.isinf(est):
                    cells.append("not reached (&gt; 1x)")
                else:
                    top = "not reached" if math.isinf(high) else f"{high:.2f}"
                    cells.append(f'{est:.2f}x <span class="ci">[{low:.2f}, {top}]</span>')
            rows.append([escape(shown[sp.label]), escape(b.choice.display), f"{sp.target:.4g}",
                         *cells])  # fmt: skip
    parts = []
    if rows:
        conf = round(cmp.spec.confidence * 100)
        parts.append(html_table(["optimizer", "over", "its final validation score",
                                 "speedup in steps", "in time"], rows, raw=True,
                                text_columns=(0, 1)))  # fmt: skip
        parts.append(
            f'<p class="sub">The steps the optimizer in <b>over</b> needs on its curve runs (the '
            "mean over seeds, read linearly between evaluations) to reach this one's final "
            f"validation score, over this one's {cmp.spec.steps}; in time the same with each "
            "run's own seconds (forward/backward and optimizer), between runs of one execution "
            "mode. Above 1x: this one is faster. "
            f"{conf}% percentile bootstrap over the {len(cmp.spec.final_seeds)} curve seeds "
            "(resampled together).</p>"
        )
    withheld = dict.fromkeys(sp.withheld for b in bases for sp in cmp.speedups(b) if sp.withheld)
    parts += [f'<p class="sub">{escape(w)}.</p>' for w in withheld]
    for line in cmp.recommendation().split("\n"):
        if line.startswith("The ranking changed during training"):
            parts.append(f"<p>{escape(line)}</p>")
    return "\n".join(parts)
