"""Opening an OpenCV capture for a source spec with network timeouts set."""

from __future__ import annotations

__all__ = ["CaptureTimeouts", "open_capture"]

import os
import threading
from dataclasses import dataclass

import cv2

from agent.sources.spec import SourceSpec

# OPENCV_FFMPEG_CAPTURE_OPTIONS is read by OpenCV when a capture opens, so it is
# set and restored under a lock: several cameras may open on different threads.
_ENV_LOCK = threading.Lock()
_FFMPEG_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"


@dataclass(frozen=True, slots=True)
class CaptureTimeouts:
    """Network timeouts; a dead camera must fail a read, not hang the reader.

    Attributes:
        open_timeout_s: longest wait for a stream to open.
        read_timeout_s: longest wait for one frame on an open stream.
    """

    open_timeout_s: float = 5.0
    read_timeout_s: float = 5.0


def _ffmpeg_options(spec: SourceSpec, timeouts: CaptureTimeouts) -> str:
    # `timeout` is in microseconds for both the RTSP and HTTP protocols of FFmpeg.
    options = [f"timeout;{int(timeouts.read_timeout_s * 1e6)}"]
    if spec.kind == "rtsp":
        # TCP: UDP loses packets on busy site networks and smears whole frames.
        options.insert(0, "rtsp_transport;tcp")
    return "|".join(options)


def open_capture(spec: SourceSpec, timeouts: CaptureTimeouts | None = None) -> cv2.VideoCapture:
    """Open a capture; the caller checks `isOpened()` and releases it."""
    timeouts = timeouts or CaptureTimeouts()
    if spec.kind == "usb":
        return cv2.VideoCapture(int(spec.target))
    if spec.kind == "file":
        return cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG)
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(timeouts.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(timeouts.read_timeout_s * 1000),
    ]
    with _ENV_LOCK:
        previous = os.environ.get(_FFMPEG_ENV)
        os.environ[_FFMPEG_ENV] = _ffmpeg_options(spec, timeouts)
        try:
            return cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG, params)
        finally:
            if previous is None:
                del os.environ[_FFMPEG_ENV]
            else:
                os.environ[_FFMPEG_ENV] = previous
