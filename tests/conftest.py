import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
os.environ.setdefault("DESCENTLAB_QUIET", "1")
# Keep timing predictable on the 2-core CI machine.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def float64():
    """Run a test with float64 as torch's default dtype."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)
