"""A site's delivery side wired as the service wires it (no cameras), recipients that answer, status helpers.

`running_site` loads a real site config from YAML and runs the real outbox,
audit log, hold tables, delivery sink (with `dispatcher_from_config`), feedback intake
(`agent.runtime.feedback_assembly.feedback_intake`) and the MQTT publisher
subscribed to the site's feedback topic, against a real Mosquitto. Alerts
come from the real `AlertBuilder`. `Recipient` is the other side as a
recipient's software would be: it reads the alert views addressed to it and
signs statuses with its own Ed25519 key (`agent.delivery.jws.sign_envelope`).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.alerts.builder import AlertBuilder
from agent.alerts.ids import Uuid7Factory
from agent.alerts.schema import Alert
from agent.alerts.status import AlertStatus
from agent.config import SiteConfig, load_config
from agent.delivery.feedback import FeedbackIntake
from agent.delivery.jws import TYP_STATUS, key_id_for, open_envelope, public_jwk, sign_envelope
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import MqttPublisher
from agent.delivery.release_gate import ReleaseGate
from agent.delivery.sharing_terms import TermsTables
from agent.delivery.sink import DeliverySink, OutboxStore
from agent.delivery.topics import feedback_topic
from agent.privacy.audit import AuditLog
from agent.runtime.assembly import dispatcher_from_config
from agent.runtime.feedback_assembly import feedback_intake
from agent.values.rule_events import RuleEvent


def wait_until(condition: Callable[[], object], timeout_s: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def recipient_key(directory: Path, name: str) -> tuple[Ed25519PrivateKey, str, Path]:
    """A recipient's signing key, its key id, and the public JWK file a site config names."""
    key = Ed25519PrivateKey.generate()
    kid = key_id_for(key.public_key())
    path = directory / f"{name}.jwk"
    path.write_text(json.dumps(public_jwk(key.public_key())))
    return key, kid, path


def status_bytes(
    key: Ed25519PrivateKey,
    kid: str,
    *,
    site_id: str,
    recipient: str,
    alert_id: str,
    incident_id: str,
    status: str,
    typ: str = TYP_STATUS,
    status_id: str | None = None,
    **extra: Any,
) -> bytes:
    body = AlertStatus(
        status_id=status_id or f"st-{uuid.uuid4().hex}",
        site_id=site_id,
        recipient=recipient,
        alert_id=alert_id,
        incident_id=incident_id,
        status=status,
        sent=datetime.now(UTC),
        **extra,
    )
    return sign_envelope(body.to_json_bytes(), key, kid, typ)


def alert_view(payload: bytes) -> dict[str, Any]:
    """The recipient's view inside a published alert (not verified: these tests trust their own broker)."""
    return dict(json.loads(open_envelope(payload).payload))


class Recipient:
    """A recipient's software: reads its alert views, answers with signed statuses on its feedback level."""

    def __init__(self, port: int, prefix: str, site_id: str, name: str, key: Ed25519PrivateKey, kid: str) -> None:
        self.name, self.site_id, self.prefix, self.key, self.kid = name, site_id, prefix, key, kid
        self.views: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{prefix}/{site_id}/+/alerts/+/{name}", qos=1)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("recipient subscription not acknowledged")

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.views.append(alert_view(msg.payload))

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.views)

    def send(self, view: dict[str, Any], status: str, *, key: Ed25519PrivateKey | None = None, **extra: Any) -> bytes:
        payload = status_bytes(
            key or self.key,
            self.kid,
            site_id=self.site_id,
            recipient=self.name,
            alert_id=view["identifier"],
            incident_id=view["incidents"],
            status=status,
            **extra,
        )
        self.publish_raw(payload)
        return payload

    def publish_raw(self, payload: bytes, level: str | None = None) -> None:
        topic = feedback_topic(self.prefix, self.site_id, level or self.name)
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def write_config(
    path: Path,
    *,
    port: int,
    site_id: str,
    recipients: list[dict[str, Any]],
    protocol: str = "5",
    agreements: list[dict[str, Any]] | None = None,
) -> SiteConfig:
    """A site config on disk (state beside it), loaded through the real loader."""
    doc = {
        "site": {"id": site_id, "name": "feedback test", "location": {"lat": 51.0, "lon": 0.0}},
        "cameras": [{"id": "gate", "source": "unused.mp4", "detect_fps": 5}],
        "mqtt": {"host": "127.0.0.1", "port": port, "connect_timeout_s": 5, "protocol": protocol},
        "outbox": {"path": "outbox.sqlite"},
        "signing": {"key_file": "key.pem"},
        "policies": {
            "recipients": recipients,
            "pseudonym_key_file": "pseudonym.key",
            "audit_log": "audit/outgoing.jsonl",
            **({"agreements": agreements} if agreements else {}),
        },
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_config(path)


@dataclass
class Site:
    config: SiteConfig
    outbox: Outbox
    audit: AuditLog
    publisher: MqttPublisher
    sink: DeliverySink
    feedback: FeedbackIntake
    submit: Callable[[tuple[Alert, ...]], None]
    holds: ReleaseGate


@contextmanager
def running_site(config: SiteConfig) -> Iterator[Site]:
    """The site's delivery side in the order the service builds and closes it."""
    with ExitStack() as stack:
        outbox = stack.enter_context(Outbox(config.outbox))
        audit = AuditLog(config.policies.audit_log)
        holds = stack.enter_context(ReleaseGate(config.outbox.path))
        dispatcher = dispatcher_from_config(config).with_tables(TermsTables(verdicts=holds))
        store = OutboxStore(outbox, default_expiry_s=config.mqtt.message_expiry_s)
        feedback = stack.enter_context(
            feedback_intake(config, audit=audit, store=store, holds=holds, dispatcher=lambda: dispatcher)
        )
        publisher = stack.enter_context(
            MqttPublisher(
                config.mqtt,
                config.site.id,
                outbox,
                subscriptions=[feedback.subscription()],
                on_delivered=feedback.on_delivered,
            )
        )
        publisher.wait_connected(10)
        wait_until(lambda: feedback.counters().subscribed, what="the feedback subscription")
        sink = stack.enter_context(DeliverySink(dispatcher, store, audit=audit, holds=holds))
        yield Site(config, outbox, audit, publisher, sink, feedback, feedback.watch(sink.submit), holds)


class Incidents:
    """Alerts of one camera as its pipeline would make them (start, then updates, then end)."""

    def __init__(self, config: SiteConfig, camera_id: str = "gate") -> None:
        self._builder = AlertBuilder(config.site, camera_id, status="Actual", ids=Uuid7Factory())
        self._t0 = datetime.now(UTC)

    def alert(self, phase: str, key: int, severity: str = "Severe", rule: str = "yard") -> Alert:
        ts = datetime.now(UTC)
        first = self._t0 + timedelta(seconds=key)
        event = RuleEvent(phase, key, rule, "intrusion", "yard", None, "person", 1, 1.5, 0.9, first, ts, ts, severity)
        return self._builder.build(event)
