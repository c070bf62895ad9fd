"""The pages as a user sees them: queue order, training kept apart, incident detail, sites, map, search, headers."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from agent.agency.console.app import find_leaflet
from tests.agency.v2_alerts import alert_data
from tests.console.harness import ConsoleHarness, press_status


def _queue_ids(html: str) -> list[str]:
    return re.findall(r'<tr class="incident[^"]*"[^>]*data-incident-id="([^"]+)"', html)


def test_the_live_queue_lists_unacknowledged_and_more_severe_first(harness: ConsoleHarness) -> None:
    minor = harness.alert(harness.north, 1, info=alert_data("depot-north", 1)["info"] | {"severity": "Minor"})
    severe = harness.alert(harness.north, 2)
    acked = harness.alert(harness.north, 3)
    client = harness.login("olga")
    press_status(client, f"/incidents/{acked.site_id}/{acked.incident_id}", status="acknowledged")
    assert _queue_ids(client.get("/").text) == [severe.incident_id, minor.incident_id, acked.incident_id]


def test_exercise_incidents_are_only_in_the_training_queue(harness: ConsoleHarness) -> None:
    live = harness.alert(harness.north, 1)
    drill = harness.alert(harness.north, 2, status="Exercise")
    client = harness.login("ana")
    assert _queue_ids(client.get("/").text) == [live.incident_id]
    training = client.get("/training").text
    assert _queue_ids(training) == [drill.incident_id]
    assert 'id="training-queue"' in training and "badge-exercise" in training
    assert [i["incident_id"] for i in client.get("/api/incidents").json()] == [live.incident_id]
    assert [i["incident_id"] for i in client.get("/api/incidents?exercise=true").json()] == [drill.incident_id]
    assert "badge-exercise" in client.get(f"/incidents/{drill.site_id}/{drill.incident_id}").text


def test_the_incident_page_shows_the_timeline_verification_and_snapshot(harness: ConsoleHarness) -> None:
    jpeg = base64.b64encode(b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9").decode()
    first = harness.alert(harness.north, 1)
    data = alert_data("depot-north", 2)
    data["detection"] |= {"incident_id": first.incident_id, "phase": "end", "count": 3, "dwell_s": 12.5}
    data |= {
        "incidents": first.incident_id,
        "msgType": "Update",
        "snapshot": {"content_type": "image/jpeg", "data_base64": jpeg, "width_px": 64, "height_px": 48},
    }
    second = harness.add_alert(harness.north, data)
    page = harness.login("ana").get(f"/incidents/{first.site_id}/{first.incident_id}").text
    assert re.findall(r'class="timeline-entry timeline-alert" data-alert-id="([^"]+)"', page) == [
        first.alert_id,
        second.alert_id,
    ]
    assert 'data-phase="end"' in page and "count 3, dwell 12.5 s, confidence 0.80" in page
    badge = f'class="badge badge-verified" data-site-id="depot-north" data-kid="{harness.north.kid}"'
    assert badge in page
    assert f"Signed by site depot-north (Depot North) with key {harness.north.kid}, verified" in page
    assert f'<img id="snapshot" src="data:image/jpeg;base64,{jpeg}"' in page
    assert 'data-field="zone">yard<' in page and 'data-field="validation_level">2<' in page


def test_a_snapshot_that_is_not_base64_is_not_put_in_the_page(harness: ConsoleHarness) -> None:
    data = alert_data("depot-north", 1)
    data["snapshot"] = {"content_type": "image/jpeg", "data_base64": 'AAAA" onerror="alert(1)'}
    row = harness.add_alert(harness.north, data)
    page = harness.login("ana").get(f"/incidents/{row.site_id}/{row.incident_id}").text
    assert 'id="snapshot"' not in page


def test_an_unknown_incident_is_a_404_page(harness: ConsoleHarness) -> None:
    response = harness.login("ana").get("/incidents/depot-north/nope")
    assert response.status_code == 404
    assert 'id="error" data-status="404"' in response.text


def test_the_sites_page_reads_odd_stats_without_failing(harness: ConsoleHarness) -> None:
    harness.alert(harness.north, 1)
    harness.writer.set_site_state("depot-north", "online", harness.clock())
    stats = {
        "outbox_depth": 7,
        "cameras": [
            {"camera_id": "cam-1", "achieved_fps": 4.9, "target_fps": 5, "state": "running"},
            {"camera_id": "cam-2", "achieved_fps": "fast", "target_fps": -1},
            "not a camera",
        ],
    }
    harness.writer.set_site_stats("depot-north", stats, harness.clock())
    harness.writer.set_site_stats("hostile-site", {"cameras": {"not": "a list"}, "outbox_depth": 1e400}, 0)
    page = harness.login("ana").get("/sites").text
    north = page[page.index('data-site-id="depot-north"') : page.index('data-site-id="hostile-site"')]
    assert 'data-state="online"' in north
    assert 'class="col-cameras">2<' in north
    assert "cam-1: 4.9 / 5.0 fps (running)" in north and "cam-2: ? fps" in north
    assert 'class="col-outbox">7<' in north
    assert 'class="col-alerts-day">1<' in north
    assert f'data-kid="{harness.north.kid}" data-key-state="in_force"' in north
    assert "until 2099-01-01T00:00:00+00:00" in north
    assert 'class="col-outbox"><' in page[page.index('data-site-id="hostile-site"') :]


def test_the_map_page_lists_places_and_says_when_the_map_library_is_missing(tmp_path: Path) -> None:
    harness = ConsoleHarness(tmp_path, leaflet_dir=tmp_path / "no-leaflet-here")
    row = harness.alert(harness.north)
    page = harness.login("ana").get("/map").text
    assert 'id="map-missing"' in page and 'id="map"' not in page
    assert (
        'data-site-id="depot-north" data-label="Depot North" data-href="/sites" data-lat="51.5" data-lon="-0.12"'
        in page
    )
    assert f'data-incident-id="{row.incident_id}"' in page
    assert "leaflet.js" not in page


@pytest.mark.skipif(find_leaflet() is None, reason="Leaflet is not installed (make node-deps)")
def test_with_leaflet_the_map_page_loads_it_from_this_console(harness: ConsoleHarness) -> None:
    client = harness.login("ana")
    page = client.get("/map").text
    assert '<div id="map" data-tile-url="" data-tile-attribution="">' in page
    assert '<script src="/static/vendor/leaflet/leaflet.js" defer></script>' in page
    assert 'id="map-no-tiles"' in page
    script = client.get("/static/vendor/leaflet/leaflet.js")
    assert script.status_code == 200 and "leaflet" in script.text.lower()
    assert client.get("/static/map.js").status_code == 200


def test_a_tile_url_goes_to_the_map_and_into_the_content_security_policy(tmp_path: Path) -> None:
    extra = '  tile_url: "https://{s}.tiles.example/{z}/{x}/{y}.png"\n  tile_attribution: "© Example <b>maps</b>"'
    leaflet = tmp_path / "leaflet"
    leaflet.mkdir()
    (leaflet / "leaflet.js").write_text("/* stand-in */")
    (leaflet / "leaflet.css").write_text("/* stand-in */")
    harness = ConsoleHarness(tmp_path, console_extra=extra, leaflet_dir=leaflet)
    client = harness.login("ana")
    response = client.get("/map")
    assert 'data-tile-url="https://{s}.tiles.example/{z}/{x}/{y}.png"' in response.text
    assert 'data-tile-attribution="© Example &lt;b&gt;maps&lt;/b&gt;"' in response.text
    assert "img-src 'self' data: https://*.tiles.example" in response.headers["content-security-policy"]


def test_search_filters_and_reports_a_bad_time(harness: ConsoleHarness) -> None:
    north = harness.alert(harness.north, 1)
    hostile = harness.alert(harness.hostile, 1)
    drill = harness.alert(harness.north, 2, status="Exercise")
    client = harness.login("ana")

    def found(query: str) -> list[str]:
        return re.findall(r'class="alert-row" data-site-id="[^"]+" data-alert-id="([^"]+)"', client.get(query).text)

    assert set(found("/search")) == {north.alert_id, hostile.alert_id}
    assert found("/search?site=depot-north") == [north.alert_id]
    assert set(found("/search?site=depot-north&exercise=1")) == {north.alert_id, drill.alert_id}
    assert found("/search?severity=Minor") == []
    assert found("/search?state=acknowledged") == []
    assert set(found("/search?from=2000-01-01&to=2099-12-31T23:59")) == {north.alert_id, hostile.alert_id}
    assert found("/search?to=2000-01-01") == []
    bad = client.get("/search?from=yesterday")
    assert bad.status_code == 400
    assert 'id="search-error"' in bad.text and "from: &#39;yesterday&#39; is not a date" in bad.text
    assert 'href="/export.csv?site=depot-north"' in client.get("/search?site=depot-north").text


@pytest.mark.parametrize("path", ["/", "/login", "/static/console.css", "/api/incidents", "/nowhere", "/events"])
def test_every_response_carries_the_security_headers(harness: ConsoleHarness, path: str) -> None:
    client = harness.login("ana") if path != "/events" else harness.client()
    headers = client.get(path).headers
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "img-src 'self' data:" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"


class _Markup(HTMLParser):
    """What a page's tags are: inline scripts, style attributes and elements, event-handler attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        if tag == "style" or "style" in names:
            self.problems.append(f"inline style on <{tag}>")
        self.problems += [f"{name} on <{tag}>" for name in names if name.startswith("on")]


def test_pages_hold_no_inline_script_style_or_event_handlers(harness: ConsoleHarness) -> None:
    row = harness.alert(harness.north)
    harness.alert(harness.hostile)
    client = harness.login("sue")
    for path in ("/", "/training", f"/incidents/{row.site_id}/{row.incident_id}", "/sites", "/map", "/search"):
        markup = _Markup()
        markup.feed(client.get(path).text)
        assert markup.problems == [], path
    for path in ("/users", "/registry", "/login", "/nowhere"):
        markup = _Markup()
        markup.feed(client.get(path).text)
        assert markup.problems == [], path
