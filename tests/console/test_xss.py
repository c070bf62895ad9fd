"""Markup a hostile site puts into its alerts (and a registry name) is shown as text on every page and export."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

from agent.agency.store import AlertRow
from tests.agency.v2_alerts import alert_data
from tests.console.harness import HOSTILE, HOSTILE_ESCAPED, ConsoleHarness

ATOM = "{http://www.w3.org/2005/Atom}"


def _hostile(harness: ConsoleHarness) -> AlertRow:
    data = alert_data(harness.hostile.site_id, 1)
    data["info"].update(senderName=HOSTILE, headline=HOSTILE, event=HOSTILE)
    data["info"]["area"][0]["areaDesc"] = HOSTILE
    data["detection"].update(rule=HOSTILE, zone=HOSTILE, rule_kind=HOSTILE, class_name=HOSTILE, camera_id=HOSTILE)
    return harness.add_alert(harness.hostile, data)


def test_every_page_escapes_what_the_site_sent(harness: ConsoleHarness) -> None:
    row = _hostile(harness)
    client = harness.login("ana")
    token_page = client.get(f"/incidents/{row.site_id}/{row.incident_id}")
    token = token_page.text.split('name="csrf-token" content="')[1].split('"')[0]
    client.post(
        f"/incidents/{row.site_id}/{row.incident_id}/status",
        data={"csrf_token": token, "status": "acknowledged", "note": HOSTILE},
    )
    pages = [
        "/",
        f"/incidents/{row.site_id}/{row.incident_id}",
        "/sites",
        "/map",
        "/search",
        f"/search?rule={HOSTILE}",
    ]
    supervisor = harness.login("sue")
    for path in pages:
        html = client.get(path).text
        assert HOSTILE not in html, path
        assert HOSTILE_ESCAPED in html, path
    registry = supervisor.get("/registry").text
    assert HOSTILE not in registry and HOSTILE_ESCAPED in registry


def test_the_exports_carry_the_markup_as_plain_text(harness: ConsoleHarness) -> None:
    row = _hostile(harness)
    client = harness.login("ana")
    cells = list(csv.reader(io.StringIO(client.get("/export.csv").text)))
    header, values = cells[0], cells[1]
    assert values[header.index("headline")] == HOSTILE
    assert values[header.index("zone")] == HOSTILE

    feed = client.get("/feeds/cap.atom")
    assert HOSTILE not in feed.text
    entry = ET.fromstring(feed.content).find(f"{ATOM}entry")
    assert entry is not None and entry.findtext(f"{ATOM}title") == HOSTILE

    cap = client.get(f"/alerts/{row.site_id}/{row.alert_id}.cap.xml")
    assert cap.status_code == 200 and HOSTILE not in cap.text
    ns = "{urn:oasis:names:tc:emergency:cap:1.2}"
    assert ET.fromstring(cap.content).findtext(f"{ns}info/{ns}headline") == HOSTILE


def test_the_live_stream_and_api_carry_it_as_json_text(harness: ConsoleHarness) -> None:
    row = _hostile(harness)
    client = harness.login("ana")
    (incident,) = client.get("/api/incidents").json()
    assert incident["headline"] == HOSTILE
    response = client.get(f"/api/incidents/{row.site_id}/{row.incident_id}")
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
