"""The site's paho client: when the broker acknowledged each message, and the session it keeps.

The time from an alert's publish to a recipient's `received` is measured
from the broker's PUBACK, taken on paho's network thread as it arrives. The
outbox only learns of it later (the drain commits acknowledgements in
batches), so the publisher's client is a `TimedClient`: each QoS 1 publish
notes its packet id and the message id of its payload
(`agent.delivery.messages.message_id_for`), each PUBACK its time, and
`PublishTimes` joins the two, whichever comes first, and reports
(message id, PUBACK time) to a callback that only queues it.

`connect_options` says how a connection starts: a fresh session (MQTT 5
`clean_start`), or, when the site subscribes to something (the statuses
recipients send back), a session the broker keeps for `SESSION_EXPIRY_S`
after a connection ends, so what arrives meanwhile waits for the site.
MQTT 3.1.1 has no session expiry: there the session is kept with clean
session off (`new_site_client(keep_session=True)`), for as long as the
broker keeps such sessions (Mosquitto `persistent_client_expiration`,
RabbitMQ `mqtt.subscription_ttl`). A kept session is also what a clustered
broker can move: RabbitMQ 3.x holds a clean session's subscription in a
queue on the node it was made on, and while that node is down the same
client id cannot subscribe again on another; a kept one is a durable
(quorum) queue the other nodes hold too.

`send_without_delay` turns Nagle's algorithm off on a connected client's
socket (paho leaves it on): an alert or a status is one small packet, and
written right after an acknowledgement the kernel would otherwise hold it
until the broker's delayed ACK, about 40 ms. The site's publisher and the
receiving side's clients call it on every connect.
"""

from __future__ import annotations

__all__ = [
    "SESSION_EXPIRY_S",
    "PublishTimes",
    "TimedClient",
    "connect_options",
    "new_site_client",
    "send_without_delay",
]

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import MqttConfig
from agent.delivery.messages import message_id_for
from agent.delivery.tls import use_tls

SESSION_EXPIRY_S = 3600
_MAX_UNMATCHED = 4096  # PUBACKs that came before their publish returned: a handful at most
_STALE_S = 10.0  # a PUBACK noted this long before its publish returned belongs to an earlier use of the id


class PublishTimes:
    """Joins publishes to PUBACKs for one client (see the module docstring).

    Args:
        on_delivered: gets (message id, PUBACK time); runs on paho's network thread or the publishing
            thread, so it should only queue what it is given.
    """

    def __init__(self, on_delivered: Callable[[str, datetime], None]) -> None:
        self._on_delivered = on_delivered
        self._lock = threading.Lock()
        self._ids: dict[int, str] = {}
        self._acked: dict[int, datetime] = {}

    def published(self, mid: int, payload: bytes) -> None:
        message_id = message_id_for(payload)
        with self._lock:
            acked = self._acked.pop(mid, None)
            if acked is not None and (datetime.now(UTC) - acked).total_seconds() > _STALE_S:
                acked = None
            if acked is None:
                self._ids[mid] = message_id
        if acked is not None:
            self._on_delivered(message_id, acked)

    def acked(self, mid: int, reason: ReasonCode) -> None:
        now = datetime.now(UTC)
        with self._lock:
            message_id = self._ids.pop(mid, None)
            if message_id is None and not reason.is_failure:
                if len(self._acked) >= _MAX_UNMATCHED:
                    self._acked.clear()
                self._acked[mid] = now
        if message_id is not None and not reason.is_failure:
            self._on_delivered(message_id, now)


class TimedClient(paho.Client):
    """A paho client whose QoS 1 publishes and PUBACKs are noted in `publish_times` (None: not noted)."""

    publish_times: PublishTimes | None = None

    def note_puback(self, mid: int, reason: ReasonCode) -> None:
        """Call from `on_publish` (paho's network thread)."""
        if self.publish_times is not None:
            self.publish_times.acked(mid, reason)

    def publish(
        self,
        topic: str,
        payload: paho.PayloadType = None,
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> paho.MQTTMessageInfo:
        info = super().publish(topic, payload, qos, retain, properties)
        times = self.publish_times
        if times is not None and qos > 0 and info.rc == paho.MQTT_ERR_SUCCESS:
            times.published(info.mid, _as_bytes(payload))
        return info


def _as_bytes(payload: paho.PayloadType) -> bytes:
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode("utf-8")


def connect_options(protocol: str, *, keep_session: bool) -> dict[str, Any]:
    """The keyword arguments of `connect` (see the module docstring); MQTT 3.1.1 has none (`new_site_client`)."""
    if protocol != "5":
        return {}
    if not keep_session:
        return {"clean_start": True}
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves it unannotated
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    return {"clean_start": False, "properties": props}


def new_site_client(
    config: MqttConfig,
    client_id: str,
    max_inflight: int,
    will_topic: str,
    password: str | None,
    tls: ssl.SSLContext | None,
    *,
    keep_session: bool = False,
) -> TimedClient:
    """One fresh client for one connection attempt: no automatic reconnect, `offline` as its last will;
    with MQTT 3.1.1 and `keep_session`, clean session off (MQTT 5 says it in `connect_options`)."""
    v5 = config.protocol == "5"
    client = TimedClient(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        clean_session=None if v5 else not keep_session,
        reconnect_on_failure=False,
    )
    client.connect_timeout = config.connect_timeout_s
    client.max_inflight_messages_set(max_inflight)
    client.will_set(will_topic, "offline", qos=1, retain=True)
    if config.username is not None or password is not None:
        client.username_pw_set(config.username or "", password)
    if tls is not None:
        use_tls(client, tls)
    return client


def send_without_delay(client: paho.Client) -> None:
    """Set TCP_NODELAY on the client's socket once it is connected (a no-op when it has none)."""
    sock = client.socket()
    # paho types it as a minimal protocol; a TCP or TLS connection is a real socket.
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # not a TCP socket: nothing to turn off
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
