"""Running the pipeline over a recorded clip, as fast as the machine allows.

`replay_file` feeds every frame the camera's detect rate keeps through the
same `CameraPipeline` a live run uses and hands the alerts to the same
`DeliverySink` (routed by the `AlertDispatcher`, stored in the caller's
`MessageStore`, audited when the caller gives an audit log); each frame's
tracks go to the caller. The sink waits rather than shed a snapshot, and
keeps the alerts' order. Alert times are the replay's start time plus the
frame's position in the file, and ids are seeded from the site and camera,
so the same clip and config always give the same output. The clip is
decoded a few frames ahead on a reader thread (`agent.sources.prefetch`),
so decoding overlaps inference, and outside regions mode the motion gate and
the detector run on a thread of their own, a frame or two ahead of tracking
and rules (`looked_frames`), so those overlap inference too; the frames,
their order and the output are the same.
"""

from __future__ import annotations

__all__ = ["ReplaySummary", "looked_frames", "replay_file", "replay_pipeline", "select_camera"]

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agent.alerts.ids import Uuid7Factory
from agent.alerts.schema import Alert
from agent.config import CameraConfig, SiteConfig
from agent.delivery.routing import AlertDispatcher, OutgoingAlert
from agent.delivery.sink import DeliverySink, MessageStore
from agent.errors import AgentError, ConfigError, ConfigIssue
from agent.privacy.audit import AuditLog
from agent.runtime.assembly import camera_pipeline, detector_from_config, tracker_from_config
from agent.runtime.pipeline import CameraPipeline, FrameResult, LookedFrame
from agent.sources.file_replay import FileReplay
from agent.sources.prefetch import Prefetched
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
    store: MessageStore | None = None,
    audit: AuditLog | None = None,
    on_message: Callable[[OutgoingAlert], None] | None = None,
    on_frame: Callable[[FrameResult, int], None] = lambda r, n: None,
    on_picture: Callable[[Frame, FrameResult, CameraPipeline], None] | None = None,
    max_frames: int | None = None,
) -> ReplaySummary:
    """Replay one clip as `camera`; see the module docstring.

    Args:
        dispatcher: routes the alerts to their recipients.
        detect_fps: frames per second of file time sent to the pipeline;
            None uses the camera's `detect_fps`, 0 keeps every frame.
        store: keeps each message (None: kept nowhere, as `detect` wants).
        audit: records each message the store accepted (None: nothing recorded).
        on_message: called with each message, in order, before the store gets it.
        on_frame: called with each frame's result and the frame count of the file.
        on_picture: called with each processed frame, its result and the
            pipeline (for read-only state to draw: line counts, motion).
        max_frames: stop after this many frames of the file (None: the whole file).

    Raises:
        SourceError: the clip cannot be opened or has no decodable frames.
        ModelError: the configured model cannot be loaded.
        AgentError: some messages could not be made or stored (each is logged).
    """
    fps = camera.detect_fps if detect_fps is None else (detect_fps or None)
    clip = FileReplay(camera.id, source, detect_fps=fps, start_utc=start_utc)
    pipeline = replay_pipeline(config, camera)
    started = time.perf_counter()
    total = _frame_count(source)
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    tally = _AlertTally()
    processed = 0
    frames = Prefetched(clip, name=f"replay-{camera.id}.reader")
    with (
        frames,
        looked_frames(pipeline, _first(frames, max_frames), name=f"replay-{camera.id}") as looked,
        _replay_sink(dispatcher, store, audit, on_message, camera.id) as sink,
    ):
        for seen in looked:
            frame = seen.frame
            result = pipeline.follow(seen)
            processed += 1
            sink.submit(tally.add(result.alerts), result.moment)
            on_frame(result, total)
            if on_picture is not None:
                on_picture(frame, result, pipeline)
        sink.submit(tally.add(pipeline.finish()))
    counts = sink.counters()
    if counts.failures:
        raise AgentError(f"replay: {counts.failures} messages could not be made or stored (see the log)")
    stats = clip.stats
    return ReplaySummary(
        camera_id=camera.id,
        source=str(source),
        stream_fps=clip.stream_fps,
        frames_decoded=stats.frames_read,
        frames_damaged=stats.frames_damaged,
        frames_processed=processed,
        frames_detected=pipeline.motion_counters.frames_detected,
        alerts_by_phase=dict(tally.phases),
        incidents=len(tally.incidents),
        messages=counts.messages_delivered + counts.messages_refused,
        elapsed_s=time.perf_counter() - started,
    )


@contextmanager
def looked_frames(pipeline: CameraPipeline, frames: Iterable[Frame], *, name: str) -> Iterator[Iterable[LookedFrame]]:
    """`frames` through `pipeline.look`, in order, for the caller to `follow`.

    When the pipeline `looks_ahead`, they are looked at on a thread named
    `NAME.detector`, up to two frames ahead of the caller; otherwise each one
    when the caller asks for it. Leaving the context stops the thread; an
    error `look` raises comes to the caller where its frame would have.
    """
    looks = (pipeline.look(frame) for frame in frames)
    if not pipeline.looks_ahead:
        yield looks
        return
    with Prefetched(looks, name=f"{name}.detector") as ahead:
        yield ahead


def _first(frames: Iterable[Frame], max_frames: int | None) -> Iterator[Frame]:
    """The frames of the file's first `max_frames` (None: all of them)."""
    for frame in frames:
        if max_frames is not None and frame.frame_index >= max_frames:
            return
        yield frame


def replay_pipeline(config: SiteConfig, camera: CameraConfig) -> CameraPipeline:
    """The camera's pipeline with test-status alerts and ids seeded from the site and camera."""
    return camera_pipeline(
        camera,
        config.site,
        detector_from_config(config.detector, tracker=config.tracker),
        tracker_from_config(config.tracker, detector=config.detector),
        status="Test",
        ids=Uuid7Factory(seed=f"{config.site.id}/{camera.id}"),
    )


def _replay_sink(
    dispatcher: AlertDispatcher,
    store: MessageStore | None,
    audit: AuditLog | None,
    on_message: Callable[[OutgoingAlert], None] | None,
    camera_id: str,
) -> DeliverySink:
    # A replay waits for the delivery thread rather than shed a snapshot: the same clip
    # must give the same messages however fast the machine is.
    return DeliverySink(
        dispatcher,
        _Observed(store or _Discarding(), on_message),
        audit=audit,
        when_full="wait",
        queued_log_level=logging.DEBUG,
        thread_name=f"replay-{camera_id}.delivery",
    )


class _AlertTally:
    """Alerts per phase and the incidents they belong to, for the summary."""

    def __init__(self) -> None:
        self.phases: Counter[str] = Counter()
        self.incidents: set[str] = set()

    def add(self, alerts: tuple[Alert, ...]) -> tuple[Alert, ...]:
        for alert in alerts:
            self.phases[alert.detection.phase] += 1
            self.incidents.add(alert.incidents)
        return alerts


class _Observed:
    """A store that first shows each message to the caller's `on_message`."""

    def __init__(self, store: MessageStore, on_message: Callable[[OutgoingAlert], None] | None) -> None:
        self._store = store
        self._on_message = on_message

    def store(self, message: OutgoingAlert) -> bool:
        if self._on_message is not None:
            self._on_message(message)
        return self._store.store(message)


class _Discarding:
    """Keeps nothing; every message counts as handled (`detect`, tuning)."""

    def store(self, message: OutgoingAlert) -> bool:
        return True


def _frame_count(source: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(source))
    try:
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()
