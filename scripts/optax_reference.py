"""Float64 reference trajectories from Optax 0.2.8 for the modern optimizers' tests.

Run it once, in a scratch environment (jax is never a dependency of descentlab)::

    python3 -m venv /tmp/optaxenv
    /tmp/optaxenv/bin/pip install 'jax[cpu]' optax==0.2.8 numpy
    /tmp/optaxenv/bin/python scripts/optax_reference.py tests/data/optax_reference.json

It writes one JSON file: the fixed problems (their data), and for each configuration the
Optax transformation (as text), its hyperparameters and the iterates at a few recorded steps.
``tests/test_optax_reference.py`` replays every configuration with descentlab in float64 and
matches the iterates to 1e-10 relative. The problems:

- ``quadratic``: :math:`f(w) = \\tfrac12 w^\\top A w - b^\\top w` with a fixed 4x4 SPD matrix;
- ``rosenbrock``: :math:`f(x, y) = (1-x)^2 + 100 (y - x^2)^2` from (-1.2, 1);
- ``matrix``: a (5, 3) weight ``W`` and a (5,) bias ``c`` (torch's (out, in) layout) with
  :math:`f = \\tfrac{1}{2n}\\|\\tanh(W X + c) - Y\\|_F^2 + 0.01 \\sum W^4`, fixed ``X``, ``Y``.

Layout: JAX writes a dense layer as ``x @ V`` with ``V`` of shape (in, out), torch as
``W @ x`` with ``W`` of shape (out, in). Optax's Muon reads its shape scaling from that
layout (``sqrt(max(1, fan_out / fan_in))`` with ``fan_in = V.shape[0]``), torch's from its
own (``sqrt(max(1, A / B))``, ``(A, B) = W.shape``); so Optax here optimizes ``V = W.T`` and the
recorded iterates are transposed back. Every other optimizer is indifferent to the layout.
"""

from __future__ import annotations

import json
import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from optax._src import factorized, transform  # noqa: E402
from optax.transforms import _clipping  # noqa: E402

assert optax.__version__ == "0.2.8", optax.__version__

A = [
    [3.0, 0.5, 0.2, 0.0],
    [0.5, 2.0, 0.3, 0.1],
    [0.2, 0.3, 1.0, 0.05],
    [0.0, 0.1, 0.05, 0.5],
]
B = [1.0, -2.0, 0.5, 1.0]
W0_QUAD = [1.5, -0.5, 2.0, -1.0]
W0_ROSEN = [-1.2, 1.0]

_rng = np.random.default_rng(20260414)
X = np.round(_rng.normal(size=(3, 8)), 6)
Y = np.round(np.tanh(_rng.normal(size=(5, 8))), 6)
W0_MATRIX = np.round(_rng.normal(size=(5, 3)) * 0.5, 6)
C0_MATRIX = np.round(_rng.normal(size=(5,)) * 0.1, 6)

RECORD = [1, 2, 3, 4, 5, 10, 20, 30, 50, 75, 100, 150, 200, 250, 300]


def quadratic(p):
    a, b = jnp.asarray(A), jnp.asarray(B)
    w = p["w"]
    return 0.5 * w @ a @ w - b @ w


def rosenbrock(p):
    x, y = p["w"][0], p["w"][1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def matrix(p):
    # p["W"] is in JAX's (in, out) layout: torch's W is p["W"].T
    w, c = p["W"].T, p["c"]
    h = jnp.tanh(w @ jnp.asarray(X) + c[:, None])
    return 0.5 * jnp.sum((h - jnp.asarray(Y)) ** 2) / X.shape[1] + 0.01 * jnp.sum(w**4)


PROBLEMS = {
    "quadratic": (quadratic, lambda: {"w": jnp.asarray(W0_QUAD)}),
    "rosenbrock": (rosenbrock, lambda: {"w": jnp.asarray(W0_ROSEN)}),
    "matrix": (matrix, lambda: {"W": jnp.asarray(W0_MATRIX.T), "c": jnp.asarray(C0_MATRIX)}),
}


def _torch_layout(p):
    """Parameters as descentlab holds them: {name: nested lists}, W as (out, in)."""
    out = {}
    for k, v in p.items():
        v = np.asarray(v)
        out[k] = (v.T if k == "W" else v).tolist()
    return out


def _run(problem, tx, steps, *, params_of=lambda p: p, init=None, update_kw=None):
    loss, start = PROBLEMS[problem]
    params = start() if init is None else init(start())
    state = tx.init(params)
    grad = jax.jit(jax.grad(lambda q: loss(q)))
    kw = update_kw(loss) if update_kw else {}

    @jax.jit
    def step(params, state):
        updates, state = tx.update(grad(params_of(params)), state, params, **kw)
        return optax.apply_updates(params, updates), state

    record = {}
    for t in range(1, steps + 1):
        params, state = step(params, state)
        if t in RECORD:
            record[str(t)] = _torch_layout(params_of(params))
    return record, state, params


def _adafactor_chain(lr, clip, eps2, weight_decay):
    """optax.adafactor's chain, with the decay rate 1 - t^-0.8 computed in float64 (Optax's
    own computes it in float32: a 1e-8 relative difference from torch's, not a convention)."""

    def decay64(step, exponent):
        return 1.0 - jnp.asarray(step + 1, jnp.float64) ** (-exponent)

    tx = [
        factorized.scale_by_factored_rms(
            factored=True,
            decay_rate=0.8,
            min_dim_size_to_factor=1,
            epsilon=0.0,
            decay_rate_fn=decay64,
        ),
        _clipping.clip_by_block_rms(clip),
        transform.scale_by_learning_rate(lr, flip_sign=False),
        transform.scale_by_param_block_rms(eps2),
    ]
    if weight_decay:
        tx.append(transform.add_decayed_weights(lr * weight_decay))
    tx.append(transform.scale(-1))
    return optax.chain(*tx)


def configs():
    """(id, optimizer, descentlab kwargs, problem, steps, optax transformation, its text)."""
    sam_adv = lambda rho: optax.chain(optax.contrib.normalize(), optax.sgd(rho))  # noqa: E731
    return [
        # Lion: optax.lion = scale_by_lion -> add_decayed_weights -> scale_by_learning_rate
        (
            "lion-quadratic",
            "lion",
            dict(lr=0.01, betas=(0.9, 0.99), weight_decay=0.0),
            "quadratic",
            300,
            optax.lion(0.01, b1=0.9, b2=0.99, weight_decay=0.0),
            "optax.lion(0.01, b1=0.9, b2=0.99, weight_decay=0.0)",
        ),
        (
            "lion-rosenbrock-wd",
            "lion",
            dict(lr=0.003, betas=(0.95, 0.98), weight_decay=0.1),
            "rosenbrock",
            300,
            optax.lion(0.003, b1=0.95, b2=0.98, weight_decay=0.1),
            "optax.lion(0.003, b1=0.95, b2=0.98, weight_decay=0.1)",
        ),
        (
            "lion-matrix",
            "lion",
            dict(lr=0.002, betas=(0.9, 0.99), weight_decay=1e-3),
            "matrix",
            200,
            optax.lion(0.002),
            "optax.lion(0.002)  # b1=0.9, b2=0.99, weight_decay=1e-3",
        ),
        # Lookahead around Adam and around SGD with momentum
        (
            "lookahead-adam-rosenbrock",
            "lookahead",
            dict(base="adam", sync_period=5, slow_step_size=0.5, lr=0.02),
            "rosenbrock",
            300,
            optax.lookahead(optax.adam(0.02), sync_period=5, slow_step_size=0.5),
            "optax.lookahead(optax.adam(0.02), sync_period=5, slow_step_size=0.5)",
        ),
        (
            "lookahead-momentum-quadratic",
            "lookahead",
            dict(base="sgd", sync_period=6, slow_step_size=0.8, lr=0.05, momentum=0.9),
            "quadratic",
            300,
            optax.lookahead(optax.sgd(0.05, momentum=0.9), sync_period=6, slow_step_size=0.8),
            "optax.lookahead(optax.sgd(0.05, momentum=0.9), sync_period=6, slow_step_size=0.8)",
        ),
        # SAM: one ascent step of normalized SGD (rho), then the outer step from there. Close
        # to the minimum the ascent direction g/|g| of a vanishing gradient amplifies rounding
        # (1e-16 -> 1e-7 within 50 steps, in either library): the runs stop before that
        (
            "sam-sgd-quadratic",
            "sam",
            dict(base="sgd", rho=0.05, lr=0.05),
            "quadratic",
            150,
            optax.contrib.sam(optax.sgd(0.05), sam_adv(0.05), sync_period=2, opaque_mode=True),
            "optax.contrib.sam(optax.sgd(0.05), optax.chain(optax.contrib.normalize(), "
            "optax.sgd(0.05)), sync_period=2, opaque_mode=True)",
        ),
        (
            "sam-adam-rosenbrock",
            "sam",
            dict(base="adam", rho=0.02, lr=0.01),
            "rosenbrock",
            300,
            optax.contrib.sam(optax.adam(0.01), sam_adv(0.02), sync_period=2, opaque_mode=True),
            "optax.contrib.sam(optax.adam(0.01), optax.chain(optax.contrib.normalize(), "
            "optax.sgd(0.02)), sync_period=2, opaque_mode=True)",
        ),
        (
            "sam-momentum-matrix",
            "sam",
            dict(base="sgd", rho=0.1, lr=0.05, momentum=0.9),
            "matrix",
            150,
            optax.contrib.sam(
                optax.sgd(0.05, momentum=0.9), sam_adv(0.1), sync_period=2, opaque_mode=True
            ),
            "optax.contrib.sam(optax.sgd(0.05, momentum=0.9), optax.chain("
            "optax.contrib.normalize(), optax.sgd(0.1)), sync_period=2, opaque_mode=True)",
        ),
        # Schedule-Free AdamW (constant learning rate: see the test for warmup)
        (
            "sfadamw-quadratic",
            "sfadamw",
            dict(lr=0.05, betas=(0.9, 0.999), eps=1e-8),
            "quadratic",
            300,
            optax.contrib.schedule_free_adamw(0.05, b1=0.9, b2=0.999, eps=1e-8),
            "optax.contrib.schedule_free_adamw(0.05, b1=0.9, b2=0.999, eps=1e-8)",
        ),
        (
            "sfadamw-rosenbrock-wd",
            "sfadamw",
            dict(lr=0.01, betas=(0.95, 0.99), eps=1e-8, weight_decay=0.01, weight_lr_power=2.0),
            "rosenbrock",
            300,
            optax.contrib.schedule_free_adamw(
                0.01, b1=0.95, b2=0.99, eps=1e-8, weight_decay=0.01, weight_lr_power=2.0
            ),
            "optax.contrib.schedule_free_adamw(0.01, b1=0.95, b2=0.99, eps=1e-8, "
            "weight_decay=0.01)",
        ),
        (
            "sfadamw-matrix-power1",
            "sfadamw",
            dict(lr=0.02, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05, weight_lr_power=1.0),
            "matrix",
            200,
            optax.contrib.schedule_free_adamw(0.02, weight_decay=0.05, weight_lr_power=1.0),
            "optax.contrib.schedule_free_adamw(0.02, weight_decay=0.05, weight_lr_power=1.0)",
        ),
        # Adafactor: optax.adafactor's chain, min_dim_size_to_factor=1, float64 decay rate
        (
            "adafactor-matrix",
            "adafactor",
            dict(lr=0.01, eps=(None, 1e-3), d=1.0),
            "matrix",
            300,
            _adafactor_chain(0.01, 1.0, 1e-3, 0.0),
            "optax.adafactor(0.01, min_dim_size_to_factor=1, eps=0.0) with a float64 decay rate",
        ),
        (
            "adafactor-matrix-wd",
            "adafactor",
            dict(lr=0.005, eps=(None, 1e-2), d=2.0, weight_decay=0.1),
            "matrix",
            300,
            _adafactor_chain(0.005, 2.0, 1e-2, 0.1),
            "optax.adafactor(0.005, clipping_threshold=2.0, weight_decay_rate=0.005*0.1, "
            "min_dim_size_to_factor=1, eps=0.0) with a float64 decay rate and "
            "scale_by_param_block_rms(1e-2)",
        ),
        # Muon: nesterov=False, eps=0 (Optax adds eps to the norm, torch clamps by it), the
        # AdamW fallback for the bias (eps=0 too: Optax's Muon shares one eps)
        (
            "muon-matrix",
            "muon",
            dict(
                lr=0.02,
                momentum=0.95,
                nesterov=False,
                weight_decay=0.1,
                ns_dtype=None,
                adamw_lr=0.01,
                adamw_betas=(0.9, 0.999),
                adamw_eps=0.0,
                adamw_weight_decay=0.0,
            ),
            "matrix",
            200,
            optax.contrib.muon(
                0.02, beta=0.95, eps=0.0, weight_decay=0.1, nesterov=False, adam_learning_rate=0.01
            ),
            "optax.contrib.muon(0.02, beta=0.95, eps=0.0, weight_decay=0.1, nesterov=False, "
            "adam_learning_rate=0.01)",
        ),
        (
            "muon-matrix-rms",
            "muon",
            dict(
                lr=0.01,
                momentum=0.9,
                nesterov=False,
                weight_decay=0.0,
                ns_dtype=None,
                adjust_lr_fn="match_rms_adamw",
                ns_steps=4,
                adamw_lr=0.01,
                adamw_betas=(0.8, 0.99),
                adamw_eps=0.0,
                adamw_weight_decay=0.02,
            ),
            "matrix",
            200,
            optax.contrib.muon(
                0.01,
                ns_steps=4,
                beta=0.9,
                eps=0.0,
                nesterov=False,
                consistent_rms=0.2,
                adam_b1=0.8,
                adam_b2=0.99,
                adam_weight_decay=0.02,
                adam_learning_rate=0.01,
            ),
            "optax.contrib.muon(0.01, ns_steps=4, beta=0.9, eps=0.0, nesterov=False, "
            "consistent_rms=0.2, adam_b1=0.8, adam_b2=0.99, adam_weight_decay=0.02, "
            "adam_learning_rate=0.01)",
        ),
    ]


def main(path: str) -> None:
    out = {
        "optax": optax.__version__,
        "jax": jax.__version__,
        "problems": {
            "quadratic": {"A": A, "b": B, "w0": W0_QUAD},
            "rosenbrock": {"w0": W0_ROSEN},
            "matrix": {
                "X": X.tolist(),
                "Y": Y.tolist(),
                "W0": W0_MATRIX.tolist(),
                "c0": C0_MATRIX.tolist(),
            },
        },
        "configs": [],
    }
    for cid, name, kwargs, problem, steps, tx, text in configs():
        extra = {}
        if name == "lookahead":
            record, state, params = _run(
                problem,
                tx,
                steps,
                params_of=lambda p: p.fast,
                init=optax.LookaheadParams.init_synced,
            )
            extra["slow"] = _torch_layout(params.slow)
        elif name == "sam":
            grad_fn = lambda loss: {  # noqa: E731
                "grad_fn": jax.grad(lambda q, _i: loss(q))
            }
            record, state, params = _run(problem, tx, steps, update_kw=grad_fn)
        else:
            record, state, params = _run(problem, tx, steps)
        if name == "sfadamw":
            extra["eval_params"] = _torch_layout(
                optax.contrib.schedule_free_eval_params(state, params)
            )
        kw = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()}
        out["configs"].append(
            {
                "id": cid,
                "optimizer": name,
                "kwargs": kw,
                "problem": problem,
                "steps": steps,
                "optax": text,
                "iterates": record,
                **extra,
            }
        )
    with open(path, "w") as fh:
        json.dump(out, fh, indent=None, separators=(",", ":"))
        fh.write("\n")
    print(f"wrote {len(out['configs'])} configurations to {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/optax_reference.json")
