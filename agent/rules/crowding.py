"""Crowding: at least `min_count` watched objects inside a zone for `min_duration_s`.

The rule keeps one clock: when the zone first held a crowd. A frame with
fewer objects stops that clock (the lifecycle's `end_after_s` keeps a brief
dip, such as one person hidden for a frame, from ending an open incident).
No per-object state is kept.
"""

from __future__ import annotations

__all__ = ["CrowdingRule"]

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from agent.config.schema import CrowdingRuleConfig, ZoneConfig
from agent.detections import Tracks
from agent.rules.events import RuleEvent
from agent.rules.geometry import points_in_polygon
from agent.rules.incident import IncidentLifecycle, IncidentTiming, RuleIdentity, observation_of
from agent.rules.shapes import WatchedObjects, ZoneShape


class CrowdingRule:
    """Watches one zone for crowds.

    Args:
        rule: the rule's config.
        zone: the zone it names.
        class_names: the detector's class names, indexed by class id.
        anchors: per class name, the box anchor (default bottom_center).
    """

    def __init__(
        self, rule: CrowdingRuleConfig, zone: ZoneConfig, class_names: Sequence[str],
        anchors: Mapping[str, str] | None = None,
    ) -> None:
        self.name = rule.name
        self._rule = rule
        self._zone = ZoneShape(zone)
        self._objects = WatchedObjects(rule.classes, rule.min_score, class_names, anchors)
        self._crowd_since: float | None = None
        self._lifecycle = IncidentLifecycle(
            RuleIdentity(rule.name, "crowding", zone.name, None, rule.severity),
            IncidentTiming(rule.update_interval_s, rule.end_after_s, rule.cooldown_s),
        )

    def reset(self) -> None:
        self._crowd_since = None
        self._lifecycle.reset()

    def update(
        self, tracks: Tracks, frame_wh: tuple[int, int], ts_monotonic_s: float, ts_utc: datetime
    ) -> RuleEvent | None:
        """Feed one frame's tracks; return the incident event it causes, if any."""
        watched, points = self._objects.select(tracks)
        inside = watched.select(points_in_polygon(points, self._zone.polygon_px(frame_wh)))
        if len(inside) < self._rule.min_count:
            self._crowd_since = None
            inside = inside.select(np.zeros(len(inside), dtype=bool))
        elif self._crowd_since is None:
            self._crowd_since = ts_monotonic_s
        lasted = 0.0 if self._crowd_since is None else ts_monotonic_s - self._crowd_since
        if lasted < self._rule.min_duration_s:
            inside = inside.select(np.zeros(len(inside), dtype=bool))
        dwell = np.full(len(inside), lasted, np.float64)
        obs = observation_of(inside, dwell, self._objects.class_names, ts_monotonic_s, ts_utc)
        return self._lifecycle.update(obs)

    def finish(self, ts_monotonic_s: float, ts_utc: datetime) -> RuleEvent | None:
        return self._lifecycle.finish(ts_monotonic_s, ts_utc)
