r"""L-BFGS (Nocedal & Wright, Alg. 7.4): rule :class:`scale_by_lbfgs` (the search direction
from the curvature history) and the closure-driven optimizer :class:`LBFGS` (torch's loop and
line search). Not registered: a step needs a closure.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.optim.lbfgs import _strong_wolfe  # torch's line search: torch's iterates

from .base import Rule, arguments, chain, check_bool
from .compiled import closure_step
from .hyper import NOT_HYPER, as_one
from .hyperspec import Choice, Integer, Real, declare
from .optimizer import Optimizer
from .torchapi import TORCH_FLAGS, Named, Params
from .transforms import scale_by_lr

__all__ = ["LBFGS", "scale_by_lbfgs"]


class scale_by_lbfgs(Rule):
    r"""The L-BFGS search direction (Nocedal & Wright, *Numerical Optimization*, Alg. 7.4)
    from the last ``history_size`` curvature pairs, kept as state in torch's layout.

    With :math:`s_k = x_{k+1}-x_k` (``old_stps``), :math:`y_k = g_{k+1}-g_k`
    (``old_dirs``) and :math:`\rho_k = 1/y_k^\top s_k` (``ro``; a pair is kept only when
    :math:`y^\top s > 10^{-10}`), the two-loop recursion computes
    :math:`d = -H_k g` where :math:`H_k` is the L-BFGS inverse-Hessian approximation seeded
    with :math:`H_0 = \frac{s^\top y}{y^\top y} I` (``H_diag``). The first direction is
    :math:`-g`.

    L-BFGS steps along :math:`d` several times per ``step`` and re-evaluates the loss in
    between, so it is driven by :class:`~descentlab.optim.LBFGS` (which owns the closure
    loop and the line search) through :meth:`direction`; it takes one parameter group over
    all parameters flattened into one vector, as torch's does.

    Args:
        max_iter: iterations per ``step`` (>= 1).
        max_eval: loss evaluations per ``step`` (>= 1; None: ``max_iter * 5 // 4``).
        tolerance_grad: stop when the largest gradient entry is at most this (-inf: never).
        tolerance_change: stop when the step or the loss change is at most this (-inf:
            never).
        history_size: the number of curvature pairs kept (>= 1).
        line_search_fn: None (fixed step ``lr``) or ``"strong_wolfe"``.
    """

    name = "scale_by_lbfgs"
    elementwise = False

    def __init__(
        self,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        args = arguments(locals())
        super().__init__(
            **{**args, "max_eval": max_iter * 5 // 4 if max_eval is None else max_eval}
        )

    checks = declare(
        max_iter=Integer(1),
        max_eval=Integer(1),
        history_size=Integer(1),
        # any real number, as torch takes (a negative one, -inf, never stops on it)
        tolerance_grad=Real(-math.inf, scalar=True),
        tolerance_change=Real(-math.inf, scalar=True),
        line_search_fn=Choice(("strong_wolfe",), none=True),
    )

    def direction(self, state: dict[str, Any], flat_grad: Tensor, history_size: int) -> Tensor:
        """The next search direction; updates the history in ``state`` (torch's keys:
        ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``, ``H_diag``, ``al``,
        ``prev_flat_grad``) with the pair of the last step, and the state's ``n_iter``
        (already counted for this iteration) tells the first iteration."""
        if state["n_iter"] == 1:
            d = flat_grad.neg()
            state.update(old_dirs=[], old_stps=[], ro=[], H_diag=1)
        else:
            y = flat_grad.sub(state["prev_flat_grad"])
            s = state["d"].mul(state["t"])
            ys = y.dot(s)
            dirs, stps, ro = state["old_dirs"], state["old_stps"], state["ro"]
            if ys > 1e-10:
                if len(dirs) == history_size:
                    del dirs[0], stps[0], ro[0]
                dirs.append(y)
                stps.append(s)
                ro.append(1.0 / ys)
                state["H_diag"] = ys / y.dot(y)
            al = state.get("al")
            if al is None or len(al) < history_size:
                al = state["al"] = [None] * history_size
            q = flat_grad.neg()
            for i in range(len(dirs) - 1, -1, -1):
                al[i] = stps[i].dot(q) * ro[i]
                q.add_(dirs[i], alpha=-al[i])
            d = r = torch.mul(q, state["H_diag"])
            for i in range(len(dirs)):
                beta = dirs[i].dot(r) * ro[i]
                r.add_(stps[i], alpha=al[i] - beta)
        prev = state.get("prev_flat_grad")
        if prev is None or prev.shape != flat_grad.shape:
            state["prev_flat_grad"] = flat_grad.clone(memory_format=torch.contiguous_format)
        else:
            prev.copy_(flat_grad)
        state["d"] = d
        return d

    def update(self, grads, state, params, hyper):
        raise ValueError(
            "scale_by_lbfgs evaluates the loss several times per step: use it through "
            "descentlab.optim.LBFGS and step(closure), not in a chain"
        )


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class LBFGS(Named):
    r"""L-BFGS (torch's ``LBFGS``): up to ``max_iter`` quasi-Newton iterations per
    ``step(closure)``, each along the direction of :class:`~descentlab.optim.scale_by_lbfgs`
    (the two-loop recursion over the last ``history_size`` curvature pairs), with a fixed
    step ``lr`` (the first one scaled to :math:`\min(1, 1/\lVert g\rVert_1)\,\text{lr}`) or
    torch's strong-Wolfe line search (``line_search_fn="strong_wolfe"``; torch's own routine
    is called, so the iterates are torch's).

    Like torch's, it takes one parameter group, flattens all parameters into one vector,
    needs a closure that re-evaluates the loss (with ``zero_grad`` and ``backward``), and
    keeps its history as the state of the first parameter under torch's keys, so state
    dicts load both ways. It stops early when the largest gradient entry is at most
    ``tolerance_grad`` or the step or the loss change is at most ``tolerance_change``.
    ``fused`` is accepted for the registry's uniform signature; only ``None``/``False``
    (the one, eager, form) are valid.

    Example:
        >>> import torch
        >>> from descentlab.optim import LBFGS
        >>> w = torch.nn.Parameter(torch.tensor([3.0, -1.0], dtype=torch.float64))
        >>> opt = LBFGS([w], lr=1, max_iter=20, line_search_fn="strong_wolfe")
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = ((w - 1) ** 2).sum()
        ...     loss.backward()
        ...     return loss
        >>> _ = opt.step(closure)
        >>> w.detach()
        tensor([1., 1.], dtype=torch.float64)
    """

    # fmt: off
    def __init__(self, params: Params, lr: float = 1, max_iter: int = 20,
                 max_eval: int | None = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None, *, fused: bool | None = None) -> None:
    # fmt: on
        if fused:
            raise ValueError(
                "LBFGS(fused=True): scale_by_lbfgs has no fused form (it is not elementwise)"
            )
        if fused is not None:
            check_bool("fused", fused)
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError(f"LBFGS: Tensor lr must be 1-element, got {lr.numel()} elements")
        rule = chain(scale_by_lbfgs(), scale_by_lr(1))
        hyper = dict(
            lr=lr,
            max_iter=max_iter,
            max_eval=max_iter * 5 // 4 if max_eval is None and _int(max_iter) else max_eval,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            history_size=history_size,
            line_search_fn=line_search_fn,
        )
        self._lbfgs_rule = rule.rules[0]
        Optimizer.__init__(self, params, rule, fused=False, **hyper)
        if len(self.param_groups) != 1:
            raise ValueError(
                "LBFGS takes one parameter group (it flattens all parameters into one "
                f"vector, as torch's), got {len(self.param_groups)}"
            )
        self._params = self.param_groups[0]["params"]

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict of this optimizer or of ``torch.optim.LBFGS`` (torch's keys;
        torch's implementation flags are dropped, missing hyperparameters defaulted)."""
        groups = []
        for group in state_dict["param_groups"]:
            g = {k: v for k, v in group.items() if k not in TORCH_FLAGS}
            for k, v in self.defaults.items():
                g.setdefault(k, v)
            g.setdefault("step", 0)
            groups.append(g)
        torch.optim.Optimizer.load_state_dict(self, {**state_dict, "param_groups": groups})
        self._params = self.param_groups[0]["params"]

    def _flat_grad(self) -> Tensor:
        views = []
        for p in self._params:
            g = p.grad
            if g is None:
                view = p.new_zeros(p.numel())
            else:
                if g.is_sparse:
                    g = g.to_dense()
                view = g.reshape(-1)
            views.append(torch.view_as_real(view).view(-1) if view.is_complex() else view)
        return torch.cat(views, 0)

    def _move(self, t: Any, d: Tensor) -> None:
        """p += t * d, d cut into the parameters' shapes (complex as pairs of reals)."""
        offset = 0
        for p in self._params:
            real = torch.view_as_real(p) if p.is_complex() else p
            n = real.numel()
            real.add_(d[offset : offset + n].view_as(real), alpha=t)
            offset += n

    def _evaluate_at(self, closure: Any, x: list[Tensor], t: Any, d: Tensor) -> tuple:
        """Loss and flat gradient at ``x + t d`` (the line search's probe); the parameters
        are put back to ``x`` afterwards."""
        self._move(t, d)
        loss = float(closure())
        flat = self._flat_grad()
        for p, saved in zip(self._params, x, strict=True):
            p.copy_(saved)
        return loss, flat

    @torch.no_grad()
    @closure_step(
        "LBFGS.step needs a closure that re-evaluates the loss (zero_grad, forward, backward, "
        "return the loss), got closure=None"
    )
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        """Run up to ``max_iter`` iterations; returns the loss before the first one.

        Args:
            closure: re-evaluates the model and returns the loss (required).
        """
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        self._validate(0, {k: as_one(v) for k, v in group.items() if k not in NOT_HYPER})
        lr = float(group["lr"])
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        history = group["history_size"]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        loss = float(orig_loss)
        evals = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if flat_grad.abs().max() <= tol_grad:
            return orig_loss

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            d = self._lbfgs_rule.direction(state, flat_grad, history)
            prev_loss = loss
            t = min(1.0, 1.0 / flat_grad.abs().sum()) * lr if state["n_iter"] == 1 else lr
            state["t"] = t
            gtd = flat_grad.dot(d)
            if gtd > -tol_change:  # not a descent direction
                break

            ls_evals = 0
            if group["line_search_fn"] is not None:
                x = [p.clone(memory_format=torch.contiguous_format) for p in self._params]

                def probe(x, t, d):
                    return self._evaluate_at(closure, x, t, d)

                loss, flat_grad, t, ls_evals = _strong_wolfe(probe, x, t, d, loss, flat_grad, gtd)
                state["t"] = t
                self._move(t, d)
                converged = flat_grad.abs().max() <= tol_grad
            else:
                self._move(t, d)
                converged = False
                if n_iter != max_iter:
                    loss = float(closure())
                    flat_grad = self._flat_grad()
                    converged = flat_grad.abs().max() <= tol_grad
                    ls_evals = 1
            evals += ls_evals
            state["func_evals"] += ls_evals

            if (
                n_iter == max_iter
                or evals >= max_eval
                or converged
                or d.mul(t).abs().max() <= tol_change
                or abs(loss - prev_loss) < tol_change
            ):
                break
        state["prev_loss"] = prev_loss
        group["step"] = int(group.get("step", 0)) + 1
        return orig_loss
