"""Benchmark: the Ray backend's per-trial overhead against the local worker pool.

Both backends run the same trials -- the tuning trials of ``descentlab compare``'s default
spec (MNIST-1D, the paper's CNN, the default optimizers and learning-rate grid), or the first
``--trials`` of them -- in one process, one after the other, each on ``--cpus`` CPUs:

- local: :class:`~descentlab.experiments.runner.TrialRunner` with ``--cpus`` worker processes;
- ray: :class:`~descentlab.experiments.ray_runner.RayTrialRunner` on a local Ray instance
  (127.0.0.1, ``--cpus`` CPUs): short trials packed into Ray tasks
  (:func:`~descentlab.experiments.ray_runner.pack_tasks`), each task against a scratch
  store, its runs sent back and imported by the driver;
- ray/1: the same with one trial per task (``min_task_cost=0``), as before packing.

Each side first runs one short warm-up trial per CPU (worker start-up and the engine's
imports are paid once per sweep on either backend, not per trial), then the timed trials,
each into a fresh store. A side's overhead per trial is the CPU time it spent per trial
(wall-clock time times CPUs, divided by the trials) minus the trial's own training time as
measured inside the trial: dispatch, stores, sending results back, idle CPUs. Measuring it
against each side's own trial time keeps it honest on a machine shared with other work.
The CPU time of this process and every process below it (the local pool's workers; Ray's
own processes and workers) during the timed trials is printed too, per trial: on a loaded
machine it moves much less than the wall clock, and the difference between the arms is
what Ray costs in CPU beyond the local pool.
Trials are identical on both sides (bit for bit: one torch thread each). The arms
alternate, ``--repeat`` times (one Ray instance per arm and round); the medians are printed.

Usage::

    python benchmarks/ray_overhead.py [--trials 8] [--cpus 2] [--steps N] [--repeat 1]

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

from descentlab.experiments import ray_runner
from descentlab.experiments.compare import CompareSpec, tuning_trials
from descentlab.experiments.runner import TrialRunner
from descentlab.experiments.trial import DataSource, Trial


def _tree_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of this process, its waited-for children and every live
    descendant, by process id."""
    import psutil

    me = psutil.Process()
    t = me.cpu_times()
    out = {me.pid: t.user + t.system + t.children_user + t.children_system}
    for p in me.children(recursive=True):
        try:
            c = p.cpu_times()
        except psutil.Error:
            continue
        out[p.pid] = c.user + c.system
    return out


def tree_cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two :func:`_tree_cpu` snapshots (processes that ended in
    between are left out; those that started count from zero)."""
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


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
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the arms (default 1)")
    parser.add_argument("--arms", default="local,ray/1,ray", help="arms (default all three)")
    args = parser.parse_args()
    ray = ray_runner._import_ray()

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
    runners = {
        "local": lambda p: TrialRunner(p, source, workers=args.cpus),
        "ray/1": lambda p: ray_runner.RayTrialRunner(
            p, source, num_cpus=args.cpus, min_task_cost=0
        ),
        "ray": lambda p: ray_runner.RayTrialRunner(p, source, num_cpus=args.cpus),
    }
    arms = args.arms.split(",")
    if "local" not in arms or not set(arms) <= set(runners):
        parser.error(f"--arms must include local and name only {', '.join(runners)}")
    runners = {name: runners[name] for name in arms}
    print(f"{'backend':8s} {'wall s':>8s} {'s/trial/CPU':>12s} {'trial s':>8s} "
          f"{'overhead ms/trial':>18s} {'of trial':>9s} {'CPU s/trial':>12s}")  # fmt: skip
    seen: dict[str, list[tuple[float, float]]] = {name: [] for name in runners}
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            for name, make in runners.items():
                with make(os.path.join(tmp, f"{name.replace('/', '-')}-{r}.sqlite")) as runner:
                    runner.start()
                    run_all(runner, warm_up_trials(trials, args.cpus))
                    before = _tree_cpu()
                    wall, secs = run_all(runner, trials)
                    cpu[name].append(tree_cpu_between(before, _tree_cpu()) / len(trials))
                # Everything a CPU spent on a trial outside the trial's own training:
                # dispatch, stores, result transfer, idle waiting.
                per_cpu = wall * args.cpus / len(trials)
                own = statistics.mean(secs)
                seen[name].append((per_cpu - own, own))
                print(
                    f"{name:8s} {wall:8.2f} {per_cpu:12.2f} {own:8.2f} "
                    f"{(per_cpu - own) * 1e3:18.0f} {(per_cpu - own) / own:9.1%} "
                    f"{cpu[name][-1]:12.3f}",
                    flush=True,
                )
    share = {n: statistics.median(o / t for o, t in v) for n, v in seen.items()}
    ms = {n: statistics.median(o for o, _ in v) for n, v in seen.items()}
    c = {n: statistics.median(v) for n, v in cpu.items()}
    print(f"medians of {args.repeat} (goal: overhead <= 5 % of the trial time):")
    for n in runners:
        vs = "" if n == "local" else f", {c[n] / c['local'] - 1:+.1%} against the local pool"
        print(
            f"  {n:6s} overhead per trial {ms[n] * 1e3:.0f} ms ({share[n]:.1%}); "
            f"CPU per trial {c[n]:.3f} s{vs}"
        )


if __name__ == "__main__":
    main()
