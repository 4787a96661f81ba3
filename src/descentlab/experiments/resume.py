"""Resume and orphans: a trial continued from where an earlier session left it, the
checkpoints of running trials kept beside the store, and runs left ``running`` by a dead
process marked ``interrupted``.

A task trains against a scratch store, so a checkpoint written there is lost with the task.
Each checkpoint a trial writes mid-run goes (:func:`shipper`), with the run's record so far,
to a :class:`CheckpointKeeper` (in the runner's process, or a Ray actor pinned to the driver's
node) that writes ``checkpoints/trial-<key>.json`` (the record, first) and ``trial-<key>.pt``
with its checksum file (the engine's verified checkpoint, second) next to the store; ``<key>``
is :func:`~descentlab.experiments.trial.trial_key`. A trial sent again is sent with its files
(:func:`load_partial`) and continues from them (:func:`restore`, then
:func:`continued`); files that fail verification are set aside (``*.corrupt``) and the
trial starts over. When it works and when not (Ray Client): docs/compare.md."""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from descentlab._files import write_atomic
from descentlab._osutil import recorded_alive
from descentlab.experiments.trial import FINISHED, Trial, trial_key
from descentlab.store import canonical_json


def unfinished_runs(store: Any, trials: list[Trial]) -> list[int | None]:
    """The id of each trial's interrupted run in ``store`` (None: it has none, and starts from
    step 0): the runs a session stopped in a store the trials train in (``--nproc``), or that
    :func:`restore` recorded in a scratch one."""
    if not store.has_runs("interrupted"):  # the usual case: nothing was stopped
        return [None] * len(trials)
    found = (store.find_run_by_config(t.record_config(), status="interrupted") for t in trials)
    return [None if record is None else record.id for record in found]


def continued(store: Any, kind: Any, trial: Any, run_id: int, go: Callable[..., Any],
              nproc: int = 1) -> Any:  # fmt: skip
    """``trial``'s interrupted run ``run_id`` continued from its last checkpoint
    (``go(resume=run_id)``: the trial's ``kind`` continues it, with its weights, optimizer
    state, data order and random streams as if never stopped), or from step 0 as the same run
    where it wrote none. The resume is written here, for every kind: the run running again,
    its metrics cut back to the step the kind continues from
    (:meth:`~descentlab.experiments.kinds.TrialKind.resume_step`), the resume in its
    provenance. A checkpoint that fails its verification is set aside (``<name>.corrupt``),
    never used: the run starts over (``go(resume=run_id, restart=True)``), with one warning."""
    from descentlab.engine.checkpoint import CheckpointError
    from descentlab.engine.resuming import begin_resume

    noted = {"nproc": nproc} if nproc > 1 else {}

    def begun(restart: bool = False) -> Any:
        after = kind.resume_step(store, trial, run_id, restart)
        begin_resume(store, run_id, after, **noted)
        return go(resume=run_id, restart=restart)

    try:
        return begun()
    except CheckpointError as exc:
        aside = _set_aside(store, run_id)
        reason = str(exc).split("; to start run")[0]
        warnings.warn(
            f"descentlab: trial {trial.config.name!r}: {reason}; set aside as {aside}, never "
            "used: the trial starts over from step 0",
            RuntimeWarning,
            stacklevel=2,
        )
        return begun(restart=True)


def _checkpoint_of(store: Any, run_id: int) -> Path | None:
    art = store.artifacts(run_id).get("checkpoint")
    return None if art is None else Path(art["path"])


def _set_aside(store: Any, run_id: int) -> Path | None:
    """Move run ``run_id``'s checkpoint (and its checksum file) aside as ``*.corrupt`` and
    forget it in the store; returns where it went."""
    from descentlab.engine.checkpoint import checksum_path
    from descentlab.engine.resuming import default_checkpoint

    # the recorded one, or one at the engine's default place that the store had yet to record
    path = _checkpoint_of(store, run_id) or default_checkpoint(store, run_id)
    if not (path.exists() or checksum_path(path).exists()):
        return None
    aside = path.with_name(path.name + ".corrupt")
    for src, dst in ((path, aside), (checksum_path(path), checksum_path(aside))):
        with contextlib.suppress(FileNotFoundError):
            os.replace(src, dst)
    store.remove_artifact(run_id, "checkpoint")
    return aside


def discard_checkpoint(store: Any, result: Any) -> None:
    """A finished trial's checkpoint removed (and forgotten by the store): it is never
    resumed, and a comparison's thousands of trials would fill the disk."""
    if result.run_id is None or result.status not in FINISHED:
        return
    from descentlab.engine.checkpoint import checksum_path

    path = _checkpoint_of(store, result.run_id)
    if path is None:
        return
    store.remove_artifact(result.run_id, "checkpoint")
    for file in (path, checksum_path(path)):
        with contextlib.suppress(FileNotFoundError):
            file.unlink()
    result.checkpoint_path = None


def mark_orphans(store: Any, names: Any = None) -> int:
    """Mark runs left ``running`` by a process that no longer exists as ``interrupted``.

    A killed sweep leaves the trial it was running in that state; the next sweep runs the
    trial again as a new run, and this keeps the store's statuses truthful. Only runs started
    on this machine are checked.

    Args:
        store: the store.
        names: only runs whose name satisfies ``names(name)`` (None: all).

    Returns:
        How many runs were marked.
    """
    import socket

    host = socket.gethostname()
    marked = 0
    for rec in store.list_runs(status="running"):
        if names is not None and not names(rec.name):
            continue
        pid = rec.provenance.get("pid")
        if rec.provenance.get("hostname") != host or not isinstance(pid, int):
            continue
        if pid == os.getpid() or recorded_alive(rec.provenance):
            continue
        with contextlib.suppress(ValueError, KeyError):
            store.set_status(
                rec.id, "interrupted", message=f"process {pid} ended", expect="running"
            )
            marked += 1
    return marked


# -- checkpoints kept beside the store while a trial runs, shipped from where it runs --


def partial_paths(folder: str | os.PathLike[str], key: str) -> tuple[Path, Path]:
    """``(record, checkpoint)``: where the trial ``key``'s files are kept in ``folder``."""
    folder = Path(folder)
    return folder / f"trial-{key}.json", folder / f"trial-{key}.pt"


class CheckpointKeeper:
    """The actor that writes running trials' checkpoints on the driver's machine.

    Args:
        folder: the run's ``checkpoints`` folder (next to the driver's store).
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def save(self, key: str, run: dict[str, Any], data: bytes, step: int | None) -> None:
        """Keep the trial ``key``'s run record ``run`` (``Store.export_run`` less its
        artifacts) and its checkpoint ``data`` written at ``step``: the record first."""
        from descentlab.engine.checkpoint import write_bytes_atomic

        record, ckpt = partial_paths(self.folder, key)
        write_atomic(record, json.dumps(run), private=True)
        write_bytes_atomic(ckpt, data, step)


def load_partial(folder: str | os.PathLike[str], trial: Any) -> dict[str, Any] | None:
    """What is kept of ``trial`` (a run record and its verified checkpoint bytes, as
    :func:`restore` takes them), or None: nothing is (or only a record: the trial was stopped
    before its first checkpoint reached the driver's machine). Files that fail their
    verification are set aside as ``*.corrupt`` with one warning (None: the trial starts
    over)."""
    from descentlab.engine.checkpoint import CheckpointError, checksum_path, read_checkpoint_bytes

    if not Path(folder).is_dir():
        return None  # nothing was ever kept for this store (no trial key to make)
    record, ckpt = partial_paths(folder, trial_key(trial))
    if not (ckpt.exists() or checksum_path(ckpt).exists()):
        return None
    try:
        data = read_checkpoint_bytes(ckpt)
        step = json.loads(checksum_path(ckpt).read_text(encoding="utf-8")).get("step")
        try:
            run = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"the run record {record} is unreadable ({exc})") from None
        config = run.get("run", {}).get("config") if isinstance(run, dict) else None
        if config is None or canonical_json(config) != canonical_json(trial.record_config()):
            raise CheckpointError(f"the run record {record} is not the trial's")
    except CheckpointError as exc:
        aside = _set_aside_kept(record, ckpt)
        warnings.warn(
            f"descentlab: trial {trial.config.name!r}: {exc}; set aside as {aside}, never "
            "used: the trial starts over from step 0",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return {**run, "checkpoint": data, "step": step}


def _set_aside_kept(record: Path, ckpt: Path) -> Path:
    from descentlab.engine.checkpoint import checksum_path

    for path in (record, ckpt, checksum_path(ckpt)):
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, path.with_name(path.name + ".corrupt"))
    return ckpt.with_name(ckpt.name + ".corrupt")


def discard_partial(folder: str | os.PathLike[str], trial: Any) -> None:
    """Remove what is kept of ``trial`` (it has finished)."""
    from descentlab.engine.checkpoint import checksum_path

    if not Path(folder).is_dir():
        return
    record, ckpt = partial_paths(folder, trial_key(trial))
    for path in (record, ckpt, checksum_path(ckpt)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def restore(store: Any, partial: dict[str, Any]) -> int:
    """Record the kept run ``partial`` (:func:`load_partial`) in the task's scratch ``store``
    as interrupted, its checkpoint in the store's ``checkpoints`` folder, so that the trial
    continues from it (:func:`continued`); returns its id."""
    from descentlab.engine.checkpoint import write_bytes_atomic

    run = {**partial["run"], "status": "interrupted"}
    exported = {"run": run, "metrics": partial.get("metrics", [])}

    def place(run_id: int) -> dict[str, tuple[str, str]]:
        target = store.file_path("checkpoints", f"run-{run_id}.pt")
        write_bytes_atomic(target, partial["checkpoint"], partial.get("step"))
        return {"checkpoint": ("checkpoint", str(target))}

    return store.import_run(exported, artifacts=place)


def shipper(store: Any, save: Callable[..., None]) -> Callable[[Any, int, Path], None]:
    """What a trial in the task's scratch ``store`` calls after each checkpoint it writes in
    the middle of its run: the run's record and the checkpoint go to ``save`` (a
    :class:`CheckpointKeeper`'s, in this process or a Ray actor on the driver's machine), and
    the trial goes on once they are written (a later copy of the trial then finds them)."""
    from descentlab.engine.checkpoint import checksum_path

    def ship(trial: Any, run_id: int, path: Path) -> None:
        run = store.export_run(run_id)
        run.pop("artifacts", None)
        step = json.loads(checksum_path(path).read_text(encoding="utf-8")).get("step")
        save(trial_key(trial), run, Path(path).read_bytes(), step)

    return ship
