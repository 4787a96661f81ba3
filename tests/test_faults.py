"""Fault tables (issue 10): a damaged kernel cache, checkpoint or store is detected and
recovered from, or refused with one clear error naming the file -- never used silently."""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import pytest
import torch

from descentlab import optim
from descentlab.optim import fused as F

# ------------------------------------------------------------------------------------------
# fused-kernel cache: 5 faults, 5 recovered

_PLANTED = r"""
#include <stdio.h>
#include <stdint.h>
static const char* marker = "@MARKER@";
__attribute__((constructor)) static void planted(void) {
    FILE* f = fopen(marker, "w");
    if (f) { fputs("constructor ran\n", f); fclose(f); }
}
extern "C" void dl_step(int64_t n, void* a, void* b, void* c, void* d, void* e, int t) {}
extern "C" double dl_sqrt_probe(double x) { return x; }
"""


def _sgd_run(fused):
    """Three SGD-momentum steps on a fixed problem; the final parameter."""
    w = torch.nn.Parameter(torch.linspace(-1.0, 1.0, 64))
    opt = optim.SGD([w], lr=0.1, momentum=0.9, fused=fused)
    for k in range(3):
        w.grad = torch.sin(w.detach() * (k + 1))
        opt.step()
    return w.detach().clone()


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    """Compiled once for the module: SGD-momentum's kernel (its files and final parameter),
    Adam's kernel bytes and a planted library whose constructor writes a marker file."""
    if not F.fused_available():
        pytest.skip("no C++ compiler")
    root = tmp_path_factory.mktemp("kernels")
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("DESCENTLAB_CACHE", str(root / "adam"))
        mp.setattr(F, "_loaded", {})
        w = torch.nn.Parameter(torch.ones(8))
        w.grad = torch.ones(8)
        optim.Adam([w], lr=0.1, fused=True).step()
        (adam,) = F.cache_dir().glob("k_*.so")
        mp.setenv("DESCENTLAB_CACHE", str(root / "sgd"))
        expected = _sgd_run(True)
        (lib,) = F.cache_dir().glob("k_*.so")
    finally:
        mp.undo()
    marker = root / "constructor-ran"
    src = root / "planted.cpp"
    src.write_text(_PLANTED.replace("@MARKER@", str(marker)))
    planted = root / "planted.so"
    subprocess.run([F.compiler(), "-shared", "-fPIC", str(src), "-o", str(planted)], check=True)
    return {"sgd": lib, "expected": expected, "adam": adam.read_bytes(),
            "planted": planted.read_bytes(), "marker": marker}  # fmt: skip


@pytest.fixture
def kernel_cache(kernels, tmp_path, monkeypatch):
    """A fresh cache holding SGD-momentum's kernel, nothing loaded in memory."""
    monkeypatch.setenv("DESCENTLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(F, "_loaded", {})
    F._trusted_dir(F.cache_dir())  # made as the loader makes it
    lib = F.cache_dir() / kernels["sgd"].name
    for suffix in (".so", ".json"):
        if kernels["sgd"].with_suffix(suffix).exists():
            lib.with_suffix(suffix).write_bytes(kernels["sgd"].with_suffix(suffix).read_bytes())
    return lib, kernels["expected"]


FAULTS = ["truncated", "garbage", "empty", "swapped", "planted"]


def _break(lib: Path, fault: str, kernels) -> None:
    good = kernels["sgd"].read_bytes()
    if fault == "truncated":
        lib.write_bytes(good[: len(good) // 2])
    elif fault == "garbage":
        lib.write_bytes(os.urandom(len(good)))
    elif fault == "empty":
        lib.write_bytes(b"")
    elif fault == "swapped":  # another optimizer's kernel under this one's name
        lib.write_bytes(kernels["adam"])
    else:  # a library planted under the kernel's name
        lib.write_bytes(kernels["planted"])


def _recovers(lib: Path, fault: str, kernels, monkeypatch, fused) -> None:
    _break(lib, fault, kernels)
    monkeypatch.setattr(F, "_loaded", {})  # a new process: the kernel comes from disk
    before = F.compile_count()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = _sgd_run(fused)
    assert not kernels["marker"].exists(), "the planted library was loaded"
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, (fault, messages)
    assert "failed verification" in messages[0] and lib.name in messages[0], messages
    assert F.compile_count() == before + 1, f"{fault}: the kernel was not rebuilt"
    torch.testing.assert_close(got, kernels["expected"], rtol=0, atol=0)


def test_kernel_cache_fault_table_5_of_5_recovered(kernels, kernel_cache, monkeypatch):
    lib, _ = kernel_cache
    recovered = []
    for fault in FAULTS:  # the default backend (fused=None)
        _recovers(lib, fault, kernels, monkeypatch, None)
        recovered.append(fault)
    assert recovered == FAULTS  # 5/5


def test_kernel_cache_fault_recovered_with_fused_true(kernels, kernel_cache, monkeypatch):
    _recovers(kernel_cache[0], "truncated", kernels, monkeypatch, True)


def test_kernel_cache_sidecar_records_hashes_and_command(kernel_cache):
    import hashlib
    import json

    lib, _ = kernel_cache
    meta = json.loads(lib.with_suffix(".json").read_text())
    assert meta["so_sha256"] == hashlib.sha256(lib.read_bytes()).hexdigest()
    assert len(meta["source_sha256"]) == 64
    assert meta["command"][0] == F.compiler() and "-O3" in meta["command"]


def test_kernel_cache_folders_are_private(kernel_cache):
    lib, _ = kernel_cache
    assert lib.parent.stat().st_mode & 0o777 == 0o700
    assert lib.parent.parent.stat().st_mode & 0o777 == 0o700  # $DESCENTLAB_CACHE made here


@pytest.mark.parametrize("problem", ["group-writable", "other-owner"])
def test_untrusted_kernel_cache_folder_is_refused(kernel_cache, monkeypatch, problem):
    lib, _ = kernel_cache
    folder = lib.parent
    if problem == "group-writable":
        folder.chmod(0o777)
        why = "writable by group or others"
    else:
        if os.geteuid() != 0:
            pytest.skip("changing a folder's owner needs root")
        os.chown(folder, 65534, 65534)
        why = "owned by user 65534"
    try:
        monkeypatch.setattr(F, "_loaded", {})
        before = F.compile_count()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = _sgd_run(None)  # the default falls back to eager, announced once
        messages = [str(w.message) for w in caught]
        assert len(messages) == 1 and why in messages[0] and str(folder) in messages[0], messages
        assert F.compile_count() == before
        torch.testing.assert_close(got, _sgd_run(False), rtol=0, atol=0)
        monkeypatch.setattr(F, "_loaded", {})
        with pytest.raises(F.FusedUnavailable, match=why):
            _sgd_run(True)
    finally:
        os.chown(folder, os.geteuid(), os.getegid())
        folder.chmod(0o700)
