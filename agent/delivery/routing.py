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

Before rendering, each recipient's agreement has its say
(`agent.delivery.sharing_terms`): a copy under an agreement not in force is
withheld, one under an agreement that waits for verification is held (both
returned in `Routed`, for the sink to keep and audit), and a break-glass
grant widens what one recipient sees of one incident. `release` renders a
held copy once its verifier's verdict (or its timeout) lets it go.

A failure while rendering or signing one recipient's message is logged
(`event=route_failed`) and counted in the result, and the other recipients
still get theirs: one recipient's broken view never silences the rest.
"""

from __future__ import annotations

__all__ = ["AlertDispatcher", "OutgoingAlert", "Routed", "recipient_topics", "shared_fields"]

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.alerts.fields import ALWAYS_KEPT, POLICY_ADDED
from agent.alerts.schema import Alert
from agent.config import SEVERITY_ORDER, PoliciesConfig, RecipientPolicy
from agent.config.agreements import Agreement
from agent.delivery.outbox import OutboundMessage, message_id_for
from agent.delivery.sharing_terms import (
    HeldCopy,
    Release,
    TermsTables,
    Widening,
    Withheld,
    decide,
    verified_copy,
    widened,
)
from agent.delivery.topics import alert_topic
from agent.logs import log_event
from agent.privacy.policy import SharingPolicy
from agent.privacy.snapshots import Snapshot
from agent.values.alert_moment import AlertMoment

_log = logging.getLogger("agent.delivery.routing")
_NO_TABLES = TermsTables()
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
        terms: what the audit record keeps of the sharing terms behind this copy
            (agreement id and digest, CAP status, validation level, location
            precision, fields shared, how it was released, any break-glass grant).
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
    terms: Mapping[str, Any] = field(default_factory=dict)

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
        withheld: copies an agreement kept back (not in force, or the incident dismissed).
        held: copies waiting for their agreement's verifier.
    """

    messages: tuple[OutgoingAlert, ...]
    failures: int = 0
    snapshots_withheld: int = 0
    withheld: tuple[Withheld, ...] = ()
    held: tuple[HeldCopy, ...] = ()


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
        tables: verifiers' verdicts, for agreements that hold alerts until one comes
            (`agent.delivery.release_gate`), and break-glass grants that widen a
            recipient's view of one incident; without them (a replay) nothing is
            held and nothing widened.
        now: the clock an agreement's validity is checked against.
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
        tables: TermsTables = _NO_TABLES,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._policies = policies
        self.tables = tables
        self._verdicts = tables.verdicts
        self._grants = tables.grants
        self._now = now
        self._topic_for = topic_for
        self._sign = sign
        self._default_expiry_s = default_expiry_s
        if sharing is None and site_id is not None:
            sharing = SharingPolicy.from_config(policies, site_id=site_id, default_expiry_s=default_expiry_s)
        self._sharing = sharing
        self._sharing_lock = threading.Lock()
        # A break-glass grant may turn snapshots on for a recipient: keep the frame for it too.
        self._snapshots_wanted = any(
            r.snapshots.enabled or _may_widen_snapshots(policies.agreement_for(r)) for r in policies.recipients
        )

    def with_tables(self, tables: TermsTables) -> AlertDispatcher:
        """The same dispatcher (policies, key, signer) consulting `tables`."""
        return AlertDispatcher(
            self._policies,
            self._topic_for,
            self._sign,
            default_expiry_s=self._default_expiry_s,
            sharing=self._sharing,
            tables=tables,
            now=self._now,
        )

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
        now = self._now()
        incident = alert.detection.incident_id
        entitled = [r for r in sharing.recipients if sharing.receives(r, alert)]
        grants = {r.name: self._widening(r, incident, now) for r in entitled}
        recipients = [widened(r, grants[r.name]) for r in entitled]
        snapshots = sharing.snapshots_for(moment, recipients)
        out: list[OutgoingAlert] = []
        withheld: list[Withheld] = []
        held: list[HeldCopy] = []
        failures = 0
        for recipient in recipients:
            agreement = sharing.agreement(recipient)
            snapshot = snapshots.get(recipient.snapshots)
            decision = decide(agreement, alert, now, self._verdicts)
            if decision.action == "withhold":
                withheld.append(
                    Withheld(
                        alert.identifier,
                        incident,
                        recipient.name,
                        recipient.agreement_id,
                        decision.reason,
                        decision.detail,
                    )
                )
                continue
            if decision.action == "hold" and agreement is not None and agreement.verifier is not None:
                held.append(
                    HeldCopy(
                        alert,
                        recipient.name,
                        agreement.id,
                        agreement.verifier,
                        agreement.auto_release_after_s,
                        snapshot,
                    )
                )
                continue
            try:
                copy = verified_copy(alert, decision.level)
                out.append(self._message(sharing, copy, recipient, snapshot, decision.release, grants[recipient.name]))
            except Exception as err:  # noqa: BLE001 - one recipient's failure must not stop the others
                failures += 1
                self._route_failed(recipient.name, alert, err)
        withheld_snapshots = sum(1 for m in out if m.snapshot == "withheld")
        return Routed(tuple(out), failures, withheld_snapshots, tuple(withheld), tuple(held))

    def release(self, copy: HeldCopy, level: int, how: Release) -> OutgoingAlert | Withheld | None:
        """The message of a held copy, now that it may go (`how`: verified or auto_release) at `level`.

        Rendered with the recipient's policy of today: None when the recipient is no longer in
        the policies; a `Withheld` when its agreement is no longer in force.
        """
        sharing = self._sharing_for(copy.alert)
        recipient = next((r for r in sharing.recipients if r.name == copy.recipient), None)
        if recipient is None:
            return None
        now = self._now()
        widening = self._widening(recipient, copy.alert.detection.incident_id, now)
        recipient = widened(recipient, widening)
        decision = decide(sharing.agreement(recipient), copy.alert, now, None)
        if decision.action == "withhold":
            alert = copy.alert
            return Withheld(
                alert.identifier,
                alert.detection.incident_id,
                copy.recipient,
                copy.agreement,
                decision.reason,
                decision.detail,
            )
        return self._message(sharing, verified_copy(copy.alert, level), recipient, copy.snapshot, how, widening)

    def _widening(self, recipient: RecipientPolicy, incident_id: str, now: datetime) -> Widening | None:
        if self._grants is None:
            return None
        try:
            return self._grants.widening(recipient.name, incident_id, now)
        except Exception as err:  # noqa: BLE001 - a grant table that fails widens nothing; the alert still goes
            log_event(_log, "grant_lookup_failed", logging.ERROR, recipient=recipient.name, error=str(err))
            return None

    def _route_failed(self, recipient: str, alert: Alert, err: Exception) -> None:
        log_event(
            _log,
            "route_failed",
            logging.ERROR,
            recipient=recipient,
            alert_id=alert.identifier,
            rule=alert.detection.rule,
            error=f"{type(err).__name__}: {err}",
        )

    def _message(
        self,
        sharing: SharingPolicy,
        alert: Alert,
        recipient: RecipientPolicy,
        snapshot: Snapshot | None,
        release: Release = "immediate",
        widening: Widening | None = None,
    ) -> OutgoingAlert:
        view = sharing.render(alert, recipient, snapshot)
        payload = self._sign(view)
        seen_as = _with_camera_pseudonym(alert, sharing.pseudonym("cam", alert.detection.camera_id, recipient))
        terms: dict[str, Any] = {
            "agreement": recipient.agreement_id,
            "agreement_digest": view.get("agreement_digest"),
            "cap_status": alert.status,
            "validation_level": alert.validation_level,
            "location": "zone_only" if recipient.location == "zone_only" else f"circle:{recipient.location_decimals}",
            "shared_fields": shared_fields(view),
            "release": release,
        }
        if widening is not None:
            terms["break_glass"] = widening.grant_id
        return OutgoingAlert(
            message_id=message_id_for(payload),
            recipient=recipient.name,
            topic=self._topic_for(seen_as, recipient),
            payload=payload,
            alert_id=alert.identifier,
            severity_rank=SEVERITY_ORDER[alert.info.severity],
            policy_version=sharing.version,
            expiry_s=_retention_s(sharing, recipient),
            snapshot=snapshot.redaction if snapshot is not None else "none",
            personal_data=snapshot is not None and snapshot.redaction == "unredacted",
            terms={k: v for k, v in terms.items() if v is not None},
        )

    def _sharing_for(self, alert: Alert) -> SharingPolicy:
        # Built on first use when no site id was known; the lock keeps it one policy (one key load).
        with self._sharing_lock:
            if self._sharing is None:
                self._sharing = SharingPolicy.from_config(
                    self._policies, site_id=alert.site_id, default_expiry_s=self._default_expiry_s
                )
            return self._sharing


def _may_widen_snapshots(agreement: Agreement | None) -> bool:
    return agreement is not None and agreement.break_glass.allowed and "snapshots" in agreement.break_glass.may_widen


def _retention_s(sharing: SharingPolicy, recipient: RecipientPolicy) -> int | None:
    """The MQTT expiry the copy asks for: its recipient's retention, else its agreement's, else None (the default)."""
    if recipient.retention_s is not None:
        return recipient.retention_s
    agreement = sharing.agreement(recipient)
    return agreement.retention_s if agreement is not None else None


def shared_fields(view: Mapping[str, Any]) -> list[str]:
    """The fields of a view beyond the envelope, as dotted paths two levels deep (`info.headline`)."""
    paths: list[str] = []
    for key, value in view.items():
        if key in ALWAYS_KEPT or key in POLICY_ADDED:
            continue
        if isinstance(value, dict):
            paths.extend(f"{key}.{inner}" for inner in value)
        else:
            paths.append(key)
    return sorted(paths)


def _with_camera_pseudonym(alert: Alert, camera_pseudonym: str) -> Alert:
    detection = alert.detection.model_copy(update={"camera_id": camera_pseudonym})
    return alert.model_copy(update={"detection": detection})


def recipient_topics(prefix: str, site_id: str) -> Callable[[Alert, RecipientPolicy], str]:
    """The one `topic_for`: `<prefix>/<site>/<camera pseudonym>/alerts/<rule>/<recipient topic level>`."""

    def topic_for(alert: Alert, recipient: RecipientPolicy) -> str:
        # camera_id is already the recipient's pseudonym here (see AlertDispatcher).
        return alert_topic(prefix, site_id, alert.detection.camera_id, alert.detection.rule, recipient.topic_level)

    return topic_for
