"""Mutation testing of the lecture book: does the book catch wrong code?

Each mutant is a deliberate bug in one part of descentlab -- an optimizer (each backend),
a schedule, the sampler, a loss-driven rule, a loss, a regularizer, an experiment, a rule's
form, the formula behind a number a chapter's prose states, or what surrounds a checked
number (a comparative word, a formula, a label, a tolerance, a restatement, an API docstring's
default; ``api`` mutants also check the API pages' defaults). For each one this script
copies ``src/`` to a temporary folder, applies the bug there (a textual edit of one line, or a
runtime patch of one method for the backend-specific optimizer bugs), then builds only the
book cards and chapters the bug concerns (quick setting, no cache) in a fresh process and
counts the ✘ on their pages -- for a regularizer only the cards' evidence of its mechanism
(the multi-seed training runs of the regularization experiment would take minutes per
mutant). A mutant is *caught* when at least one check turns ✘.

A mutant whose target is gone (the code was rewritten: the text to edit does not occur exactly
once, the method to patch does not exist, or an item, chapter or exercise it names to build is
no longer in the book) is reported as *not applicable* -- never counted as caught. Before the
mutants, the same items are built on the unmutated copy: they must all hold, or a mutant's ✘
would prove nothing.

Usage::

    python scripts/mutate_book.py              # every mutant
    python scripts/mutate_book.py --list       # the mutants
    python scripts/mutate_book.py sampler_with_replacement eager_rmsprop

Exit status: 0 when every applicable mutant is caught and none is inapplicable, 1 otherwise.
It is not part of the test suite (minutes: one quick build per mutant).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    """One deliberate bug.

    Attributes:
        name: a short id.
        area: what it breaks (optimizer/eager, schedule, sampler, ...).
        what: the bug in words.
        items: the book items (seed_items.md numbers) that concern it.
        file: for a textual mutant, the file under ``src/descentlab``.
        old, new: the text replaced (``old`` must occur exactly once).
        patch: for a runtime mutant, Python run before the build; it raises
            ``NotApplicable`` when its target is missing.
        only: build only the evidence of those items whose "shown by" contains this text
            (e.g. the regularizer's mechanism, not the multi-seed training it also shows).
        chapters: the chapters (file stems, ``deep-momentum``) built too, whole.
        exercises: the exercises built too (their code run and checked), each named by a
            piece of its question.
        api: the API pages' stated defaults checked too (``api_pages.default_contradictions``).
        cached: built as a reader rebuilds into the folder of an earlier build: the unmutated
            copy is built first with a results folder, then the mutant into the same folder
            (a result whose key misses the mutated file is reused: a stale ✔).
    """

    name: str
    area: str
    what: str
    items: tuple[int, ...]
    file: str = ""
    old: str = ""
    new: str = ""
    patch: str = ""
    only: str = ""
    chapters: tuple[str, ...] = ()
    exercises: tuple[str, ...] = ()
    #: also check the API pages' stated defaults against the signatures
    api: bool = False
    #: built over an earlier build's saved results (see ``cached`` above)
    cached: bool = False


def _eager(cls_path: str) -> str:
    """A runtime patch of a rule class's eager methods (``update``, and ``apply_final`` where
    the eager backend ends the chain with it): the rule's step is 0.1 % too large. The fused
    backend (the kernels, written from the collected program) is untouched."""
    module, cls = cls_path.rsplit(".", 1)
    return f"""
import importlib
mod = importlib.import_module({module!r})
cls = getattr(mod, {cls!r}, None)
if cls is None or not callable(getattr(cls, "update", None)):
    raise NotApplicable("{cls_path}.update is gone")
_update = cls.update
def update(self, grads, state, params, hyper):
    updates, state = _update(self, grads, state, params, hyper)
    return [u * 1.001 for u in updates], state
cls.update = update
_final = getattr(cls, "apply_final", None)
if callable(_final):
    def apply_final(self, g, state, params, hyper, lrs):
        return _final(self, g, state, params, hyper, [lr * 1.001 for lr in lrs])
    cls.apply_final = apply_final
"""


def _fused(cls_path: str) -> str:
    """A runtime patch of the kernels' collected program (:mod:`descentlab.optim.program`): the
    fused kernel scales every state entry the rule writes by 1.001 at every step (the eager
    backend is untouched). A rule's form is recorded by ``program._Recorder.statements``; a
    state entry ``k`` is the token ``s:k``, stored by a ``Stmt("store", k, args=(value,))``."""
    module, cls = cls_path.rsplit(".", 1)
    return f"""
import importlib
mod = importlib.import_module({module!r})
cls = getattr(mod, {cls!r}, None)
program = importlib.import_module("descentlab.optim.program")
recorder = getattr(program, "_Recorder", None)
if cls is None or not callable(getattr(cls, "built", None)):
    raise NotApplicable("{cls_path}.built is gone")
if recorder is None or not hasattr(program, "Stmt") or not hasattr(program, "Coefficient"):
    raise NotApplicable("the kernels' program has no _Recorder/Stmt/Coefficient any more")
_orig = recorder.statements
def statements(self, form):
    _orig(self, form)
    if self.prefix.rstrip("0123456789") != cls.name:
        return
    keys = [k for k in form.written if not k.startswith("_")]
    if not keys:
        raise NotApplicable("{cls_path}'s form writes no state")
    for k in keys:
        c = self.prog.declare(program.Coefficient(f"{{self.prefix}}_mutant_{{k}}",
                                               lambda h, t, e: 1.001, None))
        v = self.prog.op("mul", (f"s:{{k}}", c))
        self.prog.stmts.append(program.Stmt("store", k, args=(v,)))
recorder.statements = statements
"""


MUTANTS: tuple[Mutant, ...] = (
    # optimizers, eager backend
    Mutant("eager_velocity", "optimizer/eager", "velocity momentum's eager step is 0.1 % too large",
           (25, 51, 99), patch=_eager("descentlab.optim.sgd.velocity")),
    Mutant("eager_rmsprop", "optimizer/eager", "RMSProp's eager scale is 0.1 % too large",
           (28, 57, 80), patch=_eager("descentlab.optim.adaptive.scale_by_rms")),
    Mutant("eager_adam", "optimizer/eager", "Adam's eager scale is 0.1 % too large",
           (58, 130), patch=_eager("descentlab.optim.adam.scale_by_adam")),
    Mutant("eager_adagrad", "optimizer/eager", "AdaGrad's eager scale is 0.1 % too large",
           (55, 76, 128), patch=_eager("descentlab.optim.adaptive.scale_by_adagrad")),
    # optimizers, fused backend
    Mutant("fused_velocity", "optimizer/fused", "velocity momentum's fused kernel inflates its "
                                                "velocity by 0.1 % a step",
           (25, 51), patch=_fused("descentlab.optim.sgd.velocity")),
    Mutant("fused_rmsprop", "optimizer/fused", "RMSProp's fused kernel inflates its average of g² "
                                               "by 0.1 % a step",
           (28, 80), patch=_fused("descentlab.optim.adaptive.scale_by_rms")),
    Mutant("fused_adam", "optimizer/fused", "Adam's fused kernel inflates its moments by 0.1 % a "
                                            "step",
           (58, 130), patch=_fused("descentlab.optim.adam.scale_by_adam")),
    # schedules
    Mutant("eta_over_t_sqrt", "schedule", "η/t becomes η/√t", (20, 21),
           file="book/decays.py", old="return base / (step + self.t0)",
           new="return base / (step + self.t0) ** 0.5"),
    Mutant("step_decay_off_by_one", "schedule", "step decay drops one step early", (115,),
           file="book/decays.py", old="return base * self.drop ** (step // self.every)",
           new="return base * self.drop ** ((step + 1) // self.every)"),
    Mutant("steplr_off_by_one", "schedule", "StepLR drops one step late", (22,),
           file="schedules/torchlike.py", old="return _power(base, self.gamma, step // "
                                              "self.step_size)",
           new="return _power(base, self.gamma, max(step - 1, 0) // self.step_size)"),
    # the sampler
    Mutant("sampler_with_replacement", "sampler", "the engine draws each epoch's batches with "
                                                  "replacement",
           (48,), file="engine/loop.py",
           old="self._order(torch.randperm(n, generator=self.data_gens[0]))",
           new="self._order(torch.randint(0, n, (n,), generator=self.data_gens[0]))"),
    Mutant("sampler_never_shuffles", "sampler", "the engine takes the examples in file order "
                                                "every epoch",
           (48,), file="engine/loop.py",
           old="self._order(torch.randperm(n, generator=self.data_gens[0]))",
           new="self._order(torch.arange(n))"),
    # cross-validation
    Mutant("kfold_trains_on_val", "cross-validation", "fold_splits trains each fold on its own "
                                                      "validation fold too",
           (64,), file="problems/data.py", old="x_train=x[tr_t], y_train=y[tr_t],",
           new="x_train=x, y_train=y,"),
    # decoupled weight decay
    Mutant("adamw_is_adam_l2", "optimizer/named", "AdamW applies its decay as Adam's L2 penalty",
           (85,), file="optim/adam_variants.py",
           old="super().__init__(**arguments(locals()), decoupled_weight_decay=True)",
           new="super().__init__(**arguments(locals()), decoupled_weight_decay=False)",
           only="l2_penalty"),
    # theory formulas
    Mutant("noise_floor_factor", "theory", "the noise floor's (2 - ηh) term loses half its ηh",
           (18,), file="problems/landscapes.py",
           old="return dim * lr * sigma**2 / (2 * (2 - lr * h))",
           new="return dim * lr * sigma**2 / (2 * (2 - 0.5 * lr * h))", only="noise_floor"),
    # loss-driven rules
    Mutant("bold_driver_never_rejects", "loss-driven rule", "the bold driver never rejects a step",
           (54,), file="schedules/loss_driven.py", old="self.accepted = not self.reject",
           new="self.accepted = True"),
    # losses
    Mutant("l1_squared", "loss", "the L1 loss squares the error", (116, 6),
           file="losses.py", old='"l1": _make_simple(_elementwise, "l1", F.l1_loss),',
           new='"l1": _make_simple(_elementwise, "l1", F.mse_loss),'),
    Mutant("kl_reverse_is_forward", "loss", "kl_div_reverse computes the forward KL", (122,),
           file="losses.py",
           old='return _kl_reduce(F.kl_div(torch.log(p), log_q, reduction="none", '
               'log_target=True), reduction)',
           new='return _kl_reduce(F.kl_div(log_q, p, reduction="none"), reduction)'),
    Mutant("triplet_margin_halved", "loss", "the triplet loss uses half the margin", (123,),
           file="losses.py", old="anchor, positive, negative, margin=margin, p=p, eps=eps, "
                                 "swap=swap, reduction=reduction",
           new="anchor, positive, negative, margin=margin / 2, p=p, eps=eps, swap=swap, "
               "reduction=reduction"),
    # regularizers
    Mutant("mixup_unmixed_partner", "regularizer", "mixup weighs the partner by λ too", (88,),
           file="regularize.py", old="x_mixed = lam * x + (1.0 - lam) * x[perm]",
           new="x_mixed = lam * x + lam * x[perm]", only="regularizer_mechanism"),
    Mutant("label_smoothing_k_minus_1", "regularizer", "label smoothing spreads ε over K - 1 "
                                                       "classes", (88,),
           file="regularize.py", old="return (1.0 - eps) * onehot + eps / n_classes",
           new="return (1.0 - eps) * onehot + eps / max(n_classes - 1, 1)",
           only="regularizer_mechanism"),
    Mutant("input_noise_double", "regularizer", "input noise has twice the std", (87,),
           file="regularize.py", old="return x + s * noise", new="return x + 2 * s * noise",
           only="regularizer_mechanism"),
    Mutant("dropout_dropped", "regularizer", "digits_mlp forgets its dropout layer", (89,),
           file="problems/models.py", old="                layers.append(nn.Dropout(dropout))",
           new="                pass", only="regularizer_mechanism"),
    # experiments
    Mutant("minibatch_biased", "experiment", "the mini-batch experiment divides by B + 1", (14,),
           file="book/experiments/minibatch.py", old="gb = counts @ G / b",
           new="gb = counts @ G / (b + 1)"),
    Mutant("momentum_escape_no_momentum", "experiment", "the escape race runs momentum with β 0",
           (50,), file="book/experiments/momentum.py", old='("momentum", {"momentum": 0.9}),',
           new='("momentum", {"momentum": 0.0}),'),
    Mutant("closed_form_hvp_forms_hessian", "experiment", "the Hessian-vector product forms the "
                                                          "Hessian",
           (10,), file="book/experiments/closed_form.py", old="Xp.T @ (Xp @ vp)  # n p: H v "
                                                                  "without forming H",
           new="(Xp.T @ Xp) @ vp"),
    # a rule's form: one line of the program both backends run
    Mutant("adam_bias_correction_late", "rule form", "Adam's second-moment bias correction "
                                                     "uses step t + 1", (58,),
           file="optim/adam.py", old='lambda h, t: (1 - h["betas"][1] ** t) ** 0.5',
           new='lambda h, t: (1 - h["betas"][1] ** (t + 1)) ** 0.5',
           chapters=("deep-adaptive",)),
    Mutant("trace_first_buffer", "rule form", "the momentum trace starts its buffer at μg, not g",
           (25,), file="optim/sgd.py", old="where(first, f.g, add(buf * m, f.g, keep))",
           new="where(first, f.g * m, add(buf * m, f.g, keep))", chapters=("deep-momentum",)),
    # descentlab.schedules, run by the schedules chapter against the lecture's formulas
    Mutant("warmup_one_step_ahead", "schedule", "linear warmup runs one step ahead", (),
           file="schedules/base.py", old="return start + (target - start) * step / self.steps",
           new="return start + (target - start) * (step + 1) / self.steps",
           chapters=("deep-schedules",)),
    # the formulas behind numbers each chapter's prose states (checked by a second route)
    Mutant("prose_gd_rate", "chapter prose", "gradient descent's rate (κ - 1)/(κ + 1) becomes "
                                             "(κ - 1)/(κ + 2)", (),
           file="book/chapters/momentum.py", old='GD_RATE = Formula("(kappa - 1)/(kappa + 1)")',
           new='GD_RATE = Formula("(kappa - 1)/(kappa + 2)")', chapters=("deep-momentum",)),
    Mutant("prose_adagrad_travel", "chapter prose", "AdaGrad's travel bound η(2√T - 1) loses "
                                                    "its -1", (),
           file="book/chapters/adaptive.py", old="LR * (2 * math.sqrt(STEPS) - 1)",
           new="LR * (2 * math.sqrt(STEPS))", chapters=("deep-adaptive",)),
    Mutant("prose_a_over_t_asymptote", "chapter prose", "the a/t schedule's asymptote "
                                                        "a²/(2(2a - 1)T) uses 2a + 1", (),
           file="book/chapters/schedules.py", old="0.5 * a * a / ((2 * a - 1) * T)",
           new="0.5 * a * a / ((2 * a + 1) * T)", chapters=("deep-schedules",)),
    Mutant("prose_batch_variance", "chapter prose", "the batch gradient's variance loses its "
                                                    "finite-population factor", (),
           file="book/chapters/batch.py", old="var1 / b * (N - b) / (N - 1) for b in BATCHES",
           new="var1 / b for b in BATCHES", chapters=("deep-batch",)),
    Mutant("prose_ridge_decay", "chapter prose", "the ridge solution the decay reaches counts "
                                                 "λ twice", (),
           file="book/chapters/regularization.py", old="a.T @ a / 40 + DECAY * torch.eye",
           new="a.T @ a / 40 + 2 * DECAY * torch.eye", chapters=("deep-regularization",)),
    Mutant("prose_gaussian_peak", "chapter prose", "the Gaussian's peak 1/√(2π) becomes 1/√π",
           (), file="book/chapters/mle.py", old="peak=(1 / math.sqrt(2 * math.pi),",
           new="peak=(1 / math.sqrt(math.pi),", chapters=("deep-likelihood",)),
    Mutant("prose_sgd_expected_loss", "chapter prose", "the expected loss of SGD forgets that a "
                                                       "batch of one has no cross terms", (),
           file="book/chapters/descent_modes.py", old="egg = (1 - 1 / b) * h @ s @ h",
           new="egg = h @ s @ h", chapters=("deep-descent",)),
    Mutant("prose_cv_on_training_folds", "chapter prose", "the chapter's cross-validation "
                                                          "scores each fold on its training part",
           (), file="book/chapters/methodology.py",
           old="_mse(_fit(x[tr], y[tr], d), x[va], y[va])",
           new="_mse(_fit(x[tr], y[tr], d), x[tr], y[tr])", chapters=("deep-methodology",)),
    Mutant("prose_fc_share", "chapter prose", "AlexNet's fully connected share is taken of the "
                                              "convolutions' weights alone", (),
           file="book/chapters/conv_arithmetic.py", old="100 * fc_w / (conv_w + fc_w)",
           new="100 * fc_w / conv_w", chapters=("deep-convolution",)),
    Mutant("prose_convexity_bound", "chapter prose", "gradient descent's step bound at η = 1/L "
                                                     "uses 1 - 1/(2κ) for 1 - 1/κ", (),
           file="book/chapters/convexity.py", old='"bound": _bound(1 - 1 / k),',
           new='"bound": _bound(1 - 1 / (2 * k)),', chapters=("deep-convexity",)),
    Mutant("prose_newton_ratio", "chapter prose", "Newton's error constant C loses the 2 of "
                                                  "f3/(2 f2)", (),
           file="book/chapters/newton.py", old='QUAD_C = Formula("exp(x_s)/(2*exp(x_s))"',
           new='QUAD_C = Formula("exp(x_s)/exp(x_s)"',
           chapters=("deep-newton",)),
    Mutant("prose_compare_ranking", "chapter prose", "the comparison calls an optimizer ahead "
                                                     "when its mean is lower, not every seed", (),
           file="book/chapters/compare.py", old="return bool(max(vals[a]) < min(vals[b]))",
           new="return bool(np.mean(vals[a]) < np.mean(vals[b]))", chapters=("deep-compare",)),
    # what a learner reads and types: an exercise's tolerance
    Mutant("tolerance_admits_misconception", "exercise tolerance", "the momentum/noise "
                                                                   "exercise's tolerance is 5 %, "
                                                                   "wide enough to accept 1", (),
           file="book/texts/practice.py", old="tol = 0.02                                   "
                                              "        # the runs' spread is under 1 %",
           new="tol = 0.05", exercises=("momentum's noise floor",)),
    Mutant("solution_number", "worked solution", "AdaGrad's worked solution says 0.2 at t = 25 "
                                                 "beside its computed 0.02", (),
           file="book/texts/practice.py", old="0.02 at t = 25, whatever g is",
           new="0.2 at t = 25, whatever g is", exercises=("How large is its 25th step",)),
    Mutant("solution_formula_number", "worked solution", "AdaGrad's worked solution says "
                                                         "`0.1/√t = 0.2` at t = 25, inside a "
                                                         "formula, beside its computed 0.02", (),
           file="book/texts/practice.py", old="`0.1 g/√(t g²) = 0.1/√t`: 0.02 at t = 25",
           new="`0.1 g/√(t g²) = 0.1/√t = 0.2` at t = 25",
           exercises=("How large is its 25th step",)),
    Mutant("solution_formula_step", "worked solution", "RMSProp's worked solution's second "
                                                       "accumulator (rendered from the code's "
                                                       "r2) weighs the old average by 0.95", (),
           file="book/texts/practice.py", old="r2 = 0.9 * r1 + rest * g2",
           new="r2 = 0.95 * r1 + rest * g2", exercises=("sees the gradient 5 twice",)),
    # a table's number
    Mutant("table_predicted_steps", "table", "the momentum table's predicted steps are the rate "
                                             "alone's ln 1e-6/ln ρ again", (),
           file="book/chapters/momentum.py", old='_power_steps(a, b) or "never",',
           new='"never" if rho >= 1 else round(math.log(1e-6) / math.log(rho)),',
           chapters=("deep-momentum",)),
    # a library option the book shows at a value other than its default
    Mutant("cosine_eta_min_halved", "option", "the cosine schedule's closed form counts eta_min "
                                              "at half its value", (),
           file="schedules/torchlike.py",
           old="return eta_min + (base - eta_min) * (1 + math.cos(math.pi * step / self.T_max))",
           new="return eta_min / 2 + (base - eta_min) * (1 + math.cos(math.pi * step / "
               "self.T_max))",
           chapters=("deep-schedules",)),
    Mutant("dampening_halved", "option", "momentum's dampening scales the gradient by 1 - τ/2, "
                                         "not 1 - τ", (),
           file="optim/sgd.py", old='lambda h, t: 1 - h.get("dampening", 0.0)',
           new='lambda h, t: 1 - 0.5 * h.get("dampening", 0.0)', chapters=("deep-momentum",)),
    # a claim's number: the one its comparison needs
    Mutant("claim_alexnet_unpooled", "claim", "the real AlexNet's dense share is counted on the "
                                              "lecture's unpooled 13 × 13 maps", (),
           file="book/chapters/conv_arithmetic.py",
           old="real = B.alexnet_table(pool_before_fc=True)",
           new="real = B.alexnet_table(pool_before_fc=False)", chapters=("deep-convolution",)),
    Mutant("claim_floor_cross_terms", "claim", "the stochastic floor the full batch must cross "
                                               "keeps a batch of one's cross terms", (),
           file="book/chapters/descent_modes.py", old="(1 - 1 / b) * np.kron(h, h) + v.T @ v",
           new="np.kron(h, h) + v.T @ v", chapters=("deep-descent",)),
    # a second route that is the same code re-seeded
    Mutant("twin_reseeded", "second route", "the single tree's error is checked against the "
                                            "same trees on other draws, not 1-nearest-neighbour",
           (), file="book/chapters/methodology.py", old="single=(s1, n1, 1e-9),",
           new="single=(s1, _bagging(7)[0], 1e-9),", chapters=("deep-methodology",)),
    Mutant("twin_reseeded_escape", "second route", "the batch chapter's escape fractions are "
                                                   "checked against the same runs re-seeded, not "
                                                   "the density carried on a grid", (),
           file="book/chapters/batch.py", old="p = _escape_by_kernel(lr, b, start)",
           new="p = _wells(lr, b, start, seed=5)[2]", chapters=("deep-batch",)),
    Mutant("twin_reseeded_shuffles", "second route", "the reshuffled runs are checked against "
                                                     "themselves on other shuffles, not NumPy's "
                                                     "runs", (),
           file="book/chapters/descent_modes.py",
           old="lambda: _reshuffled_numpy(lr, steps))",
           new="lambda: [v[-1] for v in _runs(lr, 1, steps, replace=False, seed=2)])",
           chapters=("deep-descent",)),
    Mutant("twin_shared_shuffle", "second route", "the descent chapter's reshuffled runs take "
                                                  "the first example of each epoch's order at "
                                                  "every step: a bug a re-seeded twin shares",
           (), file="book/chapters/descent_modes.py",
           old="idx = order[:, (t % (N // b)) * b : (t % (N // b) + 1) * b]",
           new="idx = order[:, :b]", chapters=("deep-descent",)),
    Mutant("twin_shared_noise", "second route", "the wells' runs draw the noise of a batch as "
                                                "σ/B, not σ/√B: a bug a re-seeded twin shares",
           (), file="book/chapters/batch.py",
           old="noise = sigma / math.sqrt(b) * torch.randn(",
           new="noise = sigma / b * torch.randn(", chapters=("deep-batch",)),
    # what surrounds a checked number: its words, formulas, labels, restatements, defaults
    Mutant("words_chapter_flipped", "words", "the batch chapter says the examples a half needs "
                                             "are fewer than the training set's, not more", (),
           file="book/chapters/batch.py", old='more=word(b_star[2], N, "more")',
           new='more=word(N, b_star[2], "more")', chapters=("deep-batch",)),
    Mutant("words_card_flipped", "words", "item 35's explanation says descent shrinks the "
                                          "steeper coordinate slower, not faster", (35,),
           file="book/texts/l001.py", old="{{word:6,2,faster}}", new="{{word:2,6,faster}}"),
    Mutant("formula_text_sign", "formula in text", "item 103's explanation multiplies y by "
                                                   "`1 + 0.18·10` (a sign changed), still "
                                                   "saying -0.8", (103,),
           file="book/texts/l003.py", old="`1 - 0.18·10 = -0.8`", new="`1 + 0.18·10 = -0.8`"),
    Mutant("solution_formula_exponent", "formula in a solution", "the chain rule's solution "
                                                                 "cubes 1.5 where it squares it, "
                                                                 "still saying 13.5", (),
           file="book/texts/practice.py", old="answer = 6 * inner ** 2",
           new="answer = 6 * inner ** 3",
           exercises=("What is d/dx (2x - 1)³ at x = 1.25",)),
    Mutant("solution_operands_swapped", "formula in a solution", "RMSProp's solution weighs the "
                                                                 "old average by 0.1 and the new "
                                                                 "g² by 0.9, still saying 4.75",
           (), file="book/texts/practice.py", old="r2 = 0.9 * r1 + rest * g2",
           new="r2 = rest * r1 + 0.9 * g2", exercises=("sees the gradient 5 twice",)),
    Mutant("caption_number", "label", "the batch chapter's table caption says 500 steps for "
                                      "the 400 it ran", (),
           file="book/chapters/batch.py", old="400 steps from w = -2 + 0.001",
           new="500 steps from w = -2 + 0.001", chapters=("deep-batch",)),
    Mutant("curve_labels_swapped", "label", "the comparison's figure draws SGD's curves under "
                                            "Adam's label and Adam's under SGD's", (),
           file="book/chapters/compare.py", old="steps, v = series[o]",
           new='steps, v = series[{"sgd": "adam", "adam": "sgd"}.get(o, o)]',
           chapters=("deep-compare",)),
    Mutant("tolerance_admits_exponent", "exercise tolerance", "the gradient-descent exercise's "
                                                              "tolerance is 5 %: 0.8⁶ for 0.8⁵ "
                                                              "(no declared misconception) is "
                                                              "\"✔ Right\"", (),
           file="book/texts/practice.py", old='tol = 1e-12\nprint("x_5 =", measured)',
           new='tol = 0.05\nprint("x_5 =", measured)',
           exercises=("from x = 4 with lr 0.1: what is x after 5 steps",)),
    Mutant("twin_reseeded_loop", "second route", "the reshuffled runs are checked against "
                                                 "themselves re-seeded, both drawn at one call "
                                                 "site over range()", (),
           file="book/chapters/descent_modes.py",
           old="    shuffled = ctx.memo(\n"
               '        ("chapter", "descent", "shuffled"), lambda: _runs(lr, 1, steps, '
               'replace=False)\n    )\n    again = ctx.memo(("chapter", "descent", '
               '"shuffled-numpy"), lambda: _reshuffled_numpy(lr, steps))',
           new="    shuffled, rerun = [_runs(lr, 1, steps, replace=False, seed=s) for s in "
               "range(1, 3)]\n    again = (rerun[0][-1], rerun[1][-1])",
           chapters=("deep-descent",)),
    Mutant("api_default_contradicted", "API docstring", "trajectories.run's docstring says the "
                                                        "loss rule drives \"momentum\" by "
                                                        "default; its signature says \"lr\"",
           (), file="problems/trajectories.py", old='(default ``"lr"``)',
           new='(default ``"momentum"``)', api=True),
    Mutant("restated_differently", "restatement", "the schedules chapter restates the sum "
                                                  "Σ 1/t² (item 21's π²/6) as 1.5", (21,),
           file="book/chapters/schedules.py", old="$\\\\eta_t = {{f:harmonic}}$ (item 21), and",
           new="$\\\\eta_t = {{f:harmonic}}$ (item 21, whose $\\\\sum_t 1/t^2 = 1.5$), and",
           chapters=("deep-schedules",)),
    # the widened kinds: the words around a number, formulas rendered from the code, the
    # wrong answers of every line of a solution and the other formula of a pair
    Mutant("words_above_flipped", "words", "the schedules chapter says the a = 0.1 schedule "
                                           "ends below the constant rate's floor, not above it",
           (), file="book/chapters/schedules.py", old="{{a01}}, above that",
           new="{{a01}}, below that", chapters=("deep-schedules",)),
    Mutant("words_direction_flipped", "words", "the batch chapter says the floor rises from "
                                               "B = 1 to B = 64, where it falls", (),
           file="book/chapters/batch.py", old="their floor falls from {{b1}}",
           new="their floor rises from {{b1}}", chapters=("deep-batch",)),
    Mutant("words_chosen_swapped", "words", "the adaptive chapter chooses the word of Adam's two "
                                            "β₂ at η = 0.1 from the numbers in the wrong order "
                                            "(\"ends higher (A against B)\" where A < B)", (),
           file="book/chapters/adaptive.py", old='a_word=word(fin(0.1, 4), fin(0.1, 5), "higher")',
           new='a_word=word(fin(0.1, 5), fin(0.1, 4), "higher")', chapters=("deep-adaptive",)),
    # the shapes the chapters' directions take: "A to B" after a direction word, "still above
    # B ...: its ... is A", "A, below <a named quantity> = B", "falling from A to B"
    Mutant("words_to_flipped", "words", "the regularization chapter says the training error "
                                        "falls monotonically as λ grows, where it rises", (),
           file="book/chapters/regularization.py", old="error rises monotonically,",
           new="error falls monotonically,", chapters=("deep-regularization",)),
    Mutant("words_named_flipped", "words", "the regularization chapter says the training error "
                                           "at λ = 0 is above the noise's variance", (),
           file="book/chapters/regularization.py", old="{{tr0}}, below the noise's variance",
           new="{{tr0}}, above the noise's variance", chapters=("deep-regularization",)),
    Mutant("words_still_flipped", "words", "the Newton chapter says gradient descent is still "
                                           "below the tolerance after the cap, where it is "
                                           "above", (),
           file="book/chapters/newton.py", old="is still above {{gtol}}",
           new="is still below {{gtol}}", chapters=("deep-newton",)),
    Mutant("words_falling_flipped", "words", "the Newton chapter says the gradient norm is "
                                             "rising from its first to its last value", (),
           file="book/chapters/newton.py", old="the norm falling from {{g1}}",
           new="the norm rising from {{g1}}", chapters=("deep-newton",)),
    Mutant("solution_code_exponent", "formula in a solution", "the Adam exercise's formula "
                                                              "(the code's, rendered on the "
                                                              "page) counts 51 steps", (),
           file="book/texts/practice.py", old="answer = 16 * (1 - 0.999 ** 50)",
           new="answer = 16 * (1 - 0.999 ** 51)", exercises=("What is `exp_avg_sq`",)),
    Mutant("restated_retyped", "restatement", "the parabola exercise types item 42's "
                                              "2·0.6¹⁰ ≈ 0.0121 instead of citing it from the "
                                              "registry", (),
           file="book/texts/practice.py", old="{{fact:parabola_error_10}}. The code runs",
           new="`2·0.6¹⁰ ≈ 0.0121`. The code runs", exercises=("lr 0.2: how far from",)),
    Mutant("tolerance_admits_other_accumulator", "exercise tolerance", "the RMSProp exercise's "
                                                                       "tolerance is 60 %: "
                                                                       "AdaGrad's sum r₁ + g² "
                                                                       "and g³ are \"✔ Right\"",
           (), file="book/texts/practice.py", old='tol = 1e-12\nprint("second step", measured)',
           new='tol = 0.6\nprint("second step", measured)',
           exercises=("sees the gradient 5 twice",)),
    # words chosen from their numbers in chapters, the shapes "k times" after a count and
    # "beats"; the adaptive chapter's update rules, typeset and evaluated from one Formula
    Mutant("words_times_chosen_swapped", "words", "the schedules chapter chooses the a/t "
                                                  "schedule's word against the best constant "
                                                  "from the numbers in the wrong order (k times "
                                                  "higher than B, where it is lower)", (),
           file="book/chapters/schedules.py", old='lower=word(a1, end, "higher")',
           new='lower=word(end, a1, "higher")', chapters=("deep-schedules",)),
    Mutant("words_than_chosen_swapped", "words", "the schedules chapter chooses the word of "
                                                 "a = 2 against a = 1 in the wrong order", (),
           file="book/chapters/schedules.py",
           old='higher=word(measured[2.0][T], measured[1.0][T], "higher")',
           new='higher=word(measured[1.0][T], measured[2.0][T], "higher")',
           chapters=("deep-schedules",)),
    Mutant("words_times_count_swapped", "words", "the convexity chapter says κ = 100's step "
                                                 "count is k times κ = 1000's (\"A steps, k "
                                                 "times the B\", A a count, no comma after it)",
           (), file="book/chapters/convexity.py",
           old="{{w1000}} steps,\n{{ratio}} times the {{w100}}",
           new="{{w100}} steps,\n{{ratio}} times the {{w1000}}", chapters=("deep-convexity",)),
    # a chosen word read back by a shape (the schedules chapter prints the bound beside it),
    # and sentences read by their chapter's check row (``checks.said``), each word flipped
    Mutant("words_chosen_bound_swapped", "words", "the schedules chapter chooses the word of "
                                                  "the largest converging rate against the "
                                                  "linear bound from the numbers swapped", (),
           file="book/chapters/schedules.py", old='above=word(largest, safe, "above")',
           new='above=word(safe, largest, "above")', chapters=("deep-schedules",)),
    Mutant("words_said_floor_flipped", "words", "the momentum chapter says heavy ball's loss on "
                                                "Lessard's function is never above its floor", (),
           file="book/chapters/momentum.py", old="its loss never below {{floor}}",
           new="its loss never above {{floor}}", chapters=("deep-momentum",)),
    Mutant("words_said_gap_flipped", "words", "the regularization chapter says the gap between "
                                              "test and train errors grows all along", (),
           file="book/chapters/regularization.py",
           old="errors shrinks all along; it", new="errors grows all along; it",
           chapters=("deep-regularization",)),
    Mutant("words_said_u_flipped", "words", "the methodology chapter says the test error rises, "
                                            "then falls", (),
           file="book/chapters/methodology.py", old="The test error falls, then rises (item 63)",
           new="The test error rises, then falls (item 63)", chapters=("deep-methodology",)),
    Mutant("words_beats_flipped", "words", "the Newton chapter says Adam's training loss beats "
                                           "Shampoo's, where Shampoo's is lower", (),
           file="book/chapters/newton.py",
           old="Shampoo's {{shampoo}} beats Adam's {{adam}} and",
           new="Adam's {{adam}} beats Shampoo's {{shampoo}} and", chapters=("deep-newton",)),
    Mutant("formula_rule_adagrad", "formula rendered", "the adaptive chapter's AdaGrad rule "
                                                       "divides by r, not √r (shown and "
                                                       "evaluated: one Formula)", (),
           file="book/chapters/adaptive.py", old='Formula("w - eta*g/(sqrt(r) + epsilon)")',
           new='Formula("w - eta*g/(r + epsilon)")', chapters=("deep-adaptive",)),
    Mutant("formula_rule_rmsprop", "formula rendered", "the adaptive chapter's RMSProp average "
                                                       "weighs the old v by 1 - α and g² by α",
           (), file="book/chapters/adaptive.py",
           old='Formula("alpha*v + (1 - alpha)*g**2")',
           new='Formula("(1 - alpha)*v + alpha*g**2")', chapters=("deep-adaptive",)),
    Mutant("formula_rule_adam", "formula rendered", "the adaptive chapter's Adam second moment "
                                                    "averages g, not g²", (),
           file="book/chapters/adaptive.py", old='Formula("beta_2*v + (1 - beta_2)*g**2")',
           new='Formula("beta_2*v + (1 - beta_2)*g")', chapters=("deep-adaptive",)),
    Mutant("formula_rule_sgd_sign", "formula rendered", "the descent-modes chapter's step "
                                                        "climbs, w + ηg (shown and evaluated)",
           (), file="book/chapters/descent_modes.py", old='SGD_W = Formula("w - eta*g")',
           new='SGD_W = Formula("w + eta*g")', chapters=("deep-descent",)),
    Mutant("formula_rule_buffer_exponent", "formula rendered", "the momentum chapter's buffer "
                                                               "decays by β², not β", (),
           file="book/chapters/momentum.py", old='MOM_B = Formula("beta*b + g")',
           new='MOM_B = Formula("beta**2*b + g")', chapters=("deep-momentum",)),
    Mutant("formula_rule_damped_swapped", "formula rendered", "the momentum chapter's damped "
                                                              "buffer swaps β and 1 - τ", (),
           file="book/chapters/momentum.py", old='Formula("beta*b + (1 - tau)*g")',
           new='Formula("(1 - tau)*b + beta*g")', chapters=("deep-momentum",)),
    Mutant("formula_rule_heavy_ball_swapped", "formula rendered", "the momentum chapter's "
                                                                  "recurrence swaps w_t and "
                                                                  "w_{t-1}", (),
           file="book/chapters/momentum.py", old='Formula("(1 + beta - eta*lamda)*w_t - beta*w_p"',
           new='Formula("(1 + beta - eta*lamda)*w_p - beta*w_t"', chapters=("deep-momentum",)),
    Mutant("formula_rule_nesterov_sign", "formula rendered", "Nesterov's recurrence adds the "
                                                             "momentum term", (),
           file="book/chapters/momentum.py", old="*w_t - beta*(1 - eta*lamda)*w_p\"",
           new="*w_t + beta*(1 - eta*lamda)*w_p\"", chapters=("deep-momentum",)),
    Mutant("formula_rule_l2_sign", "formula rendered", "the regularization chapter's penalised "
                                                       "step adds -λw to the gradient", (),
           file="book/chapters/regularization.py", old='Formula("w - eta*(g + lamda*w)")',
           new='Formula("w - eta*(g - lamda*w)")', chapters=("deep-regularization",)),
    Mutant("formula_rule_decay_exponent", "formula rendered", "the regularization chapter's "
                                                              "decayed step multiplies by "
                                                              "(1 - ηλ)²", (),
           file="book/chapters/regularization.py", old='Formula("(1 - eta*lamda)*w - eta*g")',
           new='Formula("(1 - eta*lamda)**2*w - eta*g")', chapters=("deep-regularization",)),
    Mutant("formula_rule_decoupled_sign", "formula rendered", "AdamW's decoupled decay grows "
                                                              "the weight, (1 + ηλ)w", (),
           file="book/chapters/regularization.py", old='DECOUPLED = Formula("(1 - eta*lamda)*w")',
           new='DECOUPLED = Formula("(1 + eta*lamda)*w")', chapters=("deep-regularization",)),
    Mutant("formula_rule_newton_sign", "formula rendered", "Newton's step climbs, "
                                                           "w + H⁻¹∇f(w)", (),
           file="book/chapters/newton.py", old='Formula("w - H_inv*grad"',
           new='Formula("w + H_inv*grad"', chapters=("deep-newton",)),
    Mutant("formula_rule_newton_exponent", "formula rendered", "Newton's step on √(1 + x²) "
                                                               "is shown as -x²", (),
           file="book/chapters/newton.py", old='SQRT1_STEP = Formula("-x**3")',
           new='SQRT1_STEP = Formula("-x**2")', chapters=("deep-newton",)),
    Mutant("formula_rule_newton_derivative", "formula rendered", "f'' of √(1 + x²) is shown "
                                                                 "with exponent -1/2", (),
           file="book/chapters/newton.py", old='Formula("(1 + x**2)**(-3/2)")',
           new='Formula("(1 + x**2)**(-1/2)")', chapters=("deep-newton",)),
    Mutant("formula_card_rule_exponent", "formula typed in a card", "item 28's explanation "
                                                                    "types Adam's average of "
                                                                    "g³", (28,),
           file="book/texts/l000.py", old="`v ← β₂v + (1-β₂)g²`", new="`v ← β₂v + (1-β₂)g³`"),
    Mutant("formula_card_rule_swapped", "formula typed in a card", "item 57's RMSProp average "
                                                                   "swaps ρ and 1 - ρ", (57,),
           file="book/texts/l001.py", old="`r ← ρr + (1-ρ) g⊙g`", new="`r ← (1-ρ)r + ρ g⊙g`"),
    Mutant("formula_card_rule_sign", "formula typed in a card", "item 106's gradient descent "
                                                                "on a quadratic multiplies by "
                                                                "1 + ηλ", (106,),
           file="book/texts/l003.py", old="`w ← (1 - ηλ) w`", new="`w ← (1 + ηλ) w`"),
    Mutant("formula_exercise_rule_exponent", "formula typed in an exercise", "the AdaGrad "
                                                                             "exercise's "
                                                                             "question types "
                                                                             "h ← h + g³", (),
           file="book/texts/practice.py", old="`h ← h + g²`", new="`h ← h + g³`",
           exercises=("sees the gradient 3 four times",)),
    Mutant("formula_derivation_sign", "formula rendered: a derivation", "the momentum "
                                                                       "chapter's elimination "
                                                                       "line says ηb_t = "
                                                                       "w_t - w_{t-1}", (),
           file="book/chapters/momentum.py", old='Formula("Eq(eta*b_t, w_p - w_t)"',
           new='Formula("Eq(eta*b_t, w_t - w_p)"', chapters=("deep-momentum",)),
    Mutant("formula_polynomial_coefficient", "formula rendered: a polynomial", "heavy ball's "
                                                                               "characteristic "
                                                                               "polynomial has "
                                                                               "1 + β + ηλ", (),
           file="book/chapters/momentum.py",
           old='HB_CHAR = Formula("z**2 - (1 + beta - eta*lamda)*z + beta")',
           new='HB_CHAR = Formula("z**2 - (1 + beta + eta*lamda)*z + beta")',
           chapters=("deep-momentum",)),
    Mutant("formula_armijo_direction", "formula rendered: a condition", "Armijo's condition "
                                                                        "as shown and tested "
                                                                        "is ≥", (),
           file="book/chapters/newton.py", old='Formula(\n    "f_t <= f_0 + c*t*s"',
           new='Formula(\n    "f_t >= f_0 + c*t*s"', chapters=("deep-newton",)),
    Mutant("formula_armijo_constant", "formula rendered: a condition", "Armijo's condition "
                                                                       "as shown and tested "
                                                                       "loses its c", (),
           file="book/chapters/newton.py", old='Formula(\n    "f_t <= f_0 + c*t*s"',
           new='Formula(\n    "f_t <= f_0 + t*s"', chapters=("deep-newton",)),
    Mutant("formula_card_rule_pair", "formula typed in a card", "item 57's RMSProp average is "
                                                                "swapped for its pair, "
                                                                "AdaGrad's sum r ← r + g⊙g (a "
                                                                "rule of the book, not the one "
                                                                "the card states)", (57,),
           file="book/texts/l001.py", old="`r ← ρr + (1-ρ) g⊙g`", new="`r ← r + g⊙g`"),
    Mutant("words_card_times_count", "words", "item 95's explanation says fc6's 37.7 M weights "
                                              "are 6 times the convolutions' 2.3 M, not 16", (95,),
           file="book/texts/l002.py", old="still 16 times the 2.3 M",
           new="still 6 times the 2.3 M"),
    Mutant("column_headings_swapped", "label", "the comparison's table heads its training "
                                               "losses 'validation loss' and its validation "
                                               "losses 'training loss'", (),
           file="book/chapters/compare.py",
           old='"rate", words["train/loss"], words["val/loss"]',
           new='"rate", words["val/loss"], words["train/loss"]',
           chapters=("deep-compare",)),
    Mutant("table_headings_swapped", "label", "the likelihood chapter's table, which no figure "
                                              "names, types its two test columns' headings "
                                              "beside values read elsewhere, swapped: 'test "
                                              "RMSE' over the test losses and 'test loss' over "
                                              "the RMSEs", (),
           file="book/chapters/mle.py", old='"test/loss",\n        "test/rmse",',
           new='("test RMSE", lambda r: kit.final(r, "test/loss")),\n'
               '        ("test loss", lambda r: kit.final(r, "test/rmse")),',
           chapters=("deep-likelihood",)),
    Mutant("table_reader_late_binding", "label", "a training table reads every column with the "
                                                 "last column's series (a closure bound late): "
                                                 "'training loss' over the test RMSEs", (),
           file="book/chapters/_common.py", old="lambda r, m=c: final(r, m)",
           new="lambda r: final(r, c)", chapters=("deep-likelihood",)),
    Mutant("heading_word_changed", "label", "the comparison's table types one heading again, "
                                            "a word changed: 'validation accuracy' over its "
                                            "test accuracies", (),
           file="book/chapters/compare.py",
           old='"seeds\' range",\n         words["test/accuracy"]]',
           new='"seeds\' range",\n         "validation accuracy"]', chapters=("deep-compare",)),
    # a stale ✔: a lecture experiment edited, the book rebuilt into the folder of an earlier
    # build (its saved results are reused only when their key covers the edited file)
    Mutant("stale_minibatch_biased", "stale result", "the mini-batch experiment divides by "
                                                     "B + 1, rebuilt over an earlier build",
           (14,), file="book/experiments/minibatch.py", old="gb = counts @ G / b",
           new="gb = counts @ G / (b + 1)", cached=True),
    Mutant("stale_momentum_escape", "stale result", "the escape race runs momentum with β 0, "
                                                    "rebuilt over an earlier build",
           (50,), file="book/experiments/momentum.py", old='("momentum", {"momentum": 0.9}),',
           new='("momentum", {"momentum": 0.0}),', cached=True),
    Mutant("stale_closed_form_hessian", "stale result", "the Hessian-vector product forms the "
                                                        "Hessian, rebuilt over an earlier build",
           (10,), file="book/experiments/closed_form.py",
           old="Xp.T @ (Xp @ vp)  # n p: H v without forming H", new="(Xp.T @ Xp) @ vp",
           cached=True),
    # a chapter exercise whose answer is its misconception (the build measures every answer)
    Mutant("exercise_nesterov_as_heavy_ball", "exercise", "the Nesterov exercise's answer "
                                                          "evaluates the gradient where w stands",
           (), file="book/chapters/practice.py", old="w1 = 1 - lr * (g0 + beta * g0)",
           new="w1 = 1 - lr * g0",
           chapters=("deep-momentum",)),
    Mutant("exercise_adagrad_rate_constant", "exercise", "the AdaGrad exercise's answer keeps "
                                                         "the rate constant",
           (), file="book/chapters/practice.py", old="answer = 1 / t ** 0.5",
           new="answer = 1 / t ** 0.0", chapters=("deep-adaptive",)),
    Mutant("exercise_l1_as_ridge", "exercise", "the Laplace-prior exercise's answer is the "
                                               "Gaussian prior's shrinkage",
           (), file="book/chapters/practice.py", old="answer = y - 1 / b",
           new="answer = y * 2 * b * b / (2 * b * b + 1)", chapters=("deep-regularization",)),
    Mutant("exercise_floor_small_lr", "exercise", "the noise-floor exercise's answer is the "
                                                  "small-η reading ησ²/4",
           (), file="book/chapters/practice.py", old="answer = lr * noise / (2 - lr) / 2",
           new="answer = lr * noise / 2 / 2", chapters=("deep-schedules",)),
    # a worked solution's hint that gives the wrong rate (its formula beside computed values)
    Mutant("hint_rmsprop_first_step", "exercise hint", "the RMSProp exercise's solution says "
                                                       "the first step is ten times η over 2",
           (), file="book/chapters/practice.py", old="`ηg/√((1 - α)g²) = η/√(1 - α)`, ten times",
           new="`ηg/√((1 - α)g²) = η/√(1 - α) = 0.05`, ten times",
           chapters=("deep-adaptive",)),
    Mutant("hint_batch_variance", "exercise hint", "the batch exercise's solution gives the "
                                                   "variance as 3 (σ²/B with σ² typed wrong)",
           (), file="book/chapters/practice.py", old="6²)/4 - 3² = 3.5`",
           new="6²)/4 - 3² = 6`", chapters=("deep-batch",)),
    Mutant("hint_stability_bound", "exercise hint", "the stability exercise's solution says "
                                                    "the bound is 0.2 (the plain step's)",
           (), file="book/chapters/practice.py", old="`2(1 + 0.9)/λ = 0.38`, the",
           new="`2(1 + 0.9)/λ = 0.2`, the", chapters=("deep-momentum",)),
    # ---- teaching sentences bound to an instrumented run (book/claims.py): each turned into
    # its opposite; the claim's row reads the page against what its run measured
    # a conceptual sentence with no number
    Mutant("taught_nesterov_current_point", "conceptual sentence",
           "Nesterov's gradient is said to be taken at the current point",
           (), file="book/chapters/momentum.py",
           old="evaluates the gradient where the velocity is about to\n"
               "carry the iterate, not where it is.",
           new="evaluates the gradient at the current point.", chapters=("deep-momentum",)),
    Mutant("taught_adagrad_rate_grows", "conceptual sentence", "AdaGrad's rate is said to grow "
                                                              "as 1/√t",
           (), file="book/chapters/adaptive.py", old="and its rate decays as\n${{f:adagrad_decay}}",
           new="and its rate grows as\n${{f:adagrad_decay}}", chapters=("deep-adaptive",)),
    Mutant("taught_l2_laplace_noise", "conceptual sentence", "L2 is said to assume heavy-tailed "
                                                            "Laplace noise",
           (5,), file="book/texts/l000.py", old="L2 assumes\nlight-tailed Gaussian noise",
           new="L2 assumes\nheavy-tailed Laplace noise"),
    # an exercise hint that gives the wrong rate
    Mutant("taught_hint_adagrad_grows", "exercise hint", "the AdaGrad hint says its rate grows",
           (), file="book/chapters/practice.py",
           old='its rate falls, it "\n        "never grows',
           new='its rate grows, it "\n        "never falls', chapters=("deep-adaptive",)),
    Mutant("taught_hint_modulus_beta", "exercise hint", "the heavy-ball hint gives the roots' "
                                                       "modulus as β, not √β",
           (), file="book/chapters/practice.py", old="both roots have modulus `√β`",
           new="both roots have modulus `β`", chapters=("deep-momentum",)),
    Mutant("taught_hint_decay_geometric", "exercise hint", "the 0.5/t hint says w falls "
                                                          "geometrically",
           (), file="book/chapters/practice.py",
           old='which falls like "\n        "`1/√t`, not geometrically',
           new='which falls "\n        "geometrically, not like `1/√t`',
           chapters=("deep-schedules",)),
    # a cell's output described the wrong way round
    Mutant("taught_cell_mean_median", "cell output", "the L2/L1 cell's best constants are said "
                                                    "to be the median and the mean",
           (5,), file="book/texts/l000.py",
           old="the L2 fit of a constant is the mean, the L1 fit the median",
           new="the L2 fit of a constant is the median, the L1 fit the mean"),
    Mutant("taught_cell_outlier_pull", "cell output", "the cell's outlier is said to pull L1, "
                                                     "not L2",
           (5,), file="book/texts/l000.py",
           old="and is pulled hard by outliers, L1 assumes heavier tails and is\nrobust to them",
           new="and is robust to outliers, L1 assumes heavier tails and is\npulled hard by them"),
    Mutant("taught_cell_shared_part", "cell output", "the correlated-average cell's shared part "
                                                    "is said to shrink with M",
           (68,), file="book/texts/l002.py",
           old="the independent part\nshrinks with `M`, the shared part stays",
           new="the shared part\nshrinks with `M`, the independent part stays"),
    # a definition swapped
    Mutant("taught_definition_bias", "definition", "bias defined as the scatter's measure",
           (65,), file="book/texts/l002.py", old="Bias is how far the *average* prediction",
           new="Variance is how far the *average* prediction"),
    Mutant("taught_definition_variance", "definition", "variance defined as bias",
           (65,), file="book/texts/l002.py", old="Variance is how much the predictions scatter",
           new="Bias is how much the predictions scatter"),
    Mutant("taught_definition_dartboard", "definition", "the dartboard picture swaps bias and "
                                                       "variance",
           (65,), file="book/texts/l002.py",
           old="bias is the distance of the cluster's centre from the bull's-eye, variance "
               "the\ncluster's spread",
           new="variance is the distance of the cluster's centre from the bull's-eye, bias "
               "the\ncluster's spread"),
    # a misconception in a "What to keep" box
    Mutant("taught_keep_bagging_bias", "what to keep", "bagging said to cut bias, boosting "
                                                      "variance",
           (), file="book/chapters/methodology.py",
           old="to cut variance, boosting adds weak models in\nsequence to cut bias",
           new="to cut bias, boosting adds weak models in\nsequence to cut variance",
           chapters=("deep-methodology",)),
    Mutant("taught_keep_large_batch_flat", "what to keep", "large batches said to leave the "
                                                          "sharp minima small ones keep",
           (), file="book/chapters/batch.py",
           old="so small batches leave sharp\nminima that large batches keep",
           new="so large batches leave sharp\nminima that small batches keep",
           chapters=("deep-batch",)),
    Mutant("taught_keep_rmsprop_decays", "what to keep", "RMSProp said to decay its rate",
           (), file="book/chapters/adaptive.py",
           old="divides by the root of an average and keeps its rate",
           new="divides by the root of an average and decays its rate",
           chapters=("deep-adaptive",)),
    Mutant("taught_keep_training_error_rises", "what to keep", "the training error said to "
                                                              "rise as a model grows",
           (), file="book/chapters/methodology.py",
           old="What to keep. The training error only falls as a model grows",
           new="What to keep. The training error only rises as a model grows",
           chapters=("deep-methodology",)),
    Mutant("taught_keep_convex_above_chords", "what to keep", "a convex function said to lie "
                                                             "above its chords",
           (), file="book/chapters/convexity.py",
           old="lies below its chords and above its tangents",
           new="lies above its chords and below its tangents", chapters=("deep-convexity",)),
    Mutant("taught_keep_ridge_bias_for_variance", "what to keep", "λ said to trade bias for "
                                                                 "variance",
           (), file="book/chapters/regularization.py",
           old="$; λ trades variance for bias, and the best λ is",
           new="$; λ trades bias for variance, and the best λ is",
           chapters=("deep-regularization",)),
    # ---- the census of teaching sentences (book/teaching.py): sentences bound since, each
    # turned by a swapped word, or reworded into neither phrase (the claim's row is on its
    # home page whatever the page says)
    # a "What to keep" line
    Mutant("census_keep_momentum_edge_shrinks", "what to keep", "momentum's stable range said "
                                                               "to shrink to 2(1 + β)",
           (), file="book/chapters/momentum.py", old="the stable range grows to",
           new="the stable range shrinks to", chapters=("deep-momentum",)),
    Mutant("census_keep_memory_beta", "what to keep", "momentum said to average over 1/β steps",
           (), file="book/chapters/momentum.py",
           old="Momentum averages gradients over about $1/(1 - \\\\beta)$ steps",
           new="Momentum averages gradients over about $1/\\\\beta$ steps",
           chapters=("deep-momentum",)),
    Mutant("census_keep_a_over_t_below", "what to keep", "a/t said to reach 1/t only when "
                                                        "ah < 1/2",
           (), file="book/chapters/schedules.py",
           old="a/t reaches the optimal 1/t only when ah > 1/2",
           new="a/t reaches the optimal 1/t only when ah < 1/2", chapters=("deep-schedules",)),
    Mutant("census_keep_conv_compute_swapped", "what to keep", "dense layers said to dominate "
                                                              "the compute, convolutions the "
                                                              "weights",
           (), file="book/chapters/conv_arithmetic.py",
           old="so convolutions dominate a\nnetwork's compute and dense layers its weights",
           new="so dense layers dominate a\nnetwork's compute and convolutions its weights",
           chapters=("deep-convolution",)),
    Mutant("census_keep_rotation_harmless", "what to keep", "a rotation said to leave the "
                                                           "diagonal preconditioner intact",
           (), file="book/chapters/newton.py",
           old="from the gradients' squares and which a rotation defeats;",
           new="from the gradients' squares and which a rotation leaves intact;",
           chapters=("deep-newton",)),
    Mutant("census_keep_test_error_reworded", "what to keep", "the test error said to keep "
                                                             "falling (neither phrase)",
           (), file="book/chapters/methodology.py", old="the test error falls, then\nrises,",
           new="the test error keeps\nfalling,", chapters=("deep-methodology",)),
    # a "What to keep" line turned into its misconception (not a word of teaching.OPPOSITES)
    Mutant("census_keep_momentum_first_order", "what to keep", "heavy ball said to be a "
                                                              "first-order recurrence",
           (), file="book/chapters/momentum.py",
           old="is a second-order linear recurrence whose roots give its rate",
           new="is a first-order linear recurrence whose factor gives its rate",
           chapters=("deep-momentum",)),
    Mutant("census_keep_correction_late", "what to keep", "Adam's bias correction said to "
                                                         "matter late",
           (), file="book/chapters/adaptive.py",
           old="a correction that matters in the first steps and\nfades",
           new="a correction that matters in the late steps and\ngrows",
           chapters=("deep-adaptive",)),
    Mutant("census_keep_batch_beyond_noise_scale", "what to keep", "a batch beyond the noise "
                                                                  "scale said to divide the "
                                                                  "steps",
           (), file="book/chapters/batch.py",
           old="beyond the noise scale $S^2/\\\\bar g^2$ buys\nlittle",
           new="beyond the noise scale $S^2/\\\\bar g^2$ divides\nthe steps it needs",
           chapters=("deep-batch",)),
    Mutant("census_keep_ml_single_mode", "what to keep", "maximum likelihood said to seek a "
                                                        "single mode",
           (), file="book/chapters/mle.py",
           old="maximum-likelihood models cover every mode.",
           new="maximum-likelihood models seek a single mode.", chapters=("deep-likelihood",)),
    Mutant("census_keep_constant_rate_converges", "what to keep", "a constant rate said to "
                                                                 "converge under noise",
           (), file="book/chapters/schedules.py",
           old="a constant rate hovers at a floor of about",
           new="a constant rate converges to the minimum, with errors of about",
           chapters=("deep-schedules",)),
    Mutant("census_keep_lbfgs_hessian", "what to keep", "L-BFGS said to build its curvature "
                                                       "from the Hessian",
           (), file="book/chapters/newton.py",
           old="L-BFGS builds curvature from gradients alone.",
           new="L-BFGS builds curvature from the Hessian.", chapters=("deep-newton",)),
    # a definition
    Mutant("census_definition_mse_laplace", "definition", "MSE defined as the Laplace "
                                                         "likelihood",
           (117,), file="book/texts/l004.py", old="MSE is the Gaussian likelihood of\nitem 7",
           new="MSE is the Laplace likelihood of\nitem 7"),
    Mutant("census_definition_bias_reworded", "definition", "bias defined as one prediction's "
                                                           "error (neither phrase)",
           (65,), file="book/texts/l002.py", old="Bias is how far the *average* prediction",
           new="Bias is how far a *single* prediction"),
    Mutant("census_definition_variance_reworded", "definition", "variance defined as the "
                                                               "distance from the truth "
                                                               "(neither phrase)",
           (65,), file="book/texts/l002.py", old="Variance is how much the predictions scatter",
           new="Variance is how far the predictions lie"),
    Mutant("census_definition_gradient_falls", "definition", "the gradient defined as the "
                                                            "direction of fastest descent",
           (11,), file="book/texts/l000.py", old="the direction in which the loss rises fastest",
           new="the direction in which the loss falls fastest"),
    Mutant("census_definition_noise_biased", "definition", "a mini-batch gradient's noise "
                                                          "said to have a nonzero mean",
           (98,), file="book/texts/l003.py", old="plus noise with zero mean",
           new="plus noise with a nonzero mean"),
    # what a cell prints
    Mutant("census_cell_sample_median", "cell output", "the cell's Gaussian maximizer said to "
                                                      "be the sample median",
           (2,), file="book/texts/l000.py", old="maximizer of the mean is the sample mean",
           new="maximizer of the mean is the sample median"),
    Mutant("census_cell_underflow_above", "cell output", "the product said to underflow for "
                                                        "densities above 1",
           (3,), file="book/texts/l000.py", old="densities below 1 underflows",
           new="densities above 1 underflows"),
    Mutant("census_cell_line_overfits", "cell output", "the cell's line said to overfit",
           (63,), file="book/texts/l002.py", old="the line\nunderfits, degree 5 fits",
           new="the line\noverfits, degree 5 fits"),
    # an exercise hint
    Mutant("census_hint_momentum_faster", "exercise hint", "momentum said to be faster on the "
                                                          "well-conditioned problem",
           (), file="book/chapters/practice.py", old="momentum is slower on this ",
           new="momentum is faster on this ", chapters=("deep-momentum",)),
    Mutant("census_hint_laplace_prior", "exercise hint", "the MAP hint says a Laplace prior is "
                                                        "L2",
           (), file="book/chapters/practice.py", old="A Gaussian prior is L2 (a Laplace prior ",
           new="A Laplace prior is L2 (a Gaussian prior ", chapters=("deep-regularization",)),
    Mutant("census_hint_newton_converges", "exercise hint", "pure Newton on √(1 + x²) said to "
                                                           "converge because f is convex",
           (), file="book/chapters/practice.py", old='"diverge although f is convex',
           new='"converge because f is convex', chapters=("deep-newton",)),
    Mutant("census_hint_adagrad_reworded", "exercise hint", "the AdaGrad hint says its rate "
                                                           "stays (neither phrase)",
           (), file="book/chapters/practice.py", old='its rate falls, it "\n        "never grows',
           new='its rate stays, it "\n        "never moves', chapters=("deep-adaptive",)),
    # a lecture exercise's hint (read on the card of the item it practises)
    Mutant("census_lecture_hint_adagrad_grows", "exercise hint", "the AdaGrad step hint says "
                                                                "the rate grows as √t",
           (55,), file="book/texts/practice.py",
           old='"decays as 1/√t however large g is', new='"grows as √t however large g is'),
    Mutant("census_lecture_hint_bagging_bias", "exercise hint", "the ensembles hint says "
                                                               "bagging reduces bias",
           (68,), file="book/texts/practice.py",
           old="up to B: bagging reduces variance.", new="up to B: bagging reduces bias."),
    Mutant("census_lecture_hint_l1_mean", "exercise hint", "the Laplace hint gives the L1 "
                                                          "loss's minimizer as the mean",
           (6,), file="book/texts/practice.py", old="whose minimizer is the median.",
           new="whose minimizer is the mean."),
    # a hint bound to what its exercise computes (its code's said dict) or to a claim's run:
    # a wrong rate, a wrong winner, a direction swapped, a wrong estimator, an open hint turned
    Mutant("bound_hint_adam_rate_ten", "exercise hint", "Adam's uncorrected first step said to be "
                                                       "ten times the corrected one (it is 3.16)",
           (), file="book/chapters/practice.py", old="`, about three times larger (`raw`",
           new="`, about ten times larger (`raw`", chapters=("deep-adaptive",)),
    Mutant("bound_hint_bound_faster", "exercise hint", "the 1/L bound said to be faster than the "
                                                      "best fixed rate (the wrong winner)",
           (), file="book/chapters/practice.py", old="`1 - 1/κ = 0.9`, is slower. ",
           new="`1 - 1/κ = 0.9`, is faster. ", chapters=("deep-convexity",)),
    Mutant("bound_hint_stability_grows", "exercise hint", "the stability hint says the iterate "
                                                         "grows while |1 - ηa| < 1",
           (), file="book/texts/practice.py", old="; it shrinks while `|1 - ηa|",
           new="; it grows while `|1 - ηa|", exercises=("(curvature a = 4)",)),
    Mutant("bound_hint_variance_of_median", "exercise hint", "the batch hint gives the "
                                                            "variance of the median as Var(one)/B",
           (), file="book/texts/practice.py", old="Independent draws: `Var(mean) = Var(one)/B`",
           new="Independent draws: `Var(median) = Var(one)/B`",
           exercises=("estimates the full gradient",)),
    Mutant("bound_hint_basins_large_rate", "exercise hint", "the basins hint says a large rate "
                                                           "never crosses the hill",
           (44,), file="book/texts/practice.py", old="and with a small rate it never crosses the ",
           new="and with a large rate it never crosses the "),
    Mutant("bound_hint_adagrad_small_early", "exercise hint", "the AdaGrad hint's problem turned: "
                                                             "a gradient small early, large later",
           (109,), file="book/texts/practice.py",
           old="a loss whose gradient is large early (far from the optimum, or a \"\n"
               "        \"warm-up phase) and small later",
           new="a loss whose gradient is small early (far from the optimum, or a \"\n"
               "        \"warm-up phase) and large later"),
    Mutant("bound_hint_code_runs_adam", "exercise hint", "the AdaGrad exercise's hint says its "
                                                        "code runs descentlab's Adam",
           (), file="book/chapters/practice.py", old="code runs descentlab's Adagrad on the line",
           new="code runs descentlab's Adam on the line", chapters=("deep-adaptive",)),
    # a card's explanation
    Mutant("census_card_l2_uniform", "card explanation", "L2 said to assume uniform noise "
                                                        "(neither phrase)",
           (5,), file="book/texts/l000.py", old="L2 assumes\nlight-tailed Gaussian noise",
           new="L2 assumes\nuniform noise"),
    Mutant("census_card_dartboard_reworded", "card explanation", "the dartboard's bias said to "
                                                                "be the cluster's spread "
                                                                "(neither phrase)",
           (65,), file="book/texts/l002.py",
           old="picture: bias is the distance of the cluster's centre from the bull's-eye",
           new="picture: bias is the spread of the cluster around the bull's-eye"),
    Mutant("census_card_shared_part_shrinks", "card explanation", "the shared part of an "
                                                                 "average said to shrink too "
                                                                 "(neither phrase)",
           (68,), file="book/texts/l002.py", old="shrinks with `M`, the shared part stays",
           new="shrinks with `M`, and so does the shared part"),
    Mutant("census_card_flexible_swapped", "card explanation", "a flexible model said to "
                                                              "trade variance for bias",
           (66,), file="book/texts/l002.py", old="flexible model trades bias for variance",
           new="flexible model trades variance for bias"),
    Mutant("census_card_bias_correction_biased", "card explanation", "the corrected average "
                                                                    "said to be biased",
           (111,), file="book/texts/l003.py", old="is an unbiased estimate at every step",
           new="is a biased estimate at every step"),
    Mutant("census_card_one_basin_concave", "card explanation", "a concave function said to "
                                                               "have one basin",
           (46,), file="book/texts/l001.py", old="A convex function has one basin",
           new="A concave function has one basin"),
    # a chapter's prose: a wrong sentence other than the one opposite the claim was told
    Mutant("census_prose_nesterov_halfway", "conceptual sentence", "Nesterov's gradient said "
                                                                  "to be taken halfway",
           (), file="book/chapters/momentum.py",
           old="evaluates the gradient where the velocity is about to\ncarry the iterate, not "
               "where it is.",
           new="evaluates the gradient halfway between the iterate and\nthe look-ahead point.",
           chapters=("deep-momentum",)),
    # ---- end of the teaching sentences' block
    # ---- figures read back from what was drawn, citations from one bibliography -----------
    # a figure: a log axis made linear, a unit changed, a legend reversed against its panel
    Mutant("figure_loss_log_to_linear", "figure", "the edge-of-stability figure draws the "
                                                  "loss on a linear axis",
           (), file="book/chapters/batch.py", old="b_.semilogy(lo, color=col",
           new="b_.plot(lo, color=col", chapters=("deep-batch",)),
    Mutant("figure_step_decay_log_to_linear", "figure", "the step-decay figure draws the loss "
                                                        "on a linear axis",
           (), file="book/chapters/schedules.py", old='ax.semilogy(curve, color="#D55E00"',
           new='ax.plot(curve, color="#D55E00"', chapters=("deep-schedules",)),
    Mutant("figure_cost_log_to_linear", "figure", "the cost-per-example figure draws the time "
                                                  "on a linear axis",
           (), file="book/chapters/compare.py",
           old='    ax.set_yscale("log")\n    ax.set_xlabel("batch size")',
           new='    ax.set_xlabel("batch size")', chapters=("deep-compare",)),
    Mutant("figure_curves_log_to_linear", "figure", "the comparison's loss curves drawn on "
                                                    "linear axes",
           (), file="book/chapters/compare.py",
           old='        ax.set_yscale("log")\n        ax.set_xlabel("step")',
           new='        ax.set_xlabel("step")', chapters=("deep-compare",)),
    Mutant("figure_unit_us_to_ms", "figure", "the cost figure's axis says ms, its data are µs",
           (), file="book/chapters/compare.py", old='ax.set_ylabel("time per example (µs)")',
           new='ax.set_ylabel("time per example (ms)")', chapters=("deep-compare",)),
    Mutant("figure_unit_us_to_s", "figure", "the cost figure's axis says s, its data are µs",
           (), file="book/chapters/compare.py", old='ax.set_ylabel("time per example (µs)")',
           new='ax.set_ylabel("time per example (s)")', chapters=("deep-compare",)),
    Mutant("figure_unit_us_to_ns", "figure", "the cost figure's axis says ns, its data are µs",
           (), file="book/chapters/compare.py", old='ax.set_ylabel("time per example (µs)")',
           new='ax.set_ylabel("time per example (ns)")', chapters=("deep-compare",)),
    Mutant("figure_eos_legend_reversed", "figure", "the loss panel's legend lists the rates "
                                                   "reversed against the sharpness panel's",
           (), file="book/chapters/batch.py", old="    b_.legend(fontsize=8)",
           new="    b_.legend(*[x[::-1] for x in b_.get_legend_handles_labels()], fontsize=8)",
           chapters=("deep-batch",)),
    Mutant("figure_wells_legend_reversed", "figure", "the B = 64 panel's legend lists the "
                                                     "wells reversed against the B = 1 panel's",
           (), file="book/chapters/batch.py", old='hx.legend(fontsize=7, loc="upper right")',
           new='hx.legend(*[x[::-1] if b == 64 else x for x in '
               'hx.get_legend_handles_labels()], fontsize=7, loc="upper right")',
           chapters=("deep-batch",)),
    Mutant("figure_eos_legend_colours", "figure", "the loss panel's legend entries are drawn "
                                                  "in each other's colours",
           (), file="book/chapters/batch.py", old="    b_.legend(fontsize=8)",
           new="    b_.legend(b_.get_lines()[::-1], [ln.get_label() for ln in b_.get_lines()], "
               "fontsize=8)",
           chapters=("deep-batch",)),
    # a typed formula: a sign (rendered from a Formula now, or read since β is a symbol)
    Mutant("formula_damped_limit_sign", "typed formula", "the damped buffer's filled step "
                                                         "(1 + τ)/(1 - β)",
           (), file="book/chapters/momentum.py", old='Formula("(1 - tau)/(1 - beta)")',
           new='Formula("(1 + tau)/(1 - beta)")', chapters=("deep-momentum",)),
    Mutant("formula_damped_limit_denominator", "typed formula", "the damped buffer's filled "
                                                                "step (1 - τ)/(1 + β)",
           (), file="book/chapters/momentum.py", old='Formula("(1 - tau)/(1 - beta)")',
           new='Formula("(1 - tau)/(1 + beta)")', chapters=("deep-momentum",)),
    Mutant("formula_hint_beta_sign", "typed formula", "the stability hint types its bound with "
                                                      "β and the sign turned, 2(1 - β)/λ",
           (), file="book/chapters/practice.py", old="`2(1 + 0.9)/λ = 0.38`, the",
           new="`2(1 - β)/λ = 0.38`, the", chapters=("deep-momentum",)),
    # a citation: another paper on the claim, a wrong year typed, a year against the record
    Mutant("cite_keskar_as_santurkar", "citation", "the sharp-minima card cites the batch-norm "
                                                   "paper",
           (71,), file="book/texts/l002.py", old='cite("keskar2017")',
           new='cite("santurkar2018")'),
    Mutant("cite_robbins_as_breiman", "citation", "the step-size conditions card cites the "
                                                  "bagging paper",
           (20,), file="book/texts/l000.py", old='cite("robbins1951")',
           new='cite("breiman1996")'),
    Mutant("cite_nesterov_wrong_year", "citation", "Nesterov's year typed 1984 beside the cell "
                                                   "printing 1983",
           (39,), file="book/texts/l001.py", old='{year("nesterov1983")})',
           new="1984)"),
    Mutant("cite_bishop_wrong_year", "citation", "Bishop's noise paper typed (Bishop, 1996)",
           (87,), file="book/texts/l002.py", old='{cite_in("bishop1995")}',
           new="(Bishop, 1996)"),
    Mutant("cite_bibliography_year_against_record", "citation", "the bibliography dates "
                                                                "Nesterov 1984, the record 1983",
           (39,), file="book/bibliography.py",
           old='Work("nesterov1983", ("Nesterov",), 1983,',
           new='Work("nesterov1983", ("Nesterov",), 1984,'),
    # ---- formulas cited from one registry (book/chapters/_formulas.py), figures whose scale
    # follows what they draw, more citations
    Mutant("formula_adam_sum_index_transposed", "typed formula", "Adam's unrolled average with "
                                                                 "its index transposed, β₁^(i-t)",
           (), file="book/chapters/_formulas.py",
           old='Formula("(1 - beta_1)*Sum(beta_1**(t - i)*g[i], (i, 1, t))")',
           new='Formula("(1 - beta_1)*Sum(beta_1**(i - t)*g[i], (i, 1, t))")',
           chapters=("deep-adaptive",)),
    Mutant("formula_effective_rate_sign", "typed formula", "momentum's effective rate "
                                                           "η/(1 + β)",
           (), file="book/chapters/_formulas.py", old='Formula("eta/(1 - beta)")',
           new='Formula("eta/(1 + beta)")', chapters=("deep-momentum",)),
    Mutant("formula_rmsprop_step_exponent", "typed formula", "RMSProp's step on a slope with "
                                                             "α^(t+1) for α^t",
           (), file="book/chapters/_formulas.py", old='Formula("eta/sqrt(1 - alpha**t)")',
           new='Formula("eta/sqrt(1 - alpha**(t + 1))")', chapters=("deep-adaptive",)),
    Mutant("formula_conv_out_dilation_sign", "typed formula", "the output length with "
                                                              "d(k + 1) for d(k - 1)",
           (), file="book/chapters/_formulas.py",
           old='Formula("floor((n + 2*p - d*(k - 1) - 1)/s) + 1")',
           new='Formula("floor((n + 2*p - d*(k + 1) - 1)/s) + 1")',
           chapters=("deep-convolution",)),
    Mutant("formula_batch_variance_correction", "typed formula", "the batch mean's variance "
                                                                 "with (N - B)/(N + 1)",
           (), file="book/chapters/_formulas.py", old='Formula("S**2/B*(N - B)/(N - 1)")',
           new='Formula("S**2/B*(N - B)/(N + 1)")', chapters=("deep-batch",)),
    Mutant("figure_momentum_training_log_dropped", "figure", "the momentum chapter's training "
                                                             "loss (under one decade, falling "
                                                             "geometrically) on a linear axis",
           (), file="book/chapters/_common.py",
           old="        drawn.append((s.steps, s.values))\n    if curves_need_log(drawn):",
           new="        drawn.append((s.steps, s.values))\n    if False:",
           chapters=("deep-momentum",)),
    Mutant("figure_early_stopping_log_dropped", "figure", "the early-stopping training loss "
                                                          "(0.9 decade) on a linear axis",
           (), file="book/chapters/_common.py",
           old="        drawn.append((s.steps, s.values))\n    if curves_need_log(drawn):",
           new="        drawn.append((s.steps, s.values))\n    if False:",
           chapters=("deep-methodology",)),
    Mutant("figure_cnn_training_log_dropped", "figure", "the CNN's training loss (half a "
                                                        "decade) on a linear axis",
           (), file="book/chapters/_common.py",
           old="        drawn.append((s.steps, s.values))\n    if curves_need_log(drawn):",
           new="        drawn.append((s.steps, s.values))\n    if False:",
           chapters=("deep-convolution",)),
    Mutant("cite_polyak_wrong_year", "citation", "Polyak's momentum typed 1965 beside the cell "
                                                 "printing 1964",
           (39,), file="book/texts/l001.py", old='momentum {year("polyak1964")}',
           new="momentum 1965"),
    Mutant("cite_duchi_wrong_year", "citation", "AdaGrad typed 2010, the record 2011",
           (39,), file="book/texts/l001.py", old='AdaGrad {year("duchi2011")}',
           new="AdaGrad 2010"),
    Mutant("cite_rmsprop_wrong_year", "citation", "RMSProp typed 2013, the lecture of 2012",
           (39,), file="book/texts/l001.py", old='RMSProp {year("tieleman2012")}',
           new="RMSProp 2013"),
    Mutant("cite_adam_preprint_wrong_year", "citation", "Adam's arXiv preprint typed 2013, "
                                                        "the record 2014",
           (39,), file="book/texts/l001.py", old='({year("kingma2015", preprint=True)} on arXiv',
           new="(2013 on arXiv"),
    Mutant("cite_santurkar_as_keskar", "citation", "the batch-norm card cites the sharp-minima "
                                                   "paper",
           (90,), file="book/texts/l002.py", old='work {cite_in("santurkar2018")} found',
           new='work {cite_in("keskar2017")} found'),
    # ---- the derivations' steps rendered from Formulas; every year bound to its work
    Mutant("formula_noisy_sgd_sign", "typed formula", "the noisy quadratic's SGD step with "
                                                      "(1 + ηh)w",
           (), file="book/chapters/_formulas.py",
           old='Formula("(1 - eta*h)*w - eta*sigma*xi")',
           new='Formula("(1 + eta*h)*w - eta*sigma*xi")', chapters=("deep-schedules",)),
    Mutant("formula_harmonic_step_exponent", "typed formula", "the a/t schedule's recursion "
                                                              "with a²σ²/t for a²σ²/t²",
           (), file="book/chapters/_formulas.py",
           old='Formula("(1 - a*h/t)**2*x + a**2*sigma**2/t**2"',
           new='Formula("(1 - a*h/t)**2*x + a**2*sigma**2/t"', chapters=("deep-schedules",)),
    Mutant("formula_batch_recursion_sign", "typed formula", "the batch recursion's "
                                                            "multiplicative noise subtracted",
           (), file="book/chapters/_formulas.py",
           old='Formula("((1 - eta*h)**2 + eta**2*c/B)*x + eta**2*s**2/B"',
           new='Formula("((1 - eta*h)**2 - eta**2*c/B)*x + eta**2*s**2/B"',
           chapters=("deep-batch",)),
    Mutant("formula_wells_transposed", "typed formula", "the wells' temperature ratios (the "
                                                        "flat well's cooling factor) with the "
                                                        "wells' curvatures transposed",
           (), file="book/chapters/_formulas.py",
           old='Formula(f"(2 - eta*lamda_{bottom})/(2 - eta*lamda_{top})"',
           new='Formula(f"(2 - eta*lamda_{top})/(2 - eta*lamda_{bottom})"',
           chapters=("deep-batch",)),
    Mutant("formula_bias_factor_exponent", "typed formula", "Adam's bias factor 1 - β^(t-1)",
           (), file="book/chapters/_formulas.py", old='Formula("1 - beta**t")',
           new='Formula("1 - beta**(t - 1)")', chapters=("deep-adaptive",)),
    Mutant("cite_momentum_other_paper_year", "citation", "momentum dated by Nesterov's paper, "
                                                         "1983",
           (39,), file="book/texts/l001.py", old='momentum {year("polyak1964")}',
           new='momentum {year("nesterov1983")}'),
    Mutant("cite_adam_conference_year", "citation", "Adam's conference paper typed 2016 after "
                                                    "'its', no name beside it",
           (39,), file="book/texts/l001.py", old='by its\n{year("kingma2015")} conference',
           new="by its\n2016 conference"),
    Mutant("cite_unnamed_author_year", "citation", "a year after a name the bibliography does "
                                                   "not hold, Rumelhart 1986",
           (39,), file="book/texts/l001.py", old='momentum {year("polyak1964")}, Nesterov',
           new="momentum, Rumelhart 1986, Nesterov"),
    # a card's sentence about what its cell computes, read against the values it printed
    Mutant("cards_cell_ravine_slower", "cell output", "momentum said to roll along the ravine "
                                                     "slower than SGD (the cell prints it far "
                                                     "ahead)",
           (24,), file="book/texts/l000.py", old="along the floor much faster than SGD",
           new="along the floor much slower than SGD"),
    Mutant("cards_cell_entropy_above", "cell output", "the five-1s die's entropy said to be "
                                                     "above a fair die's",
           (118,), file="book/texts/l004.py", old="its entropy is far below a fair die's",
           new="its entropy is far above a fair die's"),
    Mutant("cards_cell_adam_step_small", "cell output", "Adam's uncorrected first step said "
                                                       "to be too small",
           (112,), file="book/texts/l003.py", old="is not too small but too large",
           new="is not too large but too small"),
    Mutant("cards_cell_adam_labels_swapped", "cell output", "the cell's two runs swapped (its "
                                                           "values turn round, the page "
                                                           "unchanged)",
           (112,), file="book/texts/l003.py", old="bias_correction=corrected)",
           new="bias_correction=not corrected)"),
    Mutant("cards_cell_by_hand_differs", "cell output", "the by-hand cell said to differ in "
                                                       "the last digit",
           (51,), file="book/texts/l001.py", old="by hand agree to the last digit ",
           new="by hand differ in the last digit "),
    # a definition swapped
    Mutant("cards_definition_kl_sign", "definition", "KL's two expectations swapped",
           (1,), file="book/texts/l000.py",
           old="E_data[log P_data] - E_data[log P_model]`; the first",
           new="E_data[log P_model] - E_data[log P_data]`; the first"),
    Mutant("cards_definition_sgd_plus", "definition", "SGD defined as a step up the gradient",
           (72,), file="book/texts/l002.py", old="`W ← W - ηg` is the whole of SGD",
           new="`W ← W + ηg` is the whole of SGD"),
    Mutant("cards_definition_entropy_sign", "definition", "entropy typed without its minus "
                                                         "sign",
           (118,), file="book/texts/l004.py", old="`H(p) = -Σ p_i log p_i` is the expected",
           new="`H(p) = Σ p_i log p_i` is the expected"),
    Mutant("cards_definition_interval_local", "definition", "an interval's global minimum "
                                                           "defined without its endpoints",
           (9,), file="book/texts/l000.py", old="the local minima and the endpoints.",
           new="the local minima alone."),
    Mutant("cards_definition_nll_maximized", "definition", "maximum likelihood defined as "
                                                          "maximizing the negative "
                                                          "log-likelihood",
           (4,), file="book/texts/l000.py",
           old="Minimizing the negative log-likelihood is the\nsame problem",
           new="Maximizing the negative log-likelihood is the\nsame problem"),
    # a card's conceptual sentence turned
    Mutant("cards_memory_faster_to_turn", "card explanation", "a larger β said to be faster to "
                                                             "turn (one word of two swapped)",
           (26,), file="book/texts/l000.py", old="the smoother and the slower to turn",
           new="the smoother and the faster to turn"),
    Mutant("cards_saddle_last", "card explanation", "the adaptive methods said to leave the "
                                                   "saddle last",
           (114,), file="book/texts/l003.py", old="so they leave the saddle first",
           new="so they leave the saddle last"),
    Mutant("cards_rare_updates_small", "card explanation", "AdaGrad's rare updates said to be "
                                                          "small",
           (76,), file="book/texts/l002.py", old="each of its rare updates is large",
           new="each of its rare updates is small"),
    Mutant("cards_log_convex", "card explanation", "KL's non-negativity said to follow from a "
                                                  "convex log",
           (121,), file="book/texts/l004.py", old="on the concave log,",
           new="on the convex log,"),
    Mutant("cards_weight_decay_grows", "card explanation", "weight decay said to grow the "
                                                          "weights",
           (85,), file="book/texts/l002.py", old="first shrinks the\nweights by the factor",
           new="first grows the\nweights by the factor", only="l2_penalty"),
    # cards, items 1-33: typed formulas, numbers and conceptual sentences the swap of words
    # does not reach
    Mutant("cards_laplace_nll_sign", "card formula", "Laplace's negative log typed with - log 2b",
           (6,), file="book/texts/l000.py", old="`|y - μ|/b + log 2b`. Summed",
           new="`|y - μ|/b - log 2b`. Summed"),
    Mutant("cards_partial_exponent", "card formula", "∂f/∂x typed with 12x³ for 12x²",
           (32,), file="book/texts/l001.py", old="`f_x = 3y² + 12x²`", new="`f_x = 3y² + 12x³`"),
    Mutant("cards_velocity_limit_sign", "card formula", "momentum's limit velocity typed over "
                                                        "1+β₁", (25,), file="book/texts/l000.py",
           old="it converges to `-η∇L/(1-β₁)`", new="it converges to `-η∇L/(1+β₁)`"),
    Mutant("cards_rate_cap_number", "card number", "the learning rate's cap said to be 1/L",
           (15,), file="book/texts/l000.py", old="caps the learning rate at `2/L`",
           new="caps the learning rate at `1/L`"),
    Mutant("cards_eigenvalue_sum", "card explanation", "the second-order test said to ask for the"
                                                       " eigenvalues' sum to be positive",
           (9,), file="book/texts/l000.py", old="the test asks for all its eigenvalues to be\n",
           new="the test asks for its eigenvalues' sum to be\n"),
    Mutant("cards_flipping_add_up", "card explanation", "momentum's flipping gradients said to add"
                                                        " up", (24,), file="book/texts/l000.py",
           old="flipping terms partly cancel", new="flipping terms add up"),
    Mutant("cards_exact_step_farther", "card explanation", "one exact step said to go farther than"
                                                           " an epoch of cheap ones",
           (13,), file="book/texts/l000.py", old="those many cheap steps go much farther",
           new="the one exact step goes much farther"),
    # cards, items 34-66: a derivation step, a typed partial, a number a cell prints, a
    # conceptual sentence reworded into its misconception, a correction's sign
    Mutant("cards_chain_rule_exponent", "card explanation", "a derivation step's exponent "
                                                           "kept at 3 (the chain rule's result "
                                                           "typed as 6(2x - 1)³)",
           (34,), file="book/texts/l001.py", old="3(2x - 1)²·2 = 6(2x - 1)²`",
           new="3(2x - 1)²·2 = 6(2x - 1)³`"),
    Mutant("cards_partial_sign", "card explanation", "a partial derivative's sign inside its "
                                                    "square turned (f_x = 6(x+2))",
           (35,), file="book/texts/l001.py", old="`f_x = 6(x-2)`", new="`f_x = 6(x+2)`"),
    Mutant("cards_cell_share_removed", "cell output", "the share of the error ten steps at lr "
                                                     "0.01 remove changed (28 % for 18 %)",
           (43,), file="book/texts/l001.py", old="ten steps remove only 18 % of the error",
           new="ten steps remove only 28 % of the error"),
    Mutant("cards_nesterov_current_point", "card explanation", "Nesterov's gradient said to be "
                                                              "taken at the current point "
                                                              "(reworded, no word swapped)",
           (52,), file="book/texts/l001.py",
           old="Nesterov takes the gradient at the point momentum is about to reach, `w + αv`",
           new="Nesterov evaluates its gradient at the current point `w`, like momentum"),
    Mutant("cards_adam_correction_sign", "card explanation", "Adam's bias corrections typed "
                                                            "with a plus, 1/(1 + ρ^t)",
           (58,), file="book/texts/l001.py", old="corrected by `1/(1 - ρ^t)` for",
           new="corrected by `1/(1 + ρ^t)` for"),
    Mutant("cards_test_choice_fair", "card explanation", "choosing on the test set said to "
                                                        "leave its score fair (the "
                                                        "misconception)",
           (64,), file="book/texts/l002.py", old="would make its score optimistic",
           new="would leave its score a fair estimate"),
    Mutant("cards_window_exponent", "card explanation", "RMSProp's averaging window typed "
                                                       "as 1/(1 - ρ)² = 10",
           (57,), file="book/texts/l001.py", old="`1/(1 - ρ) = 10`", new="`1/(1 - ρ)² = 10`"),
    # cards, items 67-99: a typed formula evaluated, a conceptual sentence run, a cell computing
    # otherwise
    Mutant("cards_samme_alpha_sign", "formula", "SAMME's class term subtracted: α = log((1 - "
                                                "err)/err) - log(K - 1)",
           (69,), file="book/texts/l002.py", old="+ log(K - 1)`", new="- log(K - 1)`"),
    Mutant("cards_adagrad_no_root", "formula", "AdaGrad's step divided by G + ε, its root "
                                               "dropped",
           (76,), file="book/texts/l002.py", old="`W -= η g/√(G + ε)`. A parameter",
           new="`W -= η g/(G + ε)`. A parameter"),
    Mutant("cards_velocity_exponent", "derivation step", "the velocity's sum weighted by α^k, "
                                                         "the newest gradient the least",
           (99,), file="book/texts/l003.py", old="α^(t-k) ∇J(Θ_k)", new="α^k ∇J(Θ_k)"),
    Mutant("cards_flipping_adds_up", "card explanation", "a gradient flipping sign said to add "
                                                         "up in the velocity",
           (99,), file="book/texts/l003.py", old="step to step the terms cancel.",
           new="step to step the terms add up."),
    Mutant("cards_conv_weights_count", "number", "a 5 × 5 RGB layer's 16 filters counted "
                                                 "16·3·5 weights",
           (92,), file="book/texts/l002.py", old="`16·3·5·5` weights", new="`16·3·5` weights"),
    Mutant("cards_adadelta_steps_count", "number", "the figure's Adadelta said to reach the "
                                                   "bowl's minimum after about 300 steps",
           (78,), file="book/texts/l002.py", old="after about 730", new="after about 300"),
    Mutant("cards_nag_cell_wrong_point", "cell output", "the cell's NAG loop takes its "
                                                        "gradient at W + ηβa (the page "
                                                        "unchanged)",
           (74,), file="book/texts/l002.py", old="2 * (w - 0.05 * 0.9 * a)",
           new="2 * (w + 0.05 * 0.9 * a)"),
    # cards, items 100-131: typed formulas, derivation steps, numbers and misconceptions
    Mutant("cards_heavy_ball_rate_sign", "typed formula", "the optimal heavy-ball rate typed "
                                                         "with √L - √μ",
           (102,), file="book/texts/l003.py", old="gives `η = 4/(√L+√μ)²` and",
           new="gives `η = 4/(√L-√μ)²` and"),
    Mutant("cards_lookahead_step_sign", "derivation step", "the look-ahead update's (1 + ρ) "
                                                          "written (1 - ρ)",
           (105,), file="book/texts/l003.py", old="`x̃ += -ρ v_old + (1 + ρ) v_new`",
           new="`x̃ += -ρ v_old + (1 - ρ) v_new`"),
    Mutant("cards_adam_unrolled_exponent", "typed formula", "Adam's unrolled sum with α₁^k in "
                                                           "place of α₁^(t-k)",
           (111,), file="book/texts/l003.py", old="α₁^(t-k) g_k`", new="α₁^k g_k`"),
    Mutant("cards_damping_beta_not_root", "number", "the damped oscillation's factor said to be "
                                                   "β (0.3) instead of √β (0.55)",
           (103,), file="book/texts/l003.py", old="`0.55^t`, while", new="`0.3^t`, while"),
    Mutant("cards_uncorrected_step_tenth", "number", "Adam's uncorrected first step worked out "
                                                    "as 0.316 ρ",
           (112,), file="book/texts/l003.py", old="= 3.16 ρ` for the defaults",
           new="= 0.316 ρ` for the defaults"),
    Mutant("cards_nesterov_look_ahead_104", "card explanation", "Nesterov said to use the "
                                                              "gradient at the current point",
           (104,), file="book/texts/l003.py",
           old="uses the gradient at that look-ahead\npoint",
           new="uses the gradient at the current\npoint"),
    Mutant("cards_kldivloss_order_swapped", "card explanation", "torch's KLDivLoss said to take "
                                                               "log P as input, Q as target",
           (121,), file="book/texts/l004.py",
           old="the *log* of `Q` as its input\nand `P` as its target",
           new="the *log* of `P` as its input\nand `Q` as its target"),
    Mutant("cards_l1_costs_squared", "card explanation", "L1 said to charge an error of 10 "
                                                        "25 times an error of 2 (MSE's ratio)",
           (116,), file="book/texts/l004.py", old="an error of 10 costs five times",
           new="an error of 10 costs 25 times"),
    # the lectures' hints 000-004: a typed formula's sign and exponent, a derivation step, a
    # typed rule of code, a number, a conceptual sentence turned to its misconception, a
    # sentence about the exercise's code
    Mutant("lecture_hint_derivative_sign", "typed formula", "the non-convex hint types "
                                                           "f'(w) = 4w³ + 4w",
           (46,), file="book/texts/practice.py", old="`f'(w) = 4w³ - 4w` vanishes",
           new="`f'(w) = 4w³ + 4w` vanishes"),
    Mutant("lecture_hint_floor_exponent", "typed formula", "SGD's stationary variance typed "
                                                          "with σ for σ²",
           (98,), file="book/texts/practice.py", old="SGD's is `ησ²/(h(2 - ηh))`",
           new="SGD's is `ησ/(h(2 - ηh))`"),
    Mutant("lecture_hint_change_of_variables", "derivation step", "Nesterov's change of "
                                                                 "variables ends in (1 - ρ)v_new",
           (105,), file="book/texts/practice.py", old="x̃ - ρv + \"\n        \"(1 + ρ)v_new`",
           new="x̃ - ρv + \"\n        \"(1 - ρ)v_new`"),
    Mutant("lecture_hint_halving_doubles", "typed rule", "the halving rule typed as "
                                                        "lr *= 2",
           (54,), file="book/texts/practice.py", old="`if loss > previous: lr /= 2`",
           new="`if loss > previous: lr *= 2`"),
    Mutant("lecture_hint_beta1_window", "number", "β₁ = 0.9 said to average over about 100 "
                                                 "steps",
           (113,), file="book/texts/practice.py",
           old="β₁ = 0.9 averages the direction over about 10 steps",
           new="β₁ = 0.9 averages the direction over about 100 steps"),
    Mutant("lecture_hint_reverse_kl_covers", "conceptual sentence", "reverse KL said to make Q "
                                                                   "cover every peak",
           (122,), file="book/texts/practice.py",
           old="so Q must avoid the \"\n        \"valley between the peaks and sits on one",
           new="so Q must cover every \"\n        \"peak"),
    Mutant("lecture_hint_code_float32", "sentence about the code", "the forward-difference "
                                                                  "hint says its code computes "
                                                                  "in float32",
           (), file="book/texts/practice.py", old="The code computes it in float64.",
           new="The code computes it in float32.", exercises=("The forward difference",)),
    Mutant("lecture_hint_settles_narrow", "conceptual sentence", "gradient noise said to settle "
                                                                "the iterate in narrow basins",
           (71,), file="book/texts/practice.py",
           old="\"out of narrow basins, so it settles in wide ones.",
           new="\"out of wide basins, so it settles in narrow ones."),
    # the chapters' exercise hints: what a worked solution types, read against its code
    Mutant("hint_nesterov_sign", "hint formula", "Nesterov's first step typed with a minus "
                                                 "(`w₁ = 1 - η(g₀ - βg₀)`)", (),
           file="book/chapters/practice.py", old="`w₁ = 1 - η(g₀ + βg₀)`",
           new="`w₁ = 1 - η(g₀ - βg₀)`", chapters=("deep-momentum",)),
    Mutant("hint_nesterov_buffer_swapped", "hint derivation step", "the buffer after two "
                                                                   "Nesterov steps with β on "
                                                                   "the other gradient", (),
           file="book/chapters/practice.py", old="`b₁ = βg₀ + g₁`", new="`b₁ = g₀ + βg₁`",
           chapters=("deep-momentum",)),
    Mutant("hint_adam_exponent", "hint formula", "Adam's second moment after one step typed "
                                                 "without the square of g", (),
           file="book/chapters/practice.py", old="`v = (1 - β₂)g²`", new="`v = (1 - β₂)g`",
           chapters=("deep-adaptive",)),
    Mutant("hint_misconception_value", "hint misconception", "AdaGrad's misconception named "
                                                            "by the rate 0.1 (a number the "
                                                            "question gives), not 1", (),
           file="book/chapters/practice.py", old="would answer 1. The",
           new="would answer 0.1. The", chapters=("deep-adaptive",)),
    Mutant("hint_code_library", "hint about the code", "the cross-entropy exercise's code "
                                                       "said to ask numpy", (),
           file="book/chapters/practice.py", old="probabilities. The code asks torch.",
           new="probabilities. The code asks numpy.", chapters=("deep-likelihood",)),
    Mutant("hint_misconception_exponent", "hint misconception", "the decaying schedule's "
                                                               "misconception typed 0.5¹⁰ (an "
                                                               "exponent of the formula)", (),
           file="book/chapters/practice.py", old="would answer `0.5¹⁰⁰`",
           new="would answer `0.5¹⁰`", chapters=("deep-schedules",)),
    Mutant("hint_newton_convexity", "hint conceptual", "convexity said to make pure Newton "
                                                       "converge (the misconception the "
                                                       "exercise refutes)", (),
           file="book/chapters/practice.py", old="Convexity does not make pure \"\n"
                                                 "        \"Newton converge; a line search does.",
           new="Convexity makes pure \"\n        \"Newton converge; a line search is not "
               "needed.", chapters=("deep-newton",)),
    # listed sentences backed: a sentence once listed, turned to its misconception, is a ✘ of
    # the claim that now backs it
    Mutant("census_listed_rates_add", "conceptual sentence", "the chain rule's rates said to add",
           (33,), file="book/texts/l001.py", old="the rates multiply. Backpropagation",
           new="the rates add. Backpropagation"),
    Mutant("census_listed_average_lowers_floor", "conceptual sentence",
           "momentum's average said to lower the noise floor",
           (98,), file="book/texts/l003.py",
           old="What the average does not do is lower the noise floor.",
           new="What the average does is lower the noise floor."),
    Mutant("census_listed_smoothing_infinite", "conceptual sentence",
           "label smoothing said to still ask for infinite logits",
           (88,), file="book/texts/l002.py", old="so the network is never asked for infinite",
           new="so the network is still asked for infinite"),
    Mutant("census_listed_schedules_at_floor", "conceptual sentence",
           "the schedules said to end at the constant rate's floor",
           (), file="book/chapters/schedules.py",
           old="each of them ends far below the floor of a constant rate",
           new="each of them ends at the floor of a constant rate", chapters=("deep-schedules",)),
)  # fmt: skip

_RUNNER = r"""
import dataclasses, json, re, sys
class NotApplicable(Exception):
    # raised by a patch that finds its target gone -- at patch time or later, inside the
    # build (a patched method called by a card): every instance is remembered, so a card
    # that turns it into a ✘ row is never counted as a catch
    raised = []
    def __init__(self, why):
        super().__init__(why)
        NotApplicable.raised.append(str(why))
import os
import descentlab
# the mutated copy, not an installed descentlab (an editable install points elsewhere)
_here = os.path.realpath(descentlab.__file__)
_copy = os.path.realpath(os.environ["PYTHONPATH"].split(os.pathsep)[0])
if not _here.startswith(_copy + os.sep):
    raise SystemExit(f"descentlab was imported from {_here}, not the copy under {_copy}")
patch = sys.argv[3]
try:
    exec(patch, {"NotApplicable": NotApplicable, "__name__": "mutant"})
except NotApplicable as exc:
    print(json.dumps({"applicable": False, "why": str(exc)}))
    raise SystemExit(0)
from pathlib import Path
from descentlab.book.build import card, evaluate
try:  # (code from before the book checked restatements: nothing to check them by)
    from descentlab.book.build import page_texts
    from descentlab.book.facts import restated
except ImportError:
    page_texts = restated = None
try:  # (code from before a restated result was cited from one registry)
    from descentlab.book.facts import retyped
    from descentlab.book.texts._facts import FACTS
except ImportError:
    retyped = FACTS = None
from descentlab.book.lectures import LECTURES
from descentlab.book.model import Context, shown_by
from descentlab.book.render.pages import LecturePage, render_lecture
items = {int(i) for i in sys.argv[2].split(",") if i}
only = sys.argv[4]
stems = {s for s in sys.argv[5].split(",") if s}
data = Path(sys.argv[9]) if len(sys.argv) > 9 and sys.argv[9] else None
ctx = Context(True, data, lambda m: None)
fails, texts, by_item, said = 0, [], {}, {}
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
for lec in LECTURES:
    cards = []
    for it in lec.items:
        if it.number not in items:
            continue
        it = dataclasses.replace(it, show=tuple(f for f in it.show if only in shown_by(f)))
        if not it.show:
            raise SystemExit(f"item {it.number} has no evidence matching {only!r}")
        cards.append(card(it, evaluate(it, ctx)))
    if not cards:
        continue
    said[lec.slug + ".html"] = "\n\n".join(c.explain for c in cards)
    page = LecturePage(lec.subject, lec.origin, lec.summary, lec.slug + ".html", cards)
    html = render_lecture(page, "quick setting (mutant)")
    (out / page.filename).write_text(html, encoding="utf-8")
    # the ✘ rows card by card: a card is <section class="claim ..." id="i<number>">
    for sec in re.split(r'(?=<section class="claim[^"]*" id="i\d+">)', html):
        head = re.match(r'<section class="claim[^"]*" id="i(\d+)">', sec)
        for m in re.finditer(r'<span class="no">✘</span></td><td>(.*?)</td><td>(.*?)</td>', sec):
            fails += 1
            texts.append(m.group(1)[:120] + " | " + m.group(2)[:80])
            key = head.group(1) if head else "page"
            by_item[key] = by_item.get(key, 0) + 1
from descentlab.book.chapters import CHAPTERS
from descentlab.book.render.chapter import render_chapter
for make in CHAPTERS:
    if make.stem not in stems:
        continue
    page = make(ctx)
    if page_texts is not None:
        said.update(page_texts([], [page]))
    (out / page.filename).write_text(render_chapter(page, "quick setting (mutant)"), "utf-8")
    for part in page.parts:
        for c in part.checks:
            if c.failed:
                fails += 1
                texts.append(c.text[:120] + " | " + str(c.measured)[:80])
                key = f"{make.stem}#{part.anchor}"
                by_item[key] = by_item.get(key, 0) + 1
from descentlab.book.build import exercise
asked = json.loads(sys.argv[6])
for lec in LECTURES:
    for i, ex in enumerate(lec.exercises, 1):
        if not any(a in ex.question for a in asked):
            continue
        view = exercise(ex)
        said[lec.slug + ".html"] = said.get(lec.slug + ".html", "") + "\n\n" + ex.solution
        if view.check is not None and view.check.failed:
            fails += 1
            texts.append(view.check.text[:120] + " | " + str(view.check.measured)[:80])
            key = f"{lec.slug}#ex{i}"
            by_item[key] = by_item.get(key, 0) + 1
# a quantity two of the pages built state differently (the book checks it over every page)
for found in restated(said) if restated is not None else ():
    fails += 1
    texts.append("restated differently: " + found[:160])
    by_item["restated"] = by_item.get("restated", 0) + 1
for found in retyped(said, FACTS) if retyped is not None else ():
    fails += 1
    texts.append("typed, not cited: " + found[:160])
    by_item["restated"] = by_item.get("restated", 0) + 1
# the API pages' stated defaults against the signatures
if sys.argv[7] == "api":
    sys.path.insert(0, sys.argv[8])
    import api_pages
    check = getattr(api_pages, "default_contradictions", lambda: [])
    for found in check():
        fails += 1
        texts.append("API default: " + found[:160])
        by_item["api"] = by_item.get("api", 0) + 1
# what the mutant names to build and the book no longer has: nothing of it was built
missing = sorted(items - {it.number for lec in LECTURES for it in lec.items})
missing = [f"item {i}" for i in missing]
missing += [f"chapter {s}" for s in sorted(stems - {c.stem for c in CHAPTERS})]
missing += [f"exercise {a!r}" for a in asked
            if not any(a in ex.question for lec in LECTURES for ex in lec.exercises)]
if NotApplicable.raised:
    print(json.dumps({"applicable": False, "why": "raised during the build: "
                      + NotApplicable.raised[0]}))
elif missing:
    print(json.dumps({"applicable": False, "why": "not in the book: " + ", ".join(missing)}))
else:
    print(json.dumps({"applicable": True, "fails": fails, "texts": texts, "by_item": by_item}))
"""


def _copy_src(tmp: Path) -> Path:
    src = tmp / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    return src


def _apply(mutant: Mutant, src: Path) -> str | None:
    """Apply a textual mutant in the copy; returns why it is not applicable, or None."""
    if not mutant.file:
        return None
    path = src / "descentlab" / mutant.file
    if not path.is_file():
        return f"{mutant.file} is gone"
    text = path.read_text(encoding="utf-8")
    n = text.count(mutant.old)
    if n != 1:
        return f"the text to mutate occurs {n} times in {mutant.file} (expected once)"
    path.write_text(text.replace(mutant.old, mutant.new), encoding="utf-8")
    return None


def _build(
    src: Path,
    items: tuple[int, ...],
    patch: str,
    only: str,
    out: Path,
    timeout: int,
    chapters: tuple[str, ...] = (),
    exercises: tuple[str, ...] = (),
    api: bool = False,
    data: Path | None = None,
) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONWARNINGS": "ignore"}
    args = [str(out), ",".join(map(str, items)), patch, only, ",".join(chapters)]
    args += [json.dumps(list(exercises)), "api" if api else "", str(ROOT / "scripts")]
    args += [str(data) if data is not None else ""]
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"applicable": True, "error": (proc.stderr or proc.stdout)[-600:]}
    return json.loads(lines[-1])


def run(mutants: list[Mutant], timeout: int, log=print) -> dict[str, dict]:
    """Baseline, then each mutant; returns ``{name: outcome}``."""
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="descentlab-mutants-") as tmp_s:
        tmp = Path(tmp_s)
        base_src = _copy_src(tmp / "base")
        base: dict = {"applicable": True, "fails": 0, "texts": []}
        t0 = time.perf_counter()
        for only in sorted({m.only for m in mutants}):
            group = [m for m in mutants if m.only == only]
            items = tuple(sorted({i for m in group for i in m.items}))
            stems = tuple(sorted({c for m in group for c in m.chapters}))
            asked = tuple(sorted({q for m in group for q in m.exercises}))
            api = any(m.api for m in group)
            b = _build(base_src, items, "", only, tmp / "base" / "book", timeout, stems, asked, api)
            base["fails"] += b.get("fails", 1)
            base["texts"] += b.get("texts", [b.get("error", "")])
        ok = base["fails"] == 0
        why = "" if ok else " -- " + str(base["texts"])
        log(
            f"baseline: {base['fails']} ✘ on the unmutated code "
            f"({time.perf_counter() - t0:.0f} s){why}"
        )
        results["(baseline)"] = base
        for m in mutants:
            t1 = time.perf_counter()
            work = tmp / m.name
            src = _copy_src(work)
            data = work / "data" if m.cached else None
            earlier = (
                _build(src, m.items, "", m.only, work / "book", timeout, m.chapters,
                       m.exercises, m.api, data)
                if m.cached else {}
            )  # fmt: skip
            why = _apply(m, src)
            if earlier.get("fails") or "error" in earlier:
                out = {"applicable": True, "error": f"the earlier build failed: {earlier}"}
            elif why is not None:
                out = {"applicable": False, "why": why}
            else:
                out = _build(
                    src, m.items, m.patch, m.only, work / "book", timeout, m.chapters,
                    m.exercises, m.api, data,
                )  # fmt: skip
            results[m.name] = out
            if not out.get("applicable", True):
                verdict = f"NOT APPLICABLE ({out['why']})"
            elif "error" in out:
                verdict = f"ERROR (not counted as caught): {out['error'].strip().splitlines()[-1:]}"
            elif out["fails"] > 0:
                where = ", ".join(f"{k} ({n})" for k, n in out.get("by_item", {}).items())
                verdict = f"caught: {out['fails']} ✘ on items {where} -- {out['texts'][0]}"
            else:
                verdict = "SURVIVED (no ✘)"
            log(f"{m.name:32s} [{m.area}] {verdict} ({time.perf_counter() - t1:.0f} s)")
            shutil.rmtree(work, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="mutants to run (default: all)")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per build (default 900)")
    ap.add_argument("--json", help="also write the outcomes to this file")
    args = ap.parse_args(argv)
    if args.list:
        for m in MUTANTS:
            where = [*map(str, m.items), *m.chapters, *m.exercises]
            print(f"{m.name:32s} [{m.area}] {m.what} ({', '.join(where)})")
        return 0
    known = {m.name: m for m in MUTANTS}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        print(f"unknown mutant(s) {unknown}; valid: {', '.join(known)}", file=sys.stderr)
        return 2
    chosen = [known[n] for n in args.names] if args.names else list(MUTANTS)
    t0 = time.perf_counter()
    results = run(chosen, args.timeout, log=lambda msg: print(msg, flush=True))
    wall = time.perf_counter() - t0
    applicable = [m for m in chosen if results[m.name].get("applicable", True)]
    caught = [
        m
        for m in applicable
        if results[m.name].get("fails", 0) > 0 and "error" not in results[m.name]
    ]
    inapplicable = len(chosen) - len(applicable)
    baseline_ok = results["(baseline)"].get("fails") == 0
    errors = sum("error" in results[m.name] for m in applicable)
    print(f"\nscore: {len(caught)} of {len(chosen)} mutants caught"
          f" ({inapplicable} not applicable; baseline "
          f"{'clean' if baseline_ok else 'NOT clean'})")  # fmt: skip
    print(
        f"applied {len(applicable)}, caught {len(caught)}, survived "
        f"{len(applicable) - len(caught) - errors}, errors {errors}, not applicable "
        f"{inapplicable}; wall time {wall:.0f} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0 if baseline_ok and len(caught) == len(chosen) else 1


if __name__ == "__main__":
    raise SystemExit(main())
