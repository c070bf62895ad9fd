"""The frame value that sources hand to the rest of the pipeline."""

from __future__ import annotations

__all__ = ["Frame"]

from dataclasses import dataclass
from datetime import datetime

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture from a camera.

    Attributes:
        camera_id: id of the camera in the site config.
        frame_index: 0-based index among the frames the source decoded
            (for a file, the position in the file; gt frame N is index N-1).
        image_bgr: (H, W, 3) uint8, BGR, owned by this frame (never reused).
        ts_utc: timezone-aware UTC wall-clock time of capture. For a file
            replay it is the replay's start time plus the frame's position, so
            replays are deterministic.
        ts_monotonic_s: monotonic seconds for durations. For a file replay it
            is the frame's position in the file, in seconds.
    """

    camera_id: str
    frame_index: int
    image_bgr: np.ndarray
    ts_utc: datetime
    ts_monotonic_s: float

    @property
    def size_wh(self) -> tuple[int, int]:
        h, w = self.image_bgr.shape[:2]
        return int(w), int(h)
