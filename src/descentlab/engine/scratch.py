"""Runs recorded where they train, for the store's one writer: a store in a private folder
that nothing outside the task reads (:func:`scratch_store`), a run of it exported with its
files' bytes (:func:`exported`), and the same run imported into the main store by the process
that writes it (:func:`place_files`, :func:`import_result`). Trials' workers, ``train_many``'s
worker processes and Ray tasks train this way; only the main process opens the main store."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["exported", "import_result", "in_scratch_store", "place_files", "scratch_store"]


@contextlib.contextmanager
def scratch_store(on_disk: bool = False) -> Iterator[Any]:
    """A store in this process's memory (nothing of it reaches the disk: it is read within
    the task), its files' folder a private temporary one, removed at the end
    (:func:`~descentlab._osutil.temporary_folder`: or by its reaper, if this process is killed).
    ``on_disk``: a file in that folder instead, for work that opens the store by its path."""
    from descentlab._osutil import temporary_folder
    from descentlab.store import Store

    with temporary_folder("trial") as tmp:
        store = Store(Path(tmp) / "trial.sqlite", durable=on_disk)
        try:
            yield store
        finally:
            store.close()


def exported(store: Any, run_id: int) -> dict[str, Any]:
    """A run of ``store`` as another store imports it, with its files' bytes."""
    out = {**store.export_run(run_id), "files": {}}
    for name, art in out["artifacts"].items():
        path = Path(art["path"])
        if path.is_file():
            out["files"][name] = (art["kind"], path.suffix, path.read_bytes())
    return out


def in_scratch_store(
    work: Callable[[Any], T], on_disk: bool = False
) -> tuple[T, list[dict[str, Any]]]:
    """Call ``work(store)`` with a :func:`scratch_store` (``on_disk``: its file, for work that
    opens it by path); return what it returned and the runs it recorded (in the order
    recorded, each with its ``id`` there), :func:`exported`."""
    with scratch_store(on_disk) as store:
        value = work(store)
        return value, [{**exported(store, r.id), "id": r.id} for r in store.list_runs()]


def place_files(store: Any, exported: Mapping[str, Any]) -> Callable[[int], dict[str, Any]]:
    """What :meth:`Store.import_run <descentlab.store.Store.import_run>` calls to write a run's
    files next to ``store``."""
    from descentlab.engine.checkpoint import write_bytes_atomic

    def place(run_id: int) -> dict[str, tuple[str, str]]:
        placed = {}
        for name, (kind, suffix, data) in exported.get("files", {}).items():
            stem = f"run-{run_id}" if name == "checkpoint" else f"run-{run_id}-{name}"
            target = store.file_path("checkpoints", f"{stem}{suffix}")
            write_bytes_atomic(target, data)
            placed[name] = (kind, str(target))
        return placed

    return place


def import_result(store: Any, result: Any, run: Mapping[str, Any]) -> Any:
    """``result`` (a :class:`~descentlab.engine.run.RunResult` trained against a scratch
    store) with its exported ``run`` imported into ``store``: its ``run_id`` and
    ``checkpoint_path`` then refer to ``store``."""
    result.run_id = store.import_run(run, artifacts=place_files(store, run))
    ckpt = store.artifacts(result.run_id).get("checkpoint")
    result.checkpoint_path = None if ckpt is None else Path(ckpt["path"])
    return result
