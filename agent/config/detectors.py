"""The `detector` and `tracker` sections: which model, its thresholds and threads; tracking.

A model named from the manifest is checked here against its entry (the
input sizes it runs at, the classes it detects), because the detector
refuses a mismatch when it loads: `validate` reports it first, at its line.
A model given as a file path is only known once the file is read, at start.
"""

from __future__ import annotations

__all__ = ["DetectorConfig", "TrackerConfig"]

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, ValidationInfo, field_validator, model_validator

from agent.config.limits import TRACK_MAX_LOST_S
from agent.config.model import ConfigModel
from agent.errors import ModelError

if TYPE_CHECKING:
    from agent.detection.manifest import ModelSpec


def _is_model_path(model: str) -> bool:
    # The model store's rule: a path is an .onnx name, has a separator, or is a file.
    return model.endswith(".onnx") or os.sep in model or Path(model).is_file()


def _manifest() -> dict[str, ModelSpec]:
    # Imported on use: the stages import this package for their bounds, and importing it
    # must not load the detector runtime (the model store brings ONNX Runtime). The names a
    # config may use are the manifest's and the user's derived (quantized) copies of them.
    from agent.detection.model_store import known_specs

    try:
        return known_specs()
    except ModelError:
        return {}  # a broken manifest is reported when the detector loads; the config itself may be fine


def _entry(info: ValidationInfo) -> ModelSpec | None:
    model = info.data.get("model")
    return _manifest().get(model) if isinstance(model, str) else None


class DetectorConfig(ConfigModel):
    model: str = Field(
        default="yolox-nano-416", description="a model name from the manifest, or a path to an .onnx file"
    )
    input_size: int | None = Field(
        default=None,
        ge=64,
        le=1280,
        multiple_of=32,
        description="square input side in pixels; default: the model's native size",
    )
    score_threshold: float = Field(
        default=0.35,
        gt=0,
        lt=1,
        description="lowest score of a box that may start (or confirm) a track; weaker boxes, down to "
        "tracker.low_score, only keep existing tracks going",
    )
    nms_iou_threshold: float = Field(default=0.45, gt=0, lt=1, description="IoU above which NMS suppresses")
    classes: list[str] = Field(
        default=["person", "bicycle", "car", "motorcycle", "bus", "truck"],
        min_length=1,
        description="class names kept from the detector's output",
    )
    intra_op_threads: int = Field(default=2, ge=1, le=64, description="ONNX Runtime threads per inference")
    inter_op_threads: int = Field(default=1, ge=1, le=64, description="ONNX Runtime parallel operators")
    providers: list[str] = Field(
        default=["CPUExecutionProvider"],
        min_length=1,
        description="ONNX Runtime execution providers in order of preference",
    )

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        known = _manifest()
        if known and value not in known and not _is_model_path(value):
            raise ValueError(f"unknown model {value!r}; known models: {', '.join(sorted(known))}, or a path to a file")
        return value

    @field_validator("input_size")
    @classmethod
    def _model_runs_at(cls, value: int | None, info: ValidationInfo) -> int | None:
        spec = _entry(info)
        if value is None or spec is None:
            return value
        native_h, native_w = spec.input_size_hw
        if not spec.dynamic_input and (value, value) != spec.input_size_hw:
            raise ValueError(
                f"model {spec.name!r} has a fixed input of {native_h}x{native_w}; give {native_h} or leave it out"
            )
        if value < max(spec.strides):
            raise ValueError(f"model {spec.name!r} needs at least its largest stride, {max(spec.strides)} px")
        return value

    @field_validator("classes")
    @classmethod
    def _model_detects(cls, value: list[str], info: ValidationInfo) -> list[str]:
        spec = _entry(info)
        unknown = [c for c in value if spec is not None and c not in spec.class_names]
        if spec is not None and unknown:
            raise ValueError(f"model {spec.name!r} has no class {unknown}; it detects: {', '.join(spec.class_names)}")
        return value


class TrackerConfig(ConfigModel):
    high_score: float = Field(default=0.5, gt=0, lt=1, description="detections above: first association pass")
    low_score: float = Field(
        default=0.1,
        gt=0,
        lt=1,
        description="weakest box the detector hands the tracker (second pass only: continues tracks, never starts one)",
    )
    new_track_score: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="no longer read: detector.score_threshold decides which boxes start a track (kept so site "
        "files that set it still load)",
    )
    max_lost_s: Annotated[float, TRACK_MAX_LOST_S.interval()] = Field(
        default=3.0, description="how long an unseen track is kept; at least 0.1 s"
    )
    min_hits: int = Field(default=2, ge=1, le=100, description="matches before the tracker reports a track")
    relink_max_distance: float = Field(
        default=0.45,
        ge=0,
        le=1,
        description="largest colour distance (0-1) at which a new track near a lost one takes its id "
        "(a person coming out from behind a post); 0 turns re-linking off",
    )

    @model_validator(mode="after")
    def _ordered(self) -> TrackerConfig:
        if self.low_score >= self.high_score:
            raise ValueError("low_score must be below high_score")
        return self
