"""Detectors for the cameras of one process: one shared session, or one per camera.

`shared` loads the model once and lets cameras take turns in arrival order
(a first-come, first-served lock, so no camera thread can overtake the
others); ONNX Runtime then uses all its intra-op threads for each frame.
`per_camera` gives each camera its own session so inferences overlap; its
memory grows with every camera. Either way each camera gets a
`DetectorHandle` that remembers the timings of its own last call.

Thread counts are checked against the cores this process may use: more
ONNX Runtime threads than cores only adds switching, so it is logged.
"""

from __future__ import annotations

__all__ = ["DetectorHandle", "DetectorPool", "FairLock"]

import logging
import os
import threading
from collections.abc import Sequence
from types import TracebackType

import numpy as np

from agent.config import DetectorConfig, TrackerConfig
from agent.detection.detector import ObjectDetector, StageTimings
from agent.logs import log_event
from agent.runtime.assembly import detector_from_config
from agent.values.detections import Detections

_log = logging.getLogger("agent.runtime.detector_pool")


class FairLock:
    """A lock granted in the order it was asked for (ticket lock)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> FairLock:
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._cond.wait_for(lambda: self._serving == ticket)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()


class DetectorHandle:
    """One camera's view of a detector (shared or its own); `last_timings` are its own."""

    def __init__(self, detector: ObjectDetector, turns: FairLock | None) -> None:
        self._detector = detector
        self._turns = turns
        self.last_timings = StageTimings(0.0, 0.0, 0.0)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._detector.class_names

    @property
    def input_size_hw(self) -> tuple[int, int]:
        return self._detector.input_size_hw

    def detect(self, image_bgr: np.ndarray) -> Detections:
        if self._turns is None:
            detections = self._detector.detect(image_bgr)
            self.last_timings = self._detector.last_timings
            return detections
        with self._turns:
            detections = self._detector.detect(image_bgr)
            self.last_timings = self._detector.last_timings
        return detections

    def detect_crops(self, image_bgr: np.ndarray, crops_xyxy_px: np.ndarray) -> Detections:
        """`ObjectDetector.detect_crops`, every crop of the frame in one turn."""
        if self._turns is None:
            detections = self._detector.detect_crops(image_bgr, crops_xyxy_px)
            self.last_timings = self._detector.last_timings
            return detections
        with self._turns:
            detections = self._detector.detect_crops(image_bgr, crops_xyxy_px)
            self.last_timings = self._detector.last_timings
        return detections


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class DetectorPool:
    """Loads the detector(s) for `camera_ids` (raises ModelError like `detector_from_config`)."""

    def __init__(
        self, config: DetectorConfig, camera_ids: Sequence[str], sharing: str, *, tracker: TrackerConfig | None = None
    ) -> None:
        # The tracker's low_score decides how weak a box the detector still decodes.
        self.sharing = sharing
        self._detectors: list[ObjectDetector] = []
        self._handles: dict[str, DetectorHandle] = {}
        if sharing == "shared":
            detector = detector_from_config(config, tracker=tracker)
            self._detectors.append(detector)
            turns = FairLock()
            self._handles = {cid: DetectorHandle(detector, turns) for cid in camera_ids}
        else:
            for cid in camera_ids:
                detector = detector_from_config(config, tracker=tracker)
                self._detectors.append(detector)
                self._handles[cid] = DetectorHandle(detector, None)
        self._check_threads(config, len(camera_ids))

    def _check_threads(self, config: DetectorConfig, cameras: int) -> None:
        sessions = 1 if self.sharing == "shared" else cameras
        threads = sessions * config.intra_op_threads
        cores = usable_cores()
        if threads > cores:
            log_event(
                _log,
                "detector_threads_oversubscribed",
                logging.WARNING,
                sharing=self.sharing,
                sessions=sessions,
                intra_op_threads=config.intra_op_threads,
                cores=cores,
                advice="lower detector.intra_op_threads or use runtime.detector_sharing=shared",
            )

    def handle(self, camera_id: str) -> DetectorHandle:
        return self._handles[camera_id]

    def close(self) -> None:
        for detector in self._detectors:
            detector.close()
