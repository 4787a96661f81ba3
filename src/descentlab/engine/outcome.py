"""What a run reports: its progress bar, its metric rows, its summary, its record in the store
and its :class:`RunResult`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from descentlab.engine.building import Built, split_metrics, test_metrics
from descentlab.engine.config import RunConfig
from descentlab.store import MetricSeries, Store, provenance

__all__ = [
    "Row",
    "RunResult",
    "create_record",
    "progress_bar",
    "series",
    "summarize",
]


#: One metric row: ``(step, split, name, value)``.
Row = tuple[int, str, str, float]


@dataclass
class RunResult:
    """What one run produced.

    Attributes:
        status: ``completed``, ``diverged`` or ``interrupted`` (paused by ``until_step`` or a
            signal; resumable).
        steps: optimizer steps taken.
        epochs: passes over the training data (fractional).
        wall_time: seconds spent training and evaluating, summed over resumptions.
        metrics: ``{"split/name": MetricSeries(steps, values)}`` at every evaluation:
            ``train/loss``, ``train/accuracy``, ``val/loss``, ``val/accuracy`` (accuracy for
            classification), ``train/objective`` (the mean regularized mini-batch loss since
            the previous evaluation), ``progress/epoch``, ``progress/wall_time``,
            ``hyper/<name>`` for scheduled hyperparameters, and ``test/*`` at the last step.
        summary: the returned model's final metrics (after restoring the best weights if early
            stopping asked for it) plus ``steps``, ``epochs``, ``wall_time``, ``best_step``.
        model: the trained model.
        config: the run's configuration.
        run_id: the run's id in the store, or None.
        message: why the run ended, if not by completing its steps.
        checkpoint_path: the run's checkpoint file, or None.
    """

    status: str
    steps: int
    epochs: float
    wall_time: float
    metrics: dict[str, MetricSeries]
    summary: dict[str, Any]
    model: nn.Module
    config: RunConfig
    run_id: int | None = None
    message: str | None = None
    checkpoint_path: Path | None = None


@contextlib.contextmanager
def progress_bar(
    show: bool | None,
    total: int,
    initial: int,
    desc: str,
    named: Callable[[], str] | None = None,
) -> Iterator[Any]:
    """A tqdm bar of ``total`` steps (``show``: True, or None where stderr is a terminal);
    else, where this process's trials print their progress (a comparison's:
    :func:`~descentlab.engine.trial_lines.trial_lines`), its lines (named by ``named()``, a
    run's name, lr and seed, where it is given, else ``desc``); else None."""
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        from descentlab.engine.trial_lines import StepLines, lines_on

        yield StepLines(total, initial, named or desc) if lines_on() else None
        return
    bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


def series(rows: list[Row]) -> dict[str, MetricSeries]:
    grouped: dict[str, tuple[list[int], list[float]]] = {}
    for step, split, name, value in rows:
        steps, values = grouped.setdefault(f"{split}/{name}", ([], []))
        steps.append(step)
        values.append(value)
    return {
        k: MetricSeries(np.asarray(s, dtype=np.int64), np.asarray(v, dtype=np.float64))
        for k, (s, v) in sorted(grouped.items())
    }


def summarize(
    config: RunConfig,
    b: Built,
    status: str,
    position: tuple[int, float, float],
    log: Callable[[list[Row]], None],
    evaluating: Callable[[], Any] = contextlib.nullcontext,
    measured: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The summary of a run that ended with ``status`` at ``position = (steps, epochs, wall
    time)``: a completed run's final train/validation metrics and (once, logged through
    ``log``) its test metrics, then its length and early stopping's best step. ``evaluating``
    is the context the model is evaluated in (optimizers with an eval mode); ``measured``: the
    model's train/validation metrics (:func:`split_metrics`) where the caller has just
    measured them on the same weights."""
    steps, epochs, elapsed = position
    summary: dict[str, Any] = {}
    if status == "completed":
        with evaluating():
            summary.update(
                split_metrics(b, config.evaluate_train) if measured is None else measured
            )
            if config.evaluate_test:
                test = test_metrics(b)
        if config.evaluate_test:
            log([(steps, "test", k, v) for k, v in test.items()])
            summary.update({f"test/{k}": v for k, v in test.items()})
    summary.update({"steps": steps, "epochs": epochs, "wall_time": elapsed})
    if b.early is not None:
        summary["best_step"] = b.early.best_step
    return summary


def create_record(
    store: Store,
    config: RunConfig,
    b: Built,
    *,
    record: Mapping[str, Any],
    **extra: Any,
) -> int:
    """Record a new run of ``config`` in ``store`` (status ``running``); returns its id. The
    provenance names the resolved model and loss, the length, this process and host, and
    ``extra``. ``record``: what the store keeps of ``config``, ``config.to_dict()`` (a
    checked config's, :meth:`~descentlab.engine.config.RunConfig.checked_record`)."""
    prov = provenance(
        config.seed,
        resolved={"model": b.model_name, "loss": b.loss_name},
        total_steps=b.total_steps,
        pid=os.getpid(),
        hostname=socket.gethostname(),
        **extra,
    )
    return store.create_run(record, name=b.run_name, seed=config.seed, provenance=prov)
