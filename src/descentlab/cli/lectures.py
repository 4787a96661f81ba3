"""``descentlab lectures``: the lecture book, every claim of the five lectures shown.

Write one self-contained HTML page per lecture (titled by its subject) and an index: each item
of the lecture with the figure, table or experiment that shows it and checks computed from the
numbers.

The lectures are the optimization lecture (000), the derivatives lecture (001), the
regularization and CNN lecture (002), the momentum lecture (003) and the PyTorch losses lecture
(004); ``--only`` takes their page names or these numbers.

Examples::

    descentlab lectures --out book/ --quick       # minutes: the experiments' quick presets
    descentlab lectures --out book/               # the full book
    descentlab lectures --out book/ --only momentum-and-adaptive-rates   # one lecture
    descentlab lectures --coverage                # the items and where each is shown
"""

from __future__ import annotations

import argparse
import sys
import time

from descentlab.cli._options import add_command, add_switch

__all__ = ["handler", "register"]

_HELP = "write the lecture book: one HTML page per lecture, every claim checked"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``lectures`` subcommand."""
    p = add_command(subparsers, "lectures", handler, _HELP)
    p.add_argument("--out", default="runs/lectures", help="output folder (default runs/lectures)")
    add_switch(p, "--quick", help="the experiments' quick presets")
    p.add_argument(
        "--only",
        help="comma-separated lectures: page names (e.g. momentum-and-adaptive-rates) or "
        "numbers 000-004",
    )
    p.add_argument(
        "--items",
        help="comma-separated item numbers of seed_items.md: build only those cards",
    )
    add_switch(p, "--coverage", help="print the items and where each is shown")


def handler(args: argparse.Namespace) -> int:
    """Build the book (or print the coverage table)."""
    from descentlab.book import build  # matplotlib: only when run

    if args.coverage:
        print(build.coverage_markdown(), end="")
        return 0
    only = None
    if args.only is not None:  # --only '' names nothing: refused, not the whole book
        only = [o.strip() for o in args.only.split(",") if o.strip()]
        if not only:
            raise ValueError(f"--only must name at least one lecture, got {args.only!r}")
    items = None
    if args.items is not None:  # --items '' names nothing: refused, not the whole book
        try:
            items = [int(i) for i in args.items.split(",") if i.strip()]
        except ValueError:
            raise ValueError(
                f"--items must be comma-separated numbers, got {args.items!r}"
            ) from None
        if not items:
            raise ValueError(f"--items must name at least one item, got {args.items!r}")
    t0 = time.perf_counter()
    paths = build.write_book(
        args.out, quick=args.quick, only=only, items=items, log=lambda m: print(m, file=sys.stderr)
    )
    print(
        f"wrote {paths[0]} and {len(paths) - 1} lecture page(s) in {time.perf_counter() - t0:.0f} s"
    )
    return 0
