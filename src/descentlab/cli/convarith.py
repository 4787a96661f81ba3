"""``descentlab convarith``: the CNN lecture's convolution arithmetic from the command line.

Output shapes and parameter counts of the networks of the regularization and CNN lecture
(AlexNet, the 1x1 bottleneck, GoogLeNet's inception block).

Examples::

    descentlab convarith alexnet                  # the lecture's table (35k ... 177M, 16M, 4M)
    descentlab convarith alexnet --one-gpu --bias --figure alexnet.png
    descentlab convarith bottleneck --in 256 --out 256 --reduce 64
    descentlab convarith inception                # GoogLeNet's inception (3a), with/without 1x1
"""

from __future__ import annotations

import argparse
from typing import Any

from descentlab.cli._options import add_command, add_switch

__all__ = ["handler", "register"]

_HELP = "convolution arithmetic: AlexNet's parameters, 1x1 bottleneck, inception block"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``convarith`` subcommand."""
    p = add_command(subparsers, "convarith", handler, _HELP)
    p.add_argument("which", choices=["alexnet", "bottleneck", "inception"])
    add_switch(p, "--one-gpu", help="alexnet: no two-GPU grouping")
    add_switch(p, "--bias", help="count biases")
    add_switch(p, "--pool-before-fc", help="alexnet: fc6 reads the pooled 6x6 map")
    p.add_argument("--in", dest="in_ch", type=int, default=128, help="bottleneck: in channels")
    p.add_argument("--out", dest="out_ch", type=int, default=128, help="bottleneck: out channels")
    p.add_argument("--reduce", type=int, default=32, help="bottleneck: channels after the 1x1")
    p.add_argument("--kernel", type=int, default=3, help="bottleneck: the main kernel size")
    p.add_argument("--figure", help="also write a figure of the parameters per layer (PNG)")


def _print_table(columns: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


def handler(args: argparse.Namespace) -> int:
    """Print the table (and write the figure)."""
    if args.figure is not None and not args.figure.strip():  # '' names no file: refused
        raise ValueError(f"--figure must be a PNG file's path, got {args.figure!r}")
    from descentlab.book import convolution as bc  # the lecture's tables: only when asked

    show = {"alexnet": _alexnet, "bottleneck": _bottleneck, "inception": _inception}
    fig = show[args.which](bc, args)
    if args.figure:
        if fig is None:
            raise ValueError(f"--figure is not available for {args.which!r}")
        from descentlab.report.figures import save  # matplotlib: only when drawing

        print(f"wrote {save(fig, args.figure)}")
    return 0


def _alexnet(bc: Any, args: argparse.Namespace) -> Any:
    """AlexNet's table; its figure of the weights per layer when ``--figure``."""
    rows = bc.alexnet_table(
        two_gpu=not args.one_gpu, bias=args.bias, pool_before_fc=args.pool_before_fc
    )
    total = sum(r["weights"] for r in rows)
    _print_table(
        ["layer", "in", "out", "weights", "formula", "lecture"],
        [
            [
                r["layer"],
                "x".join(map(str, r["in_shape"])),
                "x".join(map(str, r["out_shape"])),
                f"{r['weights']:,}",
                r["formula"],
                r["lecture"] or "-",
            ]
            for r in rows
        ],
    )
    fc = sum(r["weights"] for r in rows if r["kind"] == "fc")
    print(f"total {total:,} weights; fully connected layers {100 * fc / total:.1f} %")
    if not args.figure:
        return None
    from descentlab.book.render.claim_panels import panel_figure, params_panel

    keys = ("layer", "kind", "weights")
    layers = [{**{k: r[k] for k in keys}, "lecture": r["lecture"] or "-"} for r in rows]
    return panel_figure(params_panel, {"arith": {"alexnet": layers}}, width=9.0, height=5.0)


def _bottleneck(bc: Any, args: argparse.Namespace) -> None:
    """What a 1x1 reduction saves before a k x k convolution."""
    b = bc.bottleneck_savings(args.in_ch, args.out_ch, args.kernel, args.reduce, args.bias)
    k = args.kernel
    print(f"direct {k}x{k} conv {args.in_ch} -> {args.out_ch}: {b['direct']:,} weights")
    print(
        f"1x1 {args.in_ch} -> {args.reduce}: {b['reduce']:,}; {k}x{k} {args.reduce} -> "
        f"{args.out_ch}: {b['conv']:,}; together {b['bottleneck']:,}"
    )
    print(f"saved {b['saved']:,} weights ({b['ratio']:.2f}x fewer)")


def _inception(bc: Any, args: argparse.Namespace) -> Any:
    """The inception block with and without its 1x1 reductions; its figure when
    ``--figure``."""
    with_ = bc.inception_table(True, bias=args.bias)
    without = bc.inception_table(False, bias=args.bias)
    for title, rows in (
        ("GoogLeNet inception (3a), 28x28x192 in:", with_),
        ("without the 1x1 reductions:", without),
    ):
        print(title)
        _print_table(
            ["branch", "layer", "in", "out", "kernel", "weights"],
            [
                [
                    r["branch"],
                    r["layer"],
                    str(r["in_ch"]),
                    str(r["out_ch"]),
                    str(r["kernel"] or "-"),
                    f"{r['weights']:,}",
                ]
                for r in rows
            ],
        )
        print()
    if not args.figure:
        return None
    from descentlab.book.render.claim_panels import inception_panel, panel_figure

    def plain(rows: list[dict]) -> list[dict]:
        return [{k: (list(v) if isinstance(v, tuple) else v) for k, v in r.items()} for r in rows]

    data = {
        "arith": {
            "inception": plain(with_),
            "naive": plain(without),
            "bottleneck": bc.bottleneck_savings(),
        }
    }
    return panel_figure(inception_panel, data, width=9.0, height=5.0)
