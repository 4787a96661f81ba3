"""Training and the main job on a device: ``descentlab train --device``, ``train_many``,
``descentlab compare --device`` (descentlab.engine.device). Without CUDA, ``--device cuda``
stops before any work with one line; the tests marked ``cuda`` train on the device wherever
``torch.cuda.is_available()`` (scripts/gpu_session.py runs them on one)."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch

pytest.importorskip("sklearn", reason="the data sets' splits (scikit-learn)")

from _models import COMPARE, TRAIN, run_cli, tiny_compare

from descentlab import _announce
from descentlab.engine import RunConfig, train, train_many
from descentlab.engine.device import check_device
from descentlab.experiments.compare import CompareSpec

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
no_cuda = pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is present")

NO_CUDA = r"device='cuda': this machine has no CUDA device \(torch.cuda.is_available\(\) is False\)"


def _config(**changes) -> RunConfig:
    fields = dict(problem="moons", problem_options={"n_samples": 200}, model="mlp",
                  model_options={"hidden": 4}, optimizer="adam", hyper={"lr": 1e-2},
                  batch_size=16, steps=6, eval_every=3, evaluate_test=False)  # fmt: skip
    return RunConfig(**{**fields, **changes})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("gpu", r"device must be 'cpu', 'cuda' or 'cuda:N' .*got 'gpu'"),
        ("", r"device must be .*got ''"),
        ("cuda:x", r"device must be .*got 'cuda:x'"),
        (0, r"device must be .*got 0"),
    ],
)
def test_a_device_torch_does_not_name_is_refused_in_one_line(value, message):
    with pytest.raises(ValueError, match=message) as err:
        check_device(value)
    assert "\n" not in str(err.value)


@no_cuda
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_a_device_is_refused_by_the_config(device):
    with pytest.raises(ValueError, match="this machine has no CUDA device"):
        _config(device=device).validate()
    with pytest.raises(ValueError, match="this machine has no CUDA device"):
        CompareSpec(**tiny_compare(device=device)).validate()


@no_cuda
@pytest.mark.parametrize("command", [TRAIN, COMPARE], ids=["train", "compare"])
def test_cli_device_cuda_without_a_device_stops_before_any_work(command, tmp_path, capsys):
    """One line on stderr, exit code 2, nothing written (no store, no run folder)."""
    runs = tmp_path / "runs"
    code, out, err = run_cli([*command, "--device", "cuda", "--runs-dir", runs], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and out == "", err
    assert len(lines) == 1 and lines[0].startswith("descentlab: error: "), err
    assert "this machine has no CUDA device" in lines[0]
    assert not runs.exists()


@no_cuda
def test_train_many_on_cuda_without_a_device_refuses_before_any_run(tmp_path):
    from descentlab.store import Store

    store = Store(tmp_path / "s.sqlite")
    with pytest.raises(ValueError, match=NO_CUDA):
        train_many(_config(device="cuda"), store, overrides=[{"seed": 0}, {"seed": 1}])
    assert store.list_runs() == []


@no_cuda
@pytest.mark.parametrize("api", ["train", "compare", "compare-ray"])
def test_the_python_apis_refuse_cuda_without_a_device_before_any_work(api, tmp_path):
    """``train(RunConfig(device="cuda"))`` and ``compare(CompareSpec(device="cuda"), folder)``
    (local or Ray backend): one line, nothing written."""
    from descentlab.experiments import compare as C

    spec = CompareSpec(**tiny_compare(device="cuda"))
    call = {
        "train": lambda: train(_config(device="cuda")),
        "compare": lambda: C.compare(spec, tmp_path / "c", workers=1),
        "compare-ray": lambda: C.compare(spec, tmp_path / "r", backend="ray"),
    }[api]
    with pytest.raises(ValueError, match=NO_CUDA) as err:
        call()
    assert "\n" not in str(err.value) and list(tmp_path.iterdir()) == []


def test_the_cpu_device_keeps_a_comparisons_folder_name():
    """The device field joined CompareSpec after run folders were named by its digest: on the
    CPU the digest is the one the earlier code gave (the folders are found again); on CUDA it
    differs (the numbers differ by rounding)."""
    assert CompareSpec().digest() == "2493b970"  # main before the field
    assert CompareSpec(problem="moons", steps=7).digest() == "e514f081"
    assert CompareSpec(device="cuda").digest() != "2493b970"
    spec = CompareSpec(device="cuda:0")
    assert CompareSpec.from_dict(spec.to_dict()).device == "cuda:0"
    # a comparison folder's record is found by the spec's dict: the CPU's is the earlier one
    assert "device" not in CompareSpec().to_dict()
    assert CompareSpec.from_dict(CompareSpec().to_dict()).device == "cpu"


# ------------------------------------------------------------------ on a real device


def _summary_close(a: dict, b: dict) -> None:
    for key in ("train/loss", "val/loss", "val/accuracy"):
        assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), key


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize(
    "changes",
    [
        {"optimizer": "adam"},
        {"optimizer": "adabelief"},  # written in the form: the Triton kernel on the device
        {"input_noise": 0.1, "weight_noise": 0.01, "mixup_alpha": 0.2},  # CPU generators
    ],
    ids=["adam", "adabelief", "noise-mixup"],
)
def test_train_on_cuda_matches_the_cpu(changes):
    cpu = train(_config(**changes))
    gpu = train(_config(**changes, device="cuda"))
    assert gpu.config.device == "cuda"
    _summary_close(gpu.summary, cpu.summary)


@pytest.mark.cuda
@needs_cuda
def test_cli_train_on_cuda(tmp_path, capsys):
    code, out, err = run_cli([*TRAIN, "--device", "cuda", "--runs-dir", tmp_path], capsys)
    assert code == 0, err
    assert "training run" in out


@pytest.mark.cuda
@needs_cuda
def test_train_many_vectorized_on_cuda_is_k_single_runs():
    base = _config(device="cuda", input_noise=0.1, weight_noise=0.01)
    overrides = [{"seed": s, "hyper": {"lr": lr}} for s in (0, 1) for lr in (3e-3, 1e-2)]
    many = train_many(base, overrides=overrides, mode="vmap")
    for o, got in zip(overrides, many, strict=True):
        one = train(dataclasses.replace(base, **o))
        _summary_close(got.summary, one.summary)


@pytest.mark.cuda
@needs_cuda
def test_train_many_cnn_on_cuda_announces_the_vmap_path():
    """The compiled CNN step is CPU-only: on CUDA the K runs step through vmap, said once."""
    pytest.importorskip("mnist1d", reason="the MNIST-1D data set's generator")

    _announce.forget("untraced")
    base = RunConfig(problem="mnist1d", problem_options={"num_samples": 400}, model="cnn",
                     optimizer="adam", hyper={"lr": 1e-3}, batch_size=32, steps=4,
                     eval_every=2, evaluate_test=False, device="cuda")  # fmt: skip
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        runs = train_many(base, overrides=[{"seed": 0}, {"seed": 1}], mode="vmap")
    said = [str(w.message) for w in seen if "runs on the CPU only" in str(w.message)]
    assert len(said) == 1 and "cuda" in said[0], said
    assert all(r.summary["steps"] == 4 for r in runs)


@pytest.mark.cuda
@needs_cuda
def test_cli_compare_on_cuda(tmp_path, capsys):
    code, out, err = run_cli(
        [*COMPARE, "--device", "cuda", "--runs-dir", tmp_path, "--workers", "1", "--no-report"],
        capsys,
    )
    assert code == 0, err
    assert "done in" in out


@pytest.mark.parametrize(
    ("devices", "gpus"), [(["cpu", "cpu"], 0), (["cuda", "cpu"], 1), (["cuda:0"], 1)]
)
def test_the_ray_backend_asks_for_a_gpu_for_a_task_training_on_cuda(devices, gpus, tmp_path):
    """A Ray task whose trials train on CUDA asks Ray for one GPU (Ray then places it on a
    node with one free and makes that GPU the task's ``cuda``); a CPU task asks for none."""
    from types import SimpleNamespace

    from descentlab.experiments import ray_runner

    asked = []

    class Remote:
        def options(self, **kw):
            asked.append(kw)
            return SimpleNamespace(remote=lambda *a: object())

    runner = ray_runner.RayTrialRunner(tmp_path / "s.sqlite", None, threads=2)
    runner._ray, runner._remote = object(), Remote()  # as if started: no Ray here
    group = [SimpleNamespace(config=SimpleNamespace(device=d)) for d in devices]
    runner._dispatch_group(list(range(len(group))), group, [len(group)])
    assert asked == [{"num_cpus": 2, "num_gpus": gpus}]


def test_the_ray_backend_cuts_a_cuda_round_into_one_part_per_gpu(tmp_path):
    """A round's vectorized group is cut into one part per task slot: CPUs over threads on
    the CPU, GPUs for trials on CUDA (16 parts on one GPU would train one after another)."""
    from types import SimpleNamespace

    from descentlab.experiments import ray_runner

    runner = ray_runner.RayTrialRunner(tmp_path / "s.sqlite", None, threads=2)
    runner._ray = SimpleNamespace(cluster_resources=lambda: {"CPU": 16.0, "GPU": 2.0})
    assert (runner._slots(), runner._slots(cuda=True)) == (8, 2)


@pytest.mark.cuda
@needs_cuda
def test_compare_on_cuda_through_ray_equals_local(tmp_path):
    """The Ray backend on this machine (a local instance that sees its GPU): the tasks ask
    for the GPU and the comparison's table is the local backend's on CUDA."""
    pytest.importorskip("ray", reason="the Ray backend (pip install 'descentlab[ray]')")
    from descentlab.experiments.compare import compare

    spec = CompareSpec(**tiny_compare(optimizers=["sgd", "adam"], steps=6, seeds=1,
                                      lrs_per_optimizer=2, device="cuda"))  # fmt: skip
    local = compare(spec, tmp_path / "local", workers=1)
    ray = compare(spec, tmp_path / "ray", backend="ray")
    assert ray.table(timings=False) == local.table(timings=False)


def test_auto_vectorizes_convolutions_on_a_gpu(monkeypatch):
    """On the CPU, digits_cnn's runs go to worker processes where two cores are free; on a
    GPU they are vectorized (one device: one pass of K runs, not K processes sharing it)."""
    from descentlab.engine import multirun, plan

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # planning only
    monkeypatch.setattr(multirun, "_idle_cores", lambda: 2.0)
    conv2d = RunConfig(problem="digits", model="digits_cnn", steps=5)
    seeds = [{"seed": s} for s in range(3)]
    assert plan(conv2d, overrides=seeds, workers=2) == [("processes", [0, 1, 2])]
    on_gpu = conv2d.replace(device="cuda")
    assert plan(on_gpu, overrides=seeds, workers=2) == [("vmap", [0, 1, 2])]
    assert plan(on_gpu, overrides=seeds, mode="processes") == [("processes", [0, 1, 2])]
