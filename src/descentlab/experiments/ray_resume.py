"""Ray trials that resume mid-run: a running trial's last checkpoint kept on the driver's machine.

A Ray task trains against a scratch store of its node, so a checkpoint written there is lost
with the task. Here each checkpoint a trial writes mid-run goes, with the run's record so far,
to a :class:`CheckpointKeeper` (a Ray actor pinned to the driver's node) that writes
``checkpoints/trial-<key>.json`` (the record, first) and ``trial-<key>.pt`` with its checksum
file (the engine's verified checkpoint, second) next to the driver's store; ``<key>`` is
:func:`trial_key`. A trial sent again is sent with its files (:func:`load_partial`) and
continues from them (:func:`restore`) as a local trial does; files that fail verification are
set aside (``*.corrupt``) and the trial starts over. When it works and when not (Ray Client):
docs/compare.md."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from descentlab._files import write_atomic
from descentlab.engine.checkpoint import (
    CheckpointError,
    checksum_path,
    read_checkpoint_bytes,
    write_bytes_atomic,
)
from descentlab.store import canonical_json

__all__ = [
    "CheckpointKeeper",
    "discard_partial",
    "load_partial",
    "partial_paths",
    "restore",
    "shipper",
    "start_keeper",
    "trial_key",
]


def trial_key(trial: Any) -> str:
    """The name of ``trial``'s files: a hash of its config as the store records it (unique in
    a comparison: the config holds the trial's name)."""
    text = canonical_json(trial.record_config())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


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
        record, ckpt = partial_paths(self.folder, key)
        write_atomic(record, json.dumps(run), private=True)
        write_bytes_atomic(ckpt, data, step)


def start_keeper(ray: Any, folder: str | os.PathLike[str]) -> Any:
    """A :class:`CheckpointKeeper` actor on this (the driver's) node, writing to ``folder``."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    actor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(CheckpointKeeper)
    return actor.options(scheduling_strategy=here).remote(os.fspath(folder))


def load_partial(folder: str | os.PathLike[str], trial: Any) -> dict[str, Any] | None:
    """What is kept of ``trial`` (a run record and its verified checkpoint bytes, as
    :func:`restore` takes them), or None: nothing is (or only a record: the trial was stopped
    before its first checkpoint reached the driver's machine). Files that fail their
    verification are set aside as ``*.corrupt`` with one warning (None: the trial starts
    over)."""
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
        aside = _set_aside(record, ckpt)
        warnings.warn(
            f"descentlab: trial {trial.config.name!r}: {exc}; set aside as {aside}, never "
            "used: the trial starts over from step 0",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return {**run, "checkpoint": data, "step": step}


def _set_aside(record: Path, ckpt: Path) -> Path:
    for path in (record, ckpt, checksum_path(ckpt)):
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, path.with_name(path.name + ".corrupt"))
    return ckpt.with_name(ckpt.name + ".corrupt")


def discard_partial(folder: str | os.PathLike[str], trial: Any) -> None:
    """Remove what is kept of ``trial`` (it has finished)."""
    if not Path(folder).is_dir():
        return
    record, ckpt = partial_paths(folder, trial_key(trial))
    for path in (record, ckpt, checksum_path(ckpt)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# -- in the Ray task ---------------------------------------------------------------------------


def restore(store: Any, partial: dict[str, Any]) -> int:
    """Record the kept run ``partial`` (:func:`load_partial`) in the task's scratch ``store``
    as interrupted, its checkpoint in the store's ``checkpoints`` folder, so that the trial
    continues from it (:func:`~descentlab.experiments.trials._execute`); returns its id."""
    run = {**partial["run"], "status": "interrupted"}
    exported = {"run": run, "metrics": partial.get("metrics", [])}

    def place(run_id: int) -> dict[str, tuple[str, str]]:
        target = store.path.parent / "checkpoints" / f"run-{run_id}.pt"
        write_bytes_atomic(target, partial["checkpoint"], partial.get("step"))
        return {"checkpoint": ("checkpoint", str(target))}

    return store.import_run(exported, artifacts=place)


def shipper(store: Any, save: Callable[..., None]) -> Callable[[Any, int, Path], None]:
    """What a trial in the task's scratch ``store`` calls after each checkpoint it writes in
    the middle of its run: the run's record and the checkpoint go to ``save`` (a
    :class:`CheckpointKeeper`'s, in this process or a Ray actor on the driver's machine), and
    the trial goes on once they are written (a later copy of the trial then finds them)."""

    def ship(trial: Any, run_id: int, path: Path) -> None:
        run = store.export_run(run_id)
        run.pop("artifacts", None)
        step = json.loads(checksum_path(path).read_text(encoding="utf-8")).get("step")
        save(trial_key(trial), run, Path(path).read_bytes(), step)

    return ship
