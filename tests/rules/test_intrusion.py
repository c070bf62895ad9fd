"""Zone intrusion: minimum duration, one incident from start to end, updates, cooldown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from agent.config import IntrusionRuleConfig, ZoneConfig
from agent.rules.intrusion import ZoneIntrusionRule
from agent.values.detections import Tracks

CLASSES = ("person", "bicycle", "car")
ZONE = ZoneConfig(name="yard", points=[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)])
T0 = datetime(2026, 1, 1, 22, 0, tzinfo=UTC)
FRAME_WH = (1000, 500)


def rule(**kw: float) -> ZoneIntrusionRule:
    cfg = IntrusionRuleConfig(
        kind="intrusion",
        name="yard-intrusion",
        zone="yard",
        classes=["person"],
        min_duration_s=kw.get("min_duration_s", 2.0),
        update_interval_s=kw.get("update_interval_s", 1.0),
        end_after_s=kw.get("end_after_s", 1.0),
        cooldown_s=kw.get("cooldown_s", 5.0),
    )
    return ZoneIntrusionRule(cfg, ZONE, CLASSES)


def people(xs: list[float], ids: list[int], cls: int = 0) -> Tracks:
    """People standing at x (pixels), feet at y=400."""
    boxes = [[x - 10, 300, x + 10, 400] for x in xs]
    n = len(xs)
    return Tracks(np.array(boxes, np.float32).reshape(-1, 4), np.full(n, 0.9), np.full(n, cls), ids)


def feed(r: ZoneIntrusionRule, frames: list[Tracks], fps: float = 5.0, t_start: float = 0.0) -> list:
    events = []
    for i, tracks in enumerate(frames):
        t = t_start + i / fps
        ev = r.update(tracks, FRAME_WH, t, T0 + timedelta(seconds=t))
        if ev is not None:
            events.append((round(t, 2), ev))
    return events


def test_brief_visit_shorter_than_min_duration_is_quiet() -> None:
    r = rule(min_duration_s=2.0)
    frames = [people([100], [1])] * 5 + [Tracks.empty()] * 20  # 1 s inside
    assert feed(r, frames) == []


def test_one_incident_from_start_to_end() -> None:
    r = rule(min_duration_s=2.0, end_after_s=1.0)
    frames = [people([100], [1])] * 20 + [Tracks.empty()] * 10  # 4 s inside, then gone
    events = feed(r, frames)
    assert [(t, e.phase) for t, e in events] == [(2.0, "start"), (4.8, "end")]
    start, end = events[0][1], events[1][1]
    assert start.incident_key == end.incident_key == 1
    assert start.count == 1 and start.class_name == "person" and start.dwell_s == 2.0
    assert end.count == 0 and end.dwell_s == 3.8
    assert end.first_seen_utc == T0 + timedelta(seconds=2.0)
    assert end.last_seen_utc == T0 + timedelta(seconds=3.8)


def test_outside_zone_or_other_class_never_counts() -> None:
    r = rule(min_duration_s=0.0)
    frames = [people([800], [1])] * 10 + [people([100], [2], cls=2)] * 10
    assert feed(r, frames) == []


def test_update_only_when_count_changes_and_rate_limited() -> None:
    r = rule(min_duration_s=0.0, update_interval_s=1.0)
    frames = (
        [people([100], [1])] * 3
        + [people([100, 200], [1, 2])] * 2  # count 2 at t=0.6, too soon after the start
        + [people([100, 200], [1, 2])] * 5  # still 2: one update once the interval allows
        + [people([100, 200, 300], [1, 2, 3])]  # 3 at t=2.0
    )
    phases = [(t, e.phase, e.count) for t, e in feed(r, frames)]
    assert phases == [(0.0, "start", 1), (1.0, "update", 2), (2.0, "update", 3)]


def test_cooldown_stops_flapping_at_the_zone_edge() -> None:
    r = rule(min_duration_s=0.0, end_after_s=0.4, cooldown_s=5.0)
    inside, gone = people([100], [1]), Tracks.empty()
    frames = ([inside] * 2 + [gone] * 3) * 7  # in and out every second for 7 s; the first end is at 0.6 s
    starts = [t for t, e in feed(r, frames) if e.phase == "start"]
    assert starts == [0.0, 6.0]  # 6.0 is the first entry after the cooldown (0.6 + 5 s)


def test_leaving_resets_the_dwell_clock() -> None:
    r = rule(min_duration_s=2.0)
    frames = ([people([100], [1])] * 8 + [people([800], [1])]) * 3  # 1.6 s in, step out, repeat
    assert feed(r, frames) == []


def test_finish_closes_an_open_incident() -> None:
    r = rule(min_duration_s=0.0)
    feed(r, [people([100], [1])] * 3)
    end = r.finish(10.0, T0 + timedelta(seconds=10))
    assert end is not None and end.phase == "end"
    assert r.finish(11.0, T0) is None


def test_dwell_clock_survives_the_tracker_losing_the_object_for_a_moment() -> None:
    # 1.2 s inside, hidden behind a pillar for 0.6 s (the tracker keeps the track), 1 s inside again:
    # the person has been inside 2.8 s and alerts at 2.0 s, as if never hidden.
    r = rule(min_duration_s=2.0)
    frames = [people([100], [1])] * 6 + [Tracks.empty()] * 3 + [people([100], [1])] * 5
    assert [(t, e.phase) for t, e in feed(r, frames)] == [(2.0, "start")]


def test_dwell_clock_restarts_when_the_object_is_seen_outside_or_gone_longer_than_the_tracker_keeps_it() -> None:
    outside = people([800], [1])
    left_zone = [people([100], [1])] * 6 + [outside] * 3 + [people([100], [1])] * 5
    assert feed(rule(min_duration_s=2.0), left_zone) == []  # seen outside: the clock starts again
    cfg = IntrusionRuleConfig(kind="intrusion", name="yard-intrusion", zone="yard", min_duration_s=2.0)
    r = ZoneIntrusionRule(cfg, ZONE, CLASSES, track_retention_s=0.5)
    gone = [people([100], [1])] * 6 + [Tracks.empty()] * 3 + [people([100], [1])] * 5  # unseen 0.6 s > 0.5 s
    assert feed(r, gone) == []
