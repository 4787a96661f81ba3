"""The Ray backend: comparisons on a simulated two-node cluster equal the local backend's.

The cluster is Ray's own ``cluster_utils.Cluster`` on this machine: a head and a worker node
of one CPU each, every address loopback, usage statistics off, no dashboard.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import ipaddress
import os

import pytest

from descentlab.engine.timing import MEASURED_SUMMARY
from descentlab.experiments import ray_runner
from descentlab.experiments.compare import CompareSpec, Interrupted, compare

if importlib.util.find_spec("ray") is None:  # (Ray imported by the tests, not at collection:
    # ray_runner._import_ray sets the loopback and no-usage-stats switches before it)
    pytest.skip(ray_runner._INSTALL_HINT, allow_module_level=True)

pytestmark = [pytest.mark.slow, pytest.mark.process]  # Ray's processes

# The protocol's default budget (grid of learning rates, seeds) on a small, fast problem.
# torch's Adam takes no per-run hyperparameters: its final runs (at its default lr, no
# tuning) train one at a time (a finished trial's checkpoint is removed on either backend).
SPEC = CompareSpec(
    problem="moons",
    model="mlp",
    optimizers=["sgd", "adam", "tadam=torch.optim.Adam@default"],
    steps=40,
    tune_steps=None,
    landscapes=(),
)


@pytest.fixture(scope="module")
def cluster():
    ray = ray_runner._import_ray()  # sets the loopback and no-usage-stats switches first
    from ray.cluster_utils import Cluster

    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    worker = c.add_node(num_cpus=1)
    ray.init(address=c.address, log_to_driver=False, configure_logging=False)
    try:
        yield c, worker
    finally:
        ray.shutdown()
        c.shutdown()


@pytest.fixture(scope="module")
def local_result(tmp_path_factory):
    return compare(SPEC, tmp_path_factory.mktemp("local"), workers=1)


@pytest.fixture(scope="module")
def local_table(local_result):
    return local_result.table(timings=False)


def _non_loopback_listeners() -> list[str]:
    """Listening sockets of this process and its descendants that are not loopback."""
    import psutil

    me = psutil.Process()
    pids = {me.pid, *(p.pid for p in me.children(recursive=True))}
    listening = [
        (c.laddr, c.pid)
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]
    assert listening, "found no listening socket of the Ray processes"
    bad = []
    for laddr, pid in listening:
        addr = ipaddress.ip_address(laddr.ip)
        if not (getattr(addr, "ipv4_mapped", None) or addr).is_loopback:
            bad.append(f"{' '.join(psutil.Process(pid).cmdline())[:120]} on {laddr}")
    return bad


def test_cluster_listens_on_loopback_only(cluster):
    assert _non_loopback_listeners() == []
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"


_LOCAL_INSTANCE = """
import json, sys
sys.path.insert(0, {tests!r})
from descentlab.experiments.ray_runner import RayTrialRunner
from descentlab.experiments.trial import DataSource
from test_ray_backend import _non_loopback_listeners
runner = RayTrialRunner({store!r}, DataSource("moons"), num_cpus=1)
runner.start()
try:
    print(json.dumps(_non_loopback_listeners()))
finally:
    runner.close()
"""


def test_local_instance_listens_on_loopback_only(tmp_path):
    import json
    import subprocess
    import sys

    code = _LOCAL_INSTANCE.format(tests=os.path.dirname(__file__), store=str(tmp_path / "s.sqlite"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def _recorder(outcomes):
    def progress(event, info):
        if event == "trial":
            outcomes.append(info["outcome"])

    return progress


def test_ray_table_equals_local(cluster, local_result, local_table, tmp_path):
    outcomes = []
    result = compare(SPEC, tmp_path, backend="ray", progress=_recorder(outcomes))
    assert result.table(timings=False) == local_table
    assert result.record.provenance["sessions"][-1]["backend"] == "ray"
    # The driver wrote every trial into its own store as the local backend records it:
    # the same metrics and the same artifacts (a finished trial keeps no checkpoint).
    from descentlab.store import Store

    with Store(result.store_path) as store, Store(local_result.store_path) as local:
        checkpoints = 0
        for out in outcomes:
            twin = local.find_run_by_config(out.trial.record_config(), status=None)
            assert store.metrics(out.run_id).keys() == local.metrics(twin.id).keys()
            arts = store.artifacts(out.run_id)
            assert arts.keys() == local.artifacts(twin.id).keys()
            for art in arts.values():
                assert os.path.dirname(art["path"]) == str(result.run_dir / "checkpoints")
                assert os.path.isfile(art["path"])
                checkpoints += 1
        assert checkpoints == 0
    folder = result.run_dir / "checkpoints"
    assert not folder.exists() or not list(folder.glob("run-*"))


def test_a_rounds_vectorized_group_is_shared_by_the_clusters_slots(cluster, tmp_path, monkeypatch):
    # two CPU slots: SGD's and Adam's 10 coarse tuning trials (one vectorized group) go out as
    # two Ray tasks of 5, not one task on one CPU; the table is the local one
    spec = dataclasses.replace(SPEC, optimizers=["sgd", "adam"])
    sent = []
    real = ray_runner.RayTrialRunner._dispatch_group

    def spy(self, indices, group, sizes):
        sent.append([t.phase for t in group])
        return real(self, indices, group, sizes)

    monkeypatch.setattr(ray_runner.RayTrialRunner, "_dispatch_group", spy)
    result = compare(spec, tmp_path / "ray", backend="ray")
    assert [len(p) for p in sent[:2]] == [5, 5] and sent[0] == ["tune"] * 5
    assert max(len(p) for p in sent) <= 5
    local = compare(spec, tmp_path / "local", workers=1)
    assert result.table(timings=False) == local.table(timings=False)


def test_node_lost_mid_sweep_gives_the_same_table(cluster, local_table, tmp_path):
    c, worker = cluster
    state = {"removed": False, "node": worker}

    def progress(event, info):
        if event == "trial" and info["done"] == 4 and not state["removed"]:
            c.remove_node(state["node"], allow_graceful=False)
            state["removed"] = True

    try:
        result = compare(SPEC, tmp_path, backend="ray", progress=progress)
    finally:
        if state["removed"]:
            cluster_node = c.add_node(num_cpus=1)
            c.wait_for_nodes()
            state["node"] = cluster_node
    assert state["removed"]
    assert result.table(timings=False) == local_table


def test_interrupted_driver_resumes(cluster, local_table, tmp_path):
    def stop_after_five(event, info):
        if event == "trial" and info["done"] == 5:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        compare(SPEC, tmp_path, backend="ray", progress=stop_after_five)
    outcomes = []
    result = compare(SPEC, tmp_path, backend="ray", progress=_recorder(outcomes))
    assert result.table(timings=False) == local_table
    # The five trials finished before the interruption were found, not run again.
    assert sum(o.reused for o in outcomes) >= 5
    assert sum(not o.reused for o in outcomes) > 0


def test_a_trial_stopped_mid_run_continues_from_its_kept_checkpoint(cluster, tmp_path):
    # Trials of 40 steps checkpoint every 10 (so each trains alone); each checkpoint goes to
    # the driver's machine as its task writes it. The command is stopped once one has (the
    # task is cancelled with force: its worker process is killed, its scratch store gone);
    # run again, that trial continues from the kept checkpoint, and the table is the one an
    # uninterrupted run gives.
    import _thread
    import json
    import threading
    import time

    from descentlab.store import Store

    def kept_step() -> int:
        steps = [0]
        for side in tmp_path.glob("ray/*/checkpoints/trial-*.pt.sha256"):
            with contextlib.suppress(OSError, ValueError):
                steps.append(int(json.loads(side.read_text())["step"] or 0))
        return max(steps)

    done = threading.Event()

    def stop_when_kept() -> None:
        while not done.is_set():
            if kept_step() > 0:
                _thread.interrupt_main()
                return
            time.sleep(0.01)

    # 200 steps: each trial keeps a checkpoint for most of its run, a window the watcher
    # sees on a loaded machine too
    spec = dataclasses.replace(SPEC, optimizers=["adam"], lrs_per_optimizer=2, refine=False,
                               seeds=2, steps=200)  # fmt: skip
    watcher = threading.Thread(target=stop_when_kept, daemon=True)
    watcher.start()
    try:
        with pytest.raises(Interrupted):
            compare(spec, tmp_path / "ray", backend="ray", checkpoint_every=10)
    finally:
        done.set()
        try:  # an interrupt the watcher sent late lands here, not in the test runner
            watcher.join()
            time.sleep(0.1)
        except KeyboardInterrupt:
            pass
    assert kept_step() > 0
    result = compare(spec, tmp_path / "ray", backend="ray", checkpoint_every=10)
    local = compare(spec, tmp_path / "local", workers=1, checkpoint_every=10)
    assert result.table(timings=False) == local.table(timings=False)
    with Store(result.store_path) as store:
        resumed = [r.provenance["resumes"] for r in store.list_runs() if "resumes" in r.provenance]
    assert any(r[0]["from_step"] > 0 for r in resumed)
    assert not list((result.run_dir / "checkpoints").glob("trial-*")), "kept files were left"


def test_backend_names_are_checked(tmp_path):
    with pytest.raises(ValueError, match="backend must be one of local, ray, got 'dask'"):
        compare(SPEC, tmp_path, backend="dask")
    with pytest.raises(ValueError, match="address is only used by the ray backend"):
        compare(SPEC, tmp_path, address="127.0.0.1:6379")
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_cli_without_ray_says_how_to_install(monkeypatch, capsys, tmp_path):
    from descentlab.cli import main
    from descentlab.experiments import runners

    monkeypatch.setattr(runners, "ray_available", lambda: False)
    argv = ["compare", "--problem", "moons", "--backend", "ray", "--runs-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["descentlab: error: --backend ray needs Ray: pip install 'descentlab[ray]'"]
    with contextlib.suppress(FileNotFoundError):
        assert not any(tmp_path.iterdir())


def test_experiment_trainings_on_ray_equal_local(cluster, tmp_path):
    from descentlab.book.experiments import regularization
    from descentlab.store import Store

    def rows(backend):
        with Store(tmp_path / backend / "lab.sqlite") as store:
            result = regularization.run(
                quick=True, methods=["dropout"], steps=40, eval_every=10, seeds=2,
                store=store, backend=backend,
            )  # fmt: skip
            runs = store.list_runs()
            assert [r.status for r in runs] == ["completed"] * 4
            assert all(os.path.isfile(store.artifacts(r.id)["checkpoint"]["path"]) for r in runs)
        return [{k: v for k, v in row.items() if k != "seconds"} for row in result.rows]

    assert rows("ray") == rows("local")


def test_cli_experiment_checks_the_backend(capsys, tmp_path):
    from descentlab.cli import main

    argv = ["experiment", "momentum_forms", "--quick", "--backend", "ray", "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "descentlab: error: --backend ray: experiment 'momentum_forms' does not train through "
        "the engine; it runs here"
    ]
    assert main(["experiment", "schedules", "--address", "x:1", "--out", str(tmp_path)]) == 2
    assert "--address needs --backend ray" in capsys.readouterr().err


def test_short_trials_share_tasks_and_train_alone_as_locally(cluster, tmp_path, monkeypatch):
    # one trial at a time (--one-at-a-time): a round's short tuning trials go out packed into
    # a few tasks, at least one per CPU slot, not one task each (each task's fixed cost was
    # 7.7 % of a 200-step trial); every trial still trains alone: the local table exactly
    spec = dataclasses.replace(SPEC, optimizers=["sgd", "adam"])
    sent = []
    real = ray_runner.RayTrialRunner._dispatch_group

    def spy(self, indices, group, sizes):
        sent.append((len(group), list(sizes)))
        return real(self, indices, group, sizes)

    monkeypatch.setattr(ray_runner.RayTrialRunner, "_dispatch_group", spy)
    result = compare(spec, tmp_path / "ray", backend="ray", vectorize=False)
    trials = sum(n for n, _ in sent)
    assert len(sent) < trials / 2  # packed: fewer than half as many tasks as trials
    assert sent[0][0] + sent[1][0] == 10 and sent[0][1] == [1] * sent[0][0]  # two of 5
    assert all(sizes == [1] * n for n, sizes in sent)  # each trial trains alone
    local = compare(spec, tmp_path / "local", workers=1, vectorize=False)
    assert result.table(timings=False) == local.table(timings=False)


def test_a_task_of_several_parts_returns_each_runs_in_order(tmp_path):
    # the task body without Ray: parts train one after another, each as a worker would
    from descentlab.engine.config import RunConfig
    from descentlab.experiments.execution import execute_group
    from descentlab.experiments.trial import DataSource, Trial
    from descentlab.store import Store

    def trial(lr, seed):
        cfg = RunConfig(problem="moons", problem_options={"n_samples": 200}, model="mlp",
                        optimizer="sgd", hyper={"lr": lr}, steps=10, seed=seed,
                        evaluate_test=False, name="tune/sgd/holdout")  # fmt: skip
        return Trial("tune", "sgd", cfg, "holdout")

    source = DataSource("moons", {"n_samples": 200})
    trials = [trial(0.1, 0), trial(0.2, 0), trial(0.3, 1)]
    exports = ray_runner._run_remote(source, trials, 1, [1, 2])
    assert [e["run"]["config"]["hyper"]["lr"] for e in exports] == [0.1, 0.2, 0.3]
    with Store(tmp_path / "alone.sqlite") as store:
        parts = (trials[:1], trials[1:])
        local = [o for part in parts for o in execute_group(store, source, part)]

    def numbers(summary):
        return {k: v for k, v in summary.items() if k not in MEASURED_SUMMARY}

    # each part trained as a local worker trains it (alone, or the two together), bit for bit
    assert [numbers(e["run"]["summary"]) for e in exports] == [numbers(o.summary) for o in local]
    with pytest.raises(ValueError, match=r"sizes \[2, 2\] do not cut 3 trials into parts"):
        ray_runner._run_remote(source, trials, 1, [2, 2])


@pytest.mark.parametrize("bad", [-1, float("inf"), float("nan"), "1000", True])
def test_a_bad_min_task_cost_is_refused(tmp_path, bad):
    from descentlab.experiments.trial import DataSource

    with pytest.raises(ValueError, match=r"^min_task_cost must be a finite number >= 0, got"):
        ray_runner.RayTrialRunner(tmp_path / "s.sqlite", DataSource("moons"), min_task_cost=bad)


def test_packed_tasks_cover_every_part_in_order_with_near_equal_costs():
    import random

    rng = random.Random(0)
    for _ in range(200):
        parts = [[i] * rng.randint(1, 3) for i in range(rng.randint(1, 40))]
        cost = {i: rng.choice([50.0, 250.0, 1200.0]) for i in range(40)}
        slots = rng.randint(1, 6)
        tasks = ray_runner.pack_tasks(parts, slots, cost=cost.__getitem__, min_cost=1000)
        assert [p for t in tasks for p in t] == parts  # every part once, in order
        assert len(tasks) >= min(slots, len(parts))  # every slot gets work
        costs = [sum(cost[x] for p in t for x in p) for t in tasks]
        total = sum(costs)
        biggest = max(sum(cost[x] for x in p) for p in parts)
        n = len(tasks)
        # none far above an equal share: by more than one part's cost at most
        assert max(costs) <= total / n + biggest + 1e-9
        if total >= slots * 1000:  # enough work: tasks of about min_cost or more
            assert min(costs) >= min(1000, total / n) - biggest - 1e-9
    one = ray_runner.pack_tasks([[1], [2], [3]], 2, cost=lambda t: 1.0, min_cost=0)
    assert one == [[[1]], [[2]], [[3]]]


def test_ray_runs_the_same_sequential_design_as_the_local_pool(cluster, tmp_path):
    # the session that adds test seeds where a comparison is open is the backend's caller:
    # the same looks, the same seeds and the same verdict on Ray as in local processes
    spec = dataclasses.replace(SPEC, optimizers=["sgd", "adam"], seeds=2, max_seeds=8)
    local = compare(spec, tmp_path / "local", workers=1, progress=False)
    remote = compare(spec, tmp_path / "ray", backend="ray", progress=False)
    assert remote.table(timings=False) == local.table(timings=False)
    assert remote.seed_lines() == local.seed_lines()
    assert remote.recommendation(timings=False) == local.recommendation(timings=False)
    assert remote.more_seeds() == {} and local.complete and remote.complete
