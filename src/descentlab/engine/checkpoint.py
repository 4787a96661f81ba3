"""Checkpoints written atomically: a crash leaves the previous checkpoint or the new one.

:func:`save_checkpoint` writes the whole checkpoint to a temporary file in the destination's
directory, flushes and ``fsync``-s it, renames it over the destination with ``os.replace``
(atomic on POSIX and Windows) and ``fsync``-s the directory so the rename itself survives a
power cut. A reader therefore never sees a half-written checkpoint.

Checkpoints are plain ``torch.save`` dicts of tensors, numbers, strings, lists and dicts, and
are read back with ``torch.load(weights_only=True)``: loading one never runs pickled code.

Example:
    >>> import tempfile, os, torch
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
    >>> save_checkpoint({"step": 3, "w": torch.ones(2)}, path)
    >>> load_checkpoint(path)["step"]
    3

References:
    "Files are hard" (atomic rename + fsync of the directory),
    https://danluu.com/file-consistency/ .
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_checkpoint", "save_checkpoint", "write_bytes_atomic"]


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename, fsync directory).

    Args:
        state: a dict of tensors, numbers, strings, lists, tuples and dicts.
        path: destination file; its directory is created if missing.
    """
    _write_atomic(path, lambda fh: torch.save(state, fh))


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` as atomically as :func:`save_checkpoint` writes a state (used
    to place a checkpoint that was written on another machine)."""
    _write_atomic(path, lambda fh: fh.write(data))


def _write_atomic(path: str | os.PathLike[str], write: Callable[[Any], Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # The rename is durable only once the directory entry is on disk (POSIX; no-op elsewhere).
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors on the CPU).

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location="cpu", weights_only=True)
