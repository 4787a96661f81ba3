"""The five lectures' 131 items (``shared/seed_items.md``), in order, as data.

One :class:`~descentlab.book.model.Item` per item of seed_items.md, numbered as there; an
item's ``show`` names the evidence functions that compute its checks (the card's "shown by"
line is derived from them), ``framing`` marks a framing slide with nothing to compute, and
``rewrite`` says where the book runs a rule differently from the lecture's text.
"""

from __future__ import annotations

import dataclasses

from descentlab.book import convolution as CV
from descentlab.book import depth as DP
from descentlab.book import descent as D
from descentlab.book import generalization as G
from descentlab.book import likelihood as LK
from descentlab.book import optimizers as O
from descentlab.book import schedules as SC
from descentlab.book import terrains as T
from descentlab.book.checks import from_experiment as E
from descentlab.book.model import Bound as P
from descentlab.book.model import Item, Lecture
from descentlab.book.render import experiment_figures as EF
from descentlab.book.render.claim_panels import PANELS, panel_figure
from descentlab.book.texts import EXERCISES as _EXERCISES
from descentlab.book.texts import TEACH as _TEACH

__all__ = ["EXPERIMENTS", "ITEMS", "LECTURES"]


def panel(name: str):
    """A figure of one claim panel drawn from an experiment's data."""

    def draw(result):
        return panel_figure(PANELS[name][1], result.data)

    draw.shown_by = f"panel {name}"
    return draw


def whole(name: str):
    """The experiment's own figure."""

    def draw(result):
        return EF.figures(result)[name]

    return draw


def regularizers(**labels: str) -> tuple[P, ...]:
    """Each regularizer's mechanism, then whether it generalizes better (labelled as given):
    the evidence of an item that names regularizers (keys of the regularization data)."""
    mechanisms = tuple(P(G.regularizer_mechanism, key) for key in labels)
    return mechanisms + tuple(P(G.generalizes_better, key, label) for key, label in labels.items())


_VEL = "m ← βm - η∇L; w ← w + m"

ITEMS: tuple[Item, ...] = (
    # ---------------------------------------------------------------- 000: Parrot Session 03
    Item(
        1,
        "Review: MLE",
        "C",
        "Training aims to make the model distribution P_model equal to the data distribution "
        "P_data",
        "P_model 과 P_data 가 같아지도록",
        show=(LK.distribution_match,),
    ),
    Item(
        2,
        "Review: MLE",
        "F",
        "Maximum likelihood: ŵ = argmax_w p_model(X | w)",
        "ŵ = argmax p(X|w)",
        show=(LK.mle,),
    ),
    Item(
        3,
        "Review: MLE",
        "F",
        "Under iid sampling the likelihood is a product ∏ p_model(x_i | w)",
        "i.i.d",
        show=(LK.mle,),
    ),
    Item(
        4,
        "Review: MLE",
        "C",
        "The log turns the product into a sum and leaves the argmax unchanged",
        "로그를 씌우면 합으로 나타낼 수 있습니다",
        show=(LK.mle,),
    ),
    Item(
        5,
        "Review: MLE",
        "C",
        "The choice of model distribution determines the loss (Laplace → L1, Gaussian → L2)",
        "어떤 분포를 가정하느냐에 따라 loss가 달라집니다",
        show=(P(LK.nll, "laplace"), P(LK.nll, "normal")),
    ),
    Item(
        6,
        "Review: MLE",
        "F",
        "A Laplace likelihood gives the L1 loss (the constants drop out)",
        "Laplace - L1 loss",
        show=(P(LK.nll, "laplace"),),
    ),
    Item(
        7,
        "Review: MLE",
        "F",
        "A Gaussian likelihood gives the L2 loss (the constants drop out)",
        "Gaussian – L2 loss",
        show=(P(LK.nll, "normal"),),
    ),
    Item(
        8,
        "Optimization: 1",
        "C",
        "Setting the derivative to zero solves a quadratic, convex loss in one shot (normal "
        "equations)",
        "미분해서 0이 되는 점을 찾으면 한번에 답을 구할 수 있습니다",
        show=(E("closed_form", "normal equations", "same w", figure=panel("normal_equations")),),
    ),
    Item(
        9,
        "Optimization: 1",
        "C",
        "The second-derivative test: f'' > 0 at a stationary point is a local minimum",
        "이계도함수가 0보다 크면 극솟값",
        show=(E("closed_form", "second-derivative"),),
    ),
    Item(
        10,
        "Optimization: 1",
        "C",
        "The Hessian costs O(np² + p³); with Hessian-vector products O(np + rt·p)",
        "O(np^2+p^3), 최적화하면 O(np+rt*p)",
        show=(
            E(
                "closed_form",
                "p² to p³",
                "grows like p",
                "many gradients",
                figure=panel("hessian_cost"),
            ),
        ),
    ),
    Item(
        11,
        "Gradient Descent",
        "A",
        "Gradient descent: take the loss-decreasing direction, move by a preset rate, repeat",
        "loss가 줄어드는 방향으로 학습률만큼 이동",
        show=(D.descent_steps,),
    ),
    Item(
        12,
        "Gradient Descent",
        "A",
        "Full-batch GD: w ← w - η (1/N) Σ ∇L_i (the full gradient is the examples' mean)",
        "w^{t+1} = w^t - η 1/N Σ ∇L_i",
        show=(E("minibatch", "mean of the per-example"), D.unrolled),
    ),
    Item(
        13,
        "Stochastic Gradient Descent",
        "A",
        "SGD: the same update with the mean gradient of a random batch B",
        "좀 더 작은 subset인 Batch, B 를 랜덤하게 뽑아서",
        show=(O.sgd_formula, D.epoch_sampler),
    ),
    Item(
        14,
        "SGD: why it works",
        "F",
        "The batch gradient is an unbiased estimate of the full gradient (variance ∝ 1/B)",
        "전체 gradient를 batch의 gradient로 사용할 수 있다",
        show=(E("minibatch", "unbiased", "1/B", "tr(Σ)/B", figure=panel("minibatch")),),
    ),
    Item(
        15,
        "Scale of learning rate",
        "G/C",
        "Too large a learning rate makes GD diverge",
        "발산",
        show=(D.lr_scale,),
    ),
    Item(
        16,
        "Scale of learning rate",
        "C",
        "Too small a learning rate makes descent extremely slow",
        "작게 설정한다면 내려오는데 한세월",
        show=(D.lr_scale,),
    ),
    Item(
        17,
        "Scale of learning rate",
        "C",
        "Practice: try a large rate first and lower it if training is unstable; even then it does "
        "not converge exactly",
        "일반적으로 큰 학습률로 학습 시켜보고 불안정하다면 학습률을 낮추는 식으로 진행합니다",
        show=(D.lr_search, SC.hover_at_optimum),
    ),
    Item(
        18,
        "Fixed learning rate",
        "G/E",
        "Fixed-lr SGD keeps hovering around the optimum, even when started at it (random batches)",
        "아예 처음부터 w를 최적 값으로 설정했지만 진동합니다",
        show=(SC.hover_at_optimum, SC.noise_floor),
    ),
    Item(
        19,
        "Learning rate scheduling",
        "F",
        "Unrolling the updates: w^t = w^0 - η Σ ∇L_k; convergence needs the series to converge",
        "언젠가는 W의 변화가 없어야 합니다",
        show=(D.unrolled,),
    ),
    Item(
        20,
        "Learning rate scheduling",
        "F",
        "Convergence needs Σ η_t = ∞ and Σ η_t² < ∞ (Robbins–Monro)",
        "Σ η_t = ∞, Σ η_t² < ∞",
        show=(SC.robbins_monro, SC.eta_over_t),
    ),
    Item(
        21,
        "Learning rate scheduling",
        "E",
        "η_t = η/t satisfies both: decay the rate over time",
        "η_t = η/t",
        show=(SC.eta_over_t,),
    ),
    Item(
        22,
        "Learning rate scheduling",
        "T",
        "torch's schedulers: Lambda, Multiplicative, Step, MultiStep, Constant, Linear, "
        "Exponential, Polynomial (and CosineAnnealing)",
        "COSINEANNEALINGLR 을 최근 대회에서는 많이 사용",
        show=(SC.torch_schedules,),
    ),
    Item(
        23,
        "Momentum",
        "C",
        "Even with a good rate and schedule SGD is slow: the motivation for momentum",
        "여전히 느립니다",
        show=(T.sgd_is_slow,),
    ),
    Item(
        24,
        "Momentum",
        "C/G",
        "Remembering the rolling direction keeps the iterate moving along a ravine's floor",
        "오른쪽으로 이동하던 모멘텀이 있기에 최적점으로 빠르게 이동할 수 있습니다",
        show=(P(T.ravine, ("momentum",)),),
    ),
    Item(
        25,
        "Momentum",
        "A",
        "Momentum: m ← β₁m - η∇L, w ← w + m",
        "m^{t+1} = β1 m^t - η ∇L",
        show=(P(O.velocity_formula, text=_VEL),),
    ),
    Item(
        26,
        "Momentum",
        "C",
        "β sets how long past gradients are remembered (closer to 1: longer)",
        "1에 가까울 수록 오래 기억됩니다",
        show=(O.memory_length,),
    ),
    Item(
        27,
        "RMSprop",
        "C/G",
        "Large gradients along W₂, small along W₁: big oscillating moves on W₂, tiny progress on "
        "W₁",
        "W_2 방향을 보면 크게 움직입니다 … W_1 방향을 보면 되게 조금씩",
        show=(T.problems_of_sgd, P(T.ravine, ("rmsprop",))),
    ),
    Item(
        28,
        "RMSprop",
        "A",
        "RMSProp: v ← β₂v + (1-β₂)g², w ← w - η g/(√v + ε): less along recently large gradients",
        "v^{t+1} = β2 v^t + (1-β2)(∇L ⊙ ∇L)",
        show=(
            P(
                O.rms_formula,
                text="v ← β2 v + (1-β2) g²; w -= η g/(√v + ε)",
                eps=1e-8,
                inside=False,
            ),
            O.rms_per_coordinate,
        ),
    ),
    Item(
        29,
        "Adam = RMSprop + Momentum",
        "C",
        "Adam = RMSProp + momentum; often best, but task-dependent (plain SGD sometimes wins)",
        "둘이 섞은 버전입니다",
        show=(O.adam_is_rms_plus_momentum, T.no_best),
    ),
    Item(
        30,
        "Summary",
        "C",
        "Pipeline: match distributions → the mismatch is the loss → backprop gives the gradient → "
        "step downhill",
        framing="the lecture's closing summary of the steps shown by items 1-28",
    ),
    # ---------------------------------------------------------------- 001: derivatives notebook
    Item(
        31,
        "1. 미분",
        "E",
        "d/dx (3x³ - 2x + 1) = 9x² - 2",
        "f(x) = 3x^3 - 2x + 1",
        show=(P(D.derivative, "cubic"),),
    ),
    Item(
        32,
        "편미분",
        "E",
        "f = 3xy² + 4x³ - 5y² + 1: f_x = 3y² + 12x², f_y = 6xy - 10y",
        "f_x = 3y^2 + 12x^2, f_y = 6xy - 10y",
        show=(P(D.derivative, "cubic2d"),),
    ),
    Item(
        33,
        "Chain rule",
        "F",
        "Chain rule: d/dx f(g(x)) = f'(g(x))·g'(x)",
        "dy/dx = f'(g(x)) g'(x)",
        show=(D.chain_rule,),
    ),
    Item(
        34,
        "Chain rule",
        "E",
        "d/dx (2x - 1)³ = 6(2x - 1)²",
        "(2x-1)^3",
        show=(P(D.derivative, "chain_cubic"),),
    ),
    Item(
        35,
        "편미분",
        "E",
        "f = 3(x-2)² + (y-2)²: f_x = 6(x-2), f_y = 2(y-2)",
        "f(x, y) = 3(x-2)^2 + (y-2)^2",
        show=(P(D.derivative, "bowl"),),
    ),
    Item(
        36,
        "최적화",
        "C",
        "Training is an optimization problem min_{w,b} L(w, b); the loss measures output vs target",
        "min L(w, b)",
        show=(LK.distribution_match, D.descent_steps),
    ),
    Item(
        37,
        "최적화",
        "E",
        "Four ways to minimize x² - 4x + 6: complete the square, f' = 0, try every x, iterate; x* "
        "= 2, f* = 2",
        "(x-2)^2 + 2",
        show=(
            E(
                "closed_form",
                "1. completing",
                "2. the derivative",
                "3. trying",
                "4. gradient descent",
                figure=panel("four_ways"),
            ),
        ),
    ),
    Item(
        38,
        "최적화",
        "C",
        "Deep learning must iterate: a start, a direction, a step of the learning rate",
        "수치적 반복법",
        show=(E("closed_form", "4. gradient descent"), D.descent_steps),
    ),
    Item(
        39,
        "Optimizer",
        "T",
        "The optimizers by search direction and learning rate, with their years (1945, 1964/1983, "
        "2011, 2012, 2014)",
        "탐색 방향 / 학습률",
        show=(T.table_axes,),
    ),
    Item(
        40,
        "Gradient",
        "C",
        "The gradient points where the function rises fastest; descent follows its negative",
        "가장 가파르게 증가하는 방향",
        show=(D.steepest,),
    ),
    Item(
        41,
        "경사하강법",
        "A",
        "GD update w ← w - ε∇f(w)",
        "w^{(k+1)} = w^{(k)} - ε∇f(w^{(k)})",
        show=(P(O.sgd_formula, lr=0.2),),
    ),
    Item(
        42,
        "경사하강법",
        "E/G",
        "GD on x² - 4x + 6 from 4 with lr 0.2, 10 iterations, converges to 2",
        "lr 0.2",
        show=(D.parabola_panels,),
    ),
    Item(
        43,
        "경사하강법",
        "E/G",
        "lr 0.2 converges, lr 0.01 barely moves, lr 1 bounces 4 ↔ 0 forever",
        "lr=1",
        show=(D.parabola_panels,),
    ),
    Item(
        44,
        "초기값",
        "E/G",
        "x sin x (lr 0.25): starts 2.5 and 1.5 end in different minima",
        "초기값",
        show=(P(D.xsinx, "initial"),),
    ),
    Item(
        45,
        "학습률",
        "E/G",
        "x sin x from 2.5: lr 1.0 and lr 0.05 give very different paths",
        "학습률",
        show=(P(D.xsinx, "lr"),),
    ),
    Item(
        46,
        "Local minimum",
        "C",
        "Practical losses are not convex: optimizers find a local, not necessarily the global, "
        "minimum",
        "지역 최솟값",
        show=(D.basins, D.stationary_point),
    ),
    Item(
        47,
        "3D",
        "G",
        "3-D surface of a two-variable function on a grid (np.outer)",
        "np.outer",
        show=(D.surface,),
    ),
    Item(
        48,
        "SGD",
        "A",
        "SGD: shuffle, split into mini-batches, step per batch, repeat per epoch",
        "mini-batch",
        show=(D.epoch_sampler,),
    ),
    Item(
        49,
        "SGD",
        "C",
        "For a weight matrix the gradient is the matrix of partials ∂f/∂w_ij",
        "∂f/∂w_ij",
        show=(D.matrix_gradient,),
    ),
    Item(
        50,
        "Momentum",
        "C",
        "Plain GD cannot leave a local minimum; momentum's accumulated direction can",
        "지역 최솟값을 탈출",
        show=(
            E(
                "momentum",
                "local minimum",
                "global minimum",
                "so does Nesterov",
                figure=panel("escape"),
            ),
        ),
    ),
    Item(
        51,
        "Momentum",
        "A",
        "Momentum: v ← αv - ε∇f(w), w ← w + v, v⁰ = 0",
        "v ← αv - ε∇f(w)",
        show=(P(O.velocity_formula, text="v ← αv - ε∇f(w); w ← w + v"),),
    ),
    Item(
        52,
        "Nesterov",
        "A/C",
        "Nesterov: v ← αv - ε∇f(w + αv), w ← w + v; faster than momentum",
        "v ← αv - ε∇f(w + αv)",
        show=(
            P(O.nesterov_formula, text="v ← αv - ε∇f(w + αv); w ← w + v"),
            E("momentum", "Nesterov converges faster", "rate within", figure=panel("rates")),
        ),
    ),
    Item(
        53,
        "Adaptive",
        "C",
        "Fixed-rate methods converge slowly or diverge depending on the rate; adaptive rates make "
        "it less critical",
        "학습률",
        show=(T.adaptive_less_lr_critical,),
    ),
    Item(
        54,
        "Adaptive",
        "A",
        "Heuristic adaptive rate: compare the loss with the previous step's and halve the rate",
        "처음에는 큰 학습률로 시작",
        show=(D.bold_driver,),
        rewrite="the notebook's text says loss up → keep, loss down → halve; the book runs the "
        "usual "
        "bold-driver direction (loss up → undo the step and halve, loss down → keep), which is "
        "what makes "
        "it converge. The rule sees losses only after steps, so the first step is taken unchecked.",
    ),
    Item(
        55,
        "AdaGrad",
        "A",
        "AdaGrad: r ← r + g⊙g, w ← w - ε/(δ + √r) ⊙ g",
        "r ← r + g⊙g",
        show=(P(O.adagrad_formula, text="r ← r + g⊙g; w -= ε g/(δ + √r)", eps=1e-7, inside=False),),
    ),
    Item(
        56,
        "AdaGrad",
        "C",
        "Accumulating from the start slows AdaGrad down",
        "느려질 수 있습니다",
        show=(
            E(
                "adaptive",
                "AdaGrad's effective step",
                "higher training loss",
                figure=panel("adagrad"),
            ),
        ),
    ),
    Item(
        57,
        "RMSProp",
        "A",
        "RMSProp: r ← ρr + (1-ρ) g⊙g, w ← w - ε/(δ + √r) ⊙ g",
        "r ← ρr + (1-ρ)g⊙g",
        show=(
            P(O.rms_formula, text="r ← ρr + (1-ρ)g²; w -= ε g/(δ + √r)", eps=1e-7, inside=False),
        ),
    ),
    Item(
        58,
        "Adam",
        "A",
        "Adam with bias-corrected ŝ and r̂: w ← w - ε ŝ/(δ + √r̂)",
        "ŝ, r̂",
        show=(
            P(
                O.adam_formula,
                text="s, r moving averages; ŝ, r̂ corrected; w -= ε ŝ/(δ + √r̂)",
                eps=1e-8,
            ),
        ),
    ),
    Item(
        59,
        "Optimizer",
        "G",
        "The optimizers' genealogy: GD → SGD → Momentum/NAG; AdaGrad → RMSProp/AdaDelta → "
        "Adam/Nadam",
        "산 내려오는 길 찾기",
        show=(T.genealogy,),
    ),
    Item(
        60,
        "정리",
        "C",
        "Bengio (2016): no optimizer solves deep-learning optimization perfectly; experiment",
        "Joshua Bengio(딥러닝 창립자 중 한 사람), 2016",
        show=(T.no_best,),
    ),
    # ---------------------------------------------------------------- 002: DL basics blog
    Item(
        61,
        "Gradient Descent",
        "C",
        "Gradient descent is a first-order iterative method for a local minimum",
        "first-order iterative optimization algorithm",
        show=(D.stationary_point,),
    ),
    Item(
        62,
        "Generalization",
        "C/G",
        "Generalization: how the model does on unseen data (the gap between test and train error)",
        "Generalization gap",
        show=(E("regularization", "overfits", figure=whole("regularization")),),
    ),
    Item(
        63,
        "Underfitting vs overfitting",
        "G",
        "Too simple underfits (bias), too flexible overfits (variance)",
        "Underfitting vs. overfitting",
        show=(E("bias_variance", "grows with", "shrinks with", figure=whole("bias_variance")),),
    ),
    Item(
        64,
        "Cross-validation",
        "A/G",
        "k-fold CV picks hyperparameters, then refit on all training data; never use the test set",
        "Cross-validation is a model validation technique",
        show=(G.kfold_cv, G.sealed_test),
    ),
    Item(
        65,
        "Bias and variance",
        "C/G",
        "Bias: how far outputs are from the truth on average; variance: how consistent they are",
        "Bias and Variance",
        show=(E("bias_variance", "grows with", "shrinks with"),),
    ),
    Item(
        66,
        "Bias-variance tradeoff",
        "F",
        "E[(t - f̂)²] = bias² + variance + noise; both cannot be reduced at once",
        "bias^2 + variance + noise",
        show=(E("bias_variance", "matches the measured", "exact value", "largest model"),),
    ),
    Item(
        67,
        "Bootstrapping",
        "A",
        "Bootstrapping: sampling with replacement; sub-sampled models give a consensus and an "
        "uncertainty",
        "Bootstrapping is any test or metric that uses random sampling with replacement",
        show=(G.bootstrap,),
    ),
    Item(
        68,
        "Bagging",
        "A",
        "Bagging: models on bootstrap samples, averaged; often better than a single one",
        "Bagging (Bootstrapping aggregating)",
        show=(
            E(
                "ensembles",
                "bagging lowers",
                "more accurate than its members",
                "bagged trees",
                figure=whole("ensembles"),
            ),
            G.bagging_vs_single,
        ),
    ),
    Item(
        69,
        "Boosting",
        "A",
        "Boosting: weak learners in sequence, each focusing on the previous one's mistakes",
        "Boosting",
        show=(E("ensembles", "boosting", "SAMME"),),
    ),
    Item(
        70,
        "Gradient descent methods",
        "C",
        "Stochastic, mini-batch and batch gradient descent: the batch gradient's noise falls with "
        "B",
        "Mini-batch gradient descent",
        show=(E("minibatch", "1/B", figure=panel("minibatch")),),
    ),
    Item(
        71,
        "Batch-size matters",
        "C/G",
        "Large batches converge to sharp minimizers and generalize worse (Keskar et al.)",
        "large batch methods tend to converge to sharp minimizers",
        show=(G.keskar_sharpness, E("sharpness", "reached")),
    ),
    Item(
        72,
        "SGD",
        "A/C",
        "W ← W - ηg; choosing η is hard",
        "learning rate를 적절히 설정하는 것이 어렵다",
        show=(P(O.sgd_formula, lr=0.1), T.lr_hard),
    ),
    Item(
        73,
        "Momentum",
        "A",
        "Momentum: a ← βa + g, W ← W - ηa",
        "a_{t+1} ← β a_t + g_t",
        show=(P(O.cs231n_form, text="a ← βa + g; W ← W - ηa"),),
    ),
    Item(
        74,
        "NAG",
        "A",
        "NAG: a ← βa + ∇L(W - ηβa), W ← W - ηa (look-ahead gradient)",
        "Lookahead gradient",
        show=(P(O.nesterov_formula, text="with v = -ηa: v ← βv - η∇L(W + βv), W ← W + v"),),
        rewrite="the book checks the look-ahead form in the velocity variable v = -ηa, the same "
        "iterates.",
    ),
    Item(
        75,
        "NAG",
        "C",
        "NAG converges faster than momentum, with a provably better rate",
        "faster",
        show=(E("momentum", "Nesterov converges faster", "sweep", figure=panel("rate_sweep")),),
    ),
    Item(
        76,
        "Adagrad",
        "A",
        "AdaGrad: W ← W - η g/√(G + ε); larger updates for rarely-updated parameters",
        "larger updates for infrequent and smaller updates for frequent parameters",
        show=(
            P(O.adagrad_formula, text="G ← G + g²; W -= η g/√(G + ε)", eps=1e-8, inside=True),
            O.adagrad_rare_features,
        ),
    ),
    Item(
        77,
        "Adagrad",
        "C",
        "G grows monotonically, so AdaGrad stops learning in long training",
        "monotonically",
        show=(
            E(
                "adaptive",
                "AdaGrad's effective",
                "RMSProp's effective",
                "higher training loss",
                figure=panel("adagrad_loss"),
            ),
        ),
    ),
    Item(
        78,
        "Adadelta",
        "A",
        "Adadelta: G and H moving averages, ΔW = -√(H + ε)/√(G + ε) g; no learning rate",
        "Adadelta",
        show=(
            E(
                "adaptive",
                "float64 loop",
                "every unit",
                "single eps",
                "reaches the minimum",
                "best learning rate",
                figure=panel("adadelta"),
            ),
        ),
    ),
    Item(
        79,
        "Adadelta",
        "C",
        "A window of past squared gradients is too memory-heavy for huge models, so an EMA "
        "replaces it",
        "window size만큼의 배수의 정보를 보존하고 있는 것이 불가능",
        show=(O.adadelta_state,),
    ),
    Item(
        80,
        "RMSprop",
        "A",
        "RMSProp: G ← γG + (1-γ)g², W ← W - η g/√(G + ε)",
        "G_t = γ G_{t-1} + (1-γ) g_t^2",
        show=(P(O.rms_formula, text="G ← γG + (1-γ)g²; W -= η g/√(G + ε)", eps=1e-8, inside=True),),
    ),
    Item(
        81,
        "Adam",
        "A",
        "Adam: W ← W - η/√(v + ε) · √(1-β₂^t)/(1-β₁^t) · m",
        "√(1-β_2^t)/(1-β_1^t)",
        show=(
            P(
                O.adam_formula,
                text="the corrections folded into the step = Adam with ε inside the root",
                inside=True,
                folded=True,
            ),
        ),
    ),
    Item(
        82,
        "Adam",
        "C",
        "Tip: tuning Adam's ε (e.g. 1e-7) matters in practice",
        "ε",
        show=(E("adaptive", "eps = 1e-7", "hardly anywhere", figure=panel("adam_eps")),),
    ),
    Item(
        83,
        "Regularization",
        "T",
        "The regularization toolbox: early stopping, norm penalty, augmentation, noise, label "
        "smoothing, dropout, batch norm",
        "Regularization",
        show=(E("regularization", "overfits", "early stopping stops", "best regularizer"),),
    ),
    Item(
        84,
        "Early stopping",
        "G/A",
        "Early stopping: stop when validation loss starts rising — the stopped model beats the "
        "trained-to-the-end one on held-out data",
        "Early stopping",
        show=(
            P(G.regularizer_mechanism, "early_stopping"),
            E("regularization", "early stopping"),
            P(G.generalizes_better, "early_stopping", "early stopping"),
        ),
    ),
    Item(
        85,
        "Parameter norm penalty",
        "F",
        "Total cost = loss + (α/2)‖W‖² (weight decay); smoother functions generalize better",
        "Parameter norm penalty",
        show=(
            G.l2_penalty,
            P(G.generalizes_better, "decoupled_wd", "decoupled weight decay (AdamW)"),
            P(G.generalizes_better, "l2_coupled", "L2 in Adam"),
        ),
    ),
    Item(
        86,
        "Data augmentation",
        "C",
        "More (augmented) data generalizes better",
        "Data augmentation",
        show=regularizers(augmentation="augmentation (1-pixel shifts)"),
    ),
    Item(
        87,
        "Noise robustness",
        "C",
        "Add random noise to the inputs or the weights",
        "Noise robustness",
        show=regularizers(input_noise="input noise", weight_noise="weight noise"),
    ),
    Item(
        88,
        "Label smoothing",
        "A/G",
        "Label smoothing, Mixup and CutMix smooth the decision boundary",
        "Mix-up, CutMix",
        show=regularizers(label_smoothing="label smoothing", mixup="mixup", cutmix="cutmix"),
    ),
    Item(
        89,
        "Dropout",
        "A/G",
        "Dropout: zero random neurons in each forward pass",
        "Dropout",
        show=regularizers(dropout="dropout p 0.5"),
    ),
    Item(
        90,
        "Batch normalization",
        "F",
        "Batch norm: μ_B, σ²_B, x̂ = (x - μ_B)/√(σ²_B + ε); the covariate-shift story is disputed",
        "Batch normalization",
        show=(G.batch_norm, P(G.generalizes_better, "batch_norm", "batch norm")),
    ),
    Item(
        91,
        "Convolution",
        "F",
        "Continuous, discrete and 2-D convolution; torch's conv is correlation (the kernel flip)",
        "convolution",
        show=(
            E(
                "convolution",
                "continuous",
                "second form ∫",
                "printed second form ∫",
                "N(0,1)",
                figure=panel("continuous_conv"),
            ),
            E(
                "convolution",
                "discrete",
                "conv1d",
                "lecture's two forms",
                figure=panel("discrete_conv"),
            ),
            E("convolution", "2-D", "conv2d", "i-m, i-n", figure=panel("conv2d")),
        ),
    ),
    Item(
        92,
        "RGB",
        "C/G",
        "Input and output channels fix the kernel tensor's shape; convolutions stack",
        "RGB",
        show=(CV.rgb_kernels,),
    ),
    Item(
        93,
        "CNN",
        "C",
        "CNN = conv + pooling + FC; fewer parameters → easier training",
        "parameter 숫자를 줄이는 것",
        show=(CV.shared_kernels, E("convolution", "fully connected", figure=panel("params"))),
    ),
    Item(
        94,
        "Stride, padding",
        "C/G",
        "Stride and padding set the output size",
        "Stride, Padding",
        show=(CV.conv_shapes,),
    ),
    Item(
        95,
        "AlexNet",
        "E/T",
        "AlexNet's parameters per layer: 35k, 307k, 884k, 663k, 442k, 177M, 16M, 4M",
        "AlexNet",
        show=(E("convolution", "AlexNet", "rounds to", "fully connected", figure=panel("params")),),
    ),
    Item(
        96,
        "1x1 convolution",
        "C",
        "A 1x1 convolution reduces channels: fewer parameters at more depth (bottleneck)",
        "1x1 convolution",
        show=(
            E("convolution", "bottleneck", "inception", "reductions", figure=panel("inception")),
        ),
    ),
    # ---------------------------------------------------------------- 003: INU slides
    Item(
        97,
        "5.2.3",
        "C/G",
        "SGD's problems: local minima, saddle points, poor conditioning (zig-zag)",
        "SGD의 문제",
        show=(T.problems_of_sgd,),
    ),
    Item(
        98,
        "Momentum",
        "C",
        "Gradients from the training set are noisy; momentum smooths them",
        "잡음",
        show=(O.momentum_smooths_noise,),
    ),
    Item(
        99,
        "Momentum",
        "A",
        "(5.12) v = αv - ρ ∂J/∂Θ, Θ = Θ + v, v starts at 0",
        "v = αv - ρ∂J/∂Θ",
        show=(P(O.velocity_formula, text="v = αv - ρ∂J/∂Θ; Θ = Θ + v"),),
    ),
    Item(
        100,
        "Momentum",
        "C",
        "α = 0 is plain SGD; α → 1 smoother; typical α 0.5, 0.9, 0.99, or raised 0.5 → 0.99",
        "α=0",
        show=(O.alpha_zero, O.momentum_ramp),
    ),
    Item(
        101,
        "Momentum",
        "A",
        "cs231n form v = ρv + ∇f, x -= αv (equal to 5.12 up to scaling, until the rate changes)",
        "vx = rho * vx + dx",
        show=(
            P(O.cs231n_form, text="v = ρv + ∇f(x); x -= αv (cs231n)"),
            E("momentum_forms", figure=whole("momentum_forms")),
        ),
    ),
    Item(
        102,
        "Momentum",
        "C/G",
        "Momentum escapes local minima and saddle points and helps poor conditioning",
        "안장점",
        show=(
            E("momentum", "leaves it", figure=panel("escape_sweep")),
            P(T.saddle, ("momentum",)),
            P(T.ravine, ("momentum",)),
        ),
    ),
    Item(
        103,
        "Momentum",
        "G",
        "Momentum damps overshooting (Fig. 5-10)",
        "오버슈팅",
        show=(E("momentum", "travel", "overshoots", figure=panel("overshoot")),),
    ),
    Item(
        104,
        "Nesterov",
        "A",
        "(5.13) Θ̃ = Θ + αv, v = αv - ρ ∂J/∂Θ|Θ̃, Θ = Θ + v",
        "Θ̃ = Θ + αv",
        show=(P(O.nesterov_formula, text="Θ̃ = Θ + αv; v = αv - ρ∇J(Θ̃); Θ ← Θ + v"),),
        rewrite="the slide prints Θ = Θ̃ + v; the book applies v to Θ (Θ ← Θ + v) and evaluates "
        "the gradient "
        "at Θ̃ — adding v to Θ̃ would move the iterate by αv twice.",
    ),
    Item(
        105,
        "Nesterov",
        "F/A",
        "The change of variables x̃ = x + ρv gives an update in x̃ and ∇f(x̃): x += -ρ v_old + "
        "(1+ρ) v",
        "x += -rho * old_v + (1 + rho) * v",
        show=(O.change_of_variables,),
    ),
    Item(
        106,
        "Learning rate",
        "C/G",
        "Too large a rate overshoots/oscillates, too small is slow (Fig. 5-12)",
        "학습률",
        show=(D.parabola_panels, D.lr_scale),
    ),
    Item(
        107,
        "Adaptive learning rate",
        "C",
        "One rate for every parameter; adaptive methods give each parameter its own",
        "매개변수마다",
        show=(O.rms_per_coordinate,),
    ),
    Item(
        108,
        "AdaGrad",
        "A",
        "Algorithm 5-3 AdaGrad: r = r + g⊙g; ΔΘ = -ρ/(ε + √r) ⊙ g",
        "r = r + g⊙g",
        show=(
            P(O.adagrad_formula, text="r = r + g⊙g; ΔΘ = -ρ g/(ε + √r)", eps=1e-7, inside=False),
        ),
    ),
    Item(
        109,
        "AdaGrad",
        "C",
        "Old and recent gradients weigh alike, r keeps growing and can stall convergence",
        "r이 계속 커져",
        show=(
            E(
                "adaptive",
                "AdaGrad's effective",
                "RMSProp's effective",
                figure=panel("adagrad_loss"),
            ),
        ),
    ),
    Item(
        110,
        "RMSProp",
        "A",
        "(5.14), Algorithm 5-4 RMSProp: r = αr + (1-α)g⊙g",
        "r = αr + (1-α)g⊙g",
        show=(
            P(
                O.rms_formula,
                text="r = αr + (1-α)g⊙g; ΔΘ = -ρ g/(ε + √r)",
                eps=1e-7,
                inside=False,
                rho=0.99,
            ),
        ),
    ),
    Item(
        111,
        "Adam",
        "A",
        "Algorithm 5-5 Adam: moments bias-corrected by 1/(1-α^t), Δθ = -ρ v̂/(ε + √r̂)",
        "Algorithm 5-5",
        show=(
            P(O.adam_formula, text="v̂ = v/(1-α1^t), r̂ = r/(1-α2^t); Δθ = -ρ v̂/(ε + √r̂)", eps=1e-8),
            E("adaptive", "Algorithm55", "step 1", "step 2", figure=panel("printed_adam")),
        ),
        rewrite="the printed algorithm stores the corrected moments back; the book's Adam corrects "
        "on the fly "
        "(as Kingma & Ba), and the second check shows how the printed variant differs.",
    ),
    Item(
        112,
        "Adam",
        "C",
        "Without bias correction the first steps are badly scaled",
        "bias correction",
        show=(
            O.adam_first_step,
            E("adaptive", "bias correction", "uncorrected steps", figure=panel("adam_bias")),
        ),
    ),
    Item(
        113,
        "Adam",
        "C",
        "Good Adam starting values: β₁ 0.9, β₂ 0.999, lr 1e-3 or 5e-4",
        "0.9, 0.999",
        show=(O.adam_defaults,),
    ),
    Item(
        114,
        "Fig. 5-13",
        "G/E",
        "Momentum vs adaptive methods on (a) a ravine and (b) a saddle",
        "그림 5-13",
        show=(
            P(T.ravine, ("momentum", "rmsprop", "adam")),
            P(T.saddle, ("momentum", "rmsprop", "adam")),
        ),
    ),
    Item(
        115,
        "Learning-rate decay",
        "A/F",
        "Decay over time: step, exponential α₀e^{-kt}, 1/t α₀/(1+kt)",
        "α = α0 e^{-kt}",
        show=(SC.decay, E("schedules", figure=whole("schedules"))),
    ),
    # ---------------------------------------------------------------- 004: PyTorch Part 8
    Item(
        116,
        "L1 loss",
        "F/E",
        "L1 weighs each error as it is: |3-1| = 2, |11-1| = 10",
        "L1 loss",
        show=(P(LK.l1_mse, "l1"),),
    ),
    Item(
        117,
        "MSE loss",
        "F/E",
        "MSE weighs large errors more: (3-1)² = 4, (11-1)² = 100",
        "MSE",
        show=(P(LK.l1_mse, "mse"),),
    ),
    Item(
        118,
        "Entropy",
        "C/E",
        "Entropy is uncertainty: the fair coin is most uncertain, the die with five 1s predictable",
        "엔트로피",
        show=(E("information", "coin", "die", "H(p) =", figure=panel("entropy")),),
    ),
    Item(
        119,
        "Cross-entropy",
        "F",
        "H(p, q) = -Σ p log q, minimized to make q follow p",
        "H(p, q)",
        show=(E("information", "cross-entropy = entropy + KL", "smallest at Q = P"),),
    ),
    Item(
        120,
        "CrossEntropyLoss",
        "F",
        "torch's CrossEntropyLoss includes the softmax, class weights and ignore_index",
        "CrossEntropyLoss",
        show=(LK.ce_torch,),
    ),
    Item(
        121,
        "KLDivLoss",
        "F",
        "D_KL(P‖Q) = H(P, Q) - H(P) ≥ 0, minimal at Q = P",
        "D_KL",
        show=(
            E(
                "information",
                "cross-entropy = entropy + KL",
                "torch's",
                "our KL",
                figure=panel("cross_entropy"),
            ),
        ),
    ),
    Item(
        122,
        "KLDivLoss",
        "C/G",
        "KL is asymmetric: forward (mode-covering) vs reverse (mode-seeking) fits",
        "D_KL(P‖Q) ≠ D_KL(Q‖P)",
        show=(LK.kl_directions, LK.kl_fits),
    ),
    Item(
        123,
        "TripletMarginLoss",
        "F/G",
        "Triplet margin loss pulls anchor and positive together, pushes the negative apart",
        "Anchor … Positive … Negative",
        show=(LK.triplet,),
    ),
    Item(
        124,
        "미분의 개념",
        "F",
        "The derivative as the limit (f(x+h) - f(x))/h; slope ≈ 0 at the minimum",
        "df(x)/dx = lim_{h→0}",
        show=(D.derivative_limit,),
    ),
    Item(
        125,
        "Learning rate",
        "C/G",
        "Too large diverges, too small takes long",
        "학습률이 너무 크면 … 발산",
        show=(D.lr_scale,),
    ),
    Item(
        126,
        "Gradient Descent",
        "A",
        "W ← W - η ∂L/∂W",
        "W ← W - η ∂L/∂W",
        show=(P(O.sgd_formula, lr=0.05),),
    ),
    Item(
        127,
        "Momentum",
        "A/G",
        "Momentum v ← αv - η∂L/∂W, W ← W + v; SGD with and without momentum",
        "SGD는 상당히 비 효율적인 움직임",
        show=(P(O.velocity_formula, text="v ← αv - η∂L/∂W; W ← W + v"), T.momentum_vs_sgd),
    ),
    Item(
        128,
        "AdaGrad",
        "A",
        "AdaGrad: h ← h + g², W ← W - η g/√h: parameters that moved a lot get a smaller rate",
        "h ← h + (∂L/∂W)^2",
        show=(
            P(O.adagrad_formula, text="h ← h + g²; W -= η g/√h", eps=0.0, inside=False),
            O.adagrad_rare_features,
        ),
    ),
    Item(
        129,
        "RMSProp",
        "A/C",
        "RMSProp: G ← γG + (1-γ)g², W ← W - η g/√(G + ε): forgets old gradients",
        "지수 이동평균",
        show=(
            P(O.rms_formula, text="G ← γG + (1-γ)g²; W -= η g/√(G + ε)", eps=1e-8, inside=True),
            E("adaptive", "RMSProp's effective"),
        ),
    ),
    Item(
        130,
        "Adam",
        "A",
        "Adam (Kingma & Ba, Alg. 1): defaults α 1e-3, β 0.9/0.999, ε 1e-8; also the 'efficient' "
        "ordering (ε inside)",
        "Algorithm 1: Adam",
        show=(
            O.adam_torch,
            P(
                O.adam_formula,
                text="the printed last line θ -= α m/√(v + ε)",
                inside=True,
                bias=False,
            ),
        ),
    ),
    Item(
        131,
        "6. 정리하기",
        "C",
        "In most situations Adam or RMSProp works well; trying several optimizers is worthwhile",
        "왠만한 상황이면 Adam or RMSProp 알고리즘이 좋다",
        show=(T.adam_rms_good,),
    ),
)

_LECTURES = (
    ("000", "Optimization: from maximum likelihood to Adam", "optimization-basics",
     "Parrot Deep Learning Session 03. Optimizer",
     "Why losses look as they do (maximum likelihood), why we iterate instead of solving, how SGD, "
     "learning-rate schedules, momentum, RMSProp and Adam work.", 1, 30),
    ("001", "Derivatives and numerical optimization: gradient descent and its family",
     "derivatives-and-descent", "미분과 수치 최적화 (notebook)",
     "Derivatives and the chain rule; four ways to minimize a parabola; gradient descent's "
     "sensitivity to the start and the learning rate; the optimizers and their genealogy.", 31, 60),
    ("002", "Optimization techniques: generalization, regularization and "
            "CNNs", "dl-basics-optimization",
     "boostcamp DL Basics: 최적화 (blog notes)",
     "Generalization, cross-validation, bias and variance, ensembles, batch size, the optimizer "
     "zoo, the regularizers, and the arithmetic of convolutions.", 61, 96),
    ("003", "Momentum and adaptive learning rates", "momentum-and-adaptive-rates",
     "INU AI&DL slides §5.2.3–5.2.4",
     "SGD's problems, momentum and Nesterov (with the change of variables), AdaGrad, RMSProp, "
     "Adam and its bias correction, the ravine and saddle races, learning-rate decay.", 97, 115),
    ("004", "Losses and optimizers in PyTorch", "pytorch-losses-and-optimizers",
     "PyTorch로 딥러닝 제대로 배우기 Part 8",
     "L1 and MSE, entropy, cross-entropy and KL, the triplet loss; the derivative, the learning "
     "rate, and the optimizers from SGD to Adam.", 116, 131),
)  # fmt: skip


def _experiments(items: tuple[Item, ...]) -> tuple[str, ...]:
    names = []
    for it in items:
        for fn in it.show:
            name = getattr(fn, "name", None)
            if isinstance(name, str) and name not in names:
                names.append(name)
    for it in items:  # evidence that reads an experiment directly
        for fn in it.show:
            target = getattr(fn, "fn", fn)
            if target in (G.generalizes_better,) and "regularization" not in names:
                names.append("regularization")
            if target in (SC.noise_floor,) and "schedules" not in names:
                names.append("schedules")
            if target in (LK.kl_directions,) and "information" not in names:
                names.append("information")
    return tuple(names)


#: each item with its explanation, code cell and playground view (descentlab.book.texts)
ITEMS = tuple(dataclasses.replace(it, **_TEACH.get(it.number, {})) for it in ITEMS)

#: the figures a reader moves (descentlab.book.depth), on the cards of the central ideas:
#: momentum's β, the adaptive family's β₂, learning-rate decay, sharp vs flat minima
DEPTH = {99: DP.momentum_beta, 110: DP.adaptive_beta2, 115: DP.decay_rate, 71: DP.sharp_flat}
ITEMS = tuple(
    dataclasses.replace(it, show=(*it.show, DEPTH[it.number])) if it.number in DEPTH else it
    for it in ITEMS
)

LECTURES: list[Lecture] = [
    Lecture(seed, subject, slug, origin, summary,
            its := tuple(i for i in ITEMS if lo <= i.number <= hi), _experiments(its),
            _EXERCISES.get(seed, ()))
    for seed, subject, slug, origin, summary, lo, hi in _LECTURES
]  # fmt: skip

#: The lecture experiments the book uses, the longest first (the order they are run in).
EXPERIMENTS: tuple[str, ...] = (
    "regularization", "schedules", "momentum_forms", "sharpness", "ensembles", "adaptive",
    "minibatch", "closed_form", "momentum", "bias_variance", "convolution", "information",
)  # fmt: skip
