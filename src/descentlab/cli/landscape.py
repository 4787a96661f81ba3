"""``descentlab landscape``: list the analytic landscapes, or race optimizers on one.

List the analytic landscapes (``--list``), or draw a race of optimizers on one of them:
paths over the contour map, loss curves, and a GIF animation.

Examples::

    descentlab landscape --list
    descentlab landscape --function rosenbrock --optimizers sgd,momentum,adam \\
        --lr 0.001,0.0005,0.05 --steps 300 --start=-1.2,1 --out figures/

(write ``--start=-1.2,1`` with ``=`` when the first coordinate is negative, so that the value
is not read as an option).

The race writes ``DIR/<function>_<optimizers>.png`` (paths on the contour map and the loss
curves) and, for 2-D landscapes, the same as an animated ``.gif``; it prints one line per
optimizer with its final loss or the step at which it diverged.

Limits: ``--steps`` at most :data:`MAX_STEPS` and ``--frames`` at most :data:`MAX_FRAMES`.
Every iterate is kept and drawn, so time and memory grow with the steps (docs/command-line.md
gives what a long race costs).
"""

from __future__ import annotations

import argparse
import math
from numbers import Integral
from pathlib import Path

from descentlab import optim
from descentlab.cli._options import add_command, add_switch, check_out_dir, parse_names, shown
from descentlab.constraints import POSITIVE, POSITIVE_INT, Interval, check, invalid
from descentlab.problems import described, landscapes, trajectories

__all__ = ["MAX_FRAMES", "MAX_STEPS", "handler", "parse_floats", "register"]

_HELP = "list analytic landscapes or race optimizers on one"

#: The most steps a race may take: every iterate of every optimizer is kept for the figures.
MAX_STEPS = 100_000
#: The most frames of the animation.
MAX_FRAMES = 1_000


def parse_floats(name: str, text: str) -> list[float]:
    """Parse ``"1,2.5,-3"``; ValueError naming the option and the text on bad input."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"{name} must be comma-separated numbers, got {text!r}") from None
    if not values or any(not math.isfinite(v) for v in values):
        raise ValueError(f"{name} must be finite numbers, got {text!r}")
    return values


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``landscape`` subcommand."""
    p = add_command(subparsers, "landscape", handler, _HELP)
    add_switch(p, "--list", help="list the landscapes and exit")
    p.add_argument("--function", help="landscape name (see --list)")
    p.add_argument(
        "--optimizers",
        default="sgd,momentum,nesterov,adagrad,adadelta,rmsprop,adam",
        help="comma-separated optimizer names (default: the momentum lecture's seven); valid: "
        + ", ".join(optim.NAMES),
    )
    p.add_argument(
        "--lr",
        help="learning rate: one value for all optimizers or one per optimizer "
        "(default: a rate tuned for each optimizer and landscape)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=150,
        help=f"number of steps, at most {MAX_STEPS:,} (default 150)",
    )
    p.add_argument(
        "--start",
        help="starting point, comma-separated; write --start=-1.2,1 when it begins with '-' "
        "(default: the landscape's demo start)",
    )
    p.add_argument("--out", default=".", help="output folder (default: current folder)")
    add_switch(p, "--no-gif", help="skip the animation")
    p.add_argument(
        "--frames", type=int, default=60, help=f"animation frames, 2 to {MAX_FRAMES} (default 60)"
    )


def handler(args: argparse.Namespace) -> int:
    """Run the subcommand; ValueError/KeyError become exit code 2 in the dispatcher."""
    if args.list:
        print(landscapes.listing(described.description_mismatches))
        return 0
    if not args.function:
        raise ValueError(
            "--function is required (or --list); valid names: " + ", ".join(landscapes.NAMES)
        )
    from descentlab.report import figures as F

    f = landscapes.get(args.function)
    names = [n.lower() for n in parse_names(args.optimizers, "--optimizers", "optimizer")]
    for n in names:
        optim.get(n)
    steps = check("steps", args.steps, POSITIVE_INT)
    if steps > MAX_STEPS:
        raise invalid(
            "steps", f"at most {MAX_STEPS} (every iterate is kept for the figures)", steps
        )
    lrs = None
    if args.lr is not None:
        lrs = [check("lr", v, POSITIVE) for v in parse_floats("lr", args.lr)]
        if len(lrs) not in (1, len(names)):
            raise ValueError(
                f"lr must give one value or one per optimizer ({len(names)}), got {len(lrs)}: "
                f"{args.lr}"
            )
    start = None
    if args.start is not None:
        start = parse_floats("start", args.start)
        if len(start) != f.dim:
            raise ValueError(
                f"start must have {f.dim} coordinate{'s' if f.dim > 1 else ''} for landscape "
                f"{f.name!r}, got {len(start)}: {args.start}"
            )
    check("frames", args.frames, Interval(Integral, 2, MAX_FRAMES))
    check_out_dir(args.out, "--out")
    races = trajectories.races(f, names, lr=lrs, steps=args.steps, start=start)
    out = Path(args.out)
    stem = f"{f.name}_{'-'.join(names)}"
    title = f"{', '.join(F.display_name(n) for n in names)} on {f.name}"
    fig = F.comparison_figure(f, races, title=title)
    written = [F.save(fig, out / f"{stem}.png")]
    if f.dim == 2 and not args.no_gif:
        written.append(F.animate_comparison(f, races, out / f"{stem}.gif", frames=args.frames))
    fstar = f.global_minimum.value if f.global_minimum is not None else None
    origin = tuple(round(v, 6) for v in races[0].traj.paths[0, 0].tolist())
    print(f"{f.name}: {f.plain}  ({args.steps} steps from {origin})")
    for r in races:
        tr = r.traj
        if tr.diverged[0]:
            status = f"diverged at step {int(tr.diverged_at[0])}"
        else:
            last = float(tr.losses[0, -1])
            status = f"final f = {last:.6g}" + (
                f"  (f - f* = {last - fstar:.3g})" if fstar is not None else ""
            )
        print(f"  {r.name:<10} lr={r.lr:<10g} {status}")
    for path in written:
        print(f"wrote {shown(path)}")
    return 0
