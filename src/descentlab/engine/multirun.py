r"""Many training runs at once: vectorized with ``torch.func``, or spread over processes.

:func:`train_many` trains a list of :class:`~descentlab.engine.config.RunConfig` (or one base
config and a list of overrides) and returns one :class:`~descentlab.engine.run.RunResult` per
config, in order, exactly as :func:`~descentlab.engine.run.train` would have -- same metrics,
same statuses, same store records. Three ways to get there:

``"vmap"``
    K runs of one architecture (different seeds, learning rates or other hyperparameters, data
    orders) advance together in one pass. Their parameters are stacked along a new leading
    dimension (``torch.func.stack_module_state``: a weight of shape ``(o, i)`` becomes
    ``(K, o, i)``), the model is applied with ``torch.func.functional_call`` under
    ``torch.func.vmap``, and descentlab's own optimizer steps the stacked tensors, with every
    hyperparameter that differs between runs given as a length-K tensor that the update rules
    broadcast along the leading dimension (:mod:`descentlab.optim.base`). Because the update
    rules are elementwise and the K losses are independent,

    .. math::
        \nabla_{\theta_k} \sum_{j=1}^K L_j(\theta_j) = \nabla_{\theta_k} L_k(\theta_k),

    so one backward pass of the summed loss gives every run its own gradient, and the K runs
    equal K separate runs up to floating-point rounding (tested in float64).
``"processes"``
    Each config is trained by :func:`~descentlab.engine.run.train` in a pool of spawned worker
    processes with one thread each (:mod:`descentlab.engine.procpool`); runs are bit-identical
    to sequential ones.
``"sequential"``
    :func:`~descentlab.engine.run.train` in a loop, in this process.

``"auto"`` (the default) groups the configs that can share one vectorized pass and picks:

- **vmap** for groups of >= 2 runs of the fully connected models and the MNIST-1D CNN
  (:data:`VMAP_MODELS`: ``linear``, ``logistic``, ``mlp``, ``digits_mlp``,
  ``quadratic_deep``, ``cnn``). On a CPU their step is dominated by per-operation costs
  (Python, dispatch, autograd, the optimizer's per-tensor work), which vmap pays once for K
  runs, while the arithmetic batches into ``bmm`` at about the speed of K separate products.
  Each step's ``vmap(grad_and_value(loss))`` is traced once per batch shape into a plain graph
  of ATen operations (``make_fx``), which removes most of the remaining per-step Python. The
  batched products are large enough for a second intra-op thread to pay, so a vectorized group
  runs at torch's thread setting, lowered to the cores idle when it starts (and restored
  after). ``Conv1d`` layers are computed as products over their windows
  (:mod:`descentlab.engine.vconv`): left to vmap, a ``Conv1d`` whose weight differs per run
  becomes one grouped convolution (``groups=K``) that takes more arithmetic time than K
  separate convolutions. Evaluation runs each run's own model (one forward pass per run, the
  single run's :func:`~descentlab.engine.run.evaluate`): evaluation batches are large, so
  there is no per-operation cost to share. Measured on the MNIST-1D CNN (Adam, batch 128, one
  thread, a 2-core machine under a load average of 8-12): one vectorized step costs 1.2-1.5 ms
  per run at K=15 and 1.4-1.5 ms at K=5 against 2.1-2.5 ms for a run alone (1.5x at K=5, 1.8x
  at K=15); the single run's step is nearly all MKL-DNN convolution arithmetic, so what vmap
  gains is the product form's faster matrix products, not per-operation costs.
- for ``digits_cnn``: **processes** when ``workers`` is given or at least two cores are idle
  (>= 1.5 idle cores in a 0.2 s sample of ``/proc/stat``), else **vmap** (its ``Conv2d``
  layers stay grouped convolutions, which on 8x8 images are faster than the product form).
  Processes pay only on idle cores: Linux shares CPU time fairly between sessions
  (autogroups), so on a busy machine two workers share one session's time -- measured
  0.7-0.9x against the loop, spawn included -- while a worker alone trains as fast as the
  parent.
- for ``gru`` (``nn.GRU`` has no vmap batching rule): processes under the same condition, else
  one after another.
- **sequential** for what is left (one run, no idle cores).

Any group that turns out not to vectorize at set-up (see below) falls back to processes (or to
sequential runs, under the same condition).

What the vectorized mode supports. Per run: ``seed`` (model initialisation, data order,
augmentation), every numeric hyperparameter (``lr``, ``momentum``, ``betas``,
``weight_decay``...), the optimizer itself (runs of several optimizers share the forward and
backward pass; the runs of each optimizer step together, with one optimizer over their slice
of the stacked parameters), ``early_stopping``, ``evaluate_test`` and ``name``. Shared by the
group (the grouping key): problem, split, model, loss, schedule specs, batch size,
steps/epochs, evaluation interval and regularizers. Named optimizers and composed update
rules; per-step schedules (one :class:`~descentlab.schedules.Scheduler` writes
each run's value into the batched tensor, relative schedules from each run's own base);
loss-driven schedules (``reduce_on_plateau``, ``bold_driver``) as K independent copies, each
watching its own run's metric; evaluation at intervals (train/validation loss and accuracy per
run); per-run divergence (a run whose loss becomes non-finite is
marked ``diverged`` and frozen -- its weights, buffers and metrics are kept as they were at the
failing step, exactly where a single run stops, and its gradients are zeroed from then on --
while the others continue); early stopping per run (frozen the same way);
test evaluation once, at the end; label smoothing, input noise, augmentation, mixup, cutmix and
weight noise (drawn per run from each run's own generator, exactly as a single run draws them);
dropout (``randomness="different"``: each run draws its own masks, so runs with dropout are
statistically, not bitwise, equal to single runs) and batch norm (running statistics are
stacked buffers, updated in place per run).

Not vectorized (``VectorizeError``, and ``"auto"`` uses processes instead): models without
vmap batching rules (``gru``), optimizer factories such as ``torch.optim.Adam`` (they cannot
take length-K hyperparameters), rules that couple the runs (``clip_by_global_norm`` and
``non_finite_guard`` reduce over the whole stacked tensor; lookahead Nesterov), hyperparameters
that differ between runs but are not numbers, hyperparameters that the chain cannot batch
(``NAdam``/``RAdam`` betas), and checkpoints (``checkpoint_every``: vectorized runs keep no
checkpoint; a run recorded as failed can still be resumed, from step 0, by
:func:`~descentlab.engine.run.resume`).

Example:
    >>> from descentlab.engine.config import RunConfig
    >>> base = RunConfig(problem="moons", problem_options={"n_samples": 200}, model="mlp",
    ...                  model_options={"hidden": 16}, optimizer="sgd", batch_size=32,
    ...                  steps=100, evaluate_test=False)
    >>> runs = train_many(base, overrides=[{"seed": s, "hyper": {"lr": lr}}
    ...                                   for s in (0, 1) for lr in (0.1, 0.3)], progress=False)
    >>> [r.status for r in runs], [r.config.hyper["lr"] for r in runs]
    (['completed', 'completed', 'completed', 'completed'], [0.1, 0.3, 0.1, 0.3])

References:
    PyTorch, "Model ensembling" (``torch.func.stack_module_state`` + ``vmap``),
    https://pytorch.org/tutorials/intermediate/ensembling.html .
    Bradbury et al., JAX (``vmap`` over per-example and per-model batches), 2018.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

from descentlab.engine.common import (
    Built,
    Row,
    RunResult,
    build,
    create_record,
    evaluate,
    hyper_value,
    input_pipeline,
    make_optimizer,
    normalize,
    progress_bar,
    series,
    stream_seed,
    summarize,
)
from descentlab.engine.config import RunConfig, build_schedule
from descentlab.engine.procpool import default_workers, train_in_processes
from descentlab.engine.run import train
from descentlab.engine.vconv import vmap_friendly
from descentlab.store import Store

__all__ = [
    "MODES",
    "VMAP_MODELS",
    "VectorizeError",
    "expand_configs",
    "group_key",
    "plan",
    "train_many",
    "vectorize_reason",
]

#: Values of ``train_many(mode=...)``.
MODES: tuple[str, ...] = ("auto", "vmap", "processes", "sequential")

#: Models that ``mode="auto"`` always vectorizes (vmap pays; see the module notes).
VMAP_MODELS: tuple[str, ...] = (
    "linear",
    "logistic",
    "mlp",
    "digits_mlp",
    "quadratic_deep",
    "cnn",
)

# Fields that every run of one vectorized group must share (the rest may differ per run:
# optimizer, seed, hyper, early_stopping, evaluate_test, name; checkpoint_every must be None).
_SHARED_FIELDS: tuple[str, ...] = (
    "problem",
    "problem_options",
    "split_seed",
    "val_fraction",
    "model",
    "model_options",
    "loss",
    "loss_options",
    "label_smoothing",
    "schedule",
    "batch_size",
    "drop_last",
    "steps",
    "epochs",
    "eval_every",
    "mixup_alpha",
    "cutmix_alpha",
    "input_noise",
    "augment",
    "weight_noise",
    "device",
)
#: Models without vmap batching rules: ``"auto"`` does not try to vectorize them.
_NO_VMAP_MODELS: tuple[str, ...] = ("gru",)
# With workers=None, "auto" uses processes only when this many cores are idle now: on a busy
# machine extra processes only share the same CPU time.
_MIN_IDLE_CORES = 1.5
# Dict-valued fields that an override merges into (other fields are replaced).
_MERGED_FIELDS: tuple[str, ...] = (
    "problem_options",
    "model_options",
    "loss_options",
    "hyper",
    "schedule",
)
# Trace each step's vmap(grad) into a plain graph of ATen operations (see _traced_fn); tests
# switch it off to check the eager path, which computes the same numbers.
_TRACE = True


class VectorizeError(ValueError):
    """The runs cannot be trained in one vectorized pass (the message says why)."""


# ------------------------------------------------------------------------------------------
# configs


def expand_configs(
    base: RunConfig | Mapping[str, Any], overrides: Sequence[Mapping[str, Any]]
) -> list[RunConfig]:
    """One config per override: ``base`` with the override's fields changed.

    Dict-valued fields (``hyper``, ``schedule``, ``problem_options``, ``model_options``,
    ``loss_options``) are *merged* into the base's (``{"hyper": {"lr": 0.1}}`` keeps the base's
    other hyperparameters); every other field is replaced.

    Args:
        base: the common configuration.
        overrides: one mapping of field -> value per run.

    Returns:
        The validated configs, in the order of ``overrides``.

    Raises:
        ValueError: an override names an unknown field (the message lists the valid ones) or
            makes an invalid config.

    Example:
        >>> base = RunConfig(problem="moons", optimizer="adam", hyper={"lr": 1e-2, "eps": 1e-6},
        ...                  steps=10)
        >>> cfgs = expand_configs(base, [{"seed": 1}, {"hyper": {"lr": 1e-3}}])
        >>> [(c.seed, c.hyper) for c in cfgs]
        [(1, {'lr': 0.01, 'eps': 1e-06}), (0, {'lr': 0.001, 'eps': 1e-06})]
    """
    base = base if isinstance(base, RunConfig) else _as_config(base, "base")
    if isinstance(overrides, Mapping | str) or not isinstance(overrides, Sequence):
        raise ValueError(f"overrides must be a list of dicts, got {overrides!r}")
    names = [f.name for f in dataclasses.fields(RunConfig)]
    out = []
    for i, ov in enumerate(overrides):
        if not isinstance(ov, Mapping):
            raise ValueError(f"overrides[{i}] must be a dict of RunConfig fields, got {ov!r}")
        unknown = sorted(set(ov) - set(names))
        if unknown:
            raise ValueError(
                f"overrides[{i}] has unknown RunConfig field(s) {unknown}; valid fields: {names}"
            )
        changes = {}
        for key, value in ov.items():
            if key in _MERGED_FIELDS and isinstance(value, Mapping):
                changes[key] = {**getattr(base, key), **value}
            else:
                changes[key] = value
        cfg = base.replace(**changes)
        try:
            cfg.validate()
        except ValueError as exc:
            raise ValueError(f"overrides[{i}]: {exc}") from None
        out.append(cfg)
    return out


def _as_config(config: Any, where: str) -> RunConfig:
    if isinstance(config, RunConfig):
        return config
    if not isinstance(config, Mapping):
        raise ValueError(f"{where} must be a RunConfig or a dict, got {type(config).__name__}")
    return RunConfig.from_dict(config)


def _collect(configs: Any, overrides: Sequence[Mapping[str, Any]] | None) -> list[RunConfig]:
    if overrides is not None:
        if isinstance(configs, Sequence) and not isinstance(configs, str | Mapping):
            raise ValueError("overrides need one base config, got a list of configs")
        configs = expand_configs(configs, overrides)
    elif isinstance(configs, RunConfig | Mapping):
        configs = [configs]
    if isinstance(configs, str) or not isinstance(configs, Sequence):
        raise ValueError(f"configs must be a list of RunConfig (or dicts), got {configs!r}")
    out = []
    for i, cfg in enumerate(configs):
        try:
            out.append(normalize(_as_config(cfg, f"configs[{i}]")))
        except ValueError as exc:
            raise ValueError(f"configs[{i}]: {exc}") from None
    return out


def _check_names(cfg: RunConfig, i: int) -> None:
    """Registry names, checked for every config before any run starts."""
    from descentlab import losses, optim
    from descentlab.problems import data as datasets
    from descentlab.problems import models

    where = f"configs[{i}]"
    if cfg.problem not in datasets.DATASETS:
        raise KeyError(
            f"{where}: unknown problem {cfg.problem!r}; valid names: {', '.join(datasets.DATASETS)}"
        )
    if cfg.model is not None and cfg.model not in models.MODELS:
        raise KeyError(
            f"{where}: unknown model {cfg.model!r}; valid names: {', '.join(models.MODELS)}"
        )
    if cfg.loss is not None and cfg.loss not in losses.LOSSES:
        raise KeyError(
            f"{where}: unknown loss {cfg.loss!r}; valid names: {', '.join(losses.LOSSES)}"
        )
    if isinstance(cfg.optimizer, str):
        try:
            optim.get(cfg.optimizer)
        except KeyError as exc:
            raise KeyError(f"{where}: {exc.args[0]}") from None
    for key, spec in cfg.schedule.items():
        try:
            build_schedule(spec, total_steps=1)
        except KeyError as exc:
            raise KeyError(f"{where}: schedule {key!r}: {exc.args[0]}") from None
        except ValueError:
            pass  # arguments are checked against the run's real length when it is built


def _json_key(value: Any) -> str:
    # Objects that JSON cannot hold (rules, schedules, factories) are keyed by identity.
    def default(obj: Any) -> str:
        return f"<object {id(obj)}>"

    return json.dumps(value, sort_keys=True, default=default)


def group_key(cfg: RunConfig) -> str:
    """Configs with equal keys can train in one vectorized pass (they share every field of
    ``_SHARED_FIELDS``); they may differ in optimizer, seed, hyperparameters and name."""
    return _json_key({f: getattr(cfg, f) for f in _SHARED_FIELDS})


def _data_key(cfg: RunConfig) -> str:
    return _json_key([cfg.problem, cfg.problem_options, cfg.split_seed, cfg.val_fraction])


def vectorize_reason(cfg: RunConfig) -> str | None:
    """Why a config cannot be vectorized, from its fields alone (None: maybe it can: the
    model and the update rules are checked when the group is set up)."""
    from descentlab import optim

    if cfg.checkpoint_every is not None:
        return (
            f"checkpoint_every={cfg.checkpoint_every}: vectorized runs keep no checkpoints "
            "(checkpoints and resume are per run)"
        )
    if not isinstance(cfg.optimizer, str | optim.Rule):
        return (
            f"optimizer {cfg.optimizer!r} is a factory; only descentlab's named optimizers and "
            "update rules take per-run (length-K) hyperparameters"
        )
    return None


# ------------------------------------------------------------------------------------------
# planning


class _Data:
    """Datasets loaded once and shared by every run that names them."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self._cache: dict[str, Any] = {}

    def get(self, cfg: RunConfig) -> Any:
        if self.data is not None:
            return self.data
        key = _data_key(cfg)
        if key not in self._cache:
            from descentlab.problems import data as datasets

            self._cache[key] = datasets.load(
                cfg.problem,
                seed=cfg.split_seed,
                val_fraction=cfg.val_fraction,
                **cfg.problem_options,
            )
        return self._cache[key]

    def model_name(self, cfg: RunConfig) -> str:
        return cfg.model or self.get(cfg).default_model


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all CPUs since boot, from ``/proc/stat``; None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; user..steal


def _idle_cores(window: float = 0.2) -> float:
    """Cores nobody is using now, measured over ``window`` seconds from ``/proc/stat``.

    The 1-minute load average is the fallback only: it lags by a minute and counts this
    process's own work, so right after one run it would call an idle machine busy.
    """
    cores = default_workers(1 << 16)
    first = _cpu_times()
    if first is not None:
        time.sleep(window)
        second = _cpu_times()
        if second is not None and second[1] > first[1]:
            idle = (second[0] - first[0]) / (second[1] - first[1])
            return min(float(cores), idle * (os.cpu_count() or cores))
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform
        return float(cores)
    return max(0.0, cores - load)


def _use_processes(workers: int, explicit: bool) -> bool:
    """Whether worker processes pay: >= 2 workers, asked for, or >= 2 idle cores to run on."""
    return workers >= 2 and (explicit or _idle_cores() >= _MIN_IDLE_CORES)


def _plan(
    configs: Sequence[RunConfig], mode: str, workers: int, data: _Data, procs: bool
) -> list[tuple[str, list[int]]]:
    n = len(configs)
    if mode == "sequential":
        return [("sequential", list(range(n)))] if n else []
    if mode == "processes":
        return [("processes", list(range(n)))] if n else []
    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(configs):
        groups.setdefault(group_key(cfg), []).append(i)
    if mode == "vmap":
        return [("vmap", idx) for idx in groups.values()]
    batches: list[tuple[str, list[int]]] = []
    rest: list[int] = []
    for idx in groups.values():
        name = data.model_name(configs[idx[0]])
        # VMAP_MODELS always; other vmap-able models when processes would not run in parallel.
        wanted = name in VMAP_MODELS or (not procs and name not in _NO_VMAP_MODELS)
        able = [i for i in idx if vectorize_reason(configs[i]) is None]
        if len(able) >= 2 and wanted:
            batches.append(("vmap", able))
            rest.extend(i for i in idx if i not in able)
        else:
            rest.extend(idx)
    rest.sort()
    if rest:
        batches.append(("processes" if len(rest) >= 2 and procs else "sequential", rest))
    return batches


def plan(
    configs: Any,
    *,
    overrides: Sequence[Mapping[str, Any]] | None = None,
    mode: str = "auto",
    workers: int | None = None,
    data: Any = None,
) -> list[tuple[str, list[int]]]:
    """How :func:`train_many` will split ``configs``: ``[(mode, [config indices]), ...]``.

    A vectorized group may still fall back to processes when its set-up finds something vmap
    cannot do (an operator without a batching rule, a hyperparameter the rules cannot batch).

    Args:
        configs, overrides, mode, workers, data: as for :func:`train_many`.

    Returns:
        The batches in execution order (vectorized groups first).

    Example:
        >>> base = RunConfig(problem="moons", model="mlp", steps=10)
        >>> plan(base, overrides=[{"seed": s} for s in range(3)], workers=2)
        [('vmap', [0, 1, 2])]
        >>> plan(base.replace(model="linear"), overrides=[{"seed": 0}], workers=2)
        [('sequential', [0])]
    """
    _check_mode(mode)
    cfgs = _collect(configs, overrides)
    w = default_workers(len(cfgs)) if workers is None else _check_workers(workers)
    return _plan(cfgs, mode, w, _Data(data), _use_processes(w, workers is not None))


def _check_mode(mode: Any) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")


def _check_workers(workers: Any) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    return workers


# ------------------------------------------------------------------------------------------
# the public entry point


def train_many(
    configs: Any,
    store: Store | None = None,
    *,
    overrides: Sequence[Mapping[str, Any]] | None = None,
    mode: str = "auto",
    workers: int | None = None,
    progress: bool | None = None,
    data: Any = None,
) -> list[RunResult]:
    """Train many runs -- vectorized, in processes or one after another -- and return one
    :class:`~descentlab.engine.run.RunResult` per config, in order.

    Args:
        configs: a list of :class:`RunConfig` (or dicts of their fields); or one base config
            with ``overrides``.
        store: where to record every run (as :func:`~descentlab.engine.run.train` records one).
        overrides: one dict of changed fields per run, applied to the base config ``configs``
            (see :func:`expand_configs`).
        mode: ``"auto"``, ``"vmap"``, ``"processes"`` or ``"sequential"`` (see the module
            notes). ``"vmap"`` raises :class:`VectorizeError` where vectorizing is impossible.
        workers: worker processes for the process mode (default: one per core, at most one per
            run). With ``mode="auto"``, giving it asks for processes where the module notes
            say they may pay; left at None, processes are used only when two cores are idle.
        progress: show progress bars; None shows them when stderr is a terminal.
        data: a ``descentlab.problems.data.Splits`` that every run trains on instead of loading
            its problem.

    Returns:
        The results, ``results[i]`` for ``configs[i]``. Vectorized runs report the wall time of
        their whole group (``wall_time``, ``progress/wall_time``), since they ran together.

    Raises:
        KeyError: an unknown problem, model, loss, optimizer or schedule name in any config
            (lists the valid ones); raised before any run starts.
        ValueError: a bad config, ``mode`` or ``workers``; raised before any run starts.
        VectorizeError: ``mode="vmap"`` and some group cannot be vectorized.

    Example:
        >>> base = RunConfig(problem="moons", problem_options={"n_samples": 200}, model="mlp",
        ...                  model_options={"hidden": 8}, optimizer="adam", batch_size=16,
        ...                  steps=50, evaluate_test=False)
        >>> runs = train_many(base, overrides=[{"seed": s} for s in range(4)], mode="vmap",
        ...                   progress=False)
        >>> len(runs), runs[0].summary["steps"]
        (4, 50)
    """
    _check_mode(mode)
    cfgs = _collect(configs, overrides)
    n_workers = default_workers(len(cfgs)) if workers is None else _check_workers(workers)
    for i, cfg in enumerate(cfgs):
        _check_names(cfg, i)
    loaded = _Data(data)
    procs = _use_processes(n_workers, workers is not None)
    batches = _plan(cfgs, mode, n_workers, loaded, procs)
    results: list[RunResult | None] = [None] * len(cfgs)
    fallback: list[int] = []
    for kind, idx in batches:
        group = [cfgs[i] for i in idx]
        if kind == "vmap":
            try:
                out = _train_vectorized(group, loaded.get(group[0]), store, progress)
            except VectorizeError:
                if mode == "vmap":
                    raise
                fallback.extend(idx)
                continue
        elif kind == "processes":
            out = _train_processes(group, store, n_workers, data, progress)
        else:
            out = [train(cfg, store, data=loaded.get(cfg), progress=progress) for cfg in group]
        for i, res in zip(idx, out, strict=True):
            results[i] = res
    if fallback:
        fallback.sort()
        group = [cfgs[i] for i in fallback]
        if len(group) >= 2 and procs:
            out = _train_processes(group, store, n_workers, data, progress)
        else:
            out = [train(cfg, store, data=loaded.get(cfg), progress=progress) for cfg in group]
        for i, res in zip(fallback, out, strict=True):
            results[i] = res
    return [r for r in results if r is not None]


def _train_processes(
    configs: list[RunConfig], store: Store | None, workers: int, data: Any, progress: bool | None
) -> list[RunResult]:
    desc = f"{len(configs)} runs in {min(workers, len(configs))} processes"
    with progress_bar(progress, len(configs), 0, desc) as bar:
        return train_in_processes(configs, store, workers=workers, data=data, bar=bar)


# ------------------------------------------------------------------------------------------
# the vectorized engine


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return (
            isinstance(a, Tensor)
            and isinstance(b, Tensor)
            and a.shape == b.shape
            and bool(torch.equal(a, b))
        )
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _stack_values(key: str, values: list[Any], dtype: torch.dtype) -> Any:
    """One value for the stacked optimizer: shared as is, or a length-K tensor of numbers."""
    first = values[0]
    if all(_same(v, first) for v in values[1:]):
        return first
    if all(_is_number(v) for v in values):
        return torch.tensor([float(v) for v in values], dtype=dtype)
    if all(isinstance(v, tuple | list) and len(v) == len(first) for v in values):
        items = [
            _stack_values(f"{key}[{j}]", [v[j] for v in values], dtype) for j in range(len(first))
        ]
        return tuple(items) if isinstance(first, tuple) else items
    raise VectorizeError(
        f"hyperparameter {key!r} differs between the runs and is not a number: {values!r}"
    )


def _parse_key(key: str) -> tuple[str, int | None]:
    name, _, index = key.partition("[")
    return name, (int(index.rstrip("]")) if index else None)


def _set_entry(group: dict[str, Any], key: str, value: Any) -> None:
    name, index = _parse_key(key)
    if index is None:
        group[name] = value
        return
    items = list(group[name])
    items[index] = value
    group[name] = tuple(items) if isinstance(group[name], tuple) else items


def _per_run(value: Any, k: int) -> list[float | None]:
    """The K per-run numbers of a group entry (None where it is not a number)."""
    if isinstance(value, Tensor):
        if value.ndim == 1 and value.numel() == k:
            return [float(v) for v in value.tolist()]
        if value.numel() == 1:
            return [float(value.item())] * k
        return [None] * k
    if _is_number(value):
        return [float(value)] * k
    return [None] * k


def _optimizer_key(cfg: RunConfig) -> str:
    """Runs with equal keys step with one optimizer over their stacked parameters."""
    return _json_key(cfg.optimizer)


def _optimizer_runs(configs: Sequence[RunConfig]) -> list[int]:
    """Lengths of the consecutive runs of ``configs`` that share an optimizer."""
    lengths: list[int] = []
    previous = None
    for cfg in configs:
        key = _optimizer_key(cfg)
        if lengths and key == previous:
            lengths[-1] += 1
        else:
            lengths.append(1)
        previous = key
    return lengths


class _OptimizerGroup:
    """The runs ``start:stop`` of a vectorized group that share one optimizer (one chain of
    update rules): their hyperparameters stacked into length-``n`` tensors where they differ,
    one optimizer over the slices ``[start:stop]`` of the stacked parameters, its per-step
    schedules, and one copy of each loss-driven schedule per run.

    Runs of other optimizers share the forward and backward pass (the model and the data are
    the same) and step with their own group: each run keeps its own update rule."""

    def __init__(
        self,
        configs: Sequence[RunConfig],
        opts: Sequence[Any],
        start: int,
        stop: int,
        total: int,
        dtype: torch.dtype,
    ) -> None:
        from descentlab import optim

        self.start, self.stop, self.n = start, stop, stop - start
        self.cfg = configs[start]
        opts = list(opts[start:stop])
        if not all(isinstance(o, optim.Optimizer) for o in opts):
            raise VectorizeError(
                f"optimizer {type(opts[0]).__name__} is not a descentlab optimizer"
            )
        chains = [tuple(type(r) for r in o.rule.rules) for o in opts]
        if any(c != chains[0] for c in chains) or any(type(o) is not type(opts[0]) for o in opts):
            raise VectorizeError("the runs' optimizers are different chains of update rules")
        for r in opts[0].rule.rules:
            _check_rule(r)
        self.hyper: dict[str, Any] = {
            key: _stack_values(key, [o.defaults[key] for o in opts], dtype)
            for key in opts[0].defaults
        }
        fixed = getattr(opts[0], "fixed", {})
        if any(getattr(o, "fixed", {}) != fixed for o in opts[1:]):
            raise VectorizeError("the runs' optimizers differ in structural options")
        self.per_step: dict[str, Any] = {}
        self.loss_rules: dict[str, Any] = {}
        monitors = set()
        for key, spec in self.cfg.schedule.items():
            built, monitor = build_schedule(spec, total_steps=total)
            if monitor is None:
                self.per_step[key] = built
            else:
                self.loss_rules[key] = built
                monitors.add(monitor)
        if len(monitors) > 1:
            raise ValueError(f"loss-driven schedules must watch one metric, got {sorted(monitors)}")
        self.rule_monitor = monitors.pop() if monitors else None
        for key in self.loss_rules:
            # n independent decisions need n values from the start.
            value = hyper_value(self.hyper, key)
            if not isinstance(value, Tensor):
                _set_entry(self.hyper, key, torch.full((self.n,), float(value), dtype=dtype))
        self.optimizer: Any = None
        self.scheduler: Any = None
        self.whole = False

    def _slices(self, tensors: list[Tensor]) -> list[Tensor]:
        if self.whole:
            return tensors
        return [t.detach()[self.start : self.stop] for t in tensors]

    def make(self, params: list[Tensor]) -> Any:
        """An optimizer over this group's slices of the stacked ``params``."""
        opt = make_optimizer(self.cfg.optimizer, self._slices(params), self.cfg.hyper)
        group = opt.param_groups[0]
        for key, value in self.hyper.items():
            group[key] = value
        return opt

    def attach(self, params: list[Tensor], k: int) -> None:
        """Build the optimizer (and its schedules) over the stacked parameters of K runs."""
        self.whole = self.n == k
        self.optimizer = self.make(params)
        if self.per_step:
            from descentlab import schedules

            self.scheduler = schedules.Scheduler(self.optimizer, self.per_step)

    def run_rules(self) -> list[dict[str, Any]]:
        """One fresh copy of the loss-driven schedules per run."""
        out = []
        for _ in range(self.n):
            rules = {key: copy.deepcopy(r) for key, r in self.loss_rules.items()}
            for r in rules.values():
                r.check_groups(1)
                r.reset()
            out.append(rules)
        return out

    def step(self, opt: Any, params: list[Tensor], grads: list[Tensor]) -> None:
        """One step of ``opt`` (this group's optimizer or a copy over ``params``) with this
        group's slices of the stacked gradients."""
        for p, g in zip(opt.param_groups[0]["params"], self._slices(grads), strict=True):
            p.grad = g
        opt.step()
        if opt is self.optimizer and self.scheduler is not None:
            self.scheduler.step()

    def values(self, key: str) -> list[float | None]:
        """Each run's current value of hyperparameter ``key``."""
        return _per_run(hyper_value(self.optimizer.param_groups[0], key), self.n)

    def step_rules(self, i: int, rules: Mapping[str, Any], metric: float) -> None:
        """Run ``i``'s loss-driven schedules, after an evaluation that measured ``metric``."""
        group = self.optimizer.param_groups[0]
        for key, rule in rules.items():
            current = hyper_value(group, key)
            new = rule.step(metric, [float(current[i - self.start])])[0]
            with torch.no_grad():
                current[i - self.start] = new


def _check_rule(r: Any) -> None:
    from descentlab import optim

    if not r.elementwise:
        raise VectorizeError(
            f"update rule {r.name!r} reduces over whole tensors, which would mix the runs"
        )
    if type(r).precheck is not optim.Rule.precheck:
        raise VectorizeError(
            f"update rule {r.name!r} checks all gradients at once, which would mix the runs"
        )
    if getattr(r, "lookahead", False):
        raise VectorizeError(f"update rule {r.name!r} needs a lookahead closure")


class _Vectorized:
    """K runs of one architecture in one pass (see the module docstring)."""

    def __init__(self, configs: list[RunConfig], splits: Any) -> None:

        self.configs = configs
        self.k = k = len(configs)
        for cfg in configs:
            reason = vectorize_reason(cfg)
            if reason is not None:
                raise VectorizeError(reason)
        # Each run is built (and checked) exactly as train() builds it: same initial weights.
        self.builts: list[Built] = [build(cfg, splits) for cfg in configs]
        b0 = self.b0 = self.builts[0]
        self.cfg0 = cfg0 = configs[0]
        models = [b.model for b in self.builts]
        structure = [type(b.model) for b in self.builts]
        shapes = [[tuple(p.shape) for p in m.state_dict().values()] for m in models]
        if any(s != structure[0] for s in structure) or any(s != shapes[0] for s in shapes):
            raise VectorizeError("the runs' models differ in architecture")
        param_dtype = next(iter(models[0].parameters())).dtype
        self.total = b0.total_steps
        # -- one optimizer per run of runs that share an update rule (``_OptimizerGroup``) ---
        self.opt_groups: list[_OptimizerGroup] = []
        start = 0
        for key in _optimizer_runs(configs):
            stop = start + key
            self.opt_groups.append(
                _OptimizerGroup(configs, [b.optimizer for b in self.builts], start, stop,
                                self.total, param_dtype)
            )  # fmt: skip
            start = stop
        self.rule_monitor = self.opt_groups[0].rule_monitor
        # -- stacked model ----------------------------------------------------------------
        self.params, self.buffers = stack_module_state(models)
        self.base = vmap_friendly(copy.deepcopy(models[0]).to("meta"))
        self.dtype = param_dtype
        self.classification = b0.classification
        self.train_loss = b0.train_loss
        self.eval_loss = b0.eval_loss
        self.x_train, self.y_train = b0.x_train, b0.y_train
        self.x_val, self.y_val = b0.x_val, b0.y_val
        self.n = int(self.x_train.shape[0])
        seeds = [cfg.seed for cfg in configs]
        self.shared_order = all(s == seeds[0] for s in seeds)
        self.data_gens = [torch.Generator().manual_seed(stream_seed(s, 1)) for s in seeds]
        self.aug_gens = [torch.Generator().manual_seed(stream_seed(s, 2)) for s in seeds]
        self.mix = cfg0.mixup_alpha > 0 or cfg0.cutmix_alpha > 0
        self.pipeline = input_pipeline(cfg0, self.x_train.dim())
        self.noisy_names = [n for n, p in models[0].named_parameters() if p.requires_grad]
        self._vmapped: dict[Any, Any] = {}
        self._trace = True
        self._trial()
        for og in self.opt_groups:
            og.attach(list(self.params.values()), k)
        self.run_rules: list[dict[str, Any]] = [
            rules for og in self.opt_groups for rules in og.run_rules()
        ]

    # -- building blocks ------------------------------------------------------------------

    def _objective(self, kind: str) -> Callable[..., Tensor]:
        """One run's training loss ``(trainable, fixed, buffers, *inputs) -> loss``."""
        base, train_loss = self.base, self.train_loss

        def forward(p: Any, fixed: Any, b: Any, x: Tensor) -> Tensor:
            return functional_call(base, ({**p, **fixed}, b), (x,))

        if kind == "train":

            def f(p: Any, fixed: Any, b: Any, x: Tensor, y: Tensor) -> Tensor:
                return train_loss(forward(p, fixed, b, x), y)

            return f

        # lam L(f(x'), y_a) + (1 - lam) L(f(x'), y_b), with lam and 1 - lam computed in Python
        # as regularize.mixup_loss does (w holds both).
        def g(p: Any, fixed: Any, b: Any, x: Tensor, y: Tensor, y2: Tensor, w: Tensor) -> Tensor:
            out = forward(p, fixed, b, x)
            return w[0] * train_loss(out, y) + w[1] * train_loss(out, y2)

        return g

    def _in_dims(self, kind: str, dim: int | None) -> tuple[int | None, ...]:
        return (0, 0, 0, dim, dim) if kind == "train" else (0, 0, 0, 0, 0, 0, 0)

    def _losses_fn(self, kind: str, dim: int | None) -> Callable[..., Tensor]:
        """The K losses under vmap (eager path: autograd takes the gradients)."""
        key = ("losses", kind, dim)
        fn = self._vmapped.get(key)
        if fn is None:
            fn = vmap(self._objective(kind), in_dims=self._in_dims(kind, dim),
                      randomness="different")  # fmt: skip
            self._vmapped[key] = fn
        return fn

    def _traced_fn(self, kind: str, dim: int | None, inputs: tuple[Tensor, ...]) -> Any:
        """``vmap(grad_and_value(objective))`` traced once per input shape into a graph of
        plain batched ATen operations (``make_fx``), or None where tracing is off or fails.

        Replaying the graph gives the same numbers as the eager path (the same operations in
        the same order, random ones included: dropout draws fresh masks at every call) without
        re-running vmap's and functional_call's Python machinery and the autograd engine at
        every step -- on the MNIST-1D MLP that overhead is about as large as the arithmetic.
        """
        if not (_TRACE and self._trace):
            return None
        key = ("traced", kind, dim, *[(tuple(t.shape), t.dtype) for t in inputs])
        if key in self._vmapped:
            return self._vmapped[key]
        joint = vmap(
            grad_and_value(self._objective(kind)),
            in_dims=self._in_dims(kind, dim),
            randomness="different",
        )
        from torch.fx.experimental.proxy_tensor import make_fx  # heavy: imported on first use

        fn = None
        # Tracing runs the function once on real tensors: on copies, with the RNG put back.
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                p = {n: t.detach().clone() for n, t in self._trainable().items()}
                fixed = {n: t.detach().clone() for n, t in self._fixed().items()}
                b = {n: t.clone() for n, t in self.buffers.items()}
                # distinct copies: the tracer would merge an input passed twice into one
                fn = make_fx(joint)(p, fixed, b, *[t.clone() for t in inputs])
            except Exception:
                fn = None  # the eager path does the same computation
        self._vmapped[key] = fn
        return fn

    def _trainable(self) -> dict[str, Tensor]:
        return {n: p for n, p in self.params.items() if p.requires_grad}

    def _fixed(self) -> dict[str, Tensor]:
        return {n: p for n, p in self.params.items() if not p.requires_grad}

    def _losses_and_grads(
        self,
        kind: str,
        dim: int | None,
        inputs: tuple[Tensor, ...],
        params: dict[str, Tensor],
        buffers: dict[str, Tensor],
        noise: dict[str, Tensor] | None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The K training losses and the gradients of every run (at the noisy weights when
        there is weight noise: ``w + std * eps``, as ``regularize.WeightNoise`` perturbs)."""
        trainable = {n: p for n, p in params.items() if p.requires_grad}
        fixed = {n: p.detach() for n, p in params.items() if not p.requires_grad}
        std = self.cfg0.weight_noise
        traced = self._traced_fn(kind, dim, inputs)
        if traced is not None:
            with torch.no_grad():
                p_in = {n: p.detach() for n, p in trainable.items()}
                if noise is not None:
                    p_in.update({n: torch.add(p_in[n], e, alpha=std) for n, e in noise.items()})
                grads, losses = traced(p_in, fixed, buffers, *inputs)
            return losses, grads
        p_in = dict(trainable)
        if noise is not None:
            p_in.update({n: torch.add(p_in[n], e, alpha=std) for n, e in noise.items()})
        losses = self._losses_fn(kind, dim)(p_in, fixed, buffers, *inputs)
        names = list(trainable)
        # The sum's gradient is each run's own gradient (the runs share no parameter).
        values = torch.autograd.grad(losses.sum(), [trainable[n] for n in names])
        return losses.detach(), dict(zip(names, values, strict=True))

    def _trial(self) -> None:
        """One step and one evaluation on copies: anything vmap, the tracer or the batched
        rules cannot do fails here, before any run is recorded."""
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                params = {n: p.detach().clone().requires_grad_(p.requires_grad)
                          for n, p in self.params.items()}  # fmt: skip
                buffers = {n: b.clone() for n, b in self.buffers.items()}
                opts = [og.make(list(params.values())) for og in self.opt_groups]
                bs = min(self.cfg0.batch_size or self.n, self.n)
                x = self.x_train[:bs].expand(self.k, *self.x_train[:bs].shape).contiguous()
                y = self.y_train[:bs].expand(self.k, *self.y_train[:bs].shape).contiguous()
                inputs: tuple[Tensor, ...] = (x, y)
                if self.mix:
                    inputs = (x, y, y, torch.tensor([[1.0, 0.0]] * self.k, dtype=self.dtype))
                kind = "mix" if self.mix else "train"
                self.base.train()
                _, grads = self._losses_and_grads(kind, 0, inputs, params, buffers, None)
                for og, opt in zip(self.opt_groups, opts, strict=True):
                    og.step(opt, list(params.values()), list(grads.values()))
                with torch.no_grad():
                    # the eval-mode forward too (GRU's has no batching rule: the model is
                    # left to one run at a time, whose numbers are known to be right)
                    self.base.eval()
                    vmap(functional_call, in_dims=(None, 0, None))(
                        self.base, (params, buffers), (self.x_val[:2],)
                    )
            except VectorizeError:
                raise
            except Exception as exc:
                raise VectorizeError(
                    f"model {self.b0.model_name!r} with optimizer {self.cfg0.optimizer!r} "
                    f"cannot be trained under torch.func.vmap: {type(exc).__name__}: {exc}"
                ) from exc
            finally:
                self.base.train()

    # -- evaluation ---------------------------------------------------------------------

    @torch.no_grad()
    def _evaluate(self, x: Tensor, y: Tensor) -> dict[str, list[float]]:
        """The metrics of every run on ``(x, y)``, each computed by ``run.evaluate`` on the
        run's own model holding its current weights -- the single run's evaluation. One
        forward pass per run: evaluation batches are large, so there is no per-operation cost
        to share, and the model's own layers (``nn.Conv1d``: MKL-DNN) are faster on them than
        the vectorized product form."""
        out: dict[str, list[float]] = {}
        for i, b in enumerate(self.builts):
            _load_into(b.model, self._snapshot(i))
            metrics = evaluate(b.model, x, y, b.eval_loss, classification=b.classification)
            for key, value in metrics.items():
                out.setdefault(key, []).append(value)
        return out

    # -- training ---------------------------------------------------------------------

    def run(self, store: Store | None, progress: bool | None) -> list[RunResult]:
        k, cfgs, builts = self.k, self.configs, self.builts
        run_ids: list[int | None] = [None] * k
        self.status: list[str | None] = [None] * k
        self.message: list[str | None] = [None] * k
        self.history: list[list[Row]] = [[] for _ in range(k)]
        self.stop_step = [0] * k
        self.stop_epochs = [0.0] * k
        self.final: list[dict[str, Tensor] | None] = [None] * k
        self.best: list[dict[str, Tensor] | None] = [None] * k
        self.store, self.run_ids = store, run_ids
        if store is not None:
            for i, (cfg, b) in enumerate(zip(cfgs, builts, strict=True)):
                multirun = {"mode": "vmap", "runs": k, "index": i}
                run_ids[i] = create_record(store, cfg, b, multirun=multirun)
        finished = [False] * k
        try:
            desc = f"{k} runs of {self.b0.model_name} (vmap)"
            with progress_bar(progress, self.total, 0, desc) as bar:
                self._loop(bar)
            results = []
            for i in range(k):
                results.append(self._finish(i))
                finished[i] = True
            return results
        except BaseException as exc:
            if store is not None:
                failed = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                for i in range(k):
                    if run_ids[i] is not None and not finished[i]:
                        with contextlib.suppress(Exception):
                            store.set_status(
                                run_ids[i], failed, message=f"{type(exc).__name__}: {exc}"
                            )
            raise

    def _log(self, i: int, rows: list[Row]) -> None:
        self.history[i].extend(rows)
        if self.store is not None:
            self.store.log_metrics(self.run_ids[i], rows)

    def _snapshot(self, i: int) -> dict[str, Tensor]:
        out = {n: p.detach()[i].clone() for n, p in self.params.items()}
        out.update({n: b[i].clone() for n, b in self.buffers.items()})
        return out

    def _freeze(self, i: int, status: str, message: str | None, step: int) -> None:
        """End run i at ``step``: its result is the snapshot taken here. Its slice of the
        stacked tensors is never read again (nothing couples the runs); its gradients are
        zeroed from now on so that no NaN or inf enters the optimizer's state."""
        self.status[i] = status
        self.message[i] = message
        self.stop_step[i] = step
        self.stop_epochs[i] = self._epochs_done()
        self.final[i] = self._snapshot(i)
        self.frozen[i] = True
        self._frozen_any = True

    def _epochs_done(self) -> float:
        bs = self.cfg0.batch_size
        if bs is None or self.perm is None:
            return float(self.epoch)
        n = self.n
        if self.cfg0.drop_last:
            n -= n % bs
        return self.epoch - 1 + min(self.pos, n) / n

    def _next_batch(self) -> tuple[Any, Any, int | None]:
        """The step's inputs and targets, and their vmap dimension (None: shared)."""
        bs = self.cfg0.batch_size
        if bs is None:
            self.epoch += 1
            return self.x_train, self.y_train, None
        n = self.n
        if self.perm is None or self.pos >= n or (self.cfg0.drop_last and self.pos + bs > n):
            if self.shared_order:
                perm = torch.randperm(n, generator=self.data_gens[0])
                self.perm = perm.expand(self.k, n)
            else:
                self.perm = torch.stack([torch.randperm(n, generator=g) for g in self.data_gens])
            self.epoch += 1
            self.pos = 0
        start = self.pos
        self.pos = start + bs
        device = self.x_train.device
        if self.shared_order:
            idx = self.perm[0, start : self.pos].to(device)
            return self.x_train.index_select(0, idx), self.y_train.index_select(0, idx), None
        idx = self.perm[:, start : self.pos].to(device)  # (K, B)
        # index_select of the flattened (K, B) indices: a third of the time of x[idx]
        flat = idx.reshape(-1)
        x = self.x_train.index_select(0, flat).view(*idx.shape, *self.x_train.shape[1:])
        y = self.y_train.index_select(0, flat).view(*idx.shape, *self.y_train.shape[1:])
        return x, y, 0

    def _regularized_inputs(
        self, x: Tensor, y: Tensor, dim: int | None
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """Per-run augmentation, input noise and mixup/cutmix, each run drawing from its own
        generator in the order a single run draws (augment, noise, mix)."""
        xs, ys, y2s, ws = [], [], [], []
        for i in range(self.k):
            xb, yb, yb2, lam = self.pipeline(
                x if dim is None else x[i], y if dim is None else y[i], self.aug_gens[i]
            )
            if self.mix:
                ys.append(yb)
                y2s.append(yb2)
                ws.append([lam, 1.0 - lam])
            xs.append(xb)
        if not self.mix:
            return torch.stack(xs), (y if dim == 0 else y.expand(self.k, *y.shape)), None, None
        w = torch.tensor(ws, dtype=self.dtype, device=x.device)
        return torch.stack(xs), torch.stack(ys), torch.stack(y2s), w

    def _weight_noise(self) -> dict[str, Tensor]:
        """Each run's ``eps`` (stacked), drawn as ``regularize.WeightNoise`` draws it: one
        ``randn`` per trainable parameter, in order, from the run's augmentation generator."""
        noise: dict[str, list[Tensor]] = {n: [] for n in self.noisy_names}
        for g in self.aug_gens:
            for name in self.noisy_names:
                p = self.params[name]
                noise[name].append(torch.randn(p.shape[1:], generator=g, dtype=p.dtype))
        return {n: torch.stack(v) for n, v in noise.items()}

    def _train_step(self) -> Tensor:
        """One optimizer step of every run; returns the K training losses (before the step)."""
        x, y, dim = self._next_batch()
        noise = self._weight_noise() if self.cfg0.weight_noise > 0 else None
        kind = "train"
        inputs: tuple[Tensor, ...] = (x, y)
        if self.pipeline is not None:
            x, y, y2, w = self._regularized_inputs(x, y, dim)
            dim = 0
            inputs = (x, y) if y2 is None else (x, y, y2, w)
            kind = "train" if y2 is None else "mix"
        values, grads = self._losses_and_grads(kind, dim, inputs, self.params, self.buffers, noise)
        finite = torch.isfinite(values)
        if self._frozen_any:
            finite |= self.frozen_t
        if not bool(finite.all()):
            step = self.step + 1  # the failed step counts, as in a single run
            for i, ok in enumerate(finite.tolist()):
                if not ok:
                    value = float(values[i])
                    self._log(i, [(step, "train", "objective", value)])
                    message = f"non-finite training loss ({value}) at step {step}"
                    self._freeze(i, "diverged", message, step)
            self.frozen_t = torch.tensor(self.frozen)
        gs = list(grads.values())
        if self._frozen_any:
            # a frozen run's gradient may be NaN: zero it (see _freeze)
            gs = [g.masked_fill(self._view(g), 0.0) for g in gs]
        for og in self.opt_groups:
            og.step(og.optimizer, list(self.params.values()), gs)
        return values

    def _view(self, t: Tensor) -> Tensor:
        return self.frozen_t.view(-1, *([1] * (t.dim() - 1)))

    def _evaluation_rows(self) -> list[list[Row]]:
        step = self.step
        values: dict[str, list[float]] = {}
        for split, x, y in (
            ("train", self.x_train, self.y_train),
            ("val", self.x_val, self.y_val),
        ):
            for name, v in self._evaluate(x, y).items():
                values[f"{split}/{name}"] = v
        if self.objective_count:
            values["train/objective"] = (self.objective_sum / self.objective_count).tolist()
        self.objective_sum.zero_()
        self.objective_count = 0
        epochs = self._epochs_done()
        hyper = {
            key: [v for og in self.opt_groups for v in og.values(key)] for key in self.cfg0.schedule
        }
        rows: list[list[Row]] = []
        for i in range(self.k):
            r: list[Row] = [(step, *key.split("/", 1), v[i]) for key, v in values.items()]
            r.append((step, "progress", "epoch", epochs))
            r.append((step, "progress", "wall_time", self.elapsed))
            for key, v in hyper.items():
                if v[i] is not None:
                    r.append((step, "hyper", key, v[i]))
            rows.append(r)
        return rows

    def _loop(self, bar: Any) -> None:
        cfg0, k = self.cfg0, self.k
        total = self.total
        eval_every = cfg0.eval_every or max(1, total // 25)
        self.step = 0
        self.epoch = 0
        self.perm: Tensor | None = None
        self.pos = 0
        self.elapsed = 0.0
        self.frozen = [False] * k
        self.frozen_t = torch.zeros(k, dtype=torch.bool)
        self._frozen_any = False
        self.objective_sum = torch.zeros(k, dtype=torch.float64)
        self.objective_count = 0
        isfinite = math.isfinite
        self.base.train()
        started = time.perf_counter()
        for i, rows in enumerate(self._evaluation_rows()):
            self._log(i, rows)
        try:
            while self.step < total and not all(self.frozen):
                values = self._train_step()
                self.step += 1
                self.objective_sum += values.double()
                self.objective_count += 1
                if bar is not None:
                    bar.update(1)
                step = self.step
                if step % eval_every == 0 or step == total:
                    now = time.perf_counter()
                    self.elapsed += now - started
                    started = now
                    all_rows = self._evaluation_rows()
                    for i, rows in enumerate(all_rows):
                        if self.frozen[i]:
                            continue
                        self._log(i, rows)
                        vals = {f"{sp}/{nm}": v for _, sp, nm, v in rows}
                        if not (isfinite(vals["val/loss"]) and isfinite(vals["train/loss"])):
                            message = f"non-finite evaluation loss at step {step}"
                            self._freeze(i, "diverged", message, step)
                            continue
                        if self.run_rules[i]:
                            self._step_loss_rules(i, vals[self.rule_monitor])
                        self._early_stopping(i, vals, step)
                    self.frozen_t = torch.tensor(self.frozen)
        finally:
            self.elapsed += time.perf_counter() - started
        for i in range(k):
            if self.status[i] is None:
                self.status[i] = "completed"
                self.stop_step[i] = self.step
                self.stop_epochs[i] = self._epochs_done()
                self.final[i] = self._snapshot(i)

    def _step_loss_rules(self, i: int, metric: float) -> None:
        og = next(og for og in self.opt_groups if og.start <= i < og.stop)
        og.step_rules(i, self.run_rules[i], metric)

    def _early_stopping(self, i: int, vals: dict[str, float], step: int) -> None:
        early = self.builts[i].early
        if early is None:
            return
        monitor = (self.configs[i].early_stopping or {}).get("monitor", "val/loss")
        value = vals[monitor]
        improved = early.is_improvement(value)
        stop = early.update(value, None, step=step)
        if improved and early.restore_best:
            self.best[i] = self._snapshot(i)
        if stop:
            message = (
                f"early stopping at step {step} (best {monitor} {early.best:.6g} at step "
                f"{early.best_step})"
            )
            self._freeze(i, "completed", message, step)

    def _finish(self, i: int) -> RunResult:
        """Put run i's final weights into its own model; summary, test metrics, store."""
        cfg, b = self.configs[i], self.builts[i]
        status = self.status[i]
        state = self.final[i]
        if status == "completed" and b.early is not None and b.early.restore_best:
            state = self.best[i] or state
        _load_into(b.model, state)
        position = (self.stop_step[i], self.stop_epochs[i], self.elapsed)
        summary = summarize(cfg, b, status, position, lambda rows: self._log(i, rows))
        run_id = self.run_ids[i]
        if self.store is not None:
            self.store.set_status(run_id, status, message=self.message[i], summary=summary)
        return RunResult(
            status=status,
            steps=self.stop_step[i],
            epochs=self.stop_epochs[i],
            wall_time=self.elapsed,
            metrics=series(self.history[i]),
            summary=summary,
            model=b.model,
            config=cfg,
            run_id=run_id,
            message=self.message[i],
            checkpoint_path=None,
        )


def _load_into(model: nn.Module, state: dict[str, Tensor] | None) -> None:
    if state is None:
        return
    with torch.no_grad():
        for name, t in (*model.named_parameters(), *model.named_buffers()):
            if name in state:
                t.copy_(state[name])


def _vmap_threads() -> int:
    """Intra-op threads for a vectorized group: torch's setting, lowered to the cores idle now
    (at least one). A vectorized step is one large batched product, which a second thread
    speeds up on an idle core (MNIST-1D MLP, K=16: 1.3x) and slows down on a busy one."""
    threads = torch.get_num_threads()
    if threads <= 1:
        return 1
    return max(1, min(threads, math.floor(_idle_cores() + 0.5)))


def _train_vectorized(
    configs: list[RunConfig], splits: Any, store: Store | None, progress: bool | None
) -> list[RunResult]:
    # The runs of one optimizer are put next to each other (each optimizer steps a slice).
    keys = [_optimizer_key(c) for c in configs]
    first = {key: i for i, key in reversed(list(enumerate(keys)))}
    order = sorted(range(len(configs)), key=lambda i: (first[keys[i]], i))
    old = torch.get_num_threads()
    threads = _vmap_threads()
    try:
        if threads != old:
            torch.set_num_threads(threads)
        with torch.random.fork_rng(devices=[]):
            group = _Vectorized([configs[i] for i in order], splits)
            out = group.run(store, progress)
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)
    results: list[RunResult] = [out[0]] * len(out)
    for position, i in enumerate(order):
        results[i] = out[position]
    return results
