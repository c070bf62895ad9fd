"""Loitering: an object staying inside a zone for at least `min_dwell_s`.

Each object keeps the time it entered. A short step outside the zone does
not reset that clock: only being seen out of the zone for longer than
`grace_s` does. An object nobody sees (hidden, missed by the detector) keeps
its clock as long as the tracker keeps its track (`track_retention_s`), or
`grace_s` if longer; then its state is evicted. The incident is run by
`IncidentLifecycle`; its count is the number of objects inside now whose
dwell has reached the threshold.
"""

from __future__ import annotations

__all__ = ["LoiteringRule"]

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from agent.config import LoiteringRuleConfig
from agent.rules.zone_rule import ZoneRule
from agent.values.detections import Tracks
from agent.values.rule_events import RuleEvent


@dataclass(slots=True)
class _Visit:
    entered_mono: float
    last_inside_mono: float


class LoiteringRule(ZoneRule):
    """Watches one zone for objects that stay.

    Args:
        rule: the rule's config.
        zone: the zone it names.
        class_names: the detector's class names, indexed by class id.
        anchors: per class name, the box anchor (default bottom_center).
    """

    _rule: LoiteringRuleConfig
    kind = "loitering"

    def _clear(self) -> None:
        self._visits: dict[int, _Visit] = {}

    def update(
        self, tracks: Tracks, frame_wh: tuple[int, int], ts_monotonic_s: float, ts_utc: datetime
    ) -> RuleEvent | None:
        """Feed one frame's tracks; return the incident event it causes, if any."""
        watched, is_inside = self._locate(tracks, frame_wh)
        inside = watched.select(is_inside)
        for t in inside.track_id.tolist():
            visit = self._visits.get(t)
            if visit is None:
                self._visits[t] = _Visit(ts_monotonic_s, ts_monotonic_s)
            else:
                visit.last_inside_mono = ts_monotonic_s
        self._seen.saw(watched.track_id.tolist(), ts_monotonic_s)
        grace = self._rule.grace_s
        unseen_limit = max(grace, self._seen.retention_s)
        self._visits = {
            t: v for t, v in self._visits.items() if ts_monotonic_s - v.last_inside_mono <= self._limit(t, v, grace)
        }
        self._seen.forget_unseen(ts_monotonic_s, unseen_limit)
        dwell = np.array([ts_monotonic_s - self._visits[int(t)].entered_mono for t in inside.track_id], np.float64)
        counting = dwell >= self._rule.min_dwell_s
        return self._observe(inside.select(counting), dwell[counting], ts_monotonic_s, ts_utc)

    def _limit(self, track_id: int, visit: _Visit, grace_s: float) -> float:
        """How long after it was last inside an object's visit is kept: `grace_s` once it has
        been seen outside, the tracker's retention (or the grace, if longer) while unseen."""
        seen = self._seen.last_seen_s(track_id)
        seen_outside = seen is not None and seen > visit.last_inside_mono
        return grace_s if seen_outside else max(grace_s, self._seen.retention_s)
