r"""The bias-variance decomposition (the regularization and CNN lecture), measured across model
sizes.

For data :math:`t = f(x) + \epsilon`, :math:`\epsilon \sim \mathcal N(0, \sigma^2)`, and a model
:math:`\hat f_D` fitted to a random training set :math:`D`, the expected squared error at a
point splits into three parts (the regularization and CNN lecture; its slide writes the first term
:math:`E[(f - E[\hat f]^2)^2]` and the last :math:`E[\epsilon]`, both typos for the forms
below):

.. math::
    E_{D,\epsilon}\big[(t - \hat f_D(x))^2\big]
    = \underbrace{\big(f(x) - E_D[\hat f_D(x)]\big)^2}_{\text{bias}^2}
    + \underbrace{E_D\big[(\hat f_D(x) - E_D[\hat f_D(x)])^2\big]}_{\text{variance}}
    + \underbrace{\sigma^2}_{\text{noise}}

:func:`decompose` estimates each term from ``R`` refits: the mean prediction over refits
stands for :math:`E_D[\hat f_D]`, the spread around it for the variance, and both are
averaged over a grid of test inputs. The measured test error of the same refits on fresh
noisy targets is reported beside the sum as an independent check of the identity.

Models (``model``):

- ``"poly"``: polynomials of degree ``size`` fitted by least squares (a Legendre basis keeps
  the normal equations well conditioned); the textbook picture.
- ``"mlp"``: one-hidden-layer tanh networks of width ``size`` trained by a descentlab
  optimizer, full batch. The ``R`` refits of one width train *at once* as one batched model
  (parameters of shape ``(R, ...)``): descentlab's update rules are elementwise, so this is
  exactly ``R`` separate runs in one pass.

Training sets (``resample``): ``"fresh"`` draws each from the data distribution
(:func:`descentlab.problems.data.sample_regression`, the ``regression`` dataset's generator);
``"bootstrap"`` resamples one training set with replacement (the regularization and CNN lecture's
bootstrapping: the spread of the refits then estimates the variance the data at hand can show).

References:
    Geman, Bienenstock, Doursat, "Neural networks and the bias/variance dilemma", Neural
    Computation 1992. Hastie, Tibshirani, Friedman, "The Elements of Statistical Learning",
    2nd ed., section 7.3.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import Tensor

from descentlab import constraints as cs
from descentlab import optim
from descentlab.book.experiments._common import ExperimentResult, experiment, finish, timer
from descentlab.problems import data as datasets
from descentlab.problems.data import regression_true_fn, sample_regression

__all__ = [
    "CONSTRAINTS",
    "DEFAULTS",
    "FORMULAS",
    "QUICK",
    "decompose",
    "fit_mlps",
    "fit_polynomials",
    "poly_theory",
    "run",
]

#: The full setting.
DEFAULTS: dict[str, Any] = {
    "model": "poly",
    "sizes": None,  # poly: degrees 0..12; mlp: widths 1..256
    "fn": "sin",
    "noise_std": 0.3,
    "n_train": 30,
    "design": "fixed",
    "replicates": 200,
    "resample": "fresh",
    "n_test": 200,
    "optimizer": "adam",
    "lr": 0.01,
    "steps": 3000,
    "n_fits_shown": 20,
}

#: The small setting of the tests.
QUICK: dict[str, Any] = {"replicates": 60, "n_test": 100, "steps": 800}

#: How the notes and figures write the true functions of the ``regression`` dataset.
FORMULAS: dict[str, str] = {"sin": "sin(2πx)", "cubic": "x³ - x/2", "step": "1[x ≥ 0]"}

_DEFAULT_SIZES = {
    "poly": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
    "mlp": [1, 2, 4, 8, 16, 64, 256],
}
_QUICK_SIZES = {"poly": [1, 3, 5, 7, 9, 11], "mlp": [1, 4, 16, 64]}


def decompose(
    predictions: Tensor | np.ndarray,
    f_true: Tensor | np.ndarray,
    noise_std: float,
    targets: Tensor | np.ndarray | None = None,
) -> dict[str, float]:
    r"""Bias², variance and noise from ``R`` refits' predictions on ``M`` test inputs.

    .. math::
        \bar p(x) = \frac1R \sum_r p_r(x),\quad
        s^2(x) = \frac{1}{R-1} \sum_r (p_r(x) - \bar p(x))^2,\\
        \text{variance} = \frac1M \sum_x s^2(x),\quad
        \text{bias}^2 = \frac1M \sum_x \Big[(\bar p(x) - f(x))^2 - \frac{s^2(x)}{R}\Big],
        \quad \text{noise} = \sigma^2

    Both estimates are unbiased: :math:`\bar p` is itself a random mean of ``R`` refits, so
    :math:`(\bar p - f)^2` overstates the squared bias by :math:`\text{Var}/R` on average
    (noticeable when the variance is large); the correction removes that.

    With ``targets`` (noisy observations :math:`t_r(x) = f(x) + \epsilon_{r,x}`, one row per
    refit) the measured error :math:`\frac{1}{RM}\sum_{r,x} (t_r(x) - p_r(x))^2` is returned as
    ``mse``; in expectation it equals ``total = bias² + variance + noise``.

    Args:
        predictions: ``(R, M)``.
        f_true: ``(M,)`` noiseless targets.
        noise_std: :math:`\sigma` (>= 0).
        targets: optional ``(R, M)`` noisy targets.

    Returns:
        ``{"bias2", "variance", "noise", "total"}`` (+ ``"mse"`` with targets).

    Example:
        >>> p = np.array([[0.0, 1.0], [2.0, 1.0]])
        >>> d = decompose(p, np.array([0.0, 0.0]), 0.5)
        >>> d["bias2"], d["variance"], d["noise"], d["total"]
        (0.5, 1.0, 0.25, 1.75)
    """
    p = np.asarray(predictions.detach() if isinstance(predictions, Tensor) else predictions,
                   dtype=np.float64)  # fmt: skip
    f = np.asarray(f_true.detach() if isinstance(f_true, Tensor) else f_true, dtype=np.float64)
    f = f.reshape(-1)
    if p.ndim != 2 or p.shape[1] != f.shape[0]:
        raise ValueError(
            f"predictions must have shape (R, M) with M = len(f_true) = {f.shape[0]}, got {p.shape}"
        )
    sigma = cs.check("noise_std", noise_std, cs.NONNEGATIVE)
    r = p.shape[0]
    if r < 2:
        raise ValueError(f"predictions must hold at least 2 refits, got {r}")
    mean = p.mean(axis=0)
    # Unbiased split: the sample variance (ddof=1), and the squared bias of the mean
    # prediction less the variance of that mean (Var / R), which it carries in expectation.
    # Their sum equals (mean - f)^2 + the ddof=0 variance exactly.
    variance = p.var(axis=0, ddof=1)
    out = {
        "bias2": float(np.mean((mean - f) ** 2 - variance / r)),
        "variance": float(np.mean(variance)),
        "noise": sigma**2,
    }
    out["total"] = out["bias2"] + out["variance"] + out["noise"]
    if targets is not None:
        t = np.asarray(targets.detach() if isinstance(targets, Tensor) else targets,
                       dtype=np.float64)  # fmt: skip
        if t.shape != p.shape:
            raise ValueError(f"targets must have the shape of predictions {p.shape}, got {t.shape}")
        out["mse"] = float(np.mean((t - p) ** 2))
    return out


def fit_polynomials(xs: Tensor, ys: Tensor, degree: int, x_eval: Tensor) -> Tensor:
    """Least-squares polynomials of ``degree``, one per training set, evaluated at ``x_eval``.

    Fitted in the Legendre basis on ``[-1, 1]`` (the same polynomials as the monomial basis,
    far better conditioned), float64.

    Args:
        xs: ``(R, n)`` training inputs in ``[-1, 1]``.
        ys: ``(R, n)`` targets.
        degree: polynomial degree (>= 0).
        x_eval: ``(M,)`` inputs to predict at.

    Returns:
        ``(R, M)`` predictions.

    Example:
        >>> xs = torch.linspace(-1, 1, 5, dtype=torch.float64).reshape(1, 5)
        >>> fit_polynomials(xs, 2 * xs**2 - 1, 2, torch.tensor([0.5])).round(decimals=6)
        tensor([[-0.5000]], dtype=torch.float64)
    """
    degree = cs.check("degree", degree, cs.NONNEGATIVE_INT)
    xs64 = np.asarray(xs, dtype=np.float64)
    ys64 = np.asarray(ys, dtype=np.float64)
    v_eval = np.polynomial.legendre.legvander(np.asarray(x_eval, dtype=np.float64), degree)
    out = np.empty((xs64.shape[0], v_eval.shape[0]))
    for r in range(xs64.shape[0]):
        v = np.polynomial.legendre.legvander(xs64[r], degree)
        coef, *_ = np.linalg.lstsq(v, ys64[r], rcond=None)
        out[r] = v_eval @ coef
    return torch.from_numpy(out)


def fit_mlps(
    xs: Tensor,
    ys: Tensor,
    width: int,
    x_eval: Tensor,
    *,
    optimizer: str = "adam",
    lr: float = 0.01,
    steps: int = 3000,
    seed: int = 0,
) -> Tensor:
    """Train ``R`` one-hidden-layer tanh networks at once (one per training set), full batch.

    Network ``r``:
    :math:`\\hat f_r(x) = w_2^{(r)} \\cdot \\tanh(w_1^{(r)} x + b_1^{(r)}) + b_2^{(r)}`,
    initialised like ``torch.nn.Linear`` (uniform in :math:`\\pm 1/\\sqrt{\\text{fan-in}}`),
    trained on its mean squared error by the descentlab optimizer ``optimizer``. The ``R``
    networks are one batched parameter set; the optimizer's elementwise rules make this
    identical to ``R`` separate runs (the sum of the ``R`` losses has, for each network,
    the gradient of its own loss).

    Args:
        xs: ``(R, n)`` training inputs.
        ys: ``(R, n)`` targets.
        width: hidden units (>= 1).
        x_eval: ``(M,)`` inputs to predict at.
        optimizer: descentlab optimizer name.
        lr: learning rate.
        steps: full-batch steps.
        seed: seed of the initialisation.

    Returns:
        ``(R, M)`` predictions (float64).

    Example:
        >>> xs = torch.linspace(-1, 1, 20, dtype=torch.float64).expand(2, 20)
        >>> fit_mlps(xs, torch.sin(3 * xs), 8, torch.zeros(3), steps=20).shape
        torch.Size([2, 3])
    """
    width = cs.check("width", width, cs.POSITIVE_INT)
    steps = cs.check("steps", steps, cs.POSITIVE_INT)
    r = xs.shape[0]
    g = torch.Generator().manual_seed(int(seed))
    dt = torch.float64

    def uniform(*shape: int, bound: float) -> Tensor:
        return ((torch.rand(*shape, generator=g, dtype=dt) * 2 - 1) * bound).requires_grad_(True)

    w1 = uniform(r, 1, width, bound=1.0)
    b1 = uniform(r, 1, width, bound=1.0)
    w2 = uniform(r, width, 1, bound=width**-0.5)
    b2 = uniform(r, 1, 1, bound=width**-0.5)
    params = [w1, b1, w2, b2]
    opt = optim.get(optimizer)(params, lr=lr)
    x = xs.to(dt).unsqueeze(-1)  # (R, n, 1)
    y = ys.to(dt)

    def forward(inp: Tensor) -> Tensor:
        return (torch.tanh(inp @ w1 + b1) @ w2 + b2).squeeze(-1)

    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        # Sum over networks of each network's own mean loss: independent gradients.
        loss = ((forward(x) - y) ** 2).mean(dim=1).sum()
        loss.backward()
        opt.step()
    with torch.no_grad():
        grid = x_eval.to(dt).reshape(1, -1, 1).expand(r, -1, 1)
        return forward(grid)


def poly_theory(
    x_design: Tensor | np.ndarray,
    f_design: Tensor | np.ndarray,
    degree: int,
    x_eval: Tensor | np.ndarray,
    f_eval: Tensor | np.ndarray,
    noise_std: float,
) -> dict[str, float]:
    r"""Exact bias² and variance of least-squares polynomials on a fixed design.

    With design matrix :math:`V` (training inputs), evaluation rows :math:`v(x)` and targets
    :math:`t = f + \sigma\epsilon` at the fixed inputs, the fit at :math:`x` is
    :math:`v(x)^\top (V^\top V)^{-1} V^\top t`, so

    .. math::
        \text{bias}^2 = \frac1M \sum_x \big(v(x)^\top \beta^* - f(x)\big)^2,\quad
        \text{variance} = \frac{\sigma^2}{M} \sum_x v(x)^\top (V^\top V)^{-1} v(x)

    with :math:`\beta^*` the fit to the noiseless targets. At the design points the variance
    averages to :math:`\sigma^2 (d + 1) / n` (the trace of the hat matrix over n).

    Returns:
        ``{"bias2", "variance"}``.

    Example:
        >>> x = np.linspace(-1, 1, 10)
        >>> round(poly_theory(x, x**3, 1, x, x**3, noise_std=1.0)["variance"], 12)  # 2 / 10
        0.2
    """
    degree = cs.check("degree", degree, cs.NONNEGATIVE_INT)
    v = np.polynomial.legendre.legvander(np.asarray(x_design, dtype=np.float64), degree)
    ve = np.polynomial.legendre.legvander(np.asarray(x_eval, dtype=np.float64), degree)
    beta, *_ = np.linalg.lstsq(v, np.asarray(f_design, dtype=np.float64), rcond=None)
    gram_inv = np.linalg.pinv(v.T @ v)
    lev = np.einsum("ij,jk,ik->i", ve, gram_inv, ve)
    f_e = np.asarray(f_eval, dtype=np.float64)
    return {
        "bias2": float(np.mean((ve @ beta - f_e) ** 2)),
        "variance": float(noise_std**2 * np.mean(lev)),
    }


def _training_sets(
    design: str, resample: str, replicates: int, n: int, noise_std: float, fn: str, seed: int
) -> tuple[Tensor, Tensor]:
    if design == "random":
        base = [sample_regression(n, noise_std=noise_std, fn=fn, seed=seed * 100_003 + r)
                for r in range(replicates if resample == "fresh" else 1)]  # fmt: skip
        xs = torch.stack([b[0][:, 0] for b in base]).double()
        ys = torch.stack([b[1][:, 0] for b in base]).double()
    else:
        f = regression_true_fn(fn)
        x = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)
        g = torch.Generator().manual_seed(int(seed) * 100_003)
        rows = replicates if resample == "fresh" else 1
        xs = x.expand(rows, n).clone()
        ys = f(xs) + noise_std * torch.randn(rows, n, generator=g, dtype=torch.float64)
    if resample == "fresh":
        return xs, ys
    g = torch.Generator().manual_seed(int(seed) + 1)
    idx = torch.randint(0, n, (replicates, n), generator=g)
    return xs[0][idx], ys[0][idx]


#: What each option must be (``sizes``: degrees >= 0 or widths >= 1, increasing; ``lr`` and
#: ``steps`` only train the MLPs).
CONSTRAINTS: dict[str, list[Any]] = {
    "model": [cs.Options("poly", "mlp")],
    "n_train": [cs.Interval(Integral, 2, None)],
    "design": [cs.Options("fixed", "random")],
    "replicates": [cs.Interval(Integral, 2, None)],
    "resample": [cs.Options("fresh", "bootstrap")],
    "n_test": [cs.POSITIVE_INT],
    "n_fits_shown": [cs.NONNEGATIVE_INT],
    "noise_std": [cs.NONNEGATIVE],
}


@experiment(DEFAULTS, QUICK, CONSTRAINTS)
def run(o: dict[str, Any], v: dict[str, Any], *, quick: bool, seed: int) -> ExperimentResult:
    """Bias², variance and noise vs model size on the ``regression`` dataset's distribution.

    For every size, ``replicates`` models are fitted to ``replicates`` training sets of
    ``n_train`` examples and evaluated on ``n_test`` evenly spaced inputs in ``[-1, 1]``,
    where the true function is known; fresh noisy targets there give the measured test error.
    With ``design="fixed"`` the training inputs are evenly spaced and only the noise is
    redrawn; polynomial fits then also get their exact bias² and variance
    (:func:`poly_theory`) as a check of the estimates. With ``design="random"`` the inputs are
    drawn too (``x ~ U(-1, 1)``, the ``regression`` dataset's generator).

    Args:
        quick: the small preset.
        seed: seed of the training sets, noise and initialisations.
        model: ``"poly"`` (degree) or ``"mlp"`` (width, trained by ``optimizer``).
        sizes: degrees or widths (default: 0..12 or 1..256).
        fn: the true function (``"sin"``, ``"cubic"``, ``"step"``).
        noise_std: sigma of the target noise.
        n_train: examples per training set.
        design: ``"fixed"`` (evenly spaced inputs) or ``"random"``.
        replicates: refits per size.
        resample: ``"fresh"`` (new noise / new draws per refit) or ``"bootstrap"`` (resample
            one training set with replacement).
        n_test: test inputs.
        optimizer, lr, steps: training of the MLPs.
        n_fits_shown: refits kept for the figure.

    Returns:
        an :class:`ExperimentResult`, one row per size.

    Example:
        >>> r = run(quick=True)  # doctest: +SKIP
        >>> r.row(size=1)["bias2"] > r.row(size=11)["bias2"]  # doctest: +SKIP
        True
    """
    v = _check_options(o, v, quick)
    kind, layout, sampling, sigma = v["kind"], v["layout"], v["sampling"], v["sigma"]
    f, x_grid, f_grid, targets = _test_points(o["fn"], v, seed)
    theory = kind == "poly" and layout == "fixed" and sampling == "fresh"
    with timer() as elapsed:
        xs, ys = _training_sets(layout, sampling, v["reps"], v["n"], sigma, o["fn"], seed)
        exact_fn = f if theory else None
        rows, fits, best = _fit_sizes(o, v, xs, ys, x_grid, f_grid, targets, exact_fn, seed)
        seconds = elapsed()
    exact = ["bias2_exact", "variance_exact"] if theory else []
    res = ExperimentResult(
        name="bias_variance",
        title=f"Bias-variance decomposition across model sizes ({kind}, {layout} design)",
        columns=["size", "params", "bias2", "variance", "noise", "total", "mse", *exact, "best"],
        rows=rows,
    )
    label = "degree" if kind == "poly" else "width"
    _check_trade_off(res, v["sizes"], label, theory)
    shown = sorted({v["sizes"][0], v["sizes"][best], v["sizes"][-1]})
    res.data = {"label": label, "x_grid": x_grid, "f_grid": f_grid, "shown": shown,
                "fits": {str(s): fits[s] for s in shown},
                "train_example": {"x": xs[0], "y": ys[0]}}  # fmt: skip
    notes = _notes(o, v, label, v["sizes"][best], theory)
    options = {**o, "sizes": v["sizes"]}
    return finish(res, quick=quick, seed=seed, options=options, seconds=seconds, notes=notes)


def _test_points(fn: str, v: dict[str, Any], seed: int) -> tuple[Any, Tensor, Tensor, Tensor]:
    """The true function, ``m`` evenly spaced test inputs in ``[-1, 1]``, its values there
    and ``reps`` rows of fresh noisy targets."""
    splits = datasets.load("regression", fn=fn, noise_std=v["sigma"], n_train=v["n"])
    f = splits.true_fn
    x_grid = torch.linspace(-1.0, 1.0, v["m"], dtype=torch.float64)
    f_grid = f(x_grid)
    g = torch.Generator().manual_seed(int(seed) + 7)
    noise = torch.randn(v["reps"], v["m"], generator=g, dtype=torch.float64)
    return f, x_grid, f_grid, f_grid + v["sigma"] * noise


def _check_options(o: dict[str, Any], c: dict[str, Any], quick: bool) -> dict[str, Any]:
    """The options checked (``o["sizes"]`` filled in when None): ``kind``, ``sizes``, ``n``,
    ``layout``, ``reps``, ``sampling``, ``m``, ``n_show``, ``sigma``."""
    kind, n = c["model"], c["n_train"]
    if o["sizes"] is None:
        o["sizes"] = (_QUICK_SIZES if quick else _DEFAULT_SIZES)[kind]
    least = cs.NONNEGATIVE_INT if kind == "poly" else cs.POSITIVE_INT
    size_list = cs.check("sizes", o["sizes"], cs.ListOf(least, min_len=2), owner="bias_variance")
    if sorted(set(size_list)) != size_list:
        raise cs.invalid("sizes", "increasing", o["sizes"], owner="bias_variance")
    if kind == "poly" and size_list[-1] + 1 > n:
        raise ValueError(
            f"a degree-{size_list[-1]} polynomial needs n_train >= {size_list[-1] + 1}, got {n}"
        )
    if kind == "mlp":
        optim.get(o["optimizer"])
        cs.check("lr", o["lr"], cs.POSITIVE, owner="bias_variance")
        cs.check("steps", o["steps"], cs.POSITIVE_INT, owner="bias_variance")
    return {"kind": kind, "sizes": size_list, "n": n, "layout": c["design"],
            "reps": c["replicates"], "sampling": c["resample"], "m": c["n_test"],
            "n_show": c["n_fits_shown"], "sigma": c["noise_std"]}  # fmt: skip


def _fit_sizes(
    o: dict[str, Any], v: dict[str, Any], xs: Tensor, ys: Tensor, x_grid: Tensor,
    f_grid: Tensor, targets: Tensor, exact_fn: Any, seed: int,
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Tensor]], int]:  # fmt: skip
    """For every size, the refits' decomposition on ``x_grid`` (with the exact polynomial
    values where ``exact_fn``, the true function, is given), the fits to draw, and the
    index of the smallest expected error (marked ``best`` in the rows)."""
    rows, fits = [], {}
    for size in v["sizes"]:
        if v["kind"] == "poly":
            pred = fit_polynomials(xs, ys, size, x_grid)
            n_params = size + 1
        else:
            pred = fit_mlps(xs, ys, size, x_grid, optimizer=o["optimizer"], lr=o["lr"],
                            steps=o["steps"], seed=seed)  # fmt: skip
            n_params = 3 * size + 1
        row: dict[str, Any] = {"size": size, "params": n_params}
        row.update(decompose(pred, f_grid, v["sigma"], targets))
        if exact_fn is not None:
            exact = poly_theory(xs[0], exact_fn(xs[0]), size, x_grid, f_grid, v["sigma"])
            row["bias2_exact"] = exact["bias2"]
            row["variance_exact"] = exact["variance"]
        rows.append(row)
        fits[size] = {"mean": pred.mean(0), "some": pred[: v["n_show"]]}
    best = int(np.argmin([r["total"] for r in rows]))
    for i, r in enumerate(rows):
        r["best"] = i == best
    return rows, fits, best


def _check_trade_off(res: ExperimentResult, size_list: list[int], label: str,
                     theory: bool) -> None:  # fmt: skip
    """The lecture's trade-off: variance grows and bias² shrinks with the size, the three
    terms add up to the measured error (and match the exact values on a fixed design)."""
    rows = res.rows
    var_rho = float(spearmanr(size_list, [r["variance"] for r in rows]).statistic)
    bias_rho = float(spearmanr(size_list, [r["bias2"] for r in rows]).statistic)
    rel = max(abs(r["mse"] - r["total"]) / r["total"] for r in rows)
    res.check(f"variance grows with the {label} (Spearman rho {var_rho:.2f} > 0.7)",
              var_rho > 0.7, f"Spearman ρ {var_rho:.2f}", "> 0.7")  # fmt: skip
    res.check(f"bias² shrinks with the {label} (Spearman rho {bias_rho:.2f} < -0.7)",
              bias_rho < -0.7, f"Spearman ρ {bias_rho:.2f}", "< -0.7")  # fmt: skip
    res.check(
        "the largest model has more variance and less bias² than the smallest",
        rows[-1]["variance"] > rows[0]["variance"] and rows[-1]["bias2"] < rows[0]["bias2"],
        f"variance {rows[0]['variance']:.3g} → {rows[-1]['variance']:.3g}, bias² "
        f"{rows[0]['bias2']:.3g} → {rows[-1]['bias2']:.3g}",
        "variance up, bias² down",
    )
    res.check(
        f"bias² + variance + noise matches the measured test MSE (worst {100 * rel:.1f} % < 10 %)",
        rel < 0.10,
        f"worst {100 * rel:.1f} %",
        "< 10 %",
    )
    if theory:
        var_err = max(abs(r["variance"] / r["variance_exact"] - 1) for r in rows)
        res.check(
            f"estimated variance matches the exact value (worst {100 * var_err:.1f} % < 25 %)",
            var_err < 0.25,
            f"worst {100 * var_err:.1f} %",
            "< 25 %",
        )


def _notes(o: dict[str, Any], v: dict[str, Any], label: str, best_size: int,
           theory: bool) -> list[str]:  # fmt: skip
    inputs = "evenly spaced inputs" if v["layout"] == "fixed" else "inputs x ~ U(-1, 1)"
    how = "fresh noise" if v["sampling"] == "fresh" else "bootstrap resamples of one training set"
    if v["layout"] == "random" and v["sampling"] == "fresh":
        how = "fresh training sets"
    notes = [
        f"{v['reps']} refits per {label} on {how}: {v['n']} examples at {inputs} of "
        f"y = {FORMULAS.get(o['fn'], o['fn'])} + N(0, {v['sigma']:g}²). The terms are averaged "
        f"over {v['m']} evenly spaced test inputs in [-1, 1]; bias² is corrected for the "
        "variance of the mean fit (unbiased, so it can dip just below 0 where the bias "
        "vanishes). `mse` is the refits' measured error on fresh noisy targets, an independent "
        "check of `total` = bias² + variance + noise.",
        f"The smallest expected error is at {label} {best_size}: below it bias "
        "dominates (underfitting), above it variance (overfitting), the trade-off of the "
        "regularization and CNN lecture.",
    ]
    if theory:
        notes.append(
            "`bias2_exact` and `variance_exact` are the closed-form values of least squares on "
            "this fixed design (`poly_theory`): the Monte Carlo estimates should agree up to "
            "sampling error."
        )
    if o["fn"] == "sin" and v["kind"] == "poly":
        notes.append(
            "sin(2 pi x) is odd: on a symmetric design an even degree adds variance but no "
            "fit, so bias² falls in steps at odd degrees."
        )
    return notes
