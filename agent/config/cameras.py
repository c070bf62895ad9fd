"""The `cameras` section: each camera's source, rate, zones, masks, motion gate, filters and rules."""

from __future__ import annotations

__all__ = ["Anchor", "CameraConfig", "MotionConfig", "ObjectFilterConfig"]

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from agent.config.model import ID_PATTERN, ConfigModel, require_unique
from agent.config.rule_configs import LineCrossingRuleConfig, RuleConfig, WrongWayRuleConfig
from agent.config.zones import LineConfig, MaskConfig, ZoneConfig

Anchor = Literal["bottom_center", "center", "top_center"]


class MotionConfig(ConfigModel):
    mode: Literal["always", "on_motion", "regions"] = Field(
        default="on_motion",
        description=(
            "always: the gate is off, every frame goes to the detector; on_motion: skip frames without motion; "
            "regions: also drop detections away from motion and known objects"
        ),
    )
    frame_height_px: int = Field(default=180, ge=60, le=1080, description="height of the luma image compared")
    pixel_threshold: int = Field(default=20, ge=1, le=255, description="luma change that counts as motion")
    learning_rate: float = Field(default=0.02, gt=0, lt=1, description="background adaptation per frame")
    min_region_fraction: float = Field(
        default=0.0005, ge=0, le=1, description="smallest moving area that counts, as a fraction of the frame"
    )


class ObjectFilterConfig(ConfigModel):
    min_area_fraction: float = Field(default=0.0, ge=0, le=1, description="smallest box, fraction of frame")
    max_area_fraction: float = Field(default=0.8, gt=0, le=1, description="largest box, fraction of frame")
    aspect_ratio_range: tuple[float, float] | None = Field(
        default=None, description="allowed width/height range of a box, e.g. [0.1, 2.0]"
    )
    min_score: dict[str, float] = Field(
        default={}, description="per class name: lowest score a tracked object must have"
    )
    confirm_frames: int = Field(default=3, ge=1, le=100, description="frames a track must be seen before rules see it")


class CameraConfig(ConfigModel):
    id: str = Field(pattern=ID_PATTERN, description="camera id, unique within the site")
    source: str | int = Field(description="file path, rtsp:// or http(s):// URL, or a USB device index")
    detect_fps: float = Field(default=5.0, gt=0, le=60, description="frames per second sent to the detector")
    loop: bool = Field(default=False, description="live mode only: restart a file source at its end")
    enabled: bool = Field(default=True, description="set false to keep a camera in the file but not run it")
    zones: list[ZoneConfig] = Field(default=[], description="named polygons for rules")
    masks: list[MaskConfig] = Field(
        default=[], description="polygons ignored for motion and detections (trees, roads, screens)"
    )
    motion: MotionConfig = Field(default_factory=MotionConfig, description="motion gate")
    filters: ObjectFilterConfig = Field(default_factory=ObjectFilterConfig, description="object filters")
    lines: list[LineConfig] = Field(default=[], description="named directed segments for crossing rules")
    anchors: dict[str, Anchor] = Field(
        default={},
        description="per class, the box point that locates an object (default bottom_center: where it stands)",
    )
    rules: list[RuleConfig] = Field(default=[], description="alert rules of this camera")

    @field_validator("source")
    @classmethod
    def _source_kind(cls, value: str | int) -> str | int:
        if isinstance(value, int):
            if value < 0:
                raise ValueError("a device index must be 0 or more")
            return value
        if not value.strip():
            raise ValueError("source must not be empty")
        if "://" in value and not re.match(r"^(rtsp|rtsps|http|https)://", value):
            raise ValueError("URL sources must be rtsp://, rtsps://, http:// or https://")
        return value

    @model_validator(mode="after")
    def _names_resolve(self) -> CameraConfig:
        zone_names = [z.name for z in self.zones]
        line_names = [ln.name for ln in self.lines]
        require_unique(zone_names, f"camera {self.id!r}: zone")
        require_unique(line_names, f"camera {self.id!r}: line")
        require_unique([r.name for r in self.rules], f"camera {self.id!r}: rule")
        for rule in self.rules:
            if isinstance(rule, LineCrossingRuleConfig | WrongWayRuleConfig):
                what, name, known = "line", rule.line, line_names
            else:
                what, name, known = "zone", rule.zone, zone_names
            if name not in known:
                raise ValueError(
                    f"rule {rule.name!r} names {what} {name!r}, which camera {self.id!r} "
                    f"does not define ({what}s: {', '.join(known) or 'none'})"
                )
        return self
