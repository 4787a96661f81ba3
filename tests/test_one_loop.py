"""Single runs and vectorized groups share one training loop, and no
class is put together from partial classes (mixins) that exist only to shorten it."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest
from _source import parsed

from descentlab.engine import loop as loop_module
from descentlab.engine.config import RunConfig
from descentlab.engine.multirun import train_many
from descentlab.engine.run import train
from descentlab.problems import data

SRC = Path(__file__).resolve().parents[1] / "src" / "descentlab"


@pytest.fixture(scope="module")
def moons():
    return data.load("moons", n_samples=120)


def test_single_runs_and_vectorized_groups_go_through_one_loop(monkeypatch, moons):
    """The same Loop.run trains both, each given its own way of stepping; every batch comes
    from the one Batches."""
    seen: list[tuple[str, int]] = []
    batches = []
    real_run, real_next = loop_module.Loop.run, loop_module.Batches.next

    def run(self, **kwargs):
        seen.append((type(self.stepper).__name__, self.k))
        return real_run(self, **kwargs)

    def next_batch(self):
        batches.append(self.k)
        return real_next(self)

    monkeypatch.setattr(loop_module.Loop, "run", run)
    monkeypatch.setattr(loop_module.Batches, "next", next_batch)
    cfg = RunConfig(problem="moons", model="mlp", optimizer="sgd", hyper={"lr": 0.1},
                    batch_size=16, steps=5, evaluate_test=False)  # fmt: skip
    train(cfg, data=moons, progress=False)
    train_many(cfg, overrides=[{"seed": 0}, {"seed": 1}], mode="vmap", data=moons, progress=False)
    assert seen == [("OneModel", 1), ("Stacked", 2)]
    assert batches == [1] * 5 + [2] * 5


def _classes() -> list[tuple[str, ast.ClassDef]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        tree = parsed(path)
        out += [
            (str(path.relative_to(SRC)), n) for n in ast.walk(tree) if isinstance(n, ast.ClassDef)
        ]
    return out


def test_no_class_is_assembled_from_partial_classes():
    """No class has two or more of descentlab's own classes as bases (a class split into
    mixins), and no class extends a private class that itself only extends another private
    one and has no other subclass (a class cut into a chain of parts)."""
    classes = _classes()
    ours = {node.name: node for _, node in classes}
    names = lambda node: [b.id for b in node.bases if isinstance(b, ast.Name)]  # noqa: E731
    mixed = [f"{f}: {n.name}{tuple(names(n))}" for f, n in classes
             if len([b for b in names(n) if b in ours]) > 1]  # fmt: skip
    subclasses = Counter(b for _, n in classes for b in names(n))
    private = lambda b: b.startswith("_") and b in ours  # noqa: E731
    chained = [
        f"{f}: {n.name}({b})"
        for f, n in classes
        for b in names(n)
        if private(b) and subclasses[b] == 1 and any(private(p) for p in names(ours[b]))
    ]
    assert not mixed, mixed
    assert not chained, chained
