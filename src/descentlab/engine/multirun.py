r"""Many training runs at once: vectorized with ``torch.func``, or spread over processes.

:func:`train_many` trains a list of :class:`~descentlab.engine.config.RunConfig` (or one base
config and a list of overrides) and returns one :class:`~descentlab.engine.run.RunResult` per
config, in order, exactly as :func:`~descentlab.engine.run.train` would have. ``"vmap"``
stacks K runs of one architecture (``torch.func.stack_module_state``) and steps them with
length-K hyperparameters: the update rules are elementwise and the K losses independent, so
one backward pass of the summed loss gives every run its own gradient (equal to K separate
runs up to rounding). ``"processes"`` trains each config in a spawned worker
(:mod:`descentlab.engine.procpool`, bit-identical); ``"sequential"`` in a loop here.
``"auto"`` chooses per group of configs that can share a pass; what it chooses, what
vectorizes and what trains alone: docs/training-runs.md.

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

import dataclasses
import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from descentlab._announce import once
from descentlab.constraints import POSITIVE_INT, check
from descentlab.engine.config import RunConfig, build_schedule
from descentlab.engine.monitoring import base_optimizer
from descentlab.engine.outcome import RunResult, progress_bar
from descentlab.engine.procpool import default_workers, train_in_processes
from descentlab.engine.run import train
from descentlab.engine.streaming import vectorize_refusal
from descentlab.engine.vectorized import VectorizeError, json_key, train_group
from descentlab.store import Store

__all__ = [
    "MODES",
    "VMAP_MODELS",
    "VectorizeError",
    "expand_configs",
    "group_key",
    "group_of",
    "plan",
    "train_checked",
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
    "evaluate_train",
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
            out.append(_as_config(cfg, f"configs[{i}]").checked())
        except ValueError as exc:
            raise ValueError(f"configs[{i}]: {exc}") from None
    return out


def _check_names(cfg: RunConfig, where: str) -> None:
    """Registry names, checked for every config before any run starts."""
    from descentlab import losses, optim
    from descentlab.problems import data as datasets
    from descentlab.problems import models

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
    name = base_optimizer(cfg.optimizer)
    if isinstance(name, str):
        try:
            optim.get(name)
        except KeyError as exc:
            raise KeyError(f"{where}: {exc.args[0]}") from None
    for key, spec in cfg.schedule.items():
        try:
            build_schedule(spec, total_steps=1)
        except KeyError as exc:
            raise KeyError(f"{where}: schedule {key!r}: {exc.args[0]}") from None
        except ValueError:
            pass  # arguments are checked against the run's real length when it is built


def _engine_options(cfg: RunConfig) -> str:
    """The engine options of ``cfg`` that only a run alone implements, as ``key=value`` text
    ("" where there are none)."""
    given = []
    if cfg.precision not in ("fp32", "auto"):  # "auto" vectorized: fp32 (engine.precision)
        given.append(f"precision={cfg.precision!r}")
    if cfg.accumulate != 1:
        given.append(f"accumulate={cfg.accumulate}")
    if cfg.clip_grad_norm is not None:
        given.append(f"clip_grad_norm={cfg.clip_grad_norm}")
    return ", ".join(given)


def _announce_alone(cfg: RunConfig) -> None:
    """Say once per process that runs with engine options (mixed precision, accumulation,
    clipping) are not vectorized: they train alone."""
    engine = _engine_options(cfg)
    if engine:
        once(
            ("alone", engine),
            f"descentlab: runs with {engine} train one at a time, not vectorized (the "
            "vectorized path does not implement them)",
            stacklevel=3,
        )


def group_key(cfg: RunConfig) -> str:
    """Configs with equal keys can train in one vectorized pass (they share every field of
    ``_SHARED_FIELDS``); they may differ in optimizer, seed, hyperparameters and name."""
    return json_key({f: getattr(cfg, f) for f in _SHARED_FIELDS})


def group_of(cfg: RunConfig, checked: bool = False) -> str | None:
    """The :func:`group_key` of the vectorized pass a run can share, or None where it trains
    alone (data not loaded by name, or a :func:`vectorize_reason`). The run is checked here,
    where it is grouped, as :func:`train_many` checks it (fields; registry names where it can
    share a pass): the pass that trains it (:func:`train_checked`) does not check again.
    ``checked``: ``cfg`` is a checked config (:meth:`RunConfig.checked_record`'s, made by the
    caller): its fields are not checked again."""
    from descentlab.problems import data as datasets

    if not checked:
        cfg.checked()  # (the fields first: the reasons below read them)
    if cfg.problem not in datasets.DATASETS or vectorize_reason(cfg) is not None:
        _announce_alone(cfg)
        return None
    _check_names(cfg, "config")
    return group_key(cfg)


def vectorize_reason(cfg: RunConfig) -> str | None:
    """Why a config cannot be vectorized, from its fields alone (None: maybe it can: the
    model and the update rules are checked when the group is set up)."""
    from descentlab import optim

    engine = _engine_options(cfg)
    if engine:
        return (
            f"{engine}: the vectorized path does not implement mixed precision, gradient "
            "accumulation or engine-level clipping; such runs train alone (the same numbers "
            "as train())"
        )
    if cfg.checkpoint_every is not None:
        return (
            f"checkpoint_every={cfg.checkpoint_every}: vectorized runs keep no checkpoints "
            "(checkpoints and resume are per run)"
        )
    spec = base_optimizer(cfg.optimizer)
    if not isinstance(spec, str | optim.Rule):
        return (
            f"optimizer {cfg.optimizer!r} is a factory; only descentlab's named optimizers and "
            "update rules take per-run (length-K) hyperparameters"
        )
    low = _low_bit_state(cfg, spec)
    if low is not None:
        reason = (
            f"state_dtype={low!r}: low-bit optimizer state is stored per tensor (int8's "
            "blocks and minimum size, bfloat16's rounding bits hashed from each element's "
            "place), so in stacked tensors it would couple the runs; they are trained alone "
            "(each one's numbers as trained by itself)"
        )
        once(("alone-lowbit", low), f"descentlab: runs with {reason}", stacklevel=2)
        return reason
    return None


def _low_bit_state(cfg: RunConfig, spec: Any) -> str | None:
    """The name of the low-bit state format ``cfg``'s optimizer stores its state in (None:
    the parameters' dtype): ``hyper["state_dtype"]``, or an update rule's own format."""
    value = cfg.hyper.get("state_dtype")
    if value is not None:
        return str(getattr(value, "name", value))
    rules = getattr(spec, "rules", [spec]) if not isinstance(spec, str) else []
    formats = [getattr(r, "state_format", None) for r in rules]
    return next((str(f.name) for f in formats if f is not None), None)


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
        key = json_key([cfg.problem, cfg.problem_options, cfg.split_seed, cfg.val_fraction])
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
    configs: Sequence[RunConfig], mode: str, data: _Data, procs: bool
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
        # VMAP_MODELS always; other vmap-able models when processes would not run in parallel,
        # or on a GPU (one device: K runs in one pass beat K processes sharing it)
        one = procs and str(configs[idx[0]].device) == "cpu"
        wanted = name in VMAP_MODELS or (not one and name not in _NO_VMAP_MODELS)
        able = [i for i in idx if vectorize_reason(configs[i]) is None]
        if len(able) < len(idx) and len(idx) >= 2:
            _announce_alone(configs[idx[0]])
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
    w = default_workers(len(cfgs)) if workers is None else check("workers", workers, POSITIVE_INT)
    return _plan(cfgs, mode, _Data(data), _use_processes(w, workers is not None))


def _check_mode(mode: Any) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")


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
        overrides: one dict of changed fields per run (:func:`expand_configs`).
        mode: ``"auto"``, ``"vmap"``, ``"processes"`` or ``"sequential"`` (how ``"auto"``
            chooses: docs/training-runs.md).
        workers: worker processes (default: one per core, at most one per run); under
            ``"auto"``, processes where they may pay if given, else only on two idle cores.
        progress: show progress bars; None shows them when stderr is a terminal.
        data: ``Splits`` that every run trains on instead of loading its problem.

    Returns:
        ``results[i]`` for ``configs[i]``; vectorized runs report their group's wall time.

    Writes:
        Nothing without ``store``; with one, each run's record (and checkpoint) as ``train``.

    Raises:
        KeyError: an unknown name in a config, listing the valid ones (before any run starts).
        ValueError: a bad config, ``mode`` or ``workers`` (before any run starts).
        VectorizeError: ``mode="vmap"`` and some group cannot be vectorized.

    Example:
        >>> from descentlab.engine import RunConfig, train_many
        >>> base = RunConfig(problem="moons", problem_options={"n_samples": 200},
        ...                  model="mlp", model_options={"hidden": 8},
        ...                  optimizer="adam", batch_size=16, steps=50,
        ...                  evaluate_test=False)
        >>> seeds = [{"seed": s} for s in range(4)]
        >>> runs = train_many(base, overrides=seeds, mode="vmap", progress=False)
        >>> len(runs), [r.status for r in runs], runs[0].summary["steps"]
        (4, ['completed', 'completed', 'completed', 'completed'], 50)
        >>> train_many(base, mode="gpu")
        Traceback (most recent call last):
        ValueError: mode must be one of 'auto', 'vmap', 'processes', 'sequential', ...
    """
    _check_mode(mode)
    cfgs = _collect(configs, overrides)
    w = default_workers(len(cfgs)) if workers is None else check("workers", workers, POSITIVE_INT)
    for i, cfg in enumerate(cfgs):
        _check_names(cfg, f"configs[{i}]")
    procs = _use_processes(w, workers is not None)
    return train_checked(cfgs, store, data, progress, mode=mode, workers=w, procs=procs)


def train_checked(
    cfgs: list[RunConfig],
    store: Store | None,
    data: Any = None,
    progress: bool | None = False,
    *,
    mode: str = "auto",
    workers: int = 1,
    procs: bool = False,
) -> list[RunResult]:
    """:func:`train_many` of configs it has checked, or that were checked where they were
    grouped (:func:`group_of`: a runner's trials): planned and trained; ``procs``: whether
    worker processes may be used."""
    loaded, w = _Data(data), workers
    results: dict[int, RunResult] = {}
    fallback: list[int] = []
    for kind, idx in _plan(cfgs, mode, loaded, procs):
        group = [cfgs[i] for i in idx]
        if kind == "vmap":
            try:
                out = _train_vectorized(group, loaded.get(group[0]), store, progress)
            except VectorizeError:
                if mode == "vmap":
                    raise
                fallback.extend(idx)
                continue
        else:
            out = _train_unvectorized(kind == "processes", group, store, w, loaded, progress)
        results.update(zip(idx, out, strict=True))
    if fallback:
        group = [cfgs[i] for i in sorted(fallback)]
        out = _train_unvectorized(len(group) >= 2 and procs, group, store, w, loaded, progress)
        results.update(zip(sorted(fallback), out, strict=True))
    return [results[i] for i in range(len(cfgs))]


def _train_unvectorized(
    processes: bool,
    configs: list[RunConfig],
    store: Store | None,
    workers: int,
    loaded: _Data,
    progress: bool | None,
) -> list[RunResult]:
    """``configs`` trained one by one: in worker processes, or here one after another."""
    if processes:
        return _train_processes(configs, store, workers, loaded.data, progress)
    return [train(cfg, store, data=loaded.get(cfg), progress=progress) for cfg in configs]


def _train_processes(
    configs: list[RunConfig], store: Store | None, workers: int, data: Any, progress: bool | None
) -> list[RunResult]:
    desc = f"{len(configs)} runs in {min(workers, len(configs))} processes"
    with progress_bar(progress, len(configs), 0, desc) as bar:
        return train_in_processes(configs, store, workers=workers, data=data, bar=bar)


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
    for cfg in configs:
        reason = vectorize_reason(cfg)
        if reason is not None:
            raise VectorizeError(reason)
    refusal = vectorize_refusal(splits)
    if refusal is not None:
        raise VectorizeError(refusal)
    old = torch.get_num_threads()
    threads = _vmap_threads()
    try:
        if threads != old:
            torch.set_num_threads(threads)
        return train_group(configs, splits, store, progress)
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)
