"""Deterministic signed alerts for the delivery tests, and a helper to read what a receiver accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.agency.subscriber import AlertReceiver, ReceivedAlert
from agent.delivery.outbox import OutboundMessage
from agent.delivery.signing import AlertSigner

__all__ = ["T0", "drain", "make_alert"]

T0 = datetime(2024, 5, 1, 22, 0, 0, tzinfo=UTC)


def make_alert(signer: AlertSigner, topic: str, n: int, severity_rank: int = 1) -> OutboundMessage:
    """Alert number `n` as an outbox message (deterministic: the same n gives the same bytes)."""
    alert_id = f"alert-{n:05d}"
    alert = {
        "identifier": alert_id,
        "sent": (T0 + timedelta(seconds=n)).isoformat(),
        "n": n,
        "info": [{"event": "intrusion", "severity": "Moderate"}],
    }
    payload = signer.sign(alert, alert_id, T0 + timedelta(seconds=n))
    return OutboundMessage.for_payload(topic, payload, severity_rank, created_utc=datetime.now(UTC))


def drain(receiver: AlertReceiver, count: int, timeout_s: float = 15.0) -> list[ReceivedAlert]:
    """Read up to `count` accepted alerts, stopping early when none arrives for `timeout_s`."""
    got: list[ReceivedAlert] = []
    while len(got) < count:
        item = receiver.get(timeout_s)
        if item is None:
            break
        got.append(item)
    return got
