"""A real `AlertReceiver` against a test broker, and a plain client that collects what arrives on a filter."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from agent.agency.alert_verifier import AlertVerifier, Freshness
from agent.agency.broker_connection import ConnectionOptions, parse_broker_url
from agent.agency.seen_store import SeenStore
from agent.agency.subscriber import AlertReceiver, ReceivedAlert, ReceiverOptions
from agent.agency.trust_registry import TrustRegistry
from tests.agency.v2_alerts import RECIPIENT
from tests.brokers import MosquittoBroker


@contextmanager
def receiving(
    broker: MosquittoBroker | str,
    registry: TrustRegistry,
    seen_path: Path,
    *,
    recipient: str = RECIPIENT,
    topic_filters: tuple[str, ...] = (),
    connection: Mapping[str, Any] | None = None,
    client_id: str = "",
    session_expiry_s: int = 0,
    **receiver_options: Any,
) -> Iterator[AlertReceiver]:
    """A started, subscribed receiver with a durable seen-store.

    Args:
        broker: the test broker (its anonymous port), or a URL (`mqtts://localhost:8883`).
        topic_filters: default every registered site's alerts.
        connection: more `ConnectionOptions` fields (TLS files, user name and password).
        receiver_options: `AlertReceiver` keywords (`status_signer`, `render`, `on_reject`).
    """
    url = broker if isinstance(broker, str) else f"mqtt://127.0.0.1:{broker.port}"
    options = ConnectionOptions(
        parse_broker_url(url), client_id=client_id, session_expiry_s=session_expiry_s, **dict(connection or {})
    )
    with SeenStore(seen_path, window_s=Freshness().window_s) as seen:
        verifier = AlertVerifier(registry, recipient, seen)
        filters = topic_filters or tuple(registry.alert_filters())
        with AlertReceiver(ReceiverOptions(options, filters), verifier, **receiver_options) as receiver:
            receiver.wait_subscribed(10)
            yield receiver


def take(receiver: AlertReceiver, count: int, timeout_s: float = 10.0) -> list[ReceivedAlert]:
    """Up to `count` accepted alerts, each used (`done`) as it comes; stops when none comes for `timeout_s`."""
    got: list[ReceivedAlert] = []
    while len(got) < count:
        item = receiver.get(timeout_s)
        if item is None:
            break
        receiver.done(item)
        got.append(item)
    return got


def ids(items: list[ReceivedAlert]) -> list[str]:
    return [i.accepted.alert.identifier for i in items]


class Collector:
    """Every message on a topic filter, from a plain client subscribed before anything is sent."""

    def __init__(self, port: int, topic_filter: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()
        self._client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *a: subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", port)
        self._client.subscribe(topic_filter, qos=1)
        self._client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError(f"no subscription to {topic_filter}")

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self._cond.notify_all()

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[tuple[str, bytes]]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.messages) >= count, timeout_s)
            return list(self.messages)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
