"""``make demo``: the main job, ``descentlab compare`` with its defaults, timed.

Compares SGD, Momentum, Nesterov, AdaGrad, Adadelta (tuned and at its default lr), RMSProp
and Adam on MNIST-1D with the CNN under the equal-budget protocol of AlgoPerf's external
tuning -- every tuned optimizer gets the same number of trials, drawn quasi-randomly from the
search space it declares (lr, momentum or betas, weight decay, warmup, lr schedule), 5 seeds,
tuning trials as long as the final runs, failures counted; test seeds added, up to 40, where
a comparison with the chosen optimizer is still open -- on a budget sized for a 2-core
machine (:data:`DEMO_BUDGET`: 500 steps per run, 6 trials per optimizer where AlgoPerf and
``--budget`` take 20; the demo says so when it starts), prints the results table and the
recommendation, draws the report (``--report``: ``runs/<name>/report.html``, its path printed
with the seconds it took) and prints the elapsed time (including generating MNIST-1D on a
fresh machine). Extra arguments are passed to ``descentlab compare`` after the budget, so they
override it (``make demo`` with ``--steps 1000`` is the library's default budget).

Run with ``python -m descentlab.demo`` (or ``make demo``).
"""

from __future__ import annotations

import sys
import time

from descentlab.cli import main as cli_main

__all__ = ["DEMO_BUDGET", "NOTICE", "main"]

#: ``descentlab compare`` arguments that size the demo: the default comparison has 8
#: optimizers, 7 of them tuned; at 500 steps and equal budgets of 6 trials (+ 5 curve and 5 to
#: 40 refit runs each) it takes about 25 s on 2 cores (docs/overhead.md).
DEMO_BUDGET: tuple[str, ...] = ("--steps", "500", "--budget", "6")

#: What the demo says first: the budget is smaller than the protocol's default.
NOTICE = (
    "demo: equal, declared budgets of 6 quasi-random trials per optimizer and 500 steps per run "
    "(a smaller budget than AlgoPerf's 20 trials, the default of --budget, to finish in about "
    "25 s on 2 cores, its report drawn after the comparison)"
)


def main(argv: list[str] | None = None) -> int:
    """Run the default comparison and print the elapsed wall-clock time."""
    t0 = time.perf_counter()
    extra = sys.argv[1:] if argv is None else argv
    print(NOTICE, flush=True)
    # the demo draws its report (compare draws one only when asked), unless told not to
    report = [] if "--no-report" in extra or "--report" in extra else ["--report"]
    code = cli_main(["compare", *DEMO_BUDGET, *report, *extra])
    minutes, seconds = divmod(time.perf_counter() - t0, 60)
    print(f"demo: elapsed {int(minutes)} min {seconds:.1f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
