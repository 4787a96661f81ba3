"""A/A calibration of compare's verdict: the chance that a comparison of M optimizers identical
in distribution calls any of them worse (or better), through the comparison's own choice and
statistics (:mod:`descentlab.experiments.compare.calibration`).

    PYTHONPATH=src python benchmarks/aa_calibration.py --sims 2000
    PYTHONPATH=src python benchmarks/aa_calibration.py --seed-sd 0.3 --rho 1

Prints one line per M: the rate and its Monte-Carlo standard error.
"""

from __future__ import annotations

import argparse
import time

from descentlab.experiments.compare.calibration import false_worse_rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ms", default="2,4,6,8,10", help="numbers of optimizers")
    ap.add_argument("--sims", type=int, default=1000, help="comparisons simulated per M")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seed-sd", type=float, default=0.1, help="seed effect sd (logit scale)")
    ap.add_argument("--rho", type=float, default=0.5, help="seed luck shared with validation")
    ap.add_argument("--examples", type=int, default=1000)
    args = ap.parse_args()
    print(
        f"A/A: {args.examples} test examples, 5 seeds, accuracy ~0.85, seed sd {args.seed_sd} "
        f"(logit), rho {args.rho}, {args.sims} comparisons per M"
    )
    for m in (int(x) for x in args.ms.split(",")):
        t0 = time.perf_counter()
        rate, se = false_worse_rate(
            m,
            sims=args.sims,
            seed=args.seed + m,
            seed_sd=args.seed_sd,
            rho=args.rho,
            examples=args.examples,
        )
        took = time.perf_counter() - t0
        print(f"M = {m:2d}: false 'worse' in {rate:6.1%} +- {se:.1%} ({took:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
