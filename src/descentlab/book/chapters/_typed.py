"""The formulas the chapters' prose keeps typed between dollars, each with the reason it is
not rendered from a :class:`~descentlab.book.facts.Formula`: the one table
:func:`descentlab.book.chapters._formulas.census` reads (every other typed formula is
unreviewed, and the build prints how many).

A formula that carries arithmetic the code computes (an update rule, a sum, a bias
correction, a rate) belongs in :data:`~descentlab.book.chapters._formulas.FORMULAS`, not
here; this table holds notation: a symbol's name, an object the text defines before it
computes anything with it."""

from __future__ import annotations

__all__ = [
    "CONDITION",
    "DEFINITION",
    "FACTOR",
    "GROWTH",
    "MATRIX",
    "NAMED",
    "NOTATION",
    "NUMBER",
    "TYPED",
]

#: a symbol, a quantity's name, an index or a shape: nothing in it to compute (a formula of
#: this reason holds no arithmetic: the census refuses one that does)
NOTATION = "notation: a symbol, a quantity's name or a shape, no arithmetic"
#: a quantity named by a power, an inverse or a sum of its symbols (σ², H⁻¹, Σ ηₜ, O(p³))
NAMED = (
    "a quantity's name: a power, an inverse or a sum of its symbols, no value stated and no "
    "rule to evaluate"
)
#: what the text defines before it computes with it
DEFINITION = (
    "a definition: a loss, a density, a model of the data, the function a section runs on, "
    "or the inequality that defines a term (convexity, Jensen's); it names what the code then "
    "computes and states no value of it"
)

#: a factor or a term of a formula the passage renders from a Formula and checks, named to point
#: at it (the contraction 1 - ηλ, the denominator's 2 - ηh)
FACTOR = (
    "a factor or a term of a formula the passage renders and checks, named to point at it; no "
    "value stated"
)
#: a number written in TeX
NUMBER = "a number written in TeX (10⁶, ln 10, 5·10⁻³²⁴): named, not derived"
#: where a rendered formula holds or contracts
CONDITION = (
    "a condition on a rendered formula (where a recursion contracts, where a bound is η): "
    "stated, its instances measured in the section's runs"
)
#: an asymptotic rate a section measures its runs against
GROWTH = (
    "an asymptotic rate or scale (ln T/T, t^{-2ah}) the section measures its runs against (the "
    "printed ratio or slope)"
)
#: a formula in matrices
MATRIX = (
    "a formula in matrices (a gradient, a Hessian, normal equations): the reader takes no "
    "matrices; the section's runs compute it in numpy or torch"
)

#: the reason a formula stays typed -> the formulas it holds, as typed (white space folded to
#: one space)
_BY_REASON: dict[str, tuple[str, ...]] = {
    NOTATION: (
        "B_{\\mathrm{noise}}",
        "C_{\\mathrm{in}}",
        "C_{\\mathrm{out}}",
        "D_{\\mathrm{KL}}(P \\,\\|\\, Q)",
        "D_{\\mathrm{KL}}(Q \\,\\|\\, P)",
        "\\Delta L_{\\max}",
        "\\bar g",
        "\\hat m_t",
        "\\lambda_i w_i",
        "\\mathbb{E}[g]",
        "\\sigma_i",
        "\\sin(\\pi x)",
        "e_t",
        "f'",
        "g_i",
        "n!",
        "n_{\\mathrm{out}} = n",
        "t_0",
        "w_0",
        "x \\sin x",
        "x_i r_i",
        "z_c",
        "\\mathbb{E}[g^2]",
    ),
    NAMED: (
        "H^{-1}",
        "O(np^2)",
        "O(p^3)",
        "\\eta^2",
        "\\rho^t",
        "\\rho^{2t}",
        "\\sigma^2",
        "\\sum \\eta_t",
        "\\sum \\eta_t^2",
        "g_i^2",
        "k \\times k",
        "p^2",
        "s^2",
        "w^*",
        "x_i^2",
        "z^t",
        "\\alpha^k",
        "\\beta^t",
        "\\beta^k",
        "g/\\sqrt v",
        "\\sigma^2/B",
        "h\\,\\mathbb{E}[e^2]/2",
        "\\sum_t \\eta_t^2\\sigma^2",
        "\\sqrt\\kappa",
        "\\frac{1}{2}\\mathrm{tr}(H\\Sigma)",
        "\\lceil N/B \\rceil",
        "\\sigma^2 \\|s(x)\\|^2",
        "\\sigma/\\sqrt n",
        "-H^{-1}\\nabla f",
        "-P^{-1}\\nabla f",
        "-\\log_{10} e_t",
        "e_{t+1}/e_t^2",
        "\\sqrt{v_i}",
        "1/h_{ii}",
        "A^\\top A/N",
        "g[n - m]",
        "-\\eta\\sigma\\xi_t",
    ),
    DEFINITION: (
        "(C_{\\mathrm{out}}, C_{\\mathrm{in}}, k, k)",
        "(I * K)[i, j] = \\sum_{a, b} I[a, b]\\, K[i - a, j - b]",
        "(f * g)[n] = \\sum_m f[m]\\, g[n - m],",
        "(w_t, w_{t-1})",
        "-\\log q_y = -z_y + \\log \\sum_k e^{z_k},",
        "-\\sum_c n_c \\log q_c",
        "-y \\log \\sigma(z) - (1 - y) \\log(1 - \\sigma(z))",
        "H = X^\\top X/N",
        "H = \\nabla^2 f(w)",
        "H(P) = -\\sum_c P_c \\log P_c",
        "H(P, Q) = -\\sum_c P_c \\log Q_c",
        "H(P, Q) = H(P) + D_{\\mathrm{KL}}(P \\,\\|\\, Q), \\qquad D_{\\mathrm{KL}}(P"
        " \\,\\|\\, Q) = \\sum_c P_c \\log\\frac{P_c}{Q_c} \\ge 0",
        "L(w) = \\frac{1}{2N}\\sum_i (x_i^\\top w - y_i)^2",
        "P = \\mathrm{diag}(H)",
        "S^2 = \\sum_i (g_i - \\bar g)^2/N",
        "\\Sigma = \\mathbb{E}[e e^\\top]",
        "\\bar g = \\sum_i g_i/N",
        "\\epsilon \\sim N(0, \\sigma^2)",
        "\\epsilon_i \\sim N(0, \\sigma^2)",
        "\\hat f(x) = s(x)^\\top y",
        "\\hat w = \\mathrm{arg}\\max_w\\, p(y_1, \\dots, y_n \\mid w) ="
        " \\mathrm{arg}\\max_w \\prod_{i=1}^n p(y_i \\mid w),",
        "\\kappa = L/\\mu",
        "\\log \\prod_i p(y_i \\mid w) = \\sum_i \\log p(y_i \\mid w),",
        "\\nabla f(x) = 0",
        "\\nabla^2 f(x) \\succeq 0",
        "\\sum_c q_c = 1",
        "\\sum_m f[n + m]\\, g[m]",
        "\\sum_t \\eta_t = \\infty, \\qquad \\sum_t \\eta_t^2 < \\infty,",
        "\\{x : f(x) \\le c\\}",
        "b = 0",
        "e = w - w^*",
        "e^0 = 1",
        "f = \\exp",
        "f = w^2/2",
        "f(\\mathbb{E}X) \\le \\mathbb{E}f(X)",
        "f(\\theta x + (1 - \\theta) y) \\le \\theta f(x) + (1 - \\theta) f(y), \\quad 0"
        " \\le \\theta \\le 1.",
        "f(w + d) \\approx f(w) + \\nabla f(w)^\\top d + \\tfrac12 d^\\top \\nabla^2 f(w)\\, d,",
        "f(w) = \\sum_i \\lambda_i w_i^2/2",
        "f(w) = gw",
        "f(w) = h w^2/2",
        "f(w) = w^2/2 + w^4/4",
        "f(w^* + e) \\approx f(w^*) + e^\\top H e/2",
        "f(x) = \\sqrt{1 + x^2}",
        "f(x) = e^x - 2x",
        "f(y) - f(x) - \\nabla f(x)^\\top(y - x)",
        "f(y) \\ge f(x)",
        "f(y) \\ge f(x) + \\nabla f(x)^\\top (y - x).",
        "g = \\frac{1}{N}\\sum_{i=1}^N \\nabla L_i(w)",
        "g = \\mu + \\sigma\\xi",
        "g = \\nabla L_i(w)",
        "hw + \\sigma\\xi",
        "m_0 = 0",
        "p(y \\mid w)",
        "p(y) = \\frac{1}{2b} e^{-|y - \\mu|/b}",
        "q_c = e^{z_c}/\\sum_k e^{z_k}",
        "s(x)^\\top = \\phi(x)^\\top (\\Phi^\\top\\Phi)^{-1}\\Phi^\\top",
        "s(x)^\\top f",
        "x_1, \\dots, x_n",
        "y = f(x) + \\epsilon",
        "y_i = a x_i + b + \\epsilon_i",
        "z = Aw",
        "z = w^\\top x",
        "0.05 x^2 + 5 y^2",
        "0.05x^2 + 5y^2",
        "y = 2x + 0.5\\epsilon",
        "(xw - y)^2/2",
        "h(w - w^*)",
        "x_i^2(w - w^*) + x_i r_i",
        "\\frac1N \\sum \\log(1 + e^{z_i}) - y_i z_i",
        "f - \\frac{\\mu}{2}\\|w\\|^2",
        "-\\log p(y_i \\mid a, b, \\sigma) = \\frac{(y_i - a x_i - b)^2}{2\\sigma^2} +"
        " \\frac{1}{2}\\log(2\\pi\\sigma^2),",
        "|y - \\mu|/b + \\log 2b",
        "\\sum |y_i - \\mu|",
        "\\sqrt{1 + x^2}",
        "\\tfrac12(w_1^2 + {{stiff}}\\,w_2^2)",
        "(\\lambda/2)\\|w\\|^2",
        "\\nabla L(w) + \\lambda w = 0",
        "\\mathbb{E}[e^2] = 2T/\\lambda",
    ),
    FACTOR: (
        "1 - \\eta h",
        "1/(2 - \\eta\\lambda)",
        "(k - 1)",
        "\\sigma(1 - \\sigma)",
        "1 - \\lambda/L",
        "\\max_i |1 - \\eta\\lambda_i|^t",
        "|1 - \\eta\\lambda_i|",
        "1 - 1/n",
        "2 - \\eta h",
        "(1 - ah/t)^2",
    ),
    NUMBER: (
        "e^{1/2}",
        "\\ln 10",
        "1/\\sqrt{2\\pi}",
        "5 \\cdot 10^{-324}",
        "\\ln(5 \\cdot 10^{-324})",
        "5/6",
        "10^6",
        "\\sqrt{0.9}",
        "10^{12}",
        "2 \\ln 0.99",
        "\\ln 2",
    ),
    CONDITION: (
        "1 - \\beta_1 = \\sqrt{1 - \\beta_2}",
        "|1 - \\eta\\lambda| < 1",
        "0 < \\eta h < 2",
    ),
    GROWTH: (
        "\\ln T/T",
        "\\ln T / T",
        "\\eta T/\\ln T",
        "t^{-2ah}",
        "-2ah",
        "1/(\\eta\\lambda_{\\min})",
    ),
    MATRIX: (
        "\\frac1N A^\\top(\\sigma(Aw) - y)",
        "\\frac1N A^\\top \\mathrm{diag}(\\sigma_i(1 - \\sigma_i)) A",
        "\\|A\\|^2/(4N) + \\lambda",
        "(A^\\top A/N + \\lambda I) w = A^\\top y/N",
        "[A; \\sqrt{N\\lambda}\\, I]\\, w \\approx [y; 0]",
    ),
}

#: typed formula -> its own reason, where it has one beyond its kind's
_SPECIFIC: dict[str, str] = {
    "1/(1 - \\beta)": (
        "What to keep's phrase bound to the claim keep_momentum_memory (book.claims), whose "
        "opposite is a ✘; momentum_limit renders it in the sections"
    ),
    "S^2/\\bar g^2": (
        "What to keep's phrase bound to the claim keep_noise_scale (book.keep_claims), whose "
        "opposite is a ✘; noise_scale renders it in the sections"
    ),
    "\\sqrt\\beta": (
        "What to keep's phrase bound to the claim keep_spiral_modulus (book.claims), whose "
        "opposite is a ✘; complex_rate renders it in the sections"
    ),
    "b = 0": "a setting: the buffer's start",
    "f(w) = gw": "the problem's definition",
    "f(w) = \\sum_i \\lambda_i w_i^2/2": "the problem's definition",
    "\\eta\\lambda < 2": (
        "gradient descent's edge, EDGE at β = 0: the η = 2, β = 0 row's measured rate 1 checks it"
    ),
    "f = w^2/2": "the problem's definition",
    "\\eta = 1/L": "a setting: Nesterov's tuning, the run's η",
    "\\Sigma = A \\Sigma A^\\top + Q": (
        "a matrix equation (scipy's solve_discrete_lyapunov solves it): the reader takes"
        " no matrices"
    ),
    "f(w + d) \\approx f(w) + \\nabla f(w)^\\top d + \\tfrac12 d^\\top \\nabla^2 f(w)\\, d,": (
        "the model's definition (vectors, a Hessian)"
    ),
    "H = \\nabla^2 f(w)": "a definition",
    "d = -H^{-1}\\nabla f(w)": "a definition: NEWTON_STEP's direction, shown next and evaluated",
    "e_{t+1} \\approx C e_t^2": (
        "an asymptotic statement: the table's e_{t+1}/e_t² is stated against C"
    ),
    "C = |f'''(x^*)| / (2 f''(x^*))": "a general formula in derivatives as symbols",
    "f(x) = e^x - 2x": "the problem's definition",
    "f(x) = \\sqrt{1 + x^2}": "the problem's definition (its derivatives rendered)",
    "|x| < 10^{-12}": "a setting: the runs' stopping tolerance",
    "P = \\mathrm{diag}(H)": "a definition",
    "g = \\frac{1}{N}\\sum_{i=1}^N \\nabla L_i(w)": "a definition (a sum)",
    "g = \\nabla L_i(w)": "a definition",
    "L(w) = \\frac{1}{2N}\\sum_i (x_i^\\top w - y_i)^2": "the problem",
    "H = X^\\top X/N": "a definition (matrices)",
    "e = w - w^*": "a definition",
    "g = \\frac{1}{B}\\sum_b x_b (x_b^\\top e - r_b)": "a definition (a sum)",
    "m \\leftarrow (I - \\eta H) m": (
        "a matrix recursion: the moments' recursion (book.descent.exact) is checked"
        " against the runs"
    ),
    "\\Sigma = \\mathbb{E}[e e^\\top]": "a definition (an expectation)",
    (
        "\\Sigma \\leftarrow \\Sigma - \\eta(\\Sigma H + H\\Sigma) + \\eta^2\\,"
        " \\mathbb{E}[g g^\\top],"
    ): (
        "a matrix recursion with an expectation, computed by book.descent.exact in numpy"
        " and checked against the runs"
    ),
    (
        "\\mathbb{E}[g g^\\top] = \\Big(1 - \\frac{1}{B}\\Big) H\\Sigma H +"
        " \\frac{1}{BN}\\sum_i x_i x_i^\\top \\big(x_i^\\top \\Sigma x_i - 2 r_i\\,"
        " x_i^\\top m + r_i^2\\big),"
    ): ("as the recursion above"),
    "\\eta < 2h/(h^2 + c/B)": "the batch chapter's edge, restated",
    "b_t = g_t + \\beta g_{t-1} + \\beta^2 g_{t-2} + \\dots = {{f:momentum_sum}}.": (
        "the sum unrolled term by term beside its rendered form (momentum_sum, checked"
        " against the buffer)"
    ),
    (
        "\\eta \\sum_{t=1}^{T} \\frac{1}{\\sqrt t} \\le \\eta \\Big(1 + \\int_1^T \\frac{dt}{\\sqrt"
        " t}\\Big) = {{f:adagrad_travel}}:"
    ): (
        "a derivation's step: the sum bounded by its integral; its end adagrad_travel is"
        " rendered and checked by quadrature, the measured travel printed beside it"
    ),
    "\\exp(-f/(2T))": (
        "the Gibbs law of a Gaussian spread, stated to read the table's escape fractions (which"
        " the runs measure)"
    ),
    "r_L = 1 + \\sum_{l=1}^{L} d_l (k_l - 1) \\prod_{j < l} s_j.": (
        "a sum of products (SymPy's lambdify evaluates no Product): the section's field,"
        " computed by the chapter, is checked against autograd's non-zero span"
    ),
    "\\|w_t - w^*\\| \\le {{f:gd_rate}} \\|w_0 - w^*\\|,": (
        "the bound's distances named around its factor gd_rate, rendered and checked"
    ),
    (
        "\\mathbb{E}\\big[(y - \\hat f(x))^2\\big] = \\underbrace{\\big(s(x)^\\top f -"
        " f(x)\\big)^2}_{\\text{bias}^2} + \\underbrace{\\sigma^2 \\|s(x)\\|^2}_{\\text{variance}}"
        " + \\underbrace{\\sigma^2}_{\\text{noise}},"
    ): (
        "the decomposition's statement, in expectations over the noise: the section's table"
        " measures each of its terms"
    ),
    "\\prod_t 2\\sqrt{e_t(1 - e_t)}": (
        "AdaBoost's bound stated from its paper; the section prints its value beside the"
        " measured training error"
    ),
    "\\hat\\sigma^2 = \\frac{1}{n}\\sum_i (y_i - \\hat a x_i - \\hat b)^2": (
        "the estimate stated: the section's fitted σ (descentlab's nll) is checked against the"
        " residuals' root mean square"
    ),
    "\\frac{\\partial}{\\partial z_c}\\big(-\\log q_y\\big) = q_c - [c = y],": (
        "a derivative stated: the section's check compares autograd's gradient with softmax -"
        " onehot"
    ),
    "q_c = n_c/n": (
        "the maximiser stated: the section's check compares the fitted probabilities with the"
        " frequencies"
    ),
    "\\mathbb{E}[w^2] \\approx c/t": (
        "the guess the derivation tries: its consequence harmonic_closes is rendered and checked"
    ),
    (
        "\\mathbb{E}[m_t] = \\mathbb{E}[g]\\,{{f:adam_geometric}} ="
        " \\big({{f:adam_bias}}\\big)\\,\\mathbb{E}[g]."
    ): (
        "the expectation's linearity: E[g] times the two rendered forms of one sum "
        "(adam_geometric and adam_bias, each checked against descentlab's Adam)"
    ),
    "w = {{a1}}\\,w^*": "a point named as a multiple of w*, the multiple computed (a slot)",
    "w = {{a2}}\\,w^*": "a point named as a multiple of w*, the multiple computed (a slot)",
}

#: typed formula -> why it stays typed
TYPED: dict[str, str] = {tex: why for why, texs in _BY_REASON.items() for tex in texs} | _SPECIFIC
