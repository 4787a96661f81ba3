"""Training runs: one run with checkpoints and bit-exact resume; many runs at once.

- :class:`RunConfig` -- everything that defines a run (JSON round-trip, validated early);
- :func:`train` / :func:`resume` -- one run, recorded in a :class:`descentlab.store.Store`;
- :func:`evaluate` -- loss and accuracy of a model on tensors;
- :func:`save_checkpoint` / :func:`load_checkpoint` -- atomic checkpoints.
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import RunConfig, build_schedule, parse_schedule_arg, schedule_names
from .run import RunResult, evaluate, resume, train

__all__ = [
    "RunConfig",
    "RunResult",
    "build_schedule",
    "evaluate",
    "load_checkpoint",
    "parse_schedule_arg",
    "resume",
    "save_checkpoint",
    "schedule_names",
    "train",
]
