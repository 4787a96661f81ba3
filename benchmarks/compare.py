"""Benchmark: one comparison spec run with vectorized trials and one trial at a time.

``descentlab compare`` trains the trials of one model that differ in optimizer, learning rate,
other hyperparameters or seed -- the coarse rounds of every optimizer, refinement rounds, the
curve and refit runs -- in one vectorized pass (``train_many``'s vmap engine; each optimizer
steps its own runs) inside its worker processes. This runs the same
:class:`~descentlab.experiments.compare.CompareSpec` twice, in fresh run directories, with
``vectorize=True`` and ``vectorize=False`` (same worker count and torch threads per worker,
same protocol: coarse grid, extension, refinement, curve and refit runs), and prints the
throughput of each -- runs x steps trained per second of wall-clock time, worker start-up
included -- and their ratio.

Every trial of the protocol can share a vectorized pass, the monitored curve run included (the
group records its optimizer's statistics from its slice of the step). On a machine that other
work keeps busy, wall-clock time measures the neighbours as much as this code (a loaded machine
slows the one-at-a-time arm more); the CPU seconds of this process and its workers are printed
too, with their own ratio.

Usage::

    python benchmarks/compare.py [--optimizers sgd,momentum,adam] [--steps 400] [--trials 5]
                                 [--seeds 3] [--workers 2] [--threads 1] [--model cnn]
                                 [--repeats 1]

Goal (issue 11): >= 2x on the MNIST-1D CNN. Measured with ``--repeats 3`` on the idle 2-core
AMD EPYC (load average below 1 at the start), medians: vectorized 2711, one at a time 991
runs x steps / s: **2.73x** wall-clock, 2.85x per CPU second (10.8 against 30.6 CPU s). The
comparison ``make demo`` runs (``--optimizers sgd,momentum,nesterov,adagrad,adadelta,
adadelta@default,rmsprop,adam --steps 500 --trials 4 --seeds 5``, 122 trials), once: 13.9
against 55.8 s, **4.02x** wall-clock, 4.13x per CPU second. Before the compiled CNN step
(``engine/vcnn.py``) and the scheduler that keeps both workers busy
(``experiments/packing.py``'s ``plan_tasks``), the default measured 1.23x and the demo's 1.38x.

Where the vectorized arm's ~11 CPU seconds go: starting two worker processes ~4.3 s (torch and
scikit-learn imports -- the same in both arms, and now 40% of this arm's time), the training
steps ~4.7 s (0.3 ms per run and step: one compiled call computes the losses and gradients of
all the group's runs, ~0.25 ms per run, then each optimizer steps its runs; a run alone takes
~1.6 ms, mostly in oneDNN's ``Conv1d``), evaluations ~1 s (the same kernel, all runs in one
call; ~3 s one model at a time), recording metrics in the store ~1.5 s. Both arms record and
start up alike, so at more steps or seeds the ratio rises toward the step's ~5x.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import statistics
import tempfile
import time

from descentlab.engine.multirun import _idle_cores
from descentlab.experiments.compare import CompareSpec, compare
from descentlab.store import Store


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished (joined) worker processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_once(
    spec: CompareSpec, workers: int, threads: int, vectorize: bool
) -> tuple[float, float, int, int]:
    """Wall seconds, CPU seconds, trials and runs x steps of one comparison in a fresh
    directory."""
    with tempfile.TemporaryDirectory(prefix="dl-bench-compare-") as root:
        t0, c0 = time.perf_counter(), _cpu_seconds()
        result = compare(
            spec, root, workers=workers, threads=threads, progress=False, vectorize=vectorize
        )
        seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
        store = Store(result.store_path)
        try:
            runs = [r for r in store.list_runs() if r.name != "compare"]
            steps = sum(int((r.summary or {}).get("steps", 0)) for r in runs)
        finally:
            store.close()
    return seconds, cpu, len(runs), steps


def _warm_up(spec: CompareSpec) -> None:
    """Pay this process's one-time costs (imports, the data set's cache) before either mode is
    timed: a one-step comparison of one trial, not recorded."""
    tiny = dataclasses.replace(
        spec, optimizers=spec.optimizers[:1], steps=1, lrs_per_optimizer=1, seeds=1
    )
    with tempfile.TemporaryDirectory(prefix="dl-bench-compare-") as root:
        compare(tiny, root, workers=1, progress=False, vectorize=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--optimizers", default="sgd,momentum,adam")
    p.add_argument("--model", default="cnn")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (both modes)")
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()

    spec = CompareSpec(
        problem="mnist1d",
        model=args.model,
        optimizers=[s.strip() for s in args.optimizers.split(",") if s.strip()],
        steps=args.steps,
        lrs_per_optimizer=args.trials,
        seeds=args.seeds,
        landscapes=(),
    )
    spec.validate()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        f"({_idle_cores():.1f} idle at the start); MNIST-1D {args.model}, "
        f"{', '.join(c.label for c in spec.choices())}: {args.trials} lrs + refinement, "
        f"{args.seeds} seeds, {args.steps} steps, {args.workers} worker process(es) of "
        f"{args.threads} thread(s) each"
    )
    _warm_up(spec)
    rates: dict[bool, list[float]] = {True: [], False: []}
    cpu_rates: dict[bool, list[float]] = {True: [], False: []}
    for repeat in range(args.repeats):
        # alternate which mode runs first: neither always meets the colder caches
        for vectorize in (True, False) if repeat % 2 == 0 else (False, True):
            seconds, cpu, trials, steps = run_once(spec, args.workers, args.threads, vectorize)
            rates[vectorize].append(steps / seconds)
            cpu_rates[vectorize].append(steps / cpu)
            name = "vectorized" if vectorize else "one at a time"
            print(
                f"  {name:>13}: {trials} trials, {steps} runs x steps in {seconds:.1f} s "
                f"({cpu:.1f} CPU s) = {steps / seconds:.0f} runs x steps / s "
                f"({steps / cpu:.0f} per CPU s)"
            )
    vec, one = statistics.median(rates[True]), statistics.median(rates[False])
    print(f"vectorized {vec:.0f}, one at a time {one:.0f} runs x steps / s: ratio {vec / one:.2f}x")
    vec, one = statistics.median(cpu_rates[True]), statistics.median(cpu_rates[False])
    print(
        f"per CPU second (what a busy, shared machine still measures): vectorized {vec:.0f}, "
        f"one at a time {one:.0f}: ratio {vec / one:.2f}x"
    )


if __name__ == "__main__":
    main()
