"""Calibration of compare's verdict, through the comparison's own loop (``more_seeds()`` until
it is empty, then ``ranking()``; ``benchmarks/calibration.py`` beside it): the
family-wise error of the metric verdict and of the failure verdict, the simultaneous
intervals' coverage and the power, in every scenario.

    PYTHONPATH=src python benchmarks/aa_calibration.py                     # every table, 400 each
    PYTHONPATH=src python benchmarks/aa_calibration.py --only fail10 --sims 1000
    PYTHONPATH=src python benchmarks/aa_calibration.py --only power --sims 400

Prints markdown tables: each rate with its Monte-Carlo standard error, the mean test seeds
per optimizer, and each row's CPU seconds. "Any call": some comparison called worse or better,
whatever the truth (the false calls where the means over all seeds are equal, "-mean"
scenarios). Where an optimizer fails ("trap"): how often a failing one is chosen while
another is called worse and none of its own test seeds failed (nothing says it is brittle).
"""

from __future__ import annotations

import argparse
import math
import time

from calibration import Scenario, rates  # (benchmarks/calibration.py, beside this script)

#: The A/A scenarios: name -> (the numbers of optimizers, the scenario's keywords).
SCENARIOS: dict[str, tuple[tuple[int, ...], dict[str, object]]] = {
    "small": ((2, 5, 8), {"seed_sd": 0.1}),
    "large": ((2, 5, 8), {"seed_sd": 0.3}),
    "noisy": ((2, 5, 8), {"seed_sd": 0.1, "noisy": 5.0}),
    "acc0.5": ((8,), {"accuracy": 0.5, "chance": None}),
    "acc0.99": ((8,), {"accuracy": 0.99}),
    "regression": ((2, 8), {"task": "regression"}),
    "fail2": ((2, 5, 8), {"fail": (0.02,)}),
    "fail5": ((2, 5, 8), {"fail": (0.05,)}),
    "fail10": ((2, 5, 8), {"fail": (0.10,)}),
    "fail20": ((2, 5, 8), {"fail": (0.20,)}),
    "fail-every": ((5,), {"fail": (0.0, 0.02, 0.05, 0.10, 0.20)}),
    # every optimizer failing as often: the failure verdict's A/A
    "fail10-all": ((5,), {"fail": (0.10,) * 5}),
    "fail20-all": ((5,), {"fail": (0.20,) * 5}),
    "fail2-mean": ((2, 5, 8), {"fail": (0.02,), "compensate": True}),
    "fail5-mean": ((2, 5, 8), {"fail": (0.05,), "compensate": True}),
    "fail10-mean": ((2, 5, 8), {"fail": (0.10,), "compensate": True}),
    "fail20-mean": ((2, 5, 8), {"fail": (0.20,), "compensate": True}),
    "fail-every-mean": ((5,), {"fail": (0.0, 0.02, 0.05, 0.10, 0.20), "compensate": True}),
    "ties": ((2, 5), {"examples": 142, "seeds": 2}),
    # rare bad seeds that still train (above chance): 5 % or 10 % of the first optimizer's
    # seeds 17 or 26 accuracy points down; the optimizer truly worse by their share
    "bad5-17": ((2, 5, 8), {"bad": 0.05, "bad_drop": 0.17}),
    "bad5-26": ((2, 5, 8), {"bad": 0.05, "bad_drop": 0.26}),
    "bad10-17": ((2, 5, 8), {"bad": 0.10, "bad_drop": 0.17}),
    "bad10-26": ((2, 5, 8), {"bad": 0.10, "bad_drop": 0.26}),
    # seed effects from a Student t with 3 degrees of freedom (large: sd 0.3), with failures
    "t3": ((2, 5, 8), {"seed_sd": 0.3, "seed_df": 3.0}),
    "t3-fail10": ((2, 5, 8), {"seed_sd": 0.3, "seed_df": 3.0, "fail": (0.10,)}),
}

#: The power scenarios at M = 8: one optimizer truly worse.
POWER: dict[str, dict[str, object]] = {
    "small, worse by 1 seed-sd": {"seed_sd": 0.1, "worse_sd": 1.0},
    "large, worse by 0.5 logit (4.7 points)": {"seed_sd": 0.3, "worse_logit": 0.5},
    "noisy, worse by 1 seed-sd": {"seed_sd": 0.1, "noisy": 5.0, "worse_sd": 1.0},
    "regression, worse by 1 seed-sd": {"task": "regression", "worse_sd": 1.0},
}


def _cell(rate: float, se: float) -> str:
    return "-" if math.isnan(rate) else f"{rate:.1%} +- {se:.1%}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=400, help="comparisons simulated per cell")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="scenario names, comma-separated, or 'power'")
    ap.add_argument("--m", default="", help="numbers of optimizers, comma-separated (default all)")
    args = ap.parse_args()
    only = {x for x in args.only.split(",") if x}
    print(f"{args.sims} comparisons per cell, through more_seeds()/ranking()\n")
    print(
        "| scenario | M | metric FWER | failure FWER | either | intervals cover | any call | "
        "trap | seeds | CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (ms, kw) in SCENARIOS.items():
        if only and name not in only:
            continue
        for m in (m for m in ms if not args.m or str(m) in args.m.split(",")):
            t0 = time.process_time()
            sc = Scenario(m, **kw)  # type: ignore[arg-type]
            r = rates(sc, sims=args.sims, seed=args.seed + m)
            trap = _cell(r.unshown, r.unshown_se) if sc.fail else "-"
            print(
                f"| {name} | {m} | {_cell(r.false, r.false_se)} | "
                f"{_cell(r.fail_false, r.fail_false_se)} | {_cell(r.any_false, r.any_false_se)} "
                f"| {_cell(r.coverage, r.coverage_se)} | {_cell(r.called, r.called_se)} | "
                f"{trap} | {r.seeds:.1f} | {time.process_time() - t0:.0f} |",
                flush=True,
            )
    if only and "power" not in only:
        return
    print("\nPower at M = 8: the worse one called worse (and the errors among the 7 equal)")
    print("| scenario | power | metric FWER | intervals cover | seeds | CPU s |")
    print("|---|---|---|---|---|---|")
    for name, kw in POWER.items():
        t0 = time.process_time()
        r = rates(Scenario(8, **kw), sims=args.sims, seed=args.seed + 80)  # type: ignore[arg-type]
        print(
            f"| {name} | {_cell(r.power, r.power_se)} | {_cell(r.false, r.false_se)} | "
            f"{_cell(r.coverage, r.coverage_se)} | {r.seeds:.1f} | "
            f"{time.process_time() - t0:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
