"""Running the pipeline over a recorded clip, as fast as the machine allows.

`replay_file` feeds every frame the camera's detect rate keeps through the
same `CameraPipeline` and `AlertDispatcher` a live run uses, and hands each
outgoing message and each frame's tracks to the caller. Alert times are the
replay's start time plus the frame's position in the file, and ids are
seeded from the site and camera, so the same clip and config always give
the same output.
"""

from __future__ import annotations

__all__ = ["ReplaySummary", "replay_file", "select_camera"]

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agent.alerts.ids import Uuid7Factory
from agent.alerts.schema import Alert
from agent.config import CameraConfig, SiteConfig
from agent.delivery.routing import AlertDispatcher, OutgoingAlert
from agent.errors import ConfigError, ConfigIssue
from agent.runtime.assembly import camera_pipeline, detector_from_config, tracker_from_config
from agent.runtime.pipeline import CameraPipeline, FrameResult
from agent.sources.file_replay import FileReplay
from agent.values.alert_moment import AlertMoment
from agent.values.frames import Frame


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    """What a replay did, for the closing table."""

    camera_id: str
    source: str
    stream_fps: float
    frames_decoded: int
    frames_damaged: int
    frames_processed: int
    frames_detected: int
    alerts_by_phase: dict[str, int]
    incidents: int
    messages: int
    elapsed_s: float

    @property
    def processed_fps(self) -> float:
        return self.frames_processed / self.elapsed_s if self.elapsed_s > 0 else 0.0


def select_camera(config: SiteConfig, camera_id: str | None) -> CameraConfig:
    """The named camera, or the first enabled one."""
    cameras = [c for c in config.cameras if c.enabled]
    if camera_id is not None:
        cameras = [c for c in config.cameras if c.id == camera_id]
    if not cameras:
        known = ", ".join(c.id for c in config.cameras)
        reason = f"no camera {camera_id!r} (cameras: {known})" if camera_id else "no enabled camera"
        raise ConfigError([ConfigIssue("--camera", None, "cameras", reason)])
    return cameras[0]


def replay_file(
    config: SiteConfig,
    camera: CameraConfig,
    source: Path,
    *,
    dispatcher: AlertDispatcher,
    start_utc: datetime,
    detect_fps: float | None = None,
    on_message: Callable[[OutgoingAlert], None] = lambda m: None,
    on_frame: Callable[[FrameResult, int], None] = lambda r, n: None,
    on_picture: Callable[[Frame, FrameResult, CameraPipeline], None] | None = None,
    max_frames: int | None = None,
) -> ReplaySummary:
    """Replay one clip as `camera`; see the module docstring.

    Args:
        detect_fps: frames per second of file time sent to the pipeline;
            None uses the camera's `detect_fps`, 0 keeps every frame.
        on_frame: called with each frame's result and the frame count of the file.
        on_picture: called with each processed frame, its result and the
            pipeline (for read-only state to draw: line counts, motion).
        max_frames: stop after this many frames of the file (None: the whole file).

    Raises:
        SourceError: the clip cannot be opened or has no decodable frames.
        ModelError: the configured model cannot be loaded.
    """
    fps = camera.detect_fps if detect_fps is None else (detect_fps or None)
    clip = FileReplay(camera.id, source, detect_fps=fps, start_utc=start_utc)
    detector = detector_from_config(config.detector)
    pipeline = camera_pipeline(
        camera,
        config.site,
        detector,
        tracker_from_config(config.tracker),
        status="Test",
        ids=Uuid7Factory(seed=f"{config.site.id}/{camera.id}"),
    )
    alerts: list[Alert] = []
    messages = 0
    started = time.perf_counter()
    total = _frame_count(source)
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames

    def emit(batch: tuple[Alert, ...], moment: AlertMoment | None = None) -> None:
        nonlocal messages
        for alert in batch:
            alerts.append(alert)
            for message in dispatcher.route(alert, moment):
                messages += 1
                on_message(message)

    processed = 0
    for frame in clip:
        if max_frames is not None and frame.frame_index >= max_frames:
            break
        result = pipeline.process(frame)
        processed += 1
        emit(result.alerts, result.moment)
        on_frame(result, total)
        if on_picture is not None:
            on_picture(frame, result, pipeline)
    emit(pipeline.finish())
    stats = clip.stats
    return ReplaySummary(
        camera_id=camera.id,
        source=str(source),
        stream_fps=clip.stream_fps,
        frames_decoded=stats.frames_read,
        frames_damaged=stats.frames_damaged,
        frames_processed=processed,
        frames_detected=pipeline.motion_counters.frames_detected,
        alerts_by_phase=dict(Counter(a.detection.phase for a in alerts)),
        incidents=len({a.incidents for a in alerts}),
        messages=messages,
        elapsed_s=time.perf_counter() - started,
    )


def _frame_count(source: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(source))
    try:
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()
