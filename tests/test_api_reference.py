"""The optimizers' reference page (``scripts/api_pages.py``) and the site's text
(``scripts/griffe_docstrings.py``, ``scripts/site_text.py``): every optimizer and rule with
its signature and defaults, each parameter's meaning, the update derived from its form as
math, an example that runs as a doctest; no Sphinx role or TeX string left raw on the site."""

from __future__ import annotations

import doctest
import inspect
from pathlib import Path

import pytest
import torch
from _scripts import script

from descentlab import optim
from descentlab.optim import form as F

ROOT = Path(__file__).resolve().parents[1]


A = script("api_pages")
RECORDS = optim.records()
RULES = [n for n in optim.__all__ if n.startswith("scale_by_")]


@pytest.mark.parametrize(
    ("python", "tex"),
    [
        ("exp_avg + c * (g - exp_avg)", r"m + c\,(g - m)"),
        ("a / b", r"\frac{a}{b}"),
        ("sqrt(exp_avg_sq) + eps", r"\sqrt{v} + \mathrm{eps}"),
        ('1 - h["betas"][0] ** t', r"1 - {\beta_1}^{t}"),
        ('(1 - h["betas"][1] ** t) ** 0.5', r"\sqrt{1 - {\beta_2}^{t}}"),
        ('h["eps"]', r"\epsilon"),
        ("p + step * g", r"\theta + \mathrm{step}\,g"),
        ("g * -lr", r"g\,(-\eta)"),
        ("a + -b", "a - b"),
        ("maximum(a, b)", r"\max(a, b)"),
        ("sign(x1)", r"\operatorname{sign}(x_1)"),
        ("where(e != 0, g, b)", r"\begin{cases} g & e \neq 0 \\ b & \text{otherwise} \end{cases}"),
        ("t % k == 0 != 0", r"t \bmod k = 0"),
        ("1 * g", "g"),
    ],
)
def test_python_statements_become_tex(python, tex):
    assert A.python_to_tex(python) == tex


@pytest.mark.parametrize("rec", RECORDS, ids=lambda r: r.name)
def test_every_optimizer_has_signature_parameters_update_and_a_running_example(rec):
    section = A.optimizer_section(rec.name)
    params = inspect.signature(rec.factory).parameters
    for p in params.values():  # the signature with every default, a row per parameter
        shown = p.name if p.default is p.empty else f"{p.name}: "
        assert shown in section.split("```", 2)[1], p.name
        assert f"| `{p.name}` |" in section
        assert p.name in A.MEANINGS, f"{rec.name}.{p.name} has no meaning on the page"
    assert "**The update**" in section and rec.reference in section
    example = section.split("```pycon\n", 1)[1].split("```", 1)[0]
    assert example.rstrip().splitlines()[-1].startswith("loss ")
    assert A.run_example(example).failed == 0  # the printed output is what it prints


def test_the_update_is_math_derived_from_the_form_wherever_the_rules_are_written_in_it():
    with_math = [r.name for r in RECORDS if any(lines for _, lines in A.algorithm(r.name))]
    assert len(with_math) >= 18
    for r in RECORDS:  # every rule written in the form that acts shows its statements
        rules = {x.name: x for x in A._optimizer(r.name).rule.rules}
        for label, lines in A.algorithm(r.name):
            form = all(isinstance(rules[x], F.FormRule) for x in label.split(" + "))
            assert bool(lines) == form, (r.name, label)
    [(rule, lines)] = A.algorithm("adam")
    assert rule == "scale_by_adam + scale_by_lr"
    assert lines[0] == r"m \leftarrow m + (1 - \beta_1)\,(g - m)"
    assert lines[-1].startswith(r"\theta \leftarrow \theta + \frac{-\frac{\eta}{1 - {\beta_1}^{t}}")


def _steps(rec, without: int | None = None, n: int = 6, plain: bool = True):
    """``n`` steps on a fixed quadratic (through a closure) of an Optimizer running the
    registered optimizer's chain at its defaults, less the rule ``without`` (``plain`` false:
    the registered optimizer itself)."""
    opt0 = A._optimizer(rec.name)
    hyper = {k: v for k, v in opt0.param_groups[0].items() if k not in ("params", "step")}
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(3, 4, dtype=torch.float64))
    gs = [torch.randn(3, 4, dtype=torch.float64) for _ in range(n)]
    if not plain:
        fused = "fused" in inspect.signature(rec.factory).parameters
        opt = rec.factory([p], **({"fused": False} if fused else {}))
    else:
        ch = optim.chain(*[r for i, r in enumerate(opt0.rule.rules) if i != without])
        opt = optim.Optimizer([p], ch, fused=False,
                              **{k: v for k, v in hyper.items() if k in ch.defaults})  # fmt: skip
    for t in range(n):

        def closure(t=t):
            opt.zero_grad()
            loss = (p * gs[t]).sum() + 0.5 * (p * p).sum()
            loss.backward()
            return loss

        opt.step(closure)
    return p.detach()


@pytest.mark.parametrize("rec", RECORDS, ids=lambda r: r.name)
def test_each_optimizers_box_shows_every_rule_its_chain_runs(rec):
    """A rule acts where taking it out of the chain changes the steps (measured, six steps at
    the defaults); the box names exactly those rules (the ones a fused step folds in too).
    SAM's ascent runs in its class's step, through the closure: it acts where the registered
    SAM's steps differ from its plain chain's."""
    full = _steps(rec)
    acting = set()
    for i, r in enumerate(A._optimizer(rec.name).rule.rules):
        try:
            if not torch.equal(_steps(rec, without=i), full):
                acting.add(r.name)
        except ValueError:  # the chain is that rule alone
            acting.add(r.name)
    if rec.name == "sam" and not torch.equal(_steps(rec, plain=False), full):
        acting.add("sam_ascent")
    shown = {name for label, _ in A.algorithm(rec.name) for name in label.split(" + ")}
    assert shown == acting


def test_adamws_box_shows_the_decoupled_decay_its_step_applies():
    """lr 0.1, weight decay 0.5, a zero gradient: AdamW multiplies the weights by 0.95 (Adam's
    L2 penalty, normalised, moves them by η instead); AdamW's box says so, before the adaptive
    step, and Adam's has no decay."""
    [(label, lines)] = A.algorithm("adamw")
    assert label == "scale_by_adam + add_decayed_weights + scale_by_lr"
    assert lines[-2] == r"\theta \leftarrow \theta\,(1 - \eta\,\lambda)"
    assert all("lambda" not in line for _, ls in A.algorithm("adam") for line in ls)
    for cls, factor in ((optim.AdamW, 0.95), (optim.Adam, 0.9)):
        w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
        opt = cls([w], lr=0.1, weight_decay=0.5, fused=False)
        w.grad = torch.zeros_like(w)
        opt.step()
        assert torch.allclose(w.detach(), torch.full((3,), factor, dtype=torch.float64))


@pytest.mark.parametrize("name", RULES)
def test_every_rule_has_its_entry(name):
    section = A.rule_section(name)
    assert section.startswith(f"### `{name}` {{ #{name} }}") and f"{name}(" in section
    if isinstance(getattr(optim, name)(), F.FormRule):
        assert "\\begin{array}" in section


@pytest.mark.parametrize(
    ("docstring", "site"),
    [
        (":class:`~descentlab.optim.Adam` x",
         '<autoref identifier="descentlab.optim.Adam" optional><code>Adam</code></autoref> x'),
        (":mod:`descentlab.optim.lowbit`",
         '<autoref identifier="descentlab.optim.lowbit" optional><code>descentlab.optim.lowbit'
         "</code></autoref>"),
        (":meth:`apply <descentlab.optim.Rule.apply_final>`",
         '<autoref identifier="descentlab.optim.Rule.apply_final" optional><code>apply</code>'
         "</autoref>"),
        (":math:`1-\\beta^t` factor", "$1-\\beta^t$ factor"),
        ("A\n\n.. math::\n    u = a\n    + b\n\nB", "A\n\n\n$$\nu = a + b\n$$\n\nB"),
        ("x\n\n.. note:: y", "x\n\nNote: y"),
        ("Example:\n    Two:\n\n    >>> f(1)\n    ['a']\n\n    After.",
         "Example:\n    Two:\n\n    ```pycon\n    >>> f(1)\n    ['a']\n    ```\n\n    After."),
        ("Examples:\n    >>> f(1)\n    1\nArgs:\n    >>> g()",  # griffe's own section kept
         "Examples:\n    >>> f(1)\n    1\nArgs:\n    ```pycon\n    >>> g()\n    ```"),
    ],
)  # fmt: skip
def test_docstrings_are_rendered_without_sphinx_markup(docstring, site):
    ext = script("griffe_docstrings")
    obj = type("Obj", (), {"parent": None, "module": type("M", (), {"path": "m"})()})()
    assert ext.site_docstring(docstring, obj) == site


@pytest.mark.parametrize(
    ("html", "raw"),
    [
        ("<p>see :class:<code>Adam</code></p>", 1),
        ("<p>:math:`x` and :func:`f`</p>", 2),
        ("<p>.. math:: u = 1</p>", 1),
        ("<p>\\(x\\) unrendered</p>", 1),
        ("<pre>:class:`x`</pre><code>:mod:`y`</code>", 0),  # quoted as code: an example
        ("<p>ratio 1:2, time 10:30, <math><mi>x</mi></math></p>", 0),
        ("<blockquote>\n<blockquote>\n<blockquote>\n<p>f(1)\n2</p>", 1),  # a doctest as quotes
        ("<blockquote><p>a quote</p></blockquote>", 0),
    ],
)
def test_raw_markup_on_a_page_is_found(html, raw):
    assert len(script("site_text").raw_markup(html)) == raw


def test_every_schedule_factory_has_an_example_that_runs():
    from descentlab import schedules

    factories = {
        n for n in schedules.__all__
        if n[0].islower() and n not in ("as_schedule", "from_function",
                                        "bold_driver", "reduce_on_plateau",
                                        "one_cycle_momentum")
    }  # fmt: skip
    assert factories == set(A.SCHEDULE_EXAMPLES)  # (the loss rules and helpers: not step -> value)
    page = A.schedules_page()
    for name in A.SCHEDULE_EXAMPLES:
        assert f"## `{name}` {{ #{name} }}" in page
        assert A.run_example(A.schedule_example(name)).failed == 0
    assert "Entry points" not in page.split("\n## ", 1)[1]  # (their own page: entry-points.md)


def test_the_api_pages_scripts_own_examples_run():
    """The script is not in ``src/``, so ``--doctest-modules`` does not reach its examples."""
    tried = doctest.testmod(A, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert tried.attempted == 8 and tried.failed == 0
