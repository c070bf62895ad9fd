"""Finding model files on disk, verifying them, and downloading them.

Owns `resolve_model` (name or path -> spec and a verified file),
`spec_for_user_file` (a user's own export) and `pull` (download into the user
cache with a pinned hash). The manifest itself is `agent.detection.manifest`.

Search order for a model name: each directory of `EDGE_AGENT_MODEL_PATH`
(separated by `os.pathsep`), then the user cache
(`$XDG_CACHE_HOME/edge-agent/models`, default `~/.cache/edge-agent/models`).
An explicit path to an `.onnx` file is used as is.

The manifest's hashes are the only authority on a file. A `.sha256` file
beside a model (written by `pull` for an entry that pins no hash) stands in
only for such an entry, and only for its own file name: it never adds a
hash to an entry that pins one, so whoever can write the model folder
cannot make another file pass for a pinned model.

Derived models (INT8 copies written by `agent.detection.quantize`) are
recorded in the user cache's index `derived-models.json` (name, base entry,
file, its sha256, the base file's sha256). One has its base entry's contract,
is looked up only beside the index, loads only with the recorded hash, never
shadows a manifest name or file, and stops loading when the manifest pins
another base file.
"""

from __future__ import annotations

__all__ = [
    "DERIVED_INDEX",
    "MODEL_PATH_ENV",
    "RECORDED_HASH_SUFFIX",
    "cache_dir",
    "derived_index_path",
    "derived_specs",
    "file_sha256",
    "known_specs",
    "model_search_dirs",
    "pull",
    "read_derived_index",
    "resolve_model",
    "spec_for_user_file",
]

import hashlib
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent.detection.manifest import LAYOUTS, Layout, ModelSpec, coco_names, load_manifest
from agent.detection.onnx_session import check_output_contract, read_io_shapes
from agent.errors import ModelError

MODEL_PATH_ENV = "EDGE_AGENT_MODEL_PATH"
# Written beside a downloaded file whose hash the manifest could not pin.
RECORDED_HASH_SUFFIX = ".sha256"
# The user cache's index of derived models (made here from a manifest entry, hashed when made).
DERIVED_INDEX = "derived-models.json"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def cache_dir() -> Path:
    """The user's model cache (`$XDG_CACHE_HOME/edge-agent/models`)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge-agent" / "models"


def model_search_dirs() -> list[Path]:
    """Directories searched for a model file, in order."""
    raw = os.environ.get(MODEL_PATH_ENV, "")
    dirs = [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]
    return [*dirs, cache_dir()]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pinned_hashes(spec: ModelSpec) -> set[str]:
    return {h for h in (spec.sha256, spec.download_sha256) if h}


def _accepted_hashes(spec: ModelSpec, path: Path) -> set[str]:
    """The hashes `path` may have to be `spec`'s file: the pinned ones, else the one recorded at download."""
    pinned = _pinned_hashes(spec)
    if pinned or path.name != spec.file_name:
        return pinned
    recorded = path.with_name(path.name + RECORDED_HASH_SUFFIX)
    if not recorded.is_file():
        return set()
    words = recorded.read_text(encoding="utf-8").split()
    if not words or not _SHA256_HEX.fullmatch(words[0]):
        raise ModelError(f"recorded hash file {recorded} does not hold a sha256; remove it and pull the model again")
    return {words[0]}


def _verify_hash(spec: ModelSpec, path: Path) -> None:
    accepted = _accepted_hashes(spec, path)
    if not accepted:
        return
    actual = file_sha256(path)
    if actual not in accepted:
        expected = " or ".join(sorted(accepted))
        raise ModelError(
            f"model {spec.name!r} file {path} has sha256 {actual}, expected {expected} (damaged or a different file)"
        )


def _is_path_like(name_or_path: str) -> bool:
    return name_or_path.endswith(".onnx") or os.sep in name_or_path or Path(name_or_path).is_file()


def resolve_model(name_or_path: str, *, layout: str | None = None) -> tuple[ModelSpec, Path]:
    """Find a model by manifest name or file path and check its hash.

    A path is matched to a manifest entry by sha256, then by file name; an
    unknown file needs `layout` and gets a spec read from the file itself.

    Raises:
        ModelError: unknown name, file not found, or hash mismatch.
    """
    manifest = load_manifest()
    derived = derived_specs(manifest)
    if _is_path_like(name_or_path) and name_or_path not in manifest and name_or_path not in derived:
        return _resolve_path(Path(name_or_path).expanduser(), manifest, layout)
    if name_or_path in derived:
        return _resolve_derived(derived[name_or_path], manifest)
    spec = manifest.get(name_or_path)
    if spec is None:
        known = ", ".join(sorted([*manifest, *derived]))
        raise ModelError(f"unknown model {name_or_path!r}; known models: {known}")
    searched = model_search_dirs()
    for directory in searched:
        candidate = directory / spec.file_name
        if candidate.is_file():
            _verify_hash(spec, candidate)
            return spec, candidate
    where = ", ".join(str(d) for d in searched)
    hint = (
        f"run `edge-agent models pull {spec.name}`"
        if spec.download_url
        else f"place it in a directory on {MODEL_PATH_ENV}" + _release_hint(spec, manifest)
    )
    raise ModelError(f"model {spec.name!r} file {spec.file_name} not found in: {where}; {hint}")


def _release_hint(spec: ModelSpec, manifest: dict[str, ModelSpec]) -> str:
    """Where another entry downloads the same network (same layout, outputs and classes) officially."""
    same = [
        other.name
        for other in manifest.values()
        if other.download_url
        and (other.layout, other.output_shapes, other.class_names, other.input_size_hw)
        == (spec.layout, spec.output_shapes, spec.class_names, spec.input_size_hw)
    ]
    if not same:
        return ""
    return f", or run `edge-agent models pull {same[0]}` and set detector.model: {same[0]}"


def _resolve_path(path: Path, manifest: dict[str, ModelSpec], layout: str | None) -> tuple[ModelSpec, Path]:
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    actual = file_sha256(path)
    for spec in manifest.values():
        if actual in _accepted_hashes(spec, path):
            return spec, path
    # No entry knows this hash. An entry of the same file name that has no hash at all can still
    # be it (its output contract is checked when it loads); one that pins another hash cannot.
    derived = [s for s in derived_specs(manifest).values() if s.sha256 == actual]
    if derived:
        return derived[0], path
    by_name = [s for s in manifest.values() if s.file_name == path.name]
    unhashed = [s for s in by_name if not _accepted_hashes(s, path)]
    if len(unhashed) == 1:
        return unhashed[0], path
    if len(unhashed) > 1:
        names = ", ".join(s.name for s in unhashed)
        raise ModelError(f"model file {path} could be any of {names} (none pins a hash); name the model instead")
    if by_name:
        expected = " or ".join(sorted(h for s in by_name for h in _accepted_hashes(s, path)))
        raise ModelError(
            f"model file {path} has sha256 {actual}, expected {expected} for "
            f"{', '.join(s.name for s in by_name)} (damaged or a different file)"
        )
    if layout is None:
        raise ModelError(
            f"model file {path} is not in the manifest (no sha256 or file-name match); "
            f"give its output layout ({', '.join(LAYOUTS)})"
        )
    return spec_for_user_file(path, layout), path


def derived_index_path() -> Path:
    """The user cache's index of derived models."""
    return cache_dir() / DERIVED_INDEX


def read_derived_index() -> dict[str, dict[str, Any]]:
    path = derived_index_path()
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        models = doc["models"]
        if not isinstance(models, dict) or not all(isinstance(r, dict) for r in models.values()):
            raise TypeError("models is not a mapping of records")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelError(
            f"derived model index {path} is unreadable ({err}); remove it and make the models again"
        ) from err
    return models


def derived_specs(manifest: dict[str, ModelSpec] | None = None) -> dict[str, ModelSpec]:
    """Every derived model recorded in the user cache's index, as a spec (contract of its base entry).

    Raises:
        ModelError: the index is unreadable or a record is malformed.
    """
    manifest = manifest if manifest is not None else load_manifest()
    specs = {}
    for name, record in read_derived_index().items():
        base = manifest.get(str(record.get("base")))
        sha = str(record.get("sha256", ""))
        file_name = str(record.get("file", ""))
        taken = name in manifest or file_name in {s.file_name for s in manifest.values()}
        if (
            base is None
            or taken
            or not _SHA256_HEX.fullmatch(sha)
            or Path(file_name).name != file_name
            or not file_name.endswith(".onnx")
        ):
            raise ModelError(
                f"derived model index {derived_index_path()}: record {name!r} is malformed or its base is gone"
            )
        specs[name] = replace(
            base,
            name=name,
            file_name=file_name,
            sha256=sha,
            source=f"{record.get('kind', 'derived')} copy of {base.name} ({record.get('note', '')})".replace(" ()", ""),
            download_url=None,
            download_sha256=None,
        )
    return specs


def known_specs() -> dict[str, ModelSpec]:
    """Manifest entries, then the user's derived models."""
    manifest = load_manifest()
    return {**manifest, **derived_specs(manifest)}


def _resolve_derived(spec: ModelSpec, manifest: dict[str, ModelSpec]) -> tuple[ModelSpec, Path]:
    record = read_derived_index()[spec.name]
    base = manifest[str(record["base"])]
    if base.sha256 and record.get("base_sha256") != base.sha256:
        raise ModelError(
            f"model {spec.name!r} was made from a {base.name} file of sha256 {record.get('base_sha256')}, "
            f"the manifest now pins {base.sha256}; make it again"
        )
    path = cache_dir() / spec.file_name
    if not path.is_file():
        raise ModelError(f"model {spec.name!r} file {spec.file_name} not found in {cache_dir()}; make it again")
    _verify_hash(spec, path)
    return spec, path


def spec_for_user_file(path: Path, layout: str) -> ModelSpec:
    """Build a spec for a user's own export from the file's tensors and layout defaults.

    YOLOX exports take BGR 0-255; YOLOv8 exports take RGB scaled to 0-1. Both
    are letterboxed with pad 114. GFL needs per-model details: use the manifest.

    Raises:
        ModelError: unsupported layout or a file that is not a usable ONNX model.
    """
    if layout not in ("yolox", "yolov8"):
        raise ModelError(f"a user model file needs layout yolox or yolov8, got {layout!r}")
    checked: Layout = "yolox" if layout == "yolox" else "yolov8"

    (in_name, in_shape), outputs = read_io_shapes(path)
    if len(outputs) != 1 or len(outputs[0][1]) != 3:
        raise ModelError(f"model file {path}: {layout} layout needs one [1, ., .] output, got {outputs}")
    channels = outputs[0][1][2] if layout == "yolox" else outputs[0][1][1]
    if not isinstance(channels, int):
        raise ModelError(f"model file {path}: class dimension must be fixed, got {outputs[0][1]}")
    n_cls = channels - (5 if layout == "yolox" else 4)
    coco = coco_names()
    names = coco if n_cls == len(coco) else tuple(f"class_{i}" for i in range(n_cls))
    h, w = in_shape[2], in_shape[3]
    dynamic = not (isinstance(h, int) and isinstance(w, int))
    size_hw = (h, w) if isinstance(h, int) and isinstance(w, int) else (640, 640)
    rgb = layout == "yolov8"
    base = load_manifest()["yolox-nano-416"]
    return replace(
        base,
        name=f"file:{path.name}",
        file_name=path.name,
        sha256=None,
        licence="unknown",
        source=f"user file {path}",
        download_url=None,
        download_sha256=None,
        input_name=in_name,
        input_size_hw=size_hw,
        dynamic_input=dynamic,
        supported_sizes=(size_hw[0],),
        colour_order="rgb" if rgb else "bgr",
        std=(255.0,) * 3 if rgb else (1.0,) * 3,
        layout=checked,
        output_names=(outputs[0][0],),
        output_shapes=(tuple(d if isinstance(d, int) else None for d in outputs[0][1]),),
        class_names=names,
    )


def pull(model: str | ModelSpec, *, dest: Path | None = None, timeout_s: float = 60.0) -> tuple[Path, str]:
    """Download a model (manifest name or spec) into `dest` (default: the user cache).

    The file is written to a temporary name and renamed only after its hash
    (or, when no hash is pinned, its output contract) checks out.

    Returns:
        The installed path and a note for the user (e.g. that a hash was recorded).

    Raises:
        ModelError: unknown name, no download URL, network failure, bad hash or contract.
    """
    if isinstance(model, ModelSpec):
        spec = model
    else:
        manifest = load_manifest()
        if model not in manifest:
            raise ModelError(f"unknown model {model!r}; known models: {', '.join(sorted(manifest))}")
        spec = manifest[model]
    name = spec.name
    if not spec.download_url:
        raise ModelError(
            f"model {name!r} has no official download; copy {spec.file_name} "
            f"(sha256 {spec.sha256}) into a directory on {MODEL_PATH_ENV} or into {cache_dir()}"
        )
    target_dir = dest or cache_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.file_name}.", suffix=".part", dir=target_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            _download_to(spec.download_url, fh, timeout_s)
            fh.flush()
            os.fsync(fh.fileno())
        return _install_download(spec, tmp, target_dir / spec.file_name)
    finally:
        tmp.unlink(missing_ok=True)


def _download_to(url: str, fh: Any, timeout_s: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                fh.write(chunk)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        raise ModelError(f"download of {url} failed: {err}") from err


def _install_download(spec: ModelSpec, tmp: Path, final: Path) -> tuple[Path, str]:
    actual = file_sha256(tmp)
    if spec.download_sha256 and actual != spec.download_sha256:
        raise ModelError(f"downloaded {spec.file_name} has sha256 {actual}, expected {spec.download_sha256}")
    pinned = _pinned_hashes(spec)
    if pinned and actual not in pinned:
        # Only the manifest's hashes let a file load, so a download it does not pin would be refused at start.
        raise ModelError(
            f"downloaded {spec.file_name} has sha256 {actual}; the manifest pins sha256 {spec.sha256} for "
            f"{spec.name!r} and no hash for its download, so it cannot be used: pin download.sha256 in "
            f"models/manifest.yaml after checking the file, or place the pinned file on {MODEL_PATH_ENV}"
        )
    note = f"sha256 {actual} matches the manifest"
    if not pinned:
        check_output_contract(spec, tmp)
        final.with_name(final.name + RECORDED_HASH_SUFFIX).write_text(actual + "\n", encoding="utf-8")
        note = (
            f"sha256 {actual} was not known in advance: the output contract checked out and the "
            "hash is recorded beside the file; later loads must match it"
        )
    os.replace(tmp, final)
    return final, note
