"""Benchmark: the playground's server time for what the page asks most.

1. One update of the paths view: 7 optimizers (sgd, momentum, nesterov, adagrad, rmsprop,
   adam, nadam, at the page's defaults) x 300 steps from one start on Rosenbrock -- goal
   <= 100 ms.
2. A 64 x 64 learning-rate map (learning rate x start, 100 steps of SGD on x sin x, 4,096
   runs in one batch) -- goal <= 1 s.

3. What refusing a chain that would climb costs: a composed chain's update (300 steps,
   16 starts) through ``run_paths``, which first takes one eager step from every start to
   check that it goes downhill, against the same run alone (``trajectories.run``);
   interleaved, the median CPU-time ratio over ``--repeats`` pairs.

Each of 1 and 2 is timed twice: the computation alone (:mod:`descentlab.playground.compute`) and the
whole HTTP request through the app (Starlette's test client: JSON decoding, validation,
computation, JSON encoding). Kernels are compiled in a warm-up call first (the server warms
them at start). Best of ``--repeats``, wall clock and process CPU time (on a shared machine
CPU time is the steadier measure).

Usage::

    python benchmarks/playground.py [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from descentlab.experiments.compare.choices import parse_rule
from descentlab.playground import compute
from descentlab.problems import landscapes, trajectories

#: The paths view on Rosenbrock at the page's own defaults (its records' learning rates).
_DEFAULTS = compute.defaults(landscapes.get("rosenbrock"))["optimizers"]
UPDATE = {
    "landscape": "rosenbrock",
    "starts": [[-1.2, 1.0]],
    "steps": 300,
    "optimizers": [
        {"name": n, **_DEFAULTS[n]}
        for n in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "nadam")
    ],
}
MAP = {
    "landscape": "xsinx",
    "optimizer": {"name": "sgd"},
    "steps": 100,
    "mode": "lr_start",
    "n_lr": 64,
    "n_y": 64,
    "lr_range": [1e-4, 1.0],
}


def best(fn, repeats: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from starlette.testclient import TestClient

    from descentlab.playground.app import create_app

    client = TestClient(create_app())

    def update_http() -> None:
        r = client.post("/api/run", json=UPDATE)
        assert r.status_code == 200, r.text

    def map_http() -> None:
        r = client.post("/api/map", json=MAP)
        assert r.status_code == 200, r.text

    out = compute.run_paths(UPDATE)  # warm-up: kernels compiled (or loaded from the cache)
    kernel = all(r["kernel"] for r in out["runs"])
    assert compute.lr_map(MAP)["kernel"]
    rows = [
        ("update: 7 optimizers x 300 steps, compute", lambda: compute.run_paths(UPDATE), 0.1),
        ("update: 7 optimizers x 300 steps, HTTP", update_http, 0.1),
        ("64 x 64 lr map x 100 steps, compute", lambda: compute.lr_map(MAP), 1.0),
        ("64 x 64 lr map x 100 steps, HTTP", map_http, 1.0),
    ]
    print(
        f"descentlab playground benchmark  (torch {torch.__version__}, {args.threads} thread(s), "
        f"{platform.processor() or platform.machine()}, load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; trajectory kernel: {kernel})"
    )
    for name, fn, goal in rows:
        wall, cpu = best(fn, args.repeats)
        verdict = "met" if wall <= goal else ("met on CPU time" if cpu <= goal else "NOT met")
        print(
            f"  {name:<44} {1000 * wall:8.1f} ms ({1000 * cpu:.1f} ms CPU)  "
            f"goal <= {1000 * goal:.0f} ms: {verdict}"
        )
    checked, alone = chain_check_cost(args.repeats)
    print(
        f"  composed chain, 300 steps x 16 starts: run_paths (with its descent check) "
        f"{1000 * statistics.median(checked):.1f} ms CPU, the run alone "
        f"{1000 * statistics.median(alone):.1f} ms CPU; median ratio "
        f"{statistics.median(c / a for c, a in zip(checked, alone, strict=True)):.2f}"
    )


def chain_check_cost(repeats: int) -> tuple[list[float], list[float]]:
    """CPU seconds of a chain update with the descent check and of the bare run, interleaved."""
    rule = "chain(scale_by_rms(alpha=0.9), trace(momentum=0.9), scale_by_lr())"
    starts = [[-1.5 + 0.2 * i, 2.0 - 0.1 * i] for i in range(16)]
    req = {"landscape": "rosenbrock", "starts": starts, "steps": 300,
           "optimizers": [{"rule": rule, "lr": 1e-3}]}  # fmt: skip
    parsed = parse_rule(rule)

    def bare() -> None:
        trajectories.run("rosenbrock", parsed, torch.tensor(starts, dtype=torch.float64), 300,
                         lr=1e-3, bound=compute._bound(landscapes.get("rosenbrock")))  # fmt: skip

    compute.run_paths(req)
    bare()  # warm-up: both compiled
    checked, alone = [], []
    for _ in range(repeats):
        for fn, out in ((lambda: compute.run_paths(req), checked), (bare, alone)):
            c = time.process_time()
            fn()
            out.append(time.process_time() - c)
    return checked, alone


if __name__ == "__main__":
    main()
