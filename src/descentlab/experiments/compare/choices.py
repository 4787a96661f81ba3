"""The optimizers of a comparison: named, composed from update rules, or from outside descentlab.

:func:`parse_optimizer` turns what a user writes (``"adam"``, ``"adadelta@default"``,
``"rms_mom=chain(scale_by_rms(), trace(momentum=0.9), scale_by_lr())"``,
``"lion=pytorch_optimizer.Lion"``, a rule, a class) into an :class:`OptimizerChoice`; the
helpers below ask an optimizer which hyperparameters it takes and has, and build it once on a
dummy parameter so that a bad hyperparameter fails before any training.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from descentlab import optim
from descentlab.engine.config import parse_call
from descentlab.engine.optimizing import make_optimizer
from descentlab.experiments import external
from descentlab.problems.paths import optimizer_label

__all__ = [
    "OptimizerChoice",
    "parse_optimizer",
    "parse_rule",
]

_FALLBACK_LR_RANGE = (1e-4, 1.0)
# "adadelta@default": the optimizer at its default learning rate, not tuned.
_FIXED_SUFFIX = "@default"


# ------------------------------------------------------------------------------------------
# optimizers: named or composed


@dataclass(frozen=True)
class OptimizerChoice:
    """One optimizer of a comparison.

    Attributes:
        label: its name in tables and figures (unique within a comparison).
        optimizer: a name from ``descentlab.optim.NAMES``, an update rule
            (``descentlab.optim.chain(...)``) or an optimizer from outside descentlab
            (:mod:`descentlab.experiments.external`).
        hyper: fixed hyperparameters (not tuned), e.g. ``{"momentum": 0.9}``.
        lr_range: the learning-rate search range ``(low, high)`` (a registered optimizer's:
            its record's :attr:`~descentlab.optim.OptimizerRecord.lr_range`).
        fixed_lr: kept at its default learning rate (not tuned).
        lr_free: it declares itself learning-rate-free (Prodigy, D-Adaptation:
            :data:`~descentlab.experiments.external.LR_FREE`), so it is kept at its default
            unless a learning-rate range is given for it (``lr_ranges``, ``--lr-range``).
    """

    label: str
    optimizer: Any
    hyper: Mapping[str, Any] = field(default_factory=dict)
    lr_range: tuple[float, float] = _FALLBACK_LR_RANGE
    fixed_lr: bool = False
    lr_free: bool = False

    @property
    def is_named(self) -> bool:
        return isinstance(self.optimizer, str)

    @property
    def display(self) -> str:
        """The label as the lectures write it (``Adam``, ``RMSProp``...); an optimizer kept at
        its default learning rate under a label of its own reads ``Adadelta (default lr)``, at
        a learning rate given for it ``Adam (lr 0.05)``."""
        if self.label in optim.NAMES:
            return optim.record(self.label).display
        if self.fixed_lr and self.is_named and self.label != self.optimizer:
            lr = self.hyper.get("lr")
            return f"{optim.record(self.optimizer).display} " + (
                "(default lr)" if lr is None else f"(lr {lr:g})"
            )
        return self.label

    def default_lr(self) -> float:
        """The learning rate a ``fixed_lr`` optimizer keeps: a fixed ``lr`` in :attr:`hyper`,
        else the optimizer's own default (the class's ``lr`` argument, a rule's default)."""
        value = defaults_of(self).get("lr")
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise ValueError(
                f"optimizer {self.label!r} has no default learning rate to keep fixed; give "
                "one as a fixed hyperparameter (hyper={'lr': ...})"
            )
        return float(value)

    def describe(self) -> str:
        """The optimizer as text: its name, or the repr of its rule (parseable back)."""
        return self.optimizer if isinstance(self.optimizer, str) else repr(self.optimizer)

    def to_dict(self) -> dict[str, Any]:
        own = optim.specs.source(self.optimizer) if self.is_named else {}
        if hasattr(self.optimizer, "source"):  # (module.Class on the user's path: its file)
            own = self.optimizer.source()
        return {
            # (a file of the user's own: its hash, so an edited one is another comparison)
            **({"source": own} if own else {}),
            "label": self.label,
            "optimizer": self.describe(),
            "hyper": dict(self.hyper),
            "lr_range": [float(v) for v in self.lr_range],
            "fixed_lr": self.fixed_lr,
            # (absent when False: comparisons recorded before the field keep their identity)
            **({"lr_free": True} if self.lr_free else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OptimizerChoice:
        opt = data["optimizer"]
        ext = external.external_from_description(opt)
        return cls(
            label=data["label"],
            optimizer=ext if ext is not None else opt if "(" not in opt else parse_rule(opt),
            hyper=dict(data.get("hyper", {})),
            lr_range=tuple(float(v) for v in data["lr_range"]),  # type: ignore[arg-type]
            fixed_lr=bool(data.get("fixed_lr", False)),
            lr_free=bool(data.get("lr_free", False)),
        )


def _rule_factories() -> dict[str, Callable[..., Any]]:
    """The names a rule expression may call: every update rule class of
    :mod:`descentlab.optim`, and ``chain``."""
    out: dict[str, Callable[..., Any]] = {"chain": optim.chain}
    for n in optim.__all__:
        obj = getattr(optim, n)
        if n[0].islower() and isinstance(obj, type) and issubclass(obj, optim.Rule):
            out[n] = obj
    return dict(sorted(out.items()))


def parse_rule(text: str) -> Any:
    """Build an update rule from an expression such as
    ``"chain(scale_by_rms(alpha=0.9), trace(momentum=0.9), scale_by_lr())"``.

    The expression is read by :func:`descentlab.engine.config.parse_call` (descentlab's one
    call grammar, shared with schedules); only the rule factories of :mod:`descentlab.optim`
    (and ``chain``) may then be called, with literal arguments; nothing is evaluated. The
    ``repr`` of a rule parses back to an equal rule.

    Raises:
        KeyError: an unknown rule name (lists the valid ones).
        ValueError: not a rule expression, or bad arguments.

    Example:
        >>> parse_rule("chain(trace(momentum=0.8), scale_by_lr(lr=0.1))")
        chain(trace(momentum=0.8, dampening=0.0, nesterov=False), scale_by_lr(lr=0.1))
    """
    tree = parse_call(text, "composed optimizer", "'chain(scale_by_adam(), scale_by_lr())'")
    rule = _build_rule(tree, _rule_factories())
    if not isinstance(rule, optim.Rule):
        raise ValueError(f"a composed optimizer must be an update rule, got {text!r}")
    return rule


#: bare names a reader may mean as numbers: refused in one line, never "unknown update rule"
_NON_FINITE_NAMES = frozenset({"nan", "inf", "infinity"})


def _finite_literal(rule: str, key: str, value: Any) -> None:
    """Refuse a non-finite number given to ``rule``'s ``key``: a literal that overflows
    (``1e999``) or a bare ``nan``/``inf`` (read as a name: it would be called a rule)."""
    shown = None
    if isinstance(value, float) and not math.isfinite(value):
        shown = f"{value!r} (the number overflows)" if not math.isnan(value) else "nan"
    elif isinstance(value, dict) and set(value) == {"name"}:
        bare = str(value["name"])
        shown = bare if bare.lower().lstrip("+-") in _NON_FINITE_NAMES else None
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _finite_literal(rule, f"{key}[{i}]", v)
    if shown is not None:
        raise ValueError(f"{rule}: {key} must be a finite number, got {shown}")


def _build_rule(node: Any, factories: Mapping[str, Callable[..., Any]]) -> Any:
    """A rule from :func:`~descentlab.engine.config.parse_call`'s data: each call a rule
    factory's, applied to its arguments built the same way; literals stay as they are."""
    if isinstance(node, list | tuple):
        return type(node)(_build_rule(x, factories) for x in node)
    if not isinstance(node, dict):
        return node
    kwargs = dict(node)
    name, args = kwargs.pop("name"), kwargs.pop("args", [])
    if name not in factories:
        raise KeyError(f"unknown update rule {name!r}; valid names: {', '.join(sorted(factories))}")
    for key, value in [*((f"argument {i + 1}", a) for i, a in enumerate(args)), *kwargs.items()]:
        _finite_literal(name, key, value)
    args = [_build_rule(a, factories) for a in args]
    kwargs = {k: _build_rule(v, factories) for k, v in kwargs.items()}
    try:
        return factories[name](*args, **kwargs)
    except TypeError as exc:
        raise ValueError(f"bad arguments for {name}: {exc}") from None


def parse_optimizer(optimizer: Any) -> OptimizerChoice:
    """An :class:`OptimizerChoice` from a name (one of your own: ``"file.py:Class"``, see
    :mod:`descentlab.optim.specs`), ``"label=rule expression"``, an import path
    (``"torch.optim.SGD"``, ``"lion=pytorch_optimizer.Lion"``), a rule, a ``torch.optim``
    class or factory (:mod:`descentlab.experiments.external`), a ``(label, optimizer)`` pair.

    A string ending in ``@default`` keeps the optimizer at its default learning rate (not
    tuned; ``fixed_lr``), labelled ``<name>_default`` without a label (beside the tuned one).
    An optimizer that declares itself learning-rate-free (``pytorch_optimizer.Prodigy``, the
    D-Adaptation family: :data:`~descentlab.experiments.external.LR_FREE`) is kept at its
    default too (``lr_free``), unless the comparison gives it a learning-rate range.

    Raises:
        KeyError: an unknown optimizer or rule name (lists the valid names).
        ValueError: anything else that is not an optimizer.

    Example:
        >>> parse_optimizer("Adam").label
        'adam'
        >>> c = parse_optimizer("rms_mom=chain(scale_by_rms(alpha=0.9), trace(momentum=0.9), "
        ...                     "scale_by_lr())")
        >>> c.label, c.is_named
        ('rms_mom', False)
        >>> c = parse_optimizer("adadelta@default")
        >>> c.label, c.fixed_lr, c.default_lr()
        ('adadelta_default', True, 1.0)
    """
    if isinstance(optimizer, OptimizerChoice):
        return optimizer
    label: str | None = None
    if isinstance(optimizer, tuple) and len(optimizer) == 2 and isinstance(optimizer[0], str):
        label, optimizer = optimizer
    fixed = False
    if isinstance(optimizer, str):
        text = optimizer.strip()
        if "=" in text.split("(", 1)[0]:
            label, _, text = text.partition("=")
            label, text = label.strip(), text.strip()
        if text.lower().endswith(_FIXED_SUFFIX):
            fixed, text = True, text[: -len(_FIXED_SUFFIX)].strip()
        if (own := _own(text, label, fixed)) is not None:  # an optimizer of your own
            return own
        if external.looks_like_path(text):
            optimizer = external.ImportedOptimizer(text)
        elif "(" in text:
            optimizer = parse_rule(text)
        else:
            return _named(text, label, fixed, optimizer)
    if isinstance(optimizer, optim.Rule):
        if not label:
            label = optimizer_label(optimizer) + ("_default" if fixed else "")
        return OptimizerChoice(
            label=label, optimizer=optimizer, lr_range=_FALLBACK_LR_RANGE, fixed_lr=fixed
        )
    if external.is_external(optimizer) or isinstance(optimizer, type) or callable(optimizer):
        return _external(optimizer, label, fixed)
    raise ValueError(
        "optimizer must be a name (one of "
        f"{', '.join(optim.NAMES)}), 'label=rule expression', an import path "
        f"('torch.optim.SGD'), an update rule, a torch optimizer class or factory, or a "
        f"(label, optimizer) pair, got {optimizer!r}"
    )


def _named(text: str, label: str | None, fixed: bool, given: str) -> OptimizerChoice:
    """A built-in optimizer by its registered ``text`` name (any case). Raises ValueError for
    an empty name (``given``: the string as passed), KeyError listing the valid names for an
    unknown one."""
    if not text:
        raise ValueError(f"optimizer must be a name, got {given!r}")
    optim.get(text)  # KeyError listing the valid names
    name = text.lower()
    return OptimizerChoice(
        label=label or (f"{name}_default" if fixed else name),
        optimizer=name,
        lr_range=optim.record(name).lr_range,
        fixed_lr=fixed,
    )


def _external(optimizer: Any, label: str | None, fixed: bool) -> OptimizerChoice:
    """A ``torch.optim``-style optimizer (an import, a class or factory) wrapped by
    :func:`external.wrap`, its source said once; a learning-rate-free one is kept at its
    default learning rate unless ``fixed`` already does so."""
    ext = external.wrap(optimizer)
    key = ext.name.lower()
    said = getattr(ext, "path", None) or f"{getattr(ext.target, '__module__', '')}.{ext.name}"
    _say_source(label or ext.label, said, ext.source())  # (module.Class of your own)
    lr_free = ext.lr_free and not fixed
    return OptimizerChoice(
        label=label or (f"{ext.label}_default" if fixed else ext.label),
        optimizer=ext,
        lr_range=optim.record(key).lr_range if key in optim.NAMES else _FALLBACK_LR_RANGE,
        fixed_lr=fixed or lr_free,
        lr_free=lr_free,
    )


def _own(text: str, label: str | None, fixed: bool) -> OptimizerChoice | None:
    """A descentlab optimizer of the user's own (``file.py:Class``, ``module:Class``, a name
    given to ``optim.register``) under its spec as another process resolves it; the file it
    is read from said once, with the hash a comparison records. None: not one."""
    from descentlab._files import shown

    rec = optim.specs.lookup(text, strict=False)
    if rec is None:
        return None
    spec = optim.specs.spec_of(text)
    where, _, cls = spec.rpartition(":")
    said = f"{shown(where)}:{cls}" if where.endswith(".py") else spec
    _say_source(rec.name, said, optim.specs.source(spec))
    name = label or (f"{rec.name}_default" if fixed else rec.name)
    return OptimizerChoice(label=name, optimizer=spec, lr_range=rec.lr_range, fixed_lr=fixed)


def _say_source(name: str, said: str, sources: Mapping[str, str]) -> None:
    """Say once the user's file an optimizer is read from, with the hash its comparison
    records (``sources``: ``{file: sha256}``; empty for a package's)."""
    from descentlab._announce import once

    for file, digest in sources.items():
        once(
            ("own-optimizer", said, digest),
            f"descentlab: optimizer {name!r} is {said} ({file} sha256 {digest}); an edited "
            "file starts a new comparison",
            stacklevel=6,
        )


# ------------------------------------------------------------------------------------------
# what an optimizer takes


def defaults_of(choice: OptimizerChoice) -> dict[str, Any]:
    """The optimizer's hyperparameters with their defaults, the fixed ones applied: a class's
    or factory's keyword defaults, a rule's ``defaults``."""
    if choice.is_named:
        target = optim.get(choice.optimizer)
    elif external.is_external(choice.optimizer):
        target = getattr(choice.optimizer, "target", None)
    else:
        return {**dict(getattr(choice.optimizer, "defaults", {})), **choice.hyper}
    keywords = optim.factory_keywords(target, choice.hyper) if target else {}
    out = {k: v for k, v in keywords.items() if v is not inspect.Parameter.empty}
    return {**out, **choice.hyper}


def has_hyper(choice: OptimizerChoice, key: str) -> bool:
    """Whether the optimizer *has* hyperparameter ``key``: it takes it and its value is not
    switched off (0, False, None). SGD takes ``momentum`` but has none (0): tuning
    ``momentum`` would turn it into another optimizer."""
    defaults = defaults_of(choice)
    if key not in defaults:
        return False
    value = defaults[key]
    return (
        value is not None
        and value is not False
        and not (isinstance(value, numbers.Number) and value == 0)
    )


def accepts(choice: OptimizerChoice, key: str) -> bool:
    """Whether the optimizer takes keyword ``key``: its factory's keywords (a name's), its
    ``defaults`` (a rule's), or the ones it declares (your own: one that declares none)."""
    if external.is_external(choice.optimizer):
        return bool(choice.optimizer.accepts(key))
    if choice.is_named:
        return key in optim.factory_keywords(optim.get(choice.optimizer), choice.hyper)
    return key in choice.optimizer.defaults


def check_optimizer(choice: OptimizerChoice, *hypers: Mapping[str, Any]) -> None:
    """Check each of ``hypers`` as the optimizer's construction checks them, building nothing
    (``optim.SETTINGS_ONLY``; an optimizer of your own is built on a dummy parameter): bad
    hyperparameters fail here, not in a worker."""
    if external.is_external(choice.optimizer):
        for hyper in hypers:
            external.check_external(choice.label, choice.optimizer, hyper)
        return
    for hyper in hypers:  # a name's unknown keywords listed with the valid ones, as the engine's
        try:
            make_optimizer(choice.optimizer, optim.SETTINGS_ONLY, hyper)
        except TypeError as exc:
            raise ValueError(f"optimizer {choice.label!r}: {exc}") from None
