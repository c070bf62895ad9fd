"""A console over a real store (SQLite, or PostgreSQL by URL) filled with real signed, verified alerts, and
clients that log in.

`ConsoleHarness` writes a receiving config and a trust registry in the
test's folder, opens the store, builds the app with a fake `send_status`
(it records each status, or raises `AgentError` while `fail_with` is set)
and a clock the test can move. `add_alert` signs an alert the way a site
does, verifies it with `AlertVerifier` against the registry, and stores it
with `StoreWriter.add_alert`, as the ingest service would.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from agent.agency.alert_verifier import AlertVerifier
from agent.agency.console import create_app
from agent.agency.receiving_config import ReceivingConfig, load_receiving_config
from agent.agency.store import AlertRow, StoreWriter, UserStore, open_database
from agent.agency.trust_registry_file import load_registry
from agent.alerts.status import AlertStatus
from agent.delivery.signing import generate_key_file
from agent.errors import AgentError
from tests.agency.v2_alerts import RECIPIENT, Site, alert_data, sign

HOSTILE = "<img src=x onerror=alert(1)>"
HOSTILE_ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
PASSWORD = "correct horse battery"
USERS = {"ana": "analyst", "olga": "operator", "sue": "supervisor", "audrey": "auditor"}
_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


@dataclass
class FakeClock:
    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def write_registry(path: Path, sites: dict[Site, str]) -> Path:
    """A registry naming each site (name: the value, written as JSON so any text survives YAML)."""
    lines = ["sites:"]
    for site, name in sites.items():
        lines += [
            f"  - site_id: {site.site_id}",
            f"    name: {json.dumps(name)}",
            f"    topic_prefix: {site.prefix}",
            "    keys:",
            f"      - jwk: {json.dumps(site.jwk())}",
            "        not_after: 2099-01-01T00:00:00Z",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_config(
    folder: Path, *, status_key: bool = True, console_extra: str = "", database: str = "sqlite:///r.sqlite"
) -> Path:
    lines = [
        f"recipient: {RECIPIENT}",
        "registry: registry.yaml",
        f"database: {json.dumps(database)}",
        "console:",
        "  session_secret_file: session.key",
        "  audit_log: console-audit.jsonl",
        "  login: {max_failures: 3, window_s: 60}",
    ]
    if console_extra:
        lines.append(console_extra)
    if status_key:
        generate_key_file(folder / "status.pem")
        lines.insert(2, "status_key: status.pem")
    path = folder / "receiving.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class ConsoleHarness:
    """One console over one store (see the module docstring)."""

    def __init__(
        self,
        folder: Path,
        *,
        status_key: bool = True,
        console_extra: str = "",
        leaflet_dir: Path | None = None,
        database: str = "sqlite:///r.sqlite",
    ) -> None:
        self.folder = folder
        self.north = Site("depot-north")
        self.hostile = Site("hostile-site")
        write_registry(folder / "registry.yaml", {self.north: "Depot North", self.hostile: HOSTILE})
        self.config: ReceivingConfig = load_receiving_config(
            write_config(folder, status_key=status_key, console_extra=console_extra, database=database)
        )
        self.engine: Engine = open_database(self.config.database)
        self.writer = StoreWriter(self.engine)
        self.verifier = AlertVerifier(load_registry(self.config.registry), RECIPIENT)
        users = UserStore(self.engine)
        for name, role in USERS.items():
            users.add(name, role, PASSWORD)
        self.sent: list[AlertStatus] = []
        self.fail_with: str | None = None
        self.clock = FakeClock()
        kwargs: dict[str, Any] = {"leaflet_dir": leaflet_dir} if leaflet_dir is not None else {}
        self.app: FastAPI = create_app(
            self.config, engine=self.engine, send_status=self._send, clock=self.clock, live_poll_s=0.01, **kwargs
        )

    def _send(self, status: AlertStatus) -> None:
        if self.fail_with is not None:
            raise AgentError(self.fail_with)
        self.sent.append(status)

    def add_alert(self, site: Site, data: dict[str, Any]) -> AlertRow:
        """Sign, verify and store one alert of `site`; the stored row."""
        message = sign(site.key, data)
        accepted = self.verifier.check(site.topic(), message)
        row = self.writer.add_alert(accepted, message, time.time())
        assert row is not None, "stored before"
        return row

    def alert(self, site: Site, n: int = 1, **overrides: Any) -> AlertRow:
        return self.add_alert(site, alert_data(site.site_id, n, **overrides))

    def client(self) -> TestClient:
        """A browser of its own (its own cookies), not logged in; relative redirects are not followed."""
        return TestClient(self.app, follow_redirects=False)

    def login(self, name: str, password: str = PASSWORD) -> TestClient:
        client = self.client()
        response = login(client, name, password)
        assert response.status_code == 303, response.text
        return client

    def audit_records(self) -> list[dict[str, Any]]:
        path = self.config.console.audit_log
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def csrf_of(client: TestClient, path: str = "/login") -> str:
    """The CSRF token the page at `path` carries for this client's session."""
    match = _CSRF.search(client.get(path).text)
    assert match is not None, f"no CSRF token on {path}"
    return match.group(1)


def login(client: TestClient, name: str, password: str, **extra: str) -> httpx.Response:
    token = csrf_of(client)
    response: httpx.Response = client.post(
        "/login", data={"username": name, "password": password, "csrf_token": token, **extra}
    )
    return response


def press_status(client: TestClient, incident_path: str, **form: str) -> httpx.Response:
    """Press a status button on the incident page at `incident_path` (`status=...`, `disposition`, `note`)."""
    token = csrf_of(client, incident_path)
    response: httpx.Response = client.post(incident_path + "/status", data={"csrf_token": token, **form})
    return response
