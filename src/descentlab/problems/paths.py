"""What a run on an analytic landscape records: :class:`Trajectories` (``K`` runs' iterates
and losses), :class:`Race` (one optimizer's run in a race) and the optimizers' names and
demonstration learning rates.

These are values: :mod:`descentlab.problems.trajectories` runs the optimizers and returns them,
the report draws them without running anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from descentlab import optim
from descentlab.problems.landscapes import Landscape
from descentlab.problems.landscapes import get as get_landscape

__all__ = [
    "OptimizerSpec",
    "Race",
    "Trajectories",
    "default_lr",
    "display_name",
    "optimizer_label",
]

#: What :func:`descentlab.problems.trajectories.run` accepts as an optimizer.
OptimizerSpec = str | optim.Rule | type[torch.optim.Optimizer]


@dataclass(frozen=True)
class Trajectories:
    """The recorded runs (conventions: :mod:`descentlab.problems.trajectories`).

    Attributes:
        paths: ``(K, T + 1, d)`` iterates, index 0 is the start (a view of time-major
            storage: not contiguous).
        losses: ``(K, T + 1)`` exact losses ``f(x_t)`` (also a view).
        diverged: ``(K,)`` bool.
        diverged_at: ``(K,)`` int64, the first step whose point was invalid; -1 if none.
        lr: ``(K,)`` learning rates when given as numbers, else ``None``.
        landscape: the landscape's name.
        optimizer: a label for the optimizer.
        batched: True for the one-parameter batched path, False for the param-group fallback.
        kernel: True when the whole run was one compiled kernel call
            (:mod:`descentlab.problems.kernels`); its arrays are then contiguous in
            time-major order as well.
    """

    paths: Tensor
    losses: Tensor
    diverged: Tensor
    diverged_at: Tensor
    lr: Tensor | None
    landscape: str
    optimizer: str
    batched: bool
    kernel: bool = False

    @property
    def steps(self) -> int:
        """``T``, the number of optimizer steps."""
        return int(self.paths.shape[1]) - 1

    @property
    def final_points(self) -> Tensor:
        """``(K, d)``: ``x_T`` (the frozen point for diverged runs)."""
        return self.paths[:, -1]

    @property
    def final_losses(self) -> Tensor:
        """``(K,)``: ``f(x_T)``; ``inf`` for diverged runs (their frozen loss is misleading)."""
        out = self.losses[:, -1].clone()
        out[self.diverged] = math.inf
        return out


def optimizer_label(optimizer: OptimizerSpec) -> str:
    """A short human-readable name for an optimizer spec."""
    if isinstance(optimizer, str):
        return optimizer
    if isinstance(optimizer, optim.Rule):
        return " -> ".join(r.name for r in optimizer.rules)
    return getattr(optimizer, "__name__", repr(optimizer))


def display_name(name: str) -> str:
    """How the lectures write an optimizer's name (its record's ``display``; other names as
    given)."""
    key = name.lower()
    return optim.record(key).display if key in optim.NAMES else name


def default_lr(landscape: Landscape | str, optimizer: str) -> float:
    """A learning rate that shows ``optimizer`` well on ``landscape``: its record's
    :meth:`~descentlab.optim.OptimizerRecord.lr_on` (the tuned demonstration value where the
    lectures show it, else a rule by family -- never another optimizer's rate)."""
    f = get_landscape(landscape) if isinstance(landscape, str) else landscape
    return optim.record(optimizer).lr_on(f)


@dataclass(frozen=True)
class Race:
    """One optimizer's run in a comparison: its name, learning rate and trajectory (K = 1)."""

    name: str
    lr: float
    traj: Trajectories

    @property
    def label(self) -> str:
        return f"{display_name(self.name)} (lr={self.lr:g})"
