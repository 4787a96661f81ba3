"""A/A calibration of compare's verdict: the chance that a comparison of M optimizers identical
in distribution calls any of them worse (or better), through the comparison's own choice and
statistics (:mod:`descentlab.experiments.compare.calibration`).

    PYTHONPATH=src python benchmarks/aa_calibration.py --sims 2000
    PYTHONPATH=src python benchmarks/aa_calibration.py --seed-sd 0.3 --rho 1
    PYTHONPATH=src python benchmarks/aa_calibration.py --ms 2,4,8 --worse-by 0.2 --sims 500

Prints one line per M: the rate and its Monte-Carlo standard error; with ``--worse-by``, the
power instead: how often one optimizer truly worse by that much (logit scale) is called worse.
"""

from __future__ import annotations

import argparse
import time

from descentlab.experiments.compare.calibration import detection_rate, false_worse_rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ms", default="2,4,6,8,10", help="numbers of optimizers")
    ap.add_argument("--sims", type=int, default=1000, help="comparisons simulated per M")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seed-sd", type=float, default=0.1, help="seed effect sd (logit scale)")
    ap.add_argument("--rho", type=float, default=0.5, help="seed luck shared with validation")
    ap.add_argument("--examples", type=int, default=1000)
    ap.add_argument("--worse-by", type=float, default=0.0, help="one optimizer's true deficit")
    args = ap.parse_args()
    print(
        f"{'A/B' if args.worse_by else 'A/A'}: {args.examples} test examples, 5 seeds, "
        f"accuracy ~0.85, seed sd {args.seed_sd} (logit), rho {args.rho}, "
        f"{args.sims} comparisons per M"
    )
    for m in (int(x) for x in args.ms.split(",")):
        t0 = time.perf_counter()
        model = {"seed_sd": args.seed_sd, "rho": args.rho, "examples": args.examples}
        if args.worse_by:
            rate, se = detection_rate(m, args.worse_by, sims=args.sims, seed=args.seed + m, **model)
            what = f"worse by {args.worse_by} called worse"
        else:
            rate, se = false_worse_rate(m, sims=args.sims, seed=args.seed + m, **model)
            what = "false 'worse'"
        took = time.perf_counter() - t0
        print(f"M = {m:2d}: {what} in {rate:6.1%} +- {se:.1%} ({took:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
