"""Every named optimizer under ``torch.compile``, both backends, float32 and float64.

The two patterns of compiled training code: a compiled function that calls ``opt.step()``
(PyTorch's compiled-optimizer tutorial; ``fullgraph=True``) and a whole compiled training
step (zero_grad, forward, loss, backward, step). Each compiles once for all optimizers (one
graph steps them all: torch.compile is slow on small machines) and must give the eager
iterates bit for bit, state kept (the step counter was once lost and the iterates drifted
from the eager ones, silently; the fused backend raised AttributeError).
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from descentlab import optim

pytestmark = pytest.mark.slow

#: optimizers that need step(closure): refused under torch.compile, tested below
CLOSURE = {"sam"}
BACKENDS = {"eager": False, "fused": None}
DTYPES = (torch.float32, torch.float64)
STEPS = 3


def _cases() -> list[tuple[str, str, torch.dtype]]:
    return [
        (rec.name, backend, dtype)
        for rec in optim.records()
        if rec.name not in CLOSURE
        for backend in BACKENDS
        for dtype in DTYPES
    ]


class _Setup:
    """For each case: a tiny linear model (a matrix and a vector: Muon's two paths) with its
    optimizer, built twice from the same seed (one copy stepped eagerly, one compiled)."""

    def __init__(self) -> None:
        self.cases = _cases()
        self.models: list[torch.nn.Linear] = []
        self.opts: list[torch.optim.Optimizer] = []
        self.inputs: list[torch.Tensor] = []
        for i, (name, backend, dtype) in enumerate(self.cases):
            gen = torch.Generator().manual_seed(i)
            model = torch.nn.Linear(4, 3, dtype=dtype)
            with torch.no_grad():
                for p in model.parameters():
                    p.copy_(torch.randn(p.shape, generator=gen, dtype=dtype))
            rec = optim.record(name)
            lr = (rec.lr_range[0] * rec.lr_range[1]) ** 0.5
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "no fused form: runs eagerly"
                self.opts.append(rec.factory(model.parameters(), lr=lr, fused=BACKENDS[backend]))
            self.models.append(model)
            self.inputs.append(torch.randn(5, 4, generator=gen, dtype=dtype))

    def loss(self) -> torch.Tensor:
        return sum(
            (m(x) - 1).pow(2).mean().double() for m, x in zip(self.models, self.inputs, strict=True)
        )

    def zero_grad(self) -> None:
        for opt in self.opts:
            opt.zero_grad()

    def step(self) -> None:
        for opt in self.opts:
            opt.step()

    def params(self) -> list[list[torch.Tensor]]:
        return [[p.detach().clone() for p in m.parameters()] for m in self.models]


def _pair() -> tuple[_Setup, _Setup]:
    ref = _Setup()
    return ref, copy.deepcopy(ref)


def _assert_same(got: _Setup, ref: _Setup) -> None:
    bad = []
    for case, pg, pr, og, orf in zip(
        got.cases, got.params(), ref.params(), got.opts, ref.opts, strict=True
    ):
        if not all(torch.equal(a, b) for a, b in zip(pg, pr, strict=True)):
            diff = max(float((a - b).abs().max()) for a, b in zip(pg, pr, strict=True))
            bad.append(f"{case}: parameters differ by {diff:.3g}")
        for p, q in zip(og.state, orf.state, strict=True):
            if og.state[p].keys() != orf.state[q].keys():
                bad.append(f"{case}: state {sorted(og.state[p])} vs {sorted(orf.state[q])}")
        if og.param_groups[0]["step"] != orf.param_groups[0]["step"]:
            bad.append(f"{case}: step count {og.param_groups[0]['step']}")
    assert not bad, "\n".join(bad)


@pytest.fixture
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_a_compiled_function_that_calls_step_gives_the_eager_iterates(fresh_dynamo):
    ref, got = _pair()
    hooked = []  # a step hook runs in the graph's operator, at every call
    got.opts[0].register_step_post_hook(lambda *a: hooked.append(1))
    step = torch.compile(got.step, fullgraph=True)
    for _ in range(STEPS):
        for s in (ref, got):
            s.zero_grad()
            s.loss().backward()
        ref.step()
        step()
        for s in (ref, got):  # as a scheduler would: no recompilation, the same iterates
            for opt in s.opts:
                opt.param_groups[0]["lr"] *= 0.9
    _assert_same(got, ref)
    assert len(hooked) == STEPS


def test_a_whole_compiled_training_step_gives_the_eager_step(fresh_dynamo):
    """The whole step compiled against the same compiled forward and backward followed by
    the eager step: the optimizers' part bit for bit."""
    ref, got = _pair()

    def forward_backward(s: _Setup) -> torch.Tensor:
        s.zero_grad()
        loss = s.loss()
        loss.backward()
        return loss

    def train_step(s: _Setup) -> torch.Tensor:
        loss = forward_backward(s)
        s.step()
        return loss

    fb, train = torch.compile(forward_backward), torch.compile(train_step)
    for _ in range(STEPS):
        fb(ref)
        ref.step()
        train(got)
    _assert_same(got, ref)


def _closure_optimizers() -> list[tuple[str, torch.optim.Optimizer]]:
    def ps():
        return [torch.nn.Parameter(torch.ones(2, 2))]

    out = [(name, optim.record(name).factory(ps(), lr=0.1)) for name in sorted(CLOSURE)]
    out.append(("lbfgs", optim.LBFGS(ps(), lr=0.1)))
    out.append(("nesterov-lookahead", optim.Nesterov(ps(), lr=0.1, lookahead=True)))
    return out


def _closure(opt: torch.optim.Optimizer):
    def closure():
        opt.zero_grad()
        loss = sum(p.pow(2).sum() for g in opt.param_groups for p in g["params"])
        loss.backward()
        return loss

    return closure


def test_closure_driven_steps_are_refused_under_fullgraph_compile(fresh_dynamo):
    for name, opt in _closure_optimizers():
        p = opt.param_groups[0]["params"][0]
        before = p.detach().clone()
        step = torch.compile(
            lambda opt=opt: opt.step(_closure(opt)), fullgraph=True, backend="eager"
        )
        with pytest.raises(
            Exception, match=r"step\(closure\) cannot run inside torch.compile"
        ) as e:
            step()
        assert type(opt).__name__ in str(e.value), name
        assert torch.equal(p, before), f"{name}: the refused step changed the parameters"
        torch._dynamo.reset()


def test_closure_driven_steps_run_eagerly_behind_a_graph_break(fresh_dynamo):
    """Without fullgraph, dynamo runs the refused frame eagerly: the eager step's iterates."""
    for name, opt in _closure_optimizers():
        ref = copy.deepcopy(opt)
        step = torch.compile(lambda opt=opt: opt.step(_closure(opt)), backend="eager")
        for _ in range(2):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                step()
            ref.step(_closure(ref))
        got, want = opt.param_groups[0]["params"][0], ref.param_groups[0]["params"][0]
        assert torch.equal(got, want), name
        assert not torch.equal(want, torch.ones_like(want)), f"{name} did not step"
        torch._dynamo.reset()


def test_hooks_of_a_closure_driven_step_run_once_behind_a_graph_break(fresh_dynamo):
    opt = optim.SAM([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda *a: calls.append("pre"))
    opt.register_step_post_hook(lambda *a: calls.append("post"))
    torch.compile(lambda: opt.step(_closure(opt)), backend="eager")()
    assert calls == ["pre", "post"]
