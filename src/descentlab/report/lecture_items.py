"""The items of the lecture book and what their evidence is computed with.

A :class:`Lecture` holds its :class:`Claim` items in the lecture's order; a claim's
``evidence(ctx)`` returns the :class:`Evidence` (checks, a figure, a table) that shows it,
computed in a :class:`Context` that runs each lecture experiment once per book (or reuses its
saved result when its settings match). :mod:`descentlab.report.lecture_claims` lists the
items, :mod:`descentlab.report.lecture_book` renders them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from descentlab.experiments import lectures
from descentlab.experiments.lectures._common import ExperimentResult

__all__ = ["Check", "Claim", "Context", "Evidence", "Lecture"]


@dataclass
class Check:
    """One check computed from the numbers."""

    text: str
    ok: bool
    measured: str
    expected: str


@dataclass
class Evidence:
    """What shows a claim: checks, and optionally a figure (matplotlib) and a table."""

    checks: list[Check] = field(default_factory=list)
    figure: Any = None
    table: tuple[list[str], list[list[Any]]] | None = None
    note: str = ""


@dataclass
class Claim:
    """One concrete item of a lecture.

    Attributes:
        key: a stable id (``"002.31"``).
        section: the lecture's section where it appears.
        kind: ``formula``, ``algorithm``, ``example``, ``figure``, ``table`` or ``claim``.
        text: the item in English.
        quote: the lecture's own words (short).
        where: where the project shows or verifies it (module, experiment, test).
        evidence: ``ctx -> Evidence``.
    """

    key: str
    section: str
    kind: str
    text: str
    quote: str
    where: str
    evidence: Callable[[Context], Evidence]


@dataclass
class Lecture:
    """A lecture: its seed file, subject, page name and items in order."""

    seed: str
    subject: str
    slug: str
    origin: str
    summary: str
    claims: list[Claim]
    experiments: tuple[str, ...] = ()


class Context:
    """What the claims share while a book is built: the quick flag, experiment results
    (run once, cached in ``data_dir``) and the lecture figures."""

    def __init__(self, quick: bool, data_dir: Path | None, log: Callable[[str], None]) -> None:
        self.quick = quick
        self.data_dir = data_dir
        self.log = log
        self._results: dict[str, ExperimentResult] = {}

    def _path(self, name: str) -> Path | None:
        return self.data_dir / f"{name}.json" if self.data_dir is not None else None

    def saved(self, name: str) -> ExperimentResult | None:
        """The result of ``name`` saved in ``data_dir`` when its settings equal the preset's
        (None when there is none, it cannot be read or its settings differ)."""
        path = self._path(name)
        if path is None or not path.is_file():
            return None
        want = {"quick": self.quick, "seed": 0, **lectures.options(name, quick=self.quick)}
        try:
            saved = ExperimentResult.load(path)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return saved if _same_config(saved.config, want) else None

    def experiment(self, name: str) -> ExperimentResult:
        """The result of lecture experiment ``name`` in this book's setting (quick or full).

        A saved result in ``data_dir`` is reused only when its settings equal the preset's.
        """
        if name in self._results:
            return self._results[name]
        path = self._path(name)
        saved = self.saved(name)
        if saved is not None:
            self.log(f"  reusing {path}")
            self._results[name] = saved
            return saved
        if path is not None and path.is_file():
            self.log(f"  {path} was made with other settings: running {name} again")
        t0 = time.perf_counter()
        result = lectures.run(name, quick=self.quick)
        self.log(f"  ran experiment {name} in {time.perf_counter() - t0:.1f} s")
        if path is not None:
            result.save(path.parent)
            result = ExperimentResult.load(path)  # the figures draw from the saved data
        self._results[name] = result
        return result


def _same_config(saved: dict[str, Any], want: dict[str, Any]) -> bool:
    # options left at None are resolved by the experiment (e.g. from another option)
    norm = json.loads(json.dumps(want, default=str))
    return all(saved.get(k) == v for k, v in norm.items() if v is not None)
