"""``descentlab report RUN_DIR``: re-render a comparison's HTML report from its store.

Example::

    descentlab report runs/mnist1d-default-1a2b3c4d
    descentlab report runs/mnist1d-default-1a2b3c4d --output /tmp/report.html

The report is one self-contained file (figures embedded, no external resources); it also picks
up any lecture experiment outputs written into the run directory since the last rendering.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from descentlab.cli._options import add_command

__all__ = ["register", "run"]


_HELP = "re-render a comparison's HTML report from its store"
_DESCRIPTION = (
    "Re-render RUN_DIR/report.html from the store of a `descentlab compare` run directory "
    "(also for a comparison that was stopped: finished parts are shown)."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    p = add_command(subparsers, "report", run, help=_HELP, description=_DESCRIPTION)
    p.add_argument("run_dir", metavar="RUN_DIR", help="the comparison's run directory")
    p.add_argument("--output", metavar="PATH", help="write here instead of RUN_DIR/report.html")
    p.add_argument("--table", action="store_true", help="also print the results table")


def run(args: argparse.Namespace) -> int:
    """Run ``descentlab report``: rebuild the comparison from its store (experiments), then
    render it (report); returns the exit code."""
    from descentlab.experiments.compare import load_comparison
    from descentlab.report.html import render_report  # matplotlib: off the fast path

    if args.output is not None and Path(args.output).is_dir():
        raise ValueError(f"--output must be a file, got the folder {args.output}")
    comparison = load_comparison(args.run_dir)
    path = render_report(comparison, path=args.output)
    if args.table:
        print(comparison.table())
    if not comparison.complete:
        print("note: this comparison is incomplete; run its `descentlab compare` command again")
    print(f"report: {path}")
    return 0
