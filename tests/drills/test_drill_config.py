"""The drills section: what a scenario names must exist, and each mistake is reported at its own line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.config import load_config
from agent.errors import ConfigError


def _write(tmp_path: Path, drills: dict, clip: bool = True) -> Path:
    if clip:
        (tmp_path / "clip.mp4").write_bytes(b"not really a video")
    doc = {
        "site": {"id": "s1", "name": "drill config", "location": {"lat": 51.0, "lon": 0.0}},
        "cameras": [{"id": "gate", "source": "unused.mp4"}],
        "policies": {"recipients": [{"name": "police"}, {"name": "control"}]},
        "drills": drills,
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_a_scenario_loads_with_its_clip_resolved_beside_the_config(tmp_path: Path) -> None:
    path = _write(tmp_path, {"scenarios": [{"name": "night", "camera": "gate", "clip": "clip.mp4"}]})
    scenario = load_config(path).drills.scenario("night")
    assert scenario is not None and scenario.clip == (tmp_path / "clip.mp4").resolve()
    assert scenario.recipients is None


@pytest.mark.parametrize(
    ("scenario", "field", "words"),
    [
        ({"camera": "yard"}, "drills.scenarios.0.camera", "no camera 'yard' (cameras: gate)"),
        ({"recipients": ["police", "fire"]}, "drills.scenarios.0.recipients.1", "no recipient 'fire'"),
        ({"clip": "missing.mp4"}, "drills.scenarios.0.clip", "no clip at"),
        ({"recipients": ["police", "police"]}, "drills.scenarios.0.recipients", "defined twice"),
    ],
)
def test_a_scenario_naming_what_does_not_exist_is_refused_at_its_field(
    tmp_path: Path, scenario: dict, field: str, words: str
) -> None:
    path = _write(tmp_path, {"scenarios": [{"name": "night", "camera": "gate", "clip": "clip.mp4", **scenario}]})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    issue = next(i for i in caught.value.issues if i.field == field)
    assert words in issue.reason and issue.file == str(path) and issue.line is not None
