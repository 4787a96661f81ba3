"""A problem whose data are read from disk as they are needed: torch Datasets, not arrays.

The character language model's corpus (Python's own standard library, see
descentlab.problems.charlm) is written once to a file of token ids. Training reads it as a
stream (an IterableDataset that reads a chunk of windows at a time, split between the
DataLoader's worker processes); validation and test read windows by index from a memory-mapped
file (map-style Datasets). Nothing but the current chunk is held in memory.

    descentlab compare --problem examples/streamed_text.py:make_problem \\
        --optimizers sgd,adam --steps 60 --seeds 2

Options become keyword arguments: --problem-option n_chars=400000 --problem-option workers=2.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from descentlab.problems import charlm
from descentlab.problems.data import cache_dir
from descentlab.problems.problem import Problem


def write_tokens(n_chars: int) -> Path:
    """The corpus's token ids as a file of bytes (written once, then reused)."""
    text, meta = charlm.corpus(n_chars)
    path = cache_dir() / "streamed_text" / f"{meta['sha256'][:16]}.u8"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(charlm.encode(text).to(torch.uint8).numpy().tobytes())
        tmp.replace(path)
    return path


class _Windows:
    """Windows of ``context + 1`` tokens in ``[start, stop)`` of a token file: the inputs are
    the first ``context``, the targets the next token at each position."""

    def __init__(self, path: Path, start: int, stop: int, context: int) -> None:
        self.path, self.start, self.context = str(path), start, context
        self.n = (stop - start - 1) // context

    def __len__(self) -> int:
        return self.n

    def fingerprint(self) -> str:
        """What identifies the data without reading them (the file is named by its hash)."""
        key = f"{Path(self.path).name}:{self.start}:{self.n}:{self.context}"
        return hashlib.sha256(key.encode()).hexdigest()

    def _pair(self, tokens: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.from_numpy(tokens.astype(np.int64))
        return ids[:-1], ids[1:]


class TokenWindows(_Windows, Dataset):
    """Map-style: window ``i`` read from a memory-mapped file."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        data = np.memmap(self.path, dtype=np.uint8, mode="r")
        lo = self.start + i * self.context
        return self._pair(np.asarray(data[lo : lo + self.context + 1]))


class TokenStream(_Windows, IterableDataset):
    """Iterable: the windows in order, read ``chunk`` windows at a time; with several loader
    workers, each reads every ``num_workers``-th chunk (torch's convention for streams)."""

    def __init__(self, path: Path, start: int, stop: int, context: int, chunk: int = 32) -> None:
        super().__init__(path, start, stop, context)
        self.chunk = chunk

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        with open(self.path, "rb") as fh:
            for c in range(worker, math.ceil(self.n / self.chunk), workers):
                first = c * self.chunk
                count = min(self.chunk, self.n - first)
                fh.seek(self.start + first * self.context)
                block = np.frombuffer(fh.read(count * self.context + 1), dtype=np.uint8)
                for k in range(count):
                    yield self._pair(block[k * self.context : (k + 1) * self.context + 1])


def make_problem(
    n_chars: int = 100_000, context: int = 32, d_model: int = 32, workers: int = 0
) -> Problem:
    path = write_tokens(n_chars)
    cut1, cut2 = math.floor(0.8 * n_chars), math.floor(0.9 * n_chars)
    return Problem(
        name="streamed_text",
        model=lambda: charlm.CharTransformer(context=context, d_model=d_model, n_heads=2),
        data={
            "train": TokenStream(path, 0, cut1, context),
            "val": TokenWindows(path, cut1, cut2, context),
            "test": TokenWindows(path, cut2, n_chars, context),
        },
        loss="sequence_cross_entropy",  # (N, T, V) logits; perplexity is reported too
        metric="loss",
        n_classes=charlm.VOCAB_SIZE,
        loader={"num_workers": workers, "eval_batch_size": 256},
    )
