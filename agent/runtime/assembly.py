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

from agent.alerts.builder import MessageSequence
from agent.alerts.ids import Uuid7Factory
from agent.config import CameraConfig, DetectorConfig, SiteConfig, SiteInfo, TrackerConfig
from agent.delivery.routing import AlertDispatcher, recipient_topics
from agent.delivery.signing import AlertSigner
from agent.detection.detector import DetectorOptions, ObjectDetector
from agent.motion.gate import MotionGate, MotionSettings
from agent.rules.geometry import polygon_to_pixels
from agent.runtime.pipeline import CameraPipeline, ObjectDetecting, ObjectTracking, StagesForSize
from agent.tracking.bytetrack import ByteTracker, TrackerSettings
from agent.tracking.object_filter import ObjectFilter, ObjectFilterSettings


def detector_from_config(
    config: DetectorConfig, *, score_threshold: float | None = None, tracker: TrackerConfig | None = None
) -> ObjectDetector:
    """Load the configured model (raises ModelError when it is missing or does not match).

    The detector decodes every box down to the tracker's `low_score` (or
    `score_threshold`, when lower): the weak boxes keep partly hidden objects
    tracked, while `config.score_threshold` decides, in the tracker, which
    boxes may start a track (`tracker_from_config`). `tracker` defaults to the
    tracker section's defaults.
    """
    size = (config.input_size, config.input_size) if config.input_size else None
    threshold = score_threshold if score_threshold is not None else config.score_threshold
    options = DetectorOptions(
        input_size_hw=size,
        score_threshold=min(threshold, (tracker or TrackerConfig()).low_score),
        nms_iou_threshold=config.nms_iou_threshold,
        classes=tuple(config.classes),
        intra_op_threads=config.intra_op_threads,
        inter_op_threads=config.inter_op_threads,
        providers=tuple(config.providers),
    )
    return ObjectDetector.from_model(config.model, options)


def tracker_from_config(config: TrackerConfig, *, detector: DetectorConfig | None = None) -> ByteTracker:
    """The camera's tracker; `detector.score_threshold` (default: the detector section's default)
    is the least score of a box that may start a track."""
    return ByteTracker(
        TrackerSettings(
            high_score=config.high_score,
            low_score=config.low_score,
            new_track_score=(detector or DetectorConfig()).score_threshold,
            max_lost_s=config.max_lost_s,
            min_hits=config.min_hits,
            relink_max_distance=config.relink_max_distance,
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
    camera: CameraConfig, class_names: Sequence[str], frame_wh: tuple[int, int], *, tracker_min_hits: int = 1
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
        seen_before_report=tracker_min_hits - 1,
    )


def stages_for_size(camera: CameraConfig, class_names: Sequence[str], *, tracker_min_hits: int = 1) -> StagesForSize:
    """The motion gate and object filter of `camera` for a frame size (masks in pixels); the
    tracker's `min_hits` count towards the filter's `confirm_frames`."""

    def build(frame_wh: tuple[int, int]) -> tuple[MotionGate, ObjectFilter]:
        settings = object_filter_settings(camera, class_names, frame_wh, tracker_min_hits=tracker_min_hits)
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
    sequence: MessageSequence | None = None,
) -> CameraPipeline:
    """One camera's pipeline with its per-size stages built from its config (`sequence`: see `CameraPipeline`)."""
    stages = stages_for_size(camera, detector.class_names, tracker_min_hits=tracker.min_hits)
    return CameraPipeline(camera, site, detector, tracker, stages, status=status, ids=ids, sequence=sequence)


def dispatcher_from_config(config: SiteConfig) -> AlertDispatcher:
    """Route alerts by the site's policies, each view signed as a JWS with the site key (created if missing)."""
    signer = AlertSigner.from_file(config.signing.key_file, config.signing.key_id)
    return AlertDispatcher(
        config.policies,
        recipient_topics(config.mqtt.topic_prefix, config.site.id),
        signer.sign,
        default_expiry_s=config.mqtt.message_expiry_s,
        site_id=config.site.id,
    )
