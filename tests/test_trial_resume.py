"""A trial resumes mid-run: every trial of a comparison that trains alone
checkpoints, an interrupted comparison continues each unfinished trial from its last
checkpoint with the same iterates, data order and random streams, a checkpoint that fails its
verification is set aside (never used) and the trial starts over with one warning, and a
finished trial's checkpoint is removed."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from descentlab.engine.config import RunConfig
from descentlab.engine.loop import CheckpointClock
from descentlab.engine.monitoring import MonitoredOptimizer
from descentlab.engine.run import train
from descentlab.engine.scratch import in_scratch_store
from descentlab.engine.timing import MEASURED_SUMMARY
from descentlab.experiments import resume
from descentlab.experiments.runner import TrialRunner
from descentlab.experiments.trial import DataSource, Trial, trial_key
from descentlab.store import Store

ROOT = Path(__file__).resolve().parents[1]
SOURCE = DataSource("moons", {"n_samples": 200})


def _trial(name: str = "tune:adam:0", **changes: object) -> Trial:
    cfg = RunConfig(
        problem="moons",
        problem_options={"n_samples": 200},
        model="mlp",
        model_options={"hidden": 8},
        optimizer="adam",
        hyper={"lr": 1e-2},
        batch_size=16,
        steps=40,
        eval_every=10,
        evaluate_test=False,
        name=name,
    ).replace(**changes)
    return Trial("tune", "adam", cfg, "holdout")


def _outcome(path: Path, trial: Trial, every: object = 7) -> object:
    with TrialRunner(path, SOURCE, workers=1, checkpoint_every=every) as runner:
        runner.submit(trial)
        return runner.next_outcome()


def _interrupted(path: Path, trial: Trial, at: int) -> Path:
    """The trial stopped at step ``at`` as a stopped session leaves it: trained by a worker
    against its scratch store, its record so far and its last checkpoint kept beside the
    comparison's store (``checkpoints/trial-<key>.*``); returns the checkpoint's path."""
    folder = path.parent / "checkpoints"
    keeper = resume.CheckpointKeeper(str(folder))

    def work(store: Store) -> None:
        ship = functools.partial(resume.shipper(store, keeper.save), trial)
        train(trial.config, store, data=SOURCE.get("holdout"), until_step=at,
              progress=False, checkpoint_every=7, after_checkpoint=ship)  # fmt: skip

    in_scratch_store(work)
    return resume.partial_paths(folder, trial_key(trial))[1]


def _computed(summary: dict) -> dict:
    """A summary less what was measured (times and their clock): what must be equal."""
    return {k: v for k, v in summary.items() if k not in MEASURED_SUMMARY}


def _metrics(path: Path, run_id: int) -> list:
    with Store(path) as store:
        return store.metrics(run_id, split="val", name="loss")["val/loss"].values.tolist()


def test_an_interrupted_trial_continues_from_its_checkpoint(tmp_path: Path) -> None:
    trial = _trial(optimizer=MonitoredOptimizer("adam", every=5))
    whole = _outcome(tmp_path / "ref" / "lab.sqlite", trial)
    twin = _trial(optimizer=MonitoredOptimizer("adam", every=5))  # its own monitor
    _interrupted(tmp_path / "lab" / "lab.sqlite", twin, at=17)
    again = _outcome(tmp_path / "lab" / "lab.sqlite", trial)
    run_id = again.run_id
    assert not again.reused
    assert _computed(again.summary) == _computed(whole.summary)
    with Store(tmp_path / "lab" / "lab.sqlite") as store:
        record = store.get_run(run_id)
        assert record.provenance["resumes"][0]["from_step"] == 17  # where it was stopped
        # the monitor's records before the checkpoint were kept in it
        ratios = store.metrics(run_id, split="monitor", name="update_ratio")["monitor/update_ratio"]
        assert ratios.steps.tolist() == list(range(5, 41, 5))
        # the finished trial's checkpoint is gone, and the store forgot it
        assert "checkpoint" not in store.artifacts(run_id)
    assert not list((tmp_path / "lab" / "checkpoints").glob("*.pt*"))  # what was kept: gone
    with Store(tmp_path / "ref" / "lab.sqlite") as ref:
        ref_ratios = ref.metrics(whole.run_id, split="monitor", name="update_ratio")
        ref_ratios = ref_ratios["monitor/update_ratio"]
    assert ratios.values.tolist() == ref_ratios.values.tolist()
    assert _metrics(tmp_path / "lab" / "lab.sqlite", run_id) == _metrics(
        tmp_path / "ref" / "lab.sqlite", 1
    )


def test_a_corrupted_checkpoint_is_set_aside_and_the_trial_starts_over(tmp_path: Path) -> None:
    trial = _trial()
    whole = _outcome(tmp_path / "ref" / "lab.sqlite", trial)
    ckpt = _interrupted(tmp_path / "lab" / "lab.sqlite", trial, at=17)
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="is corrupted.*set aside.*starts over from step 0"):
        again = _outcome(tmp_path / "lab" / "lab.sqlite", trial)
    assert _computed(again.summary) == _computed(whole.summary)
    assert ckpt.with_name(ckpt.name + ".corrupt").read_bytes() == bytes(data)
    with Store(tmp_path / "lab" / "lab.sqlite") as store:
        assert "resumes" not in store.get_run(again.run_id).provenance  # from step 0


def test_trials_that_checkpoint_train_alone() -> None:
    runner = TrialRunner("unused.sqlite", SOURCE, checkpoint_every=30, vectorize=True)
    assert runner._alone(_trial(steps=40)) and not runner._alone(_trial(steps=30))
    auto = TrialRunner("unused.sqlite", SOURCE, checkpoint_every="auto", vectorize=True)
    assert not auto._alone(_trial())  # an MLP: its vectorized group is kept
    assert auto._alone(_trial(model="gru", problem="mnist1d"))
    assert not TrialRunner("unused.sqlite", SOURCE)._alone(_trial())
    with pytest.raises(ValueError, match="checkpoint_every must be a positive integer or 'auto'"):
        TrialRunner("unused.sqlite", SOURCE, checkpoint_every=0)


def test_the_auto_clock_spends_under_two_percent_on_checkpoints(monkeypatch) -> None:
    now = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])
    clock = CheckpointClock("auto")
    now[0] = 9.9
    assert not clock(1)
    now[0] = 10.0
    assert clock(2)
    now[0] = 10.5  # a write of 0.5 s: the next once the run took 99 * (0.5 + 0.5) s
    clock.written(0.5)
    now[0] = 98.9
    assert not clock(3)
    now[0] = 99.0
    assert clock(4)
    now[0] = 99.5
    clock.written(0.5)
    now[0] = 148.4  # 99 * (1.0 + 0.5)
    assert not clock(5)
    now[0] = 148.5
    assert clock(6)
    # writes of 0.1-5 s at random (the first, before any was timed, left free) stay under 2 %
    rng = __import__("random").Random(0)
    clock, now[0] = CheckpointClock("auto"), 0.0
    for step in range(1, 100_000):
        now[0] += 0.05
        if clock(step):
            cost = rng.uniform(0.1, 5.0) if clock.spent else 0.0
            now[0] += cost
            clock.written(cost)
    assert clock.spent / now[0] <= 0.02


COMPARE = [
    "compare", "--problem", "moons", "--problem-option", "n_samples=200", "--model", "mlp",
    "--model-option", "hidden=8", "--optimizers", "adam", "--batch-size", "16",
    "--steps", "80", "--tune-steps", "80", "--lr-trials", "2", "--seeds", "1",
    "--no-refine", "--landscapes", "none", "--no-progress", "--no-report", "--workers", "1",
    "--json", "--runs-dir", "runs", "--name", "kill", "--checkpoint-every", "10",
]  # fmt: skip


def _compare(cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MPLBACKEND": "Agg"}
    return subprocess.Popen([sys.executable, "-m", "descentlab", *COMPARE], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _step(checksum: Path) -> int:
    """The step of the checkpoint a checksum file records (0: gone, being replaced)."""
    try:
        return int(json.loads(checksum.read_text()).get("step") or 0)
    except (OSError, ValueError):
        return 0


def _table(out: str) -> str:
    rows = json.loads(out.strip().splitlines()[-1])["rows"]
    # wall-clock columns differ from run to run; the numbers do not (as text: NaN != NaN)
    return json.dumps([{k: v for k, v in r.items()
                        if not any(w in k.lower() for w in ("s to", "second", "time"))}
                       for r in rows])  # fmt: skip


@pytest.mark.process
@pytest.mark.slow
def test_kill_9_mid_trial_then_a_rerun_gives_the_uninterrupted_table(tmp_path: Path) -> None:
    (tmp_path / "ref").mkdir()
    (tmp_path / "cut").mkdir()
    reference = _compare(tmp_path / "ref")
    killed = _compare(tmp_path / "cut")
    sums = tmp_path / "cut" / "runs" / "kill" / "checkpoints"
    deadline = time.monotonic() + 600
    # kill -9 once some trial has written a checkpoint in the middle of its run
    found = False
    while not found and time.monotonic() < deadline and killed.poll() is None:
        found = any(0 < _step(p) <= 40 for p in sums.glob("trial-*.pt.sha256"))  # mid-run
        time.sleep(0.02)
    assert found and killed.poll() is None, "no trial was caught in the middle of its run"
    os.kill(killed.pid, signal.SIGKILL)
    killed.communicate()
    out, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err
    again = _compare(tmp_path / "cut")
    out2, err2 = again.communicate(timeout=300)
    assert again.returncode == 0, err2
    assert _table(out2) == _table(out)
    with Store(tmp_path / "cut" / "runs" / "kill" / "descentlab.sqlite") as store:
        resumed = [r for r in store.list_runs() if r.provenance.get("resumes")]
        assert any(r.provenance["resumes"][0]["from_step"] > 0 for r in resumed)
    assert not list(sums.glob("*.pt")), "finished trials' checkpoints were left"


def test_train_refuses_a_bad_checkpoint_interval() -> None:
    with pytest.raises(ValueError, match="checkpoint_every must be a positive integer"):
        train(_trial().config, checkpoint_every=-1, progress=False)
    assert torch.get_default_dtype() == torch.float32


def test_a_kept_checkpoint_continues_the_trial_elsewhere_and_a_corrupted_one_is_set_aside(
    tmp_path: Path,
) -> None:
    # What a Ray task does (without Ray): a trial's checkpoint and run record, kept on the
    # driver's machine, are restored into another (scratch) store and the trial continues
    # there as if never stopped; a kept checkpoint that fails its verification is set aside.
    from descentlab.experiments import resume
    from descentlab.experiments.execution import execute_group

    trial = _trial()
    whole = _outcome(tmp_path / "ref" / "lab.sqlite", trial)
    kept = tmp_path / "driver" / "checkpoints"
    keeper = resume.CheckpointKeeper(str(kept))
    with Store(tmp_path / "node1" / "lab.sqlite") as store:

        def ship(t: Trial, run_id: int, path: Path) -> None:
            if _step(path.with_name(path.name + ".sha256")) == 14:  # the task dies here
                run = store.export_run(run_id)
                run.pop("artifacts")
                keeper.save(trial_key(t), run, path.read_bytes(), 14)

        execute_group(store, SOURCE, [trial], 7, ship)
    partial = resume.load_partial(kept, trial)
    assert partial is not None and partial["step"] == 14
    with Store(tmp_path / "node2" / "lab.sqlite") as store:
        run_id = resume.restore(store, partial)
        (again,) = execute_group(store, SOURCE, [trial], 7, resume_ids=[run_id])
        assert store.get_run(again.run_id).provenance["resumes"][0]["from_step"] == 14
    assert _computed(again.summary) == _computed(whole.summary)
    ckpt = resume.partial_paths(kept, trial_key(trial))[1]
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="is corrupted.*set aside.*starts over from step 0"):
        assert resume.load_partial(kept, trial) is None
    assert sorted(p.name.split(".", 1)[1] for p in kept.iterdir()) == [
        "json.corrupt", "pt.corrupt", "pt.sha256.corrupt",
    ]  # fmt: skip
    assert resume.load_partial(kept, trial) is None  # nothing kept: from step 0
