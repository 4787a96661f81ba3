"""Problems whose data are torch Datasets (descentlab.problems.streams, engine.streaming).

The reference is the array path: a TensorDataset of a problem's arrays must train bit for bit
as the arrays do (same validation carving, same seeded order, same batches), and a loader with
worker processes must give the batches of one without.
"""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch.utils.data import Dataset, IterableDataset, TensorDataset

from descentlab.engine.config import RunConfig
from descentlab.engine.run import train
from descentlab.problems.data import TestSetSealedError
from descentlab.problems.problem import Problem
from descentlab.problems.streams import DataError

_G = torch.Generator().manual_seed(0)
X = torch.randn(300, 5, generator=_G)
Y = (X[:, 0] + 0.3 * X[:, 1] > 0).long()


def _model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))


def _arrays() -> Problem:
    data = {"x_train": X[:240], "y_train": Y[:240], "x_test": X[240:], "y_test": Y[240:]}
    return Problem(name="p", model=_model, data=data)


def _datasets(train: Dataset | None = None, loader: dict | None = None, **kw) -> Problem:
    data = {
        "train": train or TensorDataset(X[:240], Y[:240]),
        "test": TensorDataset(X[240:], Y[240:]),
    }
    # train/* metrics on the whole training set, as for arrays
    loader = {"eval_train_examples": 10**6, **(loader or {})}
    return Problem(name="p", model=_model, data=data, loader=loader, **kw)


def _cfg(**kw) -> RunConfig:
    base = dict(problem="p", optimizer="adam", hyper={"lr": 1e-2}, batch_size=32, steps=20,
                eval_every=10, evaluate_test=True, seed=3)  # fmt: skip
    return RunConfig(**{**base, **kw})


def _same(a, b) -> None:
    assert a.status == b.status
    for k in ("train/loss", "val/loss", "val/accuracy", "test/loss", "test/accuracy"):
        assert a.summary[k] == b.summary[k], k
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)


class Stream(IterableDataset):
    """The training rows as a stream (with a length that can change between passes)."""

    def __init__(self, x, y, sizes=None):
        self.x, self.y, self.sizes, self.passes = x, y, sizes, 0

    def __iter__(self):
        n = len(self.x) if self.sizes is None else self.sizes[min(self.passes, len(self.sizes) - 1)]
        self.passes += 1
        for i in range(n):
            yield self.x[i], self.y[i]


class Faulty(Dataset):
    def __init__(self, fault: str, at: int = 37):
        self.fault, self.at = fault, at

    def __len__(self) -> int:
        return 240

    def __getitem__(self, i):
        x, y = X[i].clone(), Y[i]
        if i == self.at:
            if self.fault == "raise":
                raise OSError(f"cannot read file {i}.png")
            if self.fault == "shape":
                x = torch.zeros(4)
            if self.fault == "nan":
                x[2] = float("nan")
            if self.fault == "label":
                y = torch.tensor(5)
        return x, y


def test_tensordataset_trains_bit_for_bit_as_the_arrays():
    arrays, streamed = _arrays().splits(seed=1), _datasets().splits(seed=1)
    assert (streamed.n_train, streamed.n_val) == (arrays.n_train, arrays.n_val)
    _same(train(_cfg(), data=arrays, progress=False), train(_cfg(), data=streamed, progress=False))


def test_an_uneven_last_batch_and_drop_last_match_the_arrays():
    for drop_last in (False, True):
        cfg = _cfg(batch_size=50, steps=9, drop_last=drop_last)
        a = train(cfg, data=_arrays().splits(seed=2), progress=False)
        b = train(cfg, data=_datasets().splits(seed=2), progress=False)
        _same(a, b)
        assert a.epochs == b.epochs


@pytest.mark.process
def test_workers_give_the_same_batches_as_none():
    a = train(_cfg(steps=12), data=_datasets().splits(), progress=False)
    b = train(_cfg(steps=12), data=_datasets(loader={"num_workers": 2}).splits(), progress=False)
    _same(a, b)


def test_the_test_split_is_sealed_and_carving_follows_the_seed():
    s = _datasets().splits(seed=0)
    with pytest.raises(TestSetSealedError):
        s.test  # noqa: B018
    other = _datasets().splits(seed=1)
    assert list(s.val.indices) != list(other.val.indices)
    assert list(s.val.indices) == list(_datasets().splits(seed=0).val.indices)


def test_an_iterable_dataset_trains_and_repeats_with_its_seed():
    val = TensorDataset(X[200:240], Y[200:240])
    stream = {
        "train": Stream(X[:200], Y[:200]),
        "val": val,
        "test": TensorDataset(X[240:], Y[240:]),
    }
    p = Problem(name="p", model=_model, data=stream, n_classes=2)
    a = train(_cfg(steps=15), data=p.splits(), progress=False)
    b = train(_cfg(steps=15), data=p.splits(), progress=False)
    _same(a, b)
    assert a.epochs == pytest.approx(2 + 32 / 200)  # 7 batches a pass (the last of 8)


def test_an_iterable_dataset_whose_length_changes_is_announced():
    val = TensorDataset(X[200:240], Y[200:240])
    # (the model's probe and the evaluation at step 0 read the stream too)
    data = {"train": Stream(X[:200], Y[:200], sizes=[64, 64, 64, 96]), "val": val,
            "test": TensorDataset(X[240:], Y[240:])}  # fmt: skip
    p = Problem(name="p", model=_model, data=data, n_classes=2)
    s = p.splits()
    data["train"].passes = 0  # (reading the first example opened the stream once)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(_cfg(steps=8, batch_size=32, eval_every=100), data=s, progress=False)
    msgs = [str(w.message) for w in caught if "length changes" in str(w.message)]
    assert len(msgs) == 1
    m = re.search(r"the train stream yielded 96 examples in epoch (\d), 64 in epoch (\d)", msgs[0])
    assert m is not None and int(m[1]) == int(m[2]) + 1


def test_an_iterable_training_set_needs_a_validation_set():
    data = {"train": Stream(X[:200], Y[:200]), "test": TensorDataset(X[240:], Y[240:])}
    with pytest.raises(ValueError, match="needs a 'val' dataset"):
        Problem(name="p", model=_model, data=data, n_classes=2).splits()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("raise", "the train dataset's example 37 failed: OSError: cannot read file 37.png"),
        ("shape", "the train dataset's example 37 has input (4,) and target (), expected (5,)"),
        ("nan", "the train dataset's example 37 has a non-finite input"),
        # (a label: found by the scan before any training, in the user's own split)
        ("label", "the train dataset's example 37 has the label 5, outside 0..1 (n_classes=2)"),
    ],
)
def test_a_faulty_example_stops_the_run_naming_split_and_index(fault, message):
    p = _datasets(train=Faulty(fault), n_classes=2)
    split = "train"
    with pytest.raises(DataError) as info:
        s = p.splits()
        # example 37 of the user's dataset: it is in the training or the validation subset
        split = "train" if 37 in set(s.train.indices) else "val"
        train(_cfg(steps=10, batch_size=48), data=s, progress=False)
    text = str(info.value)
    assert "\n" not in text and text.startswith("problem 'p': ")
    assert message.replace("the train", f"the {split}") in text


@pytest.mark.process
def test_a_faulty_example_in_a_worker_is_named_too():
    p = _datasets(train=Faulty("raise", at=3), loader={"num_workers": 2}, n_classes=2)
    with pytest.raises(DataError, match=r"example 3 failed: OSError: cannot read file 3\.png"):
        train(_cfg(steps=10, batch_size=48), data=p.splits(), progress=False)


def test_an_empty_dataset_is_refused_naming_the_split():
    with pytest.raises(DataError, match="the test dataset is empty"):
        Problem(name="p", model=_model, data={"train": TensorDataset(X, Y),
                "test": TensorDataset(X[:0], Y[:0])}).splits()  # fmt: skip


def test_train_metrics_of_a_stream_read_its_first_examples_only():
    s = Problem(name="p", model=_model, data={"train": TensorDataset(X[:240], Y[:240]),
                "test": TensorDataset(X[240:], Y[240:])}).splits()  # fmt: skip
    r = train(_cfg(steps=5, evaluate_test=False), data=s, progress=False)
    x, y = s.train[: s.n_val]  # the first n_val training examples
    with torch.no_grad():
        want = torch.nn.functional.cross_entropy(r.model(x), y)
    assert r.summary["train/loss"] == pytest.approx(float(want), rel=1e-6)


def test_loader_options_that_belong_to_the_run_are_refused():
    with pytest.raises(ValueError, match=r"\['batch_size', 'shuffle'\] belong to the run"):
        _datasets(loader={"batch_size": 8, "shuffle": True})
    with pytest.raises(ValueError, match="loader options apply to datasets"):
        Problem(name="p", model=_model, data=_arrays().data, loader={"num_workers": 1})


@pytest.mark.parametrize("iterable", [False, True])
def test_a_paused_run_resumes_with_the_same_batches(tmp_path, iterable):
    if iterable:
        data = {"train": Stream(X[:200], Y[:200]), "val": TensorDataset(X[200:240], Y[200:240]),
                "test": TensorDataset(X[240:], Y[240:])}  # fmt: skip
        s = Problem(name="p", model=_model, data=data, n_classes=2).splits()
    else:
        s = _datasets().splits()
    cfg = _cfg(steps=20, batch_size=48, checkpoint_every=5)
    whole = train(cfg, data=s, checkpoint_path=tmp_path / "a.pt", progress=False)
    paused = train(cfg, data=s, checkpoint_path=tmp_path / "b.pt", until_step=7, progress=False)
    assert paused.status == "interrupted"
    again = train(cfg, data=s, checkpoint_path=tmp_path / "b.pt", resume=True, progress=False)
    _same(whole, again)


FAULTY_FILE = """
import torch
from torch.utils.data import Dataset, TensorDataset
from descentlab.problems.problem import Problem

X = torch.randn(300, 5, generator=torch.Generator().manual_seed(0))
Y = (X[:, 0] > 0).long()


class Faulty(Dataset):
    def __len__(self):
        return 240

    def __getitem__(self, i):
        if i == 37:
            raise OSError(f"cannot read file {i}.png")
        return X[i], Y[i]


def make_problem():
    return Problem(name="faulty", model=lambda: torch.nn.Linear(5, 2), n_classes=2,
                   data={"train": Faulty(), "test": TensorDataset(X[240:], Y[240:])})
"""


def test_compare_on_a_faulty_dataset_says_one_line(tmp_path, capsys):
    from descentlab.cli import main

    path = tmp_path / "faulty.py"
    path.write_text(FAULTY_FILE)
    argv = ["compare", "--problem", f"{path}:make_problem", "--optimizers", "sgd", "--steps",
            "4", "--budget", "1", "--seeds", "1", "--workers", "1", "--no-report",
            "--no-progress", "--runs-dir", str(tmp_path / "runs")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [ln for ln in err.splitlines() if "error" in ln]
    assert re.fullmatch(
        r"descentlab: error: problem 'faulty': the (train|val) dataset's example 37 failed: "
        r"OSError: cannot read file 37\.png( in Faulty\.__getitem__ \(\S+faulty\.py:\d+\))?",
        line,
    )


def test_a_group_of_runs_on_datasets_trains_them_one_at_a_time():
    from descentlab.engine.multirun import train_many

    s = _datasets().splits()
    # (a group names a dataset; the given data replace it)
    cfgs = [_cfg(problem="moons", steps=6, hyper={"lr": lr}) for lr in (1e-2, 3e-2)]
    together = train_many(cfgs, data=s, workers=1)
    for cfg, got in zip(cfgs, together, strict=True):
        _same(got, train(cfg, data=s, progress=False))
