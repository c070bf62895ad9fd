"""Feedback intake: the signed statuses recipients send back, checked, counted, audited, acted on.

`FeedbackIntake` is a context manager owning one thread, `feedback`. Three
things feed it, none of which waits for it:

- the site's MQTT connection (`subscription()`: `<prefix>/<site>/feedback/+`,
  QoS 1) hands it each message on paho's network thread (`on_message` only
  queues it; past `max_queued` waiting statuses a new one is rejected as
  `overloaded`);
- the audit log (it is the log's `AuditObserver`) tells it every message
  that left the box, so it knows which alert went to whom (and annotates the
  record with the alert's incident, rule, phase and severity);
- the cameras' alerts pass through `watch(submit)` on their way to the
  delivery sink, so it holds the alert as built for an escalation to render.

On its thread each status goes through `agent.delivery.feedback_check`;
an accepted one is kept (`agent.delivery.feedback_ledger`), recorded in the
audit log (`kind: status`), logged (`event=feedback_status`), timed (from the
alert's publish to its first `received` and first acknowledgement,
`agent.delivery.feedback_stats`; an alert counts as published at its PUBACK,
which the publisher reports to `on_delivered`) and handed to the `Escalator`
and the `Releaser` (a verifier's verdict on held copies); a rejected
one is counted by reason, logged (`event=feedback_status_rejected`) and
recorded (`kind: status_rejected`; at most `REJECTIONS_AUDITED_PER_MIN` a
minute, the rest counted and summed up in one line). A duplicate is counted
and ignored. A status about an alert the site has not finished recording
yet (a recipient can answer within milliseconds, before the audit record is
on disk) waits for it, up to 2 s, before it is rejected as `unknown_alert`.
"""

from __future__ import annotations

__all__ = ["REJECTIONS_AUDITED_PER_MIN", "FeedbackIntake"]

import hashlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self

from agent.alerts.schema import Alert
from agent.config import SEVERITY_ORDER, PoliciesConfig
from agent.delivery.escalation import Escalator
from agent.delivery.feedback_check import StatusChecker, StatusVerdict
from agent.delivery.feedback_history import sent_from_audit
from agent.delivery.feedback_ledger import ACKNOWLEDGING, KEEP_S, FeedbackLedger, SentMessage
from agent.delivery.feedback_stats import UNATTRIBUTED, FeedbackCounters, FeedbackMeter
from agent.delivery.rejection_budget import RejectionBudget
from agent.delivery.releaser import Releaser
from agent.delivery.subscriptions import Subscription
from agent.delivery.topics import feedback_filter
from agent.logs import log_event
from agent.privacy.audit import AuditLog, Outgoing
from agent.values.alert_moment import AlertMoment

_log = logging.getLogger("agent.delivery.feedback")
REJECTIONS_AUDITED_PER_MIN = 60
_WAIT_UNKNOWN_S = 2.0
_TICK_S = 0.25
_PRUNE_EVERY_S = 3600.0
_ALERTS_KEPT = 10_000


class Submit(Protocol):
    """The delivery sink's `submit`: one frame's alerts, and the moment they came from."""

    def __call__(self, alerts: tuple[Alert, ...], moment: AlertMoment | None = None, /) -> None: ...


@dataclass(frozen=True, slots=True)
class _Incoming:
    topic: str
    payload: bytes
    received: datetime
    until_mono: float  # an `unknown_alert` waits for the audit log's record of the alert until then


class FeedbackIntake:
    """Takes statuses in for one site (see the module docstring).

    Args:
        site_id: this site.
        prefix: the MQTT topic prefix.
        policies: the recipients (keys, escalation); `use_policies` swaps them.
        ledger: the feedback tables (opened and closed with the intake).
        audit: the site's audit log; the intake observes it while it runs.
        escalator: builds the `Escalator` from the meter (None: nothing escalates).
        releaser: acts on verifiers' verdicts and hold timeouts (None: nothing is held).
        max_queued: statuses waiting for the thread past which new ones are refused.
    """

    def __init__(
        self,
        *,
        site_id: str,
        prefix: str,
        policies: PoliciesConfig,
        ledger: FeedbackLedger,
        audit: AuditLog,
        escalator: Callable[[FeedbackMeter], Escalator] | None = None,
        releaser: Releaser | None = None,
        max_queued: int = 1000,
    ) -> None:
        self._releaser = releaser
        self._site_id = site_id
        self._prefix = prefix
        self._filter = feedback_filter(prefix, site_id)
        self._policies = policies
        self._ledger = ledger
        self._audit = audit
        self._make_escalator = escalator
        self._escalator: Escalator | None = None
        self._max_queued = max_queued
        self.meter = FeedbackMeter(r.name for r in policies.recipients)
        self._checker: StatusChecker | None = None
        self._cond = threading.Condition()
        self._statuses: deque[_Incoming] = deque()
        self._sent: deque[tuple[SentMessage, Alert | None]] = deque()
        self._published: deque[tuple[str, datetime]] = deque()
        self._parked: deque[_Incoming] = deque()
        self._alerts: OrderedDict[str, Alert] = OrderedDict()
        self._alerts_lock = threading.Lock()
        self._stopping = False
        self._busy = False
        self._overloaded = 0
        self._audit_budget = RejectionBudget(REJECTIONS_AUDITED_PER_MIN, _log, "feedback_rejections_not_audited")
        self._thread = threading.Thread(target=self._run, name="feedback", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._ledger.__enter__()
        newest = self._ledger.newest_sent_utc()
        since = newest - timedelta(minutes=5) if newest else datetime.now(UTC) - timedelta(seconds=KEEP_S)
        for sent in sent_from_audit(self._audit.path, since):  # what the log knows and the table may not
            self._ledger.add_sent(sent)
        self._checker = StatusChecker(self._site_id, self._prefix, self._policies, self._ledger)
        if self._make_escalator is not None:
            self._escalator = self._make_escalator(self.meter)
        self._audit.observe(self)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._audit.observe(None)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(10)
        self._ledger.__exit__(None, None, None)

    def subscription(self) -> Subscription:
        """What the site's MQTT connection subscribes to for this intake."""
        return Subscription(self._filter, 1, self.on_message, self.meter.subscription)

    def use_policies(self, policies: PoliciesConfig) -> None:
        """Recipients, keys and escalation settings from now on (a SIGHUP reload)."""
        with self._cond:
            self._policies = policies
            if self._checker is not None:
                self._checker.use_policies(policies)
            for follower in (self._escalator, self._releaser):
                if follower is not None:
                    follower.use_policies(policies)

    def counters(self) -> FeedbackCounters:
        return self.meter.snapshot()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is queued or being handled (a parked status still counts); True when idle."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not (self._statuses or self._sent or self._published or self._parked or self._busy), timeout_s
            )

    # -- producers (other threads) --------------------------------------------------------

    def on_message(self, topic: str, payload: bytes) -> None:
        """A message on the feedback filter (paho's network thread): queued, never checked here."""
        item = _Incoming(topic, payload, datetime.now(UTC), time.monotonic() + _WAIT_UNKNOWN_S)
        with self._cond:
            if len(self._statuses) < self._max_queued:
                self._statuses.append(item)
                self._cond.notify_all()
                return
            self._overloaded += 1
            overloaded = self._overloaded
        self.meter.rejected(UNATTRIBUTED, "overloaded")
        if overloaded % 100 == 1:  # a flood is told once per hundred, not once per message
            log_event(
                _log,
                "feedback_status_rejected",
                logging.WARNING,
                reason="overloaded",
                queued=self._max_queued,
                total=overloaded,
            )

    def on_delivered(self, message_id: str, acked: datetime) -> None:
        """The broker acknowledged a message (paho's network thread): queued for the ledger."""
        with self._cond:
            self._published.append((message_id, acked))
            self._cond.notify_all()

    def watch(self, submit: Callable[[tuple[Alert, ...], AlertMoment | None], None]) -> Submit:
        """`submit` (the delivery sink's), noting each alert on its way for annotations and escalation."""

        def watched(alerts: tuple[Alert, ...], moment: AlertMoment | None = None) -> None:
            with self._alerts_lock:
                for alert in alerts:
                    self._alerts[alert.identifier] = alert
                while len(self._alerts) > _ALERTS_KEPT:
                    self._alerts.popitem(last=False)
            submit(alerts, moment)

        return watched

    def _alert(self, alert_id: str) -> Alert | None:
        with self._alerts_lock:
            return self._alerts.get(alert_id)

    def extra_fields(self, outgoing: Outgoing) -> Mapping[str, Any]:
        """The alert's incident, rule, phase and severity for its audit record (the sink's thread)."""
        alert = self._alert(outgoing.alert_id)
        if alert is None:
            return {}
        d = alert.detection
        return {"incident_id": d.incident_id, "rule": d.rule, "phase": d.phase, "severity": alert.info.severity}

    def recorded(self, outgoing: Outgoing, record: Mapping[str, Any]) -> None:
        alert = self._alert(outgoing.alert_id)
        severity = SEVERITY_ORDER.get(str(record.get("severity")), int(getattr(outgoing, "severity_rank", 0)))
        sent = SentMessage(
            outgoing.message_id,
            outgoing.alert_id,
            outgoing.recipient,
            str(record.get("incident_id", "")),
            severity,
            datetime.fromisoformat(str(record["ts"])),
            str(record.get("escalated_from", "")),
        )
        with self._cond:
            self._sent.append((sent, alert))
            self._cond.notify_all()

    # -- the feedback thread --------------------------------------------------------------

    def _run(self) -> None:
        next_prune = time.monotonic() + _PRUNE_EVERY_S
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._statuses or self._sent or self._published or self._stopping, _TICK_S)
                if self._stopping:
                    return
                sent, self._sent = list(self._sent), deque()
                published, self._published = list(self._published), deque()
                statuses, self._statuses = list(self._statuses), deque()
                self._busy = True
            try:
                self._step(sent, published, statuses)
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + _PRUNE_EVERY_S
                    self._ledger.prune(datetime.now(UTC))
            except Exception:  # noqa: BLE001 - the intake outlives any failure (a full disk, a bug)
                _log.exception("event=feedback_failed")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _step(
        self,
        sent: list[tuple[SentMessage, Alert | None]],
        published: list[tuple[str, datetime]],
        statuses: list[_Incoming],
    ) -> None:
        for message, alert in sent:  # before the statuses: a status may answer a message of this batch
            self._guarded(self._on_sent, message, alert)
        for message_id, acked in published:
            self._guarded(self._ledger.add_published, message_id, acked)
        if self._parked and (sent or self._parked[0].until_mono <= time.monotonic()):
            with self._cond:  # older than this batch's statuses: looked at again first, in order
                parked, self._parked = list(self._parked), deque()
            for item in parked:
                self._guarded(self._on_status, item)
        for item in statuses:
            self._guarded(self._on_status, item)
        for follower in (self._escalator, self._releaser):
            if follower is not None:
                self._guarded(follower.tick, datetime.now(UTC))

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        try:
            step(*args)
        except Exception:  # noqa: BLE001 - one bad item never stops the next
            _log.exception("event=feedback_failed step=%s", getattr(step, "__name__", "?"))

    def _on_sent(self, message: SentMessage, alert: Alert | None) -> None:
        self._ledger.add_sent(message)
        if self._escalator is not None:
            self._escalator.on_sent(message, alert)

    def _on_status(self, item: _Incoming) -> None:
        assert self._checker is not None
        verdict = self._checker.check(item.topic, item.payload)
        if verdict.reason == "duplicate":
            self.meter.duplicate(verdict.recipient)
            log_event(_log, "feedback_status_duplicate", logging.DEBUG, recipient=verdict.recipient)
        elif verdict.reason == "unknown_alert" and time.monotonic() < item.until_mono:
            with self._cond:
                self._parked.append(item)
        elif verdict.reason:
            self._reject(item, verdict)
        else:
            self._accept(item, verdict)

    def _accept(self, item: _Incoming, verdict: StatusVerdict) -> None:
        status, sent = verdict.status, verdict.sent
        assert status is not None and sent is not None
        before = self._ledger.status_kinds(status.alert_id, verdict.recipient)
        if not self._ledger.add_status(status, item.received):
            self.meter.duplicate(verdict.recipient)
            return
        left = self._ledger.published_at(sent.message_id) or sent.queued_utc
        since_s = round((item.received - left).total_seconds(), 6)
        if status.status == "received" and "received" not in before:
            self.meter.received_after(verdict.recipient, since_s)
        if status.status in ACKNOWLEDGING and not before & ACKNOWLEDGING:
            self.meter.acknowledged_after(verdict.recipient, since_s)
        self.meter.accepted(verdict.recipient, status.status, item.received.timestamp())
        fields = {
            "recipient": verdict.recipient,
            "topic": item.topic,
            "alert_id": status.alert_id,
            "incident_id": status.incident_id,
            "status_id": status.status_id,
            "status": status.status,
            "disposition": status.disposition,
            "status_sent": status.sent.isoformat(),
            "operator": status.operator,
            "kid": verdict.kid,
            "payload_sha256": hashlib.sha256(item.payload).hexdigest(),
            "payload_bytes": len(item.payload),
            "since_published_s": since_s,
            "validation_level": status.validation_level,
        }
        self._audit.record_event("status", ts=item.received, **{k: v for k, v in fields.items() if v is not None})
        log_event(
            _log,
            "feedback_status",
            recipient=verdict.recipient,
            status=status.status,
            alert_id=status.alert_id,
            incident=status.incident_id,
            since_published_s=f"{since_s:.3f}",
        )
        if self._escalator is not None:
            self._escalator.on_status(status, item.received)
        if self._releaser is not None:
            self._releaser.on_status(status, verdict.recipient, item.received)

    def _reject(self, item: _Incoming, verdict: StatusVerdict) -> None:
        self.meter.rejected(verdict.recipient, verdict.reason)
        if not self._audit_budget.allow():
            return
        fields = {
            "recipient": verdict.recipient,
            "topic_level": verdict.level,
            "reason": verdict.reason,
            "detail": verdict.detail[:300],
            "kid": verdict.kid[:200],
            "payload_sha256": hashlib.sha256(item.payload).hexdigest(),
            "payload_bytes": len(item.payload),
        }
        if verdict.status is not None:
            fields.update(alert_id=verdict.status.alert_id, status_id=verdict.status.status_id)
        self._audit.record_event("status_rejected", ts=item.received, **fields)
        log_event(
            _log,
            "feedback_status_rejected",
            logging.WARNING,
            recipient=verdict.recipient,
            reason=verdict.reason,
            detail=verdict.detail[:300],
        )
