r"""Problems whose data are ``torch.utils.data.Dataset``\ s: streamed, seeded, test split sealed.

A :class:`~descentlab.problems.problem.Problem` whose ``data`` holds datasets instead of arrays
(``{"train": ds, "test": ds[, "val": ds]}``) becomes a :class:`DatasetSplits`: the same
protocol as arrays, its batches drawn by torch's own ``DataLoader`` in an order the run's seed
decides (docs/compare.md). Iterable datasets need a ``"val"`` dataset of their own, and
``steps`` where they have no ``len()``.

``loader`` holds the ``DataLoader``'s own options, passed through: ``num_workers``,
``pin_memory``, ``collate_fn``, ``prefetch_factor``, ``timeout``, ``worker_init_fn``,
``multiprocessing_context``, and two of ours: ``eval_batch_size`` (examples per batch when
evaluating, 1024) and ``eval_train_examples`` (the ``train/*`` metrics are measured on the
training set's first this many examples; default: as many as the validation set holds, so an
evaluation does not read all the training data -- the validation and test metrics always read
their whole split). Batch size, shuffling, sampler and generator belong to the run and are
refused here.

Example:
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> from descentlab.problems.problem import Problem
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(100, 3, generator=g), torch.randint(0, 2, (100,), generator=g)
    >>> p = Problem(name="pairs", model=lambda: torch.nn.Linear(3, 2),
    ...             data={"train": TensorDataset(x[:80], y[:80]),
    ...                   "test": TensorDataset(x[80:], y[80:])},
    ...             loader={"num_workers": 0})
    >>> s = p.splits(seed=0, val_fraction=0.25)
    >>> s.task, s.n_train, s.n_val, s.n_test, s.input_shape, s.n_classes
    ('classification', 60, 20, 20, (3,), 2)
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import (
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    default_collate,
)

from descentlab._usercode import genuine_interrupt
from descentlab.constraints import FRACTION, check
from descentlab.problems._user import USER_CODE_ERRORS, _describe, failure, stamp
from descentlab.problems.data import TestSeal

__all__ = [
    "DATASETS",
    "DATASET_KEYS",
    "LOADER_OPTIONS",
    "DataError",
    "DatasetSplits",
    "Datasets",
    "check_loader_options",
    "dataset_targets",
    "is_dataset",
    "is_iterable",
    "kind_of",
    "label_fault",
    "length",
    "scan_labels",
    "unpicklable",
]

#: The splits a problem of datasets names (``val`` optional for map-style training data).
DATASET_KEYS: tuple[str, ...] = ("train", "test", "val")

#: ``DataLoader`` options a problem passes through (plus ``eval_batch_size``, ours).
LOADER_OPTIONS: tuple[str, ...] = (
    "num_workers",
    "pin_memory",
    "collate_fn",
    "prefetch_factor",
    "timeout",
    "worker_init_fn",
    "multiprocessing_context",
    "eval_batch_size",
    "eval_train_examples",
)
_OWNED = ("batch_size", "shuffle", "sampler", "batch_sampler", "generator", "drop_last")


class DataError(ValueError):
    """A dataset failed while it was read: one line naming the problem, the split and the
    example (raised from a trial instead of a traceback)."""


def is_dataset(obj: Any) -> bool:
    """Whether ``obj`` is a ``torch.utils.data.Dataset`` (map-style or iterable)."""
    return isinstance(obj, Dataset)


def is_iterable(ds: Any) -> bool:
    """Whether ``ds`` is an iterable-style dataset (read in its own order)."""
    return isinstance(ds, IterableDataset)


def length(ds: Any) -> int | None:
    """``len(ds)``, or None for an iterable dataset without a length."""
    try:
        return len(ds)
    except TypeError:
        return None


def check_loader_options(where: str, loader: Any) -> dict[str, Any]:
    """The ``DataLoader`` options of a problem, checked (ValueError naming the bad key)."""
    if loader is None:
        return {}
    if not isinstance(loader, Mapping):
        raise ValueError(f"{where}: loader must be a dict of DataLoader options, got {loader!r}")
    owned = sorted(k for k in loader if k in _OWNED)
    if owned:
        raise ValueError(
            f"{where}: loader option(s) {owned} belong to the run (batch_size, the seeded "
            f"order); valid loader options: {', '.join(LOADER_OPTIONS)}"
        )
    unknown = sorted(set(loader) - set(LOADER_OPTIONS))
    if unknown:
        raise ValueError(
            f"{where}: unknown loader option(s) {unknown}; valid: {', '.join(LOADER_OPTIONS)}"
        )
    out = dict(loader)
    for key in ("num_workers", "eval_batch_size", "prefetch_factor", "eval_train_examples"):
        value = out.get(key)
        minimum = 0 if key == "num_workers" else 1
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < minimum
        ):
            raise ValueError(
                f"{where}: loader {key} must be an integer >= {minimum}, got {value!r}"
            )
    for key in ("collate_fn", "worker_init_fn"):
        if out.get(key) is not None and not callable(out[key]):
            raise ValueError(f"{where}: loader {key} must be callable, got {out[key]!r}")
    timeout = out.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0
    ):
        raise ValueError(
            f"{where}: loader timeout must be a number of seconds >= 0, got {timeout!r}"
        )
    return out


def dataset_targets(ds: Any) -> Tensor | None:
    """The labels of a map-style dataset where they are known without reading its examples
    (a ``TensorDataset``'s second tensor, a ``targets`` attribute, and subsets and
    concatenations of those), else None."""
    if isinstance(ds, Subset):
        inner = dataset_targets(ds.dataset)
        return None if inner is None else inner[torch.as_tensor(list(ds.indices), dtype=torch.long)]
    if isinstance(ds, ConcatDataset):
        parts = [dataset_targets(d) for d in ds.datasets]
        if any(p is None for p in parts):
            return None
        return torch.cat(parts)  # type: ignore[arg-type]
    if isinstance(ds, TensorDataset) and len(ds.tensors) == 2:
        return ds.tensors[1]
    targets = getattr(ds, "targets", None)
    if targets is None or is_iterable(ds):
        return None
    try:
        t = torch.as_tensor(np.asarray(targets))
    except (TypeError, ValueError):
        return None
    return t if t.dim() >= 1 and t.shape[0] == length(ds) else None


#: The most seconds a stream without a ``fingerprint()`` is read for to hash what it yields.
STREAM_HASH_SECONDS = 60.0


def _hash_example(h: Any, item: Any) -> None:
    for part in item if isinstance(item, tuple | list) else (item,):
        try:
            t = torch.as_tensor(part)
            h.update(f"{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        except (TypeError, ValueError, RuntimeError):  # (not tensors: their text)
            h.update(repr(part).encode())


def _hash_stream(ds: Any, split: str, where: str) -> bytes:
    """A hash of every example a stream yields, read once here with the random state fixed
    (a random augmentation in ``__iter__`` hashes the same each time)."""
    import random
    import time

    h = hashlib.sha256()
    deadline = time.monotonic() + STREAM_HASH_SECONDS
    state = (random.getstate(), np.random.get_state())
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            random.seed(0)
            np.random.seed(0)
            count = 0
            for item in ds:
                _hash_example(h, item)
                count += 1
                if time.monotonic() > deadline:
                    raise DataError(
                        f"{where}: the {split} stream takes more than {STREAM_HASH_SECONDS:g} s "
                        "to read; descentlab hashes what a stream yields so that changed data "
                        "never reuse stored results: give the dataset a fingerprint() method "
                        "that returns a version of its data"
                    )
    except DataError:
        raise
    except USER_CODE_ERRORS as exc:
        if genuine_interrupt(exc):
            raise
        raise DataError(
            f"{where}: the {split} dataset's example {count} of the stream failed: {failure(exc)}"
        ) from None
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
    h.update(f"{count} examples".encode())
    return h.digest()


def _fingerprint_part(ds: Any, first: Any, split: str = "train", where: str = "") -> bytes:
    """What identifies a dataset: its own ``fingerprint()`` where it has one; else its type,
    its length, its known labels and its first example, and for a stream (no index to read
    by) a hash of every example it yields (:func:`_hash_stream`)."""
    own = getattr(ds, "fingerprint", None)
    if callable(own):
        return str(own()).encode()
    h = hashlib.sha256(f"{type(ds).__module__}.{type(ds).__qualname__}:{length(ds)}".encode())
    targets = dataset_targets(ds) if not is_iterable(ds) else None
    if targets is not None:
        h.update(targets.contiguous().numpy().tobytes())
    for part in first:
        t = torch.as_tensor(part)
        h.update(f"{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.contiguous().numpy().tobytes())
    if is_iterable(ds):
        h.update(_hash_stream(ds, split, where))
    return h.digest()


@dataclass(eq=False, repr=False, kw_only=True)
class DatasetSplits(TestSeal):
    """Train / validation / (sealed) test ``Dataset``\\ s of a problem, as the engine reads them.

    The counterpart of :class:`~descentlab.problems.data.Splits` for data that are not held in
    memory: the same names, defaults and sealing (:class:`~descentlab.problems.data.TestSeal`),
    datasets where ``Splits`` has tensors.

    Attributes:
        train, val: the training and validation datasets.
        loader: the ``DataLoader`` options (:data:`LOADER_OPTIONS`).
        target_shape: the shape of one example's target.
        x_dtype: the dtype of one example's input.
    """

    train: Any
    val: Any
    _test: Any = field(repr=False)
    loader: dict[str, Any] = field(default_factory=dict)
    target_shape: tuple[int, ...] = ()
    x_dtype: torch.dtype = torch.float32
    #: ``(problem, seed, val_fraction)`` it was made from, where the problem was loaded by
    #: reference (a file's datasets pickle as that reference: worker processes load the file
    #: again and carve the same splits); None for derived splits
    _origin: tuple[Any, int, float] | None = field(default=None, repr=False)

    @property
    def test(self) -> Any:
        """The test dataset (raises ``TestSetSealedError`` while sealed)."""
        self._guard()
        return self._test

    @property
    def n_train(self) -> int | None:
        """Training examples (None: an iterable dataset without a length)."""
        return length(self.train)

    @property
    def n_val(self) -> int | None:
        return length(self.val)

    @property
    def n_test(self) -> int | None:
        return length(self._test)

    def __reduce__(self) -> Any:
        if self._origin is not None and self._sealed:
            return (_remake, self._origin)
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return (_rebuild, (fields,))

    def to(self, device: Any) -> DatasetSplits:
        """The same splits (batches are moved to the run's device as they are drawn)."""
        return self

    def check_labels(self) -> None:
        """Nothing to check up front: a stream's labels are checked batch by batch as it is
        read (and those known without reading were checked when the splits were made)."""

    def known_targets(self) -> tuple[Tensor, Tensor] | None:
        """The training and validation labels where known without reading the examples
        (:func:`dataset_targets`), else None."""
        y_train, y_val = dataset_targets(self.train), dataset_targets(self.val)
        return None if y_train is None or y_val is None else (y_train, y_val)

    def unpicklable(self, where: str, why: str) -> DataError | None:
        """The first dataset that cannot be sent to the worker processes ``why`` names, as
        :func:`unpicklable`'s error; None: each can."""
        for key in ("train", "val", "_test"):
            error = unpicklable(getattr(self, key), key.strip("_"), where, why)
            if error is not None:
                return error
        return None

    def train_val(self) -> Any:
        """Training and validation data as one dataset, for the final refit."""
        if is_iterable(self.train) or is_iterable(self.val):
            return _Chain(self.train, self.val)
        return ConcatDataset([self.train, self.val])

    def holdout(self) -> DatasetSplits:
        """Train / validation with the test data removed (what tuning trains on)."""
        return dataclasses.replace(self, _test=_Empty(), _sealed=True, _origin=None)

    def refit(self) -> DatasetSplits:
        """Training data = train + validation; the test split kept, sealed."""
        return dataclasses.replace(
            self, train=self.train_val(), meta={**self.meta, "refit": "train+val"}, _origin=None
        )

    def folds(self, k: int, *, seed: int) -> list[DatasetSplits]:
        """``k`` cross-validation splits over train + validation (map-style only; stratified
        where the labels are known, :func:`dataset_targets`)."""
        from descentlab.problems.data import fold_indices

        whole = self.train_val()
        if is_iterable(whole):
            raise ValueError(
                f"cross-validation needs map-style datasets; {self.name!r} is read as a stream"
            )
        y = dataset_targets(whole)
        stratify = self.task == "classification" and y is not None and y.dim() == 1
        labels = y if stratify else np.zeros(len(whole))
        out = []
        for tr, va in fold_indices(labels, k, seed=seed, stratify=stratify):
            fold = dataclasses.replace(
                self, train=Subset(whole, tr.tolist()), val=Subset(whole, va.tolist()),
                _test=_Empty(), _sealed=True, meta={**self.meta, "fold": f"{len(out)}/{k}"},
                _origin=None,
            )  # fmt: skip
            out.append(fold)
        return out


def _remake(problem: Any, seed: int, val_fraction: float) -> DatasetSplits:
    return problem.splits(seed=seed, val_fraction=val_fraction)


def _rebuild(fields: dict[str, Any]) -> DatasetSplits:
    return DatasetSplits(**fields)


class _Empty(Dataset):
    """No test examples (tuning and cross-validation data)."""

    def __len__(self) -> int:
        return 0

    def __getitem__(self, i: int) -> Any:
        raise IndexError(i)


class _Chain(IterableDataset):
    """Two datasets read one after the other (a refit of a streamed training set)."""

    def __init__(self, first: Any, second: Any) -> None:
        self.parts = (first, second)

    def __iter__(self) -> Any:
        for part in self.parts:
            yield from iter(part)

    def __len__(self) -> int:
        lengths = [length(p) for p in self.parts]
        if any(n is None for n in lengths):
            raise TypeError("a stream without a length")
        return sum(lengths)  # type: ignore[arg-type]


def first_example(ds: Any, split: str, where: str) -> tuple[Any, Any]:
    """The first ``(input, target)`` of ``ds`` (ValueError naming the split when the dataset
    is empty, fails, or gives no pair)."""
    try:
        if is_iterable(ds):
            item = next(iter(ds), None)
            if item is None:
                raise DataError(
                    f"{where}: the {split} dataset is empty (the stream yielded no example; "
                    "an IterableDataset must yield its examples each time it is iterated)"
                )
        else:
            if length(ds) == 0:
                raise DataError(f"{where}: the {split} dataset is empty")
            item = ds[0]
    except DataError:
        raise
    except USER_CODE_ERRORS as exc:
        if is_iterable(ds):
            raise DataError(
                f"{where}: the {split} dataset's example 0 of the stream failed: {failure(exc)}"
            ) from None
        raise DataError(
            f"{where}: the {split} dataset failed at example 0: {failure(exc)}"
        ) from None
    if not isinstance(item, tuple | list) or len(item) != 2:
        raise DataError(
            f"{where}: the {split} dataset's example 0 must be a pair (input, target), got "
            f"{type(item).__name__}"
        )
    return item[0], item[1]


#: The most examples, and seconds, a map-style dataset's labels are read for before training
#: (:func:`scan_labels`); the batches are checked as they are drawn in any case.
SCAN_EXAMPLES = 20_000
SCAN_SECONDS = 2.0


def label_fault(y: Any, n_classes: int) -> Any:
    """The first label of ``y`` (one example's target, or a batch's) outside
    ``[0, n_classes)`` as ``(position in the flattened tensor, value)``, or None: all are in
    range (or the targets are not integer labels).

    Example:
        >>> label_fault(torch.tensor([0, 1, -1]), 2), label_fault(torch.tensor(1), 2)
        ((2, -1), None)
    """
    t = torch.as_tensor(y)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool or not t.numel():
        return None
    flat = t.reshape(-1)
    bad = (flat < 0) | (flat >= n_classes)
    if not bool(bad.any()):
        return None
    k = int(bad.nonzero()[0, 0])
    return k, int(flat[k])


def scan_labels(ds: Any, split: str, n_classes: int, where: str) -> None:
    """Read the targets of a map-style dataset whose labels are not known up front, before
    any training: a label outside ``[0, n_classes)`` is a :class:`DataError` naming the split,
    the example and the value. A cheap scan: at most :data:`SCAN_EXAMPLES` examples and
    :data:`SCAN_SECONDS` seconds (a larger or slower dataset is checked batch by batch as it
    is drawn); an example that fails is left to that check too. Random draws the dataset
    makes (an augmentation) do not touch the run's random state."""
    import random
    import time

    if is_iterable(ds):
        return  # (a stream: checked at the first batch that has such a label)
    n = length(ds) or 0
    deadline = time.monotonic() + SCAN_SECONDS
    state = (random.getstate(), np.random.get_state())
    try:
        with torch.random.fork_rng(devices=[]):
            for i in range(min(n, SCAN_EXAMPLES)):
                if time.monotonic() > deadline:
                    return
                try:
                    item = ds[i]
                    fault = label_fault(item[1], n_classes)
                except USER_CODE_ERRORS as exc:
                    if genuine_interrupt(exc):  # (Ctrl-C: no fault of the dataset's)
                        raise
                    return
                if fault is not None:
                    raise DataError(
                        f"{where}: the {split} dataset's example {i} has the label {fault[1]}, "
                        f"outside 0..{n_classes - 1} (n_classes={n_classes}); nothing was "
                        "trained"
                    )
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])


def unpicklable(ds: Any, split: str, where: str, why: str) -> DataError | None:
    """A :class:`DataError` saying that the ``split`` dataset cannot be sent to the worker
    processes ``why`` names (they receive it pickled), and the two ways out; None: it can.

    Example:
        >>> import threading
        >>> ds = TensorDataset(torch.zeros(3, 2), torch.zeros(3))
        >>> unpicklable(ds, "train", "problem 'p'", "the loader's num_workers=2") is None
        True
        >>> ds.lock = threading.Lock()
        >>> print(unpicklable(ds, "train", "problem 'p'", "the loader's num_workers=2"))
        problem 'p': the train dataset (TensorDataset) cannot be sent to worker processes: cannot \
pickle '_thread.lock' object -- the loader's num_workers=2 start processes that receive it \
pickled; run with --workers 1 and the loader's num_workers=0, or make the dataset picklable \
(open locks, files and connections when first used, or in a worker_init_fn)
    """
    import pickle

    try:
        pickle.dumps(ds)
    except Exception as exc:
        own = ds
        while isinstance(own, Subset):  # (the user's dataset, not the split carved from it)
            own = own.dataset
        return DataError(
            f"{where}: the {split} dataset ({type(own).__name__}) cannot be sent to worker "
            f"processes: {exc} -- {why} start processes that receive it pickled; run with "
            "--workers 1 and the loader's num_workers=0, or make the dataset picklable (open "
            "locks, files and connections when first used, or in a worker_init_fn)"
        )
    return None


def collate(loader: Mapping[str, Any], examples: list[Any]) -> tuple[Any, Any]:
    """``examples`` made into one batch as the problem's loader does (its ``collate_fn``, else
    torch's ``default_collate``)."""
    fn = loader.get("collate_fn") or default_collate
    batch = fn(examples)
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise DataError(f"a batch must be a pair (inputs, targets), got {type(batch).__name__}")
    return batch[0], batch[1]


def first_examples(problem: Any) -> dict[str, tuple[Tensor, Tensor]]:
    """Each split's first ``(input, target)`` as one example of a batch (collated as the
    loader does, the batch dimension removed); with torch's own collation every split's
    examples must agree in shape. Read once per problem (a stream is not opened again)."""
    cached = problem.__dict__.get("_first_examples")
    if cached is not None:
        return cached
    where = problem._where()
    data = problem.data
    loader = problem.loader or {}
    firsts = {}
    for key in DATASET_KEYS:
        if key in data:
            raw = first_example(data[key], key, where)
            try:
                x, y = collate(loader, [tuple(raw)])
            except USER_CODE_ERRORS as exc:
                raise DataError(
                    f"{where}: the {key} dataset's example 0 cannot be made into a batch: "
                    f"{failure(exc)}"
                ) from None
            firsts[key] = (torch.as_tensor(x)[0], torch.as_tensor(y)[0])
    x0, y0 = firsts["train"]
    for key, (x, y) in firsts.items():
        if loader.get("collate_fn") is None and (x.shape != x0.shape or y.shape != y0.shape):
            raise DataError(
                f"{where}: the {key} dataset's example 0 has input {tuple(x.shape)} and target "
                f"{tuple(y.shape)}, the train dataset's {tuple(x0.shape)} and {tuple(y0.shape)}"
            )
    problem.__dict__["_first_examples"] = firsts
    return firsts


def fingerprint(problem: Any) -> str:
    """A hash of a problem of datasets (8 hex digits): each dataset's
    :func:`_fingerprint_part`, the task, the loss and the metric."""
    cached = problem.__dict__.get("_fingerprint")
    if cached is not None:  # (a stream is read through once per problem)
        return cached
    firsts = first_examples(problem)
    h = hashlib.sha256()
    for key, first in firsts.items():
        h.update(key.encode() + _fingerprint_part(problem.data[key], first, key, problem._where()))
    loss = problem.loss_name if isinstance(problem.loss_name, str) else _describe(problem.loss)
    h.update(
        f"{problem.task_name}|{loss}|{problem.metric_name}|{problem.n_classes}|"
        f"{sorted(problem.loader or {})}".encode()
    )
    problem.__dict__["_fingerprint"] = h.hexdigest()[:8]
    return problem.__dict__["_fingerprint"]


def _checked_classes(problem: Any, where: str) -> int:
    """A classification problem's number of classes (given, or the largest known label + 1),
    and its labels checked against it: those known without reading the examples, a map-style
    dataset's read up front (:func:`scan_labels`), and each split's first example."""
    from descentlab.problems import data as datasets

    data = problem.data
    n_classes = problem.n_classes
    if n_classes is None:
        known = [dataset_targets(data[k]) for k in ("train", "test")]
        if any(t is None for t in known):
            raise ValueError(
                f"{where}: give n_classes (the labels of a dataset are not known without "
                "reading every example)"
            )
        n_classes = int(max(int(t.max()) for t in known)) + 1  # type: ignore[union-attr]
    for key in ("train", "test"):
        t = dataset_targets(data[key])
        if t is not None:
            datasets.check_labels(t.to(torch.int64), n_classes, name=f"{where}: y_{key}")
    for key in DATASET_KEYS:
        if key in data and dataset_targets(data[key]) is None:
            scan_labels(data[key], key, n_classes, where)
    for key, (_x, y) in first_examples(problem).items():  # (a stream's first example)
        fault = label_fault(y, n_classes)
        if fault is not None:
            of = " of the stream" if is_iterable(data[key]) else ""
            raise DataError(
                f"{where}: the {key} dataset's example 0{of} has the label {fault[1]}, "
                f"outside 0..{n_classes - 1} (n_classes={n_classes}); nothing was trained"
            )
    return n_classes


def make_splits(problem: Any, *, seed: int, val_fraction: float) -> DatasetSplits:
    """A problem of datasets as :class:`DatasetSplits` (what ``Problem.splits`` returns for
    it): its examples' shapes and task read from the first training example, the validation
    split carved from a map-style training set unless given."""
    from descentlab.problems import data as datasets

    where = problem._where()
    data = problem.data
    loader = check_loader_options(where, problem.loader)
    x0, y0 = first_examples(problem)["train"]
    task = problem.task_name
    classification = task == "classification"
    train, val = data["train"], data.get("val")
    if val is None:
        if is_iterable(train):
            raise ValueError(
                f"{where}: an iterable training dataset needs a 'val' dataset (a stream cannot "
                "be split by index)"
            )
        check("val_fraction", val_fraction, FRACTION)
        y_all = dataset_targets(train) if classification else None
        stratify = y_all is not None and y_all.dim() == 1
        idx = np.arange(len(train))
        labels = y_all.numpy() if stratify else idx
        tr, va, _, _ = datasets._split_train_val(
            idx, labels, val_fraction=val_fraction, seed=seed, stratify=stratify, where=where
        )
        train, val = Subset(train, tr.tolist()), Subset(train, va.tolist())
    n_classes = _checked_classes(problem, where) if classification else problem.n_classes
    return DatasetSplits(
        train=train,
        val=val,
        _test=data["test"],
        loader=loader,
        target_shape=tuple(y0.shape),
        x_dtype=x0.dtype,
        **datasets.example_fields(task, n_classes, x0.shape, y0.shape),
        **stamp(problem, seed, val_fraction, streamed=True),
        _origin=None if problem.source is None else (problem, seed, val_fraction),
    )


class Datasets:
    """The kind of a problem whose data are ``Dataset``\\ s (:class:`~descentlab.problems.
    problem.Problem` asks its data's kind, :func:`kind_of`, what arrays do in memory): the
    checks of its fields, its first target, its fingerprint, its splits and a sample batch."""

    def validate(self, problem: Any, where: str) -> None:
        """The data and loader fields, checked (ValueError naming the bad key)."""
        data = problem.data
        not_datasets = sorted(k for k, v in data.items() if not is_dataset(v))
        if not_datasets:
            raise ValueError(
                f"{where}: data mixes datasets and arrays ({not_datasets} are not "
                "torch.utils.data.Dataset); give every split as a Dataset or every one as arrays"
            )
        missing = [k for k in ("train", "test") if k not in data]
        if missing:
            raise ValueError(f"{where}: data is missing the {', '.join(missing)} dataset")
        unknown = sorted(set(data) - set(DATASET_KEYS))
        if unknown:
            raise ValueError(
                f"{where}: unknown data key(s) {unknown} for datasets; valid keys: "
                f"{', '.join(DATASET_KEYS)}"
            )
        check_loader_options(where, problem.loader)

    def first_target(self, problem: Any) -> Tensor:
        """The training set's first target (its dtype decides the task)."""
        return first_examples(problem)["train"][1]

    def fingerprint(self, problem: Any) -> str:
        return fingerprint(problem)

    def splits(self, problem: Any, *, seed: int, val_fraction: float) -> DatasetSplits:
        return make_splits(problem, seed=seed, val_fraction=val_fraction)

    def sample(self, problem: Any, splits: Any) -> tuple[Any, Any]:
        """The training set's first example as a batch of one (collated as the loader does)."""
        raw = first_example(problem.data["train"], "train", problem._where())
        return collate(splits.loader, [tuple(raw)])


#: The kind of data held as ``Dataset``\ s.
DATASETS = Datasets()


def kind_of(data: Mapping[str, Any], arrays: Any) -> Any:
    """The kind of a problem's ``data``: :data:`DATASETS` where any value is a ``Dataset``
    (then every one must be), else ``arrays``."""
    return DATASETS if any(is_dataset(v) for v in data.values()) else arrays
