"""``descentlab report RUN_DIR``: re-render a comparison's HTML report from its store.

Re-render RUN_DIR/report.html from the store of a ``descentlab compare`` run directory (also for
a comparison that was stopped: finished parts are shown).

Example::

    descentlab report runs/mnist1d-default-1a2b3c4d
    descentlab report runs/mnist1d-default-1a2b3c4d --output /tmp/report.html

The report is one self-contained file (figures embedded, no external resources); it also picks
up any lecture experiment outputs written into the run directory since the last rendering.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from descentlab.cli._options import add_command, add_switch, check_out_dir, shown

__all__ = ["register", "run"]

_HELP = "re-render a comparison's HTML report from its store"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    p = add_command(subparsers, "report", run, _HELP)
    p.add_argument("run_dir", metavar="RUN_DIR", help="the comparison's run directory")
    p.add_argument("--output", metavar="PATH", help="write here instead of RUN_DIR/report.html")
    add_switch(p, "--table", help="also print the results table")
    add_switch(
        p,
        "--force",
        help="with --output outside RUN_DIR: replace trials.csv and comparison.json there",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``descentlab report``: rebuild the comparison from its store (experiments), then
    render it (report); returns the exit code."""
    from descentlab.experiments.compare import load_comparison
    from descentlab.report.html import render_report  # matplotlib: off the fast path

    _check_outputs(args)  # every refusal before the first file is written
    comparison = load_comparison(args.run_dir)
    path = render_report(comparison, path=args.output)
    if args.table:
        print(comparison.table())
    if not comparison.complete:
        print("note: this comparison is incomplete; run its `descentlab compare` command again")
    print(f"report: {shown(path)}")
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before anything is written: an --output that is a folder or a link, and
    beside an --output outside RUN_DIR, a trials.csv or comparison.json of the user's
    (replaced only with --force); these files are written next to the report."""
    from descentlab._files import check_target
    from descentlab.report.compare_export import EXPORT_FILES

    if args.output is None:
        return
    out = Path(args.output)
    if out.is_dir():
        raise ValueError(f"--output must be a file, got the folder {args.output}")
    check_target(out)
    check_out_dir(out.parent, "--output")  # (a read-only run folder: one line, nothing drawn)
    folder = out.parent
    ours = folder.resolve() == Path(args.run_dir).resolve()
    for name in EXPORT_FILES:
        side = folder / name
        check_target(side)
        if side.exists() and not ours and not args.force:
            raise ValueError(
                f"--output {args.output}: the report writes {name} beside it, and {side} "
                "exists; choose another folder or pass --force to replace it"
            )
