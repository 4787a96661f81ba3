"""The versus lines of a comparison's console: each optimizer against the chosen one, paired
by seed (or test example), its difference in the metric's own units with the interval, the
verdict's words, and what the seeds allowed could not decide."""

from __future__ import annotations

import math
from typing import Any

from descentlab.experiments.compare import sequential
from descentlab.experiments.compare.verdict import Standing

__all__ = ["seeds_words", "versus_lines"]


def _proportion(cmp: Any) -> bool:
    """Whether the metric is a proportion, its differences shown x100 (points): a problem's
    accuracy, or your own code's maximized metric where its Score declared bounds (0, 1)."""
    if not cmp.classification:
        return False
    return cmp.kind.metric_said(all(r.metric_bounds == (0.0, 1.0) for r in cmp.results), True)


def _size(cmp: Any, x: float, sign: bool = True) -> str:
    """A difference in the metric's units: accuracy points (a proportion's, x100), else the
    metric's own."""
    if not math.isfinite(x):
        return f"{x:+}" if sign else f"{x}"
    if _proportion(cmp):
        return f"{100 * x:{'+' if sign else ''}.1f}"
    return f"{x:{'+' if sign else ''}.3g}"


def versus_lines(cmp: Any, ranking: list[Standing]) -> list[str]:
    """One line per other optimizer: its paired difference with the chosen one, the
    simultaneous interval, the verdict (said where it comes from the seeds' ranks alone), and
    where set the practical threshold."""
    if len(ranking) < 2:
        return []
    top = ranking[0].result.choice.display
    conf = round(cmp.spec.confidence * 100)
    family = ranking[1].test.family
    # (the differences are the test metric's: a Problem's loss, not its RMSE)
    units = cmp.kind.metric_said(cmp.metric_name, "accuracy points" if cmp.classification
                                 else cmp.metric_name)  # fmt: skip
    if cmp.kind.metric_said(_proportion(cmp), False):
        units += " points (x100: a proportion, its bounds (0, 1))"
    pairing = "seed" if any(r.test_outcomes_missing for r in cmp.results) else (
        "seed and test example")  # fmt: skip
    seq = ranking[1].sequential is not None
    where = "every look and " if seq else ""
    what = (
        "the pseudo-median of the seeds' differences (Hodges-Lehmann, a failed seed the "
        "worst), the size the signed-rank verdict tests, with the interval it inverts; "
        if seq else ""
    )  # fmt: skip
    tau = cmp.spec.min_difference
    head = (
        f"Against {top}, paired by {pairing} on the seeds both trained (how much "
        f"worse, in {units}; {what}{conf}% intervals that hold together over {where}the "
        f"{family} comparison{'s' if family != 1 else ''})"
        + (f"; practical threshold --min-difference {_size(cmp, tau, False)}" if tau else "")
        + ":"
    )
    lines = [head]
    if ranking[1].sequential is not None:
        lines += sequential.undecidable(cmp.spec.looks, family, cmp.spec.confidence)
    notes = {"beyond": f"by more than {_size(cmp, tau or 0, False)}",
             "maybe below": f"possibly by less than {_size(cmp, tau or 0, False)}",
             "within": f"equivalent within +-{_size(cmp, tau or 0, False)}"}  # fmt: skip
    for x in ranking[1:]:
        est, lo, hi = x.interval
        name = x.result.choice.display
        seeds = x.test.diff.seeds
        if x.verdict == "identical":
            lines.append(f"  {name}: identical on every seed and test example ({seeds} seeds)")
            continue
        words = "better on the test set" if x.verdict == "better" else x.verdict
        if not math.isfinite(est):
            lines.append(f"  {name}: too few seeds both trained to judge ({seeds}), {words}")
            continue
        extra = f", {notes[x.practical]}" if x.practical else ""
        if x.by_ranks_alone:
            extra += (f" by the seeds' ranks over every seed both ran (behind on "
                      f"{x.test.behind} of the {seeds} both trained{_alone(x)}; the "
                      "interval reaches 0)")  # fmt: skip
        if x.by_interval_alone:
            extra += (f" (the interval on the {seeds} both trained excludes 0, the test "
                      f"over every seed both ran does not decide{_alone(x)})")  # fmt: skip
        everything = seeds_words(x, cmp.classification, ".3f" if cmp.classification else ".4g")
        if x.sequential is not None and math.isfinite(x.test.diff.mean):
            everything += f"; their mean difference {_size(cmp, x.test.diff.mean)}, not tested"
        ci = _interval_words(cmp, lo, hi, x.sequential.seeds if x.sequential else seeds, x)
        lines.append(
            f"  {name}: {_size(cmp, est)} {ci}, {words}{extra} "
            f"({seeds} seed{'s' if seeds != 1 else ''} both trained{everything})"
        )
    return lines


def _interval_words(cmp: Any, low: float, high: float, seeds: int, x: Standing) -> str:
    """An interval in the metric's units; where the test cannot bound one end at its level
    (too few seeds, or seeds where one side failed: the worst a seed can do, whatever the
    shift), that end is said to be missing and why -- never an infinite number or the
    metric's own edge printed as a bound."""
    if math.isfinite(low) and math.isfinite(high):
        return f"[{_size(cmp, low)}, {_size(cmp, high)}]"

    def why(failed: int, side: str) -> str:
        alone = f", {failed} where only {side} failed," if failed else ""
        return f"at this level {seeds} seed{'s' if seeds != 1 else ''}{alone} cannot bound it"

    f = x.failures
    if math.isfinite(low):
        return f"(at least {_size(cmp, low)}; no upper bound: {why(f.more, 'it')} above)"
    if math.isfinite(high):
        return (
            f"(at most {_size(cmp, high)}; no lower bound: {why(f.fewer, 'the chosen one')} below)"
        )
    return f"(no interval: {why(0, '')})"


def _alone(x: Standing) -> str:
    """The seeds on which only ``x`` failed (the test counts each as the worst a seed can
    do) or only the chosen one did, in words."""
    f = x.failures
    sides = ((f.more, "it"), (f.fewer, "the chosen one"))
    words = [f"{n} where only {who} failed" for n, who in sides if n]
    return ("; " + " and ".join(words) + ", counted in the test") if words else ""


def seeds_words(x: Standing, cls: bool, f: str) -> str:
    """``x``'s mean over every test seed with a score, where a failed seed has one (a
    diverged run has none: then nothing to add to the mean on the seeds that trained)."""
    mean, n = x.result.test_mean_all(cls)
    scores = x.result.test_accuracy_seeds if cls else x.result.test_loss_seeds
    failed = x.result.test_failures
    scored = sum(1 for s in failed if math.isfinite(scores.get(s, math.nan)))
    if not scored or not math.isfinite(mean):
        return ""
    none = len(failed) - scored
    return (f"; {mean:{f}} over all {n} seeds with a score, the {scored} failed one"
            f"{'s' if scored != 1 else ''} as {'they' if scored != 1 else 'it'} scored"
            + (f" ({none} more failed with no score)" if none else ""))  # fmt: skip
