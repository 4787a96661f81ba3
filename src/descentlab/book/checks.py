"""How the book's checks are made: a verdict with its measured value and stated tolerance,
evidence read from a lecture experiment, and descentlab's optimizers against the float64
loops of :mod:`descentlab.book.reference` on *both* backends.

Every check's expected column states its tolerance; :func:`close` and :func:`within` refuse a
tolerance that is not a positive finite number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from descentlab.book.experiments._common import format_value
from descentlab.book.model import Context
from descentlab.book.reference import QUADRATIC, Quadratic
from descentlab.book.render.pages import Check, Evidence
from descentlab.optim import fused_available

__all__ = [
    "BACKENDS",
    "FromExperiment",
    "ck",
    "close",
    "diff_check",
    "formula_checks",
    "from_experiment",
    "run_optimizer",
    "said",
    "shows",
    "within",
]

#: a claim's demonstration: ``(holds, what it measured in words)``
Demo = Callable[[], tuple[bool, str]]


def shows(text: str) -> Callable[[Demo], Demo]:
    """Name what a claim's demonstration measures, in words (its check row's text,
    :attr:`~descentlab.book.claims.Claim.shows`)."""

    def mark(fn: Demo) -> Demo:
        fn.shows = text  # type: ignore[attr-defined]
        return fn

    return mark


#: The optimizer backends every formula check runs on: name -> the ``fused`` argument.
BACKENDS: dict[str, bool] = {"eager": False, "fused": True}


def _fmt(x: Any) -> str:
    return x if isinstance(x, str) else format_value(x)


def ck(text: str, ok: bool, measured: Any, expected: Any) -> Check:
    """A ✔/✘ check."""
    return Check(text, "ok" if bool(ok) else "fail", _fmt(measured), _fmt(expected))


def said(text: str, phrase: str, holds: bool, measured: Any, expected: Any) -> Check:
    """The check row that reads ``phrase`` on the page ``text`` against the numbers: ✔ when
    the page says ``phrase`` and the numbers bear it out (``holds``), ✘ when either fails -- a
    flipped word drops the phrase from the page. ``phrase`` is a key of
    :data:`~descentlab.book.texts._words.CHECKED_BY`, which names what is tested (the check's
    text) and marks the sentence read for :func:`~descentlab.book.facts.census`.

    Raises:
        KeyError: ``phrase`` is not in ``CHECKED_BY``.
    """
    from descentlab.book.texts._words import CHECKED_BY  # (the texts import the chapters' kit)

    on_page = phrase in " ".join(text.split())
    return ck(f'{CHECKED_BY[phrase]} (the page says "{phrase}")', on_page and holds,
              measured if on_page else f"not on the page: {phrase!r}", expected)  # fmt: skip


def _check_tol(tol: float) -> float:
    tol = float(tol)
    if not math.isfinite(tol) or tol <= 0:
        raise ValueError(f"tol must be a positive finite number, got {tol!r}")
    return tol


def _apart(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` with the fewest significant digits (four at least) that tell them
    apart, so that a failed check shows its gap."""
    for d in range(4, 18):
        sa, sb = format_value(a, d), format_value(b, d)
        if sa != sb:
            return sa, sb
    return format_value(a, 17), format_value(b, 17)


def close(text: str, measured: float, expected: float, tol: float, rel: bool = False) -> Check:
    """``measured`` within ``tol`` (absolute, or relative) of ``expected``. A failed one shows
    both in as many digits as tell them apart, and the gap."""
    tol = _check_tol(tol)
    measured, expected = float(measured), float(expected)
    err = abs(measured - expected) / (abs(expected) if rel else 1.0)
    shown = f"{tol:.0e}" if tol < 1e-3 else f"{tol:g}"
    ok = math.isfinite(err) and err <= tol
    m, e = (_fmt(measured), _fmt(expected)) if ok else _apart(measured, expected)
    if not ok:
        m += f" (off by {err:.2g}{' rel.' if rel else ''})"
    return ck(text, ok, m, f"{e} ± {shown}{' (rel.)' if rel else ''}")


def within(text: str, measured: float, lo: float, hi: float) -> Check:
    """``lo <= measured <= hi``."""
    ok = math.isfinite(measured) and lo <= measured <= hi
    return ck(text, ok, measured, f"in [{_fmt(lo)}, {_fmt(hi)}]")


def diff_check(text: str, err: float, tol: float) -> Check:
    """A largest absolute difference ``err`` below ``tol``."""
    tol = _check_tol(tol)
    return ck(text, math.isfinite(err) and err < tol, f"max |diff| {err:.1e}", f"< {tol:.0e}")


class FromExperiment:
    """Evidence from lecture experiment ``name``: the experiment's checks whose text contains
    one of ``needles`` (all when none; at least one must match), with a figure drawn from its
    data by ``figure(result)``. A check the experiment marks ``unmet="not_reproduced"`` is
    ○ when it fails (:meth:`ExperimentResult.status`), every other failed check ✘."""

    def __init__(
        self,
        name: str,
        *needles: str,
        figure: Callable[[Any], Any] | None = None,
        note: str = "",
    ) -> None:
        self.name = name
        self.needles = needles
        self.figure = figure
        self.note = note
        shown = f"experiment {name}"
        if needles:
            shown += " (checks: " + ", ".join(repr(n) for n in needles) + ")"
        self.shown_by = shown

    def __call__(self, ctx: Context) -> Evidence:
        r = ctx.experiment(self.name)
        checks = []
        for text, ok in r.checks.items():
            if self.needles and not any(n.lower() in text.lower() for n in self.needles):
                continue
            m = r.measured.get(text, {})
            status = "ok" if ok else getattr(r, "unmet", {}).get(text, "fail")
            checks.append(
                Check(
                    f"[experiment {self.name}] {text}",
                    status,
                    _fmt(m.get("measured", "see the table")),
                    _fmt(m.get("expected", "see the text")),
                )
            )
        if not checks:
            checks.append(
                ck(f"experiment {self.name} has the checks {self.needles}", False, "none", "≥ 1")
            )
        ev = Evidence(checks=checks, notes=[self.note] if self.note else [])
        if self.figure is not None:
            ev.figures.append(self.figure(r))
        return ev


def from_experiment(
    name: str, *needles: str, figure: Callable[[Any], Any] | None = None, note: str = ""
) -> FromExperiment:
    """A :class:`FromExperiment`."""
    return FromExperiment(name, *needles, figure=figure, note=note)


def run_optimizer(
    make: Callable[..., torch.optim.Optimizer],
    steps: int,
    *,
    problem: Quadratic = QUADRATIC,
    closure: bool = False,
    fused: bool | None = None,
) -> np.ndarray:
    """Every iterate of ``make(params, fused=fused)`` (``make(params)`` when ``fused`` is
    None: a torch optimizer) on ``problem`` in float64, the start first."""
    w = torch.nn.Parameter(torch.tensor(problem.w0))
    a, b = torch.tensor(problem.a), torch.tensor(problem.b)
    opt = make([w]) if fused is None else make([w], fused=fused)
    out = [w.detach().numpy().copy()]

    def loss_fn() -> torch.Tensor:
        opt.zero_grad()
        loss = 0.5 * (a * w * w).sum() - (b * w).sum()
        loss.backward()
        return loss

    for _ in range(steps):
        if closure:
            opt.step(loss_fn)
        else:
            loss_fn()
            opt.step()
        out.append(w.detach().numpy().copy())
    return np.asarray(out)


def formula_checks(
    text: str,
    make: Callable[..., torch.optim.Optimizer],
    reference: Callable[[np.ndarray, Callable[[np.ndarray], np.ndarray]], np.ndarray],
    *,
    steps: int = 30,
    closure: bool = False,
    tol: float = 1e-10,
    backends: Sequence[str] = tuple(BACKENDS),
) -> list[Check]:
    """descentlab's optimizer ``make(params, fused=...)`` against the float64 loop
    ``reference(w0, grad)`` on :data:`QUADRATIC`: one check per backend, its name on the
    check. A backend that cannot run here is a failed check saying why."""
    p = QUADRATIC
    loop = reference(p.w0.copy(), p.grad)[: steps + 1]
    moved = float(np.abs(loop[-1] - loop[0]).max())
    out = []
    for name in backends:
        label = f"{text} — descentlab {name} backend"
        if name == "fused" and not fused_available():
            out.append(ck(label, False, "no C++ compiler: the fused backend cannot run", "runs"))
            continue
        try:
            lib = run_optimizer(make, steps, closure=closure, fused=BACKENDS[name])
        except Exception as exc:  # shown on the card as a failed check
            out.append(ck(label, False, f"{type(exc).__name__}: {exc}", "runs"))
            continue
        err = float(np.abs(lib - loop).max() / max(1.0, float(np.abs(loop).max())))
        ok = err < tol and moved > 1e-3  # a loop that does not move compares nothing
        out.append(
            ck(
                label,
                ok,
                f"max rel. |diff| {err:.1e} over {steps} steps (the loop moved {moved:.2g})",
                f"< {tol:.0e}",
            )
        )
    return out
