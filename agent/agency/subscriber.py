"""The agency side: receive alerts, verify their signatures, drop duplicates.

`AlertReceiver` subscribes to a topic filter and hands each accepted alert
to a queue the caller reads (`get(timeout_s)`); every message goes through
`verify_envelope` (bad signature, unknown key or malformed: rejected,
counted, reported through `on_reject`) and then `DuplicateFilter` keyed by
(alert id, message id), where the message id is the payload digest the
publisher also uses. At-least-once delivery means copies do arrive (after a
reconnect, or a replayed old message): they are counted and dropped.

For a subscriber that must not miss alerts while it is away, give a fixed
`client_id` and `session_expiry_s > 0`: the broker then keeps the
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

import queue
import ssl
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

from agent.delivery.outbox import message_id_for
from agent.delivery.signing import SignatureInvalid, TrustStore, VerifiedAlert, verify_envelope
from agent.errors import AgentError, PublishRejected


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


class AlertReceiver:
    """Subscribes, verifies and deduplicates; a context manager owning paho's network thread."""

    def __init__(self, options: ReceiverOptions, trust: TrustStore, on_reject: RejectHook | None = None) -> None:
        self._opts = options
        self._trust = trust
        self._on_reject = on_reject
        self._dedup = DuplicateFilter()
        self._accepted: queue.Queue[ReceivedAlert] = queue.Queue()
        self._subscribed = threading.Event()
        self._refusal: PublishRejected | None = None
        self._lock = threading.Lock()
        self.rejected = 0
        self.duplicates = 0
        self._client = self._make_client()

    def _make_client(self) -> paho.Client:
        opts = self._opts
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=opts.client_id, protocol=paho.MQTTv5)
        client.reconnect_delay_set(0.2, 2.0)
        if opts.username is not None:
            client.username_pw_set(opts.username, opts.password)
        if opts.url.tls:
            try:
                ctx = ssl.create_default_context(cafile=str(opts.ca_file) if opts.ca_file else None)
                ctx.check_hostname = opts.verify_hostname
                if opts.cert_file is not None and opts.key_file is not None:
                    ctx.load_cert_chain(str(opts.cert_file), str(opts.key_file))
            except (OSError, ssl.SSLError) as err:
                raise AgentError(f"cannot load TLS files: {err}") from err
            client.tls_set_context(ctx)
            client.tls_insecure_set(not opts.verify_hostname)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda c, u, mid, codes, p: self._subscribed.set()
        client.on_message = self._on_message
        return client

    def __enter__(self) -> Self:
        props = Properties(PacketTypes.CONNECT)
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
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client.disconnect()
        self._client.loop_stop()

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
        client.subscribe(self._opts.topic_filter, qos=1)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        result = self.accept(msg.topic, msg.payload)
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
