"""Statuses a recipient sends back about an alert: made, signed with the recipient's own key, published.

A status (`agent.alerts.status.AlertStatus`: received, acknowledged,
verified, dismissed, dispatched, on_scene, closed with a disposition) is
signed as a JWS with `typ` `edge-status+json` and the recipient's Ed25519
key, whose public JWK the site lists for that recipient, and published QoS 1
on `<prefix>/<site>/feedback/<recipient>` (`feedback_topic`). The receiver
sends `received` by itself once it has accepted an alert; `edge-agent
status-send` sends any status by hand through `send_once`.
"""

from __future__ import annotations

__all__ = ["SendStatus", "StatusSigner", "broker_publisher", "send_once"]

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import paho.mqtt.client as paho
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from agent.agency.broker_connection import ConnectionOptions, connect, new_client
from agent.alerts.ids import Uuid7Factory
from agent.alerts.status import AlertStatus
from agent.delivery.jws import TYP_STATUS, key_id_for, sign_envelope
from agent.delivery.signing import load_signing_key
from agent.delivery.topics import feedback_topic
from agent.errors import AgentError, PublishRejected

if TYPE_CHECKING:
    from agent.agency.receiving_config import ReceivingConfig
    from agent.agency.trust_registry import TrustRegistry

# Publishes one made status to its site (raises `AgentError` when it could not).
SendStatus = Callable[[AlertStatus], None]


class StatusSigner:
    """Makes and signs one recipient's statuses.

    Args:
        key: the recipient's Ed25519 private key.
        recipient: the recipient's name in the sites' policies (the topic's last level).
        kid: the key id the site knows it by; default its RFC 7638 thumbprint.
    """

    def __init__(self, key: Ed25519PrivateKey, recipient: str, kid: str | None = None) -> None:
        self._key = key
        self.recipient = recipient
        self.kid = kid or key_id_for(key.public_key())
        self._ids = Uuid7Factory()

    @classmethod
    def from_file(cls, path: Path, recipient: str, kid: str | None = None) -> StatusSigner:
        """Raises: AgentError: the file is missing or not an Ed25519 private key."""
        return cls(load_signing_key(path), recipient, kid)

    def make(
        self,
        *,
        site_id: str,
        alert_id: str,
        incident_id: str,
        status: str,
        disposition: str | None = None,
        note: str | None = None,
        operator: str | None = None,
        sent: datetime | None = None,
        validation_level: int | None = None,
    ) -> AlertStatus:
        """A new status with a fresh id.

        Raises:
            AgentError: a value the status schema refuses, in words.
        """
        sent = sent or datetime.now(UTC)
        try:
            return AlertStatus.model_validate(
                {
                    "status_id": self._ids.new(sent),
                    "site_id": site_id,
                    "recipient": self.recipient,
                    "alert_id": alert_id,
                    "incident_id": incident_id,
                    "status": status,
                    "disposition": disposition,
                    "sent": sent,
                    "operator": operator,
                    "note": note,
                    "validation_level": validation_level,
                }
            )
        except ValidationError as err:
            problems = "; ".join(
                ": ".join(filter(None, (".".join(str(p) for p in e["loc"]), e["msg"].removeprefix("Value error, "))))
                for e in err.errors(include_url=False)
            )
            raise AgentError(f"status not sent: {problems}") from None

    def sign(self, status: AlertStatus) -> bytes:
        """The JWS of `status` (`typ` edge-status+json)."""
        return sign_envelope(status.to_json_bytes(), self._key, self.kid, TYP_STATUS)

    @staticmethod
    def topic(prefix: str, status: AlertStatus) -> str:
        """Where `status` goes: `<prefix>/<site>/feedback/<recipient>`."""
        return feedback_topic(prefix, status.site_id, status.recipient)


def send_once(options: ConnectionOptions, topic: str, payload: bytes, timeout_s: float = 10.0) -> None:
    """Connect, publish one message QoS 1, wait for the broker's PUBACK, disconnect.

    Raises:
        PublishRejected: the broker refused the connection or the message (e.g. its ACL).
        AgentError: unreachable, or no answer within `timeout_s`.
    """
    client = new_client(options)
    connected = threading.Event()
    acked = threading.Event()
    outcome: dict[str, ReasonCode] = {}

    def on_connect(c: paho.Client, u: object, flags: object, reason: ReasonCode, p: object) -> None:
        outcome["connect"] = reason
        connected.set()

    def on_publish(c: paho.Client, u: object, mid: int, reason: ReasonCode, p: object) -> None:
        outcome["publish"] = reason
        acked.set()

    client.on_connect = on_connect
    client.on_publish = on_publish
    connect(client, options)
    client.loop_start()
    try:
        if not connected.wait(timeout_s):
            raise AgentError(f"no answer from {options.url.host}:{options.url.port} within {timeout_s:g} s")
        if outcome["connect"].is_failure:
            code = outcome["connect"]
            raise PublishRejected(f"broker refused the connection: {code}", reason_code=code.value)
        client.publish(topic, payload, qos=1)
        if not acked.wait(timeout_s):
            raise AgentError(f"the broker did not acknowledge the status within {timeout_s:g} s")
        code = outcome["publish"]
        if code.is_failure:
            raise PublishRejected(f"broker refused the status on {topic}: {code}", reason_code=code.value)
    finally:
        client.disconnect()
        client.loop_stop()


def broker_publisher(config: ReceivingConfig, registry: TrustRegistry, signer: StatusSigner) -> SendStatus:
    """The default `send_status`: sign, then publish once on the site's feedback topic (QoS 1, PUBACK awaited).

    Raises:
        AgentError: the broker password file cannot be read (when called here, not per status).
    """
    options = config.connection(role="console")

    def send(status: AlertStatus) -> None:
        site = registry.sites.get(status.site_id)
        if site is None:
            raise AgentError(f"site {status.site_id} is not in the trust registry: no feedback topic to send to")
        send_once(options, StatusSigner.topic(site.topic_prefix, status), signer.sign(status))

    return send
