"""Each site as the sites page and `/api/sites` show it: health, last stats, keys, alerts of the last day, place.

Sites come from the trust registry (every site this recipient trusts) and
from the store (every site heard from). Stats were sent by the site over the
network: the ingest service keeps only known fields, and they are read here
defensively once more (a number must be finite and not negative, a list a
list), so an odd message shows as blanks, never as an error page.
"""

from __future__ import annotations

__all__ = ["CameraRate", "KeyWindow", "SiteOverview", "key_windows", "site_overviews"]

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from agent.agency.site_health import stats_number, stats_text
from agent.agency.store import SiteRow
from agent.agency.trust_registry import RegisteredSite, TrustRegistry

MAX_CAMERAS_SHOWN = 256
KeyState = Literal["in_force", "not_yet", "expired", "revoked"]


@dataclass(frozen=True, slots=True)
class CameraRate:
    """One camera in the site's last stats."""

    camera_id: str
    state: str | None
    achieved_fps: float | None
    target_fps: float | None


@dataclass(frozen=True, slots=True)
class KeyWindow:
    """One registered key of a site, its window and whether it is in force now."""

    kid: str
    not_before: datetime | None
    not_after: datetime | None
    state: KeyState


@dataclass(frozen=True, slots=True)
class SiteOverview:
    """A site on the sites page (times: seconds since the epoch; None: not known)."""

    site_id: str
    name: str
    registered: bool
    topic_prefix: str | None
    sender_name: str | None
    state: str | None
    state_since: float | None
    stats_at: float | None
    cameras: tuple[CameraRate, ...]
    outbox_depth: float | None
    alerts_last_day: int
    last_alert_at: float | None
    keys: tuple[KeyWindow, ...]
    lat: float | None
    lon: float | None


def _stats(row: SiteRow | None) -> dict[str, Any]:
    if row is None or not row.stats:
        return {}
    try:
        data = json.loads(row.stats)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _cameras(stats: Mapping[str, Any]) -> tuple[CameraRate, ...]:
    cameras = stats.get("cameras")
    if not isinstance(cameras, list):
        return ()
    return tuple(
        CameraRate(
            stats_text(c.get("camera_id"), 200) or "?",
            stats_text(c.get("state")),
            stats_number(c.get("achieved_fps")),
            stats_number(c.get("target_fps")),
        )
        for c in cameras[:MAX_CAMERAS_SHOWN]
        if isinstance(c, dict)
    )


def key_windows(site: RegisteredSite, now: datetime) -> tuple[KeyWindow, ...]:
    """The site's keys with their state at `now` (revocation wins over any window)."""
    windows = []
    for key in site.keys:
        state: KeyState = "in_force"
        if key.kid in site.revoked:
            state = "revoked"
        elif key.not_before is not None and now < key.not_before:
            state = "not_yet"
        elif key.not_after is not None and now >= key.not_after:
            state = "expired"
        windows.append(KeyWindow(key.kid, key.not_before, key.not_after, state))
    return tuple(windows)


def site_overviews(
    registry: TrustRegistry,
    stored: Sequence[SiteRow],
    alerts_last_day: Mapping[str, int],
    positions: Mapping[str, tuple[float, float]],
    now: datetime,
) -> list[SiteOverview]:
    """Every registered or stored site, by id."""
    rows = {row.site_id: row for row in stored}
    overviews = []
    for site_id in sorted(set(rows) | set(registry.sites)):
        row, site = rows.get(site_id), registry.sites.get(site_id)
        stats = _stats(row)
        lat, lon = positions.get(site_id, (None, None))
        overviews.append(
            SiteOverview(
                site_id=site_id,
                name=(site.name if site is not None and site.name else None) or site_id,
                registered=site is not None,
                topic_prefix=site.topic_prefix if site is not None else None,
                sender_name=row.name if row is not None else None,
                state=row.state if row is not None else None,
                state_since=row.state_since if row is not None else None,
                stats_at=row.stats_at if row is not None else None,
                cameras=_cameras(stats),
                outbox_depth=stats_number(stats.get("outbox_depth")),
                alerts_last_day=alerts_last_day.get(site_id, 0),
                last_alert_at=row.last_alert_at if row is not None else None,
                keys=key_windows(site, now) if site is not None else (),
                lat=lat,
                lon=lon,
            )
        )
    return overviews
