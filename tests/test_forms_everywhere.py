"""The Adam/RMSprop/Adagrad parts of the optimizers that are not elementwise, against the
rules' forms evaluated in float64 from the primitives' definitions
(:func:`descentlab.optim.form.reference`), step by step from the same state.
Muon's AdamW fallback and Shampoo's grafting run the forms themselves (``scale_by_adam``,
``scale_by_rms``, ``scale_by_adagrad``): these tests check what surrounds them (the decay, the
hyperparameters passed, the state kept). SOAP's Adam in the eigenbasis is torch code -- its
first moment is kept in the parameter's basis and its second is updated with the projected
gradient's square, which one form's single ``g`` cannot state -- so its math is checked
against Adam's form here, with an identity basis and with refreshed ones."""

from __future__ import annotations

import torch

from descentlab import optim
from descentlab.optim import form as FM
from descentlab.optim.muon import scale_by_muon
from descentlab.optim.shampoo import scale_by_shampoo
from descentlab.optim.soap import scale_by_soap

STEPS = 12
TOL = dict(rtol=1e-12, atol=1e-15)


def _grads(n: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=g, dtype=torch.float64) for _ in range(STEPS)]


def _form(rule: FM.FormRule, **hyper) -> tuple[FM.Form, dict]:
    h = {**rule.defaults, **hyper}
    return rule.built(h), h


def test_muons_adamw_fallback_is_the_adam_form_with_decoupled_decay():
    lr, alr, betas, eps, wd = 0.02, 3e-3, (0.8, 0.95), 1e-6, 0.1
    p = torch.nn.Parameter(torch.randn(37, dtype=torch.float64))  # not a matrix: AdamW
    opt = optim.Muon([p], lr=lr, adamw_lr=alr, adamw_betas=betas, adamw_eps=eps,
                     adamw_weight_decay=wd, fused=False)  # fmt: skip
    assert any(isinstance(r, scale_by_muon) for r in opt.rule.rules)
    form, hyper = _form(optim.scale_by_adam(), betas=betas, eps=eps)
    x = p.detach().clone()
    state = {k: torch.zeros(37, dtype=torch.float64) for k in ("exp_avg", "exp_avg_sq")}
    for t, g in enumerate(_grads(37, 0), start=1):
        p.grad = g.clone()
        opt.step()
        x = FM.reference(form, g, x * (1 - alr * wd), state, hyper, t, lr=alr)
        torch.testing.assert_close(p.detach(), x, **TOL)
        torch.testing.assert_close(opt.state[p]["exp_avg_sq"], state["exp_avg_sq"], **TOL)


def _graft_against(kind: str, rule: FM.FormRule, hyper: dict, key: str) -> None:
    """Shampoo's graft of ``kind`` (its direction before preconditioning starts, momentum 0)
    against ``rule``'s form at ``hyper``, its square average against the form's ``key``."""
    b2, eps = 0.9, 1e-6
    p = torch.nn.Parameter(torch.randn(23, dtype=torch.float64))
    opt = optim.Shampoo([p], lr=1.0, betas=(0.0, b2), grafting=kind, graft_eps=eps,
                        start_preconditioning_step=10**6, fused=False)  # fmt: skip
    assert any(isinstance(r, scale_by_shampoo) for r in opt.rule.rules)
    form, hyper = _form(rule, eps=eps, **hyper)
    state = {key: torch.zeros(23, dtype=torch.float64)}
    state |= {k: torch.zeros(23, dtype=torch.float64) for k in form.states if k not in state}
    for t, g in enumerate(_grads(23, 1), start=1):
        before = p.detach().clone()
        p.grad = g.clone()
        opt.step()
        u = FM.reference(form, g, before, state, hyper, t)
        torch.testing.assert_close(before - p.detach(), u, **TOL)  # lr 1: the step is -u
        torch.testing.assert_close(opt.state[p]["graft_sq"], state[key], **TOL)


def test_shampoos_adam_grafting_is_the_adam_form_without_momentum():
    _graft_against("adam", optim.scale_by_adam(), {"betas": (0.0, 0.9)}, "exp_avg_sq")


def test_shampoos_rmsprop_grafting_is_the_rmsprop_form():
    _graft_against("rmsprop", optim.scale_by_rms(), {"alpha": 0.9}, "square_avg")


def test_shampoos_adagrad_grafting_is_the_adagrad_form():
    _graft_against("adagrad", optim.scale_by_adagrad(), {}, "sum")


def test_soaps_adam_in_the_eigenbasis_is_the_adam_form():
    """A vector without a preconditioner (``precondition_1d=False``): the eigenbasis is the
    identity, so SOAP's step is Adam's from its second step on (the first only initialises),
    with SOAP's eps added to the uncorrected root -- Adam's form at eps/sqrt(1 - b2^s)."""
    b1, b2, eps, lr = 0.9, 0.95, 1e-8, 1.0
    p = torch.nn.Parameter(torch.randn(19, dtype=torch.float64))
    opt = optim.SOAP(
        [p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=0.0, precondition_1d=False, fused=False
    )
    assert any(isinstance(r, scale_by_soap) for r in opt.rule.rules)
    adam = optim.scale_by_adam()
    state = {k: torch.zeros(19, dtype=torch.float64) for k in ("exp_avg", "exp_avg_sq")}
    for t, g in enumerate(_grads(19, 2), start=1):
        before = p.detach().clone()
        p.grad = g.clone()
        opt.step()
        if t == 1:
            torch.testing.assert_close(p.detach(), before, rtol=0, atol=0)
            continue
        s = t - 1
        form, hyper = _form(adam, betas=(b1, b2), eps=eps / (1 - b2**s) ** 0.5)
        u = FM.reference(form, g, before, state, hyper, s)
        torch.testing.assert_close(before - p.detach(), u, **TOL)
        torch.testing.assert_close(opt.state[p]["exp_avg"], state["exp_avg"], **TOL)
        torch.testing.assert_close(opt.state[p]["exp_avg_sq"], state["exp_avg_sq"], **TOL)


def test_soaps_adam_in_a_refreshed_eigenbasis_is_the_adam_form():
    """A matrix, its bases refreshed every 3 steps: SOAP's step is Adam's form in the
    eigenbasis -- run on the projected gradient :math:`Q_L^\\top G Q_R` from the rotated
    first moment :math:`Q_L^\\top M Q_R` (a rotation commutes with m's lerp) and V, at
    eps / sqrt(1 - b2^s), then rotated back. SOAP keeps M in the parameter's basis and
    updates V with the projected gradient's square, so its moments stay torch code; this
    checks them step by step from SOAP's own state and bases."""
    b1, b2, eps = 0.9, 0.95, 1e-8
    gen = torch.Generator().manual_seed(4)
    p = torch.nn.Parameter(torch.randn(6, 4, generator=gen, dtype=torch.float64))
    opt = optim.SOAP([p], lr=1.0, betas=(b1, b2), eps=eps, weight_decay=0.0,
                     precondition_frequency=3, fused=False)  # fmt: skip
    adam = optim.scale_by_adam()
    for t in range(1, STEPS + 1):
        g = torch.randn(6, 4, generator=gen, dtype=torch.float64)
        st = opt.state[p]
        if t > 1:  # the bases and moments this step starts from
            ql, qr = (q.clone() for q in st["soap_bases"])
            state = {"exp_avg": ql.T @ st["exp_avg"] @ qr, "exp_avg_sq": st["exp_avg_sq"].clone()}
        before = p.detach().clone()
        p.grad = g.clone()
        opt.step()
        if t == 1:
            continue
        s = t - 1
        form, hyper = _form(adam, betas=(b1, b2), eps=eps / (1 - b2**s) ** 0.5)
        u = FM.reference(form, ql.T @ g @ qr, ql.T @ before @ qr, state, hyper, s)
        torch.testing.assert_close(before - p.detach(), ql @ u @ qr.T, **TOL)
        torch.testing.assert_close(st["exp_avg"], ql @ state["exp_avg"] @ qr.T, **TOL)
        if s % 3:  # (a refresh reorders V with the new basis)
            torch.testing.assert_close(st["exp_avg_sq"], state["exp_avg_sq"], **TOL)
