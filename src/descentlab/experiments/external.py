"""Optimizers from outside descentlab: any ``torch.optim.Optimizer`` class or factory.

A comparison takes, besides descentlab's named and composed optimizers, any optimizer that
follows torch's contract:

- by import path (the command line): ``torch.optim.SGD``, ``pytorch_optimizer.Lion``,
  ``schedulefree.AdamWScheduleFree`` or ``package.module:Name`` -> :class:`ImportedOptimizer`;
- as a Python object: an ``Optimizer`` subclass or a factory ``f(params, **hyper) ->
  Optimizer`` -> :class:`PythonOptimizer`.

Both are called ``f(params, **hyper)``, recorded by a stable description
(``import:torch.optim.SGD``) and checked before any training; how they are pickled, checked and
put in eval mode: docs/compare.md.

Example:
    >>> opt = ImportedOptimizer("torch.optim.SGD")
    >>> opt, opt.label, sorted(opt.parameters())[:3]
    (import:torch.optim.SGD, 'torch.SGD', ['dampening', 'differentiable', 'foreach'])
    >>> import torch
    >>> type(opt([torch.nn.Parameter(torch.zeros(2))], lr=0.1)).__name__
    'SGD'
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

import torch

from descentlab._usercode import describe, genuine_interrupt
from descentlab.engine.optimizing import optimizer_modes

__all__ = [
    "ImportedOptimizer",
    "PythonOptimizer",
    "check_external",
    "external_from_description",
    "is_external",
    "looks_like_path",
    "resolve_path",
    "wrap",
]

_IMPORT = "import:"
_PYTHON = "python:"


def looks_like_path(text: str) -> bool:
    """Whether ``text`` names an object by import path (``a.b.C`` or ``a.b:C``), as opposed
    to a descentlab optimizer name or a rule expression.

    Example:
        >>> looks_like_path("torch.optim.SGD"), looks_like_path("adam"), looks_like_path("chain()")
        (True, False, False)
    """
    text = text.strip()
    return "(" not in text and ("." in text or ":" in text) and " " not in text


def resolve_path(path: str) -> Any:
    """The object an import path names: ``pkg.mod.Name`` or ``pkg.mod:Name`` (``Name`` may be
    dotted: ``pkg.mod:Outer.Inner``).

    Raises:
        ValueError: the module does not import, or has no such attribute (one line).

    Example:
        >>> resolve_path("torch.optim:Adam").__name__
        'Adam'
    """
    text = path.strip()
    if ":" in text:
        module_name, _, attr = text.partition(":")
        candidates = [(module_name, attr)]
    else:
        parts = text.split(".")
        # The longest importable module prefix wins ("torch.optim.SGD": module torch.optim).
        candidates = [
            (".".join(parts[:i]), ".".join(parts[i:])) for i in range(len(parts) - 1, 0, -1)
        ]
    if not candidates or not all(m and a for m, a in candidates):
        raise ValueError(f"optimizer path must look like 'package.module.Name', got {path!r}")
    error: str | None = None
    for module_name, attr in candidates:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            error = error or f"cannot import {module_name!r} ({exc})"
            continue
        except Exception as exc:  # a module that fails while importing
            raise ValueError(
                f"optimizer {path!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
            ) from None
        obj: Any = module
        try:
            for name in attr.split("."):
                obj = getattr(obj, name)
        except AttributeError:
            raise ValueError(
                f"optimizer {path!r}: module {module_name!r} has no attribute {attr!r}"
            ) from None
        return obj
    raise ValueError(f"optimizer {path!r}: {error}")


def _describe_object(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "?"
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}:{name}"


def _check_target(obj: Any, where: str) -> None:
    if isinstance(obj, type):
        if not issubclass(obj, torch.optim.Optimizer):
            raise ValueError(
                f"{where} is the class {obj.__qualname__}, which is not a torch.optim.Optimizer "
                "subclass"
            )
    elif not callable(obj):
        raise ValueError(
            f"{where} is a {type(obj).__name__}, not an optimizer class or a factory "
            "params -> optimizer"
        )


#: Optimizer classes whose packages say to leave the learning rate at its default (1.0):
#: the step size is estimated as they train (Prodigy: Mishchenko & Defazio 2023; D-Adaptation:
#: Defazio & Mishchenko 2023), by ``module.ClassName`` of where they are defined. A class of
#: one's own declares the same with a class attribute ``lr_free = True``.
LR_FREE: frozenset[str] = frozenset(
    f"{module}.{name}"
    for module, names in (
        ("pytorch_optimizer.optimizer.prodigy", ("Prodigy",)),
        ("pytorch_optimizer.optimizer.dadapt",
         ("DAdaptAdaGrad", "DAdaptAdam", "DAdaptSGD", "DAdaptAdan", "DAdaptLion")),
        ("prodigyopt.prodigy", ("Prodigy",)),
        ("dadaptation.dadapt_adam", ("DAdaptAdam",)),
        ("dadaptation.dadapt_sgd", ("DAdaptSGD",)),
        ("dadaptation.dadapt_adagrad", ("DAdaptAdaGrad",)),
        ("dadaptation.dadapt_adan", ("DAdaptAdan",)),
        ("dadaptation.dadapt_lion", ("DAdaptLion",)),
    )
    for name in names
)  # fmt: skip


class _External:
    """Common behaviour of optimizers given by path or by object."""

    target: Any

    @property
    def lr_free(self) -> bool:
        """Whether it declares itself learning-rate-free (:data:`LR_FREE`, or its class's
        ``lr_free = True``): a comparison runs it at its own default learning rate."""
        target = self.target
        if getattr(target, "lr_free", False) is True:
            return True
        key = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}"
        return key in LR_FREE

    def __call__(self, params: Any, **hyper: Any) -> Any:
        return self.target(params, **hyper)

    @property
    def name(self) -> str:
        """The class or factory's own name (``Adam``, ``Lion``...)."""
        return getattr(self.target, "__name__", type(self.target).__name__)

    def parameters(self) -> list[str] | None:
        """The keyword arguments it declares besides ``params`` (None: not inspectable)."""
        try:
            sig = inspect.signature(self.target)
        except (TypeError, ValueError):
            return None
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        names = [p.name for p in sig.parameters.values() if p.kind in kinds]
        return [n for n in names if n not in ("params", "self")]

    def source(self) -> dict[str, str]:
        """``{file name: sha256 (16 hex digits)}`` of the user's own file its class or
        factory is defined in (a module on the user's path, not an installed package's):
        a comparison records it in its identity, so an edited file is another comparison, as
        for ``file.py:Class``; empty for a package's."""
        import hashlib
        import sys
        from pathlib import Path

        from descentlab._usercode import library_file

        module = sys.modules.get(getattr(self.target, "__module__", "") or "")
        file = getattr(module, "__file__", None)
        if not file or library_file(str(Path(file).resolve())):
            return {}
        return {Path(file).name: hashlib.sha256(Path(file).read_bytes()).hexdigest()[:16]}

    def accepts(self, key: str) -> bool:
        """Whether ``key`` is one of its declared keyword arguments."""
        names = self.parameters()
        return names is None or key in names

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and repr(other) == repr(self)

    def __hash__(self) -> int:
        return hash(repr(self))


class ImportedOptimizer(_External):
    """An optimizer class or factory named by import path.

    Args:
        path: ``torch.optim.SGD``, ``pytorch_optimizer.Lion``, ``package.module:Name``.

    Raises:
        ValueError: the path does not import or names no optimizer class or factory.
    """

    def __init__(self, path: str) -> None:
        self.path = path.strip()
        self.target = resolve_path(self.path)
        _check_target(self.target, f"optimizer {self.path!r}")

    @property
    def label(self) -> str:
        """A default label: the top package and the name (``torch.SGD``, ``pytorch_optimizer.
        Lion``), distinct from descentlab's own names."""
        top = self.path.replace(":", ".").split(".")[0]
        return f"{top}.{self.name}"

    def __repr__(self) -> str:
        return f"{_IMPORT}{self.path}"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (ImportedOptimizer, (self.path,))


class PythonOptimizer(_External):
    """An optimizer class or factory given as a Python object.

    Args:
        target: a ``torch.optim.Optimizer`` subclass or a callable ``f(params, **hyper)``.
    """

    def __init__(self, target: Any) -> None:
        _check_target(target, f"optimizer {target!r}")
        self.target = target

    @property
    def label(self) -> str:
        """A default label: the top package and the name (``torch.Adam``); the name alone for
        objects of a script (``__main__``)."""
        top = (getattr(self.target, "__module__", None) or "").split(".")[0]
        return self.name if top in ("", "__main__", "__mp_main__") else f"{top}.{self.name}"

    def __repr__(self) -> str:
        return f"{_PYTHON}{_describe_object(self.target)}"


class _Stored(_External):
    """A Python optimizer read back from a store: its description only (enough to find its
    runs again and re-render a report); training with it needs the object again."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.target = None

    def __call__(self, params: Any, **hyper: Any) -> Any:
        raise ValueError(
            f"optimizer {self.description} was a Python object; pass it again to train with it"
        )

    def parameters(self) -> list[str] | None:
        return None

    def __repr__(self) -> str:
        return self.description


def is_external(obj: Any) -> bool:
    """Whether ``obj`` is an optimizer from outside descentlab (wrapped)."""
    return isinstance(obj, _External)


def external_from_description(text: str) -> _External | None:
    """The optimizer a stored description names (None: not an external description)."""
    if text.startswith(_IMPORT):
        return ImportedOptimizer(text[len(_IMPORT) :])
    if text.startswith(_PYTHON):
        module, _, qualname = text[len(_PYTHON) :].partition(":")
        try:
            obj: Any = importlib.import_module(module)
            for part in qualname.split("."):
                obj = getattr(obj, part)
            return PythonOptimizer(obj)
        except (ImportError, AttributeError, ValueError):
            return _Stored(text)
    return None


def wrap(obj: Any) -> _External:
    """``obj`` as an external optimizer: a path string, a class, a factory or a wrapper.

    Raises:
        ValueError: not an optimizer class or factory, or a path that does not import.
    """
    if isinstance(obj, _External):
        return obj
    if isinstance(obj, str):
        return ImportedOptimizer(obj)
    return PythonOptimizer(obj)


def check_external(label: str, opt: _External, hyper: Mapping[str, Any]) -> None:
    """Build ``opt`` on a dummy parameter with ``hyper``.

    Raises:
        ValueError: an undeclared hyperparameter (listing the declared ones), a constructor
            error, or a factory that does not return a ``torch.optim.Optimizer``.
    """
    declared = opt.parameters()
    if declared is not None:
        unknown = [k for k in hyper if k not in declared]
        if unknown:
            raise ValueError(
                f"optimizer {label!r} ({opt!r}) takes no {unknown[0]!r}; its hyperparameters: "
                f"{', '.join(declared)}"
            )
    params = [torch.nn.Parameter(torch.ones(2))]
    try:
        built = opt(params, **hyper)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"optimizer {label!r} ({opt!r}): {exc}") from None
    except BaseException as exc:  # its own error, sys.exit(), os._exit(): one line
        if genuine_interrupt(exc):
            raise
        raise ValueError(
            f"optimizer {label!r} ({opt!r}) failed when built with {dict(hyper)}: {describe(exc)}"
        ) from None
    if not isinstance(built, torch.optim.Optimizer):
        raise ValueError(
            f"optimizer {label!r} ({opt!r}) returned a {type(built).__name__}, not a "
            "torch.optim.Optimizer"
        )

    def closure() -> Any:
        built.zero_grad()
        loss = (params[0] ** 2).sum()
        loss.backward()
        return loss

    # One step as the engine takes it (some hyperparameters only fail when used), and its
    # state dict, which every trial's checkpoint saves.
    try:
        if optimizer_modes(built):
            built.train()
        built.step(closure)
        if optimizer_modes(built):
            built.eval()
        built.state_dict()
    except BaseException as exc:
        if genuine_interrupt(exc):
            raise
        raise ValueError(
            f"optimizer {label!r} ({opt!r}) fails on a first step with {dict(hyper)}: "
            f"{describe(exc)}"
        ) from None
