"""File modes: folders that hold code or provenance are private (0700);
what the user reads -- the store file, reports, figures -- follows the user's umask."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_store_folders_are_private_and_the_store_follows_the_umask(tmp_path, umask):
    from descentlab.store import Store

    existing = tmp_path / "mine"
    existing.mkdir()
    existing.chmod(0o755)
    path = existing / "runs" / "deep" / "lab.sqlite"
    with Store(path) as store:
        store.create_run({"lr": 0.1})
    assert _mode(existing / "runs") == 0o700  # every folder the store made
    assert _mode(existing / "runs" / "deep") == 0o700
    assert _mode(existing) == 0o755  # a folder that was there is left as it was
    assert _mode(path) == 0o666 & ~umask


def test_checkpoint_folders_are_private(tmp_path, umask):
    from descentlab.engine.checkpoint import save_checkpoint

    save_checkpoint({"step": 1, "w": torch.ones(2)}, tmp_path / "run" / "checkpoints" / "c.pt")
    assert _mode(tmp_path / "run") == 0o700
    assert _mode(tmp_path / "run" / "checkpoints") == 0o700


def test_figures_follow_the_umask(tmp_path, umask):
    from descentlab.report import figures

    fig = figures.new_figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    out = figures.save(fig, tmp_path / "figs" / "f.png")
    assert _mode(out) == 0o666 & ~umask
    assert _mode(out.parent) == 0o777 & ~umask


def test_fused_kernel_cache_is_private(tmp_path, monkeypatch):
    from descentlab import _native

    monkeypatch.setenv("DESCENTLAB_CACHE", str(tmp_path / "cache"))
    _native._trusted_dir(_native.cache_dir())
    assert _mode(tmp_path / "cache") == 0o700
    assert _mode(tmp_path / "cache" / "fused") == 0o700
