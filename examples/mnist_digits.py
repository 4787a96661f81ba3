"""MNIST-shaped digits without a download: a stand-in for torchvision's ``datasets`` and
``transforms`` in a script written for MNIST (pytorch/examples' ``mnist/main.py``,
docs/compare.md), so that it runs under ``descentlab compare --objective`` offline.

The images are scikit-learn's 1,797 handwritten digits (8x8, shipped with it), enlarged to
28x28; their rows are split once (a fixed shuffle) into training (60 %), validation (20 %) and
test (20 %) rows. ``datasets.MNIST(..., split=run.split)`` gives a trial's: while tuning
(``split="val"``) the training rows and, for ``train=False``, the validation rows; in the refit
runs (``split="test"``) the training and validation rows and, for ``train=False``, the test
rows.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import torch


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    images = torch.nn.functional.interpolate(
        torch.tensor(x[order] / 16.0, dtype=torch.float32).view(-1, 1, 8, 8), size=(28, 28)
    )
    return (images[:, 0].numpy() * 255).astype(np.uint8), y[order]


class MNIST(torch.utils.data.Dataset):
    """``torchvision.datasets.MNIST``'s shape over the digits: ``(image, label)`` pairs, the
    image a 28x28 uint8 array given to ``transform``; ``root`` and ``download`` are unused."""

    def __init__(self, root: str, train: bool = True, download: bool = False,
                 transform: Any = None, split: str = "test") -> None:  # fmt: skip
        x, y = _digits()
        a, b = int(0.6 * len(x)), int(0.8 * len(x))
        if train:
            rows = slice(0, a if split == "val" else b)
        else:
            rows = slice(a, b) if split == "val" else slice(b, None)
        self.data, self.targets, self.transform = x[rows], y[rows], transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        image = self.data[i]
        return (image if self.transform is None else self.transform(image)), int(self.targets[i])


class _Compose:
    def __init__(self, steps: list[Any]) -> None:
        self.steps = steps

    def __call__(self, image: Any) -> Any:
        for step in self.steps:
            image = step(image)
        return image


def _to_tensor() -> Any:
    return lambda image: torch.from_numpy(image).float().div(255).unsqueeze(0)


def _normalize(mean: tuple[float, ...], std: tuple[float, ...]) -> Any:
    return lambda t: (t - mean[0]) / std[0]


datasets = types.SimpleNamespace(MNIST=MNIST)
transforms = types.SimpleNamespace(Compose=_Compose, ToTensor=_to_tensor, Normalize=_normalize)
