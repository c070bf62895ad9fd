"""What each role may do: a wrong role is 403, and the supervisor's user management is audited."""

from __future__ import annotations

import pytest

from tests.console.harness import PASSWORD, ConsoleHarness, csrf_of, login


@pytest.mark.parametrize(
    ("name", "path", "status"),
    [
        ("ana", "/users", 403),
        ("olga", "/registry", 403),
        ("sue", "/users", 200),
        ("sue", "/registry", 200),
        ("audrey", "/users", 200),
        ("audrey", "/registry", 200),
        ("audrey", "/api/incidents", 200),
        ("audrey", "/api/sites", 200),
        ("audrey", "/api/alerts", 200),
        ("audrey", "/api/openapi.json", 200),
        ("sue", "/", 200),
        ("audrey", "/search", 200),
    ],
)
def test_pages_by_role(harness: ConsoleHarness, name: str, path: str, status: int) -> None:
    assert harness.login(name).get(path).status_code == status


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("sue", "acknowledged", 403),
        ("audrey", "acknowledged", 403),
        ("ana", "verified", 403),
        ("ana", "dismissed", 403),
        ("olga", "dispatched", 403),
        ("olga", "closed", 403),
        ("ana", "received", 403),
    ],
)
def test_a_status_the_role_may_not_send_is_403_and_nothing_is_sent(
    harness: ConsoleHarness, name: str, status: str, code: int
) -> None:
    row = harness.alert(harness.north)
    client = harness.login(name)
    token = csrf_of(client, "/")
    response = client.post(
        f"/incidents/{row.site_id}/{row.incident_id}/status",
        data={"csrf_token": token, "status": status, "disposition": "confirmed"},
    )
    assert response.status_code == code
    assert harness.sent == []
    assert not any(r["kind"] == "console_status_sent" for r in harness.audit_records())


def test_the_incident_page_shows_only_the_roles_buttons(harness: ConsoleHarness) -> None:
    row = harness.alert(harness.north)
    path = f"/incidents/{row.site_id}/{row.incident_id}"
    analyst = harness.login("ana").get(path).text
    operator = harness.login("olga").get(path).text
    auditor = harness.login("audrey").get(path).text
    for kind in ("acknowledged", "dispatched", "on_scene", "closed"):
        assert f'data-status="{kind}"' in analyst
    assert 'data-status="verified"' not in analyst
    for kind in ("acknowledged", "verified", "dismissed"):
        assert f'data-status="{kind}"' in operator
    assert 'data-status="dispatched"' not in operator
    assert 'class="status-button"' not in auditor
    assert 'id="status-not-allowed"' in auditor


def test_the_supervisor_adds_and_disables_users_and_each_change_is_audited(harness: ConsoleHarness) -> None:
    client = harness.login("sue")
    token = csrf_of(client, "/users")
    added = client.post(
        "/users", data={"csrf_token": token, "name": "dave", "role": "analyst", "password": "a good password"}
    )
    assert added.status_code == 303
    page = client.get("/users").text
    assert 'data-user-name="dave" data-role="analyst" data-disabled="false"' in page
    assert "User dave added as analyst." in page
    assert login(harness.client(), "dave", "a good password").status_code == 303

    assert client.post("/users/dave/disable", data={"csrf_token": token}).status_code == 303
    assert 'data-user-name="dave" data-role="analyst" data-disabled="true"' in client.get("/users").text
    assert login(harness.client(), "dave", "a good password").status_code == 401
    kinds = [(r["kind"], r.get("name")) for r in harness.audit_records() if r["kind"].startswith("console_user")]
    assert kinds == [("console_user_added", "dave"), ("console_user_disabled", "dave")]


def test_a_refused_new_user_is_reported_and_not_added(harness: ConsoleHarness) -> None:
    client = harness.login("sue")
    token = csrf_of(client, "/users")
    client.post("/users", data={"csrf_token": token, "name": "eve", "role": "analyst", "password": "short"})
    page = client.get("/users").text
    assert "User not added: the password must be at least" in page
    assert 'data-user-name="eve"' not in page


def test_a_supervisor_cannot_disable_their_own_account(harness: ConsoleHarness) -> None:
    client = harness.login("sue")
    token = csrf_of(client, "/users")
    client.post("/users/sue/disable", data={"csrf_token": token})
    assert "You cannot disable your own account." in client.get("/users").text
    assert login(harness.client(), "sue", PASSWORD).status_code == 303


@pytest.mark.parametrize("name", ["ana", "olga", "audrey"])
def test_only_the_supervisor_changes_users(harness: ConsoleHarness, name: str) -> None:
    client = harness.login(name)
    token = csrf_of(client, "/")
    response = client.post(
        "/users", data={"csrf_token": token, "name": "mallory", "role": "supervisor", "password": "a good password"}
    )
    assert response.status_code == 403
    assert client.post("/users/ana/disable", data={"csrf_token": token}).status_code == 403
    assert 'data-user-name="mallory"' not in harness.login("sue").get("/users").text


def test_the_auditor_reads_the_users_page_without_its_forms(harness: ConsoleHarness) -> None:
    page = harness.login("audrey").get("/users").text
    assert 'id="users"' in page
    assert 'id="add-user"' not in page
    assert "disable-user" not in page
