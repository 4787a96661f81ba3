"""One record per registered optimizer: everything the rest of descentlab knows about it.

The comparison reads the learning-rate search range, the figures the display name and
colour, the landscapes the demonstration learning rates, the family tree the family, the
test tables the torch-parity configurations. An optimizer's module (``optim/adam.py``...)
holds its record next to its rules and its class; :class:`Registry` collects them.

Example:
    >>> from descentlab import optim
    >>> r = optim.record("adam")
    >>> r.display, r.year, r.factory is optim.Adam, r.lr_range
    ('Adam', 2015, True, (0.001, 0.1))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

__all__ = ["OptimizerRecord", "ParityConfig", "Registry", "adam_family"]


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class ParityConfig:
    """One torch-parity configuration for the test tables: the descentlab optimizer built
    with ``kwargs`` (second param group: ``group2`` overrides) must follow
    ``torch.optim.<torch>`` built the same way.

    Attributes:
        id: the test id, e.g. ``"adam-amsgrad"``.
        torch: the ``torch.optim`` class name, e.g. ``"Adam"``.
        kwargs: constructor arguments (both libraries).
        group2: the second param group's overrides.
    """

    id: str
    torch: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    group2: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kwargs", _frozen(self.kwargs))
        object.__setattr__(self, "group2", _frozen(self.group2))


class _Terrain(Protocol):
    """What :meth:`OptimizerRecord.lr_on` reads of a landscape
    (:class:`descentlab.problems.landscapes.Landscape`)."""

    name: str
    lr: float
    domain: Sequence[tuple[float, float]]


@dataclass(frozen=True)
class OptimizerRecord:
    """The facts about one registered optimizer.

    Attributes:
        name: the registry key (``"adam"``).
        display: how the lectures write it (``"Adam"``).
        color: its colour in every figure (hex; Okabe & Ito's colour-blind safe set first).
        lr_range: the log-uniform learning-rate search range of the comparison: two decades,
            placed so that the best rate for small networks lies inside.
        demo_lr: landscape name -> the learning rate that shows it at its best there
            (chosen by looking at the races); see :meth:`lr_on` for the other landscapes.
        family: ``"sgd"``, ``"momentum"``, ``"adaptive"`` or ``"adam"``.
        adaptive: whether its steps are about ``lr`` per coordinate (a per-coordinate
            adaptive rate), rather than ``lr * |g|``.
        year: the year of its reference.
        reference: where it was introduced.
        factory: the optimizer class (torch's signature).
        parity: torch-parity test configurations (empty when torch has no namesake).
        fixed_lr: a learning rate for landscapes without a tuned one, where the landscape's
            own rate does not apply (Adadelta: torch's 1.0, its lr multiplies a
            unit-corrected step); None: :meth:`lr_on`'s rule by family.
    """

    name: str
    display: str
    color: str
    lr_range: tuple[float, float]
    family: str
    adaptive: bool
    year: int
    reference: str
    factory: type
    demo_lr: Mapping[str, float] = field(default_factory=dict)
    parity: tuple[ParityConfig, ...] = ()
    fixed_lr: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "demo_lr", _frozen(self.demo_lr))
        lo, hi = self.lr_range
        if not 0 < lo < hi:
            raise ValueError(f"{self.name}: lr_range must be 0 < low < high, got {self.lr_range}")

    def lr_on(self, landscape: _Terrain) -> float:
        """A learning rate that shows this optimizer well on ``landscape``.

        The tuned :attr:`demo_lr` where there is one; elsewhere the landscape's own
        gradient-descent rate for SGD-like methods, a tenth of it for the momentum family
        (whose effective rate is ``lr / (1 - momentum)``), :attr:`fixed_lr` where set, and a
        step of about 1/50 of the domain for adaptive methods (whose steps are about ``lr``
        per coordinate).
        """
        if landscape.name in self.demo_lr:
            return self.demo_lr[landscape.name]
        if self.family == "momentum":
            return landscape.lr / 10
        if self.fixed_lr is not None:
            return self.fixed_lr
        if self.adaptive:
            width = min(hi - lo for lo, hi in landscape.domain)
            return float(f"{width / 50:.2g}")
        return landscape.lr


def adam_family(**fields: Any) -> OptimizerRecord:
    """An Adam-family optimizer's record: adaptive, its learning rates searched over
    [1e-3, 1e-1]; ``fields``: the rest of :class:`OptimizerRecord`'s."""
    return OptimizerRecord(family="adam", adaptive=True, lr_range=(1e-3, 1e-1), **fields)


class Registry:
    """Records in registry order, looked up by name (case-insensitive)."""

    def __init__(self, records: Iterable[OptimizerRecord]) -> None:
        self._records = tuple(records)
        self._by_name: dict[str, OptimizerRecord] = {}
        for r in self._records:
            if r.name in self._by_name:
                raise ValueError(f"two optimizer records are named {r.name!r}")
            self._by_name[r.name] = r

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def records(self) -> tuple[OptimizerRecord, ...]:
        """Every registered optimizer's record, in registry (the lectures') order."""
        return self._records

    def record(self, name: str) -> OptimizerRecord:
        """The record of ``name`` (case-insensitive).

        Raises:
            KeyError: unknown name; the message lists the valid ones.
        """
        key = str(name).strip().lower()
        if key not in self._by_name:
            raise KeyError(f"unknown optimizer {name!r}; valid names: {', '.join(self.names)}")
        return self._by_name[key]
