"""Settings for every test pytest runs here: tests/ and the doctests of src/ (``make test``).

Small tensors run far faster single-threaded, and the two xdist workers must not oversubscribe
the CI box's two cores; figures are drawn without a display; progress lines stay quiet.
"""

import contextlib
import gc
import os
import sys

from descentlab._osutil import loading_frozen

# Collection imports every test module and what they import (torch, scipy, sklearn, the
# library): about a million objects, each full collection of the garbage collector set off
# meanwhile walking them all (4.9 of the 13.4 CPU seconds a process took to collect the
# suite). They load with the collector paused and are frozen once collected, as a command
# loads its modules (descentlab._osutil.loading_frozen); every test's own objects are
# collected as before.
_LOADING = contextlib.ExitStack()
_LOADING.enter_context(loading_frozen())

import matplotlib  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

matplotlib.use("Agg")
os.environ.setdefault("DESCENTLAB_QUIET", "1")
torch.set_num_threads(1)

# pytester: tests/test_process_guard.py runs a small suite in this process
pytest_plugins = ["pytester"]


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    """The modules collection loaded frozen, the collector on again before the first test (and
    in pytest-xdist's controller, which collects nothing)."""
    _LOADING.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A test that imported modules (transformers, sympy, torch's compiler: loaded by the first
    test that needs them) leaves them to the rest of the process, as collection's are: after
    it, what it left is collected and the rest frozen. Without this, every full collection
    walked them again (1.3 million objects a worker by the end of the in-process tier): 37.6
    of the tier's 466 CPU seconds went to the collector, 10 of them in the 29 collections
    accelerate asks for around Hugging Face Trainers; with it, 11 to 13 (2026-11-29, AMD EPYC
    Zen 5). A test's own objects are collected as before: only the ones alive once it has
    ended are frozen (a module's fixtures, caches), and they are still freed when nothing
    refers to them."""
    loaded = len(sys.modules)
    try:
        return (yield)
    finally:
        if len(sys.modules) > loaded:
            gc.collect()
            gc.freeze()
