"""Replaying a video file frame by frame, deterministically.

Every decodable frame is read in order as fast as the machine allows,
optionally subsampled to a target detect rate. Timestamps come from the
frame's position in the file, not the wall clock, so two replays of one
file with one start time give identical frames and timestamps.

What OpenCV (FFmpeg backend) does with damaged files, measured: a frame
whose packet cannot be decoded makes `read()` return False in the middle of
the file and the next `read()` continues with the following frame (a
corrupted MJPEG AVI); damaged packets inside inter-coded streams are often
concealed by FFmpeg and come back as valid-looking frames (nothing to count).
So a failed read is counted as a damaged frame and reading goes on, until
`max_consecutive_failures` failures in a row, which is the end of the file.
"""

from __future__ import annotations

__all__ = ["FileReplay"]

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from agent.errors import SourceError
from agent.sources.capture import quiet_native_logs
from agent.sources.source_stats import SourceStats
from agent.values.frames import Frame

# Failed reads in a row after which the file is taken to be finished. FFmpeg
# skips a damaged frame in one failed read; 25 covers a burst of them and
# costs nothing at the real end of a file.
_MAX_CONSECUTIVE_FAILURES = 25
# Used when the container does not state a frame rate (raw MJPEG, some GIFs).
_FALLBACK_FPS = 25.0


class FileReplay:
    """Iterate over the frames of one video file.

    Args:
        camera_id: camera this file stands for (put on every frame and error).
        path: the video file.
        detect_fps: keep only the frames that cross the next 1/detect_fps
            tick of file time; None keeps every frame.
        start_utc: wall-clock time of the file's first frame (default: the
            Unix epoch, so replays are deterministic).
        max_consecutive_failures: failed reads in a row that mean end of file.
    """

    def __init__(
        self,
        camera_id: str,
        path: str | Path,
        *,
        detect_fps: float | None = None,
        start_utc: datetime | None = None,
        max_consecutive_failures: int = _MAX_CONSECUTIVE_FAILURES,
    ) -> None:
        if detect_fps is not None and not detect_fps > 0:
            raise ValueError(f"detect_fps must be > 0, got {detect_fps}")
        if start_utc is not None and start_utc.tzinfo is None:
            raise ValueError("start_utc must be timezone-aware")
        self.camera_id = camera_id
        self.path = Path(path)
        self.detect_fps = detect_fps
        self.start_utc = start_utc or datetime(1970, 1, 1, tzinfo=UTC)
        self._max_failures = max(1, max_consecutive_failures)
        self._read = 0
        self._skipped = 0
        self._damaged = 0
        self.stream_fps = 0.0

    @property
    def stats(self) -> SourceStats:
        """Counters of the current (or last) pass over the file."""
        return SourceStats(True, self._read, self._skipped, self._damaged, 0)

    def _open(self) -> cv2.VideoCapture:
        if not self.path.is_file():
            raise SourceError(f"camera {self.camera_id}: video file not found: {self.path}")
        quiet_native_logs()
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"camera {self.camera_id}: cannot open video file {self.path}")
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        self.stream_fps = fps if math.isfinite(fps) and fps > 0 else _FALLBACK_FPS
        return cap

    def __iter__(self) -> Iterator[Frame]:
        cap = self._open()
        self._read = self._skipped = self._damaged = 0
        try:
            yield from self._frames(cap)
        finally:
            cap.release()
        if self._read == 0:
            raise SourceError(f"camera {self.camera_id}: no decodable frames in {self.path}")

    def _decoded(self, cap: cv2.VideoCapture) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (position in file, image) for each good frame; count the bad ones."""
        position = 0
        pending_failures = 0
        shape: tuple[int, ...] | None = None
        while pending_failures < self._max_failures:
            ok, image = cap.read()
            if not ok or image is None:
                pending_failures += 1
                continue
            # Failures followed by a good frame were damaged frames, not the end.
            self._damaged += pending_failures
            position += pending_failures
            pending_failures = 0
            shape = shape or image.shape
            if image.dtype != np.uint8 or image.shape != shape:
                self._damaged += 1
            else:
                self._read += 1
                yield position, image
            position += 1

    def _frames(self, cap: cv2.VideoCapture) -> Iterator[Frame]:
        period_s = None if self.detect_fps is None else 1.0 / self.detect_fps
        next_tick = 0
        for position, image in self._decoded(cap):
            t_s = position / self.stream_fps
            if period_s is not None:
                # 1e-9 absorbs float error when a frame lands exactly on a tick.
                if t_s + 1e-9 < next_tick * period_s:
                    self._skipped += 1
                    continue
                next_tick = math.floor(t_s / period_s + 1e-9) + 1
            yield Frame(
                camera_id=self.camera_id,
                frame_index=position,
                image_bgr=image,
                ts_utc=self.start_utc + timedelta(seconds=t_s),
                ts_monotonic_s=t_s,
            )
