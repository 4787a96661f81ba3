"""A test marked `arith` that says which CPU kernels it ran under (tests/test_makefile_arith.py
runs `make arith` on it alone)."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.mark.arith
def test_says_its_capability():
    with open(os.environ["ARITH_PROBE_OUT"], "a") as f:
        f.write(torch.backends.cpu.get_cpu_capability() + "\n")
