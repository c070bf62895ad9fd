"""The `detector` and `tracker` sections: which model, its thresholds and threads; tracking."""

from __future__ import annotations

__all__ = ["DetectorConfig", "TrackerConfig"]

from pydantic import Field, model_validator

from agent.config.model import ConfigModel


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
    score_threshold: float = Field(default=0.35, gt=0, lt=1, description="minimum detection score")
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


class TrackerConfig(ConfigModel):
    high_score: float = Field(default=0.5, gt=0, lt=1, description="detections above: first association pass")
    low_score: float = Field(default=0.1, gt=0, lt=1, description="detections above: second pass only")
    new_track_score: float = Field(default=0.6, gt=0, le=1, description="lowest score that starts a track")
    max_lost_s: float = Field(default=3.0, gt=0, le=600, description="how long an unseen track is kept")
    min_hits: int = Field(default=2, ge=1, le=100, description="matches before the tracker reports a track")

    @model_validator(mode="after")
    def _ordered(self) -> TrackerConfig:
        if self.low_score >= self.high_score:
            raise ValueError("low_score must be below high_score")
        return self
