"""Code-cell templates several lectures share (filled in with ``str.format``)."""

from __future__ import annotations

__all__ = ["BY_HAND", "by_hand"]

#: an update rule written out by hand beside descentlab's optimizer, on ``f = ½ Σ a_i w_i²``:
#: ``make`` builds the optimizer on ``[w]``, ``state`` starts the rule's state, ``rule`` is
#: the loop body (indented by 4, reads the gradient ``g`` and step ``t``, updates ``x``)
BY_HAND = """\
import math
import torch
from descentlab import optim

a = torch.tensor({curvatures}, dtype=torch.float64)        # f = 1/2 sum a_i w_i^2
w = torch.nn.Parameter(torch.tensor({start}, dtype=torch.float64))
opt = optim.{make}
x = torch.tensor({start}, dtype=torch.float64)
{state}
for t in range(1, {steps} + 1):
    g = a * x
{rule}
    w.grad = a * w.detach()
    opt.step()
print("by hand   ", [f"{{v:.12f}}" for v in x.tolist()])
print("descentlab", [f"{{v:.12f}}" for v in w.detach().tolist()])"""


def by_hand(make: str, state: str, *rule: str, where: tuple[list[float], list[float]]) -> str:
    """:data:`BY_HAND` for optimizer ``make``, the rule's ``state`` and body lines ``rule``,
    ``where = (curvatures, start)``, 10 steps."""
    body = "\n".join(f"    {line}" for line in rule)
    curvatures, start = where
    return BY_HAND.format(
        make=make, state=state, rule=body, curvatures=curvatures, start=start, steps=10
    )
