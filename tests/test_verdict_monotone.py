"""No cliff: a seed made worse never makes its optimizer's verdict gentler. One seed of an
optimizer is pulled down step by step, through the point where its run counts as failed (an
accuracy at chance, a loss past the one a run that learned nothing ends at), and at every step
its verdict against the chosen one must be at least as severe as at the step before
(better < not distinguishable < worse). The code before decided with the seeds' t (and a
bootstrap-t) on the seeds both trained: a single large difference widens those intervals more
than it moves the mean, and a failed seed left the comparison -- "worse" at 0.797, "not
distinguishable" at 0.699-0.502 and "worse" again once failed at 0.484 (docs/verdict.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from descentlab.experiments.compare import sequential

SEVERITY = {"better": 0, "identical": 1, "not distinguishable": 1, "worse": 2}
DROPS = np.linspace(0.0, 0.6, 25)  # accuracy points (a loss: its log) taken from one seed


def _world(seeds: int, shift: float, maximize: bool, rng: np.random.Generator):
    """Per-example outcomes of the chosen optimizer, two equal others and the one judged
    (``shift`` worse on the logit or log scale; negative: better), 400 test examples, and a
    function giving the judged one's seed 0 made worse by a drop (None once it fails)."""
    a = rng.normal(1.8 if maximize else 0.0, 2.0 if maximize else 0.5, 400)
    u = rng.random((4, seeds, 400))
    effect = 0.3 * rng.normal(size=(4, seeds))
    noise = 0.5 * rng.normal(size=(4, seeds, 400))

    def runs(o: int, offset: float) -> np.ndarray:
        x = a[None, :] + offset + effect[o][:, None]
        return (u[o] < 1 / (1 + np.exp(-x))).astype(float) if maximize else np.exp(x + noise[o])

    sign = 1.0 if maximize else -1.0
    best, *equal = (dict(enumerate(runs(o, 0.0))) for o in range(3))
    judged = runs(3, -sign * shift)

    def dropped(drop: float) -> dict[int, np.ndarray | None]:
        values: dict[int, np.ndarray | None] = dict(enumerate(judged))
        x = a + -sign * shift + effect[3][0]
        if maximize:  # its per-example chances scaled down; at chance (0.5) it failed
            p = 1 / (1 + np.exp(-x)) * max(0.0, 1.0 - drop / 0.85)
            row = (u[3][0] < p).astype(float)
            values[0] = row if row.mean() > 0.5 else None
        else:  # its losses raised; past 3 (what a run that learned nothing ends at) it failed
            row = np.exp(x + drop * 6.0 + noise[3][0])
            values[0] = row if row.mean() < 3.0 else None
        return values

    return best, equal, dropped


@pytest.mark.parametrize("maximize", [True, False], ids=["accuracy", "loss"])
@pytest.mark.parametrize(
    ("seeds", "looks"), [(3, (3,)), (5, (5,)), (10, (10,)), (40, (5, 10, 20, 40))]
)
@pytest.mark.parametrize("shift", [0.0, 0.25, -0.25, 1.0], ids=["equal", "worse", "better", "far"])
def test_a_seed_made_worse_never_makes_its_verdict_gentler(maximize, seeds, looks, shift):
    for draw in range(3):
        rng = np.random.default_rng([seeds, draw, int(100 * shift) + 50, maximize])
        best, equal, dropped = _world(seeds, shift, maximize, rng)
        before, failed_at = -1, None
        for drop in DROPS:
            other = dropped(float(drop))
            t = sequential.look(best, [other, *equal], maximize=maximize, looks=looks, final=True)
            now = SEVERITY[t.tests[0].verdict]
            assert now >= before, (draw, float(drop), t.tests[0].verdict, before)
            before = now
            if other[0] is None and failed_at is None:
                failed_at = drop
        assert failed_at is not None  # the drops reach past the failure threshold
