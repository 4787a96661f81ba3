r"""The documentation site's API pages, generated from the code when ``make docs`` builds
the site (``scripts/docs_hooks.py``): docs tooling, not part of the library.

**The optimizers' and the schedules' pages**, from what each optimizer runs. For every
registered optimizer (:func:`descentlab.optim.records`) and every ``scale_by_*`` rule, the
documentation site's page ``api/optimizers.md`` shows: the signature with every default
(``inspect.signature``), each parameter with its meaning and what it must be (the declared
checks that make the error messages), the update as rendered math -- an algorithm box derived
from the rule's form (:mod:`descentlab.optim.form`, statement by statement, in the order every
backend runs it, each coefficient's Python written as TeX), a runnable example with the output
this build printed (a doctest, run again by the tests), and the reference.

Nothing on the page is written twice: a new optimizer or rule appears with its box.

Example:
    >>> print(python_to_tex('exp_avg + c_1mb1 * (g - exp_avg)', {'c_1mb1': '(1 - \\beta_1)'}))
    m + (1 - \beta_1)\,(g - m)
    >>> box = algorithm("adam")
    >>> box[0][0], box[0][1][0]
    ('scale_by_adam + scale_by_lr', 'm \\leftarrow m + (1 - \\beta_1)\\,(g - m)')

**The main job's entry points' page**, from their docstrings. For every function of
:data:`ENTRY_POINTS` (what the command line's main commands call), the documentation site's page
``api/entry-points.md`` shows: the signature with every default (as the optimizers' page writes
it), a table of the parameters with their defaults and meanings (the docstring's ``Args``), what
it returns, what it writes to disk (``Writes``), the errors it raises on bad input (``Raises``),
and its ``Example``, run when the page is made: an example whose printed output is not what it
shows stops the site's build (:class:`ExampleFailed`, one message naming the entry point and the
difference).

The docstrings are the one place of these texts: ``help(train)`` shows what the page shows, and
``pytest`` (``--doctest-modules``) runs the same examples (this script's own examples:
``tests/test_api_reference.py``). A parameter without a meaning, or an entry point without one
of those sections, stops the build too.

Example:
    >>> sections = docstring_sections(entry_point("descentlab.book.build", "write_book"))
    >>> [k for k in ("Args", "Returns", "Writes", "Raises", "Example") if k in sections]
    ['Args', 'Returns', 'Writes', 'Raises', 'Example']
"""

from __future__ import annotations

import ast
import contextlib
import doctest
import importlib
import inspect
import io
import re
import textwrap
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch

from descentlab import optim
from descentlab.optim import form as F
from descentlab.optim.hyperspec import describe
from descentlab.report.optimizer_card import Statement, _lambda_node, statements

#: what each keyword of the optimizers means (the page's parameter tables)
MEANINGS: dict[str, str] = {
    "params": "the parameters to optimize: an iterable of tensors or of param-group dicts",
    "lr": "the learning rate η: the step's scale",
    "momentum": "the momentum factor μ: the weight of the previous step in the velocity",
    "dampening": "the dampening of the gradient added to the velocity (torch's SGD)",
    "nesterov": "Nesterov's momentum: the gradient of the look-ahead point",
    "weight_decay": "the weight decay λ: an L2 penalty added to the gradient, or decoupled",
    "decoupled_weight_decay": "decay the weights directly (AdamW's p ← p − ηλp) instead of "
    "adding λp to the gradient",
    "betas": "the decay rates (β₁, β₂, ...) of the running averages of the gradient and its square",
    "eps": "ε, added to the denominator for numerical stability",
    "epsilon": "ε, added to the denominator for numerical stability",
    "amsgrad": "divide by the running maximum of the second moment (Reddi et al., 2018)",
    "bias_correction": "divide the moments by 1 − βᵗ (the moments start at zero)",
    "eps_inside_sqrt": "add ε inside the square root (the DL-basics lecture's form)",
    "maximize": "maximize the objective (ascend the gradient)",
    "foreach": "torch's multi-tensor kernels for the eager step (None: chosen by device)",
    "fused": "one compiled kernel for the whole step (None: where it is available)",
    "capturable": "keep the step count on the device (CUDA graphs), as torch",
    "differentiable": "let autograd run through the step, as torch",
    "monitor": "record per-step statistics of the update (descentlab.optim's monitor)",
    "state_dtype": 'store the moments in 8 bits ("int8") or bfloat16 ("bfloat16")',
    "lr_decay": "AdaGrad's learning-rate decay: η / (1 + (t − 1) lr_decay)",
    "initial_accumulator_value": "the starting value of AdaGrad's sum of squares",
    "alpha": "the smoothing constant α of the running average of the squared gradient",
    "centered": "divide by the estimated variance (subtract the squared mean gradient)",
    "rho": "the decay ρ of the running averages (Adadelta) / the ascent radius (SAM)",
    "momentum_decay": "NAdam's momentum decay ψ (the schedule of μₜ)",
    "lambd": "ASGD's decay term λ",
    "t0": "the step at which ASGD starts averaging",
    "etas": "Rprop's (η−, η+): the factors that shrink and grow each step size",
    "step_sizes": "Rprop's (minimal, maximal) step size",
    "form": "which of the lecture's forms of the update (see the rule)",
    "base": "the inner optimizer's name (the one this method wraps)",
    "base_kwargs": "the inner optimizer's keyword arguments",
    "lookahead": "Lookahead: the inner optimizer's name",
    "sync_period": "k: the fast weights' steps between two syncs of the slow weights",
    "slow_step_size": "α: how far the slow weights move toward the fast ones at a sync",
    "adaptive": "ASAM: scale the ascent by |w| (Kwon et al., 2021)",
    "weight_lr_power": "the power of the learning rate in Schedule-Free's averaging weights",
    "beta2_decay": "Adafactor's decay exponent: β₂,ₜ = 1 − t^beta2_decay",
    "d": "Adafactor's clipping threshold on the update's RMS",
    "ns_coefficients": "the Newton-Schulz iteration's coefficients (a, b, c)",
    "ns_steps": "the number of Newton-Schulz iterations",
    "adjust_lr_fn": "how Muon scales the learning rate by the matrix's shape",
    "ns_dtype": "the dtype the Newton-Schulz iteration runs in (None: the parameter's)",
    "adamw_lr": "the learning rate of the AdamW that updates the non-matrix parameters",
    "adamw_betas": "that AdamW's betas",
    "adamw_eps": "that AdamW's ε",
    "adamw_weight_decay": "that AdamW's weight decay",
    "block_size": "the largest block of a dimension that gets its own preconditioner",
    "start_preconditioning_step": "the step before which Shampoo grafts only",
    "grafting": "the optimizer whose step size Shampoo's direction takes (grafting)",
    "graft_eps": "the grafting optimizer's ε",
    "root_dtype": "the dtype of the preconditioners' inverse roots",
    "shampoo_beta": "the decay of Shampoo's statistics",
    "precondition_frequency": "the steps between two recomputations of the preconditioners",
    "max_precondition_dim": "the largest dimension that gets a preconditioner",
    "merge_dims": "merge small dimensions before preconditioning",
    "precondition_1d": "precondition one-dimensional parameters too",
    "correct_bias": "divide the moments by 1 − βᵗ",
}

#: the TeX of a state entry or a leaf (the others: their names, upright)
SYMBOLS: dict[str, str] = {
    "g": "g",
    "p": r"\theta",
    "lr": r"\eta",
    "t": "t",
    "exp_avg": "m",
    "exp_avg_sq": "v",
    "max_exp_avg_sq": r"\hat v",
    "momentum_buffer": "b",
    "sum": "s",
    "square_avg": "v",
    "acc_delta": r"\Delta",
    "grad_avg": r"\bar g",
    "exp_inf": "u",
    "exp_avg_var": "s",
    "exp_avg_diff": "d",
    "prev_grad": r"g_{\mathrm{prev}}",
}

#: a hyperparameter's TeX (``h["eps"]``); ``betas``: by index
HYPER: dict[str, str] = {
    "eps": r"\epsilon",
    "epsilon": r"\epsilon",
    "weight_decay": r"\lambda",
    "momentum": r"\mu",
    "dampening": r"\tau",
    "lr": r"\eta",
    "alpha": r"\alpha",
    "rho": r"\rho",
    "lr_decay": r"\kappa",
    "lambd": r"\lambda",
    "momentum_decay": r"\psi",
}

#: functions a coefficient calls, as the page names them
CALLS: dict[str, str] = {
    "_rate": r"\eta_t",  # scale_by_lr's rate (a schedule's value at step t)
    "_lr_t": r"\eta_t",
}

_PREC = {ast.Add: 1, ast.Sub: 1, ast.Mult: 2, ast.Div: 5, ast.Pow: 4}


def _name(text: str) -> str:
    """A name's TeX: its symbol, a letter as it is, ``x1`` as ``x_1``, else upright."""
    if text in SYMBOLS:
        return SYMBOLS[text]
    if len(text) == 1:
        return text
    if text[:1] == "x" and text[1:].isdigit():
        return f"x_{text[1:]}"
    return r"\mathrm{" + text.replace("_", r"\_") + "}"


def _cases(a: str, condition: str, b: str) -> str:
    """``a`` where ``condition``, else ``b``."""
    return rf"\begin{{cases}} {a} & {condition} \\ {b} & \text{{otherwise}} \end{{cases}}"


def _target(name: str) -> str:
    """A statement's target: a let's ``x1`` as ``x_1``, a state entry's symbol."""
    if name[:1] == "x" and name[1:].isdigit():
        return f"x_{name[1:]}"
    return _name(name)


def _number(v: Any) -> str:
    if isinstance(v, bool):
        return r"\mathrm{" + str(v) + "}"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


class _Tex:
    """Python expressions (a form's statements, a coefficient's lambda) as TeX."""

    def __init__(
        self, names: Mapping[str, str | tuple[str, int]], closures: Mapping[str, ast.expr]
    ) -> None:
        self.names = names
        self.closures = closures

    def __call__(self, node: ast.expr) -> tuple[str, int]:
        if isinstance(node, ast.Constant):
            return _number(node.value), 6
        if isinstance(node, ast.Name):
            if node.id in self.names:
                got = self.names[node.id]
                return got if isinstance(got, tuple) else (got, 6)
            return _name(node.id), 6
        if isinstance(node, ast.Subscript):
            return self._subscript(node), 6
        if isinstance(node, ast.UnaryOp):
            inner, prec = self(node.operand)
            if isinstance(node.op, ast.USub):
                return "-" + (f"({inner})" if prec < 3 else inner), 3
            if isinstance(node.op, ast.Not):
                return r"\lnot " + inner, 3
            return inner, prec
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], ast.NotEq)
            and isinstance(node.left, ast.Compare)
            and isinstance(node.comparators[0], ast.Constant)
            and node.comparators[0].value == 0
        ):  # (a == b) != 0: a == b
            return self(node.left)
        if (
            isinstance(node, ast.Compare)
            and len(node.ops) == 2
            and isinstance(node.ops[1], ast.NotEq)
            and isinstance(node.comparators[1], ast.Constant)
            and node.comparators[1].value == 0
        ):  # a == b != 0 (a condition tested against 0): a == b
            return self(ast.Compare(node.left, node.ops[:1], node.comparators[:1]))
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            ops = {ast.NotEq: r"\neq", ast.Eq: "=", ast.Gt: ">", ast.Lt: "<", ast.GtE: r"\geq",
                   ast.LtE: r"\leq"}  # fmt: skip
            a, b = self(node.left)[0], self(node.comparators[0])[0]
            return f"{a} {ops.get(type(node.ops[0]), '?')} {b}", 0
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self._call(node.func.id, node.args)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr = node.func.attr
            if attr == "get" and node.args and isinstance(node.args[0], ast.Constant):
                key = str(node.args[0].value)
                return HYPER.get(key) or _name(key), 6
            return CALLS.get(attr, _name(attr.strip("_"))), 6
        if isinstance(node, ast.IfExp):
            a, c, b = self(node.body)[0], self(node.test)[0], self(node.orelse)[0]
            return _cases(a, c, b), 6
        if isinstance(node, ast.Tuple):
            return "(" + ", ".join(self(e)[0] for e in node.elts) + ")", 6
        return r"\mathrm{" + ast.unparse(node).replace("_", r"\_") + "}", 6

    def _subscript(self, node: ast.Subscript) -> str:
        # h["betas"][0] -> beta_1; h["eps"] -> epsilon
        if (
            isinstance(node.value, ast.Subscript)
            and isinstance(node.value.slice, ast.Constant)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, int)
        ):
            key, i = node.value.slice.value, node.slice.value
            if key == "betas":
                return rf"\beta_{i + 1}"
            return rf"{HYPER.get(key, _name(str(key)))}_{{{i + 1}}}"
        if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            key = node.slice.value
            return HYPER.get(key) or _name(key)
        return r"\mathrm{" + ast.unparse(node).replace("_", r"\_") + "}"

    def _binop(self, node: ast.BinOp) -> tuple[str, int]:
        op = type(node.op)
        a, pa = self(node.left)
        b, pb = self(node.right)
        if op is ast.Div:
            return rf"\frac{{{a}}}{{{b}}}", 5
        if op is ast.Mod:
            return rf"{a} \bmod {b}", 2
        if op not in _PREC:
            return r"\mathrm{" + ast.unparse(node).replace("_", r"\_") + "}", 6
        if op is ast.Pow:
            if isinstance(node.right, ast.Constant) and node.right.value == 0.5:
                return rf"\sqrt{{{a}}}", 6
            base = a if pa >= 6 else f"({a})"
            return f"{{{base}}}^{{{b}}}", 4
        prec = _PREC.get(op, 1)
        if op is ast.Mult:
            if a == "1":
                return b, pb
            if ast.dump(node.left) == ast.dump(node.right):
                return (f"{{{a}}}^2" if pa >= 6 else f"({a})^2"), 4
            a = a if pa >= 2 else f"({a})"
            b = b if pb >= 4 else f"({b})"
            return rf"{a}\,{b}", 2
        if op is ast.Sub:
            b = b if pb > 1 else f"({b})"
            return f"{a} - {b}", 1
        if b.startswith("-") and pb >= 3:
            return f"{a} - {b[1:]}", 1
        return f"{a} + {b}", prec

    def _call(self, fn: str, args: list[ast.expr]) -> tuple[str, int]:
        if fn in self.closures:  # a closure's lambda: b1(h, t) -> 1 - beta1^t
            return self(self.closures[fn])
        if fn == "_mu" and len(args) == 2:  # NAdam's momentum schedule
            return rf"\mu_{{{self(args[1])[0]}}}", 6
        if fn in CALLS:
            return CALLS[fn], 6
        if fn in ("float", "bool", "int") and len(args) == 1:
            return self(args[0])
        texts = [self(a)[0] for a in args]
        if fn == "sqrt":
            return rf"\sqrt{{{texts[0]}}}", 6
        if fn in ("abs", "absolute"):
            return rf"\left|{texts[0]}\right|", 6
        if fn == "maximum":
            return rf"\max({', '.join(texts)})", 6
        if fn == "where" and len(texts) == 3:
            return _cases(texts[1], texts[0], texts[2]), 6
        op = {"sign": r"\operatorname{sign}", "clamp": r"\operatorname{clamp}",
              "float": "", "min": r"\min", "max": r"\max"}.get(fn)  # fmt: skip
        if op is None:
            op = r"\operatorname{" + fn.replace("_", r"\_") + "}"
        return f"{op}({', '.join(texts)})", 6


def python_to_tex(
    python: str, names: Mapping[str, str] | None = None, closures: Mapping[str, Any] | None = None
) -> str:
    """A Python expression as TeX: ``names`` replace names (a coefficient's TeX), ``closures``
    (name -> an expression's AST) inline a called lambda."""
    return _Tex(names or {}, closures or {})(ast.parse(python, mode="eval").body)[0]


def _coefficient_tex(c: F.Coef) -> tuple[str, int]:
    """A coefficient's TeX and precedence, from its lambda's body (a closure's lambda
    inlined); a per-step flag ``e`` (the first step, the sync step) as its name."""
    fn = c.fn
    found = _lambda_node(fn) if fn.__name__ == "<lambda>" else None
    if found is None:
        return _name(c.name), 6
    closures: dict[str, ast.expr] = {}
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
        inner = cell.cell_contents
        if callable(inner) and getattr(inner, "__name__", "") == "<lambda>":
            sub = _lambda_node(inner)
            if sub is not None:
                closures[name] = sub[1].body
    flags = {"e": (r"e_t", 6)}  # the per-step flag a coefficient reads (1 on that step)
    return _Tex(flags, closures)(found[1].body)


def _statement_tex(python: str, coefs: Mapping[str, F.Coef]) -> str:
    names: dict[str, str | tuple[str, int]] = {f"x{i}": f"x_{i}" for i in range(1, 10)}
    names.update({cname: _coefficient_tex(c) for cname, c in coefs.items()})
    return python_to_tex(python, names)


def _optimizer(name: str, options: Mapping[str, Any] | None = None) -> Any:
    rec = optim.record(name)
    kwargs = dict(options or {})
    if "fused" in inspect.signature(rec.factory).parameters:
        kwargs.setdefault("fused", False)  # (the page builds no kernel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rec.factory([torch.nn.Parameter(torch.zeros(2, 2))], **kwargs)


def algorithm(name: str) -> list[tuple[str, list[str]]]:
    """The update of the registered optimizer ``name`` at its defaults, rule by rule: every rule
    of its chain that acts at these values, its statements as TeX (``x ← ...``) where it is
    written in the form (an empty list: its update is torch code). Where the chain ends in one
    fused step (``core``, then an active decoupled decay, then ``scale_by_lr``), the entry is
    named ``"core + add_decayed_weights + scale_by_lr"`` and its lines end with the decay
    ``θ ← θ(1 - ηλ)`` and the step, in the order the step applies them."""
    opt = _optimizer(name)
    hyper = {k: v for k, v in opt.param_groups[0].items() if k not in ("params", "step")}
    plan = opt.rule.final_plan(hyper)
    out: list[tuple[str, list[str]]] = []
    for k, r in enumerate(opt.rule.rules):
        if r.passes_through(hyper) and not getattr(r, "lookahead", False):
            continue
        if not isinstance(r, F.FormRule):
            out.append((r.name, []))
            continue
        final = plan is not None and plan[0] == k
        body, coefs = statements(r.built(hyper), final)
        if not final and [(s.kind, s.python) for s in body] == [("out", "g")]:
            continue
        lines = [_line(s, coefs) for s in body]
        if final:
            folded = [x for x in (plan[1], opt.rule.rules[-1]) if x is not None]
            decay = [_decay_line(plan[1], hyper)] if plan[1] is not None else []
            out.append(
                (" + ".join([r.name, *(x.name for x in folded)]), lines[:-1] + decay + lines[-1:])
            )
            break
        out.append((r.name, lines))
    return out


def _line(s: Statement, coefs: Mapping[str, F.Coef]) -> str:
    target = {"out": "u", "final": r"\theta"}.get(s.kind) or _target(s.target)
    arrow = "=" if s.kind in ("let", "out") else r"\leftarrow"
    return f"{target} {arrow} {_statement_tex(s.python, coefs)}"


def _decay_line(rule: Any, hyper: Mapping[str, Any]) -> str:
    """The decoupled decay a fused step applies first, ``θ ← θ(1 - ηλ)``, from the decay rule's
    own form (its output ``g + λθ``, scaled by the step's ``-η``)."""
    body, coefs = statements(rule.built(hyper), False)
    [(kind, python)] = [(s.kind, s.python) for s in body]
    factor = python.removeprefix("g + ").removesuffix(" * p")
    if kind != "out" or factor == python:
        raise ValueError(f"{rule.name}'s form is not g + λθ: u = {python}")
    return rf"\theta \leftarrow {_statement_tex(f'p * (1 - lr * {factor})', coefs)}"


def _aligned(lines: list[str]) -> str:
    """Statements as one display-math block, a table aligned at their arrows."""
    rows = []
    for ln in lines:
        sign = (
            " = "
            if " = " in ln
            and (r" \leftarrow " not in ln or ln.index(" = ") < ln.index(r" \leftarrow "))
            else r" \leftarrow "
        )
        left, right = ln.split(sign, 1)
        rows.append(f"{left} & {sign.strip()} {right}")
    return "$$\n\\begin{array}{rl} " + r" \\ ".join(rows) + " \\end{array}\n$$"


def _box(name: str) -> str:
    """The algorithm box: a Markdown block of display math, one line per statement."""
    parts = []
    for rule, lines in algorithm(name):
        names = " + ".join(f"`{r}`" for r in rule.split(" + "))
        if not lines:
            parts.append(f"- {names}: written as torch code (see its entry)")
            continue
        fused = " (one fused step)" if " + " in rule else ""
        parts.append(f"- {names}{fused}, per element, at step $t$:\n\n{_aligned(lines)}\n")
    return "\n".join(parts)


def example(name: str) -> str:
    """A doctest: the optimizer's two steps on ``f(w) = ||w||²`` with its printed output (as
    this build printed it)."""
    rec = optim.record(name)
    cls = rec.factory.__name__
    lr = rec.lr_range[0] * 10 if rec.lr_range[0] * 10 <= rec.lr_range[1] else rec.lr_range[1]
    extra = {"lookahead": ", base='sgd'", "sam": ", base='sgd'"}.get(name, "")
    code = [
        "import torch",
        f"from descentlab.optim import {cls}",
        "w = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))",
        f"opt = {cls}([w], lr={lr:g}{extra})",
    ]
    if name == "sam":  # the gradient is taken twice a step: at the ascent point, then here
        code += [
            "def closure():",
            "    opt.zero_grad()",
            "    loss = (w ** 2).sum()",
            "    loss.backward()",
            "    return loss",
            "",
            "for _ in range(2):",
            "    loss = opt.step(closure)",
            "",
        ]
    else:
        code += [
            "for _ in range(2):",
            "    opt.zero_grad()",
            "    loss = (w ** 2).sum()",
            "    loss.backward()",
            "    _ = opt.step()",
            "",
        ]
    code.append("print(f'loss {loss.item():.4f} -> {(w ** 2).sum().item():.4f}')")
    src = "\n".join(code)
    out = io.StringIO()
    namespace: dict[str, Any] = {}
    torch.manual_seed(0)
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(src, f"<{name} example>", "exec"), namespace)
    lines = []
    for line in code:
        if line.startswith((" ", "print")) or not line:
            lines.append(("... " if line.startswith(" ") else ">>> " if line else "... ") + line)
        else:
            lines.append(">>> " + line)
    return "\n".join(lines).rstrip() + "\n" + out.getvalue().rstrip()


def _signature(obj: Any, name: str) -> str:
    sig = inspect.signature(obj)
    params = []
    star = False
    for p in sig.parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            params.append("*")
            star = True
        text = p.name if p.kind is not p.VAR_KEYWORD else f"**{p.name}"
        if p.annotation is not p.empty:
            ann = (
                p.annotation
                if isinstance(p.annotation, str)
                else inspect.formatannotation(p.annotation)
            )
            text += f": {ann}"
        if p.default is not p.empty:
            text += f" = {p.default!r}" if p.annotation is not p.empty else f"={p.default!r}"
        params.append(text)
    head = f"{name}("
    ret = sig.return_annotation
    if ret is sig.empty or ret is None or ret == "None":
        tail = ""
    else:
        tail = f" -> {ret if isinstance(ret, str) else inspect.formatannotation(ret)}"
    return head + (",\n" + " " * len(head)).join(params) + ")" + tail


def _params_table(name: str) -> str:
    rec = optim.record(name)
    opt = _optimizer(name)
    words: dict[str, str] = {}
    for r in opt.rule.rules:
        for key, text in describe(r.checks).items():
            words.setdefault(key, text)
    rows = ["| parameter | default | meaning | must be |", "|---|---|---|---|"]
    for p in inspect.signature(rec.factory).parameters.values():
        default = "required" if p.default is inspect.Parameter.empty else f"`{p.default!r}`"
        meaning = MEANINGS.get(p.name, "see the rule's entry")
        must = words.get(p.name, "")
        rows.append(f"| `{p.name}` | {default} | {meaning} | {must} |".replace("||", "| |"))
    return "\n".join(rows)


def optimizer_section(name: str) -> str:
    """One optimizer's entry: signature, parameters, algorithm box, example, reference."""
    rec = optim.record(name)
    cls = rec.factory.__name__
    chain = " → ".join(f"`{r.name}`" for r in _optimizer(name).rule.rules)
    doc = (inspect.getdoc(rec.factory) or "").split("\n\n")[0].replace("\n", " ")
    return "\n".join([
        f"## {rec.display} {{ #{name} }}",
        "",
        f"`descentlab.optim.{cls}` · {rec.year} · {rec.reference}",
        "",
        "```python",
        _signature(rec.factory, cls),
        "```",
        "",
        _ref_text(doc),
        "",
        f"Its chain: {chain}.",
        "",
        "**Parameters**",
        "",
        _params_table(name),
        "",
        "**The update** (derived from the rules' form: every backend runs these statements "
        "in this order; $g$ is the incoming gradient, $\\theta$ the parameter, $\\eta$ the "
        "learning rate):",
        "",
        _box(name),
        "",
        "**Example** (a doctest: the build ran it and printed this)",
        "",
        "```pycon",
        example(name),
        "```",
        "",
        f"**Reference**: {rec.reference}.",
        "",
    ])  # fmt: skip


def _ref_text(doc: str) -> str:
    """A docstring's first paragraph for Markdown (its Sphinx roles as code)."""
    import re

    doc = re.sub(r":(?:class|mod|func|meth|attr|data):`~?([^`<]+?)\s*(?:<[^>]+>)?`",
                 lambda m: f"`{m.group(1).strip().rsplit('.', 1)[-1]}`", doc)  # fmt: skip
    doc = re.sub(r":math:`([^`]+)`", r"$\1$", doc)
    return doc.replace("``", "`")


def rule_section(name: str) -> str:
    """One ``scale_by_*`` rule's entry: signature, first paragraph, its update (when written in
    the form) and a link to its full docstring."""
    cls = getattr(optim, name)
    doc = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
    parts = [f"### `{name}` {{ #{name} }}", "", "```python", _signature(cls, name), "```", "",
             _ref_text(doc), ""]  # fmt: skip
    rule = cls()
    if isinstance(rule, F.FormRule):
        hyper = dict(rule.defaults)
        body, coefs = statements(rule.built(hyper), False)
        lines = []
        for s in body:
            target = "u" if s.kind == "out" else _target(s.target)
            arrow = "=" if s.kind in ("let", "out") else r"\leftarrow"
            lines.append(f"{target} {arrow} {_statement_tex(s.python, coefs)}")
        parts += ["Its update $u$ at its defaults, per element:", "", _aligned(lines), ""]
    else:
        parts += ["Written as torch code (not in the form): see its docstring.", ""]
    return "\n".join(parts)


def optimizers_page() -> str:
    """The whole page (Markdown for MkDocs with arithmatex)."""
    records = optim.records()
    rules = [n for n in optim.__all__ if n.startswith("scale_by_")]
    head = [
        "# Optimizers and rules: the reference",
        "",
        "Every optimizer of `descentlab.optim` and every `scale_by_*` rule, generated from the "
        "code: the signature with every default, each parameter's meaning and what it must be "
        "(the checks that make the error messages), the update derived from the rule's form "
        "(the statements every backend runs, in order), an example the build ran, and the "
        "reference. The docstrings' full text is on [descentlab.optim](optim.md).",
        "",
        "Optimizers: " + ", ".join(f"[{r.display}](#{r.name})" for r in records) + ".",
        "",
        "Rules: " + ", ".join(f"[`{n}`](#{n})" for n in rules) + ".",
        "",
    ]
    body = [optimizer_section(r.name) for r in records]
    rule_part = ["## The rules { #rules }", "", *[rule_section(n) for n in rules]]
    return "\n".join(head + body + rule_part)


def run_example(text: str) -> doctest.TestResults:
    """Run an entry's example as a doctest (the tests call it)."""
    test = doctest.DocTestParser().get_doctest(text, {}, "example", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner.run(test)
    return runner.summarize(verbose=False)


#: each schedule factory of ``descentlab.schedules`` with the call its example makes (every
#: factory that gives a ``step -> value`` schedule; a test keeps the list complete)
SCHEDULE_EXAMPLES: dict[str, str] = {
    "constant": "constant(0.1)",
    "constant_factor": "constant_factor(factor=0.5, total_iters=10, base=0.1)",
    "cosine": "cosine(T_max=100, base=0.1)",
    "cosine_restarts": "cosine_restarts(T_0=50, base=0.1)",
    "exponential": "exponential(gamma=0.99, base=0.1)",
    "inverse_time_decay": "inverse_time_decay(k=0.01, base=0.1)",
    "join": "join([constant(0.1), cosine(T_max=50, base=0.1)], [50])",
    "lambda_schedule": "lambda_schedule(lambda t: 1 / (1 + t), base=0.1)",
    "linear": "linear(start_factor=0.1, total_iters=50, base=0.1)",
    "multiplicative": "multiplicative(lambda t: 0.95, base=0.1)",
    "multistep": "multistep([30, 80], gamma=0.1, base=0.1)",
    "one_cycle": "one_cycle(100, max_lr=0.1)",
    "polynomial": "polynomial(total_iters=100, power=2.0, base=0.1)",
    "sequence": "sequence([constant(0.1), exponential(gamma=0.9, base=0.1)], [30])",
    "step": "step(step_size=30, gamma=0.1, base=0.1)",
    "warmup": "warmup(cosine(T_max=100, base=0.1), steps=10)",
}

_STEPS = (0, 10, 50, 100)


def schedule_example(name: str) -> str:
    """A doctest: the schedule made by :data:`SCHEDULE_EXAMPLES` and its values at steps 0,
    10, 50 and 100, as this build printed them."""
    call = SCHEDULE_EXAMPLES[name]
    namespace: dict[str, Any] = {}
    exec("from descentlab.schedules import *", namespace)
    sched = eval(call, namespace)  # the table's own literal calls
    values = [round(float(sched(t)), 6) for t in _STEPS]
    return (
        f">>> from descentlab.schedules import *\n>>> s = {call}\n"
        f">>> [round(float(s(t)), 6) for t in {_STEPS}]\n{values}"
    )


def _first_paragraph(obj: Any) -> str:
    return _ref_text((inspect.getdoc(obj) or "").split("\n\n")[0].replace("\n", " "))


def schedules_page() -> str:
    """The schedules' reference (Markdown)."""
    from descentlab import schedules

    out = [
        "# Schedules: the reference",
        "",
        "Every schedule factory of `descentlab.schedules`: its signature with every default, "
        "what it computes (the formulas are on [descentlab.schedules](schedules.md), drawn as "
        "math) and an example the build ran, with its values at steps 0, 10, 50 and 100. The "
        "main job's entry points (train, compare, ...) are on [Entry points](entry-points.md).",
        "",
    ]
    namespace: dict[str, Any] = {}
    exec("from descentlab.schedules import *", namespace)
    for name in sorted(SCHEDULE_EXAMPLES):
        fn = getattr(schedules, name)
        made = type(eval(SCHEDULE_EXAMPLES[name], namespace))
        what = _first_paragraph(made)
        out += [
            f"## `{name}` {{ #{name} }}",
            "",
            "```python",
            _signature(fn, name),
            "```",
            "",
            _first_paragraph(fn),
            "",
            f"It makes a `{made.__name__}`: {what}" if what else "",
            "",
            "```pycon",
            schedule_example(name),
            "```",
            "",
        ]
    return "\n".join(out)


#: the main job's entry points, ``(module, name)`` as a user imports them, with the command of
#: ``descentlab`` that calls each and the guide (a site page of :data:`GUIDES`) that explains it
ENTRY_POINTS: dict[tuple[str, str], tuple[str, str]] = {
    ("descentlab.engine", "train"): ("train", "training-runs.md"),
    ("descentlab.engine", "resume"): ("train", "training-runs.md"),
    ("descentlab.engine", "train_many"): ("train", "training-runs.md"),
    ("descentlab.experiments.compare", "compare"): ("compare", "compare.md"),
    ("descentlab.experiments.compare", "load_comparison"): ("report", "compare.md"),
    ("descentlab.report.html", "render_report"): ("report", "compare.md"),
    ("descentlab.book.build", "write_book"): ("lectures", "book.md"),
    ("descentlab.book.experiments", "run"): ("experiment", "book.md"),
    ("descentlab.problems.trajectories", "run"): ("landscape", "optimizers.md"),
    ("descentlab.problems.trajectories", "races"): ("landscape", "optimizers.md"),
    ("descentlab.playground.app", "serve"): ("playground", "playground.md"),
    ("descentlab.book.render.seed_figures", "write_seed_figures"): ("figures", "command-line.md"),
}

#: the commands that call no entry point of their own, and where their Python side is
OTHER_COMMANDS: dict[str, str] = {
    "optimizers": "descentlab.optim's records and cards: the optimizers' reference page",
    "check-optimizer": "descentlab.experiments.optimizer_check.check_optimizer, one line per check: "
    "docs/own_optimizer.md",
    "convarith": "a lecture's arithmetic table (descentlab.problems.convarith), not a job",
    "scale": "compare at several model sizes (descentlab.experiments.scale.study calls compare "
    "once a size, then fits the trend): docs/scale.md",
    "runs": "a store's runs listed and shown (descentlab.store.Store.list_runs, get_run), "
    "read-only: docs/files-and-faults.md",
}

#: the guides' titles (their pages' first headings)
GUIDES: dict[str, str] = {
    "training-runs.md": "Training runs, one or many at once",
    "compare.md": "Which optimizer, with which learning rate?",
    "book.md": "The lecture book",
    "optimizers.md": "Optimizers from update rules",
    "playground.md": "The playground: descent pictures in the browser",
    "command-line.md": "Command line",
}

#: the docstring sections every entry point has (``Args`` where it takes parameters)
REQUIRED = ("Returns", "Writes", "Raises", "Example")

#: a Google-style section's title line
_SECTION = re.compile(r"^(?P<title>[A-Z][A-Za-z ]*):\s*$")


class ExampleFailed(SystemExit):
    """An entry point's example printed other than it shows (or its docstring lacks a
    section): the site's build stops with this message."""


def entry_point(module: str, name: str) -> Callable[..., Any]:
    """The function ``name`` of ``module`` (imported)."""
    return getattr(importlib.import_module(module), name)


def docstring_sections(obj: Any) -> dict[str, str]:
    """``obj``'s docstring split at its Google-style sections: ``{"": the text before the
    first, "Args": ..., "Returns": ..., ...}``, each section's body dedented."""
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in (inspect.getdoc(obj) or "").splitlines():
        m = _SECTION.match(line)
        if m:
            current = m.group("title")
            sections[current] = []
        else:
            sections[current].append(line)
    return {k: textwrap.dedent("\n".join(v)).strip("\n") for k, v in sections.items()}


def _items(block: str) -> dict[str, str]:
    """A section's ``name: text`` items (continued on the lines indented below each)."""
    out: dict[str, str] = {}
    key = None
    for line in block.splitlines():
        if line and not line[0].isspace():
            key, _, text = line.partition(":")
            key = key.strip()
            out[key] = text.strip()
        elif key is not None and line.strip():
            out[key] += " " + line.strip()
    return out


def parameter_meanings(obj: Any) -> dict[str, str]:
    """Each parameter of ``obj``'s signature with its meaning from the docstring's ``Args``
    (``**opts`` as ``opts``); a parameter the docstring leaves out maps to ``""``."""
    args = {k.lstrip("*"): v for k, v in _items(docstring_sections(obj).get("Args", "")).items()}
    return {p: args.get(p, "") for p in inspect.signature(obj).parameters}


#: a default a parameter's meaning states: ``(default ``"lr"``)``, ``default: 0.9``,
#: ``defaults to ``True````
_STATED_DEFAULT = re.compile(
    r"\bdefaults?(?: to| is)?:?\s*"
    r"(?:``(?P<code>[^`]+)``|(?P<num>-?\d+(?:\.\d+)?(?:e-?\d+)?)(?=\s*[).,;]|\s*$))"
)


def stated_defaults(obj: Any) -> list[str]:
    """The defaults ``obj``'s docstring states for its parameters (``Args``) that its
    signature contradicts: ``"f(lr): the docstring says 0.1, the signature 0.01"``. A stated
    default that is no Python literal (``default: the CPU count``) is words, left alone.

    Example:
        >>> def f(lr=0.01, key="lr"): ...
        >>> f.__doc__ = "Args:\\n    lr: the rate (default 0.1).\\n    key: (default ``'lr'``)."
        >>> stated_defaults(f)
        ['f(lr): the docstring says 0.1, the signature 0.01']
    """
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    out = []
    for name, meaning in parameter_meanings(obj).items():
        for m in _STATED_DEFAULT.finditer(meaning):
            text = m["code"] or m["num"]
            try:
                stated = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                continue
            default = sig.parameters[name].default
            if default is inspect.Parameter.empty or stated != default:
                shown = "none" if default is inspect.Parameter.empty else repr(default)
                out.append(
                    f"{getattr(obj, '__qualname__', obj)}({name}): the docstring says {text}, "
                    f"the signature {shown}"
                )
    return out


def default_contradictions() -> list[str]:
    """Every default a documented page states that the code contradicts
    (:func:`stated_defaults`): the entry points, the optimizers' classes, the schedules."""
    from descentlab import schedules

    objs: list[Any] = [entry_point(m, n) for m, n in ENTRY_POINTS]
    objs += [r.factory for r in optim.records()]
    objs += [getattr(schedules, n) for n in schedules.__all__ if callable(getattr(schedules, n))]
    return [line for obj in objs for line in stated_defaults(obj)]


def _example_parts(block: str) -> tuple[str, str]:
    """An ``Example`` section's prose (before its first ``>>>``) and its doctest."""
    lines = block.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith(">>>")), len(lines))
    return "\n".join(lines[:first]).strip(), textwrap.dedent("\n".join(lines[first:])).strip()


def _slug(module: str, name: str) -> str:
    """An entry's anchor: its module's last part and its name (``trajectories-run``)."""
    return f"{module.rsplit('.', 1)[-1]}-{name}".replace("_", "-")


def _label(module: str, name: str) -> str:
    """An entry's heading: its name, with its module's last part where another entry point
    has that name (``trajectories.run``)."""
    names = [n for _, n in ENTRY_POINTS]
    return name if names.count(name) == 1 else f"{module.rsplit('.', 1)[-1]}.{name}"


def _cell(text: str) -> str:
    """Text for a Markdown table's cell."""
    return _ref_text(text).replace("|", "\\|")


def check_example(text: str, where: str) -> None:
    """Run the doctest ``text`` (fresh globals: it imports what it uses); :class:`ExampleFailed`
    naming ``where`` and showing the difference when it prints otherwise."""
    report = io.StringIO()
    with contextlib.redirect_stdout(report):  # (doctest's report of each failure)
        failed = run_example(text).failed
    if failed:
        raise ExampleFailed(
            f"api_entry_points: the example of {where} does not print what it shows "
            f"(fix the example in its docstring):\n{report.getvalue()}"
        )


def entry_point_section(module: str, name: str, *, run: bool = True) -> str:
    """One entry point's entry (Markdown): signature, summary, parameters, returns, files
    written, errors, the example (run and checked when ``run``), see-also links.

    Raises:
        ExampleFailed: a section missing, a parameter without a meaning, an example marked
            to be skipped, or (``run``) an example that prints otherwise.
    """
    fn = entry_point(module, name)
    where = f"{module}.{name}"
    sections = docstring_sections(fn)
    meanings = parameter_meanings(fn)
    missing = [s for s in REQUIRED if not sections.get(s)]
    missing += [f"Args: {p}" for p, text in meanings.items() if not text]
    if missing:
        raise ExampleFailed(f"api_entry_points: the docstring of {where} lacks {missing}")
    contradicted = stated_defaults(fn)
    if contradicted:
        raise ExampleFailed(f"api_entry_points: {where}'s docstring: {'; '.join(contradicted)}")
    intro, example = _example_parts(sections["Example"])
    if "+SKIP" in example:
        raise ExampleFailed(f"api_entry_points: the example of {where} skips a line")
    if run:
        check_example(example, where)
    command, guide = ENTRY_POINTS[(module, name)]
    refs = sections.get("References", "")
    rows = ["| parameter | default | meaning |", "|---|---|---|"]
    for p in inspect.signature(fn).parameters.values():
        shown = {p.VAR_KEYWORD: f"**{p.name}", p.VAR_POSITIONAL: f"*{p.name}"}.get(p.kind, p.name)
        default = "required" if p.default is p.empty else f"`{p.default!r}`"
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            default = ""
        rows.append(f"| `{shown}` | {default} | {_cell(meanings[p.name])} |")
    raises = "\n".join(
        f"- `{exc}`: {_ref_text(text)}" for exc, text in _items(sections["Raises"]).items()
    )
    return "\n".join([
        f"## `{_label(module, name)}` {{ #{_slug(module, name)} }}",
        "",
        f"`from {module} import {name}` · the command: "
        f"[`descentlab {command}`](../cli-examples.md#{command})",
        "",
        "```python",
        _signature(fn, name),
        "```",
        "",
        _ref_text(sections[""]),
        "",
        "**Parameters**",
        "",
        *(rows if len(rows) > 2 else ["None."]),
        "",
        f"**Returns**: {_ref_text(' '.join(sections['Returns'].split()))}",
        "",
        f"**Writes to disk**: {_ref_text(' '.join(sections['Writes'].split()))}",
        "",
        "**Raises**:",
        "",
        raises,
        "",
        "**Example** (a doctest: the build ran it and checked that it printed this)"
        + (f". {_ref_text(' '.join(intro.split()))}" if intro else ""),
        "",
        "```pycon",
        example,
        "```",
        "",
        *([f"**References**: {_ref_text(' '.join(refs.split()))}", ""] if refs else []),
        f"**See also**: [{GUIDES[guide]}](../{guide}).",
        "",
    ])  # fmt: skip


def entry_points_page(*, run: bool = True) -> str:
    """The whole page (Markdown), every example run and checked (``run``)."""
    index = ", ".join(
        f"[`{_label(module, name)}`](#{_slug(module, name)})" for module, name in ENTRY_POINTS
    )
    head = [
        "# Entry points: the reference",
        "",
        "The Python functions behind the command line's main commands: train one run or many, "
        "resume one, compare optimizers and report on it, build the lecture book, run a "
        "lecture's experiment, draw descents on a landscape, serve the playground, draw the "
        "lectures' figures. Each with "
        "its signature and every default, its parameters' meanings, what it returns and "
        "writes to disk, the errors it raises on bad input, and an example that this build "
        "ran, checking that it printed what is shown (the same text as `help()` gives).",
        "",
        f"Entry points: {index}.",
        "",
    ]
    contradicted = default_contradictions()  # (the optimizers' and schedules' too)
    if contradicted:
        raise ExampleFailed(f"api pages: a docstring's default is not the code's: {contradicted}")
    body = [entry_point_section(module, name, run=run) for module, name in ENTRY_POINTS]
    return "\n".join(head + body)
