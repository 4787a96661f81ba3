"""The lecture book, the remaining new lecture experiments (convolution, information, closed
form, mini-batch variance, regularization's new methods) and the convarith command."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from descentlab.cli import main
from descentlab.engine.procpool import map_in_processes
from descentlab.experiments import lectures
from descentlab.experiments.lectures import convolution as CV
from descentlab.experiments.lectures import information as IN
from descentlab.experiments.lectures import regularization as RG
from descentlab.experiments.lectures._common import ExperimentResult
from descentlab.report import lecture_book, lecture_claims

_CACHE: dict[str, ExperimentResult] = {}
ROOT = Path(__file__).resolve().parents[1]


def quick(name: str) -> ExperimentResult:
    if name not in _CACHE:
        _CACHE[name] = lectures.run(name, quick=True)
    return _CACHE[name]


# ------------------------------------------------------------------------------------------
# convolution


def test_conv_definitions_equal_torch_after_the_flip():
    rng = np.random.default_rng(3)
    f, g = rng.normal(size=9), rng.normal(size=4)
    d = CV.conv1d_by_definition(f, g)
    assert np.allclose(d, np.convolve(f, g), atol=1e-12)
    assert np.allclose(d, CV.torch_conv1d(f, g, flip=True), atol=1e-12)
    assert not np.allclose(d, CV.torch_conv1d(f, g, flip=False), atol=1e-3)
    img, ker = rng.normal(size=(5, 6)), rng.normal(size=(3, 2))
    d2 = CV.conv2d_by_definition(img, ker)
    assert np.allclose(d2, CV.torch_conv2d(img, ker, flip=True), atol=1e-12)
    assert not np.allclose(d2, CV.torch_conv2d(img, ker, flip=False), atol=1e-3)
    r = quick("convolution")
    assert all(r.checks.values()), {k: r.measured[k] for k, ok in r.checks.items() if not ok}


def test_inception_table_against_torch_modules():
    from descentlab.problems import convarith as ca

    for reduce in (True, False):
        rows = ca.inception_table(reduce)
        block = CV._inception_module(reduce)
        assert sum(p.numel() for p in block.parameters()) == rows[-1]["weights"]
        with torch.no_grad():
            out = block(torch.zeros(1, 192, 28, 28))
        assert tuple(out.shape[1:]) == tuple(rows[-1]["out_shape"])
    with pytest.raises(ValueError, match="missing"):
        ca.inception_table(block={"in": 3})


def test_convarith_cli(capsys, tmp_path):
    assert main(["convarith", "alexnet", "--figure", str(tmp_path / "a.png")]) == 0
    out = capsys.readouterr().out
    assert "177,209,344" in out and "98.8 %" in out and (tmp_path / "a.png").stat().st_size > 0
    assert main(["convarith", "bottleneck"]) == 0
    assert "147,456" in capsys.readouterr().out
    assert main(["convarith", "inception", "--figure", str(tmp_path / "i.png")]) == 0
    out = capsys.readouterr().out
    assert "163,328" in out and "387,072" in out
    assert main(["convarith", "bottleneck", "--figure", str(tmp_path / "b.png")]) == 2


# ------------------------------------------------------------------------------------------
# information, closed form, mini-batches


def test_entropy_coin_and_die_and_ce_is_h_plus_kl():
    assert IN.entropy([0.5, 0.5]) == pytest.approx(1.0)
    assert IN.entropy([5 / 6, 1 / 6]) == pytest.approx(0.6500224216483541)
    p, q = np.array([0.2, 0.5, 0.3]), np.array([0.4, 0.4, 0.2])
    assert IN.cross_entropy(p, q) == pytest.approx(IN.entropy(p) + IN.kl(p, q), abs=1e-12)
    r = quick("information")
    assert all(r.checks.values())


def test_closed_form_four_ways_and_normal_equations():
    r = quick("closed_form")
    timing = ("grows like", "many gradients")
    for text, ok in r.checks.items():
        if not any(t in text for t in timing):
            assert ok, (text, r.measured[text])
    s = r.data["cost"]["slopes"]
    assert s["hessian"] > s["gradient"] + 0.5  # n p² + p³ against n p


def test_minibatch_variance_falls_like_one_over_b():
    r = quick("minibatch")
    assert abs(r.data["slope"] + 1) <= 0.1
    assert all(r.checks.values()), {k: r.measured[k] for k, ok in r.checks.items() if not ok}


def test_regularization_new_methods_configs():
    from descentlab.engine.config import RunConfig

    base = RunConfig(problem="digits", model="digits_mlp", model_options={"hidden": [64]},
                     optimizer="adam", hyper={"lr": 1e-3}, steps=10)  # fmt: skip
    cfg = RG.method_configs(base, RG.DEFAULTS)
    assert cfg["augmentation"].augment == {"max_translate": 1}
    assert cfg["input_noise"].input_noise == RG.DEFAULTS["input_noise"]
    assert cfg["weight_noise"].weight_noise == RG.DEFAULTS["weight_noise"]
    assert cfg["batch_norm"].model_options == {"hidden": [64], "batch_norm": True}
    for c in cfg.values():
        c.validate()


# ------------------------------------------------------------------------------------------
# the book


def test_book_page_shows_every_item_with_checks(tmp_path):
    paths = lecture_book.write_book(tmp_path, quick=True, only=["004"])
    index, page = paths
    text = page.read_text(encoding="utf-8")
    lec = next(x for x in lecture_claims.LECTURES if x.seed == "004")
    assert page.name == f"{lec.slug}.html"
    assert f"<title>{lec.subject}</title>" in text  # titled by the subject
    assert text.count('<section class="claim') == len(lec.claims)
    for cl in lec.claims:  # in the lecture's order
        assert f'id="c{cl.key}"' in text
    keys = re.findall(r'<section class="claim \w+" id="c([\d.]+)"', text)
    assert keys == [cl.key for cl in lec.claims]
    assert '<span class="no">' not in text, "a check failed on the 004 page"
    assert text.count('<span class="ok">✔</span>') >= len(lec.claims)
    assert text.count("<td>") > 3 * len(lec.claims)  # measured and expected beside each check
    # self-contained
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert all(s.startswith("data:image/png;base64,") for s in re.findall(r'src="([^"]*)"', text))
    assert f'href="{page.name}"' in index.read_text(encoding="utf-8")
    # the experiment results are kept and reused by the next build
    assert (tmp_path / "data" / "information.json").is_file()
    msgs: list[str] = []
    lecture_book.write_book(tmp_path, quick=True, only=["004"], log=msgs.append)
    assert any("reusing" in m for m in msgs)


def test_book_rejects_unknown_lectures(tmp_path):
    with pytest.raises(KeyError, match=r"optimization-basics or 000 \(Optimization: from"):
        lecture_book.write_book(tmp_path, only=["999"])


def test_the_process_pool_maps_calls_and_keeps_their_errors():
    # the book's experiments run through the engine's pool: results in call order, an error
    # stays in its future and every call is reported once as it finishes
    seen: list[int] = []
    futures = map_in_processes(
        divmod, [(7, 2), (1, 0), (9, 3)], workers=2, done=lambda i, f: seen.append(i)
    )
    assert sorted(seen) == [0, 1, 2]
    assert futures[0].result() == (3, 1) and futures[2].result() == (3, 0)
    assert isinstance(futures[1].exception(), ZeroDivisionError)
    assert map_in_processes(divmod, [], workers=2) == []
    with pytest.raises(ValueError, match="workers must be a positive integer, got 0"):
        map_in_processes(divmod, [(1, 1)], workers=0)


def test_coverage_document_is_current():
    doc = ROOT / "docs" / "lectures-coverage.md"
    assert doc.read_text(encoding="utf-8") == lecture_claims.coverage_markdown()
    keys = [c.key for lec in lecture_claims.LECTURES for c in lec.claims]
    assert len(keys) == len(set(keys)) >= 98


def test_optimizer_table_years_and_axes_from_the_chains():
    from descentlab.report import lecture_figures as LF

    fig = LF.build("seed001_optimizer_table", quick=True)
    texts = [t.get_text() for t in fig.axes[0].texts]
    shown = "\n".join(texts)
    assert "differs" not in shown  # every optimizer sits in the table's cell for it
    for name, (year, _, _) in LF.OPTIMIZER_TABLE.items():
        assert f"({year})" in shown, name
    assert [y for y, _, _ in LF.OPTIMIZER_TABLE.values()] == sorted(
        y for y, _, _ in LF.OPTIMIZER_TABLE.values()
    )
    # SGD alone in (gradient, constant); Adam in (momentum, short-term adaptive)
    cell = {t.get_text(): t.get_position() for t in fig.axes[0].texts}
    assert cell["SGD (1945)"] == (0, 0) and cell["Adam (2014)"] == (1, 2)
