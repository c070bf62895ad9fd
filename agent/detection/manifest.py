"""The model manifest: one `ModelSpec` per supported detector, read from `models/manifest.yaml`.

Each entry pins a file name and sha256, the licence, the input contract
(size, colour order, normalisation, resize mode) and the output contract
(layout and shapes). The manifest is package data in an installed wheel and
the repository's `models/manifest.yaml` in a checkout.
"""

from __future__ import annotations

__all__ = ["LAYOUTS", "Layout", "ModelSpec", "coco_names", "load_manifest"]

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from agent.errors import ModelError

Layout = Literal["yolox", "gfl", "yolov8"]
LAYOUTS: tuple[str, ...] = ("yolox", "gfl", "yolov8")
_REPO_MANIFEST = Path(__file__).resolve().parents[2] / "models" / "manifest.yaml"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One detector model: where its file comes from and how to run and decode it.

    Attributes:
        name: manifest key (`yolox-nano-416`), or `file:<name>` for a user file.
        file_name: file name looked up on the model path.
        sha256: pinned hash of the file, or None when not pinned.
        licence: SPDX licence id of the weights.
        source: where the weights come from, in words.
        download_url: official download URL, or None.
        download_sha256: hash of the downloaded file when known in advance.
        input_name: name of the single input tensor.
        input_size_hw: native input height and width in pixels.
        dynamic_input: True when the graph accepts other sizes.
        supported_sizes: square input sides known to work.
        colour_order: `bgr` or `rgb` channel order the model expects.
        mean: per-channel mean (model's channel order), applied to 0-255 pixels.
        std: per-channel std (model's channel order).
        resize_mode: `letterbox` (fit, top-left, pad) or `resize` (stretch).
        pad_value: letterbox fill value (0-255, before normalisation).
        layout: output layout, one of `LAYOUTS`.
        strides: feature strides in pixels, in output order.
        reg_max: GFL distance bins minus one (unused by other layouts).
        centre_shift_px: GFL anchor centre = (grid + 0.5) * stride + shift.
        output_names: output tensor names, in output order.
        output_shapes: output shapes at the native size; None marks a dynamic dim.
        class_names: class names in output order.
    """

    name: str
    file_name: str
    sha256: str | None
    licence: str
    source: str
    download_url: str | None
    download_sha256: str | None
    input_name: str
    input_size_hw: tuple[int, int]
    dynamic_input: bool
    supported_sizes: tuple[int, ...]
    colour_order: Literal["bgr", "rgb"]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize_mode: Literal["letterbox", "resize"]
    pad_value: int
    layout: Layout
    strides: tuple[int, ...]
    reg_max: int
    centre_shift_px: float
    output_names: tuple[str, ...]
    output_shapes: tuple[tuple[int | None, ...], ...]
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def anchors_per_stride(self, input_size_hw: tuple[int, int]) -> tuple[int, ...]:
        """Grid cells per stride for an input size (partial cells count, as the graphs pad)."""
        h, w = input_size_hw
        return tuple(math.ceil(h / s) * math.ceil(w / s) for s in self.strides)

    def expected_output_shapes(self, input_size_hw: tuple[int, int]) -> tuple[tuple[int, ...], ...]:
        """Exact output shapes the model must produce for an input size."""
        per_stride = self.anchors_per_stride(input_size_hw)
        total = sum(per_stride)
        c = self.num_classes
        if self.layout == "yolox":
            return ((1, total, 5 + c),)
        if self.layout == "yolov8":
            return ((1, 4 + c, total),)
        bins = 4 * (self.reg_max + 1)
        return tuple((1, n, c) for n in per_stride) + tuple((1, n, bins) for n in per_stride)


def _tuple_of(values: Any, kind: type, field: str, name: str) -> tuple[Any, ...]:
    if not isinstance(values, list):
        raise ModelError(f"model manifest entry {name!r}: {field} must be a list, got {values!r}")
    return tuple(kind(v) for v in values)


def _spec_from_entry(name: str, entry: dict[str, Any]) -> ModelSpec:
    try:
        inp, out, dl = entry["input"], entry["output"], entry.get("download") or {}
        spec = ModelSpec(
            name=name,
            file_name=str(entry["file"]),
            sha256=entry.get("sha256"),
            licence=str(entry["licence"]),
            source=str(entry.get("source", "")).strip(),
            download_url=dl.get("url"),
            download_sha256=dl.get("sha256"),
            input_name=str(inp["name"]),
            input_size_hw=(int(inp["size_hw"][0]), int(inp["size_hw"][1])),
            dynamic_input=bool(inp["dynamic"]),
            supported_sizes=_tuple_of(inp["supported_sizes"], int, "input.supported_sizes", name),
            colour_order=inp["colour_order"],
            mean=_tuple_of(inp["mean"], float, "input.mean", name),
            std=_tuple_of(inp["std"], float, "input.std", name),
            resize_mode=inp["resize"],
            pad_value=int(inp.get("pad_value", 0)),
            layout=out["layout"],
            strides=_tuple_of(out["strides"], int, "output.strides", name),
            reg_max=int(out.get("reg_max", 7)),
            centre_shift_px=float(out.get("centre_shift_px", 0.0)),
            output_names=_tuple_of(out["names"], str, "output.names", name),
            output_shapes=tuple(tuple(None if d is None else int(d) for d in s) for s in out["shapes"]),
            class_names=_tuple_of(entry["classes"], str, "classes", name),
        )
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ModelError(f"model manifest entry {name!r} is malformed: {err!r}") from err
    _check_spec(spec)
    return spec


def _check_spec(spec: ModelSpec) -> None:
    problems = []
    if spec.layout not in LAYOUTS:
        problems.append(f"layout {spec.layout!r} not one of {LAYOUTS}")
    if spec.colour_order not in ("bgr", "rgb"):
        problems.append(f"colour_order {spec.colour_order!r} not bgr or rgb")
    if spec.resize_mode not in ("letterbox", "resize"):
        problems.append(f"resize {spec.resize_mode!r} not letterbox or resize")
    if len(spec.mean) != 3 or len(spec.std) != 3 or min(spec.std) <= 0:
        problems.append("mean and std need 3 values each, std > 0")
    if len(spec.output_names) != len(spec.output_shapes):
        problems.append("output names and shapes differ in count")
    if problems:
        raise ModelError(f"model manifest entry {spec.name!r}: " + "; ".join(problems))


def _read_manifest_text() -> str:
    # Installed wheels carry the manifest as package data; a source checkout has it in models/.
    try:
        packaged = resources.files("agent").joinpath("data", "models.yaml")
        if packaged.is_file():
            return packaged.read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):
        pass
    if _REPO_MANIFEST.is_file():
        return _REPO_MANIFEST.read_text(encoding="utf-8")
    raise ModelError(f"model manifest not found in package data (agent/data/models.yaml) or at {_REPO_MANIFEST}")


def load_manifest() -> dict[str, ModelSpec]:
    """Return every manifest entry by name.

    Raises:
        ModelError: the manifest is missing or an entry is malformed.
    """
    try:
        doc = yaml.safe_load(_read_manifest_text())
    except yaml.YAMLError as err:
        raise ModelError(f"model manifest is not valid YAML: {err}") from err
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, dict):
        raise ModelError("model manifest has no `models:` mapping")
    return {str(name): _spec_from_entry(str(name), entry) for name, entry in models.items()}


def coco_names() -> tuple[str, ...]:
    """The 80 COCO class names, in class-id order (from the reference YOLOX entry)."""
    return load_manifest()["yolox-nano-416"].class_names
