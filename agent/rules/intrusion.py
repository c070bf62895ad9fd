"""Zone intrusion: an object of a watched class inside a zone for a minimum time.

An object counts once its anchor point (by default the bottom-centre of its
box: where a person stands) has stayed inside the zone for `min_duration_s`;
leaving the zone, or disappearing, resets its clock. The incident itself
(start, update, end, cooldown) is run by `IncidentLifecycle`.
"""

from __future__ import annotations

__all__ = ["ZoneIntrusionRule"]

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from agent.config.schema import IntrusionRuleConfig, ZoneConfig
from agent.detections import Tracks
from agent.rules.events import RuleEvent
from agent.rules.geometry import points_in_polygon
from agent.rules.incident import IncidentLifecycle, IncidentTiming, RuleIdentity, observation_of
from agent.rules.shapes import WatchedObjects, ZoneShape


class ZoneIntrusionRule:
    """Watches one zone of one camera.

    Args:
        rule: the rule's config.
        zone: the zone it names.
        class_names: the detector's class names, indexed by class id.
        anchors: per class name, the box anchor (default bottom_center).
    """

    def __init__(
        self, rule: IntrusionRuleConfig, zone: ZoneConfig, class_names: Sequence[str],
        anchors: Mapping[str, str] | None = None,
    ) -> None:
        self.name = rule.name
        self._rule = rule
        self._zone = ZoneShape(zone)
        self._objects = WatchedObjects(rule.classes, rule.min_score, class_names, anchors)
        self._inside_since: dict[int, float] = {}
        self._lifecycle = IncidentLifecycle(
            RuleIdentity(rule.name, "intrusion", zone.name, None, rule.severity),
            IncidentTiming(rule.update_interval_s, rule.end_after_s, rule.cooldown_s),
        )

    def reset(self) -> None:
        self._inside_since.clear()
        self._lifecycle.reset()

    def update(
        self, tracks: Tracks, frame_wh: tuple[int, int], ts_monotonic_s: float, ts_utc: datetime
    ) -> RuleEvent | None:
        """Feed one frame's tracks; return the incident event it causes, if any."""
        watched, points = self._objects.select(tracks)
        inside = watched.select(points_in_polygon(points, self._zone.polygon_px(frame_wh)))
        # Only objects inside now keep a clock: others (gone or outside) are evicted.
        self._inside_since = {
            int(t): self._inside_since.get(int(t), ts_monotonic_s) for t in inside.track_id
        }
        dwell = np.array([ts_monotonic_s - self._inside_since[int(t)] for t in inside.track_id], np.float64)
        counting = dwell >= self._rule.min_duration_s
        obs = observation_of(inside.select(counting), dwell[counting], self._objects.class_names,
                             ts_monotonic_s, ts_utc)
        return self._lifecycle.update(obs)

    def finish(self, ts_monotonic_s: float, ts_utc: datetime) -> RuleEvent | None:
        return self._lifecycle.finish(ts_monotonic_s, ts_utc)
