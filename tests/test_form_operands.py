"""A form is refused when it is built if one of its primitives has an operand that some
backend cannot run (``maximum`` or ``minimum`` with a coefficient on either side: the float64
reference raised TypeError, the Triton kernel failed under the interpreter and the eager step
failed with the coefficient first), and every form it still accepts runs eagerly, fused, in
float64 and in Triton under the interpreter, as one."""

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


def _minimum(a: FM.Expr, b: FM.Expr) -> FM.Expr:
    return FM.Op("minimum", (a, b))


REFUSED = {
    "max(sqrt(v), eps)": (lambda f, v, eps: f.g / FM.maximum(FM.sqrt(v), eps), "operand 2 (eps)"),
    "max(eps, sqrt(v))": (lambda f, v, eps: f.g / FM.maximum(eps, FM.sqrt(v)), "operand 1 (eps)"),
    "max(v, eps*eps)": (lambda f, v, eps: FM.maximum(v, eps * eps) * f.g, "operand 2 (mul)"),
    "min(eps, g)": (lambda f, v, eps: _minimum(eps, f.g), "operand 1 (eps)"),
}

#: what the form still accepts, each run on every backend below
ACCEPTED = {
    "max(sqrt(v), |g|)": lambda f, v, eps: f.g / FM.maximum(FM.sqrt(v), FM.absolute(f.g) + eps),
    "clamp(sqrt(v), eps, big)": lambda f, v, eps: (
        f.g / FM.clamp(FM.sqrt(v), eps, f.coef("big", lambda h, t: 1e30))
    ),
    "sqrt(v) + eps": lambda f, v, eps: f.g / (FM.sqrt(v) + eps),
    "where(g > eps, g, eps)": lambda f, v, eps: FM.where(FM.gt(f.g, eps), f.g, eps),
}


@pytest.mark.parametrize("name", REFUSED)
def test_a_form_with_a_coefficient_in_maximum_or_minimum_is_refused_when_built(name):
    make, where = REFUSED[name]
    p = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match=rf"\(\): {where.replace('(', '[(]').replace(')', '[)]')}"):
        optim.Optimizer([p], optim.chain(_Rule(make), optim.scale_by_lr(0.1)))


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
