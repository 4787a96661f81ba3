"""What the chapters share: a chapter as data (:class:`Chapter`: its settings, its prose's
sections, its summary), the numbers its prose states -- each computed *and checked by a second
route* (:class:`Numbers`) --, its code written from scratch and checked against the library
(:func:`from_scratch`), its real training run (:func:`training_run`), and the small
computations several chapters use (steps to a fraction of the loss, a slope's steps).

A section is a small function ``(ctx, n) -> Part``: it computes, states each number with
``n(value, twin, what)`` (``twin`` the same quantity by another route: theory against a
run, a closed form against an algorithm) and fills its prose, a template of the module with
``{{name}}`` slots (:func:`fill`). Every stated number becomes a check on the section that
states it; a number of the prose that is neither a setting nor stated so is a failed check of
the last section (the audit, :meth:`Numbers.check`).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from descentlab.book.cells import exercise_view, run_cell
from descentlab.book.chapters._formulas import formula_checks, render
from descentlab.book.chapters._twins import twins_check
from descentlab.book.checks import ck, close
from descentlab.book.claims import claim_checks
from descentlab.book.facts import SeedLog, seeds_check, text_check
from descentlab.book.model import Context, Exercise
from descentlab.book.render.chapter import ChapterPage, Code, Part, Practice, Table
from descentlab.book.render.drawn import curves_need_log
from descentlab.book.render.pages import Check
from descentlab.book.series import WORDS, misheaded
from descentlab.report import figures as FG

__all__ = [
    "WORDS",
    "Chapter",
    "Numbers",
    "Prose",
    "Twin",
    "fill",
    "fmt",
    "from_scratch",
    "library_path",
    "results_table",
    "run_config",
    "scratch",
    "slope_steps",
    "steps_to",
    "training_run",
]

#: a number in prose (a sign is not part of it: ``-0.5`` states ``0.5``)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e[-+]?\d+)?")
#: what is no stated number: code in backquotes, formulas in dollars, references to items and
#: exercises
_EXEMPT = re.compile(
    r"`[^`]*`|\$\$.+?\$\$|\$[^$]+\$|\b(?:[Ii]tems?|[Ee]xercises?)\s+\d+(?:\s*(?:-|–|,|and)\s*\d+)*",
    re.DOTALL,
)
#: a number spelled out in words ("ten times", "a hundredth", "thirty-two", "millionfold"):
#: a quantity typed by hand as surely as its digits (one to three, "half" and "twice" stay
#: prose: "two consequences", "the second half")
_SPELLED = re.compile(
    r"\b(?:(?:four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|"
    r"ninety|hundred|thousand|million|billion)(?:th|ths|fold)?|tenths?|percent)\b",
    re.IGNORECASE,
)
#: a slot of a prose template
_SLOT = re.compile(r"\{\{(\w+)\}\}")


def fmt(value: Any, digits: int = 3) -> str:
    """A number as the prose states it: an integer as it is, else ``digits`` significant."""
    if isinstance(value, bool):
        raise TypeError("a stated number cannot be a bool")
    if isinstance(value, int | np.integer):
        return str(int(value))
    v = float(value)
    if math.isfinite(v) and v == round(v) and abs(v) < 1e6:
        return str(round(v))
    return f"{v:.{digits}g}"


def fill(template: str, **values: str) -> str:
    """``template`` with each ``{{name}}`` replaced by ``values[name]``.

    Raises:
        KeyError: a slot without a value, or a value without a slot (both name it).

    Example:
        >>> fill("a rate of {{rate}} per step", rate="0.9")
        'a rate of 0.9 per step'
    """
    slots = set(_SLOT.findall(template))
    if slots != set(values):
        missing, unused = sorted(slots - set(values)), sorted(set(values) - slots)
        raise KeyError(f"template slots without a value {missing}, values without a slot {unused}")
    return _SLOT.sub(lambda m: values[m.group(1)], template)


class Numbers:
    """The numbers a chapter's prose may state: the settings it chose (given when made) and
    each value it computed, stated with ``n(value, twin, what)``: the value formatted and
    recorded, and a check that ``twin`` -- the same quantity by a second route -- agrees
    within ``tol``. The audit (:meth:`check`) finds any other number in the prose: a number
    typed by hand.

    Example:
        >>> n = Numbers(0.9)
        >>> ten = n(1 / (1 - 0.9), sum(0.9**k for k in range(999)), "1/(1 - β), summed")
        >>> n.unaccounted(f"β = 0.9 gives steps {ten} times larger, not 12.")
        ['12']
        >>> [(c.text, c.ok) for c in n.drain()]
        [('stated 10: 1/(1 - β), summed', True)]
    """

    def __init__(self, *settings: Any) -> None:
        self.stated: set[str] = {fmt(s).lstrip("-") for s in settings}
        self._checks: list[Check] = []

    def __call__(
        self,
        value: Any,
        twin: Any,
        what: str,
        tol: float = 1e-9,
        *,
        digits: int = 3,
        rel: bool = True,
    ) -> str:
        """``value`` as stated, checked against ``twin`` (``tol`` relative, or absolute when
        ``rel`` is false; 0: exactly equal). A run that gave no number (``None``: diverged,
        never converged) is stated as "none" and fails its check."""
        if value is None or twin is None:
            self._checks.append(ck(f"stated none: {what}", False, str(value), str(twin)))
            return "none"
        s = fmt(value, digits)
        self.stated.add(s.lstrip("-"))
        label = f"stated {s}: {what}"
        if tol == 0:
            self._checks.append(ck(label, value == twin, value, f"{fmt(twin, 6)} exactly"))
        else:
            self._checks.append(close(label, value, twin, tol, rel=rel))
        return s

    def pct(self, fraction: float, twin: float, what: str, tol: float = 1e-9) -> str:
        """``fraction`` as a percentage (``"12 %"``), checked against ``twin`` as ``__call__``."""
        return f"{self(100 * fraction, 100 * twin, what, tol, digits=2)} %"

    def drain(self) -> list[Check]:
        """The checks of the numbers stated since the last call."""
        out, self._checks = self._checks, []
        return out

    def unaccounted(self, prose: str) -> list[str]:
        """The numbers in ``prose`` that are neither a setting nor a stated value, and every
        number spelled out in words (which no setting or computation states)."""
        text = _EXEMPT.sub(" ", prose)
        return [m for m in _NUMBER.findall(text) if m not in self.stated] + _SPELLED.findall(text)

    def check(self, page: ChapterPage) -> Check:
        """✔ when every number of ``page``'s prose is a setting or a stated value."""
        bad = self.unaccounted(page.prose)
        total = len(_NUMBER.findall(_EXEMPT.sub(" ", page.prose)))
        return ck(
            "every number the text states is a chosen setting or was computed and checked by "
            "a second route",
            not bad,
            f"{total} numbers; typed by hand: {', '.join(bad) or 'none'}",
            "none typed by hand",
        )


class Twin(NamedTuple):
    """A number the prose states (``value``) and the same quantity by a second route
    (``twin``), which must agree within ``tol`` (relative unless ``rel`` is false; 0: exactly)."""

    value: Any
    twin: Any
    tol: float = 1e-9
    digits: int = 3
    rel: bool = True


class Prose:
    """A section's prose: its text with ``{{slot}}`` slots, and for each slot that states a
    computed number, what its second route is (the check's words).

    Example:
        >>> p = Prose("{{r}} per step at β = 0.9", r="√β, against the roots' modulus")
        >>> n = Numbers(0.9)
        >>> p.fill(n, r=(0.9**0.5, abs(complex(0.45, 0.6975**0.5))))
        '0.949 per step at β = 0.9'
    """

    def __init__(self, text: str, **says: str) -> None:
        self.text, self.says = text, says

    def fill(self, n: Numbers, /, **values: Any) -> str:
        """The text with each slot filled: a ``str`` as it is (a setting), a :class:`Twin` (or
        its fields as a tuple) stated by ``n`` with this slot's words, a list of them joined
        by commas."""

        def one(slot: str, v: Any) -> str:
            t = v if isinstance(v, Twin) else Twin(*v)
            return n(t.value, t.twin, self.says[slot], t.tol, digits=t.digits, rel=t.rel)

        out = {
            k: v
            if isinstance(v, str)
            else ", ".join(one(k, x) for x in v)
            if isinstance(v, list)
            else one(k, v)
            for k, v in values.items()
        }
        return fill(self.text, **out)


Section = Callable[[Context, Numbers], Part]


@dataclass(frozen=True)
class Chapter:
    """A chapter as data: its file name's stem, title, summary, the lecture items it deepens,
    the settings its prose may state, its sections in order and its closing "What to keep".

    Calling it computes the page (torch on one thread: the runs are many steps on tiny
    tensors, where a second thread only waits); each section's stated numbers are checked on
    that section, the prose audited on the last, and so are its second routes: none may be the
    same code re-seeded (:func:`~descentlab.book.chapters._twins.twins_check`)."""

    stem: str
    title: str
    summary: str
    items: tuple[int, ...]
    settings: tuple[Any, ...]
    sections: tuple[Section, ...]
    keep: str
    #: its exercises, shown before "What to keep" and checked as a lecture page's
    exercises: tuple[Exercise, ...] = ()

    def __call__(self, ctx: Context) -> ChapterPage:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        seeds = SeedLog()
        module = sys.modules[self.sections[0].__module__]
        try:
            n = Numbers(*self.settings)
            parts = []
            with seeds.recording(module):
                for section in self.sections:
                    part = section(ctx, n)
                    _add_checks(part, n.drain() + _rendered(part))
                    parts.append(part)
        finally:
            torch.set_num_threads(before)
        page = ChapterPage(self.title, f"{self.stem}.html", self.summary, self.items, parts)
        if self.exercises:
            views = [exercise_view(ex) for ex in self.exercises]
            page.parts.append(Part("practice", "Practice", [Practice(views)]))
        page.parts.append(Part("keep", "What to keep", [render(self.keep), []]))
        words = text_check(page.prose)
        page.parts[-1].blocks[-1] = [
            twins_check(self.sections[0].__module__),
            seeds_check(seeds),
            *([words] if words is not None else []),
            labels_check(page, n, string_literals(inspect.getsource(module))),
            *claim_checks(
                "\n\n".join(
                    [page.prose, *(f"{e.question}\n\n{e.solution}" for e in self.exercises)]
                ),
                home=self.stem,
            ),
            drawn_check(page),
            *formula_checks(self.keep),
            n.check(page),
        ]
        return page


def _rendered(part: Part) -> list[Check]:
    """``part``'s prose and captions with the formulas they cite (``{{f:name}}``) put in,
    and a check for each: the formula as shown, evaluated against its twin."""
    said = []
    for k, block in enumerate(part.blocks):
        if isinstance(block, str):
            said.append(block)
            part.blocks[k] = render(block)
        elif isinstance(getattr(block, "caption", None), str) and "{{f:" in block.caption:
            said.append(block.caption)  # (a Live figure is frozen: a copy with it rendered)
            part.blocks[k] = dataclasses.replace(block, caption=render(block.caption))
    return formula_checks("\n\n".join(said))


def _add_checks(part: Part, checks: list[Check]) -> None:
    """``checks`` added to ``part``'s last list of checks (a new one at its end if none)."""
    if not checks:
        return
    lists = [b for b in part.blocks if isinstance(b, list)]
    if lists:
        lists[-1].extend(checks)
    else:
        part.blocks.append(checks)


def steps_to(losses: Sequence[float], fraction: float) -> int | None:
    """The first step whose loss is at most ``fraction`` of the first (None: never)."""
    arr = np.asarray(losses, dtype=float)
    hit = np.nonzero(arr <= fraction * arr[0])[0]
    return int(hit[0]) if len(hit) else None


def slope_steps(make: Any, g: float, steps: int) -> list[float]:
    """The sizes of the steps an optimizer (``make(params)``) takes on the constant slope
    ``f(w) = g w`` from 0, in float64."""
    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = make([w])
    out = []
    for _ in range(steps):
        before = float(w.detach())
        w.grad = torch.full_like(w, g)
        opt.step()
        out.append(abs(float(w.detach()) - before))
    return out


def iterates(make: Any, grad: Callable[[float, int], float], w0: float, steps: int) -> list[float]:
    """The iterates ``w_1 … w_T`` an optimizer (``make(params)``) takes from ``w0`` in one
    dimension, the gradient at step t ``grad(w, t)``, in float64: what a rule a page shows,
    evaluated step by step at the same gradients, must give (:func:`rule_check`)."""
    w = torch.nn.Parameter(torch.full((1,), float(w0), dtype=torch.float64))
    opt = make([w])
    out = []
    for t in range(1, steps + 1):
        w.grad = torch.full_like(w, grad(float(w.detach()), t))
        opt.step()
        out.append(float(w.detach()))
    return out


def rule_iterates(
    update: Callable[[dict[str, float], float, int], Mapping[str, float]],
    grad: Callable[[float, int], float],
    w0: float,
    steps: int,
) -> list[float]:
    """The iterates of the rule a page shows, from ``w0`` at the gradients ``grad(w, t)``:
    ``update(state, g, t)`` gives the state's new values (``w`` and what the rule keeps, a
    buffer ``b``), computed by the page's Formulas; the twin of :func:`iterates`. A rule
    that overflows gives NaN from there on, which :func:`rule_check` refuses."""
    state: dict[str, float] = {"w": float(w0)}
    out = []
    for t in range(1, steps + 1):
        try:
            state.update(update(state, grad(state["w"], t), t))
        except OverflowError:  # (a wrong rule that diverges: no number, a ✘ in the check)
            return out + [math.nan] * (steps - len(out))
        out.append(state["w"])
    return out


#: a gradient that changes every step and with w, for the rules' step-by-step checks: the
#: quadratic w²/2 plus a slope that turns
def wavy(w: float, t: int) -> float:
    return w + math.sin(t)


def rule_check(
    what: str,
    rule: Sequence[float],
    measured: Sequence[float],
    tol: float = 1e-9,
    against: str = "descentlab's steps",
) -> Check:
    """The check that the rule a page shows (its :class:`~descentlab.book.facts.Formula`),
    evaluated at each step, gives ``measured``, the steps or iterates of descentlab's
    optimizer (or of the run named by ``against``): the worst relative difference, a ✘
    beyond ``tol``."""
    gaps = [abs(a - b) / max(abs(b), 1e-300) for a, b in zip(rule, measured, strict=True)]
    # (max() passes over a NaN after the first item: a rule that stopped giving numbers)
    worst = max(gaps) if all(math.isfinite(g) for g in gaps) else math.inf
    return close(f"{what}: the formula shown, evaluated at each of {len(rule)} steps, against "
                 f"{against} (worst)", worst, 0.0, tol)  # fmt: skip


def scratch(
    *,
    text: str | Callable[[Numbers], str],
    code: str,
    what: str,
    tol: float = 1e-12,
    title: str = "From scratch, in plain torch",
) -> Section:
    """The section that implements the chapter from scratch: ``text`` (or ``text(n)``), then
    :func:`from_scratch` of ``code``, checked as ``what`` to ``tol``."""

    def section(ctx: Context, n: Numbers) -> Part:
        words = text(n) if callable(text) else text.strip()
        return Part("scratch", title, [words, *from_scratch(code, what, tol)])

    return section


def from_scratch(code: str, what: str, tol: float = 1e-12) -> list[Any]:
    """A chapter's implementation from scratch in plain torch, run by the build: the code
    with its output, and the check that what it computed (``mine``) is what descentlab
    computed (``library``), both set by the code, to ``tol`` relative to the largest value."""
    run = run_cell(code)
    block = Code(
        "From scratch, in plain torch (the build runs it; type it yourself):",
        code,
        run.output,
        run.error,
    )
    if not run.ok:
        return [block, [ck(what, False, run.error, "runs")]]
    mine = np.asarray(run.namespace.get("mine", np.nan), dtype=np.float64)
    lib = np.asarray(run.namespace.get("library", np.nan), dtype=np.float64)
    scale = max(1.0, float(np.abs(lib).max())) if lib.size else 1.0
    err = float(np.abs(mine - lib).max()) / scale if mine.shape == lib.shape else math.inf
    shown = f"max rel. |diff| {err:.1e} over {lib.size} values"
    return [block, [ck(what, err <= tol, shown, f"≤ {tol:.0e}")]]


def library_path(curvatures: str) -> str:
    """The from-scratch code's library side, ``descentlab_path(make)``: 100 steps of the
    optimizer ``make([w])`` on the quadratic ``0.5 Σ curvatures·w²`` from ``w0``, its path."""
    return f"""\
def descentlab_path(make):
    w = torch.nn.Parameter(w0.clone())
    opt, path = make([w]), [w0]
    for _ in range(100):
        opt.zero_grad()
        (0.5 * ({curvatures} * w * w).sum()).backward()
        opt.step()
        path.append(w.detach().clone())
    return torch.stack(path)"""


#: The from-scratch code's least-squares problem: ``A`` (40 examples of 5 features) and
#: ``y`` drawn from a seeded generator, and ``grad`` of half the mean squared residual.
LEAST_SQUARES = """\
g = torch.Generator().manual_seed(0)
A = torch.randn(40, 5, dtype=torch.float64, generator=g)
y = torch.randn(40, dtype=torch.float64, generator=g)
grad = lambda w: A.T @ (A @ w - y) / 40                 # of (1/2) mean (A w - y)^2"""


def least_squares_path(steps: str) -> str:
    """The from-scratch code's library side on :data:`LEAST_SQUARES`,
    ``descentlab_path(make, steps)``: ``steps`` steps of the optimizer ``make([w])`` from
    zero, its path; ``steps`` is the parameter as the code writes it (``"steps=100"``)."""
    return f"""\
def descentlab_path(make, {steps}):
    w = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
    opt, path = make([w]), []
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * ((A @ w - y) ** 2).mean()).backward()
        opt.step()
        path.append(w.detach().clone())
    return torch.stack(path)"""


def run_config(
    problem: str, steps: int, optimizer: str, lr: float | None = None, **more: Any
) -> dict[str, Any]:
    """A training run's fields for ``descentlab.engine.train``: the problem, the steps, the
    optimizer and its learning rate (none: each run names its own), and ``more`` fields.

    Example:
        >>> run_config("mnist1d", 100, "adam", 0.01, batch_size=64)["hyper"]
        {'lr': 0.01}
    """
    hyper = {} if lr is None else {"hyper": {"lr": lr}}
    return {"problem": problem, "steps": steps, "optimizer": optimizer, **hyper, **more}


def training_run(
    ctx: Context,
    key: str,
    runs: Mapping[str, Any],
    data: str,
    metric: str = "train/loss",
) -> tuple[Any, dict[str, Any]]:
    """Real mini-batch training runs (``descentlab.engine.train``, each a ``RunConfig`` or its
    fields, memoized per book under ``key``), and a figure of ``metric``'s curves titled by
    ``data`` (what is trained) and the series' words (:data:`~descentlab.book.series.WORDS`):
    returns the figure and the runs' results by label."""
    from descentlab.engine import train

    results = ctx.memo(
        ("chapter", "training", key),
        lambda: {label: train(cfg, progress=False) for label, cfg in runs.items()},
    )
    fig = FG.new_figure(8.5, 3.6)
    ax = fig.subplots()
    drawn = []
    for label, r in results.items():
        s = r.metrics[metric]
        ax.plot(s.steps, s.values, lw=1.4, marker=".", ms=3, label=label)
        drawn.append((s.steps, s.values))
    if curves_need_log(drawn):  # (a geometric fall lies flat on zero on a linear axis)
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_title(f"{data}: {WORDS[metric]}" if data else "", fontsize=10)
    ax.legend(fontsize=8)
    return fig, results


def final(result: Any, metric: str) -> float:
    """A training run's last recorded ``metric``."""
    return float(result.metrics[metric].values[-1])


def results_table(
    results: Mapping[str, Any],
    caption: str,
    *columns: str | tuple[str, Callable[[Any], Any]],
    first: str = "run",
) -> Table:
    """The table of :func:`training_run`'s results: a row a run, its label (under ``first``)
    and then each column, a series' last value (:func:`final`) headed by the series' words
    (:data:`~descentlab.book.series.WORDS`), or ``(heading, read(result))``. The table keeps
    its runs: :func:`labels_check` reads each series' column against them."""
    cols = [c if isinstance(c, tuple) else (WORDS[c], lambda r, m=c: final(r, m)) for c in columns]
    rows = [[label, *(read(r) for _, read in cols)] for label, r in results.items()]
    runs = {label: [r] for label, r in results.items()}
    return Table([first, *(head for head, _ in cols)], rows, caption, runs)


def _shown(token: str, values: np.ndarray) -> bool:
    """``token`` (a number as a label shows it) is one of ``values`` to the digits it shows."""
    if not values.size:
        return False
    mantissa, _, exponent = token.partition("e")
    shown = len(mantissa.split(".")[1]) if "." in mantissa else 0
    half = 0.5 * 10.0 ** (int(exponent or 0) - shown)
    x = float(token)
    if half >= 0.5:  # an integer label: one of the values to three significant digits
        half = max(half, 5e-4 * abs(x))
    return bool(np.any(np.abs(np.abs(values) - x) <= 1.0001 * half))


def _figure_labels(fig: Any) -> tuple[list[str], np.ndarray, list[tuple[str, float, str]]]:
    """A matplotlib figure's words (titles, axis labels, legend labels), every value its
    curves hold, and each labelled curve's last value with its axes' title and y label."""
    words, data, ends = [], [], []
    for ax in getattr(fig, "axes", []):
        words += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        for line in ax.get_lines():
            y = np.asarray(line.get_ydata(), dtype=float).ravel()
            data += [np.asarray(line.get_xdata(), dtype=float).ravel(), y]
            label = line.get_label()
            if label and not label.startswith("_"):
                words.append(label)
                finite = y[np.isfinite(y)]
                if finite.size:
                    ends.append((label, float(finite[-1]), f"{ax.get_title()} {ax.get_ylabel()}"))
    if getattr(fig, "_suptitle", None) is not None:
        words.append(fig._suptitle.get_text())
    return words, np.concatenate(data) if data else np.zeros(0), ends


def _cells(rows: Sequence[Sequence[Any]]) -> np.ndarray:
    nums = [
        float(m)
        for row in rows
        for cell in row
        for m in (
            [cell]
            if isinstance(cell, int | float) and not isinstance(cell, bool)
            else _NUMBER.findall(str(cell))
        )
    ]
    return np.asarray([x for x in nums if math.isfinite(x)], dtype=float)


def string_literals(source: str) -> list[str]:
    """The string literals of ``source`` (f-strings' text parts included, their ``{...}``
    fields not; docstrings not): what a label can state without its data."""
    tree = ast.parse(source)
    docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    ]


def labels_check(page: ChapterPage, n: Numbers, literals: list[str] | None = None) -> Check:
    """✔ when every number a caption, column heading, figure title, axis or legend label
    types by hand -- with its neighbours, in one of the chapter's string ``literals`` (every
    number when None); a number a label interpolates comes from the data -- is a setting, a
    stated value or one of the values of what it labels, and no curve ends at the value
    another curve's row of the section's table holds where its own row holds another (two
    curves' labels swapped)."""
    typed, swapped, read = [], [], 0

    def by_hand(text: str, m: re.Match[str]) -> bool:
        window = text[max(0, m.start() - 6) : m.end() + 3]
        return literals is None or any(window in lit for lit in literals)

    def audit(text: str, values: np.ndarray) -> None:
        nonlocal read
        bare = _EXEMPT.sub(" ", text)
        for m in _NUMBER.finditer(bare):
            read += 1
            tok = m.group()
            if by_hand(bare, m) and tok not in n.stated and not _shown(tok, values):
                typed.append(f"{tok} in “{text[:60]}”")

    for part in page.parts:
        tables = [b for b in part.blocks if isinstance(b, Table)]
        for t in tables:
            values = _cells(t.rows)
            for text in [t.caption, *map(str, t.columns)]:
                audit(text, values)
            if t.runs is not None:
                faults, cells = misheaded(t.columns, t.rows, t.runs)
                swapped += faults
                read += cells
        for fig in (b for b in part.blocks if hasattr(b, "axes") and hasattr(b, "savefig")):
            words, values, ends = _figure_labels(fig)
            for text in words:
                audit(text, values)
            for t in tables:
                rows = {str(r[0]): r for r in t.rows if r}
                for label, end, axis in ends:
                    names = (label, label.split(",")[0])
                    own = next((r for k, r in rows.items() if k in names), None)
                    if own is None:
                        continue
                    swapped += _heading_swapped(t, own, label, end, axis)
                    mine = [j for j, c in enumerate(own) if _near(c, end)]
                    other = [k for k, r in rows.items() if r is not own
                             and any(_near(c, end) and not _near(own[j], end)
                                     for j, c in enumerate(r))]  # fmt: skip
                    if not mine and other:
                        swapped.append(f"the curve “{label}” ends at {end:.4g}, row {other[0]}'s")
    bad = typed + swapped
    return ck(
        "every number of a caption, heading or figure label is a setting, a stated value or "
        "the data it labels, each labelled curve ends at its own row's value and each column "
        "headed by a series holds that series' last values",
        not bad,
        "; ".join(bad[:4])
        or f"{read} numbers in labels and cells under a series, none typed by hand or misheaded",
        "labels from the data",
    )


def drawn_check(page: ChapterPage) -> Check:
    """✔ when every figure of the page drew what its data needs, read back from the drawn
    figure (:func:`~descentlab.book.render.drawn.figure_mismatches`): log axes where the
    curves span decades, axis units those of the section's table columns holding the
    curves, legends in their curves' colours and in one order across panels."""
    from descentlab.book.render.drawn import DECADES, figure_mismatches

    bad, read = [], 0
    for part in page.parts:
        tables = [b for b in part.blocks if isinstance(b, Table)]
        for fig in (b for b in part.blocks if hasattr(b, "axes") and hasattr(b, "savefig")):
            read += len(fig.axes)
            bad += [f"{part.heading}: {m}" for m in figure_mismatches(fig, tables)]
    return ck(
        "every figure drew what its data needs: a log y axis where a labelled curve falls "
        f"geometrically or its labelled curves span more than {DECADES:g} decade, each axis "
        "label's unit that of the table column "
        "holding its curve, each legend entry in its curve's colour and one legend order "
        "across panels (read back from the drawn figures)",
        not bad,
        "; ".join(bad[:4]) or f"{read} axes read, none contradicted",
        "scales, units and legends from the data",
    )


def _heading_swapped(t: Table, own: Sequence[Any], label: str, end: float, axis: str) -> list[str]:
    """The column headed as the curve's axes are titled (its measure, "validation loss") must
    hold the curve's last value in the curve's row, where another column of that row does."""
    cols = [j for j, h in enumerate(t.columns) if j and str(h).lower() in axis.lower()]
    if len(cols) != 1 or _near(own[cols[0]], end):
        return []
    other = [str(t.columns[j]) for j, c in enumerate(own) if j != cols[0] and _near(c, end)]
    return [f"the curve “{label}” of “{t.columns[cols[0]]}” ends at {end:.4g}, the column "
            f"“{other[0]}”'s"] if other else []  # fmt: skip


def _near(cell: Any, value: float) -> bool:
    if not isinstance(cell, int | float) or isinstance(cell, bool):
        return False
    return math.isclose(float(cell), value, rel_tol=1e-9, abs_tol=1e-15)
