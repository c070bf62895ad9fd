"""Side of line, crossings with hysteresis, wrong-way, incident mapping of crossings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from agent.config import LineConfig, LineCrossingRuleConfig, WrongWayRuleConfig
from agent.rules.crossing import LineCrossingRule
from agent.rules.geometry import side_of_line, side_of_line_reference
from agent.values.detections import Tracks

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
FRAME_WH = (1000, 500)
# Vertical line at x=500 drawn top to bottom: walking down the image, side A is on the
# walker's left, which is the right half of the image (x > 500).
LINE = LineConfig(name="gate", points=((0.5, 0.0), (0.5, 1.0)))


def test_side_of_line_names_sides_and_matches_reference() -> None:
    p1, p2 = np.array([500.0, 0.0]), np.array([500.0, 500.0])
    distance, along = side_of_line(np.array([[600.0, 250.0], [400.0, 100.0]]), p1, p2)
    assert distance.tolist() == [-100.0, 100.0]  # x>500 is side A (negative)
    assert along.tolist() == [0.5, 0.2]
    rng = np.random.default_rng(3)
    pts, a, b = rng.uniform(-50, 1050, (3000, 2)), rng.uniform(0, 1000, 2), rng.uniform(0, 1000, 2)
    fast, ref = side_of_line(pts, a, b), side_of_line_reference(pts, a, b)
    np.testing.assert_allclose(fast[0], ref[0], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(fast[1], ref[1], rtol=1e-12, atol=1e-12)


def person(xs: list[float], ids: list[int], y: float = 300.0) -> Tracks:
    boxes = [[x - 10, y - 100, x + 10, y] for x in xs]
    n = len(xs)
    return Tracks(np.array(boxes, np.float32).reshape(-1, 4), np.full(n, 0.8), np.zeros(n), ids)


def crossing_rule(**kw: object) -> LineCrossingRule:
    cfg = LineCrossingRuleConfig(
        kind="line_crossing",
        name="gate-count",
        line="gate",
        margin=10,
        margin_units="pixels",
        update_interval_s=0.5,
        **kw,
    )  # type: ignore[arg-type]
    return LineCrossingRule(cfg, LINE, ("person", "car"))


def feed(rule: LineCrossingRule, frames: list[Tracks], fps: float = 10.0) -> list[tuple[float, object]]:
    out = []
    for i, tracks in enumerate(frames):
        t = i / fps
        out += [(round(t, 2), e) for e in rule.update(tracks, FRAME_WH, t, T0 + timedelta(seconds=t))]
    return out


def test_jitter_on_the_line_counts_once() -> None:
    rule = crossing_rule(direction="both", incident_window_s=100)
    xs = [450, 470, 490, 505, 495, 508, 492, 515, 512, 530, 560]  # wobbles within the 10 px margin
    feed(rule, [person([x], [1]) for x in xs])
    assert dict(rule.counts) == {("B_to_A", "person"): 1}


@pytest.mark.parametrize("xs", [[300, 400, 480, 495], [600, 505, 495, 505]])
def test_no_crossing_without_passing_the_margin(xs: list[float]) -> None:
    rule = crossing_rule(direction="both")
    feed(rule, [person([x], [1]) for x in xs])
    assert sum(rule.counts.values()) == 0


def test_walking_round_the_end_of_a_short_segment_is_not_a_crossing() -> None:
    short = LineConfig(name="gate", points=((0.5, 0.0), (0.5, 0.4)))  # ends at y=200
    cfg = LineCrossingRuleConfig(kind="line_crossing", name="g", line="gate", margin=10, margin_units="pixels")
    rule = LineCrossingRule(cfg, short, ("person",))
    feed(rule, [person([x], [1], y=400) for x in (300, 450, 550, 700)])
    assert sum(rule.counts.values()) == 0


def test_crossings_group_into_one_incident_with_counts_then_end() -> None:
    rule = crossing_rule(direction="A_to_B", incident_window_s=2.0)
    # Three people cross right-to-left (A to B) at 0.1 s, 0.3 s and 1.5 s.
    frames = [person([600, 600, 600], [1, 2, 3])]
    frames += [person([400, 600, 600], [1, 2, 3]), person([400, 600, 600], [1, 2, 3])]
    frames += [person([400, 400, 600], [1, 2, 3])] * 12 + [person([400, 400, 400], [1, 2, 3])] * 30
    events = [(t, e.phase, e.count, e.direction) for t, e in feed(rule, frames)]  # type: ignore[attr-defined]
    assert events == [
        (0.1, "start", 1, "A_to_B"),
        (0.6, "update", 2, "A_to_B"),
        (1.5, "update", 3, "A_to_B"),
        (3.5, "end", 3, "A_to_B"),
    ]


def test_both_directions_keep_separate_incidents_with_distinct_keys() -> None:
    rule = crossing_rule(direction="both", incident_window_s=5.0)
    events = feed(rule, [person([600, 400], [1, 2]), person([400, 600], [1, 2])])
    assert sorted((e.direction, e.phase) for _, e in events) == [("A_to_B", "start"), ("B_to_A", "start")]  # type: ignore[attr-defined]
    assert len({e.incident_key for _, e in events}) == 2  # type: ignore[attr-defined]


def test_wrong_way_alerts_only_the_forbidden_direction_and_counts_classes() -> None:
    cfg = WrongWayRuleConfig(
        kind="wrong_way",
        name="one-way",
        line="gate",
        forbidden_direction="B_to_A",
        classes=["person", "car"],
        margin=10,
        margin_units="pixels",
    )
    rule = LineCrossingRule(cfg, LINE, ("person", "car"))
    right = Tracks(np.array([[590, 200, 610, 300]], np.float32), [0.9], [1], [7])
    left = Tracks(np.array([[390, 200, 410, 300]], np.float32), [0.9], [1], [7])
    ok = feed(rule, [right, left])  # A to B: allowed
    assert ok == []
    bad = feed(rule, [left, left, right])
    assert [(e.rule_kind, e.phase, e.class_name, e.severity) for _, e in bad] == [  # type: ignore[attr-defined]
        ("wrong_way", "start", "car", "Severe")
    ]


def test_a_crossing_made_while_hidden_from_the_detector_counts() -> None:
    # A person walks behind a lamp post on the line: the tracker keeps the track, unreported, for
    # 0.4 s, and it comes back on the other side with the same id.
    rule = crossing_rule(direction="both", incident_window_s=5.0)
    frames = [person([600], [1]), person([560], [1])] + [Tracks.empty()] * 4 + [person([440], [1])]
    events = feed(rule, frames)
    assert dict(rule.counts) == {("A_to_B", "person"): 1}
    assert [(t, e.phase, e.count) for t, e in events] == [(0.6, "start", 1)]  # type: ignore[attr-defined]


def test_side_of_a_track_unseen_longer_than_the_tracker_keeps_it_is_forgotten() -> None:
    cfg = LineCrossingRuleConfig(
        kind="line_crossing", name="gate-count", line="gate", margin=10, margin_units="pixels", direction="both"
    )
    rule = LineCrossingRule(cfg, LINE, ("person", "car"), track_retention_s=1.0)
    frames = [person([600], [1])] + [Tracks.empty()] * 15 + [person([400], [1])]  # 1.5 s unseen
    feed(rule, frames)
    assert sum(rule.counts.values()) == 0  # the tracker has dropped it: a new object, no side to cross from
    assert rule.remembered_tracks == 1  # only the track seen last


def test_per_track_state_is_bounded_by_the_retention() -> None:
    rule = crossing_rule(direction="both")
    # 600 people each seen for one frame, one every 0.1 s, over 60 s: only the last 3 s are remembered.
    feed(rule, [person([600], [i]) for i in range(600)])
    assert rule.remembered_tracks <= 31
