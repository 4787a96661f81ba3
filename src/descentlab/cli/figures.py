"""``descentlab figures``: write the lectures' figures.

Write the lectures' figures as PNG (and the momentum lecture's races as GIF).

Examples::

    descentlab figures seeds --out figures/            # every lecture figure (PNG + GIF)
    descentlab figures seeds --out figures/ --only seed001_parabola_lr,basins_himmelblau
    descentlab figures list                            # the figure names
"""

from __future__ import annotations

import argparse

from descentlab.cli._options import add_command, add_switch, check_out_dir, parse_names, shown

__all__ = ["handler", "register"]

_HELP = "write the lectures' figures (descent paths, optimizer races, sweeps)"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``figures`` subcommand."""
    p = add_command(subparsers, "figures", handler, _HELP)
    p.add_argument(
        "which",
        choices=["seeds", "list"],
        help="'seeds': write every lecture figure; 'list': print the figure names",
    )
    p.add_argument("--out", default="figures", help="output folder (default: figures)")
    p.add_argument("--only", help="comma-separated figure names (default: all)")
    add_switch(p, "--no-animations", help="skip the GIF animations")
    add_switch(p, "--quick", help="draft quality: fewer steps, runs and pixels")


def handler(args: argparse.Namespace) -> int:
    """Run the subcommand; ValueError/KeyError become exit code 2 in the dispatcher."""
    from descentlab.book.render import seed_figures as LF

    if args.which == "list":
        for name in LF.NAMES:
            suffix = " (+ .gif)" if name in LF.ANIMATIONS else ""
            print(f"{name}.png{suffix}")
        return 0
    only = parse_names(args.only, "--only", "figure") if args.only is not None else None
    check_out_dir(args.out, "--out")
    written = LF.write_seed_figures(
        args.out, animations=not args.no_animations, only=only, quick=args.quick
    )
    for path in written:
        print(f"wrote {shown(path)}")
    return 0
