"""Incident and message ids, and the short form people read on a screen."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.alerts.ids import Uuid7Factory, short_id
from agent.cli.demo import alert_line


def test_ids_of_one_millisecond_differ_in_their_short_form() -> None:
    at = datetime(2026, 1, 1, 3, 0, 0, 123_000, tzinfo=UTC)
    ids = Uuid7Factory(seed="site/cam").new
    many = [ids(at) for _ in range(200)]
    assert len({i[:8] for i in many}) == 1, "UUIDv7 starts with the time: the head is the same"
    assert len({short_id(i) for i in many}) == 200
    assert all(short_id(i) in i for i in many)


def test_the_demo_line_shows_incidents_apart() -> None:
    at = datetime(2026, 1, 1, 3, 0, 0, tzinfo=UTC)
    ids = Uuid7Factory(seed="x").new
    lines = []
    for incident in (ids(at), ids(at)):
        detection = {
            "phase": "start",
            "camera_id": "cam-1",
            "zone": "gate",
            "count": 1,
            "dwell_s": 1.0,
            "confidence": 0.9,
            "incident_id": incident,
            "sequence": 1,
        }
        lines.append(alert_line({"detection": detection, "info": {"event": "Intrusion"}}, "edge/s/cam-1/alerts"))
    assert lines[0] != lines[1]
