"""Optimizers named at run time, from outside the package: ``path/to/file.py:Class``,
``package.module:Class``, or a name given to :func:`register`.

:func:`lookup` is the one resolver every command reads an optimizer's name through
(``compare``, ``scale``, ``train`` and its ``--nproc`` ranks, ``descentlab optimizers``,
``check-optimizer``, ``benchmarks/step.py``): :func:`descentlab.optim.get` and
:func:`descentlab.optim.record` fall back to it for a name the package does not register. A
class so named must be a :class:`~descentlab.optim.Optimizer` (a
:class:`~descentlab.optim.torchapi.Named` subclass, as the package's own); its record is the
module's ``RECORDS`` entry for it where there is one, else one made by :func:`register` from
the class's name. A file is identified by its bytes (:func:`source`): a comparison records the
hash, so an edited file starts a new comparison. Writing one: docs/own_optimizer.md.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from .optimizer import Optimizer
from .records import OptimizerRecord

__all__ = ["is_spec", "lookup", "register", "source", "spec_of", "target"]

#: records registered at run time, by name, and each one's spec (what another process
#: resolves it by); a spec's record, by its canonical spec
_BY_NAME: dict[str, OptimizerRecord] = {}
#: The package's own names (set by ``descentlab.optim`` once its registry is made): never
#: taken by :func:`register`.
RESERVED: frozenset[str] = frozenset()
_SPEC_OF: dict[str, str] = {}
_BY_SPEC: dict[str, OptimizerRecord] = {}


def is_spec(text: Any) -> bool:
    """Whether ``text`` names an object by ``file.py:Class`` or ``module:Class``.

    Example:
        >>> is_spec("examples/adopt.py:ADOPT"), is_spec("newopts:ADOPT"), is_spec("adam")
        (True, True, False)
    """
    return isinstance(text, str) and ":" in text and "(" not in text and " " not in text.strip()


def _split(spec: str) -> tuple[str, str, bool]:
    """(the file's absolute path or the module, the attribute, whether it is a file)."""
    where, _, attr = spec.strip().rpartition(":")
    if not where or not attr:
        raise ValueError(
            f"optimizer {spec!r} must look like 'path/to/file.py:Class' or 'module:Class'"
        )
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise ValueError(f"optimizer {spec!r}: no file {where!r}")
        return str(path), attr, True
    return where, attr, False


def _module(where: str, is_file: bool) -> Any:
    if not is_file:
        return importlib.import_module(where)
    digest = hashlib.sha256(Path(where).read_bytes()).hexdigest()[:16]
    name = f"_descentlab_user_{Path(where).stem}_{digest}"  # an edited file loads anew
    if name in sys.modules:
        return sys.modules[name]
    made = importlib.util.spec_from_file_location(name, where)
    assert made is not None and made.loader is not None
    module = importlib.util.module_from_spec(made)
    sys.modules[name] = module  # (pickle and dataclasses look their module up)
    try:
        made.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def target(spec: str) -> tuple[Any, Any, str]:
    """The object ``spec`` names, its module and the canonical spec (a file's absolute)."""
    where, attr, is_file = _split(spec)
    try:
        module = _module(where, is_file)
    except ImportError as exc:
        raise ValueError(f"optimizer {spec!r}: cannot import {where!r} ({exc})") from None
    except Exception as exc:  # the user's module fails while importing: one line
        raise ValueError(
            f"optimizer {spec!r}: importing {where!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"optimizer {spec!r}: {where!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj, module, f"{where}:{attr}"


def register(
    factory: type[Optimizer] | OptimizerRecord,
    name: str | None = None,
    *,
    lr_range: tuple[float, float] = (1e-4, 1e-1),
    family: str = "adam",
    adaptive: bool = True,
    year: int = 0,
    reference: str = "",
    spec: str | None = None,
) -> OptimizerRecord:
    """Register an optimizer of your own at run time: a :class:`~descentlab.optim.Optimizer`
    subclass (or its :class:`~descentlab.optim.OptimizerRecord`), then known by ``name``
    (default: the class's name in lower case) to :func:`descentlab.optim.get`, ``record``,
    and every command of this process. ``spec`` (default ``module:Class``): how another
    process (a comparison's worker, a ``--nproc`` rank) imports it. A name the package
    registers, or one registered for another class, is refused.

    Example:
        >>> from descentlab import optim
        >>> class MySGD(optim.SGD): ...
        >>> optim.register(MySGD).name, optim.get("mysgd") is MySGD
        ('mysgd', True)
    """
    if isinstance(factory, OptimizerRecord):
        rec = factory
    else:
        if not (isinstance(factory, type) and issubclass(factory, Optimizer)):
            raise ValueError(
                f"register() takes a descentlab.optim.Optimizer subclass or an OptimizerRecord, "
                f"got {factory!r}"
            )
        key = (name or factory.__name__).strip().lower()
        rec = OptimizerRecord(
            name=key, display=factory.__name__, color="#999999", lr_range=tuple(lr_range),  # type: ignore[arg-type]
            family=family, adaptive=adaptive, year=year, reference=reference, factory=factory,
        )  # fmt: skip
    if rec.name in RESERVED:
        raise ValueError(
            f"register(): {rec.name!r} is one of descentlab's optimizers; name yours otherwise"
        )
    known = _BY_NAME.get(rec.name)
    if known is not None and known.factory is not rec.factory:
        raise ValueError(
            f"register(): {rec.name!r} is already "
            f"{known.factory.__module__}.{known.factory.__qualname__}"
        )
    _BY_NAME[rec.name] = rec
    _SPEC_OF[rec.name] = spec or f"{rec.factory.__module__}:{rec.factory.__qualname__}"
    return rec


def lookup(name: str, strict: bool = True) -> OptimizerRecord | None:
    """The record of a name registered at run time or of a spec (its module imported, a file
    loaded; ValueError in one line where that fails or, ``strict``, names no descentlab
    optimizer); None for any other name (not ``strict``: for any other object too)."""
    key = str(name).strip()
    if key.lower() in _BY_NAME:
        return _BY_NAME[key.lower()]
    if not is_spec(key):
        return None
    obj, module, canonical = target(key)
    rec = _BY_SPEC.get(canonical)
    if rec is not None and rec.factory is obj:
        return rec
    if not (isinstance(obj, type) and issubclass(obj, Optimizer)):
        if not strict:
            return None
        raise ValueError(
            f"optimizer {name!r} is {obj!r}, not a descentlab.optim.Optimizer subclass (write it "
            "as a Named optimizer: docs/own_optimizer.md; compare also takes any "
            "torch.optim.Optimizer as 'label=module:Class')"
        )
    own = [r for r in getattr(module, "RECORDS", ()) if getattr(r, "factory", None) is obj]
    rec = own[0] if own else None
    if rec is None:
        rec = OptimizerRecord(
            name=obj.__name__.lower(), display=obj.__name__, color="#999999",
            lr_range=(1e-4, 1e-1), family="adam", adaptive=True, year=0, reference="",
            factory=obj,
        )  # fmt: skip
    _BY_SPEC[canonical] = rec
    _SPEC_OF.setdefault(rec.name, canonical)
    if _SPEC_OF[rec.name] == canonical:
        _BY_NAME[rec.name] = rec
    return rec


def spec_of(name: str) -> str:
    """What another process resolves ``name`` by: a spec made canonical (a file's absolute
    path), a registered name's spec; any other name as it is."""
    key = str(name).strip()
    if key.lower() in _SPEC_OF and not is_spec(key):
        return _SPEC_OF[key.lower()]
    if is_spec(key):
        return target(key)[2]
    return key


def source(spec: str) -> dict[str, str]:
    """``{file name: sha256 (16 hex digits)}`` of the file ``spec`` (or the module's file)
    is read from; empty for a package's optimizer. A comparison records it in its identity."""
    if not is_spec(spec):
        spec = _SPEC_OF.get(str(spec).strip().lower(), "")
        if not spec:
            return {}
    _, module, _ = target(spec)
    file = getattr(module, "__file__", None)
    if not file or Path(file).resolve().is_relative_to(Path(__file__).resolve().parents[1]):
        return {}
    return {Path(file).name: hashlib.sha256(Path(file).read_bytes()).hexdigest()[:16]}
