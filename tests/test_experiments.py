"""The lectures' experiments: their building blocks against independent references, each
experiment's qualitative result on its quick setting, figures, files and the CLI."""

from __future__ import annotations

import inspect
import json
import math

import numpy as np
import pytest
import scipy.stats
import torch
from matplotlib.image import imread
from torch import nn

from descentlab import optim, schedules
from descentlab.book import experiments as lectures
from descentlab.book.experiments import bias_variance as BV
from descentlab.book.experiments import ensembles as EN
from descentlab.book.experiments import momentum_forms as MF
from descentlab.book.experiments import regularization as RG
from descentlab.book.experiments import schedules as SC
from descentlab.book.experiments import sharpness as SH
from descentlab.book.experiments._common import ExperimentResult, experiment, format_value
from descentlab.book.render import experiment_figures as EF
from descentlab.cli import main

_CACHE: dict[str, ExperimentResult] = {}
#: settings beside the quick one: regularization with one seed (the book's preset runs 5), for
#: its own test and its figures alike
_OPTIONS = {"regularization": {"seeds": 1}}


def quick(name: str) -> ExperimentResult:
    """Each experiment's quick setting (with :data:`_OPTIONS`), run once per test process."""
    if name not in _CACHE:
        _CACHE[name] = lectures.run(name, quick=True, **_OPTIONS.get(name, {}))
    return _CACHE[name]


# ------------------------------------------------------------------------------------------
# sharpness: Keskar's metric against closed forms


def _linear_mse(weights: np.ndarray, n: int = 64, seed: int = 0):
    """A bias-free linear model at the least-squares minimum of an orthogonal design, so the
    MSE is exactly ``f0 + sum_i h_i d_i^2`` around it (Hessian/2 = diag(h))."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, len(weights))))
    h = np.asarray(weights, dtype=np.float64)
    x = q * np.sqrt(n * h)  # x^T x / n = diag(h)
    w_true = rng.normal(size=len(weights))
    y = x @ w_true + 0.1 * rng.normal(size=n)
    w_star, *_ = np.linalg.lstsq(x, y, rcond=None)
    model = nn.Linear(len(weights), 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(w_star)[None])
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)[:, None]
    f0 = float(np.mean((x @ w_star - y) ** 2))
    return model, xt, yt, w_star, h, f0


@pytest.mark.parametrize("eps", [1e-3, 5e-4, 2e-2])
@pytest.mark.parametrize("h", [[2.0], [1.0, 3.0, 0.5]])
def test_sharpness_full_space_matches_the_box_maximum_of_a_quadratic(eps, h):
    # f(x + d) - f(x) = sum_i h_i d_i^2 at the minimum: the maximum over the box
    # |d_i| <= eps (|x_i| + 1) is at a corner, sum_i h_i b_i^2.
    model, x, y, w, hh, f0 = _linear_mse(h)
    b = eps * (np.abs(w) + 1.0)
    expected = 100.0 * float(np.sum(hh * b**2)) / (1.0 + f0)
    got = SH.epsilon_sharpness(model, x, y, eps=eps, subspace_dim=None, maxiter=20)
    assert got.loss == pytest.approx(f0, rel=1e-12)
    assert got.sharpness == pytest.approx(expected, rel=1e-6)
    assert got.n_params == len(h) and got.subspace_dim is None


@pytest.mark.parametrize("p", [1, 2, 3])
def test_sharpness_subspace_against_the_box_corners(p):
    # In the subspace the rise is (Ay)^T H (Ay), a convex quadratic in y: its local maxima
    # over the box |y_i| <= eps (|(A^+ x)_i| + 1) are corners, its global maximum the best of
    # the 2^p corners. A is rebuilt here from the same seed, A^+ by numpy's pinv.
    model, x, y, w, h, f0 = _linear_mse([1.0, 4.0, 0.25])
    eps, seed = 1e-2, 3
    a = torch.randn(3, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    a = a.numpy()
    b = eps * (np.abs(np.linalg.pinv(a) @ w) + 1.0)
    corners = np.array(np.meshgrid(*[[-1.0, 1.0]] * p)).reshape(p, -1).T * b
    values = np.array([100.0 * float((a @ c) @ np.diag(h) @ (a @ c)) / (1.0 + f0)
                       for c in corners])  # fmt: skip
    one = SH.epsilon_sharpness(model, x, y, eps=eps, subspace_dim=p, maxiter=30, seed=seed)
    assert np.min(np.abs(values / one.sharpness - 1.0)) < 1e-6  # a local maximum: a corner
    assert one.sharpness <= values.max() * (1 + 1e-9)
    many = SH.epsilon_sharpness(model, x, y, eps=eps, subspace_dim=p, maxiter=30, seed=seed,
                                starts=12)  # fmt: skip
    assert many.sharpness == pytest.approx(values.max(), rel=1e-6)


def test_interpolation_ends_are_the_two_models_losses():
    torch.manual_seed(0)
    a, b = nn.Linear(5, 3), nn.Linear(5, 3)
    x, y = torch.randn(40, 5), torch.randint(0, 3, (40,))
    losses, accs = SH.interpolate_losses(a, b, x, y, [0.0, 1.0])
    for i, m in enumerate((a, b)):
        with torch.no_grad():
            out = m(x).double()
        assert losses[i] == pytest.approx(float(nn.functional.cross_entropy(out, y)), rel=1e-6)
        assert accs[i] == pytest.approx(float((out.argmax(1) == y).double().mean()))


def test_perturbation_at_zero_is_the_minimum_and_directions_are_layer_normalized():
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x, y = torch.randn(30, 4), torch.randint(0, 2, (30,))
    curves = SH.perturbation_losses(m, x, y, [-0.1, 0.0, 0.1], n_directions=3)
    with torch.no_grad():
        f0 = float(nn.functional.cross_entropy(m.double()(x.double()), y))
    assert curves.shape == (3, 3)
    np.testing.assert_allclose(curves[:, 1], f0, rtol=1e-12)
    flat = SH._FlatLoss(m, x, y, nn.functional.cross_entropy)
    dirs = flat.layer_directions(2, torch.Generator().manual_seed(0))
    i = 0
    for p in m.parameters():
        k = p.numel()
        np.testing.assert_allclose(dirs[:, i : i + k].norm(dim=1), p.detach().norm(), rtol=1e-9)
        i += k


@pytest.mark.arith
def test_sharpness_experiment_rows_and_intervals_follow_the_seeds():
    r = quick("sharpness")
    sizes = r.config["batch_sizes"]
    assert [row["batch_size"] for row in r.rows] == sizes and sizes == sorted(sizes)
    assert r.rows[0]["batch"] == "small" and r.rows[-1]["batch"] == "large"
    for row in r.rows:  # every batch size stopped at the target training loss
        assert row["train_loss"] <= r.config["target_loss"]
        assert row["gap"] == pytest.approx(row["train_acc"] - row["test_acc"])
    per, stats = r.data["per_seed"], r.data["stats"]
    key = f"sharp_full_{r.config['eps'][0]:g}"
    small, large = np.asarray(per["small"][key]), np.asarray(per["large"][key])
    assert len(small) == r.config["seeds"] >= 2
    lo, hi = scipy.stats.t.interval(0.95, len(large) - 1, loc=large.mean(),
                                    scale=scipy.stats.sem(large))  # fmt: skip
    last = stats[key]["by_batch"][-1]
    assert (last["mean"], last["lo"], last["hi"]) == pytest.approx((large.mean(), lo, hi))
    d = np.log(large) - np.log(small)
    lo, hi = scipy.stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=scipy.stats.sem(d))
    assert (stats[key]["ratio"], stats[key]["ratio_lo"], stats[key]["ratio_hi"]) == pytest.approx(
        (np.exp(d.mean()), np.exp(lo), np.exp(hi))
    )
    assert stats[key]["verdict"] == SH.verdict(last["ratio"], last["ratio_lo"], last["ratio_hi"])
    text = next(t for t in r.checks if "sharper" in t)
    assert r.checks[text] == (stats[key]["verdict"] == "sharper")  # a tie is not a win
    assert r.checks["every run reached the target training loss"]
    assert {r.status(t) for t in r.checks} <= {"ok", "not_reproduced"}  # never a ✘


def test_a_run_stopped_at_its_cap_is_not_reproduced_never_failed(tmp_path):
    # A run that stops at max_steps above the target is no evidence against the claim: the
    # check, the card's verdict and the Markdown show it as not reproduced (○), not as ✘.
    from descentlab.book import checks as BC
    from descentlab.book import generalization as G

    r = lectures.run("sharpness", quick=True, max_steps=20)
    text = "every run reached the target training loss"
    assert not r.checks[text] and r.status(text) == "not_reproduced" and r.mark(text) == "○"
    assert r.measured[text]["measured"].startswith("no: batch 16 seed 0 at loss ")
    assert "after 20 steps" in r.measured[text]["measured"]
    assert any("within its cap of 20 steps" in n for n in r.notes)
    assert f"- ○ {text}" in r.to_markdown()
    _, js, _ = EF.write(r, tmp_path, dpi=30)
    back = ExperimentResult.load(js)  # the mark survives the JSON
    assert back.status(text) == "not_reproduced"

    class Ctx:
        def experiment(self, name):
            return back

    [shown] = BC.from_experiment("sharpness", "reached")(Ctx()).checks
    assert shown.status == "not_reproduced"
    verdict = [c for c in G.keskar_evidence(back).checks if c.text.startswith("verdict")]
    assert [c.status for c in verdict] == ["not_reproduced"]
    assert verdict[0].measured.startswith("not at equal loss: 4 run(s)")


@pytest.mark.parametrize(
    ("ok", "unmet", "status", "mark"),
    [
        (True, "fail", "ok", "✔"),
        (True, "not_reproduced", "ok", "✔"),
        (False, "fail", "fail", "✘"),
        (False, "not_reproduced", "not_reproduced", "○"),
    ],
)
def test_a_checks_status_and_mark(ok, unmet, status, mark):
    r = ExperimentResult("demo", "A demo", [], [])
    r.check("a claim", ok, 1, 1, unmet=unmet)
    assert (r.status("a claim"), r.mark("a claim")) == (status, mark)
    r.check("a claim", False, 1, 1)  # recorded again: the last call's kind holds
    assert r.status("a claim") == "fail"


def test_a_checks_unmet_kind_is_checked():
    r = ExperimentResult("demo", "A demo", [], [])
    with pytest.raises(ValueError, match="unmet must be 'fail' or 'not_reproduced', got 'open'"):
        r.check("a claim", False, 1, 1, unmet="open")


@pytest.mark.arith
def test_sharpness_one_seed_has_no_interval_and_reads_back_from_json(tmp_path):
    from descentlab.book import generalization as G

    r = lectures.run("sharpness", quick=True, seeds=1)
    s = r.data["stats"][f"sharp_full_{r.config['eps'][0]:g}"]
    assert (s["ratio_lo"], s["ratio_hi"]) == (0.0, np.inf) and s["verdict"] != "sharper"
    assert not any(ok for text, ok in r.checks.items() if "sharper" in text)
    _, js, _ = EF.write(r, tmp_path, dpi=30)  # infinite bounds are None in the JSON
    back = ExperimentResult.load(js)
    assert EF.figures(back)["sharpness"] is not None
    verdict = G.keskar_evidence(back).checks
    assert [c.status for c in verdict if c.text.startswith("verdict")] == ["fail"]


def test_t_interval_and_ratio_interval_against_scipy():
    x = [1.3, 0.7, 2.2, 1.9, 1.1]
    m, lo, hi = SH.t_interval(x, 0.9)
    ref = scipy.stats.t.interval(0.9, 4, loc=np.mean(x), scale=scipy.stats.sem(x))
    assert (m, lo, hi) == pytest.approx((np.mean(x), *ref), rel=1e-12)
    assert SH.t_interval([2.0]) == (2.0, -np.inf, np.inf)  # one seed: no interval
    assert SH.t_interval([2.0, 2.0]) == (2.0, 2.0, 2.0)
    large, small = [4.0, 9.0, 2.5, 30.0, 7.0], [1.0, 2.0, 2.0, 3.0, 0.5]
    d = np.log(large) - np.log(small)
    ref = scipy.stats.t.interval(0.95, 4, loc=d.mean(), scale=scipy.stats.sem(d))
    got = SH.ratio_interval(large, small)
    assert got == pytest.approx((np.exp(d.mean()), *np.exp(ref)), rel=1e-12)
    # the geometric mean of the per-seed ratios
    assert got[0] == pytest.approx(scipy.stats.gmean(np.divide(large, small)), rel=1e-12)
    assert np.isnan(SH.ratio_interval([1.0, 0.0], [1.0, 1.0])[0])
    with pytest.raises(ValueError, match="must pair up"):
        SH.ratio_interval([1.0], [1.0, 2.0])


@pytest.mark.parametrize(
    ("ratio", "lo", "hi", "expected"),
    [(3.0, 1.5, 6.0, "sharper"), (1.8, 0.9, 3.6, "tie"), (0.93, 0.8, 1.1, "reversed"),
     (0.5, 0.3, 0.8, "reversed"), (1.0, 1.0, 1.0, "tie"), (np.nan, np.nan, np.nan, "undefined")],
)  # fmt: skip
def test_sharpness_verdict_never_calls_a_tie_a_win(ratio, lo, hi, expected):
    assert SH.verdict(ratio, lo, hi) == expected


# ------------------------------------------------------------------------------------------
# bias-variance


def test_decompose_on_a_hand_example_and_against_the_textbook_identity():
    d = BV.decompose(np.array([[0.0, 1.0], [2.0, 1.0]]), np.array([0.0, 0.0]), 0.5)
    assert (d["bias2"], d["variance"], d["noise"], d["total"]) == (0.5, 1.0, 0.25, 1.75)
    rng = np.random.default_rng(0)
    p, f = rng.normal(size=(7, 11)), rng.normal(size=11)
    t = f + 0.3 * rng.normal(size=(7, 11))
    d = BV.decompose(p, f, 0.3, t)
    mean = p.mean(0)
    # bias2 + variance = mean (pbar - f)^2 + the population (ddof=0) variance, exactly
    assert d["bias2"] + d["variance"] == pytest.approx(
        np.mean((mean - f) ** 2) + np.mean(p.var(0)), rel=1e-12
    )
    assert d["mse"] == pytest.approx(np.mean((t - p) ** 2), rel=1e-12)


def test_polynomial_fits_equal_numpy_polyfit():
    rng = np.random.default_rng(1)
    xs = rng.uniform(-1, 1, size=(3, 20))
    ys = np.sin(3 * xs) + 0.1 * rng.normal(size=xs.shape)
    grid = np.linspace(-1, 1, 9)
    for degree in (0, 3, 7):
        got = BV.fit_polynomials(torch.from_numpy(xs), torch.from_numpy(ys), degree,
                                 torch.from_numpy(grid)).numpy()  # fmt: skip
        ref = [np.polyval(np.polyfit(xs[r], ys[r], degree), grid) for r in range(3)]
        np.testing.assert_allclose(got, ref, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("degree", [0, 2, 5])
def test_poly_theory_variance_at_the_design_points_is_sigma2_p_over_n(degree):
    # The hat matrix's trace is the number of coefficients: mean leverage (d + 1) / n.
    x = np.linspace(-1, 1, 15)
    out = BV.poly_theory(x, np.sin(x), degree, x, np.sin(x), noise_std=0.3)
    assert out["variance"] == pytest.approx(0.09 * (degree + 1) / 15, rel=1e-10)
    exact = BV.poly_theory(x, x**2, 2, x, x**2, noise_std=0.3)
    assert exact["bias2"] == pytest.approx(0.0, abs=1e-20)


def test_batched_mlps_are_independent_runs():
    # Changing the data of network 1 must not move network 0 (elementwise optimizer rules,
    # a sum of per-network losses), up to float64 rounding.
    g = torch.Generator().manual_seed(0)
    xs = torch.rand(3, 12, generator=g, dtype=torch.float64) * 2 - 1
    ys = torch.sin(3 * xs)
    ys2 = ys.clone()
    ys2[1] = -ys2[1] + 1.0
    grid = torch.linspace(-1, 1, 7, dtype=torch.float64)
    a = BV.fit_mlps(xs, ys, 6, grid, steps=60, seed=2)
    b = BV.fit_mlps(xs, ys2, 6, grid, steps=60, seed=2)
    torch.testing.assert_close(a[0], b[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a[2], b[2], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(a[1], b[1])


@pytest.mark.arith
def test_bias_variance_experiment_trade_off():
    r = quick("bias_variance")
    bias = np.array(r.column("bias2"))
    var = np.array(r.column("variance"))
    assert np.all(np.diff(var) > 0)  # the fixed design's variance grows with every degree
    assert bias[-1] < 0.01 * bias[0]
    for row in r.rows:  # Monte Carlo vs the closed form, and the decomposition identity
        assert row["variance"] == pytest.approx(row["variance_exact"], rel=0.25)
        assert row["mse"] == pytest.approx(row["total"], rel=0.1)
    best = next(row for row in r.rows if row["best"])
    assert r.rows[0]["size"] < best["size"] < r.rows[-1]["size"]
    assert all(r.checks.values()), r.checks


# ------------------------------------------------------------------------------------------
# ensembles


def _sklearn_trees(x, y, depth, seed):
    from sklearn.tree import DecisionTreeClassifier

    rs = np.random.RandomState(seed)
    return lambda w, m: DecisionTreeClassifier(
        max_depth=depth, random_state=rs.randint(np.iinfo(np.int32).max)
    ).fit(x, y, sample_weight=w)


@pytest.mark.parametrize(
    ("data", "depth", "rounds", "lr"),
    [("digits", 1, 12, 1.0), ("blobs", 2, 8, 0.5), ("digits", 2, 6, 0.3)],
)
def test_samme_reproduces_sklearn_adaboost(data, depth, rounds, lr):
    from sklearn.datasets import load_digits, make_blobs
    from sklearn.ensemble import AdaBoostClassifier
    from sklearn.tree import DecisionTreeClassifier

    if data == "digits":
        x, y = load_digits(return_X_y=True)
        x, y = x[:600], y[:600]
    else:
        x, y = make_blobs(400, centers=4, cluster_std=3.0, random_state=0)
    k = len(np.unique(y))
    ours = EN.samme(_sklearn_trees(x, y, depth, 7), x, y, k, rounds, learning_rate=lr)
    ref = AdaBoostClassifier(DecisionTreeClassifier(max_depth=depth), n_estimators=rounds,
                             learning_rate=lr, random_state=7).fit(x, y)  # fmt: skip
    n = len(ours.learners)
    assert n == len(ref.estimators_)
    np.testing.assert_allclose(ours.alphas, ref.estimator_weights_[:n], rtol=1e-12)
    np.testing.assert_allclose(ours.errors, ref.estimator_errors_[:n], rtol=1e-12)
    np.testing.assert_array_equal(ours.predict(x), ref.predict(x))


def test_samme_rejects_a_first_learner_no_better_than_chance():
    class Constant:
        def predict(self, x):
            return np.zeros(len(x), dtype=np.int64)

    y = np.arange(40) % 4
    with pytest.raises(ValueError, match="no better than chance"):
        EN.samme(lambda w, m: Constant(), np.zeros((40, 1)), y, 4, 3)
    with pytest.raises(ValueError, match="n_classes"):
        EN.samme(lambda w, m: Constant(), np.zeros((40, 1)), y, 1, 3)


def test_zero_weights_remove_examples_from_the_weighted_loss():
    # The weighted mean loss with 0/1 weights is the mean loss of the kept examples.
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 1, 8, 8, generator=g)
    y = torch.randint(0, 3, (40,), generator=g)
    w = torch.zeros(40)
    w[:25] = 1.0
    kw = dict(hidden=(8,), steps=15, lr=0.01, seed=4)
    a = EN.fit_network(x, y, 3, sample_weight=w, **kw)
    b = EN.fit_network(x[:25], y[:25], 3, **kw)
    torch.testing.assert_close(a.proba(x), b.proba(x), rtol=1e-5, atol=1e-6)


def test_prediction_variance_and_bagging_resamples():
    p = [np.array([[0.2, 0.8]]), np.array([[0.6, 0.4]])]
    assert EN.prediction_variance(p) == pytest.approx(0.04)
    seen = []
    EN.bagging(lambda idx, s: seen.append((idx.clone(), s)), 50, 3, seed=1)
    assert [s for _, s in seen] == [1000, 1001, 1002]
    assert all(idx.shape == (50,) and len(set(idx.tolist())) < 50 for idx, _ in seen)


@pytest.mark.arith
def test_ensembles_experiment_bagging_and_boosting():
    r = quick("ensembles")
    single = r.row(method="single network")
    member = r.row(method="one bagging member (mean)")
    bagged = r.row(method="bagging (soft vote)")
    weak, boosted = r.row(method="weak network"), r.row(method="AdaBoost.SAMME")
    assert bagged["pred_variance"] < single["pred_variance"]
    assert bagged["pred_variance"] < member["pred_variance"]
    assert bagged["test_acc"] > member["test_acc"]
    assert boosted["test_acc"] > weak["test_acc"] + 0.05
    ours, ref = r.row(method="our SAMME"), r.row(method="AdaBoostClassifier (SAMME)")
    assert ours["test_acc"] == ref["test_acc"] and ours["train_acc"] == ref["train_acc"]
    trees, tree = r.row(method="BaggingClassifier"), r.row(method="DecisionTreeClassifier")
    assert trees["test_acc"] > tree["test_acc"]


# ------------------------------------------------------------------------------------------
# regularization


@pytest.mark.parametrize(
    ("method", "field", "expected"),
    [
        ("early_stopping", "early_stopping",
         {"patience": 8, "monitor": "val/loss", "restore_best": True}),
        ("l2_coupled", "hyper", {"lr": 1e-3, "weight_decay": 5e-3}),
        ("decoupled_wd", "optimizer", "adamw"),
        ("decoupled_wd", "hyper", {"lr": 1e-3, "weight_decay": 1.0}),
        ("dropout", "model_options", {"hidden": [512], "dropout": 0.5}),
        ("mixup", "mixup_alpha", 0.4),
        ("cutmix", "cutmix_alpha", 1.0),
        ("label_smoothing", "label_smoothing", 0.1),
        ("none", "optimizer", "adam"),
    ],
)  # fmt: skip
def test_regularization_method_configs(method, field, expected):
    from descentlab.engine.config import RunConfig

    base = RunConfig(problem="digits", model="digits_mlp", model_options={"hidden": [512]},
                     optimizer="adam", hyper={"lr": 1e-3}, steps=10)  # fmt: skip
    configs = RG.method_configs(base, RG.DEFAULTS)
    assert set(configs) == set(RG.METHODS)
    assert getattr(configs[method], field) == expected
    configs[method].validate()
    assert base.hyper == {"lr": 1e-3} and base.model_options == {"hidden": [512]}


@pytest.mark.arith
def test_regularization_experiment_reduces_the_gap():
    r = quick("regularization")  # one seed (_OPTIONS): the book's preset runs 5
    none = r.row(method="none")
    assert none["train_acc"] > 0.99 and none["gap"] > 0.05
    others = [row for row in r.rows if row["method"] != "none"]
    assert len(others) == len(RG.METHODS) - 1
    smaller = [row["method"] for row in others if row["loss_gap"] < none["loss_gap"]]
    assert len(smaller) >= 5, smaller
    assert all(r.checks.values()), r.checks
    curves = r.data["curves"]["none"][0]["val/loss"]
    assert curves["steps"][0] == 0 and curves["steps"][-1] == r.config["steps"]


# ------------------------------------------------------------------------------------------
# schedules


@pytest.mark.parametrize("name", SC.SCHEDULES)
def test_schedule_specs_follow_the_lectures_formulas(name):
    from descentlab.engine.config import build_schedule

    steps, r = 200, 0.01
    spec = SC.schedule_specs(steps, r)[name]
    t = np.arange(steps)
    expected = {
        "constant": np.ones(steps),
        "step": 0.5 ** (t // 40),
        "exponential": np.exp(-math.log(1 / r) / steps * t),
        "1/t": 1.0 / (1.0 + 10.0 / steps * t),
        "cosine": 0.5 * (1 + np.cos(np.pi * t / steps)),
    }[name]
    if spec is None:
        got = np.ones(steps)
    else:
        sched, _ = build_schedule(spec, total_steps=steps)
        got = np.array([sched(int(s)) for s in t])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-12)


@pytest.mark.arith
def test_schedules_experiment_fixed_rate_floor_and_decays():
    r = quick("schedules")
    q = r.data["quadratic"]
    const = r.row(schedule="constant")
    tail = np.asarray(q["constant"])[-80:]
    assert tail.mean() == pytest.approx(q["floor"], rel=0.2)
    for row in r.rows[1:]:
        assert row["quad_final_loss"] < 0.2 * q["floor"]
        assert row["late_val_loss_std"] < const["late_val_loss_std"]
    assert max(r.rows, key=lambda row: row["val_acc"])["schedule"] != "constant"
    assert r.row(schedule="cosine")["lr_end_ratio"] < 1e-3


# ------------------------------------------------------------------------------------------
# momentum forms


@pytest.mark.parametrize(("mu", "gamma", "before", "after"),
                         [(0.9, 0.1, 30, 40), (0.99, 0.5, 10, 200), (0.5, 0.01, 5, 3)])  # fmt: skip
def test_momentum_forms_gap_on_a_linear_loss_is_the_closed_form(mu, gamma, before, after):
    # f(theta) = g . theta: same gradients for both forms, so the theory is exact.
    g = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    lr = 0.05
    thetas, last = {}, None
    for form in ("torch", "velocity"):
        p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        opt = optim.Momentum([p], lr=lr, momentum=mu, form=form)
        sched = schedules.Scheduler(opt, {"lr": schedules.multistep([before], gamma=gamma)})
        for t in range(before + after):
            prev = p.detach().clone()
            opt.zero_grad()
            (g @ p).backward()
            opt.step()
            sched.step()
            if form == "torch" and t == before - 1:
                last = p.detach() - prev
        thetas[form] = p.detach()
    gap = thetas["velocity"] - thetas["torch"]
    torch.testing.assert_close(gap, torch.from_numpy(MF.predicted_gap(last, mu, gamma, after)),
                               rtol=1e-9, atol=1e-12)  # fmt: skip
    # the same from the buffer: b_{s-1} = g (1 - mu^s) / (1 - mu), Delta = -lr b
    b = g * (1 - mu**before) / (1 - mu)
    torch.testing.assert_close(last, -lr * b, rtol=1e-12, atol=1e-14)


@pytest.mark.arith
def test_momentum_forms_experiment_equal_before_different_after():
    r = quick("momentum_forms")
    steps = [row for row in r.rows if row["schedule"] == "step"]
    assert {row["momentum"] for row in steps} == {0.9, 0.99}
    for row in steps:
        assert row["max_diff_before"] < 1e-12
        assert row["diff_1_after"] > 1e-4
        assert row["diff_1_after"] == pytest.approx(row["predicted_1_after"], rel=0.1)
        assert row["step_ratio_after"] > 3
    md = np.asarray(r.data["runs"][0]["max_diff"])
    decay = r.data["decay_at"]
    assert md[: decay + 1].max() < 1e-12 < 1e-4 < md[decay + 1 :].min()
    rv = r.data["ravine"]
    d = np.asarray(rv["distance"])
    assert d[: rv["decay_at"] + 1].max() < 1e-12 and d[-1] > 0.1


# ------------------------------------------------------------------------------------------
# results, figures, files, CLI


@pytest.mark.parametrize("name", lectures.NAMES)
def test_figures_and_files_from_a_result_and_from_its_json(name, tmp_path):
    r = quick(name)
    paths = EF.write(r, tmp_path / "a", dpi=40)
    png, js, md = paths
    assert png.name == f"{name}.png" and js.name == f"{name}.json" and md.name == f"{name}.md"
    image = imread(png)
    assert image.shape[0] > 150 and image.shape[1] > 450
    text = md.read_text()
    assert r.title in text and f"![{name}]({name}.png)" in text and "|---|" in text
    loaded = ExperimentResult.load(js)
    assert loaded.rows == json.loads(json.dumps(r.to_dict()))["rows"]
    assert loaded.checks == r.checks and loaded.columns == r.columns
    assert loaded.provenance["versions"]["torch"] == torch.__version__
    # the figures redraw from the JSON alone (rendering was checked by the PNG above)
    (fig,) = EF.figures(loaded).values()
    assert len(fig.axes) >= 3 and fig.get_suptitle()
    (found,) = EF.find_results(tmp_path / "a")
    assert found.name == name and found.figures == {name: f"{name}.png"}


def test_result_tables_and_formatting():
    r = ExperimentResult(
        "demo",
        "Demo",
        ["a", "b", "c"],
        [{"a": 1, "b": 0.123456, "c": None}, {"a": 2, "b": 1e-7, "c": True}],
    )
    assert r.table_markdown().splitlines() == [
        "| a | b | c |",
        "|---|---|---|",
        "| 1 | 0.1235 | — |",
        "| 2 | 1.000e-07 | yes |",
    ]
    assert r.column("a") == [1, 2] and r.row(a=2)["c"] is True
    with pytest.raises(KeyError, match="columns: a, b, c"):
        r.column("z")
    with pytest.raises(KeyError):
        r.row(a=3)
    assert format_value(float("nan")) == "nan"
    assert r.to_dict()["rows"][0]["c"] is None
    assert (
        json.loads(json.dumps(ExperimentResult("x", "X", ["v"], [{"v": float("inf")}]).to_dict()))[
            "rows"
        ][0]["v"]
        is None
    )


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("sharpness", {"eps": -1.0}, "eps must be"),
        ("sharpness", {"n_train": 10**6}, "n_train must be"),
        ("bias_variance", {"resample": "jackknife"}, "resample must be one of"),
        ("bias_variance", {"sizes": [5, 3]}, "sizes must be"),
        ("bias_variance", {"sizes": [1, 40], "n_train": 30}, "needs n_train >= 41"),
        ("ensembles", {"members": 1}, "members must be"),
        ("ensembles", {"optimizer": "nope"}, "unknown optimizer"),
        ("regularization", {"dropout": 1.0}, "dropout must be"),
        ("regularization", {"batch_size": 500}, "batch_size must be <= n_train"),
        ("schedules", {"final_ratio": 2.0}, "final_ratio must be"),
        ("momentum_forms", {"gamma": 1.5}, "gamma must be"),
        ("momentum_forms", {"momenta": []}, "momenta must be a non-empty list"),
        ("sharpness", {"bogus": 1}, "unknown option"),
    ],
)
def test_bad_options_fail_before_any_work(name, options, match):
    with pytest.raises((ValueError, KeyError), match=match):
        lectures.run(name, quick=True, **options)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"backend": "dask"}, "backend must be one of local, ray, got 'dask'"),
        ({"address": "127.0.0.1:6379"}, "address is only used by the ray backend"),
    ],
)
def test_a_training_experiment_refuses_its_backend_before_it_runs(options, match):
    calls = []

    @experiment({}, {}, trains=True)
    def run(o, v, *, quick, seed, store=None, backend="local", address=None):
        calls.append(backend)

    assert list(inspect.signature(run).parameters) == [
        "quick",
        "seed",
        "store",
        "backend",
        "address",
    ]
    with pytest.raises(ValueError, match=match):
        run(**options)
    assert calls == []
    run(store=None)
    assert calls == ["local"]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"batch_sizes": [32, 8]}, r"batch_sizes must be strictly increasing, got \[32, 8\]"),
        ({"batch_sizes": [32]}, r"batch_sizes must be a list of at least 2 entries, got \[32\]"),
        ({"batch_sizes": [32, 0]}, r"batch_sizes\[1\] must be a positive integer, got 0"),
        ({"batch_sizes": [16, 301]},
         r"batch_sizes must be at most the 300 training examples \(n_train\), got \[16, 301\]"),
        ({"confidence": 1.0}, r"confidence must be a finite number in \(0, 1\), got 1.0"),
        ({"hidden": [32, 0]}, r"hidden\[1\] must be a positive integer, got 0"),
    ],
)  # fmt: skip
def test_sharpness_options_fail_in_one_line_naming_the_parameter_and_value(options, match):
    with pytest.raises(ValueError, match=match) as err:
        lectures.run("sharpness", quick=True, **options)
    assert "\n" not in str(err.value)


def test_unknown_names():
    with pytest.raises(KeyError, match="valid names: sharpness, bias_variance"):
        lectures.get("nope")
    with pytest.raises(KeyError, match="valid methods"):
        lectures.run("regularization", quick=True, methods=["ridge"])
    with pytest.raises(KeyError, match="valid: constant"):
        lectures.run("schedules", quick=True, schedules=["warm"])


def test_cli_runs_lists_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "exp"
    args = ["experiment", "bias_variance", "--quick", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "[ok] variance grows" in text and "wrote" in text
    assert {p.name for p in out.iterdir()} == {
        "bias_variance.png",
        "bias_variance.json",
        "bias_variance.md",
    }
    assert main(args) == 2
    assert "exists" in capsys.readouterr().err
    assert main([*args, "--force", "--set", "replicates=20", "--json"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index("{") : printed.rindex("}") + 1])["rows"]
    assert ExperimentResult.load(out / "bias_variance.json").config["replicates"] == 20
    assert main(["experiment", "bias_variance", "--out", str(tmp_path / "x"),
                 "--set", "degree=3"]) == 2  # fmt: skip
    assert "valid options: model, sizes" in capsys.readouterr().err
    assert main(["experiment", "bias_variance", "--set", "noequals"]) == 2
    assert main(["experiment", "bias_variance", "--store", "--out", str(tmp_path / "y")]) == 2
    assert "does not train through the engine" in capsys.readouterr().err
    assert main(["experiment", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(f"{n}:" in listing for n in lectures.NAMES) and "(--quick:" in listing


@pytest.mark.parametrize(
    "module",
    [lectures, SH, BV, EN, RG, SC, MF, EF, "descentlab.book.experiments._common",
     "descentlab.cli.experiment"],
)  # fmt: skip
def test_docstring_examples(module):
    import doctest
    import importlib

    if isinstance(module, str):
        module = importlib.import_module(module)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_cli_store_records_the_engine_runs(tmp_path):
    from descentlab.store import Store

    out = tmp_path / "reg"
    args = ["experiment", "regularization", "--quick", "--out", str(out), "--store",
            "--set", 'methods=["dropout"]', "--set", "steps=30", "--set", "seeds=1"]  # fmt: skip
    assert main(args) == 0
    with Store(out / "descentlab.sqlite") as store:
        runs = store.list_runs()
        assert sorted(r.name for r in runs) == [
            "regularization-dropout-seed0",
            "regularization-none-seed0",
        ]
        assert {r.status for r in runs} == {"completed"}
    result = ExperimentResult.load(out / "regularization.json")
    assert [r["method"] for r in result.rows] == ["none", "dropout"]


def test_experiments_are_deterministic():
    a = lectures.run("bias_variance", quick=True, model="mlp", sizes=[2, 8], replicates=4,
                     steps=30)  # fmt: skip
    b = lectures.run("bias_variance", quick=True, model="mlp", sizes=[2, 8], replicates=4,
                     steps=30)  # fmt: skip
    assert a.rows == b.rows
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 40, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (64,), generator=g)
    torch.manual_seed(0)
    m = nn.Linear(40, 10).double()
    kw = dict(momentum=0.9, lr=0.1, schedule=schedules.multistep([5], 0.1), steps=10,
              batch_size=16, eval_every=5, seed=3)  # fmt: skip
    first, second = MF.lockstep(m, x, y, **kw), MF.lockstep(m, x, y, **kw)
    np.testing.assert_array_equal(first["max_diff"], second["max_diff"])
