"""A config file is input from outside: bounded before it is parsed, refused with file and line when it is not.

YAML aliases can make a small file expand without bound ("billion laughs")
or refer to themselves; deep nesting and huge files exhaust the parser.
Each gets one error naming the file and the line, whether the file is read
by `validate`, at start or by a SIGHUP reload (all of them use `load_config`).
Rates and durations are bounded to what the running agent can do.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import load_config
from agent.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

SITE = """\
site: {id: s1, name: Site, location: {lat: 51.0, lon: 0.0}}
cameras:
  - id: cam
    source: rtsp://10.0.0.5/stream
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def issues_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(i) for i in info.value.issues]


def alias_bomb(levels: int) -> str:
    """`levels` lines of ten aliases each: 10**levels values once expanded."""
    lines = ["lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_the_line_it_explodes(tmp_path: Path) -> None:
    # Five levels are a hundred thousand values: enough to cross the bound, small enough to expand quickly if it
    # is not there (the real bomb, nine levels, is run in a memory-capped process below).
    path = write(tmp_path, SITE + alias_bomb(5))
    [issue] = issues_of(path)
    assert issue.startswith(f"{path}:")
    line = int(issue.split(":")[1])
    assert 5 <= line <= 10 and "alias" in issue and "values" in issue


def test_a_recursive_alias_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, SITE + "extra: &loop\n  - a\n  - *loop\n")
    assert issues_of(path) == [f"{path}:7: extra.1: alias *loop refers to a collection that contains it"]


def test_nesting_beyond_the_bound_is_refused_before_parsing(tmp_path: Path) -> None:
    path = write(tmp_path, SITE + "extra: " + "[" * 5000 + "]" * 5000 + "\n")
    [issue] = issues_of(path)
    assert issue.startswith(f"{path}:5: ") and "nested deeper than" in issue


def test_a_huge_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = write(tmp_path, SITE + ("# padding\n" * 200_000))
    [issue] = issues_of(path)
    assert issue.startswith(f"{path}: <root>: ") and "over the limit" in issue


def test_a_set_override_is_held_to_the_same_bounds(tmp_path: Path) -> None:
    levels = ["&l0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 7)]
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, SITE), ["extra=[" + ", ".join(levels) + "]"])
    [issue] = info.value.issues
    assert issue.file == "--set" and "aliases are expanded" in issue.reason


def test_a_few_aliases_sharing_one_schedule_still_work(tmp_path: Path) -> None:
    text = (
        SITE
        + """\
    zones:
      - {name: yard, points: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}
    rules:
      - kind: intrusion
        name: yard-night
        zone: yard
        schedule: &nights
          after_hours: true
          windows: [{days: [mon, tue, wed, thu, fri], start: "07:00", end: "19:00"}]
      - kind: loitering
        name: yard-loiter
        zone: yard
        schedule: *nights
"""
    )
    config = load_config(write(tmp_path, text))
    first, second = config.cameras[0].rules
    assert first.schedule == second.schedule and first.schedule is not None


def test_validate_refuses_the_full_billion_laughs_within_a_memory_cap(tmp_path: Path) -> None:
    path = write(tmp_path, SITE + alias_bomb(9))

    def cap_memory() -> None:
        limit = 3 << 30  # the agent's imports fit in it; a billion expanded values do not
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "agent", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        preexec_fn=cap_memory,
    )
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
    assert result.returncode == 2
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert line.startswith(f"error: {path}:") and "alias" in line


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        # 1e-300 fps: one frame every 1e300 s, a wait no clock can run; the minimum is 0.1 (one frame every 10 s).
        ("    detect_fps: 1e-300\n", "cameras.0.detect_fps", "greater than or equal to 0.1"),
        ("    detect_fps: .nan\n", "cameras.0.detect_fps", "finite number"),
        # A frame every 10 s, but the camera counts as stalled after 5 s without one.
        ("    detect_fps: 0.1\nruntime: {stall_timeout_s: 5}\n", "cameras.0.detect_fps", "stall_timeout_s"),
        ("    filters: {aspect_ratio_range: [.nan, 1.0]}\n", "cameras.0.filters.aspect_ratio_range.0", "finite"),
    ],
)
def test_rates_are_bounded_to_what_the_agent_can_run(tmp_path: Path, text: str, field: str, reason: str) -> None:
    path = write(tmp_path, SITE + text)
    [issue] = issues_of(path)
    assert issue.startswith(f"{path}:5: {field}: "), issue
    assert reason in issue


@pytest.mark.parametrize(
    ("section", "field", "value", "reason"),
    [
        ("mqtt", "connect_timeout_s", "1e-300", "greater than or equal to"),
        ("tracker", "max_lost_s", "1e-300", "greater than or equal to"),
        ("runtime", "stats_interval_s", "1e-300", "at least"),
    ],
)
def test_durations_are_bounded_to_a_documented_minimum(
    tmp_path: Path, section: str, field: str, value: str, reason: str
) -> None:
    path = write(tmp_path, SITE + f"{section}:\n  {field}: {value}\n")
    [issue] = issues_of(path)
    assert issue.startswith(f"{path}:6: {section}.{field}: "), issue
    assert reason in issue
