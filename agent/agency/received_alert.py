"""What the alert receiver is given and what it hands over: its options, an accepted alert, its hooks.

Kept apart from `agent.agency.subscriber` (which re-exports them), so the
receiver group (`agent.agency.receiver_group`), which hands items from
several receivers to one caller, shares the values without the client.
"""

from __future__ import annotations

__all__ = ["PlainHook", "ReceivedAlert", "ReceiverOptions", "RejectHook", "RenderHook"]

from collections.abc import Callable
from dataclasses import dataclass, field

from agent.agency.alert_verifier import AcceptedAlert
from agent.agency.broker_connection import ConnectionOptions
from agent.agency.rejections import Rejected


@dataclass(frozen=True, slots=True)
class ReceiverOptions:
    """The broker connection and the topic filters to subscribe to (QoS 1).

    `plain_filters` are subscribed too, but their messages (a site's retained
    status, its stats) are not alerts: they skip verification and go to the
    receiver's `on_plain` hook as they are, untrusted.

    `start_without_broker`: when no broker answers at start, keep trying in the
    background instead of failing (a member of a group of separate brokers,
    where the others may be up).
    """

    connection: ConnectionOptions
    topic_filters: tuple[str, ...]
    plain_filters: tuple[str, ...] = ()
    start_without_broker: bool = False


@dataclass(eq=False, slots=True)
class ReceivedAlert:
    """An accepted alert waiting for `AlertReceiver.done`.

    Attributes:
        accepted: the verified alert (`accepted.alert` its view, `accepted.data` its JSON data).
        rendered: what the receiver's `render` hook made of it (CAP XML), if it has one.
        message: the message exactly as it arrived (the JWS).
        origin: which receiver of a group it came through (0 when alone).
    """

    accepted: AcceptedAlert
    rendered: str | None = None
    message: bytes = b""
    _acks: list[tuple[int, int, int]] = field(default_factory=list)  # (connection, mid, qos)
    origin: int = 0

    @property
    def topic(self) -> str:
        return self.accepted.topic


RejectHook = Callable[[str, Rejected], None]  # (topic, why)
# Prepares an accepted alert's output on the network thread; raising Rejected refuses the alert.
RenderHook = Callable[[AcceptedAlert], str | None]
# A message on a plain filter, (topic, payload), on the network thread: it must return quickly.
PlainHook = Callable[[str, bytes], None]
