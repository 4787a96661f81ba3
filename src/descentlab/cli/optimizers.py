"""``descentlab optimizers``: list the registered optimizers, or show one's card.

Without a name, one line per optimizer: its name, what it is and its year. With a name, its
card, read from what the optimizer runs: the chain of rules, each hyperparameter's value and
what it must be (the declaration that makes the error messages), the state each rule keeps and
the update of each rule written in the form, statement by statement in the order every
backend runs it, with the Python that computes each coefficient and its value at step 1.
``--set KEY=VALUE`` (repeatable; the value read as the other commands read it) shows it at
other options: a flag such as ``amsgrad`` changes the update.

Examples::

    descentlab optimizers
    descentlab optimizers adam
    descentlab optimizers adam --set amsgrad=True --set weight_decay=0.1
    descentlab optimizers rmsprop --set centered=True
"""

from __future__ import annotations

import argparse

from descentlab import optim
from descentlab.cli._options import add_command, parse_pairs

__all__ = ["handler", "register"]

_HELP = "list the optimizers, or show one's chain, hyperparameters and update"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``optimizers`` subcommand."""
    p = add_command(subparsers, "optimizers", handler, _HELP)
    p.add_argument("name", nargs="?", help="an optimizer's name: show its card")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a keyword argument of the optimizer (repeatable), e.g. amsgrad=True",
    )


def handler(args: argparse.Namespace) -> int:
    settings = parse_pairs(args.set, "--set")
    if args.name is None:
        if settings:
            raise ValueError("--set needs an optimizer's name")
        width = max(len(r.name) for r in optim.records())
        for r in optim.records():
            print(f"{r.name:<{width}}  {r.display} ({r.year}), {r.family}")
        return 0
    from descentlab.report.optimizer_card import card

    print(card(args.name, settings))
    return 0
