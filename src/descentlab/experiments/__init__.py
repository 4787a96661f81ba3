"""Experiments: the comparison protocol and the lectures' experiments.

- :mod:`descentlab.experiments.compare` -- "which optimizer and learning rate for my model?":
  tune on validation data only, refit with several seeds, evaluate on the test set once;
- :mod:`descentlab.experiments.tuning`, :mod:`descentlab.experiments.trials` -- search
  spaces, cross-validation splits and resumable trials;
- :mod:`descentlab.experiments.lectures` -- sharp minima, bias-variance, bagging and
  boosting, regularization, schedules, momentum forms (the DL-basics, optimization-basics and
  momentum lectures).

Import the submodules directly, e.g. ``from descentlab.experiments import lectures``.
"""
