"""Your own training code as what a comparison compares optimizers on.

An *objective* is a function ``fn(run) -> Score``: for one trial of the protocol it trains with
the optimizer :class:`Run` builds for ``run.steps`` steps from ``run.seed``, evaluates on
``run.split`` and returns its metric with the metric's direction; each trial is one call of
``fn`` (:func:`run_trial`). A Hugging Face ``Trainer`` and a Lightning module are objectives too
(:mod:`~descentlab.experiments.frameworks`). What the protocol does with it and what descentlab
cannot check: docs/compare.md ("Your own training code").
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import inspect
import math
import os
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from descentlab import Score
from descentlab._announce import once
from descentlab.experiments.compare.spec import FORMS

__all__ = ["Objective", "Run", "Score", "for_compare", "learned", "run_trial", "slot"]


def slot(maximize: bool) -> str:
    """The metric name an objective's values are stored and judged under: ``"accuracy"`` for
    a maximized metric, ``"loss"`` for a minimized one (the verdict's two directions), with
    the metric's own name in the protocol's lines."""
    return "accuracy" if maximize else "loss"


class _Stop(BaseException):
    """Ends the objective's call from inside it (a non-finite report): a ``BaseException``, so
    that the function's own ``except Exception`` does not swallow it."""


class Run:
    """What the objective is given for one trial.

    Attributes:
        phase: ``"tune"``, ``"curve"`` or ``"refit"``.
        label: the optimizer's label.
        split: the split to evaluate and report on: ``"val"`` (tuning and curve runs) or
            ``"test"`` (refit runs, which train on training + validation data).
        seed: the trial's seed (seed the model's initialisation and the data order with it).
        steps: optimizer steps to take (a pruning rung's run takes fewer, its schedule is the
            full trial's).
        eval_every: the steps at which to report (and at ``steps``).
        batch_size: the comparison's ``--batch-size``, or None where it set none.
        device: the comparison's torch device.
        hyper: the trial's hyperparameters (:meth:`optimizer` applies them).
        splits: where descentlab gives the data: the trial's splits (tuning: training and
            validation only, the test split sealed; refit: training + validation, and the
            test split), else None.
        train, eval: where descentlab gives tensors: ``(x, y)`` to train on and to evaluate
            on (``split``'s); else None.
    """

    def __init__(self, trial: Any, splits: Any, state: _State) -> None:
        cfg = trial.config
        self.phase, self.label = trial.phase, trial.label
        self.split = "test" if trial.phase == "refit" else "val"
        self.seed, self.steps, self.eval_every = cfg.seed, cfg.steps, cfg.eval_every or cfg.steps
        self.batch_size, self.device, self.hyper = cfg.batch_size, cfg.device, dict(cfg.hyper)
        self._config, self._state = cfg, state
        if splits is not None and self.split == "test":
            splits = copy.copy(splits)  # (the cached splits stay sealed)
            splits.unseal_test()
        self.splits = splits
        self.train = self.eval = None
        if splits is not None and hasattr(splits, "x_train"):
            self.train = (splits.x_train, splits.y_train)
            test = self.split == "test"
            self.eval = (splits.x_test, splits.y_test) if test else (splits.x_val, splits.y_val)

    def optimizer(self, params: Any) -> Any:
        """The trial's optimizer over ``params`` (a ``torch.optim.Optimizer``)."""
        from descentlab.engine.building import make_optimizer

        opt = make_optimizer(self._config.optimizer, list(params), self._config.hyper)
        self._state.watch(opt)
        return opt

    def scheduler(self, optimizer: Any) -> Any:
        """The trial's per-step schedule of ``optimizer``'s hyperparameters (warmup, decay: a
        :class:`~descentlab.schedules.Scheduler`; constant where the trial has none): call
        its ``step()`` after each optimizer step."""
        from descentlab.engine.building import make_schedulers
        from descentlab.schedules import Scheduler, constant

        made = make_schedulers(optimizer, self._config.schedule, self._config.steps)[0]
        if made is None:
            return Scheduler(optimizer, {"lr": constant(optimizer.param_groups[0]["lr"])})
        self._state.scheduled = self._state.scheduled or 0
        stepper = made.step

        def step(*args: Any, **kwargs: Any) -> Any:
            self._state.scheduled += 1
            return stepper(*args, **kwargs)

        made.step = step  # (counted: a schedule the trial tunes must be applied)
        return made

    def batches(self, start: int = 0) -> Iterator[tuple[Any, Any]]:
        """With descentlab's data (``run.train``): the trial's mini-batches ``(x, y)``, one a
        step for steps ``start + 1`` to :attr:`steps`, in the order a ``Problem``'s run draws
        them (its seed's data order, ``--batch-size``, a new permutation each epoch; the whole
        training set each step where the comparison sets no batch size). ``start``: the step
        a restored trial goes on after."""
        from descentlab.engine.loop import Batches

        x, y = self._given("batches")
        order = Batches([self.seed], x, y, self.batch_size, False)
        for step in range(self.steps):
            xb, yb, _ = order.next()
            if step >= start:
                yield xb, yb

    def evaluate(self, model: Any, loss_fn: Any = None) -> dict[str, float]:
        """With descentlab's data: ``model``'s metrics on ``run.eval`` as a ``Problem``'s run
        evaluates them (eval mode, no gradients): ``{"loss": ..., "accuracy": ...}`` for
        classification, ``{"loss": ..., "rmse": ...}`` for regression. ``loss_fn``: the
        problem's loss where None."""
        from descentlab.engine.evaluation import evaluate

        x, y = self._given("evaluate")
        loss_fn = self._loss() if loss_fn is None else loss_fn
        return evaluate(model, x, y, loss_fn, classification=self._classification)

    def score(self, model: Any, loss_fn: Any = None) -> Score:
        """With descentlab's data: ``model``'s :class:`Score` as a ``Problem``'s verdict
        judges it -- its accuracy (classification) or loss on ``run.eval``, with each test
        example's value in a refit run, so that the verdict pairs by seed and by example."""
        from descentlab.experiments.test_outcomes import per_example

        x, y = self._given("score")
        loss_fn = self._loss() if loss_fn is None else loss_fn
        metric = "accuracy" if self._classification else "loss"
        value = self.evaluate(model, loss_fn)[metric]
        examples = None
        if self.split == "test":
            each = per_example(model, x, y, loss_fn, classification=self._classification)
            examples = each[metric]
        bounds = (0.0, 1.0) if self._classification else None
        return Score(value, self._classification, metric, examples, bounds)

    def _given(self, what: str) -> tuple[Any, Any]:
        if self.train is None or self.eval is None:
            raise ValueError(
                f"run.{what}() needs descentlab's data (compare with --problem, or problem= or "
                "data= in Python); this objective owns its data"
            )
        return self.train if what == "batches" else self.eval

    @property
    def _classification(self) -> bool:
        return getattr(self.splits, "task", None) == "classification"

    def _loss(self) -> Any:
        from descentlab import losses

        made = getattr(self.splits, "default_loss", None)  # (a name, or the problem's loss)
        return losses.get(made) if isinstance(made, str) else made

    def report(self, step: int, value: float) -> None:
        """The metric on ``split`` after ``step`` steps: a point of the learning curve. A
        value that is not finite ends the trial as diverged."""
        self._state.report(int(step), value)

    def checkpoint(self, step: int, state: Mapping[str, Any]) -> None:
        """Keep ``state`` (tensors, numbers, lists, dicts: ``state_dict()``\\ s) as the
        trial's state after ``step``: written when the comparison's ``--checkpoint-every``
        says it is due (``auto``: at most 2 % of the trial's time), so call it as often as
        you like; a trial stopped in any way continues from the last one written."""
        self._state.checkpoint(int(step), state)

    def checkpoint_due(self, step: int) -> bool:
        """Whether :meth:`checkpoint` at ``step`` would write (to build an expensive state
        only then)."""
        clock = self._state.clock
        return clock is not None and bool(clock(int(step)))

    def restore(self) -> tuple[int, dict[str, Any]] | None:
        """``(step, state)`` of the checkpoint this trial continues from, or None (a fresh
        start): load your model's, optimizer's and scheduler's state from it and go on after
        ``step``."""
        return self._state.saved


@dataclass
class _State:
    """One trial as the objective runs: its reports (written to the store when it returns,
    under the name its direction gives), its checkpoints."""

    store: Any
    run_id: int
    record: dict[str, Any]
    where: str
    clock: Any
    path: Path
    after: Callable[[int, Path], None] | None
    steps: int = 0
    device: str = "cpu"
    saved: tuple[int, dict[str, Any]] | None = None
    built: Any = None
    rows: list[tuple[int, float]] = dataclasses.field(default_factory=list)
    diverged: str | None = None
    #: steps the optimizer descentlab built took in this call, and whether its parameters were
    #: changed in place between two of them by something else
    stepped: int = 0
    moved: bool = False
    #: the trial's schedule's steps (None: the trial has no schedule, or it was never made)
    scheduled: int | None = None

    def watch(self, opt: Any) -> None:
        """Count ``opt``'s steps, and notice its parameters changed in place between two of
        them (another optimizer stepping them: their version counters move)."""
        self.built = opt
        params = [p for g in opt.param_groups for p in g["params"]]
        _on_the_device(params, self.device, self.where, "were given to run.optimizer")
        seen: list[list[int]] = []

        def before(*_: Any) -> None:
            if seen and seen[0] != [p._version for p in params]:
                self.moved = True

        def after(*_: Any) -> None:
            self.stepped += 1
            seen[:] = [[p._version for p in params]]

        opt.register_step_pre_hook(before)
        opt.register_step_post_hook(after)

    def report(self, step: int, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                value = float(value)  # (a 0-d tensor, a NumPy number)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{self.where}: run.report(step, value) takes a number, got "
                    f"{type(value).__name__} at step {step}"
                ) from None
        if not 0 < step <= self.steps or (self.rows and step < self.rows[-1][0]):
            after = f" after step {self.rows[-1][0]}" if self.rows else ""
            raise ValueError(
                f"{self.where}: run.report(step, value) at step {step}{after}: report the "
                f"steps 1 to {self.steps} in increasing order"
            )
        if not math.isfinite(value):
            self.diverged = f"reported {value} at step {step}"
            raise _Stop
        self.rows.append((step, float(value)))

    def checkpoint(self, step: int, state: Mapping[str, Any]) -> None:
        if self.clock is None or not self.clock(step):
            return
        import time

        from descentlab.engine.checkpoint import save_checkpoint

        t0 = time.perf_counter()
        rows = [[s, v] for s, v in self.rows]  # (the reports so far travel with it)
        save_checkpoint(
            {"step": step, "config": self.record, "rows": rows, "state": dict(state)}, self.path
        )
        if "checkpoint" not in self.store.artifacts(self.run_id):
            self.store.add_artifact(self.run_id, "checkpoint", self.path, kind="checkpoint")
        self.clock.written(time.perf_counter() - t0)
        if self.after is not None:
            self.after(self.run_id, self.path)

    def load(self) -> None:
        """The checkpoint at :attr:`path` as the state to continue from (CheckpointError:
        it fails its verification, or another trial wrote it)."""
        from descentlab.engine.checkpoint import CheckpointError, checksum_path, load_checkpoint

        if not (self.path.is_file() or checksum_path(self.path).is_file()):
            return
        got = load_checkpoint(self.path)
        if got.get("config") != self.record or not isinstance(got.get("step"), int):
            raise CheckpointError(f"checkpoint {self.path} was not written by this trial")
        self.saved = (got["step"], got["state"])
        self.rows = [(int(s), float(v)) for s, v in got["rows"]]


@dataclass
class Objective:
    """An objective in one of its :data:`FORMS`, by reference or as a function.

    Attributes:
        form: ``"function"``, ``"hf_trainer"`` or ``"lightning"``.
        ref: where it is (``path/file.py:fn``, ``package.module:fn``; a function given in
            Python: its module and name, for the record).
        metric: the Trainer's or module's metric the verdict reads (``eval_loss``,
            ``val_acc``), with ``maximize`` (None: minimized where its name ends in
            ``loss``, else maximized, as the Trainer's ``greater_is_better``).
        fn: the function itself (None: imported from ``ref`` where it is first called).
        by_ref: worker processes import ``fn`` again by ``ref`` rather than unpickle it.
        data: descentlab gives each trial its data (``run.splits``, ``run.train``,
            ``run.eval``); False: the objective owns its data.
    """

    form: str
    ref: str
    metric: str | None = None
    maximize: bool | None = None
    fn: Callable[..., Any] | None = dataclasses.field(default=None, compare=False)
    by_ref: bool = True
    data: bool = False
    #: the files of an earlier run continued on purpose (``--continue-run``): recorded as its
    #: identity whatever the files hold now
    pinned: dict[str, str] | None = dataclasses.field(default=None, compare=False)
    #: the run directory it continues (its comparison must be this one's)
    continues: str | None = dataclasses.field(default=None, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.by_ref:
            state["fn"] = None
        return state

    @property
    def function(self) -> Callable[..., Any]:
        if self.fn is None:
            from descentlab.problems.problem import load_function

            self.fn = load_function(self.ref, f"{FORMS[self.form]} {self.ref!r}")
        return self.fn

    def __call__(self, run: Run) -> Any:
        if self.form == "function":
            return self.function(run)
        from descentlab.experiments import frameworks

        train = frameworks.hf_trainer if self.form == "hf_trainer" else frameworks.lightning
        return Score(train(self.function, run, self.metric), self.direction, str(self.metric))

    @property
    def direction(self) -> bool:
        """Whether the Trainer's or module's metric is maximized."""
        if self.maximize is not None:
            return self.maximize
        return not str(self.metric).endswith("loss")

    def files(self) -> dict[str, str]:
        """``{path: hash}`` of the code the objective is made of: its module's file, the
        user's own modules it imports and the data files they name
        (:func:`~descentlab.problems.user_files.user_files`); a function without a file: its
        source."""
        from descentlab.problems.user_files import user_files

        fn = self.function
        module = inspect.getmodule(fn)
        found = user_files(module) if module is not None else {}
        if not found:
            try:
                data = inspect.getsource(fn).encode()
            except (TypeError, OSError):
                data = self.ref.encode()
            found = {"<source>": hashlib.sha256(data).hexdigest()[:16]}
        return found

    def fingerprint(self) -> str:
        """A hash of :meth:`files`, so that changed code or data starts a new comparison."""
        from descentlab.problems.user_files import digest

        return digest(self.files())

    def record(self) -> dict[str, Any]:
        """What the comparison's spec records of it (its digest names the run directory)."""
        from descentlab.problems.user_files import changed, digest

        files = self.files()
        if self.pinned is not None:
            moved = changed(self.pinned, files)
            if moved:
                _say_once(
                    self.ref + " pinned",
                    f"descentlab: continuing the earlier comparison on purpose: {', '.join(moved)} "
                    "changed since its trials, which are reused as they are",
                )
            files = self.pinned
        out = {"form": self.form, "ref": self.ref, "code": digest(files), "files": files}
        if self.form != "function":
            out.update(metric=self.metric, maximize=self.direction)
        return out


def _where(objective: Objective, trial: Any) -> str:
    cfg = trial.config
    return f"{FORMS[objective.form]} {objective.ref} (trial {cfg.name}, seed {cfg.seed})"


def run_trial(
    store: Any,
    objective: Objective,
    trial: Any,
    splits: Any,
    checkpoint_every: Any = None,
    after_checkpoint: Callable[[Any, int, Path], None] | None = None,
    *,
    resume: int | None = None,
    restart: bool = False,
) -> tuple[int, str, dict[str, Any]]:
    """One trial: ``objective`` called with its :class:`Run`, recorded in ``store`` as a run of
    the trial's config; ``(run id, status, summary)``.

    ``resume``: the id of the trial's interrupted run, continued from its last checkpoint
    (its reports after that step deleted; ``restart``: from step 0, as where it wrote none).

    Raises:
        ValueError: one line naming the objective and the trial -- it raised, returned
            something that is not a :class:`Score`, reported something that is not a number,
            never built the trial's optimizer, or read the sealed test split.
        CheckpointError: the checkpoint to continue from fails its verification (the caller
            sets it aside and starts over).
    """
    from descentlab._usercode import genuine_interrupt
    from descentlab.engine.loop import CheckpointClock
    from descentlab.engine.run import _default_checkpoint
    from descentlab.problems._user import failure
    from descentlab.problems.data import TestSetSealedError
    from descentlab.store import provenance

    cfg, where, record = trial.config, _where(objective, trial), trial.record_config()
    if resume is None:
        run_id = store.create_run(
            record, name=cfg.name, seed=cfg.seed,
            provenance=provenance(cfg.seed, pid=os.getpid(), hostname=socket.gethostname()),
        )  # fmt: skip
    else:
        run_id = resume
    art = store.artifacts(run_id).get("checkpoint")
    path = Path(art["path"]) if art else _default_checkpoint(store, run_id)
    clock = None if checkpoint_every is None else CheckpointClock(checkpoint_every)
    ship = None if after_checkpoint is None else (lambda i, p: after_checkpoint(trial, i, p))
    state = _State(store, run_id, record, where, clock, path, ship, cfg.steps, cfg.device)
    if resume is not None:
        if not restart:
            state.load()
        store.set_status(run_id, "running", expect=("running", "interrupted", "failed"))
        store.truncate_metrics(run_id, after_step=-1)  # (its reports are in the checkpoint)
        store.update_provenance(run_id, {"pid": os.getpid()})
    try:
        with _kept_as_it_was(where.split(" (trial")[0]):
            got = objective(Run(trial, splits, state))
    except _Stop:
        got = None
    except TestSetSealedError:
        store.set_status(run_id, "failed", message="read the sealed test split")
        raise ValueError(
            f"{where} read the test split in a {trial.phase} trial: while tuning (and in the "
            "curve runs) evaluate on run.eval, the validation split; the test split is the "
            "refit runs' (run.split says which)"
        ) from None
    except BaseException as exc:
        if genuine_interrupt(exc):  # (Ctrl-C: the next session continues the trial)
            store.set_status(run_id, "interrupted", message="stopped; run again to continue")
            raise
        store.set_status(run_id, "failed", message=failure(exc))
        raise ValueError(f"{where} failed: {failure(exc)}") from None
    return run_id, *_finish(state, got, trial, where)


def _finish(state: _State, got: Any, trial: Any, where: str) -> tuple[str, dict[str, Any]]:
    """The trial's status and summary from what the objective returned; stored."""
    store, run_id, steps = state.store, state.run_id, trial.config.steps
    if state.built is None and state.diverged is None:
        store.set_status(run_id, "failed", message="never built its optimizer")
        raise ValueError(
            f"{where} never built its optimizer with run.optimizer(params): there is no "
            "optimizer to compare"
        )
    if (got is None and state.diverged is None) or (got is not None and not isinstance(got, Score)):
        kind = type(got).__name__
        store.set_status(run_id, "failed", message=f"returned {kind}")
        hint = " (is its `return` missing?)" if got is None else ""
        raise ValueError(
            f"{where} returned {kind}{hint}: an objective returns "
            "Score(value, maximize=True|False[, name=..., examples=...])"
        )
    if got is not None and (
        isinstance(got.value, bool | str) or not isinstance(got.maximize, bool)
    ):
        bad = f"value {got.value!r}" if isinstance(got.value, bool | str) else (
            f"maximize {got.maximize!r}")  # fmt: skip
        store.set_status(run_id, "failed", message=f"returned a Score with {bad}")
        raise ValueError(
            f"{where} returned a Score with {bad}: its value is a number, maximize True or False"
        )
    try:
        bounds = _bounds(got, where) if got is not None else None
    except ValueError:
        store.set_status(run_id, "failed", message="returned a Score with bad bounds")
        raise
    if state.diverged is None:
        _check_wiring(state, trial, where)
    split = "test" if trial.phase == "refit" else "val"
    summary: dict[str, Any] = {"steps": steps}
    name = "objective"
    if got is not None:
        value = float(got.value)
        name = slot(bool(got.maximize))
        if not math.isfinite(value):
            state.diverged = f"returned {value}"
        else:
            summary[f"{split}/{name}"] = value
            state.rows.append((steps, value))  # (the value returned is the last step's)
        said = {"metric": str(got.name), "maximize": bool(got.maximize)}
        if bounds is not None:  # (JSON: an infinite end as null)
            said["bounds"] = [v if math.isfinite(v) else None for v in bounds]
        store.update_provenance(run_id, {"objective": said})
    last = dict(state.rows)  # (a step reported twice: its last value)
    store.log_metrics(run_id, [(s, split, name, v) for s, v in sorted(last.items())])
    if trial.phase == "refit" and got is not None and state.diverged is None:
        _store_examples(store, run_id, got, name)
    status = "completed"
    if state.diverged is not None:
        status = "diverged"
        _say_once(
            state.where.split(" (trial")[0],
            f"descentlab: {where} {state.diverged}: a trial whose values are not finite counts "
            "as diverged, as a run whose loss goes non-finite (said once)",
        )
    store.set_status(run_id, status, message=state.diverged, summary=summary)
    return status, summary


def _bounds(got: Score, where: str) -> tuple[float, float] | None:
    """A Score's ``bounds`` as two floats ``low < high``, its finite value inside them, or one
    clear line; None where it has none."""
    if got.bounds is None:
        return None
    b = got.bounds
    ok = isinstance(b, tuple | list) and len(b) == 2
    ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in b)
    if not ok or not float(b[0]) < float(b[1]):
        raise ValueError(
            f"{where} returned a Score with bounds {b!r}: bounds is (low, high) with low < high "
            "(an end may be infinite), or None"
        )
    low, high = float(b[0]), float(b[1])
    value = float(got.value)
    if math.isfinite(value) and not low <= value <= high:
        raise ValueError(f"{where} returned a Score of {value} outside its bounds {b!r}")
    return low, high


def _check_wiring(state: _State, trial: Any, where: str) -> None:
    """ValueError (the run marked failed) where the trial's numbers cannot be the optimizer's
    and schedule's descentlab gave: they took fewer steps than the objective reported, or
    something else changed the parameters between their steps."""
    start = state.saved[0] if state.saved is not None else 0
    reported = max([s for s, _ in state.rows] + [trial.config.steps])
    steps = start + state.stepped
    wrong = None
    if steps != reported:
        wrong = (
            f"the optimizer descentlab gave was stepped {state.stepped} times in "
            f"{reported - start} steps: step the one run.optimizer(params) returns, once a step"
        )
        if steps > reported:
            wrong += f", for run.steps = {trial.config.steps} steps (the equal budget)"
    elif state.built is not None and (moved := _on_the_device(state.built, state.device)):
        wrong = moved
    elif state.moved:
        wrong = (
            "the parameters given to run.optimizer(params) were changed in place between two "
            "of its steps by something else (another optimizer?): only the trial's optimizer "
            "may step them"
        )
    elif state.stepped and (state.scheduled or 0) < state.stepped and _per_step(trial.config):
        sched = ", ".join(f"{k}={v}" for k, v in _per_step(trial.config).items())
        wrong = (
            f"the trial's schedule ({sched}) was stepped {state.scheduled or 0} times in "
            f"{state.stepped} optimizer steps: call step() of run.scheduler(optimizer) after "
            "each optimizer step, or compare without schedules (no --budget)"
        )
    if wrong is not None:
        state.store.set_status(state.run_id, "failed", message=wrong)
        raise ValueError(f"{where}: {wrong}")


def _on_the_device(given: Any, device: str, where: str | None = None, how: str = "are") -> str:
    """Where parameters (a list, or an optimizer's) are not all on the comparison's device:
    what to say (ValueError naming ``where`` when it is given); else ``""``."""
    import torch

    if hasattr(given, "param_groups"):
        given = [p for g in given.param_groups for p in g["params"]]
    want = torch.device(device)
    found = sorted({str(p.device) for p in given if p.device.type != want.type})
    if not found:
        return ""
    text = (
        f"the parameters that {how} are on {', '.join(found)}, the comparison's device is "
        f"{device}: leave the model where the run puts it (--device chooses; run.device says)"
    )
    if where is not None:
        raise ValueError(f"{where}: {text}")
    return text


@contextlib.contextmanager
def _kept_as_it_was(what: str) -> Iterator[None]:
    """An objective's call, with what it may change for the rest of the process set back and
    said once: torch's default dtype and thread count, the working folder; threads and child
    processes it leaves running are said once (they would run beside the next trials)."""
    import multiprocessing
    import threading

    import torch

    from descentlab.problems.problem import folder_kept

    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    before = set(threading.enumerate())
    children = set(multiprocessing.active_children())
    try:
        with folder_kept(what):
            yield
    finally:
        left = []
        if torch.get_default_dtype() != dtype:
            left.append(f"torch's default dtype {torch.get_default_dtype()} -> set back to {dtype}")
            torch.set_default_dtype(dtype)
        if torch.get_num_threads() != threads:
            left.append(f"torch's threads {torch.get_num_threads()} -> set back to {threads}")
            torch.set_num_threads(threads)
        alive = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if alive:
            left.append(f"{len(alive)} thread(s) still running ({alive[0].name})")
        procs = [c for c in multiprocessing.active_children() if c not in children]
        if procs:
            left.append(f"{len(procs)} child process(es) still running (pid {procs[0].pid})")
        if left:
            _say_once(
                what + " left",
                f"descentlab: {what} changed what the trials after it share: "
                + "; ".join(left)
                + " (each trial must leave the process as it found it)",
            )


def _per_step(cfg: Any) -> dict[str, Any]:
    """The trial's per-step schedules as its config spells them (``{}``: none)."""
    if not cfg.schedule:
        return {}
    from descentlab.engine.building import split_schedules

    steps = split_schedules(cfg.schedule, cfg.steps)[0]
    return {k: v for k, v in cfg.schedule.items() if k in steps}


def _store_examples(store: Any, run_id: int, got: Score, name: str) -> None:
    """A refit run's per-example test values, stored where their mean is the returned
    value; else the run's provenance says why there are none (the verdict then pairs by seed
    only)."""
    import numpy as np

    from descentlab.experiments.test_outcomes import OUTCOMES_KEY, save

    if got.examples is None:
        store.update_provenance(run_id, {OUTCOMES_KEY: "the objective returned one number per run"})
        return
    values = np.asarray(got.examples, dtype=float).reshape(-1)
    mean = float(values.mean()) if values.size else math.nan
    if not math.isclose(mean, float(got.value), rel_tol=1e-4, abs_tol=1e-6):
        why = f"the mean of its {values.size} examples' values {mean:.6g} is not {got.value:.6g}"
        store.update_provenance(run_id, {OUTCOMES_KEY: f"not stored: {why}"})
        return
    save(store, run_id, {name: values})


def _say_once(key: str, text: str) -> None:
    """A warning said once per ``key`` in this process."""
    once(("objective", key), text, stacklevel=3)


def for_compare(spec: Any, given: Any, *, data: bool, workers: int) -> tuple[Any, Objective]:
    """The comparison's objective: ``given`` (a function ``fn(run)``, or an
    :class:`Objective`) or the one ``spec.objective`` names, checked (it imports, and can go to
    worker processes); and the spec that records it with its code's hash -- changed code
    starts a new comparison -- with no time to a target accuracy (the objective's metric is
    its own). ``data``: descentlab gives each trial its data."""
    import pickle

    from descentlab.problems.problem import absolute_ref, problem_slug

    rec = dict(spec.objective or {})
    if given is None:
        ref = absolute_ref(rec["ref"])
        obj = Objective(rec["form"], ref, rec.get("metric"), rec.get("maximize"))
    elif isinstance(given, Objective):
        obj = dataclasses.replace(given)
    elif callable(given):
        name = f"{getattr(given, '__module__', '?')}:{getattr(given, '__qualname__', '?')}"
        obj = Objective("function", name, fn=given, by_ref=False)
    else:
        raise ValueError(f"objective must be a function fn(run) -> Score, got {given!r}")
    obj.data = data or bool(rec.get("data"))
    obj.function  # noqa: B018  (imported here: a bad reference is one line before any work)
    if workers > 1 and not obj.by_ref:
        try:
            pickle.dumps(obj)
        except Exception as exc:
            raise ValueError(
                f"objective {obj.ref} cannot be sent to worker processes ({exc}); define it at "
                "module level, or use workers=1"
            ) from None
    record = {**obj.record(), "ref": rec.get("ref", obj.ref), "data": obj.data}
    changes: dict[str, Any] = {"objective": record, "target_accuracy": None}
    if not obj.data:
        changes["problem"] = problem_slug(record["ref"])
        if spec.batch_size == "auto":
            changes["batch_size"] = None
    return dataclasses.replace(spec, **changes), obj


def learned(summary: Mapping[str, Any]) -> bool | None:
    """The direction a trial's summary shows its objective's metric has (None: it has no
    value, e.g. a diverged trial)."""
    for split in ("val", "test"):
        for maximize in (True, False):
            if f"{split}/{slot(maximize)}" in summary:
                return maximize
    return None


def _stored(run_dir: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(spec record, provenance)`` of the comparisons ``run_dir``'s store holds (read-only;
    none where it has no store or cannot be read)."""
    import json
    import sqlite3

    from descentlab.store import store_path_of

    path = store_path_of(run_dir)
    if not path.is_file():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            rows = db.execute(
                "SELECT config, provenance FROM runs WHERE name = 'compare'"
            ).fetchall()
        return [((json.loads(c).get("spec") or {}), json.loads(p or "{}")) for c, p in rows]
    except (sqlite3.Error, ValueError, AttributeError):
        return []


def _stored_objectives(run_dir: Path) -> list[dict[str, Any]]:
    """The objective records of the comparisons ``run_dir``'s store holds."""
    found = [spec.get("objective") for spec, _ in _stored(run_dir)]
    return [f for f in found if isinstance(f, dict)]


def name_earlier_problem(run_dir: Path, problem: str) -> dict[str, str]:
    """Where ``run_dir`` is new for a problem of the user's own code (``problem``: its
    reference), say which comparison beside it ran the same problem with other files, and
    which changed; the problem's files (:func:`~descentlab.problems.problem.problem_files`),
    for the comparison's record."""
    from descentlab.problems.problem import problem_files
    from descentlab.problems.user_files import changed

    base = problem.split("#", 1)[0]
    files = problem_files(base)
    if not files or run_dir.exists() or not run_dir.parent.is_dir():
        return files
    found = [
        (other.stat().st_mtime, other, changed(prov["problem_files"], files))
        for other in run_dir.parent.iterdir()
        for spec, prov in _stored(other)
        if str(spec.get("problem", "")).split("#", 1)[0] == base
        and prov.get("problem_files") not in (None, files)
    ]
    _say_earlier(run_dir, found, "")
    return files


def _say_earlier(run_dir: Path, found: list[tuple[float, Path, list[str]]], more: str) -> None:
    """Say once which of the earlier comparisons ``found`` (``(time, folder, files that
    changed)``) is the latest, and what changed since it: its trials are not reused."""
    if found:
        _, other, diff = max(found)
        once(
            ("earlier-run", str(run_dir)),
            f"descentlab: a new comparison in {run_dir}: {', '.join(diff)} changed since the "
            f"one in {other} (its trials are not reused{more.format(other=other)})",
            stacklevel=4,
        )


def continued(run_dir: str | Path, objective: Mapping[str, Any]) -> Objective:
    """The objective a comparison continues in ``run_dir`` on purpose (``--continue-run``):
    ``objective`` (the command's record) with the earlier run's files as its identity
    (ValueError: ``run_dir`` holds no comparison of that objective)."""
    from descentlab.problems.problem import absolute_ref

    run_dir = Path(run_dir)
    ref = absolute_ref(objective["ref"])
    stored = [o for o in _stored_objectives(run_dir) if absolute_ref(o.get("ref", "")) == ref]
    if not stored or "files" not in stored[-1]:
        raise ValueError(
            f"--continue-run {run_dir}: it holds no comparison of {objective['ref']} to continue "
            "(give the run directory an earlier command printed)"
        )
    return Objective(objective["form"], ref, objective.get("metric"), objective.get("maximize"),
                     pinned=dict(stored[-1]["files"]), continues=str(run_dir))  # fmt: skip


def name_earlier_run(
    run_dir: Path, record: Mapping[str, Any], objective: Objective | None = None
) -> None:
    """Where ``run_dir`` is new for the objective ``record`` describes, say which run beside it
    compared the same objective with other code or data, and the files that changed (read
    from their stores, read-only): its trials are not reused. An ``objective`` continued on
    purpose (``--continue-run``) must run in the directory it continues (ValueError)."""
    from descentlab.problems.user_files import changed

    if objective is not None and objective.continues is not None:
        if run_dir.resolve() != Path(objective.continues).resolve():
            raise ValueError(
                f"--continue-run {objective.continues}: this command's settings are not that "
                f"comparison's (they would run in {run_dir}): give the same settings"
            )
        return
    files = record.get("files")
    if not files or run_dir.exists() or not run_dir.parent.is_dir():
        return
    found: list[tuple[float, Path, list[str]]] = []
    for other in run_dir.parent.iterdir():
        for old in _stored_objectives(other):
            if old.get("ref") == record.get("ref") and old.get("files") not in (None, files):
                found.append((other.stat().st_mtime, other, changed(old["files"], files)))
    _say_earlier(run_dir, found, "; --continue-run {other} reuses them")
