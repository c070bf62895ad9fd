"""Numbered, signed v2 alerts for the delivery tests, the registry that trusts their signer, and reading them back.

Alert number `n` is a v2 recipient view (`tests.agency.v2_alerts.alert_data`:
built by the `AlertBuilder`, `sent` now) whose `identifier` is
`alert-<n, 5 digits>`, signed by the site's `AlertSigner`. Its `site_id` and
`recipient` come from the topic it is published on
(`<prefix>/<site>/<camera>/alerts/<rule>[/<recipient>]`; without the last
level, `RECIPIENT`), so a receiver that trusts the signer for that site
accepts it.
"""

from __future__ import annotations

__all__ = [
    "RECIPIENT",
    "ReceiverFactory",
    "alert_topic_parts",
    "drain",
    "make_alert",
    "number",
    "numbers",
    "registry_for",
]

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from agent.agency.subscriber import AlertReceiver, ReceivedAlert
from agent.agency.trust_registry import RegisteredKey, RegisteredSite, TrustRegistry
from agent.delivery.jws import public_key_from_jwk
from agent.delivery.outbox import OutboundMessage
from agent.delivery.signing import AlertSigner
from tests.agency.receiving import take
from tests.agency.v2_alerts import RECIPIENT, alert_data

_PREFIX = "alert-"
# The `receiver_factory` fixture (tests/delivery/conftest.py): (url, topic_filter, **options) -> a started receiver.
ReceiverFactory = Callable[..., AlertReceiver]


def alert_topic_parts(topic: str) -> tuple[str, str, str]:
    """(prefix, site id, recipient) of an alert topic or filter; the recipient is `RECIPIENT` when not named.

    Raises:
        ValueError: not `<prefix>/<site>/<camera>/alerts/<rule>[/<recipient>]`.
    """
    levels = topic.split("/")
    if "alerts" not in levels[3:]:
        raise ValueError(f"{topic!r} is not an alert topic (<prefix>/<site>/<camera>/alerts/<rule>[/<recipient>])")
    at = len(levels) - 1 - levels[::-1].index("alerts")
    recipient = levels[at + 2] if len(levels) == at + 3 and levels[at + 2] not in ("+", "#") else RECIPIENT
    return "/".join(levels[: at - 2]), levels[at - 2], recipient


def make_alert(
    signer: AlertSigner, topic: str, n: int, severity_rank: int = 1, *, sent: datetime | None = None
) -> OutboundMessage:
    """Alert number `n` for `topic`'s site and recipient, signed, as an outbox message."""
    _, site_id, recipient = alert_topic_parts(topic)
    view = alert_data(site_id, n, recipient=recipient, sent=sent, identifier=f"{_PREFIX}{n:05d}")
    return OutboundMessage.for_payload(topic, signer.sign(view), severity_rank, created_utc=datetime.now(UTC))


def number(item: ReceivedAlert) -> int:
    """The `n` an accepted alert was made with (`make_alert`)."""
    identifier = item.accepted.alert.identifier
    if not identifier.startswith(_PREFIX):
        raise ValueError(f"alert {identifier!r} was not made by make_alert")
    return int(identifier.removeprefix(_PREFIX))


def numbers(items: Iterable[ReceivedAlert]) -> list[int]:
    return [number(item) for item in items]


def registry_for(signer: AlertSigner, site_id: str, prefix: str = "edge") -> TrustRegistry:
    """A trust registry holding one site, `site_id`, whose key is the signer's."""
    public = public_key_from_jwk(signer.public_jwk())
    return TrustRegistry([RegisteredSite(site_id, prefix, (RegisteredKey(signer.kid, site_id, public),))])


def drain(receiver: AlertReceiver, count: int, timeout_s: float = 15.0) -> list[ReceivedAlert]:
    """Up to `count` accepted alerts, each used (`done`, so acknowledged) as it comes.

    Stops early when none arrives for `timeout_s`.
    """
    return take(receiver, count, timeout_s)
