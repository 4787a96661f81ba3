"""Problems of Datasets and streams as a user writes them, faults included
(tests/test_untrusted_inputs.py and tests/test_run_faults.py load this file by path)."""

import threading
import time

import torch
from torch import nn
from torch.utils.data import Dataset, IterableDataset


def _xy(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    return x, (x[:, 0] > 0).long()


class Pairs(Dataset):
    def __init__(self, n=60, seed=0, bad=None, at=None):
        self.x, self.y = _xy(n, seed)
        self.bad, self.at = bad, at

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        y = self.y[i]
        if self.at is not None and i == self.at:
            y = torch.tensor(self.bad)
        return self.x[i], y


class Stream(IterableDataset):
    def __init__(self, n=60, seed=0, bad=None, at=None, fail_at=None, scale=1.0):
        self.x, self.y = _xy(n, seed)
        self.x = self.x * scale
        self.bad, self.at, self.fail_at = bad, at, fail_at

    def __iter__(self):
        for i in range(len(self.x)):
            if self.fail_at is not None and i == self.fail_at:
                raise RuntimeError("broken record")
            y = self.y[i]
            if self.at is not None and i == self.at:
                y = torch.tensor(self.bad)
            yield self.x[i], y


class Empty(IterableDataset):
    def __iter__(self):
        return iter(())


class Locked(Pairs):
    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()


class Noisy(Pairs):
    def __getitem__(self, i):
        return self.x[i] + 0.1 * torch.randn(2), self.y[i]


def model():
    return nn.Linear(2, 2)


def labels(bad=-1, at=7, split="train"):
    data = {"train": Pairs(), "test": Pairs(20, 1)}
    data[split] = Pairs(60 if split == "train" else 20, 0 if split == "train" else 1, bad, at)
    return {"model": model, "n_classes": 2, "data": data}


def stream_labels(bad=-1, at=37):
    return {
        "model": model,
        "n_classes": 2,
        "data": {"train": Stream(60, 0, bad, at), "val": Stream(20, 2), "test": Stream(20, 1)},
    }


def stream_fails(at=37):
    return {
        "model": model,
        "n_classes": 2,
        "data": {"train": Stream(60, 0, fail_at=at), "val": Stream(20, 2), "test": Stream(20, 1)},
    }


def empty():
    return {
        "model": model,
        "n_classes": 2,
        "data": {"train": Empty(), "val": Stream(20, 2), "test": Stream(20, 1)},
    }


def locked(workers=2, context=None):
    loader = {"num_workers": workers}
    if context:
        loader["multiprocessing_context"] = context
    return {
        "model": model,
        "n_classes": 2,
        "data": {"train": Locked(), "test": Pairs(20, 1)},
        "loader": loader,
    }


def noisy(workers=2):
    return {
        "model": model,
        "n_classes": 2,
        "data": {"train": Noisy(), "test": Pairs(20, 1)},
        "loader": {"num_workers": workers},
    }


def plain():
    return {"model": model, "n_classes": 2, "data": {"train": Pairs(), "test": Pairs(20, 1)}}


def stream(n=60, scale=1.0):
    return {
        "model": model,
        "n_classes": 2,
        "data": {"train": Stream(n, 0, scale=scale), "val": Stream(20, 2), "test": Stream(20, 1)},
    }


class Once(IterableDataset):
    """A stream that can be read once (it keeps its iterator)."""

    def __init__(self):
        x, y = _xy(60)
        self.it = iter(list(zip(x, y, strict=True)))

    def __iter__(self):
        return self.it


def once():
    return {
        "model": model,
        "n_classes": 2,
        "data": {"train": Once(), "val": Stream(20, 2), "test": Stream(20, 1)},
    }


class Hangs(Pairs):
    """A Dataset whose loader workers hang (a read that never returns); each worker that
    hangs first writes a file named by its process id into ``folder``."""

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def __getitem__(self, i):
        if torch.utils.data.get_worker_info() is not None:
            import os
            from pathlib import Path

            Path(self.folder, str(os.getpid())).touch()
            time.sleep(3600)
        return super().__getitem__(i)


def hangs(folder):
    return {
        "model": model,
        "n_classes": 2,
        "data": {"train": Hangs(folder), "test": Pairs(20, 1)},
        "loader": {"num_workers": 1},
    }


class Interrupts(Pairs):
    def __getitem__(self, i):
        if i == 5:
            raise KeyboardInterrupt("the user's own")
        return super().__getitem__(i)


def interrupts():
    return {"model": model, "n_classes": 2, "data": {"train": Interrupts(), "test": Pairs(20, 1)}}


def sequence():
    """(N, T, V) logits with the default loss."""

    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 5 * 3)

        def forward(self, x):
            return self.lin(x).reshape(-1, 3, 5)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 2, generator=g)
    y = torch.randint(0, 5, (60, 3), generator=g)
    return {
        "model": Seq,
        "n_classes": 5,
        "data": {"x_train": x[:40], "y_train": y[:40], "x_test": x[40:], "y_test": y[40:]},
    }


class FileStream(IterableDataset):
    """A stream of the examples saved in a file (its contents change, its name does not)."""

    def __init__(self, path):
        self.path = path

    def __iter__(self):
        x, y = torch.load(self.path)
        yield from zip(x, y, strict=True)


def from_file(path):
    return {
        "model": model,
        "n_classes": 2,
        "data": {"train": FileStream(path), "val": Stream(20, 2), "test": Stream(20, 1)},
    }


class Stops(nn.Module):
    """A model whose forward pass raises KeyboardInterrupt at its 8th call (user code, not
    Ctrl-C)."""

    calls = 0

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x):
        Stops.calls += 1
        if Stops.calls == 8:
            raise KeyboardInterrupt("stop here")
        return self.lin(x)


def stops():
    return {"model": Stops, "n_classes": 2, "data": {"train": Pairs(), "test": Pairs(20, 1)}}
