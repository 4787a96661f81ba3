"""Property: every numeric option of every subcommand, given any value -- negative,
zero, NaN, infinite, huge, fractional where a count is wanted, not a number at all -- ends the
command with exit 0 or 2, at most one line on stderr (``descentlab...: error: ...``, no
traceback), and nothing left in the folder it ran in.

The commands run in-process (:func:`descentlab.cli.main`) in an empty folder. Each stops where
its real work would start: the engine's ``train``/``resume``, ``compare``, the landscape races,
an experiment's run and the playground's server are replaced by a function that raises
:class:`_Reached` -- every value that got that far was accepted by the checks made up front,
which is the part under test. ``convarith`` only prints, and runs for real.

Lean by design: a fixed number of examples with a time budget of about a minute in all.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from descentlab.cli import main


class _Reached(Exception):
    """The command got past its checks to its real work."""


def _reached(*_args, **_kwargs):
    raise _Reached


# (subcommand argv before the option, option) -- the base arguments are valid and small
BASE = {
    "train": ["train", "--problem", "moons", "--model", "mlp", "--no-progress", "--runs-dir",
              "runs"],
    "compare": ["compare", "--problem", "moons", "--optimizers", "sgd", "--no-progress",
                "--no-report", "--runs-dir", "runs"],
    "landscape": ["landscape", "--function", "ravine", "--optimizers", "sgd", "--no-gif",
                  "--out", "out"],
    "convarith": ["convarith", "bottleneck"],
    "experiment": ["experiment", "bias_variance", "--quick", "--out", "out"],
    "playground": ["playground", "--no-browser"],
}  # fmt: skip
OPTIONS = {
    "train": ["--split-seed", "--val-fraction", "--lr", "--weight-decay", "--momentum",
              "--batch-size", "--steps", "--epochs", "--seed", "--label-smoothing", "--mixup",
              "--cutmix", "--input-noise", "--weight-noise", "--early-stopping", "--min-delta",
              "--eval-every", "--checkpoint-every", "--resume", "--until-step", "--threads"],
    "compare": ["--batch-size", "--steps", "--tune-steps", "--tune-seeds", "--lr-trials",
                "--cv", "--seeds", "--seed", "--target-accuracy", "--eval-every",
                "--val-fraction", "--split-seed", "--workers", "--threads"],
    "landscape": ["--steps", "--frames", "--lr", "--start"],
    "convarith": ["--in", "--out", "--reduce", "--kernel"],
    "experiment": ["--seed", "--threads"],
    "playground": ["--port"],
}  # fmt: skip
CASES = [(cmd, opt) for cmd, opts in OPTIONS.items() for opt in opts]

SPECIAL = ["-1", "0", "1", "nan", "-nan", "inf", "-inf", "1e308", "1e309", "-1e-320", "0.5",
           "1e30", str(2**63), str(-(2**63) - 1), "10" * 40, "abc", "", " ", "1,2", "0x10",
           "True", "None", "1_000", "１"]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(SPECIAL),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=6),
)


def _argv(cmd: str, opt: str, value: str) -> list[str]:
    base = list(BASE[cmd])
    if cmd == "train":
        if opt == "--resume":  # continues a stored run: no run options beside it
            base = ["train", "--no-progress", "--runs-dir", "runs"]
        elif opt != "--epochs":
            base += ["--steps", "3"]
        if opt in ("--min-delta",):
            base += ["--early-stopping", "2"]
    return [*base, f"{opt}={value}"]  # '=': a value that begins with '-' stays the value


@pytest.fixture(scope="module")
def patched():
    mp = pytest.MonkeyPatch()
    import descentlab.book.experiments as lectures
    import descentlab.engine.run as run
    import descentlab.experiments.compare.running as running
    import descentlab.experiments.multi as multi
    import descentlab.problems.trajectories as trajectories

    mp.setattr(run, "train", _reached)
    mp.setattr(run, "resume", _reached)
    mp.setattr(running, "compare", _reached)
    mp.setattr(multi, "compare_many", _reached)
    mp.setattr(trajectories, "races", _reached)
    mp.setattr(lectures, "run", _reached)
    try:
        import descentlab.playground.app as app

        mp.setattr(app, "serve", _reached)
    except ImportError:
        pass
    yield
    mp.undo()


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=st.sampled_from(CASES), value=VALUES)
@example(case=("compare", "--lr-trials"), value=str(2**63))  # was an IndexError traceback
@example(case=("compare", "--lr-trials"), value="100000")  # was seconds of grid building
def test_numeric_options_exit_0_or_2_with_one_line_and_leave_nothing(
    patched, tmp_path_factory, capsys, case, value
):
    cmd, opt = case
    root = tmp_path_factory.mktemp("cwd")
    argv = _argv(cmd, opt, value)
    threads = torch.get_num_threads()
    here = os.getcwd()
    os.chdir(root)
    try:
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
        except _Reached:
            code = 0
    finally:
        os.chdir(here)
        torch.set_num_threads(threads)
    _out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code in (0, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        assert len(lines) == 1, (argv, err)
        assert lines[0].startswith("descentlab") and ": error: " in lines[0], (argv, err)
    else:
        assert lines == [], (argv, err)
    assert _tree(root) == [], (argv, _tree(root))
