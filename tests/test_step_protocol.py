"""One step protocol for both kernel backends: the same state a kernel cannot step gives the
same outcome on the CPU's C kernel and on the Triton kernel (run on CPU tensors under Triton's
interpreter, ``TRITON_INTERPRET=1``, as tests/test_gpu_triton.py runs it). ``fused=None``:
the eager step, said once, where the eager backend can step it; ``fused=True``: refused in one
line, nothing changed (the step count put back); state of another dtype or size than its
parameter's: refused whatever ``fused`` asks."""

from __future__ import annotations

import contextlib
import warnings

import pytest
import torch

from descentlab import optim
from descentlab.optim import gpu
from descentlab.optim.plan import Refused


class _Sub(torch.Tensor):
    """A tensor subclass: its pointer is never handed to a kernel."""


def _strided(v: torch.Tensor) -> torch.Tensor:
    return torch.zeros(v.numel() * 2, dtype=v.dtype)[::2].view(v.shape).copy_(v)


#: a bad state entry (the second parameter's ``exp_avg`` after one good step) -> what every
#: backend does with it under fused=None and fused=True
CASES = {
    "wrong dtype": (lambda v: v.double(), "raises", "raises"),
    "non-contiguous": (_strided, "eager, said once", "raises"),
    "tensor subclass": (lambda v: v.clone().as_subclass(_Sub), "eager, said once", "raises"),
    "mismatched shape": (lambda v: torch.zeros(v.numel() + 3), "raises", "raises"),
}


@pytest.fixture
def triton_here(monkeypatch):
    """Triton's interpreter on CPU tensors (skipped where triton is missing or a CUDA device
    is visible: tests/test_gpu_triton.py runs its interpreter tests with the device hidden)."""
    pytest.importorskip("triton", reason="triton is not installed")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible: the interpreter does not engage")
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def _outcome(backend: str, fused: bool | None, bad) -> str:
    """What one step of AdamW does after ``bad`` replaced a state entry: "raises" (a
    :class:`Refused`, nothing changed), "eager, said once" (the eager backend's values, one
    warning) or "kernel"."""
    route = gpu.interpret_on_cpu if backend == "triton" else contextlib.nullcontext
    g = torch.Generator().manual_seed(0)
    start = [torch.randn(5, generator=g), torch.randn(300, generator=g)]
    ps = [torch.nn.Parameter(t.clone()) for t in start]
    ref = [torch.nn.Parameter(t.clone()) for t in start]
    opt = optim.AdamW(ps, lr=1e-2, fused=fused)
    eager = optim.AdamW(ref, lr=1e-2, fused=False)
    with route(), warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        for o, group in ((opt, ps), (eager, ref)):
            for p in group:
                p.grad = torch.ones_like(p)
            o.step()
            o.state[group[1]]["exp_avg"] = bad(o.state[group[1]]["exp_avg"])
        before = [p.detach().clone() for p in ps]
        said.clear()
        try:
            opt.step()
        except Refused as exc:
            assert isinstance(exc, ValueError) and "param group 0: " in str(exc), exc
            assert all(torch.equal(a, b) for a, b in zip(ps, before, strict=True))
            assert [float(opt.state[p]["step"]) for p in ps] == [1.0, 1.0]
            return "raises"
        eager.step()
        opt.step()  # said once: not again
    eagerly = [str(w.message) for w in said if "eagerly" in str(w.message)]
    if not eagerly:
        return "kernel"
    assert len(eagerly) == 1, eagerly
    eager.step()
    assert all(torch.equal(a, b) for a, b in zip(ps, ref, strict=True))
    return "eager, said once"


@pytest.mark.parametrize("fused", [None, True], ids=["fused=None", "fused=True"])
@pytest.mark.parametrize("case", CASES)
def test_the_same_bad_state_gives_the_same_outcome_on_both_backends(case, fused, triton_here):
    bad, if_none, if_true = CASES[case]
    want = if_none if fused is None else if_true
    outcomes = {backend: _outcome(backend, fused, bad) for backend in ("c", "triton")}
    assert outcomes == {"c": want, "triton": want}


def _bad_later_group(name: str, fused: bool | None) -> tuple[bool, bool]:
    """Two groups; after two good steps the second group's first state tensor becomes float64.
    (raised, the first group moved) of the next step."""
    g = torch.Generator().manual_seed(0)
    a = torch.nn.Parameter(torch.randn(6, 5, generator=g))
    b = torch.nn.Parameter(torch.randn(4, 3, generator=g))
    wa, wb = torch.randn(6, 5, generator=g), torch.randn(4, 3, generator=g)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (a * wa).sum() + (b * b * wb).sum()
        loss.backward()
        return loss

    opt = optim.get(name)([{"params": [a]}, {"params": [b]}], fused=fused)
    for _ in range(2):
        opt.step(closure)
    key = next((k for k, v in opt.state[b].items() if torch.is_tensor(v) and v.numel() > 1), None)
    if key is None:  # no state but the step count (plain SGD): nothing to make wrong
        return False, False
    opt.state[b][key] = opt.state[b][key].double()
    before = [a.detach().clone(), *(v.clone() for v in opt.state[a].values() if torch.is_tensor(v))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            opt.step(closure)
        except (ValueError, RuntimeError):
            after = [a.detach(), *(v for v in opt.state[a].values() if torch.is_tensor(v))]
            moved = len(after) != len(before) or not all(
                torch.equal(x, y) for x, y in zip(before, after, strict=True)
            )
            return True, moved or [gr["step"] for gr in opt.param_groups] != [2, 2]
    return False, True


@pytest.mark.parametrize("fused", [None, True, False], ids=lambda f: f"fused={f}")
@pytest.mark.parametrize("name", optim.NAMES)
def test_a_later_groups_bad_state_is_refused_before_any_group_steps(name, fused):
    """State a kernel cannot step in the second param group is refused in the step's first
    phase: the first group's parameters, state and step count stay as they were (it was
    refused after the first group had stepped where ``fused=None``)."""
    try:
        raised, moved = _bad_later_group(name, fused)
    except ValueError as exc:  # an optimizer that has no fused form refuses fused=True
        assert fused is True and "fused" in str(exc)
        return
    if raised:
        assert not moved, f"{name}: the first group stepped before the second was refused"
