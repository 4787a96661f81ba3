"""Monitored optimizers: an optimizer spec whose :class:`~descentlab.optim.Monitor` records
per-step statistics of the run it trains.

:class:`MonitoredOptimizer` wraps a run config's optimizer (a name or an update rule) so that
the optimizer built for the run records, every ``every`` steps, the update-to-parameter ratio
and the gradient, update and parameter norms of its first param group. A run alone records
through the optimizer it steps; in a vectorized group (:mod:`descentlab.engine.vectorized`) the
run's own optimizer is never stepped, and the group's stacked optimizer computes the same
statistics for this run's slice and appends them to that optimizer's monitor -- the same
records at the same steps, equal up to float rounding. Either way :meth:`MonitoredOptimizer.rows`
gives them as store rows afterwards.

Example:
    >>> import torch
    >>> w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    >>> factory = MonitoredOptimizer("sgd", every=1)
    >>> opt = factory([w], lr=0.1)
    >>> (w**2).sum().backward()
    >>> opt.step()
    >>> [(step, name, round(v, 4)) for step, _, name, v in factory.rows()]
    [(1, 'update_ratio', 0.2), (1, 'grad_norm', 10.0), (1, 'update_norm', 1.0), (1, 'param_norm', 5.0)]
"""  # noqa: E501

from __future__ import annotations

from typing import Any

__all__ = ["MONITOR_KEYS", "MonitoredOptimizer", "base_optimizer"]

#: Monitor statistics stored per monitored run (as ``monitor/<name>`` metrics).
MONITOR_KEYS: tuple[str, ...] = ("update_ratio", "grad_norm", "update_norm", "param_norm")


class MonitoredOptimizer:
    """An optimizer factory ``f(params, **hyper)`` that attaches a :class:`~descentlab.optim.
    Monitor` recording every ``every`` steps.

    Args:
        optimizer: a name from ``descentlab.optim.NAMES``, an update rule, or a
            ``torch.optim.Optimizer`` class (not monitored: torch's optimizers have no
            monitor).
        every: record every this many steps.

    Its ``repr`` is stable (``monitored(adam, every=50)``), so a run config holding it is
    found again in the store.
    """

    def __init__(self, optimizer: Any, every: int) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.optimizer = optimizer
        self.every = every
        self.monitor: Any = None

    def __call__(self, params: Any, **hyper: Any) -> Any:
        from descentlab import optim
        from descentlab.engine.optimizing import make_optimizer  # the engine's one way to build

        opt = make_optimizer(self.optimizer, params, hyper)
        self.monitor = None
        if isinstance(opt, optim.Optimizer):
            self.monitor = opt.attach_monitor(optim.Monitor(every=self.every))
        return opt

    @property
    def can_monitor(self) -> bool:
        """Whether the wrapped optimizer is descentlab's (a name or an update rule)."""
        from descentlab import optim

        return isinstance(self.optimizer, str | optim.Rule)

    def rows(self) -> list[tuple[int, str, str, float]]:
        """The records as store rows ``(step, "monitor", name, value)`` (group 0)."""
        if self.monitor is None:
            return []
        out = []
        for rec in self.monitor.records:
            if rec["group"] != 0:
                continue
            out.extend((int(rec["step"]), "monitor", k, float(rec[k])) for k in MONITOR_KEYS)
        return out

    def __repr__(self) -> str:
        inner = self.optimizer
        if isinstance(inner, type):
            inner = f"{inner.__module__}.{inner.__qualname__}"
        return f"monitored({inner}, every={self.every})"

    def __getstate__(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer, "every": self.every, "monitor": None}


def base_optimizer(spec: Any) -> Any:
    """The optimizer a config's ``optimizer`` field stands for: ``spec`` itself, or the one a
    :class:`MonitoredOptimizer` that can monitor wraps (a name or an update rule; the
    vectorized engine steps that one and records the monitor's statistics itself).

    Example:
        >>> base_optimizer(MonitoredOptimizer("adam", 10)), base_optimizer("sgd")
        ('adam', 'sgd')
    """
    if isinstance(spec, MonitoredOptimizer) and spec.can_monitor:
        return spec.optimizer
    return spec
