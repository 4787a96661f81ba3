"""Experiments: the comparison protocol and the trials it runs.

- :mod:`descentlab.experiments.compare` -- "which optimizer and learning rate for my model?":
  tune on validation data only, refit with several seeds, evaluate on the test set once;
- :mod:`descentlab.experiments.tuning` -- search spaces and cross-validation splits;
- a trial's life: what a trial is (:mod:`~descentlab.experiments.trial`), the runner (its
  queue, the trials' groups and costs, its workers: :mod:`~descentlab.experiments.runner`),
  which worker trains what (:mod:`~descentlab.experiments.packing`), one task's execution
  (:mod:`~descentlab.experiments.execution`), resume and orphans
  (:mod:`~descentlab.experiments.resume`), the choice of runner
  (:mod:`~descentlab.experiments.runners`; on a Ray cluster:
  :mod:`~descentlab.experiments.ray_runner`).

The lectures' experiments (sharp minima, bias-variance, bagging and boosting, ...) are the
book's: :mod:`descentlab.book.experiments`.

Import the submodules directly, e.g. ``from descentlab.experiments import tuning``.
"""
