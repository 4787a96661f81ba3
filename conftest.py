"""Settings for every test pytest runs here: tests/ and the doctests of src/ (``make test``).

Small tensors run far faster single-threaded, and the two xdist workers must not oversubscribe
the CI box's two cores; figures are drawn without a display; progress lines stay quiet.
"""

import contextlib
import os

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
