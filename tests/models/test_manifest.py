"""The manifest describes the real model files: hashes, tensor names and output shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.detection.manifest import load_manifest
from agent.detection.model_store import file_sha256
from agent.detection.onnx_session import check_output_contract, read_io_shapes

MANIFEST = load_manifest()


def pinned_hashes(assets_dir: Path) -> dict[str, str]:
    lines = (assets_dir / "SHA256SUMS").read_text().splitlines()
    return {Path(name).name: digest for digest, name in (line.split(maxsplit=1) for line in lines)}


# Entries whose file is placed on the model path (and is in the shared assets); the
# release entry arrives only through `edge-agent models pull`.
PLACED = sorted(n for n, s in MANIFEST.items() if s.sha256 is not None)


def test_manifest_has_the_expected_entries() -> None:
    assert set(MANIFEST) == {
        "yolox-nano-416",
        "yolox-nano-416-release",
        "yolox-nano",
        "picodet-s-416",
        "picodet-s-320",
        "nanodet-m-320",
        "person-light",
    }
    assert len(MANIFEST["yolox-nano"].class_names) == 80
    assert MANIFEST["person-light"].class_names == ("person",)
    release = MANIFEST["yolox-nano-416-release"]
    assert release.download_url is not None
    assert release.download_url.startswith("https://github.com/Megvii-BaseDetection/YOLOX/")
    # Its hash is not known in advance: it is the one entry a recorded hash may vouch for.
    assert release.sha256 is None and release.download_sha256 is None
    assert [n for n, s in MANIFEST.items() if s.sha256 is None] == ["yolox-nano-416-release"]


@pytest.mark.parametrize("name", PLACED)
def test_pinned_hash_matches_file_and_asset_list(name: str, models_dir: Path, assets_dir: Path) -> None:
    spec = MANIFEST[name]
    path = models_dir / spec.file_name
    assert spec.sha256 == file_sha256(path) == pinned_hashes(assets_dir)[spec.file_name]


@pytest.mark.parametrize("name", PLACED)
def test_declared_tensors_match_file(name: str, models_dir: Path) -> None:
    spec = MANIFEST[name]
    (in_name, in_shape), outputs = read_io_shapes(models_dir / spec.file_name)
    assert in_name == spec.input_name
    assert tuple(o[0] for o in outputs) == spec.output_names
    for (_, declared), expected in zip(outputs, spec.output_shapes, strict=False):
        assert [d if isinstance(d, int) else None for d in declared] == list(expected)
    if not spec.dynamic_input:
        assert tuple(in_shape[2:]) == spec.input_size_hw


@pytest.mark.parametrize("name", PLACED)
def test_real_outputs_match_contract_at_every_supported_size(name: str, models_dir: Path) -> None:
    spec = MANIFEST[name]
    sizes = spec.supported_sizes if spec.dynamic_input else (spec.input_size_hw[0],)
    for side in sizes:
        check_output_contract(spec, models_dir / spec.file_name, (side, side))


def test_expected_shapes_for_dynamic_sizes() -> None:
    assert MANIFEST["yolox-nano"].expected_output_shapes((640, 640)) == ((1, 8400, 85),)
    assert MANIFEST["yolox-nano"].expected_output_shapes((320, 416)) == ((1, 40 * 52 + 20 * 26 + 10 * 13, 85),)
    assert MANIFEST["picodet-s-416"].expected_output_shapes((416, 416))[3] == (1, 49, 80)
