"""The eager backend's step (``fused=False``) against torch's foreach optimizers.

For every optimizer of ``benchmarks/step.py``'s table (each named optimizer with a torch
twin), at each size (float32 parameters in 20 tensors), times one ``step()`` of descentlab's
eager backend and of ``torch.optim.<Twin>(foreach=True)`` round-robin in one process (one
thread, this process's CPU time, so other processes' load falls outside the clock), and prints
the medians, their ratio, and what one step does to memory, counted with
``traffic.py`` beside it: aten dispatches on parameter-sized tensors, passes
written and passes freshly allocated (elements over the parameters' count).

    python benchmarks/eager_step.py --sizes 1e5,1e6 --repeat 15

``--against SRC`` runs the same measurement in child processes, alternating this checkout's
``src`` with another source tree (``git worktree add /tmp/old <commit>`` then
``--against /tmp/old/src``), ``--rounds`` times each, and prints per optimizer and size the
median over rounds of each tree's eager time and eager/foreach ratio, and this tree's eager
time over the other's:

    python benchmarks/eager_step.py --against /tmp/old/src --rounds 3 --repeat 11

How fast a fresh allocation is depends on glibc's state (a parameter-sized block freed back
to the OS is page-faulted in again at the next step), which differs between processes and
between the arms' histories; ``--keep-freed-memory`` sets glibc's thresholds as descentlab's
CLI processes do (:func:`descentlab.engine.memory.keep_freed_memory`), so that torch's
temporaries cost the same in every process and the trees' times compare.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from step import TORCH_TWINS, make_params  # noqa: E402
from traffic import traffic  # noqa: E402

from descentlab import optim  # noqa: E402


def measure(name: str, total: int, repeat: int) -> dict:
    """Median CPU ms of the eager and the torch foreach step, and the eager step's traffic."""
    ours_kw, tcls, tkw, _ = TORCH_TWINS[name]
    arms = {
        "eager": optim.get(name)(make_params(total), **ours_kw, fused=False),
        "foreach": tcls(make_params(total), **tkw, foreach=True),
    }
    times: dict[str, list[float]] = {k: [] for k in arms}
    with torch.no_grad():
        for i in range(3 + repeat):  # 3 warm-up rounds: state allocation, first touches
            order = list(arms) if i % 2 == 0 else list(arms)[::-1]
            for k in order:
                t0 = time.process_time()
                arms[k].step()
                if i >= 3:
                    times[k].append(time.process_time() - t0)
    row = {"optimizer": name, "params": total}
    row.update({k: 1e3 * statistics.median(v) for k, v in times.items()})
    row["ratio"] = row["eager"] / row["foreach"]
    for k, opt in arms.items():
        t = traffic(opt.step, total)
        row[f"{k} counts"] = [t.dispatches, round(t.written, 2), round(t.allocated, 2)]
    return row


def run(sizes: list[int], repeat: int, names: list[str], quiet: bool) -> list[dict]:
    rows = []
    if not quiet:
        print(
            f"{'optimizer':<10}{'params':>8}{'eager ms':>10}{'foreach ms':>11}{'ratio':>7}"
            f"   {'dispatches/written/allocated: eager':<38}{'foreach':<14}"
        )
    for total in sizes:
        for name in names:
            row = measure(name, total, repeat)
            rows.append(row)
            if not quiet:
                eager, torch_ = (str(row.get(f"{k} counts", "-")) for k in ("eager", "foreach"))
                counts = f"{eager:<38}{torch_}"
                print(
                    f"{name:<10}{total / 1e6:>7.1f}M{row['eager']:>10.3f}{row['foreach']:>11.3f}"
                    f"{row['ratio']:>7.2f}   {counts}",
                    flush=True,
                )
    return rows


def against(other: str, rounds: int, argv: list[str]) -> None:
    """Alternate child processes on this tree's ``src`` and ``other``; summarise."""
    trees = {"this": str(HERE.parent / "src"), "other": str(Path(other).resolve())}
    got: dict[str, list[list[dict]]] = {k: [] for k in trees}
    for r in range(rounds):
        for tree in list(trees) if r % 2 == 0 else list(trees)[::-1]:
            env = {**os.environ, "PYTHONPATH": trees[tree]}
            proc = subprocess.run(
                [sys.executable, __file__, *argv, "--json-rows"],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            got[tree].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"this: {trees['this']}\nother: {trees['other']}")
    print(
        f"{'optimizer':<10}{'params':>8}{'this ms':>9}{'other ms':>9}{'this/other':>11}"
        f"{'this/foreach':>13}{'other/foreach':>14}"
    )
    for i, row in enumerate(got["this"][0]):
        med = {
            tree: {k: statistics.median(run[i][k] for run in runs) for k in ("eager", "ratio")}
            for tree, runs in got.items()
        }
        print(
            f"{row['optimizer']:<10}{row['params'] / 1e6:>7.1f}M{med['this']['eager']:>9.3f}"
            f"{med['other']['eager']:>9.3f}{med['this']['eager'] / med['other']['eager']:>11.2f}"
            f"{med['this']['ratio']:>13.2f}{med['other']['ratio']:>14.2f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e5,1e6", help="total parameters, comma-separated")
    parser.add_argument("--repeat", type=int, default=15, help="timed steps per arm")
    parser.add_argument("--optimizers", default=None, help="comma-separated (default: all)")
    parser.add_argument("--against", metavar="SRC", help="another source tree to alternate with")
    parser.add_argument("--rounds", type=int, default=3, help="with --against: runs per tree")
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="keep freed memory in the heap (glibc's thresholds, as descentlab's CLI does)",
    )
    parser.add_argument("--json-rows", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # CPU time adds up over threads
    if args.keep_freed_memory:
        from descentlab.engine.memory import keep_freed_memory

        if not keep_freed_memory():
            parser.error("--keep-freed-memory: glibc's mallopt is not available here")
    names = [n.strip() for n in (args.optimizers or ",".join(TORCH_TWINS)).split(",")]
    unknown = [n for n in names if n not in TORCH_TWINS]
    if unknown:
        parser.error(f"--optimizers: no torch twin in benchmarks/step.py for {unknown}")
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    if args.against:
        keep, skip = [], False
        for a in (
            argv if argv is not None else sys.argv[1:]
        ):  # the child runs this measurement on one tree
            if skip:
                skip = False
            elif a in ("--against", "--rounds"):
                skip = True
            elif not a.startswith(("--against=", "--rounds=")):
                keep.append(a)
        against(args.against, args.rounds, keep)
        return
    if not args.json_rows:
        print(
            f"eager step vs torch foreach: torch {torch.__version__}, 1 thread, CPU clock, "
            f"{args.repeat} round-robin repeats, float32 in 20 tensors (median ms per step)"
        )
    rows = run(sizes, args.repeat, names, quiet=args.json_rows)
    if args.json_rows:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
