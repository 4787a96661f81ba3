"""The results more than one page of the book states, each stated here once: a page cites one
as ``{{fact:name}}`` and shows its formula and value rendered from the expression
(:class:`~descentlab.book.facts.Fact`), never retyped."""

from __future__ import annotations

from descentlab.book.facts import Fact, Formula

__all__ = ["FACTS", "RULES"]

FACTS: dict[str, Fact] = {
    # gradient descent on x² - 4x + 6 from 4 at rate 0.2: item 42's card and its exercise
    "parabola_factor": Fact("1 - 0.2*2"),
    "parabola_error_10": Fact("2*0.6**10"),
}

#: the update rules the lectures and exercises type, each as the chapters compute it: ``x``
#: the variable updated, ``g`` the gradient, the other letters free (a lecture names them its
#: own way). A typed rule must be one of these under some renaming, evaluated
#: (:func:`~descentlab.book.facts.rule_mismatches`); the chapters' Formulas beside each
RULES: tuple[Formula, ...] = (
    Formula("x - a*g"),  # gradient descent: descent_modes.SGD_W (a preconditioner P alike)
    Formula("(1 - a*b)*x"),  # on λx²/2, and decoupled decay: regularization.DECOUPLED
    Formula("(1 - a*b)*x - a*c*d"),  # on λx²/2 with a noisy gradient σξ
    Formula("a*x + g"),  # torch's buffer: momentum.MOM_B
    Formula("a*x - b*g"),  # the velocity form's velocity
    Formula("x + v"),  # the velocity form's step
    Formula("x + g**2"),  # AdaGrad's sum: adaptive.ADAGRAD_R
    Formula("a*x + (1 - a)*g**2"),  # RMSProp's and Adam's average: adaptive.RMSPROP_V
    Formula("-x**3"),  # Newton on √(1 + x²): newton.SQRT1_STEP
)
