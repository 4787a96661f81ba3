"""The playground in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright, one browser for the whole module, a fresh page per test.

What a learner sees is asserted, not only photographed: where a click lands, what the loss
axis labels, which runs are marked as diverged, the defaults of every optimizer (its record's),
Goh's optimal momentum marked on the quadratic's sliders, the colours, the requests a drag
leaves behind. Screenshots of every view go to out/playground-screenshots/.

Skips, saying what to install, where Playwright or the browser is missing (`make test`
installs both where it can).
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import socket
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs Playwright: pip install playwright"
)

from descentlab import optim  # noqa: E402
from descentlab.problems import landscapes as L  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.process,  # the playground's server and Chromium
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="the browser test needs Chromium: apt-get install chromium (Debian/Ubuntu), "
        "or put a chromium binary on PATH",
    ),
]

SHOTS = Path(__file__).resolve().parents[1] / "out" / "playground-screenshots"


@pytest.fixture(scope="module")
def server_url():
    from descentlab.playground.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the playground server did not start"
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def open_page(browser, server_url):
    """``open_page(hash)``: a fresh page at ``server_url#hash``, drawn and animated; every
    page must end with a clean console."""
    pages, problems = [], []

    def make(fragment: str = "", refused: bool = False):
        """``refused``: the page's request is meant to be turned away (HTTP 422)."""
        page = browser.new_page(viewport={"width": 1400, "height": 900})

        def console(m):
            if m.type == "error" and not (refused and "status of 422" in m.text):
                problems.append(m.text)

        page.on("console", console)
        page.on("pageerror", lambda e: problems.append(str(e)))
        pages.append(page)
        page.goto(server_url + ("#" + fragment if fragment else ""))
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        _drawn(page)
        return page

    yield make
    for p in pages:
        p.close()
    assert problems == [], f"console errors: {problems}"


def _opts(**specs) -> str:
    """The ``opts`` URL field: ``name={"on": 1, "lr": ...}`` for each optimizer given."""
    return quote(json.dumps([{"name": n, **s} for n, s in specs.items()]))


def _updates(page) -> int:
    return int(page.get_attribute("body", "data-updates") or 0)


def _drawn(page) -> None:
    """The paths have finished animating (maps and refusals do not animate)."""
    page.wait_for_selector("body:not([data-animating='1'])", timeout=30_000)


def _wait_update(page, before: int) -> None:
    page.wait_for_selector(f"body[data-updates='{before + 1}']", timeout=60_000)
    _drawn(page)


def _main_traces(page):
    return page.evaluate(
        "() => document.getElementById('main-plot').data"
        ".filter(t => t.mode && t.mode.startsWith('lines'))"
        ".map(t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y),"
        " color: t.line && t.line.color}))"
    )


def _loss_traces(page):
    return page.evaluate(
        "() => document.getElementById('loss-plot').data.map(t => Array.from(t.y))"
    )


def _state(page):
    return page.evaluate("() => state")


def test_click_a_start_move_the_lr_slider_and_see_paths_and_losses_change(open_page):
    page = open_page()
    before = _main_traces(page)
    assert len(before) >= 6  # six optimizers from the default start
    page.screenshot(path=str(SHOTS / "1-paths-default.png"))

    # click a start onto the contour map (the plot area's upper left quarter)
    box = page.locator("#main-plot .nsewdrag").first.bounding_box()
    n = _updates(page)
    page.mouse.click(box["x"] + 0.3 * box["width"], box["y"] + 0.25 * box["height"])
    _wait_update(page, n)
    assert page.locator("#starts li").count() == 2
    after_click = _main_traces(page)
    assert len(after_click) == 2 * len(before)  # every optimizer from both starts
    assert "%3B" in page.url or ";" in page.url  # both starts in the URL

    # move Adam's learning-rate slider
    adam_before = [t for t in after_click if t["name"] == "adam"]
    loss_before = _loss_traces(page)
    n = _updates(page)
    page.locator("#lr-adam").fill("-1.3")
    _wait_update(page, n)
    adam_after = [t for t in _main_traces(page) if t["name"] == "adam"]
    assert adam_after and adam_after != adam_before
    assert _loss_traces(page) != loss_before
    assert "lr%22%3A0.05" in page.url or '"lr":0.05' in page.url
    page.screenshot(path=str(SHOTS / "2-paths-two-starts-adam-lr.png"))

    # the state is in the URL: a fresh page from it draws the same picture
    page2 = open_page(page.url.split("#", 1)[1])
    assert page2.locator("#starts li").count() == 2


def test_one_d_iterates_labelled_and_the_lr_map(open_page, server_url):
    page = open_page("mode=oned&land=parabola&steps=8&starts=4")
    texts = page.evaluate(
        "() => document.getElementById('main-plot').data.filter(t => t.text)"
        ".map(t => Array.from(t.text))"
    )
    assert texts and texts[0][:2] == ["x₀", "x₁"]
    page.screenshot(path=str(SHOTS / "3-one-d-parabola.png"))
    n = _updates(page)
    page.goto(server_url + "#mode=oned&land=xsinx&starts=0.5;2.5;4.8&steps=30")  # hashchange
    _wait_update(page, n)
    page.screenshot(path=str(SHOTS / "3b-one-d-xsinx-three-starts.png"))

    page = open_page("mode=map&land=xsinx&steps=60&starts=2.5&mopt=sgd&mn=32")
    kinds = page.evaluate("() => document.getElementById('main-plot').data.map(t => t.type)")
    assert kinds[0] == "heatmap"
    page.screenshot(path=str(SHOTS / "4-lr-map-xsinx.png"))
    page = open_page("mode=map")
    page.screenshot(path=str(SHOTS / "4b-lr-map-default.png"))


def _plot_area(page):
    """The contour map's plot area on the screen, and its axes' data ranges."""
    box = page.locator("#bg-plot .nsewdrag").first.bounding_box()
    ranges = page.evaluate(
        "() => { const l = document.getElementById('bg-plot').layout;"
        " return [l.xaxis.range, l.yaxis.range]; }"
    )
    return box, ranges


def _expected(box, ranges, fx, fy):
    (x0, x1), (y0, y1) = ranges
    return [x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)]


def test_a_double_click_adds_one_start_and_clicks_land_where_made(open_page):
    page = open_page("mode=paths&land=rosenbrock&steps=300")
    box, ranges = _plot_area(page)
    assert ranges == [[-2, 2], [-1, 3]]
    n = _updates(page)
    page.mouse.dblclick(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"])
    # and at once (while the double click's redraw is under way) a click elsewhere
    page.mouse.click(box["x"] + 0.2 * box["width"], box["y"] + 0.8 * box["height"])
    page.wait_for_selector(f"body[data-updates='{n + 1}']", timeout=60_000)
    _drawn(page)
    starts = _state(page)["starts"]
    assert len(starts) == 3, starts  # the default start, the double click, the click
    tol = [0.01 * (hi - lo) for lo, hi in ranges]
    for got, (fx, fy) in zip(starts[1:], [(0.5, 0.5), (0.2, 0.8)], strict=True):
        want = _expected(box, ranges, fx, fy)
        assert abs(got[0] - want[0]) < tol[0] and abs(got[1] - want[1]) < tol[1], (got, want)
    # a click while the paths are being redrawn (the animation restyles the layer under it)
    n = _updates(page)
    page.locator("#lr-adam").fill("-1.5")
    page.wait_for_selector("body[data-animating='1']", timeout=60_000)
    page.mouse.click(box["x"] + 0.9 * box["width"], box["y"] + 0.1 * box["height"])
    page.wait_for_selector(f"body[data-updates='{n + 2}']", timeout=60_000)
    _drawn(page)
    got, want = _state(page)["starts"][-1], _expected(box, ranges, 0.9, 0.1)
    assert abs(got[0] - want[0]) < tol[0] and abs(got[1] - want[1]) < tol[1], (got, want)
    # the drawn axes did not move: the paths' layer and the contour map agree
    assert (
        page.evaluate(
            "() => [document.getElementById('main-plot')._fullLayout.xaxis.range,"
            " document.getElementById('main-plot')._fullLayout.yaxis.range]"
        )
        == ranges
    )


def test_log_scale_loss_axis_labels_do_not_pile_up(open_page):
    # GD at its optimal rate on the quadratic: the loss falls through dozens of decades
    page = open_page(
        "mode=paths&land=quadratic&kappa=10&steps=400&opts="
        + _opts(sgd={"on": 1, "lr": 1.8}, adam={"on": 0}, adagrad={"on": 0})
    )
    assert page.evaluate("() => document.getElementById('loss-plot').layout.yaxis.type") == "log"
    boxes = page.evaluate(
        "() => Array.from(document.querySelectorAll('#loss-plot .ytick text'))"
        ".map(e => { const r = e.getBoundingClientRect(); return [r.top, r.bottom]; })"
    )
    assert 2 <= len(boxes) <= 12, boxes
    boxes.sort()
    for (_, bottom), (top, _) in itertools.pairwise(boxes):
        assert top >= bottom - 0.5, f"overlapping tick labels: {boxes}"


def test_diverged_runs_are_marked_and_one_d_iterates_stay_on_screen(open_page):
    page = open_page(
        "mode=paths&land=rosenbrock&steps=100&opts=" + _opts(sgd={"on": 1, "lr": 0.05})
    )
    marks = page.evaluate(
        "() => document.getElementById('main-plot').data.filter(t => t.name === 'diverged')"
        ".map(t => ({x: Array.from(t.x), y: Array.from(t.y), symbol: t.marker.symbol,"
        " visible: t.visible}))"
    )
    assert marks and marks[0]["symbol"] == "x" and marks[0]["visible"] is True, marks
    sgd = next(t for t in _main_traces(page) if t["name"] == "sgd")
    (x0, x1), (y0, y1) = _plot_area(page)[1]
    # where it stopped, or where it left the map: its last point on the picture
    on_map = [
        (x, y) for x, y in zip(sgd["x"], sgd["y"], strict=True) if x0 <= x <= x1 and y0 <= y <= y1
    ]
    assert (marks[0]["x"][0], marks[0]["y"][0]) == on_map[-1]
    assert len(on_map) < len(sgd["x"])  # it did leave the map
    assert "diverged" in page.inner_text("#status")
    page.screenshot(path=str(SHOTS / "5-paths-diverged-marked.png"))

    # 1-D: lr 1.05 bounces outwards (|1 - 2 lr| = 1.1) but stays finite: every iterate drawn
    page = open_page("mode=oned&land=parabola&steps=12&starts=4&opts=" + _opts(sgd={"lr": 1.05}))
    xr, yr = page.evaluate(
        "() => { const l = document.getElementById('main-plot')._fullLayout;"
        " return [l.xaxis.range, l.yaxis.range]; }"
    )
    sgd = next(t for t in _main_traces(page) if t["name"] == "sgd")
    assert all(xr[0] <= x <= xr[1] for x in sgd["x"]), (xr, sgd["x"])
    assert all(yr[0] <= y <= yr[1] for y in sgd["y"]), (yr, sgd["y"])
    page.screenshot(path=str(SHOTS / "6-one-d-bouncing-out.png"))
    # lr 1.5 doubles the distance each step and leaves the box: marked where it stopped
    page = open_page("mode=oned&land=parabola&steps=12&starts=4&opts=" + _opts(sgd={"lr": 1.5}))
    n_marks = page.evaluate(
        "() => document.getElementById('main-plot').data.filter(t => t.name === 'diverged').length"
    )
    assert n_marks == 1


def _goh(kappa: float, L_: float = 1.0) -> tuple[float, float, float]:
    mu = L_ / kappa
    return (
        2 / (mu + L_),
        (2 / (math.sqrt(mu) + math.sqrt(L_))) ** 2,
        ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2,
    )


def test_quadratic_opens_on_goh_optimum_marked_and_momentum_wins(open_page):
    page = open_page("mode=paths&land=quadratic")
    s = _state(page)
    kappa = s["kappa"]
    gd_lr, hb_lr, hb_beta = _goh(kappa)
    opts = {o["name"]: o for o in s["opts"]}
    assert opts["sgd"]["on"] and opts["momentum"]["on"]
    assert opts["sgd"]["lr"] == pytest.approx(gd_lr, rel=1e-3)
    assert opts["momentum"]["lr"] == pytest.approx(hb_lr, rel=1e-3)
    assert opts["momentum"]["momentum"] == pytest.approx(hb_beta, rel=1e-3)
    marks = page.evaluate(
        "() => Object.fromEntries(Array.from(document.querySelectorAll('.slider-mark'))"
        ".map(e => [e.dataset.for, +e.dataset.value]))"
    )
    assert marks["lr-sgd"] == pytest.approx(gd_lr, rel=1e-6)
    assert marks["lr-momentum"] == pytest.approx(hb_lr, rel=1e-6)
    assert marks["momentum-momentum"] == pytest.approx(hb_beta, rel=1e-6)
    assert f"momentum {hb_beta:.3g}" in page.inner_text("#optimizers")  # said in words too
    # the lesson: momentum's loss falls at (sqrt(k)-1)/(sqrt(k)+1) per step, GD's at (k-1)/(k+1)
    names = page.evaluate("() => document.getElementById('loss-plot').data.map(t => t.name)")
    losses = dict(zip(names, _loss_traces(page), strict=True))
    t = 60
    assert losses["momentum"][t] < 1e-3 * losses["sgd"][t], (
        losses["momentum"][t],
        losses["sgd"][t],
    )
    page.screenshot(path=str(SHOTS / "7-quadratic-goh-optimum.png"))

    # the kappa slider: the sidebar's formula and the marks follow it
    n = _updates(page)
    page.locator("#kappa").fill("3")
    _wait_update(page, n)
    assert "kappa = 1000" in page.inner_text("#formula")
    marks = page.evaluate(
        "() => Object.fromEntries(Array.from(document.querySelectorAll('.slider-mark'))"
        ".map(e => [e.dataset.for, +e.dataset.value]))"
    )
    gd_lr, hb_lr, hb_beta = _goh(1000.0)
    assert marks["lr-momentum"] == pytest.approx(hb_lr, rel=1e-6)
    assert marks["momentum-momentum"] == pytest.approx(hb_beta, rel=1e-6)
    page.screenshot(path=str(SHOTS / "8-quadratic-kappa-1000.png"))

    # the map view on the quadratic: momentum over lr x momentum, the optimum marked on it
    page = open_page("mode=map&land=quadratic")
    s = _state(page)
    assert (s["mapOpt"], s["mapMode"]) == ("momentum", "lr_momentum")
    cross = page.evaluate(
        "() => document.getElementById('main-plot').data.filter(t => t.name === 'this setting')"
        ".map(t => [t.x[0], t.y[0]])"
    )
    _, hb_lr, hb_beta = _goh(s["kappa"])
    assert cross[0] == pytest.approx([hb_lr, hb_beta], rel=1e-6)
    page.screenshot(path=str(SHOTS / "9-lr-map-quadratic-momentum.png"))


def test_every_default_is_the_records_and_every_colour_distinct(open_page):
    page = open_page("mode=paths&land=rosenbrock")
    f = L.get("rosenbrock")
    for o in _state(page)["opts"]:
        want = optim.record(o["name"]).lr_on(f)
        if o["name"] in ("momentum", "nesterov"):  # momentum's lesson: GD's step + velocity
            want = optim.record("sgd").lr_on(f)
        assert o["lr"] == pytest.approx(want, rel=1e-12), (o["name"], o["lr"], want)
    swatches = page.evaluate(
        "() => Array.from(document.querySelectorAll('#optimizers .swatch'))"
        ".map(e => getComputedStyle(e).backgroundColor)"
    )
    assert len(swatches) == len(optim.NAMES) == len(set(swatches))

    def rgb(hexa: str) -> str:
        h = hexa.lstrip("#")
        return "rgb({}, {}, {})".format(*(int(h[i : i + 2], 16) for i in (0, 2, 4)))

    assert swatches == [rgb(optim.record(n).color) for n in optim.NAMES]
    for t in _main_traces(page):
        assert t["color"].lower() == optim.record(t["name"]).color.lower()


def test_the_opening_views_show_their_lesson_at_first_sight(open_page):
    """The page as it opens (Rosenbrock) draws momentum visibly faster than
    gradient descent; the double well as it opens draws gradient descent stopping in the
    shallow minimum and momentum rolling over the barrier into the deep one."""
    page = open_page()
    s = _state(page)
    assert (s["mode"], s["land"]) == ("paths", "rosenbrock")
    names = page.evaluate("() => document.getElementById('loss-plot').data.map(t => t.name)")
    final = {n: y[-1] for n, y in zip(names, _loss_traces(page), strict=True)}
    assert final["momentum"] < 0.02 * final["sgd"], final
    assert final["nesterov"] < 0.02 * final["sgd"], final
    ends = {t["name"]: (t["x"][-1], t["y"][-1]) for t in _main_traces(page)}
    assert ends["momentum"] == pytest.approx((1, 1), abs=0.25)  # near the minimum (1, 1)
    assert ends["sgd"][0] < 0  # still on the far side of the valley
    page.screenshot(path=str(SHOTS / "10-opening-rosenbrock-momentum-faster.png"))

    page = open_page("mode=oned&land=double_well")
    s = _state(page)
    assert s["land"] == "double_well"
    assert sorted(o["name"] for o in s["opts"] if o["on"]) == ["momentum", "sgd"]
    f = L.get("double_well")
    kinds = {p.kind: p.x[0] for p in f.points}
    ends = {t["name"]: t["x"][-1] for t in _main_traces(page) if t["name"] in ("sgd", "momentum")}
    assert ends["sgd"] == pytest.approx(kinds["local minimum"], abs=1e-2), ends
    assert ends["momentum"] == pytest.approx(kinds["global minimum"], abs=1e-2), ends
    assert "gradient descent's lr" in page.inner_text("#optimizers")  # why, in words
    page.screenshot(path=str(SHOTS / "11-opening-double-well-momentum-crosses.png"))

    # a link naming the 1-D double well in the surface view opens it in the 1-D view, its
    # menu holding it (the surface view's menu has no 1-D landscape: it opened empty)
    page = open_page("mode=paths&land=double_well")
    assert (_state(page)["mode"], page.input_value("#land")) == ("oned", "double_well")
    page = open_page("mode=oned&land=rosenbrock")
    assert (_state(page)["mode"], page.input_value("#land")) == ("paths", "rosenbrock")


def test_chains_that_would_mislead_are_refused_with_a_message(open_page):
    page = open_page(
        "mode=paths&land=rosenbrock&rule=" + quote("chain(trace(momentum=0.5))"), refused=True
    )
    assert page.locator("#status.error").count() == 1
    assert "uphill" in page.inner_text("#status")
    page = open_page(
        "mode=paths&land=rosenbrock&rule=" + quote("chain(sam_ascent(), scale_by_lr())"),
        refused=True,
    )
    assert "sam_ascent" in page.inner_text("#status") and "'sam'" in page.inner_text("#status")


def test_a_drag_aborts_the_requests_it_supersedes(browser, server_url):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []  # an aborted request is not an error
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.add_init_script(
        "window.__runs = []; const f = window.fetch;"
        "window.fetch = (url, opts) => { if (String(url).includes('/api/run'))"
        " window.__runs.push((opts && opts.signal) || null); return f(url, opts); };"
    )
    page.goto(server_url + "#mode=paths&land=rosenbrock&steps=1000")
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    for v in ("-2.0", "-1.8", "-1.6", "-1.4"):
        page.locator("#lr-adam").fill(v)
        page.wait_for_timeout(200)  # past the debounce: each position sends its request
    page.wait_for_timeout(1500)
    aborted = page.evaluate("() => window.__runs.map(s => s !== null && s.aborted)")
    page_status = page.evaluate("() => document.getElementById('status').className")
    page.close()
    assert len(aborted) >= 4
    assert all(aborted[:-1]) and not aborted[-1], aborted
    assert problems == [] and "error" not in page_status, (problems, page_status)


def test_every_lecture_book_link_opens_its_view(open_page):
    """The playground views the lecture book links to (descentlab.book.texts): the page reads
    each link's state (landscape, steps, starts, exactly the optimizers and slider values it
    names); four of them are opened and drawn."""
    from urllib.parse import urlparse

    from descentlab.book.cells import playground_url
    from descentlab.book.texts import TEACH

    def check(n, play, s) -> None:
        assert (s["mode"], s["land"], s["steps"]) == (play.mode, play.land, play.steps), n
        if play.kappa is not None:
            assert s["kappa"] == play.kappa, n
        if play.starts:
            assert s["starts"] == [list(p) for p in play.starts], n
        on = {o["name"]: o for o in s["opts"] if o["on"]}
        assert set(on) == set(play.optimizers), n
        for name, sliders in play.optimizers.items():
            for key, value in sliders.items():
                assert on[name][key] == pytest.approx(value), (n, name, key)

    views = {n: t["play"] for n, t in TEACH.items() if t.get("play") is not None}
    assert len(views) >= 30
    page = open_page()
    for n, play in views.items():  # the page's own readUrl on each link
        fragment = urlparse(playground_url(play)).fragment
        check(n, play, page.evaluate("(h) => { history.replaceState(null, '', '#' + h); "
                                     "return readUrl(); }", fragment))  # fmt: skip
    for n in (29, 44, 102, 114):  # opened and drawn
        page = open_page(urlparse(playground_url(views[n])).fragment)
        check(n, views[n], _state(page))
        traces = page.evaluate("() => document.getElementById('loss-plot').data.length")
        assert traces >= len(views[n].optimizers), n  # every optimizer named was drawn
        page.screenshot(path=str(SHOTS / f"book-item-{n}.png"))


@pytest.mark.parametrize(
    ("opts", "starts", "said"),
    [
        ({"sgd": {"on": 1, "lr": None}}, None, "The link's sgd lr null is not a finite number"),
        ({"adam": {"on": 1, "lr": "fast"}}, None, 'The link\'s adam lr "fast" is not a finite'),
        ({"adam": {"on": 1, "betas": [0.9]}}, None, "adam betas [0.9] is not 2 finite numbers"),
        ({"sgd": {"on": 1, "lr": -1}}, None, "The link's sgd lr -1 is not a finite number"),
        ({"sgd": {"on": 1}}, "nan,1;-1.2,1", "The link's start(s) (nan,1) are not 2 finite"),
        ({"sgd": {"on": 1}}, "nan,1", "(nan,1) are not 2 finite number(s): the default start"),
    ],
)
def test_a_link_with_a_bad_value_opens_with_the_default_and_says_so(open_page, opts, starts, said):
    """A null or string lr killed the page ("v.toExponential is not a function"); a NaN start
    was dropped without a word."""
    fragment = "mode=paths&land=rosenbrock&opts=" + _opts(**opts)
    if starts:
        fragment += "&starts=" + quote(starts)
    page = open_page(fragment)  # a clean console: the fixture asserts it
    assert said in page.inner_text("#status")
    s = _state(page)
    for o in s["opts"]:
        for key in ("lr", "eps"):
            if key in o:
                assert isinstance(o[key], float | int) and o[key] > 0
    assert all(all(math.isfinite(v) for v in p) for p in s["starts"])
    assert s["starts"] == [[-1.2, 1.0]]
    assert len(_loss_traces(page)) >= 1  # drawn


def test_the_minima_stars_are_drawn_over_the_paths_that_end_on_them(open_page):
    """On the saddle every path ends at (0, +√2): the star there sat under the paths, so the
    picture marked only (0, -√2)."""
    page = open_page("mode=paths&land=saddle")
    traces = page.evaluate(
        "() => document.getElementById('main-plot').data.map(t => ({name: t.name,"
        " x: Array.from(t.x || []), y: Array.from(t.y || [])}))"
    )
    names = [t["name"] for t in traces]
    star = traces[names.index("minimum")]
    assert sorted(star["y"]) == pytest.approx([-math.sqrt(2), math.sqrt(2)])
    optimizers = {o["name"] for o in _state(page)["opts"]}
    last_path = max(i for i, t in enumerate(traces) if t["name"] in optimizers)
    assert names.index("minimum") > last_path  # drawn after (over) every path
    ends = [(t["x"][-1], t["y"][-1]) for t in _main_traces(page)]
    assert all(abs(y - math.sqrt(2)) < 0.1 for _, y in ends)


def test_a_diverged_runs_loss_stops_with_a_cross_and_a_stalled_run_is_noted(open_page):
    page = open_page(
        "mode=paths&land=rosenbrock&opts=" + _opts(sgd={"on": 1, "lr": 0.01}, muon={"on": 1})
    )
    data = page.evaluate(
        "() => document.getElementById('loss-plot').data.map(t => ({name: t.name, mode: t.mode,"
        " y: Array.from(t.y)}))"
    )
    sgd = next(t for t in data if t["name"] == "sgd")
    last = max(i for i, v in enumerate(sgd["y"]) if v is not None)
    assert last < len(sgd["y"]) - 1 and all(v is None for v in sgd["y"][last + 1 :])
    cross = next(t for t in data if t["name"] == "diverged")
    assert cross["mode"] == "markers" and cross["y"] == [sgd["y"][last]]
    text = page.inner_text("#status")
    assert "the loss curve stops there" in text and "muon barely moved at lr 0.0001" in text
    page.screenshot(path=str(SHOTS / "diverged-and-stalled.png"))
