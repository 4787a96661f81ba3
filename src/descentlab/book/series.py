"""The words of each series a training run records, in one place: a table's column heading,
a figure's title or axis label and a card's column all name a series by :data:`WORDS` of its
key, never by words typed beside the values.

:func:`misheaded` reads a table back: every column headed by a series' words must hold, in
each row, the last value of that series in the row's runs (their mean over several runs, the
seeds) -- two headings swapped, or two columns, are refused.

Example:
    >>> WORDS["val/loss"], key_of("Validation loss")
    ('validation loss', 'val/loss')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["WORDS", "key_of", "last", "misheaded"]

#: a run's series (its metric key) -> the words that name it
WORDS: dict[str, str] = {
    "train/loss": "training loss",
    "train/accuracy": "training accuracy",
    "val/loss": "validation loss",
    "val/accuracy": "validation accuracy",
    "test/loss": "test loss",
    "test/accuracy": "test accuracy",
    "test/rmse": "test RMSE",
}

_KEYS = {words.lower(): key for key, words in WORDS.items()}


def key_of(heading: Any) -> str | None:
    """The key of the series ``heading`` names (its words, in any case), None if it names
    none."""
    return _KEYS.get(str(heading).strip().lower())


def last(runs: Sequence[Any], key: str) -> float | None:
    """The mean over ``runs`` of the last recorded value of their series ``key`` (None when a
    run does not record it)."""
    ends = []
    for r in runs:
        series = getattr(r, "metrics", {}).get(key)
        if series is None or not len(series.values):
            return None
        ends.append(float(series.values[-1]))
    return float(np.mean(ends)) if ends else None


def misheaded(
    columns: Sequence[Any], rows: Sequence[Sequence[Any]], runs: Mapping[str, Sequence[Any]]
) -> tuple[list[str], int]:
    """The faults of a table whose rows are ``runs`` (row label -> its runs): a column headed
    by a series' words whose cell in a row is not that series' last value in the row's runs
    (the column whose value it is named), a series those runs do not record, or series'
    columns of which no row is a run (nothing would be read). Returns the faults and the
    number of cells read."""
    faults, read = [], 0
    for j, heading in enumerate(columns):
        key = key_of(heading)
        if not j or key is None:
            continue
        for row in rows:
            own = runs.get(str(row[0]))
            if own is None:
                continue
            read += 1
            want = last(own, key)
            if want is None:
                faults.append(f"the column “{heading}”: row {row[0]}'s runs record no {key}")
                break
            if not _near(row[j], want):
                other = [str(columns[i]) for i, c in enumerate(row) if i and _near(c, want)]
                where = f", the column “{other[0]}”'s" if other else ""
                faults.append(
                    f"the column “{heading}” holds {row[j]!s:.8} in row {row[0]}, its series "
                    f"{key} ends at {want:.4g}{where}"
                )
                break
    named = [h for j, h in enumerate(columns) if j and key_of(h) is not None]
    if named and rows and not any(str(row[0]) in runs for row in rows):
        faults.append(f"the columns “{'”, “'.join(map(str, named))}”: no row is one of the "
                      f"table's runs ({', '.join(list(runs)[:3])})")  # fmt: skip
    return faults, read


def _near(cell: Any, value: float) -> bool:
    if not isinstance(cell, int | float | np.floating) or isinstance(cell, bool):
        return False
    return math.isclose(float(cell), value, rel_tol=1e-9, abs_tol=1e-15)
