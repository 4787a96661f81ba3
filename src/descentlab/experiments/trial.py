"""What a trial is and what makes two trials the same.

A :class:`Trial` is one :class:`~descentlab.engine.config.RunConfig` plus the data it trains
on (``"holdout"``, ``"fold:i:k"`` or ``"refit"``, see :mod:`descentlab.experiments.tuning`),
read from a :class:`DataSource`. Its identity is its config as the store records it (the
config's ``name`` holds the phase, the optimizer's label and the fold, since those change the
data but no other field): :func:`finished_run` looks it up with :meth:`Store.find_run_by_config
<descentlab.store.Store.find_run_by_config>`, so a sweep that was interrupted and is started
again skips every trial that had finished (completed or diverged), and :func:`trial_key` names
the files kept of a trial still running. The runner (its queue, the trials' groups and
costs, its workers): :mod:`~descentlab.experiments.runner`; which worker trains what:
:mod:`~descentlab.experiments.packing`; how a task is trained:
:mod:`~descentlab.experiments.execution`; resume and orphans:
:mod:`~descentlab.experiments.resume`.

:class:`MonitoredOptimizer` (:mod:`descentlab.engine.monitoring`) wraps an optimizer so that
its :class:`~descentlab.optim.Monitor` records the update-to-parameter ratio every few steps;
the records are stored as ``monitor/*`` metrics of the run, whether it trained alone or in a
vectorized group.
"""

from __future__ import annotations

import functools
import hashlib
import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from descentlab.store import canonical_json


class TrialError(RuntimeError):
    """A trial failed with an error (the message carries the worker's traceback)."""

    #: the trial failed for lack of space (see :func:`descentlab._files.out_of_space`)
    no_space: bool = False


#: Statuses of a trial that is done (a diverged trial is a result, not a failure).
FINISHED: tuple[str, ...] = ("completed", "diverged")

#: Statuses of a trial that counts in a comparison's results: finished, or failed (its code
#: raised, or the worker running it died: the cause is the run's stored message). A failed
#: trial is trained again when the comparison is run again; a finished one is reused.
RESULTS: tuple[str, ...] = (*FINISHED, "failed")


def __getattr__(name: str) -> Any:
    # MonitoredOptimizer lives in the engine, imported when first asked for: a worker
    # process imports this module before it can die with its parent (and before its
    # warm-up), so the module stays free of torch and the engine.
    if name == "MonitoredOptimizer":
        from descentlab.engine.monitoring import MonitoredOptimizer

        return MonitoredOptimizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class DataSource:
    """Where the trials' data come from: a dataset by name, or given ``Splits``.

    Args:
        problem: dataset name (``descentlab.problems.data.DATASETS``).
        options: dataset options (``data.load(**options)``).
        split_seed: seed of the train/validation split.
        val_fraction: validation fraction.
        data: a ``Splits`` to use instead of loading ``problem`` (e.g. your own tensors; sent
            to each worker process once).
        kind: the kind of trial that trains each (a
            :class:`~descentlab.experiments.kinds.TrialKind`; None: the engine's run), given
            the data above where it asks for them.

    Cross-validation folds (``"fold:i:k"``) are drawn with ``split_seed`` too.
    """

    problem: str
    options: Mapping[str, Any] = field(default_factory=dict)
    split_seed: int = 0
    val_fraction: float = 0.2
    data: Any = None
    kind: Any = None

    def load(self) -> Any:
        """The base ``Splits`` (loaded once per process and kept)."""
        if self.data is not None:
            return self.data
        return _load_cached(
            self.problem,
            json.dumps(dict(self.options), sort_keys=True),
            self.split_seed,
            self.val_fraction,
        )

    def get(self, kind: str) -> Any:
        """The ``Splits`` a trial trains on.

        Args:
            kind: ``"holdout"`` (train / validation, no test data), ``"fold:i:k"`` (fold ``i``
                of ``k``-fold cross-validation over train + validation, no test data) or
                ``"refit"`` (train + validation; the sealed test split for the final
                evaluation).
        """
        return _derived(self, kind)


@functools.lru_cache(maxsize=4)
def _load_cached(problem: str, options: str, split_seed: int, val_fraction: float) -> Any:
    from descentlab.problems import data as datasets

    return datasets.load(problem, seed=split_seed, val_fraction=val_fraction, **json.loads(options))


#: Each live base's derived splits by kind, dropped with the base (keyed by the object, never
#: by ``id()``: a new base allocated at a dead one's address must not be handed its splits).
_DERIVED: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _derived(source: DataSource, kind: str) -> Any:
    from descentlab.experiments import tuning

    base = source.load()
    known = _DERIVED.setdefault(base, {})
    if kind in known:
        return known[kind]
    if kind == "holdout":
        out = tuning.holdout_splits(base)
    elif kind == "refit":
        out = tuning.refit_splits(base)
    elif kind.startswith("fold:"):
        _, i, k = kind.split(":")
        folds = tuning.fold_splits(base, int(k), seed=source.split_seed)
        for j, fold in enumerate(folds):
            known[f"fold:{j}:{k}"] = fold
        out = folds[int(i)]
    else:
        raise ValueError(f"data kind must be 'holdout', 'refit' or 'fold:i:k', got {kind!r}")
    known[kind] = out
    return out


@dataclass(frozen=True)
class Trial:
    """One training run of an experiment.

    Attributes:
        phase: ``"tune"``, ``"curve"`` (validation learning curves) or ``"refit"``.
        label: the optimizer's label in the experiment.
        config: the run's config (its ``name`` must make the trial unique).
        data: the data kind (see :meth:`DataSource.get`).
        tag: free-form identification for the caller (candidate index, fold, seed).
    """

    phase: str
    label: str
    config: Any
    data: str
    tag: tuple[Any, ...] = ()
    #: What a planner derived once, where it made the trial (None: derived where needed):
    #: the config's record (``RunConfig.to_dict``), the key that identifies the trial in a
    #: session (the record as sorted JSON), its estimated cost
    #: (:func:`~descentlab.experiments.runner.trial_cost`) and the vectorized pass it can share
    #: (:func:`~descentlab.engine.multirun.group_of`; None: alone).
    record: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    key: str | None = field(default=None, compare=False, repr=False)
    cost: float | None = field(default=None, compare=False, repr=False)
    group: str | None = field(default=None, compare=False, repr=False)

    @property
    def monitored(self) -> bool:
        """Whether the run records monitor statistics (descentlab's optimizers only; an
        optimizer from outside descentlab has no monitor)."""
        from descentlab.engine.monitoring import MonitoredOptimizer

        opt = self.config.optimizer
        return isinstance(opt, MonitoredOptimizer) and opt.can_monitor

    def record_config(self) -> dict[str, Any]:
        """The config as the store holds it (``RunConfig.to_dict``)."""
        return dict(self.record) if self.record is not None else self.config.to_dict()


@dataclass
class TrialOutcome:
    """What a trial gave.

    Attributes:
        trial: the trial.
        run_id: its run in the store.
        status: ``completed`` or ``diverged``, ``failed`` (its code raised, or the worker
            running it died: ``cause``), or ``interrupted`` when stopped.
        summary: the run's final metrics (the store's summary).
        reused: found finished in the store (not run again).
        seconds: wall-clock seconds this process spent on it (0 when reused).
        cause: why a failed trial failed, one line (stored as its run's message).
        way: how it failed, apart from the values in its message
            (:func:`~descentlab._usercode.failure_way`): trials that fail the same way share it.
        said: the whole line the trial's kind said of the failure, naming the trial (None:
            ``cause`` says it).
    """

    trial: Trial
    run_id: int | None
    status: str
    summary: dict[str, Any]
    reused: bool = False
    seconds: float = 0.0
    cause: str | None = None
    way: str | None = None
    said: str | None = None


def finished_run(
    store: Any, trial: Trial, *, outcomes: bool = False, statuses: tuple[str, ...] = FINISHED
) -> Any:
    """The stored run that finished ``trial`` (newest first), or None.

    A monitored trial counts as finished only once its monitor records are stored too (they
    are written just after the run ends; a run trained across processes has none). With
    ``outcomes`` (what a runner deciding what to train asks), a completed refit run counts
    as finished only once its per-example test outcomes, or why there are none, are stored
    too (they are also written just after the run ends: a process killed in between leaves a
    completed run without them, and reusing it would give intervals of the seeds' noise
    only, unlike the run never interrupted); it is trained again. Without ``outcomes``
    (reading a store), such a run -- or one stored before runs recorded their outcomes -- is
    reused as it is: the comparison says that its intervals count the seeds' noise only.
    ``statuses``: :data:`RESULTS` to find a failed trial too (reading a comparison's results).
    """
    monitored, needs = trial.monitored, outcomes and needs_outcomes(trial)
    record = store.find_run_by_config(trial.record_config(), status=statuses)
    if record is None:
        return None
    # (a run trained across processes records no monitor: its statistics would be a shard's)
    monitored = monitored and record.status == "completed" and not record.provenance.get("nproc")
    if monitored and not store.metrics(record.id, split="monitor", name="update_ratio"):
        return None
    if needs and record.status == "completed":
        from descentlab.experiments.example_outcomes import OUTCOMES_KEY

        if OUTCOMES_KEY not in (record.provenance or {}):
            return None
    return record


def needs_outcomes(trial: Trial) -> bool:
    return trial.phase == "refit" and bool(getattr(trial.config, "evaluate_test", False))


def trial_key(trial: Any) -> str:
    """The name of ``trial``'s files: a hash of its config as the store records it (unique in
    a comparison: the config holds the trial's name)."""
    text = canonical_json(trial.record_config())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
