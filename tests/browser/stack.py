"""Everything the browser tests run against, real at each step, and the alerts they craft.

`console_stack` starts, in this order: a Mosquitto on a free loopback port;
a trust registry naming the demo site (its signing key made here, in the
test's folder, so the registry can name it before the agent starts), a
training site and a hostile site; the recipient's status key, whose public
JWK the site agent gets as its `feedback_keys`; the ingest service on its
thread; the console served by uvicorn on a free loopback port on another
thread, with an analyst and an auditor. The site agent over the clip
(`edge-agent run --config config/demo.yaml`, every state path in the test's
folder) is made but not started: a test starts it with `agent.start()` once
it has a page open to watch the alerts arrive.

`HOSTILE` is markup that would run script if a page ever inserted it as
HTML; `hostile_alert` puts it in every free-text field a v2 alert carries.
"""

from __future__ import annotations

__all__ = [
    "HOSTILE",
    "ConsoleServer",
    "SiteAgent",
    "Stack",
    "console_stack",
    "hostile_alert",
    "site_status_record",
    "wait_until",
]

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from agent.agency.console import create_app
from agent.agency.ingest import IngestService
from agent.agency.receiving_config import load_receiving_config
from agent.agency.store import UserStore
from agent.cli.demo_receiving import feedback_keys_override, recipient_status_key, write_receiving_config
from agent.config import load_config
from agent.delivery.jws import key_id_for, public_jwk
from agent.delivery.signing import load_or_create_signing_key
from agent.delivery.topics import stats_topic, status_topic
from tests.agency.v2_alerts import Site, alert_data, publish_raw, sign
from tests.brokers import MosquittoBroker, free_port

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "config" / "demo.yaml"
HOSTILE = "<img src=x onerror=alert(1)>"
PASSWORD = "correct horse battery"
_T = TypeVar("_T")


def wait_until(probe: Callable[[], _T | None], timeout_s: float, what: str, interval_s: float = 0.2) -> _T:
    """The first value `probe` returns that is not None; AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


class ConsoleServer:
    """The console app served by uvicorn on a free loopback port, on its own thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        config.timeout_graceful_shutdown = 2  # open event streams must not hold the shutdown
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="console-test.uvicorn", daemon=True)

    def __enter__(self) -> ConsoleServer:
        self._thread.start()
        wait_until(lambda: True if self._server.started else None, 30, "the console to listen")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        self._thread.join(15)


class SiteAgent:
    """`edge-agent run` over the clip as a child process, started on demand; its log goes to a file."""

    def __init__(self, command: list[str], log_file: Path) -> None:
        self.command = command
        self.log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the agent, once (later calls do nothing)."""
        if self._proc is None:
            with self.log_file.open("wb") as log:
                self._proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)

    def check_running(self) -> None:
        """Raise AssertionError with the agent's log when it has exited."""
        if self._proc is not None and self._proc.poll() is not None:
            raise AssertionError(f"the site agent exited ({self._proc.returncode}):\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:] if self.log_file.exists() else ""

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)


@dataclass
class Stack:
    """The running pieces (see the module docstring) and what the tests need to know of them."""

    base_url: str
    broker_port: int
    recipient: str
    demo_site_id: str
    demo_site_name: str
    training_site: Site
    hostile_site: Site
    audit_log: Path
    agent: SiteAgent
    engine: Engine
    users: dict[str, str]

    def url(self, path: str) -> str:
        return self.base_url + path

    def publish(self, site: Site, data: dict[str, Any], *, camera: str = "cam-7f3a", rule: str = "yard") -> None:
        """Sign `data` with `site`'s key and publish it on the site's alert topic for this recipient."""
        topic = site.topic(camera=camera, rule=rule, recipient=self.recipient)
        publish_raw(self.broker_port, [(topic, sign(site.key, data))])

    def alert(self, site: Site, n: int, **overrides: Any) -> dict[str, Any]:
        """Alert number `n` of a crafted site for this recipient (see `tests.agency.v2_alerts.alert_data`)."""
        return alert_data(site.site_id, n, recipient=self.recipient, **overrides)

    def publish_health(self, site: Site, stats: dict[str, Any]) -> None:
        """A site's retained `online` and one stats message, as an agent publishes them (unsigned)."""
        publish_raw(
            self.broker_port,
            [
                (status_topic(site.prefix, site.site_id), b"online"),
                (stats_topic(site.prefix, site.site_id), json.dumps(stats).encode()),
            ],
        )


def hostile_alert(stack: Stack, n: int) -> dict[str, Any]:
    """An alert of the hostile site with `HOSTILE` in every free-text field the schema lets a site fill."""
    data = stack.alert(stack.hostile_site, n, sender=HOSTILE, agreement=HOSTILE, restriction=HOSTILE)
    data["references"] = [HOSTILE]
    data["info"].update(event=HOSTILE, senderName=HOSTILE, headline=HOSTILE)
    for area in data["info"]["area"]:
        area["areaDesc"] = HOSTILE
    data["detection"].update(camera_id=HOSTILE, rule=HOSTILE, rule_kind=HOSTILE, zone=HOSTILE, class_name=HOSTILE)
    data["privacy"] = {"policy_version": HOSTILE, "pseudonym_key_id": HOSTILE}
    data["snapshot"] = {"withheld": HOSTILE}
    return data


def site_status_record(audit_log: Path, incident_id: str, status: str) -> dict[str, Any] | None:
    """The site's audit record of a verified status `status` about `incident_id`, when there is one yet."""
    if not audit_log.exists():
        return None
    for line in audit_log.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line still being written
        if (
            isinstance(record, dict)
            and record.get("kind") == "status"
            and record.get("status") == status
            and record.get("incident_id") == incident_id
        ):
            return record
    return None


def _registry_entry(site_id: str, name: str, prefix: str, jwk: dict[str, str]) -> list[str]:
    return [
        f"  - site_id: {site_id}",
        f"    name: {json.dumps(name)}",
        f"    topic_prefix: {prefix}",
        "    keys:",
        f"      - jwk: {json.dumps(jwk)}",
    ]


def _site_overrides(state: Path, port: int, clip: Path) -> list[str]:
    """The demo config's `--set`s: the clip in a loop, the test's broker, every state path in `state`."""
    return [
        f"cameras.0.source={clip}",
        "cameras.0.loop=true",
        f"mqtt.port={port}",
        f"outbox.path={state / 'outbox.sqlite'}",
        f"signing.key_file={state / 'site-signing.pem'}",
        f"policies.audit_log={state / 'audit.jsonl'}",
        f"policies.pseudonym_key_file={state / 'pseudonym.key'}",
        f"runtime.state_dir={state / 'run'}",
    ]


@contextlib.contextmanager
def console_stack(workdir: Path, clip: Path) -> Iterator[Stack]:
    """Start the pieces (see the module docstring) under `workdir`; stop them all on the way out."""
    with contextlib.ExitStack() as stop:
        broker = stop.enter_context(MosquittoBroker(workdir / "broker"))
        assert broker.port is not None
        overrides = _site_overrides(workdir / "site", broker.port, clip)
        config = load_config(DEMO_CONFIG, overrides)
        recipient = config.policies.recipients[0].name
        _, status_jwk = recipient_status_key(workdir, recipient)
        overrides.append(feedback_keys_override(DEMO_CONFIG, recipient, status_jwk))
        demo_public = load_or_create_signing_key(config.signing.key_file).public_key()
        demo_jwk = public_jwk(demo_public, config.signing.key_id or key_id_for(demo_public))
        training, hostile = Site("training-site"), Site("hostile-site")
        registry = ["sites:", *_registry_entry(config.site.id, config.site.name, config.mqtt.topic_prefix, demo_jwk)]
        registry += _registry_entry(training.site_id, "Training ground", training.prefix, training.jwk())
        registry += _registry_entry(hostile.site_id, HOSTILE, hostile.prefix, hostile.jwk())
        (workdir / "registry.yaml").write_text("\n".join(registry) + "\n", encoding="utf-8")
        receiving_file = write_receiving_config(
            workdir, recipient, workdir / f"{recipient}-status.pem", broker.port, free_port()
        )
        receiving = load_receiving_config(receiving_file)
        ingest = stop.enter_context(IngestService(receiving))
        users = {"analyst-1": "analyst", "auditor-1": "auditor"}
        for name, role in users.items():
            UserStore(ingest.engine).add(name, role, PASSWORD)
        server = stop.enter_context(ConsoleServer(create_app(receiving, engine=ingest.engine)))
        command = [sys.executable, "-m", "agent", "--log-level", "warning", "run", "--config", str(DEMO_CONFIG)]
        for override in overrides:
            command += ["--set", override]
        agent = SiteAgent(command, workdir / "agent.log")
        stop.callback(agent.stop)
        yield Stack(
            base_url=server.base_url,
            broker_port=broker.port,
            recipient=recipient,
            demo_site_id=config.site.id,
            demo_site_name=config.site.name,
            training_site=training,
            hostile_site=hostile,
            audit_log=config.policies.audit_log,
            agent=agent,
            engine=ingest.engine,
            users=users,
        )
