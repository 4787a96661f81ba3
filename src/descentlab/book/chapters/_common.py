"""What the chapters share: the numbers their prose states (each computed, and the prose
audited for any other), the runs on quadratics and their rates, and the figures' frames."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

from descentlab.book.checks import ck
from descentlab.book.render.chapter import ChapterPage, Part
from descentlab.book.render.pages import Check

__all__ = [
    "Numbers",
    "envelope_rate",
    "finish",
    "heavy_ball_rate",
    "one_thread",
    "slope_steps",
    "steps_to",
]

#: a number in prose (a sign is not part of it: ``-0.5`` states ``0.5``)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e[-+]?\d+)?")
#: what is no stated number: code and formulas in backquotes, references to items and
#: exercises, and a chapter's own headings' numbering
_EXEMPT = re.compile(r"`[^`]*`|\b(?:items?|exercises?)\s+\d+(?:\s*(?:-|–|,|and)\s*\d+)*")
#: a number spelled out in words ("ten times", "a hundredth", "thirty-two", "millionfold"):
#: a quantity typed by hand as surely as its digits (one to three, "half" and "twice" stay
#: prose: "two consequences", "the second half")
_SPELLED = re.compile(
    r"\b(?:(?:four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|"
    r"ninety|hundred|thousand|million|billion)(?:th|ths|fold)?|tenths?|percent)\b",
    re.IGNORECASE,
)


def fmt(value: Any, digits: int = 3) -> str:
    """A number as the prose states it: an integer as it is, else ``digits`` significant."""
    if isinstance(value, bool):
        raise TypeError("a stated number cannot be a bool")
    if isinstance(value, int | np.integer):
        return str(int(value))
    v = float(value)
    if math.isfinite(v) and v == round(v) and abs(v) < 1e6:
        return str(round(v))
    return f"{v:.{digits}g}"


#: the caption's end for a movable figure of stochastic runs or a schedule, which the live
#: playground (deterministic descents, one rate) cannot show
NO_LIVE_VIEW = (
    " (No live view: the playground draws deterministic descents, without a schedule or "
    "gradient noise.)"
)


class Numbers:
    """The numbers a chapter's prose may state: the settings it chose (given when made) and
    each value it computed (``n(value)`` formats it, records it and returns it). The audit
    (:meth:`check`) finds any other number in the prose: a number typed by hand.

    Example:
        >>> n = Numbers(0.9)
        >>> text = f"β = 0.9 gives steps {n(1 / (1 - 0.9))} times larger, not 12."
        >>> n.unaccounted(text)
        ['12']
    """

    def __init__(self, *settings: Any) -> None:
        self.stated: set[str] = {fmt(s).lstrip("-") for s in settings}

    def __call__(self, value: Any, digits: int = 3) -> str:
        s = fmt(value, digits)
        self.stated.add(s.lstrip("-"))
        return s

    def pct(self, fraction: float, digits: int = 2) -> str:
        """``fraction`` as a percentage (``"12%"``), recorded."""
        return f"{self(100 * fraction, digits)} %"

    def unaccounted(self, prose: str) -> list[str]:
        """The numbers in ``prose`` that are neither a setting nor a computed value, and every
        number spelled out in words (which no setting or computation states)."""
        text = _EXEMPT.sub(" ", prose)
        return [m for m in _NUMBER.findall(text) if m not in self.stated] + _SPELLED.findall(text)

    def check(self, page: ChapterPage) -> Check:
        """✔ when every number of ``page``'s prose is a setting or was computed."""
        bad = self.unaccounted(page.prose)
        total = len(_NUMBER.findall(_EXEMPT.sub(" ", page.prose)))
        return ck(
            "every number the text states is a chosen setting or was computed by this build",
            not bad,
            f"{total} numbers; typed by hand: {', '.join(bad) or 'none'}",
            "none typed by hand",
        )


def one_thread(chapter: Callable[[Any], ChapterPage]) -> Callable[[Any], ChapterPage]:
    """``chapter`` computed with torch on one thread, the previous count restored after: the
    chapters' runs are many steps on tiny tensors, where a second thread only waits (the
    batch chapter's small network took 13 times the CPU time on two threads of a loaded
    machine)."""

    @functools.wraps(chapter)
    def run(ctx: Any) -> ChapterPage:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return chapter(ctx)
        finally:
            torch.set_num_threads(before)

    return run


def steps_to(losses: Sequence[float], fraction: float) -> int | None:
    """The first step whose loss is at most ``fraction`` of the first (None: never)."""
    arr = np.asarray(losses, dtype=float)
    hit = np.nonzero(arr <= fraction * arr[0])[0]
    return int(hit[0]) if len(hit) else None


def envelope_rate(losses: Sequence[float], t0: int, t1: int, window: int = 20) -> float:
    """The distance's contraction per step between ``t0`` and ``t1``, from the loss's
    envelope (its largest value over ``window`` steps before each: an oscillating run's
    loss dips to near 0 twice a period)."""
    arr = np.asarray(losses, dtype=float)
    a = arr[max(0, t0 - window) : t0 + 1].max()
    b = arr[max(0, t1 - window) : t1 + 1].max()
    return float((b / a) ** (1.0 / (2 * (t1 - t0))))


def heavy_ball_rate(lr: float, beta: float, eigenvalues: Iterable[float]) -> float:
    """The asymptotic contraction per step of heavy ball (``b ← βb + g; w ← w - ηb``) on a
    quadratic: the largest modulus of the roots of ``z² - (1 + β - ηλ) z + β`` over the
    Hessian's eigenvalues ``λ`` (``β = 0``: gradient descent's ``|1 - ηλ|``)."""
    out = 0.0
    for lam in eigenvalues:
        roots = np.roots([1.0, -(1.0 + beta - lr * lam), beta])
        out = max(out, float(np.abs(roots).max()))
    return out


def slope_steps(make: Any, g: float, steps: int) -> list[float]:
    """The sizes of the steps an optimizer (``make(params)``) takes on the constant slope
    ``f(w) = g w`` from 0, in float64."""
    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = make([w])
    out = []
    for _ in range(steps):
        before = float(w.detach())
        w.grad = torch.full_like(w, g)
        opt.step()
        out.append(abs(float(w.detach()) - before))
    return out


def finish(page: ChapterPage, n: Numbers, keep: str) -> ChapterPage:
    """``page`` with its last part, "What to keep" (``keep``), which holds the audit of the
    whole prose (:meth:`Numbers.check`)."""
    page.parts.append(Part("keep", "What to keep", [keep, []]))
    page.parts[-1].blocks[-1] = [n.check(page)]
    return page
