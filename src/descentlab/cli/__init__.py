"""The ``descentlab`` command.

Every module in this package that defines ``register(subparsers)`` contributes one
subcommand; ``register`` adds its parser and sets ``func`` (called with the parsed
arguments, returning an exit code).

Errors caused by what the user gave -- bad names and values, paths that are files or cannot be
written, a corrupted or locked store, a trial that failed on a bad hyperparameter -- end the
command with exit code 2 and one line on stderr, ``descentlab: error: ...`` (set
``DESCENTLAB_DEBUG=1`` to see the traceback instead). :func:`user_error` is the one place that
decides which exceptions those are.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import pkgutil
import re
import select
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from descentlab._files import out_of_space, remove_created, track_created
from descentlab._osutil import loading_frozen
from descentlab._terminal import printable
from descentlab._usercode import (
    describe,
    genuine_interrupt,
    guard_exits,
    guard_signals,
    interrupted,
    plain_warnings,
    real_exit,
    stop_signal,
    stop_words,
    user_error,
    user_frame,
    watch_interrupts,
)
from descentlab.cli._options import integer_limit, stdout_for_json

__all__ = ["build_parser", "main", "own_process", "user_error"]

_run = {"own_process": False}


def own_process() -> bool:
    """Whether this command runs as the program (``descentlab ...``, :func:`main` without
    ``argv``), not called in another program: then it may end the process itself."""
    return _run["own_process"]


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are one line like every other error (argparse
    prints the whole usage first, dozens of lines for ``train`` and ``compare``), and whose
    integer options are bounded above (:func:`~descentlab.cli._options.integer_limit`): a
    count larger than a machine can honour is refused as it is read, whatever the option."""

    _given: tuple[str, ...] = ()

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._given = tuple(sys.argv[1:] if args is None else map(str, args))
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}{self._hint(message)} (see '{self.prog} "
                  "--help')\n")  # fmt: skip

    def _hint(self, message: str) -> str:
        """For an option whose value starts with ``-`` (``--sizes -5,10,20``: argparse takes
        it for an option), how to give it."""
        found = re.match(r"argument (--[\w-]+)(?:/[^:]*)?: expected one argument", message)
        if found is None or found.group(1) not in self._given:
            return ""
        at = self._given.index(found.group(1)) + 1
        if at >= len(self._given) or not self._given[at].startswith("-"):
            return ""
        return f"; a value that starts with '-' goes as {found.group(1)}={self._given[at]}"

    def _get_value(self, action: argparse.Action, arg_string: str) -> Any:
        # (argparse's one place an option's text becomes its value, for every option)
        value = super()._get_value(action, arg_string)  # type: ignore[misc]
        most = integer_limit(action.dest)
        if isinstance(value, int) and not isinstance(value, bool) and value > most:
            raise argparse.ArgumentError(action, f"must be at most {most:,}, got {arg_string}")
        return value


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser. Given ``argv`` that names a command, only that command's
    module is imported (``descentlab runs`` never loads torch: a second or more of start-up,
    several while a comparison keeps the cores busy); otherwise every command's."""
    parser = _Parser(
        prog="descentlab",
        description="A laboratory for gradient-based optimization in PyTorch.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    named = [n for n in names if argv and n.replace("_", "-") == str(argv[0])]
    for name in named or names:
        module = importlib.import_module(f"{__name__}.{name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def _undecodable(argv: list[str]) -> str | None:
    """Why the first argument that is not valid UTF-8 is refused, or None (a name or folder
    given as raw bytes, which Python keeps as surrogates: the store, the reports and the run
    folders' names hold text). Checked before anything is created or trained."""
    for i, arg in enumerate(argv):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            if arg.startswith("--") and "=" in arg:
                what, arg = arg.split("=", 1)
            elif i and argv[i - 1].startswith("-"):
                what = argv[i - 1]
            else:
                what = "an argument"
            return (
                f"{what} is not valid UTF-8 ({os.fsencode(arg)!r}); descentlab keeps names and "
                "paths as text: give them in UTF-8"
            )
    return None


def _printable_anywhere() -> None:
    """Text that the terminal's encoding cannot show (``PYTHONIOENCODING=ascii``, a C
    locale) is printed with ``?`` in its place rather than refused."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            reconfigure(errors="replace")


def _reader_gone(exc: BaseException) -> bool:
    """Whether ``exc`` is the broken pipe of a standard output whose reader has left
    (``descentlab optimizers | head -c 20``), not another pipe of the command's."""
    if not isinstance(exc, BrokenPipeError):
        return False
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(ev & select.POLLERR for _fd, ev in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return False


def _quiet_exit_on_broken_pipe() -> int:
    """End as command-line tools do when the reader of their output leaves: no message, the
    status of a process ended by SIGPIPE (128 + 13, what the shell reports for ``cat``)."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # what is left in the buffer goes nowhere
    return 128 + signal.SIGPIPE


#: the options that name a file or folder (argparse's ``dest``)
_PATHS = ("runs_dir", "db", "out", "output", "run_dir")


def _absolute_paths(args: argparse.Namespace) -> None:
    """Every path the command was given made absolute now, before any user code runs: a
    problem function that changes the working folder cannot move the store or the output."""
    for dest in _PATHS:
        value = getattr(args, dest, None)
        if isinstance(value, str) and value:
            setattr(args, dest, os.path.abspath(value))


def _end_now(code: int, *, past_user_threads: bool = False) -> None:
    """End the program with ``code`` once its exit handlers have run, without tearing down
    every module and object one by one (about a CPU second once torch and matplotlib are
    loaded). Where threads that are not daemons still run, it returns (Python ends them as
    it ends), unless ``past_user_threads``: user code left them (Python would wait for them
    for ever), so they are named once and not waited for."""
    left = [
        t for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]  # fmt: skip
    if left and not past_user_threads:
        return
    if left:
        names = ", ".join(repr(t.name) for t in left)
        print(f"descentlab: user code left {len(left)} thread(s) running ({names}); the "
              "command ends without waiting for them", file=sys.stderr)  # fmt: skip
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    real_exit(code)


def main(argv: list[str] | None = None) -> int:
    """Run the command ``argv`` (None: this program's command line). Ctrl-C, while it starts
    or later, ends it with one line and exit code 130 (SIGTERM: 143); a reader of its output
    that leaves (``| head``) ends it quietly; threads that user code left running do not keep
    the program alive."""
    code = _outcome(argv)
    if argv is None:
        # the command is done: a Ctrl-C now (a second one, say) cannot leave it half-way
        # through its exit with a traceback
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        _end_now(code, past_user_threads=True)
    return code


def _outcome(argv: list[str] | None) -> int:
    if argv is None:  # the program's own streams (a program calling main keeps its own)
        _printable_anywhere()
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, not at exit: a reader that left is seen below
        if argv is None:
            _end_now(code)
        return code
    except BrokenPipeError as exc:
        if not _reader_gone(exc):
            raise
        return _quiet_exit_on_broken_pipe()
    except KeyboardInterrupt as exc:
        if os.environ.get("DESCENTLAB_DEBUG"):
            raise
        if not genuine_interrupt(exc):  # raised by user code itself: its failure
            print(f"descentlab: error: user code failed: {describe(exc)}", file=sys.stderr)
            return 2
        # (a sharded run's stop that had to kill a rank says so; SIGTERM ends with 143)
        signum = stop_signal(exc)
        said = str(exc) if type(exc).__name__ == "RanksStopped" else "interrupted"
        if type(exc).__name__ != "RanksStopped":
            said = f"interrupted by {stop_words(signum)}"
        print(f"\ndescentlab: {said}", file=sys.stderr)
        return 128 + signum
    except Exception:
        # Ctrl-C that landed inside an import leaves the half-imported module broken, and
        # the next use of it fails with another error (NumPy: a RecursionError): after a
        # real Ctrl-C, that is the interruption still
        if not interrupted() or os.environ.get("DESCENTLAB_DEBUG"):
            raise
        signum = stop_signal()
        print(f"\ndescentlab: interrupted by {stop_words(signum)}", file=sys.stderr)
        return 128 + signum


def _main(argv: list[str] | None) -> int:
    if argv is None:  # the program itself: user code may not end it without a word
        watch_interrupts()
        guard_exits()
        guard_signals()
    with loading_frozen() if argv is None else contextlib.nullcontext():
        given = sys.argv[1:] if argv is None else [str(a) for a in argv]
        parser = build_parser(given)  # (the command's module: for most, torch and the engine)
    undecodable = _undecodable(given)
    if undecodable is not None:
        print(f"descentlab: error: {undecodable}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    _absolute_paths(args)
    _run["own_process"] = argv is None  # the program's own command line: a command may end it
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    from descentlab.engine.memory import keep_freed_memory

    keep_freed_memory()  # this process is the program: it may keep the memory it frees
    plain_warnings()
    with track_created(), stdout_for_json(bool(getattr(args, "json", False)), argv is None):
        try:
            return int(args.func(args) or 0)
        except SystemExit as exc:  # user code's sys.exit() or os._exit() outside a trial
            if user_frame(exc) is None or os.environ.get("DESCENTLAB_DEBUG"):
                raise
            print(f"descentlab: error: user code ended the command: {describe(exc)}",
                  file=sys.stderr)  # fmt: skip
            return 2
        except Exception as exc:
            if _reader_gone(exc):
                raise
            if out_of_space(exc):  # leave nothing this command created (see descentlab._files)
                from descentlab.store import finished_under

                remove_created(keep=finished_under)  # (but finished work)
            message = user_error(exc)
            if message is None or os.environ.get("DESCENTLAB_DEBUG"):
                raise
            print(f"descentlab: error: {printable(message)}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
