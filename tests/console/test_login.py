"""Logging in and out: sessions, the rate limit, redirects and 401s, and each attempt in the audit log."""

from __future__ import annotations

from fastapi.testclient import TestClient

from agent.agency.console import create_app
from agent.agency.store import UserStore
from agent.privacy.audit import verify_log
from tests.console.harness import PASSWORD, ConsoleHarness, csrf_of, login


def test_a_user_with_the_right_password_is_logged_in_and_sees_the_queue(harness: ConsoleHarness) -> None:
    client = harness.client()
    response = login(client, "ana", PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert 'id="whoami" data-role="analyst"' in page.text
    assert 'id="queue"' in page.text


def test_the_session_cookie_is_http_only_and_same_site_strict(harness: ConsoleHarness) -> None:
    response = login(harness.client(), "ana", PASSWORD)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


def test_a_wrong_password_or_unknown_name_is_refused_without_a_session(harness: ConsoleHarness) -> None:
    client = harness.client()
    for name, password in (("ana", "not the password"), ("nobody", PASSWORD)):
        response = login(client, name, password)
        assert response.status_code == 401
        assert "Wrong user name or password" in response.text
        assert client.get("/").status_code == 303


def test_a_disabled_user_cannot_log_in_and_loses_an_open_session(harness: ConsoleHarness) -> None:
    client = harness.login("ana")
    UserStore(harness.engine).set_disabled("ana", True)
    assert client.get("/").headers["location"].startswith("/login")
    assert login(harness.client(), "ana", PASSWORD).status_code == 401


def test_logging_in_needs_the_forms_csrf_token(harness: ConsoleHarness) -> None:
    client = harness.client()
    csrf_of(client)  # a session with a token exists, but the post does not carry it
    response = client.post("/login", data={"username": "ana", "password": PASSWORD})
    assert response.status_code == 403
    response = client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": "forged"})
    assert response.status_code == 403
    assert client.get("/").status_code == 303


def test_failed_logins_for_one_name_are_limited_with_retry_after(harness: ConsoleHarness) -> None:
    client = harness.client()
    for _ in range(3):
        assert login(client, "ana", "wrong password!").status_code == 401
    refused = login(client, "ana", PASSWORD)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "Too many failed logins" in refused.text
    harness.clock.advance(61)
    assert login(client, "ana", PASSWORD).status_code == 303


def test_failed_logins_from_one_address_are_limited_across_names(harness: ConsoleHarness) -> None:
    client = harness.client()
    for name in ("ana", "olga", "sue"):
        assert login(client, name, "wrong password!").status_code == 401
    assert login(client, "audrey", PASSWORD).status_code == 429


def test_pages_redirect_to_the_login_and_come_back_after_it(harness: ConsoleHarness) -> None:
    client = harness.client()
    response = client.get("/search?site=depot-north")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fsearch%3Fsite%3Ddepot-north"
    done = login(client, "ana", PASSWORD, next="/search?site=depot-north")
    assert done.headers["location"] == "/search?site=depot-north"


def test_the_login_never_redirects_to_another_host(harness: ConsoleHarness) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = login(harness.client(), "ana", PASSWORD, next=target)
        assert response.headers["location"] == "/"


def test_programs_get_401_not_a_redirect(harness: ConsoleHarness) -> None:
    client = harness.client()
    for path in ("/api/incidents", "/api/sites", "/api/openapi.json", "/events", "/feeds/cap.atom"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.json()["detail"].startswith("not logged in"), path


def test_a_session_ends_after_its_maximum_age(harness: ConsoleHarness) -> None:
    client = harness.login("ana")
    assert client.get("/").status_code == 200
    harness.clock.advance(harness.config.console.session_max_age_s + 1)
    assert client.get("/").status_code == 303


def test_logging_out_ends_the_session_and_needs_the_token(harness: ConsoleHarness) -> None:
    client = harness.login("ana")
    assert client.post("/logout").status_code == 403
    token = csrf_of(client, "/")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert client.get("/").status_code == 303


def test_every_login_and_logout_is_in_the_console_audit_chain(harness: ConsoleHarness) -> None:
    client = harness.client()
    login(client, "ana", "wrong password!")
    login(client, "ana", PASSWORD)
    client.post("/logout", data={"csrf_token": csrf_of(client, "/")})
    kinds = [(r["kind"], r["user"]) for r in harness.audit_records()]
    assert kinds == [("console_login_failed", "ana"), ("console_login", "ana"), ("console_logout", "ana")]
    assert harness.audit_records()[0]["reason"] == "bad_credentials"
    count, issue = verify_log(harness.config.console.audit_log)
    assert (count, issue) == (3, None)


def test_the_session_secret_is_made_once_with_mode_0600_and_survives_a_restart(harness: ConsoleHarness) -> None:
    secret = harness.config.console.session_secret_file
    assert secret.stat().st_size == 32
    assert secret.stat().st_mode & 0o777 == 0o600
    client = harness.login("ana")
    before = secret.read_bytes()
    restarted = create_app(harness.config, engine=harness.engine, send_status=lambda status: None)
    assert secret.read_bytes() == before
    cookies = {c.name: c.value for c in client.cookies.jar}
    again = TestClient(restarted, follow_redirects=False, cookies=cookies)
    assert again.get("/").status_code == 200
