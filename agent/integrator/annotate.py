"""An annotated copy of a replayed clip, written on this machine only.

`ClipAnnotator` receives every processed frame of a replay with its result
and draws boxes (class, score, track id), track trails, zones and lines
(red while a rule on them has an open incident), a running crossing count
per line rule and a banner for each alert as it starts, updates and ends.
It writes an MP4 (mp4v) with OpenCV's VideoWriter. Annotated frames never
go to the dispatcher or the outbox: they stay in the file the integrator
asked for.
"""

from __future__ import annotations

__all__ = ["ClipAnnotator"]

from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from agent.alerts.schema import Alert
from agent.config import CameraConfig, LineCrossingRuleConfig, WrongWayRuleConfig
from agent.errors import AgentError
from agent.integrator.drawing import (
    ALERT_BGR,
    SceneShapes,
    draw_banners,
    draw_line,
    draw_tracks,
    draw_trails,
    draw_zone,
    scene_shapes,
)
from agent.rules.geometry import anchor_points
from agent.runtime.pipeline import FrameResult
from agent.values.frames import Frame

# mp4v (MPEG-4 Part 2) is the MP4 encoder every opencv-python wheel can write;
# H.264 (avc1) needs an encoder the wheels do not ship.
_FOURCC = "mp4v"


class ClipAnnotator:
    """Writes annotated frames of one camera's replay to a video file (a context manager).

    Args:
        path: output file (.mp4).
        camera: the camera's config (zones, lines, rules).
        class_names: the detector's class names, indexed by class id.
        fps: frame rate of the written file (the replay's processed rate).
        trail_frames: anchor points kept per track for its trail.
        banner_s: how long (clip time) an alert's banner stays up.
    """

    def __init__(
        self,
        path: str | Path,
        camera: CameraConfig,
        class_names: Sequence[str],
        fps: float,
        *,
        trail_frames: int = 30,
        banner_s: float = 2.0,
    ) -> None:
        if not fps > 0:
            raise AgentError(f"annotated video needs a frame rate above 0, got {fps}")
        self.path = Path(path)
        self._camera = camera
        self._class_names = tuple(class_names)
        self._fps = fps
        self._trail_frames = trail_frames
        self._banner_s = banner_s
        self._writer: cv2.VideoWriter | None = None
        self._shapes: SceneShapes | None = None
        self._trails: dict[int, deque[tuple[float, float]]] = {}
        self._last_seen: dict[int, int] = {}
        self._open_incidents: dict[str, set[str]] = {}
        self._banners: list[tuple[float, str, str]] = []
        self.frames_written = 0
        lines_of = {r.name: r.line for r in camera.rules if isinstance(r, LineCrossingRuleConfig | WrongWayRuleConfig)}
        self._line_rules = lines_of

    def __enter__(self) -> ClipAnnotator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def _open(self, frame_wh: tuple[int, int]) -> cv2.VideoWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*_FOURCC), self._fps, frame_wh)
        if not writer.isOpened():
            raise AgentError(f"cannot write {self.path}: this OpenCV build has no {_FOURCC} encoder for it (use .mp4)")
        return writer

    def update(self, frame: Frame, result: FrameResult, line_counts: Mapping[str, Mapping[str, int]]) -> None:
        """Draw one processed frame and append it to the video."""
        if self._writer is None or self._shapes is None or self._shapes.frame_wh != frame.size_wh:
            if self._writer is None:
                self._writer = self._open(frame.size_wh)
            self._shapes = scene_shapes(self._camera, frame.size_wh)
        self._note_alerts(result.alerts, frame.ts_monotonic_s)
        self._advance_trails(result)
        canvas = frame.image_bgr.copy()
        self._draw_scene(canvas, self._shapes, line_counts)
        draw_trails(canvas, self._trails)
        draw_tracks(canvas, result.tracks, self._class_names)
        self._banners = [b for b in self._banners if b[0] > frame.ts_monotonic_s]
        draw_banners(canvas, [(phase, text) for _, phase, text in self._banners])
        self._writer.write(canvas)
        self.frames_written += 1

    def _note_alerts(self, alerts: Sequence[Alert], ts_monotonic_s: float) -> None:
        for alert in alerts:
            d = alert.detection
            open_ids = self._open_incidents.setdefault(d.rule, set())
            if d.phase == "end":
                open_ids.discard(d.incident_id)
            else:
                open_ids.add(d.incident_id)
            where = f"zone {d.zone}" if d.zone else f"line {d.line} {d.direction or ''}".rstrip()
            text = f"{d.phase.upper()} {d.rule} ({d.rule_kind}, {where}) count {d.count} {d.class_name}"
            self._banners.append((ts_monotonic_s + self._banner_s, d.phase, text))

    def _alerting(self, shape_name: str, kind: str) -> bool:
        for rule in self._camera.rules:
            target = rule.line if isinstance(rule, LineCrossingRuleConfig | WrongWayRuleConfig) else rule.zone
            is_line = isinstance(rule, LineCrossingRuleConfig | WrongWayRuleConfig)
            if target == shape_name and is_line == (kind == "line") and self._open_incidents.get(rule.name):
                return True
        return False

    def _draw_scene(
        self, canvas: np.ndarray, shapes: SceneShapes, line_counts: Mapping[str, Mapping[str, int]]
    ) -> None:
        for zone in shapes.zones:
            alerting = self._alerting(zone.name, "zone")
            draw_zone(canvas, zone, colour=ALERT_BGR if alerting else None, caption=" ALERT" if alerting else "")
        for line in shapes.lines:
            alerting = self._alerting(line.name, "line")
            counts = [line_counts[r] for r, ln in self._line_rules.items() if ln == line.name and r in line_counts]
            caption = f"  A>B {counts[0].get('A_to_B', 0)}  B>A {counts[0].get('B_to_A', 0)}" if counts else ""
            draw_line(canvas, line, colour=ALERT_BGR if alerting else None, caption=caption)

    def _advance_trails(self, result: FrameResult) -> None:
        tracks = result.tracks
        points = anchor_points(tracks.box_xyxy_px)
        for tid, (x, y) in zip(tracks.track_id.tolist(), points.tolist(), strict=False):
            self._trails.setdefault(tid, deque(maxlen=self._trail_frames)).append((x, y))
            self._last_seen[tid] = self.frames_written
        # Trails of tracks gone for a trail's length are dropped, so memory stays bounded.
        for tid in [t for t, seen in self._last_seen.items() if self.frames_written - seen > self._trail_frames]:
            del self._trails[tid], self._last_seen[tid]
