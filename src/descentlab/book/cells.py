"""What the book runs and links beside its checks: the items' code cells, the exercises'
answers, and the playground views.

A code cell is Python on descentlab's public API; the build runs it (a fresh namespace,
torch's generator seeded with 0, its printed output captured) and shows the code with its
output. A cell that raises is shown with the error and becomes a failed check (✘) on its
card. An exercise's code sets ``answer`` (derived on paper), ``measured`` (measured by
descentlab) and ``tol``: the build checks that the two agree.

A playground view is the URL state that ``descentlab playground --port 8765`` reads
(:data:`PLAYGROUND_PORT`); the tests have the playground compute every view the book links
to (the book sits below the playground and does not import it).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import inspect
import io
import itertools
import json
import math
import re
import time
import traceback
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import torch

from descentlab.book.checks import ck, close
from descentlab.book.experiments._common import format_value
from descentlab.book.facts import (
    SOLUTION_SLOT,
    formula_mismatches,
    relation_words,
    render_solution,
    rule_mismatches,
    wrong_answers,
)
from descentlab.book.model import Exercise, Play
from descentlab.book.render.pages import READER_TOL, Check, ExerciseView
from descentlab.problems.landscapes import Landscape

__all__ = [
    "PLAYGROUND_PORT",
    "CellRun",
    "code_objects",
    "exercise_check",
    "exercise_view",
    "playground_url",
    "reads_a_number",
    "run_cell",
    "said_words",
    "stated_words",
]

#: The port the book's playground links name: ``descentlab playground --port 8765``.
PLAYGROUND_PORT = 8765

#: The hyperparameters the playground shows as sliders (``playground.compute.SLIDERS``).
SLIDERS = ("lr", "momentum", "betas", "eps")

#: Longest output a cell shows (characters); the rest is cut and says so.
MAX_OUTPUT = 4000


@dataclass
class CellRun:
    """A code cell as it ran: its code, its printed output, the error it raised (empty
    when none), its namespace afterwards and the seconds it took."""

    code: str
    output: str
    error: str
    seconds: float
    namespace: dict[str, Any]

    @property
    def ok(self) -> bool:
        return not self.error


def run_cell(code: str) -> CellRun:
    """Run ``code`` in a fresh namespace with ``torch.manual_seed(0)``, capturing what it
    prints and the warnings it raises (shown after its output); an exception is caught and
    kept with the cell's line it came from."""
    out = io.StringIO()
    namespace: dict[str, Any] = {"__name__": "__book_cell__"}
    error = ""
    t0 = time.perf_counter()
    torch.manual_seed(0)
    try:
        with contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                exec(compile(code, "<book cell>", "exec"), namespace)  # the book's own cells
            finally:  # a warning is shown with the output, never lost
                for w in caught:
                    out.write(f"warning: {w.category.__name__}: {str(w.message).splitlines()[0]}\n")
    except Exception as exc:  # shown on the card as a failed check
        frames = traceback.extract_tb(exc.__traceback__)
        line = next((f.lineno for f in reversed(frames) if f.filename == "<book cell>"), None)
        where = f" (cell line {line})" if line else ""
        error = f"{type(exc).__name__}: {exc}{where}"
    text = out.getvalue()
    if len(text) > MAX_OUTPUT:
        text = text[:MAX_OUTPUT] + f"\n... ({len(text) - MAX_OUTPUT} more characters cut)"
    return CellRun(code, text, error, time.perf_counter() - t0, namespace)


def cell_check(run: CellRun) -> Check | None:
    """The failed check of a cell that raised (None when it ran)."""
    if run.ok:
        return None
    return ck("the code cell runs", False, run.error, "runs without an error")


#: a number of a worked solution (``20,000`` one number), optionally a percentage
_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?(?:e[-+]?\d+)?)(\s*%)?")
#: what states no number: references to items, the lecture's equations
_NOT_STATED = re.compile(r"\b[Ii]tems?\s+\d+(?:\s*(?:-|–|,|and)\s*\d+)*|\(\d+\.\d+\)")
#: a power of ten written with a superscript exponent (``10⁻⁶``): the number 1e-6
_POWER_OF_TEN = re.compile(r"\b10([⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+)")
_SUPERSCRIPT = str.maketrans("⁻⁺⁰¹²³⁴⁵⁶⁷⁸⁹", "-+0123456789")


def _numbers_of(value: Any) -> list[float]:
    """The finite numbers ``value`` holds: itself, or those of a tuple (a list is a run's
    record, whose many values would vouch for almost any number)."""
    items = value if isinstance(value, tuple) else (value,)
    return [
        float(v)
        for v in items
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ]


def _given(exercise: Exercise) -> set[str]:
    """The numbers ``exercise`` gives: its question's and its code's (the phrases of its code's
    :data:`HINT_WORDS` aside: a number of the hint is not given by quoting it)."""
    code = exercise.code
    for phrase in stated_words(code):
        code = code.replace(phrase, " ")
    return {m.group(1).replace(",", "") for m in _NUMBER.finditer(f"{exercise.question}\n{code}")}


def _stated(exercise: Exercise, text: str) -> list[re.Match[str]]:
    """The numbers of ``text`` (a worked solution or a sentence of it; ``10⁻⁶`` is the number
    1e-6; references to items left out) that ``exercise`` does not give: those its check row
    holds to a value its code computed."""
    given = _given(exercise)
    text = _POWER_OF_TEN.sub(lambda m: f"1e{m.group(1).translate(_SUPERSCRIPT)}", text)
    return [
        m
        for m in _NUMBER.finditer(_NOT_STATED.sub(" ", text))
        if m.group(1).replace(",", "") not in given
    ]


def reads_a_number(exercise: Exercise, sentence: str) -> bool:
    """Whether ``sentence`` of a numeric ``exercise``'s worked solution states a number its
    check row reads (:func:`unchecked_numbers`: one it does not give, held to a value its code
    computed)."""
    return exercise.numeric and bool(_stated(exercise, sentence))


def unchecked_numbers(exercise: Exercise, namespace: dict[str, Any]) -> list[str]:
    """The numbers of ``exercise``'s worked solution (its prose and its formulas in backquotes
    alike; ``10⁻⁶`` is the number 1e-6) that are neither in its question or code nor a value
    its code computed (a number, or one in a tuple; to the digits shown, its sign aside; a
    percentage against 100 times the value): a number typed by hand."""
    values = [x for v in namespace.values() for x in _numbers_of(v)]

    def computed(token: str, percent: bool) -> bool:
        x = float(token)
        mantissa, _, exponent = token.partition("e")  # 1e-6: the digits of 1, times 1e-6
        shown = len(mantissa.split(".")[1]) if "." in mantissa else 0
        half = 0.5 * 10.0 ** (int(exponent or 0) - shown)
        scale = 100.0 if percent else 1.0
        return any(abs(abs(scale * v) - x) <= 1.0001 * half for v in values)

    return [
        m.group(0).strip()
        for m in _stated(exercise, exercise.solution)
        if not computed(m.group(1).replace(",", ""), bool(m.group(2)))
    ]


#: the name an exercise's code gives the words its worked solution teaches, each with what its
#: run computes of it: ``said = {"about three times larger": 2.5 < raw / answer < 3.5}``
HINT_WORDS = "said"


def stated_words(code: str) -> tuple[str, ...]:
    """The phrases ``code`` binds in its :data:`HINT_WORDS` dict (its string keys, read without
    running it): the words of a worked solution its exercise's run bears out."""
    return _dict_keys(code, HINT_WORDS)


def said_words(exercise: Exercise, namespace: dict[str, Any]) -> list[str]:
    """What is wrong with the words ``exercise``'s worked solution teaches (its code's
    :data:`HINT_WORDS` dict: a phrase and the truth its run computes of it): a phrase the solution
    does not hold (reworded, or turned to its opposite) and one the run does not bear out (a
    wrong rate, a direction or a winner the computation contradicts)."""
    said = namespace.get(HINT_WORDS, {})
    if not isinstance(said, dict):
        return [f"{HINT_WORDS} is a {type(said).__name__}, not a dict of phrases"]
    solution = " ".join(exercise.solution.replace("*", "").replace("`", "").split())
    out = []
    for phrase, holds in said.items():
        if str(phrase) not in solution:
            out.append(f'the solution no longer says "{phrase}"')
        elif not bool(holds):
            out.append(f'"{phrase}": the run computes the contrary')
    return out


#: an object of the code a worked solution names in a sentence about the code: a name after
#: ``descentlab's``, ``torch's``, ... (``as descentlab's epoch does`` compares, names no use)
_CODE_OBJECT = re.compile(
    r"(?<!\bas )\b(?:descentlab|torch|numpy|scipy)'s ([A-Za-z_]\w*(?:\.\w+)*)"
)
#: a name written as code is, wherever in the sentence: a capital or a digit after its first
#: lowercase letters (``Conv2d``, ``float64``, ``conv1d``, ``ExponentialLR``)
_CODE_WORD = re.compile(r"\b[A-Za-z][a-z]+[A-Z0-9]\w*\b")


def code_objects(sentence: str) -> list[str]:
    """The objects ``sentence`` says the code uses (``The code runs descentlab's SGD``: SGD;
    ``The code computes it in float64``: float64); none unless the sentence is about the code."""
    if "the code" not in sentence.lower():
        return []
    named = [m[1] for m in _CODE_OBJECT.finditer(sentence)] + _CODE_WORD.findall(sentence)
    return list(dict.fromkeys(named))


def unused_objects(exercise: Exercise) -> list[str]:
    """The objects ``exercise``'s worked solution says its code uses that its code does not
    name (a case aside: ``torch's Hessian`` is ``hessian`` in the code)."""
    code = exercise.code.lower()
    text = " ".join(exercise.solution.replace("`", "").split())
    return [name for name in code_objects(text) if name.lower() not in code]


def exercise_check(exercise: Exercise, run: CellRun) -> Check:
    """The exercise's answer (``answer``) against descentlab's measurement (``measured``)
    within ``tol`` (relative); a cell that raised or set none of them fails, and so does one
    whose page would accept the ``misconception`` it states (the value a reader who believes
    what the exercise corrects would type): the page's tolerance, ``tol`` and at least
    :data:`READER_TOL`, must be tighter than the misconception's distance from the answer,
    and than each of the nearest wrong answers generated from the code's ``answer = …``
    (:func:`~descentlab.book.facts.wrong_answers`) --, one whose worked solution states a
    formula whose value is not what it computes at the question's numbers
    (:func:`~descentlab.book.facts.formula_mismatches`) or types an update rule the book does
    not compute (:func:`~descentlab.book.facts.rule_mismatches`), one whose worked
    solution states a number nothing computed (:func:`unchecked_numbers`), and one whose
    solution no longer says a phrase of its code's :data:`HINT_WORDS` or says one its run does not
    bear out (:func:`said_words`) or names an object of the code the code does not use
    (:func:`unused_objects`)."""
    label = "the answer"
    if not run.ok:
        return ck(label, False, run.error, "runs without an error")
    ns = run.namespace
    missing = [k for k in ("answer", "measured", "tol") if k not in ns]
    if missing:
        return ck(label, False, f"the code sets no {', '.join(missing)}", "answer, measured, tol")
    try:
        answer, measured, tol = float(ns["answer"]), float(ns["measured"]), float(ns["tol"])
    except (TypeError, ValueError) as exc:
        return ck(label, False, f"not numbers: {exc}", "answer, measured, tol numbers")
    if not (math.isfinite(tol) and tol > 0):
        return ck(label, False, f"tol {tol!r}", "a positive finite tolerance")
    wrongs = ns.get("misconception", ())
    for wrong in wrongs if isinstance(wrongs, tuple | list) else (wrongs,):
        gap = abs(float(wrong) - answer) / max(abs(answer), 1e-12)
        if gap <= max(READER_TOL, tol):
            return ck(
                "the page refuses the misconception",
                False,
                f"{float(wrong):g} is {100 * gap:.3g} % from {answer:.6g}, within the page's "
                f"{100 * max(READER_TOL, tol):.3g} %",
                "a tolerance tighter than the misconception's distance",
            )
    near = [
        (what, wrong)
        for what, wrong in wrong_answers(exercise.code, ns)
        if abs(wrong - answer) / max(abs(answer), 1e-12) <= max(READER_TOL, tol)
    ]
    if near:
        shown = "; ".join(f"{wrong:.6g} ({what})" for what, wrong in near[:3])
        return ck(
            "the page refuses the nearest wrong answers (an exponent off by one, operands "
            "swapped, the other formula of a pair, in every line of the solution's arithmetic)",
            False,
            f"{shown} within the page's {100 * max(READER_TOL, tol):.3g} % of {answer:.6g}",
            "a tolerance tighter than each wrong answer's distance",
        )
    typed = unchecked_numbers(exercise, ns)
    if typed:
        return ck(
            "every number of the worked solution is given or computed",
            False,
            f"typed by hand: {', '.join(typed)}",
            "the question's, the code's, or a value the code computed",
        )
    wrong_words = said_words(exercise, ns)
    wrong_words += [
        f"the solution says the code uses {n}; it does not" for n in unused_objects(exercise)
    ]
    wrong_words += typed_mismatches(exercise, ns)
    if wrong_words:
        return ck(
            "every word the worked solution teaches (a rate, a direction, a winner) is what "
            "its exercise's run computes, and every object it says the code uses is the code's",
            False,
            "; ".join(wrong_words),
            f"each phrase of the code's {HINT_WORDS} on the page and true of the run",
        )
    from descentlab.book.texts._facts import RULES, stated_rules  # (the registry imports this)

    false = formula_mismatches(exercise.solution, exercise.question)
    false += relation_words(exercise.solution)
    stated = stated_rules(question=exercise.question)
    false += rule_mismatches(f"{exercise.question}\n{exercise.solution}", stated, RULES)[1]
    if false:
        return ck(
            "every formula of the worked solution that states a value computes it, every "
            "update rule it or its question types is the one it states, and every "
            "comparative word beside two of its numbers is theirs",
            False,
            "; ".join(false),
            "each formula equal to its value at the question's numbers",
        )
    return close("descentlab's measurement agrees with the answer", measured, answer, tol, rel=True)


def exercise_view(ex: Exercise) -> ExerciseView:
    """An exercise with its answer computed (its code run) and checked; an open-ended one
    with its worked solution alone."""
    if not ex.numeric:
        return ExerciseView(ex.question, ex.solution, "", "", None, items=ex.items)
    run = run_cell(ex.code)
    if run.ok and SOLUTION_SLOT.search(ex.solution):
        ex = dataclasses.replace(ex, solution=render_solution(ex.solution, ex.code, run.namespace))
    answer = run.namespace.get("answer")
    number = isinstance(answer, int | float) and not isinstance(answer, bool)
    tol = run.namespace.get("tol")
    return ExerciseView(
        ex.question, ex.solution, ex.code, run.output, exercise_check(ex, run),
        answer=format_value(answer) if number else "",
        value=float(answer) if number else None,
        tol=float(tol) if isinstance(tol, int | float) else None,
        items=ex.items,
    )  # fmt: skip


def _checked(play: Play) -> Landscape:
    """The landscape of ``play``, its optimizers and sliders checked (the playground offers
    a slider for a keyword the optimizer takes: ``lr``, ``momentum``, ``betas``, ``eps``).

    Raises:
        ValueError: a landscape, optimizer or slider that does not exist.
    """
    from descentlab import optim
    from descentlab.problems import landscapes

    if play.land not in landscapes.NAMES:
        raise ValueError(f"play.land must be one of {landscapes.NAMES}, got {play.land!r}")
    if not play.optimizers:
        raise ValueError("play.optimizers must name at least one optimizer")
    for name, sliders in play.optimizers.items():
        if name not in optim.NAMES:
            raise ValueError(f"play.optimizers: unknown optimizer {name!r}")
        takes = inspect.signature(optim.get(name).__init__).parameters
        bad = sorted(k for k in sliders if k not in SLIDERS or k not in takes)
        if bad:
            raise ValueError(f"play.optimizers[{name!r}]: {bad} are not sliders of {name}")
    if play.mode not in ("paths", "oned"):
        raise ValueError(f"play.mode must be 'paths' or 'oned', got {play.mode!r}")
    if (play.kappa is not None) != (play.land == "quadratic"):
        raise ValueError(f"play.kappa is for the quadratic only, got {play.kappa!r} on {play.land}")
    f = landscapes.get(play.land, kappa=play.kappa) if play.kappa else landscapes.get(play.land)
    if (play.mode == "oned") != (f.dim == 1):  # the page opens a landscape in its own view
        raise ValueError(
            f"play.mode {play.mode!r} does not show {play.land} ({f.dim}-D): a 1-D landscape "
            "is mode 'oned', a 2-D one 'paths'"
        )
    return f


def playground_url(play: Play, port: int = PLAYGROUND_PORT) -> str:
    """The address of ``play`` in a playground started with ``--port port``: the state the
    page's ``readUrl`` reads from the fragment, every optimizer not in ``play`` switched off.

    Raises:
        ValueError: a landscape, optimizer or slider that does not exist.
    """
    from descentlab import optim

    _checked(play)
    params: dict[str, str] = {"mode": play.mode, "land": play.land}
    if play.kappa is not None:
        params["kappa"] = f"{play.kappa:g}"
    params["steps"] = str(play.steps)
    if play.starts:
        params["starts"] = ";".join(",".join(f"{v:g}" for v in s) for s in play.starts)
    opts = [
        {"name": n, "on": int(n in play.optimizers), **play.optimizers.get(n, {})}
        for n in optim.NAMES
    ]
    params["opts"] = json.dumps(opts, separators=(",", ":"))
    return f"http://127.0.0.1:{port}/#{urlencode(params)}"


# ------------------------------------------------------------------------------------------
# what a worked solution types, read against its code: the sentences about the code, the
# formulas at the code's numbers, the misconception it names

#: the libraries a sentence about the code may say it uses (``The code asks torch``,
#: ``autograd's derivatives``); one named after ``as`` is a comparison, not a use
_LIBRARY = re.compile(r"(?<!\bas )\b(descentlab|torch|autograd|numpy|scipy|mpmath)\b")
#: a count written in words (``a million draws``)
_COUNT_WORDS = {"a thousand": 1e3, "a million": 1e6}
#: a sentence about the code: it opens with "The code"
_ABOUT_CODE = re.compile(r"^The code\b")


def _code_literals(code: str) -> set[float]:
    """The numbers ``code`` types (its literals, ``1_000_000`` one number)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    return {
        float(n.value) for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, int | float)
        and not isinstance(n.value, bool)
    }  # fmt: skip


def code_claims(sentence: str) -> tuple[list[str], list[float]]:
    """What a sentence about the code (one that opens with "The code") says the code uses:
    the libraries it names and the numbers it states (``20,000 training sets``, ``60-digit
    arithmetic``, ``a million draws``); none for another sentence."""
    s = sentence.replace("`", "")
    if not _ABOUT_CODE.match(s):
        return [], []
    found = _NUMBER.finditer(_NOT_STATED.sub(" ", s))
    numbers = [float(m.group(1).replace(",", "")) for m in found if not m.group(2)]  # (not a %)
    numbers += [v for words, v in _COUNT_WORDS.items() if words in s]
    return [m[1] for m in _LIBRARY.finditer(s)], numbers


def _solution_sentences(exercise: Exercise) -> list[str]:
    """The sentences of ``exercise``'s worked solution as the census splits them
    (:func:`~descentlab.book.teaching.sentences`), each backquoted formula kept between two
    NUL marks so that it can be told from the prose."""
    text = " ".join(exercise.solution.replace("*", "").replace("`", "\x00").split())
    return [s for s in re.split(r"(?<=[.;!?])\s+", text) if s]


#: the name an exercise's code gives the values of the letters its worked solution's formulas
#: use: ``symbols = {"η": lr, "β": beta, "w₁": w1}``
HINT_SYMBOLS = "symbols"


def _formula_text(text: str) -> str:
    """``text``'s formulas in the notation the book's one reader parses
    (:func:`~descentlab.book.typed.notation`: ``β₁`` is ``beta_1``, ``(1 - 1/N)ᴺ`` is
    ``(1 - 1/N)**(N)``)."""
    from descentlab.book.typed import notation

    return notation(text)[0]


def stated_symbols(code: str) -> tuple[str, ...]:
    """The letters ``code`` gives values in its :data:`HINT_SYMBOLS` dict (read without
    running it)."""
    return _dict_keys(code, HINT_SYMBOLS)


@functools.lru_cache(maxsize=1024)
def _dict_keys(code: str, name: str) -> tuple[str, ...]:
    """The string keys of the dict ``code`` assigns to ``name`` (read without running it)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return ()
    return tuple(
        key.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
        and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
        for key in node.value.keys
        if isinstance(key, ast.Constant) and isinstance(key.value, str)
    )  # fmt: skip


def _letters(exercise: Exercise, values: Any = None) -> dict[str, float]:
    """The letters a formula of ``exercise``'s worked solution may use, each with its value
    (a stand-in where only the names are asked, ``values`` None): those its question and
    solution bind (``λ = 10``) and those of its code's :data:`HINT_SYMBOLS` dict."""
    from descentlab.book.facts import _AT, bindings
    from descentlab.book.typed import _python

    bound = {k: float(v) for k, v in bindings(f"{exercise.question}\n{exercise.solution}").items()}
    names = stated_symbols(exercise.code)
    given = values if isinstance(values, dict) else dict(zip(names, itertools.cycle(_AT)))
    for key, v in given.items():
        if isinstance(v, int | float) and not isinstance(v, bool):
            bound[key] = float(v)
    return {(_python(_formula_text(k)) or k).replace(" ", ""): v for k, v in bound.items()}


def _formulas(sentence: str, letters: dict[str, float]) -> list[tuple[str, list[float]]]:
    """The backquoted formulas of ``sentence`` whose every letter ``letters`` binds, each with
    the values of its sides (one side: an expression; two or more: a relation)."""
    from descentlab.book.facts import evaluate

    out = []
    for formula in re.findall(r"\x00([^\x00]+)\x00", sentence):
        sides = [s.strip().rstrip(",.:;") for s in re.split(r"=|≈", _formula_text(formula))]
        values = [evaluate(s, letters) if s else None for s in sides]
        if all(v is not None for v in values):
            out.append((formula, [float(v) for v in values]))
    return out


def _bound(sentence: str, letters: Mapping[str, float]) -> bool:
    """Whether ``sentence`` types a backquoted formula whose every side :func:`_formulas` would
    evaluate at ``letters``: each a form the reader takes, every letter of it bound (found
    without evaluating: the census asks of every sentence)."""
    from descentlab.book.typed import _NAMES, _python

    for formula in re.findall(r"\x00([^\x00]+)\x00", sentence):
        sides = [s.strip().rstrip(",.:;") for s in re.split(r"=|≈", _formula_text(formula))]
        pys = [_python(s) if s else None for s in sides]
        if all(py is not None and set(re.findall(r"[A-Za-z_]\w*", py)) - _NAMES <= set(letters)
               for py in pys):  # fmt: skip
            return True
    return False


def _near(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol * max(abs(a), abs(b), 1e-12)


#: a sentence that names the misconception its exercise refuses (``a reader who ... would
#: answer 1``; ``the gain is not 64``)
_MISREAD = re.compile(
    r"\bmisconception|\bwould (?:answer|give)\b|\breader who\b|\bis not\b[^.;:,]{0,12}\d"
    r"|\bnot simply\b|\bforgets\b"
)


def _stated_values(sentence: str, letters: dict[str, float]) -> list[tuple[float, float]]:
    """The numbers ``sentence`` states and the values of its formulas that ``letters``
    bind (``0.5¹⁰⁰``; ``2/λ`` at λ = 10), each with half a unit of the digits it shows."""
    from descentlab.book.facts import _half_unit

    text = _NOT_STATED.sub(" ", re.sub(r"\x00[^\x00]*\x00", " ", sentence))  # (formulas: below)
    numbers = [
        (float(m.group(1).replace(",", "")), _half_unit(m.group(1))) for m in _NUMBER.finditer(text)
    ]
    return numbers + [(v, 1e-9 * abs(v)) for _, vs in _formulas(sentence, letters) for v in vs[:1]]


def hint_reads(exercise: Exercise, sentence: str) -> bool:
    """Whether the check row of a numeric ``exercise`` reads ``sentence`` of its worked solution
    by :func:`typed_mismatches`: a sentence about the code that names a library or a number
    the code must use, one whose formula the code's numbers evaluate, or one that names the
    misconception by its value."""
    return exercise.numeric and sentence in _read_sentences(exercise)


@functools.lru_cache(maxsize=256)
def _read_sentences(exercise: Exercise) -> frozenset[str]:
    """The sentences of ``exercise``'s worked solution (plain) that :func:`typed_mismatches`
    reads, found without running its code (its letters at stand-in values)."""
    letters, symbols = _letters(exercise), stated_symbols(exercise.code)
    misreads = "misconception =" in exercise.code

    def read(s: str) -> bool:
        libraries, numbers = code_claims(s)
        if libraries or numbers or (symbols and _bound(s, letters)):
            return True
        stated = _NUMBER.search(re.sub(r"\x00[^\x00]*\x00", " ", s)) or _bound(s, letters)
        return misreads and bool(_MISREAD.search(s)) and bool(stated)

    return frozenset(s.replace("\x00", "") for s in _solution_sentences(exercise) if read(s))


def typed_mismatches(exercise: Exercise, namespace: dict[str, Any]) -> list[str]:
    """What ``exercise``'s worked solution types that its run does not bear out: a library a
    sentence about the code names that the code does not use, or a number it states the code
    does not type (:func:`code_claims`); where the code gives its letters' values
    (:data:`HINT_SYMBOLS`), a formula whose every letter is bound whose sides differ
    (``w₁ = 1 - η(g₀ + βg₀)``) or, alone, whose value is none the code computed, to the
    exercise's ``tol``; and a sentence naming the misconception (:data:`_MISREAD`) by a value
    that is none of the code's ``misconception``."""
    code = exercise.code
    literals = _code_literals(code)
    tol = max(float(namespace.get("tol", 1e-9)), 1e-9)
    letters = _letters(exercise, namespace.get(HINT_SYMBOLS, {}))
    computed = [x for v in namespace.values() for x in _numbers_of(v)]
    counts = {float(len(v)) for v in namespace.values() if isinstance(v, list | tuple | dict)}
    misconception = namespace.get("misconception", ())
    wrong = _numbers_of(tuple(misconception) if isinstance(misconception, list) else misconception)
    out = []
    for s in _solution_sentences(exercise):
        libraries, numbers = code_claims(s)
        out += [f"the solution says the code uses {lib}; it does not" for lib in libraries
                if not re.search(rf"\b{lib}\b", code)]  # fmt: skip
        out += [f"the solution says the code uses {x:g}; it neither types nor computes it"
                for x in numbers if x not in literals and x not in counts
                and not any(_near(x, abs(c), 1e-9) for c in computed)]  # fmt: skip
        if HINT_SYMBOLS in namespace:
            for formula, values in _formulas(s, letters):
                if len(values) > 1 and not all(
                    _near(a, b, tol) for a, b in itertools.pairwise(values)
                ):
                    shown = " against ".join(f"{v:.6g}" for v in values)
                    out.append(f"`{formula}`: its sides are {shown} at the code's numbers")
                elif len(values) == 1 and not any(_near(values[0], c, 1e-9) for c in computed):
                    out.append(f"`{formula}` = {values[0]:.6g}: no value the code computed")
        if wrong and _MISREAD.search(s):
            said = _stated_values(s, letters)
            if said and not any(abs(v - w) <= 1.0001 * h + 1e-12 for v, h in said for w in wrong):
                named = ", ".join(f"{v:g}" for v, _ in said)
                out.append(
                    f'"{s.replace(chr(0), "")[:60]}" names {named} as the misconception; '
                    f"the code refuses {', '.join(f'{w:g}' for w in wrong)}"
                )
    return out
