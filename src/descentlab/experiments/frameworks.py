"""Hugging Face's ``Trainer`` and Lightning's modules as objectives
(:mod:`~descentlab.experiments.objective`): descentlab supplies each trial's optimizer and
schedule, its length, seed and evaluation cadence, and reads the metric the user names from
the evaluations the framework makes."""
