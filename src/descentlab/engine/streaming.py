r"""Batches from ``torch.utils.data.Dataset``\ s: torch's ``DataLoader``, seeded by the run.

The engine's side of :mod:`descentlab.problems.streams`. A :class:`StreamedSplit` is one split
of a :class:`~descentlab.problems.streams.DatasetSplits` as a run reads it: evaluation reads it
in order (:meth:`StreamedSplit.batches`), and the training loop draws its batches from
:class:`LoaderBatches`, the counterpart of :class:`~descentlab.engine.loop.Batches`. Map-style
training data are shuffled each epoch by the array path's own draw and handed to a
``DataLoader`` as its ``batch_sampler``; each epoch's loader is made anew, its workers seeded
from the run's seed and the epoch, so a run resumed mid-epoch continues with the same batches.
Every batch is checked as it arrives (a :class:`~descentlab.problems.streams.DataError`, one
line naming the example; docs/compare.md)."""

from __future__ import annotations

import functools
import multiprocessing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Subset

from descentlab._announce import once
from descentlab._usercode import genuine_interrupt, interruptible
from descentlab.engine.seeds import stream_seed
from descentlab.problems._user import USER_CODE_ERRORS, failure
from descentlab.problems.streams import (
    DataError,
    DatasetSplits,
    is_iterable,
    label_fault,
    length,
    unpicklable,
)

__all__ = ["LoaderBatches", "StreamedSplit", "read_split", "vectorize_refusal"]

#: Examples per batch when a streamed split is evaluated (a problem's ``eval_batch_size``).
EVAL_BATCH = 1024

#: Examples past a failed batch's start a stream is read again for, to find the one that fails.
_RELOCATE_EXAMPLES = 100_000


@functools.singledispatch
def read_split(splits: Any, split: str, device: torch.device) -> tuple[Any, Any]:
    """Split ``split`` of a problem's ``splits`` as a run reads it, ``(inputs, targets)`` on
    ``device``: tensors (:meth:`~descentlab.problems.data.Splits.read`), or for datasets a
    :class:`StreamedSplit` and None. The test split is read while unsealed."""
    return splits.read(split, device)


@read_split.register(DatasetSplits)
def _(splits: DatasetSplits, split: str, device: torch.device) -> tuple[Any, Any]:
    return StreamedSplit(splits, split, getattr(splits, split), device), None


@functools.singledispatch
def vectorize_refusal(splits: Any) -> str | None:
    """Why runs on ``splits`` cannot train as one vectorized group (None: they can)."""
    return None


@vectorize_refusal.register(DatasetSplits)
def _(splits: DatasetSplits) -> str | None:
    return "runs on datasets (read through loaders) train one at a time"


def _announce(message: str) -> None:
    once(("stream", message), f"descentlab: {message}", stacklevel=3)


def _source_index(ds: Any, i: int) -> int:
    """Index ``i`` of a (nested) ``Subset`` as the index in the dataset the user gave."""
    while isinstance(ds, Subset):
        i = int(ds.indices[i])
        ds = ds.dataset
    return i


def train_eval_examples(splits: Any, limit: int | None) -> int | None:
    """How many of the training set's first examples its ``train/*`` metrics are measured on:
    the problem's ``eval_train_examples`` loader option, else as many as the validation set
    holds (1024 where it has no length) -- a pass over all the training data at every
    evaluation would cost more than the training; None: all (a set no larger)."""
    n_train = length(splits.train)
    if limit is None:
        limit = length(splits.val) or EVAL_BATCH
    return None if n_train is not None and n_train <= limit else int(limit)


def _worker_generator(seed: int, epoch: int) -> torch.Generator:
    # The loader draws its workers' base seed from this (never from the global generator).
    state = np.random.SeedSequence([seed, 3, epoch]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state >> 1))


def _one_line(exc: BaseException) -> str:
    """An exception as one line; a ``DataLoader`` worker's re-raised one by its last line."""
    text = failure(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1 and "Traceback" in text:
        return lines[-1]
    return lines[0] if lines else type(exc).__name__


class _WorkerStart:
    """A loader worker's start: it ends with the process that reads from it (a worker stuck
    in a dataset's ``__getitem__`` never looks at its parent itself: after an interrupt it
    would outlive the run), Ctrl-C and SIGTERM end it (not the handler of the training loop
    it was forked from, which would wait for a step boundary it has not), then the problem's
    own ``worker_init_fn``, whose failure is one line naming the problem and the split."""

    def __init__(self, user: Any, where: str = "", split: str = "") -> None:
        self.user, self.where, self.split = user, where, split

    def __call__(self, worker_id: int) -> None:
        import signal

        from descentlab._osutil import die_with_parent

        die_with_parent()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if self.user is not None:
            try:
                self.user(worker_id)
            except USER_CODE_ERRORS as exc:
                raise DataError(
                    f"{self.where}: the loader's worker_init_fn failed in the {self.split} "
                    f"split's worker {worker_id}: {_one_line(exc)}"
                ) from None


def _end_workers(it: Any) -> None:
    """Kill the loader workers of the iterator ``it`` now: torch would wait for each one
    (5 s apiece) before it ended those that hang. (Their process ids are taken off torch's
    watch first, as its own shutdown does: a worker it sees killed is otherwise an error.)"""
    workers = [w for w in getattr(it, "_workers", ()) if w.is_alive()]
    if not workers:
        return
    if getattr(it, "_worker_pids_set", False):
        from torch.utils.data._utils import signal_handling

        signal_handling._remove_worker_pids(id(it))
        it._worker_pids_set = False
    for worker in workers:
        worker.kill()


class StreamedSplit:
    """One split of a :class:`~descentlab.problems.streams.DatasetSplits`, as a run reads it.

    Args:
        splits: the problem's splits (its name, loader options, example shapes).
        split: ``"train"``, ``"val"`` or ``"test"``.
        dataset: that split's dataset.
        device: where batches go.
    """

    def __init__(self, splits: Any, split: str, dataset: Any, device: torch.device) -> None:
        self.where = f"problem {splits.name!r}"
        self.split, self.dataset, self.device = split, dataset, device
        self.options = dict(splits.loader)
        self.eval_batch = int(self.options.pop("eval_batch_size", EVAL_BATCH))
        #: examples an evaluation reads (None: all): the training set's train/* metrics are
        #: measured on its first examples (:func:`train_eval_examples`)
        limit = self.options.pop("eval_train_examples", None)
        self.eval_limit = train_eval_examples(splits, limit) if split == "train" else None
        self.custom_collate = self.options.get("collate_fn") is not None
        self.input_shape = tuple(splits.input_shape)
        self.target_shape = tuple(splits.target_shape)
        self.n_classes = splits.n_classes if splits.task == "classification" else None
        self.iterable = is_iterable(dataset)
        self.length = length(dataset)
        if self.options.get("num_workers") and multiprocessing.current_process().daemon:
            # A worker process of a comparison cannot start processes of its own.
            _announce(
                f"{self.where}: loader num_workers={self.options['num_workers']} runs as 0 in "
                "this worker process (a daemonic process cannot start processes); the batches "
                "are the same"
            )
            self.options["num_workers"] = 0
        elif (
            self.options.get("num_workers")
            and self.options.get("multiprocessing_context") is None
            and multiprocessing.parent_process() is not None
            and "fork" in multiprocessing.get_all_start_methods()
        ):
            # A comparison's trial process (started by spawn, which it would pass on): its
            # loader workers are forked as the main process's are, with the problem's module
            # (loaded from its file) already in them, and seeded the same way
            self.options["multiprocessing_context"] = "fork"
        if self.options.get("num_workers"):
            user = self.options.get("worker_init_fn")
            self.options["worker_init_fn"] = _WorkerStart(user, self.where, split)
        self._pin = bool(self.options.get("pin_memory")) and device.type == "cuda"

    def __repr__(self) -> str:
        return f"StreamedSplit({self.split}, n={self.length})"

    #: why runs on it cannot train sharded (:func:`~descentlab.engine.launch.check_shardable`)
    shard_refusal = "a problem of datasets read through a loader is not sharded"

    def training_batches(
        self, seeds: Sequence[int], batch_size: int | None, drop_last: bool
    ) -> LoaderBatches:
        """The training batches of a run on this split (:class:`LoaderBatches`)."""
        return LoaderBatches(seeds, self, batch_size, drop_last)

    def no_example(self) -> DataError:
        """The error of an evaluation that read no example (the user's words: the split)."""
        return self._fail(
            "stream yielded no example to evaluate (an IterableDataset must yield its "
            "examples again each time it is iterated: an __iter__ that returns a new "
            "iterator, not one it keeps)"
        )

    # -- loaders --------------------------------------------------------------------------

    def loader(self, seed_gen: torch.Generator, **how: Any) -> DataLoader:
        """A ``DataLoader`` over the split with the problem's options and ``how`` (a
        ``batch_sampler``, or ``batch_size`` and ``drop_last``)."""
        self._check_picklable()
        return DataLoader(self.dataset, generator=seed_gen, **how, **self.options)

    def _check_picklable(self) -> None:
        """Loader workers started by ``spawn`` or ``forkserver`` receive the dataset pickled:
        one that cannot be is named before any of them starts (once)."""
        workers = self.options.get("num_workers") or 0
        if workers < 1 or getattr(self, "_picklable", False):
            return
        context = self.options.get("multiprocessing_context")
        method = context if isinstance(context, str) or context is None else None
        if method is None and context is not None:
            method = context.get_start_method()
        if (method or multiprocessing.get_start_method(allow_none=True) or "fork") != "fork":
            error = unpicklable(
                self.dataset, self.split, self.where, f"the loader's num_workers={workers}"
            )
            if error is not None:
                raise error
        self._picklable = True

    def evaluation(self, size: int | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches an evaluation reads: the split in its order, the training split's first
        :attr:`eval_limit` examples, in batches of the problem's ``eval_batch_size`` (``size``,
        the slice an in-memory split is read in, does not apply)."""
        if self.eval_limit is None:
            yield from self.batches()
            return
        left = self.eval_limit
        for x, y in self.batches(batch_size=min(self.eval_batch, left)):
            yield x[:left], y[:left]
            left -= int(x.shape[0])
            if left <= 0:
                return

    def batches(
        self,
        *,
        batch_size: int | None = None,
        order: Sequence[int] | None = None,
        drop_last: bool = False,
        seed_gen: torch.Generator | None = None,
        skip: int = 0,
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """The split's batches on the device, checked: in order (``order`` None: the
        dataset's own order), ``batch_size`` examples each (None: the evaluation batch).
        ``skip``: examples of an iterable dataset to read past first (a resumed epoch)."""
        bs = self.eval_batch if batch_size is None else batch_size
        gen = seed_gen if seed_gen is not None else torch.Generator().manual_seed(0)
        if self.iterable:
            chunks = None
            loader = self.loader(gen, batch_size=bs, drop_last=drop_last)
        else:
            idx = list(range(self.length or 0)) if order is None else list(order)
            stop = len(idx) - len(idx) % bs if drop_last else len(idx)
            chunks = [idx[i : min(i + bs, stop)] for i in range(0, stop, bs)]
            loader = self.loader(gen, batch_sampler=chunks)
        return self._checked(iter(loader), chunks, skip)

    def _checked(
        self, it: Iterator[Any], chunks: list[list[int]] | None, skip: int
    ) -> Iterator[tuple[Tensor, Tensor]]:
        pos = 0  # examples read (iterable) / batches read (map-style)
        while True:
            indices = chunks[pos] if chunks is not None and pos < len(chunks) else None
            try:
                with interruptible():  # (a stop does not wait for a worker that hangs)
                    batch = next(it)
            except StopIteration:
                return
            except USER_CODE_ERRORS as exc:
                _end_workers(it)
                if genuine_interrupt(exc):  # Ctrl-C, or a stop that could not wait
                    raise
                if isinstance(exc, DataError):  # a worker's own line (its worker_init_fn)
                    said = str(exc).strip().splitlines()[-1]  # (torch's traceback around it)
                    raise DataError(said.split("DataError: ", 1)[-1]) from None
                ahead = chunks[pos : pos + 1 + self._in_flight()] if chunks is not None else None
                raise self._locate(exc, ahead, pos) from None
            x, y = self._pair(batch, indices, pos)
            n = int(x.shape[0])
            if chunks is None and pos < skip:
                pos += n
                continue
            self._check(x, y, indices, pos)
            pos += 1 if chunks is not None else n
            yield self._to_device(x), self._to_device(y)

    def _to_device(self, t: Tensor) -> Tensor:
        if t.device == self.device:
            return t
        return t.to(self.device, non_blocking=self._pin)

    # -- faults ---------------------------------------------------------------------------

    def _at(self, indices: list[int] | None, pos: int, offset: int = 0) -> str:
        """Where in the dataset: an example's index (map-style), else its position in the
        stream."""
        if indices is not None:
            return f"example {_source_index(self.dataset, indices[offset])}"
        return f"example {pos + offset} of the stream"

    def _fail(self, what: str) -> DataError:
        return DataError(f"{self.where}: the {self.split} dataset's {what}")

    def _in_flight(self) -> int:
        """Batches the loader's workers may hold besides the one asked for."""
        workers = int(self.options.get("num_workers") or 0)
        return workers * int(self.options.get("prefetch_factor") or 2)

    def _locate(self, exc: BaseException, chunks: list[list[int]] | None, pos: int) -> DataError:
        """The example a failed batch failed at: each of its examples -- and of the batches
        the workers held besides, ``chunks`` (a worker that died of its dataset breaks the
        batch asked for, not its own) -- read again here (in this process) until one fails or
        differs in shape from the first example."""
        indices = chunks[0] if chunks else None
        for j, batch in enumerate(chunks or ()):
            for k, i in enumerate(batch):
                try:
                    item = self.dataset[i]
                except USER_CODE_ERRORS as inner:
                    where = self._at(batch, pos + j, k)
                    return self._fail(f"{where} failed: {_one_line(inner)}")
                x, y = self._example(item, batch, pos + j, k)
                if not self.custom_collate:
                    self._check_shapes(x.unsqueeze(0), y.unsqueeze(0), batch, pos + j, k)
        if chunks is None and self.iterable:  # read the stream again, up to where it fails
            count = 0
            try:
                with torch.random.fork_rng(devices=[]):
                    for _item in self.dataset:
                        count += 1
                        if count > pos + _RELOCATE_EXAMPLES:
                            break
            except USER_CODE_ERRORS as inner:
                return self._fail(f"example {count} of the stream failed: {_one_line(inner)}")
        where = self._at(indices, 0) if indices is not None else f"example {pos} of the stream"
        return self._fail(f"batch at {where} failed: {_one_line(exc)}")

    def _example(self, item: Any, indices: list[int], pos: int, k: int) -> tuple[Tensor, Tensor]:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise self._fail(
                f"{self._at(indices, pos, k)} is not a pair (input, target): {type(item).__name__}"
            )
        try:
            return torch.as_tensor(item[0]), torch.as_tensor(item[1])
        except (TypeError, ValueError, RuntimeError) as exc:
            raise self._fail(f"{self._at(indices, pos, k)} is not a tensor: {exc}") from None

    def _pair(self, batch: Any, indices: list[int] | None, pos: int) -> tuple[Tensor, Tensor]:
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            raise self._fail(
                f"batch at {self._at(indices, pos)} is not a pair (inputs, targets): "
                f"{type(batch).__name__}"
            )
        x, y = batch
        if not isinstance(x, Tensor) or not isinstance(y, Tensor):
            raise self._fail(
                f"batch at {self._at(indices, pos)} holds {type(x).__name__} and "
                f"{type(y).__name__}, not tensors (give a collate_fn that makes tensors)"
            )
        return x, y

    def _check_shapes(
        self, x: Tensor, y: Tensor, indices: list[int] | None, pos: int, start: int = 0
    ) -> None:
        if x.shape[0] != y.shape[0]:
            raise self._fail(
                f"batch at {self._at(indices, pos)} has {x.shape[0]} inputs but "
                f"{y.shape[0]} targets"
            )
        if self.custom_collate:
            return
        if tuple(x.shape[1:]) != self.input_shape or tuple(y.shape[1:]) != self.target_shape:
            # the first example of the batch that differs (a batch of one when located)
            raise self._fail(
                f"{self._at(indices, pos, start)} has input {tuple(x.shape[1:])} and target "
                f"{tuple(y.shape[1:])}, expected {self.input_shape} and {self.target_shape} "
                "(the shapes of the training set's first example)"
            )

    def _check(self, x: Tensor, y: Tensor, indices: list[int] | None, pos: int) -> None:
        self._check_shapes(x, y, indices, pos)
        for name, t in (("input", x), ("target", y)):
            if t.is_floating_point() or t.is_complex():
                bad = ~torch.isfinite(t.reshape(t.shape[0], -1)).all(1)
                if bool(bad.any()):
                    k = int(bad.nonzero()[0, 0])
                    raise self._fail(f"{self._at(indices, pos, k)} has a non-finite {name}")
        if self.n_classes is not None and y.numel() and not y.is_floating_point():
            fault = label_fault(y, self.n_classes)
            if fault is not None:
                k = fault[0] // max(1, y[0].numel())  # (the example that holds it)
                raise self._fail(
                    f"{self._at(indices, pos, k)} has the label {fault[1]}, outside "
                    f"0..{self.n_classes - 1} (n_classes={self.n_classes})"
                )

    def head(self, n: int) -> tuple[Tensor, Tensor]:
        """The split's first ``n`` examples as one batch (probing the model before training)."""
        for x, y in self.batches(batch_size=n):
            return x, y
        raise self._fail(
            "stream yielded no example (an IterableDataset must yield its examples again each "
            "time it is iterated: an __iter__ that returns a new iterator, not one it keeps)"
            if self.iterable
            else "has no example"
        )


class LoaderBatches:
    """The training batches of one run on a streamed split: the interface of
    :class:`~descentlab.engine.loop.Batches` (``next``, ``epochs_done``, the generators,
    ``state_dict``) over a ``DataLoader``.

    Args:
        seeds: the run's seed (one: a streamed run trains alone).
        source: the training split.
        batch_size: examples per step (None: the whole training set, in its order).
        drop_last: drop an epoch's last, smaller batch.
    """

    def __init__(
        self, seeds: Sequence[int], source: StreamedSplit, batch_size: int | None, drop_last: bool
    ) -> None:
        if len(seeds) != 1:
            raise ValueError("runs on datasets train one at a time (one seed per loop)")
        self.seed = int(seeds[0])
        self.source = source
        self.k, self.shared = 1, True
        self.batch_size, self.drop_last = batch_size, drop_last
        self.data_gens = [torch.Generator().manual_seed(stream_seed(self.seed, 1))]
        self.aug_gens = [torch.Generator().manual_seed(stream_seed(self.seed, 2))]
        self.n = source.length
        self.epoch = 0
        self.perm: Tensor | None = None
        self.pos = 0
        self._it: Iterator[tuple[Tensor, Tensor]] | None = None
        self._full: tuple[Tensor, Tensor] | None = None
        self._resumed = False
        #: examples of each finished pass of an iterable dataset (its epoch lengths)
        self.epoch_sizes: list[int] = []
        if batch_size is None and source.iterable:
            raise ValueError(
                f"{source.where}: full-batch training needs a map-style training dataset "
                "(an iterable one is read in batches)"
            )

    def next(self) -> tuple[Tensor, Tensor, int | None]:
        if self.batch_size is None:
            self.epoch += 1
            if self._full is None:  # the whole set, in its order, as arrays would be
                self._full = self.source.head(int(self.n or 0))
            return (*self._full, None)
        return (*(self._next_iterable() if self.source.iterable else self._next_map()), None)

    def _next_map(self) -> tuple[Tensor, Tensor]:
        bs, n = self.batch_size, int(self.n or 0)
        assert bs is not None
        if self.perm is None or self.pos >= n or (self.drop_last and self.pos + bs > n):
            self.perm = torch.randperm(n, generator=self.data_gens[0])
            self.epoch += 1
            self.pos = 0
            self._it = None
        if self._it is None:
            order = self.perm[self.pos :].tolist()
            self._it = self.source.batches(
                batch_size=bs, order=order, drop_last=self.drop_last,
                seed_gen=_worker_generator(self.seed, self.epoch),
            )  # fmt: skip
        x, y = next(self._it)
        self.pos += int(x.shape[0])
        return x, y

    def _open_pass(self) -> None:
        if not self._resumed:
            self.epoch += 1
            self.pos = 0
        skip, self._resumed = self.pos, False
        self._it = self.source.batches(
            batch_size=self.batch_size, drop_last=self.drop_last,
            seed_gen=_worker_generator(self.seed, self.epoch), skip=skip,
        )  # fmt: skip

    def _next_iterable(self) -> tuple[Tensor, Tensor]:
        if self._it is None:
            self._open_pass()
        assert self._it is not None
        batch = next(self._it, None)
        if batch is None:
            self._end_pass()
            self._open_pass()
            batch = next(self._it, None)
            if batch is None:
                raise self.source._fail(f"stream yielded no batch in epoch {self.epoch}")
        self.pos += int(batch[0].shape[0])
        return batch

    def _end_pass(self) -> None:
        size = self.pos
        if self.epoch_sizes and self.epoch_sizes[-1] != size:
            _announce(
                f"{self.source.where}: the {self.source.split} stream yielded {size} examples "
                f"in epoch {self.epoch}, {self.epoch_sizes[-1]} in epoch {self.epoch - 1} (its "
                "length changes between epochs)"
            )
        self.epoch_sizes.append(size)

    @property
    def epochs_done(self) -> float:
        bs = self.batch_size
        if bs is None:
            return float(self.epoch)
        n = self.n if self.n is not None else (self.epoch_sizes[-1] if self.epoch_sizes else None)
        if not n or self.epoch == 0:
            return float(max(self.epoch - 1, 0))
        if self.drop_last:
            n -= n % bs
        return self.epoch - 1 + min(self.pos, n) / max(n, 1)

    def state_dict(self) -> dict[str, Any]:
        """The position in the data order (as :meth:`Batches.state_dict`)."""
        return {"epoch": self.epoch, "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, order: Mapping[str, Any]) -> None:
        self.epoch, self.pos = int(order["epoch"]), int(order["pos"])
        self.perm = order["perm"]
        self._it = None
        self._resumed = self.source.iterable and self.epoch > 0
