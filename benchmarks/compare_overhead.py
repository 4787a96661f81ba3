"""Benchmark: what ``descentlab compare`` costs against the same runs written by hand.

A practitioner can write the sweep ``compare`` runs in 60 lines: an Optuna ``GridSampler`` over
the settings, a plain torch loop, a paired t-test. This runs ``descentlab compare`` on a case
(``demo``: ``make demo``'s comparison on MNIST-1D; ``diabetes``: the example problem with SGD,
Momentum and Adam at 300 steps and ``--max-seeds 5``; ``small``: the example with SGD alone,
``--budget 3 --max-seeds 5``), reads the runs it made from its ``trials.csv``, and times a
hand-written sweep of exactly those runs -- the same optimizers, settings (lr, momentum or
betas, weight decay, warmup, schedule), seeds, data splits, batch size and steps; tuning trials
scored on validation at their end, curve runs evaluated on validation at the curve's cadence,
refit runs on the test set once; failed runs stopped at a non-finite loss -- then a paired
t-test of each optimizer's refit test losses against the chosen one's, Holm-corrected.

Each arm is a fresh ``python`` process (its imports counted). Measured, per arm: the CPU time
(user + system) of the whole process tree (``os.wait4``: a process's reaped children count in
it, descentlab's worker processes included), the bytes it wrote to disk (``write_bytes`` of
``/proc/self/io``, into which the kernel adds each reaped child's), and for descentlab the
run folder it keeps (its files' sizes) and the training share: the trials' own
``train_seconds`` (each run's forward, backward and optimizer steps, evaluation not counted;
a run of a vectorized pass charged its share) over the job's CPU time. The arms are
interleaved, their order rotated each round, and the table gives medians and the median of
the per-round ratios. ``--base SRC`` adds a third arm: the same command run with another
checkout's sources (``PYTHONPATH=SRC``, e.g. ``../base/src``), for before/after tables.

An untimed first ``compare`` run (for the by-hand arm's plan; it also fills the data and
kernel caches every later run reads) goes first.

``--breakdown`` runs the descentlab arm once more with clocks around its parts (a few
wrapped functions, each timed on its own thread's CPU clock) and prints where its CPU went:
the main process's imports, its report and the rest of it (planning, the store, the
verdict); the worker processes' training (the trials' ``train_seconds``), their evaluations
(validation at the curve's cadence and at a trial's end, the refit runs' test set) and the
rest of them (set-up, batches, bookkeeping, sending runs back); the training share the
job would have if everything but training and evaluation cost nothing; and the worker-seconds
without a task between the first task sent and the last one back.

Usage::

    python benchmarks/compare_overhead.py --case small [--rounds 3] [--base ../base/src]
    python benchmarks/compare_overhead.py --case diabetes --rounds 0 --breakdown
    python benchmarks/compare_overhead.py --case demo --rounds 2 --device cuda

An A/A arm runs this checkout's command a second time in each round: its ratio to the first
arm is what one ratio of this table scatters by under the load at hand. Each descentlab arm's
row also gives its CPU outside training (the process tree's less the trials' own training).

The goals: descentlab / by hand <= 1.10 on ``demo``, <= 1.0 on ``diabetes`` (``--max-seeds 5``;
the command as run, no report asked), <= 1.5 on ``small``; on ``diabetes`` at most 3 CPU s
outside training; training share >= 0.85 (``demo``) and >= 0.70 (``diabetes``); bytes
written <= 2x the run folder. Measurements: docs/compare.md and docs/overhead.md.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import machine  # (benchmarks/machine.py, beside this script)

ROOT = Path(__file__).resolve().parent.parent
DIABETES = [
    "--problem", f"{ROOT / 'examples' / 'diabetes.py'}:make_problem",
]  # fmt: skip
CASES: dict[str, list[str]] = {
    "demo": ["--steps", "500", "--budget", "6"],  # descentlab.demo's DEMO_BUDGET
    "diabetes": [
        *DIABETES,
        "--optimizers",
        "sgd,momentum,adam",
        "--steps",
        "300",
        "--max-seeds",
        "5",
    ],
    "small": [*DIABETES, "--optimizers", "sgd", "--budget", "3", "--max-seeds", "5"],
}
GOALS = {"demo": (1.10, 0.85), "diabetes": (1.0, 0.70), "small": (1.5, None)}
#: CPU seconds outside training (the process tree's CPU less the trials' own training) goals
OUTSIDE_GOALS = {"diabetes": 3.0}


# -- measuring ---------------------------------------------------------------------------------


def _written() -> int:
    """Bytes this process and its reaped children sent to disk so far."""
    with open("/proc/self/io") as f:
        io = dict(line.split(": ") for line in f.read().splitlines())
    # what reached the disk: bytes written less those of files removed before they got there
    return int(io["write_bytes"]) - int(io["cancelled_write_bytes"])


def measure(argv: list[str], env: dict[str, str], log: Path) -> tuple[float, int, float]:
    """CPU seconds of the process tree, bytes written to disk, wall seconds."""
    w0, t0 = _written(), time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed; see {log}:\n{log.read_text()[-2000:]}")
    return usage.ru_utime + usage.ru_stime, _written() - w0, wall


def run_dir_of(runs: Path) -> Path:
    (found,) = [p for p in runs.iterdir() if p.is_dir()]
    return found


def kept_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def train_seconds(run_dir: Path) -> float:
    """The trials' own training seconds, from the store's run summaries."""
    with sqlite3.connect(run_dir / "descentlab.sqlite") as db:
        rows = db.execute("SELECT summary FROM runs WHERE name != 'compare'").fetchall()
    return sum(float(json.loads(s or "{}").get("train_seconds") or 0.0) for (s,) in rows)


# -- where the descentlab arm's CPU goes --------------------------------------------------------


def instrumented(out: str, argv: list[str]) -> None:
    """Run ``descentlab argv`` in this process with clocks around its parts; each process
    (the main one, each worker) writes its totals to ``out`` as JSON (a worker after each
    task: the last write is its whole)."""
    import functools
    import resource

    from descentlab._osutil import loading_frozen

    with loading_frozen():  # as the command starts (descentlab.cli._main)
        from descentlab.cli import build_parser, main

        build_parser()
        from descentlab.engine import loop, outcome
        from descentlab.experiments import runner
        from descentlab.report import html
    imports = time.process_time()
    spent = {
        "evaluation": 0.0,
        "report": 0.0,
        "exports": 0.0,
        "planning": 0.0,
        "store": 0.0,
        "verdict": 0.0,
        "data": 0.0,
    }
    depth = [0]

    def clocked(owner: object, name: str, part: str) -> None:
        fn = getattr(owner, name)

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if depth[0]:  # (inside another clocked part: counted there)
                return fn(*args, **kwargs)
            depth[0] += 1
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                spent[part] += time.thread_time() - t0

        setattr(owner, name, timed)

    def write(kind: str, **extra: float) -> None:
        path = Path(out) / f"{kind}-{os.getpid()}.json"
        path.write_text(json.dumps({**spent, "cpu": time.process_time(), **extra}))

    from descentlab.cli import compare as cli_compare
    from descentlab.experiments.compare import running

    clocked(loop.Loop, "_evaluation_rows", "evaluation")
    clocked(outcome, "test_metrics", "evaluation")
    clocked(html, "render_report", "report")
    clocked(cli_compare, "_write_exports", "exports")
    clocked(running._Session, "advance", "planning")  # each optimizer's next round
    clocked(running, "_check_on_data", "data")  # the data loaded and checked
    clocked(runner.TrialRunner, "_imported", "store")  # a task's runs written, one transaction
    clocked(running._Session, "take", "store")  # a finished trial judged and counted
    clocked(running._Session, "add_seeds", "verdict")  # the sequential verdict's looks
    clocked(running._Session, "finish", "verdict")  # the results read back, the last look
    task = runner.run_task

    @functools.wraps(task)
    def run_task(*args, **kwargs):
        try:
            return task(*args, **kwargs)
        finally:
            if os.getpid() != main_pid:
                write("worker")

    # the tasks running after each one sent and each one back, by the main process's clock
    events: list[tuple[float, int, int]] = []
    for name in ("_send", "_finished"):
        logged = getattr(runner.TrialRunner, name)

        def logging(self, *args, _fn=logged, **kwargs):
            try:
                return _fn(self, *args, **kwargs)
            finally:
                events.append((time.monotonic(), len(self._running), self.workers))

        setattr(runner.TrialRunner, name, logging)

    main_pid = os.getpid()
    runner.run_task = run_task
    code = main(argv)
    own = resource.getrusage(resource.RUSAGE_SELF)
    write("main", imports=imports, total=own.ru_utime + own.ru_stime, **idle_of(events))
    sys.exit(code)


def idle_of(events: list[tuple[float, int, int]]) -> dict[str, float]:
    """The worker-seconds without a task between the first task sent and the last one back
    (``events``: the time, the tasks running then and the workers, at each change), and that
    span (nothing where the trials ran in the main process)."""
    if not events or events[0][2] < 2:
        return {}
    idle = sum((w - n) * (t1 - t0) for (t0, n, w), (t1, _, _) in itertools.pairwise(events))
    return {"idle": idle, "span": events[-1][0] - events[0][0], "workers": events[0][2]}


def breakdown(cmd: list[str], env: dict[str, str], scratch: Path) -> None:
    """Run the descentlab arm once under :func:`instrumented` and print where its CPU went."""
    out, runs = scratch / "breakdown", scratch / "breakdown-runs"
    out.mkdir(exist_ok=True)
    argv = [sys.executable, str(Path(__file__).resolve()), "--instrumented", str(out), "--",
            *cmd[3:], "--runs-dir", str(runs)]  # fmt: skip
    tree, _, wall = measure(argv, env, scratch / "breakdown.log")
    parts = {p.name.split("-")[0]: [] for p in out.iterdir()}
    for p in out.iterdir():
        parts[p.name.split("-")[0]].append(json.loads(p.read_text()))
    (main,) = parts["main"]
    workers = parts.get("worker", [])
    train = train_seconds(run_dir_of(runs))
    w_cpu = sum(w["cpu"] for w in workers)
    w_eval = sum(w["evaluation"] for w in workers)
    parts = ("report", "exports", "planning", "data", "store", "verdict", "evaluation")
    rows = [
        ("main: imports", main["imports"]),
        ("main: report", main["report"]),
        ("main: exports", main["exports"]),
        ("main: planning", main["planning"]),
        ("main: data", main["data"]),
        ("main: store writes", main["store"]),
        ("main: verdict", main["verdict"]),
        ("main: evaluations", main["evaluation"]),
        ("main: the rest", main["total"] - main["imports"] - sum(main[k] for k in parts)),
        ("workers: training", train),
        ("workers: evaluations", w_eval),
        ("workers: the rest", w_cpu - train - w_eval),
    ]  # (a run trained in the main process: its training is in "main: the rest" and above)
    print(f"\nwhere the CPU went (one instrumented run, {len(workers)} worker processes, wall "
          f"{wall:.1f} s; the process tree's CPU {tree:.1f} s):")  # fmt: skip
    total = main["total"] + w_cpu
    for name, sec in rows:
        print(f"  {name:<22} {sec:7.2f} s  {sec / total:6.1%}")
    work = train + w_eval + main["evaluation"]
    floor = main["imports"] + main["report"]
    print(f"  {'sum':<22} {total:7.2f} s")
    print(f"outside training: {total - train:.2f} s")
    if "idle" in main:
        slots = main["workers"] * main["span"]
        print(
            f"workers without a task: {main['idle']:.1f} s of {main['workers']} x "
            f"{main['span']:.1f} s ({main['idle'] / slots:.0%}), from the first task sent to "
            "the last one back (the main process's clock: at this load, a share, not seconds)"
        )
    print(f"training share {train / total:.2f}; with evaluations {work / total:.2f}; training's "
          f"share if all but training, evaluations, the imports and the report cost nothing: "
          f"{train / (work + floor):.2f} (with the report free too: "
          f"{train / (work + main['imports']):.2f})")  # fmt: skip


# -- the by-hand arm's plan --------------------------------------------------------------------


def write_plan(case: str, run_dir: Path, device: str, folder: Path) -> Path:
    """The runs ``compare`` made (its trials.csv) and its data, for the by-hand sweep."""
    import torch

    from descentlab.cli import build_parser
    from descentlab.cli.compare import build_spec
    from descentlab.experiments.compare import prepare
    from descentlab.problems.problem import is_problem_ref, resolve_for_compare

    spec = build_spec(build_parser().parse_args(["compare", *CASES[case]]))
    if is_problem_ref(spec.problem):
        spec, splits = resolve_for_compare(spec, None)
        task = "regression" if splits.y_train.is_floating_point() else "classification"
    else:
        splits, task = prepare(spec)
    splits.unseal_test()
    tensors = {k: getattr(splits, k) for k in ("x_train", "y_train", "x_val", "y_val")}
    tensors |= {"x_test": splits.x_test, "y_test": splits.y_test}
    torch.save(tensors, folder / "data.pt")
    report = json.loads((run_dir / "comparison.json").read_text())
    with open(run_dir / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    runs = [
        {"optimizer": r["optimizer"], "phase": r["phase"], "setting": json.loads(r["setting"]),
         "seed": int(r["seed"] or 0)}
        for r in rows
    ]  # fmt: skip
    plan = {
        "task": task, "model": "cnn" if case == "demo" else "mlp",
        "batch_size": int(report["spec"]["batch_size"]), "steps": int(report["spec"]["steps"]),
        "eval_every": max(1, int(report["spec"]["steps"]) // 25), "runs": runs,
        "device": device, "data": str(folder / "data.pt"),
        "optimizers": {
            c.display: {"name": c.optimizer, "fixed": {**c.hyper, "lr": c.default_lr()}
                        if c.fixed_lr else dict(c.hyper)}
            for c in spec.choices()
        },
    }  # fmt: skip
    path = folder / "plan.json"
    path.write_text(json.dumps(plan))
    return path


# -- the by-hand arm ---------------------------------------------------------------------------


def by_hand(plan_path: str) -> None:
    """The sweep a practitioner writes: Optuna's grid over the tuned settings, a plain loop."""
    import optuna
    import torch
    from scipy import stats
    from torch import nn

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plan = json.loads(Path(plan_path).read_text())
    dev, bs, steps = plan["device"], plan["batch_size"], plan["steps"]
    data = {k: v.to(dev) for k, v in torch.load(plan["data"]).items()}
    regression = plan["task"] == "regression"
    loss_fn = nn.MSELoss() if regression else nn.CrossEntropyLoss()

    def model() -> nn.Module:
        if plan["model"] == "mlp":
            return nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 1))
        c = 25
        return nn.Sequential(
            nn.Unflatten(1, (1, 40)), nn.Conv1d(1, c, 5, 2, 1), nn.ReLU(),
            nn.Conv1d(c, c, 3, 2, 1), nn.ReLU(), nn.Conv1d(c, c, 3, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(5 * c, 10),
        )  # fmt: skip

    def optimizer(name: str, params, s: dict):
        wd = s.get("weight_decay", 0.0)
        if name in ("sgd", "momentum", "nesterov"):
            m = s.get("momentum", 0.0 if name == "sgd" else 0.9)
            return torch.optim.SGD(params, s["lr"], m, weight_decay=wd, nesterov=name == "nesterov")
        if name == "adam":
            betas = (s.get("beta1", 0.9), s.get("beta2", 0.999))
            return torch.optim.Adam(params, s["lr"], betas, weight_decay=wd)
        if name == "rmsprop":
            return torch.optim.RMSprop(params, s["lr"], s.get("alpha", 0.99), weight_decay=wd)
        if name == "adagrad":
            return torch.optim.Adagrad(params, s["lr"], weight_decay=wd)
        if name == "adadelta":
            rho = s.get("rho", 0.9)
            return torch.optim.Adadelta(params, s.get("lr", 1.0), rho, weight_decay=wd)
        raise SystemExit(f"by hand: no torch.optim for {name!r}")

    def score(net, x, y) -> float:
        with torch.no_grad():
            out = net(x)
            if regression:
                return float(((out - y) ** 2).mean().sqrt())
            return float((out.argmax(1) == y).float().mean())

    def train(name: str, s: dict, seed: int, x, y, check=None, every=0):
        torch.manual_seed(seed)
        net = model().to(dev)
        opt = optimizer(name, net.parameters(), s)
        warm = int(s.get("warmup", 0.0) * steps)
        shape = s.get("schedule", "constant")

        def factor(t: int) -> float:
            if t < warm:
                return (t + 1) / warm
            u = (t - warm) / max(1, steps - warm)
            return {"constant": 1.0, "cosine": 0.5 * (1 + math.cos(math.pi * u)),
                    "linear": 1.0 - u}[shape]  # fmt: skip

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        gen = torch.Generator().manual_seed(seed)
        n, pos, curve = x.shape[0], x.shape[0], []
        for t in range(steps):
            if pos >= n:
                perm = torch.randperm(n, generator=gen).to(dev)
                xs, ys, pos = x[perm], y[perm], 0
            xb, yb = xs[pos : pos + bs], ys[pos : pos + bs]
            pos += bs
            loss = loss_fn(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if not torch.isfinite(loss):
                return net, math.nan, curve
            if every and (t + 1) % every == 0:
                curve.append(score(net, *check))
        return net, score(net, *check) if check else math.nan, curve

    holdout = (data["x_train"], data["y_train"])
    val = (data["x_val"], data["y_val"])
    both = tuple(torch.cat([data[f"{v}_train"], data[f"{v}_val"]]) for v in "xy")
    test = (data["x_test"], data["y_test"])
    runs = plan["runs"]
    tests: dict[str, dict[int, float]] = {}
    curves: dict[str, list[float]] = {}
    for label in dict.fromkeys(r["optimizer"] for r in runs):
        mine = [r for r in runs if r["optimizer"] == label]
        name, fixed = plan["optimizers"][label]["name"], plan["optimizers"][label]["fixed"]
        for r in mine:
            r["setting"] = {**fixed, **r["setting"]}
        settings = [json.dumps(r["setting"]) for r in mine if r["phase"] == "tune"]
        grid = list(dict.fromkeys(settings))
        if grid:
            study = optuna.create_study(
                sampler=optuna.samplers.GridSampler({"i": list(range(len(grid)))}),
                direction="minimize" if regression else "maximize",
            )

            def objective(trial, grid=grid, mine=mine, name=name) -> float:
                s = grid[trial.suggest_categorical("i", list(range(len(grid))))]
                tune = [r for r in mine if r["phase"] == "tune"]
                seeds = [r["seed"] for r in tune if json.dumps(r["setting"]) == s]
                scores = [train(name, json.loads(s), sd, *holdout, val)[1] for sd in seeds]
                return statistics.fmean(scores)

            study.optimize(objective, n_trials=len(grid))
        for r in mine:
            if r["phase"] == "curve":
                _, _, c = train(name, r["setting"], r["seed"], *holdout, val, plan["eval_every"])
                curves.setdefault(label, []).extend(c)
            elif r["phase"] == "refit":
                net, _, _ = train(name, r["setting"], r["seed"], *both)
                with torch.no_grad():
                    tests.setdefault(label, {})[r["seed"]] = float(loss_fn(net(test[0]), test[1]))
    best = min(tests, key=lambda k: statistics.fmean(tests[k].values()))
    pvalues = []
    for label in tests:
        common = sorted(set(tests[label]) & set(tests[best]))
        if label != best and len(common) >= 2:
            t = stats.ttest_rel([tests[label][s] for s in common], [tests[best][s] for s in common])
            pvalues.append((float(t.pvalue), label))
    pvalues.sort()
    for i, (p, label) in enumerate(pvalues):  # Holm's step-down
        print(f"{label}: p {p:.3g}, worse than {best}: {p * (len(pvalues) - i) < 0.05}")


# -- the benchmark -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), default="small")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", help="another checkout's src/ for a before arm (PYTHONPATH)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--keep", help="keep the run folders under this folder")
    parser.add_argument("--breakdown", action="store_true",
                        help="also one instrumented run: where the job's CPU goes")  # fmt: skip
    parser.add_argument("--by-hand", metavar="PLAN", help=argparse.SUPPRESS)
    parser.add_argument("--instrumented", metavar="DIR", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.instrumented:
        instrumented(args.instrumented, [a for a in rest if a != "--"])
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.by_hand:
        by_hand(args.by_hand)
        return
    scratch = Path(args.keep or tempfile.mkdtemp(prefix="dl-overhead-"))
    scratch.mkdir(parents=True, exist_ok=True)
    extra = ["--no-progress"] + (["--device", args.device] if args.device != "cpu" else [])
    cmd = [sys.executable, "-m", "descentlab", "compare", *CASES[args.case], *extra]

    def path(src: str) -> str:  # first, before what the environment already has
        return os.pathsep.join(filter(None, (src, os.environ.get("PYTHONPATH"))))

    here = {**os.environ, "PYTHONPATH": path(str(ROOT / "src"))}
    here.pop("PYTHONDONTWRITEBYTECODE", None)  # (every arm reads compiled modules, as users do)
    # "A/A": the same command as a second arm, whose ratio to the first is the noise
    arms = {"descentlab": here, "A/A": here}
    if args.base:
        arms["before"] = {**here, "PYTHONPATH": path(str(Path(args.base).resolve()))}
    print(f"{machine.cpu()}; {time.strftime('%Y-%m-%d')}; case {args.case}: {' '.join(cmd[3:])}")
    print(f"load before: {os.getloadavg()}")
    first = scratch / "first"
    measure([*cmd, "--runs-dir", str(first)], here, scratch / "first.log")  # untimed
    plan = write_plan(args.case, run_dir_of(first), args.device, scratch)
    hand = [sys.executable, str(Path(__file__).resolve()), "--by-hand", str(plan)]
    names = [*arms, "by hand"]
    table: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for rnd in range(args.rounds):
        order = names[rnd % len(names) :] + names[: rnd % len(names)]
        for name in order:
            log = scratch / f"{name.replace(' ', '_').replace('/', '')}-{rnd}.log"
            if name == "by hand":
                cpu, written, wall = measure(hand, here, log)
                table[name].append({"cpu": cpu, "written": written, "wall": wall})
                continue
            runs = scratch / f"{name.replace('/', '')}-{rnd}"
            cpu, written, wall = measure([*cmd, "--runs-dir", str(runs)], arms[name], log)
            folder = run_dir_of(runs)
            kept, train = kept_bytes(folder), train_seconds(folder)
            table[name].append({"cpu": cpu, "written": written, "wall": wall, "kept": kept,
                                "train": train})  # fmt: skip
            if not args.keep:
                shutil.rmtree(runs)
        print(f"round {rnd + 1}: " + ", ".join(f"{n} {table[n][-1]['cpu']:.1f} s" for n in names))
    print(f"load after: {os.getloadavg()}")
    if args.rounds > 0:
        print_table(args.case, names, table)
    if args.breakdown:
        breakdown(cmd, here, scratch)


def print_table(case: str, names: list[str], table: dict[str, list[dict[str, float]]]) -> None:
    """The arms' medians over the rounds, and the goals."""
    med = lambda n, k: statistics.median(r[k] for r in table[n])  # noqa: E731
    goal, share_goal = GOALS[case]
    print(f"{'arm':<11} {'wall s':>7} {'CPU s':>7} {'÷ by hand':>9} {'train share':>11} "
          f"{'written MB':>10} {'kept MB':>8} {'written ÷ kept':>14} "
          f"{'outside training s':>18}")  # fmt: skip
    for n in names:
        ratio = statistics.median(
            a["cpu"] / b["cpu"] for a, b in zip(table[n], table["by hand"], strict=True)
        )
        line = f"{n:<11} {med(n, 'wall'):7.1f} {med(n, 'cpu'):7.1f} {ratio:9.2f}"
        if n != "by hand":
            share = statistics.median(r["train"] / r["cpu"] for r in table[n])
            kept = med(n, "kept")
            line += f" {share:11.2f} {med(n, 'written') / 1e6:10.2f} {kept / 1e6:8.2f}"
            line += f" {statistics.median(r['written'] / r['kept'] for r in table[n]):14.1f}"
            line += f" {statistics.median(r['cpu'] - r['train'] for r in table[n]):18.2f}"
        else:
            line += f" {'':11} {med(n, 'written') / 1e6:10.2f}"
        print(line)
    aa = statistics.median(
        a["cpu"] / b["cpu"] for a, b in zip(table["descentlab"], table["A/A"], strict=True)
    )
    print(f"descentlab ÷ A/A (the same command): {aa:.2f}, the median of the rounds' ratios")
    share = f", training share >= {share_goal}" if share_goal else ""
    outside = f", outside training <= {OUTSIDE_GOALS[case]} s" if case in OUTSIDE_GOALS else ""
    print(
        f"goals: ÷ by hand <= {goal}{share}{outside}, written <= 2x kept; the A/A row (the "
        "same command again) is the noise of one ratio"
    )


if __name__ == "__main__":
    main()
