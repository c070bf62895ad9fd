"""The delivery thread: route, sign, store and audit every alert, off the camera threads.

A camera thread hands each frame's alerts (and the frame they came from) to
`DeliverySink.submit`, which only queues them. One thread, `delivery.sink`,
takes them in order and, per alert, has the `AlertDispatcher` render, redact
and sign one message per entitled recipient, hands each message to a
`MessageStore` (the durable outbox for `run` and `replay --publish`, the
JSONL file for `replay`) and records each message the store accepted in the
audit log. One FIFO thread keeps the order a replay writes identical to the
order the pipeline made the alerts.

The hand-off queue is bounded twice. Alert frames are the heavy part (a
full-resolution image each), so at most `max_snapshot_batches` queued
batches keep theirs: past that, a new batch goes on without its frame (its
recipients get no snapshot) and the shed is counted and logged. Alerts
themselves are never dropped: past `max_alerts` queued alerts the camera
thread waits for room, which is logged and counted (the last resort; it
means delivery is far behind). A sink built with `when_full="wait"` (a
replay, where the same input must give the same output) waits instead of
shedding.

A failure while routing, storing or auditing one message is logged
(`event=delivery_failed`) and counted, and the next message goes on; the
dispatcher logs and counts a failing recipient itself (`event=route_failed`).
A message the store could not keep (the outbox's disk full, an I/O error:
the outbox counts it too, `OutboxStats.unstored`) is not audited, because
only what the store accepted will leave the box.

Copies a recipient's agreement holds for verification or withholds (see
`agent.delivery.sharing_terms`) are handed to the `HoldStore` and audited
(`held`, `withheld`), and counted.

With an `OpenIncidents` table (the live agent), the sink also records where
each incident stands once the store accepted one of its messages (open with
its last alert, or ended), so the next start can end what a `kill -9` left
open (`agent.delivery.open_incidents`).

`close` (and leaving the `with` block) delivers everything queued and joins
the thread.
"""

from __future__ import annotations

__all__ = ["DeliverySink", "HoldStore", "JsonlStore", "MessageStore", "OutboxStore", "SinkCounters"]

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from types import TracebackType
from typing import Literal, Self

from agent.alerts.schema import Alert
from agent.delivery.message_stores import HoldStore, JsonlStore, MessageStore, OutboxStore, withhold
from agent.delivery.open_incidents import OpenIncidents
from agent.delivery.routing import AlertDispatcher, OutgoingAlert, Routed
from agent.delivery.sharing_terms import HeldCopy, Withheld, held_record
from agent.logs import log_event
from agent.privacy.audit import AuditLog
from agent.values.alert_moment import AlertMoment

_log = logging.getLogger("agent.delivery.sink")
WhenFull = Literal["shed-snapshots", "wait"]


@dataclass(frozen=True, slots=True)
class SinkCounters:
    """What the sink did since it started.

    Attributes:
        alerts_submitted: alerts handed to `submit`.
        messages_delivered: messages the store accepted (and, with an audit log, audited).
        messages_refused: messages the store turned down (the outbox's drop rule; it logs each).
        snapshots_shed: alert frames let go because the queue already held enough of them.
        snapshots_withheld: messages whose recipient may get a snapshot but got a `withheld` note.
        copies_withheld: copies an agreement kept back (not in force, incident dismissed); audited.
        copies_held: copies put on hold for their agreement's verifier; audited.
        submits_blocked: times a camera thread had to wait for room in the queue.
        failures: messages (or recipients) lost to an error while routing, storing or auditing.
        queue_depth: alerts waiting for the delivery thread now.
    """

    alerts_submitted: int = 0
    messages_delivered: int = 0
    messages_refused: int = 0
    snapshots_shed: int = 0
    snapshots_withheld: int = 0
    copies_withheld: int = 0
    copies_held: int = 0
    submits_blocked: int = 0
    failures: int = 0
    queue_depth: int = 0


@dataclass(frozen=True, slots=True)
class _Batch:
    alerts: tuple[Alert, ...]
    moment: AlertMoment | None
    # The policy in force when the alerts were made; a reload after that does not re-route them.
    dispatcher: AlertDispatcher


class DeliverySink:
    """Routes, stores and audits alerts on its own thread (see the module docstring).

    Args:
        dispatcher: routes each alert to its recipients (swap it with `use_dispatcher`).
        store: keeps each message.
        audit: records each accepted message; None records nothing (a plain replay sends nothing).
        incidents: where each incident stands, recorded as its messages are accepted; None records nothing.
        holds: keeps the copies an agreement holds for verification or withholds
            (`agent.delivery.release_gate.ReleaseGate`); None keeps only their audit record.
        max_alerts: queued alerts past which `submit` waits.
        max_snapshot_batches: queued batches that may keep their frame.
        when_full: "shed-snapshots" (live: never hold a camera up for a picture) or "wait"
            (replay: every frame kept, the same output for the same input).
        queued_log_level: level of the `alert_queued` line logged per message.
        thread_name: name of the delivery thread.
    """

    def __init__(
        self,
        dispatcher: AlertDispatcher,
        store: MessageStore,
        *,
        audit: AuditLog | None = None,
        incidents: OpenIncidents | None = None,
        holds: HoldStore | None = None,
        max_alerts: int = 1000,
        max_snapshot_batches: int = 4,
        when_full: WhenFull = "shed-snapshots",
        queued_log_level: int = logging.INFO,
        thread_name: str = "delivery.sink",
    ) -> None:
        if max_alerts < 1 or max_snapshot_batches < 1:
            raise ValueError(f"sink bounds must be at least 1, got {max_alerts} and {max_snapshot_batches}")
        self._dispatcher = dispatcher
        self._store = store
        self._audit = audit
        self._incidents = incidents
        self._holds = holds
        self._max_alerts = max_alerts
        self._max_frames = max_snapshot_batches
        self._shed = when_full == "shed-snapshots"
        self._wait_level = logging.WARNING if self._shed else logging.DEBUG
        self._queued_level = queued_log_level
        self._cond = threading.Condition()
        self._queue: deque[_Batch] = deque()
        self._alerts_queued = self._frames_queued = 0
        self._busy = self._closed = False
        self._counts = {f.name: 0 for f in fields(SinkCounters)}
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        with self._cond:
            if self._thread.ident is None:
                self._thread.start()

    def close(self) -> None:
        """Deliver everything queued, then stop the thread; later submits are refused (and logged)."""
        self.start()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def flush(self, timeout_s: float) -> bool:
        """Wait until everything submitted so far is delivered; False when `timeout_s` ran out first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout_s)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    # -- any thread -----------------------------------------------------------------------

    @property
    def dispatcher(self) -> AlertDispatcher:
        return self._dispatcher

    def use_dispatcher(self, dispatcher: AlertDispatcher) -> None:
        """Route alerts submitted from now on with `dispatcher` (a reload's new policies)."""
        with self._cond:
            self._dispatcher = dispatcher

    def counters(self) -> SinkCounters:
        with self._cond:
            return SinkCounters(**{**self._counts, "queue_depth": self._alerts_queued})

    def submit(self, alerts: tuple[Alert, ...], moment: AlertMoment | None = None) -> None:
        """Queue one frame's alerts for delivery (returns at once unless the queue is full of alerts)."""
        if not alerts:
            return
        with self._cond:
            self._counts["alerts_submitted"] += len(alerts)
            if self._closed:
                self._refuse(alerts)
                return
            dispatcher = self._dispatcher
            if moment is not None and not dispatcher.snapshots_wanted:
                moment = None  # no recipient may get a picture: do not hold the frame
            if moment is not None and self._shed and self._frames_queued >= self._max_frames:
                moment = None
                self._counts["snapshots_shed"] += 1
                log_event(
                    _log,
                    "snapshot_shed",
                    logging.WARNING,
                    camera=alerts[0].detection.camera_id,
                    queued_frames=self._frames_queued,
                    shed_total=self._counts["snapshots_shed"],
                )
            self._wait_for_room(alerts, moment)
            if self._closed:  # closed while this camera waited: the delivery thread may be gone
                self._refuse(alerts)
                return
            self._queue.append(_Batch(alerts, moment, dispatcher))
            self._alerts_queued += len(alerts)
            self._frames_queued += moment is not None
            self._cond.notify_all()

    def _refuse(self, alerts: tuple[Alert, ...]) -> None:
        self._counts["failures"] += len(alerts)
        log_event(
            _log,
            "delivery_failed",
            logging.ERROR,
            stage="submit",
            camera=alerts[0].detection.camera_id,
            alerts=len(alerts),
            alert_id=alerts[0].identifier,
            error="the delivery sink is closed",
        )

    def _wait_for_room(self, alerts: tuple[Alert, ...], moment: AlertMoment | None) -> None:
        def full() -> bool:
            # A batch larger than the whole bound still goes in once the queue is empty.
            over_alerts = self._alerts_queued > 0 and self._alerts_queued + len(alerts) > self._max_alerts
            over_frames = moment is not None and self._frames_queued >= self._max_frames
            return not self._closed and (over_alerts or over_frames)

        if not full():
            return
        self._counts["submits_blocked"] += 1
        log_event(
            _log,
            "delivery_backpressure",
            self._wait_level,
            camera=alerts[0].detection.camera_id,
            queued_alerts=self._alerts_queued,
            queued_frames=self._frames_queued,
            blocked_total=self._counts["submits_blocked"],
        )
        self._cond.wait_for(lambda: not full())

    # -- delivery thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue) or self._closed)
                if not self._queue:
                    return  # closed and drained
                batch = self._queue.popleft()
                self._alerts_queued -= len(batch.alerts)
                self._frames_queued -= batch.moment is not None
                self._busy = True
                self._cond.notify_all()
            try:
                for alert in batch.alerts:
                    self._deliver(alert, batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _deliver(self, alert: Alert, batch: _Batch) -> None:
        try:
            routed = batch.dispatcher.dispatch(alert, batch.moment)
        except Exception as err:  # noqa: BLE001 - one alert's failure must not stop delivery
            self._failed("route", alert, None, err)
            return
        self._count_routed(routed)
        accepted = sum(self._store_one(alert, message) for message in routed.messages)
        for copy in routed.held:
            self._guard("hold", alert, self._hold, copy)
        for withheld in routed.withheld:
            self._guard("withhold", alert, self._withhold, alert, withheld)
        # An end nobody is entitled to still closes the incident; one whose messages were all lost stays open.
        if self._incidents is not None and (
            accepted or routed.held or (alert.detection.phase == "end" and not routed.messages)
        ):
            try:
                self._incidents.record(alert)
            except Exception as err:  # noqa: BLE001 - stored already; say the incident record is missing
                self._failed("incident_record", alert, None, err)

    def _store_one(self, alert: Alert, message: OutgoingAlert) -> bool:
        try:
            accepted = self._store.store(message)
        except Exception as err:  # noqa: BLE001 - one message's failure must not stop the rest
            self._failed("store", alert, message, err)
            return False
        if accepted and self._audit is not None:
            try:
                self._audit.record(message)  # accepted: it will leave the box
            except Exception as err:  # noqa: BLE001 - stored already; say the audit record is missing
                self._failed("audit", alert, message, err)
        with self._cond:
            self._counts["messages_delivered" if accepted else "messages_refused"] += 1
        log_event(
            _log,
            "alert_queued",
            self._queued_level,
            camera=alert.detection.camera_id,
            rule=alert.detection.rule,
            phase=alert.detection.phase,
            recipient=message.recipient,
            alert_id=alert.identifier,
            accepted=accepted,
        )
        return accepted

    def _count_routed(self, routed: Routed) -> None:
        with self._cond:
            self._counts["failures"] += routed.failures
            self._counts["snapshots_withheld"] += routed.snapshots_withheld
            self._counts["copies_withheld"] += len(routed.withheld)
            self._counts["copies_held"] += len(routed.held)

    def _hold(self, copy: HeldCopy) -> None:
        if self._holds is not None:
            self._holds.hold(copy)
        if self._audit is not None:
            self._audit.record_event("held", **held_record(copy))
        log_event(_log, "alert_held", recipient=copy.recipient, alert_id=copy.alert.identifier, verifier=copy.verifier)

    def _withhold(self, alert: Alert, withheld: Withheld) -> None:
        withhold(self._holds, self._audit, alert, withheld)

    def _guard(self, stage: str, alert: Alert, step: Callable[..., None], *args: object) -> None:
        try:
            step(*args)
        except Exception as err:  # noqa: BLE001 - one copy's failure must not stop the rest
            self._failed(stage, alert, None, err)

    def _failed(self, stage: str, alert: Alert, message: OutgoingAlert | None, err: Exception) -> None:
        with self._cond:
            self._counts["failures"] += 1
        log_event(
            _log,
            "delivery_failed",
            logging.ERROR,
            stage=stage,
            camera=alert.detection.camera_id,
            rule=alert.detection.rule,
            alert_id=alert.identifier,
            recipient=message.recipient if message is not None else "",
            error=f"{type(err).__name__}: {err}",
        )
