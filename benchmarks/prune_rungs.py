"""Benchmark: where pruning's rungs should be -- each rule's survival of every optimizer's
unpruned best setting, and the training steps it saves, from dense validation curves.

For each problem of ``--problems`` (the default suite's settings, ``--budget`` quasi-random
settings per optimizer, tuning seeds ``seed, seed + 1`` for each ``--seeds`` entry), every
unpruned tuning run is trained once, vectorized in this process, with its validation score
recorded every ``T / 16`` steps. Each rule is then replayed on those curves by
:func:`~descentlab.experiments.compare.pruning.decide` (the protocol's own decisions):

- ``asha``: the setting's mean score only (no chance level, no spread) -- ASHA alone, the
  rule before the noise rules;
- ``noise``: the settings' scores on each seed and the chance level -- ``--prune asha``
  (a rung that cannot tell the settings apart decides nothing; a cut within noise is not
  made);
- ``bounds``: the same scores, the confidence-bound rule (``--prune bounds``: a setting is cut
  where it is worse than the best by more than the one-sided 1 % margin of its noise).

Printed per rule and rung placement (in 16ths of a trial): how many optimizers' unpruned
best setting (by its mean final score) reached the full length, and the runs x steps trained
against no pruning, with restarted rung runs (the protocol today) and with pruned runs
leaving a running pass (no restarts).

Usage::

    python benchmarks/prune_rungs.py [--problems quadratic_deep,digits] [--seeds 0,2]
                                     [--budget 20] [--curves DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

from descentlab.experiments.compare import planning, pruning
from descentlab.experiments.compare.results import score_metric
from descentlab.experiments.compare.search_space import QUASIRANDOM
from descentlab.experiments.multi import _spec_for
from descentlab.experiments.trial import DataSource
from descentlab.problems.problem import chance_level

#: rung placements tried, in 16ths of a trial
PLACEMENTS: tuple[tuple[int, ...], ...] = ((1, 4), (2, 8), (2,), (4,), (2, 4, 8), (4, 8))


def curves(problem: str, seed: int, budget: int) -> dict[str, Any]:
    """Every unpruned tuning run's validation score at steps ``0, T/16, ..., T``, per
    optimizer, setting and run (fold and tuning seed)."""
    from descentlab.engine.multirun import train_many

    spec = _spec_for(problem, {"lrs_per_optimizer": budget, "search": QUASIRANDOM, "seed": seed})
    plan = spec.plan()
    source = DataSource(spec.problem, dict(spec.problem_options), spec.split_seed,
                        spec.val_fraction)  # fmt: skip
    splits = source.load()
    own = (getattr(splits, "meta", None) or {}).get("metric")
    metric, maximize = score_metric(splits.task, own)
    every = plan.tune_steps // 16
    out: dict[str, Any] = {"metric": metric, "maximize": maximize,
                           "chance": chance_level(splits, own), "opts": {}}  # fmt: skip
    for choice in plan.choices:
        trials = planning.tuning_trials(plan, choice)
        configs = [dataclasses.replace(t.config, eval_every=every) for t in trials]
        runs = train_many(configs, mode="auto", workers=1, progress=False,
                          data=source.get(trials[0].data))  # fmt: skip
        rows: dict[int, list[list[float]]] = {}
        for t, r in zip(trials, runs, strict=True):
            s = r.metrics.get(metric)
            got = (
                {} if s is None else dict(zip(map(int, s.steps), map(float, s.values), strict=True))
            )
            rows.setdefault(t.tag[0], []).append([got.get(k * every, math.nan) for k in range(17)])
        out["opts"][choice.label] = [rows[i] for i in sorted(rows)]
    return out


def replay(
    data: dict[str, Any], rungs: tuple[int, ...], noise: bool, rule: str = "asha"
) -> list[float]:
    """``[kept, optimizers, steps unpruned, steps with restarts, steps without]`` of one
    rule (steps: runs x sixteenths of a trial)."""
    maximize, kept, total = data["maximize"], 0, 0
    full = restart = inpass = 0.0
    for rows in data["opts"].values():
        final = [sum(r[16] for r in runs) / len(runs) for runs in rows]
        finite = [i for i in range(len(rows)) if math.isfinite(final[i])]
        if not finite:
            continue
        best = (max if maximize else min)(finite, key=lambda i: final[i])

        def score(i: int, k: int, rows: Any = rows) -> Any:
            values = [run[rungs[k]] for run in rows[i]]
            return values if noise else sum(values) / len(values)

        d = pruning.decide(len(rows), rungs, score, maximize=maximize,
                           chance=data["chance"] if noise else None, rule=rule)  # fmt: skip
        total += 1
        kept += d.verdicts[best].state == "full"
        for i, v in enumerate(d.verdicts):
            stop = 16 if v.state == "full" else rungs[v.rung]  # type: ignore[index]
            n = len(rows[i])
            restart += n * (sum(r for r in rungs if r < stop) + stop)
            inpass += n * stop
            full += n * 16
    return [kept, total, full, restart, inpass]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--problems", default="quadratic_deep,digits")
    p.add_argument("--seeds", default="0,2")
    p.add_argument("--budget", type=int, default=20)
    p.add_argument("--curves", default=None, help="a folder to keep (and reuse) the curves in")
    args = p.parse_args()
    keep = Path(args.curves) if args.curves else None
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"--budget {args.budget}", flush=True)  # fmt: skip
    datas = []
    for problem in [x.strip() for x in args.problems.split(",") if x.strip()]:
        for seed in [int(x) for x in args.seeds.split(",")]:
            path = None if keep is None else keep / f"{problem}_{seed}.json"
            if path is not None and path.exists():
                datas.append(json.loads(path.read_text()))
                continue
            t0 = time.process_time()
            datas.append(curves(problem, seed, args.budget))
            print(f"# {problem}, seed {seed}: {time.process_time() - t0:.0f} CPU s", flush=True)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(datas[-1]))
    for name, noise, rule in (("asha ", False, "asha"), ("noise", True, "asha"),
                              ("bounds", True, "bounds")):  # fmt: skip
        for rungs in PLACEMENTS:
            kept, total, full, restart, inpass = (
                sum(x) for x in zip(*(replay(d, rungs, noise, rule) for d in datas), strict=True)
            )
            print(
                f"{name} rungs at {', '.join(f'{r}/16' for r in rungs)}: "
                f"unpruned best reached the full length for {kept:.0f}/{total:.0f} optimizers "
                f"({kept / max(1, total):.0%}); {full / restart:.2f}x fewer steps with restarted "
                f"rung runs, {full / inpass:.2f}x without restarts",
                flush=True,
            )


if __name__ == "__main__":
    main()
