"""The status page in Debian's headless Chromium, on a desktop and a phone.

Login, overall status, fleet and charts at 1280 and 390 px: nothing scrolls sideways,
chart text stays readable, and axe-core (the npm package, installed by
`scripts/setup.sh --test` under var/npm) finds no serious or critical violation on the
status, login and link pages. Screenshots go to a temporary folder, and are copied to
$DURABILITY_SCREENSHOT_DIR when CI sets it.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from durability.model import Report, Result, Status
from tests.web_status.conftest import (
    NOW,
    PASSWORD,
    SECRET,
    StatusWorld,
    raid_report,
    seed_reminder_states,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
AXE = Path(__file__).resolve().parents[2] / "var" / "npm" / "node_modules" / "axe-core"
WIDTHS = (1280, 390)
# Text rendered smaller than this (CSS px) is not readable on a phone.
MIN_CHART_TEXT_PX = 10.0


@pytest.fixture
def base_url(status_world: StatusWorld) -> Iterator[str]:
    from durability.web.server import make_server

    server = make_server(status_world.app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(5)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Return Debian's Chromium through Playwright, with a fresh profile."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    profile = tmp_path / "chromium-profile"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            bypass_csp=True, viewport={"width": 1280, "height": 900})
        try:
            yield context
        finally:
            context.close()


def busy_world(world: StatusWorld) -> None:
    """Fill the world with what an operator meets: a broken node, a silent one, reminders."""
    store = world.store()
    try:
        seed_reminder_states(store, NOW)
        store.record_report(Report("restore-test", NOW - timedelta(days=1), (
            Result("restore-test", "restic-db", Status.OK, "restored 4 GiB", data={
                "source": "restic-db", "seconds": {"restore": 700.0, "total": 820.0},
                "projected_full_restore_seconds": 3 * 3600.0,
                "rto_target_seconds": 4 * 3600.0, "bytes_per_second": 1.1e7}),)))
    finally:
        store.close()
    for days_ago in range(10, 0, -1):
        world.report("node-b", raid_report(NOW - timedelta(days=days_ago), (
            "md1", Status.WARNING if days_ago in (3, 4) else Status.OK, "clean")))
    world.report("node-a", raid_report(NOW, ("md0", Status.OK, "clean, 2 of 2 in sync")))
    world.report("node-b", raid_report(NOW, ("md0", Status.OK, "clean, 2 of 2 in sync"), (
        "md1", Status.CRITICAL, "degraded: 1 of 2 members, sdb1 faulty since 09:12")))
    world.report("node-c", raid_report(NOW - timedelta(hours=6), ("md0", Status.OK, "clean")))


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Run axe-core in the page; return its serious and critical violations."""
    page.evaluate((AXE / "axe.min.js").read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [{"id": v["id"], "impact": v["impact"],
             "nodes": [n["target"] for n in v["nodes"]][:3]}
            for v in found if v["impact"] in ("serious", "critical")]


def no_sideways_scroll(page: Any) -> bool:
    width: bool = page.evaluate(
        "() => document.documentElement.scrollWidth <= window.innerWidth")
    return width


def smallest_chart_text(page: Any) -> float:
    """Return the smallest rendered font size (CSS px) of the visible chart text."""
    size: float = page.evaluate("""() => {
        let smallest = 1000;
        for (const svg of document.querySelectorAll('svg.chart')) {
            const box = svg.getBoundingClientRect();
            if (box.width === 0) continue;
            const scale = box.width / svg.viewBox.baseVal.width;
            for (const text of svg.querySelectorAll('text')) {
                const size = parseFloat(getComputedStyle(text).fontSize) * scale;
                smallest = Math.min(smallest, size);
            }
        }
        return smallest;
    }""")
    return size


def keep(shot: Path) -> None:
    """Copy a screenshot where CI collects them (only when it says where)."""
    folder = os.environ.get("DURABILITY_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(folder) / shot.name)


def open_page(browser: Any, width: int, height: int) -> Any:
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": height})
    return page


def log_in(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/")
    assert page.url.startswith(f"{base_url}/status/login")
    page.fill("#user", "ops")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#overall")


@pytest.mark.slow
def test_status_page_in_chromium_login_then_fleet_and_charts(
    status_world: StatusWorld, base_url: str, browser: Any, tmp_path: Path
) -> None:
    busy_world(status_world)
    requested: list[str] = []
    page = browser.new_page()
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
    headline = page.locator("#overall .headline").inner_text()
    assert headline.startswith("CRITICAL") and "Operations" in headline
    assert "RAID CRITICAL on 1 node(s): node-b" in page.locator("#overall").inner_text()
    assert "RAID per node (3 nodes)" in page.locator("#fleet h2").inner_text()
    assert page.locator("#fleet tbody tr").first.inner_text().startswith("node-b")
    assert page.locator("svg.chart:visible").count() == 4
    assert page.locator("svg.chart:visible polyline").count() >= 3
    assert page.locator("svg.strip").count() >= 1
    cookies = browser.cookies()
    assert [c["name"] for c in cookies] == ["durability_session"]
    assert cookies[0]["httpOnly"] is True
    page.fill("#q", "maxed")
    page.click("#customers button[type=submit]")
    page.wait_for_selector("#customers")
    rows = page.locator("#customers tbody tr")
    assert rows.count() == 1 and "needs attention" in rows.first.inner_text()
    page.click("text=Sign out")
    page.wait_for_selector("#password")
    assert all(url.startswith(base_url) for url in requested), requested


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_status_page_fits_the_screen_and_reads(
    status_world: StatusWorld, base_url: str, browser: Any, tmp_path: Path, width: int
) -> None:
    busy_world(status_world)
    page = open_page(browser, width, 900)
    log_in(page, base_url)
    page.click("#fleet summary")
    assert no_sideways_scroll(page), page.evaluate("document.documentElement.scrollWidth")
    assert smallest_chart_text(page) >= MIN_CHART_TEXT_PX
    shown = page.locator("svg.chart:visible").first.get_attribute("class")
    assert shown == ("chart chart-wide" if width > 700 else "chart chart-narrow")
    # Every customer row shows its state and each of its legs, also stacked on a phone.
    first = page.locator("#customers tbody tr").first
    assert first.is_visible()
    text = first.inner_text()
    assert "c-4" in text and "needs attention" in text
    display = first.locator("td").first.evaluate("cell => getComputedStyle(cell).display")
    assert display == ("table-cell" if width > 700 else "block")
    shot = tmp_path / f"status-{width}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    keep(shot)


def _axe_ready() -> None:
    if not (AXE / "axe.min.js").exists():
        pytest.skip("axe-core is not installed (bash scripts/setup.sh --test puts it in var/npm)")


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_status_and_login_pages_pass_axe(
    status_world: StatusWorld, base_url: str, browser: Any, width: int
) -> None:
    _axe_ready()
    busy_world(status_world)
    page = open_page(browser, width, 900)
    page.goto(f"{base_url}/status/login")
    assert axe_violations(page) == []
    log_in(page, base_url)
    page.click("#fleet summary")
    assert axe_violations(page) == []
    page.goto(f"{base_url}/status?state=attention&q=c-")
    page.wait_for_selector("#customers")
    assert axe_violations(page) == []


@pytest.mark.slow
@pytest.mark.parametrize("action", ["confirm", "snooze", "unsubscribe"])
def test_link_pages_pass_axe(
    status_world: StatusWorld, base_url: str, browser: Any, action: str
) -> None:
    from durability.web.signing import sign_token

    _axe_ready()
    token = sign_token(SECRET, "c-1", action, NOW)
    page = open_page(browser, 390, 800)
    page.goto(f"{base_url}/l/{action}/{token}")
    assert page.locator("form button").count() >= 1
    assert axe_violations(page) == []
    page.goto(f"{base_url}/l/{action}/not-a-token")
    assert axe_violations(page) == []
