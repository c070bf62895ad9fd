"""What every zone rule shares: its zone, the objects it watches, its incident lifecycle.

A zone rule (intrusion, loitering, crowding) differs only in how it turns
the objects inside its zone into an observation; `ZoneRule` owns the rest
(including `TrackMemory`: when each watched object was last seen, so
per-object state outlives a moment the tracker cannot see it) and subclasses
implement `update` and `_clear`.
"""

from __future__ import annotations

__all__ = ["ZoneRule"]

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import numpy as np

from agent.config import ZoneConfig
from agent.rules.geometry import points_in_polygon
from agent.rules.incident import IncidentLifecycle, IncidentTiming, RuleIdentity, observation_of
from agent.rules.shapes import WatchedObjects, ZoneShape
from agent.rules.track_memory import DEFAULT_TRACK_RETENTION_S, TrackMemory
from agent.values.detections import Tracks
from agent.values.rule_events import RuleEvent


class ZoneRule:
    """Base of the rules that watch one zone of one camera.

    Args:
        rule: the rule's config (name, classes, min_score, severity, timing).
        zone: the zone it names.
        class_names: the detector's class names, indexed by class id.
        anchors: per class name, the box anchor (default bottom_center).
        track_retention_s: how long per-object state of an unseen object is kept
            (the tracker's `max_lost_s`).
    """

    kind: ClassVar[str]

    def __init__(
        self,
        rule: Any,
        zone: ZoneConfig,
        class_names: Sequence[str],
        anchors: Mapping[str, str] | None = None,
        *,
        track_retention_s: float = DEFAULT_TRACK_RETENTION_S,
    ) -> None:
        self.name: str = rule.name
        self._rule = rule
        self._zone = ZoneShape(zone)
        self._objects = WatchedObjects(rule.classes, rule.min_score, class_names, anchors)
        self._lifecycle = IncidentLifecycle(
            RuleIdentity(rule.name, self.kind, zone.name, None, rule.severity),
            IncidentTiming(rule.update_interval_s, rule.end_after_s, rule.cooldown_s),
            count="present",  # held open while the condition holds, for end_after_s past it
        )
        self._seen = TrackMemory(track_retention_s)
        self._clear()

    def _clear(self) -> None:
        """Drop the subclass's per-object state."""

    def reset(self) -> None:
        self._clear()
        self._seen.clear()
        self._lifecycle.reset()

    def finish(self, ts_monotonic_s: float, ts_utc: datetime) -> RuleEvent | None:
        return self._lifecycle.finish(ts_monotonic_s, ts_utc)

    def _inside(self, tracks: Tracks, frame_wh: tuple[int, int]) -> Tracks:
        """The watched objects whose anchor lies inside the zone."""
        watched, inside = self._locate(tracks, frame_wh)
        return watched.select(inside)

    def _locate(self, tracks: Tracks, frame_wh: tuple[int, int]) -> tuple[Tracks, np.ndarray]:
        """The watched objects, and which of them have their anchor inside the zone."""
        watched, points = self._objects.select(tracks)
        return watched, points_in_polygon(points, self._zone.polygon_px(frame_wh))

    def _observe(
        self, counting: Tracks, dwell_s: np.ndarray, ts_monotonic_s: float, ts_utc: datetime
    ) -> RuleEvent | None:
        """Feed the objects that satisfy the rule now (and their dwell) to the lifecycle."""
        obs = observation_of(counting, dwell_s, self._objects.class_names, ts_monotonic_s, ts_utc)
        return self._lifecycle.update(obs)
