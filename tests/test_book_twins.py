"""A second route is another computation: no number of the book is checked against the same
code run again with another seed (``descentlab.book.chapters._twins``). A re-seeded twin
agrees by the width of its tolerance, not by an independent computation, and a bug in the
shared code moves both together; the audit is a check on each chapter's page."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import descentlab.book.chapters as chapters_pkg
from descentlab.book.chapters import CHAPTERS, batch, descent_modes, methodology
from descentlab.book.chapters._twins import reseeded, twins_check


def _chapter_modules() -> list[ModuleType]:
    return [
        importlib.import_module(f"{chapters_pkg.__name__}.{m.name}")
        for m in pkgutil.iter_modules(chapters_pkg.__path__)
    ]


@pytest.mark.parametrize("module", _chapter_modules(), ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_no_chapter_checks_a_number_against_its_own_code_reseeded(module):
    assert reseeded(inspect.getsource(module), vars(module)) == []


def test_every_chapter_page_carries_the_audit_of_its_second_routes():
    for chapter in CHAPTERS:
        module = importlib.import_module(chapter.sections[0].__module__)
        assert twins_check(module).ok, chapter.stem


TWIN = """
def draws(n, seed=3):
    return n + seed

def section(ctx, n):
    a, b = [draws(4, seed=s) for s in (1, 2)]
    return n(a, b, "the same draws re-seeded")
"""


@pytest.mark.parametrize(
    ("body", "found"),
    [
        (TWIN, ["draws with seeds 1, 2 (in section)"]),
        # the default seed against an explicit one; a positional seed; inside a lambda
        (TWIN.replace("[draws(4, seed=s) for s in (1, 2)]", "draws(4), draws(4, 5)"),
         ["draws with seeds 3, 5 (in section)"]),
        (TWIN.replace("[draws(4, seed=s) for s in (1, 2)]",
                      "draws(4), (lambda: draws(4, seed=7))()"),
         ["draws with seeds 3, 7 (in section)"]),
        # in two functions of the module
        (TWIN + "\ndef other():\n    return draws(4, seed=9)\n",
         ["draws with seeds 1, 2, 9 (in section, other)"]),
        # one seed, and another computation beside it: no twin; another size with another
        # seed is another computation
        (TWIN.replace("[draws(4, seed=s) for s in (1, 2)]", "draws(4), draws(40, seed=1)"), []),
        (TWIN.replace("[draws(4, seed=s) for s in (1, 2)]", "draws(4), 4 + 3.0"), []),
        # the same seed twice is one computation, not a re-seed
        (TWIN.replace("[draws(4, seed=s) for s in (1, 2)]", "draws(4), draws(5, seed=3)"), []),
    ],
)  # fmt: skip
def test_the_audit_finds_a_reseeded_twin(body, found):
    namespace: dict = {"__name__": "descentlab.example"}
    exec(compile(body, "twin", "exec"), namespace)
    assert reseeded(body, namespace) == found


@pytest.mark.parametrize(
    ("module", "old", "new", "found"),
    [
        # the twins these chapters had: the same runs, trees or draws with another seed
        (batch, "p = _escape_by_kernel(lr, b, start)", "p = _wells(lr, b, start, seed=5)[2]",
         "_wells with seeds 3, 5 (in _escaped, _temperature)"),
        (descent_modes, 'lambda: _reshuffled_numpy(lr, steps))',
         'lambda: _runs(lr, 1, steps, replace=False, seed=2))',
         "_runs with seeds 1, 2 (in _sampling)"),
        (methodology, "lambda: _optimism(2))", "lambda: _optimism(2)) or _optimism(3)",
         "_optimism with seeds 2, 3 (in _cv)"),
        (methodology, "single=(s1, n1, 1e-9),", "single=(s1, _bagging(7)[0], 1e-9),",
         "_bagging with seeds 6, 7 (in _resampling)"),
    ],
)  # fmt: skip
def test_a_reseeded_twin_put_back_turns_the_chapters_audit_red(module, old, new, found):
    source = inspect.getsource(module)
    assert source.count(old) == 1
    assert reseeded(source, vars(module)) == []
    assert reseeded(source.replace(old, new), vars(module)) == [found]


@pytest.mark.parametrize(("lr", "b", "start"), [(0.04, 16, -2.0), (0.04, 1, 2.0)])
def test_the_escape_probability_by_the_grid_moves_less_than_its_tolerance_when_refined(
    lr, b, start
):
    """The batch chapter's second route: halving the cells moves the probability by under
    4e-4, inside the 1e-3 its twin allows the grid."""
    coarse = batch._escape_by_kernel(lr, b, start)
    fine = batch._escape_by_kernel(lr, b, start, per=20)
    assert abs(coarse - fine) < 4e-4
    assert 0 < coarse < 1


def test_replicates_a_chapter_declares_are_not_twins_and_are_said_on_its_page():
    """Runs over seeds that are replicates (a rate tuned on one seed, curves over others) are
    named with their reason in ``REPLICATES`` and said by the check; any other function called
    with two seeds is still a twin."""
    namespace: dict = {"__name__": "descentlab.example"}
    exec(TWIN, namespace)
    namespace["REPLICATES"] = {"draws": "bands over seeds"}
    assert reseeded(TWIN, namespace) == []
    namespace["REPLICATES"] = {"other": "bands over seeds"}
    assert reseeded(TWIN, namespace) == ["draws with seeds 1, 2 (in section)"]
    from descentlab.book.chapters import compare

    said = twins_check(compare)
    assert (
        said.ok
        and "replicates, not second routes: _cfg (each rate tuned on seed 0" in said.measured
    )
