"""Training runs: one run with checkpoints and bit-exact resume; many runs at once.

- :class:`RunConfig` -- everything that defines a run (JSON round-trip, validated early);
- :func:`train` / :func:`resume` -- one run, recorded in a :class:`descentlab.store.Store`;
- :func:`evaluate` -- loss and accuracy of a model on tensors;
- :func:`train_many` -- K runs at once (vmap over stacked parameters, or worker processes);
- :func:`save_checkpoint` / :func:`load_checkpoint` -- atomic checkpoints, verified by their
  checksum (:class:`CheckpointError` when damaged or missing).
"""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import RunConfig, build_schedule, parse_schedule_arg, schedule_names
from .multirun import MODES, VMAP_MODELS, VectorizeError, expand_configs, plan, train_many
from .run import RunResult, evaluate, resume, train

__all__ = [
    "MODES",
    "VMAP_MODELS",
    "CheckpointError",
    "RunConfig",
    "RunResult",
    "VectorizeError",
    "build_schedule",
    "evaluate",
    "expand_configs",
    "load_checkpoint",
    "parse_schedule_arg",
    "plan",
    "resume",
    "save_checkpoint",
    "schedule_names",
    "train",
    "train_many",
]
