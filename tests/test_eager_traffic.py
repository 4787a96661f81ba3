"""The eager backend's memory traffic per step against torch's foreach optimizers.

For every torch-parity configuration of the registry (each named optimizer with a torch twin),
a steady eager step (``fused=False``) freshly allocates no more parameter-sized memory than
``torch.optim.<Twin>(foreach=True)``'s step and dispatches no more copies (but where the form
stores a value it names, as ASGD's average stores the new parameter): the form's
values are updated in place by their last reader and new ones go to the optimizer's scratch
memory (:class:`~descentlab.optim.form.EagerEmitter`). Counted with
:func:`descentlab.optim.eager.traffic` (aten ops under a dispatch mode), not timed.
"""

from __future__ import annotations

import pytest
import torch

from descentlab import optim
from descentlab.optim.eager import traffic
from descentlab.optim.form import FormRule, Let, Op

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
