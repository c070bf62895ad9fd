"""Line crossing and wrong-way: objects passing a directed line.

Each object has a confirmed side (A or B, see `agent.rules.geometry`). It
changes side only once its anchor is at least `margin` beyond the line on the
other side, so an object standing on the line and jittering back and forth
never counts twice. A side change counts as a crossing when the anchor is
then within the segment's extent (walking round the end of a segment is not
a crossing). Per-object state is dropped as soon as the track is gone.

Crossings are instants, incidents have a span. The mapping: the first
crossing in a direction starts an incident (count 1); further crossings in
that direction less than `incident_window_s` after the previous one join it
and are reported as updates carrying the running count (at most one update
per `update_interval_s`, so a burst is folded into the next update); the
incident ends `incident_window_s` after its last crossing, repeating the
total. A rule watching both directions keeps one incident per direction, so
every alert names one direction. Crossings during a cooldown start no
incident but are still counted in `counts`.
"""

from __future__ import annotations

__all__ = ["LineCrossingRule"]

import itertools
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from agent.config import LineConfig, LineCrossingRuleConfig, WrongWayRuleConfig
from agent.rules.geometry import side_of_line
from agent.rules.shapes import LineShape, WatchedObjects
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


@dataclass(slots=True)
class _OpenIncident:
    key: int
    first_seen_utc: datetime
    last_seen_utc: datetime
    last_crossing_mono: float
    last_update_mono: float
    total: int
    reported_total: int
    confidence: float
    classes: Counter[str] = field(default_factory=Counter)


class _DirectionIncidents:
    """Start/update/end of crossing incidents in one direction."""

    def __init__(
        self, rule: LineCrossingRuleConfig | WrongWayRuleConfig, kind: str, direction: str, keys: Iterator[int]
    ) -> None:
        self._rule = rule
        self._kind = kind
        self._direction = direction
        self._open: _OpenIncident | None = None
        # Shared by the rule's directions: an incident key names one incident of the whole rule.
        self._keys = keys
        self._cooldown_until = float("-inf")

    def reset(self) -> None:
        self._open = None
        self._cooldown_until = float("-inf")

    def update(self, crossings: list[Crossing], mono: float, utc: datetime) -> RuleEvent | None:
        inc = self._open
        if crossings and inc is None:
            if mono < self._cooldown_until:
                return None
            inc = self._open = _OpenIncident(next(self._keys), utc, utc, mono, mono, 0, 0, 0.0)
            self._add(inc, crossings, mono, utc)
            inc.reported_total = inc.total
            return self._event("start", inc, utc)
        if inc is None:
            return None
        if crossings:
            self._add(inc, crossings, mono, utc)
        elif mono - inc.last_crossing_mono >= self._rule.incident_window_s:
            return self.finish(mono, utc)
        if inc.total != inc.reported_total and mono - inc.last_update_mono >= self._rule.update_interval_s:
            inc.reported_total, inc.last_update_mono = inc.total, mono
            return self._event("update", inc, utc)
        return None

    def finish(self, mono: float, utc: datetime) -> RuleEvent | None:
        inc = self._open
        if inc is None:
            return None
        self._open = None
        self._cooldown_until = mono + self._rule.cooldown_s
        return self._event("end", inc, utc)

    @staticmethod
    def _add(inc: _OpenIncident, crossings: list[Crossing], mono: float, utc: datetime) -> None:
        inc.total += len(crossings)
        inc.last_crossing_mono, inc.last_seen_utc = mono, utc
        inc.confidence = max(inc.confidence, max(c.score for c in crossings))
        inc.classes.update(c.class_name for c in crossings)

    def _event(self, phase: str, inc: _OpenIncident, utc: datetime) -> RuleEvent:
        return RuleEvent(
            phase=phase,  # type: ignore[arg-type]
            incident_key=inc.key,
            rule=self._rule.name,
            rule_kind=self._kind,
            zone=None,
            line=self._rule.line,
            class_name=inc.classes.most_common(1)[0][0],
            count=inc.total if phase != "update" else inc.reported_total,
            dwell_s=0.0,
            confidence=round(inc.confidence, 4),
            first_seen_utc=inc.first_seen_utc,
            last_seen_utc=inc.last_seen_utc,
            ts_utc=utc,
            severity=self._rule.severity,
            direction=self._direction,
        )


class LineCrossingRule:
    """Counts and reports crossings of one line (kinds line_crossing and wrong_way).

    Args:
        rule: the rule's config; a wrong_way rule watches its forbidden direction only.
        line: the line it names.
        class_names: the detector's class names, indexed by class id.
        anchors: per class name, the box anchor (default bottom_center).
    """

    def __init__(
        self,
        rule: LineCrossingRuleConfig | WrongWayRuleConfig,
        line: LineConfig,
        class_names: Sequence[str],
        anchors: Mapping[str, str] | None = None,
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
        keys = itertools.count(1)
        self._incidents = {d: _DirectionIncidents(rule, kind, d, keys) for d in directions}
        self._side: dict[int, int] = {}
        self.counts: Counter[tuple[str, str]] = Counter()
        """Crossings since the start or the last reset, per (direction, class name)."""

    def reset(self) -> None:
        self._side.clear()
        self.counts.clear()
        for incidents in self._incidents.values():
            incidents.reset()

    def update(
        self, tracks: Tracks, frame_wh: tuple[int, int], ts_monotonic_s: float, ts_utc: datetime
    ) -> list[RuleEvent]:
        """Feed one frame's tracks; return the incident events it causes (one per direction at most)."""
        crossings = self.crossings(tracks, frame_wh)
        events = []
        for direction, incidents in self._incidents.items():
            mine = [c for c in crossings if c.direction == direction]
            event = incidents.update(mine, ts_monotonic_s, ts_utc)
            if event is not None:
                events.append(event)
        return events

    def finish(self, ts_monotonic_s: float, ts_utc: datetime) -> list[RuleEvent]:
        ends = (i.finish(ts_monotonic_s, ts_utc) for i in self._incidents.values())
        return [e for e in ends if e is not None]

    def crossings(self, tracks: Tracks, frame_wh: tuple[int, int]) -> list[Crossing]:
        """Advance every object's side; return the crossings this frame (all directions)."""
        watched, points = self._objects.select(tracks)
        ends = self._line.ends_px(frame_wh)
        distance, along = side_of_line(points, ends[0], ends[1])
        margin = self._rule.margin * (frame_wh[1] if self._rule.margin_units == "fraction" else 1.0)
        new_side = np.where(distance >= margin, SIDE_B, np.where(distance <= -margin, SIDE_A, 0))
        sides: dict[int, int] = {}
        found = []
        for i, t in enumerate(watched.track_id.tolist()):
            before = self._side.get(t, 0)
            now = int(new_side[i]) or before  # inside the margin band: keep the confirmed side
            sides[t] = now
            if before and now != before and 0.0 <= along[i] <= 1.0:
                direction = "A_to_B" if now == SIDE_B else "B_to_A"
                name = self._objects.class_names[int(watched.class_id[i])]
                found.append(Crossing(t, direction, name, float(watched.score[i])))
                self.counts[(direction, name)] += 1
        self._side = sides  # tracks no longer present are evicted here
        return found
