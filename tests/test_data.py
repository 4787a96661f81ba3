"""Datasets: shapes and dtypes, deterministic stratified splits, the sealed test split, and each
source checked against an independent reference (the mnist1d package, scikit-learn, NumPy
draws of DeepOBS's definition, the known regression function)."""

from __future__ import annotations

import os
import pickle
import random

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_blobs, make_moons
from sklearn.model_selection import train_test_split

from descentlab.problems import data


def _rows(t: torch.Tensor) -> np.ndarray:
    """Rows of a 2-D view, lexicographically sorted (order-free comparison of splits)."""
    a = t.reshape(t.shape[0], -1).numpy()
    return a[np.lexsort(a.T[::-1])]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):
    """A private cache directory for the module; the MNIST-1D default set is generated once."""
    path = tmp_path_factory.mktemp("descentlab-cache")
    old = os.environ.get("DESCENTLAB_CACHE")
    os.environ["DESCENTLAB_CACHE"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            del os.environ["DESCENTLAB_CACHE"]
        else:
            os.environ["DESCENTLAB_CACHE"] = old


@pytest.fixture(scope="module")
def mnist1d(cache):
    return data.load("mnist1d")


SMALL = {
    "mnist1d": {},
    "digits": {},
    "digits32": {},
    "quadratic_deep": {"n_train": 200, "n_test": 50},
    "regression": {"n_train": 100, "n_test": 50},
    "moons": {"n_samples": 200},
    "blobs": {"n_samples": 200, "centers": 4},
}

# name -> (task, input_shape, n_outputs, n_classes, n_train + n_val, n_test)
EXPECTED = {
    "mnist1d": ("classification", (40,), 10, 10, 4000, 1000),
    "digits": ("classification", (1, 8, 8), 10, 10, 1437, 360),
    "digits32": ("classification", (1, 32, 32), 10, 10, 1437, 360),
    "quadratic_deep": ("regression", (100,), 100, None, 200, 50),
    "regression": ("regression", (1,), 1, None, 100, 50),
    "moons": ("classification", (2,), 2, 2, 160, 40),
    "blobs": ("classification", (2,), 4, 4, 160, 40),
}


def _load(name: str, **kw):
    return data.load(name, **{**SMALL[name], **kw})


def test_registry_matches_table():
    assert set(data.DATASETS) == set(EXPECTED) == set(SMALL)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_shapes_dtypes_and_sizes(name, cache):
    task, shape, n_out, n_classes, n_trainval, n_test = EXPECTED[name]
    s = _load(name)
    assert (s.task, s.input_shape, s.n_outputs, s.n_classes) == (task, shape, n_out, n_classes)
    assert s.n_train + s.n_val == n_trainval and s.n_test == n_test
    assert s.n_val == pytest.approx(0.2 * n_trainval, abs=1)
    assert s.x_train.dtype == s.x_val.dtype == torch.float32
    assert tuple(s.x_train.shape[1:]) == shape
    s.unseal_test()
    assert tuple(s.x_test.shape) == (n_test, *shape)
    for y in (s.y_train, s.y_val, s.y_test):
        if task == "classification":
            assert y.dtype == torch.int64 and y.dim() == 1
            data.check_labels(y, n_classes)
        else:
            assert y.dtype == torch.float32 and tuple(y.shape[1:]) == (n_out,)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_split_deterministic_disjoint_and_stratified(name, cache):
    a, b, c = _load(name, seed=3), _load(name, seed=3), _load(name, seed=4)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.x_train, c.x_train)
    # train and validation partition the same pool, whatever the seed
    xa, ya = a.train_val()
    xc, _ = c.train_val()
    assert np.array_equal(_rows(xa), _rows(xc))
    assert len(np.unique(_rows(xa), axis=0)) == len(xa)  # no duplicated example
    assert torch.equal(xa[: a.n_train], a.x_train) and torch.equal(ya[a.n_train :], a.y_val)
    if a.task == "classification":
        all_counts = torch.bincount(ya, minlength=a.n_classes).double()
        val_counts = torch.bincount(a.y_val, minlength=a.n_classes).double()
        expected = all_counts * a.n_val / len(ya)
        assert torch.all((val_counts - expected).abs() <= 1.0)


def test_test_split_is_sealed():
    s = data.load("moons", n_samples=100)
    assert s.sealed
    for attr in ("x_test", "y_test"):
        with pytest.raises(data.TestSetSealedError, match="sealed"):
            getattr(s, attr)
    assert issubclass(data.TestSetSealedError, RuntimeError)
    assert s.n_test == 20  # counting is not peeking
    s.unseal_test()
    assert s.x_test.shape == (20, 2)
    s.seal_test()
    with pytest.raises(RuntimeError):
        _ = s.y_test
    assert "x_test" not in repr(s)


# ------------------------------------------------------------------------------- MNIST-1D


def test_mnist1d_defaults_are_the_packages():
    from mnist1d.data import get_dataset_args

    pkg = get_dataset_args(as_dict=True)
    pkg.pop("url")
    out = data.mnist1d_arrays(cache=False, num_samples=100)
    assert out["args"] == {**pkg, "num_samples": 100}


def test_mnist1d_equals_package_generator(cache):
    """Our arrays are the package's make_dataset output (smaller set: same code path)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = 500
    ref = make_dataset(args)
    s = data.load("mnist1d", num_samples=500)
    x, y = s.train_val()
    s.unseal_test()
    assert np.array_equal(_rows(x), _rows(torch.from_numpy(ref["x"].astype(np.float32))))
    assert np.array_equal(np.sort(y.numpy()), np.sort(ref["y"]))
    assert np.array_equal(s.x_test.numpy(), ref["x_test"].astype(np.float32))
    assert np.array_equal(s.y_test.numpy(), ref["y_test"])


def test_mnist1d_paper_sizes(mnist1d):
    s = mnist1d
    assert (s.n_train + s.n_val, s.n_test, s.input_shape) == (4000, 1000, (40,))
    x, _ = s.train_val()
    # the generator standardises the whole set
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1.0) < 0.05
    counts = torch.bincount(s.y_train, minlength=10)
    assert counts.min() > 250  # ten roughly balanced classes
    assert s.meta["args"]["seed"] == 42 and s.meta["cache_path"].endswith(".npz")


def test_mnist1d_cache_hit_restores_rng_and_rewrites_bad_files(cache, mnist1d, monkeypatch):
    import mnist1d.data as pkg

    state_np, state_py = np.random.get_state(), random.getstate()
    data.load("mnist1d", num_samples=300)  # generation reseeds numpy; we restore it
    assert np.array_equal(np.random.get_state()[1], state_np[1])
    assert random.getstate() == state_py

    def boom(*a, **k):
        raise AssertionError("cache miss: make_dataset called")

    monkeypatch.setattr(pkg, "make_dataset", boom)
    again = data.load("mnist1d")  # default set: cached by the fixture
    assert again.meta["generation_seconds"] == 0.0
    assert torch.equal(again.x_train, mnist1d.x_train)
    monkeypatch.undo()

    path = data.mnist1d_arrays(num_samples=300)["path"]
    with open(path, "wb") as fh:
        fh.write(b"not an npz file")
    out = data.mnist1d_arrays(num_samples=300)
    assert out["seconds"] > 0 and out["x"].shape == (240, 40)
    assert data.mnist1d_arrays(num_samples=300)["seconds"] == 0.0
    assert not [p for p in os.listdir(cache) if p.endswith(".tmp")]


def test_mnist1d_data_seed_changes_data(cache):
    a = data.mnist1d_arrays(num_samples=100, cache=False)
    b = data.mnist1d_arrays(num_samples=100, data_seed=7, cache=False)
    assert not np.array_equal(a["x"], b["x"])


# ---------------------------------------------------------------------------------- digits


def test_digits_matches_sklearn():
    s = data.load("digits")
    bunch = load_digits()
    _, x_test, _, y_test = train_test_split(
        bunch.images / 16.0, bunch.target, test_size=0.2, random_state=0, stratify=bunch.target
    )
    s.unseal_test()
    assert np.array_equal(s.x_test[:, 0].numpy(), x_test.astype(np.float32))
    assert np.array_equal(s.y_test.numpy(), y_test)
    x, _ = s.train_val()
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0


# ------------------------------------------------------------- the unstratified val split


@pytest.mark.parametrize(
    "n, fraction, seed",
    [(442 - 88, 0.2, 0), (10, 0.25, 3), (7, 0.5, 123), (1000, 0.1, 2**31 - 1), (3, 0.34, 0),
     (2, 0.5, 9), (50, 0.999 / 50, 1), (100, 0.3, 12345)],
)  # fmt: skip
def test_unstratified_validation_split_is_sklearns_train_test_split(n, fraction, seed):
    """A regression problem's validation rows are the ones sklearn's splitter picks, drawn
    without importing it (its ShuffleSplit: RandomState(seed).permutation cut at
    ceil(fraction * n))."""
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.float32)[:, None] * 10
    got = data._split_train_val(x, y, val_fraction=fraction, seed=seed, stratify=False)
    want = train_test_split(x, y, test_size=fraction, random_state=seed, shuffle=True)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_a_validation_split_that_leaves_no_training_row_is_refused():
    x = np.zeros((2, 1), np.float32)
    with pytest.raises(ValueError, match=r"val_fraction 0.9 of 2 example.*no training"):
        data._split_train_val(x, x, val_fraction=0.9, seed=0, stratify=False, where="p")


# -------------------------------------------------------------------------- quadratic_deep

# Entries of the Hessian and rotation produced by DeepOBS's own quadratic_deep code
# (RandomState(42); eigenvalues, then the subgroup-algorithm rotation), recorded from a run
# of that code.
DEEPOBS_HESSIAN = {(0, 0): 6.221429443252536, (0, 1): 1.1270198982225972,
                   (17, 42): -0.7186419338945497, (99, 3): 2.3607617317113063,
                   (50, 50): 3.5844074809803583}  # fmt: skip
DEEPOBS_ROTATION = {(0, 0): -0.10934861832285958, (5, 7): -0.04577576950776234}


def test_quadratic_deep_hessian_is_deepobs():
    q = data.quadratic_deep_hessian()
    for (i, j), v in DEEPOBS_HESSIAN.items():
        assert q[i, j] == pytest.approx(v, rel=1e-13, abs=1e-14)
    rng = np.random.RandomState(42)
    eig = np.concatenate([rng.uniform(0, 1, 90), rng.uniform(30, 60, 10)])
    rot = data.random_rotation(100, rng)
    for (i, j), v in DEEPOBS_ROTATION.items():
        assert rot[i, j] == pytest.approx(v, rel=1e-13)
    np.testing.assert_allclose(rot @ rot.T, np.eye(100), atol=1e-12)
    np.testing.assert_allclose(np.linalg.eigvalsh(q), np.sort(eig), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(q, q.T, atol=1e-12)


def test_quadratic_deep_data_are_deepobs_draws():
    s = data.load("quadratic_deep")
    x, y = s.train_val()
    ref = np.float32(np.random.RandomState(42).normal(0.0, 0.6, (1000, 100)))
    assert np.array_equal(_rows(x), _rows(torch.from_numpy(ref)))
    assert torch.count_nonzero(y) == 0
    s.unseal_test()
    ref_test = np.float32(np.random.RandomState(43).normal(0.0, 0.6, (1000, 100)))
    assert np.array_equal(s.x_test.numpy(), ref_test)
    assert s.default_model == "quadratic_deep" and s.default_loss == "half_sse"
    np.testing.assert_array_equal(s.hessian.numpy(), data.quadratic_deep_hessian())


# ------------------------------------------------------------------------------ regression


def test_regression_true_function_and_noise():
    s = data.load("regression", n_train=20000, noise_std=0.25, n_test=10)
    x, y = s.train_val()
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    resid = (y.double() - torch.sin(2 * np.pi * x.double())).squeeze(1)
    assert s.noise_std == 0.25
    assert abs(float(resid.mean())) < 0.01
    assert float(resid.std()) == pytest.approx(0.25, rel=0.02)
    assert torch.allclose(s.true_fn(x), torch.sin(2 * np.pi * x))


@pytest.mark.parametrize("fn", ["sin", "cubic", "step"])
def test_sample_regression_noiseless(fn):
    x, y = data.sample_regression(64, noise_std=0.0, fn=fn, seed=5)
    ref = {"sin": np.sin(2 * np.pi * x.double().numpy()),
           "cubic": x.double().numpy() ** 3 - 0.5 * x.double().numpy(),
           "step": (x.double().numpy() >= 0).astype(float)}[fn]  # fmt: skip
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-6, atol=1e-6)
    x2, _ = data.sample_regression(64, noise_std=0.0, fn=fn, seed=6)
    assert not torch.equal(x, x2)


# ---------------------------------------------------------------------------- moons/blobs


@pytest.mark.parametrize(
    ("name", "maker", "kw"),
    [
        ("moons", make_moons, {"n_samples": 300, "noise": 0.1}),
        ("blobs", make_blobs, {"n_samples": 300, "centers": 3, "cluster_std": 0.5}),
    ],
)
def test_synthetic_equals_sklearn(name, maker, kw):
    s = data.load(name, data_seed=11, **kw)
    x_ref, y_ref = maker(random_state=11, **kw)
    x, y = s.train_val()
    s.unseal_test()
    x_all = torch.cat([x, s.x_test])
    y_all = torch.cat([y, s.y_test])
    assert np.array_equal(_rows(x_all), _rows(torch.from_numpy(x_ref.astype(np.float32))))
    assert np.array_equal(np.bincount(y_all.numpy()), np.bincount(y_ref))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: data.load("mnist2d"), KeyError, "valid names: mnist1d, digits"),
        (lambda: data.load("moons", val_fraction=0.0), ValueError, "val_fraction must be"),
        (lambda: data.load("moons", val_fraction=1.0), ValueError, "val_fraction must be"),
        (lambda: data.load("moons", seed=-1), ValueError, "seed must be an integer >= 0"),
        (lambda: data.load("moons", noize=0.1), ValueError, r"unknown option\(s\) \['noize'\]"),
        (lambda: data.load("regression", noise_std=-1.0), ValueError, "noise_std must be"),
        (lambda: data.load("regression", fn="tan"), KeyError, "valid names"),
        (lambda: data.load("blobs", centers=1), ValueError, "centers must be"),
        (lambda: data.load("digits", test_fraction=2), ValueError, "test_fraction must be"),
        (lambda: data.load("quadratic_deep", dim=15), ValueError, "multiple of 10"),
        (lambda: data.mnist1d_arrays(cache=False, lenght=3), ValueError, "unknown MNIST-1D"),
        (lambda: data.check_labels(torch.tensor([0, 10]), 10), ValueError, "got a label 10"),
        (lambda: data.check_labels(torch.tensor([-1]), 3), ValueError, "got a label -1"),
        (lambda: data.check_labels(torch.tensor([0.0]), 3), ValueError, "dtype int64"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("name", ["regression", "quadratic_deep", "moons"])
def test_splits_pickle_and_move(name, cache):
    s = _load(name)
    clone = pickle.loads(pickle.dumps(s))
    assert torch.equal(clone.x_train, s.x_train) and clone.sealed
    if s.true_fn is not None:
        assert torch.equal(clone.true_fn(s.x_val), s.true_fn(s.x_val))
    moved = s.to("cpu")
    assert moved.sealed and torch.equal(moved.y_val, s.y_val) and moved.meta == s.meta
    with pytest.raises(data.TestSetSealedError):
        _ = moved.x_test


def test_docstring_examples():
    import doctest

    result = doctest.testmod(data, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"train_subset": 0}, r"^train_subset must be a fraction in \(0, 1\], got 0$"),
        ({"train_subset": 1.5}, r"^train_subset must be a fraction in \(0, 1\], got 1.5$"),
        ({"train_subset": True}, r"^train_subset must be a fraction in \(0, 1\], got True$"),
        ({"train_subset": "0.5"}, r"^train_subset must be a fraction in \(0, 1\], got '0.5'$"),
        ({"train_subset": 0.5, "subset_seed": -1}, r"^subset_seed must be an integer >= 0"),
        ({"subset_seed": 3}, r"^subset_seed=3 needs train_subset"),
    ],
)
def test_a_bad_training_subset_is_refused_in_one_line(options, message):
    with pytest.raises(ValueError, match=message):
        data.load("moons", n_samples=200, **options)


def test_a_training_subset_is_seeded_and_keeps_the_test_split():
    full = data.load("moons", n_samples=400)
    a = data.load("moons", n_samples=400, train_subset=0.5, subset_seed=1)
    b = data.load("moons", n_samples=400, train_subset=0.5, subset_seed=1)
    c = data.load("moons", n_samples=400, train_subset=0.5, subset_seed=2)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_val, b.x_val)
    assert not torch.equal(a.x_train, c.x_train)
    assert (a.n_train, a.n_val, a.n_test) == (full.n_train // 2, full.n_val // 2, full.n_test)
    # the kept examples, in their order, with their own labels
    rows = {tuple(x.tolist()): int(y) for x, y in zip(full.x_train, full.y_train, strict=True)}
    kept = [rows[tuple(x.tolist())] for x in a.x_train]
    assert kept == a.y_train.tolist()
    order = [list(rows).index(tuple(x.tolist())) for x in a.x_train]
    assert order == sorted(order)
    assert a.sealed and a.meta["train_subset"] == 0.5 and a.meta["subset_seed"] == 1
    a.unseal_test(), full.unseal_test()
    assert torch.equal(a.x_test, full.x_test)
    everything = data.load("moons", n_samples=400, train_subset=1)
    assert torch.equal(everything.x_train, full.x_train)
