"""Crowding: at least `min_count` watched objects inside a zone for `min_duration_s`.

The rule keeps one clock: when the zone first held a crowd. A frame with
fewer objects stops that clock (the lifecycle's `end_after_s` keeps a brief
dip, such as one person hidden for a frame, from ending an open incident).
No per-object state is kept.
"""

from __future__ import annotations

__all__ = ["CrowdingRule"]

from datetime import datetime

import numpy as np

from agent.config import CrowdingRuleConfig
from agent.rules.zone_rule import ZoneRule
from agent.values.detections import Tracks
from agent.values.rule_events import RuleEvent


class CrowdingRule(ZoneRule):
    """Watches one zone for crowds.

    Args:
        rule: the rule's config.
        zone: the zone it names.
        class_names: the detector's class names, indexed by class id.
        anchors: per class name, the box anchor (default bottom_center).
    """

    _rule: CrowdingRuleConfig
    kind = "crowding"

    def _clear(self) -> None:
        self._crowd_since: float | None = None

    def update(
        self, tracks: Tracks, frame_wh: tuple[int, int], ts_monotonic_s: float, ts_utc: datetime
    ) -> RuleEvent | None:
        """Feed one frame's tracks; return the incident event it causes, if any."""
        inside = self._inside(tracks, frame_wh)
        if len(inside) < self._rule.min_count:
            self._crowd_since = None
            inside = inside.select(np.zeros(len(inside), dtype=bool))
        elif self._crowd_since is None:
            self._crowd_since = ts_monotonic_s
        lasted = 0.0 if self._crowd_since is None else ts_monotonic_s - self._crowd_since
        if lasted < self._rule.min_duration_s:
            inside = inside.select(np.zeros(len(inside), dtype=bool))
        dwell = np.full(len(inside), lasted, np.float64)
        return self._observe(inside, dwell, ts_monotonic_s, ts_utc)
