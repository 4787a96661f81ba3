"""The repository's scripts (scripts/NAME.py) loaded as modules, for the tests of what they
check or write."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def script(name: str) -> ModuleType:
    """scripts/``name``.py, executed once a process and registered as module ``name`` (a
    dataclass defined there needs its module found; a second copy under the same name would
    leave the first one's classes to a module they are not in, and doctest skips them)."""
    path = ROOT / "scripts" / f"{name}.py"
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "")) == path:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
