"""Sums over whole tensors run in the fused kernels: a per-tensor total may read the
parameter (LAMB's trust ratio ``||x|| / ||r + lambda x||``) and a rule written in the form may
sum a value of its own before its state takes it (MARS's per-tensor clip of its corrected
gradient). Both examples (``examples/optimizers/lamb.py`` and ``mars.py``, written with the
public API only) match a float64 loop written here from each paper, fused, eager and in Triton
under the interpreter; both stepped eagerly before (``fused=True`` refused LAMB, MARS's form was
refused). A rule that sums is never stacked with other runs nor put on shards, whatever it
says; where a chain cannot fuse, the refusal says which rule and why."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from test_wrapper_fused import _run, unmasked  # (unmasked: an eager update only)

from descentlab import optim
from descentlab.experiments.optimizer_check import check_optimizer
from descentlab.optim import form as F
from descentlab.optim.fused import fused_available

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "optimizers"
needs_compiler = pytest.mark.skipif(not fused_available(), reason="no C++ compiler")


def _module(name):
    made = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(made)
    made.loader.exec_module(mod)
    return mod


lamb, mars = _module("lamb"), _module("mars")


# -- float64 loops from the papers ---------------------------------------------------------
def lamb_loop(w, grads, lr, betas, eps, weight_decay, **_):
    """You et al. 2019, Algorithm 2 (phi the identity): Adam's bias-corrected ratio r, then
    x -= lr * ||x|| / ||r + lambda x|| * (r + lambda x), the ratio 1 where a norm is 0."""
    b1, b2 = betas
    m, v = torch.zeros_like(w), torch.zeros_like(w)
    for t, g in enumerate(grads, 1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        r = (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
        u = r + weight_decay * w
        wn, un = float(w.norm()), float(u.norm())
        w = w - lr * (wn / un if wn > 0 and un > 0 else 1.0) * u
    return w


def mars_loop(w, grads, lr, betas, gamma, eps, weight_decay, **_):
    """Yuan et al. 2024, Algorithm 2 (MARS-AdamW): c = g + gamma * b1 / (1 - b1) * (g - g_prev)
    (g_prev = g at the first step: x_1 = x_0), c / ||c|| where ||c|| > 1, then AdamW's step."""
    b1, b2 = betas
    m, v, prev = torch.zeros_like(w), torch.zeros_like(w), grads[0]
    for t, g in enumerate(grads, 1):
        c = g + gamma * b1 / (1 - b1) * (g - prev)
        if float(c.norm()) > 1:
            c = c / c.norm()
        m, v = b1 * m + (1 - b1) * c, b2 * v + (1 - b2) * c * c
        step = (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
        w, prev = w - lr * (step + weight_decay * w), g
    return w


CASES = {
    "lamb.py:LAMB": (lamb_loop, {"lr": 0.01, "weight_decay": 0.1}),
    "mars.py:MARS": (mars_loop, {"lr": 0.01, "weight_decay": 0.1, "gamma": 0.05}),
}
CHEAP = ("fused", "reference", "resume", "groups", "refusals")


@needs_compiler
@pytest.mark.parametrize("spec", CASES)
def test_the_examples_pass_every_cheap_check_and_their_papers_loop(spec):
    loop, kw = CASES[spec]
    lines = check_optimizer(str(EXAMPLES / spec), [*CHEAP, "loop"], loop, **kw)
    assert not [str(x) for x in lines if x.ok is False]
    assert [x.check for x in lines if x.ok][-1] == "your float64 loop"


def _steps(cls, start, grads, **kw):
    return _run(cls, start, grads, **kw)[1]


def _data(dtype, scale, steps=7):
    g = torch.Generator().manual_seed(11)
    shapes = [(13, 5), (301,), (4,)]
    start = [torch.randn(s, generator=g, dtype=dtype) for s in shapes]
    start[2].zero_()  # a tensor at zero: LAMB's ratio is 1 there
    grads = [[torch.randn(s, generator=g, dtype=dtype) * scale for s in shapes]
             for _ in range(steps)]  # fmt: skip
    return start, grads


@needs_compiler
@pytest.mark.parametrize("scale", [1.0, 1e-3], ids=["clipped", "unclipped"])
@pytest.mark.parametrize("spec", CASES)
def test_fused_and_eager_float64_steps_are_the_papers_loop(spec, scale):
    """Float64 parameters, gradients whose corrected norm is above 1 (MARS clips) and below
    it (MARS does not): the fused and the eager step are each the paper's loop, per tensor."""
    loop, kw = CASES[spec]
    mod, cls_name = (lamb, "LAMB") if spec.startswith("lamb") else (mars, "MARS")
    start, grads = _data(torch.float64, scale)
    full = {**_defaults(getattr(mod, cls_name)), **kw}
    for fused in (True, False):
        got = _steps(getattr(mod, cls_name), start, grads, fused=fused, **kw)
        for i, w in enumerate(got):
            want = loop(start[i], [gs[i] for gs in grads], **full)
            torch.testing.assert_close(w, want, rtol=1e-12, atol=1e-14)


def _defaults(cls):
    import inspect

    return {
        k: p.default
        for k, p in inspect.signature(cls.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


@needs_compiler
@pytest.mark.parametrize("spec", CASES)
def test_triton_under_the_interpreter_steps_as_the_fused_kernel(spec, monkeypatch):
    pytest.importorskip("triton")
    from descentlab.optim import gpu

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    mod, cls_name = (lamb, "LAMB") if spec.startswith("lamb") else (mars, "MARS")
    cls, kw = getattr(mod, cls_name), CASES[spec][1]
    start, grads = _data(torch.float32, 1.0, steps=4)
    fused = _steps(cls, start, grads, fused=True, **kw)
    ws = [torch.nn.Parameter(t.clone()) for t in start]
    opt = cls(ws, **kw)
    for gs in grads:
        for w, g in zip(ws, gs, strict=True):
            w.grad = g.clone()
        with gpu.interpret_on_cpu():
            opt.step()
    for a, b in zip(ws, fused, strict=True):
        torch.testing.assert_close(a.detach(), b, rtol=1e-5, atol=1e-6)


def test_a_rule_that_sums_is_neither_stacked_nor_sharded_whatever_it_says():
    """Its sum over a stacked tensor would mix the runs, over a shard be another tensor's."""
    from descentlab.optim.mixing import stacks

    rule = mars.scale_by_mars()
    rule.shard_local = True  # said wrongly: what the form computes decides
    assert not rule.steps_shards()
    assert not optim.adam_chain(rule).shard_local
    opt = mars.MARS([torch.nn.Parameter(torch.ones(3))])
    opt.rule.rules[0].shard_local = True
    assert "scale_by_mars" in stacks(opt)  # (the vectorized engine trains such runs alone)


class _after(optim.Wrapper):
    name = "after"
    update = lamb.scale_by_trust_ratio.update
    form = lamb.scale_by_trust_ratio.form


class _summing_later(F.FormRule):
    """A form rule's sum over its input, placed after another rule."""

    name = "summing_later"

    def form(self, f, hyper):
        f.out(f.g * f.total(f.g * f.g, lambda n, s: 1 / (1 + s)))


#: a chain that cannot fuse -> what its refusal says (which rule, why, what to do)
REFUSALS = {
    "wrapper without form": (
        lambda: optim.chain(unmasked(optim.scale_by_adam()), optim.scale_by_lr()),
        r"unmasked has no form: a Wrapper written as update\(\) only; write its math per "
        r"element as form\(f, u\)",
    ),
    "inner without form": (
        lambda: optim.chain(_after(optim.scale_by_lbfgs()), optim.scale_by_lr()),
        "after has no form: its inner rule scale_by_lbfgs is not written in the form",
    ),
    "plain rule": (
        lambda: optim.chain(optim.scale_by_lbfgs(), optim.scale_by_lr()),
        r"scale_by_lbfgs has no form: a Rule written as update\(\), torch code",
    ),
    "sum after another rule": (
        lambda: optim.chain(optim.clip_by_value(0.5), _summing_later(), optim.scale_by_lr()),
        r"summing_later reads its whole input before the kernel \(a sum over each tensor "
        r"\(f.total\), computed from the raw gradients: it fuses first in its chain, not "
        r"after clip_by_value\)",
    ),
}


@needs_compiler
@pytest.mark.parametrize("name", REFUSALS)
def test_a_chain_that_cannot_fuse_is_refused_saying_what_and_why(name):
    make, says = REFUSALS[name]
    with pytest.raises(ValueError, match=says):
        optim.Optimizer([torch.nn.Parameter(torch.ones(3))], make(), fused=True)


@needs_compiler
def test_a_sum_may_come_from_a_form_rule_first_in_its_chain():
    w = torch.nn.Parameter(torch.ones(3))
    opt = optim.Optimizer([w], optim.chain(_summing_later(), optim.scale_by_lr(0.5)), fused=True)
    w.grad = torch.tensor([1.0, 2.0, 2.0])
    opt.step()
    torch.testing.assert_close(w.detach(), 1 - 0.5 * torch.tensor([1.0, 2.0, 2.0]) / 10)


def _program(mod, cls_name):
    from descentlab.optim.program import collect

    opt = getattr(mod, cls_name)([torch.nn.Parameter(torch.zeros(3))])
    return collect(opt.rule, opt.param_groups[0], True)


def test_a_state_no_total_reaches_is_stored_by_the_first_pass_the_kernel_reads_it():
    """LAMB: Adam's moments take no total: the first pass stores them and sums ||x||^2 and
    ||u||^2 at once, the chain's kernel reads the moments it stored and writes the parameter
    alone. MARS: its moments take the clipped gradient: the kernel stores them, after a first
    pass of sums."""
    lamb_prog, mars_prog = _program(lamb, "LAMB"), _program(mars, "MARS")
    assert set(lamb_prog.arrays) == {"exp_avg", "exp_avg_sq"} and lamb_prog.written == []
    assert set(mars_prog.written) == {"prev_grad", "exp_avg", "exp_avg_sq"}


@needs_compiler
@pytest.mark.parametrize("spec", CASES)
def test_without_a_first_pass_kernel_the_eager_emitter_takes_it(spec, monkeypatch):
    """A device without a first-pass kernel (a GPU's Triton step) has the eager emitter run
    it: the same float64 steps, the paper's loop."""
    from descentlab.optim import program

    monkeypatch.setattr(program, "_PROBE_PLANS", {})
    loop, kw = CASES[spec]
    mod, cls_name = (lamb, "LAMB") if spec.startswith("lamb") else (mars, "MARS")
    start, grads = _data(torch.float64, 1.0)
    full = {**_defaults(getattr(mod, cls_name)), **kw}
    got = _steps(getattr(mod, cls_name), start, grads, fused=True, **kw)
    for i, w in enumerate(got):
        want = loop(start[i], [gs[i] for gs in grads], **full)
        torch.testing.assert_close(w, want, rtol=1e-12, atol=1e-14)


@needs_compiler
def test_the_step_benchmark_puts_torchs_adamw_beside_your_own(monkeypatch, capsys):
    """``benchmarks/step.py --against adamw``: torch's AdamW columns and ratios beside an
    optimizer torch has no twin of (without it: none)."""
    monkeypatch.syspath_prepend(str(EXAMPLES.parents[1] / "benchmarks"))
    import step

    monkeypatch.setattr(step, "fused_names", lambda: (["adamw"], {}))  # (not every one probed)
    spec = str(EXAMPLES / "lamb.py:LAMB")
    rows = {}
    for against in ([], ["--against", "adamw"]):
        step.main(["--sizes", "2e3", "--repeat", "1", "--optimizers", spec, "--no-compile",
                   "--threads", "1", *against])  # fmt: skip
        line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(spec))
        rows[bool(against)] = line.split()[3:9]  # torch's three paths, then the ratios
    assert rows[False] == ["-"] * 6
    assert all(x != "-" for x in rows[True]) and rows[True][3].endswith("x")


@needs_compiler
def test_the_step_benchmark_counts_the_bytes_of_a_totals_first_pass(monkeypatch):
    """The arrays a fused step moves per element, as ``benchmarks/step.py`` counts them for its
    bandwidth columns: AdamW's 7 (p, g, m, v read; p, m, v written); LAMB's first pass reads
    g, m, v, p and writes m, v (6), its kernel reads p, m, v and writes p (4: the gradient it
    loads and never uses moves nothing); MARS's first pass reads g and the previous gradient
    (2), its kernel 5 and writes 4 -- the first passes were not counted before."""
    monkeypatch.syspath_prepend(str(EXAMPLES.parents[1] / "benchmarks"))
    import step

    made = {"adamw": (optim.AdamW, 7), "LAMB": (lamb.LAMB, 10), "MARS": (mars.MARS, 11)}
    for name, (cls, arrays) in made.items():
        p = torch.nn.Parameter(torch.randn(100))
        p.grad = torch.randn(100)
        opt = cls([p], fused=True)
        opt.step()
        assert step.bytes_per_step(opt, 1) == 4 * arrays, name


@needs_compiler
def test_a_kernel_prefetches_only_the_arrays_it_moves():
    """Where the kernel prefetches (Intel's choice, :func:`~descentlab.optim.c_emitter.
    software_prefetch`), it does so for the arrays its statements use: LAMB's kernel loads
    the gradient and never uses it (its first pass did), so it prefetches p, m and v, not
    the gradient's 4 bytes a parameter; AdamW's and MARS's use the gradient and prefetch it."""
    for cls, has_g in ((optim.AdamW, True), (lamb.LAMB, False), (mars.MARS, True)):
        p = torch.nn.Parameter(torch.randn(100))
        p.grad = torch.randn(100)
        opt = cls([p], fused=True)
        opt.step()
        (plan,) = [x for x in opt._fused.plans.values() if x is not None]
        src = plan.c.source(torch.float32, prefetch=True)
        assert ("__builtin_prefetch(a_g " in src) is has_g, cls.__name__
        assert "__builtin_prefetch(a_p " in src, cls.__name__
