"""Building a run from its config: the data loaded and checked, the model, losses, optimizer,
schedules and early stopping made, the model probed on the smallest batch it will see; and what
a built run evaluates and draws into each training batch.

A run trained alone (:mod:`descentlab.engine.run`) and the same run trained in a vectorized
group (:mod:`descentlab.engine.multirun`) are built by the same code.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from descentlab import losses, optim, regularize, schedules
from descentlab._announce import once, said
from descentlab._usercode import raised_by_user
from descentlab.engine import evaluation
from descentlab.engine.config import RunConfig, build_schedule, display_name
from descentlab.engine.splits import as_split, test_data, train_val_data
from descentlab.optim.stored import announce_unused
from descentlab.problems import data as datasets
from descentlab.problems import models
from descentlab.problems.problem import build_model, is_problem_ref, load_problem
from descentlab.schedules.scheduler import parse_key

__all__ = [
    "Built",
    "InputPipeline",
    "announce_batch_norm_caveats",
    "build",
    "eval_splits",
    "hyper_value",
    "input_pipeline",
    "make_early_stopping",
    "make_optimizer",
    "make_schedulers",
    "optimizer_modes",
    "smallest_batch",
    "split_metrics",
    "test_metrics",
    "total_steps",
]


@dataclass
class Built:
    splits: Any
    classification: bool
    model_name: str
    loss_name: str
    model: nn.Module
    train_loss: Callable[[Tensor, Tensor], Tensor]
    eval_loss: Callable[[Tensor, Tensor], Tensor]
    optimizer: Any
    scheduler: Any
    rule_scheduler: Any
    rule_monitor: str | None
    scheduled: tuple[str, ...]
    early: Any
    total_steps: int
    #: the data as tensors, or (a problem of datasets) each split a
    #: :class:`~descentlab.engine.streaming.StreamedSplit` and its targets None
    x_train: Any
    y_train: Tensor | None
    x_val: Any
    y_val: Tensor | None
    #: the run's display name (:meth:`RunConfig.run_name` with the resolved model)
    run_name: str = ""
    #: the configured input regularizers of a training batch (:func:`input_pipeline`)
    pipeline: Any = None
    #: the optimizer has train and eval modes (:func:`optimizer_modes`)
    has_modes: bool = False
    #: the ``(split, x, y)`` each evaluation measures (:func:`eval_splits` of
    #: ``RunConfig.evaluate_train``)
    measured: tuple[tuple[str, Any, Any], ...] = ()


def announce_batch_norm_caveats(model: nn.Module, optimizer: Any, accumulate: int) -> None:
    """Warn once per process where batch norm makes a run other than it looks, never silently
    different: gradients accumulated over ``accumulate`` micro-batches (each micro-batch is
    normalised with its own statistics and updates the running ones on its own, so the step is
    not that of one batch ``accumulate`` times larger), and an optimizer with train/eval modes
    (Schedule-Free: its evaluation weights, the average, are normalised with running statistics
    gathered at the training iterates, not recomputed at the average as the schedulefree
    package recommends)."""
    name = type(optimizer).__name__
    said_now = [
        (("bn-accumulate", accumulate), accumulate > 1),
        (("bn-modes", name), optimizer_modes(optimizer)),
    ]
    due = [key for key, applies in said_now if applies and not said(key)]
    if not due or not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return
    lines = {
        "bn-accumulate": f"descentlab: accumulate={accumulate} with a batch-norm model "
        f"({type(model).__name__}) is not one batch that many times larger: batch norm "
        "normalises each micro-batch with its own statistics (the gradients differ from the "
        "larger batch's by about 1e-2 relative); use a larger --batch-size for the exact "
        "larger batch",
        "bn-modes": f"descentlab: {name} evaluates at its averaged weights, but the model's "
        "batch-norm running statistics were gathered at the training iterates; they are not "
        "recomputed before evaluation (the schedulefree package recommends it), so its "
        "validation and test metrics are those of the averaged weights with the training "
        "statistics",
    }
    for key in due:
        once(key, lines[key[0]], stacklevel=3)


def optimizer_modes(optimizer: Any) -> bool:
    """Whether ``optimizer`` has ``train()`` and ``eval()`` modes (Schedule-Free optimizers:
    their evaluation weights differ from the ones gradients are taken at).

    The engine calls ``train()`` before training and around every evaluation ``eval()``, then
    ``train()`` again; a finished run's optimizer (and model) stay in eval mode.

    Example:
        >>> optimizer_modes(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1))
        False
    """
    return callable(getattr(optimizer, "train", None)) and callable(
        getattr(optimizer, "eval", None)
    )


def make_optimizer(spec: Any, params: Any, hyper: Mapping[str, Any]) -> Any:
    """The optimizer a config names: a registry name (its hyperparameters checked against the
    factory's signature), an update rule, or a factory ``f(params, **hyper)``; over
    ``optim.SETTINGS_ONLY`` a name's or a rule's settings checked, nothing built."""
    if isinstance(spec, str):
        factory = optim.get(spec)
        accepted = list(optim.factory_keywords(factory, hyper))  # a wrapper's base's too
        unknown = sorted(set(hyper) - set(accepted))
        if unknown:
            raise ValueError(
                f"unknown hyperparameter(s) {unknown} for optimizer {spec!r}; valid: "
                + ", ".join(accepted)
            )
        return factory(params, **hyper)
    if isinstance(spec, optim.Rule):
        return optim.Optimizer(params, spec, **hyper)
    return spec(params, **hyper)


def make_schedulers(
    optimizer: Any, spec: Mapping[str, Any], total_steps: int
) -> tuple[Any, Any, str | None]:
    """(per-step Scheduler, per-evaluation loss-rule Scheduler, the metric the rules watch)."""
    if not spec:
        return None, None, None
    per_step, per_eval, monitor = split_schedules(spec, total_steps)
    return (
        schedules.Scheduler(optimizer, per_step) if per_step else None,
        schedules.Scheduler(optimizer, per_eval) if per_eval else None,
        monitor,
    )


def split_schedules(
    spec: Mapping[str, Any], total_steps: int
) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """``spec`` built: (per-step schedules, loss-driven rules, the one metric the rules watch)."""
    per_step: dict[str, Any] = {}
    per_eval: dict[str, Any] = {}
    monitors: set[str] = set()
    for key, value in spec.items():
        built, monitor = build_schedule(value, total_steps=total_steps)
        if monitor is None:
            per_step[key] = built
        else:
            per_eval[key] = built
            monitors.add(monitor)
    if len(monitors) > 1:
        raise ValueError(f"loss-driven schedules must watch one metric, got {sorted(monitors)}")
    return per_step, per_eval, (monitors.pop() if monitors else None)


def make_early_stopping(spec: Mapping[str, Any] | None) -> Any:
    if spec is None:
        return None
    monitor = spec.get("monitor", "val/loss")
    return regularize.EarlyStopping(
        patience=int(spec.get("patience", 10)),
        min_delta=float(spec.get("min_delta", 0.0)),
        mode="max" if monitor.endswith("accuracy") else "min",
        restore_best=bool(spec.get("restore_best", True)),
    )


def total_steps(config: RunConfig, n_train: int | None) -> int:
    if config.steps is not None:
        return int(config.steps)
    if n_train is None:
        raise ValueError(
            "the training data are a stream without a length: give steps (a number of "
            "optimizer steps) instead of epochs"
        )
    if config.batch_size is None:
        per_epoch = 1
    elif config.drop_last:
        per_epoch = n_train // config.batch_size
    else:
        per_epoch = math.ceil(n_train / config.batch_size)
    # with accumulation an epoch is its micro-batches: accumulate of them per step
    return int(config.epochs) * math.ceil(per_epoch / config.accumulate)


def _load_checked(config: RunConfig, data: Any) -> tuple[Any, bool, int]:
    """The run's data (``data``, or the problem loaded by name), checked against the config;
    returns ``(splits, classification, total steps)``."""
    splits = data
    if splits is None and is_problem_ref(config.problem):
        # a built-in problem object (charlm) or a problem function named by the config
        splits = load_problem(config.problem.split("#", 1)[0], **config.problem_options).splits(
            seed=config.split_seed, val_fraction=config.val_fraction
        )
    if splits is None:
        splits = datasets.load(
            config.problem,
            seed=config.split_seed,
            val_fraction=config.val_fraction,
            **config.problem_options,
        )
    classification = splits.task == "classification"
    splits.check_labels()  # (a stream's are checked batch by batch as it is read)
    n_train = splits.n_train
    check_batch_size(config.batch_size, n_train)
    total = total_steps(config, n_train)
    if total < 1:
        raise ValueError(
            f"drop_last with batch_size {config.batch_size} leaves no step per epoch "
            f"({n_train} training examples)"
        )
    if not classification:
        for key in ("label_smoothing", "mixup_alpha", "cutmix_alpha"):
            if getattr(config, key) > 0:
                raise ValueError(
                    f"{key} needs a classification problem, got {getattr(config, key)} for "
                    f"{config.problem!r} ({splits.task})"
                )
    if config.augment is not False and len(splits.input_shape) not in (1, 2, 3):
        raise ValueError(
            f"augment needs 1-D signals or images, got inputs of shape {tuple(splits.input_shape)}"
        )
    return splits, classification, total


def _model_and_losses(config: RunConfig, splits: Any) -> tuple[nn.Module, str, str, Any, Any]:
    """``(model, model name, loss name, training loss, evaluation loss)``; the model is
    initialised from the run's seed."""
    model_spec = config.model or splits.default_model
    loss_spec = config.loss or splits.default_loss
    # A problem of your own (descentlab.problems.problem) brings a model factory and may
    # bring a loss function instead of names.
    model_name = model_spec if isinstance(model_spec, str) else repr(model_spec)
    loss_name = loss_spec if isinstance(loss_spec, str) else repr(loss_spec)
    model_options = dict(config.model_options)
    if model_name == "quadratic_deep" and getattr(splits, "hessian", None) is not None:
        model_options.setdefault("hessian", splits.hessian)
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    if isinstance(model_spec, str):
        model = models.build(
            model_name, input_shape=splits.input_shape, n_outputs=splits.n_outputs, **model_options
        ).to(device)
    else:
        model = build_model(model_spec, f"model {model_name!r}", **model_options).to(device)
    if isinstance(loss_spec, str):
        eval_loss = losses.get(loss_name, **config.loss_options)
    elif config.loss_options or config.label_smoothing > 0:
        raise ValueError(
            f"loss {loss_name!r} is a function: loss_options and label_smoothing do not apply"
        )
    else:
        eval_loss = loss_spec
    train_loss = eval_loss
    if config.label_smoothing > 0:
        train_loss = losses.get(
            loss_name, **{**config.loss_options, "label_smoothing": config.label_smoothing}
        )
    return model, model_name, loss_name, train_loss, eval_loss


def check_batch_size(batch_size: Any, n_train: int | None) -> None:
    """A batch no larger than the training examples (``n_train``; None: a stream's, unknown)."""
    if isinstance(batch_size, int) and n_train is not None and batch_size > n_train:
        raise ValueError(
            f"batch_size must be <= the number of training examples ({n_train}), got {batch_size}"
        )


def build(
    config: RunConfig, data: Any = None, *, shard: Callable[[nn.Module], None] | None = None
) -> Built:
    """Load, check and build everything one run needs; raises before any training state
    exists. ``config`` was checked where it entered
    (:func:`~descentlab.engine.config.checked_config`): it is not again.
    ``shard``: called with the model once it is built and probed, before the optimizer is
    made from its parameters (a sharded run's ``fully_shard``,
    :mod:`descentlab.engine.launch`)."""
    splits, classification, total = _load_checked(config, data)
    model, model_name, loss_name, train_loss, eval_loss = _model_and_losses(config, splits)
    device = torch.device(config.device)
    if shard is not None:
        _probe_smallest(config, splits, model, train_loss, (model_name, loss_name), device)
        shard(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(config.optimizer, params, config.hyper)
    # int8 state that stores none of this model's tensors: said once (it is float32's step)
    announce_unused(type(optimizer).__name__, getattr(optimizer, "state_dtype", None), params)
    announce_batch_norm_caveats(model, optimizer, config.accumulate)
    scheduler, rule_scheduler, rule_monitor = make_schedulers(optimizer, config.schedule, total)
    if shard is None:
        x_train, y_train, x_val, y_val = _probe_smallest(
            config, splits, model, train_loss, (model_name, loss_name), device
        )
    else:
        x_train, y_train, x_val, y_val = train_val_data(splits, device)
    built = Built(
        splits=splits,
        classification=classification,
        model_name=model_name,
        loss_name=loss_name,
        model=model,
        train_loss=train_loss,
        eval_loss=eval_loss,
        optimizer=optimizer,
        scheduler=scheduler,
        rule_scheduler=rule_scheduler,
        rule_monitor=rule_monitor,
        scheduled=tuple(config.schedule),
        early=make_early_stopping(config.early_stopping),
        total_steps=total,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        run_name=display_name(config.name, config.problem, model_name, config.optimizer),
        pipeline=input_pipeline(config, 1 + len(splits.input_shape)),
        has_modes=optimizer_modes(optimizer),
    )
    built.measured = eval_splits(built, config.evaluate_train)
    return built


def smallest_batch(config: RunConfig, n_train: int | None) -> int | None:
    """The fewest examples a step of ``config`` trains on (None: a stream of unknown
    length, full batch): the batch size, or the last short batch of an epoch."""
    smallest = n_train if config.batch_size is None else config.batch_size
    if (
        config.batch_size is not None
        and n_train is not None
        and not config.drop_last
        and n_train % config.batch_size
    ):
        smallest = n_train % config.batch_size
    return smallest


def _probe_smallest(
    config: RunConfig,
    splits: Any,
    model: nn.Module,
    train_loss: Any,
    names: tuple[str, str],
    device: torch.device,
) -> tuple[Any, Any, Any, Any]:
    """The data on ``device`` (:func:`train_val_data`), the model probed on the smallest batch
    the run will see (:func:`_probe`)."""
    x_train, y_train, x_val, y_val = train_val_data(splits, device)
    x_probe, y_probe = as_split(x_train, y_train).head(smallest_batch(config, splits.n_train))
    _probe(model, train_loss, names, x_probe, y_probe)
    return x_train, y_train, x_val, y_val


@torch.no_grad()
def _probe(model: nn.Module, loss_fn: Any, names: tuple[str, str], x: Tensor, y: Tensor) -> None:
    """A training-mode forward pass and loss on the smallest batch the run will see, on a copy
    of the model with the random state saved: model/loss mismatches and models that cannot
    train on such a batch (batch norm on one example) fail here, before training."""
    model_name, loss_name = names
    probe = copy.deepcopy(model).train()
    with torch.random.fork_rng(devices=[]):
        try:
            out = probe(x)
        except (RuntimeError, ValueError, IndexError) as exc:
            if raised_by_user(exc):  # the user's own error, as raised
                raise
            raise ValueError(
                f"model {model_name!r} cannot train on a batch of inputs of shape "
                f"{tuple(x.shape)}: {exc}"
            ) from exc
        try:
            value = loss_fn(out, y)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ValueError(
                f"loss {loss_name!r} cannot compare the model's outputs {tuple(out.shape)} with "
                f"the targets {tuple(y.shape)}: "
                + (str(exc).strip().splitlines() or [""])[0]
                + losses.mismatch_hint(out, y)
            ) from exc
    if value.dim() != 0:
        raise ValueError(f"loss {loss_name!r} must reduce to a scalar, got {tuple(value.shape)}")


def hyper_value(group: Mapping[str, Any], key: str) -> Any:
    """The value of hyperparameter ``key`` (``"lr"``, or ``"betas[1]"`` for one entry of a
    tuple) in an optimizer's param group."""
    name, index = parse_key(key)
    value = group.get(name)
    if index is not None and isinstance(value, list | tuple):
        value = value[index]
    return value


def _augmenter(config: RunConfig, x_dim: int) -> Callable[[Tensor, torch.Generator], Tensor] | None:
    if config.augment is False:
        return None
    opts = {} if config.augment is True else dict(config.augment)
    if x_dim == 4:
        m = int(opts.get("max_translate", 1))
        return lambda x, g: regularize.augment_image(x, m, g)
    shift = int(opts.get("max_shift", 3))
    scale = tuple(opts.get("scale_range", (0.9, 1.1)))
    return lambda x, g: regularize.augment_1d(x, shift, scale, g)


#: ``(x, y, generator) -> (x', y_a, y_b or None, lam or None)``
InputPipeline = Callable[
    [Tensor, Tensor, torch.Generator], tuple[Tensor, Tensor, Tensor | None, float | None]
]


def input_pipeline(config: RunConfig, x_dim: int) -> InputPipeline | None:
    """The configured input regularizers of a training batch, in the order a run draws them
    from its augmentation generator: augmentation, input noise, then mixup or cutmix (which
    returns the second targets and the mixing weight). None when there are none."""
    if not (config.augment or config.input_noise > 0 or config.mixup_alpha or config.cutmix_alpha):
        return None
    augment = _augmenter(config, x_dim)
    noise = config.input_noise
    mix, alpha = None, 0.0
    if config.mixup_alpha > 0:
        mix, alpha = regularize.mixup, config.mixup_alpha
    elif config.cutmix_alpha > 0:
        mix, alpha = regularize.cutmix, config.cutmix_alpha

    def pipeline(
        xb: Tensor, yb: Tensor, gen: torch.Generator
    ) -> tuple[Tensor, Tensor, Tensor | None, float | None]:
        if augment is not None:
            xb = augment(xb, gen)
        if noise > 0:
            xb = regularize.add_input_noise(xb, noise, gen)
        if mix is None:
            return xb, yb, None, None
        return mix(xb, yb, alpha, gen)

    return pipeline


def split_metrics(b: Built, train: bool = True) -> dict[str, float]:
    """``train/*`` and ``val/*`` metrics of the run's model
    (:func:`~descentlab.engine.evaluation.evaluate`); ``train`` False: ``val/*`` only
    (``RunConfig.evaluate_train``)."""
    return evaluation.metrics_of(b.model, b.eval_loss, b.classification, eval_splits(b, train))


def eval_splits(b: Built, train: bool = True) -> tuple[tuple[str, Any, Any], ...]:
    """The ``(split, x, y)`` an evaluation measures: training and validation splits, or
    (``train`` False, ``RunConfig.evaluate_train``) the validation split only."""
    val = ("val", b.x_val, b.y_val)
    return (("train", b.x_train, b.y_train), val) if train else (val,)


def test_metrics(b: Built) -> dict[str, float]:
    """The one evaluation on the test split (unsealed for it, sealed again afterwards)."""
    device = b.x_train.device
    x, y = test_data(b.splits, device)
    return evaluation.evaluate(b.model, x, y, b.eval_loss, classification=b.classification)
