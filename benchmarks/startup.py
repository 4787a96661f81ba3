"""Benchmark: the CPU time of ``descentlab --help`` and ``descentlab SUBCOMMAND --help`` against
``import torch`` (issue 29: help imports only what it needs, within 0.3 CPU s of torch).

Each command runs as a fresh ``python`` subprocess; its CPU time (user + system, from
``os.wait4``) is what it cost to start. The commands are interleaved -- one round runs each
once, in a shuffled order -- and repeated; the table gives each command's median and its
median excess over ``import torch`` measured in the same rounds (the machine is shared and
noisy: interleaving keeps the comparison fair, medians keep one slow round out).

Python's bytecode caches are written and used, as in an installed package, to a scratch
folder (``PYTHONPYCACHEPREFIX``; ``PYTHONDONTWRITEBYTECODE`` is unset for the subprocesses),
filled by one untimed warm-up round: otherwise every run would compile descentlab's sources
again and time the compiler.

Usage::

    PYTHONPATH=src python benchmarks/startup.py [--rounds 7] [--all-subcommands]

``--all-subcommands`` times every subcommand's ``--help`` (else ``--help``, ``compare --help``
and ``train --help``). Set PYTHONPATH to the checkout to time (e.g. ``/work/main/src``).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile

LIMIT_S = 0.3  # issue 29, item 5: help within 0.3 CPU s of `import torch`
SUBCOMMANDS = (
    "compare",
    "convarith",
    "experiment",
    "figures",
    "landscape",
    "lectures",
    "playground",
    "report",
    "train",
)


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """CPU seconds (user + system) one subprocess spent, from its exit status."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0,):
        raise SystemExit(f"{' '.join(argv)} exited with {proc.returncode}:\n{err}")
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--all-subcommands", action="store_true")
    args = parser.parse_args()
    py = sys.executable
    commands = {"import torch": [py, "-c", "import torch"]}
    commands["descentlab --help"] = [py, "-m", "descentlab", "--help"]
    for sub in SUBCOMMANDS if args.all_subcommands else ("compare", "train"):
        commands[f"descentlab {sub} --help"] = [py, "-m", "descentlab", sub, "--help"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="descentlab-startup-pycache-")
    for argv in commands.values():  # warm-up: fills the bytecode caches
        cpu_seconds(argv, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    rng = random.Random(0)
    for _ in range(args.rounds):
        order = list(commands)
        rng.shuffle(order)
        for name in order:
            times[name].append(cpu_seconds(commands[name], env))
        print(f"round {len(times['import torch'])}/{args.rounds}", file=sys.stderr, flush=True)
    torch_s = times["import torch"]
    print(f"python {sys.version.split()[0]}, PYTHONPATH={os.environ.get('PYTHONPATH', '')}")
    print(f"{args.rounds} interleaved rounds; CPU seconds (user + system), medians\n")
    print(f"{'command':<30} {'CPU s':>7} {'- torch':>8}  within {LIMIT_S} s")
    for name, ts in times.items():
        excess = statistics.median(t - t0 for t, t0 in zip(ts, torch_s, strict=True))
        mark = "" if name == "import torch" else ("yes" if excess <= LIMIT_S else "NO")
        print(f"{name:<30} {statistics.median(ts):7.2f} {excess:+8.2f}  {mark}")


if __name__ == "__main__":
    main()
