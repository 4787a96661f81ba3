"""User code that fails or ends the command: one line naming the user's function
and what it did, never a traceback or a silent exit; the run folder kept where trials had
finished and taken back where nothing was done."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from _models import one_line as _one_line
from _models import run_cli

import descentlab
from descentlab.cli import user_error

SRC = str(Path(descentlab.__file__).resolve().parents[1])

_OPT = """
import os, sys, torch
CALLS = [0]
MODE = {mode!r}


class Opt(torch.optim.SGD):
    def __init__(self, params, lr=0.1):
        if MODE == "init_raise":
            raise RuntimeError("boom in init")
        if MODE == "init_exit":
            sys.exit(3)
        super().__init__(params, lr=lr)

    def step(self, closure=None):
        CALLS[0] += 1
        if MODE == "step_raise" and CALLS[0] > {late}:
            raise RuntimeError("boom in step")
        if MODE == "step_exit" and CALLS[0] > {late}:
            os._exit(8)
        return super().step(closure)

    def state_dict(self):
        if MODE == "state_dict_raise":
            raise RuntimeError("boom in state_dict")
        return super().state_dict()
"""

_PROBLEM = """
import os, torch
from torch import nn
MODE = {mode!r}
N = [0]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x):
        N[0] += 1
        if MODE == "forward_exit" and N[0] > 40:
            os._exit(6)
        return self.lin(x)


def make():
    if MODE == "keyboard":
        raise KeyboardInterrupt
    if MODE == "base":
        raise BaseException("base!")
    if MODE == "make_exit":
        os._exit(4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 2, generator=g)
    y = (x[:, 0] > 0).long()
    return {{"model": Net, "data": {{"x_train": x[:40], "y_train": y[:40], "x_test": x[40:],
            "y_test": y[40:]}}, "loss": nn.functional.cross_entropy}}
"""

TINY = [
    "--batch-size", "16", "--steps", "8", "--tune-steps", "8", "--lr-trials", "2", "--seeds",
    "1", "--landscapes", "none", "--no-progress", "--no-report", "--workers", "1",
    "--one-at-a-time",
]  # fmt: skip
MOONS = ["--problem", "moons", "--problem-option", "n_samples=120"]


def _modules(tmp_path: Path, opt: str = "", problem: str = "", late: int = 30) -> None:
    (tmp_path / "uopt.py").write_text(textwrap.dedent(_OPT.format(mode=opt, late=late)))
    (tmp_path / "uprob.py").write_text(textwrap.dedent(_PROBLEM.format(mode=problem)))


def _completed(runs: Path) -> int:
    (db,) = runs.glob("*/descentlab.sqlite")
    with sqlite3.connect(db) as c:
        return c.execute("select count(*) from runs where status = 'completed'").fetchone()[0]


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("uopt", "uprob"):
        sys.modules.pop(name, None)
    yield tmp_path
    for name in ("uopt", "uprob"):
        sys.modules.pop(name, None)


# ------------------------------------------------------------------------------------------
# in this process: errors


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("init_raise", ["failed when built", "RuntimeError: boom in init", "Opt.__init__"]),
        ("state_dict_raise", ["RuntimeError: boom in state_dict", "Opt.state_dict"]),
    ],
)
def test_a_third_party_optimizer_that_raises_is_one_line(here, capsys, mode, words):
    _modules(here, opt=mode)
    argv = ["compare", *MOONS, *TINY, "--optimizer", "my=uopt.Opt", "--runs-dir", "runs"]
    _one_line(*run_cli(argv, capsys)[::2], *words)
    assert not (here / "runs").exists()  # refused before the folder


def test_a_step_that_raises_after_trials_ran_keeps_them(here, capsys):
    _modules(here, opt="step_raise", late=30)
    argv = ["compare", *MOONS, *TINY, "--optimizer", "my=uopt.Opt", "--runs-dir", "runs"]
    _one_line(*run_cli(argv, capsys)[::2], "trial", "RuntimeError: boom in step", "Opt.step")
    assert _completed(here / "runs") >= 1


def test_a_step_that_raises_in_every_trial_stops_with_the_failures_stored(here, capsys):
    """Every trial fails alike: one line, and the failed trials kept with their causes (a
    failed trial is a result, not a half-written one)."""
    _modules(here, opt="step_raise", late=10)
    argv = ["compare", *MOONS, *TINY, "--optimizer", "my=uopt.Opt", "--runs-dir", "runs"]
    _one_line(*run_cli(argv, capsys)[::2], "every", "failed the same way", "boom in step")
    (store,) = (here / "runs").glob("*/descentlab.sqlite")
    with contextlib.closing(sqlite3.connect(store)) as db:
        causes = [m for (m,) in db.execute("SELECT message FROM runs WHERE status = 'failed'")]
    assert causes and all("boom in step" in m for m in causes), causes


def test_torch_adam_with_one_beta_is_one_line(here, capsys):
    argv = ["compare", *MOONS, *TINY, "--optimizer", "torch.optim.Adam", "--runs-dir", "runs",
            "--hyper", "torch.Adam.betas=(0.9,)"]  # fmt: skip
    _one_line(*run_cli(argv, capsys)[::2], "IndexError", "betas")


def test_a_problem_function_raising_base_exception_is_one_line(here, capsys):
    _modules(here, problem="base")
    argv = ["compare", "--problem", "uprob:make", "--optimizers", "sgd", *TINY, "--runs-dir",
            "runs"]  # fmt: skip
    _one_line(*run_cli(argv, capsys)[::2], "uprob:make", "BaseException: base!", "make (")


def test_out_of_memory_is_one_line():
    try:
        np.empty(10**16)
    except MemoryError as exc:  # NumPy's _ArrayMemoryError
        assert user_error(exc).startswith("out of memory: Unable to allocate")
    torch_text = (
        "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
        "memory: you tried to allocate 16000000000 bytes. Error code 12"
    )
    line = user_error(RuntimeError(torch_text))
    assert line.startswith("out of memory: DefaultCPUAllocator: can't allocate memory"), line
    assert user_error(RuntimeError("shapes do not match")) is None  # still a bug


def test_resume_of_a_run_whose_config_is_not_a_mapping_is_one_line(tmp_path, capsys):
    runs = tmp_path / "runs"
    code, _out, err = run_cli(["train", "--problem", "moons", "--problem-option",
                               "n_samples=80", "--steps", "2", "--no-progress", "--runs-dir",
                               runs], capsys)  # fmt: skip
    assert code == 0, err
    (db,) = runs.rglob("*.sqlite")
    with sqlite3.connect(db) as c:
        c.execute("update runs set config = '[]', status = 'interrupted'")
    code, _out, err = run_cli(["train", "--resume", "1", "--runs-dir", runs], capsys)
    _one_line(code, err, "run config must be a mapping", "list")


# ------------------------------------------------------------------------------------------
# the program itself (a child process): exits and KeyboardInterrupt raised by user code


def _program(here: Path, argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{here}", **env}
    proc = subprocess.run([sys.executable, "-m", "descentlab", *argv], cwd=here, env=env,
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=_sigint_default)  # fmt: skip
    return proc.returncode, proc.stderr


def _sigint_default() -> None:
    """In the child before exec: SIGINT at its default, as a shell starts a command (an
    ignored SIGINT would be inherited, and the program could not tell a Ctrl-C from user
    code raising KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.parametrize(
    ("opt", "problem", "words", "kept"),
    [
        ("init_exit", "", ["it called sys.exit(3)", "Opt.__init__"], False),
        ("step_exit", "", ["it called os._exit(8)", "Opt.step", "trial"], True),
        ("", "make_exit", ["it called os._exit(4)", "make ("], False),
        ("", "keyboard", ["uprob:make", "it raised KeyboardInterrupt"], False),
    ],
)
def test_user_code_that_ends_the_program_is_one_line(here, opt, problem, words, kept):
    _modules(here, opt=opt, problem=problem)
    which = ["--optimizer", "my=uopt.Opt", *MOONS] if opt else ["--optimizers", "sgd"]
    if problem:
        which += ["--problem", "uprob:make"]
    code, err = _program(here, ["compare", *which, *TINY, "--runs-dir", "runs"], {})
    _one_line(code, err, *words)
    assert (here / "runs").exists() == kept, err
    if kept:
        assert _completed(here / "runs") >= 1


@pytest.mark.process
@pytest.mark.slow
def test_a_model_that_ends_its_worker_in_some_trials_fails_those_trials(here):
    """The network's forward calls os._exit(6) after 40 calls in a process: each trial that
    reaches it ends its worker, which is failed with the cause stored and said in one line
    (user code's line named); a new worker trains the rest, and the comparison finishes."""
    _modules(here, problem="forward_exit")
    which = ["--optimizers", "sgd", "--problem", "uprob:make"]
    code, err = _program(here, ["compare", *which, *TINY, "--runs-dir", "runs"], {})
    lines = err.strip().splitlines()
    said = [ln for ln in lines if "trial(s) failed" in ln]
    assert code == 0 and len(said) == 1, err
    assert "it called os._exit(6) in Net.forward" in said[0], said
    assert "Traceback" not in err, err
    assert _completed(here / "runs") >= 1


@pytest.mark.process
@pytest.mark.slow
def test_ctrl_c_while_the_command_starts_is_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC}
    argv = [sys.executable, "-m", "descentlab", "compare", *MOONS, *TINY, "--runs-dir",
            str(tmp_path / "runs")]  # fmt: skip
    for delay in (0.3, 0.8):
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, preexec_fn=_sigint_default)  # fmt: skip
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        assert proc.returncode in (130, 2) or proc.returncode == -signal.SIGINT, err
