"""The modern optimizers against Optax 0.2.8: float64 trajectories replayed to 1e-10.

``tests/data/optax_reference.json`` was written by ``scripts/optax_reference.py`` (run in a
scratch environment with jax and optax; see its docstring). Each configuration names a
descentlab optimizer and its arguments, a fixed problem, and Optax's iterates at a few steps;
here descentlab runs the same problem in float64 on both backends and must land within 1e-10
(relative to the largest coordinate) of every recorded iterate.

Conventions that differ from Optax (each is a documented choice, tested elsewhere against a
float64 loop written from the paper's equations or against torch.optim):

- Muon: the recorded runs use ``nesterov=False`` and ``eps=0``. Optax bias-corrects the
  momentum (torch does not; with Nesterov the two mix gradient and momentum with different
  weights) and adds ``eps`` to the Frobenius norm where torch clamps by it; Optax reads the
  shape scaling from JAX's (in, out) layout, torch from its (out, in) one -- the script feeds
  Optax the transposed weight. descentlab follows torch (``tests/test_modern_optim.py``).
- Adafactor: Optax computes the decay rate ``1 - t^-0.8`` in float32 (the script swaps in a
  float64 one), adds ``eps`` to ``g^2`` (here 0; torch clamps), and its ``weight_decay_rate``
  is not multiplied by the learning rate (the script passes ``lr * weight_decay``).
- Schedule-Free AdamW with a warmup schedule: Optax evaluates the schedule one step later for
  the averaging weight than for the step; only constant rates are recorded here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from descentlab import optim

DATA = json.loads((Path(__file__).parent / "data" / "optax_reference.json").read_text())
CONFIGS = {c["id"]: c for c in DATA["configs"]}
TOL = 1e-10


def _problem(name: str):
    """(params in descentlab's layout, loss function) in float64, as the script defines them."""
    spec = DATA["problems"][name]
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    if name == "quadratic":
        a, b = t(spec["A"]), t(spec["b"])
        params = {"w": t(spec["w0"])}
        return params, lambda p: 0.5 * p["w"] @ a @ p["w"] - b @ p["w"]
    if name == "rosenbrock":
        params = {"w": t(spec["w0"])}

        def rosen(p):
            x, y = p["w"][0], p["w"][1]
            return (1 - x) ** 2 + 100 * (y - x**2) ** 2

        return params, rosen
    x, y = t(spec["X"]), t(spec["Y"])
    params = {"W": t(spec["W0"]), "c": t(spec["c0"])}

    def matrix(p):
        h = torch.tanh(p["W"] @ x + p["c"][:, None])
        return 0.5 * ((h - y) ** 2).sum() / x.shape[1] + 0.01 * (p["W"] ** 4).sum()

    return params, matrix


def _kwargs(cfg: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in cfg["kwargs"].items()}


def _replay(cfg: dict, fused: bool | None):
    """Run descentlab on the configuration; yields (step, {name: tensor}) at recorded steps."""
    init, loss = _problem(cfg["problem"])
    params = {k: v.clone().requires_grad_() for k, v in init.items()}
    opt = optim.get(cfg["optimizer"])(list(params.values()), fused=fused, **_kwargs(cfg))

    def closure():
        opt.zero_grad()
        value = loss(params)
        value.backward()
        return value

    out = {}
    for t in range(1, cfg["steps"] + 1):
        opt.step(closure)
        if str(t) in cfg["iterates"]:
            out[t] = {k: v.detach().clone() for k, v in params.items()}
    return opt, params, out


def _rel_err(ours: dict, ref: dict) -> float:
    worst = 0.0
    for k, v in ref.items():
        r = torch.tensor(v, dtype=torch.float64)
        scale = max(float(r.abs().max()), 1e-12)
        worst = max(worst, float((ours[k] - r).abs().max()) / scale)
    return worst


def _backends(cid: str) -> list:
    return [False, True] if optim.fused_available() else [False]


CASES = [(cid, fused) for cid in CONFIGS for fused in _backends(cid)]


@pytest.mark.parametrize(
    ("cid", "fused"), CASES, ids=[f"{c}-{'fused' if f else 'eager'}" for c, f in CASES]
)
def test_matches_optax_float64(cid, fused):
    cfg = CONFIGS[cid]
    cls = optim.get(cfg["optimizer"])
    if fused and not _has_fused_form(cls, cfg):
        pytest.skip(f"{cfg['optimizer']} has no fused form for this configuration")
    opt, params, got = _replay(cfg, fused)
    first = {k: torch.tensor(v, dtype=torch.float64) for k, v in cfg["iterates"]["1"].items()}
    init, _ = _problem(cfg["problem"])
    moved = max(float((first[k] - init[k]).abs().max()) for k in init)
    assert moved > 0, "Optax's first step did not move: the comparison would be vacuous"
    errs = {t: _rel_err(got[t], cfg["iterates"][str(t)]) for t in got}
    assert max(errs.values()) <= TOL, errs
    if "slow" in cfg:  # Lookahead's slow weights, in the state
        slow = {k: opt.state[p]["slow"] for k, p in params.items()}
        assert _rel_err(slow, cfg["slow"]) <= TOL
    if "eval_params" in cfg:  # Schedule-Free's evaluation point x
        opt.eval()
        assert _rel_err({k: p.detach() for k, p in params.items()}, cfg["eval_params"]) <= TOL


def _has_fused_form(cls, cfg) -> bool:
    init, _ = _problem(cfg["problem"])
    probe = [v.clone().requires_grad_() for v in init.values()]
    try:
        cls(probe, fused=True, **_kwargs(cfg))
    except ValueError as exc:
        if "no fused form" in str(exc):
            return False
        raise
    return True


def test_the_reference_data_covers_every_optax_optimizer():
    """Every optimizer verified against Optax has its configurations in the data file (a
    regenerated file that lost some would silently drop them from the tests)."""
    names = {c["optimizer"] for c in DATA["configs"]}
    assert names == {"lion", "lookahead", "sam", "sfadamw", "adafactor", "muon"}
    assert DATA["optax"] == "0.2.8"
    assert len(CONFIGS) == 15
