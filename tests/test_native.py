"""The one compile-and-cache layer (descentlab._native): every kernel generator goes through
it, a damaged entry of any of them is caught, and a library is loaded whole or not at all.

(The fault table over the optimizer step's kernel is in tests/test_faults.py.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from descentlab import _native as N

pytestmark = pytest.mark.skipif(N.compiler() is None, reason="needs a C++ compiler")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.process
def test_a_short_write_of_the_memory_file_never_maps_a_truncated_library(tmp_path):
    """``os.write`` may write fewer bytes than it is given (here: 4 KiB per call); a library
    mapped from a memory file holding part of it dies of SIGBUS at its first call."""
    script = textwrap.dedent(
        """
        import os
        from descentlab import _native
        real = os.write
        os.write = lambda fd, data: real(fd, bytes(data)[:4096])
        _, lib = _native.load_library('extern "C" int dl_answer(void) { return 42; }')
        os.write = real
        print(lib.dl_answer(), [os.fstat(fd).st_size for fd in _native._memfds])
        """
    )
    env = {**os.environ, "DESCENTLAB_CACHE": str(tmp_path), "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    answer, sizes = proc.stdout.split(maxsplit=1)
    (lib,) = (tmp_path / "fused").glob("k_*.so")
    assert answer == "42"
    assert sizes.strip() in ("[]", f"[{lib.stat().st_size}]")  # the whole library, or the file


def _trajectory() -> None:
    from descentlab.problems import trajectories

    tr = trajectories.run("rosenbrock", "adam", torch.zeros(2, 2), steps=3, lr=0.1)
    assert tr.kernel


def _optimizer_step() -> None:
    from descentlab import optim

    w = torch.nn.Parameter(torch.ones(8))
    w.grad = torch.ones(8)
    optim.SGD([w], lr=0.1, momentum=0.9, fused=True).step()


# generator -> a call that builds (or loads) its kernel
GENERATORS = {"optimizer step": _optimizer_step, "trajectory": _trajectory}


@pytest.mark.process
@pytest.mark.parametrize("generator", GENERATORS)
def test_every_generator_builds_through_the_verified_cache(generator, tmp_path, monkeypatch):
    monkeypatch.setenv("DESCENTLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(N, "_libraries", {})
    monkeypatch.setattr(N, "_bound", {})
    GENERATORS[generator]()
    built = sorted((tmp_path / "fused").glob("k_*.so"))
    assert built and all(lib.with_suffix(".json").is_file() for lib in built)
    for lib in built:  # every entry damaged: each is caught, announced and rebuilt
        lib.write_bytes(lib.read_bytes()[: lib.stat().st_size // 2])
    monkeypatch.setattr(N, "_libraries", {})
    monkeypatch.setattr(N, "_bound", {})
    before = N.compile_count()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GENERATORS[generator]()
    messages = [str(w.message) for w in caught if "failed verification" in str(w.message)]
    assert sorted(m.split(" failed")[0].split()[-1] for m in messages) == [str(p) for p in built]
    assert N.compile_count() == before + len(built)


@pytest.mark.process
def test_bindings_are_made_once_per_library(tmp_path, monkeypatch):
    monkeypatch.setenv("DESCENTLAB_CACHE", str(tmp_path))
    calls = []

    def bind(lib):
        calls.append(lib)
        return lib.dl_answer

    source = 'extern "C" int dl_answer(void) { return 7; }'
    assert N.load(source, bind)() == N.load(source, bind)() == 7
    assert len(calls) == 1


def test_the_cnn_kernel_loads_through_the_layer(monkeypatch):
    """(Its build takes ~10 s, so not in the table above: the layer it goes through is.)"""
    from descentlab.engine import vcnn

    seen = []
    monkeypatch.setattr(N, "load", lambda source, bind, what: seen.append(source) or {})
    vcnn._library.cache_clear()
    try:
        assert vcnn._library() == {}
    finally:
        vcnn._library.cache_clear()
    assert seen == [vcnn._source()]


def test_an_entry_that_cannot_be_written_is_refused_naming_it(tmp_path, monkeypatch):
    """A folder with files in it where the library goes: one error naming it (a fused=None
    step then runs eagerly, announced), not a stray OSError or ValueError from the write (an
    empty folder or a link there is removed and the entry rebuilt:
    tests/test_compiler_faults.py)."""
    monkeypatch.setenv("DESCENTLAB_CACHE", str(tmp_path))
    source = 'extern "C" int dl_answer(void) { return 9; }'
    lib = tmp_path / "fused" / f"k_{N._key(source, N.compiler())}.so"
    lib.mkdir(parents=True)
    (lib / "kept").touch()
    with (
        pytest.warns(RuntimeWarning, match="failed verification"),
        pytest.raises(N.KernelUnavailable, match=f"{lib} is a folder, not a file; remove it"),
    ):
        N.load_library(source)
    assert lib.is_dir() and not lib.with_suffix(".json").exists()


def test_a_generated_module_is_kept_in_the_private_folder_and_checked_before_import(
    tmp_path, monkeypatch
):
    """The GPU step's Triton kernels are Python source: written atomically into the same
    private cache folder, checked to be the source before every import (an entry changed on
    disk is rewritten, with one warning naming it), executed anew each time."""
    monkeypatch.setenv("DESCENTLAB_CACHE", str(tmp_path))
    source = "VALUE = 41 + 1\n"
    first = N.load_module(source, "probe")
    (path,) = (tmp_path / "fused").glob("m_*.py")
    assert first.VALUE == 42 and path.read_text() == source
    assert (path.stat().st_mode & 0o077) == 0 and ((tmp_path / "fused").stat().st_mode & 0o077) == 0
    path.write_text("VALUE = 'planted'\n")
    with pytest.warns(RuntimeWarning, match=rf"{re.escape(str(path))} is not its source"):
        second = N.load_module(source, "probe")
    assert second.VALUE == 42 and second is not first and path.read_text() == source


def test_a_generated_module_refuses_a_folder_others_can_write(tmp_path, monkeypatch):
    monkeypatch.setenv("DESCENTLAB_CACHE", str(tmp_path))
    (tmp_path / "fused").mkdir()
    (tmp_path / "fused").chmod(0o777)
    with pytest.raises(N.KernelUnavailable, match="cache cannot be used"):
        N.load_module("VALUE = 1\n", "probe")


def test_the_gpu_kernels_load_through_the_layer(monkeypatch):
    """gpu._compile hands its Triton source to the layer (the interpreter tests then run the
    kernels it returns)."""
    from descentlab.optim import gpu

    seen = []

    class Module:
        dl_probe = "kernel"

    monkeypatch.setattr(
        N, "load_module", lambda source, name: seen.append((source, name)) or Module
    )
    assert gpu._compile("SOURCE", "dl_probe") == "kernel"
    assert seen == [("SOURCE", "dl_probe")]
