"""`edge-agent models quantize`: an INT8 copy that loads by name, finds what the float model finds,
and is recorded in the user store with its own hash; bad input gets one `error:` line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent.detection import DetectorOptions, ObjectDetector
from agent.detection.box_ops import iou_matrix_numpy
from agent.detection.model_store import DERIVED_INDEX, derived_specs, resolve_model
from agent.errors import ModelError

REPO = Path(__file__).resolve().parents[2]
NAME = "yolox-nano-416-int8"


def edge_agent(*args: str, cache: Path, models_dir: Path, command: str = "models") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "EDGE_AGENT_MODEL_PATH": str(models_dir)}
    return subprocess.run(
        [sys.executable, "-m", "agent", "--log-level", "error", command, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=env,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def quantized_cache(tmp_path_factory: pytest.TempPathFactory, models_dir: Path, vtest_avi: Path) -> Path:
    """XDG_CACHE_HOME of a user who ran `models quantize yolox-nano-416` on 8 vtest frames."""
    cache = tmp_path_factory.mktemp("xdg")
    result = edge_agent(
        "quantize",
        "yolox-nano-416",
        "--calibration",
        str(vtest_avi),
        "--frames",
        "8",
        cache=cache,
        models_dir=models_dir,
    )
    assert result.returncode == 0, result.stderr
    assert f"installed {NAME} at {cache / 'edge-agent' / 'models' / (NAME + '.onnx')}" in result.stdout
    assert "on the calibration frames it finds" in result.stdout and "that is low" not in result.stdout
    return cache


def test_the_copy_is_int8_and_recorded_with_its_own_hash(quantized_cache: Path, models_dir: Path) -> None:
    import onnx

    from agent.detection.model_store import file_sha256

    store = quantized_cache / "edge-agent" / "models"
    record = json.loads((store / DERIVED_INDEX).read_text())["models"][NAME]
    assert record["base"] == "yolox-nano-416"
    assert record["sha256"] == file_sha256(store / f"{NAME}.onnx")
    assert record["base_sha256"] == file_sha256(models_dir / "yolox_nano_416.onnx")
    model = onnx.load(str(store / f"{NAME}.onnx"))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 13


def test_int8_finds_the_people_the_float_model_finds(
    quantized_cache: Path, vtest_frames: dict[int, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(quantized_cache))
    opts = DetectorOptions(classes=("person",), score_threshold=0.3)
    matched = total = found = 0
    with ObjectDetector.from_model("yolox-nano-416", opts) as ref, ObjectDetector.from_model(NAME, opts) as q8:
        assert q8.spec.name == NAME and q8.spec.input_size_hw == ref.spec.input_size_hw
        for image in vtest_frames.values():
            a, b = ref.detect(image).box_xyxy_px, q8.detect(image).box_xyxy_px
            total += len(a)
            found += len(b)
            if len(a) and len(b):
                matched += int((iou_matrix_numpy(a, b).max(axis=1) >= 0.5).sum())
    assert total >= 12, "the float model should see people on these vtest frames"
    assert found >= 0.7 * total
    assert matched >= 0.75 * total, f"{matched} of {total} float person boxes matched at IoU 0.5"


def test_list_and_verify_show_the_copy(quantized_cache: Path, models_dir: Path) -> None:
    listed = edge_agent("list", cache=quantized_cache, models_dir=models_dir)
    row = next(line for line in listed.stdout.splitlines() if line.startswith(NAME + " "))
    assert str(quantized_cache / "edge-agent" / "models" / f"{NAME}.onnx") in row
    verified = edge_agent("verify", NAME, cache=quantized_cache, models_dir=models_dir)
    assert verified.returncode == 0, verified.stdout
    assert f"ok      {NAME}" in verified.stdout


def test_a_changed_copy_is_refused(
    quantized_cache: Path, tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "xdg"
    shutil.copytree(quantized_cache, cache)
    with open(cache / "edge-agent" / "models" / f"{NAME}.onnx", "ab") as fh:
        fh.write(b"\0")
    verified = edge_agent("verify", NAME, cache=cache, models_dir=models_dir)
    assert verified.returncode == 1
    assert "sha256" in verified.stdout and "damaged or a different file" in verified.stdout
    # Loading it by name refuses it too.
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    with pytest.raises(ModelError, match="sha256"):
        resolve_model(NAME)


def test_a_record_cannot_shadow_a_manifest_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "xdg" / "edge-agent" / "models"
    store.mkdir(parents=True)
    record = {"base": "yolox-nano-416", "file": "yolox_nano_416.onnx", "sha256": "0" * 64, "base_sha256": "0" * 64}
    (store / DERIVED_INDEX).write_text(json.dumps({"version": 1, "models": {"yolox-nano-416": record}}))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(ModelError, match="malformed"):
        derived_specs()


def test_unknown_model_is_one_error_line(tmp_path: Path, models_dir: Path, vtest_avi: Path) -> None:
    result = edge_agent(
        "quantize", "no-such-model", "--calibration", str(vtest_avi), cache=tmp_path, models_dir=models_dir
    )
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: unknown model 'no-such-model'; known models:")


@pytest.mark.parametrize("clip", ["missing.avi", "junk.avi"])
def test_unreadable_clip_is_one_error_line(clip: str, tmp_path: Path, models_dir: Path) -> None:
    path = tmp_path / clip
    if clip == "junk.avi":
        path.write_bytes(b"not a video")
    result = edge_agent("quantize", "yolox-nano-416", "--calibration", str(path), cache=tmp_path, models_dir=models_dir)
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and ("not found" in lines[0] or "cannot open" in lines[0])
    assert not (tmp_path / "edge-agent" / "models" / DERIVED_INDEX).exists()


def test_a_site_config_may_name_the_copy(quantized_cache: Path, models_dir: Path, tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "site: {id: s1, name: S, location: {lat: 51.5, lon: -0.1}}\n"
        "cameras: [{id: c1, source: rtsp://cam.example/stream}]\n"
        f"detector: {{model: {NAME}}}\n",
        encoding="utf-8",
    )
    result = edge_agent(str(site), cache=quantized_cache, models_dir=models_dir, command="validate")
    assert result.returncode == 0, result.stdout + result.stderr
