"""Alert accuracy against MOT ground truth: true zone and line events, matched to alerts.

From a MOTChallenge ground-truth file (`frame,id,x,y,w,h,...`, frame N is the
N-th decoded frame, 1-based) and a camera's zones and lines, this module
derives what a perfect system would report, then scores the alerts of a
replay against it:

- zone rules (intrusion): a person whose anchor (bottom-centre unless the
  camera config says otherwise) stays inside the zone over consecutive gt
  frames for at least the rule's minimum duration is a true presence from
  entry + minimum duration to exit. Presences of all people are merged when
  they overlap or are less than the rule's `end_after_s` apart, because the
  rule reports them as one incident. An alert incident spans its
  `first_seen`..`last_seen`; a match is an overlap (within `tolerance_s`).
- line rules (line_crossing, wrong_way): a gt track whose anchor goes from
  at least `margin` beyond one side of the segment to at least `margin`
  beyond the other, while within the segment's extent, is a true crossing at
  the frame it reaches the new side (the same dead band the rule uses, so a
  person standing on the line is not a crossing in either). Alert crossings
  are the count increments of each incident's messages (a start counts its
  count, an update the difference), at the message time; they are matched
  one-to-one to true crossings of the same direction within `tolerance_s`.

Precision is matched alerts over alerts, recall matched truths over truths.
Alert times map back to video time as `(ts - start_utc)`, with frame
`i` (0-based) at `start_utc + i / fps`, which is how file replays stamp frames.
"""

from __future__ import annotations

__all__ = [
    "EventScores",
    "TrueCrossing",
    "alert_crossings",
    "alert_intervals",
    "alerts_from_ground_truth",
    "evaluate_alerts",
    "match_crossings",
    "match_intervals",
    "true_crossings",
    "true_zone_intervals",
]

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from agent.alerts.builder import AlertBuilder
from agent.alerts.ids import Uuid7Factory
from agent.alerts.schema import Alert
from agent.config import (
    CameraConfig,
    IntrusionRuleConfig,
    LineConfig,
    LineCrossingRuleConfig,
    SiteInfo,
    WrongWayRuleConfig,
    ZoneConfig,
)
from agent.evaluation.mot import MotSequence
from agent.rules.geometry import (
    ANCHOR_CODES,
    anchor_points_by_class,
    points_in_polygon,
    polygon_to_pixels,
    side_of_line,
)
from agent.rules.ruleset import build_rules
from agent.values.detections import Tracks

Interval = tuple[float, float]


@dataclass(frozen=True, slots=True)
class TrueCrossing:
    """A gt track crossing a line: video time in seconds, track id, A_to_B or B_to_A."""

    t_s: float
    track_id: int
    direction: str


@dataclass(frozen=True, slots=True)
class EventScores:
    """How one rule's alerts compare with the truth."""

    rule: str
    kind: str
    true_events: int
    alert_events: int
    matched_true: int
    matched_alerts: int

    @property
    def precision(self) -> float:
        return self.matched_alerts / self.alert_events if self.alert_events else 1.0

    @property
    def recall(self) -> float:
        return self.matched_true / self.true_events if self.true_events else 1.0


def _anchors(seq: MotSequence, frame: int, anchor: str) -> tuple[np.ndarray, np.ndarray]:
    ids, boxes = seq.frames.get(frame, (np.zeros(0, np.int64), np.zeros((0, 4), np.float32)))
    codes = np.array([ANCHOR_CODES[anchor]], np.int8)
    return ids, anchor_points_by_class(boxes, np.zeros(len(ids), np.int64), codes)


def true_zone_intervals(
    seq: MotSequence,
    zone: ZoneConfig,
    frame_wh: tuple[int, int],
    fps: float,
    min_duration_s: float,
    merge_gap_s: float,
    anchor: str = "bottom_center",
) -> list[Interval]:
    """Merged spans (video seconds) during which someone has been in the zone for `min_duration_s`."""
    polygon = polygon_to_pixels(zone.points, zone.units, frame_wh)
    entered: dict[int, int] = {}
    spans: list[Interval] = []
    for frame in range(1, seq.last_frame + 2):  # one frame past the end closes open runs
        ids, points = _anchors(seq, frame, anchor)
        inside = set(ids[points_in_polygon(points, polygon)].tolist())
        for t in [t for t in entered if t not in inside]:
            first, last = entered.pop(t), frame - 1
            if (last - first) / fps >= min_duration_s:
                spans.append(((first - 1) / fps + min_duration_s, (last - 1) / fps))
        for t in inside:
            entered.setdefault(t, frame)
    return _merge(spans, merge_gap_s)


def _merge(spans: Iterable[Interval], gap_s: float) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(spans):
        if merged and start - merged[-1][1] <= gap_s:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def true_crossings(
    seq: MotSequence,
    line: LineConfig,
    frame_wh: tuple[int, int],
    fps: float,
    margin_px: float,
    anchor: str = "bottom_center",
) -> list[TrueCrossing]:
    """Every crossing of the line by a gt track, with the rule's dead band of `margin_px`."""
    ends = polygon_to_pixels(list(line.points), line.units, frame_wh)
    side: dict[int, int] = {}
    found: list[TrueCrossing] = []
    for frame in range(1, seq.last_frame + 1):
        ids, points = _anchors(seq, frame, anchor)
        distance, along = side_of_line(points, ends[0], ends[1])
        seen = {}
        for t, d, a in zip(ids.tolist(), distance.tolist(), along.tolist(), strict=True):
            before = side.get(t, 0)
            now = 1 if d >= margin_px else -1 if d <= -margin_px else before
            if before and now != before and 0.0 <= a <= 1.0:
                found.append(TrueCrossing((frame - 1) / fps, t, "A_to_B" if now == 1 else "B_to_A"))
            seen[t] = now
        side = seen  # a gt track that skips frames starts afresh, as a lost track does
    return found


def alert_intervals(alerts: Iterable[Alert], rule: str, start_utc: datetime) -> list[Interval]:
    """Span of each incident of a zone rule (video seconds), from its last message."""
    last: dict[str, Alert] = {}
    for a in alerts:
        if a.detection.rule == rule:
            last[a.detection.incident_id] = a
    return sorted(
        ((a.detection.first_seen - start_utc).total_seconds(), (a.detection.last_seen - start_utc).total_seconds())
        for a in last.values()
    )


def alert_crossings(alerts: Iterable[Alert], rule: str, start_utc: datetime) -> list[tuple[float, str]]:
    """(video seconds, direction) of each crossing a line rule's alerts report."""
    reported: dict[str, int] = defaultdict(int)
    out: list[tuple[float, str]] = []
    for a in sorted((a for a in alerts if a.detection.rule == rule), key=lambda a: a.detection.sequence):
        d = a.detection
        new = d.count - reported[d.incident_id]
        reported[d.incident_id] = max(reported[d.incident_id], d.count)
        t_s = (a.sent - start_utc).total_seconds()
        out.extend((t_s, d.direction or "") for _ in range(max(new, 0)))
    return out


def match_intervals(
    rule: str, truth: Sequence[Interval], alerted: Sequence[Interval], tolerance_s: float
) -> EventScores:
    """Score zone incidents: a truth and an alert match when their spans overlap."""

    def overlaps(a: Interval, b: Interval) -> bool:
        return a[0] <= b[1] + tolerance_s and b[0] <= a[1] + tolerance_s

    matched_true = sum(any(overlaps(t, a) for a in alerted) for t in truth)
    matched_alerts = sum(any(overlaps(a, t) for t in truth) for a in alerted)
    return EventScores(rule, "zone", len(truth), len(alerted), matched_true, matched_alerts)


def match_crossings(
    rule: str, truth: Sequence[TrueCrossing], alerted: Sequence[tuple[float, str]], tolerance_s: float
) -> EventScores:
    """Score crossings one-to-one: each alert crossing takes the nearest free true one of its direction."""
    free = sorted(truth, key=lambda c: c.t_s)
    taken = [False] * len(free)
    matched = 0
    for t_s, direction in sorted(alerted):
        best, best_gap = -1, tolerance_s
        for i, c in enumerate(free):
            gap = abs(c.t_s - t_s)
            if not taken[i] and c.direction == direction and gap <= best_gap:
                best, best_gap = i, gap
        if best >= 0:
            taken[best] = True
            matched += 1
    return EventScores(rule, "line", len(truth), len(alerted), matched, matched)


def evaluate_alerts(
    camera: CameraConfig,
    seq: MotSequence,
    alerts: Sequence[Alert],
    *,
    fps: float,
    frame_wh: tuple[int, int],
    start_utc: datetime,
    tolerance_s: float = 1.0,
) -> list[EventScores]:
    """Score every intrusion, line-crossing and wrong-way rule of a camera.

    Other kinds (loitering, crowding) have no ground-truth definition here and are skipped.
    """
    zones = {z.name: z for z in camera.zones}
    lines = {ln.name: ln for ln in camera.lines}
    anchor = camera.anchors.get("person", "bottom_center")
    scores = []
    for rule in camera.rules:
        if isinstance(rule, IntrusionRuleConfig):
            truth = true_zone_intervals(
                seq, zones[rule.zone], frame_wh, fps, rule.min_duration_s, rule.end_after_s, anchor
            )
            scores.append(match_intervals(rule.name, truth, alert_intervals(alerts, rule.name, start_utc), tolerance_s))
        elif isinstance(rule, LineCrossingRuleConfig | WrongWayRuleConfig):
            margin = rule.margin * (frame_wh[1] if rule.margin_units == "fraction" else 1.0)
            wanted = _directions(rule)
            truth_c = [
                c for c in true_crossings(seq, lines[rule.line], frame_wh, fps, margin, anchor) if c.direction in wanted
            ]
            scores.append(
                match_crossings(rule.name, truth_c, alert_crossings(alerts, rule.name, start_utc), tolerance_s)
            )
    return scores


def _directions(rule: LineCrossingRuleConfig | WrongWayRuleConfig) -> set[str]:
    if isinstance(rule, WrongWayRuleConfig):
        return {rule.forbidden_direction}
    return {"A_to_B", "B_to_A"} if rule.direction == "both" else {rule.direction}


def alerts_from_ground_truth(
    camera: CameraConfig,
    site: SiteInfo,
    seq: MotSequence,
    *,
    fps: float,
    frame_wh: tuple[int, int],
    start_utc: datetime,
    frame_step: int = 1,
) -> list[Alert]:
    """Run a camera's rules on the gt boxes themselves (as person tracks), no detector.

    `frame_step` > 1 feeds every n-th frame, as a replay at a lower detect rate does.
    """
    rules = build_rules(camera, ("person",), site.timezone)
    builder = AlertBuilder(site, camera.id, status="Test", ids=Uuid7Factory(camera.id))
    alerts: list[Alert] = []
    mono, utc = 0.0, start_utc
    for frame in range(1, seq.last_frame + 1, frame_step):
        ids, boxes = seq.frames.get(frame, (np.zeros(0, np.int64), np.zeros((0, 4), np.float32)))
        tracks = Tracks(boxes, np.ones(len(ids), np.float32), np.zeros(len(ids), np.int32), ids)
        mono = (frame - 1) / fps
        utc = start_utc + timedelta(seconds=mono)
        alerts.extend(builder.build(e) for e in rules.update(tracks, frame_wh, mono, utc))
    alerts.extend(builder.build(e) for e in rules.finish(mono, utc))
    return alerts
