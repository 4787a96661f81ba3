"""descentlab: a laboratory for gradient-based optimization in PyTorch.

Subpackages (data flows down; nothing imports upward):

- :mod:`descentlab.optim` -- update rules, ``chain`` and torch-compatible optimizers;
- :mod:`descentlab.schedules` -- ``step -> value`` schedules and a scheduler driving any
  hyperparameter of a param group;
- :mod:`descentlab.problems` -- analytic landscapes, datasets and models;
- :mod:`descentlab.engine` -- training runs, many runs at once, checkpoints;
- :mod:`descentlab.experiments` -- comparison protocols and the lectures' experiments;
- :mod:`descentlab.report` -- figures and the HTML report.

:class:`Score` is what your own training code returns to ``descentlab compare`` (docs/compare.md).
"""

from dataclasses import dataclass
from typing import Any

__version__ = "0.1.0"

__all__ = ["Score", "__version__"]


@dataclass(frozen=True)
class Score:
    """What an objective returns.

    Attributes:
        value: its metric on the split it was told to evaluate (NaN or infinite: the trial
            diverged, as a run whose loss goes non-finite).
        maximize: True for a score (accuracy, BLEU), False for a loss or an error rate.
        name: the metric's name (the protocol's lines say it).
        examples: in a refit run, the metric of each test example (their mean is ``value``):
            the verdict then pairs the optimizers by seed and by test example; None: by seed
            only (the report says so).
        bounds: ``(low, high)``, the range the metric can take (``(0, 1)`` for an accuracy or
            an F1 score; an end may be infinite): its intervals stay inside it and a difference
            within its width; None: unbounded.

    Example:
        >>> Score(0.91, maximize=True, name="f1", bounds=(0, 1))
        Score(value=0.91, maximize=True, name='f1', examples=None, bounds=(0, 1))
    """

    value: float
    maximize: bool
    name: str = "metric"
    examples: Any = None
    bounds: tuple[float, float] | None = None
