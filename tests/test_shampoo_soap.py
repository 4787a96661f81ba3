"""Shampoo and SOAP (descentlab.optim.shampoo, .soap) against independent references, in
float64: pytorch-optimizer's ``Shampoo``, ``ScalableShampoo`` and ``SOAP`` with matched
settings, and the loops written from the papers in ``tests/_paper_preconditioners.py``.

Each comparison runs ``STEPS`` steps on gradients that depend on the parameters (a noisy
quadratic with a cubic term, the noise full rank) and asserts the largest relative difference
of any iterate, ``max_t |w_t - w_t^ref|_inf / |w_t^ref|_inf``.

Settings pytorch-optimizer cannot be matched in (said here once): its ``ScalableShampoo``
does not precondition vectors (``precondition_1d=False`` on our side), has no Adam grafting
(checked against the paper loop instead) and computes roots by Schur-Newton iteration
unless ``use_svd=True`` (an SVD of the symmetric statistics: our eigendecomposition's roots);
its ``shape_interpretation`` merges dimensions differently (``merge_dims`` is checked as an
identity instead: Shampoo of a tensor = Shampoo of its merged reshape). Its ``SOAP`` runs
the QR step in float32 (for bfloat16, says its comment): the float64 comparison hands its
module a ``torch`` whose ``float32`` is float64 (:func:`_soap_qr_in_float64`); the
unpatched difference is measured too; its ``merge_dims`` reshapes a tensor whose dimensions
all merge into one to ``[1]`` and fails, so ``merge_dims`` is checked as an identity.
"""

from __future__ import annotations

import copy
import io
import types
import warnings

import numpy as np
import pytest
import torch
from _paper_preconditioners import shampoo_loop, soap_loop

from descentlab import optim

pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
from pytorch_optimizer.optimizer import soap as _po_soap  # noqa: E402
from pytorch_optimizer.optimizer.utils.graft import LayerWiseGrafting  # noqa: E402

STEPS = 24
SHAPES = [(5, 4), (3, 2, 4), (6,)]


def _problem(shapes, seed=0):
    """Starting points and ``grad(t, ws)``: a noisy quadratic with a cubic term."""
    rng = np.random.default_rng(seed)
    w0 = [rng.standard_normal(s) for s in shapes]
    scales = [rng.uniform(0.5, 2.0, s) for s in shapes]
    noise = [[rng.standard_normal(s) for s in shapes] for _ in range(200)]

    def grad(t, ws):
        return [c * w + 0.1 * w**3 + 0.5 * n for w, c, n in zip(ws, scales, noise[t], strict=True)]

    return w0, grad


def _torch_run(make, w0, grad, steps=STEPS):
    ps = [torch.nn.Parameter(torch.tensor(w, dtype=torch.float64)) for w in w0]
    opt = make(ps)
    out = []
    for t in range(1, steps + 1):
        gs = grad(t, [p.detach().numpy().copy() for p in ps])
        for p, g in zip(ps, gs, strict=True):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append([p.detach().numpy().copy() for p in ps])
    return out


def _max_rel(a, b) -> float:
    worst = 0.0
    for step_a, step_b in zip(a, b, strict=True):
        for x, y in zip(step_a, step_b, strict=True):
            worst = max(worst, float(np.abs(x - y).max() / max(np.abs(y).max(), 1e-300)))
    return worst


def _moved(run, w0) -> bool:
    return all(not np.allclose(w, w_0) for w, w_0 in zip(run[-1], w0, strict=True))


# ------------------------------------------------------------------------------------------
# Shampoo

#: (id, descentlab Shampoo kwargs, pytorch-optimizer ScalableShampoo kwargs, paper loop kwargs)
SCALABLE = [
    ("sgd-graft-blocks", dict(betas=(0.9, 0.99), block_size=3, precondition_frequency=3,
     start_preconditioning_step=4, grafting="sgd", epsilon=1e-6),
     dict(betas=(0.9, 0.99), block_size=3, preconditioning_compute_steps=3,
          start_preconditioning_step=4, graft_type=LayerWiseGrafting.SGD, matrix_eps=1e-6,
          nesterov=False),
     dict(beta1=0.9, beta2=0.99, block=3, freq=3, start=4, graft="sgd", eps=1e-6)),
    ("adagrad-graft-nesterov-wd", dict(betas=(0.8, 0.95), block_size=4,
     precondition_frequency=2, start_preconditioning_step=5, grafting="adagrad", graft_eps=1e-6,
     epsilon=1e-5, nesterov=True, weight_decay=0.1),
     dict(betas=(0.8, 0.95), block_size=4, preconditioning_compute_steps=2,
          start_preconditioning_step=5, graft_type=LayerWiseGrafting.ADAGRAD, diagonal_eps=1e-6,
          matrix_eps=1e-5, nesterov=True, weight_decay=0.1, decoupled_weight_decay=True),
     dict(beta1=0.8, beta2=0.95, block=4, freq=2, start=5, graft="adagrad", graft_eps=1e-6,
          eps=1e-5, nesterov=True, weight_decay=0.1)),
    ("sgd-graft-every-step", dict(betas=(0.5, 0.999), block_size=512,
     precondition_frequency=1, start_preconditioning_step=1, grafting="sgd", epsilon=1e-4),
     dict(betas=(0.5, 0.999), block_size=512, preconditioning_compute_steps=1,
          start_preconditioning_step=1, graft_type=LayerWiseGrafting.SGD, matrix_eps=1e-4,
          nesterov=False),
     dict(beta1=0.5, beta2=0.999, freq=1, start=1, graft="sgd", eps=1e-4)),
    ("rmsprop-graft", dict(betas=(0.9, 0.9), block_size=2, precondition_frequency=4,
     start_preconditioning_step=3, grafting="rmsprop", graft_eps=1e-7, epsilon=1e-6),
     dict(betas=(0.9, 0.9), block_size=2, preconditioning_compute_steps=4,
          start_preconditioning_step=3, graft_type=LayerWiseGrafting.RMSPROP, diagonal_eps=1e-7,
          matrix_eps=1e-6, nesterov=False),
     dict(beta1=0.9, beta2=0.9, block=2, freq=4, start=3, graft="rmsprop", graft_eps=1e-7,
          eps=1e-6)),
    ("no-graft", dict(betas=(0.0, 0.99), block_size=3, precondition_frequency=1,
     start_preconditioning_step=1, grafting="none", epsilon=1e-6),
     dict(betas=(0.0, 0.99), block_size=3, preconditioning_compute_steps=1,
          start_preconditioning_step=1, graft_type=LayerWiseGrafting.NONE, matrix_eps=1e-6,
          nesterov=False),
     dict(beta1=0.0, beta2=0.99, block=3, freq=1, start=1, graft="none", eps=1e-6)),
]  # fmt: skip

#: the paper's Algorithms 1 and 2: summed statistics from eps I, roots every step, no grafting
PAPER = dict(betas=(0.0, 1.0), grafting="none", precondition_frequency=1,
             start_preconditioning_step=1, merge_dims=False, block_size=10_000)  # fmt: skip


def _ours(cls, lr, **kw):
    return lambda ps: cls(ps, lr=lr, fused=False, **kw)


def test_shampoo_is_the_papers_algorithm_and_pytorch_optimizers_shampoo():
    """Matrices (Algorithm 1), an order-3 tensor and a vector (Algorithm 2: -1/2k roots;
    a vector's is full-matrix AdaGrad) against the paper loop and pytorch-optimizer's
    ``Shampoo`` (momentum 0: its momentum mixes the raw gradient into the last update)."""
    w0, grad = _problem(SHAPES)
    ours = _torch_run(_ours(optim.Shampoo, 0.05, epsilon=1e-4, **PAPER), w0, grad)
    paper = shampoo_loop(w0, grad, STEPS, 0.05, 1e-4)
    ref = _torch_run(lambda ps: pytorch_optimizer.Shampoo(ps, lr=0.05, matrix_eps=1e-4), w0, grad)
    assert _moved(ours, w0)
    assert _max_rel(ours, paper) < 1e-11
    assert _max_rel(ours, ref) < 1e-11


@pytest.mark.parametrize(("ours", "scalable", "loop"), [c[1:] for c in SCALABLE],
                         ids=[c[0] for c in SCALABLE])  # fmt: skip
def test_distributed_shampoo_settings_match_scalable_shampoo_and_the_paper_loop(
    ours, scalable, loop
):
    """Blocks, preconditioner frequency, start step, grafting (SGD, AdaGrad, RMSProp, none),
    momentum (Nesterov), averaged or summed statistics, decoupled weight decay."""
    w0, grad = _problem([*SHAPES[:2], (7,)])
    lr = 0.02
    got = _torch_run(_ours(optim.Shampoo, lr, merge_dims=False, precondition_1d=False, **ours),
                     w0, grad)  # fmt: skip
    ref = _torch_run(
        lambda ps: pytorch_optimizer.ScalableShampoo(
            ps, lr=lr, use_svd=True, shape_interpretation=False, **scalable
        ),
        w0,
        grad,
    )
    paper = shampoo_loop(w0, grad, STEPS, lr, precondition_1d=False, **loop)
    assert _moved(got, w0)
    assert _max_rel(got, ref) < 1e-10
    assert _max_rel(got, paper) < 1e-10


def test_adam_grafting_and_preconditioned_vectors_match_the_paper_loop():
    """Adam grafting (RMSProp's with bias correction; pytorch-optimizer has none) with blocks,
    Nesterov momentum, weight decay and preconditioned vectors."""
    w0, grad = _problem(SHAPES)
    kw = dict(betas=(0.9, 0.95), block_size=3, precondition_frequency=3,
              start_preconditioning_step=4, grafting="adam", graft_eps=1e-8, epsilon=1e-6,
              nesterov=True, weight_decay=0.05)  # fmt: skip
    got = _torch_run(_ours(optim.Shampoo, 0.01, merge_dims=False, **kw), w0, grad)
    paper = shampoo_loop(w0, grad, STEPS, 0.01, 1e-6, beta1=0.9, beta2=0.95, block=3, freq=3,
                         start=4, graft="adam", nesterov=True, weight_decay=0.05)  # fmt: skip
    assert _moved(got, w0)
    assert _max_rel(got, paper) < 1e-10


@pytest.mark.parametrize("cls", [optim.Shampoo, optim.SOAP], ids=["shampoo", "soap"])
def test_merge_dims_is_the_optimizer_of_the_merged_reshape(cls):
    """A (2, 1, 3, 4) tensor with merge_dims steps as the optimizer of its merged shape
    (Shampoo with block 6: (6, 4); SOAP with max_precondition_dim 6: (6, 4))."""
    limit = {"block_size": 6} if cls is optim.Shampoo else {"max_precondition_dim": 6}
    w0, grad = _problem([(2, 1, 3, 4)])
    merged = [w.reshape(6, 4) for w in w0]

    def grad_merged(t, ws):
        return [g.reshape(6, 4) for g in grad(t, [w.reshape(2, 1, 3, 4) for w in ws])]

    kw = {"precondition_frequency": 2, **limit}
    a = _torch_run(_ours(cls, 0.01, merge_dims=True, **kw), w0, grad)
    b = _torch_run(_ours(cls, 0.01, merge_dims=False, **kw), merged, grad_merged)
    assert _max_rel([[w.reshape(6, 4) for w in s] for s in a], b) == 0.0
    c = _torch_run(_ours(cls, 0.01, merge_dims=False, **kw), w0, grad)
    assert _max_rel(c, a) > 1e-6  # unmerged: an order-4 tensor, another method


# ------------------------------------------------------------------------------------------
# SOAP

SOAP_SHAPES = [(4, 3), (3, 4), (2,), (5,)]

#: (id, kwargs of both SOAPs, paper loop kwargs)
SOAP_SETTINGS = [
    ("reference-defaults-freq3", dict(betas=(0.95, 0.95), precondition_frequency=3),
     dict(betas=(0.95, 0.95), freq=3)),
    ("betas-shampoo-beta-wd", dict(betas=(0.9, 0.99), shampoo_beta=0.8, weight_decay=0.1,
     eps=1e-6, precondition_frequency=2),
     dict(betas=(0.9, 0.99), shampoo_beta=0.8, weight_decay=0.1, eps=1e-6, freq=2)),
    ("vectors-and-a-kept-dimension", dict(precondition_1d=True, max_precondition_dim=3,
     precondition_frequency=4, correct_bias=False),
     dict(precondition_1d=True, max_dim=3, freq=4, correct_bias=False)),
]  # fmt: skip


def _soap_qr_in_float64(monkeypatch):
    """pytorch-optimizer's SOAP casts to float32 for its QR step; its module gets a ``torch``
    whose ``float32`` is float64 (everything else is torch's)."""
    proxy = types.SimpleNamespace(**{k: getattr(torch, k) for k in dir(torch) if k[0] != "_"})
    proxy.float32 = torch.float64
    monkeypatch.setattr(_po_soap, "torch", proxy)


@pytest.mark.parametrize(("kw", "loop"), [c[1:] for c in SOAP_SETTINGS],
                         ids=[c[0] for c in SOAP_SETTINGS])  # fmt: skip
def test_soap_matches_pytorch_optimizers_and_algorithm_3(kw, loop, monkeypatch):
    w0, grad = _problem(SOAP_SHAPES, seed=1)
    got = _torch_run(_ours(optim.SOAP, 0.01, **kw), w0, grad)
    paper = soap_loop(w0, grad, STEPS, 0.01, **loop)
    assert _moved(got, w0)
    assert _max_rel(got, paper) < 1e-10
    float32_qr = _torch_run(lambda ps: pytorch_optimizer.SOAP(ps, lr=0.01, **kw), w0, grad)
    assert _max_rel(got, float32_qr) < 1e-5  # its QR in float32
    _soap_qr_in_float64(monkeypatch)
    ref = _torch_run(lambda ps: pytorch_optimizer.SOAP(ps, lr=0.01, **kw), w0, grad)
    assert _max_rel(got, ref) < 1e-12


def test_soap_first_step_only_initialises():
    w = torch.nn.Parameter(torch.ones(3, 2, dtype=torch.float64))
    opt = optim.SOAP([w], lr=0.1, fused=False)
    w.grad = torch.randn(3, 2, dtype=torch.float64)
    opt.step()
    assert torch.equal(w, torch.ones(3, 2, dtype=torch.float64))
    bases = opt.state[w]["soap_bases"]
    assert [tuple(q.shape) for q in bases] == [(3, 3), (2, 2)]
    for q in bases:  # orthonormal
        torch.testing.assert_close(q.T @ q, torch.eye(q.shape[0], dtype=torch.float64))


# ------------------------------------------------------------------------------------------
# the optimizer contract: state_dict round trip, bad input


def _net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3), torch.nn.Flatten(),
                               torch.nn.Linear(24, 3))  # fmt: skip


def _train(net, opt, batches):
    for x, y in batches:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()


@pytest.mark.parametrize(
    ("cls", "kw"),
    [(optim.Shampoo, dict(lr=1e-2, precondition_frequency=3, start_preconditioning_step=2,
                          block_size=8)),
     (optim.SOAP, dict(lr=1e-2, precondition_frequency=3, precondition_1d=True))],
    ids=["shampoo", "soap"],
)  # fmt: skip
def test_state_dict_round_trip_resumes_bit_for_bit(cls, kw):
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 2, 8, generator=gen), torch.randint(0, 3, (8,), generator=gen))
               for _ in range(14)]  # fmt: skip
    straight = _net()
    _train(straight, cls(straight.parameters(), fused=False, **kw), batches)
    first = _net()
    opt = cls(first.parameters(), fused=False, **kw)
    _train(first, opt, batches[:7])
    buf = io.BytesIO()
    torch.save({"net": first.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    resumed = _net(seed=5)
    resumed.load_state_dict(saved["net"])
    opt2 = cls(resumed.parameters(), fused=False, **kw)
    opt2.load_state_dict(saved["opt"])
    _train(resumed, opt2, batches[7:])
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    twin = copy.deepcopy(opt2)
    assert twin.state_dict()["param_groups"] == opt2.state_dict()["param_groups"]


BAD = [
    (optim.Shampoo, {"betas": (0.9, 1.5)}, ValueError, r"betas\[1\] must be .*, got 1.5"),
    (optim.Shampoo, {"betas": (1.0, 0.9)}, ValueError, r"betas\[0\] must be .*, got 1.0"),
    (optim.Shampoo, {"epsilon": 0.0}, ValueError, r"epsilon must be .*> 0.*, got 0.0"),
    (optim.Shampoo, {"block_size": 0}, ValueError, r"block_size must be a positive integer, got 0"),
    (optim.Shampoo, {"block_size": 2.5}, TypeError, r"block_size must be a positive integer"),
    (optim.Shampoo, {"precondition_frequency": 0}, ValueError, r"precondition_frequency must"),
    (optim.Shampoo, {"start_preconditioning_step": -1}, ValueError, r"start_preconditioning_s"),
    (optim.Shampoo, {"grafting": "lamb"}, ValueError, r"grafting must be one of .*'adam'.*lamb"),
    (optim.Shampoo, {"root_dtype": "float16"}, ValueError, r"root_dtype must be one of"),
    (optim.Shampoo, {"nesterov": 1}, TypeError, r"nesterov must be True or False, got 1"),
    (optim.Shampoo, {"betas": (0.9, 1.0), "grafting": "adam"}, ValueError,
     r"betas\[1\] must be < 1 with grafting='adam'"),
    (optim.Shampoo, {"weight_decay": -1.0}, ValueError, r"weight_decay must be .*, got -1.0"),
    (optim.Shampoo, {"lr": torch.tensor([0.1, 0.2])}, ValueError,
     r"scale_by_shampoo takes a scalar lr; a batched one is not supported"),
    (optim.SOAP, {"lr": torch.tensor([0.1, 0.2])}, ValueError,
     r"scale_by_soap takes a scalar lr; a batched one is not supported"),
    (optim.SOAP, {"betas": (0.9, 1.0)}, ValueError, r"betas\[1\] must be .*, got 1.0"),
    (optim.SOAP, {"shampoo_beta": 1.0}, ValueError, r"shampoo_beta must be None or .*, got 1.0"),
    (optim.SOAP, {"precondition_frequency": 0}, ValueError, r"precondition_frequency must"),
    (optim.SOAP, {"max_precondition_dim": 0}, ValueError, r"max_precondition_dim must"),
    (optim.SOAP, {"eps": -1e-8}, ValueError, r"eps must be .*, got -1e-08"),
    (optim.SOAP, {"weight_decay": "0.1"}, TypeError, r"weight_decay must be .*, got '0.1'"),
    (optim.SOAP, {"correct_bias": None}, TypeError, r"correct_bias must be True or False"),
    (optim.SOAP, {"lr": -1.0}, ValueError, r"lr must be .*, got -1.0"),
]  # fmt: skip


@pytest.mark.parametrize(("cls", "kw", "error", "match"), BAD,
                         ids=[f"{c.__name__}-{next(iter(k))}" for c, k, _, _ in BAD])  # fmt: skip
def test_bad_hyperparameters_are_refused_in_one_line_before_any_change(cls, kw, error, match):
    with pytest.raises(error, match=match) as info:
        cls([torch.nn.Parameter(torch.ones(2, 2))], fused=False, **kw)
    assert "\n" not in str(info.value)
    w = torch.nn.Parameter(torch.ones(2, 2))
    opt = cls([w], fused=False)
    w.grad = torch.ones(2, 2)
    opt.param_groups[0].update(kw)  # as a scheduler or a user would, after construction
    with pytest.raises(error, match=match):
        opt.step()
    assert torch.equal(w, torch.ones(2, 2)) and not opt.state[w]


# ------------------------------------------------------------------------------------------
# the playground


@pytest.mark.parametrize("name", ["shampoo", "soap"])
def test_the_playground_preconditions_a_2d_point_with_a_full_2x2_matrix(name):
    """A start on a 2-D landscape is a (1, 2) parameter: Shampoo merges it into the vector
    (the root of its 2 x 2 statistics, the paper's full-matrix case), SOAP keeps a 2 x 2
    basis; the playground's path is the optimizer's on a (2,) parameter (SOAP's with
    ``precondition_1d``)."""
    from descentlab.playground import compute
    from descentlab.problems import landscapes

    out = compute.run_paths({"landscape": "rosenbrock", "starts": [[-1.0, 1.5]], "steps": 30,
                             "optimizers": [{"name": name, "lr": 0.01}]})  # fmt: skip
    f = landscapes.get("rosenbrock")
    x = torch.nn.Parameter(torch.tensor([-1.0, 1.5], dtype=torch.float64))
    kw = {"precondition_1d": True} if name == "soap" else {}
    opt = optim.get(name)([x], lr=0.01, fused=False, **kw)
    path = [x.tolist()]
    for _ in range(30):
        opt.zero_grad()
        f(x[None]).sum().backward()
        opt.step()
        path.append(x.tolist())
    got = np.array(out["runs"][0]["paths"][0])
    assert np.abs(got - np.array(path)).max() <= 1e-12 * np.abs(path).max()
    assert not np.allclose(got[-1], got[0])


# ------------------------------------------------------------------------------------------
# descentlab compare (both step on MNIST-1D's CNN and the character
# language model through the comparison, with its equal budgets)

COMPARED = {
    "mnist1d": dict(problem="mnist1d", problem_options={"num_samples": 1000}, model="cnn"),
    "charlm": dict(
        problem="charlm",
        problem_options=dict(n_chars=20_000, context=16, d_model=16, n_heads=2, n_layers=1),
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("problem", list(COMPARED))
def test_shampoo_and_soap_train_through_compare(problem, tmp_path):
    """A small comparison (3 learning rates each, the same steps and seeds for both): every
    run completes, each optimizer's chosen setting beats chance (the protocol's check), and
    its refit runs' test loss lies below the loss of a uniform guess."""
    from descentlab.experiments.compare import CompareSpec, compare

    spec = CompareSpec(
        **COMPARED[problem], optimizers=["shampoo", "soap"], batch_size=32, steps=60,
        tune_steps=40, lrs_per_optimizer=3, seeds=2, refine=False, landscapes=(),
    )  # fmt: skip
    result = compare(spec, tmp_path, workers=1, progress=False)
    chance = np.log(10 if problem == "mnist1d" else 97)  # classes; the vocabulary
    assert [r.choice.optimizer for r in result.results] == ["shampoo", "soap"]
    for r in result.results:
        assert all(s == "completed" for c in r.candidates for s in c.statuses), r.choice
        assert r.best is not None and r.failed_final == 0 and r.diverged_final == 0
        assert len(r.refit_runs) == 2
        assert np.isfinite(r.test_loss[0]) and r.test_loss[0] < chance, (r.choice, r.test_loss)


def test_the_family_tree_holds_shampoo_and_soap():
    """``optim.family()`` (the chains the family tree draws) reads every registered optimizer:
    Shampoo in the adaptive family and SOAP in Adam's, each with its own preconditioning rule."""
    with warnings.catch_warnings():  # "no fused form" is announced once per process
        warnings.simplefilter("ignore", RuntimeWarning)
        tree = optim.family()
    assert set(tree) == set(optim.NAMES)
    assert tree["shampoo"] == ["maximize", "scale_by_shampoo", "add_decayed_weights", "scale_by_lr"]
    assert tree["soap"] == ["maximize", "scale_by_soap", "scale_by_lr"]
    assert optim.record("shampoo").family == "adaptive" and optim.record("soap").family == "adam"


# ------------------------------------------------------------------------------------------
# reordered sums: no more fragile than the references


def _reordering():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "matrix_reordering.py"
    spec = importlib.util.spec_from_file_location("matrix_reordering", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REORDERING = _reordering()
MATCHED = [name for name, (_, ref) in REORDERING.arms().items() if ref is not None]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("setting", MATCHED)
def test_a_reordered_sum_moves_shampoo_and_soap_no_more_than_their_references(setting, dtype):
    """5 steps with the batch's rows reversed (the same gradient summed in another order)
    move descentlab's Shampoo and SOAP no more than pytorch-optimizer's ``Shampoo``,
    ``ScalableShampoo`` and ``SOAP`` at the same settings, in float32 and float64: within 2x
    in float32 (the rounding of two codes differs), 3x in float64, where both move by tens of
    ulps (docs/optimizers.md: what remains, and why)."""
    ours, ref = REORDERING.arms()[setting]
    mine, theirs = REORDERING.spread(ours, dtype), REORDERING.spread(ref, dtype)
    factor, ulps = (2, 10) if dtype == torch.float32 else (3, 100)
    assert mine <= factor * theirs + ulps * torch.finfo(dtype).eps, (mine, theirs)
