"""Benchmark: the tuning of ``descentlab compare --problems default --budget 20`` with and
without ``--prune`` -- its CPU time, and whether the verdict stays the same.

For each problem of the default suite (:data:`~descentlab.experiments.multi.DEFAULT_SUITE`,
with the suite's settings and equal budgets of ``--budget`` quasi-random trials per optimizer),
the tuning phase is run twice in fresh run directories, without and with pruning (ASHA by
Optuna's ``SuccessiveHalvingPruner``, :mod:`descentlab.experiments.compare.pruning`), the two
arms interleaved in this process (their order alternates from problem to problem). Only the
tuning is run: the final curve and refit runs are left out (``final_trials`` returns none
here), since they are the same protocol in both arms -- and bit-identical where the chosen
setting is.

Printed per problem: the CPU seconds of each arm (this process and its worker processes,
joined; worker start-up included, the same in both arms), their ratio, the tuning trials
pruned, and the verdict: the best optimizer (by its chosen setting's validation score, the
mean over the tuning seeds) and each optimizer's chosen learning rate, the same when within
one grid step (the spacing of a ``--budget``-point log grid over the optimizer's lr range).

Usage::

    python benchmarks/prune.py [--problems mnist1d,digits,quadratic_deep,charlm]
                               [--budget 20] [--workers 2] [--one-at-a-time] [--noise]
                               [--rule bounds|asha]

Goals: >= 2x less tuning CPU time on every problem; the best optimizer the same with pruning
on at least as many problems as the unpruned protocol agrees with itself across tuning seeds
(``--noise``); each optimizer's unpruned best setting reaches the full length with pruning
(is not cut at a rung) for >= 80 % of the optimizers and problems.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import statistics
import tempfile
import time
from typing import Any

from descentlab.experiments import tuning
from descentlab.experiments.compare import running
from descentlab.experiments.compare.pruning import PRUNERS
from descentlab.experiments.compare.search_space import QUASIRANDOM
from descentlab.experiments.multi import DEFAULT_SUITE, _spec_for


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished (joined) worker processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def tune(
    problem: str,
    budget: int,
    prune: bool,
    workers: int,
    vectorize: bool = True,
    seed: int = 0,
    rule: str = PRUNERS[0],
) -> dict[str, Any]:
    """One arm: the tuning of ``problem``'s comparison; its CPU and wall seconds, each
    optimizer's chosen setting and score, and the trials pruned. ``vectorize=False``: every
    trial trains by itself (``--one-at-a-time``); ``seed``: the comparison's first seed (its
    tuning seeds are ``seed, seed + 1``); ``rule``: the pruner (:data:`PRUNERS`)."""
    settings: dict[str, Any] = {"lrs_per_optimizer": budget, "search": QUASIRANDOM, "seed": seed}
    if prune:
        settings["prune"] = rule
    spec = _spec_for(problem, settings)
    chosen: dict[str, Any] = {}

    def progress(event: str, info: dict[str, Any]) -> None:
        if event == "selected":
            c = info["candidates"]
            best = info["best"]
            chosen[info["choice"].label] = {
                "choice": info["choice"],
                "setting": info["setting"],
                "score": math.nan if best is None else c[best].score,
                "metric": info["metric"],
                "trials": sum(len(x.scores) for x in c),
                "pruned": sum(x.pruned for x in c),
                "best": best,
                "stopped": [x.pruned_step is not None for x in c],
            }

    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        running.final_trials = lambda *a, **k: []  # tuning only (see the module docstring)
        running.compare(spec, tmp, workers=workers, progress=progress, vectorize=vectorize)
    return {
        "cpu": _cpu_seconds() - cpu0,
        "wall": time.perf_counter() - t0,
        "chosen": chosen,
    }


def verdict(arm: dict[str, Any]) -> str | None:
    """The best optimizer by its chosen setting's validation score."""
    chosen = arm["chosen"]
    scored = {k: v for k, v in chosen.items() if math.isfinite(v["score"])}
    if not scored:
        return None
    maximize = next(iter(scored.values()))["metric"] in ("val/accuracy",)
    pick = max if maximize else min
    return pick(scored, key=lambda k: scored[k]["score"])


def survived(full: dict[str, Any], pruned: dict[str, Any]) -> tuple[int, int]:
    """How many optimizers' unpruned best setting (the full arm's choice) reached the full
    length in the pruned arm (the settings are the same draws in both arms), and of how many."""
    kept = total = 0
    for label, x in full["chosen"].items():
        y = pruned["chosen"].get(label)
        if x["best"] is None or y is None or x["choice"].fixed_lr:
            continue
        total += 1
        kept += not y["stopped"][x["best"]]
    return kept, total


def same_lrs(a: dict[str, Any], b: dict[str, Any], budget: int) -> list[str]:
    """The optimizers whose chosen learning rates differ by more than one grid step."""
    out = []
    for label, x in a["chosen"].items():
        y = b["chosen"].get(label)
        if x["setting"] is None or y is None or y["setting"] is None:
            if (x["setting"] is None) != (y is None or y["setting"] is None):
                out.append(label)
            continue
        step = tuning.grid_step(*x["choice"].lr_range, budget)
        if abs(math.log10(x["setting"]["lr"] / y["setting"]["lr"])) > step * (1 + 1e-9):
            out.append(label)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--problems", default=",".join(DEFAULT_SUITE))
    p.add_argument("--budget", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rule", default=PRUNERS[0], choices=PRUNERS, help="the pruner")
    p.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="both arms train every trial by itself (no vectorized passes): what pruning "
        "saves when runs are not stacked",
    )
    p.add_argument(
        "--noise",
        action="store_true",
        help="a third arm: the unpruned tuning again with other tuning seeds (2, 3), and its "
        "verdict against the first -- how much the verdict moves with no pruning at all",
    )
    args = p.parse_args()
    vectorize = not args.one_at_a_time
    problems = [x.strip() for x in args.problems.split(",") if x.strip()]
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.1f} at start; --budget {args.budget}, {args.workers} workers, "
        f"--rule {args.rule}"
        f"{'' if vectorize else ', --one-at-a-time'}",
        flush=True,
    )
    ratios, same, noisy, best_same, best_stable = [], 0, 0, 0, 0
    kept_all = total_all = 0
    for i, problem in enumerate(problems):
        order = (False, True) if i % 2 == 0 else (True, False)
        arms = {
            prune: tune(problem, args.budget, prune, args.workers, vectorize, rule=args.rule)
            for prune in order
        }
        full, pruned = arms[False], arms[True]
        ratio = full["cpu"] / pruned["cpu"]
        ratios.append(ratio)
        best_f, best_p = verdict(full), verdict(pruned)
        moved = same_lrs(full, pruned, args.budget)
        ok = best_f == best_p and not moved
        same += ok
        best_same += best_f == best_p
        kept, total = survived(full, pruned)
        kept_all, total_all = kept_all + kept, total_all + total
        n = sum(v["trials"] for v in pruned["chosen"].values())
        k = sum(v["pruned"] for v in pruned["chosen"].values())
        lrs = ", ".join(
            f"{lab} {full['chosen'][lab]['setting']['lr']:.3g}/"
            f"{pruned['chosen'][lab]['setting']['lr']:.3g}"
            for lab in full["chosen"]
            if full["chosen"][lab]["setting"] and pruned["chosen"].get(lab, {}).get("setting")
        )
        print(
            f"{problem}: tuning CPU {full['cpu']:.1f} s -> {pruned['cpu']:.1f} s with --prune "
            f"({ratio:.2f}x less; wall {full['wall']:.0f} -> {pruned['wall']:.0f} s); pruned "
            f"{k}/{n} tuning trials; unpruned best setting reached the full length for {kept}/"
            f"{total} optimizers; best {best_f} -> {best_p}; lr full/pruned: {lrs}; "
            f"verdict {'same' if ok else 'CHANGED (' + ', '.join(moved or ['best']) + ')'}",
            flush=True,
        )
        if args.noise:
            other = tune(problem, args.budget, False, args.workers, vectorize, seed=2)
            best_o = verdict(other)
            moved_o = same_lrs(full, other, args.budget)
            changed = best_o != best_f or bool(moved_o)
            noisy += changed
            best_stable += best_o == best_f
            print(
                f"  noise: unpruned with tuning seeds 2, 3 ({other['cpu']:.1f} CPU s): best "
                f"{best_f} -> {best_o}; verdict against seeds 0, 1 "
                f"{'CHANGED (' + ', '.join(moved_o or ['best']) + ')' if changed else 'same'}",
                flush=True,
            )
    print(
        f"# median ratio {statistics.median(ratios):.2f}x; same verdict on {same}/"
        f"{len(problems)} problems; best optimizer the same with pruning on {best_same}/"
        f"{len(problems)}"
        + (
            f" (the unpruned protocol with other tuning seeds: on {best_stable}/{len(problems)}); "
            f"unpruned verdict moved by the seeds alone on {noisy}"
            if args.noise
            else ""
        )
        + f"; each optimizer's unpruned best setting reached the full length in {kept_all}/"
        f"{total_all} ({kept_all / max(1, total_all):.0%})"
        + f"; load {os.getloadavg()[0]:.1f} at the end",
        flush=True,
    )


if __name__ == "__main__":
    main()
