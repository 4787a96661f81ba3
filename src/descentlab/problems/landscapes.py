"""Analytic loss landscapes with known minima, their gradients and a finite-difference check.

A :class:`Landscape` evaluates a batch of points ``(..., d)`` in one call; what the registry
holds and how the gradient check works: docs/data-and-models.md.

Example:
    >>> import torch
    >>> from descentlab.problems import landscapes
    >>> f = landscapes.get("bowl")               # 3(x-2)^2 + (y-2)^2
    >>> x = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    >>> f(x)
    tensor([16.,  0.])
    >>> landscapes.grad(f, x)
    tensor([[-12.,  -4.],
            [  0.,   0.]])

References:
    - Rosenbrock, "An automatic method for finding the greatest or least value of a
      function", The Computer Journal 3 (1960).
    - Himmelblau, *Applied Nonlinear Programming*, McGraw-Hill (1972).
    - Surjanovic & Bingham, Virtual Library of Simulation Experiments, test functions,
      https://www.sfu.ca/~ssurjano/optimization.html
    - Karpathy et al., CS231n notes, "Neural Networks Part 3",
      https://cs231n.github.io/neural-networks-3/
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from descentlab.constraints import POSITIVE, build, check

__all__ = [
    "NAMES",
    "Landscape",
    "Point",
    "double_well",
    "finite_difference_grad",
    "get",
    "grad",
    "gradient_error",
    "hessian",
    "listing",
    "noisy_quadratic",
    "quadratic",
    "rastrigin",
    "rosenbrock",
    "sgd_stationary_loss",
    "value_and_grad",
]

_MINIMUM_KINDS = ("global minimum", "local minimum")
_OTHER_KINDS = ("saddle", "local maximum", "inflection", "degenerate")


@dataclass(frozen=True)
class Point:
    """A known critical point of a landscape.

    Args:
        x: coordinates, length ``d``.
        value: ``f(x)``.
        kind: one of ``"global minimum"``, ``"local minimum"``, ``"saddle"``,
            ``"local maximum"``, ``"inflection"`` (1-D, ``f'' = 0`` with a sign change of
            ``f''``) or ``"degenerate"`` (singular Hessian, not a minimum).
    """

    x: tuple[float, ...]
    value: float
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in _MINIMUM_KINDS + _OTHER_KINDS:
            valid = ", ".join(_MINIMUM_KINDS + _OTHER_KINDS)
            raise ValueError(f"kind must be one of {valid}; got {self.kind!r}")

    @property
    def is_minimum(self) -> bool:
        """Whether this point is a (local or global) minimum."""
        return self.kind in _MINIMUM_KINDS


@dataclass(frozen=True, eq=False)
class Landscape:
    """A differentiable function of ``d`` variables, evaluated batch-wise.

    Calling the landscape on ``x`` of shape ``(..., d)`` returns ``f(x)`` of shape ``(...)``:
    each row of a ``(K, d)`` tensor is an independent point, so ``K`` optimisation runs
    share one call (and one backward pass, since the rows do not interact).

    Args:
        name: registry name.
        formula: the function in matplotlib mathtext (used in figure titles).
        plain: the function in plain text (used in listings and messages).
        description: one or two sentences: what the landscape shows.
        dim: number of variables ``d``.
        fn: the function itself, ``(..., d) -> (...)``.
        points: known critical points (minima first by convention).
        domain: ``d`` intervals ``(low, high)`` that frame the interesting region (plots).
        start: a demonstration starting point.
        lr: a learning rate for plain gradient descent that converges from ``start``.
        noise_std: standard deviation ``sigma`` of the additive Gaussian noise of the
            stochastic gradient (:meth:`sample`); 0 for deterministic landscapes.
        params: the parameters the landscape was built with (e.g. ``kappa``, ``L``, ``mu``).

    Example:
        >>> f = get("himmelblau")
        >>> [p.x for p in f.minima][:1]
        [(3.0, 2.0)]
    """

    name: str
    formula: str
    plain: str
    description: str
    dim: int
    fn: Callable[[Tensor], Tensor]
    points: tuple[Point, ...]
    domain: tuple[tuple[float, float], ...]
    start: tuple[float, ...]
    lr: float
    noise_std: float = 0.0
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"dim must be >= 1, got {self.dim}")
        if len(self.domain) != self.dim:
            raise ValueError(f"domain must have {self.dim} intervals, got {len(self.domain)}")
        if len(self.start) != self.dim:
            raise ValueError(f"start must have {self.dim} coordinates, got {self.start}")
        for p in self.points:
            if len(p.x) != self.dim:
                raise ValueError(f"point {p.x} must have {self.dim} coordinates")
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def __call__(self, x: Tensor) -> Tensor:
        """Evaluate ``f`` on ``x`` of shape ``(..., d)``; returns shape ``(...)``."""
        self.check_input(x)
        return self.fn(x)

    def __repr__(self) -> str:
        return f"Landscape({self.name!r}, dim={self.dim})"

    def check_input(self, x: Tensor) -> None:
        """Raise ValueError unless ``x`` is a floating tensor with last dimension ``d``."""
        if not isinstance(x, Tensor):
            raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(
                f"x must have shape (..., {self.dim}) for landscape {self.name!r}, "
                f"got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}")

    @property
    def minima(self) -> tuple[Point, ...]:
        """The known minima (global and local)."""
        return tuple(p for p in self.points if p.is_minimum)

    @property
    def global_minimum(self) -> Point | None:
        """The first known global minimum, or ``None`` when ``f`` is unbounded below."""
        return next((p for p in self.points if p.kind == "global minimum"), None)

    @property
    def stochastic(self) -> bool:
        """Whether :meth:`sample` adds gradient noise."""
        return self.noise_std > 0

    def sample(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """A stochastic loss whose gradient is the noisy gradient.

        For a deterministic landscape this is ``f(x)``. With ``noise_std = sigma > 0`` it is

        .. math:: \\tilde f(x) = f(x) + \\sigma\\, \\xi^\\top x, \\quad
                  \\xi \\sim \\mathcal N(0, I_d)\\ \\text{fresh per call and per row},

        so that :math:`\\mathbb E[\\tilde f(x)] = f(x)` and
        :math:`\\nabla \\tilde f(x) = \\nabla f(x) + \\sigma \\xi`: an unbiased gradient with
        covariance :math:`\\sigma^2 I` (the situation of a mini-batch gradient, the optimization
        lecture). Differentiate the result with autograd to get the stochastic gradient.

        Args:
            x: points, shape ``(..., d)``.
            generator: random generator for the noise (reproducibility).

        Returns:
            Tensor of shape ``(...)``.
        """
        value = self(x)
        if self.noise_std == 0:
            return value
        xi = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return value + self.noise_std * (xi * x).sum(-1)


# --------------------------------------------------------------------------------------------
# gradients


def _as_float(x: Tensor | Any) -> Tensor:
    x = torch.as_tensor(x)
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def value_and_grad(landscape: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """``f(x)`` and ``∇f(x)`` through autograd, for a batch of points.

    Because the rows of a batch do not interact, the gradient of ``f(x).sum()`` with respect
    to ``x`` is, row by row, the gradient of ``f`` at each point.

    Args:
        landscape: a :class:`Landscape` (or any ``(..., d) -> (...)`` callable).
        x: points of shape ``(..., d)``; integers are converted to the default float dtype.

    Returns:
        ``(values, grads)`` with shapes ``(...)`` and ``(..., d)``, detached.

    Example:
        >>> f = get("cubic")                           # 3x^3 - 2x + 1
        >>> value_and_grad(f, torch.tensor([[1.0]]))   # f'(x) = 9x^2 - 2
        (tensor([2.]), tensor([[7.]]))
    """
    x = _as_float(x).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        y = landscape(x)
        (g,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), g


def grad(landscape: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``∇f(x)`` through autograd; ``x`` of shape ``(..., d)``, result of the same shape.

    Example:
        >>> grad(get("cubic2d"), torch.tensor([1.0, 2.0]))  # (3y^2 + 12x^2, 6xy - 10y)
        tensor([24., -8.])
    """
    return value_and_grad(landscape, x)[1]


def finite_difference_grad(
    landscape: Callable[[Tensor], Tensor], x: Tensor, h: float | None = None
) -> Tensor:
    """Central-difference gradient in float64: the derivative as a limit (the PyTorch losses
    lecture).

    .. math:: \\frac{\\partial f}{\\partial x_i}(x) \\approx
              \\frac{f(x + h_i e_i) - f(x - h_i e_i)}{2 h_i},
              \\qquad h_i = h \\cdot \\max(1, |x_i|)

    The truncation error is :math:`O(h^2 f''')` and the rounding error
    :math:`O(\\epsilon |f| / h)`; ``h = ε^{1/3} ≈ 6e-6`` balances the two in float64, giving
    about 10 correct digits on smooth functions.

    Args:
        landscape: ``(..., d) -> (...)`` callable (it must accept float64 input).
        x: points of shape ``(..., d)``.
        h: base step; default ``float64 eps ** (1/3)``.

    Returns:
        float64 tensor of shape ``(..., d)``.
    """
    if h is None:
        h = torch.finfo(torch.float64).eps ** (1.0 / 3.0)
    if not h > 0:
        raise ValueError(f"h must be > 0, got {h}")
    x = _as_float(x).detach().to(torch.float64)
    d = x.shape[-1]
    out = torch.empty_like(x)
    for i in range(d):
        step = h * x[..., i].abs().clamp(min=1.0)
        xp, xm = x.clone(), x.clone()
        xp[..., i] += step
        xm[..., i] -= step
        # (xp - xm) is the exactly representable step actually taken.
        out[..., i] = (landscape(xp) - landscape(xm)) / (xp[..., i] - xm[..., i])
    return out


def gradient_error(landscape: Callable[[Tensor], Tensor], x: Tensor) -> float:
    """Largest relative disagreement between autograd and central differences (float64).

    .. math:: \\max_{k,i} \\frac{|g^{AD}_{ki} - g^{FD}_{ki}|}{\\max(1, |g^{FD}_{ki}|)}

    Example:
        >>> gradient_error(get("rosenbrock"), torch.tensor([[-1.2, 1.0]])) < 1e-7
        True
    """
    x64 = _as_float(x).detach().to(torch.float64)
    g_ad = grad(landscape, x64)
    g_fd = finite_difference_grad(landscape, x64)
    return float(((g_ad - g_fd).abs() / g_fd.abs().clamp(min=1.0)).max())


def hessian(landscape: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Hessian ``∇²f(x)`` through autograd for a batch of points.

    Args:
        landscape: ``(..., d) -> (...)`` callable.
        x: points of shape ``(K, d)`` or ``(d,)``.

    Returns:
        Tensor of shape ``(K, d, d)`` (or ``(d, d)`` for a single point).
    """
    x = _as_float(x).detach()
    single = x.ndim == 1
    xs = x.reshape(-1, x.shape[-1])
    rows = [torch.autograd.functional.hessian(lambda p: landscape(p), xk) for xk in xs]
    out = torch.stack(rows)
    return out[0] if single else out.reshape(*x.shape, x.shape[-1])


# --------------------------------------------------------------------------------------------
# helpers for defining landscapes


def _c(x: Tensor, i: int) -> Tensor:
    return x[..., i]


def _check_dim(value: int, low: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
        raise ValueError(f"dim must be an integer >= {low}, got {value!r}")


# --------------------------------------------------------------------------------------------
# the derivatives lecture's functions


def parabola() -> Landscape:
    """``x^2 - 4x + 6 = (x-2)^2 + 2``: the derivatives lecture's first descent example."""
    return Landscape(
        name="parabola",
        formula=r"$f(x) = x^2 - 4x + 6$",
        plain="f(x) = x^2 - 4x + 6",
        description="Convex parabola (x-2)^2 + 2 from the derivatives lecture; descent from x0 = 4 "
        "with lr 0.2 converges, 0.01 crawls and 1 bounces between 4 and 0 forever.",
        dim=1,
        fn=lambda x: _c(x, 0) ** 2 - 4 * _c(x, 0) + 6,
        points=(Point((2.0,), 2.0, "global minimum"),),
        domain=((-0.5, 4.5),),
        start=(4.0,),
        lr=0.2,
    )


_XSINX_MIN = 4.913180439434884  # root of tan x = -x in (pi, 2 pi)


def xsinx() -> Landscape:
    """``x sin x``: two local minima, initial-value and learning-rate sensitivity (the derivatives
    lecture)."""
    v = _XSINX_MIN * math.sin(_XSINX_MIN)
    return Landscape(
        name="xsinx",
        formula=r"$f(x) = x \sin x$",
        plain="f(x) = x sin(x)",
        description="Non-convex x sin x from the derivatives lecture: from x0 = 2.5 descent "
        "reaches the minimum near 4.91, from 1.5 the one at 0 (unbounded below as |x| grows).",
        dim=1,
        fn=lambda x: _c(x, 0) * torch.sin(_c(x, 0)),
        points=(
            Point((0.0,), 0.0, "local minimum"),
            Point((_XSINX_MIN,), v, "local minimum"),
            Point((-_XSINX_MIN,), v, "local minimum"),
        ),
        domain=((-1.0, 7.0),),
        start=(2.5,),
        lr=0.25,
    )


def cubic() -> Landscape:
    """``3x^3 - 2x + 1``: the derivatives lecture's derivative example, ``f' = 9x^2 - 2``."""
    r = math.sqrt(2.0) / 3.0
    return Landscape(
        name="cubic",
        formula=r"$f(x) = 3x^3 - 2x + 1$",
        plain="f(x) = 3x^3 - 2x + 1",
        description="Cubic from the derivatives lecture (derivative 9x^2 - 2): local minimum at "
        "sqrt(2)/3, local maximum at -sqrt(2)/3, unbounded below.",
        dim=1,
        fn=lambda x: 3 * _c(x, 0) ** 3 - 2 * _c(x, 0) + 1,
        points=(
            Point((r,), 1 - 4 * math.sqrt(2.0) / 9, "local minimum"),
            Point((-r,), 1 + 4 * math.sqrt(2.0) / 9, "local maximum"),
        ),
        domain=((-1.2, 1.2),),
        start=(1.0,),
        lr=0.05,
    )


def chain_cubic() -> Landscape:
    """``(2x-1)^3``: the chain-rule example, ``f' = 6(2x-1)^2`` (the derivatives lecture)."""
    return Landscape(
        name="chain_cubic",
        formula=r"$f(x) = (2x - 1)^3$",
        plain="f(x) = (2x - 1)^3",
        description="Chain-rule example from the derivatives lecture (derivative 6(2x-1)^2): a "
        "flat inflection point at x = 1/2 and no minimum.",
        dim=1,
        fn=lambda x: (2 * _c(x, 0) - 1) ** 3,
        points=(Point((0.5,), 0.0, "inflection"),),
        domain=((-0.5, 1.5),),
        start=(1.0,),
        lr=0.02,
    )


def bowl() -> Landscape:
    """``3(x-2)^2 + (y-2)^2``: the derivatives lecture's 3-D surface."""
    return Landscape(
        name="bowl",
        formula=r"$f(x, y) = 3(x-2)^2 + (y-2)^2$",
        plain="f(x, y) = 3(x - 2)^2 + (y - 2)^2",
        description="Elliptic bowl from the derivatives lecture (partials 6(x-2), 2(y-2)); minimum "
        "0 at (2, 2), curvature ratio 3.",
        dim=2,
        fn=lambda x: 3 * (_c(x, 0) - 2) ** 2 + (_c(x, 1) - 2) ** 2,
        points=(Point((2.0, 2.0), 0.0, "global minimum"),),
        domain=((-1.0, 5.0), (-1.0, 5.0)),
        start=(0.0, 4.5),
        lr=0.1,
    )


def cubic2d() -> Landscape:
    """``3xy^2 + 4x^3 - 5y^2 + 1``: the derivatives lecture's partial-derivative example."""
    return Landscape(
        name="cubic2d",
        formula=r"$f(x, y) = 3xy^2 + 4x^3 - 5y^2 + 1$",
        plain="f(x, y) = 3xy^2 + 4x^3 - 5y^2 + 1",
        description="Partial-derivative example from the derivatives lecture (f_x = 3y^2 + 12x^2, "
        "f_y = 6xy - 10y): one degenerate critical point at the origin, unbounded below.",
        dim=2,
        fn=lambda x: 3 * _c(x, 0) * _c(x, 1) ** 2 + 4 * _c(x, 0) ** 3 - 5 * _c(x, 1) ** 2 + 1,
        points=(Point((0.0, 0.0), 1.0, "degenerate"),),
        domain=((-1.5, 1.5), (-1.5, 1.5)),
        start=(0.5, 0.5),
        lr=0.01,
    )


def _cubic_roots(a: float) -> list[float]:
    """The three real roots of ``x^3 - 2x + a`` (``|a| < 1.08``), ascending, by Newton."""
    roots = []
    for x in (-2.0, 0.0, 2.0):
        for _ in range(100):
            x -= (x**3 - 2 * x + a) / (3 * x**2 - 2)
        roots.append(x)
    return sorted(roots)


def double_well(tilt: float = 0.3) -> Landscape:
    """``x^4/4 - x^2 + tilt·x``: a shallow local minimum beside a deeper global one.

    With ``tilt = 0.3`` the local minimum sits at x ≈ 1.332 (f ≈ -0.588) behind a barrier at
    x ≈ 0.152 (f ≈ 0.023); the global minimum is at x ≈ -1.484 (f ≈ -1.435). From x0 = 2.5
    plain gradient descent stops in the local minimum, while heavy-ball momentum arrives
    with enough speed to roll over the barrier (the derivatives and momentum lectures: "momentum
    escapes local minima").

    Args:
        tilt: the linear term, 0 < tilt < 1 (0 makes the two wells equally deep).
    """
    check("tilt", tilt, POSITIVE)
    if tilt >= 1.0:
        raise ValueError(f"tilt must be < 1 for two wells, got {tilt}")
    lo, mid, hi = _cubic_roots(tilt)

    def value(x: float) -> float:
        return x**4 / 4 - x**2 + tilt * x

    return Landscape(
        name="double_well",
        formula=rf"$f(x) = x^4/4 - x^2 + {tilt:g}\,x$",
        plain=f"f(x) = x^4/4 - x^2 + {tilt:g} x",
        description="Tilted double well (the derivatives and momentum lectures): a shallow local "
        "minimum near 1.33 behind a low barrier, the global minimum near -1.48. From 2.5 gradient "
        "descent stops in the local minimum; momentum rolls over the barrier.",
        dim=1,
        fn=lambda x: _c(x, 0) ** 4 / 4 - _c(x, 0) ** 2 + tilt * _c(x, 0),
        points=(
            Point((lo,), value(lo), "global minimum"),
            Point((hi,), value(hi), "local minimum"),
            Point((mid,), value(mid), "local maximum"),
        ),
        domain=((-2.3, 2.7),),
        start=(2.5,),
        lr=0.02,
        params={"tilt": tilt},
    )


# --------------------------------------------------------------------------------------------
# the momentum lecture's terrains


def ravine() -> Landscape:
    """A long, narrow valley: ``0.05 x^2 + 5 y^2`` (Hessian diag(0.1, 10), condition 100)."""
    return Landscape(
        name="ravine",
        formula=r"$f(x, y) = 0.05\,x^2 + 5\,y^2$",
        plain="f(x, y) = 0.05 x^2 + 5 y^2",
        description="Ravine terrain (the momentum lecture, after cs231n): steep walls across, a "
        "gentle floor along; plain SGD zig-zags across and crawls along, momentum and adaptive "
        "rates do not. Condition number 100.",
        dim=2,
        fn=lambda x: 0.05 * _c(x, 0) ** 2 + 5 * _c(x, 1) ** 2,
        points=(Point((0.0, 0.0), 0.0, "global minimum"),),
        domain=((-11.0, 2.0), (-1.5, 1.5)),
        start=(-10.0, 1.0),
        lr=0.18,
        params={"L": 10.0, "mu": 0.1, "kappa": 100.0},
    )


_SADDLE_MIN_Y = math.sqrt(2.0)


def saddle() -> Landscape:
    """A saddle between two minima: ``x^2 - y^2 + y^4/4``."""
    return Landscape(
        name="saddle",
        formula=r"$f(x, y) = x^2 - y^2 + y^4/4$",
        plain="f(x, y) = x^2 - y^2 + y^4 / 4",
        description="Saddle terrain (the momentum lecture): a saddle point at the origin between "
        "two minima at (0, ±sqrt 2). From a start on the ridge y ~ 0, SGD lingers near the "
        "saddle while adaptive methods escape fast.",
        dim=2,
        fn=lambda x: _c(x, 0) ** 2 - _c(x, 1) ** 2 + _c(x, 1) ** 4 / 4,
        points=(
            Point((0.0, _SADDLE_MIN_Y), -1.0, "global minimum"),
            Point((0.0, -_SADDLE_MIN_Y), -1.0, "global minimum"),
            Point((0.0, 0.0), 0.0, "saddle"),
        ),
        domain=((-2.0, 2.0), (-2.2, 2.2)),
        start=(-1.8, 1e-3),
        lr=0.05,
    )


# --------------------------------------------------------------------------------------------
# classic test functions


def rosenbrock(dim: int = 2, a: float = 1.0, b: float = 100.0) -> Landscape:
    """Rosenbrock's banana valley, ``Σ_i b (x_{i+1} - x_i^2)^2 + (a - x_i)^2``.

    Args:
        dim: number of variables (>= 2).
        a, b: the usual constants (minimum at ``(a, a^2, a^4, ...)``, value 0).
    """
    _check_dim(dim, 2)
    check("b", b, POSITIVE)
    if not math.isfinite(a):
        raise ValueError(f"a must be finite, got {a}")

    def fn(x: Tensor) -> Tensor:
        if dim == 2:  # the common case without a reduction over a length-1 axis (faster)
            u, v = x[..., 0], x[..., 1]
            return b * (v - u * u) ** 2 + (a - u) ** 2
        head, tail = x[..., :-1], x[..., 1:]
        return (b * (tail - head**2) ** 2 + (a - head) ** 2).sum(-1)

    # The minimum of the chained form: x_1 = a and x_{i+1} = x_i^2.
    xmin = [a]
    for _ in range(dim - 1):
        xmin.append(xmin[-1] ** 2)
    return Landscape(
        name="rosenbrock",
        formula=r"$f(x, y) = (1 - x)^2 + 100\,(y - x^2)^2$"
        if (dim, a, b) == (2, 1.0, 100.0)
        else rf"Rosenbrock $d={dim}, a={a:g}, b={b:g}$",
        plain="f(x, y) = (1 - x)^2 + 100 (y - x^2)^2"
        if (dim, a, b) == (2, 1.0, 100.0)
        else f"f(x) = sum_i {b:g} (x_(i+1) - x_i^2)^2 + ({a:g} - x_i)^2, d = {dim}",
        description="Rosenbrock's banana: a curved, flat-bottomed valley; easy to find, hard "
        "to follow to the minimum at (1, 1).",
        dim=dim,
        fn=fn,
        points=(Point(tuple(xmin), 0.0, "global minimum"),),
        domain=((-2.0, 2.0), (-1.0, 3.0)) + ((-2.0, 2.0),) * (dim - 2),
        start=(-1.2, 1.0) + (1.0,) * (dim - 2),
        lr=1e-3,
        params={"a": a, "b": b},
    )


def beale() -> Landscape:
    """Beale's function; minimum 0 at (3, 0.5), a saddle at (0, 1)."""

    def fn(x: Tensor) -> Tensor:
        u, v = _c(x, 0), _c(x, 1)
        return (1.5 - u + u * v) ** 2 + (2.25 - u + u * v**2) ** 2 + (2.625 - u + u * v**3) ** 2

    return Landscape(
        name="beale",
        formula=r"$f = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2$",
        plain="f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2",
        description="Beale's function: flat plateaus and sharp ridges; minimum 0 at (3, 0.5).",
        dim=2,
        fn=fn,
        points=(
            Point((3.0, 0.5), 0.0, "global minimum"),
            Point((0.0, 1.0), 14.203125, "saddle"),
        ),
        domain=((-4.5, 4.5), (-4.5, 4.5)),
        start=(1.0, 1.5),
        lr=1e-3,
    )


def rastrigin(dim: int = 2, A: float = 10.0) -> Landscape:
    """Rastrigin's function ``A d + Σ (x_i^2 - A cos 2π x_i)``: a lattice of local minima.

    Args:
        dim: number of variables.
        A: amplitude of the cosine bumps.
    """
    _check_dim(dim, 1)
    check("A", A, POSITIVE)
    return Landscape(
        name="rastrigin",
        formula=r"$f = 10d + \sum_i \left(x_i^2 - 10\cos 2\pi x_i\right)$"
        if A == 10.0
        else rf"Rastrigin $A={A:g}$",
        plain=f"f(x) = {A:g} d + sum_i (x_i^2 - {A:g} cos(2 pi x_i)), d = {dim}",
        description="Rastrigin's function: a bowl covered by a lattice of local minima near "
        "integer points; global minimum 0 at the origin.",
        dim=dim,
        fn=lambda x: A * dim + (x**2 - A * torch.cos(2 * math.pi * x)).sum(-1),
        points=(Point((0.0,) * dim, 0.0, "global minimum"),),
        domain=((-5.12, 5.12),) * dim,
        start=(2.2,) * dim,
        lr=1e-3,
        params={"A": A},
    )


_HIMMELBLAU_MINIMA = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.2831859912861696),
    (3.5844283403304917, -1.8481265269644036),
)


def himmelblau() -> Landscape:
    """Himmelblau's function ``(x^2 + y - 11)^2 + (x + y^2 - 7)^2``: four equal minima."""
    return Landscape(
        name="himmelblau",
        formula=r"$f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2$",
        plain="f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2",
        description="Himmelblau's function: four global minima (value 0) and a local maximum "
        "near (-0.27, -0.92); which minimum a run reaches depends on where it starts.",
        dim=2,
        fn=lambda x: (_c(x, 0) ** 2 + _c(x, 1) - 11) ** 2 + (_c(x, 0) + _c(x, 1) ** 2 - 7) ** 2,
        points=(
            *(Point(m, 0.0, "global minimum") for m in _HIMMELBLAU_MINIMA),
            Point((-0.2708445906673476, -0.9230385564799815), 181.6165215225827, "local maximum"),
        ),
        domain=((-5.0, 5.0), (-5.0, 5.0)),
        start=(0.0, 0.0),
        lr=0.01,
    )


# --------------------------------------------------------------------------------------------
# quadratics with known theory


def _orthogonal(dim: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def quadratic(
    kappa: float = 10.0, dim: int = 2, L: float = 1.0, rotate: bool = False, seed: int = 0
) -> Landscape:
    """``½ xᵀHx`` with eigenvalues spread geometrically from ``μ = L/κ`` to ``L``.

    The condition number ``κ = L/μ`` sets the speed of gradient descent: with step
    ``2/(L+μ)`` the error contracts by exactly ``(κ-1)/(κ+1)`` per step along the extreme
    eigenvectors (Nesterov, *Introductory Lectures on Convex Optimization*, Thm 2.1.15).

    Args:
        kappa: condition number, >= 1 (must be 1 when ``dim == 1``).
        dim: number of variables.
        L: largest eigenvalue (the gradient's Lipschitz constant).
        rotate: rotate the eigenbasis by a fixed random orthogonal matrix (seeded), so the
            valley is not axis-aligned (diagonal preconditioners then lose their edge).
        seed: seed of the rotation.

    Returns:
        A landscape with ``params`` ``{"kappa", "L", "mu", "eigenvalues", "H"}``.
    """
    _check_dim(dim, 1)
    check("L", L, POSITIVE)
    if not (isinstance(kappa, int | float) and math.isfinite(kappa) and kappa >= 1):
        raise ValueError(f"kappa must be a finite number >= 1, got {kappa!r}")
    if dim == 1 and kappa != 1:
        raise ValueError(f"kappa must be 1 when dim == 1, got {kappa}")
    mu = L / kappa
    if dim == 1:
        eig = torch.tensor([L], dtype=torch.float64)
    else:
        eig = torch.logspace(math.log10(mu), math.log10(L), dim, dtype=torch.float64)
    q = _orthogonal(dim, seed) if rotate else torch.eye(dim, dtype=torch.float64)
    H = (q * eig) @ q.T
    H = 0.5 * (H + H.T)

    def fn(x: Tensor) -> Tensor:
        h = H.to(dtype=x.dtype, device=x.device)
        return 0.5 * ((x @ h) * x).sum(-1)

    return Landscape(
        name="quadratic",
        formula=rf"$f(x) = \frac{{1}}{{2}} x^\top H x,\ \kappa = {kappa:g}$",
        plain=f"f(x) = x^T H x / 2, eigenvalues of H in [{mu:g}, {L:g}], kappa = {kappa:g}",
        description="Quadratic bowl with a chosen condition number kappa = L/mu "
        "(eigenvalues geometric in [L/kappa, L]); minimum 0 at the origin.",
        dim=dim,
        fn=fn,
        points=(Point((0.0,) * dim, 0.0, "global minimum"),),
        domain=((-1.0, 1.0),) * dim,
        start=(1.0,) * dim,
        lr=2.0 / (L + mu),
        params={"kappa": float(kappa), "L": L, "mu": mu, "eigenvalues": eig, "H": H},
    )


def noisy_quadratic(h: float = 1.0, sigma: float = 1.0, dim: int = 2) -> Landscape:
    """``½ h ‖x‖²`` with a stochastic gradient ``h x + σ ξ``, ``ξ ~ N(0, I)`` (the optimization
    lecture).

    The exact loss is ``f(x) = ½ h ‖x‖²``; :meth:`Landscape.sample` returns a stochastic loss
    whose autograd gradient carries the noise, of variance ``σ²`` per coordinate. Constant-lr
    SGD therefore never converges: it hovers at the noise floor of
    :func:`sgd_stationary_loss`, while a Robbins-Monro schedule such as ``η/t`` keeps
    descending.

    Args:
        h: curvature (the same for every coordinate), > 0.
        sigma: standard deviation of the gradient noise, > 0.
        dim: number of variables.
    """
    check("h", h, POSITIVE)
    check("sigma", sigma, POSITIVE)
    _check_dim(dim, 1)
    return Landscape(
        name="noisy_quadratic",
        formula=rf"$f(x) = \frac{{{h:g}}}{{2}}\|x\|^2,\ g = {h:g}x + {sigma:g}\,\xi$",
        plain=f"f(x) = {h:g} |x|^2 / 2, stochastic gradient {h:g} x + {sigma:g} xi, xi ~ N(0, I)",
        description="Quadratic with noisy gradients (variance sigma^2 per coordinate): "
        "constant-lr SGD stalls at a noise floor growing with lr, while lr ~ 1/t keeps "
        "descending (the optimization lecture).",
        dim=dim,
        fn=lambda x: 0.5 * h * (x**2).sum(-1),
        points=(Point((0.0,) * dim, 0.0, "global minimum"),),
        domain=((-2.0, 2.0),) * dim,
        start=(2.0,) * dim,
        lr=0.1,
        noise_std=sigma,
        params={"h": h, "sigma": sigma},
    )


def sgd_stationary_loss(lr: float, h: float = 1.0, sigma: float = 1.0, dim: int = 1) -> float:
    """Stationary expected loss of constant-lr SGD on the noisy quadratic.

    The floor grows linearly with the learning rate; the derivation is in
    docs/data-and-models.md.

    Args:
        lr: learning rate ``η``, with ``0 < ηh < 2``.
        h: curvature.
        sigma: gradient-noise standard deviation.
        dim: number of coordinates.

    Returns:
        ``d η σ² / (2 (2 - η h))``.

    Example:
        >>> round(sgd_stationary_loss(0.1, h=1.0, sigma=1.0, dim=2), 6)
        0.052632
    """
    check("lr", lr, POSITIVE)
    check("h", h, POSITIVE)
    check("sigma", sigma, POSITIVE)
    _check_dim(dim, 1)
    if lr * h >= 2:
        raise ValueError(f"lr * h must be < 2 for a stationary distribution, got {lr * h}")
    return dim * lr * sigma**2 / (2 * (2 - lr * h))


# --------------------------------------------------------------------------------------------
# registry

_FACTORIES = (
    parabola,
    xsinx,
    cubic,
    chain_cubic,
    bowl,
    cubic2d,
    double_well,
    ravine,
    saddle,
    rosenbrock,
    beale,
    rastrigin,
    himmelblau,
    quadratic,
    noisy_quadratic,
)
_REGISTRY: dict[str, Callable[..., Landscape]] = {f.__name__: f for f in _FACTORIES}

NAMES: tuple[str, ...] = tuple(_REGISTRY)


def get(name: str, **params: Any) -> Landscape:
    """Build a registered landscape by name (case-insensitive).

    Args:
        name: one of :data:`NAMES`.
        **params: parameters of the factory (e.g. ``kappa=100`` for ``"quadratic"``).

    Raises:
        KeyError: unknown name (the message lists the valid names).
        ValueError: a parameter the factory does not take, or a bad value.

    Example:
        >>> get("quadratic", kappa=100.0).params["mu"]
        0.01
    """
    key = str(name).lower().replace("-", "_")
    bad = f"bad parameters {params} for landscape {key!r}"
    return build(_REGISTRY, key, f"landscape {name!r}", bad, **params)


def _fmt_point(p: Point) -> str:
    coords = ", ".join(f"{c:.4g}" for c in p.x)
    return f"({coords}) -> {p.value:.4g}"


def listing(read: Callable[[Landscape], list[str]] | None = None) -> str:
    """A human-readable table of every registered landscape (``descentlab landscape --list``);
    ``read`` gives what a description says that its landscape does not compute
    (:func:`descentlab.problems.described.description_mismatches`), shown with a ✘."""
    lines = []
    for name in NAMES:
        f = get(name)
        mins = [p for p in f.points if p.is_minimum]
        if mins:
            label = "minima" if len(mins) > 1 else "minimum"
            where = f"{mins[0].kind if len(mins) == 1 else label}: " + "; ".join(
                _fmt_point(p) for p in mins
            )
        else:
            where = "no minimum (" + "; ".join(f"{p.kind} {_fmt_point(p)}" for p in f.points) + ")"
        lines.append(f"{name:<16} d={f.dim}  {f.plain}")
        pad = " " * 17
        wrong = read(f) if read is not None else []
        said = f.description + (" ✘ computed otherwise: " + "; ".join(wrong) if wrong else "")
        for text in (said, where):
            lines.extend(textwrap.wrap(text, 94, initial_indent=pad, subsequent_indent=pad))
    return "\n".join(lines)
