"""The receiving side's MQTT client: every message verified, the accepted ones handed over, then acknowledged.

`AlertReceiver` subscribes to its topic filters and runs each message
through an `AlertVerifier` on paho's network thread. Whatever a message
holds, the thread survives it: a rejected message (see
`agent.agency.rejections`) is counted by reason, logged
(`event=alert_rejected`, or `event=alert_forged` at error level for a
forgery), reported through `on_reject` and acknowledged at once, so a
persistent session does not get it again and again; a failure of the
receiver itself on one message counts as `internal_error` and is logged with
its traceback.

An accepted alert is queued for the caller (`get`). Only after the caller
has used it does `done(item)` record it in the durable seen-store, send the
broker its PUBACK (manual acknowledgement) and, with a `StatusSigner`,
publish the signed `received` status. So an alert is acknowledged only once
it was used: after a crash in between, the broker delivers it again
(at-least-once), and once it was used, a replay is refused as a duplicate,
across restarts too. Copies that arrive while one is still queued are
acknowledged with it. The caller must call `done` for every item it takes:
the broker stops sending once its in-flight window is unacknowledged.

A lost connection is retried by the one retry policy (`agent.backoff.Backoff`)
on the `agency-reconnect` thread, until the receiver is closed or the broker
refuses it; with several brokers (`ConnectionOptions.urls`, nodes of one
cluster) each attempt goes to the next one (`event=broker_failover`), where
the session is resubscribed. For a receiver that must not miss alerts while
it is away, give a fixed `client_id` and `session_expiry_s > 0`
(`agent.agency.broker_connection`). Several receivers can hand their alerts
to one queue (`handoff`; `agent.agency.receiver_group`).
"""

from __future__ import annotations

__all__ = ["AlertReceiver", "ReceivedAlert", "ReceiverOptions", "parse_broker_url"]  # values: received_alert

import contextlib
import logging
import queue
import random
import threading
import time
from types import TracebackType
from typing import Self

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from agent.agency.alert_verifier import AcceptedAlert, AlertVerifier
from agent.agency.broker_connection import connect, new_client, parse_broker_url
from agent.agency.received_alert import PlainHook, ReceivedAlert, ReceiverOptions, RejectHook, RenderHook
from agent.agency.rejections import Rejected, RejectionCounts, log_rejection
from agent.agency.seen_store import SeenStoreError
from agent.agency.status_sender import StatusSigner
from agent.alerts.status import AlertStatus
from agent.backoff import Backoff
from agent.delivery.site_client import send_without_delay
from agent.errors import AgentError, PublishRejected
from agent.logs import log_event

_log = logging.getLogger("agent.agency.subscriber")

# A receiver is one process, not a fleet of boxes: it retries soon and often
# (0.2 s doubling to 2 s), so a broker restart costs it seconds of alerts at most.
RECONNECT = Backoff(initial_s=0.2, max_s=2.0)
# At close, how long statuses still on their way may take to reach the broker.
STATUS_FLUSH_S = 5.0


def _join_network_thread(client: paho.Client) -> None:
    """Stop paho's network thread and wait for it to end."""
    # paho clears its thread handle as the thread returns, between loop_stop's own check
    # and its join: losing that race raises AttributeError and means the thread has ended.
    with contextlib.suppress(AttributeError):
        client.loop_stop()


class AlertReceiver:
    """Subscribes, verifies, hands over and acknowledges (see the module docstring).

    A context manager owning paho's network thread and the `agency-reconnect` thread. `handoff`:
    the queue accepted alerts go to (default: its own), each marked with `origin`.
    """

    def __init__(
        self,
        options: ReceiverOptions,
        verifier: AlertVerifier,
        *,
        on_reject: RejectHook | None = None,
        status_signer: StatusSigner | None = None,
        render: RenderHook | None = None,
        on_plain: PlainHook | None = None,
        handoff: queue.Queue[ReceivedAlert] | None = None,
        origin: int = 0,
    ) -> None:
        if not options.topic_filters:
            raise AgentError("no topic filter to subscribe to")
        self._opts = options
        self._verifier = verifier
        self._on_reject = on_reject
        self._status = status_signer
        self._render = render
        self._on_plain = on_plain
        self._rng = random.Random()
        self._accepted: queue.Queue[ReceivedAlert] = queue.Queue() if handoff is None else handoff
        self._origin, self._url_index = origin, 0
        self._pending: dict[tuple[str, str], ReceivedAlert] = {}
        self._subscribed = threading.Event()
        self._subscribe_error: AgentError | None = None
        self._refusal: PublishRejected | None = None
        self._fatal: AgentError | None = None
        self._lock = threading.Lock()
        self._connection = 0
        self._lost = threading.Event()
        self._connected_since_loss = False
        self._stopping = threading.Event()
        self._reconnector = threading.Thread(target=self._run_reconnect, name="agency-reconnect", daemon=True)
        self.counts = RejectionCounts()
        self.accepted = 0
        self.statuses_sent = 0
        self._status_infos: list[paho.MQTTMessageInfo] = []
        self._filters = options.topic_filters + options.plain_filters
        # Every message is checked against the plain filters: exact topics (a site's status and
        # stats, two per site) by a set look-up, not one match per filter per message.
        self._plain_topics = frozenset(f for f in options.plain_filters if "+" not in f and "#" not in f)
        self._plain_patterns = tuple(f for f in options.plain_filters if f not in self._plain_topics)
        self._client = new_client(options.connection, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = lambda c, u, flags, reason, p: self._lost.set()
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish

    @property
    def rejected(self) -> int:
        """Messages rejected for any reason but being a duplicate."""
        return self.counts.total()

    @property
    def duplicates(self) -> int:
        return self.counts.get("duplicate")

    def __enter__(self) -> Self:
        try:
            self._url_index = connect(self._client, self._opts.connection)
            self._client.loop_start()
        except AgentError as err:
            if not self._opts.start_without_broker:
                raise
            log_event(_log, "connect_failed", logging.WARNING, error=str(err))
            self._lost.set()  # the reconnect thread keeps trying
        self._reconnector.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._lost.set()
        if self._reconnector.ident is not None:
            # Joined first, so no reconnect can start a network loop after the one stopped here.
            self._reconnector.join()
        self._flush_statuses(STATUS_FLUSH_S)
        self._client.disconnect()
        _join_network_thread(self._client)

    def _flush_statuses(self, budget_s: float) -> None:
        """Give statuses still on their way a moment to reach the broker before disconnecting."""
        deadline = time.monotonic() + budget_s
        with self._lock:
            waiting = [info for info in self._status_infos if not info.is_published()]
        for info in waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                log_event(_log, "statuses_unsent", logging.WARNING, count=sum(not i.is_published() for i in waiting))
                return
            with contextlib.suppress(RuntimeError, ValueError):  # not connected: paho keeps it queued
                info.wait_for_publish(left)

    def _run_reconnect(self) -> None:
        """After each lost connection: wait by the backoff and reconnect, until closed or refused."""
        failures = 0
        while self._lost.wait() and not (self._stopping.is_set() or self._refusal is not None):
            _join_network_thread(self._client)  # it ends with its connection
            self._lost.clear()
            if self._connected_since_loss:
                failures, self._connected_since_loss = 0, False  # restart after a connection that worked
            while True:
                failures += 1
                delay = RECONNECT.delay_s(failures, self._rng)
                log_event(_log, "reconnect_wait", delay_s=f"{delay:.2f}", attempt=failures)
                if self._stopping.wait(delay):
                    return
                if self._reconnect_once():
                    break

    def _reconnect_once(self) -> bool:
        """One connection attempt, from the broker after the one last used, round the list; True once it
        went out (its CONNACK comes on the network thread)."""
        urls, left = self._opts.connection.urls, self._url_index
        try:
            self._url_index = connect(self._client, self._opts.connection, first=(left + 1) % len(urls))
        except AgentError as err:  # refused, unreachable, TLS: try again later
            log_event(_log, "connect_failed", logging.WARNING, error=str(err))
            return False
        if self._url_index != left:
            log_event(_log, "broker_failover", logging.WARNING, left=str(urls[left]), now=str(urls[self._url_index]))
        self._client.loop_start()
        return True

    @property
    def subscription_settled(self) -> bool:
        """Whether `wait_subscribed` would return or raise at once: subscribed, or refused."""
        return self._subscribed.is_set() or self._refusal is not None

    def wait_subscribed(self, timeout_s: float) -> None:
        """Block until the subscriptions are in place.

        Raises:
            PublishRejected: the broker refused the connection.
            AgentError: a filter was refused, or no subscription within `timeout_s`.
        """
        if not self._subscribed.wait(timeout_s):
            if self._refusal is not None:
                raise self._refusal
            raise AgentError(f"no subscription to {', '.join(self._opts.topic_filters)} within {timeout_s:g} s")
        if self._subscribe_error is not None:
            raise self._subscribe_error

    def raise_failure(self) -> None:
        """Raise what stopped the receiver, if anything did (`get` does it too).

        Raises:
            SeenStoreError: the seen-store failed, so duplicates can no longer be told apart.
        """
        if self._fatal is not None:
            raise self._fatal

    def get(self, timeout_s: float | None) -> ReceivedAlert | None:
        """The next accepted alert, or None after `timeout_s`; give it to `done` once used.

        Raises:
            SeenStoreError: the seen-store failed, so duplicates can no longer be told apart.
        """
        self.raise_failure()
        try:
            return self._accepted.get(timeout=timeout_s)
        except queue.Empty:
            if self._fatal is not None:
                raise self._fatal from None
            return None

    def done(self, item: ReceivedAlert, *, send_received: bool = True) -> AlertStatus | None:
        """The caller has used `item`: remember it (durably), acknowledge it, send `received`.

        Returns the `received` status sent, if one was (`send_received` False: the
        caller found it handled before, e.g. by another replica, which sent it).

        Raises:
            SeenStoreError: it could not be remembered (it stays unacknowledged, so it comes again).
        """
        accepted = item.accepted
        self._verifier.remember(accepted)
        with self._lock:
            self._pending.pop((accepted.site.site_id, accepted.alert.identifier), None)
            acks = [(mid, qos) for conn, mid, qos in item._acks if conn == self._connection and qos > 0]
            self.accepted += 1
        for mid, qos in acks:
            self._client.ack(mid, qos)
        if self._status is not None and send_received:
            return self._send_received(self._status, accepted)
        return None

    def _send_received(self, signer: StatusSigner, accepted: AcceptedAlert) -> AlertStatus | None:
        alert = accepted.alert
        try:
            status = signer.make(
                site_id=accepted.site.site_id,
                alert_id=alert.identifier,
                incident_id=alert.incident_id or alert.identifier,
                status="received",
            )
        except AgentError as err:
            log_event(_log, "status_not_sent", logging.WARNING, alert_id=alert.identifier, error=str(err))
            return None
        topic = StatusSigner.topic(accepted.site.topic_prefix, status)
        info = self._client.publish(topic, signer.sign(status), qos=1)
        with self._lock:
            self.statuses_sent += 1
            self._status_infos = [i for i in self._status_infos if not i.is_published()] + [info]
        log_event(_log, "status_sent", status="received", alert_id=alert.identifier, topic=topic)
        return status

    def _on_connect(
        self, client: paho.Client, userdata: object, flags: object, reason: ReasonCode, properties: object
    ) -> None:
        if reason.is_failure:
            self._refusal = PublishRejected(f"broker refused the connection: {reason}", reason_code=reason.value)
            client.disconnect()
            return
        send_without_delay(client)
        with self._lock:
            self._connection += 1
        self._connected_since_loss = True
        client.subscribe([(f, 1) for f in self._filters])

    def _on_subscribe(
        self, client: paho.Client, userdata: object, mid: int, codes: list[ReasonCode], properties: object
    ) -> None:
        refused = [f for f, code in zip(self._filters, codes, strict=False) if code.is_failure]
        if refused:
            self._subscribe_error = AgentError(f"the broker refused the subscription to {', '.join(refused)}")
        self._subscribed.set()

    def _on_publish(self, client: paho.Client, userdata: object, mid: int, reason: ReasonCode, p: object) -> None:
        if reason.is_failure:
            log_event(_log, "status_refused", logging.WARNING, mid=mid, reason=str(reason))

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        # Whatever happens here must not escape: an exception would end paho's network thread.
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = repr(bytes(msg._topic))  # paho keeps the raw bytes only there
        try:
            if self._is_plain(topic):
                self._plain(topic, bytes(msg.payload))
                self._ack(msg.mid, msg.qos)
                return
            self._handle(topic, bytes(msg.payload), msg.mid, msg.qos)
        except SeenStoreError as err:
            # Not acknowledged: the broker keeps the message for when the store works again.
            log_event(_log, "seen_store_failed", logging.ERROR, error=str(err))
            self._fatal = err
        except Exception:  # noqa: BLE001 - one bad message must not stop the receiver
            _log.exception("event=receiver_failed topic=%r", topic)
            self._reject(topic, Rejected("internal_error", "the receiver failed on this message"))
            self._ack(msg.mid, msg.qos)

    def _is_plain(self, topic: str) -> bool:
        return topic in self._plain_topics or any(paho.topic_matches_sub(f, topic) for f in self._plain_patterns)

    def _plain(self, topic: str, payload: bytes) -> None:
        if self._on_plain is None:
            return
        try:
            self._on_plain(topic, payload)
        except Exception:  # noqa: BLE001 - a failing hook must not stop the receiver
            _log.exception("event=plain_hook_failed topic=%r", topic)

    def _handle(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        try:
            accepted = self._verifier.check(topic, payload)
            rendered = self._render(accepted) if self._render is not None else None
        except Rejected as why:
            self._reject(topic, why)
            self._ack(mid, qos)
            return
        key = (accepted.site.site_id, accepted.alert.identifier)
        with self._lock:
            waiting = self._pending.get(key)
            if waiting is not None:  # a copy of one not yet used: acknowledged with it
                waiting._acks.append((self._connection, mid, qos))
            else:
                item = ReceivedAlert(accepted, rendered, payload, [(self._connection, mid, qos)], self._origin)
                self._pending[key] = item
        if waiting is not None:
            self._reject(topic, Rejected("duplicate", f"alert {key[1]} of site {key[0]} is already being handled"))
            return
        self._accepted.put(item)

    def _ack(self, mid: int, qos: int) -> None:
        if qos > 0:
            self._client.ack(mid, qos)

    def _reject(self, topic: str, why: Rejected) -> None:
        self.counts.add(why.reason)
        log_rejection(_log, topic, why)
        if self._on_reject is not None:
            try:
                self._on_reject(topic, why)
            except Exception:  # noqa: BLE001 - a failing report must not stop the receiver
                _log.exception("event=reject_hook_failed topic=%r", topic)
