"""A process that trains with descentlab's optimizers does not import torch._dynamo (~1.1 s
of start-up): torch's Optimizer methods that are wrapped in torch._disable_dynamo are called
unwrapped while nothing can be compiling, and wrapped once torch._dynamo is loaded."""

from __future__ import annotations

import functools
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from descentlab.optim.optimizer import _torch_method

# every test here starts a process (`make check` runs the others)
pytestmark = pytest.mark.process

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_a_run_trained_alone_never_imports_torch_dynamo(tmp_path):
    script = (
        "import sys\n"
        "from descentlab.engine.config import RunConfig\n"
        "from descentlab.engine.run import train\n"
        "from descentlab.store import Store\n"
        "cfg = RunConfig(problem='moons', problem_options={'n_samples': 100}, model='mlp',\n"
        "                optimizer='adam', steps=5, batch_size=16)\n"
        f"train(cfg, Store({str(tmp_path / 's.sqlite')!r}), progress=False)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]


def test_torch_methods_are_unwrapped_only_while_torch_dynamo_is_not_imported(monkeypatch):
    import torch._dynamo

    for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict"):
        wrapped = getattr(torch.optim.Optimizer, name)
        assert _torch_method(name) is wrapped
    monkeypatch.delitem(sys.modules, "torch._dynamo")
    for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict"):
        wrapped = getattr(torch.optim.Optimizer, name)
        assert _torch_method(name) is wrapped.__wrapped__
    # a method torch does not wrap is returned as it is
    assert _torch_method("__repr__") is torch.optim.Optimizer.__repr__


#: What printing help must not import: the training loop, the runners, the statistics, the
#: report, the lectures' experiments, the Ray backend (each costs start-up time, some a second)
NOT_FOR_HELP = (
    "descentlab.engine.run",
    "descentlab.engine.multirun",
    "descentlab.engine.vectorized",
    "descentlab.engine.checkpoint",
    "descentlab.experiments.trial",
    "descentlab.experiments.runner",
    "descentlab.experiments.runners",
    "descentlab.experiments.ray_runner",
    "descentlab.experiments.multi",
    "descentlab.experiments.compare.running",
    "descentlab.experiments.compare.stats",
    "descentlab.report",
    "descentlab.book",
    "descentlab.playground",
    "scipy.stats",
    "sklearn",
    "matplotlib",
    "ray",
    "triton",
    "torch._dynamo",
)

_HELP_SCRIPT = """
import contextlib, io, json, sys
from descentlab.cli import build_parser, main
subcommands = list(build_parser()._subparsers._group_actions[0].choices)
for argv in (["--help"], *[[name, "--help"] for name in subcommands]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(argv)
print(json.dumps({"subcommands": subcommands, "modules": sorted(sys.modules)}))
"""


def help_imports(src: str = SRC) -> dict:
    """The subcommands and every module imported after ``descentlab --help`` and each
    ``descentlab SUBCOMMAND --help`` ran in one fresh process."""
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", _HELP_SCRIPT], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_imports_only_what_it_needs():
    found = help_imports()
    assert {"compare", "train", "experiment", "report"} <= set(found["subcommands"])
    # ``experiment --help`` lists the lectures' experiments: the book's face, its experiments'
    # package and their shared module, none of the experiments themselves
    listing = {
        "descentlab.book",
        "descentlab.book.experiments",
        "descentlab.book.experiments._common",
    }
    loaded = [
        m
        for m in found["modules"]
        if any(m == x or m.startswith(x + ".") for x in NOT_FOR_HELP) and m not in listing
    ]
    assert not loaded, f"--help imported {loaded}"


def test_every_lecture_experiment_is_listed():
    from descentlab.book import experiments as lectures

    folder = Path(lectures.__file__).parent
    modules = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
    assert set(lectures.NAMES) == modules
    assert (
        lectures.get("information")
        is importlib.import_module(f"{lectures.__name__}.information").run
    )


#: What training one run on a user's regression problem must not import: each costs start-up
#: time (a second or more: sklearn with scipy.stats, DTensor's torch.distributed.tensor) and
#: none is used by it
NOT_FOR_TRAIN = ("sklearn", "scipy.stats", "optuna", "matplotlib", "torch.distributed.tensor")


def test_training_a_user_problem_imports_no_sklearn_optuna_matplotlib_or_dtensor(tmp_path):
    problem = Path(__file__).resolve().parents[1] / "examples" / "diabetes.py"
    script = (
        "import json, sys\n"
        "from descentlab.cli import main\n"
        f"code = main(['train', '--problem', {f'{problem}:make_problem'!r}, '--steps', '3',\n"
        f"             '--runs-dir', {str(tmp_path)!r}, '--no-progress'])\n"
        f"print(json.dumps([code, [m for m in {NOT_FOR_TRAIN!r} if m in sys.modules]]))\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [0, []], out.stderr[-2000:]


def test_the_warm_up_before_forking_workers_imports_no_sklearn():
    """The main process warms the engine up before it forks the comparison's workers; on data
    that need scikit-learn that import alone cost more than the warm-up (about a second)."""
    script = (
        "import sys\n"
        "from descentlab.experiments.runner import _warm_up\n"
        "_warm_up()\n"
        "print(sorted(m for m in ('sklearn', 'scipy.stats') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr[-2000:]


_GC_PROBE = """
import gc, json, os
import torch


def seen():
    with open(os.environ["GC_PROBE_OUT"], "a") as f:
        f.write(json.dumps([os.getpid(), gc.get_freeze_count(), gc.isenabled()]) + "\\n")


def model():
    seen()
    return torch.nn.Linear(2, 2)


def make():
    seen()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 2, generator=g)
    y = (x[:, 0] > 0).long()
    data = {"x_train": x[:40], "y_train": y[:40], "x_test": x[40:], "y_test": y[40:]}
    return {"model": model, "data": data, "loss": torch.nn.functional.cross_entropy}
"""


def test_the_command_and_its_ranks_start_with_the_loaded_modules_frozen(tmp_path):
    # importing torch makes about a million objects: each collection that the loading set
    # off walked them all, and every full collection after it (0.8 s of a command's 2.4 s of
    # CPU to print `train --help`); the command loads its modules with the collector paused
    # and freezes them, as does the server the --nproc ranks are forked from
    (tmp_path / "probe.py").write_text(_GC_PROBE)
    out = tmp_path / "seen"
    env = {**os.environ, "PYTHONPATH": SRC, "GC_PROBE_OUT": str(out)}
    for nproc in ("1", "2"):
        cmd = [sys.executable, "-m", "descentlab", "train", "--problem", "probe.py:make",
               "--steps", "2", "--batch-size", "8", "--runs-dir", str(tmp_path / nproc),
               "--nproc", nproc]  # fmt: skip
        r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
    seen = [json.loads(line) for line in out.read_text().splitlines()]
    assert len({pid for pid, _, _ in seen}) >= 3, seen  # the command, then its two ranks
    for _pid, frozen, enabled in seen:
        assert enabled and frozen > 100_000, seen


def test_spawned_workers_start_with_the_loaded_modules_frozen(tmp_path):
    # a spawned process unpickles its target before anything of ours runs: the engine's own
    # function imported torch and the engine with the collector walking their objects; the
    # target is now a function of a light module that loads them frozen -- in the process
    # pool of train_many and the book (map_in_processes), and in a comparison's workers where
    # they are spawned (several threads a trial, as here; CUDA)
    (tmp_path / "probe.py").write_text(_GC_PROBE)
    out = tmp_path / "seen"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + str(tmp_path), "GC_PROBE_OUT": str(out)}
    pool = (
        "from descentlab.engine.procpool import map_in_processes\nimport probe\n"
        "for f in map_in_processes(probe.seen, [()] * 2, workers=2):\n    f.result()\n"
    )
    run = functools.partial(subprocess.run, cwd=tmp_path, env=env, capture_output=True, text=True)
    r = run([sys.executable, "-c", pool])
    assert r.returncode == 0, r.stderr[-2000:]
    in_pool = [json.loads(line) for line in out.read_text().splitlines()]
    out.unlink()
    r = run([sys.executable, "-m", "descentlab", "compare", "--problem", "probe.py:make",
             "--optimizers", "sgd", "--budget", "1", "--max-seeds", "2", "--seeds", "2",
             "--steps", "2", "--batch-size", "8", "--threads", "2", "--workers", "2",
             "--no-report", "--runs-dir", str(tmp_path / "runs")])  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    in_compare = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(in_pool) == 2 and len(in_compare) >= 2, (in_pool, in_compare)
    for _pid, frozen, enabled in in_pool + in_compare:  # (the command's own start: frozen too)
        assert enabled and frozen > 100_000, (in_pool, in_compare)
