"""``maximum`` and ``minimum`` take a coefficient (a per-tensor number) on either side, as the
papers write a floor (``max(sqrt(v), eps)``, ADOPT's and Adafactor's): every form below runs
eagerly, fused, in float64 and in Triton under the interpreter, as one (a coefficient operand
was refused when the form was built; before that the reference raised TypeError, the Triton
kernel failed and the eager step failed with the coefficient first)."""

from __future__ import annotations

import pytest
import torch

from descentlab import optim
from descentlab.optim import form as FM


class _Rule(FM.FormRule):
    """A one-state rule whose output is ``make(f, v, eps)`` (``v`` the running square)."""

    name = "operands"
    needs_step = False

    def __init__(self, make) -> None:
        self.make = make
        super().__init__()

    def form(self, f: FM.Form, hyper) -> None:
        w = f.coef("w", lambda h, t: 0.1)
        eps = f.coef("eps", lambda h, t: 1e-3)
        v = f.assign("v", FM.addcmul(f.state("v") * f.coef("b", lambda h, t: 0.9), f.g, f.g, w))
        f.out(self.make(f, v, eps))


#: each run on every backend below
ACCEPTED = {
    "max(sqrt(v), eps)": lambda f, v, eps: f.g / FM.maximum(FM.sqrt(v), eps),
    "max(eps, sqrt(v))": lambda f, v, eps: f.g / FM.maximum(eps, FM.sqrt(v)),
    "max(v, eps*eps)": lambda f, v, eps: FM.maximum(v, eps * eps) * f.g,
    "min(eps, g)": lambda f, v, eps: FM.minimum(eps, f.g),
    "min(g, eps)": lambda f, v, eps: FM.minimum(f.g, eps) + FM.minimum(v, f.g),
    "g * max(eps, eps*eps)": lambda f, v, eps: f.g * FM.maximum(eps, eps * eps),
    "where(eps*eps < eps, g, v)": lambda f, v, eps: FM.where(FM.lt(eps * eps, eps), f.g, v),
    "max(sqrt(v), |g|)": lambda f, v, eps: f.g / FM.maximum(FM.sqrt(v), FM.absolute(f.g) + eps),
    "clamp(sqrt(v), eps, big)": lambda f, v, eps: (
        f.g / FM.clamp(FM.sqrt(v), eps, f.coef("big", lambda h, t: 1e30))
    ),
    "sqrt(v) + eps": lambda f, v, eps: f.g / (FM.sqrt(v) + eps),
    "where(g > eps, g, eps)": lambda f, v, eps: FM.where(FM.gt(f.g, eps), f.g, eps),
}


def _steps(make, fused, start, grads, triton=False):
    from descentlab.optim import gpu

    w = torch.nn.Parameter(start.clone())
    opt = optim.Optimizer([w], optim.chain(_Rule(make), optim.scale_by_lr(0.1)), fused=fused)
    for g in grads:
        w.grad = g.clone()
        if triton:
            with gpu.interpret_on_cpu():
                opt.step()
        else:
            opt.step()
    return w.detach()


@pytest.mark.parametrize("name", ACCEPTED)
def test_the_forms_it_accepts_run_on_every_backend(name, monkeypatch):
    make = ACCEPTED[name]
    g = torch.Generator().manual_seed(2)
    start = torch.randn(37, dtype=torch.float64, generator=g)
    grads = [torch.randn(37, dtype=torch.float64, generator=g) for _ in range(5)]
    eager = _steps(make, False, start, grads)
    fused = _steps(make, True, start, grads)
    torch.testing.assert_close(fused, eager, rtol=1e-12, atol=1e-15)
    rule = _Rule(make)
    form, p, state = (
        rule.built(rule.defaults),
        start.clone(),
        {"v": torch.zeros(37, dtype=torch.float64)},
    )
    for t, gr in enumerate(grads, 1):
        p = p - 0.1 * FM.reference(form, gr, p, state, {}, float(t))
    torch.testing.assert_close(eager, p, rtol=1e-12, atol=1e-15)
    if _has_triton():
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        tri = _steps(make, None, start.float(), [x.float() for x in grads], triton=True)
        torch.testing.assert_close(tri, eager.float(), rtol=1e-5, atol=1e-6)


def _has_triton() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


class _Floor(FM.FormRule):
    """``g / max(sqrt(v), eps)``, ``eps`` a hyperparameter: batched, one value per row."""

    name = "floor"
    needs_step = False
    checks = optim.declare(eps=optim.Real(0.0))

    def __init__(self, eps=1e-3) -> None:
        super().__init__(eps=eps)

    def form(self, f: FM.Form, hyper) -> None:
        eps = f.coef("eps", lambda h, t: h["eps"], uses=("eps",))
        v = f.assign("v", FM.addcmul(f.state("v") * f.coef("b", lambda h, t: 0.5), f.g, f.g, eps))
        f.out(FM.minimum(f.g / FM.maximum(FM.sqrt(v), eps), eps * f.g))


def test_a_batched_coefficient_in_maximum_steps_each_row_as_its_own_run():
    """Stacked runs (one ``eps`` per row of the leading dimension) step each row as that row
    alone, fused and eager."""
    k, d = 3, 50
    g = torch.Generator().manual_seed(4)
    grads = [torch.randn(k, d, generator=g) * 1e-2 for _ in range(4)]
    eps = torch.tensor([1e-4, 1e-3, 5e-3])

    def run(e, rows, fused):
        w = torch.nn.Parameter(torch.zeros(len(rows), d))
        opt = optim.Optimizer([w], optim.chain(_Floor(), optim.scale_by_lr(0.1)), fused=fused)
        opt.param_groups[0]["eps"] = e
        for gr in grads:
            w.grad = gr[rows].clone()
            opt.step()
        return w.detach()

    for fused in (True, False):
        stacked = run(eps, list(range(k)), fused)
        for r in range(k):
            alone = run(float(eps[r]), [r], fused)
            torch.testing.assert_close(stacked[r : r + 1], alone, rtol=1e-6, atol=1e-9)
