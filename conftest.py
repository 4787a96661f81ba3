"""Settings for every test pytest runs here: tests/ and the doctests of src/ (``make test``).

Small tensors run far faster single-threaded, and the two xdist workers must not oversubscribe
the CI box's two cores; figures are drawn without a display; progress lines stay quiet.
"""

import os

import matplotlib
import torch

matplotlib.use("Agg")
os.environ.setdefault("DESCENTLAB_QUIET", "1")
torch.set_num_threads(1)

# pytester: tests/test_process_guard.py runs a small suite in this process
pytest_plugins = ["pytester"]
