"""Builds the pipeline's stages from the site config.

The config speaks in names and normalised coordinates; the stages take
class ids, pixel polygons and frozen settings. This module is the one place
that translates, so stages never import the config schema.
"""

from __future__ import annotations

__all__ = [
    "camera_pipeline",
    "detector_from_config",
    "dispatcher_from_config",
    "motion_settings",
    "object_filter_settings",
    "stages_for_size",
    "tracker_from_config",
]

from collections.abc import Sequence

from agent.alerts.ids import Uuid7Factory
from agent.config import CameraConfig, DetectorConfig, SiteConfig, SiteInfo, TrackerConfig
from agent.delivery.routing import AlertDispatcher, recipient_topics
from agent.delivery.signing import AlertSigner, load_or_create_signing_key
from agent.detection.detector import DetectorOptions, ObjectDetector
from agent.motion.gate import MotionGate, MotionSettings
from agent.rules.geometry import polygon_to_pixels
from agent.runtime.pipeline import CameraPipeline, ObjectDetecting, ObjectTracking, StagesForSize
from agent.tracking.bytetrack import ByteTracker, TrackerSettings
from agent.tracking.object_filter import ObjectFilter, ObjectFilterSettings


def detector_from_config(config: DetectorConfig, *, score_threshold: float | None = None) -> ObjectDetector:
    """Load the configured model (raises ModelError when it is missing or does not match)."""
    size = (config.input_size, config.input_size) if config.input_size else None
    options = DetectorOptions(
        input_size_hw=size,
        score_threshold=score_threshold if score_threshold is not None else config.score_threshold,
        nms_iou_threshold=config.nms_iou_threshold,
        classes=tuple(config.classes),
        intra_op_threads=config.intra_op_threads,
        inter_op_threads=config.inter_op_threads,
        providers=tuple(config.providers),
    )
    return ObjectDetector.from_model(config.model, options)


def tracker_from_config(config: TrackerConfig) -> ByteTracker:
    return ByteTracker(
        TrackerSettings(
            high_score=config.high_score,
            low_score=config.low_score,
            new_track_score=config.new_track_score,
            max_lost_s=config.max_lost_s,
            min_hits=config.min_hits,
        )
    )


def _mask_polygons(camera: CameraConfig, frame_wh: tuple[int, int]) -> tuple[tuple[tuple[float, float], ...], ...]:
    return tuple(
        tuple((float(x), float(y)) for x, y in polygon_to_pixels(m.points, m.units, frame_wh)) for m in camera.masks
    )


def motion_settings(camera: CameraConfig, frame_wh: tuple[int, int]) -> MotionSettings:
    m = camera.motion
    return MotionSettings(
        mode=m.mode,
        frame_height_px=min(m.frame_height_px, frame_wh[1]),
        learning_rate=m.learning_rate,
        pixel_threshold=m.pixel_threshold,
        min_region_fraction=m.min_region_fraction,
        mask_polygons_px=_mask_polygons(camera, frame_wh),
    )


def object_filter_settings(
    camera: CameraConfig, class_names: Sequence[str], frame_wh: tuple[int, int]
) -> ObjectFilterSettings:
    f = camera.filters
    ids = {name: i for i, name in enumerate(class_names)}
    return ObjectFilterSettings(
        min_area_fraction=f.min_area_fraction or None,
        max_area_fraction=f.max_area_fraction,
        aspect_ratio_range=f.aspect_ratio_range,
        min_score_by_class=tuple((ids[name], score) for name, score in f.min_score.items() if name in ids),
        exclusion_polygons_px=_mask_polygons(camera, frame_wh),
        confirm_frames=f.confirm_frames,
    )


def stages_for_size(camera: CameraConfig, class_names: Sequence[str]) -> StagesForSize:
    """The motion gate and object filter of `camera` for a frame size (masks in pixels)."""

    def build(frame_wh: tuple[int, int]) -> tuple[MotionGate, ObjectFilter]:
        settings = object_filter_settings(camera, class_names, frame_wh)
        return MotionGate(motion_settings(camera, frame_wh)), ObjectFilter(settings, frame_wh)

    return build


def camera_pipeline(
    camera: CameraConfig,
    site: SiteInfo,
    detector: ObjectDetecting,
    tracker: ObjectTracking,
    *,
    status: str = "Actual",
    ids: Uuid7Factory | None = None,
) -> CameraPipeline:
    """One camera's pipeline with its per-size stages built from its config."""
    stages = stages_for_size(camera, detector.class_names)
    return CameraPipeline(camera, site, detector, tracker, stages, status=status, ids=ids)


def dispatcher_from_config(config: SiteConfig) -> AlertDispatcher:
    """Route alerts by the site's policies, signed with the site key (created if missing)."""
    signer = AlertSigner(load_or_create_signing_key(config.signing.key_file), config.signing.key_id)
    return AlertDispatcher(
        config.policies,
        recipient_topics(config.mqtt.topic_prefix, config.site.id),
        lambda view, alert: signer.sign(view, alert.identifier, alert.sent),
        site_id=config.site.id,
    )
