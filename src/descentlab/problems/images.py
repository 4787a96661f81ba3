"""``digits32``: scikit-learn's handwritten digits upsampled to 32x32, for the ResNets.

Real images with nothing downloaded: the 1,797 8x8 digits that scikit-learn ships in its own
files (``sklearn.datasets.load_digits``; UCI's optical recognition of handwritten digits),
split exactly as the ``digits`` dataset (the same test examples for the same ``test_fraction``
and ``split_seed``, the same validation carving for the same seed), then resized to
``size x size`` by bilinear interpolation (``torch.nn.functional.interpolate``,
``align_corners=False``, ``antialias=False``) with pixel values in [0, 1]. ``channels=3``
repeats the grey channel, as a colour network's stem expects; the default is 1 (a third of
the first convolution's work). The default model is ``resnet20``
(:mod:`descentlab.problems.resnet`).

No package on the registry ships CIFAR-10's 32x32 images in its files (those found load them
from the web at run time), so this is the offline stand-in: an image task of CIFAR's
resolution on which a ResNet's cost per step is the real one.

Example:
    >>> s = load_digits32(seed=0, val_fraction=0.2, options={})
    >>> s.input_shape, s.n_classes, s.n_train + s.n_val, s.default_model
    ((1, 32, 32), 10, 1437, 'resnet20')
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch.nn.functional as F
from torch import Tensor

from descentlab.problems import data as datasets

__all__ = ["load_digits32"]

_OPTIONS = ("test_fraction", "split_seed", "size", "channels")


def load_digits32(seed: int, val_fraction: float, options: dict[str, Any]) -> datasets.Splits:
    """The ``digits`` splits with every image resized to ``size`` (32) and ``channels`` (1 or
    3) channels; the loader of ``descentlab.problems.data.load("digits32", ...)``."""
    datasets._reject_unknown("digits32", options, _OPTIONS)
    rest = dict(options)
    size = datasets._check_int("size", rest.pop("size", 32), 8)
    channels = rest.pop("channels", 1)
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    base = datasets._LOADERS["digits"](seed, val_fraction, rest)

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
