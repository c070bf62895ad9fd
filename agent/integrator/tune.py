"""Threshold tuning from one detection pass over a clip.

Inference dominates a replay, so the clip is decoded and detected once, at
the lowest score threshold of the grid, with the camera's own motion gate
deciding which frames the detector sees (`cache_detections`). Every grid
point then reruns only the cheap stages from that cache: for each score
threshold, the cached boxes are filtered by score and fed through a fresh
tracker, object filter and rules (`CameraPipeline.process_detections`, the
same code a replay runs); for each factor on the rules' minimum durations,
the rules and alert builder rerun on that threshold's tracks.

Filtering the low-threshold output by score gives exactly what the detector
returns at the higher threshold: greedy NMS keeps or drops a box only
because of boxes scoring higher than it, which are the same in both runs.

With ground truth, each grid point's alerts are scored by
`agent.evaluation.event_matching` against the truth the *configured* durations
define (the config states what the site wants alerted; the sweep shows which
settings reproduce it).
"""

from __future__ import annotations

__all__ = [
    "CachedFrame",
    "DetectionCache",
    "GridPoint",
    "RuleOutcome",
    "TuneGrid",
    "cache_detections",
    "scaled_durations",
    "sweep",
]

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from agent.alerts.builder import AlertBuilder
from agent.alerts.ids import Uuid7Factory
from agent.alerts.schema import Alert
from agent.config import (
    CameraConfig,
    CrowdingRuleConfig,
    IntrusionRuleConfig,
    LoiteringRuleConfig,
    RuleConfig,
    SiteConfig,
)
from agent.errors import ConfigError, ConfigIssue
from agent.evaluation.event_matching import evaluate_alerts
from agent.evaluation.mot import MotSequence
from agent.rules.ruleset import build_rules
from agent.runtime.assembly import camera_pipeline, detector_from_config, tracker_from_config
from agent.runtime.pipeline import FrameStamp, ObjectDetecting
from agent.sources.file_replay import FileReplay
from agent.tracking.appearance import appearance_descriptors
from agent.values.detections import Detections, Tracks


@dataclass(frozen=True, slots=True)
class CachedFrame:
    """One processed frame: when it was, what the detector found (None: the motion gate skipped
    it) and what the boxes looked like (the tracker's appearance descriptors, rows aligned)."""

    stamp: FrameStamp
    detections: Detections | None
    appearance: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class DetectionCache:
    """One detection pass over a clip at `min_score`."""

    frames: tuple[CachedFrame, ...]
    class_names: tuple[str, ...]
    min_score: float
    stream_fps: float
    frame_wh: tuple[int, int]
    start_utc: datetime
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class TuneGrid:
    """Detector score thresholds and factors on every rule's minimum duration to try."""

    score_thresholds: tuple[float, ...]
    duration_factors: tuple[float, ...] = (0.5, 1.0, 2.0)

    def __post_init__(self) -> None:
        if not self.score_thresholds or not all(0.0 < s < 1.0 for s in self.score_thresholds):
            raise ConfigError([ConfigIssue("--scores", None, "scores", "give thresholds between 0 and 1")])
        if not self.duration_factors or not all(0.0 < f <= 100.0 for f in self.duration_factors):
            raise ConfigError([ConfigIssue("--duration-factors", None, "duration-factors", "give factors in (0, 100]")])


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What one rule did at one grid point.

    Attributes:
        min_duration_s: the rule's minimum duration (or dwell) at this point; None for line rules.
        precision, recall, true_events: None without ground truth or for kinds it cannot score.
    """

    rule: str
    kind: str
    min_duration_s: float | None
    incidents: int
    alerts: int
    precision: float | None = None
    recall: float | None = None
    true_events: int | None = None


@dataclass(frozen=True, slots=True)
class GridPoint:
    """All rules' outcomes at one score threshold and duration factor."""

    score_threshold: float
    duration_factor: float
    outcomes: tuple[RuleOutcome, ...]

    @property
    def alerts(self) -> int:
        return sum(o.alerts for o in self.outcomes)


class _RecordingDetector:
    """Wraps a detector and remembers what it returned for the current frame."""

    def __init__(self, inner: ObjectDetecting) -> None:
        self._inner = inner
        self.last: Detections | None = None

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self._inner.class_names)

    def detect(self, image_bgr: np.ndarray) -> Detections:
        self.last = self._inner.detect(image_bgr)
        return self.last


class _CachedOnly:
    """Stands in for the detector when detections come from the cache (never asked to detect)."""

    def __init__(self, class_names: Sequence[str]) -> None:
        self._class_names = tuple(class_names)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._class_names

    def detect(self, image_bgr: np.ndarray) -> Detections:
        raise RuntimeError("cached tuning passes never run the detector")


def cache_detections(
    config: SiteConfig,
    camera: CameraConfig,
    source: Path,
    *,
    min_score: float,
    start_utc: datetime,
    detect_fps: float | None = None,
    max_frames: int | None = None,
) -> DetectionCache:
    """Decode and detect the clip once at `min_score`, as a replay at that threshold would.

    Raises:
        SourceError: the clip cannot be read. ModelError: the model cannot be loaded.
    """
    fps = camera.detect_fps if detect_fps is None else (detect_fps or None)
    clip = FileReplay(camera.id, source, detect_fps=fps, start_utc=start_utc)
    recorder = _RecordingDetector(
        detector_from_config(config.detector, score_threshold=min_score, tracker=config.tracker)
    )
    # A whole pipeline runs so that the motion gate decides exactly as in a replay.
    at_min = config.detector.model_copy(update={"score_threshold": min_score})
    tracker = tracker_from_config(config.tracker, detector=at_min)
    pipeline = camera_pipeline(camera, config.site, recorder, tracker, status="Test")
    frames: list[CachedFrame] = []
    frame_wh = (0, 0)
    started = time.perf_counter()
    for frame in clip:
        if max_frames is not None and frame.frame_index >= max_frames:
            break
        recorder.last = None
        pipeline.process(frame)
        found = recorder.last
        looks = None if found is None else appearance_descriptors(frame.image_bgr, found.box_xyxy_px)
        frames.append(CachedFrame(FrameStamp.of(frame), found, looks))
        frame_wh = frame.size_wh
    return DetectionCache(
        tuple(frames),
        recorder.class_names,
        min_score,
        clip.stream_fps,
        frame_wh,
        start_utc,
        time.perf_counter() - started,
    )


def _tracks_at(cache: DetectionCache, config: SiteConfig, camera: CameraConfig, threshold: float) -> list[Tracks]:
    """Per cached frame, the tracks a replay at `threshold` would hand to the rules."""
    bare = camera.model_copy(update={"rules": []})  # rules run separately, once per duration factor
    at_threshold = config.detector.model_copy(update={"score_threshold": threshold})
    tracker = tracker_from_config(config.tracker, detector=at_threshold)
    pipeline = camera_pipeline(bare, config.site, _CachedOnly(cache.class_names), tracker)
    # A replay at `threshold` decodes down to the lower of it and the tracker's low_score
    # (the weak boxes keep tracks alive); the threshold itself acts in the tracker.
    decoded_from = np.float32(min(threshold, config.tracker.low_score))
    tracks = []
    for cached in cache.frames:
        dets, looks = cached.detections, cached.appearance
        if dets is None:
            tracks.append(pipeline.process_detections(cached.stamp, None).tracks)
            continue
        kept = dets.score >= decoded_from
        looks_kept = None if looks is None else looks[kept]
        tracks.append(pipeline.process_detections(cached.stamp, dets.select(kept), looks_kept).tracks)
    return tracks


def _alerts_from_tracks(
    camera: CameraConfig, config: SiteConfig, cache: DetectionCache, tracks: Sequence[Tracks]
) -> list[Alert]:
    """Rules and alert builder over cached tracks, as `CameraPipeline` runs them."""
    rules = build_rules(camera, cache.class_names, config.site.timezone)
    builder = AlertBuilder(config.site, camera.id, status="Test", ids=Uuid7Factory(seed=f"tune/{camera.id}"))
    alerts: list[Alert] = []
    for cached, frame_tracks in zip(cache.frames, tracks, strict=True):
        s = cached.stamp
        alerts.extend(builder.build(e) for e in rules.update(frame_tracks, s.size_wh, s.ts_monotonic_s, s.ts_utc))
    if cache.frames:
        last = cache.frames[-1].stamp
        alerts.extend(builder.build(e) for e in rules.finish(last.ts_monotonic_s, last.ts_utc))
    return alerts


def _duration_of(rule: RuleConfig) -> float | None:
    if isinstance(rule, IntrusionRuleConfig | CrowdingRuleConfig):
        return rule.min_duration_s
    if isinstance(rule, LoiteringRuleConfig):
        return rule.min_dwell_s
    return None


def scaled_durations(camera: CameraConfig, factor: float) -> CameraConfig:
    """The camera with every rule's minimum duration (loitering: dwell) multiplied by `factor`."""
    rules: list[RuleConfig] = []
    for rule in camera.rules:
        if isinstance(rule, IntrusionRuleConfig | CrowdingRuleConfig):
            rule = rule.model_copy(update={"min_duration_s": round(rule.min_duration_s * factor, 3)})
        elif isinstance(rule, LoiteringRuleConfig):
            rule = rule.model_copy(update={"min_dwell_s": round(rule.min_dwell_s * factor, 3)})
        rules.append(rule)
    return camera.model_copy(update={"rules": rules})


def _outcomes(
    camera: CameraConfig, base: CameraConfig, alerts: Sequence[Alert], cache: DetectionCache, gt: MotSequence | None
) -> tuple[RuleOutcome, ...]:
    scores = {}
    if gt is not None:
        scored = evaluate_alerts(
            base, gt, alerts, fps=cache.stream_fps, frame_wh=cache.frame_wh, start_utc=cache.start_utc
        )
        scores = {s.rule: s for s in scored}
    out = []
    for rule in camera.rules:
        mine = [a for a in alerts if a.detection.rule == rule.name]
        s = scores.get(rule.name)
        out.append(
            RuleOutcome(
                rule.name,
                rule.kind,
                _duration_of(rule),
                len({a.detection.incident_id for a in mine}),
                len(mine),
                s.precision if s else None,
                s.recall if s else None,
                s.true_events if s else None,
            )
        )
    return tuple(out)


def _truncated(gt: MotSequence, last_frame: int) -> MotSequence:
    """The ground truth up to the last frame swept (1-based), so a partial clip is scored fairly."""
    frames = {f: v for f, v in gt.frames.items() if f <= last_frame}
    return MotSequence(frames, min(gt.last_frame, last_frame))


def sweep(
    cache: DetectionCache, config: SiteConfig, camera: CameraConfig, grid: TuneGrid, gt: MotSequence | None = None
) -> list[GridPoint]:
    """Every (score threshold, duration factor) of the grid, rerun from the cache.

    Raises:
        ConfigError: a threshold below the cache's `min_score` (those boxes were never kept).
    """
    low = [s for s in grid.score_thresholds if s + 1e-9 < cache.min_score]
    if low:
        raise ConfigError(
            [ConfigIssue("--scores", None, "scores", f"thresholds {low} are below the cached pass's {cache.min_score}")]
        )
    if gt is not None and cache.frames:
        gt = _truncated(gt, cache.frames[-1].stamp.frame_index + 1)
    points = []
    for threshold in sorted(set(grid.score_thresholds)):
        tracks = _tracks_at(cache, config, camera, threshold)
        done: dict[tuple[float | None, ...], tuple[RuleOutcome, ...]] = {}
        for factor in sorted(set(grid.duration_factors)):
            variant = scaled_durations(camera, factor)
            # Factors that change no rule (line rules only, rounding) reuse the run they equal.
            key = tuple(_duration_of(r) for r in variant.rules)
            if key not in done:
                alerts = _alerts_from_tracks(variant, config, cache, tracks)
                done[key] = _outcomes(variant, camera, alerts, cache, gt)
            points.append(GridPoint(threshold, factor, done[key]))
    return points
