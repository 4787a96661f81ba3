"""Each trial of your training code in a folder of its own (:func:`own_folder`), as Ray Tune
gives each trial its directory: trials that run at once never share a working folder, nor a
file a relative path names (a ``model.pt`` one trial saves and reloads), while the inputs the
code reads by relative path still resolve.

The trial's folder is ``trials/run-<id>/`` beside the store the trial records into (a
trial's private scratch store, whose folder is removed when the trial ends: keep what must
outlive it with ``run.checkpoint`` or an absolute path); the trial runs with it as its
working folder, and it holds a link to each entry of the folder the command ran in (the
launch folder: ``data/``, ``train.csv``): a relative path the code reads resolves as it did,
and a file the code writes under a new name is the trial's own. A file that was in the launch
folder before is reached through its link: a trial that writes it (a ``model.pt`` left by an
earlier ``python train.py``) writes that file, which every trial shares -- remove it before
comparing. (Writes are not watched: a log the command itself writes there is not a trial's.)
Paths relative to the code's own file (``__file__``) resolve as ever; ``run.launch_dir``
names the launch folder for the others (``../data``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["LINKED_AT_MOST", "folder_of", "own_folder"]

#: the launch folder's entries linked into a trial's folder at most (a larger folder: said once)
LINKED_AT_MOST = 10_000


def folder_of(store_path: str | os.PathLike[str], run_id: int) -> Path:
    """Where run ``run_id`` of the store at ``store_path`` runs: ``<store dir>/trials/run-<id>``
    (absolute: the command's paths stay valid after the trial changes folder)."""
    return Path(os.path.abspath(store_path)).parent / "trials" / f"run-{run_id}"


@contextlib.contextmanager
def own_folder(folder: Path, fresh: bool, say: Any) -> Iterator[tuple[Path, Path]]:
    """The trial's code runs with ``folder`` as its working folder (made, emptied first where
    ``fresh`` -- a trial that starts over -- else kept: a trial continued from its checkpoint
    finds the files it wrote), linked to the launch folder's entries; the working folder set
    back afterwards. Yields ``(folder, launch folder)``. ``say(key, text)`` says a thing once."""
    launch = Path(os.getcwd())
    if fresh and folder.exists():
        shutil.rmtree(folder)  # (its links removed, never followed)
    folder.mkdir(parents=True, exist_ok=True)
    _link(launch, folder, say)
    os.chdir(folder)
    try:
        yield folder, launch
    finally:
        try:
            here = os.getcwd()
        except OSError:
            here = None
        if here == str(folder):  # (elsewhere: the code moved; the caller says it and sets back)
            os.chdir(launch)


def _link(launch: Path, folder: Path, say: Any) -> None:
    """Link ``launch``'s entries into ``folder`` (those it does not hold already; never the
    folder that holds the trial's own)."""
    try:
        entries = sorted(os.scandir(launch), key=lambda e: e.name)
    except OSError:
        return
    if len(entries) > LINKED_AT_MOST:
        say(
            f"many entries {launch}",
            f"descentlab: the folder the command ran in holds {len(entries)} entries: each trial's "
            f"folder links the first {LINKED_AT_MOST} by name (run.launch_dir is the folder)",
        )
        entries = entries[:LINKED_AT_MOST]
    inside = folder.resolve()
    for entry in entries:
        target = Path(entry.path)
        mine = folder / entry.name
        if os.path.lexists(mine) or inside.is_relative_to(target.resolve()):
            continue  # (the runs' folder itself: not linked into its own trials)
        with contextlib.suppress(OSError):
            os.symlink(target, mine, target_is_directory=entry.is_dir())
