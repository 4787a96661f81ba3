"""The suite's collection loads its modules with the garbage collector paused and freezes them
(../conftest.py): each test runs with the collector on, the loaded modules out of its walks."""

import gc


def test_each_test_runs_with_the_collector_on_and_the_collected_modules_frozen():
    assert gc.isenabled(), "the collector was left paused after collection"
    # torch, numpy, scipy and the library loaded at collection: far more than 100,000 objects
    assert gc.get_freeze_count() > 100_000, gc.get_freeze_count()
