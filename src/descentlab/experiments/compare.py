r"""Which optimizer, with which learning rate, for this model? A fixed protocol to answer it.

The lectures' answer (seed 001, quoting Bengio) is that no optimizer wins everywhere: one has
to experiment. :func:`compare` runs that experiment with the methodology of seed 002, for a
problem and a list of optimizers (named, or composed from update rules):

.. code-block:: text

    for each optimizer:
        tune      every candidate setting (log grid or random search of lr, optionally other
                  hyperparameters) for `tune_steps`, trained on the training split and scored
                  on the validation split (holdout) or on k folds (cross-validation) -- the
                  test data are not even present in these runs
        select    the best mean validation score (accuracy; loss for regression); diverged
                  settings never win
        curves    the best setting, N seeds, `steps` long, on train / validation: learning
                  curves, time to a target validation accuracy, the optimizer's monitor
                  (update-to-parameter ratio)
        refit     the best setting, N seeds, `steps` long, on train + validation; the test set
                  is evaluated once, at the end of each refit run
    report        per optimizer: test accuracy and loss, mean and bootstrap CI over the seeds;
                  steps and seconds to the target; the lr sensitivity curve; diverged trials

Every trial is a run in the SQLite store of the run directory, found again by its config: the
same call after an interruption (Ctrl-C, a kill) skips every finished trial, and since every
trial is deterministic (seeded, single-threaded) the final table equals an uninterrupted
run's (apart from wall-clock seconds). Trials run in worker processes (``workers``).

Example:
    >>> import tempfile
    >>> spec = CompareSpec(problem="moons", problem_options={"n_samples": 300}, model="mlp",
    ...                    optimizers=["sgd", "adam"], batch_size=32, steps=60, tune_steps=30,
    ...                    trials=2, seeds=2, target_accuracy=0.8, landscapes=())
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

from __future__ import annotations

import ast
import contextlib
import dataclasses
import hashlib
import math
import numbers
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from descentlab._osutil import FolderLock
from descentlab.experiments import tuning
from descentlab.experiments.ray_backend import make_runner
from descentlab.experiments.trials import (
    DataSource,
    MonitoredOptimizer,
    Trial,
    TrialOutcome,
    finished_run,
    mark_orphans,
    store_path_of,
)

__all__ = [
    "DEFAULT_LR_RANGES",
    "DEFAULT_OPTIMIZERS",
    "CandidateResult",
    "CompareSpec",
    "Comparison",
    "Interrupted",
    "OptimizerChoice",
    "OptimizerResult",
    "collect",
    "compare",
    "final_trials",
    "load_comparison",
    "parse_optimizer",
    "parse_rule",
    "prepare",
    "tuning_settings",
    "tuning_trials",
]

#: The lectures' optimizers, compared by default (seeds 000-004), and Adadelta once more at its
#: default learning rate: the lectures claim it needs none, and the comparison shows it beside
#: the tuned one.
DEFAULT_OPTIMIZERS: tuple[Any, ...] = (
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "adadelta",
    "adadelta@default",
    "rmsprop",
    "adam",
)

#: Learning-rate search ranges: two decades each, placed so that the best rate for small networks
#: (the MNIST-1D CNN and MLPs) lies inside, with the edges showing too small and too large.
#: Adaptive methods take steps of about ``lr`` per coordinate, plain SGD of ``lr * |g|``,
#: momentum methods' effective rate is ``lr / (1 - momentum)``, and Adadelta's ``lr`` multiplies
#: an already unit-corrected step (torch's default is 1.0; short runs favour larger values).
DEFAULT_LR_RANGES: dict[str, tuple[float, float]] = {
    "sgd": (1e-2, 1.0),
    "momentum": (1e-2, 1.0),
    "nesterov": (1e-2, 1.0),
    "adagrad": (1e-2, 1.0),
    "adadelta": (1.0, 100.0),
    "rmsprop": (1e-3, 1e-1),
    "adam": (1e-3, 1e-1),
    "adamw": (1e-3, 1e-1),
    "nadam": (1e-3, 1e-1),
    "radam": (1e-3, 1e-1),
    "adamax": (1e-3, 1e-1),
    "asgd": (1e-2, 1.0),
    # Rprop's lr is its initial step per coordinate (then adapted within step_sizes)
    "rprop": (1e-4, 1e-2),
}
_FALLBACK_LR_RANGE = (1e-4, 1.0)
# "adadelta@default": the optimizer at its default learning rate, not tuned.
_FIXED_SUFFIX = "@default"
_EXPERIMENT = "compare"


class Interrupted(RuntimeError):
    """The comparison was stopped (Ctrl-C or a signal); run it again to continue."""


# ------------------------------------------------------------------------------------------
# optimizers: named or composed


@dataclass(frozen=True)
class OptimizerChoice:
    """One optimizer of a comparison.

    Attributes:
        label: its name in tables and figures (unique within a comparison).
        optimizer: a name from ``descentlab.optim.NAMES``, an update rule
            (``descentlab.optim.chain(...)``) or an optimizer from outside descentlab
            (:mod:`descentlab.experiments.external`).
        hyper: fixed hyperparameters (not tuned), e.g. ``{"momentum": 0.9}``.
        lr_range: the learning-rate search range ``(low, high)``.
    """

    label: str
    optimizer: Any
    hyper: Mapping[str, Any] = field(default_factory=dict)
    lr_range: tuple[float, float] = _FALLBACK_LR_RANGE
    fixed_lr: bool = False

    @property
    def is_named(self) -> bool:
        return isinstance(self.optimizer, str)

    @property
    def display(self) -> str:
        """The label as the lectures write it (``Adam``, ``RMSProp``...); an optimizer kept at
        its default learning rate under a label of its own reads ``Adadelta (default lr)``."""
        from descentlab.report.figures import DISPLAY_NAMES

        if self.label in DISPLAY_NAMES:
            return DISPLAY_NAMES[self.label]
        if self.fixed_lr and self.is_named and self.label != self.optimizer:
            return f"{DISPLAY_NAMES.get(self.optimizer, self.optimizer)} (default lr)"
        return self.label

    def default_lr(self) -> float:
        """The learning rate a ``fixed_lr`` optimizer keeps: a fixed ``lr`` in :attr:`hyper`,
        else the optimizer's own default (the class's ``lr`` argument, a rule's default)."""
        value = _defaults_of(self).get("lr")
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise ValueError(
                f"optimizer {self.label!r} has no default learning rate to keep fixed; give "
                "one as a fixed hyperparameter (hyper={'lr': ...})"
            )
        return float(value)

    def describe(self) -> str:
        """The optimizer as text: its name, or the repr of its rule (parseable back)."""
        return self.optimizer if isinstance(self.optimizer, str) else repr(self.optimizer)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "optimizer": self.describe(),
            "hyper": dict(self.hyper),
            "lr_range": [float(v) for v in self.lr_range],
            "fixed_lr": self.fixed_lr,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OptimizerChoice:
        from descentlab.experiments.external import external_from_description

        opt = data["optimizer"]
        ext = external_from_description(opt)
        return cls(
            label=data["label"],
            optimizer=ext if ext is not None else opt if "(" not in opt else parse_rule(opt),
            hyper=dict(data.get("hyper", {})),
            lr_range=tuple(float(v) for v in data["lr_range"]),  # type: ignore[arg-type]
            fixed_lr=bool(data.get("fixed_lr", False)),
        )


def _rule_factories() -> dict[str, Callable[..., Any]]:
    from descentlab import optim

    skip = {"get", "family", "apply_updates"}
    return {
        n: getattr(optim, n)
        for n in optim.__all__
        if n[0].islower() and n not in skip and callable(getattr(optim, n))
    }


def parse_rule(text: str) -> Any:
    """Build an update rule from an expression such as
    ``"chain(scale_by_rms(alpha=0.9), trace(momentum=0.9), scale_by_lr())"``.

    Only the rule factories of :mod:`descentlab.optim` (and ``chain``) may be called, with
    literal arguments; nothing is evaluated. The ``repr`` of a rule parses back to an equal
    rule.

    Raises:
        KeyError: an unknown rule name (lists the valid ones).
        ValueError: not a rule expression, or bad arguments.

    Example:
        >>> parse_rule("chain(trace(momentum=0.8), scale_by_lr(lr=0.1))")
        chain(trace(momentum=0.8, dampening=0.0, nesterov=False), scale_by_lr(lr=0.1))
    """
    factories = _rule_factories()
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ValueError(
            f"a composed optimizer must look like 'chain(scale_by_adam(), scale_by_lr())', "
            f"got {text!r}"
        ) from exc

    def build(n: ast.AST) -> Any:
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            name = n.func.id
            if name not in factories:
                raise KeyError(
                    f"unknown update rule {name!r}; valid names: {', '.join(sorted(factories))}"
                )
            args = [build(a) for a in n.args]
            kwargs = {}
            for kw in n.keywords:
                if kw.arg is None:
                    raise ValueError(f"{text!r}: '**' arguments are not supported")
                kwargs[kw.arg] = build(kw.value)
            try:
                return factories[name](*args, **kwargs)
            except TypeError as exc:
                raise ValueError(f"bad arguments for {name}: {exc}") from None
        try:
            return ast.literal_eval(n)
        except ValueError:
            raise ValueError(
                f"{text!r}: arguments must be numbers, strings, booleans or rules"
            ) from None

    from descentlab import optim

    rule = build(node)
    if not isinstance(rule, optim.Rule):
        raise ValueError(f"a composed optimizer must be an update rule, got {text!r}")
    return rule


def parse_optimizer(spec: Any) -> OptimizerChoice:
    """An :class:`OptimizerChoice` from a name, ``"label=rule expression"``, an import path
    (``"torch.optim.SGD"``, ``"lion=pytorch_optimizer.Lion"``, ``"pkg.mod:Name"``), a rule, a
    ``torch.optim.Optimizer`` class or factory ``params -> optimizer`` (see
    :mod:`descentlab.experiments.external`), a ``(label, optimizer)`` pair or a choice.

    A string ending in ``@default`` keeps the optimizer at its default learning rate (not
    tuned; ``fixed_lr``) and, without a label, is labelled ``<name>_default`` so that it can sit
    beside the tuned one.

    Raises:
        KeyError: an unknown optimizer or rule name (lists the valid names).
        ValueError: anything else that is not an optimizer.

    Example:
        >>> parse_optimizer("Adam").label
        'adam'
        >>> c = parse_optimizer("rms_mom=chain(scale_by_rms(alpha=0.9), trace(momentum=0.9), "
        ...                     "scale_by_lr())")
        >>> c.label, c.is_named
        ('rms_mom', False)
        >>> c = parse_optimizer("adadelta@default")
        >>> c.label, c.fixed_lr, c.default_lr()
        ('adadelta_default', True, 1.0)
    """
    from descentlab import optim
    from descentlab.experiments import external

    if isinstance(spec, OptimizerChoice):
        return spec
    label: str | None = None
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        label, spec = spec
    fixed = False
    if isinstance(spec, str):
        text = spec.strip()
        if "=" in text.split("(", 1)[0]:
            label, _, text = text.partition("=")
            label, text = label.strip(), text.strip()
        if text.lower().endswith(_FIXED_SUFFIX):
            fixed, text = True, text[: -len(_FIXED_SUFFIX)].strip()
        if external.looks_like_path(text):
            spec = external.ImportedOptimizer(text)
        elif "(" in text:
            spec = parse_rule(text)
        else:
            if not text:
                raise ValueError(f"optimizer must be a name, got {spec!r}")
            optim.get(text)  # KeyError listing the valid names
            name = text.lower()
            return OptimizerChoice(
                label=label or (f"{name}_default" if fixed else name),
                optimizer=name,
                lr_range=DEFAULT_LR_RANGES.get(name, _FALLBACK_LR_RANGE),
                fixed_lr=fixed,
            )
    if isinstance(spec, optim.Rule):
        if not label:
            from descentlab.problems.trajectories import optimizer_label

            label = optimizer_label(spec) + ("_default" if fixed else "")
        return OptimizerChoice(
            label=label, optimizer=spec, lr_range=_FALLBACK_LR_RANGE, fixed_lr=fixed
        )
    if external.is_external(spec) or isinstance(spec, type) or callable(spec):
        ext = external.wrap(spec)
        key = ext.name.lower()
        return OptimizerChoice(
            label=label or (f"{ext.label}_default" if fixed else ext.label),
            optimizer=ext,
            lr_range=DEFAULT_LR_RANGES.get(key, _FALLBACK_LR_RANGE),
            fixed_lr=fixed,
        )
    raise ValueError(
        "optimizer must be a name (one of "
        f"{', '.join(optim.NAMES)}), 'label=rule expression', an import path "
        f"('torch.optim.SGD'), an update rule, a torch optimizer class or factory, or a "
        f"(label, optimizer) pair, got {spec!r}"
    )


# ------------------------------------------------------------------------------------------
# the specification


def _pos_int(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass
class CompareSpec:
    """Everything that defines a comparison (and so its run directory's name).

    Attributes:
        problem: dataset name (``descentlab.problems.data.DATASETS``).
        problem_options: dataset options.
        model: model name; None takes the problem's default (the CNN for MNIST-1D).
        model_options: model options.
        optimizers: names, ``"label=rule expression"`` strings, rules, ``(label, rule)``
            pairs or :class:`OptimizerChoice` objects (normalised to choices).
        lr_ranges: per-label learning-rate search ranges overriding the defaults
            (:data:`DEFAULT_LR_RANGES`).
        batch_size: examples per step (None: full batch).
        steps: length of the curve and refit runs.
        tune_steps: length of each tuning trial (None, the default: ``steps``). Shorter
            tuning runs favour settings that start fast and may choose a rate that loses at
            the full horizon.
        tune_seeds: seeds each tuning setting is trained with (its score is their mean).
        search: ``"grid"`` or ``"random"``.
        trials: learning rates on the coarse grid (times the ``space`` grid), or random draws.
        refine: after the coarse grid, extend it past an edge that wins and add finer points
            around the best (:func:`~descentlab.experiments.tuning.refine_lrs`; grid search
            only).
        max_extend: grid points the extension may add beyond each end of the lr range.
        space: other hyperparameters to tune, ``{name: [values]}`` (or, for random search,
            ``{name: (low, high)}`` drawn log-uniformly). A plain name applies to the
            optimizers that *have* that hyperparameter (a default that is not 0, False or
            None: ``momentum`` tunes Momentum and Nesterov, never plain SGD); ``"LABEL.name"``
            applies to the optimizer labelled LABEL only.
        cv_folds: None for a holdout validation split, else k-fold cross-validation (k >= 2)
            over train + validation.
        seeds: seeds of the curve and refit runs (5 by default: fewer give intervals too wide
            to separate most optimizers).
        seed: first seed (tuning uses ``seed .. seed + tune_seeds - 1``; the final runs use
            ``seed .. seed + seeds - 1``).
        target_accuracy: validation accuracy whose first crossing is timed (classification;
            None: no timing).
        eval_every: evaluation interval of the curve runs (None: about 25 evaluations).
        val_fraction: validation fraction of the holdout split.
        split_seed: seed of the train/validation split and of the folds.
        confidence: confidence level of the t-intervals (per optimizer, and of the paired
            differences that group optimizers not distinguishable from the best).
        landscapes: landscapes on which the same optimizers' paths are drawn in the report.
        name: the run directory's name (None: derived from the problem, the model and a hash
            of this spec, so that the same command finds the same directory).

    Example:
        >>> spec = CompareSpec(optimizers=["sgd", "adam"], steps=2000, seeds=5)
        >>> spec.validate()
        >>> [c.label for c in spec.choices()], spec.run_name().startswith("mnist1d-default-")
        (['sgd', 'adam'], True)
        >>> CompareSpec.from_dict(spec.to_dict()).digest() == spec.digest()
        True
    """

    problem: str = "mnist1d"
    problem_options: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    optimizers: Sequence[Any] = DEFAULT_OPTIMIZERS
    lr_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    batch_size: int | None = 128
    steps: int = 1000
    tune_steps: int | None = None
    tune_seeds: int = 1
    search: str = "grid"
    trials: int = 5
    refine: bool = True
    max_extend: int = 2
    space: dict[str, Any] = field(default_factory=dict)
    cv_folds: int | None = None
    seeds: int = 5
    seed: int = 0
    target_accuracy: float | None = 0.8
    eval_every: int | None = None
    val_fraction: float = 0.2
    split_seed: int = 0
    confidence: float = 0.95
    landscapes: Sequence[str] = ("ravine", "saddle")
    name: str | None = None

    # -- derived -----------------------------------------------------------------------------

    def choices(self) -> list[OptimizerChoice]:
        """The optimizers as :class:`OptimizerChoice` (ranges from ``lr_ranges`` applied)."""
        out = []
        for item in self.optimizers:
            c = parse_optimizer(item)
            if c.label in self.lr_ranges:
                c = dataclasses.replace(c, lr_range=tuple(self.lr_ranges[c.label]))
            out.append(c)
        return out

    @property
    def curve_eval_every(self) -> int:
        return self.eval_every or max(1, self.steps // 25)

    @property
    def tune_length(self) -> int:
        return self.tune_steps if self.tune_steps is not None else self.steps

    @property
    def final_seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.seeds)]

    @property
    def tuning_seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.tune_seeds)]

    # -- checks ------------------------------------------------------------------------------

    def validate(self, *, custom_data: bool = False) -> None:
        """Check every field (names against their registries) before anything runs.

        Args:
            custom_data: the data are given (``compare(..., data=...)``): ``problem`` is then
                only a name and is not looked up.

        Raises:
            KeyError: unknown problem, model, optimizer or rule name (lists valid names).
            ValueError: an empty optimizer list, a zero budget, a target accuracy outside
                [0, 1], duplicate labels, bad ranges...
        """
        from descentlab.problems import data as datasets
        from descentlab.problems import landscapes as lands
        from descentlab.problems import models

        if not isinstance(self.problem, str) or not self.problem:
            raise ValueError(f"problem must be a name, got {self.problem!r}")
        from descentlab.problems.problem import BUILTIN_PROBLEMS, is_problem_ref

        if (
            not custom_data
            and self.problem not in datasets.DATASETS
            and not is_problem_ref(self.problem)
        ):
            raise KeyError(
                f"unknown problem {self.problem!r}; valid names: "
                f"{', '.join((*datasets.DATASETS, *BUILTIN_PROBLEMS))}, or a problem function "
                "'package.module:function' or 'path/to/file.py:function'"
            )
        if self.model is not None and self.model not in models.MODELS:
            raise KeyError(f"unknown model {self.model!r}; valid names: {', '.join(models.MODELS)}")
        if isinstance(self.optimizers, str) or not isinstance(self.optimizers, Sequence):
            raise ValueError(f"optimizers must be a list, got {self.optimizers!r}")
        if len(self.optimizers) == 0:
            raise ValueError("optimizers must name at least one optimizer, got an empty list")
        choices = self.choices()
        labels = [c.label for c in choices]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"optimizer labels must be unique, got {dup} more than once")
        unknown = sorted(set(self.lr_ranges) - set(labels))
        if unknown:
            raise ValueError(f"lr_ranges names {unknown}, which are not optimizers here: {labels}")
        for c in choices:
            tuning._check_positive_range(f"lr range of {c.label}", c.lr_range)
        _pos_int("steps", self.steps)
        _pos_int("tune_steps", self.tune_steps, optional=True)
        _pos_int("trials", self.trials)
        _pos_int("seeds", self.seeds)
        _pos_int("tune_seeds", self.tune_seeds)
        if not isinstance(self.refine, bool):
            raise ValueError(f"refine must be True or False, got {self.refine!r}")
        if (
            isinstance(self.max_extend, bool)
            or not isinstance(self.max_extend, numbers.Integral)
            or self.max_extend < 0
        ):
            raise ValueError(f"max_extend must be an integer >= 0, got {self.max_extend!r}")
        _pos_int("batch_size", self.batch_size, optional=True)
        _pos_int("eval_every", self.eval_every, optional=True)
        if self.search not in tuning.SEARCHES:
            raise ValueError(
                f"search must be one of {', '.join(tuning.SEARCHES)}, got {self.search!r}"
            )
        if self.cv_folds is not None and (
            isinstance(self.cv_folds, bool)
            or not isinstance(self.cv_folds, numbers.Integral)
            or self.cv_folds < 2
        ):
            raise ValueError(f"cv_folds must be None or an integer >= 2, got {self.cv_folds!r}")
        for key in ("seed", "split_seed"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"{key} must be an integer >= 0, got {v!r}")
        t = self.target_accuracy
        if t is not None and (
            isinstance(t, bool)
            or not isinstance(t, numbers.Real)
            or not math.isfinite(t)
            or not 0.0 <= t <= 1.0
        ):
            raise ValueError(f"target_accuracy must be in [0, 1], got {t!r}")
        if not (isinstance(self.confidence, float) and 0.0 < self.confidence < 1.0):
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence!r}")
        if not (isinstance(self.val_fraction, float) and 0.0 < self.val_fraction < 1.0):
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        for land in self.landscapes:
            lands.get(land)  # KeyError listing the valid names
        # The search space, per optimizer (raises on bad entries).
        tuning.candidates((1.0, 1.0), search=self.search, trials=1, space=self.space)
        for key in self.space:
            target = _target_of(key, labels)
            if target is None:
                if not any(_has(c, key) for c in choices if not c.fixed_lr):
                    raise ValueError(
                        f"no optimizer here has the hyperparameter {key!r} of the search space "
                        f"(tuned optimizers: {[c.label for c in choices if not c.fixed_lr]}); "
                        f"to add it to one optimizer, name it: 'LABEL.{key}'"
                    )
                continue
            label, name = target
            choice = next(c for c in choices if c.label == label)
            if choice.fixed_lr:
                raise ValueError(
                    f"space[{key!r}]: {label!r} keeps its default learning rate (fixed_lr) "
                    "and is not tuned"
                )
            if not _accepts(choice, name):
                raise ValueError(f"space[{key!r}]: optimizer {label!r} takes no {name!r}")
        for c in choices:
            _check_optimizer(c, {**c.hyper, "lr": c.default_lr() if c.fixed_lr else c.lr_range[0]})
            # every value of the search space too: a bad one would otherwise fail in a trial,
            # after the run folder and the store were made
            for setting in tuning_settings(self, c):
                _check_optimizer(c, {**c.hyper, **setting})
        if self.name is not None and (
            not isinstance(self.name, str) or not self.name or os.sep in self.name
        ):
            raise ValueError(f"name must be a plain folder name, got {self.name!r}")

    # -- serialization ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (optimizers as dicts; rules by their parseable repr)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "optimizers":
                value = [c.to_dict() for c in self.choices()]
            elif f.name == "lr_ranges":
                value = {k: [float(x) for x in v] for k, v in value.items()}
            elif f.name == "space":
                value = {
                    k: (list(v) if isinstance(v, list) else {"range": list(v)})
                    for k, v in value.items()
                }
            elif f.name == "landscapes":
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompareSpec:
        """Inverse of :meth:`to_dict`."""
        kwargs = dict(data)
        kwargs["optimizers"] = [OptimizerChoice.from_dict(d) for d in data["optimizers"]]
        kwargs["lr_ranges"] = {k: tuple(v) for k, v in data.get("lr_ranges", {}).items()}
        kwargs["space"] = {
            k: (tuple(v["range"]) if isinstance(v, dict) else list(v))
            for k, v in data.get("space", {}).items()
        }
        kwargs["landscapes"] = tuple(data.get("landscapes", ()))
        return cls(**kwargs)

    def digest(self) -> str:
        """A short hash of everything but the name (the default directory's suffix)."""
        from descentlab.store import canonical_json

        d = self.to_dict()
        d.pop("name")
        return hashlib.sha256(canonical_json(d).encode()).hexdigest()[:8]

    def run_name(self) -> str:
        """The run directory's name: :attr:`name`, else ``<problem>-<model>-<digest>``."""
        from descentlab.problems.problem import problem_slug

        if self.name:
            return self.name
        return f"{problem_slug(self.problem)}-{self.model or 'default'}-{self.digest()}"


def _target_of(key: str, labels: Sequence[str]) -> tuple[str, str] | None:
    """``(label, name)`` for a search-space key ``"LABEL.name"`` naming one optimizer."""
    for label in sorted(labels, key=len, reverse=True):
        if key.startswith(label + ".") and len(key) > len(label) + 1:
            return label, key[len(label) + 1 :]
    return None


def _defaults_of(choice: OptimizerChoice) -> dict[str, Any]:
    """The optimizer's hyperparameters with their defaults, the fixed ones applied: a class's
    or factory's keyword defaults, a rule's ``defaults``."""
    import inspect

    from descentlab import optim
    from descentlab.experiments import external

    if choice.is_named:
        target = optim.get(choice.optimizer)
    elif external.is_external(choice.optimizer):
        target = getattr(choice.optimizer, "target", None)
    else:
        return {**dict(getattr(choice.optimizer, "defaults", {})), **choice.hyper}
    try:
        params = list(inspect.signature(target).parameters.values()) if target else []
    except (TypeError, ValueError):
        params = []
    out = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    return {**out, **choice.hyper}


def _has(choice: OptimizerChoice, key: str) -> bool:
    """Whether the optimizer *has* hyperparameter ``key``: it takes it and its value is not
    switched off (0, False, None). SGD takes ``momentum`` but has none (0): tuning
    ``momentum`` would turn it into another optimizer."""
    defaults = _defaults_of(choice)
    if key not in defaults:
        return False
    value = defaults[key]
    return (
        value is not None
        and value is not False
        and not (isinstance(value, numbers.Number) and value == 0)
    )


def _accepts(choice: OptimizerChoice, key: str) -> bool:
    try:
        _check_optimizer(choice, {**choice.hyper, "lr": choice.lr_range[0], key: None}, probe=key)
    except (ValueError, TypeError):
        return False
    return True


def _check_optimizer(
    choice: OptimizerChoice, hyper: Mapping[str, Any], *, probe: str | None = None
) -> None:
    """Build the optimizer on a dummy parameter: bad hyperparameters fail here, not in a
    worker. With ``probe``, only whether the optimizer takes that keyword is checked."""
    import torch

    from descentlab import optim
    from descentlab.experiments import external

    if external.is_external(choice.optimizer):
        external.check_external(choice.label, choice.optimizer, hyper, probe=probe)
        return
    params = [torch.nn.Parameter(torch.zeros(2))]
    if probe is not None:
        cls = optim.get(choice.optimizer) if choice.is_named else None
        if cls is not None:
            import inspect

            if probe not in inspect.signature(cls).parameters:
                raise ValueError(f"{choice.label} takes no {probe!r}")
            return
        if probe not in choice.optimizer.defaults:
            raise ValueError(f"{choice.label} takes no {probe!r}")
        return
    try:
        if choice.is_named:
            optim.get(choice.optimizer)(params, **hyper)
        else:
            optim.Optimizer(params, choice.optimizer, **hyper)
    except TypeError as exc:
        raise ValueError(f"optimizer {choice.label!r}: {exc}") from None


# ------------------------------------------------------------------------------------------
# planning the trials


def _base_config(spec: CompareSpec) -> Any:
    from descentlab.engine.config import RunConfig

    return RunConfig(
        problem=spec.problem,
        problem_options=dict(spec.problem_options),
        split_seed=spec.split_seed,
        val_fraction=spec.val_fraction,
        model=spec.model,
        model_options=dict(spec.model_options),
        batch_size=spec.batch_size,
        steps=spec.steps,
    )


def _space_for(spec: CompareSpec, choice: OptimizerChoice) -> dict[str, Any]:
    """The search space of one optimizer: the plain names it has, and ``LABEL.name`` keys
    naming it (those win over a plain name)."""
    labels = [parse_optimizer(o).label for o in spec.optimizers]
    out: dict[str, Any] = {}
    targeted: dict[str, Any] = {}
    for key, values in spec.space.items():
        target = _target_of(key, labels)
        if target is None:
            if _has(choice, key):
                out[key] = values
        elif target[0] == choice.label:
            targeted[target[1]] = values
    return {**out, **targeted}


def _fold_kinds(spec: CompareSpec) -> list[str]:
    if spec.cv_folds is None:
        return ["holdout"]
    return [f"fold:{i}:{spec.cv_folds}" for i in range(spec.cv_folds)]


def tuning_settings(spec: CompareSpec, choice: OptimizerChoice) -> list[dict[str, Any]]:
    """The settings of the first tuning round for one optimizer (the tuned hyperparameters
    only): the coarse grid, or the random draws; none for a ``fixed_lr`` optimizer."""
    if choice.fixed_lr:
        return []
    return tuning.candidates(
        choice.lr_range,
        search=spec.search,
        trials=spec.trials,
        space=_space_for(spec, choice),
        seed=spec.seed,
    )


def tuning_trials(
    spec: CompareSpec,
    choice: OptimizerChoice,
    settings: Sequence[Mapping[str, Any]] | None = None,
) -> list[Trial]:
    """The tuning trials of ``settings`` (default: the first round's): every setting on every
    fold with every tuning seed (tag ``(setting index, fold index, seed index)``).

    Example:
        >>> spec = CompareSpec(optimizers=["adam"], trials=3, cv_folds=2)
        >>> [(t.config.hyper["lr"], t.data) for t in tuning_trials(spec, spec.choices()[0])]
        [(0.001, 'fold:0:2'), (0.001, 'fold:1:2'), (0.01, 'fold:0:2'), (0.01, 'fold:1:2'), (0.1, 'fold:0:2'), (0.1, 'fold:1:2')]
    """  # noqa: E501
    if settings is None:
        settings = tuning_settings(spec, choice)
    base = _base_config(spec)
    steps = spec.tune_length
    out = []
    for ci, setting in enumerate(settings):
        for fi, kind in enumerate(_fold_kinds(spec)):
            for si, seed in enumerate(spec.tuning_seeds):
                cfg = base.replace(
                    optimizer=choice.optimizer,
                    hyper={**choice.hyper, **setting},
                    steps=steps,
                    eval_every=max(1, steps // 5),
                    seed=seed,
                    evaluate_test=False,
                    name=f"tune/{choice.label}/{kind}",
                )
                out.append(Trial("tune", choice.label, cfg, kind, (ci, fi, si)))
    return out


@dataclass(frozen=True)
class Found:
    """A finished trial as the protocol sees it: its run, status, summary and failure."""

    run_id: int | None
    status: str
    summary: dict[str, Any]
    failure: str | None


Lookup = Callable[[Trial], "Found | None"]


def _candidates(
    spec: CompareSpec,
    choice: OptimizerChoice,
    settings: Sequence[Mapping[str, Any]],
    lookup: Lookup,
    metric: str,
) -> tuple[list[CandidateResult], list[Trial]]:
    """The settings with their scores (one per fold and tuning seed), and the trials of theirs
    that have not finished."""
    n = len(_fold_kinds(spec)) * spec.tune_seeds
    cands = [
        CandidateResult(dict(s), [math.nan] * n, [None] * n, [None] * n, [None] * n)
        for s in settings
    ]
    missing = []
    for t in tuning_trials(spec, choice, settings):
        ci, fi, si = t.tag
        j = fi * spec.tune_seeds + si
        found = lookup(t)
        if found is None:
            missing.append(t)
            continue
        value = found.summary.get(metric) if found.status == "completed" else None
        cands[ci].scores[j] = math.nan if value is None else float(value)
        cands[ci].statuses[j] = found.status
        cands[ci].run_ids[j] = found.run_id
        cands[ci].failures[j] = found.failure
    return cands, missing


def tuning_plan(
    spec: CompareSpec, choice: OptimizerChoice, lookup: Lookup, metric: str, maximize: bool
) -> tuple[list[CandidateResult], list[Trial], bool]:
    """Where one optimizer's tuning stands: ``(candidates so far, trials to run, done)``.

    The search runs in rounds: the coarse grid, then -- each round decided by the scores of
    all before it (:func:`~descentlab.experiments.tuning.refine_lrs`) -- extension points past
    a winning edge and finer points around the best, for the best combination of the other
    tuned hyperparameters. ``lookup`` answers for finished trials; the first round with a
    missing trial stops the walk and returns those trials. Since every round depends only on
    finished trials, a resumed comparison retraces the same rounds.
    """
    settings = tuning_settings(spec, choice)
    if not settings:
        return [], [], True
    refine = spec.refine and spec.search == "grid"
    step = tuning.grid_step(*choice.lr_range, spec.trials)
    while True:
        cands, missing = _candidates(spec, choice, settings, lookup, metric)
        if missing or not refine:
            return cands, missing, not missing
        best = tuning.select_best([c.score for c in cands], maximize=maximize)
        others = {k: v for k, v in settings[0 if best is None else best].items() if k != "lr"}
        same = [c for c in cands if {k: v for k, v in c.setting.items() if k != "lr"} == others]
        new = tuning.refine_lrs(
            [c.setting["lr"] for c in same],
            [c.score for c in same],
            maximize=maximize,
            lr_range=choice.lr_range,
            step=step,
            max_extend=spec.max_extend,
        )
        if not new:
            return cands, [], True
        settings = [*settings, *({"lr": lr, **others} for lr in new)]


def _select(cands: list[CandidateResult], maximize: bool) -> int | None:
    return tuning.select_best([c.score for c in cands], maximize=maximize)


def _cliff(cands: list[CandidateResult], best: int | None) -> list[float]:
    """Learning rates next to the chosen one (same other hyperparameters) that failed."""
    if best is None:
        return []
    others = {k: v for k, v in cands[best].setting.items() if k != "lr"}
    same = sorted(
        (c for c in cands if {k: v for k, v in c.setting.items() if k != "lr"} == others),
        key=lambda c: c.setting["lr"],
    )
    i = next(j for j, c in enumerate(same) if c is cands[best])
    return [
        float(same[j].setting["lr"])
        for j in (i - 1, i + 1)
        if 0 <= j < len(same) and same[j].failed
    ]


def final_setting(
    choice: OptimizerChoice, cands: list[CandidateResult], best: int | None
) -> dict[str, Any] | None:
    """The setting the final runs use: the chosen candidate's, or for a ``fixed_lr``
    optimizer its default learning rate (None: nothing to run -- every setting failed)."""
    if choice.fixed_lr:
        return {"lr": choice.default_lr()}
    return None if best is None else dict(cands[best].setting)


def final_trials(
    spec: CompareSpec, choice: OptimizerChoice, setting: Mapping[str, Any]
) -> list[Trial]:
    """Curve runs (train/validation) and refit runs (train + validation, test once) of the
    chosen setting, one of each per seed (tag ``(seed,)``).

    The first seed's curve run is monitored (its optimizer records the update-to-parameter
    ratio) and runs alone, so that it also gives an honest wall-clock time to the target; the
    other seeds' curve runs, like the refit runs, can share one vectorized pass.

    Example:
        >>> spec = CompareSpec(optimizers=["adam"], seeds=2)
        >>> [(t.phase, t.data, t.config.seed, t.config.evaluate_test)
        ...  for t in final_trials(spec, spec.choices()[0], {"lr": 0.01})]
        [('curve', 'holdout', 0, False), ('curve', 'holdout', 1, False), ('refit', 'refit', 0, True), ('refit', 'refit', 1, True)]
    """  # noqa: E501
    base = _base_config(spec).replace(hyper={**choice.hyper, **setting})
    every = spec.curve_eval_every
    out = []
    for s in spec.final_seeds:
        monitored = s == spec.final_seeds[0]
        cfg = base.replace(
            optimizer=MonitoredOptimizer(choice.optimizer, every)
            if monitored
            else choice.optimizer,
            eval_every=every,
            seed=s,
            evaluate_test=False,
            name=f"curve/{choice.label}",
        )
        out.append(Trial("curve", choice.label, cfg, "holdout", (s,)))
    for s in spec.final_seeds:
        cfg = base.replace(
            optimizer=choice.optimizer,
            eval_every=spec.steps,  # only the final model matters: evaluate at the end
            seed=s,
            evaluate_test=True,
            name=f"refit/{choice.label}",
        )
        out.append(Trial("refit", choice.label, cfg, "refit", (s,)))
    return out


@dataclass(frozen=True)
class Judge:
    """Decides whether a finished trial failed (:func:`~descentlab.experiments.tuning.
    trial_failure`): its loss went non-finite, its final held-out metric is no better than
    ``chance``, or its final training loss is above its initial one (read from the store:
    the engine logs the training loss at step 0)."""

    metric: str
    maximize: bool
    chance: float | None

    def __call__(
        self, store: Any, run_id: int | None, status: str, summary: Mapping[str, Any], phase: str
    ) -> str | None:
        metric = self.metric
        if phase == "refit":  # its "val" examples are training data: judge the test metric
            metric = "test/" + metric.split("/", 1)[1]
        initial = None
        if run_id is not None and status == "completed":
            series = store.metrics(run_id, split="train", name="loss").get("train/loss")
            if series is not None and len(series.steps) and int(series.steps[0]) == 0:
                initial = float(series.values[0])
        return tuning.trial_failure(
            status,
            summary.get(metric),
            chance=self.chance,
            maximize=self.maximize,
            initial_loss=initial,
            final_loss=summary.get("train/loss"),
        )


# ------------------------------------------------------------------------------------------
# results


@dataclass
class CandidateResult:
    """One tuning setting: its hyperparameters and validation score(s), one per fold and
    tuning seed."""

    setting: dict[str, Any]
    scores: list[float]  # NaN where the trial diverged or is missing
    statuses: list[str | None]
    run_ids: list[int | None]
    failures: list[str | None] = field(default_factory=list)

    @property
    def score(self) -> float:
        """Mean validation score (NaN if any trial failed or is missing: a failed setting
        never wins)."""
        if self.failed or any(s is None or not math.isfinite(s) for s in self.scores):
            return math.nan
        return float(np.mean(self.scores))

    @property
    def diverged(self) -> int:
        return sum(s == "diverged" for s in self.statuses)

    @property
    def failed(self) -> int:
        """Trials of this setting that failed (diverged, at chance, or loss rose)."""
        return sum(f is not None for f in self.failures)


@dataclass
class OptimizerResult:
    """Everything the comparison found for one optimizer.

    Attributes:
        choice: the optimizer.
        candidates: the tuning settings with their validation scores (empty for a
            ``fixed_lr`` optimizer).
        best: index of the chosen setting (None: all failed / not tuned yet / fixed lr).
        curve_runs / refit_runs: run ids per seed (None where missing).
        test_accuracy / test_loss: ``(mean, low, high)`` over the refit seeds (t-interval).
        test_accuracy_seeds / test_loss_seeds: the refit runs' values by seed.
        test_rmse / test_rmse_seeds: the same for the RMSE (regression).
        steps_to_target / seconds_to_target: per curve seed (None: not reached).
        final_val_accuracy: per curve seed, the last validation accuracy.
        diverged_tuning: diverged tuning trials; diverged_final: diverged curve/refit runs.
        failed_tuning / failed_final: failed trials (diverged, at chance, or final training
            loss above the initial one); failures: ``{reason: count}`` over all trials.
        cliff: learning rates next to the chosen one that failed (a chosen rate at a cliff's
            edge is fragile).
        setting: the setting of the final runs (the chosen one, or the fixed default lr).
    """

    choice: OptimizerChoice
    candidates: list[CandidateResult]
    best: int | None
    curve_runs: list[int | None]
    refit_runs: list[int | None]
    test_accuracy: tuple[float, float, float]
    test_loss: tuple[float, float, float]
    steps_to_target: list[int | None]
    seconds_to_target: list[float | None]
    final_val_accuracy: list[float]
    final_val_loss: list[float]
    diverged_tuning: int
    diverged_final: int
    failed_tuning: int = 0
    failed_final: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    cliff: list[float] = field(default_factory=list)
    setting: dict[str, Any] | None = None
    test_accuracy_seeds: dict[int, float] = field(default_factory=dict)
    test_loss_seeds: dict[int, float] = field(default_factory=dict)
    test_rmse: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    test_rmse_seeds: dict[int, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.choice.label

    @property
    def best_setting(self) -> dict[str, Any] | None:
        if self.setting is not None:
            return self.setting
        return None if self.best is None else self.candidates[self.best].setting

    @property
    def n_tuning_trials(self) -> int:
        return sum(len(c.scores) for c in self.candidates)

    @property
    def n_final_trials(self) -> int:
        return sum(r is not None for r in self.curve_runs + self.refit_runs)

    def test_values(self, classification: bool) -> dict[int, float]:
        """The headline test metric by seed (accuracy, or loss for regression)."""
        return self.test_accuracy_seeds if classification else self.test_loss_seeds

    def test_summary(self, classification: bool) -> tuple[float, float, float]:
        return self.test_accuracy if classification else self.test_loss


@dataclass
class Comparison:
    """The outcome of :func:`compare` (or :func:`load_comparison`).

    Attributes:
        spec: the specification.
        results: one :class:`OptimizerResult` per optimizer, in the spec's order.
        run_dir: the run directory.
        task: ``"classification"`` or ``"regression"``.
        select_metric: the validation metric tuning maximised/minimised.
        record: the store's experiment record (provenance, status), if any.
        complete: every trial has finished.
        chance: the held-out metric at which a trial counts as failed (see
            :func:`~descentlab.experiments.tuning.chance_level`), if known.
    """

    spec: CompareSpec
    results: list[OptimizerResult]
    run_dir: Path
    task: str
    select_metric: str
    record: Any = None
    complete: bool = True
    chance: float | None = None

    @property
    def store_path(self) -> Path:
        return store_path_of(self.run_dir)

    @property
    def report_path(self) -> Path:
        return self.run_dir / "report.html"

    @property
    def classification(self) -> bool:
        return self.task == "classification"

    def rows(self, *, timings: bool = True) -> list[dict[str, Any]]:
        """The results table as dicts (``timings=False`` leaves out wall-clock seconds, the
        only entries that differ between two runs of the same comparison)."""
        out = []
        for r in self.results:
            row: dict[str, Any] = {
                "optimizer": r.choice.display,
                "best": r.best_setting,
                "fixed_lr": r.choice.fixed_lr,
                "val_score": None if r.best is None else r.candidates[r.best].score,
                "test_accuracy": r.test_accuracy,
                "test_loss": r.test_loss,
                "test_per_seed": dict(r.test_values(self.classification)),
                "steps_to_target": r.steps_to_target,
                "diverged_tuning": r.diverged_tuning,
                "tuning_trials": r.n_tuning_trials,
                "diverged_final": r.diverged_final,
                "failed_tuning": r.failed_tuning,
                "failed_final": r.failed_final,
                "failures": dict(r.failures),
                "cliff": list(r.cliff),
            }
            if timings:
                row["seconds_to_target"] = r.seconds_to_target
            out.append(row)
        return out

    def ranking(self) -> list[dict[str, Any]]:
        """The optimizers with final test results, best first, each compared with the best
        **paired by seed**: ``{"result", "mean", "diff": (mean, low, high, pairs), "tied"}``.

        ``diff`` is the best's per-seed test metric minus this one's (for a loss, this one's
        minus the best's: positive means worse), with its t-interval at the spec's confidence
        (:func:`~descentlab.experiments.tuning.paired_difference`). ``tied`` means the
        interval holds 0, or there are fewer than two pairs to tell: the data do not show
        this optimizer worse than the best.
        """
        cls = self.classification
        scored = [r for r in self.results if math.isfinite(r.test_summary(cls)[0])]
        if not scored:
            return []
        sign = 1.0 if cls else -1.0
        scored.sort(key=lambda r: -sign * r.test_summary(cls)[0])
        top = scored[0]
        out = []
        for r in scored:
            a, b = top.test_values(cls), r.test_values(cls)
            if not cls:
                a, b = b, a
            d = tuning.paired_difference(a, b, confidence=self.spec.confidence)
            tied = r is top or d[3] < 2 or not (d[1] > 0 or d[2] < 0)
            out.append({"result": r, "mean": r.test_summary(cls)[0], "diff": d, "tied": tied})
        return out

    def fastest(self) -> tuple[OptimizerResult | None, list[OptimizerResult]]:
        """The optimizer that reached the target validation accuracy in the fewest steps (most
        seeds reaching first, then mean steps), and the others not distinguishable from it
        (paired by seed, over the seeds both reached)."""
        if not self.classification or self.spec.target_accuracy is None:
            return None, []

        def key(r: OptimizerResult) -> tuple[int, float]:
            steps = [s for s in r.steps_to_target if s is not None]
            return (-len(steps), float(np.mean(steps)) if steps else math.inf)

        reached = [r for r in self.results if any(s is not None for s in r.steps_to_target)]
        if not reached:
            return None, []
        reached.sort(key=key)
        top = reached[0]
        seeds = self.spec.final_seeds

        def by_seed(r: OptimizerResult) -> dict[int, float]:
            return {
                s: float(v) for s, v in zip(seeds, r.steps_to_target, strict=False) if v is not None
            }

        ties = []
        for r in reached[1:]:
            if key(r)[0] != key(top)[0]:
                continue
            d = tuning.paired_difference(by_seed(r), by_seed(top), confidence=self.spec.confidence)
            if d[3] < 2 or not d[1] > 0:
                ties.append(r)
        return top, ties

    def recommendation(self) -> str:
        """One paragraph: the best by final test metric and by time to target, at which
        learning rate, and how sure the comparison is (paired by seed)."""
        cls = self.classification
        ranking = self.ranking()
        if not ranking:
            return "No optimizer has finished its final runs yet: no recommendation."
        conf = round(self.spec.confidence * 100)
        top = ranking[0]["result"]
        m, lo, hi = top.test_summary(cls)
        n = len(top.test_values(cls))
        what = "test accuracy" if cls else "test loss"
        f = ".3f" if cls else ".4g"  # losses span decades
        ci = f"[{lo:{f}}, {hi:{f}}]" if math.isfinite(lo) else "(no interval: one seed)"
        text = (
            f"Best by final {what}: {top.choice.display} at lr {_fmt_setting(top.best_setting)}"
            f"{' (its default, not tuned)' if top.choice.fixed_lr else ''}, {m:{f}} "
            f"({conf}% t-interval {ci}, {n} seed{'s' if n != 1 else ''})."
        )
        tied = [x["result"] for x in ranking[1:] if x["tied"]]
        worse = [x["result"] for x in ranking[1:] if not x["tied"]]
        if tied:
            text += (
                f" Paired by seed, {_names(tied)} {'is' if len(tied) == 1 else 'are'} not "
                f"distinguishable from it (the {conf}% interval of the per-seed difference "
                "holds 0)"
            )
            text += (
                f"; {_names(worse)} {'is' if len(worse) == 1 else 'are'} worse." if worse else "."
            )
        elif worse:
            text += f" Every other optimizer is worse, paired by seed at {conf}%."
        fast, fast_ties = self.fastest()
        if fast is not None:
            target = self.spec.target_accuracy
            steps = [s for s in fast.steps_to_target if s is not None]
            text += (
                f" Fastest to {target:g} validation accuracy: {fast.choice.display} at lr "
                f"{_fmt_setting(fast.best_setting)} ({np.mean(steps):.0f} steps on average, "
                f"{len(steps)}/{len(fast.steps_to_target)} seeds)"
            )
            text += f", not distinguishable from {_names(fast_ties)}." if fast_ties else "."
        if len(ranking) > 1:
            if tied:
                text += (
                    f" How sure: with {self.spec.seeds} seeds the comparison cannot separate "
                    f"the first {len(tied) + 1}; more seeds (--seeds) would."
                )
            else:
                text += (
                    f" How sure: {top.choice.display} is ahead of every other optimizer by a "
                    f"paired {conf}% interval that excludes 0."
                )
        return text

    def warnings(self) -> list[str]:
        """Cliffs, one line each, then one line counting the failed trials per optimizer."""
        out = []
        for r in self.results:
            if r.cliff:
                lrs = ", ".join(f"{v:.3g}" for v in r.cliff)
                out.append(
                    f"{r.choice.display}: the chosen lr {_fmt_setting(r.best_setting)} sits next "
                    f"to lr {lrs}, which failed -- a cliff: a slightly different rate may not "
                    "train at all."
                )
        parts = []
        for r in self.results:
            if r.failures:
                why = ", ".join(
                    f"{n} {_FAILURE_WORDS.get(k, k)}" for k, n in sorted(r.failures.items())
                )
                n = r.n_tuning_trials + r.n_final_trials
                parts.append(f"{r.choice.display} {sum(r.failures.values())}/{n} ({why})")
        if parts:
            out.append("Failed trials: " + "; ".join(parts) + ".")
        return out

    def table(self, *, timings: bool = True) -> str:
        """The results table as aligned text (what ``descentlab compare`` prints)."""
        cls = self.classification
        target = self.spec.target_accuracy if cls else None
        conf = round(self.spec.confidence * 100)
        head = ["optimizer", "lr"]
        if cls:
            head.append(f"test acc [{conf}% CI]")
        head.append(f"test loss [{conf}% CI]")
        rmse = self.select_metric == "val/rmse"  # a problem scored by its RMSE shows it too
        if rmse:
            head.append(f"test rmse [{conf}% CI]")
        head.append(f"test {'acc' if cls else 'loss'} per seed")
        if target is not None:
            head.append(f"steps to {target:g}")
            if timings:
                head.append(f"s to {target:g}")
        head += ["failed tune", "failed final"]
        lines = [head]
        for r in self.results:
            lr = _fmt_setting(r.best_setting)
            if r.choice.fixed_lr and r.best_setting is not None:
                lr += " (default)"
            if r.cliff:
                lr += " !"
            row = [r.choice.display, lr]
            if cls:
                row.append(_fmt_ci(r.test_accuracy, 3))
            row.append(_fmt_ci(r.test_loss, 3))
            if rmse:
                row.append(_fmt_ci(r.test_rmse, 3))
            values = r.test_values(cls)
            row.append(" ".join(f"{values[s]:.3f}" for s in sorted(values)) or "-")
            if target is not None:
                reached = [s for s in r.steps_to_target if s is not None]
                n = len(r.steps_to_target)
                row.append(_fmt_reached(reached, n, "{:.0f}"))
                if timings:
                    secs = [s for s in r.seconds_to_target if s is not None]
                    row.append(_fmt_reached(secs, n, "{:.1f}", counts=False))
            row.append("-" if r.choice.fixed_lr else f"{r.failed_tuning}/{r.n_tuning_trials}")
            row.append(f"{r.failed_final}/{r.n_final_trials}")
            lines.append(row)
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        text = []
        for j, line in enumerate(lines):
            cells = [
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            ]
            text.append("  ".join(cells).rstrip())
            if j == 0:
                text.append("  ".join("-" * w for w in widths))
        if any(r.cliff for r in self.results):
            text.append("! the chosen lr sits next to a learning rate that failed (a cliff)")
        return "\n".join(text)


_FAILURE_WORDS = {"chance": "at chance", "diverged": "diverged", "loss rose": "loss rose"}


def _names(results: Sequence[OptimizerResult]) -> str:
    names = [r.choice.display for r in results]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _fmt_setting(setting: Mapping[str, Any] | None) -> str:
    if setting is None:
        return "-"
    parts = [f"{setting['lr']:.3g}"]
    parts += [
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in setting.items()
        if k != "lr"
    ]
    return " ".join(parts)


def _fmt_ci(ci: tuple[float, float, float], digits: int) -> str:
    m, lo, hi = ci
    if not math.isfinite(m):
        return "-"
    if not math.isfinite(lo):
        return f"{m:.{digits}f} [1 seed]"
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _fmt_reached(values: list[float], n: int, fmt: str, counts: bool = True) -> str:
    if n == 0:
        return "-"
    if not values:
        return f"not reached (0/{n})" if counts else "-"
    text = fmt.format(float(np.mean(values)))
    return f"{text} ({len(values)}/{n})" if counts else text


def _score_metric(task: str, metric: str | None = None) -> tuple[str, bool]:
    """The validation metric tuning selects on: the problem's own (``accuracy``, ``loss``,
    ``rmse``), else accuracy for classification and loss for regression."""
    if metric is not None:
        from descentlab.problems.problem import METRICS

        return METRICS[metric]
    return ("val/accuracy", True) if task == "classification" else ("val/loss", False)


def collect(
    spec: CompareSpec, store: Any, *, task: str, run_dir: Path, metric: str | None = None
) -> Comparison:
    """Rebuild the comparison's results from the store (missing trials stay empty).

    The same function serves a finished :func:`compare`, a resumed one and
    ``descentlab report``: the table depends on the stored trials only. ``metric`` is the
    problem's own metric name, if it has one.
    """
    metric, maximize = _score_metric(task, metric)
    records = store.list_runs(name=_EXPERIMENT)
    chance = records[-1].provenance.get("chance") if records else None
    judge = Judge(metric, maximize, chance)
    results = []
    complete = True
    for choice in spec.choices():

        def lookup(t: Trial) -> Found | None:
            rec = finished_run(store, t)
            if rec is None:
                return None
            summary = dict(rec.summary or {})
            return Found(
                rec.id, rec.status, summary, judge(store, rec.id, rec.status, summary, t.phase)
            )

        cands, _, done = tuning_plan(spec, choice, lookup, metric, maximize)
        best = _select(cands, maximize) if done else None
        res = OptimizerResult(
            choice=choice,
            candidates=cands,
            best=best,
            curve_runs=[None] * spec.seeds,
            refit_runs=[None] * spec.seeds,
            test_accuracy=(math.nan,) * 3,
            test_loss=(math.nan,) * 3,
            steps_to_target=[],
            seconds_to_target=[],
            final_val_accuracy=[],
            final_val_loss=[],
            diverged_tuning=sum(c.diverged for c in cands),
            diverged_final=0,
            failed_tuning=sum(c.failed for c in cands),
            cliff=_cliff(cands, best),
        )
        for c in cands:
            for f in c.failures:
                if f is not None:
                    res.failures[f] = res.failures.get(f, 0) + 1
        setting = final_setting(choice, cands, best) if done else None
        if setting is not None:
            res.setting = setting
            _fill_final(spec, store, res, task, judge)
            complete &= all(r is not None for r in res.curve_runs + res.refit_runs)
        elif not done:
            complete = False
        results.append(res)
    return Comparison(
        spec=spec,
        results=results,
        run_dir=Path(run_dir),
        task=task,
        select_metric=metric,
        record=records[-1] if records else None,
        complete=complete,
        chance=chance,
    )


def _fill_final(
    spec: CompareSpec, store: Any, res: OptimizerResult, task: str, judge: Judge
) -> None:
    trials = final_trials(spec, res.choice, res.best_setting or {})
    for t in trials:
        rec = finished_run(store, t)
        seed = t.tag[0]
        i = spec.final_seeds.index(seed)
        if rec is None:
            continue
        if rec.status == "diverged":
            res.diverged_final += 1
        summary = rec.summary or {}
        failure = judge(store, rec.id, rec.status, summary, t.phase)
        if failure is not None:
            res.failed_final += 1
            res.failures[failure] = res.failures.get(failure, 0) + 1
        if t.phase == "curve":
            res.curve_runs[i] = rec.id
            if rec.status == "completed":
                res.final_val_accuracy.append(summary.get("val/accuracy", math.nan) or math.nan)
                res.final_val_loss.append(summary.get("val/loss", math.nan) or math.nan)
            if task == "classification" and spec.target_accuracy is not None:
                m = store.metrics(rec.id)
                acc = m.get("val/accuracy")
                wall = m.get("progress/wall_time")
                step, secs = (None, None)
                if acc is not None:
                    step, secs = tuning.time_to_target(
                        acc.steps,
                        acc.values,
                        spec.target_accuracy,
                        seconds=_align(wall, acc.steps) if wall is not None else None,
                    )
                res.steps_to_target.append(step)
                # Wall-clock time only from the run that trained alone (a vectorized group's
                # time is shared by its runs).
                res.seconds_to_target.append(secs if t.monitored else None)
        else:
            res.refit_runs[i] = rec.id
            if rec.status == "completed":
                for key, into in (
                    ("test/accuracy", res.test_accuracy_seeds),
                    ("test/loss", res.test_loss_seeds),
                    ("test/rmse", res.test_rmse_seeds),
                ):
                    value = summary.get(key)
                    if value is not None:
                        into[seed] = float(value)
    conf = spec.confidence
    if res.test_accuracy_seeds:
        res.test_accuracy = tuning.t_interval(
            list(res.test_accuracy_seeds.values()), confidence=conf, bounds=(0.0, 1.0)
        )
    if res.test_loss_seeds:
        res.test_loss = tuning.t_interval(list(res.test_loss_seeds.values()), confidence=conf)
    if res.test_rmse_seeds:
        res.test_rmse = tuning.t_interval(list(res.test_rmse_seeds.values()), confidence=conf)


def _align(series: Any, steps: np.ndarray) -> np.ndarray:
    lookup = dict(zip(series.steps.tolist(), series.values.tolist(), strict=True))
    return np.asarray([lookup.get(int(s), math.nan) for s in steps], dtype=float)


# ------------------------------------------------------------------------------------------
# running


def _experiment_config(spec: CompareSpec) -> dict[str, Any]:
    return {"experiment": _EXPERIMENT, "spec": spec.to_dict()}


def _open_experiment(store: Any, spec: CompareSpec, run_dir: Path) -> int:
    """Find this spec's experiment record, or create it; refuse a directory holding another."""
    from descentlab.store import provenance

    config = _experiment_config(spec)
    found = store.find_run_by_config(config, status=None)
    if found is not None:
        store.set_status(found.id, "running")
        return found.id
    others = store.list_runs(name=_EXPERIMENT)
    if others:
        old = others[-1].config.get("spec", {})
        new = config["spec"]
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise ValueError(
            f"{run_dir} holds a comparison with another configuration (differs in: "
            f"{', '.join(diff)}); choose another --name or run directory"
        )
    return store.create_run(
        config, name=_EXPERIMENT, seed=spec.seed, provenance=provenance(spec.seed)
    )


def prepare(spec: CompareSpec, data: Any = None) -> tuple[Any, str]:
    """Validate ``spec`` and load the data, checking model and optimizers on it -- every
    error a comparison can raise before training is raised here.

    Returns:
        ``(splits, task)``.
    """
    from descentlab.problems import models

    spec.validate(custom_data=data is not None)
    if data is None:
        from descentlab.problems import data as datasets

        data = datasets.load(
            spec.problem,
            seed=spec.split_seed,
            val_fraction=spec.val_fraction,
            **spec.problem_options,
        )
    task = data.task  # for regression, target_accuracy is ignored (no time-to-target)
    model = spec.model or data.default_model
    if isinstance(model, str):  # a problem of your own brings a model factory, checked already
        models.build(
            model, input_shape=data.input_shape, n_outputs=data.n_outputs, **spec.model_options
        )
    if spec.batch_size is not None and spec.batch_size > data.n_train:
        raise ValueError(
            f"batch_size must be <= the number of training examples ({data.n_train}), "
            f"got {spec.batch_size}"
        )
    # One trial config of each phase through the engine's own checks.
    for choice in spec.choices():
        for t in tuning_trials(spec, choice)[:1] + final_trials(spec, choice, {"lr": 1e-3})[:1]:
            t.config.validate()
    return data, task


Progress = Callable[[str, dict[str, Any]], None]


def compare(
    spec: CompareSpec,
    runs_dir: str | os.PathLike[str] = "runs",
    *,
    workers: int | None = None,
    threads: int = 1,
    progress: bool | Progress | None = None,
    data: Any = None,
    report: bool = True,
    problem: Any = None,
    backend: str = "local",
    address: str | None = None,
    vectorize: bool = True,
) -> Comparison:
    """Run (or continue) a comparison; write its report.

    Args:
        spec: what to compare.
        runs_dir: the folder in which the run directory ``<runs_dir>/<spec.run_name()>`` is
            made (it holds the store, checkpoints, figures and ``report.html``).
        workers: processes to train in (None: one per CPU core; 1: in this process).
        threads: torch threads per trial.
        progress: True/False, None (show when stderr is a terminal), or a callable
            ``progress(event, info)`` that receives ``"trial"`` and ``"selected"`` events.
        data: ``Splits`` to use instead of loading ``spec.problem``.
        report: render ``report.html`` at the end.
        problem: a :class:`~descentlab.problems.problem.Problem` of your own (model factory,
            data, loss, metric) to compare on; ``spec.problem`` may instead name one
            (``"pkg.mod:make_problem"``, ``"path/to/file.py:make_problem"``, ``"charlm"``).
            The returned comparison's ``spec.problem`` carries the data's fingerprint.
        backend: ``"local"`` (worker processes on this machine) or ``"ray"`` (each trial a
            Ray task; see :mod:`descentlab.experiments.ray_backend`). The store, the tables
            and the report are the same either way.
        address: with ``backend="ray"``, the cluster to join (None: start a local Ray
            instance on 127.0.0.1).
        vectorize: train the trials that differ only in hyperparameters or seed together, in
            one vectorized pass (:func:`~descentlab.engine.multirun.train_many`), in the
            worker processes; False runs one trial at a time (``benchmarks/compare.py``
            compares the two). The numbers agree up to floating-point rounding.

    Returns:
        The :class:`Comparison`.

    Raises:
        KeyError: unknown problem, model, optimizer or rule (raised before any training).
        ValueError: bad spec (empty optimizer list, zero budget, target accuracy outside
            [0, 1]...), or a run directory that holds another comparison.
        Interrupted: stopped by Ctrl-C or SIGTERM; call again to continue.
    """
    from descentlab.store import Store

    # Everything that can be checked without data is checked first; the worker processes
    # then start (importing the engine takes seconds) while the data are loaded and checked.
    spec.validate(custom_data=data is not None or problem is not None)
    if workers is None:
        workers = max(1, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    from descentlab.problems.problem import is_problem_ref, resolve_for_compare

    if problem is not None or (data is None and is_problem_ref(spec.problem)):
        spec, data = resolve_for_compare(spec, problem, workers=workers)
    run_dir = Path(runs_dir) / spec.run_name()
    source = DataSource(
        spec.problem,
        dict(spec.problem_options),
        spec.split_seed,
        spec.val_fraction,
        # Data loaded by name are reloaded (from the cache) by each worker; given data are
        # sent to each worker once.
        data=data,
    )
    notify = _progress(progress)
    count = 0
    store = exp_id = None
    # One process works on a run directory at a time; a second identical command waits
    # (saying which process holds it), then finds the trials done.
    lock = FolderLock(run_dir, what="run directory")
    try:
        with (
            _sigterm_as_interrupt(),
            make_runner(
                backend,
                store_path_of(run_dir),
                source,
                workers=workers,
                threads=threads,
                address=address,
                vectorize=vectorize,
            ) as runner,
        ):
            runner.start()
            data, task = prepare(spec, data)
            lock.acquire()  # creates the run directory (0700: it holds provenance)
            store = Store(store_path_of(run_dir))
            exp_id = _open_experiment(store, spec, run_dir)
            mark_orphans(store, lambda name: name != _EXPERIMENT)
            model = spec.model or data.default_model
            meta = getattr(data, "meta", None) or {}
            from descentlab.problems.problem import chance_level

            chance = chance_level(data, meta.get("metric"))
            store.update_provenance(
                exp_id,
                {
                    "task": task,
                    "model": model if isinstance(model, str) else repr(model),
                    "chance": chance,
                    "metric": meta.get("metric"),
                    "target": meta.get("target"),
                },
            )
            metric, maximize = _score_metric(task, meta.get("metric"))
            judge = Judge(metric, maximize, chance)
            choices = spec.choices()
            found: dict[str, Found] = {}
            submitted: set[str] = set()
            finals: set[str] = set()  # labels whose final runs are decided

            def lookup(t: Trial) -> Found | None:
                return found.get(_trial_key(t))

            def advance(choice: OptimizerChoice) -> None:
                """Submit what comes next for ``choice``: its next tuning round, or once
                tuning is done, its final runs."""
                if choice.label in finals:
                    return
                cands, missing, done = tuning_plan(spec, choice, lookup, metric, maximize)
                new = [t for t in missing if _trial_key(t) not in submitted]
                submitted.update(_trial_key(t) for t in new)
                runner.submit_many(new)
                if not done:
                    return
                finals.add(choice.label)
                best = _select(cands, maximize)
                setting = final_setting(choice, cands, best)
                notify(
                    "selected",
                    {"choice": choice, "best": best, "candidates": cands, "metric": metric,
                     "setting": setting},
                )  # fmt: skip
                if setting is not None:
                    trials = final_trials(spec, choice, setting)
                    submitted.update(_trial_key(t) for t in trials)
                    runner.submit_many(trials)

            def total() -> int:
                # Trials submitted, plus the final runs not decided yet (refinement rounds
                # add to it as they come).
                return len(submitted) + 2 * spec.seeds * sum(c.label not in finals for c in choices)

            t0 = time.perf_counter()
            for c in choices:
                advance(c)
            notify("start", {"total": total(), "run_dir": str(run_dir), "workers": workers})
            while runner.pending:
                out = runner.next_outcome()
                if out.status == "interrupted":
                    raise Interrupted(f"trial {out.trial.config.name} was interrupted")
                count += 1
                failure = judge(store, out.run_id, out.status, out.summary, out.trial.phase)
                found[_trial_key(out.trial)] = Found(out.run_id, out.status, out.summary, failure)
                notify(
                    "trial",
                    {"outcome": out, "done": count, "total": total(), "metric": metric,
                     "failure": failure},
                )  # fmt: skip
                if out.trial.phase == "tune":
                    advance(next(c for c in choices if c.label == out.trial.label))
    except (KeyboardInterrupt, Interrupted) as exc:
        lock.release()
        if store is not None:
            with contextlib.suppress(Exception):
                store.set_status(exp_id, "interrupted", message="stopped; run again to continue")
            store.close()
        raise Interrupted(
            f"comparison stopped after {count} trial(s); run the same command again to "
            "continue (finished trials are kept)"
        ) from exc
    except BaseException:
        lock.release()
        if store is not None:
            store.close()
        raise
    elapsed = time.perf_counter() - t0
    result = collect(spec, store, task=task, run_dir=run_dir, metric=meta.get("metric"))
    store.set_status(exp_id, "completed", summary={"table": result.table(timings=False)})
    prov = store.get_run(exp_id).provenance
    sessions = [
        *prov.get("sessions", []),
        {
            "seconds": round(elapsed, 2),
            "workers": workers,
            "threads": threads,
            "trials_run": count,
            "backend": backend,
        },
    ]
    store.update_provenance(exp_id, {"sessions": sessions})
    result.record = store.get_run(exp_id)
    if report:
        from descentlab.report.html import render_report

        notify("report", {"path": str(result.report_path)})
        render_report(result, store=store)
    store.close()
    lock.release()  # (an exception on the way here releases it with the lock object)
    return result


def _trial_key(trial: Trial) -> str:
    from descentlab.store import canonical_json

    return canonical_json(trial.record_config())


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (``kill PID``) stops a comparison like Ctrl-C does."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _progress(progress: bool | Progress | None) -> Progress:
    if callable(progress):
        return progress
    show = sys.stderr.isatty() if progress is None else bool(progress)
    if not show:
        return lambda event, info: None
    return _ConsoleProgress(tty=sys.stderr.isatty())


class _ConsoleProgress:
    """A progress bar over trials (on a terminal) or one line per step of the protocol."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.bar: Any = None
        self.t0 = time.perf_counter()

    def _print(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event == "start":
            self._print(
                f"comparing in {info['run_dir']} ({info['total']} trials, "
                f"{info['workers']} worker process(es))"
            )
            if self.tty:
                from tqdm.auto import tqdm

                self.bar = tqdm(
                    total=info["total"], unit="trial", dynamic_ncols=True, file=sys.stderr
                )
        elif event == "trial":
            out: TrialOutcome = info["outcome"]
            t = out.trial
            name = t.label
            desc = f"{t.phase} {name} lr={t.config.hyper.get('lr', float('nan')):.3g}"
            if self.bar is not None:
                if self.bar.total != info["total"]:
                    self.bar.total = info["total"]
                self.bar.set_description_str(desc, refresh=False)
                self.bar.update(1)
            elif not self.tty:
                metric = info["metric"]
                if t.phase == "refit":  # its "val" examples are training data: show the test
                    metric = "test/" + metric.split("/", 1)[1]
                value = out.summary.get(metric)
                shown = f"{metric} {value:.4f}" if isinstance(value, float) else out.status
                if info.get("failure"):
                    shown += f" -- failed: {info['failure']}"
                reused = " (stored)" if out.reused else f" ({out.seconds:.1f} s)"
                self._print(f"[{info['done']:>3}/{info['total']}] {desc}: {shown}{reused}")
        elif event == "selected":
            choice = info["choice"]
            best = info["best"]
            cands = info["candidates"]
            if choice.fixed_lr:
                self._print(
                    f"{choice.display}: kept at its default lr {_fmt_setting(info['setting'])}"
                )
            elif best is None:
                self._print(f"{choice.display}: every setting failed; no final runs")
            else:
                cand = cands[best]
                failed = sum(c.failed for c in cands)
                n = sum(len(c.scores) for c in cands)
                self._print(
                    f"{choice.display}: best lr {_fmt_setting(cand.setting)} "
                    f"({info['metric']} {cand.score:.4f}; {failed}/{n} tuning trial(s) failed)"
                )
        elif event == "report":
            if self.bar is not None:
                self.bar.close()
                self.bar = None
            self._print(f"writing the report ({time.perf_counter() - self.t0:.0f} s so far)")


def load_comparison(run_dir: str | os.PathLike[str]) -> Comparison:
    """The comparison stored in ``run_dir`` (for re-rendering its report).

    Args:
        run_dir: a directory written by :func:`compare` (``runs/<name>``).

    Returns:
        The :class:`Comparison` rebuilt from the store (``complete`` is False for a
        comparison that was stopped).

    Raises:
        FileNotFoundError: no store, or no comparison in it.

    Example:
        >>> result = load_comparison("runs/mnist1d-default-1a2b3c4d")  # doctest: +SKIP
        >>> print(result.table())  # doctest: +SKIP
    """
    from descentlab.store import Store

    run_dir = Path(run_dir)
    path = store_path_of(run_dir)
    if not path.is_file():
        raise FileNotFoundError(f"no store at {path}: is {run_dir} a comparison's run directory?")
    store = Store(path)
    try:
        records = store.list_runs(name=_EXPERIMENT)
        if not records:
            raise FileNotFoundError(f"{path} holds no comparison")
        spec = CompareSpec.from_dict(records[-1].config["spec"])
        task = records[-1].provenance.get("task", "classification")
        metric = records[-1].provenance.get("metric")
        return collect(spec, store, task=task, run_dir=run_dir, metric=metric)
    finally:
        store.close()
