r"""Which optimizer, with which learning rate, for this model? A fixed protocol to answer it.

The lectures' answer (the gradient-descent lecture, quoting Bengio) is that no optimizer wins
everywhere: one has to experiment. :func:`compare` runs that experiment with the methodology of
the optimization-techniques lecture, for a problem and a list of optimizers (named, or composed
from update rules):

.. code-block:: text

    for each optimizer:
        tune      every candidate setting (log grid or random search of lr, optionally other
                  hyperparameters) for `tune_steps`, trained on the training split and scored
                  on the validation split (holdout) or on k folds (cross-validation) -- the
                  test data are not even present in these runs
        select    the best mean validation score (accuracy; loss for regression); diverged
                  settings never win
        curves    the best setting, N seeds, `steps` long, on train / validation: learning
                  curves, speedups, the optimizer's monitor (update-to-parameter ratio)
        refit     the best setting, N seeds, `steps` long, on train + validation; the test set
                  is evaluated once, at the end of each refit run
    verdict       the best on validation is chosen; each other is compared with it on the test
                  seeds both trained (sized, with simultaneous intervals); failed test seeds
                  apart; more seeds where a comparison is open (docs/verdict.md)
    report        per optimizer: test metric and interval, failed trials and test seeds, the
                  verdict, speedups in steps and seconds; the lr sensitivity curve

Every trial is a run in the SQLite store of the run directory, found again by its config: the
same call after an interruption (Ctrl-C, a kill) skips every finished trial, and since every
trial is deterministic (seeded, single-threaded) the final table equals an uninterrupted
run's (apart from wall-clock seconds). Trials run in worker processes (``workers``).

Example:
    >>> import tempfile
    >>> from descentlab.experiments.compare import CompareSpec, compare
    >>> spec = CompareSpec(problem="moons", problem_options={"n_samples": 300}, model="mlp",
    ...                    optimizers=["sgd", "adam"], batch_size=32, steps=60, tune_steps=30,
    ...                    lrs_per_optimizer=2, seeds=2, target_accuracy=0.8, landscapes=())
    >>> result = compare(spec, tempfile.mkdtemp(), workers=1, progress=False)
    >>> [r.label for r in result.results]
    ['sgd', 'adam']
    >>> 0.0 <= result.results[1].test_accuracy[0] <= 1.0
    True

References:
    Schneider, Balles, Hennig, "DeepOBS: a deep learning optimizer benchmark suite", ICLR 2019
    (protocol: tune on a grid, rerun the best with several seeds; tuneability plots).
    Sivaprasad et al., "Optimizer benchmarking needs to account for hyperparameter tuning",
    ICML 2020.
    Hastie, Tibshirani, Friedman, "The elements of statistical learning", 2nd ed., section 7.10
    (cross-validation; the test set is used once, at the end).
"""

from descentlab._lazy import exports

# each submodule is imported when one of its names is first read (reading a CompareSpec, as
# `descentlab compare --help` does, imports neither the runner nor the statistics)
__all__, __getattr__, __dir__ = exports(
    __name__,
    {
        "choices": ("OptimizerChoice", "parse_optimizer", "parse_rule"),
        "collect": ("collect", "load_comparison"),
        "planning": ("Found", "final_setting", "final_trials", "tuning_plan", "tuning_trials"),
        "results": ("CandidateResult", "Comparison", "OptimizerResult"),
        "running": ("Interrupted", "compare", "prepare"),
        "spec": ("DEFAULT_OPTIMIZERS", "CompareSpec", "tuning_settings"),
    },
)
