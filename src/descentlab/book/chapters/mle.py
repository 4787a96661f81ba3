"""Losses from likelihood, in depth: maximum likelihood as a product that becomes a sum, the
Gaussian likelihood and the squared error, the Laplace likelihood and the absolute error (the
mean against the median), the categorical likelihood and the cross-entropy, and entropy and
the Kullback–Leibler divergence; descentlab's losses against torch.distributions, scipy and
closed forms, the cross-entropy from scratch, and a real training run on a regression task."""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize
import scipy.stats
import torch
import torch.nn.functional as F

from descentlab import losses, optim
from descentlab import schedules as S
from descentlab.book.chapters import _common as kit
from descentlab.book.chapters import practice
from descentlab.book.checks import ck, close
from descentlab.book.facts import word
from descentlab.book.model import Context
from descentlab.book.render.chapter import Part, Table
from descentlab.book.render.live import Live, Probe, Slider

__all__ = ["CHAPTER"]

#: the Gaussian sample of the first section: its size, mean and std
N, MU, SIGMA = 2000, 1.5, 1.0
#: the line fitted by maximum likelihood: slope, intercept, noise, points
SLOPE, INTERCEPT, LINE_NOISE, LINE_N = 2.0, -1.0, 0.5, 200
#: the location sample with one outlier: size, the outlier's value
LOC_N, OUTLIER = 21, 40.0
#: the samples of each family fitted in the families' table
FAMILY_N = 501
#: the class counts the categorical model is fitted to
COUNTS = (50, 30, 20)
#: the training runs on the regression dataset
TRAIN_STEPS, TRAIN_LR = 600, 0.01


def _gauss(n: int = N, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return MU + SIGMA * torch.randn(n, generator=g, dtype=torch.float64)


def _positive(raw: torch.Tensor) -> torch.Tensor:
    """A free parameter as descentlab's NLL maps it to a scale (torch's bijection onto the
    positive numbers)."""
    return torch.distributions.biject_to(torch.distributions.constraints.positive)(raw)


def _descend(loss, params: list[torch.Tensor], steps: int, lr, make=optim.Adam) -> None:
    """``steps`` steps of a descentlab optimizer on ``loss()`` (float64 parameters; ``lr`` a
    rate or a descentlab schedule)."""
    opt = make(params, lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss().backward()
        opt.step()


# ------------------------------------------------------------------------------------------
# 1. a product that becomes a sum

PRODUCT = kit.Prose(
    """
Training a model is matching distributions (item 1): the model $p(y \\mid w)$ should make the
data it will see likely. Maximum likelihood makes that a number to optimise (item 2): choose

$$\\hat w = \\mathrm{arg}\\max_w\\, p(y_1, \\dots, y_n \\mid w)
= \\mathrm{arg}\\max_w \\prod_{i=1}^n p(y_i \\mid w),$$

the product because independent samples multiply (item 3). The product is useless as it
stands. Take {{n}} samples of a normal distribution with mean {{mu}} and standard deviation
{{sigma}}: each density is at most $1/\\sqrt{2\\pi}$ = {{peak}}, and in float64 the product of the
first {{under}} is already 0. The smallest positive double is about $5 \\cdot 10^{-324}$; the
average log-density here is {{mean_log}}, so the product's logarithm passes $\\ln(5 \\cdot
10^{-324})$ after about {{predicted}} samples. Take logarithms (item 4): the log of the product
is the sum of the logs,

$$\\log \\prod_i p(y_i \\mid w) = \\sum_i \\log p(y_i \\mid w),$$

a sum of {{n}} moderate numbers, here {{loglik}} at the true mean, and because the logarithm
is increasing it has its maximum where the product has it. Every loss of the lectures is such
a sum of negative logs, one term per example: a *negative log-likelihood*. At its best the
Gaussian's is reached at the sample mean, {{mean}}, which the build finds by running
descentlab's `Adam` on descentlab's `nll("normal")` loss ({{found}}).""",
    peak="the density's maximum 1/√(2π), against scipy.stats.norm.pdf(0)",
    under="the first n at which the product underflows, against the count from its log",
    mean_log="the mean log-density, against scipy.stats.norm's",
    predicted="the predicted underflow count, against the measured one",
    loglik="the log-likelihood by descentlab's NLL, against scipy.stats.norm.logpdf",
    mean="the sample mean, against numpy's",
    found="descentlab's Adam on the Gaussian NLL, against the sample mean",
)


def _product(ctx: Context, n: kit.Numbers) -> Part:
    y = _gauss()
    dens = torch.exp(torch.distributions.Normal(MU, SIGMA).log_prob(y))
    running = torch.cumprod(dens, 0)
    under = int(torch.nonzero(running == 0)[0]) + 1
    logs = scipy.stats.norm(MU, SIGMA).logpdf(y.numpy())
    # the product rounds to 0 below half the smallest positive double
    first_zero = int(np.nonzero(np.cumsum(logs) < math.log(math.ulp(0.0)) - math.log(2))[0][0]) + 1
    nll = losses.nll("normal", scale=SIGMA, reduction="sum")
    loglik = -float(nll(torch.full_like(y, MU), y))
    mu = torch.zeros((), dtype=torch.float64, requires_grad=True)
    _descend(lambda: nll(mu.expand_as(y), y) / N, [mu], 600, 0.05)
    mean_log = float(logs.mean())
    text = PRODUCT.fill(
        n,
        n=str(N),
        mu=f"{MU:g}",
        sigma=f"{SIGMA:g}",
        peak=(1 / math.sqrt(2 * math.pi), float(scipy.stats.norm.pdf(0.0))),
        under=kit.Twin(under, first_zero, 1, rel=False),  # (subnormals round: one apart at most)
        mean_log=(float(torch.log(dens).mean()), mean_log),
        predicted=kit.Twin(round(math.log(5e-324) / mean_log), under, 0.02),
        loglik=(loglik, float(logs.sum())),
        mean=(float(y.mean()), float(np.mean(y.numpy())), 1e-12, 4),
        found=(float(mu.detach()), float(y.mean()), 1e-6, 4),
    )
    checks = [
        ck(
            "log is monotone: the product and the sum of logs peak at the same μ (40 samples, a "
            "grid of 3001 means)",
            *_same_peak(),
        ),
    ]
    return Part("product", "A product that becomes a sum", [text, checks])


def _same_peak() -> tuple[bool, str, str]:
    y = _gauss(40, 1)
    mus = torch.linspace(0, 3, 3001, dtype=torch.float64)
    logp = torch.distributions.Normal(mus[:, None], SIGMA).log_prob(y[None])
    a, b = int(torch.exp(logp).prod(1).argmax()), int(logp.sum(1).argmax())
    return a == b, f"argmax {float(mus[a]):.3f} and {float(mus[b]):.3f}", "equal"


# ------------------------------------------------------------------------------------------
# 2. Gaussian noise: the squared error

GAUSSIAN = kit.Prose(
    """
Which sum? That is the model's choice of distribution (item 5). Say the targets are a line
plus Gaussian noise, $y_i = a x_i + b + \\epsilon_i$ with $\\epsilon_i \\sim N(0, \\sigma^2)$.
One term of the negative log-likelihood is

$$-\\log p(y_i \\mid a, b, \\sigma) = \\frac{(y_i - a x_i - b)^2}{2\\sigma^2} +
\\frac{1}{2}\\log(2\\pi\\sigma^2),$$

and for a fixed σ the second term is a constant and the first is the squared error divided by
a constant: maximising the Gaussian likelihood over (a, b) *is* minimising the mean squared
error (item 7). The build draws {{n}} points of the line with slope {{slope}}, intercept
{{intercept}} and noise σ = {{noise}}, and fits it three ways: least squares in closed form
(numpy's `polyfit`), descentlab's `Adam` on descentlab's `mse` loss, and `Adam` on
descentlab's Gaussian NLL with σ fixed. All three land on the same line, slope {{a}} and
intercept {{b}}, up to the optimiser's last digits ({{agree}} apart at most).

The likelihood says more than the loss does. Leave σ free as well, and the NLL's minimum over
σ is where its derivative vanishes, $\\hat\\sigma^2 = \\frac{1}{n}\\sum_i (y_i - \\hat a x_i -
\\hat b)^2$:
the root of the mean squared residual. descentlab's `nll("normal")` with its scale learned
finds {{sigma_fit}}; the residuals' root mean square is {{rms}}, close to the {{noise}} the
data were drawn with. The squared error is the Gaussian likelihood with its noise level
forgotten; keep it, and the model also reports how noisy it believes the data to be.""",
    a="the slope by descentlab's Adam on mse, against numpy's polyfit",
    b="the intercept by descentlab's Adam on mse, against polyfit",
    agree="the largest gap of the NLL fit to the mse fit, against 0",
    sigma_fit="σ learned by descentlab's Gaussian NLL, against the residuals' RMS",
    rms="the residuals' RMS, against the noise σ drawn",
)


def _line() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    x = torch.linspace(-1, 1, LINE_N, dtype=torch.float64)
    return x, SLOPE * x + INTERCEPT + LINE_NOISE * torch.randn(
        LINE_N, generator=g, dtype=torch.float64
    )


def _fit_line(loss_of) -> list[float]:
    ab = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    x, y = _line()
    _descend(lambda: loss_of(ab[0] * x + ab[1], y), [ab], 1000, S.cosine(1000, base=0.1))
    return ab.detach().tolist()


def _gaussian_fits() -> dict[str, list[float]]:
    x, y = _line()
    mse = _fit_line(losses.get("mse"))
    nll = _fit_line(losses.nll("normal", scale=LINE_NOISE))
    free = torch.zeros(3, dtype=torch.float64, requires_grad=True)  # a, b and σ's raw value
    nll_free = losses.nll("normal")
    _descend(
        lambda: nll_free(torch.stack([free[0] * x + free[1], free[2].expand_as(x)], -1), y),
        [free],
        1500,
        S.cosine(1500, base=0.1),
    )
    sigma = float(_positive(free[2].detach()))
    return {"mse": mse, "nll": nll, "sigma": [sigma]}


def _gaussian(ctx: Context, n: kit.Numbers) -> Part:
    fits = ctx.memo(("chapter", "mle", "gaussian"), _gaussian_fits)
    x, y = _line()
    a, b = np.polyfit(x.numpy(), y.numpy(), 1)
    rms = float(np.sqrt(np.mean((y.numpy() - a * x.numpy() - b) ** 2)))
    gap = max(abs(u - v) for u, v in zip(fits["mse"], fits["nll"], strict=True))
    text = GAUSSIAN.fill(
        n,
        n=str(LINE_N),
        slope=f"{SLOPE:g}",
        intercept=f"{INTERCEPT:g}",
        noise=f"{LINE_NOISE:g}",
        a=(fits["mse"][0], a, 1e-6, 4),
        b=(fits["mse"][1], b, 1e-6, 4),
        agree=kit.Twin(gap, 0.0, 1e-6, 2, rel=False),
        sigma_fit=(fits["sigma"][0], rms, 1e-4, 4),
        rms=(rms, LINE_NOISE, 0.15, 4),
    )
    table = Table(
        ["fit", "slope", "intercept"],
        [
            ["least squares (numpy.polyfit)", a, b],
            ["descentlab Adam on mse", *fits["mse"]],
            ["descentlab Adam on nll('normal'), σ fixed", *fits["nll"]],
        ],
        f"{LINE_N} points of y = {SLOPE:g}x {INTERCEPT:+g} + N(0, {LINE_NOISE:g}²), float64",
    )
    checks = [
        close(
            "the NLL's σ minimiser is the root mean squared residual", fits["sigma"][0], rms, 1e-4
        )
    ]
    return Part("gaussian", "Gaussian noise: the squared error", [text, table, checks])


# ------------------------------------------------------------------------------------------
# 3. Laplace noise: the absolute error, the median

LAPLACE = kit.Prose(
    """
Change the noise to Laplace's, $p(y) = \\frac{1}{2b} e^{-|y - \\mu|/b}$, whose tails are heavier
than the Gaussian's. The negative log-likelihood of one sample is $|y - \\mu|/b + \\log 2b$: the
absolute error, up to a scale and a constant (item 6). The two losses weigh errors differently
(items 116 and 117): descentlab's `l1` gives the errors 3 - 1 and 11 - 1 the losses {{l1a}} and
{{l1b}}, its `mse` gives {{l2a}} and {{l2b}}, so a single large error dominates the squared
loss and not the absolute one.

That difference decides what a model learns. The location that minimises the mean squared
error is the sample mean; the one that minimises the mean absolute error is the median (half
the samples on each side: the subgradient of $\\sum |y_i - \\mu|$ is the number of samples
above μ minus the number below). The build takes {{n}} standard normal samples and replaces
one by {{outlier}}, a gross error. The mean moves to {{mean}}; descentlab's `Adam` on the `l1`
loss finds {{l1fit}}, the median {{median}}: the other {{n_less}} samples hold it in place. The
Laplace likelihood also fits its scale: the minimiser of the NLL over b is the mean absolute
deviation from the median, {{b}}, which descentlab's `nll("laplace")` with a free scale finds
({{bfit}}). A model trained with the absolute error is a model of heavy-tailed noise, and it is
robust to outliers for the same reason: it believes in them.""",
    l1a="descentlab's l1 of 3 against 1, against |3 - 1|",
    l1b="descentlab's l1 of 11 against 1, against |11 - 1|",
    l2a="descentlab's mse of 3 against 1, against (3 - 1)²",
    l2b="descentlab's mse of 11 against 1, against (11 - 1)²",
    mean="the mean with the outlier, against numpy's",
    l1fit="descentlab's Adam on the l1 loss, against the median",
    median="the median, against scipy's minimisation of the mean absolute error",
    b="the mean absolute deviation, against descentlab's NLL fit",
    bfit="descentlab's Laplace NLL fit of b, against the mean absolute deviation",
)


def _location() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    y = torch.randn(LOC_N, generator=g, dtype=torch.float64)
    y[0] = OUTLIER
    return y


def _laplace_fits() -> tuple[float, float]:
    y = _location()
    mu = torch.zeros((), dtype=torch.float64, requires_grad=True)
    l1 = losses.get("l1")
    _descend(lambda: l1(mu.expand_as(y), y), [mu], 1500, S.cosine(1500, base=0.05))
    loc_scale = torch.tensor([float(y.median()), 0.0], dtype=torch.float64, requires_grad=True)
    nll = losses.nll("laplace")
    _descend(
        lambda: nll(torch.stack([loc_scale[0].expand_as(y), loc_scale[1].expand_as(y)], -1), y),
        [loc_scale],
        1500,
        S.cosine(1500, base=0.05),
    )
    return float(mu.detach()), float(_positive(loc_scale[1].detach()))


def _laplace(ctx: Context, n: kit.Numbers) -> Part:
    l1, l2 = losses.get("l1", reduction="none"), losses.get("mse", reduction="none")
    a, t = torch.tensor([3.0, 11.0]), torch.tensor([1.0, 1.0])
    y = _location()
    mu_l1, b_fit = ctx.memo(("chapter", "mle", "laplace"), _laplace_fits)
    med = float(y.median())
    mad = float((y - med).abs().mean())
    scipy_med = scipy.optimize.minimize_scalar(
        lambda m: float(np.abs(y.numpy() - m).mean()),
        bounds=(-5, 5),
        method="bounded",
        options={"xatol": 1e-12},
    ).x
    text = LAPLACE.fill(
        n,
        n=str(LOC_N),
        outlier=f"{OUTLIER:g}",
        n_less=str(LOC_N - 1),
        l1a=(float(l1(a, t)[0]), abs(3 - 1), 0),
        l1b=(float(l1(a, t)[1]), abs(11 - 1), 0),
        l2a=(float(l2(a, t)[0]), (3 - 1) ** 2, 0),
        l2b=(float(l2(a, t)[1]), (11 - 1) ** 2, 0),
        mean=(float(y.mean()), float(np.mean(y.numpy()))),
        l1fit=(mu_l1, med, 1e-3),
        median=(med, scipy_med, 1e-6),
        b=(mad, b_fit, 1e-3),
        bfit=(b_fit, mad, 1e-3),
    )
    clean = _location_clean()
    rows = [
        ["mean (the MSE's minimiser)", float(y.mean()), float(clean.mean())],
        ["median (the L1 loss's minimiser)", med, float(clean.median())],
    ]
    table = Table(
        ["estimate", f"with the outlier {OUTLIER:g}", "the sample before"],
        rows,
        f"{LOC_N} standard normal samples, one replaced by {OUTLIER:g}",
    )
    shift = [abs(rows[0][1] - rows[0][2]), abs(rows[1][1] - rows[1][2])]
    checks = [
        close(
            "the outlier moves the mean by (outlier - the sample it replaced)/n",
            shift[0],
            abs(OUTLIER - float(clean[0])) / LOC_N,
            1e-9,
        ),
        ck(
            "the outlier moves the median by less than a tenth of the mean's move",
            shift[1] < 0.1 * shift[0],
            f"{shift[1]:.3g}",
            f"< {0.1 * shift[0]:.3g}",
        ),
    ]
    return Part(
        "laplace", "Laplace noise: the absolute error, and the median", [text, table, checks]
    )


def _location_clean() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.randn(LOC_N, generator=g, dtype=torch.float64)


# ------------------------------------------------------------------------------------------
# 4. classes: the cross-entropy

CATEGORICAL = kit.Prose(
    """
For classes the model outputs one score per class, the *logits* $z_c$, and its distribution is
the softmax, $q_c = e^{z_c}/\\sum_k e^{z_k}$. The negative log-likelihood of a label y is

$$-\\log q_y = -z_y + \\log \\sum_k e^{z_k},$$

the cross-entropy between the one-hot label and q (item 119). torch's `CrossEntropyLoss`, and
descentlab's `cross_entropy`, take the logits and include the softmax (item 120), computed as
a log-sum-exp so that large logits do not overflow. Its gradient with respect to the logits is
short and worth knowing by heart:

$$\\frac{\\partial}{\\partial z_c}\\big(-\\log q_y\\big) = q_c - [c = y],$$

the predicted probability minus the label: autograd's gradient agrees with it to {{grad}}.
What does maximum likelihood make of the classes? Fit a model with no input at all, one logit
per class, to labels with counts {{counts}}. The NLL is $-\\sum_c n_c \\log q_c$, minimised
under $\\sum_c q_c = 1$ by $q_c = n_c/n$ (a Lagrange multiplier, or the KL divergence of the
next section): the model learns the data's frequencies, the lecture's "make the model
distribution the data distribution" made exact. descentlab's `SGD` on descentlab's
`cross_entropy` ends at {{q}}, against the frequencies {{freq}}.""",
    grad="autograd's gradient of the cross-entropy, against softmax - onehot",
    q="a fitted class probability, against the class frequency",
    freq="a class frequency, against the count over n",
)


def _frequencies() -> list[float]:
    y = torch.tensor([c for c, k in enumerate(COUNTS) for _ in range(k)])
    logits = torch.zeros(len(COUNTS), dtype=torch.float64, requires_grad=True)
    ce = losses.get("cross_entropy")
    _descend(lambda: ce(logits.expand(len(y), len(COUNTS)), y), [logits], 500, 2.0, optim.SGD)
    return torch.softmax(logits.detach(), 0).tolist()


def _categorical(ctx: Context, n: kit.Numbers) -> Part:
    g = torch.Generator().manual_seed(4)
    z = torch.randn(8, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(5, (8,), generator=g)
    losses.get("cross_entropy", reduction="sum")(z, y).backward()
    formula = torch.softmax(z.detach(), 1) - F.one_hot(y, 5)
    gap = float((z.grad - formula).abs().max())
    q = ctx.memo(("chapter", "mle", "frequencies"), _frequencies)
    total = sum(COUNTS)
    text = CATEGORICAL.fill(
        n,
        counts=", ".join(map(str, COUNTS)),
        grad=kit.Twin(gap, 0.0, 1e-12, 2, rel=False),
        q=[(v, c / total, 1e-6) for v, c in zip(q, COUNTS, strict=True)],
        freq=[(c / total, float(np.float64(c) / total)) for c in COUNTS],
    )
    logits = torch.randn(10, 4, generator=g, dtype=torch.float64)
    labels = torch.randint(4, (10,), generator=g)
    ours = float(losses.get("cross_entropy")(logits, labels))
    checks = [
        close(
            "descentlab's cross_entropy = the mean of -log softmax(z)_y (by hand)",
            ours,
            float(-(logits.log_softmax(1).gather(1, labels[:, None])).mean()),
            1e-12,
        ),
        close(
            "= the categorical NLL of torch.distributions",
            ours,
            float(-torch.distributions.Categorical(logits=logits).log_prob(labels).mean()),
            1e-12,
        ),
        close("= torch's CrossEntropyLoss", ours, float(F.cross_entropy(logits, labels)), 1e-12),
    ]
    return Part("categorical", "Classes: the cross-entropy, and the frequencies", [text, checks])


# ------------------------------------------------------------------------------------------
# 4b. the family decides the loss: a table

FAMILIES = kit.Prose(
    """
The pattern is general (item 5): name the noise's family, and its negative log-likelihood is
the loss, its maximum-likelihood parameter the statistic of the data that the loss's
minimiser computes. The table fits one parameter of each family below with descentlab's
`nll(family)` loss to {{n}} samples drawn from it, by descentlab's `Adam` under a cosine
schedule, and compares the fit with the closed form: the Gaussian's mean is the sample mean,
the Laplace location the median, the Poisson rate the sample mean, the exponential rate one
over it, the Bernoulli probability the frequency of ones. The largest relative gap between a
fit and its closed form is {{worst}}. A count model trained with the Poisson NLL, or a survival
time with the exponential's, is therefore trained towards the same statistics a statistician
would compute by hand; the loss is the model's assumption about its errors written as an
objective.

Two of the rows are worth reading twice. The Bernoulli's negative log-likelihood of a label
y ∈ {0, 1} under a logit z is $-y \\log \\sigma(z) - (1 - y) \\log(1 - \\sigma(z))$, the binary
cross-entropy, and with $z = w^\\top x$ it is logistic regression: the classifier of statistics
and the last layer of a binary network are one model under one loss. The Poisson's and the
exponential's parameters must be positive, and descentlab's `nll` maps the model's raw output
onto them (an exponential link), so the model predicts the log of a rate, which is what a
generalised linear model does. In each case the minimiser is reached by gradient descent,
without the closed form, and so the same recipe extends to models for which no closed form
exists: a network whose output is the family's parameter.""",
    worst="the largest gap of a family's fit to its closed form, against 0",
)


def _family_fits() -> list[list]:
    g = torch.Generator().manual_seed(5)
    draws = {
        "normal": (
            1.5 + torch.randn(FAMILY_N, generator=g, dtype=torch.float64),
            "mean",
            {"scale": 1.0},
        ),
        "laplace": (
            torch.distributions.Laplace(1.5, 1.0).sample((FAMILY_N,)).double(),
            "median",
            {"scale": 1.0},
        ),
        "poisson": (
            torch.poisson(torch.full((FAMILY_N,), 3.0, dtype=torch.float64), generator=g),
            "mean",
            {},
        ),
        "exponential": (
            -torch.log(torch.rand(FAMILY_N, generator=g, dtype=torch.float64)) / 2.0,
            "1/mean",
            {},
        ),
        "bernoulli": (
            (torch.rand(FAMILY_N, generator=g, dtype=torch.float64) < 0.3).double(),
            "frequency",
            {},
        ),
    }
    rows = []
    for family, (y, stat, fixed) in draws.items():
        raw = torch.zeros((), dtype=torch.float64, requires_grad=True)
        nll = losses.nll(family, **fixed)
        _descend(
            lambda nll=nll, raw=raw, y=y: nll(raw.expand_as(y), y),
            [raw],
            600,
            S.cosine(600, base=0.1),
        )
        fit = _family_param(family, raw.detach())
        closed = {
            "mean": float(y.mean()),
            "median": float(y.median()),
            "1/mean": float(1 / y.mean()),
            "frequency": float(y.mean()),
        }[stat]
        rows.append([family, stat, fit, closed])
    return rows


def _family_param(family: str, raw: torch.Tensor) -> float:
    """The fitted parameter as the family reads it (descentlab's NLL maps the model's output
    onto the parameter's domain: logits for the Bernoulli, a positive scale for the rates)."""
    if family == "bernoulli":
        return float(torch.sigmoid(raw))
    if family in ("poisson", "exponential"):
        return float(_positive(raw))
    return float(raw)


def _families(ctx: Context, n: kit.Numbers) -> Part:
    rows = ctx.memo(("chapter", "mle", "families"), _family_fits)
    worst = max(abs(fit / closed - 1) for _, _, fit, closed in rows)
    text = FAMILIES.fill(n, n=str(FAMILY_N), worst=kit.Twin(worst, 0.0, 1e-3, 2, rel=False))
    table = Table(
        ["family (descentlab nll)", "closed form", "fitted by Adam", "closed form's value"],
        rows,
        f"{FAMILY_N} samples of each family, one parameter fitted, float64",
    )
    checks = [
        close(f"{fam}: the maximum-likelihood fit is the {stat}", fit, closed, 1e-3, rel=True)
        for fam, stat, fit, closed in rows
    ]
    return Part("families", "The family decides the loss", [text, table, checks])


# ------------------------------------------------------------------------------------------
# 5. entropy and the Kullback–Leibler divergence

ENTROPY = kit.Prose(
    """
Why "cross-entropy"? The entropy of a distribution, $H(P) = -\\sum_c P_c \\log P_c$, measures
its uncertainty (item 118): a fair coin has {{coin}} nats (one bit, the most two outcomes can
have), a loaded die asked "is it a 1?", where a 1 comes with probability $5/6$, has {{die}}
nats, {{less}}, because the answer is nearly sure. The cross-entropy $H(P, Q) = -\\sum_c P_c \\log
Q_c$ is
the average surprise of outcomes drawn from P under a model Q, and it splits as

$$H(P, Q) = H(P) + D_{\\mathrm{KL}}(P \\,\\|\\, Q), \\qquad D_{\\mathrm{KL}}(P \\,\\|\\, Q) =
\\sum_c P_c \\log\\frac{P_c}{Q_c} \\ge 0$$

(item 121). With the data's P fixed, H(P) is a constant, so minimising the cross-entropy over
the model is minimising the KL divergence, and both reach their minimum exactly at Q = P, the
previous section's frequencies. For P = ({{P}}) and Q = ({{Q}}): H(P) = {{hp}}, H(P, Q) =
{{hpq}}, and descentlab's `kl_div_forward` gives {{kl}}, their difference.

The divergence is not a distance: it is asymmetric (item 122). $D_{\\mathrm{KL}}(P \\,\\|\\, Q)$ is
{{kl}} and $D_{\\mathrm{KL}}(Q \\,\\|\\, P)$, descentlab's `kl_div_reverse`, is {{rkl}}. The forward
divergence punishes a model that gives little probability where the data have much, so fits
that minimise it cover every mode; the reverse one punishes probability where the data have
little, so its fits pick one mode and ignore the rest: the lecture's forward and reverse KL
figure, and the reason maximum likelihood (the forward one) produces models that hedge.""",
    coin="a fair coin's entropy ln 2, against scipy.stats.entropy",
    die="the die's entropy, against scipy.stats.entropy",
    hp="H(P), against scipy.stats.entropy",
    hpq="H(P, Q) by descentlab's cross_entropy with probability targets, against the sum",
    kl="KL(P‖Q) by descentlab's kl_div_forward, against H(P, Q) - H(P)",
    rkl="KL(Q‖P) by descentlab's kl_div_reverse, against scipy.stats.entropy(Q, P)",
)

P_DIST, Q_DIST = (0.5, 0.3, 0.2), (0.25, 0.25, 0.5)


def _entropy(ctx: Context, n: kit.Numbers) -> Part:
    p, q = torch.tensor([P_DIST], dtype=torch.float64), torch.tensor([Q_DIST], dtype=torch.float64)
    hp = float(scipy.stats.entropy(P_DIST))
    hpq = float(losses.get("cross_entropy")(q.log(), p))
    kl = float(losses.get("kl_div_forward", input_is_log_probs=True)(q.log(), p))
    rkl = float(losses.get("kl_div_reverse", input_is_log_probs=True)(q.log(), p))
    die = -(5 / 6) * math.log(5 / 6) - (1 / 6) * math.log(1 / 6)
    text = ENTROPY.fill(
        n,
        P=", ".join(f"{v:g}" for v in P_DIST),
        Q=", ".join(f"{v:g}" for v in Q_DIST),
        coin=(math.log(2), float(scipy.stats.entropy([0.5, 0.5]))),
        die=(die, float(scipy.stats.entropy([5, 1]))),
        less=word(die, math.log(2), "greater"),
        hp=(-sum(v * math.log(v) for v in P_DIST), hp),
        hpq=(hpq, -sum(a * math.log(b) for a, b in zip(P_DIST, Q_DIST, strict=True))),
        kl=(kl, hpq - hp),
        rkl=(rkl, float(scipy.stats.entropy(Q_DIST, P_DIST))),
    )
    rows = [
        ["D_KL(P‖Q)", kl, float(scipy.stats.entropy(P_DIST, Q_DIST))],
        ["D_KL(Q‖P)", rkl, float(scipy.stats.entropy(Q_DIST, P_DIST))],
    ]
    table = Table(
        ["divergence", "descentlab", "scipy.stats.entropy"],
        rows,
        f"P = {P_DIST}, Q = {Q_DIST}, in nats",
    )
    checks = [
        ck(
            "the divergence is asymmetric here",
            abs(kl - rkl) > 1e-3,
            f"{kl:.4g} vs {rkl:.4g}",
            "different",
        )
    ]
    return Part("entropy", "Entropy, cross-entropy and the KL divergence", [text, table, checks])


# ------------------------------------------------------------------------------------------
# 6. the figure to move: an outlier against the mean and the median

MOVE = kit.Prose(
    """
Move the outlier: the page computes both losses of the location sample of the Laplace section
over a range of locations μ, with its first sample set to the slider's value, and marks their
minimisers. The squared error's bowl slides with the outlier, its minimum the mean, drifting by
the outlier's move divided by {{n}}; the absolute error's V-shaped valley, a polyline with a
kink at every sample, keeps its bottom at the median, which moves only when the outlier
crosses the middle of the data. The page checks its mean, median and losses against numpy and
descentlab's `mse` and `l1` when it opens."""
)

MOVE_JS = """function (p) {
  var y = p.y.slice(); y[0] = p.outlier;
  var n = y.length, mean = 0;
  y.forEach(function (v) { mean += v / n; });
  var s = y.slice().sort(function (a, b) { return a - b; }), med = s[(n - 1) / 2];
  var mus = [], mse = [], mae = [];
  for (var k = 0; k <= 300; k++) {
    var m = -3 + 6 * k / 300, a = 0, b = 0;
    y.forEach(function (v) { a += (v - m) * (v - m) / n; b += Math.abs(v - m) / n; });
    mus.push(m); mse.push(a); mae.push(b);
  }
  function at0(f) { var t = 0; y.forEach(function (v) { t += f(v) / n; }); return t; }
  var lo = Math.min.apply(null, mae), hi = Math.max.apply(null, mse);
  return {panels: [{x: {label: 'location μ'}, y: {label: 'mean loss', log: true},
    lines: [{x: mus, y: mse, label: 'squared error, minimum at the mean ' + fmt(mean)},
            {x: mus, y: mae, label: 'absolute error, minimum at the median ' + fmt(med)},
            {x: [mean, mean], y: [lo, hi], dash: true, colour: '#D55E00'},
            {x: [med, med], y: [lo, hi], dash: true, colour: '#0072B2'}]}],
    values: {mean: mean, median: med, mse0: at0(function (v) { return v * v; }),
             mae0: at0(function (v) { return Math.abs(v); })},
    text: 'mean ' + fmt(mean) + ', median ' + fmt(med)};
}"""


def _move(ctx: Context, n: kit.Numbers) -> Part:
    clean = _location_clean()

    def probe(o: float) -> Probe:
        y = clean.clone()
        y[0] = o
        zero = torch.zeros_like(y)
        return Probe(
            {"outlier": o},
            {
                "mean": float(np.mean(y.numpy())),
                "median": float(np.median(y.numpy())),
                "mse0": float(losses.get("mse")(zero, y)),
                "mae0": float(losses.get("l1")(zero, y)),
            },
        )

    fig = Live(
        "Move the outlier: the mean squared error and the mean absolute error of the location "
        "sample over μ, with their minimisers (the mean, the median).",
        [Slider("outlier", "the outlier's value", -20.0, 60.0, OUTLIER)],
        MOVE_JS,
        [probe(o) for o in (0.0, 10.0, OUTLIER)],
        against="numpy and descentlab's mse and l1",
        constants={"y": clean.tolist()},
    )
    return Part(
        "move",
        "Move the outlier: the mean follows, the median stays",
        [MOVE.fill(n, n=str(LOC_N)), fig, []],
    )


# ------------------------------------------------------------------------------------------
# 7. from scratch, and a real training run

_scratch = kit.scratch(
    text="""
The cross-entropy and the Gaussian negative log-likelihood from scratch, in plain torch: the
log-sum-exp written out (shifted by the largest logit, so that nothing overflows) and the
Gaussian's two terms. The build checks them against descentlab's `cross_entropy` and
`nll("normal")`, on ordinary logits and on logits large enough to overflow the unshifted
formula.""",
    code="""\
import torch
from descentlab import losses

def cross_entropy(z, y):
    m = z.max(dim=1, keepdim=True).values                 # shift: exp never overflows
    log_sum_exp = m[:, 0] + torch.log(torch.exp(z - m).sum(dim=1))
    return (log_sum_exp - z.gather(1, y[:, None])[:, 0]).mean()

def gaussian_nll(mu, sigma, y):
    return ((y - mu) ** 2 / (2 * sigma**2) + 0.5 * torch.log(2 * torch.pi * sigma**2)).mean()

g = torch.Generator().manual_seed(0)
z = torch.randn(16, 5, generator=g, dtype=torch.float64)
y = torch.randint(5, (16,), generator=g)
t = torch.randn(16, generator=g, dtype=torch.float64)
sigma = torch.tensor(0.7, dtype=torch.float64)
mine = torch.stack([cross_entropy(z, y), cross_entropy(1000 * z, y),
                    gaussian_nll(z[:, 0], sigma, t)])
library = torch.stack([losses.get("cross_entropy")(z, y), losses.get("cross_entropy")(1000 * z, y),
                       losses.nll("normal", scale=0.7)(z[:, 0], t)])
print("mine:      ", [round(v, 10) for v in mine.tolist()])
print("descentlab:", [round(v, 10) for v in library.tolist()])
""",
    what="the cross-entropy and Gaussian NLL from scratch equal "
    "descentlab's, logits that overflow an unshifted exp included",
)

TRAINING = kit.Prose(
    """
The likelihood view also says what a trained regression model's loss should end at. The
figure trains descentlab's default model on its `regression` dataset, a curve plus Gaussian
noise of standard deviation {{sigma}}, with `Adam` (η = {{lr}}) for {{steps}} steps, once with
the squared error and once with the absolute error. If the network learns the curve, the
residuals are the noise: the squared error's test RMSE should approach σ itself, {{rmse}}
measured, and the absolute error's test loss the mean absolute value of Gaussian noise,
${{f:mean_abs_normal}}$ = {{mae_theory}}, {{mae}} measured. Each loss estimates its own scale of
the same noise.""",
    rmse="the MSE run's test RMSE, against the noise σ",
    mae_theory="σ√(2/π), against the mean |ε| of a million Gaussian draws",
    mae="the L1 run's test loss, against σ√(2/π)",
)


def _training(ctx: Context, n: kit.Numbers) -> Part:
    from descentlab.problems import data

    sigma = float(data.load("regression").noise_std)
    base = kit.run_config("regression", TRAIN_STEPS, "adam", TRAIN_LR, eval_every=50, batch_size=32)
    runs = {f"loss {k}": {**base, "loss": k} for k in ("mse", "l1")}
    fig, res = kit.training_run(ctx, "mle", runs, "regression")
    mse, l1 = res.values()
    draws = np.abs(np.random.default_rng(0).standard_normal(1_000_000)).mean() * sigma
    text = TRAINING.fill(
        n,
        sigma=f"{sigma:g}",
        lr=f"{TRAIN_LR:g}",
        steps=str(TRAIN_STEPS),
        rmse=(kit.final(mse, "test/rmse"), sigma, 0.1),
        mae_theory=(sigma * math.sqrt(2 / math.pi), draws, 0.005),
        mae=(kit.final(l1, "test/loss"), sigma * math.sqrt(2 / math.pi), 0.1),
    )
    table = kit.results_table(
        res,
        "descentlab's engine (train) on the regression dataset, seed 0",
        "train/loss",
        "test/loss",
        "test/rmse",
    )
    return Part(
        "training", "A real training run: each loss finds its noise", [text, fig, table, []]
    )


KEEP = """
What to keep. A loss is a negative log-likelihood: the product of the samples' likelihoods
becomes a sum of logs, and the model's noise decides the terms. Gaussian noise gives the
squared error and the mean, Laplace noise the absolute error and the median, a categorical
model the cross-entropy and the class frequencies; the scale of the noise, which the plain
losses forget, is itself a maximum-likelihood estimate (the root mean squared residual, the
mean absolute deviation). The cross-entropy is the data's entropy plus the KL divergence from
data to model, so minimising it brings the model to the data's distribution, and the
divergence's asymmetry is why maximum-likelihood models cover every mode."""

#: the chapter's exercises (:mod:`descentlab.book.chapters.practice`)
EXERCISES = practice.LIKELIHOOD

CHAPTER = kit.Chapter(
    "deep-likelihood",
    "Losses from likelihood, in depth",
    "Why a loss is a negative log-likelihood: the product of likelihoods becomes a sum, "
    "Gaussian noise gives the squared error, Laplace noise the absolute error, a categorical "
    "model the cross-entropy; entropy and the KL divergence; each computed by descentlab's "
    "losses against torch.distributions, scipy and closed forms, and trained on data.",
    (1, 2, 3, 4, 5, 6, 7, 116, 117, 118, 119, 120, 121, 122),
    (
        N,
        MU,
        SIGMA,
        SLOPE,
        INTERCEPT,
        LINE_NOISE,
        LINE_N,
        LOC_N,
        OUTLIER,
        *COUNTS,
        TRAIN_STEPS,
        TRAIN_LR,
        0,
        1,
        2,
        3,
        11,
        5,
        *P_DIST,
        *Q_DIST,
        40,
        3001,
        FAMILY_N,
    ),
    (_product, _gaussian, _laplace, _categorical, _families, _entropy, _move, _scratch, _training),
    KEEP,
    EXERCISES,
)
