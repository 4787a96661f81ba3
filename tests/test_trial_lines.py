"""Progress inside a long trial (descentlab.engine.trial_lines): a comparison on the console
prints each long trial's steps done, their rate and the time left -- the engine's runs (alone
and in a vectorized pass) and your own code's (its optimizer's steps, its reports) -- at most
one line every few seconds (fewer in a log), from worker processes too, and nothing a trial
computes changes. The trials here are tiny; a slow clock makes them long."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import re
import textwrap
from pathlib import Path

import pytest

from descentlab.cli import main
from descentlab.engine import trial_lines
from descentlab.engine.trial_lines import EVERY, StepLines, compiling

OBJECTIVE = """
import torch
from descentlab import Score

DATA = torch.Generator().manual_seed(0)
X = torch.rand(64, 2, generator=DATA)
Y = X @ torch.tensor([[2.0], [-1.0]])


def mse(model):
    return ((model(X) - Y) ** 2).mean()


def fit(run):  # reports every step
    torch.manual_seed(run.seed)
    model = torch.nn.Linear(2, 1)
    opt = run.optimizer(model.parameters())
    for step in range(1, run.steps + 1):
        opt.zero_grad()
        loss = mse(model)
        loss.backward()
        opt.step()
        run.report(step, loss.item())
    with torch.no_grad():
        return Score(mse(model).item(), maximize=False, name="mse")
"""

#: a line of a trial's progress: steps done of the total, the rate, the time left
LINE = re.compile(r"^  (worker \d+: )?(.+): step (\d+)/(\d+) \(\d+%\), [\d.]+ steps/s, .+ left")

#: a trial as its lines name it
TRIAL = r"(tune/sgd/holdout|curve/sgd|refit/sgd) lr=\S+ seed \d+"

SHORT = "--optimizers sgd --fixed-lr sgd --steps 6 --seeds 2 --max-seeds 2"
MOONS = "--problem moons --problem-option n_samples=200 --landscapes none " + SHORT


@pytest.fixture
def slow(monkeypatch, tmp_path):
    """A clock 7 s further at every reading (a line is due every 30 s in a log), the user's
    file in the working folder."""
    ticks = itertools.count(0.0, 7.0)
    monkeypatch.setattr(trial_lines, "CLOCK", lambda: next(ticks))
    (tmp_path / "mine.py").write_text(textwrap.dedent(OBJECTIVE))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _compare(args: str, runs: Path, *, progress: bool = True) -> tuple[str, dict, str]:
    """``descentlab compare ARGS`` in this process: its standard error, its answer and its
    trials' table."""
    err = io.StringIO()
    more = [] if progress else ["--no-progress"]
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["compare", *args.split(), "--workers", "1", "--runs-dir", str(runs),
                     "--no-report", *more])  # fmt: skip
    assert code == 0, err.getvalue()
    (found,) = runs.glob("*/comparison.json")
    table = found.with_name("trials.csv").read_text()
    return err.getvalue(), json.loads(found.read_text()), table


def _scores(table: str) -> list[str]:
    """The trials' table without its seconds (what the trials computed)."""
    rows = [r.split(",") for r in table.splitlines()]
    keep = [i for i, h in enumerate(rows[0]) if "second" not in h and "time" not in h]
    return [",".join(r[i] for i in keep) for r in rows]


@pytest.mark.parametrize(
    ("args", "trial"),
    [
        ("--objective mine.py:fit " + SHORT, TRIAL),
        (MOONS + " --one-at-a-time", TRIAL),
        (MOONS, r"\d runs of mlp \(vmap\)"),
    ],
    ids=["your-code", "engine-alone", "engine-vectorized"],
)
def test_a_long_trial_prints_its_steps_rate_and_time_left_and_computes_the_same(slow, args, trial):
    runs = slow / "runs"  # (given whole: the console prints it from the working folder)
    err, answer, table = _compare(args, runs)
    lines = [m for ln in err.splitlines() if (m := LINE.match(ln))]
    assert lines and all(re.fullmatch(trial, m.group(2)) for m in lines), err
    assert all(m.group(4) == "6" and 0 < int(m.group(3)) <= 6 for m in lines), err
    if "objective" in args:  # (its reports, said with the steps)
        assert any(re.search(r"reported [\d.e-]+ at step \d", ln) for ln in err.splitlines())
    assert f"comparing in runs{'/'}" in err and str(slow) not in err, err
    said, quiet, quiet_table = _compare(args, slow / "quiet", progress=False)
    assert "steps/s" not in said, said
    assert answer["recommendation"] == quiet["recommendation"]
    assert _scores(table) == _scores(quiet_table)  # (bit for bit: the values as stored)


@pytest.mark.parametrize("tty", [True, False])
def test_lines_are_rate_limited_fewer_in_a_log(tty):
    ticks = itertools.count(0.0, 0.1)
    out = io.StringIO()
    lines = StepLines(1000, 0, "t", clock=lambda: next(ticks), tty=tty, out=out)
    for _ in range(1000):  # 100 s of steps
        lines.update()
    said = out.getvalue().splitlines()
    most = 100 / EVERY["tty" if tty else "log"]  # (a line every 5 s on a terminal, 30 s in a log)
    assert most - 1 <= len(said) <= most, said
    assert said[-1].startswith("  t: step ") and "10 steps/s" in said[-1], said


def test_a_first_step_that_takes_long_is_said_and_a_continued_trial_counts_its_own_rate():
    ticks = iter([0.0, 110.0, 140.0])
    out = io.StringIO()
    lines = StepLines(600, 0, "t", clock=lambda: next(ticks), tty=False, out=out)
    lines.update()
    assert "step 1/600" in out.getvalue() and "the first step took 1 min 50 s" in out.getvalue()
    ticks = iter([0.0, 40.0])
    out = io.StringIO()
    lines = StepLines(600, 300, "t", clock=lambda: next(ticks), tty=False, out=out)
    lines.update(100)  # (continued from step 300: 100 steps in 40 s here)
    assert "step 400/600 (67%), 2.5 steps/s, 1 min 20 s left" in out.getvalue(), out.getvalue()


def test_torch_compile_in_a_trial_says_that_it_compiles(monkeypatch):
    import torch

    calls = []
    monkeypatch.setattr(torch, "compile", lambda *a, **k: calls.append((a, k)) or a[0])
    stub = torch.compile
    out = io.StringIO()
    lines = StepLines(10, 0, "t", tty=False, out=out)
    model = torch.nn.Linear(1, 1)
    with compiling(lines):
        assert torch.compile(model, backend="eager") is model
        torch.compile(model)
    assert torch.compile is stub and len(calls) == 2 and calls[0][1] == {"backend": "eager"}
    said = out.getvalue().splitlines()
    assert said == ["  t: torch.compile: its first steps compile the model (can take minutes; "
                    "the step lines follow)"]  # fmt: skip


@pytest.mark.process
def test_worker_processes_print_their_trials_lines(slow, capfd):
    args = f"compare --objective mine.py:fit {SHORT} --runs-dir runs --no-report"
    assert main([*args.split(), "--workers", "2"]) == 0
    err = capfd.readouterr().err
    workers = {m.group(1) for ln in err.splitlines() if (m := LINE.match(ln))}
    assert workers and all(w and w.startswith("worker ") for w in workers), err
