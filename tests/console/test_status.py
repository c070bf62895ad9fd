"""Sending statuses from the incident page: signed and sent to the site, recorded, shown in the history."""

from __future__ import annotations

from pathlib import Path

from agent.agency.store import StoreReader
from agent.alerts.status import AlertStatus
from tests.agency.v2_alerts import RECIPIENT
from tests.console.harness import ConsoleHarness, csrf_of, press_status


def test_acknowledging_sends_the_status_and_the_history_shows_it(harness: ConsoleHarness) -> None:
    harness.alert(harness.north, 1)
    row = harness.alert(harness.north, 2)
    path = f"/incidents/{row.site_id}/{row.incident_id}"
    client = harness.login("ana")
    response = press_status(client, path, status="acknowledged", note="seen on camera 3")
    assert response.status_code == 303
    assert response.headers["location"] == path

    (sent,) = harness.sent
    assert isinstance(sent, AlertStatus)
    assert (sent.site_id, sent.incident_id, sent.alert_id) == (row.site_id, row.incident_id, row.alert_id)
    assert (sent.status, sent.operator, sent.recipient, sent.note) == (
        "acknowledged",
        "ana",
        RECIPIENT,
        "seen on camera 3",
    )
    assert sent.disposition is None

    page = client.get(path).text
    assert "acknowledged sent to site depot-north." in page
    assert f'data-status-id="{sent.status_id}" data-status="acknowledged" data-published="true"' in page
    assert "seen on camera 3" in page
    assert 'data-state="acknowledged"' in page
    incident = StoreReader(harness.engine).incident(row.site_id, row.incident_id)
    assert incident is not None and incident.acknowledged and incident.state == "acknowledged"
    (record,) = [r for r in harness.audit_records() if r["kind"] == "console_status_sent"]
    assert (record["user"], record["status"], record["published"]) == ("ana", "acknowledged", True)


def test_closing_needs_a_disposition_and_sends_it(harness: ConsoleHarness) -> None:
    row = harness.alert(harness.north)
    path = f"/incidents/{row.site_id}/{row.incident_id}"
    client = harness.login("ana")
    press_status(client, path, status="closed")
    assert harness.sent == []
    assert "Not sent: closing an incident needs a disposition" in client.get(path).text

    press_status(client, path, status="closed", disposition="false_alarm")
    (sent,) = harness.sent
    assert (sent.status, sent.disposition) == ("closed", "false_alarm")
    queue = client.get("/").text
    assert f'data-incident-id="{row.incident_id}"' not in queue


def test_the_operator_verifies_and_the_validation_level_rises(harness: ConsoleHarness) -> None:
    row = harness.alert(harness.north)
    client = harness.login("olga")
    press_status(client, f"/incidents/{row.site_id}/{row.incident_id}", status="verified")
    assert [s.status for s in harness.sent] == ["verified"]
    incident = StoreReader(harness.engine).incident(row.site_id, row.incident_id)
    assert incident is not None and incident.validation_level == 3


def test_the_operator_chooses_a_threat_to_life_and_the_site_is_told_level_4(harness: ConsoleHarness) -> None:
    row = harness.alert(harness.north)
    path = f"/incidents/{row.site_id}/{row.incident_id}"
    client = harness.login("olga")
    page = client.get(path).text
    assert '<option value="4">level 4: threat to life</option>' in page
    assert f'data-agreement="{row.agreement}">under agreement {row.agreement}' in page
    press_status(client, path, status="verified", validation_level="4")
    (sent,) = harness.sent
    assert (sent.status, sent.validation_level) == ("verified", 4)
    incident = StoreReader(harness.engine).incident(row.site_id, row.incident_id)
    assert incident is not None and incident.validation_level == 4
    press_status(client, path, status="acknowledged", validation_level="4")  # the level goes with verified only
    assert harness.sent[-1].validation_level is None


def test_a_status_that_could_not_be_sent_shows_the_error_and_is_recorded_unpublished(harness: ConsoleHarness) -> None:
    row = harness.alert(harness.north)
    path = f"/incidents/{row.site_id}/{row.incident_id}"
    client = harness.login("ana")
    harness.fail_with = "no answer from broker.example:8883 within 10 s"
    press_status(client, path, status="acknowledged")
    page = client.get(path).text
    assert "acknowledged was not published: no answer from broker.example:8883 within 10 s" in page
    assert 'data-status="acknowledged" data-published="false"' in page
    assert 'class="status-error-text">Not published: no answer from broker.example:8883' in page
    (stored,) = StoreReader(harness.engine).incident_statuses(row.site_id, row.incident_id)
    assert (stored.published, stored.error) == (False, "no answer from broker.example:8883 within 10 s")
    incident = StoreReader(harness.engine).incident(row.site_id, row.incident_id)
    assert incident is not None and incident.state == "new" and not incident.acknowledged
    (record,) = [r for r in harness.audit_records() if r["kind"] == "console_status_sent"]
    assert record["published"] is False and "no answer" in record["error"]


def test_without_a_status_key_the_buttons_are_disabled_with_the_reason(tmp_path: Path) -> None:
    harness = ConsoleHarness(tmp_path, status_key=False)
    row = harness.alert(harness.north)
    path = f"/incidents/{row.site_id}/{row.incident_id}"
    client = harness.login("ana")
    page = client.get(path).text
    assert 'id="status-disabled-reason"' in page
    assert "no status_key" in page
    assert 'data-status="acknowledged" disabled' in page
    press_status(client, path, status="acknowledged")
    assert "Not sent: statuses cannot be sent" in client.get(path).text
    assert harness.sent == []
    assert StoreReader(harness.engine).incident_statuses(row.site_id, row.incident_id) == []


def test_a_status_for_an_unknown_incident_is_404(harness: ConsoleHarness) -> None:
    client = harness.login("ana")
    token = csrf_of(client, "/")
    response = client.post("/incidents/depot-north/nope/status", data={"csrf_token": token, "status": "acknowledged"})
    assert response.status_code == 404
    assert harness.sent == []
