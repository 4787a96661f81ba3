"""How TrialRunner hands vectorized work to its worker processes (``plan_tasks``,
``trial_cost``), and that the schedule changes nothing but where and when trials train."""

from __future__ import annotations

import math
import random

import pytest
from _models import tiny_compare

from descentlab.engine.config import RunConfig
from descentlab.experiments import execution, packing, runner
from descentlab.experiments.compare import CompareSpec, Interrupted, compare
from descentlab.experiments.packing import plan_tasks
from descentlab.experiments.runner import EVAL_COST_STEPS, TrialRunner, trial_cost
from descentlab.experiments.trial import FINISHED, DataSource, Trial

# Items of the table: a name whose first letter gives its kind. t: a tuning trial (urgent,
# cost 1); c: a curve run (cost 1.4, frequent evaluations); r: a refit run (cost 1).
COST = {"t": 1.0, "c": 1.4, "r": 1.0}


def items(kind: str, n: int) -> list[str]:
    return [f"{kind}{i}" for i in range(n)]


def plan(groups, idle, busy=(), min_part=4):  # type: ignore[no-untyped-def]
    return plan_tasks(
        groups,
        idle,
        cost=lambda s: COST[s[0]],
        urgent=lambda s: s[0] == "t",
        busy=busy,
        min_part=min_part,
    )


def sizes(parts):  # type: ignore[no-untyped-def]
    return [(p[0][0], len(p)) for p in parts]


T28, C5, R5 = items("t", 28), items("c", 5), items("r", 5)


@pytest.mark.parametrize(
    ("groups", "idle", "busy", "expected"),
    [
        # The demo's first round: the tuning trials (their outcomes decide what runs next)
        # first, in halves; the final runs wait for a free worker.
        ([C5, R5, T28], 2, (), [("t", 14), ("t", 14)]),
        # One idle worker takes all the tuning work when the other is busy for longer.
        ([C5, items("t", 6)], 1, (20.0,), [("t", 6)]),
        # ... and leaves part of it to a worker that is free soon (the water level of 14
        # over loads (0, 4) is 9) ...
        ([items("t", 14)], 1, (4.0,), [("t", 9)]),
        # ... unless the remainder would be too small to be worth a pass: (0, 10) gives
        # 12, and the part nearest 12 that leaves min_part is 10: all 14 are as near.
        ([items("t", 14)], 1, (10.0,), [("t", 14)]),
        # Final runs: poured over both workers, largest group first (the curves, 1.4 each:
        # 34 of them are the nearest to half of 96); then the refits, whole, and the
        # curves' remainder waits.
        ([items("c", 40), items("r", 40)], 2, (), [("c", 34), ("r", 40)]),
        # A worker alone takes a group that fits its share whole.
        ([R5], 1, (4.0,), [("r", 5)]),
        # Parts, and what they leave, keep min_part trials ...
        ([items("r", 12)], 3, (), [("r", 4), ("r", 4), ("r", 4)]),
        ([items("r", 6)], 1, (0.0,), [("r", 6)]),
        ([items("r", 20)], 2, (), [("r", 10), ("r", 10)]),
        # ... unless there are fewer than min_part trials per free worker: then the free
        # workers share them rather than some staying idle.
        ([items("r", 12)], 4, (), [("r", 3), ("r", 3), ("r", 3), ("r", 3)]),
        ([items("r", 10)], 3, (), [("r", 3), ("r", 3), ("r", 4)]),
        ([R5], 2, (), [("r", 3), ("r", 2)]),
        # Trials that cannot share a pass are groups of one: one each.
        ([["r0"], ["r1"], ["r2"]], 2, (), [("r", 1), ("r", 1)]),
        # Nobody idle, or nothing waiting: nothing starts.
        ([T28], 0, (3.0, 4.0), []),
        ([], 2, (), []),
    ],
)
def test_plan_tasks_table(groups, idle, busy, expected):  # type: ignore[no-untyped-def]
    parts = plan(groups, idle, busy)
    assert sizes(parts) == expected
    # Parts are leading slices of a group, in order, each trial at most once.
    flat = [x for p in parts for x in p]
    assert len(flat) == len(set(flat))
    for p in parts:
        (g,) = [g for g in groups if p[0] in g]
        start = g.index(p[0])
        assert p == g[start : start + len(p)]


def test_plan_tasks_balances_the_finish():
    """Two free workers, final runs of 8 optimizers x 5 seeds: the workers finish within one
    trial of each other."""
    curves, refits = items("c", 40), items("r", 40)
    first, second = plan([curves, refits], 2)
    load_a = sum(COST[s[0]] for s in first)
    load_b = sum(COST[s[0]] for s in second)
    # the second worker, free first, takes the rest while the first is still busy
    (third,) = plan([curves[len(first) :]], 1, busy=(load_a - load_b,))
    load_b += sum(COST[s[0]] for s in third)
    assert sorted(first + second + third) == sorted(curves + refits)
    assert abs(load_a - load_b) <= COST["c"]


def test_water_level_pours_the_amount_over_the_loads():
    """The level L solves sum(max(0, L - load)) = amount (checked by the sum itself, and
    against bisection)."""
    rng = random.Random(0)
    for _ in range(200):
        loads = [rng.choice([0.0, rng.uniform(0, 10)]) for _ in range(rng.randint(1, 6))]
        amount = rng.uniform(0.01, 30)
        level = packing._water_level(amount, loads)
        assert sum(max(0.0, level - x) for x in loads) == pytest.approx(amount)
        lo, hi = 0.0, 100.0
        for _ in range(100):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if sum(max(0.0, mid - x) for x in loads) < amount else (lo, mid)
        assert level == pytest.approx(lo, abs=1e-9)


def test_plan_tasks_rejects_bad_arguments():
    with pytest.raises(ValueError, match="idle must be a non-negative integer, got -1"):
        plan([T28], -1)
    with pytest.raises(ValueError, match="min_part must be a positive integer, got 0"):
        plan([T28], 1, min_part=0)


def test_trial_cost_counts_steps_and_evaluations():
    base = RunConfig(problem="moons", model="mlp", optimizer="sgd", steps=500)
    tune = Trial("tune", "sgd", base.replace(eval_every=100), "holdout")
    curve = Trial("curve", "sgd", base.replace(eval_every=20), "holdout")
    refit = Trial("refit", "sgd", base.replace(eval_every=500), "refit")
    default = Trial("curve", "sgd", base, "holdout")  # eval_every None: the engine's steps // 25
    # the initial evaluation, then every eval_every steps and at the end
    assert trial_cost(tune) == 500 + EVAL_COST_STEPS * (1 + 5)
    assert trial_cost(curve) == 500 + EVAL_COST_STEPS * (1 + 25)
    assert trial_cost(refit) == 500 + EVAL_COST_STEPS * (1 + 1)
    assert trial_cost(default) == trial_cost(curve)
    odd = Trial("tune", "sgd", base.replace(steps=50, eval_every=20), "holdout")
    assert trial_cost(odd) == 50 + EVAL_COST_STEPS * (1 + math.ceil(50 / 20))
    # measured on the MNIST-1D CNN (500 steps): a curve run costs ~1.4-1.5x a refit run
    assert 1.3 < trial_cost(curve) / trial_cost(refit) < 1.6


# ------------------------------------------------------------------------------------------
# end to end

TINY = tiny_compare(steps=30, lrs_per_optimizer=2, seeds=4)


def _table(result):  # type: ignore[no-untyped-def]
    return [
        {k: row[k] for k in ("test_per_seed", "failed_tuning", "steps_to_target")}
        for row in result.rows(timings=False)
    ]


@pytest.mark.process
def test_two_workers_vectorized_equal_one_process(tmp_path, monkeypatch):
    """A comparison trained by two worker processes in scheduled parts -- stopped by Ctrl-C
    with work held back, then run again -- gives the table of the same comparison trained in
    one process, every trial finished once; run again, it reuses every stored trial."""
    spec = CompareSpec(**TINY, optimizers=["sgd", "adam", "adadelta@default"])
    one = compare(spec, tmp_path / "one", workers=1, progress=False)
    seen, sent, waiting = [], [], []
    plan, positions = runner.plan_tasks, runner.group_positions

    def recorded_positions(trials, *rest, **kw):  # type: ignore[no-untyped-def]
        waiting[:] = trials  # what the plan's positions index
        return positions(trials, *rest, **kw)

    def recorded_plan(groups, idle, **kw):  # type: ignore[no-untyped-def]
        parts = plan(groups, idle, **kw)
        sent.extend(waiting[i].phase == "tune" for part in parts for i in part)
        return parts

    def stop_at_the_fifth(event, info):  # type: ignore[no-untyped-def]
        if event == "trial":
            seen.append(info["outcome"].trial)
            if len(seen) == 5:
                raise KeyboardInterrupt

    monkeypatch.setattr(runner, "plan_tasks", recorded_plan)
    monkeypatch.setattr(runner, "group_positions", recorded_positions)
    with pytest.raises(Interrupted):
        compare(spec, tmp_path / "two", workers=2, progress=stop_at_the_fifth)
    monkeypatch.undo()
    # the four tuning trials (their outcomes decide the rest) were sent first, before the final
    # runs of adadelta@default submitted with them (the order they are sent in is the policy's;
    # the order they finish in depends on how busy the machine is)
    assert sent[:4] == [True] * 4 and len(seen) == 5
    two = compare(spec, tmp_path / "two", workers=2, progress=False)
    for a, b in zip(_table(one), _table(two), strict=True):
        assert a["failed_tuning"] == b["failed_tuning"]
        assert a["steps_to_target"] == b["steps_to_target"]
        assert a["test_per_seed"].keys() == b["test_per_seed"].keys()
        for s, v in a["test_per_seed"].items():
            assert v == pytest.approx(b["test_per_seed"][s], abs=1e-6)
    from descentlab.store import Store

    def finished(store):  # type: ignore[no-untyped-def]
        return [r for r in store.list_runs() if r.name != "compare" and r.status in FINISHED]

    with Store(one.store_path) as s1, Store(two.store_path) as s2:
        runs1, runs2 = sorted(r.name for r in finished(s1)), sorted(r.name for r in finished(s2))
        assert runs1 == runs2 and len(runs2) == 2 * 2 + 3 * 2 * 4  # tuning + finals
        # two free workers: the tuning trials went in halves
        tuning = [r for r in finished(s2) if r.name.startswith("tune/")]
        assert [r.provenance["multirun"]["runs"] for r in tuning] == [2] * 4
    # resumed (in one process: the trials are found in the store before any is sent):
    # nothing trains again
    calls = []
    monkeypatch.setattr(execution, "execute_group", lambda *a: calls.append(a))
    again = compare(spec, tmp_path / "two", workers=1, progress=False)
    assert calls == [] and _table(again) == _table(two)


def _trials(n: int, phase: str = "refit") -> list[Trial]:
    base = RunConfig(problem="moons", problem_options={"n_samples": 100}, model="mlp",
                     model_options={"hidden": 4}, optimizer="sgd", batch_size=16, steps=3,
                     evaluate_test=False)  # fmt: skip
    return [
        Trial(phase, "sgd", base.replace(seed=i, hyper={"lr": 0.1}, name=f"{phase}/sgd"), "holdout")
        for i in range(n)
    ]


def test_workers_1_trains_tuning_trials_first_and_merges_later_ones(tmp_path, monkeypatch):
    """In one process too, waiting work is held: a tuning round goes before final runs that
    were submitted earlier, and final runs submitted meanwhile join the waiting ones."""
    calls = []
    real = execution.execute_group

    def spy(store, source, group, *rest, **kw):  # type: ignore[no-untyped-def]
        calls.append((group[0].phase, len(group)))
        return real(store, source, group, *rest, **kw)

    monkeypatch.setattr(execution, "execute_group", spy)
    source = DataSource("moons", {"n_samples": 100})
    with TrialRunner(tmp_path / "lab.sqlite", source, workers=1, vectorize=True) as runner:
        finals = _trials(6, "refit")
        runner.submit_many(finals[:3])
        runner.submit_many(_trials(4, "tune"))
        first = runner.next_outcome()
        runner.submit_many(finals[3:])  # while the others wait
        rest = [runner.next_outcome() for _ in range(runner.pending)]
    assert first.trial.phase == "tune"
    assert calls == [("tune", 4), ("refit", 6)]
    assert sorted(o.trial.config.seed for o in rest if o.trial.phase == "refit") == list(range(6))


# ------------------------------------------------------------------------------------------
# Ray: groups cut for the cluster's task slots (experiments/ray_runner.py)


@pytest.mark.parametrize(
    ("sizes", "slots", "parts"),
    [
        ([10], 1, [10]),  # one slot: nothing to share
        ([10], 2, [5, 5]),
        ([10, 1, 1], 2, [5, 5, 1, 1]),  # singles count towards each slot's share
        ([28], 16, [4, 4, 4, 4, 4, 4, 4]),  # parts of at least 4 however many slots
        ([20, 3], 4, [5, 5, 5, 5, 3]),
        ([7], 8, [7]),  # two parts would be smaller than 4
        ([3, 2], 4, [3, 2]),
        ([40, 40], 16, [5] * 16),
    ],
)
def test_groups_are_cut_for_the_clusters_slots(sizes, slots, parts):
    from descentlab.experiments.ray_runner import spread_groups

    groups = [[(g, i) for i in range(n)] for g, n in enumerate(sizes)]
    got = spread_groups(groups, slots)
    assert [len(p) for p in got] == parts
    assert [t for p in got for t in p] == [t for g in groups for t in g]  # order kept
    assert all(len({g for g, _ in p}) == 1 for p in got)  # a part is from one group


@pytest.mark.parametrize(("slots", "min_part"), [(0, 4), (2, 0), (True, 4), (2.0, 4)])
def test_spread_groups_refuses_bad_sizes(slots, min_part):
    from descentlab.experiments.ray_runner import spread_groups

    with pytest.raises(ValueError, match="must be a positive integer"):
        spread_groups([[1, 2]], slots, min_part=min_part)
