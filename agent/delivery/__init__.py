"""Alert delivery: durable outbox, MQTT publisher, JWS envelopes and signing keys, topics."""

from agent.delivery.outbox import OutboundMessage, Outbox, OutboxStats, message_id_for
from agent.delivery.publisher import BrokerUnavailable, MqttPublisher, PublisherState
from agent.delivery.signing import AlertSigner, load_or_create_signing_key

__all__ = [
    "AlertSigner",
    "BrokerUnavailable",
    "MqttPublisher",
    "OutboundMessage",
    "Outbox",
    "OutboxStats",
    "PublisherState",
    "load_or_create_signing_key",
    "message_id_for",
]
