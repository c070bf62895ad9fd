"""A site's health as the receiving side reads it: the retained status word and the periodic stats message.

Both arrive unsigned on the site's topics (`<prefix>/<site>/status`:
`online`, `offline` (the broker's last will) or `stopped`; `<prefix>/<site>/stats`:
the agent's `SiteStats` JSON), so both are untrusted: a status word is taken
only from the known three, and stats are parsed within bounds and reduced to
the few numbers the console shows (typed, finite, non-negative), everything
else dropped. The topic decides the site, and only registered sites' topics
are subscribed to.
"""

from __future__ import annotations

__all__ = ["SiteHealth", "parse_health", "plain_filters", "stats_number", "stats_text"]

import math
from dataclasses import dataclass
from typing import Any

from agent.agency.trust_registry import TrustRegistry
from agent.delivery.jws import EnvelopeInvalid, load_json_bounded
from agent.delivery.topics import stats_topic, status_topic

STATES = frozenset({"online", "offline", "stopped"})
MAX_STATS_BYTES = 256 * 1024
MAX_CAMERAS = 256
_CAMERA_NUMBERS = ("target_fps", "achieved_fps", "inference_ms")
_SITE_NUMBERS = ("uptime_s", "outbox_depth", "outbox_delivered", "outbox_dropped")


@dataclass(frozen=True, slots=True)
class SiteHealth:
    """One health message: a state word (`kind` state) or reduced stats (`kind` stats)."""

    site_id: str
    kind: str
    state: str | None = None
    stats: dict[str, Any] | None = None


def plain_filters(registry: TrustRegistry) -> tuple[str, ...]:
    """The status and stats topics of every registered site."""
    topics: list[str] = []
    for site in registry.sites.values():
        topics += [status_topic(site.topic_prefix, site.site_id), stats_topic(site.topic_prefix, site.site_id)]
    return tuple(topics)


def parse_health(registry: TrustRegistry, topic: str, payload: bytes) -> SiteHealth | None:
    """What a status or stats message says, or None for anything unusable."""
    for site in registry.sites.values():
        if topic == status_topic(site.topic_prefix, site.site_id):
            word = payload.decode("ascii", errors="replace").strip()
            return SiteHealth(site.site_id, "state", state=word) if word in STATES else None
        if topic == stats_topic(site.topic_prefix, site.site_id):
            stats = _reduce_stats(payload)
            return SiteHealth(site.site_id, "stats", stats=stats) if stats is not None else None
    return None


def stats_number(value: Any) -> float | None:
    """A finite, non-negative number from untrusted stats, else None (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def stats_text(value: Any, limit: int = 64) -> str | None:
    """A string from untrusted stats, cut to `limit` characters, else None."""
    return value[:limit] if isinstance(value, str) else None


def _reduce_stats(payload: bytes) -> dict[str, Any] | None:
    try:
        data = load_json_bounded(payload, max_bytes=MAX_STATS_BYTES)
    except EnvelopeInvalid:
        return None
    if not isinstance(data, dict):
        return None
    reduced: dict[str, Any] = {k: stats_number(data.get(k)) for k in _SITE_NUMBERS}
    reduced["broker_state"] = stats_text(data.get("broker_state"))
    cameras = data.get("cameras")
    reduced["cameras"] = [
        {
            "camera_id": stats_text(c.get("camera_id"), 200),
            "state": stats_text(c.get("state")),
            **{k: stats_number(c.get(k)) for k in _CAMERA_NUMBERS},
        }
        for c in (cameras if isinstance(cameras, list) else [])[:MAX_CAMERAS]
        if isinstance(c, dict)
    ]
    return reduced
