"""The compared optimizers' paths on analytic landscapes (the report's last figures).

A network's learning rate means nothing on a 2-D function, so each optimizer gets one for
the terrain: one kept at its default learning rate in the comparison keeps it here too; a
registered optimizer its record's demonstration rate
(:meth:`~descentlab.optim.OptimizerRecord.lr_on`: tuned where the lectures show it, else a
rule by family, so that a new optimizer gets its own rate, never SGD's); a composed or
outside optimizer the rate with the lowest final loss on a log grid (1e-4 .. 1e2, one
batched run). The paths are computed here, with the comparison; the report only draws them.

Example:
    >>> from descentlab.experiments.compare import parse_optimizer
    >>> races = landscape_races([parse_optimizer("adam")], ["ravine"], steps=20)
    >>> races[0].name, races[0].paths[0].label, races[0].paths[0].lr
    ('ravine', 'adam', 0.3)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from descentlab import optim
from descentlab.experiments.compare.results import LandscapePath, LandscapeRace
from descentlab.experiments.tuning import round_sig
from descentlab.problems import landscapes, trajectories

__all__ = ["LandscapePath", "LandscapeRace", "landscape_races"]


def landscape_races(
    choices: Sequence[Any], names: Sequence[str], *, steps: int = 150
) -> list[LandscapeRace]:
    """The optimizers' paths on each landscape of ``names`` (landscapes on which no optimizer
    could run are left out).

    Args:
        choices: the comparison's :class:`~descentlab.experiments.compare.OptimizerChoice`.
        names: landscape names.
        steps: steps per path.
    """
    out = []
    for name in names:
        f = landscapes.get(name)
        start = torch.tensor(f.start, dtype=torch.float64)
        bound = 100 * max(max(abs(lo), abs(hi)) for lo, hi in f.domain)
        paths = []
        for c in choices:
            if c.fixed_lr:  # shown as compared: at its default learning rate
                lr = c.default_lr()
            elif c.is_named:
                lr = optim.record(c.optimizer).lr_on(f)
            else:
                lr = _best_lr(f, c, start, steps, bound)
            hyper = dict(c.hyper) or None
            try:
                tr = trajectories.run(f, c.optimizer, start, steps, lr=lr, hyper=hyper, bound=bound)
            except (ValueError, TypeError):
                continue  # an optimizer the trajectory runner cannot drive (e.g. lookahead)
            paths.append(LandscapePath(c.label, c.display, lr, tr))
        if paths:
            out.append(LandscapeRace(name, steps, paths))
    return out


def _best_lr(f: Any, choice: Any, start: torch.Tensor, steps: int, bound: float) -> float:
    """The learning rate (of 25 on a log grid, 1e-4 .. 1e2) with the lowest final loss on
    ``f`` -- one batched run over the grid; the landscape's own rate if none is finite."""
    grid = [round_sig(float(v), 2) for v in np.geomspace(1e-4, 1e2, 25)]
    try:
        tr = trajectories.run(f, choice.optimizer, start, steps, lr=grid,
                              hyper=dict(choice.hyper) or None, bound=bound)  # fmt: skip
    except (ValueError, TypeError):
        return float(f.lr)
    final = tr.losses[:, -1].clone()
    final[tr.diverged] = float("inf")
    final[~torch.isfinite(final)] = float("inf")
    if not bool(torch.isfinite(final).any()):
        return float(f.lr)
    return grid[int(torch.argmin(final))]
