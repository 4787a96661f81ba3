"""``descentlab train``: one training run from the command line, recorded in the store.

Train one model (problem + model + loss + optimizer + schedule + regularizers), show
progress, store the run and print its final metrics.

Examples::

    descentlab train --problem mnist1d --model cnn --optimizer adam --lr 1e-2 \\
        --batch-size 100 --steps 6000
    descentlab train --problem digits --model digits_mlp --optimizer momentum --lr 0.05 \\
        --hyper momentum=0.9 --schedule "cosine" --epochs 30 --batch-size 32
    descentlab train --problem examples/streamed_text.py:make_problem --steps 60
    descentlab train --resume 12            # continue run 12 from its last checkpoint
    descentlab train --resume 12 --restart  # ... or from step 0 if that one is damaged

The run is stored in ``<runs-dir>/descentlab.sqlite`` (or ``--db``) with its checkpoint under
``<runs-dir>/checkpoints/``; the run id is printed first, the final metrics last.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
from pathlib import Path
from typing import Any

import torch

from descentlab.cli._options import (
    add_command,
    add_count,
    add_engine_options,
    add_rank_timeout,
    add_switch,
    check_out_dir,
    check_store_path,
    check_workers_and_threads,
    number_or_word,
    parse_pairs,
    parse_schedule_arg,
    print_json,
)
from descentlab.constraints import POSITIVE_INT, check

__all__ = ["format_summary", "register", "run"]

_HELP = "train one model and record the run"

# Options that do not define a run: --resume takes the recorded config and refuses the others.
_SESSION_OPTIONS = frozenset(
    {"command", "func", "runs_dir", "db", "resume", "restart", "until_step", "no_progress"}
    | {"threads", "json", "nproc", "rank_timeout"}
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    p = add_command(subparsers, "train", run, _HELP)
    _add_what_and_how(p)
    _add_regularizers(p)
    _add_observation(p)


def _add_what_and_how(p: argparse.ArgumentParser) -> None:
    what = p.add_argument_group("what is trained")
    what.add_argument(
        "--problem",
        help="dataset (default mnist1d), or your own problem function: package.module:"
        "make_problem or path/to/file.py:make_problem (--problem-option K=V become its "
        "keyword arguments), as compare takes it",
    )
    what.add_argument("--problem-option", action="append", metavar="K=V", help="dataset option")
    add_count(what, "--split-seed", help="seed of the train/validation split (0)")
    what.add_argument("--val-fraction", type=float, metavar="F", help="validation fraction (0.2)")
    what.add_argument("--model", help="model (default: the problem's default)")
    what.add_argument("--model-option", action="append", metavar="K=V", help="model option")
    what.add_argument("--loss", help="loss (default: the problem's default)")
    what.add_argument("--loss-option", action="append", metavar="K=V", help="loss option")
    how = p.add_argument_group("how")
    how.add_argument("--optimizer", help="optimizer name: sgd, momentum, adam... (default adam)")
    how.add_argument("--lr", type=float, help="learning rate")
    how.add_argument("--weight-decay", type=float, help="the optimizer's weight decay")
    how.add_argument("--momentum", type=float, help="the optimizer's momentum")
    how.add_argument("--hyper", action="append", metavar="K=V", help="other hyperparameter")
    how.add_argument(
        "--schedule",
        action="append",
        metavar="[KEY=]SPEC",
        help="schedule of a hyperparameter (lr if no KEY), e.g. 'cosine', "
        "'step(step_size=1000, gamma=0.5)', 'momentum=linear(0.5, 0.99, 500, base=1.0)', "
        "'reduce_on_plateau(patience=3)'",
    )
    how.add_argument(
        "--batch-size",
        type=number_or_word(int, ("full", "none"), "batch size must be an integer or 'full'"),
        metavar="N|full",
        help="examples per step: N (mini-batch), 1 (SGD) or 'full' (GD, the default)",
    )
    add_switch(how, "--drop-last", default=None, help="drop short batches")
    length = how.add_mutually_exclusive_group()
    add_count(length, "--steps", help="optimizer steps")
    add_count(length, "--epochs", help="passes over the training data")
    add_count(how, "--seed", help="seed (default 0)")
    how.add_argument("--device", help="torch device: cpu (default), cuda or cuda:N")
    add_count(
        how,
        "--nproc",
        help="train in N processes of this machine, the model sharded with FSDP2 (gloo on "
        "the CPU, one GPU each with --device cuda); the numbers are one process's up to "
        "float rounding (docs/distributed.md)",
    )
    add_rank_timeout(how)
    add_engine_options(how)


def _add_regularizers(p: argparse.ArgumentParser) -> None:
    reg = p.add_argument_group("regularizers")
    reg.add_argument(
        "--label-smoothing", type=float, metavar="EPS", help="label smoothing of the training loss"
    )
    reg.add_argument("--mixup", type=float, metavar="ALPHA", help="mixup Beta(alpha, alpha)")
    reg.add_argument("--cutmix", type=float, metavar="ALPHA", help="cutmix Beta(alpha, alpha)")
    reg.add_argument("--input-noise", type=float, metavar="STD", help="Gaussian input noise")
    reg.add_argument("--weight-noise", type=float, metavar="STD", help="Gaussian weight noise")
    add_switch(
        reg, "--augment", default=None, help="random shifts/scalings (1-D) or translations (images)"
    )
    reg.add_argument(
        "--early-stopping",
        type=int,
        metavar="PATIENCE",
        help="stop after PATIENCE evaluations without improvement",
    )
    reg.add_argument(
        "--min-delta", type=float, metavar="D", help="early stopping's minimum improvement (0)"
    )
    reg.add_argument(
        "--monitor", metavar="METRIC", help="early stopping's metric: val/loss or val/accuracy"
    )
    add_switch(reg, "--no-restore-best", default=None, help="keep the last weights")


def _add_observation(p: argparse.ArgumentParser) -> None:
    obs = p.add_argument_group("observation and storage")
    add_count(obs, "--eval-every", help="evaluate every N steps (default: 25 times)")
    add_count(obs, "--checkpoint-every", help="checkpoint every N steps (and at the end)")
    add_switch(obs, "--no-test", default=None, help="skip the test split")
    obs.add_argument("--name", help="run name in the store")
    obs.add_argument(
        "--runs-dir", default="runs", help="folder of the store and checkpoints (default runs)"
    )
    obs.add_argument("--db", metavar="PATH", help="the store (RUNS_DIR/descentlab.sqlite)")
    obs.add_argument("--resume", type=int, metavar="RUN_ID", help="continue a stored run")
    add_switch(
        obs,
        "--restart",
        help="with --resume: start the run over from step 0 if its checkpoint is corrupted "
        "or missing (otherwise that is an error)",
    )
    add_count(obs, "--until-step", help="pause after N steps")
    add_switch(obs, "--no-progress", help="no progress bar")
    add_count(obs, "--threads", help="torch threads (1 is fastest for small models)")
    add_switch(obs, "--json", help="print the summary as JSON")


def _config(args: argparse.Namespace) -> Any:
    """The run's config the arguments give (:func:`run` checks it with
    :meth:`~descentlab.engine.config.RunConfig.checked`)."""
    from descentlab.engine.config import RunConfig

    hyper = parse_pairs(args.hyper, "--hyper")
    for key in ("lr", "weight_decay", "momentum"):
        if getattr(args, key) is not None:
            flag = "--" + key.replace("_", "-")
            if key in hyper:
                raise ValueError(
                    f"{flag} {getattr(args, key)} and --hyper {key}={hyper[key]!r} both set "
                    f"{key}; give one"
                )
            hyper[key] = getattr(args, key)
    schedule: dict[str, Any] = {}
    for item in args.schedule or []:
        key, spec = parse_schedule_arg(item)
        if key in schedule:
            raise ValueError(f"--schedule gives {key!r} twice")
        schedule[key] = spec
    early = None
    if args.early_stopping is not None:
        early = {"patience": args.early_stopping}
        if args.min_delta is not None:
            early["min_delta"] = args.min_delta
        if args.monitor is not None:
            early["monitor"] = args.monitor
        if args.no_restore_best:
            early["restore_best"] = False
    elif any(v is not None for v in (args.min_delta, args.monitor, args.no_restore_best)):
        raise ValueError("--min-delta, --monitor and --no-restore-best need --early-stopping")
    fields: dict[str, Any] = {
        "problem": args.problem,
        "problem_options": parse_pairs(args.problem_option, "--problem-option"),
        "split_seed": args.split_seed,
        "val_fraction": args.val_fraction,
        "model": args.model,
        "model_options": parse_pairs(args.model_option, "--model-option"),
        "loss": args.loss,
        "loss_options": parse_pairs(args.loss_option, "--loss-option"),
        "label_smoothing": args.label_smoothing,
        "optimizer": args.optimizer,
        "hyper": hyper,
        "schedule": schedule,
        "batch_size": args.batch_size,
        "drop_last": args.drop_last,
        "steps": args.steps,
        "epochs": args.epochs,
        "eval_every": args.eval_every,
        "checkpoint_every": args.checkpoint_every,
        "early_stopping": early,
        "mixup_alpha": args.mixup,
        "cutmix_alpha": args.cutmix,
        "input_noise": args.input_noise,
        "weight_noise": args.weight_noise,
        "precision": args.precision or "auto",  # the command line's default
        "accumulate": args.accumulate,
        "clip_grad_norm": args.clip_grad_norm,
        "augment": args.augment,
        "seed": args.seed,
        "device": args.device,
        "evaluate_test": False if args.no_test else None,
        "name": args.name,
    }
    if args.steps is None and args.epochs is None:
        raise ValueError("give the run's length with --steps N or --epochs N")
    # Unset flags keep RunConfig's defaults; batch size 'full' is full-batch GD (None).
    given = {k: v for k, v in fields.items() if v is not None and v != {}}
    if given.get("batch_size") == "full":
        given["batch_size"] = None
    return RunConfig(**given)


def format_summary(summary: dict[str, Any]) -> str:
    """A small table of a run's final metrics: one row per split, one column per metric.

    Example:
        >>> print(format_summary({"train/loss": 0.1, "val/loss": 0.25, "val/accuracy": 0.9,
        ...                       "steps": 10, "wall_time": 1.5}))
        split       loss  accuracy
        train     0.1000         -
        val       0.2500    0.9000
    """
    splits = [s for s in ("train", "val", "test") if any(k.startswith(f"{s}/") for k in summary)]
    names: list[str] = []
    for key in summary:
        split, _, name = key.partition("/")
        if split in splits and name not in names:
            names.append(name)
    widths = [max(10, len(n) + 2) for n in names]  # "perplexity" needs a space before it
    lines = [f"{'split':<6}" + "".join(f"{n:>{w}}" for n, w in zip(names, widths, strict=True))]
    for split in splits:
        cells = []
        for name, w in zip(names, widths, strict=True):
            value = summary.get(f"{split}/{name}")
            cells.append(f"{'-':>{w}}" if value is None else f"{value:>{w}.4f}")
        lines.append(f"{split:<6}" + "".join(cells))
    return "\n".join(lines)


def problem_data(config: Any) -> tuple[Any, Any]:
    """``(config, None)`` for a dataset loaded by name; for a problem function
    (``path/file.py:make_problem``, ``pkg.mod:fn``) its data split as ``config`` (a
    :class:`~descentlab.engine.config.RunConfig`) says and the config with the problem named
    with the data's fingerprint (``ref#1a2b3c4d``, as ``compare`` records it). A run recorded
    with a fingerprint is refused in one line when the function now gives other data."""
    from descentlab.problems.problem import is_problem_ref, resolve_for_compare

    if not is_problem_ref(config.problem):
        return config, None
    ref, _, recorded = config.problem.partition("#")
    resolved, splits = resolve_for_compare(config.replace(problem=ref), None)
    if recorded and resolved.problem != config.problem:
        raise ValueError(
            f"problem {ref!r} now gives other data (fingerprint "
            f"{resolved.problem.partition('#')[2]}, recorded {recorded}): the run cannot "
            "continue on them"
        )
    return resolved, splits


class _StoreOnFirstUse:
    """A :class:`~descentlab.store.Store` opened (its file created) at the first use of any of
    its attributes; the engine first uses it after the run is built and checked."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._store: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._store is None:
            from descentlab.store import Store

            self._store = Store(self._path)
        return getattr(self._store, name)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def run(args: argparse.Namespace) -> int:
    """Run ``descentlab train``; returns the exit code (0 completed or paused by
    ``--until-step``, 3 diverged, 130 interrupted). Every argument is checked first, in one
    pass (the run's config one checked :class:`~descentlab.engine.config.RunConfig`), before
    anything is loaded or written."""
    from descentlab.engine.launch import sharded_processes
    from descentlab.engine.ranks import check_rank_timeout
    from descentlab.store import DEFAULT_DB_NAME

    runs_dir = Path(args.runs_dir)
    db = Path(args.db) if args.db else runs_dir / DEFAULT_DB_NAME
    if args.db:
        check_store_path(db, "--db")
    else:
        check_out_dir(runs_dir, "--runs-dir")
        check_store_path(db, "--runs-dir")
    if args.restart and args.resume is None:
        raise ValueError("--restart goes with --resume RUN_ID")
    clash = [
        "--" + k.replace("_", "-")
        for k, v in vars(args).items()
        if k not in _SESSION_OPTIONS and v not in (None, [], False)
    ]
    if args.resume is not None and clash:
        raise ValueError(
            f"--resume continues run {args.resume} with its recorded config; "
            f"do not also pass {', '.join(clash)}"
        )
    if args.threads is not None:
        check_workers_and_threads(None, check("--threads", args.threads, POSITIVE_INT))
    timeout = None if args.rank_timeout is None else check_rank_timeout(args.rank_timeout)
    sharded = sharded_processes(args.nproc, args.device or "cpu", db, args.resume)
    config = None if args.resume is not None else _config(args)
    if timeout is not None and sharded is None:
        raise ValueError("--rank-timeout goes with --nproc N (N > 1)")
    if config is not None:
        config = config.checked()  # every field's type and range, before anything is loaded
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    result = _trained(args, config, db, sharded, timeout)
    return _reported(args, result)


def _trained(
    args: argparse.Namespace, config: Any, db: Path, sharded: int | None, timeout: float | None
) -> Any:
    """The run trained (in ``sharded`` processes, or in this one), or continued: its
    :class:`~descentlab.engine.outcome.RunResult`."""
    from descentlab.engine.config import RunConfig
    from descentlab.engine.launch import train_sharded
    from descentlab.engine.run import resume, train
    from descentlab.store import Store

    progress = False if args.no_progress else None
    verb = "resuming" if args.resume is not None else "training"

    def announce(run_id: int | None) -> None:
        # (with --json, standard output holds the JSON only)
        print(f"{verb} run {run_id} (store {db})", flush=True,
              file=sys.stderr if args.json else sys.stdout)  # fmt: skip

    if sharded is not None:
        return train_sharded(
            config, sharded, db, resume_id=args.resume, restart=args.restart,
            until_step=args.until_step, progress=progress, threads=args.threads,
            announce=f"{verb} run {{run_id}} in {sharded} processes (store {db})",
            rank_timeout=timeout,
        )  # fmt: skip
    if args.resume is not None and not db.is_file():
        raise FileNotFoundError(f"no store at {db} (use --runs-dir or --db)")
    # The store (and its folder) of a new run is created only once the run is built and
    # checked: a run refused for a bad name or value leaves nothing on disk.
    store = Store(db) if config is None else _StoreOnFirstUse(db)
    try:
        if config is None:
            record = store.get_run(args.resume).config
            # a record that is no mapping is refused by resume() in one line
            config = RunConfig.from_dict(record) if isinstance(record, dict) else None
        resolved, data = (None, None) if config is None else problem_data(config)
        if args.resume is not None:
            return resume(args.resume, store, data=data, until_step=args.until_step,
                          progress=progress, on_start=announce, restart=args.restart)  # fmt: skip
        return train(resolved, store, data=data, until_step=args.until_step,
                     progress=progress, on_start=announce)  # fmt: skip
    finally:
        store.close()


def _reported(args: argparse.Namespace, result: Any) -> int:
    """``result`` printed (a table and a line, or ``--json``); the command's exit code."""
    # A pause asked for with --until-step is this command's success (exit 0), not a Ctrl-C
    until = args.until_step
    paused = result.status == "interrupted" and until is not None and result.steps >= until
    status = "paused" if paused else result.status
    signum = None if paused else _stopped_by(result)
    if not args.json:
        table = format_summary(result.summary)
        if table.count("\n"):
            print(table)
        line = (
            f"run {result.run_id}: {status} after {result.steps} steps "
            f"({result.epochs:.3g} epochs, {result.wall_time:.1f} s)"
        )
        if paused:
            line += f" -- continue it with: descentlab train --resume {result.run_id}"
        elif signum is not None:
            line = (
                f"run {result.run_id}: stopped at step {result.steps} by "
                f"{signal.Signals(signum).name}; `descentlab train --resume {result.run_id}` "
                "continues it"
            )
        elif result.message:
            line += f" -- {result.message}"
        print(line)
    else:
        from descentlab.engine.precision import choose

        chose = choose(result.config.precision, result.config.device,
                       sum(p.numel() for p in result.model.parameters()))  # fmt: skip
        print_json({"run_id": result.run_id, "status": status, "precision": chose,
                    **result.summary})  # fmt: skip
    if paused:
        return 0
    if signum is not None:
        return 128 + signum  # as a shell reports a process ended by the signal: 130, 143
    return {"completed": 0, "diverged": 3, "interrupted": 130}.get(result.status, 1)


def _stopped_by(result: Any) -> int | None:
    """The signal (SIGINT, SIGTERM) that stopped ``result``'s run, or None."""
    found = re.match(r"stopped by (SIG[A-Z]+) at step", result.message or "")
    if result.status != "interrupted" or found is None:
        return None
    return int(getattr(signal, found.group(1), signal.SIGINT))
