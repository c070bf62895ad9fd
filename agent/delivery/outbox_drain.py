"""The publisher's drain: outbox messages onto the current MQTT session, PUBACKs back into the outbox.

`OutboxDrain.run` is the body of the publisher's `mqtt-drain` thread. It
publishes outbox messages in order on the connected `MqttSession` (at most
`max_inflight` awaiting PUBACK), and turns the PUBACKs paho reports into one
durable outbox commit per batch: a message is deleted only after its PUBACK.
A new session (a reconnect) sends the backlog again from the start, because
nothing paho queued for a dead connection is resent behind our back.

A PUBACK carrying a failure reason code (MQTT 5, e.g. 0x87 not authorised
by the ACL) moves the message to the outbox's `rejected` table, logged as
`event=publish_rejected` and counted; it is neither deleted as delivered nor
retried in a loop that would block the queue.

An outbox operation that fails (the disk is full, an I/O error; the outbox
logs it as `event=outbox_storage_error` with the file and the reason) is
counted and retried by the one retry policy (`agent.backoff.Backoff`, 0.5 s
doubling to 10 s, logged as `event=drain_retry_wait`) rather than ending the
thread; so is any other error, with its traceback. Acknowledgements that
could not be committed are kept and committed with the next batch (until
then their messages stay in the outbox and would be sent again after a
restart, which receivers drop as duplicates), so delivery resumes by itself
once the disk has room again.

It also measures each alert's delivery time, from the moment it entered
the outbox (`OutboundMessage.created_utc`) to its PUBACK, into a histogram.
"""

from __future__ import annotations

__all__ = ["MqttSession", "OutboxDrain", "PublisherCounters"]

import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.backoff import Backoff
from agent.config import MqttConfig
from agent.delivery.outbox import Outbox, StoredMessage
from agent.errors import AgentError
from agent.histogram import DELIVERY_BUCKETS_S, DurationHistogram, HistogramSnapshot
from agent.logs import log_event

_log = logging.getLogger("agent.delivery.publisher")

ENVELOPE_SCHEMA_VERSION = "2"
CONTENT_TYPE = "application/jose+json"  # RFC 7515: a JWS in the JSON serialization
# Pauses after failed drain steps: soon at first, never spinning on a full disk, and at most
# 10 s of delay once space is back.
_RETRY = Backoff(initial_s=0.5, max_s=10.0, jitter=0.5)
_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class _Inflight:
    seq: int
    created_utc: datetime


@dataclass(slots=True)
class MqttSession:
    """One connection: its paho client and what is in flight on it."""

    client: paho.Client
    generation: int
    connack: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)
    connected: bool = False
    was_connected: bool = False
    connected_mono_s: float = 0.0  # time.monotonic() at the CONNACK
    lost_reason_code: int = 0  # reason of the disconnect paho reported (0 until then)
    lost_from_server: bool = False  # the broker sent a DISCONNECT packet with that reason
    unreachable: bool = False  # the TCP connection itself failed (refused, no route, timed out)
    inflight: dict[int, _Inflight] = field(default_factory=dict)  # mid -> outbox message
    status_mids: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class PublisherCounters:
    """What the publisher did since it started.

    Attributes:
        rejected: messages the broker refused with a failure reason code (moved aside in the outbox).
        storage_errors: outbox operations (reads of the queue, acknowledgement commits,
            rejections) that failed and were retried.
        delivery_seconds: time from entering the outbox to the broker's PUBACK, per acknowledged message.
        session_takeovers: times another client with this client id took the MQTT session
            (filled in by the publisher, which owns the connection).
    """

    rejected: int = 0
    storage_errors: int = 0
    delivery_seconds: HistogramSnapshot = field(
        default_factory=lambda: DurationHistogram(DELIVERY_BUCKETS_S).snapshot()
    )
    session_takeovers: int = 0


class OutboxDrain:
    """Drains an outbox onto whatever session is connected (see the module docstring).

    Args:
        config: the `mqtt` section (protocol, message expiry).
        outbox: the open outbox.
        connected_session: the session to publish on now, or None while there is no connection.
        stopping: set when the publisher closes; `run` returns after settling what came back.
        max_inflight: most messages awaiting PUBACK at once.
    """

    def __init__(
        self,
        config: MqttConfig,
        outbox: Outbox,
        *,
        connected_session: Callable[[], MqttSession | None],
        stopping: threading.Event,
        max_inflight: int,
    ) -> None:
        self._config = config
        self._outbox = outbox
        self._connected_session = connected_session
        self._stopping = stopping
        self._max_inflight = max_inflight
        self._wakeup = threading.Condition()
        self._events: deque[tuple[MqttSession, int, ReasonCode, datetime]] = deque()  # PUBACKs not yet settled
        self._unsettled: list[int] = []  # acknowledged seqs whose delete has not committed yet
        self._latency = DurationHistogram(DELIVERY_BUCKETS_S)
        self._rejected = self._storage_errors = 0
        self._after_seq, self._generation = 0, -1

    def wake(self) -> None:
        """Look again now (a session connected, a PUBACK came, the publisher is closing)."""
        with self._wakeup:
            self._wakeup.notify_all()

    def on_puback(self, session: MqttSession, mid: int, reason: ReasonCode) -> None:
        # Runs on paho's thread holding paho's locks: only record it, the drain thread resolves it.
        self._events.append((session, mid, reason, datetime.now(UTC)))
        self.wake()

    def counters(self) -> PublisherCounters:
        return PublisherCounters(self._rejected, self._storage_errors, self._latency.snapshot())

    # -- mqtt-drain thread ---------------------------------------------------------------

    def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                self._step()
                failures = 0
            except Exception as err:  # noqa: BLE001 - the drain must outlive any failure, a full disk above all
                failures += 1
                self._failed(err, failures)
        try:
            self._settle_acks()
        except Exception as err:  # noqa: BLE001 - closing: report what could not be committed
            self._failed(err, 1)

    def _step(self) -> None:
        self._settle_acks()
        session = self._connected_session()
        if session is None or len(session.inflight) >= self._max_inflight:
            with self._wakeup:
                self._wakeup.wait(_POLL_S)
            return
        if session.generation != self._generation:
            self._after_seq, self._generation = 0, session.generation  # new connection: resend the backlog
        batch = self._outbox.pending(self._after_seq, self._max_inflight - len(session.inflight))
        if not batch:
            self._outbox.wait_for_work(self._after_seq, _POLL_S)
            return
        self._after_seq = self._publish_batch(session, batch, self._after_seq)

    def _failed(self, err: Exception, failures: int) -> None:
        delay_s = _RETRY.delay_s(failures)
        fields = {"error": f"{type(err).__name__}: {err}", "unsettled_acks": len(self._unsettled)}
        if isinstance(err, (sqlite3.Error, OSError, AgentError)):
            self._storage_errors += 1
            log_event(_log, "drain_retry_wait", logging.WARNING, **fields, retry_in_s=f"{delay_s:.2f}")
        else:
            _log.exception("event=drain_failed error=%s retry_in_s=%.2f", fields["error"], delay_s)
        self._stopping.wait(delay_s)

    def _publish_batch(self, session: MqttSession, batch: list[StoredMessage], after_seq: int) -> int:
        for stored in batch:
            msg = stored.message
            info = session.client.publish(
                msg.topic, msg.payload, qos=1, retain=False, properties=self._properties(stored)
            )
            if info.rc != paho.MQTT_ERR_SUCCESS:
                break  # connection going down; the outbox still holds it for the next session
            session.inflight[info.mid] = _Inflight(stored.seq, msg.created_utc)
            after_seq = stored.seq
        return after_seq

    def _properties(self, stored: StoredMessage) -> Properties | None:
        if self._config.protocol != "5":
            return None
        msg = stored.message
        expiry_s = msg.expiry_s if msg.expiry_s is not None else self._config.message_expiry_s
        age_s = (datetime.now(UTC) - msg.created_utc).total_seconds()
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]  # paho leaves __init__ unannotated
        props.MessageExpiryInterval = max(1, int(expiry_s - age_s))
        props.ContentType = CONTENT_TYPE
        props.PayloadFormatIndicator = 1
        props.UserProperty = [
            ("schema-version", ENVELOPE_SCHEMA_VERSION),
            ("content-type", CONTENT_TYPE),
            ("message-id", msg.message_id),
        ]
        return props

    def _settle_acks(self) -> None:
        """Turn recorded PUBACKs into outbox deletes (one durable commit) or rejections."""
        while self._events:
            session, mid, reason, acked_utc = self._events.popleft()
            sent = session.inflight.pop(mid, None)
            if sent is None:
                session.status_mids.discard(mid)
                continue
            if reason.is_failure:
                self._reject(sent.seq, reason)
                continue
            self._unsettled.append(sent.seq)
            self._latency.observe(max(0.0, (acked_utc - sent.created_utc).total_seconds()))
        if self._unsettled:
            self._outbox.ack_many(self._unsettled)
            self._unsettled = []

    def _reject(self, seq: int, reason: ReasonCode) -> None:
        self._rejected += 1
        log_event(_log, "publish_rejected", logging.ERROR, seq=seq, reason_code=reason.value, reason=str(reason))
        self._outbox.reject(seq, reason.value, str(reason))
