"""The break-glass desk: recipients' requests to widen sharing for one incident, checked, audited, decided.

`BreakGlassDesk` is a context manager owning one thread, `break-glass`.
The site's MQTT connection hands it every message on
`<prefix>/<site>/requests/+` (`subscription()`; `on_message` only queues,
and past `max_queued` waiting messages a new one is refused as
`overloaded`). On its thread each message goes through
`agent.delivery.break_glass_check`:

- one that cannot be believed (forged, unknown key, another site's, ...) is
  counted, logged (`event=break_glass_request_rejected`) and recorded as
  `break_glass_refused` with `verified: false` and its reason (at most
  `REJECTIONS_AUDITED_PER_MIN` a minute; the rest are counted);
- a repeated request id is counted and ignored;
- a request about an incident the site never sent that recipient waits up
  to `wait_for_incident_s` for the feedback ledger to catch up, then is
  refused as `unknown_incident`;
- every other request is recorded (`break_glass_request`, with its
  justification) and kept (`agent.delivery.break_glass_table`), then the
  recipient's agreement answers (`answer_under`): beyond its limits or not
  allowed, `break_glass_refused`; within them with `auto_grant`,
  `break_glass_granted` (`granted_by: automatic`) at once; otherwise it
  waits, `pending`, for `edge-agent requests approve ID` (or `refuse`).

Every second (`tick`) the desk reads the decisions people made on the box,
records them (`granted_by: approved`, or refused `refused_by_owner`),
refuses pending requests nobody decided within the duration they asked for
(`lapsed`), and records each grant that ran out or was revoked
(`break_glass_ended`, with how long it lasted). A grant widens the
recipient's copies of the incident only once it is recorded, and stops at
its `until` by the dispatcher's own clock, whatever the desk is doing.

The owner hears of every step: a log line, the counters in the stats
(`counters()`), and a signed notice on `<prefix>/<site>/notifications`
(`agent.delivery.break_glass_notices`).
"""

from __future__ import annotations

__all__ = ["REJECTIONS_AUDITED_PER_MIN", "BreakGlassDesk", "RequestOutcome"]

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Self

from agent.config import PoliciesConfig, SiteConfig
from agent.delivery.break_glass_check import RequestChecker, RequestVerdict, TermsAnswer, answer_under
from agent.delivery.break_glass_notices import NoticeSender
from agent.delivery.break_glass_records import decision_record, ended_record, rejected_record, request_record
from agent.delivery.break_glass_stats import BreakGlassCounters, BreakGlassMeter
from agent.delivery.break_glass_table import BreakGlassTable, StoredRequest
from agent.delivery.feedback_stats import UNATTRIBUTED
from agent.delivery.messages import OutboundMessage
from agent.delivery.rejection_budget import RejectionBudget
from agent.delivery.signing import load_or_create_signing_key
from agent.delivery.subscriptions import Subscription
from agent.delivery.topics import requests_filter
from agent.logs import log_event
from agent.privacy.audit import AuditLog

_log = logging.getLogger("agent.delivery.break_glass")
REJECTIONS_AUDITED_PER_MIN = 60
_TICK_S = 1.0
_PRUNE_EVERY_S = 3600.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """What became of one message: `rejected` (not believed), `duplicate`, `parked` (waiting for its
    incident to be known), `granted`, `pending` or `refused`; `reason` with rejected and refused."""

    kind: Literal["rejected", "duplicate", "parked", "granted", "pending", "refused"]
    reason: str = ""
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class _Incoming:
    topic: str
    payload: bytes
    received: datetime
    park_until_mono: float


class BreakGlassDesk:
    """Takes break-glass requests in for one site (see the module docstring).

    Args:
        site_id: this site.
        prefix: the MQTT topic prefix.
        policies: recipients (keys) and agreements (terms); `use_policies` swaps them.
        table: the break-glass table (opened by the caller; also the dispatcher's `grants`).
        audit: the site's audit log.
        notices: signs and queues the owner's notices (None: log lines and counters only).
        now: the clock requests are received and grants decided and ended by.
        max_queued: messages waiting for the thread past which new ones are refused.
        wait_for_incident_s: how long a request for an incident not (yet) known as sent waits.
    """

    def __init__(
        self,
        *,
        site_id: str,
        prefix: str,
        policies: PoliciesConfig,
        table: BreakGlassTable,
        audit: AuditLog,
        notices: NoticeSender | None = None,
        now: Callable[[], datetime] = _utc_now,
        max_queued: int = 100,
        wait_for_incident_s: float = 2.0,
    ) -> None:
        self._filter = requests_filter(prefix, site_id)
        self._policies = policies
        self._checker = RequestChecker(site_id, prefix, policies)
        self._table = table
        self._audit = audit
        self._notices = notices
        self._now = now
        self._max_queued = max_queued
        self._wait_s = wait_for_incident_s
        self.meter = BreakGlassMeter()
        self._cond = threading.Condition()
        self._queue: deque[_Incoming] = deque()
        self._parked: deque[_Incoming] = deque()
        self._stopping = False
        self._busy = False
        self._overloaded = 0
        self._audit_budget = RejectionBudget(REJECTIONS_AUDITED_PER_MIN, _log, "break_glass_rejections_not_audited")
        self._thread = threading.Thread(target=self._run, name="break-glass", daemon=True)

    @classmethod
    def from_config(
        cls,
        config: SiteConfig,
        *,
        table: BreakGlassTable,
        audit: AuditLog,
        put: Callable[[OutboundMessage], bool],
        now: Callable[[], datetime] = _utc_now,
    ) -> BreakGlassDesk:
        """The site's desk; its notices are signed with the site key and queued with `put` (the outbox's)."""
        notices = NoticeSender(
            site_id=config.site.id,
            prefix=config.mqtt.topic_prefix,
            key=load_or_create_signing_key(config.signing.key_file),
            put=put,
            kid=config.signing.key_id,
            expiry_s=config.mqtt.message_expiry_s,
        )
        return cls(
            site_id=config.site.id,
            prefix=config.mqtt.topic_prefix,
            policies=config.policies,
            table=table,
            audit=audit,
            notices=notices,
            now=now,
        )

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(10)

    def subscription(self) -> Subscription:
        """What the site's MQTT connection subscribes to for this desk."""
        return Subscription(self._filter, 1, self.on_message, self.meter.subscription)

    def use_policies(self, policies: PoliciesConfig) -> None:
        """Recipients, keys and agreements from now on (a SIGHUP reload)."""
        with self._cond:
            self._policies = policies
            self._checker.use_policies(policies)

    def counters(self) -> BreakGlassCounters:
        return self.meter.snapshot()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is queued, parked or being handled; True when idle."""
        with self._cond:
            return self._cond.wait_for(lambda: not (self._queue or self._parked or self._busy), timeout_s)

    # -- producers (other threads) --------------------------------------------------------

    def on_message(self, topic: str, payload: bytes) -> None:
        """A message on the requests filter (paho's network thread): queued, never checked here."""
        item = _Incoming(topic, payload, self._now(), time.monotonic() + self._wait_s)
        with self._cond:
            if len(self._queue) < self._max_queued:
                self._queue.append(item)
                self._cond.notify_all()
                return
            self._overloaded += 1
            overloaded = self._overloaded
        self.meter.rejected("overloaded")
        if overloaded % 100 == 1:  # a flood is told once per hundred, not once per message
            log_event(_log, "break_glass_request_rejected", logging.WARNING, reason="overloaded", total=overloaded)

    # -- the work (the desk's thread; called directly, it runs on the caller's) -----------

    def handle(self, topic: str, payload: bytes, received: datetime | None = None) -> RequestOutcome:
        """Check, record and decide one message now (an unknown incident is refused at once)."""
        return self._take(_Incoming(topic, payload, received or self._now(), 0.0))

    def tick(self, now: datetime | None = None) -> None:
        """Record people's decisions, lapse undecided requests, end grants that ran out or were revoked."""
        now = now or self._now()
        for waiting in self._table.pending():
            if waiting.received_utc + timedelta(seconds=waiting.duration_s) <= now:
                detail = f"nobody approved it within the {waiting.duration_s} s it asked for"
                self._table.refuse(waiting.request_id, "lapsed", detail, "lapsed", now)
        self._announce(now)
        for grant in self._table.ending(now):
            self._end(grant, now)
        self.meter.table_now(*self._table.counts(now))

    def _take(self, item: _Incoming) -> RequestOutcome:
        verdict = self._checker.check(item.topic, item.payload)
        request, policy = verdict.request, verdict.policy
        if verdict.reason or request is None or policy is None:
            self._reject(item, verdict)
            return RequestOutcome("rejected", verdict.reason)
        rid = request.request_id
        if self._table.has(rid):
            self.meter.count("duplicates")
            log_event(_log, "break_glass_request_duplicate", logging.DEBUG, request_id=rid)
            return RequestOutcome("duplicate", "", rid)
        known = self._table.incident_sent_to(request.incident_id, policy.name)
        if not known and time.monotonic() < item.park_until_mono:
            with self._cond:
                self._parked.append(item)
            return RequestOutcome("parked", "", rid)
        agreement_id = policy.agreement_id
        record = request_record(request, agreement_id, verdict.kid, item.payload)
        self._audit.record_event("break_glass_request", ts=item.received, **record)
        self._table.add(request, agreement_id, item.received)
        self.meter.count("requests")
        log_event(
            _log,
            "break_glass_requested",
            request_id=rid,
            recipient=policy.name,
            incident=request.incident_id,
            widen=",".join(sorted(request.widen)),
            duration_s=request.duration_s,
            operator=request.operator,
        )
        if known:
            answer = answer_under(self._policies.agreement_for(policy), request, item.received)
        else:
            answer = TermsAnswer("refuse", "unknown_incident", f"no alert of the incident was sent to {policy.name}")
        if answer.action == "grant":
            self._table.grant(rid, "automatic", item.received)
        elif answer.action == "refuse":
            self._table.refuse(rid, answer.reason, answer.detail, "terms", item.received)
        else:
            self._pending(rid, item.received)
        self._announce(item.received)
        self.meter.table_now(*self._table.counts(item.received))
        kind: Literal["granted", "pending", "refused"] = (
            "granted" if answer.action == "grant" else ("pending" if answer.action == "pending" else "refused")
        )
        return RequestOutcome(kind, answer.reason, rid)

    def _pending(self, request_id: str, now: datetime) -> None:
        stored = self._table.get(request_id)
        if stored is None:
            return
        log_event(
            _log,
            "break_glass_pending",
            logging.WARNING,
            request_id=request_id,
            recipient=stored.recipient,
            incident=stored.incident_id,
            approve=f"edge-agent requests approve {request_id}",
        )
        self._notify("pending", stored, now)

    def _announce(self, now: datetime) -> None:
        """Record each decision not yet in the audit log; a grant widens from then on."""
        for stored in self._table.unannounced():
            kind, fields = decision_record(stored)
            self._audit.record_event(kind, ts=now, **fields)
            self._table.mark_announced(stored.request_id)
            if kind == "break_glass_granted":
                self.meter.count(f"granted_{stored.decided_by}")
                log_event(
                    _log,
                    "break_glass_granted",
                    logging.WARNING,
                    request_id=stored.request_id,
                    recipient=stored.recipient,
                    incident=stored.incident_id,
                    widen=",".join(stored.widen),
                    until=fields["until"],
                    granted_by=stored.decided_by,
                )
                self._notify("granted", stored, now, until=stored.until_utc, granted_by=stored.decided_by)
            else:
                self.meter.refused(stored.reason)
                log_event(
                    _log,
                    "break_glass_refused",
                    request_id=stored.request_id,
                    recipient=stored.recipient,
                    reason=stored.reason,
                    detail=stored.detail,
                )
                self._notify("refused", stored, now, reason=stored.reason)

    def _end(self, grant: StoredRequest, now: datetime) -> None:
        fields = ended_record(grant)
        self._audit.record_event("break_glass_ended", ts=now, **fields)
        self._table.mark_ended(grant.request_id, now)
        self.meter.count(f"ended_{fields['ended']}")
        log_event(
            _log,
            "break_glass_ended",
            request_id=grant.request_id,
            recipient=grant.recipient,
            incident=grant.incident_id,
            ended=fields["ended"],
            duration_s=fields["duration_s"],
        )
        self._notify("ended", grant, now, ended=fields["ended"], duration_s=fields["duration_s"])

    def _notify(self, event: str, stored: StoredRequest, now: datetime, **fields: Any) -> None:
        if self._notices is None:
            return
        sent = self._notices.send(event, stored, now, **fields)
        self.meter.count("notices_sent" if sent else "notices_failed")

    def _reject(self, item: _Incoming, verdict: RequestVerdict) -> None:
        self.meter.rejected(verdict.reason)
        if not self._audit_budget.allow():
            return
        self._audit.record_event("break_glass_refused", ts=item.received, **rejected_record(verdict, item.payload))
        log_event(
            _log,
            "break_glass_request_rejected",
            logging.WARNING,
            recipient=verdict.recipient or UNATTRIBUTED,
            reason=verdict.reason,
            detail=verdict.detail[:300],
        )

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        next_prune = time.monotonic()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._stopping, _TICK_S)
                if self._stopping:
                    return
                items, self._queue = list(self._queue), deque()
                parked, self._parked = list(self._parked), deque()  # looked at again first, in order
                self._busy = True
            try:
                for item in [*parked, *items]:
                    self._guarded(self._take, item)
                self._guarded(self.tick)
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + _PRUNE_EVERY_S
                    self._guarded(self._table.prune, self._now())
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _guarded(self, step: Callable[..., object], *args: Any) -> None:
        try:
            step(*args)
        except Exception:  # noqa: BLE001 - the desk outlives any failure (a full disk, a bug); the next tick retries
            _log.exception("event=break_glass_failed step=%s", getattr(step, "__name__", "?"))
