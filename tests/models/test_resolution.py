"""Finding model files: explicit path, EDGE_AGENT_MODEL_PATH, user cache, and the errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from agent.detection import manifest as manifest_module
from agent.detection.model_store import RECORDED_HASH_SUFFIX, cache_dir, file_sha256, resolve_model
from agent.errors import ModelError

_REPO_MANIFEST_TEXT = manifest_module._REPO_MANIFEST.read_text(encoding="utf-8")


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
    assert (
        "edge-agent models pull yolox-nano-416-release" in message
        and "detector.model: yolox-nano-416-release" in message
    )
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


def test_a_recorded_hash_never_overrides_the_pinned_one(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Someone who can write the model folder swaps the file and writes a matching `.sha256` beside it.
    swapped = link(models_dir, tmp_path / "m", "picodet_s_416_coco_clean.onnx", as_name="picodet_s_320_coco_clean.onnx")
    (tmp_path / "m" / "picodet_s_320_coco_clean.onnx.sha256").write_text(file_sha256(swapped) + "\n")
    monkeypatch.setenv("EDGE_AGENT_MODEL_PATH", str(tmp_path / "m"))
    with pytest.raises(ModelError, match=r"sha256 72269b1d.*expected e0a3510d"):
        resolve_model("picodet-s-320")


def test_an_explicit_path_is_matched_by_its_own_hash_not_by_a_recorded_one(yolox_v8_copy: Path) -> None:
    # An unknown file under a known entry's file name, with its own hash recorded beside it: it is not that entry
    # (nor any other), so it is refused rather than run with another model's decoding.
    named = yolox_v8_copy.rename(yolox_v8_copy.with_name("picodet_s_320_coco_clean.onnx"))
    named.with_name(named.name + RECORDED_HASH_SUFFIX).write_text(file_sha256(named) + "\n")
    with pytest.raises(ModelError, match=r"expected e0a3510d"):
        resolve_model(str(named))


def test_a_file_name_shared_by_two_entries_goes_to_the_one_whose_hash_matches(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two entries name the same file: the first pins another file's hash, the second pins none.
    # The file on disk is the second's: matching by name must check each candidate, not take the first.
    entries = yaml.safe_load(_REPO_MANIFEST_TEXT)
    models = entries["models"]
    first = dict(models["picodet-s-416"], file="site.onnx")
    second = dict(models["nanodet-m-320"], file="site.onnx", sha256=None)
    entries["models"] = {"site-picodet": first, "site-nanodet": second, "yolox-nano-416": models["yolox-nano-416"]}
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump(entries, sort_keys=False))
    monkeypatch.setattr(manifest_module, "_REPO_MANIFEST", manifest)
    on_disk = link(models_dir, tmp_path / "m", "nanodet_m_320_clean.onnx", as_name="site.onnx")
    spec, path = resolve_model(str(on_disk))
    assert (spec.name, path) == ("site-nanodet", on_disk)
