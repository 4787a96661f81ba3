"""The optimizer step of two source trees side by side: ``benchmarks/step.py`` (this checkout's)
run in turn on each tree's ``src`` -- a base (another commit's worktree) and this checkout --
round after round, the order of the two swapped every round, and each round's new/base ratio of
every timed path paired by round.

    git worktree add --detach ../base <commit>
    python benchmarks/step_ab.py --base ../base --rounds 8 -- --sizes 1e5,1e6,1e7 \\
        --threads 1 --clock cpu --no-compile

With ``--schedule lr`` (or ``momentum``) among step.py's arguments it compares instead each
tree's scheduled step over its constant one (the two paired inside each run), per optimizer: the
median and range over the rounds of each tree's sched/const and of their ratio, new/base (with
``--groups``: each tree's steps in param groups over its step in one group, the same way):

    python benchmarks/step_ab.py --base ../base --rounds 6 -- --schedule momentum \\
        --sizes 1e5 --threads 1 --clock cpu --blocks 10

Everything after ``--`` goes to step.py (its main table; ``--json`` is this script's). Prints,
per size and optimizer, the median over the rounds of new/base for descentlab's fused and eager
steps with the rounds' range; the same for the fused step divided first by its own run's torch
time (the same code in both trees: a machine whose speed drifts from run to run -- a shared
virtual machine's moves by up to 2x -- moves both); and the new tree's fused step over torch's
fused step where torch has one, and over torch's best path in the same run (fused, foreach or
for-loop). A ratio is a speed difference only where its range stays on one side of 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rounds(base: Path, rounds: int, step_args: list[str], out: Path) -> dict[str, list[Path]]:
    """Run step.py ``rounds`` times on each tree, alternating (base first in odd rounds); the
    JSON files of each arm, in round order."""
    files: dict[str, list[Path]] = {"base": [], "new": []}
    trees = {"base": base / "src", "new": ROOT / "src"}
    for r in range(rounds):
        order = ("base", "new") if r % 2 == 0 else ("new", "base")
        for arm in order:
            path = out / f"{arm}.{r}.jsonl"
            env = {**os.environ, "PYTHONPATH": str(trees[arm])}
            cmd = [sys.executable, str(ROOT / "benchmarks" / "step.py"), *step_args]
            subprocess.run([*cmd, "--json", str(path)], env=env, check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            files[arm].append(path)
            print(f"round {r + 1}/{rounds}: {arm} done", file=sys.stderr, flush=True)
    return files


def _load(path: Path) -> dict[tuple[int, str], dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(row["params"], row["optimizer"]): row for row in rows}


def _reference(row: dict) -> float:
    """The same run's time of torch code that is the same in both trees: its fused step, else
    its foreach step, else the ``p += 1e-12 g`` pass timed beside them (from its bandwidth)."""
    t = row.get("torch fused") or row.get("torch foreach")
    return t if t else 12e3 * row["params"] / (row["GB/s"] * 1e9)


def compare(files: dict[str, list[Path]]) -> list[dict]:
    """Per (size, optimizer): the median and range over the rounds of new/base of the fused
    and the eager step, of the fused step each divided by its own run's torch time
    (:func:`_reference`: a machine whose speed drifts between runs moves both), and the new
    tree's fused step over torch's fused step."""
    base = [_load(p) for p in files["base"]]
    new = [_load(p) for p in files["new"]]
    out = []
    for key in sorted(new[0], key=lambda k: (k[0], list(new[0]).index(k))):
        row: dict = {"params": key[0], "optimizer": key[1]}
        for path in ("dl fused", "dl eager"):
            ratios = [n[key][path] / b[key][path] for n, b in zip(new, base, strict=True)]
            row[path] = (statistics.median(ratios), min(ratios), max(ratios))
        ratios = [(n[key]["dl fused"] / _reference(n[key])) / (b[key]["dl fused"] /
                  _reference(b[key])) for n, b in zip(new, base, strict=True)]  # fmt: skip
        row["fused, per torch"] = (statistics.median(ratios), min(ratios), max(ratios))
        torch_fused = [n[key]["dl fused"] / n[key]["torch fused"] for n in new
                       if n[key].get("torch fused")]  # fmt: skip
        row["fused/torch fused"] = statistics.median(torch_fused) if torch_fused else None
        best = [n[key]["fused/best"] for n in new if n[key].get("fused/best")]
        row["fused/torch best"] = (statistics.median(best), min(best), max(best)) if best else None
        out.append(row)
    return out


#: the ratios paired inside each run of a mode: ``--schedule``'s changed step over its
#: constant one, ``--groups``' steps in param groups over the step in one group
PAIRS = {"--schedule": [("sched", "const")], "--groups": [("hf", "one"), ("layers", "one")]}


def compare_ratios(files: dict[str, list[Path]], pairs: list[tuple[str, str]]) -> list[dict]:
    """Per (size, optimizer) and pair ``(a, b)``: each tree's a/b in every round (its runs' own
    pairing), and new/base of those paired by round."""
    runs = {arm: [_load(p) for p in paths] for arm, paths in files.items()}
    out = []
    for key in runs["new"][0]:
        for a, b in pairs:
            row: dict = {"params": key[0], "optimizer": key[1], "ratio": f"{a}/{b}",
                         "key": runs["new"][0][key]["key"]}  # fmt: skip
            for arm, loaded in runs.items():
                row[arm] = [r[key][a] / r[key][b] for r in loaded]
            row["new/base"] = [n / o for n, o in zip(row["new"], row["base"], strict=True)]
            out.append(row)
    return out


def _show_ratios(rows: list[dict], rounds: int) -> None:
    print(f"each tree's ratio in its own runs, median of {rounds} rounds [min, max]")
    print(f"{'params':>7} {'optimizer':<10} {'key':>8} {'ratio':>12} {'base':>22} {'new':>22} "
          f"{'new/base':>22}")  # fmt: skip
    for row in rows:
        cells = [f"{statistics.median(v):.3f} [{min(v):.3f}, {max(v):.3f}]"
                 for v in (row["base"], row["new"], row["new/base"])]  # fmt: skip
        print(f"{row['params'] / 1e6:>6g}M {row['optimizer']:<10} {row['key']:>8} "
              f"{row['ratio']:>12} {cells[0]:>22} {cells[1]:>22} {cells[2]:>22}")  # fmt: skip


def _show(rows: list[dict], rounds: int) -> None:
    print(f"new/base, median of {rounds} paired rounds [min, max]; 'per torch': each fused "
          "time over its run's torch time first; new fused / torch fused")  # fmt: skip
    print(f"{'params':>7} {'optimizer':<10} {'fused':>22} {'fused, per torch':>22} "
          f"{'eager':>22} {'/torch fused':>13} {'new /torch best':>22}")  # fmt: skip
    for row in rows:
        cells = [f"{m:.3f} [{lo:.2f}, {hi:.2f}]" for m, lo, hi in (row["dl fused"],
                 row["fused, per torch"], row["dl eager"])]  # fmt: skip
        tf, tb = row["fused/torch fused"], row["fused/torch best"]
        tf_cell = "-" if tf is None else f"{tf:.3f}"
        tb_cell = "-" if tb is None else f"{tb[0]:.3f} [{tb[1]:.2f}, {tb[2]:.2f}]"
        print(f"{row['params'] / 1e6:>6g}M {row['optimizer']:<10} {cells[0]:>22} "
              f"{cells[1]:>22} {cells[2]:>22} {tf_cell:>13} {tb_cell:>22}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, type=Path, help="the base tree (its src/)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of each tree (default 6)")
    parser.add_argument("--keep", type=Path, help="a folder to keep the JSON lines in")
    args = parser.parse_args(argv[:split])
    if not (args.base / "src" / "descentlab").is_dir():
        parser.error(f"--base: {str(args.base)!r} has no src/descentlab")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    step_args = argv[split + 1 :]
    if "--json" in step_args:
        parser.error("step.py's --json is this script's: leave it out after --")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        files = _rounds(args.base, args.rounds, step_args, out)
        mode = "--groups" if "--groups" in step_args else "--schedule"
        if mode in step_args:
            _show_ratios(compare_ratios(files, PAIRS[mode]), args.rounds)
        else:
            _show(compare(files), args.rounds)


if __name__ == "__main__":
    main()
