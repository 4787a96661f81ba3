"""The handle your training code gets for one trial (:class:`Run`) and what it writes into
(the trial's reports and checkpoints as it runs); the user's-code kind of trial
(:mod:`~descentlab.experiments.kinds.code`)."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from descentlab import Score
from descentlab._announce import once

__all__ = ["Run", "Score", "slot"]


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
        size: the model's width in a scale study (``descentlab scale --sizes``: build your
            model at this size, e.g. ``nn.Linear(4, run.size)``), or ``--model-option
            size=N``; None elsewhere. The study counts the parameters given to
            :meth:`optimizer` at each size.
        hyper: the trial's hyperparameters (:meth:`optimizer` applies them).
        splits: where descentlab gives the data: the trial's splits (tuning: training and
            validation only, the test split sealed; refit: training + validation, and the
            test split), else None.
        train, eval: where descentlab gives tensors: ``(x, y)`` to train on and to evaluate
            on (``split``'s); else None.
        dir: the trial's own folder, its working folder while it runs (removed when the
            trial ends): a file it writes by a relative path is its own; it links to each
            entry of :attr:`launch_dir`, so relative inputs resolve
            (:mod:`~descentlab.experiments.kinds.code_folder`).
        launch_dir: the folder the command ran in.
    """

    def __init__(self, trial: Any, splits: Any, state: _State) -> None:
        cfg = trial.config
        self.phase, self.label = trial.phase, trial.label
        self.split = "test" if trial.phase == "refit" else "val"
        self.seed, self.steps, self.eval_every = cfg.seed, cfg.steps, cfg.eval_every or cfg.steps
        self.batch_size, self.device, self.hyper = cfg.batch_size, cfg.device, dict(cfg.hyper)
        self.size = (cfg.model_options or {}).get("size")
        self._config, self._state = cfg, state
        self.dir = self.launch_dir = Path.cwd()  # (set by the trial: its own folder)
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
        from descentlab.engine.optimizing import make_optimizer

        opt = make_optimizer(self._config.optimizer, list(params), self._config.hyper)
        defaults = getattr(opt, "defaults", {})
        self._state.tuned = {k: defaults[k] for k in self._config.hyper if k in defaults}
        self._state.watch(opt)
        return opt

    def stopped_early(self, step: int) -> None:
        """Say that the trial stopped on its own after ``step`` optimizer steps, fewer than
        :attr:`steps` (early stopping: patience on the validation metric; the value it returns
        is its answer, the best weights restored or not): without it, a trial that takes fewer
        steps than :attr:`steps` is refused as a wiring mistake."""
        self._state.stopped_early(int(step))

    def scheduler(self, optimizer: Any) -> Any:
        """The trial's per-step schedule of ``optimizer``'s hyperparameters (warmup, decay: a
        :class:`~descentlab.schedules.Scheduler`; constant where the trial has none): call
        its ``step()`` after each optimizer step."""
        from descentlab.engine.optimizing import make_schedulers
        from descentlab.schedules import Scheduler, constant

        made = make_schedulers(optimizer, self._config.schedule, self._config.steps)[0]
        if made is None:
            return Scheduler(optimizer, {"lr": constant()})
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
        from descentlab.experiments.example_outcomes import per_example

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
    #: the parameters given to the trial's optimizer (the model's size as the code built it)
    params: int | None = None
    #: the trial's progress lines (:class:`~descentlab.engine.trial_lines.StepLines`), or None
    lines: Any = None
    rows: list[tuple[int, float]] = dataclasses.field(default_factory=list)
    diverged: str | None = None
    #: steps the optimizer descentlab built took in this call, and whether its parameters were
    #: changed in place between two of them by something else
    stepped: int = 0
    #: its steps attempted (a GradScaler's skipped ones too), the first other optimizer seen
    #: stepping its parameters, and the step at which the code said it stopped early
    attempted: int = 0
    #: the steps attempted of each optimizer run.optimizer built, in order; the closure's
    #: calls (function evaluations: LBFGS evaluates up to max_iter a step)
    builds: list[int] = dataclasses.field(default_factory=list)
    evaluations: int = 0
    rival: str | None = None
    stopped: int | None = None
    #: the trial's hyperparameters as set; ``key -> group -> [[step, value], ...]``: the values
    #: each group used at the recorded steps (:mod:`~descentlab.experiments.kinds.code_honour`)
    tuned: dict[str, Any] = dataclasses.field(default_factory=dict)
    trace: dict[str, dict[str, list[list[Any]]]] = dataclasses.field(default_factory=dict)
    #: ``key -> group -> value`` as the code gave the groups to run.optimizer (its multiples)
    given: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    hooks: list[Any] = dataclasses.field(default_factory=list)
    #: the trial's schedule's steps (None: the trial has no schedule, or it was never made)
    scheduled: int | None = None

    def watch(self, opt: Any) -> None:
        """Count ``opt``'s steps, record what they used, notice another optimizer stepping
        its parameters (:func:`~descentlab.experiments.kinds.code_watch.watch`)."""
        from descentlab.experiments.kinds.code_watch import watch

        watch(self, opt)

    def close(self) -> None:
        """The trial's hooks on every optimizer and on ``GradScaler`` removed."""
        for hook in self.hooks:
            hook.remove()
        self.hooks.clear()
        from descentlab.experiments.kinds.code_watch import SCALED

        if self in SCALED:
            SCALED.remove(self)

    def stopped_early(self, step: int) -> None:
        if not 0 < step <= self.steps:
            raise ValueError(
                f"{self.where}: run.stopped_early(step) at step {step}: a step from 1 to "
                f"{self.steps} (the optimizer steps it took)"
            )
        self.stopped = int(step)

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
        if self.lines is not None:
            self.lines.set_postfix_str(f"reported {value:.4g} at step {step}")

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


def _say_once(key: str, text: str) -> None:
    """A warning said once per ``key`` in this process."""
    once(("objective", key), text, stacklevel=3)
