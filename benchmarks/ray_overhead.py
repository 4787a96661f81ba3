"""Benchmark: the Ray backend's per-trial overhead against the local worker pool.

Both backends run the same trials -- the tuning trials of ``descentlab compare``'s default
spec (MNIST-1D, the paper's CNN, the default optimizers and learning-rate grid), or the first
``--trials`` of them -- in one process, one after the other, each on ``--cpus`` CPUs:

- local: :class:`~descentlab.experiments.trials.TrialRunner` with ``--cpus`` worker processes;
- ray: :class:`~descentlab.experiments.ray_backend.RayTrialRunner` on a local Ray instance
  (127.0.0.1, ``--cpus`` CPUs): each trial a Ray task against a scratch store, its run sent
  back and imported by the driver.

Each side first runs one short warm-up trial per CPU (worker start-up and the engine's
imports are paid once per sweep on either backend, not per trial), then the timed trials,
each into a fresh store. A side's overhead per trial is the CPU time it spent per trial
(wall-clock time times CPUs, divided by the trials) minus the trial's own training time as
measured inside the trial: dispatch, stores, sending results back, idle CPUs. Measuring it
against each side's own trial time keeps it honest on a machine shared with other work.
Trials are identical on both sides (bit for bit: one torch thread each).

Usage::

    python benchmarks/ray_overhead.py [--trials 8] [--cpus 2] [--steps N]

Goal (issue 12): overhead <= 5 % of the trial time for the default MNIST-1D trials.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import tempfile
import time

import torch

from descentlab.experiments import ray_backend
from descentlab.experiments.compare import CompareSpec, tuning_trials
from descentlab.experiments.trials import DataSource, Trial, TrialRunner


def run_all(runner: TrialRunner, trials: list[Trial]) -> tuple[float, list[float]]:
    """Submit every trial, wait for all; wall-clock seconds and each trial's own seconds."""
    t0 = time.perf_counter()
    for t in trials:
        runner.submit(t)
    seconds = []
    while runner.pending:
        out = runner.next_outcome()
        assert out.status in ("completed", "diverged"), out.status
        assert not out.reused
        seconds.append(out.seconds)
    return time.perf_counter() - t0, seconds


def warm_up_trials(trials: list[Trial], n: int) -> list[Trial]:
    short = []
    for i in range(n):
        cfg = trials[0].config.replace(steps=5, name=f"warmup:{i}")
        short.append(dataclasses.replace(trials[0], config=cfg))
    return short


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8, help="timed trials (default 8)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs on each side (default 2)")
    parser.add_argument("--steps", type=int, default=None, help="steps per trial (default: spec)")
    args = parser.parse_args()
    ray = ray_backend._import_ray()

    spec = CompareSpec()
    if args.steps is not None:
        spec = dataclasses.replace(spec, steps=args.steps, tune_steps=None)
    trials = [t for c in spec.choices() for t in tuning_trials(spec, c)][: args.trials]
    source = DataSource(spec.problem, dict(spec.problem_options), spec.split_seed)
    source.load()  # the data are generated and cached on disk before either side starts
    steps = trials[0].config.steps
    print(
        f"Ray backend overhead: {len(trials)} tuning trials of the default comparison "
        f"({spec.problem}, {spec.model or 'the default model'}, {steps} steps), "
        f"{args.cpus} CPUs per side; torch {torch.__version__}, ray {ray.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    )
    overhead = {}
    with tempfile.TemporaryDirectory() as tmp:
        runners = {
            "local": lambda p: TrialRunner(p, source, workers=args.cpus),
            "ray": lambda p: ray_backend.RayTrialRunner(p, source, num_cpus=args.cpus),
        }
        print(f"{'backend':8s} {'wall s':>8s} {'s/trial/CPU':>12s} {'trial s':>8s} "
              f"{'overhead ms/trial':>18s} {'of trial':>9s}")  # fmt: skip
        for name, make in runners.items():
            with make(os.path.join(tmp, f"{name}.sqlite")) as runner:
                runner.start()
                run_all(runner, warm_up_trials(trials, args.cpus))
                wall, secs = run_all(runner, trials)
            # Everything a CPU spent on a trial outside the trial's own training: dispatch,
            # stores, result transfer, idle waiting.
            per_cpu = wall * args.cpus / len(trials)
            own = statistics.mean(secs)
            overhead[name] = (per_cpu - own, own)
            print(
                f"{name:8s} {wall:8.2f} {per_cpu:12.2f} {own:8.2f} "
                f"{(per_cpu - own) * 1e3:18.0f} {(per_cpu - own) / own:9.1%}"
            )
    ray_ms, ray_trial = overhead["ray"]
    extra = ray_ms - overhead["local"][0]
    print(
        f"Ray backend overhead per trial: {ray_ms * 1e3:.0f} ms = {ray_ms / ray_trial:.1%} of "
        f"the trial time ({ray_trial:.2f} s), goal <= 5 %; {extra * 1e3:+.0f} ms per trial "
        "against the local pool"
    )


if __name__ == "__main__":
    main()
