"""Checkpoints written atomically and verified before use.

:func:`save_checkpoint` writes to a temporary file, ``fsync``-s it and renames it over the
destination (then ``fsync``-s the folder); its checksum file ``run.pt.sha256`` is written just
before the rename and keeps the previous checkpoint's hash too, so a process killed between
the two renames leaves a pair that still verifies. :func:`load_checkpoint` loads exactly the
bytes it checked, with ``torch.load(weights_only=True)``. What the checksum protects against,
and what not: docs/files-and-faults.md.

Example:
    >>> import tempfile, os, torch
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
    >>> save_checkpoint({"step": 3, "w": torch.ones(2)}, path)
    >>> load_checkpoint(path)["step"]
    3
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from descentlab._files import atomic_path, write_atomic

__all__ = [
    "CheckpointError",
    "check_entries",
    "checksum_path",
    "load_checkpoint",
    "read_checkpoint_bytes",
    "save_checkpoint",
    "write_bytes_atomic",
]


class CheckpointError(ValueError):
    """A checkpoint is corrupted, missing or cannot be verified (the message names the file)."""


def checksum_path(path: str | os.PathLike[str]) -> Path:
    """The checksum file of the checkpoint at ``path`` (``<path>.sha256``)."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def _read_checksum(path: Path) -> dict[str, Any] | None:
    """The checksum record of ``path`` (None: no checksum file)."""
    side = checksum_path(path)
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"the checksum file {side} of checkpoint {path} is unreadable ({exc})"
        ) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str):
        raise CheckpointError(f"the checksum file {side} of checkpoint {path} is unreadable")
    return meta


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename, fsync directory),
    with its checksum file (see :func:`checksum_path`).

    Args:
        state: a dict of tensors, numbers, strings, lists, tuples and dicts.
        path: destination file; its directory is created (``0700``) if missing.
    """
    # serialised in memory first, then written as plain bytes: torch's archive writer reports a
    # full disk as "unexpected pos" (a RuntimeError), a plain write as the OSError it is
    buffer = io.BytesIO()
    torch.save(state, buffer)
    _save(path, lambda fh: fh.write(buffer.getbuffer()), state.get("step"))


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, step: int | None = None) -> None:
    """Write ``data`` (a checkpoint's bytes, written at ``step`` if known) to ``path`` with
    its checksum file, as atomically as :func:`save_checkpoint` writes a state (used to place
    a checkpoint that was written on another machine)."""
    _save(path, lambda fh: fh.write(data), step)


def _leftovers(path: Path) -> list[Path]:
    """Temporary files of earlier writes of the checkpoint at ``path`` (and of its checksum
    file) that a killed process left (``.run-1.pt.<random>.tmp.pt``: see ``atomic_path``). Only
    the process that trains a run writes its checkpoint, so none of them is in use."""
    if not path.parent.is_dir():
        return []
    found = []
    for name in (path.name, checksum_path(path).name):
        found += path.parent.glob(f".{glob.escape(name[:64])}.*.tmp*")
    return found


def _save(path: str | os.PathLike[str], write: Any, step: Any) -> None:
    path = Path(path)
    for stale in _leftovers(path):  # (a kill -9 during an earlier write)
        with contextlib.suppress(OSError):
            stale.unlink()
    with atomic_path(path, private=True) as tmp:
        with open(tmp, "wb") as fh:
            write(fh)
        digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()
        try:
            old = _read_checksum(path)
        except CheckpointError:
            old = None
        record = {
            "sha256": digest,
            "bytes": os.path.getsize(tmp),
            "step": step,
            # the checkpoint still in place until the rename that ends this block: a kill in
            # between leaves it, and it must still verify
            "previous": None if old is None else old.get("sha256"),
        }
        write_atomic(checksum_path(path), json.dumps(record), private=True)


def load_checkpoint(path: str | os.PathLike[str], *, verify: bool = True) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors on the CPU), after
    checking its bytes against its recorded SHA-256.

    Args:
        path: the checkpoint file.
        verify: check the checksum (False: load a checkpoint that has no checksum file, e.g.
            one written by an older descentlab, unverified).

    Raises:
        FileNotFoundError: no checkpoint at ``path`` and none was recorded there.
        CheckpointError: the checkpoint does not match its checksum, is missing although its
            checksum file records one, or has no checksum file.
    """
    data = read_checkpoint_bytes(path, verify=verify)
    try:
        with warnings.catch_warnings():  # (torch's words about a pickle it was not given)
            warnings.simplefilter("ignore")
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated archive, a pickle of other types, not a zip at all
        why = (
            "it holds objects other than tensors, numbers, text, lists and dicts, which are "
            "never unpickled"
            if isinstance(exc, pickle.UnpicklingError)
            else _first_line(exc)
        )
        raise CheckpointError(
            f"checkpoint {path} cannot be loaded: it is not a checkpoint descentlab wrote "
            f"({why}); its checksum file guards against accidents, not against a file "
            "replaced together with its checksum"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise CheckpointError(
            f"checkpoint {path} is not a checkpoint descentlab wrote: it holds "
            f"{type(state).__name__}, not a dict of named entries"
        )
    return state


def check_entries(
    state: dict[str, Any], path: str | os.PathLike[str], kinds: dict[str, Any]
) -> None:
    """Check that the checkpoint ``state`` (read from ``path``) holds each entry of ``kinds``
    with a value of its type (a type or a tuple of types), before any of it is used.

    Raises:
        CheckpointError: an entry is missing or of another type; the message names the file.

    Example:
        >>> check_entries({"step": 3}, "run.pt", {"step": int})
        >>> check_entries({"step": "3"}, "run.pt", {"step": int})
        Traceback (most recent call last):
        ...
        descentlab.engine.checkpoint.CheckpointError: checkpoint run.pt is not a checkpoint \
descentlab wrote: its entry 'step' is str, not int
    """
    for key, kind in kinds.items():
        if key not in state:
            raise CheckpointError(
                f"checkpoint {path} is not a checkpoint descentlab wrote: it has no entry {key!r}"
            )
        if not isinstance(state[key], kind) or (isinstance(state[key], bool) and kind is int):
            want = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise CheckpointError(
                f"checkpoint {path} is not a checkpoint descentlab wrote: its entry {key!r} is "
                f"{type(state[key]).__name__}, not {want}"
            )


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_checkpoint_bytes(path: str | os.PathLike[str], *, verify: bool = True) -> bytes:
    """The bytes of the checkpoint at ``path``, checked against its recorded SHA-256 as
    :func:`load_checkpoint` checks them (to send a checkpoint elsewhere unread).

    Raises:
        FileNotFoundError, CheckpointError: as :func:`load_checkpoint`.
    """
    path = Path(path)
    meta = _read_checksum(path) if verify else None
    if not path.is_file():
        if meta is not None:
            step = meta.get("step")
            what = "is a folder, not a checkpoint file" if path.is_dir() else "is missing"
            raise CheckpointError(
                f"checkpoint {path} {what}, but {checksum_path(path).name} records one"
                + ("" if step is None else f" written at step {step}")
            )
        raise FileNotFoundError(f"no checkpoint at {path}")
    data = path.read_bytes()
    if verify:
        if meta is None:
            raise CheckpointError(
                f"checkpoint {path} has no checksum file ({checksum_path(path).name}), so it "
                "cannot be verified; load it with load_checkpoint(path, verify=False) if you "
                "trust it"
            )
        digest = hashlib.sha256(data).hexdigest()
        if digest not in (meta["sha256"], meta.get("previous")):
            raise CheckpointError(
                f"checkpoint {path} is corrupted: its SHA-256 does not match the one recorded "
                f"in {checksum_path(path).name} ({len(data)} bytes, {meta.get('bytes')} "
                "recorded)"
            )
    return data
