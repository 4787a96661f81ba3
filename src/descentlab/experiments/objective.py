"""Your own training code as what a comparison compares optimizers on.

An *objective* is a function ``fn(run) -> Score``: for one trial of the protocol it trains with
the optimizer :class:`Run` builds for ``run.steps`` steps from ``run.seed``, evaluates on
``run.split`` and returns its metric with the metric's direction; each trial is one call of
``fn`` (:func:`run_trial`). A Hugging Face ``Trainer`` and a Lightning module are objectives too
(:mod:`~descentlab.experiments.frameworks`). What the protocol does with it and what descentlab
cannot check: docs/compare.md ("Your own training code").
"""

from __future__ import annotations

from descentlab import Score
from descentlab.experiments.kinds.code import for_compare, learned
from descentlab.experiments.kinds.code_identity import Objective, continued
from descentlab.experiments.kinds.code_run import Run, slot
from descentlab.experiments.kinds.code_trial import run_trial

__all__ = ["Objective", "Run", "Score", "continued", "for_compare", "learned", "run_trial", "slot"]
