"""descentlab: a laboratory for gradient-based optimization in PyTorch.

Subpackages (data flows down; nothing imports upward):

- :mod:`descentlab.optim` -- update rules, ``chain`` and torch-compatible optimizers;
- :mod:`descentlab.schedules` -- ``step -> value`` schedules and a scheduler driving any
  hyperparameter of a param group;
- :mod:`descentlab.problems` -- analytic landscapes, datasets and models;
- :mod:`descentlab.engine` -- training runs, many runs at once, checkpoints;
- :mod:`descentlab.experiments` -- comparison protocols and the lectures' experiments;
- :mod:`descentlab.report` -- figures and the HTML report.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
