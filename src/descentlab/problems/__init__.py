"""What is optimized: analytic landscapes, datasets and models.

Import the submodules directly: :mod:`descentlab.problems.landscapes`,
:mod:`descentlab.problems.data`, :mod:`descentlab.problems.models`,
:mod:`descentlab.problems.convarith`.
"""
