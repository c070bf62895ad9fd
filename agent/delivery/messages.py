"""The messages that leave the box: an outbound MQTT message, its stable id, its stored form."""

from __future__ import annotations

__all__ = ["OutboundMessage", "StoredMessage", "message_id_for"]

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.errors import AgentError


def message_id_for(payload: bytes) -> str:
    """Stable id of a message: the first 32 hex digits of the payload's SHA-256.

    Signing is deterministic (Ed25519, fixed JWS header, the view's JSON in
    schema order), so the same alert signed again (a replay) gets the same
    id, and a subscriber can compute it without MQTT 5 properties.
    """
    return hashlib.sha256(payload).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to publish.

    Attributes:
        message_id: stable id (see `message_id_for`); unique within the outbox.
        topic: full MQTT topic (build it with `agent.delivery.topics`).
        payload: the signed envelope (JWS) bytes.
        severity_rank: 0 Minor, 1 Moderate, 2 Severe, 3 Extreme; decides what is dropped first.
        expiry_s: seconds after `created_utc` the message is worth delivering; None: no expiry.
        created_utc: when the message was created (timezone-aware UTC).
    """

    message_id: str
    topic: str
    payload: bytes
    severity_rank: int
    expiry_s: int | None
    created_utc: datetime

    def __post_init__(self) -> None:
        if not 0 <= self.severity_rank <= 3:
            raise AgentError(f"severity_rank must be 0-3, got {self.severity_rank}")
        if self.created_utc.tzinfo is None:
            raise AgentError("created_utc must be timezone-aware")
        if self.expiry_s is not None and self.expiry_s < 1:
            raise AgentError(f"expiry_s must be at least 1, got {self.expiry_s}")

    @classmethod
    def for_payload(
        cls,
        topic: str,
        payload: bytes,
        severity_rank: int,
        expiry_s: int | None = None,
        created_utc: datetime | None = None,
    ) -> OutboundMessage:
        """A message whose id is derived from its payload (the usual way to make one)."""
        return cls(message_id_for(payload), topic, payload, severity_rank, expiry_s, created_utc or datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as it sits in the outbox; `seq` orders sending."""

    seq: int
    message: OutboundMessage
