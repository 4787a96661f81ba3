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

*Relative or absolute.* A schedule with ``base=None`` scales the value the param group had when
the `Scheduler` was built (torch's ``initial_lr`` semantics, so torch's schedulers are
reproduced exactly, per group); one with a base of its own gives absolute values. Called on its
own, ``schedule(step)`` uses its base, or 1.0 (the factor). Step 0 is the first update.
A schedule placed directly in a param group (descentlab's optimizers accept
``optim.SGD(params, lr=S.cosine(100, base=0.1))``) is called as ``schedule(step)``: give it its
base there, or it yields the factor.

Which lecture uses which schedule: docs/schedules.md.

Every schedule torch also has matches ``torch.optim.lr_scheduler`` to 1e-12 relative over 1000
steps (tests drive torch's schedulers on a ``torch.optim.SGD`` as the reference). Torch steps
most schedulers recursively; see :mod:`descentlab.schedules.torchlike` for how the closed
forms used here relate (and ``cosine(..., form="recursive")`` for torch's arithmetic).
"""

# The package re-exports every public name of its modules (each module's __all__).
from descentlab.schedules import base, convergence, loss_driven, scheduler, torchlike
from descentlab.schedules.base import *  # noqa: F403
from descentlab.schedules.convergence import *  # noqa: F403
from descentlab.schedules.loss_driven import *  # noqa: F403
from descentlab.schedules.scheduler import *  # noqa: F403
from descentlab.schedules.torchlike import *  # noqa: F403

__all__ = sorted(
    {
        *base.__all__,
        *convergence.__all__,
        *loss_driven.__all__,
        *scheduler.__all__,
        *torchlike.__all__,
    }
)
