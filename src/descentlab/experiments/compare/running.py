"""Running a comparison: the run directory, the worker processes, the rounds of trials.

:func:`compare` validates the spec and loads the data before anything is written, then
submits each optimizer's tuning rounds as they are decided (:mod:`.planning`), its final runs
once its tuning is done, and records every finished trial in the run directory's store; the
results are then read back from the store (:mod:`.collect`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from descentlab._announce import shared_by_one_command
from descentlab._files import remove_created
from descentlab._osutil import FolderLock
from descentlab._usercode import note_interrupt, stop_signal, stop_words
from descentlab.engine.rundata import check_batch_size
from descentlab.engine.trial_lines import trial_lines
from descentlab.experiments.compare import inpass
from descentlab.experiments.compare.choices import OptimizerChoice
from descentlab.experiments.compare.collect import EXPERIMENT, Judge, collect, with_context
from descentlab.experiments.compare.planning import (
    Found,
    Plan,
    final_setting,
    final_trials,
    planned_trials,
    select,
    tuning_plan,
)
from descentlab.experiments.compare.progress import Progress, console_progress, shows_lines
from descentlab.experiments.compare.pruning import PRUNER_NAME, rung_of
from descentlab.experiments.compare.results import Comparison, score_metric
from descentlab.experiments.compare.spec import (
    AUTO_BATCH,
    DEFAULT_BATCH_SIZE,
    VERDICT_ONLY,
    CompareSpec,
    default_batch_size,
)
from descentlab.experiments.execution import torch_threads
from descentlab.experiments.kinds import kind_of
from descentlab.experiments.resume import mark_orphans
from descentlab.experiments.runners import make_runner
from descentlab.experiments.trial import DataSource
from descentlab.problems import data as datasets
from descentlab.problems import models
from descentlab.problems.problem import chance_level, is_problem_ref, resolve_for_compare
from descentlab.store import Store, finished_under, provenance, store_path_of

__all__ = ["Interrupted", "compare", "prepare"]


#: a phase of trials in a message
_PHASES = {"tune": "tuning", "curve": "curve", "refit": "test"}


class Interrupted(RuntimeError):
    """The comparison was stopped (Ctrl-C or a signal); run it again to continue. ``signum``:
    the signal (SIGINT, SIGTERM), whose 128 + n is the command's exit status."""

    def __init__(self, message: str, signum: int | None = None) -> None:
        super().__init__(message)
        self.signum = stop_signal() if signum is None else signum


def compare(
    spec: CompareSpec | Plan,
    runs_dir: str | os.PathLike[str] = "runs",
    *,
    workers: int | None = None,
    threads: int = 1,
    progress: bool | Progress | None = None,
    data: Any = None,
    problem: Any = None,
    backend: str = "local",
    address: str | None = None,
    vectorize: bool = True,
    checkpoint_every: int | str | None = "auto",
    nproc: int = 1,
    objective: Any = None,
    start_over: bool = False,
) -> Comparison:
    """Run (or continue) a comparison; return everything it found.

    The returned :class:`Comparison` is a plain value holding what its report shows (tables,
    curves, tuning scores, the landscapes' paths); write the report with
    :func:`descentlab.report.html.render_report` (``descentlab compare --report`` does both).

    Args:
        spec: what to compare (or its :class:`~descentlab.experiments.compare.spec.Plan`,
            :meth:`CompareSpec.plan`, where the caller checked it already).
        runs_dir: the folder in which the run directory ``<runs_dir>/<spec.run_name()>`` is
            made (it holds the store, checkpoints, figures and ``report.html``).
        workers: processes to train in (None: one per CPU core; 1: in this process).
        threads: torch threads per trial.
        progress: True/False, None (show when stderr is a terminal), or a callable
            ``progress(event, info)`` that receives ``"trial"`` and ``"selected"`` events.
        data: ``Splits`` to use instead of loading ``spec.problem``.
        problem: a :class:`~descentlab.problems.problem.Problem` of your own (model factory,
            data, loss, metric) to compare on; ``spec.problem`` may instead name one
            (``"pkg.mod:make_problem"``, ``"path/to/file.py:make_problem"``, ``"charlm"``).
            The returned comparison's ``spec.problem`` carries the data's fingerprint.
        backend: ``"local"`` (worker processes on this machine) or ``"ray"`` (each trial a
            Ray task; see :mod:`descentlab.experiments.ray_runner`). The store, the tables
            and the report are the same either way.
        address: with ``backend="ray"``, the cluster to join (None: start a local Ray
            instance on 127.0.0.1).
        vectorize: train the trials that differ only in hyperparameters or seed together, in
            one vectorized pass (:func:`~descentlab.engine.multirun.train_many`), in the
            worker processes; False runs one trial at a time (``benchmarks/compare.py``
            compares the two). The numbers agree up to floating-point rounding; the
            wall-clock seconds to the target come only from a curve run that trained alone
            (``vectorize=False``, ``descentlab compare --one-at-a-time``).
        checkpoint_every: each trial that trains alone checkpoints every this many steps;
            ``"auto"`` (the default) as often as costs at most 2 % of its time; None only
            where it stops. Run again after an interruption (even ``kill -9``), a comparison
            continues each unfinished trial from its last checkpoint and ends with the table
            it would have given uninterrupted (see
            :class:`~descentlab.experiments.runner.TrialRunner` for which trials train alone;
            with ``backend="ray"`` each checkpoint is kept on this machine:
            :mod:`~descentlab.experiments.resume`). A finished trial's checkpoint is
            removed.
        nproc: train each trial across this many processes of this machine, its model
            sharded with FSDP2 (:mod:`descentlab.engine.launch`): one trial at a time
            (``workers`` 1, not vectorized), the numbers one process's up to float rounding.
        objective: your own training code, a function ``fn(run) -> Score`` (or an
            :class:`~descentlab.experiments.objective.Objective`), trained in each trial
            instead of the engine's loop (:mod:`~descentlab.experiments.objective`); it gets
            the data where ``data`` or ``problem`` is given. ``spec.objective`` may instead
            name one.
        start_over: a run directory whose store is empty, or is not the store its exports
            (``comparison.json``) were made from, is trained again (its exports replaced);
            False: refused in one line (``descentlab compare --force``).

    Returns:
        The :class:`Comparison`: per optimizer (``results``, in the spec's order) its tuned
        setting, test scores over the seeds, steps and seconds to the target, curves and
        tuning scores; ``complete``, ``run_dir`` and the verdict's tables (``table()``).

    Writes:
        The run directory ``<runs_dir>/<spec.run_name()>``: its store ``descentlab.sqlite``
        (every trial a run: config, metrics, summary), the lock ``.lock`` that keeps a second
        process out, and each unfinished trial's checkpoint under ``checkpoints/`` (removed
        once the trial finishes). The report (``report.html``, ``figures/``, ``trials.csv``,
        ``comparison.json``) is :func:`~descentlab.report.html.render_report`'s.

    Raises:
        KeyError: unknown problem, model, optimizer or rule (raised before any training).
        ValueError: bad spec (empty optimizer list, zero budget, target accuracy outside
            [0, 1]...), bad ``workers``, or a run directory that holds another comparison;
            raised before the run directory is written.
        Interrupted: stopped by Ctrl-C or SIGTERM; call again to continue.

    Example:
        A tiny budget (two learning rates per optimizer, 20-step tuning, 40-step runs, two
        seeds on 200 points; seconds):

        >>> import tempfile
        >>> from descentlab.experiments.compare import CompareSpec, compare
        >>> spec = CompareSpec(problem="moons", problem_options={"n_samples": 200},
        ...                    model="mlp", optimizers=["sgd", "adam"], batch_size=32,
        ...                    steps=40, tune_steps=20, lrs_per_optimizer=2, seeds=2,
        ...                    landscapes=())
        >>> folder = tempfile.TemporaryDirectory()
        >>> result = compare(spec, folder.name, workers=1, progress=False)
        >>> [r.label for r in result.results], result.complete
        (['sgd', 'adam'], True)
        >>> files = sorted(p.name for p in result.run_dir.iterdir() if p.is_file())
        >>> result.run_dir.name, files
        ('moons-mlp-...', ['.lock', 'descentlab.sqlite'])
        >>> compare(CompareSpec(problem="moons", optimizers=[]), folder.name)
        Traceback (most recent call last):
        ValueError: optimizers must name at least one optimizer, got an empty list
        >>> folder.cleanup()

    References:
        Schneider, Balles, Hennig, "DeepOBS: a deep learning optimizer benchmark suite", ICLR
        2019 (tune on a grid, rerun the best with several seeds). Sivaprasad et al.,
        "Optimizer benchmarking needs to account for hyperparameter tuning", ICML 2020.
    """
    kind = kind_of(spec, objective)
    if nproc > 1:
        workers, vectorize = _sharded(kind, nproc, workers)
    # what this process says, the trials' worker processes do not say again, nor one another
    with shared_by_one_command():
        plan, data, workers, kind = _resolve(spec, data, problem, workers, kind, objective)
        vectorize = kind.stacked(vectorize)
        spec = plan.spec  # checked once, where it entered: below, the plan holds plain values
        run_dir = Path(runs_dir) / plan.run_name
        if not start_over:  # a store emptied or replaced under a finished comparison's files
            _refuse_a_replaced_store(run_dir)
        files = kind.name_earlier(run_dir, spec)  # (recorded: a later run names what changed)
        # Data loaded by name are reloaded (from the cache) by each worker; given data are sent
        # to each worker once.
        source = DataSource(spec.problem, dict(spec.problem_options), spec.split_seed,
                            spec.val_fraction, data=data, kind=kind)  # fmt: skip
        session = _Session(plan, run_dir, console_progress(progress), workers, kind)
        session.problem_files = files
        if backend == "local" and vectorize and nproc == 1 and kind.prunes_in_pass:
            session.in_pass = (source, threads)  # pruned runs leave their passes (inpass)
        with trial_lines(shows_lines(session.notify)):  # (a trial's steps, rate, time left)
            session.execute(
                functools.partial(make_runner, backend, store_path_of(run_dir), source,
                                  workers=workers, threads=threads, address=address,
                                  vectorize=vectorize, checkpoint_every=checkpoint_every,
                                  nproc=nproc),
                data,
            )  # fmt: skip
        result = session.finish(threads=threads, backend=backend)
        session.close()
        session.notify("done", {"run_dir": str(run_dir), "trials_run": session.count})
        return with_context(result)


def _sharded(kind: Any, nproc: int, workers: int | None) -> tuple[int, bool]:
    """``(workers, vectorize)`` of a comparison whose trials each train across ``nproc`` > 1
    processes: one trial at a time, checked in one line first."""
    from descentlab.engine.launch import check_nproc

    kind.check_nproc(nproc)
    check_nproc(nproc, "cpu")
    if workers not in (None, 1):
        raise ValueError(
            f"--nproc {nproc} trains each trial across {nproc} processes, one trial at a "
            f"time: --workers {workers} does not go with it"
        )
    return 1, False


def _refuse_a_replaced_store(run_dir: Path) -> None:
    """Refuse in one line a run directory whose store was emptied or replaced under its
    finished comparison's files."""
    from descentlab.experiments.earlier import store_refusal

    refusal = store_refusal(run_dir)
    if refusal is not None:
        raise ValueError(refusal)


def _resolve(
    spec: CompareSpec | Plan, data: Any, problem: Any, workers: int | None, kind: Any, code: Any
) -> tuple[Plan, Any, int, Any]:
    """Everything that can be checked without data, checked (the spec's plan); a problem of
    one's own resolved to its data (its fingerprint in ``spec.problem``); the trials' kind
    resolved with ``code`` (the training code given in Python, or None); the number of worker
    processes."""
    custom = data is not None or problem is not None
    plan = spec if isinstance(spec, Plan) else spec.plan(custom_data=custom)
    asked = workers is not None
    if workers is None:
        workers = max(1, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if problem is not None or (data is None and is_problem_ref(plan.spec.problem)):
        resolved, data = resolve_for_compare(plan.spec, problem, workers=workers)
        plan = resolved.plan(custom_data=True, checked=plan)
        custom = True
    plan, kind, custom = kind.resolve(plan, code, custom, workers)
    if plan.spec.batch_size == AUTO_BATCH:
        plan = _fixed_batch(plan, data, custom)
    return plan, data, _bounded_by_trials(plan, workers, asked), kind


def _bounded_by_trials(plan: Plan, workers: int, asked: bool) -> int:
    """At most one worker process per trial the plan runs (more would start and sit idle,
    each holding its memory); announced where ``workers`` was asked for."""
    most = planned_trials(plan)
    if workers <= most:
        return workers
    if asked:
        warnings.warn(
            f"descentlab: {most} worker processes, not {workers}: the comparison runs "
            f"{most} trials (one worker per trial at most)",
            RuntimeWarning,
            stacklevel=4,
        )
    return most


def _fixed_batch(plan: Plan, data: Any, custom: bool) -> Plan:
    """The plan with the default batch fixed from the training data
    (:func:`~descentlab.experiments.compare.spec.default_batch_size`); announced where it is
    not 128."""
    spec = plan.spec
    if data is None:  # loaded by name (from the cache the trials read too)
        source = DataSource(spec.problem, dict(spec.problem_options), spec.split_seed,
                            spec.val_fraction)  # fmt: skip
        data = source.load()
    n_train = data.n_train
    size = default_batch_size(n_train)
    if size != DEFAULT_BATCH_SIZE:
        warnings.warn(
            f"descentlab: batch size {size} (the default min({DEFAULT_BATCH_SIZE}, n_train // "
            f"4) of {n_train} training examples; --batch-size sets another)",
            RuntimeWarning,
            stacklevel=3,
        )
    return dataclasses.replace(spec, batch_size=size).plan(custom_data=custom, checked=plan)


class _Session:
    """One call of :func:`compare` on its run directory: the store, the trials submitted and
    found, and each optimizer's walk from its tuning rounds to its final runs."""

    def __init__(
        self, plan: Plan, run_dir: Path, notify: Progress, workers: int, kind: Any
    ) -> None:
        self.plan, self.run_dir, self.notify, self.workers = plan, run_dir, notify, workers
        self.kind = kind
        self.spec = plan.spec
        self.choices = plan.choices
        self.store: Store | None = None
        self.exp_id: int | None = None
        self.count = 0
        self.found: dict[str, Found] = {}  # by the trials' keys (Trial.key)
        #: by optimizer label: how each of its trials taken so far failed (None: it did not)
        self.ways: dict[tuple[str, str], list[str | None]] = {}
        self.failed: list[Any] = []  # the failed trials' outcomes
        self.submitted: set[str] = set()
        self.finals: set[str] = set()  # labels whose final runs are decided
        self.marked: set[int] = set()  # runs the store says pruning stopped
        self.said: set[tuple[str, str]] = set()  # rungs announced as undecided
        #: (data source, threads) where pruning happens inside the vectorized passes, in this
        #: process (:mod:`~descentlab.experiments.compare.inpass`); None: rung runs restart
        self.in_pass: tuple[DataSource, int] | None = None
        self.tried_in_pass: set[str] = set()  # optimizers whose first round was looked at
        self.task = "classification"
        self.meta: dict[str, Any] = {}
        self.problem_files: dict[str, str] | None = None
        self.provenance: dict[str, Any] = {}
        self.t0 = time.perf_counter()
        # One process works on a run directory at a time; a second identical command waits
        # (saying which process holds it), then finds the trials done.
        self.lock = FolderLock(run_dir, what="run directory")

    def execute(self, make_runner: Callable[[], Any], data: Any) -> None:
        """Start the workers (importing the engine takes seconds) while the data are loaded
        and checked, then run every trial; stopped, the store says so and the folder is
        released."""
        try:
            with _sigterm_as_interrupt(), make_runner() as runner:
                runner.start()
                data, task = _check_on_data(self.plan, data)
                self.lock.acquire()  # creates the run directory (0700: it holds provenance)
                self.open(data, task)
                self.run(runner)
        except (KeyboardInterrupt, Interrupted) as exc:
            self.close(interrupted=True)
            signum = stop_signal(exc)
            raise Interrupted(
                f"comparison stopped by {stop_words(signum)} after {self.count} trial(s); run "
                "the same command again to continue (finished trials are kept)",
                signum,
            ) from exc
        except BaseException:
            self.close()
            # nothing done: take back the folder and store it made (a failed trial is done: its
            # cause is stored, what the stop's line names)
            if self.count == 0:
                remove_created(keep=finished_under)
            raise

    def open(self, data: Any, task: str) -> None:
        """Open the store (refusing one that holds another comparison); note the task, the
        chance level and the score."""
        self.store = store = Store(store_path_of(self.run_dir))
        _refuse_another(store, self.plan, self.run_dir)
        mark_orphans(store, lambda name: name != EXPERIMENT)
        model = self.spec.model or getattr(data, "default_model", None)
        self.task, self.meta = task, getattr(data, "meta", None) or {}
        chance = None if self.kind.own_metric else chance_level(data, self.meta.get("metric"))
        self.metric, self.maximize = score_metric(task, self.meta.get("metric"))
        self.judge = Judge(self.metric, self.maximize, chance)
        self.provenance = {
            "task": task,
            "model": model if isinstance(model, str) else repr(model),
            "chance": chance,
            "metric": self.meta.get("metric"),
            "target": self.meta.get("target"),
            "problem_name": getattr(data, "name", None),  # (the report's title)
            # what the verdict says, not what ran: kept here so that a report re-rendered
            # from the store says it again (the spec's record leaves them out)
            "verdict": {k: getattr(self.spec, k) for k in sorted(VERDICT_ONLY)},
        }
        if self.problem_files:
            self.provenance["problem_files"] = self.problem_files
        said = self.kind.direction(self.spec)  # (or from its first value: self.learn)
        if said is not None:
            self.meta = {"metric": None, "objective": self.spec.objective}
            self.learn(*said)

    def learn(self, maximize: bool | None, name: str | None = None) -> None:
        """An objective's metric is maximized (or not): stored and judged as the verdict's
        accuracy (or loss), under the task that gives it that direction; a later trial whose
        metric goes the other way, or is another, is refused."""
        if maximize is None:
            return
        from descentlab.experiments.kinds.code_run import slot

        said = self.meta.get("objective", {})
        if self.meta.get("metric") is not None:
            if slot(maximize) != self.meta["metric"] or name not in (None, said.get("name")):
                raise ValueError(
                    f"the objective returned {name!r} ({'max' if maximize else 'min'}imized) "
                    f"after {said.get('name')!r} ({'max' if said.get('maximize') else 'min'}"
                    "imized): one metric, one direction per comparison"
                )
            return
        self.task = "classification" if maximize else "regression"
        self.meta = {"metric": slot(maximize),
                     "objective": {**said, "name": name, "maximize": maximize}}  # fmt: skip
        self.metric, self.maximize = score_metric(self.task, self.meta["metric"])
        self.judge = Judge(self.metric, self.maximize, None)
        self.provenance.update(task=self.task, metric=self.meta["metric"],
                               objective=self.meta["objective"])  # fmt: skip
        if self.exp_id is not None:
            assert self.store is not None
            self.store.update_provenance(self.exp_id, self.provenance)

    def advance(self, runner: Any, choice: OptimizerChoice) -> None:
        """Submit what comes next for ``choice``: its next tuning round, or once tuning is
        done, its final runs."""
        if choice.label in self.finals:
            return
        if self.plan.rungs and choice.label not in self.tried_in_pass:
            self.tried_in_pass.add(choice.label)
            self.prune_in_pass(choice)
        notes: list[str] = []
        cands, missing, done = tuning_plan(
            self.plan, choice, self.found, self.metric, self.maximize,
            chance=self.judge.chance, notes=notes,
        )  # fmt: skip
        self.say_undecided(choice, notes)
        self.mark_pruned(cands)
        new = [t for t in missing if t.key not in self.submitted]
        for t in new:
            self.submitted.add(t.key)
        runner.submit_many(new)
        if not done:
            return
        self.finals.add(choice.label)
        best = select(cands, self.maximize)
        setting = final_setting(choice, cands, best)
        self.notify(
            "selected",
            {"choice": choice, "best": best, "candidates": cands, "metric": self.metric,
             "setting": setting, "shown": self.shown()},
        )  # fmt: skip
        if setting is not None:
            trials = final_trials(self.plan, choice, setting)
            for t in trials:
                self.submitted.add(t.key)
            runner.submit_many(trials)

    def prune_in_pass(self, choice: OptimizerChoice) -> None:
        """``choice``'s first tuning round trained in its vectorized passes here, pruned runs
        leaving them at the rungs (:mod:`~descentlab.experiments.compare.inpass`), where it
        can; elsewhere the rung runs restart from step 0, said once."""
        assert self.store is not None
        full, why = inpass.applies(self.plan, choice, self.store)
        if why is None and self.in_pass is None:
            why = "the trials run one at a time, or on Ray"
        if why is not None:
            if why not in ("nothing to prune", "its rung runs are stored already"):
                say = inpass.RESTARTED.format(name=choice.display, why=why)
                if ("restart", say) not in self.said:
                    self.said.add(("restart", say))
                    warnings.warn(say, RuntimeWarning, stacklevel=2)
            return
        assert self.in_pass is not None
        source, threads = self.in_pass
        with torch_threads(threads):
            outcomes = inpass.tune_in_pass(
                self.plan, choice, full, source, self.store, self.metric, self.maximize,
                self.judge.chance,
            )  # fmt: skip
        for out in outcomes:
            self.submitted.add(out.trial.key)
            self.take(out)

    def say_undecided(self, choice: OptimizerChoice, notes: list[str]) -> None:
        """One line, once, for each rung whose scores could not tell ``choice``'s settings
        apart: pruning decided nothing there and the settings train on."""
        for note in notes:
            if (choice.label, note) in self.said:
                continue
            self.said.add((choice.label, note))
            warnings.warn(
                f"descentlab: pruning {choice.display}: {note}; they train on (a larger "
                "--budget or --tune-steps gives the rungs more to go on)",
                RuntimeWarning,
                stacklevel=2,
            )

    def mark_pruned(self, cands: list[Any]) -> None:
        """The store says which runs pruning stopped a setting with (their provenance's
        ``pruned``: the step, the setting's score there, the pruner), once each."""
        assert self.store is not None
        for c in cands:
            if c.pruned_step is None:
                continue
            for rid, status in zip(c.run_ids, c.statuses, strict=True):
                if status != "pruned" or rid is None or rid in self.marked:
                    continue
                note = {"step": c.pruned_step, "score": c.pruned_score, "metric": self.metric,
                        "by": PRUNER_NAME}  # fmt: skip
                self.store.update_provenance(rid, {"pruned": note})
                self.marked.add(rid)

    def total(self) -> int:
        """Trials submitted, plus the final runs not decided yet (refinement rounds add to
        it as they come)."""
        undecided = len(self.choices) - len(self.finals)  # (finals: labels of choices)
        return len(self.submitted) + 2 * len(self.plan.final_seeds) * undecided

    def run(self, runner: Any) -> None:
        """Run every trial, deciding each optimizer's next round as its trials finish. The
        experiment record is opened once the first rounds are submitted (the runner has
        found those the store holds)."""
        self.t0 = time.perf_counter()
        for c in self.choices:
            self.advance(runner, c)
        assert self.store is not None
        self.exp_id = _open_experiment(self.store, self.plan)
        self.store.update_provenance(self.exp_id, self.provenance)
        self.notify(
            "start", {"total": self.total(), "run_dir": str(self.run_dir), "workers": self.workers}
        )
        # every submitted trial run (each optimizer's next round decided as its trials
        # finish), then the sequential verdict's look, until no trial is left (inline: the
        # lr's path enters this module twice, tests/test_lr_path.py)
        while runner.pending:
            while runner.pending:
                out = runner.next_outcome()
                if out.status == "interrupted":
                    raise Interrupted(f"trial {out.trial.config.name} was interrupted")
                self.take(out)
                if out.status == "failed":  # (stops only where every trial fails alike)
                    self.failed.append(out)
                    self.every_trial_failed(runner, out)
                if out.trial.phase == "tune":
                    label = out.trial.label
                    self.advance(runner, next(c for c in self.choices if c.label == label))
            self.add_seeds(runner)
        self.say_failed()

    def take(self, out: Any) -> None:
        """A finished trial: judged, found, counted and shown."""
        if out.run_id is not None:  # (an own metric's direction: the engine's is known)
            self.learn(*self.kind.learned(self.store, out))
        self.count += 1
        failure = self.judge(self.store, out.run_id, out.status, out.summary, out.trial.phase)
        if rung_of(out.trial) is not None and out.status not in ("diverged", "failed"):
            failure = None  # a rung's run is judged by pruning, at its end (not failed)
        self.found[out.trial.key] = Found(out.run_id, out.status, out.summary, failure)
        way = (out.way or out.cause or "failed") if out.status == "failed" else None
        self.ways.setdefault((out.trial.label, out.trial.phase), []).append(way)
        self.notify(
            "trial",
            {"outcome": out, "done": self.count, "total": self.total(), "metric": self.metric,
             "failure": failure, "shown": self.shown()},
        )  # fmt: skip

    def every_trial_failed(self, runner: Any, out: Any) -> None:
        """A failed trial stops the comparison only when every trial of its optimizer's phase
        (tuning, curves, test seeds) taken so far failed the same way (the same error at the
        same line of user code, or its workers dying) and none of them is still pending: one
        line, the first failure's words."""
        label, phase = out.trial.label, out.trial.phase
        ways = self.ways.get((label, phase), [])
        if len(set(ways)) != 1 or ways[0] is None or runner.pending_of(label, phase):
            return
        from descentlab._usercode import UserCodeFailed
        from descentlab.experiments.trial import TrialError

        display = next(c.display for c in self.choices if c.label == label)
        first = next(o for o in self.failed if (o.trial.label, o.trial.phase) == (label, phase))
        n = len(ways)
        said = (f"every {_PHASES.get(phase, phase)} trial of {display} failed the same way "
                f"({n} of {n}): {first.said or first.cause}")  # fmt: skip
        # (the user's code failed: a ValueError of its own, naming its line; else the workers
        # running the trials died: the comparison's error)
        raise UserCodeFailed(said, first.cause, first.way) if first.said else TrialError(said)

    def say_failed(self) -> None:
        """The trials that failed (their code raised, or their worker died), said once for
        each way they failed: counted as failed trials, their causes stored."""
        from descentlab.experiments.runner import trial_words

        ways: dict[str, list[Any]] = {}
        for out in self.failed:
            ways.setdefault(out.way or out.cause or "", []).append(out)
        for outs in ways.values():
            names = ", ".join(trial_words(o.trial) for o in outs[:3])
            more = f" and {len(outs) - 3} more" if len(outs) > 3 else ""
            runs = ", ".join(str(o.run_id) for o in outs[:3])
            warnings.warn(
                f"descentlab: {len(outs)} trial(s) failed: {names}{more}: {outs[0].cause} "
                f"(run {runs}{'...' if more else ''}); counted as failed trials (trained again "
                "when the same command runs again)",
                RuntimeWarning,
                stacklevel=2,
            )

    def shown(self) -> str | None:
        """Your own code's metric's name (its ``Score``'s), as the progress lines say it; None
        for a problem's."""
        said = self.kind.metric_said(self.meta.get("objective"), None)
        return said.get("name") if isinstance(said, dict) else None

    def add_seeds(self, runner: Any) -> None:
        """Once every submitted trial is done: the sequential verdict's look; the test seeds its
        next look needs (the chosen optimizer's and each open comparison's) are submitted
        (:mod:`~descentlab.experiments.compare.sequential`)."""
        assert self.store is not None
        if len(self.finals) < len(self.choices):
            return
        cmp = collect(
            self.plan, self.store, task=self.task, run_dir=self.run_dir,
            metric=self.meta.get("metric"),
        )  # fmt: skip
        want = cmp.more_seeds()
        new = []
        for r in cmp.results:
            n = want.get(r.label)
            if not n or r.best_setting is None:
                continue
            trials = final_trials(self.plan, r.choice, r.best_setting, test_seeds=n)
            new += [t for t in trials if t.phase == "refit" and t.key not in self.submitted]
        if not new:
            return
        for t in new:
            self.submitted.add(t.key)
        names = {r.label: r.choice.display for r in cmp.results}
        info = {"want": want, "trials": len(new), "total": self.total(), "names": names}
        self.notify("seeds", info)
        runner.submit_many(new)

    def finish(self, *, threads: int, backend: str) -> Comparison:
        """The results, read back from the store; the experiment record marked completed
        with this session's numbers."""
        assert self.store is not None and self.exp_id is not None
        store, exp_id = self.store, self.exp_id
        # runs of an earlier, killed session whose processes were still exiting when this one
        # opened the store (alive then, not yet zombies) are marked now that they are gone
        mark_orphans(store, lambda name: name != EXPERIMENT)
        elapsed = time.perf_counter() - self.t0
        result = collect(
            self.plan, store, task=self.task, run_dir=self.run_dir, metric=self.meta.get("metric")
        )
        store.set_status(exp_id, "completed", summary={"table": result.table(timings=False)})
        session = {"seconds": round(elapsed, 2), "workers": self.workers, "threads": threads,
                   "trials_run": self.count, "backend": backend}  # fmt: skip
        sessions = [*store.get_run(exp_id).provenance.get("sessions", []), session]
        store.update_provenance(exp_id, {"sessions": sessions})
        result.record = store.get_run(exp_id)
        return result

    def close(self, *, interrupted: bool = False) -> None:
        """Close the store (marking the experiment interrupted, if it was), then release the
        run directory."""
        if self.store is not None:
            if interrupted:
                with contextlib.suppress(Exception):
                    self.store.set_status(
                        self.exp_id, "interrupted", message="stopped; run again to continue"
                    )
            self.store.close()
            self.store = None
        self.lock.release()


def _refuse_another(store: Any, plan: Plan, run_dir: Path) -> None:
    """Refuse a run directory whose store holds another comparison (before any trial of this
    one is submitted)."""
    others = store.list_runs(name=EXPERIMENT)
    new = plan.record

    def ran(rec: Any) -> dict[str, Any]:  # (what the verdict says is no other comparison)
        return {k: v for k, v in rec.config.get("spec", {}).items() if k not in VERDICT_ONLY}

    if not others or any(ran(r) == new for r in others):
        return
    old = ran(others[-1])
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    raise ValueError(
        f"{run_dir} holds a comparison with another configuration (differs in: "
        f"{', '.join(diff)}); choose another --name or run directory"
    )


def _open_experiment(store: Any, plan: Plan) -> int:
    """Find this spec's experiment record (marked running again), or create it."""
    config = {"experiment": EXPERIMENT, "spec": plan.record}
    found = store.find_run_by_config(config, status=None)
    if found is not None:
        store.set_status(found.id, "running")
        return found.id
    return store.create_run(
        config, name=EXPERIMENT, seed=plan.spec.seed, provenance=provenance(plan.spec.seed)
    )


def prepare(spec: CompareSpec, data: Any = None) -> tuple[Any, str]:
    """Validate ``spec`` and load the data, checking model and optimizers on it -- every
    error a comparison can raise before training is raised here.

    Returns:
        ``(splits, task)``.
    """
    return _check_on_data(spec.plan(custom_data=data is not None), data)


def _check_on_data(plan: Plan, data: Any) -> tuple[Any, str]:
    """:func:`prepare`'s checks of a checked spec's plan, after the spec's own."""
    spec = plan.spec
    if kind_of(spec).owns_data(spec):
        return None, "regression"  # (the code owns its data; its direction decides)
    if data is None:
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
    check_batch_size(spec.batch_size, data.n_train)  # (None: a stream without a length)
    if spec.cv_folds is not None:  # folds of the training and validation examples together
        if data.n_train is None or data.n_val is None:
            raise ValueError(
                f"--cv (cv_folds) needs training and validation data of known length; "
                f"problem {data.name!r} reads a stream (an IterableDataset): drop --cv"
            )
        pool = data.n_train + data.n_val
        if spec.cv_folds > pool:
            raise ValueError(
                f"cv_folds (--cv) must be at most the {pool} training and validation examples "
                f"(one per fold at least), got {spec.cv_folds}"
            )
    # The run config every trial starts from, through the engine's own checks (a trial adds
    # the optimizer, its settings and the seeds the spec's checks passed).
    plan.base.validate()
    return data, task


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (``kill PID``) stops a comparison like Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        note_interrupt(signum)
        exc = KeyboardInterrupt("SIGTERM")
        exc.signum = signum  # type: ignore[attr-defined]  # passed on to the workers as it
        raise exc

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
