"""Tests for the comparison's HTML report (descentlab.report.html, compare_figures, CLI)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil

import pytest
from PIL import Image

from descentlab.cli import main
from descentlab.experiments.compare import CompareSpec, Interrupted, compare, load_comparison
from descentlab.experiments.outputs import find_lecture_outputs
from descentlab.report import compare_figures as CF
from descentlab.report import figures as F
from descentlab.report.html import render_report
from descentlab.report.markdown import markdown_to_html
from descentlab.store import Store

SPEC = dict(
    problem="moons",
    problem_options={"n_samples": 300},
    model="mlp",
    model_options={"hidden": 16},
    optimizers=["sgd", "momentum", "adam"],
    batch_size=16,
    steps=120,
    tune_steps=60,
    lrs_per_optimizer=3,
    refine=False,  # the search's rounds are tested in test_protocol.py
    seeds=2,
    target_accuracy=0.8,
    landscapes=("saddle",),
)

SECTIONS = {
    "results": "Results",
    "curves": "Learning curves",
    "sensitivity": "Learning-rate sensitivity",
    "time": "Time to target",
    "monitor": "Monitoring",
    "landscapes": "The same optimizers on landscapes",
    "lectures": "Lecture experiments",
    "protocol": "Protocol",
    "config": "Configuration and provenance",
}


def _write_lecture_outputs(run_dir):
    """What a lecture experiment leaves in a run directory: JSON + Markdown + PNG figure, and a
    loose PNG."""
    lec = run_dir / "lectures"
    lec.mkdir(parents=True)
    fig = F.new_figure(3, 2)
    ax = fig.subplots()
    ax.plot([0, 1], [1, 0])
    ax.set_title("gap")
    F.save(fig, lec / "sharpness_gap.png")
    F.save(fig, run_dir / "loose_figure.png")
    result = {
        "name": "sharpness",
        "title": "Batch size and sharp minima",
        "columns": ["batch", "gap", "sharpness"],
        "rows": [{"batch": 32, "gap": 0.01, "sharpness": 0.5},
                 {"batch": 2048, "gap": 0.05, "sharpness": 3.25}],
        "checks": {"the large-batch minimum is sharper": True, "made up": False},
        "notes": ["Sharpness is the **largest** loss increase in a box."],
        "figures": {"generalization gap": "sharpness_gap.png"},
        "config": {"steps": 100},
        "seconds": 1.5,
    }  # fmt: skip
    (lec / "sharpness.json").write_text(json.dumps(result))
    (lec / "sharpness.md").write_text("## Batch size and sharp minima\n\nsame as the JSON\n")
    (lec / "schedules.md").write_text(
        "## Schedules\n\n| schedule | loss |\n|---|---|\n| cosine | 0.12 |\n\n"
        "See [the paper](https://example.org/x) and `code`.\n"
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    spec = CompareSpec(**SPEC)
    run_dir = compare(spec, root, workers=1, progress=False).run_dir
    _write_lecture_outputs(run_dir)
    result = load_comparison(run_dir)  # the value the report shows: trials, paths, outputs
    path = render_report(result)
    return result, path, path.read_text(encoding="utf-8")


def test_report_is_self_contained(rendered):
    _, path, text = rendered
    assert path.name == "report.html" and text.startswith("<!DOCTYPE html>")
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert "@import" not in text and "url(" not in text
    exports = text.replace('href="trials.csv"', "").replace('href="comparison.json"', "")
    assert "href=" not in exports.replace('href="#', "")  # in-page anchors, the exports
    srcs = re.findall(r'src="([^"]*)"', text)
    assert len(srcs) >= 9
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        img.verify()
        assert img.format == "PNG"


def test_the_page_lays_out_every_table_once(rendered):
    """The page's tables and text are made at once (compare_tables.tables), each by its own
    function, and each is on the page once."""
    from descentlab.report import compare_tables as CT

    result, _, text = rendered
    made = CT.tables(result)
    assert made == (CT.verdict(result), CT.results_table(result), CT.table_note(result),
                    CT.speed_section(result), CT.protocol(result) + CT.trials_section(result),
                    CT.config_section(result))  # fmt: skip
    for name, html in made._asdict().items():
        assert html and text.count(html) == 1, name


def test_report_has_every_section_and_the_numbers(rendered):
    result, _, text = rendered
    for sid, title in SECTIONS.items():
        assert f'<section id="{sid}"><h2>{title}</h2>' in text
        assert f'<a href="#{sid}">{title}</a>' in text
    for r in result.results:
        m, lo, hi = r.test_accuracy
        assert f'{m:.3f} <span class="ci">[{lo:.3f}, {hi:.3f}]</span>' in text
        assert f'<td class="text">{r.choice.display}</td>' in text
    # The best test accuracy's row is highlighted.
    best = max(result.results, key=lambda r: r.test_accuracy[0])
    assert f'<tr class="best"><td class="text">{best.choice.display}</td>' in text
    # Provenance: versions and the command line are recorded.
    assert "versions" in text and "torch" in text and "argv" in text


def test_lecture_outputs_are_embedded(rendered):
    result, _, text = rendered
    assert "<h3>Batch size and sharp minima</h3>" in text
    assert '<td class="num">3.25</td>' in text
    assert '<span class="ok">✔</span> the large-batch minimum is sharper' in text
    assert '<span class="no">✘</span> made up' in text
    assert "<strong>largest</strong>" in text
    assert "same as the JSON" not in text  # the Markdown twin of a JSON result is skipped
    assert "<h3>schedules</h3>" in text and '<td class="text">cosine</td>' in text
    assert "loose_figure.png" in text
    outs = find_lecture_outputs(result.run_dir)
    assert [o.source for o in outs] == ["lectures/sharpness.json", "lectures/schedules.md",
                                        "loose_figure.png"]  # fmt: skip
    # The comparison's own figures are not lecture outputs.
    assert (result.run_dir / "figures" / "learning_curves.png").is_file()


def test_markdown_subset():
    out = markdown_to_html("# T\n\n- a *b*\n- `c`\n\n| x | y |\n|---|---|\n| 1 | 2 |\n\n"
                           "text [link](https://x.org) <tag>\n")  # fmt: skip
    assert "<h3>T</h3>" in out
    assert "<li>a <em>b</em></li><li><code>c</code></li>" in out
    assert '<td class="text">1</td><td class="num">2</td>' in out
    assert "https" not in out and "&lt;tag&gt;" in out


def test_report_command_rerenders_from_the_store(rendered, tmp_path, capsys):
    result, _, _ = rendered
    copy = tmp_path / "copy"
    shutil.copytree(result.run_dir, copy)
    (copy / "report.html").unlink()
    assert main(["report", str(copy), "--table"]) == 0
    out = capsys.readouterr().out
    assert f"report: {copy / 'report.html'}" in out
    assert result.table(timings=False).splitlines()[2].split()[0] in out
    again = (copy / "report.html").read_text(encoding="utf-8")
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in again
    loaded = load_comparison(copy)
    assert loaded.rows() == result.rows()


def test_figures_have_labelled_axes(rendered):
    result, _, _ = rendered
    figs = [
        CF.final_results_figure(result),
        CF.learning_curves_figure(result),
        CF.validation_overlay_figure(result),
        CF.lr_sensitivity_figure(result),
        CF.time_to_target_figure(result),
        CF.monitor_figure(result),
    ]
    for fig in figs:
        assert fig is not None
        visible = [ax for ax in fig.axes if ax.get_visible()]
        assert visible
        assert any(ax.get_xlabel() for ax in visible)
        assert fig.get_suptitle() or any(ax.get_title() for ax in visible)
    names = [n for n, _ in CF.landscape_figures(result)]
    assert names == ["saddle"]


def test_interrupted_comparison_renders_partially(tmp_path):
    spec = CompareSpec(**{**SPEC, "landscapes": (), "optimizers": ["sgd", "adam"]})
    seen = []

    def stop_after_four(event, info):
        if event == "trial":
            seen.append(info)
            if len(seen) == 4:
                raise KeyboardInterrupt

    with pytest.raises(Interrupted, match="run the same command again"):
        compare(spec, tmp_path, workers=1, progress=stop_after_four)
    run_dir = tmp_path / spec.run_name()
    partial = load_comparison(run_dir)
    assert not partial.complete
    assert partial.results[0].best is not None
    assert any(None in r.refit_runs for r in partial.results)  # final runs missing
    path = render_report(partial)
    text = path.read_text(encoding="utf-8")
    assert "This comparison is incomplete" in text
    assert Store(partial.store_path).list_runs(name="compare")[0].status == "interrupted"
    finished = compare(spec, tmp_path, workers=1, progress=False)
    assert finished.complete


def test_report_links_to_the_lecture_book_when_it_exists(rendered, tmp_path):
    result, _, _ = rendered
    copy = tmp_path / "runs" / result.run_dir.name
    shutil.copytree(result.run_dir, copy)
    book = tmp_path / "runs" / "lectures" / "index.html"  # `descentlab lectures`' default
    book.parent.mkdir()
    book.write_text("<!DOCTYPE html>")
    text = render_report(load_comparison(copy)).read_text(encoding="utf-8")
    assert '<section id="book"><h2>Lecture book</h2>' in text
    assert 'href="../lectures/index.html"' in text


def test_the_report_is_a_function_of_the_comparison_alone(rendered, tmp_path, monkeypatch):
    """Rendering reads no store, trains nothing and runs no trajectory: the value holds the
    curves, the per-seed test numbers and the landscapes' paths."""
    result, _, text = rendered
    r = result.results[0]
    store = Store(result.store_path)
    stored = store.metrics(r.curve_runs[0])["val/accuracy"]
    assert r.curves["val/accuracy"].runs[0][1].tolist() == stored.values.tolist()
    store.close()
    assert [race.name for race in result.landscapes] == ["saddle"]
    from descentlab.problems import trajectories
    from descentlab.store import Store as StoreClass

    def refuse(*a, **k):
        raise AssertionError("the report must not query the store or run trajectories")

    monkeypatch.setattr(StoreClass, "__init__", refuse)
    monkeypatch.setattr(trajectories, "run", refuse)
    moved = tmp_path / "elsewhere.html"
    again = render_report(result, path=moved).read_text(encoding="utf-8")
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in again
    assert again.count('src="data:image/png') == text.count('src="data:image/png')


def test_each_optimizer_gets_its_own_learning_rate_on_the_landscapes():
    """A registered optimizer without a tuned demonstration rate gets its record's rule (an
    adaptive one a step of about 1/50 of the domain), never SGD's rate."""
    from descentlab.experiments.compare import parse_optimizer
    from descentlab.experiments.compare.landscapes import landscape_races
    from descentlab.problems import landscapes

    f = landscapes.get("ravine")
    names = ("sgd", "adamw", "adadelta@default")
    (race,) = landscape_races([parse_optimizer(n) for n in names], ["ravine"], steps=5)
    lrs = {p.label: p.lr for p in race.paths}
    assert lrs["adadelta_default"] == 1.0  # kept at its default, as in the comparison
    assert race.paths[2].display == "Adadelta (default lr)"
    width = min(hi - lo for lo, hi in f.domain)
    assert lrs["sgd"] == 0.18  # the lectures' tuned rate on the ravine
    assert lrs["adamw"] == float(f"{width / 50:.2g}") != lrs["sgd"]
    assert race.paths[1].trajectories.paths.shape[1] == 6  # start + 5 steps


@pytest.mark.parametrize(("search", "shown"), [("grid", "True"), ("quasirandom", "False")])
def test_the_configuration_shows_refinement_as_it_ran(search, shown):
    """A budget (quasi-random) search never refines: the report's Configuration says so,
    whatever ``refine`` was left at (it said ``refine True`` under ``--budget``)."""
    from types import SimpleNamespace

    from descentlab.experiments.compare import CompareSpec
    from descentlab.report.compare_tables import config_section

    spec = CompareSpec(optimizers=["sgd"], search=search, lrs_per_optimizer=4)
    html = config_section(SimpleNamespace(spec=spec, record=None))
    assert f"<dt>refine</dt><dd>{shown}</dd>" in html
