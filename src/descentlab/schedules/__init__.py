r"""Schedules: pure ``step -> value`` functions, loss-driven rules, and a `Scheduler` that drives
any hyperparameter of any torch optimizer.

Quick start::

    import torch
    from descentlab import schedules as S

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    sched = S.Scheduler(opt, {
        "lr": S.warmup(S.cosine(T_max=900), steps=100),          # relative to lr=0.1
        "momentum": S.linear(0.5, 0.99, total_iters=500, base=1.0),  # absolute (seed 003)
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

========================================  ==============================================
seed 000 (torch's list of LR schedulers)   `lambda_schedule` (LambdaLR), `multiplicative`,
                                           `step`, `multistep`, `constant_factor`
                                           (ConstantLR), `linear`, `exponential`,
                                           `polynomial`, `cosine` (popular in competitions)
seed 000 (Robbins-Monro, SGD convergence)  `eta_over_t`, `robbins_monro`
seed 003 (cs231n learning-rate decay)      `step_decay`, `exp_decay` (a0 e^{-kt}),
                                           `inverse_time` (a0 / (1 + kt))
seed 003 (momentum 0.5 -> 0.99 over        `linear(0.5, 0.99, n, base=1.0)` on "momentum"
epochs)
seed 001 (loss-driven lr adaptation)       `bold_driver`, `reduce_on_plateau`
torch's others                             `cosine_restarts`, `one_cycle`,
                                           `one_cycle_momentum`, `sequence` (SequentialLR)
========================================  ==============================================

Every schedule torch also has matches ``torch.optim.lr_scheduler`` to 1e-12 relative over 1000
steps (tests drive torch's schedulers on a ``torch.optim.SGD`` as the reference). Torch steps
most schedulers recursively; see :mod:`descentlab.schedules.torchlike` for how the closed
forms used here relate (and ``cosine(..., form="recursive")`` for torch's arithmetic).
"""

from descentlab.schedules.base import (
    FunctionSchedule,
    Schedule,
    Sequential,
    Warmup,
    as_schedule,
    from_function,
    join,
    sequence,
    warmup,
)
from descentlab.schedules.convergence import RobbinsMonroReport, growth_exponent, robbins_monro
from descentlab.schedules.lectures import (
    EtaOverT,
    ExpDecay,
    InverseTimeDecay,
    StepDecay,
    eta_over_t,
    exp_decay,
    inverse_time,
    step_decay,
)
from descentlab.schedules.loss_driven import (
    BoldDriver,
    LossRule,
    ReduceOnPlateau,
    bold_driver,
    reduce_on_plateau,
)
from descentlab.schedules.scheduler import Scheduler
from descentlab.schedules.torchlike import (
    Constant,
    ConstantFactor,
    CosineAnnealing,
    CosineAnnealingWarmRestarts,
    Exponential,
    Lambda,
    Linear,
    Multiplicative,
    MultiStep,
    OneCycle,
    OneCycleMomentum,
    Polynomial,
    Step,
    constant,
    constant_factor,
    cosine,
    cosine_restarts,
    exponential,
    lambda_schedule,
    linear,
    multiplicative,
    multistep,
    one_cycle,
    one_cycle_momentum,
    polynomial,
    step,
)

__all__ = [
    "BoldDriver",
    "Constant",
    "ConstantFactor",
    "CosineAnnealing",
    "CosineAnnealingWarmRestarts",
    "EtaOverT",
    "ExpDecay",
    "Exponential",
    "FunctionSchedule",
    "InverseTimeDecay",
    "Lambda",
    "Linear",
    "LossRule",
    "MultiStep",
    "Multiplicative",
    "OneCycle",
    "OneCycleMomentum",
    "Polynomial",
    "ReduceOnPlateau",
    "RobbinsMonroReport",
    "Schedule",
    "Scheduler",
    "Sequential",
    "Step",
    "StepDecay",
    "Warmup",
    "as_schedule",
    "bold_driver",
    "constant",
    "constant_factor",
    "cosine",
    "cosine_restarts",
    "eta_over_t",
    "exp_decay",
    "exponential",
    "from_function",
    "growth_exponent",
    "inverse_time",
    "join",
    "lambda_schedule",
    "linear",
    "multiplicative",
    "multistep",
    "one_cycle",
    "one_cycle_momentum",
    "polynomial",
    "reduce_on_plateau",
    "robbins_monro",
    "sequence",
    "step",
    "step_decay",
    "warmup",
]
