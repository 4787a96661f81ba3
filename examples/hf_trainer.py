"""A Hugging Face ``Trainer`` whose optimizer ``descentlab compare --hf-trainer`` chooses.

A two-layer GPT-2 of 60,000 parameters (built from a config: nothing is downloaded) learns
sequences of 16 tokens that count up by one or by two, modulo 32, with one token in ten
replaced at random; its ``eval_loss`` is the metric. The data are generated here, with fixed
seeds: 512 training sequences, 128 for validation and 128 for the test.

    descentlab compare --hf-trainer examples/hf_trainer.py:make_trainer --metric eval_loss \\
        --optimizers sgd,adam --steps 60 --lr-trials 3 --no-refine --seeds 2
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # (read when transformers is imported)

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

VOCAB, LENGTH = 32, 16


class Counting(torch.utils.data.Dataset):
    """``n`` sequences counting up by 1 or 2 from a random start, one token in ten noise."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        start = torch.randint(0, VOCAB, (n, 1), generator=g)
        step = torch.randint(1, 3, (n, 1), generator=g)
        ids = (start + step * torch.arange(LENGTH)) % VOCAB
        noise = torch.rand(n, LENGTH, generator=g) < 0.1
        self.ids = torch.where(noise, torch.randint(0, VOCAB, (n, LENGTH), generator=g), ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def make_trainer(split: str) -> Trainer:
    """The Trainer of one trial: trained on the training sequences and evaluated on the
    validation ones (``split="val"``), or trained on both and evaluated on the test ones
    (``split="test"``, the refit runs); no optimizer: descentlab gives each trial its own."""
    train, val = Counting(512, seed=1), Counting(128, seed=2)
    if split == "test":
        train = torch.utils.data.ConcatDataset([train, val])
    config = GPT2Config(vocab_size=VOCAB, n_positions=LENGTH, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=0, eos_token_id=0, loss_type="ForCausalLM")  # fmt: skip
    args = TrainingArguments(
        output_dir="unused", per_device_train_batch_size=32, per_device_eval_batch_size=128,
        use_cpu=True, dataloader_num_workers=0, report_to=[],
    )  # fmt: skip
    evaluated = Counting(128, seed=3) if split == "test" else val
    return Trainer(model=GPT2LMHeadModel(config), args=args, train_dataset=train,
                   eval_dataset=evaluated)  # fmt: skip
