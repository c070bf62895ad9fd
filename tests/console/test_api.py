"""The JSON API: the same data as the pages, read-only for every role, statuses for analysts and operators."""

from __future__ import annotations

from tests.console.harness import ConsoleHarness, csrf_of


def test_an_incident_with_its_alerts_and_statuses(harness: ConsoleHarness) -> None:
    row = harness.alert(harness.north)
    analyst = harness.login("ana")
    token = csrf_of(analyst, "/")
    path = f"/api/incidents/{row.site_id}/{row.incident_id}"
    sent = analyst.post(
        path + "/status", json={"status": "acknowledged", "note": "on it"}, headers={"X-CSRF-Token": token}
    )
    assert sent.status_code == 200
    assert sent.json()["published"] is True and sent.json()["status"] == "acknowledged"
    detail = harness.login("audrey").get(path).json()
    assert detail["incident"]["state"] == "acknowledged"
    assert [a["alert_id"] for a in detail["alerts"]] == [row.alert_id]
    assert detail["alerts"][0]["message"] == row.message  # the JWS as it arrived
    assert [(s["status"], s["operator"], s["note"]) for s in detail["statuses"]] == [("acknowledged", "ana", "on it")]


def test_a_failed_send_is_502_and_recorded(harness: ConsoleHarness) -> None:
    row = harness.alert(harness.north)
    client = harness.login("olga")
    harness.fail_with = "broker refused the status (reason code 135)"
    response = client.post(
        f"/api/incidents/{row.site_id}/{row.incident_id}/status",
        json={"status": "dismissed"},
        headers={"X-CSRF-Token": csrf_of(client, "/")},
    )
    assert response.status_code == 502
    assert response.json()["published"] is False
    assert "reason code 135" in response.json()["error"]
    statuses = client.get(f"/api/incidents/{row.site_id}/{row.incident_id}").json()["statuses"]
    assert [(s["status"], s["published"]) for s in statuses] == [("dismissed", False)]


def test_refusals_come_as_json(harness: ConsoleHarness) -> None:
    row = harness.alert(harness.north)
    auditor = harness.login("audrey")
    path = f"/api/incidents/{row.site_id}/{row.incident_id}/status"
    refused = auditor.post(path, json={"status": "acknowledged"}, headers={"X-CSRF-Token": csrf_of(auditor, "/")})
    assert refused.status_code == 403 and "auditor" in refused.json()["detail"]
    analyst = harness.login("ana")
    token = {"X-CSRF-Token": csrf_of(analyst, "/")}
    closed = analyst.post(path, json={"status": "closed"}, headers=token)
    assert closed.status_code == 422 and "disposition" in closed.json()["detail"]
    assert analyst.get("/api/incidents/depot-north/nope").status_code == 404
    assert analyst.get("/api/alerts?from=soon").status_code == 400
    assert harness.sent == []


def test_alerts_and_sites(harness: ConsoleHarness) -> None:
    row = harness.alert(harness.north, 1)
    harness.alert(harness.north, 2, status="Exercise")
    client = harness.login("audrey")
    assert [a["alert_id"] for a in client.get("/api/alerts?site=depot-north").json()] == [row.alert_id]
    assert len(client.get("/api/alerts?exercise=true").json()) == 2
    assert len(client.get("/api/alerts?exercise=true&limit=1").json()) == 1
    sites = {s["site_id"]: s for s in client.get("/api/sites").json()}
    assert sites["depot-north"]["alerts_last_day"] == 2
    assert (sites["depot-north"]["lat"], sites["depot-north"]["lon"]) == (51.5, -0.12)
    assert sites["depot-north"]["keys"][0]["state"] == "in_force"


def test_the_openapi_description_lists_the_api_and_no_pages(harness: ConsoleHarness) -> None:
    client = harness.login("audrey")
    paths = set(client.get("/api/openapi.json").json()["paths"])
    assert paths == {
        "/api/incidents",
        "/api/incidents/{site_id}/{incident_id}",
        "/api/incidents/{site_id}/{incident_id}/status",
        "/api/alerts",
        "/api/sites",
    }
    for cdn_page in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(cdn_page).status_code == 404
