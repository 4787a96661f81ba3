"""Bad input to the main job: a learning rate fixed by ``--hyper`` (which
the tuning would silently replace), a non-finite hyperparameter, an empty learning-rate range
with several rates to try, and seed counts that would grow without bound are each refused
before any work: exit code 2, one line naming the parameter and the value, nothing written."""

from __future__ import annotations

import re
import shlex

import pytest

from descentlab.cli import main

COMPARE = [
    "compare", "--problem", "moons", "--problem-option", "n_samples=200", "--model", "mlp",
    "--model-option", "hidden=4", "--optimizers", "sgd,momentum", "--batch-size", "16",
    "--steps", "6", "--tune-steps", "4", "--lr-trials", "2", "--seeds", "1",
    "--landscapes", "none", "--no-progress", "--no-report", "--workers", "1",
]  # fmt: skip
SUITE = ["compare", "--problems", "moons,blobs", "--optimizers", "sgd", "--steps", "6",
         "--no-progress", "--no-report", "--workers", "1"]  # fmt: skip

# A case's name: the options it adds to COMPARE's (``suite:``, to SUITE's; one that starts with
# ``compare`` is the whole command) and the end of the one line it must print.
CASES = {
    "hyper-lr-nan": ("--hyper sgd.lr=nan", r"sgd\.lr='nan': the learning rate is tuned"),
    "hyper-lr": ("--hyper sgd.lr=0.1", r"sgd\.lr=0\.1: the learning rate is tuned"),
    "hyper-nan": ("--hyper momentum.momentum=nan",
        r"momentum\.momentum must be a finite number, got 'nan'"),
    "hyper-inf": ("--hyper sgd.weight_decay=inf",
        r"sgd\.weight_decay must be a finite number, got 'inf'"),
    "lr-range-empty": ("--lr-range sgd=1e-3:1e-3",
        r"lr range of sgd is empty \(0\.001:0\.001\) but 2 learning rates"),
    "seeds-huge": ("--seeds 5000", r"seeds must be at most 1000 .*got 5000"),
    "seeds-1e20": ("--seeds 99999999999999999999",
        r"--seeds: must be at most 1,000,000,000, got 99999999999999999999"),
    "seed-huge": ("--seed 9223372036854775807",
        r"seed must be below \d+ .*got 9223372036854775807"),
    "seed-1e20": ("--seed 99999999999999999999",
        r"--seed: must be at most 9,223,372,036,854,775,807, got 99999999999999999999"),
    "tune-seeds-huge": ("--tune-seeds 5000", r"tune_seeds must be at most 1000"),
    "max-seeds-below-seeds": ("--max-seeds 0", r"max_seeds must be a positive"),
    "max-seeds-below-the-first-look": ("--seeds 3 --max-seeds 2",
        r"max_seeds must be at least seeds \(3\), got 2"),
    "max-seeds-huge": ("--max-seeds 5000", r"max_seeds must be at most 1000"),
    "activation-unknown": ("--model-option activation=tan",
        r"activation must be one of relu, tanh, gelu, silu, got 'tan'"),
    "train-subset-above-one": ("--problem-option train_subset=2",
        r"train_subset must be a fraction in \(0, 1\], got 2"),
    "objective-file-missing": ("compare --objective nowhere/train.py:fn",
        r"objective '.*nowhere/train.py:fn': no file .*nowhere/train.py$"),
    "hf-trainer-without-metric": (
        "compare --hf-trainer examples/hf_trainer.py:make_trainer",
        r"--hf-trainer needs --metric: the metric the verdict reads"),
    "metric-without-a-trainer": ("compare --metric eval_loss",
        r"--metric eval_loss names the metric of --hf-trainer or --lightning; give one"),
    "objective-with-the-engines-precision": (
        "compare --objective examples/objective_loop.py:train --precision bf16",
        r"--precision bf16 is the engine's, and with objective your code trains"),
    "suite-seeds-huge": ("suite: --seeds 5000", r"seeds must be at most 1000"),
    "fixed-lr-negative": ("--fixed-lr sgd=-1",
        r"--fixed-lr sgd=LR takes a positive number, got '-1'"),
    "fixed-lr-text": ("--fixed-lr sgd=fast",
        r"--fixed-lr sgd=LR takes a positive number, got 'fast'"),
    "fixed-lr-inf": ("--fixed-lr sgd=inf", r"sgd=LR takes a positive number, got 'inf'"),
    "fixed-lr-unknown": ("--fixed-lr lion=0.1",
        r"--fixed-lr names 'lion', which is not compared here"),
    "hyper-lr-says-how": ("--hyper sgd.lr=0.1", r"--fixed-lr sgd=LR\)$"),
    "baseline-unknown": ("--baseline lion",
        r"baseline must be one of the optimizers \['sgd', 'momentum'\], got 'lion'"),
    "min-difference-zero": ("--min-difference 0",
        r"min_difference must be a positive number, got 0\.0"),
    "min-difference-nan": ("--min-difference nan",
        r"min_difference must be a positive number, got nan"),
}  # fmt: skip


def _argv(options: str) -> list[str]:
    if options.startswith("suite: "):
        return [*SUITE, *shlex.split(options.removeprefix("suite: "))]
    return (
        shlex.split(options)
        if options.startswith("compare ")
        else [*COMPARE, *shlex.split(options)]
    )


@pytest.mark.parametrize(("options", "message"), list(CASES.values()), ids=list(CASES))
def test_bad_input_to_compare_is_refused_before_any_work(options, message, tmp_path, capsys):
    try:
        code = main([*_argv(options), "--runs-dir", str(tmp_path / "runs")])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert re.search(r"^descentlab(?: \w+)?: error: " + ".*" + message, err[0]), err[0]
    assert list(tmp_path.iterdir()) == []  # no run folder, no store


def test_one_learning_rate_in_a_one_point_range_is_allowed():
    from descentlab.experiments.compare import CompareSpec

    CompareSpec(optimizers=["sgd"], lr_ranges={"sgd": (0.01, 0.01)}, lrs_per_optimizer=1).validate()
