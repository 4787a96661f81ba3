"""Shared test fixtures: a real model on real data (an MLP on scikit-learn's digits), and the
smallest real `train` and `compare` command lines with an in-process runner for CLI tests."""

from __future__ import annotations

import dataclasses
import functools

import torch
from sklearn.datasets import load_digits


@functools.cache
def digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    # Pixels that are zero in every image get no data gradient: under coupled weight decay an
    # adaptive optimizer then makes their weights flip sign around 0 by ~lr each step, a
    # dynamics so sensitive to rounding that torch's own for-loop and foreach paths disagree.
    x = x[:, x.std(axis=0) > 0]
    return torch.tensor(x / 16.0), torch.tensor(y, dtype=torch.long)


def digits_mlp(dtype: torch.dtype, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(digits_tensors()[0].shape[1], 32),
        torch.nn.Tanh(),
        torch.nn.Linear(32, 16),
        torch.nn.Tanh(),
        torch.nn.Linear(16, 10),
    )
    return model.to(dtype)


def param_groups(model: torch.nn.Module, group_overrides: dict) -> list[dict]:
    """Two param groups: the first layer with defaults, the rest with overrides."""
    layers = [m for m in model if isinstance(m, torch.nn.Linear)]
    first = list(layers[0].parameters())
    rest = [p for m in layers[1:] for p in m.parameters()]
    return [{"params": first}, {"params": rest, **group_overrides}]


def batches(n_steps: int, batch_size: int = 64, seed: int = 0) -> list[torch.Tensor]:
    x, _ = digits_tensors()
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, len(x), (batch_size,), generator=g) for _ in range(n_steps)]


def train(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    idx: list[torch.Tensor],
    dtype: torch.dtype,
    sign: float = 1.0,
) -> None:
    x, y = digits_tensors()
    x = x.to(dtype)
    for ix in idx:
        opt.zero_grad()
        loss = sign * torch.nn.functional.cross_entropy(model(x[ix]), y[ix])
        loss.backward()
        opt.step()


def laid_out_params(dtype: torch.dtype) -> list[torch.nn.Parameter]:
    """A channels_last conv weight, a transposed matrix, a contiguous vector: each dense, the
    first two not contiguous (autograd gives their gradients their strides)."""
    g = torch.Generator().manual_seed(7)
    conv = torch.randn(8, 3, 3, 3, generator=g, dtype=dtype)
    mat = torch.randn(5, 7, generator=g, dtype=dtype)
    vec = torch.randn(11, generator=g, dtype=dtype)
    return [
        torch.nn.Parameter(conv.to(memory_format=torch.channels_last)),
        torch.nn.Parameter(mat.t()),
        torch.nn.Parameter(vec),
    ]


def layout_loss(ps: list[torch.Tensor], t: int) -> torch.Tensor:
    return sum(((p * (t + 1)).sin() * (1 + i)).sum() for i, p in enumerate(ps))


def step_side_by_side(opt, ref, ps, ref_ps, g, steps):  # type: ignore[no-untyped-def]
    """``steps`` steps of ``opt`` and ``ref`` (over ``ps`` and ``ref_ps``), each on the same
    fresh gradients drawn from ``g`` (in each parameter's dtype)."""
    for _ in range(steps):
        for a, b in zip(ps, ref_ps, strict=True):
            b.grad = torch.randn(b.shape, generator=g).to(b.dtype)
            a.grad = b.grad.clone()
        opt.step()
        ref.step()


def as_float64(splits):  # type: ignore[no-untyped-def]
    """A data set's ``Splits`` with every floating-point tensor in float64."""
    from descentlab.problems import data

    fields = {}
    for f in dataclasses.fields(splits):
        v = getattr(splits, f.name)
        fields[f.name] = v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
    return data.Splits(**fields)


def tiny_compare(**changes):  # type: ignore[no-untyped-def]
    """Keyword arguments of a CompareSpec that runs in seconds: a small MLP on 200 points of
    two moons, the coarse grid only, no landscapes; ``changes`` override."""
    return {
        "problem": "moons",
        "problem_options": {"n_samples": 200},
        "model": "mlp",
        "model_options": {"hidden": 8},
        "batch_size": 16,
        "refine": False,
        "target_accuracy": 0.8,
        "landscapes": (),
        **changes,
    }


#: the smallest real ``descentlab train`` and ``descentlab compare`` command lines
TRAIN = [
    "train", "--problem", "moons", "--problem-option", "n_samples=200", "--model", "mlp",
    "--model-option", "hidden=4", "--optimizer", "adam", "--lr", "0.01", "--batch-size", "16",
    "--steps", "5", "--no-progress",
]  # fmt: skip
COMPARE = [
    "compare", "--problem", "moons", "--problem-option", "n_samples=200", "--model", "mlp",
    "--model-option", "hidden=4", "--optimizers", "sgd,momentum", "--batch-size", "16",
    "--steps", "6", "--tune-steps", "4", "--lr-trials", "2", "--seeds", "1",
    "--landscapes", "none", "--no-progress",
]  # fmt: skip


def run_cli(argv, capsys):  # type: ignore[no-untyped-def]
    """``descentlab ARGV`` in this process: (exit code, stdout, stderr)."""
    from descentlab.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code, err, *words):  # type: ignore[no-untyped-def]
    """Assert a refusal: exit 2 and one line ``descentlab: error: ...`` holding ``words``, the
    last; before it only descentlab's own one-line notices (an optimizer's file named with its
    hash, the trials that failed and were counted), no traceback."""
    lines = err.strip().splitlines()
    assert code == 2, err
    assert lines and lines[-1].startswith("descentlab: error: "), err
    assert all(ln.startswith(("descentlab: ", "warning: ")) for ln in lines), err
    assert sum(ln.startswith("descentlab: error: ") for ln in lines) == 1, err
    for w in words:
        assert w in lines[-1], lines[-1]


def max_rel_err(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """The largest difference between two models' parameters, each relative to ``b``'s
    largest magnitude in that tensor."""
    worst = 0.0
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        scale = pb.detach().abs().max().clamp_min(1e-12)
        worst = max(worst, float((pa.detach() - pb.detach()).abs().max() / scale))
    return worst
