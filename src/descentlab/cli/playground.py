"""``descentlab playground``: the interactive playground in the browser.

Start the playground: a local web app on 127.0.0.1 and a free port. Pick a landscape, click
starting points, move the sliders; paths and losses come from descentlab on this machine.
Ctrl-C stops it, and the process ends right after it says "stopped": run as the program
(``descentlab playground``), it leaves with :func:`os._exit` once its output is flushed,
instead of the interpreter's teardown, which spends seconds collecting the objects of torch
and its compilers (3.4 s of garbage collection measured under load) and would wait for a
computation that was under way.
"""

from __future__ import annotations

import argparse
import logging
import sys

from descentlab.cli._options import add_command, add_switch

_HELP = "interactive optimizer playground in the browser (local web app)"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``playground`` subcommand."""
    p = add_command(subparsers, "playground", run, _HELP)
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; another address makes the playground "
        "reachable from other machines, with a warning)",
    )
    add_switch(p, "--no-browser", help="do not open a browser")


def run(args: argparse.Namespace) -> int:
    if not args.host.strip():
        # an empty host binds every interface (and the URL printed would be http://:PORT/)
        raise ValueError(
            f"--host must be an address to bind, e.g. 127.0.0.1 (the default), got {args.host!r}"
        )
    try:
        from descentlab.playground import app
    except ImportError as exc:
        print(
            f"descentlab: error: the playground needs its optional dependencies ({exc.name} "
            "is missing): pip install 'descentlab[playground]'",
            file=sys.stderr,
        )
        return 2
    app.serve(args.host, args.port, open_browser=not args.no_browser)
    from descentlab._usercode import real_exit
    from descentlab.cli import own_process

    if own_process():  # not when main([...]) is called in a program
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        real_exit(0)  # (not os._exit: user code's calls to it are guarded, _usercode)
    return 0
