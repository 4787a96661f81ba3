r"""The protocol a comparison ran, as text generated from its spec: the search and its seed,
each optimizer's search space, the tuning seeds and steps, pruning, the final runs and how
the verdict is reached. The console, the HTML report and ``comparison.json`` all show these
same lines (:meth:`~descentlab.experiments.compare.Comparison.protocol`).

Example:
    >>> from descentlab.experiments.compare import CompareSpec
    >>> lines = protocol_lines(CompareSpec(optimizers=["sgd", "adam"], search="quasirandom",
    ...                                    lrs_per_optimizer=4, seeds=3, steps=200))
    >>> print(lines[0][:88])
    tuning: 4 trials per optimizer, the first points of a scrambled Halton sequence (seed 0)
    >>> lines[0].endswith("200 steps each; scored on a holdout validation split (20%, split seed 0); pruning: off")
    True
    >>> print(*lines[1].split(", "), sep=",\n     ")
      SGD: lr log-uniform [0.01, 1],
       weight_decay log-uniform [1e-06, 0.01],
       warmup in {0, 0.05, 0.1},
       schedule in {constant, cosine, linear}
"""  # noqa: E501

from __future__ import annotations

from typing import Any

from descentlab.experiments.compare.search_space import QUASIRANDOM, declared_space
from descentlab.experiments.kinds import kind_of

__all__ = ["protocol_lines", "pruning", "search_words", "training_words"]


def pruning(spec: Any) -> str:
    """The spec's pruning as words (``"off"`` where the spec has none)."""
    value = getattr(spec, "prune", None)
    if value is None or value is False or str(value).lower() in ("", "none", "off", "false"):
        return "off"
    return "on" if value is True else str(value)


def training_words(spec: Any, batch: int | str | None = None) -> str:
    """How every run trained, in the protocol's words: the batch each optimizer step saw
    (with accumulation, the micro-batches that make it), the precision, clipping, and what
    pruning did to the tuning trials' length. ``batch``: the batch size the runs had (the
    spec's where None; ``"auto"`` is said as such).

    Example:
        >>> from descentlab.experiments.compare import CompareSpec
        >>> print(training_words(CompareSpec(optimizers=["sgd"], batch_size=32, accumulate=4,
        ...                                  precision="bf16", clip_grad_norm=1.0)))
        training: each optimizer step on 128 examples (4 accumulated micro-batches of 32); bf16 mixed precision (autocast forward and loss; weights and optimizer state in fp32); gradients clipped to norm 1 before each step; every tuning trial trained its full length
    """  # noqa: E501
    size = spec.batch_size if batch is None else batch
    acc = getattr(spec, "accumulate", 1) or 1
    if size is None:
        step = "each optimizer step on the full training batch"
        if acc > 1:
            step += f" (in {acc} accumulated parts)"
    elif isinstance(size, str):
        step = f"each optimizer step on a mini-batch of the automatic size ({size})"
        if acc > 1:
            step += f", {acc} of them accumulated per step"
    elif acc > 1:
        step = (
            f"each optimizer step on {size * acc} examples ({acc} accumulated micro-batches of "
            f"{size})"
        )
    else:
        step = f"each optimizer step on a mini-batch of {size}"
    precision = getattr(spec, "precision", "fp32")
    if precision == "fp32":
        prec = "fp32 throughout"
    elif precision == "auto":  # what engine.precision.choose decides, run by run
        from descentlab.engine.precision import AUTO_BF16_MIN_PARAMS

        prec = (
            "precision auto: fp32, except a run trained alone on a CPU with bf16 arithmetic "
            f"whose model has at least {AUTO_BF16_MIN_PARAMS:,} parameters (bf16 autocast "
            "forward and loss; weights and optimizer state in fp32); runs of a vectorized pass "
            "train in fp32"
        )
    else:
        prec = (
            f"{precision} mixed precision (autocast forward and loss; weights and optimizer "
            "state in fp32)"
        )
    clip = getattr(spec, "clip_grad_norm", None)
    clipped = (
        f"gradients clipped to norm {clip:g} before each step" if clip else "no gradient clipping"
    )
    if pruning(spec) == "off":
        pruned = "every tuning trial trained its full length"
    else:
        from descentlab.experiments.compare.pruning import rung_steps

        rungs = rung_steps(spec.tune_length, spec.prune)
        pruned = (
            f"tuning settings clearly behind at a rung (steps {', '.join(map(str, rungs))} of "
            f"{spec.tune_length}) stopped there ({pruning(spec)}): a pruned setting trained only "
            "to its rung; the final runs are never shortened"
            if rungs
            else f"pruning on but no rung: trials of {spec.tune_length} steps are too short"
        )
    return f"training: {step}; {prec}; {clipped}; {pruned}"


def search_words(spec: Any) -> str:
    """How the tuning settings were drawn, in words."""
    n = spec.lrs_per_optimizer
    if spec.search == QUASIRANDOM:
        return (
            f"{n} trials per optimizer, the first points of a scrambled Halton sequence (seed "
            f"{spec.seed}) over each one's declared search space, never refined"
        )
    if spec.search == "random":
        return f"{n} random draws per optimizer (numpy, seed {spec.seed}) over its search space"
    text = f"a log grid of {n} learning rates per optimizer"
    if spec.space:
        text += ", crossed with its other values"
    if spec.refine:
        text += (
            f", then extended past an edge that wins (at most {spec.max_extend} points beyond "
            "each end) and refined half a step on either side of the best"
        )
    return text


def _values(values: Any) -> str:
    if isinstance(values, tuple):
        return f"log-uniform [{values[0]:g}, {values[1]:g}]"
    shown = (f"{v:g}" if isinstance(v, float) else str(v) for v in values)
    return f"in {{{', '.join(shown)}}}"


def _space(spec: Any, choice: Any) -> str:
    """One optimizer's search space as the spec declares it."""
    from descentlab.experiments.compare.spec import _space_for

    if choice.fixed_lr:
        given = "lr" in choice.hyper
        return (
            f"not tuned: {'the lr given,' if given else 'its default lr'} {choice.default_lr():g}"
        )
    extra = _space_for(spec, choice)
    if spec.search == QUASIRANDOM:
        return declared_space(choice, extra).describe()
    lo, hi = choice.lr_range
    lr = f"lr {'log grid' if spec.search == 'grid' else 'log-uniform'} [{lo:g}, {hi:g}]"
    return ", ".join([lr, *(f"{k} {_values(v)}" for k, v in extra.items())])


def protocol_lines(
    spec: Any, *, metric: str = "accuracy", compared: int | None = None
) -> list[str]:
    """The protocol of ``spec`` as lines of text: tuning, one line per optimizer (its search
    space, indented), the final runs and the verdict. ``metric``: the validation metric
    tuning scored; ``compared``: the optimizers with final test results (for the number of
    comparisons the verdict corrects for)."""
    k = spec.tune_seeds
    tune_seeds = ", ".join(map(str, spec.tuning_seeds))
    kind = kind_of(spec)
    scored = kind.scored_on(spec) or (
        f"{spec.cv_folds}-fold cross-validation (split seed {spec.split_seed})"
        if spec.cv_folds
        else f"a holdout validation split ({spec.val_fraction:.0%}, split seed {spec.split_seed})"
    )
    choices = spec.choices()
    if any(not c.fixed_lr for c in choices):
        lines = [
            f"tuning: {search_words(spec)}; {k} tuning seed{'s' if k != 1 else ''} "
            f"({tune_seeds}); {spec.tune_length} steps each; scored on {scored}; pruning: "
            f"{pruning(spec)}"
        ]
    else:
        lines = ["tuning: none, every optimizer at a fixed learning rate"]
    lines += [f"  {c.display}: {_space(spec, c)}" for c in choices]
    lines.append(kind.training_words(spec) or training_words(spec))
    seeds = ", ".join(map(str, spec.final_seeds))
    looks = spec.looks
    tests = spec.test_seeds
    lines.append(
        f"final runs: the chosen setting, {spec.steps} steps: curve runs on the training split "
        f"with {spec.seeds} seeds ({seeds}; validation every {spec.curve_eval_every} steps), "
        f"refit runs on training + validation data with other seeds ({tests[0]}, {tests[1]}, "
        f"...; the test set evaluated once, at the end): {looks[0]} each"
        + (
            f", then more where a comparison is still open (looks at {', '.join(map(str, looks))}"
            " test seeds)"
            if len(looks) > 1
            else ""
        )
        if len(tests) > 1
        else f"final runs: the chosen setting with {spec.seeds} seed, {spec.steps} steps"
    )
    m = compared if compared is not None else len(spec.optimizers)
    paired = kind.paired
    conf = round(spec.confidence * 100)
    family = f"{m - 1} comparison{'s' if m != 2 else ''}"
    lines.append(
        f"verdict: the optimizer with the best mean final validation {metric} over its curve "
        "runs is chosen (no test example seen); each other is compared with it on the test "
        f"seeds on which both trained, paired by seed and {paired}, at {conf}% "
        f"family-wise over the {family} (each at {100 - conf}%/{max(m - 1, 1)} inside a "
        "group-sequential design: alpha spent over the looks in proportion to the seeds), "
        f"with intervals that hold as widely; failed test runs ({kind.fails_when}) are counted "
        f"apart and compared with the chosen one's (exact McNemar test, Holm, {conf}% "
        "family-wise)"
    )
    return lines
