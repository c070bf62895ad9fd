"""Every state change needs the session's CSRF token; a missing, wrong or foreign one is 403."""

from __future__ import annotations

import pytest

from tests.console.harness import ConsoleHarness, csrf_of


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_a_status_post_without_the_right_token_is_refused(harness: ConsoleHarness, token: str | None) -> None:
    row = harness.alert(harness.north)
    client = harness.login("ana")
    form = {"status": "acknowledged"} | ({"csrf_token": token} if token is not None else {})
    response = client.post(f"/incidents/{row.site_id}/{row.incident_id}/status", data=form)
    assert response.status_code == 403
    assert "CSRF" in response.text
    assert harness.sent == []


def test_another_sessions_token_is_refused(harness: ConsoleHarness) -> None:
    row = harness.alert(harness.north)
    other = csrf_of(harness.login("olga"), "/")
    client = harness.login("ana")
    response = client.post(
        f"/incidents/{row.site_id}/{row.incident_id}/status", data={"status": "acknowledged", "csrf_token": other}
    )
    assert response.status_code == 403
    assert harness.sent == []


def test_the_pre_login_token_does_not_survive_the_login(harness: ConsoleHarness) -> None:
    client = harness.client()
    before = csrf_of(client)
    response = client.post(
        "/login", data={"username": "ana", "password": "correct horse battery", "csrf_token": before}
    )
    assert response.status_code == 303
    assert csrf_of(client, "/") != before


def test_the_api_takes_the_token_in_a_header_only_when_it_is_right(harness: ConsoleHarness) -> None:
    row = harness.alert(harness.north)
    client = harness.login("ana")
    path = f"/api/incidents/{row.site_id}/{row.incident_id}/status"
    assert client.post(path, json={"status": "acknowledged"}).status_code == 403
    assert client.post(path, json={"status": "acknowledged"}, headers={"X-CSRF-Token": "nope"}).status_code == 403
    token = csrf_of(client, "/")
    response = client.post(path, json={"status": "acknowledged"}, headers={"X-CSRF-Token": token})
    assert response.status_code == 200
    assert [s.status for s in harness.sent] == ["acknowledged"]
