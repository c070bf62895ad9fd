"""Alert delivery: durable outbox, MQTT publisher, signed envelopes, topics, subscriber core."""

from agent.delivery.outbox import OutboundMessage, Outbox, OutboxStats, message_id_for
from agent.delivery.publisher import BrokerUnavailable, MqttPublisher, PublisherState
from agent.delivery.signing import (
    AlertSigner,
    SignatureInvalid,
    TrustStore,
    VerifiedAlert,
    load_or_create_signing_key,
    verify_envelope,
)

__all__ = [
    "AlertSigner",
    "BrokerUnavailable",
    "MqttPublisher",
    "OutboundMessage",
    "Outbox",
    "OutboxStats",
    "PublisherState",
    "SignatureInvalid",
    "TrustStore",
    "VerifiedAlert",
    "load_or_create_signing_key",
    "message_id_for",
    "verify_envelope",
]
