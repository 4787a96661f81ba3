"""Datasets: generated or shipped, never downloaded.

Every dataset comes back as a :class:`Splits` with a train/validation split carved
deterministically from the training data (stratified for classification) and a test split that
is *sealed*: reading ``x_test``/``y_test`` raises :class:`TestSetSealedError` until
:meth:`Splits.unseal_test` is called, so that tuning code cannot touch it by accident (the
regularization and CNN lecture: tune on validation data, refit on all training data, evaluate on the
test set once).

==================  ==============  ===========================================================
name                task            source
==================  ==============  ===========================================================
``mnist1d``         classification  the ``mnist1d`` package's own generator (4000 train / 1000
                                    test, length 40), cached on disk
``digits``          classification  :func:`sklearn.datasets.load_digits` (8x8 images, shipped)
``quadratic_deep``  regression      DeepOBS's 100-d noisy quadratic (see below)
``regression``      regression      1-D ``y = f(x) + noise`` with a known ``f`` (bias-variance)
``moons``           classification  :func:`sklearn.datasets.make_moons`
``blobs``           classification  :func:`sklearn.datasets.make_blobs`
==================  ==============  ===========================================================

Two seeds are involved. ``seed`` (an argument of :func:`load`) only decides which training
examples go to the validation split. ``data_seed`` (an option) decides the data themselves; it
defaults to each source's canonical value (42 for MNIST-1D, as in the package) so that the
standard datasets are the same everywhere.

Every dataset also takes ``train_subset`` (a fraction in (0, 1]) and ``subset_seed`` (0):
a seeded subset of its training and of its validation examples, the test split unchanged
(the data-subset variant of a workload, :mod:`descentlab.experiments.multi`).

The ``quadratic_deep`` problem (Schneider et al., 2019) is the loss
``L(theta) = E_x[ 0.5 (theta - x)^T Q (theta - x) ]`` with ``x ~ N(0, 0.6^2 I)`` in 100
dimensions and a fixed Hessian ``Q = R^T diag(lambda) R`` whose eigenvalues are 90 draws from
``U(0, 1)`` and 10 from ``U(30, 60)``. It is exposed as a regression problem: the inputs are the
noise samples ``x``, the targets are zeros, and the model ``models.build("quadratic_deep")``
(parameters ``theta``, initialised to ones as in DeepOBS) outputs ``Q^{1/2} (theta - x)``, so the
loss ``losses.get("half_sse")`` (half the squared norm, averaged over the batch) equals DeepOBS's
per-example loss ``0.5 (theta - x)^T Q (theta - x)`` averaged over the batch. The engine needs
nothing special: ``splits.default_model`` and ``splits.default_loss`` name the pair.

References:
    Greydanus, "Scaling down deep learning" (MNIST-1D), 2020, https://arxiv.org/abs/2011.14439.
    Schneider, Balles, Hennig, "DeepOBS: a deep learning optimizer benchmark suite", ICLR 2019,
    https://openreview.net/forum?id=rJg6ssC5Y7.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import math
import numbers
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from descentlab import losses
from descentlab._files import write_atomic
from descentlab.constraints import FRACTION, NONNEGATIVE, POSITIVE, check

__all__ = [
    "DATASETS",
    "Splits",
    "TestSeal",
    "TestSetSealedError",
    "cache_dir",
    "chance_level",
    "check_labels",
    "example_fields",
    "fold_indices",
    "load",
    "mnist1d_arrays",
    "quadratic_deep_hessian",
    "random_rotation",
    "regression_true_fn",
    "sample_regression",
    "train_subset",
]

DATASETS: tuple[str, ...] = (
    "mnist1d", "digits", "digits32", "quadratic_deep", "regression", "moons", "blobs",
)  # fmt: skip


class TestSetSealedError(RuntimeError):
    """Raised when the test split of a :class:`Splits` is read while it is sealed."""

    # Not a test class, whatever pytest's collector thinks of the name.
    __test__ = False


@dataclass(eq=False, repr=False, kw_only=True)
class TestSeal:
    """What the splits of a problem hold however their examples are held (:class:`Splits` of
    tensors, the datasets' ``DatasetSplits``): the names, shapes, defaults and provenance of
    :class:`Splits`'s attributes, and the sealing of the test split: reading it raises
    :class:`TestSetSealedError` until :meth:`unseal_test`."""

    __test__ = False  # (not a test class)
    name: str
    task: str
    n_classes: int | None
    input_shape: tuple[int, ...]
    n_outputs: int
    default_model: Any = "mlp"
    default_loss: Any = "cross_entropy"
    true_fn: Callable[[Tensor], Tensor] | None = field(default=None, repr=False)
    noise_std: float | None = None
    hessian: Tensor | None = field(default=None, repr=False)
    meta: dict[str, Any] = field(default_factory=dict, repr=False)
    _sealed: bool = field(default=True, repr=False)

    def __repr__(self) -> str:
        s: Any = self
        return (
            f"{type(self).__name__}(name={s.name!r}, task={s.task!r}, n_train={s.n_train}, "
            f"n_val={s.n_val}, n_test={s.n_test}, input_shape={s.input_shape}, "
            f"n_outputs={s.n_outputs}, n_classes={s.n_classes}, sealed={s._sealed})"
        )

    @property
    def sealed(self) -> bool:
        """Whether reading the test split raises :class:`TestSetSealedError`."""
        return self._sealed

    def seal_test(self) -> None:
        """Seal the test split (reading ``x_test``/``y_test`` raises)."""
        self._sealed = True

    def unseal_test(self) -> None:
        """Unseal the test split, for the one final evaluation."""
        self._sealed = False

    def _guard(self) -> None:
        if self._sealed:
            raise TestSetSealedError(
                f"the test split of {self.name!r} is sealed: tune on the validation split and "
                "call splits.unseal_test() only for the final evaluation"
            )


def example_fields(
    task: str, n_classes: int | None, input_shape: Sequence[int], target_shape: Sequence[int]
) -> dict[str, Any]:
    """The fields of :class:`TestSeal` that describe one example: the task, the classes, an
    input's shape and the model's outputs (the classes, else one target's size, at least 1)."""
    outputs = int(n_classes if task == "classification" else max(1, math.prod(target_shape)))
    return dict(task=task, n_classes=n_classes, input_shape=tuple(input_shape), n_outputs=outputs)


# (eq=False: tensors have no truth value, compare fields explicitly)
@dataclass(eq=False, repr=False, kw_only=True)
class Splits(TestSeal):
    """Train / validation / (sealed) test tensors of one dataset.

    Attributes:
        name: dataset name (one of :data:`DATASETS`).
        task: ``"classification"`` or ``"regression"``.
        x_train, y_train: training inputs and targets (validation examples removed).
        x_val, y_val: validation split carved from the training data.
        n_classes: number of classes (classification) or ``None``.
        input_shape: shape of one input example (without the batch dimension).
        n_outputs: number of model outputs (``n_classes`` for classification).
        default_model: a sensible model name for :func:`descentlab.problems.models.build`.
        default_loss: a sensible loss name for :func:`descentlab.losses.get`.
        true_fn: the noiseless target function (``regression`` only), maps ``(N, 1) -> (N, 1)``.
        noise_std: the standard deviation of the additive target noise, where known.
        hessian: the float64 Hessian ``Q`` (``quadratic_deep`` only).
        meta: provenance: options, seeds, generation time, cache path.

    Classification labels are ``int64`` of shape ``(N,)``; regression targets are ``float32``
    of shape ``(N, n_outputs)``; inputs are ``float32``.

    Example:
        >>> s = load("moons", n_samples=200)
        >>> s.x_train.shape, s.y_train.dtype
        (torch.Size([128, 2]), torch.int64)
        >>> s.x_test
        Traceback (most recent call last):
        ...
        descentlab.problems.data.TestSetSealedError: ...
    """

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    _x_test: Tensor = field(repr=False)
    _y_test: Tensor = field(repr=False)

    @classmethod
    def of(
        cls,
        *,
        train: tuple[Tensor, Tensor],
        val: tuple[Tensor, Tensor],
        test: tuple[Tensor, Tensor],
        **fields: Any,
    ) -> Splits:
        """Splits from the ``(inputs, targets)`` of each part (the test pair sealed) and the
        other fields by keyword."""
        names = ("x_train", "y_train", "x_val", "y_val", "_x_test", "_y_test")
        tensors = zip(names, (*train, *val, *test), strict=True)
        return cls(**dict(tensors), **fields)

    @property
    def x_test(self) -> Tensor:
        """Test inputs (raises :class:`TestSetSealedError` while sealed)."""
        self._guard()
        return self._x_test

    @property
    def y_test(self) -> Tensor:
        """Test targets (raises :class:`TestSetSealedError` while sealed)."""
        self._guard()
        return self._y_test

    @property
    def n_train(self) -> int:
        """Number of training examples (validation split excluded)."""
        return int(self.x_train.shape[0])

    @property
    def n_val(self) -> int:
        """Number of validation examples."""
        return int(self.x_val.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test examples (a count is not a peek: allowed while sealed)."""
        return int(self._x_test.shape[0])

    def to(self, device: torch.device | str) -> Splits:
        """A copy with every tensor on ``device`` (the sealing state is kept)."""
        moved = {
            f.name: (v.to(device) if isinstance(v, Tensor) else v)
            for f in dataclasses.fields(self)
            for v in [getattr(self, f.name)]
        }
        return Splits(**moved)

    def train_val(self) -> tuple[Tensor, Tensor]:
        """Training and validation data concatenated, for the final refit.

        Returns:
            ``(x, y)`` with the training examples first, then the validation examples.
        """
        return (
            torch.cat([self.x_train, self.x_val], dim=0),
            torch.cat([self.y_train, self.y_val], dim=0),
        )

    def read(self, split: str, device: torch.device | str) -> tuple[Tensor, Tensor]:
        """The ``split`` (``"train"``, ``"val"`` or ``"test"``: read while unsealed) as
        ``(inputs, targets)`` on ``device``; the test labels checked."""
        x, y = getattr(self, f"x_{split}").to(device), getattr(self, f"y_{split}").to(device)
        if split == "test" and self.task == "classification":
            check_labels(y, self.n_classes, name="y_test")  # type: ignore[arg-type]
        return x, y

    def check_labels(self) -> None:
        """Training and validation labels in ``0..n_classes-1`` (classification)."""
        if self.task == "classification":
            check_labels(self.y_train, self.n_classes, name="y_train")  # type: ignore[arg-type]
            check_labels(self.y_val, self.n_classes, name="y_val")  # type: ignore[arg-type]

    def known_targets(self) -> tuple[Tensor, Tensor]:
        """The training and validation targets."""
        return self.y_train, self.y_val

    def unpicklable(self, where: str, why: str) -> Exception | None:
        """None: tensors are sent to worker processes as they are (what may not be is the
        model factory or the loss, named by the caller)."""
        return None

    def _no_test(self) -> dict[str, Tensor]:
        y_shape = (0,) if self.task == "classification" else (0, self.n_outputs)
        return {
            "_x_test": torch.empty((0, *self.input_shape), dtype=self.x_train.dtype),
            "_y_test": torch.empty(y_shape, dtype=self.y_train.dtype),
        }

    def holdout(self) -> Splits:
        """Train / validation with the test data removed (empty tensors): what tuning and
        validation runs train on -- whatever they do, they hold no test example."""
        return dataclasses.replace(self, **self._no_test(), _sealed=True)

    def folds(self, k: int, *, seed: int) -> list[Splits]:
        """``k`` cross-validation splits of train + validation, no test data: fold ``i``
        trains on the other ``k - 1`` folds and validates on fold ``i`` (stratified for
        classification)."""
        x, y = self.train_val()
        out = []
        for tr, va in fold_indices(y, k, seed=seed, stratify=self.task == "classification"):
            tr_t, va_t = torch.from_numpy(tr), torch.from_numpy(va)
            fold = dataclasses.replace(
                self, x_train=x[tr_t], y_train=y[tr_t], x_val=x[va_t], y_val=y[va_t],
                **self._no_test(), _sealed=True, meta={**self.meta, "fold": f"{len(out)}/{k}"},
            )  # fmt: skip
            out.append(fold)
        return out

    def refit(self) -> Splits:
        """Training data = train + validation; the test split kept, sealed (the validation
        fields keep their examples: metrics logged on them are training metrics)."""
        x, y = self.train_val()
        return dataclasses.replace(
            self, x_train=x, y_train=y, meta={**self.meta, "refit": "train+val"}
        )


# --------------------------------------------------------------------------------------------
# helpers


def cache_dir() -> Path:
    """Directory for generated datasets: ``$DESCENTLAB_CACHE`` or ``~/.cache/descentlab``."""
    env = os.environ.get("DESCENTLAB_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "descentlab"


def _atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` atomically (temporary file in the same folder, then rename;
    folders made for it are removed again if that fails)."""
    write_atomic(path, lambda fh: np.savez(fh, **arrays), private=True)


def _read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The arrays ``keys`` of an ``.npz`` file, or ``None`` if it is missing or unreadable
    (a truncated or foreign file is then regenerated and overwritten by the caller)."""
    if not path.exists():
        return None
    try:
        with np.load(path) as z:
            return {k: z[k] for k in keys}
    except (OSError, ValueError, KeyError, EOFError):
        return None


def check_labels(y: Tensor, n_classes: int, *, name: str = "y") -> None:
    """Raise ``ValueError`` unless ``y`` holds int64 labels in ``[0, n_classes)``, one per
    example (shape ``(N,)``) or one per position of a sequence (shape ``(N, T)``).

    Args:
        y: labels.
        n_classes: number of classes.
        name: how to call ``y`` in the message.

    Example:
        >>> check_labels(torch.tensor([0, 3]), 3)
        Traceback (most recent call last):
        ...
        ValueError: y must hold labels in [0, 3), got a label 3
    """
    if y.dtype != torch.int64:
        raise ValueError(f"{name} must have dtype int64, got {y.dtype}")
    if y.dim() not in (1, 2):
        raise ValueError(f"{name} must have shape (N,) or (N, T), got {tuple(y.shape)}")
    if y.numel():
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= n_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name} must hold labels in [0, {n_classes}), got a label {bad}")


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _split_train_val(
    x: np.ndarray,
    y: np.ndarray,
    *,
    val_fraction: float,
    seed: int,
    stratify: bool,
    where: str = "the data",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Carve a validation split from the training arrays: the rows sklearn's
    ``train_test_split(test_size=val_fraction, random_state=seed)`` picks (stratified by
    class with ``stratify``); a class too small to be split by class is named with ``where``
    (the problem)."""
    if stratify:
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) and counts.min() < 2:
            c = classes[int(np.argmin(counts))]
            raise ValueError(
                f"{where}: class {c} has {counts.min()} example in the training split; the "
                f"validation split ({val_fraction:g} of it) keeps every class's share and "
                f"needs at least 2 of each -- add examples of class {c}, or give the "
                "validation split yourself"
            )
        from sklearn.model_selection import train_test_split  # heavy: only where it stratifies

        x_tr, x_va, y_tr, y_va = train_test_split(
            x, y, test_size=val_fraction, random_state=seed, shuffle=True, stratify=y
        )
        return x_tr, x_va, y_tr, y_va
    train, val = _shuffle_split(len(x), val_fraction, seed, where=where)
    return x[train], x[val], y[train], y[val]


def _shuffle_split(
    n: int, fraction: float, seed: int, *, where: str = "the data"
) -> tuple[np.ndarray, np.ndarray]:
    """The (train, held-out) row indices of sklearn's ``ShuffleSplit(test_size=fraction,
    random_state=seed)`` -- ``RandomState(seed).permutation(n)`` cut after
    ``ceil(fraction * n)`` rows -- drawn without importing scikit-learn (seconds of imports
    for one permutation)."""
    n_held = math.ceil(fraction * n)
    if n - n_held < 1:
        raise ValueError(
            f"{where}: val_fraction {fraction:g} of {n} example(s) leaves no training example"
        )
    order = np.random.RandomState(seed).permutation(n)
    return order[n_held:], order[:n_held]


def _finish(
    name: str,
    task: str,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    seed: int,
    val_fraction: float,
    n_classes: int | None,
    input_shape: tuple[int, ...],
    default_model: str,
    default_loss: str,
    meta: dict[str, Any],
    **extra: Any,
) -> Splits:
    classification = task == "classification"
    x_tr, x_va, y_tr, y_va = _split_train_val(
        x, y, val_fraction=val_fraction, seed=seed, stratify=classification
    )

    def tx(a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32).reshape(-1, *input_shape))

    def ty(a: np.ndarray) -> Tensor:
        if classification:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))
        a = np.ascontiguousarray(a, dtype=np.float32)
        return torch.from_numpy(a.reshape(a.shape[0], -1))

    y_train = ty(y_tr)
    meta = {**meta, "seed": seed, "val_fraction": val_fraction}
    return Splits.of(
        name=name,
        train=(tx(x_tr), y_train),
        val=(tx(x_va), ty(y_va)),
        test=(tx(x_test), ty(y_test)),
        default_model=default_model,
        default_loss=default_loss,
        meta=meta,
        **example_fields(task, n_classes, input_shape, y_train.shape[1:]),
        **extra,
    )


def _reject_unknown(name: str, options: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for dataset {name!r}; valid options: {sorted(allowed)}"
        )


# --------------------------------------------------------------------------------------------
# MNIST-1D

_MNIST1D_OPTIONS = (
    "num_samples",
    "train_split",
    "template_len",
    "padding",
    "scale_coeff",
    "max_translation",
    "corr_noise_scale",
    "iid_noise_scale",
    "shear_scale",
    "shuffle_seq",
    "final_seq_length",
    "data_seed",
    "cache",
)


def mnist1d_arrays(*, cache: bool = True, **args: Any) -> dict[str, Any]:
    """Generate (or read from the cache) the MNIST-1D arrays with the package's own generator.

    Calls ``mnist1d.data.make_dataset`` directly (``get_dataset`` may try to download a pickle);
    the package's defaults (``get_dataset_args()``: 5000 examples, 80 % train, length 40,
    seed 42) give the paper's dataset. The global ``random``/``numpy`` RNG states, which the
    generator reseeds, are restored afterwards. Results are cached as ``.npz`` under
    :func:`cache_dir`, keyed by a hash of the arguments and the package version, written
    atomically; a missing or unreadable cache file is regenerated.

    Args:
        cache: read/write the on-disk cache.
        **args: overrides of ``mnist1d.data.get_dataset_args()`` (``data_seed`` sets ``seed``).

    Returns:
        dict with ``x`` (float64, ``(n_train, L)``), ``y`` (int64), ``x_test``, ``y_test``,
        ``t`` (the time axis), ``seconds`` (generation time, 0.0 on a cache hit), ``path``.
    """
    version = importlib.metadata.version("mnist1d")
    if "data_seed" in args:
        args["seed"] = args.pop("data_seed")
    # A copy of mnist1d.data.get_dataset_args() (minus the download url): importing mnist1d
    # pulls in matplotlib and requests (~1.5 s), which a cache hit should not pay. A test checks
    # that this copy equals the package's defaults.
    defaults = {
        "num_samples": 5000,
        "train_split": 0.8,
        "template_len": 12,
        "padding": [36, 60],
        "scale_coeff": 0.4,
        "max_translation": 48,
        "corr_noise_scale": 0.25,
        "iid_noise_scale": 2e-2,
        "shear_scale": 0.75,
        "shuffle_seq": False,
        "final_seq_length": 40,
        "seed": 42,
    }
    unknown = sorted(set(args) - set(defaults))
    if unknown:
        raise ValueError(f"unknown MNIST-1D argument(s) {unknown}; valid: {sorted(defaults)}")
    full = {**defaults, **args}
    if isinstance(full["padding"], tuple):
        full["padding"] = list(full["padding"])
    key_src = json.dumps({"args": full, "mnist1d": version}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    path = cache_dir() / f"mnist1d-{key}.npz"
    cached = _read_npz(path, ("x", "y", "x_test", "y_test", "t")) if cache else None
    if cached is not None:
        return {**cached, "seconds": 0.0, "path": str(path), "args": full}
    t0 = time.perf_counter()
    from mnist1d.data import get_dataset_args, make_dataset  # heavy: at first use

    pkg_args = get_dataset_args()
    for k, v in full.items():
        setattr(pkg_args, k, v)
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        d = make_dataset(pkg_args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    seconds = time.perf_counter() - t0
    out = {
        "x": np.asarray(d["x"], dtype=np.float64),
        "y": np.asarray(d["y"], dtype=np.int64),
        "x_test": np.asarray(d["x_test"], dtype=np.float64),
        "y_test": np.asarray(d["y_test"], dtype=np.int64),
        "t": np.asarray(d["t"], dtype=np.float64),
    }
    if cache:
        _atomic_save_npz(path, **out)
    return {**out, "seconds": seconds, "path": str(path) if cache else None, "args": full}


def _load_mnist1d(seed: int, val_fraction: float, options: dict[str, Any]) -> Splits:
    _reject_unknown("mnist1d", options, _MNIST1D_OPTIONS)
    d = mnist1d_arrays(**options)
    length = d["x"].shape[1]
    meta = {
        "source": "mnist1d.data.make_dataset",
        "args": d["args"],
        "generation_seconds": d["seconds"],
        "cache_path": d["path"],
    }
    return _finish(
        "mnist1d", "classification", d["x"], d["y"], d["x_test"], d["y_test"],
        seed=seed, val_fraction=val_fraction, n_classes=10, input_shape=(length,),
        default_model="cnn", default_loss="cross_entropy", meta=meta,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# digits


@functools.lru_cache(maxsize=8)  # read and split once (reading was half a load): copied out
def _digits_split(fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits  # heavy: imported at first use
    from sklearn.model_selection import train_test_split  # heavy: imported at first use

    x, y = (d := load_digits()).images / 16.0, d.target.astype(np.int64)  # pixels are 0..16
    return tuple(train_test_split(x, y, test_size=fraction, random_state=seed, stratify=y))


def _load_digits(seed: int, val_fraction: float, options: dict[str, Any]) -> Splits:
    _reject_unknown("digits", options, ("test_fraction", "split_seed"))
    test_fraction = check("test_fraction", options.get("test_fraction", 0.2), FRACTION)
    split_seed = _check_int("split_seed", options.get("split_seed", 0), 0)
    x_rest, x_test, y_rest, y_test = (a.copy() for a in _digits_split(test_fraction, split_seed))
    meta = {"source": "sklearn.datasets.load_digits", "test_fraction": test_fraction,
            "split_seed": split_seed}  # fmt: skip
    return _finish(
        "digits", "classification", x_rest, y_rest, x_test, y_test,
        seed=seed, val_fraction=val_fraction, n_classes=10, input_shape=(1, 8, 8),
        default_model="digits_cnn", default_loss="cross_entropy", meta=meta,
    )  # fmt: skip


_DIGITS32_OPTIONS = ("test_fraction", "split_seed", "size", "channels")


def _load_digits32(seed: int, val_fraction: float, options: dict[str, Any]) -> Splits:
    """``digits32``: the ``digits`` splits (the same test examples for the same
    ``test_fraction`` and ``split_seed``, the same validation carving for the same seed) with
    every image resized to ``size x size`` (32) by bilinear interpolation
    (``torch.nn.functional.interpolate``, ``align_corners=False``), pixel values in [0, 1];
    ``channels=3`` repeats the grey channel, as a colour network's stem expects (default 1).
    The default model is ``resnet20`` (:mod:`descentlab.problems.resnet`).

    Real images with nothing downloaded: no package on the registry ships CIFAR-10's 32x32
    images in its files (those found load them from the web at run time), so this is the
    offline stand-in, an image task of CIFAR's resolution on which a ResNet's cost per step is
    the real one.

    Example:
        >>> s = load("digits32")
        >>> s.input_shape, s.n_classes, s.n_train + s.n_val, s.default_model
        ((1, 32, 32), 10, 1437, 'resnet20')
    """
    import torch.nn.functional as F

    _reject_unknown("digits32", options, _DIGITS32_OPTIONS)
    rest = dict(options)
    size = _check_int("size", rest.pop("size", 32), 8)
    channels = rest.pop("channels", 1)
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    base = _LOADERS["digits"](seed, val_fraction, rest)

    def resize(x: Tensor) -> Tensor:
        up = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return up.expand(-1, channels, -1, -1).contiguous()

    return dataclasses.replace(
        base,
        name="digits32",
        x_train=resize(base.x_train),
        x_val=resize(base.x_val),
        _x_test=resize(base._x_test),
        input_shape=(channels, size, size),
        default_model="resnet20",
        meta={**base.meta, "resized": f"bilinear 8x8 -> {size}x{size}", "channels": channels},
    )


# --------------------------------------------------------------------------------------------
# DeepOBS quadratic_deep


def random_rotation(dim: int, rng: np.random.RandomState) -> np.ndarray:
    """A Haar-random rotation in SO(``dim``) by the subgroup algorithm, as in DeepOBS.

    Diaconis & Shahshahani's subgroup algorithm: start from a uniform 2-D rotation and, for
    ``d = 2 .. dim-1``, embed the current ``d x d`` rotation in ``d+1`` dimensions and reflect it
    by the Householder reflection that maps ``e_1`` to a uniform point ``v`` on the sphere
    ``S^d``. DeepOBS negates the result at the end; the random draws (one uniform, then one
    ``normal(size=(d+1, 1))`` per step) are consumed in the same order so that the same
    ``RandomState`` gives the same matrix.

    Args:
        dim: dimension (>= 2).
        rng: the NumPy ``RandomState`` to draw from (advanced in place).

    Returns:
        ``(dim, dim)`` float64 orthogonal matrix.
    """
    dim = _check_int("dim", dim, 2)
    angle = 2.0 * np.pi * rng.uniform()
    rot = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    for d in range(2, dim):
        v = rng.normal(size=(d + 1, 1))
        v = v / np.sqrt((v.T @ v)[0, 0])
        e1 = np.zeros((d + 1, 1))
        e1[0, 0] = 1.0
        w = (e1 - v) / np.sqrt(((e1 - v).T @ (e1 - v))[0, 0])
        embedded = np.zeros((d + 1, d + 1))
        embedded[0, 0] = 1.0
        embedded[1:, 1:] = rot
        rot = embedded - 2.0 * np.outer(w, w.T @ embedded)
    return -rot


def quadratic_deep_hessian(dim: int = 100, *, seed: int = 42) -> np.ndarray:
    """The Hessian of DeepOBS's ``quadratic_deep`` problem (float64).

    ``Q = R^T diag(lambda) R`` where, from one ``numpy.random.RandomState(seed)``, ``lambda`` is
    ``0.9 dim`` draws from ``U(0, 1)`` followed by ``0.1 dim`` draws from ``U(30, 60)`` and
    ``R = random_rotation(dim, rng)`` is drawn next. With the defaults this is the Hessian a fresh
    DeepOBS process builds for its first ``quadratic_deep`` instance.

    Args:
        dim: dimension (100 in DeepOBS; must be a multiple of 10).
        seed: seed of the RandomState (42 in DeepOBS).

    Returns:
        ``(dim, dim)`` symmetric positive definite float64 array.

    Example:
        >>> q = quadratic_deep_hessian()
        >>> bool(np.linalg.eigvalsh(q)[-10:].min() > 30)
        True
    """
    dim = _check_int("dim", dim, 10)
    if dim % 10:
        raise ValueError(f"dim must be a multiple of 10, got {dim}")
    return _hessian_cached(dim, int(seed)).copy()


@functools.lru_cache(maxsize=8)
def _hessian_cached(dim: int, seed: int) -> np.ndarray:
    rng = np.random.RandomState(seed)
    eig = np.concatenate([rng.uniform(0.0, 1.0, dim * 9 // 10), rng.uniform(30.0, 60.0, dim // 10)])
    rot = random_rotation(dim, rng)
    return rot.T @ (np.diag(eig) @ rot)


def _load_quadratic_deep(seed: int, val_fraction: float, options: dict[str, Any]) -> Splits:
    _reject_unknown("quadratic_deep", options, ("dim", "n_train", "n_test", "noise_std"))
    dim = _check_int("dim", options.get("dim", 100), 10)
    n_train = _check_int("n_train", options.get("n_train", 1000), 2)
    n_test = _check_int("n_test", options.get("n_test", 1000), 1)
    noise = check("noise_std", options.get("noise_std", 0.6), POSITIVE)
    hessian = quadratic_deep_hessian(dim)
    # DeepOBS draws its training data from RandomState(42) and its test data from
    # RandomState(43), as float32.
    x = np.float32(np.random.RandomState(42).normal(0.0, noise, (n_train, dim)))
    x_test = np.float32(np.random.RandomState(43).normal(0.0, noise, (n_test, dim)))
    meta = {"source": "DeepOBS quadratic_deep", "dim": dim, "n_train": n_train,
            "n_test": n_test, "noise_std": noise}  # fmt: skip
    return _finish(
        "quadratic_deep", "regression", x, np.zeros_like(x), x_test, np.zeros_like(x_test),
        seed=seed, val_fraction=val_fraction, n_classes=None, input_shape=(dim,),
        default_model="quadratic_deep", default_loss="half_sse", meta=meta,
        noise_std=noise, hessian=torch.from_numpy(hessian),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# synthetic 1-D regression


def _sin(x: Tensor) -> Tensor:
    return torch.sin(2.0 * math.pi * x)


def _cubic(x: Tensor) -> Tensor:
    return x**3 - 0.5 * x


def _step(x: Tensor) -> Tensor:
    return torch.where(x < 0, torch.zeros_like(x), torch.ones_like(x))


# Module-level functions (not lambdas) so that a Splits pickles, e.g. into worker processes.
_TRUE_FNS: dict[str, Callable[[Tensor], Tensor]] = {"sin": _sin, "cubic": _cubic, "step": _step}


def regression_true_fn(name: str = "sin") -> Callable[[Tensor], Tensor]:
    """The noiseless target function of the ``regression`` dataset.

    ``"sin"``: ``f(x) = sin(2 pi x)``; ``"cubic"``: ``f(x) = x^3 - x/2``; ``"step"``:
    ``f(x) = 1[x >= 0]``. Inputs live in ``[-1, 1]``.

    Args:
        name: one of ``"sin"``, ``"cubic"``, ``"step"``.

    Returns:
        an elementwise function of a tensor.
    """
    if name not in _TRUE_FNS:
        raise KeyError(f"unknown true function {name!r}; valid names: {sorted(_TRUE_FNS)}")
    return _TRUE_FNS[name]


def sample_regression(
    n: int, *, noise_std: float = 0.3, fn: str = "sin", seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Draw ``n`` examples ``x ~ U(-1, 1)``, ``y = f(x) + noise_std * eps``, ``eps ~ N(0, 1)``.

    Used by :func:`load` and by bias-variance experiments that need fresh training sets.

    Args:
        n: number of examples.
        noise_std: standard deviation of the Gaussian target noise (>= 0).
        fn: name of the true function (see :func:`regression_true_fn`).
        seed: seed of the ``torch.Generator`` used for the draw.

    Returns:
        ``(x, y)``, float32 tensors of shape ``(n, 1)``.

    Example:
        >>> x, y = sample_regression(5, noise_std=0.0)
        >>> bool(torch.allclose(y, torch.sin(2 * math.pi * x)))
        True
    """
    n = _check_int("n", n, 1)
    noise_std = check("noise_std", noise_std, NONNEGATIVE)
    f = regression_true_fn(fn)
    g = torch.Generator().manual_seed(int(seed))
    x = torch.rand(n, 1, generator=g, dtype=torch.float64) * 2.0 - 1.0
    eps = torch.randn(n, 1, generator=g, dtype=torch.float64)
    y = f(x) + noise_std * eps
    return x.float(), y.float()


def _load_regression(seed: int, val_fraction: float, options: dict[str, Any]) -> Splits:
    _reject_unknown("regression", options, ("n_train", "n_test", "noise_std", "fn", "data_seed"))
    n_train = _check_int("n_train", options.get("n_train", 200), 2)
    n_test = _check_int("n_test", options.get("n_test", 1000), 1)
    noise = check("noise_std", options.get("noise_std", 0.3), NONNEGATIVE)
    fn = options.get("fn", "sin")
    data_seed = _check_int("data_seed", options.get("data_seed", 0), 0)
    x, y = sample_regression(n_train, noise_std=noise, fn=fn, seed=data_seed)
    # An independent stream for the test set: seed offset by a large odd constant.
    x_t, y_t = sample_regression(n_test, noise_std=noise, fn=fn, seed=data_seed + 1_000_003)
    meta = {"source": "synthetic", "fn": fn, "n_train": n_train, "n_test": n_test,
            "data_seed": data_seed}  # fmt: skip
    return _finish(
        "regression", "regression", x.numpy(), y.numpy(), x_t.numpy(), y_t.numpy(),
        seed=seed, val_fraction=val_fraction, n_classes=None, input_shape=(1,),
        default_model="mlp", default_loss="mse", meta=meta,
        true_fn=regression_true_fn(fn), noise_std=noise,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# moons / blobs


def _load_moons(seed: int, val_fraction: float, options: dict[str, Any]) -> Splits:
    from sklearn.datasets import make_moons  # heavy: imported at first use

    _reject_unknown("moons", options, ("n_samples", "noise", "test_fraction", "data_seed"))
    n = _check_int("n_samples", options.get("n_samples", 1000), 10)
    noise = check("noise", options.get("noise", 0.2), NONNEGATIVE)
    test_fraction = check("test_fraction", options.get("test_fraction", 0.2), FRACTION)
    data_seed = _check_int("data_seed", options.get("data_seed", 0), 0)
    x, y = make_moons(n_samples=n, noise=noise, random_state=data_seed)
    return _synthetic_classification(
        "moons", x, y, seed, val_fraction, test_fraction, data_seed, 2,
        {"n_samples": n, "noise": noise},
    )  # fmt: skip


def _load_blobs(seed: int, val_fraction: float, options: dict[str, Any]) -> Splits:
    from sklearn.datasets import make_blobs  # heavy: imported at first use

    allowed = ("n_samples", "centers", "n_features", "cluster_std", "test_fraction", "data_seed")
    _reject_unknown("blobs", options, allowed)
    n = _check_int("n_samples", options.get("n_samples", 1000), 10)
    centers = _check_int("centers", options.get("centers", 3), 2)
    n_features = _check_int("n_features", options.get("n_features", 2), 1)
    std = check("cluster_std", options.get("cluster_std", 1.0), POSITIVE)
    test_fraction = check("test_fraction", options.get("test_fraction", 0.2), FRACTION)
    data_seed = _check_int("data_seed", options.get("data_seed", 0), 0)
    x, y = make_blobs(
        n_samples=n, centers=centers, n_features=n_features, cluster_std=std,
        random_state=data_seed,
    )  # fmt: skip
    return _synthetic_classification(
        "blobs", x, y, seed, val_fraction, test_fraction, data_seed, centers,
        {"n_samples": n, "centers": centers, "n_features": n_features, "cluster_std": std},
    )  # fmt: skip


def _synthetic_classification(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    data_seed: int,
    n_classes: int,
    meta: dict[str, Any],
) -> Splits:
    from sklearn.model_selection import train_test_split  # heavy: imported at first use

    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=data_seed, stratify=y
    )
    meta = {"source": f"sklearn.datasets.make_{name}", "test_fraction": test_fraction,
            "data_seed": data_seed, **meta}  # fmt: skip
    return _finish(
        name, "classification", x_rest, y_rest, x_test, y_test,
        seed=seed, val_fraction=val_fraction, n_classes=n_classes, input_shape=(x.shape[1],),
        default_model="mlp", default_loss="cross_entropy", meta=meta,
    )  # fmt: skip


_LOADERS: dict[str, Callable[[int, float, dict[str, Any]], Splits]] = {
    "mnist1d": _load_mnist1d,
    "digits": _load_digits,
    "digits32": _load_digits32,
    "quadratic_deep": _load_quadratic_deep,
    "regression": _load_regression,
    "moons": _load_moons,
    "blobs": _load_blobs,
}


def load(name: str, *, seed: int = 0, val_fraction: float = 0.2, **options: Any) -> Splits:
    """Load a dataset by name, with a validation split carved from its training data.

    Args:
        name: one of :data:`DATASETS`.
        seed: seed of the train/validation split (sklearn's ``train_test_split``, stratified for
            classification). The same seed gives the same split, bit for bit.
        val_fraction: fraction of the training data held out for validation, in ``(0, 1)``.
        **options: dataset options. ``mnist1d``: any ``mnist1d.data.get_dataset_args()`` key,
            ``data_seed`` (42), ``cache`` (True). ``digits``: ``test_fraction`` (0.2),
            ``split_seed`` (0). ``digits32`` (:func:`_load_digits32`): those of
            ``digits``, ``size`` (32), ``channels`` (1). ``quadratic_deep``: ``dim`` (100),
            ``n_train`` (1000), ``n_test`` (1000), ``noise_std`` (0.6). ``regression``:
            ``n_train`` (200), ``n_test`` (1000), ``noise_std`` (0.3), ``fn`` ("sin"),
            ``data_seed`` (0).
            ``moons``: ``n_samples`` (1000), ``noise`` (0.2), ``test_fraction`` (0.2),
            ``data_seed`` (0). ``blobs``: ``n_samples`` (1000), ``centers`` (3),
            ``n_features`` (2), ``cluster_std`` (1.0), ``test_fraction``, ``data_seed``.
            Every dataset: ``train_subset`` and ``subset_seed`` (:func:`train_subset`).

    Returns:
        a :class:`Splits` with the test split sealed.

    Raises:
        KeyError: unknown dataset name (the message lists the valid ones).
        ValueError: bad ``seed``, ``val_fraction`` or option.

    Example:
        >>> s = load("digits", seed=1)
        >>> s.input_shape, s.n_classes, s.n_train + s.n_val
        ((1, 8, 8), 10, 1437)
    """
    if name not in _LOADERS:
        raise KeyError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    seed = _check_int("seed", seed, 0)
    check("val_fraction", val_fraction, FRACTION)
    options = dict(options)
    fraction = options.pop("train_subset", None)
    subset_seed = options.pop("subset_seed", None)
    if fraction is None and subset_seed is not None:
        raise ValueError(f"subset_seed={subset_seed!r} needs train_subset (a fraction in (0, 1])")
    if fraction is not None:  # checked before the data are made
        _check_subset(fraction, subset_seed)
    splits = _LOADERS[name](seed, float(val_fraction), options)
    if fraction is None:
        return splits
    return train_subset(splits, fraction, seed=0 if subset_seed is None else subset_seed)


def _check_subset(fraction: Any, seed: Any) -> None:
    ok = isinstance(fraction, (int, float)) and not isinstance(fraction, bool)
    if not ok or not 0.0 < fraction <= 1.0:
        raise ValueError(f"train_subset must be a fraction in (0, 1], got {fraction!r}")
    if seed is not None:
        _check_int("subset_seed", seed, 0)


def train_subset(splits: Splits, fraction: float, *, seed: int = 0) -> Splits:
    """A seeded ``fraction`` of the training examples and of the validation examples (at
    least one of each, kept in their order); the test split, sealed as it was, unchanged.

    Example:
        >>> s = load("digits")
        >>> t = load("digits", train_subset=0.75, subset_seed=3)
        >>> (t.n_train, t.n_val, t.n_test) == (round(0.75 * s.n_train), round(0.75 * s.n_val),
        ...                                    s.n_test)
        True
    """
    _check_subset(fraction, seed)
    rng = np.random.default_rng(seed)

    def keep(n: int) -> Tensor:
        k = max(1, round(n * fraction))
        return torch.from_numpy(np.sort(rng.permutation(n)[:k]))

    train, val = keep(splits.n_train), keep(splits.n_val)
    return dataclasses.replace(
        splits,
        x_train=splits.x_train[train],
        y_train=splits.y_train[train],
        x_val=splits.x_val[val],
        y_val=splits.y_val[val],
        meta={**splits.meta, "train_subset": fraction, "subset_seed": seed},
    )


def chance_level(splits: Splits, *, z: float = 2.0) -> float | None:
    r"""The held-out metric a model that learned nothing from the inputs reaches.

    - Classification: always predicting the most frequent class of the training data
      (train + validation) is right a fraction :math:`p` of the time. A final accuracy within
      ``z`` standard errors of it, :math:`p + z\sqrt{p(1-p)/n_{val}}`, is no better than
      chance (at ``z = 2``, a random guesser passes this bar about 2.5% of the time).
    - Regression: the loss of predicting the training mean for every validation example,
      with the problem's default loss.

    Returns:
        The threshold, or None when it cannot be computed (an empty validation split, an
        unknown loss).

    Example:
        >>> round(chance_level(load("moons", n_samples=300)), 3)  # 0.5 + 2 * 0.5 / sqrt(48)
        0.644
    """
    y_val = splits.y_val
    if len(y_val) == 0:
        return None
    if splits.task == "classification":
        labels = torch.cat([splits.y_train, y_val])
        p = float(torch.bincount(labels).max()) / len(labels)
        return p + z * math.sqrt(p * (1 - p) / len(y_val))
    try:
        loss = losses.get(splits.default_loss)
    except (KeyError, ValueError):
        return None
    pred = splits.y_train.float().mean(0, keepdim=True).expand_as(y_val)
    with torch.no_grad():
        return float(loss(pred, y_val))


def fold_indices(
    y: Any, k: int, *, seed: int, stratify: bool
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train_idx, val_idx)`` of each of ``k`` folds (scikit-learn's splitters, shuffled).

    Args:
        y: targets (labels when ``stratify``): a tensor or an array.
        k: number of folds (>= 2).
        seed: ``random_state`` of the splitter.
        stratify: keep class proportions in every fold (``StratifiedKFold``), else ``KFold``.

    Example:
        >>> folds = fold_indices(np.array([0, 1] * 5), 5, seed=0, stratify=True)
        >>> [len(v) for _, v in folds]
        [2, 2, 2, 2, 2]
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    y_np = y.numpy() if hasattr(y, "numpy") else np.asarray(y)
    splitter = (StratifiedKFold if stratify else KFold)(
        n_splits=int(k), shuffle=True, random_state=seed
    )
    x_dummy = np.zeros((len(y_np), 1))
    target = y_np if stratify else None
    return [(tr, va) for tr, va in splitter.split(x_dummy, target)]
