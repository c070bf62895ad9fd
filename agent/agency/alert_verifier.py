"""Every check an alert message passes before the receiving side uses it, in the order that keeps it safe.

1. Bounds and shape (`agent.delivery.jws.open_envelope`): size, nesting and a
   flattened JWS with header `alg: Ed25519`, `kid`, `typ` are checked before
   a JSON parser builds anything; `typ` must be `edge-alert+json`. An old
   `{"alert", "signature"}` envelope is told "schema v1 is no longer accepted".
2. The key: the header's `kid` must be registered to a site and in force now
   (`TrustRegistry.key_for`: window, revocation).
3. The signature, with that key. Nothing of the payload is read before.
4. The payload: bounded JSON, then the v2 alert schema (`parse_alert_view`).
5. The site: `site_id` (and `detection.site_id`) must be the key's own site,
   and the topic under that site's `<prefix>/<site_id>/`; a topic under
   another registered site's subtree is a forgery too.
6. The recipient: `recipient` must be this receiver.
7. Freshness: not past `expires`; `sent` within the window (default 24 h)
   and not more than the allowed skew (5 min) ahead.
8. Not seen before: (site id, identifier) not in the durable ledger (a `SeenStore`,
   or the receiving store's alerts table for the ingest service).

`check` raises `Rejected` at the first failure and otherwise returns the
`AcceptedAlert`; `remember` records it as seen once the caller has used it.
It is pure (no MQTT, no logging), so the benchmark measures exactly this.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_SKEW_S", "DEFAULT_WINDOW_S", "AcceptedAlert", "AlertVerifier", "Freshness"]

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.agency.alert_view import AlertView, parse_alert_view
from agent.agency.rejections import REASONS, Rejected
from agent.agency.seen_store import SeenLedger
from agent.agency.trust_registry import RegisteredSite, TrustRegistry
from agent.delivery.jws import (
    MAX_ENVELOPE_BYTES,
    TYP_ALERT,
    EnvelopeInvalid,
    load_json_bounded,
    open_envelope,
    verify_envelope,
)

DEFAULT_WINDOW_S = 24 * 3600.0
DEFAULT_MAX_SKEW_S = 300.0


@dataclass(frozen=True, slots=True)
class Freshness:
    """How old an alert's `sent` may be, and how far ahead of this clock."""

    window_s: float = DEFAULT_WINDOW_S
    max_skew_s: float = DEFAULT_MAX_SKEW_S


@dataclass(frozen=True, slots=True)
class AcceptedAlert:
    """An alert that passed every check.

    Attributes:
        topic: where it arrived.
        site: the registered site whose key signed it.
        kid: that key's id.
        alert: the validated view.
        data: the signed payload as JSON data (what `alert` was validated from).
    """

    topic: str
    site: RegisteredSite
    kid: str
    alert: AlertView
    data: dict[str, Any]


def _invalid(err: EnvelopeInvalid) -> Rejected:
    reason = err.reason if err.reason in REASONS else "malformed"
    return Rejected(reason, str(err), kid=err.kid)


# A v1 envelope is `{"alert": {...}, "signature": {...}}`; only what starts like one is parsed to make sure.
_V1_START = re.compile(rb'\A\s*\{\s*"(?:alert|signature)"\s*:')


def _is_v1_envelope(data: bytes, max_bytes: int) -> bool:
    if not _V1_START.match(data):
        return False
    try:
        outer = load_json_bounded(data, max_bytes=max_bytes)
    except EnvelopeInvalid:
        return False
    return isinstance(outer, dict) and "alert" in outer and "signature" in outer


class AlertVerifier:
    """Checks alert messages for one recipient against a trust registry (see the module docstring).

    Args:
        registry: the trusted sites and keys.
        recipient: who this receiver is; alerts naming another recipient are refused.
        seen: the durable ledger of accepted alerts; None checks no duplicates (tests, tools).
    """

    def __init__(
        self,
        registry: TrustRegistry,
        recipient: str,
        seen: SeenLedger | None = None,
        freshness: Freshness | None = None,
        *,
        max_bytes: int = MAX_ENVELOPE_BYTES,
    ) -> None:
        self.registry = registry
        self.recipient = recipient
        self.seen = seen
        self.freshness = freshness or Freshness()
        self._max_bytes = max_bytes

    def check(self, topic: str, message: bytes, now: datetime | None = None) -> AcceptedAlert:
        """The accepted alert of one message.

        Raises:
            Rejected: at the first check it fails, with the reason.
        """
        now = now or datetime.now(UTC)
        try:
            opened = open_envelope(message, max_bytes=self._max_bytes)
        except EnvelopeInvalid as err:
            if err.reason in ("too_deep", "malformed") and _is_v1_envelope(message, self._max_bytes):
                raise Rejected("schema_v1", "schema v1 is no longer accepted (a v1 alert/signature envelope)") from None
            raise _invalid(err) from None
        if opened.typ != TYP_ALERT:
            raise Rejected("wrong_type", f"typ {opened.typ!r} is not {TYP_ALERT}", kid=opened.kid)
        key = self.registry.key_for(opened.kid, now)
        try:
            payload = verify_envelope(opened, key.public_key)
            data = load_json_bounded(payload, max_bytes=self._max_bytes)
        except EnvelopeInvalid as err:
            raise _invalid(err) from None
        alert = parse_alert_view(payload, data)
        site = self.registry.sites[key.site_id]
        self._check_site(topic, site, key.kid, alert)
        if alert.recipient != self.recipient:
            raise Rejected(
                "not_for_me", f"alert for recipient {alert.recipient!r}, not {self.recipient!r}", site_id=site.site_id
            )
        self._check_fresh(alert, site.site_id, now)
        if self.seen is not None and self.seen.contains(site.site_id, alert.identifier):
            raise Rejected(
                "duplicate",
                f"alert {alert.identifier} of site {site.site_id} was accepted before",
                site_id=site.site_id,
            )
        return AcceptedAlert(topic, site, key.kid, alert, data)

    def remember(self, accepted: AcceptedAlert) -> bool:
        """Record an accepted alert as seen (durably); False when it already was."""
        if self.seen is None:
            return True
        return self.seen.remember(accepted.site.site_id, accepted.alert.identifier, accepted.alert.sent)

    def _check_site(self, topic: str, site: RegisteredSite, kid: str, alert: AlertView) -> None:
        claimed = alert.site_id
        inner = alert.detection_site_id
        if claimed != site.site_id or (inner is not None and inner != site.site_id):
            other = claimed if claimed != site.site_id else inner
            raise Rejected(
                "forged",
                f"signed with key {kid} of site {site.site_id} but claims site {other}",
                site_id=site.site_id,
                kid=kid,
            )
        if site.owns_topic(topic):
            return
        owner = self.registry.site_of_topic(topic)
        if owner is not None:
            raise Rejected(
                "forged",
                f"signed with key {kid} of site {site.site_id} but arrived under site {owner.site_id}'s topics",
                site_id=site.site_id,
                kid=kid,
            )
        raise Rejected(
            "wrong_topic",
            f"topic {topic!r} is not under {site.topic_root} of site {site.site_id}",
            site_id=site.site_id,
        )

    def _check_fresh(self, alert: AlertView, site_id: str, now: datetime) -> None:
        if now >= alert.expires:
            raise Rejected(
                "expired", f"alert {alert.identifier} expired at {alert.expires.isoformat()}", site_id=site_id
            )
        if alert.sent < now - timedelta(seconds=self.freshness.window_s):
            raise Rejected(
                "stale",
                f"alert {alert.identifier} was sent at {alert.sent.isoformat()}, "
                f"more than {self.freshness.window_s:g} s ago",
                site_id=site_id,
            )
        if alert.sent > now + timedelta(seconds=self.freshness.max_skew_s):
            raise Rejected(
                "from_future",
                f"alert {alert.identifier} was sent at {alert.sent.isoformat()}, "
                f"more than {self.freshness.max_skew_s:g} s ahead of this clock",
                site_id=site_id,
            )
