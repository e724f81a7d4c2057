"""The link pages in Debian's Chromium at 1280 and 390 px: no sideways scrolling, and no
serious or critical axe-core findings (when the npm package is installed under var/)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import LinkWorld

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parents[2] / "var" / "npm" / "node_modules" / "axe-core"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Return a Playwright Chromium browser (Debian's), closed at teardown."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            yield launched
        finally:
            launched.close()


def _pages(world: LinkWorld) -> dict[str, str]:
    client = world.client
    pages = {
        "confirm-pl": client.get(world.url("confirm")),
        "snooze-en": client.get(world.url("snooze", "c-2")),
        "unsubscribe-pl": client.get(world.url("unsubscribe")),
        "done-pl": client.post(world.url("confirm"), data={"go": "1"}),
        "invalid-pl": client.get("/l/confirm/" + "x" * 300),
        "invalid-en": client.get("/l/confirm/garbage", headers={"Accept-Language": "en"}),
        "other-kind-pl": client.get(world.url("snooze").replace("/snooze/", "/confirm/")),
        "no-choice-pl": client.post(world.url("snooze"), data={}),
    }
    return {name: response.get_data(as_text=True) for name, response in pages.items()}


@pytest.mark.parametrize("width", [1280, 390])
def test_link_pages_fit_and_pass_axe(browser: Any, link_world: LinkWorld, width: int) -> None:
    for name, html in _pages(link_world).items():
        page = browser.new_page(viewport={"width": width, "height": 800})
        try:
            page.set_content(html)
            fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            assert fits, name
            for button in page.get_by_role("button").all() + page.locator("a.button").all():
                box = button.bounding_box()
                assert box["x"] + box["width"] <= width, name
            if (AXE / "axe.min.js").exists():
                page.evaluate((AXE / "axe.min.js").read_text(encoding="utf-8"))
                found = page.evaluate(
                    "async () => (await axe.run(document, {resultTypes: ['violations']}))"
                    ".violations")
                serious = [v["id"] for v in found if v["impact"] in ("serious", "critical")]
                assert serious == [], (name, serious)
            assert re.search(r"<h1>[^<]+</h1>", html), name
        finally:
            page.close()
