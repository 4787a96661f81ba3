"""The configuration of one training run, checked before anything is loaded or trained.

A :class:`RunConfig` says what is optimized (problem, model, loss), how (optimizer and its
hyperparameters, schedules, batch size, steps or epochs), with which regularizers, and how the
run is observed (evaluation and checkpoint intervals, seed). It is a plain dataclass that
round-trips through JSON (:meth:`RunConfig.to_dict` / :meth:`RunConfig.from_dict`), which is
what the store records and what ``--resume`` rebuilds a run from.

``batch_size`` None is full-batch gradient descent, 1 stochastic gradient descent, ``n > 1``
mini-batch SGD (reshuffled every epoch).

Example:
    >>> cfg = RunConfig(problem="moons", model="mlp", optimizer="sgd", hyper={"lr": 0.1},
    ...                 batch_size=32, epochs=5)
    >>> RunConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> RunConfig(steps=0).validate()
    Traceback (most recent call last):
    ...
    ValueError: steps must be a positive integer, got 0
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

from descentlab import schedules
from descentlab.constraints import (
    NAME,
    NONNEGATIVE,
    NONNEGATIVE_INT,
    POSITIVE_INT,
    STR_KEYED,
    Boolean,
    Constraint,
    InstanceOf,
    Interval,
    Options,
    ParameterTypeError,
    check,
    invalid,
    validate,
)
from descentlab.engine.device import check_device
from descentlab.optim import Rule

__all__ = [
    "AUGMENT_KEYS",
    "EARLY_STOPPING_KEYS",
    "MONITORS",
    "PRECISIONS",
    "RunConfig",
    "build_schedule",
    "checked_config",
    "display_name",
    "parse_call",
    "schedule_names",
]

#: Options accepted in ``RunConfig.augment`` (1-D signals: the first two; images: the last).
AUGMENT_KEYS: tuple[str, ...] = ("max_shift", "scale_range", "max_translate")

#: Keys accepted in ``RunConfig.early_stopping``.
EARLY_STOPPING_KEYS: tuple[str, ...] = ("patience", "min_delta", "restore_best", "monitor")


@dataclass
class RunConfig:
    """Everything that defines one training run.

    Attributes:
        problem: dataset name (see ``descentlab.problems.data.DATASETS``).
        problem_options: extra options of ``data.load`` (e.g. ``{"n_samples": 500}``).
        split_seed: seed of the train/validation split (kept apart from ``seed`` so that runs
            with different seeds share one validation set).
        val_fraction: fraction of the training data held out for validation.
        model: model name (``models.MODELS``); None takes the problem's default model.
        model_options: keyword arguments of the model (``{"dropout": 0.1}``...).
        loss: loss name (``losses`` registry); None takes the problem's default loss.
        loss_options: keyword arguments of the loss (class weights, ...).
        label_smoothing: label smoothing of the *training* loss in ``[0, 1)`` (cross-entropy);
            evaluation losses are always unsmoothed, so runs with and without it compare.
        optimizer: a name from ``descentlab.optim.NAMES``. The Python API also accepts an
            update rule (``descentlab.optim.Rule``, run by ``descentlab.optim.Optimizer``) or a
            factory ``f(params, **hyper) -> torch.optim.Optimizer`` (e.g. ``torch.optim.SGD``).
        hyper: the optimizer's hyperparameters (``{"lr": 1e-2, "weight_decay": 1e-4}``).
        schedule: ``{hyperparameter: spec}`` (keys as ``descentlab.schedules.Scheduler``
            takes them: ``"lr"``, ``"momentum"``, ``"betas[0]"``...); a spec is a string
            ``"cosine(T_max=6000)"``, a dict ``{"name": "cosine", "T_max": 6000}`` or, in the
            Python API, a ``descentlab.schedules`` schedule or callable (see
            :func:`build_schedule`). Schedules step after every optimizer step; loss-driven
            rules (``reduce_on_plateau``, ``bold_driver``) step at every evaluation with the
            metric they monitor (patience counts evaluations).
        batch_size: None (full batch), 1 (SGD) or n (mini-batch).
        drop_last: drop the last incomplete batch of each epoch.
        steps: number of optimizer steps (exactly one of ``steps`` and ``epochs``).
        epochs: number of passes over the training data.
        eval_every: evaluate train and validation metrics every this many steps (and always at
            the last step); None picks about 25 evaluations per run.
        checkpoint_every: write a checkpoint every this many steps (None: only at the end).
        early_stopping: None, or ``{"patience": int, "min_delta": float, "restore_best": bool,
            "monitor": "val/loss" | "val/accuracy"}`` checked at every evaluation.
        mixup_alpha: Beta(alpha, alpha) mixing of pairs of examples (0 disables).
        cutmix_alpha: CutMix with Beta(alpha, alpha) patch areas (0 disables).
        input_noise: standard deviation of Gaussian noise added to training inputs.
        augment: random circular shifts and scalings of 1-D signals
            (``regularize.augment_1d``) or small translations of images
            (``regularize.augment_image``) of the training inputs: False, True (defaults
            ``{"max_shift": 3, "scale_range": [0.9, 1.1]}`` for signals,
            ``{"max_translate": 1}`` for images) or a dict of those options.
        weight_noise: standard deviation of Gaussian noise added to the weights for each
            training forward/backward pass (``regularize.WeightNoise``; 0 disables).
        precision: ``"fp32"`` (the default), ``"bf16"`` (forward pass and loss under
            ``torch.autocast``), ``"fp16"`` (autocast and a ``GradScaler``; CUDA only) or
            ``"auto"`` (:mod:`descentlab.engine.precision`); weights, optimizer state and
            evaluation stay in the model's dtype.
        accumulate: micro-batches of ``batch_size`` examples per optimizer step (gradient
            accumulation: one batch ``accumulate`` times larger, to rounding, but for batch
            norm's per-micro-batch statistics). Epochs count micro-batches.
        clip_grad_norm: clip the gradients' global L2 norm to this value before each
            optimizer step (``torch.nn.utils.clip_grad_norm_``; None: no clipping).
        seed: seed of model initialisation, data order, dropout and augmentation.
        device: torch device: ``"cpu"`` (the default), ``"cuda"`` or ``"cuda:N"``; one this
            machine does not have is refused by :meth:`validate` (see
            :mod:`descentlab.engine.device`).
        evaluate_test: evaluate the test split once, at the end.
        evaluate_train: evaluate the training split at each evaluation (False: the validation
            split only, and no ``train/`` metric but the training objective; a comparison's
            pruning rung runs, scored on validation only, skip the training split's cost).
        name: a name for the run in the store (default: ``problem-model-optimizer``).
    """

    problem: str = "mnist1d"
    problem_options: dict[str, Any] = field(default_factory=dict)
    split_seed: int = 0
    val_fraction: float = 0.2
    model: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    loss: str | None = None
    loss_options: dict[str, Any] = field(default_factory=dict)
    label_smoothing: float = 0.0
    optimizer: Any = "adam"
    hyper: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    drop_last: bool = False
    steps: int | None = None
    epochs: int | None = None
    eval_every: int | None = None
    checkpoint_every: int | None = None
    early_stopping: dict[str, Any] | None = None
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    input_noise: float = 0.0
    augment: bool | dict[str, Any] = False
    weight_noise: float = 0.0
    precision: str = "fp32"
    accumulate: int = 1
    clip_grad_norm: float | None = None
    seed: int = 0
    device: str = "cpu"
    evaluate_test: bool = True
    evaluate_train: bool = True
    name: str | None = None

    # -- serialization ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready data (tuples become lists).

        Objects that JSON cannot hold (a custom update rule, optimizer factory or schedule
        given through the Python API) are recorded by description, e.g.
        ``"custom:torch.optim.sgd.SGD"``: the store keeps what ran, and resuming such a run
        needs the same object passed again.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _LEFT_OUT_AT_DEFAULT and value == f.default:
                continue  # runs recorded before the field existed are found again
            out[f.name] = _jsonable(value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        """Build a config from :meth:`to_dict`'s output (unknown keys are an error).

        Raises:
            ValueError: a key is not a field of RunConfig (the message lists the valid ones).
        """
        if not isinstance(data, Mapping):  # a damaged or hand-edited store
            raise ValueError(
                f"a run config must be a mapping of RunConfig fields, got a "
                f"{type(data).__name__}: {data!r:.80}"
            )
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"unknown RunConfig field(s) {unknown}; valid fields: {names}")
        return cls(**{k: _copy(v) for k, v in data.items()})

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    @property
    def has_custom_objects(self) -> bool:
        """Whether the optimizer or a schedule is a Python object rather than a name."""
        if not isinstance(self.optimizer, str):
            return True
        return any(not isinstance(v, str | dict) for v in self.schedule.values())

    # -- checks ----------------------------------------------------------------------------

    def validate(self) -> None:
        """Check every field's type and range (names are checked against their registries
        when the run is built).

        Raises:
            ValueError: naming the field and its value (a wrong type is a
                :class:`~descentlab.constraints.ParameterTypeError`, a ``ValueError`` too).
        """
        self._check(self.to_dict())

    def checked(self) -> RunConfig:
        """This config checked (:meth:`validate`), as a resumed run reads it back from the
        store: tuples become lists, containers are its own (the config itself when it holds
        Python objects, which the store keeps only by description)."""
        return self.checked_record()[0]

    def checked_record(self) -> tuple[RunConfig, dict[str, Any]]:
        """:meth:`checked`, and the record the store keeps of it (:meth:`to_dict`).

        Checked once: the checked config remembers its record, and asked again while its
        fields are unchanged it is returned as it is, unchecked (a changed field, or a copy
        made with :meth:`replace`, is checked again).
        """
        record = self.to_dict()
        if self.__dict__.get("_checked") == record:
            return self, record
        # the copy is made before the checks (it only reads the record): the checks then
        # call no function of this module
        copy = self if self.has_custom_objects else RunConfig.from_dict(record)
        self._check(record)
        copy.__dict__["_checked"] = record
        return copy, record

    def _check(self, record: dict[str, Any]) -> None:
        """:meth:`validate`, given :meth:`to_dict`'s ``record``."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        checked = {k: v for k, v in values.items() if v is not None or k not in _OPTIONAL}
        validate(_FIELDS, checked)
        for key in _COUNTS:  # (a count no machine can honour would run until killed)
            value = checked.get(key)
            if value is not None and value > MAX_COUNT:
                raise ValueError(f"{key} must be at most {MAX_COUNT:,}, got {value}")
        check_device(self.device)  # before any data is loaded or model built
        if self.precision == "fp16" and not str(self.device).startswith("cuda"):
            raise ValueError(
                f"precision 'fp16' needs a CUDA device (its gradient scaler), got "
                f"device={self.device!r}; use precision 'bf16' on the CPU"
            )
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            raise ValueError(
                "mixup_alpha and cutmix_alpha cannot both be > 0, got "
                f"{self.mixup_alpha} and {self.cutmix_alpha}"
            )
        if isinstance(self.augment, Mapping):
            _check_keys("augment option", self.augment, AUGMENT_KEYS)
        if not self.evaluate_train:
            watching = [k for k, v in self.schedule.items() if "train/" in str(v)]
            if watching:
                raise ValueError(
                    f"evaluate_train=False leaves no train/ metric for schedule "
                    f"{watching[0]!r} to watch, got {self.schedule[watching[0]]!r}"
                )
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(
                f"give exactly one of steps and epochs, got steps={self.steps!r}, "
                f"epochs={self.epochs!r}"
            )
        if self.early_stopping is not None:
            _check_keys("early_stopping key", self.early_stopping, EARLY_STOPPING_KEYS)
            validate(
                _EARLY_STOPPING, {f"early_stopping.{k}": v for k, v in self.early_stopping.items()}
            )
        # checked here, not when the run is recorded (after the run was built): the store
        # keeps JSON, which has no NaN or infinity
        for key, value in record.items():
            stack = [value]
            while stack:
                item = stack.pop()
                if isinstance(item, dict):
                    stack.extend(item.values())
                elif isinstance(item, list):
                    stack.extend(item)
                elif isinstance(item, float) and not math.isfinite(item):
                    raise ValueError(
                        f"{key} must hold finite numbers only (the run is recorded as JSON), "
                        f"got {getattr(self, key)!r}"
                    )

    def run_name(self, model: str | None = None) -> str:
        """The run's display name: :attr:`name`, else ``problem-model-optimizer``."""
        return display_name(self.name, self.problem, model or self.model, self.optimizer)


def display_name(name: str | None, problem: str, model: str | None, optimizer: Any) -> str:
    """:meth:`RunConfig.run_name` from the fields it reads (``model``: the resolved model)."""
    if name:
        return name
    opt = optimizer if isinstance(optimizer, str) else _describe(optimizer)
    return f"{problem}-{model or 'default'}-{opt}"


def checked_config(config: RunConfig | Mapping[str, Any]) -> tuple[RunConfig, dict[str, Any]]:
    """A run's config where it enters the engine (a :class:`RunConfig` or a dict of its
    fields), checked once (:meth:`RunConfig.checked_record`): the config and its record."""
    if not isinstance(config, RunConfig):
        if not isinstance(config, Mapping):
            raise ValueError(f"config must be a RunConfig or a dict, got {type(config).__name__}")
        config = RunConfig.from_dict(config)
    return config.checked_record()


def _describe(obj: Any) -> str:
    if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__")):
        return f"custom:{getattr(obj, '__module__', '?')}.{obj.__qualname__}"
    return f"custom:{obj!r}"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return _describe(value)


def _copy(value: Any) -> Any:
    # Configs read back from JSON own their containers: editing one never edits another.
    if isinstance(value, dict | list):
        return json.loads(json.dumps(value))
    return value


def _check_keys(what: str, given: Mapping[str, Any], valid: tuple[str, ...]) -> None:
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise ValueError(f"unknown {what}(s) {unknown}; valid: {list(valid)}")


_OPTIONS = STR_KEYED
#: The most steps, epochs, examples a batch, micro-batches a step... a run takes (a count
#: larger than a machine can honour would run until killed; the command line's own limit).
MAX_COUNT = 10**9
_COUNTS = ("batch_size", "steps", "epochs", "eval_every", "checkpoint_every", "accumulate")
#: Values of ``RunConfig.precision``.
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16", "auto")
# Fields left out of ``to_dict`` at their default: they came later, and a run recorded before
# them (its config the store's key for it) is the same run.
_LEFT_OUT_AT_DEFAULT = frozenset({"precision", "accumulate", "clip_grad_norm", "evaluate_train"})
# The fields that may be None (a default chosen later); None skips their check.
_OPTIONAL = frozenset(
    {"model", "loss", "batch_size", "steps", "epochs", "eval_every", "checkpoint_every"}
    | {"early_stopping", "name", "clip_grad_norm"}
)
_FIELDS: dict[str, tuple[Constraint | None, ...]] = {
    "problem": (NAME,),
    "problem_options": (_OPTIONS,),
    "split_seed": (NONNEGATIVE_INT,),
    "val_fraction": (Interval(Real, 0.0, 1.0, closed="neither"),),
    "model": (NAME,),
    "model_options": (_OPTIONS,),
    "loss": (NAME,),
    "loss_options": (_OPTIONS,),
    "label_smoothing": (Interval(Real, 0.0, 1.0, closed="left"),),
    "optimizer": (NAME, InstanceOf(Rule, "an update rule"), InstanceOf(Callable, "a factory")),
    "hyper": (_OPTIONS,),
    "schedule": (_OPTIONS,),
    "batch_size": (POSITIVE_INT,),
    "drop_last": (Boolean,),
    "steps": (POSITIVE_INT,),
    "epochs": (POSITIVE_INT,),
    "eval_every": (POSITIVE_INT,),
    "checkpoint_every": (POSITIVE_INT,),
    "early_stopping": (InstanceOf(Mapping, "a dict"),),
    "mixup_alpha": (NONNEGATIVE,),
    "cutmix_alpha": (NONNEGATIVE,),
    "input_noise": (NONNEGATIVE,),
    "augment": (Boolean, InstanceOf(Mapping, "a dict")),
    "weight_noise": (NONNEGATIVE,),
    "precision": (Options(*PRECISIONS),),
    "accumulate": (POSITIVE_INT,),
    "clip_grad_norm": (Interval(Real, 0.0, None, closed="neither"),),
    "seed": (NONNEGATIVE_INT,),
    "device": (InstanceOf(str, "a device name like 'cpu'", bool),),
    "evaluate_test": (Boolean,),
    "evaluate_train": (Boolean,),
    "name": (NAME,),
}
_EARLY_STOPPING: dict[str, tuple[Constraint | None, ...]] = {
    "early_stopping.patience": (POSITIVE_INT,),
    "early_stopping.min_delta": (NONNEGATIVE,),
    "early_stopping.restore_best": (Boolean,),
    "early_stopping.monitor": (Options("val/loss", "val/accuracy"),),
}


# ------------------------------------------------------------------------------------------
# schedules by name

#: Metrics a loss-driven schedule or early stopping may watch (evaluated every eval_every).
MONITORS: tuple[str, ...] = (
    "val/loss",
    "val/accuracy",
    "train/loss",
    "train/accuracy",
    "train/objective",
)

# Public functions of descentlab.schedules that are not schedules, or need Python callables.
_NOT_SCHEDULES = frozenset(
    {
        "as_schedule",
        "from_function",
        "join",
        "growth_exponent",
        "robbins_monro",
        "lambda_schedule",
        "multiplicative",
    }
)
_SCHEDULE_EXAMPLE = "'cosine' or 'step(step_size=1000, gamma=0.5)'"
# The argument a schedule of the run's length needs, filled in when left out.
_RUN_LENGTH_ARGS = {
    "cosine": "T_max",
    "one_cycle": "total_steps",
    "one_cycle_momentum": "total_steps",
}


def schedule_names() -> tuple[str, ...]:
    """Names a schedule spec may use: the schedule factories of :mod:`descentlab.schedules`.

    Example:
        >>> "cosine" in schedule_names() and "reduce_on_plateau" in schedule_names()
        True
    """
    return tuple(
        sorted(
            n
            for n in schedules.__all__
            if n[0].islower() and n not in _NOT_SCHEDULES and callable(getattr(schedules, n))
        )
    )


def parse_call(text: str, what: str = "schedule", example: str = _SCHEDULE_EXAMPLE) -> Any:
    """Read a call expression as plain data, evaluating nothing.

    The one expression grammar of descentlab: schedule specs (``--schedule``) and composed
    update rules (``compare --optimizer``) are both written in it. A call ``f(a, k=v)`` reads
    as ``{"name": "f", "args": [a], "k": v}`` (``"args"`` only when there are positional
    arguments), a bare name ``f`` as ``{"name": "f"}``, a list or tuple as itself with its
    entries read the same way, and anything else must be a Python literal
    (:func:`ast.literal_eval`: numbers, strings, booleans, None).

    Args:
        text: the expression.
        what: what it describes, for the error messages ("schedule").
        example: an example of the grammar, for the error messages.

    Raises:
        ValueError: not an expression, a ``**`` argument, a keyword named ``name`` or
            ``args``, or an argument that is neither a literal nor a call.

    Example:
        >>> parse_call("warmup(cosine(T_max=90), steps=10)")
        {'name': 'warmup', 'args': [{'name': 'cosine', 'T_max': 90}], 'steps': 10}
        >>> parse_call("chain(trace(momentum=0.9), scale_by_lr())", "rule")
        {'name': 'chain', 'args': [{'name': 'trace', 'momentum': 0.9}, {'name': 'scale_by_lr'}]}
    """
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise invalid(what, f"an expression like {example}", text) from exc

    def convert(n: ast.AST) -> Any:
        if isinstance(n, ast.Name):
            return {"name": n.id}
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            out: dict[str, Any] = {"name": n.func.id}
            if n.args:
                out["args"] = [convert(a) for a in n.args]
            for kw in n.keywords:
                if kw.arg is None or kw.arg in out or kw.arg in ("name", "args"):
                    raise ValueError(f"{what} {text!r}: argument {kw.arg or '**'} is not supported")
                out[kw.arg] = convert(kw.value)
            return out
        if isinstance(n, ast.List | ast.Tuple):
            items = [convert(e) for e in n.elts]
            return items if isinstance(n, ast.List) else tuple(items)
        try:
            return ast.literal_eval(n)
        except ValueError:
            raise ValueError(
                f"{what} {text!r}: arguments must be numbers, strings, booleans, lists or calls"
            ) from None

    return convert(node)


def _parse_schedule(text: str) -> dict[str, Any]:
    spec = parse_call(text)
    if not isinstance(spec, dict):
        raise invalid("schedule", f"a call like {_SCHEDULE_EXAMPLE}", text)
    return spec


def build_schedule(spec: Any, *, total_steps: int | None = None) -> tuple[Any, str | None]:
    """Build a schedule (or loss rule) from a spec.

    A spec is a string ``"name(args)"``, a dict ``{"name": ..., "args": [...], **kwargs}``, or
    (Python API) a schedule object or callable ``step -> value``, returned as is. Nested specs
    build nested schedules (``"warmup(cosine(T_max=900), steps=100)"``). Left out, ``T_max``
    of ``cosine`` and ``total_steps`` of ``one_cycle`` default to the run's length. Loss rules
    (``reduce_on_plateau``, ``bold_driver``) take an extra ``monitor`` (one of
    :data:`MONITORS`, default ``"val/loss"``): they step at every evaluation with that metric.

    Args:
        spec: the spec.
        total_steps: the run's length, for the defaults above.

    Returns:
        ``(schedule, monitor)`` with ``monitor`` None for plain schedules.

    Raises:
        KeyError: unknown schedule name (lists the valid ones).
        ValueError: bad arguments.

    Example:
        >>> sched, monitor = build_schedule("step(step_size=10, gamma=0.5)")
        >>> sched(25), monitor
        (0.25, None)
    """
    if isinstance(spec, str):
        spec = _parse_schedule(spec)
    if not isinstance(spec, Mapping):
        if callable(spec):
            return spec, None
        raise invalid("schedule spec", "a string, a dict or a schedule", spec, type_error=True)
    if "name" not in spec:
        raise ValueError(f"schedule spec needs a 'name', got {dict(spec)!r}")
    kwargs = dict(spec)
    name = kwargs.pop("name")
    names = schedule_names()
    if name not in names:
        raise KeyError(f"unknown schedule {name!r}; valid names: {', '.join(names)}")
    monitor = kwargs.pop("monitor", None)
    args = [_nested(a, total_steps) for a in kwargs.pop("args", [])]
    kwargs = {k: _nested(v, total_steps) for k, v in kwargs.items()}
    length_arg = _RUN_LENGTH_ARGS.get(name)
    if length_arg and not args and length_arg not in kwargs and total_steps is not None:
        kwargs[length_arg] = total_steps
    try:
        built = getattr(schedules, name)(*args, **kwargs)
    except ParameterTypeError:
        raise
    except TypeError as exc:
        raise ValueError(f"bad arguments for schedule {name!r}: {exc}") from None
    if isinstance(built, schedules.LossRule):
        monitor = monitor or "val/loss"
        check("monitor", monitor, Options(*MONITORS))
        if getattr(built, "reject", False):
            # A rejected step rolls back to a snapshot that a checkpoint does not hold.
            raise ValueError(
                "bold_driver(reject=True) is not supported by training runs (its rollback "
                "cannot be checkpointed); use reject=False"
            )
        return built, monitor
    if monitor is not None:
        raise ValueError(f"monitor applies to loss-driven schedules only, not {name!r}")
    return built, None


def _nested(value: Any, total_steps: int | None) -> Any:
    if isinstance(value, Mapping) and "name" in value:
        built, monitor = build_schedule(value, total_steps=total_steps)
        if monitor is not None:
            raise ValueError("a loss-driven schedule cannot be nested in another schedule")
        return built
    if isinstance(value, list):
        return [_nested(v, total_steps) for v in value]
    return value
