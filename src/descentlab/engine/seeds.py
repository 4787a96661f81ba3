"""Independent, reproducible random streams from one seed (a run's data order, augmentation,
a loader's workers): NumPy's ``SeedSequence`` hashing of ``[seed, stream]``."""

from __future__ import annotations

import numpy as np

__all__ = ["stream_seed"]


def stream_seed(seed: int, stream: int) -> int:
    """A 63-bit seed for stream ``stream`` of ``seed``.

    Example:
        >>> stream_seed(0, 1) == stream_seed(0, 1) != stream_seed(0, 2)
        True
    """
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, dtype=np.uint64)[0] >> 1)
