"""``compare --no-report`` skips the HTML report and its figures, and keeps the exports
(``trials.csv``, ``comparison.json``) that its ``--help`` promises."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

from _models import run_cli

TINY = [
    "--problem", "moons", "--problem-option", "n_samples=120", "--optimizers", "sgd",
    "--batch-size", "16", "--steps", "4", "--tune-steps", "4", "--lr-trials", "2", "--seeds",
    "1", "--landscapes", "none", "--no-progress", "--workers", "1", "--one-at-a-time",
]  # fmt: skip


def test_no_report_keeps_the_exports_and_writes_no_page(tmp_path, capsys):
    code, out, err = run_cli(
        ["compare", *TINY, "--no-report", "--runs-dir", tmp_path, "--name", "c"], capsys
    )
    assert code == 0, err
    run = tmp_path / "c"
    with open(run / "trials.csv", newline="") as f:
        assert list(csv.DictReader(f))  # one row per run
    payload = json.loads((run / "comparison.json").read_text())
    assert payload["table"] and payload["trials"]
    assert not (run / "report.html").exists()
    assert not (run / "figures").exists()
    assert "report:" not in out


def test_no_report_writes_each_problems_exports(monkeypatch, tmp_path):
    """With --problems, each problem's comparison keeps its exports."""
    from descentlab.cli import compare as cli_compare
    from descentlab.report import compare_export

    written = []
    monkeypatch.setattr(compare_export, "write_exports", lambda c, d: written.append((c, d)))
    cmps = [SimpleNamespace(report_path=tmp_path / n / "report.html") for n in ("a", "b")]
    multi = SimpleNamespace(problems=[SimpleNamespace(comparison=c) for c in cmps])
    cli_compare._render(SimpleNamespace(no_report=True), multi)
    assert written == [(cmps[0], tmp_path / "a"), (cmps[1], tmp_path / "b")]


def test_help_says_what_no_report_skips_and_keeps(capsys):
    code, out, _err = run_cli(["compare", "--help"], capsys)
    assert code == 0
    text = " ".join(out.split())
    assert "--no-report skip the HTML report and its figures (trials.csv and comparison.json" in (
        text
    )
