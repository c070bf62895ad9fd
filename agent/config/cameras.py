"""The `cameras` section: each camera's source, rate, zones, masks, motion gate, filters and rules."""

from __future__ import annotations

__all__ = ["Anchor", "CameraConfig", "MotionConfig", "ObjectFilterConfig"]

import re
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from agent.config.limits import (
    ASPECT_RATIO,
    CONFIRM_FRAMES,
    DETECT_FPS,
    IDLE_AFTER_S,
    MAX_AREA_FRACTION,
    MIN_AREA_FRACTION,
    MIN_REGION_FRACTION,
    MOTION_FRAME_HEIGHT_PX,
    MOTION_LEARNING_RATE,
    PIXEL_THRESHOLD,
    REGIONS_MAX_AREA,
    REGIONS_MAX_COUNT,
    REGIONS_PAD_PX,
    SCORE,
    MotionMode,
)
from agent.config.model import ID_PATTERN, ConfigModel, require_unique
from agent.config.rule_configs import LineCrossingRuleConfig, RuleConfig, WrongWayRuleConfig
from agent.config.zones import LineConfig, MaskConfig, ZoneConfig

Anchor = Literal["bottom_center", "center", "top_center"]
# Bounds shared with the stages: see agent.config.limits.
AspectRatio = Annotated[float, ASPECT_RATIO.interval()]
Score = Annotated[float, SCORE.interval()]


class MotionConfig(ConfigModel):
    mode: MotionMode = Field(
        default="on_motion",
        description=(
            "always: the gate is off, every frame goes to the detector; "
            "on_motion: the detector runs only on frames with motion; "
            "regions: as on_motion, but the detector looks only at crops around the motion "
            "while it covers at most regions_max_area of the frame in at most regions_max_count crops"
        ),
    )
    frame_height_px: Annotated[int, MOTION_FRAME_HEIGHT_PX.interval()] = Field(
        default=180, description="height of the luma image compared"
    )
    pixel_threshold: Annotated[int, PIXEL_THRESHOLD.interval()] = Field(
        default=20, description="luma change (1-254) that counts as motion"
    )
    learning_rate: Annotated[float, MOTION_LEARNING_RATE.interval()] = Field(
        default=0.02, description="background adaptation per frame"
    )
    min_region_fraction: Annotated[float, MIN_REGION_FRACTION.interval()] = Field(
        default=0.0005, description="smallest moving area that counts, as a fraction of the frame"
    )
    regions_max_area: Annotated[float, REGIONS_MAX_AREA.interval()] = Field(
        default=0.4, description="regions mode: share of the frame motion may cover before the whole frame is detected"
    )
    regions_max_count: Annotated[int, REGIONS_MAX_COUNT.interval()] = Field(
        default=4, description="regions mode: most crops per frame (one inference each) before the whole frame is"
    )
    regions_pad_px: Annotated[int, REGIONS_PAD_PX.interval()] = Field(
        default=32, description="regions mode: frame pixels kept around each motion box"
    )
    idle_after_s: Annotated[float, IDLE_AFTER_S.interval()] | None = Field(
        default=None,
        description=(
            "after this long with no motion and no tracked object the camera looks at idle_fps until "
            "the next motion; unset keeps detect_fps at all times"
        ),
    )
    idle_fps: Annotated[float, DETECT_FPS.interval()] = Field(
        default=1.0, description="frames per second looked at while idle (below the camera's detect_fps)"
    )

    @model_validator(mode="after")
    def _idle_needs_the_gate(self) -> MotionConfig:
        # With the gate off every frame counts as moving, so the camera would never fall idle.
        if self.idle_after_s is not None and self.mode == "always":
            raise ValueError("idle_after_s needs mode on_motion or regions: in mode always nothing is ever idle")
        return self


class ObjectFilterConfig(ConfigModel):
    min_area_fraction: Annotated[float, MIN_AREA_FRACTION.interval()] = Field(
        default=0.0, description="smallest box, fraction of frame"
    )
    max_area_fraction: Annotated[float, MAX_AREA_FRACTION.interval()] = Field(
        default=0.8, description="largest box, fraction of frame"
    )
    aspect_ratio_range: tuple[AspectRatio, AspectRatio] | None = Field(
        default=None, description="allowed width/height range of a box, min then max, e.g. [0.1, 2.0]"
    )
    min_score: dict[str, Score] = Field(
        default={}, description="per class name (one of detector.classes): lowest score a tracked object must have"
    )
    confirm_frames: Annotated[int, CONFIRM_FRAMES.interval()] = Field(
        default=3, description="frames a track must be seen before rules see it"
    )

    @field_validator("aspect_ratio_range")
    @classmethod
    def _min_then_max(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError(f"[{value[0]:g}, {value[1]:g}] is not min then max, so no box would pass")
        return value

    @field_validator("max_area_fraction")
    @classmethod
    def _above_min_area(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("min_area_fraction")
        if low is not None and low > value:
            raise ValueError(f"{value:g} is below min_area_fraction {low:g}, so no box would pass")
        return value


class CameraConfig(ConfigModel):
    id: str = Field(pattern=ID_PATTERN, description="camera id, unique within the site")
    source: str | int = Field(description="file path, rtsp:// or http(s):// URL, or a USB device index")
    detect_fps: Annotated[float, DETECT_FPS.interval()] = Field(
        default=5.0, description="frames per second sent to the detector; at least 0.1 (one frame every 10 s)"
    )
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
    def _idle_rate_below_detect_rate(self) -> CameraConfig:
        m = self.motion
        if m.idle_after_s is not None and m.idle_fps >= self.detect_fps:
            raise ValueError(
                f"motion.idle_fps {m.idle_fps:g} must be below detect_fps {self.detect_fps:g}, "
                "or idling would not lower the rate"
            )
        return self

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
