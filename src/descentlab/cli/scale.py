"""Does the winner hold as the model grows? ``descentlab compare`` at several model sizes.

Every argument of ``compare`` is taken (the problem, the optimizers, the budget, ...); the
study runs that comparison with the model's width set to each of ``--sizes`` (``cnn``:
channels, ``mlp`` and ``gru``: hidden, ``gpt``: d_model, the ResNets: width; your own model:
``run.size`` in an ``--objective``, ``size=`` to the model factory of your ``--problem``, whose
parameters are counted as your code builds them), each size with
its own tuning at the same budget in a run directory of its own (running the command again
continues where it stopped: a finished size is read back from its store). It prints a table
per size -- the parameters, each optimizer's speedup over the baseline (``--baseline``, by
default the first optimizer) in steps and in time with their intervals, its tuned learning
rate, the verdict at that size -- and the trend: the speedup against log10(parameters) with
its interval, and the size at which it would reach 1.0 (an extrapolation, said so; refused
where the intervals are too wide to say). Writes ``<runs-dir>/<name>-scale/``: scale.md,
scale_speedup.png, scale_lr.png. The method and two studies: docs/scale.md.

Example:
    descentlab scale --sizes 12,25,50 --steps 500 --budget 6
    descentlab scale --problem charlm --model gpt --sizes 16,32,64 \\
        --optimizers adamw,muon,lion --steps 200 --budget 3
    descentlab scale --objective train.py:fit --sizes 8,16,32 --steps 200 --budget 3
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from descentlab._announce import once
from descentlab.cli import compare as compare_cli
from descentlab.cli._options import (
    add_command,
    check_out_dir,
    check_workers_and_threads,
    shown,
)

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``scale`` subcommand: ``compare``'s arguments and ``--sizes``."""
    scratch = argparse.ArgumentParser(add_help=False).add_subparsers()
    compare_cli.register(scratch)
    p = add_command(
        subparsers,
        "scale",
        run,
        parents=[scratch.choices["compare"]],
        conflict_handler="resolve",
        help="compare optimizers at several model sizes: speedups and their trend",
    )
    p.add_argument(
        "--sizes",
        required=True,
        metavar="W1,W2,W3",
        help="the model's widths, 3 to 16 of them (e.g. 12,25,50 channels of the CNN; your "
        "own model's: run.size in an --objective, size= to your --problem's model factory); "
        "each size's model is built (on torch's meta device) before the first trains, and one "
        "that cannot fit in the memory available is refused",
    )


def _sizes(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--sizes takes integers separated by commas, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    """Run the study; 0 done, 130 or 143 stopped by SIGINT or SIGTERM (run again to continue)."""
    from descentlab.experiments import scale
    from descentlab.experiments.compare import CompareSpec, Interrupted
    from descentlab.experiments.kinds import kind_of

    t0 = time.perf_counter()
    sizes = scale.check_sizes(_sizes(args.sizes))
    if args.problems is not None:
        raise ValueError("--problems compares a suite: a scale study runs one problem")
    given = {"--json": args.json, "--nproc": args.nproc is not None,
             "--measure-targets": args.measure_targets}  # fmt: skip
    for flag in (f for f, on in given.items() if on):
        raise ValueError(
            f"{flag} is compare's alone: a scale study prints its table (no JSON), trains a "
            "trial in one process and measures no suite's targets"
        )
    spec = CompareSpec(**compare_cli.build_fields(args))
    kind_of(spec).check_scaled(spec)
    spec.validate()
    if spec.model is not None or scale.own_model(spec):
        scale.check_width(spec, spec.model)  # refused before the problem's data are loaded
    check_out_dir(args.runs_dir, "--runs-dir")
    check_workers_and_threads(args.workers, args.threads)
    base = spec.baseline or spec.choices()[0].label
    named = kind_of(spec).named(spec)  # (as the comparison names it: code by its file)
    spec = dataclasses.replace(spec, baseline=base, name=spec.name or named.run_name())
    if spec.precision == "auto":  # (it would choose per size: bf16 from a size, on some CPUs)
        once(("scale", "precision"), "scale: every size trains in fp32, not --precision auto's "
             "choice per size; --precision chooses one for all", UserWarning)  # fmt: skip
        spec = dataclasses.replace(spec, precision="fp32")
    options: dict[str, Any] = {"workers": args.workers, "threads": args.threads,
                               "progress": not args.no_progress, "backend": args.backend,
                               "address": args.address,
                               "vectorize": not args.one_at_a_time,
                               "checkpoint_every": args.checkpoint_every,
                               "start_over": args.force}  # fmt: skip
    try:
        sizes_done = scale.study(spec, sizes, args.runs_dir, **options, check_folder=lambda f: (
            compare_cli._refuse_a_folder_of_the_users(f, args.force)))  # fmt: skip
    except Interrupted as exc:
        print(f"descentlab: {exc}", file=sys.stderr)
        return 128 + exc.signum  # 130 SIGINT, 143 SIGTERM
    return _show(args, spec, sizes_done, time.perf_counter() - t0)


def _show(args: argparse.Namespace, spec: Any, sizes: list[Any], elapsed: float) -> int:
    from descentlab.experiments import scale
    from descentlab.report.scale import budget_note, study_table, trend_lines, write_study

    option = sizes[0].option
    base = sizes[0].baseline
    trends = scale.trends(sizes, confidence=spec.confidence, seeds=len(spec.final_seeds))
    print(study_table(sizes, option))
    print()
    for s in sizes:
        print(f"{option}={s.size}: {s.headline}")
    print()
    for line in trend_lines(trends, base):
        print(line)
    print(budget_note(spec))
    paths = write_study(
        sizes, trends, Path(args.runs_dir) / f"{spec.name}-scale", option, note=budget_note(spec)
    )
    print(f"study: {', '.join(shown(p) for p in paths)}")
    print(f"done in {elapsed:.1f} s")
    return 0
