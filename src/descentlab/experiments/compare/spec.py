"""What a comparison compares and how: :class:`CompareSpec`, its serialization and its checks,
and the :class:`Plan` derived from it once it has passed them.

Everything :func:`~descentlab.experiments.compare.compare` does is decided by the spec; its
:meth:`~CompareSpec.validate` raises every error it can before any run directory is made. The
checks and the plan are one pass (:meth:`CompareSpec.plan`): the first tuning round of each
optimizer is drawn once, checked (every optimizer built with each of its settings) and kept
in the plan; below it, the protocol reads plain values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from descentlab.engine.config import RunConfig
from descentlab.engine.device import check_device
from descentlab.experiments import tuning
from descentlab.experiments.compare import pruning
from descentlab.experiments.compare.choices import (
    OptimizerChoice,
    accepts,
    check_optimizer,
    has_hyper,
    parse_optimizer,
)
from descentlab.experiments.compare.search_space import (
    QUASIRANDOM,
    draw_settings,
    hyper_of,
    run_fields,
)
from descentlab.experiments.kinds import FORMS, kind_named
from descentlab.problems import data as datasets
from descentlab.problems import landscapes as lands
from descentlab.problems import models
from descentlab.problems.problem import BUILTIN_PROBLEMS, is_problem_ref, problem_slug

__all__ = ["DEFAULT_OPTIMIZERS", "FORMS", "CompareSpec", "Plan", "target_of", "tuning_settings"]

#: The lectures' optimizers, compared by default (the five lectures), and Adadelta once more at its
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


#: The most seeds, tuning seeds or learning rates per optimizer a comparison takes.
MAX_COUNT = 1000

#: ``batch_size`` left to the data: ``min(128, n_train // 4)`` (:func:`default_batch_size`).
AUTO_BATCH = "auto"
#: The largest default batch (a smaller one for a training set of fewer than 512 examples).
DEFAULT_BATCH_SIZE = 128


def default_batch_size(n_train: int | None) -> int:
    """The batch a comparison trains with unless told: ``min(128, n_train // 4)`` (at least
    1; 128 for a stream without a length), so that every epoch has at least four steps.

    Example:
        >>> default_batch_size(114), default_batch_size(60_000), default_batch_size(3)
        (28, 128, 1)
    """
    if n_train is None:
        return DEFAULT_BATCH_SIZE
    return max(1, min(DEFAULT_BATCH_SIZE, int(n_train) // 4))


#: Seeds are 64-bit integers (torch.manual_seed).
MAX_SEED = 2**63 - 1


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
            (each registered optimizer's record's ``lr_range``).
        batch_size: examples per step (None: full batch; ``"auto"``, the default:
            :func:`default_batch_size` of the training data, ``min(128, n_train // 4)``,
            fixed when the comparison starts and announced when it is not 128).
        steps: length of the curve and refit runs.
        tune_steps: length of each tuning trial (None, the default: ``steps``). Shorter
            tuning runs favour settings that start fast and may choose a rate that loses at
            the full horizon.
        tune_seeds: seeds each tuning setting is trained with (its score is their mean).
        search: ``"grid"``, ``"random"`` or ``"quasirandom"``: the equal-budget protocol of
            AlgoPerf's external tuning, ``lrs_per_optimizer`` trials for every optimizer drawn
            from its declared search space
            (:mod:`~descentlab.experiments.compare.search_space`), never refined.
        lrs_per_optimizer: learning rates per optimizer on the coarse grid (times the ``space``
            grid), or random draws, or (``search="quasirandom"``) the trials every optimizer
            gets (its equal budget). (``trials=``, its old name, still works and warns once.)
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
        seeds: seeds of the curve runs, and test seeds of the refit runs at the verdict's first
            look (5 by default: fewer give intervals too wide to separate most optimizers).
        max_seeds: the most test seeds the sequential verdict gives an optimizer whose
            comparison is still open (:mod:`~descentlab.experiments.compare.sequential`; None:
            ``8 * seeds``; ``seeds``: one look, no seeds added).
        seed: first seed (tuning uses ``seed .. seed + tune_seeds - 1``; the curve runs use
            ``seed .. seed + seeds - 1``; the refit runs disjoint test seeds from ``seed +
            10000``: the choice is made on other seeds than the test).
        target_accuracy: validation accuracy whose first crossing is timed (classification;
            None, the default: none -- the speedups measure time against each optimizer's own
            final validation score instead).
        min_difference: a practical threshold in the metric's units (0.01: one accuracy
            point): the verdict says where a difference it shows may be smaller, and where
            one it does not show is within it (None: not said). Not part of the run's
            identity: changing it re-renders, it reruns nothing.
        baseline: the label of an optimizer to size every other against as well as the chosen
            one (the speedups; e.g. ``"adamw"``). Not part of the run's identity.
        eval_every: evaluation interval of the curve runs (None: about 25 evaluations).
        val_fraction: validation fraction of the holdout split.
        split_seed: seed of the train/validation split and of the folds.
        confidence: confidence level of the t-intervals (per optimizer, and of the paired
            differences that group optimizers not distinguishable from the best).
        landscapes: landscapes on which the same optimizers' paths are drawn in the report.
        name: the run directory's name (None: derived from the problem, the model and a hash
            of this spec, so that the same command finds the same directory).
        device: the torch device every trial trains on (``"cpu"``, ``"cuda"``, ``"cuda:N"``);
            one this machine does not have is refused by :meth:`validate`. ``"cpu"`` is left
            out of :meth:`to_dict` (a comparison stored before the field existed is found
            again); another device is part of it and of the digest (its numbers differ by
            rounding from the CPU's).
        precision, accumulate, clip_grad_norm: every trial's engine options (mixed
            precision, gradient accumulation, clipping before the optimizer: see
            :class:`~descentlab.engine.config.RunConfig`); left out of :meth:`to_dict` at
            their defaults, like ``device``. Trials with them train one at a time (the
            vectorized path does not implement them).
        prune: None (every tuning trial runs its full length), ``"bounds"`` or ``"asha"``:
            tuning settings clearly behind at a rung are stopped there -- ``"bounds"``: at
            ``T/8`` or ``T/2`` of their ``T`` steps, worse than the best setting by more than
            their noise's one-sided 1 % margin; ``"asha"``: at ``T/16`` or ``T/4``, outside
            the top quarter (asynchronous successive halving by Optuna's pruner, in a fixed
            order); see :mod:`~descentlab.experiments.compare.pruning`. Pruned settings count
            as tried; the final runs are never shortened. Left out of :meth:`to_dict` when None (a
            comparison stored before the field existed is found again).
        objective: your own training code instead of the engine's loop
            (:mod:`~descentlab.experiments.objective`): ``{"form": "function" | "hf_trainer" |
            "lightning", "ref": "path/file.py:fn"[, "metric": name, "maximize": bool]}``;
            :func:`~descentlab.experiments.compare.compare` adds the code's hash (``code``)
            and whether descentlab gives the data (``data``). None (the default): the engine
            trains ``problem``'s model. Left out of :meth:`to_dict` when None.

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
    batch_size: int | str | None = AUTO_BATCH
    steps: int = 1000
    tune_steps: int | None = None
    tune_seeds: int = 1
    search: str = "grid"
    lrs_per_optimizer: int = 5
    refine: bool = True
    max_extend: int = 2
    space: dict[str, Any] = field(default_factory=dict)
    cv_folds: int | None = None
    seeds: int = 5
    max_seeds: int | None = None
    seed: int = 0
    target_accuracy: float | None = None
    eval_every: int | None = None
    val_fraction: float = 0.2
    split_seed: int = 0
    confidence: float = 0.95
    landscapes: Sequence[str] = ("ravine", "saddle")
    name: str | None = None
    device: str = "cpu"
    precision: str = "fp32"
    accumulate: int = 1
    clip_grad_norm: float | None = None
    prune: str | None = None
    objective: dict[str, Any] | None = None
    min_difference: float | None = None
    baseline: str | None = None
    #: Deprecated: the old name of :attr:`lrs_per_optimizer` (it never counted training runs).
    trials: dataclasses.InitVar[int | None] = None

    def __post_init__(self, trials: int | None) -> None:
        if trials is not None:
            warnings.warn(
                "CompareSpec(trials=...) is deprecated: it is the number of learning rates per "
                "optimizer, now lrs_per_optimizer",
                FutureWarning,
                stacklevel=3,
            )
            self.lrs_per_optimizer = trials

    # -- derived -----------------------------------------------------------------------------

    @property
    def refines(self) -> bool:
        """Whether refinement rounds follow the first one: ``refine`` applies to grid search
        only (a budget or a random search never refines)."""
        return self.refine and self.search == "grid"

    def choices(self) -> list[OptimizerChoice]:
        """The optimizers as :class:`OptimizerChoice` (ranges from ``lr_ranges`` applied)."""
        out = []
        for item in self.optimizers:
            c = parse_optimizer(item)
            if c.label in self.lr_ranges:
                # a range given for a learning-rate-free optimizer tunes it after all
                fixed = c.fixed_lr and not c.lr_free
                c = dataclasses.replace(
                    c, lr_range=tuple(self.lr_ranges[c.label]), fixed_lr=fixed, lr_free=False
                )
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
    def looks(self) -> tuple[int, ...]:
        """The sequential verdict's looks: cumulative test seeds
        (:func:`~descentlab.experiments.compare.sequential.default_looks`)."""
        from descentlab.experiments.compare.sequential import default_looks

        if self.seeds < 2:
            return (self.seeds,)
        return default_looks(self.seeds, self.max_seeds)

    @property
    def test_seeds(self) -> list[int]:
        """The refit runs' seeds, as many as the last look takes: disjoint from the curve
        runs' (the choice) and the tuning seeds."""
        from descentlab.experiments.compare.sequential import refit_seed

        return [refit_seed(self.seed, i) for i in range(self.looks[-1])]

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
        self.plan(custom_data=custom_data)

    def plan(
        self, *, custom_data: bool = False, stored: bool = False, checked: Plan | None = None
    ) -> Plan:
        """:meth:`validate`, and the :class:`Plan` of this checked spec: what the protocol
        reads of it, derived in the same pass (the first tuning rounds the checks build the
        optimizers with are the plan's).

        Checked once: the CLI, :func:`~descentlab.experiments.compare.compare` and
        :func:`~descentlab.experiments.compare.prepare` all ask; a spec whose fields are
        unchanged since it passed (their repr, nested values included) returns the same plan.

        Args:
            custom_data: the data are given: ``problem`` is only a name (see
                :meth:`validate`).
            stored: the spec of a comparison read back from its store, whose device and
                problem need not be on this machine (neither is looked up).
            checked: the plan of this comparison before its problem, objective or batch size
                was resolved: an optimizer's settings that it checked are not checked again.
        """
        key = (custom_data, stored, repr(self))
        passed = self.__dict__.get("_passed")
        if passed is not None and passed[0] == key:
            return passed[1]
        plan = _checked_plan(self, custom_data or stored, here=not stored, checked=checked)
        self.__dict__["_passed"] = (key, plan)
        return plan

    # -- serialization ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (optimizers as dicts; rules by their parseable repr)."""
        out = _record(self)
        out["optimizers"] = [c.to_dict() for c in self.choices()]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompareSpec:
        """Inverse of :meth:`to_dict`."""
        kwargs = dict(data)
        if "trials" in kwargs:  # stored by an earlier version under its old name
            kwargs["lrs_per_optimizer"] = kwargs.pop("trials")
        kwargs["optimizers"] = [OptimizerChoice.from_dict(d) for d in data["optimizers"]]
        kwargs["lr_ranges"] = {k: tuple(v) for k, v in data.get("lr_ranges", {}).items()}
        kwargs["space"] = {
            k: (tuple(v["range"]) if isinstance(v, dict) else list(v))
            for k, v in data.get("space", {}).items()
        }
        kwargs["landscapes"] = tuple(data.get("landscapes", ()))
        return cls(**kwargs)

    def digest(self, record: Mapping[str, Any] | None = None) -> str:
        """A short hash of everything but the name (the default directory's suffix);
        ``record``: :meth:`to_dict`'s output, when the caller has it."""
        return _digest(self.to_dict() if record is None else record)

    def run_name(self, record: Mapping[str, Any] | None = None) -> str:
        """The run directory's name: :attr:`name`, else ``<problem>-<model>-<digest>``
        (``record``: :meth:`to_dict`'s output, when the caller has it)."""
        if self.name:
            return self.name
        return f"{problem_slug(self.problem)}-{self.model or 'default'}-{self.digest(record)}"


# Fields left out of the record at their defaults (they came later).
_LEFT_OUT = frozenset(
    {"device", "precision", "accumulate", "clip_grad_norm", "prune", "max_seeds", "objective"}
)
# Fields that only say what the verdict reports: never in the record (nor the digest), so
# that changing one re-renders the comparison and reruns nothing (a comparison keeps them in
# its provenance).
VERDICT_ONLY = frozenset({"min_difference", "baseline", "target_accuracy"})

#: The target every record held before the target became a reporting setting: the digest
#: still hashes it, so that run folders made before keep their names (and their trials).
_DIGEST_TARGET = 0.8


def _record(spec: CompareSpec) -> dict[str, Any]:
    """:meth:`CompareSpec.to_dict` but the optimizers (which their choices write)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if f.name == "lr_ranges":
            value = {k: [float(x) for x in v] for k, v in value.items()}
        elif f.name == "space":
            value = {
                k: (list(v) if isinstance(v, list) else {"range": list(v)})
                for k, v in value.items()
            }
        elif f.name == "landscapes":
            value = list(value)
        elif f.name in VERDICT_ONLY or (f.name in _LEFT_OUT and value == f.default):
            continue  # a comparison stored before the field existed is found again
        elif f.name == "batch_size" and value == AUTO_BATCH:
            # compare() fixes "auto" from the data before it records anything; unfixed, it is
            # the 128 it is on 512 training examples or more (the default before "auto")
            value = DEFAULT_BATCH_SIZE
        out[f.name] = value
    return out


def _digest(record: Mapping[str, Any]) -> str:
    """:meth:`CompareSpec.digest` of the spec whose :meth:`~CompareSpec.to_dict` is ``record``."""
    d = dict(record)
    d.pop("name")
    d["target_accuracy"] = _DIGEST_TARGET
    # hashed under the field's earlier name, so that run folders made before the rename are
    # found again (and resumed) by the same command
    d["trials"] = d.pop("lrs_per_optimizer")
    # The folder name's own text, fixed so that folders keep their names (tests/test_gpu_train.py
    # pins two digests): sorted keys, no spaces, no NaN -- today the same text as the store's
    # canonical_json, which may change with the store's format; this may not. Serialized here
    # and not through the store: naming a folder is the spec's, and the store is not yet open.
    try:
        text = json.dumps(d, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the comparison's settings must be finite JSON values: {exc}") from None
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Plan:
    """What the protocol reads of a checked spec, derived from it once
    (:meth:`CompareSpec.plan`): the run config every trial starts from, the lengths, folds and
    seeds, and each optimizer's first tuning round.

    The planning functions take a plan or a spec (a spec is turned into a plan first); a
    comparison derives its plan once and passes it down.
    """

    spec: CompareSpec
    #: the run directory's name (:meth:`CompareSpec.run_name`)
    run_name: str
    #: the spec as the experiment record holds it (:meth:`CompareSpec.to_dict`)
    record: dict[str, Any]
    choices: tuple[OptimizerChoice, ...]
    #: each optimizer's first tuning round (:func:`tuning_settings`), by label
    first_rounds: Mapping[str, list[dict[str, Any]]]
    #: the run fields (:func:`~descentlab.experiments.compare.search_space.run_fields` of a
    #: tuning run) of each setting of each optimizer's first round, by label
    first_fields: Mapping[str, list[tuple[dict[str, Any], dict[str, Any]]]]
    #: each optimizer's grid spacing in decades (:func:`~descentlab.experiments.tuning.grid_step`)
    grid_steps: Mapping[str, float]
    base: RunConfig
    steps: int
    tune_steps: int
    folds: tuple[str, ...]
    tune_seeds: tuple[int, ...]
    final_seeds: tuple[int, ...]
    curve_eval_every: int
    #: refinement rounds follow the coarse grid (grid search with ``refine``)
    refine: bool
    lrs_per_optimizer: int
    max_extend: int
    #: the steps at which tuning settings are judged when the spec prunes (empty: no
    #: pruning; :func:`~descentlab.experiments.compare.pruning.rung_steps`)
    rungs: tuple[int, ...] = ()
    #: the refit runs' test seeds (as many as the last look takes) and the looks
    test_seeds: tuple[int, ...] = ()
    looks: tuple[int, ...] = ()

    @classmethod
    def of(cls, spec: CompareSpec | Plan) -> Plan:
        """The plan of ``spec`` (checked first; a plan is returned as it is)."""
        return spec if isinstance(spec, Plan) else spec.plan()


# ------------------------------------------------------------------------------------------
# the search space: which settings of each optimizer are tuned


def target_of(key: str, labels: Sequence[str]) -> tuple[str, str] | None:
    """``(label, name)`` for a search-space key ``"LABEL.name"`` naming one optimizer."""
    for label in sorted(labels, key=len, reverse=True):
        if key.startswith(label + ".") and len(key) > len(label) + 1:
            return label, key[len(label) + 1 :]
    return None


def _space_for(spec: CompareSpec, choice: OptimizerChoice) -> dict[str, Any]:
    """The search space of one optimizer: the plain names it has, and ``LABEL.name`` keys
    naming it (those win over a plain name)."""
    labels = [parse_optimizer(o).label for o in spec.optimizers]
    out: dict[str, Any] = {}
    targeted: dict[str, Any] = {}
    for key, values in spec.space.items():
        target = target_of(key, labels)
        if target is None:
            if has_hyper(choice, key):
                out[key] = values
        elif target[0] == choice.label:
            targeted[target[1]] = values
    return {**out, **targeted}


def tuning_settings(spec: CompareSpec, choice: OptimizerChoice) -> list[dict[str, Any]]:
    """The settings of the first tuning round for one optimizer (the tuned hyperparameters
    only): the coarse grid, or the random draws; none for a ``fixed_lr`` optimizer."""
    if choice.fixed_lr:
        return []
    if spec.search == QUASIRANDOM:
        return draw_settings(spec, choice, _space_for(spec, choice))
    return tuning.candidates(
        choice.lr_range,
        search=spec.search,
        trials=spec.lrs_per_optimizer,
        space=_space_for(spec, choice),
        seed=spec.seed,
    )


# the checks of CompareSpec.validate, one concern each


#: The longest folder name (in bytes) the common file systems take (ext4, XFS, APFS, NTFS).
NAME_MAX = 255


def _check_names(spec: CompareSpec, custom_data: bool) -> None:
    """The problem, the model and the landscapes against their registries; the folder name."""
    if not isinstance(spec.problem, str) or not spec.problem:
        raise ValueError(f"problem must be a name, got {spec.problem!r}")
    if (
        not custom_data
        and spec.problem not in datasets.DATASETS
        and not is_problem_ref(spec.problem)
    ):
        raise KeyError(
            f"unknown problem {spec.problem!r}; valid names: "
            f"{', '.join((*datasets.DATASETS, *BUILTIN_PROBLEMS))}, or a problem function "
            "'package.module:function' or 'path/to/file.py:function'"
        )
    if spec.model is not None and spec.model not in models.MODELS:
        raise KeyError(
            f"unknown model {spec.model!r}; valid names: {', '.join(models.MODELS)}; a model of "
            "your own is built by your code: an --objective function that builds it (at "
            "run.size in a scale study), or a --problem function returning "
            "{'model': factory, 'data': ...} whose factory takes size="
        )
    for land in spec.landscapes:
        lands.get(land)  # KeyError listing the valid names
    if spec.name is not None and (
        not isinstance(spec.name, str)
        or spec.name in ("", ".", "..")
        or os.sep in spec.name
        or "\0" in spec.name
    ):
        raise ValueError(f"name must be a plain folder name, got {spec.name!r}")
    if spec.name is not None and len(os.fsencode(spec.name)) > NAME_MAX:
        raise ValueError(
            f"name must be at most {NAME_MAX} bytes (a folder name), got "
            f"{len(os.fsencode(spec.name)):,}: {spec.name[:40]!r}..."
        )


def _check_choices(spec: CompareSpec) -> list[OptimizerChoice]:
    """The optimizer list: not empty, unique labels, ranges naming compared optimizers."""
    if isinstance(spec.optimizers, str) or not isinstance(spec.optimizers, Sequence):
        raise ValueError(f"optimizers must be a list, got {spec.optimizers!r}")
    if len(spec.optimizers) == 0:
        raise ValueError("optimizers must name at least one optimizer, got an empty list")
    choices = spec.choices()
    labels = [c.label for c in choices]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ValueError(f"optimizer labels must be unique, got {dup} more than once")
    unknown = sorted(set(spec.lr_ranges) - set(labels))
    if unknown:
        raise ValueError(f"lr_ranges names {unknown}, which are not optimizers here: {labels}")
    for c in choices:
        _check_hyper(c)
    return choices


def _nonfinite(value: Any) -> bool:
    """A number (or a number's text: ``"nan"``, ``"inf"``) that is not finite."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return not math.isfinite(float(value))
    if isinstance(value, list | tuple):
        return any(_nonfinite(v) for v in value)
    return False


def _check_hyper(choice: OptimizerChoice) -> None:
    """An optimizer's fixed hyperparameters: finite, and not the learning rate (which the
    comparison sets: a fixed ``lr`` would be silently replaced)."""
    for key, value in choice.hyper.items():
        if key == "lr" and not choice.fixed_lr:
            raise ValueError(
                f"hyperparameter {choice.label}.lr={value!r}: the learning rate is tuned, not "
                f"fixed (its range: --lr-range {choice.label}=LOW:HIGH; kept at its default: "
                f"--fixed-lr {choice.label}; at another value: --fixed-lr {choice.label}=LR)"
            )
        if key == "lr" and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                            or not 0 < value < math.inf):  # fmt: skip
            raise ValueError(f"{choice.label}'s fixed lr must be a positive number, got {value!r}")
        if _nonfinite(value):
            raise ValueError(
                f"hyperparameter {choice.label}.{key} must be a finite number, got {value!r}"
            )


def _nonneg_int(name: str, value: Any, *, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_budget(spec: CompareSpec) -> None:
    """Steps, learning rates per optimizer, seeds and batch size: positive integers."""
    _pos_int("steps", spec.steps)
    _pos_int("tune_steps", spec.tune_steps, optional=True)
    _pos_int("lrs_per_optimizer", spec.lrs_per_optimizer)
    _pos_int("seeds", spec.seeds)
    _pos_int("max_seeds", spec.max_seeds, optional=True)
    if spec.max_seeds is not None and spec.max_seeds < spec.seeds:
        raise ValueError(f"max_seeds must be at least seeds ({spec.seeds}), got {spec.max_seeds!r}")
    _pos_int("tune_seeds", spec.tune_seeds)
    for key in ("seeds", "max_seeds", "tune_seeds", "lrs_per_optimizer"):
        if (getattr(spec, key) or 0) > MAX_COUNT:
            raise ValueError(
                f"{key} must be at most {MAX_COUNT} (each one is a set of training runs), got "
                f"{getattr(spec, key)!r}"
            )
    if spec.batch_size != AUTO_BATCH:
        _pos_int("batch_size", spec.batch_size, optional=True)
    _pos_int("eval_every", spec.eval_every, optional=True)
    _nonneg_int("max_extend", spec.max_extend)
    for key in ("seed", "split_seed"):
        _nonneg_int(key, getattr(spec, key))
        if getattr(spec, key) + spec.seeds > MAX_SEED:
            raise ValueError(
                f"{key} must be below {MAX_SEED - spec.seeds} (seeds are 64-bit integers), got "
                f"{getattr(spec, key)!r}"
            )


def _check_protocol(spec: CompareSpec) -> None:
    """The search, the folds, the target, the confidence level, the validation fraction and
    the search space's entries (for that search)."""
    if not isinstance(spec.refine, bool):
        raise ValueError(f"refine must be True or False, got {spec.refine!r}")
    if spec.search not in (*tuning.SEARCHES, QUASIRANDOM):
        raise ValueError(
            f"search must be one of {', '.join((*tuning.SEARCHES, QUASIRANDOM))}, got "
            f"{spec.search!r}"
        )
    if spec.cv_folds is not None:
        try:
            _nonneg_int("cv_folds", spec.cv_folds, minimum=2)
        except ValueError:
            raise ValueError(
                f"cv_folds must be None or an integer >= 2, got {spec.cv_folds!r}"
            ) from None
    t = spec.target_accuracy
    if t is not None and (
        isinstance(t, bool)
        or not isinstance(t, numbers.Real)
        or not math.isfinite(t)
        or not 0.0 <= t <= 1.0
    ):
        raise ValueError(f"target_accuracy must be in [0, 1], got {t!r}")
    tau = spec.min_difference
    if tau is not None and not (
        isinstance(tau, numbers.Real) and not isinstance(tau, bool) and 0 < tau < math.inf
    ):
        raise ValueError(f"min_difference must be a positive number, got {tau!r}")
    labels = [c.label for c in spec.choices()]
    if spec.baseline is not None and spec.baseline not in labels:
        raise ValueError(f"baseline must be one of the optimizers {labels}, got {spec.baseline!r}")
    for key in ("confidence", "val_fraction"):
        v = getattr(spec, key)
        if not (isinstance(v, float) and 0.0 < v < 1.0):
            raise ValueError(f"{key} must be in (0, 1), got {v!r}")
    # the equal-budget search takes the same entries as the random one
    tuning.check_space(spec.space, "random" if spec.search == QUASIRANDOM else spec.search)


def _check_space(spec: CompareSpec, choices: list[OptimizerChoice]) -> None:
    """The search space's entries (valid: :func:`_check_protocol`), each naming a
    hyperparameter some tuned optimizer has (``"LABEL.name"``: that optimizer takes it)."""
    labels = [c.label for c in choices]
    tuned = [c.label for c in choices if not c.fixed_lr]
    for key in spec.space:
        target = target_of(key, labels)
        if target is None:
            if not any(has_hyper(c, key) for c in choices if not c.fixed_lr):
                raise ValueError(
                    f"no optimizer here has the hyperparameter {key!r} of the search space "
                    f"(tuned optimizers: {tuned}); to add it to one optimizer, name it: "
                    f"'LABEL.{key}'"
                )
            continue
        label, name = target
        choice = next(c for c in choices if c.label == label)
        if choice.fixed_lr:
            raise ValueError(
                f"space[{key!r}]: {label!r} keeps its default learning rate (fixed_lr) "
                "and is not tuned"
            )
        if not accepts(choice, name):
            raise ValueError(f"space[{key!r}]: optimizer {label!r} takes no {name!r}")


def _checked_plan(
    spec: CompareSpec, custom_data: bool, *, here: bool = True, checked: Plan | None = None
) -> Plan:
    """:meth:`CompareSpec.plan`: the spec's own checks, its derived values (its rungs, record
    and run name too); then the learning rates go out once to each module that needs them
    (the grids of ``tuning``, the hyperparameters of ``search_space``, the optimizers checked
    by ``choices``), from here, in that order. ``here``: the comparison is to run on this
    machine (its device is checked); ``checked``: a plan whose optimizers' settings passed."""
    if here:
        check_device(spec.device)  # first: a missing GPU is said before anything else
    kind = kind_named(spec.objective)  # (its record: the lr's path passes the kinds once)
    _check_names(spec, custom_data or kind.own_problem)
    choices = _check_choices(spec)
    _check_budget(spec)
    _check_protocol(spec)
    pruning.check_prune(spec.prune)  # the pruning rule, and the steps it judges at
    rungs = pruning.rung_steps(spec.tune_length, spec.prune) if spec.prune else ()
    _check_space(spec, choices)
    spaces = {c.label: _space_for(spec, c) for c in choices}
    record = _record(spec)
    record["optimizers"] = [c.to_dict() for c in choices]
    run_name = spec.run_name(record)
    folds = (
        ("holdout",)
        if spec.cv_folds is None
        else tuple(f"fold:{i}:{spec.cv_folds}" for i in range(spec.cv_folds))
    )
    engine = dict(device=spec.device, precision=spec.precision, accumulate=spec.accumulate,
                  clip_grad_norm=spec.clip_grad_norm)  # fmt: skip
    base = RunConfig(
        problem=spec.problem,
        problem_options=dict(spec.problem_options),
        split_seed=spec.split_seed,
        val_fraction=spec.val_fraction,
        model=spec.model,
        model_options=dict(spec.model_options),
        # ("auto" is fixed from the data before any trial: compare's _resolve)
        batch_size=DEFAULT_BATCH_SIZE if spec.batch_size == AUTO_BATCH else spec.batch_size,
        steps=spec.steps,
        **engine,
    )
    # the engine options, by the engine's own checks and messages (on the spec's device where
    # it is to run here; a stored comparison's device may be a GPU this machine lacks)
    if here:
        RunConfig(steps=1, **engine).validate()
    tune_steps = spec.tune_length
    rounds, steps = _first_rounds(spec, choices, spaces)
    # Every optimizer's fixed hyperparameters and every setting of its first round checked
    # once, as its construction checks them (a bad one would otherwise fail in a trial, after
    # the run folder and the store were made).
    hypers: dict[str, list[dict[str, Any]]] = {}
    fields: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for c in choices:
        hypers[c.label], fields[c.label] = [], []
        for setting in rounds[c.label]:
            hypers[c.label].append({**c.hyper, **hyper_of(setting)})
            fields[c.label].append(run_fields(setting, steps=tune_steps))
    passed = [(c, checked.first_rounds[c.label]) for c in checked.choices] if checked else []
    for c in choices:
        lr = c.default_lr() if c.fixed_lr else c.lr_range[0]
        if (c, rounds[c.label]) not in passed:
            check_optimizer(c, {**c.hyper, "lr": lr}, *hypers[c.label])
    kind.check(spec)  # (last: then the lr's path passes the kinds once, as the comparison asks)
    return Plan(
        spec=spec,
        run_name=run_name,
        record=record,
        choices=tuple(choices),
        first_rounds=rounds,
        first_fields=fields,
        grid_steps=steps,
        base=base,
        steps=spec.steps,
        tune_steps=tune_steps,
        folds=folds,
        tune_seeds=tuple(spec.tuning_seeds),
        final_seeds=tuple(spec.final_seeds),
        curve_eval_every=spec.curve_eval_every,
        test_seeds=tuple(spec.test_seeds),
        looks=spec.looks,
        refine=spec.refines,
        lrs_per_optimizer=spec.lrs_per_optimizer,
        max_extend=spec.max_extend,
        rungs=rungs,
    )


def _first_rounds(
    spec: CompareSpec, choices: Sequence[OptimizerChoice], spaces: Mapping[str, Any]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, float]]:
    """Each optimizer's learning-rate range checked (a tuned optimizer's holds more than one
    point when several are tried: ``low == high`` gives the same trial again and again), its
    first tuning round (:func:`tuning_settings`) and its grid spacing, by label (the search
    space's entries were checked before: :func:`_check_space`)."""
    rounds: dict[str, list[dict[str, Any]]] = {}
    steps: dict[str, float] = {}
    for c in choices:
        lo, hi = tuning._check_positive_range(f"lr range of {c.label}", c.lr_range)
        if not c.fixed_lr and lo == hi and spec.lrs_per_optimizer > 1:
            raise ValueError(
                f"lr range of {c.label} is empty ({lo:g}:{hi:g}) but {spec.lrs_per_optimizer} "
                "learning rates are to be tried in it: give LOW < HIGH, or one learning rate "
                "(--lr-trials 1)"
            )
        steps[c.label] = tuning.grid_step_of(lo, hi, spec.lrs_per_optimizer)
        if c.fixed_lr:
            rounds[c.label] = []
        elif spec.search == QUASIRANDOM:
            rounds[c.label] = draw_settings(spec, c, spaces[c.label])
        else:  # (the count, the search and the space were checked with the spec)
            rounds[c.label] = tuning.candidates_of(lo, hi, spec.lrs_per_optimizer,
                                                   search=spec.search, space=spaces[c.label],
                                                   seed=spec.seed)  # fmt: skip
    return rounds, steps
