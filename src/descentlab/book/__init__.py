"""The book: everything that teaches. Every item of the five lectures, shown and checked; the
central topics at depth; the lectures' experiments and figures.

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
``claims``                  teaching sentences bound to small instrumented runs: a phrase, its
                            opposite, the run that says which holds, the page it lives on
``keep_claims``             the chapters' "What to keep" lines bound the same way, each
                            against its misconception, and those nothing can back
``teaching``                the census of teaching sentences by kind, backed or listed
``optimizers``, ``descent``,  the evidence functions, each beside what it reads (an
``terrains``, ``schedules``,  experiment, the optimizers, the landscapes, the losses, the
``likelihood``,             regularizers)
``generalization``,
``convolution``
``chapters``                the central topics at depth, one page each
``experiments``             the lectures' experiments (sharp minima, bias-variance, bagging
                            and boosting, schedules, ...), one module each
``decays``                  the lectures' decay schedules in the lectures' own terms
``render``                  the pages and figures: lecture pages, chapters, the claims'
                            panels, the experiments' figures, the lectures' own figures
``build``                   compute the cards (evidence two cards share: once, referenced),
                            write the pages (rendered by :mod:`descentlab.book.render.pages`),
                            the coverage table
==========================  ==================================================================

The book is one wing above the library: it imports the library, and nothing of the library
imports it (only ``playground`` and ``cli``, above it, do).
"""
