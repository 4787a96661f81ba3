"""Which devices a run may name, checked before any work.

``RunConfig.device`` and ``CompareSpec.device`` (and ``--device`` on the command line) name a
torch device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (or ``"mps"`` where torch has it). A
device this machine does not have is refused in one line naming the field and the value, when
the config is validated: before any data is loaded, any model built or any file written.

Example:
    >>> check_device("cpu")
    device(type='cpu')
    >>> check_device("tpu")
    Traceback (most recent call last):
    ...
    ValueError: device must be 'cpu', 'cuda' or 'cuda:N' (...), got 'tpu'
"""

from __future__ import annotations

import torch

__all__ = ["check_device"]


def check_device(value: str, name: str = "device") -> torch.device:
    """The torch device ``value`` names, or :class:`ValueError` in one line naming ``name``
    where torch cannot parse it or this machine does not have it."""
    usage = (
        f"{name} must be 'cpu', 'cuda' or 'cuda:N' (a torch device this machine has), got {value!r}"
    )
    if not isinstance(value, str):
        raise ValueError(usage)
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(usage) from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"{name}={value!r}: this machine has no CUDA device "
                "(torch.cuda.is_available() is False)"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"{name}={value!r}: this machine has {count} CUDA device(s)")
        return device
    if device.type == "mps" and torch.backends.mps.is_available():
        return device
    raise ValueError(usage)
