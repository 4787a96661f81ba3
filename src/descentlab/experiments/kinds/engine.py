"""The engine's run as a kind of trial: each trial a :class:`~descentlab.engine.config.
RunConfig` trained by the engine's loop (alone, across ``--nproc`` processes, or stacked with
others in one vectorized pass by :func:`~descentlab.experiments.execution.execute_group`),
scored by the problem's accuracy or loss."""

from __future__ import annotations

import functools
import time
from typing import Any

from descentlab.experiments.kinds import TrialKind

__all__ = ["KIND", "EngineRun"]


class EngineRun(TrialKind):
    """The engine's run (:class:`~descentlab.experiments.kinds.TrialKind`)."""

    stacks = prunes_in_pass = shards = True

    def train(
        self, store: Any, source: Any, trial: Any, checkpoint_every: Any, after: Any, nproc: int
    ) -> Any:
        """One trial trained by the engine here: from its last checkpoint where an earlier
        session was stopped in it, else from the start. ``nproc`` > 1: across that many
        processes of this machine, its model sharded
        (:func:`~descentlab.engine.launch.train_sharded`; the launcher, the process that calls
        it, writes ``store``)."""
        from descentlab.engine.run import resume, train
        from descentlab.experiments.execution import store_monitor, store_test_outcomes
        from descentlab.experiments.resume import discard_checkpoint, resume_unfinished
        from descentlab.experiments.trial import TrialOutcome

        t0 = time.perf_counter()
        data = source.get(trial.data)
        options: dict[str, Any] = {
            "checkpoint_every": checkpoint_every,
            "after_checkpoint": None,
            "keep_checkpoint": False,
        }  # (a finished trial is never continued)
        if after is not None:
            options["after_checkpoint"] = functools.partial(after, trial)
        if nproc > 1:
            result = _train_sharded(store, trial, data, nproc, checkpoint_every)
        else:
            cfg = trial.config
            result = resume_unfinished(
                store, trial,
                lambda run_id, **kw: resume(run_id, store, data=data, optimizer=cfg.optimizer,
                                            progress=False, schedule=cfg.schedule, **options,
                                            **kw),
            )  # fmt: skip
            if result is None:
                result = train(trial.config, store, data=data, progress=False, **options)
        with store.transaction():  # what the trial adds to its run: one write
            store_monitor(store, trial, result, nproc)
            store_test_outcomes(store, trial, result, data)
        discard_checkpoint(store, result)
        summary = dict(result.summary)
        return TrialOutcome(
            trial, result.run_id, result.status, summary, False, time.perf_counter() - t0
        )

    def training_words(self, spec: Any) -> str:
        from descentlab.experiments.compare.protocol import training_words

        return training_words(spec)


def _train_sharded(store: Any, trial: Any, data: Any, nproc: int, checkpoint_every: Any) -> Any:
    """The trial trained across ``nproc`` processes (continued from its last checkpoint where
    an earlier session was stopped in it, as
    :func:`~descentlab.experiments.resume.resume_unfinished` does)."""
    import torch

    from descentlab.engine.launch import train_sharded

    threads = torch.get_num_threads()
    options = {"data": data, "progress": False, "checkpoint_every": checkpoint_every,
               "threads": threads}  # fmt: skip
    if store.has_runs("interrupted"):
        record = store.find_run_by_config(trial.record_config(), status="interrupted")
        if record is not None:
            return train_sharded(None, nproc, store.path, resume_id=record.id, restart=True,
                                 optimizer=trial.config.optimizer,
                                 schedule=trial.config.schedule, **options)  # fmt: skip
    return train_sharded(trial.config, nproc, store.path, **options)


KIND = EngineRun()
