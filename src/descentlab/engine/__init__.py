"""Training runs: one run with checkpoints and bit-exact resume; many runs at once.

- :class:`RunConfig` -- everything that defines a run (JSON round-trip, validated early);
- :func:`train` / :func:`resume` -- one run, recorded in a :class:`descentlab.store.Store`;
- :func:`evaluate` -- loss and accuracy of a model on tensors;
- :func:`train_many` -- K runs at once (vmap over stacked parameters, or worker processes);
- :func:`save_checkpoint` / :func:`load_checkpoint` -- atomic checkpoints, verified by their
  checksum (:class:`CheckpointError` when damaged or missing).
"""

from descentlab._lazy import exports

# each submodule is imported when one of its names is first read (training imports the
# engine; reading a RunConfig or printing --help does not)
__all__, __getattr__, __dir__ = exports(
    __name__,
    {
        "checkpoint": ("CheckpointError", "load_checkpoint", "save_checkpoint"),
        "config": ("RunConfig", "build_schedule", "schedule_names"),
        "multirun": (
            "MODES",
            "VMAP_MODELS",
            "VectorizeError",
            "expand_configs",
            "plan",
            "train_many",
        ),
        "run": ("RunResult", "evaluate", "resume", "train"),
    },
)
