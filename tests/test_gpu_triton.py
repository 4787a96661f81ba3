"""The GPU backend's Triton kernels (descentlab.optim.gpu), generated from the one form, run on
CPU tensors under Triton's interpreter (TRITON_INTERPRET=1): every registered optimizer with a
one-launch path and chains composed from the registry of element-local rules (drawn from the
registry, no table here) against the eager backend of the same form, step by step from the
same state; one launch per group over tensors of odd sizes; every optimizer's CUDA path, the
announced torch ops and the refusals of fused=True. Where a CUDA device is visible the
interpreter tests run in a child process with it hidden. The tests marked ``cuda`` run the
same kernels compiled for a real device, wherever one is present."""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.util
import inspect
import os
import random
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from unittest import mock

import numpy as np
import pytest
import torch
from _models import laid_out_params, layout_loss, step_side_by_side

pytest.importorskip("triton", reason="triton is not installed (the GPU backend's kernels)")

from descentlab import _announce, optim
from descentlab.optim import base, gpu, lowbit
from descentlab.optim import form as FM
from descentlab.optim import fused as F
from descentlab.optim import plan as plan_module

SIZES = (5, 600, 3, 1100)  # odd sizes: partial blocks, several blocks per tensor (BLOCK 512)
ONE = (301,)  # the interpreter's time is per program instance: one for the long runs
KW = dict(lr=1e-2, weight_decay=0.1)


def _kw(name: str) -> dict:
    """KW, less what the optimizer does not take (Rprop has no weight decay)."""
    return {k: v for k, v in KW.items() if k in inspect.signature(optim.get(name)).parameters}


#: every registered optimizer with a rule written in the form -> its chain has a Triton program
TRITON = optim.triton_optimizers()
#: chains holding a form rule that still run eagerly on CUDA (announced once), each with why;
#: the test below fails when one gets a kernel, so an entry cannot outlive its reason
EAGER_ON_CUDA: dict[str, str] = {}
#: every registered optimizer -> how its group steps on CUDA (optim.cuda_paths)
PATHS = optim.cuda_paths()
#: the named optimizers whose whole chain is one launch (plain SGD among them)
FORMS = [name for name, path in PATHS.items() if path.kind == "triton"]


#: Triton's interpreter runs in this process only where no CUDA device is visible (on the
#: H100, with triton 3.6, the interpreter did not engage in a process that sees the device):
#: there :func:`test_the_interpreter_tests_pass_with_the_device_hidden` runs them in a child
#: process with ``CUDA_VISIBLE_DEVICES=""`` and ``TRITON_INTERPRET=1`` set before any import
HIDDEN = "run with the device hidden by test_the_interpreter_tests_pass_with_the_device_hidden"


@pytest.fixture
def interpreted(monkeypatch):
    """Triton's interpreter; steps taken inside ``gpu.interpret_on_cpu()`` run the kernels."""
    if torch.cuda.is_available():
        pytest.skip(HIDDEN)
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def ulps(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest distance of ``a`` from ``b`` in units of ``b``'s last place."""
    a, b = a.detach(), b.detach()
    if b.is_complex():  # as pairs of reals
        a, b = torch.view_as_real(a), torch.view_as_real(b)
    a, mag = a.double(), b.abs()
    ulp = (torch.nextafter(mag, torch.full_like(mag, float("inf"))) - mag).double()
    return float(((a - b.double()).abs() / ulp).max())


def _params(dtype: torch.dtype, sizes=ONE, seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(_randn((n,), dtype, g)) for n in sizes]


def _randn(shape: tuple[int, ...], dtype: torch.dtype, g: torch.Generator) -> torch.Tensor:
    """Normal values stored in ``dtype`` (complex: both parts drawn)."""
    if dtype.is_complex:
        return torch.randn(shape, dtype=dtype, generator=g)
    return torch.randn(shape, generator=g).to(dtype)


def _ieee(x: torch.Tensor) -> torch.Tensor:
    """The IEEE (correctly rounded) square root, numpy's, where torch's CPU root is MKL's (not
    always correctly rounded): the eager form with the kernel's root."""
    return torch.from_numpy(np.sqrt(x.detach().numpy()))


def _sqrt_out(x, *, out=None):
    if out is None:
        return _ieee(x)
    return out.copy_(_ieee(x))


def _sqrt_(xs):
    for x in xs:
        x.copy_(_ieee(x))


@contextlib.contextmanager
def _ieee_sqrt():
    """Every square root the eager backend takes (foreach, in place, per tensor into its
    scratch memory) is the IEEE one while this is active."""
    with (
        mock.patch.object(torch, "_foreach_sqrt", lambda xs: [_ieee(x) for x in xs]),
        mock.patch.object(torch, "_foreach_sqrt_", _sqrt_),
        mock.patch.object(torch, "sqrt", _sqrt_out),
    ):
        yield


def _step_both(tri, ref, tri_params, ref_params, g) -> None:
    """The same new gradients for both, then ``tri``'s step on the Triton path and ``ref``'s
    (the CPU backends), each with the IEEE root."""
    for a, b in zip(tri_params, ref_params, strict=True):
        b.grad = torch.randn(b.shape, generator=g)
        a.grad = b.grad.clone()
    with gpu.interpret_on_cpu(), _ieee_sqrt():
        tri.step()
    with _ieee_sqrt():
        ref.step()


def _reference_step(ref, tri, ref_params, tri_params, dtype, g) -> None:
    """``tri`` put at ``ref``'s parameters and state, both given the same new gradients, and
    ``ref``'s step taken (the CPU backends; eager with the IEEE root)."""
    with torch.no_grad():
        for a, b in zip(tri_params, ref_params, strict=True):
            a.copy_(b)
    if ref.state:
        tri.load_state_dict(copy.deepcopy(ref.state_dict()))
        for a, b in zip(tri_params, ref_params, strict=True):
            for key, value in ref.state[b].items():  # per-tensor numbers (NAdam's
                # mu_product, ASGD's eta and mu) keep their dtype: torch casts them
                if key != "step" and torch.is_tensor(value) and value.ndim == 0:
                    tri.state[a][key] = value.to(a.device, copy=True)
    for a, b in zip(tri_params, ref_params, strict=True):
        b.grad = _randn(b.shape, dtype, g)
        a.grad = b.grad.to(a.device, copy=True)
    with _ieee_sqrt():
        ref.step()


def _per_step(
    name: str | Callable[..., torch.optim.Optimizer],
    dtype: torch.dtype,
    reference_fused: bool,
    steps: int,
    sizes=ONE,
    groups=1,
    device: str = "cpu",
) -> float:
    """The largest distance in ulps, over ``steps`` steps, of one Triton step (on
    ``device``) from the CPU reference backend's step taken from the same parameters and
    state (``groups``: the parameters split into this many param groups; ``name``: a
    registered optimizer, or a factory ``(params, fused=...)`` of one)."""
    ref_params = _params(dtype, sizes)
    tri_params = [torch.nn.Parameter(p.detach().to(device)) for p in _params(dtype, sizes)]
    half = len(sizes) // 2

    def split(ps):
        return [{"params": ps[:half]}, {"params": ps[half:], "lr": 3e-3}] if groups == 2 else ps

    run = gpu.TritonPlan.run
    route = gpu.interpret_on_cpu if device == "cpu" else contextlib.nullcontext
    make = name if callable(name) else functools.partial(optim.get(name), **_kw(name))
    ref = make(split(ref_params), fused=reference_fused)
    tri = make(split(tri_params))
    g = torch.Generator().manual_seed(1)
    worst = 0.0
    for _ in range(steps):
        _reference_step(ref, tri, ref_params, tri_params, dtype, g)
        with route(), mock.patch.object(gpu.TritonPlan, "run", autospec=True) as spy:
            spy.side_effect = run
            tri.step()
        assert spy.call_count == groups  # the Triton kernel stepped every group
        for a, b in zip(tri_params, ref_params, strict=True):
            worst = max(worst, ulps(a.cpu(), b))
            for key, value in ref.state[b].items():
                if key != "step":
                    worst = max(worst, ulps(tri.state[a][key].cpu(), value))
    return worst


def test_every_optimizer_written_in_the_form_has_a_triton_kernel():
    """A chain holding a form rule whose glue rule has no Triton form would run eagerly on a
    GPU: write the glue rule in the form too."""
    assert {"adabelief", "lion"} <= set(TRITON)
    assert sorted(name for name, ok in TRITON.items() if not ok) == sorted(EAGER_ON_CUDA)


def _element_local(rule: base.Rule, hyper: dict) -> bool:
    """A link of a chain that changes each tensor's update from that tensor's own values and
    state alone (SAM's ascent link passes the update through: its work, a norm over every
    param group, is done in SAM's step, outside the chain)."""
    return rule.elementwise and not rule.passes_through(hyper)


def _defaults(name: str) -> tuple[optim.Optimizer, dict]:
    opt = optim.get(name)([torch.nn.Parameter(torch.zeros(2))], fused=False)
    return opt, {k: v for k, v in opt.param_groups[0].items() if k != "params"}


def test_every_named_optimizer_is_one_launch_or_announced_torch_ops_that_are_not_local():
    """Every registered optimizer on CUDA: its whole chain in one launch, or rules that are not
    element-local (a group's norm, matrix roots: torch ops, announced; an element-local rule
    before one of them runs there too, as it must run first) before the launch, or
    eager (announced) because a rule that is not element-local has no form (Muon updates
    the parameters itself, Adafactor's factored moments) -- or it is listed above with why."""
    assert set(PATHS) == {r.name for r in optim.records()}
    assert "sgd" in FORMS  # plain SGD: p - lr g in the kernel
    for name, path in PATHS.items():
        opt, hyper = _defaults(name)
        rules = {r.name: r for r in opt.rule.rules}
        if path.kind == "torch+triton":  # element-local rules only before one that is not
            assert not _element_local(rules[path.prefix[-1]], hyper), (name, path.prefix)
        elif path.kind == "eager" and name not in EAGER_ON_CUDA:
            culprit = path.why.split()[0]
            assert not _element_local(rules[culprit], hyper), f"{name} eager: {path.why}"


def test_the_docs_table_of_paths_is_cuda_paths():
    """docs/gpu.md's "On a GPU" table names each optimizer (by its display name) in the row of
    its path: the table is gpu.cuda_paths(), not a second list. The rows of the paths that are
    not one launch are written by hand, each optimizer with why; the one-launch row is "every
    other", its names written in at the site's build (scripts/docs_hooks.py), so that adding an
    optimizer written in the form leaves the page as it is."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).parents[1]
    spec = importlib.util.spec_from_file_location("docs_hooks", root / "scripts" / "docs_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    page = (root / "docs" / "gpu.md").read_text(encoding="utf-8")
    rows = {
        "triton": "| one Triton launch per group |",
        "torch+triton": "| rules that are not element-local with torch ops, then one launch |",
        "eager": "| torch ops throughout |",
    }
    display = {r.name: r.display for r in optim.records()}

    def named(text: str, start: str) -> set[str]:
        (row,) = [line for line in text.splitlines() if line.startswith(start)]
        return {n for n, d in display.items() if re.search(rf"(?<![\w-]){re.escape(d)}(?!\w)", row)}

    assert named(page, rows["triton"]) == set(), "the one-launch row names no optimizer by hand"
    built = hooks.cuda_paths_names(page)
    for kind, start in rows.items():
        want = {n for n, p in PATHS.items() if p.kind == kind}
        got = named(built, start)
        assert got == want, (
            f'docs/gpu.md\'s "On a GPU" table, row {start!r}: add '
            f"{sorted(display[n] for n in want - got)}, remove "
            f"{sorted(display[n] for n in got - want)} (gpu.cuda_paths())"
        )


#: rules descentlab.optim exports that are element-local but not written in the form, each
#: with why (the test below fails when one is written in it, or a new one is not)
NOT_IN_THE_FORM = {
    "sam_ascent": "its link passes the update through; the ascent is a norm over every group",
}


def _exported_rules() -> list[type]:
    """The exported rules one can build (not the authoring bases: Rule, FormRule, Wrapper)."""
    return [
        c
        for c in map(functools.partial(getattr, optim), optim.__all__)
        if isinstance(c, type)
        and issubclass(c, base.Rule)
        and c is not base.Chain
        and not inspect.isabstract(c)
    ]


#: the registry of element-local rules written in the form (the chains below draw from it)
LOCAL_RULES = {c.name: c for c in _exported_rules() if issubclass(c, FM.FormRule) and c.elementwise}


def test_the_element_local_rules_are_all_written_in_the_form():
    assert len(LOCAL_RULES) >= 15 and "trace" in LOCAL_RULES and "scale_by_lr" in LOCAL_RULES
    others = {c.name for c in _exported_rules() if c.elementwise} - set(LOCAL_RULES)
    assert others == set(NOT_IN_THE_FORM)


#: values the chains' hyperparameters are drawn from (where a chain has them): the glue on
#: (the named optimizers' tests step it at its defaults, where it passes updates through)
TURNED = {
    "maximize": (True,),
    "weight_decay": (0.1,),
    "momentum": (0.9,),
    "nesterov": (False, True),
    "lr": (1e-2,),
}


def _valid(names: tuple[str, ...], hyper: dict) -> bool:
    """Whether chain() and the optimizer take these rules and values (two copies of a
    stateful rule, a guard not first, disagreeing defaults, nesterov without momentum: no)."""
    try:
        _drawn(names, hyper)([torch.nn.Parameter(torch.zeros(2))], fused=False)
    except ValueError:
        return False
    return True


def _chains(seed: int = 24, longest: int = 4) -> list[tuple[tuple[str, ...], dict]]:
    """Chains composed from the registry of element-local rules, every rule in at least one:
    each chain starts from a rule no earlier chain holds and takes, in a seeded random order,
    the rules chain() accepts beside it (uncovered ones first, then any), up to ``longest``;
    the hyperparameters in TURNED drawn at random. Drawn here, not listed: a rule added to
    the registry joins them."""
    rng = random.Random(seed)
    names = sorted(LOCAL_RULES)
    left, out = set(names), []
    while left:
        first = rng.choice(sorted(left))
        chain = [first]
        others = [n for n in names if n in left and n != first]
        rng.shuffle(others)  # a list in a fixed order first: the same draws in every process
        for n in others + rng.sample(names, 6):
            if len(chain) == longest:
                break
            at = rng.randrange(len(chain) + 1)
            trial = (*chain[:at], n, *chain[at:])
            if _valid(trial, {}):
                chain = list(trial)
        keys = base.chain(*[LOCAL_RULES[n]() for n in chain]).defaults
        hyper = {k: rng.choice(v) for k, v in TURNED.items() if k in keys}
        while not _valid(tuple(chain), hyper):  # nesterov without momentum
            hyper = {k: rng.choice(v) for k, v in TURNED.items() if k in keys}
        out.append((tuple(chain), hyper))
        left -= set(chain)
    return out


def _drawn(names: tuple[str, ...], hyper: dict) -> Callable[..., optim.Optimizer]:
    def make(params, fused=None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the CPU backends' announcements
            rules = [LOCAL_RULES[n]() for n in names]
            return optim.Optimizer(params, base.chain(*rules), fused=fused, **hyper)

    return make


CHAINS = _chains()


@pytest.mark.parametrize("drawn", CHAINS, ids=["+".join(c[0]) for c in CHAINS])
def test_any_chain_of_element_local_rules_is_one_launch_of_its_eager_form(drawn):
    """A chain composed from the registry (CHAINS: every element-local rule in one) compiles to
    one Triton program, steps in one launch
    per group (two groups), and equals its eager form (IEEE root) bit for bit at each of 40
    float32 steps and 20 float64 steps, each from the eager backend's state; complex
    parameters as pairs of reals, 10 steps; bfloat16 storage within an ulp of the fused CPU
    kernel (float32 compute, one rounding per stored value), 10 steps."""
    if torch.cuda.is_available():
        pytest.skip(HIDDEN)
    make = _drawn(*drawn)
    with mock.patch.dict(os.environ, {"TRITON_INTERPRET": "1"}):
        assert _per_step(make, torch.float32, False, steps=40, groups=2, sizes=(301, 5)) == 0
        assert _per_step(make, torch.float64, False, steps=20, groups=2, sizes=(301, 5)) == 0
        assert _per_step(make, torch.complex64, False, steps=10, sizes=(7,)) == 0
        if F.fused_available():  # 16-bit storage, float32 compute: as the fused C kernel
            assert _per_step(make, torch.bfloat16, True, steps=10, sizes=(301,)) <= 1.0


@pytest.mark.parametrize("name", sorted(PATHS))
def test_fused_true_on_the_device_runs_the_kernel_or_refuses_never_eagerly(name, interpreted):
    """``fused=True`` on the GPU path (CPU tensors routed there, the kernels interpreted), every
    registered optimizer: its kernel steps the group (after torch ops for rules that are not
    element-local, announced), or the step is refused naming why, nothing changed; never an
    eager step."""
    w = torch.nn.Parameter(torch.randn(4, 3, generator=torch.Generator().manual_seed(5)))
    start = w.detach().clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = optim.get(name)([w], fused=False)
    opt.fused = True  # as on a CUDA device (the CPU's kernel may refuse it at construction)

    def closure():
        w.grad = torch.full_like(w, 0.5)
        return torch.zeros(())

    path = PATHS[name]
    _announce.forget()
    run = gpu.TritonPlan.run
    with (
        warnings.catch_warnings(record=True) as said,
        mock.patch.object(gpu.TritonPlan, "run", autospec=True, side_effect=run) as spy,
        gpu.interpret_on_cpu(),
    ):
        warnings.simplefilter("always")
        closure()
        if path.kind == "eager":
            refused = rf"fused=True\) on cpu: param group 0: {re.escape(path.why)}$"
            with pytest.raises(ValueError, match=refused):
                opt.step(closure)
        else:  # two steps: SOAP's first only gathers its statistics
            opt.step(closure)
            opt.step(closure)
    said = [str(x.message) for x in said if "descentlab" in str(x.message)]
    if path.kind == "eager":
        assert spy.call_count == 0 and torch.equal(w.detach(), start) and said == []
    else:
        assert spy.call_count == 2 and not torch.equal(w.detach(), start)
        torch_ops = [m for m in said if "with torch ops" in m]
        assert len(torch_ops) == (path.kind == "torch+triton"), said
        assert all("eagerly" not in m for m in said), said


@pytest.mark.parametrize("name", FORMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_triton_step_is_the_eager_form_bit_for_bit(name, dtype, interpreted):
    """Steps (100 in float32, 30 in float64), each from the eager backend's parameters and
    state: the generated kernel's parameters and state equal eager's bit for bit when eager's
    square root is the IEEE one, as the kernel's (torch's MKL root is not always correctly
    rounded: against it the kernel is within an ulp or so per root on the value's path)."""
    steps = 100 if dtype == torch.float32 else 30
    assert _per_step(name, dtype, reference_fused=False, steps=steps) == 0.0


@pytest.mark.skipif(not F.fused_available(), reason="no C++ compiler: no fused CPU kernel")
@pytest.mark.parametrize("name", FORMS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
def test_triton_16bit_storage_matches_the_fused_cpu_kernel(name, dtype, interpreted):
    """16-bit storage, float32 compute, one rounding per stored value: as the fused C (the
    eager backend rounds after every operation), within 1 ulp of the 16-bit type per step."""
    assert _per_step(name, dtype, reference_fused=True, steps=20) <= 1.0


#: every named optimizer that takes ``state_dtype`` (drawn from the registry)
LOW_BIT = [name for name in FORMS if "state_dtype" in inspect.signature(optim.get(name)).parameters]
#: the formats, with a blockwise one at bitsandbytes' block size (larger than a program); the
#: blockwise ones quantize from 512 elements (not 4096): the interpreter's time is per program
#: instance, and which tensors are quantized is the format's choice, not the kernel's
SMALL = 512
STATE_FORMATS = {
    "int8": lowbit.Int8Blockwise(min_size=SMALL),
    "int8-2048": lowbit.Int8Blockwise(block_size=2048, min_size=SMALL),
    "bfloat16": "bfloat16",
}


def _low_bit_per_step(
    name: str | Callable[..., optim.Optimizer], fmt: str, device: str
) -> list[str]:
    """Three steps of low-bit state on the Triton path (on ``device``), each from the CPU
    eager backend's parameters and state (with the IEEE root): parameters and stored bytes
    (codes, block scales, bfloat16 words) bit for bit; no announcement (the kernel ran); a
    blockwise format's small tensors in a second launch. Returns what was announced."""
    # under SMALL: float32 state, a second launch; several blocks of 256 and of 2048 with a
    # partial one (and one partial block of 2048 alone)
    sizes, sd = (5, 700, 4100), STATE_FORMATS[fmt]
    ref_p = _params(torch.float32, sizes)
    tri_p = [torch.nn.Parameter(p.detach().to(device)) for p in _params(torch.float32, sizes)]
    make = name if callable(name) else functools.partial(optim.get(name), **_kw(name))
    ref = make(ref_p, state_dtype=sd, fused=False)
    tri = make(tri_p, state_dtype=sd, fused=True)
    route = gpu.interpret_on_cpu if device == "cpu" else contextlib.nullcontext
    g = torch.Generator().manual_seed(1)
    announced: list[str] = []
    for step in range(3):
        _reference_step(ref, tri, ref_p, tri_p, torch.float32, g)
        launch = gpu.TritonPlan._launcher
        with (
            route(),
            mock.patch.object(gpu.TritonPlan, "_launcher", autospec=True) as spy,
            warnings.catch_warnings(record=True) as said,
        ):
            warnings.simplefilter("always")
            spy.side_effect = launch
            tri.step()
        announced += [str(w.message) for w in said if "descentlab" in str(w.message)]
        assert not [m for m in announced if "eagerly" in m]  # the kernel ran
        assert spy.call_count == (2 if fmt.startswith("int8") else 1)
        for a, b in zip(tri_p, ref_p, strict=True):
            assert torch.equal(a.cpu(), b), (step, a.numel())
            stored = tri.state[a]
            assert stored.keys() == ref.state[b].keys()
            for key, value in ref.state[b].items():
                if torch.is_tensor(value):
                    assert value.dtype == stored[key].dtype, key
                    assert torch.equal(value, stored[key].cpu()), (step, a.numel(), key)
    return announced


#: every format with AdamW; every other optimizer that takes ``state_dtype`` with one format,
#: in turn (the formats' decoding and encoding is the same code in every kernel; each
#: optimizer's step is checked bit for bit in every float dtype above)
LOW_BIT_CASES = [("adamw", f) for f in STATE_FORMATS] + [
    (name, list(STATE_FORMATS)[i % len(STATE_FORMATS)])
    for i, name in enumerate(n for n in LOW_BIT if n != "adamw")
]


@pytest.mark.parametrize(("name", "fmt"), LOW_BIT_CASES, ids=["-".join(c) for c in LOW_BIT_CASES])
def test_triton_low_bit_state_is_the_eager_form_bit_for_bit(name, fmt, interpreted):
    """Low-bit state decoded, stepped and encoded in the kernel, as the eager backend
    (:func:`_low_bit_per_step`): every format, every optimizer that takes ``state_dtype``."""
    assert len(LOW_BIT) >= 3 and "adamw" in LOW_BIT, LOW_BIT  # Adam, AdamW, AdaBelief...
    assert _low_bit_per_step(name, fmt, "cpu") == []


@pytest.mark.parametrize("block", [256, 2048])
def test_triton_int8_state_is_the_cpu_fused_int8_path(block, interpreted):
    """8-bit AdamW state on the Triton path against the CPU's own int8 path (the fused C
    kernel, the default there), each run on its own from the same start over two steps: the
    stored codes and block scales bit for bit (the moments read no root), the parameters
    within an ulp a step (each kernel its root: the C kernel's is this CPU's, which may part
    from the correctly rounded one by an ulp; bit for bit where it is the correctly rounded
    one); a blockwise format's small tensor in its second launch on both."""
    sizes, sd = (5, 700), lowbit.Int8Blockwise(block_size=block, min_size=512)
    cpu_p, tri_p = _params(torch.float32, sizes), _params(torch.float32, sizes)
    cpu = optim.AdamW(cpu_p, lr=1e-2, weight_decay=0.1, state_dtype=sd)
    tri = optim.AdamW(tri_p, lr=1e-2, weight_decay=0.1, state_dtype=sd)
    g = torch.Generator().manual_seed(3)
    for step in range(2):
        for a, b in zip(tri_p, cpu_p, strict=True):
            b.grad = torch.randn(b.shape, generator=g)
            a.grad = b.grad.clone()
        cpu.step()
        with gpu.interpret_on_cpu():
            tri.step()
        assert cpu._fused.plans and tri.state[tri_p[1]]["exp_avg"].dtype is torch.uint8
        for a, b in zip(tri_p, cpu_p, strict=True):
            assert ulps(a, b) <= step + 1, (step, a.numel())
            for key, value in cpu.state[b].items():
                assert torch.equal(tri.state[a][key], value), (step, a.numel(), key)


@pytest.mark.parametrize("fmt", ["int8", "bfloat16"])
def test_a_prefix_runs_once_over_the_group_before_the_low_bit_launches(
    fmt, interpreted, monkeypatch
):
    """A global-norm clip (not element-local: torch ops before the kernel) in front of 8-bit
    Adam: the norm is the whole group's, though int8's small tensors take their own launch
    (clipped at every step: the gradients' norm is about 2.3 times the bound)."""
    from descentlab.optim import transforms as T

    def make(params, **kw):
        rule = optim.chain(T.clip_by_global_norm(max_norm=30.0), optim.scale_by_adam(),
                           optim.scale_by_lr(lr=1e-2))  # fmt: skip
        return optim.Optimizer(params, rule, **kw)

    monkeypatch.setattr(_announce, "PROCESS", _announce.Once())  # announced once per process
    (said,) = _low_bit_per_step(make, fmt, "cpu")
    assert "clip_by_global_norm (not element-local) runs with torch ops" in said


@pytest.mark.parametrize(
    ("sd", "key", "bad", "says"),
    [
        (None, "exp_avg", lambda v: v.double(), r"torch\.float64 tensor of 4100"),
        (None, "exp_avg_sq", lambda v: torch.zeros(8200)[::2], r"non-contiguous"),
        ("int8", "exp_avg", lambda v: v.float(), r"torch\.float32 tensor .* torch\.uint8"),
        ("int8", "exp_avg_sq_scale", lambda v: v[:-1].clone(), r"16 elements .* 17 elements"),
        ("bfloat16", "exp_avg", lambda v: None, r"'exp_avg' of parameter 1 of the group is "),
    ],
    ids=["dtype", "strided", "int8-codes", "int8-scales", "missing"],
)
def test_state_the_kernel_cannot_read_is_refused_naming_it(sd, key, bad, says, interpreted):
    """The kernel reads raw pointers: a state tensor of another dtype, layout or size (state
    set by hand, or loaded for other parameters) is refused in one line naming it, before
    the launch, and nothing changes."""
    ps = _params(torch.float32, (5, 4100))
    opt = optim.AdamW(ps, lr=1e-2, state_dtype=sd, fused=True)
    for p in ps:
        p.grad = torch.ones_like(p)
    with gpu.interpret_on_cpu():
        opt.step()
        opt.state[ps[1]][key] = bad(opt.state[ps[1]][key])
        before = [p.detach().clone() for p in ps]
        with pytest.raises(ValueError, match=says):
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ps, before, strict=True))
    assert [float(opt.state[p]["step"]) for p in ps] == [1.0, 1.0]


def _changed_lr(opt, ps) -> None:
    for group in opt.param_groups:  # as a scheduler does, before every step
        group["lr"] *= 0.9


def _moved_storage(opt, ps) -> None:
    with torch.no_grad():
        ps[0].data = ps[0].data.clone()


def _strided_grad(opt, ps) -> None:
    ps[0].grad = torch.stack([ps[0].grad, ps[0].grad], 1)[:, 0]


def _no_grad(opt, ps) -> None:
    ps[1].grad = None


#: what happens to the optimizer before a step, at which step -> whether steps 4 and 5 may be
#: steady ones
STEADY_EVENTS = {
    "nothing": (lambda opt, ps: None, 4, True),
    "lr changed": (_changed_lr, 4, True),
    "parameter storage moved": (_moved_storage, 4, False),
    "strided gradient": (_strided_grad, 4, False),
    # its step count stays one behind the others' (an unfrozen layer's): steady too
    "one late parameter": (_no_grad, 0, True),
    # it misses step 2; one step behind the others' from then on: steady from step 4
    "a parameter skips a step": (_no_grad, 2, True),
}


#: (optimizer, low-bit state, event): every event with float32 state (and bfloat16 state, made
#: by stochastic rounding in the launch); int8 state (quantized from SMALL elements) with the
#: steady steps alone
_FLOAT32_STATE = [("adamw", None), ("sgd", None), ("adamax", None), ("adagrad", None)]
#: work before the launch at every step (NAdam's running product, ASGD's rates,
#: Schedule-Free's weights), run in the steady step too
_PER_STEP = ["nadam", "asgd", "sfadamw"]
STEADY_CASES = [
    *((name, sd, event) for name, sd in [*_FLOAT32_STATE, ("adamw", "bfloat16")]
      for event in sorted(STEADY_EVENTS)),
    ("adamw", "int8", "nothing"),
    *((name, None, event) for name in _PER_STEP
      for event in ("lr changed", "nothing", "one late parameter",
                    "a parameter skips a step")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "sd", "event"), STEADY_CASES, ids=["-".join(map(str, c)) for c in STEADY_CASES]
)
def test_the_steady_gpu_step_is_the_eager_form_bit_for_bit(name, sd, event, interpreted):
    """While nothing but the gradients (and a schedule's numbers) change, a GPU group's step
    is one launch on the pointers last checked, with no re-planning (the steady step, as on
    the CPU): over 6 steps of two param groups it gives the eager form's parameters and state
    bit for bit; what it cannot know unchanged (storage moved, a strided gradient) sends that
    step down the general path, which steps it right."""
    change, at, steady = STEADY_EVENTS[event]
    kw = dict(_kw(name), momentum=0.9) if name == "sgd" else _kw(name)
    if sd is not None:
        kw["state_dtype"] = STATE_FORMATS.get(sd, sd)
    make = optim.get(name)
    sizes = (520, 1100, 600, 700) if sd == "int8" else (5, 600, 3, 1100)  # int8: none small
    ref_ps, tri_ps = _params(torch.float32, sizes), _params(torch.float32, sizes)
    groups = [{"params": ref_ps[:2]}, {"params": ref_ps[2:], "lr": 3e-3}]
    ref = make(groups, fused=False, **kw)
    tri = make([{"params": tri_ps[:2]}, {"params": tri_ps[2:], "lr": 3e-3}], **kw)
    g = torch.Generator().manual_seed(2)
    launches = []
    launch = gpu.TritonPlan.launch
    for step in range(6):
        for a, b in zip(tri_ps, ref_ps, strict=True):
            b.grad = torch.randn(b.shape, generator=g)
            a.grad = b.grad.clone()
        if step == at:  # 4: after three steady steps
            change(tri, tri_ps)
            change(ref, ref_ps)
        with (
            gpu.interpret_on_cpu(),
            mock.patch.object(gpu.TritonPlan, "launch", autospec=True) as spy,
            warnings.catch_warnings(),
            _ieee_sqrt(),  # the kernel's root, where a group steps eagerly
        ):
            warnings.simplefilter("ignore")  # a strided gradient's eager step is announced
            spy.side_effect = launch
            tri.step()
        launches.append(spy.call_count)
        with _ieee_sqrt():
            ref.step()
        for a, b in zip(tri_ps, ref_ps, strict=True):
            assert torch.equal(a, b), (step, event)
            for key, value in ref.state[b].items():
                assert torch.equal(tri.state[a][key], value), (step, key)
    # steady from the second step (the first makes the state), in both groups at once; from the
    # late parameter's second step at the latest
    if at == 0:
        assert launches[0] == 0 and launches[2:] == [2, 2, 2, 2]
    elif event == "a parameter skips a step":  # the general step (the whole step's), steady again
        assert launches == [0, 2, 0, 0, 2, 2]
    else:
        assert launches == [0, 2, 2, 2, 2 if steady else 0, 2]


#: (optimizer, options, the key a schedule moves before every step)
SCHEDULED = [
    ("sgd", dict(lr=1e-2, momentum=0.9), "momentum"),
    ("sgd", dict(lr=1e-2, momentum=0.9, nesterov=True), "momentum"),
    ("lion", dict(lr=1e-3), "betas"),
    ("adam", dict(lr=1e-2), "betas"),
    ("adamw", dict(lr=1e-2, weight_decay=0.1), "lr"),
]


@pytest.mark.parametrize(
    ("name", "kw", "key"), SCHEDULED, ids=[f"{n}-{k}-{len(kw)}" for n, kw, k in SCHEDULED]
)
def test_a_scheduled_value_is_a_kernel_argument_not_a_table(
    name, kw, key, interpreted, monkeypatch
):
    """Momentum, Nesterov, Lion, Adam and AdamW with a value changed before every step: a
    group's coefficients are the kernel's scalar arguments, so no coefficient table is made
    or copied to the device (one a step before: 42-50 us of an H200's step); parameters and
    state the eager form's bit for bit."""
    made = []
    host = gpu._host_table
    monkeypatch.setattr(gpu, "_host_table", lambda *a: made.append(1) or host(*a))
    monkeypatch.setattr(gpu, "_COEFS", {})  # (no table an earlier test left)
    ref_ps, tri_ps = _params(torch.float32, (5, 600)), _params(torch.float32, (5, 600))
    ref = optim.get(name)(ref_ps, fused=False, **kw)
    tri = optim.get(name)(tri_ps, **kw)
    g = torch.Generator().manual_seed(4)
    for step in range(5):
        for o in (ref, tri):
            group = o.param_groups[0]
            v = group[key]
            group[key] = (v[0] * 0.99, *v[1:]) if key == "betas" else v * 0.99
        _step_both(tri, ref, tri_ps, ref_ps, g)
        for a, b in zip(tri_ps, ref_ps, strict=True):
            assert torch.equal(a, b), step
            for k, value in ref.state[b].items():
                assert torch.equal(tri.state[a][k], value), (step, k)
    assert made == []


def _out_of_memory(*args):
    raise torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 MiB. GPU 0 has a total capacity of 79.19 "
        "GiB of which 1.06 MiB is free.\nIf reserved but unallocated memory is large try..."
    )


def _no_kernel_image(*args, **kwargs):
    raise RuntimeError(
        "CUDA error: no kernel image is available for execution on the device\nCUDA kernel "
        "errors might be asynchronously reported at some other API call..."
    )


#: a fault of the device inside the step -> what installs it at the ``at``-th call (0: the
#: first group's): the allocator failing while the step makes its device tables, or the
#: kernel failing to launch (a kernel cached for another architecture)
DEVICE_FAULTS = {
    "out of memory": ("_pointer_table", _out_of_memory, torch.OutOfMemoryError),
    "kernel for another architecture": ("_launched", _no_kernel_image, plan_module.LaunchFailed),
}


def _failing_at(name: str, fail, at: int):
    """``gpu``'s function ``name``, except that its call number ``at`` (counted from 0) runs
    ``fail``; for ``_launched``, ``fail`` takes the kernel's place (the launch's own handling
    runs)."""
    real, calls = getattr(gpu, name), [0]

    def call(*args, **kwargs):
        calls[0] += 1
        if calls[0] - 1 != at:
            return real(*args, **kwargs)
        if name == "_launched":
            return real(fail, *args[1:], **kwargs)
        return fail(*args, **kwargs)

    return call


_FAULT_CASES = [(f, p, at) for f in DEVICE_FAULTS for p in ("general", "steady") for at in (0, 1)]
_FAULT_IDS = [f"{f}-{p}-group-{at}" for f, p, at in _FAULT_CASES]


@pytest.mark.parametrize(("fault", "path", "at"), _FAULT_CASES, ids=_FAULT_IDS)
def test_a_device_fault_inside_the_step_is_one_line_and_leaves_the_state(
    fault, path, at, interpreted, tmp_path
):
    """A CUDA out-of-memory while the step makes its device tables, or a kernel that does not
    launch on this device (:func:`_device_fault`), under Triton's interpreter."""
    _device_fault(fault, path, at, "cpu", tmp_path)


def _device_fault(fault: str, path: str, at: int, device: str, tmp_path) -> None:
    """The fault at group ``at``'s tables or launch, on ``path`` (the general step, the steady
    one): the error of its kind in one line naming the group, the step counts put back, the
    parameters and state as they were (no group moved where the fault came before any launch:
    the steady step makes every group's tables first; where a group had launched before, the
    line says so), a checkpoint saved before the step loads as it was saved, and the next
    step is the step of a run that never failed."""
    name, fail, kind = DEVICE_FAULTS[fault]
    ps = [torch.nn.Parameter(p.detach().to(device)) for p in _params(torch.float32, (5, 600))]
    ref_ps = [torch.nn.Parameter(p.detach().clone()) for p in ps]

    def make(params):
        return optim.AdamW([{"params": params[:1]}, {"params": params[1:], "lr": 3e-3}], lr=1e-2)

    opt, ref = make(ps), make(ref_ps)
    g = torch.Generator().manual_seed(5)

    def new_grads():  # new addresses at every step (zero_grad(set_to_none=True))
        for a, b in zip(ps, ref_ps, strict=True):
            b.grad = torch.randn(b.shape, generator=g).to(device)
            a.grad = b.grad.clone()

    route = gpu.interpret_on_cpu if device == "cpu" else contextlib.nullcontext
    with route():
        for _ in range(2):  # the first general, the second steady
            new_grads()
            opt.step()
            ref.step()
        torch.save({"opt": opt.state_dict(), "params": ps}, tmp_path / "ckpt.pt")
        params, state = [p.detach().clone() for p in ps], copy.deepcopy(opt.state_dict())
        new_grads()
        if path == "general":
            opt._fused.steady.clear()
        with (
            mock.patch.object(gpu, name, _failing_at(name, fail, at)),
            pytest.raises(kind) as info,
        ):
            opt.step()
        said = str(info.value)
        assert "\n" not in said and f"param group {at}" in said, said
        # group 0 launched before group 1 failed: the general step updates groups in turn,
        # the steady one launches them in turn once every group's tables are made
        moved = at == 1 and (path == "general" or kind is not torch.OutOfMemoryError)
        if moved:
            assert "param group 0 took the step; param group 1 did not" in said, said
            ref.step()
            assert torch.equal(ps[0], ref_ps[0]) and torch.equal(ps[1], params[1])
        else:
            assert "the parameters and optimizer state are as before the step" in said, said
            for a, b in zip(ps, params, strict=True):
                assert torch.equal(a, b)
            _same_state(opt.state_dict(), state)
        assert [gr["step"] for gr in opt.param_groups] == ([3, 2] if moved else [2, 2])
        saved = torch.load(tmp_path / "ckpt.pt", weights_only=False)
        _same_state(saved["opt"], state)
        if not moved:  # the next step is a run's that never failed
            opt.step()
            ref.step()
            for a, b in zip(ps, ref_ps, strict=True):
                assert torch.equal(a, b)


def _same_state(a: dict, b: dict) -> None:
    assert a["param_groups"] == b["param_groups"]
    for i, entries in b["state"].items():
        for k, v in entries.items():
            assert torch.equal(torch.as_tensor(a["state"][i][k]), torch.as_tensor(v)), (i, k)


def _clipped_adam(params, **kw) -> optim.Optimizer:
    rule = optim.chain(optim.clip_by_global_norm(1.0), optim.scale_by_adam(),
                       optim.scale_by_lr(1e-2))  # fmt: skip
    return optim.Optimizer(params, rule, **kw)


#: a root, momentum's buffer made from the first gradient, a sign; a global-norm clip run
#: with torch ops before the launch (its output handed to the kernel as the gradients)
LAYOUTS = [
    ("adamw", dict(lr=1e-2, weight_decay=0.1)),
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("lion", dict(lr=1e-3)),
    (_clipped_adam, {}),
]


@pytest.mark.parametrize(
    ("name", "kw"), LAYOUTS, ids=[getattr(c[0], "__name__", c[0]).strip("_") for c in LAYOUTS]
)
def test_channels_last_and_transposed_parameters_take_the_triton_step(name, kw, interpreted):
    """Dense parameters that are not contiguous (a channels_last weight, a transpose), as
    torch's fused steps take them: the kernel walks each tensor in memory order, with its
    state made in the parameter's layout, so the parameters and state are bit for bit those
    of the same values laid out contiguously; no eager step (it ran eagerly, announced, and
    fused=True refused it), and the steady step where the chain has one. A gradient laid out
    unlike its parameter is then refused, also after steady steps."""
    strided = laid_out_params(torch.float32)
    plain = [p.detach().clone(memory_format=torch.contiguous_format) for p in strided]
    plain = [torch.nn.Parameter(p) for p in plain]
    make = name if callable(name) else optim.get(name)
    opts = [make(strided, fused=True, **kw), make(plain, fused=True, **kw)]
    steady = []
    launch = gpu.TritonPlan.launch
    with (
        gpu.interpret_on_cpu(),
        warnings.catch_warnings(),
        mock.patch.object(gpu.TritonPlan, "launch", autospec=True, side_effect=launch) as spy,
    ):
        warnings.simplefilter("ignore")  # the clip's torch ops are announced
        warnings.filterwarnings("error", message=".*eagerly")
        for t in range(4):
            for ps, opt in zip((strided, plain), opts, strict=True):
                opt.zero_grad()
                layout_loss(ps, t).backward()
                opt.step()
            steady.append(spy.call_count)
        before = [p.detach().clone() for p in strided]
        strided[0].grad = strided[0].grad.contiguous()  # same values, another layout
        with pytest.raises(ValueError, match="contiguous, or dense with their parameter's"):
            opts[0].step()
    # both optimizers steady in steps 3 and 4, where the chain is one launch
    assert steady[0] == 0 and steady[3] - steady[1] == (0 if callable(name) else 4)
    assert strided[0].stride() == (27, 1, 9, 3) and strided[1].stride() == (1, 7)
    # the clip's norm, a torch reduction, rounds by the layout it sums in (as torch's own
    # clip_grad_norm_): there, within rounding (a gradient read out of order is far off)
    same = (
        torch.equal
        if not callable(name)
        else functools.partial(torch.allclose, rtol=1e-5, atol=1e-7)
    )
    for a, b, c in zip(strided, plain, before, strict=True):
        assert same(a, b) and torch.equal(a, c)
        for key, v in opts[0].state[a].items():
            assert v.ndim == 0 or v.stride() == a.stride(), key
            assert same(v, opts[1].state[b][key]), key


@pytest.mark.parametrize("fused", [None, True], ids=["default", "fused"])
def test_a_group_of_several_dtypes_is_one_launch_per_dtype(fused, interpreted):
    """A GPU group in mixed precision (16-bit weights, float32 and float64 tensors) is one
    launch per dtype, as torch's fused steps group tensors (it ran eagerly, or was refused
    with fused=True), bit for bit as the same tensors in one group per dtype."""
    dtypes = [torch.bfloat16, torch.float32, torch.bfloat16, torch.float64, torch.float32]

    def model() -> list[torch.nn.Parameter]:
        g = torch.Generator().manual_seed(0)
        return [torch.nn.Parameter(torch.randn(9 + i, generator=g).to(dt))
                for i, dt in enumerate(dtypes)]  # fmt: skip

    ps, ref_ps = model(), model()
    opt = optim.AdamW(ps, lr=1e-2, fused=fused)
    groups = [[p for p in ref_ps if p.dtype == dt] for dt in dict.fromkeys(dtypes)]
    ref = optim.AdamW([{"params": g} for g in groups], lr=1e-2, fused=True)
    g = torch.Generator().manual_seed(1)
    launches = []
    launch = gpu.TritonPlan._launch
    with gpu.interpret_on_cpu(), warnings.catch_warnings(), mock.patch.object(
        gpu.TritonPlan, "_launch", lambda self, *a: launches.append(1) or launch(self, *a)
    ):  # fmt: skip
        warnings.simplefilter("error")  # no eager step announced
        step_side_by_side(opt, ref, ps, ref_ps, g, steps=3)
    assert len(launches) == 2 * 3 * 3  # three dtypes, both optimizers, three steps
    for a, b in zip(ps, ref_ps, strict=True):
        assert torch.equal(a, b)
        for key, value in ref.state[b].items():
            assert torch.equal(opt.state[a][key], value), key


def test_new_coefficients_never_push_the_pointer_tables_out(interpreted, monkeypatch):
    """Adam's coefficients change at every step (bias corrections): each step's table is new,
    and must not evict the device tables of pointers, which would be made, checked and copied
    to the device again every few dozen steps."""
    made = []
    tables = gpu._pointer_table
    monkeypatch.setattr(gpu, "_pointer_table", lambda *a: made.append(1) or tables(*a))
    ps = _params(torch.float32, (5, 7))
    opt = optim.Adam(ps, lr=1e-3)
    for p in ps:
        p.grad = torch.ones_like(p)  # the same gradients' storage at every step
    with gpu.interpret_on_cpu():
        for _ in range(150):
            opt.step()
    assert len(made) == 1


def test_new_gradients_make_only_the_pointer_table(interpreted, monkeypatch):
    """``zero_grad(set_to_none=True)`` gives every gradient a new address at every step (a
    Hugging Face Trainer's loop): the step makes and copies the small table of pointers again,
    never the table of blocks, which depends on the sizes alone. (On an H200 the tiny GPT's
    AdamW step took 6.3 ms against torch's fused 0.56 ms while the blocks' rows were made
    again in Python at every step: 23k rows.)"""
    made = {"pointers": 0, "shapes": 0}
    pointers, shapes = gpu._pointer_table, gpu._shape_tables

    def count(kind, fn):
        return lambda *a: made.__setitem__(kind, made[kind] + 1) or fn(*a)

    monkeypatch.setattr(gpu, "_pointer_table", count("pointers", pointers))
    monkeypatch.setattr(gpu, "_shape_tables", count("shapes", shapes))
    ps = _params(torch.float32, (5000, 7, 3000))
    opt = optim.AdamW(ps, lr=1e-3)
    keep = []  # the old gradients stay alive: every step's gradients are at new addresses
    with gpu.interpret_on_cpu():
        for _ in range(4):
            for p in ps:
                p.grad = torch.ones_like(p)
            keep.append([p.grad for p in ps])
            opt.step()
            opt.zero_grad(set_to_none=True)
    assert made == {"pointers": 4, "shapes": 1}


@pytest.mark.parametrize(
    ("numel", "block"),
    [((1,), 1024), ((1024,), 1024), ((1025, 0, 3), 1024), ((0,), 256), ((5000, 7, 2048), 2048),
     ((0, 0, 9), 4)],
)  # fmt: skip
def test_the_blocks_table_has_one_row_per_program_instance(numel, block):
    """Row ``k`` is ``(tensor, first element)`` of program instance ``k``: every block of
    every tensor in order, none for an empty tensor."""
    sizes, blocks = gpu._shape_tables(numel, torch.device("cpu"), block)
    want = [(i, s) for i, m in enumerate(numel) for s in range(0, m, block)]
    assert sizes.tolist() == list(numel)
    assert blocks.dtype is torch.int64 and blocks.reshape(-1, 2).tolist() == [list(r) for r in want]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_the_coefficient_table_rounds_as_torch_tensor(dtype):
    values = (
        (0.1, -0.0, 1e-40, 3.4028235677973366e38, 3.5e38),
        (float("inf"), -1e300, 5e-324, 2.0**-149, 1 / 3),
    )
    got, want = gpu._host_table(values, dtype), torch.tensor(values, dtype=dtype)
    assert got.dtype is dtype and got.shape == want.shape and got.is_contiguous()
    bits = torch.int64 if dtype == torch.float64 else torch.int32
    assert torch.equal(got.view(bits), want.view(bits))


def test_a_step_does_not_search_the_import_path(interpreted, monkeypatch):
    """Whether triton is installed is asked once per process: the search cost ~60 µs, at every
    step of every GPU group (a fifth of the path's host time with 100 tensors in two groups)."""
    searched = []
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: searched.append(name) or find_spec(name, *a))  # fmt: skip
    gpu.triton_available.cache_clear()
    ps = _params(torch.float32, (300, 300))
    opt = optim.AdamW([{"params": ps[:1]}, {"params": ps[1:]}], lr=1e-2)
    with gpu.interpret_on_cpu():
        for _ in range(3):
            for p in ps:
                p.grad = torch.ones_like(p)
            opt.step()
    assert searched.count("triton") == 1, searched


def _snapshot(opt: optim.Optimizer, ps: list) -> tuple[list, list]:
    """The parameters and every state entry (tensors and lists of tensors), copied."""
    return [p.detach().clone() for p in ps], [copy.deepcopy(dict(opt.state[p])) for p in ps]


def _unchanged(opt: optim.Optimizer, ps: list, snap: tuple[list, list]) -> None:
    params, states = snap
    assert all(torch.equal(a, b) for a, b in zip(ps, params, strict=True))
    for i, (p, old) in enumerate(zip(ps, states, strict=True)):
        now = opt.state[p]
        assert now.keys() == old.keys(), i
        for key, value in old.items():
            a, b = (value, now[key]) if isinstance(value, list) else ([value], [now[key]])
            for x, y in zip(a, b, strict=True):
                assert x.dtype == y.dtype and torch.equal(x, y), (i, key)


@pytest.mark.parametrize(
    ("sd", "key", "bad", "says"),
    [
        (None, "exp_avg", lambda v: v.double(), r"param group 1 is a torch\.float64 tensor"),
        (None, "exp_avg_sq", lambda v: torch.zeros(8200)[::2], r"param group 1 is a non-contig"),
        ("int8", "exp_avg", lambda v: v.float(), r"param group 1 is a torch\.float32 tensor"),
    ],
    ids=["dtype", "strided", "int8-codes"],
)
def test_a_later_groups_unreadable_state_is_refused_before_any_group_moves(
    sd, key, bad, says, interpreted
):
    """Two param groups, the second's state broken: refused in the step's first phase, with
    the parameters and gradients. The launch's own check came in the second group's update,
    after the first group had moved."""
    ps = _params(torch.float32, (4100, 4100, 300))
    opt = optim.AdamW([{"params": ps[:1]}, {"params": ps[1:]}], lr=1e-2, state_dtype=sd,
                      fused=True)  # fmt: skip
    for p in ps:
        p.grad = torch.ones_like(p)
    with gpu.interpret_on_cpu():
        opt.step()
        opt.state[ps[1]][key] = bad(opt.state[ps[1]][key])
        snap = _snapshot(opt, ps)
        with pytest.raises(ValueError, match=says):
            opt.step()
    _unchanged(opt, ps, snap)
    assert [g["step"] for g in opt.param_groups] == [1, 1]


def test_a_prefix_does_not_move_before_the_kernels_state_is_refused(interpreted):
    """Shampoo's preconditioning (torch ops before the kernel) updates its own state in
    place: with the kernel's momentum buffer broken, the step is refused before Shampoo's
    statistics move (they had moved: its grafting momentum changed)."""
    gen = torch.Generator().manual_seed(3)
    ps = [torch.nn.Parameter(_randn((64, 70), torch.float32, gen)) for _ in range(2)]
    rule = optim.chain(optim.scale_by_shampoo(), optim.trace(momentum=0.9),
                       optim.scale_by_lr(lr=1e-2))  # fmt: skip
    opt = optim.Optimizer(ps, rule)
    for p in ps:
        p.grad = _randn((64, 70), torch.float32, gen)
    run, prefixes = gpu.TritonPlan.run, []
    with (
        gpu.interpret_on_cpu(),
        warnings.catch_warnings(),
        mock.patch.object(gpu.TritonPlan, "run", autospec=True) as spy,
    ):
        warnings.simplefilter("ignore")  # the prefix's announcement
        spy.side_effect = lambda self, *a: prefixes.append(self.prefix) or run(self, *a)
        opt.step()
        assert [p.rules[0].name for p in prefixes] == ["scale_by_shampoo"]  # torch ops, launch
        opt.state[ps[1]]["momentum_buffer"] = opt.state[ps[1]]["momentum_buffer"].double()
        snap = _snapshot(opt, ps)
        with pytest.raises(ValueError, match=r"'momentum_buffer' of parameter 1 of param group 0"):
            opt.step()
    _unchanged(opt, ps, snap)


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_triton_int8_codes_at_and_beside_every_threshold(signed, interpreted):
    """The kernel's 8-bit code of each threshold of the map and of its float32 neighbours is
    ``bucketize`` over the thresholds (right=True), computed here from the definition: blocks
    whose maximum is 1 (so the scaled value is the value), Adam with beta1 = 0 (its first
    moment is the gradient, exactly) for the signed map; for the unsigned one the second moment
    with beta2 = 0 is the gradient's square, and the reference takes that square too."""
    t = lowbit.thresholds(signed)
    near = torch.stack([t, torch.nextafter(t, -t.abs() - 1), torch.nextafter(t, t.abs() + 1)])
    values = near.reshape(-1)
    if not signed:  # the gradient whose square is each value (the square is what is coded)
        values = values[values > 0].sqrt()
    values = torch.cat([values, -values]) if signed else values
    per = 255  # each block: 1.0, then 255 values
    blocks = -(-values.numel() // per)
    x = torch.zeros(max(4096, 256 * blocks))
    for k in range(blocks):
        chunk = values[k * per : (k + 1) * per]
        x[256 * k] = 1.0
        x[256 * k + 1 : 256 * k + 1 + chunk.numel()] = chunk
    key = "exp_avg" if signed else "exp_avg_sq"
    betas = (0.0, 0.999) if signed else (0.9, 0.0)
    codes = {}
    for backend in ("eager", "triton"):
        w = torch.nn.Parameter(torch.zeros_like(x))
        w.grad = x.clone()
        opt = optim.Adam([w], lr=1e-3, betas=betas, state_dtype="int8", fused=backend != "eager")
        route = gpu.interpret_on_cpu() if backend == "triton" else contextlib.nullcontext()
        with route:
            opt.step()
        codes[backend] = opt.state[w][key].clone()
        assert torch.equal(opt.state[w][f"{key}_scale"][:blocks], torch.ones(blocks))
    moment = x if signed else x * x
    want = torch.bucketize(moment, t, right=True).to(torch.uint8)
    assert torch.equal(codes["eager"], want)
    assert torch.equal(codes["triton"], want)
    assert len(set(want.tolist())) >= 250


class _Launches:
    def __init__(self, kernel):
        self.kernel, self.grids = kernel, []

    def __getitem__(self, grid):
        self.grids.append(grid)
        return self.kernel[grid]


@pytest.mark.parametrize("name", FORMS)
def test_one_launch_per_group_over_tensors_of_odd_sizes(name, interpreted, monkeypatch):
    """Two param groups of tensors of odd sizes: each group one launch per step, one
    program instance per (tensor, block), every tensor within 1 ulp of eager."""
    compiled = gpu._compile
    seen: list[_Launches] = []

    def counting(source, kernel_name):
        seen.append(_Launches(compiled(source, kernel_name)))
        return seen[-1]

    monkeypatch.setattr(gpu, "BLOCK", 512)
    monkeypatch.setattr(gpu, "_KERNELS", {})
    monkeypatch.setattr(gpu, "_compile", counting)
    assert _per_step(name, torch.float32, False, steps=3, sizes=SIZES, groups=2) == 0.0
    (launches,) = seen
    blocks = [sum(-(-n // 512) for n in SIZES[:2]), sum(-(-n // 512) for n in SIZES[2:])]
    assert launches.grids == [(b,) for b in blocks] * 3


@pytest.mark.parametrize("name", FORMS)
def test_complex_parameters_step_as_pairs_of_reals(name, interpreted, monkeypatch):
    launched = []  # every launch of a kernel, in a step of the general path or the steady one
    launch = gpu.TritonPlan._launch
    monkeypatch.setattr(
        gpu.TritonPlan, "_launch", lambda self, *a: launched.append(1) or launch(self, *a)
    )
    g = torch.Generator().manual_seed(4)
    a = torch.nn.Parameter(torch.randn(7, dtype=torch.complex64, generator=g))
    b = torch.nn.Parameter(a.detach().clone())
    tri, ref = optim.get(name)([a], **_kw(name)), optim.get(name)([b], fused=False, **_kw(name))
    for _ in range(5):
        b.grad = torch.randn(7, dtype=torch.complex64, generator=g)
        a.grad = b.grad.clone()
        with gpu.interpret_on_cpu():
            tri.step()
        with _ieee_sqrt():
            ref.step()
    assert len(launched) == 5 and all(v.is_complex() for v in tri.state[a].values() if v.ndim)
    assert torch.equal(a, b)


def test_the_triton_step_counts_as_an_in_place_change_for_autograd(interpreted):
    """The kernel writes the parameters through raw pointers: it tells autograd they changed,
    as torch's own in-place (and fused) steps do, so a graph that saved them refuses to
    backpropagate instead of giving a gradient at the old values."""
    w = torch.nn.Parameter(torch.ones(4))
    opt = optim.Adam([w])
    w.grad = torch.ones(4)
    with gpu.interpret_on_cpu():
        opt.step()
        loss = (w * w).sum()  # saves w for backward
        before = w._version
        w.grad = torch.ones(4)
        opt.step()
    assert w._version > before and not torch.equal(w, torch.ones(4))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


class _NoForm(base.Rule):
    """A rule without a form (or fused C): -0.5 g."""

    name = "no_form_rule"
    local = True

    def update(self, grads, state, params, hyper):
        return [g * -0.5 for g in grads], state


def test_a_rule_without_a_form_runs_eagerly_announced_once(interpreted):
    w = torch.nn.Parameter(torch.ones(3))
    with warnings.catch_warnings():  # the CPU backends' own announcement, at construction
        warnings.simplefilter("ignore")
        opt = optim.Optimizer([w], base.chain(_NoForm()))
    _announce.forget()
    with pytest.warns(RuntimeWarning, match="no_form_rule has no form"), gpu.interpret_on_cpu():
        w.grad = torch.ones(3)
        opt.step()
    with warnings.catch_warnings(), gpu.interpret_on_cpu():
        warnings.simplefilter("error")
        w.grad = torch.ones(3)
        opt.step()
    assert torch.equal(w.detach(), torch.zeros(3))


def test_fused_true_on_the_gpu_path_refuses_a_rule_without_a_form(interpreted):
    w = torch.nn.Parameter(torch.ones(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = optim.Optimizer([w], base.chain(_NoForm()))
    opt.fused = True  # as on a CUDA device, where fused=True is not refused at construction
    w.grad = torch.ones(3)
    refused = r"fused=True\) on cpu: param group 0: no_form_rule has no form"
    with pytest.raises(ValueError, match=refused), gpu.interpret_on_cpu():
        opt.step()
    assert torch.equal(w.detach(), torch.ones(3))


def _clipped_lion():
    return base.chain(optim.clip_by_global_norm(0.5), optim.scale_by_lion(), optim.scale_by_lr())


#: chains whose first rules are not element-local (a group's norm, a matrix's roots), a
#: factory each: those rules run with torch ops, the rest of the chain in the kernel
PREFIXED = {
    "clip_by_global_norm+lion": lambda ps: optim.Optimizer(ps, _clipped_lion(), lr=1e-2),
    "shampoo": lambda ps: optim.get("shampoo")(ps, lr=1e-2, weight_decay=0.1),
}


@pytest.mark.parametrize("name", PREFIXED)
def test_a_prefix_that_is_not_element_local_runs_with_torch_ops_then_one_launch(name, interpreted):
    """Five steps of matrices in two tensors: the prefix's torch ops, then one launch of the
    kernel of the rest of the chain; bit for bit the eager backend (IEEE root), announced
    once, the state the eager backend keeps."""
    g = torch.Generator().manual_seed(3)
    start = [torch.randn(6, 5, generator=g), torch.randn(4, 3, generator=g)]
    ours = [torch.nn.Parameter(t.clone()) for t in start]
    theirs = [torch.nn.Parameter(t.clone()) for t in start]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the CPU backends' announcements
        tri, ref = PREFIXED[name](ours), PREFIXED[name](theirs)
        ref.fused = False
    _announce.forget()
    launched = []
    run = gpu.TritonPlan.run
    with (
        warnings.catch_warnings(record=True) as said,
        mock.patch.object(gpu.TritonPlan, "run", autospec=True) as spy,
    ):
        warnings.simplefilter("always")
        spy.side_effect = lambda self, *a: launched.append(self.prefix) or run(self, *a)
        for _ in range(5):
            # the prefix runs forms eagerly too (Shampoo's grafting): the same root there
            _step_both(tri, ref, ours, theirs, g)
    assert len(launched) == 5 and launched[0] is not None
    prefix = [str(w.message) for w in said if "not element-local" in str(w.message)]
    assert len(prefix) == 1, prefix
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
        assert tri.state[a].keys() == ref.state[b].keys()
        for key, value in ref.state[b].items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(tri.state[a][key], value), key


def test_split_keeps_element_local_rules_without_a_form_out_of_the_prefix():
    """A rule that belongs in the kernel but has no form is not run by torch ops before it:
    the whole chain is eager (announced), fused=True refuses (the tests above)."""
    from descentlab.optim import triton_emitter as TE

    chain = base.chain(_NoForm(), optim.scale_by_lion(), optim.scale_by_lr())
    hyper = {**chain.defaults, "lr": 1e-2}
    with pytest.raises(TE.Unsupported, match="no_form_rule has no form"):
        TE.split(chain, hyper)
    assert TE.split(_clipped_lion(), {**_clipped_lion().defaults, "lr": 1e-2}) == 1
    # Muon updates the parameters itself (its adjusted learning rate): all of it is eager
    muon = optim.get("muon")([torch.nn.Parameter(torch.zeros(2, 2))], fused=False)
    hyper = {k: v for k, v in muon.param_groups[0].items() if k != "params"}
    with pytest.raises(TE.Unsupported, match="scale_by_muon has no form"):
        TE.split(muon.rule, hyper)


def test_fused_true_with_a_monitor_runs_eagerly_announced(interpreted):
    w = torch.nn.Parameter(torch.ones(3))
    opt = optim.get("lion")([w], lr=0.1, monitor=True)
    opt.fused = True  # as on a CUDA device, where fused=True is not refused at construction
    _announce.forget()
    w.grad = torch.ones(3)
    said = r"Lion\(fused=True\) runs eagerly on cpu while a monitor is attached"
    with pytest.warns(RuntimeWarning, match=said), gpu.interpret_on_cpu():
        opt.step()
    assert [r["step"] for r in opt.monitor.records] == [1]  # the eager step recorded it


def test_low_bit_state_of_a_channels_last_parameter_is_refused_on_the_triton_path(interpreted):
    """int8 blocks are cut in a parameter's logical order, the kernel's would be cut in memory
    order: fused=True refuses a channels_last parameter's low-bit state, naming why."""
    w = torch.randn(16, 32, 3, 3, generator=torch.Generator().manual_seed(0))
    p = torch.nn.Parameter(w.to(memory_format=torch.channels_last))
    p.grad = torch.ones_like(p)
    opt = optim.AdamW([p], lr=1e-2, state_dtype="int8", fused=True)
    said = r"param group 0: low-bit optimizer state needs contiguous parameters$"
    with pytest.raises(ValueError, match=said), gpu.interpret_on_cpu():
        opt.step()
    assert not opt.state


def test_a_rule_without_a_triton_form_here_says_why(interpreted, monkeypatch):
    """A rule written in the form whose program uses what the Triton emitter cannot spell
    (here a primitive, as a new one added to the form for C only would be) is refused naming
    why, not as a rule that "has no form" at all (which it said of scale_by_adam)."""
    from descentlab.optim import triton_emitter as TE

    spelled = TE.primitive
    monkeypatch.setattr(TE, "primitive", lambda op, a: None if op == "sqrt" else spelled(op, a))
    w = torch.nn.Parameter(torch.ones(3))
    w.grad = torch.ones(3)
    opt = optim.AdamW([w], fused=True)
    said = (
        r"param group 0: scale_by_adam has no Triton form at these options: no Triton form "
        r"for primitive 'sqrt'$"
    )
    with pytest.raises(ValueError, match=said), gpu.interpret_on_cpu():
        opt.step()
    assert torch.equal(w, torch.ones(3)) and not opt.state


#: the named optimizers with a Triton kernel and an ``amsgrad`` flag (drawn from the registry)
AMSGRAD = [n for n in FORMS if "amsgrad" in inspect.signature(optim.get(n)).parameters]


@pytest.mark.parametrize("name", AMSGRAD)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_amsgrad_takes_the_triton_step_bit_for_bit(name, dtype, interpreted):
    """amsgrad's maximum is state made on its first use: also where amsgrad is switched on
    mid-run (torch makes the maximum then, as zeros), the kernel makes it as zeros before
    its launch, as the C kernel does. Side by side with the eager backend (the IEEE root),
    parameters and state are bit for bit the same at every step, with no eager step. It
    stepped eagerly on CUDA before, announced."""
    assert AMSGRAD, "the registry has no optimizer with amsgrad"
    make = functools.partial(optim.get(name), **_kw(name))
    ref_ps, tri_ps = _params(dtype, SIZES), _params(dtype, SIZES)
    ref, tri = make(ref_ps, fused=False), make(tri_ps, fused=True)
    g = torch.Generator().manual_seed(4)
    for step in range(6):
        if step == 3:  # switched on mid-run: the state holds no maximum yet
            for o in (ref, tri):
                o.param_groups[0]["amsgrad"] = True
            assert all("max_exp_avg_sq" not in tri.state[p] for p in tri_ps)
        for a, b in zip(tri_ps, ref_ps, strict=True):
            b.grad = _randn(b.shape, dtype, g)
            a.grad = b.grad.clone()
        with gpu.interpret_on_cpu(), warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*eagerly")
            tri.step()
        with _ieee_sqrt():
            ref.step()
        for a, b in zip(tri_ps, ref_ps, strict=True):
            assert torch.equal(a, b), step
            assert tri.state[a].keys() == ref.state[b].keys()
            for key, value in ref.state[b].items():
                assert torch.equal(tri.state[a][key], value), (step, key)


# ------------------------------------------------------------------ on a real device
_needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def cuda(test):
    """Marked ``cuda`` (scripts/gpu_session.py runs ``-m cuda``) and skipped without a device."""
    return pytest.mark.cuda(_needs_cuda(test))


@cuda
@pytest.mark.parametrize(("fault", "path", "at"), _FAULT_CASES, ids=_FAULT_IDS)
def test_cuda_device_fault_inside_the_step_is_one_line_and_leaves_the_state(
    fault, path, at, tmp_path
):
    """:func:`_device_fault` on the device: the allocator or the launch failing there."""
    _device_fault(fault, path, at, "cuda", tmp_path)


@cuda
@pytest.mark.parametrize("name", FORMS)
def test_cuda_matches_the_eager_form_on_the_cpu(name):
    """Compiled for the device (IEEE root and quotient, no contraction into fmas): bit for bit
    per step with the CPU's eager form with the IEEE root, tensors of odd sizes in two groups."""
    assert (
        _per_step(name, torch.float32, False, steps=20, sizes=SIZES, groups=2, device="cuda") == 0
    )


@cuda
@pytest.mark.parametrize("fmt", STATE_FORMATS, ids=str)
@pytest.mark.parametrize("name", LOW_BIT)
def test_cuda_low_bit_state_is_the_eager_form_bit_for_bit(name, fmt):
    """The low-bit kernels compiled for the device: as under the interpreter."""
    _low_bit_per_step(name, fmt, "cuda")


@cuda
@pytest.mark.skipif(not F.fused_available(), reason="no C++ compiler: no fused CPU kernel")
@pytest.mark.parametrize("name", FORMS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
def test_cuda_16bit_storage_matches_the_fused_cpu_kernel(name, dtype):
    """16-bit storage, float32 compute, one rounding per stored value on the device: within
    1 ulp of the 16-bit type per step of the fused CPU kernel, as under the interpreter."""
    assert _per_step(name, dtype, True, steps=20, sizes=SIZES, groups=2, device="cuda") <= 1.0


@cuda
def test_cuda_adamax_matches_torch_on_the_device():
    """Parity with torch's CUDA Adamax (foreach): the tolerance of the CPU parity tests."""
    ref = _params(torch.float32)
    ours = [torch.nn.Parameter(p.detach().cuda()) for p in ref]
    theirs = [torch.nn.Parameter(p.detach().cuda()) for p in ref]
    a = optim.Adamax(ours, lr=1e-2, weight_decay=0.1)
    b = torch.optim.Adamax(theirs, lr=1e-2, weight_decay=0.1)
    g = torch.Generator(device="cuda").manual_seed(2)
    for _ in range(100):
        for x, y in zip(ours, theirs, strict=True):
            y.grad = torch.randn(y.shape, device="cuda", generator=g)
            x.grad = y.grad.clone()
        a.step()
        b.step()
    for x, y in zip(ours, theirs, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


@cuda
@pytest.mark.parametrize("name", FORMS)
def test_cuda_one_kernel_launch_per_group_step(name, monkeypatch):
    """Every kernel of a steady step in the profiler (benchmarks/gpu_step.py's count: kernels
    only, not the step's record_function range): one generated kernel per param group."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "benchmarks"))
    from gpu_step import launches

    params = [torch.nn.Parameter(torch.randn(n, device="cuda")) for n in SIZES]
    opt = optim.get(name)([{"params": params[:2]}, {"params": params[2:]}], **_kw(name))
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()  # compiles, makes the state
    opt.step()
    kernels, _, names = launches(opt.step)
    assert kernels == 2 and all(n.startswith("dl_") for n in names), names


@pytest.mark.process
@cuda
def test_the_interpreter_tests_pass_with_the_device_hidden():
    """This file's interpreter tests, skipped in a process that sees a device, in a child
    that does not (``CUDA_VISIBLE_DEVICES=""``, ``TRITON_INTERPRET=1`` before any import):
    the kernels interpreted on CPU tensors exactly as on a machine without a GPU."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TRITON_INTERPRET": "1"}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not cuda"]
    if importlib.util.find_spec("matplotlib") is None:
        argv.append("--noconftest")  # ../conftest.py imports matplotlib (as gpu_session)
    if torch.cuda.is_available() and importlib.util.find_spec("xdist") is not None:
        argv += ["-n", str(min(8, os.cpu_count() or 1))]  # the device machine's cores
    done = subprocess.run(
        [*argv, __file__], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    assert done.returncode == 0 and " passed" in tail, done.stdout[-3000:]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_the_cuda_benchmark_refuses_in_one_line_without_a_device(monkeypatch):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "benchmarks"))
    import step

    with pytest.raises(SystemExit, match=r"^step.py --device cuda: no CUDA device here \("):
        step.main(["--device", "cuda"])
