"""Problems of your own (descentlab.problems.problem) and the character-level LM problem."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from descentlab.cli import main
from descentlab.experiments.compare import CompareSpec, compare, load_comparison
from descentlab.problems.charlm import CharTransformer, char_lm_problem, corpus, encode
from descentlab.problems.problem import Problem, load_problem
from descentlab.store import Store

ROOT = Path(__file__).resolve().parents[1]

TINY = dict(
    optimizers=["sgd", "adam"],
    batch_size=16,
    steps=30,
    tune_steps=30,
    lrs_per_optimizer=2,
    seeds=1,
    target_accuracy=None,
    landscapes=(),
    refine=False,  # the coarse grid only: the search has its own tests
    max_extend=0,
)


class Linear3(torch.nn.Module):
    """Module level: picklable by reference."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.lin(x)


def _linear_data(seed: int = 0, n: int = 120) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32) + 0.1 * rng.normal(size=(n, 1))
    return {"x_train": x[:100], "y_train": y[:100], "x_test": x[100:], "y_test": y[100:]}


def test_a_python_problem_is_tuned_on_its_metric_and_fingerprinted(tmp_path):
    problem = Problem(name="lin", model=Linear3, data=_linear_data(), metric="rmse")
    spec = CompareSpec(**TINY)
    result = compare(spec, tmp_path, workers=1, progress=False, problem=problem)
    assert result.select_metric == "val/rmse" and result.task == "regression"
    assert result.spec.problem.startswith("lin#") and result.run_dir.name.startswith("lin-")
    store = Store(result.store_path)
    for r in result.results:
        scores = []
        for c in r.candidates:
            rec = store.get_run(c.run_ids[0])
            # RMSE over the validation split, recomputed from the stored MSE loss.
            assert rec.summary["val/rmse"] == pytest.approx(math.sqrt(rec.summary["val/loss"]))
            scores.append(rec.summary["val/rmse"])
        assert r.best == int(np.nanargmin(scores))
    # The same problem again reuses every trial; load_comparison reads the metric back.
    n = len(store.list_runs())
    again = compare(spec, tmp_path, workers=1, progress=False, problem=problem)
    assert len(store.list_runs()) == n and again.rows() == result.rows()
    assert load_comparison(result.run_dir).select_metric == "val/rmse"
    # Other data: another fingerprint, another run directory (old trials are not reused).
    other = Problem(name="lin", model=Linear3, data=_linear_data(seed=1), metric="rmse")
    moved = compare(spec, tmp_path, workers=1, progress=False, problem=other)
    assert moved.run_dir != result.run_dir


BAD_FILE = """
import torch
from descentlab.problems.problem import Problem

DATA = {"x_train": torch.randn(20, 2), "y_train": torch.randint(0, 2, (20,)),
        "x_test": torch.randn(6, 2), "y_test": torch.randint(0, 2, (6,))}

def fails():
    return 1 / 0

def nothing():
    return None

def no_model():
    return {"data": DATA}

def no_test():
    return Problem(name="p", model=lambda: torch.nn.Linear(2, 2),
                   data={k: v for k, v in DATA.items() if k != "y_test"})

def not_a_module():
    return Problem(name="p", model=lambda: "linear", data=DATA)

def wrong_outputs():
    return Problem(name="p", model=lambda: torch.nn.Linear(2, 3), data=DATA, loss="mse")

def rmse_on_labels():
    return Problem(name="p", model=lambda: torch.nn.Linear(2, 2), data=DATA, metric="rmse")
"""


@pytest.mark.parametrize(
    ("func", "message"),
    [
        ("fails", "problem function .*:fails failed: ZeroDivisionError: division by zero"),
        ("nothing", "must return a descentlab Problem .*got NoneType"),
        ("no_model", "returned a dict without model"),
        ("no_test", "data is missing y_test"),
        ("not_a_module", "the model factory must return a torch.nn.Module, got str"),
        ("wrong_outputs", r"the loss cannot compare the model's outputs \(2, 3\)"),
        ("rmse_on_labels", "metric 'rmse' needs a regression problem"),
        ("missing", "has no 'missing'"),
    ],
)
def test_a_bad_problem_function_is_one_clear_line(tmp_path, capsys, func, message):
    path = tmp_path / "bad_problems.py"
    path.write_text(BAD_FILE)
    runs = tmp_path / "runs"
    code = main(["compare", "--problem", f"{path}:{func}", "--runs-dir", str(runs),
                 "--landscapes", "none", "--workers", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert __import__("re").search(message, err), err
    assert not runs.exists()  # nothing written before the error


def test_the_readme_example_runs_from_the_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = main(["compare", "--problem", "examples/diabetes.py:make_problem",
                 "--optimizers", "sgd,adam", "--steps", "40", "--tune-steps", "40",
                 "--lr-trials", "2", "--no-refine", "--seeds", "1", "--batch-size", "32",
                 "--workers", "1",
                 "--no-progress", "--no-report", "--runs-dir", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("optimizer") and "SGD" in out and "Adam" in out
    (run_dir,) = tmp_path.iterdir()
    assert run_dir.name.startswith("diabetes-default-")
    result = load_comparison(run_dir)
    assert result.select_metric == "val/rmse" and result.complete
    assert "test rmse [95% CI]" in out.splitlines()[0]
    store = Store(result.store_path)
    for r in result.results:  # the table's RMSE is the refit runs' (one seed here)
        (rid,) = r.refit_runs
        assert r.test_rmse[0] == pytest.approx(store.get_run(rid).summary["test/rmse"])
    # Loaded by reference: the problem function ran with the comparison's split.
    problem = load_problem("examples/diabetes.py:make_problem")
    assert problem.splits().n_train + problem.splits().n_val == 354


def test_train_takes_a_problem_file_as_compare_does(tmp_path, capsys, monkeypatch):
    # `train --problem path.py:fn` trains on the function's data (it was refused as an
    # unknown dataset), records the data's fingerprint and resumes on the same data.
    monkeypatch.chdir(ROOT)
    argv = [
        "train",
        "--problem",
        "examples/diabetes.py:make_problem",
        "--optimizer",
        "adam",
        "--steps",
        "8",
        "--batch-size",
        "32",
        "--runs-dir",
        str(tmp_path),
        "--no-progress",
    ]
    assert main([*argv, "--until-step", "4"]) == 0  # fmt: skip
    assert "paused after 4 steps" in capsys.readouterr().out
    store = Store(tmp_path / "descentlab.sqlite")
    problem = store.get_run(1).config["problem"]
    assert problem.startswith("examples/diabetes.py:make_problem#") and len(problem) > 36
    assert main(["train", "--resume", "1", "--runs-dir", str(tmp_path), "--no-progress",
                 "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["status"] == "completed" and summary["steps"] == 8
    assert "val/rmse" in summary and "test/rmse" in summary


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("examples/no_such_file.py:make_problem", r"no_such_file\.py"),
        ("examples/diabetes.py:no_such_function", r"no_such_function"),
    ],
)
def test_train_refuses_a_bad_problem_file_in_one_line(tmp_path, capsys, monkeypatch, problem,
                                                      message):  # fmt: skip
    monkeypatch.chdir(ROOT)
    code = main(["train", "--problem", problem, "--steps", "2", "--runs-dir",
                 str(tmp_path / "runs"), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and re.search(message, err), err
    assert not (tmp_path / "runs").exists()


def test_charlm_data_are_the_stdlib_text_shifted_by_one():
    text, meta = corpus(30_000)
    assert corpus(30_000)[0] == text and len(text) == 30_000 and meta["files"]
    problem = char_lm_problem(n_chars=30_000, context=16)
    s = problem.splits()
    ids = encode(text)
    # Windows tile the text: input i is ids[16 i : 16 i + 16], its target the next characters.
    assert torch.equal(s.x_train[3], ids[48:64]) and torch.equal(s.y_train[3], ids[49:65])
    assert s.n_train == (24_000 - 1) // 16 and s.n_val == (3_000 - 1) // 16
    assert s.x_val[0].tolist() == ids[24_000:24_016].tolist()  # validation follows training
    assert int(s.x_train.max()) < 97 and s.n_classes == 97


def test_char_transformer_is_causal():
    torch.manual_seed(0)
    model = CharTransformer(context=12, d_model=16, n_heads=2).eval()
    x = torch.randint(0, 97, (2, 12))
    y = x.clone()
    y[:, 7:] = torch.randint(0, 97, (2, 5))  # change the future only
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_chance_levels_on_the_problems_metric():
    from descentlab.problems import data as datasets
    from descentlab.problems.problem import chance_level

    # quadratic_deep's targets are all zero: predicting them is perfect, no chance level.
    assert chance_level(datasets.load("quadratic_deep", n_train=50, n_test=10), None) is None
    # A sequence problem judged on its loss: the cross-entropy of the label frequencies.
    s = char_lm_problem(n_chars=20_000, context=16).splits()
    freq = torch.bincount(s.y_train.reshape(-1), minlength=97).double()
    p = freq / freq.sum()
    expected = float(-torch.log(p.clamp_min(0.5 / freq.sum())[s.y_val.reshape(-1)]).mean())
    assert chance_level(s, "loss") == pytest.approx(expected, rel=1e-4)
