"""Targets from reference runs: how the stored targets were measured, and how a problem of
your own gets its own, once.

A reference comparison is Adam alone in the problem's setting: its learning rate chosen on a
5-point log grid over its range on validation data (constant lr, one tuning seed), then 3
seeds. The validation target is the median of the 3 curve runs' final validation metric, the
test target the median of the 3 refit runs' test metric (AlgoPerf, Dahl et al. 2023, fixes
its targets from reference runs the same way: before, and apart from, the optimizers it
scores). ``scripts/measure_targets.py`` measures the default suite's targets with
:func:`measure_target` and stores them with the problems
(:mod:`descentlab.problems.targets`); ``descentlab compare --problems ... --measure-targets``
measures them for a problem that has none. The reference comparison is an ordinary
comparison in the runs folder: run again, it finds its finished trials (by their configs and
the data's fingerprint) instead of training them again, so a problem's target is measured
once, and measured anew when its data or setting change.
"""

from __future__ import annotations

import dataclasses
import math
import os
from statistics import median
from typing import Any

from descentlab.experiments.compare import CompareSpec, compare
from descentlab.problems.targets import Target, fingerprint

__all__ = ["REFERENCE", "measure_target", "reference_spec"]

#: The reference comparison's protocol (fields of a CompareSpec).
REFERENCE: dict[str, Any] = {
    "optimizers": ["adam"],
    "search": "grid",
    "lrs_per_optimizer": 5,
    "refine": False,
    "tune_seeds": 1,
    "seeds": 3,
    "landscapes": (),
    "name": None,
}

_WORDS = (
    "Adam, lr chosen on a 5-point log grid over {lo:g}..{hi:g} on validation data (chose "
    "{lr:.3g}), constant lr, then 3 seeds; median of their final validation / refit test metric"
)


def reference_spec(spec: CompareSpec) -> CompareSpec:
    """The reference comparison of ``spec``'s problem: its setting, the reference protocol."""
    return dataclasses.replace(spec, **REFERENCE)


def measure_target(
    name: str,
    spec: CompareSpec,
    runs_dir: str | os.PathLike[str],
    *,
    workers: int | None = None,
    problem: Any = None,
    progress: Any = None,
) -> Target:
    """The targets of problem ``name`` in ``spec``'s setting, from its reference comparison
    (run in ``runs_dir``, or found there finished).

    Raises:
        ValueError: the reference runs failed (no finite result on every seed).
    """
    ref = reference_spec(spec)
    cmp = compare(ref, runs_dir, workers=workers, progress=progress, problem=problem)
    key = cmp.select_metric.split("/", 1)[1]
    (res,) = cmp.results
    curves = res.curves.get(f"val/{key}")
    by_seed = {
        "accuracy": res.test_accuracy_seeds,
        "loss": res.test_loss_seeds,
        "rmse": res.test_rmse_seeds,
    }[key]
    val = [] if curves is None else [float(v[-1]) for _, v in curves.runs]
    test = [float(v) for v in by_seed.values()]
    if res.best_setting is None or len(val) != 3 or len(test) != 3:
        raise ValueError(f"{name}: the reference runs failed (every tuning trial failed?)")
    if not all(map(math.isfinite, val + test)):
        raise ValueError(f"{name}: the reference runs did not all finish ({val}, {test})")
    lo, hi = res.choice.lr_range
    return Target(
        problem=name,
        metric=key,
        maximize=key == "accuracy",
        validation=round(median(val), 4),
        test=round(median(test), 4),
        steps=spec.steps,
        fingerprint=fingerprint(spec.to_dict()),
        reference=_WORDS.format(lo=lo, hi=hi, lr=res.best_setting["lr"]),
    )
