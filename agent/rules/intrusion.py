"""Zone intrusion: an object of a watched class inside a zone for a minimum time.

An object counts once its anchor point (bottom-centre of its box: where a
person stands) has stayed inside the zone for `min_duration_s`; leaving the
zone resets its clock. The incident itself (start, update, end, cooldown)
is run by `IncidentLifecycle`.
"""

from __future__ import annotations

__all__ = ["ZoneIntrusionRule"]

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from agent.config.schema import IntrusionRuleConfig, ZoneConfig
from agent.detections import Tracks
from agent.rules.events import RuleEvent
from agent.rules.geometry import anchor_points, points_in_polygon, polygon_to_pixels
from agent.rules.incident import IncidentLifecycle, IncidentTiming, Observation, RuleIdentity


class ZoneIntrusionRule:
    """Watches one zone of one camera.

    Args:
        rule: the rule's config.
        zone: the zone it names.
        class_names: the detector's class names, indexed by class id.
    """

    def __init__(self, rule: IntrusionRuleConfig, zone: ZoneConfig, class_names: Sequence[str]) -> None:
        self.name = rule.name
        self._rule = rule
        self._zone = zone
        self._class_names = list(class_names)
        self._watched = np.array(
            [i for i, n in enumerate(class_names) if n in set(rule.classes)], dtype=np.int32
        )
        self._polygon: np.ndarray | None = None
        self._frame_wh: tuple[int, int] | None = None
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
        inside = self._inside_mask(tracks, frame_wh)
        ids = tracks.track_id[inside]
        # Only objects inside now keep a clock: others (gone or outside) are evicted.
        self._inside_since = {
            int(t): self._inside_since.get(int(t), ts_monotonic_s) for t in ids
        }
        dwell = np.array([ts_monotonic_s - self._inside_since[int(t)] for t in ids], dtype=np.float64)
        counting = dwell >= self._rule.min_duration_s
        obs = self._observation(tracks.select(inside), dwell, counting, ts_monotonic_s, ts_utc)
        return self._lifecycle.update(obs)

    def finish(self, ts_monotonic_s: float, ts_utc: datetime) -> RuleEvent | None:
        return self._lifecycle.finish(ts_monotonic_s, ts_utc)

    def _polygon_px(self, frame_wh: tuple[int, int]) -> np.ndarray:
        # Cached per frame size: a camera's resolution rarely changes.
        if self._polygon is None or self._frame_wh != frame_wh:
            self._polygon = polygon_to_pixels(self._zone.points, self._zone.units, frame_wh)
            self._frame_wh = frame_wh
        return self._polygon

    def _inside_mask(self, tracks: Tracks, frame_wh: tuple[int, int]) -> np.ndarray:
        wanted = np.isin(tracks.class_id, self._watched) & (tracks.score >= self._rule.min_score)
        polygon = self._polygon_px(frame_wh)
        return wanted & points_in_polygon(anchor_points(tracks.box_xyxy_px), polygon)

    def _observation(
        self, inside: Tracks, dwell: np.ndarray, counting: np.ndarray, mono: float, utc: datetime
    ) -> Observation:
        n = int(counting.sum())
        if n == 0:
            return Observation(0, "", 0.0, 0.0, mono, utc)
        classes = Counter(self._class_names[int(c)] for c in inside.class_id[counting])
        return Observation(
            count=n,
            class_name=classes.most_common(1)[0][0],
            dwell_s=float(dwell[counting].max()),
            confidence=float(inside.score[counting].max()),
            ts_monotonic_s=mono,
            ts_utc=utc,
        )
