"""The engine's run as a kind of trial: each trial a :class:`~descentlab.engine.config.
RunConfig` trained by the engine's loop (alone, across ``--nproc`` processes, or stacked with
others in one vectorized pass by :func:`~descentlab.experiments.execution.execute_group`),
scored by the problem's accuracy or loss."""

from __future__ import annotations

import functools
from typing import Any

from descentlab.experiments.kinds import TrialKind

__all__ = ["KIND", "EngineRun"]


class EngineRun(TrialKind):
    """The engine's run (:class:`~descentlab.experiments.kinds.TrialKind`)."""

    stacks = prunes_in_pass = shards = True

    def train(self, store: Any, source: Any, trial: Any, checkpoint_every: Any, after: Any,
              nproc: int, resume: int | None = None, restart: bool = False) -> Any:  # fmt: skip
        """One trial trained by the engine here: from the start, or continuing its interrupted
        run ``resume`` (from step 0 with ``restart``). ``nproc`` > 1: across that many
        processes of this machine, its model sharded
        (:func:`~descentlab.engine.launch.train_sharded`; the launcher, the process that calls
        it, writes ``store``)."""
        from descentlab.engine import run

        cfg, data = trial.config, source.get(trial.data)
        kept = {"optimizer": cfg.optimizer, "schedule": cfg.schedule}
        if nproc > 1:  # (a stopped trial starts over as the same run)
            import torch

            from descentlab.engine.launch import train_sharded

            options = {"data": data, "progress": False, "checkpoint_every": checkpoint_every,
                       "threads": torch.get_num_threads()}  # fmt: skip
            result = (train_sharded(cfg, nproc, store.path, **options) if resume is None else
                      train_sharded(None, nproc, store.path, restart=True, resume_id=resume,
                                    begun=True, **kept, **options))  # fmt: skip
        else:
            options = {
                "data": data,
                "progress": False,
                "checkpoint_every": checkpoint_every,
                "keep_checkpoint": False,
            }  # (a finished trial is never continued)
            if after is not None:
                options["after_checkpoint"] = functools.partial(after, trial)
            result = (run.train(cfg, store, **options) if resume is None else
                      run.resume(resume, store, **kept, **options, restart=restart,
                                 begun=True))  # fmt: skip
        return result

    def resume_step(self, store: Any, trial: Any, run_id: int, restart: bool) -> int:
        """The step of the run's checkpoint, verified."""
        from descentlab.engine.resuming import resumption

        cfg = trial.config
        kept = {"optimizer": cfg.optimizer, "schedule": cfg.schedule}
        return resumption(store, run_id, restart=restart, **kept).after


KIND = EngineRun()
