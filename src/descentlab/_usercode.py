"""User code that ends the command: how a command tells it, and names it, in one line.

User code (a problem file or function, a model, a loss, a third-party optimizer) runs in the
command's own process with ``--workers 1`` and while a comparison is checked. Three ways it
could end the command with no word:

- ``sys.exit(n)``: a ``SystemExit``, caught where user code is called and reported as the
  failure of that code (:func:`describe`);
- ``os._exit(n)``: no exception at all. :func:`guard_exits` (installed by the ``descentlab``
  command for its duration, in its own process only) makes ``os._exit`` raise
  :class:`UserExit` (a ``SystemExit``) in that process, so that it is reported like
  ``sys.exit``; the command's own ends call :func:`real_exit`. A forked child keeps the real
  ``os._exit`` (the guard checks the process id);
- ``raise KeyboardInterrupt`` (or another ``BaseException``): a ``KeyboardInterrupt`` stops
  the command only when Ctrl-C was pressed (:func:`watch_interrupts` notes the signal);
  raised by user code it is that code's failure (:func:`genuine_interrupt`).

The alternative for ``os._exit`` -- every trial in a child process even with ``--workers 1``
-- would cost a process start per command and lose in-process debugging; the guard changes
nothing for code that does not call ``os._exit``.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "UserCodeFailed",
    "UserExit",
    "describe",
    "failed_as",
    "failure_way",
    "genuine_interrupt",
    "guard_exits",
    "guard_signals",
    "interrupted",
    "interruptible",
    "library_file",
    "note_interrupt",
    "out_of_memory",
    "plain_warnings",
    "raised_by_user",
    "raised_here",
    "real_exit",
    "script_argv",
    "signals_handed_over",
    "stop_signal",
    "stop_waiting",
    "stop_words",
    "user_call",
    "user_error",
    "user_frame",
    "watch_interrupts",
]

_PACKAGE = str(Path(__file__).resolve().parent) + os.sep
#: where descentlab's code is, as its files are named: through links too (a package reached
#: by a linked folder names its code by that path, not the resolved one)
_PACKAGES = tuple({_PACKAGE, os.path.dirname(os.path.abspath(__file__)) + os.sep})
_real_exit = os._exit
_state: dict[str, Any] = {"watching": False, "interrupted": False, "pid": None, "waiting": 0}


class UserCodeFailed(ValueError):
    """User code failed in a trial, said in one line (``text``, what a command prints);
    ``cause``: how (:func:`describe`), ``way``: :func:`failure_way` -- read where the trial's
    failure is recorded (a trial runner: the trial is failed, the comparison goes on)."""

    def __init__(self, text: str, cause: str | None = None, way: str | None = None) -> None:
        super().__init__(text)
        self.cause, self.way = cause or text, way or cause or text

    def __reduce__(self) -> Any:  # (sent back from a worker process whole)
        return type(self), (str(self), self.cause, self.way)


class UserExit(SystemExit):
    """``os._exit(code)`` called by user code in the guarded process (:func:`guard_exits`)."""

    def __init__(self, code: int, where: str | None) -> None:
        super().__init__(code)
        self.where = where


def real_exit(code: int) -> None:
    """End this process at once (``os._exit``, never the guard)."""
    _real_exit(code)


def _frame_words(code: Any, filename: str, lineno: int | None) -> str:
    name = getattr(code, "co_qualname", None) or code.co_name
    return f"{name} ({filename}:{lineno})"


def _guarded_exit(code: int) -> None:
    if os.getpid() != _state["pid"]:  # a forked child: exit as asked
        _real_exit(code)
    frame = sys._getframe(1)
    raise UserExit(code, _frame_words(frame.f_code, frame.f_code.co_filename, frame.f_lineno))


def guard_exits() -> None:
    """From now on in this process, ``os._exit(n)`` raises :class:`UserExit`."""
    _state["pid"] = os.getpid()
    os._exit = _guarded_exit  # type: ignore[assignment]


#: the signals a command owns (a stop): user code may not take them from it
OWNED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_real_signal, _real_getsignal = signal.signal, signal.getsignal
_kept_aside: dict[int, Any] = {}  # what code outside descentlab asked for, by signal


def _guarded_signal(signum: Any, handler: Any) -> Any:
    caller = sys._getframe(1)
    if (
        os.getpid() != _state.get("signals_pid")
        or int(signum) not in OWNED_SIGNALS
        or caller.f_code.co_filename.startswith(_PACKAGES)
    ):
        return _real_signal(signum, handler)
    signum = int(signum)
    before = _kept_aside.get(signum, _real_getsignal(signum))
    _kept_aside[signum] = handler
    if signum not in _state.setdefault("said_signals", set()):
        _state["said_signals"].add(signum)
        import warnings

        where = _frame_words(caller.f_code, caller.f_code.co_filename, caller.f_lineno)
        what = "to ignore it" if handler is signal.SIG_IGN else "a handler of its own"
        warnings.warn(
            f"descentlab: code in {where} set {signal.Signals(signum).name} {what}; the "
            "command keeps its own, so a stop still ends it (exit 130 or 143, finished "
            "trials kept), and that handler is not called",
            RuntimeWarning,
            stacklevel=2,
        )
    return before


def _guarded_getsignal(signum: Any) -> Any:
    if os.getpid() == _state.get("signals_pid") and int(signum) in _kept_aside:
        caller = sys._getframe(1)
        if not caller.f_code.co_filename.startswith(_PACKAGES):
            return _kept_aside[int(signum)]
    return _real_getsignal(signum)


def guard_signals() -> None:
    """From now on in this process (the command's, or a worker's), code outside descentlab
    cannot take SIGINT or SIGTERM from the command -- as torchrun's agent owns its workers'
    signals: ``signal.signal`` called by such code for them (a SLURM-aware handler, a library's,
    ``SIG_IGN``) is kept aside and said once, and ``signal.getsignal`` gives that code back
    what it set; the command's own handlers stay, so a stop ends it by the convention."""
    _state["signals_pid"] = os.getpid()
    signal.signal = _guarded_signal  # type: ignore[assignment]
    signal.getsignal = _guarded_getsignal  # type: ignore[assignment]


class signals_handed_over:
    """descentlab's own command hands SIGINT and SIGTERM to a server it runs itself (the
    playground's uvicorn, whose handlers are how it stops): :func:`guard_signals` is off
    inside, its handlers the server's, and on again after.

    Example:
        >>> with signals_handed_over():
        ...     pass
    """

    def __enter__(self) -> None:
        self.pid = _state.pop("signals_pid", None)

    def __exit__(self, *exc: object) -> None:
        if self.pid is not None:
            _state["signals_pid"] = self.pid


def watch_interrupts() -> None:
    """Note a real Ctrl-C before Python raises ``KeyboardInterrupt`` for it, and read SIGTERM
    (``kill PID``, ``timeout``, systemd) as one that carries its signal (``signum``): the
    command ends as interrupted, with exit code 143, instead of dying where it stands (main
    thread of the program only, where Python's own handlers are still installed; a running
    loop or comparison puts its own in place meanwhile)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return

    def handler(signum: int, frame: Any) -> None:
        note_interrupt(signum)
        if signum == signal.SIGINT:
            signal.default_int_handler(signum, frame)
        stop = KeyboardInterrupt(signal.Signals(signum).name)
        stop.signum = signum  # type: ignore[attr-defined]
        raise stop

    signal.signal(signal.SIGINT, handler)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, handler)
    _state["watching"] = True


def interruptible() -> Any:
    """A context for a wait that a stop deferred to the next step boundary must not wait for
    (a batch from loader workers, a compiler): while this thread -- the main one -- is inside,
    :func:`stop_waiting` raises the stop at once."""
    return _Waiting()


class _Waiting:
    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            _state["waiting"] += 1

    def __exit__(self, *exc: object) -> None:
        if threading.current_thread() is threading.main_thread():
            _state["waiting"] -= 1


def stop_waiting(signum: int) -> None:
    """Called by a signal handler that defers a stop to the next step boundary (the training
    loop's, a rank's): inside an :func:`interruptible` wait, which may never end, the stop is
    raised now, a ``KeyboardInterrupt`` carrying ``signum``."""
    if _state["waiting"] > 0:
        note_interrupt(signum)
        stop = KeyboardInterrupt(signal.Signals(signum).name)
        stop.signum = signum  # type: ignore[attr-defined]
        raise stop


def note_interrupt(signum: int = signal.SIGINT) -> None:
    """The signal ``signum`` asked the command to stop (Ctrl-C, or SIGTERM where it is read
    as one); the first one is the command's (:func:`stop_signal`)."""
    _state["interrupted"] = True
    _state["signal"] = _state.get("signal") or int(signum)


def stop_signal(exc: BaseException | None = None) -> int:
    """The signal that stopped the command: the one ``exc`` carries, else the first noted
    (:func:`note_interrupt`), else SIGINT. Its exit status is 128 + it (130, 143)."""
    return int(getattr(exc, "signum", None) or _state.get("signal") or signal.SIGINT)


def stop_words(signum: int) -> str:
    """The signal ``signum`` in a message: ``SIGINT (Ctrl-C)``, ``SIGTERM``."""
    name = signal.Signals(signum).name
    return f"{name} (Ctrl-C)" if signum == signal.SIGINT else name


def interrupted() -> bool:
    """Whether a signal asked the command to stop (Ctrl-C, or SIGTERM read as one)."""
    return bool(_state["interrupted"])


def genuine_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` stops the command: a ``KeyboardInterrupt`` after Ctrl-C (or wherever
    signals are not watched); one that user code raised by itself is that code's failure."""
    if not isinstance(exc, KeyboardInterrupt):
        return False
    return not _state["watching"] or _state["interrupted"]


def user_frame(exc: BaseException) -> str | None:
    """Where ``exc`` was raised outside descentlab: ``"Opt.step (/path/opt.py:13)"``."""
    if isinstance(exc, UserExit):
        return exc.where
    return _innermost(exc, lambda filename: filename.startswith(_PACKAGES))


def _innermost(exc: BaseException, library: Callable[[str], bool]) -> str | None:
    """The innermost frame of ``exc``'s traceback whose file is not ``library``'s, in words."""
    where = None
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if not library(code.co_filename):
            where = _frame_words(code, code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return where


def library_file(filename: str) -> bool:
    """Whether code in ``filename`` is descentlab's, Python's or an installed package's (torch,
    NumPy, ...), not the user's."""
    prefixes = {*_PACKAGES, sys.prefix + os.sep, sys.base_prefix + os.sep, sys.exec_prefix + os.sep}
    return filename.startswith(tuple(prefixes)) or filename.startswith("<")


def user_call(exc: BaseException) -> str | None:
    """The innermost frame of user code in ``exc``'s traceback (:func:`library_file`),
    ``"Net.forward (/path/p.py:9)"``, or None."""
    return _innermost(exc, library_file)


def raised_by_user(exc: BaseException) -> bool:
    """Whether ``exc`` comes from user code itself: the innermost frame of its traceback is
    user code (:func:`library_file`): a ``raise`` in a user's model, not a torch op that
    refused its inputs."""
    return (file := _innermost_file(exc)) is not None and not library_file(file)


def raised_here(exc: BaseException) -> bool:
    """Whether descentlab itself raised ``exc`` (the innermost frame of its traceback is
    descentlab's: a check of how user code called it, such as ``run.report`` given text)."""
    return (file := _innermost_file(exc)) is not None and file.startswith(_PACKAGES)


def _innermost_file(exc: BaseException) -> str | None:
    """The file of the innermost frame of ``exc``'s traceback (None without a traceback)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return None if tb is None else tb.tb_frame.f_code.co_filename


def describe(exc: BaseException) -> str:
    """What user code did, for a message: ``"it called sys.exit(3) in make (p.py:4)"``,
    ``"it called os._exit(5) in Net.forward (p.py:9)"``, ``"RuntimeError: boom in Opt.step
    (o.py:13)"``."""
    where = _where(exc)
    at = f" in {where}" if where else ""
    if isinstance(exc, SystemExit):
        function = "os._exit" if isinstance(exc, UserExit) else "sys.exit"
        code = "" if exc.code is None else repr(exc.code)
        said = f"it called {function}({code}){at}"
        if code == "2" and _argparse_exit(exc):
            said += (
                f" (argparse refused the command line it read, sys.argv = {sys.argv!r}: give "
                "the script's own arguments with --script-args '...')"
            )
        return said
    mine = user_call(exc)  # (raised inside a library: the user's line that called it too)
    if mine is not None and mine != where:
        at += f", called from {mine}"
    if not isinstance(exc, Exception):
        text = f": {exc}" if str(exc) else ""
        return f"it raised {type(exc).__name__}{text}{at}"
    return f"{type(exc).__name__}: {exc}{at}"


def _argparse_exit(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(os.sep + "argparse.py"):
            return True
        tb = tb.tb_next
    return False


class script_argv:
    """User code run as a script: ``sys.argv`` is ``[script, *args]`` inside (as ``python
    script.py ARGS`` gives it, so that a module-level ``parse_args()`` reads the script's own
    command line, not descentlab's), set back afterwards.

    Example:
        >>> with script_argv("train.py", ["--epochs", "2"]):
        ...     sys.argv
        ['train.py', '--epochs', '2']
    """

    def __init__(self, script: str, args: Any = ()) -> None:
        self.argv = [str(script), *map(str, args)]

    def __enter__(self) -> None:
        self.kept = sys.argv
        sys.argv = list(self.argv)

    def __exit__(self, *exc: object) -> None:
        sys.argv = self.kept


def _where(exc: BaseException) -> str | None:
    """Where user code raised ``exc``: its innermost frame of user code (the user's line that
    called into torch, not torch's own), else the last frame outside descentlab."""
    if isinstance(exc, UserExit):
        return exc.where
    return user_call(exc) or user_frame(exc)


def failed_as(exc: BaseException) -> tuple[str, str]:
    """A failed trial's cause and way (:func:`describe`, :func:`failure_way`); a
    :class:`UserCodeFailed` carries its own."""
    if isinstance(exc, UserCodeFailed):
        return exc.cause, exc.way
    return describe(exc), failure_way(exc)


def failure_way(exc: BaseException) -> str:
    """How user code failed, apart from the message's values (two trials that raise the same
    error at the same line fail the same way, whatever numbers their messages hold):
    ``"RuntimeError in loss (vae.py:61)"``, ``"it called os._exit(0) in f (p.py:9)"``."""
    if isinstance(exc, SystemExit):
        return describe(exc)
    where = _where(exc)
    return f"{type(exc).__name__} in {where}" if where else describe(exc)


# ---------------------------------------------------------------------------------------
# warnings: descentlab's one-line form


def plain_warnings() -> None:
    r"""From now on in this process (the command's, or a worker's), print descentlab's
    warnings as one line each, ``descentlab: ...``, without the source file and line Python
    adds: its own announcements (text that starts ``descentlab:``) and any other warning
    raised by descentlab's code. Warnings raised by other code (torch's, the user's) keep
    Python's form, which says where they come from.

    Example:
        >>> import warnings
        >>> plain_warnings()
        >>> warnings.formatwarning("descentlab: set aside", RuntimeWarning, _PACKAGE + "x.py", 3)
        'descentlab: set aside\n'
        >>> warnings.formatwarning("slow", UserWarning, _PACKAGE + "x.py", 3)
        'descentlab: warning: slow\n'
    """
    import warnings

    from descentlab._terminal import printable

    shown = getattr(warnings.formatwarning, "_python", warnings.formatwarning)

    def formatwarning(
        message: Any, category: Any, filename: str, lineno: int, line: str | None = None
    ) -> str:
        text = str(message)
        if text.startswith("descentlab: "):  # (what it says may quote a store, user code)
            return printable(text, lines=True) + "\n"
        if str(filename).startswith(_PACKAGES):
            return f"descentlab: warning: {printable(text, lines=True)}\n"
        return shown(message, category, filename, lineno, line)

    formatwarning._python = shown  # type: ignore[attr-defined]
    warnings.formatwarning = formatwarning  # type: ignore[assignment]


# ---------------------------------------------------------------------------------------
# errors that say themselves what was wrong (the command's one line)


def _error_types() -> tuple[type[BaseException], ...]:
    """The project's own error types that describe bad input or a bad file (imported here so
    that the dispatcher needs no heavy import before a subcommand runs)."""
    types: list[type[BaseException]] = []
    for module, name in (
        ("descentlab.store", "StoreError"),
        ("descentlab.experiments.trial", "TrialError"),
        ("descentlab.engine.checkpoint", "CheckpointError"),
        ("descentlab.problems.data", "TestSetSealedError"),
        ("descentlab._osutil", "FolderBusy"),
        ("descentlab.experiments.runner", "BackendUnavailable"),
        ("descentlab.engine.ranks", "ShardedRunError"),
        ("descentlab._native", "KernelUnavailable"),
        ("descentlab.engine.procpool", "WorkersDying"),
    ):
        mod = sys.modules.get(module)
        error = getattr(mod, name, None) if mod is not None else None
        if isinstance(error, type) and issubclass(error, BaseException):
            types.append(error)
    return tuple(types)


def out_of_memory(exc: BaseException) -> bool:
    """NumPy's and Python's MemoryError, torch's allocator errors (CPU and CUDA)."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower()
    )


def user_error(exc: BaseException) -> str | None:
    """The one-line message for an error caused by the user's input, or None for a bug.

    User errors: running out of memory (a size too large), ``ValueError``, ``KeyError`` and
    ``TypeError`` (bad names, values and types), ``OSError`` (a path that is missing, a
    file, a folder, or not writable),
    ``sqlite3.Error`` (a store that is corrupted, locked or not a database) and the project's
    own errors about stores, checkpoints, failed trials, a run folder held by another
    process and an unavailable backend. Only the first line of the message is kept (a
    failed trial's message carries the worker's traceback after it).

    Example:
        >>> user_error(KeyError("unknown optimizer 'x'"))
        "unknown optimizer 'x'"
        >>> user_error(IsADirectoryError(21, "Is a directory", "out"))
        'out: Is a directory'
        >>> user_error(ZeroDivisionError("division by zero")) is None
        True
    """
    if out_of_memory(exc):
        detail = re.sub(r"^\[enforce fail at [^\]]*\] err == 0\. ", "", str(exc).strip())
        text = (
            f"out of memory: {detail or type(exc).__name__} -- the sizes asked for (model, "
            "problem or batch options) need more memory than this process may use"
        )
    elif isinstance(exc, sqlite3.Error):
        text = f"the store could not be used: {exc}"
    elif isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename is not None else ""
        text = f"{where}{exc.strerror}"
    elif isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    elif isinstance(exc, (ValueError, KeyError, TypeError, OSError, *_error_types())):
        text = str(exc) or type(exc).__name__
    else:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
