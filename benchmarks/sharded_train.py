"""Benchmark: one GPT decoder run on the character LM, in 1 process and sharded across N.

The same run (``--problem charlm --model gpt``, torch's AdamW, the same global batch and data
order) is trained by one process (:func:`descentlab.engine.run.train`) and by N processes with
FSDP2 (:func:`descentlab.engine.launch.train_sharded`, gloo on the CPU). Reported: the
training time per step (forward, backward and optimizer step, evaluation excluded: the run's
own clock, rank 0's for the sharded run), the largest parameter difference between the two
runs' final weights, and the machine's load at the start.

Usage::

    python benchmarks/sharded_train.py [--nproc 2] [--steps 20] [--d-model 128]
                                       [--layers 4] [--context 64] [--batch-size 32]
                                       [--threads 1] [--one-threads N]

``--threads`` is each process's torch threads; the one-process run gets ``--one-threads``
(default ``threads x nproc``: both sides use the same cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from descentlab.engine.checkpoint import load_checkpoint
from descentlab.engine.config import RunConfig
from descentlab.engine.launch import train_sharded
from descentlab.engine.run import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--one-threads", type=int, help="one process's threads (threads x nproc)")
    args = ap.parse_args()
    config = RunConfig(
        problem="charlm",
        problem_options={"n_chars": 60_000, "context": args.context},
        model="gpt",
        model_options={"d_model": args.d_model, "n_layers": args.layers, "n_heads": 4},
        optimizer=torch.optim.AdamW,
        hyper={"lr": 1e-3},
        batch_size=args.batch_size,
        steps=args.steps,
        eval_every=args.steps,
        evaluate_test=False,
    )
    load = os.getloadavg()[0]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {load:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        one_threads = args.one_threads or args.threads * args.nproc
        torch.set_num_threads(one_threads)
        t0 = time.perf_counter()
        one = train(config, progress=False, checkpoint_path=Path(tmp) / "one.pt")
        wall_one = time.perf_counter() - t0
        t0 = time.perf_counter()
        many = train_sharded(config, args.nproc, Path(tmp) / "lab.sqlite", threads=args.threads)
        wall_many = time.perf_counter() - t0
        a = one.model.state_dict()
        b = load_checkpoint(many.checkpoint_path)["model"]
        diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    n_params = sum(p.numel() for p in one.model.parameters())
    per_one = one.summary["train_seconds"] / args.steps * 1e3
    per_many = many.summary["train_seconds"] / args.steps * 1e3
    print(f"GPT {n_params:,} parameters, batch {args.batch_size} x {args.context}, "
          f"{args.steps} steps")  # fmt: skip
    print(f"1 process ({one_threads} threads): {per_one:.1f} ms/step "
          f"(whole run {wall_one:.1f} s)")  # fmt: skip
    print(f"{args.nproc} processes ({args.threads} thread each): {per_many:.1f} ms/step "
          f"(whole run {wall_many:.1f} s, start-up included)")  # fmt: skip
    print(f"largest parameter difference after {args.steps} steps: {diff:.3g}")
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
