"""``descentlab experiment``: run one of the lectures' experiments and write its outputs.

Run one of the lectures' experiments and write its figure (PNG), table (JSON and Markdown) and
checks into an output folder.

Examples::

    descentlab experiment list                         # the experiments and their options
    descentlab experiment sharpness                    # full setting -> runs/experiments/
    descentlab experiment bias_variance --quick --out /tmp/bv
    descentlab experiment schedules --set steps=2000 --set "schedules=[\\"cosine\\", \\"step\\"]"
    descentlab experiment regularization --seed 3 --force
    descentlab experiment schedules --backend ray        # the training runs as Ray tasks

Each experiment writes ``<name>.png`` (its figure), ``<name>.json`` (table, checks, notes,
curves, settings, provenance) and ``<name>.md`` (a Markdown section for the report) into
``--out`` (default ``runs/experiments``), prints the table and the lecture's checks, and exits
with 0. An existing result is not overwritten without ``--force``. With ``--store``, the
experiments that train through the engine (``regularization``, ``schedules``) also record
their runs (metrics, provenance, final checkpoints) in ``<out>/descentlab.sqlite``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from descentlab._files import make_dirs
from descentlab.cli._options import (
    add_backend_arguments,
    add_command,
    add_count,
    add_switch,
    check_backend_arguments,
    check_out_dir,
    check_workers_and_threads,
    parse_pairs,
    print_json,
    shown,
)
from descentlab.constraints import NONNEGATIVE_INT, POSITIVE_INT, check

__all__ = ["handler", "parse_options", "register"]


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """``["steps=2000", "eps=[0.001]"]`` -> ``{"steps": 2000, "eps": [0.001]}``.

    Raises:
        ValueError: an item without ``=``.

    Example:
        >>> parse_options(["lr=0.1", "optimizer=adam", "sizes=[1, 2]"])
        {'lr': 0.1, 'optimizer': 'adam', 'sizes': [1, 2]}
    """
    return parse_pairs(items, "--set")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``experiment`` subcommand."""
    from descentlab.book.experiments import DESCRIPTIONS, NAMES

    lines = "\n".join(f"  {n:<16} {DESCRIPTIONS[n]}" for n in NAMES)
    p = add_command(
        subparsers,
        "experiment",
        handler,
        help="run one of the lectures' experiments (figures + table)",
        epilog="experiments:\n" + lines,
    )
    p.add_argument("name", choices=[*NAMES, "list"], metavar="NAME",
                   help="an experiment (listed below) or 'list'")  # fmt: skip
    p.add_argument("--out", default="runs/experiments",
                   help="output folder (default runs/experiments)")  # fmt: skip
    add_switch(p, "--quick", help="the small setting (seconds; what the tests run)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", dest="options",
                   help="an experiment option (JSON value), repeatable; see 'list'")  # fmt: skip
    add_switch(p, "--force", help="overwrite an earlier result in --out")
    add_switch(p, "--store", help="also record the training runs (regularization, schedules) in "
               "<out>/descentlab.sqlite, with their checkpoints")  # fmt: skip
    add_count(p, "--threads", default=1,
              help="torch threads (default 1: fastest for these small models)")  # fmt: skip
    add_switch(p, "--json", help="print the table as JSON")
    add_backend_arguments(p, "training runs (regularization, schedules)")


def _list() -> int:
    from descentlab.book import experiments as lectures

    for name in lectures.NAMES:
        print(f"{name}: {lectures.DESCRIPTIONS[name]}")
        full, quick = lectures.options(name), lectures.options(name, quick=True)
        for key, value in full.items():
            q = f"  (--quick: {quick[key]!r})" if quick[key] != value else ""
            print(f"    {key} = {json.dumps(value)}{q}")
    return 0


def handler(args: argparse.Namespace) -> int:
    """Run the subcommand; ValueError/KeyError/FileNotFoundError become exit code 2."""
    if args.name == "list":
        return _list()
    import inspect

    import torch

    from descentlab.book import experiments as lectures
    from descentlab.book.render import experiment_figures

    check_workers_and_threads(None, check("--threads", args.threads, POSITIVE_INT))
    torch.set_num_threads(args.threads)
    check("--seed", args.seed, NONNEGATIVE_INT)
    options = parse_options(args.options)
    out = check_out_dir(args.out, "--out")
    fn = lectures.get(args.name)
    # Every check before any work: unknown options, an earlier result in the way.
    params = inspect.signature(fn).parameters
    valid = [k for k in params if k not in ("quick", "seed", "store", "backend", "address")]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for experiment {args.name!r}; valid options: "
            f"{', '.join(valid)}"
        )
    if args.store and "store" not in params:
        raise ValueError(f"--store: experiment {args.name!r} does not train through the engine")
    if check_backend_arguments(args) != "local":
        if "backend" not in params:
            raise ValueError(
                f"--backend {args.backend}: experiment {args.name!r} does not train through "
                "the engine; it runs here"
            )
        options.update(backend=args.backend, address=args.address)
    if (out / f"{args.name}.json").exists() and not args.force:
        raise ValueError(
            f"{out / f'{args.name}.json'} exists; choose another --out or pass --force"
        )
    if args.store and "store" in params:
        from descentlab.store import DEFAULT_DB_NAME, Store

        make_dirs(out)  # (noted: a command that fails for lack of space removes it)
        options["store"] = Store(out / DEFAULT_DB_NAME)
    mode = "quick" if args.quick else "full"
    print(f"experiment {args.name} ({mode} setting) -> {out}/", flush=True)
    start = time.perf_counter()
    try:
        result = lectures.run(args.name, quick=args.quick, seed=args.seed, **options)
        paths = experiment_figures.write(result, out)  # the report draws what it is given
    finally:
        store = options.get("store")
        if store is not None:
            store.close()
    elapsed = time.perf_counter() - start
    if args.json:
        print_json({"columns": result.columns, "rows": result.to_dict()["rows"],
                    "checks": result.checks}, indent=1)  # fmt: skip
    else:
        print()
        print(result.title)
        print(result.table_text())
        print()
        for text, ok in result.checks.items():
            mark = "ok" if ok else ("NO" if result.status(text) == "fail" else "not reproduced")
            print(f"  [{mark}] {text}")
        print()
    for path in paths:
        print(f"wrote {shown(path)}")
    print(f"done in {elapsed:.1f} s (the experiment itself: {result.seconds:.2f} s)")
    return 0
