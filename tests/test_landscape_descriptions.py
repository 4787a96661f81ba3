"""A landscape's description, shown beside the playground's map and in ``descentlab landscape
--list``, is read against what the landscape computes (descentlab.problems.described): its
convexity on a grid, the places and values of its critical points found by Newton's iteration
on ∇f = 0, how many global minima it has and the Hessian's condition number at its minimum. A
description that says otherwise is a ✘ where it is shown."""

from __future__ import annotations

import dataclasses

import pytest

from descentlab.playground import compute
from descentlab.problems import described, landscapes


@pytest.mark.parametrize("name", landscapes.NAMES)
def test_each_landscapes_description_agrees_with_what_it_computes(name):
    assert described.description_mismatches(compute.opened(name)) == []


def test_the_shape_is_computed_from_the_function_not_from_its_listed_points():
    """The saddle terrain x² - y² + y⁴/4: its minima at (0, ±√2), value -1, and the saddle at
    the origin are found by Newton's iteration, not read from ``points``."""
    f = dataclasses.replace(landscapes.get("saddle"), points=())
    s = described._compute(f)
    assert not s.convex
    assert sorted(round(p[0][1], 6) for p in s.minima) == [-1.414214, 1.414214]
    assert [round(p[1], 9) for p in s.minima] == [-1.0, -1.0]
    assert [tuple(round(c, 9) + 0.0 for c in p[0]) for p in s.saddles] == [(0.0, 0.0)]
    assert s.condition == pytest.approx(2.0)  # (Hessian diag(2, 4) at the minima)


#: (landscape, the description's text, a mistake a writer could make): each is a mismatch
MUTANTS = [
    ("bowl", "Elliptic bowl", "Non-convex bowl"),  # convexity
    ("xsinx", "Non-convex x sin x", "Convex x sin x"),
    ("double_well", "Tilted double well", "Convex tilted double well"),
    ("beale", "minimum 0 at (3, 0.5)", "minimum 0 at (3, 1.5)"),  # the minimum's place
    ("rosenbrock", "the minimum at (1, 1)", "the minimum at (1, -1)"),
    ("double_well", "local minimum near 1.33", "local minimum near 1.53"),
    ("saddle", "saddle point at the origin", "saddle point at (0, 1)"),
    ("cubic", "local maximum at -sqrt(2)/3", "local maximum at sqrt(2)/3"),
    ("beale", "minimum 0 at", "minimum 1 at"),  # the minimum's value
    ("himmelblau", "four global minima", "three global minima"),  # how many
    ("ravine", "Condition number 100", "Condition number 10"),  # conditioning
    ("bowl", "Elliptic bowl", "Round bowl"),
    ("bowl", "Elliptic bowl", "Ill-conditioned bowl"),
    ("bowl", "curvature ratio 3", "curvature ratio 9"),
]


@pytest.mark.parametrize(("name", "right", "wrong"), MUTANTS)
def test_a_description_that_says_otherwise_is_a_mismatch(name, right, wrong):
    f = compute.opened(name)
    assert right in f.description
    mutated = dataclasses.replace(f, description=f.description.replace(right, wrong))
    assert described.description_mismatches(mutated)


def test_the_playground_and_the_listing_show_a_wrong_description_with_its_fail(monkeypatch):
    f = landscapes.get("bowl")
    wrong = dataclasses.replace(f, description=f.description.replace("Elliptic", "Round"))
    monkeypatch.setitem(landscapes._REGISTRY, "bowl", lambda: wrong)
    [shown] = [land for land in compute.meta()["landscapes"] if land["name"] == "bowl"]
    assert shown["description_mismatches"] == [
        '"round": the Hessian\'s condition number at the minimum is 3'
    ]
    assert "✘ computed otherwise" in landscapes.listing(described.description_mismatches)
    app = compute.__file__.rsplit("/", 1)[0] + "/static/app.js"
    with open(app, encoding="utf-8") as js:
        assert "land.description_mismatches" in js.read()


@pytest.mark.parametrize(
    ("typed", "values", "tol"),
    [
        ("1.33", [1.33], 0.005),
        ("-0.27", [-0.27], 0.005),
        ("sqrt(2)/3", [2**0.5 / 3], 1e-6),
        ("±sqrt 2", [2**0.5, -(2**0.5)], 1e-6),
        ("1/2", [0.5], 1e-6),
        ("100", [100.0], 0.5),
    ],
)
def test_a_typed_number_is_read_with_the_tolerance_its_digits_allow(typed, values, tol):
    got, t = described._number(typed)
    assert got == pytest.approx(values) and t == pytest.approx(tol, abs=1e-8)
