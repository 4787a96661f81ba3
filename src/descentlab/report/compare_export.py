"""Every trial and run of a comparison as CSV and JSON, written beside its report.

``trials.csv`` has one row per training run: each tuning trial (its setting, fold or tuning
seed, validation score, status and failure), each curve run (final validation metrics, steps
and seconds to the target) and each refit run (test metrics); curve and refit runs with their
own time (``train_seconds``: forward/backward and optimizer, ``optimizer_seconds``, ``clock``:
:mod:`descentlab.engine.timing`). ``comparison.json`` holds the
specification, the results table, the ranking with its paired tests and the same trials.
Both are functions of the :class:`~descentlab.experiments.compare.Comparison` alone, and are
written atomically (a half-written file is never left behind).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from descentlab._files import make_dirs, write_atomic
from descentlab.store import EXPORT_FILES, store_identity

__all__ = ["EXPORT_FILES", "trial_rows", "write_exports"]


_COLUMNS = [
    "optimizer",
    "phase",
    "setting",
    "split",
    "seed",
    "run_id",
    "status",
    "failure",
    "val_score",
    "final_val_accuracy",
    "final_val_loss",
    "steps_to_target",
    "seconds_to_target",
    "train_seconds",
    "optimizer_seconds",
    "clock",
    "execution_mode",
    "test_accuracy",
    "test_loss",
    "test_rmse",
]


def _num(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _splits(cmp: Any, n: int) -> list[str]:
    s = cmp.spec
    folds = [f"fold {i}" for i in range(s.cv_folds)] if s.cv_folds else ["holdout"]
    seeds = [f"seed {x}" for x in s.tuning_seeds]
    names = [f"{f}, {sd}" for f in folds for sd in seeds]
    return names[:n] + [f"#{i}" for i in range(len(names), n)]


def trial_rows(cmp: Any) -> list[dict[str, Any]]:
    """One dict per run of the comparison (columns :data:`_COLUMNS`; None where not
    applicable)."""
    rows: list[dict[str, Any]] = []
    seeds = cmp.spec.final_seeds
    for r in cmp.results:
        base = {k: None for k in _COLUMNS} | {"optimizer": r.choice.display}
        for cand in r.candidates:
            where = _splits(cmp, len(cand.scores))
            for j, score in enumerate(cand.scores):
                rows.append(
                    base
                    | {
                        "phase": "tune",
                        "setting": json.dumps(cand.setting, sort_keys=True),
                        "split": where[j],
                        "run_id": cand.run_ids[j] if j < len(cand.run_ids) else None,
                        "status": cand.statuses[j] if j < len(cand.statuses) else None,
                        "failure": cand.failures[j] if j < len(cand.failures) else None,
                        "val_score": _num(score),
                    }
                )
        setting = json.dumps(r.best_setting, sort_keys=True) if r.best_setting else None
        reached = iter(zip(r.steps_to_target, r.seconds_to_target, strict=False))
        vals = iter(zip(r.final_val_accuracy, r.final_val_loss, strict=False))
        for seed, rid in zip(seeds, r.curve_runs, strict=False):
            if rid is None:
                continue
            step, secs = next(reached, (None, None))
            acc, loss = next(vals, (None, None))
            rows.append(
                base
                | {
                    "phase": "curve",
                    "setting": setting,
                    "split": "train / validation",
                    "seed": seed,
                    "run_id": rid,
                    "final_val_accuracy": _num(acc),
                    "final_val_loss": _num(loss),
                    "steps_to_target": step,
                    "seconds_to_target": _num(secs),
                    **_timing(r, rid),
                }
            )
        for seed, rid in zip(cmp.spec.test_seeds, r.refit_runs, strict=False):
            if rid is None:
                continue
            rows.append(
                base
                | {
                    "phase": "refit",
                    "setting": setting,
                    "split": "train + validation / test",
                    "seed": seed,
                    "run_id": rid,
                    "test_accuracy": _num(r.test_accuracy_seeds.get(seed)),
                    "test_loss": _num(r.test_loss_seeds.get(seed)),
                    "test_rmse": _num(r.test_rmse_seeds.get(seed)),
                    **_timing(r, rid),
                }
            )
    return rows


def _named(cmp: Any, rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and rows with an objective's metric under its own name (``test_mse``, not
    ``test_loss``); a problem's as they are."""
    kept = "accuracy" if cmp.classification else "loss"
    dropped = {"final_val_accuracy", "final_val_loss", "test_accuracy", "test_loss", "test_rmse"}
    renamed = {f"final_val_{kept}": f"final_val_{cmp.metric_name}",
               f"test_{kept}": f"test_{cmp.metric_name}"}  # fmt: skip
    columns = [renamed.get(c, c) for c in _COLUMNS if c in renamed or c not in dropped]
    own = [{renamed.get(k, k): v for k, v in row.items() if k in renamed or k not in dropped}
           for row in rows]  # fmt: skip
    return cmp.kind.metric_said((columns, own), (_COLUMNS, rows))


def _timing(r: Any, run_id: int) -> dict[str, Any]:
    """A run's own forward/backward + optimizer seconds, its optimizer's, and the clock."""
    t = r.run_timings.get(run_id, {})
    return {
        "train_seconds": _num(t.get("train_seconds")),
        "optimizer_seconds": _num(t.get("optimizer_seconds")),
        "clock": t.get("clock"),
        "execution_mode": t.get("mode"),
    }


def _sequential(t: Any) -> dict[str, Any]:
    """The sequential verdict's numbers of one comparison (none for the chosen one or a
    choice made on the test outcomes)."""
    if t is None:
        return {}
    return {
        "combined_z": [_num(c) for c in t.combined],
        "decided_at_look": t.look,
        "level": _num(t.level),
        "boundary": _num(t.boundary),
        "why_these_seeds": t.why,
    }


def _ranking(cmp: Any) -> list[dict[str, Any]]:
    out = []
    ranking = cmp.ranking()
    for x in ranking:
        t, d, f = x.test, x.test.diff, x.failures
        est, low, high = x.interval
        out.append(
            {
                "optimizer": x.result.choice.display,
                "mean": _num(x.mean),
                "verdict": "chosen" if x is ranking[0] else t.verdict,
                "difference": {"mean": _num(d.mean), "low": _num(d.low), "high": _num(d.high)},
                "interval": {
                    "estimate": _num(est),
                    "low": _num(low),
                    "high": _num(high),
                    "simultaneous_over": t.family,
                },
                "practical": x.practical or None,
                "seeds": d.seeds,
                "test_examples": d.examples,
                "behind_on_seeds": t.behind,
                "sign_test_p": _num(t.sign_p),
                "p": _num(t.p),
                "p_adjusted": _num(t.p_adjusted),
                "comparisons_corrected_for": t.family,
                "chosen_on": x.chosen_on,
                "validation_score": _num(x.validation),
                "describe": t.describe(),
                "correction": t.corrected,
                "failures": {
                    "failed": f.failed,
                    "runs": f.runs,
                    "rate": _num(f.rate),
                    "low": _num(f.low),
                    "high": _num(f.high),
                    "reasons": dict(f.reasons),
                    "p_adjusted": _num(f.p_adjusted),
                    "verdict": f.verdict or None,
                },
                **_sequential(x.sequential),
            }
        )
    return out


def _speedups(cmp: Any) -> list[dict[str, Any]]:
    """The speedups over the chosen one and the baseline, each with its interval."""
    bases = [None] + [r for r in cmp.results if r.label == cmp.spec.baseline]
    return [
        {
            "optimizer": sp.label,
            "over": sp.baseline,
            "target": _num(sp.target),
            "steps": [_num(v) for v in sp.steps],
            "seconds": [_num(v) for v in sp.seconds],
            "reached": sp.reached,
            "time_withheld": sp.withheld or None,
        }
        for b in bases
        for sp in cmp.speedups(b)
    ]


def write_exports(cmp: Any, folder: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``trials.csv`` and ``comparison.json`` into ``folder``; returns their paths."""
    folder = Path(folder)
    make_dirs(folder)  # (noted: a command that fails for lack of space removes it)
    columns, rows = _named(cmp, trial_rows(cmp))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    csv_path, json_path = folder / EXPORT_FILES[0], folder / EXPORT_FILES[1]
    payload = {
        "spec": cmp.spec.to_dict(),
        "task": cmp.task,
        "select_metric": cmp.select_metric,
        "complete": cmp.complete,
        "table": cmp.rows(),
        "ranking": _ranking(cmp),
        "speedups": _speedups(cmp),
        "crossings": [dataclasses.asdict(c) for c in cmp.crossings()],
        "recommendation": cmp.recommendation(),
        "protocol": cmp.protocol(),
        "seeds": cmp.seed_lines(),
        "warnings": cmp.warnings(),
        "trials": rows,
        # the store these exports were made from (a store emptied or replaced is told apart)
        "store": {"file": cmp.store_path.name, "id": store_identity(cmp.store_path)},
    }
    payload = {**cmp.kind.metric_said({"metric": cmp.metric_name}, {}), **payload}
    text = json.dumps(_clean(payload), indent=1, allow_nan=False)
    write_atomic(csv_path, buf.getvalue())  # never half-written
    write_atomic(json_path, text)
    return csv_path, json_path


def _clean(v: Any) -> Any:
    """``v`` as plain JSON: NaN and infinities as null, tuples and arrays as lists."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if hasattr(v, "tolist"):
        return _clean(v.tolist())
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if v is None or isinstance(v, bool | int | str):
        return v
    return str(v)
