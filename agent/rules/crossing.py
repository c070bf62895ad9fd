"""Line crossing and wrong-way: objects passing a directed line.

Each object has a confirmed side (A or B, see `agent.rules.geometry`). It
changes side only once its anchor is at least `margin` beyond the line on the
other side, so an object standing on the line and jittering back and forth
never counts twice. A side change counts as a crossing when the anchor is
then within the segment's extent (walking round the end of a segment is not
a crossing). An object's side is remembered while the tracker may still
bring its track back (`track_retention_s`, the tracker's `max_lost_s`), so
a person who crosses behind a lamp post, unseen, and reappears on the other
side with the same id has crossed; after that the side is forgotten.

Crossings are instants, incidents have a span. The mapping, run by the
incident lifecycle every rule shares (`IncidentLifecycle` counting the
`total`): the first crossing in a direction starts an incident (count 1);
further crossings in that direction less than `incident_window_s` after the
previous one join it and are reported as updates carrying the running count
(at most one update per `update_interval_s`, so a burst is folded into the
next update); the incident ends `incident_window_s` after its last crossing,
repeating the total. A rule watching both directions keeps one incident per
direction, so every alert names one direction. Crossings during a cooldown
start no incident but are still counted in `counts`.
"""

from __future__ import annotations

__all__ = ["LineCrossingRule"]

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from agent.config import LineConfig, LineCrossingRuleConfig, WrongWayRuleConfig
from agent.rules.geometry import side_of_line
from agent.rules.incident import IncidentLifecycle, IncidentTiming, Observation, RuleIdentity
from agent.rules.shapes import LineShape, WatchedObjects
from agent.rules.track_memory import DEFAULT_TRACK_RETENTION_S, TrackMemory
from agent.values.detections import Tracks
from agent.values.rule_events import RuleEvent

SIDE_A, SIDE_B = -1, 1


@dataclass(frozen=True, slots=True)
class Crossing:
    """One object crossing the line."""

    track_id: int
    direction: str
    class_name: str
    score: float


def _observation(crossings: list[Crossing], mono: float, utc: datetime) -> Observation:
    """The crossings of one frame in one direction, as the incident lifecycle reads them."""
    confidence = max((c.score for c in crossings), default=0.0)
    return Observation(tuple(c.class_name for c in crossings), 0.0, confidence, mono, utc)


class LineCrossingRule:
    """Counts and reports crossings of one line (kinds line_crossing and wrong_way).

    Args:
        rule: the rule's config; a wrong_way rule watches its forbidden direction only.
        line: the line it names.
        class_names: the detector's class names, indexed by class id.
        anchors: per class name, the box anchor (default bottom_center).
        track_retention_s: how long the side of an unseen object is remembered
            (the tracker's `max_lost_s`).
    """

    def __init__(
        self,
        rule: LineCrossingRuleConfig | WrongWayRuleConfig,
        line: LineConfig,
        class_names: Sequence[str],
        anchors: Mapping[str, str] | None = None,
        *,
        track_retention_s: float = DEFAULT_TRACK_RETENTION_S,
    ) -> None:
        self.name = rule.name
        self._rule = rule
        self._line = LineShape(line)
        self._objects = WatchedObjects(rule.classes, rule.min_score, class_names, anchors)
        if isinstance(rule, WrongWayRuleConfig):
            kind, directions = "wrong_way", [rule.forbidden_direction]
        else:
            kind = "line_crossing"
            directions = ["A_to_B", "B_to_A"] if rule.direction == "both" else [rule.direction]
        keys = itertools.count(1)  # shared: an incident key names one incident of the whole rule
        # A crossing is an instant: an incident holds while crossings keep coming within the window.
        timing = IncidentTiming(rule.update_interval_s, rule.incident_window_s, rule.cooldown_s)
        self._incidents = {
            d: IncidentLifecycle(
                RuleIdentity(rule.name, kind, None, rule.line, rule.severity, d), timing, count="total", keys=keys
            )
            for d in directions
        }
        self._side: dict[int, int] = {}
        self._seen = TrackMemory(track_retention_s)
        self.counts: Counter[tuple[str, str]] = Counter()
        """Crossings since the start or the last reset, per (direction, class name)."""

    @property
    def remembered_tracks(self) -> int:
        """Objects whose side is remembered now (seen, or unseen for less than the retention)."""
        return len(self._side)

    def reset(self) -> None:
        self._side.clear()
        self._seen.clear()
        self.counts.clear()
        for incidents in self._incidents.values():
            incidents.reset()

    def update(
        self, tracks: Tracks, frame_wh: tuple[int, int], ts_monotonic_s: float, ts_utc: datetime
    ) -> list[RuleEvent]:
        """Feed one frame's tracks; return the incident events it causes (one per direction at most)."""
        crossings = self.crossings(tracks, frame_wh, ts_monotonic_s)
        events = []
        for direction, incidents in self._incidents.items():
            mine = [c for c in crossings if c.direction == direction]
            event = incidents.update(_observation(mine, ts_monotonic_s, ts_utc))
            if event is not None:
                events.append(event)
        return events

    def finish(self, ts_monotonic_s: float, ts_utc: datetime) -> list[RuleEvent]:
        ends = (i.finish(ts_monotonic_s, ts_utc) for i in self._incidents.values())
        return [e for e in ends if e is not None]

    def crossings(self, tracks: Tracks, frame_wh: tuple[int, int], ts_monotonic_s: float) -> list[Crossing]:
        """Advance every object's side; return the crossings this frame (all directions)."""
        watched, points = self._objects.select(tracks)
        ends = self._line.ends_px(frame_wh)
        distance, along = side_of_line(points, ends[0], ends[1])
        margin = self._rule.margin * (frame_wh[1] if self._rule.margin_units == "fraction" else 1.0)
        new_side = np.where(distance >= margin, SIDE_B, np.where(distance <= -margin, SIDE_A, 0))
        found = []
        ids = watched.track_id.tolist()
        for i, t in enumerate(ids):
            before = self._side.get(t, 0)
            now = int(new_side[i]) or before  # inside the margin band: keep the confirmed side
            self._side[t] = now
            if before and now != before and 0.0 <= along[i] <= 1.0:
                direction = "A_to_B" if now == SIDE_B else "B_to_A"
                name = self._objects.class_names[int(watched.class_id[i])]
                found.append(Crossing(t, direction, name, float(watched.score[i])))
                self.counts[(direction, name)] += 1
        self._seen.saw(ids, ts_monotonic_s)
        for t in self._seen.forget_unseen(ts_monotonic_s):
            del self._side[t]
        return found
