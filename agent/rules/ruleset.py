"""All rules of one camera, built from its config, each armed by its schedule.

`build_rules` is the one place that knows which class runs which rule kind.
`RuleSet.update` feeds a frame's tracks to every rule: a rule outside its
schedule sees no objects, so its open incident ends on its own timing and
its per-object state is dropped once the tracker would have dropped those
tracks (`track_retention_s`), and nothing carries over into the next armed
period.
"""

from __future__ import annotations

__all__ = ["RuleSet", "build_rules"]

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from agent.config import (
    CameraConfig,
    CrowdingRuleConfig,
    IntrusionRuleConfig,
    LineCrossingRuleConfig,
    LoiteringRuleConfig,
    RuleConfig,
    WrongWayRuleConfig,
)
from agent.logs import log_event
from agent.rules.crossing import LineCrossingRule
from agent.rules.crowding import CrowdingRule
from agent.rules.intrusion import ZoneIntrusionRule
from agent.rules.loitering import LoiteringRule
from agent.rules.occupancy import ZoneOccupancy
from agent.rules.schedule import Schedule
from agent.rules.track_memory import DEFAULT_TRACK_RETENTION_S
from agent.values.detections import Tracks
from agent.values.rule_events import RuleEvent

_log = logging.getLogger(__name__)


class Rule(Protocol):
    """What every rule class offers."""

    name: str

    def update(
        self, tracks: Tracks, frame_wh: tuple[int, int], ts_monotonic_s: float, ts_utc: datetime
    ) -> RuleEvent | list[RuleEvent] | None: ...

    def finish(self, ts_monotonic_s: float, ts_utc: datetime) -> RuleEvent | list[RuleEvent] | None: ...

    def reset(self) -> None: ...


def _as_list(result: RuleEvent | list[RuleEvent] | None) -> list[RuleEvent]:
    if result is None:
        return []
    return result if isinstance(result, list) else [result]


class RuleSet:
    """One camera's rules with their schedules, plus per-zone occupancy.

    Args:
        rules: (rule, schedule or None for always armed) pairs.
        occupancy: the camera's zone occupancy counter.
    """

    def __init__(self, rules: Sequence[tuple[Rule, Schedule | None]], occupancy: ZoneOccupancy) -> None:
        self.rules = [r for r, _ in rules]
        self._schedules = [s for _, s in rules]
        self._armed = [True] * len(rules)
        self.occupancy = occupancy

    def update(
        self, tracks: Tracks, frame_wh: tuple[int, int], ts_monotonic_s: float, ts_utc: datetime
    ) -> list[RuleEvent]:
        """Feed one frame to every rule; return the events in rule order."""
        self.occupancy.update(tracks, frame_wh)
        events: list[RuleEvent] = []
        empty = Tracks.empty()
        for i, (rule, schedule) in enumerate(zip(self.rules, self._schedules, strict=True)):
            armed = schedule is None or schedule.armed(ts_utc)
            if armed != self._armed[i]:
                self._armed[i] = armed
                log_event(_log, "rule_armed" if armed else "rule_disarmed", rule=rule.name)
            events.extend(_as_list(rule.update(tracks if armed else empty, frame_wh, ts_monotonic_s, ts_utc)))
        return events

    def finish(self, ts_monotonic_s: float, ts_utc: datetime) -> list[RuleEvent]:
        """End every open incident (end of a replay, shutdown)."""
        return [e for rule in self.rules for e in _as_list(rule.finish(ts_monotonic_s, ts_utc))]

    def reset(self) -> None:
        for rule in self.rules:
            rule.reset()
        self.occupancy.reset()
        self._armed = [True] * len(self.rules)


def _build_one(rule: RuleConfig, camera: CameraConfig, class_names: Sequence[str], retention_s: float) -> Rule:
    zones = {z.name: z for z in camera.zones}
    lines = {ln.name: ln for ln in camera.lines}
    anchors = dict(camera.anchors)
    if isinstance(rule, IntrusionRuleConfig):
        return ZoneIntrusionRule(rule, zones[rule.zone], class_names, anchors, track_retention_s=retention_s)
    if isinstance(rule, LoiteringRuleConfig):
        return LoiteringRule(rule, zones[rule.zone], class_names, anchors, track_retention_s=retention_s)
    if isinstance(rule, CrowdingRuleConfig):
        return CrowdingRule(rule, zones[rule.zone], class_names, anchors, track_retention_s=retention_s)
    if isinstance(rule, LineCrossingRuleConfig | WrongWayRuleConfig):
        return LineCrossingRule(rule, lines[rule.line], class_names, anchors, track_retention_s=retention_s)
    raise TypeError(f"no rule class for kind {rule.kind!r}")


def build_rules(
    camera: CameraConfig,
    class_names: Sequence[str],
    timezone: str,
    *,
    track_retention_s: float = DEFAULT_TRACK_RETENTION_S,
) -> RuleSet:
    """Build every rule of a camera (its config is already validated).

    Args:
        camera: the camera's config: zones, lines, anchors and rules.
        class_names: the detector's class names, indexed by class id.
        timezone: IANA time zone of the site, for schedules.
        track_retention_s: how long the rules remember an object they no longer
            see: the tracker's `max_lost_s`, as long as it may bring the track back.
    """
    built = [
        (_build_one(r, camera, class_names, track_retention_s), Schedule(r.schedule, timezone) if r.schedule else None)
        for r in camera.rules
    ]
    return RuleSet(built, ZoneOccupancy(camera.zones, class_names, dict(camera.anchors)))
