r"""Which optimizer, with which learning rate, for this model? A fixed protocol to answer it.

:func:`compare` tunes each optimizer on the validation data, trains the chosen setting over
several seeds for curves and for the test, and gives a verdict with intervals; every trial is
a run in the run directory's store, so the same call after an interruption skips every
finished trial (the protocol, step by step: docs/compare.md).

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
    Schneider, Balles, Hennig, "DeepOBS: a deep learning optimizer benchmark suite", ICLR 2019.
    Sivaprasad et al., "Optimizer benchmarking needs to account for hyperparameter tuning",
    ICML 2020.
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
