"""The agency side: receive alerts, verify their signatures, drop duplicates.

`AlertReceiver` subscribes to a topic filter and hands each accepted alert
to a queue the caller reads (`get(timeout_s)`); every message goes through
`verify_envelope` (bad signature, unknown key or malformed: rejected,
counted, reported through `on_reject`) and then `DuplicateFilter` keyed by
(alert id, message id), where the message id is the payload digest the
publisher also uses. At-least-once delivery means copies do arrive (after a
reconnect, or a replayed old message): they are counted and dropped.

A lost connection is retried by the one retry policy (`agent.backoff.Backoff`)
on the `agency-reconnect` thread, until the receiver is closed or the broker
refuses it. For a subscriber that must not miss alerts while it is away, give
a fixed `client_id` and `session_expiry_s > 0`: the broker then keeps the
subscription and queues QoS 1 messages for it across reconnects.
"""

from __future__ import annotations

__all__ = [
    "AlertReceiver",
    "BrokerUrl",
    "DuplicateFilter",
    "ReceivedAlert",
    "ReceiverOptions",
    "parse_broker_url",
]

import contextlib
import logging
import queue
import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.backoff import Backoff
from agent.delivery.outbox import message_id_for
from agent.delivery.signing import SignatureInvalid, TrustStore, VerifiedAlert, verify_envelope
from agent.delivery.tls import client_tls_context, use_tls
from agent.errors import AgentError, PublishRejected
from agent.logs import log_event

_log = logging.getLogger("agent.agency.subscriber")

# An agency subscriber is one process, not a fleet of boxes: it retries soon and
# often (0.2 s doubling to 2 s), so a broker restart costs it seconds of alerts at most.
RECONNECT = Backoff(initial_s=0.2, max_s=2.0)


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerUrl:
    """`mqtt://host[:1883]` or `mqtts://host[:8883]`.

    Raises:
        AgentError: another scheme, or no host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise AgentError(f"broker URL {url!r} must look like mqtt://host:port or mqtts://host:port")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise AgentError(f"broker URL {url!r} has a bad port") from None
    return BrokerUrl(parts.hostname, port, tls)


class DuplicateFilter:
    """Remembers the last `capacity` (alert id, message id) keys; `is_duplicate` records as it checks."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._capacity = capacity

    def is_duplicate(self, alert_id: str, message_id: str) -> bool:
        key = (alert_id, message_id)
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        self._seen[key] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)  # bounded: a very old copy may pass again
        return False


@dataclass(frozen=True, slots=True)
class ReceivedAlert:
    """An accepted alert: verified and seen for the first time."""

    topic: str
    message_id: str
    verified: VerifiedAlert


@dataclass(frozen=True, slots=True)
class ReceiverOptions:
    """How to reach the broker; see `edge-agent subscribe --help` for each option."""

    url: BrokerUrl
    topic_filter: str
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    verify_hostname: bool = True
    username: str | None = None
    password: str | None = None
    client_id: str = ""
    session_expiry_s: int = 0


RejectHook = Callable[[str, str], None]  # (topic, reason)


def _join_network_thread(client: paho.Client) -> None:
    """Stop paho's network thread and wait for it to end."""
    # paho clears its thread handle as the thread returns, between loop_stop's own check
    # and its join: losing that race raises AttributeError and means the thread has ended.
    with contextlib.suppress(AttributeError):
        client.loop_stop()


class AlertReceiver:
    """Subscribes, verifies and deduplicates; a context manager owning paho's network thread
    and the `agency-reconnect` thread."""

    def __init__(self, options: ReceiverOptions, trust: TrustStore, on_reject: RejectHook | None = None) -> None:
        self._opts = options
        self._trust = trust
        self._on_reject = on_reject
        self._rng = random.Random()
        self._dedup = DuplicateFilter()
        self._accepted: queue.Queue[ReceivedAlert] = queue.Queue()
        self._subscribed = threading.Event()
        self._refusal: PublishRejected | None = None
        self._lock = threading.Lock()
        self._lost = threading.Event()
        self._connected_since_loss = False
        self._stopping = threading.Event()
        self._reconnector = threading.Thread(target=self._run_reconnect, name="agency-reconnect", daemon=True)
        self.rejected = 0
        self.duplicates = 0
        self._client = self._make_client()

    def _make_client(self) -> paho.Client:
        opts = self._opts
        # paho's own reconnect is off: `_run_reconnect` retries by the shared policy.
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=opts.client_id, protocol=paho.MQTTv5, reconnect_on_failure=False
        )
        if opts.username is not None:
            client.username_pw_set(opts.username, opts.password)
        if opts.url.tls:
            context = client_tls_context(
                ca_file=opts.ca_file,
                cert_file=opts.cert_file,
                key_file=opts.key_file,
                verify_hostname=opts.verify_hostname,
            )
            use_tls(client, context)
        client.on_connect = self._on_connect
        client.on_disconnect = lambda c, u, flags, reason, p: self._lost.set()
        client.on_subscribe = lambda c, u, mid, codes, p: self._subscribed.set()
        client.on_message = self._on_message
        return client

    def __enter__(self) -> Self:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves __init__ unannotated
        if self._opts.session_expiry_s > 0:
            props.SessionExpiryInterval = self._opts.session_expiry_s
        try:
            self._client.connect(
                self._opts.url.host,
                self._opts.url.port,
                30,
                clean_start=self._opts.session_expiry_s == 0,
                properties=props,
            )
        except OSError as err:
            raise AgentError(f"cannot connect to {self._opts.url.host}:{self._opts.url.port}: {err}") from err
        self._client.loop_start()
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
        self._client.disconnect()
        _join_network_thread(self._client)

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
        """One connection attempt; True once it went out (its CONNACK comes on the network thread)."""
        try:
            self._client.reconnect()
        except OSError as err:  # refused, unreachable, TLS: try again later
            log_event(_log, "connect_failed", logging.WARNING, host=self._opts.url.host, error=str(err))
            return False
        self._client.loop_start()
        return True

    def wait_subscribed(self, timeout_s: float) -> None:
        """Block until the subscription is in place.

        Raises:
            PublishRejected: the broker refused the connection.
            AgentError: no subscription within `timeout_s`.
        """
        if not self._subscribed.wait(timeout_s):
            if self._refusal is not None:
                raise self._refusal
            raise AgentError(f"no subscription to {self._opts.topic_filter!r} within {timeout_s:g} s")

    def get(self, timeout_s: float | None) -> ReceivedAlert | None:
        """The next accepted alert, or None after `timeout_s`."""
        try:
            return self._accepted.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def _on_connect(
        self, client: paho.Client, userdata: object, flags: object, reason: ReasonCode, properties: object
    ) -> None:
        if reason.is_failure:
            self._refusal = PublishRejected(f"broker refused the connection: {reason}", reason_code=reason.value)
            client.disconnect()
            return
        self._connected_since_loss = True
        client.subscribe(self._opts.topic_filter, qos=1)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        result = self.accept(msg.topic, bytes(msg.payload))
        if result is not None:
            self._accepted.put(result)

    def accept(self, topic: str, payload: bytes) -> ReceivedAlert | None:
        """Verify and deduplicate one message; None when rejected or a duplicate."""
        try:
            verified = verify_envelope(payload, self._trust)
        except SignatureInvalid as err:
            with self._lock:
                self.rejected += 1
            if self._on_reject is not None:
                self._on_reject(topic, str(err))
            return None
        message_id = message_id_for(payload)
        with self._lock:
            if self._dedup.is_duplicate(verified.alert_id, message_id):
                self.duplicates += 1
                return None
        return ReceivedAlert(topic, message_id, verified)
