"""``make demo``: the main job, ``descentlab compare`` with its defaults, timed.

Compares SGD, Momentum, Nesterov, AdaGrad, Adadelta (tuned and at its default lr), RMSProp
and Adam on MNIST-1D with the CNN under the full protocol -- 5 seeds, a coarse grid extended
and refined, tuning trials as long as the final runs, failures counted -- on a budget sized
for a 2-core machine (:data:`DEMO_BUDGET`: 500 steps per run, 4 coarse learning rates), writes
``runs/<name>/report.html`` and prints its path, the results table, the recommendation and
the elapsed time (including generating MNIST-1D on a fresh machine). Extra arguments are
passed to ``descentlab compare`` after the budget, so they override it (``make demo`` with
``--steps 1000`` is the library's default budget).

Run with ``python -m descentlab.demo`` (or ``make demo``).
"""

from __future__ import annotations

import sys
import time

from descentlab.cli import main as cli_main

__all__ = ["DEMO_BUDGET", "main"]

#: ``descentlab compare`` arguments that size the demo: the default comparison has 8
#: optimizers x (about 7 tuning trials + 5 curve + 5 refit runs), and at 1000 steps a run that
#: takes over 4 minutes on 2 cores; at 500 steps and 4 coarse points it takes under 3.
DEMO_BUDGET: tuple[str, ...] = ("--steps", "500", "--lr-trials", "4")


def main(argv: list[str] | None = None) -> int:
    """Run the default comparison and print the elapsed wall-clock time."""
    t0 = time.perf_counter()
    extra = sys.argv[1:] if argv is None else argv
    code = cli_main(["compare", *DEMO_BUDGET, *extra])
    minutes, seconds = divmod(time.perf_counter() - t0, 60)
    print(f"demo: elapsed {int(minutes)} min {seconds:.1f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
