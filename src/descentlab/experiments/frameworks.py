"""Hugging Face's ``Trainer`` and Lightning's modules as objectives
(:mod:`~descentlab.experiments.objective`): descentlab supplies each trial's optimizer (every
trainable parameter in one group, with the trial's hyperparameters) and its per-step
schedule, its length, seed and evaluation cadence; the framework trains and evaluates; the
verdict reads the metric the user names from the framework's evaluations.

- ``make_trainer(split)`` returns a configured ``transformers.Trainer`` without an optimizer,
  evaluating ``split`` (``"val"``, or ``"test"`` in the refit runs, which train on training +
  validation data); its ``max_steps``, seeds, evaluation and saving are set for the trial.
- ``make(split)`` returns a ``LightningModule`` (with its own dataloaders), ``(module,
  datamodule)`` or ``(module, datamodule_or_None, trainer_arguments)``; descentlab supplies its
  ``configure_optimizers`` and trains it with a ``lightning.Trainer`` of the trial's length on
  the CPU (or the comparison's device), given the module's own Trainer arguments (``precision``,
  ``accumulate_grad_batches``, ``gradient_clip_val``, ``callbacks``, ...).

A callback that stops training before the trial's steps (``EarlyStoppingCallback``,
``EarlyStopping``) is the trial's early stop (``run.stopped_early``).

Each evaluation's metric is a point of the trial's curve; the last one, at ``run.steps``
(evaluated there if the cadence did not), is the trial's value. The framework's own
checkpoints are the trial's: after a stop, a Trainer resumes from the last
(``resume_from_checkpoint``) and a Lightning module's trial from Lightning's checkpoint of the
model, optimizer, schedule and loops (``ckpt_path``).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from descentlab._osutil import temporary_folder

__all__ = ["hf_trainer", "lightning"]


def _value(metrics: Mapping[str, Any], metric: str, where: str) -> float:
    """``metrics[metric]`` as a number (ValueError naming the metrics there are)."""
    if metric not in metrics and not metrics:
        raise ValueError(
            f"the {where} logged nothing, so no {metric!r}: log it (self.log({metric!r}, ...) "
            "in a Lightning module's validation_step; compute_metrics for a Trainer)"
        )
    if metric not in metrics:
        raise ValueError(
            f"the {where} logged no {metric!r} (it logged {', '.join(sorted(metrics))}): name "
            "one of those with --metric"
        )
    return float(metrics[metric])


def hf_trainer(make_trainer: Callable[[str], Any], run: Any, metric: str) -> float:
    """One trial of a Hugging Face ``Trainer`` (see the module's notes): its last value of
    ``metric``. Its checkpoints (the Trainer's own folder, saved when the comparison's
    ``--checkpoint-every`` says one is due) are the trial's: after a stop, the Trainer
    resumes from the last (``resume_from_checkpoint``)."""
    import transformers

    transformers.set_seed(run.seed)  # (the model's initialisation, in make_trainer)
    trainer = make_trainer(run.split)
    if not isinstance(trainer, transformers.Trainer):
        raise ValueError(f"it must return a transformers.Trainer, got {type(trainer).__name__}")
    if trainer.optimizer is not None or trainer.lr_scheduler is not None:
        raise ValueError(
            "its Trainer has an optimizer or scheduler of its own: descentlab supplies each "
            "trial's (leave optimizers=(None, None))"
        )
    args = trainer.args
    with temporary_folder("hf") as out:
        ours = dict(
            output_dir=out, max_steps=run.steps, seed=run.seed, data_seed=run.seed,
            eval_strategy="steps", eval_steps=run.eval_every, save_strategy="no",
            report_to=[], disable_tqdm=True, logging_strategy="no",
        )  # fmt: skip
        if run.batch_size is not None:
            ours["per_device_train_batch_size"] = run.batch_size
        _say_replaced("Trainer", _hf_replaced(args, ours, type(args)))
        for key, value in ours.items():
            setattr(args, key, value)
        trainer.optimizer = run.optimizer(p for p in trainer.model.parameters() if p.requires_grad)
        trainer.lr_scheduler = run.scheduler(trainer.optimizer)
        last: list[tuple[int, float]] = []
        trainer.add_callback(_hf_callback(transformers.TrainerCallback, run, metric, last))
        for shown in (transformers.trainer_callback.ProgressCallback, transformers.PrinterCallback):
            trainer.remove_callback(shown)  # (the comparison shows its own progress)
        trainer.train(resume_from_checkpoint=_unpacked(run.restore(), Path(out)))
        if trainer.state.global_step < run.steps:  # (a callback stopped it: EarlyStopping)
            run.stopped_early(trainer.state.global_step)
        if not last or last[0][0] != run.steps:
            trainer.evaluate()
    return last[0][1]


#: the TrainingArguments a trial's optimizer and schedule stand in for, and those it sets
_HF_OPTIMIZER = ("learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon",
                 "lr_scheduler_type", "warmup_steps", "warmup_ratio")  # fmt: skip
_HF_SHOWN = ("num_train_epochs", "max_steps", "seed", "data_seed", "eval_strategy",
             "eval_steps", "per_device_train_batch_size", "save_strategy")  # fmt: skip


def _text(value: Any) -> str:
    """A setting as said (an enum's value; 3.0 as 3)."""
    value = getattr(value, "value", value)
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _hf_replaced(args: Any, ours: Mapping[str, Any], kind: type) -> list[str]:
    """``name from -> to`` for each setting of the user's ``TrainingArguments`` a trial
    replaces with a value of its own (the optimizer's: where the user set one)."""
    import dataclasses  # (the fields' defaults: a new TrainingArguments resets accelerate's state)

    default = {f.name: _text(f.default) for f in dataclasses.fields(kind)}
    out = []
    for key in _HF_OPTIMIZER:
        mine = getattr(args, key, None)
        if key in default and mine is not None and _text(mine) != default[key]:
            out.append(f"{key} {_text(mine)} (the trial's optimizer and schedule)")
    for key in _HF_SHOWN:
        mine = _text(getattr(args, key, None))
        if key == "num_train_epochs":
            if args.max_steps <= 0 and mine != default.get(key):
                out.append(f"num_train_epochs {mine} -> max_steps {ours['max_steps']}")
        elif key in ours and mine not in (_text(ours[key]), default.get(key)):
            out.append(f"{key} {mine} -> {_text(ours[key])}")
    return out


def _say_replaced(what: str, replaced: list[str]) -> None:
    """Say once which of the user's settings each trial replaces, from what to what."""
    from descentlab._announce import once

    if replaced:
        once(
            ("framework-replaced", what, tuple(replaced)),
            f"descentlab: each trial replaces the {what}'s "
            + "; ".join(replaced)
            + " (docs/compare.md)",
            stacklevel=3,
        )


def _hf_callback(base: type, run: Any, metric: str, last: list[tuple[int, float]]) -> Any:
    """The Trainer's callback of one trial: each evaluation's ``metric`` reported (and kept
    in ``last``); a checkpoint saved when one is due, its folder kept as the trial's."""

    class Trial(base):  # type: ignore[misc, valid-type]
        def on_evaluate(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            value = _value(kw.get("metrics") or {}, metric, "Trainer's evaluation")
            last[:] = [(state.global_step, value)]
            run.report(state.global_step, value)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if run.checkpoint_due(state.global_step):
                control.should_save = True

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            import torch

            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            files = {f.name: torch.frombuffer(bytearray(f.read_bytes()), dtype=torch.uint8)
                     for f in folder.iterdir() if f.is_file()}  # fmt: skip
            run.checkpoint(state.global_step, {"hf_checkpoint": files})
            shutil.rmtree(folder)

    return Trial()


def _unpacked(saved: tuple[int, dict[str, Any]] | None, out: Path) -> str | None:
    """The Trainer's checkpoint folder a trial continues from, written back from its
    checkpoint's files (None: a fresh start)."""
    if saved is None:
        return None
    step, state = saved
    folder = out / f"checkpoint-{step}"
    folder.mkdir()
    for name, data in state["hf_checkpoint"].items():
        (folder / name).write_bytes(data.numpy().tobytes())
    return str(folder)


def lightning(make: Callable[[str], Any], run: Any, metric: str) -> float:
    """One trial of a Lightning module (see the module's notes): its last value of
    ``metric``."""
    import lightning as L
    import torch

    with _quiet():
        L.seed_everything(run.seed, verbose=False)
    made = make(run.split)
    parts = made if isinstance(made, tuple) else (made,)
    module, data, settings = (*parts, None, None)[:3]
    settings = dict(settings or {})
    ours = {"max_steps", "val_check_interval", "check_val_every_n_epoch", "accelerator",
            "devices", "logger", "enable_checkpointing", "enable_progress_bar",
            "enable_model_summary", "num_sanity_val_steps", "default_root_dir"}  # fmt: skip
    if taken := sorted(ours & set(settings)):
        raise ValueError(
            f"its Trainer arguments set {', '.join(taken)}, which each trial sets (its steps, "
            "evaluation, device, checkpoints): leave them out"
        )
    if not isinstance(module, L.LightningModule):
        raise ValueError(f"it must return a LightningModule, got {type(module).__name__}")

    own = type(module).configure_optimizers is not L.LightningModule.configure_optimizers
    if own:
        _say_replaced("module", ["configure_optimizers (its own optimizer and schedule) -> the "
                                 "trial's optimizer and per-step schedule"])  # fmt: skip

    def configure_optimizers() -> Any:
        opt = run.optimizer(p for p in module.parameters() if p.requires_grad)
        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": run.scheduler(opt), "interval": "step"},
        }

    module.configure_optimizers = configure_optimizers
    module.lr_scheduler_step = lambda scheduler, _metric: scheduler.step()
    last: list[tuple[int, float]] = []

    class Reports(L.Callback):
        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            if trainer.sanity_checking:
                return
            value = _value(trainer.callback_metrics, metric, "module's validation")
            last[:] = [(trainer.global_step, value)]
            run.report(trainer.global_step, value)

        def on_train_batch_end(self, trainer: Any, *_: Any) -> None:
            step = trainer.global_step
            if step < run.steps and run.checkpoint_due(step):  # (Lightning's own checkpoint)
                trainer.save_checkpoint(Path(out) / "trial.ckpt")
                data = (Path(out) / "trial.ckpt").read_bytes()
                run.checkpoint(step, {"lightning_checkpoint": torch.frombuffer(
                    bytearray(data), dtype=torch.uint8)})  # fmt: skip

    accelerator = "cpu" if run.device == "cpu" else "gpu"
    with _quiet(), temporary_folder("lightning") as out:
        trainer = L.Trainer(
            max_steps=run.steps, val_check_interval=run.eval_every, check_val_every_n_epoch=None,
            accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
            default_root_dir=out,
            **{**settings, "callbacks": [Reports(), *settings.get("callbacks", [])]},
        )  # fmt: skip
        kwargs = {"datamodule": data} if data is not None else {}
        saved = run.restore()
        if saved is not None:  # a stopped trial goes on from its last checkpoint
            path = Path(out) / "restored.ckpt"
            path.write_bytes(saved[1]["lightning_checkpoint"].numpy().tobytes())
            kwargs["ckpt_path"] = str(path)
        trainer.fit(module, **kwargs)
        if trainer.global_step < run.steps and trainer.should_stop:  # (EarlyStopping)
            run.stopped_early(trainer.global_step)
        kwargs.pop("ckpt_path", None)
        if not last or last[0][0] != run.steps:
            trainer.validate(module, verbose=False, **kwargs)
    return last[0][1]


@contextlib.contextmanager
def _quiet():
    """Lightning's informational log lines (the devices it found, its tips) kept off the
    comparison's output; its warnings still show."""
    import logging

    loggers = [logging.getLogger(n) for n in ("lightning", "lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
