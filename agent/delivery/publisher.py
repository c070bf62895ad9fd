"""The MQTT publisher: drains the outbox to the broker, QoS 1, over TLS when configured.

`MqttPublisher` is a context manager owning two named threads:

- `mqtt-connection` opens one fresh paho client per connection attempt (its
  network loop runs on paho's own thread), waits for the CONNACK, and after
  a loss waits as `agent.delivery.reconnect` decides, and connects where it
  says (the next of `mqtt.brokers` when there are several): the one retry policy
  (`agent.backoff.Backoff`), ended early once a broker that was down accepts
  TCP connections again, and a long, growing wait (state `taken_over`,
  `event=mqtt_session_taken_over`, `broker_warning`) when another agent with
  the same client id holds the session. A fresh client per connection means
  nothing paho queued for a dead connection is resent behind our back: the
  outbox alone decides what is sent, and after every reconnect the backlog
  goes out again in order.
- `mqtt-drain` publishes outbox messages (at most `max_inflight` awaiting
  PUBACK), and commits acknowledgements in batches: a message is deleted
  from the outbox only after its PUBACK (`agent.delivery.outbox_drain`,
  which also handles refused publishes and outbox storage errors, and
  measures delivery times).

Status (`<prefix>/<site>/status`, retained, QoS 1): `online` after a
successful CONNACK, `stopped` on a clean exit, and `offline` as the last
will when the connection dies. Alerts are never retained.

A refused CONNACK (bad credentials, not authorised) puts the publisher in
state `refused` with the reason code, logged as `event=connect_refused`; it
keeps retrying with backoff (an operator may fix the broker), and
`wait_connected` raises `PublishRejected`. A refused publish (a PUBACK with
a failure reason code) is moved aside in the outbox and counted; MQTT 3.1.1
brokers cannot report one (Mosquitto acknowledges it and drops it): use MQTT 5.

The connection also reads the site's `subscriptions` (the statuses
recipients send back, `agent.delivery.subscriptions`), made after every
connect; with them, an MQTT 5 session outlives a connection by
`SESSION_EXPIRY_S` (MQTT 3.1.1: clean session off), so a status sent while
the site was away waits at the broker. `on_delivered` hears each message's PUBACK time (`site_client`).

Each alert publish (MQTT 5) carries a message expiry (what is left of the
message's `expiry_s`, or `message_expiry_s` from the config), content type
`application/jose+json` (RFC 7515), and user properties `schema-version` (2), `content-type`
and `message-id`.
"""

from __future__ import annotations

__all__ = ["SESSION_EXPIRY_S", "BrokerUnavailable", "MqttPublisher", "PublisherCounters", "PublisherState"]

import contextlib
import dataclasses
import enum
import logging
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from agent.backoff import Backoff
from agent.config import MqttConfig
from agent.delivery.credentials import mqtt_password
from agent.delivery.outbox import Outbox
from agent.delivery.outbox_drain import MqttSession, OutboxDrain, PublisherCounters
from agent.delivery.reconnect import ReconnectPolicy, session_end
from agent.delivery.site_client import (
    SESSION_EXPIRY_S,
    PublishTimes,
    TimedClient,
    connect_options,
    new_site_client,
    send_without_delay,
)
from agent.delivery.subscriptions import Subscription, SubscriptionSet
from agent.delivery.tls import client_tls_context
from agent.delivery.topics import status_topic
from agent.errors import AgentError, PublishRejected
from agent.logs import log_event

_log = logging.getLogger("agent.delivery.publisher")


class PublisherState(enum.StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    REFUSED = "refused"
    TAKEN_OVER = "taken_over"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


class BrokerUnavailable(AgentError):
    """No connection to the broker could be made in time (network or TLS failure)."""


def _join_network_thread(client: paho.Client) -> None:
    """Stop paho's network thread and wait for it to end."""
    # paho clears its thread handle as the thread returns, between loop_stop's own check and its
    # join: losing that race raises AttributeError and means the thread has ended. Unguarded it
    # would end the `mqtt-connection` thread, and with it every reconnect (the subscriber in
    # agent.agency.subscriber guards the same call the same way).
    with contextlib.suppress(AttributeError):
        client.loop_stop()


def _tls_context(config: MqttConfig) -> ssl.SSLContext | None:
    tls = config.tls
    if not tls.enabled:
        return None
    return client_tls_context(
        ca_file=tls.ca_file, cert_file=tls.cert_file, key_file=tls.key_file, verify_hostname=tls.verify_hostname
    )


class MqttPublisher:
    """Publishes outbox messages to one broker (see the module docstring).

    Args:
        config: the `mqtt` section of the site config.
        site_id: the site id (status topic and default client id).
        outbox: an open outbox the publisher drains.
        reconnect_min_s, reconnect_max_s: backoff bounds between connection attempts.
        max_inflight: most messages awaiting PUBACK at once.
        subscriptions, on_delivered: what the connection reads; who hears of PUBACKs (module docstring).
    """

    def __init__(
        self,
        config: MqttConfig,
        site_id: str,
        outbox: Outbox,
        *,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        max_inflight: int = 32,
        subscriptions: Sequence[Subscription] = (),
        on_delivered: Callable[[str, datetime], None] | None = None,
    ) -> None:
        if not 0 < reconnect_min_s <= reconnect_max_s:
            raise AgentError("reconnect_min_s must be positive and at most reconnect_max_s")
        if max_inflight < 1:
            raise AgentError("max_inflight must be at least 1")
        self._config = config
        self._outbox = outbox
        self._site_id = site_id
        self._status_topic = status_topic(config.topic_prefix, site_id)
        self._client_id = config.client_id or f"edge-agent-{site_id}"
        # Half the base is random: a fleet that lost one broker spreads out, and no
        # retry comes sooner than half the step it is on.
        backoff = Backoff(initial_s=reconnect_min_s, max_s=reconnect_max_s, jitter=0.5)
        self._reconnect = ReconnectPolicy(config.broker_addresses, self._client_id, backoff=backoff)
        self._max_inflight = max_inflight
        self._subs = SubscriptionSet(subscriptions)
        self._on_delivered = on_delivered
        self._cond = threading.Condition()
        self._state = PublisherState.IDLE
        self._refusal: PublishRejected | None = None
        self._last_error = ""
        self._session: MqttSession | None = None
        self._generation = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._tls: ssl.SSLContext | None = None
        self._password: str | None = None
        self._drain = OutboxDrain(
            config,
            outbox,
            connected_session=self._connected_session,
            stopping=self._stopping,
            max_inflight=max_inflight,
        )

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._tls = _tls_context(self._config)
        self._password = mqtt_password(self._config)
        for name, target in (("mqtt-connection", self._run_connection), ("mqtt-drain", self._drain.run)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self, timeout_s: float = 5.0) -> None:
        """Publish retained `stopped`, disconnect cleanly (no last will) and join the threads."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._drain.wake()
        with self._cond:
            self._cond.notify_all()
            session = self._session
        if session is not None and session.connected:
            info = session.client.publish(self._status_topic, "stopped", qos=1, retain=True)
            if info.rc == paho.MQTT_ERR_SUCCESS:
                info.wait_for_publish(timeout=min(2.0, timeout_s))
            session.client.disconnect()
        elif session is not None:
            session.closed.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._set_state(PublisherState.STOPPED)
        log_event(_log, "publisher_stopped", site=self._site_id)

    @property
    def state(self) -> PublisherState:
        return self._state

    @property
    def broker_warning(self) -> str:
        """While another agent keeps taking this client id's session: that, in words ('' otherwise)."""
        return self._reconnect.warning

    @property
    def last_error(self) -> str:
        """The last connection error or refusal, in words ('' when none)."""
        return self._last_error

    def _set_state(self, state: PublisherState, error: str | None = None) -> None:
        with self._cond:
            self._state = state
            if error is not None:
                self._last_error = error
            self._cond.notify_all()

    def wait_connected(self, timeout_s: float) -> None:
        """Block until the broker accepted the connection.

        Raises:
            PublishRejected: the broker refused the CONNACK (credentials, authorisation).
            BrokerUnavailable: no connection within `timeout_s` (network, TLS).
        """
        with self._cond:
            self._cond.wait_for(lambda: self._state is PublisherState.CONNECTED or self._refusal is not None, timeout_s)
            if self._state is PublisherState.CONNECTED:
                return
            if self._refusal is not None:
                raise self._refusal
            brokers = ", ".join(str(b) for b in self._config.broker_addresses)
            raise BrokerUnavailable(
                f"no connection to {brokers} within {timeout_s:g} s ({self._last_error or self._state.value})"
            )

    @property
    def rejected_count(self) -> int:
        """Messages the broker refused with a failure reason code since start."""
        return self._drain.counters().rejected

    def counters(self) -> PublisherCounters:
        """Refused publishes, drain failures, delivery times and session take-overs since start."""
        return dataclasses.replace(self._drain.counters(), session_takeovers=self._reconnect.takeovers)

    def _connected_session(self) -> MqttSession | None:
        with self._cond:
            return self._session if self._session is not None and self._session.connected else None

    def publish_transient(self, topic: str, payload: bytes) -> bool:
        """Publish a message that is worth nothing later (stats): QoS 0, not retained, not
        kept in the outbox. Returns False when there is no connection (the message is dropped)."""
        session = self._connected_session()
        if session is None:
            return False
        return session.client.publish(topic, payload, qos=0, retain=False).rc == paho.MQTT_ERR_SUCCESS

    @property
    def threads_alive(self) -> bool:
        """Whether the connection and drain threads run (False before start and after close)."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def flush(self, timeout_s: float) -> bool:
        """Wait until every outbox message was acknowledged, dropped or rejected; True when empty."""
        return self._outbox.wait_empty(timeout_s)

    # -- connection ----------------------------------------------------------------------

    def _run_connection(self) -> None:
        while not self._stopping.is_set():
            session = self._open_session()
            session.closed.wait()
            _join_network_thread(session.client)
            with self._cond:
                self._session = None
            if self._stopping.is_set():
                break
            wait = self._reconnect.after(session_end(session))
            if wait.taken_over:
                self._set_state(PublisherState.TAKEN_OVER, self._reconnect.warning)
            log_event(_log, "reconnect_wait", delay_s=f"{wait.delay_s:.2f}", attempt=wait.attempt)
            self._reconnect.wait(wait, self._stopping)

    def _new_client(self) -> paho.Client:
        client = new_site_client(
            self._config,
            self._client_id,
            self._max_inflight,
            self._status_topic,
            self._password,
            self._tls,
            keep_session=bool(self._subs),
        )
        if self._subs:
            self._subs.attach(client)
        if self._on_delivered is not None:
            client.publish_times = PublishTimes(self._on_delivered)
        return client

    def _open_session(self) -> MqttSession:
        """Connect one fresh client; return its session once its network loop runs (closed when it failed)."""
        self._generation += 1
        session = MqttSession(self._new_client(), self._generation)
        session.client.on_connect = lambda c, u, f, rc, p: self._on_connect(session, rc)
        session.client.on_disconnect = lambda c, u, f, rc, p: self._on_disconnect(
            session, rc, f.is_disconnect_packet_from_server
        )
        session.client.on_publish = lambda c, u, mid, rc, p: self._on_puback(session, mid, rc)
        self._set_state(PublisherState.CONNECTING)
        cfg, broker = self._config, self._reconnect.broker
        try:
            kwargs = connect_options(cfg.protocol, keep_session=bool(self._subs))
            session.client.connect(broker.host, broker.port, cfg.keepalive_s, **kwargs)
        except (OSError, ValueError) as err:  # ssl.SSLError and socket errors are OSErrors
            self._set_state(PublisherState.DISCONNECTED, f"{type(err).__name__}: {err}")
            log_event(_log, "connect_failed", logging.WARNING, broker=str(broker), error=self._last_error)
            session.unreachable = not isinstance(err, (ssl.SSLError, ValueError))  # no TCP connection at all
            session.closed.set()
            return session
        with self._cond:
            self._session = session
        session.client.loop_start()
        deadline = cfg.connect_timeout_s
        while deadline > 0 and not (session.connack.is_set() or session.closed.is_set() or self._stopping.is_set()):
            session.connack.wait(0.05)  # short steps: a TLS refusal closes the session without a CONNACK
            deadline -= 0.05
        if not session.connack.is_set() and not session.closed.is_set():
            self._set_state(PublisherState.DISCONNECTED, "no CONNACK within connect_timeout_s")
            log_event(_log, "connect_failed", logging.WARNING, broker=str(broker), error=self._last_error)
            session.client.disconnect()
            session.closed.set()
        return session

    def _on_puback(self, session: MqttSession, mid: int, reason: ReasonCode) -> None:
        self._drain.on_puback(session, mid, reason)
        if isinstance(session.client, TimedClient):
            session.client.note_puback(mid, reason)

    def _on_connect(self, session: MqttSession, reason: ReasonCode) -> None:
        session.connack.set()
        send_without_delay(session.client)
        if reason.is_failure:
            refusal = PublishRejected(f"broker refused the connection: {reason}", reason_code=reason.value)
            with self._cond:
                self._refusal = refusal
            self._set_state(PublisherState.REFUSED, str(refusal))
            code, broker = reason.value, str(self._reconnect.broker)
            log_event(_log, "connect_refused", logging.ERROR, broker=broker, reason_code=code, reason=str(reason))
            return
        info = session.client.publish(self._status_topic, "online", qos=1, retain=True)
        session.status_mids.add(info.mid)
        self._subs.subscribe_all(session.client)
        with self._cond:
            self._refusal = None
            session.connected = session.was_connected = True
            session.connected_mono_s = time.monotonic()
        self._set_state(PublisherState.CONNECTED, "")
        self._drain.wake()
        protocol, tls = self._config.protocol, self._tls is not None
        log_event(_log, "connected", broker=str(self._reconnect.broker), protocol=protocol, tls=tls)

    def _on_disconnect(self, session: MqttSession, reason: ReasonCode, from_server: bool) -> None:
        was_connected = session.connected
        with self._cond:
            session.connected = False
            session.lost_reason_code, session.lost_from_server = reason.value, from_server
        if not self._stopping.is_set() and self._state is not PublisherState.REFUSED:
            self._set_state(PublisherState.DISCONNECTED, f"disconnected: {reason}")
        if was_connected:
            level = logging.INFO if self._stopping.is_set() else logging.WARNING
            log_event(_log, "disconnected", level, reason=str(reason))
        session.closed.set()
        with self._cond:
            self._cond.notify_all()
