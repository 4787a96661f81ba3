"""A run's checkpoint and a stored run continued: exactly what a checkpoint of one run holds
(:func:`run_state`, loaded back by :func:`load_run_state`), a checkpoint read and verified
(:func:`run_checkpoint`, :func:`saved_state`), where a run's checkpoint lies
(:func:`default_checkpoint`), and a stored run's resume, checked before anything changes
(:func:`resumption`) and written to its record once (:func:`begin_resume`) -- for one process's
run (:func:`~descentlab.engine.run.resume`) and a sharded one
(:func:`~descentlab.engine.launch.train_sharded`) alike."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from descentlab._osutil import recorded_alive
from descentlab.engine.checkpoint import (
    CheckpointError,
    check_entries,
    checksum_path,
    load_checkpoint,
)
from descentlab.engine.config import RunConfig, checked_config

if TYPE_CHECKING:
    from descentlab.engine.building import Built
    from descentlab.engine.loop import Loop
    from descentlab.store import Store

__all__ = [
    "CHECKPOINT_FORMAT",
    "Resumption",
    "begin_resume",
    "default_checkpoint",
    "has_checkpoint",
    "load_run_state",
    "resumption",
    "run_checkpoint",
    "run_state",
    "saved_state",
]

#: the format of a run's checkpoint (:func:`run_state`)
CHECKPOINT_FORMAT = 1


def run_state(loop: Loop, part: Any, status: str) -> dict[str, Any]:
    """Exactly what a checkpoint of one run holds (``part``: its
    :class:`~descentlab.engine.run.OneModel`)."""
    b = part.b
    batches = loop.batches
    return {
        "format": CHECKPOINT_FORMAT,
        "config": part.config.to_dict(),
        "status": status,
        "step": loop.step,
        **part.model_and_optimizer_state(),
        "scheduler": None if b.scheduler is None else b.scheduler.state_dict(),
        "rule_scheduler": None if b.rule_scheduler is None else b.rule_scheduler.state_dict(),
        "early_stopping": None if b.early is None else b.early.state_dict(),
        "rng": {
            "torch": torch.get_rng_state(),
            "data": batches.data_gens[0].get_state(),
            "augment": batches.aug_gens[0].get_state(),
        },
        "data_order": batches.state_dict(),
        "objective": [loop.train_loss_sum, loop.train_loss_count],
        "history": [list(r) for r in loop.history[0]],
        "elapsed": loop.elapsed,
        "scaler": None if part.scaler is None else part.scaler.state_dict(),
        # an attached monitor's records so far (a resumed run keeps them)
        "monitor": None if _monitor(b) is None else list(_monitor(b).records),
        "clock": part.clock.state_dict(),
    }


def _monitor(b: Built) -> Any:
    """The :class:`~descentlab.optim.Monitor` attached to the run's optimizer, or None."""
    from descentlab.optim import Monitor

    monitor = getattr(b.optimizer, "monitor", None)
    return monitor if isinstance(monitor, Monitor) else None


def load_run_state(loop: Loop, part: Any, state: Mapping[str, Any]) -> None:
    b = part.b
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint format {state.get('format')!r} is not supported")
    part.load_model_and_optimizer_state(state)
    for obj, key in ((b.scheduler, "scheduler"), (b.rule_scheduler, "rule_scheduler")):
        if obj is not None:
            obj.load_state_dict(state[key])
    if b.early is not None:
        b.early.load_state_dict(state["early_stopping"])
    torch.set_rng_state(state["rng"]["torch"])
    loop.batches.data_gens[0].set_state(state["rng"]["data"])
    loop.batches.aug_gens[0].set_state(state["rng"]["augment"])
    loop.batches.load_state_dict(state["data_order"])
    loop.train_loss_sum, loop.train_loss_count = state["objective"]
    loop.history[0] = [(int(s), sp, nm, float(v)) for s, sp, nm, v in state["history"]]
    loop.elapsed = float(state["elapsed"])
    part.clock.load_state_dict(state.get("clock"))  # (absent: a checkpoint from before)
    loop.step = int(state["step"])
    if part.scaler is not None and state.get("scaler") is not None:
        part.scaler.load_state_dict(state["scaler"])
    if _monitor(b) is not None and state.get("monitor") is not None:
        _monitor(b).records[:] = [dict(r) for r in state["monitor"]]


#: what a run's checkpoint holds (:func:`run_state`), checked before any of it is used
_RUN_ENTRIES: dict[str, Any] = {
    "format": int,
    "config": dict,
    "status": str,
    "step": int,
    "model": dict,
    "optimizer": dict,
    "rng": dict,
    "data_order": dict,
    "objective": (list, tuple),
    "history": (list, tuple),
    "elapsed": (int, float),
}


def run_checkpoint(ckpt_path: Path) -> dict[str, Any]:
    """The checkpoint of a run at ``ckpt_path``, verified against its checksum and checked to
    hold what a run's checkpoint holds (CheckpointError naming the file otherwise)."""
    state = load_checkpoint(ckpt_path)  # verified against its checksum, weights only
    check_entries(state, ckpt_path, _RUN_ENTRIES)
    if state["format"] != CHECKPOINT_FORMAT or state["step"] < 0:
        raise CheckpointError(
            f"checkpoint {ckpt_path} is not a checkpoint this descentlab can continue "
            f"(format {state['format']!r}, step {state['step']})"
        )
    return state


def saved_state(ckpt_path: Path, record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The checkpoint a run continues from (None: there is none), verified against its
    checksum and the run's config ``record``."""
    if not has_checkpoint(ckpt_path):
        return None
    state = run_checkpoint(ckpt_path)
    if state["config"] != record:
        raise ValueError(f"the checkpoint {ckpt_path} was written by a run with another config")
    if state["status"] in ("completed", "diverged"):
        raise ValueError(f"the run in {ckpt_path} has ended (status {state['status']!r})")
    return state


def _stored_run(
    store: Store, run_id: int, optimizer: Any, schedule: Mapping[str, Any] | None
) -> RunConfig:
    """The stored run ``run_id``'s config (``optimizer``, ``schedule`` in place of the
    recorded ones where given); a run that has ended, or that still runs in a live process of
    this host, cannot be resumed."""
    record = store.get_run(run_id)
    if record.status in ("completed", "diverged"):
        raise ValueError(f"run {record.id} has already ended with status {record.status!r}")
    prov = record.provenance
    pid = prov.get("pid")
    if (
        record.status == "running"
        and prov.get("hostname") == socket.gethostname()
        and isinstance(pid, int)
        and pid != os.getpid()
        and recorded_alive(prov)
    ):
        raise ValueError(f"run {record.id} is still running in process {pid}; stop it first")
    config = RunConfig.from_dict(record.config)
    if optimizer is not None:
        config = config.replace(optimizer=optimizer)
    if schedule is not None:
        config = config.replace(schedule=dict(schedule))
    return config


def _resume_point(store: Store, run_id: int, restart: bool) -> tuple[Path, int, bool]:
    """``(checkpoint path, last step it holds or -1, whether to load it)``, checked before
    anything changes. Without a checkpoint (none was ever written, or ``restart`` after a
    corrupted or missing one) the run starts over: every metric it logged goes."""
    artifacts = store.artifacts(run_id)
    recorded = "checkpoint" in artifacts
    ckpt_path = (
        Path(artifacts["checkpoint"]["path"]) if recorded else default_checkpoint(store, run_id)
    )
    try:
        if recorded and not has_checkpoint(ckpt_path):
            what = "is a folder, not a checkpoint file" if ckpt_path.is_dir() else "is missing"
            raise CheckpointError(
                f"checkpoint {ckpt_path} {what}, but the store records it for run {run_id}"
            )
        if has_checkpoint(ckpt_path):
            return ckpt_path, int(run_checkpoint(ckpt_path)["step"]), True
    except CheckpointError as exc:
        if not restart:
            raise CheckpointError(
                f"{exc}; to start run {run_id} over from step 0 instead, resume it with "
                "restart=True (descentlab train --resume ID --restart)"
            ) from None
        return ckpt_path, -1, False
    return ckpt_path, -1, True


def has_checkpoint(path: Path) -> bool:
    """A checkpoint is there, or its checksum file says one was written."""
    return path.is_file() or checksum_path(path).is_file()


def default_checkpoint(store: Store, run_id: int) -> Path:
    """Where run ``run_id`` of ``store`` keeps its checkpoint (``<store dir>/checkpoints/``)."""
    return store.file_path("checkpoints", f"run-{run_id}.pt")


@dataclass
class Resumption:
    """A stored run's resume, checked before anything changes: its config (``config``, and
    ``record`` checked), its checkpoint (``checkpoint``: the path, ``after``: the last step
    it holds or -1, ``state``: what it holds where it is loaded, else None)."""

    run_id: int
    config: RunConfig
    record: dict[str, Any]
    checkpoint: Path
    after: int
    load: bool
    state: dict[str, Any] | None


def resumption(
    store: Store,
    run_id: int,
    *,
    restart: bool = False,
    optimizer: Any = None,
    schedule: Mapping[str, Any] | None = None,
) -> Resumption:
    """The resume of run ``run_id`` of ``store``, checked, nothing changed (``optimizer``,
    ``schedule``: in place of the recorded ones, a run's Python objects; ``restart``: start
    over where its checkpoint is corrupted or missing)."""
    config = _stored_run(store, run_id, optimizer, schedule)
    if isinstance(config.optimizer, str) and config.optimizer.startswith("custom:"):
        raise ValueError(
            f"run {run_id} used a Python optimizer object ({config.optimizer}); pass it again "
            "with resume(..., optimizer=...)"
        )
    config, record = checked_config(config)
    path, after, load = _resume_point(store, run_id, restart)
    state = saved_state(path, record) if load else None
    return Resumption(run_id, config, record, path, after, load, state)


def begin_resume(store: Store, run_id: int, after: int, **noted: Any) -> None:
    """Run ``run_id``'s resume written to its record, in one transaction: running again, its
    metrics cut back to its checkpoint's step ``after`` (:attr:`Resumption.after`), the resume
    (and ``noted``, e.g. ``nproc``) in its provenance."""
    pid = os.getpid()
    with store.transaction():
        store.set_status(run_id, "running", expect=("running", "interrupted", "failed"))
        store.truncate_metrics(run_id, after_step=after)
        prov = store.get_run(run_id).provenance
        here = {"from_step": max(after, 0), "pid": pid, **noted}
        store.update_provenance(
            run_id, {"resumes": [*prov.get("resumes", []), here], "pid": pid, **noted}
        )
