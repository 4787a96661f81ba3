# Threads, the figure backend and quiet progress are set for every test in ../conftest.py.
import pytest
import torch


@pytest.fixture
def float64():
    """Run a test with float64 as torch's default dtype."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)
