"""Benchmark: the playground's server time for what the page asks most.

1. One update of the paths view: 7 optimizers (sgd, momentum, nesterov, adagrad, rmsprop,
   adam, nadam) x 300 steps from one start on Rosenbrock -- goal <= 100 ms.
2. A 64 x 64 learning-rate map (learning rate x start, 100 steps of SGD on x sin x, 4,096
   runs in one batch) -- goal <= 1 s.

Each is timed twice: the computation alone (:mod:`descentlab.playground.compute`) and the
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
import time

import torch

from descentlab.playground import compute

UPDATE = {
    "landscape": "rosenbrock",
    "starts": [[-1.2, 1.0]],
    "steps": 300,
    "optimizers": [
        {"name": "sgd", "lr": 1e-3},
        {"name": "momentum", "lr": 1e-3, "momentum": 0.9},
        {"name": "nesterov", "lr": 1e-3, "momentum": 0.9},
        {"name": "adagrad", "lr": 0.02},
        {"name": "rmsprop", "lr": 0.02},
        {"name": "adam", "lr": 0.02},
        {"name": "nadam", "lr": 0.02},
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


if __name__ == "__main__":
    main()
