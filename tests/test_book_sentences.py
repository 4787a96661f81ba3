"""Every ✔ of the book checks the sentence beside it: a table's column is checked against a
run, a claim's number is the one its comparison needs, a library option the book teaches is
shown at a value other than its default. Each test breaks the computation on purpose and
sees the check turn ✘."""

from __future__ import annotations

import math

import pytest

from descentlab.book.chapters import momentum, schedules
from descentlab.book.checks import diff_check


@pytest.fixture(scope="module")
def momentum_trace():
    grid = momentum._grid()
    tr = momentum._quad([a for a, _ in grid], [b for _, b in grid], momentum.TRACE_STEPS, bound=1e6)
    return grid, tr


@pytest.mark.parametrize(("shift", "ok"), [(0, True), (1, True), (2, False), (-5, False)])
def test_the_momentum_tables_predicted_steps_are_checked_against_the_run(
    momentum_trace, monkeypatch, shift, ok
):
    power_steps = momentum._power_steps
    monkeypatch.setattr(
        momentum, "_power_steps", lambda a, b: v + shift if (v := power_steps(a, b)) else None
    )
    rows, checks, _ = momentum._trace_rows(*momentum_trace)
    steps = [c for c in checks if "predicted steps" in c.text]
    assert len(steps) == len(rows)  # one check a row
    converging = [c for c, r in zip(steps, rows, strict=True) if r[3] != "never"]
    assert all(c.ok is ok for c in converging), [c.measured for c in converging]


def _ignores_eta_min(self, step, base):
    return base * (1 + math.cos(math.pi * step / self.T_max)) / 2


@pytest.mark.parametrize(("broken", "ok"), [(False, True), (True, False)])
def test_the_schedules_table_shows_the_cosine_at_a_nonzero_eta_min(monkeypatch, broken, ok):
    """The book teaches `eta_min`: a library cosine that ignores it turns a row ✘."""
    from descentlab.schedules.torchlike import CosineAnnealing

    shown = [
        (name, lib, hand)
        for name, lib, hand in schedules.SCHEDULES
        if isinstance(lib, CosineAnnealing) and lib.eta_min > 0
    ]
    assert shown, "no cosine with eta_min > 0 in the schedules chapter's table"
    if broken:
        monkeypatch.setattr(CosineAnnealing, "_at", _ignores_eta_min)
    for _, lib, hand in shown:
        err = max(abs(lib(t) - hand(t)) for t in range(schedules.TABLE_T))
        assert diff_check("eta_min", err, 1e-12).ok is ok
