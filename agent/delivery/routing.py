"""From one alert to the messages that leave the box: one per entitled recipient.

For each recipient in the site's policies that receives the alert's rule
and severity, the dispatcher has the `SharingPolicy` render the recipient's
view of the alert (allow-listed fields, pseudonymous ids, coarse location,
a redacted snapshot only where the policy allows one; the recipient, its
agreement and the absolute expiry stamped in), signs it (a JWS,
`agent.delivery.signing`) and names its topic. The result is a plain value;
whether it goes to the durable outbox (`run`) or to a JSONL file (`replay`)
is the delivery sink's business (`agent.delivery.sink`), so a replay writes
exactly what a live run would publish; the sink also records each message
the outbox accepted in the audit log.

A failure while rendering or signing one recipient's message is logged
(`event=route_failed`) and counted in the result, and the other recipients
still get theirs: one recipient's broken view never silences the rest.
"""

from __future__ import annotations

__all__ = ["AlertDispatcher", "OutgoingAlert", "Routed", "recipient_topics"]

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent.alerts.schema import Alert
from agent.config import SEVERITY_ORDER, PoliciesConfig, RecipientPolicy
from agent.delivery.outbox import OutboundMessage, message_id_for
from agent.delivery.topics import alert_topic
from agent.logs import log_event
from agent.privacy.policy import SharingPolicy
from agent.privacy.snapshots import Snapshot
from agent.values.alert_moment import AlertMoment

_log = logging.getLogger("agent.delivery.routing")
# Signs a recipient's view of an alert (`AlertSigner.sign`); returns the envelope bytes to publish.
Signer = Callable[[Mapping[str, Any]], bytes]


@dataclass(frozen=True, slots=True)
class OutgoingAlert:
    """One message for one recipient.

    Attributes:
        message_id: stable across retries and replays: derived from the signed payload.
        recipient: recipient name from the policies.
        topic: MQTT topic.
        payload: the signed envelope (JWS) bytes.
        alert_id: the alert's CAP identifier.
        severity_rank: 0 (Minor) to 3 (Extreme), for the outbox's drop rule.
        policy_version: version of the sharing policy that rendered it.
        expiry_s: MQTT 5 message expiry the recipient's policy asks for;
            None means the publisher's default (`mqtt.message_expiry_s`).
        snapshot: "none", "faces-filled", "unredacted" or "withheld".
        personal_data: True when the payload carries an unredacted picture.
    """

    message_id: str
    recipient: str
    topic: str
    payload: bytes
    alert_id: str
    severity_rank: int
    policy_version: str = ""
    expiry_s: int | None = None
    snapshot: str = "none"
    personal_data: bool = False

    def to_outbound(self, default_expiry_s: int | None) -> OutboundMessage:
        """The outbox's form of this message; the recipient's retention wins over the default expiry.

        Expiry counts from now, when the message enters the outbox, not from the alert's
        `sent`: a replayed clip's alerts carry the clip's times, yet are fresh messages.
        """
        return OutboundMessage(
            message_id=self.message_id,
            topic=self.topic,
            payload=self.payload,
            severity_rank=self.severity_rank,
            expiry_s=self.expiry_s if self.expiry_s is not None else default_expiry_s,
            created_utc=datetime.now(UTC),
        )


@dataclass(frozen=True, slots=True)
class Routed:
    """What routing one alert gave.

    Attributes:
        messages: one per entitled recipient whose message could be made, in policy order.
        failures: recipients whose message failed (rendering, pseudonyms, signing); each is logged.
        snapshots_withheld: messages whose recipient may get a snapshot but got a `withheld`
            note instead (face detector missing or failing, no snapshot maker).
    """

    messages: tuple[OutgoingAlert, ...]
    failures: int = 0
    snapshots_withheld: int = 0


class AlertDispatcher:
    """Routes alerts to recipients, each through its sharing policy.

    Args:
        policies: who receives what.
        topic_for: builds the topic of an alert for a recipient (see
            `recipient_topics`). It is given the alert with the recipient's
            camera pseudonym in `detection.camera_id`, so a topic never names
            the real camera.
        sign: wraps a recipient's view in a signed envelope (`AlertSigner.sign`).
        default_expiry_s: lifetime of a message whose recipient sets no
            `retention_s` (`mqtt.message_expiry_s`), for building `sharing`.
        sharing: renders the views; default: built from `policies` (loading
            or creating the pseudonym key) now when `site_id` is given, so a
            personal-data warning is logged at start, else on the first alert.
        site_id: the site's id, for building `sharing`.
    """

    def __init__(
        self,
        policies: PoliciesConfig,
        topic_for: Callable[[Alert, RecipientPolicy], str],
        sign: Signer,
        *,
        default_expiry_s: int,
        sharing: SharingPolicy | None = None,
        site_id: str | None = None,
    ) -> None:
        self._policies = policies
        self._topic_for = topic_for
        self._sign = sign
        self._default_expiry_s = default_expiry_s
        if sharing is None and site_id is not None:
            sharing = SharingPolicy.from_config(policies, site_id=site_id, default_expiry_s=default_expiry_s)
        self._sharing = sharing
        self._sharing_lock = threading.Lock()
        self._snapshots_wanted = any(r.snapshots.enabled for r in policies.recipients)

    @property
    def sharing(self) -> SharingPolicy | None:
        return self._sharing

    @property
    def snapshots_wanted(self) -> bool:
        """Whether any recipient may get a snapshot; when none may, an alert's frame is not needed."""
        return self._snapshots_wanted

    def route(self, alert: Alert, moment: AlertMoment | None = None) -> list[OutgoingAlert]:
        """The messages for every recipient that receives `alert` (see `dispatch`)."""
        return list(self.dispatch(alert, moment).messages)

    def dispatch(self, alert: Alert, moment: AlertMoment | None = None) -> Routed:
        """The messages for every recipient that receives `alert`, and what failed on the way.

        Args:
            alert: the alert, as built (before any policy).
            moment: the frame and boxes at the alert; needed only for snapshots.
        """
        sharing = self._sharing_for(alert)
        recipients = [r for r in sharing.recipients if sharing.receives(r, alert)]
        snapshots = sharing.snapshots_for(moment, recipients)
        out: list[OutgoingAlert] = []
        failures = 0
        for recipient in recipients:
            try:
                out.append(self._message(sharing, alert, recipient, snapshots.get(recipient.snapshots)))
            except Exception as err:  # noqa: BLE001 - one recipient's failure must not stop the others
                failures += 1
                log_event(
                    _log,
                    "route_failed",
                    logging.ERROR,
                    recipient=recipient.name,
                    alert_id=alert.identifier,
                    rule=alert.detection.rule,
                    error=f"{type(err).__name__}: {err}",
                )
        withheld = sum(1 for m in out if m.snapshot == "withheld")
        return Routed(tuple(out), failures, withheld)

    def _message(
        self, sharing: SharingPolicy, alert: Alert, recipient: RecipientPolicy, snapshot: Snapshot | None
    ) -> OutgoingAlert:
        payload = self._sign(sharing.render(alert, recipient, snapshot))
        seen_as = _with_camera_pseudonym(alert, sharing.pseudonym("cam", alert.detection.camera_id, recipient))
        return OutgoingAlert(
            message_id=message_id_for(payload),
            recipient=recipient.name,
            topic=self._topic_for(seen_as, recipient),
            payload=payload,
            alert_id=alert.identifier,
            severity_rank=SEVERITY_ORDER[alert.info.severity],
            policy_version=sharing.version,
            expiry_s=recipient.retention_s,
            snapshot=snapshot.redaction if snapshot is not None else "none",
            personal_data=snapshot is not None and snapshot.redaction == "unredacted",
        )

    def _sharing_for(self, alert: Alert) -> SharingPolicy:
        # Built on first use when no site id was known; the lock keeps it one policy (one key load).
        with self._sharing_lock:
            if self._sharing is None:
                self._sharing = SharingPolicy.from_config(
                    self._policies, site_id=alert.site_id, default_expiry_s=self._default_expiry_s
                )
            return self._sharing


def _with_camera_pseudonym(alert: Alert, camera_pseudonym: str) -> Alert:
    detection = alert.detection.model_copy(update={"camera_id": camera_pseudonym})
    return alert.model_copy(update={"detection": detection})


def recipient_topics(prefix: str, site_id: str) -> Callable[[Alert, RecipientPolicy], str]:
    """The one `topic_for`: `<prefix>/<site>/<camera pseudonym>/alerts/<rule>/<recipient topic level>`."""

    def topic_for(alert: Alert, recipient: RecipientPolicy) -> str:
        # camera_id is already the recipient's pseudonym here (see AlertDispatcher).
        return alert_topic(prefix, site_id, alert.detection.camera_id, alert.detection.rule, recipient.topic_level)

    return topic_for
