"""Tests for descentlab.engine.run / config: one training run, checked against references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error

from descentlab import losses
from descentlab.cli._options import parse_schedule_arg
from descentlab.engine.checkpoint import load_checkpoint, save_checkpoint
from descentlab.engine.config import RunConfig, build_schedule
from descentlab.engine.run import evaluate, train
from descentlab.engine.timing import MEASURED_METRICS
from descentlab.problems import data, models
from descentlab.store import Store

# A small, fast classification problem shared by most tests.
MOONS = {"problem": "moons", "problem_options": {"n_samples": 200}, "evaluate_test": False}


def small(**changes):
    base = {
        **MOONS,
        "model": "mlp",
        "model_options": {"hidden": 8},
        "optimizer": "adam",
        "hyper": {"lr": 1e-2},
        "batch_size": 16,
        "steps": 40,
        "eval_every": 10,
    }
    base.update(changes)
    return RunConfig(**base)


def params_of(model):
    return [t.detach().clone() for t in model.state_dict().values()]


def assert_same_params(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def one_hot_regression(n: int, n_val: int = 4) -> data.Splits:
    """x_i = e_i: the gradient of a linear model's weight is non-zero exactly in the columns of
    the examples in the batch, so the batches can be read back from the gradients."""
    g = torch.Generator().manual_seed(0)
    return data.Splits.of(
        name="onehot",
        task="regression",
        train=(torch.eye(n), torch.randn(n, 1, generator=g) + 3.0),
        val=(torch.zeros(n_val, n), torch.ones(n_val, 1)),
        test=(torch.zeros(2, n), torch.ones(2, 1)),
        n_classes=None,
        input_shape=(n,),
        n_outputs=1,
        default_model="linear",
        default_loss="mse",
    )


class BatchRecorder(torch.optim.SGD):
    """Plain SGD that records, at each step, which examples (one-hot columns) had a gradient."""

    batches: list[list[int]]

    def __init__(self, params, **hyper):
        super().__init__(params, **hyper)
        self.batches = []

    def step(self, closure=None):
        with torch.enable_grad():
            loss = closure()
        weight = self.param_groups[0]["params"][0]
        self.batches.append(torch.nonzero(weight.grad.abs().sum(0)).flatten().tolist())
        super().step()
        return loss


# --------------------------------------------------------------------------------------------
# data order: full batch, SGD, mini-batches, reshuffling


@pytest.mark.parametrize(
    ("batch_size", "drop_last", "n", "steps", "epoch_sizes"),
    [
        (None, False, 6, 3, [[6], [6], [6]]),  # full-batch GD: every step sees everything
        (1, False, 5, 10, [[1] * 5, [1] * 5]),  # SGD: one example per step
        (2, False, 5, 6, [[2, 2, 1], [2, 2, 1]]),  # last short batch kept
        (2, True, 5, 6, [[2, 2], [2, 2], [2, 2]]),  # last short batch dropped
        (4, False, 8, 6, [[4, 4], [4, 4], [4, 4]]),
    ],
)
def test_batches_partition_each_epoch_and_reshuffle(batch_size, drop_last, n, steps, epoch_sizes):
    recorders = []

    def factory(params, **hyper):
        recorders.append(BatchRecorder(params, **hyper))
        return recorders[-1]

    cfg = RunConfig(
        problem="onehot",
        model="linear",
        loss="mse",
        optimizer=factory,
        hyper={"lr": 1e-3},
        batch_size=batch_size,
        drop_last=drop_last,
        steps=steps,
        evaluate_test=False,
    )
    result = train(cfg, data=one_hot_regression(n), progress=False)
    assert result.status == "completed" and result.steps == steps
    batches = recorders[0].batches
    assert len(batches) == steps
    orders, i = [], 0
    for sizes in epoch_sizes:
        epoch = batches[i : i + len(sizes)]
        i += len(sizes)
        assert [len(b) for b in epoch] == sizes
        seen = [k for b in epoch for k in b]
        assert len(seen) == len(set(seen))  # no example twice in an epoch
        if not drop_last:
            assert sorted(seen) == list(range(n))  # every example once per epoch
        orders.append(seen)
    if batch_size is not None and batch_size < n:
        assert len({tuple(o) for o in orders}) > 1  # a fresh order each epoch
    assert result.epochs == pytest.approx(len(epoch_sizes))


def test_full_batch_gd_equals_a_plain_torch_loop():
    """Full-batch GD with descentlab's SGD == the textbook loop with torch.optim.SGD."""
    cfg = RunConfig(
        **MOONS,
        model="logistic",
        optimizer="sgd",
        hyper={"lr": 0.5},
        batch_size=None,
        steps=25,
    )
    result = train(cfg, progress=False)
    splits = data.load("moons", n_samples=200)
    torch.manual_seed(cfg.seed)
    ref = models.build("logistic", input_shape=splits.input_shape, n_outputs=splits.n_outputs)
    opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    for _ in range(25):
        opt.zero_grad()
        F.cross_entropy(ref(splits.x_train), splits.y_train).backward()
        opt.step()
    for a, b in zip(result.model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    # the recorded final validation loss is the loss of those parameters
    with torch.no_grad():
        expected = F.cross_entropy(ref(splits.x_val), splits.y_val).item()
    assert result.metrics["val/loss"].values[-1] == pytest.approx(expected, rel=1e-5)
    assert result.metrics["val/loss"].steps.tolist() == list(range(26))  # eval_every 1


@pytest.mark.parametrize(
    "optimizer, hyper, schedule",
    [("sgd", {"lr": 0.1}, None), ("momentum", {"lr": 0.05}, {"lr": "cosine"}),
     ("adam", {"lr": 1e-2, "weight_decay": 1e-3}, None)],
)  # fmt: skip
def test_a_run_takes_the_steady_step_with_the_closures_numbers(
    monkeypatch, optimizer, hyper, schedule
):
    """The engine evaluates its closure before the step of an optimizer that does not need
    it, so the step can be the steady fused one; the weights are those of the step that
    calls the closure itself, bit for bit."""
    from descentlab.engine import run as engine_run
    from descentlab.optim.fusedpath import FusedPath

    steady = FusedPath.steady_step
    taken = [0]

    def counted(self, opt):
        ok = steady(self, opt)
        taken[0] += ok
        return ok

    cfg = small(optimizer=optimizer, hyper=hyper, schedule=schedule or {}, steps=30)
    monkeypatch.setattr(FusedPath, "steady_step", counted)
    got = train(cfg, progress=False)
    assert taken[0] >= cfg.steps - 2
    monkeypatch.setattr(FusedPath, "steady_step", steady)
    init = engine_run.OneModel.__init__

    def closure_in_step(self, *args):  # the step that calls the closure itself, as before
        init(self, *args)
        self._closure_first = False

    monkeypatch.setattr(engine_run.OneModel, "__init__", closure_in_step)
    ref = train(cfg, progress=False)
    assert_same_params(got.model, ref.model)
    assert got.metrics["val/loss"].values.tolist() == ref.metrics["val/loss"].values.tolist()


def test_same_seed_same_numbers_bit_for_bit_and_other_seed_differs():
    cfg = small(mixup_alpha=0.4, input_noise=0.05, schedule={"lr": "cosine"})
    a, b = train(cfg, progress=False), train(cfg, progress=False)
    assert_same_params(a.model, b.model)
    for key in a.metrics:
        if key not in MEASURED_METRICS:
            np.testing.assert_array_equal(a.metrics[key].values, b.metrics[key].values)
    c = train(cfg.replace(seed=1), progress=False)
    assert not torch.equal(params_of(a.model)[0], params_of(c.model)[0])


def test_training_does_not_touch_the_callers_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(small(steps=5), progress=False)
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------------------------
# evaluation


@pytest.mark.parametrize("case", ["multiclass", "binary_one_output", "regression", "sequence"])
def test_evaluate_against_sklearn(case):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=g)
    if case == "multiclass":
        model, y = torch.nn.Linear(3, 4), torch.randint(0, 4, (50,), generator=g)
        loss_fn = losses.get("cross_entropy")
        out = evaluate(model, x, y, loss_fn, classification=True)
        with torch.no_grad():
            p = torch.softmax(model(x).double(), -1).numpy()
        assert out["loss"] == pytest.approx(log_loss(y.numpy(), p, labels=range(4)), rel=1e-5)
        assert out["accuracy"] == accuracy_score(y.numpy(), p.argmax(1))
    elif case == "binary_one_output":
        model, y = torch.nn.Linear(3, 1), torch.randint(0, 2, (50,), generator=g)
        loss_fn = lambda out, t: F.binary_cross_entropy_with_logits(out[:, 0], t.float())  # noqa: E731
        out = evaluate(model, x, y, loss_fn, classification=True)
        with torch.no_grad():
            p1 = torch.sigmoid(model(x)[:, 0].double()).numpy()
        assert out["loss"] == pytest.approx(log_loss(y.numpy(), p1), rel=1e-5)
        assert out["accuracy"] == accuracy_score(y.numpy(), p1 > 0.5)
    elif case == "sequence":
        # A label per position (a language model): accuracy over every position.
        from descentlab.problems.charlm import sequence_cross_entropy

        emb = torch.nn.Embedding(5, 5)
        xs = torch.randint(0, 5, (50, 7), generator=g)
        y = torch.randint(0, 5, (50, 7), generator=g)
        out = evaluate(emb, xs, y, sequence_cross_entropy, classification=True)
        with torch.no_grad():
            p = torch.softmax(emb(xs).double(), -1).reshape(-1, 5).numpy()
        flat = y.reshape(-1).numpy()
        assert out["loss"] == pytest.approx(log_loss(flat, p, labels=range(5)), rel=1e-5)
        assert out["accuracy"] == pytest.approx(accuracy_score(flat, p.argmax(1)))
    else:
        model, y = torch.nn.Linear(3, 2), torch.randn(50, 2, generator=g)
        out = evaluate(model, x, y, losses.get("mse"), classification=False)
        with torch.no_grad():
            pred = model(x).double().numpy()
        ref = mean_squared_error(y.double().numpy(), pred)
        assert out == {
            "loss": pytest.approx(ref, rel=1e-6),
            # over every entry (sklearn's RMSE would average per-output RMSEs instead)
            "rmse": pytest.approx(math.sqrt(ref), rel=1e-6),
        }


def test_evaluation_loss_is_unsmoothed_and_test_split_used_once():
    class CountingSplits(data.Splits):
        unseals = 0

        def unseal_test(self):
            type(self).unseals += 1
            super().unseal_test()

    base = data.load("moons", n_samples=200)
    splits = CountingSplits(**{f: getattr(base, f) for f in base.__dataclass_fields__})
    cfg = small(label_smoothing=0.2, evaluate_test=True)
    result = train(cfg, data=splits, progress=False)
    assert CountingSplits.unseals == 1 and splits.sealed
    with torch.no_grad():
        val = F.cross_entropy(result.model(splits.x_val), splits.y_val).item()
        splits.unseal_test()
        test_acc = (result.model(splits.x_test).argmax(1) == splits.y_test).double().mean().item()
    assert result.summary["val/loss"] == pytest.approx(val, rel=1e-6)
    assert result.summary["test/accuracy"] == pytest.approx(test_acc)
    CountingSplits.unseals = 0
    train(cfg.replace(evaluate_test=False), data=splits, progress=False)
    assert CountingSplits.unseals == 0


# --------------------------------------------------------------------------------------------
# schedules and early stopping


def test_step_schedule_values_follow_the_closed_form():
    cfg = small(
        optimizer="sgd",
        hyper={"lr": 0.1},
        steps=40,
        eval_every=5,
        schedule={"lr": "step(step_size=10, gamma=0.5)"},
    )
    lr = train(cfg, progress=False).metrics["hyper/lr"]
    # value used by the next step after s steps: 0.1 * 0.5 ** floor(s / 10)
    np.testing.assert_allclose(lr.values, [0.1 * 0.5 ** (s // 10) for s in lr.steps], rtol=1e-12)


def test_loss_driven_schedule_matches_torch_reduce_on_plateau():
    # threshold 0.5: only a halving of the validation loss counts as progress, so lr drops
    rule = {"name": "reduce_on_plateau", "patience": 1, "factor": 0.5, "threshold": 0.5}
    cfg = small(optimizer="sgd", hyper={"lr": 0.1}, steps=60, eval_every=5, schedule={"lr": rule})
    result = train(cfg, progress=False)
    val, lr = result.metrics["val/loss"], result.metrics["hyper/lr"]
    # torch's scheduler fed the same validation losses (the step-0 evaluation is not fed)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5, threshold=0.5)
    expected = []
    for step, v in zip(val.steps, val.values, strict=True):
        if step > 0:
            expected.append(opt.param_groups[0]["lr"])  # logged before the rule reacts
            ref.step(v)
    np.testing.assert_allclose(lr.values[1:], expected, rtol=1e-12)
    assert lr.values[-1] <= 0.1 / 4  # it did reduce, more than once


def test_early_stopping_restores_the_best_weights():
    # min_delta so large that only the first evaluation "improves": best step = eval_every
    cfg = small(steps=200, eval_every=10, early_stopping={"patience": 2, "min_delta": 1e3})
    result = train(cfg, progress=False)
    assert result.status == "completed"
    assert result.steps == 30 and "early stopping at step 30" in result.message
    assert result.summary["best_step"] == 10
    # the weights returned are those after 10 steps: a run of 10 steps has them
    short = train(cfg.replace(steps=10, early_stopping=None), progress=False)
    assert_same_params(result.model, short.model)
    assert result.summary["val/loss"] == short.summary["val/loss"]


def test_early_stopping_without_restore_keeps_last_weights():
    cfg = small(
        steps=200,
        eval_every=10,
        early_stopping={"patience": 2, "min_delta": 1e3, "restore_best": False},
    )
    result = train(cfg, progress=False)
    plain = train(cfg.replace(steps=30, early_stopping=None), progress=False)
    assert_same_params(result.model, plain.model)


# --------------------------------------------------------------------------------------------
# divergence, store, checkpoints


def test_divergence_is_recorded_not_raised(tmp_path):
    store = Store(tmp_path / "lab.sqlite")
    cfg = small(optimizer="sgd", hyper={"lr": 1e12}, steps=50, eval_every=1)
    result = train(cfg, store, progress=False)
    assert result.status == "diverged"
    assert "non-finite" in result.message
    run = store.get_run(result.run_id)
    assert run.status == "diverged" and run.message == result.message
    assert run.summary["steps"] == result.steps < 50
    objective = store.metrics(result.run_id)["train/objective"].values
    assert not math.isfinite(objective[-1]) or not math.isfinite(
        store.metrics(result.run_id)["val/loss"].values[-1]
    )


def test_run_recorded_in_store(tmp_path):
    store = Store(tmp_path / "lab.sqlite")
    cfg = small(model=None, loss=None, checkpoint_every=20)
    result = train(cfg, store, progress=False)
    run = store.get_run(result.run_id)
    assert run.status == "completed" and run.config == cfg.to_dict()
    assert run.provenance["resolved"] == {"model": "mlp", "loss": "cross_entropy"}
    assert run.provenance["versions"]["torch"] == torch.__version__
    assert run.summary["val/accuracy"] == result.summary["val/accuracy"]
    stored = store.metrics(result.run_id)
    assert sorted(stored) == sorted(result.metrics)
    for key, series in result.metrics.items():
        np.testing.assert_array_equal(stored[key].steps, series.steps)
        np.testing.assert_array_equal(stored[key].values, series.values)
    assert stored["val/loss"].steps.tolist() == [0, 10, 20, 30, 40]
    path = store.artifacts(result.run_id)["checkpoint"]["path"]
    ckpt = load_checkpoint(path)  # weights_only load
    assert ckpt["status"] == "completed" and ckpt["step"] == 40
    for k, v in result.model.state_dict().items():
        assert torch.equal(ckpt["model"][k], v)
    # a second identical run is a new run, found by its config
    again = train(cfg, store, progress=False)
    assert again.run_id != result.run_id
    assert store.find_run_by_config(cfg.to_dict()).id == again.run_id


def test_save_checkpoint_is_atomic(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint({"step": 1, "w": torch.ones(2)}, path)
    with pytest.raises(Exception, match=r"pickle|lambda|serializ"):
        save_checkpoint({"step": 2, "bad": lambda: 0}, path)
    assert load_checkpoint(path)["step"] == 1
    # no temporary left behind: the checkpoint and its checksum
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt", "c.pt.sha256"]
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_progress_bar_quiet_off_terminal_and_shown_on_request(capsys):
    train(small(steps=5), progress=None)
    assert capsys.readouterr().err == ""
    train(small(steps=5), progress=True)
    assert "5/5" in capsys.readouterr().err


def test_composed_rule_and_factory_optimizers():
    from descentlab import optim

    rule = optim.chain(optim.trace(momentum=0.9), optim.scale_by_lr(0.05))
    a = train(small(optimizer=rule, hyper={}), progress=False)
    b = train(small(optimizer="momentum", hyper={"lr": 0.05, "momentum": 0.9}), progress=False)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert a.config.to_dict()["optimizer"].startswith("custom:")
    c = train(small(optimizer=torch.optim.Adam, hyper={"lr": 1e-2}), progress=False)
    d = train(small(optimizer="adam", hyper={"lr": 1e-2}), progress=False)
    for p, q in zip(c.model.parameters(), d.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# bad input: clear errors before anything is trained or recorded


def bad_label_splits():
    s = data.load("moons", n_samples=200)
    s.y_train = s.y_train.clone()
    s.y_train[3] = 2
    return s


@pytest.mark.parametrize(
    ("changes", "data_fn", "exc", "match"),
    [
        ({"problem": "mnist2d"}, None, KeyError, "valid names: mnist1d, digits"),
        ({"model": "resnet"}, None, KeyError, "unknown model 'resnet'; valid names: linear"),
        ({"loss": "hinge"}, None, KeyError, "unknown loss 'hinge'; valid names:"),
        ({"optimizer": "adamm"}, None, KeyError, "unknown optimizer 'adamm'; valid names: sgd"),
        ({"schedule": {"lr": "cosin"}}, None, KeyError, "unknown schedule 'cosin'; valid names"),
        ({"batch_size": 1000}, None, ValueError, r"batch_size must be <= the number of training"),
        ({"batch_size": 0}, None, ValueError, "batch_size must be a positive integer, got 0"),
        ({"steps": 0}, None, ValueError, "steps must be a positive integer, got 0"),
        ({"steps": -3}, None, ValueError, "steps must be a positive integer, got -3"),
        ({"steps": None, "epochs": 0}, None, ValueError, "epochs must be a positive integer"),
        ({"epochs": 2}, None, ValueError, "give exactly one of steps and epochs"),
        ({"steps": None}, None, ValueError, "give exactly one of steps and epochs"),
        ({"hyper": {"lr": -1.0}}, None, ValueError, "lr"),
        ({"eval_every": 0}, None, ValueError, "eval_every must be a positive integer"),
        ({"label_smoothing": 1.0}, None, ValueError, r"label_smoothing must be .* in \[0.0, 1"),
        ({"mixup_alpha": 0.2, "cutmix_alpha": 0.2}, None, ValueError, "cannot both be > 0"),
        ({"early_stopping": {"patience": 0}}, None, ValueError, "early_stopping.patience"),
        ({"early_stopping": {"wait": 3}}, None, ValueError, "unknown early_stopping key"),
        ({"augment": {"shift": 2}}, None, ValueError, "unknown augment option"),
        ({}, bad_label_splits, ValueError, r"y_train must hold labels in \[0, 2\), got a label 2"),
        ({"model": "quadratic_deep"}, None, ValueError, "quadratic_deep"),
        ({"loss": "mse"}, None, ValueError, "loss 'mse' cannot compare"),
        ({"schedule": {"lr": "bold_driver(reject=True)"}}, None, ValueError, "reject=True"),
        ({"schedule": {"lr": "cosine("}}, None, ValueError, "schedule must be an expression like"),
        ({"model_options": {"depth": 3}}, None, ValueError, "unknown option"),
        (
            {"problem": "regression", "problem_options": {}, "mixup_alpha": 0.2},
            None,
            ValueError,
            "mixup_alpha needs a classification problem",
        ),
    ],
)
def test_bad_input_fails_before_training(tmp_path, changes, data_fn, exc, match):
    store = Store(tmp_path / "lab.sqlite")
    with pytest.raises(exc, match=match):
        train(small(**changes), store, data=data_fn() if data_fn else None, progress=False)
    assert store.list_runs() == []


def test_batch_norm_on_a_one_example_batch_is_caught_before_training():
    cfg = RunConfig(
        problem="digits",
        model="digits_mlp",
        model_options={"batch_norm": True},
        batch_size=1,
        steps=3,
        evaluate_test=False,
    )
    with pytest.raises(ValueError, match="cannot train on a batch of inputs of shape"):
        train(cfg, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"checkpoint_every": 5}, "checkpoint_every needs a store or a checkpoint_path"),
        ({"until": 5}, "until_step needs a store or a checkpoint_path"),
        ({"resume": True}, "resume needs a store or a checkpoint_path"),
    ],
)
def test_checkpointing_without_a_place_to_write(kwargs, match):
    cfg = small(checkpoint_every=kwargs.pop("checkpoint_every", None))
    if "until" in kwargs:
        kwargs["until_step"] = kwargs.pop("until")
    with pytest.raises(ValueError, match=match):
        train(cfg, progress=False, **kwargs)


# --------------------------------------------------------------------------------------------
# config


def test_config_round_trips_through_json():
    cfg = small(
        hyper={"lr": 1e-3, "betas": (0.8, 0.9)},
        early_stopping={"patience": 3},
        schedule={"lr": {"name": "cosine", "T_max": 10}},
        augment={"max_shift": 2},
    )
    d = cfg.to_dict()
    assert d["hyper"]["betas"] == [0.8, 0.9]
    assert RunConfig.from_dict(d).to_dict() == d
    with pytest.raises(ValueError, match="unknown RunConfig field"):
        RunConfig.from_dict({**d, "lr": 1.0})


@pytest.mark.parametrize(
    ("text", "key", "spec"),
    [
        ("cosine", "lr", "cosine"),
        ("lr=step(step_size=3)", "lr", "step(step_size=3)"),
        ("momentum=linear(0.5, 0.99, 10, base=1.0)", "momentum", "linear(0.5, 0.99, 10, base=1.0)"),
        ("betas[0] = constant(0.8)", "betas[0]", "constant(0.8)"),
    ],
)
def test_parse_schedule_arg(text, key, spec):
    assert parse_schedule_arg(text) == (key, spec)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # independent closed forms, relative to base 1 (the factor)
        ("step(step_size=3, gamma=0.5)", lambda t: 0.5 ** (t // 3)),
        ({"name": "exponential", "gamma": 0.9}, lambda t: 0.9**t),
        ("cosine", lambda t: 0.5 * (1 + math.cos(math.pi * t / 20))),  # T_max = run length
        (
            "cosine(T_max=10)",
            lambda t: 0.5 * (1 + math.cos(math.pi * min(t, 10) / 10)) if t <= 10 else None,
        ),
        ("inverse_time_decay(k=0.5)", lambda t: 1 / (1 + 0.5 * t)),
    ],
)
def test_build_schedule_from_specs(spec, expected):
    sched, monitor = build_schedule(spec, total_steps=20)
    assert monitor is None
    for t in range(0, 11):
        want = expected(t)
        if want is not None:
            assert sched(t) == pytest.approx(want, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    ("extra", "fresh"),
    [
        ({}, 0),  # the last step's evaluation is the summary's
        ({"early_stopping": {"patience": 100, "restore_best": True}}, 1),  # other weights
        ({"eval_every": 7}, 0),  # the last step is evaluated off the eval_every grid too
    ],
)
def test_the_summary_reuses_the_last_steps_evaluation_of_the_final_weights(
    monkeypatch, extra, fresh
):
    from descentlab.engine import evaluation
    from descentlab.engine import run as run_module

    calls = []
    real = evaluation.metrics_of

    def counted(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(run_module, "metrics_of", counted)  # the loop's evaluations
    monkeypatch.setattr(evaluation, "metrics_of", counted)  # the summary's (split_metrics)
    splits = data.load("moons", n_samples=200)
    cfg = small(steps=20, **{"eval_every": 10, **extra})
    result = train(cfg, data=splits, progress=False)
    evaluations = len(range(0, 21, cfg.eval_every)) + (20 % cfg.eval_every != 0)
    assert len(calls) == evaluations + fresh
    for split, x, y in (
        ("train", splits.x_train, splits.y_train),
        ("val", splits.x_val, splits.y_val),
    ):
        again = evaluate(result.model, x, y, F.cross_entropy, classification=True)
        for key, value in again.items():
            assert result.summary[f"{split}/{key}"] == pytest.approx(value, rel=1e-12), key
