"""User code and long-running commands: ``sys.exit()`` in a problem file is a failing problem
like any other; a script without ``if __name__ == "__main__":`` still runs a comparison with
worker processes; a requested pause is a success; options that name nothing are refused. User
code cannot move, hold or pollute the run: a folder it changes to moves nothing, a thread it
leaves running does not keep the command, what it prints stays off ``--json``'s output, a
module next to the problem file imports, its own exception is not reworded, and faults in its
data and loader options are named with the problem, the split and the example."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from _models import run_cli

import descentlab

SRC = str(Path(descentlab.__file__).resolve().parents[1])  # the code under test, in a child
TINY = [
    "--optimizers", "sgd", "--batch-size", "16", "--steps", "4", "--tune-steps", "4",
    "--lr-trials", "2", "--seeds", "1", "--landscapes", "none", "--no-progress", "--no-report",
    "--workers", "1",
]  # fmt: skip

_PROBLEM = """
import sys
import torch
from torch import nn
{top}

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x):
        {forward}
        return self.lin(x)


def model():
    {factory}
    return Net()


def loss(out, y):
    {loss}
    return nn.functional.cross_entropy(out, y)


def make():
    {function}
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 2, generator=g)
    y = (x[:, 0] > 0).long()
    return {{"model": model, "data": {{"x_train": x[:40], "y_train": y[:40],
            "x_test": x[40:], "y_test": y[40:]}}, "loss": loss}}
"""
EXIT = "sys.exit(3)"
PLACES = ["top", "function", "factory", "forward", "loss"]


def _problem_file(tmp_path: Path, place: str) -> Path:
    fields = {p: ("pass" if p != "top" else "") for p in PLACES}
    fields[place] = EXIT
    path = tmp_path / f"exits_in_{place}.py"
    path.write_text(textwrap.dedent(_PROBLEM).format(**fields))
    return path


@pytest.mark.parametrize("place", PLACES)
def test_a_problem_that_calls_sys_exit_is_a_failing_problem(place, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _problem_file(tmp_path, place)
    argv = ["compare", "--problem", f"{path}:make", *TINY, "--runs-dir", tmp_path / "runs"]
    code, _out, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("descentlab: error: "), lines[0]
    assert "sys.exit(3)" in lines[0], lines[0]


def test_lectures_only_empty_is_refused(tmp_path, capsys):
    code, _out, err = run_cli(["lectures", "--only", "", "--out", tmp_path / "book"], capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and re.search(r"--only must name at least one lecture", lines[0]), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.process
@pytest.mark.parametrize("host", ["", "  "])
def test_playground_empty_host_is_refused(host, tmp_path):
    """In a child process with a time limit: the bug served (on every interface) for ever."""
    env = {**os.environ, "PYTHONPATH": SRC}
    argv = [sys.executable, "-m", "descentlab", "playground", "--no-browser", "--host", host]
    err = tmp_path / "stderr"
    with open(err, "w") as fh:  # a file, not a pipe: a server's children cannot hold it open
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=fh,
                                start_new_session=True)  # fmt: skip
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            pytest.fail("playground --host '' started serving")
    text = err.read_text()
    lines = text.strip().splitlines()
    assert code == 2, text
    assert len(lines) == 1 and "--host must be an address to bind" in lines[0], text


# ------------------------------------------------------------------------------------------
# a script without ``if __name__ == "__main__":``


def _script(tmp_path: Path, body: str, timeout: float = 600) -> subprocess.CompletedProcess:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


@pytest.mark.process
def test_unguarded_main_tells_top_level_code_from_the_guarded_block(tmp_path):
    proc = _script(
        tmp_path,
        """
        from descentlab._osutil import unguarded_main

        def called():
            return unguarded_main()

        print("top", unguarded_main(), called())
        if __name__ == "__main__":
            print("guarded", unguarded_main(), called())
        if "__main__" == __name__:
            print("reversed", unguarded_main())
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == [
        "top True True",
        "guarded False False",
        "reversed False",
    ]


@pytest.mark.process
def test_a_script_without_the_main_guard_runs_worker_processes(tmp_path):
    proc = _script(
        tmp_path,
        """
        import math
        from descentlab.engine.procpool import map_in_processes

        futures = map_in_processes(math.sqrt, [(4.0,), (9.0,), (16.0,)], workers=2)
        print([f.result() for f in futures])
        """,
        timeout=180,  # without the fix the pool's workers fail to start and it can hang
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[2.0, 3.0, 4.0]"


@pytest.mark.process
@pytest.mark.slow
def test_the_docs_compare_example_runs_as_a_script_without_the_guard(tmp_path):
    """docs/compare.md's example (once the README's), its spec made tiny, pasted into
    a script as it is."""
    readme = (Path(__file__).resolve().parents[1] / "docs" / "compare.md").read_text("utf-8")
    block = re.search(r"```python\n(from descentlab\.experiments\.compare import .*?)```", readme,
                      re.S).group(1)  # fmt: skip
    assert "__main__" not in block  # the example has no guard, and need not
    tiny = (
        'CompareSpec(problem="moons", problem_options={"n_samples": 120}, model="mlp", '
        'model_options={"hidden": 4}, optimizers=["sgd", "adam"], batch_size=16, steps=4, '
        "tune_steps=4, lrs_per_optimizer=2, refine=False, seeds=1, landscapes=())"
    )
    code = re.sub(r"CompareSpec\(.*?\), \"runs\"\)", f'{tiny}, "runs", workers=2)', block)
    assert code != block
    proc = _script(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    assert "SGD" in proc.stdout and "Adam" in proc.stdout
    assert (tmp_path / "copy.html").is_file()


# ------------------------------------------------------------------------------------------
# an unreachable Ray head


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_unreachable_ray_head_is_one_line_within_the_stated_timeout(scheme, monkeypatch):
    import time

    from descentlab.experiments import ray_runner
    from descentlab.experiments.runner import BackendUnavailable

    monkeypatch.setattr(ray_runner, "CONNECT_TIMEOUT", 2.0)
    address = f"{scheme}127.0.0.1:{_closed_port()}"
    t0 = time.monotonic()
    with pytest.raises(BackendUnavailable, match=r"cannot reach the Ray head at "):
        ray_runner._reachable(address)
    assert time.monotonic() - t0 < 5.0
    ray_runner._reachable("auto")  # Ray's own lookup: not probed here


# ------------------------------------------------------------------------------------------
# user code cannot move, hold or pollute the run

_MISBEHAVES = """
import os
import threading
import time

import torch
from torch import nn
from torch.utils.data import Dataset


def _xy(n=60):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, generator=g)
    return x, (x[:, 0] > 0).long()


class Raises(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x):
        raise ValueError("the model's own words")


def plain(model=lambda: nn.Linear(2, 2)):
    x, y = _xy()
    return {"model": model, "data": {"x_train": x[:40], "y_train": y[:40], "x_test": x[40:],
                                     "y_test": y[40:]}}


def moves(where):
    os.chdir(where)
    return plain()


def holds():
    threading.Thread(target=time.sleep, args=(3600,), name="user-poller").start()
    print("hello from the problem function")
    return plain()


def helps():
    import misbehaves_helper

    return misbehaves_helper.made()


def raises():
    return plain(Raises)


def one_member():
    made = plain(lambda: nn.Linear(2, 3))
    made["data"]["y_train"][5] = 2
    return made


class Pairs(Dataset):
    def __init__(self, interrupt=None):
        self.x, self.y = _xy()
        self.targets, self.interrupt = self.y, interrupt

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        if i == self.interrupt:
            raise KeyboardInterrupt("the dataset's own")
        return self.x[i], self.y[i]


def _boom(worker_id):
    raise RuntimeError("no worker today")


def loader(workers=0, interrupt=None, **options):
    if options.pop("init_fails", False):
        options["worker_init_fn"] = _boom
    return {"model": lambda: nn.Linear(2, 2), "n_classes": 2,
            "data": {"train": Pairs(interrupt), "test": Pairs()},
            "loader": {"num_workers": workers, **options}}
"""


def _misbehaves(folder: Path) -> Path:
    (folder / "misbehaves.py").write_text(_MISBEHAVES)
    (folder / "misbehaves_helper.py").write_text(
        "import misbehaves\n\n\ndef made():\n    return misbehaves.plain()\n"
    )
    return folder / "misbehaves.py"


@pytest.fixture
def misbehaves(tmp_path, monkeypatch):
    """A problem file of user code that misbehaves, with a module next to it; run as the
    program runs it (its interrupts watched: a KeyboardInterrupt without Ctrl-C is user
    code's)."""
    from descentlab import _usercode

    monkeypatch.setitem(_usercode._state, "watching", True)
    monkeypatch.setitem(_usercode._state, "interrupted", False)
    return _misbehaves(tmp_path)


def _train(problem: str, *more: str) -> list[str]:
    return ["train", "--problem", problem, "--steps", "3", "--batch-size", "8",
            "--no-progress", *more]  # fmt: skip


def test_a_problem_function_that_changes_folder_moves_nothing(misbehaves, tmp_path, capsys,
                                                              monkeypatch):  # fmt: skip
    """``os.chdir`` in the problem function moved the store (the relative --runs-dir was
    resolved after it ran), with no word."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(tmp_path)
    argv = _train("misbehaves.py:moves", "--problem-option", f"where={str(elsewhere)!r}",
                  "--runs-dir", "r")  # fmt: skip
    with pytest.warns(RuntimeWarning) as seen:
        code, _out, err = run_cli(argv, capsys)
    assert code == 0, err
    assert (tmp_path / "r" / "descentlab.sqlite").is_file()
    assert list(elsewhere.iterdir()) == [] and Path.cwd() == tmp_path
    said = [str(w.message) for w in seen if "changed the working folder" in str(w.message)]
    assert len(said) == 1 and str(elsewhere) in said[0] and str(tmp_path) in said[0], said


@pytest.mark.process
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
@pytest.mark.parametrize(
    "case",
    [
        # (the command printed its result and never exited)
        "user/train/thread",
        # (standard output held the print, then the JSON: not JSON)
        "user/train/prints-json",
    ],
)
def test_user_code_does_not_hold_or_pollute_the_command(case):
    """A problem function that leaves a thread running (the command ends, naming it once),
    or prints under --json (standard output is the JSON alone): cases of the campaign,
    scripts/process_faults.py, run as the program."""
    from _faults import held

    ok, said = held(case)
    assert ok, said


def test_a_module_next_to_the_problem_file_imports(misbehaves, tmp_path, capsys):
    code, _out, err = run_cli([*_train(f"{misbehaves}:helps"), "--runs-dir", tmp_path / "r"],
                              capsys)  # fmt: skip
    assert code == 0, err


class _Raises(torch.nn.Module):
    def forward(self, x):
        raise ValueError("the model's own words")


def test_a_users_own_exception_is_not_reworded_as_a_shape_problem():
    """A model's own ValueError at a rank's first batch (the probe that each process of a
    sharded run makes) read "model 'xor model' cannot train on a batch of inputs of shape
    (16, 2): ..."; a torch op's refusal still reads so (tests/test_engine.py)."""
    from descentlab.engine.modelling import probe_model

    x, y = torch.zeros(16, 2), torch.zeros(16, dtype=torch.long)
    with pytest.raises(ValueError) as caught:
        probe_model(_Raises(), torch.nn.functional.cross_entropy, ("xor model", "ce"), x, y)
    assert str(caught.value) == "the model's own words"


LOADER_FAULTS = {
    # (torch's wording, naming no problem, split or option)
    "timeout -1": ("loader", ["timeout=-1", "workers=1"], "loader timeout must be"),
    # (ExceptionWrapper.reraise (.../torch/_utils.py:794))
    "worker_init_fn raises": ("loader", ["init_fails=True", "workers=1"],
                              "worker_init_fn failed in the train split's worker 0: RuntimeError: "
                              "no worker today in _boom"),
    # (a worker that swallowed it: "ConnectionResetError" at another batch)
    "KeyboardInterrupt at example 37, 2 workers": (
        "loader", ["interrupt=37", "workers=2"],
        "the train dataset's example 37 failed: it raised KeyboardInterrupt: the dataset's own"),
    # (scikit-learn's "The least populated classes in y have only 1 member")
    "a class of one member": ("one_member", [], "class 2 has 1 example in the training split"),
}  # fmt: skip


@pytest.mark.process
@pytest.mark.parametrize("fault", list(LOADER_FAULTS))
def test_a_fault_in_the_users_data_is_named_with_the_problem(fault, misbehaves, tmp_path,
                                                              capsys):  # fmt: skip
    function, options, says = LOADER_FAULTS[fault]
    more = [x for o in options for x in ("--problem-option", o)]
    argv = [*_train(f"{misbehaves}:{function}"), *more, "--steps", "20", "--runs-dir",
            tmp_path / "r"]  # fmt: skip
    code, _out, err = run_cli(argv, capsys)
    errors = [line for line in err.splitlines() if line.startswith("descentlab: error:")]
    assert code == 2 and len(errors) == 1, err
    assert "problem 'misbehaves'" in errors[0] and says in errors[0], errors[0]
