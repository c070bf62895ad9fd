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
from agent.rules.intrusion import ZoneIntrusionRule


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
        zones = {z.name: z for z in camera.zones}
        self._rules = [ZoneIntrusionRule(r, zones[r.zone], detector.class_names) for r in camera.rules]
        self._builder = AlertBuilder(site, camera.id, status=status, ids=ids or Uuid7Factory())
        self._last_ts: tuple[float, datetime] | None = None

    def process(self, frame: Frame) -> FrameResult:
        detections = self._detector.detect(frame.image_bgr)
        tracks = self._tracker.update(detections, frame.ts_monotonic_s)
        events = [
            rule.update(tracks, frame.size_wh, frame.ts_monotonic_s, frame.ts_utc) for rule in self._rules
        ]
        self._last_ts = (frame.ts_monotonic_s, frame.ts_utc)
        return FrameResult(frame.frame_index, tracks, self._alerts(events))

    def finish(self) -> tuple[Alert, ...]:
        """End every open incident at the last frame's time (end of a replay, shutdown)."""
        if self._last_ts is None:
            return ()
        mono, utc = self._last_ts
        return self._alerts([rule.finish(mono, utc) for rule in self._rules])

    def reset(self) -> None:
        self._tracker.reset()
        for rule in self._rules:
            rule.reset()
        self._builder.reset()
        self._last_ts = None

    def _alerts(self, events: list[RuleEvent | None]) -> tuple[Alert, ...]:
        return tuple(self._builder.build(e) for e in events if e is not None)
