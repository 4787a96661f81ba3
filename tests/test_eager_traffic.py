"""The eager backend's memory traffic per step against torch's foreach optimizers.

For every torch-parity configuration of the registry (each named optimizer with a torch twin),
a steady eager step (``fused=False``) freshly allocates no more parameter-sized memory than
``torch.optim.<Twin>(foreach=True)``'s step and dispatches no more copies (but where the form
stores a value it names, as ASGD's average stores the new parameter): the form's
values are updated in place by their last reader and new ones go to the optimizer's scratch
memory (:class:`~descentlab.optim.eager_emitter.EagerEmitter`). Counted with
``benchmarks/traffic.py`` (aten ops under a dispatch mode), not timed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from descentlab import optim
from descentlab.optim import form as FM
from descentlab.optim.base import Owned, Workspace
from descentlab.optim.eager_emitter import EagerEmitter
from descentlab.optim.form import FormRule, Let, Op

_SPEC = importlib.util.spec_from_file_location(
    "traffic", Path(__file__).resolve().parents[1] / "benchmarks" / "traffic.py"
)
sys.modules["traffic"] = _COUNTER = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_COUNTER)
traffic = _COUNTER.traffic

CONFIGS = [(r.name, c) for r in optim.records() for c in r.parity]
COPIES = ("copy_", "_foreach_copy_", "clone", "_foreach_clone")
#: tensors large enough that a new value is written by out= kernels, not copy + in place
SIZES = (6000, 4097, 5000, 7001)


def _params(seed: int) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for n in SIZES:
        p = torch.nn.Parameter(torch.randn(n, generator=gen))
        p.grad = torch.randn(n, generator=gen)
        out.append(p)
    return out


def _copies(t) -> int:
    """Copy kernels dispatched on parameter-sized tensors."""
    return sum(n for op, n in t.ops.items() if op in COPIES)


def _named_assignments(opt) -> int:
    """The state entries the chain's forms assign a named value (a let, possibly as one side
    of a per-tensor choice): that value lives on, so storing it is a copy by the form's
    own order."""
    count = 0
    for rule in opt.rule.rules:
        if not isinstance(rule, FormRule):
            continue
        for kind, _, expr in rule.built(opt.param_groups[0]).statements:
            sides = expr.args[1:] if isinstance(expr, Op) and expr.op in ("where", "branch") else ()
            count += kind == "assign" and any(isinstance(e, Let) for e in (expr, *sides))
    return count


@pytest.mark.parametrize(("name", "config"), CONFIGS, ids=[c.id for _, c in CONFIGS])
def test_eager_step_allocates_and_copies_no_more_than_torch_foreach(name, config):
    ours = optim.get(name)(_params(0), **config.kwargs, fused=False)
    theirs = getattr(torch.optim, config.torch)(_params(0), **config.kwargs, foreach=True)
    numel = sum(SIZES)
    grads = [p.grad.clone() for p in _params(1)]
    for step in range(1, 8):
        for opt in (ours, theirs):  # torch's nesterov step adds into the gradients
            for p, g in zip(opt.param_groups[0]["params"], grads, strict=True):
                p.grad = g.clone()
        if step in (3, 7):  # steady steps (RAdam's rectification is on from step 6)
            a, b = traffic(ours.step, numel), traffic(theirs.step, numel)
            assert a.written > 0 and b.written > 0  # the counter sees both steps
            assert a.allocated <= b.allocated, (step, a.ops, b.ops)
            assert _copies(a) <= _copies(b) + _named_assignments(ours), (step, a.ops, b.ops)
        else:
            ours.step()
            theirs.step()
    for p, q in zip(ours.param_groups[0]["params"], theirs.param_groups[0]["params"], strict=True):
        torch.testing.assert_close(p, q)  # the same optimizer was counted


def test_traffic_counts_passes_written_read_and_allocated():
    xs = [torch.ones(10), torch.ones(30)]
    ys = [torch.ones(10), torch.ones(30)]
    t = traffic(lambda: torch._foreach_add(xs, ys), 40)
    assert (t.dispatches, t.read, t.written, t.allocated) == (1, 2.0, 1.0, 1.0)
    t = traffic(lambda: torch._foreach_mul_(xs, 2.0), 40)
    assert (t.dispatches, t.read, t.written, t.allocated) == (1, 1.0, 1.0, 0.0)
    t = traffic(lambda: [x[:5].view(5) for x in xs], 40)  # views move nothing
    assert t.dispatches == 0
    t = traffic(lambda: torch.add(torch.ones(()), 1.0), 40)  # 0-dim values are left out
    assert t.dispatches == 0


def _hazards(f: FM.Form, hyper) -> None:
    """Values read by several readers, a state entry named before its assignment, an entry
    read twice by its own assignment, one read once, a per-tensor choice between a new value
    and a state entry, and the incoming update read once."""
    c = f.coef("c", lambda h, t: h["c"], uses=("c",))
    w = f.coef("w", lambda h, t: 1 - h["c"] / t, uses=("c",))
    odd = f.coef("odd", lambda h, t, e: e, per_tensor=lambda st, i: float(st["odd"][i]))
    old = f.let(f.state("a"))  # a copy: the entry changes below
    t = f.state("b") * c  # read twice: its first reader must not overwrite it
    a = f.assign("a", FM.addcmul(f.state("a") * c, f.state("a"), t, w))
    b = f.assign("b", FM.lerp(f.state("b"), t, w))  # read once: updated in place
    q = (a - old) * c  # read again after a choice that keeps some of its tensors
    pick = f.let(FM.where(odd, q, b))  # odd tensors: q's, even ones: b's own
    f.assign("d", FM.add(f.state("d"), pick, c))
    t2 = f.g * c  # the incoming update's one read: in place
    y = f.let(FM.add(t2, old, c))  # t2's first reader: must not overwrite it
    f.out((q * c + y) + (pick * a + t2))


def test_in_place_updates_keep_every_value_its_readers_need():
    """The eager emitter's in-place updates and scratch values against the form's float64
    reference (each primitive by its definition, tensor by tensor), over several steps, with
    a workspace reused from step to step and an incoming update the step may overwrite."""
    form = FM.Form()
    _hazards(form, {})
    gen = torch.Generator().manual_seed(3)
    sizes = (5, 3, 4097, 2)
    mk = lambda: [torch.randn(n, dtype=torch.float64, generator=gen) for n in sizes]  # noqa: E731
    params, state = mk(), {k: mk() for k in ("a", "b", "d")}
    state["odd"] = [torch.tensor(float(i % 2)) for i in range(len(sizes))]
    ref_state = [{k: v[i].clone() for k, v in state.items()} for i in range(len(sizes))]
    ws, hyper = Workspace(), {"c": 0.7}
    for step in range(1, 5):
        grads = mk()
        want = [
            FM.reference(form, g, p, ref_state[i], hyper, float(step))
            for i, (g, p) in enumerate(zip(grads, params, strict=True))
        ]
        ws.reset()
        state.update(_workspace=ws, _step_values=[float(step)] * len(sizes))
        em = EagerEmitter(Owned(x.clone() for x in grads), params, state, hyper)
        got = em.run(form)
        for i in range(len(sizes)):
            torch.testing.assert_close(got[i], want[i], rtol=1e-13, atol=1e-13)
            for k in ("a", "b", "d"):
                torch.testing.assert_close(state[k][i], ref_state[i][k], rtol=1e-13, atol=1e-13)


def test_scratch_memory_is_laid_out_as_the_tensors_it_is_taken_for():
    """A channels_last or transposed tensor's scratch has its strides (it was contiguous:
    torch's kernels then reorder between the two, 2-3x slower on a channels_last model's
    eager step), from the workspace and without one; the same shapes in another layout get
    views in that layout, not the last ones."""
    from _models import laid_out_params

    from descentlab.optim.base import scratch

    like = [p.detach() for p in laid_out_params(torch.float32)]
    assert not like[0].is_contiguous() and not like[1].is_contiguous()
    ws = Workspace()
    for taken in (ws.take(like), scratch({}, like), scratch({"_workspace": ws}, like)):
        ws.reset()
        assert [t.stride() for t in taken] == [t.stride() for t in like]
        assert [t.shape for t in taken] == [t.shape for t in like]
    plain = [t.contiguous() for t in like]
    ws.reset()
    assert [t.stride() for t in ws.take(plain)] == [t.stride() for t in plain]
