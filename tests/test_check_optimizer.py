"""``descentlab check-optimizer``: one function
(``experiments.optimizer_check.check_optimizer``) checks any optimizer -- every registered one
here (the registry's cases), and the three optimizers of 2024 written outside the package
(``examples/optimizers``: ADOPT, Cautious AdamW, AdEMAMix), each against a float64 loop
written here from its paper. A check that cannot hold is shown to fail: Cautious's per-tensor
reduction forced onto FSDP2's shards, a loop that is not the optimizer's."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
from _models import run_cli

from descentlab import optim
from descentlab.experiments.optimizer_check import check_optimizer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "optimizers"
#: the checks each registered optimizer takes here (the Triton and FSDP2 ones: tests/test_form.py
#: and tests/test_fsdp.py run them over the registry already)
CHEAP = ("fused", "reference", "resume", "groups", "refusals")


def _failed(lines) -> list[str]:
    return [str(x) for x in lines if x.ok is False]


def _closure_free(rec) -> bool:
    return rec.name not in ("sam", "lbfgs")  # (their step takes a closure)


@pytest.mark.parametrize(
    "rec", [r for r in optim.records() if _closure_free(r)], ids=lambda r: r.name
)
def test_every_registered_optimizer_passes_the_check(rec):
    assert not _failed(check_optimizer(rec.name, CHEAP))


# -- float64 loops from the papers ---------------------------------------------------------
def adopt_loop(w, grads, lr, betas, eps, weight_decay, **_):
    """Taniguchi et al. 2024, Algorithm 1: v_0 = g_0^2; m_t = b1 m + (1 - b1) g / max(sqrt(v),
    eps); w -= lr m; v_t = b2 v + (1 - b2) g^2 (decoupled decay lr * wd * w before)."""
    b1, b2 = betas
    m, v = torch.zeros_like(w), grads[0] * grads[0]
    w = w - lr * weight_decay * w  # the first step: the decay alone
    for g in grads[1:]:
        m = b1 * m + (1 - b1) * g / torch.clamp(v.sqrt(), min=eps)
        w = w - lr * (m + weight_decay * w)
        v = b2 * v + (1 - b2) * g * g
    return w


def cautious_loop(w, grads, lr, betas, eps, weight_decay, **_):
    """Liang et al. 2024, Algorithm 1 (C-AdamW): AdamW's u masked by u * g > 0 and scaled by
    d / (nnz + 1)."""
    b1, b2 = betas
    m, v = torch.zeros_like(w), torch.zeros_like(w)
    for t, g in enumerate(grads, 1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        u = (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
        phi = (u * g > 0).double()
        w = w - lr * (u * phi * phi.numel() / (phi.sum() + 1) + weight_decay * w)
    return w


def cautious_lion_loop(w, grads, lr, betas, weight_decay, **_):
    """The same mask around Lion (Chen et al. 2023): u = sign(b1 m + (1 - b1) g), then
    m = b2 m + (1 - b2) g."""
    b1, b2 = betas
    m = torch.zeros_like(w)
    for g in grads:
        u = torch.sign(b1 * m + (1 - b1) * g)
        m = b2 * m + (1 - b2) * g
        phi = (u * g > 0).double()
        w = w - lr * (u * phi * phi.numel() / (phi.sum() + 1) + weight_decay * w)
    return w


def ademamix_loop(w, grads, lr, betas, alpha, t_alpha_beta3, eps, weight_decay, **_):
    """Pagliardini et al. 2024, Algorithm 1 with its alpha and beta3 schedulers."""
    b1, b2, b3 = betas
    m1, m2, nu = torch.zeros_like(w), torch.zeros_like(w), torch.zeros_like(w)
    big_t = t_alpha_beta3
    for t, g in enumerate(grads, 1):
        a, b3t = alpha, b3
        if big_t and t < big_t:
            a = t * alpha / big_t
            lo, hi = math.log(b1), math.log(b3)
            b3t = min(math.exp(lo * hi / ((1 - t / big_t) * hi + (t / big_t) * lo)), b3)
        m1, nu = b1 * m1 + (1 - b1) * g, b2 * nu + (1 - b2) * g * g
        m2 = b3t * m2 + (1 - b3t) * g
        step = (m1 / (1 - b1**t) + a * m2) / ((nu / (1 - b2**t)).sqrt() + eps)
        w = w - lr * (step + weight_decay * w)
    return w


def prodigy_loop(w, grads, lr, betas, eps, weight_decay, d0, d_coef, growth_rate, **_):
    """Mishchenko & Defazio 2023, Algorithm 4 (Adam's form, without bias correction, as the
    authors' code defaults to): d grows from d0 by the ratio of sum_k (d_k / d0) d_k lr
    <g_k, x0 - x_k> (decayed by sqrt(beta2)) to ||s||_1."""
    b1, b2 = betas
    b3 = math.sqrt(b2)
    x0, s = w.clone(), torch.zeros_like(w)
    m, v = torch.zeros_like(w), torch.zeros_like(w)
    d = d_max = d0
    r = 0.0
    for g in grads:
        dlr = d * lr
        r = b3 * r + (d / d0) * dlr * float((g * (x0 - w)).sum())
        m = b1 * m + d * (1 - b1) * g
        v = b2 * v + d * d * (1 - b2) * g * g
        s = b3 * s + (d / d0) * dlr * g
        if float(s.abs().sum()) > 0:
            d_hat = d_coef * r / float(s.abs().sum())
            d = max(d, d_hat) if d == d0 else d
            d_max = max(d_max, d_hat)
            d = min(d_max, d * growth_rate)
        w = w - dlr * (m / (v.sqrt() + d * eps) + weight_decay * w)
    return w


OWN = {
    "adopt.py:ADOPT": (adopt_loop, {"lr": 0.01, "weight_decay": 0.1}),
    "cautious_adamw.py:CautiousAdamW": (cautious_loop, {"lr": 0.01}),
    "cautious_adamw.py:CautiousLion": (cautious_lion_loop, {"lr": 0.01, "weight_decay": 0.1}),
    "ademamix.py:AdEMAMix": (ademamix_loop, {"lr": 0.01, "t_alpha_beta3": 8, "weight_decay": 0.1}),
    "prodigy.py:Prodigy": (prodigy_loop, {"weight_decay": 0.1}),
}


@pytest.mark.parametrize("spec", OWN)
def test_the_examples_written_outside_pass_every_check_but_fsdp(spec):
    loop, kw = OWN[spec]
    lines = check_optimizer(str(EXAMPLES / spec), [*CHEAP, "loop"], loop, **kw)
    assert not _failed(lines)
    assert [x.check for x in lines if x.ok][-1] == "your float64 loop"


def test_a_loop_that_is_not_the_optimizers_fails_the_check():
    lines = check_optimizer(str(EXAMPLES / "adopt.py:ADOPT"), ["loop"], cautious_loop, lr=0.01)
    assert _failed(lines) and "tolerance 1e-12" in str(lines[0])


@pytest.mark.process
def test_the_fsdp2_check_passes_cautious_at_the_defaults_and_fails_it_forced_onto_shards(
    tmp_path,
):
    forced = tmp_path / "forced.py"
    shutil.copy(EXAMPLES / "cautious_adamw.py", forced)
    text = forced.read_text().replace(
        '    name = "cautious"\n', '    name = "cautious"\n    shard_local = True\n'
    )
    forced.write_text(text)
    good = check_optimizer(str(EXAMPLES / "cautious_adamw.py:CautiousAdamW"), ["sharded"])
    bad = check_optimizer(f"{forced}:CautiousAdamW", ["sharded"])
    assert good[0].ok and bad[0].ok is False, (good, bad)


def test_the_command_prints_a_line_per_check_and_exits_1_on_a_failure(capsys, tmp_path):
    ref = tmp_path / "ref.py"
    ref.write_text("def loop(w, grads, **h):\n    return w\n")
    spec = str(EXAMPLES / "adopt.py:ADOPT")
    code, out, _ = run_cli(["check-optimizer", spec, "--checks", "groups,loop", "--reference",
                            f"{ref}:loop"], capsys)  # fmt: skip
    assert code == 1 and out.startswith("ok   param groups") and "FAIL your float64 loop" in out
    code, out, _ = run_cli(["check-optimizer", spec, "--checks", "groups"], capsys)
    assert code == 0


def test_an_unbounded_declared_number_refuses_nan():
    """The check found Muon taking NaN Newton-Schulz coefficients: a ``Real()`` without
    bounds let NaN through (its ``inside`` held for NaN)."""
    with pytest.raises(ValueError, match=r"ns_coefficients\[0\] must be a number, got nan"):
        optim.Muon([torch.nn.Parameter(torch.zeros(3, 3))], ns_coefficients=(math.nan, 1.0, 1.0))


# -- green on every CPU kind ---------------------------------------------------------------
@pytest.mark.parametrize(
    "spec", ["cautious_adamw.py:CautiousAdamW", "cautious_adamw.py:CautiousLion"]
)
def test_the_fused_line_passes_cautious_where_the_kernels_root_is_torchs(spec, monkeypatch):
    """On Intel AVX-512 CPUs the kernels' square root is torch's (``sqrt_reproduces_torch``),
    and the line demanded bit for bit there: the fused Cautious step, whose per-tensor count a
    first pass sums and whose coefficient is computed in double precision, failed by rounding
    (9.6e-9 relative on an Emerald Rapids Xeon). Bit for bit is now required only where the
    kernel's order of operations is the eager step's; here it is within a tolerance from the
    rule's own float32 error, and the line prints both."""
    from descentlab.optim import fused

    monkeypatch.setattr(fused, "sqrt_reproduces_torch", lambda: True)  # Intel's answer
    (line,) = check_optimizer(str(EXAMPLES / spec), ["fused"], **OWN[spec][1])
    assert line.ok, line
    assert "a sum over a tensor or the group" in line.detail and "tolerance" in line.detail


def _cpu_has(flag: str) -> bool:
    try:
        return f" {flag}" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


#: instruction sets of other CPU kinds the kernels are built for here (the flag this CPU needs
#: to run them): SSE4.2 without FMA, AVX2 with FMA, AVX-512, AVX-512 at 256-bit vectors
TARGETS = {
    "x86-64-v2": (("-march=x86-64-v2",), "sse4_2"),
    "x86-64-v3": (("-march=x86-64-v3",), "avx2"),
    "x86-64-v4": (("-march=x86-64-v4",), "avx512f"),
    "x86-64-v4 at 256 bits": (("-march=x86-64-v4", "-mprefer-vector-width=256"), "avx512f"),
}
#: a square root, a chain the line holds bit for bit, and a per-tensor sum
KINDS = (("adam", {}), ("lion", {}), (str(EXAMPLES / "cautious_adamw.py:CautiousAdamW"), {}))


@pytest.mark.parametrize("name", TARGETS)
def test_the_kernels_built_for_other_cpu_kinds_pass_the_fused_line(name):
    """What another CPU's kernels compute, on this one: the generated C built for each target
    against the eager step, as the fused line judges it (bit for bit for Lion on every one)."""
    from descentlab import _native
    from descentlab.optim.fused import fused_available

    flags, needs = TARGETS[name]
    if not fused_available() or not _cpu_has(needs):
        pytest.skip(f"no C++ compiler, or this CPU cannot run {name}'s instructions")
    with _native.target(*flags):
        lines = [check_optimizer(spec, ["fused"], **kw)[0] for spec, kw in KINDS]
    assert all(x.ok for x in lines), [str(x) for x in lines]
    assert "bit for bit required" in lines[1].detail


# -- check-optimizer's inputs --------------------------------------------------------------
def test_a_refused_set_value_exits_2_before_any_check(capsys):
    code, out, err = run_cli(["check-optimizer", "adam", "--set", "lr=-1"], capsys)
    assert code == 2 and out == "" and "lr" in err and "-1" in err, (code, out, err)


def test_the_bit_for_bit_side_of_the_fused_line_fails_on_one_ulp(monkeypatch):
    """Lion's kernel runs the eager step's operations in its order: one float32 ulp of one
    element off is a FAIL there, printed."""
    from descentlab.experiments import optimizer_check as oc

    run = oc._run

    def off_by_an_ulp(make, start, grads, **kw):
        out = run(make, start, grads, **kw)
        if kw.get("fused"):
            out[1][0] = torch.nextafter(out[1][0], torch.tensor(math.inf))
        return out

    monkeypatch.setattr(oc, "_run", off_by_an_ulp)
    (line,) = check_optimizer("lion", ["fused"])
    assert line.ok is False and "bit for bit required" in line.detail, line
    assert "max relative difference 0" not in line.detail
