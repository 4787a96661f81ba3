"""What a trial's checkpoints cost under ``checkpoint_every="auto"`` (issue 46, item 4).

Trains a run with a store and the automatic checkpoint interval
(:class:`~descentlab.engine.loop.CheckpointClock`: at least ``AUTO_CHECKPOINT_SECONDS`` apart,
once the run's time is ``AUTO_CHECKPOINT_FACTOR`` times its writes so far plus the last one
again), timing every checkpoint write inside the
run (``save_checkpoint`` wrapped), and prints the share of the run's time spent writing -- the
quantity the default keeps at or below 2 %. Measured inside one run, so a busy machine slows
both parts alike. Run::

    python benchmarks/checkpoint_cost.py                 # the MNIST-1D CNN and an 11M MLP
    python benchmarks/checkpoint_cost.py --steps 400 --hidden 3300
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from descentlab.engine import run as engine_run
from descentlab.engine.config import RunConfig
from descentlab.engine.loop import AUTO_CHECKPOINT_FACTOR, AUTO_CHECKPOINT_SECONDS
from descentlab.store import Store


def measure(cfg: RunConfig) -> dict[str, float]:
    """Train ``cfg`` with automatic checkpoints; the writes' count, seconds and share."""
    writes: list[float] = []
    real = engine_run.save_checkpoint

    def timed(state: dict, path: Path) -> None:
        t0 = time.perf_counter()
        real(state, path)
        writes.append(time.perf_counter() - t0)

    engine_run.save_checkpoint = timed
    try:
        with tempfile.TemporaryDirectory() as d, Store(Path(d) / "lab.sqlite") as store:
            t0 = time.perf_counter()
            result = engine_run.train(cfg, store, progress=False, checkpoint_every="auto")
            total = time.perf_counter() - t0
            size = result.checkpoint_path.stat().st_size
    finally:
        engine_run.save_checkpoint = real
    mid = writes[:-1]  # the last write is the run's end (written with or without "auto")
    return {
        "params": sum(p.numel() for p in result.model.parameters()),
        "checkpoint_mb": size / 1e6,
        "seconds": total,
        "mid_run_writes": len(mid),
        "write_seconds": sum(mid),
        "share": sum(mid) / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="steps of the large MLP (300)")
    parser.add_argument("--hidden", type=int, default=3300, help="its width (3300: 11M params)")
    parser.add_argument("--cnn-steps", type=int, default=6000, help="steps of the CNN (6000)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = RunConfig(problem="mnist1d", optimizer="adam", hyper={"lr": 1e-3}, batch_size=128,
                     evaluate_test=False, eval_every=10**6)  # fmt: skip
    cases = {
        "MNIST-1D CNN": base.replace(model="cnn", steps=args.cnn_steps),
        f"MLP hidden={args.hidden}": base.replace(
            model="mlp", model_options={"hidden": args.hidden}, steps=args.steps
        ),
    }
    rule = f"{AUTO_CHECKPOINT_FACTOR:g}x its writes (and the last again)"
    print(f"auto: >= {AUTO_CHECKPOINT_SECONDS:g} s apart, the run's time >= {rule}; 1 thread")
    for name, cfg in cases.items():
        m = measure(cfg)
        print(f"{name}: {m['params'] / 1e6:.2f}M params, checkpoint {m['checkpoint_mb']:.1f} MB, "
              f"run {m['seconds']:.1f} s, {m['mid_run_writes']} mid-run checkpoints in "
              f"{m['write_seconds']:.3f} s = {100 * m['share']:.2f} % of the run")  # fmt: skip


if __name__ == "__main__":
    main()
