"""Config loading: every error names file, line and field; overrides and env work."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config
from agent.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
site:
  id: site-1
  name: Test site
  location: {lat: 51.5, lon: -0.12}
  timezone: Europe/London
cameras:
  - id: cam-a
    source: rtsp://10.0.0.5/stream1
    detect_fps: 5
    zones:
      - name: yard
        points: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]
    rules:
      - kind: intrusion
        name: yard-intrusion
        zone: yard
mqtt:
  host: broker.example
  password: ${TEST_MQTT_PASSWORD}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def issues_of(path: Path, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides or [])
    return [str(i) for i in info.value.issues]


def test_valid_config_loads_with_env_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "s3cret")
    config = load_config(write(tmp_path, GOOD))
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config.mqtt)
    assert config.cameras[0].rules[0].zone == "yard"


def test_unset_env_placeholder_names_line_and_field(tmp_path: Path) -> None:
    issues = issues_of(write(tmp_path, GOOD))
    assert issues == [f"{tmp_path / 'site.yaml'}:19: mqtt.password: environment variable TEST_MQTT_PASSWORD is not set"]


def test_every_error_is_reported_with_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "x")
    bad = GOOD.replace("timezone: Europe/London", "timezone: Mars/Olympus").replace(
        "detect_fps: 5", "detect_fps: -1\n    colour: red"
    )
    issues = issues_of(write(tmp_path, bad))
    text = "\n".join(issues)
    assert ":5: site.timezone: unknown IANA time zone 'Mars/Olympus'" in text
    assert ":9: cameras.0.detect_fps: Input should be greater than or equal to 0.1" in text
    assert ":10: cameras.0.colour: unknown key" in text
    assert len(issues) == 3


def test_rule_naming_unknown_zone_is_rejected_with_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "x")
    issues = issues_of(write(tmp_path, GOOD.replace("zone: yard\n", "zone: gate\n")))
    assert len(issues) == 1
    assert "rule 'yard-intrusion' names zone 'gate'" in issues[0]
    assert ":7: cameras.0:" in issues[0]


def test_polygon_needs_three_points_and_normalised_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "x")
    two = GOOD.replace("[[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]", "[[0.1, 0.1], [0.9, 0.1]]")
    assert "at least 3 items" in issues_of(write(tmp_path, two))[0]
    outside = GOOD.replace("[0.9, 0.9]]", "[0.9, 1.9]]")
    assert "outside 0-1" in issues_of(write(tmp_path, outside))[0]


def test_set_overrides_any_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "x")
    config = load_config(
        write(tmp_path, GOOD),
        ["mqtt.port=1884", "cameras.0.detect_fps=2.5", "cameras.0.rules.0.min_duration_s=3"],
    )
    assert config.mqtt.port == 1884
    assert config.cameras[0].detect_fps == 2.5
    assert config.cameras[0].rules[0].min_duration_s == 3


def test_bad_override_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "x")
    assert "no index '3'" in issues_of(write(tmp_path, GOOD), ["cameras.3.detect_fps=1"])[0]
    assert "Input should be less than or equal to 65535" in issues_of(write(tmp_path, GOOD), ["mqtt.port=70000"])[0]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "file is empty"),
        ("site: [unclosed", "YAML syntax"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("site: {id: a}\nsite: {id: b}\n", "key appears twice"),
    ],
)
def test_unreadable_yaml_gets_one_clear_error(tmp_path: Path, text: str, reason: str) -> None:
    issues = issues_of(write(tmp_path, text))
    assert any(reason in issue for issue in issues), issues


def test_missing_file(tmp_path: Path) -> None:
    assert issues_of(tmp_path / "nope.yaml") == [f"{tmp_path / 'nope.yaml'}: <root>: file not found"]


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "x")
    text = GOOD.replace("rtsp://10.0.0.5/stream1", "clips/a.mp4") + "outbox:\n  path: var/outbox.db\n"
    config = load_config(write(tmp_path, text))
    assert config.cameras[0].source == str(tmp_path / "clips" / "a.mp4")
    assert config.outbox.path == tmp_path / "var" / "outbox.db"


@pytest.mark.parametrize("name", ["demo.yaml", "site.example.yaml"])
def test_shipped_configs_are_valid(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_AGENT_MQTT_PASSWORD", "example")
    load_config(REPO / "config" / name)


def _with_motion(motion_yaml: str, detect_fps: str = "5") -> str:
    block = "".join(f"      {line}\n" for line in motion_yaml.splitlines())
    return GOOD.replace("    detect_fps: 5\n", f"    detect_fps: {detect_fps}\n    motion:\n{block}")


def test_motion_mode_regions_loads_with_its_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "x")
    text = _with_motion("mode: regions\nregions_max_area: 0.25\nregions_max_count: 2\nregions_pad_px: 16")
    motion = load_config(write(tmp_path, text)).cameras[0].motion
    assert (motion.mode, motion.regions_max_area, motion.regions_max_count, motion.regions_pad_px) == (
        "regions",
        0.25,
        2,
        16,
    )


@pytest.mark.parametrize(
    ("motion_yaml", "field", "says"),
    [
        ("mode: regions\nregions_max_area: 0", "regions_max_area", "greater than 0"),
        ("mode: regions\nregions_max_area: 1.5", "regions_max_area", "less than or equal to 1"),
        ("mode: regions\nregions_max_count: 0", "regions_max_count", "greater than or equal to 1"),
        ("mode: regions\nregions_pad_px: -1", "regions_pad_px", "greater than or equal to 0"),
        ("mode: nearby", "mode", "'always', 'on_motion' or 'regions'"),
    ],
)
def test_motion_regions_settings_out_of_bounds_name_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, motion_yaml: str, field: str, says: str
) -> None:
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "x")
    [issue] = issues_of(write(tmp_path, _with_motion(motion_yaml)))
    assert f"cameras.0.motion.{field}: " in issue and says in issue, issue


def test_idle_rate_is_off_by_default_and_loads_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "x")
    assert load_config(write(tmp_path, GOOD)).cameras[0].motion.idle_after_s is None
    motion = load_config(write(tmp_path, _with_motion("idle_after_s: 30\nidle_fps: 1"))).cameras[0].motion
    assert (motion.idle_after_s, motion.idle_fps) == (30, 1)


@pytest.mark.parametrize(
    ("motion_yaml", "says"),
    [
        ("idle_after_s: 10\nidle_fps: 5", "idle_fps 5 must be below detect_fps 5"),
        ("mode: always\nidle_after_s: 10", "idle_after_s needs mode on_motion or regions"),
        ("idle_after_s: 0.5", "greater than or equal to 1"),
    ],
)
def test_idle_settings_that_could_not_idle_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, motion_yaml: str, says: str
) -> None:
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "x")
    [issue] = issues_of(write(tmp_path, _with_motion(motion_yaml)))
    assert issue.startswith(f"{tmp_path / 'site.yaml'}:") and says in issue, issue
