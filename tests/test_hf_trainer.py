"""Hugging Face's ``Trainer`` driving descentlab's AdamW, as a practitioner hands it over
(``optimizers=(opt, None)``): the Trainer's cosine schedule with warmup changes the learning
rate before every step, clips the gradients' norm, and saves and resumes checkpoints (the
optimizer's ``state_dict`` through ``torch.save``). The reference is torch's AdamW in the same
Trainer, on the same tiny GPT-2 (built from a config: nothing is downloaded).

- The eager backend is torch's for-loop bit for bit over 40 steps (the warmup's 10, then the
  cosine: 40 steps part the backends as 200 did, at a fifth of the time).
- The default (fused) backend is too where its float32 square root reproduces torch's
  (:func:`~descentlab.optim.fused.sqrt_reproduces_torch`); elsewhere (AMD CPUs) torch's own
  ``fused=True`` AdamW parts from its for-loop by rounding, and descentlab's default stays
  within a few times that distance.
- Resuming from the checkpoint at step 20 gives the uninterrupted run's parameters bit for
  bit, on both backends.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # (read when transformers is imported)

import pytest
import torch

from descentlab import optim
from descentlab.optim.fused import sqrt_reproduces_torch

STEPS = 40
RESUME_AT = 20


class _Tokens(torch.utils.data.Dataset):
    """64 random sequences of 32 tokens, each its own label (a language model's loss)."""

    def __init__(self) -> None:
        self.ids = torch.randint(0, 128, (64, 32), generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def _train(make, out, resume: bool = False) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
    """The parameters after ``STEPS`` steps of a Trainer with the optimizer ``make(groups)``
    (weight decay on the weights, none on biases and norms, as HF's own grouping does),
    checkpoints in ``out``; ``resume``: from the checkpoint at ``RESUME_AT``."""
    # (transformers imported where a test runs, not on every worker's collection: 2 CPU s)
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=128, n_positions=32, n_embd=64, n_layer=2, n_head=2)
    model = GPT2LMHeadModel(config)
    named = list(model.named_parameters())
    decayed = [p for n, p in named if "bias" not in n and ".ln_" not in n and "ln_f" not in n]
    rest = [p for n, p in named if all(p is not q for q in decayed)]
    opt = make([{"params": decayed, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}])
    args = TrainingArguments(
        output_dir=str(out), max_steps=STEPS, per_device_train_batch_size=8,
        lr_scheduler_type="cosine", warmup_steps=10, max_grad_norm=1.0,
        save_strategy="steps", save_steps=RESUME_AT, logging_steps=10_000, report_to=[],
        use_cpu=True, seed=0, data_seed=0, dataloader_num_workers=0, disable_tqdm=True,
    )  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=_Tokens(), optimizers=(opt, None))
    trainer.train(resume_from_checkpoint=str(out / f"checkpoint-{RESUME_AT}") if resume else None)
    return [p.detach().clone() for p in model.parameters()], opt


def _torch_adamw(**kw):
    return lambda groups: torch.optim.AdamW(groups, lr=1e-3, **kw)


@pytest.fixture(scope="module")
def torch_runs(tmp_path_factory) -> dict[str, list[torch.Tensor]]:
    """torch's AdamW in the Trainer: its for-loop and its ``fused=True`` step."""
    return {
        name: _train(_torch_adamw(**kw), tmp_path_factory.mktemp(name))[0]
        for name, kw in (("loop", {"foreach": False}), ("fused", {"fused": True}))
    }


def _distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("fused", [False, None], ids=["eager", "default"])
def test_trainer_with_descentlab_adamw_steps_and_resumes_as_torch(fused, torch_runs, tmp_path):
    def make(groups):
        return optim.AdamW(groups, lr=1e-3, fused=fused)

    got, opt = _train(make, tmp_path)
    assert opt.param_groups[0]["lr"] != opt.param_groups[0]["initial_lr"]  # scheduled
    if fused is None:  # every group took the fused steady step, the schedule notwithstanding
        assert sorted(opt._fused.steady) == [0, 1]
    resumed, _ = _train(make, tmp_path, resume=True)
    assert all(torch.equal(a, b) for a, b in zip(resumed, got, strict=True))

    loop = torch_runs["loop"]
    if fused is False or sqrt_reproduces_torch():
        assert all(torch.equal(a, b) for a, b in zip(got, loop, strict=True))
    else:
        torchs_own = _distance(torch_runs["fused"], loop)
        assert 0 < _distance(got, loop) <= 4 * torchs_own


def test_compare_chooses_the_optimizer_of_a_trainer_without_one(tmp_path, monkeypatch, capsys):
    """``descentlab compare --hf-trainer examples/hf_trainer.py:make_trainer``: each trial's
    Trainer steps the trial's optimizer, its evaluations are the trial's curve and the verdict
    reads the metric named (``--metric eval_loss``, minimized)."""
    from pathlib import Path

    from descentlab.cli import main
    from descentlab.experiments.compare import load_comparison

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(root / "examples")
    code = main(["compare", "--hf-trainer", "examples/hf_trainer.py:make_trainer", "--metric",
                 "eval_loss", "--optimizers", "sgd,adam", "--steps", "12", "--eval-every", "6",
                 "--lr-trials", "1", "--no-refine", "--seeds", "2", "--max-seeds", "2",
                 "--workers", "1", "--no-progress", "--no-report"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "metric: eval_loss (minimized)" in " ".join(out.split())
    result = load_comparison(next((tmp_path / "runs").iterdir()))
    assert result.complete and result.select_metric == "val/loss"
    sgd, adam = (r.test_loss_seeds for r in result.results)
    assert len(sgd) == len(adam) == 2 and set(sgd.values()).isdisjoint(adam.values())
    steps = [c.runs[0][0].tolist() for r in result.results for c in [r.curves["val/loss"]]]
    assert steps == [[6, 12], [6, 12]]  # the Trainer's evaluations, every --eval-every steps


def test_a_trainers_trial_stopped_mid_run_resumes_from_its_checkpoint(tmp_path):
    """A compared Trainer's trial stopped after its checkpoint at step 8 continues from it
    (the Trainer's ``resume_from_checkpoint``: weights, descentlab's optimizer and schedule,
    the data order) and ends with the uninterrupted trial's curve and value, bit for bit."""
    from pathlib import Path

    import transformers

    from descentlab.experiments.compare import CompareSpec
    from descentlab.experiments.compare.planning import tuning_trials
    from descentlab.experiments.objective import Objective, run_trial
    from descentlab.store import Store

    example = Path(__file__).resolve().parents[1] / "examples" / "hf_trainer.py"
    ref = f"{example}:make_trainer"
    form = {"form": "hf_trainer", "ref": ref, "metric": "eval_loss"}
    spec = CompareSpec(optimizers=["adam"], steps=12, lrs_per_optimizer=1, landscapes=(),
                       objective=form)  # fmt: skip
    plan = spec.plan(custom_data=True)
    trial = tuning_trials(plan, plan.choices[0])[0]
    objective = Objective("hf_trainer", ref, "eval_loss")

    class Stop(BaseException):
        pass

    steps: list[int] = []

    def watched(split):  # the example's Trainer, its steps seen, stopped after step 9 once
        trainer = objective.function(split)

        class Watch(transformers.TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                steps.append(state.global_step)
                if steps == list(range(1, 10)):
                    raise Stop

        trainer.add_callback(Watch())
        return trainer

    def curve(store, run_id):
        return {k: (s.steps.tolist(), s.values.tolist()) for k, s in store.metrics(run_id).items()}

    alone = Store(tmp_path / "alone.sqlite")
    run_id, _, whole = run_trial(alone, objective, trial, None, checkpoint_every=4)
    store = Store(tmp_path / "stopped.sqlite")
    halted = Objective("hf_trainer", ref, "eval_loss", fn=watched)
    with pytest.raises(ValueError, match="failed: it raised Stop"):
        run_trial(store, halted, trial, None, checkpoint_every=4)
    resumed = run_trial(store, halted, trial, None, checkpoint_every=4, resume=1)
    assert steps[9:] == [9, 10, 11, 12]  # from the checkpoint at step 8
    assert resumed[2] == whole and curve(store, 1) == curve(alone, run_id)
    assert store.metrics(1)["val/loss"].steps.tolist() == [2, 4, 6, 8, 10, 12]
