"""Zone intrusion: an object of a watched class inside a zone for a minimum time.

An object counts once its anchor point (by default the bottom-centre of its
box: where a person stands) has stayed inside the zone for `min_duration_s`.
Being seen outside the zone resets its clock; not being seen at all (hidden
behind a pillar, missed by the detector) does not, for as long as the
tracker keeps its track (`track_retention_s`), since it comes back with the
same id. The incident itself (start, update, end, cooldown) is run by
`IncidentLifecycle`.
"""

from __future__ import annotations

__all__ = ["ZoneIntrusionRule"]

from datetime import datetime

import numpy as np

from agent.config import IntrusionRuleConfig
from agent.rules.zone_rule import ZoneRule
from agent.values.detections import Tracks
from agent.values.rule_events import RuleEvent


class ZoneIntrusionRule(ZoneRule):
    """Watches one zone of one camera.

    Args:
        rule: the rule's config.
        zone: the zone it names.
        class_names: the detector's class names, indexed by class id.
        anchors: per class name, the box anchor (default bottom_center).
    """

    _rule: IntrusionRuleConfig
    kind = "intrusion"

    def _clear(self) -> None:
        self._inside_since: dict[int, float] = {}

    def update(
        self, tracks: Tracks, frame_wh: tuple[int, int], ts_monotonic_s: float, ts_utc: datetime
    ) -> RuleEvent | None:
        """Feed one frame's tracks; return the incident event it causes, if any."""
        watched, is_inside = self._locate(tracks, frame_wh)
        ids = watched.track_id.tolist()
        for t, now_inside in zip(ids, is_inside.tolist(), strict=True):
            if now_inside:
                self._inside_since.setdefault(t, ts_monotonic_s)
            else:
                self._inside_since.pop(t, None)  # seen outside: the clock starts again on return
        self._seen.saw(ids, ts_monotonic_s)
        for t in self._seen.forget_unseen(ts_monotonic_s):
            self._inside_since.pop(t, None)
        inside = watched.select(is_inside)
        dwell = np.array([ts_monotonic_s - self._inside_since[int(t)] for t in inside.track_id], np.float64)
        counting = dwell >= self._rule.min_duration_s
        return self._observe(inside.select(counting), dwell[counting], ts_monotonic_s, ts_utc)
