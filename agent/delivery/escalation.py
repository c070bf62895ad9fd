"""Escalation: an alert nobody acknowledged in time goes on to the next recipient.

A recipient with `escalate_to` names who gets its alerts when it does not
acknowledge them: when the first alert of an incident at or above its
`escalate_min_severity` is sent to it, the incident is *armed* (kept in the
outbox file, `agent.delivery.feedback_ledger`, so a restart keeps it). The
clock starts when that alert was published (its PUBACK), or when it was
queued while it has not. An acknowledging status from the recipient
(`acknowledged`, or a later step: verified, dismissed, dispatched, on_scene,
closed) about any alert of the incident *cancels* it. When `escalate_after_s`
passes first, it *fires*: every alert of the incident the recipient was sent,
from the one that armed it on, is rendered again as the next recipient's own
view (its fields, location, pseudonyms and expiry; its `rules` and
`min_severity` do not filter an escalation, the escalating recipient's
`escalate_min_severity` does; no snapshot), stored in the outbox and audited
with `escalated_from`, and one `escalation` record says what was sent on and
why. Later alerts of a fired incident follow at once. The next recipient may
escalate in turn (the config refuses a cycle).
"""

from __future__ import annotations

__all__ = ["Escalator", "RouteTo"]

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime

from pydantic import ValidationError

from agent.alerts.schema import Alert
from agent.alerts.status import AlertStatus
from agent.config import SEVERITY_ORDER, PoliciesConfig, RecipientPolicy
from agent.delivery.feedback_ledger import ACKNOWLEDGING, Escalation, FeedbackLedger, SentMessage
from agent.delivery.feedback_stats import FeedbackMeter
from agent.delivery.routing import Routed
from agent.delivery.sink import MessageStore
from agent.logs import log_event
from agent.privacy.audit import AuditLog

_log = logging.getLogger("agent.delivery.escalation")
# Renders (and signs) one recipient's view of an alert, whatever its rules and minimum severity say.
RouteTo = Callable[[Alert, RecipientPolicy], Routed]


class Escalator:
    """Arms, cancels and fires escalations (see the module docstring); used by the feedback thread only.

    Args:
        policies: the recipients and their escalation settings.
        ledger: the feedback tables (sent alerts, statuses, escalations, kept alerts).
        route_to: renders the next recipient's view of an alert.
        store: where escalated messages go (the outbox).
        audit: the audit log.
        meter: counts escalations per recipient.
    """

    def __init__(
        self,
        policies: PoliciesConfig,
        ledger: FeedbackLedger,
        route_to: RouteTo,
        store: MessageStore,
        audit: AuditLog,
        meter: FeedbackMeter,
    ) -> None:
        self._policies = policies
        self._ledger = ledger
        self._route_to = route_to
        self._store = store
        self._audit = audit
        self._meter = meter
        self._pending: dict[tuple[str, str], Escalation] = {
            (e.incident_id, e.recipient): e for e in ledger.pending_escalations()
        }
        if self._pending:
            log_event(_log, "escalations_resumed", pending=len(self._pending))
        self._report_pending()

    def use_policies(self, policies: PoliciesConfig) -> None:
        self._policies = policies

    def on_sent(self, sent: SentMessage, alert: Alert | None) -> None:
        """A message to `sent.recipient` is in the audit log: arm, collect, or send on at once."""
        key = (sent.incident_id, sent.recipient)
        if not sent.incident_id:
            return
        esc = self._pending.get(key) or self._ledger.escalation(*key)
        if esc is not None and esc.state == "fired":
            target = self._policies.recipient(esc.target)
            if alert is not None and target is not None:
                self._send(alert, target, esc.recipient)
            return
        if esc is not None:
            if esc.state == "pending" and alert is not None:
                self._ledger.keep_alert(sent.alert_id, sent.incident_id, sent.queued_utc, alert.model_dump_json())
            return
        policy = self._policies.recipient(sent.recipient)
        if policy is None or policy.escalate_to is None:
            return
        if sent.severity_rank < SEVERITY_ORDER[policy.escalate_min_severity]:
            return
        if alert is None:
            log_event(_log, "escalation_not_armed", logging.WARNING, alert_id=sent.alert_id, reason="alert not known")
            return
        if self._ledger.acknowledged(*key):
            return
        self._ledger.keep_alert(sent.alert_id, sent.incident_id, sent.queued_utc, alert.model_dump_json())
        esc = Escalation(
            sent.incident_id,
            sent.recipient,
            policy.escalate_to,
            sent.alert_id,
            policy.escalate_after_s,
            "pending",
            sent.queued_utc,
        )
        self._ledger.put_escalation(esc)
        self._pending[key] = esc
        self._report_pending()
        log_event(
            _log,
            "escalation_armed",
            recipient=esc.recipient,
            to=esc.target,
            incident=esc.incident_id,
            alert_id=esc.alert_id,
            after_s=f"{esc.after_s:g}",
        )

    def on_status(self, status: AlertStatus, received: datetime) -> None:
        """An accepted status: an acknowledging one cancels the incident's pending escalation."""
        if status.status not in ACKNOWLEDGING:
            return
        esc = self._pending.pop((status.incident_id, status.recipient), None)
        if esc is None:
            return
        self._ledger.put_escalation(dataclasses.replace(esc, state="cancelled"))
        self._report_pending()
        log_event(
            _log,
            "escalation_cancelled",
            recipient=esc.recipient,
            incident=esc.incident_id,
            status=status.status,
            after_s=f"{(received - esc.armed_utc).total_seconds():.1f}",
        )

    def tick(self, now: datetime) -> None:
        """Fire every pending escalation whose time is up."""
        for key, esc in list(self._pending.items()):
            if (now - esc.armed_utc).total_seconds() < esc.after_s:
                continue  # published after it was queued: not due yet either way
            sent = self._ledger.sent_to(esc.alert_id, esc.recipient)
            left = self._ledger.published_at(sent.message_id) if sent is not None else None
            start = left or esc.armed_utc
            if (now - start).total_seconds() >= esc.after_s:
                del self._pending[key]
                self._fire(esc, now, start)
                self._report_pending()

    def _fire(self, esc: Escalation, now: datetime, start: datetime) -> None:
        target = self._policies.recipient(esc.target)
        alert_ids: list[str] = []
        messages: list[str] = []
        for alert_id, text in self._ledger.alerts_sent(esc.incident_id, esc.recipient, esc.alert_id):
            try:
                alert = Alert.model_validate_json(text)
            except ValidationError as err:
                log_event(_log, "escalation_alert_unreadable", logging.ERROR, alert_id=alert_id, error=str(err)[:200])
                continue
            alert_ids.append(alert_id)
            if target is not None:
                messages += self._send(alert, target, esc.recipient)
        outcome = "sent" if messages else ("target_unknown" if target is None else "failed")
        self._ledger.put_escalation(dataclasses.replace(esc, state="fired"))
        self._meter.escalated(esc.recipient)
        waited_s = round((now - start).total_seconds(), 3)
        try:
            self._audit.record_event(
                "escalation",
                ts=now,
                incident_id=esc.incident_id,
                recipient=esc.recipient,
                target=esc.target,
                reason=f"no acknowledgement within {esc.after_s:g} s",
                alert_ids=alert_ids,
                messages=messages,
                waited_s=waited_s,
                outcome=outcome,
            )
        except Exception as err:  # noqa: BLE001 - the messages are stored already; say the record is missing
            log_event(_log, "escalation_audit_failed", logging.ERROR, incident=esc.incident_id, error=str(err))
        log_event(
            _log,
            "alert_escalated",
            logging.WARNING if outcome == "sent" else logging.ERROR,
            recipient=esc.recipient,
            to=esc.target,
            incident=esc.incident_id,
            alerts=len(alert_ids),
            messages=len(messages),
            waited_s=f"{waited_s:.1f}",
            outcome=outcome,
        )

    def _send(self, alert: Alert, target: RecipientPolicy, escalated_from: str) -> list[str]:
        """Render, store and audit `target`'s view of `alert`; the ids of the messages the outbox accepted."""
        try:
            routed = self._route_to(alert, target)
        except Exception as err:  # noqa: BLE001 - one alert that cannot be rendered does not stop the rest
            log_event(_log, "escalation_route_failed", logging.ERROR, alert_id=alert.identifier, error=str(err))
            return []
        accepted: list[str] = []
        for message in routed.messages:
            if message.recipient != target.name:
                continue
            try:
                if not self._store.store(message):
                    continue
            except Exception as err:  # noqa: BLE001 - the disk full: logged, the next message still goes
                log_event(_log, "escalation_store_failed", logging.ERROR, alert_id=alert.identifier, error=str(err))
                continue
            accepted.append(message.message_id)
            try:
                self._audit.record(message, escalated_from=escalated_from)
            except Exception as err:  # noqa: BLE001 - stored already; say the audit record is missing
                log_event(_log, "escalation_audit_failed", logging.ERROR, alert_id=alert.identifier, error=str(err))
        return accepted

    def _report_pending(self) -> None:
        counts: dict[str, int] = {}
        for esc in self._pending.values():
            counts[esc.recipient] = counts.get(esc.recipient, 0) + 1
        self._meter.set_pending(counts)
