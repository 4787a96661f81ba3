"""The compiler bounded: no compiler or a failing one under ``fused=true`` is one line and exit
2 in every command; a compile past its timeout, stopped or killed takes its compiler (and what
that started) with it and leaves no temporary folder (one that a killed process left is swept
by the next); a link or an empty folder in a cached kernel's place is rebuilt, naming it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _models import run_cli

from descentlab import _native as N

ROOT = Path(__file__).resolve().parents[1]
SOURCE = 'extern "C" int dl_answer(void) { return 9; }'

#: a compiler that never ends: it writes its process id and that of a child it waits for
HANG = '#!/bin/sh\nsleep 3600 &\necho "$$ $!" > "$1.pids"\nwait\n'

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux processes"),
    pytest.mark.process,  # compilers of its own, hanging or failing
]


def _alive(pid: int) -> bool:
    from descentlab._osutil import pid_alive

    return pid_alive(pid)


def _gone(pids: list[int], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(_alive(p) for p in pids)


@pytest.fixture
def hanging(tmp_path, monkeypatch):
    """$CXX is a compiler that hangs; the kernel cache is fresh."""
    cxx = tmp_path / "hang-cxx.sh"
    cxx.write_text(HANG.replace('"$1.pids"', f'"{tmp_path}/compiler.pids"'))
    cxx.chmod(0o755)
    monkeypatch.setenv("CXX", str(cxx))
    monkeypatch.setenv("DESCENTLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(N, "_libraries", {})
    return tmp_path


def _pids(folder: Path) -> list[int]:
    deadline = time.monotonic() + 120
    while not (folder / "compiler.pids").exists():
        assert time.monotonic() < deadline, "the compiler never started"
        time.sleep(0.05)
    time.sleep(0.1)
    return [int(p) for p in (folder / "compiler.pids").read_text().split()]


def _temporaries(folder: Path) -> list[str]:
    return [p.name for p in (folder / "cache" / "fused").glob("build-*")]


def test_a_compile_past_its_timeout_is_one_line_and_leaves_nothing(hanging, monkeypatch):
    """(a compiler that hung was waited for for ever)"""
    monkeypatch.setenv("DESCENTLAB_COMPILE_TIMEOUT", "1")
    start = time.monotonic()
    with pytest.raises(N.KernelUnavailable, match=r"took longer than 1 s .*COMPILE_TIMEOUT"):
        N.load_library(SOURCE)
    assert time.monotonic() - start < 30
    assert _gone(_pids(hanging)), "the compiler or its child outlived the timeout"
    assert _temporaries(hanging) == []


def test_a_stop_during_a_compile_ends_it_at_once():
    """SIGTERM while the training loop's first step compiles: the loop's handler waited for a
    step boundary that the compile never reached (the command ran on, the compiler alive 15
    minutes later). Now: exit 143 in seconds, the compiler's session killed, no temporary
    folder (a case of scripts/process_faults.py)."""
    from _faults import held

    ok, said = held("compiler/train/hang-SIGTERM-launcher")
    assert ok, said


def test_a_killed_compile_takes_its_compiler_and_the_next_sweeps_its_folder(hanging):
    """kill -9 during a compile left the compiler running and its temporary folder in the
    cache for good."""
    code = f"from descentlab import _native; _native.load_library({SOURCE!r})"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    try:
        pids = _pids(hanging)
        assert _temporaries(hanging), "no temporary folder during the compile"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _gone(pids), "the compiler outlived the process that started it"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    os.environ.pop("CXX")  # (the fixture puts it back) the next process, a real compiler
    N._swept.clear()
    N.load_library(SOURCE)
    assert _temporaries(hanging) == []


@pytest.mark.parametrize("damage", ["link", "empty folder"])
def test_a_damaged_cached_kernel_is_rebuilt_naming_it(damage, tmp_path, monkeypatch):
    """A link or a folder in a cached kernel's place was never loaded and never repaired:
    ``fused=True`` then failed for good, naming a file the user never gave."""
    monkeypatch.setenv("DESCENTLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(N, "_libraries", {})
    lib = Path(N.cache_dir()) / f"k_{N._key(SOURCE, N.compiler())}.so"
    N.load_library(SOURCE)
    lib.unlink()
    if damage == "link":
        lib.symlink_to(lib.with_suffix(".json"))
    else:
        lib.mkdir()
    N._libraries.clear()
    with pytest.warns(RuntimeWarning, match=f"cached kernel {lib} failed verification"):
        N.load_library(SOURCE)
    assert lib.is_file() and not lib.is_symlink()


TRAIN = ["train", "--problem", "moons", "--steps", "2", "--optimizer", "sgd", "--hyper",
         "fused=true", "--no-progress"]  # fmt: skip
COMPARE = ["compare", "--problem", "moons", "--optimizers", "sgd", "--fixed-lr", "sgd",
           "--hyper", "sgd.fused=true", "--steps", "2", "--seeds", "1", "--landscapes", "none",
           "--no-report", "--no-progress", "--workers", "1"]  # fmt: skip


@pytest.mark.parametrize(
    ("command", "env", "says"),
    [
        ("train", {"PATH": "/nonexistent", "CXX": ""}, "needs a C++ compiler"),
        ("compare", {"PATH": "/nonexistent", "CXX": ""}, "needs a C++ compiler"),
        ("train", {"CXX": "/bin/false"}, "compiling a fused optimizer kernel failed (false"),
    ],
    ids=["no compiler-train", "no compiler-compare", "a failing compiler-train"],
)
def test_fused_true_without_a_working_compiler_is_one_line(command, env, says, tmp_path,
                                                           capsys, monkeypatch):  # fmt: skip
    """(a traceback ending in FusedUnavailable, exit 1)"""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DESCENTLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(N, "_libraries", {})
    argv = [*(TRAIN if command == "train" else COMPARE), "--runs-dir", str(tmp_path / "r")]
    code, _out, err = run_cli(argv, capsys)
    errors = [line for line in err.splitlines() if line.startswith("descentlab: error:")]
    assert code == 2 and len(errors) == 1 and says in errors[0], err
    assert "Traceback" not in err
