"""One trial of your training code: called with its :class:`~descentlab.experiments.kinds.
code_run.Run`, what it returned and reported checked and recorded in the store as a run of the
trial's config (:func:`run_trial`)."""

from __future__ import annotations

import contextlib
import math
import os
import socket
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from descentlab import Score
from descentlab.experiments.kinds import FORMS
from descentlab.experiments.kinds.code_folder import folder_of, own_folder
from descentlab.experiments.kinds.code_identity import Objective
from descentlab.experiments.kinds.code_run import (
    Run,
    _say_once,
    _State,
    _Stop,
    slot,
)
from descentlab.experiments.kinds.code_watch import on_the_device


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
    (the caller wrote the resume, its reports deleted; ``restart``: from step 0, as where it
    wrote none).

    Raises:
        ValueError: one line naming the objective and the trial -- it raised, returned
            something that is not a :class:`Score`, reported something that is not a number,
            never built the trial's optimizer, or read the sealed test split.
        CheckpointError: the checkpoint to continue from fails its verification (the caller
            sets it aside and starts over).
    """
    from descentlab._usercode import UserCodeFailed, failure_way, genuine_interrupt, raised_here
    from descentlab.engine.trial_lines import compiling
    from descentlab.problems._user import failure
    from descentlab.problems.data import TestSetSealedError

    where = _where(objective, trial)
    state = _trial_state(store, trial, where, checkpoint_every, after_checkpoint, resume, restart)
    run_id = state.run_id
    try:
        fresh = resume is None or restart
        with (
            _kept_as_it_was(where.split(" (trial")[0]),
            own_folder(folder_of(store.path, run_id), fresh, _say_once) as (mine, launch),
            compiling(state.lines),
        ):
            try:
                run = Run(trial, splits, state)
                run.dir, run.launch_dir = mine, launch
                got = objective(run)
            finally:
                state.close()
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
        said = failure(exc)
        store.set_status(run_id, "failed", message=said)
        if isinstance(exc, Exception) and raised_here(exc):  # (a mistake in calling descentlab)
            raise ValueError(f"{where} failed: {said}") from None
        raise UserCodeFailed(f"{where} failed: {said}", said, failure_way(exc)) from None
    return run_id, *_finish(state, got, trial, where)


def _trial_state(
    store: Any,
    trial: Any,
    where: str,
    checkpoint_every: Any,
    after_checkpoint: Callable[[Any, int, Path], None] | None,
    resume: int | None,
    restart: bool,
) -> _State:
    """The state :func:`run_trial` runs the trial's code with: its run in ``store`` (created,
    or ``resume``: the interrupted one, its last checkpoint loaded unless ``restart``), where
    its checkpoints go and when, and the console's step lines when a comparison shows them."""
    from descentlab.engine.loop import CheckpointClock
    from descentlab.engine.resuming import default_checkpoint
    from descentlab.engine.trial_lines import StepLines, lines_on, which
    from descentlab.store import provenance

    cfg, record = trial.config, trial.record_config()
    if resume is None:
        run_id = store.create_run(
            record, name=cfg.name, seed=cfg.seed,
            provenance=provenance(cfg.seed, pid=os.getpid(), hostname=socket.gethostname()),
        )  # fmt: skip
    else:
        run_id = resume
    art = store.artifacts(run_id).get("checkpoint")
    path = Path(os.path.abspath(art["path"] if art else default_checkpoint(store, run_id)))
    clock = None if checkpoint_every is None else CheckpointClock(checkpoint_every)
    ship = None if after_checkpoint is None else (lambda i, p: after_checkpoint(trial, i, p))
    state = _State(store, run_id, record, where, clock, path, ship, cfg.steps, cfg.device)
    if resume is not None and not restart:  # (its reports are in the checkpoint: from -1)
        state.load()
    if lines_on():  # (a comparison's console: the trial's steps, rate and time left)
        done = state.saved[0] if state.saved is not None else 0
        state.lines = StepLines(cfg.steps, done, which(cfg))
    return state


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
        said = {"metric": str(got.name), "maximize": bool(got.maximize), "params": state.params}
        if bounds is not None:  # (JSON: an infinite end as null)
            said["bounds"] = [v if math.isfinite(v) else None for v in bounds]
        store.update_provenance(run_id, {"objective": said})
    if state.trace:  # (the values the groups used, judged across the trials)
        honour = {"tuned": _plain_tuned(state.tuned), "used": state.trace, "given": state.given}
        store.update_provenance(run_id, {"honour": honour})
    last = dict(state.rows)  # (a step reported twice: its last value)
    store.log_metrics(run_id, [(s, split, name, v) for s, v in sorted(last.items())])
    if trial.phase == "refit" and got is not None and state.diverged is None:
        _store_examples(store, run_id, got, name)
    if state.evaluations > state.stepped > 0:  # (a closure-based optimizer: LBFGS)
        summary["evaluations"] = state.evaluations
        store.update_provenance(run_id, {"evaluations": state.evaluations})
        _say_once(
            state.where.split(" (trial")[0] + " evaluations",
            f"descentlab: {where}: its optimizer evaluated its closure {state.evaluations} "
            f"times in {state.stepped} steps: the budget (--steps {steps}) counts optimizer "
            "steps, not function evaluations (LBFGS evaluates up to max_iter a step): its "
            "trials take that many more forward and backward passes than one a step (said once)",
        )
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


def _plain_tuned(tuned: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's tuned values as JSON holds them (a tuple of betas a list)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in tuned.items()}


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
    and schedule's descentlab gave: it attempted another number of steps than the trial's
    (fewer only where the code said it stopped early), another optimizer stepped its
    parameters, or the trial's schedule was not stepped (a group's value that ignores the
    trial's is judged across the trials: :mod:`~descentlab.experiments.kinds.code_honour`)."""
    start = state.saved[0] if state.saved is not None else 0
    reported = max([s for s, _ in state.rows] + [trial.config.steps])
    steps = start + state.attempted
    wrong = None
    if state.stopped is not None and state.stopped != steps:
        wrong = (
            f"it said it stopped early at step {state.stopped} (run.stopped_early), but the "
            f"optimizer descentlab gave was stepped {steps} times: give the optimizer steps "
            "it took"
        )
    elif state.stopped is None and steps != reported and len(state.builds) > 1:
        counts = " and ".join(map(str, state.builds))
        wrong = (
            f"it built {len(state.builds)} optimizers with run.optimizer, stepped {counts} times "
            f"in {reported - start} steps (run.steps = {trial.config.steps} steps of the one "
            "optimizer the trial compares): build the trial's optimizer once with "
            "run.optimizer, and any other (a GAN's second network's) with torch.optim directly"
        )
    elif state.stopped is None and steps != reported:
        wrong = (
            f"the optimizer descentlab gave was stepped {state.attempted} times in "
            f"{reported - start} steps: step the one run.optimizer(params) returns, once a step"
        )
        if steps > reported:
            wrong += f", for run.steps = {trial.config.steps} steps (the equal budget)"
        else:
            wrong += (
                f" (run.steps = {trial.config.steps} counts optimizer steps). Likely causes: it "
                "returned early (an early stop: say so with run.stopped_early(step)); its "
                "epochs ran out before run.steps (loop over the data until run.steps optimizer "
                "steps); gradient accumulation counted in batches, not optimizer steps"
            )
    elif state.built is not None and (moved := on_the_device(state.built, state.device)):
        wrong = moved
    elif state.rival is not None:
        wrong = (
            f"the parameters given to run.optimizer(params) were stepped by another optimizer "
            f"({state.rival}): only the trial's optimizer may step them (a wrapper such as "
            "Lookahead may, by calling its step)"
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
        alive = [
            t for t in threading.enumerate()
            if t not in before and t.is_alive() and not _frameworks(t)
        ]  # fmt: skip
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


def _frameworks(thread: Any) -> bool:
    """Whether ``thread`` is one a library starts for itself and ends on its own (tqdm's
    monitor, a multiprocessing queue's feeder of a DataLoader, torch's compile workers):
    not the user's code left running."""
    name = f"{type(thread).__module__}.{type(thread).__name__} {thread.name}"
    return any(mark in name for mark in ("TMonitor", "QueueFeederThread", "torch._inductor",
                                         "pin_memory", "concurrent.futures"))  # fmt: skip


def _per_step(cfg: Any) -> dict[str, Any]:
    """The trial's per-step schedules as its config spells them (``{}``: none)."""
    if not cfg.schedule:
        return {}
    from descentlab.engine.optimizing import split_schedules

    steps = split_schedules(cfg.schedule, cfg.steps)[0]
    return {k: v for k, v in cfg.schedule.items() if k in steps}


def _store_examples(store: Any, run_id: int, got: Score, name: str) -> None:
    """A refit run's per-example test values, stored where their mean is the returned
    value; else the run's provenance says why there are none (the verdict then pairs by seed
    only)."""
    import numpy as np

    from descentlab.experiments.example_outcomes import OUTCOMES_KEY, save

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
