"""``descentlab check-optimizer SPEC``: every check of an optimizer, one line each.

SPEC is one of descentlab's optimizers, ``path/to/file.py:Class`` or ``module:Class``. The
checks (``--checks``, default all): the fused step against the eager one, the chain against
its forms in float64, the Triton kernel under the interpreter (skipped without triton), a
state dict's round trip and resume, param groups, chunked against whole, two runs stacked
against each alone, float64 and bfloat16 parameters, the declared refusals, FSDP2 on 2 CPU
processes against one process, and ``--reference FILE.py:FUNCTION``, a float64 loop of your
own, ``FUNCTION(w0, grads, **hyper) -> w`` for one tensor. Every run steps gradients as
training has them (zero, and over six decades of scale), leaves ``p.grad`` as given and every
output finite, or its line fails. Each line gives the number measured and its tolerance
(``--set`` holds in every one); the exit code is 1 when a check fails, 2 when the optimizer
refuses a ``--set`` value.

Examples::

    descentlab check-optimizer adam
    descentlab check-optimizer examples/optimizers/adopt.py:ADOPT --set lr=0.01
    descentlab check-optimizer mine.py:Mine --reference mine.py:paper_loop --checks fused,loop
"""

from __future__ import annotations

import argparse
import os
import sys

from descentlab.cli._options import add_command, parse_names, parse_pairs

__all__ = ["handler", "register"]

_HELP = "check an optimizer of your own (or one of descentlab's): one line per check"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``check-optimizer`` subcommand."""
    p = add_command(subparsers, "check-optimizer", handler, _HELP)
    p.add_argument("spec", help="an optimizer: a name, path/to/file.py:Class or module:Class")
    p.add_argument("--checks", help="comma-separated, of: fused, reference, triton, resume, "
                   "groups, chunked, stacked, dtypes, refusals, sharded, loop "
                   "(default: all)")  # fmt: skip
    p.add_argument("--reference", metavar="FILE.py:FUNCTION",
                   help="your float64 loop: FUNCTION(w0, grads, **hyper) -> w")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a keyword argument of the optimizer (repeatable)")  # fmt: skip


def handler(args: argparse.Namespace) -> int:
    if "triton" not in sys.modules:  # the interpreter is chosen when triton loads
        os.environ.setdefault("TRITON_INTERPRET", "1")
    from descentlab.experiments import optimizer_check as checkup
    from descentlab.optim import specs

    checks = parse_names(args.checks, "--checks", "check") if args.checks else checkup.CHECKS
    loop = None
    if args.reference:
        loop = specs.target(args.reference)[0]
        if not callable(loop):
            raise ValueError(f"--reference {args.reference!r} is not a function")
    lines = checkup.check_optimizer(args.spec, checks, loop, **parse_pairs(args.set, "--set"))
    for line in lines:
        print(line, flush=True)
    return 1 if any(x.ok is False for x in lines) else 0
