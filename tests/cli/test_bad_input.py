"""A user's mistake gets one specific line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = str(REPO / "config" / "demo.yaml")


def edge_agent(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    state = ["--set", f"outbox.path={tmp_path / 'o.sqlite'}", "--set", f"signing.key_file={tmp_path / 'k.pem'}"]
    extra = state if args and args[0] in {"replay", "detect", "run"} else []
    return subprocess.run(
        [sys.executable, "-m", "agent", "--log-level", "error", *args, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_validate_accepts_the_demo_config(tmp_path: Path) -> None:
    result = edge_agent("validate", DEMO, tmp_path=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith(f"ok: {DEMO}: site demo-site, 1 camera(s)")


def test_missing_config(tmp_path: Path) -> None:
    result = edge_agent("validate", str(tmp_path / "none.yaml"), tmp_path=tmp_path)
    assert result.returncode == 2
    assert error_lines(result) == [f"error: {tmp_path / 'none.yaml'}: <root>: file not found"]


def test_invalid_config_lists_every_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (REPO / "config" / "demo.yaml")
        .read_text()
        .replace("detect_fps: 5", "detect_fps: fast")
        .replace("port: 1883", "port: 1883\n  colour: blue")
    )
    result = edge_agent("validate", str(bad), tmp_path=tmp_path)
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 2
    assert lines[0].startswith(f"error: {bad}:14: cameras.0.detect_fps: Input should be a valid number")
    assert lines[1] == f"error: {bad}:38: mqtt.colour: unknown key (not part of the config schema)"


def test_set_override_reaches_validation(tmp_path: Path) -> None:
    result = edge_agent("validate", DEMO, "--set", "mqtt.port=0", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "mqtt.port: Input should be greater than or equal to 1" in error_lines(result)[0]


def test_unknown_model_name(tmp_path: Path, vtest_avi: Path) -> None:
    result = edge_agent(
        "replay", "--config", DEMO, "--source", str(vtest_avi), "--set", "detector.model=yolo-huge", tmp_path=tmp_path
    )
    # The detector would refuse the name when it loads, so the config is refused first (exit 2), at its field.
    assert result.returncode == 2
    [line] = error_lines(result)
    assert "detector.model: unknown model 'yolo-huge'" in line and "yolox-nano-416" in line  # names the known models


def test_damaged_model_file(tmp_path: Path, vtest_avi: Path, models_dir: Path) -> None:
    damaged = tmp_path / "yolox_nano_416.onnx"
    damaged.write_bytes((models_dir / "yolox_nano_416.onnx").read_bytes()[:100_000])
    result = edge_agent(
        "replay", "--config", DEMO, "--source", str(vtest_avi), "--set", f"detector.model={damaged}", tmp_path=tmp_path
    )
    assert result.returncode == 1
    [line] = error_lines(result)
    assert str(damaged) in line or "yolox_nano_416.onnx" in line


def test_unreadable_video(tmp_path: Path) -> None:
    not_video = tmp_path / "clip.avi"
    not_video.write_bytes(b"this is not a video" * 100)
    result = edge_agent("replay", "--config", DEMO, "--source", str(not_video), tmp_path=tmp_path)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert "walkway" in line and "clip.avi" in line


def test_missing_video(tmp_path: Path) -> None:
    result = edge_agent("replay", "--config", DEMO, "--source", str(tmp_path / "gone.avi"), tmp_path=tmp_path)
    assert result.returncode == 2
    assert error_lines(result) == [f"error: --source: source: video file not found: {tmp_path / 'gone.avi'}"]


@pytest.mark.slow
def test_real_damaged_avi_replays_to_the_end(tmp_path: Path, opencv_doc_dir: Path) -> None:
    result = edge_agent(
        "replay",
        "--config",
        DEMO,
        "--source",
        str(opencv_doc_dir / "Megamind_bugy.avi"),
        "--out",
        str(tmp_path / "a.jsonl"),
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "frames decoded" in result.stdout


def test_unreachable_broker(tmp_path: Path, vtest_avi: Path) -> None:
    port = free_port()
    result = edge_agent(
        "replay",
        "--config",
        DEMO,
        "--source",
        str(vtest_avi),
        "--publish",
        "--set",
        f"mqtt.port={port}",
        "--set",
        "mqtt.connect_timeout_s=2",
        tmp_path=tmp_path,
    )
    assert result.returncode == 1
    [line] = error_lines(result)
    assert f"127.0.0.1:{port}" in line


@pytest.mark.parametrize("command", ["run", "replay", "detect", "validate", "models", "subscribe", "keys"])
def test_every_command_has_help(command: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "agent", command, "--help"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert result.returncode == 0
    assert "usage: edge-agent " + command in result.stdout


@pytest.mark.parametrize(
    ("camera_lines", "field", "reason"),
    [
        # The gate cannot run 255 (no luma difference exceeds it): before, validate passed it and the camera
        # restarted forever; now validate says so.
        ("    detect_fps: 5\n    motion: {pixel_threshold: 255}", "cameras.0.motion.pixel_threshold", "254"),
        (
            "    detect_fps: 5\n    motion: {mode: regions, regions_max_area: 0}",
            "cameras.0.motion.regions_max_area",
            "greater than 0",
        ),
        ("    detect_fps: 1e-300", "cameras.0.detect_fps", "0.1"),
    ],
)
def test_validate_refuses_what_a_camera_could_not_run(
    tmp_path: Path, camera_lines: str, field: str, reason: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "config" / "demo.yaml").read_text().replace("    detect_fps: 5", camera_lines, 1))
    result = edge_agent("validate", str(bad), tmp_path=tmp_path)
    assert result.returncode == 2
    [line] = error_lines(result)
    assert line.startswith(f"error: {bad}:") and f": {field}: " in line and reason in line
