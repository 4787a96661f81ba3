"""A page of the book opened from its file in Debian's chromium (through Playwright, never
`playwright install`), with the script errors it raises collected."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def opened(path: Path) -> Iterator[tuple[object, list[str]]]:
    """``(page, errors)``: ``path`` opened from a file (no server) in a fresh browser, closed
    when the block ends; ``errors`` lists every uncaught script error the page raised."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        try:
            yield page, errors
        finally:
            browser.close()
