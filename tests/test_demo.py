"""``make demo`` draws its report (``compare`` draws one only when asked) and says how long it
takes as measured (docs/overhead.md), not the 3 minutes of an older budget."""

from __future__ import annotations

import pytest

from descentlab import demo


@pytest.mark.parametrize(
    ("extra", "added"),
    [
        ([], ["--report"]),
        (["--no-report"], []),
        (["--report"], []),
        (["--steps", "9"], ["--report"]),
    ],
)
def test_the_demo_asks_for_its_report_unless_told(monkeypatch, capsys, extra, added):
    seen = []
    monkeypatch.setattr(demo, "cli_main", lambda argv: seen.append(argv) or 0)
    assert demo.main(extra) == 0
    assert seen == [["compare", *demo.DEMO_BUDGET, *added, *extra]]
    out = capsys.readouterr().out
    assert out.startswith(demo.NOTICE) and "demo: elapsed 0 min" in out


def test_the_demo_says_the_time_measured():
    assert "about 25 s on 2 cores" in demo.NOTICE and "minutes" not in demo.NOTICE
