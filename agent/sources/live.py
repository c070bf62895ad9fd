"""Live camera reading: a reader thread that keeps only the newest frame.

The reader decodes as fast as the camera sends; the consumer takes frames at
its own detect rate. A frame the consumer did not take before the next one
arrived is never queued; it is counted as skipped by design
(`frames_rate_skipped`: the detect rate is below the stream's, so most
frames of a 25 fps stream are never wanted at 5 fps) when the consumer was
not yet due for a frame, and as dropped (`frames_dropped`: the box is too
slow) when it was more than `LATE_GRACE` of its period overdue. On a failure the reader
releases the capture and reconnects by the one retry policy
(`agent.backoff.Backoff`), logging `camera_unavailable` / `camera_available`
once per change; when a stream does not open, the line says why
(`agent.sources.open_failure`: refused, no such path, credentials wanted).

While the consumer sets `decode_all` False (an idle camera looking at a low
rate), a frame it will not take is only grabbed (`cap.grab()`, no
`retrieve()`), counted as read and rate-skipped; a grab that fails means
what a failed read means (end of a file, or a reconnect). On an MJPEG
network stream (read as JPEG packets) a grabbed frame is not decoded at
all; on H.264/H.265 and files FFmpeg still decodes it inside `grab()`, since
later frames depend on it, and only the conversion to a BGR picture is
saved. The reader's CPU time is in its stats.

A camera may change its resolution (an installer picks another stream
profile): frames of the new size are delivered as they come, and the
change is logged once as `camera_resolution_changed` with the old and new
size, whether it happens mid-stream or across a reconnect. The pipeline
rebuilds its per-size stages from the frame's size. MJPEG network streams
are read as JPEG packets (`read_jpeg_packets`), since OpenCV would stretch
a mid-stream change to the old size. H.264/H.265 streams whose size changes
without the stream restarting (measured with OpenCV 5.0: pictures rescaled
to the size the stream opened with) show the new size at the next reconnect.
"""

from __future__ import annotations

__all__ = ["LiveSource"]

import logging
import random
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from agent.backoff import Backoff
from agent.logs import log_event
from agent.sources.capture import CaptureTimeouts, open_capture, read_jpeg_packets
from agent.sources.open_failure import OpenFailure, explain_open_failure
from agent.sources.source_stats import SourceStats
from agent.sources.spec import SourceSpec, parse_source
from agent.values.frames import Frame

_log = logging.getLogger("agent.sources")
# Share of the consumer's period it may be late to take a frame before a replaced frame counts
# as dropped rather than skipped: its slots jitter by a few milliseconds with the threads' scheduling.
LATE_GRACE = 0.25
# Why an open stream stopped, for the `camera_unavailable` line.
_READ_FAILURES = {
    "read_failed": "the stream stopped sending frames (camera or network down)",
}


class LiveSource:
    """Read a camera on a named thread; a context manager that owns that thread.

    Args:
        camera_id: camera id (thread name `cam-<id>.reader`, logs, frames).
        source: file path, `rtsp://` or `http(s)://` URL, or USB device index.
        detect_fps: the rate the consumer means to take frames at (> 0); the
            consumer paces its own `read` calls, the reader never waits for it,
            but it tells skipped frames from dropped ones by it (the consumer
            may change it, e.g. after a reload).
        timeouts: network open/read timeouts.
        backoff: reconnect delays (`agent.backoff.Backoff`).
        seed: seed of the jitter (tests); None draws from the OS.

    Files are played at their own frame rate and looped, for demos and tests.
    """

    def __init__(
        self,
        camera_id: str,
        source: str | int | Path,
        *,
        detect_fps: float = 5.0,
        timeouts: CaptureTimeouts | None = None,
        backoff: Backoff | None = None,
        seed: int | None = None,
    ) -> None:
        if not detect_fps > 0:
            raise ValueError(f"detect_fps must be > 0, got {detect_fps}")
        self.camera_id = camera_id
        self.spec: SourceSpec = parse_source(source)
        self.detect_fps = detect_fps
        self.timeouts = timeouts or CaptureTimeouts()
        self.backoff = backoff or Backoff()
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._latest_taken = True
        self._available = False
        self._ever_available = False
        self._reported: bool | None = None
        self._size_wh: tuple[int, int] | None = None  # the last size delivered, kept across reconnects
        self._counts = {"read": 0, "rate_skipped": 0, "dropped": 0, "damaged": 0, "reconnects": 0}
        self._taken_mono_s = time.monotonic()  # when the consumer last took a frame (or the source started)
        self._thread: threading.Thread | None = None
        self._reader_cpu_s = 0.0
        # Set by the consumer: False retrieves only the frames it will take at `detect_fps`.
        self.decode_all = True

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> LiveSource:
        """Start the reader thread (idempotent)."""
        if self._thread is None:
            self._taken_mono_s = time.monotonic()
            self._thread = threading.Thread(target=self._run, name=f"cam-{self.camera_id}.reader", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the reader and join it. Prompt during a backoff sleep; a read in
        progress ends within the read timeout."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            # An open, then asking a camera that did not open why (a connect and a reply), or a read.
            longest_s = 3 * self.timeouts.open_timeout_s + self.timeouts.read_timeout_s
            self._thread.join(timeout=longest_s + 1.0)

    def __enter__(self) -> LiveSource:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- consumer side ---------------------------------------------------------

    @property
    def stats(self) -> SourceStats:
        """A consistent snapshot of availability and counters."""
        with self._cond:
            c = self._counts
            return SourceStats(
                self._available,
                c["read"],
                c["dropped"],
                c["damaged"],
                c["reconnects"],
                c["rate_skipped"],
                self._reader_cpu_s,
            )

    def read(self, timeout_s: float) -> Frame | None:
        """The newest frame not yet taken, waiting up to timeout_s; None if none came."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._latest_taken and not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if self._latest_taken:
                return None
            self._latest_taken = True
            self._taken_mono_s = time.monotonic()
            return self._latest

    # -- reader thread ---------------------------------------------------------

    def _set_available(self) -> None:
        """Record that frames flow; log only the change."""
        with self._cond:
            changed = self._reported is not True
            if self._reported is False and self._ever_available:
                self._counts["reconnects"] += 1
            self._available = self._reported = self._ever_available = True
        if changed:
            log_event(_log, "camera_available", camera=self.camera_id, source=self.spec.describe())

    def _set_unavailable(self, read_failure: str | None, retry_in_s: float) -> None:
        """Record an outage; its first failure is logged once, with why (None: the stream did not open)."""
        with self._cond:
            changed = self._reported is not False
            self._available = self._reported = False
        if not changed:
            return
        if read_failure is None:
            why = explain_open_failure(self.spec, self.timeouts.open_timeout_s)
        else:
            why = OpenFailure(read_failure, _READ_FAILURES.get(read_failure, ""))
        log_event(
            _log,
            "camera_unavailable",
            logging.WARNING,
            camera=self.camera_id,
            source=self.spec.describe(),
            reason=why.reason,
            detail=why.detail,
            retry_in_s=round(retry_in_s, 2),
        )

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            cap = open_capture(self.spec, self.timeouts)
            read_failure: str | None = None
            try:
                if cap.isOpened():
                    self._set_available()
                    failures = 0
                    read_failure = self._read_until_failure(cap)
            finally:
                cap.release()
            if self._stop.is_set() or read_failure == "looped":
                continue
            failures += 1
            delay = self.backoff.delay_s(failures, self._rng)
            self._set_unavailable(read_failure, delay)
            self._stop.wait(delay)

    def _read_until_failure(self, cap: cv2.VideoCapture) -> str:
        """Read until the stream fails or ends; return why ('looped' at a file's end)."""
        fps = float(cap.get(cv2.CAP_PROP_FPS)) if self.spec.is_file else 0.0
        period_s = 1.0 / fps if fps > 0 else 0.0
        next_s = time.monotonic()
        jpeg_packets = read_jpeg_packets(self.spec, cap)
        read_any = False
        while not self._stop.is_set():
            self._reader_cpu_s = time.thread_time()
            ok, data = self._next(cap)
            if not ok:
                return "looped" if self.spec.is_file and read_any else "read_failed"
            read_any = True
            if data is not None:
                image = cv2.imdecode(data, cv2.IMREAD_COLOR) if jpeg_packets else data
                if image is None or image.dtype != np.uint8:
                    with self._cond:
                        self._counts["damaged"] += 1
                    continue
                self._note_size((int(image.shape[1]), int(image.shape[0])))
                self._publish(image)
            if period_s:
                # Play files at their own rate, like a camera would send them.
                next_s += period_s
                if self._stop.wait(max(0.0, next_s - time.monotonic())):
                    break
        return "closed"

    def _next(self, cap: cv2.VideoCapture) -> tuple[bool, np.ndarray | None]:
        """(False, None) when the stream failed or ended; (True, None) for a frame grabbed and left
        out (counted); else (True, picture or packet), or (True, None) counted damaged."""
        if self.decode_all:
            ok, data = cap.read()
            return (True, data) if ok and data is not None else (False, None)
        if not cap.grab():
            return False, None
        if not self._wanted_soon():
            with self._cond:
                self._counts["read"] += 1
                self._counts["rate_skipped"] += 1
            return True, None
        ok, data = cap.retrieve()
        if not ok or data is None:
            with self._cond:
                self._counts["damaged"] += 1
            return True, None
        return True, data

    def _wanted_soon(self) -> bool:
        """Whether the consumer will take the next frame: it took the last one and is nearly due again."""
        due_in_s = (1.0 - LATE_GRACE) / self.detect_fps - (time.monotonic() - self._taken_mono_s)
        return self._latest_taken and due_in_s <= 0

    def _note_size(self, size_wh: tuple[int, int]) -> None:
        """Log a change of resolution once; frames of the new size go on to the consumer."""
        if size_wh == self._size_wh:
            return
        if self._size_wh is not None:
            old_wh, new_wh = (f"{w}x{h}" for w, h in (self._size_wh, size_wh))
            log_event(_log, "camera_resolution_changed", camera=self.camera_id, old_wh=old_wh, new_wh=new_wh)
        self._size_wh = size_wh

    def _publish(self, image: np.ndarray) -> None:
        with self._cond:
            if not self._latest_taken:
                overdue_s = time.monotonic() - self._taken_mono_s - 1.0 / self.detect_fps
                late = overdue_s > LATE_GRACE / self.detect_fps
                self._counts["dropped" if late else "rate_skipped"] += 1
            self._latest = Frame(
                camera_id=self.camera_id,
                frame_index=self._counts["read"],
                image_bgr=image,
                ts_utc=datetime.now(UTC),
                ts_monotonic_s=time.monotonic(),
            )
            self._counts["read"] += 1
            self._latest_taken = False
            self._cond.notify_all()
