"""`edge-agent models` commands and downloads from a real local HTTP server."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from agent.cli import main as cli_main
from agent.detection import manifest as manifest_module
from agent.detection.manifest import load_manifest
from agent.detection.model_store import RECORDED_HASH_SUFFIX, file_sha256, pull, resolve_model
from agent.errors import ModelError


def main(argv: list[str]) -> int:
    return cli_main.main(argv)


@pytest.fixture(autouse=True)
def _only_models_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    # Other command groups are not needed to exercise `models`, so they are not imported.
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ("agent.cli.models_command",))


@contextmanager
def http_server(directory: Path) -> Iterator[str]:
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="test-model-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture(scope="module")
def model_server(models_dir: Path) -> Iterator[str]:
    with http_server(models_dir) as url:
        yield url


def unpinned_manifest(tmp_path: Path, name: str) -> Path:
    """A copy of the shipped manifest in which entry `name` pins no hash (file or download)."""
    doc = yaml.safe_load(manifest_module._REPO_MANIFEST.read_text(encoding="utf-8"))
    doc["models"][name] = {**doc["models"][name], "sha256": None}
    doc["models"][name]["download"] = {**doc["models"][name]["download"], "sha256": None}
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_list_shows_found_and_missing(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "nanodet_m_320_clean.onnx").symlink_to(models_dir / "nanodet_m_320_clean.onnx")
    monkeypatch.setenv("EDGE_AGENT_MODEL_PATH", str(mirror))
    assert main(["models", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert str(mirror / "nanodet_m_320_clean.onnx") in lines["nanodet-m-320"]
    assert lines["yolox-nano-416"].rstrip().endswith("missing")
    assert "Apache-2.0" in lines["picodet-s-416"] and "gfl" in lines["picodet-s-416"]


def test_verify_passes_on_real_models(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EDGE_AGENT_MODEL_PATH", str(models_dir))
    assert main(["models", "verify", "yolox-nano", "picodet-s-320"]) == 0
    assert "2 of 2 models verified" in capsys.readouterr().out


def test_verify_fails_on_damaged_and_missing(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "person_light").mkdir()
    damaged = tmp_path / "person_light" / "light_person_detector_dynamic_hw.onnx"
    damaged.write_bytes((models_dir / damaged.name).read_bytes()[:-1000])
    monkeypatch.setenv("EDGE_AGENT_MODEL_PATH", str(damaged.parent))
    assert main(["models", "verify", "person-light", "yolox-nano-416"]) == 1
    out = capsys.readouterr().out
    assert "FAILED  person-light" in out and "sha256" in out
    assert "FAILED  yolox-nano-416" in out and "not found" in out


def test_pull_without_url_explains_where_to_put_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "pull", "picodet-s-416"]) == 1
    assert "EDGE_AGENT_MODEL_PATH" in capsys.readouterr().err


def test_pull_records_unknown_hash_after_checking_contract(
    model_server: str, user_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # An entry that pins no hash at all: the first download is checked by its outputs and its hash recorded.
    manifest = unpinned_manifest(tmp_path, "yolox-nano-416")
    monkeypatch.setattr(manifest_module, "_REPO_MANIFEST", manifest)
    spec = replace(load_manifest()["yolox-nano-416"], download_url=f"{model_server}/yolox_nano_416.onnx")
    path, note = pull(spec)
    assert path == user_cache / "yolox_nano_416.onnx"
    assert "recorded" in note and file_sha256(path) in note
    assert (user_cache / ("yolox_nano_416.onnx" + RECORDED_HASH_SUFFIX)).is_file()
    assert resolve_model("yolox-nano-416")[1] == path
    assert [p.name for p in user_cache.iterdir() if p.name.endswith(".part")] == []
    # From now on the recorded hash is the entry's: another file under that name is refused.
    path.write_bytes(path.read_bytes() + bytes([0xC0, 0x3E, 0x01]))
    with pytest.raises(ModelError, match="expected"):
        resolve_model("yolox-nano-416")


def test_pull_of_a_pinned_entry_refuses_a_download_that_is_not_the_pinned_file(
    models_dir: Path, user_cache: Path, tmp_path: Path
) -> None:
    # The same graph with bytes appended: its outputs check out, but the manifest pins another file's hash,
    # and the manifest is the only authority, so the download is refused rather than installed beside a
    # recorded hash that would let it load.
    served = tmp_path / "served"
    served.mkdir()
    (served / "yolox_nano_416.onnx").write_bytes(
        (models_dir / "yolox_nano_416.onnx").read_bytes() + bytes([0xC0, 0x3E, 0x01])
    )
    with http_server(served) as url:
        spec = replace(load_manifest()["yolox-nano-416"], download_url=f"{url}/yolox_nano_416.onnx")
        with pytest.raises(ModelError, match=r"pins sha256 695e750a"):
            pull(spec)
    assert list(user_cache.iterdir()) == []


def test_pull_refuses_file_with_wrong_outputs(model_server: str, tmp_path: Path) -> None:
    # No hash pinned, so the outputs are what is checked: a GFL file under a YOLOX entry is refused.
    spec = replace(
        load_manifest()["yolox-nano-416"], sha256=None, download_url=f"{model_server}/picodet_s_416_coco_clean.onnx"
    )
    with pytest.raises(ModelError, match="expected"):
        pull(spec, dest=tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_pull_refuses_hash_mismatch_and_network_errors(model_server: str, tmp_path: Path) -> None:
    base = load_manifest()["nanodet-m-320"]
    pinned_wrong = replace(base, download_url=f"{model_server}/nanodet_m_320_clean.onnx", download_sha256="0" * 64)
    with pytest.raises(ModelError, match="expected 0000"):
        pull(pinned_wrong, dest=tmp_path)
    with pytest.raises(ModelError, match=r"download of .* failed"):
        pull(replace(base, download_url=f"{model_server}/absent.onnx"), dest=tmp_path)
    pinned_right = replace(pinned_wrong, download_sha256=base.sha256)
    path, note = pull(pinned_right, dest=tmp_path)
    assert file_sha256(path) == base.sha256 and "matches" in note
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nanodet_m_320_clean.onnx"]
