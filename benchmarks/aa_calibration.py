"""Calibration of compare's verdict: the family-wise error (optimizers as good as the chosen one
called worse or better) and the power, for the fixed protocol (5 seeds shared by the choice
and the test, Holm over every pair) and the sequential one (the choice on other seeds, test
seeds added where a comparison is open), in every scenario
(:mod:`descentlab.experiments.compare.calibration`).

    PYTHONPATH=src python benchmarks/aa_calibration.py                  # every table, 1,000 each
    PYTHONPATH=src python benchmarks/aa_calibration.py --only power --sims 500
    PYTHONPATH=src python benchmarks/aa_calibration.py --ms 2,8 --only small

Prints markdown tables: each rate with its Monte-Carlo standard error, and the mean test
seeds per optimizer the sequential protocol ran.
"""

from __future__ import annotations

import argparse
import time

from descentlab.experiments.compare.calibration import Scenario, rates
from descentlab.experiments.compare.sequential import default_looks

#: The A/A scenarios: name -> the scenario's keywords (M comes from --ms).
SCENARIOS: dict[str, dict[str, object]] = {
    "small": {"seed_sd": 0.1, "rho": 0.5},
    "large": {"seed_sd": 0.3, "rho": 1.0},
    "noisy": {"seed_sd": 0.1, "rho": 0.5, "noisy": 5.0},
    "acc0.5": {"seed_sd": 0.1, "rho": 0.5, "accuracy": 0.5},
    "acc0.99": {"seed_sd": 0.1, "rho": 0.5, "accuracy": 0.99},
    "regression": {"task": "regression", "seed_sd": 0.1, "rho": 0.5},
}

#: The power scenarios at M = 8: one optimizer truly worse.
POWER: dict[str, dict[str, object]] = {
    "small, worse by 1 seed-sd": {"seed_sd": 0.1, "rho": 0.5, "worse_sd": 1.0},
    "large, worse by 0.5 logit (4.7 points)": {"seed_sd": 0.3, "rho": 1.0, "worse_logit": 0.5},
    "noisy, worse by 1 seed-sd": {"seed_sd": 0.1, "rho": 0.5, "noisy": 5.0, "worse_sd": 1.0},
    "regression, worse by 1 seed-sd": {"task": "regression", "seed_sd": 0.1, "worse_sd": 1.0},
}


def _cell(rate: float, se: float) -> str:
    return f"{rate:.1%} +- {se:.1%}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ms", default="2,3,4,6,8,10", help="numbers of optimizers (A/A tables)")
    ap.add_argument("--sims", type=int, default=1000, help="comparisons simulated per cell")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="one scenario name, or 'power'")
    ap.add_argument("--seeds", type=int, default=5, help="seeds at the first look")
    ap.add_argument("--max-seeds", type=int, default=None, help="seeds at the last look")
    args = ap.parse_args()
    looks = default_looks(args.seeds, args.max_seeds)
    ms = [int(x) for x in args.ms.split(",")]
    print(f"looks at {looks} test seeds; {args.sims} comparisons per cell\n")
    for name, kw in SCENARIOS.items():
        if args.only and args.only != name:
            continue
        print(f"A/A, {name} ({kw}): family-wise error, fixed | sequential (mean seeds)")
        print("| M | fixed (5 seeds, Holm over every pair) | sequential | seeds |")
        print("|---|---|---|---|")
        for m in ms:
            t0 = time.perf_counter()
            sc = Scenario(m, **kw)  # type: ignore[arg-type]
            f = rates(sc, protocol="fixed", sims=args.sims, seed=args.seed + m)
            s = rates(sc, protocol="sequential", sims=args.sims, seed=args.seed + m, looks=looks)
            took = time.perf_counter() - t0
            print(
                f"| {m} | {_cell(f.false, f.false_se)} | {_cell(s.false, s.false_se)} | "
                f"{s.seeds:.1f} |  <!-- {took:.0f} s -->",
                flush=True,
            )
        print()
    if args.only and args.only != "power":
        return
    print("Power at M = 8: the worse one called worse (and the family-wise error beside it)")
    print("| scenario | fixed: power | sequential: power | sequential: FWER | seeds |")
    print("|---|---|---|---|---|")
    for name, kw in POWER.items():
        sc = Scenario(8, **kw)  # type: ignore[arg-type]
        f = rates(sc, protocol="fixed", sims=args.sims, seed=args.seed + 80)
        s = rates(sc, protocol="sequential", sims=args.sims, seed=args.seed + 80, looks=looks)
        print(
            f"| {name} | {_cell(f.power, f.power_se)} | {_cell(s.power, s.power_se)} | "
            f"{_cell(s.false, s.false_se)} | {s.seeds:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
