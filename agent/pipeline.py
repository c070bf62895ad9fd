"""One camera's pipeline: frame -> detections -> tracks -> rule events -> alerts.

`CameraPipeline` owns the per-camera state (tracker, rules, alert builder)
and none of the I/O: sources feed it frames, and the alerts it returns go to
a dispatcher. The detector is passed in, so cameras may share one session.
"""

from __future__ import annotations

__all__ = ["CameraPipeline", "FrameResult", "ObjectDetecting", "ObjectTracking"]

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np

from agent.alerts.builder import AlertBuilder
from agent.alerts.ids import Uuid7Factory
from agent.alerts.schema import Alert
from agent.config.schema import CameraConfig, SiteInfo
from agent.detections import Detections, Tracks
from agent.frames import Frame
from agent.rules.events import RuleEvent
from agent.rules.ruleset import RuleSet, build_rules


class ObjectDetecting(Protocol):
    """What the pipeline needs from a detector."""

    @property
    def class_names(self) -> tuple[str, ...]: ...

    def detect(self, image_bgr: np.ndarray) -> Detections: ...


class ObjectTracking(Protocol):
    """What the pipeline needs from a tracker."""

    def update(self, detections: Detections, ts_monotonic_s: float) -> Tracks: ...

    def reset(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What one frame produced: its tracks (for `detect` output) and alerts."""

    frame_index: int
    tracks: Tracks
    alerts: tuple[Alert, ...]


class CameraPipeline:
    """Runs detection, tracking and rules for one camera.

    Args:
        camera: the camera's config (zones and rules).
        site: the site's identity, for alerts.
        detector: a detector (may be shared between cameras).
        tracker: this camera's own tracker.
        status: CAP status of its alerts ("Actual" live, "Test" for replays).
        ids: UUIDv7 source; seed it for repeatable replays.
    """

    def __init__(
        self,
        camera: CameraConfig,
        site: SiteInfo,
        detector: ObjectDetecting,
        tracker: ObjectTracking,
        *,
        status: str = "Actual",
        ids: Uuid7Factory | None = None,
    ) -> None:
        self.camera_id = camera.id
        self._detector = detector
        self._tracker = tracker
        self._rules: RuleSet = build_rules(camera, detector.class_names, site.timezone)
        self._builder = AlertBuilder(site, camera.id, status=status, ids=ids or Uuid7Factory())
        self._last_ts: tuple[float, datetime] | None = None

    def process(self, frame: Frame) -> FrameResult:
        detections = self._detector.detect(frame.image_bgr)
        tracks = self._tracker.update(detections, frame.ts_monotonic_s)
        events = self._rules.update(tracks, frame.size_wh, frame.ts_monotonic_s, frame.ts_utc)
        self._last_ts = (frame.ts_monotonic_s, frame.ts_utc)
        return FrameResult(frame.frame_index, tracks, self._alerts(events))

    def finish(self) -> tuple[Alert, ...]:
        """End every open incident at the last frame's time (end of a replay, shutdown)."""
        if self._last_ts is None:
            return ()
        mono, utc = self._last_ts
        return self._alerts(self._rules.finish(mono, utc))

    def reset(self) -> None:
        self._tracker.reset()
        self._rules.reset()
        self._builder.reset()
        self._last_ts = None

    @property
    def occupancy(self) -> dict[str, dict[str, int]]:
        """Objects per zone and class in the last frame."""
        return self._rules.occupancy.counts

    def _alerts(self, events: list[RuleEvent]) -> tuple[Alert, ...]:
        return tuple(self._builder.build(e) for e in events)
