"""Things the library says in one place: a monitor's three norms travel as one value, a
Robbins-Monro report is computed from what it read, a sealed test split is written by its own
class, every subcommand is described by its module's docstring, every chapter's from-scratch
section is made by one function. Each test fails where a second copy of the thing stood."""

import ast
import importlib
import inspect
import pathlib

import numpy as np
import pytest
import torch

from descentlab import optim
from descentlab.book import convergence as C
from descentlab.book.chapters import CHAPTERS
from descentlab.cli import build_parser
from descentlab.cli._options import plain_text
from descentlab.problems import data
from descentlab.schedules import constant, inverse_time_decay

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "descentlab"


def test_a_monitor_records_the_three_norms_given_as_one_value():
    m = optim.Monitor()
    norms = (torch.tensor(3.0), torch.tensor(0.5), torch.tensor(2.0))
    m.add(7, 1, norms, {"lr": 0.1, "nesterov": True, "betas": (0.9, 0.99)})
    (rec,) = m.records
    assert rec == {
        "step": 7, "group": 1, "grad_norm": 3.0, "update_norm": 0.5, "param_norm": 2.0,
        "update_ratio": 0.25, "lr": 0.1, "betas[0]": 0.9, "betas[1]": 0.99,
    }  # fmt: skip
    # the stacked runs' monitor overrides the same method with the same parameters
    from descentlab.engine.vectorized import _RunMonitors

    assert inspect.signature(_RunMonitors.add) == inspect.signature(optim.Monitor.add)


@pytest.mark.parametrize(
    "schedule, horizon, tolerance",
    [(constant(0.1), 1000, 0.1), (inverse_time_decay(1.0, base=0.5), 4096, 0.05)],
)
def test_a_robbins_monro_report_is_computed_from_the_values_it_read(schedule, horizon, tolerance):
    found = C.robbins_monro(schedule, horizon, tolerance)
    again = C.RobbinsMonroReport(found.eta, tolerance)
    eta = np.array([schedule.value(t, None) for t in range(horizon)])
    assert np.array_equal(found.eta, eta) and again.horizon == horizon
    assert np.array_equal(again.sum_eta_sq, np.cumsum(eta * eta))
    for name in ("eta_exponent", "eta_sq_exponent", "meets", "explanation"):
        assert getattr(again, name) == getattr(found, name), name
    assert again.eta_sq_exponent == C.growth_exponent(np.cumsum(eta * eta))


def _keywords(path: pathlib.Path) -> set[str]:
    return {
        k.arg
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        for k in node.keywords
        if k.arg
    }


def test_the_sealed_test_tensors_are_named_only_by_their_own_class():
    writers = sorted(
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if {"_x_test", "_y_test"} & _keywords(p)
    )
    assert writers == ["problems/data.py"], writers  # (its Splits.of and a resized copy)
    x, y = torch.zeros(4, 2), torch.arange(4)
    s = data.Splits.of(
        name="moons", task="classification", train=(x, y), val=(x[:1], y[:1]),
        test=(x[:2], y[:2]), n_classes=4, input_shape=(2,), n_outputs=4,
    )  # fmt: skip
    assert (s.n_train, s.n_val, s.n_test) == (4, 1, 2)
    with pytest.raises(data.TestSetSealedError):
        s.x_test  # noqa: B018
    with pytest.raises(ValueError):  # a part that is not an (inputs, targets) pair
        data.Splits.of(train=(x,), val=(x, y), test=(x, y))


def test_every_subcommand_is_described_by_its_module_docstring():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert len(sub.choices) >= 13
    for name, parser in sub.choices.items():
        module = importlib.import_module(parser.get_default("func").__module__)
        doc = plain_text(inspect.getdoc(module) or "", vars(module))
        assert parser.description == doc and f"descentlab {name}" in doc, name


def test_every_chapter_makes_its_from_scratch_section_with_one_function():
    made = {
        c.stem: [s.__qualname__ for s in c.sections if "scratch" in s.__qualname__]
        for c in CHAPTERS
    }
    assert made and all(q == ["scratch.<locals>.section"] for q in made.values()), made
