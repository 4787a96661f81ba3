import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
os.environ.setdefault("DESCENTLAB_QUIET", "1")
# Small tensors run far faster single-threaded, and xdist workers must not oversubscribe.
torch.set_num_threads(1)


@pytest.fixture
def float64():
    """Run a test with float64 as torch's default dtype."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)
