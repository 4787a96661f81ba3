"""What every lecture experiment shares: its result, option handling, small training loops.

An experiment is a function ``f(*, quick=False, seed=0, **options) -> ExperimentResult``. Its
options default to ``None``, meaning "the preset": the full setting, or with ``quick=True`` a
small one that runs in seconds (used by the tests). The result holds a short table (rows of
plain values), the qualitative checks the lecture predicts and whether this run bore them out,
notes that explain the numbers, and every array the figures need; it saves itself as JSON and
Markdown (:meth:`ExperimentResult.save`) and reads back (:meth:`ExperimentResult.load`), so the
figures and the report can be redrawn without rerunning anything.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import numbers
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from descentlab._files import make_dirs, write_atomic
from descentlab.constraints import (
    Boolean,
    Constraint,
    Interval,
    check,
    invalid,
    validate,
)
from descentlab.problems import data as datasets
from descentlab.store import provenance

__all__ = [
    "ExperimentResult",
    "Part",
    "descend",
    "experiment",
    "finish",
    "format_value",
    "load_classification",
    "resolve",
    "settle",
]


def _jsonable(value: Any) -> Any:
    """Plain JSON data: arrays and tensors become lists, NaN/inf become None."""
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def format_value(value: Any, digits: int = 4) -> str:
    """A table cell: floats to ``digits`` significant digits, None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        f = float(value)
        if not math.isfinite(f):
            return str(f)
        if f != 0 and (abs(f) < 1e-3 or abs(f) >= 1e5):
            return f"{f:.{max(digits - 1, 1)}e}"
        return f"{f:.{digits}g}"
    return str(value)


@dataclass
class ExperimentResult:
    """The outcome of one lecture experiment.

    Attributes:
        name: the experiment's name (``"sharpness"``...).
        title: a one-line title.
        columns: the table's columns, in order.
        rows: the table, one dict per row (plain numbers and strings).
        checks: the lecture's qualitative predictions, each mapped to whether this run bore
            it out (``{"the large-batch minimum is sharper": True}``).
        notes: sentences that explain the numbers (Markdown).
        data: every array the figures need (JSON-ready lists and numbers).
        config: the resolved options the experiment ran with (including ``quick`` and
            ``seed``).
        seconds: wall-clock time of the experiment.
        provenance: versions, git revision, machine (:func:`descentlab.store.provenance`).
        figures: ``{figure name: file name}`` once figures are written.
        measured: for a check that compares numbers, ``{check text: {"measured": ...,
            "expected": ...}}`` (strings as shown), set by :meth:`check`.
        unmet: ``{check text: "not_reproduced"}`` for a check whose failure says that the run
            did not get where its protocol needed within its stated cap (shown ○, not ✘:
            it is no evidence against the claim), set by :meth:`check`.

    Example:
        >>> r = ExperimentResult("demo", "A demo", ["a", "b"], [{"a": 1, "b": 0.5}])
        >>> print(r.table_markdown())
        | a | b |
        |---|---|
        | 1 | 0.5 |
    """

    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]]
    checks: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    provenance: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    measured: dict[str, dict[str, str]] = field(default_factory=dict)
    unmet: dict[str, str] = field(default_factory=dict)

    def check(
        self, text: str, ok: bool, measured: Any, expected: Any, *, unmet: str = "fail"
    ) -> bool:
        """Record a check computed from the numbers: whether it holds, and the measured and
        expected values behind it (shown beside the ✔/✘ in the Markdown and the lecture book).

        ``unmet="not_reproduced"`` marks a check whose failure is shown ○ (not reproduced
        here) instead of ✘: a run that stopped at its stated cap before the point its
        protocol needed (a target loss) says nothing against the claim, and the arithmetic of
        another CPU can move a run that is near its cap to either side of it.

        Example:
            >>> r = ExperimentResult("demo", "A demo", [], [])
            >>> r.check("the rate matches theory within 5 %", True, 0.949, "0.9487 ± 5 %")
            True
            >>> r.measured["the rate matches theory within 5 %"]["measured"]
            '0.949'
        """
        if unmet not in ("fail", "not_reproduced"):
            raise ValueError(f"unmet must be 'fail' or 'not_reproduced', got {unmet!r}")
        ok = bool(ok)
        self.checks[text] = ok
        if unmet == "fail":
            self.unmet.pop(text, None)
        else:
            self.unmet[text] = unmet
        self.measured[text] = {
            "measured": measured if isinstance(measured, str) else format_value(measured),
            "expected": expected if isinstance(expected, str) else format_value(expected),
        }
        return ok

    def status(self, text: str) -> str:
        """A check's status as the lecture book has it: ``"ok"``, ``"fail"`` or
        ``"not_reproduced"`` (a failed check recorded with ``unmet="not_reproduced"``).

        Example:
            >>> r = ExperimentResult("demo", "A demo", [], [])
            >>> r.check("every run reached the target", False, "no", "yes",
            ...         unmet="not_reproduced")
            False
            >>> r.status("every run reached the target"), r.mark("every run reached the target")
            ('not_reproduced', '○')
        """
        if self.checks[text]:
            return "ok"
        return self.unmet.get(text, "fail")

    def mark(self, text: str) -> str:
        """A check's mark: ✔, ✘ or ○ (:meth:`status`)."""
        return {"ok": "✔", "fail": "✘", "not_reproduced": "○"}[self.status(text)]

    def add(self, part: Part) -> Part:
        """Append a :class:`Part`'s rows and checks (in their order) and store its data under
        ``part.key`` (when it has one); returns the part."""
        self.rows.extend(part.rows)
        for text, ok, measured, expected in part.checks:
            self.check(text, ok, measured, expected)
        if part.key is not None:
            self.data[part.key] = part.data
        return part

    # -- tables ----------------------------------------------------------------------------

    def column(self, name: str) -> list[Any]:
        """The values of one column, in row order.

        Raises:
            KeyError: unknown column (the message lists the columns).
        """
        if name not in self.columns:
            raise KeyError(f"unknown column {name!r}; columns: {', '.join(self.columns)}")
        return [row.get(name) for row in self.rows]

    def row(self, **match: Any) -> dict[str, Any]:
        """The first row whose entries equal ``match`` (e.g. ``row(method="none")``).

        Raises:
            KeyError: no such row.
        """
        for r in self.rows:
            if all(r.get(k) == v for k, v in match.items()):
                return r
        raise KeyError(f"no row with {match}")

    def table_markdown(self) -> str:
        """The table as GitHub Markdown."""
        head = "| " + " | ".join(self.columns) + " |"
        rule = "|" + "|".join("---" for _ in self.columns) + "|"
        body = [
            "| " + " | ".join(format_value(r.get(c)) for c in self.columns) + " |"
            for r in self.rows
        ]
        return "\n".join([head, rule, *body])

    def table_text(self) -> str:
        """The table as aligned plain text (for the terminal)."""
        cells = [[format_value(r.get(c)) for c in self.columns] for r in self.rows]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(self.columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """A short Markdown section: title, table, checks, notes, figures, settings."""
        out = [f"## {self.title}", "", self.table_markdown(), ""]
        if self.checks:
            out.append("**Expected (lectures) and observed:**")
            out.append("")
            for text in self.checks:
                m = self.measured.get(text)
                extra = f" (measured {m['measured']}, expected {m['expected']})" if m else ""
                out.append(f"- {self.mark(text)} {text}{extra}")
            out.append("")
        for note in self.notes:
            out += [note, ""]
        for name, file in self.figures.items():
            out += [f"![{name}]({file})", ""]
        settings = ", ".join(f"{k}={v}" for k, v in self.config.items())
        out.append(f"_Settings: {settings}. Ran in {self.seconds:.1f} s._")
        return "\n".join(out) + "\n"

    # -- files -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (arrays as lists, non-finite numbers as null)."""
        return _jsonable(
            {
                "name": self.name,
                "title": self.title,
                "columns": self.columns,
                "rows": self.rows,
                "checks": self.checks,
                "notes": self.notes,
                "data": self.data,
                "config": self.config,
                "seconds": self.seconds,
                "provenance": self.provenance,
                "figures": self.figures,
                "measured": self.measured,
                "unmet": self.unmet,
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExperimentResult:
        """Rebuild a result from :meth:`to_dict`'s output."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def save(self, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``<name>.json`` and ``<name>.md`` into ``out_dir`` (atomically each).

        Returns:
            the two paths.
        """
        out = Path(out_dir)
        make_dirs(out)  # (noted: a command that fails for lack of space removes it)
        js = out / f"{self.name}.json"
        md = out / f"{self.name}.md"
        _atomic_write(js, json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        _atomic_write(md, self.to_markdown())
        return js, md

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ExperimentResult:
        """Read a result written by :meth:`save` (the ``.json`` file)."""
        return cls.from_dict(json.loads(Path(path).read_text()))


@dataclass
class Part:
    """One part of an experiment, computed on its own: its table rows, its checks and the
    data of its figures. :meth:`ExperimentResult.add` appends them to the result in order.

    Attributes:
        key: where ``data`` goes in the result's ``data`` (None: nowhere).
        data: the part's arrays and numbers.
        rows: its table rows.
        checks: ``(text, ok, measured, expected)`` as :meth:`ExperimentResult.check` takes.
        values: numbers later parts or the notes need (not saved).

    Example:
        >>> part = Part("demo")
        >>> part.check("one is small", 1 < 2, 1, "< 2")
        True
        >>> r = ExperimentResult("demo", "A demo", ["a"], [])
        >>> _ = r.add(part)
        >>> r.checks, r.measured["one is small"]["expected"]
        ({'one is small': True}, '< 2')
    """

    key: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    checks: list[tuple[str, bool, Any, Any]] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def row(self, **cells: Any) -> None:
        """Add a table row."""
        self.rows.append(cells)

    def check(self, text: str, ok: Any, measured: Any, expected: Any) -> bool:
        """Add a check (see :meth:`ExperimentResult.check`); returns whether it holds."""
        self.checks.append((text, bool(ok), measured, expected))
        return bool(ok)


def _atomic_write(path: Path, text: str) -> None:
    write_atomic(path, text)


# ------------------------------------------------------------------------------------------
# options


def resolve(
    given: Mapping[str, Any], defaults: Mapping[str, Any], quick_defaults: Mapping[str, Any],
    quick: bool,
) -> dict[str, Any]:  # fmt: skip
    """The options an experiment runs with: the preset (full or quick) overridden by the
    options given explicitly (those not None). Only the keys of ``defaults`` are options;
    other entries of ``given`` (e.g. a function's other locals) are ignored, but ``quick``
    and a ``seed`` among them are checked (True/False, an integer >= 0)."""
    check("quick", quick, Boolean)
    if "seed" in given:
        check("seed", given["seed"], Interval(numbers.Integral, 0, None))
    out = dict(defaults)
    if quick:
        out.update(quick_defaults)
    out.update({k: v for k, v in given.items() if k in defaults and v is not None})
    return out


def experiment(
    defaults: Mapping[str, Any],
    quick_defaults: Mapping[str, Any],
    constraints: Mapping[str, Sequence[Constraint | None]] | None = None,
    *extra: inspect.Parameter,
    trains: bool = False,
) -> Callable[[Callable[..., ExperimentResult]], Callable[..., ExperimentResult]]:
    """Make ``fn(o, v, *, quick, seed, **extra)`` an experiment
    ``run(*, quick=False, seed=0, **options)``.

    The ``run`` it returns resolves the options (:func:`resolve`: the preset overridden by the
    options given), checks them against ``constraints`` (:func:`settle`; the first bad one
    raises, naming it and its value) and calls ``fn`` with the resolved options ``o`` and the
    checked, converted ones ``v``. Its signature (``inspect.signature``, ``help``) lists the
    options of ``defaults``, each defaulting to None (the preset's value), then ``extra``
    (passed to ``fn`` as given); an unknown option is a ValueError listing the valid ones.
    With ``trains`` its runs train through the engine: ``extra`` ends with
    :data:`TRAINING_OPTIONS`, their backend checked with the rest. Everything is checked
    before any work.

    Example:
        >>> from descentlab.constraints import POSITIVE_INT
        >>> @experiment({"steps": 10}, {"steps": 2}, {"steps": [POSITIVE_INT]})
        ... def run(o, v, *, quick, seed):
        ...     return v["steps"]
        >>> list(inspect.signature(run).parameters)
        ['quick', 'seed', 'steps']
        >>> run(), run(quick=True), run(steps=5)
        (10, 2, 5)
        >>> run(step=5)
        Traceback (most recent call last):
        ...
        ValueError: unknown option(s) ['step']; valid options: steps
    """
    kw = inspect.Parameter.KEYWORD_ONLY
    extra = (*extra, *TRAINING_OPTIONS) if trains else extra
    params = [
        inspect.Parameter("quick", kw, default=False, annotation=bool),
        inspect.Parameter("seed", kw, default=0, annotation=int),
        *(inspect.Parameter(name, kw, default=None, annotation=Any) for name in defaults),
        *extra,
    ]
    valid = [q.name for q in params[2:]]
    table = constraints or {}

    def wrap(fn: Callable[..., ExperimentResult]) -> Callable[..., ExperimentResult]:
        @functools.wraps(fn)
        def run(*, quick: bool = False, seed: int = 0, **options: Any) -> ExperimentResult:
            unknown = sorted(set(options) - set(valid))
            if unknown:
                raise ValueError(f"unknown option(s) {unknown}; valid options: {', '.join(valid)}")
            o = resolve({"seed": seed, **options}, defaults, quick_defaults, quick)
            checked = settle(table, o)
            more = {q.name: options[q.name] for q in extra if q.name in options}
            if trains:
                from descentlab.experiments.runners import check_backend

                check_backend(more.get("backend", "local"), more.get("address"))
            return fn(o, checked, quick=quick, seed=seed, **more)

        run.__signature__ = inspect.Signature(params, return_annotation=ExperimentResult)  # type: ignore[attr-defined]
        return run

    return wrap


def settle(
    table: Mapping[str, Sequence[Constraint | None]], options: Mapping[str, Any]
) -> dict[str, Any]:
    """The options ``table`` names, checked by :func:`descentlab.constraints.validate` (the
    first bad one raises, naming the option and its value) and converted (ints as int,
    numbers as float, lists as lists).

    Example:
        >>> from descentlab.constraints import POSITIVE_INT
        >>> settle({"steps": [POSITIVE_INT]}, {"steps": 3, "other": "kept out"})
        {'steps': 3}
        >>> settle({"steps": [POSITIVE_INT]}, {"steps": 0})
        Traceback (most recent call last):
        ...
        ValueError: steps must be a positive integer, got 0
    """
    return validate(table, {k: options[k] for k in table})


# ------------------------------------------------------------------------------------------
# small helpers shared by the experiments


def finish(
    result: ExperimentResult, *, quick: bool, seed: int, options: Mapping[str, Any],
    seconds: float, notes: Sequence[str] = (),
) -> ExperimentResult:  # fmt: skip
    """Complete ``result``: its notes, the settings it ran with (``quick``, ``seed`` and the
    resolved ``options``), its time and its provenance; returns it."""
    result.notes = list(notes)
    result.config = {"quick": quick, "seed": seed, **options}
    result.seconds = seconds
    result.provenance = provenance(seed, experiment=result.name)
    return result


class Classification(NamedTuple):
    """A classification dataset as an experiment uses it (:func:`load_classification`)."""

    splits: Any  #: the :class:`descentlab.problems.data.Splits`
    n: int  #: the training examples to use
    x_test: Tensor
    y_test: Tensor


def load_classification(problem: str, n_train: int | None, *, minimum: int = 1) -> Classification:
    """Load ``problem``, which must be a classification dataset, with ``n_train`` (None: all,
    else ``minimum`` to all) of its training examples and its test split (read once: nothing
    is tuned on it, it only scores fixed procedures).

    Raises:
        ValueError: not a classification dataset, or ``n_train`` out of range (naming it).
    """
    splits = datasets.load(problem)
    if splits.task != "classification":
        raise invalid("problem", "a classification dataset", problem)
    n_avail = int(splits.x_train.shape[0])
    n = n_avail if n_train is None else check(
        "n_train", n_train, Interval(numbers.Integral, minimum, n_avail)
    )  # fmt: skip
    splits.unseal_test()
    x_test, y_test = splits.x_test, splits.y_test
    splits.seal_test()
    return Classification(splits, n, x_test, y_test)


def descend(
    optimizer: torch.optim.Optimizer, param: Tensor, loss: Callable[[Tensor], Tensor], steps: int
) -> Tensor:
    """``steps`` steps of ``optimizer`` on ``loss(param)`` (a scalar); the path of ``param``,
    shape ``(steps + 1, *param.shape)``, starting point first.

    Example:
        >>> w = nn.Parameter(torch.tensor([1.0]))
        >>> descend(torch.optim.SGD([w], lr=0.25), w, lambda p: (p**2).sum(), 2).flatten()
        tensor([1.0000, 0.5000, 0.2500])
    """
    path = [param.detach().clone()]
    for _ in range(steps):
        optimizer.zero_grad()
        loss(param).backward()
        optimizer.step()
        path.append(param.detach().clone())
    return torch.stack(path)


@contextmanager
def timer() -> Iterator[Callable[[], float]]:
    """``with timer() as elapsed: ...; elapsed()`` -> seconds since entering."""
    start = time.perf_counter()
    yield lambda: time.perf_counter() - start


def flat_params(model: nn.Module) -> Tensor:
    """All parameters of ``model`` as one detached vector (in ``parameters()`` order)."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


#: The options of an experiment whose runs train through the engine: ``store`` (a
#: :class:`descentlab.store.Store` to record them in), ``backend`` and ``address`` (here, or as
#: Ray tasks: :func:`descentlab.experiments.runners.train_all`). Pass them to
#: :func:`experiment` after the constraints.
TRAINING_OPTIONS: tuple[inspect.Parameter, ...] = (
    inspect.Parameter("store", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Any),
    inspect.Parameter("backend", inspect.Parameter.KEYWORD_ONLY, default="local", annotation=str),
    inspect.Parameter("address", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Any),
)
