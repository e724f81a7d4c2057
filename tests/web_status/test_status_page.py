"""The status page behind its login: what it shows, and who may see it."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from durability.errors import ConfigError
from durability.model import Status
from durability.web.auth import (
    COOKIE,
    hash_password,
    parse_users,
    verify_password,
)
from tests.web_status.conftest import (
    NOW,
    PASSWORD,
    StatusWorld,
    raid_report,
    seed_reminder_states,
)


def page(world: StatusWorld, path: str = "/status") -> str:
    response = world.client.get(path)
    assert response.status_code == 200, response.status_code
    text: str = response.get_data(as_text=True)
    return text


def test_show_status_unauthenticated_redirected_to_login(status_world: StatusWorld) -> None:
    response = status_world.client.get("/status?page=2")
    assert response.status_code == 303
    assert response.headers["Location"] == "/status/login?next=/status%3Fpage%3D2"
    assert "node-a" not in response.get_data(as_text=True)


def test_do_login_wrong_password_401_no_cookie(status_world: StatusWorld) -> None:
    response = status_world.login(password="guess")
    assert response.status_code == 401
    assert "Wrong user name or password." in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    assert status_world.client.get("/status").status_code == 303


def test_do_login_unknown_user_401(status_world: StatusWorld) -> None:
    assert status_world.login(user="root").status_code == 401


def test_do_login_right_password_only_session_cookie(status_world: StatusWorld) -> None:
    response = status_world.login()
    assert response.status_code == 303
    assert response.headers["Location"] == "/status"
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == 1
    assert cookies[0].startswith(f"{COOKIE}=")
    for flag in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/"):
        assert flag in cookies[0]
    assert status_world.client.get("/status").status_code == 200


def test_show_status_session_expired_back_to_login(status_world: StatusWorld) -> None:
    status_world.login()
    status_world.clock[0] = NOW + timedelta(hours=13)
    assert status_world.client.get("/status").status_code == 303


def test_show_status_user_removed_from_file_refused(status_world: StatusWorld) -> None:
    status_world.login()
    status_world.users_file.write_text("# nobody\n")
    assert status_world.client.get("/status").status_code == 303


def test_do_logout_cookie_cleared(status_world: StatusWorld) -> None:
    status_world.login()
    response = status_world.client.post("/status/logout")
    assert response.status_code == 303
    assert status_world.client.get("/status").status_code == 303


def test_do_login_foreign_next_stays_local(status_world: StatusWorld) -> None:
    response = status_world.client.post(
        "/status/login", data={"user": "ops", "password": PASSWORD, "next": "//evil.example/x"})
    assert response.headers["Location"] == "/status"


def test_show_status_made_up_cookie_back_to_login(status_world: StatusWorld) -> None:
    status_world.client.set_cookie(COOKIE, "ops.9999999999.forged")
    assert status_world.client.get("/status").status_code == 303


def test_verify_password_right_and_wrong() -> None:
    encoded = hash_password("s3cret-enough", iterations=1000)
    assert verify_password("s3cret-enough", encoded)
    assert not verify_password("s3cret-enougH", encoded)
    assert not verify_password("x", "md5$1$2$3")


def test_parse_users_bad_line_config_error_names_line() -> None:
    with pytest.raises(ConfigError, match="line 3: expected USER:HASH"):
        parse_users("# users\nops:pbkdf2_sha256$1000$a$b\nroot:plaintext\n")


def test_do_login_no_users_at_all_401(status_world: StatusWorld) -> None:
    status_world.users_file.unlink()
    assert status_world.client.get("/status/login").status_code == 200
    assert status_world.login().status_code == 401


def section(html: str, name: str) -> str:
    start = html.index(f'<section id="{name}"')
    return html[start:html.index("</section>", start)]


def customer_ids(html: str) -> list[str]:
    return re.findall(r'<td data-label="Customer" class="name">([^<]+)<br>', section(html, "customers"))


def test_show_status_fleet_nodes_worst_first(status_world: StatusWorld) -> None:
    status_world.report("node-a", raid_report(NOW, ("md0", Status.OK, "clean")))
    status_world.report("node-b", raid_report(NOW, ("md1", Status.CRITICAL, "degraded: 1 of 2")))
    status_world.report("node-c", raid_report(NOW - timedelta(hours=5),
                                              ("md2", Status.OK, "clean")))
    status_world.login()
    fleet = section(page(status_world), "fleet")
    assert "RAID per node (3 nodes)" in fleet
    order = [fleet.index(node) for node in ("node-b", "node-c", "node-a")]
    assert order == sorted(order)
    assert 'md1: <span class="badge s-CRITICAL">CRITICAL</span> degraded: 1 of 2' in fleet
    # The silent node is not known to be OK; the OK node is folded away.
    assert fleet.count("silent: no report in time") == 1
    assert "<summary>1 node(s) OK</summary>" in fleet
    assert fleet.index("<summary>") > fleet.index("node-c")


def test_show_status_overall_says_what_is_broken_and_who_acts(
    status_world: StatusWorld,
) -> None:
    status_world.report("node-a", raid_report(NOW, ("md0", Status.OK, "clean")))
    status_world.report("node-b", raid_report(NOW, ("md1", Status.CRITICAL, "degraded")))
    status_world.login()
    overall = section(page(status_world), "overall")
    assert 'class="overall o-CRITICAL"' in overall
    first = overall[overall.index("<li>"):overall.index("</li>")]
    assert "s-CRITICAL" in first and "Operations:" in first
    assert "RAID CRITICAL on 1 node(s): node-b; 1 customer(s) are on them." in first
    # restic-db's latest snapshot verdict is WARNING: operations again.
    assert "Provider snapshots of restic-db: WARNING; 2 customer(s) rely on it." in overall
    assert "Provider snapshots of s3-backups" not in overall


def test_show_status_all_fine_headline_ok(status_world: StatusWorld) -> None:
    from durability.model import Result
    from durability.snapshots.history import record_source_runs, source_runs

    store = status_world.store()
    try:
        record_source_runs(store, source_runs((
            Result("snapshots", "restic-db/db1", Status.OK, "fresh",
                   data={"source": "restic-db", "age_seconds": 60.0}),
            Result("snapshots", "s3-backups/web1", Status.OK, "fresh",
                   data={"source": "s3-backups", "age_seconds": 60.0})), NOW))
    finally:
        store.close()
    for node in ("node-a", "node-b", "node-c"):
        status_world.report(node, raid_report(NOW, ("md0", Status.OK, "clean")))
    status_world.login()
    overall = section(page(status_world), "overall")
    assert 'class="overall o-OK"' in overall
    assert "All checks OK: nothing needs anyone&#x27;s action." in overall
    # Eve has no own copy: said, calmly, but not a problem.
    assert "1 customer(s) have no own copy yet" in overall


def test_show_status_local_raid_only_raid_results(status_world: StatusWorld) -> None:
    from durability.model import Report, Result

    store = status_world.store()
    try:
        # One recorded run that carries more than the RAID check's results.
        store.record_report(Report("check", NOW - timedelta(minutes=1), (
            Result("raid", "md5", Status.WARNING, "resync 40%"),
            Result("snapshots", "s3-backups/web1", Status.OK, "fresh"),
            Result("restore-test", "restic-db", Status.OK, "restored"),
        )))
    finally:
        store.close()
    status_world.login()
    fleet = section(page(status_world), "fleet")
    assert "central" in fleet and "(this server)" in fleet
    assert "md5: " in fleet and "resync 40%" in fleet
    assert "s3-backups" not in fleet and "restic-db" not in fleet


def test_show_status_future_dated_report_counts_from_arrival(status_world: StatusWorld) -> None:
    from datetime import UTC, datetime

    status_world.report("node-a", raid_report(datetime(2099, 1, 1, tzinfo=UTC),
                                              ("md0", Status.OK, "clean")))
    status_world.clock[0] = NOW + timedelta(hours=2)
    status_world.login()
    fleet = section(page(status_world), "fleet")
    row = fleet[fleet.index("node-a"):]
    assert "silent: no report in time" in row[:row.index("</tr>")]
    assert "2099" not in fleet


def test_show_status_raid_history_strip_per_node(status_world: StatusWorld) -> None:
    for days_ago in (3, 2, 1):
        status = Status.CRITICAL if days_ago == 2 else Status.OK
        status_world.report("node-b", raid_report(NOW - timedelta(days=days_ago),
                                                  ("md1", status, status.name.lower())))
    status_world.report("node-b", raid_report(NOW, ("md1", Status.WARNING, "resync")))
    status_world.login()
    fleet = section(page(status_world), "fleet")
    row = fleet[fleet.index("node-b"):]
    row = row[:row.index("</tr>")]
    assert "RAID of node-b: not OK on 2 of the last 30 days" in row
    assert f"<title>{(NOW - timedelta(days=2)):%Y-%m-%d}: CRITICAL</title>" in row
    assert f"<title>{(NOW - timedelta(days=3)):%Y-%m-%d}: OK</title>" in row
    assert (f"<title>{(NOW - timedelta(days=29)):%Y-%m-%d} to "
            f"{(NOW - timedelta(days=4)):%Y-%m-%d}: no report</title>") in row


def test_show_status_charts_labelled_with_limits_nothing_external(
    status_world: StatusWorld,
) -> None:
    status_world.login()
    html = page(status_world)
    snapshots = section(html, "snapshots")
    assert snapshots.count('class="chart chart-wide"') == 1
    assert snapshots.count('class="chart chart-narrow"') == 1
    assert "Age of the newest snapshot per source" in snapshots
    assert snapshots.count(">time (UTC)</text>") == 2 and snapshots.count(">age</text>") == 2
    assert snapshots.count('class="limit-label">max age 1d 2h</text>') == 2
    # Five dated ticks on the wide drawing, from 26 Oct to 25 Nov.
    assert re.findall(r'text-anchor="(?:start|middle|end)" font-size="11">(\d\d \w{3})<',
                      snapshots)[-5:] == ["26 Oct", "02 Nov", "10 Nov", "17 Nov", "25 Nov"]
    restores = section(html, "restores")
    assert "Restore test duration" in restores and "Restore throughput" in restores
    assert re.search(r'<polyline points="[0-9., ]+" fill="none" stroke="#[0-9a-f]{6}"', html)
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script" not in html


def test_show_status_rto_line_on_projected_restore(status_world: StatusWorld) -> None:
    from durability.model import Report, Result

    store = status_world.store()
    try:
        store.record_report(Report("restore-test", NOW - timedelta(days=1), (
            Result("restore-test", "restic-db", Status.OK, "restored", data={
                "source": "restic-db", "seconds": {"restore": 60.0, "total": 61.0},
                "projected_full_restore_seconds": 5400.0, "rto_target_seconds": 4 * 3600.0,
                "bytes_per_second": 1e7}),)))
    finally:
        store.close()
    status_world.login()
    restores = section(page(status_world), "restores")
    assert "Projected full restore time" in restores
    assert 'class="limit-label">RTO 4h</text>' in restores


def test_show_status_customers_three_two_one(status_world: StatusWorld) -> None:
    status_world.report("node-a", raid_report(NOW, ("md0", Status.OK, "clean")))
    status_world.login()
    customers = section(page(status_world), "customers")
    assert "Customers: 3-2-1 (3)" in customers
    row = customers[customers.index("c-1<br>"):]
    row = row[:row.index("</tr>")]
    # Copy recent; RAID mirror on node-a OK; restic-db snapshot WARNING but restore-tested.
    assert "copy up to date" in row and row.count("badge s-OK") == 2
    assert "node-a" in row and 'badge s-WARNING' in row and "restore-tested" in row
    eve = customers[customers.index("c-3<br>"):]
    eve = eve[:eve.index("</tr>")]
    assert "no own copy yet" in eve and "badge s-INFO" in eve and "no copy on record" in eve
    bob = customers[customers.index("c-2<br>"):]
    assert "due since 2026-10-01" in bob[:bob.index("</tr>")]


def test_show_status_customers_worst_first_numeric_ids(status_world: StatusWorld) -> None:
    store = status_world.store()
    try:
        seed_reminder_states(store, NOW)
    finally:
        store.close()
    status_world.login()
    html = page(status_world)
    # attention (by id, numbers as numbers), overdue, no copy, snoozed, unsubscribed, ok.
    assert customer_ids(html) == ["c-4", "c-7", "c-10", "c-2", "c-3", "c-20", "c-5", "c-6",
                                  "c-1"]
    customers = section(html, "customers")

    def row(customer: str) -> str:
        found = customers[customers.index(f">{customer}<br>"):]
        return found[:found.index("</tr>")]

    assert "address refused by the mail server" in row("c-4")
    assert "6 reminders sent in this period, no copy confirmed" in row("c-10")
    assert "reminder 6 of 6 sent" in row("c-10")
    assert "1 reminder(s) may not have arrived" in row("c-7")
    assert "copy overdue" in row("c-2") and "reminder 2 of 6 sent" in row("c-2")
    assert f"snoozed until {NOW + timedelta(days=5):%Y-%m-%d}" in row("c-5")
    assert "unsubscribed 2026-11-24" in row("c-6")
    assert "needs attention</a>: <b>3</b>" in customers
    assert "no own copy yet</a>: <b>2</b>" in customers


def test_show_status_customer_search_and_state_filter(status_world: StatusWorld) -> None:
    store = status_world.store()
    try:
        seed_reminder_states(store, NOW)
    finally:
        store.close()
    status_world.login()
    assert customer_ids(page(status_world, "/status?q=bob%40example")) == ["c-2"]
    assert customer_ids(page(status_world, "/status?q=SNOOZED")) == ["c-5"]
    assert customer_ids(page(status_world, "/status?q=c-1")) == ["c-10", "c-1"]
    html = page(status_world, "/status?state=attention")
    assert customer_ids(html) == ["c-4", "c-7", "c-10"]
    assert "3 of 9 customers match." in html
    assert '<option value="attention" selected>' in html
    assert customer_ids(page(status_world, "/status?state=attention&q=zed")) == ["c-10"]
    assert "No customer matches this search." in page(status_world, "/status?q=nobody")
    odd = page(status_world, "/status?state=bogus")
    assert "unknown customer state &#x27;bogus&#x27;: showing every customer" in odd
    assert len(customer_ids(odd)) == 9


def test_show_status_no_copy_severity_critical_counts_and_sorts(
    status_world: StatusWorld,
) -> None:
    from werkzeug.test import Client

    from durability.config import load_config
    from durability.state.store import open_store
    from durability.web.app import make_app

    store = status_world.store()
    try:
        seed_reminder_states(store, NOW)
    finally:
        store.close()
    assert status_world.config.path
    original = Path(status_world.config.path)
    changed = original.with_name("critical.toml")
    changed.write_text(original.read_text().replace(
        "customers_per_page = 10", 'customers_per_page = 10\nno_own_copy_severity = "critical"'))
    config = load_config(str(changed))
    client = Client(make_app(config, lambda: open_store(config.state.path, config.state.url),
                             clock=lambda: NOW))
    client.post("/status/login", data={"user": "ops", "password": PASSWORD})
    html = client.get("/status").get_data(as_text=True)
    assert customer_ids(html)[:5] == ["c-4", "c-7", "c-10", "c-3", "c-20"]
    overall = section(html, "overall")
    assert "Customers:</span> <a href=\"/status?state=no-copy#customers\">2 customer(s) have " \
        "no own copy yet." in overall
    assert "badge s-CRITICAL\">no own copy yet" in section(html, "customers")


def test_show_status_customers_paged_with_page_numbers(status_world: StatusWorld) -> None:
    from durability.remind import state as remind_state
    from durability.remind.customers import parse_customers_csv

    store = status_world.store()
    try:
        rows = "".join(f"x-{i},x{i}@example.com,X {i},en,2026-11-20T00:00:00Z\n"
                       for i in range(1, 46))
        remind_state.import_customers(
            store, parse_customers_csv("id,email,name,language,last_copy_at\n" + rows), NOW)
    finally:
        store.close()
    status_world.login()
    html = page(status_world, "/status?page=3&state=ok")
    assert "page 3 of 5" in html
    # ok customers: c-1, then x-1 ... x-45 with numbers in numeric order.
    assert customer_ids(html) == [f"x-{i}" for i in range(20, 30)]
    pager = html[html.index('<ul class="pager">'):]
    pager = pager[:pager.index("</ul>")]
    assert re.findall(r'aria-label="page (\d+)"', pager) == ["1", "2", "4", "5"]
    assert '<span aria-current="page">3</span>' in pager
    assert 'href="/status?state=ok&amp;page=4#customers" rel="next"' in pager
    assert customer_ids(page(status_world, "/status?page=99&state=ok"))[-1] == "x-45"


def test_root_redirects_to_status(status_world: StatusWorld) -> None:
    response = status_world.client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/status"


def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    """Return the WCAG 2 contrast ratio of two #rrggbb colours."""
    high, low = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_known_pairs() -> None:
    assert round(contrast("#ffffff", "#000000"), 1) == 21.0
    # The old badges: white on orange and on green failed AA.
    assert round(contrast("#ffffff", "#e67700"), 1) == 3.0
    assert contrast("#ffffff", "#2b8a3e") < 4.5


def test_badge_colours_pass_wcag_aa_and_are_the_page_css() -> None:
    from durability.web.status import BADGE_COLOURS, STYLE

    for name, (background, text) in BADGE_COLOURS.items():
        assert contrast(text, background) >= 4.5, name
        assert f".s-{name}{{background:{background};color:{text}}}" in STYLE


def test_show_status_search_shows_overall_and_customers_only(status_world: StatusWorld) -> None:
    status_world.report("node-b", raid_report(NOW, ("md1", Status.CRITICAL, "degraded")))
    status_world.login()
    html = page(status_world, "/status?q=bob")
    assert customer_ids(html) == ["c-2"]
    assert 'id="fleet"' not in html and "<svg" not in html
    assert '<a href="/status">Back to the full status</a>' in html
    overall = section(html, "overall")
    assert '<a href="/status#fleet">RAID CRITICAL on 1 node(s): node-b' in overall


def test_show_status_snapshot_source_not_checked_in_time_is_unknown(
    status_world: StatusWorld,
) -> None:
    # The last snapshot run was 6 hours before NOW; the interval is 6 hours.
    status_world.clock[0] = NOW + timedelta(hours=13)
    status_world.login()
    html = page(status_world)
    overall = section(html, "overall")
    assert ("Provider snapshots of s3-backups: UNKNOWN (not checked since 2026-11-25 06:00)"
            in overall)
    snapshots = section(html, "snapshots")
    row = snapshots[snapshots.index("<td data-label=\"Source\">s3-backups"):]
    row = row[:row.index("</tr>")]
    assert "s-UNKNOWN" in row and "silent: not checked in time" in row


@pytest.mark.state
def test_show_status_names_the_active_service_instance(status_world: StatusWorld) -> None:
    from durability.service.lease import Lease

    status_world.login()
    assert "active service" not in page(status_world)  # no service ever ran here
    lease = Lease(status_world.store, "alpha", ttl=30, force=True)
    assert lease.try_acquire()
    try:
        html = page(status_world)
        assert "active service: alpha on " in html
        assert "no active service" not in html
    finally:
        lease.release()
    html = page(status_world)
    assert "no active service" in html and "the lease of alpha on " in html
