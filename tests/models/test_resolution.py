"""Finding model files: explicit path, EDGE_AGENT_MODEL_PATH, user cache, and the errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.detection.model_store import cache_dir, resolve_model
from agent.errors import ModelError


def link(models_dir: Path, directory: Path, file_name: str, as_name: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / (as_name or file_name)
    target.symlink_to(models_dir / file_name)
    return target


def test_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "edge-agent" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "edge-agent" / "models"


def test_model_path_dirs_are_searched_in_order_before_the_cache(
    models_dir: Path, tmp_path: Path, user_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    in_second = link(models_dir, second, "picodet_s_320_coco_clean.onnx")
    in_cache = link(models_dir, user_cache, "picodet_s_320_coco_clean.onnx")
    first.mkdir()
    monkeypatch.setenv("EDGE_AGENT_MODEL_PATH", os.pathsep.join([str(first), str(second)]))
    assert resolve_model("picodet-s-320")[1] == in_second
    link(models_dir, first, "picodet_s_320_coco_clean.onnx")
    assert resolve_model("picodet-s-320")[1] == first / "picodet_s_320_coco_clean.onnx"
    monkeypatch.delenv("EDGE_AGENT_MODEL_PATH")
    spec, path = resolve_model("picodet-s-320")
    assert path == in_cache and spec.name == "picodet-s-320"


def test_unknown_name_lists_known_models() -> None:
    with pytest.raises(ModelError, match=r"unknown model 'yolo-huge'.*yolox-nano-416"):
        resolve_model("yolo-huge")


def test_missing_file_names_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_AGENT_MODEL_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(ModelError) as err:
        resolve_model("yolox-nano-416")
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message and str(cache_dir()) in message
    assert "edge-agent models pull yolox-nano-416" in message
    with pytest.raises(ModelError, match="EDGE_AGENT_MODEL_PATH"):
        resolve_model("nanodet-m-320")


def test_wrong_file_under_a_known_name_is_a_hash_mismatch(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    link(models_dir, tmp_path / "m", "picodet_s_416_coco_clean.onnx", as_name="picodet_s_320_coco_clean.onnx")
    monkeypatch.setenv("EDGE_AGENT_MODEL_PATH", str(tmp_path / "m"))
    with pytest.raises(ModelError, match=r"sha256 72269b1d.*expected e0a3510d"):
        resolve_model("picodet-s-320")


def test_explicit_path_matches_spec_by_hash_under_any_name(models_dir: Path, tmp_path: Path) -> None:
    renamed = link(models_dir, tmp_path, "nanodet_m_320_clean.onnx", as_name="site-detector.onnx")
    spec, path = resolve_model(str(renamed))
    assert spec.name == "nanodet-m-320" and path == renamed


def test_explicit_path_to_unknown_file_needs_a_layout(yolox_v8_copy: Path) -> None:
    with pytest.raises(ModelError, match="give its output layout"):
        resolve_model(str(yolox_v8_copy))
    spec, _ = resolve_model(str(yolox_v8_copy), layout="yolox")
    assert spec.name == "file:custom.onnx" and spec.num_classes == 80 and spec.sha256 is None
    with pytest.raises(ModelError, match="yolox or yolov8"):
        resolve_model(str(yolox_v8_copy), layout="gfl")


def test_explicit_missing_path() -> None:
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model("/no/such/model.onnx")


@pytest.fixture
def yolox_v8_copy(models_dir: Path, tmp_path: Path) -> Path:
    # Same graph, bytes appended as an unknown protobuf field (field 1000, varint 1):
    # a file the manifest does not know, as a user's own export would be.
    data = (models_dir / "yolox_nano_416.onnx").read_bytes() + bytes([0xC0, 0x3E, 0x01])
    out = tmp_path / "custom.onnx"
    out.write_bytes(data)
    return out
