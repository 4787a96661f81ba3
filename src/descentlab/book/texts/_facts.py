"""The results more than one page of the book states, each stated here once: a page cites one
as ``{{fact:name}}`` and shows its formula and value rendered from the expression
(:class:`~descentlab.book.facts.Fact`), never retyped."""

from __future__ import annotations

from descentlab.book.facts import Fact, Formula

__all__ = ["FACTS", "RULES", "STATED", "stated_rules"]

FACTS: dict[str, Fact] = {
    # gradient descent on x² - 4x + 6 from 4 at rate 0.2: item 42's card and its exercise
    "parabola_factor": Fact("1 - 0.2*2"),
    "parabola_error_10": Fact("2*0.6**10"),
}

#: the update rules the lectures and exercises type, each as the chapters compute it: ``x``
#: the variable updated, ``g`` the gradient, the other letters free (a lecture names them its
#: own way). A typed rule must be the one its card or exercise states (:data:`STATED`) under
#: some renaming, evaluated (:func:`~descentlab.book.facts.rule_mismatches`); the chapters'
#: Formulas beside each
RULES: dict[str, Formula] = {
    "gd": Formula("x - a*g"),  # gradient descent: descent_modes.SGD_W (a preconditioner P alike)
    "quadratic": Formula("(1 - a*b)*x"),  # on λx²/2, and decoupled decay: regularization.DECOUPLED
    "noisy_quadratic": Formula("(1 - a*b)*x - a*c*d"),  # on λx²/2 with a noisy gradient σξ
    "buffer": Formula("a*x + g"),  # torch's buffer: momentum.MOM_B
    "velocity": Formula("a*x - b*g"),  # the velocity form's velocity
    "velocity_step": Formula("x + v"),  # the velocity form's step
    "adagrad": Formula("x + g**2"),  # AdaGrad's sum: adaptive.ADAGRAD_R
    "average_sq": Formula("a*x + (1 - a)*g**2"),  # RMSProp's and Adam's average: adaptive.RMSPROP_V
    "newton_sqrt1": Formula("-x**3"),  # Newton on √(1 + x²): newton.SQRT1_STEP
}

#: the rules each card (its item's number) and each exercise (a piece of its question) types,
#: in the order it types them (a rule the reader does not take, a sum or a gradient at another
#: point, is left out): a typed rule is checked against the rule it states, not any of the book's
STATED: dict[int | str, tuple[str, ...]] = {
    11: ("gd",), 18: ("noisy_quadratic",), 25: ("velocity", "velocity_step"),
    28: ("average_sq",), 37: ("gd",), 41: ("gd",), 51: ("velocity", "velocity_step"),
    55: ("adagrad",), 57: ("average_sq",), 72: ("gd",), 73: ("buffer",), 74: ("velocity_step",),
    80: ("average_sq",), 98: ("buffer",), 106: ("quadratic",), 126: ("gd",), 127: ("velocity",),
    129: ("average_sq",),
    "Momentum (torch's form, μ = 0.9, lr 0.1) descends a constant": ("buffer",),
    "Gradient descent on `f(w) = ½ wᵀHw`": ("gd",),
    "AdaGrad (lr 0.1) with": ("adagrad",),
    "Newton's method minimises the convex f(x) = √(1 + x²)": ("newton_sqrt1",),
}  # fmt: skip


def stated_rules(item: int | None = None, question: str = "") -> list[tuple[str, Formula]]:
    """The rules card ``item`` or the exercise asking ``question`` states, named, in order
    (none where :data:`STATED` holds none for it: then any rule it types is refused)."""
    if item is not None:
        names = STATED.get(item, ())
    else:
        names = next((v for k, v in STATED.items() if isinstance(k, str) and k in question), ())
    return [(n, RULES[n]) for n in names]
