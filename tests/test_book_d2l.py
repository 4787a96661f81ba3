"""What d2l's optimization chapters add to the lecture book: a chapter each on convexity, on
Newton's method with preconditioning and line search, and on every optimizer run by one loop
on one real dataset with the wall-time cost of mini-batches (``descentlab.book.chapters``:
``convexity``, ``newton``, ``compare``). tests/test_book_teaching.py computes each chapter and
holds every check; here, what each must contain, and that the wall-time checks test shapes
and ratios, never the machine's speed."""

from __future__ import annotations

import numpy as np
import pytest

from descentlab.book.cells import exercise_check, run_cell
from descentlab.book.chapters import CHAPTERS, compare
from descentlab.book.chapters._common import Numbers
from descentlab.book.model import Context

D2L = {"deep-convexity", "deep-newton", "deep-compare"}


def _chapter(stem: str):
    return next(c for c in CHAPTERS if c.stem == stem)


def test_each_missing_piece_of_d2l_has_a_chapter_with_four_exercises_that_refuse_a_misconception():
    assert {c.stem for c in CHAPTERS} >= D2L
    for stem in D2L:
        chapter = _chapter(stem)
        numeric = [e for e in chapter.exercises if e.numeric]
        assert len(numeric) >= 4, stem
        assert all("misconception =" in e.code and e.items for e in numeric), stem
        for ex in chapter.exercises:  # one question, one box; the items the chapter teaches
            assert ex.question.count("?") == 1 and set(ex.items) <= set(chapter.items), ex.question
        assert len(chapter.items) >= 5, stem


@pytest.mark.parametrize("stem", sorted(D2L))
def test_each_exercise_holds_and_a_tolerance_that_admits_its_misconception_fails(stem):
    """Each exercise's check is ✔; the same exercise with a tolerance wide enough to admit its
    misconception is ✘."""
    for ex in [e for e in _chapter(stem).exercises if e.numeric]:
        assert exercise_check(ex, run_cell(ex.code)).ok, ex.question
        loose = type(ex)(ex.question, ex.solution, ex.code + "\ntol = 1e9", ex.items)
        check = exercise_check(loose, run_cell(loose.code))
        assert not check.ok and "misconception" in check.text, ex.question


def test_the_comparison_runs_every_optimizer_of_the_lectures_and_their_modern_kin():
    lectures = {"sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw"}
    assert lectures | {"lion", "muon"} <= set(compare.GRIDS)
    assert all(len(grid) >= 3 for _, grid in compare.GRIDS.values())
    assert compare.TUNE_SEED not in compare.SEEDS  # the rate is not scored on the run that chose it


@pytest.mark.parametrize(
    ("finals", "ahead", "behind"),
    [
        ({"a": np.array([0.1, 0.2]), "b": np.array([0.3, 0.4])}, True, False),
        # the means are ordered but the seeds overlap: level, neither is ahead
        ({"a": np.array([0.1, 0.35]), "b": np.array([0.3, 0.4])}, False, False),
    ],
)
def test_an_optimizer_is_ahead_only_when_every_seed_is(finals, ahead, behind):
    assert compare._ahead(finals, "a", "b") is ahead
    assert compare._ahead(finals, "b", "a") is behind


def _walltime(scale: float, rising: float = 0.0) -> dict[str, object]:
    """Timings of the shape a CPU gives (a fixed cost per step shared by the batch, a cost per
    example), scaled by ``scale`` (a slower or faster machine), three jittered repeats;
    ``rising``: a cost per example that grows with the batch (a shape the checks refuse)."""
    sizes, n = [1, 4, 16, 64, 256, 1149], 1149
    rng = np.random.default_rng(0)

    def per(b: int, over: float) -> list[float]:
        base = scale * (over * 40e-6 / b + 1.5e-6 + rising * b)
        return [base * (1 + 0.05 * rng.standard_normal()) for _ in range(3)]

    return {
        "sizes": sizes,
        "cpu": {b: per(b, 1.0) for b in sizes},
        "wall": {b: per(b, 2.0) for b in sizes},
        "load": 9.0,
        "n": n,
    }


def _wall_checks(data: dict[str, object]) -> list[bool]:
    ctx = Context(True, None, lambda _m: None)
    ctx._memo[("chapter", "compare", "walltime")] = data
    n = Numbers(*compare.CHAPTER.settings)
    part = compare._wall(ctx, n)
    return [c.ok for c in part.checks] + [c.ok for c in n.drain()]


@pytest.mark.parametrize("scale", [0.2, 1.0, 5.0])
def test_the_wall_time_checks_hold_on_a_slower_or_faster_machine(scale):
    """The same shape on a machine five times slower or faster: every check the same (✔)."""
    assert all(_wall_checks(_walltime(scale)))


def test_the_wall_time_checks_fail_when_an_example_costs_more_in_a_larger_batch():
    assert not all(_wall_checks(_walltime(1.0, rising=5e-8)))


def test_the_wall_time_section_names_the_machine():
    assert "family" in compare._machine() and "cores" in compare._machine()
