"""Generalization methodology, in depth: the gap between training and test error as a model
grows, k-fold cross-validation (descentlab's folds) and the optimism of choosing on the test
set, the bias–variance decomposition exactly for a linear smoother, the bootstrap, bagging and
its variance arithmetic, and boosting; against scikit-learn and closed forms, k-fold
cross-validation from scratch, and early stopping in a real training run on MNIST-1D."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from descentlab.book.chapters import _common as kit
from descentlab.book.chapters import practice
from descentlab.book.checks import ck, said
from descentlab.book.facts import word
from descentlab.book.model import Context
from descentlab.book.render.chapter import Part, Table
from descentlab.book.render.live import Live, Probe, Slider
from descentlab.problems.data import fold_indices

__all__ = ["CHAPTER"]

#: the regression problem: training points, noise, test points, the degrees compared
N_TRAIN, NOISE, N_TEST, DEGREES = 30, 0.3, 1000, tuple(range(1, 13))
#: k folds; the draws of the training set that average the selection's optimism
K, DRAWS = 5, 100
#: the draws that measure the optimism of choosing on the test set (one set, two solvers)
OPT_DRAWS = 200
#: the fixed design of the bias–variance section, its noise draws, the degrees shown
DESIGN_N, BV_DRAWS, BV_DEGREES = 20, 4000, (1, 3, 5, 9)
#: the bootstrap: values, resamples; bagging: members; boosting: rounds
BOOT_N, RESAMPLES, MEMBERS, BOOST_ROUNDS = 400, 400, 50, 50
#: the training sets bagging is measured on (one set of draws: the trees' twin is 1-NN on them)
BAG_SETS = 80
#: the training run with early stopping on MNIST-1D: examples kept, steps, patience
TRAIN_N, TRAIN_STEPS, PATIENCE = 400, 1500, 6


def _truth(x: np.ndarray) -> np.ndarray:
    return np.sin(np.pi * x)


def _features(x: np.ndarray, degree: int) -> np.ndarray:
    return np.polynomial.legendre.legvander(x, degree)


def _draw(rng: np.random.Generator, n: int = N_TRAIN) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-1, 1, n)
    return x, _truth(x) + NOISE * rng.standard_normal(n)


def _fit(x: np.ndarray, y: np.ndarray, degree: int) -> np.ndarray:
    return np.linalg.lstsq(_features(x, degree), y, rcond=None)[0]


def _mse(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((_features(x, len(w) - 1) @ w - y) ** 2))


def _sklearn_errors(x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray) -> list[float]:
    """Each degree's test error by scikit-learn (polynomial features, linear regression): the
    second route to numpy's least squares on Legendre features."""
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    out = []
    for d in DEGREES:
        model = make_pipeline(PolynomialFeatures(d), LinearRegression()).fit(x[:, None], y)
        out.append(float(np.mean((model.predict(xt[:, None]) - yt) ** 2)))
    return out


# ------------------------------------------------------------------------------------------
# 1. the gap

GAP = kit.Prose(
    """
A model is judged by data it has not seen (item 62). Fit polynomials of degree 1 to {{dmax}} by
least squares to {{n}} noisy samples of $\\sin(\\pi x)$ on [-1, 1] (noise σ = {{noise}}) and
measure the squared error on the training points and on {{n_test}} fresh test points. The
training error can only fall as the degree grows, since every polynomial of degree d is also
one of degree d + 1: here from {{tr1}} at degree 1 to {{trmax}} at degree {{dmax}}, below the
noise's variance $\\sigma^2$ = {{var}}, which no honest model can beat on data it did not fit.
The test error falls, then rises (item 63): a line underfits ({{te1}}), degree {{best}} is best
({{tebest}}), degree {{dmax}} overfits ({{temax}}), threading the noise between the points. The
difference between the two errors, the *generalization gap*, is {{gap1}} at degree 1 and
{{gapmax}} at degree {{dmax}}: {{larger}} for the line, in a section on overfitting. One training
set's gap is itself noisy. Over {{draws}} training sets, each with its own {{n_test}} test
points, the median gap is {{mgap1}} at degree 1 and {{mgapmax}} at degree {{dmax}}: it is the
flexible model whose gap {{grows}}. Every test error here is also computed by scikit-learn's
`PolynomialFeatures` and `LinearRegression`, a second solver on other features of the same
polynomials, and agrees.""",
    tr1="the training error at degree 1, against numpy's polyfit residuals",
    trmax="the training error at the largest degree, against polyfit's",
    var="σ², against the variance of a million noise draws",
    te1="the test error at degree 1, against scikit-learn",
    tebest="the best degree's test error, against scikit-learn",
    temax="the largest degree's test error, against scikit-learn",
    gap1="the gap at degree 1, against scikit-learn's errors",
    gapmax="the gap at the largest degree, against scikit-learn's errors",
    mgap1="the median gap at degree 1 over the draws, against numpy's polyfit on them",
    mgapmax="the median gap at the largest degree over the draws, against polyfit on them",
)


def _polyfit_mse(x: np.ndarray, y: np.ndarray, d: int, xt: np.ndarray, yt: np.ndarray) -> float:
    """A degree-d least-squares fit's error by numpy's ``polyfit`` (monomials): the second
    route to :func:`_fit` on Legendre features."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.RankWarning)
        return float(np.mean((np.polyval(np.polyfit(x, y, d), xt) - yt) ** 2))


def _gap_draws() -> np.ndarray:
    """The gap at degree 1 and at the largest degree over :data:`DRAWS` training sets (each
    with its own test set), by :func:`_fit` and by :func:`_polyfit_mse`: shape (2, DRAWS, 2)."""
    rng = np.random.default_rng(4)
    out = np.empty((2, DRAWS, 2))
    for i in range(DRAWS):
        x, y = _draw(rng)
        xt, yt = _draw(rng, N_TEST)
        for j, d in enumerate((DEGREES[0], DEGREES[-1])):
            w = _fit(x, y, d)
            out[0, i, j] = _mse(w, xt, yt) - _mse(w, x, y)
            out[1, i, j] = _polyfit_mse(x, y, d, xt, yt) - _polyfit_mse(x, y, d, x, y)
    return out


def _curves() -> dict[str, list[float]]:
    rng = np.random.default_rng(0)
    x, y = _draw(rng)
    xt = np.linspace(-1, 1, N_TEST)
    yt = _truth(xt) + NOISE * rng.standard_normal(N_TEST)
    ws = [_fit(x, y, d) for d in DEGREES]
    polyfit = [float(np.mean((np.polyval(np.polyfit(x, y, d), x) - y) ** 2)) for d in DEGREES]
    return {
        "train": [_mse(w, x, y) for w in ws],
        "test": [_mse(w, xt, yt) for w in ws],
        "sk_test": _sklearn_errors(x, y, xt, yt),
        "polyfit": polyfit,
    }


def _gap(ctx: Context, n: kit.Numbers) -> Part:
    c = ctx.memo(("chapter", "methodology", "curves"), _curves)
    best = int(np.argmin(c["test"]))
    gap = [te - tr for te, tr in zip(c["test"], c["train"], strict=True)]
    sk_gap = [te - tr for te, tr in zip(c["sk_test"], c["polyfit"], strict=True)]
    noise = np.random.default_rng(1).standard_normal(1_000_000) * NOISE
    med = np.median(ctx.memo(("chapter", "methodology", "gaps"), _gap_draws), axis=1)
    text = GAP.fill(
        n,
        draws=str(DRAWS),
        mgap1=(med[0, 0], med[1, 0], 1e-6),
        mgapmax=(med[0, 1], med[1, 1], 1e-3),
        grows=word(med[0, 1], med[0, 0], "grows"),
        n=str(N_TRAIN),
        noise=f"{NOISE:g}",
        n_test=str(N_TEST),
        dmax=str(DEGREES[-1]),
        best=str(DEGREES[best]),
        tr1=(c["train"][0], c["polyfit"][0], 1e-9),
        trmax=(c["train"][-1], c["polyfit"][-1], 1e-6),
        var=(NOISE**2, float(noise.var()), 0.01, 2),
        te1=(c["test"][0], c["sk_test"][0], 1e-9),
        tebest=(c["test"][best], c["sk_test"][best], 1e-6),
        temax=(c["test"][-1], c["sk_test"][-1], 1e-6),
        gap1=(gap[0], sk_gap[0], 1e-9),
        gapmax=(gap[-1], sk_gap[-1], 1e-6),
        larger=word(gap[0], gap[-1], "larger"),
    )
    rows = [[d, tr, te, te - tr] for d, tr, te in zip(DEGREES, c["train"], c["test"], strict=True)]
    table = Table(
        ["degree", "training error", "test error", "gap"],
        rows,
        f"least squares on {N_TRAIN} noisy samples of sin(πx), {N_TEST} test points",
    )
    checks = [
        ck(
            "the training error never rises with the degree",
            all(b <= a + 1e-12 for a, b in zip(c["train"], c["train"][1:], strict=False)),
            ", ".join(f"{v:.3g}" for v in c["train"][:4]) + ", ...",
            "non-increasing",
        ),
        ck(
            f"over {DRAWS} draws the median gap is larger at the largest degree than at 1",
            med[0, 1] > med[0, 0],
            f"{med[0, 1]:.3g} against {med[0, 0]:.3g}",
            "larger",
        ),
        said(
            text,
            "The test error falls, then rises (item",
            0 < best < len(DEGREES) - 1 and c["test"][0] > c["test"][best] < c["test"][-1],
            f"{c['test'][0]:.3g}, {c['test'][best]:.3g} at degree {DEGREES[best]}, "
            f"{c['test'][-1]:.3g}",
            "the middle one lowest, at neither end",
        ),
    ]
    return Part("gap", "The generalization gap", [text, table, checks])


# ------------------------------------------------------------------------------------------
# 2. cross-validation, and the optimism of choosing on the test set

CV = kit.Prose(
    """
The test error is what we want, but choosing the degree by it spends the test set: the chosen
model's error on it is then a minimum over degrees, optimistic by construction. The remedy
(item 64) is to choose on data carved out of the training set. In k-fold cross-validation
the training set is split into k folds; each fold is scored by a model fitted on the other
k - 1, and the mean of the k scores estimates the test error of fitting on all of it. With
descentlab's folds (`fold_indices`, what `compare --cv` uses) and k = {{k}}, the estimate is
lowest at degree {{d_cv}}, where it is {{cv_err}}; scikit-learn's `cross_val_score` on the same
folds gives the same number. That is below σ², which no model beats in expectation on data it
did not fit, and under the test error at that degree, {{te_cv}}: an estimate from {{n}} points
is itself noisy, and its minimum over the degrees is picked for being low. Over the {{draws}}
training sets of the next paragraph, cross-validation's lowest estimate falls below σ² in
{{cv_below}} % of them.

How optimistic is choosing on the test set? The build draws {{draws}} training sets, each with a
test set of the same size, {{n}} points, and computes each fitted model's true expected error on
fresh data (its error against the truth on {{n_test}} points, plus σ²). Choosing the degree with
the lowest test error and reporting that error understates the chosen model's true error in
{{share}} % of the draws (numpy's `polyfit` on monomials, another solver, on the same draws:
{{share2}} %), where an unbiased report would do so in half of them. Choosing by
cross-validation and then looking once at the test set, the reported error is below the true one
in {{cv_share}} % of the draws, as often above as below: an honest estimate, because the test
set played no part in the choice. Hence the rule of the lecture: choose with cross-validation,
refit on all the training data, and look at the test set once, at the end.""",
    d_cv="the degree cross-validation picks, against the degree scikit-learn's CV picks",
    cv_err="the CV estimate at that degree, against scikit-learn's cross_val_score",
    te_cv="the test error at the degree CV picks, against scikit-learn's",
    cv_below="the share of draws whose lowest CV estimate is below σ², against polyfit's CV",
    share="the share of draws whose report is optimistic, against polyfit's on the same draws",
    share2="polyfit's share, against Legendre features' on the same draws",
    cv_share="the share for cross-validation's choice, against polyfit's on the same draws",
)


def _cv_scores(x: np.ndarray, y: np.ndarray) -> list[float]:
    folds = fold_indices(y, K, seed=0, stratify=False)
    return [
        float(np.mean([_mse(_fit(x[tr], y[tr], d), x[va], y[va]) for tr, va in folds]))
        for d in DEGREES
    ]


def _sklearn_cv(x: np.ndarray, y: np.ndarray) -> list[float]:
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    folds = fold_indices(y, K, seed=0, stratify=False)
    return [
        -float(
            np.mean(
                cross_val_score(
                    make_pipeline(PolynomialFeatures(d), LinearRegression()),
                    x[:, None],
                    y,
                    cv=folds,
                    scoring="neg_mean_squared_error",
                )
            )
        )
        for d in DEGREES
    ]


def _optimism(seed: int) -> dict[str, np.ndarray]:
    """Over :data:`OPT_DRAWS` training sets with a test set of the same size: each choice's
    reported test error and the chosen model's true error (against the truth on a fine grid,
    plus σ²), choosing on the test set and by cross-validation; by :func:`_fit` on Legendre
    features and, the second route on the same draws (keys ending ``_pf``), by numpy's
    ``polyfit`` on monomials (:func:`_polyfit_mse`)."""
    rng = np.random.default_rng(seed)
    fine = np.linspace(-1, 1, N_TEST)
    keys = ("reported", "true", "cv_reported", "cv_true", "cv_min")
    out: dict[str, list[float]] = {k + s: [] for k in keys for s in ("", "_pf")}
    for _ in range(OPT_DRAWS):
        x, y = _draw(rng)
        xt, yt = _draw(rng)
        ws = [_fit(x, y, d) for d in DEGREES]
        test = [_mse(w, xt, yt) for w in ws]
        folds = fold_indices(y, K, seed=0, stratify=False)
        cv = _cv_scores(x, y)
        cv_pf = [
            float(np.mean([_polyfit_mse(x[tr], y[tr], d, x[va], y[va]) for tr, va in folds]))
            for d in DEGREES
        ]
        test_pf = [_polyfit_mse(x, y, d, xt, yt) for d in DEGREES]
        out["cv_min"].append(min(cv))
        out["cv_min_pf"].append(min(cv_pf))
        for key, k in (("", int(np.argmin(test))), ("cv_", int(np.argmin(cv)))):
            out[key + "reported"].append(test[k])
            out[key + "true"].append(_mse(ws[k], fine, _truth(fine)) + NOISE**2)
        for key, k in (("", int(np.argmin(test_pf))), ("cv_", int(np.argmin(cv_pf)))):
            out[key + "reported_pf"].append(test_pf[k])
            true = _polyfit_mse(x, y, DEGREES[k], fine, _truth(fine))
            out[key + "true_pf"].append(true + NOISE**2)
    return {k: np.asarray(v) for k, v in out.items()}


def _cv(ctx: Context, n: kit.Numbers) -> Part:
    rng = np.random.default_rng(0)
    x, y = _draw(rng)
    cv, sk = _cv_scores(x, y), _sklearn_cv(x, y)
    o = ctx.memo(("chapter", "methodology", "optimism"), lambda: _optimism(2))
    curves = ctx.memo(("chapter", "methodology", "curves"), _curves)

    def share(key: str = "", route: str = "") -> float:
        return 100 * float((o[key + "reported" + route] < o[key + "true" + route]).mean())

    # the two solvers agree to about 1e-9 on the same draws: a draw whose reported and true
    # errors (or two degrees' errors) lie that close may flip, so they agree within one draw
    one = 100 / OPT_DRAWS

    text = CV.fill(
        n,
        k=str(K),
        n=str(N_TRAIN),
        draws=str(OPT_DRAWS),
        d_cv=(DEGREES[int(np.argmin(cv))], DEGREES[int(np.argmin(sk))], 0),
        cv_err=(min(cv), sk[int(np.argmin(cv))], 1e-6),
        te_cv=(
            curves["test"][int(np.argmin(cv))],
            curves["sk_test"][int(np.argmin(sk))],
            1e-6,
        ),
        cv_below=kit.Twin(
            100 * float((o["cv_min"] < NOISE**2).mean()),
            100 * float((o["cv_min_pf"] < NOISE**2).mean()),
            one,
            2,
            rel=False,
        ),
        share=kit.Twin(share(), share(route="_pf"), one, 2, rel=False),
        share2=kit.Twin(share(route="_pf"), share(), one, 2, rel=False),
        n_test=str(N_TEST),
        cv_share=kit.Twin(share("cv_"), share("cv_", "_pf"), one, 2, rel=False),
    )
    pooled = share()
    se = 100 * math.sqrt(0.25 / OPT_DRAWS)
    checks = [
        ck(
            "choosing on the test set understates the true error in more draws than chance "
            f"allows (a binomial test at four standard errors, over the {OPT_DRAWS} draws)",
            pooled > 50 + 4 * se,
            f"{pooled:.3g} %",
            f"> {50 + 4 * se:.3g} %",
        ),
        said(
            text,
            "That is below σ², which no model beats",
            min(cv) < NOISE**2 and min(cv) < curves["test"][int(np.argmin(cv))],
            f"{min(cv):.3g} against σ² = {NOISE**2:.3g} and "
            f"{curves['test'][int(np.argmin(cv))]:.3g}",
            "below both",
        ),
    ]
    rows = [[d, a, b] for d, a, b in zip(DEGREES, cv, sk, strict=True)]
    table = Table(
        ["degree", f"{K}-fold CV error (descentlab's folds)", "scikit-learn cross_val_score"],
        rows,
        f"the training set of the section above, {N_TRAIN} points",
    )
    return Part(
        "cv",
        "Cross-validation, and the optimism of choosing on the test set",
        [text, table, checks],
    )


# ------------------------------------------------------------------------------------------
# 3. the bias–variance decomposition, exactly

BIAS_VARIANCE = kit.Prose(
    """
Why does the test error rise again? The decomposition of item 66 answers it, and for least
squares it can be computed exactly. Fix the inputs $x_1, \\dots, x_n$ ({{n}} points evenly over
[-1, 1]) and let only the noise vary from one training set to the next: $y = f(x) + \\epsilon$,
$\\epsilon \\sim N(0, \\sigma^2)$. A least-squares fit is linear in y, $\\hat f(x) = s(x)^\\top
y$ with
$s(x)^\\top = \\phi(x)^\\top (\\Phi^\\top\\Phi)^{-1}\\Phi^\\top$, so its mean over training sets is
$s(x)^\\top f$ and its variance $\\sigma^2 \\|s(x)\\|^2$. The expected squared error on a fresh
noisy target at x splits into three terms,

$$\\mathbb{E}\\big[(y - \\hat f(x))^2\\big] = \\underbrace{\\big(s(x)^\\top f -
f(x)\\big)^2}_{\\text{bias}^2}
+ \\underbrace{\\sigma^2 \\|s(x)\\|^2}_{\\text{variance}} +
\\underbrace{\\sigma^2}_{\\text{noise}},$$

and the cross terms vanish because the fresh noise and the training noise are independent of
each other and of everything else. Averaged over the interval: at degree 1 the squared bias
is {{b1}} and the variance {{v1}}, the line cannot bend; at degree 9 the bias has all but gone,
{{b9}}, and the variance has grown to {{v9}}. The build checks the formulas against {{draws}}
draws of the noise: the fitted curves' mean and spread reproduce bias and variance, and their
mean squared error on fresh noisy targets, {{mc9}} at degree 9, is the three terms' sum
{{sum9}}. The noise is the floor no model can remove; the model's flexibility trades the other
two against each other (item 65).""",
    b1="degree 1: the squared bias by the formula, against the draws",
    v1="degree 1: the variance by the formula, against the draws",
    b9="degree 9: the squared bias by the formula, against the draws",
    v9="degree 9: the variance by the formula, against the draws",
    mc9="degree 9: the draws' error on fresh targets, against the three terms",
    sum9="degree 9: bias² + variance + σ², against the draws",
)


def _bias_variance_exact(degree: int, sigma: float = NOISE) -> tuple[float, float]:
    """Mean squared bias and variance of the degree-``degree`` least-squares fit over the test
    interval, fixed design, by the smoother's closed form."""
    x, xt = np.linspace(-1, 1, DESIGN_N), np.linspace(-1, 1, 201)
    phi = _features(x, degree)
    s = _features(xt, degree) @ np.linalg.solve(phi.T @ phi, phi.T)
    return float(np.mean((s @ _truth(x) - _truth(xt)) ** 2)), float(
        np.mean(sigma**2 * (s**2).sum(1))
    )


def _bias_variance_draws(degree: int) -> dict[str, float]:
    rng = np.random.default_rng(4)
    x, xt = np.linspace(-1, 1, DESIGN_N), np.linspace(-1, 1, 201)
    y = _truth(x) + NOISE * rng.standard_normal((BV_DRAWS, DESIGN_N))
    w = np.linalg.lstsq(_features(x, degree), y.T, rcond=None)[0]
    pred = (_features(xt, degree) @ w).T  # (draws, test points)
    var = pred.var(0, ddof=1)
    bias2 = (pred.mean(0) - _truth(xt)) ** 2 - var / BV_DRAWS  # the mean's own noise removed
    fresh = _truth(xt) + NOISE * rng.standard_normal(pred.shape)
    return {
        "bias2": float(bias2.mean()),
        "var": float(var.mean()),
        "error": float(((fresh - pred) ** 2).mean()),
    }


def _bias_variance(ctx: Context, n: kit.Numbers) -> Part:
    exact = {d: _bias_variance_exact(d) for d in BV_DEGREES}
    draws = ctx.memo(
        ("chapter", "methodology", "bv"), lambda: {d: _bias_variance_draws(d) for d in BV_DEGREES}
    )
    tol_b = {
        d: 4 * (2 * math.sqrt(exact[d][0] * exact[d][1] / BV_DRAWS) + exact[d][1] / BV_DRAWS)
        for d in BV_DEGREES
    }
    total9 = exact[9][0] + exact[9][1] + NOISE**2
    text = BIAS_VARIANCE.fill(
        n,
        n=str(DESIGN_N),
        draws=str(BV_DRAWS),
        b1=kit.Twin(exact[1][0], draws[1]["bias2"], tol_b[1], 3, rel=False),
        v1=(exact[1][1], draws[1]["var"], 0.1),
        b9=kit.Twin(exact[9][0], draws[9]["bias2"], tol_b[9], 3, rel=False),
        v9=(exact[9][1], draws[9]["var"], 0.1),
        mc9=(draws[9]["error"], total9, 0.03),
        sum9=(total9, draws[9]["error"], 0.03),
    )
    rows = [
        [
            d,
            exact[d][0],
            draws[d]["bias2"],
            exact[d][1],
            draws[d]["var"],
            exact[d][0] + exact[d][1] + NOISE**2,
            draws[d]["error"],
        ]
        for d in BV_DEGREES
    ]
    table = Table(
        [
            "degree",
            "bias² (formula)",
            "bias² (draws)",
            "variance (formula)",
            "variance (draws)",
            "bias² + variance + σ²",
            "error on fresh targets (draws)",
        ],
        rows,
        f"fixed design of {DESIGN_N} points, σ = {NOISE:g}, {BV_DRAWS} noise draws",
    )
    checks = [
        ck(
            "as the degree grows the squared bias falls and the variance rises",
            all(
                exact[a][0] >= exact[b][0] and exact[a][1] <= exact[b][1]
                for a, b in itertools.pairwise(BV_DEGREES)
            ),
            ", ".join(f"{exact[d][0]:.2g}/{exact[d][1]:.2g}" for d in BV_DEGREES),
            "bias² down, variance up",
        )
    ]
    return Part("bias-variance", "Bias, variance and noise, exactly", [text, table, checks])


# ------------------------------------------------------------------------------------------
# 4. the bootstrap, bagging and boosting

RESAMPLING = kit.Prose(
    """
The *bootstrap* (item 67) resamples the training set with replacement: n draws from n examples.
One draw misses an example with probability $1 - 1/n$, all n draws with ${{f:bootstrap_miss}}$, so a
resample holds a fraction
${{f:bootstrap_share}}$ = {{distinct}} of the distinct examples (tending to
${{f:bootstrap_limit}}$), and the
resamples of descentlab's `bagging` hold {{measured}} on average. Refit a statistic on every
resample and the spread of the refits estimates its uncertainty without a formula: for the
mean of {{boot_n}} values the {{resamples}} resamples give a standard error of {{se}}, against
the textbook $\\sigma/\\sqrt n$ = {{se_theory}}.

*Bagging* (item 68) averages models fitted on bootstrap resamples. Averaging cannot reduce a
bias, but it reduces variance: models that err in different directions cancel. The build bags
{{members}} fully grown regression trees (scikit-learn's, each on one of descentlab's
bootstrap draws) on each of {{sets}} training sets of the first section's problem: a single tree's
mean squared error against the truth is {{single}}, the bag's {{bagged}}. On one feature a
fully grown tree is the 1-nearest-neighbour rule (its splits are the midpoints between sorted
neighbours), and the build computes both numbers again that way, without a tree. The bag
averages the tree's piecewise-constant jumps into a smoother curve. Random forests add one
more source of disagreement between the trees, a random subset of the features at each split.
*Boosting* (item 69) works the other way round: it fits weak learners in sequence, each on
weights that emphasise the examples the previous ones got wrong, and reduces bias. With
decision stumps on a two-class problem, descentlab's SAMME (the book's `samme`) reaches a
training error of {{boost}} after {{rounds}} rounds, exactly scikit-learn's
`AdaBoostClassifier`; its training error is bounded by $\\prod_t 2\\sqrt{e_t(1 - e_t)}$, here
{{bound}}, where $e_t$ is round t's weighted error.""",
    distinct="1 - (1 - 1/n)^n, against 1 - 1/e corrected by e's expansion to order 1/n",
    measured="the distinct fraction of descentlab's bootstrap draws, against the formula",
    se="the bootstrap standard error, against σ/√n",
    se_theory="σ/√n, against scipy.stats.bootstrap's standard error",
    single="a single tree's mean error, against 1-nearest-neighbour written with numpy",
    bagged="the bag's mean error, against a bag of numpy's 1-nearest-neighbours on its draws",
    boost="descentlab's SAMME training error, against scikit-learn's AdaBoost",
    bound="the bound ∏ 2√(e(1 - e)), against scikit-learn's estimator errors",
)


def _bootstrap() -> dict[str, float]:
    import scipy.stats

    from descentlab.book.experiments import ensembles

    n = 1000
    draws = ensembles.bagging(lambda idx, s: idx.numpy(), n, 200, seed=0)
    values = np.random.default_rng(5).normal(1.0, 2.0, BOOT_N)
    means = ensembles.bagging(
        lambda idx, s: float(values[idx.numpy()].mean()), BOOT_N, RESAMPLES, seed=1
    )
    sp = scipy.stats.bootstrap((values,), np.mean, n_resamples=RESAMPLES, random_state=2)
    return {
        "n": n,
        "frac": float(np.mean([len(np.unique(d)) / n for d in draws])),
        "se": float(np.std(means, ddof=1)),
        "theory": float(values.std()) / math.sqrt(BOOT_N),
        "scipy": float(sp.standard_error),
    }


def _nearest(x: np.ndarray, y: np.ndarray, xt: np.ndarray) -> np.ndarray:
    """The 1-nearest-neighbour regressor of (x, y) at ``xt``, written with numpy: the value of
    the training point whose cell, cut at the midpoints between sorted neighbours, holds each
    query. On one feature it is a fully grown regression tree (whose splits are those
    midpoints) by another computation."""
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    return ys[np.searchsorted((xs[1:] + xs[:-1]) / 2, xt)]


def _bagging(seed: int) -> tuple[float, float, float, float]:
    """The mean error against the truth of a fully grown regression tree and of a bag of them
    (descentlab's bootstrap draws, scikit-learn's trees), over :data:`BAG_SETS` training sets;
    and the same two errors with each tree replaced by :func:`_nearest` on its draw."""
    from sklearn.tree import DecisionTreeRegressor

    from descentlab.book.experiments import ensembles

    rng = np.random.default_rng(seed)
    xt = np.linspace(-1, 1, 200)
    errs: list[list[float]] = [[], [], [], []]

    def err(pred: np.ndarray) -> float:
        return float(np.mean((pred - _truth(xt)) ** 2))

    for k in range(BAG_SETS):
        x, y = _draw(rng)

        def both(idx: np.ndarray, s: int, x=x, y=y) -> tuple[np.ndarray, np.ndarray]:
            fit = DecisionTreeRegressor(random_state=s).fit(x[idx, None], y[idx])
            return fit.predict(xt[:, None]), _nearest(x[idx], y[idx], xt)

        members = ensembles.bagging(
            lambda idx, s: both(idx.numpy(), s), N_TRAIN, MEMBERS, seed=seed * 100 + k
        )
        one = both(np.arange(N_TRAIN), 0)
        for i, v in enumerate(
            (
                one[0],
                np.mean([m[0] for m in members], 0),
                one[1],
                np.mean([m[1] for m in members], 0),
            )
        ):
            errs[i].append(err(v))
    single, bagged, nn_single, nn_bagged = (float(np.mean(e)) for e in errs)
    return single, bagged, nn_single, nn_bagged


def _boosting(rounds: int) -> dict[str, float]:
    from sklearn.datasets import make_moons
    from sklearn.ensemble import AdaBoostClassifier
    from sklearn.tree import DecisionTreeClassifier

    from descentlab.book.experiments import ensembles

    x, y = make_moons(300, noise=0.3, random_state=0)
    ours = ensembles.samme(
        lambda w, m: DecisionTreeClassifier(max_depth=1, random_state=0).fit(x, y, sample_weight=w),
        x,
        y,
        2,
        rounds,
    )
    sk = AdaBoostClassifier(
        DecisionTreeClassifier(max_depth=1, random_state=0), n_estimators=rounds, random_state=0
    ).fit(x, y)
    errs = np.asarray(ours.errors)
    return {
        "ours": float((ours.predict(x) != y).mean()),
        "sklearn": float((sk.predict(x) != y).mean()),
        "bound": float(np.prod(2 * np.sqrt(errs * (1 - errs)))),
        "bound_sk": float(np.prod(2 * np.sqrt(sk.estimator_errors_ * (1 - sk.estimator_errors_)))),
    }


def _resampling(ctx: Context, n: kit.Numbers) -> Part:
    b = ctx.memo(("chapter", "methodology", "bootstrap"), _bootstrap)
    s1, g1, n1, ng1 = ctx.memo(("chapter", "methodology", "bagging"), lambda: _bagging(6))
    boost = ctx.memo(("chapter", "methodology", "boosting"), lambda: _boosting(BOOST_ROUNDS))
    nn = b["n"]
    text = RESAMPLING.fill(
        n,
        boot_n=str(BOOT_N),
        resamples=str(RESAMPLES),
        members=str(MEMBERS),
        sets=str(BAG_SETS),
        rounds=str(BOOST_ROUNDS),
        distinct=(1 - (1 - 1 / nn) ** nn, 1 - math.exp(-1) * (1 - 1 / (2 * nn)), 1e-4),
        measured=(b["frac"], 1 - (1 - 1 / nn) ** nn, 0.005),
        se=(b["se"], b["theory"], 0.15),
        se_theory=(b["theory"], b["scipy"], 0.15),
        single=(s1, n1, 1e-9),
        bagged=(g1, ng1, 1e-9),
        boost=(boost["ours"], boost["sklearn"], 0),
        bound=(boost["bound"], boost["bound_sk"], 1e-9),
    )
    checks = [
        ck(
            f"bagging lowers the tree's error (the mean over {BAG_SETS} training sets)",
            g1 < s1,
            f"{g1:.3g} < {s1:.3g}",
            "bagged below single",
        ),
        ck(
            "boosting's training error is below its bound",
            boost["ours"] <= boost["bound"],
            f"{boost['ours']:.3g}",
            f"≤ {boost['bound']:.3g}",
        ),
    ]
    return Part("resampling", "The bootstrap, bagging and boosting", [text, checks])


# ------------------------------------------------------------------------------------------
# 5. the figure to move: bias and variance of a fit, computed in the page

MOVE = kit.Prose(
    """
Move the degree and the noise: the page computes the least-squares smoother of the fixed
design of the bias–variance section itself (the normal equations of the Legendre features,
solved by Gaussian elimination) and draws the truth, the fit's mean over training sets and a
band of two standard deviations of the fits. Low degrees miss the curve by the same amount
whatever the noise: bias. High degrees follow it on average but their band widens with σ and
bulges at the interval's ends, where few points hold the polynomial in place: variance. The
readout gives both averages, which the build's numpy computation reproduces at {{probes}}
settings."""
)

MOVE_JS = """function (p) {
  var D = Math.round(p.degree), X = p.x, n = X.length, xs = [], mean = [], lo = [], hi = [];
  function leg(t) {
    var P = [1, t];
    for (var k = 1; k < D; k++) P.push(((2 * k + 1) * t * P[k] - k * P[k - 1]) / (k + 1));
    return P.slice(0, D + 1);
  }
  var Phi = X.map(leg), A = [];
  for (var r = 0; r <= D; r++) {
    A.push([]);
    for (var c = 0; c <= D; c++) {
      var s = 0;
      for (var i = 0; i < n; i++) s += Phi[i][r] * Phi[i][c];
      A[r].push(s);
    }
  }
  var f = X.map(function (t) { return Math.sin(Math.PI * t); }), bias2 = 0, vari = 0, T = 201;
  for (var j = 0; j < T; j++) {
    var t = -1 + 2 * j / (T - 1), phi = leg(t), z = solve(A, phi), m = 0, ss = 0;
    for (var i2 = 0; i2 < n; i2++) {
      var si = 0;
      for (var k2 = 0; k2 <= D; k2++) si += Phi[i2][k2] * z[k2];
      m += si * f[i2]; ss += si * si;
    }
    var sd = p.sigma * Math.sqrt(ss), truth = Math.sin(Math.PI * t);
    bias2 += (m - truth) * (m - truth) / T; vari += p.sigma * p.sigma * ss / T;
    xs.push(t); mean.push(m); lo.push(m - 2 * sd); hi.push(m + 2 * sd);
  }
  var tx = xs, ty = xs.map(function (t) { return Math.sin(Math.PI * t); });
  return {panels: [{x: {label: 'x', min: -1, max: 1}, y: {label: 'y', min: -2, max: 2},
    lines: [{x: tx, y: ty, label: 'the truth sin(πx)', colour: '#999999'},
            {x: xs, y: mean, label: 'the fit, averaged over training sets'},
            {x: xs, y: lo, label: '± 2 standard deviations of the fits', dash: true,
             colour: '#0072B2'},
            {x: xs, y: hi, dash: true, colour: '#0072B2'}]}],
    values: {bias2: bias2, variance: vari},
    text: 'squared bias ' + fmt(bias2) + ', variance ' + fmt(vari) + ' (averages over [-1, 1])'};
}"""

MOVE_PROBES = ((1, 0.3), (5, 0.3), (9, 0.5))


def _move(ctx: Context, n: kit.Numbers) -> Part:
    probes = [
        Probe(
            {"degree": d, "sigma": s},
            dict(zip(("bias2", "variance"), _bias_variance_exact(d, s), strict=True)),
            1e-9,
        )
        for d, s in MOVE_PROBES
    ]
    fig = Live(
        "Move the degree and the noise: the truth, the mean of the least-squares fits over "
        "training sets and their spread, for the fixed design of 20 points.",
        [
            Slider("degree", "degree", 1, 12, 5, integer=True),
            Slider("sigma", "σ", 0.05, 1.0, NOISE),
        ],
        MOVE_JS,
        probes,
        against="the build's numpy smoother",
        constants={"x": np.linspace(-1, 1, DESIGN_N).tolist()},
    )
    return Part(
        "move", "Move the degree: bias against variance", [MOVE.fill(n, probes="3"), fig, []]
    )


# ------------------------------------------------------------------------------------------
# 6. from scratch, and a real training run

_scratch = kit.scratch(
    text="""
k-fold cross-validation from scratch: shuffle the indices with a seeded generator, cut them
into k nearly equal folds, and for each fold fit on the others and score on it. Written with
numpy's `RandomState` shuffle, the cell reproduces the folds of descentlab's `fold_indices`
(which uses scikit-learn's `KFold`) exactly, and with them the cross-validation errors of the
section above, degree by degree.""",
    code="""\
import numpy as np
from descentlab.problems.data import fold_indices

def my_folds(n, k, seed):
    idx = np.arange(n)
    np.random.RandomState(seed).shuffle(idx)              # one shuffle of all the indices
    sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    out, start = [], 0
    for s in sizes:
        val = idx[start:start + s]
        out.append((np.setdiff1d(idx, val), val))
        start += s
    return out

def cv_error(x, y, degree, folds):
    errors = []
    for train, val in folds:
        features = np.polynomial.legendre.legvander
        w = np.linalg.lstsq(features(x[train], degree), y[train], rcond=None)[0]
        errors.append(np.mean((features(x[val], degree) @ w - y[val]) ** 2))
    return np.mean(errors)

rng = np.random.default_rng(0)
x = rng.uniform(-1, 1, 30)
y = np.sin(np.pi * x) + 0.3 * rng.standard_normal(30)
mine = [cv_error(x, y, d, my_folds(30, 5, 0)) for d in range(1, 13)]
library = [cv_error(x, y, d, fold_indices(y, 5, seed=0, stratify=False)) for d in range(1, 13)]
print("CV error by degree:", [round(float(v), 4) for v in mine])
theirs = fold_indices(y, 5, seed=0, stratify=False)
same = all((np.sort(a[1]) == np.sort(b[1])).all() for a, b in zip(my_folds(30, 5, 0), theirs))
print("the folds' validation sets are the same:", same)
""",
    what="k-fold cross-validation from scratch gives descentlab's folds' CV errors, degree by "
    "degree",
    title="From scratch",
)

TRAINING = kit.Prose(
    """
Early stopping (item 84) is cross-validation over time: a held-out validation set scores the
model during training, and the run keeps the weights of its best score. The figure trains
descentlab's default model on a small MNIST-1D ({{n}} examples, so that it overfits) with
`Adam` and the engine's `early_stopping` (patience {{patience}} evaluations, the best weights
restored). The training loss keeps falling, the validation loss turns up: the gap of the first
section, opening in time. The engine stopped at step {{stop}}, {{patience}} evaluations after
the best one, step {{best}}; the restored model's validation loss, {{restored}}, is the minimum
of the recorded curve.""",
    stop="the step the engine stopped at, against the best step + patience × cadence",
    best="the engine's best step, against the argmin of the recorded validation curve",
    restored="the restored model's validation loss, against the recorded minimum",
)


def _training(ctx: Context, n: kit.Numbers) -> Part:
    runs = {
        "Adam with early stopping": {
            "problem": "mnist1d",
            "problem_options": {"num_samples": TRAIN_N},
            "steps": TRAIN_STEPS,
            "eval_every": 25,
            "batch_size": 32,
            "optimizer": "adam",
            "hyper": {"lr": 0.003},
            "early_stopping": {"patience": PATIENCE, "restore_best": True, "monitor": "val/loss"},
        }
    }
    fig, res = kit.training_run(ctx, "methodology", runs, "MNIST-1D, a small training set")
    (r,) = res.values()
    val = r.metrics["val/loss"]
    ax = fig.axes[0]
    ax.plot(val.steps, val.values, marker=".", ms=3, lw=1.4, label=kit.WORDS["val/loss"])
    ax.set_title(f"{ax.get_title()} and {kit.WORDS['val/loss']}", fontsize=10)
    ax.legend(fontsize=8)
    best = int(val.steps[int(np.argmin(val.values))])
    text = TRAINING.fill(
        n,
        n=str(TRAIN_N),
        patience=str(PATIENCE),
        stop=(r.steps, int(r.summary["best_step"]) + PATIENCE * 25, 0),
        best=(int(r.summary["best_step"]), best, 0),
        restored=(float(r.summary["val/loss"]), float(np.min(val.values)), 1e-9, 4),
    )
    tr = r.metrics["train/loss"]
    checks = [
        ck(
            "the training loss at the stop is below its value at the best step, the "
            "validation loss above it",
            float(tr.values[-1]) < float(tr.values[list(tr.steps).index(best)])
            and float(val.values[-1]) > float(np.min(val.values)),
            f"train {float(tr.values[-1]):.3g}; val {float(val.values[-1]):.3g}",
            "the gap opened",
        )
    ]
    return Part("training", "A real training run: early stopping", [text, fig, checks])


KEEP = """
What to keep. The training error only falls as a model grows; the test error falls, then
rises, and only data the model never saw can tell where. Cross-validation is that data carved
out of the training set; choosing on the test set instead reports an optimistic number. The
expected error splits into squared bias, variance and noise, exactly for least squares:
flexibility trades the first two, and the noise is a floor. The bootstrap measures uncertainty
by resampling, bagging averages resampled models to cut variance, boosting adds weak models in
sequence to cut bias; early stopping is cross-validation over the steps of one run."""

#: the chapter's exercises (:mod:`descentlab.book.chapters.practice`)
EXERCISES = practice.METHODOLOGY

CHAPTER = kit.Chapter(
    "deep-methodology",
    "Generalization methodology, in depth",
    "How to know whether a model generalizes: the gap, cross-validation with descentlab's folds "
    "and the optimism of choosing on the test set, the bias–variance decomposition computed "
    "exactly, the bootstrap, bagging and boosting, and early stopping in a real run.",
    (62, 63, 64, 65, 66, 67, 68, 69, 84),
    (
        N_TRAIN,
        NOISE,
        N_TEST,
        *DEGREES,
        K,
        DRAWS,
        OPT_DRAWS,
        DESIGN_N,
        BV_DRAWS,
        *BV_DEGREES,
        BOOT_N,
        RESAMPLES,
        MEMBERS,
        BOOST_ROUNDS,
        TRAIN_N,
        TRAIN_STEPS,
        PATIENCE,
        BAG_SETS,
        0,
        1,
        2,
        20,
        40,
    ),
    (_gap, _cv, _bias_variance, _resampling, _move, _scratch, _training),
    KEEP,
    EXERCISES,
)
