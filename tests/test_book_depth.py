"""Figures a reader moves (``descentlab.book.depth``): a slider over precomputed frames on the
cards of momentum, the adaptive family, learning-rate decay and sharp vs flat minima; the
slider works from the page alone (a file, no server) and each figure's claims are checked."""

from __future__ import annotations

import pytest
from _browser import CHROMIUM, opened

from descentlab.book import depth
from descentlab.book.lectures import DEPTH, ITEMS
from descentlab.book.model import Context
from descentlab.book.render.pages import Card, Evidence, LecturePage, Movable, render_lecture
from descentlab.report.figures import new_figure


def _figs(n: int) -> list:
    out = []
    for i in range(n):
        fig = new_figure(2.0, 1.0)
        fig.subplots().plot([0, 1], [0, i])
        out.append(fig)
    return out


@pytest.mark.parametrize(
    ("values", "n_figs", "initial", "match"),
    [
        (["1", "2"], 1, 0, "one value per frame"),
        ([], 0, 0, "one value per frame"),
        (["1", "2"], 2, 2, "initial must be a frame"),
        (["1", "2"], 2, -1, "initial must be a frame"),
    ],
)
def test_a_movable_figure_refuses_frames_that_do_not_match(values, n_figs, initial, match):
    with pytest.raises(ValueError, match=match):
        Movable("β", values, _figs(n_figs), initial)


def _page() -> str:
    mv = Movable("β", ["0", "0.5", "0.9"], _figs(3), 1, "Move *β*.", "http://127.0.0.1:8765/#x")
    card = Card("i5", "item 5", "s", "claim", "claim", "", "f", Evidence(movable=[mv]))
    return render_lecture(LecturePage("L", "o", "s", "l.html", [card]), "q")


def test_the_frames_are_all_embedded_and_one_is_shown():
    html = _page()
    fig = html.split('<figure class="movable" id="i5-m0"', 1)[1].split("</figure>", 1)[0]
    assert fig.count("<img ") == 3 and fig.count(" hidden>") == 2
    assert 'data-frame="1" src="data:image/png;base64,' in fig
    assert 'max="2" step="1" value="1"' in fig and "<output>β = 0.5</output>" in fig
    assert "3 precomputed frames" in fig and "the live playground" in fig
    assert html.count("<script>") == 1 and "figure.movable" in html.split("<script>")[1]


def test_the_central_items_carry_a_movable_figure():
    shown = {it.number: it.show for it in ITEMS}
    assert set(DEPTH) == {99, 110, 115, 71}
    for number, fn in DEPTH.items():
        assert fn in shown[number]


@pytest.mark.parametrize("fn", list(DEPTH.values()), ids=lambda f: f.__name__)
def test_each_movable_figure_is_computed_and_its_checks_hold(fn):
    ev = fn(Context(True, None, lambda _m: None))
    [mv] = ev.movable
    assert len(mv.values) >= 4 and all(f is not None for f in mv.figures)
    assert ev.checks and all(c.ok for c in ev.checks), [c for c in ev.checks if not c.ok]


def test_sharp_minimum_rises_by_the_curvature_ratio():
    ev = depth.sharp_flat(Context(True, None, lambda _m: None))
    assert ev.checks[-1].measured == "40"


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install chromium")
def test_the_slider_shows_its_frame_from_a_file(tmp_path):
    path = tmp_path / "l.html"
    path.write_text(_page(), encoding="utf-8")
    with opened(path) as (page, errors):

        def shown() -> list[str]:
            return page.eval_on_selector_all(
                "#i5-m0 img", "imgs => imgs.filter(i => !i.hidden).map(i => i.dataset.frame)"
            )

        assert shown() == ["1"]
        for k, value in ((0, "0"), (2, "0.9")):
            page.eval_on_selector(
                "#i5-m0 input",
                f"i => {{ i.value = {k}; i.dispatchEvent(new Event('input')); }}",
            )
            assert shown() == [str(k)]
            assert page.inner_text("#i5-m0 output") == f"β = {value}"
    assert errors == []
