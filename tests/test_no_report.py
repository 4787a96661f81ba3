"""``compare`` draws the HTML report and its figures only when asked (``--report``): by default
(and with ``--no-report``) it keeps the exports (``trials.csv``, ``comparison.json``) that its
``--help`` promises and says how to draw the report later."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import pytest
from _models import run_cli

TINY = [
    "--problem", "moons", "--problem-option", "n_samples=120", "--optimizers", "sgd",
    "--batch-size", "16", "--steps", "4", "--tune-steps", "4", "--lr-trials", "2", "--seeds",
    "1", "--landscapes", "none", "--no-progress", "--workers", "1", "--one-at-a-time",
]  # fmt: skip


@pytest.mark.parametrize("flags", [[], ["--no-report"]], ids=["default", "no-report"])
def test_without_report_keeps_the_exports_and_writes_no_page(tmp_path, capsys, flags):
    code, out, err = run_cli(
        ["compare", *TINY, *flags, "--runs-dir", tmp_path, "--name", "c"], capsys
    )
    assert code == 0, err
    run = tmp_path / "c"
    with open(run / "trials.csv", newline="") as f:
        assert list(csv.DictReader(f))  # one row per run
    payload = json.loads((run / "comparison.json").read_text())
    assert payload["table"] and payload["trials"]
    assert not (run / "report.html").exists()
    assert not (run / "figures").exists()
    (said,) = [line for line in out.splitlines() if line.startswith("report:")]
    assert said == f"report: not drawn (--report draws it with the comparison; `descentlab " \
        f"report {run}` draws it)"  # fmt: skip


def test_report_draws_the_page_and_its_figures_once_asked(tmp_path, capsys):
    code, out, err = run_cli(
        ["compare", *TINY, "--report", "--runs-dir", tmp_path, "--name", "c"], capsys
    )
    assert code == 0, err
    run = tmp_path / "c"
    assert (run / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert {p.suffix for p in (run / "figures").iterdir()} == {".png"}
    assert f"report: {run / 'report.html'} (drawn in " in out


def test_report_and_no_report_refused_together(tmp_path, capsys):
    code, _out, err = run_cli(["compare", *TINY, "--report", "--no-report"], capsys)
    assert code == 2 and "not allowed with argument" in err


def test_each_problems_exports_are_written_without_the_page(monkeypatch, tmp_path):
    """With --problems, each problem's comparison keeps its exports; no page is drawn."""
    from descentlab.cli import compare as cli_compare
    from descentlab.report import compare_export, profiles

    written, drawn = [], []
    monkeypatch.setattr(compare_export, "write_exports", lambda c, d: written.append((c, d)))
    monkeypatch.setattr(profiles, "render_multi_report", drawn.append)
    cmps = [SimpleNamespace(report_path=tmp_path / n / "report.html") for n in ("a", "b")]
    multi = SimpleNamespace(problems=[SimpleNamespace(comparison=c) for c in cmps])
    cli_compare._render(SimpleNamespace(report=False), multi)
    assert written == [(cmps[0], tmp_path / "a"), (cmps[1], tmp_path / "b")]
    assert drawn == []


def test_help_says_what_report_draws_and_the_default_keeps(capsys):
    code, out, _err = run_cli(["compare", "--help"], capsys)
    assert code == 0
    text = " ".join(out.split())
    assert "--report also draw the HTML report and its figures (report.html, figures/)" in text
    assert "`descentlab report RUN_DIR` draws the report later from the store" in text
    assert "--no-report skip the HTML report and its figures, the default" in text


#: trials.csv's columns that are clocks (they differ between any two runs)
CLOCKS = ("train_seconds", "optimizer_seconds", "seconds_to_target", "clock", "run_id")


def _results(run):  # type: ignore[no-untyped-def]
    with open(run / "trials.csv", newline="") as f:
        rows = [{k: v for k, v in r.items() if k not in CLOCKS} for r in csv.DictReader(f)]
    payload = json.loads((run / "comparison.json").read_text())
    return rows, payload["ranking"], payload["seeds"]


#: two optimizers to the test seeds (tuning, curve and refit runs; seconds)
FINAL = [
    "--problem", "moons", "--problem-option", "n_samples=200", "--optimizers", "sgd,adam",
    "--batch-size", "16", "--steps", "40", "--lr-trials", "2", "--seeds", "2", "--max-seeds",
    "2", "--landscapes", "none", "--no-progress", "--workers", "1",
]  # fmt: skip


def test_the_results_are_the_same_bit_for_bit_with_and_without_the_report(tmp_path, capsys):
    """Drawing the report (or not) changes no run, score or verdict: every value of
    trials.csv (as written, repr-exact) but the clocks, the ranking and the seeds."""
    runs = {}
    for flags in ([], ["--report"]):
        name = "drawn" if flags else "plain"
        code, _out, err = run_cli(
            ["compare", *FINAL, *flags, "--runs-dir", tmp_path, "--name", name], capsys
        )
        assert code == 0, err
        runs[name] = _results(tmp_path / name)
    assert runs["plain"] == runs["drawn"]
    assert any(r["test_accuracy"] for r in runs["plain"][0])  # (values, not empty rows)
