"""The book's data model: an :class:`Item` of a lecture, a :class:`Lecture`, and the
:class:`Context` its evidence is computed in.

The experiments' results are cached in ``DIR/data`` keyed by everything that produced them:
the experiment's settings *and* a hash of the source code it can run -- every file of
``src/descentlab`` its module imports, directly or through others, read from the imports
themselves (:mod:`descentlab.book.imports`), never from a list kept by hand. A result whose
key differs -- other settings, or any changed line of that code -- is run again and said
so, never reused.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from descentlab._files import make_dirs, write_atomic
from descentlab.book import experiments as lectures
from descentlab.book import imports
from descentlab.book.experiments._common import ExperimentResult
from descentlab.book.render.pages import Evidence

__all__ = [
    "Bound",
    "Context",
    "Exercise",
    "Item",
    "Lecture",
    "Play",
    "code_hash",
    "shown_by",
]

#: Kinds of seed_items.md: C claim, A algorithm, F formula, G figure, E example, T table.
KINDS: dict[str, str] = {
    "C": "claim", "A": "algorithm", "F": "formula", "G": "figure", "E": "example", "T": "table",
}  # fmt: skip


@dataclass(frozen=True)
class Item:
    """One item of ``shared/seed_items.md``, with what shows it.

    Attributes:
        number: its number in seed_items.md (1-131).
        section: the lecture's section where it appears.
        kind: seed_items' kind letters (``"C"``, ``"A/C"``, ...).
        text: the item in English.
        quote: the lecture's own words (short).
        show: evidence functions ``ctx -> Evidence`` (their results are joined).
        framing: non-empty for a framing slide with nothing to compute: why.
        rewrite: non-empty where the book rewrites the lecture's rule: what and why.
        explain: the book's explanation (paragraphs separated by blank lines).
        code: a code cell on descentlab's public API; the build runs it and shows its output.
        play: the playground view that shows the item, if one does.
    """

    number: int
    section: str
    kind: str
    text: str
    quote: str = ""
    show: tuple[Callable[[Context], Evidence], ...] = ()
    framing: str = ""
    rewrite: str = ""
    explain: str = ""
    code: str = ""
    play: Play | None = None

    def __post_init__(self) -> None:
        letters = self.kind.split("/")
        if not letters or any(k not in KINDS for k in letters):
            raise ValueError(f"item {self.number}: kind must be letters of {sorted(KINDS)}")
        if not self.show and not self.framing:
            raise ValueError(f"item {self.number}: needs evidence or a framing reason")

    @property
    def kind_words(self) -> str:
        return " / ".join(KINDS[k] for k in self.kind.split("/"))

    @property
    def shown_by(self) -> str:
        """Where the project shows the item, derived from its evidence functions."""
        return "; ".join(shown_by(fn) for fn in self.show) or "framing (no computation)"


@dataclass(frozen=True)
class Play:
    """A playground view: the URL state of ``descentlab playground`` (``static/app.js``'s
    ``readUrl``) that shows an item.

    Attributes:
        land: the landscape (a playground landscape, e.g. ``"quadratic"``, ``"parabola"``).
        optimizers: the optimizers switched on, each with the slider values it overrides
            (``lr``, ``momentum``, ``betas``, ``eps``); every other optimizer is switched off.
        steps: the number of steps.
        starts: the starting points (default: the landscape's own start).
        kappa: the quadratic's condition number (only on ``"quadratic"``).
        mode: the playground's view: ``"paths"`` (paths over the landscape, losses) or
            ``"oned"`` (the derivatives lecture's 1-D view: iterates on the curve).
    """

    land: str
    optimizers: dict[str, dict[str, Any]]
    steps: int = 100
    starts: tuple[tuple[float, ...], ...] = ()
    kappa: float | None = None
    mode: str = "paths"


@dataclass(frozen=True)
class Exercise:
    """An exercise at the end of a lecture page: numeric (its answer computed by the build)
    or open-ended (a worked solution, folded).

    A numeric exercise's ``code`` runs like an item's code cell and must set ``answer`` (the
    value derived on paper: a formula), ``measured`` (the same value measured by running
    descentlab) and ``tol`` (the relative tolerance between them): the build checks that they
    agree; the page hides the answer until asked and checks a number the reader types. An
    exercise without code is open-ended.

    Attributes:
        question: what the reader is asked.
        solution: how to get the answer (shown folded, with the code and its output).
        code: the code that computes and measures the answer (empty: open-ended).
        items: the items it practises (their cards link to it, it links to them).
    """

    question: str
    solution: str
    code: str = ""
    items: tuple[int, ...] = ()

    @property
    def numeric(self) -> bool:
        return bool(self.code.strip())


@dataclass(frozen=True)
class Lecture:
    """A lecture: its seed file, subject, page name, items in order, experiments and
    exercises."""

    seed: str
    subject: str
    slug: str
    origin: str
    summary: str
    items: tuple[Item, ...]
    experiments: tuple[str, ...] = field(default=())
    exercises: tuple[Exercise, ...] = field(default=())


class Bound:
    """An evidence function with its arguments: ``Bound(f, *args, **kw)(ctx)`` is
    ``f(ctx, *args, **kw)``; the card names it ``f(args)``."""

    def __init__(self, fn: Callable[..., Evidence], *args: Any, **kwargs: Any) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        self.shown_by = f"{shown_by(fn)}({', '.join(shown)})"

    def __call__(self, ctx: Context) -> Evidence:
        return self.fn(ctx, *self.args, **self.kwargs)

    def __repr__(self) -> str:
        return self.shown_by


def shown_by(fn: Callable[..., Any]) -> str:
    """``fn``'s reference as the card shows it: its ``shown_by`` attribute, a partial's
    function and arguments, or ``module.name`` (without the ``descentlab.`` prefix)."""
    own = getattr(fn, "shown_by", None)
    if isinstance(own, str):
        return own
    if isinstance(fn, functools.partial):
        args = [repr(a) for a in fn.args] + [f"{k}={v!r}" for k, v in fn.keywords.items()]
        return f"{shown_by(fn.func)}({', '.join(args)})"
    module = getattr(fn, "__module__", "") or ""
    name = getattr(fn, "__qualname__", repr(fn))
    return f"{module.removeprefix('descentlab.')}.{name}"


@functools.cache
def code_hash(name: str) -> str:
    """SHA-256 over every file of ``src/descentlab`` experiment ``name``'s module can import
    (:func:`descentlab.book.imports.source_hash`; computed once per process)."""
    return imports.source_hash(f"{lectures.__name__}.{name}")


def result_key(name: str, quick: bool) -> dict[str, Any]:
    """What produced experiment ``name``'s result: its settings and the code's hash."""
    settings = {"quick": quick, "seed": 0, **lectures.options(name, quick=quick)}
    return {
        "experiment": name,
        "settings": json.loads(json.dumps(settings, default=str)),
        "code": code_hash(name),
    }


def run_and_save(name: str, quick: bool, out: str, key: dict[str, Any] | None = None) -> float:
    """Run experiment ``name`` and save its result with its key in ``out`` (the key written
    last, so an interrupted save is never taken for a finished one); returns the seconds.
    ``key``: :func:`result_key`'s, when the caller has it (a worker process then reads no
    import graph of its own)."""
    t0 = time.perf_counter()
    key = result_key(name, quick) if key is None else key
    result = lectures.run(name, quick=quick)
    result.save(out)
    write_atomic(Path(out) / f"{name}.key.json", json.dumps(key, sort_keys=True))
    return time.perf_counter() - t0


class Context:
    """What the items share while a book is built: the quick flag, the experiments' results
    (run once, cached in ``data_dir`` by :func:`result_key`) and a log."""

    def __init__(self, quick: bool, data_dir: Path | None, log: Callable[[str], None]) -> None:
        self.quick = quick
        self.data_dir = data_dir
        self.log = log
        self._results: dict[str, ExperimentResult] = {}
        self._memo: dict[Any, Any] = {}

    def memo(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()`` once per book (shared by the items that need the same computation)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def saved(self, name: str) -> ExperimentResult | None:
        """The result of ``name`` saved in ``data_dir`` when its key (settings and code) is
        this build's; None when there is none, it cannot be read or its key differs."""
        if self.data_dir is None:
            return None
        path = self.data_dir / f"{name}.json"
        key_path = self.data_dir / f"{name}.key.json"
        if not path.is_file() or not key_path.is_file():
            return None
        try:
            key = json.loads(key_path.read_text(encoding="utf-8"))
            saved = ExperimentResult.load(path)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if key != json.loads(json.dumps(result_key(name, self.quick), sort_keys=True)):
            return None
        return saved if saved.name == name else None

    def experiment(self, name: str) -> ExperimentResult:
        """The result of lecture experiment ``name`` in this book's setting; a saved one is
        reused only when its key matches (else it runs again, and the log says why)."""
        if name in self._results:
            return self._results[name]
        saved = self.saved(name)
        if saved is not None:
            self.log(f"  reusing {self.data_dir}/{name}.json (same settings and code)")
            self._results[name] = saved
            return saved
        if self.data_dir is not None and (self.data_dir / f"{name}.json").is_file():
            self.log(
                f"  {self.data_dir}/{name}.json was made with other settings or other code: "
                f"running {name} again"
            )
        if self.data_dir is None:
            t0 = time.perf_counter()
            result = lectures.run(name, quick=self.quick)
            self.log(f"  ran experiment {name} in {time.perf_counter() - t0:.1f} s")
        else:
            make_dirs(self.data_dir)  # (noted: a command that fails for lack of space removes it)
            seconds = run_and_save(name, self.quick, str(self.data_dir))
            self.log(f"  ran experiment {name} in {seconds:.1f} s")
            result = ExperimentResult.load(self.data_dir / f"{name}.json")
        self._results[name] = result
        return result
