r"""Schedules: pure ``step -> value`` functions, loss-driven rules, and a `Scheduler` that drives
any hyperparameter of any torch optimizer.

Quick start::

    import torch
    from descentlab import schedules as S

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    sched = S.Scheduler(opt, {
        "lr": S.warmup(S.cosine(T_max=900), steps=100),          # relative to lr=0.1
        "momentum": S.linear(0.5, 0.99, total_iters=500, base=1.0),  # absolute
    })
    for batch in loader:
        ...; opt.step(); sched.step()

Relative and absolute values, which lecture uses which schedule, and how they match torch:
docs/schedules.md.
"""

# The package re-exports every public name of its modules (each module's __all__).
from descentlab.schedules import base, loss_driven, scheduler, torchlike
from descentlab.schedules.base import *  # noqa: F403
from descentlab.schedules.loss_driven import *  # noqa: F403
from descentlab.schedules.scheduler import *  # noqa: F403
from descentlab.schedules.torchlike import *  # noqa: F403

__all__ = sorted(
    {
        *base.__all__,
        *loss_driven.__all__,
        *scheduler.__all__,
        *torchlike.__all__,
    }
)
