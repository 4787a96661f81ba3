"""The splits a trial trains on are derived once per base dataset and kept while the base
lives. They were keyed by ``id(base)``: once a base was dropped from the loader's cache, a
new base could be allocated at the same address and be handed the dead one's splits (a
refit of 200 moons evaluated on the 36 test examples of 180, CI only, where the allocator
happened to reuse the address)."""

from __future__ import annotations

from descentlab.experiments.trial import DataSource
from descentlab.problems import data as datasets


def _refit_of_a_dropped_base(n: int) -> int:
    """The test size of a refit derived from a base that is then dropped."""
    base = datasets.load("moons", n_samples=n)
    return int(DataSource("moons", data=base).get("refit").n_test)


def test_a_base_at_a_reused_address_gets_its_own_splits(monkeypatch):
    # an address reused is two bases with one id(): made so here, for every object
    from descentlab.experiments import trial as trials

    monkeypatch.setattr(trials, "id", lambda obj: 1, raising=False)
    first = DataSource("moons", data=datasets.load("moons", n_samples=180))
    second = DataSource("moons", data=datasets.load("moons", n_samples=200))
    assert first.get("refit").n_test == 36 and second.get("refit").n_test == 40
    assert first.get("fold:1:3").n_train != second.get("fold:1:3").n_train


def test_derived_splits_die_with_their_base():
    from descentlab.experiments import trial as trials

    before = len(trials._DERIVED)
    assert _refit_of_a_dropped_base(120) == 24
    assert len(trials._DERIVED) == before
