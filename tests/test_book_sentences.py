"""Every ✔ of the book checks the sentence beside it: a table's column is checked against a
run, a claim's number is the one its comparison needs, a library option the book teaches is
shown at a value other than its default. Each test breaks the computation on purpose and
sees the check turn ✘."""

from __future__ import annotations

import pytest

from descentlab.book.chapters import momentum


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
