"""Bad zones, lines, rules and schedules are refused by `load_config`, naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config
from agent.errors import ConfigError

BASE = """\
site: {id: s1, name: Site, location: {lat: 1, lon: 2}, timezone: Europe/Paris}
detector: {classes: [person, car]}
cameras:
  - id: cam
    source: a.mp4
    zones:
      - name: yard
        points: ZONE_POINTS
    lines:
      - name: gate
        points: [[0.1, 0.5], [0.9, 0.5]]
    rules:
      - kind: RULE_KIND
        name: the-rule
        RULE_BODY
"""


def config_text(
    zone: str = "[[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]", kind: str = "intrusion", body: str = "zone: yard"
) -> str:
    return BASE.replace("ZONE_POINTS", zone).replace("RULE_KIND", kind).replace("RULE_BODY", body)


def issues(tmp_path: Path, text: str) -> str:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return "\n".join(str(i) for i in info.value.issues)


def test_every_rule_kind_loads(tmp_path: Path) -> None:
    rules = """
      - {kind: loitering, name: r2, zone: yard, min_dwell_s: 20, grace_s: 2}
      - {kind: crowding, name: r3, zone: yard, min_count: 4}
      - {kind: line_crossing, name: r4, line: gate, direction: A_to_B, classes: [person, car]}
      - {kind: wrong_way, name: r5, line: gate, forbidden_direction: B_to_A}
      - kind: intrusion
        name: r6
        zone: yard
        schedule:
          windows: [{days: [mon, tue, wed, thu, fri], start: "08:00", end: "18:00"}]
          after_hours: true
          holidays: [2026-12-25]
"""
    path = tmp_path / "site.yaml"
    path.write_text(config_text() + rules)
    kinds = [r.kind for r in load_config(path).cameras[0].rules]
    assert kinds == ["intrusion", "loitering", "crowding", "line_crossing", "wrong_way", "intrusion"]


@pytest.mark.parametrize(
    ("zone", "kind", "body", "expected"),
    [
        ("[[0.1, 0.1], [0.9, 0.1]]", "intrusion", "zone: yard", "at least 3 items"),
        (
            "[[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]",
            "intrusion",
            "zone: yard",
            "zone 'yard': edges 1 and 3 cross",
        ),
        (
            "[[0.1, 0.1], [0.5, 0.5], [0.9, 0.9]]",
            "intrusion",
            "zone: yard",
            "zone 'yard': the polygon encloses no area",
        ),
        (
            "[[0.1, 0.1], [1.2, 0.1], [0.9, 0.9]]",
            "intrusion",
            "zone: yard",
            "zone 'yard': point (1.2, 0.1) is outside 0-1",
        ),
        (None, "intrusion", "zone: garden", "rule 'the-rule' names zone 'garden'"),
        (None, "line_crossing", "line: fence", "rule 'the-rule' names line 'fence'"),
        (None, "wrong_way", "line: gate", "forbidden_direction"),
        (None, "intrusion", "zone: yard\n        classes: [person, horse]", "rule 'the-rule' counts ['horse']"),
        (
            None,
            "intrusion",
            "zone: yard\n        schedule: {windows: [{days: [], start: '08:00', end: '18:00'}]}",
            "has no days, so it never fires",
        ),
        (
            None,
            "intrusion",
            "zone: yard\n        schedule: {windows: [{days: [mon], start: '08:00', end: '08:00'}]}",
            "start equals end, so it never fires",
        ),
        (
            None,
            "intrusion",
            "zone: yard\n        schedule: {windows: [{days: [sat], start: '08:00', end: '18:00'}], "
            "holidays: [2026-12-26], valid_from: 2026-12-25, valid_until: 2026-12-27}",
            "every day the windows apply to is a holiday",
        ),
        (
            None,
            "intrusion",
            "zone: yard\n        schedule: {windows: [{days: [mon, tue, wed, thu, fri, sat, sun], start: '00:00', "
            "end: '24:00'}], after_hours: true}",
            "after_hours with windows covering the whole week never fires",
        ),
        (
            None,
            "intrusion",
            "zone: yard\n        schedule: {windows: [{days: [mon], start: '25:00', end: '08:00'}]}",
            "time '25:00' is not HH:MM",
        ),
    ],
)
def test_bad_rule_configs_are_refused(tmp_path: Path, zone: str | None, kind: str, body: str, expected: str) -> None:
    text = config_text(kind=kind, body=body) if zone is None else config_text(zone=zone, kind=kind, body=body)
    assert expected in issues(tmp_path, text)


def test_bad_line_is_refused_with_its_name(tmp_path: Path) -> None:
    text = config_text().replace("[[0.1, 0.5], [0.9, 0.5]]", "[[0.1, 0.5], [0.1, 0.5]]")
    assert "line 'gate': the two points are the same" in issues(tmp_path, text)
    text = config_text().replace("[[0.1, 0.5], [0.9, 0.5]]", "[[0.1, 0.5], [0.9, 1.5]]")
    assert "line 'gate': point (0.9, 1.5) is outside 0-1" in issues(tmp_path, text)


def test_error_names_the_line_of_the_rule(tmp_path: Path) -> None:
    text = config_text(kind="loitering", body="zone: yard\n        min_dwell_s: -5")
    assert "site.yaml:16: cameras.0.rules.0.min_dwell_s: Input should be greater than 0" in issues(tmp_path, text)
