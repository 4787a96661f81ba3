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

Which lecture uses which (``shared/seeds``):

===========================================  ==============================================
the optimization lecture (torch's list of    `lambda_schedule` (LambdaLR), `multiplicative`,
LR schedulers)                               `step`, `multistep`, `constant_factor`
                                             (ConstantLR), `linear`, `exponential`,
                                             `polynomial`, `cosine` (popular in competitions)
the optimization lecture (Robbins-Monro,     `inverse_time_decay` (eta/t is k = 1/t0),
SGD convergence)                             `robbins_monro`
the momentum lecture (learning-rate decay)   `step` (step decay), `exponential`
                                             (a0 e^{-kt} is gamma = e^{-k}),
                                             `inverse_time_decay` (a0 / (1 + kt))
the momentum lecture (momentum 0.5 -> 0.99   `linear(0.5, 0.99, n, base=1.0)` on "momentum"
over epochs)
the gradient-descent lecture (loss-driven    `bold_driver`, `reduce_on_plateau`
lr adaptation)
the lectures' own forms                      `descentlab.book.decays`: `step_decay`,
                                             `exp_decay`, `inverse_time`, `eta_over_t`
torch's others                               `cosine_restarts`, `one_cycle`,
                                             `one_cycle_momentum`, `sequence` (SequentialLR)
===========================================  ==============================================

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
