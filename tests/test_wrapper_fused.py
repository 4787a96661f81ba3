"""A ``Wrapper`` runs fused where its parts are: Cautious written once (its eager ``update``
and its ``form`` per element, ``examples/optimizers/cautious_adamw.py``) around Adam's and
Lion's rules -- both written in the form -- is stepped by the chain's C kernel (it stepped
eagerly, ``fused=True`` refused), its per-tensor count computed by a first generated pass;
the fused step matches the eager wrapper and the paper's float64 loop (Liang et al. 2024).
What cannot run fused is told apart: a wrapper without a form, around a rule without one, or
whose sum reads a rule's output other than the raw gradient's, steps eagerly."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest
import torch
from test_check_optimizer import cautious_lion_loop, cautious_loop

from descentlab import optim
from descentlab.optim.form import gt, where
from descentlab.optim.fused import fused_available
from descentlab.optim.program import NoProgram, collect, has_kernel_form

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "optimizers" / "cautious_adamw.py"
_made = importlib.util.spec_from_file_location("cautious_example", EXAMPLE)
cautious_example = importlib.util.module_from_spec(_made)
_made.loader.exec_module(cautious_example)
cautious = cautious_example.cautious

needs_compiler = pytest.mark.skipif(not fused_available(), reason="no C++ compiler")


def _data(dtype, steps=6):
    g = torch.Generator().manual_seed(5)
    shapes = [(7, 5), (301,), (1,)]
    start = [torch.randn(s, generator=g, dtype=dtype) for s in shapes]
    return start, [[torch.randn(s, generator=g, dtype=dtype) for s in shapes] for _ in range(steps)]


def _run(cls, start, grads, **kw):
    ws = [torch.nn.Parameter(t.clone()) for t in start]
    opt = cls(ws, **kw)
    for gs in grads:
        for w, g in zip(ws, gs, strict=True):
            w.grad = g.clone()
        opt.step()
    return opt, [w.detach() for w in ws]


class unmasked(optim.Wrapper):
    """A wrapper with an eager update only."""

    name = "unmasked"

    def update(self, grads, state, params, hyper):
        return self.inner_update(grads, state, params, hyper)


class after_clip(optim.Wrapper):
    """Cautious's form, but its total would sum a mask of a clipped gradient."""

    name = "after_clip"
    update = cautious.update
    form = cautious.form


def _chain(rule):
    return optim.chain(rule, optim.scale_by_lr(0.1))


@pytest.mark.parametrize(
    ("rule", "fused"),
    [
        (cautious(optim.scale_by_adam()), True),
        (cautious(optim.scale_by_lion()), True),
        (cautious(optim.trace(0.9)), True),  # any rule written in the form
        (unmasked(optim.scale_by_adam()), False),  # no form of its own: eager
        (cautious(optim.scale_by_lbfgs()), False),  # its inner rule has none
    ],
    ids=["adam", "lion", "trace", "no-form", "inner-without-form"],
)
def test_a_wrapper_has_a_kernel_form_where_its_parts_do(rule, fused):
    assert has_kernel_form(rule) is fused
    hyper = _chain(rule).defaults
    if fused:
        prog = collect(_chain(rule), hyper, True)
        assert any(c.name.endswith("total0") and c.per_tensor for c in prog.coefs)
    else:
        with pytest.raises(NoProgram):
            collect(_chain(rule), hyper, True)


def test_a_total_over_a_rules_output_other_than_the_gradient_has_no_kernel_form():
    rule = optim.chain(optim.clip_by_global_norm(1.0), after_clip(optim.scale_by_adam()),
                       optim.scale_by_lr(0.1))  # fmt: skip
    with pytest.raises(NoProgram, match="after_clip reads its whole input before the kernel"):
        collect(rule, rule.defaults, True)


@pytest.mark.parametrize("name", ["CautiousAdamW", "CautiousLion"])
def test_on_a_gpu_cautious_is_one_triton_launch_after_its_first_pass(name):
    """It was the wrapper's torch ops, then the rest of the chain in Triton."""
    from descentlab.optim.gpu import cuda_path

    opt = getattr(cautious_example, name)([torch.nn.Parameter(torch.zeros(3))])
    assert cuda_path(opt).kind == "triton"


@needs_compiler
@pytest.mark.parametrize("name", ["CautiousAdamW", "CautiousLion"])
def test_cautious_steps_fused_and_says_nothing(name):
    cls = getattr(cautious_example, name)
    start, grads = _data(torch.float32, steps=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "cautious has no fused form; ... eagerly"
        opt, _ = _run(cls, start, grads, fused=True, lr=0.01)
    assert [p for p in opt._fused.plans.values() if p is not None]


@needs_compiler
@pytest.mark.parametrize(
    ("name", "loop", "kw"),
    [
        ("CautiousAdamW", cautious_loop, {"lr": 0.01}),
        ("CautiousLion", cautious_lion_loop, {"lr": 0.01, "weight_decay": 0.1}),
    ],
)
def test_the_fused_wrapper_matches_the_eager_one_and_the_papers_loop_in_float64(name, loop, kw):
    cls = getattr(cautious_example, name)
    start, grads = _data(torch.float64)
    _, fused = _run(cls, start, grads, fused=True, **kw)
    _, eager = _run(cls, start, grads, fused=False, **kw)
    hyper = {k: v for k, v in cls([torch.zeros(1)], **kw).defaults.items() if k != "fused"}
    for i, (a, b) in enumerate(zip(fused, eager, strict=True)):
        want = loop(start[i].clone(), [gs[i] for gs in grads], **hyper)
        scale = want.abs().max()
        assert float((a - b).abs().max() / scale) <= 1e-12
        assert float((a - want).abs().max() / scale) <= 1e-12


@needs_compiler
def test_the_fused_wrapper_steps_as_the_eager_one_with_a_gradient_missing_and_resumed():
    """A tensor without a gradient at one step is left out of the count, as eagerly; a saved
    state resumes the fused step."""
    cls = cautious_example.CautiousAdamW
    start, grads = _data(torch.float64, steps=4)
    grads[1][0] = None
    out = []
    for fused in (True, False):
        ws = [torch.nn.Parameter(t.clone()) for t in start]
        opt = cls(ws, fused=fused, lr=0.01)
        for k, gs in enumerate(grads):
            if k == 2:
                sd = opt.state_dict()
                opt = cls(ws, fused=fused, lr=0.01)
                opt.load_state_dict(sd)
            for w, g in zip(ws, gs, strict=True):
                w.grad = None if g is None else g.clone()
            opt.step()
        out.append([w.detach() for w in ws])
    for a, b in zip(*out, strict=True):
        assert float((a - b).abs().max()) <= 1e-12 * float(b.abs().max())


def test_a_wrapper_form_must_set_its_output():
    class silent(optim.Wrapper):
        name = "silent"
        update = cautious.update

        def form(self, f, u):
            f.let(where(gt(u, u), u, u))

    with pytest.raises(TypeError, match="silent: its form must set its output"):
        collect(_chain(silent(optim.scale_by_adam())), optim.scale_by_adam().defaults, True)


@needs_compiler
def test_a_total_without_a_probe_kernel_for_the_device_is_summed_eagerly(monkeypatch):
    """On a device with no probe kernel (a GPU: the Triton step), the first pass is the
    wrapper's form without its stores, by the eager emitter: the same numbers."""
    from descentlab.optim import program

    cls = cautious_example.CautiousAdamW
    start, grads = _data(torch.float64)
    _, kernel = _run(cls, start, grads, fused=True, lr=0.01)
    monkeypatch.setattr(program, "_PROBE_PLANS", {})
    _, eager_pass = _run(cls, start, grads, fused=True, lr=0.01)
    for a, b in zip(kernel, eager_pass, strict=True):
        assert float((a - b).abs().max()) <= 1e-12 * float(b.abs().max())


@needs_compiler
@pytest.mark.parametrize("case", ["two groups", "batched lr"])
def test_the_fused_wrapper_steps_param_groups_and_batched_values_as_the_eager_one(case):
    cls = cautious_example.CautiousAdamW
    start, grads = _data(torch.float64, steps=4)
    out = []
    for fused in (True, False):
        ws = [torch.nn.Parameter(t.clone()) for t in start]
        if case == "two groups":
            groups = [{"params": ws[:2], "lr": 0.01}, {"params": ws[2:], "lr": 0.03}]
            opt = cls(groups, fused=fused)
        else:  # one (7, 5) tensor, a learning rate per row: the count over the whole tensor
            ws = ws[:1]
            opt = cls(ws, fused=fused, lr=torch.linspace(0.01, 0.07, 7, dtype=torch.float64))
        for gs in grads:
            for w, g in zip(ws, gs, strict=False):
                w.grad = g.clone()
            opt.step()
        plans = list(opt._fused.plans.values())
        assert (bool(plans) and all(p is not None for p in plans)) is fused
        out.append([w.detach() for w in ws])
    for a, b in zip(*out, strict=True):
        assert float((a - b).abs().max()) <= 1e-12 * float(b.abs().max())


@needs_compiler
@pytest.mark.parametrize("name", ["CautiousAdamW", "CautiousLion"])
def test_check_optimizers_fused_line_now_checks_the_wrapper(name):
    """It was skipped: "no fused step (fused=True: rule(s) cautious have no fused form)"."""
    from descentlab.experiments.optimizer_check import check_optimizer

    (line,) = check_optimizer(f"{EXAMPLE}:{name}", ["fused"])
    assert line.ok is True and line.check == "fused vs eager", line
