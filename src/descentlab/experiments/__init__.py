"""Experiments: the comparison protocol and the trials it runs.

- :mod:`descentlab.experiments.compare` -- "which optimizer and learning rate for my model?":
  tune on validation data only, refit with several seeds, evaluate on the test set once;
- :mod:`descentlab.experiments.tuning`, :mod:`descentlab.experiments.trials` -- search
  spaces, cross-validation splits and resumable trials.

The lectures' experiments (sharp minima, bias-variance, bagging and boosting, ...) are the
book's: :mod:`descentlab.book.experiments`.

Import the submodules directly, e.g. ``from descentlab.experiments import tuning``.
"""
