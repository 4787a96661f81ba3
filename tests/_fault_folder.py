"""A folder for a command that a test makes fail: the user's file it runs, and ``flags/``,
where the test sets the faults the file reads (``$FAULT_FLAGS``)."""

from __future__ import annotations

import os
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def fault_folder(folder: Path, name: str, text: str) -> Path:
    """``folder`` with ``name`` holding ``text`` and an empty ``flags/``."""
    (folder / name).write_text(text)
    (folder / "flags").mkdir()
    return folder


def fault_env(folder: Path) -> dict[str, str]:
    """The command's environment: this tree's descentlab, ``folder``'s flags, no debug output."""
    env = {**os.environ, "PYTHONPATH": SRC, "FAULT_FLAGS": str(folder / "flags")}
    env.pop("DESCENTLAB_DEBUG", None)
    return env
