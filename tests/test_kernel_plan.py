"""One program and one plan for the kernel backends: the fused C kernel and
the Triton kernel are written from one collected program of the chain
(:func:`descentlab.optim.program.collect`), and their steps share
:class:`descentlab.optim.plan.KernelPlan` -- the coefficients in one kind and their table, the
prepares, the state a step reads and the steady step's part."""

from __future__ import annotations

import warnings

import pytest
import torch

from descentlab import optim
from descentlab.optim import fused, gpu
from descentlab.optim.hyper import NOT_HYPER
from descentlab.optim.plan import KernelPlan

#: what the plan owns for every backend: no backend's plan may hold its own copy
SHARED = (
    "coefficient_table",
    "kept_storage",
    "steady_work",
    "steady_coefficients",
)


def test_both_backends_plans_are_the_one_plan():
    for plan in (fused.FusedPlan, gpu.TritonPlan):
        assert issubclass(plan, KernelPlan)
        for name in SHARED:
            assert name not in vars(plan), f"{plan.__name__} holds its own {name}"


def _opt(name: str) -> optim.Optimizer:
    g = torch.Generator().manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(n, generator=g)) for n in (5, 3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = optim.get(name)(ps, fused=False)

        def closure() -> torch.Tensor:  # (SAM evaluates the gradient twice)
            opt.zero_grad()
            loss = sum((w * w * torch.arange(1, w.numel() + 1)).sum() for w in ps)
            loss.backward()
            return loss

        for _ in range(2):  # state made (per-tensor numbers, a previous gradient)
            opt.step(closure)
    return opt


@pytest.mark.parametrize("name", optim.NAMES)
def test_c_and_triton_kernels_are_written_from_one_program(name):
    """Every optimizer with both kernels over its whole chain: the C kernel and the Triton
    kernel are renderings of the one collected program (the same object: its statements,
    state arrays, coefficients and prepares), and the Triton kernel's pointer table takes the
    program's state arrays in its order (after ``p`` and ``g``; a low-bit format's tables
    follow them). That both kernels compute what the eager step does is the bit-for-bit tests'
    (tests/test_fused.py, tests/test_gpu_triton.py)."""
    opt = _opt(name)
    hyper = {k: v for k, v in opt.param_groups[0].items() if k not in NOT_HYPER}
    c_kernel = opt._fused.builder(opt, hyper)
    try:
        prefix, _, prog, _ = gpu._programs(opt, hyper)
    except gpu.Unsupported:
        prog = prefix = None
    if c_kernel is None or prog is None or prefix is not None:
        pytest.skip(f"{name} has no fused C kernel, or no Triton kernel of its whole chain")
    assert prog.program is c_kernel.program
    n = len(c_kernel.arrays)
    assert prog.arrays[:2] == ["p", "g"]
    assert [a.removeprefix("state:") for a in prog.arrays[2 : 2 + n]] == c_kernel.arrays
    assert all(a.startswith("table:") for a in prog.arrays[2 + n :])


#: (chain, fold_lr, final allowed) -> (the body's rule names, the end, the decay's name or None)
WALKS = [
    (lambda: optim.Adam([torch.zeros(1)]).rule, True, True, (["scale_by_adam"], "final", None)),
    (
        lambda: optim.AdamW([torch.zeros(1)], weight_decay=0.1).rule,
        True,
        True,
        (["scale_by_adam"], "final", "add_decayed_weights"),
    ),
    # a tensor lr or a sparse step takes no final form: the lr is folded in
    (
        lambda: optim.Adam([torch.zeros(1)]).rule,
        True,
        False,
        (["maximize", "add_l2", "scale_by_adam", "add_decayed_weights"], "fold", None),
    ),
    (
        lambda: optim.SGD([torch.zeros(1)], lr=0.1).rule,
        True,
        True,
        (["maximize", "add_l2", "trace"], "fold", None),
    ),
    (
        lambda: optim.chain(optim.trace(momentum=0.9), optim.scale_by_lr(0.1)),
        False,
        True,
        (["trace", "scale_by_lr"], "add", None),
    ),
    (lambda: optim.chain(optim.scale_by_rms()), True, True, (["scale_by_rms"], "add", None)),
    # RMSprop's final form: torch's p.addcdiv_(g, d, value=-lr)
    (
        lambda: optim.chain(optim.scale_by_rms(), optim.scale_by_lr(0.1)),
        False,
        True,
        (["scale_by_rms"], "final", None),
    ),
]


@pytest.mark.parametrize(("make", "fold", "final", "expected"), WALKS)
def test_every_backend_walks_a_chain_the_one_way(make, fold, final, expected):
    """Chain.walk is where the eager step, the C program and the Triton program learn which
    rules run and how the parameter is updated (a final form in torch's order, a folded
    learning rate, or p + u)."""
    chain = make()
    walk = chain.walk(chain.defaults, fold, final)
    body, end, decay = expected
    assert [r.name for r in walk.body][-len(body) :] == body
    assert walk.end == end
    assert (walk.decay.name if walk.decay else None) == decay
    assert (walk.lr is chain.rules[-1]) == (end != "add")
