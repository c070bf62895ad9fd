"""From one alert to the messages that leave the box: one per entitled recipient.

For each recipient in the site's policies that receives the alert's rule
and severity, the dispatcher renders the recipient's view of the alert,
signs it and names its topic. The result is a plain value; whether it goes
to the durable outbox (`run`) or to a JSONL file (`replay`) is the caller's
business, so a replay writes exactly what a live run would publish.
"""

from __future__ import annotations

__all__ = ["AlertDispatcher", "OutgoingAlert"]

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.alerts.schema import Alert
from agent.config.schema import SEVERITY_ORDER, PoliciesConfig, RecipientPolicy
from agent.delivery.outbox import OutboundMessage, message_id_for

# Signs a recipient's view of an alert; returns the payload bytes to publish.
Signer = Callable[[dict[str, Any], Alert], bytes]


@dataclass(frozen=True, slots=True)
class OutgoingAlert:
    """One message for one recipient.

    Attributes:
        message_id: stable across retries and replays: derived from the signed payload.
        recipient: recipient name from the policies.
        topic: MQTT topic.
        payload: signed envelope bytes.
        alert_id: the alert's CAP identifier.
        severity_rank: 0 (Minor) to 3 (Extreme), for the outbox's drop rule.
        created_utc: when the alert was made (its CAP `sent`).
    """

    message_id: str
    recipient: str
    topic: str
    payload: bytes
    alert_id: str
    severity_rank: int
    created_utc: datetime

    def to_outbound(self, expiry_s: int | None) -> OutboundMessage:
        """The outbox's form of this message."""
        return OutboundMessage(
            message_id=self.message_id, topic=self.topic, payload=self.payload,
            severity_rank=self.severity_rank, expiry_s=expiry_s, created_utc=self.created_utc,
        )


class AlertDispatcher:
    """Routes alerts to recipients.

    Args:
        policies: who receives what.
        topic_for: builds the topic of an alert for a recipient.
        sign: wraps a recipient's view in a signed envelope.
    """

    def __init__(
        self,
        policies: PoliciesConfig,
        topic_for: Callable[[Alert, RecipientPolicy], str],
        sign: Signer,
    ) -> None:
        self._recipients = policies.recipients
        self._topic_for = topic_for
        self._sign = sign

    def route(self, alert: Alert) -> list[OutgoingAlert]:
        out = []
        for recipient in self._recipients:
            if not _receives(recipient, alert):
                continue
            view = alert.model_dump(mode="json", exclude_none=True)
            payload = self._sign(view, alert)
            out.append(
                OutgoingAlert(
                    message_id=message_id_for(payload),
                    recipient=recipient.name,
                    topic=self._topic_for(alert, recipient),
                    payload=payload,
                    alert_id=alert.identifier,
                    severity_rank=SEVERITY_ORDER[alert.info.severity],
                    created_utc=alert.sent,
                )
            )
        return out


def _receives(recipient: RecipientPolicy, alert: Alert) -> bool:
    if SEVERITY_ORDER[alert.info.severity] < SEVERITY_ORDER[recipient.min_severity]:
        return False
    return "*" in recipient.rules or alert.detection.rule in recipient.rules
