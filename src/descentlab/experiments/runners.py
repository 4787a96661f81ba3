"""Choosing the runner that trains a comparison's trials: this machine's worker processes
(:class:`~descentlab.experiments.runner.TrialRunner`) or a Ray cluster's tasks
(:class:`~descentlab.experiments.ray_runner.RayTrialRunner`, imported only when chosen), and
training a list of configs on either (:func:`train_all`)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Sequence
from typing import Any

from descentlab.experiments.execution import torch_threads
from descentlab.experiments.runner import _INSTALL_HINT, BackendUnavailable, TrialRunner
from descentlab.experiments.trial import DataSource

__all__ = [
    "BACKENDS",
    "check_backend",
    "make_runner",
    "ray_available",
    "train_all",
]


#: Values of ``compare(..., backend=...)`` and ``--backend``.
BACKENDS: tuple[str, ...] = ("local", "ray")


def ray_available() -> bool:
    """Whether Ray can be imported."""
    return importlib.util.find_spec("ray") is not None


def check_backend(backend: str, address: str | None = None) -> str:
    """``backend``, checked: a known name, ``address`` only with Ray, Ray installed.

    Raises:
        ValueError: unknown backend, or an address for the local backend.
        BackendUnavailable: ``"ray"`` without Ray installed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "local" and address is not None:
        raise ValueError(f"address is only used by the ray backend, got address={address!r}")
    if backend == "ray" and not ray_available():
        raise BackendUnavailable(_INSTALL_HINT)
    return backend


def make_runner(
    backend: str,
    store_path: str | os.PathLike[str],
    source: DataSource,
    *,
    workers: int = 1,
    threads: int = 1,
    address: str | None = None,
    vectorize: bool = False,
    checkpoint_every: int | str | None = None,
    nproc: int = 1,
) -> TrialRunner:
    """The trial runner of ``backend``: ``"local"`` (this machine's worker processes) or
    ``"ray"`` (Ray tasks; ``address`` joins a running cluster, None starts a local one).
    ``vectorize`` lets either train trials of one model together
    (:meth:`TrialRunner.submit_many <descentlab.experiments.runner.TrialRunner.submit_many>`):
    one worker task, or one Ray task, per group. ``checkpoint_every``: how trials checkpoint
    and resume mid-run, on either backend
    (:class:`~descentlab.experiments.runner.TrialRunner`,
    :class:`~descentlab.experiments.ray_runner.RayTrialRunner`).

    Raises:
        ValueError: unknown backend, or ``address`` given for the local backend.
        BackendUnavailable: ``"ray"`` without Ray installed.
    """
    if check_backend(backend, address) == "local":
        return TrialRunner(store_path, source, workers=workers, threads=threads,
                           vectorize=vectorize, checkpoint_every=checkpoint_every,
                           nproc=nproc)  # fmt: skip
    from descentlab.experiments.ray_runner import RayTrialRunner

    return RayTrialRunner(store_path, source, address=address, threads=threads,
                          vectorize=vectorize, checkpoint_every=checkpoint_every,
                          nproc=nproc)  # fmt: skip


def train_all(
    configs: Sequence[Any],
    store: Any = None,
    *,
    data: Any = None,
    backend: str = "local",
    address: str | None = None,
    threads: int | None = None,
) -> list[Any]:
    """Train every config (as :func:`~descentlab.engine.run.train` would, one after the
    other) here or as Ray tasks, and return their results in order.

    With ``backend="ray"`` each training is a Ray task; the data go into the object store
    once; with a ``store`` the runs are recorded by this process alone (each with its
    checkpoint), exactly as ``train(config, store)`` records them. The results' ``run_id``
    and ``checkpoint_path`` refer to this process's store.

    Args:
        configs: :class:`~descentlab.engine.config.RunConfig` objects.
        store: where to record the runs (None: not recorded).
        data: ``Splits`` to train on instead of loading each config's problem.
        backend: ``"local"`` or ``"ray"``.
        address: the Ray cluster to join (None: a local instance).
        threads: torch threads (and Ray CPUs) per training (None: this process's setting
            here, one per Ray task).

    Returns:
        One :class:`~descentlab.engine.run.RunResult` per config.
    """
    if check_backend(backend, address) == "local":
        from descentlab.engine.run import train

        with contextlib.nullcontext() if threads is None else torch_threads(threads):
            return [train(c, store, data=data, progress=False) for c in configs]
    from descentlab.experiments.ray_runner import train_remote

    return train_remote(configs, store, data, address, 1 if threads is None else threads)
