"""The playground in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright. Loads the page, clicks a start onto the contour map, moves a learning-rate
slider, and checks that the paths and the loss panel changed and that the console stayed
clean; saves screenshots of the three modes under out/playground-screenshots/.

Skips, saying what to install, where Playwright or the browser is missing (`make test`
installs both where it can).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs Playwright: pip install playwright"
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
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


def _updates(page) -> int:
    return int(page.get_attribute("body", "data-updates") or 0)


def _wait_update(page, before: int) -> None:
    page.wait_for_selector(f"body[data-updates='{before + 1}']", timeout=60_000)
    page.wait_for_timeout(1200)  # the paths animate for about a second


def _main_traces(page):
    return page.evaluate(
        "() => document.getElementById('main-plot').data"
        ".filter(t => t.mode && t.mode.startsWith('lines'))"
        ".map(t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y)}))"
    )


def _loss_traces(page):
    return page.evaluate(
        "() => document.getElementById('loss-plot').data.map(t => Array.from(t.y))"
    )


def test_click_a_start_move_the_lr_slider_and_see_paths_and_losses_change(server_url):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(server_url)
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        page.wait_for_timeout(1200)
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
        assert "start=2" in page.url or "%3B" in page.url or ";" in page.url  # state in the URL

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
        url = page.url
        page2 = browser.new_page(viewport={"width": 1400, "height": 900})
        page2.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page2.on("pageerror", lambda e: problems.append(str(e)))
        page2.goto(url)
        page2.wait_for_selector("body[data-ready='1']", timeout=60_000)
        assert page2.locator("#starts li").count() == 2

        # 1-D mode: x^2 - 4x + 6 with the iterates labelled (a pasted link: hashchange)
        n = _updates(page2)
        page2.goto(server_url + "#mode=oned&land=parabola&steps=8&starts=4")
        _wait_update(page2, n)
        texts = page2.evaluate(
            "() => document.getElementById('main-plot').data.filter(t => t.text)"
            ".map(t => Array.from(t.text))"
        )
        assert texts and texts[0][:2] == ["x₀", "x₁"]
        page2.screenshot(path=str(SHOTS / "3-one-d-parabola.png"))

        # learning-rate map
        n = _updates(page2)
        page2.goto(server_url + "#mode=map&land=xsinx&steps=60&starts=2.5&mopt=sgd&mn=32")
        _wait_update(page2, n)
        kinds = page2.evaluate("() => document.getElementById('main-plot').data.map(t => t.type)")
        assert kinds == ["heatmap"]
        page2.screenshot(path=str(SHOTS / "4-lr-map-xsinx.png"))
        browser.close()
    assert problems == [], f"console errors: {problems}"
