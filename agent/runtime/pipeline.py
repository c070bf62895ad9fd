"""One camera's pipeline: frame -> motion -> detections -> tracks -> rule events -> alerts.

`CameraPipeline` owns the per-camera state (motion background, tracker,
object filter, rules, alert builder) and none of the I/O: sources feed it
frames, and the alerts it returns go to a dispatcher. The detector is passed
in, so cameras may share one session.

When the motion gate finds nothing moving, the detector is skipped and the
previous frame's tracks stand: nothing moved, so the objects are where they
were (a person standing still in a zone keeps counting). In `regions` mode
the detector looks at crops around the motion and the objects already
tracked (`agent.detection.crops`) while they cover little of the frame, and
at the whole frame otherwise.

`process` is `follow(look(frame))`: `look` runs the motion gate and the
detector, `follow` the tracker, rules and alerts. Outside regions mode
`look` reads nothing `follow` writes, so a replay may run it on a thread of
its own, a frame or two ahead (`looks_ahead`), and get the same results.
"""

from __future__ import annotations

__all__ = [
    "CameraPipeline",
    "FrameResult",
    "FrameStamp",
    "LookedFrame",
    "ObjectDetecting",
    "ObjectTracking",
    "RegionDetecting",
    "StagesForSize",
]

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, cast, runtime_checkable

import numpy as np

from agent.alerts.builder import AlertBuilder, MessageSequence
from agent.alerts.ids import Uuid7Factory
from agent.alerts.schema import Alert
from agent.config import CameraConfig, SiteInfo
from agent.detection.crops import CropPlanner, CropSettings
from agent.logs import log_event
from agent.motion.gate import MotionCounters, MotionGate, MotionResult
from agent.rules.crossing import LineCrossingRule
from agent.rules.ruleset import RuleSet, build_rules
from agent.tracking.appearance import appearance_descriptors
from agent.tracking.object_filter import ObjectFilter
from agent.values.alert_moment import AlertMoment
from agent.values.detections import Detections, Tracks
from agent.values.frames import Frame
from agent.values.rule_events import RuleEvent

_log = logging.getLogger("agent.runtime.pipeline")


class ObjectDetecting(Protocol):
    """What the pipeline needs from a detector."""

    @property
    def class_names(self) -> tuple[str, ...]: ...

    def detect(self, image_bgr: np.ndarray) -> Detections: ...


@runtime_checkable
class RegionDetecting(ObjectDetecting, Protocol):
    """A detector that can also look at crops of a frame (`regions` motion mode)."""

    @property
    def input_size_hw(self) -> tuple[int, int]: ...

    def detect_crops(self, image_bgr: np.ndarray, crops_xyxy_px: np.ndarray) -> Detections: ...


# Builds the motion gate and object filter for one frame size (their masks are pixel
# polygons). Handed in by whoever wires the pipeline, so this module never reaches
# back into the wiring that reads the config.
StagesForSize = Callable[[tuple[int, int]], tuple[MotionGate, ObjectFilter]]


class ObjectTracking(Protocol):
    """What the pipeline needs from a tracker: its updates, and how long it keeps an unseen
    track (the rules keep their per-track state as long) and how many matches it waits for
    before reporting one (they count towards the object filter's confirmation)."""

    @property
    def max_lost_s(self) -> float: ...

    @property
    def min_hits(self) -> int: ...

    @property
    def uses_appearance(self) -> bool: ...

    def update(self, detections: Detections, ts_monotonic_s: float, appearance: np.ndarray | None = None) -> Tracks: ...

    def reset(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FrameStamp:
    """Where and when a frame sits, without its picture (to rerun cached detections)."""

    frame_index: int
    size_wh: tuple[int, int]
    ts_monotonic_s: float
    ts_utc: datetime

    @classmethod
    def of(cls, frame: Frame) -> FrameStamp:
        return cls(frame.frame_index, frame.size_wh, frame.ts_monotonic_s, frame.ts_utc)


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What one frame produced: its tracks (for `detect` output) and alerts.

    `moment` is set when there are alerts: the frame and the boxes a
    snapshot policy may picture (None otherwise, so no frame is kept).
    """

    frame_index: int
    tracks: Tracks
    alerts: tuple[Alert, ...]
    moment: AlertMoment | None = None


@dataclass(frozen=True, slots=True)
class LookedFrame:
    """A frame after the motion gate and the detector, before tracking (`CameraPipeline.look`).

    Attributes:
        frame: the frame.
        motion: the motion gate's result for it.
        detections: what the detector found; None when the gate skipped the detector.
    """

    frame: Frame
    motion: MotionResult
    detections: Detections | None


class CameraPipeline:
    """Runs detection, tracking and rules for one camera.

    Args:
        camera: the camera's config (zones and rules).
        site: the site's identity, for alerts.
        detector: a detector (may be shared between cameras).
        tracker: this camera's own tracker.
        stages_for_size: builds the motion gate and object filter for a frame size;
            called again whenever the frame size changes.
        status: CAP status of its alerts ("Actual" live, "Test" for replays).
        ids: UUIDv7 source; seed it for repeatable replays.
        sequence: the camera's message numbers; pass the same one to every pipeline of a camera
            (reloads, restarts) so `detection.sequence` goes on; a new one (from 1) when not given.
    """

    def __init__(
        self,
        camera: CameraConfig,
        site: SiteInfo,
        detector: ObjectDetecting,
        tracker: ObjectTracking,
        stages_for_size: StagesForSize,
        *,
        status: str = "Actual",
        ids: Uuid7Factory | None = None,
        sequence: MessageSequence | None = None,
    ) -> None:
        self.camera_id = camera.id
        self._camera = camera
        self._detector = detector
        self._stages_for_size = stages_for_size
        self._filter_wh: tuple[int, int] | None = None
        self._gate_wh: tuple[int, int] | None = None
        self._gate: MotionGate | None = None
        self._filter: ObjectFilter | None = None
        self._tracks = Tracks.empty()
        self._tracker = tracker
        self._rules: RuleSet = build_rules(
            camera, detector.class_names, site.timezone, track_retention_s=tracker.max_lost_s
        )
        self._builder = AlertBuilder(site, camera.id, status=status, ids=ids or Uuid7Factory(), sequence=sequence)
        self._last_ts: tuple[float, datetime] | None = None
        self._last_motion: MotionResult | None = None
        self._crops = _crop_planner(camera, detector)
        self._frames_on_crops = 0

    @property
    def frames_on_crops(self) -> int:
        """Frames the detector saw as crops rather than whole (regions mode) since the start."""
        return self._frames_on_crops

    @property
    def motion_counters(self) -> MotionCounters:
        """Frames inspected, with motion, and sent to the detector so far."""
        return self._gate.counters if self._gate is not None else MotionCounters(0, 0, 0)

    @property
    def class_names(self) -> tuple[str, ...]:
        """The detector's class names, indexed by class id."""
        return tuple(self._detector.class_names)

    @property
    def last_motion(self) -> MotionResult | None:
        """The motion gate's result for the last frame `process` saw (None before the first)."""
        return self._last_motion

    @property
    def line_counts(self) -> dict[str, dict[str, int]]:
        """Per line rule, crossings per direction (A_to_B, B_to_A) since the start, all classes."""
        counts: dict[str, dict[str, int]] = {}
        for rule in self._rules.rules:
            if isinstance(rule, LineCrossingRule):
                per_direction = {"A_to_B": 0, "B_to_A": 0}
                for (direction, _), n in rule.counts.items():
                    per_direction[direction] += n
                counts[rule.name] = per_direction
        return counts

    @property
    def looks_ahead(self) -> bool:
        """Whether `look` may run ahead of `follow`, on another thread: not in regions mode,
        where the detector also looks where the previous frame's tracks are."""
        return self._crops is None

    def process(self, frame: Frame) -> FrameResult:
        return self.follow(self.look(frame))

    def look(self, frame: Frame) -> LookedFrame:
        """The motion gate and, when it lets the frame through, the detector."""
        gate = self._gate_for(frame.size_wh)
        motion = gate.update(frame.image_bgr)
        detections = self._detect(frame, motion) if gate.should_detect(motion) else None
        return LookedFrame(frame, motion, detections)

    def follow(self, looked: LookedFrame) -> FrameResult:
        """Track, apply rules and build alerts for a frame `look` has seen (frames in order)."""
        frame, detections = looked.frame, looked.detections
        self._last_motion = looked.motion
        appearance = None
        if detections is not None and self._tracker.uses_appearance:
            appearance = appearance_descriptors(frame.image_bgr, detections.box_xyxy_px)
        result = self.process_detections(FrameStamp.of(frame), detections, appearance)
        if not result.alerts:
            return result
        return FrameResult(
            result.frame_index, result.tracks, result.alerts, self._moment(frame, result.tracks, result.alerts)
        )

    def _detect(self, frame: Frame, motion: MotionResult) -> Detections:
        planner = self._crops
        if planner is None:
            return self._detector.detect(frame.image_bgr)
        regions = motion.regions_xyxy_px
        if len(self._tracks):
            # The objects already tracked are looked at too: one who stops moving stays seen.
            regions = np.concatenate([regions, self._tracks.box_xyxy_px])
        crops = planner.plan(regions, frame.size_wh)
        if crops is None:
            return self._detector.detect(frame.image_bgr)
        self._frames_on_crops += 1
        return cast(RegionDetecting, self._detector).detect_crops(frame.image_bgr, crops)

    def process_detections(
        self, stamp: FrameStamp, detections: Detections | None, appearance: np.ndarray | None = None
    ) -> FrameResult:
        """Track and apply rules to one frame's detections; None means the motion gate
        skipped the detector, so the previous tracks stand. `appearance`: the detections'
        descriptors (rows aligned) that let the tracker re-link a lost track. `process`
        ends here; a caller with detections cached from an earlier pass (threshold
        tuning) starts here."""
        object_filter = self._filter_for(stamp.size_wh)
        if detections is not None:
            tracks = self._tracker.update(detections, stamp.ts_monotonic_s, appearance)
            self._tracks = object_filter.update(_clipped(tracks, stamp.size_wh))
        tracks = self._tracks
        events = self._rules.update(tracks, stamp.size_wh, stamp.ts_monotonic_s, stamp.ts_utc)
        self._last_ts = (stamp.ts_monotonic_s, stamp.ts_utc)
        return FrameResult(stamp.frame_index, tracks, self._alerts(events))

    def finish(self) -> tuple[Alert, ...]:
        """End every open incident at the last frame's time (end of a replay, shutdown)."""
        if self._last_ts is None:
            return ()
        mono, utc = self._last_ts
        return self._alerts(self._rules.finish(mono, utc))

    def _moment(self, frame: Frame, tracks: Tracks, alerts: tuple[Alert, ...]) -> AlertMoment:
        names = self._detector.class_names
        counted = {a.detection.class_name for a in alerts}
        class_of = [names[int(c)] for c in tracks.class_id]
        objects = np.array([n in counted for n in class_of], dtype=bool)
        people = np.array([n == "person" for n in class_of], dtype=bool)
        return AlertMoment(
            image_bgr=frame.image_bgr,
            object_box_xyxy_px=tracks.box_xyxy_px[objects].reshape(-1, 4),
            person_box_xyxy_px=tracks.box_xyxy_px[people].reshape(-1, 4),
        )

    def _warn_pixel_geometry(self, old_wh: tuple[int, int], new_wh: tuple[int, int]) -> None:
        # Normalized shapes follow the picture; pixel ones stay where they were drawn,
        # which on a new frame size is somewhere else in the scene.
        cam = self._camera
        shapes = [z.name for z in cam.zones if z.units == "pixels"]
        shapes += [ln.name for ln in cam.lines if ln.units == "pixels"]
        shapes += [m.name for m in cam.masks if m.units == "pixels"]
        if shapes:
            log_event(
                _log,
                "camera_pixel_geometry_mismatch",
                logging.WARNING,
                camera=cam.id,
                drawn_for_wh=f"{old_wh[0]}x{old_wh[1]}",
                frame_wh=f"{new_wh[0]}x{new_wh[1]}",
                shapes=",".join(shapes),
            )

    # Masks are pixel polygons, so the gate and the filter are (re)built per frame size; each
    # on its own, because `look` (the gate) may run a frame or two ahead of `follow` (the filter).
    def _gate_for(self, frame_wh: tuple[int, int]) -> MotionGate:
        if self._gate is None or frame_wh != self._gate_wh:
            self._gate_wh = frame_wh
            self._gate, _ = self._stages_for_size(frame_wh)
        return self._gate

    def _filter_for(self, frame_wh: tuple[int, int]) -> ObjectFilter:
        if self._filter is None or frame_wh != self._filter_wh:
            if self._filter_wh is not None and frame_wh != self._filter_wh:
                self._warn_pixel_geometry(self._filter_wh, frame_wh)
            self._filter_wh = frame_wh
            _, self._filter = self._stages_for_size(frame_wh)
        return self._filter

    def reset(self) -> None:
        self._tracker.reset()
        self._tracks = Tracks.empty()
        self._gate = self._filter = None
        self._gate_wh = self._filter_wh = None
        self._rules.reset()
        self._builder.reset()
        self._last_ts = None
        self._last_motion = None

    @property
    def occupancy(self) -> dict[str, dict[str, int]]:
        """Objects per zone and class in the last frame."""
        return self._rules.occupancy.counts

    def _alerts(self, events: list[RuleEvent]) -> tuple[Alert, ...]:
        return tuple(self._builder.build(e) for e in events)


def _crop_planner(camera: CameraConfig, detector: ObjectDetecting) -> CropPlanner | None:
    """The camera's crop planner in regions mode (None otherwise).

    Raises:
        ValueError: regions mode with a detector that cannot look at crops.
    """
    m = camera.motion
    if m.mode != "regions":
        return None
    if not isinstance(detector, RegionDetecting):
        raise ValueError(f"camera {camera.id!r}: motion mode regions needs a detector with detect_crops")
    settings = CropSettings(
        min_side_px=max(detector.input_size_hw),
        pad_px=m.regions_pad_px,
        max_area_fraction=m.regions_max_area,
        max_count=m.regions_max_count,
    )
    return CropPlanner(settings)


def _clipped(tracks: Tracks, frame_wh: tuple[int, int]) -> Tracks:
    """Tracks with boxes clipped to the frame (the motion model may overshoot an edge); a track
    coasting at a predicted box that has left the frame altogether is not in it any more."""
    w, h = frame_wh
    boxes = np.clip(tracks.box_xyxy_px, 0.0, np.array([w, h, w, h], np.float32))
    inside = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return Tracks(boxes, tracks.score, tracks.class_id, tracks.track_id).select(inside)
