"""Loitering, crowding, occupancy, per-class anchors, schedules and the per-camera rule set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from agent.config import (
    CameraConfig,
    CrowdingRuleConfig,
    LoiteringRuleConfig,
    ScheduleConfig,
    ZoneConfig,
)
from agent.rules.crowding import CrowdingRule
from agent.rules.loitering import LoiteringRule
from agent.rules.ruleset import build_rules
from agent.rules.schedule import Schedule
from agent.values.detections import Tracks

CLASSES = ("person", "car")
ZONE = ZoneConfig(name="door", points=[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)])
FRAME_WH = (1000, 500)
T0 = datetime(2026, 1, 5, 22, 0, tzinfo=UTC)  # a Monday


def people(xs: list[float], ids: list[int]) -> Tracks:
    boxes = [[x - 10, 300, x + 10, 400] for x in xs]
    n = len(xs)
    return Tracks(np.array(boxes, np.float32).reshape(-1, 4), np.full(n, 0.7), np.zeros(n), ids)


def feed(rule: object, frames: list[Tracks], fps: float = 2.0) -> list[tuple[float, str, int]]:
    out = []
    for i, tracks in enumerate(frames):
        t = i / fps
        e = rule.update(tracks, FRAME_WH, t, T0 + timedelta(seconds=t))  # type: ignore[attr-defined]
        if e is not None:
            out.append((t, e.phase, e.count))
    return out


def loitering(grace_s: float = 2.0) -> LoiteringRule:
    cfg = LoiteringRuleConfig(
        kind="loitering",
        name="door-loiter",
        zone="door",
        min_dwell_s=10,
        grace_s=grace_s,
        end_after_s=1,
        update_interval_s=1,
        cooldown_s=0,
    )
    return LoiteringRule(cfg, ZONE, CLASSES)


def test_loitering_survives_a_short_step_out_but_not_a_long_one() -> None:
    inside, out = people([100], [1]), people([800], [1])
    short_break = [inside] * 12 + [out] * 2 + [inside] * 12  # 1 s out, within the 2 s grace
    assert feed(loitering(), short_break)[0] == (10.0, "start", 1)
    long_break = [inside] * 12 + [out] * 6 + [inside] * 12  # 3 s out: the clock restarts
    assert feed(loitering(), long_break) == []


def test_loitering_clock_survives_a_brief_tracker_loss_but_not_a_departure() -> None:
    inside, gone = people([100], [1]), Tracks.empty()
    frames = [inside] * 12 + [gone] + [inside] * 12 + [gone] * 10 + [inside] * 12
    events = feed(loitering(), frames)
    # One frame lost keeps the clock (start at 10 s); 5 s gone evicts the track, so the
    # 6 s it then spends inside again start no second incident.
    assert [e[:2] for e in events] == [(10.0, "start"), (13.0, "end")]


def test_loitering_clock_survives_the_tracker_losing_the_object_longer_than_the_grace() -> None:
    # The grace is for steps outside; an object nobody sees is kept as long as the tracker keeps
    # its track (3 s by default), so 2 s behind a pillar do not restart a 1 s-grace clock.
    inside, gone = people([100], [1]), Tracks.empty()
    frames = [inside] * 12 + [gone] * 4 + [inside] * 12
    assert feed(loitering(grace_s=1.0), frames)[0] == (10.0, "start", 1)


def test_crowding_needs_the_count_for_the_duration() -> None:
    cfg = CrowdingRuleConfig(
        kind="crowding",
        name="door-crowd",
        zone="door",
        min_count=3,
        min_duration_s=2,
        end_after_s=1,
        update_interval_s=1,
        cooldown_s=0,
    )
    rule = CrowdingRule(cfg, ZONE, CLASSES)
    three, two = people([100, 150, 200], [1, 2, 3]), people([100, 150], [1, 2])
    assert feed(rule, [three] * 3 + [two] * 4) == []  # 1 s of crowd only
    events = feed(rule, [three] * 8 + [two] * 4)
    assert [e[:2] for e in events] == [(2.0, "start"), (4.5, "end")]  # last crowd at 3.5 s + end_after_s
    assert events[0][2] == 3


def camera(**rule_extra: object) -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "id": "cam",
            "source": "x.mp4",
            "zones": [ZONE.model_dump()],
            "anchors": {"car": "center"},
            "rules": [
                {
                    "kind": "intrusion",
                    "name": "door-in",
                    "zone": "door",
                    "min_duration_s": 0,
                    "cooldown_s": 0,
                    "end_after_s": 0.5,
                    **rule_extra,
                }
            ],
        }
    )


def test_occupancy_counts_per_class_with_per_class_anchors() -> None:
    rules = build_rules(camera(), CLASSES, "UTC")
    # A car whose box straddles the zone edge: its centre (x=490) is inside, a person's feet at x=510 are not.
    tracks = Tracks(
        np.array([[440, 100, 540, 200], [500, 300, 520, 400], [90, 300, 110, 400]], np.float32),
        [0.9, 0.9, 0.9],
        [1, 0, 0],
        [1, 2, 3],
    )
    rules.update(tracks, FRAME_WH, 0.0, T0)
    assert rules.occupancy.counts == {"door": {"car": 1, "person": 1}}


def test_schedule_crossing_midnight_holidays_and_after_hours() -> None:
    night = Schedule(
        ScheduleConfig.model_validate(
            {"windows": [{"days": ["mon"], "start": "22:00", "end": "06:00"}], "holidays": ["2026-01-12"]}
        ),
        "Europe/London",
    )
    monday = datetime(2026, 1, 5, tzinfo=UTC)  # London is on UTC in January
    assert night.armed(monday + timedelta(hours=23))
    assert night.armed(monday + timedelta(days=1, hours=5, minutes=59))  # Tuesday morning, Monday's window
    assert not night.armed(monday + timedelta(days=1, hours=6))
    assert not night.armed(monday + timedelta(hours=21, minutes=59))
    assert not night.armed(monday + timedelta(days=7, hours=23))  # 12 January is a holiday
    after = Schedule(
        ScheduleConfig.model_validate(
            {
                "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}],
                "after_hours": True,
                "holidays": ["2026-01-06"],
            }
        ),
        "America/New_York",
    )
    assert not after.armed(datetime(2026, 1, 5, 15, 0, tzinfo=UTC))  # 10:00 in New York, Monday
    assert after.armed(datetime(2026, 1, 5, 23, 30, tzinfo=UTC))  # 18:30 in New York
    assert after.armed(datetime(2026, 1, 6, 15, 0, tzinfo=UTC))  # holiday: armed all day
    assert after.armed(datetime(2026, 1, 10, 15, 0, tzinfo=UTC))  # Saturday


def test_rule_outside_its_schedule_is_quiet_and_ends_its_incident() -> None:
    schedule = {"windows": [{"days": ["mon"], "start": "22:00", "end": "22:01"}]}
    rules = build_rules(camera(schedule=schedule), CLASSES, "UTC")
    inside = people([100], [1])
    phases = []
    for i in range(240):  # 2 minutes at 2 fps from Monday 22:00
        t = i / 2
        phases += [(t, e.phase) for e in rules.update(inside, FRAME_WH, t, T0 + timedelta(seconds=t))]
    assert phases == [(0.0, "start"), (60.0, "end")]  # disarmed at 22:01, last seen 59.5 s + 0.5 s
