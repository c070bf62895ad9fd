"""Loitering: an object staying inside a zone for at least `min_dwell_s`.

Each object keeps the time it entered. A short step outside the zone (or a
few frames where the tracker loses it) does not reset that clock: only being
out of the zone, or unseen, for longer than `grace_s` does, and then its state
is evicted. The incident is run by `IncidentLifecycle`; its count is the
number of objects inside now whose dwell has reached the threshold.
"""

from __future__ import annotations

__all__ = ["LoiteringRule"]

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from agent.config.schema import LoiteringRuleConfig, ZoneConfig
from agent.detections import Tracks
from agent.rules.events import RuleEvent
from agent.rules.geometry import points_in_polygon
from agent.rules.incident import IncidentLifecycle, IncidentTiming, RuleIdentity, observation_of
from agent.rules.shapes import WatchedObjects, ZoneShape


@dataclass(slots=True)
class _Visit:
    entered_mono: float
    last_inside_mono: float


class LoiteringRule:
    """Watches one zone for objects that stay.

    Args:
        rule: the rule's config.
        zone: the zone it names.
        class_names: the detector's class names, indexed by class id.
        anchors: per class name, the box anchor (default bottom_center).
    """

    def __init__(
        self, rule: LoiteringRuleConfig, zone: ZoneConfig, class_names: Sequence[str],
        anchors: Mapping[str, str] | None = None,
    ) -> None:
        self.name = rule.name
        self._rule = rule
        self._zone = ZoneShape(zone)
        self._objects = WatchedObjects(rule.classes, rule.min_score, class_names, anchors)
        self._visits: dict[int, _Visit] = {}
        self._lifecycle = IncidentLifecycle(
            RuleIdentity(rule.name, "loitering", zone.name, None, rule.severity),
            IncidentTiming(rule.update_interval_s, rule.end_after_s, rule.cooldown_s),
        )

    def reset(self) -> None:
        self._visits.clear()
        self._lifecycle.reset()

    def update(
        self, tracks: Tracks, frame_wh: tuple[int, int], ts_monotonic_s: float, ts_utc: datetime
    ) -> RuleEvent | None:
        """Feed one frame's tracks; return the incident event it causes, if any."""
        watched, points = self._objects.select(tracks)
        inside = watched.select(points_in_polygon(points, self._zone.polygon_px(frame_wh)))
        for t in inside.track_id:
            visit = self._visits.get(int(t))
            if visit is None:
                self._visits[int(t)] = _Visit(ts_monotonic_s, ts_monotonic_s)
            else:
                visit.last_inside_mono = ts_monotonic_s
        grace = self._rule.grace_s
        self._visits = {
            t: v for t, v in self._visits.items() if ts_monotonic_s - v.last_inside_mono <= grace
        }
        dwell = np.array([ts_monotonic_s - self._visits[int(t)].entered_mono for t in inside.track_id], np.float64)
        counting = dwell >= self._rule.min_dwell_s
        obs = observation_of(inside.select(counting), dwell[counting], self._objects.class_names,
                             ts_monotonic_s, ts_utc)
        return self._lifecycle.update(obs)

    def finish(self, ts_monotonic_s: float, ts_utc: datetime) -> RuleEvent | None:
        return self._lifecycle.finish(ts_monotonic_s, ts_utc)
