"""``make demo``: the main job, ``descentlab compare`` with its defaults, timed.

Compares SGD, Momentum, Nesterov, AdaGrad, Adadelta, RMSProp and Adam on MNIST-1D with the
CNN (learning rates tuned on validation data, 3 seeds), writes ``runs/<name>/report.html`` and
prints its path, the results table and the elapsed time (including generating MNIST-1D on a
fresh machine). Extra arguments are passed to ``descentlab compare``.

Run with ``python -m descentlab.demo`` (or ``make demo``).
"""

from __future__ import annotations

import sys
import time

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the default comparison and print the elapsed wall-clock time."""
    from descentlab.cli import main as cli_main

    t0 = time.perf_counter()
    code = cli_main(["compare", *(sys.argv[1:] if argv is None else argv)])
    minutes, seconds = divmod(time.perf_counter() - t0, 60)
    print(f"demo: elapsed {int(minutes)} min {seconds:.1f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
