"""The lecture book on a phone: a page and the index opened in headless Chromium (Debian's
``chromium``, driven by Playwright) at 390x844 -- nothing makes the page scroll sideways;
wide tables and code scroll inside their own box, figures scale to the column.

At 420 px the check tables and the index table overflowed the page.
Screenshots go to out/book-screenshots/. Skips, saying what to install, where Playwright or
the browser is missing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the phone test needs Playwright: pip install playwright"
)

from descentlab.book.render import pages as LB  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="the phone test needs Chromium: apt-get install chromium (Debian/Ubuntu), or put "
        "a chromium binary on PATH",
    ),
    pytest.mark.process,  # Chromium
]
SHOTS = Path(__file__).resolve().parents[1] / "out" / "book-screenshots"

#: what overflows the viewport: the page's scroll width, each element poking out of it that is
#: not inside a box that scrolls, and the figures wider than their column
_MEASURE = """() => {
  const W = innerWidth, out = [];
  const scrolls = (e) => { for (let p = e.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p).overflowX;
      if ((s === 'auto' || s === 'scroll') && p.getBoundingClientRect().right <= W + 0.5)
        return true; } return false; };
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (r.right > W + 0.5 && !scrolls(e)) out.push(e.tagName + '.' + e.className);
  }
  const imgs = [...document.images].map((i) => i.getBoundingClientRect().width);
  const boxes = [...document.querySelectorAll('table')].map(
      (t) => [t.parentElement.scrollWidth, t.parentElement.clientWidth, t.offsetWidth]);
  return {scroll: document.scrollingElement.scrollWidth, width: W, poking: out, imgs, boxes};
}"""


def _page() -> tuple[str, str]:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12.0, 4.0))
    ax.plot([0, 1], [0, 1], label="a line")
    ax.legend()
    long = "the better of Adam and RMSProp is within 10x of the best on every landscape"
    checks = [LB.Check(long, "ok", "rosenbrock 3.101, ravine 0.01203, beale 0.007469", "yes")]
    names = ["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam"]
    table = (["landscape (300 steps, best of 6 lrs)", *names],
             [["rosenbrock", *[0.0119412345] * len(names)]])  # fmt: skip
    card = LB.Card(
        anchor="i131", label="item 131", section="6. 정리하기", kind="C", text=long,
        quote="왠만한 상황이면 Adam or RMSProp 알고리즘이 좋다",
        shown_by="book.generalization.regularizer_mechanism('early_stopping'); experiment x",
        evidence=LB.Evidence(checks=checks, figures=[fig], tables=[table]),
        explain="A long name: `descentlab.book.terrains.adam_rms_good_on_every_landscape`.",
        code="for land in ('rosenbrock', 'ravine', 'beale'):  # " + "x" * 120,
        output="rosenbrock {'sgd': '3.10e+00', 'momentum': '1.19e-02'} " * 3,
    )  # fmt: skip
    plt.close(fig)
    page = LB.LecturePage("Losses and optimizers", "Part 8", "A summary.", "p.html", [card])
    return LB.render_lecture(page, "quick setting"), LB.render_index([page], "quick", 1.0)


@pytest.mark.parametrize("which", ["lecture", "index"])
def test_the_book_reads_on_a_phone_without_sideways_scrolling(tmp_path, which):
    lecture, index = _page()
    path = tmp_path / f"{which}.html"
    path.write_text(lecture if which == "lecture" else index, encoding="utf-8")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.goto(path.as_uri())
            got = page.evaluate(_MEASURE)
            page.screenshot(path=str(SHOTS / f"{which}-390.png"), full_page=True)
        finally:
            browser.close()
    assert got["scroll"] <= got["width"], got
    assert got["poking"] == [], got
    assert all(0 < w <= got["width"] for w in got["imgs"]), got
    # each table scrolls inside its own box, whole: nothing of it cut off
    for scroll_width, client_width, table_width in got["boxes"]:
        assert client_width <= got["width"] and scroll_width >= table_width, got
