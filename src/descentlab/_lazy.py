"""Packages whose names are imported at first use (PEP 562): ``descentlab --help`` and
``import descentlab.engine.config`` then import no more than they need.

A package re-exports names of its submodules; :func:`exports` gives it the module
``__getattr__`` and ``__dir__`` that import a submodule when one of its names is first read
(the way SciPy's and scikit-image's packages load: Scientific Python's SPEC 1).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["exports"]


def exports(
    package: str, names: Mapping[str, tuple[str, ...]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package``; ``names``: submodule -> the names
    of it the package exports.

    Example:
        >>> all_, getattr_, dir_ = exports("json", {"decoder": ("JSONDecoder",)})
        >>> all_, getattr_("JSONDecoder").__name__
        (['JSONDecoder'], 'JSONDecoder')
        >>> getattr_("nothing")
        Traceback (most recent call last):
        ...
        AttributeError: module 'json' has no attribute 'nothing'
    """
    where = {name: module for module, found in names.items() for name in found}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    def __dir__() -> list[str]:
        return sorted({*vars(importlib.import_module(package)), *where})

    return sorted(where), __getattr__, __dir__
