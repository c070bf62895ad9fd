"""What the site's own MQTT connection reads: subscriptions made on every connect, messages handed on.

The publisher's connection is the site's one client; a `Subscription` names
a topic filter, its QoS and the handler its messages go to
(`agent.delivery.feedback.FeedbackIntake.on_message` for the statuses
recipients send back). `SubscriptionSet` subscribes each of them once the
broker accepted a connection (a fresh client per connection has none),
reports the broker's SUBACK (a refusal, e.g. 0x87 not authorised by the ACL,
is logged as `event=subscribe_refused` and told to the subscription), and
calls the handler of every message on paho's network thread. Everything a
message can come with is untrusted: a handler that raises is logged
(`event=subscription_handler_failed`) and the network thread goes on, so a
bad message can never stop the connection.
"""

from __future__ import annotations

__all__ = ["Subscription", "SubscriptionSet"]

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from agent.logs import log_event

_log = logging.getLogger("agent.delivery.subscriptions")


@dataclass(frozen=True, slots=True)
class Subscription:
    """One topic filter the site reads.

    Attributes:
        topic_filter: the MQTT filter (`<prefix>/<site>/feedback/+`).
        qos: the QoS asked for.
        handler: gets (topic, payload) of each message; runs on paho's network thread, so it
            should only queue the message.
        on_granted: told (granted, detail) on each SUBACK: False with the reason when refused.
    """

    topic_filter: str
    qos: int
    handler: Callable[[str, bytes], None]
    on_granted: Callable[[bool, str], None] | None = None


class SubscriptionSet:
    """Subscribes and dispatches for one client at a time (see the module docstring)."""

    def __init__(self, subscriptions: Sequence[Subscription]) -> None:
        self._subs = tuple(subscriptions)
        self._lock = threading.Lock()
        self._pending: dict[int, Subscription] = {}  # SUBSCRIBE mid -> what it asked for

    def __bool__(self) -> bool:
        return bool(self._subs)

    def attach(self, client: paho.Client) -> None:
        """Route `client`'s messages and SUBACKs here (before it connects)."""
        client.on_message = lambda c, u, msg: self.dispatch(msg.topic, bytes(msg.payload))
        client.on_subscribe = lambda c, u, mid, codes, p: self._on_suback(mid, codes)

    def subscribe_all(self, client: paho.Client) -> None:
        """Subscribe every filter on a client the broker just accepted (on paho's thread, in on_connect)."""
        for sub in self._subs:
            rc, mid = client.subscribe(sub.topic_filter, qos=sub.qos)
            if rc != paho.MQTT_ERR_SUCCESS or mid is None:
                self._granted(sub, False, f"subscribe not sent (paho error {rc})")
                continue
            with self._lock:
                self._pending[mid] = sub

    def dispatch(self, topic: str, payload: bytes) -> None:
        """Hand one message to the handler of every subscription it matches; never raises."""
        for sub in self._subs:
            try:
                if paho.topic_matches_sub(sub.topic_filter, topic):
                    sub.handler(topic, bytes(payload))
            except Exception as err:  # noqa: BLE001 - untrusted input must never end paho's network thread
                log_event(
                    _log,
                    "subscription_handler_failed",
                    logging.ERROR,
                    topic_filter=sub.topic_filter,
                    bytes=len(payload),
                    error=f"{type(err).__name__}: {err}",
                )

    def _on_suback(self, mid: int, codes: Sequence[ReasonCode]) -> None:
        with self._lock:
            sub = self._pending.pop(mid, None)
        if sub is None:
            return
        refused = [c for c in codes if c.is_failure]
        if refused:
            detail = f"broker refused the subscription to {sub.topic_filter}: {refused[0]} (0x{refused[0].value:02X})"
            log_event(
                _log,
                "subscribe_refused",
                logging.ERROR,
                topic_filter=sub.topic_filter,
                reason_code=refused[0].value,
                reason=str(refused[0]),
            )
            self._granted(sub, False, detail)
            return
        log_event(_log, "subscribed", topic_filter=sub.topic_filter, qos=codes[0].value if codes else sub.qos)
        self._granted(sub, True, "")

    def _granted(self, sub: Subscription, granted: bool, detail: str) -> None:
        if sub.on_granted is None:
            return
        try:
            sub.on_granted(granted, detail)
        except Exception as err:  # noqa: BLE001 - a report must not end paho's network thread
            log_event(_log, "subscription_handler_failed", logging.ERROR, error=f"{type(err).__name__}: {err}")
