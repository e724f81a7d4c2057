"""The status page in Debian's headless Chromium: login, fleet, charts, a screenshot."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from durability.model import Status
from tests.web_status.conftest import NOW, PASSWORD, StatusWorld, raid_report

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
# Where the screenshot is kept for a person to look at (outside the temp dir).
SCREENSHOT_DIR = Path(os.environ.get("DURABILITY_SCREENSHOT_DIR", "/tmp/durability-screens"))


@pytest.fixture
def base_url(status_world: StatusWorld) -> Iterator[str]:
    from durability.web.server import make_server

    server = make_server(status_world.app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(5)


@pytest.mark.slow
def test_status_page_in_chromium_login_then_fleet_and_charts(
    status_world: StatusWorld, base_url: str, tmp_path: Path
) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    for index, node in enumerate(("node-a", "node-b", "node-c")):
        status = (Status.OK, Status.CRITICAL, Status.WARNING)[index]
        status_world.report(node, raid_report(NOW, ("md0", Status.OK, "clean, 2 of 2 in sync"),
                                              ("md1", status, f"{status.name.lower()} array")))
    status_world.clock[0] = NOW
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.on("request", lambda request: requested.append(request.url))
            page.goto(f"{base_url}/status")
            assert page.url.startswith(f"{base_url}/status/login")
            page.fill("#user", "ops")
            page.fill("#password", "wrong password")
            page.click("button[type=submit]")
            assert page.locator("[role=alert]").inner_text() == "Wrong user name or password."
            page.fill("#user", "ops")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("#fleet")
            assert page.url == f"{base_url}/status"
            assert "RAID per node (3 nodes)" in page.locator("#fleet h2").inner_text()
            first_node = page.locator("#fleet tbody tr").first.inner_text()
            assert first_node.startswith("node-b")
            assert page.locator("svg.chart").count() == 3
            assert page.locator("svg.chart polyline").count() >= 3
            box = page.locator("svg.chart").first.bounding_box()
            assert box is not None and box["width"] > 300
            cookies = page.context.cookies()
            assert [c["name"] for c in cookies] == ["durability_session"]
            assert cookies[0]["httpOnly"] is True
            shot = tmp_path / "status.png"
            page.screenshot(path=str(shot), full_page=True)
            page.click("text=Sign out")
            page.wait_for_selector("#password")
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENSHOT_DIR / "status.png")
    assert all(url.startswith(base_url) for url in requested), requested
