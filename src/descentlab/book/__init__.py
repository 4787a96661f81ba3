"""The lecture book: every item of the five lectures, shown and checked.

==========================  ==================================================================
module                      what it holds
==========================  ==================================================================
``lectures``                the 131 items of ``shared/seed_items.md`` as data, by lecture
``texts``                   the teaching beside them, one module per lecture: each item's
                            explanation, code cell and playground view; the exercises
``model``                   :class:`Item`, :class:`Lecture`, :class:`Exercise`,
                            :class:`Play`, the :class:`Context` (experiment results cached
                            by settings *and* code hash)
``cells``                   runs the code cells and exercises, checks the answers, builds
                            the playground links
``reference``               float64 loops of the lectures' equations (shared with the tests)
``checks``                  checks with stated tolerances; formula checks on both backends
``optimizers``, ``descent``,  the evidence functions, each beside what it reads (an
``terrains``, ``schedules``,  experiment, the optimizers, the landscapes, the losses, the
``likelihood``,             regularizers)
``generalization``,
``convolution``
``build``                   compute the cards (evidence two cards share: once, referenced),
                            write the pages (rendered by :mod:`descentlab.report.lecture_book`),
                            the coverage table
==========================  ==================================================================

The book sits above ``report`` in the layer order: it computes, ``report`` renders what it
is given.
"""
