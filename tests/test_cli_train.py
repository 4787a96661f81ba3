"""Tests for ``descentlab train`` (in-process through descentlab.cli.main)."""

from __future__ import annotations

import json

import pytest

from descentlab.cli import build_parser, main
from descentlab.cli.train import _config, format_summary
from descentlab.engine.config import RunConfig
from descentlab.store import Store

SMALL = [
    "--problem", "moons", "--problem-option", "n_samples=200", "--model", "mlp",
    "--model-option", "hidden=8", "--optimizer", "adam", "--lr", "0.01", "--batch-size", "16",
    "--steps", "30", "--eval-every", "10", "--no-progress",
]  # fmt: skip


def parse(*argv):
    return _config(build_parser().parse_args(["train", *argv]))


def test_train_prints_run_id_and_a_table_and_stores_the_run(tmp_path, capsys):
    assert main(["train", *SMALL, "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"training run 1 (store {tmp_path / 'descentlab.sqlite'})"
    assert out[1].split() == ["split", "loss", "accuracy"]
    assert [line.split()[0] for line in out[2:5]] == ["train", "val", "test"]
    assert out[-1].startswith("run 1: completed after 30 steps")
    store = Store(tmp_path / "descentlab.sqlite")
    run = store.get_run(1)
    assert run.status == "completed"
    assert run.config == parse(*SMALL).to_dict()
    test_acc = float(out[4].split()[2])
    assert test_acc == pytest.approx(run.summary["test/accuracy"], abs=5e-5)
    assert (tmp_path / "checkpoints" / "run-1.pt").is_file()


def test_pause_then_resume_from_the_command_line(tmp_path, capsys):
    db = tmp_path / "lab.sqlite"
    assert main(["train", *SMALL, "--db", str(db), "--until-step", "12"]) == 0  # asked for
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("run 1: paused after 12 steps")
    assert last.endswith("continue it with: descentlab train --resume 1")
    assert main(["train", "--resume", "1", "--db", str(db), "--json", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert err.splitlines()[0] == f"resuming run 1 (store {db})"  # (stdout: the JSON only)
    assert len(lines) == 1
    summary = json.loads(lines[-1])
    assert summary["run_id"] == 1 and summary["status"] == "completed" and summary["steps"] == 30
    assert Store(db).get_run(1).summary["val/loss"] == pytest.approx(summary["val/loss"])


def test_divergence_exit_code(tmp_path, capsys):
    argv = [*SMALL, "--optimizer", "sgd", "--lr", "1e12", "--runs-dir", str(tmp_path)]
    assert main(["train", *argv]) == 3
    assert "diverged" in capsys.readouterr().out.splitlines()[-1]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {}),
        (["--batch-size", "full"], {"batch_size": None}),
        (["--batch-size", "1"], {"batch_size": 1}),
        (["--weight-decay", "1e-4", "--momentum", "0.9"],
         {"hyper": {"lr": 0.01, "weight_decay": 1e-4, "momentum": 0.9}}),
        (["--hyper", "betas=[0.8, 0.9]", "--hyper", "amsgrad=true"],
         {"hyper": {"lr": 0.01, "betas": [0.8, 0.9], "amsgrad": True}}),
        (["--schedule", "cosine", "--schedule", "betas[0]=constant(0.8)"],
         {"schedule": {"lr": "cosine", "betas[0]": "constant(0.8)"}}),
        (["--early-stopping", "3", "--min-delta", "0.01", "--monitor", "val/accuracy",
          "--no-restore-best"],
         {"early_stopping": {"patience": 3, "min_delta": 0.01, "monitor": "val/accuracy",
                             "restore_best": False}}),
        (["--mixup", "0.2", "--input-noise", "0.1", "--weight-noise", "0.01", "--augment",
          "--label-smoothing", "0.1"],
         {"mixup_alpha": 0.2, "input_noise": 0.1, "weight_noise": 0.01, "augment": True,
          "label_smoothing": 0.1}),
        (["--no-test", "--name", "x", "--seed", "4", "--split-seed", "2", "--drop-last"],
         {"evaluate_test": False, "name": "x", "seed": 4, "split_seed": 2, "drop_last": True}),
        (["--loss", "cross_entropy", "--loss-option", "label_smoothing=0.05"],
         {"loss": "cross_entropy", "loss_options": {"label_smoothing": 0.05}}),
        (["--steps", "100", "--checkpoint-every", "25", "--eval-every", "5"],
         {"steps": 100, "checkpoint_every": 25, "eval_every": 5}),
        (["--precision", "fp32"], {"precision": "fp32"}),
        (["--precision", "bf16"], {"precision": "bf16"}),
    ],
)  # fmt: skip
def test_flags_map_to_the_config(argv, expected):
    base = RunConfig(
        problem="moons",
        problem_options={"n_samples": 200},
        model="mlp",
        model_options={"hidden": 8},
        optimizer="adam",
        hyper={"lr": 0.01},
        batch_size=16,
        steps=30,
        eval_every=10,
        precision="auto",  # the command line's default: the CPU and the model choose
    )
    assert parse(*SMALL, *argv) == base.replace(**expected)


def test_epochs_replace_steps():
    argv = [a for a in SMALL if a not in ("--steps", "30")]
    cfg = parse(*argv, "--epochs", "3")
    assert (cfg.steps, cfg.epochs) == (None, 3)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--optimizer", "adamm"], "unknown optimizer 'adamm'; valid names: sgd, momentum"),
        (["--model", "resnet"], "unknown model 'resnet'; valid names:"),
        (["--problem", "cifar"], "unknown dataset 'cifar'; valid names:"),
        (["--batch-size", "5000"], "batch_size must be <= the number of training examples"),
        (["--steps", "0"], "steps must be a positive integer, got 0"),
        (["--hyper", "betas"], "--hyper takes KEY=VALUE, got 'betas'"),
        (["--min-delta", "0.1"], "need --early-stopping"),
        (["--schedule", "cosin"], "unknown schedule 'cosin'"),
        (["--threads", "0"], "--threads must be a positive integer, got 0"),
    ],
)
def test_user_errors_exit_2_with_a_message(tmp_path, capsys, argv, message):
    assert main(["train", *SMALL, "--runs-dir", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("descentlab: error: ") and message in err
    if (tmp_path / "descentlab.sqlite").exists():
        assert Store(tmp_path / "descentlab.sqlite").list_runs() == []


def test_missing_length_and_resume_misuse(tmp_path, capsys):
    no_steps = [a for a in SMALL if a not in ("--steps", "30")]
    assert main(["train", *no_steps, "--runs-dir", str(tmp_path)]) == 2
    assert "--steps N or --epochs N" in capsys.readouterr().err
    assert main(["train", "--resume", "1", "--runs-dir", str(tmp_path / "none")]) == 2
    assert "no store at" in capsys.readouterr().err
    assert main(["train", *SMALL, "--runs-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "1", "--lr", "0.1", "--runs-dir", str(tmp_path)]) == 2
    assert "do not also pass --lr" in capsys.readouterr().err
    assert main(["train", "--resume", "1", "--runs-dir", str(tmp_path)]) == 2
    assert "already ended with status 'completed'" in capsys.readouterr().err
    assert main(["train", "--resume", "7", "--runs-dir", str(tmp_path)]) == 2
    assert "no run with id 7" in capsys.readouterr().err


def test_bad_batch_size_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--batch-size", "many"])
    assert exc.value.code == 2
    assert "batch size must be an integer or 'full', got 'many'" in capsys.readouterr().err


def test_format_summary_table():
    text = format_summary(
        {"train/loss": 0.5, "val/loss": 0.25, "val/accuracy": 0.875, "test/loss": 1.0,
         "steps": 3, "wall_time": 0.1}
    )  # fmt: skip
    assert text.splitlines() == [
        "split       loss  accuracy",
        "train     0.5000         -",
        "val       0.2500    0.8750",
        "test      1.0000         -",
    ]


def test_resuming_a_sharded_run_refuses_a_flag_of_the_config_as_one_process_does(tmp_path, capsys):
    """--resume continues a run with its recorded config: a config flag beside it (--lr) is
    refused in one line for a run trained by --nproc 2 too, before anything starts (it was
    silently ignored there)."""
    with Store(tmp_path / "descentlab.sqlite") as store:
        run_id = store.create_run(parse(*SMALL).to_dict(), seed=0, status="interrupted",
                                  provenance={"nproc": 2})  # fmt: skip
    argv = ["train", "--resume", str(run_id), "--lr", "0.5", "--runs-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"descentlab: error: --resume continues run {run_id} with its recorded config; do not "
        "also pass --lr"
    ]
