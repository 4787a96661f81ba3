"""Progress inside a long trial, as lines: steps done, their rate and the time left
(:class:`StepLines`), at most one line every :data:`EVERY` seconds (a trial shorter than that
prints none), from the process that trains it (a comparison's worker processes too).

The engine's loop advances it as it advances tqdm's bar (:func:`~descentlab.engine.outcome.
progress_bar` gives it where :func:`trial_lines` is on); your own code's trials advance it at
each step of the optimizer ``run.optimizer`` gave, with the last value ``run.report`` said.
It reads the clock and prints: nothing a trial computes depends on it.

Example:
    >>> import io
    >>> now = iter([0.0, 31.0, 32.0, 62.0])
    >>> out = io.StringIO()
    >>> lines = StepLines(600, 0, "tune/sgd seed 0", clock=lambda: next(now), tty=False,
    ...                   out=out)
    >>> lines.update(120)
    >>> lines.update(1)  # (1 s after the last line: none)
    >>> lines.update(119)
    >>> print(out.getvalue(), end="")
      tune/sgd seed 0: step 120/600 (20%), 3.87 steps/s, 2 min 4 s left
      tune/sgd seed 0: step 240/600 (40%), 3.87 steps/s, 1 min 33 s left
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

__all__ = [
    "CLOCK",
    "EVERY",
    "StepLines",
    "compiling",
    "lines_on",
    "show_lines",
    "trial_lines",
    "which",
]

#: Seconds between two lines of one trial: on a terminal, and in a log (stderr not a terminal:
#: fewer lines, so that a long comparison's log is not flooded).
EVERY = {"tty": 5.0, "log": 30.0}

#: The clock the lines read (seconds; a test sets a slow one).
CLOCK: Callable[[], float] = time.monotonic

#: Whether the trials this process trains print their progress (:func:`trial_lines`).
_ON: list[bool] = [False]


@contextlib.contextmanager
def trial_lines(on: bool) -> Iterator[None]:
    """The trials trained in this process within it print their progress (``on``), or not;
    what it was before set back after."""
    before = _ON[0]
    _ON[0] = bool(on)
    try:
        yield
    finally:
        _ON[0] = before


def show_lines(on: bool) -> None:
    """This process's trials print their progress from now on (``on``), or not (a worker
    process's start: as its main process's)."""
    _ON[0] = bool(on)


def lines_on() -> bool:
    """Whether the trials this process trains print their progress now."""
    return _ON[0]


def which(config: Any) -> str:
    """The trial a config trains, in its lines: its name, lr and seed."""
    lr = (getattr(config, "hyper", None) or {}).get("lr")
    lr = f" lr={lr:.3g}" if isinstance(lr, int | float) else ""
    return f"{config.name}{lr} seed {config.seed}"


def _clock_words(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "unknown"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


class StepLines:
    """A trial's progress as lines, advanced like tqdm's bar (:meth:`update`,
    :meth:`set_postfix_str`, :meth:`close`): ``total`` steps, ``initial`` done before (a
    trial continued from its checkpoint: its rate counts the steps done here), ``desc`` the
    trial (or a function that names it, called at the first line); one line at most every
    :data:`EVERY` seconds (``tty``: stderr is a terminal; None: asked), to ``out`` (stderr;
    through tqdm's ``write`` where a bar is shown in this process). In a worker process the
    line says which (its pid)."""

    def __init__(
        self,
        total: int,
        initial: int,
        desc: str | Callable[[], str],
        *,
        clock: Callable[[], float] | None = None,
        tty: bool | None = None,
        out: IO[str] | None = None,
    ) -> None:
        self.total, self.n, self._desc = int(total), int(initial), desc
        self._clock, self._out = clock or CLOCK, out
        tty = sys.stderr.isatty() if tty is None else tty
        self.every = EVERY["tty" if tty else "log"]
        self.t0 = self._last = self._clock()
        self._start = self.n
        self.postfix = ""

    @functools.cached_property
    def desc(self) -> str:
        """The trial as its lines name it, made when the first line is said (``desc`` given as
        a function: a run's name, lr and seed read only if a line is printed)."""
        desc = self._desc() if callable(self._desc) else self._desc
        if multiprocessing.parent_process() is not None:
            return f"worker {os.getpid()}: {desc}"
        return desc

    def update(self, n: int = 1) -> None:
        """``n`` more steps done; a line where :attr:`every` seconds passed since the last."""
        self.n += n
        now = self._clock()
        if now - self._last >= self.every:
            self._last = now
            self._say(self.line(now))

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        """What the next line adds after the time left (the last validation values)."""
        self.postfix = text

    def close(self) -> None:
        """Nothing to close (tqdm's bar's counterpart)."""

    def line(self, now: float) -> str:
        """The line at ``now``: steps done of the total, the rate, the time left."""
        done, took = self.n - self._start, now - self.t0
        rate = done / took if took > 0 else 0.0
        left = (self.total - self.n) / rate if rate > 0 else float("inf")
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        text = (
            f"  {self.desc}: step {self.n}/{self.total}{share}, {rate:.3g} steps/s, "
            f"{_clock_words(left)} left"
        )
        if self.n == done and self.n <= 1 < took:  # (the first step took long)
            text += f" (the first step took {_clock_words(took)}: compiling, loading data...)"
        return f"{text}, {self.postfix}" if self.postfix else text

    def say(self, text: str) -> None:
        """``text`` said as a line of this trial's."""
        self._say(f"  {self.desc}: {text}")

    def _say(self, text: str) -> None:
        if self._out is not None:
            print(text, file=self._out, flush=True)
            return
        from tqdm.auto import tqdm

        tqdm.write(text, file=sys.stderr)  # (under a bar of this process's, above it)


@contextlib.contextmanager
def compiling(lines: StepLines | None) -> Iterator[None]:
    """Within it, a call of ``torch.compile`` says so in a line of ``lines`` (once): its first
    steps compile the model, which can take minutes with no step done. ``torch.compile``
    itself is called as given (the same model, the same result)."""
    if lines is None:
        yield
        return
    import torch

    original = torch.compile
    said: list[bool] = []

    def announced(*args: Any, **kwargs: Any) -> Any:
        if not said:
            said.append(True)
            lines.say(
                "torch.compile: its first steps compile the model (can take minutes; the "
                "step lines follow)"
            )
        return original(*args, **kwargs)

    torch.compile = announced  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.compile = original
