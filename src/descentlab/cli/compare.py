"""``descentlab compare``: which optimizer, with which learning rate, for this model?

A fixed protocol on one problem: tune each optimizer's learning rate on validation data, rerun
the best with several seeds, refit on training + validation data and evaluate on the test set
once; write a self-contained HTML report.

With no arguments, compares SGD, Momentum, Nesterov, AdaGrad, Adadelta (tuned, and at its
default learning rate), RMSProp and Adam on MNIST-1D with the CNN: each optimizer's learning
rate is tuned on validation data (a coarse grid, extended past a winning edge and refined
around the best, each trial as long as the final runs), the chosen setting is rerun with 5
seeds for learning curves and refit on training + validation data with 5 seeds for the test
numbers (see :mod:`descentlab.experiments.compare`). ``--budget N`` gives every optimizer the
same N trials, drawn quasi-randomly from the search space it declares (AlgoPerf's external
tuning; the default of ``--problems``, with N = 20 and 2 tuning seeds; see
:mod:`descentlab.experiments.compare.search_space`). Failed trials (non-finite loss, no better
than chance, loss above its start) are counted. Writes ``runs/<name>/report.html`` and prints
its path, the results table and a recommendation.

Examples::

    descentlab compare
    descentlab compare --optimizers sgd,momentum,adam --steps 3000 --lr-trials 7 --seeds 5
    descentlab compare --problem digits --model digits_cnn --cv 5 --target-accuracy 0.95
    descentlab compare --optimizer adam \\
        --optimizer "rms_mom=chain(scale_by_rms(alpha=0.9), trace(momentum=0.9), scale_by_lr())" \\
        --lr-range rms_mom=1e-4:1e-1
    descentlab compare --search random --lr-trials 8 --tune momentum=0.5,0.9,0.99
    descentlab compare --budget 20 --tune-seeds 2          # equal budgets (AlgoPerf)
    descentlab compare --problems default --prune          # stop clearly bad trials early
    descentlab compare --optimizers adam --optimizer lion=pytorch_optimizer.Lion \\
        --optimizer sf=schedulefree.AdamWScheduleFree --hyper sf.warmup_steps=100
    descentlab compare --problem examples/diabetes.py:make_problem
    descentlab compare --problems default
    descentlab compare --backend ray                       # trials as Ray tasks (local Ray)
    descentlab compare --backend ray --address HEAD:6379   # ... on a running Ray cluster
    descentlab compare --optimizers sgd,momentum --tune sgd.momentum=0,0.9 --fixed-lr sgd

Running the same command again continues an interrupted comparison (finished trials are kept)
or, when it has finished, re-renders its report.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from descentlab.cli._options import (
    add_backend_arguments,
    add_command,
    add_count,
    add_engine_options,
    add_rank_timeout,
    add_switch,
    check_backend_arguments,
    check_out_dir,
    check_workers_and_threads,
    checked_nproc,
    checked_rank_timeout,
    number_or_word,
    print_json,
    shown,
)
from descentlab.cli._options import parse_pairs as _pairs
from descentlab.cli._options import parse_value as _value
from descentlab.experiments.compare.choices import parse_optimizer
from descentlab.experiments.compare.pruning import PRUNERS
from descentlab.experiments.compare.search_space import DEFAULT_BUDGET, QUASIRANDOM
from descentlab.experiments.compare.spec import DEFAULT_OPTIMIZERS, CompareSpec
from descentlab.experiments.kinds import TrialKind, forms, kind_named, kind_of

__all__ = ["build_spec", "register", "run"]


def _range(text: str, flag: str) -> tuple[float, float]:
    lo, sep, hi = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return float(lo), float(hi)
    except ValueError:
        raise ValueError(f"{flag} takes LOW:HIGH (e.g. 1e-4:1e-1), got {text!r}") from None


def _checkpoint_every(text: str) -> int | str | None:
    """``--checkpoint-every``: a positive integer, ``auto`` or ``off`` (None)."""
    word = text.strip().lower()
    if word in ("auto", "off"):
        return None if word == "off" else "auto"
    try:
        value = int(word)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"--checkpoint-every must be a positive integer, 'auto' or 'off', got {text!r}"
        )
    return value


_BATCH_SIZE = number_or_word(int, ("full", "none"), "batch size must be an integer or 'full'")
_TARGET = number_or_word(
    float, ("none", "off"), "target accuracy must be a number in [0, 1] or 'none'"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand."""
    d = CompareSpec()
    p = add_command(
        subparsers,
        "compare",
        run,
        help="compare optimizers: tune on validation data, several seeds, report",
    )
    _what_arguments(p.add_argument_group("what is compared"), d)
    _budget_arguments(p.add_argument_group("budget and protocol"), d)
    add_engine_options(p.add_argument_group("every trial's training"))
    _output_arguments(p.add_argument_group("output and execution"))


def _what_arguments(what: Any, d: CompareSpec) -> None:
    what.add_argument(
        "--problem",
        help=f"dataset or built-in problem (default {d.problem}; also charlm), or your own "
        "problem function: package.module:make_problem or path/to/file.py:make_problem "
        "(--problem-option K=V become its keyword arguments); with an objective, the data "
        "descentlab gives it",
    )
    code = what.add_mutually_exclusive_group()
    flags = forms()  # (each kind's flags, as it registered them)
    for flag in flags.values():
        code.add_argument(flag.flag, metavar=flag.metavar, help=f"{flag.help} ({flag.docs})")
    what.add_argument(
        "--script-args",
        metavar="'ARGS'",
        help="your code's own command line, as python FILE.py ARGS would give it: sys.argv is "
        "[FILE.py, *ARGS] while it is imported and each trial runs (default: none), so a "
        "module-level parse_args() reads it",
    )
    what.add_argument(
        "--metric",
        metavar="NAME[:max|:min]",
        help=f"{', '.join(f.flag for f in flags.values() if f.metric)}: the evaluation's metric "
        "the verdict reads, e.g. eval_loss (minimized when its name ends in loss, else "
        "maximized, unless told)",
    )
    what.add_argument(
        "--problems",
        metavar="A,B,...|default",
        help="compare on several problems (each as --problem takes it; 'default' is "
        "mnist1d,digits,quadratic_deep,charlm) and add a rank table and performance profiles",
    )
    what.add_argument("--problem-option", action="append", metavar="K=V", help="dataset option")
    what.add_argument("--model", help="model (default: the problem's default; MNIST-1D: cnn)")
    what.add_argument("--model-option", action="append", metavar="K=V", help="model option")
    what.add_argument(
        "--optimizers",
        metavar="A,B,...",
        help="comma-separated optimizer names; NAME@default keeps one at its default learning "
        f"rate (default {','.join(map(str, DEFAULT_OPTIMIZERS))})",
    )
    what.add_argument(
        "--optimizer",
        action="append",
        metavar="SPEC",
        help="one optimizer, repeatable: a name; LABEL=RULES for a composed one, e.g. "
        "'rms_mom=chain(scale_by_rms(alpha=0.9), trace(momentum=0.9), scale_by_lr())'; or "
        "[LABEL=]IMPORT.PATH of any torch.optim.Optimizer class or factory, e.g. "
        "torch.optim.SGD, lion=pytorch_optimizer.Lion, sf=schedulefree.AdamWScheduleFree",
    )
    what.add_argument(
        "--hyper",
        action="append",
        metavar="LABEL.K=V",
        help="a fixed hyperparameter of one optimizer, e.g. momentum.momentum=0.8",
    )
    what.add_argument(
        "--fixed-lr",
        action="append",
        metavar="LABEL[=LR]",
        help="keep this optimizer at its default learning rate, or at LR (not tuned), "
        "repeatable: one rule at two rates is --optimizer fast=adam --optimizer slow=adam "
        "--fixed-lr fast=0.05 --fixed-lr slow=0.005",
    )
    what.add_argument(
        "--baseline",
        metavar="LABEL",
        help="also size every other optimizer against this one (speedups in steps and "
        "seconds), e.g. adamw; the chosen one is always a baseline",
    )
    what.add_argument(
        "--min-difference",
        type=float,
        metavar="D",
        help="a practical threshold in the metric's units (0.01: one accuracy point): the "
        "verdict says where a difference it shows may be smaller, and where one it does not "
        "show is within it either way; changing it re-renders, it reruns nothing",
    )


def _budget_arguments(budget: Any, d: CompareSpec) -> None:
    budget.add_argument(
        "--batch-size",
        type=_BATCH_SIZE,
        metavar="N|full",
        help="default min(128, n_train // 4): four steps or more an epoch (said when not 128)",
    )
    add_count(budget, "--steps", help=f"steps of the final runs (default {d.steps})")
    add_count(budget, "--tune-steps", help="steps of each tuning trial (default: --steps)")
    add_count(
        budget,
        "--tune-seeds",
        help=f"seeds per tuning setting, scores averaged (default {d.tune_seeds})",
    )
    add_count(
        budget,
        "--lr-trials",
        help="learning rates per optimizer on the coarse grid (or random draws; default "
        f"{d.lrs_per_optimizer})",
    )
    # The old name of --lr-trials (it never meant training runs): still read, with a warning.
    budget.add_argument("--trials", type=int, dest="old_trials", help=argparse.SUPPRESS)
    add_switch(
        budget,
        "--no-refine",
        help="tune on the coarse grid only (no extension past a winning edge, no finer points)",
    )
    budget.add_argument(
        "--search",
        choices=("grid", "random", QUASIRANDOM),
        help="default grid (--problems: quasirandom); quasirandom: the equal budget of --budget",
    )
    add_count(
        budget,
        "--budget",
        help="equal, declared budgets (AlgoPerf external tuning): N trials for every "
        "optimizer, drawn quasi-randomly from its declared search space (lr, momentum or "
        f"betas, weight decay, warmup, schedule); implies --search {QUASIRANDOM} "
        f"(default {DEFAULT_BUDGET} with it)",
    )
    budget.add_argument(
        "--prune",
        nargs="?",
        const=PRUNERS[0],
        choices=PRUNERS,
        help="stop tuning settings that are clearly behind early, judged on their validation "
        f"scores: {PRUNERS[0]} (the default) at 1/8 and 1/2 of their steps, those worse than "
        "the best setting there by more than their noise's one-sided 1%% margin; asha: "
        "asynchronous successive halving (Optuna's SuccessiveHalvingPruner) at 1/16 and 1/4, "
        "in a fixed order. Scores at chance or within their noise prune nothing; pruned "
        "settings count as tried, the final runs are full (needs optuna: pip install "
        "'descentlab[tune]')",
    )
    budget.add_argument(
        "--lr-range",
        action="append",
        metavar="[LABEL=]LO:HI",
        help="learning-rate search range for one optimizer (or all, without LABEL)",
    )
    budget.add_argument(
        "--tune",
        action="append",
        metavar="[LABEL.]K=V1,V2|K=LO:HI",
        help="also tune another hyperparameter: a list of values, or (random search) a "
        "log-uniform range. K applies to the optimizers that have K (momentum: Momentum and "
        "Nesterov, not SGD); LABEL.K to that optimizer only",
    )
    add_switch(
        budget,
        "--measure-targets",
        help="--problems: a problem with no target of its own and none stored gets one from "
        "reference runs (Adam tuned on a 5-point grid, 3 seeds; run once, found again after)",
    )
    budget.add_argument(
        "--cv", type=int, metavar="K", help="k-fold cross-validation (default: holdout split)"
    )
    add_count(
        budget,
        "--seeds",
        help=f"curve-run seeds, and test seeds at the verdict's first look (default {d.seeds})",
    )
    add_count(
        budget,
        "--max-seeds",
        help="the most test seeds an optimizer whose comparison is still open gets (default 8 x "
        "--seeds; --max-seeds equal to --seeds: one look, no seeds added)",
    )
    add_count(budget, "--seed", help="first seed (default 0)")
    budget.add_argument(
        "--target-accuracy",
        type=_TARGET,
        metavar="F|none",
        help="a validation accuracy whose first crossing is timed, steps and seconds "
        "(default none: the speedups say how much faster each one gets where the others end)",
    )
    add_count(budget, "--eval-every", help="evaluation interval of the curve runs")
    budget.add_argument("--val-fraction", type=float, metavar="F", help="default 0.2")
    add_count(budget, "--split-seed", help="default 0")
    budget.add_argument(
        "--landscapes",
        metavar="A,B",
        help="landscapes for the paths figure (default ravine,saddle; 'none' for none)",
    )


def _output_arguments(out: Any) -> None:
    out.add_argument("--runs-dir", default="runs", help="folder of run directories (default runs)")
    out.add_argument(
        "--name", help="run directory name (default: <problem>-<model>-<hash of the settings>)"
    )
    out.add_argument(
        "--continue-run",
        metavar="RUN_DIR",
        help="your own code's earlier comparison, continued on purpose though its files changed "
        "(its trials reused as they are; the files that changed are said)",
    )
    add_switch(
        out,
        "--force",
        help="use a run directory that holds other files but no store, or whose store is "
        "empty or not the one its comparison.json was made from: the comparison is trained "
        "there again (its report.html, trials.csv and comparison.json are replaced)",
    )
    add_count(
        out,
        "--workers",
        help="worker processes (default: one per core; at most one per 300 MB of available "
        "memory, and at most one per trial the comparison runs: more are not started)",
    )
    add_count(out, "--threads", default=1, help="torch threads per trial")
    out.add_argument(
        "--device", help="torch device every trial trains on: cpu (default), cuda or cuda:N"
    )
    add_switch(
        out,
        "--one-at-a-time",
        help="train each trial by itself, not in vectorized groups (slower, same numbers up "
        "to rounding; each run's seconds are its own either way, a run of a vectorized pass "
        "charged its share)",
    )
    out.add_argument(
        "--checkpoint-every",
        type=_checkpoint_every,
        default="auto",
        metavar="N|auto|off",
        help="each trial that trains alone checkpoints every N steps; auto (default): as "
        "often as costs at most 2%% of its time, and the small models' vectorized groups "
        "(seconds each) keep none; off: only where it stops. Run again after an "
        "interruption, each unfinished trial continues from its last checkpoint (also on Ray)",
    )
    add_backend_arguments(out, "trials")
    add_count(
        out,
        "--nproc",
        help="train each trial across N processes of this machine, its model sharded with "
        "FSDP2 (one trial at a time; docs/distributed.md)",
    )
    add_rank_timeout(out)
    add_switch(
        out,
        "--no-progress",
        help="no progress output (else a line per trial, and a long trial's steps, rate and "
        "time left: one line every 5 s on a terminal, every 30 s in a log)",
    )
    drawn = out.add_mutually_exclusive_group()
    add_switch(
        drawn,
        "--report",
        help="also draw the HTML report and its figures (report.html, figures/) once the "
        "comparison is done; without it only trials.csv and comparison.json are written, and "
        "`descentlab report RUN_DIR` draws the report later from the store",
    )
    add_switch(
        drawn,
        "--no-report",
        help="skip the HTML report and its figures, the default (trials.csv and comparison.json "
        "are still written into the run directory)",
    )
    add_switch(out, "--json", help="print the results as JSON")


def build_spec(args: argparse.Namespace) -> CompareSpec:
    """The :class:`~descentlab.experiments.compare.CompareSpec` the arguments describe."""
    spec = CompareSpec(**build_fields(args))
    spec.validate()
    return spec


def build_fields(args: argparse.Namespace, *, default_optimizers: Any = None) -> dict[str, Any]:
    """The :class:`~descentlab.experiments.compare.CompareSpec` fields the arguments set
    (fields left at their defaults are absent)."""
    fields: dict[str, Any] = {"problem": args.problem or CompareSpec().problem}
    fields.update(_code(args))
    default = CompareSpec().optimizers if default_optimizers is None else default_optimizers
    fields.update(_optimizer_fields(args, default))
    labels = [parse_optimizer(o).label for o in fields.get("optimizers", default)]
    lr_ranges = _lr_ranges(args.lr_range, labels)
    if lr_ranges:
        fields["lr_ranges"] = lr_ranges
    space = _space(args.tune)
    if space:
        fields["space"] = space
    fields.update(_plain_fields(args))
    return fields


def _kind(args: argparse.Namespace) -> TrialKind:
    """The kind of trial the arguments compare on (:mod:`descentlab.experiments.kinds`)."""
    return kind_of(argparse.Namespace(**_code(args)))


def _code(args: argparse.Namespace) -> dict[str, Any]:
    """``{"objective": ...}``: your own training code from a kind's flag (--objective,
    --hf-trainer, --lightning, ...: :func:`~descentlab.experiments.kinds.forms`) and
    --metric, which gets descentlab's data where --problem names them; ``{}`` without it."""
    given = {form: getattr(args, f.flag.lstrip("-").replace("-", "_"), None)
             for form, f in forms().items()}  # fmt: skip
    form = next((f for f, ref in given.items() if ref), None)
    metric = getattr(args, "metric", None)
    if form is None:
        if metric is not None:
            takes = " or ".join(f.flag for f in forms().values() if f.metric)
            raise ValueError(f"--metric {metric} names the metric of {takes}; give one")
        if getattr(args, "script_args", None):
            raise ValueError(
                f"--script-args {args.script_args!r} is the command line of your own code: "
                "give it with --objective, --hf-trainer or --lightning"
            )
        return {}
    record = {"form": form, "ref": given[form], "data": bool(args.problem)}
    script_args = getattr(args, "script_args", None)
    if script_args:
        import shlex

        record["argv"] = shlex.split(script_args)
    return {"objective": kind_named(record).from_command_line(record, metric)}


def _optimizer_fields(args: argparse.Namespace, default: Any) -> dict[str, Any]:
    """``optimizers`` from --optimizers and --optimizer, with --hyper and --fixed-lr applied
    (absent when none of them is given)."""
    optimizers: list[Any] = []
    if args.optimizers is not None:
        optimizers += [s.strip() for s in args.optimizers.split(",") if s.strip()]
        if not optimizers and not args.optimizer:
            raise ValueError(
                f"--optimizers must name at least one optimizer, got {args.optimizers!r}"
            )
    optimizers += list(args.optimizer or [])
    fields: dict[str, Any] = {}
    if optimizers or args.optimizers is not None:
        fields["optimizers"] = optimizers
    choices = [parse_optimizer(o) for o in fields.get("optimizers", default)]
    labels = [c.label for c in choices]
    hyper: dict[str, dict[str, Any]] = {}
    for key, value in _pairs(args.hyper, "--hyper").items():
        label, dot, name = key.rpartition(".")  # labels may hold dots (torch.SGD)
        if not dot or label not in labels:
            raise ValueError(
                f"--hyper takes LABEL.NAME=VALUE with LABEL one of {labels}, got {key!r}"
            )
        hyper.setdefault(label, {})[name] = value
    fixed = set()
    for item in args.fixed_lr or []:
        label, sep, lr = item.rpartition("=")
        label = label if sep else lr
        if label not in labels:
            raise ValueError(f"--fixed-lr names {label!r}, which is not compared here: {labels}")
        fixed.add(label)
        if sep:
            value = _value(lr.strip())
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"--fixed-lr {label}=LR takes a positive number, got {lr!r}")
            hyper.setdefault(label, {})["lr"] = float(value)
    if hyper or fixed:
        fields["optimizers"] = [
            dataclasses.replace(
                c,
                hyper={**c.hyper, **hyper.get(c.label, {})},
                fixed_lr=c.fixed_lr or c.label in fixed,
            )
            for c in choices
        ]
    return fields


def _lr_ranges(items: list[str] | None, labels: list[str]) -> dict[str, tuple[float, float]]:
    """--lr-range [LABEL=]LO:HI, for one optimizer or (without LABEL) all."""
    lr_ranges: dict[str, tuple[float, float]] = {}
    for item in items or []:
        label, sep, text = item.rpartition("=")
        rng = _range(text, "--lr-range")
        if sep and label not in labels:
            raise ValueError(f"--lr-range names {label!r}, which is not compared here: {labels}")
        for t in [label] if sep else labels:
            lr_ranges[t] = rng
    return lr_ranges


def _space(items: list[str] | None) -> dict[str, Any]:
    """--tune [LABEL.]K=V1,V2 (values) or K=LO:HI (a log-uniform range)."""
    space: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--tune takes K=V1,V2,... or K=LO:HI, got {item!r}")
        if ":" in text:
            space[key.strip()] = _range(text, "--tune")
        else:
            space[key.strip()] = [_value(v.strip()) for v in text.split(",") if v.strip()]
    return space


#: The most learning rates per optimizer on the coarse grid the command takes.
MAX_LR_TRIALS = 1000


def _plain_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The fields given as plain values (None: not given)."""
    trials = args.lr_trials
    if args.old_trials is not None:
        warnings.warn(
            "--trials is deprecated: it is the number of learning rates per optimizer, "
            "now --lr-trials",
            FutureWarning,
            stacklevel=2,
        )
        trials = args.old_trials if trials is None else trials
    search = args.search
    if args.budget is not None:
        if trials is not None:
            raise ValueError(
                f"--budget {args.budget} and --lr-trials {trials} both set the trials per "
                "optimizer: give one"
            )
        if search not in (None, QUASIRANDOM):
            raise ValueError(
                f"--budget draws quasi-randomly (--search {QUASIRANDOM}), got --search {search}"
            )
        if args.budget < 1:
            raise ValueError(f"--budget must be a positive integer, got {args.budget}")
        trials, search = args.budget, QUASIRANDOM
    elif search == QUASIRANDOM and trials is None:
        trials = DEFAULT_BUDGET
    if trials is not None and trials > MAX_LR_TRIALS:
        # the grid is built up front: 10**5 points took seconds, 2**63 failed with an IndexError
        raise ValueError(f"--lr-trials must be at most {MAX_LR_TRIALS:,}, got {trials}")
    simple = {
        "problem_options": _pairs(args.problem_option, "--problem-option") or None,
        "model": args.model,
        "model_options": _pairs(args.model_option, "--model-option") or None,
        "steps": args.steps,
        "tune_steps": args.tune_steps,
        "tune_seeds": args.tune_seeds,
        "lrs_per_optimizer": trials,
        "search": search,
        "cv_folds": args.cv,
        "seeds": args.seeds,
        "max_seeds": args.max_seeds,
        "seed": args.seed,
        "eval_every": args.eval_every,
        "val_fraction": args.val_fraction,
        "split_seed": args.split_seed,
        "name": args.name,
        "device": getattr(args, "device", None),
        # the command line's default ("auto"; an objective's code trains in its own)
        "precision": args.precision or _kind(args).precision,
        "accumulate": args.accumulate,
        "clip_grad_norm": args.clip_grad_norm,
        "prune": getattr(args, "prune", None),
        "min_difference": getattr(args, "min_difference", None),
        "baseline": getattr(args, "baseline", None),
    }
    fields = {k: v for k, v in simple.items() if v is not None}
    if args.no_refine:
        fields["refine"] = False
    if args.batch_size is not None:
        fields["batch_size"] = None if args.batch_size == "full" else args.batch_size
    if args.target_accuracy is not None:
        fields["target_accuracy"] = None if args.target_accuracy == "none" else args.target_accuracy
    if args.landscapes is not None:
        text = args.landscapes.strip()
        fields["landscapes"] = (
            () if text.lower() == "none" else tuple(s.strip() for s in text.split(",") if s.strip())
        )
    return fields


def run(args: argparse.Namespace) -> int:
    """Run ``descentlab compare``; returns the exit code (0 done, 130 or 143 stopped by
    SIGINT or SIGTERM).

    The comparison (experiments) returns a plain value; the report (report) renders it."""
    from descentlab.experiments.compare import Interrupted

    t0 = time.perf_counter()
    work, show = _many(args) if args.problems is not None else _one(args)
    try:
        value = work()
    except Interrupted as exc:
        print(f"descentlab: {exc}", file=sys.stderr)
        return 128 + exc.signum  # 130 SIGINT, 143 SIGTERM
    elapsed = time.perf_counter() - t0
    t1 = time.perf_counter()
    _render(args, value)
    args.report_seconds = time.perf_counter() - t1  # (printed beside the report's path)
    show(args, value, elapsed)
    return 0


Work = tuple[Callable[[], Any], Callable[[argparse.Namespace, Any, float], None]]


def _one(args: argparse.Namespace) -> Work:
    """One problem: the comparison to run (every argument checked first) and its printout."""
    if args.measure_targets:
        raise ValueError(
            "--measure-targets sets the targets of a suite's problems: use it with --problems"
        )
    objective = None
    if args.continue_run:  # (its folder names the run: --name and --runs-dir follow from it)
        from descentlab.experiments.objective import continued

        objective = continued(args.continue_run, _code(args).get("objective"))
        args.runs_dir = str(Path(args.continue_run).parent)
    plan = CompareSpec(**build_fields(args)).plan()  # checked here, where it enters, once
    check_out_dir(args.runs_dir, "--runs-dir")
    _refuse_a_folder_of_the_users(Path(args.runs_dir) / plan.run_name, args.force)
    check_workers_and_threads(args.workers, args.threads)
    check_backend_arguments(args)
    nproc = checked_nproc(args)
    timeout = checked_rank_timeout(args, nproc > 1)
    if timeout is not None:  # (for the trials' launches)
        os.environ["DESCENTLAB_RANK_TIMEOUT"] = repr(timeout)

    def work() -> Any:
        from descentlab.experiments.compare import compare

        return compare(plan, args.runs_dir, workers=args.workers, threads=args.threads,
                       progress=not args.no_progress, backend=args.backend,
                       address=args.address, vectorize=not args.one_at_a_time,
                       checkpoint_every=args.checkpoint_every, nproc=nproc,
                       objective=objective, start_over=args.force)  # fmt: skip

    return work, _show_one


def _refuse_a_folder_of_the_users(run_dir: Path, force: bool) -> None:
    """A run directory that exists with files in it but no store is the user's: refused
    (before anything is written) unless --force."""
    from descentlab.store import store_path_of

    if force or not run_dir.is_dir() or store_path_of(run_dir).exists():
        return
    if any(run_dir.iterdir()):
        raise ValueError(
            f"{run_dir} is a folder of other files, not a comparison's run directory (no "
            "store in it); choose another --name or --runs-dir, or pass --force to write there"
        )


def _show_one(args: argparse.Namespace, result: Any, elapsed: float) -> None:
    if args.json:
        print_json({"run_dir": str(result.run_dir),
                    "report": str(result.report_path) if args.report else None,
                    "rows": result.rows(), "recommendation": result.recommendation(),
                    "warnings": result.warnings(), "budget": result.budget(),
                    "protocol": result.protocol(), "seeds": result.seed_lines(),
                    "tuning_noise": result.tuning_noise_line(), "seconds": elapsed},
                   default=str)  # fmt: skip
        return
    from descentlab.experiments.compare.as_code import CODE_INDENT

    print(result.table())
    for line in result.protocol():
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        print(textwrap.fill(line, width=100, subsequent_indent=indent))
    print(textwrap.fill(result.tuning_noise_line(), width=100, subsequent_indent="  "))
    seeds = result.seed_lines()
    if seeds:
        print(textwrap.fill("test seeds: " + "; ".join(seeds), width=100, subsequent_indent="  "))
    print()
    for part in result.recommendation().split("\n"):
        if part.startswith(CODE_INDENT):  # (code you paste: as it is)
            print(part)
            continue
        indent = " " * (len(part) - len(part.lstrip()))
        print(textwrap.fill(part, width=100, subsequent_indent=indent + "  "))
    for line in result.warnings():
        print(textwrap.fill(f"warning: {line}", width=100, subsequent_indent="  "))
    print(_report_line(args, result.report_path, result.run_dir))
    print(f"done in {elapsed:.1f} s (store {shown(result.store_path)})")


def _report_line(args: argparse.Namespace, path: Path | None, run_dir: Path | None) -> str:
    """Where the report is and how long drawing it took, or how to draw it (not asked)."""
    if args.report and path is not None:
        return f"report: {shown(path)} (drawn in {args.report_seconds:.1f} s)"
    later = f"`descentlab report {shown(run_dir)}` draws it" if run_dir is not None else ""
    return (
        f"report: not drawn (--report draws it with the comparison{'; ' if later else ''}{later})"
    )


def _many(args: argparse.Namespace) -> Work:
    """``--problems``: the protocol on each problem, then the multi-problem view."""
    # scipy.stats (~1 CPU s): imported when several problems are compared, not for --help
    from descentlab.experiments.multi import SUITE_OPTIMIZERS, compare_many, expand_problems

    if args.nproc is not None:
        raise ValueError("--nproc trains the trials of one problem: it does not go with --problems")
    _kind(args).check_suite()
    if args.rank_timeout is not None:
        raise ValueError("--rank-timeout goes with --nproc: it does not go with --problems")
    fields = build_fields(args, default_optimizers=SUITE_OPTIMIZERS)
    fields.pop("problem", None)
    check_workers_and_threads(args.workers, args.threads)
    if fields.get("name") is not None:
        raise ValueError("--name names one comparison; with --problems each has its own")
    problems = expand_problems(args.problems)

    def work() -> Any:
        return compare_many(problems, args.runs_dir, settings=fields, workers=args.workers,
                            threads=args.threads, progress=not args.no_progress,
                            vectorize=not args.one_at_a_time,
                            checkpoint_every=args.checkpoint_every,
                            measure_targets=args.measure_targets)  # fmt: skip

    return work, _show_many


def _show_many(args: argparse.Namespace, multi: Any, elapsed: float) -> None:
    if args.json:
        print_json({"report": str(multi.report_path) if args.report else None, "seconds": elapsed,
                    "problems": [p.name for p in multi.problems],
                    "steps_to_target": [[None if math.isinf(v) else v for v in row]
                                        for row in multi.times().tolist()],
                    "seconds_to_target": [[v if math.isfinite(v) else None for v in row]
                                          for row in multi.seconds().tolist()],
                    "seconds_clock": multi.clock_words(),
                    "score_seconds": None if (ts := multi.time_score()) is None
                    else ts.tolist(),
                    "score_steps": multi.step_score().tolist(),
                    "targets": [{"problem": p.name, "validation": p.target,
                                 "test": p.test_target, "kind": p.target_kind}
                                for p in multi.problems],
                    "budget": multi.budget_lines(),
                    "ranks": multi.ranks().tolist()}, default=str)  # fmt: skip
        return
    print(multi.table())
    print()
    for line in multi.verdict_lines():
        print(textwrap.fill(line, width=100, subsequent_indent="    "))
    print()
    print(multi.targets_table())
    for line in multi.budget_lines():
        print(line)
    print(f"report: {shown(multi.report_path)}" if args.report else _report_line(args, None, None))
    print(f"done in {elapsed:.1f} s")


def _render(args: argparse.Namespace, value: Any) -> None:
    """Write each comparison's exports (trials.csv, comparison.json); with --report also the
    HTML report of a comparison or a multi-problem comparison, its figures drawn once (without
    it no HTML page and no figure: about as much CPU as the job's other work on a small
    comparison, docs/overhead.md)."""
    if not args.report:
        _write_exports(value)
        return
    # The report draws with matplotlib: imported here, off the command line's fast path.
    from descentlab.experiments.multi import MultiComparison

    if isinstance(value, MultiComparison):
        from descentlab.report.profiles import render_multi_report

        render_multi_report(value)
    else:
        from descentlab.report.html import render_report

        render_report(value)


def _write_exports(value: Any) -> None:
    """``trials.csv`` and ``comparison.json`` of each comparison, in its run directory (no
    matplotlib: the exports are plain functions of the comparison)."""
    from descentlab.report.compare_export import write_exports

    problems = getattr(value, "problems", None)
    comparisons = [p.comparison for p in problems] if problems is not None else [value]
    for cmp in comparisons:
        write_exports(cmp, cmp.report_path.parent)
