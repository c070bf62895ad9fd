"""The web console as its users meet it, in Chromium, over a real broker, site agent and ingest service.

The site agent runs `config/demo.yaml` over the clip and its alerts travel
the real way (signed, over Mosquitto, verified and stored by the ingest
service); the live queue's rows arrive through the page's event stream. A
status sent from an incident page goes back to the site, which verifies it
and writes it into its hash-chained audit log. Crafted alerts of two more
registered sites cover the training view and hostile text. Passing tests
take screenshots of the queue, an incident and the map: into the test's
temporary folder, or into the folder `EDGE_AGENT_SCREENSHOTS` names
(`make screenshots` sets it to `docs/`, the README's images).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Dialog, Locator, Page, expect

from agent.agency.store import StoreReader
from agent.privacy.audit import verify_log
from tests.agency.v2_alerts import Site
from tests.browser.stack import HOSTILE, REPO, Stack, hostile_alert, site_status_record, wait_until

pytestmark = pytest.mark.broker

SCREENSHOTS_ENV = "EDGE_AGENT_SCREENSHOTS"
FIRST_ALERT_S = 150  # model load, then people walking into the zone: ~10-20 s on a quiet machine
ANALYST, AUDITOR = "analyst-1", "auditor-1"
UNACKNOWLEDGED = re.compile(r"\bunacknowledged\b")
LogIn = Callable[..., Page]  # the `log_in` fixture: log_in(user, **context_options)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go (see the module docstring)."""
    chosen = os.environ.get(SCREENSHOTS_ENV)
    return (REPO / chosen) if chosen else tmp_path_factory.mktemp("screenshots")


def _open_live(page: Page, stack: Stack, path: str = "/") -> None:
    """Open a queue page and wait until its live stream is connected."""
    page.goto(stack.url(path))
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")


def _incident_rows(page: Page, site_id: str, table: str = "#queue") -> Locator:
    return page.locator(f"{table} tr.incident[data-site-id='{site_id}']")


def _first_agent_row(stack: Stack, page: Page) -> Locator:
    """The first live-queue row of the demo site on `page`, waiting for the agent's first alert."""
    rows = _incident_rows(page, stack.demo_site_id)
    deadline = time.monotonic() + FIRST_ALERT_S
    while rows.count() == 0:
        stack.agent.check_running()
        if time.monotonic() > deadline:
            raise AssertionError(f"no alert of the site in the live queue; agent log:\n{stack.agent.log_tail()}")
        page.wait_for_timeout(500)
    return rows.first


def _agent_incident(stack: Stack) -> str:
    """The id of an incident the site agent has opened (started here when a test runs alone)."""
    stack.agent.start()
    reader = StoreReader(stack.engine)

    def opened() -> str | None:
        stack.agent.check_running()
        rows = [r for r in reader.queue() if r.site_id == stack.demo_site_id]
        return rows[0].incident_id if rows else None

    return wait_until(opened, FIRST_ALERT_S, "the site agent's first incident")


def _wait_stored(stack: Stack, site: Site, incident_id: str) -> None:
    reader = StoreReader(stack.engine)
    wait_until(lambda: reader.incident(site.site_id, incident_id), 20, f"incident {incident_id} to be stored")


def _incident_path(site_id: str, incident_id: str) -> str:
    return f"/incidents/{site_id}/{incident_id}"


def test_an_alert_from_the_site_arrives_in_the_live_queue_without_a_reload(
    stack: Stack, log_in: LogIn, shots: Path
) -> None:
    page = log_in(ANALYST)
    _open_live(page, stack)
    expect(_incident_rows(page, stack.demo_site_id)).to_have_count(0)
    page.evaluate("window.sameDocument = true")  # gone if the page were reloaded
    stack.agent.start()
    row = _first_agent_row(stack, page)
    assert page.evaluate("window.sameDocument === true"), "the page was reloaded"
    expect(row).to_have_class(re.compile(r"\bincident-new\b"))
    expect(row).to_have_class(UNACKNOWLEDGED)
    expect(row.locator("td.col-site")).to_have_text(stack.demo_site_name)
    expect(row.locator("a.incident-link")).to_be_visible()
    expect(page.locator("#queue-empty")).to_be_hidden()
    page.screenshot(path=shots / "console-queue.png")


def test_acknowledging_reaches_the_site_and_shows_in_the_status_history(
    stack: Stack, log_in: LogIn, shots: Path
) -> None:
    incident_id = _agent_incident(stack)
    page = log_in(ANALYST)
    _open_live(page, stack)
    page.locator(f"#queue tr.incident[data-incident-id='{incident_id}'] a.incident-link").click()
    expect(page.locator("#incident")).to_have_attribute("data-incident-id", incident_id)
    expect(page.locator("#verification .badge-verified").first).to_be_visible()
    page.locator("#status-form button.status-button[data-status='acknowledged']").click()
    expect(page.locator("#flash")).to_have_class(re.compile(r"\bflash-ok\b"))
    sent = page.locator("#timeline li.timeline-status[data-status='acknowledged']")
    expect(sent).to_have_count(1)
    expect(sent).to_have_attribute("data-published", "true")
    expect(sent).to_contain_text(ANALYST)
    expect(page.locator("#timeline li.timeline-status[data-status='received']").first).to_be_attached()

    record = wait_until(
        lambda: site_status_record(stack.audit_log, incident_id, "acknowledged"),
        30,
        "the site to record the acknowledgement in its audit log",
    )
    assert record["recipient"] == stack.recipient
    assert record["operator"] == ANALYST
    shown_alerts = page.locator("#timeline li.timeline-alert").evaluate_all("els => els.map(e => e.dataset.alertId)")
    assert record["alert_id"] in shown_alerts
    assert site_status_record(stack.audit_log, incident_id, "received") is not None
    checked, issue = verify_log(stack.audit_log)
    assert issue is None and checked > 0, f"the site's audit chain is broken: {issue}"
    page.screenshot(path=shots / "console-incident.png")

    _open_live(page, stack)
    row = page.locator(f"#queue tr.incident[data-incident-id='{incident_id}']")
    expect(row).to_have_attribute("data-acknowledged", "true")
    expect(row).not_to_have_class(UNACKNOWLEDGED)


def test_the_map_shows_the_site_and_its_incidents(stack: Stack, log_in: LogIn, shots: Path) -> None:
    _agent_incident(stack)
    page = log_in(ANALYST)
    page.goto(stack.url("/map"))
    demo = stack.demo_site_id
    expect(page.locator(f"#map-sites li.map-site[data-site-id='{demo}']")).to_have_count(1)
    expect(page.locator(f"#map-incidents li.map-incident[data-site-id='{demo}']").first).to_be_attached()
    if page.locator("#map-missing").count():
        pytest.skip("Leaflet is not installed (make node-deps): the map page lists places without a map")
    expect(page.locator("#map")).to_be_visible()
    expect(page.locator("#map path.marker-site").first).to_be_visible()
    expect(page.locator("#map path.marker-incident").first).to_be_visible()
    page.locator("#map path.marker-site").first.dispatch_event("click")
    expect(page.locator(".leaflet-popup-content")).to_have_text(stack.demo_site_name)
    # The map alone: the list below it names the crafted sites too (one of them hostile).
    page.locator("#map").screenshot(path=shots / "console-map.png")


def test_an_exercise_alert_is_in_the_training_view_only(stack: Stack, log_in: LogIn) -> None:
    live = log_in(ANALYST)
    _open_live(live, stack)
    training = live.context.new_page()
    _open_live(training, stack, "/training")
    site = stack.training_site
    exercise = stack.alert(site, 1, status="Exercise")
    stack.publish(site, exercise)
    expect(training.locator(f"#training-queue tr.incident[data-incident-id='{exercise['incidents']}']")).to_be_visible()
    expect(training.locator(".badge-exercise").first).to_be_visible()
    # An actual alert published after it: once that is on the live page, the exercise one had its chance too.
    actual = stack.alert(site, 2)
    assert actual["incidents"] != exercise["incidents"]
    stack.publish(site, actual)
    expect(live.locator(f"#queue tr.incident[data-incident-id='{actual['incidents']}']")).to_be_visible()

    def rows_of(page: Page, alert: dict[str, Any]) -> Locator:
        return page.locator(f"tr.incident[data-incident-id='{alert['incidents']}']")

    expect(rows_of(live, exercise)).to_have_count(0)
    expect(rows_of(training, actual)).to_have_count(0)
    live.reload()
    training.reload()
    expect(rows_of(live, actual)).to_have_count(1)
    expect(rows_of(live, exercise)).to_have_count(0)
    expect(rows_of(training, exercise)).to_have_count(1)
    expect(rows_of(training, actual)).to_have_count(0)


def _shown_as_text(page: Page, where: Locator) -> None:
    """`HOSTILE` is on the page as text, and nothing was made of it as markup."""
    expect(where.first).to_be_visible()
    expect(where.first).to_contain_text(HOSTILE)
    expect(page.locator("img[src='x']")).to_have_count(0)


def test_hostile_text_from_a_site_renders_as_text_on_every_page(stack: Stack, log_in: LogIn) -> None:
    # Without the console's Content-Security-Policy, so that markup made of the text would run and be seen.
    page = log_in(ANALYST, bypass_csp=True)
    dialogs: list[str] = []

    def dialog_opened(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dialog_opened)
    _open_live(page, stack)
    site = stack.hostile_site
    camera = {"camera_id": HOSTILE, "state": HOSTILE, "target_fps": 5, "achieved_fps": 4.5, "inference_ms": 20}
    stack.publish_health(site, {"cameras": [camera], "broker_state": HOSTILE, "outbox_depth": 0})
    data = hostile_alert(stack, 1)
    stack.publish(site, data, camera=HOSTILE, rule=HOSTILE)

    row = _incident_rows(page, site.site_id)
    expect(row).to_have_count(1)  # drawn by the page's own script from the live stream
    _shown_as_text(page, row)
    page.reload()  # drawn by the server
    _shown_as_text(page, _incident_rows(page, site.site_id))

    page.locator(f"#queue tr.incident[data-site-id='{site.site_id}'] a.incident-link").click()
    expect(page.locator("#incident")).to_have_attribute("data-incident-id", data["incidents"])
    for field in ("site", "sender_name", "event", "rule", "zone", "camera_id", "class_name"):
        expect(page.locator(f"#incident-summary dd[data-field='{field}']")).to_contain_text(HOSTILE)
    _shown_as_text(page, page.locator("#incident h1"))

    page.goto(stack.url("/sites"))
    site_row = page.locator(f"#sites tr.site[data-site-id='{site.site_id}']")
    _shown_as_text(page, site_row)
    expect(site_row.locator("ul.camera-fps li.camera")).to_contain_text(HOSTILE)

    page.goto(stack.url("/map"))
    _shown_as_text(page, page.locator(f"#map-sites li.map-site[data-site-id='{site.site_id}']"))
    popups = []
    for marker in page.locator("#map path.marker-site, #map path.marker-incident").all():
        marker.dispatch_event("click")  # a popup is where a map library would take markup
        popup = page.locator(".leaflet-popup-content")
        expect(popup).to_have_count(1)  # the one opened before fades out and goes
        expect(popup).to_be_visible()
        popups.append(popup.inner_text())
        expect(page.locator("img[src='x']")).to_have_count(0)
    assert HOSTILE in popups, f"no marker's popup shows the site's name as text: {popups}"

    page.goto(stack.url(f"/search?site={site.site_id}"))
    _shown_as_text(page, page.locator(f"#results tr.alert-row[data-site-id='{site.site_id}']"))
    assert dialogs == [], f"script from an alert ran: {dialogs}"


def _post_status(context: BrowserContext, url: str, **form: str) -> int:
    response = context.request.post(url, form={"status": "acknowledged", **form}, max_redirects=0)
    return response.status


def test_requests_without_login_role_or_token_are_refused(
    stack: Stack, log_in: LogIn, new_context: Callable[..., BrowserContext]
) -> None:
    site = stack.training_site
    data = stack.alert(site, 3)
    stack.publish(site, data)
    _wait_stored(stack, site, data["incidents"])
    page_path = _incident_path(site.site_id, data["incidents"])
    form_url, api_url = stack.url(page_path + "/status"), stack.url("/api" + page_path + "/status")

    anonymous = new_context()
    visitor = anonymous.new_page()
    for path in ("/", "/training", page_path, "/sites", "/map", "/search"):
        visitor.goto(stack.url(path))
        assert urlsplit(visitor.url).path == "/login", f"{path} was shown without a login"
        expect(visitor.locator("#login-form")).to_be_visible()
    for path in ("/api/incidents", "/api" + page_path, "/api/sites", "/events?exercise=false"):
        assert anonymous.request.get(stack.url(path)).status == 401, path
    refused = anonymous.request.post(form_url, form={"status": "acknowledged"}, max_redirects=0)
    assert refused.status == 303 and refused.headers["location"].startswith("/login")
    assert anonymous.request.post(api_url, data={"status": "acknowledged"}).status == 401

    auditor = log_in(AUDITOR)
    auditor.goto(stack.url(page_path))
    expect(auditor.locator("#status-form")).to_have_count(0)
    token = auditor.locator("meta[name='csrf-token']").get_attribute("content") or ""
    assert token
    assert _post_status(auditor.context, form_url, csrf_token=token) == 403
    headers = {"X-CSRF-Token": token}
    assert auditor.context.request.post(api_url, data={"status": "acknowledged"}, headers=headers).status == 403

    analyst = log_in(ANALYST)
    analyst.goto(stack.url(page_path))
    assert _post_status(analyst.context, form_url) == 403
    assert _post_status(analyst.context, form_url, csrf_token="not-the-token") == 403
    assert analyst.context.request.post(api_url, data={"status": "acknowledged"}).status == 403
    analyst.reload()
    expect(analyst.locator("#timeline li.timeline-status[data-status='acknowledged']")).to_have_count(0)
    expect(analyst.locator("#incident")).to_have_attribute("data-incident-id", data["incidents"])

    # The same request with the page's token is taken: the refusals above were the token's doing.
    token = analyst.locator("meta[name='csrf-token']").get_attribute("content") or ""
    assert _post_status(analyst.context, form_url, csrf_token=token) == 303
    analyst.reload()
    expect(analyst.locator("#timeline li.timeline-status[data-status='acknowledged']")).to_have_count(1)
